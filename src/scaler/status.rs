//! Report, the CR status part: the conditions (Ready, Active, Fallback, Paused,
//! CapacitySignal, ClusterUnreachable) and the status a TemporalScaler gets each tick.

use super::*;

impl Scaler {
    pub(super) fn report_status(
        &self,
        current: Option<u32>,
        desired: Option<u32>,
        triggers: &[TriggerView],
        clusters: &[ClusterView],
        decision: Option<&decide::Decision>,
        target_error: Option<&str>,
    ) {
        let active = decision.is_some_and(|d| d.active);
        if self.key.source != SourceKind::Crd {
            return;
        }
        let Some(sink) = &self.ctx.status else { return };
        let failing: Vec<String> = triggers
            .iter()
            .filter_map(|t| t.error.as_ref().map(|e| format!("{}: {e}", t.name)))
            .collect();
        let ready = match (target_error, failing.is_empty()) {
            (Some(e), _) => Cond::new("Ready", false, "TargetError", e),
            (None, false) => Cond::new("Ready", false, "TriggerError", failing.join("; ")),
            (None, true) => Cond::new(
                "Ready",
                true,
                "ScalerReady",
                format!("scaling {}", self.cfg.target),
            ),
        };
        let active_cond = if active {
            let why: Vec<String> = triggers
                .iter()
                .filter(|t| t.active)
                .map(|t| format!("{} ({})", t.name, why_active(t)))
                .collect();
            Cond::new(
                "Active",
                true,
                "ScalerActive",
                format!("active: {}", why.join(", ")),
            )
        } else {
            Cond::new(
                "Active",
                false,
                "ScalerNotActive",
                "no trigger above activationTargetQueueSize",
            )
        };
        let fallback_cond = if decision.is_some_and(|d| d.fallback) {
            let names: Vec<&str> = decision
                .map(|d| {
                    d.triggers
                        .iter()
                        .filter(|t| t.basis == decide::Basis::Fallback)
                        .map(|t| &*t.name)
                        .collect()
                })
                .unwrap_or_default();
            Cond::new(
                "Fallback",
                true,
                "FallbackActive",
                format!("using fallback.replicas for {}", names.join(", ")),
            )
        } else {
            Cond::new("Fallback", false, "FallbackNotActive", "")
        };
        let paused_cond = match Pause::from_annotations(&self.cfg.annotations) {
            Pause::No => Cond::new("Paused", false, "NotPaused", ""),
            Pause::Freeze => Cond::new(
                "Paused",
                true,
                "ScalerPaused",
                format!("{}: true", decide::PAUSED),
            ),
            Pause::Pin(n) => Cond::new(
                "Paused",
                true,
                "ScalerPaused",
                format!("{}: {n}", decide::PAUSED_REPLICAS),
            ),
        };
        let status = TemporalScalerStatus {
            current_replicas: current.map(|n| n as i32),
            desired_replicas: desired.map(|n| n as i32),
            last_scale_time: self.last_scale_time.map(Time),
            observed_generation: None,
            triggers: triggers
                .iter()
                .map(|t| TriggerStatus {
                    name: t.name.to_string(),
                    backlog: t.backlog.map(|b| b as i64),
                    backlog_age_seconds: t.backlog_age_seconds.map(two_significant_digits),
                    last_error: t.error.as_deref().map(String::from),
                    rate_limited: t.rate_limited.filter(|r| *r),
                    basis: t.basis.map(|b| b.as_str().to_string()),
                    capacity: t.capacity.as_deref().map(CapacityView::status),
                })
                .collect(),
            clusters: clusters.iter().map(ClusterView::status).collect(),
            conditions: Vec::new(),
            schedules: self.learned_status(),
        };
        let mut conditions = vec![ready, active_cond, fallback_cond, paused_cond];
        conditions.extend(capacity_condition(triggers));
        conditions.extend(self.idle_first_condition(triggers));
        conditions.extend(self.conflict_condition());
        conditions.extend(cluster_condition(clusters));
        let report = StatusReport {
            generation: self.generation,
            status,
            conditions,
        };
        sink.send(StatusMsg::Status {
            key: self.key.clone(),
            report,
            min_interval: self.cfg.polling_interval,
        });
    }
}

impl Scaler {
    /// What the Schedules signal learned, for the status (where it is kept).
    fn learned_status(&self) -> Vec<crate::spec::LearnedScheduleStatus> {
        let Some(m) = &self.schedules else {
            return Vec::new();
        };
        m.learned
            .iter()
            .filter_map(|(k, l)| {
                Some(crate::spec::LearnedScheduleStatus {
                    schedule: k.clone(),
                    learned_replicas: l.replicas.min(i32::MAX as u32) as i32,
                    action_time: Time(jiff::Timestamp::from_second(l.action_at).ok()?),
                })
            })
            .collect()
    }

    /// `IdleFirst`, on scalers with the capacity signal (and the setting on): whether the last
    /// scale-down could tell busy pods from idle ones.
    fn idle_first_condition(&self, triggers: &[TriggerView]) -> Option<Cond> {
        if !self.ctx.idle_first
            || !self.cfg.idle_first
            || !triggers.iter().any(|t| t.capacity.is_some())
        {
            return None;
        }
        Some(if self.idle_first_unmatched() {
            Cond::new(
                "IdleFirst",
                false,
                "PodsAreNotWorkerHosts",
                "no pod of the target is a worker host (host name = pod name): scale-downs go by the count alone",
            )
        } else {
            Cond::new(
                "IdleFirst",
                true,
                "DeletionCostsSet",
                "before a scale-down, idle pods get the lowest deletion cost",
            )
        })
    }
}

/// Why an active trigger is active, in a condition's words.
fn why_active(t: &TriggerView) -> &'static str {
    match t.basis {
        Some(decide::Basis::Dispatching) => "tasks are being dispatched",
        Some(decide::Basis::RunningWorkflows) => "workflows are running",
        Some(decide::Basis::Fallback) => "fallback",
        Some(decide::Basis::Scheduled) => "a Schedule on its queue fires soon",
        _ if t.capacity.as_ref().is_some_and(|c| c.slots_used > 0) => "worker slots in use",
        _ => "backlog above activationTargetQueueSize",
    }
}

/// `CapacitySignal`, on scalers with a trigger that asks for it: whether the workers'
/// heartbeats could be read, and if not why (an older server, no permission).
fn capacity_condition(triggers: &[TriggerView]) -> Option<Cond> {
    let with: Vec<(&TriggerView, &CapacityView)> = triggers
        .iter()
        .filter_map(|t| t.capacity.as_deref().map(|c| (t, c)))
        .collect();
    if with.is_empty() {
        return None;
    }
    let unavailable: Vec<String> = with
        .iter()
        .filter_map(|(t, c)| c.unavailable.as_ref().map(|u| format!("{}: {u}", t.name)))
        .collect();
    Some(if unavailable.is_empty() {
        let hosts: u32 = with.iter().map(|(_, c)| c.hosts).sum();
        Cond::new(
            "CapacitySignal",
            true,
            "HeartbeatsRead",
            format!("worker heartbeats read from {hosts} host(s)"),
        )
    } else {
        Cond::new(
            "CapacitySignal",
            false,
            "CapacitySignalUnavailable",
            format!("{}; scaling on the backlog alone", unavailable.join("; ")),
        )
    })
}

/// `ClusterUnreachable`, on scalers whose target is in a remote cluster or several: which
/// clusters are unreachable, and why (their shares went to the others).
fn cluster_condition(clusters: &[ClusterView]) -> Option<Cond> {
    if clusters.is_empty() {
        return None;
    }
    let down: Vec<String> = clusters
        .iter()
        .filter(|c| !c.reachable)
        .map(|c| match &c.error {
            Some(e) => format!("{}: {e}", c.name),
            None => c.name.clone(),
        })
        .collect();
    Some(if down.is_empty() {
        Cond::new(
            "ClusterUnreachable",
            false,
            "AllClustersReachable",
            format!("{} cluster(s) reachable", clusters.len()),
        )
    } else {
        Cond::new(
            "ClusterUnreachable",
            true,
            "ClusterUnreachable",
            format!("{}; share moved to the reachable clusters", down.join("; ")),
        )
    })
}

/// Backlog age in status is coarse (two significant digits), so a growing age does not make
/// every poll a status write.
fn two_significant_digits(secs: f64) -> f64 {
    if secs < 10.0 {
        return secs.floor();
    }
    let magnitude = 10f64.powi(secs.log10().floor() as i32 - 1);
    (secs / magnitude).floor() * magnitude
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(name: &str, capacity: Option<CapacityView>) -> TriggerView {
        TriggerView {
            name: name.into(),
            capacity: capacity.map(Box::new),
            ..Default::default()
        }
    }

    #[test]
    fn the_capacity_condition_says_whether_heartbeats_were_read() {
        assert_eq!(capacity_condition(&[view("plain", None)]), None);
        let read = CapacityView {
            hosts: 3,
            ..Default::default()
        };
        let c = capacity_condition(&[view("a", Some(read.clone())), view("plain", None)]).unwrap();
        assert_eq!(
            (c.type_, c.status, c.reason.as_str()),
            ("CapacitySignal", true, "HeartbeatsRead")
        );
        assert_eq!(c.message, "worker heartbeats read from 3 host(s)");
        let old = CapacityView {
            unavailable: Some("capacity signal unavailable: ListWorkers: Unimplemented".into()),
            ..Default::default()
        };
        let c = capacity_condition(&[view("a", Some(read)), view("b", Some(old))]).unwrap();
        assert_eq!(
            (c.status, c.reason.as_str()),
            (false, "CapacitySignalUnavailable")
        );
        assert!(
            c.message.starts_with("b: capacity signal unavailable"),
            "{}",
            c.message
        );
        assert!(
            c.message.ends_with("scaling on the backlog alone"),
            "{}",
            c.message
        );
    }

    #[test]
    fn the_cluster_condition_names_the_unreachable_clusters() {
        assert_eq!(cluster_condition(&[]), None, "a local target has none");
        let up = ClusterView {
            name: "local".into(),
            share: Some(6),
            current_replicas: Some(6),
            reachable: true,
            ..Default::default()
        };
        let c = cluster_condition(std::slice::from_ref(&up)).unwrap();
        assert_eq!(
            (c.type_, c.status, c.reason.as_str()),
            ("ClusterUnreachable", false, "AllClustersReachable")
        );
        let down = ClusterView {
            name: "eu".into(),
            share: Some(0),
            reachable: false,
            error: Some("shop/Deployment/w in cluster eu: connection refused".into()),
            ..Default::default()
        };
        let c = cluster_condition(&[up, down.clone()]).unwrap();
        assert_eq!((c.status, c.reason.as_str()), (true, "ClusterUnreachable"));
        assert_eq!(
            c.message,
            "eu: shop/Deployment/w in cluster eu: connection refused; share moved to the reachable clusters"
        );
        // The status form, as it is written on the TemporalScaler.
        assert_eq!(
            serde_json::to_value(down.status()).unwrap(),
            serde_json::json!({"name": "eu", "share": 0, "reachable": false,
                               "lastError": "shop/Deployment/w in cluster eu: connection refused"})
        );
    }

    #[test]
    fn the_active_condition_names_what_keeps_a_trigger_active() {
        let mut busy = view(
            "busy",
            Some(CapacityView {
                slots_used: 4,
                ..Default::default()
            }),
        );
        busy.basis = Some(decide::Basis::SlotUtilization);
        assert_eq!(why_active(&busy), "worker slots in use");
        let mut flowing = view("flowing", None);
        flowing.basis = Some(decide::Basis::Dispatching);
        assert_eq!(why_active(&flowing), "tasks are being dispatched");
        let mut backlog = view("q", None);
        backlog.basis = Some(decide::Basis::Backlog);
        assert_eq!(
            why_active(&backlog),
            "backlog above activationTargetQueueSize"
        );
    }

    #[test]
    fn status_carries_the_basis_and_rounded_capacity() {
        let v = CapacityView {
            hosts: 2,
            slots_used: 9,
            slots_available: 1,
            utilization: Some(0.912_345),
            ..Default::default()
        };
        let s = v.status();
        assert_eq!((s.hosts, s.slots_used, s.slots_available), (2, 9, 1));
        assert_eq!(s.utilization, Some(0.91));
        assert_eq!(decide::Basis::BusyWorkers.as_str(), "busyWorkers");
        // The serialized basis is the same word.
        assert_eq!(
            serde_json::to_value(decide::Basis::SlotUtilization).unwrap(),
            "slotUtilization"
        );
    }
}
