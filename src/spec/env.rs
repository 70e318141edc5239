//! KEDA's `<key>FromEnv` trigger keys: when a key is empty, its value is the named environment
//! variable of the scale target's container (KEDA's "resolved env"). Validation cannot read
//! it, so a trigger that uses one keeps what it needs to be validated again once the agent
//! has read the target ([`FromEnv::fill`]); until then its values are placeholders (`$VAR`).

use super::TriggerSpec;

/// The keys KEDA's temporal scaler reads from the target's environment
/// (`order=…resolvedEnv` in `pkg/scalers/temporal_scaler.go`, kedacore/keda main).
pub const FROM_ENV_KEYS: &[&str] = &[
    "endpoint",
    "namespace",
    "taskQueue",
    "buildId",
    "workerDeploymentName",
    "workerDeploymentBuildId",
    "workflowTaskQueueForCount",
    "apiKey",
];

/// The `<key>FromEnv` name of `key`.
pub fn from_env_key(key: &str) -> String {
    format!("{key}FromEnv")
}

/// A trigger with keys to read from the target's environment.
#[derive(Clone, Debug, PartialEq)]
pub struct FromEnv {
    /// The trigger's index in `spec.triggers`, for error paths.
    pub index: usize,
    pub spec: TriggerSpec,
    /// (key, variable), for each key whose value comes from the environment.
    pub vars: Vec<(&'static str, String)>,
    /// `scaleTargetRef.envSourceContainerName`: whose environment (the first container's when
    /// unset), as in KEDA.
    pub container: Option<String>,
}

impl FromEnv {
    /// The keys of `spec` that are to come from the environment: KEDA reads `<key>FromEnv`
    /// only when `<key>` itself is empty.
    pub fn of(index: usize, spec: &TriggerSpec, container: Option<&str>) -> Option<FromEnv> {
        let set = |k: &str| spec.metadata.get(k).is_some_and(|v| !v.trim().is_empty());
        let vars: Vec<(&'static str, String)> = FROM_ENV_KEYS
            .iter()
            .filter(|k| !set(k))
            .filter_map(|k| {
                let var = spec.metadata.get(&from_env_key(k))?.trim();
                (!var.is_empty()).then(|| (*k, var.to_string()))
            })
            .collect();
        (!vars.is_empty()).then(|| FromEnv {
            index,
            spec: spec.clone(),
            vars,
            container: container.map(str::to_string),
        })
    }

    /// The trigger with each key set from `lookup(variable)` (and its `<key>FromEnv` removed),
    /// or the errors of the variables `lookup` could not give, each as
    /// `(field path, why)`.
    pub fn fill(
        &self,
        lookup: impl Fn(&str) -> Result<String, String>,
    ) -> Result<TriggerSpec, Vec<(String, String)>> {
        let mut spec = self.spec.clone();
        let mut errors = Vec::new();
        for (key, var) in &self.vars {
            let from = from_env_key(key);
            match lookup(var) {
                Ok(v) => {
                    spec.metadata.remove(&from);
                    spec.metadata.insert(key.to_string(), v);
                }
                Err(why) => errors.push((
                    format!("spec.triggers[{}].metadata.{from}", self.index),
                    why,
                )),
            }
        }
        if errors.is_empty() {
            Ok(spec)
        } else {
            Err(errors)
        }
    }
}
