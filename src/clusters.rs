//! The Kubernetes clusters an agent knows: its own
//! (the empty name or `local`), and remote ones, each from a mounted kubeconfig file. A
//! rotated file (a Secret updated in place) is picked up at the next use, as credential files
//! are: the client is rebuilt when the file's content changes.

use crate::outage::{Note, Outage};
use std::collections::HashMap;
use std::path::PathBuf;
use tokio::sync::Mutex;

/// How a call to a cluster's API server went, for the cluster's outage log.
pub enum Call<'a> {
    /// It answered; `started` is when the call was sent: a call sent before an outage was
    /// seen says nothing of the cluster now (it may have been answered just before).
    Worked { started: std::time::Instant },
    /// Not reached, or no answer within the deadline: the cluster's outage.
    Unreachable(&'a dyn std::fmt::Display),
    /// Answered with an error of the target's own (a missing Deployment, a forbidden call).
    Refused,
}

/// The class of a Kubernetes API error, for outage logging: a status code, or a transport
/// failure (the API server unreachable).
pub fn error_class(e: &kube::Error) -> &'static str {
    match e {
        kube::Error::Api(s) if s.code == 401 || s.code == 403 => "auth",
        kube::Error::Api(s) if s.code == 404 => "not_found",
        kube::Error::Api(s) if s.code == 409 => "conflict",
        kube::Error::Api(s) if s.code == 429 => "throttled",
        kube::Error::Api(s) if s.code >= 500 => "server_error",
        kube::Error::Api(_) => "api_error",
        _ => "unreachable",
    }
}

/// The agent's own cluster.
pub use crate::spec::LOCAL;

/// A remote cluster as the settings name it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct ClusterSpec {
    pub name: String,
    pub kubeconfig: PathBuf,
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterError {
    #[error("cluster {0:?} is not known to the agent (settings `clusters`)")]
    Unknown(String),
    #[error("cluster {cluster:?}: kubeconfig {path}: {message}")]
    Kubeconfig {
        cluster: String,
        path: PathBuf,
        message: String,
    },
    #[error("the agent's own cluster is not reachable (it runs without one)")]
    NoHome,
}

/// Check the names of the remote clusters: DNS labels, unique, and not the home cluster's.
pub fn validate(specs: &[ClusterSpec]) -> Result<(), String> {
    let mut seen = std::collections::HashSet::new();
    for (i, c) in specs.iter().enumerate() {
        if !crate::spec::is_dns_label(&c.name) {
            return Err(format!(
                "clusters[{i}].name: got {:?}, expected a DNS label (lowercase letters, digits, '-')",
                c.name
            ));
        }
        if c.name == LOCAL {
            return Err(format!(
                "clusters[{i}].name: {LOCAL:?} is the agent's own cluster"
            ));
        }
        if !seen.insert(&c.name) {
            return Err(format!("clusters[{i}].name: {:?} is named twice", c.name));
        }
        if !c.kubeconfig.is_absolute() {
            return Err(format!(
                "clusters[{i}].kubeconfig: got {}, expected an absolute path",
                c.kubeconfig.display()
            ));
        }
    }
    Ok(())
}

/// How long a kubeconfig read is trusted: every scaler's every `/scale` call asks for its
/// cluster's client (10,000 scalers, each tick), and the file is read again at most this often.
/// A rotated file is in use within this time after the kubelet swaps it in.
pub const KUBECONFIG_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

struct Loaded {
    content: Vec<u8>,
    client: kube::Client,
    /// When the file was last read and found to be `content`.
    checked: std::time::Instant,
}

/// The clients of the known clusters.
pub struct Clusters {
    home: Option<kube::Client>,
    /// Clients given as they are (embedding, tests), not from a kubeconfig file.
    fixed: HashMap<String, kube::Client>,
    specs: HashMap<String, PathBuf>,
    loaded: Mutex<HashMap<String, Loaded>>,
    recheck: std::time::Duration,
    /// The deadline of each Kubernetes operation in these clusters (a `/scale` read with its
    /// discovery, a write), and of each request of the clients built here.
    timeout: std::time::Duration,
    /// Each cluster's outage (its API server unreachable), logged once for all the
    /// scalers placed there.
    outages: std::sync::Mutex<HashMap<String, Outage>>,
}

impl Clusters {
    pub fn new(home: Option<kube::Client>, specs: &[ClusterSpec]) -> Self {
        Clusters {
            home,
            fixed: HashMap::new(),
            specs: specs
                .iter()
                .map(|c| (c.name.clone(), c.kubeconfig.clone()))
                .collect(),
            loaded: Mutex::default(),
            recheck: KUBECONFIG_RECHECK,
            timeout: crate::deadline::DEFAULT_KUBE_TIMEOUT,
            outages: std::sync::Mutex::default(),
        }
    }

    /// Read the kubeconfig files at most every `d` (tests: every use).
    pub fn with_recheck(mut self, d: std::time::Duration) -> Self {
        self.recheck = d;
        self
    }

    /// The deadline of every operation in these clusters, and of every request of the clients
    /// built from kubeconfig files (`kube_timeout`).
    pub fn with_timeout(mut self, d: std::time::Duration) -> Self {
        self.timeout = d;
        self
    }

    pub fn timeout(&self) -> std::time::Duration {
        self.timeout
    }

    /// Clusters whose clients are built already (a program embedding the agent, tests).
    pub fn fixed(
        home: Option<kube::Client>,
        remotes: impl IntoIterator<Item = (String, kube::Client)>,
    ) -> Self {
        let mut c = Clusters::new(home, &[]);
        c.fixed = remotes.into_iter().collect();
        c
    }

    /// How a `/scale` call to cluster `name` went: an API server that cannot be reached or
    /// does not answer within the deadline is logged here, once when it starts, once a minute,
    /// and once when it ends; the scalers in the cluster log it at debug only.
    pub fn note(&self, name: &str, call: Call<'_>) {
        let name = crate::spec::placement_name(name);
        let now = std::time::Instant::now();
        let mut outages = self.outages.lock().unwrap_or_else(|p| p.into_inner());
        match call {
            // Refusals and timeouts alternate in one outage: one kind for both.
            Call::Unreachable(e) => {
                match outages
                    .entry(name.to_string())
                    .or_default()
                    .failure(now, "unreachable")
                {
                    Note::First => {
                        tracing::warn!(cluster = name, error = %e, "cluster unreachable; its scalers hold their counts there, and those placed over several clusters move its shares to the others after failureThreshold reads (logged again once a minute while it lasts)")
                    }
                    Note::Summary { failures, lasting } => {
                        tracing::warn!(cluster = name, error = %e, failures, lasting_secs = lasting.as_secs(), "cluster still unreachable")
                    }
                    Note::Quiet => {}
                }
            }
            Call::Refused => {}
            Call::Worked { started } => {
                if outages
                    .get(name)
                    .and_then(|o| o.since())
                    .is_some_and(|since| started < since)
                {
                    return;
                }
                if let Some(r) = outages.remove(name).and_then(|mut o| o.success(now)) {
                    tracing::info!(
                        cluster = name,
                        lasted_secs = r.lasted.as_secs(),
                        failures = r.failures,
                        "cluster reachable again"
                    );
                }
            }
        }
    }

    /// Whether `name` is a cluster the agent knows (`""` and `local` are its own).
    pub fn knows(&self, name: &str) -> bool {
        name.is_empty()
            || name == LOCAL
            || self.fixed.contains_key(name)
            || self.specs.contains_key(name)
    }

    /// The client of cluster `name`, its kubeconfig read again if the last read is older than
    /// [`KUBECONFIG_RECHECK`]: a changed file gives a new client, an unchanged one the client
    /// already built.
    pub async fn client(&self, name: &str) -> Result<kube::Client, ClusterError> {
        if name.is_empty() || name == LOCAL {
            return self.home.clone().ok_or(ClusterError::NoHome);
        }
        if let Some(client) = self.fixed.get(name) {
            return Ok(client.clone());
        }
        let path = self
            .specs
            .get(name)
            .ok_or_else(|| ClusterError::Unknown(name.to_string()))?;
        let err = |message: String| ClusterError::Kubeconfig {
            cluster: name.to_string(),
            path: path.clone(),
            message,
        };
        if let Some(l) = self.loaded.lock().await.get(name)
            && l.checked.elapsed() < self.recheck
        {
            return Ok(l.client.clone());
        }
        let content = tokio::fs::read(path)
            .await
            .map_err(|e| err(format!("cannot read: {e}")))?;
        let mut loaded = self.loaded.lock().await;
        if let Some(l) = loaded.get_mut(name)
            && l.content == content
        {
            l.checked = std::time::Instant::now();
            return Ok(l.client.clone());
        }
        let client = build(&content, self.timeout).await.map_err(err)?;
        loaded.insert(
            name.to_string(),
            Loaded {
                content,
                client: client.clone(),
                checked: std::time::Instant::now(),
            },
        );
        Ok(client)
    }
}

/// A client from a kubeconfig's bytes (its current context). Errors never quote the file: it
/// holds credentials.
async fn build(content: &[u8], timeout: std::time::Duration) -> Result<kube::Client, String> {
    let text = std::str::from_utf8(content).map_err(|_| "not UTF-8 text".to_string())?;
    let kubeconfig = kube::config::Kubeconfig::from_yaml(text)
        .map_err(|e| format!("not a kubeconfig ({})", redacted(&e.to_string())))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("unusable ({})", redacted(&e.to_string())))?;
    crate::deadline::client(config, timeout).map_err(|e| format!("cannot build a client: {e}"))
}

/// The first line of a parser's error, its quoted values (a token in the wrong place) left
/// out: `invalid type: string "…", expected a sequence`.
fn redacted(s: &str) -> String {
    let line = s.lines().next().unwrap_or_default();
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    for c in line.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A call sent before an outage was first seen, and answered after, does not end it (it
    /// would log the outage twice): only a call sent since does.
    #[test]
    fn only_a_call_sent_after_the_outage_began_ends_it() {
        let c = Clusters::new(None, &[]);
        let down = |c: &Clusters| c.outages.lock().unwrap().get("eu").and_then(|o| o.since());
        let sent_before = std::time::Instant::now();
        c.note("eu", Call::Unreachable(&"connection refused"));
        let began = down(&c).expect("an outage");
        c.note(
            "eu",
            Call::Worked {
                started: sent_before,
            },
        );
        assert_eq!(down(&c), Some(began), "ended by a call sent before it");
        c.note(
            "eu",
            Call::Worked {
                started: std::time::Instant::now(),
            },
        );
        assert_eq!(down(&c), None);
    }

    fn kubeconfig(server: &str, token: &str) -> String {
        format!(
            r#"apiVersion: v1
kind: Config
clusters:
- name: remote
  cluster: {{server: "{server}"}}
users:
- name: agent
  user: {{token: "{token}"}}
contexts:
- name: remote
  context: {{cluster: remote, user: agent}}
current-context: remote
"#
        )
    }

    fn spec(name: &str, path: &Path) -> ClusterSpec {
        ClusterSpec {
            name: name.into(),
            kubeconfig: path.to_path_buf(),
        }
    }

    #[test]
    fn names_are_labels_unique_and_not_local() {
        let p = Path::new("/etc/clusters/eu");
        assert!(validate(&[spec("eu-west", p), spec("us-1", p)]).is_ok());
        for (bad, want) in [
            (vec![spec("EU", p)], "DNS label"),
            (vec![spec("local", p)], "own cluster"),
            (vec![spec("eu", p), spec("eu", p)], "named twice"),
            (vec![spec("eu", Path::new("eu.yaml"))], "absolute path"),
        ] {
            let e = validate(&bad).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
    }

    /// The file is trusted for `recheck` after a read, and read again once that has passed:
    /// the bound the rotation test of tests/it relies on, without waiting for it.
    #[tokio::test]
    async fn a_kubeconfig_is_read_again_only_once_its_recheck_has_passed() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("eu");
        std::fs::write(&path, kubeconfig("https://10.0.0.1:6443", "t0k3n-one")).unwrap();
        let recheck = std::time::Duration::from_secs(3600);
        let mut clusters = Clusters::new(None, &[spec("eu", &path)]).with_recheck(recheck);
        clusters.client("eu").await.unwrap();
        let first = clusters.loaded.lock().await["eu"].content.clone();
        std::fs::write(&path, kubeconfig("https://10.0.0.1:6443", "t0k3n-two")).unwrap();
        clusters.client("eu").await.unwrap();
        assert_eq!(
            clusters.loaded.lock().await["eu"].content,
            first,
            "read again within its recheck"
        );
        // The recheck has passed (as if an hour went by): the next use reads the file.
        clusters.recheck = std::time::Duration::ZERO;
        clusters.client("eu").await.unwrap();
        assert_ne!(clusters.loaded.lock().await["eu"].content, first);
    }

    #[tokio::test]
    async fn a_rotated_kubeconfig_gives_a_new_client_and_errors_name_the_cluster() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("eu");
        std::fs::write(&path, kubeconfig("https://10.0.0.1:6443", "t0k3n-one")).unwrap();
        let clusters =
            Clusters::new(None, &[spec("eu", &path)]).with_recheck(std::time::Duration::ZERO);
        assert!(clusters.knows("eu") && clusters.knows("") && clusters.knows(LOCAL));
        assert!(!clusters.knows("us"));
        let a = clusters.client("eu").await.unwrap();
        assert_eq!(a.default_namespace(), "default");
        // Unchanged: the same client (no rebuild per use).
        clusters.client("eu").await.unwrap();
        assert_eq!(clusters.loaded.lock().await.len(), 1);
        let before = clusters.loaded.lock().await["eu"].content.clone();
        // Rotated in place: a new client from the new content.
        std::fs::write(&path, kubeconfig("https://10.0.0.1:6443", "t0k3n-two")).unwrap();
        clusters.client("eu").await.unwrap();
        assert_ne!(clusters.loaded.lock().await["eu"].content, before);

        assert_eq!(
            clusters.client("us").await.err(),
            Some(ClusterError::Unknown("us".into()))
        );
        assert_eq!(
            clusters.client(LOCAL).await.err(),
            Some(ClusterError::NoHome)
        );
        std::fs::write(&path, "token: t0k3n-three\n  : [").unwrap();
        let e = clusters.client("eu").await.err().unwrap().to_string();
        assert!(e.starts_with("cluster \"eu\": kubeconfig "), "{e}");
        assert!(!e.contains("t0k3n"), "a credential in an error: {e}");
        // A token where a list belongs: the parser would quote it.
        std::fs::write(&path, "users: \"t0k3n-four\"\nclusters: []\n").unwrap();
        let e = clusters.client("eu").await.err().unwrap().to_string();
        assert!(e.contains("not a kubeconfig"), "{e}");
        assert!(!e.contains("t0k3n"), "a credential in an error: {e}");
        std::fs::remove_file(&path).unwrap();
        let e = clusters.client("eu").await.err().unwrap().to_string();
        assert!(e.contains("cannot read"), "{e}");
    }
}
