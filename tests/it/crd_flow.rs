//! TemporalScaler custom resources through the whole pipeline, with a real Temporal dev server
//! and a recording mock API server: watch → decide → scale → status patch, invalid objects,
//! target conflicts, deletion, and no status rewrite when nothing changed.

use crate::support;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use support::{DevServer, within};
use temporal_autoscaler::agent::{Context, TaskGuard, start_sources};
use temporal_autoscaler::guard::Guard;
use temporal_autoscaler::report::status::StatusWriter;
use temporal_autoscaler::source::{ScalerKey, SourceKind, crd};
use temporal_autoscaler::target::Targets;
use tokio::sync::watch;
use tower_test::mock::SendResponse;

const TS: &str = "/apis/scaling.example.com/v1alpha1/temporalscalers";

#[derive(Clone, Debug)]
struct Recorded {
    method: Method,
    uri: String,
    content_type: Option<String>,
    body: Option<Value>,
}

impl Recorded {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or_default()
    }
}

/// A mock API server that answers like a real one and records every request.
#[derive(Clone)]
struct ApiServer {
    log: Arc<Mutex<Vec<Recorded>>>,
    changed: Arc<watch::Sender<usize>>,
    /// Open watch requests, answered by the test.
    watches: Arc<Mutex<Vec<SendResponse<Response<Body>>>>>,
    replicas: Arc<Mutex<HashMap<String, u32>>>,
    /// Unreachable: every request fails at the transport (a remote cluster's outage).
    down: Arc<std::sync::atomic::AtomicBool>,
}

fn respond(status: u16, v: Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&v).unwrap()))
        .unwrap()
}

fn scale(name: &str, replicas: u32) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
           "metadata": {"name": name, "namespace": "default", "resourceVersion": "7"},
           "spec": {"replicas": replicas}, "status": {"replicas": replicas}})
}

fn apps_v1() -> Value {
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
        {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment", "verbs": ["get", "list", "patch", "update", "watch"]},
        {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]}
    ]})
}

fn scaler(name: &str, uid: &str, target: &str, trigger: Value) -> Value {
    json!({
        "apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScaler",
        "metadata": {"name": name, "namespace": "default", "uid": uid, "generation": 1, "resourceVersion": "100",
                     "creationTimestamp": "2026-11-26T00:00:00Z"},
        "spec": {"scaleTargetRef": {"name": target}, "pollingInterval": 1, "minReplicaCount": 1, "maxReplicaCount": 10,
                 "triggers": [{"type": "temporal", "metadata": trigger}]}
    })
}

impl ApiServer {
    fn start(
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        objects: Vec<Value>,
    ) -> ApiServer {
        let server = ApiServer {
            log: Arc::default(),
            changed: Arc::new(watch::channel(0).0),
            watches: Arc::default(),
            replicas: Arc::default(),
            down: Arc::default(),
        };
        let s = server.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let (parts, body) = req.into_parts();
                let bytes = body.collect().await.unwrap().to_bytes();
                let rec = Recorded {
                    method: parts.method.clone(),
                    uri: parts.uri.to_string(),
                    content_type: parts
                        .headers
                        .get("content-type")
                        .map(|v| v.to_str().unwrap().to_string()),
                    body: (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap()),
                };
                let path = rec.path().to_string();
                let is_watch = rec.uri.contains("watch=true");
                s.log.lock().unwrap().push(rec.clone());
                if s.down.load(std::sync::atomic::Ordering::SeqCst) {
                    send.send_error(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "connection refused",
                    ));
                    s.changed.send_modify(|n| *n += 1);
                    continue;
                }
                match (&rec.method, path.as_str()) {
                    (&Method::GET, "/apis/apps/v1") => send.send_response(respond(200, apps_v1())),
                    (&Method::GET, TS) if is_watch => s.watches.lock().unwrap().push(send),
                    (&Method::GET, TS) => send.send_response(respond(200, json!({
                        "apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScalerList",
                        "metadata": {"resourceVersion": "100"}, "items": objects
                    }))),
                    (&Method::GET, p) if p.ends_with("/scale") => {
                        let name = p.split('/').nth_back(1).unwrap().to_string();
                        let n = *s.replicas.lock().unwrap().entry(name.clone()).or_insert(1);
                        send.send_response(respond(200, scale(&name, n)));
                    }
                    (&Method::PATCH, p) if p.ends_with("/scale") => {
                        let name = p.split('/').nth_back(1).unwrap().to_string();
                        let n = rec.body.as_ref().unwrap()["spec"]["replicas"].as_u64().unwrap() as u32;
                        s.replicas.lock().unwrap().insert(name.clone(), n);
                        send.send_response(respond(200, scale(&name, n)));
                    }
                    (&Method::PATCH, p) if p.ends_with("/status") => {
                        let mut obj = rec.body.clone().unwrap();
                        obj["metadata"] = json!({"name": p.split('/').nth_back(1).unwrap(), "namespace": "default"});
                        send.send_response(respond(200, obj));
                    }
                    (&Method::POST, "/apis/events.k8s.io/v1/namespaces/default/events") => {
                        send.send_response(respond(201, rec.body.clone().unwrap()));
                    }
                    _ => send.send_response(respond(404, json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}))),
                }
                s.changed.send_modify(|n| *n += 1);
            }
        });
        server
    }

    fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }

    /// Wait (bounded) until the recorded requests satisfy `pred`.
    async fn wait(&self, what: &str, pred: impl Fn(&[Recorded]) -> bool) -> Vec<Recorded> {
        let mut rx = self.changed.subscribe();
        within(30, what, async {
            loop {
                let log = self.requests();
                if pred(&log) {
                    return log;
                }
                rx.changed().await.unwrap();
            }
        })
        .await
    }
}

fn status_writes<'a>(log: &'a [Recorded], name: &str) -> Vec<&'a Recorded> {
    let path = format!(
        "/apis/scaling.example.com/v1alpha1/namespaces/default/temporalscalers/{name}/status"
    );
    log.iter()
        .filter(|r| r.method == Method::PATCH && r.path() == path)
        .collect()
}

fn scale_gets(log: &[Recorded], target: &str) -> usize {
    log.iter()
        .filter(|r| {
            r.method == Method::GET
                && r.path()
                    == format!("/apis/apps/v1/namespaces/default/deployments/{target}/scale")
        })
        .count()
}

fn events<'a>(log: &'a [Recorded], name: &str, reason: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|r| r.method == Method::POST && r.path().ends_with("/events"))
        .filter_map(|r| r.body.as_ref())
        .filter(|b| b["regarding"]["name"] == name && b["reason"] == reason)
        .collect()
}

fn condition<'a>(status_write: &'a Recorded, type_: &str) -> &'a Value {
    let conds = status_write.body.as_ref().unwrap()["status"]["conditions"]
        .as_array()
        .unwrap();
    conds
        .iter()
        .find(|c| c["type"] == type_)
        .unwrap_or_else(|| panic!("no {type_} condition"))
}

/// The agent with the CR source, the status writer and a kube target, all on the mock API.
async fn agent(objects: Vec<Value>) -> (ApiServer, Arc<Context>, TaskGuard) {
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api = ApiServer::start(handle, objects);
    let client = kube::Client::new(svc, "default");
    let guard = Guard::alone();
    let sink = StatusWriter::spawn(client.clone(), guard.clone(), "agent-1".into());
    let ctx = Context::with_status(Targets::kube(client.clone(), false), guard, Some(sink));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(crd::run(client, None, tx));
    let sources = start_sources(ctx.clone(), None, Some(rx)).await.unwrap();
    (api, ctx, sources)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_resources_scale_report_status_and_conflict_through_the_same_pipeline() {
    let server = DevServer::start().await;
    server.start_workflows("q-cr", 12).await;
    let trig = |queue: &str, target_size: &str| json!({"endpoint": server.endpoint(), "taskQueue": queue, "queueTypes": "workflow", "targetQueueSize": target_size});
    let good = scaler("good", "uid-good", "good-worker", trig("q-cr", "5"));
    let objects_bad = scaler("bad", "uid-bad", "bad-worker", trig("q-cr", "zero"));
    let objects = vec![
        good.clone(),
        objects_bad.clone(),
        scaler("dup", "uid-dup", "good-worker", trig("q-cr", "5")),
        scaler("idle", "uid-idle", "idle-worker", trig("q-idle", "5")),
    ];
    let (api, ctx, _sources) = agent(objects).await;
    let key = |name: &str| ScalerKey {
        source: SourceKind::Crd,
        namespace: "default".into(),
        name: name.into(),
    };

    // watch → decide → scale → status patch.
    let log = api
        .wait("good scaled and its status written", |log| {
            status_writes(log, "good")
                .iter()
                .any(|w| w.body.as_ref().unwrap()["status"]["currentReplicas"] == 3)
        })
        .await;
    let list = log.iter().find(|r| r.path() == TS).unwrap();
    assert_eq!(
        list.method,
        Method::GET,
        "the watch lists TemporalScalers in all namespaces first"
    );
    let patch = log
        .iter()
        .find(|r| {
            r.method == Method::PATCH
                && r.path() == "/apis/apps/v1/namespaces/default/deployments/good-worker/scale"
        })
        .unwrap();
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert_eq!(patch.body, Some(json!({"spec": {"replicas": 3}})));
    let write = *status_writes(&log, "good").last().unwrap();
    assert_eq!(
        write.content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert!(
        write.uri.contains("fieldManager=temporal-autoscaler") && write.uri.contains("force=true"),
        "{}",
        write.uri
    );
    let body = write.body.as_ref().unwrap();
    assert_eq!(
        (body["apiVersion"].as_str(), body["kind"].as_str()),
        (Some("scaling.example.com/v1alpha1"), Some("TemporalScaler"))
    );
    let st = &body["status"];
    assert_eq!(
        (
            st["currentReplicas"].as_i64(),
            st["desiredReplicas"].as_i64(),
            st["observedGeneration"].as_i64()
        ),
        (Some(3), Some(3), Some(1))
    );
    assert!(st["lastScaleTime"].is_string());
    assert_eq!(st["triggers"][0]["name"], "trigger0");
    assert_eq!(st["triggers"][0]["backlog"], 12);
    assert!(st["triggers"][0]["backlogAgeSeconds"].is_number());
    assert_eq!(
        (
            condition(write, "Ready")["status"].as_str(),
            condition(write, "Ready")["reason"].as_str()
        ),
        (Some("True"), Some("ScalerReady"))
    );
    assert_eq!(condition(write, "Active")["status"], "True");
    assert_eq!(condition(write, "Fallback")["status"], "False");
    assert_eq!(condition(write, "Paused")["status"], "False");
    let scaled = events(&log, "good", "ScaledUp");
    assert_eq!(scaled.len(), 1, "{scaled:?}");
    assert_eq!(scaled[0]["type"], "Normal");
    assert_eq!(scaled[0]["regarding"]["uid"], "uid-good");
    assert_eq!(scaled[0]["reportingInstance"], "agent-1");
    assert!(
        scaled[0]["note"].as_str().unwrap().contains("from 1 to 3"),
        "{}",
        scaled[0]["note"]
    );

    // An invalid object: Ready=False with the field error, a Warning event, and no scaling.
    let log = api
        .wait("bad reported", |log| {
            !status_writes(log, "bad").is_empty() && !events(log, "bad", "InvalidSpec").is_empty()
        })
        .await;
    let bad = status_writes(&log, "bad")[0];
    let ready = condition(bad, "Ready");
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("False"), Some("InvalidSpec"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("spec.triggers[0].metadata.targetQueueSize: got \"zero\""),
        "{ready}"
    );
    assert_eq!(scale_gets(&log, "bad-worker"), 0);

    // A conflict: the later CR for the same target is rejected, naming the other scaler.
    let log = api
        .wait("dup rejected", |log| !status_writes(log, "dup").is_empty())
        .await;
    let ready = condition(status_writes(&log, "dup")[0], "Ready");
    assert_eq!(ready["reason"], "TargetConflict");
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("already scaled by crd:default/good"),
        "{ready}"
    );
    assert!(!events(&log, "dup", "TargetConflict").is_empty());

    // Nothing changed on `idle` (empty queue): after its first write, ticks do not rewrite it.
    let first = api
        .wait("idle written once", |log| {
            status_writes(log, "idle").len() == 1
        })
        .await;
    let ticks = scale_gets(&first, "idle-worker");
    let log = api
        .wait("three more idle ticks", |log| {
            scale_gets(log, "idle-worker") >= ticks + 3
        })
        .await;
    assert_eq!(
        status_writes(&log, "idle").len(),
        1,
        "status rewritten although nothing changed"
    );

    // Deletion: the watch says `bad`, then `good`, are gone. The first re-checks `dup` (still in
    // conflict: reported once only); the second stops `good`'s scaler and `dup` takes the target.
    let watch = api
        .wait("watch open", |_| !api.watches.lock().unwrap().is_empty())
        .await;
    drop(watch);
    let send = api.watches.lock().unwrap().remove(0);
    let mut deleted_bad = objects_bad.clone();
    deleted_bad["metadata"]["resourceVersion"] = json!("101");
    let mut deleted = good.clone();
    deleted["metadata"]["resourceVersion"] = json!("102");
    let body: Vec<u8> = [deleted_bad, deleted]
        .into_iter()
        .flat_map(|o| {
            [
                serde_json::to_vec(&json!({"type": "DELETED", "object": o})).unwrap(),
                b"\n".to_vec(),
            ]
            .concat()
        })
        .collect();
    send.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(body))
            .unwrap(),
    );
    within(
        10,
        "dup takes over",
        ctx.state.wait_for(&key("dup"), |v| {
            v.error.is_none() && v.desired_replicas == Some(3)
        }),
    )
    .await;
    assert!(ctx.state.get(&key("good")).is_none());
    let log = api
        .wait("dup ready", |log| {
            status_writes(log, "dup")
                .iter()
                .any(|w| condition(w, "Ready")["status"] == "True")
        })
        .await;
    let unexpected: Vec<_> = log
        .iter()
        .filter(|r| {
            r.method == Method::GET && r.path().contains("/namespaces/default/temporalscalers/")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "the agent never reads single objects: {unexpected:?}"
    );
    assert_eq!(
        events(&log, "dup", "TargetConflict").len(),
        1,
        "a standing conflict is reported once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_generation_restarts_the_scaler_and_a_status_only_change_does_nothing() {
    let server = DevServer::start().await;
    server.start_workflows("q-gen", 12).await;
    let mut obj = scaler(
        "gen",
        "uid-gen",
        "gen-worker",
        json!({"endpoint": server.endpoint(), "taskQueue": "q-gen", "queueTypes": "workflow"}),
    );
    // One tick at start, then none for an hour: any other tick is a timer restart.
    obj["spec"]["pollingInterval"] = json!(3600);
    let (api, _ctx, _sources) = agent(vec![obj.clone()]).await;

    let log = api
        .wait("first status", |log| {
            !status_writes(log, "gen").is_empty() && !api.watches.lock().unwrap().is_empty()
        })
        .await;
    assert_eq!(scale_gets(&log, "gen-worker"), 1);
    assert_eq!(
        status_writes(&log, "gen")[0].body.as_ref().unwrap()["status"]["observedGeneration"],
        1
    );

    // Two watch events: our own status write coming back (same generation), then an edit.
    let mut status_only = obj.clone();
    status_only["metadata"]["resourceVersion"] = json!("101");
    status_only["status"] = status_writes(&log, "gen")[0].body.as_ref().unwrap()["status"].clone();
    let mut edited = status_only.clone();
    edited["metadata"]["resourceVersion"] = json!("102");
    edited["metadata"]["generation"] = json!(2);
    edited["spec"]["triggers"][0]["metadata"]["targetQueueSize"] = json!("2");
    let body: Vec<u8> = [
        json!({"type": "MODIFIED", "object": status_only}),
        json!({"type": "MODIFIED", "object": edited}),
    ]
    .iter()
    .flat_map(|e| [serde_json::to_vec(e).unwrap(), b"\n".to_vec()].concat())
    .collect();
    let send = api.watches.lock().unwrap().remove(0);
    send.send_response(
        Response::builder()
            .status(200)
            .body(Body::from(body))
            .unwrap(),
    );

    let log = api
        .wait("status of generation 2", |log| {
            status_writes(log, "gen")
                .iter()
                .any(|w| w.body.as_ref().unwrap()["status"]["observedGeneration"] == 2)
        })
        .await;
    let last = status_writes(&log, "gen")
        .last()
        .unwrap()
        .body
        .clone()
        .unwrap();
    // 12 / 2 = 6 under the new generation, limited to 5 by the HPA's default scale-up policy
    // (+4 pods per 15 s from the period's start count, 1): the scale event of the first
    // generation is still in the scaler's history.
    assert_eq!(last["status"]["desiredReplicas"], 5);
    assert_eq!(
        scale_gets(&log, "gen-worker"),
        2,
        "one tick for the new generation, none for the status-only change"
    );
}

/// A TemporalScaler placed over the home cluster and a remote one (a second recording API
/// server): the status patch carries each cluster's share, count and reachability and the
/// ClusterUnreachable condition; the remote cluster sees nothing but discovery and its
/// `/scale` (events and status stay home); its outage turns the condition on and moves its
/// share home, with a ClusterUnreachable event on the TemporalScaler.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_placed_custom_resource_reports_each_cluster_in_its_status() {
    let server = DevServer::start().await;
    server.start_workflows("q-spread", 12).await;
    let mut cr = scaler(
        "spread",
        "uid-spread",
        "spread-worker",
        json!({"endpoint": server.endpoint(), "taskQueue": "q-spread", "queueTypes": "workflow", "targetQueueSize": "2"}),
    );
    cr["spec"]["placement"] =
        json!({"clusters": [{"name": "local", "weight": 2}, {"name": "eu", "weight": 1}]});
    cr["spec"]["cooldownPeriod"] = json!(0);
    let (svc, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let home_api = ApiServer::start(handle, vec![cr]);
    let (eu_svc, eu_handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let eu_api = ApiServer::start(eu_handle, vec![]);
    let client = kube::Client::new(svc, "default");
    let clusters = temporal_autoscaler::clusters::Clusters::fixed(
        Some(client.clone()),
        [("eu".to_string(), kube::Client::new(eu_svc, "default"))],
    );
    let guard = Guard::alone();
    let sink = StatusWriter::spawn(client.clone(), guard.clone(), "agent-1".into());
    let ctx = Context::with_status(
        Targets::with_clusters(Arc::new(clusters), false),
        guard,
        Some(sink),
    );
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(crd::run(client, None, tx));
    let _sources = start_sources(ctx.clone(), None, Some(rx)).await.unwrap();

    let clusters_of = |r: &Recorded| r.body.as_ref().unwrap()["status"]["clusters"].clone();
    let log = home_api
        .wait("a status with both shares", |log| {
            status_writes(log, "spread")
                .last()
                .is_some_and(|w| clusters_of(w)[1]["currentReplicas"] == 2)
        })
        .await;
    let w = *status_writes(&log, "spread").last().unwrap();
    assert_eq!(
        clusters_of(w),
        json!([
            {"name": "local", "share": 4, "currentReplicas": 4, "reachable": true},
            {"name": "eu", "share": 2, "currentReplicas": 2, "reachable": true}
        ])
    );
    assert_eq!(w.body.as_ref().unwrap()["status"]["currentReplicas"], 6);
    let c = condition(w, "ClusterUnreachable");
    assert_eq!(
        (&c["status"], &c["reason"]),
        (&json!("False"), &json!("AllClustersReachable"))
    );
    assert_eq!(home_api.replicas.lock().unwrap()["spread-worker"], 4);
    assert_eq!(eu_api.replicas.lock().unwrap()["spread-worker"], 2);

    eu_api.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let log = home_api
        .wait("ClusterUnreachable and all 6 home", |log| {
            status_writes(log, "spread").last().is_some_and(|w| {
                condition(w, "ClusterUnreachable")["status"] == "True"
                    && clusters_of(w)[0]["currentReplicas"] == 6
            })
        })
        .await;
    let w = *status_writes(&log, "spread").last().unwrap();
    let c = condition(w, "ClusterUnreachable");
    let message = c["message"].as_str().unwrap();
    assert!(
        message.starts_with("eu: default/Deployment/spread-worker in cluster eu: "),
        "{message}"
    );
    assert_eq!(clusters_of(w)[1]["reachable"], false);
    assert_eq!(clusters_of(w)[1]["share"], 0);
    assert_eq!(events(&log, "spread", "ClusterUnreachable").len(), 1);
    let scaled = events(&log, "spread", "ScaledUp");
    assert!(
        scaled
            .iter()
            .any(|e| e["note"].as_str().unwrap().ends_with(": local 1→4, eu 1→2")),
        "{scaled:?}"
    );
    // The remote cluster: discovery, its /scale, and the list of its HPAs (never fight
    // another autoscaler) only.
    let scale = "/apis/apps/v1/namespaces/default/deployments/spread-worker/scale";
    let hpas = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers";
    for r in eu_api.requests() {
        let ok = match (&r.method, r.path()) {
            (&Method::GET, p) => p == "/apis/apps/v1" || p == scale || p == hpas,
            (&Method::PATCH, p) => {
                p == scale && r.content_type.as_deref() == Some("application/merge-patch+json")
            }
            _ => false,
        };
        assert!(ok, "unexpected request in eu: {r:?}");
    }
}
