//! Idle pods first, with a real dev server and real SDK workers, each on a host name of its own
//! (`unshare --uts`), against a recording API server over loopback HTTP (a real kube client):
//! before a scale-down the agent lists the target's pods by its `/scale` selector and sets
//! `controller.kubernetes.io/pod-deletion-cost` on those whose cost changes (busy: its slots in
//! use, idle: 0), and only then writes the lower count. Nothing is written to a pod whose cost
//! is already right, and nothing at all when no pod is a worker host.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::api_server::{ApiServer, PODS};
use support::workers::{start, worker_on};
use support::{DevServer, within};
use temporal_autoscaler::agent::Context;
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::source::ScalerKey;
use temporal_autoscaler::state::{BusyPod, ScalerView};
use temporal_autoscaler::target::Targets;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_pods_are_kept_by_their_deletion_cost_set_before_the_scale_down() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = "idle-first";
    // w-a takes the one long activity (its only slot); w-b and w-c stay idle.
    let _a = worker_on(&server, queue, "w-a", &["--activity-slots", "1"]).await;
    start(&server, queue, 1, "hold", &release);
    let _b = worker_on(&server, queue, "w-b", &["--activity-slots", "4"]).await;
    let _c = worker_on(&server, queue, "w-c", &["--activity-slots", "4"]).await;

    let api = ApiServer::new("idle", 1);
    api.set_pods(&[("w-a", None), ("w-b", None), ("w-c", None)]);
    let ctx = api.agent(Duration::from_secs(2)).await;
    let running = support::run_scaler(
        &ctx,
        "default",
        "idle",
        &support::scaler_yaml(
            "idle",
            &server.endpoint(),
            queue,
            0,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        )
        .replace("queueTypes: workflow\n", "queueTypes: workflow,activity\n"),
    )
    .await;
    let (key, dir) = (running.key.clone(), running.dir.path().to_path_buf());
    let settled = |v: &ScalerView| {
        v.triggers
            .first()
            .and_then(|t| t.capacity.as_deref())
            .is_some_and(|c| c.hosts == 3 && c.slots_used == 1)
            && v.current_replicas == Some(1)
    };
    within(
        60,
        "3 hosts, w-a busy, 1 replica",
        ctx.state.wait_for(&key, settled),
    )
    .await;
    // (Until every worker's heartbeat is in, the first ticks may have scaled up and back.)

    // Scaled up by hand to 3: the agent brings it back to 1 (the one busy host), idle pods
    // first. w-c still carries a cost from an earlier scale-down, when it was busy.
    api.set_pods(&[("w-a", None), ("w-b", None), ("w-c", Some("3"))]);
    let from = api.count();
    api.replicas.store(3, Ordering::SeqCst);
    let scaled_down = |from: usize| {
        let api = api.clone();
        move |v: &ScalerView| {
            v.current_replicas == Some(1)
                && api
                    .writes(&api.since(from))
                    .contains(&("scale".to_string(), "1".to_string()))
        }
    };
    let v = within(30, "back to 1", ctx.state.wait_for(&key, scaled_down(from))).await;
    let seen = api.since(from);
    let list = seen
        .iter()
        .find(|s| s.method == "GET" && s.path == PODS)
        .expect("the pods listed");
    assert!(list.query.contains("labelSelector=app%3Didle"), "{list:?}");
    let w = api.writes(&seen);
    // w-a busy with 1 slot costs 1; w-c idle goes back to 0; w-b (unset = 0) is not written;
    // then the count.
    assert_eq!(w.len(), 3, "{w:?}");
    let mut pods = w[..2].to_vec();
    pods.sort();
    assert_eq!(
        pods,
        [
            ("w-a".to_string(), "1".to_string()),
            ("w-c".to_string(), "0".to_string())
        ]
    );
    assert_eq!(w[2], ("scale".to_string(), "1".to_string()));
    assert_eq!(
        (api.cost("w-a").as_deref(), api.cost("w-b")),
        (Some("1"), None)
    );
    let sd = &v.scale_down[0];
    assert_eq!(
        (sd.cluster.as_str(), sd.pods, sd.idle, sd.costs_written),
        ("local", 3, 2, 2)
    );
    assert_eq!(
        sd.busy,
        [BusyPod {
            pod: "w-a".into(),
            slots_used: 1
        }]
    );

    // Again: the costs are right already, so only the count is written.
    let from = api.count();
    api.replicas.store(3, Ordering::SeqCst);
    within(
        30,
        "back to 1 again",
        ctx.state.wait_for(&key, |v| {
            v.current_replicas == Some(1) && api.writes(&api.since(from)).len() == 1
        }),
    )
    .await;
    assert_eq!(
        api.writes(&api.since(from)),
        [("scale".to_string(), "1".to_string())]
    );

    // Pods that are not worker hosts (a pod `hostname`): nothing is steered, the count still
    // goes down, and the view says why.
    api.set_pods(&[("x-1", None), ("x-2", None), ("x-3", None)]);
    let from = api.count();
    api.replicas.store(3, Ordering::SeqCst);
    let v = within(
        30,
        "down without steering",
        ctx.state.wait_for(&key, |v| {
            v.current_replicas == Some(1)
                && v.scale_down.first().is_some_and(|s| s.unmatched.is_some())
        }),
    )
    .await;
    assert_eq!(
        api.writes(&api.since(from)),
        [("scale".to_string(), "1".to_string())]
    );
    assert!(
        v.scale_down[0]
            .unmatched
            .as_deref()
            .unwrap()
            .contains("none of the 3 pod(s) is a worker host"),
        "{v:?}"
    );

    // Off for this scaler (`spec.scaleDown.idleFirst: false`): the pods are not even listed.
    // The file is replaced by a scaler of another name on the same target, so that its first
    // report proves the new spec runs.
    let text = std::fs::read_to_string(dir.join("idle.yaml")).unwrap();
    std::fs::write(
        dir.join("idle.yaml"),
        text.replace("  name: idle\n  namespace", "  name: idle-off\n  namespace")
            .replace(
                "  minReplicaCount: 0\n",
                "  minReplicaCount: 0\n  scaleDown: {idleFirst: false}\n",
            ),
    )
    .unwrap();
    api.set_pods(&[("w-a", None), ("w-b", None), ("w-c", None)]);
    let off = ScalerKey {
        name: "idle-off".into(),
        ..key.clone()
    };
    within(
        30,
        "the scaler with idleFirst: false running",
        ctx.state.wait_for(&off, |v| v.current_replicas == Some(1)),
    )
    .await;
    let from = api.count();
    api.replicas.store(3, Ordering::SeqCst);
    within(
        30,
        "down by the count alone",
        ctx.state.wait_for(&off, |_| {
            api.writes(&api.since(from)) == [("scale".to_string(), "1".to_string())]
        }),
    )
    .await;
    assert!(
        !api.since(from).iter().any(|s| s.path == PODS),
        "pods listed with idleFirst: false"
    );
    assert_eq!(api.cost("w-a"), None);
    std::fs::write(&release, "").unwrap();
}

/// Over two clusters (`spec.placement`), each cluster's scale-down is steered with that
/// cluster's own pods: its pods listed from its API server, its busy pod (by host name) costed
/// there, and nothing of the other cluster's pods sent to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_cluster_steers_its_own_pods() {
    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = "idle-first-two";
    let (home, eu) = (ApiServer::new("split", 1), ApiServer::new("split", 1));
    home.set_pods(&[("h-busy", None), ("h-idle", None)]);
    eu.set_pods(&[("e-busy", None), ("e-idle", None)]);
    let deadline = Duration::from_secs(2);
    let clusters = Clusters::fixed(
        Some(home.client(deadline).await),
        [("eu".to_string(), eu.client(deadline).await)],
    )
    .with_timeout(deadline);
    let ctx = Context::new(
        Targets::with_clusters(Arc::new(clusters), false),
        Guard::alone(),
    );
    let running = support::run_scaler(
        &ctx,
        "default",
        "split",
        &support::scaler_yaml(
            "split",
            &server.endpoint(),
            queue,
            0,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        )
        .replace("queueTypes: workflow\n", "queueTypes: workflow,activity\n")
        .replace(
            "  triggers:\n",
            "  placement:\n    clusters:\n    - {name: local}\n    - {name: eu}\n  triggers:\n",
        ),
    )
    .await;
    let key = running.key.clone();
    let capacity = |hosts: u32, used: u64| {
        move |v: &ScalerView| {
            v.triggers
                .first()
                .and_then(|t| t.capacity.as_deref())
                .is_some_and(|c| c.hosts == hosts && c.slots_used == used)
        }
    };
    // One long activity on each cluster's busy host, placed for sure: each busy worker has one
    // activity slot and starts alone, its activity running before the next worker polls.
    let _hb = worker_on(&server, queue, "h-busy", &["--activity-slots", "1"]).await;
    start(&server, queue, 1, "hold", &release);
    within(60, "h-busy busy", ctx.state.wait_for(&key, capacity(1, 1))).await;
    let _eb = worker_on(&server, queue, "e-busy", &["--activity-slots", "1"]).await;
    start(&server, queue, 1, "hold", &release);
    within(60, "e-busy busy", ctx.state.wait_for(&key, capacity(2, 2))).await;
    let _hi = worker_on(&server, queue, "h-idle", &["--activity-slots", "4"]).await;
    let _ei = worker_on(&server, queue, "e-idle", &["--activity-slots", "4"]).await;
    within(
        60,
        "4 hosts, 2 busy, 1 replica in each cluster",
        ctx.state.wait_for(&key, |v| {
            capacity(4, 2)(v)
                && v.current_replicas == Some(2)
                && v.clusters.iter().all(|c| c.current_replicas == Some(1))
        }),
    )
    .await;

    // Both clusters scaled up by hand to 2: the agent brings the total back to 2 (the two busy
    // hosts), one per cluster, each cluster keeping its own busy pod. (The pods' costs are
    // cleared first: the start, with fewer hosts heartbeating, may have scaled down already.)
    home.set_pods(&[("h-busy", None), ("h-idle", None)]);
    eu.set_pods(&[("e-busy", None), ("e-idle", None)]);
    let (from_home, from_eu) = (home.count(), eu.count());
    home.replicas.store(2, Ordering::SeqCst);
    eu.replicas.store(2, Ordering::SeqCst);
    let scaled = |api: &ApiServer, from: usize| {
        api.writes(&api.since(from))
            .contains(&("scale".to_string(), "1".to_string()))
    };
    let v = within(
        30,
        "each cluster back to 1",
        ctx.state.wait_for(&key, |v| {
            v.scale_down.len() == 2 && scaled(&home, from_home) && scaled(&eu, from_eu)
        }),
    )
    .await;
    let pod_writes = |api: &ApiServer, from: usize| -> Vec<(String, String)> {
        api.writes(&api.since(from))
            .into_iter()
            .filter(|(what, _)| what != "scale")
            .collect()
    };
    assert_eq!(
        pod_writes(&home, from_home),
        [("h-busy".to_string(), "1".to_string())]
    );
    assert_eq!(
        pod_writes(&eu, from_eu),
        [("e-busy".to_string(), "1".to_string())]
    );
    // Each API server was asked for its own pods only (one list each per scale-down).
    for (api, from) in [(&home, from_home), (&eu, from_eu)] {
        let lists = api
            .since(from)
            .iter()
            .filter(|s| s.method == "GET" && s.path == PODS)
            .count();
        assert_eq!(lists, 1);
    }
    let mut views: Vec<(String, u32, Vec<BusyPod>)> = v
        .scale_down
        .iter()
        .map(|s| (s.cluster.clone(), s.idle, s.busy.clone()))
        .collect();
    views.sort_by(|a, b| a.0.cmp(&b.0));
    let busy = |pod: &str| {
        vec![BusyPod {
            pod: pod.into(),
            slots_used: 1,
        }]
    };
    assert_eq!(
        views,
        [
            ("eu".to_string(), 1, busy("e-busy")),
            ("local".to_string(), 1, busy("h-busy")),
        ]
    );
    std::fs::write(&release, "").unwrap();
}
