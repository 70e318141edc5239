//! Status and Events on TemporalScaler objects, written only by the lease holder: status
//! through the status subresource (server-side apply), only when it changed and at most once
//! per polling interval per scaler; Events (events.k8s.io/v1) as they happen.

use crate::guard::Guard;
use crate::outage::{Note, Outage};
use crate::spec::ScalerKey;
use crate::spec::{API_VERSION, KIND, TemporalScalerStatus};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use kube::Client;
use kube::api::{Api, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams};
use std::collections::HashMap;
use std::time::Duration;
// Tokio's clock, so that rate limits can be tested with paused time.
use tokio::sync::mpsc;
use tokio::time::Instant;

pub const FIELD_MANAGER: &str = "temporal-autoscaler";

/// A condition as a scaler wants it; the writer adds the transition time.
#[derive(Clone, Debug, PartialEq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Cond {
            type_,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What a scaler (or the registry) wants on its object.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusReport {
    pub generation: i64,
    pub status: TemporalScalerStatus,
    pub conditions: Vec<Cond>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventReport {
    pub type_: EventType,
    pub reason: &'static str,
    pub action: &'static str,
    pub note: String,
}

#[derive(Debug)]
pub enum StatusMsg {
    /// The object as first seen: its uid and the conditions already on it.
    Seen {
        key: ScalerKey,
        uid: String,
        conditions: Vec<Condition>,
    },
    Status {
        key: ScalerKey,
        report: StatusReport,
        min_interval: Duration,
    },
    Event {
        key: ScalerKey,
        event: EventReport,
    },
    /// The object is gone.
    Forget(ScalerKey),
}

/// Where scalers and the registry send status and events; cheap to clone.
#[derive(Clone)]
pub struct StatusSink(mpsc::UnboundedSender<StatusMsg>);

impl StatusSink {
    pub fn send(&self, msg: StatusMsg) {
        // The writer lives as long as the agent; after shutdown there is nothing to report.
        let _ = self.0.send(msg);
    }

    /// A sink whose messages are returned to the caller (for tests of what is reported).
    pub fn channel() -> (StatusSink, mpsc::UnboundedReceiver<StatusMsg>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (StatusSink(tx), rx)
    }
}

#[derive(Default)]
struct KeyState {
    uid: String,
    /// Conditions as last written (or as found on the object), with their transition times.
    conditions: Vec<Condition>,
    last_written: Option<TemporalScalerStatus>,
    last_write_at: Option<Instant>,
    pending: Option<(TemporalScalerStatus, Instant)>,
}

pub struct StatusWriter {
    client: Client,
    guard: Guard,
    identity: String,
    keys: HashMap<ScalerKey, KeyState>,
    /// Failed status writes and event posts, over all scalers: an API server outage is a line
    /// when it starts, one a minute, and one when writes work again.
    outage: Outage,
    /// The deadline of each write (`kube_timeout`).
    timeout: Duration,
    /// After a write found the API server unreachable (or silent past the deadline), nothing is
    /// sent until then: one deadline per [`RETRY`] at most, not one per scaler, and events
    /// raised meanwhile are dropped (they say what status and the log say too).
    hold_until: Option<Instant>,
}

/// How long a failed status write waits before it is tried again, and how long the writer
/// holds off after finding the API server unreachable.
const RETRY: Duration = Duration::from_secs(5);

/// Fill in transition times: kept from the previous condition of the same type when its status
/// did not flip, else now.
pub fn with_transition_times(
    prev: &[Condition],
    wanted: &[Cond],
    generation: i64,
    now: jiff::Timestamp,
) -> Vec<Condition> {
    wanted
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" };
            let last = prev
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: c.type_.to_string(),
                status: status.to_string(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: last,
                observed_generation: Some(generation),
            }
        })
        .collect()
}

impl StatusWriter {
    pub fn spawn(client: Client, guard: Guard, identity: String) -> StatusSink {
        Self::spawn_with_timeout(
            client,
            guard,
            identity,
            crate::deadline::DEFAULT_KUBE_TIMEOUT,
        )
    }

    /// As [`Self::spawn`], each write under `timeout` (`kube_timeout`).
    pub fn spawn_with_timeout(
        client: Client,
        guard: Guard,
        identity: String,
        timeout: Duration,
    ) -> StatusSink {
        let (sink, rx) = StatusSink::channel();
        let writer = StatusWriter {
            client,
            guard,
            identity,
            keys: HashMap::new(),
            outage: Outage::default(),
            timeout,
            hold_until: None,
        };
        tokio::spawn(writer.run(rx));
        sink
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<StatusMsg>) {
        let mut leader = self.guard.subscribe();
        loop {
            // A follower keeps its pending writes without waking for them (it may not write).
            let next_due = if self.guard.may_write(std::time::Instant::now()) {
                self.keys
                    .values()
                    .filter_map(|k| k.pending.as_ref().map(|p| p.1))
                    .min()
                    .map(|due| self.hold_until.map_or(due, |h| due.max(h)))
            } else {
                None
            };
            let sleep = async {
                match next_due {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(m) => self.handle(m).await,
                    None => return,
                },
                _ = sleep => self.flush_due().await,
                changed = leader.changed() => {
                    if changed.is_err() { return; }
                    // A new holder writes what is pending at once.
                    if leader.borrow_and_update().leader {
                        let now = Instant::now();
                        for k in self.keys.values_mut() {
                            if let Some(p) = &mut k.pending { p.1 = now; }
                        }
                    }
                }
            }
        }
    }

    async fn handle(&mut self, msg: StatusMsg) {
        match msg {
            StatusMsg::Seen {
                key,
                uid,
                conditions,
            } => {
                let st = self.keys.entry(key).or_default();
                if st.uid != uid {
                    *st = KeyState {
                        uid,
                        conditions,
                        ..Default::default()
                    };
                }
            }
            StatusMsg::Forget(key) => {
                self.keys.remove(&key);
            }
            StatusMsg::Status {
                key,
                report,
                min_interval,
            } => {
                let st = self.keys.entry(key).or_default();
                let mut status = report.status;
                status.observed_generation = Some(report.generation);
                status.conditions = with_transition_times(
                    &st.conditions,
                    &report.conditions,
                    report.generation,
                    jiff::Timestamp::now(),
                );
                if st.last_written.as_ref() == Some(&status) {
                    st.pending = None; // nothing changed
                    return;
                }
                // A new generation (a spec edit) is reported at once; otherwise at most once per
                // polling interval.
                let new_generation = st
                    .last_written
                    .as_ref()
                    .is_none_or(|w| w.observed_generation != status.observed_generation);
                let due = match st.last_write_at {
                    Some(at) if !new_generation => at + min_interval,
                    _ => Instant::now(),
                };
                st.pending = Some((status, due));
            }
            StatusMsg::Event { key, event } => {
                if !self.guard.may_write(std::time::Instant::now()) {
                    return; // only the lease holder reports; it re-reports standing problems
                }
                if self.held() {
                    tracing::debug!(scaler = %key, reason = event.reason, "event dropped: the API server is unreachable");
                    return;
                }
                let uid = self
                    .keys
                    .get(&key)
                    .map(|k| k.uid.clone())
                    .unwrap_or_default();
                let res = crate::deadline::within(
                    self.timeout,
                    publish_event(&self.client, &self.identity, &key, &uid, &event),
                )
                .await;
                self.note_reachability(res.as_ref().err());
                self.log_outage(&key, "could not publish event", res.as_ref().err());
            }
        }
        self.flush_due().await;
    }

    async fn flush_due(&mut self) {
        let now = Instant::now();
        if !self.guard.may_write(std::time::Instant::now()) {
            return; // kept pending until this replica holds the lease
        }
        if self.held() {
            return; // the run loop wakes when the hold ends
        }
        let due: Vec<ScalerKey> = self
            .keys
            .iter()
            .filter(|(_, k)| k.pending.as_ref().is_some_and(|p| p.1 <= now))
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            if self.held() {
                // The API server stopped answering during this flush: the rest stay pending,
                // and the run loop wakes for them when the hold ends.
                break;
            }
            let Some(st) = self.keys.get_mut(&key) else {
                continue;
            };
            let Some((status, _)) = st.pending.take() else {
                continue;
            };
            let res =
                crate::deadline::within(self.timeout, write_status(&self.client, &key, &status))
                    .await;
            self.note_reachability(res.as_ref().err());
            let failed = res.as_ref().err().filter(|e| !is_not_found(e));
            self.log_outage(&key, "status write failed; retrying", failed);
            let Some(st) = self.keys.get_mut(&key) else {
                continue;
            };
            match res {
                Ok(()) => {
                    st.conditions = status.conditions.clone();
                    st.last_written = Some(status);
                    st.last_write_at = Some(Instant::now());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    self.keys.remove(&key);
                }
                Err(_) => {
                    st.pending = Some((status, Instant::now() + RETRY));
                }
            }
        }
    }
}

impl StatusWriter {
    /// Holding off after finding the API server unreachable.
    fn held(&self) -> bool {
        self.hold_until.is_some_and(|h| Instant::now() < h)
    }

    /// A transport failure or a timeout holds every write off for [`RETRY`]; anything else
    /// (an answer, even an error status) ends the hold.
    fn note_reachability(&mut self, failed: Option<&kube::Error>) {
        let unreachable = failed.is_some_and(|e| crate::clusters::error_class(e) == "unreachable");
        self.hold_until = unreachable.then(|| Instant::now() + RETRY);
    }

    /// Log a failed write when an outage starts (or changes kind), once a minute while it
    /// lasts, and when writes work again.
    fn log_outage(&mut self, key: &ScalerKey, what: &str, failed: Option<&kube::Error>) {
        let now = std::time::Instant::now();
        let Some(e) = failed else {
            if let Some(r) = self.outage.success(now) {
                tracing::info!(
                    lasted_secs = r.lasted.as_secs(),
                    failures = r.failures,
                    "status and event writes recovered"
                );
            }
            return;
        };
        match self.outage.failure(now, crate::clusters::error_class(e)) {
            Note::First => {
                tracing::warn!(scaler = %key, error = %e, "{what} (logged again once a minute while writes fail)")
            }
            Note::Summary { failures, lasting } => {
                tracing::warn!(scaler = %key, error = %e, failures, lasting_secs = lasting.as_secs(), "status and event writes still failing")
            }
            Note::Quiet => tracing::debug!(scaler = %key, error = %e, "{what}"),
        }
    }
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

fn api(client: &Client, key: &ScalerKey) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        &key.namespace,
        &crate::source::crd::api_resource(),
    )
}

/// Server-side apply of the whole status: fields we no longer send are removed.
pub async fn write_status(
    client: &Client,
    key: &ScalerKey,
    status: &TemporalScalerStatus,
) -> Result<(), kube::Error> {
    let body = serde_json::json!({ "apiVersion": API_VERSION, "kind": KIND, "status": status });
    api(client, key)
        .patch_status(
            &key.name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
}

pub async fn publish_event(
    client: &Client,
    identity: &str,
    key: &ScalerKey,
    uid: &str,
    ev: &EventReport,
) -> Result<(), kube::Error> {
    let mut note = ev.note.clone();
    if note.len() > 1024 {
        let mut cut = 1021;
        while !note.is_char_boundary(cut) {
            cut -= 1;
        }
        note.truncate(cut);
        note.push_str("...");
    }
    let event = K8sEvent {
        metadata: ObjectMeta {
            name: Some(format!("{}.{:016x}", key.name, fastrand::u64(..))),
            namespace: Some(key.namespace.to_string()),
            ..Default::default()
        },
        event_time: Some(MicroTime(jiff::Timestamp::now())),
        action: Some(ev.action.to_string()),
        reason: Some(ev.reason.to_string()),
        note: Some(note),
        type_: Some(match ev.type_ {
            EventType::Normal => "Normal".into(),
            EventType::Warning => "Warning".into(),
        }),
        regarding: Some(ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some(KIND.into()),
            name: Some(key.name.to_string()),
            namespace: Some(key.namespace.to_string()),
            uid: (!uid.is_empty()).then(|| uid.to_string()),
            ..Default::default()
        }),
        reporting_controller: Some(FIELD_MANAGER.into()),
        reporting_instance: Some(identity.chars().take(128).collect()),
        ..Default::default()
    };
    Api::<K8sEvent>::namespaced(client.clone(), &key.namespace)
        .create(&PostParams::default(), &event)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::LeaderState;
    use crate::spec::SourceKind;
    use crate::test_support::*;
    use http::{Method, StatusCode};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn transition_times_change_only_when_a_condition_flips() {
        let t0 = ts("2026-01-01T00:00:00Z");
        let t1 = ts("2026-01-01T00:05:00Z");
        let first = with_transition_times(
            &[],
            &[
                Cond::new("Ready", true, "ScalerReady", "a"),
                Cond::new("Active", false, "ScalerNotActive", ""),
            ],
            1,
            t0,
        );
        assert!(first.iter().all(|c| c.last_transition_time.0 == t0));
        // Same statuses (new message, new generation): times kept. Active flips: new time.
        let second = with_transition_times(
            &first,
            &[
                Cond::new("Ready", true, "ScalerReady", "b"),
                Cond::new("Active", true, "ScalerActive", ""),
            ],
            2,
            t1,
        );
        assert_eq!(second[0].last_transition_time.0, t0);
        assert_eq!(second[0].message, "b");
        assert_eq!(second[0].observed_generation, Some(2));
        assert_eq!(
            (second[1].status.as_str(), second[1].last_transition_time.0),
            ("True", t1)
        );
    }

    fn key() -> ScalerKey {
        ScalerKey {
            source: SourceKind::Crd,
            namespace: "shop".into(),
            name: "orders".into(),
        }
    }

    fn report(current: i32) -> StatusReport {
        StatusReport {
            generation: 3,
            status: TemporalScalerStatus {
                current_replicas: Some(current),
                ..Default::default()
            },
            conditions: vec![Cond::new("Ready", true, "ScalerReady", "ok")],
        }
    }

    const STATUS: &str = "/apis/scaling.example.com/v1alpha1/namespaces/shop/temporalscalers/orders/status?&force=true&fieldManager=temporal-autoscaler";

    /// A follower keeps what it would write; once it holds the lease it writes it, once.
    #[tokio::test(start_paused = true)]
    async fn only_the_lease_holder_writes_and_only_changes() {
        let (client, mut h) = mock_client();
        let (tx, rx) = tokio::sync::watch::channel(LeaderState {
            leader: false,
            since: None,
            valid_until: None,
        });
        let sink = StatusWriter::spawn(client, Guard::new(rx, Duration::ZERO), "agent-1".into());
        sink.send(StatusMsg::Status {
            key: key(),
            report: report(2),
            min_interval: Duration::from_secs(30),
        });
        sink.send(StatusMsg::Event {
            key: key(),
            event: EventReport {
                type_: EventType::Warning,
                reason: "TriggerFailed",
                action: "Poll",
                note: "x".into(),
            },
        });
        // Nothing may be written by a follower.
        assert!(
            tokio::time::timeout(Duration::from_secs(60), h.next_request())
                .await
                .is_err()
        );

        tx.send_replace(LeaderState {
            leader: true,
            since: Some(std::time::Instant::now()),
            valid_until: None,
        });
        let call = expect(&mut h, Method::PATCH, STATUS).await;
        let body = call.json("application/apply-patch+yaml");
        assert_eq!(body["status"]["currentReplicas"], 2);
        assert_eq!(body["status"]["observedGeneration"], 3);
        assert_eq!(body["status"]["conditions"][0]["type"], "Ready");
        call.reply(StatusCode::OK, body.clone());

        // The same status again: no write. A change within the interval waits for it.
        sink.send(StatusMsg::Status {
            key: key(),
            report: report(2),
            min_interval: Duration::from_secs(30),
        });
        sink.send(StatusMsg::Status {
            key: key(),
            report: report(4),
            min_interval: Duration::from_secs(30),
        });
        let start = tokio::time::Instant::now();
        let call = expect(&mut h, Method::PATCH, STATUS).await;
        assert!(
            start.elapsed() >= Duration::from_secs(29),
            "rewritten after {:?}",
            start.elapsed()
        );
        let body = call.json("application/apply-patch+yaml");
        assert_eq!(body["status"]["currentReplicas"], 4);
        call.reply(StatusCode::OK, body.clone());
        drop(sink);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), h.next_request())
                .await
                .is_err()
                || h.next_request().await.is_none()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_generation_is_reported_at_once() {
        let (client, mut h) = mock_client();
        let sink = StatusWriter::spawn(client, Guard::alone(), "agent-1".into());
        sink.send(StatusMsg::Status {
            key: key(),
            report: report(2),
            min_interval: Duration::from_secs(300),
        });
        let call = expect(&mut h, Method::PATCH, STATUS).await;
        let body = call.json("application/apply-patch+yaml");
        call.reply(StatusCode::OK, body);
        let edited = StatusReport {
            generation: 4,
            ..report(2)
        };
        sink.send(StatusMsg::Status {
            key: key(),
            report: edited,
            min_interval: Duration::from_secs(300),
        });
        let start = tokio::time::Instant::now();
        let call = expect(&mut h, Method::PATCH, STATUS).await;
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "a spec edit waited {:?}",
            start.elapsed()
        );
        assert_eq!(
            call.json("application/apply-patch+yaml")["status"]["observedGeneration"],
            4
        );
        call.reply(StatusCode::OK, serde_json::json!({}));
    }

    #[tokio::test]
    async fn events_are_events_k8s_io_v1_on_the_object() {
        let (client, mut h) = mock_client();
        let sink = StatusWriter::spawn(client, Guard::alone(), "agent-1".into());
        sink.send(StatusMsg::Seen {
            key: key(),
            uid: "u-1".into(),
            conditions: vec![],
        });
        sink.send(StatusMsg::Event {
            key: key(),
            event: EventReport {
                type_: EventType::Normal,
                reason: "ScaledUp",
                action: "Scale",
                note: "scaled Deployment/w up from 1 to 3 (triggerMax)".into(),
            },
        });
        let call = expect(
            &mut h,
            Method::POST,
            "/apis/events.k8s.io/v1/namespaces/shop/events?",
        )
        .await;
        let mut body = call.json("application/json");
        assert!(
            body["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("orders.")
        );
        assert!(body["eventTime"].is_string());
        body["metadata"].as_object_mut().unwrap().remove("name");
        body.as_object_mut().unwrap().remove("eventTime");
        assert_eq!(
            body,
            serde_json::json!({
                "apiVersion": "events.k8s.io/v1", "kind": "Event",
                "metadata": {"namespace": "shop"},
                "action": "Scale", "reason": "ScaledUp", "type": "Normal",
                "note": "scaled Deployment/w up from 1 to 3 (triggerMax)",
                "regarding": {"apiVersion": "scaling.example.com/v1alpha1", "kind": "TemporalScaler",
                              "name": "orders", "namespace": "shop", "uid": "u-1"},
                "reportingController": "temporal-autoscaler", "reportingInstance": "agent-1"
            })
        );
        call.reply(StatusCode::CREATED, serde_json::json!({}));
    }

    /// A silent API server: the status write fails at the deadline, and for 5 s nothing more
    /// is sent (an event raised meanwhile is dropped, the other scaler's status waits); then
    /// the writes are tried again, and go through once it answers.
    #[tokio::test(start_paused = true)]
    async fn a_silent_api_server_costs_one_deadline_per_hold_not_one_per_write() {
        let (client, mut h) = mock_client();
        let deadline = Duration::from_secs(2);
        let sink =
            StatusWriter::spawn_with_timeout(client, Guard::alone(), "agent-1".into(), deadline);
        let other = ScalerKey {
            name: "payments".into(),
            ..key()
        };
        for k in [key(), other.clone()] {
            sink.send(StatusMsg::Status {
                key: k,
                report: report(2),
                min_interval: Duration::from_secs(30),
            });
        }
        let started = Instant::now();
        // One of the two writes is tried, and never answered.
        let (first, _unanswered) = h.next_request().await.expect("a status write");
        assert_eq!(first.method(), Method::PATCH);
        sink.send(StatusMsg::Event {
            key: key(),
            event: EventReport {
                type_: EventType::Warning,
                reason: "TargetError",
                action: "Scale",
                note: "x".into(),
            },
        });
        // Nothing during the deadline and the hold that follows it (the event is dropped).
        assert!(
            tokio::time::timeout(
                deadline + RETRY - Duration::from_millis(1),
                h.next_request()
            )
            .await
            .is_err()
        );
        // Then the writes again, one after the other, answered this time.
        let mut paths = Vec::new();
        for _ in 0..2 {
            let (req, send) = tokio::time::timeout(WAIT, h.next_request())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(req.method(), Method::PATCH);
            paths.push(req.uri().path().to_string());
            send.send_response(
                http::Response::builder()
                    .status(StatusCode::OK)
                    .body(kube::client::Body::from(b"{}".to_vec()))
                    .unwrap(),
            );
        }
        assert!(started.elapsed() >= deadline + RETRY);
        paths.sort();
        assert_eq!(
            paths,
            [
                "/apis/scaling.example.com/v1alpha1/namespaces/shop/temporalscalers/orders/status",
                "/apis/scaling.example.com/v1alpha1/namespaces/shop/temporalscalers/payments/status",
            ]
        );
        // The dropped event is not sent later.
        assert!(
            tokio::time::timeout(Duration::from_secs(60), h.next_request())
                .await
                .is_err()
        );
    }
}
