//! Settings of `run`, layered with figment: defaults → settings file → `TEMPORAL_AUTOSCALER_*`
//! environment → command-line flags.

use crate::clusters::ClusterSpec;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Deserializer, Serialize};
use serde_saphyr::figment::Yaml;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Accept numbers where a string is meant: figment types env values (`LEASE_NAME=1` is a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum StringLike {
    S(String),
    I(i64),
    F(f64),
}

impl From<StringLike> for String {
    fn from(v: StringLike) -> String {
        match v {
            StringLike::S(s) => s,
            StringLike::I(i) => i.to_string(),
            StringLike::F(f) => f.to_string(),
        }
    }
}

fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    StringLike::deserialize(d).map(String::from)
}

fn opt_string_like<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<StringLike>::deserialize(d).map(|o| o.map(String::from))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Directory of TemporalScaler files, hot-reloaded.
    pub config_dir: Option<PathBuf>,
    /// Compute and report, never write to Kubernetes.
    pub dry_run: bool,
    #[serde(deserialize_with = "string_like")]
    pub http_addr: String,
    #[serde(deserialize_with = "string_like")]
    pub lease_name: String,
    /// Defaults to the pod's namespace, else `default`.
    #[serde(default, deserialize_with = "opt_string_like")]
    pub lease_namespace: Option<String>,
    /// Seconds.
    pub lease_duration: u64,
    /// Seconds (fractions allowed): the deadline of every Kubernetes request and operation. At
    /// most `lease_duration / 3`, the Lease's margin, so that a write checked against the Lease
    /// ends or is given up before the Lease could pass to another replica. Unset: 5 s, or the
    /// margin if that is shorter.
    #[serde(default)]
    pub kube_timeout: Option<f64>,
    pub log_format: LogFormat,
    /// This replica's lease identity; defaults to the pod name (HOSTNAME) plus a random suffix.
    #[serde(default, deserialize_with = "opt_string_like")]
    pub identity: Option<String>,
    /// Namespaces whose TemporalScalers are watched; all when empty.
    #[serde(default, deserialize_with = "list_like")]
    pub watch_namespaces: Vec<String>,
    /// Do not watch TemporalScaler custom resources.
    #[serde(default)]
    pub no_crds: bool,
    /// Most Temporal RPCs per second to one endpoint (and the burst): keeps the start-up poll
    /// of thousands of scalers under the namespace's rate limit.
    #[serde(default = "default_temporal_rps")]
    pub temporal_rps: u32,
    /// How often each (endpoint, namespace)'s Schedules are listed, in seconds (the Schedules
    /// signal, `scheduleLeadSeconds`).
    #[serde(default = "default_schedule_refresh")]
    pub schedule_refresh_seconds: u64,
    /// The status page at `GET /`, and the per-scaler history it charts.
    #[serde(default = "default_ui")]
    pub ui: bool,
    /// Idle pods first: before a scale-down, set `controller.kubernetes.io/pod-deletion-cost`
    /// on the target's pods from the worker heartbeats (scalers with the capacity signal on).
    /// Off: the agent never reads or writes pods.
    #[serde(default = "default_true")]
    pub idle_first: bool,
    /// Remote clusters, each a kubeconfig file: `[{name, kubeconfig}]`, or `NAME=PATH` items
    /// (a list, or comma-separated as an environment variable gives it).
    #[serde(default, deserialize_with = "cluster_list")]
    pub clusters: Vec<ClusterSpec>,
}

/// `NAME=PATH`, as `--cluster` and `TEMPORAL_AUTOSCALER_CLUSTERS` give a cluster.
pub fn parse_cluster(item: &str) -> Result<ClusterSpec, String> {
    match item.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.trim().is_empty() => {
            Ok(ClusterSpec {
                name: name.trim().to_string(),
                kubeconfig: PathBuf::from(path.trim()),
            })
        }
        _ => Err(format!(
            "cluster {item:?}: expected NAME=KUBECONFIG (a name and the path of a kubeconfig file)"
        )),
    }
}

fn cluster_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ClusterSpec>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Item {
        Spec(ClusterSpec),
        Pair(String),
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        List(Vec<Item>),
        One(String),
    }
    let items: Vec<Item> = match Option::<L>::deserialize(d)? {
        None => Vec::new(),
        Some(L::List(v)) => v,
        Some(L::One(s)) => comma_items(&s).map(|s| Item::Pair(s.into())).collect(),
    };
    items
        .into_iter()
        .map(|i| match i {
            Item::Spec(s) => Ok(s),
            Item::Pair(p) => parse_cluster(&p).map_err(serde::de::Error::custom),
        })
        .collect()
}

fn default_true() -> bool {
    true
}

fn default_ui() -> bool {
    true
}

fn default_temporal_rps() -> u32 {
    crate::temporal::DEFAULT_RPS
}

fn default_schedule_refresh() -> u64 {
    crate::temporal::SCHEDULE_REFRESH.as_secs()
}

/// The items of a comma-separated string, trimmed, empty ones left out.
fn comma_items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// A list, or a comma-separated string (as an environment variable gives it).
fn list_like<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        List(Vec<String>),
        One(String),
    }
    Ok(match Option::<L>::deserialize(d)? {
        None => Vec::new(),
        Some(L::List(v)) => v,
        Some(L::One(s)) => comma_items(&s).map(String::from).collect(),
    })
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            config_dir: None,
            dry_run: false,
            http_addr: "0.0.0.0:8080".into(),
            lease_name: "temporal-autoscaler".into(),
            lease_namespace: None,
            lease_duration: 15,
            kube_timeout: None,
            log_format: LogFormat::Text,
            identity: None,
            watch_namespaces: Vec::new(),
            no_crds: false,
            temporal_rps: default_temporal_rps(),
            schedule_refresh_seconds: default_schedule_refresh(),
            ui: default_ui(),
            idle_first: true,
            clusters: Vec::new(),
        }
    }
}

/// Flags given on the command line; unset ones do not override lower layers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_duration: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_timeout: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_format: Option<LogFormat>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch_namespaces: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_crds: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal_rps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ui: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_first: Option<bool>,
    /// `--cluster NAME=PATH`, repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
}

pub const ENV_PREFIX: &str = "TEMPORAL_AUTOSCALER_";

impl Settings {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, crate::Error> {
        let mut fig = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(f) = file {
            if !f.exists() {
                return Err(crate::Error::Settings(format!(
                    "settings file {} does not exist",
                    f.display()
                )));
            }
            fig = match f.extension().and_then(|e| e.to_str()) {
                Some("toml") => fig.merge(Toml::file(f)),
                _ => fig.merge(Yaml::file(f)),
            };
        }
        // `SETTINGS` names the file itself; it is not a setting.
        fig = fig.merge(Env::prefixed(ENV_PREFIX).ignore(&["settings"]));
        fig = fig.merge(Serialized::defaults(overrides));
        let s: Settings = fig
            .extract()
            .map_err(|e| crate::Error::Settings(e.to_string()))?;
        if s.temporal_rps == 0 {
            return Err(crate::Error::Settings(
                "temporal_rps: got 0, expected at least 1 RPC per second".into(),
            ));
        }
        if !(1..=3600).contains(&s.schedule_refresh_seconds) {
            return Err(crate::Error::Settings(format!(
                "schedule_refresh_seconds: got {}, expected 1 to 3600",
                s.schedule_refresh_seconds
            )));
        }
        crate::clusters::validate(&s.clusters).map_err(crate::Error::Settings)?;
        if s.lease_duration < 2 {
            return Err(crate::Error::Settings(format!(
                "lease_duration: got {}, expected at least 2 seconds",
                s.lease_duration
            )));
        }
        let margin = s.lease_duration as f64 / 3.0;
        if let Some(t) = s.kube_timeout
            && !(t > 0.0 && t <= margin)
        {
            return Err(crate::Error::Settings(format!(
                "kube_timeout: got {t}, expected more than 0 and at most lease_duration / 3 ({margin:.3} s): a write checked against the Lease must end before the Lease could pass to another replica"
            )));
        }
        Ok(s)
    }

    /// The deadline of every Kubernetes request and operation: as set, else 5 s or the Lease's
    /// margin (`lease_duration / 3`) if that is shorter.
    pub fn kube_timeout(&self) -> std::time::Duration {
        match self.kube_timeout {
            Some(t) => std::time::Duration::from_secs_f64(t),
            None => crate::deadline::DEFAULT_KUBE_TIMEOUT
                .min(std::time::Duration::from_secs(self.lease_duration) / 3),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_come_from_the_file_the_environment_or_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.yaml");
        std::fs::write(
            &file,
            "clusters:\n- {name: eu, kubeconfig: /etc/clusters/eu/kubeconfig}\n- us=/etc/clusters/us/kubeconfig\n",
        )
        .unwrap();
        let s = Settings::load(Some(&file), &Overrides::default()).unwrap();
        assert_eq!(
            s.clusters,
            [
                ClusterSpec {
                    name: "eu".into(),
                    kubeconfig: "/etc/clusters/eu/kubeconfig".into()
                },
                ClusterSpec {
                    name: "us".into(),
                    kubeconfig: "/etc/clusters/us/kubeconfig".into()
                },
            ]
        );
        // Flags replace the file's list.
        let flags = Overrides {
            clusters: Some(vec!["ap=/k/ap".into()]),
            ..Overrides::default()
        };
        let s = Settings::load(Some(&file), &flags).unwrap();
        assert_eq!(s.clusters.len(), 1);
        assert_eq!(s.clusters[0].name, "ap");
        for (bad, want) in [
            ("clusters: [local=/k/l]\n", "own cluster"),
            ("clusters: [eu=k/eu]\n", "absolute path"),
            ("clusters: [eu]\n", "NAME=KUBECONFIG"),
            ("clusters: [eu=/a, eu=/b]\n", "named twice"),
        ] {
            std::fs::write(&file, bad).unwrap();
            let e = Settings::load(Some(&file), &Overrides::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{bad}: {e}");
        }
        // The environment's form: comma-separated NAME=PATH.
        let parsed: Vec<ClusterSpec> = "eu=/k/eu, us=/k/us"
            .split(',')
            .map(|i| parse_cluster(i).unwrap())
            .collect();
        assert_eq!(parsed[1].kubeconfig, PathBuf::from("/k/us"));
    }

    #[test]
    fn the_kube_timeout_defaults_to_five_seconds_and_fits_the_lease() {
        let none = Overrides::default();
        let s = Settings::load(None, &none).unwrap();
        assert_eq!(s.kube_timeout(), std::time::Duration::from_secs(5));
        // Unset with a short Lease: its margin.
        let short = Overrides {
            lease_duration: Some(4),
            ..Overrides::default()
        };
        let s = Settings::load(None, &short).unwrap();
        assert_eq!(s.kube_timeout(), std::time::Duration::from_secs(4) / 3);
        let flag = |t: f64, lease: u64| Overrides {
            kube_timeout: Some(t),
            lease_duration: Some(lease),
            ..Overrides::default()
        };
        let s = Settings::load(None, &flag(0.5, 15)).unwrap();
        assert_eq!(s.kube_timeout(), std::time::Duration::from_millis(500));
        assert!(Settings::load(None, &flag(10.0, 30)).is_ok());
        for (t, lease) in [(0.0, 15), (-1.0, 15), (6.0, 15), (f64::NAN, 15)] {
            let e = Settings::load(None, &flag(t, lease))
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("kube_timeout: got") && e.contains("lease_duration / 3"),
                "{t}: {e}"
            );
        }
        // The file and the environment's string form.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.yaml");
        std::fs::write(&file, "kube_timeout: 2.5\n").unwrap();
        let s = Settings::load(Some(&file), &none).unwrap();
        assert_eq!(s.kube_timeout(), std::time::Duration::from_millis(2500));
    }

    #[test]
    fn the_status_page_is_on_unless_a_flag_or_the_file_turns_it_off() {
        let none = Overrides::default();
        assert!(Settings::load(None, &none).unwrap().ui);
        let flag = Overrides {
            ui: Some(false),
            ..Overrides::default()
        };
        assert!(!Settings::load(None, &flag).unwrap().ui);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.yaml");
        std::fs::write(&file, "ui: false\n").unwrap();
        assert!(!Settings::load(Some(&file), &none).unwrap().ui);
        let on = Overrides {
            ui: Some(true),
            ..Overrides::default()
        };
        assert!(
            Settings::load(Some(&file), &on).unwrap().ui,
            "the flag wins"
        );
    }
}
