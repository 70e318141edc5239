//! The config directory source: every `*.yaml|*.yml|*.json` directly in the directory
//! (ConfigMap mounts included), re-read on change; each file keeps its last good version.

use super::{ScalerKey, SourceKind};
use crate::latest;
use crate::spec::{FieldError, ScalerConfig, ScalerDocument, validate};
use notify::{RecursiveMode, Watcher};
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Keys whose values must never be echoed, even in parse errors.
const SECRET_FIELDS: &[&str] = &["apiKey", "key"];

/// A problem with one file, or one document in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 0-based index of the document in the file; `None` for file-level errors.
    pub document: Option<usize>,
    /// The line (1-based) of the field the error is about, where the YAML parser gives it.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            Some(d) => write!(f, "{}: document {d}: {}", self.file.display(), self.message)?,
            None => write!(f, "{}: {}", self.file.display(), self.message)?,
        }
        match self.line {
            Some(l) => write!(f, " (line {l})"),
            None => Ok(()),
        }
    }
}

/// A decoding error as (field path, message); the path is empty for the document itself.
fn decode_error(err: serde_path_to_error::Error<serde_json::Error>) -> (String, String) {
    let path = err.path().to_string();
    let path = if path == "." { String::new() } else { path };
    let last = path.rsplit('.').next().unwrap_or_default();
    if SECRET_FIELDS.contains(&last) && path.contains("metadata.") {
        // The parser's message may quote the value: say only what is expected.
        return (
            path.clone(),
            format!("{path}: expected a string (value hidden)"),
        );
    }
    let inner = crate::spec::with_suggestion(&err.into_inner().to_string());
    let message = if path.is_empty() {
        inner
    } else {
        format!("{path}: {inner}")
    };
    (path, message)
}

fn decode<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, (String, String)> {
    serde_path_to_error::deserialize(v).map_err(decode_error)
}

/// Decode and validate one document: the scaler, or each problem as (field path, message).
pub fn validate_value(value: serde_json::Value) -> Result<ScalerConfig, Vec<(String, String)>> {
    let parsed: ScalerDocument = decode(value).map_err(|e| vec![e])?;
    validate(&parsed).map_err(|fes| {
        fes.iter()
            .map(|fe: &FieldError| (fe.path.clone(), fe.to_string()))
            .collect()
    })
}

/// Parse and validate one file's content. All documents must be valid for the file to count.
/// Every error names the file, the document and the field, with the field's line in YAML.
pub fn parse_file(file: &Path, content: &str) -> Result<Vec<ScalerConfig>, Vec<ConfigError>> {
    let err = |document, line, message| ConfigError {
        file: file.to_path_buf(),
        document,
        line,
        message,
    };
    let is_json = file.extension().is_some_and(|e| e == "json");
    let docs: Vec<(serde_json::Value, Option<super::yaml::Document>)> = if is_json {
        let value: serde_json::Value = serde_json::from_str(content)
            .map_err(|e| vec![err(None, None, format!("invalid JSON: {e}"))])?;
        match value {
            serde_json::Value::Array(items) => items.into_iter().map(|v| (v, None)).collect(),
            other => vec![(other, None)],
        }
    } else {
        super::yaml::documents(content)
            .map_err(|e| {
                vec![err(
                    Some(e.document),
                    None,
                    format!("invalid YAML: {}", e.message),
                )]
            })?
            .into_iter()
            .map(|mut d| (std::mem::take(&mut d.value), Some(d)))
            .collect()
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, (value, doc)) in docs.into_iter().enumerate() {
        let line = |path: &str| doc.as_ref().and_then(|d| d.line_of(path));
        match validate_value(value) {
            Ok(cfg) => out.push(cfg),
            Err(es) => errors.extend(
                es.into_iter()
                    .map(|(path, message)| err(Some(i), line(&path), message)),
            ),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A config file's text, or why it has none: the I/O error, or where it stops being UTF-8.
pub fn read_text(path: &Path) -> Result<String, (std::io::ErrorKind, String)> {
    let bytes = std::fs::read(path).map_err(|e| (e.kind(), format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        (
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text: an invalid byte at offset {at} (line {line})"),
        )
    })
}

/// The files a directory offers: regular files (symlinks followed) with a config extension,
/// not dotfiles — which skips a ConfigMap mount's `..data` and `..<timestamp>` entries.
pub fn candidate_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    Ok(candidate_names(dir)?
        .iter()
        .map(|name| dir.join(&**name))
        .collect())
}

/// [`candidate_files`] by file name, sorted: a reload holds every name of the directory at
/// once, and a name is a fifth of a full path (100,000 files: about 3 MB instead of 13).
fn candidate_names(dir: &Path) -> std::io::Result<Vec<Box<std::ffi::OsStr>>> {
    let mut names = Vec::new();
    let mut path = dir.to_path_buf();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let ext_ok = Path::new(&name)
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"));
        if !ext_ok {
            continue;
        }
        path.push(&name);
        // `metadata` follows symlinks: `file -> ..data/file` counts, dangling links do not.
        let file = std::fs::metadata(&path).is_ok_and(|m| m.is_file());
        path.pop();
        if file {
            names.push(name.into_boxed_os_str());
        }
    }
    names.sort();
    Ok(names)
}

#[derive(Clone, Debug, Default)]
struct FileState {
    /// A hash of the content last read: unchanged files are not re-parsed (the text itself
    /// is not kept, 10,000 files' worth).
    content: u64,
    /// The last version of this file that parsed and validated.
    /// Shared with snapshots and running scalers: one copy of each config however many
    /// snapshots are taken.
    good: Option<Vec<Arc<ScalerConfig>>>,
    errors: Vec<ConfigError>,
}

/// One scaler defined by the directory.
#[derive(Clone, Debug, PartialEq)]
pub struct DirScaler {
    pub key: ScalerKey,
    /// Shared by the snapshot, the registry and the scaler's view (one path, not three).
    pub file: Arc<Path>,
    pub config: Arc<ScalerConfig>,
}

/// What the directory currently defines, and what is wrong with it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DirSnapshot {
    pub scalers: Vec<DirScaler>,
    /// Errors per file; a file listed here with scalers above is running its last good version.
    pub errors: BTreeMap<PathBuf, Vec<ConfigError>>,
}

/// The outcome of one reload, for logs and metrics.
#[derive(Debug, PartialEq, Eq)]
pub enum ReloadResult {
    Unchanged,
    Applied,
    /// Some file failed; the others (and its last good version) were applied.
    Rejected,
}

#[derive(Debug, Default)]
pub struct DirState {
    dir: PathBuf,
    files: BTreeMap<Arc<Path>, FileState>,
    /// The specs' shared strings (namespaces, trigger names, task queues).
    strings: crate::intern::Pool,
}

impl DirState {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            strings: Default::default(),
        }
    }

    /// Re-read the directory; files whose content did not change are not re-parsed.
    pub fn reload(&mut self) -> std::io::Result<ReloadResult> {
        let names = candidate_names(&self.dir)?;
        let (mut changed, mut failed) = (false, false);
        // Known files are updated in place: a re-read that finds nothing new (every resync)
        // builds no second map (at 100,000 files, 14 MB more for a moment, the agent's peak).
        let mut new = Vec::new();
        for name in &names {
            let path = self.dir.join(&**name);
            let mut fresh = None;
            let st = match self.files.get_mut(path.as_path()) {
                Some(st) => st,
                None => fresh.insert(FileState::default()),
            };
            match read_into(&path, st, &mut self.strings) {
                Read::Unchanged => {}
                Read::Changed => changed = true,
                Read::Failed => (changed, failed) = (true, true),
                // Vanished between listing and reading (a ConfigMap swap): as it was until
                // the next event's re-read lists it again, or not (then it is gone).
                Read::Vanished => fresh = None,
            }
            if let Some(st) = fresh {
                new.push((Arc::from(path.as_path()), st));
            }
        }
        let listed = self.files.len();
        self.files.retain(|path, _| {
            path.file_name()
                .is_some_and(|n| names.binary_search_by(|m| (**m).cmp(n)).is_ok())
        });
        changed |= self.files.len() != listed; // files that disappeared
        if self.files.is_empty() {
            // Built at once from the sorted files: inserted one by one in order, a B-tree's
            // nodes stay about half full (the first load of 100,000 files).
            self.files = new.into_iter().collect();
        } else {
            self.files.extend(new);
        }
        Ok(match (changed, failed) {
            (false, _) => ReloadResult::Unchanged,
            (true, false) => ReloadResult::Applied,
            (true, true) => ReloadResult::Rejected,
        })
    }

    /// The scalers in force: every file's last good version; a name defined twice is an error
    /// for the later file (in path order).
    pub fn snapshot(&self) -> DirSnapshot {
        // Sized at once and borrowing the configs' names: taken at every reload, with the
        // directory's whole state resident (100,000 scalers: a doubling vector and a map of
        // copied names were about 20 MB more at the moment of the agent's peak).
        let count = self
            .files
            .values()
            .map(|st| st.good.as_ref().map_or(0, Vec::len));
        let mut snap = DirSnapshot {
            scalers: Vec::with_capacity(count.sum()),
            errors: BTreeMap::new(),
        };
        let mut seen: HashMap<(&str, &str), (&Path, usize)> =
            HashMap::with_capacity(snap.scalers.capacity());
        for (path, st) in &self.files {
            if !st.errors.is_empty() {
                snap.errors.insert(path.to_path_buf(), st.errors.clone());
            }
            for (i, cfg) in st.good.iter().flatten().enumerate() {
                let id = (cfg.namespace.as_ref(), cfg.name.as_ref());
                if let Some((other, j)) = seen.get(&id) {
                    snap.errors
                        .entry(path.to_path_buf())
                        .or_default()
                        .push(ConfigError {
                            file: path.to_path_buf(),
                            document: Some(i),
                            line: None,
                            message: format!(
                                "metadata.name: scaler {}/{} is already defined in {} document {j}",
                                cfg.namespace,
                                cfg.name,
                                other.display()
                            ),
                        });
                    continue;
                }
                seen.insert(id, (path, i));
                snap.scalers.push(DirScaler {
                    key: ScalerKey {
                        source: SourceKind::Dir,
                        namespace: cfg.namespace.clone(),
                        name: cfg.name.clone(),
                    },
                    file: path.clone(),
                    config: cfg.clone(),
                });
            }
        }
        snap
    }
}

/// What re-reading one file found.
enum Read {
    Unchanged,
    Changed,
    /// Unreadable, or its new content is invalid (its last good version is kept).
    Failed,
    Vanished,
}

/// Re-read `path` into its state: parsed again only when its content changed.
fn read_into(path: &Path, st: &mut FileState, strings: &mut crate::intern::Pool) -> Read {
    let content = match read_text(path) {
        Ok(c) => c,
        Err((std::io::ErrorKind::NotFound, _)) => return Read::Vanished,
        Err((_, message)) => {
            st.errors = vec![ConfigError {
                file: path.to_path_buf(),
                document: None,
                line: None,
                message,
            }];
            return Read::Failed;
        }
    };
    let hash = {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        content.hash(&mut h);
        h.finish()
    };
    if st.content == hash && (st.good.is_some() || !st.errors.is_empty()) {
        return Read::Unchanged;
    }
    st.content = hash;
    match parse_file(path, &content) {
        Ok(cfgs) => {
            // Collected into a new, exact allocation: an in-place collect would keep the
            // (larger) Vec<ScalerConfig> buffer alive.
            let mut good = Vec::with_capacity(cfgs.len());
            good.extend(cfgs.into_iter().map(|mut c| {
                strings.share_config(&mut c);
                Arc::new(c)
            }));
            st.good = Some(good);
            st.errors.clear();
            Read::Changed
        }
        Err(errs) => {
            st.errors = errs;
            Read::Failed
        }
    }
}

/// Whether a directory event may change what it defines. Access events (open, read,
/// close-nowrite) do not: our own reads make them, and reacting would re-read the directory
/// over and over (with 10,000 files, a core's worth of CPU).
fn is_change(ev: &notify::Event) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match ev.kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Called after each reload that changed something.
pub type ReloadHook = Arc<dyn Fn(&ReloadResult, &DirSnapshot) + Send + Sync>;

/// The directory's watcher: its first snapshot, the next ones as they come, and its task.
pub struct DirWatch {
    pub first: DirSnapshot,
    /// Each snapshot is taken by the registry, not kept here (10,000 scalers are megabytes).
    pub next: latest::Receiver<DirSnapshot>,
    pub task: tokio::task::JoinHandle<()>,
}

/// Watch `dir` and publish a new snapshot after every change (debounced). The first snapshot is
/// loaded before this returns, so a bad start-up directory is reported at once.
pub async fn watch_dir(
    dir: PathBuf,
    debounce: Duration,
    resync: Duration,
    on_reload: ReloadHook,
) -> Result<DirWatch, crate::Error> {
    let mut state = DirState::new(&dir);
    let first = state.reload().map_err(|e| crate::Error::ConfigDir {
        dir: dir.clone(),
        source: e,
    })?;
    let snap = state.snapshot();
    on_reload(&first, &snap);
    let (tx, rx) = latest::channel();

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res
            && is_change(&ev)
        {
            let _ = ev_tx.send(());
        }
    })
    .map_err(|e| crate::Error::Watch {
        dir: dir.clone(),
        source: e,
    })?;
    // Non-recursive on the directory itself: a watch on a file dies when a ConfigMap swap
    // replaces it; the directory sees the `..data` rename.
    watcher
        .watch(&dir, RecursiveMode::NonRecursive)
        .map_err(|e| crate::Error::Watch {
            dir: dir.clone(),
            source: e,
        })?;

    let task = tokio::spawn(async move {
        let _watcher = watcher; // lives as long as the task
        let mut tick = tokio::time::interval(resync);
        tick.tick().await;
        loop {
            tokio::select! {
                ev = ev_rx.recv() => {
                    if ev.is_none() { break; }
                    // Debounce: editors and the kubelet write in several steps.
                    while let Ok(Some(())) = tokio::time::timeout(debounce, ev_rx.recv()).await {}
                }
                _ = tick.tick() => {}
            }
            match state.reload() {
                Ok(ReloadResult::Unchanged) => {}
                Ok(result) => {
                    let snap = state.snapshot();
                    on_reload(&result, &snap);
                    tx.send(snap);
                }
                Err(e) => {
                    tracing::error!(dir = %state.dir.display(), error = %e, "cannot read the config directory; keeping the last good config")
                }
            }
        }
    });
    Ok(DirWatch {
        first: snap,
        next: rx,
        task,
    })
}

#[cfg(test)]
#[path = "dir_tests.rs"]
mod tests;
