//! Version selectors against a real dev server: a Worker Deployment version with a backlog
//! (DescribeWorkerDeploymentVersion; by our keys one queue of it, by KEDA's every queue), and the
//! deprecated build-id selection (ENHANCED DescribeTaskQueue). The versions are made by real SDK
//! workers (tests/versioning/*.py).

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::{DevServer, python, within};
use temporal_autoscaler::metrics::Metrics;
use temporal_autoscaler::spec::TriggerConfig;
use temporal_autoscaler::temporal::{ErrorKind, QueueStats, TemporalError, TemporalPool};

/// Dynamic config: build-id assignment rules (deprecated v0.2 versioning) are off by default;
/// the describe cache is shortened so new backlog shows at once instead of after 5 s.
const SERVER_FLAGS: &[&str] = &[
    "--dynamic-config-value",
    "frontend.workerVersioningRuleAPIs=true",
    "--dynamic-config-value",
    "matching.TaskQueueInfoByBuildIdTTL=\"1ms\"",
];

fn script(name: &str, dev: &DevServer, args: &[&str]) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/versioning")
        .join(name);
    let out = python()
        .arg(path)
        .args(["--address", &dev.endpoint(), "--namespace", "default"])
        .args(args)
        .output()
        .expect("python3 with the Temporal SDK (scripts/tools.sh)");
    assert!(
        out.status.success(),
        "{name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn trigger(dev: &DevServer, queue: &str, meta: &str) -> TriggerConfig {
    let yaml = format!(
        "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: v}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n    - type: temporal\n      metadata:\n        endpoint: \"{}\"\n        taskQueue: {queue}\n{meta}",
        dev.endpoint()
    );
    temporal_autoscaler::source::dir::parse_file(Path::new("v.yaml"), &yaml)
        .map(|mut v| v.remove(0).triggers.remove(0))
        .unwrap_or_else(|e| panic!("{e:?}"))
}

/// Backlog counts are approximate and eventually consistent: read until `want` appears.
async fn backlog_reaches(pool: &Arc<TemporalPool>, t: &TriggerConfig, want: u64) -> QueueStats {
    within(30, "the expected backlog", async {
        loop {
            let s = pool.query(t).await.unwrap_or_else(|e| panic!("{e}"));
            if s.backlog == want {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
}

async fn once(pool: &Arc<TemporalPool>, t: &TriggerConfig) -> Result<QueueStats, TemporalError> {
    within(30, "a read", pool.query(t)).await
}

#[tokio::test]
async fn worker_deployment_version_backlog() {
    let dev = DevServer::start_with(SERVER_FLAGS).await;
    // A version orders-deploy/v1 that polled "orders", is current, and has 5 workflows waiting.
    script(
        "deployment_backlog.py",
        &dev,
        &[
            "--task-queue",
            "orders",
            "--deployment",
            "orders-deploy",
            "--build-id",
            "v1",
            "--workflows",
            "5",
        ],
    );
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let version =
        "        workerDeploymentName: orders-deploy\n        workerDeploymentBuildId: v1\n";
    let t = trigger(&dev, "orders", version);
    backlog_reaches(&pool, &t, 5).await;
    // Filtered to the trigger's types: the version's activity queue has nothing waiting.
    let activity = trigger(
        &dev,
        "orders",
        &format!("{version}        queueTypes: activity\n"),
    );
    assert_eq!(once(&pool, &activity).await.unwrap().backlog, 0);
    // ...and to its queue: another queue of the same version reads nothing.
    let other_queue = trigger(&dev, "payments", version);
    assert_eq!(once(&pool, &other_queue).await.unwrap().backlog, 0);
    // A version that does not exist is reported as not found, not as an empty queue.
    let missing = trigger(
        &dev,
        "orders",
        "        workerDeploymentName: orders-deploy\n        workerDeploymentBuildId: v9\n",
    );
    let e = once(&pool, &missing).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound, "{e}");
}

/// KEDA's `workerVersioningType: deployment` reads what KEDA reads: the backlog of every task
/// queue of the version, where our `workerDeploymentName` reads the trigger's queue only.
#[tokio::test]
async fn keda_deployment_versioning_reads_every_queue_of_the_version() {
    let dev = DevServer::start_with(SERVER_FLAGS).await;
    // One version, omes-deployment/v2.0.0, polling two queues, with 3 workflows waiting on each.
    script(
        "deployment_backlog.py",
        &dev,
        &[
            "--task-queue",
            "omes-test",
            "--task-queue",
            "omes-other",
            "--deployment",
            "omes-deployment",
            "--build-id",
            "v2.0.0",
            "--workflows",
            "3",
        ],
    );
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let keda = trigger(
        &dev,
        "omes-test",
        "        workerVersioningType: deployment\n        deploymentName: omes-deployment\n        buildId: v2.0.0\n",
    );
    backlog_reaches(&pool, &keda, 6).await;
    let ours = trigger(
        &dev,
        "omes-test",
        "        workerDeploymentName: omes-deployment\n        workerDeploymentBuildId: v2.0.0\n",
    );
    backlog_reaches(&pool, &ours, 3).await;
}

#[tokio::test]
async fn legacy_build_id_selection_reads_the_enhanced_describe() {
    let dev = DevServer::start_with(SERVER_FLAGS).await;
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    // Unversioned backlog, selected with selectUnversioned.
    script(
        "legacy_build_id_backlog.py",
        &dev,
        &["--task-queue", "legacy-unv", "--workflows", "4"],
    );
    let unversioned = trigger(
        &dev,
        "legacy-unv",
        "        selectUnversioned: \"true\"\n        queueTypes: workflow\n",
    );
    backlog_reaches(&pool, &unversioned, 4).await;
    // A named build id with no tasks reads 0 on the same queue.
    let other_build = trigger(
        &dev,
        "legacy-unv",
        "        buildId: v2\n        queueTypes: workflow\n",
    );
    assert_eq!(once(&pool, &other_build).await.unwrap().backlog, 0);

    // Backlog assigned to build id v7 by an assignment rule: read by buildId.
    script(
        "legacy_build_id_backlog.py",
        &dev,
        &[
            "--task-queue",
            "legacy-bid",
            "--build-id",
            "v7",
            "--workflows",
            "6",
        ],
    );
    let by_build = trigger(
        &dev,
        "legacy-bid",
        "        buildId: v7\n        queueTypes: workflow\n",
    );
    backlog_reaches(&pool, &by_build, 6).await;
    // Unversioned and v7 together: the sum.
    let both = trigger(
        &dev,
        "legacy-bid",
        "        buildId: v7\n        selectUnversioned: \"true\"\n        queueTypes: workflow\n",
    );
    backlog_reaches(&pool, &both, 6).await;
    // selectAllActive alone: the server would answer it with no versions at all; the agent
    // names the queue's known build ids, so the v7 backlog is counted.
    let all_active = trigger(
        &dev,
        "legacy-bid",
        "        selectAllActive: \"true\"\n        queueTypes: workflow\n",
    );
    backlog_reaches(&pool, &all_active, 6).await;
}

/// Temporal's worker controller renders one TemporalScaler per version from a
/// WorkerResourceTemplate (the example in config/examples/worker-controller), filling in the
/// version's `workerDeploymentName` (`<k8s namespace>/<name>`) and build ID. Each rendered
/// scaler reads only its own version's backlog, and sees where its version is in the rollout:
/// after `v2` becomes current, `v1` is draining or drained (its floor drops: `decide::version`).
#[tokio::test]
async fn scalers_rendered_per_version_read_their_own_version_and_its_status() {
    use temporal_autoscaler::decide::version::VersionStatus;
    let dev = DevServer::start_with(SERVER_FLAGS).await;
    let deployment = "default/orders";
    // v1 registers and is made current, with nothing waiting; then v2 takes over with 5.
    for (build, workflows) in [("v1", "0"), ("v2", "5")] {
        script(
            "deployment_backlog.py",
            &dev,
            &[
                "--task-queue",
                "orders",
                "--deployment",
                deployment,
                "--build-id",
                build,
                "--workflows",
                workflows,
            ],
        );
    }
    let wrt = support::example_wrt();
    let rendered = |build: &str| -> TriggerConfig {
        let version = temporal_autoscaler::wrt::Version {
            build_id: build.into(),
            temporal_namespace: "default".into(),
        };
        let mut r = temporal_autoscaler::wrt::render(&wrt, &version).unwrap();
        assert_eq!(r.worker_deployment_name, deployment);
        assert_eq!(
            r.value["spec"]["scaleTargetRef"]["name"],
            format!("orders-{build}")
        );
        // The example's endpoint is a cluster Service; this test's server is on loopback.
        r.value["spec"]["triggers"][0]["metadata"]["endpoint"] = dev.endpoint().into();
        let doc = temporal_autoscaler::check::wrt::scaler_document(&r.value);
        temporal_autoscaler::source::dir::validate_value(doc)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .triggers
            .remove(0)
    };
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let v2 = backlog_reaches(&pool, &rendered("v2"), 5).await;
    assert_eq!(v2.version_status, Some(VersionStatus::Current));
    let v1 = once(&pool, &rendered("v1")).await.unwrap();
    assert_eq!(v1.backlog, 0);
    let status = v1.version_status.expect("the version's status");
    assert!(
        matches!(status, VersionStatus::Draining | VersionStatus::Drained),
        "{status:?}"
    );
}
