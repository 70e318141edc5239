//! A `temporal` trigger → the agent's trigger: its fields and its metadata keys.

use super::fields::{Fields, join};
use super::keda::{ACCEPTED_KEYS, AUTH_ONLY_KEYS, AuthDoc, UNMERGED_KEYS};
use super::{Mapping, Notes, UNKNOWN, auth};
use crate::spec::{SecretTargetRef, TriggerSpec};
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn trigger(
    path: &str,
    m: &Mapping,
    namespace: &str,
    auths: &[AuthDoc],
    n: &mut Notes,
) -> TriggerSpec {
    let mut f = Fields::new(path, m);
    f.take("type");
    let name = f.get::<String>("name", n);
    let mut metadata = BTreeMap::new();
    let mut secret_refs = Vec::new();
    if let Some((p, m)) = f.get_at::<&Mapping>("metadata", n) {
        trigger_metadata(&p, m, &mut metadata, n);
    }
    f.discard(
        "useCachedMetrics",
        n,
        "no equivalent (the agent polls every pollingInterval); dropped",
    );
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
        auth::authentication_ref(&p, v, namespace, auths, &mut metadata, &mut secret_refs, n);
    }
    let metadata_path = f.path("metadata");
    f.finish(n, UNKNOWN);
    tls(&metadata_path, &mut metadata, &mut secret_refs, n);
    TriggerSpec {
        type_: "temporal".to_string(),
        name,
        metadata,
        secret_target_ref: secret_refs,
    }
}

fn trigger_metadata(path: &str, m: &Mapping, out: &mut BTreeMap<String, String>, n: &mut Notes) {
    for (key, v) in m {
        let p = join(path, key);
        let Some(value) = scalar(v, &p, n) else {
            continue;
        };
        if let Some(ours) = carried(key, &value, &p, n) {
            out.insert(ours.to_string(), value);
        }
    }
}

/// Metadata values are text; KEDA also reads bare numbers and booleans.
fn scalar(v: &Value, p: &str, n: &mut Notes) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(x) => {
            n.at(p, "a bare number; written as a string");
            Some(x.to_string())
        }
        Value::Bool(b) => {
            n.at(p, "a bare boolean; written as a string");
            Some(b.to_string())
        }
        _ => {
            n.at(p, "not a string; dropped");
            None
        }
    }
}

/// The key the agent reads `key`'s `value` as, with its notes at `p`; `None` when it is
/// dropped or refused. Every key keeps KEDA's meaning; what KEDA ignores is dropped.
fn carried<'k>(key: &'k str, value: &str, p: &str, n: &mut Notes) -> Option<&'k str> {
    if AUTH_ONLY_KEYS.contains(&key) {
        // Never shown: it may be a secret.
        n.at(
            p,
            "dropped: KEDA ignores it in the trigger metadata (it reads it from a TriggerAuthentication only)",
        );
        return None;
    }
    if UNMERGED_KEYS.contains(&key) {
        n.at(
            p,
            "dropped: KEDA main has no such key and ignores it (workerVersioningType with deploymentName is a design that was never merged; KEDA selects a Worker Deployment version with workerDeploymentName and workerDeploymentBuildId)",
        );
        return None;
    }
    if key == "enableTLS" {
        // Decided with the credentials: see `tls`.
        return Some(key);
    }
    if !ACCEPTED_KEYS.contains(&key) {
        n.at(
            p,
            "KEDA ignores it (not a key of its temporal scaler); dropped",
        );
        return None;
    }
    if key == "targetQueueSize" && value.trim().parse::<i64>() == Ok(0) {
        n.refuse(p, ZERO_TARGET);
        return None;
    }
    if key == "buildId" {
        n.at(
            p,
            "copied: KEDA's deprecated build-id selection (rules-based versioning), read the same way",
        );
    }
    Some(key)
}

/// Why `targetQueueSize: "0"` is refused.
pub(super) const ZERO_TARGET: &str = "KEDA parses 0, but the HorizontalPodAutoscaler it then creates is refused by the API server (spec.metrics[0].external.target.averageValue: must be positive), so the ScaledObject never scales: set the backlog per replica you want (the agent needs a number > 0)";

/// KEDA's rule for TLS (`buildTemporalTLSConfig`): a client certificate always means TLS; an
/// API key alone means TLS unless `enableTLS: "false"`; without credentials KEDA connects in
/// plaintext, and `enableTLS`, `tlsServerName`, `unsafeSsl` and a CA change nothing. With an
/// API key alone KEDA verifies against the system roots, not a CA. The agent's default is the
/// same for cert and API key, so only what KEDA ignores is dropped.
pub(super) fn tls(
    path: &str,
    metadata: &mut BTreeMap<String, String>,
    refs: &mut Vec<SecretTargetRef>,
    n: &mut Notes,
) {
    let p = |k: &str| join(path, k);
    let has = |refs: &Vec<SecretTargetRef>, k: &str| refs.iter().any(|r| r.parameter == k);
    // KEDA reads the TriggerAuthentication's apiKey before the metadata's apiKeyFromEnv.
    if has(refs, "apiKey") && metadata.remove("apiKeyFromEnv").is_some() {
        n.at(
            &p("apiKeyFromEnv"),
            "dropped: KEDA reads the TriggerAuthentication's apiKey first",
        );
    }
    let enable = match metadata.remove("enableTLS") {
        None => None,
        Some(v) => match go_bool(&v) {
            Some(b) => Some(b),
            None => {
                n.refuse(
                    &p("enableTLS"),
                    format!("{v:?} is not a boolean: KEDA refuses the trigger"),
                );
                return;
            }
        },
    };
    let (cert, key) = (has(refs, "cert"), has(refs, "key"));
    let api_key = has(refs, "apiKey") || metadata.contains_key("apiKeyFromEnv");
    if cert != key {
        n.refuse(
            path,
            "KEDA refuses a cert without a key (and a key without a cert): both cert and key must be provided when using TLS",
        );
        return;
    }
    let drop_ca = |refs: &mut Vec<SecretTargetRef>, n: &mut Notes, why: &str| {
        let before = refs.len();
        refs.retain(|r| r.parameter != "ca");
        if refs.len() < before {
            n.at(path, format!("the TriggerAuthentication's ca: {why}"));
        }
    };
    if cert {
        if enable == Some(false) {
            n.at(
                &p("enableTLS"),
                "dropped: KEDA uses TLS with a client certificate whatever enableTLS says",
            );
        }
    } else if api_key {
        if enable == Some(false) {
            n.refuse(
                &p("enableTLS"),
                "with enableTLS: \"false\" KEDA sends the API key in cleartext; the agent sends API keys only over TLS: serve TLS and remove enableTLS to convert",
            );
            return;
        }
        drop_ca(
            refs,
            n,
            "dropped: with an API key alone KEDA verifies the server against the system's roots, not this CA (as the agent does without one)",
        );
    } else {
        let plain = "dropped: without credentials KEDA connects in plaintext and ignores it";
        for k in ["tlsServerName", "unsafeSsl"] {
            if metadata.remove(k).is_some() {
                n.at(&p(k), plain);
            }
        }
        if enable == Some(true) {
            n.at(&p("enableTLS"), plain);
        }
        drop_ca(refs, n, plain);
    }
}

/// Go's `strconv.ParseBool`, which KEDA's typed config uses.
fn go_bool(v: &str) -> Option<bool> {
    match v.trim() {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
