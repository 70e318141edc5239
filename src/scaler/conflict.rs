//! Observe, the target's side: another autoscaler (a HorizontalPodAutoscaler, which is also
//! how KEDA scales) that scales the same workload. Two autoscalers writing one count fight; the
//! agent steps back, says so, and resumes by itself once the HPA is gone.

use super::*;

impl Scaler {
    /// Each cluster's competing HPA, if any; a conflict that starts is logged and evented, one
    /// that ends logged. The message, while one lasts, is kept for the view and the condition.
    pub(super) async fn observe_conflicts(&mut self) -> Vec<Option<String>> {
        let found = self.fleet.competing_hpas().await;
        let placed = !self.fleet.placement().is_local();
        let msgs: Vec<String> = found
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                let hpa = h.as_ref()?;
                let in_cluster = if placed {
                    format!(" in cluster {}", crate::spec::placement_name(self.fleet.name(i)))
                } else {
                    String::new()
                };
                Some(format!(
                    "HorizontalPodAutoscaler {hpa}{in_cluster} also scales {}: not writing it while the HPA exists",
                    self.cfg.target
                ))
            })
            .collect();
        let now = (!msgs.is_empty()).then(|| msgs.join("; "));
        match (self.hpa_conflict(), &now) {
            (None, Some(msg)) => {
                tracing::warn!(scaler = %self.key, "TargetConflict: {msg}");
                self.event(EventType::Warning, "TargetConflict", "Scale", msg.clone());
            }
            (Some(_), None) => {
                tracing::info!(scaler = %self.key, target = %self.cfg.target, "the competing HorizontalPodAutoscaler is gone; scaling again");
            }
            _ => {}
        }
        if now.is_some() || self.notes.said.is_some() {
            self.notes.said().hpa_conflict = now;
            self.notes.tidy();
        }
        found
    }

    /// Why nothing is written while a HorizontalPodAutoscaler scales the target too.
    pub(super) fn hpa_conflict(&self) -> Option<&String> {
        self.notes.said.as_ref()?.hpa_conflict.as_ref()
    }

    /// `TargetConflict`, while an HPA scales the target too.
    pub(super) fn conflict_condition(&self) -> Option<Cond> {
        self.hpa_conflict().map(|msg| {
            Cond::new(
                "TargetConflict",
                true,
                "HorizontalPodAutoscaler",
                msg.clone(),
            )
        })
    }
}
