//! A `temporal` trigger → the agent's trigger: its fields and its metadata keys.

use super::fields::{Fields, join};
use super::keda::{ACCEPTED_KEYS, AuthDoc, ENV_KEYS, KEDA_ENV_ONLY_KEYS, RENAMED_KEYS};
use super::{Mapping, NO_EQUIVALENT, Notes, UNKNOWN, auth};
use crate::spec::{ENCRYPTED_KEY_HINT, TriggerSpec};
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
    f.finish(n, UNKNOWN);
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
        if key == "keyPassword" {
            // Without it the key cannot be used; the password itself is never shown.
            n.refuse(&p, ENCRYPTED_KEY_HINT);
            continue;
        }
        let Some(value) = scalar(v, &p, n) else {
            continue;
        };
        if let Some(ours) = carried(key, &value, m, &p, n) {
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
/// dropped or refused. `m` is the whole metadata: some keys mean something else beside others.
fn carried<'k>(key: &'k str, value: &str, m: &Mapping, p: &str, n: &mut Notes) -> Option<&'k str> {
    // Set as KEDA sees it: present and not blank.
    let set = |k: &str| match m.get(k) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.trim().is_empty(),
        Some(_) => true,
    };
    if let Some(&(_, ours)) = RENAMED_KEYS.iter().find(|(theirs, _)| *theirs == key) {
        if m.contains_key(ours) {
            n.at(p, format!("dropped: {ours} is also set"));
            return None;
        }
        n.at(p, format!("renamed to {ours}"));
        return Some(ours);
    }
    if let Some(of) = key.strip_suffix("FromEnv")
        && (of == "endpoint" || KEDA_ENV_ONLY_KEYS.contains(&of))
    {
        if set(of) {
            n.at(p, format!("dropped: KEDA reads {of} first, and it is set"));
            return None;
        }
        if of != "endpoint" {
            // The value is the name of a variable, not a secret.
            n.refuse(
                p,
                format!(
                    "KEDA read {of} from the scale target's environment variable {value}, which the agent cannot read; without it the trigger would not read the backlog KEDA read: set {of} to the variable's value"
                ),
            );
            return None;
        }
    }
    if (key == "selectAllActive" || key == "selectUnversioned") && set("workerVersioningType") {
        // KEDA's scaler that reads workerVersioningType has no such key: it ignored it.
        n.at(
            p,
            "dropped: KEDA ignores it with workerVersioningType (only buildId selects versions there)",
        );
        return None;
    }
    if !ACCEPTED_KEYS.contains(&key) {
        let msg = if key.ends_with("FromEnv") {
            "no equivalent (the agent reads only endpointFromEnv and apiKeyFromEnv from the environment); dropped"
        } else {
            NO_EQUIVALENT
        };
        n.at(p, msg);
        return None;
    }
    if key == "buildId" && !set("workerVersioningType") {
        n.at(
            p,
            "copied: the legacy selection of this build id, as KEDA's scalers before workerVersioningType read it (KEDA's current scaler wants workerVersioningType: build-id with it)",
        );
    }
    if ENV_KEYS.contains(&key) {
        // The value is the name of a variable, not a secret.
        n.at(
            p,
            format!("copied, but KEDA reads {value} from the scale target's container and the agent from its own environment: set {value} on the agent"),
        );
    } else if key == "apiKey" {
        n.at(
            p,
            "copied as written: the output holds this secret (prefer apiKeyFromEnv)",
        );
    } else if key == "key" {
        n.at(p, "copied as written: the output holds this private key");
    }
    Some(key)
}
