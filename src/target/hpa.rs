//! Never fight another autoscaler: the HorizontalPodAutoscalers (autoscaling/v2) of each
//! namespace in use, so that a scaler whose target an HPA already scales does not write it.
//! KEDA's ScaledObjects work through an HPA, so this covers KEDA too (the usual case: a KEDA
//! user runs `convert` and applies both).
//!
//! The read is cheap: one list per (cluster, namespace) at most every `recheck` (30 s), shared
//! by every scaler there (one in flight at a time), under the cluster's deadline. A failed list
//! (no permission, a silent API server) blocks nothing: the scalers go on, and it is logged
//! once per outage.

use super::{KubeTarget, TargetError, api_error};
use crate::outage::{Note, Outage};
use crate::spec::TargetRef;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use kube::api::{Api, ListParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a namespace's list of HPAs is trusted.
pub const HPA_RECHECK: Duration = Duration::from_secs(30);

/// What an HPA scales.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HpaRef {
    pub name: String,
    /// `scaleTargetRef`: its API group (without version), kind and name.
    pub group: String,
    pub kind: String,
    pub target: String,
}

impl HpaRef {
    fn scales(&self, t: &TargetRef) -> bool {
        self.kind == t.kind && self.target == t.name && self.group == t.group_version().0
    }
}

#[derive(Default)]
struct Entry {
    /// The HPAs as last listed, and when.
    listed: Option<(Instant, Arc<Vec<HpaRef>>)>,
    outage: Outage,
}

/// One (cluster, namespace)'s entry: locked while it is listed, so one list is in flight.
type Shared = Arc<tokio::sync::Mutex<Entry>>;

/// The HPAs of each (cluster, namespace), listed on demand and kept for `recheck`.
pub struct HpaIndex {
    entries: Mutex<HashMap<(String, String), Shared>>,
    recheck: Duration,
}

impl Default for HpaIndex {
    fn default() -> Self {
        HpaIndex {
            entries: Mutex::default(),
            recheck: HPA_RECHECK,
        }
    }
}

impl HpaIndex {
    /// List again at most every `d` (tests).
    pub fn with_recheck(d: Duration) -> Self {
        HpaIndex {
            recheck: d,
            ..HpaIndex::default()
        }
    }

    fn entry(&self, cluster: &str, namespace: &str) -> Shared {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((cluster.to_string(), namespace.to_string()))
            .or_default()
            .clone()
    }
}

impl KubeTarget {
    /// The HPA that scales this target too (`namespace/name`), if one does. `None` also when
    /// the HPAs cannot be listed: that is logged, and blocks no write.
    pub async fn competing_hpa(&self) -> Option<String> {
        let entry = self.hpas.entry(&self.cluster, &self.namespace);
        // One list in flight per namespace: the others wait for it and share it.
        let mut e = entry.lock().await;
        let fresh = e
            .listed
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < self.hpas.recheck);
        if !fresh {
            match self.list_hpas().await {
                Ok(refs) => {
                    if let Some(r) = e.outage.success(Instant::now()) {
                        tracing::info!(cluster = %self.cluster, namespace = %self.namespace, lasted_secs = r.lasted.as_secs(), "HorizontalPodAutoscalers readable again");
                    }
                    e.listed = Some((Instant::now(), Arc::new(refs)));
                }
                Err(err) => {
                    self.note_list_failure(&mut e.outage, &err);
                    // Kept from the last good list, but tried again at the next use only
                    // after a recheck period (not by every scaler of the namespace).
                    let kept = e.listed.take().map_or_else(Default::default, |l| l.1);
                    e.listed = Some((Instant::now(), kept));
                }
            }
        }
        let (_, refs) = e.listed.as_ref()?;
        refs.iter()
            .find(|h| h.scales(&self.target))
            .map(|h| format!("{}/{}", self.namespace, h.name))
    }

    async fn list_hpas(&self) -> Result<Vec<HpaRef>, TargetError> {
        let what = format!("{}: HorizontalPodAutoscalers", self.display);
        self.bounded(async {
            let client = self
                .clusters
                .client(&self.cluster)
                .await
                .map_err(TargetError::Cluster)?;
            let list = Api::<HorizontalPodAutoscaler>::namespaced(client, &self.namespace)
                .list(&ListParams::default())
                .await
                .map_err(|e| api_error(&what, self.clusters.timeout(), e))?;
            Ok(list
                .items
                .into_iter()
                .filter_map(|h| {
                    let spec = h.spec?;
                    let r = spec.scale_target_ref;
                    let group = r
                        .api_version
                        .as_deref()
                        .and_then(|v| v.split_once('/').map(|(g, _)| g.to_string()))
                        .unwrap_or_default();
                    Some(HpaRef {
                        name: h.metadata.name?,
                        group,
                        kind: r.kind,
                        target: r.name,
                    })
                })
                .collect())
        })
        .await
    }

    fn note_list_failure(&self, outage: &mut Outage, e: &TargetError) {
        match outage.failure(Instant::now(), e.kind()) {
            Note::First => {
                tracing::warn!(cluster = %self.cluster, namespace = %self.namespace, error = %e, "cannot list HorizontalPodAutoscalers (RBAC: list on autoscaling horizontalpodautoscalers); a competing HPA cannot be seen, the scalers here go on (logged again once a minute while it lasts)");
            }
            Note::Summary { failures, lasting } => {
                tracing::warn!(cluster = %self.cluster, namespace = %self.namespace, error = %e, failures, lasting_secs = lasting.as_secs(), "still cannot list HorizontalPodAutoscalers");
            }
            Note::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(api_version: &str, kind: &str, name: &str) -> TargetRef {
        TargetRef {
            api_version: api_version.to_string().into(),
            kind: kind.to_string().into(),
            name: name.into(),
        }
    }

    #[test]
    fn an_hpa_scales_a_target_of_the_same_group_kind_and_name_whatever_the_version() {
        let h = HpaRef {
            name: "keda-hpa-orders".into(),
            group: "apps".into(),
            kind: "Deployment".into(),
            target: "orders-worker".into(),
        };
        assert!(h.scales(&target("apps/v1", "Deployment", "orders-worker")));
        assert!(!h.scales(&target("apps/v1", "Deployment", "payments-worker")));
        assert!(!h.scales(&target("apps/v1", "StatefulSet", "orders-worker")));
        assert!(!h.scales(&target(
            "argoproj.io/v1alpha1",
            "Deployment",
            "orders-worker"
        )));
        let core = HpaRef {
            group: String::new(),
            kind: "ReplicationController".into(),
            ..h
        };
        assert!(core.scales(&target("v1", "ReplicationController", "orders-worker")));
    }
}
