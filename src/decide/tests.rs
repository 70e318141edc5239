//! Tests of the decision: table tests for the per-tick rules, simulated tick sequences for the
//! HPA stabilization windows and scaling policies (cases from the Kubernetes HPA documentation),
//! and property tests over random configs and random observation sequences.
//!
//! Time is virtual: `base = Instant::now()` plus offsets; nothing sleeps.

use super::*;
use crate::spec::{
    Auth, Behavior, EndpointSource, Policy, PolicyKind, QueueType, ScaleRules, ScalerConfig,
    SelectPolicy, TargetRef, TlsMode, TriggerConfig, Versioning,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A reading as the test writes it: `Ok(backlog)` or `Err(message)`.
type R = Result<u64, &'static str>;
const FAIL: R = Err("unavailable");

/// Simulations start this long after `base` (= scaler start and lease acquisition), so that
/// initialCooldownPeriod and the new-leader observation never interfere unless a test sets them.
const T0: u64 = 10_000;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn policy(kind: PolicyKind, value: u32, period: u64) -> Policy {
    Policy {
        kind,
        value,
        period: secs(period),
    }
}

/// One direction without window or effective rate limit, HPA tolerance 0.1.
fn free_rules() -> ScaleRules {
    ScaleRules {
        stabilization: Duration::ZERO,
        select: SelectPolicy::Max,
        policies: vec![policy(PolicyKind::Pods, 1_000_000, 1)],
        tolerance: 0.1,
    }
}

fn free_behavior() -> Behavior {
    Behavior {
        up: free_rules(),
        down: free_rules(),
    }
}

fn trigger(name: &str, target: f64, activation: f64) -> TriggerConfig {
    TriggerConfig {
        name: name.into(),
        endpoint: EndpointSource::Literal("temporal:7233".into()),
        namespace: "default".into(),
        task_queue: "tq".into(),
        queue_types: QueueType::ALL.into(),
        target_queue_size: target,
        activation_target_queue_size: activation,
        auth: Auth {
            tls: TlsMode::Plaintext,
            api_key: None,
            ca: None,
            cert: None,
            key: None,
            server_name: None,
        }
        .shared(),
        connect_timeout: secs(5),
        versioning: Versioning::All,
        target_backlog_age_secs: None,
        growth_lookahead_secs: None,
        include_running_workflows: false,
        workflow_task_queue_for_count: None,
        capacity: None,
        keep_while_dispatching: false,
        schedule: None,
        from_env: None,
    }
}

/// A config with [min, max], one trigger (targetQueueSize 5, activation 0), no cooldowns and
/// no windows or rate limits (tests set what they exercise; every field is pub).
fn config(min: u32, max: u32) -> ScalerConfig {
    ScalerConfig {
        namespace: "default".into(),
        name: "test".into(),
        target: std::sync::Arc::new(TargetRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            name: "worker".into(),
        }),
        polling_interval: secs(30),
        cooldown: Duration::ZERO,
        initial_cooldown: Duration::ZERO,
        min_replicas: min,
        max_replicas: max,
        idle_replicas: None,
        fallback: None,
        behavior: free_behavior().into(),
        triggers: vec![trigger("q", 5.0, 0.0)],
        annotations: BTreeMap::new(),
        // One idle read suffices here; the scale-to-zero guard has its own tests.
        scale_to_zero_reads: 1,
        placement: crate::spec::Placement::single(""),
        idle_first: true,
    }
}

/// Replace the triggers with `(targetQueueSize, activationTargetQueueSize)` pairs.
fn with_triggers(mut cfg: ScalerConfig, triggers: &[(f64, f64)]) -> ScalerConfig {
    cfg.triggers = triggers
        .iter()
        .enumerate()
        .map(|(i, &(t, a))| trigger(&format!("t{i}"), t, a))
        .collect();
    cfg
}

fn readings(cfg: &ScalerConfig, backlogs: &[R]) -> Vec<TriggerReading> {
    assert_eq!(
        cfg.triggers.len(),
        backlogs.len(),
        "one reading per trigger"
    );
    cfg.triggers
        .iter()
        .zip(backlogs)
        .map(|(t, b)| TriggerReading {
            name: t.name.clone(),
            backlog: b.map_err(Arc::from),
            target: t.target_queue_size,
            activation: t.activation_target_queue_size,
            signals: Signals::default(),
        })
        .collect()
}

/// The scaler loop without IO: decide → record the recommendation → scale (record it).
struct Sim {
    cfg: ScalerConfig,
    base: Instant,
    started_at: Instant,
    observing_since: Instant,
    current: u32,
    history: History,
    pause: Pause,
}

impl Sim {
    fn new(cfg: ScalerConfig, current: u32) -> Self {
        let base = Instant::now();
        Sim {
            cfg,
            base,
            started_at: base,
            observing_since: base,
            current,
            history: History::default(),
            pause: Pause::No,
        }
    }

    /// `t` seconds into the simulation.
    fn at(&self, t: u64) -> Instant {
        self.base + secs(T0 + t)
    }

    fn tick(&mut self, t: u64, backlogs: &[R]) -> Decision {
        let readings = readings(&self.cfg, backlogs);
        self.tick_readings(t, &readings)
    }

    /// One tick on readings with signals.
    fn tick_readings(&mut self, t: u64, readings: &[TriggerReading]) -> Decision {
        let now = self.at(t);
        let d = decide(
            &Input {
                config: &self.cfg,
                current: self.current,
                readings,
                now,
                observing_since: self.observing_since,
                started_at: self.started_at,
                pause: self.pause,
            },
            &self.history,
        );
        self.history
            .record_recommendation(now, d.recommendation, &self.cfg.behavior);
        self.history.record_readings(now, readings, d.active);
        if d.desired != self.current {
            self.history
                .record_scale(now, self.current, d.desired, &self.cfg.behavior);
            self.current = d.desired;
        }
        d
    }

    fn run(&mut self, t: u64, backlogs: &[R]) -> u32 {
        self.tick(t, backlogs).desired
    }

    /// Run `(t, backlogs, expected desired)` rows in order.
    fn expect(&mut self, rows: &[(u64, &[R], u32)]) {
        for &(t, backlogs, want) in rows {
            let d = self.tick(t, backlogs);
            assert_eq!(
                d.desired, want,
                "t={t}s backlogs={backlogs:?}: steps {:#?}",
                d.steps
            );
        }
    }
}

/// One decision with an empty history.
fn once(cfg: &ScalerConfig, current: u32, backlogs: &[R]) -> Decision {
    Sim::new(cfg.clone(), current).tick(0, backlogs)
}

fn rules_of(d: &Decision) -> Vec<Rule> {
    d.steps.iter().map(|s| s.rule).collect()
}

// ---------------------------------------------------------------------------------------------
// Table tests: one tick
// ---------------------------------------------------------------------------------------------

#[test]
fn ceil_backlog_over_target() {
    // (targetQueueSize, current, backlog, desired)
    let cases: &[(f64, u32, u64, u32)] = &[
        (5.0, 0, 12, 3),
        (5.0, 0, 10, 2),
        (5.0, 0, 11, 3),
        (5.0, 0, 1, 1),
        (5.0, 0, 0, 0),
        (5.0, 1, 12, 3),
        (5.0, 3, 12, 3),
        (5.0, 4, 12, 3),
        (5.0, 2, 100, 20),
        (2.5, 0, 12, 5),
        (1.0, 0, 7, 7),
    ];
    for &(target, current, backlog, want) in cases {
        let cfg = with_triggers(config(0, 100), &[(target, 0.0)]);
        let d = once(&cfg, current, &[Ok(backlog)]);
        assert_eq!(
            d.desired, want,
            "target {target}, current {current}, backlog {backlog}: {:#?}",
            d.steps
        );
    }
}

#[test]
fn max_over_triggers() {
    let cfg = with_triggers(config(0, 100), &[(5.0, 0.0), (10.0, 0.0), (1.0, 0.0)]);
    let cases: &[([R; 3], u32)] = &[
        ([Ok(12), Ok(40), Ok(3)], 4),
        ([Ok(0), Ok(0), Ok(7)], 7),
        ([Ok(100), Ok(5), Ok(0)], 20),
        ([Ok(1), Ok(1), Ok(1)], 1),
        ([Ok(0), Ok(0), Ok(0)], 0),
    ];
    for (backlogs, want) in cases {
        let d = once(&cfg, 0, backlogs);
        assert_eq!(d.desired, *want, "{backlogs:?}: {:#?}", d.steps);
        assert_eq!(d.recommendation, *want);
    }
}

#[test]
fn activation_from_zero_is_strictly_greater() {
    // targetQueueSize 5, activationTargetQueueSize 10, from 0 replicas.
    let cfg = with_triggers(config(0, 100), &[(5.0, 10.0)]);
    let cases: &[(u64, u32, bool)] = &[
        (0, 0, false),
        (9, 0, false),
        (10, 0, false),
        (11, 3, true),
        (50, 10, true),
    ];
    for &(backlog, want, active) in cases {
        let d = once(&cfg, 0, &[Ok(backlog)]);
        assert_eq!(d.desired, want, "backlog {backlog}: {:#?}", d.steps);
        assert_eq!(d.active, active, "backlog {backlog}");
    }

    // Several triggers: one strictly above its activation is enough; the count is still the max.
    let cfg = with_triggers(config(0, 100), &[(5.0, 10.0), (5.0, 100.0)]);
    assert_eq!(once(&cfg, 0, &[Ok(11), Ok(50)]).desired, 10);
    assert_eq!(once(&cfg, 0, &[Ok(10), Ok(100)]).desired, 0);
}

#[test]
fn activation_from_zero_with_a_percent_only_policy() {
    // +100% of 0 is 0: activation still brings the target to one replica.
    let mut cfg = config(0, 100);
    cfg.behavior.up.policies = vec![policy(PolicyKind::Percent, 100, 15)];
    let d = once(&cfg, 0, &[Ok(50)]);
    assert_eq!(d.desired, 1, "{:#?}", d.steps);
    assert!(rules_of(&d).contains(&Rule::Activation));
    // Not active: stays at zero.
    let cfg = with_triggers(cfg, &[(5.0, 50.0)]);
    assert_eq!(once(&cfg, 0, &[Ok(50)]).desired, 0);
}

#[test]
fn inactive_goes_to_zero_min_or_idle() {
    /// (min, idle, activation, current, backlog, desired)
    type Case = (u32, Option<u32>, f64, u32, u64, u32);
    let cases: &[Case] = &[
        // min 0 + inactive → 0
        (0, None, 0.0, 4, 0, 0),
        (0, None, 10.0, 4, 8, 0),
        (0, None, 0.0, 0, 0, 0),
        // min > 0 + inactive → min
        (2, None, 0.0, 4, 0, 2),
        (2, None, 0.0, 2, 0, 2),
        (5, None, 0.0, 9, 0, 5),
        // idleReplicaCount when inactive
        (3, Some(1), 0.0, 5, 0, 1),
        (3, Some(1), 10.0, 5, 10, 1),
        (3, Some(1), 0.0, 1, 0, 1),
        (2, Some(0), 0.0, 2, 0, 0),
        // active again: back to at least minReplicaCount
        (3, Some(1), 10.0, 1, 11, 3),
        (3, Some(1), 0.0, 1, 30, 6),
        (3, Some(0), 0.0, 0, 1, 3),
    ];
    for &(min, idle, activation, current, backlog, want) in cases {
        let mut cfg = with_triggers(config(min, 100), &[(5.0, activation)]);
        cfg.idle_replicas = idle;
        let d = once(&cfg, current, &[Ok(backlog)]);
        assert_eq!(
            d.desired, want,
            "min {min}, idle {idle:?}, activation {activation}, current {current}, backlog {backlog}: {:#?}",
            d.steps
        );
        assert_eq!(d.active, backlog as f64 > activation);
    }
}

#[test]
fn a_versions_status_sets_its_floor() {
    use version::VersionStatus::*;
    /// (status, current, backlog, desired) with minReplicaCount 3, activation 0.
    type Case = (Option<version::VersionStatus>, u32, u64, u32);
    let cases: &[Case] = &[
        (Some(Current), 5, 0, 3),
        (Some(Ramping), 0, 0, 3),
        (None, 5, 0, 3),
        // Draining: one replica for the pinned workflows, more on its own backlog.
        (Some(Draining), 5, 0, 1),
        (Some(Draining), 1, 12, 3),
        (Some(Draining), 0, 0, 1),
        // Drained or inactive: to 0 once idle, never up without a backlog.
        (Some(Drained), 3, 0, 0),
        (Some(Drained), 0, 0, 0),
        (Some(Inactive), 2, 0, 0),
        (Some(Drained), 0, 7, 2),
    ];
    for &(status, current, backlog, want) in cases {
        let cfg = config(3, 20);
        let mut r = readings(&cfg, &[Ok(backlog)]);
        r[0].signals.version_status = status;
        let d = Sim::new(cfg, current).tick_readings(0, &r);
        assert_eq!(
            d.desired, want,
            "{status:?}, current {current}, backlog {backlog}: {:#?}",
            d.steps
        );
    }
    // The step that applied the lower floor names the status.
    let cfg = config(3, 20);
    let mut r = readings(&cfg, &[Ok(0)]);
    r[0].signals.version_status = Some(Draining);
    let d = Sim::new(cfg, 5).tick_readings(0, &r);
    assert!(
        d.steps
            .iter()
            .any(|s| s.detail.contains("version draining: minReplicaCount 3")),
        "{:#?}",
        d.steps
    );
}

#[test]
fn clamps_to_min_and_max() {
    // (min, max, current, backlog, desired)
    let cases: &[(u32, u32, u32, u64, u32)] = &[
        (0, 10, 0, 1000, 10),
        (0, 10, 4, 1000, 10),
        (0, 10, 10, 1000, 10),
        (3, 10, 3, 6, 3),
        (3, 10, 5, 6, 3),
        // hand-scaled above max (backlog within tolerance of 12): back to max at once
        (0, 10, 12, 60, 10),
        // hand-scaled below min
        (4, 10, 1, 5, 4),
    ];
    for &(min, max, current, backlog, want) in cases {
        let d = once(&config(min, max), current, &[Ok(backlog)]);
        assert_eq!(
            d.desired, want,
            "[{min}, {max}], current {current}, backlog {backlog}: {:#?}",
            d.steps
        );
    }
}

#[test]
fn above_max_comes_back_even_when_scale_down_is_held() {
    // Hard bound: a target scaled by hand above maxReplicaCount comes back at once, even in the
    // cooldown, in the scale-down window, as a new leader, or with a failing trigger.
    let mut cfg = config(0, 10);
    cfg.cooldown = secs(300);
    cfg.behavior.down.stabilization = secs(300);
    for backlogs in [[Ok(75)], [FAIL]] {
        let mut sim = Sim::new(cfg.clone(), 2);
        sim.observing_since = sim.at(0);
        assert_eq!(sim.run(0, &[Ok(50)]), 10);
        sim.current = 15; // scaled by hand
        let d = sim.tick(10, &backlogs);
        assert_eq!(d.desired, 10, "{backlogs:?}: {:#?}", d.steps);
    }
}

#[test]
fn failing_trigger_never_lowers_the_count() {
    /// (min, idle, current, backlogs, desired)
    type Case = (u32, Option<u32>, u32, [R; 2], u32);
    let cases: &[Case] = &[
        // the other trigger says lower: hold
        (0, None, 6, [Ok(10), FAIL], 6),
        (0, None, 6, [FAIL, Ok(10)], 6),
        // the other trigger is inactive: never 0, never idle, never min
        (0, None, 6, [Ok(0), FAIL], 6),
        (2, None, 6, [Ok(0), FAIL], 6),
        (3, Some(0), 5, [Ok(0), FAIL], 5),
        (0, None, 1, [Ok(0), FAIL], 1),
        // the other trigger says higher: scale up still happens
        (0, None, 6, [Ok(100), FAIL], 20),
        // all triggers failing: hold the current count
        (0, None, 6, [FAIL, FAIL], 6),
        (0, None, 0, [FAIL, FAIL], 0),
        // an idle target (at idleReplicaCount, below min) stays idle: errors never scale up
        (2, Some(1), 1, [FAIL, FAIL], 1),
        // ... but a target below min without being idle comes up to min
        (2, None, 1, [FAIL, FAIL], 2),
    ];
    for (min, idle, current, backlogs, want) in cases {
        let mut cfg = with_triggers(config(*min, 100), &[(5.0, 0.0), (5.0, 0.0)]);
        cfg.idle_replicas = *idle;
        let d = once(&cfg, *current, backlogs);
        assert_eq!(
            d.desired, *want,
            "min {min}, idle {idle:?}, current {current}, {backlogs:?}: {:#?}",
            d.steps
        );
        assert!(d.recommendation >= (*current).min(cfg.max_replicas));
    }
    let cfg = with_triggers(config(0, 100), &[(5.0, 0.0), (5.0, 0.0)]);
    let d = once(&cfg, 6, &[Ok(10), FAIL]);
    assert!(rules_of(&d).contains(&Rule::ErrorHold), "{:#?}", d.steps);
    assert_eq!(d.triggers[1].replicas, None);
}

#[test]
fn failing_trigger_does_not_pull_the_window_down() {
    // With a scale-down window, the failing ticks record the held count, so once the trigger
    // recovers the scale-down still waits for the window.
    let mut cfg = with_triggers(config(0, 100), &[(5.0, 0.0), (5.0, 0.0)]);
    cfg.behavior.down.stabilization = secs(120);
    let mut sim = Sim::new(cfg, 6);
    sim.expect(&[
        (0, &[Ok(0), FAIL], 6),
        (60, &[Ok(0), FAIL], 6),
        (90, &[Ok(0), Ok(0)], 6),
        (179, &[Ok(0), Ok(0)], 6),
        (180, &[Ok(0), Ok(0)], 0),
    ]);
}

#[test]
fn tolerance_keeps_the_current_count() {
    // HPA tolerance 0.1, targetQueueSize 5, current 10: ratio = backlog / 50.
    let cfg = config(0, 100);
    let cases: &[(u64, u32, bool)] = &[
        (50, 10, true),
        (51, 10, true),
        (54, 10, true),
        (46, 10, true),
        (56, 12, false),
        (44, 9, false),
        (100, 20, false),
    ];
    for &(backlog, want, within) in cases {
        let d = once(&cfg, 10, &[Ok(backlog)]);
        assert_eq!(d.desired, want, "backlog {backlog}: {:#?}", d.steps);
        assert_eq!(d.triggers[0].within_tolerance, within, "backlog {backlog}");
    }

    // Per-direction tolerance: none up, 0.3 down.
    let mut cfg = config(0, 100);
    cfg.behavior.up.tolerance = 0.0;
    cfg.behavior.down.tolerance = 0.3;
    for &(backlog, want) in &[(50, 10), (51, 11), (40, 10), (36, 10), (30, 6)] {
        let d = once(&cfg, 10, &[Ok(backlog)]);
        assert_eq!(d.desired, want, "backlog {backlog}: {:#?}", d.steps);
    }

    // Within tolerance on every trigger keeps the count even when one trigger alone would round
    // up.
    let cfg = with_triggers(config(0, 100), &[(5.0, 0.0), (2.0, 0.0)]);
    assert_eq!(once(&cfg, 10, &[Ok(53), Ok(21)]).desired, 10);
}

#[test]
fn cooldown_blocks_scale_down_but_never_scale_up() {
    // min 1: the step to zero has its own guard (tested below).
    let mut cfg = config(1, 100);
    cfg.cooldown = secs(300);
    let mut sim = Sim::new(cfg, 2);
    // Scale up at once (no previous scale).
    assert_eq!(sim.run(0, &[Ok(50)]), 10);
    // Scale-down within the cooldown after the last scale: held.
    let d = sim.tick(100, &[Ok(0)]);
    assert_eq!(d.desired, 10, "{:#?}", d.steps);
    assert!(rules_of(&d).contains(&Rule::Cooldown));
    // Scale-up within the cooldown: not delayed.
    assert_eq!(sim.run(150, &[Ok(100)]), 20);
    // The cooldown counts from the last scale (t=150).
    sim.expect(&[
        (299, &[Ok(0)], 20),
        (300, &[Ok(0)], 20),
        (449, &[Ok(0)], 20),
        (450, &[Ok(0)], 1),
        // A scale-up right after a scale-down: not delayed either.
        (451, &[Ok(50)], 10),
    ]);
}

#[test]
fn new_leader_waits_a_full_scale_down_window() {
    let mut cfg = config(0, 100);
    cfg.behavior = Behavior::hpa_default().into(); // scale-down window 300 s
    let mut sim = Sim::new(cfg.clone(), 10);
    sim.observing_since = sim.at(0);
    let d = sim.tick(0, &[Ok(0)]);
    assert_eq!(d.desired, 10, "{:#?}", d.steps);
    assert!(rules_of(&d).contains(&Rule::LeaderObservation));
    for t in (30..300).step_by(30) {
        assert_eq!(sim.run(t, &[Ok(0)]), 10, "t={t}");
    }
    assert_eq!(sim.run(300, &[Ok(0)]), 0);

    // The same first tick by an agent that has observed long enough scales down at once: the
    // rule above is what held the new leader.
    let mut old = Sim::new(cfg.clone(), 10);
    assert_eq!(old.run(0, &[Ok(0)]), 0);

    // A new leader scales up without waiting.
    let mut sim = Sim::new(cfg, 10);
    sim.observing_since = sim.at(0);
    assert_eq!(sim.run(1, &[Ok(100)]), 20);
}

#[test]
fn initial_cooldown_blocks_scale_down_after_start() {
    let mut cfg = config(0, 100);
    cfg.initial_cooldown = secs(600);
    let mut sim = Sim::new(cfg, 5);
    sim.started_at = sim.at(0);
    let d = sim.tick(100, &[Ok(0)]);
    assert_eq!(d.desired, 5, "{:#?}", d.steps);
    assert!(rules_of(&d).contains(&Rule::InitialCooldown));
    sim.expect(&[
        // scale-up is not delayed
        (300, &[Ok(100)], 20),
        (599, &[Ok(0)], 20),
        (600, &[Ok(0)], 0),
    ]);
}

// ---------------------------------------------------------------------------------------------
// HPA stabilization windows
// ---------------------------------------------------------------------------------------------

#[test]
fn scale_down_uses_the_highest_recommendation_in_the_window() {
    let mut cfg = config(0, 100);
    cfg.behavior.down.stabilization = secs(300);
    let mut sim = Sim::new(cfg, 10);
    sim.expect(&[
        (0, &[Ok(50)], 10),  // rec 10
        (30, &[Ok(20)], 10), // rec 4
        (60, &[Ok(35)], 10), // rec 7
        (90, &[Ok(20)], 10),
        (150, &[Ok(20)], 10),
        (270, &[Ok(20)], 10),
        (299, &[Ok(20)], 10),
        // t=0 left the window; the highest left is 7 (t=60)
        (300, &[Ok(20)], 7),
        (330, &[Ok(20)], 7),
        (359, &[Ok(20)], 7),
        // t=60 left the window
        (360, &[Ok(20)], 4),
    ]);
}

#[test]
fn scale_up_uses_the_lowest_recommendation_in_the_window() {
    let mut cfg = config(0, 100);
    cfg.behavior.up.stabilization = secs(60);
    let mut sim = Sim::new(cfg, 2);
    sim.expect(&[
        (0, &[Ok(10)], 2),  // rec 2
        (15, &[Ok(50)], 2), // rec 10, lowest in window 2
        (30, &[Ok(30)], 2), // rec 6
        (45, &[Ok(50)], 2),
        // t=0 left the window: lowest is 6 (t=30)
        (60, &[Ok(50)], 6),
        (75, &[Ok(50)], 6),
        // t=30 left the window
        (90, &[Ok(50)], 10),
    ]);
}

#[test]
fn activation_from_zero_is_not_delayed_by_the_scale_up_window() {
    // KEDA takes a target off zero itself, at once; the HPA window applies from 1 upwards.
    let mut cfg = config(0, 100);
    cfg.behavior.up.stabilization = secs(60);
    let mut sim = Sim::new(cfg, 0);
    sim.expect(&[
        (0, &[Ok(0)], 0),
        (15, &[Ok(0)], 0),
        (30, &[Ok(50)], 1), // active: 0 → 1 although the window's lowest is 0
        (45, &[Ok(50)], 1), // then the window holds it
        (90, &[Ok(50)], 10),
    ]);
}

#[test]
fn windows_in_both_directions() {
    // Up window 30 s, down window 120 s: a short spike does not scale up, a short dip does not
    // scale down.
    let mut cfg = config(0, 100);
    cfg.behavior.up.stabilization = secs(30);
    cfg.behavior.down.stabilization = secs(120);
    let mut sim = Sim::new(cfg, 4);
    sim.expect(&[
        (0, &[Ok(20)], 4),
        (15, &[Ok(200)], 4), // spike: lowest in the up window is 4
        (30, &[Ok(20)], 4),
        (45, &[Ok(0)], 4), // dip: highest in the down window is 40
        (60, &[Ok(20)], 4),
        (75, &[Ok(200)], 4), // the t=60 recommendation (4) is still in the up window
        (90, &[Ok(200)], 40), // only t=75 and t=90 (both 40) are in the up window
    ]);
}

// ---------------------------------------------------------------------------------------------
// HPA scaling policies (cases from the Kubernetes HPA documentation)
// ---------------------------------------------------------------------------------------------

/// A config with a huge target ceiling and targetQueueSize 1, so the backlog is the
/// recommendation.
fn policy_config(behavior: Behavior, min: u32) -> ScalerConfig {
    let mut cfg = with_triggers(config(min, 1000), &[(1.0, 0.0)]);
    cfg.behavior = behavior.into();
    cfg
}

const HUGE: R = Ok(100_000);

#[test]
fn default_scale_up_is_max_of_100_percent_and_4_pods_per_15s() {
    let mut b = Behavior::hpa_default();
    b.down = free_rules();
    let cfg = policy_config(b, 0);
    // (current, desired): max(ceil(2·current), current + 4)
    for &(current, want) in &[
        (0, 4),
        (1, 5),
        (2, 6),
        (4, 8),
        (5, 10),
        (10, 20),
        (100, 200),
    ] {
        let d = once(&cfg, current, &[HUGE]);
        assert_eq!(d.desired, want, "from {current}: {:#?}", d.steps);
        assert!(rules_of(&d).contains(&Rule::Policy));
    }
    // Within one 15 s period the limit does not move; the next period starts from 5.
    let mut sim = Sim::new(cfg, 1);
    sim.expect(&[
        (0, &[HUGE], 5),
        (10, &[HUGE], 5),
        (14, &[HUGE], 5),
        (15, &[HUGE], 10),
        (30, &[HUGE], 20),
    ]);
}

#[test]
fn pods_4_per_60s_limits_scale_up() {
    let mut b = free_behavior();
    b.up.policies = vec![policy(PolicyKind::Pods, 4, 60)];
    let mut sim = Sim::new(policy_config(b, 0), 2);
    sim.expect(&[
        (0, &[HUGE], 6),
        (30, &[HUGE], 6),
        (59, &[HUGE], 6),
        (60, &[HUGE], 10),
        (120, &[HUGE], 14),
    ]);
}

#[test]
fn scale_up_limit_is_relative_to_the_start_of_the_period() {
    // Two scale-ups inside one 60 s period add up to at most 4 pods.
    let mut b = free_behavior();
    b.up.policies = vec![policy(PolicyKind::Pods, 4, 60)];
    let mut sim = Sim::new(policy_config(b, 0), 2);
    sim.expect(&[
        (0, &[Ok(4)], 4),     // +2
        (20, &[HUGE], 6),     // start of the period was 2: +2 more, not +4
        (40, &[HUGE], 6),     // still 2 + 4
        (60, &[HUGE], 8),     // the t=0 event left: start is 4
        (80, &[HUGE], 10),    // the t=20 event left: start is 6
        (140, &[Ok(10)], 10), // tolerance: stays
    ]);
}

#[test]
fn percent_10_per_60s_limits_scale_down() {
    // "Percent 10 per 60 s": from 80 down towards 10.
    let mut b = free_behavior();
    b.down.policies = vec![policy(PolicyKind::Percent, 10, 60)];
    let mut sim = Sim::new(policy_config(b, 10), 80);
    sim.expect(&[
        (0, &[Ok(0)], 72),
        (30, &[Ok(0)], 72),
        (59, &[Ok(0)], 72),
        (60, &[Ok(0)], 64), // 72 · 0.9 = 64.8: the change is rounded up to 8
        (120, &[Ok(0)], 57),
        (180, &[Ok(0)], 51),
    ]);
}

#[test]
fn select_policy_max_and_min_for_scale_down() {
    // The documentation's example: Pods 4 and Percent 10 per 60 s. Max (the default) takes the
    // policy allowing the most change, Min the least.
    let policies = vec![
        policy(PolicyKind::Pods, 4, 60),
        policy(PolicyKind::Percent, 10, 60),
    ];
    // (current, desired with Max, desired with Min), scaling down towards 1
    let cases: &[(u32, u32, u32)] = &[(80, 72, 76), (40, 36, 36), (30, 26, 27), (10, 6, 9)];
    for &(current, want_max, want_min) in cases {
        for (select, want) in [(SelectPolicy::Max, want_max), (SelectPolicy::Min, want_min)] {
            let mut b = free_behavior();
            b.down.select = select;
            b.down.policies = policies.clone();
            let d = once(&policy_config(b, 1), current, &[Ok(0)]);
            assert_eq!(d.desired, want, "{select:?} from {current}: {:#?}", d.steps);
        }
    }

    // "No more than 5 pods removed per minute": Percent 10 and Pods 5, selectPolicy Min.
    let mut b = free_behavior();
    b.down.select = SelectPolicy::Min;
    b.down.policies = vec![
        policy(PolicyKind::Percent, 10, 60),
        policy(PolicyKind::Pods, 5, 60),
    ];
    let cfg = policy_config(b, 1);
    assert_eq!(once(&cfg, 100, &[Ok(0)]).desired, 95);
    assert_eq!(once(&cfg, 20, &[Ok(0)]).desired, 18);
}

#[test]
fn select_policy_max_and_min_for_scale_up() {
    // (current, desired with Max, desired with Min) for +100% / +4 pods per 15 s
    let cases: &[(u32, u32, u32)] = &[(1, 5, 2), (2, 6, 4), (4, 8, 8), (10, 20, 14)];
    for &(current, want_max, want_min) in cases {
        for (select, want) in [(SelectPolicy::Max, want_max), (SelectPolicy::Min, want_min)] {
            let mut b = Behavior::hpa_default();
            b.up.select = select;
            b.down = free_rules();
            let d = once(&policy_config(b, 0), current, &[HUGE]);
            assert_eq!(d.desired, want, "{select:?} from {current}: {:#?}", d.steps);
        }
    }
}

#[test]
fn disabled_direction_never_scales_that_way() {
    // scaleUp Disabled
    let mut b = free_behavior();
    b.up.select = SelectPolicy::Disabled;
    let mut sim = Sim::new(policy_config(b, 0), 3);
    for t in (0..=600).step_by(60) {
        let d = sim.tick(t, &[HUGE]);
        assert_eq!(d.desired, 3, "t={t}: {:#?}", d.steps);
    }
    // ... but scale-down still works.
    assert_eq!(sim.run(660, &[Ok(1)]), 1);

    // scaleDown Disabled: not even to zero when inactive.
    let mut b = free_behavior();
    b.down.select = SelectPolicy::Disabled;
    let mut sim = Sim::new(policy_config(b, 0), 8);
    for t in (0..=600).step_by(60) {
        let d = sim.tick(t, &[Ok(0)]);
        assert_eq!(d.desired, 8, "t={t}: {:#?}", d.steps);
        let d = sim.tick(t + 30, &[Ok(2)]);
        assert_eq!(d.desired, 8, "t={}: {:#?}", t + 30, d.steps);
    }
    // ... but scale-up still works.
    assert_eq!(sim.run(700, &[Ok(12)]), 12);
}

#[test]
fn default_scale_down_waits_the_window_then_drops_at_once() {
    // HPA defaults: 300 s window, then -100% per 15 s.
    let mut cfg = policy_config(Behavior::hpa_default(), 0);
    cfg.triggers = vec![trigger("q", 5.0, 0.0)];
    let mut sim = Sim::new(cfg, 10);
    sim.expect(&[
        (0, &[Ok(50)], 10),
        (30, &[Ok(10)], 10),
        (299, &[Ok(10)], 10),
        (300, &[Ok(10)], 2),
        (330, &[Ok(0)], 2), // the t=300 recommendation (2) holds for a window
        (599, &[Ok(0)], 2),
        (600, &[Ok(0)], 0),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

fn select_strategy() -> impl Strategy<Value = SelectPolicy> {
    prop_oneof![
        4 => Just(SelectPolicy::Max),
        2 => Just(SelectPolicy::Min),
        1 => Just(SelectPolicy::Disabled),
    ]
}

fn policy_strategy() -> impl Strategy<Value = Policy> {
    (
        prop_oneof![Just(PolicyKind::Pods), Just(PolicyKind::Percent)],
        1u32..=200,
        1u64..=120,
    )
        .prop_map(|(kind, value, period)| policy(kind, value, period))
}

fn rules_strategy(max_window: u64) -> impl Strategy<Value = ScaleRules> {
    (
        0..=max_window,
        select_strategy(),
        proptest::collection::vec(policy_strategy(), 1..=3),
        prop_oneof![Just(0.0), Just(0.1), 0.0f64..0.5],
    )
        .prop_map(|(w, select, policies, tolerance)| ScaleRules {
            stabilization: secs(w),
            select,
            policies,
            tolerance,
        })
}

prop_compose! {
    fn config_strategy()(
        min in 0u32..=4,
        span in 0u32..=20,
        idle in proptest::option::of(0u32..4),
        cooldown in prop_oneof![Just(0u64), 1u64..=120],
        initial_cooldown in prop_oneof![Just(0u64), 1u64..=120],
        up in rules_strategy(120),
        down in rules_strategy(300),
        triggers in proptest::collection::vec((1u32..=40, 0u32..=30), 1..=3),
    ) -> ScalerConfig {
        let mut cfg = config(min, (min + span).max(1));
        // As validation: idleReplicaCount < minReplicaCount.
        cfg.idle_replicas = idle.filter(|&i| i < min);
        cfg.cooldown = secs(cooldown);
        cfg.initial_cooldown = secs(initial_cooldown);
        cfg.behavior = Behavior { up, down }.into();
        let pairs: Vec<(f64, f64)> = triggers
            .iter()
            .map(|&(t, a)| (t as f64 / 2.0, a as f64))
            .collect();
        with_triggers(cfg, &pairs)
    }
}

fn reading_strategy() -> impl Strategy<Value = R> {
    prop_oneof![
        6 => (0u64..=300).prop_map(Ok),
        1 => Just(FAIL),
    ]
}

#[derive(Clone, Debug)]
struct Scenario {
    cfg: ScalerConfig,
    initial: u32,
    /// (seconds since the previous tick, one reading per trigger)
    ticks: Vec<(u64, Vec<R>)>,
}

prop_compose! {
    fn scenario_strategy()(cfg in config_strategy())(
        initial in 0..=cfg.max_replicas,
        ticks in proptest::collection::vec(
            (1u64..=60, proptest::collection::vec(reading_strategy(), cfg.triggers.len())),
            1..=40,
        ),
        cfg in Just(cfg),
    ) -> Scenario {
        Scenario { cfg, initial, ticks }
    }
}

/// What one simulated tick saw and decided.
struct Tick {
    now: Instant,
    current: u32,
    backlogs: Vec<R>,
    /// The last scale before this tick.
    last_scale: Option<Instant>,
    /// Every recommendation recorded so far, including this tick's.
    recommendations: Vec<(Instant, u32)>,
    decision: Decision,
}

fn simulate(s: &Scenario) -> (Vec<Tick>, Sim) {
    let mut sim = Sim::new(s.cfg.clone(), s.initial);
    // The scaler starts (and its agent gets the lease) at the first tick's offset 0, so
    // initialCooldownPeriod and the new-leader observation are exercised too.
    sim.started_at = sim.at(0);
    sim.observing_since = sim.at(0);
    let mut t = 0;
    let mut last_scale = None;
    let mut recommendations = Vec::new();
    let mut out = Vec::new();
    for (dt, backlogs) in &s.ticks {
        t += dt;
        let current = sim.current;
        let decision = sim.tick(t, backlogs);
        let now = sim.at(t);
        recommendations.push((now, decision.recommendation));
        out.push(Tick {
            now,
            current,
            backlogs: backlogs.clone(),
            last_scale,
            recommendations: recommendations.clone(),
            decision,
        });
        if sim.current != current {
            last_scale = Some(now);
        }
    }
    (out, sim)
}

fn is_active(cfg: &ScalerConfig, backlogs: &[R]) -> bool {
    cfg.triggers
        .iter()
        .zip(backlogs)
        .any(|(t, b)| b.is_ok_and(|b| b as f64 > t.activation_target_queue_size))
}

/// The KEDA inactive path: every trigger read, none active, and a floor below min exists
/// (minReplicaCount 0 or idleReplicaCount).
fn inactive_path(cfg: &ScalerConfig, backlogs: &[R]) -> bool {
    backlogs.iter().all(Result::is_ok)
        && !is_active(cfg, backlogs)
        && (cfg.min_replicas == 0 || cfg.idle_replicas.is_some())
}

/// The HPA's usage ratio test: |backlog / (target · current) − 1| ≤ tolerance of the direction.
fn within_tolerance(cfg: &ScalerConfig, target: f64, current: u32, backlog: u64) -> bool {
    if current == 0 || backlog == 0 {
        return false;
    }
    let ratio = backlog as f64 / (target * current as f64);
    let tol = if ratio >= 1.0 {
        cfg.behavior.up.tolerance
    } else {
        cfg.behavior.down.tolerance
    };
    (ratio - 1.0).abs() <= tol
}

fn all_within_tolerance(cfg: &ScalerConfig, current: u32, backlogs: &[R]) -> bool {
    cfg.triggers.iter().zip(backlogs).all(|(t, b)| match b {
        Ok(b) => within_tolerance(cfg, t.target_queue_size, current, *b),
        Err(_) => false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn prop_never_above_max(s in scenario_strategy()) {
        let (ticks, _) = simulate(&s);
        for k in &ticks {
            prop_assert!(k.decision.desired <= s.cfg.max_replicas,
                "desired {} > max {}: {:#?}", k.decision.desired, s.cfg.max_replicas, k.decision.steps);
            prop_assert!(k.decision.recommendation <= s.cfg.max_replicas);
        }
    }

    #[test]
    fn prop_hand_scaled_above_max_comes_back(mut s in scenario_strategy(), extra in 1u32..=5) {
        s.initial = s.cfg.max_replicas + extra;
        let (ticks, _) = simulate(&s);
        prop_assert!(ticks[0].decision.desired <= s.cfg.max_replicas,
            "{} above max {} kept: {:#?}", s.initial, s.cfg.max_replicas, ticks[0].decision.steps);
        for k in &ticks {
            prop_assert!(k.decision.desired <= s.cfg.max_replicas);
        }
    }

    #[test]
    fn prop_never_below_min_unless_inactive(s in scenario_strategy()) {
        let (ticks, _) = simulate(&s);
        for k in &ticks {
            let d = k.decision.desired;
            let idle_floor = s.cfg.idle_replicas.or((s.cfg.min_replicas == 0).then_some(0));
            let held_idle = k.backlogs.iter().any(Result::is_err)
                && idle_floor.is_some_and(|f| k.current >= f)
                && d == k.current;
            if held_idle {
                // A failing trigger holds an idle target where it is.
                continue;
            }
            if inactive_path(&s.cfg, &k.backlogs) {
                let floor = s.cfg.idle_replicas.unwrap_or(0);
                prop_assert!(d >= floor, "desired {d} < idle floor {floor}: {:#?}", k.decision.steps);
            } else {
                prop_assert!(d >= s.cfg.min_replicas,
                    "desired {d} < min {} while not inactive ({:?}): {:#?}",
                    s.cfg.min_replicas, k.backlogs, k.decision.steps);
            }
        }
    }

    #[test]
    fn prop_failing_trigger_never_lowers(s in scenario_strategy()) {
        let (ticks, _) = simulate(&s);
        for k in ticks.iter().filter(|k| k.backlogs.iter().any(Result::is_err)) {
            let d = k.decision.desired;
            prop_assert!(d >= k.current,
                "a failing trigger lowered {} to {d} ({:?}): {:#?}", k.current, k.backlogs, k.decision.steps);
            prop_assert!(k.current == 0 || d > 0);
        }
    }

    #[test]
    fn prop_within_tolerance_keeps_current(s in scenario_strategy(), pick in 0usize..3) {
        let cfg = &s.cfg;
        let in_bounds = |c: u32| c >= cfg.min_replicas && c <= cfg.max_replicas;
        let applies = |current: u32, backlogs: &[R]| {
            in_bounds(current)
                && all_within_tolerance(cfg, current, backlogs)
                && !inactive_path(cfg, backlogs)
        };
        // Wherever the random sequence happens to be within tolerance ...
        let (ticks, mut sim) = simulate(&s);
        for k in ticks.iter().filter(|k| applies(k.current, &k.backlogs)) {
            prop_assert_eq!(k.decision.desired, k.current,
                "within tolerance ({:?}) but changed: {:#?}", k.backlogs, k.decision.steps);
        }
        // ... and one more tick built to be within tolerance of the final count, after the
        // random history (windows, policies, cooldowns all loaded).
        let current = sim.current;
        if current == 0 || !in_bounds(current) {
            return Ok(());
        }
        let backlogs: Vec<R> = cfg
            .triggers
            .iter()
            .map(|t| {
                let ideal = t.target_queue_size * current as f64;
                let candidates = [ideal.round(), ideal.floor(), ideal.ceil(), ideal.floor() - 1.0, ideal.ceil() + 1.0];
                let ok: Vec<u64> = candidates
                    .iter()
                    .filter(|c| **c >= 1.0)
                    .map(|c| *c as u64)
                    .filter(|b| within_tolerance(cfg, t.target_queue_size, current, *b))
                    .collect();
                ok.get(pick % ok.len().max(1)).copied().map(Ok).unwrap_or(FAIL)
            })
            .collect();
        if applies(current, &backlogs) {
            let t = s.ticks.iter().map(|(dt, _)| dt).sum::<u64>() + 1;
            let d = sim.tick(t, &backlogs);
            prop_assert_eq!(d.desired, current,
                "within tolerance ({:?}) but changed: {:#?}", backlogs, d.steps);
        }
    }

    #[test]
    fn prop_no_scale_down_within_cooldown(s in scenario_strategy()) {
        let (ticks, sim) = simulate(&s);
        for k in ticks.iter().filter(|k| k.decision.desired < k.current) {
            if let Some(last) = k.last_scale {
                let since = k.now.duration_since(last);
                prop_assert!(since >= s.cfg.cooldown,
                    "scaled down {} → {} {since:?} after the last scale (cooldown {:?}): {:#?}",
                    k.current, k.decision.desired, s.cfg.cooldown, k.decision.steps);
            }
            // Nor within initialCooldownPeriod, nor before a new leader observed a full window.
            prop_assert!(k.now.duration_since(sim.started_at) >= s.cfg.initial_cooldown);
            prop_assert!(k.now.duration_since(sim.observing_since) >= s.cfg.behavior.down.stabilization);
        }
    }

    #[test]
    fn prop_scale_down_respects_the_window(s in scenario_strategy()) {
        let (ticks, _) = simulate(&s);
        let window = s.cfg.behavior.down.stabilization;
        for k in ticks.iter().filter(|k| k.decision.desired < k.current) {
            let d = k.decision.desired;
            for &(at, r) in &k.recommendations {
                if k.now.duration_since(at) < window {
                    prop_assert!(r <= d,
                        "scaled down to {d} although {r} was recommended {:?} ago (window {window:?}): {:#?}",
                        k.now.duration_since(at), k.decision.steps);
                }
            }
        }
    }

    #[test]
    fn prop_disabled_direction(s in scenario_strategy()) {
        let (ticks, _) = simulate(&s);
        let cfg = &s.cfg;
        for k in &ticks {
            let d = k.decision.desired;
            if cfg.behavior.down.select == SelectPolicy::Disabled {
                prop_assert!(d >= k.current, "scaleDown Disabled, yet {} → {d}", k.current);
            }
            if cfg.behavior.up.select == SelectPolicy::Disabled {
                // Only the hard floor (min) and activation from zero may raise the count.
                let allowed = k.current.max(cfg.min_replicas).max(u32::from(k.current == 0));
                prop_assert!(d <= allowed, "scaleUp Disabled, yet {} → {d}", k.current);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scale-to-zero safety, KEDA fields, and the opt-in signals
// ---------------------------------------------------------------------------------------------

#[test]
fn zero_needs_consecutive_idle_reads_over_the_whole_cooldown() {
    let mut cfg = config(0, 100);
    cfg.cooldown = secs(60);
    cfg.scale_to_zero_reads = 3;
    let mut sim = Sim::new(cfg, 4);
    sim.expect(&[
        (0, &[Ok(20)], 4),
        // The queue reads 0 (it may just have been unloaded): one replica stays.
        (10, &[Ok(0)], 1),
        (20, &[Ok(0)], 1),
        // A failed read breaks the idle streak (and errors never lower the count).
        (30, &[Err("unavailable")], 1),
        (40, &[Ok(0)], 1),
        (50, &[Ok(0)], 1),
        (60, &[Ok(0)], 1), // three idle reads, but only 20 s of the 60 s cooldown
        (99, &[Ok(0)], 1),
        (100, &[Ok(0)], 0), // idle since t=40 for the whole cooldown
    ]);
    let d = sim.tick(110, &[Ok(0)]);
    assert_eq!(d.desired, 0);
    // From a streak too short, the guard says why.
    let mut sim = Sim::new(config(0, 100), 2);
    sim.cfg.scale_to_zero_reads = 2;
    let d = sim.tick(0, &[Ok(0)]);
    assert_eq!(d.desired, 1);
    assert!(
        rules_of(&d).contains(&Rule::ScaleToZeroGuard),
        "{:#?}",
        d.steps
    );
    assert_eq!(sim.run(1, &[Ok(0)]), 0);
}

#[test]
fn pause_annotations_freeze_or_pin() {
    let mut a = BTreeMap::new();
    assert_eq!(Pause::from_annotations(&a), Pause::No);
    a.insert(PAUSED.to_string(), "true".to_string());
    assert_eq!(Pause::from_annotations(&a), Pause::Freeze);
    a.insert(PAUSED_REPLICAS.to_string(), "2".to_string());
    assert_eq!(
        Pause::from_annotations(&a),
        Pause::Pin(2),
        "paused-replicas wins"
    );

    let mut sim = Sim::new(config(0, 10), 3);
    sim.pause = Pause::Freeze;
    let d = sim.tick(0, &[Ok(100)]);
    assert_eq!((d.desired, d.paused), (3, Pause::Freeze));
    assert_eq!(rules_of(&d), [Rule::Paused]);
    sim.pause = Pause::Pin(0);
    assert_eq!(sim.run(1, &[Ok(100)]), 0, "pinned, whatever the backlog");
    sim.pause = Pause::No;
    assert_eq!(
        sim.run(2, &[Ok(100)]),
        10,
        "unpaused: 100 / 5, clamped to max"
    );
}

#[test]
fn fallback_replaces_a_trigger_after_failure_threshold_failures() {
    use crate::spec::Fallback;
    for (behavior, current, want) in [
        ("static", 6, 2),
        ("currentReplicas", 6, 6),
        ("currentReplicasIfHigher", 6, 6),
        ("currentReplicasIfHigher", 1, 2),
        ("currentReplicasIfLower", 6, 2),
        ("currentReplicasIfLower", 1, 1),
    ] {
        let mut cfg = config(0, 10);
        cfg.fallback = Some(Box::new(Fallback {
            failure_threshold: 3,
            replicas: 2,
            behavior: behavior.into(),
        }));
        let mut sim = Sim::new(cfg, current);
        // Failures 1 and 2 hold the count; the 3rd uses the fallback.
        assert_eq!(sim.run(0, &[Err("x")]), current);
        assert!(!sim.tick(1, &[Err("x")]).fallback);
        let d = sim.tick(2, &[Err("x")]);
        assert!(
            d.fallback && rules_of(&d).contains(&Rule::Fallback),
            "{behavior}: {:#?}",
            d.steps
        );
        assert_eq!(d.desired, want, "{behavior} from {current}: {:#?}", d.steps);
        // The scale log line and event name the fallback, not the triggers' max.
        assert_eq!(d.rule(), Rule::Fallback, "{behavior}: {:#?}", d.steps);
        // A success ends it.
        let d = sim.tick(3, &[Ok(15)]);
        assert!(!d.fallback);
        assert_ne!(d.rule(), Rule::Fallback);
        assert_eq!(d.desired, 3);
    }
}

fn signal_reading(backlog: u64, signals: Signals) -> TriggerReading {
    TriggerReading {
        name: "t".into(),
        backlog: Ok(backlog),
        target: 5.0,
        activation: 0.0,
        signals,
    }
}

#[test]
fn growth_look_ahead_scales_before_the_backlog_does() {
    // 10 tasks, growing by 2/s, 30 s ahead: (10 + 60) / 5 = 14.
    let s = Signals {
        growth_per_sec: 2.0,
        lookahead_secs: Some(30.0),
        ..Default::default()
    };
    let r = recommend(&signal_reading(10, s.clone()), 2, 0.1, 0.1);
    assert_eq!((r.replicas, r.basis), (Some(14), Basis::Growth));
    // Shrinking backlogs do not look ahead; without the key, nothing changes.
    let shrinking = Signals {
        growth_per_sec: -2.0,
        ..s.clone()
    };
    assert_eq!(
        recommend(&signal_reading(10, shrinking), 2, 0.1, 0.1).replicas,
        Some(2)
    );
    // (10 / (5 × 2) = 1: the count alone is within tolerance of the current 2.)
    assert_eq!(
        recommend(
            &signal_reading(
                10,
                Signals {
                    lookahead_secs: None,
                    ..s
                }
            ),
            2,
            0.1,
            0.1
        )
        .basis,
        Basis::Tolerance
    );
    // Never above max: the clamp still applies.
    let mut cfg = config(0, 8);
    cfg.triggers[0].growth_lookahead_secs = Some(30.0);
    let readings = vec![signal_reading(
        10,
        Signals {
            growth_per_sec: 2.0,
            lookahead_secs: Some(30.0),
            ..Default::default()
        },
    )];
    let now = Instant::now();
    let d = decide(
        &Input {
            config: &cfg,
            current: 2,
            readings: &readings,
            now,
            observing_since: now,
            started_at: now,
            pause: Pause::No,
        },
        &History::default(),
    );
    assert_eq!(d.desired, 8);
}

#[test]
fn backlog_age_adds_replicas_in_proportion() {
    // 3 replicas, oldest task 90 s against a 30 s target: 3 × 90 / 30 = 9 (count alone says 2).
    let s = Signals {
        backlog_age_secs: 90.0,
        target_backlog_age_secs: Some(30.0),
        ..Default::default()
    };
    let r = recommend(&signal_reading(10, s.clone()), 3, 0.1, 0.1);
    assert_eq!((r.replicas, r.basis), (Some(9), Basis::BacklogAge));
    // Younger than the target: the count decides.
    let young = Signals {
        backlog_age_secs: 20.0,
        ..s.clone()
    };
    assert_eq!(
        recommend(&signal_reading(10, young), 3, 0.1, 0.1).basis,
        Basis::Backlog
    );
    // From zero, one replica is the base.
    assert_eq!(
        recommend(&signal_reading(1, s), 0, 0.1, 0.1).replicas,
        Some(3)
    );
}

#[test]
fn a_rate_limited_queue_gets_no_more_replicas() {
    let s = Signals {
        rate_limited: true,
        ..Default::default()
    };
    let r = recommend(&signal_reading(100, s.clone()), 3, 0.1, 0.1);
    assert_eq!(
        (r.replicas, r.basis, r.rate_limited),
        (Some(3), Basis::RateLimited, true)
    );
    // Scale-down is not blocked, and activation from zero still gets one worker.
    assert_eq!(
        recommend(&signal_reading(5, s.clone()), 3, 0.1, 0.1).replicas,
        Some(1)
    );
    assert_eq!(
        recommend(&signal_reading(100, s), 0, 0.1, 0.1).replicas,
        Some(1)
    );
}

#[test]
fn running_workflows_keep_one_replica() {
    let s = Signals {
        running_workflows: Some(4),
        ..Default::default()
    };
    let r = recommend(&signal_reading(0, s), 1, 0.1, 0.1);
    assert_eq!(
        (r.replicas, r.active, r.basis),
        (Some(1), true, Basis::RunningWorkflows)
    );
    let none = Signals {
        running_workflows: Some(0),
        ..Default::default()
    };
    let r = recommend(&signal_reading(0, none), 1, 0.1, 0.1);
    assert_eq!((r.replicas, r.active), (Some(0), false));
}

#[test]
fn history_holds_what_the_windows_need_not_every_tick() {
    // An hour of ticks every 15 s with the HPA's default behavior (down window 300 s,
    // policies over 15 s): a steady recommendation is one entry, not 240.
    let mut cfg = config(1, 50);
    cfg.behavior = Behavior::hpa_default().into();
    let mut sim = Sim::new(cfg, 3);
    for t in (0..3600).step_by(15) {
        sim.run(t, &[Ok(15)]);
    }
    assert_eq!(sim.history.remembered(), 1);
    // Room for that one entry, not the four a deque's first push reserves.
    assert_eq!(sim.history.down_highest.entries.capacity(), 1);
    // A recommendation that alternates keeps at most the down window's worth of entries.
    for t in (3600..7200).step_by(15) {
        sim.run(t, &[Ok(if t % 30 == 0 { 15 } else { 10 })]);
    }
    let window_ticks = (300 / 15) as usize;
    assert!(
        sim.history.remembered() <= window_ticks + 4,
        "{} entries",
        sim.history.remembered()
    );
}

proptest! {
    /// The kept entries give the same window extremes as every recommendation would.
    #[test]
    fn prop_window_extremes_match_all_recommendations(
        recs in prop::collection::vec((1u64..40, 0u32..20), 1..80),
        up in 0u64..200,
        down in 0u64..400,
        probe in 0u64..60,
    ) {
        let base = Instant::now();
        let mut behavior = Behavior::hpa_default();
        behavior.up.stabilization = Duration::from_secs(up);
        behavior.down.stabilization = Duration::from_secs(down);
        let mut h = History::default();
        let mut all = Vec::new();
        let mut t = 0;
        for (dt, r) in recs {
            t += dt;
            let at = base + Duration::from_secs(t);
            h.record_recommendation(at, r, &behavior);
            all.push((at, r));
        }
        let now = base + Duration::from_secs(t + probe);
        let brute = |window: Duration, highest: bool| {
            let v = all.iter().filter(|&&(at, _)| History::within(now, at, window)).map(|&(_, r)| r);
            if highest { v.max() } else { v.min() }
        };
        prop_assert_eq!(h.up_lowest(now, behavior.up.stabilization), brute(behavior.up.stabilization, false));
        prop_assert_eq!(h.down_highest.within(now, behavior.down.stabilization), brute(behavior.down.stabilization, true));
    }
}

/// The worker-capacity signal and the dispatching guard.
mod capacity;
