//! The whole pipeline against a real Temporal dev server: config directory → poll → decide →
//! (simulated) target → report. Kubernetes calls are covered by tests/it/kube_flow.rs.

use crate::support;

use std::sync::Arc;
use support::{DevServer, scaler_yaml, within};
use temporal_autoscaler::agent::{Context, TaskGuard, start_dir_source};
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;

fn key(name: &str) -> ScalerKey {
    ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: name.into(),
    }
}

async fn agent(dir: &std::path::Path) -> (Arc<Context>, TaskGuard) {
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let source = start_dir_source(ctx.clone(), dir.to_path_buf())
        .await
        .unwrap();
    (ctx, source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twelve_workflows_with_target_five_give_three_replicas() {
    let server = DevServer::start().await;
    server.start_workflows("q-twelve", 12).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        scaler_yaml("twelve", &server.endpoint(), "q-twelve", 0, ""),
    )
    .unwrap();
    let (ctx, _source) = agent(dir.path()).await;

    let v = within(
        30,
        "desired 3",
        ctx.state
            .wait_for(&key("twelve"), |v| v.desired_replicas == Some(3)),
    )
    .await;
    assert_eq!(v.triggers[0].backlog, Some(12));
    assert_eq!(v.triggers[0].recommended_replicas, Some(3));
    assert!(v.triggers[0].backlog_age_seconds.is_some_and(|a| a > 0.0));
    assert_eq!(
        v.current_replicas,
        Some(3),
        "the simulated target follows the decision"
    );
    assert!(v.active && v.leader && v.last_scale_time.is_some());

    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains(r#"temporal_queue_size{namespace="default",scaler="twelve",trigger="trigger0",temporal_namespace="default",task_queue="q-twelve"} 12"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"temporal_scaler_scale_up_total{source="dir",namespace="default",scaler="twelve"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"temporal_rpc_requests_total{method="DescribeTaskQueue",code="Ok"}"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activation_from_zero_needs_backlog_above_the_activation_target() {
    let server = DevServer::start().await;
    server.start_workflows("q-act", 2).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = scaler_yaml(
        "act",
        &server.endpoint(),
        "q-act",
        0,
        "        activationTargetQueueSize: \"2\"\n",
    );
    std::fs::write(dir.path().join("s.yaml"), yaml).unwrap();
    let (ctx, _source) = agent(dir.path()).await;

    // Backlog 2 is not above the activation target: stays at zero.
    let v = within(
        30,
        "backlog 2 observed",
        ctx.state.wait_for(&key("act"), |v| {
            v.triggers.first().is_some_and(|t| t.backlog == Some(2))
        }),
    )
    .await;
    assert_eq!((v.desired_replicas, v.active), (Some(0), false));
    server.start_workflows("q-act", 1).await;
    let v = within(
        30,
        "activation",
        ctx.state
            .wait_for(&key("act"), |v| v.desired_replicas == Some(1)),
    )
    .await;
    assert!(v.active);
    assert_eq!(v.triggers[0].backlog, Some(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_min_after_a_real_worker_drains_the_queue() {
    let server = DevServer::start().await;
    server.start_workflows("q-drain", 12).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        scaler_yaml("drain", &server.endpoint(), "q-drain", 1, ""),
    )
    .unwrap();
    let (ctx, _source) = agent(dir.path()).await;
    within(
        30,
        "desired 3",
        ctx.state
            .wait_for(&key("drain"), |v| v.desired_replicas == Some(3)),
    )
    .await;

    let _worker = server.worker("q-drain");
    let v = within(
        90,
        "drained and scaled to min",
        ctx.state
            .wait_for(&key("drain"), |v| v.desired_replicas == Some(1)),
    )
    .await;
    assert_eq!(v.triggers[0].backlog, Some(0));
    assert_eq!(v.current_replicas, Some(1), "never below minReplicaCount 1");
    assert!(ctx.metrics.encode().contains(
        r#"temporal_scaler_scale_down_total{source="dir",namespace="default",scaler="drain"} 1"#
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_edit_is_picked_up_and_a_broken_file_keeps_the_last_good_spec() {
    let server = DevServer::start().await;
    server.start_workflows("q-edit", 12).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(
        &file,
        scaler_yaml("edit", &server.endpoint(), "q-edit", 0, ""),
    )
    .unwrap();
    let (ctx, _source) = agent(dir.path()).await;
    within(
        30,
        "desired 3",
        ctx.state
            .wait_for(&key("edit"), |v| v.desired_replicas == Some(3)),
    )
    .await;

    // targetQueueSize 5 → 2: 12 / 2 = 6.
    std::fs::write(
        &file,
        scaler_yaml("edit", &server.endpoint(), "q-edit", 0, "")
            .replace("targetQueueSize: \"5\"", "targetQueueSize: \"2\""),
    )
    .unwrap();
    within(
        30,
        "desired 6 after the edit",
        ctx.state
            .wait_for(&key("edit"), |v| v.desired_replicas == Some(6)),
    )
    .await;

    // A broken edit: reported, and the last good spec (target 2) stays in force.
    std::fs::write(
        &file,
        scaler_yaml("edit", &server.endpoint(), "q-edit", 0, "")
            .replace("targetQueueSize: \"5\"", "targetQueueSize: \"-1\""),
    )
    .unwrap();
    let v = within(
        30,
        "config error reported",
        ctx.state
            .wait_for(&key("edit"), |v| v.config_error.is_some()),
    )
    .await;
    let err = v.config_error.unwrap();
    assert!(
        err.contains("s.yaml: document 0: spec.triggers[0].metadata.targetQueueSize: got \"-1\""),
        "{err}"
    );
    server.start_workflows("q-edit", 2).await;
    // 14 / 2 = 7 proves the old spec still drives the scaler.
    within(
        30,
        "desired 7 on the last good spec",
        ctx.state
            .wait_for(&key("edit"), |v| v.desired_replicas == Some(7)),
    )
    .await;
    assert!(
        ctx.metrics
            .encode()
            .contains(r#"temporal_autoscaler_config_reloads_total{result="rejected"} 1"#)
    );

    // Deleting the file stops the scaler.
    std::fs::remove_file(&file).unwrap();
    let mut rx = ctx.state.subscribe();
    within(10, "scaler removed", async {
        while ctx.state.get(&key("edit")).is_some() {
            rx.changed().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_marks_the_trigger_failing_and_never_lowers_the_count() {
    let server = DevServer::start().await;
    server.start_workflows("q-ok", 12).await;
    let dead = format!("127.0.0.1:{}", support::free_port());
    let dir = tempfile::tempdir().unwrap();
    // Two triggers: the healthy one says 3, the dead one fails.
    let yaml = scaler_yaml(
        "mixed",
        &server.endpoint(),
        "q-ok",
        0,
        &format!(
            "    - type: temporal\n      name: dead\n      metadata:\n        endpoint: \"{dead}\"\n        taskQueue: q-dead\n        minConnectTimeout: 500ms\n"
        ),
    );
    std::fs::write(dir.path().join("mixed.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("other.yaml"),
        scaler_yaml("other", &server.endpoint(), "q-ok", 0, "")
            .replace("other-worker", "other-target"),
    )
    .unwrap();
    let (ctx, _source) = agent(dir.path()).await;

    let v = within(
        30,
        "desired 3 with a failing trigger",
        ctx.state.wait_for(&key("mixed"), |v| {
            v.desired_replicas == Some(3) && v.triggers.len() == 2 && v.triggers[1].error.is_some()
        }),
    )
    .await;
    let err = v.triggers[1].error.clone().unwrap();
    assert!(err.contains(&dead), "the error names the endpoint: {err}");
    // The other scaler on the same healthy server is not disturbed.
    within(
        30,
        "other scaler",
        ctx.state
            .wait_for(&key("other"), |v| v.desired_replicas == Some(3)),
    )
    .await;

    // Drain the healthy queue: the failing trigger must hold the count (no scale-down on errors).
    let _worker = server.worker("q-ok");
    let v = within(
        90,
        "healthy backlog 0",
        ctx.state.wait_for(&key("mixed"), |v| {
            v.triggers.first().is_some_and(|t| t.backlog == Some(0))
        }),
    )
    .await;
    assert_eq!(v.desired_replicas, Some(3), "{:?}", v.decision);
    assert!(
        v.decision
            .iter()
            .any(|s| s.rule == temporal_autoscaler::decide::Rule::ErrorHold),
        "{:?}",
        v.decision
    );
    assert!(ctx.metrics.encode().contains("temporal_scaler_trigger_errors_total{namespace=\"default\",scaler=\"mixed\",trigger=\"dead\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identical_queries_share_one_connection() {
    let server = DevServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        std::fs::write(
            dir.path().join(format!("s{i}.yaml")),
            scaler_yaml(&format!("s{i}"), &server.endpoint(), "q-shared", 0, ""),
        )
        .unwrap();
    }
    let (ctx, _source) = agent(dir.path()).await;
    for i in 0..5 {
        within(
            30,
            "first tick",
            ctx.state
                .wait_for(&key(&format!("s{i}")), |v| v.desired_replicas.is_some()),
        )
        .await;
    }
    assert_eq!(ctx.pool.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_identical_queries_are_made_once() {
    let server = DevServer::start().await;
    server.start_workflows("q-co", 3).await;
    let yaml = scaler_yaml("co", &server.endpoint(), "q-co", 0, "");
    let cfg = temporal_autoscaler::source::dir::parse_file(std::path::Path::new("co.yaml"), &yaml)
        .unwrap()
        .remove(0);
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let t = &cfg.triggers[0];
    let results = futures::future::join_all((0..10).map(|_| ctx.pool.query(t))).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().map(|s| s.backlog) == Ok(3)),
        "{results:?}"
    );
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains(r#"temporal_rpc_requests_total{method="DescribeTaskQueue",code="Ok"} 1"#),
        "{metrics}"
    );
    // Once the coalescing window has passed, the same query is a new poll: an answer is never
    // reused long after it was read (it would delay the reaction to a new backlog).
    tokio::time::sleep(temporal_autoscaler::temporal::COALESCE_WINDOW * 2).await;
    assert_eq!(ctx.pool.query(t).await.map(|s| s.backlog), Ok(3));
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains(r#"temporal_rpc_requests_total{method="DescribeTaskQueue",code="Ok"} 2"#),
        "{metrics}"
    );
}

/// Reads queue for the endpoint's rate (1 a second here, as a throttled server leaves it); a
/// prompt poll's read of a queue whose ordinary read is still in that line does not join it
/// (it would wait where that read waits): it is answered while the ordinary one still waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prompt_read_does_not_join_a_read_still_waiting_for_the_rate() {
    use temporal_autoscaler::temporal::PROMPT;
    let server = DevServer::start().await;
    server.start_workflows("q-pr", 2).await;
    let trigger = |queue: &str| {
        let yaml = scaler_yaml(queue, &server.endpoint(), queue, 0, "");
        temporal_autoscaler::source::dir::parse_file(std::path::Path::new("pr.yaml"), &yaml)
            .unwrap()
            .remove(0)
            .triggers[0]
            .clone()
    };
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    ctx.pool.set_rps(1);
    // Connected, and the bucket (one token) spent.
    assert!(ctx.pool.query(&trigger("q-warm")).await.is_ok());
    // Six reads, then the ordinary read of q-pr: each is polled once (in line for the rate, in
    // this order) before it is spawned.
    let mut line = Vec::new();
    for queue in (0..6)
        .map(|i| format!("q-ahead-{i}"))
        .chain(["q-pr".to_string()])
    {
        let (pool, t) = (ctx.pool.clone(), trigger(&queue));
        let mut read = Box::pin(async move { pool.query(&t).await });
        assert!(
            futures::poll!(&mut read).is_pending(),
            "{queue} waits its turn"
        );
        line.push(tokio::spawn(read));
    }
    let t = trigger("q-pr");
    let prompt = PROMPT.scope(true, ctx.pool.query(&t)).await;
    assert_eq!(prompt.map(|s| s.backlog), Ok(2));
    let ordinary = line.pop().unwrap();
    assert!(
        !ordinary.is_finished(),
        "the ordinary read of q-pr is still in line behind six others"
    );
    assert_eq!(ordinary.await.unwrap().map(|s| s.backlog), Ok(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scaler_for_the_same_target_is_rejected_until_the_first_goes() {
    let server = DevServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let a =
        scaler_yaml("first", &server.endpoint(), "q-c", 0, "").replace("first-worker", "shared");
    let b =
        scaler_yaml("second", &server.endpoint(), "q-c", 0, "").replace("second-worker", "shared");
    std::fs::write(dir.path().join("a.yaml"), a).unwrap();
    std::fs::write(dir.path().join("b.yaml"), b).unwrap();
    let (ctx, _source) = agent(dir.path()).await;

    let v = within(
        10,
        "conflict reported",
        ctx.state.wait_for(&key("second"), |v| v.error.is_some()),
    )
    .await;
    let err = v.error.unwrap();
    assert!(
        err.starts_with(
            "TargetConflict: Deployment default/shared is already scaled by dir:default/first"
        ),
        "{err}"
    );
    assert!(err.contains("a.yaml"), "{err}");
    within(
        10,
        "first runs",
        ctx.state
            .wait_for(&key("first"), |v| v.desired_replicas.is_some()),
    )
    .await;

    std::fs::remove_file(dir.path().join("a.yaml")).unwrap();
    let v = within(
        10,
        "second takes over",
        ctx.state.wait_for(&key("second"), |v| {
            v.error.is_none() && v.desired_replicas.is_some()
        }),
    )
    .await;
    assert_eq!(v.target.unwrap().name, "shared");
}
