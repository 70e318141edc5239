//! The custom-resource source: watches TemporalScalers (all namespaces or a list) and turns
//! each object into a validated config or a field error. Objects are read as untyped JSON and
//! their spec decoded here, so one bad object can never break or stall the watch.

use super::{ScalerKey, SourceKind};
use crate::outage::{Note, Outage};
use crate::spec::{
    ScalerConfig, TemporalScaler, TemporalScalerSpec, TemporalScalerStatus, validate_object,
};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, DynamicObject};
use kube::core::ApiResource;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, HashSet};
use tokio::sync::mpsc;

/// One TemporalScaler as the agent understands it.
#[derive(Clone, Debug, PartialEq)]
pub struct CrObject {
    pub key: ScalerKey,
    pub uid: String,
    pub generation: i64,
    /// The validated config, or every problem with it (field paths, no secrets).
    pub config: Result<ScalerConfig, String>,
    /// Conditions as currently written on the object (to keep their transition times).
    pub conditions: Vec<Condition>,
    /// What the Schedules signal learned, as kept in the status.
    pub learned: crate::state::Learned,
}

#[derive(Clone, Debug, PartialEq)]
pub enum CrEvent {
    Apply(Box<CrObject>),
    Delete(ScalerKey),
    /// A (re)list finished: CR scalers in `namespace` (all when `None`) not in `keys` are gone.
    Resync {
        namespace: Option<String>,
        keys: HashSet<ScalerKey>,
    },
}

pub fn api_resource() -> ApiResource {
    ApiResource::erase::<TemporalScaler>(&())
}

fn key_of(obj: &DynamicObject) -> ScalerKey {
    ScalerKey {
        source: SourceKind::Crd,
        namespace: obj.namespace().unwrap_or_default().into(),
        name: obj.name_any().into(),
    }
}

/// Decode and validate one object; never fails.
pub fn parse_object(obj: &DynamicObject) -> CrObject {
    let key = key_of(obj);
    let spec = obj
        .data
        .get("spec")
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let config = serde_path_to_error::deserialize::<_, TemporalScalerSpec>(spec)
        .map_err(|e| {
            let path = e.path().to_string();
            let last = path.rsplit('.').next().unwrap_or_default();
            // The decoder's message may quote a secret's value.
            if matches!(last, "apiKey" | "key") {
                format!("spec.{path}: expected a string (value hidden)")
            } else {
                format!("spec.{path}: {}", e.into_inner())
            }
        })
        .and_then(|spec| {
            let annotations: BTreeMap<String, String> = obj.annotations().clone();
            validate_object(&key.name, &key.namespace, &spec, annotations).map_err(|errs| {
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    let status = obj
        .data
        .get("status")
        .cloned()
        .and_then(|s| serde_json::from_value::<TemporalScalerStatus>(s).ok())
        .unwrap_or_default();
    let learned = status
        .schedules
        .iter()
        .map(|l| {
            let learned = crate::decide::schedule::Learned {
                replicas: l.learned_replicas.max(0) as u32,
                action_at: l.action_time.0.as_second(),
            };
            (l.schedule.clone(), learned)
        })
        .collect();
    CrObject {
        key,
        uid: obj.uid().unwrap_or_default(),
        generation: obj.metadata.generation.unwrap_or(0),
        config,
        conditions: status.conditions,
        learned,
    }
}

/// The class of a watch error, for outage logging.
fn watch_error_class(e: &watcher::Error) -> String {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => crate::clusters::error_class(k).to_string(),
        watcher::Error::WatchError(s) => format!("watch_error_{}", s.code),
        _ => "other".to_string(),
    }
}

/// Watch TemporalScalers and send their changes until the receiver goes away. Watch errors are
/// retried with backoff (and logged); the stream never ends on them.
pub async fn run(client: Client, namespaces: Option<Vec<String>>, tx: mpsc::Sender<CrEvent>) {
    let ar = api_resource();
    let apis: Vec<(Option<String>, Api<DynamicObject>)> = match namespaces {
        None => vec![(None, Api::all_with(client, &ar))],
        Some(list) => list
            .into_iter()
            .map(|ns| {
                (
                    Some(ns.clone()),
                    Api::namespaced_with(client.clone(), &ns, &ar),
                )
            })
            .collect(),
    };
    let streams = apis.into_iter().map(|(ns, api)| {
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .map(move |ev| (ns.clone(), ev))
    });
    let mut merged = futures::stream::select_all(streams.map(Box::pin));
    // Keys seen since each stream's last Init, to detect deletions missed while disconnected.
    let mut listing: BTreeMap<Option<String>, HashSet<ScalerKey>> = BTreeMap::new();
    // Per watched namespace: an API server outage is a line when it starts, one a minute, and
    // one when the watch works again, not a line per retry.
    let mut outages: BTreeMap<Option<String>, Outage> = BTreeMap::new();
    while let Some((ns, ev)) = merged.next().await {
        let scope = ns.as_deref().unwrap_or("*").to_string();
        let outage = outages.entry(ns.clone()).or_default();
        match &ev {
            Ok(_) => {
                if let Some(r) = outage.success(std::time::Instant::now()) {
                    tracing::info!(namespace = %scope, lasted_secs = r.lasted.as_secs(), failures = r.failures, "TemporalScaler watch recovered");
                }
            }
            Err(e) => match outage.failure(std::time::Instant::now(), watch_error_class(e)) {
                Note::First => {
                    tracing::warn!(namespace = %scope, error = %e, "TemporalScaler watch failed; retrying (logged again once a minute while it lasts)");
                }
                Note::Summary { failures, lasting } => {
                    tracing::warn!(namespace = %scope, error = %e, failures, lasting_secs = lasting.as_secs(), "TemporalScaler watch still failing");
                }
                Note::Quiet => {
                    tracing::debug!(namespace = %scope, error = %e, "TemporalScaler watch failed");
                }
            },
        }
        let out = match ev {
            Ok(Event::Apply(o)) => Some(CrEvent::Apply(Box::new(parse_object(&o)))),
            Ok(Event::Delete(o)) => Some(CrEvent::Delete(key_of(&o))),
            Ok(Event::Init) => {
                listing.insert(ns.clone(), HashSet::new());
                None
            }
            Ok(Event::InitApply(o)) => {
                let parsed = parse_object(&o);
                listing
                    .entry(ns.clone())
                    .or_default()
                    .insert(parsed.key.clone());
                Some(CrEvent::Apply(Box::new(parsed)))
            }
            Ok(Event::InitDone) => Some(CrEvent::Resync {
                namespace: ns.clone(),
                keys: listing.remove(&ns).unwrap_or_default(),
            }),
            // Logged above.
            Err(_) => None,
        };
        if let Some(out) = out
            && tx.send(out).await.is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(spec: serde_json::Value, status: serde_json::Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScaler",
            "metadata": {"name": "orders", "namespace": "shop", "uid": "u1", "generation": 4},
            "spec": spec, "status": status
        }))
        .unwrap()
    }

    fn spec(metadata: serde_json::Value) -> serde_json::Value {
        json!({"scaleTargetRef": {"name": "w"}, "triggers": [{"type": "temporal", "metadata": metadata}]})
    }

    #[test]
    fn a_valid_object_becomes_the_same_config_as_a_file_would() {
        let o = parse_object(&object(
            spec(json!({"endpoint": "t:7233", "taskQueue": "q"})),
            json!(null),
        ));
        assert_eq!(
            o.key,
            ScalerKey {
                source: SourceKind::Crd,
                namespace: "shop".into(),
                name: "orders".into()
            }
        );
        assert_eq!((o.uid.as_str(), o.generation), ("u1", 4));
        let cfg = o.config.unwrap();
        let file = crate::source::dir::parse_file(
            std::path::Path::new("f.yaml"),
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {name: orders, namespace: shop}\nspec:\n  scaleTargetRef: {name: w}\n  triggers: [{type: temporal, metadata: {endpoint: \"t:7233\", taskQueue: q}}]\n",
        )
        .unwrap()
        .remove(0);
        assert_eq!(cfg, file);
    }

    #[test]
    fn bad_objects_give_field_errors_and_never_secrets() {
        let wrong_type = parse_object(&object(
            json!({"scaleTargetRef": {"name": "w"}, "pollingInterval": "often", "triggers": []}),
            json!(null),
        ));
        let e = wrong_type.config.unwrap_err();
        assert!(
            e.starts_with("spec.pollingInterval: invalid type: string \"often\""),
            "{e}"
        );

        let invalid = parse_object(&object(
            spec(json!({"endpoint": "t:7233", "taskQueue": "q", "targetQueueSize": "-3"})),
            json!(null),
        ));
        let e = invalid.config.unwrap_err();
        assert!(
            e.contains(
                "spec.triggers[0].metadata.targetQueueSize: got \"-3\", expected a number > 0"
            ),
            "{e}"
        );

        let secret = parse_object(&object(
            spec(json!({"endpoint": "t:7233", "taskQueue": "q", "apiKey": 123456789})),
            json!(null),
        ));
        let e = secret.config.unwrap_err();
        assert!(
            e.contains("apiKey: expected a string (value hidden)") && !e.contains("123456789"),
            "{e}"
        );

        let missing = parse_object(&object(json!(null), json!(null)));
        assert!(missing.config.is_err());
    }

    #[test]
    fn existing_conditions_are_kept_for_their_transition_times() {
        let status = json!({"conditions": [{"type": "Ready", "status": "True", "reason": "ScalerReady", "message": "",
                                            "lastTransitionTime": "2026-01-01T00:00:00Z"}]});
        let o = parse_object(&object(
            spec(json!({"endpoint": "t:7233", "taskQueue": "q"})),
            status,
        ));
        assert_eq!(o.conditions.len(), 1);
        assert_eq!(
            o.conditions[0].last_transition_time.0.to_string(),
            "2026-01-01T00:00:00Z"
        );
    }

    /// The watch's initial list against an API server that takes it and never answers: with
    /// the agent's deadline layer on the client, the list fails at the deadline and is retried
    /// (with backoff) instead of waiting for ever; once answered, the object comes through.
    #[tokio::test(start_paused = true)]
    async fn a_silent_initial_list_fails_at_the_deadline_and_is_retried() {
        use http::{Request, Response};
        use kube::client::Body;
        let (svc, mut h) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let deadline = std::time::Duration::from_secs(2);
        let svc = tower::Layer::layer(&crate::deadline::DeadlineLayer(deadline), svc);
        let client = Client::new(svc, "default");
        let (tx, mut rx) = mpsc::channel(8);
        tokio::spawn(run(client, Some(vec!["shop".into()]), tx));
        let list = "/apis/scaling.example.com/v1alpha1/namespaces/shop/temporalscalers";
        let (first, _unanswered) = h.next_request().await.expect("the initial list");
        assert!(first.uri().to_string().starts_with(list), "{}", first.uri());
        let asked = tokio::time::Instant::now();
        let (again, send) = h.next_request().await.expect("the list again");
        assert!(again.uri().to_string().starts_with(list), "{}", again.uri());
        assert!(asked.elapsed() >= deadline, "{:?}", asked.elapsed());
        let mut item = serde_json::to_value(object(
            json!({"scaleTargetRef": {"name": "w"},
                   "triggers": [{"type": "temporal", "metadata": {"endpoint": "t:7233", "taskQueue": "q"}}]}),
            json!({}),
        ))
        .unwrap();
        item["metadata"]["resourceVersion"] = json!("5");
        let body = json!({
            "apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScalerList",
            "metadata": {"resourceVersion": "5"}, "items": [item]
        });
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&body).unwrap()))
                .unwrap(),
        );
        match tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await {
            Ok(Some(CrEvent::Apply(o))) => assert_eq!(&*o.key.name, "orders"),
            other => panic!("expected the object, got {other:?}"),
        }
    }
}
