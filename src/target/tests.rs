//! Recorded-call tests of the `/scale` target against a mock API server: every request asserted
//! (method, path with query, content type and JSON body), nothing else may be sent.

use super::*;
use crate::test_support::*;
use http::{Method, StatusCode};
use serde_json::{Value, json};

pub(super) const NS: &str = "jobs";
pub(super) const APPS_V1: &str = "/apis/apps/v1";
const CORE_V1: &str = "/api/v1";
const WORKER_SCALE: &str = "/apis/apps/v1/namespaces/jobs/deployments/worker/scale";
const MERGE_PATCH: &str = "application/merge-patch+json";

fn target_ref(api_version: &str, kind: &str, name: &str) -> TargetRef {
    TargetRef {
        api_version: api_version.to_string().into(),
        kind: kind.to_string().into(),
        name: name.into(),
    }
}

fn deployment(name: &str) -> TargetRef {
    target_ref("apps/v1", "Deployment", name)
}

const WRITE_VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `GET /apis/apps/v1` as a 1.33 API server answers it.
pub(super) fn apps_v1() -> Value {
    let sub = |name: &str, kind: &str| {
        json!({ "name": name, "singularName": "", "namespaced": true, "kind": kind,
                "verbs": ["get", "patch", "update"] })
    };
    let scale = |name: &str| {
        json!({ "name": name, "singularName": "", "namespaced": true, "group": "autoscaling",
                "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"] })
    };
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "apps/v1",
        "resources": [
            { "name": "controllerrevisions", "singularName": "controllerrevision", "namespaced": true,
              "kind": "ControllerRevision", "verbs": WRITE_VERBS, "storageVersionHash": "85nkx63pcBU=" },
            { "name": "daemonsets", "singularName": "daemonset", "namespaced": true, "kind": "DaemonSet",
              "verbs": WRITE_VERBS, "shortNames": ["ds"], "categories": ["all"],
              "storageVersionHash": "dd7pWHUlMKQ=" },
            sub("daemonsets/status", "DaemonSet"),
            { "name": "deployments", "singularName": "deployment", "namespaced": true, "kind": "Deployment",
              "verbs": WRITE_VERBS, "shortNames": ["deploy"], "categories": ["all"],
              "storageVersionHash": "8aSe+NMegvE=" },
            scale("deployments/scale"),
            sub("deployments/status", "Deployment"),
            { "name": "replicasets", "singularName": "replicaset", "namespaced": true, "kind": "ReplicaSet",
              "verbs": WRITE_VERBS, "shortNames": ["rs"], "categories": ["all"],
              "storageVersionHash": "P1RzHs8/mWQ=" },
            scale("replicasets/scale"),
            sub("replicasets/status", "ReplicaSet"),
            { "name": "statefulsets", "singularName": "statefulset", "namespaced": true, "kind": "StatefulSet",
              "verbs": WRITE_VERBS, "shortNames": ["sts"], "categories": ["all"],
              "storageVersionHash": "H+vl74LkKdo=" },
            scale("statefulsets/scale"),
            sub("statefulsets/status", "StatefulSet"),
        ],
    })
}

/// `GET /api/v1`, trimmed to a few resources around replicationcontrollers.
fn core_v1() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [
            { "name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
              "verbs": WRITE_VERBS, "shortNames": ["cm"], "storageVersionHash": "qFsyl6wFWjQ=" },
            { "name": "pods", "singularName": "pod", "namespaced": true, "kind": "Pod",
              "verbs": WRITE_VERBS, "shortNames": ["po"], "categories": ["all"],
              "storageVersionHash": "xPOwRZ+Yhw8=" },
            { "name": "pods/status", "singularName": "", "namespaced": true, "kind": "Pod",
              "verbs": ["get", "patch", "update"] },
            { "name": "replicationcontrollers", "singularName": "replicationcontroller", "namespaced": true,
              "kind": "ReplicationController", "verbs": WRITE_VERBS, "shortNames": ["rc"],
              "categories": ["all"], "storageVersionHash": "Jond2If31h0=" },
            { "name": "replicationcontrollers/scale", "singularName": "", "namespaced": true,
              "group": "autoscaling", "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"] },
            { "name": "replicationcontrollers/status", "singularName": "", "namespaced": true,
              "kind": "ReplicationController", "verbs": ["get", "patch", "update"] },
        ],
    })
}

/// An `autoscaling/v1` Scale; the API server omits `spec.replicas` when it is 0.
fn scale(name: &str, replicas: i32) -> Value {
    let spec = if replicas == 0 {
        json!({})
    } else {
        json!({ "replicas": replicas })
    };
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": name,
            "namespace": NS,
            "uid": "0b6f3c52-1f7e-4d5a-8a43-7f3e2c9d1e20",
            "resourceVersion": "88231",
            "creationTimestamp": "2025-05-20T08:00:00Z",
        },
        "spec": spec,
        "status": { "replicas": replicas, "selector": format!("app={name}") },
    })
}

fn not_found(group: &str, plural: &str, name: &str) -> Value {
    let qualified = if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": format!("{qualified} \"{name}\" not found"),
        "reason": "NotFound",
        "details": { "name": name, "group": group, "kind": plural },
        "code": 404,
    })
}

#[tokio::test]
async fn discovers_then_reads_replicas_through_scale() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let replicas = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            expect(&mut h, Method::GET, WORKER_SCALE)
                .await
                .reply(StatusCode::OK, scale("worker", 3));
            h
        },
        async move {
            assert!(!targets.is_dry_run());
            targets
                .target(NS, &deployment("worker"), 0)
                .replicas()
                .await
        },
    )
    .await;
    assert_eq!(replicas.unwrap(), 3);
}

#[tokio::test]
async fn scale_merge_patches_and_discovery_is_cached() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let out = scenario(
        handle,
        |mut h| async move {
            // First use of the kind: discovery, then the write.
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            let call = expect(&mut h, Method::PATCH, &format!("{WORKER_SCALE}?")).await;
            assert_eq!(call.json(MERGE_PATCH), json!({ "spec": { "replicas": 5 } }));
            call.reply(StatusCode::OK, scale("worker", 5));
            // Same target again: no discovery.
            expect(&mut h, Method::GET, WORKER_SCALE)
                .await
                .reply(StatusCode::OK, scale("worker", 5));
            // Another target of the same kind, from a clone of the same Targets: no discovery.
            let call = expect(
                &mut h,
                Method::PATCH,
                "/apis/apps/v1/namespaces/batch/deployments/other/scale?",
            )
            .await;
            assert_eq!(call.json(MERGE_PATCH), json!({ "spec": { "replicas": 0 } }));
            call.reply(StatusCode::OK, scale("other", 0));
            h
        },
        async move {
            let worker = targets.target(NS, &deployment("worker"), 0);
            let wrote = worker.scale(5).await.unwrap();
            let now = worker.replicas().await.unwrap();
            let other = targets
                .clone()
                .target("batch", &deployment("other"), 0)
                .scale(0)
                .await
                .unwrap();
            (wrote, now, other)
        },
    )
    .await;
    assert_eq!(out, (true, 5, true));
}

#[tokio::test]
async fn dry_run_reads_but_never_patches() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, true);
    let out = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            expect(&mut h, Method::GET, WORKER_SCALE)
                .await
                .reply(StatusCode::OK, scale("worker", 2));
            h
        },
        async move {
            assert!(targets.is_dry_run());
            let worker = targets.target(NS, &deployment("worker"), 0);
            let before = worker.scale(7).await.unwrap();
            let replicas = worker.replicas().await.unwrap();
            let after = worker.scale(9).await.unwrap();
            (before, replicas, after)
        },
    )
    .await;
    assert_eq!(out, (false, 2, false));
}

#[tokio::test]
async fn kind_without_scale_subresource_is_refused() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let (read, write) = scenario(
        handle,
        |mut h| async move {
            // Not cached when refused: each use asks again, and nothing is written.
            for _ in 0..2 {
                expect(&mut h, Method::GET, APPS_V1)
                    .await
                    .reply(StatusCode::OK, apps_v1());
            }
            h
        },
        async move {
            let t = targets.target(NS, &target_ref("apps/v1", "DaemonSet", "node-agent"), 0);
            (t.replicas().await, t.scale(3).await)
        },
    )
    .await;
    for err in [read.unwrap_err(), write.unwrap_err()] {
        match &err {
            TargetError::NoScale { target, kind } => {
                assert_eq!(target, "jobs/DaemonSet/node-agent");
                assert_eq!(kind, "DaemonSet");
            }
            other => panic!("expected NoScale, got {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "jobs/DaemonSet/node-agent: DaemonSet has no /scale subresource"
        );
    }
}

#[tokio::test]
async fn core_group_discovers_through_api_v1() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let rc_scale = "/api/v1/namespaces/jobs/replicationcontrollers/legacy/scale";
    let out = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, CORE_V1)
                .await
                .reply(StatusCode::OK, core_v1());
            // Scaled to zero: spec.replicas is omitted by the API server.
            expect(&mut h, Method::GET, rc_scale)
                .await
                .reply(StatusCode::OK, scale("legacy", 0));
            let call = expect(&mut h, Method::PATCH, &format!("{rc_scale}?")).await;
            assert_eq!(call.json(MERGE_PATCH), json!({ "spec": { "replicas": 2 } }));
            call.reply(StatusCode::OK, scale("legacy", 2));
            h
        },
        async move {
            let t = targets.target(NS, &target_ref("v1", "ReplicationController", "legacy"), 0);
            (t.replicas().await.unwrap(), t.scale(2).await.unwrap())
        },
    )
    .await;
    assert_eq!(out, (0, true));
}

#[tokio::test]
async fn missing_object_is_not_found() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let missing = "/apis/apps/v1/namespaces/jobs/deployments/missing/scale";
    let (read, write) = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            expect(&mut h, Method::GET, missing).await.reply(
                StatusCode::NOT_FOUND,
                not_found("apps", "deployments", "missing"),
            );
            let call = expect(&mut h, Method::PATCH, &format!("{missing}?")).await;
            assert_eq!(call.json(MERGE_PATCH), json!({ "spec": { "replicas": 4 } }));
            call.reply(
                StatusCode::NOT_FOUND,
                not_found("apps", "deployments", "missing"),
            );
            h
        },
        async move {
            let t = targets.target(NS, &deployment("missing"), 0);
            (t.replicas().await, t.scale(4).await)
        },
    )
    .await;
    for err in [read.unwrap_err(), write.unwrap_err()] {
        match &err {
            TargetError::NotFound { target } => assert_eq!(target, "jobs/Deployment/missing"),
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn other_api_errors_keep_the_message() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let err = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            let call = expect(&mut h, Method::PATCH, &format!("{WORKER_SCALE}?")).await;
            assert_eq!(call.json(MERGE_PATCH), json!({ "spec": { "replicas": 5 } }));
            call.reply(
                StatusCode::FORBIDDEN,
                json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                    "message": "deployments.apps \"worker\" is forbidden: User \"system:serviceaccount:jobs:autoscaler\" cannot patch resource \"deployments/scale\" in API group \"apps\" in the namespace \"jobs\"",
                    "reason": "Forbidden",
                    "details": { "name": "worker", "group": "apps", "kind": "deployments" },
                    "code": 403,
                }),
            );
            h
        },
        async move {
            targets
                .target(NS, &deployment("worker"), 0)
                .scale(5)
                .await
        },
    )
    .await
    .unwrap_err();
    match &err {
        TargetError::Api { target, message } => {
            assert_eq!(target, "jobs/Deployment/worker");
            assert!(message.contains("cannot patch resource"), "{message}");
        }
        other => panic!("expected Api, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_kind_or_group_is_a_discovery_error() {
    let (client, handle) = mock_client();
    let targets = Targets::kube(client, false);
    let (kind, group) = scenario(
        handle,
        |mut h| async move {
            expect(&mut h, Method::GET, APPS_V1)
                .await
                .reply(StatusCode::OK, apps_v1());
            // An API group that is not served: the API server answers in plain text.
            expect(&mut h, Method::GET, "/apis/argoproj.io/v1alpha1")
                .await
                .reply_text(StatusCode::NOT_FOUND, "404 page not found\n");
            h
        },
        async move {
            let kind = targets
                .target(NS, &target_ref("apps/v1", "Rollout", "web"), 0)
                .replicas()
                .await;
            let group = targets
                .target(NS, &target_ref("argoproj.io/v1alpha1", "Rollout", "web"), 0)
                .scale(3)
                .await;
            (kind, group)
        },
    )
    .await;
    for (err, api_version) in [
        (kind.unwrap_err(), "apps/v1"),
        (group.unwrap_err(), "argoproj.io/v1alpha1"),
    ] {
        match &err {
            TargetError::Discovery {
                target,
                kind,
                api_version: v,
                ..
            } => {
                assert_eq!(target, "jobs/Rollout/web");
                assert_eq!(kind, "Rollout");
                assert_eq!(v, api_version);
            }
            other => panic!("expected Discovery, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn simulated_target_follows_its_own_writes() {
    let t = Targets::Simulated.target(NS, &deployment("worker"), 2);
    assert!(Targets::Simulated.is_dry_run());
    assert_eq!(t.replicas().await.unwrap(), 2);
    assert!(t.scale(6).await.unwrap());
    assert_eq!(t.replicas().await.unwrap(), 6);
}
