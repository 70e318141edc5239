//! Logging a failure that persists, without a flood: the first failure of each kind, then one
//! summary a minute with the count, then one line when it recovers with the outage's length.
//! (A 20 s API server outage once gave 73 WARN/ERROR lines: one per retry.) Metrics still count
//! every failure; this only decides which failures are worth a log line. Pure: the caller
//! passes the clock and writes the line, with its own fields.

use std::borrow::Cow;
use std::time::{Duration, Instant};

/// How often a persisting failure is summarised.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What to log for a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// The first failure of this kind since the last success: log it in full.
    First,
    /// Still failing: `failures` since the outage began, for `lasting`.
    Summary { failures: u64, lasting: Duration },
    /// Nothing to log (debug at most).
    Quiet,
}

/// The outage of one target (the Lease, a scaler's target or trigger, a Temporal connection).
#[derive(Clone, Debug, Default)]
pub struct Outage {
    /// Boxed: most targets never fail, and 10,000 scalers each keep one per cluster.
    state: Option<Box<State>>,
}

#[derive(Clone, Debug)]
struct State {
    since: Instant,
    failures: u64,
    /// Most kinds are static names (an error class): not copied, 100,000 failing scalers over.
    kind: Cow<'static, str>,
    last_line: Instant,
}

/// An outage that ended: how long it lasted and how many failures it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub lasted: Duration,
    pub failures: u64,
}

impl Outage {
    /// A failure of `kind` (an error class, or the message for a target with few distinct
    /// errors) at `now`.
    pub fn failure<K>(&mut self, now: Instant, kind: K) -> Note
    where
        K: AsRef<str> + Into<Cow<'static, str>>,
    {
        match &mut self.state {
            None => {
                self.state = Some(Box::new(State {
                    since: now,
                    failures: 1,
                    kind: kind.into(),
                    last_line: now,
                }));
                Note::First
            }
            Some(s) => {
                s.failures += 1;
                if s.kind != kind.as_ref() {
                    s.kind = kind.into();
                    s.last_line = now;
                    Note::First
                } else if now.saturating_duration_since(s.last_line) >= SUMMARY_EVERY {
                    s.last_line = now;
                    Note::Summary {
                        failures: s.failures,
                        lasting: now.saturating_duration_since(s.since),
                    }
                } else {
                    Note::Quiet
                }
            }
        }
    }

    /// A success at `now`: the outage that just ended, if there was one.
    pub fn success(&mut self, now: Instant) -> Option<Recovered> {
        self.state.take().map(|s| Recovered {
            lasted: now.saturating_duration_since(s.since),
            failures: s.failures,
        })
    }

    /// When the failure going on was first seen, if any.
    pub fn since(&self) -> Option<Instant> {
        self.state.as_ref().map(|s| s.since)
    }

    /// The kind of the failure going on, if any.
    pub fn kind(&self) -> Option<&str> {
        self.state.as_ref().map(|s| s.kind.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_twenty_second_outage_retried_every_two_seconds_is_two_lines() {
        let t0 = Instant::now();
        let mut o = Outage::default();
        let notes: Vec<Note> = (0..10)
            .map(|i| o.failure(t0 + Duration::from_secs(2 * i), "unavailable"))
            .collect();
        assert_eq!(notes[0], Note::First);
        assert!(notes[1..].iter().all(|n| *n == Note::Quiet), "{notes:?}");
        assert_eq!(
            o.success(t0 + Duration::from_secs(20)),
            Some(Recovered {
                lasted: Duration::from_secs(20),
                failures: 10
            })
        );
        assert_eq!(o.success(t0 + Duration::from_secs(22)), None);
    }

    #[test]
    fn a_long_outage_is_summarised_once_a_minute_and_a_new_kind_is_logged() {
        let t0 = Instant::now();
        let mut o = Outage::default();
        let mut lines = 0;
        for s in (0..300).step_by(5) {
            match o.failure(t0 + Duration::from_secs(s), "timeout") {
                Note::First => lines += 1,
                Note::Summary { failures, lasting } => {
                    lines += 1;
                    assert_eq!(failures, s / 5 + 1);
                    assert_eq!(lasting, Duration::from_secs(s));
                }
                Note::Quiet => {}
            }
        }
        // The first, then at 60, 120, 180, 240 s.
        assert_eq!(lines, 5);
        assert_eq!(
            o.failure(t0 + Duration::from_secs(301), "auth"),
            Note::First
        );
        assert_eq!(o.kind(), Some("auth"));
    }

    proptest! {
        /// Over any failure sequence, lines are at most one per kind change plus one a minute.
        #[test]
        fn lines_are_bounded_by_kind_changes_and_minutes(
            steps in prop::collection::vec((1u64..30, 0u8..3, prop::bool::weighted(0.9)), 1..200),
        ) {
            let t0 = Instant::now();
            let mut o = Outage::default();
            let (mut t, mut lines, mut firsts_allowed, mut prev) = (0u64, 0u64, 0u64, None);
            for (dt, kind, fail) in steps {
                t += dt;
                let now = t0 + Duration::from_secs(t);
                if fail {
                    let k = format!("k{kind}");
                    if prev.as_ref() != Some(&k) {
                        firsts_allowed += 1;
                    }
                    prev = Some(k.clone());
                    if o.failure(now, k) != Note::Quiet {
                        lines += 1;
                    }
                } else {
                    prev = None;
                    o.success(now);
                }
            }
            prop_assert!(lines <= firsts_allowed + t / 60 + 1, "{lines} lines");
        }
    }
}
