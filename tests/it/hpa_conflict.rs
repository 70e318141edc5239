//! Never fight another autoscaler: a HorizontalPodAutoscaler (as KEDA creates for a
//! ScaledObject) already scales the target. With a real dev server behind the trigger and a
//! recording API server (real kube client), the agent decides but writes nothing, says why
//! (`/scalers` error naming the HPA), lists the namespace's HPAs once per recheck period, not
//! once per tick, and scales by itself once the HPA is gone.

use crate::support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::api_server::{ApiServer, HPAS};
use support::{DevServer, within};
use temporal_autoscaler::agent::Context;
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::target::Targets;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hpa_on_the_target_stops_the_writes_until_it_is_gone() {
    let server = DevServer::start().await;
    server.start_workflows("q-hpa", 12).await;
    let api = ApiServer::new("orders", 1);
    api.hpas
        .lock()
        .unwrap()
        .push(("keda-hpa-orders".into(), "orders-worker".into()));
    let deadline = Duration::from_secs(2);
    let client = api.client(deadline).await;
    let recheck = Duration::from_secs(2);
    let ctx = Context::new(
        Targets::with_clusters(
            Arc::new(Clusters::new(Some(client), &[]).with_timeout(deadline)),
            false,
        )
        .with_hpa_recheck(recheck),
        Guard::alone(),
    );
    let running = support::run_scaler(
        &ctx,
        "default",
        "orders",
        &support::scaler_yaml("orders", &server.endpoint(), "q-hpa", 0, ""),
    )
    .await;
    let key = running.key.clone();
    // 12 tasks at 5 a replica would be 3; the HPA holds the target.
    let v = within(
        60,
        "the conflict reported",
        ctx.state.wait_for(&key, |v| {
            v.desired_replicas == Some(3)
                && v.error
                    .as_deref()
                    .is_some_and(|e| e.contains("TargetConflict"))
        }),
    )
    .await;
    assert_eq!(
        v.error.as_deref(),
        Some(
            "TargetConflict: HorizontalPodAutoscaler default/keda-hpa-orders also scales Deployment/orders-worker: not writing it while the HPA exists"
        )
    );
    // Several ticks of it: never a write, and the HPAs listed once per recheck period.
    let from = api.count();
    let started = Instant::now();
    let mut ticks = 0;
    within(
        60,
        "five more ticks",
        ctx.state.wait_for(&key, |v| {
            ticks += 1;
            assert_eq!(v.current_replicas, Some(1), "{v:?}");
            ticks >= 5 && started.elapsed() >= Duration::from_secs(5)
        }),
    )
    .await;
    let seen = api.since(from);
    assert!(api.writes(&seen).is_empty(), "a write despite the HPA");
    let reads = seen.iter().filter(|s| s.path == api.scale_path()).count();
    let lists = seen.iter().filter(|s| s.path == HPAS).count();
    let periods = started.elapsed().as_secs_f64() / recheck.as_secs_f64();
    assert!(reads >= 5, "{reads} /scale reads");
    assert!(
        (lists as f64) <= periods.ceil() + 1.0,
        "{lists} HPA lists in {periods:.1} recheck periods ({reads} ticks)"
    );
    assert_eq!(api.replicas.load(Ordering::SeqCst), 1);

    // The HPA is deleted (say, the ScaledObject): the agent scales within a recheck period.
    api.hpas.lock().unwrap().clear();
    let v = within(
        30,
        "scaled once the HPA is gone",
        ctx.state
            .wait_for(&key, |v| v.current_replicas == Some(3) && v.error.is_none()),
    )
    .await;
    assert_eq!(v.desired_replicas, Some(3));
    assert_eq!(api.replicas.load(Ordering::SeqCst), 3);
}
