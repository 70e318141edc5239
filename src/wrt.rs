//! Temporal's worker controller (temporalio/temporal-worker-controller) runs one Deployment per
//! Worker Deployment version, and renders a `WorkerResourceTemplate`'s `spec.template` once per
//! version. This renders a template exactly as the controller does, so that `check` validates
//! what the controller will apply (its `internal/k8s/workerresourcetemplates.go` and
//! `deployments.go` at 9cd89c07; the webhook's checks from `workerresourcetemplate_webhook.go`):
//! - `scaleTargetRef: {}` anywhere under `spec` (maps inside lists too) becomes the version's
//!   Deployment (`apps/v1`); a non-empty one is refused by the webhook;
//! - in `spec.triggers[*]` of `type: temporal`, the metadata keys `workerDeploymentName`,
//!   `workerDeploymentBuildId` and `namespace`, present as `""`, become `<k8s namespace>/<name>`,
//!   the build ID and the Temporal namespace; any other value is refused;
//! - the object is named by a hash (at most 47 characters), labelled with the build ID and the
//!   deployment name, and owned by the WRT.
//!
//! Pure: JSON values in, JSON values out.

use serde_json::{Map, Value, json};

pub const API_VERSION: &str = "temporal.io/v1alpha1";
pub const KIND: &str = "WorkerResourceTemplate";
const BUILD_ID_LABEL: &str = "temporal.io/build-id";
const DEPLOYMENT_NAME_LABEL: &str = "temporal.io/deployment-name";
/// The trigger metadata keys the controller fills in (v1.8+).
pub const INJECTED_KEYS: [&str; 3] = [
    "workerDeploymentName",
    "workerDeploymentBuildId",
    "namespace",
];
const MAX_NAME_LEN: usize = 47;
const HASH_LEN: usize = 8;
const MAX_DEPLOYMENT_NAME_LEN: usize = 47;
const MAX_LABEL_LEN: usize = 63;

/// The version a template is rendered for.
#[derive(Clone, Debug)]
pub struct Version {
    pub build_id: String,
    /// `WorkerDeployment.spec.workerOptions.temporalNamespace`.
    pub temporal_namespace: String,
}

/// A template rendered for one version.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub value: Value,
    /// The versioned Deployment its `scaleTargetRef: {}` names.
    pub deployment: String,
    /// The Temporal Worker Deployment name: `<k8s namespace>/<WorkerDeployment name>`.
    pub worker_deployment_name: String,
}

/// Whether `doc` is a WorkerResourceTemplate.
pub fn is_wrt(doc: &Value) -> bool {
    doc.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
        && doc.get("kind").and_then(Value::as_str) == Some(KIND)
}

/// Runs of characters other than `[a-zA-Z0-9-]` become `-`, then lowercase (the controller's
/// `CleanStringForDNS`).
pub fn clean_for_dns(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_run = false;
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out.to_lowercase()
}

fn truncate(s: &str, n: usize) -> &str {
    // Names are ASCII after cleaning; a build ID is `[A-Za-z0-9._-]`.
    if s.len() > n && n > 0 {
        s.get(..n).unwrap_or(s)
    } else {
        s
    }
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Temporal Worker Deployment name of a WorkerDeployment (`<k8s namespace>/<name>`).
pub fn worker_deployment_name(k8s_namespace: &str, name: &str) -> String {
    format!("{k8s_namespace}/{name}")
}

/// The versioned Deployment's name (`ComputeVersionedDeploymentName`).
pub fn versioned_deployment_name(base: &str, build_id: &str) -> String {
    let mut full = format!("{base}-{build_id}");
    if full.len() > MAX_DEPLOYMENT_NAME_LEN {
        let hash = sha256_hex(&full);
        full = format!(
            "{}-{}-{}",
            truncate(base, 10),
            truncate(build_id, 10),
            &hash[..10]
        );
    }
    clean_for_dns(&full)
}

/// The rendered object's name (`ComputeWorkerResourceTemplateName`): at most 47 characters.
pub fn resource_name(worker_deployment: &str, wrt: &str, build_id: &str) -> String {
    let hash = sha256_hex(&format!("{worker_deployment}{wrt}{build_id}"));
    let raw = clean_for_dns(&format!("{worker_deployment}-{wrt}-{build_id}"));
    let prefix = truncate(&raw, MAX_NAME_LEN - 1 - HASH_LEN).trim_end_matches('-');
    format!("{prefix}-{}", &hash[..HASH_LEN])
}

/// Render `wrt` (a WorkerResourceTemplate document) for `version`. Errors are what the
/// controller's webhook refuses, each with its field path.
pub fn render(wrt: &Value, version: &Version) -> Result<Rendered, Vec<String>> {
    let mut errors = Vec::new();
    let meta = wrt.get("metadata");
    let wrt_name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if wrt_name.is_empty() {
        errors.push("metadata.name: the WorkerResourceTemplate's name is required".to_string());
    }
    // As `kubectl apply` without a namespace in the current context.
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .unwrap_or("default");
    let spec = wrt.get("spec");
    let refs: Vec<&str> = ["workerDeploymentRef", "temporalWorkerDeploymentRef"]
        .iter()
        .filter_map(|k| spec?.get(k)?.get("name")?.as_str())
        .collect();
    let wd = match refs.as_slice() {
        [one] if !one.is_empty() => *one,
        [] | [_] => {
            errors.push(
                "spec.workerDeploymentRef.name: the WorkerDeployment it renders for is required"
                    .into(),
            );
            ""
        }
        _ => {
            errors.push(
                "spec: workerDeploymentRef or the deprecated temporalWorkerDeploymentRef, not both"
                    .into(),
            );
            ""
        }
    };
    let Some(template) = spec
        .and_then(|s| s.get("template"))
        .filter(|t| t.is_object())
    else {
        errors.push("spec.template: the object to render is required".into());
        return Err(errors);
    };
    errors.extend(webhook_errors(template));
    if !errors.is_empty() {
        return Err(errors);
    }

    let build_id = version.build_id.as_str();
    let deployment = versioned_deployment_name(wd, build_id);
    let server_name = worker_deployment_name(namespace, wd);
    let labels = [
        (
            BUILD_ID_LABEL,
            truncate(build_id, MAX_LABEL_LEN).to_string(),
        ),
        (
            DEPLOYMENT_NAME_LABEL,
            truncate(&clean_for_dns(wd), MAX_LABEL_LEN).to_string(),
        ),
    ];
    let mut obj = template.clone();
    if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
        // The HPA's selector, at this one path, only when `{}`.
        if let Some(sel) = spec
            .get_mut("selector")
            .and_then(|s| s.get_mut("matchLabels"))
            .filter(|m| m.as_object().is_some_and(Map::is_empty))
        {
            *sel = json!({ BUILD_ID_LABEL: labels[0].1, DEPLOYMENT_NAME_LABEL: labels[1].1 });
        }
        inject_metric_labels(spec, &server_name, build_id, &version.temporal_namespace);
        inject_trigger_metadata(spec, &server_name, build_id, &version.temporal_namespace);
        inject_scale_target_ref(spec, &deployment);
    }
    let name = resource_name(wd, wrt_name, build_id);
    let uid = meta
        .and_then(|m| m.get("uid"))
        .cloned()
        .unwrap_or(Value::String(String::new()));
    if let Some(o) = obj.as_object_mut() {
        let m = o.entry("metadata").or_insert_with(|| json!({}));
        if !m.is_object() {
            *m = json!({});
        }
        if let Some(m) = m.as_object_mut() {
            m.insert("name".into(), Value::String(name));
            m.insert("namespace".into(), Value::String(namespace.to_string()));
            let l = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = l.as_object_mut() {
                for (k, v) in &labels {
                    l.insert((*k).into(), Value::String(v.clone()));
                }
            }
            m.insert(
                "ownerReferences".into(),
                json!([{ "apiVersion": API_VERSION, "kind": KIND, "name": wrt_name, "uid": uid,
                         "blockOwnerDeletion": true, "controller": true }]),
            );
        }
    }
    Ok(Rendered {
        value: obj,
        deployment,
        worker_deployment_name: server_name,
    })
}

/// What the controller's webhook refuses in a template (paths from the WRT document).
fn webhook_errors(template: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for k in ["apiVersion", "kind"] {
        if template
            .get(k)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            errors.push(format!("spec.template.{k}: required"));
        }
    }
    for k in ["name", "namespace"] {
        if template
            .get("metadata")
            .and_then(|m| m.get(k))
            .is_some_and(|v| v.as_str() != Some(""))
        {
            errors.push(format!(
                "spec.template.metadata.{k}: set by the controller for each version; leave it out"
            ));
        }
    }
    let Some(spec) = template.get("spec") else {
        return errors;
    };
    scale_target_ref_errors(spec, "spec.template.spec", &mut errors);
    for (i, t) in temporal_triggers(spec) {
        let Some(meta) = t.get("metadata").and_then(Value::as_object) else {
            continue;
        };
        for k in INJECTED_KEYS {
            if meta.get(k).is_some_and(|v| v.as_str() != Some("")) {
                errors.push(format!(
                    "spec.template.spec.triggers[{i}].metadata.{k}: the controller owns it and sets it for each version; write \"\" to have it filled in, or leave it out"
                ));
            }
        }
    }
    errors
}

/// A non-empty `scaleTargetRef` under maps (the webhook does not look into lists).
fn scale_target_ref_errors(v: &Value, path: &str, errors: &mut Vec<String>) {
    let Some(m) = v.as_object() else { return };
    for (k, v) in m {
        let here = format!("{path}.{k}");
        if k == "scaleTargetRef" {
            if !v.as_object().is_some_and(Map::is_empty) && !v.is_null() {
                errors.push(format!(
                    "{here}: set by the controller to each version's Deployment; write {{}}"
                ));
            }
        } else {
            scale_target_ref_errors(v, &here, errors);
        }
    }
}

/// `spec.triggers[i]` of `type: temporal`.
pub fn temporal_triggers(spec: &Value) -> impl Iterator<Item = (usize, &Value)> {
    spec.get("triggers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, t)| t.get("type").and_then(Value::as_str) == Some("temporal"))
}

fn inject_trigger_metadata(spec: &mut Map<String, Value>, name: &str, build_id: &str, ns: &str) {
    let Some(triggers) = spec.get_mut("triggers").and_then(Value::as_array_mut) else {
        return;
    };
    for t in triggers {
        if t.get("type").and_then(Value::as_str) != Some("temporal") {
            continue;
        }
        let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue;
        };
        for (k, value) in INJECTED_KEYS.iter().zip([name, build_id, ns]) {
            if let Some(v) = meta.get_mut(*k).filter(|v| v.as_str() == Some("")) {
                *v = Value::String(value.to_string());
            }
        }
    }
}

fn inject_metric_labels(spec: &mut Map<String, Value>, name: &str, build_id: &str, ns: &str) {
    let Some(metrics) = spec.get_mut("metrics").and_then(Value::as_array_mut) else {
        return;
    };
    for m in metrics {
        let labels = m
            .get_mut("external")
            .and_then(|e| e.get_mut("metric"))
            .and_then(|m| m.get_mut("selector"))
            .and_then(|s| s.get_mut("matchLabels"))
            .and_then(Value::as_object_mut);
        if let Some(l) = labels {
            l.insert(
                "temporal_worker_deployment_name".into(),
                Value::String(name.replace('/', "_")),
            );
            l.insert(
                "temporal_worker_build_id".into(),
                Value::String(build_id.into()),
            );
            l.insert("temporal_namespace".into(), Value::String(ns.into()));
        }
    }
}

fn inject_scale_target_ref(m: &mut Map<String, Value>, deployment: &str) {
    for (k, v) in m.iter_mut() {
        if k == "scaleTargetRef" {
            if v.as_object().is_some_and(Map::is_empty) {
                *v = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment });
            }
            continue;
        }
        match v {
            Value::Object(inner) => inject_scale_target_ref(inner, deployment),
            Value::Array(items) => {
                for item in items.iter_mut().filter_map(Value::as_object_mut) {
                    inject_scale_target_ref(item, deployment);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
