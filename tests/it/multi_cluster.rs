//! One scaler over several clusters (`spec.placement`), against mock API servers that record
//! every request (method, path, content type, body; and for the kubeconfig cluster, the bearer
//! token), with a real Temporal dev server behind the trigger: the split, a cluster's share
//! moving when it is unreachable and coming back without a dip, a remote API server that hangs
//! (behind a loopback proxy that swallows its connections) failing over on time, Failover with
//! a target missing in one cluster, the lease guarding remote writes, and a rotated kubeconfig.

use crate::support;

use http::{Method, Request, Response};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use support::{DevServer, ProxyMode, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::clusters::Clusters;
use temporal_autoscaler::guard::{Guard, LeaderState};
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::state::ScalerView;
use temporal_autoscaler::target::Targets;

const SCALE_PATH: &str = "/apis/apps/v1/namespaces/default/deployments/orders-worker/scale";
/// The namespace's HPAs, listed (never fight another autoscaler): none here.
const HPAS: &str = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers?";
const MERGE_PATCH: &str = "application/merge-patch+json";

fn key() -> ScalerKey {
    ScalerKey {
        source: SourceKind::Dir,
        namespace: "default".into(),
        name: "orders".into(),
    }
}

fn apps_v1() -> Value {
    json!({
        "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1",
        "resources": [
            {"name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
             "verbs": ["create","delete","deletecollection","get","list","patch","update","watch"]},
            {"name": "deployments/scale", "singularName": "", "namespaced": true, "group": "autoscaling",
             "version": "v1", "kind": "Scale", "verbs": ["get","patch","update"]}
        ]
    })
}

fn scale(replicas: u32) -> Value {
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": "orders-worker", "namespace": "default", "resourceVersion": "7"},
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "selector": "app=orders-worker"}
    })
}

fn not_found() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
           "message": "deployments.apps \"orders-worker\" not found", "reason": "NotFound", "code": 404})
}

/// One request as a mock API server received it.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    method: Method,
    uri: String,
    content_type: Option<String>,
    body: Option<Value>,
    token: Option<String>,
    /// Sent while the server was down (it failed at the transport).
    down: bool,
}

/// A cluster's API server with one Deployment (`orders-worker`): discovery, and GET / merge
/// PATCH of its `/scale`. Anything else fails the test (see [`Api::assert_only_scale_calls`]).
#[derive(Clone)]
struct Api {
    name: &'static str,
    replicas: Arc<AtomicU32>,
    /// Unreachable: every request fails at the transport.
    down: Arc<AtomicBool>,
    /// The Deployment does not exist here (404).
    missing: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Each write as (cluster, replicas written, every cluster's replicas after it).
    timeline: Arc<Mutex<Vec<(&'static str, u32)>>>,
}

impl Api {
    fn new(name: &'static str, timeline: &Arc<Mutex<Vec<(&'static str, u32)>>>) -> Api {
        Api {
            name,
            replicas: Arc::default(),
            down: Arc::default(),
            missing: Arc::default(),
            seen: Arc::default(),
            timeline: timeline.clone(),
        }
    }

    fn replicas(&self) -> u32 {
        self.replicas.load(Ordering::SeqCst)
    }

    /// Answer one request: (status, body), or `None` for a transport failure.
    fn answer(&self, s: &Seen) -> Option<(u16, Value)> {
        if self.down.load(Ordering::SeqCst) {
            return None;
        }
        let scale_path = s.uri.split('?').next() == Some(SCALE_PATH);
        Some(match (&s.method, s.uri.as_str()) {
            (&Method::GET, "/apis/apps/v1") => (200, apps_v1()),
            (&Method::GET, HPAS) => (
                200,
                json!({"kind": "HorizontalPodAutoscalerList", "apiVersion": "autoscaling/v2",
                       "metadata": {}, "items": []}),
            ),
            _ if scale_path && self.missing.load(Ordering::SeqCst) => (404, not_found()),
            (&Method::GET, SCALE_PATH) => (200, scale(self.replicas())),
            (&Method::PATCH, _) if scale_path => {
                let n = s.body.as_ref().expect("a PATCH body")["spec"]["replicas"]
                    .as_u64()
                    .expect("spec.replicas") as u32;
                self.replicas.store(n, Ordering::SeqCst);
                self.timeline.lock().unwrap().push((self.name, n));
                (200, scale(n))
            }
            _ => (
                500,
                json!({"kind": "Status", "code": 500, "message": "unexpected"}),
            ),
        })
    }

    /// Serve a tower-test mock client.
    fn client(&self) -> kube::Client {
        let (svc, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let api = self.clone();
        tokio::spawn(async move {
            while let Some((req, send)) = handle.next_request().await {
                let mut s = seen(req).await;
                s.down = api.down.load(Ordering::SeqCst);
                api.seen.lock().unwrap().push(s.clone());
                match api.answer(&s) {
                    None => send.send_error(std::io::Error::new(
                        std::io::ErrorKind::ConnectionRefused,
                        "connection refused",
                    )),
                    Some((status, body)) => send.send_response(
                        Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Body::from(serde_json::to_vec(&body).unwrap()))
                            .unwrap(),
                    ),
                }
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Every request was discovery, a GET of the /scale or of the HPAs, or a merge PATCH of
    /// spec.replicas alone; the replica counts written, in order.
    fn assert_only_scale_calls(&self) -> Vec<u32> {
        let seen = self.seen.lock().unwrap();
        let mut writes = Vec::new();
        for s in seen.iter() {
            match (&s.method, s.uri.as_str()) {
                (&Method::GET, "/apis/apps/v1")
                | (&Method::GET, SCALE_PATH)
                | (&Method::GET, HPAS) => {
                    assert_eq!(s.body, None, "{}: {s:?}", self.name)
                }
                (&Method::PATCH, u) if u == format!("{SCALE_PATH}?") => {
                    assert_eq!(
                        s.content_type.as_deref(),
                        Some(MERGE_PATCH),
                        "{}",
                        self.name
                    );
                    let body = s.body.clone().unwrap();
                    let n = body["spec"]["replicas"].as_u64().unwrap() as u32;
                    assert_eq!(body, json!({"spec": {"replicas": n}}), "{}", self.name);
                    writes.push(n);
                }
                _ => panic!("{}: unexpected request {s:?}", self.name),
            }
        }
        writes
    }

    /// When the last PATCH came.
    fn last_write_at(&self) -> Instant {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .rfind(|s| s.method == Method::PATCH)
            .expect("a write")
            .at
    }

    fn writes_since(&self, t: Instant) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.at >= t && s.method == Method::PATCH)
            .count()
    }

    fn writes_before(&self, t: Instant) -> usize {
        let seen = self.seen.lock().unwrap();
        seen.iter()
            .filter(|s| s.at < t && s.method == Method::PATCH)
            .count()
    }
}

async fn seen(req: Request<Body>) -> Seen {
    let (parts, body) = req.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    seen_of(parts, &bytes)
}

/// A request's parts and body as recorded (`down` is the server's to set).
fn seen_of(parts: http::request::Parts, bytes: &[u8]) -> Seen {
    Seen {
        at: Instant::now(),
        method: parts.method,
        uri: parts.uri.to_string(),
        content_type: parts
            .headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string()),
        body: (!bytes.is_empty()).then(|| serde_json::from_slice(bytes).unwrap()),
        token: parts
            .headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string()),
        down: false,
    }
}

/// A scaler of `orders-worker` on `queue` (target 2 per replica) with `placement`, and short
/// windows: every second, scale-down without stabilization or cooldown, scale-up unlimited.
fn scaler(endpoint: &str, queue: &str, placement: &str) -> String {
    format!(
        r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {{name: orders, namespace: default}}
spec:
  scaleTargetRef: {{name: orders-worker}}
  pollingInterval: 1
  cooldownPeriod: 0
  minReplicaCount: 0
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {{stabilizationWindowSeconds: 0}}
        scaleUp: {{policies: [{{type: Pods, value: 100, periodSeconds: 1}}]}}
  placement:
{placement}
  triggers:
  - type: temporal
    metadata: {{endpoint: "{endpoint}", taskQueue: "{queue}", queueTypes: workflow, targetQueueSize: "2"}}
"#
    )
}

/// The agent's pipeline over `clusters`, under `guard`, running one scaler file (`scaler`'s)
/// from a directory it keeps: (context, the directory and source, kept alive by the caller).
async fn start(
    clusters: Clusters,
    guard: Guard,
    scaler_file: String,
) -> (
    Arc<Context>,
    (tempfile::TempDir, temporal_autoscaler::agent::TaskGuard),
) {
    let ctx = Context::new(Targets::with_clusters(Arc::new(clusters), false), guard);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orders.yaml"), scaler_file).unwrap();
    let source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    (ctx, (dir, source))
}

/// The home API server and one remote cluster from a kubeconfig file.
fn with_file_cluster(home: &Api, name: &str, kubeconfig: &std::path::Path) -> Clusters {
    Clusters::new(
        Some(home.client()),
        &[temporal_autoscaler::clusters::ClusterSpec {
            name: name.into(),
            kubeconfig: kubeconfig.to_path_buf(),
        }],
    )
}

fn shares(v: &ScalerView) -> Vec<(String, Option<u32>, Option<u32>, bool)> {
    v.clusters
        .iter()
        .map(|c| (c.name.clone(), c.share, c.current_replicas, c.reachable))
        .collect()
}

fn s(
    name: &str,
    share: u32,
    current: u32,
    reachable: bool,
) -> (String, Option<u32>, Option<u32>, bool) {
    (name.to_string(), Some(share), Some(current), reachable)
}

async fn wait(ctx: &Context, what: &str, pred: impl FnMut(&ScalerView) -> bool) -> ScalerView {
    within(60, what, ctx.state.wait_for(&key(), pred)).await
}

type Timeline = Arc<Mutex<Vec<(&'static str, u32)>>>;

/// After every write, the sum over `apis` (replaying the timeline from the counts before it).
fn totals(timeline: &Timeline, start: &[(&'static str, u32)]) -> Vec<u32> {
    let mut now: Vec<(&'static str, u32)> = start.to_vec();
    let mut out = Vec::new();
    for (name, n) in timeline.lock().unwrap().iter() {
        if let Some(e) = now.iter_mut().find(|e| e.0 == *name) {
            e.1 = *n;
        }
        out.push(now.iter().map(|e| e.1).sum());
    }
    out
}

/// 12 tasks at target 2 over weights 2:1 is 4 and 2. The second cluster's API server goes
/// away: after failureThreshold (3) failed reads its share moves to the first (6 and 0), and
/// nothing is written to it meanwhile. It comes back at 0 replicas: it gets its 2 first, and
/// only then does the first give its extra up, so the total in force never drops below 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weighted_split_failover_and_return_over_two_api_servers() {
    let server = DevServer::start().await;
    server.start_workflows("mc-split", 12).await;
    let timeline = Timeline::default();
    let (home, eu) = (Api::new("local", &timeline), Api::new("eu", &timeline));
    let clusters = Clusters::fixed(Some(home.client()), [("eu".to_string(), eu.client())]);
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-split",
            "    failureThreshold: 3\n    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, weight: 1}",
        ),
    )
    .await;

    let v = wait(&ctx, "the split 4 and 2", |v| {
        shares(v) == [s("local", 4, 4, true), s("eu", 2, 2, true)]
    })
    .await;
    assert_eq!(v.desired_replicas, Some(6));
    assert_eq!(v.current_replicas, Some(6));
    assert_eq!(
        (home.assert_only_scale_calls(), eu.assert_only_scale_calls()),
        (vec![4], vec![2])
    );

    // The eu API server stops answering; its pods are gone too (a cluster restart).
    eu.down.store(true, Ordering::SeqCst);
    eu.replicas.store(0, Ordering::SeqCst);
    timeline.lock().unwrap().push(("eu", 0));
    let v = wait(&ctx, "eu's share moved to local", |v| {
        v.clusters.len() == 2
            && !v.clusters[1].reachable
            && v.clusters[0].current_replicas == Some(6)
    })
    .await;
    // Moved after failureThreshold (3) failed reads of eu, not before.
    let moved_at = home.last_write_at();
    let failed_before = eu
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.at < moved_at && s.down)
        .count();
    assert_eq!(failed_before, 3, "eu's failed reads before its share moved");
    assert_eq!(v.clusters[1].share, Some(0));
    let err = v.clusters[1].error.clone().unwrap();
    assert!(err.contains("in cluster eu"), "{err}");
    assert_eq!(v.desired_replicas, Some(6));
    assert_eq!(home.assert_only_scale_calls(), [4, 6]);
    assert_eq!(
        eu.assert_only_scale_calls(),
        [2],
        "nothing written while unreachable"
    );

    // It comes back: eu first gets its 2 (8 in force), then local gives up its extra 2.
    eu.down.store(false, Ordering::SeqCst);
    wait(&ctx, "back to 4 and 2", |v| {
        shares(v) == [s("local", 4, 4, true), s("eu", 2, 2, true)]
    })
    .await;
    assert_eq!(home.assert_only_scale_calls(), [4, 6, 4]);
    assert_eq!(eu.assert_only_scale_calls(), [2, 2]);
    let t = totals(&timeline, &[("local", 0), ("eu", 0)]);
    // 4 and 2 written together (either first); eu lost its pods: 4; local takes eu's share:
    // 6; eu back: 8; local gives its extra up: 6.
    assert!(t[0] == 4 || t[0] == 2, "{t:?}");
    assert_eq!(
        t[1..],
        [6, 4, 6, 8, 6],
        "the total in force over the writes"
    );
    assert!(t[3..].iter().all(|&n| n >= 6), "a dip below 6: {t:?}");
}

/// The eu API server hangs: behind a loopback proxy that accepts connections and never
/// answers (a partition, a paused process), with a 300 ms deadline on every Kubernetes call.
/// Each tick's eu read fails at the deadline while the home cluster's reads stay on the
/// one-second grid; eu's share moves home in the tick of its 3rd (failureThreshold) failed
/// read, within 3 ticks plus one deadline of the hang; nothing is written to eu meanwhile.
/// It answers again: it is read at its 2 and home gives its extra up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_remote_cluster_fails_over_on_time_and_home_ticks_stay_on_time() {
    let server = DevServer::start().await;
    server.start_workflows("mc-hang", 12).await;
    let timeline = Timeline::default();
    let (home, eu) = (Api::new("local", &timeline), Api::new("eu", &timeline));
    let port = serve_http(eu.clone(), "Bearer t0ken").await;
    let (proxied, switch) = support::proxy("127.0.0.1".into(), port).await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("eu.kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(proxied, "t0ken")).unwrap();
    let deadline = std::time::Duration::from_millis(300);
    let clusters = with_file_cluster(&home, "eu", &kubeconfig).with_timeout(deadline);
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-hang",
            "    failureThreshold: 3\n    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, weight: 1}",
        ),
    )
    .await;
    wait(&ctx, "the split 4 and 2", |v| {
        shares(v) == [s("local", 4, 4, true), s("eu", 2, 2, true)]
    })
    .await;

    let hung_at = Instant::now();
    switch.set(ProxyMode::Blackhole);
    // Every tick's report while it hangs: (eu's failed reads in a row, reachable, home's share).
    let mut reports: Vec<(u32, bool, Option<u32>)> = Vec::new();
    let v = wait(&ctx, "eu's share moved home", |v| {
        if v.clusters.len() == 2 && v.clusters[1].failures > 0 {
            let r = (
                v.clusters[1].failures,
                v.clusters[1].reachable,
                v.clusters[0].share,
            );
            if reports.last() != Some(&r) {
                reports.push(r);
            }
        }
        v.clusters.len() == 2 && v.clusters[0].current_replicas == Some(6)
    })
    .await;
    assert_eq!(
        reports,
        [(1, true, Some(4)), (2, true, Some(4)), (3, false, Some(6))],
        "eu's share moves in the tick of its 3rd failed read, not before"
    );
    let err = v.clusters[1].error.clone().unwrap();
    assert!(
        err.contains("in cluster eu") && err.contains("timed out") && err.contains("300ms"),
        "{err}"
    );
    let moved_at = home.last_write_at();
    // 3 ticks of a 1 s interval, plus one deadline (and scheduling slack).
    let took = moved_at - hung_at;
    assert!(
        took <= std::time::Duration::from_millis(3000 + 300 + 1000),
        "failover took {took:?}"
    );
    // Home's reads kept their 1 s grid: a tick waits for eu at most the deadline.
    let reads: Vec<Instant> = home
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.method == Method::GET && s.uri == SCALE_PATH)
        .filter(|s| s.at >= hung_at && s.at <= moved_at)
        .map(|s| s.at)
        .collect();
    assert!(reads.len() >= 3, "{reads:?}");
    for w in reads.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap <= std::time::Duration::from_millis(1000 + 300 + 400),
            "home's ticks {gap:?} apart while eu hangs"
        );
    }
    assert_eq!(home.assert_only_scale_calls(), [4, 6]);
    assert_eq!(
        eu.assert_only_scale_calls(),
        [2],
        "nothing written to a hung cluster"
    );

    // It answers again: eu still runs its 2, so home gives its extra 2 up.
    switch.set(ProxyMode::Up);
    wait(&ctx, "back to 4 and 2", |v| {
        shares(v) == [s("local", 4, 4, true), s("eu", 2, 2, true)]
    })
    .await;
    assert_eq!(home.assert_only_scale_calls(), [4, 6, 4]);
    assert_eq!(eu.assert_only_scale_calls(), [2]);
}

/// Three API servers, Failover in the listed order (local up to 2, eu up to 2, then us). The
/// target is missing in eu: an error naming eu, and its share goes to us at once (a lasting
/// error does not wait for failureThreshold). Once it exists, eu takes its 2 and us gives
/// them up after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_over_three_api_servers_with_a_target_missing_in_one() {
    let server = DevServer::start().await;
    server.start_workflows("mc-failover", 12).await;
    let timeline = Timeline::default();
    let (home, eu, us) = (
        Api::new("local", &timeline),
        Api::new("eu", &timeline),
        Api::new("us", &timeline),
    );
    eu.missing.store(true, Ordering::SeqCst);
    let clusters = Clusters::fixed(
        Some(home.client()),
        [
            ("eu".to_string(), eu.client()),
            ("us".to_string(), us.client()),
        ],
    );
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-failover",
            "    policy: Failover\n    clusters:\n    - {name: local, maxReplicaCount: 2}\n    - {name: eu, maxReplicaCount: 2}\n    - {name: us}",
        ),
    )
    .await;

    let v = wait(&ctx, "local 2, us 4, eu missing", |v| {
        v.clusters.len() == 3
            && v.clusters[0].current_replicas == Some(2)
            && v.clusters[2].current_replicas == Some(4)
    })
    .await;
    assert!(!v.clusters[1].reachable);
    let err = v.clusters[1].error.clone().unwrap();
    assert!(
        err.contains("in cluster eu") && err.contains("not found"),
        "{err}"
    );
    assert_eq!(v.desired_replicas, Some(6));
    // The first failed read already moved eu's share: us was never written less than 4.
    assert_eq!(us.assert_only_scale_calls(), [4]);
    assert_eq!(home.assert_only_scale_calls(), [2]);
    assert_eq!(eu.assert_only_scale_calls(), Vec::<u32>::new());

    eu.missing.store(false, Ordering::SeqCst);
    wait(&ctx, "2, 2 and 2", |v| {
        shares(v)
            == [
                s("local", 2, 2, true),
                s("eu", 2, 2, true),
                s("us", 2, 2, true),
            ]
    })
    .await;
    assert_eq!(eu.assert_only_scale_calls(), [2]);
    assert_eq!(us.assert_only_scale_calls(), [4, 2]);
    assert_eq!(home.assert_only_scale_calls(), [2]);
    let t = totals(&timeline, &[("local", 0), ("eu", 0), ("us", 0)]);
    assert!(t[2..].iter().all(|&n| n >= 6), "a dip below 6: {t:?}");
}

/// A cluster the agent does not know and one whose kubeconfig is not a kubeconfig: each gets
/// an error naming it, at once (no failureThreshold wait: nothing will change by itself), and
/// the home cluster takes the whole total. No request goes anywhere but home.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_and_a_broken_kubeconfig_leave_their_share_to_the_others() {
    let server = DevServer::start().await;
    server.start_workflows("mc-bad", 12).await;
    let timeline = Timeline::default();
    let home = Api::new("local", &timeline);
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.kubeconfig");
    std::fs::write(&broken, "token: s3cret\nclusters: [oops\n").unwrap();
    let clusters = with_file_cluster(&home, "broken", &broken);
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-bad",
            "    clusters:\n    - {name: local}\n    - {name: ghost}\n    - {name: broken}",
        ),
    )
    .await;
    let v = wait(&ctx, "all 6 at home", |v| {
        v.clusters.len() == 3 && v.clusters[0].current_replicas == Some(6)
    })
    .await;
    let (ghost, broken_c) = (&v.clusters[1], &v.clusters[2]);
    assert!(!ghost.reachable && !broken_c.reachable);
    let e = ghost.error.clone().unwrap();
    assert!(
        e.contains("cluster \"ghost\" is not known to the agent"),
        "{e}"
    );
    let e = broken_c.error.clone().unwrap();
    assert!(
        e.contains("cluster \"broken\": kubeconfig") && e.contains("not a kubeconfig"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "a credential in an error: {e}");
    // The first tick already gave home the whole total: one write, of 6.
    assert_eq!(home.assert_only_scale_calls(), [6]);
    assert_eq!(v.desired_replicas, Some(6));
}

/// One workload per cluster: the same Deployment name in two clusters is two targets, and a
/// placement that overlaps another scaler's cluster is a conflict naming that cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_conflict_per_cluster() {
    let ctx = Context::new(Targets::Simulated, Guard::alone());
    let dir = tempfile::tempdir().unwrap();
    let doc = |name: &str, target: &str, placement: &str| {
        scaler("127.0.0.1:1", "q", placement)
            .replace("name: orders,", &format!("name: {name},"))
            .replace("scaleTargetRef: {name: orders-worker}", target)
    };
    std::fs::write(
        dir.path().join("a.yaml"),
        doc(
            "a",
            "scaleTargetRef: {name: w}",
            "    clusters: [{name: local}, {name: eu}]",
        ),
    )
    .unwrap();
    // The same name in another cluster: no conflict.
    std::fs::write(
        dir.path().join("b.yaml"),
        doc(
            "b",
            "scaleTargetRef: {name: w}",
            "    clusters: [{name: us}]",
        ),
    )
    .unwrap();
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    let key_of = |name: &str| ScalerKey {
        name: name.into(),
        ..key()
    };
    within(
        10,
        "b running",
        ctx.state.wait_for(&key_of("b"), |v| v.clusters.len() == 1),
    )
    .await;
    assert_eq!(ctx.state.get(&key_of("b")).unwrap().error, None);
    // eu is a's already.
    std::fs::write(
        dir.path().join("c.yaml"),
        doc("c", "scaleTargetRef: {name: w, cluster: eu}", "").replace("  placement:\n\n", ""),
    )
    .unwrap();
    let v = within(
        10,
        "c rejected",
        ctx.state.wait_for(&key_of("c"), |v| v.error.is_some()),
    )
    .await;
    let err = v.error.unwrap();
    assert!(
        err.starts_with(
            "TargetConflict: Deployment default/w in cluster eu is already scaled by dir:default/a"
        ),
        "{err}"
    );
}

/// Paused (`autoscaling.keda.sh/paused: "true"`): no cluster is written, not even to move
/// shares between them (6 and 2 in force would split 5 and 3 at weights 2:1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_scaler_moves_nothing_between_clusters() {
    let server = DevServer::start().await;
    server.start_workflows("mc-paused", 16).await;
    let timeline = Timeline::default();
    let (home, eu) = (Api::new("local", &timeline), Api::new("eu", &timeline));
    home.replicas.store(6, Ordering::SeqCst);
    eu.replicas.store(2, Ordering::SeqCst);
    let clusters = Clusters::fixed(Some(home.client()), [("eu".to_string(), eu.client())]);
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-paused",
            "    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, weight: 1}",
        )
        .replace(
            "metadata: {name: orders, namespace: default}",
            "metadata: {name: orders, namespace: default, annotations: {autoscaling.keda.sh/paused: \"true\"}}",
        ),
    )
    .await;
    // Three ticks seen, each with the shares it would place.
    let mut ticks = 0;
    wait(&ctx, "three paused ticks", |v| {
        if v.clusters.len() == 2 && v.clusters[0].share.is_some() {
            ticks += 1;
        }
        ticks >= 3
    })
    .await;
    let v = ctx.state.get(&key()).unwrap();
    assert_eq!(v.desired_replicas, Some(8), "paused: the count in force");
    assert_eq!(shares(&v), [s("local", 5, 6, true), s("eu", 3, 2, true)]);
    assert_eq!(home.assert_only_scale_calls(), Vec::<u32>::new());
    assert_eq!(eu.assert_only_scale_calls(), Vec::<u32>::new());
}

/// The Lease in the home cluster guards the remote cluster's writes as the local ones: with a
/// lease about to expire, both clusters are read and neither is written; once renewed, both are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_lease_guards_remote_writes() {
    let server = DevServer::start().await;
    server.start_workflows("mc-guard", 12).await;
    let timeline = Timeline::default();
    let (home, eu) = (Api::new("local", &timeline), Api::new("eu", &timeline));
    let clusters = Clusters::fixed(Some(home.client()), [("eu".to_string(), eu.client())]);
    let now = Instant::now();
    let (tx, rx) = tokio::sync::watch::channel(LeaderState {
        leader: true,
        since: Some(now),
        // Held for 1 s more, within the 5 s margin: no write may start.
        valid_until: Some(now + std::time::Duration::from_secs(1)),
    });
    let guard = Guard::new(rx, std::time::Duration::from_secs(5));
    let (ctx, _source) = start(
        clusters,
        guard,
        scaler(
            &server.endpoint(),
            "mc-guard",
            "    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, weight: 1}",
        ),
    )
    .await;
    let v = wait(&ctx, "a decision the lease holds back", |v| {
        v.desired_replicas == Some(6) && v.error.is_some()
    })
    .await;
    assert!(v.error.unwrap().contains("lease not valid"));
    assert_eq!(home.assert_only_scale_calls(), Vec::<u32>::new());
    assert_eq!(eu.assert_only_scale_calls(), Vec::<u32>::new());
    assert!(!eu.seen.lock().unwrap().is_empty(), "eu was read");

    let renewed = Instant::now();
    tx.send_replace(LeaderState {
        leader: true,
        since: Some(now),
        valid_until: Some(Instant::now() + std::time::Duration::from_secs(60)),
    });
    wait(&ctx, "both written", |v| {
        shares(v) == [s("local", 4, 4, true), s("eu", 2, 2, true)]
    })
    .await;
    assert_eq!(
        (home.writes_before(renewed), eu.writes_before(renewed)),
        (0, 0)
    );
    assert_eq!(
        (home.writes_since(renewed), eu.writes_since(renewed)),
        (1, 1)
    );
    assert_eq!(
        (home.assert_only_scale_calls(), eu.assert_only_scale_calls()),
        (vec![4], vec![2])
    );
}

/// A remote cluster from a kubeconfig file, served over loopback HTTP by an API server that
/// takes only the rotated token: the expired token's 401s name the cluster (never the token)
/// and move its share; the Secret rotated in place (the file rewritten) is used at the next
/// read, without a restart, and the share comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_kubeconfig_is_used_without_a_restart() {
    let server = DevServer::start().await;
    server.start_workflows("mc-rotate", 12).await;
    let timeline = Timeline::default();
    let (home, eu) = (Api::new("local", &timeline), Api::new("eu", &timeline));
    let port = serve_http(eu.clone(), "Bearer fresh-t0ken").await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("eu.kubeconfig");
    std::fs::write(&kubeconfig, kubeconfig_text(port, "expired-t0ken")).unwrap();
    let clusters = with_file_cluster(&home, "eu", &kubeconfig);
    let (ctx, _source) = start(
        clusters,
        Guard::alone(),
        scaler(
            &server.endpoint(),
            "mc-rotate",
            "    clusters:\n    - {name: local}\n    - {name: eu}",
        ),
    )
    .await;
    let v = wait(&ctx, "eu unreachable with an expired token", |v| {
        v.clusters.len() == 2
            && !v.clusters[1].reachable
            && v.clusters[0].current_replicas == Some(6)
    })
    .await;
    let err = v.clusters[1].error.clone().unwrap();
    assert!(err.contains("in cluster eu"), "{err}");
    assert!(!err.contains("t0ken"), "a credential in an error: {err}");
    assert!(
        serde_json::to_string(&v).unwrap().find("t0ken").is_none(),
        "a credential in /scalers"
    );

    let rotated = Instant::now();
    std::fs::write(&kubeconfig, kubeconfig_text(port, "fresh-t0ken")).unwrap();
    wait(&ctx, "eu back with its share", |v| {
        shares(v) == [s("local", 3, 3, true), s("eu", 3, 3, true)]
    })
    .await;
    let seen = eu.seen.lock().unwrap().clone();
    assert!(seen.iter().all(|s| s.token.is_some()));
    let (before, after): (Vec<&Seen>, Vec<&Seen>) = seen.iter().partition(|s| s.at < rotated);
    assert!(!before.is_empty() && !after.is_empty());
    assert!(
        before
            .iter()
            .all(|s| s.token.as_deref() == Some("Bearer expired-t0ken")),
        "before the rotation"
    );
    // The file is read again at most every KUBECONFIG_RECHECK, and the switch is for good: once
    // a request carried the new token, none carries the old one. (When a request arrives is no
    // bound on when its client was taken: on a loaded machine a tick that took the cached
    // client just before the recheck can be scheduled over a second later.)
    let first_fresh = after
        .iter()
        .position(|s| s.token.as_deref() == Some("Bearer fresh-t0ken"))
        .expect("the new token was used");
    assert!(
        after[first_fresh..]
            .iter()
            .all(|s| s.token.as_deref() == Some("Bearer fresh-t0ken")),
        "the old token after the new one: {after:?}"
    );
    assert_eq!(eu.assert_only_scale_calls(), [3]);
    // 3 while eu is still counted reachable, 6 once its share moved, 3 once it is back.
    assert_eq!(home.assert_only_scale_calls(), [3, 6, 3]);
}

/// `explain` prints where the total would go: each cluster's bounds, share and write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_each_clusters_share() {
    let server = DevServer::start().await;
    server.start_workflows("mc-explain", 12).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.yaml");
    std::fs::write(
        &file,
        scaler(
            &server.endpoint(),
            "mc-explain",
            "    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, weight: 1, maxReplicaCount: 1}",
        ),
    )
    .unwrap();
    let text = temporal_autoscaler::explain::explain(&file, None, Some(0), &[])
        .await
        .unwrap();
    assert!(text.contains("final: 6 (from 0): would scale up"), "{text}");
    assert!(
        text.contains("placement (Weighted, a cluster is unreachable after 3 failed reads):"),
        "{text}"
    );
    // eu's max of 1 spills its remainder to local: 5 and 1.
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_default()
            .to_string()
    };
    assert!(line("local").contains("share 5"), "{text}");
    assert!(
        line("eu").contains("[0, 1]") && line("eu").contains("share 1"),
        "{text}"
    );
}

fn kubeconfig_text(port: u16, token: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: eu
  cluster: {{server: "http://127.0.0.1:{port}"}}
users:
- name: autoscaler
  user: {{token: "{token}"}}
contexts:
- name: eu
  context: {{cluster: eu, user: autoscaler, namespace: default}}
current-context: eu
"#
    )
}

/// `api` over loopback HTTP: requests without `Bearer <token>` get 401 (recorded too).
async fn serve_http(api: Api, token: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let api = api.clone();
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            let s = seen_of(parts, &bytes);
            api.seen.lock().unwrap().push(s.clone());
            let (status, body) = if s.token.as_deref() != Some(token) {
                (
                    401,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
                )
            } else {
                api.answer(&s).unwrap()
            };
            axum::response::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap()
        }
    });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    port
}
