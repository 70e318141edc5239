//! The TemporalScaler spec: one Rust type for config files, custom resources, `check` and `explain`.
//! Raw (as written by users) here; `validate` turns it into a typed [`ScalerConfig`].

mod validate;

pub use validate::*;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const API_GROUP: &str = "scaling.example.com";
pub const API_VERSION: &str = "scaling.example.com/v1alpha1";
pub const KIND: &str = "TemporalScaler";

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
}

#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "scaling.example.com",
    version = "v1alpha1",
    kind = "TemporalScaler",
    plural = "temporalscalers",
    shortname = "ts",
    namespaced
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemporalScalerSpec {
    pub scale_target_ref: ScaleTargetRef,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_cooldown_period: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_replica_count: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<FallbackSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advanced: Option<AdvancedSpec>,
    pub triggers: Vec<TriggerSpec>,
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
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FallbackSpec {
    pub failure_threshold: i32,
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AdvancedSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizontal_pod_autoscaler_config: Option<HpaConfigSpec>,
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
    pub stabilization_window_seconds: Option<i32>,
    /// `Max` (default), `Min` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicySpec>>,
    /// Relative tolerance around the target before a change is made (HPA default 0.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySpec {
    /// `Pods` or `Percent`.
    #[serde(rename = "type")]
    pub type_: String,
    pub value: i32,
    pub period_seconds: i32,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TriggerSpec {
    /// Only `temporal`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Optional trigger name, used in metrics and status (defaults to `trigger<index>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// String keys and values, as in KEDA (`targetQueueSize: "5"`).
    pub metadata: BTreeMap<String, String>,
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
