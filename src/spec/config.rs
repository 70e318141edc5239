//! The typed, validated scaler: what `validate` makes of a raw spec and every stage reads
//! ([`ScalerConfig`], its target, behavior, triggers and their authentication). Secrets are
//! held in [`SecretString`]s, which never print themselves.

use super::{Placement, defaults};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// A value most scalers share (one default, say), written copy-on-write: reading it is a plain
/// deref, and changing one scaler's copy clones it first. 10,000 scalers with the default
/// behavior hold one `Behavior` (112 bytes and two vectors) instead of a copy each.
#[derive(Clone, Debug, PartialEq)]
pub struct Shared<T>(Arc<T>);

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Clone> std::ops::DerefMut for Shared<T> {
    fn deref_mut(&mut self) -> &mut T {
        Arc::make_mut(&mut self.0)
    }
}

impl<T> Shared<T> {
    /// The same value, not an equal copy.
    pub fn same(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<T> From<T> for Shared<T> {
    fn from(v: T) -> Self {
        Shared(Arc::new(v))
    }
}

/// A string that never prints itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A scale target. A spec holds it shared (`Arc`), and each scaler's view in `/scalers` is that
/// same one, not a copy of its strings.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// Borrowed for the common ones (`apps/v1`, `Deployment`, …): no copy per scaler.
    pub api_version: Cow<'static, str>,
    pub kind: Cow<'static, str>,
    pub name: String,
}

impl TargetRef {
    /// The StatefulSet's name when the target is one (`apps`): its pods, and so its workers'
    /// host names, are `<name>-<ordinal>`, and a scale-down removes the highest ordinals.
    pub fn statefulset(&self) -> Option<&str> {
        (self.kind == "StatefulSet" && self.group_version().0 == "apps").then_some(&*self.name)
    }

    /// (group, version); the core group is "".
    pub fn group_version(&self) -> (&str, &str) {
        match self.api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", &self.api_version),
        }
    }
}

/// `s`, borrowed when it is an API version or kind many targets name.
pub fn common_name(s: String) -> Cow<'static, str> {
    const COMMON: [&str; 6] = [
        "apps/v1",
        "Deployment",
        "StatefulSet",
        "ReplicaSet",
        "argoproj.io/v1alpha1",
        "Rollout",
    ];
    match COMMON.iter().find(|c| **c == s) {
        Some(c) => Cow::Borrowed(c),
        None => Cow::Owned(s),
    }
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueType {
    Workflow,
    Activity,
    Nexus,
}

impl QueueType {
    pub const ALL: [QueueType; 3] = [QueueType::Workflow, QueueType::Activity, QueueType::Nexus];
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Workflow => "workflow",
            QueueType::Activity => "activity",
            QueueType::Nexus => "nexus",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelectPolicy {
    Max,
    Min,
    Disabled,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Pods,
    Percent,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    pub kind: PolicyKind,
    pub value: u32,
    pub period: Duration,
}

/// One direction of HPA behavior, with the HPA's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleRules {
    pub stabilization: Duration,
    pub select: SelectPolicy,
    pub policies: Vec<Policy>,
    pub tolerance: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Behavior {
    pub up: ScaleRules,
    pub down: ScaleRules,
}

impl Behavior {
    /// The HPA's defaults, shared by every scaler that keeps them.
    pub fn shared(self) -> Shared<Behavior> {
        static DEFAULT: LazyLock<Shared<Behavior>> =
            LazyLock::new(|| Behavior::hpa_default().into());
        if self == **DEFAULT {
            DEFAULT.clone()
        } else {
            self.into()
        }
    }

    /// The HPA's defaults: up +100% or +4 pods per 15 s (the larger), no window;
    /// down −100% per 15 s after a 300 s window.
    pub fn hpa_default() -> Self {
        let p = |kind, value| Policy {
            kind,
            value,
            period: Duration::from_secs(15),
        };
        Behavior {
            up: ScaleRules {
                stabilization: Duration::from_secs(defaults::SCALE_UP_STABILIZATION as u64),
                select: SelectPolicy::Max,
                policies: vec![p(PolicyKind::Percent, 100), p(PolicyKind::Pods, 4)],
                tolerance: defaults::TOLERANCE,
            },
            down: ScaleRules {
                stabilization: Duration::from_secs(defaults::SCALE_DOWN_STABILIZATION as u64),
                select: SelectPolicy::Max,
                policies: vec![p(PolicyKind::Percent, 100)],
                tolerance: defaults::TOLERANCE,
            },
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Fallback {
    pub failure_threshold: u32,
    pub replicas: u32,
    pub behavior: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndpointSource {
    Literal(String),
    /// Name of an environment variable of the agent, read when connecting.
    FromEnv(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TlsMode {
    Plaintext,
    /// TLS; `skip_verify` is KEDA's `unsafeSsl`.
    Tls {
        skip_verify: bool,
    },
}

/// Where a credential comes from. Environment variables, files and Secrets are read when
/// connecting, so rotated credentials are picked up without a restart.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CredSource {
    /// Given in the spec; PEM material is already decoded from base64.
    Inline(SecretString),
    /// An environment variable of the agent (`apiKeyFromEnv`).
    Env(String),
    /// An absolute path, e.g. a mounted Secret (`apiKeyFile`, `caFile`, `certFile`, `keyFile`).
    File(PathBuf),
    /// A key of a Secret in the scaler's namespace (`secretTargetRef`).
    Secret {
        namespace: String,
        name: String,
        key: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Auth {
    pub tls: TlsMode,
    pub api_key: Option<CredSource>,
    /// A CA to trust (PEM), in every mode.
    pub ca: Option<CredSource>,
    /// The client certificate and its private key (mTLS).
    pub cert: Option<CredSource>,
    pub key: Option<CredSource>,
    pub server_name: Option<String>,
}

impl Auth {
    /// Triggers without credentials share one `Auth` per TLS mode instead of a copy each
    /// (about 350 bytes, times 10,000 scalers).
    pub fn shared(self) -> Arc<Auth> {
        static NONE: LazyLock<[Arc<Auth>; 3]> = LazyLock::new(|| {
            [
                TlsMode::Plaintext,
                TlsMode::Tls { skip_verify: false },
                TlsMode::Tls { skip_verify: true },
            ]
            .map(|tls| {
                Arc::new(Auth {
                    tls,
                    api_key: None,
                    ca: None,
                    cert: None,
                    key: None,
                    server_name: None,
                })
            })
        });
        let none = &NONE[match self.tls {
            TlsMode::Plaintext => 0,
            TlsMode::Tls { skip_verify: false } => 1,
            TlsMode::Tls { skip_verify: true } => 2,
        }];
        if self == **none {
            none.clone()
        } else {
            Arc::new(self)
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Versioning {
    /// Default mode: stats merged over all versions and unversioned.
    All,
    /// Legacy build-id selection (deprecated ENHANCED DescribeTaskQueue).
    BuildIds {
        build_id: Option<Box<str>>,
        select_all_active: bool,
        select_unversioned: bool,
    },
    /// Worker Deployment version.
    WorkerDeployment {
        name: Box<str>,
        build_id: Box<str>,
        scope: DeploymentScope,
    },
}

/// Which task queues of a Worker Deployment version a trigger reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeploymentScope {
    /// `workerDeploymentName` + `workerDeploymentBuildId`: the trigger's `taskQueue`, filtered
    /// to its `queueTypes`.
    TaskQueue,
    /// KEDA's `workerVersioningType: deployment`: every task queue and type of the version,
    /// summed, as KEDA reads it (KEDA uses its `taskQueue` there only to name the metric).
    Version,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TriggerConfig {
    /// The name, namespace and queue are shared with each tick's view of the trigger and its
    /// reading (one allocation each, not one per tick and holder).
    pub name: Arc<str>,
    pub endpoint: EndpointSource,
    pub namespace: Arc<str>,
    pub task_queue: Arc<str>,
    pub queue_types: Box<[QueueType]>,
    pub target_queue_size: f64,
    pub activation_target_queue_size: f64,
    pub auth: Arc<Auth>,
    pub connect_timeout: Duration,
    pub versioning: Versioning,
    /// `targetBacklogAgeSeconds`: add replicas when the oldest task is older.
    pub target_backlog_age_secs: Option<f64>,
    /// `growthLookaheadSeconds`: scale for the backlog expected this far ahead.
    pub growth_lookahead_secs: Option<f64>,
    /// `includeRunningWorkflowCount`: keep one replica while workflows run on the queue.
    pub include_running_workflows: bool,
    /// `workflowTaskQueueForCount`: count the running workflows of this queue instead (an
    /// activity-only queue whose workflows run elsewhere), as KEDA does.
    pub workflow_task_queue_for_count: Option<Box<str>>,
    /// `targetSlotUtilization` (+ `workerHeartbeatMaxAgeSeconds`): the worker-capacity signal
    /// (boxed: with it out of line and the versioning's strings boxed, a trigger's spec fits
    /// 256 bytes, not 320).
    pub capacity: Option<Box<CapacityConfig>>,
    /// `keepWhileDispatching`: a queue whose tasks are being dispatched is active.
    pub keep_while_dispatching: bool,
    /// `scheduleLeadSeconds` (+ companions): pre-scale before the queue's Schedules fire.
    pub schedule: Option<Box<super::schedule::ScheduleConfig>>,
    /// Keys whose values are in the scale target's environment (`<key>FromEnv`): until the
    /// agent has read them, this trigger's values for them are placeholders (`$VAR`).
    pub from_env: Option<Arc<super::env::FromEnv>>,
}

/// The worker-capacity signal of a trigger: slot usage from worker heartbeats (ListWorkers).
#[derive(Clone, Debug, PartialEq)]
pub struct CapacityConfig {
    /// `targetSlotUtilization`, in (0, 1].
    pub target_utilization: f64,
    /// `workerHeartbeatMaxAgeSeconds`: older heartbeats are of workers that are gone.
    pub max_heartbeat_age: Duration,
}

/// A validated scaler: every default applied, every value typed.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalerConfig {
    /// Shared with the scaler's key (the registry's, the state's, the view's): one allocation
    /// each, not four.
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub target: Arc<TargetRef>,
    pub polling_interval: Duration,
    pub cooldown: Duration,
    pub initial_cooldown: Duration,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub idle_replicas: Option<u32>,
    pub fallback: Option<Box<Fallback>>,
    pub behavior: Shared<Behavior>,
    pub triggers: Vec<TriggerConfig>,
    pub annotations: BTreeMap<String, String>,
    /// Consecutive idle reads required (over the cooldown) before scaling to zero.
    pub scale_to_zero_reads: u32,
    /// The clusters of the target: `spec.placement`, or the one of `scaleTargetRef.cluster`.
    pub placement: Placement,
    /// `spec.scaleDown.idleFirst` (default true): deletion costs before a scale-down.
    pub idle_first: bool,
}
