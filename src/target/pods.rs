//! The target's pods: listed by the selector of its `/scale`, and their deletion cost set just
//! before a scale-down, so that its ReplicaSet removes idle pods first (`decide::idle_first`).
//! Each call is under the cluster's deadline, as the `/scale` calls are.

use super::{KubeTarget, TargetError, api_error};
use crate::decide::idle_first::{COST_ANNOTATION, Pod};
use k8s_openapi::api::core::v1::Pod as K8sPod;
use kube::api::{Api, ListParams, Patch, PatchParams};

impl KubeTarget {
    async fn pod_api(&self) -> Result<Api<K8sPod>, TargetError> {
        let client = self
            .clusters
            .client(&self.cluster)
            .await
            .map_err(TargetError::Cluster)?;
        Ok(Api::namespaced(client, &self.namespace))
    }

    /// The pods `selector` matches that are not being deleted, with their deletion cost. Only
    /// their metadata is read.
    pub async fn pods(&self, selector: &str) -> Result<Vec<Pod>, TargetError> {
        let what = format!("{}: pods {selector:?}", self.display);
        self.bounded(async {
            let list = self
                .pod_api()
                .await?
                .list_metadata(&ListParams::default().labels(selector))
                .await
                .map_err(|e| api_error(&what, self.clusters.timeout(), e))?;
            Ok(list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter_map(|p| {
                    let cost = p
                        .metadata
                        .annotations
                        .and_then(|mut a| a.remove(COST_ANNOTATION));
                    p.metadata.name.map(|name| Pod { name, cost })
                })
                .collect())
        })
        .await
    }

    /// Set `pod`'s deletion cost (a merge patch of that one annotation): whether it was
    /// written (a dry run never writes).
    pub async fn set_cost(&self, pod: &str, cost: i32) -> Result<bool, TargetError> {
        if self.dry_run {
            return Ok(false);
        }
        let what = format!("{}: pod {pod}", self.display);
        let patch = serde_json::json!({ "metadata": { "annotations": { COST_ANNOTATION: cost.to_string() } } });
        self.bounded(async {
            self.pod_api()
                .await?
                .patch_metadata(pod, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .map_err(|e| api_error(&what, self.clusters.timeout(), e))?;
            Ok(true)
        })
        .await
    }
}
