//! The target's container environment: KEDA's resolution order (pure), and the calls that
//! read it (recorded: method and path; nothing else may be sent).

use super::*;
use crate::spec::TargetRef;
use crate::target::Targets;
use crate::target::tests::{APPS_V1, NS, apps_v1};
use crate::test_support::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

fn container(v: Value) -> Container {
    serde_json::from_value(v).unwrap()
}

type Given<'a> = Result<&'a [(&'a str, &'a str)], &'a str>;

fn sources(list: &[(SourceRef, Given)]) -> Sources {
    list.iter()
        .map(|(r, d)| {
            let d = d
                .map(|kv| {
                    kv.iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect()
                })
                .map_err(str::to_string);
            (r.clone(), d)
        })
        .collect()
}

#[test]
fn env_overrides_env_from_and_later_sources_win() {
    let c = container(json!({
        "name": "worker",
        "envFrom": [
            { "configMapRef": { "name": "base" } },
            { "configMapRef": { "name": "site" }, "prefix": "SITE_" },
            { "secretRef": { "name": "creds" } },
        ],
        "env": [
            { "name": "TASK_QUEUE", "value": "orders-$(REGION)" },
            { "name": "REGION", "value": "eu" },
            { "name": "QUEUE_AFTER", "value": "orders-$(REGION)" },
            { "name": "LITERAL", "value": "$$(REGION) $(NOPE) $x" },
            { "name": "NS", "valueFrom": { "configMapKeyRef": { "name": "base", "key": "ns" } } },
            { "name": "POD", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } },
            { "name": "EMPTY" },
        ],
    }));
    assert_eq!(
        sources_of(&c),
        vec![
            SourceRef::ConfigMap("base".into()),
            SourceRef::ConfigMap("site".into()),
            SourceRef::Secret("creds".into()),
        ]
    );
    let s = sources(&[
        (
            SourceRef::ConfigMap("base".into()),
            Ok(&[("REGION", "us"), ("ns", "prod"), ("API_KEY", "from-cm")]),
        ),
        (
            SourceRef::ConfigMap("site".into()),
            Ok(&[("ENDPOINT", "t:7233")]),
        ),
        (
            SourceRef::Secret("creds".into()),
            Ok(&[("API_KEY", "from-secret")]),
        ),
    ]);
    let env = resolve(&c, NS, &s, "container".into());
    let get = |k: &str| env.vars.get(k).map(String::as_str);
    // REGION from the ConfigMap when TASK_QUEUE is defined; env's own REGION after it.
    assert_eq!(get("TASK_QUEUE"), Some("orders-us"));
    assert_eq!(get("REGION"), Some("eu"));
    assert_eq!(get("QUEUE_AFTER"), Some("orders-eu"));
    assert_eq!(get("LITERAL"), Some("$(REGION) $(NOPE) $x"));
    assert_eq!(get("NS"), Some("prod"));
    assert_eq!(get("SITE_ENDPOINT"), Some("t:7233"));
    assert_eq!(get("ENDPOINT"), None);
    assert_eq!(get("API_KEY"), Some("from-secret"), "a later source wins");
    assert_eq!(
        get("POD"),
        None,
        "fieldRef has no value before a pod exists"
    );
    assert_eq!(get("EMPTY"), Some(""));
    assert!(env.unreadable.is_empty());
}

#[test]
fn an_unreadable_source_is_named_only_where_it_matters_and_optional_ones_never() {
    let c = container(json!({
        "name": "worker",
        "envFrom": [
            { "secretRef": { "name": "creds" } },
            { "configMapRef": { "name": "maybe", "optional": true } },
        ],
        "env": [
            { "name": "TASK_QUEUE", "value": "orders" },
            { "name": "KEY", "valueFrom": { "secretKeyRef": { "name": "other", "key": "k" } } },
            { "name": "OPT", "valueFrom": { "configMapKeyRef": { "name": "cm", "key": "absent", "optional": true } } },
        ],
    }));
    let s = sources(&[
        (SourceRef::Secret("creds".into()), Err("forbidden")),
        (SourceRef::ConfigMap("maybe".into()), Err("not found")),
        (SourceRef::Secret("other".into()), Ok(&[])),
        (SourceRef::ConfigMap("cm".into()), Ok(&[])),
    ]);
    let env = resolve(
        &c,
        NS,
        &s,
        "container \"worker\" of jobs/Deployment/w".into(),
    );
    assert_eq!(
        env.vars.get("TASK_QUEUE").map(String::as_str),
        Some("orders")
    );
    assert!(!env.vars.contains_key("KEY") && !env.vars.contains_key("OPT"));
    assert_eq!(
        env.unreadable,
        vec![
            "secret jobs/creds: forbidden".to_string(),
            "secret jobs/other: has no key \"k\" (for KEY)".to_string(),
        ]
    );
    assert_eq!(
        env.missing("NAMESPACE"),
        "NAMESPACE is not set in container \"worker\" of jobs/Deployment/w (unreadable, it may \
         be there: secret jobs/creds: forbidden; secret jobs/other: has no key \"k\" (for KEY))"
    );
}

#[test]
fn the_named_container_or_the_first() {
    let spec = json!({ "containers": [ { "name": "sidecar" }, { "name": "worker" } ] });
    assert_eq!(pick_container(&spec, None).unwrap().name, "sidecar");
    assert_eq!(
        pick_container(&spec, Some("worker")).unwrap().name,
        "worker"
    );
    assert_eq!(
        pick_container(&spec, Some("app")).unwrap_err(),
        "it has no container named \"app\" (envSourceContainerName)"
    );
    assert_eq!(
        pick_container(&json!({}), None).unwrap_err(),
        "its pod template has no containers"
    );
}

#[test]
fn expansion_follows_kubernetes() {
    let vars: HashMap<String, String> = [("A".to_string(), "1".to_string())].into();
    assert_eq!(expand("$(A)-$(A)", &vars), "1-1");
    assert_eq!(expand("$$(A)", &vars), "$(A)");
    assert_eq!(expand("$(B)", &vars), "$(B)");
    assert_eq!(expand("$(A", &vars), "$(A");
    assert_eq!(expand("a$", &vars), "a$");
}

fn deployment_object(env: Value, env_from: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "worker", "namespace": NS },
        "spec": { "template": { "spec": { "containers": [
            { "name": "sidecar", "image": "proxy" },
            { "name": "worker", "image": "w", "env": env, "envFrom": env_from },
        ] } } },
    })
}

fn forbidden(resource: &str, name: &str) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": format!("{resource} \"{name}\" is forbidden: User \"system:serviceaccount:ops:agent\" cannot get resource \"{resource}\" in API group \"\" in the namespace \"{NS}\""),
        "reason": "Forbidden", "details": { "name": name, "kind": resource }, "code": 403,
    })
}

#[tokio::test]
async fn reads_the_target_then_each_source_of_the_named_container() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let r = TargetRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "worker".into(),
    };
    let env = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            expect(&mut h, Method::GET, "/apis/apps/v1/namespaces/jobs/deployments/worker")
                .await
                .reply(
                    StatusCode::OK,
                    deployment_object(
                        json!([
                            { "name": "TASK_QUEUE", "valueFrom": { "configMapKeyRef": { "name": "queues", "key": "orders" } } },
                        ]),
                        json!([ { "secretRef": { "name": "creds" } } ]),
                    ),
                );
            expect(&mut h, Method::GET, "/api/v1/namespaces/jobs/configmaps/queues")
                .await
                .reply(
                    StatusCode::OK,
                    json!({ "apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": { "name": "queues", "namespace": NS },
                            "data": { "orders": "orders-v2" } }),
                );
            expect(&mut h, Method::GET, "/api/v1/namespaces/jobs/secrets/creds")
                .await
                .reply(StatusCode::FORBIDDEN, forbidden("secrets", "creds"));
            h
        },
        async move {
            targets
                .target(NS, &r, 0)
                .container_env(Some("worker"))
                .await
        },
    )
    .await;
    let env = env.expect("a cluster target").expect("read");
    assert_eq!(env.source, "container \"worker\" of jobs/Deployment/worker");
    assert_eq!(
        env.vars.get("TASK_QUEUE").map(String::as_str),
        Some("orders-v2")
    );
    assert_eq!(env.unreadable.len(), 1);
    assert!(
        env.unreadable[0].starts_with("secret jobs/creds: ")
            && env.unreadable[0].contains("forbidden"),
        "{:?}",
        env.unreadable
    );
}

#[tokio::test]
async fn a_simulated_target_has_no_environment() {
    let r = TargetRef {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "worker".into(),
    };
    assert!(
        Targets::Simulated
            .target(NS, &r, 0)
            .container_env(None)
            .await
            .is_none()
    );
}
