//! Idle pods first, with a real dev server and real SDK workers, each on a host name of its own
//! (`unshare --uts`), against a recording API server over loopback HTTP (a real kube client):
//! before a scale-down the agent lists the target's pods by its `/scale` selector and sets
//! `controller.kubernetes.io/pod-deletion-cost` on those whose cost changes (busy: its slots in
//! use, idle: 0), and only then writes the lower count. Nothing is written to a pod whose cost
//! is already right, and nothing at all when no pod is a worker host.

mod support;

use axum::extract::Request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::workers::{start, worker_on};
use support::{DevServer, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::report::state::{BusyPod, ScalerView};
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;

const SCALE: &str = "/apis/apps/v1/namespaces/default/deployments/idle-worker/scale";
const PODS: &str = "/api/v1/namespaces/default/pods";
const COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// One request as the API server got it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: Option<String>,
    body: Option<Value>,
}

/// A Deployment `idle-worker` (selector `app=idle`) and its pods, each with its annotations.
#[derive(Clone, Default)]
struct ApiServer {
    replicas: Arc<AtomicU64>,
    pods: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn partial(name: &str, annotations: &BTreeMap<String, String>) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": "idle"},
                        "annotations": annotations}})
}

impl ApiServer {
    async fn serve(self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().fallback(move |req: Request| {
            let api = self.clone();
            async move { api.answer(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        port
    }

    async fn answer(&self, req: Request) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let body: Option<Value> =
            (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap());
        let path = parts.uri.path().to_string();
        self.seen.lock().unwrap().push(Seen {
            method: parts.method.to_string(),
            path: path.clone(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string()),
            body: body.clone(),
        });
        let scale = |n: u64| {
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "idle-worker", "namespace": "default"},
                   "spec": {"replicas": n}, "status": {"replicas": n, "selector": "app=idle"}})
        };
        let reply = match (parts.method.as_str(), path.as_str()) {
            ("GET", "/apis/apps/v1") => json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
                "resources": [
                    {"name": "deployments", "singularName": "deployment", "namespaced": true,
                     "kind": "Deployment", "verbs": ["get", "patch"]},
                    {"name": "deployments/scale", "singularName": "", "namespaced": true,
                     "group": "autoscaling", "version": "v1", "kind": "Scale",
                     "verbs": ["get", "patch", "update"]}]
            }),
            ("GET", SCALE) => scale(self.replicas.load(Ordering::SeqCst)),
            ("PATCH", SCALE) => {
                let n = body.unwrap()["spec"]["replicas"].as_u64().unwrap();
                self.replicas.store(n, Ordering::SeqCst);
                scale(n)
            }
            ("GET", PODS) => {
                let pods = self.pods.lock().unwrap();
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {"resourceVersion": "1"},
                       "items": pods.iter().map(|(n, a)| partial(n, a)).collect::<Vec<_>>()})
            }
            ("PATCH", p) if p.starts_with(PODS) => {
                let name = p.rsplit('/').next().unwrap().to_string();
                let mut pods = self.pods.lock().unwrap();
                let annotations = pods.get_mut(&name).expect("a pod that exists");
                for (k, v) in body.unwrap()["metadata"]["annotations"]
                    .as_object()
                    .unwrap()
                {
                    annotations.insert(k.clone(), v.as_str().unwrap().to_string());
                }
                partial(&name, annotations)
            }
            other => panic!("unexpected request {other:?}"),
        };
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap()
    }

    fn set_pods(&self, names: &[(&str, Option<&str>)]) {
        let mut pods = self.pods.lock().unwrap();
        pods.clear();
        for (n, cost) in names {
            let mut a = BTreeMap::new();
            if let Some(c) = cost {
                a.insert(COST.to_string(), c.to_string());
            }
            pods.insert(n.to_string(), a);
        }
    }

    fn cost(&self, pod: &str) -> Option<String> {
        self.pods.lock().unwrap()[pod].get(COST).cloned()
    }

    /// Every request after the first `from`: (method, path), and the pod patches' bodies.
    fn since(&self, from: usize) -> Vec<Seen> {
        self.seen.lock().unwrap()[from..].to_vec()
    }

    fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }
}

/// The writes among `seen`: pod patches as (pod, cost), the scale patch as ("scale", n).
fn writes(seen: &[Seen]) -> Vec<(String, String)> {
    seen.iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| {
            assert_eq!(
                s.content_type.as_deref(),
                Some("application/merge-patch+json"),
                "{s:?}"
            );
            let body = s.body.clone().unwrap();
            if s.path == SCALE {
                assert_eq!(
                    body,
                    json!({"spec": {"replicas": body["spec"]["replicas"]}})
                );
                ("scale".to_string(), body["spec"]["replicas"].to_string())
            } else {
                // Only the one annotation, nothing else of the pod.
                let cost = body["metadata"]["annotations"][COST]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert_eq!(
                    body,
                    json!({"metadata": {"annotations": {COST: cost}}}),
                    "{s:?}"
                );
                (s.path.rsplit('/').next().unwrap().to_string(), cost)
            }
        })
        .collect()
}

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

    let api = ApiServer::default();
    api.replicas.store(1, Ordering::SeqCst);
    // w-c still carries a cost from an earlier scale-down, when it was busy.
    api.set_pods(&[("w-a", None), ("w-b", None), ("w-c", Some("3"))]);
    let port = api.clone().serve().await;
    let deadline = Duration::from_secs(2);
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = temporal_autoscaler::deadline::client(config, deadline).unwrap();
    let ctx = Context::new(
        Targets::with_clusters(
            Arc::new(Clusters::new(Some(client), &[]).with_timeout(deadline)),
            false,
        ),
        Guard::alone(),
    );
    let dir = tmp.path().join("scalers");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("idle.yaml"),
        support::scaler_yaml(
            "idle",
            &server.endpoint(),
            queue,
            0,
            "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
        )
        .replace("queueTypes: workflow\n", "queueTypes: workflow,activity\n"),
    )
    .unwrap();
    let _source = start_dir_source(ctx.clone(), dir.clone()).await.unwrap();
    let key = ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: "idle".into(),
    };
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
    assert!(
        writes(&api.since(0)).is_empty(),
        "nothing written before a scale-down"
    );

    // Scaled up by hand to 3: the agent brings it back to 1 (the one busy host), idle pods
    // first.
    let from = api.count();
    api.replicas.store(3, Ordering::SeqCst);
    let v = within(
        30,
        "back to 1",
        ctx.state.wait_for(&key, |v| {
            v.current_replicas == Some(1) && !v.scale_down.is_empty()
        }),
    )
    .await;
    let seen = api.since(from);
    let list = seen
        .iter()
        .find(|s| s.method == "GET" && s.path == PODS)
        .expect("the pods listed");
    assert!(list.query.contains("labelSelector=app%3Didle"), "{list:?}");
    let w = writes(&seen);
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
            v.current_replicas == Some(1) && writes(&api.since(from)).len() == 1
        }),
    )
    .await;
    assert_eq!(
        writes(&api.since(from)),
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
        writes(&api.since(from)),
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
            writes(&api.since(from)) == [("scale".to_string(), "1".to_string())]
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
