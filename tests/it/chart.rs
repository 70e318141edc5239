//! The Helm chart (charts/temporal-autoscaler) through real Helm: the Helm v4 library bundled by
//! PyPI's helm-sdkpy (scripts/tools.sh installs it under target/tools/py). helm-sdkpy has no
//! `helm template`, so scripts/helm.py runs real `helm install` / `helm upgrade` against a
//! loopback API server that serves discovery and records every write: Helm merges the values,
//! validates them against values.schema.json, renders, maps each object through discovery and
//! creates or patches it. These tests read the release manifest and the writes, and check the
//! chart's rules: least-privilege RBAC, the scalers ConfigMap mounted as a directory and
//! hot-reloaded (an upgrade that changes scalers writes nothing but that ConfigMap), the
//! security context and probes, the CRD (the generated one) behind crds.install/crds.keep, and
//! the schema.

use crate::support;

use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const RELEASE: &str = "ta";
const NS: &str = "ops";
const FULLNAME: &str = "ta-temporal-autoscaler";
const SCALERS_CM: &str = "ta-temporal-autoscaler-scalers";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart_dir() -> PathBuf {
    root().join("charts/temporal-autoscaler")
}

/// Python with helm-sdkpy importable (target/tools/py, as tests/support does for temporalio).
fn python() -> Command {
    let mut cmd = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()));
    let local = root().join("target/tools/py");
    if local.exists() {
        let existing = std::env::var("PYTHONPATH").unwrap_or_default();
        let path = if existing.is_empty() {
            local.display().to_string()
        } else {
            format!("{}:{existing}", local.display())
        };
        cmd.env("PYTHONPATH", path);
    }
    cmd.arg(root().join("scripts/helm.py"));
    cmd
}

// ---------------------------------------------------------------------------------------------
// Running Helm

#[derive(Debug)]
struct Release {
    docs: Vec<Value>,
    writes: Vec<Value>,
    /// The rendered NOTES.txt.
    notes: String,
}

/// Install (then upgrade, for each further element of `steps`) the chart; one result per step,
/// `Err(message)` for a step Helm refused. Steps after a refused one are not run.
fn helm(chart: &Path, steps: &[Value]) -> Vec<Result<Release, String>> {
    helm_over(chart, &[], steps)
}

/// `helm` on a cluster that already holds `existing` (objects applied before, e.g. by kubectl).
fn helm_over(chart: &Path, existing: &[Value], steps: &[Value]) -> Vec<Result<Release, String>> {
    let steps: Vec<Value> = steps
        .iter()
        .enumerate()
        .map(|(i, values)| {
            json!({"action": if i == 0 { "install" } else { "upgrade" }, "values": values})
        })
        .collect();
    let req = json!({
        "chart": chart,
        "release": RELEASE,
        "namespace": NS,
        "existing": existing,
        "steps": steps
    });
    let mut child = python()
        .arg("run")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 scripts/helm.py");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(req.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "scripts/helm.py failed (run scripts/tools.sh to install helm-sdkpy): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let res: Value = serde_json::from_slice(&out.stdout).unwrap();
    res["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            if s["ok"] == json!(true) {
                Ok(Release {
                    docs: yaml_docs(s["manifest"].as_str().unwrap()),
                    writes: s["writes"].as_array().unwrap().clone(),
                    notes: s["notes"].as_str().unwrap_or_default().to_string(),
                })
            } else {
                Err(s["error"].as_str().unwrap().to_string())
            }
        })
        .collect()
}

fn install(values: Value) -> Release {
    helm(&chart_dir(), &[values])
        .pop()
        .unwrap()
        .unwrap_or_else(|e| panic!("helm install failed: {e}"))
}

fn install_fails(values: Value) -> String {
    match helm(&chart_dir(), std::slice::from_ref(&values))
        .pop()
        .unwrap()
    {
        Ok(_) => panic!("helm install accepted {values}"),
        Err(e) => e,
    }
}

fn yaml_docs(text: &str) -> Vec<Value> {
    // Null documents are skipped by the parser.
    serde_saphyr::from_str_multiple(text).unwrap()
}

fn yaml_file(path: &Path) -> Value {
    serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

impl Release {
    fn all(&self, kind: &str) -> Vec<&Value> {
        self.docs.iter().filter(|d| d["kind"] == kind).collect()
    }

    fn one(&self, kind: &str, name: &str) -> &Value {
        let found: Vec<_> = self
            .all(kind)
            .into_iter()
            .filter(|d| d["metadata"]["name"] == name)
            .collect();
        assert_eq!(found.len(), 1, "expected one {kind} {name}, got {found:?}");
        found[0]
    }

    fn deployment(&self) -> &Value {
        self.one("Deployment", FULLNAME)
    }

    fn container(&self) -> &Value {
        let containers = self.deployment()["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 1, "one container, the agent");
        &containers[0]
    }

    fn args(&self) -> Vec<String> {
        strings(&self.container()["args"])
    }

    /// Every RBAC rule, one row per (scope, apiGroup, resource, verb, resourceNames).
    fn rules(&self) -> BTreeSet<Rule> {
        let mut rules = BTreeSet::new();
        for doc in &self.docs {
            let scope = match doc["kind"].as_str().unwrap() {
                "ClusterRole" => "cluster".to_string(),
                "Role" => format!("ns:{}", doc["metadata"]["namespace"].as_str().unwrap()),
                _ => continue,
            };
            for rule in doc["rules"].as_array().unwrap() {
                let names = strings(&rule["resourceNames"]).join(",");
                for group in strings(&rule["apiGroups"]) {
                    for resource in strings(&rule["resources"]) {
                        for verb in strings(&rule["verbs"]) {
                            rules.insert(Rule {
                                scope: scope.clone(),
                                group: group.clone(),
                                resource: resource.clone(),
                                verb,
                                names: names.clone(),
                            });
                        }
                    }
                }
            }
        }
        rules
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rule {
    scope: String,
    group: String,
    resource: String,
    verb: String,
    names: String,
}

fn rule(scope: &str, group: &str, resource: &str, verbs: &[&str], names: &str) -> Vec<Rule> {
    verbs
        .iter()
        .map(|v| Rule {
            scope: scope.into(),
            group: group.into(),
            resource: resource.into(),
            verb: v.to_string(),
            names: names.into(),
        })
        .collect()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// What the agent may do wherever it scales and watches (`scope`), with the default values.
fn scaling_rules(scope: &str) -> Vec<Rule> {
    let mut r = Vec::new();
    for kind in ["deployments", "statefulsets", "replicasets"] {
        r.extend(rule(
            scope,
            "apps",
            &format!("{kind}/scale"),
            &["get", "update", "patch"],
            "",
        ));
    }
    r.extend(rule(
        scope,
        "scaling.example.com",
        "temporalscalers",
        &["list", "watch"],
        "",
    ));
    r.extend(rule(
        scope,
        "scaling.example.com",
        "temporalscalers/status",
        &["patch"],
        "",
    ));
    r.extend(rule(scope, "events.k8s.io", "events", &["create"], ""));
    r.extend(rule(scope, "", "events", &["create"], ""));
    // Never fight another autoscaler: the namespace's HPAs, listed.
    r.extend(rule(
        scope,
        "autoscaling",
        "horizontalpodautoscalers",
        &["list"],
        "",
    ));
    // Idle pods first (on by default): the target's pods listed, their deletion cost patched.
    r.extend(rule(scope, "", "pods", &["list", "patch"], ""));
    r
}

/// The leader Lease, in the release namespace only.
fn lease_rules() -> Vec<Rule> {
    let scope = format!("ns:{NS}");
    let mut r = rule(&scope, "coordination.k8s.io", "leases", &["create"], "");
    r.extend(rule(
        &scope,
        "coordination.k8s.io",
        "leases",
        &["get", "update"],
        FULLNAME,
    ));
    r
}

fn assert_no_wildcards(rel: &Release) {
    for r in rel.rules() {
        for field in [&r.group, &r.resource, &r.verb, &r.names] {
            assert!(!field.contains('*'), "wildcard in RBAC rule {r:?}");
        }
    }
}

/// Every value of `key` anywhere in `v`.
fn find_key<'a>(v: &'a Value, key: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == key {
                    out.push(x);
                }
                find_key(x, key, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| find_key(x, key, out)),
        _ => {}
    }
}

fn scaler(name: &str, namespace: Option<&str>, queue: &str) -> Value {
    let mut s = json!({
        "name": name,
        "spec": {
            "scaleTargetRef": {"name": name},
            "minReplicaCount": 0,
            "maxReplicaCount": 10,
            "triggers": [{
                "type": "temporal",
                "metadata": {
                    "endpoint": "temporal-frontend.temporal.svc:7233",
                    "taskQueue": queue,
                    "targetQueueSize": "5",
                },
            }],
        },
    });
    if let Some(ns) = namespace {
        s["namespace"] = json!(ns);
    }
    s
}

fn chart_app_version() -> String {
    yaml_file(&chart_dir().join("Chart.yaml"))["appVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Lint and the CRD

#[test]
fn helm_lint_passes_and_catches_a_broken_chart() {
    let lint = |chart: &Path| -> Value {
        let out = python().arg("lint").arg(chart).output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!(
                "scripts/helm.py lint failed (run scripts/tools.sh): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let res = lint(&chart_dir());
    assert_eq!(res["charts"], json!(1), "{res}");
    assert_eq!(res["errors"], json!(0), "helm lint found errors: {res}");

    // The same lint sees a value that breaks the schema: it really validates.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("temporal-autoscaler");
    copy_dir(&chart_dir(), &copy);
    let values = std::fs::read_to_string(copy.join("values.yaml")).unwrap();
    assert!(values.contains("\nreplicaCount: 2\n"));
    std::fs::write(
        copy.join("values.yaml"),
        values.replace("\nreplicaCount: 2\n", "\nreplicaCount: two\n"),
    )
    .unwrap();
    let res = lint(&copy);
    assert_ne!(res["errors"], json!(0), "lint accepted replicaCount: two");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_charts_crd_is_the_generated_one() {
    let generated = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
        .arg("crd")
        .output()
        .unwrap();
    assert!(generated.status.success());
    let generated = String::from_utf8(generated.stdout).unwrap();
    let committed =
        std::fs::read_to_string(root().join("config/crd/temporalscalers.yaml")).unwrap();
    let in_chart = std::fs::read_to_string(chart_dir().join("files/crd.yaml")).unwrap();
    assert!(
        in_chart == generated && committed == generated,
        "charts/temporal-autoscaler/files/crd.yaml is stale: \
         cargo run -- crd > config/crd/temporalscalers.yaml && \
         cp config/crd/temporalscalers.yaml charts/temporal-autoscaler/files/crd.yaml"
    );

    // What Helm renders is that CRD, plus the chart's labels and the keep annotation.
    let rel = install(json!({}));
    let crds = rel.all("CustomResourceDefinition");
    assert_eq!(crds.len(), 1);
    let mut rendered = crds[0].clone();
    let meta = rendered["metadata"].as_object_mut().unwrap();
    let labels = meta.remove("labels").unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "Helm");
    assert_eq!(labels["app.kubernetes.io/instance"], RELEASE);
    meta.remove("annotations");
    let expected: Value = serde_saphyr::from_str(&generated).unwrap();
    assert_eq!(rendered, expected);
}

#[test]
fn crds_install_and_keep_are_honoured() {
    let keep = |rel: &Release| {
        rel.one(
            "CustomResourceDefinition",
            "temporalscalers.scaling.example.com",
        )["metadata"]["annotations"]["helm.sh/resource-policy"]
            .clone()
    };
    assert_eq!(keep(&install(json!({}))), json!("keep"));
    assert_eq!(
        keep(&install(json!({"crds": {"keep": false}}))),
        Value::Null
    );
    let without = install(json!({"crds": {"install": false}}));
    assert!(without.all("CustomResourceDefinition").is_empty());
    // The agent still watches CRs (installed some other way) unless told not to.
    assert!(!without.args().contains(&"--no-crds".to_string()));
}

#[test]
fn installing_over_a_crd_applied_with_kubectl() {
    const CRD: &str = "temporalscalers.scaling.example.com";
    // As `kubectl apply -f config/crd/temporalscalers.yaml` leaves it: no Helm ownership.
    let applied = yaml_file(&root().join("config/crd/temporalscalers.yaml"));
    let over = |crd: &Value, values: Value| {
        helm_over(&chart_dir(), std::slice::from_ref(crd), &[values])
            .pop()
            .unwrap()
    };
    let crd_writes = |rel: &Release| -> Vec<String> {
        rel.writes
            .iter()
            .filter(|w| {
                w["path"]
                    .as_str()
                    .unwrap()
                    .contains("customresourcedefinitions")
            })
            .map(|w| {
                format!(
                    "{} {}",
                    w["method"].as_str().unwrap(),
                    w["path"].as_str().unwrap()
                )
            })
            .collect()
    };

    // By default Helm refuses to take the CRD over (the error users see).
    let err = over(&applied, json!({})).unwrap_err();
    assert!(
        err.contains(&format!(
            "CustomResourceDefinition \"{CRD}\" in namespace \"\" exists and cannot be imported into the current release: invalid ownership metadata; label validation error: missing key \"app.kubernetes.io/managed-by\""
        )),
        "{err}"
    );

    // Way out 1, crds.install=false: installed, no CRD rendered or written, and everything
    // else exactly as a default install renders it (RBAC, Deployment, the CR watch).
    let rel = over(&applied, json!({"crds": {"install": false}}))
        .unwrap_or_else(|e| panic!("helm install with crds.install=false failed: {e}"));
    assert!(rel.all("CustomResourceDefinition").is_empty());
    assert_eq!(crd_writes(&rel), Vec::<String>::new());
    let default = install(json!({}));
    let without_crd: Vec<&Value> = default
        .docs
        .iter()
        .filter(|d| d["kind"] != "CustomResourceDefinition")
        .collect();
    assert_eq!(rel.docs.iter().collect::<Vec<_>>(), without_crd);
    assert_eq!(rel.rules(), default.rules());
    assert!(
        rel.rules()
            .iter()
            .any(|r| r.resource == "temporalscalers" && r.verb == "watch")
    );
    assert!(!rel.args().contains(&"--no-crds".to_string()));
    assert!(
        rel.notes.contains(&format!(
            "kubectl annotate crd {CRD} meta.helm.sh/release-name={RELEASE} meta.helm.sh/release-namespace={NS}"
        )),
        "{}",
        rel.notes
    );

    // Way out 2, the label and annotations the README gives: Helm adopts (patches) the CRD.
    let mut adoptable = applied.clone();
    let meta = adoptable["metadata"].as_object_mut().unwrap();
    meta.insert(
        "labels".into(),
        json!({"app.kubernetes.io/managed-by": "Helm"}),
    );
    meta.insert(
        "annotations".into(),
        json!({"meta.helm.sh/release-name": RELEASE, "meta.helm.sh/release-namespace": NS}),
    );
    let rel = over(&adoptable, json!({}))
        .unwrap_or_else(|e| panic!("helm install over the labelled CRD failed: {e}"));
    rel.one("CustomResourceDefinition", CRD);
    assert_eq!(
        crd_writes(&rel),
        [format!(
            "PATCH /apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}"
        )]
    );
    // The notes of an install that owns the CRD say both ways out too.
    for way in [
        "--set crds.install=false".to_string(),
        format!("kubectl label crd {CRD} app.kubernetes.io/managed-by=Helm"),
    ] {
        assert!(rel.notes.contains(&way), "{way}: {}", rel.notes);
    }
}

// ---------------------------------------------------------------------------------------------
// RBAC

#[test]
fn default_rbac_is_exactly_what_the_agent_needs() {
    let rel = install(json!({}));
    assert_no_wildcards(&rel);
    let mut expected: BTreeSet<Rule> = scaling_rules("cluster").into_iter().collect();
    expected.extend(lease_rules());
    assert_eq!(rel.rules(), expected);
    assert!(rel.rules().iter().all(|r| r.resource != "secrets"));

    // The Lease Role is namespaced in the release namespace; its name is the agent's Lease.
    let lease_role = rel.one("Role", &format!("{FULLNAME}-lease"));
    assert_eq!(lease_role["metadata"]["namespace"], NS);
    assert!(rel.args().contains(&format!("--lease-name={FULLNAME}")));
    assert!(rel.args().contains(&format!("--lease-namespace={NS}")));

    // Bindings: to the chart's ServiceAccount, which the pod runs as.
    let sa = rel.one("ServiceAccount", FULLNAME);
    assert_eq!(sa["metadata"]["namespace"], NS);
    let subject = json!([{"kind": "ServiceAccount", "name": FULLNAME, "namespace": NS}]);
    let crb = rel.one("ClusterRoleBinding", FULLNAME);
    assert_eq!(crb["roleRef"]["kind"], "ClusterRole");
    assert_eq!(crb["roleRef"]["name"], FULLNAME);
    assert_eq!(crb["subjects"], subject);
    let rb = rel.one("RoleBinding", &format!("{FULLNAME}-lease"));
    assert_eq!(rb["metadata"]["namespace"], NS);
    assert_eq!(rb["roleRef"]["kind"], "Role");
    assert_eq!(rb["roleRef"]["name"], format!("{FULLNAME}-lease"));
    assert_eq!(rb["subjects"], subject);
    assert_eq!(
        rel.deployment()["spec"]["template"]["spec"]["serviceAccountName"],
        FULLNAME
    );
}

#[test]
fn rbac_follows_the_values() {
    let default_rules = install(json!({})).rules();

    // Secrets only when Secret references are enabled: one rule more, nothing else.
    let with_secrets = install(json!({"rbac": {"secretReferences": true}}));
    assert_no_wildcards(&with_secrets);
    let added: Vec<_> = with_secrets
        .rules()
        .difference(&default_rules)
        .cloned()
        .collect();
    assert_eq!(added, rule("cluster", "", "secrets", &["get"], ""));
    assert!(default_rules.is_subset(&with_secrets.rules()));

    // The target's environment (KEDA's …FromEnv keys): get on the scaled kinds and ConfigMaps.
    let with_env = install(json!({"rbac": {"targetEnvironment": true}}));
    assert_no_wildcards(&with_env);
    let added: BTreeSet<_> = with_env
        .rules()
        .difference(&default_rules)
        .cloned()
        .collect();
    let mut expected: BTreeSet<Rule> = ["deployments", "statefulsets", "replicasets"]
        .iter()
        .flat_map(|k| rule("cluster", "apps", k, &["get"], ""))
        .collect();
    expected.extend(rule("cluster", "", "configmaps", &["get"], ""));
    assert_eq!(added, expected);

    // /scale only of the listed kinds.
    let rollouts = install(json!({"rbac": {"scaleTargets": [
        {"apiGroup": "argoproj.io", "resources": ["rollouts"]}
    ]}}));
    let scale: BTreeSet<_> = rollouts
        .rules()
        .into_iter()
        .filter(|r| r.resource.ends_with("/scale") || r.group == "apps")
        .collect();
    assert_eq!(
        scale,
        rule(
            "cluster",
            "argoproj.io",
            "rollouts/scale",
            &["get", "update", "patch"],
            ""
        )
        .into_iter()
        .collect()
    );

    // watchNamespaces: Roles in those namespaces and in the values-defined scalers', no
    // ClusterRole.
    let scoped = install(json!({
        "watchNamespaces": ["a", "b"],
        "scalers": [scaler("x", Some("c"), "qx"), scaler("y", None, "qy")],
    }));
    assert_no_wildcards(&scoped);
    assert!(scoped.all("ClusterRole").is_empty());
    assert!(scoped.all("ClusterRoleBinding").is_empty());
    let mut expected: BTreeSet<Rule> = BTreeSet::new();
    for ns in ["a", "b", "c", NS] {
        expected.extend(scaling_rules(&format!("ns:{ns}")));
        let rb = scoped
            .all("RoleBinding")
            .into_iter()
            .find(|d| d["metadata"]["namespace"] == ns && d["metadata"]["name"] == FULLNAME)
            .unwrap_or_else(|| panic!("no RoleBinding in {ns}"));
        assert_eq!(rb["roleRef"]["name"], FULLNAME);
        assert_eq!(rb["subjects"][0]["namespace"], NS);
    }
    expected.extend(lease_rules());
    assert_eq!(scoped.rules(), expected);
    assert!(
        scoped
            .args()
            .contains(&"--watch-namespaces=a,b".to_string())
    );

    // No custom resources: no temporalscalers rules, and the agent is told.
    let no_crs = install(json!({"watchCustomResources": false}));
    assert!(
        no_crs
            .rules()
            .iter()
            .all(|r| !r.resource.starts_with("temporalscalers"))
    );
    assert!(no_crs.args().contains(&"--no-crds".to_string()));

    // rbac.create=false: no RBAC objects at all.
    let none = install(json!({"rbac": {"create": false}}));
    for kind in ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"] {
        assert!(
            none.all(kind).is_empty(),
            "{kind} rendered with rbac.create=false"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The Deployment

#[test]
fn the_pod_is_locked_down_and_probed_on_the_health_paths() {
    let rel = install(json!({}));
    let dep = rel.deployment();
    assert_eq!(dep["spec"]["replicas"], json!(2));
    let pod = &dep["spec"]["template"]["spec"];

    let psc = &pod["securityContext"];
    assert_eq!(psc["runAsNonRoot"], json!(true));
    assert!(psc["runAsUser"].as_u64().unwrap() > 0, "{psc}");
    assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault");

    let c = rel.container();
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], json!(true));
    assert!(
        sc["runAsUser"].as_u64().unwrap() > 0,
        "numeric non-root user: {sc}"
    );
    assert!(sc["runAsGroup"].as_u64().unwrap() > 0, "{sc}");
    assert_eq!(sc["readOnlyRootFilesystem"], json!(true));
    assert_eq!(sc["allowPrivilegeEscalation"], json!(false));
    assert_ne!(sc["privileged"], json!(true));
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["capabilities"]["add"], Value::Null);
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");

    // Probes on the agent's health paths, on the port it listens on.
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert_eq!(c["livenessProbe"]["httpGet"]["port"], "http");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["readinessProbe"]["httpGet"]["port"], "http");
    assert_eq!(
        c["ports"],
        json!([{"name": "http", "containerPort": 8080, "protocol": "TCP"}])
    );
    assert!(rel.args().contains(&"--http-addr=0.0.0.0:8080".to_string()));
    let svc = rel.one("Service", FULLNAME);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
    for (k, v) in svc["spec"]["selector"].as_object().unwrap() {
        assert_eq!(&dep["spec"]["template"]["metadata"]["labels"][k], v);
    }

    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());

    // The image is the agent's version, which the chart's appVersion follows.
    assert_eq!(chart_app_version(), env!("CARGO_PKG_VERSION"));
    assert_eq!(
        c["image"],
        format!(
            "ghcr.io/example/temporal-autoscaler:{}",
            env!("CARGO_PKG_VERSION")
        )
    );

    // Identity and Lease namespace from the downward API.
    let env: BTreeMap<String, Value> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    assert_eq!(
        env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.namespace"
    );
    assert_eq!(
        env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.name"
    );
    assert!(rel.args().contains(&"--identity=$(POD_NAME)".to_string()));
    assert_eq!(env["RUST_LOG"]["value"], "info");
    assert_eq!(rel.args()[0], "run");
}

#[test]
fn credential_volumes_are_mounted_for_file_credentials() {
    let rel = install(json!({
        "extraVolumes": [{"name": "temporal-mtls", "secret": {"secretName": "temporal-mtls"}}],
        "extraVolumeMounts": [{"name": "temporal-mtls", "mountPath": "/var/run/secrets/temporal-mtls", "readOnly": true}]
    }));
    let mounts = rel.container()["volumeMounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    assert_eq!(
        mounts[1],
        json!({"name": "temporal-mtls", "mountPath": "/var/run/secrets/temporal-mtls", "readOnly": true})
    );
    let volumes = rel.deployment()["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap();
    assert_eq!(
        volumes[1],
        json!({"name": "temporal-mtls", "secret": {"secretName": "temporal-mtls"}})
    );
}

#[test]
fn scalers_configmap_is_a_directory_mount_without_a_restart_trigger() {
    let rel = install(json!({"podAnnotations": {"example.com/team": "platform"}}));
    let pod = &rel.deployment()["spec"]["template"];

    // The config dir is the ConfigMap, mounted whole: no subPath anywhere.
    let config_dir = rel
        .args()
        .iter()
        .find_map(|a| a.strip_prefix("--config-dir=").map(String::from))
        .expect("--config-dir");
    let mounts = rel.container()["volumeMounts"].as_array().unwrap();
    let mount = mounts
        .iter()
        .find(|m| m["mountPath"] == config_dir.as_str())
        .expect("a mount at the config dir");
    let volume = pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(volume["configMap"]["name"], SCALERS_CM);
    let mut sub_paths = Vec::new();
    for doc in &rel.docs {
        find_key(doc, "subPath", &mut sub_paths);
        find_key(doc, "subPathExpr", &mut sub_paths);
    }
    assert!(
        sub_paths.is_empty(),
        "subPath mounts never update: {sub_paths:?}"
    );

    // No checksum annotation: a scalers change must not roll the pods.
    let annotations = pod["metadata"]["annotations"].as_object().unwrap();
    assert_eq!(annotations["example.com/team"], "platform");
    assert!(
        annotations.keys().all(|k| !k.contains("checksum")),
        "{annotations:?}"
    );
    // The ConfigMap exists even with no scalers, so the directory is there to reload.
    assert_eq!(rel.one("ConfigMap", SCALERS_CM)["data"], json!({}));
}

#[test]
fn upgrading_scalers_writes_only_the_configmap() {
    let steps = helm(
        &chart_dir(),
        &[
            json!({"scalers": [scaler("orders", Some("shop"), "orders")]}),
            json!({"scalers": [scaler("billing", Some("shop"), "billing")]}),
            json!({"scalers": [scaler("billing", Some("shop"), "billing")], "replicaCount": 3}),
        ],
    );
    let steps: Vec<Release> = steps
        .into_iter()
        .map(|s| s.unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(
        steps[0]
            .writes
            .iter()
            .any(|w| w["method"] == "POST" && w["body"]["kind"] == "Deployment"),
        "the install created the Deployment"
    );

    // Changed scalers: one patch, of the ConfigMap; the Deployment is untouched, so no pod
    // restarts and the agent hot-reloads the directory.
    let writes: Vec<(String, String)> = steps[1]
        .writes
        .iter()
        .map(|w| {
            (
                w["method"].as_str().unwrap().to_string(),
                w["path"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        writes,
        [(
            "PATCH".to_string(),
            format!("/api/v1/namespaces/{NS}/configmaps/{SCALERS_CM}")
        )]
    );
    let patch = &steps[1].writes[0]["body"]["data"];
    assert!(patch["shop-billing.yaml"].is_string(), "{patch}");
    assert_eq!(patch["shop-orders.yaml"], Value::Null);

    // A change to the pod does patch the Deployment (what the check above would see).
    assert!(
        steps[2].writes.iter().any(|w| w["method"] == "PATCH"
            && w["path"] == format!("/apis/apps/v1/namespaces/{NS}/deployments/{FULLNAME}")),
        "{:?}",
        steps[2].writes
    );
}

// ---------------------------------------------------------------------------------------------
// Remote clusters (issue 15)

/// The mount, volume and `--cluster` argument of each remote cluster.
const CLUSTERS_DIR: &str = "/etc/temporal-autoscaler/clusters";

#[test]
fn remote_clusters_are_kubeconfig_secrets_mounted_as_directories() {
    let long = "c".repeat(63);
    let rel = install(json!({"clusters": [
        {"name": "eu", "secretName": "eu-kubeconfig"},
        {"name": "us-east-1", "secretName": "us-kubeconfig", "key": "config.yaml"},
        {"name": long, "secretName": "far-kubeconfig"},
    ]}));
    let pod = &rel.deployment()["spec"]["template"]["spec"];
    let volumes = pod["volumes"].as_array().unwrap();
    let mounts = rel.container()["volumeMounts"].as_array().unwrap();
    assert_eq!(
        mounts.len(),
        4,
        "the scalers and one per cluster: {mounts:?}"
    );
    assert_eq!(volumes.len(), 4, "{volumes:?}");
    let cluster_args: Vec<String> = rel
        .args()
        .into_iter()
        .filter(|a| a.starts_with("--cluster"))
        .collect();
    assert_eq!(
        cluster_args,
        [
            format!("--cluster=eu={CLUSTERS_DIR}/eu/kubeconfig"),
            format!("--cluster=us-east-1={CLUSTERS_DIR}/us-east-1/config.yaml"),
            format!("--cluster={long}={CLUSTERS_DIR}/{long}/kubeconfig"),
        ]
    );
    for (name, secret) in [
        ("eu", "eu-kubeconfig"),
        ("us-east-1", "us-kubeconfig"),
        (long.as_str(), "far-kubeconfig"),
    ] {
        // The whole Secret, read-only, at the directory the argument points into.
        let dir = format!("{CLUSTERS_DIR}/{name}");
        let mount = mounts
            .iter()
            .find(|m| m["mountPath"] == dir.as_str())
            .unwrap_or_else(|| panic!("no mount at {dir}: {mounts:?}"));
        let volume_name = mount["name"].as_str().unwrap();
        // A volume name is a DNS label: cluster-<name>, or a hash of a name too long for it.
        assert!(
            volume_name.starts_with("cluster-") && volume_name.len() <= 63,
            "{volume_name}"
        );
        if name.len() <= 55 {
            assert_eq!(volume_name, format!("cluster-{name}"));
        }
        assert_eq!(
            mount,
            &json!({"name": volume_name, "mountPath": dir, "readOnly": true})
        );
        // No items: every key of the Secret is in the directory, and the kubelet updates them.
        // 0444: the kubelet writes the files owned by root, and the agent (user 65532, no
        // fsGroup by default) reads them as "other".
        let volume = volumes
            .iter()
            .find(|v| v["name"] == volume_name)
            .expect("the mounted volume");
        assert_eq!(
            volume,
            &json!({"name": volume_name, "secret": {"secretName": secret, "defaultMode": 0o444}})
        );
    }
    // Mounted whole, never with subPath (a subPath mount never sees a rotated Secret).
    let mut sub_paths = Vec::new();
    for doc in &rel.docs {
        find_key(doc, "subPath", &mut sub_paths);
        find_key(doc, "subPathExpr", &mut sub_paths);
    }
    assert!(
        sub_paths.is_empty(),
        "subPath mounts never update: {sub_paths:?}"
    );
    // The mode is rendered in decimal, so the API server (YAML 1.1, where 0444 is octal) reads
    // what the manifest says: the Deployment Helm sent has the same volumes.
    let sent = rel
        .writes
        .iter()
        .find(|w| w["method"] == "POST" && w["body"]["kind"] == "Deployment")
        .expect("the install created the Deployment");
    assert_eq!(
        sent["body"]["spec"]["template"]["spec"]["volumes"],
        pod["volumes"]
    );
    // The home cluster's RBAC does not change: remote clusters need nothing from it.
    assert_eq!(rel.rules(), install(json!({})).rules());
    // The notes list the clusters.
    for line in [
        "eu: Secret eu-kubeconfig, --cluster=eu=/etc/temporal-autoscaler/clusters/eu/kubeconfig",
        "us-east-1: Secret us-kubeconfig, --cluster=us-east-1=/etc/temporal-autoscaler/clusters/us-east-1/config.yaml",
    ] {
        assert!(rel.notes.contains(line), "{line}: {}", rel.notes);
    }

    // With an fsGroup the files' group is the agent's: 0440.
    let grouped = install(json!({
        "clusters": [{"name": "eu", "secretName": "eu-kubeconfig"}],
        "podSecurityContext": {"fsGroup": 65532},
    }));
    let volume = grouped.deployment()["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "cluster-eu")
        .expect("the eu volume")
        .clone();
    assert_eq!(volume["secret"]["defaultMode"], json!(0o440));

    // A name twice is refused at render time.
    let err = install_fails(json!({"clusters": [
        {"name": "eu", "secretName": "a"},
        {"name": "eu", "secretName": "b"},
    ]}));
    assert!(err.contains("already used"), "{err}");
}

#[test]
fn without_clusters_nothing_of_them_renders() {
    let rel = install(json!({}));
    assert!(
        !rel.args().iter().any(|a| a.starts_with("--cluster")),
        "{:?}",
        rel.args()
    );
    let pod = &rel.deployment()["spec"]["template"]["spec"];
    let mut names = Vec::new();
    find_key(pod, "name", &mut names);
    assert!(
        names
            .iter()
            .all(|n| !n.as_str().unwrap_or_default().starts_with("cluster-")),
        "{names:?}"
    );
    let mut paths = Vec::new();
    find_key(pod, "mountPath", &mut paths);
    assert_eq!(paths, [&json!("/etc/temporal-autoscaler/scalers")]);
    assert!(!rel.notes.contains("Remote clusters"), "{}", rel.notes);
    // An explicit empty list renders exactly the same.
    let empty = install(json!({"clusters": []}));
    assert_eq!(empty.docs, rel.docs);
    assert_eq!(empty.notes, rel.notes);
}

#[test]
fn the_schema_refuses_bad_clusters() {
    for (cluster, mentions) in [
        // The agent's own cluster is `local`: not a remote one.
        (
            json!({"name": "local", "secretName": "k"}),
            "/clusters/0/name",
        ),
        // A DNS label: lowercase.
        (json!({"name": "EU", "secretName": "k"}), "/clusters/0/name"),
        (
            json!({"name": "eu-", "secretName": "k"}),
            "/clusters/0/name",
        ),
        (json!({"name": "eu"}), "secretName"),
        (
            json!({"name": "eu", "secretName": "k", "kubeconfig": "/p/eu"}),
            "kubeconfig",
        ),
        (json!({"name": "eu", "secretName": "k", "key": 1}), "key"),
    ] {
        let values = json!({"clusters": [cluster]});
        let err = install_fails(values.clone());
        assert!(
            err.contains("schema") && err.contains(mentions),
            "{values}: {err}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Scalers from values

#[test]
fn values_scalers_render_as_documents_the_agent_accepts() {
    let scalers = json!([
        scaler("orders-worker", Some("shop"), "orders"),
        scaler("billing-worker", None, "billing"),
    ]);
    let rel = install(json!({ "scalers": scalers }));
    let data = rel.one("ConfigMap", SCALERS_CM)["data"]
        .as_object()
        .unwrap()
        .clone();
    let keys: Vec<&String> = data.keys().collect();
    assert_eq!(
        keys,
        ["ops-billing-worker.yaml", "shop-orders-worker.yaml"],
        "one <namespace>-<name>.yaml per scaler; the namespace defaults to the release's"
    );
    for (key, input, ns) in [
        ("shop-orders-worker.yaml", &scalers[0], "shop"),
        ("ops-billing-worker.yaml", &scalers[1], NS),
    ] {
        let doc: Value = serde_saphyr::from_str(data[key].as_str().unwrap()).unwrap();
        assert_eq!(
            doc,
            json!({
                "apiVersion": "scaling.example.com/v1alpha1",
                "kind": "TemporalScaler",
                "metadata": {"name": input["name"], "namespace": ns},
                "spec": input["spec"],
            })
        );
    }

    // The agent's own validation accepts the directory as the kubelet would lay it out.
    let dir = tempfile::tempdir().unwrap();
    for (key, text) in &data {
        std::fs::write(dir.path().join(key), text.as_str().unwrap()).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_temporal-autoscaler"))
        .arg("check")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "temporal-autoscaler check: {stdout}");
    assert!(stdout.contains("ok: 2 scaler(s) in 2 file(s)"), "{stdout}");

    // Two scalers with one key are refused at render time, not silently merged.
    let err = install_fails(json!({"scalers": [
        scaler("w", Some("shop"), "a"),
        scaler("w", Some("shop"), "b"),
    ]}));
    assert!(err.contains("already used"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// values.schema.json, README, optional resources

#[test]
fn the_schema_rejects_bad_values() {
    for (values, mentions) in [
        (json!({"replicaCount": "two"}), "replicaCount"),
        (json!({"replicaCout": 3}), "replicaCout"),
        (
            json!({"rbac": {"scaleTargets": [{"apiGroup": "*", "resources": ["*"]}]}}),
            "scaleTargets",
        ),
        (
            json!({"scalers": [{"namespace": "shop", "spec": {"scaleTargetRef": {"name": "w"}, "triggers": [{}]}}]}),
            "scalers",
        ),
        (json!({"logFormat": "xml"}), "logFormat"),
        (
            json!({"securityContext": {"capabilities": {"drop": "ALL"}}}),
            "capabilities",
        ),
    ] {
        let err = install_fails(values.clone());
        assert!(
            err.contains("schema") && err.contains(mentions),
            "{values}: {err}"
        );
    }
}

/// The values of values.yaml, walked beside values.schema.json: a value is a leaf where the
/// schema stops describing properties (scalars, lists, free-form maps such as `podLabels`).
/// Panics on a value the schema does not describe.
fn leaves(value: &Value, schema: &Value, path: &str, out: &mut Vec<String>) {
    match (value, schema.get("properties")) {
        (Value::Object(m), Some(props)) if !m.is_empty() => {
            for (k, v) in m {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let child = props
                    .get(k)
                    .unwrap_or_else(|| panic!("values.schema.json does not describe {p}"));
                leaves(v, child, &p, out);
            }
        }
        _ => {
            assert!(
                schema.get("type").is_some() || schema.get("enum").is_some(),
                "values.schema.json: {path} has no type"
            );
            out.push(path.to_string());
        }
    }
}

#[test]
fn schema_and_readme_cover_every_value() {
    let values = yaml_file(&chart_dir().join("values.yaml"));
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(chart_dir().join("values.schema.json")).unwrap(),
    )
    .unwrap();
    let readme = std::fs::read_to_string(chart_dir().join("README.md")).unwrap();
    let mut paths = Vec::new();
    leaves(&values, &schema, "", &mut paths);
    assert!(paths.len() > 40, "{paths:?}");
    for path in &paths {
        assert!(
            readme.contains(&format!("| `{path}` |")),
            "charts/temporal-autoscaler/README.md does not list `{path}`"
        );
    }
    // Unknown top-level values are rejected, and every top-level schema entry is a value.
    assert_eq!(schema["additionalProperties"], json!(false));
    for key in schema["properties"].as_object().unwrap().keys() {
        assert!(
            key == "global" || values.get(key).is_some(),
            "values.schema.json has {key}, values.yaml does not"
        );
    }
}

#[test]
fn optional_resources_render_only_when_enabled() {
    let off = install(json!({}));
    for kind in ["ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy"] {
        assert!(off.all(kind).is_empty(), "{kind} is on by default");
    }
    assert_eq!(off.all("ConfigMap").len(), 1, "only the scalers ConfigMap");

    let on = install(json!({
        "serviceMonitor": {"enabled": true, "labels": {"release": "prom"}},
        "podDisruptionBudget": {"enabled": true},
        "networkPolicy": {"enabled": true},
        "grafanaDashboard": {"enabled": true},
    }));
    let selector = &on.deployment()["spec"]["selector"]["matchLabels"];

    let sm = on.one("ServiceMonitor", FULLNAME);
    assert_eq!(sm["metadata"]["labels"]["release"], "prom");
    assert_eq!(sm["spec"]["selector"]["matchLabels"], *selector);
    assert_eq!(
        sm["spec"]["endpoints"][0],
        json!({"port": "http", "path": "/metrics", "honorLabels": true, "interval": "30s"})
    );

    let pdb = on.one("PodDisruptionBudget", FULLNAME);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"], *selector);
    assert_eq!(pdb["spec"]["maxUnavailable"], json!(1));
    let pdb_min = install(json!({"podDisruptionBudget": {"enabled": true, "minAvailable": "50%"}}));
    let spec = &pdb_min.one("PodDisruptionBudget", FULLNAME)["spec"];
    assert_eq!(spec["minAvailable"], "50%");
    assert_eq!(spec["maxUnavailable"], Value::Null);

    let np = on.one("NetworkPolicy", FULLNAME);
    assert_eq!(np["spec"]["podSelector"]["matchLabels"], *selector);
    assert_eq!(
        np["spec"]["ingress"],
        json!([{"ports": [{"port": "http", "protocol": "TCP"}]}])
    );
    let mut ports = Vec::new();
    find_key(&np["spec"]["egress"], "port", &mut ports);
    for p in [53, 443, 6443, 7233] {
        assert!(ports.contains(&&json!(p)), "egress to {p}: {ports:?}");
    }

    let dash = on.one("ConfigMap", &format!("{FULLNAME}-dashboard"));
    assert_eq!(dash["metadata"]["labels"]["grafana_dashboard"], "1");
    let board: Value =
        serde_json::from_str(dash["data"]["temporal-autoscaler.json"].as_str().unwrap()).unwrap();
    let mut exprs = Vec::new();
    find_key(&board["panels"], "expr", &mut exprs);
    let exprs: String = exprs.iter().map(|e| e.as_str().unwrap()).collect();
    // Queue size, desired vs current replicas, scale events, RPC errors: metrics the agent
    // exports (docs/http.md, Metrics).
    let readme = std::fs::read_to_string(root().join("docs/http.md")).unwrap();
    for metric in [
        "temporal_queue_size",
        "temporal_scaler_desired_replicas",
        "temporal_scaler_current_replicas",
        "temporal_scaler_scale_up_total",
        "temporal_scaler_scale_down_total",
        "temporal_rpc_requests_total",
    ] {
        assert!(exprs.contains(metric), "dashboard lacks {metric}");
        assert!(
            readme.contains(metric),
            "docs/http.md's metrics lack {metric}"
        );
    }
}

#[test]
fn the_status_page_is_on_unless_turned_off() {
    let on = install(json!({}));
    assert!(
        !on.args().iter().any(|a| a.starts_with("--ui")),
        "{:?}",
        on.args()
    );
    let off = install(json!({"ui": {"enabled": false}}));
    assert!(
        off.args().contains(&"--ui=false".to_string()),
        "{:?}",
        off.args()
    );
    let err = install_fails(json!({"ui": {"enabled": "no"}}));
    assert!(err.contains("schema") && err.contains("enabled"), "{err}");
}

/// `kubeTimeout` becomes `--kube-timeout` when set (fractions kept); unset, the agent picks 5 s
/// or the Lease's margin. A value that is not a positive number is refused by the schema.
#[test]
fn the_kube_timeout_is_passed_only_when_set() {
    let unset = install(json!({}));
    assert!(
        !unset.args().iter().any(|a| a.starts_with("--kube-timeout")),
        "{:?}",
        unset.args()
    );
    let set = install(json!({"kubeTimeout": 2.5}));
    assert!(
        set.args().contains(&"--kube-timeout=2.5".to_string()),
        "{:?}",
        set.args()
    );
    for bad in [json!(0), json!("5s")] {
        let err = install_fails(json!({ "kubeTimeout": bad }));
        assert!(err.contains("kubeTimeout"), "{err}");
    }
}

/// Idle pods first is on by default: list and patch on pods, and the admission policy that
/// lets the agent's ServiceAccount change only the deletion-cost annotation of a pod. Off: no
/// pod permission, no policy, `--idle-first=false`.
#[test]
fn idle_first_grants_pods_only_with_its_admission_policy() {
    let on = install(json!({}));
    assert!(!on.args().iter().any(|a| a.starts_with("--idle-first")));
    let policy = on.one(
        "ValidatingAdmissionPolicy",
        &format!("{FULLNAME}-pod-deletion-cost"),
    );
    assert_eq!(
        policy["spec"]["matchConditions"][0]["expression"],
        format!("request.userInfo.username == 'system:serviceaccount:{NS}:{FULLNAME}'")
    );
    assert_eq!(
        policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"],
        json!(["UPDATE"])
    );
    let binding = on.one(
        "ValidatingAdmissionPolicyBinding",
        &format!("{FULLNAME}-pod-deletion-cost"),
    );
    assert_eq!(binding["spec"]["validationActions"], json!(["Deny"]));
    assert_eq!(
        binding["spec"]["policyName"],
        format!("{FULLNAME}-pod-deletion-cost")
    );

    let no_policy = install(json!({"idleFirst": {"admissionPolicy": false}}));
    assert!(no_policy.all("ValidatingAdmissionPolicy").is_empty());
    assert!(no_policy.rules().iter().any(|r| r.resource == "pods"));

    let off = install(json!({"idleFirst": {"enabled": false}}));
    assert!(off.args().contains(&"--idle-first=false".to_string()));
    assert!(off.rules().iter().all(|r| r.resource != "pods"));
    assert!(off.all("ValidatingAdmissionPolicy").is_empty());
    assert!(off.all("ValidatingAdmissionPolicyBinding").is_empty());
    let err = install_fails(json!({"idleFirst": {"enabled": "yes"}}));
    assert!(err.contains("enabled"), "{err}");
}

/// The chart's admission policy on a real API server (1.30+): as the agent's ServiceAccount
/// (impersonated, with the chart's pod permissions), setting a pod's deletion cost is allowed;
/// changing its labels or another annotation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn the_admission_policy_lets_the_agent_change_only_the_deletion_cost() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
    use kube::discovery::Scope;
    let admin = support::real_cluster().await;
    let ns = format!("ta-vap-{:x}", fastrand::u32(..));
    let values = json!({"watchNamespaces": [ns]});
    // A release in the test's namespace: the rendered policy names its ServiceAccount there.
    let rel = helm(&chart_dir(), std::slice::from_ref(&values))
        .pop()
        .unwrap()
        .unwrap();
    let apply = |doc: &Value| {
        let admin = admin.clone();
        let mut doc = doc.clone();
        async move {
            let gvk = kube::core::GroupVersionKind::try_from(
                &serde_json::from_value::<kube::core::TypeMeta>(doc.clone()).unwrap(),
            )
            .unwrap();
            let (ar, caps) = kube::discovery::pinned_kind(&admin, &gvk).await.unwrap();
            let name = doc["metadata"]["name"].as_str().unwrap().to_string();
            let api: Api<DynamicObject> = match caps.scope {
                Scope::Namespaced => {
                    let ns = doc["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or(NS)
                        .to_string();
                    doc["metadata"]["namespace"] = json!(ns);
                    Api::namespaced_with(admin, &ns, &ar)
                }
                Scope::Cluster => Api::all_with(admin, &ar),
            };
            api.patch(
                &name,
                &PatchParams::apply("test").force(),
                &Patch::Apply(&doc),
            )
            .await
            .unwrap();
            (api, name)
        }
    };
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(admin.clone());
    // The namespaces this test makes (the release's may exist already): deleted at the end.
    let mut created = Vec::new();
    for n in [NS.to_string(), ns.clone()] {
        let made = namespaces
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": n}})).unwrap(),
            )
            .await;
        if made.is_ok() {
            created.push(n);
        }
    }
    let mut made = Vec::new();
    for kind in [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ] {
        for doc in rel.all(kind) {
            made.push(apply(doc).await);
        }
    }
    // A pod to change (it stays Pending: there may be no nodes).
    let pods: Api<Pod> = Api::namespaced(admin.clone(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "w-0", "labels": {"app": "w"}},
        "spec": {"containers": [{"name": "w", "image": "registry.k8s.io/pause:3.10"}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // As the agent: impersonating its ServiceAccount.
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{NS}:{FULLNAME}"));
    let agent: Api<Pod> = Api::namespaced(
        temporal_autoscaler::deadline::client(config, support::TEST_KUBE_DEADLINE).unwrap(),
        &ns,
    );
    let merge = |v: Value| Patch::Merge(v);
    // A new policy takes effect within seconds: wait until a dry run of a label change is
    // refused (dry runs go through admission too, and change nothing).
    let steal = json!({"metadata": {"labels": {"app": "stolen"}}});
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while agent
        .patch_metadata(
            "w-0",
            &PatchParams::default().dry_run(),
            &merge(steal.clone()),
        )
        .await
        .is_ok()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the policy never took effect"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let allowed = agent
        .patch_metadata(
            "w-0",
            &PatchParams::default(),
            &merge(json!({"metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": "3"}}})),
        )
        .await;
    let label = agent
        .patch_metadata(
            "w-0",
            &PatchParams::default(),
            &merge(json!({"metadata": {"labels": {"app": "stolen"}}})),
        )
        .await;
    let other = agent
        .patch_metadata(
            "w-0",
            &PatchParams::default(),
            &merge(json!({"metadata": {"annotations": {"other": "x"}}})),
        )
        .await;
    let after = pods.get("w-0").await.unwrap();
    // Clean up before asserting.
    for (api, name) in made {
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
    for n in created {
        let _ = namespaces.delete(&n, &DeleteParams::default()).await;
    }
    assert!(allowed.is_ok(), "{allowed:?}");
    for refused in [label, other] {
        let e = refused.unwrap_err().to_string();
        assert!(
            e.contains("may change only the controller.kubernetes.io/pod-deletion-cost annotation"),
            "{e}"
        );
    }
    let meta = after.metadata;
    assert_eq!(meta.labels.unwrap()["app"], "w");
    let annotations = meta.annotations.unwrap();
    assert_eq!(
        annotations["controller.kubernetes.io/pod-deletion-cost"],
        "3"
    );
    assert!(!annotations.contains_key("other"));
}
