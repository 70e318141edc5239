//! The TemporalScaler spec: one Rust type for config files, custom resources, `check` and `explain`.
//! Raw (as written by users) here; `validate` turns it into a typed [`ScalerConfig`].

mod config;
pub mod env;
pub mod key;
pub mod pem;
mod placement;
pub mod schedule;
mod trigger;
mod validate;
mod versioning;

pub use config::*;
pub use key::{ScalerKey, SourceKind};
pub use placement::{
    LOCAL, Placement, PlacementCluster, PlacementPolicy, normalize as placement_name,
};
pub use trigger::{ENCRYPTED_KEY_HINT, decode_pem, parse_duration, validate_filled};
pub use validate::*;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const API_GROUP: &str = "scaling.example.com";
pub const API_VERSION: &str = "scaling.example.com/v1alpha1";
pub const KIND: &str = "TemporalScaler";
/// KEDA's pause annotations, honoured on a TemporalScaler as on a ScaledObject: `paused:
/// "true"` leaves the target as it is, `paused-replicas: "N"` pins it at N.
pub const PAUSED: &str = "autoscaling.keda.sh/paused";
pub const PAUSED_REPLICAS: &str = "autoscaling.keda.sh/paused-replicas";

/// Defaults follow KEDA's ScaledObject and Temporal scaler (documented in the README).
pub mod defaults {
    pub const POLLING_INTERVAL: i32 = 30;
    pub const COOLDOWN_PERIOD: i32 = 300;
    pub const MIN_REPLICA_COUNT: i32 = 0;
    pub const MAX_REPLICA_COUNT: i32 = 100;
    pub const NAMESPACE: &str = "default";
    pub const TARGET_QUEUE_SIZE: f64 = 5.0;
    pub const ACTIVATION_TARGET_QUEUE_SIZE: f64 = 0.0;
    pub const MIN_CONNECT_TIMEOUT_SECS: u64 = 5;
    pub const SCALE_UP_STABILIZATION: i32 = 0;
    pub const SCALE_DOWN_STABILIZATION: i32 = 300;
    pub const TOLERANCE: f64 = 0.1;
    pub const SCALE_TO_ZERO_READS: i32 = 3;
    /// `workerHeartbeatMaxAgeSeconds`: three of the SDKs' default 60 s heartbeat intervals.
    pub const WORKER_HEARTBEAT_MAX_AGE_SECS: f64 = 180.0;
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "scaling.example.com",
    version = "v1alpha1",
    kind = "TemporalScaler",
    plural = "temporalscalers",
    shortname = "ts",
    namespaced,
    status = "TemporalScalerStatus",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.scaleTargetRef.name"}"#,
    printcolumn = r#"{"name":"Min","type":"integer","jsonPath":".spec.minReplicaCount"}"#,
    printcolumn = r#"{"name":"Max","type":"integer","jsonPath":".spec.maxReplicaCount"}"#,
    printcolumn = r#"{"name":"Current","type":"integer","jsonPath":".status.currentReplicas"}"#,
    printcolumn = r#"{"name":"Desired","type":"integer","jsonPath":".status.desiredReplicas"}"#,
    printcolumn = r#"{"name":"Active","type":"string","jsonPath":".status.conditions[?(@.type==\"Active\")].status"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemporalScalerSpec {
    pub scale_target_ref: ScaleTargetRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 86400))]
    pub polling_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 86400))]
    pub initial_cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub idle_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedSpec>,
    /// The target's replicas spread over several clusters (the same kind and name in each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    /// How a scale-down picks the pods that go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDownSpec>,
    #[schemars(length(min = 1))]
    pub triggers: Vec<TriggerSpec>,
}

/// `spec.scaleDown`: how a scale-down picks the pods that go.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleDownSpec {
    /// Idle pods first: before a scale-down, set each pod's
    /// controller.kubernetes.io/pod-deletion-cost from the worker heartbeats (busy pods cost
    /// their slots in use, idle ones 0), so the ReplicaSet removes idle pods first. Default
    /// true; it takes effect with the capacity signal (targetSlotUtilization) on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_first: Option<bool>,
}

/// What the agent reports on a TemporalScaler (written only by the lease holder).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemporalScalerStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<TriggerStatus>,
    /// Each cluster of a placement (or the one remote cluster): its share, its count, whether
    /// it is reachable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// What the Schedules signal learned of each schedule's last run: kept here so that a
    /// restarted agent, or a new leader, pre-scales to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<LearnedScheduleStatus>,
}

/// One schedule's learned need (`scheduleLeadSeconds`).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LearnedScheduleStatus {
    /// `<temporal namespace>/<schedule id>`.
    pub schedule: String,
    /// The most replicas the scaler needed while that run was in progress.
    pub learned_replicas: i32,
    /// The action whose run it was learned from.
    pub action_time: Time,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    pub name: String,
    /// The replicas placed in this cluster by the last decision.
    pub share: i32,
    /// As last read from its `/scale`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_replicas: Option<i32>,
    pub reachable: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TriggerStatus {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog_age_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The server throttles this queue: no replicas are added for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limited: Option<bool>,
    /// Which signal set this trigger's recommendation (backlog, slotUtilization, busyWorkers,
    /// dispatching, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<String>,
    /// The worker-capacity signal, on triggers with `targetSlotUtilization`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<CapacityStatus>,
}

/// What the workers' heartbeats said (`targetSlotUtilization`).
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapacityStatus {
    /// Distinct hosts reporting heartbeats: the replica basis.
    pub hosts: i32,
    pub slots_used: i64,
    pub slots_available: i64,
    /// The most constrained slot kind's used / (used + available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f64>,
    /// Why the server cannot give the signal (the trigger scales on its backlog).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// The CustomResourceDefinition, as `temporal-autoscaler crd` prints it.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let crd = TemporalScaler::crd();
    // Serializing a CRD we just built cannot fail.
    serde_saphyr::to_string(&crd).unwrap_or_default()
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScaleTargetRef {
    /// Defaults to `apps/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Defaults to `Deployment`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    pub name: String,
    /// A cluster the agent knows (its settings' `clusters`); the agent's own when unset,
    /// empty or `local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// The container whose environment `<key>FromEnv` trigger keys read (the first one when
    /// unset), as in KEDA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_source_container_name: Option<String>,
}

/// `spec.placement`: one total, split over clusters.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementSpec {
    #[schemars(length(min = 1, max = 32))]
    pub clusters: Vec<PlacementClusterSpec>,
    /// `Weighted` (default): by weight, largest remainder. `Failover`: in the listed order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Weighted", "Failover"]))]
    pub policy: Option<String>,
    /// Failed `/scale` reads in a row before a cluster's share moves to the others (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub failure_threshold: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlacementClusterSpec {
    /// A cluster the agent knows; empty or `local` for its own.
    pub name: String,
    /// Default 1; 0 takes only what the others cannot hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub weight: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_replica_count: Option<i32>,
    /// Defaults to the scaler's maxReplicaCount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_replica_count: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FallbackSpec {
    #[schemars(range(min = 1))]
    pub failure_threshold: i32,
    #[schemars(range(min = 0))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["static", "currentReplicas", "currentReplicasIfHigher", "currentReplicasIfLower"]))]
    pub behavior: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdvancedSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HpaConfigSpec>,
    /// Consecutive idle reads (every trigger readable, none active) required, over the whole
    /// cooldownPeriod, before scaling to zero (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000))]
    pub scale_to_zero_reads: Option<i32>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HpaConfigSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<BehaviorSpec>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BehaviorSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_up: Option<ScalingRulesSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScalingRulesSpec>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalingRulesSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub stabilization_window_seconds: Option<i32>,
    /// `Max` (default), `Min` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Max", "Min", "Disabled"]))]
    pub select_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicySpec>>,
    /// Relative tolerance around the target before a change is made (HPA default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub tolerance: Option<f64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["Pods", "Percent"]))]
    pub type_: String,
    #[schemars(range(min = 1))]
    pub value: i32,
    #[schemars(range(min = 1, max = 1800))]
    pub period_seconds: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerSpec {
    /// Only `temporal`.
    #[serde(rename = "type")]
    #[schemars(extend("enum" = ["temporal"]))]
    pub type_: String,
    /// Optional trigger name, used in metrics and status (defaults to `trigger<index>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// String keys and values, as in KEDA (`targetQueueSize: "5"`).
    pub metadata: BTreeMap<String, String>,
    /// Credentials read from Secrets in the scaler's own namespace, with the entries of KEDA's
    /// `TriggerAuthentication.spec.secretTargetRef` (the agent needs `get` on those Secrets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_target_ref: Vec<SecretTargetRef>,
}

/// One credential taken from a Secret key.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecretTargetRef {
    /// Which trigger parameter the value feeds.
    #[schemars(extend("enum" = ["apiKey", "ca", "cert", "key"]))]
    pub parameter: String,
    /// Name of a Secret in the scaler's namespace.
    pub name: String,
    /// Key within the Secret's data.
    pub key: String,
}

/// A TemporalScaler document as found in a config file. Unlike the CR's `ObjectMeta`,
/// file metadata is closed, so a misspelled key is an error instead of being ignored.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScalerDocument {
    pub api_version: String,
    pub kind: String,
    pub metadata: DocumentMeta,
    pub spec: TemporalScalerSpec,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DocumentMeta {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed CRD is the generated one: regenerate with
    /// `cargo run -- crd > config/crd/temporalscalers.yaml`.
    #[test]
    fn committed_crd_matches_the_generated_one() {
        let committed = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/crd/temporalscalers.yaml"
        ))
        .unwrap();
        assert!(
            committed == crd_yaml(),
            "config/crd/temporalscalers.yaml is stale: run `cargo run -- crd > config/crd/temporalscalers.yaml`"
        );
    }

    /// What the cluster tests apply (`tests/support::apply_crd`): the YAML read back into the
    /// API type is the CRD itself.
    #[test]
    fn the_crd_yaml_reads_back_as_the_crd() {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::CustomResourceExt;
        let read: CustomResourceDefinition = serde_saphyr::from_str(&crd_yaml()).unwrap();
        assert_eq!(read, TemporalScaler::crd());
    }

    /// The cluster tests create TemporalScalers from YAML, and write a kubeconfig for the
    /// agent with the same library: both read back as written.
    #[test]
    fn a_temporal_scaler_and_a_kubeconfig_round_trip_through_yaml() {
        let cr: TemporalScaler = serde_saphyr::from_str(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {name: e2e, namespace: shop}\nspec:\n  scaleTargetRef: {name: worker}\n  pollingInterval: 1\n  triggers:\n    - type: temporal\n      metadata: {endpoint: \"t:7233\", taskQueue: q, targetQueueSize: \"5\"}\n",
        )
        .unwrap();
        assert_eq!(cr.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(cr.spec.triggers[0].metadata["targetQueueSize"], "5");
        let kc = kube::config::Kubeconfig::from_yaml(
            "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://10.0.0.1:6443\"}}]\nusers: [{name: u, user: {token: t, as: \"system:serviceaccount:ns:sa\", as-groups: [g]}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n",
        )
        .unwrap();
        let written = serde_saphyr::to_string(&kc).unwrap();
        let again = kube::config::Kubeconfig::from_yaml(&written).unwrap();
        assert_eq!(
            serde_json::to_value(&again).unwrap(),
            serde_json::to_value(&kc).unwrap()
        );
        let user = again.auth_infos[0].auth_info.as_ref().unwrap();
        assert_eq!(
            user.impersonate.as_deref(),
            Some("system:serviceaccount:ns:sa")
        );
    }

    #[test]
    fn the_crd_is_structural_with_status_and_printer_columns() {
        let crd: serde_json::Value = serde_saphyr::from_str(&crd_yaml()).unwrap();
        let v = &crd["spec"]["versions"][0];
        assert_eq!(
            crd["spec"]["names"]["shortNames"],
            serde_json::json!(["ts"])
        );
        assert_eq!(crd["spec"]["scope"], "Namespaced");
        assert_eq!(v["subresources"]["status"], serde_json::json!({}));
        let cols: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            cols,
            [
                "Target", "Min", "Max", "Current", "Desired", "Active", "Ready", "Age"
            ]
        );
        // Structural: every node has a type, and no oneOf/anyOf/allOf or unsigned formats.
        fn walk(node: &serde_json::Value, path: &str) {
            if let Some(obj) = node.as_object() {
                for bad in ["oneOf", "anyOf", "allOf", "$ref"] {
                    assert!(!obj.contains_key(bad), "{path} has {bad}");
                }
                if obj.contains_key("properties")
                    || obj.contains_key("items")
                    || obj.contains_key("format")
                {
                    assert!(obj.contains_key("type"), "{path} has no type");
                }
                if let Some(f) = obj.get("format").and_then(|f| f.as_str()) {
                    assert!(!f.starts_with("uint"), "{path} has format {f}");
                }
                for (k, v) in obj {
                    walk(v, &format!("{path}.{k}"));
                }
            }
        }
        walk(&v["schema"]["openAPIV3Schema"], "schema");
    }
}
