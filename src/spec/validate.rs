//! Validation: raw spec → typed [`ScalerConfig`], collecting every error with its field path.
//! Secret values (API keys, private keys) never appear in an error.

use super::{
    Placement, ScalerDocument, TemporalScalerSpec, TriggerSpec, defaults, {API_VERSION, KIND},
};
use base64::Engine;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

/// One problem in a spec, with its place. `value` is `None` for secrets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub path: String,
    pub value: Option<String>,
    pub expected: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(v) => write!(f, "{}: got {v}, expected {}", self.path, self.expected),
            None => write!(f, "{}: expected {}", self.path, self.expected),
        }
    }
}

/// The known name closest to `word` (case-insensitive edit distance), if it is close enough
/// to be a typo: at most 1 edit for short names, up to 3 for long ones.
pub fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    let limit = (w.chars().count() / 4).clamp(1, 3);
    known
        .iter()
        .map(|k| (edit_distance(&w, &k.to_ascii_lowercase()), *k))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// serde's unknown-field message (`unknown field `x`, expected one of `a`, `b``) with the
/// closest known field suggested.
pub fn with_suggestion(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("unknown field `") else {
        return msg.to_string();
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return msg.to_string();
    };
    let known: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match closest(field, &known) {
        Some(c) => format!("{msg}; did you mean `{c}`?"),
        None => msg.to_string(),
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

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetRef {
    pub api_version: String,
    pub kind: String,
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
            None => ("", self.api_version.as_str()),
        }
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
        build_id: Option<String>,
        select_all_active: bool,
        select_unversioned: bool,
    },
    /// Worker Deployment version.
    WorkerDeployment {
        name: String,
        build_id: String,
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
    pub name: String,
    pub endpoint: EndpointSource,
    pub namespace: String,
    pub task_queue: String,
    pub queue_types: Vec<QueueType>,
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
    /// `targetSlotUtilization` (+ `workerHeartbeatMaxAgeSeconds`): the worker-capacity signal.
    pub capacity: Option<CapacityConfig>,
    /// `keepWhileDispatching`: a queue whose tasks are being dispatched is active.
    pub keep_while_dispatching: bool,
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
    pub namespace: String,
    pub name: String,
    pub target: TargetRef,
    pub polling_interval: Duration,
    pub cooldown: Duration,
    pub initial_cooldown: Duration,
    pub min_replicas: u32,
    pub max_replicas: u32,
    pub idle_replicas: Option<u32>,
    pub fallback: Option<Fallback>,
    pub behavior: Behavior,
    pub triggers: Vec<TriggerConfig>,
    pub annotations: BTreeMap<String, String>,
    /// Consecutive idle reads required (over the cooldown) before scaling to zero.
    pub scale_to_zero_reads: u32,
    /// The clusters of the target: `spec.placement`, or the one of `scaleTargetRef.cluster`.
    pub placement: Placement,
    /// `spec.scaleDown.idleFirst` (default true): deletion costs before a scale-down.
    pub idle_first: bool,
}

/// Trigger metadata keys we understand (ours and KEDA's).
const TRIGGER_KEYS: &[&str] = &[
    "endpoint",
    "endpointFromEnv",
    "namespace",
    "taskQueue",
    "queueTypes",
    "targetQueueSize",
    "activationTargetQueueSize",
    "apiKey",
    "apiKeyFromEnv",
    "apiKeyFile",
    "allowApiKeyWithoutTls",
    "ca",
    "caFile",
    "cert",
    "certFile",
    "key",
    "keyFile",
    "tlsServerName",
    "unsafeSsl",
    "tls",
    "buildId",
    "selectAllActive",
    "selectUnversioned",
    "workerDeploymentName",
    "workerDeploymentBuildId",
    "workerVersioningType",
    "deploymentName",
    "minConnectTimeout",
    "targetBacklogAgeSeconds",
    "growthLookaheadSeconds",
    "includeRunningWorkflowCount",
    "targetSlotUtilization",
    "workerHeartbeatMaxAgeSeconds",
    "keepWhileDispatching",
];
const SECRET_KEYS: &[&str] = &["apiKey", "key", "cert", "ca"];

/// KEDA's `keyPassword` (the password of an encrypted client key) has no equivalent: no
/// maintained decryption crate is in the dependency tree, and a decrypted key works the same.
pub const ENCRYPTED_KEY_HINT: &str = "encrypted client keys are not supported: decrypt the key \
     (`openssl pkey -in tls.key -out tls-decrypted.key` asks for its password) and give the \
     decrypted key";

pub(super) struct Errors(pub(super) Vec<FieldError>);

impl Errors {
    pub(super) fn push(
        &mut self,
        path: impl Into<String>,
        value: Option<String>,
        expected: impl Into<String>,
    ) {
        self.0.push(FieldError {
            path: path.into(),
            value,
            expected: expected.into(),
        });
    }
}

pub(super) fn show(v: impl fmt::Debug) -> Option<String> {
    Some(format!("{v:?}"))
}

/// Validate a file document (checks apiVersion/kind, then the spec).
pub fn validate(doc: &ScalerDocument) -> Result<ScalerConfig, Vec<FieldError>> {
    let mut errs = Errors(Vec::new());
    if doc.api_version != API_VERSION {
        errs.push(
            "apiVersion",
            show(&doc.api_version),
            format!("{API_VERSION:?}"),
        );
    }
    if doc.kind != KIND {
        errs.push("kind", show(&doc.kind), format!("{KIND:?}"));
    }
    let namespace = doc
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let cfg = validate_spec(
        &mut errs,
        &doc.metadata.name,
        &namespace,
        &doc.spec,
        doc.metadata.annotations.clone(),
    );
    if errs.0.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.0)
    }
}

/// Validate a spec whose object identity is already known (custom resources).
pub fn validate_object(
    name: &str,
    namespace: &str,
    spec: &TemporalScalerSpec,
    annotations: BTreeMap<String, String>,
) -> Result<ScalerConfig, Vec<FieldError>> {
    let mut errs = Errors(Vec::new());
    let cfg = validate_spec(&mut errs, name, namespace, spec, annotations);
    if errs.0.is_empty() {
        Ok(cfg)
    } else {
        Err(errs.0)
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// A DNS label (RFC 1123): what namespaces and cluster names must be.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && !s.contains('.') && is_dns_subdomain(s)
}

fn secs(
    errs: &mut Errors,
    path: &str,
    v: Option<i32>,
    default: i32,
    min: i32,
    max: i32,
) -> Duration {
    let v = v.unwrap_or(default);
    if v < min || v > max {
        errs.push(path, show(v), format!("an integer from {min} to {max}"));
        return Duration::from_secs(default.max(0) as u64);
    }
    Duration::from_secs(v as u64)
}

fn validate_spec(
    errs: &mut Errors,
    name: &str,
    namespace: &str,
    spec: &TemporalScalerSpec,
    annotations: BTreeMap<String, String>,
) -> ScalerConfig {
    if !is_dns_subdomain(name) {
        errs.push(
            "metadata.name",
            show(name),
            "a DNS subdomain name (lowercase letters, digits, '-', '.')",
        );
    }
    if !is_dns_label(namespace) {
        errs.push(
            "metadata.namespace",
            show(namespace),
            "a DNS label (lowercase letters, digits, '-')",
        );
    }

    let target = validate_target(errs, spec);
    let polling_interval = secs(
        errs,
        "spec.pollingInterval",
        spec.polling_interval,
        defaults::POLLING_INTERVAL,
        1,
        86_400,
    );
    let cooldown = secs(
        errs,
        "spec.cooldownPeriod",
        spec.cooldown_period,
        defaults::COOLDOWN_PERIOD,
        0,
        86_400,
    );
    let initial_cooldown = secs(
        errs,
        "spec.initialCooldownPeriod",
        spec.initial_cooldown_period,
        0,
        0,
        86_400,
    );

    let min = spec
        .min_replica_count
        .unwrap_or(defaults::MIN_REPLICA_COUNT);
    let max = spec
        .max_replica_count
        .unwrap_or(defaults::MAX_REPLICA_COUNT);
    if min < 0 {
        errs.push("spec.minReplicaCount", show(min), "an integer ≥ 0");
    }
    if max < 1 {
        errs.push("spec.maxReplicaCount", show(max), "an integer ≥ 1");
    }
    if min > max {
        errs.push(
            "spec.minReplicaCount",
            show(min),
            format!("≤ maxReplicaCount ({max})"),
        );
    }
    let idle = spec.idle_replica_count;
    if let Some(i) = idle
        && (i < 0 || i >= min.max(0))
    {
        errs.push(
            "spec.idleReplicaCount",
            show(i),
            format!("an integer ≥ 0 and < minReplicaCount ({min})"),
        );
    }

    let fallback = spec.fallback.as_ref().map(|f| {
        if f.failure_threshold < 1 {
            errs.push(
                "spec.fallback.failureThreshold",
                show(f.failure_threshold),
                "an integer ≥ 1",
            );
        }
        if f.replicas < 0 {
            errs.push("spec.fallback.replicas", show(f.replicas), "an integer ≥ 0");
        }
        let behavior = f.behavior.clone().unwrap_or_else(|| "static".into());
        const FB: &[&str] = &[
            "static",
            "currentReplicas",
            "currentReplicasIfHigher",
            "currentReplicasIfLower",
        ];
        if !FB.contains(&behavior.as_str()) {
            errs.push(
                "spec.fallback.behavior",
                show(&behavior),
                format!("one of {}", FB.join(", ")),
            );
        }
        Fallback {
            failure_threshold: f.failure_threshold.max(1) as u32,
            replicas: f.replicas.max(0) as u32,
            behavior,
        }
    });

    let behavior = validate_behavior(errs, spec);
    let placement = super::placement::validate(errs, spec, min, max);
    let zero_reads = spec
        .advanced
        .as_ref()
        .and_then(|a| a.scale_to_zero_reads)
        .unwrap_or(defaults::SCALE_TO_ZERO_READS);
    if !(1..=1000).contains(&zero_reads) {
        errs.push(
            "spec.advanced.scaleToZeroReads",
            show(zero_reads),
            "an integer from 1 to 1000",
        );
    }
    for (k, v) in &annotations {
        match k.as_str() {
            crate::decide::PAUSED
                if !matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "false") =>
            {
                errs.push(
                    format!("metadata.annotations.{k}"),
                    show(v),
                    "\"true\" or \"false\"",
                );
            }
            crate::decide::PAUSED_REPLICAS if v.trim().parse::<u32>().is_err() => {
                errs.push(
                    format!("metadata.annotations.{k}"),
                    show(v),
                    "a replica count (an integer ≥ 0)",
                );
            }
            _ => {}
        }
    }

    if spec.triggers.is_empty() {
        errs.push(
            "spec.triggers",
            None,
            "at least one trigger of type \"temporal\"",
        );
    }
    let mut triggers = Vec::new();
    for (i, t) in spec.triggers.iter().enumerate() {
        if let Some(tc) = validate_trigger(errs, namespace, i, t) {
            if triggers.iter().any(|o: &TriggerConfig| o.name == tc.name) {
                errs.push(
                    format!("spec.triggers[{i}].name"),
                    show(&tc.name),
                    "a name unique among the triggers",
                );
            }
            triggers.push(tc);
        }
    }
    // Configs live as long as their scalers (10,000 of them): no spare capacity.
    triggers.shrink_to_fit();

    ScalerConfig {
        namespace: namespace.to_string(),
        name: name.to_string(),
        target,
        polling_interval,
        cooldown,
        initial_cooldown,
        min_replicas: min.max(0) as u32,
        max_replicas: max.max(1) as u32,
        idle_replicas: idle.map(|i| i.max(0) as u32),
        fallback,
        behavior,
        triggers,
        annotations,
        scale_to_zero_reads: zero_reads.clamp(1, 1000) as u32,
        placement,
        idle_first: spec
            .scale_down
            .as_ref()
            .and_then(|s| s.idle_first)
            .unwrap_or(true),
    }
}

/// Kinds of the built-in groups that have a `/scale` subresource; other groups resolve by
/// discovery at run time.
fn known_builtin_kinds(api_version: &str) -> Option<&'static [&'static str]> {
    match api_version {
        "apps/v1" => Some(&["Deployment", "StatefulSet", "ReplicaSet"]),
        "v1" => Some(&["ReplicationController"]),
        "batch/v1" => Some(&[]),
        _ => None,
    }
}

fn validate_target(errs: &mut Errors, spec: &TemporalScalerSpec) -> TargetRef {
    let r = &spec.scale_target_ref;
    let api_version = r.api_version.clone().unwrap_or_else(|| "apps/v1".into());
    let kind = r.kind.clone().unwrap_or_else(|| "Deployment".into());
    let gv_ok = match api_version.split_once('/') {
        Some((g, v)) => is_dns_subdomain(g) && is_dns_label(v),
        None => is_dns_label(&api_version),
    };
    if !gv_ok {
        errs.push(
            "spec.scaleTargetRef.apiVersion",
            show(&api_version),
            "\"group/version\" or \"v1\"",
        );
    } else if let Some(kinds) = known_builtin_kinds(&api_version) {
        if !kinds.contains(&kind.as_str()) {
            errs.push(
                "spec.scaleTargetRef.kind",
                show(&kind),
                format!(
                    "a kind of {api_version} with a /scale subresource ({})",
                    kinds.join(", ")
                ),
            );
        }
    } else if kind.is_empty() || !kind.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
        errs.push(
            "spec.scaleTargetRef.kind",
            show(&kind),
            "a Kind name such as Rollout",
        );
    }
    if !is_dns_subdomain(&r.name) {
        errs.push(
            "spec.scaleTargetRef.name",
            show(&r.name),
            "the name of the workload to scale",
        );
    }
    TargetRef {
        api_version,
        kind,
        name: r.name.clone(),
    }
}

fn validate_behavior(errs: &mut Errors, spec: &TemporalScalerSpec) -> Behavior {
    let mut b = Behavior::hpa_default();
    let Some(raw) = spec
        .advanced
        .as_ref()
        .and_then(|a| a.horizontal_pod_autoscaler_config.as_ref())
        .and_then(|h| h.behavior.as_ref())
    else {
        return b;
    };
    for (dir, rules, out) in [
        ("scaleUp", &raw.scale_up, &mut b.up),
        ("scaleDown", &raw.scale_down, &mut b.down),
    ] {
        let Some(rules) = rules else { continue };
        let base = format!("spec.advanced.horizontalPodAutoscalerConfig.behavior.{dir}");
        if let Some(w) = rules.stabilization_window_seconds {
            out.stabilization = secs(
                errs,
                &format!("{base}.stabilizationWindowSeconds"),
                Some(w),
                0,
                0,
                3600,
            );
        }
        if let Some(p) = &rules.select_policy {
            out.select = match p.as_str() {
                "Max" => SelectPolicy::Max,
                "Min" => SelectPolicy::Min,
                "Disabled" => SelectPolicy::Disabled,
                _ => {
                    errs.push(
                        format!("{base}.selectPolicy"),
                        show(p),
                        "one of Max, Min, Disabled",
                    );
                    SelectPolicy::Max
                }
            };
        }
        if let Some(t) = rules.tolerance {
            if !(0.0..1.0).contains(&t) {
                errs.push(format!("{base}.tolerance"), show(t), "a number ≥ 0 and < 1");
            } else {
                out.tolerance = t;
            }
        }
        if let Some(policies) = &rules.policies {
            if policies.is_empty() && out.select != SelectPolicy::Disabled {
                errs.push(
                    format!("{base}.policies"),
                    None,
                    "at least one policy (or selectPolicy: Disabled)",
                );
            }
            out.policies = policies
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let path = format!("{base}.policies[{i}]");
                    let kind = match p.type_.as_str() {
                        "Pods" => PolicyKind::Pods,
                        "Percent" => PolicyKind::Percent,
                        _ => {
                            errs.push(format!("{path}.type"), show(&p.type_), "Pods or Percent");
                            PolicyKind::Pods
                        }
                    };
                    if p.value < 1 {
                        errs.push(format!("{path}.value"), show(p.value), "an integer ≥ 1");
                    }
                    let period = secs(
                        errs,
                        &format!("{path}.periodSeconds"),
                        Some(p.period_seconds),
                        15,
                        1,
                        1800,
                    );
                    Policy {
                        kind,
                        value: p.value.max(1) as u32,
                        period,
                    }
                })
                .collect();
        }
    }
    b
}

fn parse_bool(errs: &mut Errors, path: &str, v: Option<&String>) -> Option<bool> {
    match v.map(|s| s.to_ascii_lowercase()) {
        None => None,
        Some(s) if s == "true" => Some(true),
        Some(s) if s == "false" => Some(false),
        Some(_) => {
            errs.push(
                path,
                show(v.map(String::as_str).unwrap_or_default()),
                "\"true\" or \"false\"",
            );
            None
        }
    }
}

/// Go-style durations as KEDA writes them ("5s", "500ms", "1m"), or plain seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Ok(n) = s.parse::<f64>() {
        return (n >= 0.0 && n.is_finite()).then(|| Duration::from_secs_f64(n));
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    if !(n >= 0.0 && n.is_finite()) {
        return None;
    }
    let factor = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(n * factor))
}

/// PEM given inline or as base64 of PEM (the seed's `$(cat ca.crt | base64)`).
pub fn decode_pem(s: &str) -> Option<Vec<u8>> {
    if s.contains("-----BEGIN") {
        return Some(s.as_bytes().to_vec());
    }
    let compact: String = s.split_whitespace().collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()?;
    String::from_utf8_lossy(&bytes)
        .contains("-----BEGIN")
        .then_some(bytes)
}

fn validate_endpoint(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .unwrap_or(s);
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            !host.is_empty() && !host.contains('/') && port.parse::<u16>().is_ok_and(|p| p > 0)
        }
        None => false,
    }
}

fn validate_trigger(
    errs: &mut Errors,
    scaler_namespace: &str,
    i: usize,
    t: &TriggerSpec,
) -> Option<TriggerConfig> {
    let base = format!("spec.triggers[{i}]");
    if t.type_ != "temporal" {
        errs.push(format!("{base}.type"), show(&t.type_), "\"temporal\"");
        return None;
    }
    let m = &t.metadata;
    let before = errs.0.len();
    let p = |k: &str| format!("{base}.metadata.{k}");
    for k in m.keys() {
        if k == "keyPassword" {
            // A password: never shown.
            errs.push(p(k), None, format!("no keyPassword ({ENCRYPTED_KEY_HINT})"));
        } else if !TRIGGER_KEYS.contains(&k.as_str()) {
            let hint = closest(k, TRIGGER_KEYS)
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            errs.push(
                p(k),
                None,
                format!("a known key ({}){hint}", TRIGGER_KEYS.join(", ")),
            );
        }
    }
    let get = |k: &str| m.get(k).filter(|v| !v.trim().is_empty());
    let value_of = |k: &str| {
        if SECRET_KEYS.contains(&k) {
            None
        } else {
            m.get(k).map(|v| format!("{v:?}"))
        }
    };

    let endpoint = match (get("endpoint"), get("endpointFromEnv")) {
        (Some(_), Some(_)) => {
            errs.push(
                p("endpointFromEnv"),
                None,
                "only one of endpoint and endpointFromEnv",
            );
            None
        }
        (Some(e), None) => {
            if !validate_endpoint(e) {
                errs.push(
                    p("endpoint"),
                    value_of("endpoint"),
                    "host:port, optionally with http:// or https://",
                );
            }
            Some(EndpointSource::Literal(e.trim().to_string()))
        }
        (None, Some(v)) => Some(EndpointSource::FromEnv(v.trim().to_string())),
        (None, None) => {
            errs.push(
                p("endpoint"),
                None,
                "the Temporal frontend address (host:port), or endpointFromEnv",
            );
            None
        }
    };
    let namespace = get("namespace")
        .cloned()
        .unwrap_or_else(|| defaults::NAMESPACE.to_string());
    let task_queue = match get("taskQueue") {
        Some(q) if q.len() <= 1000 => q.clone(),
        Some(q) => {
            errs.push(
                p("taskQueue"),
                show(q.len()),
                "a task queue name of at most 1000 bytes",
            );
            String::new()
        }
        None => {
            errs.push(p("taskQueue"), None, "the name of the task queue to watch");
            String::new()
        }
    };
    let mut queue_types = Vec::new();
    match get("queueTypes") {
        None => queue_types.extend(QueueType::ALL),
        Some(s) => {
            for part in s.split(',').map(str::trim) {
                let qt = match part.to_ascii_lowercase().as_str() {
                    "workflow" => QueueType::Workflow,
                    "activity" => QueueType::Activity,
                    "nexus" => QueueType::Nexus,
                    _ => {
                        errs.push(
                            p("queueTypes"),
                            value_of("queueTypes"),
                            "a comma-separated list of workflow, activity, nexus",
                        );
                        break;
                    }
                };
                if !queue_types.contains(&qt) {
                    queue_types.push(qt);
                }
            }
        }
    }
    let number = |errs: &mut Errors, k: &str, default: f64, positive: bool| -> f64 {
        match get(k) {
            None => default,
            Some(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() && (n > 0.0 || (!positive && n == 0.0)) => n,
                _ => {
                    let what = if positive {
                        "a number > 0"
                    } else {
                        "a number ≥ 0"
                    };
                    errs.push(p(k), value_of(k), format!("{what}, as a string (\"5\")"));
                    default
                }
            },
        }
    };
    let target_queue_size = number(errs, "targetQueueSize", defaults::TARGET_QUEUE_SIZE, true);
    let activation = number(
        errs,
        "activationTargetQueueSize",
        defaults::ACTIVATION_TARGET_QUEUE_SIZE,
        false,
    );
    let optional = |errs: &mut Errors, k: &str, positive: bool| {
        get(k).is_some().then(|| number(errs, k, 1.0, positive))
    };
    let target_backlog_age_secs = optional(errs, "targetBacklogAgeSeconds", true);
    let growth_lookahead_secs = optional(errs, "growthLookaheadSeconds", true);
    let include_running_workflows = parse_bool(
        errs,
        &p("includeRunningWorkflowCount"),
        get("includeRunningWorkflowCount"),
    )
    .unwrap_or(false);
    // The queue name goes into a visibility query: no quotes or escapes.
    if include_running_workflows && !query_safe(&task_queue) {
        errs.push(
            p("taskQueue"),
            value_of("taskQueue"),
            "no quotes, backslashes or control characters with includeRunningWorkflowCount",
        );
    }

    let (capacity, keep_while_dispatching) = capacity_keys(errs, &p, &get, &value_of);
    // Queue, deployment and build id go into a visibility query (ListWorkers): no quotes or
    // escapes.
    if capacity.is_some() {
        for k in [
            "taskQueue",
            "workerDeploymentName",
            "workerDeploymentBuildId",
            "deploymentName",
            "buildId",
        ] {
            if get(k).is_some_and(|v| !query_safe(v)) {
                errs.push(
                    p(k),
                    value_of(k),
                    "no quotes, backslashes or control characters with targetSlotUtilization",
                );
            }
        }
    }

    // Each credential has one source: inline, environment (API key), file, or Secret.
    let secret_ref = |param: &str| t.secret_target_ref.iter().find(|r| r.parameter == param);
    let credential = |errs: &mut Errors, param: &str, env: Option<&str>, pem: Option<&str>| {
        let file_key = format!("{param}File");
        let mut given: Vec<(String, CredSource)> = Vec::new();
        if let Some(v) = get(param) {
            let inline = match pem {
                None => Some(v.trim().to_string()),
                Some(what) => {
                    let d = decode_pem(v).map(|b| String::from_utf8_lossy(&b).into_owned());
                    if d.is_none() {
                        errs.push(p(param), None, format!("{what}, or base64 of one"));
                    }
                    d
                }
            };
            if let Some(i) = inline {
                given.push((param.to_string(), CredSource::Inline(SecretString::new(i))));
            }
        }
        if let Some(var) = env.and_then(|e| get(e).map(|v| (e, v))) {
            given.push((var.0.to_string(), CredSource::Env(var.1.trim().to_string())));
        }
        if let Some(f) = get(&file_key) {
            let path = PathBuf::from(f.trim());
            if !path.is_absolute() {
                errs.push(p(&file_key), value_of(&file_key), "an absolute path");
            }
            given.push((file_key.clone(), CredSource::File(path)));
        }
        if let Some(r) = secret_ref(param) {
            given.push((
                "secretTargetRef".to_string(),
                CredSource::Secret {
                    namespace: scaler_namespace.to_string(),
                    name: r.name.clone(),
                    key: r.key.clone(),
                },
            ));
        }
        if given.len() > 1 {
            let names: Vec<&str> = given.iter().map(|(k, _)| k.as_str()).collect();
            errs.push(
                p(&given[1].0),
                None,
                format!("one source for {param}, not {}", names.join(" and ")),
            );
        }
        given.into_iter().next().map(|(_, s)| s)
    };
    let api_key = credential(errs, "apiKey", Some("apiKeyFromEnv"), None);
    let ca = credential(errs, "ca", None, Some("a PEM certificate"));
    let cert = credential(errs, "cert", None, Some("a PEM certificate"));
    let key = credential(errs, "key", None, Some("a PEM private key"));
    for (i, r) in t.secret_target_ref.iter().enumerate() {
        let rp = format!("{base}.secretTargetRef[{i}]");
        if r.parameter == "keyPassword" {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                format!("one of apiKey, ca, cert, key ({ENCRYPTED_KEY_HINT})"),
            );
        } else if !["apiKey", "ca", "cert", "key"].contains(&r.parameter.as_str()) {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                "one of apiKey, ca, cert, key",
            );
        } else if t.secret_target_ref[..i]
            .iter()
            .any(|o| o.parameter == r.parameter)
        {
            errs.push(
                format!("{rp}.parameter"),
                show(&r.parameter),
                "each parameter at most once",
            );
        }
        if !is_dns_subdomain(&r.name) {
            errs.push(format!("{rp}.name"), show(&r.name), "a Secret name");
        }
        if r.key.is_empty() {
            errs.push(format!("{rp}.key"), None, "a key of the Secret's data");
        }
    }
    if cert.is_some() != key.is_some() {
        errs.push(
            p(if cert.is_some() { "key" } else { "cert" }),
            None,
            "cert and key together (mTLS), each inline, as a file or from a Secret",
        );
    }
    // Inline material can be checked now; files and Secrets are checked when connecting.
    if let (Some(CredSource::Inline(c)), Some(CredSource::Inline(k))) = (&cert, &key)
        && let Err(e) = crate::temporal::tls::check_identity(c.expose(), k.expose())
    {
        errs.push(p("key"), None, e);
    }
    if let Some(CredSource::Inline(c)) = &ca
        && let Err(e) = crate::temporal::tls::check_ca(c.expose())
    {
        errs.push(p("ca"), None, e);
    }
    let server_name = get("tlsServerName").cloned();
    let unsafe_ssl = parse_bool(errs, &p("unsafeSsl"), get("unsafeSsl")).unwrap_or(false);
    if unsafe_ssl && ca.is_some() {
        errs.push(
            p("unsafeSsl"),
            value_of("unsafeSsl"),
            "either unsafeSsl (no verification) or a CA to verify with, not both",
        );
    }
    let explicit_tls = parse_bool(errs, &p("tls"), get("tls"));
    let scheme_tls = match &endpoint {
        Some(EndpointSource::Literal(e)) if e.starts_with("https://") => Some(true),
        Some(EndpointSource::Literal(e)) if e.starts_with("http://") => Some(false),
        _ => None,
    };
    if let (Some(a), Some(b)) = (explicit_tls, scheme_tls)
        && a != b
    {
        errs.push(
            p("tls"),
            value_of("tls"),
            "a value that agrees with the endpoint's scheme",
        );
    }
    let allow_plain_key = parse_bool(
        errs,
        &p("allowApiKeyWithoutTls"),
        get("allowApiKeyWithoutTls"),
    )
    .unwrap_or(false);
    let wants_tls = ca.is_some() || cert.is_some() || server_name.is_some() || unsafe_ssl;
    let tls_on = explicit_tls
        .or(scheme_tls)
        .unwrap_or(wants_tls || (api_key.is_some() && !allow_plain_key));
    if !tls_on {
        if api_key.is_some() && !allow_plain_key {
            errs.push(
                p("apiKey"),
                None,
                "TLS for an API key (remove tls: \"false\" / the http:// scheme), or \
                 allowApiKeyWithoutTls: \"true\" for a trusted plaintext proxy",
            );
        }
        if wants_tls {
            errs.push(
                p("tls"),
                value_of("tls"),
                "TLS when ca, cert, key, tlsServerName or unsafeSsl is set",
            );
        }
    }
    let tls = if tls_on {
        TlsMode::Tls {
            skip_verify: unsafe_ssl,
        }
    } else {
        TlsMode::Plaintext
    };

    let connect_timeout = match get("minConnectTimeout") {
        None => Duration::from_secs(defaults::MIN_CONNECT_TIMEOUT_SECS),
        Some(s) => parse_duration(s)
            .filter(|d| !d.is_zero())
            .unwrap_or_else(|| {
                errs.push(
                    p("minConnectTimeout"),
                    value_of("minConnectTimeout"),
                    "a duration such as \"5s\" or \"500ms\"",
                );
                Duration::from_secs(defaults::MIN_CONNECT_TIMEOUT_SECS)
            }),
    };

    let versioning = versioning_keys(errs, &p, &get, &value_of);

    let name = t.name.clone().unwrap_or_else(|| format!("trigger{i}"));
    if errs.0.len() > before {
        return None;
    }
    Some(TriggerConfig {
        name,
        endpoint: endpoint?,
        namespace,
        task_queue,
        queue_types,
        target_queue_size,
        activation_target_queue_size: activation,
        auth: Auth {
            tls,
            api_key,
            ca,
            cert,
            key,
            server_name,
        }
        .shared(),
        connect_timeout,
        versioning,
        target_backlog_age_secs,
        growth_lookahead_secs,
        include_running_workflows,
        capacity,
        keep_while_dispatching,
    })
}

/// The version selector: ours (`workerDeploymentName` + `workerDeploymentBuildId`; `buildId`,
/// `selectAllActive`, `selectUnversioned`) or KEDA's (`workerVersioningType` with
/// `deploymentName` and `buildId`), with KEDA's rules for its keys. Mixing the two for one
/// selector is an error naming both fields.
fn versioning_keys<'a>(
    errs: &mut Errors,
    p: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<&'a String>,
    value_of: &dyn Fn(&str) -> Option<String>,
) -> Versioning {
    let all_active =
        parse_bool(errs, &p("selectAllActive"), get("selectAllActive")).unwrap_or(false);
    let unversioned =
        parse_bool(errs, &p("selectUnversioned"), get("selectUnversioned")).unwrap_or(false);
    let build_id = get("buildId");
    let deployment_name = get("deploymentName");
    let ours = ["workerDeploymentName", "workerDeploymentBuildId"];
    // An error at `k` when it is set.
    let conflict = |errs: &mut Errors, k: &str, expected: &str| {
        if get(k).is_some() {
            errs.push(p(k), value_of(k), expected);
        }
    };
    match get("workerVersioningType").map(|v| v.trim()) {
        Some("deployment") => {
            for k in ours {
                conflict(
                    errs,
                    k,
                    "either workerVersioningType: deployment (with deploymentName and buildId) \
                     or workerDeploymentName with workerDeploymentBuildId, not both",
                );
            }
            for k in ["selectAllActive", "selectUnversioned"] {
                conflict(
                    errs,
                    k,
                    "no build-id selection with workerVersioningType: deployment",
                );
            }
            // KEDA's rule: its deployment read covers every queue type of the version.
            conflict(
                errs,
                "queueTypes",
                "no queueTypes with workerVersioningType: deployment (it reads every task \
                 queue and type of the version, as KEDA does; for one queue's types use \
                 workerDeploymentName with workerDeploymentBuildId)",
            );
            match (deployment_name, build_id) {
                (Some(n), Some(b)) => Versioning::WorkerDeployment {
                    name: n.trim().to_string(),
                    build_id: b.trim().to_string(),
                    scope: DeploymentScope::Version,
                },
                (n, b) => {
                    if n.is_none() {
                        errs.push(
                            p("deploymentName"),
                            None,
                            "the Worker Deployment's name with workerVersioningType: deployment",
                        );
                    }
                    if b.is_none() {
                        errs.push(
                            p("buildId"),
                            None,
                            "the version's build id with workerVersioningType: deployment",
                        );
                    }
                    Versioning::All
                }
            }
        }
        Some("build-id") => {
            conflict(
                errs,
                "deploymentName",
                "no deploymentName with workerVersioningType: build-id (deploymentName \
                 belongs to workerVersioningType: deployment)",
            );
            for k in ours {
                conflict(
                    errs,
                    k,
                    "either workerVersioningType: build-id or workerDeploymentName with \
                     workerDeploymentBuildId, not both",
                );
            }
            // KEDA would send an empty version selection, a read the agent does not make.
            if build_id.is_none() && !all_active && !unversioned {
                errs.push(
                    p("buildId"),
                    None,
                    "a build id with workerVersioningType: build-id",
                );
            }
            Versioning::BuildIds {
                build_id: build_id.map(|b| b.trim().to_string()),
                select_all_active: all_active,
                select_unversioned: unversioned,
            }
        }
        Some("none") => {
            for k in ["buildId", "deploymentName"].iter().chain(&ours) {
                conflict(
                    errs,
                    k,
                    &format!("no {k} with workerVersioningType: none (it selects no version)"),
                );
            }
            for (k, on) in [
                ("selectAllActive", all_active),
                ("selectUnversioned", unversioned),
            ] {
                if on {
                    errs.push(
                        p(k),
                        value_of(k),
                        format!("no {k} with workerVersioningType: none (it selects no version)"),
                    );
                }
            }
            Versioning::All
        }
        Some(_) => {
            errs.push(
                p("workerVersioningType"),
                value_of("workerVersioningType"),
                "none, build-id or deployment",
            );
            Versioning::All
        }
        None => {
            // KEDA rejects deploymentName without workerVersioningType too.
            conflict(
                errs,
                "deploymentName",
                "workerVersioningType: deployment with it (and buildId), or \
                 workerDeploymentName with workerDeploymentBuildId",
            );
            let legacy = build_id.is_some() || all_active || unversioned;
            match (get("workerDeploymentName"), get("workerDeploymentBuildId")) {
                (Some(n), Some(b)) => {
                    if legacy {
                        errs.push(p("buildId"), value_of("buildId"), "either buildId/selectAllActive/selectUnversioned or workerDeploymentName/workerDeploymentBuildId, not both");
                    }
                    Versioning::WorkerDeployment {
                        name: n.clone(),
                        build_id: b.clone(),
                        scope: DeploymentScope::TaskQueue,
                    }
                }
                (Some(_), None) => {
                    errs.push(
                        p("workerDeploymentBuildId"),
                        None,
                        "a build id with workerDeploymentName",
                    );
                    Versioning::All
                }
                (None, Some(_)) => {
                    errs.push(
                        p("workerDeploymentName"),
                        None,
                        "a deployment name with workerDeploymentBuildId",
                    );
                    Versioning::All
                }
                (None, None) if legacy => Versioning::BuildIds {
                    build_id: build_id.cloned(),
                    select_all_active: all_active,
                    select_unversioned: unversioned,
                },
                (None, None) => Versioning::All,
            }
        }
    }
}

/// Safe to put between single quotes in a visibility query.
fn query_safe(v: &str) -> bool {
    !v.chars()
        .any(|c| c == '\'' || c == '"' || c == '\\' || c.is_control())
}

/// `targetSlotUtilization`, `workerHeartbeatMaxAgeSeconds` and `keepWhileDispatching`.
fn capacity_keys<'a>(
    errs: &mut Errors,
    p: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<&'a String>,
    value_of: &dyn Fn(&str) -> Option<String>,
) -> (Option<CapacityConfig>, bool) {
    let number = |errs: &mut Errors, k: &str, ok: &dyn Fn(f64) -> bool, what: &str| {
        let s = get(k)?;
        match s.trim().parse::<f64>() {
            Ok(n) if n.is_finite() && ok(n) => Some(n),
            _ => {
                errs.push(p(k), value_of(k), format!("{what}, as a string"));
                None
            }
        }
    };
    let target = number(
        errs,
        "targetSlotUtilization",
        &|n| n > 0.0 && n <= 1.0,
        "a fraction of the worker slots in use, 0 < x ≤ 1 (\"0.8\")",
    );
    let max_age = number(
        errs,
        "workerHeartbeatMaxAgeSeconds",
        &|n| (1.0..=86_400.0).contains(&n),
        "seconds from 1 to 86400 (\"180\")",
    );
    if max_age.is_some() && get("targetSlotUtilization").is_none() {
        errs.push(
            p("workerHeartbeatMaxAgeSeconds"),
            value_of("workerHeartbeatMaxAgeSeconds"),
            "targetSlotUtilization as well (the heartbeat age applies to the capacity signal)",
        );
    }
    let capacity = target.map(|target_utilization| CapacityConfig {
        target_utilization,
        max_heartbeat_age: Duration::from_secs_f64(
            max_age.unwrap_or(defaults::WORKER_HEARTBEAT_MAX_AGE_SECS),
        ),
    });
    let dispatching = parse_bool(
        errs,
        &p("keepWhileDispatching"),
        get("keepWhileDispatching"),
    );
    (capacity, dispatching.unwrap_or(false))
}
