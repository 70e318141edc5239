//! A trigger's `authenticationRef`: the TriggerAuthentication of the same file it names, whose
//! Secret and environment parameters become the trigger's own credentials.

use super::fields::{Fields, read};
use super::keda::AuthDoc;
use super::{Mapping, NO_EQUIVALENT, Notes, UNKNOWN};
use crate::spec::{ENCRYPTED_KEY_HINT, SecretTargetRef};
use serde_json::Value;
use std::collections::BTreeMap;

pub(super) fn authentication_ref(
    path: &str,
    v: &Value,
    namespace: &str,
    auths: &[AuthDoc],
    metadata: &mut BTreeMap<String, String>,
    secret_refs: &mut Vec<SecretTargetRef>,
    n: &mut Notes,
) {
    let Some(m) = read::<&Mapping>(v, path, n) else {
        return;
    };
    let mut f = Fields::new(path, m);
    let name = f.get::<String>("name", n);
    let kind = f.get::<String>("kind", n);
    f.finish(n, UNKNOWN);
    let Some(name) = name else {
        n.at(path, "no name; dropped");
        return;
    };
    let direct = "give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)";
    match kind.as_deref().unwrap_or("TriggerAuthentication") {
        "TriggerAuthentication" => {}
        "ClusterTriggerAuthentication" => {
            n.at(
                path,
                format!("ClusterTriggerAuthentication {name}: no equivalent (the agent reads Secrets only in the scaler's own namespace); dropped: {direct}"),
            );
            return;
        }
        other => {
            n.at(
                path,
                format!("kind {other:?} is not a KEDA authentication kind; dropped"),
            );
            return;
        }
    }
    let what = format!("TriggerAuthentication {namespace}/{name}");
    let Some(auth) = auths
        .iter()
        .find(|a| a.name == name && a.namespace == namespace)
    else {
        n.at(
            path,
            format!("{what} is not in this file; dropped, so the converted trigger has none of its credentials: {direct}"),
        );
        return;
    };
    n.at(
        path,
        format!(
            "{what}: the agent does not read KEDA authentication objects; its parameters are taken over as listed below"
        ),
    );
    let Some(spec) = auth.spec else {
        return;
    };
    let mut n = n.under(path, &what);
    let mut f = Fields::new("spec", spec);
    for (p, entry) in f.items("secretTargetRef", &mut n).unwrap_or_default() {
        secret_target(&p, entry, namespace, secret_refs, &mut n);
    }
    for (p, entry) in f.items("env", &mut n).unwrap_or_default() {
        env_entry(&p, entry, metadata, &mut n);
    }
    f.finish(&mut n, NO_EQUIVALENT);
}

fn secret_target(
    path: &str,
    v: &Value,
    namespace: &str,
    secret_refs: &mut Vec<SecretTargetRef>,
    n: &mut Notes,
) {
    let Some(m) = read::<&Mapping>(v, path, n) else {
        return;
    };
    let mut f = Fields::new(path, m);
    let parameter = f.get::<String>("parameter", n);
    let secret = f.get::<String>("name", n);
    let key = f.get::<String>("key", n);
    f.finish(n, UNKNOWN);
    let (Some(parameter), Some(secret), Some(key)) = (parameter, secret, key) else {
        n.at(
            path,
            "incomplete (parameter, name and key are required); dropped",
        );
        return;
    };
    let from = format!("key {key:?} of Secret {namespace}/{secret}");
    let msg = match parameter.as_str() {
        "apiKey" | "ca" | "cert" | "key" => {
            secret_refs.push(SecretTargetRef {
                parameter: parameter.clone(),
                name: secret.clone(),
                key: key.clone(),
            });
            format!(
                "parameter {parameter}: mapped to the trigger's secretTargetRef ({from}); the agent needs get on that Secret (chart value rbac.secretReferences)"
            )
        }
        "keyPassword" => {
            n.refuse(
                path,
                format!("parameter keyPassword ({from}): {ENCRYPTED_KEY_HINT}"),
            );
            return;
        }
        other => format!("parameter {other:?} ({from}): no equivalent; dropped"),
    };
    n.at(path, msg);
}

fn env_entry(path: &str, v: &Value, metadata: &mut BTreeMap<String, String>, n: &mut Notes) {
    let Some(m) = read::<&Mapping>(v, path, n) else {
        return;
    };
    let mut f = Fields::new(path, m);
    let parameter = f.get::<String>("parameter", n);
    let var = f.get::<String>("name", n);
    let container = f.get::<String>("containerName", n);
    f.finish(n, UNKNOWN);
    let (Some(parameter), Some(var)) = (parameter, var) else {
        n.at(
            path,
            "incomplete (parameter and name are required); dropped",
        );
        return;
    };
    let of = match &container {
        Some(c) => format!("container {c:?} of the scale target"),
        None => "the scale target's container".to_string(),
    };
    if parameter == "keyPassword" {
        n.refuse(
            path,
            format!(
                "parameter keyPassword (environment variable {var} of {of}): {ENCRYPTED_KEY_HINT}"
            ),
        );
    } else if parameter != "apiKey" {
        n.at(
            path,
            format!("parameter {parameter:?} (environment variable {var} of {of}): no equivalent; dropped"),
        );
    } else {
        // KEDA reads the TriggerAuthentication's apiKey before the metadata's apiKeyFromEnv.
        let replaced = metadata.insert("apiKeyFromEnv".to_string(), var.clone());
        let mut msg = format!(
            "parameter apiKey: mapped to apiKeyFromEnv: {var}; the agent reads {var} from the scale target's container, as KEDA does"
        );
        if let Some(old) = replaced.filter(|old| *old != var) {
            msg.push_str(&format!(
                " (it replaces the trigger's apiKeyFromEnv: {old}, which KEDA reads after the TriggerAuthentication)"
            ));
        }
        if container.is_some() {
            msg.push_str("; the agent reads the container that scaleTargetRef.envSourceContainerName names (the first one when unset): set it to this containerName if they differ");
        }
        n.at(path, msg);
    }
}
