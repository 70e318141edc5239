//! The Lease guard: one `coordination.k8s.io/v1` Lease held by one agent replica (client-go's
//! algorithm: get, then create or update with the resourceVersion; a conflict means another
//! replica won). Before each write the holder checks its lease is still valid with a margin.

use crate::clusters::error_class;
use crate::metrics::Metrics;
use crate::outage::{Note, Outage};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub mod learned;

#[derive(Clone, Debug)]
pub struct LeaseSettings {
    pub name: String,
    pub namespace: String,
    pub identity: String,
    pub duration: Duration,
}

impl LeaseSettings {
    /// How often the holder renews and the others retry (client-go: 2 s for a 15 s lease).
    pub fn retry_period(&self) -> Duration {
        (self.duration * 2 / 15).max(Duration::from_millis(200))
    }
    /// Writes stop this long before the lease would expire.
    pub fn margin(&self) -> Duration {
        self.duration / 3
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LeaderState {
    pub leader: bool,
    /// When this replica became the holder (or started acting alone).
    pub since: Option<Instant>,
    /// The lease is held until then, by our own clock; `None` when acting alone (no cluster).
    pub valid_until: Option<Instant>,
}

/// What every scaler consults: am I the leader, and may I write now?
#[derive(Clone)]
pub struct Guard {
    rx: watch::Receiver<LeaderState>,
    margin: Duration,
    /// Keeps the channel of [`Guard::alone`] open (its state never changes).
    _fixed: Option<Arc<watch::Sender<LeaderState>>>,
}

impl Guard {
    /// No cluster (or dry run): nothing to guard, the agent acts alone.
    pub fn alone() -> Self {
        let (tx, rx) = watch::channel(LeaderState {
            leader: true,
            since: Some(Instant::now()),
            valid_until: None,
        });
        Guard {
            rx,
            margin: Duration::ZERO,
            _fixed: Some(Arc::new(tx)),
        }
    }

    pub fn new(rx: watch::Receiver<LeaderState>, margin: Duration) -> Self {
        Guard {
            rx,
            margin,
            _fixed: None,
        }
    }

    pub fn state(&self) -> LeaderState {
        self.rx.borrow().clone()
    }

    pub fn may_write(&self, now: Instant) -> bool {
        let s = self.rx.borrow();
        s.leader && s.valid_until.is_none_or(|v| now + self.margin < v)
    }

    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.rx.clone()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    Create,
    Renew,
    TakeOver,
    Follow { holder: String },
}

/// Pure: what to do given the Lease as read. Expiry is judged by when WE last saw the record
/// change (not by its timestamps), so clock skew between replicas does not matter.
pub fn next_action(
    spec: Option<&LeaseSpec>,
    me: &str,
    observed_change_at: Instant,
    now: Instant,
) -> LeaseAction {
    let Some(spec) = spec else {
        return LeaseAction::Create;
    };
    match spec.holder_identity.as_deref() {
        Some(h) if h == me => LeaseAction::Renew,
        None | Some("") => LeaseAction::TakeOver,
        Some(h) => {
            let dur = Duration::from_secs(spec.lease_duration_seconds.unwrap_or(15).max(1) as u64);
            if now.saturating_duration_since(observed_change_at) >= dur {
                LeaseAction::TakeOver
            } else {
                LeaseAction::Follow {
                    holder: h.to_string(),
                }
            }
        }
    }
}

pub struct LeaseRunner {
    api: Api<Lease>,
    settings: LeaseSettings,
    /// (holder, renewTime) last seen, and when we saw it change.
    observed: Option<(Option<String>, Option<String>, Instant)>,
    /// The Lease as last read, for the status page.
    seen: Arc<Mutex<LeaseSeen>>,
    /// The deadline of one round (a read and a write): a silent API server fails the round,
    /// which is retried a retry period later, while the Lease held keeps counting down.
    timeout: Duration,
    /// Config-directory scalers' learned schedules, kept in the Lease ([`learned`]).
    learned: Option<crate::state::StateStore>,
}

/// The Lease as this replica last read it: who holds it and since when, or why it could not
/// be read. Shown on the status page; the guard itself never reads it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseSeen {
    pub name: String,
    pub namespace: String,
    /// This replica's identity.
    pub identity: String,
    pub holder: Option<String>,
    /// The holder's `acquireTime`.
    pub acquired: Option<jiff::Timestamp>,
    /// The last round's failure, until a round succeeds.
    pub error: Option<String>,
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl LeaseRunner {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        let seen = LeaseSeen {
            name: settings.name.clone(),
            namespace: settings.namespace.clone(),
            identity: settings.identity.clone(),
            ..Default::default()
        };
        LeaseRunner {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observed: None,
            seen: Arc::new(Mutex::new(seen)),
            timeout: crate::deadline::DEFAULT_KUBE_TIMEOUT,
            learned: None,
        }
    }

    /// Keep the config-directory scalers' learned schedules of `state` in the Lease, and seed
    /// `state` from it.
    pub fn with_learned(mut self, state: crate::state::StateStore) -> Self {
        self.learned = Some(state);
        self
    }

    /// The Lease's metadata with the learned schedules annotation as `state` has it now.
    fn annotate(&self, meta: &mut ObjectMeta) {
        let Some(state) = &self.learned else { return };
        match learned::encode(state) {
            Some(v) => {
                meta.annotations
                    .get_or_insert_with(Default::default)
                    .insert(learned::ANNOTATION.into(), v);
            }
            None => {
                if let Some(a) = &mut meta.annotations {
                    a.remove(learned::ANNOTATION);
                }
            }
        }
    }

    /// The deadline of each round (`kube_timeout`).
    pub fn with_timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The Lease as last read, updated every round.
    pub fn seen(&self) -> Arc<Mutex<LeaseSeen>> {
        self.seen.clone()
    }

    fn note_seen(&self, spec: Option<&LeaseSpec>, error: Option<String>) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(spec) = spec {
            seen.holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
            seen.acquired = spec.acquire_time.as_ref().map(|t| t.0);
        }
        seen.error = error;
    }

    fn our_spec(&self, transitions: i32, acquire: Option<MicroTime>) -> LeaseSpec {
        let now = MicroTime(jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.settings.identity.clone()),
            lease_duration_seconds: Some(self.settings.duration.as_secs().max(1) as i32),
            acquire_time: Some(acquire.unwrap_or_else(|| now.clone())),
            renew_time: Some(now),
            lease_transitions: Some(transitions),
            ..Default::default()
        }
    }

    /// One round: returns whether we hold the lease afterwards.
    pub async fn try_acquire_or_renew(&mut self, now: Instant) -> Result<bool, kube::Error> {
        let name = self.settings.name.clone();
        let Some(mut lease) = self.api.get_opt(&name).await? else {
            let mut lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.settings.namespace.clone()),
                    ..Default::default()
                },
                spec: Some(self.our_spec(0, None)),
            };
            self.annotate(&mut lease.metadata);
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.note_seen(lease.spec.as_ref(), None);
                    Ok(true)
                }
                Err(e) if is_conflict(&e) => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.note_seen(Some(&spec), None);
        // Every replica reads what was learned: a new leader starts from it.
        if let (Some(state), Some(v)) = (
            &self.learned,
            lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(learned::ANNOTATION)),
        ) {
            learned::seed(state, v);
        }
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
        );
        let changed_at = match &self.observed {
            Some((h, r, at)) if (h, r) == (&record.0, &record.1) => *at,
            _ => now,
        };
        self.observed = Some((record.0, record.1, changed_at));
        let new_spec = match next_action(Some(&spec), &self.settings.identity, changed_at, now) {
            LeaseAction::Follow { .. } => return Ok(false),
            LeaseAction::Create => unreachable!("a lease exists"),
            LeaseAction::Renew => self.our_spec(
                spec.lease_transitions.unwrap_or(0),
                spec.acquire_time.clone(),
            ),
            LeaseAction::TakeOver => self.our_spec(spec.lease_transitions.unwrap_or(0) + 1, None),
        };
        lease.spec = Some(new_spec);
        self.annotate(&mut lease.metadata);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.note_seen(lease.spec.as_ref(), None);
                Ok(true)
            }
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Give the lease up on shutdown so another replica takes over at once.
    pub async fn release(&mut self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(jiff::Timestamp::now()));
        lease.spec = Some(spec);
        self.api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }

    /// A failed renewal is logged when it starts, once a minute while it lasts, and when it
    /// ends: an API server outage is not a line per retry period.
    fn log_outage(&self, outage: &mut Outage, result: &Result<bool, kube::Error>) {
        let (lease, ns) = (&self.settings.name, &self.settings.namespace);
        let now = Instant::now();
        match result {
            Ok(_) => {
                if let Some(r) = outage.success(now) {
                    tracing::info!(lease = %lease, namespace = %ns, lasted_secs = r.lasted.as_secs(), failures = r.failures, "lease renewal recovered");
                }
            }
            Err(e) => match outage.failure(now, error_class(e)) {
                Note::First => {
                    tracing::warn!(lease = %lease, namespace = %ns, error = %e, "lease renewal failed; retrying (logged again once a minute while it lasts)");
                }
                Note::Summary { failures, lasting } => {
                    tracing::warn!(lease = %lease, namespace = %ns, error = %e, failures, lasting_secs = lasting.as_secs(), "lease renewal still failing");
                }
                Note::Quiet => {
                    tracing::debug!(lease = %lease, namespace = %ns, error = %e, "lease renewal failed");
                }
            },
        }
    }

    /// Run until `shutdown` turns true, publishing leadership; releases the lease at the end.
    pub async fn run(
        mut self,
        tx: watch::Sender<LeaderState>,
        metrics: Arc<Metrics>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let period = self.settings.retry_period();
        let mut outage = Outage::default();
        loop {
            let started = Instant::now();
            let prev = tx.borrow().clone();
            let result =
                crate::deadline::within(self.timeout, self.try_acquire_or_renew(started)).await;
            self.log_outage(&mut outage, &result);
            if let Err(e) = &result {
                self.note_seen(None, Some(e.to_string()));
            }
            let next = match result {
                Ok(true) => LeaderState {
                    leader: true,
                    since: if prev.leader {
                        prev.since
                    } else {
                        Some(started)
                    },
                    // Counted from before the request: conservative.
                    valid_until: Some(started + self.settings.duration),
                },
                Ok(false) => LeaderState {
                    leader: false,
                    since: None,
                    valid_until: None,
                },
                Err(_) => {
                    // Still the holder until the lease would expire; writes stop earlier (margin).
                    if prev.leader && prev.valid_until.is_some_and(|v| Instant::now() < v) {
                        prev.clone()
                    } else {
                        LeaderState {
                            leader: false,
                            since: None,
                            valid_until: None,
                        }
                    }
                }
            };
            if next.leader != prev.leader {
                tracing::info!(identity = %self.settings.identity, leader = next.leader, "leadership changed");
            }
            metrics.leader.set(next.leader as i64);
            // Renewals move `valid_until` (read by `may_write`) without waking subscribers;
            // only a change of leadership does.
            tx.send_if_modified(|cur| {
                let flipped = cur.leader != next.leader;
                *cur = next;
                flipped
            });
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = shutdown.changed() => break,
            }
            if *shutdown.borrow() {
                break;
            }
        }
        if tx.borrow().leader {
            tx.send_replace(LeaderState {
                leader: false,
                since: None,
                valid_until: None,
            });
            if let Err(e) = crate::deadline::within(self.timeout, self.release()).await {
                tracing::warn!(error = %e, "could not release the lease");
            }
        }
        metrics.leader.set(0);
    }
}

#[cfg(test)]
mod tests;
