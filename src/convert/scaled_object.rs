//! A ScaledObject → a TemporalScaler: its metadata and its spec's own fields. The triggers
//! are in `trigger`, `spec.advanced` in `advanced`.

use super::fields::{Fields, join, read};
use super::keda::{AuthDoc, PAUSE_ANNOTATIONS};
use super::{Mapping, NO_EQUIVALENT, Notes, UNKNOWN, advanced, trigger};
use crate::spec::{
    API_VERSION, DocumentMeta, FallbackSpec, KIND, ScaleTargetRef, ScalerDocument,
    TemporalScalerSpec,
};
use std::collections::BTreeMap;

pub(super) fn to_scaler(
    root: &Mapping,
    auths: &[AuthDoc],
    n: &mut Notes,
) -> Option<ScalerDocument> {
    let mut f = Fields::new("", root);
    f.take("apiVersion");
    f.take("kind");
    let metadata = f
        .get::<&Mapping>("metadata", n)
        .and_then(|m| metadata(m, n));
    let spec = f.get::<&Mapping>("spec", n);
    f.discard("status", n, "KEDA's runtime state; dropped");
    f.finish(n, UNKNOWN);
    let metadata = metadata?;
    let Some(spec) = spec else {
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
    let name = f.get::<String>("name", n);
    let namespace = f.get::<String>("namespace", n).unwrap_or_else(|| {
        n.at("metadata.namespace", "absent; set to \"default\"");
        "default".to_string()
    });
    let labels = strings(&mut f, "labels", n, |_| true);
    // KEDA's pause annotations are the agent's too; no other annotation means anything to it.
    let annotations = strings(&mut f, "annotations", n, |k| PAUSE_ANNOTATIONS.contains(&k));
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

/// A mapping of strings (labels, annotations); the keys `keep` refuses have no equivalent.
fn strings(
    f: &mut Fields,
    key: &str,
    n: &mut Notes,
    keep: fn(&str) -> bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some((path, m)) = f.get_at::<&Mapping>(key, n) else {
        return out;
    };
    for (k, v) in m {
        let p = join(&path, k);
        if !keep(k) {
            n.at(&p, NO_EQUIVALENT);
        } else if let Some(s) = read::<String>(v, &p, n) {
            out.insert(k.clone(), s);
        }
    }
    out
}

fn scaler_spec(
    m: &Mapping,
    namespace: &str,
    auths: &[AuthDoc],
    n: &mut Notes,
) -> Option<TemporalScalerSpec> {
    let mut f = Fields::new("spec", m);
    let target = f
        .get_at::<&Mapping>("scaleTargetRef", n)
        .and_then(|(p, m)| scale_target(p, m, n));
    let polling_interval = f.get::<i32>("pollingInterval", n);
    let cooldown_period = f.get::<i32>("cooldownPeriod", n);
    let how_long = match cooldown_period {
        Some(c) => format!("{c} s"),
        None => "absent: the default 300 s".to_string(),
    };
    n.at(
        "spec.cooldownPeriod",
        format!("meaning changes ({how_long}): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"),
    );
    let initial_cooldown_period = f.get::<i32>("initialCooldownPeriod", n);
    if initial_cooldown_period.is_some() {
        n.at(
            "spec.initialCooldownPeriod",
            "meaning changes: KEDA applies it only to scaling to zero after the ScaledObject is created; the agent waits it before any scale-down after the scaler starts",
        );
    }
    let min_replica_count = f.get::<i32>("minReplicaCount", n);
    let max_replica_count = f.get::<i32>("maxReplicaCount", n);
    let idle_replica_count = f.get::<i32>("idleReplicaCount", n);
    let fallback = f
        .get_at::<&Mapping>("fallback", n)
        .and_then(|(p, m)| fallback(&p, m, n));
    let advanced = f
        .get_at::<&Mapping>("advanced", n)
        .and_then(|(p, m)| advanced::advanced(&p, m, n));
    let mut triggers = Vec::new();
    for (p, t) in f.items("triggers", n).unwrap_or_default() {
        let Some(tm) = read::<&Mapping>(t, &p, n) else {
            continue;
        };
        match t["type"].as_str() {
            Some("temporal") => triggers.push(trigger::trigger(&p, tm, namespace, auths, n)),
            other => n.at(
                &p,
                format!(
                    "trigger of type {:?}: the agent only scales on Temporal backlogs; dropped from the output, so this scaler no longer scales on it",
                    other.unwrap_or_default()
                ),
            ),
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

/// `None` without a name (refused by the caller).
fn scale_target(path: String, m: &Mapping, n: &mut Notes) -> Option<ScaleTargetRef> {
    let mut t = Fields::new(path, m);
    let api_version = t.get::<String>("apiVersion", n);
    let kind = t.get::<String>("kind", n);
    let name = t.get::<String>("name", n);
    let env_source_container_name = t.get::<String>("envSourceContainerName", n);
    t.finish(n, UNKNOWN);
    Some(ScaleTargetRef {
        api_version,
        kind,
        name: name?,
        cluster: None,
        env_source_container_name,
    })
}

fn fallback(path: &str, m: &Mapping, n: &mut Notes) -> Option<FallbackSpec> {
    let mut f = Fields::new(path, m);
    let failure_threshold = f.get::<i32>("failureThreshold", n);
    let replicas = f.get::<i32>("replicas", n);
    let behavior = f.get::<String>("behavior", n);
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
