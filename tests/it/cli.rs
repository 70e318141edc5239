//! The real binary: `check` output and exit codes, `run` settings layering, and the HTTP
//! endpoints of a dry-run agent on a real Temporal dev server.

use crate::support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::{ChildGuard, DevServer, free_port, http_get as get, scaler_yaml};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"));
    // No cluster, whatever the machine has: the agent must act alone in dry run.
    c.env("KUBECONFIG", "/nonexistent/kubeconfig")
        .env_remove("KUBERNETES_SERVICE_HOST");
    for (k, _) in std::env::vars() {
        if k.starts_with("TEMPORAL_AUTOSCALER_") {
            c.env_remove(k);
        }
    }
    c
}

fn check(paths: &[&std::path::Path]) -> (i32, String) {
    let out = bin().arg("check").args(paths).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// Wait for the agent's readiness endpoint, failing if the process exits first.
fn wait_ready(child: &mut ChildGuard, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some((200, _)) = get(addr, "/readyz") {
            return;
        }
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!("agent exited early: {status}");
        }
        assert!(Instant::now() < deadline, "agent not ready on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn check_accepts_the_examples() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples");
    let (code, out) = check(&[&examples]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: 5 scaler(s) in 4 file(s)"), "{out}");
}

/// A WorkerResourceTemplate is rendered as Temporal's worker controller renders it, printed,
/// and validated; what the controller would refuse, or what would make every version's copy
/// read the whole queue, is an error pointing into the WRT.
#[test]
fn check_renders_and_validates_a_worker_resource_template() {
    let wrt = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/worker-controller/temporalscaler-wrt.yaml");
    let out = bin()
        .arg("check")
        .arg("--worker-resource-template")
        .arg(&wrt)
        .args([
            "--build-id",
            "v2-abcd",
            "--temporal-namespace",
            "orders-prod",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for want in [
        "kind: TemporalScaler",
        "name: orders-v2-abcd",
        "workerDeploymentName: default/orders",
        "workerDeploymentBuildId: v2-abcd",
        "namespace: orders-prod",
        "temporal.io/build-id: v2-abcd",
        "kind: WorkerResourceTemplate",
        "ok: 1 scaler(s) in 1 file(s)",
    ] {
        assert!(stdout.contains(want), "{want}: {stdout}");
    }
    // Plain `check` renders it too (for an example version).
    let (code, out) = check(&[&wrt]);
    assert_eq!(code, 0, "{out}");

    let d = tempfile::tempdir().unwrap();
    let bad = d.path().join("wrt.yaml");
    let text = std::fs::read_to_string(&wrt)
        .unwrap()
        .replace("            workerDeploymentBuildId: \"\"\n", "")
        .replace(
            "            namespace: \"\"\n",
            "            namespace: prod\n",
        )
        .replace("            taskQueue: orders\n", "");
    std::fs::write(&bad, text).unwrap();
    let (code, out) = check(&[&bad]);
    assert_eq!(code, 1, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.iter().any(|l| l.contains(
            "document 0: spec.template.spec.triggers[0].metadata.workerDeploymentBuildId: write `workerDeploymentBuildId: \"\"`"
        )),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l
            .contains("spec.template.spec.triggers[0].metadata.namespace: the controller owns it")
            && l.ends_with("(line 30)")),
        "{out}"
    );
}

#[test]
fn check_reports_one_line_per_problem_and_exits_1() {
    let d = tempfile::tempdir().unwrap();
    let bad = scaler_yaml("bad", "t:7233", "q", 0, "")
        .replace("maxReplicaCount: 10", "maxReplicaCount: 0")
        .replace("queueTypes: workflow", "queueTypes: workflo");
    std::fs::write(d.path().join("bad.yaml"), bad).unwrap();
    let (code, out) = check(&[&d.path().join("bad.yaml")]);
    assert_eq!(code, 1);
    let lines: Vec<_> = out.lines().collect();
    let file = d.path().join("bad.yaml").display().to_string();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines.contains(
            &format!(
                "{file}: document 0: spec.maxReplicaCount: got 0, expected an integer ≥ 1 (line 12)"
            )
            .as_str()
        ),
        "{out}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with(&format!(
            "{file}: document 0: spec.triggers[0].metadata.queueTypes: got \"workflo\""
        ))),
        "{out}"
    );
}

#[test]
fn check_rejects_two_scalers_on_one_target() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("a.yaml"),
        scaler_yaml("a", "t:7233", "q", 0, "").replace("a-worker", "shared"),
    )
    .unwrap();
    std::fs::write(
        d.path().join("b.yaml"),
        scaler_yaml("b", "t:7233", "q", 0, "").replace("b-worker", "shared"),
    )
    .unwrap();
    let (code, out) = check(&[d.path()]);
    assert_eq!(code, 1);
    assert!(out.contains("b.yaml: document 0: spec.scaleTargetRef: Deployment default/shared is already scaled by"), "{out}");
    assert!(out.contains("a.yaml document 0"), "{out}");
}

/// A placement naming a cluster the agent does not know fails `check`, with the field and the
/// clusters it knows; given the cluster (flag or settings file), it passes.
#[test]
fn check_reports_an_unknown_cluster() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/examples/remote-cluster/orders-two-clusters.yaml");
    let (code, out) = check(&[&example]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("document 0: spec.placement.clusters[1].name: got \"eu\", expected a cluster the agent knows (local, or one of its settings' clusters: none;"),
        "{out}"
    );
    let out = bin()
        .args(["check", "--cluster", "us=/etc/k/us"])
        .arg(&example)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("clusters: us;"), "{text}");
    let out = bin()
        .args(["check", "--cluster", "eu=/etc/k/eu"])
        .arg(&example)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.starts_with("ok: 1 scaler(s) in 1 file(s)"), "{text}");
    let d = tempfile::tempdir().unwrap();
    let settings = d.path().join("settings.yaml");
    std::fs::write(
        &settings,
        "clusters:\n- {name: eu, kubeconfig: /etc/k/eu}\n",
    )
    .unwrap();
    let out = bin()
        .arg("check")
        .arg("--settings")
        .arg(&settings)
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn run_without_a_cluster_and_without_dry_run_says_why() {
    let out = bin()
        .args(["run", "--http-addr", &format!("127.0.0.1:{}", free_port())])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Kubernetes cluster reachable") && err.contains("--dry-run"),
        "{err}"
    );
}

#[test]
fn invalid_settings_are_refused_before_start() {
    let out = bin()
        .args(["run", "--dry-run"])
        .env("TEMPORAL_AUTOSCALER_LEASE_DURATION", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LEASE_DURATION") && err.contains("TEMPORAL_AUTOSCALER_"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_agent_serves_scalers_metrics_and_health() {
    let server = DevServer::start().await;
    server.start_workflows("q-cli", 12).await;
    let cfg_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        cfg_dir.path().join("cli.yaml"),
        scaler_yaml("cli", &server.endpoint(), "q-cli", 0, ""),
    )
    .unwrap();
    // Layering: the settings file sets an address, JSON logs and the config dir; the
    // environment overrides the address; the flag overrides the environment.
    let from_file = format!("127.0.0.1:{}", free_port());
    let from_env = format!("127.0.0.1:{}", free_port());
    let from_flag = format!("127.0.0.1:{}", free_port());
    let d = tempfile::tempdir().unwrap();
    let settings = d.path().join("settings.yaml");
    std::fs::write(
        &settings,
        format!(
            "http_addr: \"{from_file}\"\nlog_format: json\nconfig_dir: \"{}\"\n",
            cfg_dir.path().display()
        ),
    )
    .unwrap();

    let child = bin()
        .args(["run", "--dry-run", "--settings"])
        .arg(&settings)
        .args(["--http-addr", &from_flag])
        .env("TEMPORAL_AUTOSCALER_HTTP_ADDR", &from_env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = ChildGuard(child);
    wait_ready(&mut child, &from_flag);
    assert!(get(&from_env, "/readyz").is_none() && get(&from_file, "/readyz").is_none());

    for path in ["/livez", "/q/health/live", "/q/health/ready"] {
        assert_eq!(get(&from_flag, path).map(|r| r.0), Some(200), "{path}");
    }
    // /scalers: wait for the first decision (12 / 5 = 3).
    let deadline = Instant::now() + Duration::from_secs(30);
    let scaler = loop {
        let (status, body) = get(&from_flag, "/scalers").unwrap();
        assert_eq!(status, 200);
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        if list[0]["desiredReplicas"] == 3 {
            break list[0].clone();
        }
        assert!(Instant::now() < deadline, "no decision: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for field in [
        "source",
        "namespace",
        "name",
        "file",
        "target",
        "currentReplicas",
        "desiredReplicas",
        "active",
        "lastScaleTime",
        "triggers",
        "error",
        "leader",
    ] {
        assert!(
            scaler.get(field).is_some(),
            "/scalers lacks {field}: {scaler}"
        );
    }
    assert_eq!(scaler["source"], "dir");
    assert_eq!(scaler["leader"], true);
    // The last decision's time, RFC 3339, within the last minute.
    let decided: jiff::Timestamp = scaler["lastDecisionTime"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("lastDecisionTime: {scaler}"));
    assert!(jiff::Timestamp::now().duration_since(decided).as_secs() < 60);
    assert_eq!(scaler["triggers"][0]["backlog"], 12);
    assert!(
        scaler["triggers"][0]["backlogAgeSeconds"]
            .as_f64()
            .is_some()
    );
    assert!(scaler["triggers"][0].get("error").is_some());
    // Filters: by namespace and name, or nothing.
    let name = scaler["name"].as_str().unwrap();
    let ns = scaler["namespace"].as_str().unwrap();
    let filtered = |q: &str| {
        let (status, body) = get(&from_flag, &format!("/scalers?{q}")).unwrap();
        assert_eq!(status, 200, "{q}: {body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()
    };
    assert_eq!(
        filtered(&format!("namespace={ns}&name={name}"))[0]["name"],
        name
    );
    assert_eq!(
        filtered(&format!("name={name}")).as_array().unwrap().len(),
        1
    );
    assert_eq!(filtered("name=no-such-scaler"), serde_json::json!([]));

    let (_, metrics) = get(&from_flag, "/metrics").unwrap();
    for name in [
        "temporal_queue_size{",
        "temporal_scaler_scale_up_total{",
        "temporal_scaler_desired_replicas{",
        "temporal_autoscaler_leader 1",
        "temporal_rpc_duration_seconds_bucket{",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }

    // JSON logs from the settings file.
    let _ = child.0.kill();
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let first = stderr.lines().next().unwrap_or_default();
    let parsed: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert!(parsed.get("level").is_some(), "{first}");
}

fn explain(file: &std::path::Path, extra: &[&str]) -> String {
    let out = bin().arg("explain").arg(file).args(extra).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.ends_with("No writes were made.\n"), "{text}");
    text
}

/// KEDA's `taskQueueFromEnv` in `explain` without a cluster: the variable is read from the
/// process's own environment (there is no target to read), and its absence is said.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_reads_from_env_keys_and_says_which_is_missing() {
    let server = DevServer::start().await;
    server.start_workflows("q-ex-env", 12).await;
    let d = tempfile::tempdir().unwrap();
    let file = d.path().join("env.yaml");
    let yaml = scaler_yaml("exenv", &server.endpoint(), "unused", 0, "").replace(
        "taskQueue: \"unused\"",
        "taskQueueFromEnv: EXPLAIN_TASK_QUEUE",
    );
    std::fs::write(&file, yaml).unwrap();
    let out = bin()
        .arg("explain")
        .arg(&file)
        .args(["--current", "0"])
        .env("EXPLAIN_TASK_QUEUE", "q-ex-env")
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("workflow  backlog 12")),
        "{text}"
    );
    assert!(text.contains("final: 3 (from 0): would scale up"), "{text}");
    let text = explain(&file, &["--current", "0"]);
    assert!(
        text.contains("EXPLAIN_TASK_QUEUE is not set in the agent's environment (a dry run without a cluster has no target to read)"),
        "{text}"
    );
    assert!(!text.contains("would scale up"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_shows_each_rule_at_work_on_a_real_server() {
    let server = DevServer::start().await;
    server.start_workflows("q-ex", 12).await;
    let d = tempfile::tempdir().unwrap();
    let write = |name: &str, yaml: String| {
        let p = d.path().join(format!("{name}.yaml"));
        std::fs::write(&p, yaml).unwrap();
        p
    };
    let base = scaler_yaml("ex", &server.endpoint(), "q-ex", 0, "");

    // Raw stats per queue type → recommendation → final.
    let text = explain(&write("basic", base.clone()), &["--current", "0"]);
    assert!(
        text.contains("TemporalScaler default/ex → Deployment/ex-worker (apps/v1)"),
        "{text}"
    );
    assert!(text.contains("current replicas: 0 (given)"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("workflow  backlog 12")),
        "{text}"
    );
    assert!(text.contains("→ 3 replica(s) [backlog], active"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.contains("1. triggerMax") && l.contains(" 3 ")),
        "{text}"
    );
    assert!(text.contains("final: 3 (from 0): would scale up"), "{text}");

    // Clamps.
    let text = explain(
        &write(
            "clamp",
            base.replace("maxReplicaCount: 10", "maxReplicaCount: 2"),
        ),
        &["--current", "0"],
    );
    assert!(
        text.lines()
            .any(|l| l.contains("clamp") && l.contains(" 2 ")),
        "{text}"
    );
    assert!(text.contains("final: 2 (from 0)"), "{text}");

    // Policies: from 1, the HPA default allows +4 pods (or +100%) per 15 s.
    let text = explain(
        &write(
            "policy",
            base.replace("targetQueueSize: \"5\"", "targetQueueSize: \"1\""),
        ),
        &["--current", "1"],
    );
    assert!(
        text.lines()
            .any(|l| l.contains("policy") && l.contains(" 5 ")),
        "{text}"
    );
    assert!(text.contains("final: 5 (from 1)"), "{text}");

    // Pause annotations.
    let paused = base.replace(
        "  namespace: default\n",
        "  namespace: default\n  annotations:\n    autoscaling.keda.sh/paused-replicas: \"4\"\n",
    );
    let text = explain(&write("paused", paused), &["--current", "0"]);
    assert!(
        text.lines()
            .any(|l| l.contains("paused") && l.contains(" 4 ")),
        "{text}"
    );
    assert!(text.contains("final: 4 (from 0)"), "{text}");

    // The step to zero on an empty queue waits for more idle reads.
    let text = explain(
        &write(
            "zero",
            scaler_yaml("zero", &server.endpoint(), "q-empty", 0, ""),
        ),
        &["--current", "3"],
    );
    assert!(text.contains("scaleToZeroGuard"), "{text}");
    assert!(
        text.contains("final: 1 (from 3): would scale down"),
        "{text}"
    );

    // Signals: running workflows (CountWorkflowExecutions), growth look-ahead, backlog age.
    let signals = scaler_yaml(
        "sig",
        &server.endpoint(),
        "q-ex",
        0,
        "        includeRunningWorkflowCount: \"true\"\n        targetBacklogAgeSeconds: \"0.001\"\n",
    );
    let text = explain(&write("signals", signals), &["--current", "2"]);
    // Visibility is eventually consistent: some of the 12 running workflows are counted.
    let running = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("running workflows: "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(running.is_some_and(|n| (1..=12).contains(&n)), "{text}");
    assert!(text.contains("[backlogAge], active"), "{text}");

    // --name picks one scaler; an unknown name is an error.
    let out = bin()
        .arg("explain")
        .arg(d.path().join("basic.yaml"))
        .args(["--name", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no scaler named nope"));
}

#[test]
fn convert_turns_a_keda_scaled_object_into_a_valid_temporal_scaler() {
    let d = tempfile::tempdir().unwrap();
    let keda = d.path().join("keda.yaml");
    std::fs::write(
        &keda,
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  namespace: shop
spec:
  scaleTargetRef:
    name: orders-worker
  pollingInterval: 10
  minReplicaCount: 1
  maxReplicaCount: 20
  advanced:
    restoreToOriginalReplicaCount: true
  triggers:
    - type: temporal
      metadata:
        endpoint: temporal:7233
        taskQueue: orders
        targetQueueSize: "4"
    - type: cpu
      metadata:
        value: "80"
"#,
    )
    .unwrap();
    let out = bin().arg("convert").arg(&keda).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("spec.advanced.restoreToOriginalReplicaCount"),
        "{stderr}"
    );
    assert!(stderr.contains("cpu"), "{stderr}");
    let converted = d.path().join("converted.yaml");
    std::fs::write(&converted, &out.stdout).unwrap();
    let (code, text) = check(&[&converted]);
    assert_eq!(code, 0, "{text}\n{}", String::from_utf8_lossy(&out.stdout));
    let cfg = temporal_autoscaler::source::dir::parse_file(
        &converted,
        &String::from_utf8(out.stdout).unwrap(),
    )
    .unwrap()
    .remove(0);
    assert_eq!(
        (&*cfg.namespace, &*cfg.name, cfg.max_replicas),
        ("shop", "orders", 20)
    );
    assert_eq!(cfg.triggers.len(), 1);
    assert_eq!(cfg.triggers[0].target_queue_size, 4.0);
}

#[test]
fn convert_keeps_keda_versioning_and_fails_on_a_refused_scaled_object() {
    let d = tempfile::tempdir().unwrap();
    let keda = d.path().join("keda.yaml");
    // KEDA main's e2e Worker Deployment ScaledObject, and one whose client key needs a
    // password (from its TriggerAuthentication, where KEDA reads it).
    std::fs::write(
        &keda,
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: temporal-test-so-deploy-ver
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: temporal-test-deploy-ver
  pollingInterval: 5
  cooldownPeriod: 10
  minReplicaCount: 0
  maxReplicaCount: 1
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 10
  triggers:
  - type: temporal
    metadata:
      namespace: default
      taskQueue: "omes-test"
      targetQueueSize: "2"
      endpoint: temporal-temporal-test.temporal-test-ns.svc.cluster.local:7233
      workerDeploymentName: omes-deployment
      workerDeploymentBuildId: v2.0.0
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: mtls, namespace: temporal-test-ns}
spec:
  secretTargetRef:
  - {parameter: cert, name: mtls, key: tls.crt}
  - {parameter: key, name: mtls, key: tls.key}
  - {parameter: keyPassword, name: hunter2, key: password}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: mtls
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: mtls-worker
  triggers:
  - type: temporal
    authenticationRef: {name: mtls}
    metadata:
      endpoint: temporal:7233
      taskQueue: orders
"#,
    )
    .unwrap();
    let out = bin().arg("convert").arg(&keda).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Refused: exit 1, the reason as an error line.
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let file = keda.display();
    let doc = format!("{file}: document 2 (ScaledObject temporal-test-ns/mtls)");
    assert!(
        stderr.contains(&format!(
            "error: {doc}: spec.triggers[0].authenticationRef: TriggerAuthentication temporal-test-ns/mtls: spec.secretTargetRef[2]: parameter keyPassword"
        )) && stderr.contains("encrypted client keys are not supported: decrypt the key"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("error: {doc}: not converted")),
        "{stderr}"
    );
    // The other one is printed, keeps KEDA's keys, and `check` accepts it.
    assert!(!stdout.contains("name: mtls"), "{stdout}");
    assert!(
        stdout.contains("workerDeploymentName: omes-deployment")
            && stdout.contains("workerDeploymentBuildId: v2.0.0"),
        "{stdout}"
    );
    let converted = d.path().join("converted.yaml");
    std::fs::write(&converted, &stdout).unwrap();
    let (code, text) = check(&[&converted]);
    assert_eq!(code, 0, "{text}\n{stdout}");
}
