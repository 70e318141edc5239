//! The Schedules signal (`scheduleLeadSeconds`) on a real dev server: a Schedule on the
//! trigger's queue (created with the `temporal` CLI, an action every 30 s) pre-scales before
//! its action, to `scheduleMinReplicas` before anything was learned; the run's need is learned
//! (extra workflows arrive with the action); the next action is pre-scaled to it with the
//! backlog back at 0 (a real worker completed the run); a paused schedule changes nothing; a schedule on another queue never
//! counts. The listing is refreshed every second here (`schedule_refresh_seconds`).

use crate::support;

use std::time::Duration;
use support::{DevServer, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::decide::Basis;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::state::ScalerView;
use temporal_autoscaler::target::Targets;

fn key(name: &str) -> ScalerKey {
    ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: name.into(),
    }
}

/// In the lead of the next action: basis `scheduled`, the action still ahead.
fn pre_scaled(v: &ScalerView, replicas: u32) -> bool {
    let t = &v.triggers[0];
    t.basis == Some(Basis::Scheduled)
        && t.recommended_replicas == Some(replicas)
        && t.schedules
            .first()
            .and_then(|s| s.next_action_in_seconds)
            .is_some_and(|s| s > 0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_pre_scales_its_queue_to_what_its_last_run_needed() {
    let server = DevServer::start().await;
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    ctx.pool.set_schedule_refresh(Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let keys = "        scheduleLeadSeconds: \"25\"\n        scheduleLearnSeconds: \"8\"\n        scheduleGraceSeconds: \"3\"\n";
    for (name, queue) in [("sched", "q-sched"), ("other", "q-sched-other")] {
        std::fs::write(
            dir.path().join(format!("{name}.yaml")),
            support::scaler_yaml(name, &server.endpoint(), queue, 0, keys),
        )
        .unwrap();
    }
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    server.cli(&[
        "schedule",
        "create",
        "--schedule-id",
        "nightly",
        "--interval",
        "30s",
        "--task-queue",
        "q-sched",
        "--type",
        "Noop",
        "--workflow-id",
        "nightly-run",
        "--overlap-policy",
        "AllowAll",
    ]);

    // Before its first action: up to scheduleMinReplicas, nothing learned yet.
    let v = within(
        60,
        "pre-scaled before the first action",
        ctx.state.wait_for(&key("sched"), |v| pre_scaled(v, 1)),
    )
    .await;
    assert_eq!(v.triggers[0].schedules[0].id, "nightly");
    assert_eq!(v.triggers[0].schedules[0].learned_replicas, None);
    assert_eq!(v.triggers[0].backlog, Some(0), "up before the work arrives");
    assert_eq!(v.desired_replicas, Some(1));
    // The other queue's scaler sees no schedule.
    let other = ctx.state.get(&key("other")).unwrap();
    assert!(other.triggers[0].schedules.is_empty(), "{other:?}");
    assert_ne!(other.triggers[0].basis, Some(Basis::Scheduled));

    // 14 more workflows wait when the action adds its own (15 → ceil(15 / 5) = 3 needed during
    // the run; started now, as the approximate backlog shows new tasks a few seconds late).
    server.start_workflows("q-sched", 14).await;
    let v = within(
        60,
        "the run's need learned",
        ctx.state.wait_for(&key("sched"), |v| {
            v.triggers[0]
                .schedules
                .first()
                .and_then(|s| s.learned_replicas)
                == Some(3)
        }),
    )
    .await;
    assert!(v.triggers[0].schedules[0].learned_replicas == Some(3));
    // Its work done (a worker completes it), the next action is pre-scaled to what the run
    // needed.
    let _worker = server.worker("q-sched");
    within(
        90,
        "pre-scaled to the learned need",
        ctx.state.wait_for(&key("sched"), |v| {
            pre_scaled(v, 3) && v.triggers[0].backlog == Some(0)
        }),
    )
    .await;

    // Paused: it counts for nothing, even inside its lead.
    server.cli(&[
        "schedule",
        "toggle",
        "--schedule-id",
        "nightly",
        "--pause",
        "--reason",
        "test",
    ]);
    within(
        60,
        "seen paused",
        ctx.state.wait_for(&key("sched"), |v| {
            v.triggers[0].schedules.first().is_some_and(|s| s.paused)
        }),
    )
    .await;
    let mut ticks = 0;
    within(
        60,
        "25 s of ticks while paused",
        ctx.state.wait_for(&key("sched"), |v| {
            assert_ne!(v.triggers[0].basis, Some(Basis::Scheduled), "{v:?}");
            ticks += 1;
            ticks >= 25
        }),
    )
    .await;
    let other = ctx.state.get(&key("other")).unwrap();
    assert_ne!(other.triggers[0].basis, Some(Basis::Scheduled));

    // The cost: one DescribeSchedule (its spec never changed), and one ListSchedules per
    // refresh for both scalers of the namespace (joined), not one each.
    let metrics = ctx.metrics.encode();
    let count = |method: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "temporal_rpc_requests_total{{method=\"{method}\","
                ))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count("DescribeSchedule"), 1, "{metrics}");
    let elapsed = started.elapsed().as_secs();
    let lists = count("ListSchedules");
    assert!(
        lists >= 10 && lists <= elapsed + 2,
        "{lists} listings in {elapsed} s"
    );
}

/// A server without ListSchedules: the signal is unavailable (said once, in `/scalers` by
/// its absence and an event), the trigger is healthy and scales on its backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_schedules_scales_on_the_backlog_alone() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let Some((_nginx, port)) =
        crate::capacity::older_server(tmp.path(), server.port, "ListSchedules")
    else {
        return support::skipped("nginx is not installed");
    };
    support::wait_listening(port, "nginx to listen").await;
    server.start_workflows("q-no-sched", 7).await;
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    ctx.pool.set_schedule_refresh(Duration::from_secs(1));
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("s.yaml"),
        support::scaler_yaml(
            "nosched",
            &format!("127.0.0.1:{port}"),
            "q-no-sched",
            0,
            "        scheduleLeadSeconds: \"60\"\n",
        ),
    )
    .unwrap();
    let _source = start_dir_source(ctx.clone(), dir).await.unwrap();
    let v = within(
        30,
        "2 replicas from the backlog",
        ctx.state
            .wait_for(&key("nosched"), |v| v.current_replicas == Some(2)),
    )
    .await;
    assert_eq!(v.triggers[0].error, None, "{v:#?}");
    assert_eq!(v.triggers[0].basis, Some(Basis::Backlog));
    assert!(v.triggers[0].schedules.is_empty());
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains(
            r#"temporal_rpc_requests_total{method="ListSchedules",code="Unimplemented"}"#
        ),
        "{metrics}"
    );
}
