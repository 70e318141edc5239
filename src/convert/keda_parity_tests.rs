//! KEDA's own parse-table cases for its temporal scaler, run as a KEDA user would: each case
//! becomes a ScaledObject (its metadata), a TriggerAuthentication (its `authParams`, as
//! Secret keys) and a scale target's environment (its `resolvedEnv`); it is converted, loaded
//! by the agent, its `…FromEnv` keys filled from that environment, and the result compared
//! with what KEDA's parser gives. Every case agrees or is one of [`DIFFERENCES`].
//!
//! Source: kedacore/keda main 8b4f083c, `pkg/scalers/temporal_scaler_test.go`:
//! `testTemporalMetadata` (17 cases) and `TestParseTemporalMetadata` (11 cases), copied as data.

use super::convert;
use crate::source::dir::parse_file;
use crate::spec::{CredSource, EndpointSource, TlsMode, validate_filled};
use std::path::Path;
use std::time::Duration;

struct Case {
    name: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    auth: &'static [(&'static str, &'static str)],
    env: &'static [(&'static str, &'static str)],
    /// What KEDA's parser says.
    keda_error: bool,
}

const EP: (&str, &str) = ("endpoint", "localhost:7233");
const NS: (&str, &str) = ("namespace", "v2");
const TQ: (&str, &str) = ("taskQueue", "default");

const fn c(
    name: &'static str,
    metadata: &'static [(&'static str, &'static str)],
    keda_error: bool,
) -> Case {
    Case {
        name,
        metadata,
        auth: &[],
        env: &[],
        keda_error,
    }
}

const CASES: &[Case] = &[
    // testTemporalMetadata
    c("nothing passed", &[], true),
    c("missing taskQueue", &[EP, NS], true),
    c("missing namespace", &[EP, TQ], false),
    c("missing endpoint", &[TQ, NS], true),
    c(
        "invalid minConnectTimeout",
        &[EP, TQ, NS, ("minConnectTimeout", "-1")],
        true,
    ),
    c("all good", &[EP, TQ, NS], false),
    c(
        "all good + activation",
        &[EP, TQ, NS, ("activationTargetQueueSize", "10")],
        false,
    ),
    c(
        "workerDeploymentName without build id",
        &[EP, TQ, NS, ("workerDeploymentName", "my-deploy")],
        true,
    ),
    c(
        "workerDeploymentBuildId without name",
        &[EP, TQ, NS, ("workerDeploymentBuildId", "v1")],
        true,
    ),
    c(
        "deployment fields with buildId",
        &[
            EP,
            TQ,
            NS,
            ("workerDeploymentName", "my-deploy"),
            ("workerDeploymentBuildId", "v1"),
            ("buildId", "v1"),
        ],
        true,
    ),
    c(
        "deployment fields with selectAllActive",
        &[
            EP,
            TQ,
            NS,
            ("workerDeploymentName", "my-deploy"),
            ("workerDeploymentBuildId", "v1"),
            ("selectAllActive", "true"),
        ],
        true,
    ),
    c(
        "valid deployment config",
        &[
            EP,
            TQ,
            NS,
            ("workerDeploymentName", "my-deploy"),
            ("workerDeploymentBuildId", "v1"),
        ],
        false,
    ),
    c(
        "valid legacy buildId",
        &[EP, TQ, NS, ("buildId", "v1")],
        false,
    ),
    c(
        "workflowTaskQueueForCount without includeRunningWorkflowCount",
        &[EP, TQ, NS, ("workflowTaskQueueForCount", "wf-queue")],
        true,
    ),
    c(
        "includeRunningWorkflowCount alone",
        &[EP, TQ, NS, ("includeRunningWorkflowCount", "true")],
        false,
    ),
    c(
        "includeRunningWorkflowCount + workflowTaskQueueForCount",
        &[
            EP,
            TQ,
            NS,
            ("includeRunningWorkflowCount", "true"),
            ("workflowTaskQueueForCount", "wf-queue"),
        ],
        false,
    ),
    c(
        "includeRunningWorkflowCount rejects unsafe characters",
        &[
            EP,
            ("taskQueue", "bad queue' OR '1'='1"),
            NS,
            ("includeRunningWorkflowCount", "true"),
        ],
        true,
    ),
    // TestParseTemporalMetadata
    c(
        "empty queue name",
        &[("endpoint", "test:7233"), ("namespace", "default")],
        true,
    ),
    c(
        "empty namespace",
        &[("endpoint", "test:7233"), ("taskQueue", "testxx")],
        false,
    ),
    c(
        "activationTargetQueueSize should not be 0",
        &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("activationTargetQueueSize", "12"),
        ],
        false,
    ),
    Case {
        name: "apiKey should not be empty",
        metadata: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
        ],
        auth: &[("apiKey", "test01")],
        env: &[],
        keda_error: false,
    },
    c(
        "queue type should not be empty",
        &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("queueTypes", "workflow,activity"),
        ],
        false,
    ),
    Case {
        name: "read config from env",
        metadata: &[
            ("endpointFromEnv", "endpoint"),
            ("namespaceFromEnv", "namespace"),
            ("taskQueueFromEnv", "taskQueue"),
        ],
        auth: &[("apiKey", "test01")],
        env: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
        ],
        keda_error: false,
    },
    Case {
        name: "apiKey provided",
        metadata: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("apiKey", "test-api-key"),
        ],
        auth: &[("apiKey", "test-api-key")],
        env: &[],
        keda_error: false,
    },
    Case {
        name: "apiKey with enableTLS false (plaintext gRPC)",
        metadata: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("enableTLS", "false"),
        ],
        auth: &[("apiKey", "test-api-key")],
        env: &[],
        keda_error: false,
    },
    c(
        "with tlsServerName",
        &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("tlsServerName", "my-namespace.tmpr.cloud"),
        ],
        false,
    ),
    Case {
        name: "with tlsServerName and apiKey",
        metadata: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("tlsServerName", "my-namespace.tmpr.cloud"),
        ],
        auth: &[("apiKey", "test01")],
        env: &[],
        keda_error: false,
    },
    Case {
        name: "with tlsServerName and certificate",
        metadata: &[
            ("endpoint", "test:7233"),
            ("namespace", "default"),
            ("taskQueue", "testxx"),
            ("tlsServerName", "my-namespace.tmpr.cloud"),
        ],
        auth: &[
            ("cert", "cert-data"),
            ("key", "key-data"),
            ("keyPassword", "password"),
            ("ca", "ca-data"),
        ],
        env: &[],
        keda_error: false,
    },
];

/// The cases where the agent deliberately differs, and why (docs/keda.md says the same).
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "apiKey with enableTLS false (plaintext gRPC)",
        "refused: KEDA would send the API key in cleartext; the agent sends API keys only over TLS",
    ),
    (
        "with tlsServerName and certificate",
        "refused: an encrypted client key (keyPassword) has no maintained decryption crate; the agent takes the decrypted key",
    ),
];

/// The ScaledObject, TriggerAuthentication and the scale target's environment of a case.
fn documents(case: &Case) -> String {
    let quoted = |kv: &[(&str, &str)], indent: &str| -> String {
        kv.iter()
            .map(|(k, v)| format!("{indent}{k}: {v:?}\n"))
            .collect()
    };
    let mut out = String::new();
    if !case.auth.is_empty() {
        out.push_str(
            "apiVersion: keda.sh/v1alpha1\nkind: TriggerAuthentication\nmetadata: {name: params, namespace: shop}\nspec:\n  secretTargetRef:\n",
        );
        for (k, _) in case.auth {
            out.push_str(&format!(
                "  - {{parameter: {k}, name: keda-params, key: {k}}}\n"
            ));
        }
        out.push_str("---\n");
    }
    out.push_str(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w, namespace: shop}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: temporal\n",
    );
    if !case.auth.is_empty() {
        out.push_str("    authenticationRef: {name: params}\n");
    }
    if case.metadata.is_empty() {
        out.push_str("    metadata: {}\n");
    } else {
        out.push_str("    metadata:\n");
        out.push_str(&quoted(case.metadata, "      "));
    }
    out
}

fn get<'a>(kv: &'a [(&str, &str)], k: &str) -> Option<&'a str> {
    kv.iter().find(|(key, _)| *key == k).map(|(_, v)| *v)
}

/// Converted, loaded, and its environment read: the trigger, or why not.
fn through_the_agent(case: &Case) -> Result<crate::spec::TriggerConfig, String> {
    let r = convert(Path::new("keda.yaml"), &documents(case))?;
    if r.converted == 0 {
        return Err(r.errors.join("\n"));
    }
    let cfgs = parse_file(Path::new("out.yaml"), &r.output).map_err(|e| format!("{e:?}"))?;
    let t = cfgs[0].triggers[0].clone();
    let Some(fe) = &t.from_env else {
        return Ok(t);
    };
    let spec = fe
        .fill(|var| {
            get(case.env, var)
                .map(str::to_string)
                .ok_or_else(|| format!("{var} unset"))
        })
        .map_err(|e| format!("{e:?}"))?;
    validate_filled(&cfgs[0].namespace, fe.index, &spec).map_err(|e| e.join("; "))
}

#[test]
fn every_keda_parse_case_agrees_or_is_a_listed_difference() {
    assert_eq!(CASES.len(), 28);
    let mut agreed = 0;
    for case in CASES {
        let ours = through_the_agent(case);
        let differs = DIFFERENCES.iter().find(|(n, _)| *n == case.name);
        if let Some((_, why)) = differs {
            // A listed difference is one the agent refuses, with KEDA accepting.
            assert!(!case.keda_error, "{}", case.name);
            let err = ours.expect_err(case.name);
            assert!(err.contains("not converted"), "{}: {err}", case.name);
            assert!(why.starts_with("refused"));
            continue;
        }
        match (case.keda_error, ours) {
            (true, Err(_)) => {}
            (true, Ok(t)) => panic!("{}: KEDA refuses it, the agent took {t:?}", case.name),
            (false, Err(e)) => panic!("{}: KEDA takes it, the agent refused: {e}", case.name),
            (false, Ok(t)) => {
                let m = |k: &str| {
                    get(case.metadata, k).or_else(|| {
                        get(case.metadata, &format!("{k}FromEnv")).and_then(|v| get(case.env, v))
                    })
                };
                assert_eq!(
                    t.endpoint,
                    EndpointSource::Literal(m("endpoint").unwrap().into()),
                    "{}",
                    case.name
                );
                assert_eq!(
                    &*t.namespace,
                    m("namespace").unwrap_or("default"),
                    "{}",
                    case.name
                );
                assert_eq!(&*t.task_queue, m("taskQueue").unwrap(), "{}", case.name);
                assert_eq!(t.target_queue_size, 5.0, "{}", case.name);
                let activation: f64 =
                    m("activationTargetQueueSize").map_or(0.0, |v| v.parse().unwrap());
                assert_eq!(t.activation_target_queue_size, activation, "{}", case.name);
                assert_eq!(t.connect_timeout, Duration::from_secs(5), "{}", case.name);
                let types = m("queueTypes").map_or(3, |v| v.split(',').count());
                assert_eq!(t.queue_types.len(), types, "{}", case.name);
                assert_eq!(
                    t.include_running_workflows,
                    m("includeRunningWorkflowCount") == Some("true"),
                    "{}",
                    case.name
                );
                // KEDA's TLS rule: a client certificate, or an API key unless enableTLS is false.
                let has = |k: &str| get(case.auth, k).is_some();
                let keda_tls = (has("cert") && has("key"))
                    || (has("apiKey") && m("enableTLS") != Some("false"));
                assert_eq!(
                    t.auth.tls != TlsMode::Plaintext,
                    keda_tls,
                    "{}: {:?}",
                    case.name,
                    t.auth.tls
                );
                // KEDA sets the server name on a TLS configuration only.
                let server_name = m("tlsServerName").filter(|_| keda_tls);
                assert_eq!(t.auth.server_name.as_deref(), server_name, "{}", case.name);
                // The API key is the TriggerAuthentication's (KEDA ignores the metadata's).
                let api_key = has("apiKey").then(|| CredSource::Secret {
                    namespace: "shop".into(),
                    name: "keda-params".into(),
                    key: "apiKey".into(),
                });
                assert_eq!(t.auth.api_key, api_key, "{}", case.name);
            }
        }
        agreed += 1;
    }
    assert_eq!(agreed, CASES.len() - DIFFERENCES.len());
}
