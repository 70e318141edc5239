//! What a scaler's decision remembers between ticks (the HPA's stabilization windows and
//! scale-event policies, the fallback's failure streaks, the idle streak), each bounded by
//! what the behavior's windows and periods need.

use super::TriggerReading;
use crate::spec::Behavior;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct ScaleEvent {
    pub(super) at: Instant,
    pub(super) change: u32,
}

/// What a scaler remembers between ticks: recent recommendations (stabilization) and scale
/// events (policies, cooldown), each only as far back as the behavior's windows and periods
/// reach. (Every recommendation of the longest allowed window, an hour, was ~6 KB a scaler.)
#[derive(Clone, Debug, Default)]
pub struct History {
    /// For the scale-down window's highest recommendation.
    pub(super) down_highest: Extreme<true>,
    /// The scale-up window and the recent scale events: empty for most scalers most of the
    /// time (the HPA's default scale-up window is zero, and events last a policy's period).
    /// Boxed and absent while empty: 88 bytes less in each waiting scaler (100,000 of them),
    /// which fits its cell in jemalloc's 448-byte class, not 512.
    pub(super) rare: Option<Box<Rare>>,
    pub(super) last_scale: Option<Instant>,
    /// Consecutive failed reads per trigger (fallback).
    /// Empty (most scalers), 24 bytes and no allocation; a failing trigger's streak, 32.
    pub(super) failures: crate::vec_map::VecMap<std::sync::Arc<str>, u32>,
    /// Consecutive reads with every trigger readable and inactive, and since when.
    pub(super) idle_reads: u32,
    pub(super) idle_since: Option<Instant>,
}

/// The parts of a [`History`] that are usually empty.
#[derive(Clone, Debug, Default)]
pub(super) struct Rare {
    /// For the scale-up window's lowest recommendation.
    pub(super) up_lowest: Extreme<false>,
    pub(super) up_events: VecDeque<ScaleEvent>,
    pub(super) down_events: VecDeque<ScaleEvent>,
}

impl Rare {
    fn is_empty(&self) -> bool {
        self.up_lowest.entries.is_empty()
            && self.up_events.is_empty()
            && self.down_events.is_empty()
    }
}

/// A sliding-window extreme (highest when `HIGHEST`, else lowest) over recommendations: only
/// entries that can still be the window's extreme are kept, since a newer entry at least as
/// extreme outlives an older one in any window. A steady recommendation is one entry.
#[derive(Clone, Debug, Default)]
pub(super) struct Extreme<const HIGHEST: bool> {
    pub(super) entries: VecDeque<(Instant, u32)>,
}

impl<const HIGHEST: bool> Extreme<HIGHEST> {
    pub(super) fn push(&mut self, now: Instant, replicas: u32, window: Duration) {
        while self
            .entries
            .front()
            .is_some_and(|&(at, _)| !History::within(now, at, window))
        {
            self.entries.pop_front();
        }
        let dominated = |&(_, r): &(Instant, u32)| {
            if HIGHEST {
                r <= replicas
            } else {
                r >= replicas
            }
        };
        while self.entries.back().is_some_and(dominated) {
            self.entries.pop_back();
        }
        // A zero window holds nothing, not even the newest entry.
        if !window.is_zero() {
            push_snug(&mut self.entries, (now, replicas));
        }
    }

    /// The extreme of the entries within `window` of `now`.
    pub(super) fn within(&self, now: Instant, window: Duration) -> Option<u32> {
        let values = self
            .entries
            .iter()
            .filter(|&&(at, _)| History::within(now, at, window))
            .map(|&(_, r)| r);
        if HIGHEST { values.max() } else { values.min() }
    }
}

/// A deque's first entry allocates room for one, not four: a steady scaler keeps one entry in
/// its scale-down window for its whole life (24 bytes, not 96, times 100,000 scalers).
fn push_snug<T>(deque: &mut VecDeque<T>, item: T) {
    if deque.capacity() == 0 {
        deque.reserve_exact(1);
    }
    deque.push_back(item);
}

impl History {
    pub fn record_recommendation(&mut self, now: Instant, replicas: u32, behavior: &Behavior) {
        // A zero window keeps nothing: no box for it.
        if !behavior.up.stabilization.is_zero() || self.rare.is_some() {
            self.rare.get_or_insert_default().up_lowest.push(
                now,
                replicas,
                behavior.up.stabilization,
            );
        }
        self.down_highest
            .push(now, replicas, behavior.down.stabilization);
        self.trim_events(now, behavior);
    }

    pub fn record_scale(&mut self, now: Instant, from: u32, to: u32, behavior: &Behavior) {
        if to > from {
            let change = to - from;
            let rare = self.rare.get_or_insert_default();
            push_snug(&mut rare.up_events, ScaleEvent { at: now, change });
        } else if to < from {
            let change = from - to;
            let rare = self.rare.get_or_insert_default();
            push_snug(&mut rare.down_events, ScaleEvent { at: now, change });
        }
        self.last_scale = Some(now);
        self.trim_events(now, behavior);
    }

    /// Scale events count only within a policy's period.
    pub(super) fn trim_events(&mut self, now: Instant, behavior: &Behavior) {
        let Some(rare) = &mut self.rare else {
            return;
        };
        let longest = [&behavior.up, &behavior.down]
            .iter()
            .flat_map(|rules| rules.policies.iter().map(|p| p.period))
            .max()
            .unwrap_or_default();
        for events in [&mut rare.up_events, &mut rare.down_events] {
            while events
                .front()
                .is_some_and(|e| !Self::within(now, e.at, longest))
            {
                events.pop_front();
            }
        }
        if rare.is_empty() {
            self.rare = None;
        }
    }

    /// Entries remembered for stabilization and policies (memory; tests).
    pub fn remembered(&self) -> usize {
        self.down_highest.entries.len()
            + self.rare.as_ref().map_or(0, |r| {
                r.up_lowest.entries.len() + r.up_events.len() + r.down_events.len()
            })
    }

    /// The lowest recommendation in the scale-up window, if any.
    pub(super) fn up_lowest(&self, now: Instant, window: Duration) -> Option<u32> {
        self.rare.as_ref()?.up_lowest.within(now, window)
    }

    pub fn last_scale(&self) -> Option<Instant> {
        self.last_scale
    }

    /// Remember this tick's reads: failure streaks per trigger, and the idle streak.
    pub fn record_readings(&mut self, now: Instant, readings: &[TriggerReading], active: bool) {
        for r in readings {
            if r.backlog.is_err() {
                *self
                    .failures
                    .get_or_insert_with(&*r.name, || (r.name.clone(), 0)) += 1;
            } else {
                self.failures.remove(&*r.name);
            }
        }
        self.failures
            .retain(|name, _| readings.iter().any(|r| &r.name == name));
        if Self::idle_tick(readings, active) {
            self.idle_reads += 1;
            self.idle_since.get_or_insert(now);
        } else {
            self.idle_reads = 0;
            self.idle_since = None;
        }
    }

    pub(super) fn idle_tick(readings: &[TriggerReading], active: bool) -> bool {
        !active && readings.iter().all(|r| r.backlog.is_ok())
    }

    /// Consecutive failed reads of a trigger before this tick.
    pub fn failures(&self, trigger: &str) -> u32 {
        self.failures.get(trigger).copied().unwrap_or(0)
    }

    pub(super) fn within(now: Instant, at: Instant, window: Duration) -> bool {
        now.saturating_duration_since(at) < window
    }

    /// The replicas added (`up`) or removed by the scale events within `period` of `now`.
    pub(super) fn change_in_period(&self, up: bool, now: Instant, period: Duration) -> u32 {
        let Some(rare) = &self.rare else {
            return 0;
        };
        let events = if up {
            &rare.up_events
        } else {
            &rare.down_events
        };
        events
            .iter()
            .filter(|e| Self::within(now, e.at, period))
            .map(|e| e.change)
            .sum()
    }
}
