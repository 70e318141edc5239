//! End-to-end: the real `temporal-autoscaler` binary, as users run it (dry run, no cluster),
//! against a Temporal dev server in a container started through testcontainers.
//! The image is built locally from the `temporal` CLI (e2e/images/temporal); set
//! E2E_TEMPORAL_IMAGE=name:tag to use another one, e.g. temporalio/temporal from a registry.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::Value;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{free_port, http_get as get, temporal_cli};
use temporalio_client::{Connection, ConnectionOptions, Url};
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const LOCAL_IMAGE: (&str, &str) = ("temporal-autoscaler-e2e/temporal", "dev");

/// The image to run: E2E_TEMPORAL_IMAGE, or the local one (built on first use).
fn image() -> (String, String) {
    if let Ok(spec) = std::env::var("E2E_TEMPORAL_IMAGE") {
        let (name, tag) = spec.rsplit_once(':').unwrap_or((spec.as_str(), "latest"));
        return (name.to_string(), tag.to_string());
    }
    let full = format!("{}:{}", LOCAL_IMAGE.0, LOCAL_IMAGE.1);
    let present = Command::new("docker")
        .args(["image", "inspect", &full])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !present.is_ok_and(|s| s.success()) {
        let ctx = tempfile::tempdir().unwrap();
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/images/temporal");
        std::fs::copy(dir.join("Dockerfile"), ctx.path().join("Dockerfile")).unwrap();
        std::fs::copy(temporal_cli(), ctx.path().join("temporal"))
            .expect("the temporal CLI (scripts/tools.sh)");
        let out = Command::new("docker")
            .args(["build", "-q", "-t", &full])
            .arg(ctx.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (LOCAL_IMAGE.0.to_string(), LOCAL_IMAGE.1.to_string())
}

struct Temporal {
    container: ContainerAsync<GenericImage>,
    port: u16,
}

impl Temporal {
    async fn start() -> Temporal {
        let (name, tag) = image();
        // A fixed host port, so the endpoint survives a container restart (scenario 4).
        let port = free_port();
        let container = GenericImage::new(name, tag)
            .with_wait_for(WaitFor::message_on_stdout("Temporal Server:"))
            .with_mapped_port(port, 7233.tcp())
            .with_cmd(["server", "start-dev", "--ip", "0.0.0.0", "--headless"])
            .with_startup_timeout(Duration::from_secs(60))
            .start()
            .await
            .expect("start the Temporal container");
        let t = Temporal { container, port };
        t.wait_ready().await;
        t
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    async fn connect(&self) -> Result<Connection, String> {
        let url = Url::parse(&format!("http://{}", self.endpoint())).unwrap();
        Connection::connect(
            ConnectionOptions::new(url)
                .identity("e2e".to_string())
                .build(),
        )
        .await
        .map_err(|e| e.to_string())
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.connect().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "Temporal in the container is not answering"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `n` workflows through the real CLI; with no worker they stay in the backlog.
    async fn start_workflows(&self, queue: &str, n: usize) {
        for _ in 0..n {
            let status = Command::new(temporal_cli())
                .args([
                    "workflow",
                    "start",
                    "--address",
                    &self.endpoint(),
                    "--task-queue",
                    queue,
                    "--type",
                    "Noop",
                ])
                .args(["--workflow-id", &format!("{queue}-{}", fastrand::u64(..))])
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    async fn logs(&self) -> String {
        let out = self.container.stdout_to_vec().await.unwrap_or_default();
        let err = self.container.stderr_to_vec().await.unwrap_or_default();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        )
    }
}

/// The agent binary in dry run; its log goes to a file printed if the test fails.
struct Agent {
    child: Child,
    addr: String,
    log: PathBuf,
    _logdir: tempfile::TempDir,
}

impl Agent {
    fn start(config_dir: &Path) -> Agent {
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("agent.log");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
            .args(["run", "--dry-run", "--http-addr", &addr, "--config-dir"])
            .arg(config_dir)
            .env("KUBECONFIG", "/nonexistent/kubeconfig")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut agent = Agent {
            child,
            addr,
            log,
            _logdir: logdir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while get(&agent.addr, "/readyz").map(|r| r.0) != Some(200) {
            if let Ok(Some(status)) = agent.child.try_wait() {
                panic!("agent exited: {status}\n{}", agent.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "agent not ready\n{}",
                agent.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        agent
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn scaler(&self, name: &str) -> Option<Value> {
        let (status, body) = get(&self.addr, "/scalers")?;
        assert_eq!(status, 200);
        let list: Vec<Value> = serde_json::from_str(&body).ok()?;
        list.into_iter().find(|s| s["name"] == name)
    }

    /// Poll `/scalers` (the agent's own report) until `pred` holds, for at most `secs`.
    async fn until(&self, secs: u64, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(s) = self.scaler("e2e")
                && pred(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; last: {:?}\nagent log:\n{}",
                self.scaler("e2e"),
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.log_text());
        }
    }
}

fn yaml(endpoint: &str, queue: &str, target: &str) -> String {
    format!(
        r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: e2e
spec:
  scaleTargetRef: {{name: e2e-worker}}
  pollingInterval: 1
  cooldownPeriod: 1
  minReplicaCount: 1
  maxReplicaCount: 10
  fallback: {{failureThreshold: 3, replicas: 4}}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp: {{policies: [{{type: Percent, value: 1000, periodSeconds: 1}}]}}
        scaleDown: {{stabilizationWindowSeconds: 2}}
  triggers:
    - type: temporal
      metadata:
        endpoint: "{endpoint}"
        taskQueue: {queue}
        queueTypes: workflow
        targetQueueSize: "{target}"
"#
    )
}

/// A ConfigMap-style mount: `s.yaml -> ..data/s.yaml`, `..data -> ..<version>`.
struct ConfigMapDir {
    dir: tempfile::TempDir,
    version: u32,
}

impl ConfigMapDir {
    fn new(content: &str) -> ConfigMapDir {
        let mut c = ConfigMapDir {
            dir: tempfile::tempdir().unwrap(),
            version: 0,
        };
        c.swap(content);
        symlink("..data/s.yaml", c.dir.path().join("s.yaml")).unwrap();
        c
    }

    /// What the kubelet does on an update: a new version dir, `..data_tmp` renamed over `..data`.
    fn swap(&mut self, content: &str) {
        self.version += 1;
        let v = format!("..v{}", self.version);
        std::fs::create_dir(self.dir.path().join(&v)).unwrap();
        std::fs::write(self.dir.path().join(&v).join("s.yaml"), content).unwrap();
        symlink(&v, self.dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(
            self.dir.path().join("..data_tmp"),
            self.dir.path().join("..data"),
        )
        .unwrap();
        if self.version > 1 {
            let _ =
                std::fs::remove_dir_all(self.dir.path().join(format!("..v{}", self.version - 1)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dir_source_hot_reload_bad_file_and_temporal_outage() {
    let temporal = Temporal::start().await;
    let queue = "e2e-q";
    temporal.start_workflows(queue, 12).await;
    let mut dir = ConfigMapDir::new(&yaml(&temporal.endpoint(), queue, "5"));
    let agent = Agent::start(dir.dir.path());

    // 1. 12 workflows, no worker, targetQueueSize 5 → desired 3 within two polls.
    let started = Instant::now();
    let s = agent
        .until(10, "desired 3", |s| s["desiredReplicas"] == 3)
        .await;
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(s["triggers"][0]["backlog"], 12);

    // 2. Hot reload through a ConfigMap-style swap: targetQueueSize 2 → desired 6, same process.
    dir.swap(&yaml(&temporal.endpoint(), queue, "2"));
    agent
        .until(10, "desired 6 after the swap", |s| {
            s["desiredReplicas"] == 6
        })
        .await;

    // 3. A broken edit: reported, the last good spec (target 2) stays in force.
    dir.swap("apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {name: e2e}\nspec: {scaleTargetRef: {name: x}, maxReplicaCount: -1, triggers: []}\n");
    let s = agent
        .until(10, "config error", |s| s["configError"].is_string())
        .await;
    assert!(
        s["configError"]
            .as_str()
            .unwrap()
            .contains("spec.maxReplicaCount: got -1"),
        "{s}"
    );
    assert_eq!(s["desiredReplicas"], 6);
    dir.swap(&yaml(&temporal.endpoint(), queue, "2"));
    agent
        .until(10, "error cleared", |s| s["configError"].is_null())
        .await;

    // 4. Temporal outage: triggers fail, the count never drops; after failureThreshold (3)
    //    failures the fallback (4 replicas) applies; on restart the trigger recovers in a poll.
    temporal.container.stop().await.unwrap();
    let s = agent
        .until(15, "trigger failing", |s| {
            s["triggers"][0]["error"].is_string()
        })
        .await;
    assert_eq!(
        s["desiredReplicas"], 6,
        "an error never lowers the count: {s}"
    );
    // The fallback count is a recommendation like any other: the 2 s scale-down window applies.
    let s = agent
        .until(15, "fallback applied", |s| {
            s["desiredReplicas"] == 4 && s["triggers"][0]["basis"] == "fallback"
        })
        .await;
    assert!(s["triggers"][0]["error"].is_string(), "{s}");
    temporal.container.start().await.unwrap();
    temporal.wait_ready().await;
    let recovered = Instant::now();
    let s = agent
        .until(30, "recovery", |s| {
            s["triggers"][0]["error"].is_null() && s["triggers"][0]["backlog"].is_number()
        })
        .await;
    // The connection backs off after failures (up to 60 s): recovery is bounded by that.
    assert!(recovered.elapsed() < Duration::from_secs(30), "{s}");
    // The restarted dev server is empty: the queue reads 0 → back to min after the window.
    agent
        .until(20, "back to min", |s| s["desiredReplicas"] == 1)
        .await;

    // 1 (cont.): a real worker drains a backlog → back to min.
    temporal.start_workflows(queue, 12).await;
    agent
        .until(15, "desired 6 again", |s| s["desiredReplicas"] == 6)
        .await;
    let _worker = support_worker(&temporal.endpoint(), queue);
    agent
        .until(60, "drained to min", |s| {
            s["desiredReplicas"] == 1 && s["triggers"][0]["backlog"] == 0
        })
        .await;
    if std::thread::panicking() {
        eprintln!("{}", temporal.logs().await);
    }
}

fn support_worker(endpoint: &str, queue: &str) -> support::ChildGuard {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/noop_worker.py");
    support::ChildGuard(
        support::python()
            .arg(script)
            .args(["--address", endpoint, "--task-queue", queue])
            .spawn()
            .unwrap(),
    )
}

// ---------------------------------------------------------------------------------------------
// With Kubernetes: run when KUBECONFIG points at a cluster, or when the `kind` CLI can create
// one (`cargo test --test e2e -- --ignored`). The agents run as local processes against the
// cluster, so no agent image has to be loaded into it.
// ---------------------------------------------------------------------------------------------

/// A kubeconfig: $KUBECONFIG, or a kind cluster created for the run.
fn kubeconfig() -> PathBuf {
    if let Ok(k) = std::env::var("KUBECONFIG") {
        return PathBuf::from(k);
    }
    let path = std::env::temp_dir().join("temporal-autoscaler-e2e.kubeconfig");
    let status = Command::new("kind")
        .args([
            "create",
            "cluster",
            "--name",
            "temporal-autoscaler-e2e",
            "--kubeconfig",
        ])
        .arg(&path)
        .status()
        .expect("these tests need KUBECONFIG or the kind CLI");
    assert!(
        status.success() || path.exists(),
        "kind create cluster failed"
    );
    path
}

/// An agent process against the cluster (not dry run), competing for the Lease.
fn cluster_agent(kubeconfig: &Path, namespace: &str, identity: &str) -> Agent {
    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("agent.log");
    let addr = format!("127.0.0.1:{}", free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
        .args([
            "run",
            "--http-addr",
            &addr,
            "--identity",
            identity,
            "--watch-namespaces",
            namespace,
        ])
        .args([
            "--lease-name",
            "temporal-autoscaler-e2e",
            "--lease-namespace",
            namespace,
            "--lease-duration",
            "4",
        ])
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = Agent {
        child,
        addr,
        log,
        _logdir: logdir,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(&agent.addr, "/readyz").map(|r| r.0) != Some(200) {
        assert!(
            Instant::now() < deadline,
            "agent {identity} not ready\n{}",
            agent.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    agent
}

/// What a cluster scenario made, deleted when dropped: also when an assertion failed, so a
/// failing run leaves nothing behind on the cluster. The deletes run on a client of their own
/// (from the kubeconfig), on a thread of their own, since `Drop` cannot await.
struct Cleanup {
    kubeconfig: PathBuf,
    namespace: String,
    cluster_roles: Vec<String>,
    cluster_role_bindings: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        use k8s_openapi::api::core::v1::Namespace;
        use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
        use kube::api::{Api, DeleteParams};
        let kubeconfig = self.kubeconfig.clone();
        let ns = std::mem::take(&mut self.namespace);
        let roles = std::mem::take(&mut self.cluster_roles);
        let bindings = std::mem::take(&mut self.cluster_role_bindings);
        let deletes = async move {
            let config = kube::Config::from_custom_kubeconfig(
                kube::config::Kubeconfig::read_from(&kubeconfig).ok()?,
                &Default::default(),
            )
            .await
            .ok()?;
            let client =
                temporal_autoscaler::deadline::client(config, Duration::from_secs(10)).ok()?;
            let dp = DeleteParams::default();
            for name in &bindings {
                let _ = Api::<ClusterRoleBinding>::all(client.clone())
                    .delete(name, &dp)
                    .await;
            }
            for name in &roles {
                let _ = Api::<ClusterRole>::all(client.clone())
                    .delete(name, &dp)
                    .await;
            }
            let _ = Api::<Namespace>::all(client).delete(&ns, &dp).await;
            Some(())
        };
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(deletes))
        })
        .join();
    }
}

/// A namespace `ns` with a worker Deployment `worker` (1 replica, `E2E_WORKER_IMAGE`, default
/// the upstream pause image), deleted when the returned guard drops.
async fn namespace_with_worker(client: &kube::Client, kubeconfig: &Path, ns: &str) -> Cleanup {
    use kube::api::{Api, PostParams};
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let image =
        std::env::var("E2E_WORKER_IMAGE").unwrap_or_else(|_| "registry.k8s.io/pause:3.10".into());
    let deploy: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "worker"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "worker"}},
                 "template": {"metadata": {"labels": {"app": "worker"}}, "spec": {"containers": [{"name": "w", "image": image}]}}}
    }))
    .unwrap();
    let cleanup = Cleanup {
        kubeconfig: kubeconfig.to_path_buf(),
        namespace: ns.to_string(),
        cluster_roles: Vec::new(),
        cluster_role_bindings: Vec::new(),
    };
    Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &deploy)
        .await
        .unwrap();
    cleanup
}

async fn deployment_replicas(client: &kube::Client, ns: &str) -> Option<i32> {
    let api: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
        kube::Api::namespaced(client.clone(), ns);
    api.get("worker").await.ok()?.spec?.replicas
}

async fn wait_replicas(
    client: &kube::Client,
    ns: &str,
    want: i32,
    secs: u64,
    agents: &[&Agent],
) -> Duration {
    let start = Instant::now();
    while deployment_replicas(client, ns).await != Some(want) {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "Deployment never reached {want} replicas (now {:?})\n{}",
            deployment_replicas(client, ns).await,
            agents
                .iter()
                .map(|a| a.log_text())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG, or the kind CLI"]
async fn kubernetes_cr_scaler_two_agents_one_leader_and_failover() {
    use kube::api::{Api, PostParams};

    let kubeconfig = kubeconfig();
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &Default::default(),
    )
    .await
    .unwrap();
    let client = temporal_autoscaler::deadline::client(config, Duration::from_secs(10)).unwrap();

    // The generated CRD (served before the CR is created), a namespace, and a worker
    // Deployment with a /scale subresource.
    support::apply_crd(&client).await;
    let ns = format!("ta-e2e-{:x}", fastrand::u32(..));
    let cleanup = namespace_with_worker(&client, &kubeconfig, &ns).await;

    let temporal = Temporal::start().await;
    temporal.start_workflows("k8s-q", 12).await;
    let cr: temporal_autoscaler::spec::TemporalScaler = serde_saphyr::from_str(
        &yaml(&temporal.endpoint(), "k8s-q", "5").replace("name: e2e-worker", "name: worker"),
    )
    .unwrap();
    Api::<temporal_autoscaler::spec::TemporalScaler>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &cr)
        .await
        .unwrap();

    // Two agents, one Lease: the Deployment follows the backlog, and only one agent leads.
    let a = cluster_agent(&kubeconfig, &ns, "agent-a");
    let b = cluster_agent(&kubeconfig, &ns, "agent-b");
    wait_replicas(&client, &ns, 3, 60, &[&a, &b]).await;
    let leaders: Vec<&str> = [("agent-a", &a), ("agent-b", &b)]
        .iter()
        .filter(|(_, ag)| ag.scaler("e2e").is_some_and(|s| s["leader"] == true))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(leaders.len(), 1, "exactly one leader: {leaders:?}");
    // The leader writes status (the write follows the scale by a moment).
    let crs: Api<temporal_autoscaler::spec::TemporalScaler> = Api::namespaced(client.clone(), &ns);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let st = crs.get("e2e").await.unwrap().status.unwrap_or_default();
        if st.current_replicas == Some(3)
            && st
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no status: {st:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Kill the leader: the other takes over within the lease duration plus a poll.
    let (mut leader, follower) = if leaders[0] == "agent-a" {
        (a, b)
    } else {
        (b, a)
    };
    leader.child.kill().unwrap();
    let _ = leader.child.wait();
    temporal.start_workflows("k8s-q", 13).await; // 25 → 5 replicas
    let took = wait_replicas(&client, &ns, 5, 30, &[&follower]).await;
    assert!(
        took < Duration::from_secs(4 + 1 + 3),
        "failover took {took:?}"
    );

    // Drained by a real worker: back to min after the window.
    let _worker = support_worker(&temporal.endpoint(), "k8s-q");
    wait_replicas(&client, &ns, 1, 90, &[&follower]).await;
    drop(follower);
    drop(cleanup);
}

/// The chart as real Helm renders it (scripts/helm.py: helm-sdkpy's install against a loopback
/// stand-in API server), for `release` in `ns`.
fn render_chart(release: &str, ns: &str, values: Value) -> Vec<Value> {
    use std::io::Write;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let req = serde_json::json!({
        "chart": root.join("charts/temporal-autoscaler"),
        "release": release,
        "namespace": ns,
        "steps": [{"action": "install", "values": values}],
    });
    let mut child = support::python()
        .arg(root.join("scripts/helm.py"))
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 scripts/helm.py (scripts/tools.sh installs helm-sdkpy)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scripts/helm.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = &res["steps"][0];
    assert_eq!(step["ok"], true, "helm install refused: {}", step["error"]);
    // Null documents are skipped by the parser.
    serde_saphyr::from_str_multiple(step["manifest"].as_str().unwrap()).unwrap()
}

/// Server-side apply of rendered objects (cluster-scoped or namespaced, by discovery).
async fn apply_all(client: &kube::Client, ns: &str, docs: &[&Value]) {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::core::GroupVersionKind;
    for doc in docs {
        let (group, version) = match doc["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                doc["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, doc["kind"].as_str().unwrap());
        let (ar, caps) = kube::discovery::pinned_kind(client, &gvk).await.unwrap();
        let api: Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &ar),
            kube::discovery::Scope::Namespaced => Api::namespaced_with(client.clone(), ns, &ar),
        };
        let name = doc["metadata"]["name"].as_str().unwrap();
        api.patch(
            name,
            &PatchParams::apply("temporal-autoscaler-e2e").force(),
            &Patch::Apply(doc),
        )
        .await
        .unwrap_or_else(|e| panic!("apply {} {name}: {e}", doc["kind"]));
    }
}

/// Whether `user` may `verb` `resource` (with `subresource`) in `ns`: a SubjectAccessReview,
/// answered by the cluster's own authorizer.
async fn may(
    client: &kube::Client,
    user: &str,
    ns: &str,
    verb: &str,
    group: &str,
    resource: &str,
    subresource: &str,
) -> bool {
    use k8s_openapi::api::authorization::v1::SubjectAccessReview;
    use kube::api::{Api, PostParams};
    let review: SubjectAccessReview = serde_json::from_value(serde_json::json!({
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
            "resourceAttributes": {
                "namespace": ns, "verb": verb, "group": group,
                "resource": resource, "subresource": subresource,
            },
        }
    }))
    .unwrap();
    let out = Api::<SubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    out.status.is_some_and(|s| s.allowed)
}

/// The chart's RBAC and a values-defined scaler, on a real cluster: the agent runs with the
/// chart's own arguments and as the chart's ServiceAccount (impersonated), so it holds exactly
/// the chart's permissions; it must scale the worker from the values-defined scaler, and the
/// ServiceAccount must be refused everything the agent does not need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a cluster: KUBECONFIG, or the kind CLI"]
async fn kubernetes_chart_rbac_and_values_defined_scaler() {
    let kubeconfig = kubeconfig();
    let admin_config = kube::config::Kubeconfig::read_from(&kubeconfig).unwrap();
    let client = temporal_autoscaler::deadline::client(
        kube::Config::from_custom_kubeconfig(admin_config.clone(), &Default::default())
            .await
            .unwrap(),
        Duration::from_secs(10),
    )
    .unwrap();
    support::apply_crd(&client).await;
    let suffix = format!("{:x}", fastrand::u32(..));
    let ns = format!("ta-chart-{suffix}");
    let release = format!("ta-{suffix}");
    let mut cleanup = namespace_with_worker(&client, &kubeconfig, &ns).await;

    let temporal = Temporal::start().await;
    temporal.start_workflows("chart-q", 12).await;
    let values = serde_json::json!({
        "watchNamespaces": [ns],
        "lease": {"duration": 4},
        "scalers": [{
            "name": "values-e2e",
            "namespace": ns,
            "spec": {
                "scaleTargetRef": {"name": "worker"},
                "pollingInterval": 1,
                // Short windows, so the scale-down below comes within the test's wait; the
                // defaults (cooldownPeriod 300, a 300 s scale-down window) would hold 3 for
                // five minutes, as they should.
                "cooldownPeriod": 2,
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
                    "scaleDown": {"stabilizationWindowSeconds": 5},
                }}},
                "minReplicaCount": 1,
                "maxReplicaCount": 10,
                "triggers": [{"type": "temporal", "metadata": {
                    "endpoint": temporal.endpoint(),
                    "taskQueue": "chart-q",
                    "queueTypes": "workflow",
                    "targetQueueSize": "5",
                }}],
            },
        }],
    });
    let docs = render_chart(&release, &ns, values);
    let of_kinds = |kinds: &[&str]| -> Vec<&Value> {
        docs.iter()
            .filter(|d| kinds.contains(&d["kind"].as_str().unwrap_or_default()))
            .collect()
    };
    let rbac = of_kinds(&[
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
    ]);
    for doc in &rbac {
        let name = doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match doc["kind"].as_str() {
            Some("ClusterRole") => cleanup.cluster_roles.push(name),
            Some("ClusterRoleBinding") => cleanup.cluster_role_bindings.push(name),
            _ => {}
        }
    }
    apply_all(&client, &ns, &rbac).await;

    // The ConfigMap of values-defined scalers, as the pod would see it mounted.
    let scalers_dir = tempfile::tempdir().unwrap();
    for cm in of_kinds(&["ConfigMap"]) {
        for (file, text) in cm["data"].as_object().into_iter().flatten() {
            std::fs::write(scalers_dir.path().join(file), text.as_str().unwrap()).unwrap();
        }
    }
    // The Deployment's own arguments, with the pod-only ones made local.
    let deployment = of_kinds(&["Deployment"])[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let sa = deployment["spec"]["template"]["spec"]["serviceAccountName"]
        .as_str()
        .unwrap()
        .to_string();
    let addr = format!("127.0.0.1:{}", free_port());
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .map(|a| {
            if a.starts_with("--config-dir=") {
                format!("--config-dir={}", scalers_dir.path().display())
            } else if a.starts_with("--http-addr=") {
                format!("--http-addr={addr}")
            } else if a.starts_with("--identity=") {
                "--identity=chart-agent".to_string()
            } else {
                a
            }
        })
        .collect();

    // A kubeconfig that acts as the chart's ServiceAccount.
    let user = format!("system:serviceaccount:{ns}:{sa}");
    let mut as_sa = admin_config.clone();
    for named in &mut as_sa.auth_infos {
        if let Some(info) = named.auth_info.as_mut() {
            info.impersonate = Some(user.clone());
            info.impersonate_groups = Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
            ]);
        }
    }
    let sa_dir = tempfile::tempdir().unwrap();
    let sa_kubeconfig = sa_dir.path().join("kubeconfig");
    std::fs::write(&sa_kubeconfig, serde_saphyr::to_string(&as_sa).unwrap()).unwrap();

    let logdir = tempfile::tempdir().unwrap();
    let log = logdir.path().join("agent.log");
    let child = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
        .args(&args)
        .env("KUBECONFIG", &sa_kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let agent = Agent {
        child,
        addr,
        log,
        _logdir: logdir,
    };

    // The values-defined scaler scales the worker, with only the chart's permissions.
    wait_replicas(&client, &ns, 3, 60, &[&agent]).await;
    let drained = support_worker(&temporal.endpoint(), "chart-q");
    wait_replicas(&client, &ns, 1, 90, &[&agent]).await;
    drop(drained);
    let text = agent.log_text();
    assert!(
        !text.contains("forbidden") && !text.contains("Forbidden"),
        "the agent was refused something it needs:\n{text}"
    );

    // What it needs, it may do; what it does not need, it may not.
    for (allowed, verb, group, resource, sub) in [
        (true, "get", "apps", "deployments", "scale"),
        (true, "patch", "apps", "deployments", "scale"),
        (true, "create", "coordination.k8s.io", "leases", ""),
        (true, "list", "scaling.example.com", "temporalscalers", ""),
        (
            true,
            "patch",
            "scaling.example.com",
            "temporalscalers",
            "status",
        ),
        (true, "create", "", "events", ""),
        (true, "create", "events.k8s.io", "events", ""),
        (false, "update", "apps", "deployments", ""),
        (false, "delete", "apps", "deployments", ""),
        (false, "get", "", "secrets", ""),
        (false, "list", "", "secrets", ""),
        // Idle pods first: list the pods and patch their deletion cost (the admission
        // policy refuses any other change); nothing else on pods.
        (true, "list", "", "pods", ""),
        (true, "patch", "", "pods", ""),
        (false, "get", "", "pods", ""),
        (false, "delete", "", "pods", ""),
        (false, "update", "", "pods", ""),
        (false, "create", "", "pods", ""),
        // Never fight another autoscaler: the HPAs, listed only.
        (true, "list", "autoscaling", "horizontalpodautoscalers", ""),
        (
            false,
            "update",
            "autoscaling",
            "horizontalpodautoscalers",
            "",
        ),
        (false, "delete", "coordination.k8s.io", "leases", ""),
        (
            false,
            "update",
            "scaling.example.com",
            "temporalscalers",
            "",
        ),
    ] {
        assert_eq!(
            may(&client, &user, &ns, verb, group, resource, sub).await,
            allowed,
            "{user} {verb} {group}/{resource}/{sub}: expected allowed={allowed}"
        );
    }

    drop(agent);
    // Cluster-scoped RBAC objects of this release, then the namespace.
    drop(cleanup);
}
