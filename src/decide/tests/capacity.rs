//! The worker-capacity signal (`targetSlotUtilization`) and the dispatching guard
//! (`keepWhileDispatching`) in the decision.

use super::*;
use crate::decide::capacity::{Capacity, SlotKind, Slots, WorkerSample, summarize};
use std::time::SystemTime;

fn now_wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
}

/// A worker with `used` of `slots` activity slots busy (`slots` None: unknown bound).
fn activity_worker(host: &str, used: u32, slots: Option<u32>) -> WorkerSample {
    let mut s = [Slots::default(); 4];
    s[1] = Slots {
        used,
        available: slots.map(|n| n.saturating_sub(used)),
    };
    WorkerSample {
        host: host.into(),
        running: true,
        heartbeat_at: Some(now_wall() - Duration::from_secs(2)),
        slots: s,
    }
}

fn cap(workers: &[WorkerSample]) -> Capacity {
    summarize(
        workers,
        &[SlotKind::Activity],
        now_wall(),
        Duration::from_secs(180),
        None,
    )
}

fn with_capacity(backlog: u64, target: f64, c: Capacity) -> TriggerReading {
    signal_reading(
        backlog,
        Signals {
            capacity: Some(CapacitySignal {
                target,
                capacity: c,
            }),
            ..Default::default()
        },
    )
}

#[test]
fn busy_workers_hold_the_count_while_the_backlog_reads_zero() {
    // Two pods of 5 activity slots, 9 busy, backlog 0: backlog alone says 0.
    let c = cap(&[
        activity_worker("a", 5, Some(5)),
        activity_worker("b", 4, Some(5)),
    ]);
    assert_eq!(
        recommend(&signal_reading(0, Signals::default()), 2, 0.1, 0.1).replicas,
        Some(0)
    );
    // 2 × 0.9 / 0.8 = 2.25 → 3.
    let r = recommend(&with_capacity(0, 0.8, c.clone()), 2, 0.1, 0.1);
    assert_eq!(
        (r.replicas, r.active, r.basis),
        (Some(3), true, Basis::SlotUtilization)
    );
    // At a target of 1.0, 0.9 is within the tolerance of the current 2.
    let r = recommend(&with_capacity(0, 1.0, c.clone()), 2, 0.1, 0.1);
    assert_eq!((r.replicas, r.basis), (Some(2), Basis::SlotUtilization));
    // Over a whole decision, the count is held where backlog-only would scale to zero.
    let mut cfg = config(0, 10);
    cfg.triggers[0].capacity = Some(Box::new(crate::spec::CapacityConfig {
        target_utilization: 1.0,
        max_heartbeat_age: Duration::from_secs(180),
    }));
    let mut sim = Sim::new(cfg.clone(), 2);
    for t in 0..10 {
        let d = sim.tick_readings(t * 15, &[with_capacity(0, 1.0, c.clone())]);
        assert_eq!(d.desired, 2, "{:#?}", d.steps);
        assert!(d.active);
    }
    let mut plain = Sim::new(cfg, 2);
    assert_eq!(plain.run(0, &[Ok(0)]), 0);
}

#[test]
fn the_backlog_still_raises_the_count_above_the_capacity_signal() {
    let c = cap(&[activity_worker("a", 1, Some(10))]);
    let r = recommend(&with_capacity(40, 0.8, c), 1, 0.1, 0.1);
    assert_eq!((r.replicas, r.basis), (Some(8), Basis::Backlog));
}

#[test]
fn unknown_bounds_keep_busy_hosts_without_a_utilization() {
    let c = cap(&[
        activity_worker("a", 3, None),
        activity_worker("b", 0, None),
        activity_worker("c", 1, None),
    ]);
    assert_eq!((c.utilization, c.busy_floor), (None, 2));
    let r = recommend(&with_capacity(0, 0.8, c), 3, 0.1, 0.1);
    assert_eq!(
        (r.replicas, r.active, r.basis),
        (Some(2), true, Basis::BusyWorkers)
    );
}

#[test]
fn idle_workers_let_the_count_fall() {
    // 1 of 20 slots busy on 2 hosts: 2 × 0.05 / 0.8 → 1, and the busy slot needs 1.
    let c = cap(&[
        activity_worker("a", 1, Some(10)),
        activity_worker("b", 0, Some(10)),
    ]);
    let r = recommend(&with_capacity(0, 0.8, c), 2, 0.1, 0.1);
    assert_eq!((r.replicas, r.active), (Some(1), true));
    // No slot in use: the trigger is idle, as backlog-only.
    let idle = cap(&[activity_worker("a", 0, Some(10))]);
    let r = recommend(&with_capacity(0, 0.8, idle), 1, 0.1, 0.1);
    assert_eq!((r.replicas, r.active), (Some(0), false));
}

#[test]
fn a_rate_limited_queue_keeps_its_busy_workers() {
    let c = cap(&[
        activity_worker("a", 5, Some(5)),
        activity_worker("b", 5, Some(5)),
    ]);
    let mut r = with_capacity(0, 0.8, c);
    r.signals.rate_limited = true;
    // Utilization asks for 3; rate limiting caps the increase at the current 1, but the busy
    // slots need 2.
    let rec = recommend(&r, 1, 0.1, 0.1);
    assert_eq!(rec.replicas, Some(2));
}

#[test]
fn dispatching_keeps_one_replica_only_with_the_guard() {
    let flowing = |guard| Signals {
        dispatch_rate: 3.5,
        keep_while_dispatching: guard,
        ..Default::default()
    };
    let r = recommend(&signal_reading(0, flowing(true)), 1, 0.1, 0.1);
    assert_eq!(
        (r.replicas, r.active, r.basis),
        (Some(1), true, Basis::Dispatching)
    );
    let r = recommend(&signal_reading(0, flowing(false)), 1, 0.1, 0.1);
    assert_eq!((r.replicas, r.active), (Some(0), false));
    // From zero, a flowing queue activates the target.
    let cfg = config(0, 5);
    let mut sim = Sim::new(cfg, 0);
    let d = sim.tick_readings(0, &[signal_reading(0, flowing(true))]);
    assert_eq!(d.desired, 1);
}

fn arb_worker() -> impl Strategy<Value = WorkerSample> {
    (
        0u8..5,
        0u64..300,
        prop::bool::weighted(0.8),
        0u32..20,
        prop::option::weighted(0.8, 0u32..20),
    )
        .prop_map(|(h, age, running, used, free)| {
            let mut w = activity_worker(&format!("h{h}"), used, None);
            w.slots[1].available = free;
            w.running = running;
            w.heartbeat_at = Some(now_wall() - Duration::from_secs(age));
            w
        })
}

/// Distinct hosts of fresh, running workers with an activity slot in use: the oracle of the
/// busy floor, computed apart from `summarize`.
fn busy_hosts(workers: &[WorkerSample]) -> u32 {
    let mut hosts: Vec<&str> = workers
        .iter()
        .filter(|w| w.running && w.slots[1].used > 0)
        .filter(|w| {
            w.heartbeat_at.is_some_and(|at| {
                now_wall()
                    .duration_since(at)
                    .is_ok_and(|a| a <= Duration::from_secs(180))
            })
        })
        .map(|w| w.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    hosts.len() as u32
}

fn arb_signals() -> impl Strategy<Value = (u64, Signals, u32)> {
    (
        prop_oneof![Just(0u64), 0u64..60],
        prop::option::of((0.05f64..=1.0, prop::collection::vec(arb_worker(), 0..8))),
        prop_oneof![Just(0.0f64), 0.0f64..20.0],
        any::<bool>(),
    )
        .prop_map(|(backlog, capacity, dispatch_rate, guard)| {
            let busy = capacity.as_ref().map_or(0, |(_, ws)| busy_hosts(ws));
            (
                backlog,
                Signals {
                    capacity: capacity.map(|(target, ws)| CapacitySignal {
                        target,
                        capacity: cap(&ws),
                    }),
                    dispatch_rate,
                    keep_while_dispatching: guard,
                    ..Default::default()
                },
                busy,
            )
        })
}

proptest! {
    /// While slots are in use, no trigger recommends fewer replicas than there are busy hosts
    /// (a busy slot cannot move to another pod), and the decision never scales below that
    /// floor (nor to zero), whatever the heartbeats.
    #[test]
    fn prop_never_below_the_busy_hosts(
        ticks in prop::collection::vec(arb_signals(), 1..30),
        current in 0u32..8,
        max in 1u32..12,
    ) {
        let mut sim = Sim::new(config(0, max), current.min(max));
        for (i, (backlog, sig, busy)) in ticks.into_iter().enumerate() {
            let floor = sig.capacity.as_ref().map_or(0, |c| c.capacity.busy_floor);
            prop_assert_eq!(floor, busy);
            let used = sig.capacity.as_ref().is_some_and(|c| c.capacity.used > 0);
            let before = sim.current;
            let reading = signal_reading(backlog, sig);
            let rec = recommend(&reading, before, 0.1, 0.1);
            prop_assert!(rec.replicas.unwrap() >= floor);
            prop_assert_eq!(rec.active || !used, true);
            let d = sim.tick_readings(i as u64 * 15, &[reading]);
            if before >= floor.min(max) {
                prop_assert!(d.desired >= floor.min(max), "{:#?}", d.steps);
            }
            if used {
                prop_assert!(d.desired >= 1, "{:#?}", d.steps);
            }
        }
    }

    /// With the guard on, a queue whose tasks are dispatched is never scaled to zero.
    #[test]
    fn prop_never_zero_while_dispatching(
        ticks in prop::collection::vec(arb_signals(), 1..30),
        current in 0u32..5,
    ) {
        let mut sim = Sim::new(config(0, 10), current);
        for (i, (backlog, sig, _)) in ticks.into_iter().enumerate() {
            let flowing = sig.keep_while_dispatching && sig.dispatch_rate > 0.0;
            let d = sim.tick_readings(i as u64 * 15, &[signal_reading(backlog, sig)]);
            if flowing {
                prop_assert!(d.desired >= 1, "{:#?}", d.steps);
            }
        }
    }

    /// With the capacity signal and the guard off, the new inputs change nothing: the
    /// decisions equal those of the backlog alone, tick for tick.
    #[test]
    fn prop_signals_off_change_nothing(
        ticks in prop::collection::vec(arb_signals(), 1..30),
        current in 0u32..8,
    ) {
        let mut with = Sim::new(config(0, 10), current);
        let mut without = Sim::new(config(0, 10), current);
        for (i, (backlog, mut sig, _)) in ticks.into_iter().enumerate() {
            sig.capacity = None;
            sig.keep_while_dispatching = false;
            let t = i as u64 * 15;
            let a = with.tick_readings(t, &[signal_reading(backlog, sig)]);
            let b = without.tick_readings(t, &[signal_reading(backlog, Signals::default())]);
            prop_assert_eq!(a, b);
        }
    }

    /// Stale and shutting-down workers are ignored: adding them changes no decision.
    #[test]
    fn prop_stale_workers_change_nothing(
        live in prop::collection::vec(arb_worker(), 0..6),
        stale in prop::collection::vec(arb_worker(), 1..6),
        backlog in 0u64..30,
        current in 0u32..6,
    ) {
        let live: Vec<_> = live.into_iter().filter(|w| w.running && now_wall().duration_since(w.heartbeat_at.unwrap()).unwrap() <= Duration::from_secs(180)).collect();
        let mut all = live.clone();
        for (i, mut w) in stale.into_iter().enumerate() {
            if i % 2 == 0 {
                w.heartbeat_at = Some(now_wall() - Duration::from_secs(181));
            } else {
                w.running = false;
            }
            all.push(w);
        }
        let a = recommend(&with_capacity(backlog, 0.7, cap(&live)), current, 0.1, 0.1);
        let b = recommend(&with_capacity(backlog, 0.7, cap(&all)), current, 0.1, 0.1);
        prop_assert_eq!(a, b);
    }
}
