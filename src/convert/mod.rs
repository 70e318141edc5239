//! `temporal-autoscaler convert FILE`: KEDA ScaledObjects with `temporal` triggers become
//! TemporalScaler documents. Every field that has no equivalent, or whose meaning changes, gets a
//! note naming the document and the field path. A document is refused instead when what cannot
//! be carried over would change the meaning of what is kept: a converted scaler never reads
//! another backlog than KEDA did. Secret values never appear in a note or an error.
//!
//! Here: loading the file and reporting. `keda` is KEDA's schema as read here, `fields` the
//! field reader; `scaled_object` and `advanced` map a ScaledObject's own fields, `trigger` its
//! temporal triggers and `auth` the TriggerAuthentications they refer to.

mod advanced;
mod auth;
mod fields;
mod keda;
mod scaled_object;
mod trigger;

use crate::spec::validate;
use keda::AuthDoc;
use serde_json::Value;
use std::fmt::Display;
use std::path::Path;

/// A YAML mapping, read as JSON (keys are text).
type Mapping = serde_json::Map<String, Value>;

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
        if let Some(why) = keda::skip_reason(value) {
            n.doc(why);
            continue;
        }
        let refused_before = n.errors.len();
        let doc = scaled_object::to_scaler(root, &auths, &mut n);
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
            "{shown}: nothing converted (no valid {} ScaledObject with a temporal trigger)",
            keda::KEDA_API_VERSION
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

#[cfg(test)]
#[path = "keda_parity_tests.rs"]
mod keda_parity_tests;
#[cfg(test)]
mod tests;
