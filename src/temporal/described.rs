//! Slots of workers that a server lists only in short form. `ListWorkersResponse.workers_info`
//! (full heartbeats, with slot counts) is deprecated; its replacement `workers`
//! (`WorkerListInfo`) names each worker's queue, version, host and status but has no slots, so
//! they are read by `DescribeWorker` (one RPC per worker). A worker's figures on the server
//! change only when it heartbeats (every 60 s by the SDKs' default), so a worker is described
//! again only once its next heartbeat is due: its last answer is reused until then. A worker the
//! listing shows shutting down is not read (it is never counted), and one that stopped
//! heartbeating is read at doubling intervals. The cost is one `DescribeWorker` per running
//! worker per heartbeat period, whatever the polling interval, and each goes through the
//! endpoint's RPC rate limit.

use super::error::terr;
use super::workers::{Listed, sample};
use super::{ConnKey, ErrorKind, Slot, TemporalError, TemporalPool};
use crate::decide::capacity::WorkerSample;
use futures::{StreamExt, stream};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};
use temporalio_client::Connection;
use temporalio_common::protos::temporal::api::{
    enums::v1::WorkerStatus, worker::v1::WorkerListInfo, workflowservice::v1::DescribeWorkerRequest,
};

/// Heartbeat period assumed when a heartbeat does not say its own (a worker's first one).
const UNKNOWN_PERIOD: Duration = Duration::from_secs(10);
/// Bounds on a heartbeat period as a worker reports it.
const MIN_PERIOD: Duration = Duration::from_secs(1);
const MAX_PERIOD: Duration = Duration::from_secs(600);
/// Time the server may take to store a heartbeat the worker sent on time.
const SLACK: Duration = Duration::from_secs(1);
/// A described worker no listing has named for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(600);
/// DescribeWorker calls in flight per listing (the rate limit spaces them out).
const CONCURRENT: usize = 16;

/// The last answer of `DescribeWorker` for one worker.
struct Entry {
    sample: WorkerSample,
    /// When to ask again: once its next heartbeat should be on the server.
    due: Instant,
    /// Reads in a row that found no newer heartbeat.
    misses: u32,
    /// Last time a listing named it.
    listed_at: Instant,
}

/// Per (endpoint, namespace): worker instance key → its last description.
#[derive(Default)]
pub(super) struct Described {
    entries: Mutex<HashMap<(ConnKey, String), HashMap<String, Entry>>>,
}

impl Described {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(ConnKey, String), HashMap<String, Entry>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// When a worker whose heartbeat at `heartbeat_at` (reported `period` apart) was read at
/// `read_at` (wall clock `now`) should be read again: when its next heartbeat is due, plus the
/// server's slack. `misses`: reads in a row, this one included, that found no newer heartbeat
/// (a worker killed without shutting down stays listed for a while): each doubles the wait,
/// up to [`MAX_PERIOD`]; a heartbeat already overdue is read again a period later.
pub(super) fn next_read(
    read_at: Instant,
    now: SystemTime,
    heartbeat_at: Option<SystemTime>,
    period: Option<Duration>,
    misses: u32,
) -> Instant {
    let period = period
        .filter(|p| !p.is_zero())
        .map_or(UNKNOWN_PERIOD, |p| p.clamp(MIN_PERIOD, MAX_PERIOD));
    // A clock ahead of ours gives an age of 0.
    let age = heartbeat_at.map(|at| now.duration_since(at).unwrap_or_default());
    let wait = match age {
        Some(age) if misses == 0 && age < period => period - age + SLACK,
        _ => period
            .saturating_mul(1 << misses.saturating_sub(1).min(10))
            .min(MAX_PERIOD),
    };
    read_at + wait
}

impl TemporalPool {
    /// The listed workers of one short-form page, with their slots: the last description of
    /// each worker whose next heartbeat is not yet due, and a `DescribeWorker` of the others.
    /// A worker gone between the listing and its description is left out. A server without
    /// `DescribeWorker`, or that does not allow it, makes the signal unavailable (`Ok(None)`).
    pub(super) async fn describe_listed(
        &self,
        slot: &Slot,
        conn: &Connection,
        at: &(ConnKey, String),
        page: Vec<WorkerListInfo>,
    ) -> Result<Option<Vec<Listed>>, TemporalError> {
        let now = Instant::now();
        let mut listed = Vec::with_capacity(page.len());
        let mut to_read = Vec::new();
        {
            let mut all = self.described.lock();
            let known = all.entry(at.clone()).or_default();
            for w in page {
                if w.status != WorkerStatus::Running as i32 {
                    // Shutting down or shut down: never counted, so its slots are not read.
                    known.remove(&w.worker_instance_key);
                    listed.push(short(&w, not_running(&w)));
                    continue;
                }
                match known.get_mut(&w.worker_instance_key) {
                    Some(e) if e.due > now => {
                        e.listed_at = now;
                        listed.push(short(&w, e.sample.clone()));
                    }
                    _ => to_read.push(w),
                }
            }
        }
        let reads: Vec<_> = stream::iter(to_read)
            .map(|w| async move {
                let r = self
                    .describe_worker(slot, conn, &at.1, &w.worker_instance_key)
                    .await;
                (w, r)
            })
            .buffer_unordered(CONCURRENT)
            .collect()
            .await;
        let mut all = self.described.lock();
        let known = all.entry(at.clone()).or_default();
        let mut failed = None;
        for (w, r) in reads {
            match r {
                Ok(Some((s, period))) => {
                    let misses = known
                        .get(&w.worker_instance_key)
                        .filter(|e| e.sample.heartbeat_at == s.heartbeat_at)
                        .map_or(0, |e| e.misses + 1);
                    let due = next_read(
                        Instant::now(),
                        SystemTime::now(),
                        s.heartbeat_at,
                        period,
                        misses,
                    );
                    listed.push(short(&w, s.clone()));
                    known.insert(
                        w.worker_instance_key,
                        Entry {
                            sample: s,
                            due,
                            misses,
                            listed_at: now,
                        },
                    );
                }
                // Gone since the listing (or described without a heartbeat): not counted.
                Ok(None) => {
                    known.remove(&w.worker_instance_key);
                }
                Err(e) => failed = Some(e),
            }
        }
        known.retain(|_, e| now.saturating_duration_since(e.listed_at) < FORGET_AFTER);
        match failed {
            Some(e) if matches!(e.kind, ErrorKind::Unsupported | ErrorKind::Auth) => Ok(None),
            Some(e) => Err(e),
            None => Ok(Some(listed)),
        }
    }

    /// One worker's heartbeat and its reported period; `None` when the server no longer has it.
    async fn describe_worker(
        &self,
        slot: &Slot,
        conn: &Connection,
        namespace: &str,
        key: &str,
    ) -> Result<Option<(WorkerSample, Option<Duration>)>, TemporalError> {
        let req = DescribeWorkerRequest {
            namespace: namespace.to_string(),
            worker_instance_key: key.to_string(),
        };
        let mut svc = conn.workflow_service();
        let res = self
            .call(
                slot,
                "DescribeWorker",
                svc.describe_worker(tonic::Request::new(req)),
            )
            .await;
        match res {
            Ok(r) => Ok(r.worker_info.and_then(|i| i.worker_heartbeat).map(|h| {
                let period = h.elapsed_since_last_heartbeat.as_ref().and_then(|d| {
                    Some(Duration::new(
                        u64::try_from(d.seconds).ok()?,
                        u32::try_from(d.nanos).ok()?,
                    ))
                });
                (sample(&h), period)
            })),
            Err(e) if e.kind == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(terr(
                e.kind,
                format!(
                    "DescribeWorker {key} (ListWorkers gave no slots): {}",
                    e.message
                ),
            )),
        }
    }
}

/// A worker the listing shows shutting down or shut down: left out by the decision.
fn not_running(w: &WorkerListInfo) -> WorkerSample {
    WorkerSample {
        host: w.worker_instance_key.clone(),
        running: false,
        heartbeat_at: None,
        slots: Default::default(),
    }
}

/// A short-form worker with the slots of its description; its status is the listing's, the
/// newer of the two.
fn short(w: &WorkerListInfo, mut s: WorkerSample) -> Listed {
    s.running = w.status == WorkerStatus::Running as i32;
    if !w.host_name.is_empty() {
        s.host.clone_from(&w.host_name);
    }
    let v = w.deployment_version.clone().unwrap_or_default();
    Listed {
        task_queue: w.task_queue.clone(),
        deployment: v.deployment_name,
        build_id: v.build_id,
        sample: s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_read_again_when_its_next_heartbeat_is_due() {
        let t = Instant::now();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let s = Duration::from_secs;
        let ago = |secs| Some(now - s(secs));
        // (heartbeat at, reported period, misses, wait until the next read)
        let cases = [
            // A heartbeat 20 s old, every 60 s: the next one is due in 40 s (+ the slack).
            (ago(20), Some(s(60)), 0, s(41)),
            // Just sent: a whole period.
            (ago(0), Some(s(60)), 0, s(61)),
            // Overdue (the worker stopped or is late): a period later, not every listing.
            (ago(90), Some(s(60)), 0, s(60)),
            // No newer heartbeat than last time: a period, then doubling, up to MAX_PERIOD.
            (ago(5), Some(s(60)), 1, s(60)),
            (ago(5), Some(s(60)), 2, s(120)),
            (ago(5), Some(s(60)), 3, s(240)),
            (ago(5), Some(s(60)), 40, MAX_PERIOD),
            // No period reported (a first heartbeat): a short one is assumed.
            (ago(0), None, 0, UNKNOWN_PERIOD + SLACK),
            (ago(0), Some(Duration::ZERO), 0, UNKNOWN_PERIOD + SLACK),
            // Reported periods are bounded; a clock ahead of ours is a fresh heartbeat.
            (Some(now + s(30)), Some(s(7200)), 0, MAX_PERIOD + SLACK),
            (None, Some(s(30)), 0, s(30)),
        ];
        for (at, period, misses, wait) in cases {
            assert_eq!(
                next_read(t, now, at, period, misses),
                t + wait,
                "{at:?} {period:?} {misses}"
            );
        }
    }
}
