//! Reading the workers of a trigger's queue from their heartbeats (ListWorkers, server 1.29+):
//! one paged read per (endpoint, namespace, query), coalesced and rate limited like the queue
//! reads. The capacity signal (`targetSlotUtilization`) is summarised from it by the decision.

use super::error::terr;
use super::{ConnKey, ErrorKind, TemporalError, TemporalPool, conn_key};
use crate::decide::capacity::{SlotKind, Slots, WorkerSample};
use crate::spec::{DeploymentScope, TriggerConfig, Versioning};
use futures::FutureExt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use temporalio_common::protos::temporal::api::{
    enums::v1::WorkerStatus,
    worker::v1::{WorkerHeartbeat, WorkerSlotsInfo},
    workflowservice::v1::ListWorkersRequest,
};

/// Workers per ListWorkers page (the server's own maximum is larger).
const PAGE_SIZE: i32 = 1000;
/// Pages read per query at most: 20,000 workers on one queue is beyond any real deployment;
/// past it the read says so instead of paging without end.
const MAX_PAGES: usize = 20;

/// Identity of a worker read, for coalescing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct WorkersKey {
    pub(super) conn: ConnKey,
    pub(super) namespace: String,
    pub(super) query: String,
}

/// What ListWorkers says of a trigger's workers.
#[derive(Clone, Debug, PartialEq)]
pub enum WorkersRead {
    /// Every worker the query matched, fresh or not (the decision filters by age and status).
    Heartbeats(Arc<Vec<WorkerSample>>),
    /// The server cannot give the signal: no ListWorkers (older than 1.29), not allowed, or a
    /// list without heartbeats. Not a failure: the trigger goes on with its backlog.
    Unavailable(String),
}

/// The terms of a trigger's worker query: its queue, and its version selector where the
/// heartbeats carry one (Worker Deployment name and build id, or one legacy build id). One
/// place for the query the server evaluates and for the same match on the agent's side
/// (a namespace-wide listing), as the server's `FilterWorkers` does: `TaskQueue` is the
/// heartbeat's `task_queue`, `DeploymentName` and `BuildId` its `deployment_version`'s.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerFilter {
    pub task_queue: Option<String>,
    pub deployment: Option<String>,
    pub build_id: Option<String>,
}

impl WorkerFilter {
    pub fn of(t: &TriggerConfig) -> WorkerFilter {
        let mut f = WorkerFilter {
            task_queue: Some(t.task_queue.to_string()),
            deployment: None,
            build_id: None,
        };
        match &t.versioning {
            // KEDA's deployment read covers every queue of the version: so do its workers.
            Versioning::WorkerDeployment {
                name,
                build_id,
                scope,
            } => {
                if *scope == DeploymentScope::Version {
                    f.task_queue = None;
                }
                f.deployment = Some(name.to_string());
                f.build_id = Some(build_id.to_string());
            }
            Versioning::BuildIds {
                build_id: Some(b),
                select_all_active: false,
                select_unversioned: false,
            } => f.build_id = Some(b.to_string()),
            // Several build ids, or unversioned workers: every worker of the queue.
            Versioning::BuildIds { .. } | Versioning::All => {}
        }
        f
    }

    /// The ListWorkers query. The values were validated to hold no quotes or escapes.
    pub fn query(&self) -> String {
        let terms = [
            ("TaskQueue", &self.task_queue),
            ("DeploymentName", &self.deployment),
            ("BuildId", &self.build_id),
        ];
        terms
            .iter()
            .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = '{v}'")))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// Whether the server would list `w` for this query.
    pub fn matches(&self, w: &Listed) -> bool {
        let eq = |want: &Option<String>, got: &str| want.as_deref().is_none_or(|v| v == got);
        eq(&self.task_queue, &w.task_queue)
            && eq(&self.deployment, &w.deployment)
            && eq(&self.build_id, &w.build_id)
    }
}

/// The ListWorkers query of a trigger.
pub fn worker_query(t: &TriggerConfig) -> String {
    WorkerFilter::of(t).query()
}

/// A listed worker: what a query matches on, and what the capacity signal reads.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub task_queue: String,
    pub deployment: String,
    pub build_id: String,
    pub sample: WorkerSample,
}

/// What one listing gave: its workers and how many pages it took, or why none.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Listing {
    Workers(Arc<Vec<Listed>>, usize),
    Unavailable(String),
}

impl TemporalPool {
    /// The heartbeats of the workers of the trigger's queue; identical reads within the
    /// coalescing window share one set of RPCs.
    pub async fn workers(
        self: &Arc<Self>,
        t: &TriggerConfig,
    ) -> Result<WorkersRead, TemporalError> {
        let conn = Box::pin(conn_key(t, self.secrets.get())).await?;
        self.query_workers(conn, &t.namespace, worker_query(t))
            .await
    }

    pub(super) async fn workers_on(
        self: &Arc<Self>,
        conn: ConnKey,
        t: &TriggerConfig,
        interval: Duration,
    ) -> Result<WorkersRead, TemporalError> {
        self.workers_of(conn, WorkerFilter::of(t), &t.namespace, interval)
            .await
    }

    /// The workers `query` lists, by its own ListWorkers; identical reads within the
    /// coalescing window share one set of RPCs.
    pub(super) async fn query_workers(
        self: &Arc<Self>,
        conn: ConnKey,
        namespace: &str,
        query: String,
    ) -> Result<WorkersRead, TemporalError> {
        let key = WorkersKey {
            conn,
            namespace: namespace.to_string(),
            query,
        };
        let this = Arc::clone(self);
        let k = key.clone();
        let read = self.worker_reads.join_or_start(key, move || {
            async move {
                this.list_workers(&k).await.map_err(|e| TemporalError {
                    kind: e.kind,
                    message: format!(
                        "{} namespace={} ListWorkers query {:?}: {}",
                        k.conn.url, k.namespace, k.query, e.message
                    ),
                })
            }
            .boxed()
        });
        read.await
    }

    async fn list_workers(&self, key: &WorkersKey) -> Result<WorkersRead, TemporalError> {
        Ok(match self.listing(key).await? {
            Listing::Workers(w, _) => {
                WorkersRead::Heartbeats(Arc::new(w.iter().map(|l| l.sample.clone()).collect()))
            }
            Listing::Unavailable(why) => WorkersRead::Unavailable(why),
        })
    }

    /// Every worker `key.query` lists (the whole namespace for an empty query), paged.
    pub(super) async fn listing(&self, key: &WorkersKey) -> Result<Listing, TemporalError> {
        let slot = self.slot(&key.conn);
        let conn = self.connection(&key.conn, &slot).await?;
        let mut listed = Vec::new();
        let mut token = Vec::new();
        let mut pages = 0;
        let at = (key.conn.clone(), key.namespace.clone());
        for page in 0.. {
            if page == MAX_PAGES {
                return Err(terr(
                    ErrorKind::Other,
                    format!("more than {} workers", MAX_PAGES * PAGE_SIZE as usize),
                ));
            }
            let req = ListWorkersRequest {
                namespace: key.namespace.clone(),
                page_size: PAGE_SIZE,
                next_page_token: std::mem::take(&mut token),
                query: key.query.clone(),
                include_system_workers: false,
            };
            let mut svc = conn.workflow_service();
            let res = self
                .call(
                    &slot,
                    "ListWorkers",
                    svc.list_workers(tonic::Request::new(req)),
                )
                .await;
            pages += 1;
            let resp = match res {
                Ok(r) => r,
                // No such RPC, or not allowed to list workers: the signal is unavailable.
                Err(e) if matches!(e.kind, ErrorKind::Unsupported | ErrorKind::Auth) => {
                    return Ok(Listing::Unavailable(e.message));
                }
                Err(e) => return Err(e),
            };
            #[allow(deprecated)]
            let infos = resp.workers_info;
            if infos.is_empty() && !resp.workers.is_empty() {
                // The short form only (`workers_info` is deprecated): slots by DescribeWorker.
                match Box::pin(self.describe_listed(&slot, &conn, &at, resp.workers)).await? {
                    Some(described) => listed.extend(described),
                    None => {
                        return Ok(Listing::Unavailable(
                            "ListWorkers lists workers without slots (workers_info is empty) \
                             and DescribeWorker is not available"
                                .into(),
                        ));
                    }
                }
            }
            listed.extend(
                infos
                    .into_iter()
                    .filter_map(|i| i.worker_heartbeat)
                    .map(|h| {
                        let v = h.deployment_version.clone().unwrap_or_default();
                        Listed {
                            task_queue: h.task_queue.clone(),
                            deployment: v.deployment_name,
                            build_id: v.build_id,
                            sample: sample(&h),
                        }
                    }),
            );
            if resp.next_page_token.is_empty() {
                break;
            }
            token = resp.next_page_token;
        }
        Ok(Listing::Workers(Arc::new(listed), pages))
    }
}

/// The parts of a heartbeat the capacity signal reads.
pub(super) fn sample(h: &WorkerHeartbeat) -> WorkerSample {
    let slots = |s: &Option<WorkerSlotsInfo>| match s {
        None => Slots {
            used: 0,
            available: Some(0),
        },
        Some(s) => Slots {
            used: s.current_used_slots.max(0) as u32,
            // -1: the bound is unknown (e.g. a resource-based slot supplier).
            available: u32::try_from(s.current_available_slots).ok(),
        },
    };
    let mut all = [Slots::default(); 4];
    for kind in SlotKind::ALL {
        all[kind as usize] = slots(match kind {
            SlotKind::WorkflowTask => &h.workflow_task_slots_info,
            SlotKind::Activity => &h.activity_task_slots_info,
            SlotKind::Nexus => &h.nexus_task_slots_info,
            SlotKind::LocalActivity => &h.local_activity_slots_info,
        });
    }
    WorkerSample {
        // Without a host name, each worker instance is its own host.
        host: h
            .host_info
            .as_ref()
            .map(|i| i.host_name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| h.worker_instance_key.clone()),
        running: h.status == WorkerStatus::Running as i32,
        heartbeat_at: h.heartbeat_time.as_ref().and_then(|t| {
            let secs = u64::try_from(t.seconds).ok()?;
            let nanos = u32::try_from(t.nanos).ok()?;
            SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
        }),
        slots: all,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temporalio_common::protos::temporal::api::worker::v1::WorkerHostInfo;

    fn trigger(meta: &str) -> TriggerConfig {
        let yaml = format!(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"t:7233\", taskQueue: orders, targetSlotUtilization: \"0.8\"{meta}}}\n"
        );
        crate::source::dir::parse_file(std::path::Path::new("s.yaml"), &yaml)
            .unwrap()
            .remove(0)
            .triggers
            .remove(0)
    }

    #[test]
    fn the_query_names_the_queue_and_the_version() {
        assert_eq!(worker_query(&trigger("")), "TaskQueue = 'orders'");
        assert_eq!(
            worker_query(&trigger(
                ", workerDeploymentName: omes, workerDeploymentBuildId: v2.0.0"
            )),
            "TaskQueue = 'orders' AND DeploymentName = 'omes' AND BuildId = 'v2.0.0'"
        );
        // KEDA's keys read every queue of the version, so its workers are those of any queue.
        assert_eq!(
            worker_query(&trigger(
                ", workerVersioningType: deployment, deploymentName: omes-deployment, buildId: v2.0.0"
            )),
            "DeploymentName = 'omes-deployment' AND BuildId = 'v2.0.0'"
        );
        assert_eq!(
            worker_query(&trigger(", workerVersioningType: build-id, buildId: b7")),
            "TaskQueue = 'orders' AND BuildId = 'b7'"
        );
        assert_eq!(
            worker_query(&trigger(", buildId: b7")),
            "TaskQueue = 'orders' AND BuildId = 'b7'"
        );
        assert_eq!(
            worker_query(&trigger(", buildId: b7, selectUnversioned: \"true\"")),
            "TaskQueue = 'orders'"
        );
    }

    #[test]
    fn a_heartbeat_becomes_a_sample() {
        let mut h = WorkerHeartbeat {
            worker_instance_key: "k1".into(),
            host_info: Some(WorkerHostInfo {
                host_name: "orders-worker-7d9f".into(),
                ..Default::default()
            }),
            status: WorkerStatus::Running as i32,
            heartbeat_time: Some(Default::default()),
            activity_task_slots_info: Some(WorkerSlotsInfo {
                current_available_slots: 1,
                current_used_slots: 9,
                ..Default::default()
            }),
            workflow_task_slots_info: Some(WorkerSlotsInfo {
                current_available_slots: -1,
                current_used_slots: 2,
                ..Default::default()
            }),
            ..Default::default()
        };
        if let Some(t) = &mut h.heartbeat_time {
            (t.seconds, t.nanos) = (1_700_000_000, 5);
        }
        let s = sample(&h);
        assert_eq!(s.host, "orders-worker-7d9f");
        assert!(s.running);
        assert_eq!(
            s.heartbeat_at,
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );
        assert_eq!(
            s.slots(SlotKind::Activity),
            Slots {
                used: 9,
                available: Some(1)
            }
        );
        assert_eq!(
            s.slots(SlotKind::WorkflowTask),
            Slots {
                used: 2,
                available: None
            }
        );
        assert_eq!(
            s.slots(SlotKind::Nexus),
            Slots {
                used: 0,
                available: Some(0)
            }
        );
        let shutting = WorkerHeartbeat {
            status: WorkerStatus::ShuttingDown as i32,
            host_info: None,
            ..h
        };
        let s = sample(&shutting);
        assert!(!s.running);
        assert_eq!(s.host, "k1");
    }
}
