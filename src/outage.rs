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

/// The outage of one target (the Lease, a scaler's target, a Temporal connection): boxed,
/// as most targets never fail.
#[derive(Clone, Debug, Default)]
pub struct Outage {
    state: Option<Box<Ongoing<Cow<'static, str>>>>,
}

/// A failure going on, inline: for a holder that keeps many of them, each with a kind that
/// is a small value (a scaler's failing triggers: 100,000 at once when a server stalls, so one
/// allocation each, not three). [`Outage`] is one of these, boxed.
#[derive(Clone, Debug)]
pub struct Ongoing<K> {
    since: Instant,
    last_line: Instant,
    failures: u64,
    kind: K,
}

/// An outage that ended: how long it lasted and how many failures it saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Recovered {
    pub lasted: Duration,
    pub failures: u64,
}

impl<K> Ongoing<K> {
    /// The first failure, of `kind`, at `now` (log it in full: [`Note::First`]).
    pub fn new(now: Instant, kind: K) -> Self {
        Ongoing {
            since: now,
            last_line: now,
            failures: 1,
            kind,
        }
    }

    /// Another failure at `now`; `same` says whether it is of the kind going on, and `kind`
    /// makes the new kind only when it is not.
    pub fn failure_of(&mut self, now: Instant, same: bool, kind: impl FnOnce() -> K) -> Note {
        self.failures += 1;
        if !same {
            self.kind = kind();
            self.last_line = now;
            Note::First
        } else if now.saturating_duration_since(self.last_line) >= SUMMARY_EVERY {
            self.last_line = now;
            Note::Summary {
                failures: self.failures,
                lasting: now.saturating_duration_since(self.since),
            }
        } else {
            Note::Quiet
        }
    }

    /// The outage ends at `now`.
    pub fn end(&self, now: Instant) -> Recovered {
        Recovered {
            lasted: now.saturating_duration_since(self.since),
            failures: self.failures,
        }
    }

    pub fn kind(&self) -> &K {
        &self.kind
    }
}

impl<K: PartialEq + Copy> Ongoing<K> {
    /// Another failure of `kind` at `now`.
    pub fn failure(&mut self, now: Instant, kind: K) -> Note {
        let same = self.kind == kind;
        self.failure_of(now, same, || kind)
    }
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
                self.state = Some(Box::new(Ongoing::new(now, kind.into())));
                Note::First
            }
            Some(s) => {
                let same = s.kind == kind.as_ref();
                s.failure_of(now, same, || kind.into())
            }
        }
    }

    /// A success at `now`: the outage that just ended, if there was one.
    pub fn success(&mut self, now: Instant) -> Option<Recovered> {
        self.state.take().map(|s| s.end(now))
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
        /// A scaler's inline outage (a small kind, no box) notes what the boxed one notes.
        #[test]
        fn an_inline_outage_notes_what_the_boxed_one_does(
            steps in prop::collection::vec((1u64..40, 0u8..3, prop::bool::weighted(0.8)), 1..100),
        ) {
            let t0 = Instant::now();
            let (mut boxed, mut inline, mut t) = (Outage::default(), None::<Ongoing<u8>>, 0u64);
            for (dt, kind, fail) in steps {
                t += dt;
                let now = t0 + Duration::from_secs(t);
                if fail {
                    let want = boxed.failure(now, format!("k{kind}"));
                    let got = match &mut inline {
                        Some(o) => o.failure(now, kind),
                        None => {
                            inline = Some(Ongoing::new(now, kind));
                            Note::First
                        }
                    };
                    prop_assert_eq!(got, want);
                } else {
                    prop_assert_eq!(inline.take().map(|o| o.end(now)), boxed.success(now));
                }
            }
        }

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
