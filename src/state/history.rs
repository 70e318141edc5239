//! What the status page charts for a scaler: the last hour of each trigger's backlog (and
//! slot utilization where the capacity signal is on), the current and desired replicas as
//! steps, and the scale events. Recorded by the scaler's report step; pure and bounded.
//!
//! Memory is the constraint (10,000 scalers in 64 MiB, docs/performance.md):
//! - a series is a ring of time buckets whose width doubles as the history grows (1 s, 2 s,
//!   …), so a young scaler is charted in detail and the hour always fits in the ring; a bucket
//!   is 2 bytes (the top half of an `f32`) and its time is implied by its slot;
//! - the rings of all scalers share a global budget of [`BUDGET_POINTS`]: each series gets at
//!   most [`MAX_POINTS`], and fewer (down to [`MIN_POINTS`]) when many scalers share it, fixed
//!   when the scaler's history starts ([`points_per_series`]);
//! - the replica counts change rarely, so they are kept as their change points, which also
//!   carry the scale events; at most [`MAX_POINTS`] of them, and only the hour's.

use crate::decide::Rule;

/// Points per series at most (the chart is about 500 px wide).
pub const MAX_POINTS: usize = 120;
/// Points per series at least, however many scalers share the budget.
pub const MIN_POINTS: usize = 30;
/// Points of all scalers' series together (2 bytes each): 120 per series up to 5,000
/// single-trigger scalers, 60 at 10,000.
pub const BUDGET_POINTS: usize = 600_000;
/// How far back the chart looks, in seconds.
pub const WINDOW_SECS: u32 = 3600;

/// A bucket without a sample.
const EMPTY: u16 = u16::MAX;
/// A bucket whose reads failed: the line breaks there.
const GAP: u16 = u16::MAX - 1;

/// The points each series of a scaler with `series` series gets when `scalers` scalers
/// share the budget.
pub fn points_per_series(scalers: usize, series: usize) -> usize {
    (BUDGET_POINTS / scalers.max(1) / series.max(1)).clamp(MIN_POINTS, MAX_POINTS)
}

/// A scaler's recent history. Times are seconds since the agent started (its polling grid's
/// epoch), which fit in a `u32` for 136 years. 48 bytes, plus its rings and steps.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    /// Buckets are `2^level` s wide.
    level: u8,
    /// Buckets held: `newest + 1 - len ..= newest`, bucket `b` in slot `b % points`.
    len: u8,
    /// Buckets per series.
    points: u8,
    triggers: u8,
    newest: u32,
    /// When the newest sample was taken.
    last_at: u32,
    /// The scaler's pollingInterval in seconds: the page refreshes at the shortest shown.
    interval_secs: u32,
    /// `points` buckets ([`encode`]d) per series: each trigger's backlog, then each trigger's
    /// slot utilization when the capacity signal is on.
    series: Box<[u16]>,
    /// The replica counts at each change, oldest first; the first may be older than the hour
    /// (it is the count at the chart's left edge). An exact-size slice: changes are rare, and
    /// a `Vec`'s spare capacity times 10,000 scalers is not.
    steps: Box<[Step]>,
}

/// A change of the replica counts, and the scale operation that made it, if one did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Step {
    at: u32,
    current: u16,
    desired: u16,
    /// The count before the scale operation, and the rule that decided it.
    from: u16,
    rule: Option<Rule>,
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
#[derive(Clone, Debug, PartialEq)]
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
    /// Points per series, should the series start now ([`points_per_series`]).
    pub points: usize,
}

impl Default for Sample {
    fn default() -> Self {
        Sample {
            at: 0,
            backlog: Vec::new(),
            utilization: Vec::new(),
            current: 0,
            desired: 0,
            scaled: None,
            interval_secs: 0,
            points: MAX_POINTS,
        }
    }
}

/// A point of a series; `value` is `None` where the reads failed (a break in the line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub at: u32,
    pub value: Option<f64>,
}

/// A value as the top half of an `f32` (bfloat16), rounded to nearest: exact up to 256, and
/// within 0.4 % above, which a chart cannot show anyway. Never a sentinel.
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

impl History {
    fn cap(&self) -> u32 {
        u32::from(self.points).max(1)
    }

    /// Record one tick.
    pub fn record(&mut self, s: &Sample) {
        self.interval_secs = s.interval_secs;
        let triggers = s.backlog.len().min(usize::from(u8::MAX));
        let series = if s.utilization.is_empty() {
            triggers
        } else {
            2 * triggers
        };
        if self.points == 0
            || usize::from(self.triggers) != triggers
            || self.series.len() != series * usize::from(self.points)
        {
            // Another set of triggers (a spec change), or the first sample: new series.
            self.points = s.points.clamp(MIN_POINTS, MAX_POINTS) as u8;
            self.triggers = triggers as u8;
            self.series = vec![EMPTY; series * usize::from(self.points)].into_boxed_slice();
            self.len = 0;
        }
        self.advance(s.at);
        let slot = (self.newest % self.cap()) as usize;
        let values = s.backlog.iter().take(triggers).chain(
            s.utilization
                .iter()
                .take(if series > triggers { triggers } else { 0 }),
        );
        for (i, v) in values.enumerate() {
            let points = usize::from(self.points);
            merge(&mut self.series[i * points + slot], v.map_or(GAP, encode));
        }
        self.last_at = self.last_at.max(s.at);
        self.record_step(s);
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
            let spans_the_hour = u64::from(self.cap()) << self.level >= u64::from(WINDOW_SECS);
            if b - oldest >= self.cap() && !spans_the_hour {
                self.halve(oldest);
                continue;
            }
            // Clear the buckets between (at most a full ring) and move on.
            for k in 0..(b - self.newest).min(self.cap()) {
                self.clear(b - k);
            }
            let len = u32::from(self.len) + (b - self.newest);
            self.len = len.min(self.cap()) as u8;
            self.newest = b;
            return;
        }
    }

    /// An empty history starts over at the finest resolution.
    fn start(&mut self, at: u32) {
        self.series.fill(EMPTY);
        self.level = 0;
        self.newest = at;
        self.len = 1;
    }

    fn clear(&mut self, bucket: u32) {
        let points = usize::from(self.points);
        let slot = (bucket % self.cap()) as usize;
        for series in self.series.chunks_exact_mut(points) {
            series[slot] = EMPTY;
        }
    }

    /// Buckets `oldest..=newest` to half as many, twice as wide.
    fn halve(&mut self, oldest: u32) {
        let (cap, newest) = (self.cap(), self.newest);
        let mut old = [EMPTY; MAX_POINTS];
        for series in self.series.chunks_exact_mut(cap as usize) {
            old[..series.len()].copy_from_slice(series);
            series.fill(EMPTY);
            for b in oldest..=newest {
                let v = old[(b % cap) as usize];
                merge(&mut series[((b >> 1) % cap) as usize], v);
            }
        }
        self.level += 1;
        self.newest >>= 1;
        self.len = (self.newest - (oldest >> 1) + 1) as u8;
    }

    /// Drop the buckets that end before `cut`.
    fn drop_before(&mut self, cut: u32) {
        while self.len > 0 {
            let oldest = self.newest + 1 - u32::from(self.len);
            if (u64::from(oldest) + 1) << self.level > u64::from(cut) {
                return;
            }
            self.clear(oldest);
            self.len -= 1;
        }
    }

    /// A change of either count is a step, and a scale operation always is one. Changes
    /// without one within one bucket keep the last (the resolution of the series).
    fn record_step(&mut self, s: &Sample) {
        let (from, rule) = match s.scaled {
            Some((from, _, rule)) => (saturate(from), Some(rule)),
            None => (0, None),
        };
        let next = Step {
            at: s.at,
            current: saturate(s.current),
            desired: saturate(s.desired),
            from,
            rule,
        };
        let mut steps = std::mem::take(&mut self.steps).into_vec();
        let counts = |s: &Step| (s.current, s.desired);
        match steps.as_slice() {
            [.., last] if rule.is_none() && counts(last) == counts(&next) => {}
            [.., before, last]
                if rule.is_none()
                    && last.rule.is_none()
                    && last.at >> self.level == s.at >> self.level =>
            {
                let back_to_before = counts(before) == counts(&next);
                steps.pop();
                if !back_to_before {
                    steps.push(next);
                }
            }
            _ => steps.push(next),
        }
        self.steps = steps.into_boxed_slice();
    }

    /// Forget the steps older than the hour (keeping the count at its start) and beyond
    /// `MAX_POINTS`.
    fn trim(&mut self, at: u32) {
        let cut = at.saturating_sub(WINDOW_SECS);
        let old = self
            .steps
            .iter()
            .skip(1)
            .take_while(|r| r.at <= cut)
            .count();
        let excess = self.steps.len().saturating_sub(MAX_POINTS);
        let drop = old.max(excess);
        if drop > 0 {
            self.steps = self.steps[drop..].into();
        }
    }

    /// Triggers charted (as of the last sample).
    pub fn triggers(&self) -> usize {
        usize::from(self.triggers)
    }

    /// Buckets per series.
    pub fn points(&self) -> usize {
        usize::from(self.points)
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
        let steps = self.steps.first().map(|r| r.at);
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

    /// Series `i`'s points from `since` on (at most its bucket count).
    fn points_of(&self, i: usize, since: u32) -> Vec<Point> {
        let points = usize::from(self.points);
        let Some(series) = self.series.get(i * points..(i + 1) * points) else {
            return Vec::new();
        };
        if self.len == 0 {
            return Vec::new();
        }
        let oldest = self.newest + 1 - u32::from(self.len);
        (oldest..=self.newest)
            .map(|b| (series[(b % self.cap()) as usize], self.bucket_time(b)))
            .filter(|(_, at)| *at >= since)
            .filter_map(|(v, at)| match v {
                EMPTY => None,
                GAP => Some(Point { at, value: None }),
                v => Some(Point {
                    at,
                    value: Some(decode(v)),
                }),
            })
            .collect()
    }

    /// A trigger's backlog points from `since` on.
    pub fn backlog(&self, trigger: usize, since: u32) -> Vec<Point> {
        if trigger >= self.triggers() {
            return Vec::new();
        }
        self.points_of(trigger, since)
    }

    /// A trigger's slot utilization (0–1) from `since` on; empty where the signal is off or
    /// never read.
    pub fn utilization(&self, trigger: usize, since: u32) -> Vec<Point> {
        if trigger >= self.triggers() {
            return Vec::new();
        }
        let points = self.points_of(self.triggers() + trigger, since);
        if points.iter().all(|p| p.value.is_none()) {
            return Vec::new();
        }
        points
    }

    /// The replica steps from `since` on; the first is the count at `since` (moved to it).
    pub fn replicas(&self, since: u32) -> Vec<Replicas> {
        let start = self.steps.iter().rposition(|r| r.at <= since);
        let mut out: Vec<Replicas> = self.steps[start.unwrap_or(0)..]
            .iter()
            .map(|s| Replicas {
                at: s.at,
                current: s.current,
                desired: s.desired,
            })
            .collect();
        if let (Some(_), Some(first)) = (start, out.first_mut()) {
            first.at = since;
        }
        out
    }

    /// The scale events from `since` on.
    pub fn events(&self, since: u32) -> impl Iterator<Item = ScaleEvent> + '_ {
        self.steps
            .iter()
            .filter(move |s| s.at >= since)
            .filter_map(|s| {
                s.rule.map(|rule| ScaleEvent {
                    at: s.at,
                    from: s.from,
                    to: s.current,
                    rule,
                })
            })
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
        let events: Vec<_> = h.events(0).collect();
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
        let u = h.utilization(1, 0)[0].value.unwrap();
        assert!((u - 0.9).abs() < 0.005, "{u}");
    }

    /// The size the memory budget counts on: the header, and one trigger's series.
    #[test]
    fn a_history_is_small() {
        let size = std::mem::size_of::<History>();
        assert!(size <= 48, "History is {size} bytes");
        assert_eq!(std::mem::size_of::<Step>(), 12);
        let mut h = History::default();
        h.record(&sample(0, 1.0, 0, 0));
        assert_eq!(h.series.len() * 2, 240);
        assert_eq!(h.steps.len(), 1);
    }

    #[test]
    fn the_budget_is_shared_by_every_series_within_bounds() {
        assert_eq!(points_per_series(1, 1), MAX_POINTS);
        assert_eq!(points_per_series(5_000, 1), 120);
        assert_eq!(points_per_series(10_000, 1), 60);
        assert_eq!(points_per_series(10_000, 2), 30);
        assert_eq!(points_per_series(1_000_000, 4), MIN_POINTS);
        assert_eq!(points_per_series(0, 0), MAX_POINTS);
    }

    #[test]
    fn fewer_points_still_cover_the_hour() {
        for points in [MIN_POINTS, 60] {
            let mut h = History::default();
            let ticks = 2 * 3600 / 15;
            for i in 0..ticks {
                let mut s = sample(i * 15, 1.0, 1, 1);
                s.points = points;
                h.record(&s);
            }
            let now = (ticks - 1) * 15;
            let got = h.backlog(0, now - WINDOW_SECS);
            assert_eq!(h.points(), points);
            assert!(
                got.len() <= points && got.len() >= points * 3 / 4,
                "{}",
                got.len()
            );
            assert!(
                got[0].at <= now - WINDOW_SECS + 3840 / points as u32,
                "{:?}",
                got[0]
            );
        }
    }

    #[test]
    fn scale_events_are_never_merged_away() {
        let mut h = History::default();
        h.record(&sample(100, 1.0, 1, 1));
        // Two operations in one second, then back: every one is kept.
        for (from, to) in [(1, 2), (2, 3), (3, 1)] {
            let mut s = sample(101, 1.0, to, to);
            s.scaled = Some((from, to, Rule::Policy));
            h.record(&s);
        }
        let events: Vec<(u16, u16)> = h.events(0).map(|e| (e.from, e.to)).collect();
        assert_eq!(events, [(1, 2), (2, 3), (3, 1)]);
        // Changes without an operation within one bucket keep the last.
        let mut h = History::default();
        for t in 0..130 {
            h.record(&sample(t, 1.0, 1, 1));
        }
        h.record(&sample(130, 1.0, 1, 2));
        h.record(&sample(131, 1.0, 1, 3));
        assert_eq!(h.replicas(0).len(), 2, "{:?}", h.replicas(0));
        assert_eq!(h.replicas(0)[1].desired, 3);
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
                prop_assert!(h.steps.len() <= MAX_POINTS);
                prop_assert!(h.events(0).count() <= MAX_POINTS);
                let kept_before = h.steps.iter().filter(|s| s.at + WINDOW_SECS < at).count();
                prop_assert!(kept_before <= 1, "only the count at the window's start");
                let r = h.replicas(since);
                prop_assert!(r.windows(2).all(|w| w[0].at <= w[1].at));
                prop_assert_eq!(r.last().map(|r| (r.current, r.desired)), Some((replicas as u16, (replicas / 2 + 1) as u16)));
            }
        }
    }
}
