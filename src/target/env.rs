//! The environment of the scale target's container, as KEDA resolves it for `<key>FromEnv`
//! trigger keys: the pod template of the target (`spec.template.spec`), the container named
//! by `scaleTargetRef.envSourceContainerName` or else the first one, its `envFrom`
//! ConfigMaps and Secrets (with their prefix), then its `env` entries in order: plain values
//! with `$(VAR)` references to what came before, and ConfigMap and Secret keys. `fieldRef`
//! and `resourceFieldRef` entries are skipped (KEDA's rule: they have no value before a pod
//! exists). Every call is under the cluster's deadline.
//!
//! Sources are all read, but a source that could not be read (forbidden, missing) matters
//! only when the variable asked for is not found elsewhere: its error is then named.

use super::{KubeTarget, TargetError, api_error};
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvFromSource, Secret};
use kube::api::Api;
use std::collections::{BTreeMap, HashMap};

/// One container's resolved environment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerEnv {
    /// `container "worker" of apps/v1 Deployment shop/orders`, for messages.
    pub source: String,
    pub vars: HashMap<String, String>,
    /// Sources that could not be read, each as `configMap shop/x: forbidden`.
    pub unreadable: Vec<String>,
}

impl ContainerEnv {
    /// Why `var` has no value here, for an error message.
    pub fn missing(&self, var: &str) -> String {
        let mut why = format!("{var} is not set in {}", self.source);
        if !self.unreadable.is_empty() {
            why.push_str(&format!(
                " (unreadable, it may be there: {})",
                self.unreadable.join("; ")
            ));
        }
        why
    }
}

/// A ConfigMap or Secret an env entry reads: its kind and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceRef {
    ConfigMap(String),
    Secret(String),
}

impl SourceRef {
    fn describe(&self, namespace: &str) -> String {
        match self {
            SourceRef::ConfigMap(n) => format!("configMap {namespace}/{n}"),
            SourceRef::Secret(n) => format!("secret {namespace}/{n}"),
        }
    }
}

/// What reading a source gave: its data, or why not.
pub type Sources = BTreeMap<SourceRef, Result<BTreeMap<String, String>, String>>;

/// The container `name` (the first when `None`) of a pod spec given as JSON.
pub fn pick_container(
    pod_spec: &serde_json::Value,
    name: Option<&str>,
) -> Result<Container, String> {
    let containers: Vec<Container> = pod_spec
        .get("containers")
        .cloned()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| format!("its pod template's containers could not be read: {e}"))?
        .unwrap_or_default();
    match name {
        Some(n) => containers
            .into_iter()
            .find(|c| c.name == n)
            .ok_or_else(|| format!("it has no container named {n:?} (envSourceContainerName)")),
        None => containers
            .into_iter()
            .next()
            .ok_or_else(|| "its pod template has no containers".to_string()),
    }
}

/// Every ConfigMap and Secret the container's environment reads.
pub fn sources_of(c: &Container) -> Vec<SourceRef> {
    let mut out = Vec::new();
    for f in c.env_from.iter().flatten() {
        if let Some(r) = &f.config_map_ref {
            out.push(SourceRef::ConfigMap(r.name.clone()));
        }
        if let Some(r) = &f.secret_ref {
            out.push(SourceRef::Secret(r.name.clone()));
        }
    }
    for e in c.env.iter().flatten() {
        let Some(from) = &e.value_from else { continue };
        if let Some(r) = &from.config_map_key_ref {
            out.push(SourceRef::ConfigMap(r.name.clone()));
        }
        if let Some(r) = &from.secret_key_ref {
            out.push(SourceRef::Secret(r.name.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The container's environment from its sources (pure): `envFrom` first (a later source
/// wins), then `env` in order (overriding), as KEDA's `resolveEnv` does. A value from an
/// unreadable source is absent, and the source is listed in `unreadable`, unless optional.
pub fn resolve(c: &Container, namespace: &str, sources: &Sources, source: String) -> ContainerEnv {
    let mut env = ContainerEnv {
        source,
        ..Default::default()
    };
    let note = |env: &mut ContainerEnv, r: &SourceRef, why: &str| {
        let line = format!("{}: {why}", r.describe(namespace));
        if !env.unreadable.contains(&line) {
            env.unreadable.push(line);
        }
    };
    for f in c.env_from.iter().flatten() {
        let EnvFromSource {
            config_map_ref,
            secret_ref,
            prefix,
        } = f;
        let (r, optional) = match (config_map_ref, secret_ref) {
            (Some(r), _) => (SourceRef::ConfigMap(r.name.clone()), r.optional),
            (None, Some(r)) => (SourceRef::Secret(r.name.clone()), r.optional),
            (None, None) => continue,
        };
        match sources.get(&r) {
            Some(Ok(data)) => {
                let prefix = prefix.as_deref().unwrap_or("");
                for (k, v) in data {
                    env.vars.insert(format!("{prefix}{k}"), v.clone());
                }
            }
            Some(Err(why)) if optional != Some(true) => note(&mut env, &r, why),
            _ => {}
        }
    }
    for e in c.env.iter().flatten() {
        let value = match (&e.value, &e.value_from) {
            (Some(v), _) if !v.is_empty() => expand(v, &env.vars),
            (_, Some(from)) => {
                let (r, key, optional) = match (&from.config_map_key_ref, &from.secret_key_ref) {
                    (Some(k), _) => (SourceRef::ConfigMap(k.name.clone()), &k.key, k.optional),
                    (None, Some(k)) => (SourceRef::Secret(k.name.clone()), &k.key, k.optional),
                    // fieldRef, resourceFieldRef: no value before a pod exists (KEDA skips them).
                    (None, None) => continue,
                };
                match sources.get(&r).map(|s| s.as_ref().map(|d| d.get(key))) {
                    Some(Ok(Some(v))) => v.clone(),
                    _ if optional == Some(true) => continue,
                    Some(Ok(None)) => {
                        note(
                            &mut env,
                            &r,
                            &format!("has no key {key:?} (for {})", e.name),
                        );
                        continue;
                    }
                    Some(Err(why)) => {
                        note(&mut env, &r, why);
                        continue;
                    }
                    None => continue,
                }
            }
            _ => String::new(),
        };
        env.vars.insert(e.name.clone(), value);
    }
    env
}

/// Kubernetes' `$(VAR)` expansion against the variables defined before: `$$` is a literal
/// `$`, and an undefined reference stays as written.
pub fn expand(value: &str, vars: &HashMap<String, String>) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match vars.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&format!("$({name})")),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

impl KubeTarget {
    /// The resolved environment of the target's container (`container`, else the first).
    pub async fn container_env(
        &self,
        container: Option<&str>,
    ) -> Result<ContainerEnv, TargetError> {
        let what = format!("{}: environment", self.display);
        self.bounded(async {
            let obj = self
                .api()
                .await?
                .get(&self.target.name)
                .await
                .map_err(|e| match api_error(&self.display, self.clusters.timeout(), e) {
                    TargetError::Api { target, message } if message.contains("forbidden") => {
                        TargetError::Api {
                            target,
                            message: format!(
                                "{}; reading the target's environment needs get on it (chart value rbac.targetEnvironment)",
                                short(&message)
                            ),
                        }
                    }
                    e => e,
                })?;
            let pod_spec = obj
                .data
                .pointer("/spec/template/spec")
                .cloned()
                .unwrap_or_default();
            let c = pick_container(&pod_spec, container).map_err(|message| TargetError::Api {
                target: what.clone(),
                message,
            })?;
            let client = self
                .clusters
                .client(&self.cluster)
                .await
                .map_err(TargetError::Cluster)?;
            let mut sources = Sources::new();
            for r in sources_of(&c) {
                let data = match &r {
                    SourceRef::ConfigMap(n) => {
                        Api::<ConfigMap>::namespaced(client.clone(), &self.namespace)
                            .get(n)
                            .await
                            .map(|cm| cm.data.unwrap_or_default())
                    }
                    SourceRef::Secret(n) => {
                        Api::<Secret>::namespaced(client.clone(), &self.namespace)
                            .get(n)
                            .await
                            .map(|s| {
                                s.data
                                    .unwrap_or_default()
                                    .into_iter()
                                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                                    .collect()
                            })
                    }
                };
                let data = match data {
                    Ok(d) => Ok(d),
                    // The deadline and an unreachable server fail the whole read.
                    Err(e) => match api_error(&what, self.clusters.timeout(), e) {
                        e if e.is_unreachable() => return Err(e),
                        TargetError::NotFound { .. } => Err("not found".to_string()),
                        TargetError::Api { message, .. } => Err(short(&message)),
                        e => Err(e.to_string()),
                    },
                };
                sources.insert(r, data);
            }
            let source = format!("container {:?} of {}", c.name, self.display);
            Ok(resolve(&c, &self.namespace, &sources, source))
        })
        .await
    }
}

/// A kube API error's message without its status dump.
fn short(message: &str) -> String {
    message
        .split(" (ErrorResponse")
        .next()
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
#[path = "env_tests.rs"]
mod tests;
