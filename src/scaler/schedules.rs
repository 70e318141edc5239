//! The Schedules signal, the scaler's part (`scheduleLeadSeconds`): each trigger's signal
//! from its namespace's schedules and what this scaler learned of their runs, and learning
//! after each decision. What was learned is seeded from where it was kept (the custom
//! resource's status, or the Lease for config-directory scalers) and kept there on change.

use super::*;
use crate::decide::schedule::{Learned, Run, ScheduleMemory};
use crate::temporal::SchedulesRead;

impl Scaler {
    /// The memory of this scaler's schedules, seeded on first use.
    fn memory(&mut self) -> &mut ScheduleMemory {
        let (state, key) = (&self.ctx.state, &self.key);
        self.schedules
            .get_or_insert_with(|| Box::new(ScheduleMemory::from_learned(state.learned(key))))
    }

    /// Observe's part for one trigger: its signal into `reading` (when its backlog was read),
    /// its schedules into `view`, its runs to learn from into `runs`.
    pub(super) fn observe_schedules(
        &mut self,
        t: &TriggerConfig,
        read: Option<&SchedulesRead>,
        reading: &mut TriggerReading,
        view: &mut TriggerView,
        runs: &mut Vec<Run>,
        now: SystemTime,
    ) {
        if t.schedule.is_none() {
            return;
        }
        if let Some(SchedulesRead::Unavailable(why)) = read
            && self
                .notes
                .said()
                .schedules_unavailable
                .insert(t.name.to_string())
        {
            tracing::warn!(scaler = %self.key, trigger = %t.name, reason = %why, "Schedules signal unavailable; scaling without it");
            self.event(
                EventType::Warning,
                "SchedulesUnavailable",
                "Poll",
                format!(
                    "trigger {}: Schedules signal unavailable ({why}); scaling without it",
                    t.name
                ),
            );
        }
        let version = reading.signals.version_status;
        let (signal, r, views) = reading::schedule_signal(t, read, version, self.memory(), now);
        if reading.backlog.is_ok() {
            reading.signals.schedule = signal;
        }
        view.schedules = views;
        runs.extend(r);
    }

    /// After the decision: what the load needed (the triggers' recommendations without a
    /// schedule's floor) is learned for the runs in progress; a change is kept.
    pub(super) fn learn_schedules(&mut self, d: &decide::Decision, runs: &[Run]) {
        if runs.is_empty() && self.schedules.is_none() {
            return;
        }
        let need = d
            .triggers
            .iter()
            .filter_map(|t| t.unscheduled)
            .max()
            .unwrap_or(0);
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if self.memory().observe(now, runs, need) {
            let learned: BTreeMap<String, Learned> = self.memory().learned.clone();
            tracing::info!(scaler = %self.key, learned = ?learned, "learned what a schedule's run needed");
            self.ctx.state.set_learned(&self.key, learned);
        }
    }
}
