//! The decision: pure functions from observations + history to a desired replica count,
//! with the reasons as data (logs, `/scalers` and `explain` render them). No IO, no clock.

use crate::spec::{PolicyKind, ScaleRules, ScalerConfig, SelectPolicy};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// What one trigger read this tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerReading {
    pub name: String,
    /// `Ok(backlog)`, or `Err(message)` when the read failed.
    pub backlog: Result<u64, String>,
    pub target: f64,
    pub activation: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRecommendation {
    pub name: String,
    /// `None` for a failing trigger.
    pub replicas: Option<u32>,
    pub active: bool,
    pub within_tolerance: bool,
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
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned));
        f.write_str(s.as_deref().unwrap_or("?"))
    }
}

/// One step of the decision walk: the rule that applied and the value after it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Step {
    pub rule: Rule,
    pub replicas: u32,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub desired: u32,
    pub active: bool,
    /// The recommendation to record in the history (before stabilization).
    pub recommendation: u32,
    pub triggers: Vec<TriggerRecommendation>,
    pub steps: Vec<Step>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct ScaleEvent {
    at: Instant,
    change: u32,
}

/// What a scaler remembers between ticks: recent recommendations (stabilization) and scale
/// events (policies, cooldown).
#[derive(Clone, Debug, Default)]
pub struct History {
    recommendations: VecDeque<(Instant, u32)>,
    up_events: VecDeque<ScaleEvent>,
    down_events: VecDeque<ScaleEvent>,
    last_scale: Option<Instant>,
}

/// How long history is kept: the longest window or policy period allowed.
const MAX_MEMORY: Duration = Duration::from_secs(3600);

impl History {
    pub fn record_recommendation(&mut self, now: Instant, replicas: u32) {
        self.recommendations.push_back((now, replicas));
        self.trim(now);
    }

    pub fn record_scale(&mut self, now: Instant, from: u32, to: u32) {
        if to > from {
            self.up_events.push_back(ScaleEvent {
                at: now,
                change: to - from,
            });
        } else if to < from {
            self.down_events.push_back(ScaleEvent {
                at: now,
                change: from - to,
            });
        }
        self.last_scale = Some(now);
        self.trim(now);
    }

    pub fn last_scale(&self) -> Option<Instant> {
        self.last_scale
    }

    fn trim(&mut self, now: Instant) {
        let keep = |at: Instant| now.saturating_duration_since(at) <= MAX_MEMORY;
        while self
            .recommendations
            .front()
            .is_some_and(|(at, _)| !keep(*at))
        {
            self.recommendations.pop_front();
        }
        while self.up_events.front().is_some_and(|e| !keep(e.at)) {
            self.up_events.pop_front();
        }
        while self.down_events.front().is_some_and(|e| !keep(e.at)) {
            self.down_events.pop_front();
        }
    }

    fn within(now: Instant, at: Instant, window: Duration) -> bool {
        now.saturating_duration_since(at) < window
    }

    fn change_in_period(events: &VecDeque<ScaleEvent>, now: Instant, period: Duration) -> u32 {
        events
            .iter()
            .filter(|e| Self::within(now, e.at, period))
            .map(|e| e.change)
            .sum()
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
}

/// One trigger's recommendation, KEDA's way: ceil(backlog / target), active when
/// backlog > activationTargetQueueSize (strictly greater, as KEDA). Within the HPA tolerance
/// of the current count, the current count is kept.
pub fn recommend(
    r: &TriggerReading,
    current: u32,
    up_tol: f64,
    down_tol: f64,
) -> TriggerRecommendation {
    match &r.backlog {
        Err(_) => TriggerRecommendation {
            name: r.name.clone(),
            replicas: None,
            active: false,
            within_tolerance: false,
        },
        Ok(backlog) => {
            let backlog = *backlog as f64;
            let raw = (backlog / r.target).ceil().min(u32::MAX as f64) as u32;
            let active = backlog > r.activation;
            let mut within = false;
            let mut replicas = raw;
            if current > 0 && backlog > 0.0 {
                let ratio = backlog / (r.target * current as f64);
                let tol = if ratio >= 1.0 { up_tol } else { down_tol };
                if (ratio - 1.0).abs() <= tol {
                    within = true;
                    replicas = current;
                }
            }
            TriggerRecommendation {
                name: r.name.clone(),
                replicas: Some(replicas),
                active,
                within_tolerance: within,
            }
        }
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
        let added = History::change_in_period(&h.up_events, now, p.period) as i64;
        let removed = History::change_in_period(&h.down_events, now, p.period) as i64;
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
    let mut step = |rule, replicas, detail: String| {
        steps.push(Step {
            rule,
            replicas,
            detail,
        })
    };

    let triggers: Vec<_> = input
        .readings
        .iter()
        .map(|r| recommend(r, current, up.tolerance, down.tolerance))
        .collect();
    let failing: Vec<&str> = triggers
        .iter()
        .filter(|t| t.replicas.is_none())
        .map(|t| t.name.as_str())
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

    // The floor an inactive scaler may go to: idleReplicaCount, else 0 with minReplicaCount 0.
    let idle_floor = cfg.idle_replicas.or((cfg.min_replicas == 0).then_some(0));
    // The lowest count this tick may end at (the final clamp).
    let mut floor = cfg.min_replicas;
    if failing.is_empty() && !active && idle_floor.is_some() {
        let idle = idle_floor.unwrap_or(0);
        rec = idle;
        floor = idle;
        step(
            Rule::Inactive,
            rec,
            "no trigger above activationTargetQueueSize".into(),
        );
    } else {
        let clamped = rec.clamp(cfg.min_replicas, cfg.max_replicas);
        if clamped != rec {
            rec = clamped;
            step(
                Rule::Clamp,
                rec,
                format!("within [{}, {}]", cfg.min_replicas, cfg.max_replicas),
            );
        }
    }
    if !failing.is_empty() {
        // Unknown backlog: never lower the count, and raise it only for what the healthy
        // triggers show; an idle target (at its idle floor) stays idle.
        let held = if active { rec.max(current) } else { current };
        if !active && idle_floor.is_some_and(|f| current >= f) && current < cfg.min_replicas {
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
                ),
            );
        }
    }
    let recommendation = rec;

    // Stabilization, as the HPA: the lowest recommendation in the scale-up window, the highest
    // in the scale-down window, the current count in between.
    let mut up_rec = rec;
    let mut down_rec = rec;
    for &(at, r) in &history.recommendations {
        if History::within(now, at, up.stabilization) {
            up_rec = up_rec.min(r);
        }
        if History::within(now, at, down.stabilization) {
            down_rec = down_rec.max(r);
        }
    }
    let mut desired = current.max(up_rec).min(down_rec);
    if desired != rec {
        step(
            Rule::Stabilization,
            desired,
            format!(
                "window up {}s (lowest {up_rec}), down {}s (highest {down_rec})",
                up.stabilization.as_secs(),
                down.stabilization.as_secs()
            ),
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
                ),
            );
        } else if now.saturating_duration_since(input.started_at) < cfg.initial_cooldown {
            desired = current;
            step(
                Rule::InitialCooldown,
                desired,
                format!("initialCooldownPeriod {}s", cfg.initial_cooldown.as_secs()),
            );
        } else if now.saturating_duration_since(input.observing_since) < down.stabilization {
            desired = current;
            step(
                Rule::LeaderObservation,
                desired,
                format!(
                    "observed for less than the {}s scale-down window",
                    down.stabilization.as_secs()
                ),
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
            format!("within [{floor}, {}]", cfg.max_replicas),
        );
    }

    Decision {
        desired,
        active,
        recommendation,
        triggers,
        steps,
    }
}

#[cfg(test)]
mod tests;
