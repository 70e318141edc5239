//! What the agent remembers of its scalers: the live view of every scaler, served at
//! `/scalers` and awaited by tests, and each one's recent [`history`] (the status page's chart).
//! Each change bumps a version on a watch channel, so readers wait for events instead of
//! sleeping. The web layer reads it; nothing here knows the web layer exists.

pub mod history;

use crate::spec::{ScalerKey, SourceKind};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use tokio::sync::watch;

/// The scaler's target: its spec's, shared.
pub type TargetView = Arc<crate::spec::TargetRef>;

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerView {
    /// The trigger's spec's, shared with it.
    pub name: Arc<str>,
    pub temporal_namespace: Arc<str>,
    pub task_queue: Arc<str>,
    pub backlog: Option<u64>,
    pub backlog_age_seconds: Option<f64>,
    pub tasks_add_rate: Option<f64>,
    pub tasks_dispatch_rate: Option<f64>,
    pub rate_limited: Option<bool>,
    pub recommended_replicas: Option<u32>,
    /// Which signal set the recommendation (backlog, growth, backlogAge, rateLimited, …).
    pub basis: Option<crate::decide::Basis>,
    pub running_workflows: Option<u64>,
    /// The selected Worker Deployment version's status (per-version bounds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_status: Option<crate::decide::version::VersionStatus>,
    pub active: bool,
    /// Shared with every view that holds the same message (`crate::intern`).
    pub error: Option<Arc<str>>,
    /// The worker-capacity signal (`targetSlotUtilization`); boxed, as most triggers have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Box<CapacityView>>,
    /// The Schedules on the queue (`scheduleLeadSeconds`): each one's next action.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<ScheduleView>,
}

/// A Schedule on a trigger's queue, for `/scalers`, `explain` and the status page.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleView {
    pub id: String,
    /// Its next action (RFC 3339), if it has one.
    pub next_action_time: Option<String>,
    /// Seconds from this tick to it.
    pub next_action_in_seconds: Option<f64>,
    pub paused: bool,
    /// What the scaler needed during its last run, once learned.
    pub learned_replicas: Option<u32>,
}

/// What the workers' heartbeats said this tick, for `/scalers`, status and metrics.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityView {
    /// `targetSlotUtilization`.
    pub target_utilization: f64,
    /// Distinct hosts reporting: the replica basis.
    pub hosts: u32,
    /// Workers counted (RUNNING, recent heartbeat), and those left out.
    pub workers: u32,
    pub ignored_workers: u32,
    /// Slots in use and free over the trigger's slot kinds (free: known bounds only).
    pub slots_used: u64,
    pub slots_available: u64,
    /// The most constrained slot kind's utilization, and that kind.
    pub utilization: Option<f64>,
    pub constrained_kind: Option<crate::decide::capacity::SlotKind>,
    /// Hosts with slots in use (for a StatefulSet, at least its highest busy ordinal + 1): the
    /// fewest replicas while they are busy.
    pub busy_floor: u32,
    /// For a StatefulSet target: the highest ordinal with slots in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub highest_busy_ordinal: Option<u32>,
    /// Set when the server cannot give the signal (the trigger scales on its backlog).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

impl CapacityView {
    pub fn fill(&mut self, c: &crate::decide::capacity::Capacity) {
        self.hosts = c.hosts;
        self.workers = c.workers;
        self.ignored_workers = c.ignored;
        self.slots_used = c.used;
        self.slots_available = c.available;
        self.utilization = c.utilization;
        self.constrained_kind = c.constrained;
        self.busy_floor = c.busy_floor;
        self.highest_busy_ordinal = c.highest_busy_ordinal;
    }

    /// The CR status form: utilization to two decimals, so a jitter is not a status write.
    pub fn status(&self) -> crate::spec::CapacityStatus {
        crate::spec::CapacityStatus {
            hosts: self.hosts as i32,
            slots_used: self.slots_used.min(i64::MAX as u64) as i64,
            slots_available: self.slots_available.min(i64::MAX as u64) as i64,
            utilization: self.utilization.map(|u| (u * 100.0).round() / 100.0),
            unavailable: self.unavailable.clone(),
        }
    }
}

/// One cluster of a scaler's target (a placement's, or the one remote cluster).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    pub name: String,
    pub weight: u32,
    pub min_replica_count: u32,
    pub max_replica_count: u32,
    /// The replicas the last decision placed here.
    pub share: Option<u32>,
    /// As last read from its `/scale`.
    pub current_replicas: Option<u32>,
    /// Fewer than `failureThreshold` failed reads in a row (a lasting error: none).
    pub reachable: bool,
    /// Failed reads in a row.
    pub failures: u32,
    pub error: Option<String>,
}

impl ClusterView {
    /// Two clusters after the second became unreachable (its share moved to the first): a
    /// fixture for the views' readers.
    #[cfg(test)]
    pub fn two_one_down() -> Vec<ClusterView> {
        vec![
            ClusterView {
                name: "local".into(),
                share: Some(6),
                current_replicas: Some(6),
                reachable: true,
                ..Default::default()
            },
            ClusterView {
                name: "eu".into(),
                share: Some(0),
                current_replicas: Some(2),
                reachable: false,
                error: Some("<refused>".into()),
                ..Default::default()
            },
        ]
    }

    pub fn status(&self) -> crate::spec::ClusterStatus {
        crate::spec::ClusterStatus {
            name: self.name.clone(),
            share: self.share.unwrap_or(0).min(i32::MAX as u32) as i32,
            current_replicas: self.current_replicas.map(|n| n.min(i32::MAX as u32) as i32),
            reachable: self.reachable,
            last_error: self.error.clone(),
        }
    }
}

/// One object of `/scalers`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalerView {
    pub source: SourceKind,
    /// The key's, shared with it.
    pub namespace: Option<Arc<str>>,
    pub name: Option<Arc<str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<Arc<Path>>,
    pub target: Option<TargetView>,
    pub current_replicas: Option<u32>,
    pub desired_replicas: Option<u32>,
    pub active: bool,
    /// RFC 3339.
    pub last_scale_time: Option<String>,
    /// When the scaler last decided (RFC 3339): one that falls behind its interval shows here.
    #[serde(serialize_with = "rfc3339")]
    pub last_decision_time: Option<jiff::Timestamp>,
    /// Boxed slices, not vectors, here and below: a view is kept per scaler (100,000 of them),
    /// and 8 bytes less on each of five fields fit it in 256 bytes, not 320.
    pub triggers: Box<[TriggerView]>,
    /// Each cluster of the target, unless it is only the agent's own.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub clusters: Box<[ClusterView]>,
    /// Why this scaler is not running or not scaling (config, conflict, target errors).
    pub error: Option<String>,
    /// Errors in the current version of its file; the scaler runs its last good version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_error: Option<Box<str>>,
    pub leader: bool,
    pub dry_run: bool,
    /// The decision walk of the last tick: rule and value after it.
    pub decision: Box<[crate::decide::Step]>,
    /// The last hour, for the status page's chart (not in `/scalers`); `None` with `--ui=false`
    /// or before the first decision. Boxed: most of a view's readers never look at it.
    #[serde(skip)]
    pub history: Option<Box<history::History>>,
    /// The last scale-down's pods, per cluster lowered: which were busy and kept, which idle
    /// (idle pods first).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub scale_down: Box<[ScaleDownView]>,
    /// Failed reads per trigger and kind since the scaler started: the counter
    /// `temporal_scaler_trigger_errors_total`, written at scrape time from here as the gauges
    /// are (a metric family kept a labelled series per scaler, 100,000 of them on a saturated
    /// server). Not in `/scalers`.
    #[serde(skip)]
    pub trigger_errors: Box<[ErrorCount]>,
}

/// Failed reads of one trigger, of one kind.
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorCount {
    /// The trigger's spec's name, shared with it.
    pub trigger: Arc<str>,
    /// `ErrorKind::as_str` of the read's error.
    pub kind: &'static str,
    pub count: u64,
}

/// The pods of one cluster's target before a scale-down, as the agent ranked them.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDownView {
    pub cluster: String,
    /// Pods of the target (not being deleted).
    pub pods: u32,
    /// Busy pods (slots in use), which the ReplicaSet keeps longest.
    pub busy: Vec<BusyPod>,
    /// Pods with no slot in use, removed first.
    pub idle: u32,
    /// Deletion costs written before the scale-down.
    pub costs_written: u32,
    /// No pod is a worker host (nothing was steered): why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unmatched: Option<String>,
    /// Listing the pods or writing a cost failed (the scale-down went on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BusyPod {
    pub pod: String,
    pub slots_used: u32,
}

impl ScalerView {
    pub fn new(key: &ScalerKey) -> Self {
        ScalerView {
            source: key.source,
            namespace: Some(key.namespace.clone()),
            name: Some(key.name.clone()),
            file: None,
            target: None,
            current_replicas: None,
            desired_replicas: None,
            active: false,
            last_scale_time: None,
            last_decision_time: None,
            triggers: Box::default(),
            clusters: Box::default(),
            error: None,
            config_error: None,
            leader: false,
            dry_run: false,
            decision: Box::default(),
            history: None,
            scale_down: Box::default(),
            trigger_errors: Box::default(),
        }
    }

    /// One more failed read of `trigger`, of `kind`. The slice is exact: most scalers never
    /// fail, and those that do fail in a kind or two.
    pub fn count_trigger_error(&mut self, trigger: &Arc<str>, kind: &'static str) {
        if let Some(c) = self
            .trigger_errors
            .iter_mut()
            .find(|c| c.trigger == *trigger && c.kind == kind)
        {
            c.count += 1;
            return;
        }
        let mut all = std::mem::take(&mut self.trigger_errors).into_vec();
        all.push(ErrorCount {
            trigger: trigger.clone(),
            kind,
            count: 1,
        });
        self.trigger_errors = all.into_boxed_slice();
    }

    /// Something is wrong: the scaler, its config file, one of its triggers' reads, or one of
    /// its clusters.
    pub fn failing(&self) -> bool {
        self.error.is_some()
            || self.config_error.is_some()
            || self.triggers.iter().any(|t| t.error.is_some())
            || self.clusters.iter().any(|c| !c.reachable)
    }
}

/// The config directory's last load that changed something (or the first), for the status
/// page. A periodic re-read that finds nothing new is not a load.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigLoad {
    pub dir: PathBuf,
    pub loaded_at: jiff::Timestamp,
    /// `applied` or `rejected` (some file failed), as in the reload metric.
    pub result: &'static str,
    pub scalers: usize,
    /// Every error of the current files (each names its file), up to [`ConfigLoad::MAX_ERRORS`].
    pub errors: Vec<String>,
    /// Errors beyond those kept.
    pub more_errors: usize,
}

impl ConfigLoad {
    /// Errors kept for the page: enough to act on, bounded for a directory of broken files.
    pub const MAX_ERRORS: usize = 50;
}

#[derive(Default)]
struct Inner {
    /// Boxed: keys are inserted in order, which leaves B-tree nodes half full, and a view is
    /// several hundred bytes; half-empty slots of a pointer cost little (10,000 scalers).
    scalers: BTreeMap<ScalerKey, Box<ScalerView>>,
    /// Files that fail and have no last good version, so no scaler represents them.
    file_errors: BTreeMap<PathBuf, String>,
    config_load: Option<ConfigLoad>,
    /// What each scaler learned of its schedules' runs (the Schedules signal): seeded from
    /// where it was kept (a custom resource's status, the Lease), kept there again on change.
    learned: BTreeMap<ScalerKey, Learned>,
}

/// A scaler's learned schedules, by `<temporal namespace>/<schedule id>`.
pub type Learned = BTreeMap<String, crate::decide::schedule::Learned>;

fn rfc3339<S: serde::Serializer>(t: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.collect_str(t),
        None => s.serialize_none(),
    }
}

#[derive(Clone)]
pub struct StateStore {
    inner: Arc<RwLock<Inner>>,
    version: Arc<watch::Sender<u64>>,
}

impl Default for StateStore {
    fn default() -> Self {
        Self::new()
    }
}

impl StateStore {
    pub fn new() -> Self {
        StateStore {
            inner: Arc::default(),
            version: Arc::new(watch::channel(0).0),
        }
    }

    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    pub fn update(&self, key: &ScalerKey, f: impl FnOnce(&mut ScalerView)) {
        {
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            let view = inner
                .scalers
                .entry(key.clone())
                .or_insert_with(|| Box::new(ScalerView::new(key)));
            f(view);
        }
        self.bump();
    }

    /// Rebuild the views' map from its sorted entries, with full nodes (see
    /// `Registry::apply_dir`: many views were just added in key order).
    pub fn compact(&self) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        inner.scalers = std::mem::take(&mut inner.scalers).into_iter().collect();
    }

    pub fn remove(&self, key: &ScalerKey) {
        {
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            inner.scalers.remove(key);
            inner.learned.remove(key);
        }
        self.bump();
    }

    /// What `key` learned of its schedules, as kept.
    pub fn learned(&self, key: &ScalerKey) -> Learned {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.learned.get(key).cloned().unwrap_or_default()
    }

    /// Seed what `key` learned from where it was kept: per schedule, the later run wins (a
    /// follower follows the leader's learning; the agent's own newer runs are kept).
    pub fn seed_learned(&self, key: &ScalerKey, learned: Learned) {
        if learned.is_empty() {
            return;
        }
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let mine = inner.learned.entry(key.clone()).or_default();
        for (schedule, run) in learned {
            match mine.get(&schedule) {
                Some(m) if m.action_at >= run.action_at => {}
                _ => {
                    mine.insert(schedule, run);
                }
            }
        }
    }

    pub fn set_learned(&self, key: &ScalerKey, learned: Learned) {
        let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
        if learned.is_empty() {
            inner.learned.remove(key);
        } else {
            inner.learned.insert(key.clone(), learned);
        }
    }

    /// Every scaler's learned schedules (for the Lease of config-directory scalers).
    pub fn all_learned(&self) -> BTreeMap<ScalerKey, Learned> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        inner.learned.clone()
    }

    pub fn set_file_errors(&self, errors: BTreeMap<PathBuf, String>) {
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .file_errors = errors;
        self.bump();
    }

    /// Note a load of the config directory.
    pub fn note_config_load(
        &self,
        dir: &std::path::Path,
        result: &'static str,
        scalers: usize,
        errors: impl Iterator<Item = String>,
    ) {
        let mut kept = Vec::new();
        let mut more = 0;
        for e in errors {
            if kept.len() < ConfigLoad::MAX_ERRORS {
                kept.push(e);
            } else {
                more += 1;
            }
        }
        self.inner
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .config_load = Some(ConfigLoad {
            dir: dir.to_path_buf(),
            loaded_at: jiff::Timestamp::now(),
            result,
            scalers,
            errors: kept,
            more_errors: more,
        });
    }

    pub fn config_load(&self) -> Option<ConfigLoad> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .config_load
            .clone()
    }

    /// Broken files that no scaler represents (listed in `/scalers` as entries of their own).
    pub fn broken_files(&self) -> Vec<(PathBuf, String)> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        Self::file_entries(&inner)
            .into_iter()
            .filter_map(|v| Some((v.file?.to_path_buf(), v.error?)))
            .collect()
    }

    /// Scalers in the view (broken files aside).
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .scalers
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, key: &ScalerKey) -> Option<ScalerView> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .scalers
            .get(key)
            .map(|v| ScalerView::clone(v))
    }

    /// Every scaler, then one entry per broken file that has no scaler to carry its error.
    pub fn list(&self) -> Vec<ScalerView> {
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let mut out: Vec<_> = inner
            .scalers
            .values()
            .map(|v| ScalerView::clone(v))
            .collect();
        out.extend(Self::file_entries(&inner));
        out
    }

    /// `list()` as JSON, narrowed by `keep`, in one buffer (see [`JsonListing`] for pages).
    pub fn list_json(&self, keep: impl Fn(&ScalerView) -> bool) -> Vec<u8> {
        self.json_pages(keep).flatten().collect()
    }

    /// `list()` as JSON, narrowed by `keep`, in pages of [`JsonListing::PAGE`] views.
    pub fn json_pages<F: Fn(&ScalerView) -> bool>(&self, keep: F) -> JsonListing<F> {
        JsonListing {
            store: self.clone(),
            keep,
            next: Next::First,
            any: false,
        }
    }

    /// Entries for broken files that no scaler represents.
    fn file_entries(inner: &Inner) -> Vec<ScalerView> {
        // Most listings have no broken file: no set of every scaler's file (2 MB at 100,000
        // scalers, for each `/scalers`).
        if inner.file_errors.is_empty() {
            return Vec::new();
        }
        let carried: std::collections::HashSet<&Path> = inner
            .scalers
            .values()
            .filter_map(|v| v.file.as_deref())
            .collect();
        inner
            .file_errors
            .iter()
            .filter(|(file, _)| !carried.contains(file.as_path()))
            .map(|(file, err)| {
                let mut v = ScalerView::new(&ScalerKey {
                    source: SourceKind::Dir,
                    namespace: "".into(),
                    name: "".into(),
                });
                v.namespace = None;
                v.name = None;
                v.file = Some(Arc::from(file.as_path()));
                v.error = Some(err.clone());
                v
            })
            .collect()
    }

    /// Visit up to `n` views after `after` (from the first when `None`) under the read lock for
    /// this page only; returns the key to continue after, or `None` when no view is left.
    pub fn visit_page(
        &self,
        after: Option<&ScalerKey>,
        n: usize,
        mut f: impl FnMut(&ScalerView),
    ) -> Option<ScalerKey> {
        use std::ops::Bound::{Excluded, Unbounded};
        let inner = self.inner.read().unwrap_or_else(|p| p.into_inner());
        let range = match after {
            Some(k) => inner
                .scalers
                .range::<ScalerKey, _>((Excluded(k), Unbounded)),
            None => inner.scalers.range::<ScalerKey, _>(..),
        };
        let mut last = None;
        for (k, v) in range.take(n) {
            f(v);
            last = Some(k);
        }
        let more = last.is_some_and(|k| {
            inner
                .scalers
                .range::<ScalerKey, _>((Excluded(k), Unbounded))
                .next()
                .is_some()
        });
        last.filter(|_| more).cloned()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// Wait until the scaler has no view: it was removed (checked after every change).
    pub async fn wait_for_absent(&self, key: &ScalerKey) {
        let mut rx = self.subscribe();
        while self.get(key).is_some() {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Wait until `pred` holds for the scaler (checked after every change).
    pub async fn wait_for(
        &self,
        key: &ScalerKey,
        mut pred: impl FnMut(&ScalerView) -> bool,
    ) -> ScalerView {
        let mut rx = self.subscribe();
        loop {
            if let Some(v) = self.get(key)
                && pred(&v)
            {
                return v;
            }
            if rx.changed().await.is_err() {
                // The store lives as long as its senders; unreachable while `self` exists.
                std::future::pending::<()>().await;
            }
        }
    }
}

/// The JSON listing of `/scalers`, a page at a time: each page is serialized under the read
/// lock for that page only, so neither a 10 MB buffer (10,000 scalers) nor a lock held while a
/// slow client reads is needed. Each view is consistent; the listing as a whole is not one
/// snapshot (a scaler added behind the cursor appears in the next listing).
pub struct JsonListing<F> {
    store: StateStore,
    keep: F,
    next: Next,
    /// An element is written: the next one needs a separator.
    any: bool,
}

enum Next {
    First,
    After(ScalerKey),
    Done,
}

impl<F> JsonListing<F> {
    /// Views per page: about 100 KB of JSON.
    pub const PAGE: usize = 100;
}

impl<F: Fn(&ScalerView) -> bool> Iterator for JsonListing<F> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let after = match std::mem::replace(&mut self.next, Next::Done) {
            Next::Done => return None,
            Next::First => {
                out.push(b'[');
                None
            }
            Next::After(k) => Some(k),
        };
        let (keep, mut any) = (&self.keep, self.any);
        let next = self.store.visit_page(after.as_ref(), Self::PAGE, |v| {
            if keep(v) {
                push(&mut out, v, &mut any);
            }
        });
        if let Some(k) = next {
            self.any = any;
            self.next = Next::After(k);
            return Some(out);
        }
        // The last page: the broken files' entries, and the end of the array.
        let files = {
            let inner = self.store.inner.read().unwrap_or_else(|p| p.into_inner());
            StateStore::file_entries(&inner)
        };
        for v in files.iter().filter(|v| keep(v)) {
            push(&mut out, v, &mut any);
        }
        out.push(b']');
        Some(out)
    }
}

/// One element of a JSON array; `any`: an element is already written (a separator first).
fn push(out: &mut Vec<u8>, v: &ScalerView, any: &mut bool) {
    if *any {
        out.push(b',');
    }
    // Plain data into a Vec: serialization cannot fail.
    let _ = serde_json::to_writer(&mut *out, v);
    *any = true;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_comes_in_pages_that_join_into_the_list() {
        let store = StateStore::new();
        let n = 2 * JsonListing::<fn(&ScalerView) -> bool>::PAGE + 7;
        for i in 0..n {
            let key = ScalerKey {
                source: SourceKind::Dir,
                namespace: "shop".into(),
                name: format!("s-{i:04}").into(),
            };
            store.update(&key, |v| v.desired_replicas = Some(i as u32 % 3));
        }
        store.set_file_errors(BTreeMap::from([(
            PathBuf::from("dir/broken.yaml"),
            "bad".to_string(),
        )]));
        // Rebuilt compact, the map keeps every view, in order.
        let before = store.list();
        store.compact();
        assert_eq!(store.list(), before);
        let pages: Vec<Vec<u8>> = store.json_pages(|_| true).collect();
        assert_eq!(pages.len(), 3);
        let all: serde_json::Value = serde_json::from_slice(&pages.concat()).unwrap();
        assert_eq!(all, serde_json::to_value(store.list()).unwrap());
        assert_eq!(all.as_array().unwrap().len(), n + 1);
        // A filter that keeps nothing of the first pages still yields one valid array.
        let last: serde_json::Value = serde_json::from_slice(
            &store
                .json_pages(|v| v.name.as_deref() == Some(&format!("s-{:04}", n - 1)))
                .flatten()
                .collect::<Vec<u8>>(),
        )
        .unwrap();
        assert_eq!(last.as_array().unwrap().len(), 1, "{last}");
        // Scalers removed and added between pages: still one valid array, no view twice.
        let mut pages = store.json_pages(|_| true);
        let mut bytes = pages.next().unwrap();
        for i in 0..10 {
            store.remove(&ScalerKey {
                source: SourceKind::Dir,
                namespace: "shop".into(),
                name: format!("s-{i:04}").into(),
            });
        }
        store.update(
            &ScalerKey {
                source: SourceKind::Dir,
                namespace: "zoo".into(),
                name: "late".into(),
            },
            |_| {},
        );
        bytes.extend(pages.flatten());
        let listed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let names: Vec<_> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].clone())
            .collect();
        let unique: std::collections::HashSet<_> = names.iter().map(|n| n.to_string()).collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(names.len(), n + 2, "the late scaler sorts after the cursor");
    }

    #[test]
    fn the_json_listing_is_the_list_narrowed_by_the_filter() {
        let store = StateStore::new();
        let key = |name: &str| ScalerKey {
            source: SourceKind::Dir,
            namespace: "shop".into(),
            name: name.into(),
        };
        store.update(&key("a"), |v| {
            v.desired_replicas = Some(3);
            v.file = Some(Path::new("dir/a.yaml").into());
        });
        store.update(&key("b"), |v| v.desired_replicas = Some(1));
        store.set_file_errors(BTreeMap::from([
            (PathBuf::from("dir/a.yaml"), "carried by a".to_string()),
            (PathBuf::from("dir/broken.yaml"), "bad".to_string()),
        ]));
        let all: serde_json::Value = serde_json::from_slice(&store.list_json(|_| true)).unwrap();
        assert_eq!(all, serde_json::to_value(store.list()).unwrap());
        assert_eq!(all.as_array().unwrap().len(), 3, "{all}");
        assert_eq!(all[2]["file"], "dir/broken.yaml");
        let b: serde_json::Value =
            serde_json::from_slice(&store.list_json(|v| v.name.as_deref() == Some("b"))).unwrap();
        assert_eq!(
            b,
            serde_json::json!([serde_json::to_value(&store.list()[1]).unwrap()])
        );
    }
}
