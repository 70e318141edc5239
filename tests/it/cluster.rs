//! The same flows against a real cluster (`KUBECONFIG`), with a real Temporal dev server:
//! `KUBECONFIG=… ./scripts/test -- --ignored`. The worker image defaults to the upstream pause
//! image; set TEST_WORKER_IMAGE for a registry-less cluster, TEST_NAMESPACE for the namespace.

use crate::support;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, PostParams};
use std::time::{Duration, Instant};
use support::{DevServer, scaler_yaml, within};
use temporal_autoscaler::agent::{Context, start_dir_source};
use temporal_autoscaler::guard::{Guard, LeaderState, LeaseRunner, LeaseSettings};
use temporal_autoscaler::source::{ScalerKey, SourceKind};
use temporal_autoscaler::target::Targets;

async fn cluster() -> kube::Client {
    assert!(
        std::env::var("KUBECONFIG").is_ok(),
        "these tests need KUBECONFIG pointing at a real cluster"
    );
    support::real_cluster().await
}

fn namespace() -> String {
    std::env::var("TEST_NAMESPACE").unwrap_or_else(|_| "default".into())
}

fn deployment(name: &str, replicas: i32) -> Deployment {
    let image =
        std::env::var("TEST_WORKER_IMAGE").unwrap_or_else(|_| "registry.k8s.io/pause:3.10".into());
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "w", "image": image}]}}
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn scales_a_real_deployment_through_scale_under_a_real_lease() {
    let client = cluster().await;
    let ns = namespace();
    let name = format!("ta-e2e-{:x}", fastrand::u32(..));
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &deployment(&format!("{name}-worker"), 1),
        )
        .await
        .unwrap();

    let server = DevServer::start().await;
    server.start_workflows("q-cluster", 12).await;

    let lease = LeaseSettings {
        name: name.clone(),
        namespace: ns.clone(),
        identity: "e2e-agent".into(),
        duration: Duration::from_secs(15),
    };
    let (tx, rx) = tokio::sync::watch::channel(LeaderState {
        leader: false,
        since: None,
        valid_until: None,
    });
    let ctx = Context::new(
        Targets::kube(client.clone(), false),
        Guard::new(rx, lease.margin()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let lease_task =
        tokio::spawn(LeaseRunner::new(client.clone(), lease).run(tx, ctx.metrics.clone(), stop_rx));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.yaml"),
        scaler_yaml(&name, &server.endpoint(), "q-cluster", 0, "").replace(
            "namespace: default\nspec",
            &format!("namespace: {ns}\nspec"),
        ),
    )
    .unwrap();
    let _source = start_dir_source(ctx.clone(), dir.path().to_path_buf())
        .await
        .unwrap();
    let key = ScalerKey {
        source: SourceKind::Dir,
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
    };
    within(
        60,
        "desired 3 as leader",
        ctx.state
            .wait_for(&key, |v| v.leader && v.current_replicas == Some(3)),
    )
    .await;

    let d = deploys.get(&format!("{name}-worker")).await.unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    let l: Lease = Api::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(
        l.spec.unwrap().holder_identity.as_deref(),
        Some("e2e-agent")
    );

    // Shutdown releases the lease.
    stop_tx.send(true).unwrap();
    lease_task.await.unwrap();
    let l: Lease = Api::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .unwrap();
    assert_eq!(l.spec.unwrap().holder_identity, None);

    let _ = deploys
        .delete(&format!("{name}-worker"), &DeleteParams::default())
        .await;
    let _ = Api::<Lease>::namespaced(client, &ns)
        .delete(&name, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn only_one_of_two_replicas_holds_the_lease() {
    let client = cluster().await;
    let ns = namespace();
    let name = format!("ta-lease-{:x}", fastrand::u32(..));
    let settings = |id: &str| LeaseSettings {
        name: name.clone(),
        namespace: ns.clone(),
        identity: id.into(),
        duration: Duration::from_secs(4),
    };
    let mut a = LeaseRunner::new(client.clone(), settings("a"));
    let mut b = LeaseRunner::new(client.clone(), settings("b"));
    let now = Instant::now();
    assert!(a.try_acquire_or_renew(now).await.unwrap());
    assert!(!b.try_acquire_or_renew(now).await.unwrap());
    assert!(
        a.try_acquire_or_renew(Instant::now()).await.unwrap(),
        "the holder renews"
    );
    // `a` stops renewing: `b` takes over once it has seen the record unchanged for the duration.
    assert!(!b.try_acquire_or_renew(Instant::now()).await.unwrap());
    assert!(
        b.try_acquire_or_renew(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap()
    );
    let l: Lease = Api::namespaced(client.clone(), &ns)
        .get(&name)
        .await
        .unwrap();
    let spec = l.spec.unwrap();
    assert_eq!(
        (spec.holder_identity.as_deref(), spec.lease_transitions),
        (Some("b"), Some(1))
    );
    let _ = Api::<Lease>::namespaced(client, &ns)
        .delete(&name, &DeleteParams::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn a_custom_resource_scales_a_deployment_and_gets_status() {
    use temporal_autoscaler::report::status::StatusWriter;
    use temporal_autoscaler::spec::TemporalScaler;

    let client = cluster().await;
    let ns = namespace();
    support::apply_crd(&client).await;

    let name = format!("ta-cr-{:x}", fastrand::u32(..));
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &deployment(&format!("{name}-worker"), 1),
        )
        .await
        .unwrap();
    let server = DevServer::start().await;
    server.start_workflows("q-cr-cluster", 12).await;
    let yaml = scaler_yaml(&name, &server.endpoint(), "q-cr-cluster", 0, "").replace(
        "namespace: default\nspec",
        &format!("namespace: {ns}\nspec"),
    );
    let cr: TemporalScaler = serde_saphyr::from_str(&yaml).unwrap();
    let crs: Api<TemporalScaler> = Api::namespaced(client.clone(), &ns);
    crs.create(&PostParams::default(), &cr).await.unwrap();

    let guard = Guard::alone();
    let sink = StatusWriter::spawn(client.clone(), guard.clone(), "e2e-agent".into());
    let ctx = Context::with_status(Targets::kube(client.clone(), false), guard, Some(sink));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(temporal_autoscaler::source::crd::run(
        client.clone(),
        Some(vec![ns.clone()]),
        tx,
    ));
    let _sources = temporal_autoscaler::agent::start_sources(ctx.clone(), None, Some(rx))
        .await
        .unwrap();

    within(60, "status written", async {
        loop {
            let obj = crs.get(&name).await.unwrap();
            if let Some(st) = obj.status
                && st.current_replicas == Some(3)
                && st
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            {
                assert_eq!(st.observed_generation, obj.metadata.generation);
                assert_eq!(st.triggers[0].backlog, Some(12));
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert_eq!(
        deploys
            .get(&format!("{name}-worker"))
            .await
            .unwrap()
            .spec
            .unwrap()
            .replicas,
        Some(3)
    );

    let _ = crs.delete(&name, &DeleteParams::default()).await;
    let _ = deploys
        .delete(&format!("{name}-worker"), &DeleteParams::default())
        .await;
}

#[tokio::test]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn a_secret_target_ref_is_read_from_a_real_secret_and_a_missing_one_is_not_found() {
    use k8s_openapi::api::core::v1::Secret;
    use temporal_autoscaler::temporal::{ErrorKind, secrets::SecretReader};
    let client = cluster().await;
    let ns = namespace();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let name = format!("ta-secret-{}", fastrand::u32(..));
    let mut s = Secret::default();
    s.metadata.name = Some(name.clone());
    s.string_data = Some([("api-key".to_string(), "k-123\n".to_string())].into());
    secrets.create(&PostParams::default(), &s).await.unwrap();
    let reader = SecretReader::new(client);
    let got = reader.get(&ns, &name, "api-key").await;
    let missing = reader.get(&ns, &format!("{name}-gone"), "api-key").await;
    let _ = secrets.delete(&name, &DeleteParams::default()).await;
    assert_eq!(got.unwrap(), "k-123\n");
    assert_eq!(missing.unwrap_err().kind, ErrorKind::NotFound);
}

/// Deletes a Deployment when dropped, even when an assertion failed: on a client and runtime
/// of its own (`Drop` cannot await), as tests/it/two_clusters.rs's cleanup.
struct DeleteDeployment {
    ns: String,
    name: String,
}

impl Drop for DeleteDeployment {
    fn drop(&mut self) {
        let (ns, name) = (self.ns.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let client = support::real_cluster().await;
                let _ = Api::<Deployment>::namespaced(client, &ns)
                    .delete(&name, &DeleteParams::foreground())
                    .await;
            });
        })
        .join();
    }
}

/// Idle pods first against a real API server and its ReplicaSet controller: a Deployment of 3
/// pods (Pending: there are no nodes, and the ReplicaSet then ranks them by deletion cost),
/// one SDK worker per pod with the pod's name as its host name, one long activity on the
/// middle pod. minReplicaCount 2 scales it 3 → 2: the busy pod is annotated before the count
/// is written, and the ReplicaSet keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG) with the controller-manager"]
async fn a_scale_down_keeps_the_busy_pod() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ListParams;
    use support::workers::{start, worker_on};
    let client = cluster().await;
    let ns = namespace();
    let name = format!("ta-idle-{:x}", fastrand::u32(..));
    let worker = format!("{name}-worker");
    Api::<Deployment>::namespaced(client.clone(), &ns)
        .create(&PostParams::default(), &deployment(&worker, 3))
        .await
        .unwrap();
    let _cleanup = DeleteDeployment {
        ns: ns.clone(),
        name: worker.clone(),
    };
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let selector = format!("app={worker}");
    // The live pods (not being deleted), by name.
    let live = || {
        let (pods_api, selector) = (pods_api.clone(), selector.clone());
        async move {
            let mut names: Vec<(String, Option<String>)> = pods_api
                .list(&ListParams::default().labels(&selector))
                .await
                .unwrap()
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .map(|p| {
                    let cost = p
                        .metadata
                        .annotations
                        .and_then(|mut a| a.remove("controller.kubernetes.io/pod-deletion-cost"));
                    (p.metadata.name.unwrap(), cost)
                })
                .collect();
            names.sort();
            names
        }
    };
    let pods = within(60, "the ReplicaSet's 3 pods", async {
        loop {
            let pods = live().await;
            if pods.len() == 3 {
                return pods;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let names: Vec<String> = pods.into_iter().map(|p| p.0).collect();
    let busy = names[1].clone();

    let server = DevServer::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let queue = format!("q-{name}");
    // The busy pod's worker has one slot, so the activity runs there; the others join after.
    let _busy = worker_on(&server, &queue, &busy, &["--activity-slots", "1"]).await;
    start(&server, &queue, 1, "hold", &release);
    let _w0 = worker_on(&server, &queue, &names[0], &["--activity-slots", "4"]).await;
    let _w2 = worker_on(&server, &queue, &names[2], &["--activity-slots", "4"]).await;

    let yaml = scaler_yaml(
        &name,
        &server.endpoint(),
        &queue,
        2,
        "        targetSlotUtilization: \"0.8\"\n        workerHeartbeatMaxAgeSeconds: \"4\"\n",
    )
    .replace(
        "namespace: default\nspec",
        &format!("namespace: {ns}\nspec"),
    )
    .replace("queueTypes: workflow\n", "queueTypes: workflow,activity\n");
    // explain first, as a user would: the dry run ranks the real pods and writes nothing.
    let file = tmp.path().join("s.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let text = within(60, "explain showing the busy pod", async {
        loop {
            let text = temporal_autoscaler::explain::explain(&file, None, None, &[])
                .await
                .unwrap();
            // Until every worker's heartbeat is in (and the busy one's shows its slot in use),
            // the decision and the ranking may still be others: the section alone is printed
            // with "none" busy before that.
            if text.contains(&format!("busy, kept longest (slots in use): {busy}")) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert!(
        text.contains("final: 2 (from 3): would scale down"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "local: 3 pod(s); busy, kept longest (slots in use): {busy} (1); 2 idle pod(s) removed first; 1 deletion cost(s) to write"
        )),
        "{text}"
    );
    assert!(
        live().await.iter().all(|p| p.1.is_none()),
        "explain wrote a cost"
    );

    let ctx = Context::new(Targets::kube(client.clone(), false), Guard::alone());
    let running = support::run_scaler(&ctx, &ns, &name, &yaml).await;
    let key = running.key.clone();
    let v = within(
        90,
        "scaled 3 → 2, idle pods first",
        ctx.state.wait_for(&key, |v| {
            v.current_replicas == Some(2) && !v.scale_down.is_empty()
        }),
    )
    .await;
    let sd = &v.scale_down[0];
    assert_eq!((sd.pods, sd.idle), (3, 2), "{sd:?}");
    assert_eq!(sd.busy.len(), 1, "{sd:?}");
    assert_eq!(sd.busy[0].pod, busy);
    // The ReplicaSet removed an idle pod: the busy one is still there, with its cost.
    let left = within(60, "the ReplicaSet down to 2 pods", async {
        loop {
            let pods = live().await;
            if pods.len() == 2 {
                return pods;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(
        left.contains(&(busy.clone(), Some("1".to_string()))),
        "the busy pod {busy} was removed: {left:?}"
    );
    std::fs::write(&release, "").unwrap();
}

/// Never fight another autoscaler, on a real API server: an autoscaling/v2 HPA on the target
/// (the HPA controller is off here, so it only exists, as KEDA's would) holds the agent back;
/// once it is deleted, the agent scales.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn an_hpa_on_the_target_holds_the_agent_back_until_deleted() {
    use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
    let client = cluster().await;
    let ns = namespace();
    let name = format!("ta-hpa-{:x}", fastrand::u32(..));
    let worker = format!("{name}-worker");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(&PostParams::default(), &deployment(&worker, 1))
        .await
        .unwrap();
    let _cleanup = DeleteDeployment {
        ns: ns.clone(),
        name: worker.clone(),
    };
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), &ns);
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("keda-hpa-{name}")},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker},
                 "minReplicas": 1, "maxReplicas": 10}
    }))
    .unwrap();
    hpas.create(&PostParams::default(), &hpa).await.unwrap();

    let server = DevServer::start().await;
    server.start_workflows(&format!("q-{name}"), 12).await;
    let ctx = Context::new(
        Targets::kube(client.clone(), false).with_hpa_recheck(Duration::from_secs(2)),
        Guard::alone(),
    );
    let running = support::run_scaler(
        &ctx,
        &ns,
        &name,
        &scaler_yaml(&name, &server.endpoint(), &format!("q-{name}"), 0, "").replace(
            "namespace: default\nspec",
            &format!("namespace: {ns}\nspec"),
        ),
    )
    .await;
    let key = running.key.clone();
    let v = within(
        60,
        "the conflict reported",
        ctx.state.wait_for(&key, |v| {
            v.desired_replicas == Some(3)
                && v.error
                    .as_deref()
                    .is_some_and(|e| e.contains("TargetConflict"))
        }),
    )
    .await;
    assert!(
        v.error
            .unwrap()
            .contains(&format!("HorizontalPodAutoscaler {ns}/keda-hpa-{name}")),
    );
    assert_eq!(
        deploys.get(&worker).await.unwrap().spec.unwrap().replicas,
        Some(1)
    );

    hpas.delete(&format!("keda-hpa-{name}"), &DeleteParams::default())
        .await
        .unwrap();
    within(
        60,
        "scaled once the HPA is gone",
        ctx.state
            .wait_for(&key, |v| v.current_replicas == Some(3) && v.error.is_none()),
    )
    .await;
    assert_eq!(
        deploys.get(&worker).await.unwrap().spec.unwrap().replicas,
        Some(3)
    );
}

/// Temporal's worker controller, by its rules (`temporal_autoscaler::wrt`): a TemporalScaler
/// rendered from a WorkerResourceTemplate for one version, with the controller's labels and an
/// owner reference to a real WRT object, scales that version's Deployment on that version's
/// backlog; deleting the WRT removes the scaler (garbage collection), and the agent lets go.
/// The WRT's CRD is a minimal stand-in for the controller's (the controller itself is not run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG) with the controller-manager"]
async fn a_scaler_rendered_for_a_worker_controller_version_scales_it_and_goes_with_its_owner() {
    use kube::api::{DynamicObject, ListParams};
    use kube::discovery::ApiResource;
    use temporal_autoscaler::report::status::StatusWriter;
    use temporal_autoscaler::spec::TemporalScaler;

    let client = cluster().await;
    let ns = namespace();
    support::apply_crd(&client).await;
    support::apply_crd_object(
        &client,
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "workerresourcetemplates.temporal.io"},
            "spec": {"group": "temporal.io", "scope": "Namespaced",
                     "names": {"plural": "workerresourcetemplates", "singular": "workerresourcetemplate",
                               "kind": "WorkerResourceTemplate", "shortNames": ["wrt"]},
                     "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                       "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .unwrap(),
    )
    .await;

    // A version `<ns>/<wd>` of build v1, current, with 12 workflows waiting.
    let wd = format!("ta-wd-{:x}", fastrand::u32(..));
    let server = DevServer::start().await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/versioning/deployment_backlog.py");
    let out = support::python()
        .arg(script)
        .args(["--address", &server.endpoint(), "--namespace", "default"])
        .args([
            "--task-queue",
            "orders",
            "--deployment",
            &format!("{ns}/{wd}"),
        ])
        .args(["--build-id", "v1", "--workflows", "12"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The WRT, as a user applies it (the example, for this WorkerDeployment).
    let mut wrt = support::example_wrt();
    wrt["metadata"]["namespace"] = ns.clone().into();
    wrt["spec"]["workerDeploymentRef"]["name"] = wd.clone().into();
    wrt["spec"]["template"]["spec"]["triggers"][0]["metadata"]["endpoint"] =
        server.endpoint().into();
    let resource = ApiResource {
        group: "temporal.io".into(),
        version: "v1alpha1".into(),
        api_version: "temporal.io/v1alpha1".into(),
        kind: "WorkerResourceTemplate".into(),
        plural: "workerresourcetemplates".into(),
    };
    let wrts: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let created = wrts
        .create(
            &PostParams::default(),
            &serde_json::from_value(wrt.clone()).unwrap(),
        )
        .await
        .unwrap();
    wrt["metadata"]["uid"] = created.metadata.uid.clone().unwrap().into();

    // What the controller would apply for v1: the scaler, and the version's Deployment.
    let version = temporal_autoscaler::wrt::Version {
        build_id: "v1".into(),
        temporal_namespace: "default".into(),
    };
    let rendered = temporal_autoscaler::wrt::render(&wrt, &version).unwrap();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(&PostParams::default(), &deployment(&rendered.deployment, 1))
        .await
        .unwrap();
    let cr: TemporalScaler = serde_json::from_value(rendered.value.clone()).unwrap();
    let name = cr.metadata.name.clone().unwrap();
    let crs: Api<TemporalScaler> = Api::namespaced(client.clone(), &ns);
    crs.create(&PostParams::default(), &cr).await.unwrap();

    let guard = Guard::alone();
    let sink = StatusWriter::spawn(client.clone(), guard.clone(), "e2e-agent".into());
    let ctx = Context::with_status(Targets::kube(client.clone(), false), guard, Some(sink));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(temporal_autoscaler::source::crd::run(
        client.clone(),
        Some(vec![ns.clone()]),
        tx,
    ));
    let _sources = temporal_autoscaler::agent::start_sources(ctx.clone(), None, Some(rx))
        .await
        .unwrap();
    let key = ScalerKey {
        source: SourceKind::Crd,
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
    };
    // ceil(12 / 5) = 3, on that version's backlog.
    within(
        60,
        "the version's Deployment at 3",
        ctx.state.wait_for(&key, |v| v.current_replicas == Some(3)),
    )
    .await;
    let replicas = deploys
        .get(&rendered.deployment)
        .await
        .unwrap()
        .spec
        .unwrap()
        .replicas;
    assert_eq!(replicas, Some(3));

    // The WRT goes: its scaler goes with it, and the agent stops scaling it.
    wrts.delete(
        &created.metadata.name.clone().unwrap(),
        &DeleteParams::background(),
    )
    .await
    .unwrap();
    within(60, "the scaler garbage-collected", async {
        loop {
            let left = crs.list(&ListParams::default()).await.unwrap();
            if !left
                .items
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await;
    within(
        30,
        "the agent forgets the scaler",
        ctx.state.wait_for_absent(&key),
    )
    .await;
    let _ = deploys
        .delete(&rendered.deployment, &DeleteParams::default())
        .await;
}

/// KEDA's `taskQueueFromEnv` on a real API server, with the chart's rules for it (impersonating
/// a ServiceAccount that has `rbac.targetEnvironment`'s `get` on deployments and configmaps, no
/// Secrets): the variable comes from a ConfigMap key in the container `envSourceContainerName`
/// names; a Secret in its `envFrom` cannot be read (forbidden) and does not matter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn a_task_queue_from_the_targets_environment_on_a_real_cluster_with_the_charts_rules() {
    use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let admin = cluster().await;
    let ns = namespace();
    let name = format!("ta-env-{:x}", fastrand::u32(..));
    let server = DevServer::start().await;
    server.start_workflows(&format!("{name}-q"), 12).await;

    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{name}-queues")},
        "data": {"orders": format!("{name}-q")}
    }))
    .unwrap();
    Api::<ConfigMap>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
    let mut d = deployment(&format!("{name}-worker"), 1);
    let image = d
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .image
        .clone();
    d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers = serde_json::from_value(
        serde_json::json!([
            {"name": "proxy", "image": image, "env": [{"name": "TASK_QUEUE", "value": "not-this-one"}]},
            {"name": "worker", "image": image,
             "envFrom": [{"secretRef": {"name": format!("{name}-creds")}}],
             "env": [{"name": "TASK_QUEUE", "valueFrom": {"configMapKeyRef": {"name": format!("{name}-queues"), "key": "orders"}}}]},
        ]),
    )
    .unwrap();
    let deploys: Api<Deployment> = Api::namespaced(admin.clone(), &ns);
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let _cleanup = DeleteDeployment {
        ns: ns.clone(),
        name: format!("{name}-worker"),
    };

    // The agent's ServiceAccount with the chart's scaling rules and rbac.targetEnvironment.
    let rules = serde_json::json!([
        {"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get", "update", "patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]},
        {"apiGroups": ["autoscaling"], "resources": ["horizontalpodautoscalers"], "verbs": ["list"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "patch"]},
        {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
    ]);
    let sa: ServiceAccount =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    let role: Role =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "rules": rules}))
            .unwrap();
    Api::<Role>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mut config = kube::Config::infer().await.unwrap();
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{ns}:{name}"));
    let agent = temporal_autoscaler::deadline::client(config, support::TEST_KUBE_DEADLINE).unwrap();

    let ctx = Context::new(Targets::kube(agent, false), Guard::alone());
    let yaml = scaler_yaml(&name, &server.endpoint(), "unused", 1, "")
        .replace(
            "namespace: default\nspec",
            &format!("namespace: {ns}\nspec"),
        )
        .replace("taskQueue: \"unused\"", "taskQueueFromEnv: TASK_QUEUE")
        .replace(
            &format!("name: {name}-worker\n"),
            &format!("name: {name}-worker\n    envSourceContainerName: worker\n"),
        );
    let running = support::run_scaler(&ctx, &ns, &name, &yaml).await;
    let v = within(
        90,
        "scaled on the queue the variable names",
        ctx.state
            .wait_for(&running.key, |v| v.current_replicas == Some(3)),
    )
    .await;
    let got = deploys.get(&format!("{name}-worker")).await.unwrap();
    let _ = Api::<RoleBinding>::namespaced(admin.clone(), &ns)
        .delete(&name, &DeleteParams::default())
        .await;
    let _ = Api::<Role>::namespaced(admin.clone(), &ns)
        .delete(&name, &DeleteParams::default())
        .await;
    let _ = Api::<ServiceAccount>::namespaced(admin.clone(), &ns)
        .delete(&name, &DeleteParams::default())
        .await;
    let _ = Api::<ConfigMap>::namespaced(admin, &ns)
        .delete(&format!("{name}-queues"), &DeleteParams::default())
        .await;
    assert_eq!(&*v.triggers[0].task_queue, format!("{name}-q"));
    assert_eq!(v.triggers[0].backlog, Some(12));
    assert!(v.triggers[0].error.is_none(), "{v:?}");
    assert_eq!(got.spec.unwrap().replicas, Some(3));
}

/// The Schedules signal with a custom resource on a real API server: what a schedule's run
/// needed is kept in the TemporalScaler's status, and a restarted agent starts from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a real cluster (KUBECONFIG)"]
async fn a_learned_schedule_is_kept_in_the_status_and_survives_a_restart() {
    use temporal_autoscaler::report::status::StatusWriter;
    use temporal_autoscaler::spec::TemporalScaler;

    let client = cluster().await;
    let ns = namespace();
    support::apply_crd(&client).await;
    let name = format!("ta-sched-{:x}", fastrand::u32(..));
    let queue = format!("q-{name}");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    deploys
        .create(
            &PostParams::default(),
            &deployment(&format!("{name}-worker"), 0),
        )
        .await
        .unwrap();
    let _cleanup = DeleteDeployment {
        ns: ns.clone(),
        name: format!("{name}-worker"),
    };
    let server = DevServer::start().await;
    let keys = "        scheduleLeadSeconds: \"25\"\n        scheduleLearnSeconds: \"8\"\n        scheduleGraceSeconds: \"3\"\n";
    let yaml = scaler_yaml(&name, &server.endpoint(), &queue, 0, keys).replace(
        "namespace: default\nspec",
        &format!("namespace: {ns}\nspec"),
    );
    let cr: TemporalScaler = serde_saphyr::from_str(&yaml).unwrap();
    let crs: Api<TemporalScaler> = Api::namespaced(client.clone(), &ns);
    crs.create(&PostParams::default(), &cr).await.unwrap();
    let key = ScalerKey {
        source: SourceKind::Crd,
        namespace: ns.as_str().into(),
        name: name.as_str().into(),
    };
    let agent = || async {
        let guard = Guard::alone();
        let sink = StatusWriter::spawn(client.clone(), guard.clone(), "e2e-agent".into());
        let ctx = Context::with_status(Targets::kube(client.clone(), false), guard, Some(sink));
        ctx.pool.set_schedule_refresh(Duration::from_secs(1));
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        let watch = tokio::spawn(temporal_autoscaler::source::crd::run(
            client.clone(),
            Some(vec![ns.clone()]),
            tx,
        ));
        let sources = temporal_autoscaler::agent::start_sources(ctx.clone(), None, Some(rx))
            .await
            .unwrap();
        (ctx, sources, watch)
    };
    let (ctx, sources, watch) = agent().await;
    let schedule = format!("{name}-nightly");
    let run = format!("{name}-run");
    server.cli(&[
        "schedule",
        "create",
        "--schedule-id",
        &schedule,
        "--interval",
        "30s",
        "--task-queue",
        &queue,
        "--type",
        "Noop",
        "--workflow-id",
        &run,
        "--overlap-policy",
        "AllowAll",
    ]);

    // 14 workflows wait on the queue when the first action adds its own: the run needs
    // ceil(15 / 5) = 3 (started now, as the approximate backlog shows new tasks a few seconds
    // late).
    server.start_workflows(&queue, 14).await;
    let kept = format!("default/{schedule}");
    let status = within(90, "the learned need in the status", async {
        loop {
            let st = crs.get(&name).await.unwrap().status.unwrap_or_default();
            if let Some(l) = st.schedules.iter().find(|l| l.schedule == kept) {
                return l.clone();
            }
            // The status is written at most once per pollingInterval (1 s).
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    assert_eq!(status.learned_replicas, 3);

    // A new agent (the old one stopped): it starts from the status, before learning anything.
    drop(sources);
    watch.abort();
    drop(ctx);
    let (ctx, _sources, watch) = agent().await;
    let v = within(
        60,
        "the new agent's first view of the schedule",
        ctx.state.wait_for(&key, |v| {
            v.triggers.first().is_some_and(|t| !t.schedules.is_empty())
        }),
    )
    .await;
    watch.abort();
    let _ = crs.delete(&name, &DeleteParams::default()).await;
    assert_eq!(
        v.triggers[0].schedules[0].learned_replicas,
        Some(3),
        "{v:?}"
    );
}
