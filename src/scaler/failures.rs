//! Observe's failures: a failing trigger is counted, logged and evented when it starts or
//! changes kind and summarised once a minute, its recovery logged; a server without the
//! capacity signal is said once.

use super::*;

impl Scaler {
    pub(super) fn note_recovered(&mut self, trigger: &str) {
        let Some(outage) = self.notes.trigger_outages.remove(trigger) else {
            return;
        };
        // An unreachable server's recovery is the connection's line, not one per scaler.
        let r = outage.end(std::time::Instant::now());
        if outage.kind().is_connectivity() {
            tracing::debug!(scaler = %self.key, trigger, lasted_secs = r.lasted.as_secs(), failures = r.failures, "trigger recovered");
        } else {
            tracing::info!(scaler = %self.key, trigger, lasted_secs = r.lasted.as_secs(), failures = r.failures, "trigger recovered");
        }
    }

    /// Every failure is counted; it is logged when it starts or changes kind and once a minute
    /// while it lasts. An unreachable Temporal is logged by its connection (one line for all
    /// the scalers on it), so here it is only a debug line.
    pub(super) fn note_failure(&mut self, name: &Arc<str>, e: &TemporalError) {
        self.ctx
            .state
            .update(&self.key, |v| v.count_trigger_error(name, e.kind.as_str()));
        let trigger: &str = name;
        let by_connection = e.kind.is_connectivity();
        // Unavailable and timeout alternate in one outage: one kind for both.
        let kind = if by_connection {
            ErrorKind::Unavailable
        } else {
            e.kind
        };
        let now = std::time::Instant::now();
        let mut fresh = false;
        let outage = self.notes.trigger_outages.get_or_insert_with(trigger, || {
            fresh = true;
            (name.clone(), Ongoing::new(now, kind))
        });
        let note = if fresh {
            Note::First
        } else {
            outage.failure(now, kind)
        };
        match note {
            Note::First => {
                if by_connection {
                    tracing::debug!(scaler = %self.key, trigger, error = %e, "trigger failed (the connection's log says why); it will not lower the replica count");
                } else {
                    tracing::warn!(scaler = %self.key, trigger, error = %e, "trigger failed; it will not lower the replica count");
                }
                self.event(
                    EventType::Warning,
                    "TriggerFailed",
                    "Poll",
                    format!("trigger {trigger}: {e}"),
                );
            }
            Note::Summary { failures, lasting } if !by_connection => {
                tracing::warn!(scaler = %self.key, trigger, error = %e, failures, lasting_secs = lasting.as_secs(), "trigger still failing");
            }
            _ => tracing::debug!(scaler = %self.key, trigger, error = %e, "trigger failed"),
        }
    }

    /// Said once per trigger: the server cannot give the capacity signal.
    pub(super) fn note_capacity_unavailable(&mut self, trigger: &str, why: &str) {
        if self
            .notes
            .said()
            .capacity_unavailable
            .insert(trigger.to_string())
        {
            tracing::warn!(scaler = %self.key, trigger, reason = %why, "capacity signal unavailable; scaling on the backlog alone");
            self.event(
                EventType::Warning,
                "CapacitySignalUnavailable",
                "Poll",
                format!("trigger {trigger}: capacity signal unavailable ({why}); scaling on the backlog alone"),
            );
        }
    }
}
