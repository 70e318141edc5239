//! KEDA's `<key>FromEnv` keys: a trigger's task queue named by an environment variable of the
//! scale target's container (here from a ConfigMap key, in the container that
//! `envSourceContainerName` names, not the first one). A real dev server behind the trigger and
//! a recording API server (real kube client): the agent reads the Deployment and the ConfigMap
//! once, polls the queue the variable names and scales on it; a variable the target does not
//! define is a configuration error that names it and never lowers the count.

use crate::support;

use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;
use support::api_server::{ApiServer, CONFIG_MAPS};
use support::{DevServer, within};

fn from_env_yaml(name: &str, endpoint: &str, var: &str) -> String {
    support::scaler_yaml(name, endpoint, "unused", 1, "")
        .replace("taskQueue: \"unused\"", &format!("taskQueueFromEnv: {var}"))
        .replace(
            &format!("name: {name}-worker\n"),
            &format!("name: {name}-worker\n    envSourceContainerName: worker\n"),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_queue_from_the_targets_environment_is_read_once_and_scaled_on() {
    let server = DevServer::start().await;
    // The queue the variable names has 12 tasks (3 replicas at 5); the first container's
    // variable of the same name, and the literal fallback, name emptier queues.
    server.start_workflows("q-env-v2", 12).await;
    let api = ApiServer::new("env", 1);
    *api.pod_spec.lock().unwrap() = Some(json!({"containers": [
        {"name": "proxy", "image": "p", "env": [{"name": "TASK_QUEUE", "value": "q-env-empty"}]},
        {"name": "worker", "image": "w", "env": [
            {"name": "TASK_QUEUE", "valueFrom": {"configMapKeyRef": {"name": "queues", "key": "orders"}}},
        ]},
    ]}));
    api.config_maps.lock().unwrap().insert(
        "queues".into(),
        [("orders".to_string(), "q-env-v2".to_string())].into(),
    );
    let deadline = Duration::from_secs(2);
    let ctx = api.agent(deadline).await;
    let running = support::run_scaler(
        &ctx,
        "default",
        "env",
        &from_env_yaml("env", &server.endpoint(), "TASK_QUEUE"),
    )
    .await;
    let v = within(
        60,
        "scaled on the queue the variable names",
        ctx.state
            .wait_for(&running.key, |v| v.current_replicas == Some(3)),
    )
    .await;
    assert_eq!(&*v.triggers[0].task_queue, "q-env-v2");
    assert_eq!(v.triggers[0].backlog, Some(12));
    assert_eq!(api.replicas.load(Ordering::SeqCst), 3);
    // A few more ticks: the environment is not read again (it is read every 5 minutes).
    let mut ticks = 0;
    within(
        30,
        "three more ticks",
        ctx.state.wait_for(&running.key, |_| {
            ticks += 1;
            ticks >= 4
        }),
    )
    .await;
    let seen = api.since(0);
    let gets = |path: &str| {
        seen.iter()
            .filter(|s| s.method == "GET" && s.path == path)
            .count()
    };
    assert_eq!(
        gets("/apis/apps/v1/namespaces/default/deployments/env-worker"),
        1
    );
    assert_eq!(gets(&format!("{CONFIG_MAPS}queues")), 1);
    drop(running);

    // A variable the container does not define: an error naming it, and no scale-down.
    let api = ApiServer::new("missing", 2);
    *api.pod_spec.lock().unwrap() = Some(json!({"containers": [
        {"name": "worker", "image": "w", "envFrom": [{"configMapRef": {"name": "gone"}}]},
    ]}));
    let ctx = api.agent(deadline).await;
    let var = "TEMPORAL_AUTOSCALER_TEST_UNSET_QUEUE";
    let running = support::run_scaler(
        &ctx,
        "default",
        "missing",
        &from_env_yaml("missing", &server.endpoint(), var),
    )
    .await;
    let v = within(
        60,
        "the missing variable reported",
        ctx.state.wait_for(&running.key, |v| {
            v.triggers.first().is_some_and(|t| t.error.is_some())
        }),
    )
    .await;
    assert_eq!(
        v.triggers[0].error.as_deref(),
        Some(
            format!(
                "config: spec.triggers[0].metadata.taskQueueFromEnv: {var} is not set in container \"worker\" of default/Deployment/missing-worker (unreadable, it may be there: configMap default/gone: not found), nor in the agent's environment"
            )
            .as_str()
        )
    );
    // Three more ticks with the error: the count stays.
    let mut ticks = 0;
    within(
        30,
        "three more ticks",
        ctx.state.wait_for(&running.key, |v| {
            assert!(v.triggers[0].error.is_some(), "{v:?}");
            ticks += 1;
            ticks >= 4
        }),
    )
    .await;
    assert_eq!(
        api.replicas.load(Ordering::SeqCst),
        2,
        "lowered on an unread queue"
    );
    assert!(api.writes(&api.since(0)).is_empty());
}

/// A silent API server (requests taken, never answered, as a paused one): the environment read
/// fails at the cluster's deadline, the trigger says so and is not polled with placeholders,
/// nothing is written; once the server answers, the variable is read and the scaler scales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_api_server_fails_the_environment_read_at_its_deadline() {
    let server = DevServer::start().await;
    server.start_workflows("q-env-hang", 12).await;
    let api = ApiServer::new("hang-env", 1);
    *api.pod_spec.lock().unwrap() = Some(json!({"containers": [
        {"name": "worker", "image": "w", "env": [{"name": "TASK_QUEUE", "value": "q-env-hang"}]},
    ]}));
    api.hung.store(true, Ordering::SeqCst);
    let ctx = api.agent(Duration::from_millis(500)).await;
    let running = support::run_scaler(
        &ctx,
        "default",
        "hang-env",
        &from_env_yaml("hang-env", &server.endpoint(), "TASK_QUEUE"),
    )
    .await;
    let started = std::time::Instant::now();
    let v = within(
        20,
        "the environment read failed",
        ctx.state.wait_for(&running.key, |v| {
            v.triggers
                .first()
                .and_then(|t| t.error.as_deref())
                .is_some_and(|e| e.contains("did not answer"))
        }),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        &*v.triggers[0].task_queue, "$TASK_QUEUE",
        "not polled with the placeholder's value"
    );
    assert_eq!(v.triggers[0].backlog, None);
    api.hung.store(false, Ordering::SeqCst);
    let v = within(
        30,
        "scaled once the server answers",
        ctx.state
            .wait_for(&running.key, |v| v.current_replicas == Some(3)),
    )
    .await;
    assert_eq!(&*v.triggers[0].task_queue, "q-env-hang");
    assert!(v.triggers[0].error.is_none());
    // Nothing was written while the server was silent.
    let while_hung: Vec<_> = api.since(0).into_iter().filter(|s| s.hung).collect();
    assert!(!while_hung.is_empty());
    assert!(api.writes(&while_hung).is_empty(), "{while_hung:?}");
}
