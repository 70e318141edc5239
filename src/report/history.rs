//! What the status page charts for a scaler: the last hour of each trigger's backlog (and
//! slot utilization where the capacity signal is on), the current and desired replicas as
//! steps, and the scale events. Recorded by the scaler's report step; pure and bounded.
//!
//! Memory is the constraint (10,000 scalers, 64 MiB): the series are time buckets whose width
//! doubles as the history grows (1 s, 2 s, … 32 s), so a young scaler is charted in detail
//! and an hour fits in [`MAX_POINTS`] buckets at 32 s. A bucket is a 2-byte value (the top half
//! of an `f32`) with its time implied by its slot: 240 bytes per trigger. The replicas change
//! rarely, so they are kept as their change points, and the scale events as a short list;
//! both are bounded by [`MAX_POINTS`] and the hour too.

use crate::decide::Rule;

/// Points per series at most (the chart is about 500 px wide).
pub const MAX_POINTS: usize = 120;
/// How far back the chart looks, in seconds.
pub const WINDOW_SECS: u32 = 3600;
/// Buckets are `2^level` seconds wide. At the widest, 32 s, 120 buckets span 64 minutes, so
/// the hour always fits.
const MAX_LEVEL: u8 = 5;

/// A bucket without a sample.
const EMPTY: u16 = u16::MAX;
/// A bucket whose reads failed: the line breaks there.
const GAP: u16 = u16::MAX - 1;
/// The same for utilization (a byte: half percents).
const U_EMPTY: u8 = u8::MAX;
const U_GAP: u8 = u8::MAX - 1;

/// A scaler's recent history. Times are seconds since the agent started (its polling grid's
/// epoch), which fit in a `u32` for 136 years.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Buckets are `2^level` s wide.
    level: u8,
    /// Buckets held: `newest + 1 - len ..= newest`, bucket `b` in slot `b % MAX_POINTS`.
    len: u8,
    newest: u32,
    /// When the newest sample was taken.
    last_at: u32,
    /// The scaler's pollingInterval in seconds: the page refreshes at the shortest shown.
    interval_secs: u32,
    /// Per trigger, `MAX_POINTS` buckets of backlog ([`encode`]d).
    backlog: Box<[u16]>,
    /// Per trigger, `MAX_POINTS` buckets of slot utilization in half percents; empty when no
    /// trigger has the capacity signal on.
    utilization: Box<[u8]>,
    /// The replica counts at each change, oldest first; the first may be older than the hour
    /// (it is the count at the chart's left edge).
    replicas: Vec<Replicas>,
    /// Scale operations, oldest first.
    events: Vec<ScaleEvent>,
}

/// The replica counts from `at` on (saturated at `u16::MAX`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Replicas {
    pub at: u32,
    pub current: u16,
    pub desired: u16,
}

/// One scale operation and the rule that decided it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScaleEvent {
    pub at: u32,
    pub from: u16,
    pub to: u16,
    pub rule: Rule,
}

/// One tick's report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sample {
    pub at: u32,
    /// Per trigger; `None` when its read failed.
    pub backlog: Vec<Option<f64>>,
    /// Per trigger, empty when no trigger has the capacity signal on; `None` when unknown.
    pub utilization: Vec<Option<f64>>,
    pub current: u32,
    pub desired: u32,
    /// A scale operation this tick: from, to, and the deciding rule.
    pub scaled: Option<(u32, u32, Rule)>,
    pub interval_secs: u32,
}

/// A point of a series; `value` is `None` where the reads failed (a break in the line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: u32,
    pub value: Option<f64>,
}

/// The backlog as the top half of an `f32` (bfloat16), rounded to nearest: exact up to 256,
/// and within 0.4 % above, which a chart cannot show anyway. Never a sentinel.
pub fn encode(v: f64) -> u16 {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 } as f32;
    let bits = v.to_bits();
    let rounded = bits.saturating_add(0x7FFF + ((bits >> 16) & 1));
    // 0x7F7F is the largest finite value: the sentinels stay out of reach.
    ((rounded >> 16) as u16).min(0x7F7F)
}

pub fn decode(h: u16) -> f64 {
    f32::from_bits((h as u32) << 16) as f64
}

fn encode_utilization(u: f64) -> u8 {
    if u.is_finite() {
        (u.max(0.0) * 200.0).round().min(f64::from(U_GAP - 1)) as u8
    } else {
        0
    }
}

fn saturate(n: u32) -> u16 {
    n.min(u32::from(u16::MAX)) as u16
}

/// A bucket's merged value: the larger of two samples (a peak must not vanish by being
/// averaged away), any sample over a failure, and anything over no sample.
fn merge(slot: &mut u16, v: u16) {
    *slot = match (*slot, v) {
        (old, EMPTY) => old,
        (EMPTY, new) | (GAP, new) => new,
        (old, GAP) => old,
        // Non-negative floats order as their bits do.
        (old, new) => old.max(new),
    };
}

fn merge_u8(slot: &mut u8, v: u8) {
    *slot = match (*slot, v) {
        (old, U_EMPTY) => old,
        (U_EMPTY, new) | (U_GAP, new) => new,
        (old, U_GAP) => old,
        (old, new) => old.max(new),
    };
}

/// The buckets of one series, in place: clear, merge into, and halve the resolution of.
trait Buckets {
    const EMPTY: Self;
    fn merge_into(slot: &mut Self, v: Self);
}

impl Buckets for u16 {
    const EMPTY: u16 = EMPTY;
    fn merge_into(slot: &mut u16, v: u16) {
        merge(slot, v)
    }
}

impl Buckets for u8 {
    const EMPTY: u8 = U_EMPTY;
    fn merge_into(slot: &mut u8, v: u8) {
        merge_u8(slot, v)
    }
}

/// Every series of `all` (chunks of `MAX_POINTS`) from buckets `oldest..=newest` to buckets
/// half as many, twice as wide.
fn halve<T: Buckets + Copy>(all: &mut [T], oldest: u32, newest: u32) {
    for series in all.chunks_exact_mut(MAX_POINTS) {
        let mut old = [T::EMPTY; MAX_POINTS];
        old.copy_from_slice(series);
        series.fill(T::EMPTY);
        for b in oldest..=newest {
            let v = old[b as usize % MAX_POINTS];
            T::merge_into(&mut series[(b >> 1) as usize % MAX_POINTS], v);
        }
    }
}

fn clear<T: Buckets + Copy>(all: &mut [T], bucket: u32) {
    for series in all.chunks_exact_mut(MAX_POINTS) {
        series[bucket as usize % MAX_POINTS] = T::EMPTY;
    }
}

impl History {
    /// Record one tick.
    pub fn record(&mut self, s: &Sample) {
        self.interval_secs = s.interval_secs;
        let triggers = s.backlog.len();
        let utilization = if s.utilization.is_empty() {
            0
        } else {
            triggers * MAX_POINTS
        };
        if self.backlog.len() != triggers * MAX_POINTS || self.utilization.len() != utilization {
            // Another set of triggers (a spec change): their old series mean nothing now.
            self.backlog = vec![EMPTY; triggers * MAX_POINTS].into_boxed_slice();
            self.utilization = vec![U_EMPTY; utilization].into_boxed_slice();
            self.len = 0;
        }
        self.advance(s.at);
        let slot = self.newest as usize % MAX_POINTS;
        for (i, b) in s.backlog.iter().enumerate() {
            merge(
                &mut self.backlog[i * MAX_POINTS + slot],
                b.map_or(GAP, encode),
            );
        }
        if !self.utilization.is_empty() {
            for (i, u) in s.utilization.iter().take(triggers).enumerate() {
                merge_u8(
                    &mut self.utilization[i * MAX_POINTS + slot],
                    u.map_or(U_GAP, encode_utilization),
                );
            }
        }
        self.last_at = self.last_at.max(s.at);
        self.record_replicas(s.at, saturate(s.current), saturate(s.desired));
        if let Some((from, to, rule)) = s.scaled {
            self.events.push(ScaleEvent {
                at: s.at,
                from: saturate(from),
                to: saturate(to),
                rule,
            });
        }
        self.trim(s.at);
    }

    /// Make the bucket of `at` the newest: drop what fell out of the hour, and widen the
    /// buckets while the rest would not fit.
    fn advance(&mut self, at: u32) {
        if self.len == 0 {
            self.start(at);
            return;
        }
        loop {
            let b = at >> self.level;
            if b <= self.newest {
                // The same bucket (the clock is monotonic; an earlier one cannot happen).
                return;
            }
            self.drop_before(at.saturating_sub(WINDOW_SECS));
            if self.len == 0 {
                self.start(at);
                return;
            }
            let oldest = self.newest + 1 - u32::from(self.len);
            if b - oldest >= MAX_POINTS as u32 && self.level < MAX_LEVEL {
                halve(&mut self.backlog, oldest, self.newest);
                halve(&mut self.utilization, oldest, self.newest);
                self.level += 1;
                self.newest >>= 1;
                self.len = (self.newest - (oldest >> 1) + 1) as u8;
                continue;
            }
            // Clear the buckets between (at most a full ring) and move on.
            for k in 0..(b - self.newest).min(MAX_POINTS as u32) {
                clear(&mut self.backlog, b - k);
                clear(&mut self.utilization, b - k);
            }
            let len = u32::from(self.len) + (b - self.newest);
            self.len = len.min(MAX_POINTS as u32) as u8;
            self.newest = b;
            return;
        }
    }

    /// An empty history starts over at the finest resolution.
    fn start(&mut self, at: u32) {
        self.backlog.fill(EMPTY);
        self.utilization.fill(U_EMPTY);
        self.level = 0;
        self.newest = at;
        self.len = 1;
    }

    /// Drop the buckets that end before `cut`.
    fn drop_before(&mut self, cut: u32) {
        while self.len > 0 {
            let oldest = self.newest + 1 - u32::from(self.len);
            if (u64::from(oldest) + 1) << self.level > u64::from(cut) {
                return;
            }
            clear(&mut self.backlog, oldest);
            clear(&mut self.utilization, oldest);
            self.len -= 1;
        }
    }

    /// A change of either count is a step. Several changes within one bucket keep the last
    /// (the resolution of the series), so the steps are bounded like the buckets.
    fn record_replicas(&mut self, at: u32, current: u16, desired: u16) {
        let next = Replicas {
            at,
            current,
            desired,
        };
        let n = self.replicas.len();
        let Some(last) = self.replicas.last_mut() else {
            self.replicas.push(next);
            return;
        };
        if (last.current, last.desired) == (current, desired) {
            return;
        }
        if n >= 2 && last.at >> self.level == at >> self.level {
            *last = next;
            let before = self.replicas[n - 2];
            if (before.current, before.desired) == (current, desired) {
                self.replicas.pop();
            }
        } else {
            self.replicas.push(next);
        }
    }

    /// Forget what is older than the hour (keeping the count at its start) and more than
    /// `MAX_POINTS` of anything.
    fn trim(&mut self, at: u32) {
        let cut = at.saturating_sub(WINDOW_SECS);
        let old_steps = self
            .replicas
            .iter()
            .skip(1)
            .take_while(|r| r.at <= cut)
            .count();
        let excess = self.replicas.len().saturating_sub(MAX_POINTS);
        self.replicas.drain(..old_steps.max(excess));
        let old_events = self.events.iter().take_while(|e| e.at < cut).count();
        let excess = self.events.len().saturating_sub(MAX_POINTS);
        self.events.drain(..old_events.max(excess));
    }

    /// Triggers charted (as of the last sample).
    pub fn triggers(&self) -> usize {
        self.backlog.len() / MAX_POINTS
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn interval_secs(&self) -> u32 {
        self.interval_secs
    }

    pub fn last_at(&self) -> u32 {
        self.last_at
    }

    /// When the oldest kept sample (of any series) was taken, about.
    pub fn first_at(&self) -> Option<u32> {
        let buckets = (self.len > 0)
            .then(|| (self.newest + 1 - u32::from(self.len)) << self.level)
            .map(|t| t.min(self.last_at));
        let steps = self.replicas.first().map(|r| r.at);
        match (buckets, steps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The time a bucket's point is drawn at: its middle, or the newest sample's time for
    /// the newest bucket.
    fn bucket_time(&self, b: u32) -> u32 {
        if b == self.newest {
            return self.last_at;
        }
        let width = 1u32 << self.level;
        (b << self.level).saturating_add(width / 2)
    }

    /// The buckets held, oldest first, with their times, from `since` on.
    fn buckets(&self, since: u32) -> impl Iterator<Item = (usize, u32)> + '_ {
        let oldest = (self.newest + 1).saturating_sub(u32::from(self.len));
        (oldest..=self.newest)
            .filter(move |_| self.len > 0)
            .map(|b| (b as usize % MAX_POINTS, self.bucket_time(b)))
            .filter(move |(_, at)| *at >= since)
    }

    /// A trigger's backlog points from `since` on (at most [`MAX_POINTS`]).
    pub fn backlog(&self, trigger: usize, since: u32) -> Vec<Point> {
        let Some(series) = self
            .backlog
            .get(trigger * MAX_POINTS..(trigger + 1) * MAX_POINTS)
        else {
            return Vec::new();
        };
        self.buckets(since)
            .filter_map(|(slot, at)| match series[slot] {
                EMPTY => None,
                GAP => Some(Point { at, value: None }),
                v => Some(Point {
                    at,
                    value: Some(decode(v)),
                }),
            })
            .collect()
    }

    /// A trigger's slot utilization (0–1) from `since` on; empty where the signal is off or
    /// never read.
    pub fn utilization(&self, trigger: usize, since: u32) -> Vec<Point> {
        let Some(series) = self
            .utilization
            .get(trigger * MAX_POINTS..(trigger + 1) * MAX_POINTS)
        else {
            return Vec::new();
        };
        let points: Vec<Point> = self
            .buckets(since)
            .filter_map(|(slot, at)| match series[slot] {
                U_EMPTY => None,
                U_GAP => Some(Point { at, value: None }),
                v => Some(Point {
                    at,
                    value: Some(f64::from(v) / 200.0),
                }),
            })
            .collect();
        if points.iter().all(|p| p.value.is_none()) {
            return Vec::new();
        }
        points
    }

    /// The replica steps from `since` on; the first is the count at `since` (moved to it).
    pub fn replicas(&self, since: u32) -> Vec<Replicas> {
        let start = self.replicas.iter().rposition(|r| r.at <= since);
        let mut out: Vec<Replicas> = self.replicas[start.unwrap_or(0)..].to_vec();
        if let (Some(_), Some(first)) = (start, out.first_mut()) {
            first.at = since;
        }
        out
    }

    /// The scale events from `since` on.
    pub fn events(&self, since: u32) -> impl Iterator<Item = &ScaleEvent> {
        self.events.iter().filter(move |e| e.at >= since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(at: u32, backlog: f64, current: u32, desired: u32) -> Sample {
        Sample {
            at,
            backlog: vec![Some(backlog)],
            current,
            desired,
            interval_secs: 15,
            ..Default::default()
        }
    }

    #[test]
    fn the_encoding_is_exact_for_small_counts_and_close_above() {
        for n in 0..=256u32 {
            assert_eq!(decode(encode(f64::from(n))), f64::from(n));
        }
        for v in [1_000.0, 12_345.0, 1e6, 3.5e9] {
            let back = decode(encode(v));
            assert!((back - v).abs() / v < 0.004, "{v} → {back}");
        }
        for v in [f64::NAN, f64::INFINITY, -3.0, 1e300] {
            let e = encode(v);
            assert!(e != EMPTY && e != GAP, "{v}");
        }
        assert_eq!(decode(encode(-3.0)), 0.0);
    }

    #[test]
    fn a_young_history_keeps_every_sample_at_one_second() {
        let mut h = History::default();
        for t in 0..20 {
            h.record(&sample(t, f64::from(t), 0, 0));
        }
        let points = h.backlog(0, 0);
        assert_eq!(points.len(), 20);
        assert_eq!(
            points[7],
            Point {
                at: 7,
                value: Some(7.0)
            }
        );
        assert_eq!(h.first_at(), Some(0));
    }

    #[test]
    fn an_hour_at_fifteen_seconds_is_at_most_120_points_covering_the_hour() {
        let mut h = History::default();
        let ticks = 2 * 3600 / 15;
        for i in 0..ticks {
            h.record(&sample(i * 15, f64::from(i % 7), 1, 1));
        }
        let now = (ticks - 1) * 15;
        let points = h.backlog(0, now - WINDOW_SECS);
        assert!(points.len() <= MAX_POINTS, "{}", points.len());
        assert!(points.len() >= 100, "{}", points.len());
        assert!(points.windows(2).all(|w| w[0].at < w[1].at));
        // The oldest point is from the start of the hour, the newest is the last sample.
        assert!(points[0].at <= now - WINDOW_SECS + 64, "{:?}", points[0]);
        assert_eq!(points.last().map(|p| p.at), Some(now));
        // Two samples per 32 s bucket, the larger kept: peaks survive.
        assert!(points.iter().all(|p| p.value.is_some_and(|v| v <= 6.0)));
        assert!(points.iter().filter(|p| p.value == Some(6.0)).count() >= 10);
    }

    #[test]
    fn widening_merges_pairs_and_keeps_the_peak() {
        let mut h = History::default();
        for t in 0..120 {
            h.record(&sample(t, if t == 41 { 99.0 } else { 1.0 }, 0, 0));
        }
        assert_eq!(h.backlog(0, 0).len(), 120);
        // The 121st second does not fit at 1 s: buckets become 2 s wide.
        h.record(&sample(120, 1.0, 0, 0));
        let points = h.backlog(0, 0);
        assert_eq!(points.len(), 61);
        assert_eq!(
            points.iter().filter(|p| p.value == Some(99.0)).count(),
            1,
            "{points:?}"
        );
        assert_eq!(points[20].at, 41, "bucket [40, 42) is drawn at its middle");
    }

    #[test]
    fn failed_reads_break_the_line_and_a_sample_fills_the_bucket() {
        let mut h = History::default();
        h.record(&sample(0, 3.0, 0, 0));
        let mut failed = sample(1, 0.0, 0, 0);
        failed.backlog = vec![None];
        h.record(&failed);
        h.record(&sample(2, 4.0, 0, 0));
        let values: Vec<_> = h.backlog(0, 0).iter().map(|p| p.value).collect();
        assert_eq!(values, [Some(3.0), None, Some(4.0)]);
        // A failure and a sample in one bucket: the sample.
        h.record(&failed.clone_at(2));
        assert_eq!(h.backlog(0, 0)[2].value, Some(4.0));
    }

    impl Sample {
        fn clone_at(&self, at: u32) -> Sample {
            Sample { at, ..self.clone() }
        }
    }

    #[test]
    fn what_is_older_than_the_hour_is_dropped() {
        let mut h = History::default();
        h.record(&sample(0, 5.0, 2, 2));
        h.record(&sample(10, 5.0, 2, 3));
        // Idle for two hours (e.g. a standby): the old buckets go, and the count at the start
        // of the hour is the last one known.
        h.record(&sample(7210, 1.0, 3, 3));
        let since = 7210 - WINDOW_SECS;
        assert_eq!(h.backlog(0, since).len(), 1);
        let steps = h.replicas(since);
        assert_eq!(
            steps,
            [
                Replicas {
                    at: since,
                    current: 2,
                    desired: 3
                },
                Replicas {
                    at: 7210,
                    current: 3,
                    desired: 3
                }
            ]
        );
    }

    #[test]
    fn replicas_are_steps_and_scale_events_keep_their_rule() {
        let mut h = History::default();
        h.record(&sample(0, 12.0, 0, 0));
        let mut s = sample(1, 12.0, 3, 3);
        s.scaled = Some((0, 3, Rule::TriggerMax));
        h.record(&s);
        for t in 2..10 {
            h.record(&sample(t, 12.0, 3, 3));
        }
        assert_eq!(h.replicas(0).len(), 2, "{:?}", h.replicas(0));
        let events: Vec<_> = h.events(0).copied().collect();
        assert_eq!(
            events,
            [ScaleEvent {
                at: 1,
                from: 0,
                to: 3,
                rule: Rule::TriggerMax
            }]
        );
    }

    #[test]
    fn another_set_of_triggers_starts_the_series_over() {
        let mut h = History::default();
        h.record(&sample(0, 1.0, 0, 0));
        let mut two = sample(1, 2.0, 0, 0);
        two.backlog.push(Some(7.0));
        two.utilization = vec![None, Some(0.9)];
        h.record(&two);
        assert_eq!(h.triggers(), 2);
        assert_eq!(h.backlog(0, 0).len(), 1);
        assert_eq!(h.backlog(1, 0)[0].value, Some(7.0));
        assert!(h.utilization(0, 0).is_empty(), "never read: not charted");
        assert_eq!(h.utilization(1, 0)[0].value, Some(0.9));
    }

    /// The size the memory budget counts on: one trigger's series and the header.
    #[test]
    fn a_history_is_small() {
        let size = std::mem::size_of::<History>();
        assert!(size <= 96, "History is {size} bytes");
        let mut h = History::default();
        h.record(&sample(0, 1.0, 0, 0));
        assert_eq!(h.backlog.len() * 2, 240);
    }

    proptest! {
        #[test]
        fn every_series_stays_bounded_and_ordered(
            steps in proptest::collection::vec((1u32..200, 0u32..50, 0u32..30, proptest::bool::ANY), 1..600),
        ) {
            let mut h = History::default();
            let mut at = 0u32;
            for (dt, backlog, replicas, scaled) in steps {
                at += dt;
                let mut s = sample(at, f64::from(backlog), replicas, replicas / 2 + 1);
                s.utilization = vec![Some(f64::from(backlog) / 50.0)];
                if scaled {
                    s.scaled = Some((replicas, replicas + 1, Rule::Policy));
                }
                h.record(&s);
                let since = at.saturating_sub(WINDOW_SECS);
                let points = h.backlog(0, since);
                prop_assert!(points.len() <= MAX_POINTS);
                prop_assert!(points.windows(2).all(|w| w[0].at < w[1].at));
                prop_assert!(points.iter().all(|p| p.at >= since && p.at <= at));
                prop_assert_eq!(points.last().map(|p| p.at), Some(at));
                prop_assert!(h.utilization(0, since).len() <= MAX_POINTS);
                prop_assert!(h.replicas.len() <= MAX_POINTS);
                prop_assert!(h.events.len() <= MAX_POINTS);
                prop_assert!(h.events.iter().all(|e| e.at + WINDOW_SECS >= at));
                let r = h.replicas(since);
                prop_assert!(r.windows(2).all(|w| w[0].at <= w[1].at));
                prop_assert_eq!(r.last().map(|r| (r.current, r.desired)), Some((replicas as u16, (replicas / 2 + 1) as u16)));
            }
        }
    }
}
