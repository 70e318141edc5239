//! The scale target: read and write replicas through the `/scale` subresource of any kind
//! (resolved by API discovery), or a simulated target when no cluster is reachable (dry run).

use crate::spec::TargetRef;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

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
}

fn api_error(target: &str, e: kube::Error) -> TargetError {
    match &e {
        kube::Error::Api(s) if s.code == 404 => TargetError::NotFound {
            target: target.to_string(),
        },
        _ => TargetError::Api {
            target: target.to_string(),
            message: e.to_string(),
        },
    }
}

/// Resolves targets; discovery results are cached per group/version/kind.
#[derive(Clone)]
pub enum Targets {
    Kube {
        client: Client,
        dry_run: bool,
        cache: Arc<Mutex<HashMap<GroupVersionKind, ApiResource>>>,
    },
    Simulated,
}

impl Targets {
    pub fn kube(client: Client, dry_run: bool) -> Self {
        Targets::Kube {
            client,
            dry_run,
            cache: Arc::default(),
        }
    }

    pub fn is_dry_run(&self) -> bool {
        match self {
            Targets::Kube { dry_run, .. } => *dry_run,
            Targets::Simulated => true,
        }
    }

    /// A handle on one scaler's target. `initial` seeds a simulated target (minReplicaCount).
    pub fn target(&self, namespace: &str, r: &TargetRef, initial: u32) -> Target {
        match self {
            Targets::Kube {
                client,
                dry_run,
                cache,
            } => Target::Kube(Box::new(KubeTarget {
                client: client.clone(),
                namespace: namespace.to_string(),
                target: r.clone(),
                dry_run: *dry_run,
                cache: cache.clone(),
                display: format!("{namespace}/{}", r),
            })),
            Targets::Simulated => Target::Simulated(Arc::new(AtomicU32::new(initial))),
        }
    }
}

pub enum Target {
    Kube(Box<KubeTarget>),
    /// No cluster: the count follows the agent's own decisions.
    Simulated(Arc<AtomicU32>),
}

impl Target {
    pub async fn replicas(&self) -> Result<u32, TargetError> {
        match self {
            Target::Kube(k) => k.replicas().await,
            Target::Simulated(n) => Ok(n.load(Ordering::SeqCst)),
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
    client: Client,
    namespace: String,
    target: TargetRef,
    dry_run: bool,
    cache: Arc<Mutex<HashMap<GroupVersionKind, ApiResource>>>,
    display: String,
}

impl KubeTarget {
    async fn api(&self) -> Result<Api<DynamicObject>, TargetError> {
        let (group, version) = self.target.group_version();
        let gvk = GroupVersionKind::gvk(group, version, &self.target.kind);
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&gvk)
            .cloned();
        let ar = match cached {
            Some(ar) => ar,
            None => {
                let (ar, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
                    .await
                    .map_err(|e| TargetError::Discovery {
                        target: self.display.clone(),
                        kind: self.target.kind.clone(),
                        api_version: self.target.api_version.clone(),
                        message: e.to_string(),
                    })?;
                if !caps.subresources.iter().any(|(sr, _)| sr.plural == "scale") {
                    return Err(TargetError::NoScale {
                        target: self.display.clone(),
                        kind: self.target.kind.clone(),
                    });
                }
                self.cache
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(gvk, ar.clone());
                ar
            }
        };
        Ok(Api::namespaced_with(
            self.client.clone(),
            &self.namespace,
            &ar,
        ))
    }

    pub async fn replicas(&self) -> Result<u32, TargetError> {
        let scale = self
            .api()
            .await?
            .get_scale(&self.target.name)
            .await
            .map_err(|e| api_error(&self.display, e))?;
        Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0).max(0) as u32)
    }

    pub async fn scale(&self, replicas: u32) -> Result<bool, TargetError> {
        if self.dry_run {
            return Ok(false);
        }
        let patch = serde_json::json!({ "spec": { "replicas": replicas } });
        self.api()
            .await?
            .patch_scale(
                &self.target.name,
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .map_err(|e| api_error(&self.display, e))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
