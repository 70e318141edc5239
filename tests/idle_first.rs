//! Idle pods first, with a real dev server and real SDK workers, each on a host name of its own
//! (`unshare --uts`), against a recording API server over loopback HTTP (a real kube client):
//! before a scale-down the agent lists the target's pods by its `/scale` selector and sets
//! `controller.kubernetes.io/pod-deletion-cost` on those whose cost changes (busy: its slots in
//! use, idle: 0), and only then writes the lower count. Nothing is written to a pod whose cost
//! is already right, and nothing at all when no pod is a worker host.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::api_server::{ApiServer, PODS};
use support::workers::{start, worker_on};
use support::{DevServer, within};
use temporal_autoscaler::agent::Context;
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::report::state::{BusyPod, ScalerView};
use temporal_autoscaler::source::ScalerKey;
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
    let deadline = Duration::from_secs(2);
    let client = api.client(deadline).await;
    let ctx = Context::new(
        Targets::with_clusters(
            Arc::new(Clusters::new(Some(client), &[]).with_timeout(deadline)),
            false,
        ),
        Guard::alone(),
    );
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
