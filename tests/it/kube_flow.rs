//! The pipeline's Kubernetes side, every request asserted (method, path, body, patch type),
//! with a real Temporal dev server behind the triggers.

use crate::support;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use std::time::{Duration, Instant};
use support::{DevServer, scaler_yaml, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::guard::{Guard, LeaderState};
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;
use tower_test::mock::Handle;

type ApiHandle = Handle<Request<Body>, Response<Body>>;

fn key(name: &str) -> ScalerKey {
    ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: name.into(),
    }
}

fn json_response(status: u16, v: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&v).unwrap()))
        .unwrap()
}

fn apps_v1() -> serde_json::Value {
    serde_json::json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["create","delete","deletecollection","get","list","patch","update","watch"], "shortNames": ["deploy"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1",
             "kind": "Scale", "verbs": ["get","patch","update"]},
            {"name": "deployments/status", "singularName": "", "namespaced": true, "kind": "Deployment", "verbs": ["get","patch","update"]}
        ]
    })
}

fn scale(name: &str, replicas: u32) -> serde_json::Value {
    serde_json::json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "namespace": "default", "resourceVersion": "100"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": format!("app={name}")}
    })
}

async fn next(
    handle: &mut ApiHandle,
) -> (
    Request<Body>,
    tower_test::mock::SendResponse<Response<Body>>,
) {
    within(30, "a Kubernetes request", handle.next_request())
        .await
        .expect("client gone")
}

async fn write_scaler(dir: &std::path::Path, name: &str, server: &DevServer, queue: &str) {
    std::fs::write(
        dir.join(format!("{name}.yaml")),
        scaler_yaml(name, &server.endpoint(), queue, 0, ""),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_decide_and_scale_through_the_scale_subresource() {
    let server = DevServer::start().await;
    server.start_workflows("q-flow", 12).await;
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let ctx = Context::new(
        Targets::kube(kube::Client::new(svc, "default"), false),
        Guard::alone(),
    );
    let dir = tempfile::tempdir().unwrap();
    write_scaler(dir.path(), "flow", &server, "q-flow").await;
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();

    // Discovery resolves the kind, then /scale is read.
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        (req.method(), req.uri().to_string().as_str()),
        (&Method::GET, "/apis/apps/v1")
    );
    send.send_response(json_response(200, apps_v1()));
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        (req.method(), req.uri().to_string().as_str()),
        (
            &Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/flow-worker/scale"
        )
    );
    send.send_response(json_response(200, scale("flow-worker", 1)));

    // The namespace's HorizontalPodAutoscalers (never fight another autoscaler): none.
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        (req.method(), req.uri().to_string().as_str()),
        (
            &Method::GET,
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers?"
        )
    );
    send.send_response(json_response(
        200,
        serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                           "metadata": {}, "items": []}),
    ));

    // 12 tasks / 5 per replica: a merge patch of spec.replicas to 3 on /scale.
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::PATCH);
    assert_eq!(
        req.uri().to_string(),
        "/apis/apps/v1/namespaces/default/deployments/flow-worker/scale?"
    );
    assert_eq!(
        req.headers()["content-type"],
        "application/merge-patch+json"
    );
    let body = req.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        serde_json::json!({"spec": {"replicas": 3}})
    );
    send.send_response(json_response(200, scale("flow-worker", 3)));

    // Next tick: discovery and the HPAs are cached, /scale says 3, nothing to write.
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        (req.method(), req.uri().to_string().as_str()),
        (
            &Method::GET,
            "/apis/apps/v1/namespaces/default/deployments/flow-worker/scale"
        )
    );
    send.send_response(json_response(200, scale("flow-worker", 3)));
    let v = within(
        30,
        "status after the second tick",
        ctx.state.wait_for(&key("flow"), |v| {
            v.current_replicas == Some(3) && v.decision.len() == 1
        }),
    )
    .await;
    assert_eq!(v.desired_replicas, Some(3));
    let (req, send) = next(&mut handle).await;
    assert_eq!(
        req.method(),
        Method::GET,
        "no write when desired == current"
    );
    drop(send);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_without_the_lease_never_calls_kubernetes() {
    let server = DevServer::start().await;
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (_tx, rx) = tokio::sync::watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let ctx = Context::new(
        Targets::kube(kube::Client::new(svc, "default"), false),
        Guard::new(rx, Duration::from_secs(5)),
    );
    let dir = tempfile::tempdir().unwrap();
    write_scaler(dir.path(), "follower", &server, "q-follow").await;
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();

    let v = within(
        30,
        "a tick as follower",
        ctx.state.wait_for(&key("follower"), |v| v.target.is_some()),
    )
    .await;
    assert!(!v.leader);
    assert_eq!(v.desired_replicas, None, "followers do not poll Temporal");
    // The tick is over, so any request it made would be queued by now.
    assert!(
        tokio::time::timeout(Duration::from_millis(1), handle.next_request())
            .await
            .is_err(),
        "a follower made a Kubernetes request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_too_close_to_expiry_skips_the_write() {
    let server = DevServer::start().await;
    server.start_workflows("q-margin", 12).await;
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    // Held, but only for another second: inside the 5 s margin.
    let state = LeaderState {
        leader: true,
        since: Some(Instant::now()),
        valid_until: Some(Instant::now() + Duration::from_secs(1)),
    };
    let (_tx, rx) = tokio::sync::watch::channel(state);
    let ctx = Context::new(
        Targets::kube(kube::Client::new(svc, "default"), false),
        Guard::new(rx, Duration::from_secs(5)),
    );
    let dir = tempfile::tempdir().unwrap();
    write_scaler(dir.path(), "margin", &server, "q-margin").await;
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();

    let (req, send) = next(&mut handle).await;
    assert_eq!(req.uri().to_string(), "/apis/apps/v1");
    send.send_response(json_response(200, apps_v1()));
    let (req, send) = next(&mut handle).await;
    assert_eq!(req.method(), Method::GET);
    send.send_response(json_response(200, scale("margin-worker", 1)));
    let v = within(
        30,
        "skipped write reported",
        ctx.state.wait_for(&key("margin"), |v| v.error.is_some()),
    )
    .await;
    assert_eq!(
        v.error.as_deref(),
        Some("lease not valid with margin; write skipped")
    );
    assert_eq!(v.desired_replicas, Some(3));
    assert_eq!(v.current_replicas, Some(1));
    // Whatever comes next is the next tick's read, never a write.
    if let Ok(Some((req, _))) =
        tokio::time::timeout(Duration::from_millis(1), handle.next_request()).await
    {
        assert_eq!(req.method(), Method::GET);
    }
}
