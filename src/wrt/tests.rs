//! The controller's rendering rules, with cases from its own tests
//! (`internal/k8s/workerresourcetemplates_test.go`, `deployments_test.go`) and hashes computed
//! independently (Python's hashlib).

use super::*;

fn wrt(template: Value) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": "my-scaler", "namespace": "prod", "uid": "u-1"},
        "spec": {"workerDeploymentRef": {"name": "my-worker"}, "template": template}
    })
}

fn version() -> Version {
    Version {
        build_id: "abc123".into(),
        temporal_namespace: "my-temporal-ns".into(),
    }
}

fn scaler_template() -> Value {
    json!({
        "apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScaler",
        "metadata": {"labels": {"team": "a"}},
        "spec": {
            "scaleTargetRef": {},
            "triggers": [
                {"type": "temporal", "metadata": {
                    "endpoint": "t:7233", "taskQueue": "q", "namespace": "",
                    "workerDeploymentName": "", "workerDeploymentBuildId": ""}},
                {"type": "prometheus", "metadata": {"namespace": "", "workerDeploymentName": ""}}
            ]
        }
    })
}

#[test]
fn names_follow_the_controllers_functions() {
    let n = resource_name("my-worker", "my-hpa", "image-abc123");
    assert_eq!(n, "my-worker-my-hpa-image-abc123-2117d6c8");
    let long = resource_name(
        "a-very-long-worker-deployment-name",
        "and-a-long-template-name",
        "v1.2.3-abcd",
    );
    assert!(long.len() <= 47, "{long}");
    assert!(!long.contains("--"), "{long}");
    assert_eq!(
        versioned_deployment_name("my-worker", "abc123"),
        "my-worker-abc123"
    );
    assert_eq!(
        versioned_deployment_name(
            "a-very-long-worker-deployment-name-for-tests",
            "v1.2.3-abcd"
        ),
        "a-very-lon-v1-2-3-abc-677a0d7780"
    );
    assert_eq!(clean_for_dns("My_Worker..v1"), "my-worker-v1");
    assert_eq!(
        worker_deployment_name("prod", "my-worker"),
        "prod/my-worker"
    );
}

#[test]
fn empty_values_are_filled_for_the_version_and_nothing_else_changes() {
    let r = render(&wrt(scaler_template()), &version()).unwrap();
    let v = &r.value;
    assert_eq!(r.deployment, "my-worker-abc123");
    assert_eq!(r.worker_deployment_name, "prod/my-worker");
    assert_eq!(
        v["spec"]["scaleTargetRef"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "my-worker-abc123"})
    );
    let m = &v["spec"]["triggers"][0]["metadata"];
    assert_eq!(m["workerDeploymentName"], "prod/my-worker");
    assert_eq!(m["workerDeploymentBuildId"], "abc123");
    assert_eq!(m["namespace"], "my-temporal-ns");
    assert_eq!(m["taskQueue"], "q");
    // Only `type: temporal` triggers.
    assert_eq!(
        v["spec"]["triggers"][1]["metadata"],
        json!({"namespace": "", "workerDeploymentName": ""})
    );
    let meta = &v["metadata"];
    assert_eq!(
        meta["name"],
        resource_name("my-worker", "my-scaler", "abc123")
    );
    assert_eq!(meta["namespace"], "prod");
    assert_eq!(
        meta["labels"],
        json!({"team": "a", "temporal.io/build-id": "abc123", "temporal.io/deployment-name": "my-worker"})
    );
    assert_eq!(
        meta["ownerReferences"],
        json!([{"apiVersion": API_VERSION, "kind": KIND, "name": "my-scaler", "uid": "u-1",
                "blockOwnerDeletion": true, "controller": true}])
    );
}

#[test]
fn absent_keys_stay_absent_and_nested_scale_target_refs_are_filled() {
    let t = json!({
        "apiVersion": "x/v1", "kind": "X",
        "spec": {"triggers": [{"type": "temporal", "metadata": {"taskQueue": "q"}}],
                 "list": [{"scaleTargetRef": {}}], "nested": {"scaleTargetRef": {}}}
    });
    let r = render(&wrt(t), &version()).unwrap();
    assert_eq!(
        r.value["spec"]["triggers"][0]["metadata"],
        json!({"taskQueue": "q"})
    );
    assert_eq!(
        r.value["spec"]["list"][0]["scaleTargetRef"]["name"],
        "my-worker-abc123"
    );
    assert_eq!(
        r.value["spec"]["nested"]["scaleTargetRef"]["kind"],
        "Deployment"
    );
}

#[test]
fn what_the_webhook_refuses_is_refused_with_its_path() {
    let mut t = scaler_template();
    t["spec"]["scaleTargetRef"] = json!({"name": "w"});
    t["spec"]["triggers"][0]["metadata"]["namespace"] = json!("prod");
    t["metadata"]["name"] = json!("fixed");
    let errors = render(&wrt(t), &version()).unwrap_err();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.template.spec.scaleTargetRef:"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.template.spec.triggers[0].metadata.namespace:"))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.template.metadata.name:"))
    );

    let mut no_ref = wrt(scaler_template());
    no_ref["spec"]
        .as_object_mut()
        .unwrap()
        .remove("workerDeploymentRef");
    let errors = render(&no_ref, &version()).unwrap_err();
    assert!(
        errors[0].starts_with("spec.workerDeploymentRef.name:"),
        "{errors:?}"
    );
}
