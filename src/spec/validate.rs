//! Validation: raw spec → typed [`ScalerConfig`], collecting every error with its field path:
//! the document, the target, the behavior (the triggers' metadata is `trigger`'s). Secret
//! values (API keys, private keys) never appear in an error.

use super::config::*;
use super::trigger::validate_trigger;
use super::{
    API_VERSION, KIND, PAUSED, PAUSED_REPLICAS, ScalerDocument, TemporalScalerSpec, defaults,
};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// One problem in a spec, with its place. `value` is `None` for secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub value: Option<String>,
    pub expected: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}: got {v}, expected {}", self.path, self.expected),
            None => write!(f, "{}: expected {}", self.path, self.expected),
        }
    }
}

/// The known name closest to `word` (case-insensitive edit distance), if it is close enough
/// to be a typo: at most 1 edit for short names, up to 3 for long ones.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = (w.chars().count() / 4).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&w, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde's unknown-field message (`unknown field `x`, expected one of `a`, `b``) with the
/// closest known field suggested.
pub fn with_suggestion(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return msg.to_string();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return msg.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match closest(field, &known) {
        Some(c) => format!("{msg}; did you mean `{c}`?"),
        None => msg.to_string(),
    }
}

pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn push(
        &mut self,
        path: impl Into<String>,
        value: Option<String>,
        expected: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.into(),
            value,
            expected: expected.into(),
        });
    }
}

pub(super) fn show(v: impl fmt::Debug) -> Option<String> {
    Some(format!("{v:?}"))
}

/// Validate a file document (checks apiVersion/kind, then the spec).
pub fn validate(doc: &ScalerDocument) -> Result<ScalerConfig, Vec<FieldError>> {
    let mut errs = Errors(Vec::new());
    if doc.api_version != API_VERSION {
        errs.push(
            "apiVersion",
            show(&doc.api_version),
            format!("{API_VERSION:?}"),
        );
    }
    if doc.kind != KIND {
        errs.push("kind", show(&doc.kind), format!("{KIND:?}"));
    }
    let namespace = doc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let cfg = validate_spec(
        &mut errs,
        &doc.metadata.name,
        &namespace,
        &doc.spec,
        doc.metadata.annotations.clone(),
    );
    if errs.0.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.0)
    }
}

/// Validate a spec whose object identity is already known (custom resources).
pub fn validate_object(
    name: &str,
    namespace: &str,
    spec: &TemporalScalerSpec,
    annotations: BTreeMap<String, String>,
) -> Result<ScalerConfig, Vec<FieldError>> {
    let mut errs = Errors(Vec::new());
    let cfg = validate_spec(&mut errs, name, namespace, spec, annotations);
    if errs.0.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.0)
    }
}

pub(super) fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A DNS label (RFC 1123): what namespaces and cluster names must be.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

fn secs(
    errs: &mut Errors,
    path: &str,
    v: Option<i32>,
    default: i32,
    min: i32,
    max: i32,
) -> Duration {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        errs.push(path, show(v), format!("an integer from {min} to {max}"));
        return Duration::from_secs(default.max(0) as u64);
    }
    Duration::from_secs(v as u64)
}

fn validate_spec(
    errs: &mut Errors,
    name: &str,
    namespace: &str,
    spec: &TemporalScalerSpec,
    annotations: BTreeMap<String, String>,
) -> ScalerConfig {
    if !is_dns_subdomain(name) {
        errs.push(
            "metadata.name",
            show(name),
            "a DNS subdomain name (lowercase letters, digits, '-', '.')",
        );
    }
    if !is_dns_label(namespace) {
        errs.push(
            "metadata.namespace",
            show(namespace),
            "a DNS label (lowercase letters, digits, '-')",
        );
    }

    let target = Arc::new(validate_target(errs, spec));
    let polling_interval = secs(
        errs,
        "spec.pollingInterval",
        spec.polling_interval,
        defaults::POLLING_INTERVAL,
        1,
        86_400,
    );
    let cooldown = secs(
        errs,
        "spec.cooldownPeriod",
        spec.cooldown_period,
        defaults::COOLDOWN_PERIOD,
        0,
        86_400,
    );
    let initial_cooldown = secs(
        errs,
        "spec.initialCooldownPeriod",
        spec.initial_cooldown_period,
        0,
        0,
        86_400,
    );

    let min = spec
        .min_replica_count
        .unwrap_or(defaults::MIN_REPLICA_COUNT);
    let max = spec
        .max_replica_count
        .unwrap_or(defaults::MAX_REPLICA_COUNT);
    if min < 0 {
        errs.push("spec.minReplicaCount", show(min), "an integer ≥ 0");
    }
    if max < 1 {
        errs.push("spec.maxReplicaCount", show(max), "an integer ≥ 1");
    }
    if min > max {
        errs.push(
            "spec.minReplicaCount",
            show(min),
            format!("≤ maxReplicaCount ({max})"),
        );
    }
    let idle = spec.idle_replica_count;
    if let Some(i) = idle
        && (i < 0 || i >= min.max(0))
    {
        errs.push(
            "spec.idleReplicaCount",
            show(i),
            format!("an integer ≥ 0 and < minReplicaCount ({min})"),
        );
    }

    let fallback = spec.fallback.as_ref().map(|f| {
        if f.failure_threshold < 1 {
            errs.push(
                "spec.fallback.failureThreshold",
                show(f.failure_threshold),
                "an integer ≥ 1",
            );
        }
        if f.replicas < 0 {
            errs.push("spec.fallback.replicas", show(f.replicas), "an integer ≥ 0");
        }
        let behavior = f.behavior.clone().unwrap_or_else(|| "static".into());
        const FB: &[&str] = &[
            "static",
            "currentReplicas",
            "currentReplicasIfHigher",
            "currentReplicasIfLower",
        ];
        if !FB.contains(&behavior.as_str()) {
            errs.push(
                "spec.fallback.behavior",
                show(&behavior),
                format!("one of {}", FB.join(", ")),
            );
        }
        Fallback {
            failure_threshold: f.failure_threshold.max(1) as u32,
            replicas: f.replicas.max(0) as u32,
            behavior,
        }
    });

    let behavior = validate_behavior(errs, spec);
    let placement = super::placement::validate(errs, spec, min, max);
    let zero_reads = spec
        .advanced
        .as_ref()
        .and_then(|a| a.scale_to_zero_reads)
        .unwrap_or(defaults::SCALE_TO_ZERO_READS);
    if !(1..=1000).contains(&zero_reads) {
        errs.push(
            "spec.advanced.scaleToZeroReads",
            show(zero_reads),
            "an integer from 1 to 1000",
        );
    }
    for (k, v) in &annotations {
        match k.as_str() {
            PAUSED if !matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "false") => {
                errs.push(
                    format!("metadata.annotations.{k}"),
                    show(v),
                    "\"true\" or \"false\"",
                );
            }
            PAUSED_REPLICAS if v.trim().parse::<u32>().is_err() => {
                errs.push(
                    format!("metadata.annotations.{k}"),
                    show(v),
                    "a replica count (an integer ≥ 0)",
                );
            }
            _ => {}
        }
    }

    if spec.triggers.is_empty() {
        errs.push(
            "spec.triggers",
            None,
            "at least one trigger of type \"temporal\"",
        );
    }
    let mut triggers = Vec::new();
    for (i, t) in spec.triggers.iter().enumerate() {
        let container = spec.scale_target_ref.env_source_container_name.as_deref();
        if let Some(tc) = validate_trigger(errs, namespace, i, t, container) {
            if triggers.iter().any(|o: &TriggerConfig| o.name == tc.name) {
                errs.push(
                    format!("spec.triggers[{i}].name"),
                    show(&tc.name),
                    "a name unique among the triggers",
                );
            }
            triggers.push(tc);
        }
    }
    // Configs live as long as their scalers (10,000 of them): no spare capacity.
    triggers.shrink_to_fit();

    ScalerConfig {
        namespace: namespace.into(),
        name: name.into(),
        target,
        polling_interval,
        cooldown,
        initial_cooldown,
        min_replicas: min.max(0) as u32,
        max_replicas: max.max(1) as u32,
        idle_replicas: idle.map(|i| i.max(0) as u32),
        fallback: fallback.map(Box::new),
        behavior,
        triggers,
        annotations,
        scale_to_zero_reads: zero_reads.clamp(1, 1000) as u32,
        placement,
        idle_first: spec
            .scale_down
            .as_ref()
            .and_then(|s| s.idle_first)
            .unwrap_or(true),
    }
}

/// Kinds of the built-in groups that have a `/scale` subresource; other groups resolve by
/// discovery at run time.
fn known_builtin_kinds(api_version: &str) -> Option<&'static [&'static str]> {
    match api_version {
        "apps/v1" => Some(&["Deployment", "StatefulSet", "ReplicaSet"]),
        "v1" => Some(&["ReplicationController"]),
        "batch/v1" => Some(&[]),
        _ => None,
    }
}

fn validate_target(errs: &mut Errors, spec: &TemporalScalerSpec) -> TargetRef {
    let r = &spec.scale_target_ref;
    let api_version = common_name(r.api_version.clone().unwrap_or_else(|| "apps/v1".into()));
    let kind = common_name(r.kind.clone().unwrap_or_else(|| "Deployment".into()));
    let gv_ok = match api_version.split_once('/') {
        Some((g, v)) => is_dns_subdomain(g) && is_dns_label(v),
        None => is_dns_label(&api_version),
    };
    if !gv_ok {
        errs.push(
            "spec.scaleTargetRef.apiVersion",
            show(&api_version),
            "\"group/version\" or \"v1\"",
        );
    } else if let Some(kinds) = known_builtin_kinds(&api_version) {
        if !kinds.contains(&&*kind) {
            errs.push(
                "spec.scaleTargetRef.kind",
                show(&kind),
                format!(
                    "a kind of {api_version} with a /scale subresource ({})",
                    kinds.join(", ")
                ),
            );
        }
    } else if kind.is_empty() || !kind.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        errs.push(
            "spec.scaleTargetRef.kind",
            show(&kind),
            "a Kind name such as Rollout",
        );
    }
    if !is_dns_subdomain(&r.name) {
        errs.push(
            "spec.scaleTargetRef.name",
            show(&r.name),
            "the name of the workload to scale",
        );
    }
    TargetRef {
        api_version,
        kind,
        name: r.name.clone(),
    }
}

fn validate_behavior(errs: &mut Errors, spec: &TemporalScalerSpec) -> Shared<Behavior> {
    let mut b = Behavior::hpa_default();
    let Some(raw) = spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.behavior.as_ref())
    else {
        return b.shared();
    };
    for (dir, rules, out) in [
        ("scaleUp", &raw.scale_up, &mut b.up),
        ("scaleDown", &raw.scale_down, &mut b.down),
    ] {
        let Some(rules) = rules else { continue };
        let base = format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{dir}");
        if let Some(w) = rules.stabilization_window_seconds {
            out.stabilization = secs(
                errs,
                &format!("{base}.stabilizationWindowSeconds"),
                Some(w),
                0,
                0,
                3600,
            );
        }
        if let Some(p) = &rules.select_policy {
            out.select = match p.as_str() {
                "Max" => SelectPolicy::Max,
                "Min" => SelectPolicy::Min,
                "Disabled" => SelectPolicy::Disabled,
                _ => {
                    errs.push(
                        format!("{base}.selectPolicy"),
                        show(p),
                        "one of Max, Min, Disabled",
                    );
                    SelectPolicy::Max
                }
            };
        }
        if let Some(t) = rules.tolerance {
            if !(0.0..1.0).contains(&t) {
                errs.push(format!("{base}.tolerance"), show(t), "a number ≥ 0 and < 1");
            } else {
                out.tolerance = t;
            }
        }
        if let Some(policies) = &rules.policies {
            if policies.is_empty() && out.select != SelectPolicy::Disabled {
                errs.push(
                    format!("{base}.policies"),
                    None,
                    "at least one policy (or selectPolicy: Disabled)",
                );
            }
            out.policies = policies
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let path = format!("{base}.policies[{i}]");
                    let kind = match p.type_.as_str() {
                        "Pods" => PolicyKind::Pods,
                        "Percent" => PolicyKind::Percent,
                        _ => {
                            errs.push(format!("{path}.type"), show(&p.type_), "Pods or Percent");
                            PolicyKind::Pods
                        }
                    };
                    if p.value < 1 {
                        errs.push(format!("{path}.value"), show(p.value), "an integer ≥ 1");
                    }
                    let period = secs(
                        errs,
                        &format!("{path}.periodSeconds"),
                        Some(p.period_seconds),
                        15,
                        1,
                        1800,
                    );
                    Policy {
                        kind,
                        value: p.value.max(1) as u32,
                        period,
                    }
                })
                .collect();
        }
    }
    b.shared()
}

pub(super) fn parse_bool(errs: &mut Errors, path: &str, v: Option<&String>) -> Option<bool> {
    match v.map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(s) if s == "true" => Some(true),
        Some(s) if s == "false" => Some(false),
        Some(_) => {
            errs.push(
                path,
                show(v.map(String::as_str).unwrap_or_default()),
                "\"true\" or \"false\"",
            );
            None
        }
    }
}
