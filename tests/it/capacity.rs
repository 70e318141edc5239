//! The worker-capacity signal against a real dev server with real SDK workers that heartbeat
//! every second (tests/capacity/slot_worker.py) and activities that hold their slots until the
//! test releases them: busy workers hold the count where backlog alone scales them away, freed
//! slots scale down, a killed worker goes stale, versions are filtered, the dispatching guard
//! keeps a replica, and a server without ListWorkers falls back to the backlog.

use crate::support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use support::workers::{script, start, worker, worker_on};
use support::{ChildGuard, DevServer, free_port, python, within};
use temporal_autoscaler::agent::{Context, TaskGuard, start_dir_source};
use temporal_autoscaler::decide::Basis;
use temporal_autoscaler::decide::capacity::{SlotKind, summarize};
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::metrics::Metrics;
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::spec::TriggerConfig;
use temporal_autoscaler::state::ScalerView;
use temporal_autoscaler::target::Targets;
use temporal_autoscaler::temporal::{TemporalPool, WorkersRead, worker_query};

fn key(name: &str) -> ScalerKey {
    ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: name.into(),
    }
}

/// A scaler on `queue` (workflow and activity backlogs, target 5, min 0), polled every second
/// with short windows, and these extra trigger metadata lines.
fn scaler(name: &str, endpoint: &str, queue: &str, extra: &str) -> String {
    support::scaler_yaml(name, endpoint, queue, 0, extra)
        .replace("queueTypes: workflow\n", "queueTypes: workflow,activity\n")
}

async fn agent(dir: &Path) -> (Arc<Context>, TaskGuard) {
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let source = start_dir_source(ctx.clone(), dir.to_path_buf())
        .await
        .unwrap();
    (ctx, source)
}

fn capacity(v: &ScalerView) -> &temporal_autoscaler::state::CapacityView {
    v.triggers[0].capacity.as_deref().expect("a capacity view")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_workers_hold_the_count_free_slots_scale_down_and_a_killed_worker_goes_stale() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let (queue, ep) = ("busy", server.endpoint());
    // 9 workflows, no worker yet: a backlog of 9 → ceil(9 / 5) = 2 for both scalers.
    start(&server, queue, 9, "hold", &release);
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        scaler(
            "cap",
            &ep,
            queue,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        ) + "---\n"
            + &scaler("plain", &ep, queue, ""),
    )
    .unwrap();
    let (ctx, _source) = agent(&dir).await;
    for name in ["cap", "plain"] {
        within(
            30,
            "2 replicas for a backlog of 9",
            ctx.state
                .wait_for(&key(name), |v| v.current_replicas == Some(2)),
        )
        .await;
    }

    // A worker with 10 activity slots takes all 9: the backlog drains to 0, 9 slots stay busy.
    let w = worker(&server, queue, &["--activity-slots", "10"]).await;
    // Backlog alone scales the busy worker away...
    within(
        60,
        "the backlog-only scaler to reach 0",
        ctx.state
            .wait_for(&key("plain"), |v| v.current_replicas == Some(0)),
    )
    .await;
    // ...while the capacity signal holds it: 1 host × 0.9 / 0.8 → 2.
    let v = within(
        30,
        "9 busy slots seen",
        ctx.state.wait_for(&key("cap"), |v| {
            v.triggers[0].backlog == Some(0)
                && v.triggers[0]
                    .capacity
                    .as_deref()
                    .is_some_and(|c| c.slots_used == 9)
        }),
    )
    .await;
    let c = capacity(&v);
    // Free: 1 activity slot, and the 100 workflow-task and 100 local-activity slots of the
    // workflow queue type; the most constrained kind (activity) sets the utilization.
    assert_eq!(
        (c.hosts, c.workers, c.slots_available),
        (1, 1, 201),
        "{c:?}"
    );
    assert_eq!(c.utilization, Some(0.9));
    assert_eq!(c.constrained_kind, Some(SlotKind::Activity));
    assert_eq!((v.desired_replicas, v.active), (Some(2), true), "{v:#?}");
    assert_eq!(v.triggers[0].basis, Some(Basis::SlotUtilization));
    assert_eq!(
        ctx.metrics
            .scale_down
            .get_or_create(&temporal_autoscaler::scaler::scaler_labels(&key("cap")))
            .get(),
        0,
        "the capacity scaler never scaled down"
    );
    let metrics = ctx.metrics.encode();
    for line in [
        r#"temporal_worker_slots_used{namespace="default",scaler="cap",trigger="trigger0",temporal_namespace="default",task_queue="busy"} 9"#,
        r#"temporal_worker_slot_utilization{namespace="default",scaler="cap",trigger="trigger0",temporal_namespace="default",task_queue="busy"} 0.9"#,
        r#"temporal_rpc_requests_total{method="ListWorkers",code="Ok"}"#,
    ] {
        assert!(metrics.contains(line), "{line} in {metrics}");
    }
    // explain shows the signal deciding.
    let text =
        temporal_autoscaler::explain::explain(&dir.join("s.yaml"), Some("cap"), Some(2), &[])
            .await
            .unwrap();
    for needle in [
        "capacity: targetSlotUtilization 0.8",
        "1 worker(s) on 1 host(s) counted",
        "activity      used 9    free 1    utilization 90%",
        "[slotUtilization], active",
        "final: 2 (from 2): no change",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }

    // Freeing the slots: the capacity scaler follows the backlog down after its windows.
    std::fs::write(&release, "").unwrap();
    let v = within(
        60,
        "the capacity scaler to reach 0 once the slots are free",
        ctx.state
            .wait_for(&key("cap"), |v| v.current_replicas == Some(0)),
    )
    .await;
    assert_eq!(capacity(&v).slots_used, 0);

    // Busy again, then the worker is killed: its last heartbeat goes stale and stops counting.
    let release2 = tmp.path().join("release2");
    start(&server, queue, 3, "hold", &release2);
    within(
        60,
        "3 busy slots",
        ctx.state.wait_for(&key("cap"), |v| {
            v.triggers[0]
                .capacity
                .as_deref()
                .is_some_and(|c| c.slots_used == 3 && c.workers == 1)
                && v.current_replicas >= Some(1)
        }),
    )
    .await;
    drop(w);
    let v = within(
        60,
        "the killed worker's heartbeat to go stale",
        ctx.state.wait_for(&key("cap"), |v| {
            v.triggers[0]
                .capacity
                .as_deref()
                .is_some_and(|c| c.workers == 0)
        }),
    )
    .await;
    assert_eq!(capacity(&v).slots_used, 0);
    within(
        60,
        "the capacity scaler to reach 0 without workers",
        ctx.state
            .wait_for(&key("cap"), |v| v.current_replicas == Some(0)),
    )
    .await;
}

/// Issue 21's case: three worker hosts (each in a UTS namespace of its own), one long activity
/// running on each of two. The slots in use (2 of 9) would fit in one host, but a running
/// activity cannot move: the busy floor is the 2 busy hosts, and the scaler holds 2 replicas
/// where packing the slots gave 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_slots_on_two_of_three_hosts_hold_two_replicas() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let (queue, ep) = ("spread", server.endpoint());
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        scaler(
            "spread",
            &ep,
            queue,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        ),
    )
    .unwrap();
    let (ctx, _source) = agent(&dir).await;
    let busy = |n: u64, hosts: u32| {
        move |v: &ScalerView| {
            v.triggers[0]
                .capacity
                .as_deref()
                .is_some_and(|c| c.slots_used == n && c.hosts == hosts)
        }
    };
    // One activity slot on w-a: the first activity can only run there...
    let _a = worker_on(&server, queue, "w-a", &["--activity-slots", "1"]).await;
    start(&server, queue, 1, "hold", &release);
    within(
        60,
        "w-a busy",
        ctx.state.wait_for(&key("spread"), busy(1, 1)),
    )
    .await;
    // ...and with w-a full, the second only on w-b.
    let _b = worker_on(&server, queue, "w-b", &["--activity-slots", "4"]).await;
    start(&server, queue, 1, "hold", &release);
    within(
        60,
        "w-b busy",
        ctx.state.wait_for(&key("spread"), busy(2, 2)),
    )
    .await;
    let _c = worker_on(&server, queue, "w-c", &["--activity-slots", "4"]).await;
    // Until w-c's first heartbeat carries its activity slots, the busy slots read as a larger
    // share of fewer slots (a desired count of 3, held by the scale-down window): wait for the
    // settled reading (2 of 9 slots), and for the count to come down to the 2 busy hosts.
    within(
        60,
        "three hosts, two busy, settled at 2",
        ctx.state.wait_for(&key("spread"), |v| {
            busy(2, 3)(v)
                && v.triggers[0]
                    .capacity
                    .as_deref()
                    .and_then(|c| c.utilization)
                    .is_some_and(|u| (u - 2.0 / 9.0).abs() < 1e-9)
                && v.desired_replicas == Some(2)
        }),
    )
    .await;
    // Every report over 4 s (4 ticks) with all three hosts seen: never fewer than the 2 busy
    // hosts.
    let since = std::time::Instant::now();
    let mut reports = 0;
    let v = within(
        60,
        "4 s of ticks over three hosts",
        ctx.state.wait_for(&key("spread"), |v| {
            if busy(2, 3)(v) {
                reports += 1;
                assert_eq!(v.desired_replicas, Some(2), "{v:#?}");
            }
            reports >= 4 && since.elapsed() >= Duration::from_secs(4)
        }),
    )
    .await;
    let c = capacity(&v);
    assert_eq!((c.hosts, c.workers, c.busy_floor), (3, 3, 2), "{c:?}");
    // Utilization alone would keep one: 2 busy of 9 activity slots, ceil(3 × 0.22 / 0.8) = 1.
    assert!(
        c.utilization.is_some_and(|u| (u - 2.0 / 9.0).abs() < 1e-9),
        "{c:?}"
    );
    assert_eq!(v.triggers[0].basis, Some(Basis::BusyWorkers), "{v:#?}");
    assert_eq!(v.current_replicas, Some(2));
    // explain, from 3: a scale-down to 2, and which hosts (pods) stay and which go first.
    let text =
        temporal_autoscaler::explain::explain(&dir.join("s.yaml"), Some("spread"), Some(3), &[])
            .await
            .unwrap();
    for needle in [
        "final: 2 (from 3): would scale down",
        "idle pods first (the scale-down removes idle pods first):",
        "busy hosts, kept longest (slots in use): w-a (1), w-b (1)",
        "idle hosts, removed first: w-c",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    std::fs::write(&release, "").unwrap();
}

/// A StatefulSet removes its highest ordinals on a scale-down, whatever runs there: one long
/// activity on `db-2` (its host name, as the pod's), `db-0` idle. One busy host would be one
/// replica; the floor is ordinal 2 + 1 = 3, so a scale-down never removes `db-2`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_keeps_its_highest_busy_ordinal() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let (queue, ep) = ("ordinals", server.endpoint());
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        scaler(
            "db",
            &ep,
            queue,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        )
        .replace(
            "    name: db-worker\n",
            "    name: db\n    kind: StatefulSet\n    apiVersion: apps/v1\n",
        ),
    )
    .unwrap();
    let (ctx, _source) = agent(&dir).await;
    // One activity slot on db-2, so the activity runs there; then db-0 joins, idle.
    let _busy = worker_on(&server, queue, "db-2", &["--activity-slots", "1"]).await;
    start(&server, queue, 1, "hold", &release);
    let _idle = worker_on(&server, queue, "db-0", &["--activity-slots", "4"]).await;
    // Until db-0's first heartbeat carries its activity slots, db-2's one full slot reads as
    // 100 % in use: wait for the settled reading, where the busy floor decides.
    let v = within(
        60,
        "db-2 busy, db-0 idle, 3 replicas",
        ctx.state.wait_for(&key("db"), |v| {
            v.triggers[0].capacity.as_deref().is_some_and(|c| {
                c.hosts == 2 && c.slots_used == 1 && c.utilization.is_some_and(|u| u < 0.5)
            }) && v.current_replicas == Some(3)
        }),
    )
    .await;
    let c = capacity(&v);
    assert_eq!(
        (c.busy_floor, c.highest_busy_ordinal),
        (3, Some(2)),
        "{c:?}"
    );
    assert_eq!(v.triggers[0].basis, Some(Basis::BusyWorkers), "{v:#?}");
    let text = temporal_autoscaler::explain::explain(&dir.join("s.yaml"), Some("db"), Some(3), &[])
        .await
        .unwrap();
    assert!(
        text.contains("busy floor 3 (StatefulSet: busy ordinal 2 + 1)"),
        "{text}"
    );
    std::fs::write(&release, "").unwrap();
}

fn trigger(server: &DevServer, queue: &str, meta: &str) -> TriggerConfig {
    trigger_at(&server.endpoint(), queue, meta)
}

fn trigger_at(endpoint: &str, queue: &str, meta: &str) -> TriggerConfig {
    let yaml = scaler("t", endpoint, queue, meta);
    temporal_autoscaler::source::dir::parse_file(Path::new("t.yaml"), &yaml)
        .map(|mut v| v.remove(0).triggers.remove(0))
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Read the trigger's workers until `pred` holds on their summary (heartbeats every second).
async fn workers_until(
    pool: &Arc<TemporalPool>,
    t: &TriggerConfig,
    what: &str,
    pred: impl Fn(&temporal_autoscaler::decide::capacity::Capacity) -> bool,
) -> temporal_autoscaler::decide::capacity::Capacity {
    within(30, what, async {
        loop {
            let read = pool.workers(t).await.unwrap_or_else(|e| panic!("{e}"));
            let WorkersRead::Heartbeats(samples) = read else {
                panic!("{read:?}")
            };
            let c = summarize(
                &samples,
                &SlotKind::for_queue_types(&t.queue_types),
                SystemTime::now(),
                Duration::from_secs(180),
                None,
            );
            if pred(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn versioned_workers_are_filtered_by_deployment_and_build_id() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = "versioned";
    // v1 is current and gets the work; v2 polls the same queue idle.
    let _v1 = worker(
        &server,
        queue,
        &[
            "--deployment",
            "cap-d",
            "--build-id",
            "v1",
            "--make-current",
        ],
    )
    .await;
    let _v2 = worker(
        &server,
        queue,
        &["--deployment", "cap-d", "--build-id", "v2"],
    )
    .await;
    start(&server, queue, 3, "hold", &release);
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let selector = |build: &str| {
        format!(
            "        targetSlotUtilization: \"0.8\"\n        workerDeploymentName: cap-d\n        workerDeploymentBuildId: {build}\n"
        )
    };
    let v1 = trigger(&server, queue, &selector("v1"));
    let c = workers_until(&pool, &v1, "v1's 3 busy slots", |c| c.used == 3).await;
    assert_eq!(c.workers, 1, "{c:?}");
    let v2 = trigger(&server, queue, &selector("v2"));
    let c = workers_until(&pool, &v2, "v2 alone", |c| c.workers == 1).await;
    assert_eq!(c.used, 0, "v2 is idle: {c:?}");
    // No selector: every worker of the queue.
    let all = trigger(&server, queue, "        targetSlotUtilization: \"0.8\"\n");
    let c = workers_until(&pool, &all, "both versions", |c| c.workers == 2).await;
    assert_eq!(c.used, 3, "{c:?}");
    std::fs::write(&release, "").unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatching_guard_keeps_a_replica_through_a_stream_that_never_builds_a_backlog() {
    let server = DevServer::start().await;
    let (queue, ep) = ("stream", server.endpoint());
    let _w = worker(&server, queue, &[]).await;
    let _stream = ChildGuard(
        python()
            .arg(script())
            .args(["stream", "--address", &ep, "--task-queue", queue])
            .args(["--per-second", "4"])
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 with the Temporal SDK"),
    );
    let dir = tempfile::tempdir().unwrap();
    // Activation above 1: the odd task caught in the backlog does not activate either scaler.
    let common = "        activationTargetQueueSize: \"1\"\n";
    std::fs::write(
        dir.path().join("s.yaml"),
        scaler(
            "guard",
            &ep,
            queue,
            &format!("{common}        keepWhileDispatching: \"true\"\n"),
        ) + "---\n"
            + &scaler("noguard", &ep, queue, common),
    )
    .unwrap();
    let (ctx, _source) = agent(dir.path()).await;
    let v = within(
        60,
        "the guard to keep one replica",
        ctx.state.wait_for(&key("guard"), |v| {
            v.current_replicas == Some(1) && v.triggers[0].basis == Some(Basis::Dispatching)
        }),
    )
    .await;
    assert!(v.active);
    assert!(v.triggers[0].tasks_dispatch_rate.is_some_and(|r| r > 0.0));
    assert!(v.triggers[0].backlog.is_some_and(|b| b <= 1), "{v:#?}");
    // Without the guard, the same queue reads as idle.
    let v = within(
        30,
        "the unguarded scaler to read the flowing queue as idle",
        ctx.state.wait_for(&key("noguard"), |v| {
            v.triggers[0].tasks_dispatch_rate.is_some_and(|r| r > 0.0)
        }),
    )
    .await;
    assert_eq!((v.desired_replicas, v.active), (Some(0), false), "{v:#?}");
    // Through five more seconds of the stream (five polls), the guard never lets go.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let v = ctx.state.get(&key("guard")).unwrap();
    assert_eq!(v.current_replicas, Some(1), "{v:#?}");
    assert_eq!(
        ctx.metrics
            .scale_down
            .get_or_create(&temporal_autoscaler::scaler::scaler_labels(&key("guard")))
            .get(),
        0
    );
}

/// nginx in front of the dev server, answering ListWorkers as a server older than 1.29 does
/// (gRPC Unimplemented); None where nginx is missing outside CI.
/// An nginx gRPC front end of the dev server that answers `method` with Unimplemented, as a
/// server without that RPC does.
pub(crate) fn older_server(dir: &Path, upstream: u16, method: &str) -> Option<(ChildGuard, u16)> {
    if !support::have_nginx() {
        return None;
    }
    let port = free_port();
    let d = dir.display();
    let conf = format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port} http2;
    location = /temporal.api.workflowservice.v1.WorkflowService/{method} {{
      default_type application/grpc;
      add_header grpc-status 12 always;
      add_header grpc-message "unknown method {method} for service temporal.api.workflowservice.v1.WorkflowService" always;
      add_header content-length 0 always;
      return 204;
    }}
    location / {{
      grpc_pass grpc://127.0.0.1:{upstream};
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let child = Command::new(support::nginx_bin())
        .args([
            "-c",
            &format!("{d}/nginx.conf"),
            "-e",
            &format!("{d}/error.log"),
        ])
        .args(["-p", &format!("{d}/")])
        .stdout(Stdio::null())
        .spawn()
        .expect("nginx");
    Some((ChildGuard(child), port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_list_workers_falls_back_to_the_backlog() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let Some((_nginx, port)) = older_server(tmp.path(), server.port, "ListWorkers") else {
        return;
    };
    support::wait_listening(port, "nginx to listen").await;
    server.start_workflows("old", 7).await;
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        scaler(
            "old",
            &format!("127.0.0.1:{port}"),
            "old",
            "        targetSlotUtilization: \"0.8\"\n",
        ),
    )
    .unwrap();
    let (ctx, _source) = agent(&dir).await;
    // The backlog still decides: 7 / 5 → 2; the trigger is healthy, the signal unavailable.
    let v = within(
        30,
        "2 replicas from the backlog",
        ctx.state
            .wait_for(&key("old"), |v| v.current_replicas == Some(2)),
    )
    .await;
    assert_eq!(v.triggers[0].error, None, "{v:#?}");
    assert_eq!(v.triggers[0].basis, Some(Basis::Backlog));
    let c = capacity(&v);
    let why = c.unavailable.as_deref().unwrap_or_default();
    assert!(
        why.contains("capacity signal unavailable") && why.contains("Unimplemented"),
        "{c:?}"
    );
    let metrics = ctx.metrics.encode();
    assert!(
        metrics
            .contains(r#"temporal_rpc_requests_total{method="ListWorkers",code="Unimplemented"}"#),
        "{metrics}"
    );
    assert!(
        !metrics.contains("temporal_worker_slots_used{"),
        "{metrics}"
    );
    // `/scalers` says why, in the JSON users read.
    let json = serde_json::to_value(&v).unwrap();
    assert!(
        json["triggers"][0]["capacity"]["unavailable"]
            .as_str()
            .is_some_and(|s| s.contains("Unimplemented")),
        "{json}"
    );
}

/// A rollout as Temporal's worker controller runs it, with the scaler it renders for the old
/// version (config/examples/worker-controller, minReplicaCount 2): while `v1` is current it
/// keeps its minimum; once `v2` is current, `v1` drains: a pinned workflow's activity still
/// runs on it, so the draining floor (1) and the busy floor (its one busy host) hold it at 1;
/// when the activity ends and the server finds the version drained, it goes to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_version_holds_while_busy_and_goes_to_zero_when_drained() {
    use temporal_autoscaler::decide::version::VersionStatus;
    // The server re-checks a draining version every second instead of every 3 minutes.
    let server = DevServer::start_with(&[
        "--dynamic-config-value",
        "matching.wv.VersionDrainageStatusVisibilityGracePeriod=\"1s\"",
        "--dynamic-config-value",
        "matching.wv.VersionDrainageStatusRefreshInterval=\"1s\"",
    ])
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = "orders";
    let deployment = "default/orders";
    let version = |build: &'static str| {
        [
            "--deployment",
            deployment,
            "--build-id",
            build,
            "--make-current",
            "--activity-slots",
            "2",
        ]
    };
    let _v1 = worker_on(&server, queue, "orders-v1-a", &version("v1")).await;

    // The scaler the controller renders for v1, polled every second with no windows.
    let mut wrt = support::example_wrt();
    let spec = &mut wrt["spec"]["template"]["spec"];
    spec["minReplicaCount"] = 2.into();
    spec["pollingInterval"] = 1.into();
    spec["cooldownPeriod"] = 0.into();
    spec["advanced"] = serde_json::json!({"horizontalPodAutoscalerConfig": {"behavior": {
        "scaleDown": {"stabilizationWindowSeconds": 0}}}});
    let meta = &mut spec["triggers"][0]["metadata"];
    meta["endpoint"] = server.endpoint().into();
    meta["workerHeartbeatMaxAgeSeconds"] = "4".into();
    let rendered = temporal_autoscaler::wrt::render(
        &wrt,
        &temporal_autoscaler::wrt::Version {
            build_id: "v1".into(),
            temporal_namespace: "default".into(),
        },
    )
    .unwrap();
    let doc = temporal_autoscaler::check::wrt::scaler_document(&rendered.value);
    let name = doc["metadata"]["name"].as_str().unwrap().to_string();
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let running = support::run_scaler(
        &ctx,
        "default",
        &name,
        &serde_saphyr::to_string(&doc).unwrap(),
    )
    .await;
    let status = |v: &ScalerView| v.triggers.first().and_then(|t| t.version_status);
    within(
        60,
        "v1 current, at its minimum",
        ctx.state.wait_for(&running.key, |v| {
            status(v) == Some(VersionStatus::Current) && v.current_replicas == Some(2)
        }),
    )
    .await;

    // A workflow pinned to v1 runs a long activity there; then v2 takes over.
    start(&server, queue, 1, "hold", &release);
    within(
        60,
        "the activity running on v1",
        ctx.state.wait_for(&running.key, |v| {
            v.triggers
                .first()
                .and_then(|t| t.capacity.as_deref())
                .is_some_and(|c| c.slots_used >= 1)
        }),
    )
    .await;
    let _v2 = worker_on(&server, queue, "orders-v2-a", &version("v2")).await;
    let v = within(
        60,
        "v1 draining, held at 1 by its busy worker",
        ctx.state.wait_for(&running.key, |v| {
            status(v) == Some(VersionStatus::Draining) && v.current_replicas == Some(1)
        }),
    )
    .await;
    assert_eq!(v.desired_replicas, Some(1), "{v:?}");

    // The activity ends: nothing is pinned to v1 any more, the server finds it drained, and
    // its scaler lets it go to 0.
    std::fs::write(&release, "").unwrap();
    within(
        90,
        "v1 drained, at 0",
        ctx.state.wait_for(&running.key, |v| {
            status(v) == Some(VersionStatus::Drained) && v.current_replicas == Some(0)
        }),
    )
    .await;
}

/// One namespace-wide worker listing, matched on the agent's side, gives exactly what each
/// trigger's own ListWorkers query gives: unversioned and versioned workers (two builds of one
/// Worker Deployment) on one queue, and a worker of another queue, each on a host of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_namespace_listing_matches_each_query_exactly() {
    let server = DevServer::start().await;
    let queue = "mixed";
    let _u = worker_on(&server, queue, "ns-unversioned", &[]).await;
    let dep = ["--deployment", "mix-dep"];
    let _v1 = worker_on(
        &server,
        queue,
        "ns-v1",
        &[dep[0], dep[1], "--build-id", "v1"],
    )
    .await;
    let _v2 = worker_on(
        &server,
        queue,
        "ns-v2",
        &[dep[0], dep[1], "--build-id", "v2"],
    )
    .await;
    let _o = worker_on(&server, "mixed-other", "ns-other", &[]).await;
    let pool = TemporalPool::new(Arc::new(temporal_autoscaler::metrics::Metrics::new()));
    let cap = "        targetSlotUtilization: \"0.8\"\n";
    let version = |b: &str| {
        format!(
            "{cap}        workerDeploymentName: mix-dep\n        workerDeploymentBuildId: {b}\n"
        )
    };
    let triggers = [
        (
            trigger(&server, queue, cap),
            vec!["ns-unversioned", "ns-v1", "ns-v2"],
        ),
        (trigger(&server, queue, &version("v1")), vec!["ns-v1"]),
        (trigger(&server, queue, &version("v2")), vec!["ns-v2"]),
        (trigger(&server, "mixed-other", cap), vec!["ns-other"]),
    ];
    let hosts = |read: WorkersRead| -> Vec<String> {
        let WorkersRead::Heartbeats(samples) = read else {
            panic!("{read:?}")
        };
        let mut h: Vec<String> = samples.iter().map(|s| s.host.clone()).collect();
        h.sort();
        h
    };
    // Every worker heartbeating (each SDK worker's first heartbeat comes within seconds).
    within(30, "four workers listed", async {
        loop {
            let all: usize = {
                let mut n = 0;
                for (t, _) in &triggers[..1] {
                    n += hosts(pool.workers(t).await.unwrap()).len();
                }
                n + hosts(pool.workers(&triggers[3].0).await.unwrap()).len()
            };
            if all == 4 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    for (t, want) in &triggers {
        let by_query = hosts(pool.workers(t).await.unwrap());
        let by_namespace = hosts(pool.workers_from_namespace_listing(t).await.unwrap());
        assert_eq!(by_query, *want, "{}", worker_query(t));
        assert_eq!(by_namespace, by_query, "{}", worker_query(t));
    }
}

/// The agent's count of `method` RPCs that succeeded.
fn rpcs_ok(metrics: &Metrics, method: &str) -> f64 {
    let line = format!(r#"temporal_rpc_requests_total{{method="{method}",code="Ok"}} "#);
    metrics
        .encode()
        .lines()
        .find_map(|l| l.strip_prefix(&line).and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// A server that lists workers only in short form (`workers_info`, deprecated, stripped by a
/// front end): the slots come from `DescribeWorker` and equal what the heartbeats give; a
/// worker is described again only once its next heartbeat is due, so listings in between cost
/// no `DescribeWorker`; freed slots show after the next heartbeat. A server that has no
/// `DescribeWorker` either makes the signal unavailable, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_workers_info_reads_slots_by_describe_worker() {
    let server = DevServer::start().await;
    let (port, stripped) = support::strip::without_workers_info(server.port).await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = "short-form";
    let every_3s = ["--heartbeat", "3"];
    let _a = worker_on(&server, queue, "short-a", &every_3s).await;
    let _b = worker_on(&server, queue, "short-b", &every_3s).await;
    start(&server, queue, 3, "hold", &release);
    let cap = "        targetSlotUtilization: \"0.8\"\n";
    let direct = TemporalPool::new(Arc::new(Metrics::new()));
    let metrics = Arc::new(Metrics::new());
    let fronted = TemporalPool::new(metrics.clone());
    let t = trigger(&server, queue, cap);
    let tf = trigger_at(&format!("127.0.0.1:{port}"), queue, cap);
    let busy = |c: &temporal_autoscaler::decide::capacity::Capacity| c.used == 3 && c.hosts == 2;
    let want = workers_until(&direct, &t, "3 busy slots on two hosts", busy).await;
    let got = workers_until(&fronted, &tf, "the same through DescribeWorker", busy).await;
    let figures = |c: &temporal_autoscaler::decide::capacity::Capacity| {
        (
            c.workers,
            c.hosts,
            c.used,
            c.available,
            c.busy_floor,
            c.host_slots.clone(),
        )
    };
    assert_eq!(figures(&got), figures(&want));
    assert!(
        stripped
            .heartbeats
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );
    assert!(rpcs_ok(&metrics, "DescribeWorker") >= 2.0);

    // Listings in quick succession: each worker is described at most once (its next read waits
    // for its next heartbeat, at least a second away), not once per listing.
    let (lists, described) = (
        rpcs_ok(&metrics, "ListWorkers"),
        rpcs_ok(&metrics, "DescribeWorker"),
    );
    for _ in 0..5 {
        // Apart by more than the coalescing window, so that each is a listing of its own.
        tokio::time::sleep(temporal_autoscaler::temporal::COALESCE_WINDOW * 2).await;
        fronted.workers(&tf).await.unwrap();
    }
    assert_eq!(rpcs_ok(&metrics, "ListWorkers") - lists, 5.0);
    let extra = rpcs_ok(&metrics, "DescribeWorker") - described;
    assert!(
        extra <= 2.0,
        "{extra} DescribeWorker for 5 listings of 2 workers"
    );

    std::fs::write(&release, "").unwrap();
    let c = workers_until(&fronted, &tf, "freed slots after the next heartbeat", |c| {
        c.used == 0 && c.hosts == 2
    })
    .await;
    assert_eq!(c.busy_floor, 0);

    // No DescribeWorker either (nginx answers it Unimplemented in front of the stripping one).
    let Some((_nginx, nginx_port)) = older_server(tmp.path(), port, "DescribeWorker") else {
        return;
    };
    support::wait_listening(nginx_port, "nginx to listen").await;
    let old = TemporalPool::new(Arc::new(Metrics::new()));
    let read = old
        .workers(&trigger_at(&format!("127.0.0.1:{nginx_port}"), queue, cap))
        .await
        .unwrap();
    assert!(
        matches!(&read, WorkersRead::Unavailable(why) if why.contains("DescribeWorker")),
        "{read:?}"
    );
}
