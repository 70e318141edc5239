//! One scaler over two real clusters, with a real Temporal dev server:
//!
//! ```sh
//! KUBECONFIG=home.yaml KUBECONFIG_REMOTE=remote.yaml ./scripts/test --test it two_clusters:: -- --ignored
//! ```
//!
//! The agent (in process) holds a real Lease in the home cluster and reaches the remote one
//! through a loopback TCP proxy (TLS passes through untouched), so that "stopping the remote
//! API server" needs no privileges: by default the proxy becomes a blackhole (connections are
//! accepted and never answered: a partition, or a hung API server), or with
//! TEST_REMOTE_OUTAGE=refuse it refuses connections (an API server that is down). Every
//! Kubernetes call has a 1 s deadline here (`kube_timeout`).
//!
//! The partition case with the real API server: set TEST_REMOTE_STOP and TEST_REMOTE_START to
//! shell commands that pause and resume its process (for ../shared/tools/kube's second
//! cluster: `kill -STOP $(cat ~/.cache/kube-control-plane/apiserver2.pid)` and `kill -CONT
//! …`). Commands that stop and start it (a kind cluster: `docker stop remote-control-plane`)
//! work too. TEST_NAMESPACE (default
//! `default`) must exist in both clusters; TEST_WORKER_IMAGE overrides the pause image (the
//! pods need not run: `/scale` is the Deployment's spec). The remote kubeconfig's server must be
//! reachable from here, with its credentials inline or as absolute paths.

use crate::support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::{DevServer, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::clusters::{ClusterSpec, Clusters};
use temporal_autoscaler::guard::{Guard, LeaderState, LeaseRunner, LeaseSettings};
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::state::ScalerView;
use temporal_autoscaler::target::Targets;

fn namespace() -> String {
    std::env::var("TEST_NAMESPACE").unwrap_or_else(|_| "default".into())
}

fn env_path(var: &str) -> std::path::PathBuf {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("these tests need {var} pointing at a real cluster"))
        .into()
}

/// The deadline of every Kubernetes call in these tests (the agent's `kube_timeout`).
const DEADLINE: Duration = Duration::from_secs(1);

async fn client_of(path: &std::path::Path) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(path).expect("a kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("a usable kubeconfig");
    temporal_autoscaler::deadline::client(config, DEADLINE).unwrap()
}

/// The home cluster from KUBECONFIG (which may list several files, as kubectl takes it), as the
/// agent builds its client: every request under the deadline.
async fn home_client() -> kube::Client {
    let config = kube::Config::infer()
        .await
        .expect("cluster from KUBECONFIG");
    temporal_autoscaler::deadline::client(config, DEADLINE).unwrap()
}

fn deployment(name: &str) -> Deployment {
    let image =
        std::env::var("TEST_WORKER_IMAGE").unwrap_or_else(|_| "registry.k8s.io/pause:3.10".into());
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "w", "image": image}]}}
        }
    }))
    .unwrap()
}

/// The remote kubeconfig with its current cluster's server moved to a loopback proxy in front
/// of it: (the rewritten file's text, the proxy's switch). The server name the certificate is
/// checked against stays the original host (`tls-server-name`).
async fn through_proxy(path: &std::path::Path) -> (String, Arc<support::ProxySwitch>) {
    let mut kc = kube::config::Kubeconfig::read_from(path).unwrap();
    let context = kc.current_context.clone().expect("a current context");
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the current context's cluster");
    let named = kc
        .clusters
        .iter_mut()
        .find(|c| c.name == cluster_name)
        .expect("the cluster");
    let cluster = named.cluster.as_mut().expect("cluster details");
    let server: http::Uri = cluster.server.clone().unwrap().parse().unwrap();
    let host = server.host().unwrap().trim_matches(['[', ']']).to_string();
    let scheme = server.scheme_str().unwrap_or("https").to_string();
    let port = server
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    let (local, switch) = support::proxy(host.clone(), port).await;
    cluster.server = Some(format!("{scheme}://127.0.0.1:{local}"));
    if host != "127.0.0.1" && host != "localhost" && cluster.tls_server_name.is_none() {
        cluster.tls_server_name = Some(host);
    }
    (serde_saphyr::to_string(&kc).unwrap(), switch)
}

fn shell(cmd: &str) {
    let status = std::process::Command::new("sh")
        .args(["-c", cmd])
        .status()
        .unwrap();
    assert!(status.success(), "{cmd}: {status}");
}

/// Deletes what the test made in both clusters, even when an assertion fails. The deletes run
/// on clients of their own, built from the kubeconfigs on a thread and runtime of their own,
/// since `Drop` cannot await (as e2e/main.rs's `Cleanup`).
struct Cleanup {
    remote_kubeconfig: std::path::PathBuf,
    ns: String,
    name: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (remote_kubeconfig, ns, name) = (
            self.remote_kubeconfig.clone(),
            self.ns.clone(),
            self.name.clone(),
        );
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let home = home_client().await;
                let remote = client_of(&remote_kubeconfig).await;
                let dp = DeleteParams::default();
                let worker = format!("{name}-worker");
                let _ = Api::<Deployment>::namespaced(home.clone(), &ns)
                    .delete(&worker, &dp)
                    .await;
                let _ = Api::<Deployment>::namespaced(remote, &ns)
                    .delete(&worker, &dp)
                    .await;
                let _ = Api::<Lease>::namespaced(home, &ns).delete(&name, &dp).await;
            });
        })
        .join();
    }
}

async fn replicas(client: &kube::Client, ns: &str, name: &str) -> i32 {
    Api::<Deployment>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas
        .unwrap_or(0)
}

/// 12 tasks at target 2 over weights 2:1: 4 in the home cluster, 2 in the remote one. The
/// remote API server stops answering: after 3 failed reads (each given up at the deadline) its
/// share moves home (6), within 3 ticks plus one deadline. It answers again: it takes its share
/// back and only then does home give its extra up; the total across both Deployments, sampled
/// throughout, never drops below 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs two real clusters (KUBECONFIG, KUBECONFIG_REMOTE)"]
async fn weights_two_to_one_failover_and_return_across_two_real_clusters() {
    env_path("KUBECONFIG");
    let home = home_client().await;
    let remote_path = env_path("KUBECONFIG_REMOTE");
    let remote = client_of(&remote_path).await;
    let ns = namespace();
    let name = format!("ta-mc-{:x}", fastrand::u32(..));
    let worker = format!("{name}-worker");
    let _cleanup = Cleanup {
        remote_kubeconfig: remote_path.clone(),
        ns: ns.clone(),
        name: name.clone(),
    };
    for c in [&home, &remote] {
        Api::<Deployment>::namespaced(c.clone(), &ns)
            .create(&PostParams::default(), &deployment(&worker))
            .await
            .unwrap();
    }

    let server = DevServer::start().await;
    server.start_workflows("q-two-clusters", 12).await;

    let dir = tempfile::tempdir().unwrap();
    let (text, switch) = through_proxy(&remote_path).await;
    let kubeconfig = dir.path().join("remote.kubeconfig");
    std::fs::write(&kubeconfig, text).unwrap();
    let clusters = Clusters::new(
        Some(home.clone()),
        &[ClusterSpec {
            name: "remote".into(),
            kubeconfig,
        }],
    )
    .with_timeout(DEADLINE);
    let lease = LeaseSettings {
        name: name.clone(),
        namespace: ns.clone(),
        identity: "two-clusters-agent".into(),
        duration: Duration::from_secs(15),
    };
    let (tx, rx) = tokio::sync::watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let ctx = Context::new(
        Targets::with_clusters(Arc::new(clusters), false),
        Guard::new(rx, lease.margin()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let lease_task = tokio::spawn(
        LeaseRunner::new(home.clone(), lease)
            .with_timeout(DEADLINE)
            .run(tx, ctx.metrics.clone(), stop_rx),
    );

    let scalers = tempfile::tempdir().unwrap();
    std::fs::write(
        scalers.path().join("s.yaml"),
        format!(
            r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata: {{name: {name}, namespace: {ns}}}
spec:
  scaleTargetRef: {{name: {worker}}}
  pollingInterval: 2
  cooldownPeriod: 0
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {{stabilizationWindowSeconds: 0}}
        scaleUp: {{policies: [{{type: Pods, value: 10, periodSeconds: 2}}]}}
  placement:
    failureThreshold: 3
    clusters:
    - {{name: local, weight: 2}}
    - {{name: remote, weight: 1}}
  triggers:
  - type: temporal
    metadata: {{endpoint: "{endpoint}", taskQueue: q-two-clusters, queueTypes: workflow, targetQueueSize: "2"}}
"#,
            endpoint = server.endpoint()
        ),
    )
    .unwrap();
    let _source = start_dir_source(ctx.clone(), scalers.path().to_path_buf())
        .await
        .unwrap();
    let key = ScalerKey {
        source: SourceKind::Dir,
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
    };
    let at = |v: &ScalerView, i: usize| v.clusters.get(i).and_then(|c| c.current_replicas);
    within(
        90,
        "4 home and 2 remote",
        ctx.state
            .wait_for(&key, |v| at(v, 0) == Some(4) && at(v, 1) == Some(2)),
    )
    .await;
    assert_eq!(replicas(&home, &ns, &worker).await, 4);
    assert_eq!(replicas(&remote, &ns, &worker).await, 2);

    // Stop the remote API server (as the agent sees it).
    let stopped_at = std::time::Instant::now();
    match std::env::var("TEST_REMOTE_STOP") {
        Ok(cmd) => shell(&cmd),
        Err(_) => switch.set(match std::env::var("TEST_REMOTE_OUTAGE").as_deref() {
            Ok("refuse") => support::ProxyMode::Refuse,
            _ => support::ProxyMode::Blackhole,
        }),
    }
    let v = within(
        120,
        "the remote share moved home",
        ctx.state.wait_for(&key, |v| {
            v.clusters.len() == 2 && !v.clusters[1].reachable && at(v, 0) == Some(6)
        }),
    )
    .await;
    // failureThreshold (3) ticks of 2 s plus one deadline, and slack for the home writes.
    let took = stopped_at.elapsed();
    assert!(
        took <= Duration::from_secs(3 * 2) + DEADLINE + Duration::from_secs(3),
        "failover took {took:?}"
    );
    let err = v.clusters[1].error.as_deref().unwrap_or_default();
    assert!(err.contains("in cluster remote"), "{v:?}");
    eprintln!("failover in {took:?}: {err}");
    assert_eq!(replicas(&home, &ns, &worker).await, 6);

    // Start it again; sample both Deployments while the share returns.
    match std::env::var("TEST_REMOTE_START") {
        Ok(cmd) => shell(&cmd),
        Err(_) => switch.set(support::ProxyMode::Up),
    }
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (home, remote, ns, worker, sampling) = (
            home.clone(),
            remote.clone(),
            ns.clone(),
            worker.clone(),
            sampling.clone(),
        );
        tokio::spawn(async move {
            let mut totals = Vec::new();
            while sampling.load(Ordering::SeqCst) {
                // The remote one is read directly (not through the proxy); while its API
                // server is still starting, a failed read is no sample.
                let r = Api::<Deployment>::namespaced(remote.clone(), &ns)
                    .get(&worker)
                    .await;
                if let Ok(d) = r {
                    let h = replicas(&home, &ns, &worker).await;
                    totals.push(h + d.spec.and_then(|s| s.replicas).unwrap_or(0));
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            totals
        })
    };
    within(
        240,
        "back to 4 and 2",
        ctx.state.wait_for(&key, |v| {
            v.clusters.len() == 2
                && v.clusters[1].reachable
                && at(v, 0) == Some(4)
                && at(v, 1) == Some(2)
        }),
    )
    .await;
    sampling.store(false, Ordering::SeqCst);
    let totals = sampler.await.unwrap();
    assert!(!totals.is_empty());
    assert!(totals.iter().all(|&n| n >= 6), "a dip below 6: {totals:?}");
    assert_eq!(replicas(&home, &ns, &worker).await, 4);
    assert_eq!(replicas(&remote, &ns, &worker).await, 2);

    stop_tx.send(true).unwrap();
    lease_task.await.unwrap();
}

/// The test's own plumbing, without a cluster: the remote kubeconfig rewritten to go through
/// the proxy still reaches its API server (here a loopback one answering `/version`), stops
/// reaching it when the proxy goes down, and reaches it again when it comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_kubeconfig_goes_through_a_proxy_that_can_stop() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().route(
        "/version",
        axum::routing::get(|| async {
            axum::Json(serde_json::json!({
                "major": "1", "minor": "36", "gitVersion": "v1.36.0", "gitCommit": "",
                "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"
            }))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("remote.yaml");
    std::fs::write(
        &original,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: r\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\nusers:\n- name: u\n  user: {{token: t0ken}}\ncontexts:\n- name: r\n  context: {{cluster: r, user: u}}\ncurrent-context: r\n"
        ),
    )
    .unwrap();
    let (text, switch) = through_proxy(&original).await;
    assert!(!text.contains(&format!(":{port}")), "{text}");
    assert!(text.contains("t0ken"), "the credentials are kept: {text}");
    let rewritten = dir.path().join("through-proxy.yaml");
    std::fs::write(&rewritten, text).unwrap();
    let client = client_of(&rewritten).await;
    assert_eq!(client.apiserver_version().await.unwrap().minor, "36");
    // Down: the proxy drops the connections it carries within its 20 ms check, and refuses
    // new ones; a request on the pooled connection may still pass in between.
    switch.set(support::ProxyMode::Refuse);
    within(5, "the proxy stops forwarding", async {
        while client.apiserver_version().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(client.apiserver_version().await.is_err(), "down stays down");
    switch.set(support::ProxyMode::Up);
    assert_eq!(client.apiserver_version().await.unwrap().minor, "36");
    // A blackhole: the connection is taken and nothing comes back; the call fails at the
    // client's deadline, named as a timeout (a call on the pooled connection may still pass
    // within the proxy's 20 ms check), and works again once the proxy forwards.
    switch.set(support::ProxyMode::Blackhole);
    let (err, took) = within(10, "a call into the blackhole", async {
        loop {
            let started = std::time::Instant::now();
            if let Err(e) = client.apiserver_version().await {
                return (e, started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        temporal_autoscaler::deadline::timed_out(&err),
        Some(DEADLINE),
        "{err}"
    );
    assert!(took >= DEADLINE, "{took:?}");
    switch.set(support::ProxyMode::Up);
    assert_eq!(client.apiserver_version().await.unwrap().minor, "36");
}
