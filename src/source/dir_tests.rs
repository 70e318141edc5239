use super::*;
use std::os::unix::fs::symlink;
use std::time::Duration;

const GOOD: &str = r#"
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: orders
  namespace: shop
spec:
  scaleTargetRef:
    name: orders-worker
  minReplicaCount: 1
  maxReplicaCount: 10
  triggers:
    - type: temporal
      metadata:
        endpoint: temporal:7233
        taskQueue: orders
"#;

fn doc(name: &str, queue: &str) -> String {
    GOOD.replace("name: orders\n", &format!("name: {name}\n"))
        .replace("taskQueue: orders", &format!("taskQueue: {queue}"))
}

/// The names of the scalers in force, in path order.
fn scaler_names(st: &DirState) -> Vec<String> {
    let snap = st.snapshot();
    snap.scalers
        .iter()
        .map(|s| s.key.name.to_string())
        .collect()
}

fn errors_of(content: &str) -> Vec<String> {
    parse_file(Path::new("dir/x.yaml"), content)
        .unwrap_err()
        .iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn parses_a_document_with_keda_defaults() {
    let cfgs = parse_file(Path::new("a.yaml"), GOOD).unwrap();
    assert_eq!(cfgs.len(), 1);
    let c = &cfgs[0];
    assert_eq!((&*c.namespace, &*c.name), ("shop", "orders"));
    assert_eq!(c.target.api_version, "apps/v1");
    assert_eq!(c.target.kind, "Deployment");
    // The common ones are not copied per scaler.
    assert!(matches!(c.target.kind, std::borrow::Cow::Borrowed(_)));
    assert_eq!(c.polling_interval, Duration::from_secs(30));
    assert_eq!(c.cooldown, Duration::from_secs(300));
    let t = &c.triggers[0];
    assert_eq!(&*t.namespace, "default");
    assert_eq!(t.target_queue_size, 5.0);
    assert_eq!(t.activation_target_queue_size, 0.0);
    assert_eq!(*t.queue_types, crate::spec::QueueType::ALL);
    assert_eq!(t.auth.tls, crate::spec::TlsMode::Plaintext);
    assert_eq!(*c.behavior, crate::spec::Behavior::hpa_default());
}

#[test]
fn defaults_namespace_and_max_when_absent() {
    let content = GOOD
        .replace("  namespace: shop\n", "")
        .replace("  maxReplicaCount: 10\n", "");
    let c = &parse_file(Path::new("a.yaml"), &content).unwrap()[0];
    assert_eq!(&*c.namespace, "default");
    assert_eq!(c.max_replicas, 100);
    assert_eq!(c.min_replicas, 1);
}

#[test]
fn multi_document_yaml_and_json_arrays() {
    let content = format!("{}\n---\n{}\n---\n", doc("a", "qa"), doc("b", "qb"));
    let cfgs = parse_file(Path::new("two.yaml"), &content).unwrap();
    assert_eq!(
        cfgs.iter().map(|c| &*c.name).collect::<Vec<_>>(),
        ["a", "b"]
    );

    let v: serde_json::Value = serde_saphyr::from_str(&doc("j", "qj")).unwrap();
    let json = serde_json::to_string(&vec![v]).unwrap();
    let cfgs = parse_file(Path::new("one.json"), &json).unwrap();
    assert_eq!(&*cfgs[0].name, "j");
}

/// KEDA's rules for the running-workflow count: `workflowTaskQueueForCount` only with
/// `includeRunningWorkflowCount`, and the literals of its visibility query limited to letters,
/// digits and `-_./:` (a Worker Deployment name such as `default/orders` passes).
#[test]
fn the_running_workflow_count_follows_kedas_rules() {
    let with = |meta: &str| {
        GOOD.replace(
            "        taskQueue: orders\n",
            &format!("        taskQueue: orders\n{meta}"),
        )
    };
    let errs = errors_of(&with("        workflowTaskQueueForCount: workflows\n"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("spec.triggers[0].metadata.workflowTaskQueueForCount"),
        "{errs:?}"
    );
    assert!(
        errs[0].contains("includeRunningWorkflowCount: \"true\" with it"),
        "{errs:?}"
    );
    let errs = errors_of(
        &with("        includeRunningWorkflowCount: \"true\"\n        workflowTaskQueueForCount: \"bad' OR '1\"\n")
            .replace("taskQueue: orders", "taskQueue: bad name"),
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(
        errs.iter()
            .all(|e| e.contains("letters, digits and -_./: only")),
        "{errs:?}"
    );
    let ok = with(
        "        includeRunningWorkflowCount: \"true\"\n        workerDeploymentName: default/orders\n        workerDeploymentBuildId: v1.2-ab12\n",
    );
    let cfg = parse_file(Path::new("a.yaml"), &ok).unwrap().remove(0);
    assert!(cfg.triggers[0].include_running_workflows);
}

/// A legacy selector beside a Worker Deployment version is an error at the key that is set
/// (KEDA's rule), not at `buildId` when only `selectAllActive` is.
#[test]
fn a_legacy_selector_beside_a_version_is_named_where_it_is() {
    let errs = errors_of(&GOOD.replace(
        "        taskQueue: orders\n",
        "        taskQueue: orders\n        selectAllActive: \"true\"\n        workerDeploymentName: d\n        workerDeploymentBuildId: v1\n",
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].contains("spec.triggers[0].metadata.selectAllActive"),
        "{errs:?}"
    );
}

#[test]
fn unknown_fields_are_errors_with_their_path() {
    let errs = errors_of(&GOOD.replace("minReplicaCount", "minReplicas"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].starts_with("dir/x.yaml: document 0: spec.minReplicas: unknown field `minReplicas`, expected one of `scaleTargetRef`"), "{errs:?}");

    let errs = errors_of(&GOOD.replace(
        "taskQueue: orders",
        "taskQueue: orders\n        taskqueue: typo",
    ));
    assert!(
        errs[0].contains("spec.triggers[0].metadata.taskqueue"),
        "{errs:?}"
    );
    assert!(errs[0].contains("expected a known key"), "{errs:?}");
    // A near miss gets a suggestion, and every error its line.
    assert!(errs[0].contains("did you mean `taskQueue`?"), "{errs:?}");
    assert!(errs[0].ends_with("(line 17)"), "{errs:?}");
    let errs = errors_of(&GOOD.replace("maxReplicaCount", "maxReplicaCnt"));
    assert!(
        errs[0].contains("spec.maxReplicaCnt: unknown field `maxReplicaCnt`")
            && errs[0].contains("did you mean `maxReplicaCount`?")
            && errs[0].ends_with("(line 11)"),
        "{errs:?}"
    );
    // No suggestion for a name nothing resembles.
    let errs = errors_of(&GOOD.replace("minReplicaCount", "flavour"));
    assert!(!errs[0].contains("did you mean"), "{errs:?}");
}

#[test]
fn a_misspelled_polling_interval_is_suggested_with_its_line() {
    let errs = errors_of(&GOOD.replace(
        "  minReplicaCount: 1\n",
        "  pollingIntervall: 5\n  minReplicaCount: 1\n",
    ));
    assert_eq!(
        errs,
        vec![
            "dir/x.yaml: document 0: spec.pollingIntervall: unknown field `pollingIntervall`, \
             expected one of `scaleTargetRef`, `pollingInterval`, `cooldownPeriod`, \
             `initialCooldownPeriod`, `minReplicaCount`, `maxReplicaCount`, `idleReplicaCount`, \
             `fallback`, `advanced`, `placement`, `scaleDown`, `triggers`; did you mean `pollingInterval`? (line 10)"
                .to_string()
        ]
    );
}

#[test]
fn every_validation_error_is_reported_with_value_and_expectation() {
    let content = GOOD
        .replace("minReplicaCount: 1", "minReplicaCount: 20")
        .replace("taskQueue: orders", "taskQueue: orders\n        targetQueueSize: \"0\"\n        queueTypes: workflow,sticky");
    let errs = errors_of(&content);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(errs.contains(&"dir/x.yaml: document 0: spec.minReplicaCount: got 20, expected ≤ maxReplicaCount (10) (line 10)".to_string()), "{errs:#?}");
    assert!(
        errs.iter().any(|e| e.contains(
            "spec.triggers[0].metadata.targetQueueSize: got \"0\", expected a number > 0"
        )),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("spec.triggers[0].metadata.queueTypes: got \"workflow,sticky\"")),
        "{errs:#?}"
    );
}

#[test]
fn documents_are_numbered_and_kind_checked() {
    let content = format!(
        "{}\n---\n{}",
        doc("a", "qa"),
        doc("b", "qb").replace("kind: TemporalScaler", "kind: ScaledObject")
    );
    let errs = errors_of(&content);
    assert_eq!(
        errs,
        vec![
            // Document 1 starts on line 20 (after 19 lines and the separator).
            "dir/x.yaml: document 1: kind: got \"ScaledObject\", expected \"TemporalScaler\" (line 21)"
                .to_string()
        ]
    );
}

#[test]
fn target_kind_must_have_a_scale_subresource() {
    let errs = errors_of(&GOOD.replace(
        "    name: orders-worker",
        "    kind: DaemonSet\n    name: orders-worker",
    ));
    assert!(
        errs[0].contains("spec.scaleTargetRef.kind: got \"DaemonSet\""),
        "{errs:?}"
    );
    // Kinds of other groups resolve by discovery at run time.
    let ok = GOOD.replace(
        "    name: orders-worker",
        "    apiVersion: argoproj.io/v1alpha1\n    kind: Rollout\n    name: orders-worker",
    );
    assert!(parse_file(Path::new("a.yaml"), &ok).is_ok());
}

#[test]
fn secrets_never_appear_in_errors() {
    // A number where a string is expected: the parser would quote it.
    let errs = errors_of(&GOOD.replace(
        "taskQueue: orders",
        "taskQueue: orders\n        apiKey: 987654321",
    ));
    assert!(
        errs[0].contains("spec.triggers[0].metadata.apiKey"),
        "{errs:?}"
    );
    assert!(!errs.join(" ").contains("987654321"), "{errs:?}");
    // An API key over plaintext is refused, without echoing it.
    let errs = errors_of(&GOOD.replace(
        "taskQueue: orders",
        "taskQueue: orders\n        apiKey: sekrit-value\n        tls: \"false\"",
    ));
    assert!(
        errs.iter()
            .any(|e| e.contains("metadata.apiKey: expected TLS")),
        "{errs:?}"
    );
    assert!(!errs.join(" ").contains("sekrit-value"), "{errs:?}");
    // A bad private key is not echoed either.
    let errs = errors_of(&GOOD.replace(
        "taskQueue: orders",
        "taskQueue: orders\n        cert: not-a-pem\n        key: also-not-a-pem-secret",
    ));
    assert!(
        !errs.join(" ").contains("also-not-a-pem-secret"),
        "{errs:?}"
    );
}

#[test]
fn api_key_turns_tls_on() {
    let content = GOOD.replace(
        "taskQueue: orders",
        "taskQueue: orders\n        apiKeyFromEnv: TEMPORAL_API_KEY",
    );
    let c = &parse_file(Path::new("a.yaml"), &content).unwrap()[0];
    assert_eq!(
        c.triggers[0].auth.tls,
        crate::spec::TlsMode::Tls { skip_verify: false }
    );
    let debug = format!(
        "{:?}",
        parse_file(
            Path::new("a.yaml"),
            &GOOD.replace(
                "taskQueue: orders",
                "taskQueue: orders\n        apiKey: hidden123"
            )
        )
        .unwrap()
    );
    assert!(
        !debug.contains("hidden123"),
        "Debug output must redact the key"
    );
}

#[test]
fn each_credential_has_one_source_and_files_are_absolute() {
    let with =
        |meta: &str| GOOD.replace("taskQueue: orders", &format!("taskQueue: orders\n{meta}"));
    let cases: &[(&str, &str)] = &[
        (
            "        apiKey: k1\n        apiKeyFile: /run/key",
            "spec.triggers[0].metadata.apiKeyFile: expected one source for apiKey, not apiKey and apiKeyFile",
        ),
        (
            "        apiKeyFromEnv: K\n        apiKeyFile: /run/key",
            "spec.triggers[0].metadata.apiKeyFile: expected one source for apiKey, not apiKeyFromEnv and apiKeyFile",
        ),
        (
            "        caFile: certs/ca.pem",
            "spec.triggers[0].metadata.caFile: got \"certs/ca.pem\", expected an absolute path",
        ),
        (
            "        certFile: /run/tls.crt",
            "spec.triggers[0].metadata.key: expected cert and key together (mTLS)",
        ),
        (
            "        unsafeSsl: \"true\"\n        caFile: /run/ca.pem",
            "spec.triggers[0].metadata.unsafeSsl: got \"true\", expected either unsafeSsl (no verification) or a CA to verify with, not both",
        ),
        (
            "        ca: not-a-pem",
            "spec.triggers[0].metadata.ca: expected a PEM certificate, or base64 of one",
        ),
        (
            "        apiKeyFile: /run/key\n        tls: \"false\"",
            "spec.triggers[0].metadata.apiKey: expected TLS for an API key",
        ),
        (
            "        allowApiKeyWithoutTls: yes",
            "spec.triggers[0].metadata.allowApiKeyWithoutTls: got \"yes\"",
        ),
    ];
    for (meta, want) in cases {
        let errs = errors_of(&with(meta));
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{meta}: {errs:?} lacks {want}"
        );
    }
    // Files and the plaintext opt-out parse to what the pool reads.
    let c = &parse_file(
        Path::new("a.yaml"),
        &with("        apiKeyFile: /run/key\n        tls: \"false\"\n        allowApiKeyWithoutTls: \"true\""),
    )
    .unwrap()[0];
    let a = &c.triggers[0].auth;
    assert_eq!(a.tls, crate::spec::TlsMode::Plaintext);
    assert_eq!(
        a.api_key,
        Some(crate::spec::CredSource::File("/run/key".into()))
    );
}

#[test]
fn secret_target_refs_name_a_secret_in_the_scalers_namespace() {
    let with = |refs: &str| {
        GOOD.replace(
            "        taskQueue: orders\n",
            &format!("        taskQueue: orders\n      secretTargetRef:\n{refs}"),
        )
    };
    let c = &parse_file(
        Path::new("a.yaml"),
        &with("        - {parameter: apiKey, name: temporal-cloud, key: api-key}\n        - {parameter: ca, name: temporal-tls, key: ca.crt}\n"),
    )
    .unwrap()[0];
    let a = &c.triggers[0].auth;
    assert_eq!(
        a.api_key,
        Some(crate::spec::CredSource::Secret {
            namespace: "shop".into(),
            name: "temporal-cloud".into(),
            key: "api-key".into()
        })
    );
    assert!(matches!(&a.ca, Some(crate::spec::CredSource::Secret { key, .. }) if key == "ca.crt"));
    assert_eq!(a.tls, crate::spec::TlsMode::Tls { skip_verify: false });
    let errs = errors_of(&with(
        "        - {parameter: password, name: Bad_Name, key: ''}\n        - {parameter: apiKey, name: a, key: k}\n        - {parameter: apiKey, name: b, key: k}\n",
    ));
    for want in [
        "spec.triggers[0].secretTargetRef[0].parameter: got \"password\", expected one of apiKey, ca, cert, key",
        "spec.triggers[0].secretTargetRef[0].name: got \"Bad_Name\", expected a Secret name",
        "spec.triggers[0].secretTargetRef[0].key: expected a key of the Secret's data",
        "spec.triggers[0].secretTargetRef[2].parameter: got \"apiKey\", expected each parameter at most once",
    ] {
        assert!(
            errs.iter().any(|e| e.contains(want)),
            "{errs:?} lacks {want}"
        );
    }
    let errs = errors_of(
        &with("        - {parameter: apiKey, name: a, key: k}\n").replace(
            "taskQueue: orders\n",
            "taskQueue: orders\n        apiKey: inline-secret-77\n",
        ),
    );
    assert!(
        errs.iter()
            .any(|e| e.contains("expected one source for apiKey, not apiKey and secretTargetRef")),
        "{errs:?}"
    );
    assert!(!errs.join(" ").contains("inline-secret-77"));
}

#[test]
fn keda_keys_are_accepted() {
    let content = GOOD.replace(
        "        endpoint: temporal:7233\n",
        "        endpointFromEnv: TEMPORAL_ENDPOINT\n        workerDeploymentName: orders\n        workerDeploymentBuildId: v2\n        minConnectTimeout: 2s\n",
    );
    let c = &parse_file(Path::new("a.yaml"), &content).unwrap()[0];
    let t = &c.triggers[0];
    assert_eq!(
        t.endpoint,
        crate::spec::EndpointSource::FromEnv("TEMPORAL_ENDPOINT".into())
    );
    assert_eq!(t.connect_timeout, Duration::from_secs(2));
    assert_eq!(
        t.versioning,
        crate::spec::Versioning::WorkerDeployment {
            name: "orders".into(),
            build_id: "v2".into(),
            scope: crate::spec::DeploymentScope::TaskQueue,
        }
    );
}

#[test]
fn keys_from_the_targets_environment_wait_for_it_and_are_then_validated() {
    use crate::spec::env::FromEnv;
    let content = GOOD
        .replace(
            "        taskQueue: orders\n",
            "        taskQueueFromEnv: TASK_QUEUE\n        namespace: prod\n        namespaceFromEnv: TEMPORAL_NS\n        workerDeploymentNameFromEnv: DEPLOYMENT\n        workerDeploymentBuildIdFromEnv: BUILD\n        includeRunningWorkflowCount: \"true\"\n",
        )
        .replace(
            "    name: orders-worker\n",
            "    name: orders-worker\n    envSourceContainerName: worker\n",
        );
    let c = &parse_file(Path::new("a.yaml"), &content).unwrap()[0];
    let t = &c.triggers[0];
    // Placeholders until the target is read; the key itself wins over its …FromEnv (KEDA).
    assert_eq!(&*t.task_queue, "$TASK_QUEUE");
    assert_eq!(&*t.namespace, "prod");
    let fe: &FromEnv = t.from_env.as_deref().expect("keys from the environment");
    assert_eq!(
        fe.vars,
        [
            ("taskQueue", "TASK_QUEUE".to_string()),
            ("workerDeploymentName", "DEPLOYMENT".to_string()),
            ("workerDeploymentBuildId", "BUILD".to_string()),
        ]
    );
    assert_eq!(fe.container.as_deref(), Some("worker"));
    // Filled, the trigger is validated as it now is: KEDA's literal rule for the count query.
    let env = |q: &'static str| {
        move |var: &str| match var {
            "TASK_QUEUE" => Ok(q.to_string()),
            "DEPLOYMENT" => Ok("shop/orders".to_string()),
            "BUILD" => Ok("v2".to_string()),
            _ => Err(format!("{var} unset")),
        }
    };
    let filled =
        crate::spec::validate_filled("shop", 0, &fe.fill(env("orders-v2")).unwrap()).unwrap();
    assert_eq!(&*filled.task_queue, "orders-v2");
    assert!(filled.from_env.is_none());
    assert!(matches!(
        &filled.versioning,
        crate::spec::Versioning::WorkerDeployment { name, build_id, .. } if &**name == "shop/orders" && &**build_id == "v2"
    ));
    let errs =
        crate::spec::validate_filled("shop", 0, &fe.fill(env("orders v2")).unwrap()).unwrap_err();
    assert_eq!(
        errs,
        [
            "spec.triggers[0].metadata.taskQueue: got \"orders v2\", expected letters, digits and -_./: only, with includeRunningWorkflowCount (the value goes into a visibility query; KEDA's rule)"
        ]
    );
    let missing = fe.fill(|v| Err(format!("{v} unset"))).unwrap_err();
    assert_eq!(
        missing[0],
        (
            "spec.triggers[0].metadata.taskQueueFromEnv".to_string(),
            "TASK_QUEUE unset".to_string()
        )
    );
    // The endpoint: the key first, as KEDA reads it (no longer an error beside endpointFromEnv).
    let both = GOOD.replace(
        "        endpoint: temporal:7233\n",
        "        endpoint: temporal:7233\n        endpointFromEnv: TEMPORAL_ENDPOINT\n",
    );
    let c = &parse_file(Path::new("a.yaml"), &both).unwrap()[0];
    assert_eq!(
        c.triggers[0].endpoint,
        crate::spec::EndpointSource::Literal("temporal:7233".into())
    );
    assert!(c.triggers[0].from_env.is_none());
}

#[test]
fn keda_tls_and_zero_values() {
    let with = |lines: &str| {
        GOOD.replace(
            "taskQueue: orders\n",
            &format!("taskQueue: orders\n{lines}"),
        )
    };
    let tls = |lines: &str| {
        parse_file(Path::new("a.yaml"), &with(lines)).map(|c| c[0].triggers[0].auth.tls)
    };
    use crate::spec::TlsMode::{Plaintext, Tls};
    // enableTLS decides only for an API key without a client certificate.
    assert_eq!(
        tls("        apiKeyFromEnv: K\n").unwrap(),
        Tls { skip_verify: false }
    );
    assert_eq!(tls("        enableTLS: \"true\"\n").unwrap(), Plaintext);
    assert_eq!(tls("        enableTLS: \"false\"\n").unwrap(), Plaintext);
    assert_eq!(
        tls("        apiKeyFromEnv: K\n        enableTLS: \"false\"\n        allowApiKeyWithoutTls: \"true\"\n").unwrap(),
        Plaintext
    );
    let errs = errors_of(&with(
        "        apiKeyFromEnv: K\n        enableTLS: \"false\"\n",
    ));
    assert!(
        errs.iter().any(|e| e.contains("metadata.apiKey: expected TLS for an API key (remove tls: \"false\", enableTLS: \"false\" or the http:// scheme)")),
        "{errs:?}"
    );
    // KEDA parses 0 for both; a 0 target is refused with why, a 0 connect timeout is 1 s.
    let errs = errors_of(&with("        targetQueueSize: \"0\"\n"));
    assert!(
        errs.iter().any(|e| e.contains("targetQueueSize: got \"0\", expected a number > 0 (KEDA parses 0, but the HorizontalPodAutoscaler it creates is then refused: averageValue must be positive)")),
        "{errs:?}"
    );
    let c = &parse_file(
        Path::new("a.yaml"),
        &with("        minConnectTimeout: \"0\"\n"),
    )
    .unwrap()[0];
    assert_eq!(c.triggers[0].connect_timeout, Duration::from_secs(1));
}

/// A TemporalScaler whose trigger metadata is KEDA's e2e trigger (tests/scalers/temporal in
/// kedacore/keda, templates rendered) plus `versioning` lines.
fn keda_trigger(versioning: &str) -> String {
    format!(
        r#"
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: temporal-test-so-deploy-ver
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: temporal-test-deploy-ver
  triggers:
  - type: temporal
    metadata:
      namespace: default
      taskQueue: "omes-test"
      targetQueueSize: "2"
      endpoint: temporal-temporal-test.temporal-test-ns.svc.cluster.local:7233
{versioning}"#
    )
}

#[test]
fn keda_worker_versioning_keys_select_what_keda_reads() {
    use crate::spec::{DeploymentScope, QueueType, Versioning};
    let versioning_of = |lines: &str| {
        let c = parse_file(Path::new("a.yaml"), &keda_trigger(lines))
            .unwrap_or_else(|e| panic!("{lines}: {e:?}"));
        c[0].triggers[0].clone()
    };
    // deployment: one Worker Deployment version, every queue of it (KEDA sums them all).
    let t = versioning_of(
        "      workerVersioningType: deployment\n      deploymentName: omes-deployment\n      buildId: v2.0.0\n",
    );
    assert_eq!(
        t.versioning,
        Versioning::WorkerDeployment {
            name: "omes-deployment".into(),
            build_id: "v2.0.0".into(),
            scope: DeploymentScope::Version,
        }
    );
    assert_eq!(*t.queue_types, QueueType::ALL);
    // build-id: the legacy selection of that one build id.
    let t = versioning_of("      workerVersioningType: build-id\n      buildId: 1.0.0\n");
    assert_eq!(
        t.versioning,
        Versioning::BuildIds {
            build_id: Some("1.0.0".into()),
            select_all_active: false,
            select_unversioned: false,
        }
    );
    // none, or nothing: no selector.
    assert_eq!(
        versioning_of("      workerVersioningType: none\n").versioning,
        Versioning::All
    );
    assert_eq!(versioning_of("").versioning, Versioning::All);
    // Our own bare buildId keeps its meaning (KEDA's older scalers read it the same way).
    assert!(matches!(
        versioning_of("      buildId: v7\n").versioning,
        Versioning::BuildIds { build_id: Some(b), .. } if &*b == "v7"
    ));
}

#[test]
fn keda_worker_versioning_rules_and_conflicts_name_their_fields() {
    let p = "dir/x.yaml: document 0: spec.triggers[0].metadata";
    let cases: &[(&str, &str)] = &[
        (
            "      workerVersioningType: deployment\n      deploymentName: my-deploy\n",
            "buildId: expected the version's build id with workerVersioningType: deployment",
        ),
        (
            "      workerVersioningType: deployment\n      buildId: v1\n",
            "deploymentName: expected the Worker Deployment's name with workerVersioningType: deployment",
        ),
        (
            "      workerVersioningType: deployment\n      deploymentName: my-deploy\n      buildId: v1\n      queueTypes: workflow\n",
            "queueTypes: got \"workflow\", expected no queueTypes with workerVersioningType: deployment",
        ),
        (
            "      workerVersioningType: build-id\n      buildId: v1\n      deploymentName: my-deploy\n",
            "deploymentName: got \"my-deploy\", expected no deploymentName with workerVersioningType: build-id",
        ),
        (
            "      workerVersioningType: build-id\n",
            "buildId: expected a build id with workerVersioningType: build-id",
        ),
        (
            "      deploymentName: my-deploy\n",
            "deploymentName: got \"my-deploy\", expected workerVersioningType: deployment with it (and buildId), or workerDeploymentName with workerDeploymentBuildId",
        ),
        (
            "      workerVersioningType: none\n      buildId: v1\n",
            "buildId: got \"v1\", expected no buildId with workerVersioningType: none (it selects no version)",
        ),
        (
            "      workerVersioningType: none\n      selectUnversioned: \"true\"\n",
            "selectUnversioned: got \"true\", expected no selectUnversioned with workerVersioningType: none",
        ),
        (
            "      workerVersioningType: invalid\n",
            "workerVersioningType: got \"invalid\", expected none, build-id or deployment",
        ),
        (
            "      workerVersioningType: Deployment\n",
            "workerVersioningType: got \"Deployment\", expected none, build-id or deployment",
        ),
        // Conflicts with our own keys name both fields.
        (
            "      workerVersioningType: deployment\n      deploymentName: omes-deployment\n      buildId: v2.0.0\n      workerDeploymentName: omes-deployment\n      workerDeploymentBuildId: v2.0.0\n",
            "workerDeploymentName: got \"omes-deployment\", expected either workerVersioningType: deployment (with deploymentName and buildId) or workerDeploymentName with workerDeploymentBuildId, not both",
        ),
        (
            "      workerVersioningType: deployment\n      deploymentName: omes-deployment\n      buildId: v2.0.0\n      workerDeploymentBuildId: v2.0.0\n",
            "workerDeploymentBuildId: got \"v2.0.0\", expected either workerVersioningType: deployment (with deploymentName and buildId) or workerDeploymentName with workerDeploymentBuildId, not both",
        ),
        (
            "      workerVersioningType: build-id\n      buildId: v1\n      workerDeploymentName: omes-deployment\n      workerDeploymentBuildId: v1\n",
            "workerDeploymentName: got \"omes-deployment\", expected either workerVersioningType: build-id or workerDeploymentName with workerDeploymentBuildId, not both",
        ),
        (
            "      workerVersioningType: deployment\n      deploymentName: omes-deployment\n      buildId: v2.0.0\n      selectAllActive: \"true\"\n",
            "selectAllActive: got \"true\", expected no build-id selection with workerVersioningType: deployment",
        ),
        (
            "      workerVersioningType: none\n      workerDeploymentName: omes-deployment\n      workerDeploymentBuildId: v2.0.0\n",
            "workerDeploymentName: got \"omes-deployment\", expected no workerDeploymentName with workerVersioningType: none (it selects no version)",
        ),
    ];
    for (lines, want) in cases {
        let want = format!("{p}.{want}");
        let errs = errors_of(&keda_trigger(lines));
        assert!(
            errs.iter().any(|e| e.starts_with(&want)),
            "{lines}: {errs:#?}\nlacks {want}"
        );
    }
}

/// A throwaway P-256 client key, encrypted as PKCS#8 with the password "hunter2", and its
/// self-signed certificate (openssl pkcs8 -topk8 -v2 aes-256-cbc).
const ENCRYPTED_KEY: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----
MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAg3alElX10JgwICCAAw
DAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEPYGSSBOpYW4aduGmGETYUUEgZC5
eghxnJIBVuucMd8DLDGhV1BvVckGwa4eePUAGBlX70jF77Yfpbz/gjXiTH9eAMuN
VFMVGtJSc7I/rQrQCjhnXLScgXxjLz0Kb5uP5guI1uqw/I+4F6uZPEjjLw1M+fc2
KSpEndOzG+sFRjMT0BsOPco8B4DdcXSRXK7pfjFFljKThvZovqpVBy/da3y8Mus=
-----END ENCRYPTED PRIVATE KEY-----
";
const ENCRYPTED_KEY_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBejCCAR+gAwIBAgIUCxUP5y2FljY9aIFuucqS+3YztaQwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGY2xpZW50MCAXDTI2MTEzMDEyNTk0OVoYDzIxMjYxMTA2MTI1
OTQ5WjARMQ8wDQYDVQQDDAZjbGllbnQwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC
AATQWQdYr2D0R99mU1XStMExcoyy4K+FnXh+oCD8mzmli7TuV1z2I6903SVVZVhl
3iGDSg7JCexOsRPQvIxAeVwPo1MwUTAdBgNVHQ4EFgQUHWEsqZRqzYDiz2h+Joti
KBosfPgwHwYDVR0jBBgwFoAUHWEsqZRqzYDiz2h+JotiKBosfPgwDwYDVR0TAQH/
BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAwZr9wnVz62ohtossDSuelTKWxFPD
0muSkABlo00SqOACIQDkZ92p7J/9ottu5EZujBhvRsj/y2rQ8KeRyuH4behXzA==
-----END CERTIFICATE-----
";

#[test]
fn key_password_and_encrypted_keys_are_refused_without_echoing_the_password() {
    use base64::Engine;
    let hint = "encrypted client keys are not supported: decrypt the key (`openssl pkey -in tls.key -out tls-decrypted.key` asks for its password) and give the decrypted key";
    let p = "dir/x.yaml: document 0: spec.triggers[0]";
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let with_key = |extra: &str| {
        GOOD.replace(
            "        taskQueue: orders\n",
            &format!(
                "        taskQueue: orders\n        cert: {}\n        key: {}\n{extra}",
                b64(ENCRYPTED_KEY_CERT),
                b64(ENCRYPTED_KEY)
            ),
        )
    };
    // KEDA's keyPassword: refused, and the password is never shown. (Each error ends with the
    // line of its field.)
    let errs = errors_of(&with_key("        keyPassword: hunter2\n"));
    assert_eq!(
        errs,
        [
            format!("{p}.metadata.keyPassword: expected no keyPassword ({hint}) (line 19)"),
            // The encrypted key itself says what to do, with or without the password.
            format!("{p}.metadata.key: expected an unencrypted private key ({hint}) (line 18)"),
        ],
    );
    assert!(!errs.join("\n").contains("hunter2"), "{errs:#?}");
    assert_eq!(
        errors_of(&with_key("")),
        [format!(
            "{p}.metadata.key: expected an unencrypted private key ({hint}) (line 18)"
        )]
    );
    // The password from a Secret: refused by its parameter name.
    let errs = errors_of(&GOOD.replace(
        "        taskQueue: orders\n",
        "        taskQueue: orders\n      secretTargetRef:\n        - {parameter: keyPassword, name: temporal-tls, key: password}\n",
    ));
    assert_eq!(
        errs,
        [format!(
            "{p}.secretTargetRef[0].parameter: got \"keyPassword\", expected one of apiKey, ca, cert, key ({hint}) (line 18)"
        )]
    );
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

#[test]
fn candidate_files_follow_configmap_links_and_skip_dotfiles() {
    let d = tempfile::tempdir().unwrap();
    let ts = d.path().join("..2026_11_26_00_00_00.1");
    std::fs::create_dir(&ts).unwrap();
    write(&ts.join("a.yaml"), GOOD);
    symlink("..2026_11_26_00_00_00.1", d.path().join("..data")).unwrap();
    symlink("..data/a.yaml", d.path().join("a.yaml")).unwrap();
    write(&d.path().join(".hidden.yaml"), GOOD);
    write(&d.path().join("notes.txt"), "x");
    symlink("..data/missing.yaml", d.path().join("dangling.yaml")).unwrap();
    let files = candidate_files(d.path()).unwrap();
    assert_eq!(files, vec![d.path().join("a.yaml")]);
}

#[test]
fn a_configmap_swap_is_picked_up() {
    let d = tempfile::tempdir().unwrap();
    let v1 = d.path().join("..v1");
    std::fs::create_dir(&v1).unwrap();
    write(&v1.join("a.yaml"), &doc("a", "q1"));
    symlink("..v1", d.path().join("..data")).unwrap();
    symlink("..data/a.yaml", d.path().join("a.yaml")).unwrap();
    let mut st = DirState::new(d.path());
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    assert_eq!(
        &*st.snapshot().scalers[0].config.triggers[0].task_queue,
        "q1"
    );

    // What the kubelet does: a new timestamped dir, `..data_tmp` renamed over `..data`.
    let v2 = d.path().join("..v2");
    std::fs::create_dir(&v2).unwrap();
    write(&v2.join("a.yaml"), &doc("a", "q2"));
    symlink("..v2", d.path().join("..data_tmp")).unwrap();
    std::fs::rename(d.path().join("..data_tmp"), d.path().join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    assert_eq!(
        &*st.snapshot().scalers[0].config.triggers[0].task_queue,
        "q2"
    );
    assert_eq!(st.reload().unwrap(), ReloadResult::Unchanged);
}

/// Specs share the strings that many of them hold (100,000 files of one namespace, one trigger
/// name and 20,000 queues held 12 MB of copies); a scaler's own name stays its own.
#[test]
fn specs_of_a_directory_share_their_common_strings() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("a", "q1"));
    write(&d.path().join("b.yaml"), &doc("b", "q1"));
    write(&d.path().join("c.yaml"), &doc("c", "q2"));
    let mut st = DirState::new(d.path());
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    let snap = st.snapshot();
    let [a, b, c] = [0, 1, 2].map(|i| &snap.scalers[i].config);
    let (ta, tb, tc) = (&a.triggers[0], &b.triggers[0], &c.triggers[0]);
    assert!(Arc::ptr_eq(&a.namespace, &c.namespace));
    assert!(Arc::ptr_eq(&snap.scalers[0].key.namespace, &c.namespace));
    assert!(Arc::ptr_eq(&ta.task_queue, &tb.task_queue));
    assert!(!Arc::ptr_eq(&ta.task_queue, &tc.task_queue));
    assert!(Arc::ptr_eq(&ta.name, &tc.name) && Arc::ptr_eq(&ta.namespace, &tc.namespace));
    assert_eq!((&*a.name, &*b.name), ("a", "b"));
    // A file edited later shares with what is already there.
    write(&d.path().join("c.yaml"), &doc("c", "q1"));
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    let snap = st.snapshot();
    let q = |i: usize| snap.scalers[i].config.triggers[0].task_queue.clone();
    assert!(Arc::ptr_eq(&q(0), &q(2)));
}

#[test]
fn a_broken_file_keeps_its_last_good_version_and_others_are_unaffected() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("a", "qa"));
    write(&d.path().join("b.yaml"), &doc("b", "qb"));
    let mut st = DirState::new(d.path());
    st.reload().unwrap();

    write(&d.path().join("a.yaml"), "spec: [unclosed");
    write(&d.path().join("b.yaml"), &doc("b", "qb2"));
    assert_eq!(st.reload().unwrap(), ReloadResult::Rejected);
    let snap = st.snapshot();
    let queues: Vec<_> = snap
        .scalers
        .iter()
        .map(|s| &*s.config.triggers[0].task_queue)
        .collect();
    assert_eq!(queues, ["qa", "qb2"]);
    let errs = &snap.errors[&d.path().join("a.yaml")];
    assert!(errs[0].to_string().contains("invalid YAML"), "{errs:?}");

    // Fixing it clears the error; deleting it stops its scalers.
    write(&d.path().join("a.yaml"), &doc("a", "qa3"));
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    assert!(st.snapshot().errors.is_empty());
    std::fs::remove_file(d.path().join("a.yaml")).unwrap();
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    assert_eq!(scaler_names(&st), ["b"]);
}

/// A re-read updates the known files in place: a new file joins in path order, the others
/// keep their parsed configs (the same allocation), and a removed one is gone.
#[test]
fn a_re_read_keeps_known_files_and_adds_and_drops_the_others() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("a", "qa"));
    write(&d.path().join("c.yaml"), &doc("c", "qc"));
    let mut st = DirState::new(d.path());
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    let before = st.snapshot();
    assert_eq!(st.reload().unwrap(), ReloadResult::Unchanged);
    write(&d.path().join("b.yaml"), &doc("b", "qb"));
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    let after = st.snapshot();
    let names: Vec<_> = after.scalers.iter().map(|s| &*s.key.name).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(Arc::ptr_eq(
        &before.scalers[0].config,
        &after.scalers[0].config
    ));
    assert!(Arc::ptr_eq(
        &before.scalers[1].config,
        &after.scalers[2].config
    ));
    assert!(Arc::ptr_eq(&before.scalers[0].file, &after.scalers[0].file));
    std::fs::remove_file(d.path().join("a.yaml")).unwrap();
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    assert_eq!(scaler_names(&st), ["b", "c"]);
    assert_eq!(st.reload().unwrap(), ReloadResult::Unchanged);
}

#[test]
fn a_file_that_never_parsed_is_reported_without_scalers() {
    let d = tempfile::tempdir().unwrap();
    write(
        &d.path().join("bad.yaml"),
        &GOOD.replace("maxReplicaCount: 10", "maxReplicaCount: 0"),
    );
    let mut st = DirState::new(d.path());
    assert_eq!(st.reload().unwrap(), ReloadResult::Rejected);
    let snap = st.snapshot();
    assert!(snap.scalers.is_empty());
    assert!(
        snap.errors[&d.path().join("bad.yaml")][0]
            .to_string()
            .contains("spec.maxReplicaCount: got 0")
    );
}

#[test]
fn a_name_defined_twice_is_an_error_for_the_later_file() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("same", "qa"));
    write(&d.path().join("b.yaml"), &doc("same", "qb"));
    let mut st = DirState::new(d.path());
    st.reload().unwrap();
    let snap = st.snapshot();
    assert_eq!(snap.scalers.len(), 1);
    assert_eq!(*snap.scalers[0].file, *d.path().join("a.yaml"));
    let e = snap.errors[&d.path().join("b.yaml")][0].to_string();
    assert!(
        e.contains("scaler shop/same is already defined in") && e.contains("a.yaml document 0"),
        "{e}"
    );
}

#[test]
fn reading_files_is_not_a_change_but_writing_renaming_and_removing_are() {
    use notify::event::{
        AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RemoveKind, RenameMode,
    };
    let ev = |kind| notify::Event::new(kind);
    for kind in [
        EventKind::Access(AccessKind::Open(AccessMode::Read)),
        EventKind::Access(AccessKind::Close(AccessMode::Read)),
        EventKind::Access(AccessKind::Read),
    ] {
        assert!(!is_change(&ev(kind)), "{kind:?}");
    }
    for kind in [
        EventKind::Create(CreateKind::File),
        EventKind::Modify(ModifyKind::Any),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)),
        EventKind::Access(AccessKind::Close(AccessMode::Write)),
        EventKind::Remove(RemoveKind::File),
        EventKind::Any,
    ] {
        assert!(is_change(&ev(kind)), "{kind:?}");
    }
}

#[tokio::test]
async fn watch_dir_publishes_changes_after_a_write() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("a", "q1"));
    let hook: ReloadHook = Arc::new(|_, _| {});
    let DirWatch {
        first,
        next: mut rx,
        task,
    } = watch_dir(
        d.path().to_path_buf(),
        Duration::from_millis(50),
        Duration::from_secs(3600),
        hook,
    )
    .await
    .unwrap();
    assert_eq!(&*first.scalers[0].config.triggers[0].task_queue, "q1");
    write(&d.path().join("a.yaml"), &doc("a", "q2"));
    // Bound the wait: the change must arrive well within the 2 s contract.
    let snap = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("no reload within 2s")
        .unwrap();
    assert_eq!(&*snap.scalers[0].config.triggers[0].task_queue, "q2");
    std::fs::remove_file(d.path().join("a.yaml")).unwrap();
    let snap = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("no reload within 2s")
        .unwrap();
    assert!(snap.scalers.is_empty());
    task.abort();
}

#[tokio::test]
async fn watch_dir_sees_a_configmap_swap() {
    let d = tempfile::tempdir().unwrap();
    let v1 = d.path().join("..v1");
    std::fs::create_dir(&v1).unwrap();
    write(&v1.join("a.yaml"), &doc("a", "q1"));
    symlink("..v1", d.path().join("..data")).unwrap();
    symlink("..data/a.yaml", d.path().join("a.yaml")).unwrap();
    let hook: ReloadHook = Arc::new(|_, _| {});
    let DirWatch {
        first,
        next: mut rx,
        task,
    } = watch_dir(
        d.path().to_path_buf(),
        Duration::from_millis(50),
        Duration::from_secs(3600),
        hook,
    )
    .await
    .unwrap();
    assert_eq!(&*first.scalers[0].config.triggers[0].task_queue, "q1");

    let v2 = d.path().join("..v2");
    std::fs::create_dir(&v2).unwrap();
    write(&v2.join("a.yaml"), &doc("a", "q2"));
    symlink("..v2", d.path().join("..data_tmp")).unwrap();
    std::fs::rename(d.path().join("..data_tmp"), d.path().join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    let snap = tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("no reload within 2s")
        .unwrap();
    assert_eq!(&*snap.scalers[0].config.triggers[0].task_queue, "q2");
    task.abort();
}

#[test]
fn capacity_keys_have_defaults_and_are_checked() {
    let with = |meta: &str| {
        GOOD.replace(
            "        taskQueue: orders\n",
            &format!("        taskQueue: orders\n{meta}"),
        )
    };
    let c = &parse_file(Path::new("a.yaml"), GOOD).unwrap()[0];
    assert_eq!(c.triggers[0].capacity, None);
    assert!(!c.triggers[0].keep_while_dispatching);

    let on =
        with("        targetSlotUtilization: \"0.8\"\n        keepWhileDispatching: \"true\"\n");
    let t = &parse_file(Path::new("a.yaml"), &on).unwrap()[0].triggers[0];
    let cap = t.capacity.as_ref().unwrap();
    assert_eq!(cap.target_utilization, 0.8);
    assert_eq!(cap.max_heartbeat_age, Duration::from_secs(180));
    assert!(t.keep_while_dispatching);
    let aged = with(
        "        targetSlotUtilization: \"1\"\n        workerHeartbeatMaxAgeSeconds: \"30\"\n",
    );
    let t = &parse_file(Path::new("a.yaml"), &aged).unwrap()[0].triggers[0];
    assert_eq!(
        t.capacity.as_ref().unwrap().max_heartbeat_age,
        Duration::from_secs(30)
    );

    for (meta, field, want) in [
        (
            "        targetSlotUtilization: \"0\"\n",
            "targetSlotUtilization",
            "0 < x ≤ 1",
        ),
        (
            "        targetSlotUtilization: \"1.5\"\n",
            "targetSlotUtilization",
            "0 < x ≤ 1",
        ),
        (
            "        targetSlotUtilization: \"80%\"\n",
            "targetSlotUtilization",
            "0 < x ≤ 1",
        ),
        (
            "        workerHeartbeatMaxAgeSeconds: \"60\"\n",
            "workerHeartbeatMaxAgeSeconds",
            "targetSlotUtilization as well",
        ),
        (
            "        targetSlotUtilization: \"0.5\"\n        workerHeartbeatMaxAgeSeconds: \"0\"\n",
            "workerHeartbeatMaxAgeSeconds",
            "from 1 to 86400",
        ),
        (
            "        keepWhileDispatching: \"yes\"\n",
            "keepWhileDispatching",
            "\"true\" or \"false\"",
        ),
    ] {
        let errs = errors_of(&with(meta));
        assert!(
            errs.iter().any(|e| e.contains("dir/x.yaml")
                && e.contains(&format!("spec.triggers[0].metadata.{field}"))
                && e.contains(want)),
            "{meta}: {errs:?}"
        );
    }
    // Names go into a ListWorkers query: no quotes.
    let quoted = with("        targetSlotUtilization: \"0.8\"\n")
        .replace("taskQueue: orders", "taskQueue: \"o'rders\"");
    let errs = errors_of(&quoted);
    assert!(
        errs.iter()
            .any(|e| e.contains("metadata.taskQueue") && e.contains("no quotes")),
        "{errs:?}"
    );
}

#[test]
fn a_file_that_is_not_utf8_says_where() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("a", "qa"));
    std::fs::write(d.path().join("b.yaml"), b"apiVersion: x\nkind: \xff\xfe\n").unwrap();
    let mut st = DirState::new(d.path());
    assert_eq!(st.reload().unwrap(), ReloadResult::Rejected);
    let snap = st.snapshot();
    assert_eq!(snap.scalers.len(), 1, "a.yaml runs");
    let errs = &snap.errors[&d.path().join("b.yaml")];
    assert_eq!(
        errs[0].to_string(),
        format!(
            "{}: not UTF-8 text: an invalid byte at offset 20 (line 2)",
            d.path().join("b.yaml").display()
        )
    );
}

#[test]
fn scale_down_idle_first_defaults_on_and_is_checked() {
    let with = |spec: &str| {
        GOOD.replace(
            "  maxReplicaCount: 10\n",
            &format!("  maxReplicaCount: 10\n{spec}"),
        )
    };
    assert!(parse_file(Path::new("a.yaml"), GOOD).unwrap()[0].idle_first);
    let off = with("  scaleDown: {idleFirst: false}\n");
    assert!(!parse_file(Path::new("a.yaml"), &off).unwrap()[0].idle_first);
    let on = with("  scaleDown: {}\n");
    assert!(parse_file(Path::new("a.yaml"), &on).unwrap()[0].idle_first);
    for (bad, want) in [
        (
            "  scaleDown: {idleFirst: maybe}\n",
            "spec.scaleDown.idleFirst",
        ),
        ("  scaleDown: {idleFrist: true}\n", "idleFrist"),
    ] {
        let e = parse_file(Path::new("a.yaml"), &with(bad))
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        assert!(e.contains(want) && e.contains("a.yaml"), "{bad}: {e}");
    }
}

/// 10,000 scalers: what every scaler of a directory has in common is held once. A file's
/// path is one allocation shared by its scalers, kept from one reload to the next; the
/// default behavior is one for all scalers.
#[test]
fn paths_and_the_default_behavior_are_shared_not_copied() {
    let d = tempfile::tempdir().unwrap();
    write(&d.path().join("a.yaml"), &doc("one", "qa"));
    write(&d.path().join("b.yaml"), &doc("two", "qb"));
    let mut st = DirState::new(d.path());
    st.reload().unwrap();
    let first = st.snapshot();
    write(&d.path().join("b.yaml"), &doc("two", "qc"));
    assert_eq!(st.reload().unwrap(), ReloadResult::Applied);
    let second = st.snapshot();
    assert!(Arc::ptr_eq(&first.scalers[0].file, &second.scalers[0].file));
    assert!(Arc::ptr_eq(&first.scalers[1].file, &second.scalers[1].file));
    assert_eq!(*second.scalers[1].file, *d.path().join("b.yaml"));
    let (a, b) = (&second.scalers[0].config, &second.scalers[1].config);
    assert!(crate::spec::Shared::same(&a.behavior, &b.behavior));
}
