//! Observe, the pure part: what the decision and the views make of a trigger's reads.

use super::*;
use crate::decide::schedule::ScheduleMemory;
use crate::decide::version::VersionStatus;
use crate::state::ScheduleView;
use crate::temporal::{ScheduleEntry, SchedulesRead};

/// What the decision reads of a trigger: its queue's stats, its workers' heartbeats (with the
/// capacity signal on) as of `now`, and the trigger's opt-in signals. A failed read of either
/// is a failed reading; a server without the worker signal leaves the backlog alone.
/// `statefulset`: the target's name when it is a StatefulSet (its busy ordinals are a floor).
pub(crate) fn reading(
    t: &TriggerConfig,
    statefulset: Option<&str>,
    stats: &Result<QueueStats, TemporalError>,
    workers: Option<&Result<WorkersRead, TemporalError>>,
    now: SystemTime,
) -> TriggerReading {
    // Shared: each failing trigger's view holds its message until the next read.
    let backlog = match failure(stats, workers) {
        Some(e) => Err(e),
        None => stats.as_ref().map(|s| s.backlog),
    }
    .map_err(|e| crate::intern::message(&e.to_string()));
    let capacity = match (&t.capacity, workers) {
        (Some(c), Some(Ok(WorkersRead::Heartbeats(samples)))) => Some(CapacitySignal {
            target: c.target_utilization,
            capacity: summarize(
                samples,
                &SlotKind::for_queue_types(&t.queue_types),
                now,
                c.max_heartbeat_age,
                statefulset,
            ),
        }),
        _ => None,
    };
    TriggerReading {
        name: t.name.clone(),
        target: t.target_queue_size,
        activation: t.activation_target_queue_size,
        signals: match (&backlog, stats) {
            (Ok(_), Ok(s)) => Signals {
                backlog_age_secs: s.backlog_age.as_secs_f64(),
                target_backlog_age_secs: t.target_backlog_age_secs,
                growth_per_sec: s.tasks_add_rate - s.tasks_dispatch_rate,
                lookahead_secs: t.growth_lookahead_secs,
                rate_limited: s.rate_limited,
                running_workflows: s.running_workflows,
                capacity,
                dispatch_rate: s.tasks_dispatch_rate,
                keep_while_dispatching: t.keep_while_dispatching,
                version_status: s.version_status,
                schedule: None,
            },
            _ => Signals::default(),
        },
        backlog,
    }
}

/// The failure of a trigger's reads, if any: the queue read's, else the worker read's.
pub(super) fn failure<'a>(
    stats: &'a Result<QueueStats, TemporalError>,
    workers: Option<&'a Result<WorkersRead, TemporalError>>,
) -> Option<&'a TemporalError> {
    stats
        .as_ref()
        .err()
        .or_else(|| workers.and_then(|w| w.as_ref().err()))
}

pub(super) fn trigger_view(
    t: &TriggerConfig,
    stats: &Result<QueueStats, TemporalError>,
    reading: &TriggerReading,
) -> TriggerView {
    let mut view = TriggerView {
        name: t.name.clone(),
        temporal_namespace: t.namespace.clone(),
        task_queue: t.task_queue.clone(),
        ..Default::default()
    };
    if let Ok(s) = stats {
        view.backlog = reading.backlog.as_ref().ok().copied();
        view.backlog_age_seconds = Some(s.backlog_age.as_secs_f64());
        view.tasks_add_rate = Some(s.tasks_add_rate);
        view.tasks_dispatch_rate = Some(s.tasks_dispatch_rate);
        view.rate_limited = Some(s.rate_limited);
        view.running_workflows = s.running_workflows;
        view.version_status = s.version_status;
    }
    view
}

/// The capacity part of a trigger's view: what the heartbeats said, or why there are none.
pub(super) fn capacity_view(
    t: &TriggerConfig,
    workers: Option<&Result<WorkersRead, TemporalError>>,
    reading: &TriggerReading,
) -> Option<Box<CapacityView>> {
    let c = t.capacity.as_ref()?;
    let mut view = CapacityView {
        target_utilization: c.target_utilization,
        ..Default::default()
    };
    match (workers, &reading.signals.capacity) {
        (_, Some(sig)) => view.fill(&sig.capacity),
        (Some(Ok(WorkersRead::Unavailable(why))), _) => {
            view.unavailable = Some(format!("capacity signal unavailable: {why}"));
        }
        // A failed read is the trigger's error.
        _ => return None,
    }
    Some(Box::new(view))
}

/// A trigger's schedules this tick: those not paused or paused whose action starts workflows on
/// its queue. Not for a version that takes no new workflows (draining, drained, inactive).
fn schedules_of<'a>(
    t: &TriggerConfig,
    read: Option<&'a SchedulesRead>,
    version: Option<VersionStatus>,
) -> impl Iterator<Item = &'a ScheduleEntry> {
    let takes_new = !matches!(
        version,
        Some(VersionStatus::Draining | VersionStatus::Drained | VersionStatus::Inactive)
    );
    let listed = match read {
        Some(SchedulesRead::Listed(l)) if takes_new => l.as_slice(),
        _ => &[],
    };
    let queue = t.task_queue.clone();
    listed
        .iter()
        .filter(move |e| e.task_queue.as_deref() == Some(&*queue))
}

/// `<temporal namespace>/<schedule id>`: what a scaler learns is kept by it.
pub(crate) fn schedule_key(t: &TriggerConfig, id: &str) -> String {
    format!("{}/{id}", t.namespace)
}

fn unix(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// Seconds from `now` to `t` (negative once passed).
fn secs_from(now: SystemTime, t: SystemTime) -> f64 {
    match t.duration_since(now) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// The Schedules signal of a trigger (`scheduleLeadSeconds`), its runs to learn from, and its
/// views: per schedule on its queue, its next action and its latest one (whose grace may still
/// hold), with what was learned of it.
pub(crate) fn schedule_signal(
    t: &TriggerConfig,
    read: Option<&SchedulesRead>,
    version: Option<VersionStatus>,
    memory: &ScheduleMemory,
    now: SystemTime,
) -> (
    Option<decide::schedule::ScheduleSignal>,
    Vec<decide::schedule::Run>,
    Vec<ScheduleView>,
) {
    let Some(c) = &t.schedule else {
        return (None, Vec::new(), Vec::new());
    };
    let mut actions = Vec::new();
    let mut runs = Vec::new();
    let mut views = Vec::new();
    for e in schedules_of(t, read, version) {
        let key = schedule_key(t, &e.id);
        let learned = memory.learned(&key);
        let next = e.future.iter().copied().filter(|f| *f > now).min();
        let last = e
            .recent
            .iter()
            .chain(e.future.iter())
            .copied()
            .filter(|f| *f <= now)
            .max();
        for at in next.iter().chain(last.iter()) {
            actions.push(decide::schedule::Action {
                schedule: e.id.clone(),
                in_secs: secs_from(now, *at),
                paused: e.paused,
                learned,
            });
        }
        if let Some(at) = last {
            runs.push(decide::schedule::Run {
                schedule: key,
                action_at: unix(at),
                // Taken: among the recent actions (within a second of it).
                taken: e.recent.iter().any(|r| secs_from(*r, at).abs() < 1.0),
                learn_secs: c.learn.as_secs() as i64,
            });
        }
        views.push(ScheduleView {
            id: e.id.clone(),
            next_action_time: next.map(|n| {
                jiff::Timestamp::try_from(n)
                    .map(|t| t.to_string())
                    .unwrap_or_default()
            }),
            next_action_in_seconds: next.map(|n| secs_from(now, n)),
            paused: e.paused,
            learned_replicas: learned,
        });
    }
    let signal = decide::schedule::ScheduleSignal {
        lead_secs: c.lead.as_secs_f64(),
        grace_secs: c.grace.as_secs_f64(),
        min_replicas: c.min_replicas,
        actions,
    };
    (Some(signal), runs, views)
}
