//! Live scalers keyed by source/namespace/name: starts, updates and stops scaler loops as the
//! sources (config directory, custom resources) change, and enforces one scaler per target
//! (the later claimant is rejected with `TargetConflict`).

use crate::context::Context;
use crate::report::status::{Cond, EventReport, EventType, StatusMsg, StatusReport};
use crate::scaler::{self, ScalerHandle, Versioned};
use crate::source::crd::{CrEvent, CrObject};
use crate::source::dir::DirSnapshot;
use crate::spec::{ScalerConfig, TemporalScalerStatus};
use crate::spec::{ScalerKey, SourceKind};
use crate::state::TargetView;
use std::collections::HashMap;
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// A workload's identity: cluster, namespace, API group, kind and name of a config's target
/// (the version is left out, as two versions name one object); a placement's target is one
/// workload per cluster (the index of the cluster in the placement). It shares the config
/// instead of copying five strings per scaler.
#[derive(Clone, Debug)]
struct TargetId(Arc<ScalerConfig>, usize);

impl TargetId {
    fn parts(&self) -> (&str, &str, &str, &str, &str) {
        let c = &self.0;
        (
            c.placement
                .clusters
                .get(self.1)
                .map_or("", |p| p.name.as_ref()),
            &c.namespace,
            c.target.group_version().0,
            &c.target.kind,
            &c.target.name,
        )
    }
}

impl PartialEq for TargetId {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for TargetId {}

impl std::hash::Hash for TargetId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

/// `tid` is owned by the scaler of its config with `source`. The old entry is removed first:
/// `insert` would keep the old key, and with it another config (and so another owner).
fn own(owners: &mut HashMap<TargetId, SourceKind>, tid: TargetId, source: SourceKind) {
    owners.remove(&tid);
    owners.insert(tid, source);
}

/// One per cluster of the target.
fn target_ids(cfg: &Arc<ScalerConfig>) -> Vec<TargetId> {
    (0..cfg.placement.clusters.len().max(1))
        .map(|i| TargetId(cfg.clone(), i))
        .collect()
}

fn target_view(cfg: &ScalerConfig) -> TargetView {
    cfg.target.clone()
}

struct Running {
    wanted: Versioned,
    file: Option<Arc<Path>>,
    handle: ScalerHandle,
}

/// A CR the registry cannot run, and why (re-reported when this replica gains the lease).
struct Problem {
    generation: i64,
    reason: &'static str,
    message: String,
}

/// What an invalid or conflicting CR gets as status (Ready=False with the reason).
pub fn problem_status(generation: i64, reason: &str, message: &str) -> StatusReport {
    StatusReport {
        generation,
        status: TemporalScalerStatus::default(),
        conditions: vec![
            Cond::new("Ready", false, reason, message),
            Cond::new(
                "Active",
                false,
                "ScalerNotActive",
                "the scaler is not running",
            ),
            Cond::new("Fallback", false, "FallbackNotActive", ""),
            Cond::new("Paused", false, "NotPaused", ""),
        ],
    }
}

pub struct Registry {
    ctx: Arc<Context>,
    running: BTreeMap<ScalerKey, Running>,
    /// Wanted but rejected (target conflict); retried whenever a scaler stops.
    rejected: BTreeMap<ScalerKey, (Versioned, Option<Arc<Path>>)>,
    /// Last applied (uid, generation, config) per CR, so status-only updates do nothing.
    cr_seen: BTreeMap<ScalerKey, (String, i64, Result<ScalerConfig, String>)>,
    problems: BTreeMap<ScalerKey, Problem>,
    /// Which running scaler owns each target: conflicts are found without a scan (10,000
    /// scalers are re-applied on every directory snapshot). The owner is the key's config's
    /// scaler with this source (its namespace and name): 32 bytes less an entry than its
    /// `ScalerKey` (4 MB at 100,000 scalers). Always removed before inserted (`own`).
    owners: HashMap<TargetId, SourceKind>,
    /// How many were running when `running` was last rebuilt compact.
    compacted_at: usize,
    /// The custom resources' specs' shared strings (namespaces, trigger names, task queues).
    strings: crate::intern::Pool,
}

impl Registry {
    pub fn new(ctx: Arc<Context>) -> Self {
        Registry {
            ctx,
            running: BTreeMap::new(),
            rejected: BTreeMap::new(),
            cr_seen: BTreeMap::new(),
            problems: BTreeMap::new(),
            owners: HashMap::new(),
            compacted_at: 0,
            strings: Default::default(),
        }
    }

    pub fn running_keys(&self) -> Vec<ScalerKey> {
        self.running.keys().cloned().collect()
    }

    /// Feed the registry from the sources until both are gone.
    pub async fn run(
        mut self,
        mut dir: Option<crate::latest::Receiver<DirSnapshot>>,
        mut crs: Option<mpsc::Receiver<CrEvent>>,
    ) {
        let mut leader = self.ctx.guard.subscribe();
        loop {
            tokio::select! {
                snap = async { dir.as_mut()?.recv().await }, if dir.is_some() => {
                    match snap {
                        Some(snap) => self.apply_dir(&snap),
                        None => dir = None,
                    }
                }
                ev = async { crs.as_mut()?.recv().await }, if crs.is_some() => {
                    match ev {
                        Some(ev) => self.apply_cr(ev),
                        None => crs = None,
                    }
                }
                changed = leader.changed() => {
                    if changed.is_err() { return; }
                    // Every scaler acts (or reports) at once, within the prompt polls.
                    for r in self.running.values() {
                        r.handle.lease_changed();
                    }
                    if leader.borrow_and_update().leader {
                        self.report_problems();
                    }
                }
            }
            if dir.is_none() && crs.is_none() {
                return;
            }
        }
    }

    /// Make the directory's scalers the ones running for the `dir` source.
    pub fn apply_dir(&mut self, snap: &DirSnapshot) {
        let wanted: HashSet<&ScalerKey> = snap.scalers.iter().map(|s| &s.key).collect();
        let gone: Vec<ScalerKey> = self
            .running
            .keys()
            .chain(self.rejected.keys())
            .filter(|k| k.source == SourceKind::Dir && !wanted.contains(k))
            .cloned()
            .collect();
        for k in gone {
            self.remove(&k);
        }
        self.ctx.state.set_file_errors(
            snap.errors
                .iter()
                .map(|(f, errs)| {
                    (
                        f.clone(),
                        errs.iter()
                            .map(|e| e.to_string())
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })
                .collect(),
        );
        for s in &snap.scalers {
            let wanted = Versioned {
                config: s.config.clone(),
                generation: None,
            };
            self.upsert(s.key.clone(), wanted, Some(s.file.clone()));
            let config_error = snap.errors.get(&*s.file).map(|errs| {
                let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                format!(
                    "running the last good version; current file is invalid: {}",
                    msgs.join("; ")
                )
            });
            self.ctx.state.update(&s.key, |v| {
                v.config_error = config_error.map(String::into_boxed_str)
            });
        }
        // Many scalers were just added in key order, which leaves each B-tree node about half
        // full: built again from the sorted entries, the nodes are full (nearly half the
        // space of the two maps). Only after a directory's worth of new scalers.
        if self.running.len() >= self.compacted_at + self.compacted_at / 4 + 1024 {
            self.running = std::mem::take(&mut self.running).into_iter().collect();
            self.ctx.state.compact();
            self.compacted_at = self.running.len();
        }
    }

    pub fn apply_cr(&mut self, ev: CrEvent) {
        match ev {
            CrEvent::Apply(obj) => self.apply_cr_object(*obj),
            CrEvent::Delete(key) => self.remove(&key),
            CrEvent::Resync { namespace, keys } => {
                let gone: Vec<ScalerKey> = self
                    .cr_seen
                    .keys()
                    .filter(|k| {
                        namespace.as_ref().is_none_or(|ns| *k.namespace == **ns)
                            && !keys.contains(k)
                    })
                    .cloned()
                    .collect();
                for k in gone {
                    self.remove(&k);
                }
            }
        }
    }

    fn apply_cr_object(&mut self, obj: CrObject) {
        let CrObject {
            key,
            uid,
            generation,
            config,
            conditions,
            learned,
        } = obj;
        // Kept in the status: what a new leader, or a restarted agent, starts from.
        self.ctx.state.seed_learned(&key, learned);
        let config = config.map(|mut c| {
            self.strings.share_config(&mut c);
            c
        });
        let seen = (uid.clone(), generation, config.clone());
        if self.cr_seen.get(&key) == Some(&seen) {
            return; // a status-only (or metadata-only) change
        }
        if self
            .cr_seen
            .get(&key)
            .is_some_and(|(old_uid, ..)| *old_uid != uid)
        {
            self.remove(&key); // deleted and re-created under the same name
        }
        self.cr_seen.insert(key.clone(), seen);
        if let Some(sink) = &self.ctx.status {
            sink.send(StatusMsg::Seen {
                key: key.clone(),
                uid,
                conditions,
            });
        }
        match config {
            Ok(cfg) => {
                self.problems.remove(&key);
                self.upsert(
                    key,
                    Versioned {
                        config: Arc::new(cfg),
                        generation: Some(generation),
                    },
                    None,
                );
            }
            Err(msg) => {
                tracing::warn!(scaler = %key, error = %msg, "invalid TemporalScaler");
                self.rejected.remove(&key);
                self.stop(&key);
                self.ctx
                    .state
                    .update(&key, |v| v.error = Some(format!("InvalidSpec: {msg}")));
                self.set_problem(&key, generation, "InvalidSpec", msg);
                self.retry_rejected();
            }
        }
    }

    fn set_problem(
        &mut self,
        key: &ScalerKey,
        generation: i64,
        reason: &'static str,
        message: String,
    ) {
        if key.source != SourceKind::Crd {
            return;
        }
        let problem = Problem {
            generation,
            reason,
            message,
        };
        let known = self.problems.get(key).is_some_and(|p| {
            (p.generation, p.reason, &p.message)
                == (problem.generation, problem.reason, &problem.message)
        });
        if !known {
            // A rejected scaler is re-checked whenever another stops: report each problem once.
            self.report_problem(key, &problem);
        }
        self.problems.insert(key.clone(), problem);
    }

    fn report_problem(&self, key: &ScalerKey, p: &Problem) {
        let Some(sink) = &self.ctx.status else { return };
        sink.send(StatusMsg::Status {
            key: key.clone(),
            report: problem_status(p.generation, p.reason, &p.message),
            min_interval: Duration::ZERO,
        });
        sink.send(StatusMsg::Event {
            key: key.clone(),
            event: EventReport {
                type_: EventType::Warning,
                reason: p.reason,
                action: "Validate",
                note: p.message.clone(),
            },
        });
    }

    /// A replica that gains the lease reports the standing problems (events are leader-only).
    fn report_problems(&self) {
        for (key, p) in &self.problems {
            self.report_problem(key, p);
        }
    }

    /// The running scaler that owns a target, if any.
    fn owner(&self, tid: &TargetId) -> Option<ScalerKey> {
        let (owned, source) = self.owners.get_key_value(tid)?;
        let c = &owned.0;
        Some(ScalerKey::new(*source, c.namespace.clone(), c.name.clone()))
    }

    /// Start a scaler, or hand a changed spec to the running one (keeping its history).
    pub fn upsert(&mut self, key: ScalerKey, wanted: Versioned, file: Option<Arc<Path>>) {
        // The owner index names a scaler by its spec's namespace and name (`owner`).
        debug_assert!(
            *key.namespace == *wanted.config.namespace && *key.name == *wanted.config.name,
            "{key} holds a spec of {}/{}",
            wanted.config.namespace,
            wanted.config.name
        );
        let tids = target_ids(&wanted.config);
        let owner = tids
            .iter()
            .find_map(|tid| {
                let k = self.owner(tid).filter(|k| *k != key)?;
                Some((tid.parts().0, k))
            })
            .map(|(cluster, k)| {
                let file = self.running.get(&k).and_then(|r| r.file.clone());
                (cluster.to_string(), k, file)
            });
        if let Some((cluster, other_key, other_file)) = owner {
            // The target belongs to a scaler that came first.
            self.stop(&key);
            let where_ = other_file
                .map(|f| format!(" (file {})", f.display()))
                .unwrap_or_default();
            let cfg = &wanted.config;
            let in_cluster = if cluster == crate::spec::LOCAL {
                String::new()
            } else {
                format!(" in cluster {cluster}")
            };
            let msg = format!(
                "{} {}/{}{in_cluster} is already scaled by {other_key}{where_}",
                cfg.target.kind, cfg.namespace, cfg.target.name
            );
            tracing::warn!(scaler = %key, "TargetConflict: {msg}");
            self.ctx.state.update(&key, |v| {
                v.file = file.clone();
                v.target = Some(target_view(cfg));
                v.error = Some(format!("TargetConflict: {msg}"));
            });
            if let Some(generation) = wanted.generation {
                self.set_problem(&key, generation, "TargetConflict", msg);
            }
            self.rejected.insert(key, (wanted, file));
            return;
        }
        self.rejected.remove(&key);
        self.problems.remove(&key);
        if let Some(r) = self.running.get_mut(&key) {
            r.file = file;
            if r.wanted != wanted {
                // Removed and inserted even for the same target: the index's key holds the
                // config, and `insert` would keep the old one alive.
                for old in target_ids(&r.wanted.config) {
                    self.owners.remove(&old);
                }
                for tid in tids {
                    own(&mut self.owners, tid, key.source);
                }
                r.wanted = wanted.clone();
                r.handle.update(wanted);
            }
            return;
        }
        tracing::info!(scaler = %key, target = %wanted.config.target, "scaler started");
        self.ctx.state.update(&key, |v| {
            v.error = None;
            v.file = file.clone();
        });
        let handle = scaler::spawn(key.clone(), wanted.clone(), file.clone(), self.ctx.clone());
        for tid in tids {
            own(&mut self.owners, tid, key.source);
        }
        self.running.insert(
            key,
            Running {
                wanted,
                file,
                handle,
            },
        );
    }

    /// Stop and forget a scaler; a rejected one may now take its target.
    pub fn remove(&mut self, key: &ScalerKey) {
        self.rejected.remove(key);
        self.problems.remove(key);
        if self.cr_seen.remove(key).is_some()
            && let Some(sink) = &self.ctx.status
        {
            sink.send(StatusMsg::Forget(key.clone()));
        }
        self.stop(key);
        self.ctx.state.remove(key);
        self.retry_rejected();
    }

    fn stop(&mut self, key: &ScalerKey) {
        if let Some(r) = self.running.remove(key) {
            for tid in target_ids(&r.wanted.config) {
                if self.owner(&tid).as_ref() == Some(key) {
                    self.owners.remove(&tid);
                }
            }
            drop(r.handle);
            tracing::info!(scaler = %key, "scaler stopped");
            // A stopped scaler decides nothing: its figures (and so its gauges, which are
            // read from the view) go; its counters go here, so no series is left behind.
            self.ctx.state.update(key, |v| {
                v.current_replicas = None;
                v.desired_replicas = None;
                v.active = false;
                v.triggers = Box::default();
                v.decision = Box::default();
                v.trigger_errors = Box::default();
            });
            let m = &self.ctx.metrics;
            let labels = scaler::scaler_labels(key);
            m.scale_up.remove(&labels);
            m.scale_down.remove(&labels);
        }
    }

    fn retry_rejected(&mut self) {
        let pending: Vec<_> = std::mem::take(&mut self.rejected).into_iter().collect();
        for (k, (wanted, file)) in pending {
            self.upsert(k, wanted, file);
        }
    }
}
