//! Live scalers keyed by source/namespace/name: starts, updates and stops scaler loops as
//! sources change, and enforces one scaler per target (the later claimant is rejected).

use crate::agent::Context;
use crate::report::state::TargetView;
use crate::scaler::{self, ScalerHandle};
use crate::source::dir::DirSnapshot;
use crate::source::{ScalerKey, SourceKind};
use crate::spec::ScalerConfig;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

/// A workload's identity: the version is left out, as two versions name one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct TargetId {
    namespace: String,
    group: String,
    kind: String,
    name: String,
}

fn target_id(cfg: &ScalerConfig) -> TargetId {
    TargetId {
        namespace: cfg.namespace.clone(),
        group: cfg.target.group_version().0.to_string(),
        kind: cfg.target.kind.clone(),
        name: cfg.target.name.clone(),
    }
}

struct Entry {
    config: Arc<ScalerConfig>,
    file: Option<PathBuf>,
}

struct Running {
    entry: Entry,
    handle: ScalerHandle,
}

pub struct Registry {
    ctx: Arc<Context>,
    running: BTreeMap<ScalerKey, Running>,
    /// Wanted but rejected (target conflict); retried whenever a scaler stops.
    rejected: BTreeMap<ScalerKey, Entry>,
}

impl Registry {
    pub fn new(ctx: Arc<Context>) -> Self {
        Registry {
            ctx,
            running: BTreeMap::new(),
            rejected: BTreeMap::new(),
        }
    }

    pub fn running_keys(&self) -> Vec<ScalerKey> {
        self.running.keys().cloned().collect()
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
            self.upsert(
                s.key.clone(),
                Arc::new(s.config.clone()),
                Some(s.file.clone()),
            );
            let config_error = snap.errors.get(&s.file).map(|errs| {
                let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                format!(
                    "running the last good version; current file is invalid: {}",
                    msgs.join("; ")
                )
            });
            self.ctx
                .state
                .update(&s.key, |v| v.config_error = config_error);
        }
    }

    /// Start a scaler, or hand a changed spec to the running one (keeping its history).
    pub fn upsert(&mut self, key: ScalerKey, config: Arc<ScalerConfig>, file: Option<PathBuf>) {
        let tid = target_id(&config);
        if let Some(other) = self
            .running
            .iter()
            .find(|(k, r)| **k != key && target_id(&r.entry.config) == tid)
            .map(|(k, r)| (k.clone(), r.entry.file.clone()))
        {
            // The target belongs to a scaler that came first.
            if self.running.contains_key(&key) {
                self.stop(&key);
            }
            let (other_key, other_file) = other;
            let where_ = other_file
                .map(|f| format!(" (file {})", f.display()))
                .unwrap_or_default();
            let msg = format!(
                "TargetConflict: {} {}/{} is already scaled by {other_key}{where_}",
                config.target.kind, config.namespace, config.target.name
            );
            tracing::warn!(scaler = %key, "{msg}");
            self.ctx.state.update(&key, |v| {
                v.file = file.clone();
                v.target = Some(TargetView {
                    api_version: config.target.api_version.clone(),
                    kind: config.target.kind.clone(),
                    name: config.target.name.clone(),
                });
                v.error = Some(msg);
            });
            self.rejected.insert(key, Entry { config, file });
            return;
        }
        self.rejected.remove(&key);
        if let Some(r) = self.running.get_mut(&key) {
            r.entry.file = file;
            if r.entry.config != config {
                r.entry.config = config.clone();
                r.handle.config.send_replace(config);
            }
            return;
        }
        tracing::info!(scaler = %key, target = %config.target, "scaler started");
        self.ctx.state.update(&key, |v| {
            v.error = None;
            v.file = file.clone();
        });
        let handle = scaler::spawn(key.clone(), config.clone(), file.clone(), self.ctx.clone());
        self.running.insert(
            key,
            Running {
                entry: Entry { config, file },
                handle,
            },
        );
    }

    /// Stop and forget a scaler; a rejected one may now take its target.
    pub fn remove(&mut self, key: &ScalerKey) {
        self.rejected.remove(key);
        self.stop(key);
        self.ctx.state.remove(key);
        self.retry_rejected();
    }

    fn stop(&mut self, key: &ScalerKey) {
        if let Some(r) = self.running.remove(key) {
            drop(r.handle);
            tracing::info!(scaler = %key, "scaler stopped");
            let m = &self.ctx.metrics;
            let labels = scaler::scaler_labels(key);
            m.desired.remove(&labels);
            m.current.remove(&labels);
            for t in &r.entry.config.triggers {
                let ql = scaler::queue_labels(&r.entry.config, t);
                m.queue_size.remove(&ql);
                m.backlog_age.remove(&ql);
            }
        }
    }

    fn retry_rejected(&mut self) {
        let pending: Vec<(ScalerKey, Entry)> =
            std::mem::take(&mut self.rejected).into_iter().collect();
        for (k, e) in pending {
            self.upsert(k, e.config, e.file);
        }
    }
}
