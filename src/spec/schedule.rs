//! The Schedules signal's keys (`scheduleLeadSeconds` and its companions): pre-scale before a
//! Temporal Schedule on the trigger's queue fires, to what its last run needed.

use super::validate::Errors;
use std::time::Duration;

/// `scheduleLearnSeconds`: how long after an action its run's need is learned.
pub const LEARN_SECS: u64 = 600;
/// `scheduleGraceSeconds`: how long after the action time the floor holds.
pub const GRACE_SECS: u64 = 60;
/// `scheduleMinReplicas`: the floor before anything was learned.
pub const MIN_REPLICAS: u32 = 1;

/// A trigger's Schedules signal.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ScheduleConfig {
    /// `scheduleLeadSeconds`: the workers are up this long before an action.
    pub lead: Duration,
    /// `scheduleLearnSeconds`.
    pub learn: Duration,
    /// `scheduleGraceSeconds`.
    pub grace: Duration,
    /// `scheduleMinReplicas`.
    pub min_replicas: u32,
}

pub(super) const KEYS: &[&str] = &[
    "scheduleLeadSeconds",
    "scheduleLearnSeconds",
    "scheduleGraceSeconds",
    "scheduleMinReplicas",
];

/// The keys, each checked; `None` without `scheduleLeadSeconds` (the others then are errors).
pub(super) fn schedule_keys<'a>(
    errs: &mut Errors,
    p: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<&'a String>,
    value_of: &dyn Fn(&str) -> Option<String>,
) -> Option<ScheduleConfig> {
    let whole = |errs: &mut Errors, k: &str, range: std::ops::RangeInclusive<u64>, what: &str| {
        let v = get(k)?;
        match v.trim().parse::<u64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                errs.push(p(k), value_of(k), format!("{what}, as a string"));
                None
            }
        }
    };
    let lead = whole(
        errs,
        "scheduleLeadSeconds",
        1..=86_400,
        "seconds from 1 to 86400 (\"120\")",
    );
    let learn = whole(
        errs,
        "scheduleLearnSeconds",
        1..=86_400,
        "seconds from 1 to 86400 (\"600\")",
    );
    let grace = whole(
        errs,
        "scheduleGraceSeconds",
        0..=86_400,
        "seconds from 0 to 86400 (\"60\")",
    );
    let min = whole(
        errs,
        "scheduleMinReplicas",
        0..=10_000,
        "a replica count from 0 to 10000 (\"1\")",
    );
    if get("scheduleLeadSeconds").is_none() {
        for k in &KEYS[1..] {
            if get(k).is_some() {
                errs.push(
                    p(k),
                    value_of(k),
                    "scheduleLeadSeconds as well (it turns the Schedules signal on)",
                );
            }
        }
        return None;
    }
    Some(ScheduleConfig {
        lead: Duration::from_secs(lead?),
        learn: Duration::from_secs(learn.unwrap_or(LEARN_SECS)),
        grace: Duration::from_secs(grace.unwrap_or(GRACE_SECS)),
        min_replicas: min.map_or(MIN_REPLICAS, |m| m as u32),
    })
}
