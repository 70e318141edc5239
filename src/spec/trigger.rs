//! Validation of a `type: temporal` trigger's metadata (KEDA's string keys and ours): the
//! endpoint, queue, targets, authentication and TLS material, version selectors and the
//! worker-capacity keys, each error with its field path. Secret values never appear in one.

use super::validate::{Errors, is_dns_subdomain, parse_bool, show};
use super::*;
use base64::Engine;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Trigger metadata keys we understand (ours and KEDA's).
const TRIGGER_KEYS: &[&str] = &[
    "endpoint",
    "endpointFromEnv",
    "namespace",
    "namespaceFromEnv",
    "taskQueue",
    "taskQueueFromEnv",
    "queueTypes",
    "targetQueueSize",
    "activationTargetQueueSize",
    "apiKey",
    "apiKeyFromEnv",
    "apiKeyFile",
    "allowApiKeyWithoutTls",
    "ca",
    "caFile",
    "cert",
    "certFile",
    "key",
    "keyFile",
    "tlsServerName",
    "unsafeSsl",
    "tls",
    "enableTLS",
    "buildId",
    "buildIdFromEnv",
    "selectAllActive",
    "selectUnversioned",
    "workerDeploymentName",
    "workerDeploymentNameFromEnv",
    "workerDeploymentBuildId",
    "workerDeploymentBuildIdFromEnv",
    "workerVersioningType",
    "deploymentName",
    "minConnectTimeout",
    "targetBacklogAgeSeconds",
    "growthLookaheadSeconds",
    "includeRunningWorkflowCount",
    "workflowTaskQueueForCount",
    "workflowTaskQueueForCountFromEnv",
    "targetSlotUtilization",
    "workerHeartbeatMaxAgeSeconds",
    "keepWhileDispatching",
    "scheduleLeadSeconds",
    "scheduleLearnSeconds",
    "scheduleGraceSeconds",
    "scheduleMinReplicas",
];
const SECRET_KEYS: &[&str] = &["apiKey", "key", "cert", "ca"];

/// KEDA's `keyPassword` (the password of an encrypted client key) has no equivalent: no
/// maintained decryption crate is in the dependency tree, and a decrypted key works the same.
pub const ENCRYPTED_KEY_HINT: &str = "encrypted client keys are not supported: decrypt the key \
     (`openssl pkey -in tls.key -out tls-decrypted.key` asks for its password) and give the \
     decrypted key";

/// Go-style durations as KEDA writes them ("5s", "500ms", "1m"), or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n >= 0.0 && n.is_finite()).then(|| Duration::from_secs_f64(n));
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    if !(n >= 0.0 && n.is_finite()) {
        return None;
    }
    let factor = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(n * factor))
}

/// PEM given inline or as base64 of PEM (the seed's `$(cat ca.crt | base64)`).
pub fn decode_pem(s: &str) -> Option<Vec<u8>> {
    if s.contains("-----BEGIN") {
        return Some(s.as_bytes().to_vec());
    }
    let compact: String = s.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    String::from_utf8_lossy(&bytes)
        .contains("-----BEGIN")
        .then_some(bytes)
}

fn validate_endpoint(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .unwrap_or(s);
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

pub(super) fn validate_trigger(
    errs: &mut Errors,
    scaler_namespace: &str,
    i: usize,
    t: &TriggerSpec,
    env_container: Option<&str>,
) -> Option<TriggerConfig> {
    let from_env = super::env::FromEnv::of(i, t, env_container).map(Arc::new);
    match &from_env {
        None => validate_one(errs, scaler_namespace, i, t, None),
        Some(fe) => {
            // Placeholders (`$VAR`) stand in for what the target's environment will give; the
            // endpoint and API key have their own `…FromEnv` sources (read when connecting).
            let mut placeholder = t.clone();
            for (k, var) in &fe.vars {
                if !matches!(*k, "endpoint" | "apiKey") {
                    placeholder
                        .metadata
                        .insert(k.to_string(), format!("${var}"));
                }
            }
            let mut tc = validate_one(errs, scaler_namespace, i, &placeholder, Some(fe))?;
            tc.from_env = from_env;
            Some(tc)
        }
    }
}

/// A trigger whose `<key>FromEnv` values have been read from the target's environment
/// ([`super::env::FromEnv::fill`]), validated as the trigger it now is.
pub fn validate_filled(
    scaler_namespace: &str,
    i: usize,
    t: &TriggerSpec,
) -> Result<TriggerConfig, Vec<String>> {
    let mut errs = Errors(Vec::new());
    match validate_one(&mut errs, scaler_namespace, i, t, None) {
        Some(tc) if errs.0.is_empty() => Ok(tc),
        _ => Err(errs.0.iter().map(|e| e.to_string()).collect()),
    }
}

fn validate_one(
    errs: &mut Errors,
    scaler_namespace: &str,
    i: usize,
    t: &TriggerSpec,
    deferred: Option<&super::env::FromEnv>,
) -> Option<TriggerConfig> {
    // A placeholder's own rules are checked once it is read.
    let is_deferred = |k: &str| deferred.is_some_and(|d| d.vars.iter().any(|(dk, _)| *dk == k));
    let base = format!("spec.triggers[{i}]");
    if t.type_ != "temporal" {
        errs.push(format!("{base}.type"), show(&t.type_), "\"temporal\"");
        return None;
    }
    let m = &t.metadata;
    let before = errs.0.len();
    let p = |k: &str| format!("{base}.metadata.{k}");
    for k in m.keys() {
        if k == "keyPassword" {
            // A password: never shown.
            errs.push(p(k), None, format!("no keyPassword ({ENCRYPTED_KEY_HINT})"));
        } else if !TRIGGER_KEYS.contains(&k.as_str()) {
            let hint = closest(k, TRIGGER_KEYS)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            errs.push(
                p(k),
                None,
                format!("a known key ({}){hint}", TRIGGER_KEYS.join(", ")),
            );
        }
    }
    let get = |k: &str| m.get(k).filter(|v| !v.trim().is_empty());
    let value_of = |k: &str| {
        if SECRET_KEYS.contains(&k) {
            None
        } else {
            m.get(k).map(|v| format!("{v:?}"))
        }
    };

    // KEDA's order: the key itself, then `…FromEnv` when it is empty.
    let endpoint = match (get("endpoint"), get("endpointFromEnv")) {
        (Some(e), _) => {
            if !validate_endpoint(e) {
                errs.push(
                    p("endpoint"),
                    value_of("endpoint"),
                    "host:port, optionally with http:// or https://",
                );
            }
            Some(EndpointSource::Literal(e.trim().to_string()))
        }
        (None, Some(v)) => Some(EndpointSource::FromEnv(v.trim().to_string())),
        (None, None) => {
            errs.push(
                p("endpoint"),
                None,
                "the Temporal frontend address (host:port), or endpointFromEnv",
            );
            None
        }
    };
    let namespace = get("namespace")
        .cloned()
        .unwrap_or_else(|| defaults::NAMESPACE.to_string());
    let task_queue = match get("taskQueue") {
        Some(q) if q.len() <= 1000 => q.clone(),
        Some(q) => {
            errs.push(
                p("taskQueue"),
                show(q.len()),
                "a task queue name of at most 1000 bytes",
            );
            String::new()
        }
        None => {
            errs.push(p("taskQueue"), None, "the name of the task queue to watch");
            String::new()
        }
    };
    let mut queue_types = Vec::new();
    match get("queueTypes") {
        None => queue_types.extend(QueueType::ALL),
        Some(s) => {
            for part in s.split(',').map(str::trim) {
                let qt = match part.to_ascii_lowercase().as_str() {
                    "workflow" => QueueType::Workflow,
                    "activity" => QueueType::Activity,
                    "nexus" => QueueType::Nexus,
                    _ => {
                        errs.push(
                            p("queueTypes"),
                            value_of("queueTypes"),
                            "a comma-separated list of workflow, activity, nexus",
                        );
                        break;
                    }
                };
                if !queue_types.contains(&qt) {
                    queue_types.push(qt);
                }
            }
        }
    }
    let number = |errs: &mut Errors, k: &str, default: f64, positive: bool| -> f64 {
        match get(k) {
            None => default,
            Some(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && (n > 0.0 || (!positive && n == 0.0)) => n,
                _ => {
                    let what = if positive {
                        "a number > 0"
                    } else {
                        "a number ≥ 0"
                    };
                    errs.push(p(k), value_of(k), format!("{what}, as a string (\"5\")"));
                    default
                }
            },
        }
    };
    let target_queue_size = if get("targetQueueSize")
        .is_some_and(|v| v.trim().parse::<f64>() == Ok(0.0))
    {
        errs.push(
            p("targetQueueSize"),
            value_of("targetQueueSize"),
            "a number > 0 (KEDA parses 0, but the HorizontalPodAutoscaler it creates is then refused: averageValue must be positive)",
        );
        defaults::TARGET_QUEUE_SIZE
    } else {
        number(errs, "targetQueueSize", defaults::TARGET_QUEUE_SIZE, true)
    };
    let activation = number(
        errs,
        "activationTargetQueueSize",
        defaults::ACTIVATION_TARGET_QUEUE_SIZE,
        false,
    );
    let optional = |errs: &mut Errors, k: &str, positive: bool| {
        get(k).is_some().then(|| number(errs, k, 1.0, positive))
    };
    let target_backlog_age_secs = optional(errs, "targetBacklogAgeSeconds", true);
    let growth_lookahead_secs = optional(errs, "growthLookaheadSeconds", true);
    let include_running_workflows = parse_bool(
        errs,
        &p("includeRunningWorkflowCount"),
        get("includeRunningWorkflowCount"),
    )
    .unwrap_or(false);
    let workflow_task_queue_for_count = get("workflowTaskQueueForCount")
        .map(|v| Box::<str>::from(v.trim()))
        .filter(|v| !v.is_empty());
    if workflow_task_queue_for_count.is_some() && !include_running_workflows {
        errs.push(
            p("workflowTaskQueueForCount"),
            value_of("workflowTaskQueueForCount"),
            "includeRunningWorkflowCount: \"true\" with it (KEDA's rule: it only names the queue whose running workflows are counted)",
        );
    }
    // These go into the visibility query of the count: KEDA's rule for its literals.
    if include_running_workflows {
        for k in [
            "taskQueue",
            "workflowTaskQueueForCount",
            "workerDeploymentName",
            "workerDeploymentBuildId",
        ] {
            if !is_deferred(k) && get(k).is_some_and(|v| !visibility_literal(v.trim())) {
                errs.push(
                    p(k),
                    value_of(k),
                    "letters, digits and -_./: only, with includeRunningWorkflowCount (the value goes into a visibility query; KEDA's rule)",
                );
            }
        }
    }

    let (capacity, keep_while_dispatching) = capacity_keys(errs, &p, &get, &value_of);
    let schedule = super::schedule::schedule_keys(errs, &p, &get, &value_of);
    // Queue, deployment and build id go into a visibility query (ListWorkers): no quotes or
    // escapes.
    if capacity.is_some() {
        for k in [
            "taskQueue",
            "workerDeploymentName",
            "workerDeploymentBuildId",
            "deploymentName",
            "buildId",
        ] {
            if get(k).is_some_and(|v| !query_safe(v)) {
                errs.push(
                    p(k),
                    value_of(k),
                    "no quotes, backslashes or control characters with targetSlotUtilization",
                );
            }
        }
    }

    // Each credential has one source: inline, environment (API key), file, or Secret.
    let secret_ref = |param: &str| t.secret_target_ref.iter().find(|r| r.parameter == param);
    let credential = |errs: &mut Errors, param: &str, env: Option<&str>, pem: Option<&str>| {
        let file_key = format!("{param}File");
        let mut given: Vec<(String, CredSource)> = Vec::new();
        if let Some(v) = get(param) {
            let inline = match pem {
                None => Some(v.trim().to_string()),
                Some(what) => {
                    let d = decode_pem(v).map(|b| String::from_utf8_lossy(&b).into_owned());
                    if d.is_none() {
                        errs.push(p(param), None, format!("{what}, or base64 of one"));
                    }
                    d
                }
            };
            if let Some(i) = inline {
                given.push((param.to_string(), CredSource::Inline(SecretString::new(i))));
            }
        }
        if let Some(var) = env.and_then(|e| get(e).map(|v| (e, v))) {
            given.push((var.0.to_string(), CredSource::Env(var.1.trim().to_string())));
        }
        if let Some(f) = get(&file_key) {
            let path = PathBuf::from(f.trim());
            if !path.is_absolute() {
                errs.push(p(&file_key), value_of(&file_key), "an absolute path");
            }
            given.push((file_key.clone(), CredSource::File(path)));
        }
        if let Some(r) = secret_ref(param) {
            given.push((
                "secretTargetRef".to_string(),
                CredSource::Secret {
                    namespace: scaler_namespace.to_string(),
                    name: r.name.clone(),
                    key: r.key.clone(),
                },
            ));
        }
        if given.len() > 1 {
            let names: Vec<&str> = given.iter().map(|(k, _)| k.as_str()).collect();
            errs.push(
                p(&given[1].0),
                None,
                format!("one source for {param}, not {}", names.join(" and ")),
            );
        }
        given.into_iter().next().map(|(_, s)| s)
    };
    let api_key = credential(errs, "apiKey", Some("apiKeyFromEnv"), None);
    let ca = credential(errs, "ca", None, Some("a PEM certificate"));
    let cert = credential(errs, "cert", None, Some("a PEM certificate"));
    let key = credential(errs, "key", None, Some("a PEM private key"));
    for (i, r) in t.secret_target_ref.iter().enumerate() {
        let rp = format!("{base}.secretTargetRef[{i}]");
        if r.parameter == "keyPassword" {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                format!("one of apiKey, ca, cert, key ({ENCRYPTED_KEY_HINT})"),
            );
        } else if !["apiKey", "ca", "cert", "key"].contains(&r.parameter.as_str()) {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                "one of apiKey, ca, cert, key",
            );
        } else if t.secret_target_ref[..i]
            .iter()
            .any(|o| o.parameter == r.parameter)
        {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                "each parameter at most once",
            );
        }
        if !is_dns_subdomain(&r.name) {
            errs.push(format!("{rp}.name"), show(&r.name), "a Secret name");
        }
        if r.key.is_empty() {
            errs.push(format!("{rp}.key"), None, "a key of the Secret's data");
        }
    }
    if cert.is_some() != key.is_some() {
        errs.push(
            p(if cert.is_some() { "key" } else { "cert" }),
            None,
            "cert and key together (mTLS), each inline, as a file or from a Secret",
        );
    }
    // Inline material can be checked now; files and Secrets are checked when connecting.
    if let (Some(CredSource::Inline(c)), Some(CredSource::Inline(k))) = (&cert, &key)
        && let Err(e) = super::pem::check_identity(c.expose(), k.expose())
    {
        errs.push(p("key"), None, e);
    }
    if let Some(CredSource::Inline(c)) = &ca
        && let Err(e) = super::pem::check_ca(c.expose())
    {
        errs.push(p("ca"), None, e);
    }
    let server_name = get("tlsServerName").cloned();
    let unsafe_ssl = parse_bool(errs, &p("unsafeSsl"), get("unsafeSsl")).unwrap_or(false);
    if unsafe_ssl && ca.is_some() {
        errs.push(
            p("unsafeSsl"),
            value_of("unsafeSsl"),
            "either unsafeSsl (no verification) or a CA to verify with, not both",
        );
    }
    let explicit_tls = parse_bool(errs, &p("tls"), get("tls"));
    let scheme_tls = match &endpoint {
        Some(EndpointSource::Literal(e)) if e.starts_with("https://") => Some(true),
        Some(EndpointSource::Literal(e)) if e.starts_with("http://") => Some(false),
        _ => None,
    };
    if let (Some(a), Some(b)) = (explicit_tls, scheme_tls)
        && a != b
    {
        errs.push(
            p("tls"),
            value_of("tls"),
            "a value that agrees with the endpoint's scheme",
        );
    }
    let allow_plain_key = parse_bool(
        errs,
        &p("allowApiKeyWithoutTls"),
        get("allowApiKeyWithoutTls"),
    )
    .unwrap_or(false);
    let wants_tls = ca.is_some() || cert.is_some() || server_name.is_some() || unsafe_ssl;
    // KEDA's enableTLS (default true) decides only for an API key without a client
    // certificate: with a certificate TLS is on, and without credentials it changes nothing.
    let enable_tls = parse_bool(errs, &p("enableTLS"), get("enableTLS"));
    let keda_plain = enable_tls == Some(false) && api_key.is_some() && cert.is_none();
    if let (Some(true), true) = (explicit_tls.or(scheme_tls), keda_plain) {
        errs.push(
            p("enableTLS"),
            value_of("enableTLS"),
            "a value that agrees with tls and the endpoint's scheme",
        );
    }
    let tls_on = explicit_tls.or(scheme_tls).unwrap_or(if keda_plain {
        false
    } else {
        wants_tls || (api_key.is_some() && !allow_plain_key)
    });
    if !tls_on {
        if api_key.is_some() && !allow_plain_key {
            errs.push(
                p("apiKey"),
                None,
                "TLS for an API key (remove tls: \"false\", enableTLS: \"false\" or the \
                 http:// scheme), or allowApiKeyWithoutTls: \"true\" for a trusted plaintext \
                 proxy",
            );
        }
        if wants_tls {
            errs.push(
                p("tls"),
                value_of("tls"),
                "TLS when ca, cert, key, tlsServerName or unsafeSsl is set",
            );
        }
    }
    let tls = if tls_on {
        TlsMode::Tls {
            skip_verify: unsafe_ssl,
        }
    } else {
        TlsMode::Plaintext
    };

    let connect_timeout = match get("minConnectTimeout") {
        None => Duration::from_secs(defaults::MIN_CONNECT_TIMEOUT_SECS),
        // KEDA accepts 0; the agent then allows a connection 1 s, its least.
        Some(s) => parse_duration(s)
            .map(|d| {
                if d.is_zero() {
                    Duration::from_secs(1)
                } else {
                    d
                }
            })
            .unwrap_or_else(|| {
                errs.push(
                    p("minConnectTimeout"),
                    value_of("minConnectTimeout"),
                    "a duration such as \"5s\" or \"500ms\"",
                );
                Duration::from_secs(defaults::MIN_CONNECT_TIMEOUT_SECS)
            }),
    };

    let versioning = super::versioning::versioning_keys(errs, &p, &get, &value_of);

    let name = t.name.clone().unwrap_or_else(|| format!("trigger{i}"));
    if errs.0.len() > before {
        return None;
    }
    Some(TriggerConfig {
        name: name.into(),
        endpoint: endpoint?,
        namespace: namespace.into(),
        task_queue: task_queue.into(),
        queue_types: queue_types.into(),
        target_queue_size,
        activation_target_queue_size: activation,
        from_env: None,
        auth: Auth {
            tls,
            api_key,
            ca,
            cert,
            key,
            server_name,
        }
        .shared(),
        connect_timeout,
        versioning,
        target_backlog_age_secs,
        growth_lookahead_secs,
        include_running_workflows,
        workflow_task_queue_for_count,
        capacity: capacity.map(Box::new),
        keep_while_dispatching,
        schedule: schedule.map(Box::new),
    })
}

/// Safe to put between single quotes in a visibility query.
/// KEDA's `^[a-zA-Z0-9\-_./:]+$` for a literal in the running-workflow count's query.
fn visibility_literal(v: &str) -> bool {
    !v.is_empty()
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
}

fn query_safe(v: &str) -> bool {
    !v.chars()
        .any(|c| c == '\'' || c == '"' || c == '\\' || c.is_control())
}

/// `targetSlotUtilization`, `workerHeartbeatMaxAgeSeconds` and `keepWhileDispatching`.
fn capacity_keys<'a>(
    errs: &mut Errors,
    p: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<&'a String>,
    value_of: &dyn Fn(&str) -> Option<String>,
) -> (Option<CapacityConfig>, bool) {
    let number = |errs: &mut Errors, k: &str, ok: &dyn Fn(f64) -> bool, what: &str| {
        let s = get(k)?;
        match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && ok(n) => Some(n),
            _ => {
                errs.push(p(k), value_of(k), format!("{what}, as a string"));
                None
            }
        }
    };
    let target = number(
        errs,
        "targetSlotUtilization",
        &|n| n > 0.0 && n <= 1.0,
        "a fraction of the worker slots in use, 0 < x ≤ 1 (\"0.8\")",
    );
    let max_age = number(
        errs,
        "workerHeartbeatMaxAgeSeconds",
        &|n| (1.0..=86_400.0).contains(&n),
        "seconds from 1 to 86400 (\"180\")",
    );
    if max_age.is_some() && get("targetSlotUtilization").is_none() {
        errs.push(
            p("workerHeartbeatMaxAgeSeconds"),
            value_of("workerHeartbeatMaxAgeSeconds"),
            "targetSlotUtilization as well (the heartbeat age applies to the capacity signal)",
        );
    }
    let capacity = target.map(|target_utilization| CapacityConfig {
        target_utilization,
        max_heartbeat_age: Duration::from_secs_f64(
            max_age.unwrap_or(defaults::WORKER_HEARTBEAT_MAX_AGE_SECS),
        ),
    });
    let dispatching = parse_bool(
        errs,
        &p("keepWhileDispatching"),
        get("keepWhileDispatching"),
    );
    (capacity, dispatching.unwrap_or(false))
}
