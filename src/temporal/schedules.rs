//! Reading a namespace's Schedules (the Schedules signal, `scheduleLeadSeconds`): one paged
//! `ListSchedules` per (endpoint, namespace) per [`SCHEDULE_REFRESH`], shared by every scaler
//! of that namespace, and one `DescribeSchedule` only for a schedule that is new or whose spec
//! changed (the listing has no task queue). Rate limited and counted like every other RPC.
//! A server or identity without the RPCs makes the signal unavailable, never a failure; a
//! failed refresh keeps the last good listing.

use super::error::terr;
use super::{ConnKey, ErrorKind, TemporalError, TemporalPool};
use futures::FutureExt;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeScheduleRequest, ListSchedulesRequest,
};

/// How often a namespace's schedules are listed (not every tick: they change rarely, and
/// their next actions are known minutes ahead).
pub const SCHEDULE_REFRESH: Duration = Duration::from_secs(60);
/// Schedules per ListSchedules page.
const PAGE_SIZE: i32 = 1000;
/// Pages per listing at most.
const MAX_PAGES: usize = 20;

/// One schedule of a namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleEntry {
    pub id: String,
    /// The queue its action starts workflows on; `None` when it starts none.
    pub task_queue: Option<String>,
    pub paused: bool,
    /// Its next action times.
    pub future: Vec<SystemTime>,
    /// The scheduled times of its recent (taken) actions.
    pub recent: Vec<SystemTime>,
}

/// A namespace's schedules, or why there are none to read.
#[derive(Clone, Debug, PartialEq)]
pub enum SchedulesRead {
    Listed(Arc<Vec<ScheduleEntry>>),
    /// No such RPC, or not allowed: the signal is off (said once), the trigger goes on.
    Unavailable(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct SchedulesKey {
    pub(super) conn: ConnKey,
    pub(super) namespace: String,
}

/// What DescribeSchedule said of a schedule, for the spec it was asked for.
#[derive(Clone, Debug)]
pub(super) struct Described {
    spec_hash: u64,
    task_queue: Option<String>,
}

fn time(seconds: i64, nanos: i32) -> Option<SystemTime> {
    let secs = u64::try_from(seconds).ok()?;
    let nanos = u32::try_from(nanos).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

impl TemporalPool {
    /// The schedules of `namespace` on `conn`, listed at most once per [`SCHEDULE_REFRESH`].
    pub(super) async fn schedules_on(
        self: &Arc<Self>,
        conn: ConnKey,
        namespace: &str,
    ) -> SchedulesRead {
        let key = SchedulesKey {
            conn,
            namespace: namespace.to_string(),
        };
        let this = Arc::clone(self);
        let k = key.clone();
        let read = self
            .schedule_reads
            .join_or_start(key.clone(), move || {
                async move { this.list_schedules(&k).await }.boxed()
            })
            .await;
        let mut last = self
            .schedules_last_good
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match read {
            Ok(SchedulesRead::Listed(l)) => {
                last.insert(key, l.clone());
                SchedulesRead::Listed(l)
            }
            Ok(unavailable) => unavailable,
            Err(e) => match last.get(&key) {
                // A failed refresh: the schedules do not change that fast.
                Some(l) => SchedulesRead::Listed(l.clone()),
                None => SchedulesRead::Unavailable(format!("ListSchedules failed: {e}")),
            },
        }
    }

    async fn list_schedules(&self, key: &SchedulesKey) -> Result<SchedulesRead, TemporalError> {
        let slot = self.slot(&key.conn);
        let conn = self.connection(&key.conn, &slot).await?;
        let mut out = Vec::new();
        let mut token = Vec::new();
        for page in 0.. {
            if page == MAX_PAGES {
                return Err(terr(
                    ErrorKind::Other,
                    format!("more than {} schedules", MAX_PAGES * PAGE_SIZE as usize),
                ));
            }
            let req = ListSchedulesRequest {
                namespace: key.namespace.clone(),
                maximum_page_size: PAGE_SIZE,
                next_page_token: std::mem::take(&mut token),
                query: String::new(),
            };
            let mut svc = conn.workflow_service();
            let res = self
                .call(
                    &slot,
                    "ListSchedules",
                    svc.list_schedules(tonic::Request::new(req)),
                )
                .await;
            let resp = match res {
                Ok(r) => r,
                Err(e) if matches!(e.kind, ErrorKind::Unsupported | ErrorKind::Auth) => {
                    return Ok(SchedulesRead::Unavailable(e.message));
                }
                Err(e) => return Err(e),
            };
            for s in resp.schedules {
                let info = s.info.unwrap_or_default();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                // The spec as this process prints it: equal specs print the same.
                format!("{:?}", info.spec).hash(&mut h);
                info.workflow_type
                    .as_ref()
                    .map(|w| w.name.clone())
                    .hash(&mut h);
                let spec_hash = h.finish();
                let task_queue = match self.described(key, &s.schedule_id, spec_hash) {
                    Some(q) => q,
                    None => {
                        let q = self.describe(key, &conn, &slot, &s.schedule_id).await?;
                        self.schedule_specs
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(
                                (key.clone(), s.schedule_id.clone()),
                                Described {
                                    spec_hash,
                                    task_queue: q.clone(),
                                },
                            );
                        q
                    }
                };
                out.push(ScheduleEntry {
                    id: s.schedule_id,
                    task_queue,
                    paused: info.paused,
                    future: info
                        .future_action_times
                        .iter()
                        .filter_map(|t| time(t.seconds, t.nanos))
                        .collect(),
                    recent: info
                        .recent_actions
                        .iter()
                        .filter_map(|a| a.schedule_time.as_ref())
                        .filter_map(|t| time(t.seconds, t.nanos))
                        .collect(),
                });
            }
            if resp.next_page_token.is_empty() {
                break;
            }
            token = resp.next_page_token;
        }
        // Forget the descriptions of schedules that are gone.
        let ids: std::collections::HashSet<&str> = out.iter().map(|s| s.id.as_str()).collect();
        self.schedule_specs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, id), _| k != key || ids.contains(id.as_str()));
        Ok(SchedulesRead::Listed(Arc::new(out)))
    }

    /// The task queue DescribeSchedule gave for this spec, if it was asked already.
    fn described(&self, key: &SchedulesKey, id: &str, spec_hash: u64) -> Option<Option<String>> {
        let specs = self
            .schedule_specs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let d = specs.get(&(key.clone(), id.to_string()))?;
        (d.spec_hash == spec_hash).then(|| d.task_queue.clone())
    }

    async fn describe(
        &self,
        key: &SchedulesKey,
        conn: &temporalio_client::Connection,
        slot: &super::Slot,
        id: &str,
    ) -> Result<Option<String>, TemporalError> {
        let req = DescribeScheduleRequest {
            namespace: key.namespace.clone(),
            schedule_id: id.to_string(),
        };
        let mut svc = conn.workflow_service();
        let res = self
            .call(
                slot,
                "DescribeSchedule",
                svc.describe_schedule(tonic::Request::new(req)),
            )
            .await;
        let resp = match res {
            Ok(r) => r,
            // Deleted between the listing and now: it starts nothing.
            Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        use temporalio_common::protos::temporal::api::schedule::v1::schedule_action::Action;
        Ok(resp
            .schedule
            .and_then(|s| s.action)
            .and_then(|a| a.action)
            .and_then(|a| match a {
                Action::StartWorkflow(w) => w.task_queue.map(|q| q.name),
            }))
    }
}

/// Kept per pool: every schedule's description by (namespace key, id).
pub(super) type Specs = HashMap<(SchedulesKey, String), Described>;
