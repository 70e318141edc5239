//! The scale target: read and write replicas through the `/scale` subresource of any kind
//! (resolved by API discovery), in the agent's own cluster or a remote one, or a simulated
//! target when no cluster is reachable (dry run).

use crate::clusters::{Call, ClusterError, Clusters};
use crate::spec::{LOCAL, TargetRef};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error)]
pub enum TargetError {
    #[error("{target}: kind {kind} not found in {api_version} (API discovery): {message}")]
    Discovery {
        target: String,
        kind: String,
        api_version: String,
        message: String,
    },
    #[error("{target}: {kind} has no /scale subresource")]
    NoScale { target: String, kind: String },
    #[error("{target}: not found")]
    NotFound { target: String },
    #[error("{target}: {message}")]
    Api { target: String, message: String },
    /// The API server could not be reached (connect, transport): an outage of its cluster,
    /// logged by the cluster rather than by each scaler in it.
    #[error("{target}: unreachable: {message}")]
    Unreachable { target: String, message: String },
    /// The API server took the request and did not answer within the deadline (a partition,
    /// an overloaded or paused API server): an outage of its cluster, as `Unreachable`.
    #[error("{target}: timed out: no answer from the API server within {after:?}")]
    Timeout { target: String, after: Duration },
    #[error("{0}")]
    Cluster(ClusterError),
}

impl TargetError {
    /// Wrong until someone changes something (a cluster the agent cannot use, a target that
    /// is not there): a placement moves such a cluster's share at once, not after
    /// `failureThreshold` reads.
    pub fn is_lasting(&self) -> bool {
        matches!(
            self,
            TargetError::Cluster(_) | TargetError::NotFound { .. } | TargetError::NoScale { .. }
        )
    }

    /// The kind of failure, as the `kind` label of `temporal_scaler_target_errors_total`.
    pub fn kind(&self) -> &'static str {
        match self {
            TargetError::Discovery { .. } => "discovery",
            TargetError::NoScale { .. } => "no_scale",
            TargetError::NotFound { .. } => "not_found",
            TargetError::Api { .. } => "api",
            TargetError::Unreachable { .. } => "unreachable",
            TargetError::Timeout { .. } => "timeout",
            TargetError::Cluster(_) => "cluster",
        }
    }

    /// The cluster's API server did not answer (refused, reset, or silent past the deadline):
    /// the cluster's outage rather than this target's.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            TargetError::Unreachable { .. } | TargetError::Timeout { .. }
        )
    }
}

/// `e` of a call to `target`; a timeout names its deadline (`deadline` for a connect timeout,
/// which is set to the same).
fn api_error(target: &str, deadline: Duration, e: kube::Error) -> TargetError {
    if crate::deadline::is_timeout(&e) {
        return TargetError::Timeout {
            target: target.to_string(),
            after: crate::deadline::timed_out(&e).unwrap_or(deadline),
        };
    }
    match &e {
        kube::Error::Api(s) if s.code == 404 => TargetError::NotFound {
            target: target.to_string(),
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) => TargetError::Unreachable {
            target: target.to_string(),
            message: e.to_string(),
        },
        _ => TargetError::Api {
            target: target.to_string(),
            message: e.to_string(),
        },
    }
}

/// Discovery results per cluster and group/version/kind.
type Cache = Arc<Mutex<HashMap<(String, GroupVersionKind), ApiResource>>>;

/// Resolves targets in the clusters the agent knows.
#[derive(Clone)]
pub enum Targets {
    Kube {
        clusters: Arc<Clusters>,
        dry_run: bool,
        cache: Cache,
        /// The HPAs of each namespace in use (never fight another autoscaler).
        hpas: Arc<hpa::HpaIndex>,
    },
    Simulated,
}

impl Targets {
    /// Targets in the agent's own cluster only.
    pub fn kube(client: kube::Client, dry_run: bool) -> Self {
        Self::with_clusters(Arc::new(Clusters::new(Some(client), &[])), dry_run)
    }

    pub fn with_clusters(clusters: Arc<Clusters>, dry_run: bool) -> Self {
        Targets::Kube {
            clusters,
            dry_run,
            cache: Arc::default(),
            hpas: Arc::default(),
        }
    }

    /// The HPAs listed again at most every `d` (tests; [`hpa::HPA_RECHECK`] otherwise).
    pub fn with_hpa_recheck(self, d: std::time::Duration) -> Self {
        match self {
            Targets::Kube {
                clusters,
                dry_run,
                cache,
                ..
            } => Targets::Kube {
                clusters,
                dry_run,
                cache,
                hpas: Arc::new(hpa::HpaIndex::with_recheck(d)),
            },
            t => t,
        }
    }

    pub fn is_dry_run(&self) -> bool {
        match self {
            Targets::Kube { dry_run, .. } => *dry_run,
            Targets::Simulated => true,
        }
    }

    /// A handle on one scaler's target in the agent's own cluster. `initial` seeds a
    /// simulated target (minReplicaCount).
    pub fn target(&self, namespace: &str, r: &TargetRef, initial: u32) -> Target {
        self.target_in(LOCAL, namespace, r, initial)
    }

    /// A handle on one scaler's target in `cluster` (`local` or a remote cluster's name).
    pub fn target_in(&self, cluster: &str, namespace: &str, r: &TargetRef, initial: u32) -> Target {
        match self {
            Targets::Kube {
                clusters,
                dry_run,
                cache,
                hpas,
            } => Target::Kube(Box::new(KubeTarget {
                hpas: hpas.clone(),
                clusters: clusters.clone(),
                cluster: crate::spec::placement_name(cluster).to_string(),
                namespace: namespace.to_string(),
                target: r.clone(),
                dry_run: *dry_run,
                cache: cache.clone(),
                display: display(cluster, namespace, r),
            })),
            Targets::Simulated => Target::Simulated(Arc::new(AtomicU32::new(initial))),
        }
    }
}

/// `ns/Kind/name`, with `in cluster NAME` for a remote one: every error names its cluster.
fn display(cluster: &str, namespace: &str, r: &TargetRef) -> String {
    match crate::spec::placement_name(cluster) {
        LOCAL => format!("{namespace}/{r}"),
        c => format!("{namespace}/{r} in cluster {c}"),
    }
}

pub enum Target {
    Kube(Box<KubeTarget>),
    /// No cluster: the count follows the agent's own decisions.
    Simulated(Arc<AtomicU32>),
}

/// A `/scale` read: the count, and the selector of the target's pods (`status.selector`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScaleRead {
    pub replicas: u32,
    pub selector: Option<String>,
}

impl Target {
    pub async fn replicas(&self) -> Result<u32, TargetError> {
        self.read().await.map(|r| r.replicas)
    }

    /// The count and the pods' selector (a simulated target has no pods).
    pub async fn read(&self) -> Result<ScaleRead, TargetError> {
        match self {
            Target::Kube(k) => k.read().await,
            Target::Simulated(n) => Ok(ScaleRead {
                replicas: n.load(Ordering::SeqCst),
                selector: None,
            }),
        }
    }

    /// The target's pods by `selector`; `None` for a simulated target (it has none).
    pub async fn pods(
        &self,
        selector: &str,
    ) -> Option<Result<Vec<crate::decide::idle_first::Pod>, TargetError>> {
        match self {
            Target::Kube(k) => Some(k.pods(selector).await),
            Target::Simulated(_) => None,
        }
    }

    /// The HorizontalPodAutoscaler (`namespace/name`) that scales this target too, if any.
    pub async fn competing_hpa(&self) -> Option<String> {
        match self {
            Target::Kube(k) => k.competing_hpa().await,
            Target::Simulated(_) => None,
        }
    }

    /// Set a pod's deletion cost: whether it was written (a dry run never writes).
    pub async fn set_cost(&self, pod: &str, cost: i32) -> Result<bool, TargetError> {
        match self {
            Target::Kube(k) => k.set_cost(pod, cost).await,
            Target::Simulated(_) => Ok(false),
        }
    }

    /// The resolved environment of the target's container (`<key>FromEnv` keys); `None` for
    /// a simulated target (it has no pod template).
    pub async fn container_env(
        &self,
        container: Option<&str>,
    ) -> Option<Result<env::ContainerEnv, TargetError>> {
        match self {
            Target::Kube(k) => Some(k.container_env(container).await),
            Target::Simulated(_) => None,
        }
    }

    /// Returns whether a write happened (dry-run against a cluster never writes).
    pub async fn scale(&self, replicas: u32) -> Result<bool, TargetError> {
        match self {
            Target::Kube(k) => k.scale(replicas).await,
            Target::Simulated(n) => {
                n.store(replicas, Ordering::SeqCst);
                Ok(true)
            }
        }
    }
}

pub struct KubeTarget {
    hpas: Arc<hpa::HpaIndex>,
    clusters: Arc<Clusters>,
    cluster: String,
    namespace: String,
    target: TargetRef,
    dry_run: bool,
    cache: Cache,
    display: String,
}

impl KubeTarget {
    async fn api(&self) -> Result<Api<DynamicObject>, TargetError> {
        // A remote cluster's kubeconfig is read again when used (at most once a second): a
        // rotated one takes effect without a restart.
        let client = self
            .clusters
            .client(&self.cluster)
            .await
            .map_err(TargetError::Cluster)?;
        let (group, version) = self.target.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &self.target.kind);
        let key = (self.cluster.clone(), gvk);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        let ar = match cached {
            Some(ar) => ar,
            None => {
                let (ar, caps) = kube::discovery::pinned_kind(&client, &key.1)
                    .await
                    .map_err(|e| match e {
                        e @ (kube::Error::HyperError(_) | kube::Error::Service(_)) => {
                            api_error(&self.display, self.clusters.timeout(), e)
                        }
                        e => TargetError::Discovery {
                            target: self.display.clone(),
                            kind: self.target.kind.to_string(),
                            api_version: self.target.api_version.to_string(),
                            message: e.to_string(),
                        },
                    })?;
                if !caps.subresources.iter().any(|(sr, _)| sr.plural == "scale") {
                    return Err(TargetError::NoScale {
                        target: self.display.clone(),
                        kind: self.target.kind.to_string(),
                    });
                }
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, ar.clone());
                ar
            }
        };
        Ok(Api::namespaced_with(client, &self.namespace, &ar))
    }

    /// Run `op` (discovery and one `/scale` call) under the cluster's deadline: a silent API
    /// server costs the tick at most the deadline, and fails as the cluster's timeout.
    async fn bounded<T>(
        &self,
        op: impl std::future::Future<Output = Result<T, TargetError>>,
    ) -> Result<T, TargetError> {
        let after = self.clusters.timeout();
        let started = std::time::Instant::now();
        let res = tokio::time::timeout(after, op).await.unwrap_or_else(|_| {
            Err(TargetError::Timeout {
                target: self.display.clone(),
                after,
            })
        });
        let call = match &res {
            Ok(_) => Call::Worked { started },
            Err(e) if e.is_unreachable() => Call::Unreachable(e),
            Err(_) => Call::Refused,
        };
        self.clusters.note(&self.cluster, call);
        res
    }

    pub async fn replicas(&self) -> Result<u32, TargetError> {
        self.read().await.map(|r| r.replicas)
    }

    pub async fn read(&self) -> Result<ScaleRead, TargetError> {
        self.bounded(async {
            let scale = self
                .api()
                .await?
                .get_scale(&self.target.name)
                .await
                .map_err(|e| api_error(&self.display, self.clusters.timeout(), e))?;
            Ok(ScaleRead {
                replicas: scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32,
                selector: scale.status.and_then(|s| s.selector),
            })
        })
        .await
    }

    pub async fn scale(&self, replicas: u32) -> Result<bool, TargetError> {
        if self.dry_run {
            return Ok(false);
        }
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.bounded(async {
            self.api()
                .await?
                .patch_scale(
                    &self.target.name,
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map_err(|e| api_error(&self.display, self.clusters.timeout(), e))?;
            Ok(true)
        })
        .await
    }
}

pub mod env;
pub mod fleet;
pub mod hpa;
mod pods;

#[cfg(test)]
mod tests;
