//! The Schedules signal (`scheduleLeadSeconds`): Temporal Schedules on a trigger's queue say
//! when work will arrive, so the workers can be up before it does. From `lead` before an
//! action until `grace` after it, the trigger recommends at least what this scaler needed
//! during that schedule's last run (learned, [`ScheduleMemory`]), or `scheduleMinReplicas`
//! before anything was learned. A paused schedule counts for nothing. Pure: the actions'
//! times are given relative to now, and the memory is given the wall clock as numbers.

use std::collections::BTreeMap;

/// One schedule action near now, as the decision reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Action {
    /// The schedule's id.
    pub schedule: String,
    /// Seconds from now to the action; negative once it has passed.
    pub in_secs: f64,
    pub paused: bool,
    /// What the scaler needed during this schedule's last run, once learned.
    pub learned: Option<u32>,
}

/// A trigger's schedules this tick, with its keys.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleSignal {
    pub lead_secs: f64,
    pub grace_secs: f64,
    pub min_replicas: u32,
    pub actions: Vec<Action>,
}

impl ScheduleSignal {
    /// The floor now and the action it is for: the highest of the actions, not paused, whose
    /// window `[at − lead, at + grace]` holds now.
    pub fn floor(&self) -> Option<(u32, &Action)> {
        self.actions
            .iter()
            .filter(|a| !a.paused && a.in_secs <= self.lead_secs && a.in_secs >= -self.grace_secs)
            .map(|a| (a.learned.unwrap_or(self.min_replicas), a))
            .max_by_key(|(n, _)| *n)
    }
}

/// What was learned of one schedule's run: the most replicas the scaler needed while it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Learned {
    pub replicas: u32,
    /// The action's time (Unix seconds) whose run this was learned from.
    pub action_at: i64,
}

/// A run being watched: its action's time and the most replicas needed so far.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Watch {
    action_at: i64,
    max_need: u32,
}

/// One schedule's latest action at or before now, as a tick sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    pub schedule: String,
    /// Unix seconds.
    pub action_at: i64,
    /// The server lists the action among the schedule's recent actions (it was taken, not
    /// skipped by its overlap policy or a pause).
    pub taken: bool,
    /// `scheduleLearnSeconds` of the trigger it is read for.
    pub learn_secs: i64,
}

/// The learned needs of a scaler's schedules, kept across restarts (in the custom resource's
/// status, or the Lease for config-directory scalers) and bounded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScheduleMemory {
    pub learned: BTreeMap<String, Learned>,
    watching: BTreeMap<String, Watch>,
}

impl ScheduleMemory {
    /// Schedules remembered per scaler at most (the oldest learned is forgotten first).
    pub const MAX: usize = 32;

    pub fn from_learned(learned: BTreeMap<String, Learned>) -> Self {
        ScheduleMemory {
            learned,
            watching: BTreeMap::new(),
        }
    }

    /// One tick at `now` (Unix seconds) with the scaler's `need` (its recommendation without
    /// the schedule floor): a run is watched for `learn_secs` after its action, and what it
    /// needed is learned once that ends, if the action was taken. Says whether `learned`
    /// changed.
    pub fn observe(&mut self, now: i64, runs: &[Run], need: u32) -> bool {
        let mut changed = false;
        self.watching
            .retain(|id, _| runs.iter().any(|r| &r.schedule == id));
        for r in runs {
            let end = r.action_at.saturating_add(r.learn_secs);
            let watch = self.watching.get_mut(&r.schedule);
            if now < end && now >= r.action_at {
                match watch {
                    Some(w) if w.action_at == r.action_at => w.max_need = w.max_need.max(need),
                    _ => {
                        self.watching.insert(
                            r.schedule.clone(),
                            Watch {
                                action_at: r.action_at,
                                max_need: need,
                            },
                        );
                    }
                }
            } else if now >= end
                && let Some(w) = watch
                && w.action_at == r.action_at
            {
                let w = w.clone();
                self.watching.remove(&r.schedule);
                if r.taken {
                    let learned = Learned {
                        replicas: w.max_need,
                        action_at: w.action_at,
                    };
                    changed |=
                        self.learned.insert(r.schedule.clone(), learned.clone()) != Some(learned);
                }
            }
        }
        while self.learned.len() > Self::MAX {
            let oldest = self
                .learned
                .iter()
                .min_by_key(|(_, l)| l.action_at)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.learned.remove(&k);
                changed = true;
            }
        }
        changed
    }

    /// What was learned of `schedule`.
    pub fn learned(&self, schedule: &str) -> Option<u32> {
        self.learned.get(schedule).map(|l| l.replicas)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run(at: i64, taken: bool) -> Run {
        Run {
            schedule: "nightly".into(),
            action_at: at,
            taken,
            learn_secs: 600,
        }
    }

    #[test]
    fn a_run_is_learned_when_its_window_ends_and_only_if_it_was_taken() {
        let mut m = ScheduleMemory::default();
        assert!(!m.observe(1000, &[run(1000, false)], 2));
        assert!(!m.observe(1300, &[run(1000, false)], 12));
        assert!(!m.observe(1500, &[run(1000, false)], 4));
        // The window ends; the listing now shows the action among the recent ones.
        assert!(m.observe(1600, &[run(1000, true)], 1));
        assert_eq!(m.learned("nightly"), Some(12));
        // The next run needs less: what was learned follows it down.
        m.observe(2000, &[run(2000, true)], 5);
        m.observe(2700, &[run(2000, true)], 0);
        assert_eq!(m.learned("nightly"), Some(5));
        // A skipped action (never among the recent ones) teaches nothing.
        m.observe(3000, &[run(3000, false)], 1);
        m.observe(3700, &[run(3000, false)], 1);
        assert_eq!(m.learned("nightly"), Some(5));
    }

    #[test]
    fn a_run_seen_only_after_its_window_teaches_nothing_and_memory_is_bounded() {
        let mut m = ScheduleMemory::default();
        // The agent started after the window: nothing watched, nothing learned.
        assert!(!m.observe(5000, &[run(1000, true)], 9));
        assert_eq!(m.learned("nightly"), None);
        for i in 0..(ScheduleMemory::MAX as i64 + 5) {
            let r = Run {
                schedule: format!("s{i}"),
                action_at: i,
                taken: true,
                learn_secs: 1,
            };
            m.observe(i, std::slice::from_ref(&r), 3);
            m.observe(i + 1, &[r], 3);
        }
        assert_eq!(m.learned.len(), ScheduleMemory::MAX);
        assert!(
            m.learned
                .contains_key(&format!("s{}", ScheduleMemory::MAX + 4))
        );
        assert!(!m.learned.contains_key("s0"));
    }

    fn action() -> impl Strategy<Value = Action> {
        (
            -200.0f64..400.0,
            any::<bool>(),
            proptest::option::of(0u32..50),
        )
            .prop_map(|(in_secs, paused, learned)| Action {
                schedule: "s".into(),
                in_secs,
                paused,
                learned,
            })
    }

    fn reading(
        backlog: u64,
        target: f64,
        schedule: Option<ScheduleSignal>,
    ) -> crate::decide::TriggerReading {
        crate::decide::TriggerReading {
            name: "t".into(),
            backlog: Ok(backlog),
            target,
            activation: 0.0,
            signals: crate::decide::Signals {
                schedule,
                ..Default::default()
            },
        }
    }

    proptest! {
        #[test]
        fn prop_a_trigger_is_never_below_the_learned_count_inside_a_lead_window(
            backlog in 0u64..200,
            target in 1.0f64..20.0,
            current in 0u32..30,
            learned in proptest::option::of(0u32..40),
            in_secs in -60.0f64..120.0,
        ) {
            let s = ScheduleSignal {
                lead_secs: 120.0,
                grace_secs: 60.0,
                min_replicas: 1,
                actions: vec![Action { schedule: "s".into(), in_secs, paused: false, learned }],
            };
            let rec = crate::decide::recommend(&reading(backlog, target, Some(s)), current, 0.1, 0.1);
            let floor = learned.unwrap_or(1);
            prop_assert!(rec.replicas.unwrap() >= floor);
            prop_assert!(rec.active || floor == 0 && backlog == 0);
            prop_assert_eq!(rec.unscheduled, crate::decide::recommend(&reading(backlog, target, None), current, 0.1, 0.1).replicas);
        }

        #[test]
        fn prop_without_an_action_in_its_window_it_is_as_without_the_keys(
            backlog in 0u64..200,
            target in 1.0f64..20.0,
            current in 0u32..30,
            actions in proptest::collection::vec(action(), 0..5),
        ) {
            let s = ScheduleSignal { lead_secs: 120.0, grace_secs: 60.0, min_replicas: 3, actions };
            prop_assume!(s.floor().is_none());
            let with = crate::decide::recommend(&reading(backlog, target, Some(s)), current, 0.1, 0.1);
            let without = crate::decide::recommend(&reading(backlog, target, None), current, 0.1, 0.1);
            prop_assert_eq!(with, without);
        }

        #[test]
        fn prop_the_floor_is_never_below_what_was_learned_inside_a_window(
            actions in proptest::collection::vec(action(), 0..5),
            lead in 1.0f64..300.0,
            grace in 0.0f64..120.0,
            min in 0u32..5,
        ) {
            let s = ScheduleSignal { lead_secs: lead, grace_secs: grace, min_replicas: min, actions };
            let floor = s.floor().map_or(0, |(n, _)| n);
            for a in &s.actions {
                if !a.paused && a.in_secs <= lead && a.in_secs >= -grace {
                    prop_assert!(floor >= a.learned.unwrap_or(min));
                }
            }
        }

        #[test]
        fn prop_a_paused_schedule_changes_nothing(
            actions in proptest::collection::vec(action(), 0..5),
            lead in 1.0f64..300.0,
            min in 0u32..5,
        ) {
            let all = ScheduleSignal { lead_secs: lead, grace_secs: 60.0, min_replicas: min, actions };
            let mut unpaused = all.clone();
            unpaused.actions.retain(|a| !a.paused);
            prop_assert_eq!(all.floor().map(|(n, _)| n), unpaused.floor().map(|(n, _)| n));
        }
    }
}
