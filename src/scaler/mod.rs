//! One scaler's loop: every pollingInterval, poll Temporal → decide → check the guard →
//! scale → report. History (stabilization, cooldown) survives spec changes of the same target.

use crate::context::Context;
use crate::decide::capacity::{SlotKind, summarize};
use crate::decide::{self, CapacitySignal, History, Input, Pause, Signals, TriggerReading};
use crate::metrics::{ScalerLabels, TargetErrorLabels};
use crate::outage::{Note, Ongoing, Outage};
use crate::report::status::{Cond, EventReport, EventType, StatusMsg, StatusReport};
use crate::spec::ScalerKey;
use crate::spec::SourceKind;
use crate::spec::{ScalerConfig, TemporalScalerStatus, TriggerConfig, TriggerStatus};
use crate::state::history::Sample;
use crate::state::{CapacityView, ClusterView, TargetView, TriggerView};
use crate::target::fleet::{Current, Fleet};
use crate::temporal::{ErrorKind, QueueStats, TemporalError, WorkersRead};

/// The outage kind of a target whose remote cluster's API server is unreachable.
const CLUSTER_UNREACHABLE: &str = "cluster unreachable";
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

mod conflict;
pub(crate) mod env;
mod failures;
mod idle_first;
mod lifecycle;
mod reading;
mod schedules;
mod status;

pub use lifecycle::{ScalerHandle, spawn};
use reading::{capacity_view, failure, trigger_view};
pub(crate) use reading::{reading, schedule_signal};

/// A spec as the registry hands it to a scaler: a new generation (CRs) restarts the timers
/// even when the validated config did not change.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned {
    pub config: Arc<ScalerConfig>,
    pub generation: Option<i64>,
}

pub fn scaler_labels(key: &ScalerKey) -> ScalerLabels {
    ScalerLabels {
        source: key.source.to_string(),
        namespace: key.namespace.to_string(),
        scaler: key.name.to_string(),
    }
}

/// Where in its polling interval a scaler polls: a hash of its first trigger's queue, so polls
/// of different queues spread evenly over the interval (no burst of N RPCs at once) while
/// scalers of the same queue and interval poll at the same moment and share one RPC
/// (coalesced by the pool).
pub fn poll_offset(cfg: &ScalerConfig) -> Duration {
    use std::hash::{Hash, Hasher};
    let period = cfg.polling_interval.as_millis().max(1) as u64;
    let mut h = std::hash::DefaultHasher::new();
    if let Some(t) = cfg.triggers.first() {
        (&t.endpoint, &t.namespace, &t.task_queue).hash(&mut h);
    }
    Duration::from_millis(h.finish() % period)
}

/// The next poll after `now` on the grid `offset + k·period` (all measured from the agent's
/// start). Strictly after `now`, at most one period away.
pub fn next_poll(now: Duration, offset: Duration, period: Duration) -> Duration {
    let period = period.max(Duration::from_millis(1));
    if now < offset {
        return offset;
    }
    let k = (now - offset).as_nanos() / period.as_nanos() + 1;
    offset + period * k as u32
}

fn uses_build_ids(cfg: &ScalerConfig) -> bool {
    cfg.triggers
        .iter()
        .any(|t| matches!(t.versioning, crate::spec::Versioning::BuildIds { .. }))
}

/// Build-id selection reads the deprecated ENHANCED DescribeTaskQueue: said once per scaler.
fn warn_deprecated(key: &ScalerKey, cfg: &ScalerConfig) {
    if uses_build_ids(cfg) {
        tracing::warn!(
            scaler = %key,
            "buildId/selectAllActive/selectUnversioned use Temporal's deprecated ENHANCED \
             DescribeTaskQueue (build-id versioning); move to Worker Deployments \
             (workerDeploymentName + workerDeploymentBuildId)"
        );
    }
}

struct Scaler {
    key: ScalerKey,
    ctx: Arc<Context>,
    cfg: Arc<ScalerConfig>,
    /// The target in each of its clusters.
    fleet: Fleet,
    history: History,
    started_at: Instant,
    /// `metadata.generation` of a CR scaler (0 for files).
    generation: i64,
    last_scale_time: Option<jiff::Timestamp>,
    /// Steering scale-downs to idle pods.
    idle_first: idle_first::IdleFirst,
    /// The `<key>FromEnv` values read from the target's environment.
    env: env::EnvResolution,
    /// What was learned of the schedules' runs (Schedules signal); boxed, as most have none.
    schedules: Option<Box<crate::decide::schedule::ScheduleMemory>>,
    /// What few scalers have (failures, signals a server lacks, a competing HPA).
    notes: Notes,
}

/// A scaler's rarer memory: 32 bytes in its cell, allocating nothing while empty. A failing
/// trigger is one 64-byte entry (its outage inline): a stalled server fails most of 100,000
/// scalers' reads at once, and each failing trigger was three allocations (a box for the notes,
/// the map's entry, a box for the outage). Its cell still fits 448 bytes
/// (`a_waiting_scaler_is_small`).
#[derive(Default)]
struct Notes {
    /// Failing triggers: a persisting failure is logged (and evented) when it starts or changes
    /// kind, summarised once a minute, and its recovery logged. The kind is the error's, with
    /// unavailable and timeout as one (an unreachable server: `ErrorKind::Unavailable`).
    trigger_outages: crate::vec_map::VecMap<Arc<str>, Ongoing<ErrorKind>>,
    /// What is said once, rarer still; boxed and absent while empty.
    said: Option<Box<Said>>,
}

/// What a scaler says once, and remembers it said.
#[derive(Default)]
struct Said {
    /// Triggers whose server cannot give the capacity signal.
    capacity_unavailable: BTreeSet<String>,
    /// A HorizontalPodAutoscaler scales the target too: why nothing is written.
    hpa_conflict: Option<String>,
    /// Triggers whose server cannot give the Schedules signal.
    schedules_unavailable: BTreeSet<String>,
}

impl Notes {
    fn said(&mut self) -> &mut Said {
        self.said.get_or_insert_default()
    }

    /// Drops what is said once when it holds nothing.
    fn tidy(&mut self) {
        if self.said.as_ref().is_some_and(|s| {
            s.capacity_unavailable.is_empty()
                && s.hpa_conflict.is_none()
                && s.schedules_unavailable.is_empty()
        }) {
            self.said = None;
        }
    }
}

/// What a tick observed: the decision's readings and the views of `/scalers`, per trigger.
struct Observation {
    readings: Vec<TriggerReading>,
    views: Vec<TriggerView>,
    /// Schedules' runs to learn from (Schedules signal).
    runs: Vec<crate::decide::schedule::Run>,
}

/// What acting did: the count now, a write error, and when it scaled (and from what).
struct Outcome {
    current: u32,
    error: Option<String>,
    scaled_at: Option<String>,
    before: u32,
    /// The pods of each cluster lowered, as ranked before the scale-down.
    steered: Vec<crate::state::ScaleDownView>,
}

impl Scaler {
    /// One pass of the pipeline: observe → decide → guard and act → report. While it reads
    /// (before it decides), a newer spec (`superseded`) ends it: a read waiting on a slow or
    /// throttled server is not worth finishing for the old spec. Returns whether a read failed
    /// (a trigger's, or the target's): the tick then decided on less than it asked for.
    async fn tick(&mut self, superseded: impl Future<Output = ()>) -> bool {
        let leader = self.ctx.guard.state();
        if !leader.leader {
            let target = self.target_view();
            self.ctx.state.update(&self.key, |v| {
                v.leader = false;
                v.target = Some(target);
            });
            return false;
        }
        let read = async {
            let cfg = Box::pin(self.resolved_config()).await;
            let obs = Box::pin(self.observe(&cfg)).await;
            (cfg, obs)
        };
        let observed = tokio::select! {
            biased;
            () = superseded => None,
            o = read => Some(o),
        };
        let Some((
            cfg,
            Observation {
                readings,
                mut views,
                runs,
            },
        )) = observed
        else {
            tracing::debug!(scaler = %self.key, "a newer spec came while reading: it polls now");
            return false;
        };
        let failed = views.iter().any(|v| v.error.is_some());
        let current = match Box::pin(self.read_current()).await {
            Ok(n) => n,
            Err(msg) => {
                self.report_target_error(msg, views);
                return true;
            }
        };
        let conflicts = Box::pin(self.observe_conflicts()).await;
        let observing_since = leader
            .since
            .map_or(self.started_at, |s| s.max(self.started_at));
        let d = self.decide(&cfg, current, &readings, observing_since);
        self.learn_schedules(&d, &runs);
        for (view, rec) in views.iter_mut().zip(&d.triggers) {
            view.recommended_replicas = rec.replicas;
            view.active = rec.active;
            view.basis = Some(rec.basis);
        }
        let outcome = Box::pin(self.act(&cfg, current, &d, &readings, &conflicts)).await;
        self.report(&d, views, outcome);
        failed
    }

    fn target_view(&self) -> TargetView {
        self.cfg.target.clone()
    }

    /// Observe: every trigger's queue (and its workers, with the capacity signal on), as the
    /// decision's readings and the views of `/scalers`. Failures are counted, and logged and
    /// evented once while they persist.
    async fn observe(&mut self, cfg: &ScalerConfig) -> Observation {
        let pool = &self.ctx.pool;
        let env = &self.env;
        // A trigger whose environment could not be read is not polled with placeholders.
        let reads = futures::future::join_all(
            cfg.triggers
                .iter()
                .map(|t| pool.read_or(t, cfg.polling_interval, env.failure(&t.name))),
        )
        .await;
        let now = SystemTime::now();
        // Exact capacity: the views are kept (10,000 scalers × a growth step of 4 views).
        let mut obs = Observation {
            readings: Vec::with_capacity(cfg.triggers.len()),
            views: Vec::with_capacity(cfg.triggers.len()),
            runs: Vec::new(),
        };
        for (t, (stats, workers, schedules)) in cfg.triggers.iter().zip(&reads) {
            let mut reading = reading(t, cfg.target.statefulset(), stats, workers.as_ref(), now);
            let mut view = trigger_view(t, stats, &reading);
            view.capacity = capacity_view(t, workers.as_ref(), &reading);
            self.observe_schedules(
                t,
                schedules.as_ref(),
                &mut reading,
                &mut view,
                &mut obs.runs,
                now,
            );
            match failure(stats, workers.as_ref()) {
                None => self.note_recovered(&t.name),
                Some(e) => {
                    self.note_failure(&t.name, e);
                    view.error = reading.backlog.as_ref().err().cloned();
                }
            }
            if let Some(Ok(WorkersRead::Unavailable(why))) = workers {
                self.note_capacity_unavailable(&t.name, why);
            }
            obs.readings.push(reading);
            obs.views.push(view);
        }
        obs
    }

    /// The target's current count from `/scale`: summed over the reachable clusters of a
    /// placement (boxed by the caller: a deep future). Each cluster's failure is logged and
    /// evented once while it lasts; a cluster that becomes unreachable or comes back, too.
    async fn read_current(&mut self) -> Result<u32, String> {
        let threshold = self.fleet.placement().failure_threshold;
        // Reachability changes are a placement's (a plain scaler has nothing to move).
        let before: Vec<bool> = if self.fleet.placement().spread {
            self.fleet
                .members
                .iter()
                .map(|m| m.reachable(threshold))
                .collect()
        } else {
            Vec::new()
        };
        let current = self.fleet.read().await;
        for i in 0..self.fleet.members.len() {
            let msg = self.fleet.members[i].error.as_ref().map(|e| e.to_string());
            self.note_target(
                i,
                msg.as_deref().map(|m| (m, "TargetError", m.to_string())),
                "cannot read the target's /scale",
            );
            let now = self.fleet.members[i].reachable(threshold);
            if before.get(i).is_some_and(|&was| was != now) {
                let name = self.fleet.name(i).to_string();
                self.note_reachability(&name, now);
            }
        }
        match current {
            Current::Total(n) => Ok(n),
            Current::Unreadable(msg) => Err(msg),
        }
    }

    /// A cluster of a placement became unreachable (its share moves to the others) or came
    /// back (its share returns under the scale-down behavior).
    /// Logged at debug: a cluster's outage is the cluster's line (`Clusters::note`), not one
    /// per scaler; the event is on the TemporalScaler.
    fn note_reachability(&self, cluster: &str, reachable: bool) {
        if reachable {
            tracing::debug!(scaler = %self.key, cluster, "cluster reachable again; its share returns as the others can give it up");
            self.event(
                EventType::Normal,
                "ClusterReachable",
                "Scale",
                format!("cluster {cluster} is reachable again; its share returns"),
            );
        } else {
            tracing::debug!(scaler = %self.key, cluster, "cluster unreachable; its share moves to the other clusters");
            self.event(
                EventType::Warning,
                "ClusterUnreachable",
                "Scale",
                format!("cluster {cluster} is unreachable; its share moves to the other clusters"),
            );
        }
    }

    /// A `/scale` read or write of cluster `i` that failed (or worked): logged and evented
    /// when a failure starts or changes, summarised once a minute, and its recovery logged.
    /// `failed`: the error, and the event's reason and note.
    fn note_target(&mut self, i: usize, failed: Option<(&str, &'static str, String)>, what: &str) {
        let now = std::time::Instant::now();
        if failed.is_some()
            && let Some(e) = self.fleet.members[i].error.as_deref()
        {
            // Every failed call is counted, whether or not it is logged.
            self.ctx
                .metrics
                .target_errors
                .get_or_create(&TargetErrorLabels {
                    namespace: self.cfg.namespace.to_string(),
                    scaler: self.cfg.name.to_string(),
                    cluster: self.fleet.name(i).to_string(),
                    kind: e.kind().into(),
                })
                .inc();
        }
        let m = &mut self.fleet.members[i];
        // An API server that cannot be reached or does not answer in time (the home cluster's
        // or a remote one's) is the cluster's outage, logged once by `Clusters::note` for all
        // its scalers: here a debug line (and the event).
        let by_cluster = m
            .error
            .as_deref()
            .is_some_and(crate::target::TargetError::is_unreachable);
        let Some((msg, reason, note)) = failed else {
            let quiet = m.outage.kind() == Some(CLUSTER_UNREACHABLE);
            if let Some(r) = m.outage.success(now) {
                let cluster = self.fleet.name(i);
                if quiet {
                    tracing::debug!(scaler = %self.key, cluster, lasted_secs = r.lasted.as_secs(), failures = r.failures, "target's /scale recovered");
                } else {
                    tracing::info!(scaler = %self.key, cluster, lasted_secs = r.lasted.as_secs(), failures = r.failures, "target's /scale recovered");
                }
            }
            return;
        };
        let kind = if by_cluster {
            std::borrow::Cow::Borrowed(CLUSTER_UNREACHABLE)
        } else {
            std::borrow::Cow::Owned(msg.to_string())
        };
        let told = m.outage.failure(now, kind);
        let cluster = self.fleet.name(i);
        match told {
            Note::First => {
                if by_cluster {
                    tracing::debug!(scaler = %self.key, cluster, error = %msg, "{what} (the cluster's log says why)");
                } else {
                    tracing::warn!(scaler = %self.key, cluster, error = %msg, "{what}");
                }
                self.event(EventType::Warning, reason, "Scale", note);
            }
            Note::Summary { failures, lasting } if !by_cluster => {
                tracing::warn!(scaler = %self.key, cluster, error = %msg, failures, lasting_secs = lasting.as_secs(), "target's /scale still failing");
            }
            _ => tracing::debug!(scaler = %self.key, cluster, error = %msg, "{what}"),
        }
    }

    fn report_target_error(&self, msg: String, views: Vec<TriggerView>) {
        let clusters = self.cluster_views();
        self.report_status(None, None, &views, &clusters, None, Some(&msg));
        let target = self.target_view();
        self.ctx.state.update(&self.key, |v| {
            v.leader = true;
            v.target = Some(target);
            v.triggers = views.into();
            v.clusters = clusters.into();
            v.error = Some(msg);
        });
    }

    /// Each cluster's share, count and reachability; none for a target only in the agent's
    /// own cluster.
    fn cluster_views(&self) -> Vec<ClusterView> {
        let p = self.fleet.placement();
        if p.is_local() {
            return Vec::new();
        }
        p.clusters
            .iter()
            .zip(&self.fleet.members)
            .map(|(c, m)| ClusterView {
                name: c.name.to_string(),
                weight: c.weight,
                min_replica_count: c.min,
                max_replica_count: c.max,
                share: m.share,
                current_replicas: m.read.or(m.last),
                reachable: m.reachable(p.failure_threshold),
                failures: m.failures(),
                error: m.error.as_ref().map(|e| e.to_string()),
            })
            .collect()
    }

    /// Decide (pure), and remember what the windows and guards need.
    fn decide(
        &mut self,
        cfg: &ScalerConfig,
        current: u32,
        readings: &[TriggerReading],
        observing_since: Instant,
    ) -> decide::Decision {
        let now = Instant::now();
        let input = Input {
            config: cfg,
            current,
            readings,
            now,
            observing_since,
            started_at: self.started_at,
            pause: Pause::from_annotations(&cfg.annotations),
        };
        let d = decide::decide(&input, &self.history);
        self.history
            .record_recommendation(now, d.recommendation, &cfg.behavior);
        self.history.record_readings(now, readings, d.active);
        d
    }

    /// Guard and act: place the decided total over the clusters and write each count that
    /// changes, each write checked against the lease first (one Lease, in the home cluster,
    /// guards every cluster's writes).
    async fn act(
        &mut self,
        cfg: &ScalerConfig,
        current: u32,
        d: &decide::Decision,
        readings: &[TriggerReading],
        conflicts: &[Option<String>],
    ) -> Outcome {
        let mut out = Outcome {
            current,
            error: None,
            scaled_at: None,
            before: current,
            steered: Vec::new(),
        };
        let mut plan = self.fleet.plan(d.desired);
        // Paused (KEDA's `paused: "true"`): the target is left as it is, in every cluster; the
        // shares are still computed for the report, but nothing moves between clusters either.
        if d.paused == Pause::Freeze || plan.writes.iter().all(Option::is_none) {
            return out;
        }
        // Another autoscaler scales the target there: never fight it.
        for (w, c) in plan.writes.iter_mut().zip(conflicts) {
            if c.is_some() {
                *w = None;
            }
        }
        if plan.writes.iter().all(Option::is_none) {
            return out;
        }
        let rule = d.rule().to_string();
        // The writes start together, so one check covers them all: each ends (or is given up)
        // within the deadline, which is at most the lease's margin.
        if !self.ctx.guard.may_write(Instant::now()) {
            tracing::warn!(scaler = %self.key, target = %cfg.target, from = current, to = d.desired, "lease not valid with margin; write skipped");
            out.error = Some("lease not valid with margin; write skipped".to_string());
            return out;
        }
        let froms: Vec<u32> = self
            .fleet
            .members
            .iter()
            .map(|m| m.read.unwrap_or(0))
            .collect();
        // Idle pods first: the pods of each cluster lowered get their deletion costs before
        // its count is written.
        out.steered = Box::pin(self.steer_scale_down(&plan.writes, readings)).await;
        // Every cluster written at once, each under its own deadline: a silent one never
        // holds back the others.
        let results = Box::pin(self.fleet.write_all(&plan.writes)).await;
        // (cluster, from, to) of each write made.
        let mut wrote: Vec<(String, u32, u32)> = Vec::new();
        for (i, (to, res)) in plan.writes.iter().zip(results).enumerate() {
            let (Some(to), Some(res)) = (*to, res) else {
                continue;
            };
            let (from, cluster) = (froms[i], self.fleet.name(i).to_string());
            match res {
                Ok(true) => wrote.push((cluster, from, to)),
                Ok(false) => {
                    tracing::info!(scaler = %self.key, target = %cfg.target, cluster, from, to, rule = %rule, "dry run: would scale");
                }
                Err(e) => {
                    let msg = e.to_string();
                    let note = format!("scaling {} to {to}: {e}", cfg.target);
                    self.note_target(i, Some((&msg, "ScaleFailed", note)), "scale failed");
                    out.error = Some(msg);
                }
            }
        }
        if wrote.is_empty() {
            return out;
        }
        let after = self.fleet.in_force();
        self.record_writes(cfg, current, after, &wrote, &rule);
        out.current = after;
        let at = jiff::Timestamp::now();
        self.last_scale_time = Some(at);
        out.scaled_at = Some(at.to_string());
        out
    }

    /// What was written: the history (windows, cooldown), the counters, a log line and one
    /// event for the tick, naming each cluster's change when the target is in several.
    fn record_writes(
        &mut self,
        cfg: &ScalerConfig,
        current: u32,
        after: u32,
        wrote: &[(String, u32, u32)],
        rule: &str,
    ) {
        self.history
            .record_scale(Instant::now(), current, after, &cfg.behavior);
        let labels = scaler_labels(&self.key);
        let (reason, verb) = match after.cmp(&current) {
            std::cmp::Ordering::Greater => {
                self.ctx.metrics.scale_up.get_or_create(&labels).inc();
                ("ScaledUp", "up")
            }
            std::cmp::Ordering::Less => {
                self.ctx.metrics.scale_down.get_or_create(&labels).inc();
                ("ScaledDown", "down")
            }
            // Shares moved between clusters, the total unchanged.
            std::cmp::Ordering::Equal => ("Rebalanced", "across clusters"),
        };
        let per_cluster = if self.fleet.placement().is_local() {
            String::new()
        } else {
            let moves: Vec<String> = wrote
                .iter()
                .map(|(c, from, to)| format!("{c} {from}→{to}"))
                .collect();
            format!(": {}", moves.join(", "))
        };
        tracing::info!(scaler = %self.key, target = %cfg.target, from = current, to = after, rule = %rule, clusters = %per_cluster.trim_start_matches(": "), "scaled");
        self.event(
            EventType::Normal,
            reason,
            "Scale",
            format!(
                "scaled {} {verb} from {current} to {after} ({rule}){per_cluster}",
                cfg.target
            ),
        );
    }

    /// Report: CR status, the view behind `/scalers` and the per-scaler gauges, and the
    /// status page's history.
    fn report(&self, d: &decide::Decision, views: Vec<TriggerView>, out: Outcome) {
        let clusters = self.cluster_views();
        // Not ready while another autoscaler holds the target (the TargetConflict condition
        // says which).
        let conflict = self.hpa_conflict().map(|m| format!("TargetConflict: {m}"));
        self.report_status(
            Some(out.current),
            Some(d.desired),
            &views,
            &clusters,
            Some(d),
            conflict.as_deref(),
        );
        let target = self.target_view();
        let sample = self.ctx.ui.then(|| self.sample(d, &views, &out));
        self.ctx.state.update(&self.key, |v| {
            if let Some(sample) = &sample {
                v.history.get_or_insert_default().record(sample);
            }
            v.leader = true;
            v.last_decision_time = Some(jiff::Timestamp::now());
            v.target = Some(target);
            v.current_replicas = Some(out.current);
            v.desired_replicas = Some(d.desired);
            v.active = d.active;
            v.triggers = views.into();
            v.clusters = clusters.into();
            v.error = out.error.or(conflict);
            // Boxed slices: kept for /scalers until the next tick, times 100,000 scalers, with
            // no spare capacity.
            v.decision = d.steps.as_slice().into();
            if !out.steered.is_empty() {
                v.scale_down = out.steered.into();
            }
            if out.scaled_at.is_some() {
                v.last_scale_time = out.scaled_at;
            }
        });
    }
    /// This tick for the status page's chart, on the agent's clock (its polling grid's).
    fn sample(&self, d: &decide::Decision, views: &[TriggerView], out: &Outcome) -> Sample {
        let at = tokio::time::Instant::now().saturating_duration_since(self.ctx.epoch);
        let with_capacity = self.cfg.triggers.iter().any(|t| t.capacity.is_some());
        let series = views.len() * if with_capacity { 2 } else { 1 };
        Sample {
            points: crate::state::history::points_per_series(self.ctx.state.len(), series),
            at: at.as_secs().min(u64::from(u32::MAX)) as u32,
            backlog: views.iter().map(|t| t.backlog.map(|b| b as f64)).collect(),
            utilization: if with_capacity {
                views
                    .iter()
                    .map(|t| t.capacity.as_ref().and_then(|c| c.utilization))
                    .collect()
            } else {
                Vec::new()
            },
            current: out.current,
            desired: d.desired,
            scaled: out
                .scaled_at
                .as_ref()
                .map(|_| (out.before, out.current, d.rule())),
            interval_secs: self.cfg.polling_interval.as_secs().min(u64::from(u32::MAX)) as u32,
        }
    }

    /// Events go on the TemporalScaler object; scalers from files have none.
    fn event(&self, type_: EventType, reason: &'static str, action: &'static str, note: String) {
        if self.key.source != SourceKind::Crd {
            return;
        }
        if let Some(sink) = &self.ctx.status {
            sink.send(StatusMsg::Event {
                key: self.key.clone(),
                event: EventReport {
                    type_,
                    reason,
                    action,
                    note,
                },
            });
        }
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use proptest::prelude::*;

    fn cfg(queue: &str, interval: u64) -> ScalerConfig {
        let yaml = format!(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  scaleTargetRef: {{name: w}}\n  pollingInterval: {interval}\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"t:7233\", taskQueue: \"{queue}\"}}\n"
        );
        crate::source::dir::parse_file(std::path::Path::new("s.yaml"), &yaml)
            .unwrap()
            .remove(0)
    }

    pub(super) fn sample_task() -> (Arc<Context>, ScalerKey, Versioned) {
        let ctx = Context::new(
            crate::target::Targets::Simulated,
            crate::guard::Guard::alone(),
        );
        let key = ScalerKey {
            source: crate::spec::SourceKind::Dir,
            namespace: "default".into(),
            name: "s".into(),
        };
        let v = Versioned {
            config: Arc::new(cfg("q", 15)),
            generation: None,
        };
        (ctx, key, v)
    }

    proptest! {
        #[test]
        fn the_next_poll_is_on_the_grid_within_one_period(
            now_ms in 0u64..10_000_000, offset_ms in 0u64..60_000, period_ms in 1u64..60_000,
        ) {
            let offset_ms = offset_ms % period_ms;
            let (now, offset, period) = (
                Duration::from_millis(now_ms),
                Duration::from_millis(offset_ms),
                Duration::from_millis(period_ms),
            );
            let next = next_poll(now, offset, period);
            prop_assert!(next > now);
            prop_assert!(next - now <= period);
            prop_assert_eq!((next - offset).as_nanos() % period.as_nanos(), 0);
        }
    }

    #[test]
    fn scalers_of_one_queue_share_a_phase_and_queues_spread_over_the_interval() {
        assert_eq!(
            poll_offset(&cfg("orders", 15)),
            poll_offset(&cfg("orders", 15))
        );
        // 2,000 queues over a 15 s interval, in 15 one-second buckets: none is crowded.
        let mut buckets = [0u32; 15];
        for i in 0..2000 {
            let off = poll_offset(&cfg(&format!("queue-{i}"), 15));
            assert!(off < Duration::from_secs(15));
            buckets[off.as_secs() as usize] += 1;
        }
        let mean = 2000 / 15;
        assert!(
            buckets.iter().all(|&b| b > mean / 2 && b < mean * 3 / 2),
            "{buckets:?}"
        );
    }
}

#[cfg(test)]
mod size_tests {
    use super::*;

    /// At start every scaler polls at once, and with 10,000 scalers most of them wait (for
    /// the rate limit, or for the shared RPC of their queue) inside a tick: the waiting state
    /// must be small, so the deep futures (credentials, RPC, `/scale`) are boxed where they run.
    fn sample_scaler() -> (Scaler, Versioned) {
        let (ctx, key, v) = super::schedule_tests::sample_task();
        (Scaler::new(key, ctx, v.config.clone(), 0), v)
    }

    #[tokio::test]
    async fn a_waiting_tick_is_small() {
        let (mut s, v) = sample_scaler();
        let ctx = s.ctx.clone();
        let tick = std::mem::size_of_val(&s.tick(std::future::pending()));
        let query = std::mem::size_of_val(&ctx.pool.query(&v.config.triggers[0]));
        let read = std::mem::size_of_val(
            &ctx.pool
                .read(&v.config.triggers[0], v.config.polling_interval),
        );
        eprintln!("tick future: {tick} bytes; query future: {query} bytes; read: {read} bytes");
        assert!(tick <= 1024, "tick future is {tick} bytes");
        assert!(query <= 512, "query future is {query} bytes");
        assert!(read <= 512, "read future is {read} bytes");
    }

    /// Thousands of scalers starting together: the first PROMPT_POLLS poll at once, the others
    /// at their grid slot (within one interval, on their queue's phase), and a poll that ends
    /// frees its place.
    #[tokio::test]
    async fn past_the_prompt_polls_a_scaler_polls_at_its_grid_slot() {
        let (s, v) = sample_scaler();
        let held: Vec<_> = (1..crate::context::PROMPT_POLLS)
            .map(|_| s.ctx.prompt_polls.clone().try_acquire_owned().unwrap())
            .collect();
        let now = tokio::time::Instant::now();
        let mut last = None;
        assert!(s.prompt(&mut last) <= tokio::time::Instant::now());
        assert!(last.is_some());
        let mut none = None;
        let at = s.prompt(&mut none);
        assert!(none.is_none());
        let interval = v.config.polling_interval;
        assert!(at > now && at - now <= interval, "{:?}", at - now);
        let phase = (at - s.ctx.epoch).as_nanos() % interval.as_nanos();
        assert_eq!(phase, poll_offset(&v.config).as_nanos());
        drop(last);
        let mut again = None;
        assert!(s.prompt(&mut again) <= tokio::time::Instant::now());
        drop(held);
    }
}
