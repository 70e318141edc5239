//! `check` of a file that holds WorkerResourceTemplates (Temporal's worker controller): each
//! template is rendered for a version as the controller renders it (`crate::wrt`), and a
//! TemporalScaler template is validated as the scaler the controller would apply. Errors point
//! into the WRT (`spec.template.…`, with the line in YAML). Besides what validation finds, a
//! TemporalScaler template must leave to the controller what makes it per-version: its
//! `scaleTargetRef` (`{}`) and each temporal trigger's `workerDeploymentName` and
//! `workerDeploymentBuildId` (`""`); without them every version's copy would scale the same
//! target on the whole queue.

use crate::source::dir::{ConfigError, validate_value};
use crate::source::yaml;
use crate::spec::{API_VERSION, KIND};
use crate::wrt::{self, Rendered, Version};
use serde_json::Value;
use std::path::Path;

/// What checking a WRT file found.
#[derive(Default)]
pub struct Checked {
    /// Documents that are (or render to) TemporalScalers.
    pub scalers: usize,
    pub errors: Vec<ConfigError>,
    /// Each WRT's rendering, for `--worker-resource-template` to print.
    pub rendered: Vec<Rendered>,
}

/// `None` when the file holds no WorkerResourceTemplate (an ordinary scaler file).
pub fn check_file(file: &Path, content: &str, version: &Version) -> Option<Checked> {
    if !content.contains(wrt::KIND) {
        return None;
    }
    let docs = yaml::documents(content).ok()?;
    if !docs.iter().any(|d| wrt::is_wrt(&d.value)) {
        return None;
    }
    let mut out = Checked::default();
    for (i, doc) in docs.iter().enumerate() {
        let err = |path: &str, message: String| ConfigError {
            file: file.to_path_buf(),
            document: Some(i),
            line: doc.line_of(path),
            message,
        };
        if !wrt::is_wrt(&doc.value) {
            // A scaler beside the templates: checked as in any scaler file.
            out.scalers += 1;
            if let Err(es) = validate_value(doc.value.clone()) {
                out.errors.extend(es.into_iter().map(|(p, m)| err(&p, m)));
            }
            continue;
        }
        let template = &doc.value["spec"]["template"];
        let is_scaler = template.get("apiVersion").and_then(Value::as_str) == Some(API_VERSION)
            && template.get("kind").and_then(Value::as_str) == Some(KIND);
        let mut reported = Vec::new();
        if is_scaler {
            out.scalers += 1;
            for (p, m) in per_version_errors(template) {
                out.errors.push(err(&p, format!("{p}: {m}")));
                reported.push(p);
            }
        }
        match wrt::render(&doc.value, version) {
            Err(es) => out.errors.extend(es.into_iter().map(|m| {
                let path = m.split(':').next().unwrap_or_default().to_string();
                err(&path, m)
            })),
            Ok(r) => {
                if is_scaler && let Err(es) = validate_value(scaler_document(&r.value)) {
                    // The rendered scaler's paths, as paths in the WRT.
                    for (p, m) in es {
                        let path = format!("spec.template.{p}");
                        // Said already, with what to write.
                        if !reported.contains(&path) {
                            out.errors.push(err(&path, format!("spec.template.{m}")));
                        }
                    }
                }
                out.rendered.push(r);
            }
        }
    }
    Some(out)
}

/// A rendered TemporalScaler as a scaler document: without its owner reference, which the API
/// server keeps (the custom resource source reads it as any object's metadata) but which a
/// scaler file has no place for.
pub fn scaler_document(rendered: &Value) -> Value {
    let mut v = rendered.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("ownerReferences");
    }
    v
}

/// What a TemporalScaler template must leave to the controller, as (path, why).
fn per_version_errors(template: &Value) -> Vec<(String, String)> {
    let mut errors = Vec::new();
    let spec = &template["spec"];
    if spec.get("scaleTargetRef").is_none() {
        errors.push((
            "spec.template.spec.scaleTargetRef".to_string(),
            "write `scaleTargetRef: {}` for the controller to fill in each version's Deployment"
                .to_string(),
        ));
    }
    for (i, t) in wrt::temporal_triggers(spec) {
        for k in ["workerDeploymentName", "workerDeploymentBuildId"] {
            if t.get("metadata").and_then(|m| m.get(k)).is_none() {
                errors.push((
                    format!("spec.template.spec.triggers[{i}].metadata.{k}"),
                    format!(
                        "write `{k}: \"\"` for the controller to fill in each version's value (without it, every version's scaler reads the whole queue)"
                    ),
                ));
            }
        }
    }
    errors
}
