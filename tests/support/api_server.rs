//! A recording Kubernetes API server over loopback HTTP, for a real kube client: one
//! Deployment `<name>-worker` (selector `app=<name>`) with its `/scale`, its pods (metadata
//! lists and merge patches of their annotations), the namespace's HorizontalPodAutoscalers, and
//! (when set) the Deployment itself with a pod template and the ConfigMaps its env reads.
//! Every request is recorded; anything else fails the test. While `hung`, requests are
//! recorded and then held unanswered until it ends (as a paused API server answers its backlog
//! when resumed, long after the client gave up).

use axum::extract::Request;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const PODS: &str = "/api/v1/namespaces/default/pods";
pub const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
pub const CONFIG_MAPS: &str = "/api/v1/namespaces/default/configmaps/";
pub const COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// One request as the API server got it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    pub body: Option<Value>,
    /// Sent while the server was hung.
    pub hung: bool,
}

#[derive(Clone, Default)]
pub struct ApiServer {
    name: String,
    pub replicas: Arc<AtomicU64>,
    /// Each pod's annotations, by name.
    pub pods: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
    /// HPAs as (name, the Deployment they scale).
    pub hpas: Arc<Mutex<Vec<(String, String)>>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    /// Takes requests and answers none until cleared.
    pub hung: Arc<AtomicBool>,
    /// The Deployment's pod template spec (`GET` of the Deployment), when set.
    pub pod_spec: Arc<Mutex<Option<Value>>>,
    /// ConfigMaps' data, by name (`GET`; 404 for others).
    pub config_maps: Arc<Mutex<BTreeMap<String, BTreeMap<String, String>>>>,
}

fn partial(app: &str, name: &str, annotations: &BTreeMap<String, String>) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "namespace": "default", "labels": {"app": app},
                        "annotations": annotations}})
}

impl ApiServer {
    /// The API server of Deployment `<name>-worker`, at `replicas`.
    pub fn new(name: &str, replicas: u64) -> ApiServer {
        let api = ApiServer {
            name: name.into(),
            ..ApiServer::default()
        };
        api.replicas.store(replicas, Ordering::SeqCst);
        api
    }

    pub fn scale_path(&self) -> String {
        format!(
            "/apis/apps/v1/namespaces/default/deployments/{}-worker/scale",
            self.name
        )
    }

    /// An agent alone (always the leader) whose only cluster is this API server, every call
    /// under `deadline`.
    pub async fn agent(
        &self,
        deadline: std::time::Duration,
    ) -> Arc<temporal_autoscaler::agent::Context> {
        use temporal_autoscaler::clusters::Clusters;
        let client = self.client(deadline).await;
        temporal_autoscaler::agent::Context::new(
            temporal_autoscaler::target::Targets::with_clusters(
                Arc::new(Clusters::new(Some(client), &[]).with_timeout(deadline)),
                false,
            ),
            temporal_autoscaler::guard::Guard::alone(),
        )
    }

    /// Serve it on a loopback port; a client with `deadline` on every request.
    pub async fn client(&self, deadline: std::time::Duration) -> kube::Client {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let api = self.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let api = api.clone();
            async move { api.answer(req).await }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
        temporal_autoscaler::deadline::client(config, deadline).unwrap()
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
            hung: self.hung.load(Ordering::SeqCst),
        });
        while self.hung.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let (deployment, app) = (format!("{}-worker", self.name), self.name.clone());
        let scale = |n: u64| {
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": deployment, "namespace": "default"},
                   "spec": {"replicas": n}, "status": {"replicas": n, "selector": format!("app={app}")}})
        };
        let scale_path = self.scale_path();
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
            ("GET", p) if p == scale_path => scale(self.replicas.load(Ordering::SeqCst)),
            ("GET", p) if Some(p) == scale_path.strip_suffix("/scale") => {
                let spec = self
                    .pod_spec
                    .lock()
                    .unwrap()
                    .clone()
                    .expect("a pod template");
                json!({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": deployment, "namespace": "default"},
                       "spec": {"replicas": self.replicas.load(Ordering::SeqCst),
                                "selector": {"matchLabels": {"app": app}},
                                "template": {"metadata": {"labels": {"app": app}}, "spec": spec}}})
            }
            ("GET", p) if p.starts_with(CONFIG_MAPS) => {
                let name = p.rsplit('/').next().unwrap();
                match self.config_maps.lock().unwrap().get(name) {
                    Some(data) => json!({"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": name, "namespace": "default"},
                                         "data": data}),
                    None => {
                        return axum::response::Response::builder()
                            .status(404)
                            .header("content-type", "application/json")
                            .body(axum::body::Body::from(
                                serde_json::to_vec(&json!({
                                "kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "reason": "NotFound", "code": 404,
                                "message": format!("configmaps \"{name}\" not found")}))
                                .unwrap(),
                            ))
                            .unwrap();
                    }
                }
            }
            ("PATCH", p) if p == scale_path => {
                let n = body.unwrap()["spec"]["replicas"].as_u64().unwrap();
                self.replicas.store(n, Ordering::SeqCst);
                scale(n)
            }
            ("GET", PODS) => {
                let pods = self.pods.lock().unwrap();
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
                       "metadata": {"resourceVersion": "1"},
                       "items": pods.iter().map(|(n, a)| partial(&app, n, a)).collect::<Vec<_>>()})
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
                partial(&app, &name, annotations)
            }
            ("GET", HPAS) => {
                let hpas = self.hpas.lock().unwrap();
                json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscalerList",
                       "metadata": {"resourceVersion": "1"},
                       "items": hpas.iter().map(|(n, target)| json!({
                           "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                           "metadata": {"name": n, "namespace": "default"},
                           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                                    "maxReplicas": 10}
                       })).collect::<Vec<_>>()})
            }
            other => panic!("unexpected request {other:?}"),
        };
        axum::response::Response::builder()
            .header("content-type", "application/json")
            .body(axum::body::Body::from(serde_json::to_vec(&reply).unwrap()))
            .unwrap()
    }

    pub fn set_pods(&self, names: &[(&str, Option<&str>)]) {
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

    pub fn cost(&self, pod: &str) -> Option<String> {
        self.pods.lock().unwrap()[pod].get(COST).cloned()
    }

    /// Every request after the first `from`.
    pub fn since(&self, from: usize) -> Vec<Seen> {
        self.seen.lock().unwrap()[from..].to_vec()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The writes among `seen`: pod patches as (pod, cost), the scale patch as ("scale", n);
    /// each checked to be a merge patch of that one field.
    pub fn writes(&self, seen: &[Seen]) -> Vec<(String, String)> {
        let scale_path = self.scale_path();
        seen.iter()
            .filter(|s| s.method == "PATCH")
            .map(|s| {
                assert_eq!(
                    s.content_type.as_deref(),
                    Some("application/merge-patch+json"),
                    "{s:?}"
                );
                let body = s.body.clone().unwrap();
                if s.path == scale_path {
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
}
