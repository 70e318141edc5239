//! The decision: pure functions from observations + history to a desired replica count,
//! with the reasons as data (logs, `/scalers` and `explain` render them). No IO, no clock.

pub mod capacity;
mod history;
pub mod idle_first;
pub mod placement;
pub mod schedule;
pub mod version;

pub use history::History;

use crate::spec::{PolicyKind, ScaleRules, ScalerConfig, SelectPolicy};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

/// What one trigger read this tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerReading {
    /// The trigger's spec's, shared with it.
    pub name: Arc<str>,
    /// `Ok(backlog)`, or `Err(message)` when the read failed (shared: `crate::intern`).
    pub backlog: Result<u64, Arc<str>>,
    pub target: f64,
    pub activation: f64,
    /// The opt-in signals besides the count (meaningful when `backlog` is `Ok`).
    pub signals: Signals,
}

/// Signals beyond the backlog count, each opt-in per trigger.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Signals {
    /// Age of the oldest task, and `targetBacklogAgeSeconds`.
    pub backlog_age_secs: f64,
    pub target_backlog_age_secs: Option<f64>,
    /// `tasksAddRate − tasksDispatchRate`, and `growthLookaheadSeconds`.
    pub growth_per_sec: f64,
    pub lookahead_secs: Option<f64>,
    /// The server throttles the queue: more workers cannot help.
    pub rate_limited: bool,
    /// Running workflows on the queue (`includeRunningWorkflowCount`).
    pub running_workflows: Option<u64>,
    /// Worker slot usage (`targetSlotUtilization`), when the server reports it.
    pub capacity: Option<CapacitySignal>,
    /// `tasksDispatchRate`, and `keepWhileDispatching`.
    pub dispatch_rate: f64,
    pub keep_while_dispatching: bool,
    /// The selected Worker Deployment version's status, when the trigger selects one.
    pub version_status: Option<version::VersionStatus>,
    /// Schedules on the queue (`scheduleLeadSeconds`).
    pub schedule: Option<schedule::ScheduleSignal>,
}

/// The capacity signal as the decision reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct CapacitySignal {
    /// `targetSlotUtilization`.
    pub target: f64,
    pub capacity: capacity::Capacity,
}

/// Which signal set a trigger's recommendation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Basis {
    /// ceil(backlog / targetQueueSize)
    Backlog,
    /// within the tolerance of the current count
    Tolerance,
    /// backlog projected over growthLookaheadSeconds
    Growth,
    /// current × age / targetBacklogAgeSeconds
    BacklogAge,
    /// running workflows keep one replica
    RunningWorkflows,
    /// the queue is rate limited: no replicas added
    RateLimited,
    /// ceil(hosts × slot utilization / targetSlotUtilization)
    SlotUtilization,
    /// the slots in use need this many replicas (busy floor)
    BusyWorkers,
    /// tasks are being dispatched (keepWhileDispatching): one replica
    Dispatching,
    /// fallback.replicas after failureThreshold failures
    Fallback,
    /// a Schedule on the queue fires soon: what its last run needed
    Scheduled,
    /// the read failed
    Failed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRecommendation {
    pub name: Arc<str>,
    /// `None` for a failing trigger.
    pub replicas: Option<u32>,
    pub active: bool,
    pub within_tolerance: bool,
    pub basis: Basis,
    /// The queue is rate limited (reported in status and `/scalers`).
    pub rate_limited: bool,
    /// The recommendation without a schedule's floor: what the load needs (learned).
    pub unscheduled: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Rule {
    /// max over triggers of ceil(backlog / targetQueueSize)
    TriggerMax,
    /// no trigger active: idleReplicaCount, 0, or minReplicaCount
    Inactive,
    /// a trigger failed: never lower than the current count
    ErrorHold,
    /// activation from zero
    Activation,
    /// [minReplicaCount, maxReplicaCount]
    Clamp,
    /// HPA stabilization windows
    Stabilization,
    /// HPA scaling policies (rate limits)
    Policy,
    /// cooldownPeriod after the last scale operation
    Cooldown,
    /// initialCooldownPeriod after the scaler started
    InitialCooldown,
    /// a new lease holder observes a full scale-down window before scaling down
    LeaderObservation,
    /// the step to zero waits for consecutive idle reads over the whole cooldown
    ScaleToZeroGuard,
    /// a trigger failed failureThreshold times: fallback.replicas for it
    Fallback,
    /// autoscaling.keda.sh/paused or paused-replicas
    Paused,
}

/// KEDA's pause annotations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pause {
    No,
    /// `autoscaling.keda.sh/paused: "true"`: leave the target as it is.
    Freeze,
    /// `autoscaling.keda.sh/paused-replicas: "N"`: pin the target at N.
    Pin(u32),
}

pub use crate::spec::{PAUSED, PAUSED_REPLICAS};

impl Pause {
    /// paused-replicas wins over paused (as KEDA); a value that is not a count is ignored
    /// (validation reports it).
    pub fn from_annotations(a: &std::collections::BTreeMap<String, String>) -> Pause {
        if let Some(n) = a
            .get(PAUSED_REPLICAS)
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            return Pause::Pin(n);
        }
        match a.get(PAUSED).map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "true" => Pause::Freeze,
            _ => Pause::No,
        }
    }
}

impl Basis {
    /// The name `/scalers`, status and `explain` show.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Backlog => "backlog",
            Basis::Tolerance => "tolerance",
            Basis::Growth => "growth",
            Basis::BacklogAge => "backlogAge",
            Basis::RunningWorkflows => "runningWorkflows",
            Basis::RateLimited => "rateLimited",
            Basis::SlotUtilization => "slotUtilization",
            Basis::BusyWorkers => "busyWorkers",
            Basis::Dispatching => "dispatching",
            Basis::Fallback => "fallback",
            Basis::Scheduled => "scheduled",
            Basis::Failed => "failed",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(s.as_deref().unwrap_or("?"))
    }
}

/// One step of the decision walk: the rule that applied and the value after it. Every
/// scaler's view keeps its last walk: a fixed text is not copied into each of them.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    pub rule: Rule,
    pub replicas: u32,
    pub detail: Cow<'static, str>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub desired: u32,
    pub active: bool,
    /// Some trigger is on its fallback count.
    pub fallback: bool,
    pub paused: Pause,
    /// The recommendation to record in the history (before stabilization).
    pub recommendation: u32,
    pub triggers: Vec<TriggerRecommendation>,
    pub steps: Vec<Step>,
}

impl Decision {
    /// The rule that set the count, as the scale log line, event and chart name it: the last
    /// step, except that the triggers' max taken from a trigger on its fallback count is
    /// `fallback` (the fallback count decided it, not a backlog).
    pub fn rule(&self) -> Rule {
        let last = self.steps.last().map_or(Rule::TriggerMax, |s| s.rule);
        if last != Rule::TriggerMax {
            return last;
        }
        let best = self.triggers.iter().filter_map(|t| t.replicas).max();
        let from_fallback = self
            .triggers
            .iter()
            .any(|t| t.basis == Basis::Fallback && t.replicas == best);
        let from_reading = self
            .triggers
            .iter()
            .any(|t| t.basis != Basis::Fallback && t.replicas == best);
        if best.is_some() && from_fallback && !from_reading {
            Rule::Fallback
        } else {
            last
        }
    }
}

/// Everything the decision reads besides the history.
#[derive(Clone, Debug)]
pub struct Input<'a> {
    pub config: &'a ScalerConfig,
    pub current: u32,
    pub readings: &'a [TriggerReading],
    pub now: Instant,
    /// When this agent started acting for this scaler (lease acquired, or scaler started).
    pub observing_since: Instant,
    /// When the scaler was created (for initialCooldownPeriod).
    pub started_at: Instant,
    pub pause: Pause,
}

/// One trigger's recommendation, KEDA's way: ceil(backlog / target), active when
/// backlog > activationTargetQueueSize (strictly greater, as KEDA). Within the HPA tolerance
/// of the current count, the current count is kept. Opt-in signals may raise it (growth
/// look-ahead, backlog age, running workflows) or cap it (rate limiting).
pub fn recommend(
    r: &TriggerReading,
    current: u32,
    up_tol: f64,
    down_tol: f64,
) -> TriggerRecommendation {
    let Ok(backlog) = &r.backlog else {
        return TriggerRecommendation {
            name: r.name.clone(),
            replicas: None,
            active: false,
            within_tolerance: false,
            basis: Basis::Failed,
            rate_limited: false,
            unscheduled: None,
        };
    };
    let ceil = |x: f64| x.ceil().clamp(0.0, u32::MAX as f64) as u32;
    let sig = &r.signals;
    let backlog = *backlog as f64;
    let mut active = backlog > r.activation;
    let mut replicas = ceil(backlog / r.target);
    let mut basis = Basis::Backlog;
    let mut within = false;
    if current > 0 && backlog > 0.0 {
        let ratio = backlog / (r.target * current as f64);
        let tol = if ratio >= 1.0 { up_tol } else { down_tol };
        if (ratio - 1.0).abs() <= tol {
            within = true;
            replicas = current;
            basis = Basis::Tolerance;
        }
    }
    if let Some(lookahead) = sig.lookahead_secs
        && sig.growth_per_sec > 0.0
    {
        let projected = ceil((backlog + sig.growth_per_sec * lookahead) / r.target);
        if projected > replicas {
            replicas = projected;
            basis = Basis::Growth;
        }
    }
    if let Some(target_age) = sig.target_backlog_age_secs
        && backlog > 0.0
        && sig.backlog_age_secs > target_age
    {
        let by_age = ceil(current.max(1) as f64 * sig.backlog_age_secs / target_age);
        if by_age > replicas {
            replicas = by_age;
            basis = Basis::BacklogAge;
        }
    }
    if sig.running_workflows.is_some_and(|n| n > 0) {
        active = true;
        if replicas < 1 {
            replicas = 1;
            basis = Basis::RunningWorkflows;
        }
    }
    let mut busy_floor = 0;
    if let Some(c) = &sig.capacity {
        let cap = &c.capacity;
        // Busy slots are load the backlog cannot show: the trigger stays active.
        active |= cap.used > 0;
        if let Some(u) = cap.utilization
            && cap.hosts > 0
        {
            let ratio = u / c.target;
            let tol = if ratio >= 1.0 { up_tol } else { down_tol };
            let by_util = if current > 0 && (ratio - 1.0).abs() <= tol {
                current
            } else {
                ceil(cap.hosts as f64 * ratio)
            };
            if by_util > replicas {
                replicas = by_util;
                basis = Basis::SlotUtilization;
            }
        }
        busy_floor = cap.busy_floor;
        if busy_floor > replicas {
            replicas = busy_floor;
            basis = Basis::BusyWorkers;
        }
    }
    if sig.keep_while_dispatching && sig.dispatch_rate > 0.0 {
        // Work is flowing even though the backlog reads 0 (bursts drained between polls).
        active = true;
        if replicas < 1 {
            replicas = 1;
            basis = Basis::Dispatching;
        }
    }
    if sig.rate_limited {
        // More workers cannot help a throttled queue; one is still needed to drain it, and
        // busy workers are kept.
        let cap = current.max(u32::from(active)).max(busy_floor);
        if replicas > cap {
            replicas = cap;
            basis = Basis::RateLimited;
        }
    }
    let unscheduled = replicas;
    if let Some((floor, _)) = sig.schedule.as_ref().and_then(|s| s.floor()) {
        // Work is about to arrive: up (from zero too) before it does.
        active |= floor > 0;
        if floor > replicas {
            replicas = floor;
            basis = Basis::Scheduled;
        }
    }
    TriggerRecommendation {
        name: r.name.clone(),
        replicas: Some(replicas),
        active,
        within_tolerance: within,
        basis,
        rate_limited: sig.rate_limited,
        unscheduled: Some(unscheduled),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Up,
    Down,
}

/// The HPA's policy limit: from the replica count at the start of each policy period (current
/// minus what was added plus what was removed within it), what each policy allows; `Max` picks
/// the policy allowing the most change, `Min` the least.
fn policy_limit(
    current: u32,
    h: &History,
    rules: &ScaleRules,
    now: Instant,
    dir: Direction,
) -> u32 {
    let mut result: Option<i64> = None;
    for p in &rules.policies {
        let added = h.change_in_period(true, now, p.period) as i64;
        let removed = h.change_in_period(false, now, p.period) as i64;
        let start = current as i64 - added + removed;
        let fraction = p.value as f64 / 100.0;
        let proposed = match (p.kind, dir) {
            (PolicyKind::Pods, Direction::Up) => start + p.value as i64,
            (PolicyKind::Pods, Direction::Down) => start - p.value as i64,
            // Rounded up, as the HPA, so a small percentage still allows one pod.
            (PolicyKind::Percent, Direction::Up) => (start as f64 * (1.0 + fraction)).ceil() as i64,
            (PolicyKind::Percent, Direction::Down) => (start as f64 * (1.0 - fraction)) as i64,
        };
        // "Most change" is the highest limit upwards and the lowest downwards.
        let most = (rules.select == SelectPolicy::Min) != (dir == Direction::Up);
        result = Some(match result {
            None => proposed,
            Some(r) if most => r.max(proposed),
            Some(r) => r.min(proposed),
        });
    }
    result.unwrap_or(current as i64).clamp(0, u32::MAX as i64) as u32
}

pub fn decide(input: &Input<'_>, history: &History) -> Decision {
    let cfg = input.config;
    let (current, now) = (input.current, input.now);
    let (up, down) = (&cfg.behavior.up, &cfg.behavior.down);
    let mut steps = Vec::new();
    let mut step = |rule, replicas, detail: Cow<'static, str>| {
        steps.push(Step {
            rule,
            replicas,
            detail,
        })
    };

    let mut triggers: Vec<_> = input
        .readings
        .iter()
        .map(|r| recommend(r, current, up.tolerance, down.tolerance))
        .collect();

    if let Pause::Freeze | Pause::Pin(_) = input.pause {
        let desired = match input.pause {
            Pause::Pin(n) => n,
            _ => current,
        };
        step(
            Rule::Paused,
            desired,
            match input.pause {
                Pause::Pin(n) => format!("{PAUSED_REPLICAS}: {n}").into(),
                _ => format!("{PAUSED}: true").into(),
            },
        );
        let active = triggers.iter().any(|t| t.active);
        return Decision {
            desired,
            active,
            fallback: false,
            paused: input.pause,
            recommendation: current,
            triggers,
            steps,
        };
    }

    // Fallback (KEDA): a trigger that failed failureThreshold times in a row recommends the
    // fallback count instead of holding.
    let mut fallback = false;
    if let Some(fb) = &cfg.fallback {
        for t in triggers.iter_mut().filter(|t| t.replicas.is_none()) {
            if history.failures(&t.name) + 1 >= fb.failure_threshold {
                let value = match fb.behavior.as_str() {
                    "currentReplicas" => current,
                    "currentReplicasIfHigher" => current.max(fb.replicas),
                    "currentReplicasIfLower" => current.min(fb.replicas),
                    _ => fb.replicas,
                };
                t.replicas = Some(value);
                t.basis = Basis::Fallback;
                // As KEDA: a scaler on fallback is active (its count is not an idle reading).
                t.active = value > 0;
                fallback = true;
                step(
                    Rule::Fallback,
                    value,
                    format!(
                        "trigger {} failed {} times in a row: fallback {} ({})",
                        t.name, fb.failure_threshold, value, fb.behavior
                    )
                    .into(),
                );
            }
        }
    }
    let failing: Vec<&str> = triggers
        .iter()
        .filter(|t| t.replicas.is_none())
        .map(|t| &*t.name)
        .collect();
    let active = triggers.iter().any(|t| t.active);
    let best = triggers.iter().filter_map(|t| t.replicas).max();

    let mut rec = best.unwrap_or(current);
    step(
        Rule::TriggerMax,
        rec,
        match best {
            Some(_) => "max over triggers of ceil(backlog / targetQueueSize)".into(),
            None => "no trigger could be read".into(),
        },
    );

    // minReplicaCount, or less for a draining or drained Worker Deployment version.
    let (min, lowered_by) = version::scaler_floor(
        cfg.min_replicas,
        input.readings.iter().map(|r| r.signals.version_status),
    );
    let min_note = lowered_by.map_or(String::new(), |s| {
        format!(
            " (version {}: minReplicaCount {} is for current and ramping versions)",
            s.as_str(),
            cfg.min_replicas
        )
    });
    // The floor an inactive scaler may go to: idleReplicaCount, else 0 with minReplicaCount 0
    // (or a version past its rollout).
    let idle_floor = if lowered_by.is_some() && min == 0 {
        Some(0)
    } else {
        cfg.idle_replicas.or((min == 0).then_some(0))
    };
    // The lowest count this tick may end at (the final clamp).
    let mut floor = min;
    if failing.is_empty() && !active && idle_floor.is_some() {
        let idle = idle_floor.unwrap_or(0);
        rec = idle;
        floor = idle;
        step(
            Rule::Inactive,
            rec,
            if min_note.is_empty() {
                "no trigger above activationTargetQueueSize".into()
            } else {
                format!("no trigger above activationTargetQueueSize{min_note}").into()
            },
        );
    } else {
        let clamped = rec.clamp(min, cfg.max_replicas);
        if clamped != rec {
            rec = clamped;
            step(
                Rule::Clamp,
                rec,
                format!("within [{min}, {}]{min_note}", cfg.max_replicas).into(),
            );
        }
    }
    if !failing.is_empty() {
        // Unknown backlog: never lower the count, and raise it only for what the healthy
        // triggers show; an idle target (at its idle floor) stays idle.
        let held = if active { rec.max(current) } else { current };
        if !active && idle_floor.is_some_and(|f| current >= f) && current < min {
            floor = current;
        }
        let held = held.clamp(floor.min(cfg.max_replicas), cfg.max_replicas);
        if held != rec {
            rec = held;
            step(
                Rule::ErrorHold,
                rec,
                format!(
                    "failing trigger(s) {} never lower the count",
                    failing.join(", ")
                )
                .into(),
            );
        }
    }
    let recommendation = rec;

    // Stabilization, as the HPA: the lowest recommendation in the scale-up window, the highest
    // in the scale-down window, the current count in between.
    let up_rec = (history.up_lowest(now, up.stabilization)).map_or(rec, |r| r.min(rec));
    let down_rec =
        (history.down_highest.within(now, down.stabilization)).map_or(rec, |r| r.max(rec));
    let mut desired = current.max(up_rec).min(down_rec);
    if desired != rec {
        step(
            Rule::Stabilization,
            desired,
            format!(
                "window up {}s (lowest {up_rec}), down {}s (highest {down_rec})",
                up.stabilization.as_secs(),
                down.stabilization.as_secs()
            )
            .into(),
        );
    }

    // Policies (HPA rate limits), relative to the count at the start of each period.
    if desired > current {
        let limit = if up.select == SelectPolicy::Disabled {
            current
        } else {
            policy_limit(current, history, up, now, Direction::Up).max(current)
        };
        if desired > limit {
            desired = limit;
            step(
                Rule::Policy,
                desired,
                "scaleUp policies limit the increase".into(),
            );
        }
    } else if desired < current {
        let limit = if down.select == SelectPolicy::Disabled {
            current
        } else {
            policy_limit(current, history, down, now, Direction::Down).min(current)
        };
        if desired < limit {
            desired = limit;
            step(
                Rule::Policy,
                desired,
                "scaleDown policies limit the decrease".into(),
            );
        }
    }

    // Activation from zero, as KEDA: an active trigger takes the target off zero at once,
    // whatever the scale-up window or policies say.
    if current == 0 && desired == 0 && active {
        desired = 1;
        step(Rule::Activation, desired, "activation from zero".into());
    }

    if desired < current {
        if let Some(last) = history.last_scale
            && now.saturating_duration_since(last) < cfg.cooldown
        {
            desired = current;
            step(
                Rule::Cooldown,
                desired,
                format!(
                    "cooldownPeriod {}s since the last scale",
                    cfg.cooldown.as_secs()
                )
                .into(),
            );
        } else if now.saturating_duration_since(input.started_at) < cfg.initial_cooldown {
            desired = current;
            step(
                Rule::InitialCooldown,
                desired,
                format!("initialCooldownPeriod {}s", cfg.initial_cooldown.as_secs()).into(),
            );
        } else if now.saturating_duration_since(input.observing_since) < down.stabilization {
            desired = current;
            step(
                Rule::LeaderObservation,
                desired,
                format!(
                    "observed for less than the {}s scale-down window",
                    down.stabilization.as_secs()
                )
                .into(),
            );
        }
    }

    // An idle queue is unloaded by the server and then reads 0: the step to zero needs the idle
    // state to hold over N consecutive reads and the whole cooldown.
    if desired == 0 && current > 0 {
        let idle_now = History::idle_tick(input.readings, active);
        let reads = if idle_now { history.idle_reads + 1 } else { 0 };
        let since = history.idle_since.unwrap_or(now);
        let held_for = now.saturating_duration_since(since);
        if !idle_now || reads < cfg.scale_to_zero_reads || held_for < cfg.cooldown {
            desired = 1;
            step(
                Rule::ScaleToZeroGuard,
                desired,
                format!(
                    "idle for {reads} read(s) over {}s; zero needs {} over the {}s cooldown",
                    held_for.as_secs(),
                    cfg.scale_to_zero_reads,
                    cfg.cooldown.as_secs()
                )
                .into(),
            );
        }
    }

    // Hard bounds always hold (a target scaled by hand above max comes back at once).
    let bounded = desired.clamp(floor.min(cfg.max_replicas), cfg.max_replicas);
    if bounded != desired {
        desired = bounded;
        step(
            Rule::Clamp,
            desired,
            format!("within [{floor}, {}]", cfg.max_replicas).into(),
        );
    }

    Decision {
        desired,
        active,
        fallback,
        paused: Pause::No,
        recommendation,
        triggers,
        steps,
    }
}

#[cfg(test)]
mod tests;
