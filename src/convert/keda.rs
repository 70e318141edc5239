//! KEDA's schema as the converter reads it: which documents it converts, the temporal
//! trigger's keys, and TriggerAuthentication documents.

use super::Mapping;
use serde_json::Value;

pub(super) const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
pub(super) const PAUSE_ANNOTATIONS: &[&str] = &[
    "autoscaling.keda.sh/paused",
    "autoscaling.keda.sh/paused-replicas",
];

/// KEDA temporal-trigger keys (kedacore/keda main, `pkg/scalers/temporal_scaler.go`) carried
/// over as they are: the agent reads each with KEDA's meaning, `<key>FromEnv` included (the
/// scale target's container environment). The agent's own extra keys
/// (`targetBacklogAgeSeconds`, …) are not listed: KEDA has no such input. A test checks the
/// agent accepts every one of these.
pub(super) const ACCEPTED_KEYS: &[&str] = &[
    "endpoint",
    "endpointFromEnv",
    "namespace",
    "namespaceFromEnv",
    "taskQueue",
    "taskQueueFromEnv",
    "queueTypes",
    "targetQueueSize",
    "activationTargetQueueSize",
    "apiKeyFromEnv",
    "tlsServerName",
    "unsafeSsl",
    "buildId",
    "buildIdFromEnv",
    "selectAllActive",
    "selectUnversioned",
    "workerDeploymentName",
    "workerDeploymentNameFromEnv",
    "workerDeploymentBuildId",
    "workerDeploymentBuildIdFromEnv",
    "minConnectTimeout",
    "includeRunningWorkflowCount",
    "workflowTaskQueueForCount",
    "workflowTaskQueueForCountFromEnv",
];
/// Keys KEDA reads from a TriggerAuthentication only (`order=authParams`): in the metadata
/// it ignores them.
pub(super) const AUTH_ONLY_KEYS: &[&str] = &["apiKey", "cert", "key", "ca", "keyPassword"];
/// Keys of a design for KEDA (`workerVersioningType` with `deploymentName`) that was never
/// merged: KEDA main ignores them.
pub(super) const UNMERGED_KEYS: &[&str] = &["workerVersioningType", "deploymentName"];

/// Why a document is skipped: it is not a `keda.sh/v1alpha1` ScaledObject with a temporal
/// trigger. `None` for one to convert.
pub(super) fn skip_reason(value: &Value) -> Option<String> {
    let api = value["apiVersion"].as_str();
    let why = match (api, value["kind"].as_str()) {
        (Some(KEDA_API_VERSION), Some("ScaledObject")) => return no_temporal_trigger(value),
        (_, Some("ScaledObject")) => format!(
            "apiVersion {:?} is not {KEDA_API_VERSION}; skipped",
            api.unwrap_or_default()
        ),
        (_, Some("ScaledJob")) => "ScaledJob is not supported (the agent scales workloads through /scale and runs no Jobs); skipped".to_string(),
        (Some(KEDA_API_VERSION), Some("TriggerAuthentication")) => "not a ScaledObject; skipped (read for the authenticationRef of ScaledObjects in this file)".to_string(),
        (_, Some(k)) => format!("{k} is not a KEDA ScaledObject; skipped"),
        (_, None) => "no kind; skipped".to_string(),
    };
    Some(why)
}

/// Why a KEDA ScaledObject is skipped: it has no temporal trigger.
fn no_temporal_trigger(value: &Value) -> Option<String> {
    let types: Vec<&str> = value["spec"]["triggers"]
        .as_array()
        .map(|s| {
            s.iter()
                .map(|t| t["type"].as_str().unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default();
    if types.contains(&"temporal") {
        return None;
    }
    let found = if types.is_empty() {
        "it has no triggers".to_string()
    } else {
        format!("its trigger types: {}", types.join(", "))
    };
    Some(format!("no trigger of type temporal ({found}); skipped"))
}

/// A TriggerAuthentication of the same file.
pub(super) struct AuthDoc<'v> {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) spec: Option<&'v Mapping>,
}

impl<'v> AuthDoc<'v> {
    pub(super) fn from_doc((_, v): &'v (String, Value)) -> Option<Self> {
        if v["apiVersion"].as_str() != Some(KEDA_API_VERSION)
            || v["kind"].as_str() != Some("TriggerAuthentication")
        {
            return None;
        }
        Some(Self {
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_string(),
            name: v["metadata"]["name"].as_str()?.to_string(),
            spec: v["spec"].as_object(),
        })
    }
}
