//! Reading backlog from Temporal: connections shared per endpoint+credentials (lazy, with
//! backoff), per-tick coalescing of identical queries, DescribeTaskQueue in default mode.

use crate::metrics::{MethodLabels, Metrics, RpcLabels};
use crate::outage::{Note, Outage};
mod coalesce;
mod conn;
mod described;
mod error;
mod namespace_workers;
mod rate;
mod schedules;
pub mod secrets;
mod stats;
pub mod tls;
mod workers;

use conn::connect;
pub use conn::{ConnKey, ConnState, ConnectionHealth, conn_key, hostname};
use error::terr;
pub use error::{ErrorKind, TemporalError};
pub use rate::PROMPT;
pub use schedules::{SCHEDULE_REFRESH, ScheduleEntry, SchedulesRead};
pub use stats::{QueueStats, running_query};
pub use workers::{Listed, WorkerFilter, WorkersRead, worker_query};

use crate::decide::version::VersionStatus;
use crate::spec::{DeploymentScope, QueueType, TriggerConfig, Versioning};
use coalesce::Coalescer;
use futures::FutureExt;
use rate::TokenBucket;
use secrets::SecretReader;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use temporalio_client::Connection;
use temporalio_common::protos::temporal::api::{
    deployment::v1::WorkerDeploymentVersion,
    enums::v1::{DescribeTaskQueueMode, TaskQueueKind, TaskQueueType},
    taskqueue::v1::{TaskQueue, TaskQueueVersionSelection},
    workflowservice::v1::{
        CountWorkflowExecutionsRequest, DescribeTaskQueueRequest,
        DescribeWorkerDeploymentVersionRequest, GetWorkerBuildIdCompatibilityRequest,
        GetWorkerVersioningRulesRequest,
    },
};
use tokio::sync::Semaphore;

/// A trigger's reads of one tick: its queue's stats, its workers' heartbeats (capacity
/// signal) and its namespace's schedules (Schedules signal).
pub type TriggerRead = (
    Result<QueueStats, TemporalError>,
    Option<Result<WorkersRead, TemporalError>>,
    Option<SchedulesRead>,
);

/// Identity of a query, for coalescing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct QueryKey {
    conn: ConnKey,
    namespace: Arc<str>,
    task_queue: Arc<str>,
    queue_types: Box<[QueueType]>,
    versioning: Versioning,
    /// The queue whose running workflows are counted (`includeRunningWorkflowCount`).
    running: Option<String>,
    /// Asked by a prompt poll ([`PROMPT`]): such a read joins only another prompt read. Joining
    /// an ordinary one could mean waiting behind every read queued for a lowered rate (the
    /// joined read waits where its first asker put it), which held a changed spec's first
    /// decision over a minute at N = 100,000.
    prompt: bool,
}

/// Backoff after `failures` consecutive failures: 1 s doubling to 60 s, with jitter in
/// [50 %, 100 %] so that many agents do not retry in step.
pub fn backoff(failures: u32) -> Duration {
    let base = Duration::from_secs(1).saturating_mul(1u32 << failures.saturating_sub(1).min(6));
    let capped = base.min(Duration::from_secs(60));
    capped.mul_f64(0.5 + fastrand::f64() * 0.5)
}

struct SlotState {
    conn: Option<Connection>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<TemporalError>,
    /// An unreachable server is logged here, once for every scaler on the connection: when it
    /// starts, once a minute, and when it answers again.
    outage: Outage,
}

impl SlotState {
    fn note(&mut self, endpoint: &str, failed: Option<&TemporalError>) {
        let now = Instant::now();
        let Some(e) = failed else {
            if let Some(r) = self.outage.success(now) {
                tracing::info!(
                    endpoint,
                    lasted_secs = r.lasted.as_secs(),
                    failures = r.failures,
                    "Temporal connection recovered"
                );
            }
            return;
        };
        // Unavailable and timeout alternate in one outage: one kind for both.
        let kind = if e.kind.is_connectivity() {
            "unreachable"
        } else {
            e.kind.as_str()
        };
        match self.outage.failure(now, kind) {
            Note::First => {
                tracing::warn!(endpoint, error = %e, "Temporal connection failed; its scalers hold their replica counts (logged again once a minute while it lasts)")
            }
            Note::Summary { failures, lasting } => {
                tracing::warn!(endpoint, error = %e, failures, lasting_secs = lasting.as_secs(), "Temporal connection still failing")
            }
            Note::Quiet => tracing::debug!(endpoint, error = %e, "Temporal connection failed"),
        }
    }
}

struct Slot {
    /// The endpoint, for logs (never credentials).
    endpoint: String,
    state: tokio::sync::Mutex<SlotState>,
    /// When a query last used this slot; idle slots (e.g. of rotated credentials) are dropped.
    last_used: Mutex<Instant>,
    /// Bounds concurrent RPCs per endpoint so a slow server cannot pile up requests.
    permits: Semaphore,
    /// Bounds the RPC rate per endpoint: the start-up poll of thousands of scalers (or a
    /// recovery after an outage) is smoothed instead of tripping the namespace's rate limit.
    rate: Mutex<TokenBucket>,
    /// The queue of RPCs waiting for the rate limit, in order.
    pacer: tokio::sync::Mutex<()>,
}

pub struct TemporalPool {
    conns: Mutex<HashMap<ConnKey, Arc<Slot>>>,
    /// Reads `secretTargetRef` Secrets when the agent has a cluster.
    secrets: std::sync::OnceLock<SecretReader>,
    /// RPCs per second per endpoint (new connections use the current value).
    rps: std::sync::atomic::AtomicU32,
    /// Queue reads and worker reads started within [`COALESCE_WINDOW`] are joined.
    queries: Coalescer<QueryKey, QueueStats>,
    worker_reads: Coalescer<workers::WorkersKey, WorkersRead>,
    /// One worker listing per namespace, when that is cheaper than a listing per query.
    namespace_workers: namespace_workers::NamespaceWorkers,
    /// Slots of workers listed without heartbeats, by DescribeWorker.
    described: described::Described,
    /// Schedule listings, joined for [`SCHEDULE_REFRESH`]; the last good one per namespace;
    /// and each schedule's task queue, by the spec it was described for.
    schedule_reads: Coalescer<schedules::SchedulesKey, SchedulesRead>,
    schedules_last_good: Mutex<HashMap<schedules::SchedulesKey, Arc<Vec<ScheduleEntry>>>>,
    schedule_specs: Mutex<schedules::Specs>,
    metrics: Arc<Metrics>,
    rpc_timeout: Duration,
}

const MAX_RPCS_PER_ENDPOINT: usize = 32;

/// How long a started read may be joined (`TemporalPool::queries`). It was a second, which
/// let a scaler's first grid poll reuse its start-up answer and see a new backlog an interval
/// late.
pub const COALESCE_WINDOW: Duration = Duration::from_millis(100);
/// RPCs per second per endpoint, and the burst (`--temporal-rps`): 10,000 scalers over 2,000
/// queues at a 15 s interval need 133/s, and 267/s with the worker-capacity signal on (a
/// ListWorkers per queue); at 200 the capacity signal's polls fell behind their interval
/// (./scripts/bench). A dev server refuses bursts of many hundreds.
pub const DEFAULT_RPS: u32 = 300;

/// A connection unused this long is closed (its credentials were rotated, or its scalers gone).
const IDLE_CONNECTION: Duration = Duration::from_secs(600);

impl TemporalPool {
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(TemporalPool {
            conns: Mutex::default(),
            secrets: std::sync::OnceLock::new(),
            rps: std::sync::atomic::AtomicU32::new(DEFAULT_RPS),
            queries: Coalescer::new(COALESCE_WINDOW),
            worker_reads: Coalescer::new(COALESCE_WINDOW),
            namespace_workers: Default::default(),
            described: Default::default(),
            schedule_reads: Coalescer::new(SCHEDULE_REFRESH),
            schedules_last_good: Mutex::default(),
            schedule_specs: Mutex::default(),
            metrics,
            rpc_timeout: Duration::from_secs(10),
        })
    }

    /// Most RPCs per second per endpoint (at least 1).
    pub fn set_rps(&self, rps: u32) {
        self.rps
            .store(rps.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// How often a namespace's schedules are listed (setting `schedule_refresh_seconds`).
    pub fn set_schedule_refresh(&self, d: Duration) {
        self.schedule_reads.set_window(d);
    }

    /// Lets `secretTargetRef` credentials be read from the cluster.
    pub fn use_cluster_secrets(&self, client: kube::Client) {
        let _ = self.secrets.set(SecretReader::new(client));
    }

    /// Number of distinct connections (endpoint + credentials) opened or attempted.
    pub fn connection_count(&self) -> usize {
        self.conns.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Every connection's health, by endpoint, for the status page: never its credentials,
    /// only which kinds it uses. A connection busy connecting is not waited for.
    pub fn connections(&self) -> Vec<ConnectionHealth> {
        let slots: Vec<(ConnKey, Arc<Slot>)> = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, s)| (k.clone(), s.clone()))
            .collect();
        let now = Instant::now();
        let mut out: Vec<ConnectionHealth> = slots
            .into_iter()
            .map(|(key, slot)| {
                let state = match slot.state.try_lock() {
                    Err(_) => ConnState::Connecting,
                    Ok(st) if st.conn.is_some() => ConnState::Connected,
                    Ok(st) => match &st.last_error {
                        Some(e) if st.failures > 0 => ConnState::Failing {
                            failures: st.failures,
                            error: e.to_string(),
                        },
                        _ => ConnState::NotConnected,
                    },
                };
                let used = *slot.last_used.lock().unwrap_or_else(|p| p.into_inner());
                ConnectionHealth {
                    endpoint: slot.endpoint.clone(),
                    security: key.security(),
                    state,
                    idle: now.saturating_duration_since(used),
                }
            })
            .collect();
        out.sort_by(|a, b| (&a.endpoint, &a.security).cmp(&(&b.endpoint, &b.security)));
        out
    }

    /// Read the trigger's queue stats; identical queries within the coalescing window share one
    /// set of RPCs.
    pub async fn query(self: &Arc<Self>, t: &TriggerConfig) -> Result<QueueStats, TemporalError> {
        // Boxed: reading credentials is a deep future, needed only until the key is known;
        // a query then waits (often for another scaler's RPC of the same queue) small.
        let conn = Box::pin(conn_key(t, self.secrets.get())).await?;
        // Boxed too: its key is built from the connection identity it takes by value.
        Box::pin(self.query_on(conn, t)).await
    }

    /// A trigger's reads of one tick: its queue's stats, and with the capacity signal on its
    /// workers' heartbeats, on one reading of its credentials.
    /// A trigger's reads, or `failed` as each of them: a trigger that cannot be read as
    /// configured (its values from the target's environment) is not polled.
    pub async fn read_or(
        self: &Arc<Self>,
        t: &TriggerConfig,
        interval: Duration,
        failed: Option<&TemporalError>,
    ) -> TriggerRead {
        match failed {
            Some(e) => (
                Err(e.clone()),
                t.capacity.as_ref().map(|_| Err(e.clone())),
                None,
            ),
            None => self.read(t, interval).await,
        }
    }

    /// `interval`: the scaler's polling interval, how long a namespace-wide worker listing
    /// may serve it.
    pub async fn read(self: &Arc<Self>, t: &TriggerConfig, interval: Duration) -> TriggerRead {
        let conn = match Box::pin(conn_key(t, self.secrets.get())).await {
            Ok(c) => c,
            Err(e) => {
                return (Err(e.clone()), t.capacity.as_ref().map(|_| Err(e)), None);
            }
        };
        // Boxed: a read waiting (for the rate limit, or another scaler's RPC) stays small.
        let workers = async {
            match t.capacity {
                Some(_) => Some(Box::pin(self.workers_on(conn.clone(), t, interval)).await),
                None => None,
            }
        };
        let schedules = async {
            match t.schedule {
                Some(_) => Some(Box::pin(self.schedules_on(conn.clone(), &t.namespace)).await),
                None => None,
            }
        };
        futures::join!(
            Box::pin(self.query_on(conn.clone(), t)),
            Box::pin(workers),
            Box::pin(schedules)
        )
    }

    async fn query_on(
        self: &Arc<Self>,
        conn: ConnKey,
        t: &TriggerConfig,
    ) -> Result<QueueStats, TemporalError> {
        let key = QueryKey {
            conn,
            namespace: t.namespace.clone(),
            task_queue: t.task_queue.clone(),
            queue_types: t.queue_types.clone(),
            versioning: t.versioning.clone(),
            running: t.include_running_workflows.then(|| {
                t.workflow_task_queue_for_count
                    .as_deref()
                    .unwrap_or(&t.task_queue)
                    .to_string()
            }),
            prompt: PROMPT.try_with(|p| *p).unwrap_or(false),
        };
        let this = Arc::clone(self);
        let k = key.clone();
        let fut = self.queries.join_or_start(key, move || {
            async move { this.query_uncached(&k).await }.boxed()
        });
        fut.await
    }

    fn slot(&self, key: &ConnKey) -> Arc<Slot> {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(slot) = conns.get(key) {
            *slot.last_used.lock().unwrap_or_else(|p| p.into_inner()) = now;
            return slot.clone();
        }
        // A new identity: a good moment to close connections nobody used for a while.
        conns.retain(|_, s| {
            let used = *s.last_used.lock().unwrap_or_else(|p| p.into_inner());
            now.duration_since(used) < IDLE_CONNECTION || Arc::strong_count(s) > 1
        });
        let slot = Arc::new(Slot {
            endpoint: key.url.clone(),
            state: tokio::sync::Mutex::new(SlotState {
                conn: None,
                failures: 0,
                retry_at: None,
                last_error: None,
                outage: Outage::default(),
            }),
            last_used: Mutex::new(now),
            permits: Semaphore::new(MAX_RPCS_PER_ENDPOINT),
            pacer: tokio::sync::Mutex::new(()),
            rate: Mutex::new(TokenBucket::new(
                self.rps.load(std::sync::atomic::Ordering::Relaxed) as f64,
            )),
        });
        conns.insert(key.clone(), slot.clone());
        slot
    }

    async fn connection(&self, key: &ConnKey, slot: &Slot) -> Result<Connection, TemporalError> {
        let mut st = slot.state.lock().await;
        if let Some(c) = &st.conn {
            return Ok(c.clone());
        }
        if let Some(at) = st.retry_at
            && Instant::now() < at
        {
            let last = st
                .last_error
                .as_ref()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            return Err(terr(
                ErrorKind::Unavailable,
                format!(
                    "backing off after {} failure(s); last error: {last}",
                    st.failures
                ),
            ));
        }
        match Box::pin(connect(key)).await {
            Ok(c) => {
                st.conn = Some(c.clone());
                st.failures = 0;
                st.retry_at = None;
                st.last_error = None;
                Ok(c)
            }
            Err(e) => {
                st.note(&slot.endpoint, Some(&e));
                st.failures += 1;
                st.retry_at = Some(Instant::now() + backoff(st.failures));
                st.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// A failed RPC that says the server is unreachable backs the connection off too.
    /// `sent`: when the RPC left the rate limit; a refusal of one sent before the last
    /// lowering was sent at the old rate, and says nothing of the new one.
    async fn note_rpc_result<T>(&self, slot: &Slot, res: &Result<T, TemporalError>, sent: Instant) {
        let mut st = slot.state.lock().await;
        match res {
            Ok(_) => {
                st.note(&slot.endpoint, None);
                st.failures = 0;
                st.retry_at = None;
            }
            Err(e) if e.kind == ErrorKind::RateLimited => slot.refused_for_rate(sent),
            Err(e) if e.kind.is_connectivity() => {
                st.note(&slot.endpoint, Some(e));
                st.failures += 1;
                st.retry_at = Some(Instant::now() + backoff(st.failures));
                st.last_error = Some(e.clone());
                st.conn = None; // reconnect after the backoff
            }
            Err(_) => {}
        }
    }

    /// One query's RPCs; errors name the endpoint, namespace and queue (never credentials).
    async fn query_uncached(&self, key: &QueryKey) -> Result<QueueStats, TemporalError> {
        self.query_rpcs(key).await.map_err(|e| TemporalError {
            kind: e.kind,
            message: format!(
                "{} namespace={} taskQueue={}: {}",
                key.conn.url, key.namespace, key.task_queue, e.message
            ),
        })
    }

    async fn query_rpcs(&self, key: &QueryKey) -> Result<QueueStats, TemporalError> {
        let slot = self.slot(&key.conn);
        // Connecting and the RPCs are deep futures, boxed where they run: a query waiting for
        // the connection, the rate limit or a permit (2,000 of them at start with 2,000
        // queues) stays small.
        let conn = self.connection(&key.conn, &slot).await?;
        let rpcs = match &key.versioning {
            Versioning::All => key.queue_types.len(),
            Versioning::BuildIds { .. } => 3,
            Versioning::WorkerDeployment { .. } => 1,
        } + usize::from(key.running.is_some());
        let permit = Self::admit(&slot, rpcs).await?;
        let sent = Instant::now();
        let res = Box::pin(self.rpcs(&conn, key)).await;
        self.note_rpc_result(&slot, &res, sent).await;
        drop(permit);
        match res {
            // Refused for the rate, which is now lowered: once more, queued at the new rate,
            // rather than a tick without a decision.
            Err(e) if e.kind == ErrorKind::RateLimited => {
                let _permit = Self::admit(&slot, rpcs).await?;
                let sent = Instant::now();
                let res = Box::pin(self.rpcs(&conn, key)).await;
                self.note_rpc_result(&slot, &res, sent).await;
                res
            }
            res => res,
        }
    }

    /// The RPCs of one query, by versioning mode (and the running-workflow count if asked).
    async fn rpcs(&self, conn: &Connection, key: &QueryKey) -> Result<QueueStats, TemporalError> {
        let res = match &key.versioning {
            Versioning::All => self.describe_default(conn, key).await,
            Versioning::BuildIds {
                build_id,
                select_all_active,
                select_unversioned,
            } => {
                self.describe_enhanced(
                    conn,
                    key,
                    build_id.as_deref(),
                    *select_all_active,
                    *select_unversioned,
                )
                .await
            }
            Versioning::WorkerDeployment {
                name,
                build_id,
                scope,
            } => {
                self.describe_deployment_version(conn, key, name, build_id, *scope)
                    .await
            }
        };
        match res {
            // KEDA's rule: a version that is neither current, ramping nor draining has no
            // running workflow of its own to keep it up (no count is made).
            Ok(stats)
                if matches!(
                    stats.version_status,
                    Some(VersionStatus::Drained | VersionStatus::Inactive | VersionStatus::Created)
                ) =>
            {
                Ok(stats)
            }
            Ok(mut stats) if key.running.is_some() => {
                self.count_running(conn, key).await.map(|n| {
                    stats.running_workflows = Some(n);
                    stats
                })
            }
            other => other,
        }
    }

    async fn timed<T>(
        &self,
        method: &'static str,
        fut: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, TemporalError> {
        let start = Instant::now();
        let res = tokio::time::timeout(self.rpc_timeout, fut).await;
        self.metrics
            .rpc_latency
            .get_or_create(&MethodLabels {
                method: method.into(),
            })
            .observe(start.elapsed().as_secs_f64());
        let (code, out) = match res {
            Err(_) => (
                "DeadlineExceeded".to_string(),
                Err(terr(
                    ErrorKind::Timeout,
                    format!("{method} timed out after {:?}", self.rpc_timeout),
                )),
            ),
            Ok(Ok(r)) => ("Ok".to_string(), Ok(r.into_inner())),
            Ok(Err(s)) => (
                format!("{:?}", s.code()),
                Err(ErrorKind::status_error(method, &s)),
            ),
        };
        self.metrics
            .rpc_requests
            .get_or_create(&RpcLabels {
                method: method.into(),
                code,
            })
            .inc();
        out
    }

    fn task_queue(name: &str) -> TaskQueue {
        TaskQueue {
            name: name.to_string(),
            kind: TaskQueueKind::Normal as i32,
            ..Default::default()
        }
    }

    /// Default mode, one call per queue type, counts summed (see the backlog notes).
    async fn describe_default(
        &self,
        conn: &Connection,
        key: &QueryKey,
    ) -> Result<QueueStats, TemporalError> {
        let mut total = QueueStats::default();
        let calls = key.queue_types.iter().map(|qt| {
            let req = DescribeTaskQueueRequest {
                namespace: key.namespace.to_string(),
                task_queue: Some(Self::task_queue(&key.task_queue)),
                task_queue_type: proto_type(*qt) as i32,
                report_stats: true,
                ..Default::default()
            };
            let mut svc = conn.workflow_service();
            async move {
                self.timed("DescribeTaskQueue", async move {
                    svc.describe_task_queue(tonic::Request::new(req)).await
                })
                .await
            }
        });
        for (qt, resp) in key
            .queue_types
            .iter()
            .zip(futures::future::join_all(calls).await)
        {
            if let Some(stats) = resp?.stats {
                total.add(&stats);
                total.per_type.push((*qt, QueueStats::from_proto(&stats)));
            } else {
                total.per_type.push((*qt, QueueStats::default()));
            }
        }
        Ok(total)
    }

    /// Running workflows on the queue; the queue name was validated to be safe in the query.
    async fn count_running(&self, conn: &Connection, key: &QueryKey) -> Result<u64, TemporalError> {
        let req = CountWorkflowExecutionsRequest {
            namespace: key.namespace.to_string(),
            query: running_query(
                key.running.as_deref().unwrap_or(&key.task_queue),
                &key.versioning,
            ),
        };
        let mut svc = conn.workflow_service();
        let resp = self
            .timed(
                "CountWorkflowExecutions",
                svc.count_workflow_executions(tonic::Request::new(req)),
            )
            .await?;
        Ok(resp.count.max(0) as u64)
    }

    /// Legacy build-id selection: the deprecated ENHANCED mode is the only way to filter by it.
    async fn describe_enhanced(
        &self,
        conn: &Connection,
        key: &QueryKey,
        build_id: Option<&str>,
        all_active: bool,
        unversioned: bool,
    ) -> Result<QueueStats, TemporalError> {
        let mut build_ids: Vec<String> = build_id.map(|b| vec![b.to_string()]).unwrap_or_default();
        if all_active {
            // The server answers `all_active` alone with nothing (it fans out only to build
            // ids it has cached), so name every build id the queue's versioning knows.
            for b in self.known_build_ids(conn, key).await? {
                if !build_ids.contains(&b) {
                    build_ids.push(b);
                }
            }
        }
        #[allow(deprecated)]
        let req = DescribeTaskQueueRequest {
            namespace: key.namespace.to_string(),
            task_queue: Some(Self::task_queue(&key.task_queue)),
            api_mode: DescribeTaskQueueMode::Enhanced as i32,
            versions: Some(TaskQueueVersionSelection {
                build_ids,
                unversioned,
                all_active,
            }),
            task_queue_types: key
                .queue_types
                .iter()
                .map(|q| proto_type(*q) as i32)
                .collect(),
            report_stats: true,
            ..Default::default()
        };
        let mut svc = conn.workflow_service();
        let resp = self
            .timed(
                "DescribeTaskQueue",
                svc.describe_task_queue(tonic::Request::new(req)),
            )
            .await?;
        let mut total = QueueStats::default();
        #[allow(deprecated)]
        for info in resp.versions_info.values() {
            for stats in info.types_info.values().filter_map(|t| t.stats.as_ref()) {
                total.add(stats);
            }
        }
        Ok(total)
    }

    /// Build ids of the queue's (deprecated) versioning: assignment and redirect rules (v0.2)
    /// and compatible version sets (v0.1). A scheme disabled on the server adds none.
    async fn known_build_ids(
        &self,
        conn: &Connection,
        key: &QueryKey,
    ) -> Result<Vec<String>, TemporalError> {
        let mut ids = Vec::new();
        let tolerate = |e: TemporalError| match e.kind {
            ErrorKind::Unavailable | ErrorKind::Timeout => Err(e),
            _ => Ok(()),
        };
        let mut svc = conn.workflow_service();
        #[allow(deprecated)]
        let rules = self
            .timed(
                "GetWorkerVersioningRules",
                svc.get_worker_versioning_rules(tonic::Request::new(
                    GetWorkerVersioningRulesRequest {
                        namespace: key.namespace.to_string(),
                        task_queue: key.task_queue.to_string(),
                    },
                )),
            )
            .await;
        match rules {
            Ok(r) => {
                ids.extend(
                    r.assignment_rules
                        .iter()
                        .filter_map(|t| t.rule.as_ref())
                        .map(|r| r.target_build_id.clone()),
                );
                for r in r
                    .compatible_redirect_rules
                    .iter()
                    .filter_map(|t| t.rule.as_ref())
                {
                    ids.push(r.source_build_id.clone());
                    ids.push(r.target_build_id.clone());
                }
            }
            Err(e) => tolerate(e)?,
        }
        let mut svc = conn.workflow_service();
        #[allow(deprecated)]
        let sets = self
            .timed(
                "GetWorkerBuildIdCompatibility",
                svc.get_worker_build_id_compatibility(tonic::Request::new(
                    GetWorkerBuildIdCompatibilityRequest {
                        namespace: key.namespace.to_string(),
                        task_queue: key.task_queue.to_string(),
                        max_sets: 0,
                    },
                )),
            )
            .await;
        match sets {
            Ok(r) => ids.extend(r.major_version_sets.into_iter().flat_map(|s| s.build_ids)),
            Err(e) => tolerate(e)?,
        }
        ids.retain(|b| !b.is_empty());
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn describe_deployment_version(
        &self,
        conn: &Connection,
        key: &QueryKey,
        name: &str,
        build_id: &str,
        scope: DeploymentScope,
    ) -> Result<QueueStats, TemporalError> {
        let req = DescribeWorkerDeploymentVersionRequest {
            namespace: key.namespace.to_string(),
            deployment_version: Some(WorkerDeploymentVersion {
                deployment_name: name.to_string(),
                build_id: build_id.to_string(),
            }),
            report_task_queue_stats: true,
            ..Default::default()
        };
        let mut svc = conn.workflow_service();
        let resp = self
            .timed(
                "DescribeWorkerDeploymentVersion",
                svc.describe_worker_deployment_version(tonic::Request::new(req)),
            )
            .await?;
        let types: Vec<i32> = key
            .queue_types
            .iter()
            .map(|q| proto_type(*q) as i32)
            .collect();
        let mut total = QueueStats::default();
        for tq in resp.version_task_queues.iter().filter(|tq| match scope {
            DeploymentScope::TaskQueue => *tq.name == *key.task_queue && types.contains(&tq.r#type),
            DeploymentScope::Version => true,
        }) {
            if let Some(s) = &tq.stats {
                total.add(s);
            }
        }
        // The same answer says where the version is in its rollout (per-version bounds).
        total.version_status = resp
            .worker_deployment_version_info
            .as_ref()
            .and_then(|i| crate::decide::version::VersionStatus::from_proto(i.status));
        Ok(total)
    }
}

fn proto_type(q: QueueType) -> TaskQueueType {
    match q {
        QueueType::Workflow => TaskQueueType::Workflow,
        QueueType::Activity => TaskQueueType::Activity,
        QueueType::Nexus => TaskQueueType::Nexus,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// KEDA's expected queries (`pkg/scalers/temporal_scaler_test.go`, kedacore/keda 8b4f083c).
    #[test]
    fn the_running_count_query_is_kedas() {
        use crate::spec::DeploymentScope;
        assert_eq!(
            running_query("orders", &Versioning::All),
            "ExecutionStatus = 'Running' AND TaskQueue = 'orders' AND TemporalWorkerDeploymentVersion is null"
        );
        let version = Versioning::WorkerDeployment {
            name: "orders-svc".into(),
            build_id: "v1".into(),
            scope: DeploymentScope::TaskQueue,
        };
        assert_eq!(
            running_query("orders", &version),
            "ExecutionStatus = 'Running' AND TaskQueue = 'orders' AND TemporalWorkerDeploymentVersion = 'orders-svc:v1'"
        );
        let legacy = Versioning::BuildIds {
            build_id: Some("v1".into()),
            select_all_active: false,
            select_unversioned: false,
        };
        assert_eq!(
            running_query("orders", &legacy),
            "ExecutionStatus = 'Running' AND TaskQueue = 'orders'"
        );
    }

    /// While thousands of reads queue for a lowered rate, a prompt poll's read (a changed spec)
    /// does not wait behind them; an ordinary read does.
    #[tokio::test]
    async fn a_prompt_read_does_not_queue_behind_the_others() {
        let yaml = "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {name: s}\nspec:\n  scaleTargetRef: {name: w}\n  triggers:\n  - type: temporal\n    metadata: {endpoint: \"t:7233\", taskQueue: q}\n";
        let cfg = crate::source::dir::parse_file(std::path::Path::new("s.yaml"), yaml).unwrap();
        let key = conn_key(&cfg[0].triggers[0], None).await.unwrap();
        let pool = TemporalPool::new(Arc::new(Metrics::new()));
        let slot = pool.slot(&key);
        // The queue's head, holding its turn (as one waiting for the rate does).
        let head = slot.pacer.lock().await;
        let short = Duration::from_millis(200);
        let ordinary = tokio::time::timeout(short, TemporalPool::admit(&slot, 1)).await;
        assert!(ordinary.is_err(), "an ordinary read waits its turn");
        let prompt = tokio::time::timeout(short, PROMPT.scope(true, TemporalPool::admit(&slot, 1)))
            .await
            .expect("a prompt read is admitted");
        assert!(prompt.is_ok());
        drop(head);
    }

    #[test]
    fn backoff_doubles_to_a_minute_with_jitter() {
        for (failures, base) in [(1u32, 1u64), (2, 2), (3, 4), (6, 32), (7, 60), (30, 60)] {
            for _ in 0..50 {
                let d = backoff(failures);
                let base = Duration::from_secs(base);
                assert!(
                    d >= base / 2 && d <= base,
                    "failures {failures}: {d:?} not in [{:?}, {base:?}]",
                    base / 2
                );
            }
        }
    }

    #[tokio::test]
    async fn a_dead_endpoint_backs_off_instead_of_reconnecting_every_poll() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let yaml = format!(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: d}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"127.0.0.1:{port}\", taskQueue: q, apiKey: s3cr3t-key}}\n"
        );
        let cfg = crate::source::dir::parse_file(std::path::Path::new("d.yaml"), &yaml)
            .unwrap()
            .remove(0);
        // No coalescing: every query is a new poll.
        let pool = Arc::new(TemporalPool {
            queries: Coalescer::new(Duration::ZERO),
            ..Arc::into_inner(TemporalPool::new(Arc::new(Metrics::new()))).unwrap()
        });
        let first = pool.query(&cfg.triggers[0]).await.unwrap_err();
        assert_eq!(first.kind, ErrorKind::Unavailable, "{first}");
        assert!(
            first.message.contains(&format!("127.0.0.1:{port}")),
            "{first}"
        );
        let second = pool.query(&cfg.triggers[0]).await.unwrap_err();
        assert!(
            second.message.contains("backing off after 1 failure(s)"),
            "{second}"
        );
        assert_eq!(pool.connection_count(), 1);
        for e in [&first, &second] {
            assert!(!e.to_string().contains("s3cr3t-key"), "{e}");
        }
    }
}
