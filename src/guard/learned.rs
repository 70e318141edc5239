//! What config-directory scalers learned of their schedules' runs (the Schedules signal), kept
//! in an annotation of the leader Lease: a file has no status to keep it in, the agent already
//! gets and updates that one Lease (no new RBAC, no extra request: it rides on each renewal),
//! and every replica reads the Lease (per schedule the later run wins), so a new leader starts
//! from it. Custom resources keep
//! theirs in their status instead. Bounded: at most [`MAX`] schedules, the most recent runs.

use crate::decide::schedule::Learned as Run;
use crate::spec::{ScalerKey, SourceKind};
use crate::state::{Learned, StateStore};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The annotation: `{"<namespace>/<scaler>": {"<temporal namespace>/<schedule id>":
/// {"replicas": N, "actionAt": <unix seconds>}}}`.
pub const ANNOTATION: &str = "temporal-autoscaler.io/learned-schedules";
/// Schedules kept at most (a few tens of kB of the Lease's 256 kB of annotations).
pub const MAX: usize = 1000;

/// The annotation's value for the config-directory scalers of `state`; `None` when none
/// learned anything.
pub fn encode(state: &StateStore) -> Option<String> {
    let mut all: Vec<(ScalerKey, String, Run)> = state
        .all_learned()
        .into_iter()
        .filter(|(k, _)| k.source == SourceKind::Dir)
        .flat_map(|(k, l)| l.into_iter().map(move |(s, r)| (k.clone(), s, r)))
        .collect();
    if all.is_empty() {
        return None;
    }
    // The most recent runs when over the bound.
    all.sort_by_key(|(_, _, r)| std::cmp::Reverse(r.action_at));
    all.truncate(MAX);
    let mut out: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for (k, s, r) in all {
        out.entry(format!("{}/{}", k.namespace, k.name))
            .or_default()
            .insert(s, json!({"replicas": r.replicas, "actionAt": r.action_at}));
    }
    serde_json::to_string(&out).ok()
}

/// Seed `state` from the annotation's value (what the agent learned itself wins). A value
/// that does not parse is ignored: it is only a head start.
pub fn seed(state: &StateStore, value: &str) {
    let Ok(Value::Object(scalers)) = serde_json::from_str::<Value>(value) else {
        tracing::warn!(
            annotation = ANNOTATION,
            "Lease annotation not understood; ignored"
        );
        return;
    };
    for (scaler, schedules) in scalers {
        let Some((namespace, name)) = scaler.split_once('/') else {
            continue;
        };
        let key = ScalerKey {
            source: SourceKind::Dir,
            namespace: namespace.into(),
            name: name.into(),
        };
        let learned: Learned = schedules
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(s, v)| {
                let replicas = u32::try_from(v["replicas"].as_u64()?).ok()?;
                let action_at = v["actionAt"].as_i64()?;
                Some((
                    s.clone(),
                    Run {
                        replicas,
                        action_at,
                    },
                ))
            })
            .collect();
        state.seed_learned(&key, learned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(source: SourceKind, name: &str) -> ScalerKey {
        ScalerKey {
            source,
            namespace: "shop".into(),
            name: name.into(),
        }
    }

    #[test]
    fn dir_scalers_round_trip_and_custom_resources_stay_out() {
        let a = StateStore::new();
        let run = |replicas, action_at| Run {
            replicas,
            action_at,
        };
        a.set_learned(
            &key(SourceKind::Dir, "orders"),
            [("default/nightly".to_string(), run(12, 1_700_000_000))].into(),
        );
        a.set_learned(
            &key(SourceKind::Crd, "cr"),
            [("default/hourly".to_string(), run(3, 1_700_000_100))].into(),
        );
        let v = encode(&a).unwrap();
        assert_eq!(
            v,
            r#"{"shop/orders":{"default/nightly":{"actionAt":1700000000,"replicas":12}}}"#
        );
        let b = StateStore::new();
        // Per schedule, the later run wins: b's own newer one, the annotation's newer one.
        b.set_learned(
            &key(SourceKind::Dir, "other"),
            [
                ("default/x".to_string(), run(1, 5)),
                ("default/y".to_string(), run(1, 5)),
            ]
            .into(),
        );
        seed(&b, &v);
        seed(
            &b,
            r#"{"shop/other":{"default/x":{"actionAt":4,"replicas":9},"default/y":{"actionAt":6,"replicas":7}}}"#,
        );
        let other = b.learned(&key(SourceKind::Dir, "other"));
        assert_eq!(
            b.learned(&key(SourceKind::Dir, "orders"))["default/nightly"],
            run(12, 1_700_000_000)
        );
        assert_eq!(
            (&other["default/x"], &other["default/y"]),
            (&run(1, 5), &run(7, 6))
        );
        // Nothing learned: no annotation; garbage: ignored.
        assert_eq!(encode(&StateStore::new()), None);
        seed(&b, "not json");
    }

    #[test]
    fn the_most_recent_runs_are_kept_within_the_bound() {
        let s = StateStore::new();
        for i in 0..(MAX as i64 + 10) {
            s.set_learned(
                &key(SourceKind::Dir, &format!("s{i}")),
                [(
                    "default/n".to_string(),
                    Run {
                        replicas: 1,
                        action_at: i,
                    },
                )]
                .into(),
            );
        }
        let v: Value = serde_json::from_str(&encode(&s).unwrap()).unwrap();
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), MAX);
        assert!(obj.contains_key(&format!("shop/s{}", MAX + 9)) && !obj.contains_key("shop/s0"));
    }
}
