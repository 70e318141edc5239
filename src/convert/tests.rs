use super::keda::ACCEPTED_KEYS;
use super::*;
use crate::source::dir::parse_file;
use crate::spec::{
    API_VERSION, CredSource, ENCRYPTED_KEY_HINT, Fallback, KIND, PolicyKind, PolicySpec, QueueType,
    ScalerDocument, SelectPolicy, validate,
};
use std::path::Path;
use std::time::Duration;

fn run(content: &str) -> ConvertReport {
    convert(Path::new("deploy.yaml"), content).unwrap()
}

/// Every converted output passes the agent's own parser, with one scaler per conversion.
fn assert_valid_for_the_agent(r: &ConvertReport) {
    let scalers = parse_file(Path::new("out.yaml"), &r.output)
        .unwrap_or_else(|e| panic!("output rejected by the agent: {e:?}\n{}", r.output));
    assert_eq!(scalers.len(), r.converted, "{}", r.output);
}

fn has(r: &ConvertReport, note: &str) {
    assert!(
        r.notes.iter().any(|n| n == note),
        "missing note:\n  {note}\nnotes:\n  {}",
        r.notes.join("\n  ")
    );
}

fn has_error(r: &ConvertReport, error: &str) {
    assert!(
        r.errors.iter().any(|e| e == error),
        "missing error:\n  {error}\nerrors:\n  {}\nnotes:\n  {}",
        r.errors.join("\n  "),
        r.notes.join("\n  ")
    );
}

const ORDERS: &str = r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders-worker
  namespace: shop
  labels:
    team: payments
  annotations:
    autoscaling.keda.sh/paused-replicas: "2"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: orders-worker
  pollingInterval: 10
  cooldownPeriod: 120
  initialCooldownPeriod: 60
  minReplicaCount: 1
  maxReplicaCount: 20
  idleReplicaCount: 0
  fallback:
    failureThreshold: 3
    replicas: 6
    behavior: currentReplicasIfHigher
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies:
            - type: Pods
              value: 4
              periodSeconds: 15
            - type: Percent
              value: 100
              periodSeconds: 15
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          tolerance: 50m
          policies:
            - type: Percent
              value: 50
              periodSeconds: 60
  triggers:
    - type: temporal
      name: orders-backlog
      metadata:
        endpoint: temporal-frontend.temporal.svc:7233
        namespace: orders
        taskQueue: orders
        queueTypes: workflow,activity
        targetQueueSize: "5"
        activationTargetQueueSize: "1"
        minConnectTimeout: "5"
"#;

#[test]
fn a_realistic_scaled_object_converts_field_for_field() {
    let r = run(ORDERS);
    assert_eq!(r.converted, 1);
    assert_eq!(
        r.output,
        r#"# from deploy.yaml: document 0 (ScaledObject shop/orders-worker)
apiVersion: scaling.example.com/v1alpha1
kind: TemporalScaler
metadata:
  name: orders-worker
  namespace: shop
  labels:
    team: payments
  annotations:
    autoscaling.keda.sh/paused-replicas: "2"
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: orders-worker
  pollingInterval: 10
  cooldownPeriod: 120
  initialCooldownPeriod: 60
  minReplicaCount: 1
  maxReplicaCount: 20
  idleReplicaCount: 0
  fallback:
    failureThreshold: 3
    replicas: 6
    behavior: currentReplicasIfHigher
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleUp:
          stabilizationWindowSeconds: 0
          selectPolicy: Max
          policies:
          - type: Pods
            value: 4
            periodSeconds: 15
          - type: Percent
            value: 100
            periodSeconds: 15
        scaleDown:
          stabilizationWindowSeconds: 300
          selectPolicy: Min
          policies:
          - type: Percent
            value: 50
            periodSeconds: 60
          tolerance: 0.05
  triggers:
  - type: temporal
    name: orders-backlog
    metadata:
      activationTargetQueueSize: "1"
      endpoint: temporal-frontend.temporal.svc:7233
      minConnectTimeout: "5"
      namespace: orders
      queueTypes: workflow,activity
      targetQueueSize: "5"
      taskQueue: orders
"#
    );
    // Only the changes of meaning are noted: nothing was dropped.
    let p = "deploy.yaml: document 0 (ScaledObject shop/orders-worker)";
    assert_eq!(
        r.notes,
        [
            format!(
                "{p}: spec.cooldownPeriod: meaning changes (120 s): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"
            ),
            format!(
                "{p}: spec.initialCooldownPeriod: meaning changes: KEDA applies it only to scaling to zero after the ScaledObject is created; the agent waits it before any scale-down after the scaler starts"
            ),
        ]
    );

    // The agent reads it as the same scaler.
    let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
    assert_eq!((&*cfg.namespace, &*cfg.name), ("shop", "orders-worker"));
    assert_eq!(cfg.target.to_string(), "StatefulSet/orders-worker");
    assert_eq!(cfg.polling_interval, Duration::from_secs(10));
    assert_eq!(cfg.cooldown, Duration::from_secs(120));
    assert_eq!(cfg.initial_cooldown, Duration::from_secs(60));
    assert_eq!((cfg.min_replicas, cfg.max_replicas), (1, 20));
    assert_eq!(cfg.idle_replicas, Some(0));
    assert_eq!(
        cfg.fallback,
        Some(Box::new(Fallback {
            failure_threshold: 3,
            replicas: 6,
            behavior: "currentReplicasIfHigher".into()
        }))
    );
    assert_eq!(cfg.behavior.up.policies.len(), 2);
    assert_eq!(cfg.behavior.down.select, SelectPolicy::Min);
    assert_eq!(cfg.behavior.down.stabilization, Duration::from_secs(300));
    assert_eq!(cfg.behavior.down.policies[0].kind, PolicyKind::Percent);
    assert_eq!(
        cfg.behavior.down.policies[0].period,
        Duration::from_secs(60)
    );
    assert!((cfg.behavior.down.tolerance - 0.05).abs() < 1e-12);
    let t = &cfg.triggers[0];
    assert_eq!(&*t.name, "orders-backlog");
    assert_eq!((&*t.namespace, &*t.task_queue), ("orders", "orders"));
    assert_eq!(*t.queue_types, [QueueType::Workflow, QueueType::Activity]);
    assert_eq!(
        (t.target_queue_size, t.activation_target_queue_size),
        (5.0, 1.0)
    );
}

const SECRET_B64: &str = "c3VwZXItc2VjcmV0LWFwaS1rZXk=";
const SECRET_PLAIN: &str = "super-secret-api-key";

#[test]
fn a_trigger_authentication_secret_is_named_never_revealed() {
    let content = format!(
        r#"
apiVersion: v1
kind: Secret
metadata:
  name: temporal-cloud
  namespace: shop
data:
  api-key: {SECRET_B64}
stringData:
  plain: {SECRET_PLAIN}
---
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: temporal-auth
  namespace: shop
spec:
  secretTargetRef:
    - parameter: apiKey
      name: temporal-cloud
      key: api-key
    - parameter: ca
      name: temporal-tls
      key: ca.crt
    - parameter: tlsClientCert
      name: temporal-tls
      key: tls.crt
  podIdentity:
    provider: azure-workload
---
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  namespace: shop
spec:
  scaleTargetRef:
    name: orders-worker
  triggers:
    - type: temporal
      metadata:
        endpoint: orders.a1b2c.tmprl.cloud:7233
        namespace: orders.a1b2c
        taskQueue: orders
      authenticationRef:
        name: temporal-auth
"#
    );
    let r = run(&content);
    assert_eq!(r.converted, 1);
    assert_valid_for_the_agent(&r);
    let so =
        "deploy.yaml: document 2 (ScaledObject shop/orders): spec.triggers[0].authenticationRef";
    let ta = format!("{so}: TriggerAuthentication shop/temporal-auth: spec");
    has(
        &r,
        &format!(
            "{so}: TriggerAuthentication shop/temporal-auth: the agent does not read KEDA authentication objects; its parameters are taken over as listed below"
        ),
    );
    has(
        &r,
        &format!(
            "{ta}.secretTargetRef[0]: parameter apiKey: mapped to the trigger's secretTargetRef (key \"api-key\" of Secret shop/temporal-cloud); the agent needs get on that Secret (chart value rbac.secretReferences)"
        ),
    );
    has(
        &r,
        &format!(
            "{ta}.secretTargetRef[1]: parameter ca: mapped to the trigger's secretTargetRef (key \"ca.crt\" of Secret shop/temporal-tls); the agent needs get on that Secret (chart value rbac.secretReferences)"
        ),
    );
    has(
        &r,
        &format!(
            "{ta}.secretTargetRef[2]: parameter \"tlsClientCert\" (key \"tls.crt\" of Secret shop/temporal-tls): no equivalent; dropped"
        ),
    );
    has(&r, &format!("{ta}.podIdentity: no equivalent; dropped"));
    has(
        &r,
        "deploy.yaml: document 0 (Secret shop/temporal-cloud): Secret is not a KEDA ScaledObject; skipped",
    );
    has(
        &r,
        "deploy.yaml: document 1 (TriggerAuthentication shop/temporal-auth): not a ScaledObject; skipped (read for the authenticationRef of ScaledObjects in this file)",
    );
    // No value is copied: the trigger references the same Secret keys KEDA read.
    let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
    assert_eq!(
        doc.spec.triggers[0].metadata.keys().collect::<Vec<_>>(),
        ["endpoint", "namespace", "taskQueue"]
    );
    let refs: Vec<_> = doc.spec.triggers[0]
        .secret_target_ref
        .iter()
        .map(|r| (r.parameter.as_str(), &*r.name, r.key.as_str()))
        .collect();
    // KEDA's rule: with an API key alone it verifies against the system's roots, not the CA.
    assert_eq!(refs, [("apiKey", "temporal-cloud", "api-key")]);
    has(
        &r,
        "deploy.yaml: document 2 (ScaledObject shop/orders): spec.triggers[0].metadata: the TriggerAuthentication's ca: dropped: with an API key alone KEDA verifies the server against the system's roots, not this CA (as the agent does without one)",
    );
    for secret in [SECRET_B64, SECRET_PLAIN] {
        assert!(!r.output.contains(secret));
        assert!(
            r.notes.iter().all(|n| !n.contains(secret)),
            "{secret} leaked"
        );
    }
}

#[test]
fn trigger_authentication_env_maps_to_api_key_from_env_and_missing_ones_are_noted() {
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata:
  name: from-env
spec:
  env:
    - parameter: apiKey
      name: TEMPORAL_API_KEY
      containerName: worker
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
spec:
  scaleTargetRef:
    name: orders-worker
  triggers:
    - type: temporal
      name: env-key
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: from-env}
    - type: temporal
      name: elsewhere
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: not-here}
    - type: temporal
      name: cluster
      metadata: {endpoint: "orders.tmprl.cloud:7233", taskQueue: orders}
      authenticationRef: {name: shared, kind: ClusterTriggerAuthentication}
"#);
    assert_eq!(r.converted, 1);
    assert_valid_for_the_agent(&r);
    let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
    assert_eq!(&*cfg.namespace, "default");
    assert_eq!(
        cfg.triggers[0].auth.api_key,
        Some(CredSource::Env("TEMPORAL_API_KEY".into()))
    );
    assert_eq!(cfg.triggers[1].auth.api_key, None);
    assert_eq!(cfg.triggers[2].auth.api_key, None);
    let p = "deploy.yaml: document 1 (ScaledObject orders)";
    has(
        &r,
        &format!("{p}: metadata.namespace: absent; set to \"default\""),
    );
    has(
        &r,
        &format!(
            "{p}: spec.triggers[0].authenticationRef: TriggerAuthentication default/from-env: spec.env[0]: parameter apiKey: mapped to apiKeyFromEnv: TEMPORAL_API_KEY; the agent reads TEMPORAL_API_KEY from the scale target's container, as KEDA does; the agent reads the container that scaleTargetRef.envSourceContainerName names (the first one when unset): set it to this containerName if they differ"
        ),
    );
    has(
        &r,
        &format!(
            "{p}: spec.triggers[1].authenticationRef: TriggerAuthentication default/not-here is not in this file; dropped, so the converted trigger has none of its credentials: give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)"
        ),
    );
    has(
        &r,
        &format!(
            "{p}: spec.triggers[2].authenticationRef: ClusterTriggerAuthentication shared: no equivalent (the agent reads Secrets only in the scaler's own namespace); dropped: give the trigger its credentials directly (secretTargetRef, apiKeyFile, caFile, certFile, keyFile, apiKeyFromEnv)"
        ),
    );
}

#[test]
fn non_temporal_triggers_are_dropped_with_a_note() {
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders-worker}
  triggers:
    - type: cpu
      metricType: Utilization
      metadata: {value: "60"}
    - type: temporal
      metadata: {endpoint: "temporal:7233", taskQueue: orders}
"#);
    assert_eq!(r.converted, 1);
    assert_valid_for_the_agent(&r);
    let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
    assert_eq!(doc.spec.triggers.len(), 1);
    assert_eq!(doc.spec.triggers[0].metadata["taskQueue"], "orders");
    has(
        &r,
        "deploy.yaml: document 0 (ScaledObject shop/orders): spec.triggers[0]: trigger of type \"cpu\": the agent only scales on Temporal backlogs; dropped from the output, so this scaler no longer scales on it",
    );
    // The dropped trigger's own fields are covered by that one note.
    assert!(!r.notes.iter().any(|n| n.contains("spec.triggers[0].")));
}

/// KEDA's running-workflow count (`includeRunningWorkflowCount`, and the queue it counts on,
/// `workflowTaskQueueForCount`) means the same in the agent: carried over, not dropped.
#[test]
fn the_running_workflow_count_is_carried_over() {
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: activities, namespace: shop}
spec:
  scaleTargetRef: {name: activity-worker}
  triggers:
    - type: temporal
      metadata:
        endpoint: temporal:7233
        taskQueue: activities
        includeRunningWorkflowCount: "true"
        workflowTaskQueueForCount: workflows
"#);
    assert_valid_for_the_agent(&r);
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(
        r.output.contains("includeRunningWorkflowCount: 'true'")
            || r.output.contains("includeRunningWorkflowCount: \"true\""),
        "{}",
        r.output
    );
    assert!(
        r.output.contains("workflowTaskQueueForCount: workflows"),
        "{}",
        r.output
    );
    let cfg = parse_file(Path::new("out.yaml"), &r.output)
        .unwrap()
        .remove(0);
    let t = &cfg.triggers[0];
    assert!(t.include_running_workflows);
    assert_eq!(
        t.workflow_task_queue_for_count.as_deref(),
        Some("workflows")
    );
}

#[test]
fn unknown_and_unsupported_fields_are_noted_with_their_paths() {
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: orders
  namespace: shop
  uid: 0b5c1f9e
  finalizers: [finalizer.keda.sh]
  annotations:
    autoscaling.keda.sh/paused: "true"
    kubectl.kubernetes.io/last-applied-configuration: '{"apiKey": "inline-secret-value"}'
spec:
  scaleTargetRef:
    name: orders-worker
    envSourceContainerName: worker
  bogus: 1
  advanced:
    restoreToOriginalReplicaCount: true
    horizontalPodAutoscalerConfig:
      name: keda-hpa-orders
      behavior:
        scaleDown:
          policies:
            - {type: Percent, value: 50, periodSeconds: 60}
  triggers:
    - type: temporal
      name: orders
      useCachedMetrics: true
      metricType: AverageValue
      extra: x
      metadata:
        endpointFromEnv: TEMPORAL_ADDRESS
        taskQueue: orders
        targetQueueSize: 10
        enableTLS: "true"
        apiKey: inline-secret-value
        namespace: orders
        namespaceFromEnv: TEMPORAL_NS
        targetQueueSizeFromEnv: TARGET
status:
  hpaName: keda-hpa-orders
"#);
    assert_eq!(r.converted, 1, "{:#?}", r.notes);
    assert_valid_for_the_agent(&r);
    let p = "deploy.yaml: document 0 (ScaledObject shop/orders)";
    for note in [
        "metadata.uid: no equivalent; dropped",
        "metadata.finalizers: no equivalent; dropped",
        "metadata.annotations[\"kubectl.kubernetes.io/last-applied-configuration\"]: no equivalent; dropped",
        "spec.bogus: not a field the converter knows; dropped",
        "spec.advanced.restoreToOriginalReplicaCount: no equivalent; dropped",
        "spec.advanced.horizontalPodAutoscalerConfig.name: no equivalent (the agent creates no HPA); dropped",
        "spec.triggers[0].useCachedMetrics: no equivalent (the agent polls every pollingInterval); dropped",
        "spec.triggers[0].metricType: dropped; the agent always scales on backlog per replica (AverageValue)",
        "spec.triggers[0].extra: not a field the converter knows; dropped",
        "spec.triggers[0].metadata.targetQueueSize: a bare number; written as a string",
        "spec.triggers[0].metadata.enableTLS: dropped: without credentials KEDA connects in plaintext and ignores it",
        "spec.triggers[0].metadata.apiKey: dropped: KEDA ignores it in the trigger metadata (it reads it from a TriggerAuthentication only)",
        "spec.triggers[0].metadata.targetQueueSizeFromEnv: KEDA ignores it (not a key of its temporal scaler); dropped",
        "status: KEDA's runtime state; dropped",
    ] {
        has(&r, &format!("{p}: {note}"));
    }
    assert!(r.errors.is_empty(), "{:#?}", r.errors);
    assert!(
        r.notes.iter().all(|n| !n.contains("inline-secret-value")),
        "the API key leaked"
    );
    let doc: ScalerDocument = serde_saphyr::from_str(&r.output).unwrap();
    let m = &doc.spec.triggers[0].metadata;
    assert_eq!(m["targetQueueSize"], "10");
    // The agent reads them as KEDA does: the key first, then the target's variable.
    assert_eq!(m["endpointFromEnv"], "TEMPORAL_ADDRESS");
    assert_eq!(m["namespace"], "orders");
    assert_eq!(m["namespaceFromEnv"], "TEMPORAL_NS");
    assert!(!m.contains_key("enableTLS") && !m.contains_key("tls") && !m.contains_key("apiKey"));
    assert_eq!(
        doc.spec
            .scale_target_ref
            .env_source_container_name
            .as_deref(),
        Some("worker")
    );
    let down = doc
        .spec
        .advanced
        .unwrap()
        .horizontal_pod_autoscaler_config
        .unwrap()
        .behavior
        .unwrap()
        .scale_down
        .unwrap();
    assert_eq!(
        down.policies,
        Some(vec![PolicySpec {
            type_: "Percent".into(),
            value: 50,
            period_seconds: 60
        }])
    );
}

#[test]
fn scaled_jobs_and_other_kinds_are_noted_and_skipped() {
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata: {name: batch, namespace: shop}
spec:
  jobTargetRef: {template: {}}
  triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: q}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders-worker, namespace: shop}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: cpu-only, namespace: shop}
spec:
  scaleTargetRef: {name: web}
  triggers: [{type: cpu, metadata: {value: "60"}}]
---
apiVersion: keda.k8s.io/v1alpha1
kind: ScaledObject
metadata: {name: old, namespace: shop}
---
just a string
"#);
    assert_eq!(r.converted, 0);
    assert_eq!(r.output, "");
    assert_eq!(
        r.notes,
        [
            "deploy.yaml: document 0 (ScaledJob shop/batch): ScaledJob is not supported (the agent scales workloads through /scale and runs no Jobs); skipped",
            "deploy.yaml: document 1 (Deployment shop/orders-worker): Deployment is not a KEDA ScaledObject; skipped",
            "deploy.yaml: document 2 (ScaledObject shop/cpu-only): no trigger of type temporal (its trigger types: cpu); skipped",
            "deploy.yaml: document 3 (ScaledObject shop/old): apiVersion \"keda.k8s.io/v1alpha1\" is not keda.sh/v1alpha1; skipped",
            "deploy.yaml: document 4: not a Kubernetes object; skipped",
            "deploy.yaml: nothing converted (no valid keda.sh/v1alpha1 ScaledObject with a temporal trigger)",
        ]
    );
}

#[test]
fn a_file_with_nothing_to_convert_is_ok_with_zero_and_notes() {
    let r = run("# only a comment\n---\n");
    assert_eq!((r.converted, r.output.as_str()), (0, ""));
    assert_eq!(
        r.notes,
        ["deploy.yaml: no YAML documents; nothing converted"]
    );

    // A ScaledObject the agent would reject is reported, not emitted.
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders-worker}
  triggers:
    - type: temporal
      metadata: {endpoint: "temporal:7233", taskQueue: orders, queueTypes: "workflow,sticky"}
"#);
    assert_eq!((r.converted, r.output.as_str()), (0, ""));
    let p = "deploy.yaml: document 0 (ScaledObject shop/orders)";
    assert_eq!(
        r.errors,
        [
            format!(
                "{p}: the converted TemporalScaler is not valid for the agent: spec.triggers[0].metadata.queueTypes: got \"workflow,sticky\", expected a comma-separated list of workflow, activity, nexus"
            ),
            format!("{p}: not converted"),
        ]
    );
    has(
        &r,
        "deploy.yaml: nothing converted (no valid keda.sh/v1alpha1 ScaledObject with a temporal trigger)",
    );

    assert!(convert(Path::new("x.yaml"), "a: [unclosed").is_err());
}

#[test]
fn kubectl_list_items_are_converted_and_server_fields_noted() {
    let r = run(r#"
apiVersion: v1
kind: List
items:
  - apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata:
      name: a
      namespace: shop
      resourceVersion: "42"
    spec:
      scaleTargetRef: {name: a}
      triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: a}}]
  - apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata: {name: b, namespace: shop}
    spec:
      scaleTargetRef: {name: b}
      triggers: [{type: temporal, metadata: {endpoint: "t:7233", taskQueue: b}}]
"#);
    assert_eq!(r.converted, 2);
    assert_valid_for_the_agent(&r);
    has(
        &r,
        "deploy.yaml: document 0 items[0] (ScaledObject shop/a): metadata.resourceVersion: no equivalent; dropped",
    );
    assert!(
        r.output
            .contains("# from deploy.yaml: document 0 items[1] (ScaledObject shop/b)\n")
    );
}

#[test]
fn every_accepted_key_is_accepted_by_the_agent() {
    let unknown_key_errors = |key: &str| {
        // The key itself, then the required ones it is not (YAML refuses duplicate keys).
        let required = [("endpoint", "'t:7233'"), ("taskQueue", "q")]
            .iter()
            .filter(|(k, _)| *k != key)
            .map(|(k, v)| format!(", {k}: {v}"))
            .collect::<String>();
        let doc: ScalerDocument = serde_saphyr::from_str(&format!(
                "{{apiVersion: {API_VERSION}, kind: {KIND}, metadata: {{name: x}}, spec: {{scaleTargetRef: {{name: x}}, triggers: [{{type: temporal, metadata: {{{key}: 'v'{required}}}}}]}}}}"
            ))
            .unwrap();
        validate(&doc)
            .err()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.path.ends_with(&format!(".{key}")) && e.expected.starts_with("a known key")
            })
            .count()
    };
    for key in ACCEPTED_KEYS {
        assert_eq!(unknown_key_errors(key), 0, "the agent rejects {key}");
    }
    // enableTLS is read with KEDA's meaning too (convert decides it with the credentials).
    assert_eq!(
        unknown_key_errors("enableTLS"),
        0,
        "the agent rejects enableTLS"
    );
}
/// KEDA's own e2e ScaledObjects, as `tests/scalers/temporal/temporal_test.go` of kedacore/keda
/// main (8b4f083c) renders them: unversioned (`testActivation`/`testScaleOut`), build id 1.1.1
/// and the second Deployment's 1.1.2 (`testWorkerVersioning`), and the Worker Deployment
/// version (`testDeploymentVersion`). Each is applied alone (two share a name).
fn keda_e2e(name: &str, target: &str, activation: bool, selector: &str) -> String {
    let activation = if activation {
        "      activationTargetQueueSize: \"3\"\n"
    } else {
        ""
    };
    format!(
        r#"apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {name}
  namespace: temporal-test-ns
spec:
  scaleTargetRef:
    name: {target}
  pollingInterval: 5
  cooldownPeriod:  10
  minReplicaCount: 0
  maxReplicaCount: 1
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown:
          stabilizationWindowSeconds: 10
  triggers:
  - type: temporal
    metadata:
      namespace: default
      taskQueue: "omes-test"
      targetQueueSize: "2"
{activation}      endpoint: temporal-temporal-test.temporal-test-ns.svc.cluster.local:7233
{selector}"#
    )
}

#[test]
fn keda_e2e_scaled_objects_convert_to_the_same_version_selection() {
    use crate::spec::{DeploymentScope, Versioning};
    let build = |b: &str| Versioning::BuildIds {
        build_id: Some(b.into()),
        select_all_active: false,
        select_unversioned: false,
    };
    let cases = [
        (
            keda_e2e("temporal-test-so", "temporal-test", true, ""),
            Versioning::All,
        ),
        (
            keda_e2e(
                "temporal-test-so",
                "temporal-test",
                true,
                "      buildId: 1.1.1\n",
            ),
            build("1.1.1"),
        ),
        (
            keda_e2e(
                "temporal-worker-latest",
                "temporal-worker-latest",
                true,
                "      buildId: 1.1.2\n",
            ),
            build("1.1.2"),
        ),
        (
            keda_e2e(
                "temporal-test-so-deploy-ver",
                "temporal-test-deploy-ver",
                false,
                "      workerDeploymentName: omes-deployment\n      workerDeploymentBuildId: v2.0.0\n",
            ),
            // KEDA reads DescribeWorkerDeploymentVersion filtered to the task queue and types.
            Versioning::WorkerDeployment {
                name: "omes-deployment".into(),
                build_id: "v2.0.0".into(),
                scope: DeploymentScope::TaskQueue,
            },
        ),
    ];
    for (doc, want) in cases {
        let r = run(&doc);
        assert_eq!((r.converted, r.errors.len()), (1, 0), "{:#?}", r.errors);
        assert_valid_for_the_agent(&r);
        // Nothing of a trigger is dropped: the cooldown's change of meaning, and buildId's
        // deprecation, are all that is noted.
        assert!(
            r.notes.iter().all(|n| n.ends_with(
                ": spec.cooldownPeriod: meaning changes (10 s): KEDA waits it only before scaling to zero; the agent waits it after the last scale before every scale-down"
            ) || n.ends_with(
                ": spec.triggers[0].metadata.buildId: copied: KEDA's deprecated build-id selection (rules-based versioning), read the same way"
            )),
            "{:#?}",
            r.notes
        );
        let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
        assert_eq!(cfg.triggers[0].versioning, want, "{doc}");
        let activation = if doc.contains("activationTargetQueueSize") {
            3.0
        } else {
            0.0
        };
        assert_eq!(cfg.triggers[0].activation_target_queue_size, activation);
        assert_eq!(cfg.triggers[0].target_queue_size, 2.0);
    }
}

#[test]
fn keda_versioning_rules_are_kept_and_its_ignored_keys_dropped() {
    let so = |meta: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: w, namespace: ns}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: temporal\n    metadata:\n      endpoint: t:7233\n      taskQueue: omes-test\n{meta}"
        )
    };
    let p = "deploy.yaml: document 0 (ScaledObject ns/w)";
    let invalid = format!("{p}: the converted TemporalScaler is not valid for the agent");
    // What KEDA rejects (its Validate) is not converted (KEDA never ran it).
    for (meta, want) in [
        (
            "      workerDeploymentName: my-deploy\n",
            "spec.triggers[0].metadata.workerDeploymentBuildId: expected a build id with workerDeploymentName",
        ),
        (
            "      workerDeploymentBuildId: v1\n",
            "spec.triggers[0].metadata.workerDeploymentName: expected a deployment name with workerDeploymentBuildId",
        ),
        (
            "      workerDeploymentName: my-deploy\n      workerDeploymentBuildId: v1\n      selectUnversioned: \"true\"\n",
            "spec.triggers[0].metadata.selectUnversioned: got \"true\", expected either buildId/selectAllActive/selectUnversioned or workerDeploymentName/workerDeploymentBuildId, not both",
        ),
    ] {
        let r = run(&so(meta));
        assert_eq!((r.converted, r.output.as_str()), (0, ""), "{meta}");
        has_error(&r, &format!("{invalid}: {want}"));
        has_error(&r, &format!("{p}: not converted"));
    }
    // The unmerged design's keys: KEDA main ignores them, and so does the conversion.
    let r = run(&so(
        "      workerVersioningType: deployment\n      deploymentName: my-deploy\n",
    ));
    assert_eq!(r.converted, 1, "{:#?}", r.errors);
    for k in ["workerVersioningType", "deploymentName"] {
        has(
            &r,
            &format!(
                "{p}: spec.triggers[0].metadata.{k}: dropped: KEDA main has no such key and ignores it (workerVersioningType with deploymentName is a design that was never merged; KEDA selects a Worker Deployment version with workerDeploymentName and workerDeploymentBuildId)"
            ),
        );
    }
    let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
    assert_eq!(cfg.triggers[0].versioning, crate::spec::Versioning::All);
    // A key and its …FromEnv: both kept, read in KEDA's order (the key first).
    let r = run(&so(
        "      workerDeploymentName: omes-deployment\n      workerDeploymentNameFromEnv: DEPLOYMENT\n      workerDeploymentBuildId: v2.0.0\n",
    ));
    assert_eq!(r.converted, 1, "{:#?}", r.errors);
    let cfg = &parse_file(Path::new("out.yaml"), &r.output).unwrap()[0];
    assert!(cfg.triggers[0].from_env.is_none());
    assert!(matches!(
        &cfg.triggers[0].versioning,
        crate::spec::Versioning::WorkerDeployment { name, .. } if &**name == "omes-deployment"
    ));
}

#[test]
fn a_field_whose_loss_would_change_what_is_kept_refuses_the_document() {
    let so = |name: &str, trigger: &str, advanced: &str| {
        format!(
            "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {{name: {name}, namespace: shop}}\nspec:\n  scaleTargetRef: {{name: {name}}}\n{advanced}  triggers:\n  - type: temporal\n{trigger}    metadata:\n      endpoint: t:7233\n      taskQueue: orders\n"
        )
    };
    let meta = |lines: &str| {
        so("w", "", "").replace(
            "taskQueue: orders\n",
            &format!("taskQueue: orders\n{lines}"),
        )
    };
    let p = "deploy.yaml: document 0 (ScaledObject shop/w)";
    let cases = [
            (
                meta("      targetQueueSize: \"0\"\n"),
                format!("spec.triggers[0].metadata.targetQueueSize: {}", super::trigger::ZERO_TARGET),
            ),
            (
                so("w", "    metricType: Value\n", ""),
                "spec.triggers[0].metricType: \"Value\" is not supported: the agent always divides the backlog by targetQueueSize per replica (AverageValue), so this targetQueueSize would give other replica counts: remove metricType (with a per-replica targetQueueSize) to convert".to_string(),
            ),
            (
                so("w", "", "  advanced:\n    scalingModifiers:\n      formula: \"orders / 2\"\n      target: \"5\"\n"),
                "spec.advanced.scalingModifiers: KEDA scaled on this formula over the triggers' metrics; the agent scales on each trigger's own count (the highest wins), so the triggers kept would scale otherwise: remove scalingModifiers to convert".to_string(),
            ),
            (
                so("w", "", "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleUp:\n          selectPolicy: Min\n          policies:\n          - {type: Pods, value: 4}\n          - {type: Percent, value: 100, periodSeconds: 15}\n"),
                "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleUp.policies[0]: incomplete policy: type, value and periodSeconds are required (the HPA rejects it), and dropping it would change what the other policies allow".to_string(),
            ),
        ];
    for (doc, want) in &cases {
        let r = run(doc);
        assert_eq!((r.converted, r.output.as_str()), (0, ""), "{doc}");
        assert_eq!(
            r.errors,
            [format!("{p}: {want}"), format!("{p}: not converted")],
            "{doc}"
        );
        let shown = format!("{r:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("271828"),
            "{shown}"
        );
    }

    // The password from a TriggerAuthentication refuses its ScaledObject; another
    // ScaledObject of the file is still converted.
    let r = run(r#"
apiVersion: keda.sh/v1alpha1
kind: TriggerAuthentication
metadata: {name: mtls, namespace: shop}
spec:
  secretTargetRef:
    - {parameter: cert, name: temporal-tls, key: tls.crt}
    - {parameter: key, name: temporal-tls, key: tls.key}
    - {parameter: keyPassword, name: temporal-tls, key: password}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: orders, namespace: shop}
spec:
  scaleTargetRef: {name: orders}
  triggers:
  - type: temporal
    metadata: {endpoint: "t:7233", taskQueue: orders}
    authenticationRef: {name: mtls}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: payments, namespace: shop}
spec:
  scaleTargetRef: {name: payments}
  triggers:
  - type: temporal
    metadata: {endpoint: "t:7233", taskQueue: payments}
"#);
    assert_eq!(r.converted, 1);
    assert_valid_for_the_agent(&r);
    assert!(r.output.contains("name: payments") && !r.output.contains("name: orders"));
    let p = "deploy.yaml: document 1 (ScaledObject shop/orders)";
    assert_eq!(
        r.errors,
        [
            format!(
                "{p}: spec.triggers[0].authenticationRef: TriggerAuthentication shop/mtls: spec.secretTargetRef[2]: parameter keyPassword (key \"password\" of Secret shop/temporal-tls): {ENCRYPTED_KEY_HINT}"
            ),
            format!("{p}: not converted"),
        ]
    );
}
