//! Act, before a scale-down: idle pods first. The target's pods get their deletion cost from
//! the worker heartbeats (`decide::idle_first`), so the ReplicaSet removes idle pods before
//! busy ones. Best effort: a failure is reported and the scale-down goes on, since the count
//! is right either way.

use super::*;
use crate::decide::idle_first::{self, Steer};
use crate::state::{BusyPod, ScaleDownView};
use crate::target::TargetError;

/// What a scaler remembers of steering its scale-downs.
#[derive(Default)]
pub(super) struct IdleFirst {
    /// No pod matched a worker host at the last scale-down: said once, until one matches.
    unmatched: bool,
    /// Pod reads and cost writes failing: logged when it starts, once a minute, and when it ends.
    outage: Outage,
}

impl Scaler {
    /// Steer the scale-downs among `writes` (the counts about to be written): for each cluster
    /// lowered, set the deletion costs of its pods. Only with the setting on and a capacity
    /// signal read this tick (nothing else says which pods are busy).
    pub(super) async fn steer_scale_down(
        &mut self,
        writes: &[Option<u32>],
        readings: &[TriggerReading],
    ) -> Vec<ScaleDownView> {
        if !self.ctx.idle_first || !self.cfg.idle_first {
            return Vec::new();
        }
        let Some(hosts) = idle_first::hosts(readings) else {
            return Vec::new();
        };
        let results = self.fleet.steer(writes, &hosts).await;
        let mut views = Vec::new();
        let mut unmatched = None;
        let mut failed = None;
        for (i, res) in results.into_iter().enumerate() {
            let Some(res) = res else { continue };
            let mut view = ScaleDownView {
                cluster: crate::spec::placement_name(self.fleet.name(i)).to_string(),
                ..ScaleDownView::default()
            };
            match res {
                Err(e) => {
                    view.error = Some(e.to_string());
                    failed = Some(e);
                }
                Ok(done) => {
                    view.pods = done.pods;
                    view.costs_written = done.written;
                    if let Some(e) = done.errors.into_iter().next() {
                        view.error = Some(e.to_string());
                        failed = Some(e);
                    }
                    match done.steer {
                        Steer::Unmatched => {
                            let why = format!(
                                "none of the {} pod(s) is a worker host (the pods' host names are not their names, or the workers run elsewhere)",
                                done.pods
                            );
                            view.unmatched = Some(why.clone());
                            unmatched = Some(why);
                        }
                        Steer::Costs { busy, idle, .. } => {
                            view.idle = idle;
                            view.busy = busy
                                .into_iter()
                                .map(|(pod, slots_used)| BusyPod { pod, slots_used })
                                .collect();
                        }
                    }
                }
            }
            self.log_steered(&view);
            views.push(view);
        }
        self.note_unmatched(unmatched);
        self.note_steer_failure(failed);
        views
    }

    fn log_steered(&self, v: &ScaleDownView) {
        if v.unmatched.is_some() || (v.error.is_some() && v.pods == 0) {
            return;
        }
        let busy: Vec<String> = v
            .busy
            .iter()
            .map(|b| format!("{} ({})", b.pod, b.slots_used))
            .collect();
        tracing::info!(scaler = %self.key, cluster = %v.cluster, pods = v.pods, idle = v.idle, busy = %busy.join(", "), costs_written = v.costs_written, "idle pods first: deletion costs set before the scale-down");
    }

    /// No pod matched a worker host: said once (log, event; the condition says it while it
    /// lasts), and again only after pods matched in between.
    fn note_unmatched(&mut self, unmatched: Option<String>) {
        match unmatched {
            Some(why) if !self.idle_first.unmatched => {
                self.idle_first.unmatched = true;
                tracing::warn!(scaler = %self.key, reason = %why, "idle pods first: cannot tell the target's pods apart; scaling down by the count alone");
                self.event(
                    EventType::Warning,
                    "IdleFirstUnavailable",
                    "Scale",
                    format!("cannot tell busy pods from idle ones: {why}; scaling down by the count alone"),
                );
            }
            Some(_) => {}
            None => self.idle_first.unmatched = false,
        }
    }

    fn note_steer_failure(&mut self, failed: Option<TargetError>) {
        let now = std::time::Instant::now();
        let Some(e) = failed else {
            if let Some(r) = self.idle_first.outage.success(now) {
                tracing::info!(scaler = %self.key, lasted_secs = r.lasted.as_secs(), failures = r.failures, "idle pods first: pods readable and writable again");
            }
            return;
        };
        match self.idle_first.outage.failure(now, e.kind()) {
            Note::First => {
                tracing::warn!(scaler = %self.key, error = %e, "idle pods first: could not read the pods or set their deletion cost; the scale-down goes on by the count (logged again once a minute while it lasts)");
            }
            Note::Summary { failures, lasting } => {
                tracing::warn!(scaler = %self.key, error = %e, failures, lasting_secs = lasting.as_secs(), "idle pods first: still failing");
            }
            Note::Quiet => {
                tracing::debug!(scaler = %self.key, error = %e, "idle pods first failed")
            }
        }
    }

    /// Whether the last scale-down could not tell the pods apart (the `IdleFirst` condition).
    pub(super) fn idle_first_unmatched(&self) -> bool {
        self.idle_first.unmatched
    }
}
