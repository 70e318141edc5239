//! What a queue read gives: the backlog statistics of a trigger's queue summed over its queue
//! types, with the running-workflow count and the version's status when asked for; and the
//! visibility query of that count.

use crate::spec::{QueueType, Versioning};
use std::time::Duration;
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueueStats;

/// Backlog statistics of one trigger's queue, summed over its queue types.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub backlog: u64,
    /// Age of the oldest task over the selected types.
    pub backlog_age: Duration,
    pub tasks_add_rate: f64,
    pub tasks_dispatch_rate: f64,
    pub rate_limited: bool,
    /// The same, per queue type (default mode), for `explain`.
    pub per_type: Vec<(QueueType, QueueStats)>,
    /// Running workflows on the queue (`includeRunningWorkflowCount`).
    pub running_workflows: Option<u64>,
    /// The Worker Deployment version's status, when the trigger selects one.
    pub version_status: Option<crate::decide::version::VersionStatus>,
}

impl QueueStats {
    pub(super) fn from_proto(s: &TaskQueueStats) -> QueueStats {
        let mut q = QueueStats::default();
        q.add(s);
        q
    }

    pub(super) fn add(&mut self, s: &TaskQueueStats) {
        self.backlog += s.approximate_backlog_count.max(0) as u64;
        if let Some(age) = &s.approximate_backlog_age {
            let age = Duration::new(age.seconds.max(0) as u64, age.nanos.max(0) as u32);
            self.backlog_age = self.backlog_age.max(age);
        }
        self.tasks_add_rate += s.tasks_add_rate as f64;
        self.tasks_dispatch_rate += s.tasks_dispatch_rate as f64;
        self.rate_limited |= s.rate_limiting_active;
    }
}

/// The visibility query of the running-workflow count, as KEDA writes it: the workflows of
/// `queue` that run on the selected Worker Deployment version (`<name>:<build id>`), or on no
/// version when none is selected; the legacy build-id selection scopes by queue only. The
/// literals were validated (letters, digits and `-_./:`).
pub fn running_query(queue: &str, versioning: &Versioning) -> String {
    let q = format!("ExecutionStatus = 'Running' AND TaskQueue = '{queue}'");
    match versioning {
        Versioning::WorkerDeployment { name, build_id, .. } => {
            format!("{q} AND TemporalWorkerDeploymentVersion = '{name}:{build_id}'")
        }
        Versioning::BuildIds { .. } => q,
        Versioning::All => format!("{q} AND TemporalWorkerDeploymentVersion is null"),
    }
}
