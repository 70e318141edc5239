//! `temporal-autoscaler convert FILE`: KEDA ScaledObjects with `temporal` triggers become
//! TemporalScaler documents. Every field that has no equivalent, or whose meaning changes, gets a
//! note naming the document and the field path. A document is refused instead when what cannot
//! be carried over would change the meaning of what is kept: a converted scaler never reads
//! another backlog than KEDA did. Secret values never appear in a note or an error.

use crate::spec::{
    API_VERSION, AdvancedSpec, BehaviorSpec, DocumentMeta, ENCRYPTED_KEY_HINT, FallbackSpec,
    HpaConfigSpec, KIND, PolicySpec, ScaleTargetRef, ScalerDocument, ScalingRulesSpec,
    SecretTargetRef, TemporalScalerSpec, TriggerSpec, validate,
};
use serde_json::Value;

/// A YAML mapping, read as JSON (keys are text).
type Mapping = serde_json::Map<String, Value>;
use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::Path;

/// The outcome of converting one file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// The TemporalScalers as multi-document YAML; empty when nothing was converted.
    pub output: String,
    /// One line per field with no equivalent or with a changed meaning, and per skipped
    /// document: `FILE: document N (Kind namespace/name): field.path: what happened`.
    pub notes: Vec<String>,
    /// Why a ScaledObject with a temporal trigger was not converted, in the same form: one line
    /// per reason, then `FILE: document N (…): not converted`.
    pub errors: Vec<String>,
    /// How many TemporalScalers `output` holds.
    pub converted: usize,
}

const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
const PAUSE_ANNOTATIONS: &[&str] = &[
    "autoscaling.keda.sh/paused",
    "autoscaling.keda.sh/paused-replicas",
];

/// KEDA temporal-trigger keys carried over as they are. The agent's own extra keys
/// (`targetBacklogAgeSeconds`, …) are not listed: KEDA has no such input. A test checks the
/// agent accepts every one of these.
const ACCEPTED_KEYS: &[&str] = &[
    "endpoint",
    "endpointFromEnv",
    "namespace",
    "taskQueue",
    "queueTypes",
    "targetQueueSize",
    "activationTargetQueueSize",
    "apiKey",
    "apiKeyFromEnv",
    "ca",
    "cert",
    "key",
    "tlsServerName",
    "unsafeSsl",
    "tls",
    "buildId",
    "selectAllActive",
    "selectUnversioned",
    "workerDeploymentName",
    "workerDeploymentBuildId",
    "workerVersioningType",
    "deploymentName",
    "minConnectTimeout",
];
/// Keys the agent reads from its own environment, where KEDA reads the scale target's.
const ENV_KEYS: &[&str] = &["endpointFromEnv", "apiKeyFromEnv"];
/// KEDA's names for keys the agent spells differently.
const RENAMED_KEYS: &[(&str, &str)] = &[("enableTLS", "tls"), ("queueName", "taskQueue")];
/// Keys KEDA also reads as `<key>FromEnv` from the scale target's environment (after the key
/// itself), which the agent cannot; `endpoint` and `apiKey` have the agent's own `…FromEnv`.
const KEDA_ENV_ONLY_KEYS: &[&str] = &["namespace", "taskQueue", "buildId", "deploymentName"];

const UNKNOWN: &str = "not a field the converter knows; dropped";
const NO_EQUIVALENT: &str = "no equivalent; dropped";

/// Convert every KEDA ScaledObject with a `temporal` trigger in `content` (multi-document
/// YAML, or a `kubectl get -o yaml` List). Only unreadable YAML is an `Err`; everything else
/// is reported in the notes, and ScaledObjects not converted in the errors.
pub fn convert(file: &Path, content: &str) -> Result<ConvertReport, String> {
    let shown = file.display().to_string();
    let docs = load(content).map_err(|e| format!("{shown}: {e}"))?;
    let auths: Vec<AuthDoc> = docs.iter().filter_map(AuthDoc::from_doc).collect();
    let mut report = ConvertReport::default();
    for (label, value) in &docs {
        let described = describe(label, value);
        let mut n = Notes {
            prefix: format!("{shown}: {described}"),
            out: &mut report.notes,
            errors: &mut report.errors,
        };
        let Some(root) = value.as_object() else {
            n.doc("not a Kubernetes object; skipped");
            continue;
        };
        let api = value["apiVersion"].as_str();
        let kind = value["kind"].as_str();
        match (api, kind) {
            (Some(KEDA_API_VERSION), Some("ScaledObject")) => {}
            (_, Some("ScaledObject")) => {
                n.doc(format!(
                    "apiVersion {:?} is not {KEDA_API_VERSION}; skipped",
                    api.unwrap_or_default()
                ));
                continue;
            }
            (_, Some("ScaledJob")) => {
                n.doc("ScaledJob is not supported (the agent scales workloads through /scale and runs no Jobs); skipped");
                continue;
            }
            (Some(KEDA_API_VERSION), Some("TriggerAuthentication")) => {
                n.doc("not a ScaledObject; skipped (read for the authenticationRef of ScaledObjects in this file)");
                continue;
            }
            (_, Some(k)) => {
                n.doc(format!("{k} is not a KEDA ScaledObject; skipped"));
                continue;
            }
            (_, None) => {
                n.doc("no kind; skipped");
                continue;
            }
        }
        let types: Vec<&str> = value["spec"]["triggers"]
            .as_array()
            .map(|s| {
                s.iter()
                    .map(|t| t["type"].as_str().unwrap_or("?"))
                    .collect()
            })
            .unwrap_or_default();
        if !types.contains(&"temporal") {
            let found = if types.is_empty() {
                "it has no triggers".to_string()
            } else {
                format!("its trigger types: {}", types.join(", "))
            };
            n.doc(format!("no trigger of type temporal ({found}); skipped"));
            continue;
        }
        let refused_before = n.errors.len();
        let doc = scaled_object(root, &auths, &mut n);
        let Some(doc) = doc.filter(|_| n.errors.len() == refused_before) else {
            n.refuse_doc("not converted");
            continue;
        };
        if let Err(errors) = validate(&doc) {
            for e in errors {
                n.refuse_doc(format!(
                    "the converted TemporalScaler is not valid for the agent: {e}"
                ));
            }
            n.refuse_doc("not converted");
            continue;
        }
        let yaml = serde_saphyr::to_string(&doc).map_err(|e| format!("cannot write YAML: {e}"))?;
        if !report.output.is_empty() {
            report.output.push_str("---\n");
        }
        report
            .output
            .push_str(&format!("# from {shown}: {described}\n"));
        report.output.push_str(&yaml);
        report.converted += 1;
    }
    if docs.is_empty() {
        report
            .notes
            .push(format!("{shown}: no YAML documents; nothing converted"));
    } else if report.converted == 0 {
        report.notes.push(format!(
            "{shown}: nothing converted (no valid {KEDA_API_VERSION} ScaledObject with a temporal trigger)"
        ));
    }
    Ok(report)
}

/// The non-empty documents, each with its label; a List's items count as documents.
fn load(content: &str) -> Result<Vec<(String, Value)>, String> {
    let mut docs = Vec::new();
    // The agent's own YAML reading (YAML 1.2 core, merge keys expanded, nesting budgets).
    let values = crate::source::yaml::documents(content)
        .map_err(|e| format!("document {}: invalid YAML: {}", e.document, e.message))?;
    for (index, d) in values.into_iter().enumerate() {
        let value = d.value;
        let label = format!("document {index}");
        let is_list = value["kind"].as_str().is_some_and(|k| k.ends_with("List"));
        match value["items"].as_array() {
            Some(items) if is_list => docs.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (format!("{label} items[{i}]"), item.clone())),
            ),
            _ => docs.push((label, value)),
        }
    }
    Ok(docs)
}

/// `document 0 (ScaledObject shop/orders)`; never any value but kind, namespace and name.
fn describe(label: &str, value: &Value) -> String {
    let kind = value["kind"].as_str();
    let name = value["metadata"]["name"].as_str();
    let namespace = value["metadata"]["namespace"].as_str();
    match (kind, namespace, name) {
        (Some(k), Some(ns), Some(name)) => format!("{label} ({k} {ns}/{name})"),
        (Some(k), None, Some(name)) => format!("{label} ({k} {name})"),
        (Some(k), _, None) => format!("{label} ({k})"),
        (None, _, _) => label.to_string(),
    }
}

/// Notes about one document, and the reasons it is refused.
struct Notes<'a> {
    prefix: String,
    out: &'a mut Vec<String>,
    errors: &'a mut Vec<String>,
}

impl Notes<'_> {
    fn doc(&mut self, msg: impl Display) {
        self.out.push(format!("{}: {msg}", self.prefix));
    }
    fn at(&mut self, path: &str, msg: impl Display) {
        self.out.push(format!("{}: {path}: {msg}", self.prefix));
    }
    fn refuse_doc(&mut self, msg: impl Display) {
        self.errors.push(format!("{}: {msg}", self.prefix));
    }
    /// The document is not converted: carrying `path` over (or dropping it) would change what
    /// the scaler reads or how it scales.
    fn refuse(&mut self, path: &str, msg: impl Display) {
        self.errors.push(format!("{}: {path}: {msg}", self.prefix));
    }
    /// Notes under `path`, with `what` before each message.
    fn under(&mut self, path: &str, what: &str) -> Notes<'_> {
        Notes {
            prefix: format!("{}: {path}: {what}", self.prefix),
            out: self.out,
            errors: self.errors,
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['.', '/', '[', ' ']) {
        format!("{path}[{key:?}]")
    } else if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn key_text(k: &str) -> String {
    k.to_string()
}

fn int(v: &Value, path: &str, n: &mut Notes) -> Option<i32> {
    let i = v.as_i64().and_then(|i| i32::try_from(i).ok());
    if i.is_none() {
        n.at(path, "not an integer; dropped");
    }
    i
}

fn text(v: &Value, path: &str, n: &mut Notes) -> Option<String> {
    let s = v.as_str().map(str::to_string);
    if s.is_none() {
        n.at(path, "not a string; dropped");
    }
    s
}

/// A mapping's fields, taken one by one; what is left over is noted.
struct Fields<'v> {
    path: String,
    rest: Vec<(String, &'v Value)>,
}

impl<'v> Fields<'v> {
    fn new(path: impl Into<String>, map: &'v Mapping) -> Self {
        Self {
            path: path.into(),
            rest: map.iter().map(|(k, v)| (key_text(k), v)).collect(),
        }
    }
    fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }
    /// The field's value; `key: null` counts as absent.
    fn take(&mut self, key: &str) -> Option<&'v Value> {
        let i = self.rest.iter().position(|(k, _)| k == key)?;
        let (_, v) = self.rest.remove(i);
        (!v.is_null()).then_some(v)
    }
    fn int(&mut self, key: &str, n: &mut Notes) -> Option<i32> {
        let v = self.take(key)?;
        int(v, &self.path(key), n)
    }
    fn text(&mut self, key: &str, n: &mut Notes) -> Option<String> {
        let v = self.take(key)?;
        text(v, &self.path(key), n)
    }
    fn map(&mut self, key: &str, n: &mut Notes) -> Option<(String, &'v Mapping)> {
        let v = self.take(key)?;
        let path = self.path(key);
        match v.as_object() {
            Some(m) => Some((path, m)),
            None => {
                n.at(&path, "not a mapping; dropped");
                None
            }
        }
    }
    fn seq(&mut self, key: &str, n: &mut Notes) -> Option<(String, &'v [Value])> {
        let v = self.take(key)?;
        let path = self.path(key);
        match v.as_array() {
            Some(s) => Some((path, s.as_slice())),
            None => {
                n.at(&path, "not a list; dropped");
                None
            }
        }
    }
    /// Notes every field not taken.
    fn finish(self, n: &mut Notes, msg: &str) {
        for (k, _) in self.rest {
            n.at(&join(&self.path, &k), msg);
        }
    }
}

/// A TriggerAuthentication of the same file.
struct AuthDoc<'v> {
    namespace: String,
    name: String,
    spec: Option<&'v Mapping>,
}

impl<'v> AuthDoc<'v> {
    fn from_doc((_, v): &'v (String, Value)) -> Option<Self> {
        if v["apiVersion"].as_str() != Some(KEDA_API_VERSION)
            || v["kind"].as_str() != Some("TriggerAuthentication")
        {
            return None;
        }
        Some(Self {
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: v["metadata"]["name"].as_str()?.to_string(),
            spec: v["spec"].as_object(),
        })
    }
}

fn scaled_object(root: &Mapping, auths: &[AuthDoc], n: &mut Notes) -> Option<ScalerDocument> {
    let mut f = Fields::new("", root);
    f.take("apiVersion");
    f.take("kind");
    let metadata = f.map("metadata", n).and_then(|(_, m)| metadata(m, n));
    let spec = f.map("spec", n);
    if f.take("status").is_some() {
        n.at("status", "KEDA's runtime state; dropped");
    }
    f.finish(n, UNKNOWN);
    let metadata = metadata?;
    let Some((_, spec)) = spec else {
        n.refuse("spec", "missing");
        return None;
    };
    let namespace = metadata.namespace.clone().unwrap_or_default();
    let spec = scaler_spec(spec, &namespace, auths, n)?;
    Some(ScalerDocument {
        api_version: API_VERSION.to_string(),
        kind: KIND.to_string(),
        metadata,
        spec,
    })
}

fn metadata(m: &Mapping, n: &mut Notes) -> Option<DocumentMeta> {
    let mut f = Fields::new("metadata", m);
    let name = f.text("name", n);
    let namespace = f.text("namespace", n).unwrap_or_else(|| {
        n.at("metadata.namespace", "absent; set to \"default\"");
        "default".to_string()
    });
    let mut labels = BTreeMap::new();
    if let Some((path, m)) = f.map("labels", n) {
        for (k, v) in m {
            let k = key_text(k);
            if let Some(s) = text(v, &join(&path, &k), n) {
                labels.insert(k, s);
            }
        }
    }
    let mut annotations = BTreeMap::new();
    if let Some((path, m)) = f.map("annotations", n) {
        for (k, v) in m {
            let k = key_text(k);
            let p = join(&path, &k);
            if !PAUSE_ANNOTATIONS.contains(&k.as_str()) {
                n.at(&p, NO_EQUIVALENT);
            } else if let Some(s) = text(v, &p, n) {
                annotations.insert(k, s);
            }
        }
    }
    f.finish(n, NO_EQUIVALENT);
    let Some(name) = name else {
        n.refuse("metadata.name", "missing");
        return None;
    };
    Some(DocumentMeta {
        name,
        namespace: Some(namespace),
        labels,
        annotations,
    })
}

fn scaler_spec(
    m: &Mapping,
    namespace: &str,
    auths: &[AuthDoc],
    n: &mut Notes,
) -> Option<TemporalScalerSpec> {
    let mut f = Fields::new("spec", m);
    let target = f.map("scaleTargetRef", n).and_then(|(p, m)| {
        let mut t = Fields::new(p, m);
        let api_version = t.text("apiVersion", n);
        let kind = t.text("kind", n);
        let name = t.text("name", n);
        if t.take("envSourceContainerName").is_some() {
            n.at(
                &t.path("envSourceContainerName"),
                "no equivalent (the agent reads *FromEnv variables from its own environment); dropped",
            );
        }
        t.finish(n, UNKNOWN);
        Some(ScaleTargetRef {
            api_version,
            kind,
            name: name?,
            cluster: None,
        })
    });
    let polling_interval = f.int("pollingInterval", n);
    let cooldown_period = f.int("cooldownPeriod", n);
    let how_long = match cooldown_period {
        Some(c) => format!("{c} s"),
        None => "absent: the default 300 s".to_string(),
    };
    n.at(
        "spec.cooldownPeriod",
        format!("meaning changes ({how_long}): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"),
    );
    let initial_cooldown_period = f.int("initialCooldownPeriod", n);
    if initial_cooldown_period.is_some() {
        n.at(
            "spec.initialCooldownPeriod",
            "meaning changes: KEDA applies it only to scaling to zero after the ScaledObject is created; the agent waits it before any scale-down after the scaler starts",
        );
    }
    let min_replica_count = f.int("minReplicaCount", n);
    let max_replica_count = f.int("maxReplicaCount", n);
    let idle_replica_count = f.int("idleReplicaCount", n);
    let fallback = f.map("fallback", n).and_then(|(p, m)| fallback(&p, m, n));
    let advanced = f.map("advanced", n).and_then(|(p, m)| advanced(&p, m, n));
    let mut triggers = Vec::new();
    if let Some((path, list)) = f.seq("triggers", n) {
        for (i, t) in list.iter().enumerate() {
            let p = format!("{path}[{i}]");
            let Some(tm) = t.as_object() else {
                n.at(&p, "not a mapping; dropped");
                continue;
            };
            match t["type"].as_str() {
                Some("temporal") => triggers.push(trigger(&p, tm, namespace, auths, n)),
                other => n.at(
                    &p,
                    format!(
                        "trigger of type {:?}: the agent only scales on Temporal backlogs; dropped from the output, so this scaler no longer scales on it",
                        other.unwrap_or_default()
                    ),
                ),
            }
        }
    }
    f.finish(n, UNKNOWN);
    let Some(scale_target_ref) = target else {
        n.refuse("spec.scaleTargetRef.name", "missing");
        return None;
    };
    Some(TemporalScalerSpec {
        scale_target_ref,
        polling_interval,
        cooldown_period,
        initial_cooldown_period,
        min_replica_count,
        max_replica_count,
        idle_replica_count,
        fallback,
        advanced,
        placement: None,
        scale_down: None,
        triggers,
    })
}

fn fallback(path: &str, m: &Mapping, n: &mut Notes) -> Option<FallbackSpec> {
    let mut f = Fields::new(path, m);
    let failure_threshold = f.int("failureThreshold", n);
    let replicas = f.int("replicas", n);
    let behavior = f.text("behavior", n);
    f.finish(n, UNKNOWN);
    match (failure_threshold, replicas) {
        (Some(failure_threshold), Some(replicas)) => Some(FallbackSpec {
            failure_threshold,
            replicas,
            behavior,
        }),
        _ => {
            n.at(
                path,
                "incomplete (failureThreshold and replicas are required); dropped",
            );
            None
        }
    }
}

fn advanced(path: &str, m: &Mapping, n: &mut Notes) -> Option<AdvancedSpec> {
    let mut f = Fields::new(path, m);
    let hpa = f
        .map("horizontalPodAutoscalerConfig", n)
        .and_then(|(p, m)| {
            let mut h = Fields::new(p, m);
            if h.take("name").is_some() {
                n.at(
                    &h.path("name"),
                    "no equivalent (the agent creates no HPA); dropped",
                );
            }
            let behavior = h.map("behavior", n).map(|(p, m)| behavior(&p, m, n));
            h.finish(n, UNKNOWN);
            behavior.map(|b| HpaConfigSpec { behavior: Some(b) })
        });
    if f.take("restoreToOriginalReplicaCount").is_some() {
        n.at(&f.path("restoreToOriginalReplicaCount"), NO_EQUIVALENT);
    }
    if f.take("scalingModifiers").is_some() {
        n.refuse(
            &f.path("scalingModifiers"),
            "KEDA scaled on this formula over the triggers' metrics; the agent scales on each \
             trigger's own count (the highest wins), so the triggers kept would scale otherwise: \
             remove scalingModifiers to convert",
        );
    }
    f.finish(n, UNKNOWN);
    hpa.map(|h| AdvancedSpec {
        horizontal_pod_autoscaler_config: Some(h),
        ..AdvancedSpec::default()
    })
}

fn behavior(path: &str, m: &Mapping, n: &mut Notes) -> BehaviorSpec {
    let mut f = Fields::new(path, m);
    let scale_up = f.map("scaleUp", n).map(|(p, m)| rules(&p, m, n));
    let scale_down = f.map("scaleDown", n).map(|(p, m)| rules(&p, m, n));
    f.finish(n, UNKNOWN);
    BehaviorSpec {
        scale_up,
        scale_down,
    }
}

fn rules(path: &str, m: &Mapping, n: &mut Notes) -> ScalingRulesSpec {
    let mut f = Fields::new(path, m);
    let stabilization_window_seconds = f.int("stabilizationWindowSeconds", n);
    let select_policy = f.text("selectPolicy", n);
    let policies = f.seq("policies", n).map(|(p, list)| {
        list.iter()
            .enumerate()
            .filter_map(|(i, v)| policy(&format!("{p}[{i}]"), v, n))
            .collect()
    });
    let tolerance = f.take("tolerance").and_then(|v| {
        let t = quantity(v);
        if t.is_none() {
            n.at(&join(path, "tolerance"), "not a number; dropped");
        }
        t
    });
    f.finish(n, UNKNOWN);
    ScalingRulesSpec {
        stabilization_window_seconds,
        select_policy,
        policies,
        tolerance,
    }
}

/// A Kubernetes quantity as the HPA's `tolerance` takes it: `0.05`, `"0.05"` or `"50m"`.
fn quantity(v: &Value) -> Option<f64> {
    if let Some(x) = v.as_f64() {
        return Some(x);
    }
    let s = v.as_str()?.trim();
    match s.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok().map(|x| x / 1000.0),
        None => s.parse().ok(),
    }
    .filter(|x| x.is_finite())
}

fn policy(path: &str, v: &Value, n: &mut Notes) -> Option<PolicySpec> {
    let Some(m) = v.as_object() else {
        n.at(path, "not a mapping; dropped");
        return None;
    };
    let mut f = Fields::new(path, m);
    let type_ = f.text("type", n);
    let value = f.int("value", n);
    let period_seconds = f.int("periodSeconds", n);
    f.finish(n, UNKNOWN);
    match (type_, value, period_seconds) {
        (Some(type_), Some(value), Some(period_seconds)) => Some(PolicySpec {
            type_,
            value,
            period_seconds,
        }),
        _ => {
            // Dropping one policy would change what the others allow (selectPolicy picks
            // among them).
            n.refuse(
                path,
                "incomplete policy: type, value and periodSeconds are required (the HPA rejects it), and dropping it would change what the other policies allow",
            );
            None
        }
    }
}

fn trigger(
    path: &str,
    m: &Mapping,
    namespace: &str,
    auths: &[AuthDoc],
    n: &mut Notes,
) -> TriggerSpec {
    let mut f = Fields::new(path, m);
    f.take("type");
    let name = f.text("name", n);
    let mut metadata = BTreeMap::new();
    let mut secret_refs = Vec::new();
    if let Some((p, m)) = f.map("metadata", n) {
        trigger_metadata(&p, m, &mut metadata, n);
    }
    if f.take("useCachedMetrics").is_some() {
        n.at(
            &f.path("useCachedMetrics"),
            "no equivalent (the agent polls every pollingInterval); dropped",
        );
    }
    if let Some(v) = f.take("metricType") {
        let p = f.path("metricType");
        match v.as_str() {
            Some("AverageValue") => n.at(
                &p,
                "dropped; the agent always scales on backlog per replica (AverageValue)",
            ),
            other => n.refuse(
                &p,
                format!(
                    "{:?} is not supported: the agent always divides the backlog by targetQueueSize per replica (AverageValue), so this targetQueueSize would give other replica counts: remove metricType (with a per-replica targetQueueSize) to convert",
                    other.unwrap_or_default()
                ),
            ),
        }
    }
    if let Some(v) = f.take("authenticationRef") {
        let p = f.path("authenticationRef");
        authentication_ref(&p, v, namespace, auths, &mut metadata, &mut secret_refs, n);
    }
    f.finish(n, UNKNOWN);
    TriggerSpec {
        type_: "temporal".to_string(),
        name,
        metadata,
        secret_target_ref: secret_refs,
    }
}

fn trigger_metadata(path: &str, m: &Mapping, out: &mut BTreeMap<String, String>, n: &mut Notes) {
    // Set as KEDA sees it: present and not blank.
    let set = |k: &str| match m.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    for (k, v) in m {
        let key = key_text(k);
        let p = join(path, &key);
        if key == "keyPassword" {
            // Without it the key cannot be used; the password itself is never shown.
            n.refuse(&p, ENCRYPTED_KEY_HINT);
            continue;
        }
        let value = match v {
            Value::String(s) => s.clone(),
            Value::Number(x) => {
                n.at(&p, "a bare number; written as a string");
                x.to_string()
            }
            Value::Bool(b) => {
                n.at(&p, "a bare boolean; written as a string");
                b.to_string()
            }
            _ => {
                n.at(&p, "not a string; dropped");
                continue;
            }
        };
        if let Some(&(_, ours)) = RENAMED_KEYS.iter().find(|(theirs, _)| *theirs == key) {
            if m.contains_key(ours) {
                n.at(&p, format!("dropped: {ours} is also set"));
            } else {
                n.at(&p, format!("renamed to {ours}"));
                out.insert(ours.to_string(), value);
            }
            continue;
        }
        if let Some(of) = key.strip_suffix("FromEnv")
            && (of == "endpoint" || KEDA_ENV_ONLY_KEYS.contains(&of))
        {
            if set(of) {
                n.at(&p, format!("dropped: KEDA reads {of} first, and it is set"));
                continue;
            }
            if of != "endpoint" {
                // The value is the name of a variable, not a secret.
                n.refuse(
                    &p,
                    format!(
                        "KEDA read {of} from the scale target's environment variable {value}, which the agent cannot read; without it the trigger would not read the backlog KEDA read: set {of} to the variable's value"
                    ),
                );
                continue;
            }
        }
        if (key == "selectAllActive" || key == "selectUnversioned") && set("workerVersioningType") {
            // KEDA's scaler that reads workerVersioningType has no such key: it ignored it.
            n.at(
                &p,
                "dropped: KEDA ignores it with workerVersioningType (only buildId selects versions there)",
            );
            continue;
        }
        if !ACCEPTED_KEYS.contains(&key.as_str()) {
            let msg = if key.ends_with("FromEnv") {
                "no equivalent (the agent reads only endpointFromEnv and apiKeyFromEnv from the environment); dropped"
            } else {
                NO_EQUIVALENT
            };
            n.at(&p, msg);
            continue;
        }
        if key == "buildId" && !set("workerVersioningType") {
            n.at(
                &p,
                "copied: the legacy selection of this build id, as KEDA's scalers before workerVersioningType read it (KEDA's current scaler wants workerVersioningType: build-id with it)",
            );
        }
        if ENV_KEYS.contains(&key.as_str()) {
            // The value is the name of a variable, not a secret.
            n.at(
                &p,
                format!("copied, but KEDA reads {value} from the scale target's container and the agent from its own environment: set {value} on the agent"),
            );
        } else if key == "apiKey" {
            n.at(
                &p,
                "copied as written: the output holds this secret (prefer apiKeyFromEnv)",
            );
        } else if key == "key" {
            n.at(&p, "copied as written: the output holds this private key");
        }
        out.insert(key, value);
    }
}

fn authentication_ref(
    path: &str,
    v: &Value,
    namespace: &str,
    auths: &[AuthDoc],
    metadata: &mut BTreeMap<String, String>,
    secret_refs: &mut Vec<SecretTargetRef>,
    n: &mut Notes,
) {
    let Some(m) = v.as_object() else {
        n.at(path, "not a mapping; dropped");
        return;
    };
    let mut f = Fields::new(path, m);
    let name = f.text("name", n);
    let kind = f.text("kind", n);
    f.finish(n, UNKNOWN);
    let Some(name) = name else {
        n.at(path, "no name; dropped");
        return;
    };
    let direct = "give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)";
    match kind.as_deref().unwrap_or("TriggerAuthentication") {
        "TriggerAuthentication" => {}
        "ClusterTriggerAuthentication" => {
            n.at(
                path,
                format!("ClusterTriggerAuthentication {name}: no equivalent (the agent reads Secrets only in the scaler's own namespace); dropped: {direct}"),
            );
            return;
        }
        other => {
            n.at(
                path,
                format!("kind {other:?} is not a KEDA authentication kind; dropped"),
            );
            return;
        }
    }
    let what = format!("TriggerAuthentication {namespace}/{name}");
    let Some(auth) = auths
        .iter()
        .find(|a| a.name == name && a.namespace == namespace)
    else {
        n.at(
            path,
            format!("{what} is not in this file; dropped, so the converted trigger has none of its credentials: {direct}"),
        );
        return;
    };
    n.at(
        path,
        format!(
            "{what}: the agent does not read KEDA authentication objects; its parameters are taken over as listed below"
        ),
    );
    let Some(spec) = auth.spec else {
        return;
    };
    let mut n = n.under(path, &what);
    let mut f = Fields::new("spec", spec);
    if let Some((p, list)) = f.seq("secretTargetRef", &mut n) {
        for (i, entry) in list.iter().enumerate() {
            secret_target(&format!("{p}[{i}]"), entry, namespace, secret_refs, &mut n);
        }
    }
    if let Some((p, list)) = f.seq("env", &mut n) {
        for (i, entry) in list.iter().enumerate() {
            env_entry(&format!("{p}[{i}]"), entry, metadata, &mut n);
        }
    }
    f.finish(&mut n, NO_EQUIVALENT);
}

fn secret_target(
    path: &str,
    v: &Value,
    namespace: &str,
    secret_refs: &mut Vec<SecretTargetRef>,
    n: &mut Notes,
) {
    let Some(m) = v.as_object() else {
        n.at(path, "not a mapping; dropped");
        return;
    };
    let mut f = Fields::new(path, m);
    let parameter = f.text("parameter", n);
    let secret = f.text("name", n);
    let key = f.text("key", n);
    f.finish(n, UNKNOWN);
    let (Some(parameter), Some(secret), Some(key)) = (parameter, secret, key) else {
        n.at(
            path,
            "incomplete (parameter, name and key are required); dropped",
        );
        return;
    };
    let from = format!("key {key:?} of Secret {namespace}/{secret}");
    let msg = match parameter.as_str() {
        "apiKey" | "ca" | "cert" | "key" => {
            secret_refs.push(SecretTargetRef {
                parameter: parameter.clone(),
                name: secret.clone(),
                key: key.clone(),
            });
            format!(
                "parameter {parameter}: mapped to the trigger's secretTargetRef ({from}); the agent needs get on that Secret (chart value rbac.secretReferences)"
            )
        }
        "keyPassword" => {
            n.refuse(
                path,
                format!("parameter keyPassword ({from}): {ENCRYPTED_KEY_HINT}"),
            );
            return;
        }
        other => format!("parameter {other:?} ({from}): no equivalent; dropped"),
    };
    n.at(path, msg);
}

fn env_entry(path: &str, v: &Value, metadata: &mut BTreeMap<String, String>, n: &mut Notes) {
    let Some(m) = v.as_object() else {
        n.at(path, "not a mapping; dropped");
        return;
    };
    let mut f = Fields::new(path, m);
    let parameter = f.text("parameter", n);
    let var = f.text("name", n);
    let container = f.text("containerName", n);
    f.finish(n, UNKNOWN);
    let (Some(parameter), Some(var)) = (parameter, var) else {
        n.at(
            path,
            "incomplete (parameter and name are required); dropped",
        );
        return;
    };
    let of = match container {
        Some(c) => format!("container {c:?} of the scale target"),
        None => "the scale target's container".to_string(),
    };
    if parameter == "keyPassword" {
        n.refuse(
            path,
            format!(
                "parameter keyPassword (environment variable {var} of {of}): {ENCRYPTED_KEY_HINT}"
            ),
        );
    } else if parameter != "apiKey" {
        n.at(
            path,
            format!("parameter {parameter:?} (environment variable {var} of {of}): no equivalent; dropped"),
        );
    } else if metadata.contains_key("apiKey") || metadata.contains_key("apiKeyFromEnv") {
        n.at(
            path,
            format!("parameter apiKey (environment variable {var}): dropped, the trigger already sets apiKey or apiKeyFromEnv"),
        );
    } else {
        n.at(
            path,
            format!("parameter apiKey: mapped to apiKeyFromEnv: {var}; KEDA read {var} from {of}, the agent reads its own environment: set {var} on the agent"),
        );
        metadata.insert("apiKeyFromEnv".to_string(), var);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::dir::parse_file;
    use crate::spec::{CredSource, Fallback, PolicyKind, QueueType, SelectPolicy};
    use std::time::Duration;

    fn run(content: &str) -> ConvertReport {
        convert(Path::new("deploy.yaml"), content).unwrap()
    }

    /// Every converted output passes the agent's own parser, with one scaler per conversion.
    fn assert_valid_for_the_agent(r: &ConvertReport) {
        let scalers = parse_file(Path::new("out.yaml"), &r.output)
            .unwrap_or_else(|e| panic!("output rejected by the agent: {e:?}\n{}", r.output));
        assert_eq!(scalers.len(), r.converted, "{}", r.output);
    }

    fn has(r: &ConvertReport, note: &str) {
        assert!(
            r.notes.iter().any(|n| n == note),
            "missing note:\n  {note}\nnotes:\n  {}",
            r.notes.join("\n  ")
        );
    }

    fn has_error(r: &ConvertReport, error: &str) {
        assert!(
            r.errors.iter().any(|e| e == error),
            "missing error:\n  {error}\nerrors:\n  {}\nnotes:\n  {}",
            r.errors.join("\n  "),
            r.notes.join("\n  ")
        );
    }

    const ORDERS: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders-worker
  namespace: shop
  labels:
    team: payments
  annotations:
    autoscaling.keda.sh/paused-replicas: "2"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: orders-worker
  pollingInterval: 10
  cooldownPeriod: 120
  initialCooldownPeriod: 60
  minReplicaCount: 1
  maxReplicaCount: 20
  idleReplicaCount: 0
  fallback:
    failureThreshold: 3
    replicas: 6
    behavior: currentReplicasIfHigher
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies:
            - type: Pods
              value: 4
              periodSeconds: 15
            - type: Percent
              value: 100
              periodSeconds: 15
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          tolerance: 50m
          policies:
            - type: Percent
              value: 50
              periodSeconds: 60
  triggers:
    - type: temporal
      name: orders-backlog
      metadata:
        endpoint: temporal-frontend.temporal.svc:7233
        namespace: orders
        taskQueue: orders
        queueTypes: workflow,activity
        targetQueueSize: "5"
        activationTargetQueueSize: "1"
        minConnectTimeout: "5"
"#;

    #[test]
    fn a_realistic_scaled_object_converts_field_for_field() {
        let r = run(ORDERS);
        assert_eq!(r.converted, 1);
        assert_eq!(
            r.output,
            r#"# from deploy.yaml: document 0 (ScaledObject shop/orders-worker)
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: orders-worker
  namespace: shop
  labels:
    team: payments
  annotations:
    autoscaling.keda.sh/paused-replicas: "2"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: orders-worker
  pollingInterval: 10
  cooldownPeriod: 120
  initialCooldownPeriod: 60
  minReplicaCount: 1
  maxReplicaCount: 20
  idleReplicaCount: 0
  fallback:
    failureThreshold: 3
    replicas: 6
    behavior: currentReplicasIfHigher
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies:
          - type: Pods
            value: 4
            periodSeconds: 15
          - type: Percent
            value: 100
            periodSeconds: 15
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          policies:
          - type: Percent
            value: 50
            periodSeconds: 60
          tolerance: 0.05
  triggers:
  - type: temporal
    name: orders-backlog
    metadata:
      activationTargetQueueSize: "1"
      endpoint: temporal-frontend.temporal.svc:7233
      minConnectTimeout: "5"
      namespace: orders
      queueTypes: workflow,activity
      targetQueueSize: "5"
      taskQueue: orders
"#
        );
        // Only the changes of meaning are noted: nothing was dropped.
        let p = "deploy.yaml: document 0 (ScaledObject shop/orders-worker)";
        assert_eq!(
            r.notes,
            [
                format!(
                    "{p}: spec.cooldownPeriod: meaning changes (120 s): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"
                ),
                format!(
                    "{p}: spec.initialCooldownPeriod: meaning changes: KEDA applies it only to scaling to zero after the ScaledObject is created; the agent waits it before any scale-down after the scaler starts"
                ),
            ]
        );

        // The agent reads it as the same scaler.
        let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
        assert_eq!(
            (cfg.namespace.as_str(), cfg.name.as_str()),
            ("shop", "orders-worker")
        );
        assert_eq!(cfg.target.to_string(), "StatefulSet/orders-worker");
        assert_eq!(cfg.polling_interval, Duration::from_secs(10));
        assert_eq!(cfg.cooldown, Duration::from_secs(120));
        assert_eq!(cfg.initial_cooldown, Duration::from_secs(60));
        assert_eq!((cfg.min_replicas, cfg.max_replicas), (1, 20));
        assert_eq!(cfg.idle_replicas, Some(0));
        assert_eq!(
            cfg.fallback,
            Some(Fallback {
                failure_threshold: 3,
                replicas: 6,
                behavior: "currentReplicasIfHigher".into()
            })
        );
        assert_eq!(cfg.behavior.up.policies.len(), 2);
        assert_eq!(cfg.behavior.down.select, SelectPolicy::Min);
        assert_eq!(cfg.behavior.down.stabilization, Duration::from_secs(300));
        assert_eq!(cfg.behavior.down.policies[0].kind, PolicyKind::Percent);
        assert_eq!(
            cfg.behavior.down.policies[0].period,
            Duration::from_secs(60)
        );
        assert!((cfg.behavior.down.tolerance - 0.05).abs() < 1e-12);
        let t = &cfg.triggers[0];
        assert_eq!(t.name, "orders-backlog");
        assert_eq!(
            (t.namespace.as_str(), t.task_queue.as_str()),
            ("orders", "orders")
        );
        assert_eq!(t.queue_types, [QueueType::Workflow, QueueType::Activity]);
        assert_eq!(
            (t.target_queue_size, t.activation_target_queue_size),
            (5.0, 1.0)
        );
    }

    const SECRET_B64: &str = "c3VwZXItc2VjcmV0LWFwaS1rZXk=";
    const SECRET_PLAIN: &str = "super-secret-api-key";

    #[test]
    fn a_trigger_authentication_secret_is_named_never_revealed() {
        let content = format!(
            r#"
apiVersion: v1
kind: Secret
metadata:
  name: temporal-cloud
  namespace: shop
data:
  api-key: {SECRET_B64}
stringData:
  plain: {SECRET_PLAIN}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: temporal-auth
  namespace: shop
spec:
  secretTargetRef:
    - parameter: apiKey
      name: temporal-cloud
      key: api-key
    - parameter: ca
      name: temporal-tls
      key: ca.crt
    - parameter: tlsClientCert
      name: temporal-tls
      key: tls.crt
  podIdentity:
    provider: azure-workload
---
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  namespace: shop
spec:
  scaleTargetRef:
    name: orders-worker
  triggers:
    - type: temporal
      metadata:
        endpoint: orders.a1b2c.tmprl.cloud:7233
        namespace: orders.a1b2c
        taskQueue: orders
      authenticationRef:
        name: temporal-auth
"#
        );
        let r = run(&content);
        assert_eq!(r.converted, 1);
        assert_valid_for_the_agent(&r);
        let so = "deploy.yaml: document 2 (ScaledObject shop/orders): spec.triggers[0].authenticationRef";
        let ta = format!("{so}: TriggerAuthentication shop/temporal-auth: spec");
        has(
            &r,
            &format!(
                "{so}: TriggerAuthentication shop/temporal-auth: the agent does not read KEDA authentication objects; its parameters are taken over as listed below"
            ),
        );
        has(
            &r,
            &format!(
                "{ta}.secretTargetRef[0]: parameter apiKey: mapped to the trigger's secretTargetRef (key \"api-key\" of Secret shop/temporal-cloud); the agent needs get on that Secret (chart value rbac.secretReferences)"
            ),
        );
        has(
            &r,
            &format!(
                "{ta}.secretTargetRef[1]: parameter ca: mapped to the trigger's secretTargetRef (key \"ca.crt\" of Secret shop/temporal-tls); the agent needs get on that Secret (chart value rbac.secretReferences)"
            ),
        );
        has(
            &r,
            &format!(
                "{ta}.secretTargetRef[2]: parameter \"tlsClientCert\" (key \"tls.crt\" of Secret shop/temporal-tls): no equivalent; dropped"
            ),
        );
        has(&r, &format!("{ta}.podIdentity: no equivalent; dropped"));
        has(
            &r,
            "deploy.yaml: document 0 (Secret shop/temporal-cloud): Secret is not a KEDA ScaledObject; skipped",
        );
        has(
            &r,
            "deploy.yaml: document 1 (TriggerAuthentication shop/temporal-auth): not a ScaledObject; skipped (read for the authenticationRef of ScaledObjects in this file)",
        );
        // No value is copied: the trigger references the same Secret keys KEDA read.
        let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
        assert_eq!(
            doc.spec.triggers[0].metadata.keys().collect::<Vec<_>>(),
            ["endpoint", "namespace", "taskQueue"]
        );
        let refs: Vec<_> = doc.spec.triggers[0]
            .secret_target_ref
            .iter()
            .map(|r| (r.parameter.as_str(), r.name.as_str(), r.key.as_str()))
            .collect();
        assert_eq!(
            refs,
            [
                ("apiKey", "temporal-cloud", "api-key"),
                ("ca", "temporal-tls", "ca.crt")
            ]
        );
        for secret in [SECRET_B64, SECRET_PLAIN] {
            assert!(!r.output.contains(secret));
            assert!(
                r.notes.iter().all(|n| !n.contains(secret)),
                "{secret} leaked"
            );
        }
    }

    #[test]
    fn trigger_authentication_env_maps_to_api_key_from_env_and_missing_ones_are_noted() {
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: from-env
spec:
  env:
    - parameter: apiKey
      name: TEMPORAL_API_KEY
      containerName: worker
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    name: orders-worker
  triggers:
    - type: temporal
      name: env-key
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: from-env}
    - type: temporal
      name: elsewhere
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: not-here}
    - type: temporal
      name: cluster
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: shared, kind: ClusterTriggerAuthentication}
"#);
        assert_eq!(r.converted, 1);
        assert_valid_for_the_agent(&r);
        let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
        assert_eq!(cfg.namespace, "default");
        assert_eq!(
            cfg.triggers[0].auth.api_key,
            Some(CredSource::Env("TEMPORAL_API_KEY".into()))
        );
        assert_eq!(cfg.triggers[1].auth.api_key, None);
        assert_eq!(cfg.triggers[2].auth.api_key, None);
        let p = "deploy.yaml: document 1 (ScaledObject orders)";
        has(
            &r,
            &format!("{p}: metadata.namespace: absent; set to \"default\""),
        );
        has(
            &r,
            &format!(
                "{p}: spec.triggers[0].authenticationRef: TriggerAuthentication default/from-env: spec.env[0]: parameter apiKey: mapped to apiKeyFromEnv: TEMPORAL_API_KEY; KEDA read TEMPORAL_API_KEY from container \"worker\" of the scale target, the agent reads its own environment: set TEMPORAL_API_KEY on the agent"
            ),
        );
        has(
            &r,
            &format!(
                "{p}: spec.triggers[1].authenticationRef: TriggerAuthentication default/not-here is not in this file; dropped, so the converted trigger has none of its credentials: give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)"
            ),
        );
        has(
            &r,
            &format!(
                "{p}: spec.triggers[2].authenticationRef: ClusterTriggerAuthentication shared: no equivalent (the agent reads Secrets only in the scaler's own namespace); dropped: give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)"
            ),
        );
    }

    #[test]
    fn non_temporal_triggers_are_dropped_with_a_note() {
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders-worker}
  triggers:
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
    - type: temporal
      metadata: {endpoint: "temporal:7233", taskQueue: orders}
"#);
        assert_eq!(r.converted, 1);
        assert_valid_for_the_agent(&r);
        let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
        assert_eq!(doc.spec.triggers.len(), 1);
        assert_eq!(doc.spec.triggers[0].metadata["taskQueue"], "orders");
        has(
            &r,
            "deploy.yaml: document 0 (ScaledObject shop/orders): spec.triggers[0]: trigger of type \"cpu\": the agent only scales on Temporal backlogs; dropped from the output, so this scaler no longer scales on it",
        );
        // The dropped trigger's own fields are covered by that one note.
        assert!(!r.notes.iter().any(|n| n.contains("spec.triggers[0].")));
    }

    #[test]
    fn unknown_and_unsupported_fields_are_noted_with_their_paths() {
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  namespace: shop
  uid: 0b5c1f9e
  finalizers: [finalizer.keda.sh]
  annotations:
    autoscaling.keda.sh/paused: "true"
    kubectl.kubernetes.io/last-applied-configuration: '{"apiKey": "inline-secret-value"}'
spec:
  scaleTargetRef:
    name: orders-worker
    envSourceContainerName: worker
  bogus: 1
  advanced:
    restoreToOriginalReplicaCount: true
    horizontalPodAutoscalerConfig:
      name: keda-hpa-orders
      behavior:
        scaleDown:
          policies:
            - {type: Percent, value: 50, periodSeconds: 60}
  triggers:
    - type: temporal
      name: orders
      useCachedMetrics: true
      metricType: AverageValue
      extra: x
      metadata:
        endpointFromEnv: TEMPORAL_ADDRESS
        taskQueue: orders
        targetQueueSize: 10
        enableTLS: "true"
        apiKey: inline-secret-value
        namespace: orders
        namespaceFromEnv: TEMPORAL_NS
        targetQueueSizeFromEnv: TARGET
status:
  hpaName: keda-hpa-orders
"#);
        assert_eq!(r.converted, 1, "{:#?}", r.notes);
        assert_valid_for_the_agent(&r);
        let p = "deploy.yaml: document 0 (ScaledObject shop/orders)";
        for note in [
            "metadata.uid: no equivalent; dropped",
            "metadata.finalizers: no equivalent; dropped",
            "metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"]: no equivalent; dropped",
            "spec.scaleTargetRef.envSourceContainerName: no equivalent (the agent reads *FromEnv variables from its own environment); dropped",
            "spec.bogus: not a field the converter knows; dropped",
            "spec.advanced.restoreToOriginalReplicaCount: no equivalent; dropped",
            "spec.advanced.horizontalPodAutoscalerConfig.name: no equivalent (the agent creates no HPA); dropped",
            "spec.triggers[0].useCachedMetrics: no equivalent (the agent polls every pollingInterval); dropped",
            "spec.triggers[0].metricType: dropped; the agent always scales on backlog per replica (AverageValue)",
            "spec.triggers[0].extra: not a field the converter knows; dropped",
            "spec.triggers[0].metadata.endpointFromEnv: copied, but KEDA reads TEMPORAL_ADDRESS from the scale target's container and the agent from its own environment: set TEMPORAL_ADDRESS on the agent",
            "spec.triggers[0].metadata.targetQueueSize: a bare number; written as a string",
            "spec.triggers[0].metadata.enableTLS: renamed to tls",
            "spec.triggers[0].metadata.apiKey: copied as written: the output holds this secret (prefer apiKeyFromEnv)",
            "spec.triggers[0].metadata.namespaceFromEnv: dropped: KEDA reads namespace first, and it is set",
            "spec.triggers[0].metadata.targetQueueSizeFromEnv: no equivalent (the agent reads only endpointFromEnv and apiKeyFromEnv from the environment); dropped",
            "status: KEDA's runtime state; dropped",
        ] {
            has(&r, &format!("{p}: {note}"));
        }
        assert!(r.errors.is_empty(), "{:#?}", r.errors);
        assert!(
            r.notes.iter().all(|n| !n.contains("inline-secret-value")),
            "the API key leaked"
        );
        let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
        let m = &doc.spec.triggers[0].metadata;
        assert_eq!(m["tls"], "true");
        assert_eq!(m["targetQueueSize"], "10");
        assert_eq!(m["endpointFromEnv"], "TEMPORAL_ADDRESS");
        assert_eq!(m["namespace"], "orders");
        assert!(!m.contains_key("enableTLS") && !m.contains_key("namespaceFromEnv"));
        let down = doc
            .spec
            .advanced
            .unwrap()
            .horizontal_pod_autoscaler_config
            .unwrap()
            .behavior
            .unwrap()
            .scale_down
            .unwrap();
        assert_eq!(
            down.policies,
            Some(vec![PolicySpec {
                type_: "Percent".into(),
                value: 50,
                period_seconds: 60
            }])
        );
    }

    #[test]
    fn scaled_jobs_and_other_kinds_are_noted_and_skipped() {
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: batch, namespace: shop}
spec:
  jobTargetRef: {template: {}}
  triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: q}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-worker, namespace: shop}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cpu-only, namespace: shop}
spec:
  scaleTargetRef: {name: web}
  triggers: [{type: cpu, metadata: {value: "60"}}]
---
apiVersion: keda.k8s.io/v1alpha1
kind: ScaledObject
metadata: {name: old, namespace: shop}
---
just a string
"#);
        assert_eq!(r.converted, 0);
        assert_eq!(r.output, "");
        assert_eq!(
            r.notes,
            [
                "deploy.yaml: document 0 (ScaledJob shop/batch): ScaledJob is not supported (the agent scales workloads through /scale and runs no Jobs); skipped",
                "deploy.yaml: document 1 (Deployment shop/orders-worker): Deployment is not a KEDA ScaledObject; skipped",
                "deploy.yaml: document 2 (ScaledObject shop/cpu-only): no trigger of type temporal (its trigger types: cpu); skipped",
                "deploy.yaml: document 3 (ScaledObject shop/old): apiVersion \"keda.k8s.io/v1alpha1\" is not keda.sh/v1alpha1; skipped",
                "deploy.yaml: document 4: not a Kubernetes object; skipped",
                "deploy.yaml: nothing converted (no valid keda.sh/v1alpha1 ScaledObject with a temporal trigger)",
            ]
        );
    }

    #[test]
    fn a_file_with_nothing_to_convert_is_ok_with_zero_and_notes() {
        let r = run("# only a comment\n---\n");
        assert_eq!((r.converted, r.output.as_str()), (0, ""));
        assert_eq!(
            r.notes,
            ["deploy.yaml: no YAML documents; nothing converted"]
        );

        // A ScaledObject the agent would reject is reported, not emitted.
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders-worker}
  triggers:
    - type: temporal
      metadata: {endpoint: "temporal:7233", taskQueue: orders, queueTypes: "workflow,sticky"}
"#);
        assert_eq!((r.converted, r.output.as_str()), (0, ""));
        let p = "deploy.yaml: document 0 (ScaledObject shop/orders)";
        assert_eq!(
            r.errors,
            [
                format!(
                    "{p}: the converted TemporalScaler is not valid for the agent: spec.triggers[0].metadata.queueTypes: got \"workflow,sticky\", expected a comma-separated list of workflow, activity, nexus"
                ),
                format!("{p}: not converted"),
            ]
        );
        has(
            &r,
            "deploy.yaml: nothing converted (no valid keda.sh/v1alpha1 ScaledObject with a temporal trigger)",
        );

        assert!(convert(Path::new("x.yaml"), "a: [unclosed").is_err());
    }

    #[test]
    fn kubectl_list_items_are_converted_and_server_fields_noted() {
        let r = run(r#"
apiVersion: v1
kind: List
items:
  - apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata:
      name: a
      namespace: shop
      resourceVersion: "42"
    spec:
      scaleTargetRef: {name: a}
      triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: a}}]
  - apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata: {name: b, namespace: shop}
    spec:
      scaleTargetRef: {name: b}
      triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: b}}]
"#);
        assert_eq!(r.converted, 2);
        assert_valid_for_the_agent(&r);
        has(
            &r,
            "deploy.yaml: document 0 items[0] (ScaledObject shop/a): metadata.resourceVersion: no equivalent; dropped",
        );
        assert!(
            r.output
                .contains("# from deploy.yaml: document 0 items[1] (ScaledObject shop/b)\n")
        );
    }

    #[test]
    fn every_accepted_key_is_accepted_by_the_agent() {
        let unknown_key_errors = |key: &str| {
            // The key itself, then the required ones it is not (YAML refuses duplicate keys).
            let required = [("endpoint", "'t:7233'"), ("taskQueue", "q")]
                .iter()
                .filter(|(k, _)| *k != key)
                .map(|(k, v)| format!(", {k}: {v}"))
                .collect::<String>();
            let doc: ScalerDocument = serde_saphyr::from_str(&format!(
                "{{apiVersion: {API_VERSION}, kind: {KIND}, metadata: {{name: x}}, spec: {{scaleTargetRef: {{name: x}}, triggers: [{{type: temporal, metadata: {{{key}: 'v'{required}}}}}]}}}}"
            ))
            .unwrap();
            validate(&doc)
                .err()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| {
                    e.path.ends_with(&format!(".{key}")) && e.expected.starts_with("a known key")
                })
                .count()
        };
        for key in ACCEPTED_KEYS {
            assert_eq!(unknown_key_errors(key), 0, "the agent rejects {key}");
        }
        for (theirs, ours) in RENAMED_KEYS {
            assert_eq!(unknown_key_errors(theirs), 1, "the agent accepts {theirs}");
            assert!(ACCEPTED_KEYS.contains(ours));
        }
    }
    /// KEDA's own e2e ScaledObjects (tests/scalers/temporal/temporal_test.go in kedacore/keda,
    /// templates rendered): unversioned, build-id and Worker Deployment version.
    const KEDA_E2E: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: temporal-test-so-unversioned
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: temporal-test-unversioned
  pollingInterval: 5
  cooldownPeriod:  10
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
      activationTargetQueueSize: "3"
      endpoint: temporal-temporal-test.temporal-test-ns.svc.cluster.local:7233
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: temporal-test-so-buildid
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: temporal-test-buildid
  pollingInterval: 5
  cooldownPeriod:  10
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
      workerVersioningType: build-id
      buildId: 1.0.0
---
apiVersion: keda.sh/v1alpha1
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
      workerVersioningType: deployment
      deploymentName: omes-deployment
      buildId: v2.0.0
"#;

    #[test]
    fn keda_worker_versioning_converts_to_the_same_version_selection() {
        use crate::spec::{DeploymentScope, Versioning};
        let r = run(KEDA_E2E);
        assert_eq!((r.converted, r.errors.len()), (3, 0), "{:#?}", r.errors);
        assert_valid_for_the_agent(&r);
        // Nothing of a trigger is dropped: only the cooldown's change of meaning is noted.
        assert!(
            r.notes.iter().all(|n| n.ends_with(
                ": spec.cooldownPeriod: meaning changes (10 s): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"
            )),
            "{:#?}",
            r.notes
        );
        let cfgs = parse_file(Path::new("out.yaml"), &r.output).unwrap();
        let versioning: Vec<_> = cfgs
            .iter()
            .map(|c| (c.name.as_str(), c.triggers[0].versioning.clone()))
            .collect();
        assert_eq!(
            versioning,
            [
                ("temporal-test-so-unversioned", Versioning::All),
                (
                    "temporal-test-so-buildid",
                    Versioning::BuildIds {
                        build_id: Some("1.0.0".into()),
                        select_all_active: false,
                        select_unversioned: false
                    }
                ),
                // The version KEDA reads (DescribeWorkerDeploymentVersion, every queue of it),
                // not a legacy build-id selection of "v2.0.0".
                (
                    "temporal-test-so-deploy-ver",
                    Versioning::WorkerDeployment {
                        name: "omes-deployment".into(),
                        build_id: "v2.0.0".into(),
                        scope: DeploymentScope::Version
                    }
                ),
            ]
        );
        // KEDA's keys are kept as written: the output reads as KEDA's trigger does.
        let docs: Vec<ScalerDocument> = serde_saphyr::from_str_multiple(&r.output).unwrap();
        let m = &docs[2].spec.triggers[0].metadata;
        assert_eq!(
            (
                m["workerVersioningType"].as_str(),
                m["deploymentName"].as_str(),
                m["buildId"].as_str()
            ),
            ("deployment", "omes-deployment", "v2.0.0")
        );
        assert_eq!(cfgs[0].triggers[0].activation_target_queue_size, 3.0);
    }

    #[test]
    fn keda_versioning_rules_are_kept_and_its_ignored_keys_dropped() {
        let so = |meta: &str| {
            format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: w, namespace: ns}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: temporal\n    metadata:\n      endpoint: t:7233\n      taskQueue: omes-test\n{meta}"
            )
        };
        let p = "deploy.yaml: document 0 (ScaledObject ns/w)";
        let invalid = format!("{p}: the converted TemporalScaler is not valid for the agent");
        // What KEDA rejects is not converted (KEDA never ran it), with KEDA's reason.
        for (meta, want) in [
            (
                "      workerVersioningType: deployment\n      deploymentName: my-deploy\n",
                "spec.triggers[0].metadata.buildId: expected the version's build id with workerVersioningType: deployment",
            ),
            (
                "      deploymentName: my-deploy\n",
                "spec.triggers[0].metadata.deploymentName: got \"my-deploy\", expected workerVersioningType: deployment with it (and buildId), or workerDeploymentName with workerDeploymentBuildId",
            ),
            (
                "      workerVersioningType: deployment\n      deploymentName: my-deploy\n      buildId: v1\n      queueTypes: workflow\n",
                "spec.triggers[0].metadata.queueTypes: got \"workflow\", expected no queueTypes with workerVersioningType: deployment (it reads every task queue and type of the version, as KEDA does; for one queue's types use workerDeploymentName with workerDeploymentBuildId)",
            ),
        ] {
            let r = run(&so(meta));
            assert_eq!((r.converted, r.output.as_str()), (0, ""), "{meta}");
            has_error(&r, &format!("{invalid}: {want}"));
            has_error(&r, &format!("{p}: not converted"));
        }
        // KEDA's scaler that reads workerVersioningType has no selectAllActive: it ignored it,
        // so it is dropped rather than widening the selection.
        let r = run(&so(
            "      workerVersioningType: build-id\n      buildId: v1\n      selectAllActive: \"true\"\n",
        ));
        assert_eq!(r.converted, 1, "{:#?}", r.errors);
        has(
            &r,
            &format!(
                "{p}: spec.triggers[0].metadata.selectAllActive: dropped: KEDA ignores it with workerVersioningType (only buildId selects versions there)"
            ),
        );
        let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
        assert_eq!(
            cfg.triggers[0].versioning,
            crate::spec::Versioning::BuildIds {
                build_id: Some("v1".into()),
                select_all_active: false,
                select_unversioned: false
            }
        );
        // buildId alone: what KEDA's scalers before workerVersioningType read (the current one
        // rejects it), said in a note.
        let r = run(&so("      buildId: v7\n"));
        assert_eq!(r.converted, 1, "{:#?}", r.errors);
        has(
            &r,
            &format!(
                "{p}: spec.triggers[0].metadata.buildId: copied: the legacy selection of this build id, as KEDA's scalers before workerVersioningType read it (KEDA's current scaler wants workerVersioningType: build-id with it)"
            ),
        );
        assert!(matches!(
            &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0].triggers[0].versioning,
            crate::spec::Versioning::BuildIds { build_id: Some(b), .. } if b == "v7"
        ));
        // A key KEDA reads before its …FromEnv: the …FromEnv is dropped.
        let r = run(&so(
            "      workerVersioningType: deployment\n      deploymentName: omes-deployment\n      deploymentNameFromEnv: DEPLOYMENT\n      buildId: v2.0.0\n",
        ));
        assert_eq!(r.converted, 1, "{:#?}", r.errors);
        has(
            &r,
            &format!(
                "{p}: spec.triggers[0].metadata.deploymentNameFromEnv: dropped: KEDA reads deploymentName first, and it is set"
            ),
        );
    }

    #[test]
    fn a_field_whose_loss_would_change_what_is_kept_refuses_the_document() {
        let so = |name: &str, trigger: &str, advanced: &str| {
            format!(
                "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n{advanced}  triggers:\n  - type: temporal\n{trigger}    metadata:\n      endpoint: t:7233\n      taskQueue: orders\n"
            )
        };
        let meta = |lines: &str| {
            so("w", "", "").replace(
                "taskQueue: orders\n",
                &format!("taskQueue: orders\n{lines}"),
            )
        };
        let p = "deploy.yaml: document 0 (ScaledObject shop/w)";
        let cases = [
            (
                meta("      workerVersioningType: deployment\n      deploymentNameFromEnv: DEPLOYMENT\n      buildId: v2.0.0\n"),
                "spec.triggers[0].metadata.deploymentNameFromEnv: KEDA read deploymentName from the scale target's environment variable DEPLOYMENT, which the agent cannot read; without it the trigger would not read the backlog KEDA read: set deploymentName to the variable's value".to_string(),
            ),
            (
                meta("      namespaceFromEnv: TEMPORAL_NAMESPACE\n"),
                "spec.triggers[0].metadata.namespaceFromEnv: KEDA read namespace from the scale target's environment variable TEMPORAL_NAMESPACE, which the agent cannot read; without it the trigger would not read the backlog KEDA read: set namespace to the variable's value".to_string(),
            ),
            (
                meta("      keyPassword: hunter2\n"),
                format!("spec.triggers[0].metadata.keyPassword: {ENCRYPTED_KEY_HINT}"),
            ),
            (
                meta("      keyPassword: 271828\n"),
                format!("spec.triggers[0].metadata.keyPassword: {ENCRYPTED_KEY_HINT}"),
            ),
            (
                so("w", "    metricType: Value\n", ""),
                "spec.triggers[0].metricType: \"Value\" is not supported: the agent always divides the backlog by targetQueueSize per replica (AverageValue), so this targetQueueSize would give other replica counts: remove metricType (with a per-replica targetQueueSize) to convert".to_string(),
            ),
            (
                so("w", "", "  advanced:\n    scalingModifiers:\n      formula: \"orders / 2\"\n      target: \"5\"\n"),
                "spec.advanced.scalingModifiers: KEDA scaled on this formula over the triggers' metrics; the agent scales on each trigger's own count (the highest wins), so the triggers kept would scale otherwise: remove scalingModifiers to convert".to_string(),
            ),
            (
                so("w", "", "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          selectPolicy: Min\n          policies:\n          - {type: Pods, value: 4}\n          - {type: Percent, value: 100, periodSeconds: 15}\n"),
                "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies[0]: incomplete policy: type, value and periodSeconds are required (the HPA rejects it), and dropping it would change what the other policies allow".to_string(),
            ),
        ];
        for (doc, want) in &cases {
            let r = run(doc);
            assert_eq!((r.converted, r.output.as_str()), (0, ""), "{doc}");
            assert_eq!(
                r.errors,
                [format!("{p}: {want}"), format!("{p}: not converted")],
                "{doc}"
            );
            let shown = format!("{r:?}");
            assert!(
                !shown.contains("hunter2") && !shown.contains("271828"),
                "{shown}"
            );
        }

        // The password from a TriggerAuthentication refuses its ScaledObject; another
        // ScaledObject of the file is still converted.
        let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: mtls, namespace: shop}
spec:
  secretTargetRef:
    - {parameter: cert, name: temporal-tls, key: tls.crt}
    - {parameter: key, name: temporal-tls, key: tls.key}
    - {parameter: keyPassword, name: temporal-tls, key: password}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers:
  - type: temporal
    metadata: {endpoint: "t:7233", taskQueue: orders}
    authenticationRef: {name: mtls}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: payments, namespace: shop}
spec:
  scaleTargetRef: {name: payments}
  triggers:
  - type: temporal
    metadata: {endpoint: "t:7233", taskQueue: payments}
"#);
        assert_eq!(r.converted, 1);
        assert_valid_for_the_agent(&r);
        assert!(r.output.contains("name: payments") && !r.output.contains("name: orders"));
        let p = "deploy.yaml: document 1 (ScaledObject shop/orders)";
        assert_eq!(
            r.errors,
            [
                format!(
                    "{p}: spec.triggers[0].authenticationRef: TriggerAuthentication shop/mtls: spec.secretTargetRef[2]: parameter keyPassword (key \"password\" of Secret shop/temporal-tls): {ENCRYPTED_KEY_HINT}"
                ),
                format!("{p}: not converted"),
            ]
        );
    }
}
