//! A remote cluster's outage over many scalers is a line when it starts and a line when it
//! ends, not a line per scaler per poll (as a Temporal outage is, tests/it/outage_logs.rs): 20
//! scalers placed over the home cluster and `apac` (recording mock API servers), with a real
//! Temporal dev server behind their triggers, lose `apac` and get it back.

use crate::support;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use support::{Capture, DevServer, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;

/// An API server with any number of Deployments: discovery, GET and merge PATCH of their
/// `/scale`; while `down`, every request fails at the transport.
fn api_server(down: Arc<AtomicBool>) -> kube::Client {
    let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    tokio::spawn(async move {
        let mut replicas: HashMap<String, u64> = HashMap::new();
        while let Some((req, send)) = handle.next_request().await {
            if down.load(Ordering::SeqCst) {
                send.send_error(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    "connection refused",
                ));
                continue;
            }
            let (parts, body) = req.into_parts();
            let bytes = body.collect().await.unwrap().to_bytes();
            let path = parts.uri.path().to_string();
            let name = path.split('/').nth_back(1).unwrap_or_default().to_string();
            let reply = match (&parts.method, path.as_str()) {
                (&Method::GET, "/apis/apps/v1") => json!({
                    "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                    "resources": [{"name": "deployments/scale", "singularName": "", "namespaced": true,
                                   "group": "autoscaling", "version": "v1", "kind": "Scale",
                                   "verbs": ["get", "patch", "update"]},
                                  {"name": "deployments", "singularName": "deployment", "namespaced": true,
                                   "kind": "Deployment", "verbs": ["get", "patch"]}]
                }),
                // Never fight another autoscaler: no HPA here.
                (&Method::GET, p) if p.ends_with("/horizontalpodautoscalers") => json!({
                    "kind": "HorizontalPodAutoscalerList", "apiVersion": "autoscaling/v2",
                    "metadata": {}, "items": []
                }),
                (&Method::GET, p) if p.ends_with("/scale") => {
                    let n = *replicas.entry(name.clone()).or_insert(0);
                    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                           "metadata": {"name": name, "namespace": "default"}, "spec": {"replicas": n}})
                }
                (&Method::PATCH, p) if p.ends_with("/scale") => {
                    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                    let n = v["spec"]["replicas"].as_u64().unwrap();
                    replicas.insert(name.clone(), n);
                    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                           "metadata": {"name": name, "namespace": "default"}, "spec": {"replicas": n}})
                }
                other => panic!("unexpected request {other:?}"),
            };
            send.send_response(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                    .unwrap(),
            );
        }
    });
    kube::Client::new(svc, "default")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_outage_over_twenty_scalers_is_logged_once_when_it_starts_and_once_when_it_ends()
{
    if !support::alone(
        "cluster_outage::a_cluster_outage_over_twenty_scalers_is_logged_once_when_it_starts_and_once_when_it_ends",
    ) {
        return;
    }
    let logs = Capture::install();

    let server = DevServer::start().await;
    server.start_workflows("co-q", 8).await;
    let apac_down = Arc::new(AtomicBool::new(false));
    let clusters = Clusters::fixed(
        Some(api_server(Arc::default())),
        [("apac".to_string(), api_server(apac_down.clone()))],
    );
    let ctx = Context::new(
        Targets::with_clusters(Arc::new(clusters), false),
        Guard::alone(),
    );
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        std::fs::write(
            dir.path().join(format!("s{i}.yaml")),
            format!(
                r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {{name: s{i}}}
spec:
  scaleTargetRef: {{name: s{i}-worker}}
  pollingInterval: 1
  cooldownPeriod: 0
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {{stabilizationWindowSeconds: 0}}
  placement:
    failureThreshold: 2
    clusters: [{{name: local}}, {{name: apac}}]
  triggers:
  - type: temporal
    metadata: {{endpoint: "{}", taskQueue: co-q, queueTypes: workflow, targetQueueSize: "2"}}
"#,
                server.endpoint()
            ),
        )
        .unwrap();
    }
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    let key = |i: usize| ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: format!("s{i}").into(),
    };
    let apac = |v: &temporal_autoscaler::state::ScalerView| v.clusters.get(1).cloned();
    for i in 0..20 {
        within(
            30,
            "every scaler places 2 in apac",
            ctx.state.wait_for(&key(i), |v| {
                apac(v).is_some_and(|c| c.current_replicas == Some(2))
            }),
        )
        .await;
    }
    let warnings = || logs.at_any(&["WARN", "ERROR"]);
    let before_warn = warnings().len();
    let before_info = logs.at("INFO").len();

    apac_down.store(true, Ordering::SeqCst);
    for i in 0..20 {
        within(
            30,
            "every scaler moves apac's share home",
            ctx.state.wait_for(&key(i), |v| {
                apac(v).is_some_and(|c| !c.reachable) && v.clusters[0].current_replicas == Some(4)
            }),
        )
        .await;
    }
    apac_down.store(false, Ordering::SeqCst);
    for i in 0..20 {
        within(
            30,
            "every scaler has apac back",
            ctx.state.wait_for(&key(i), |v| {
                apac(v).is_some_and(|c| c.reachable && c.current_replicas == Some(2))
                    && v.clusters[0].current_replicas == Some(2)
            }),
        )
        .await;
    }

    let warn: Vec<String> = warnings().into_iter().skip(before_warn).collect();
    assert_eq!(
        warn.len(),
        1,
        "one line for the outage of one cluster:\n{}",
        warn.join("\n")
    );
    assert!(
        warn[0].contains("cluster unreachable;") && warn[0].contains("cluster=\"apac\""),
        "{warn:?}"
    );
    let back: Vec<String> = logs
        .at("INFO")
        .into_iter()
        .skip(before_info)
        .filter(|l| !l.contains(" scaled "))
        .collect();
    assert_eq!(back.len(), 1, "{}", back.join("\n"));
    assert!(back[0].contains("cluster reachable again"), "{back:?}");
}
