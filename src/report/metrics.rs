//! Prometheus metrics (OpenMetrics text via prometheus-client). Names are a contract:
//! `temporal_queue_size`, `temporal_scaler_scale_up_total`, `temporal_scaler_scale_down_total`
//! come from the seed document.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub source: String,
    pub namespace: String,
    pub scaler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    pub namespace: String,
    pub scaler: String,
    pub trigger: String,
    pub temporal_namespace: String,
    pub task_queue: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TriggerErrorLabels {
    pub namespace: String,
    pub scaler: String,
    pub trigger: String,
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: String,
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    pub queue_size: Family<QueueLabels, Gauge>,
    pub backlog_age: Family<QueueLabels, Gauge<f64, AtomicU64>>,
    pub scale_up: Family<ScalerLabels, Counter>,
    pub scale_down: Family<ScalerLabels, Counter>,
    pub desired: Family<ScalerLabels, Gauge>,
    pub current: Family<ScalerLabels, Gauge>,
    pub trigger_errors: Family<TriggerErrorLabels, Counter>,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub rpc_latency: Family<MethodLabels, Histogram>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let queue_size = Family::<QueueLabels, Gauge>::default();
        registry.register(
            "temporal_queue_size",
            "Task queue backlog (approximate_backlog_count summed over queue types)",
            queue_size.clone(),
        );
        let backlog_age = Family::<QueueLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "temporal_queue_backlog_age_seconds",
            "Age of the oldest task in the backlog",
            backlog_age.clone(),
        );
        let scale_up = Family::<ScalerLabels, Counter>::default();
        registry.register(
            "temporal_scaler_scale_up",
            "Scale-up operations",
            scale_up.clone(),
        );
        let scale_down = Family::<ScalerLabels, Counter>::default();
        registry.register(
            "temporal_scaler_scale_down",
            "Scale-down operations",
            scale_down.clone(),
        );
        let desired = Family::<ScalerLabels, Gauge>::default();
        registry.register(
            "temporal_scaler_desired_replicas",
            "Desired replicas of the target",
            desired.clone(),
        );
        let current = Family::<ScalerLabels, Gauge>::default();
        registry.register(
            "temporal_scaler_current_replicas",
            "Current replicas of the target (from /scale)",
            current.clone(),
        );
        let trigger_errors = Family::<TriggerErrorLabels, Counter>::default();
        registry.register(
            "temporal_scaler_trigger_errors",
            "Failed trigger reads, by error kind",
            trigger_errors.clone(),
        );
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "temporal_rpc_requests",
            "Temporal RPCs by method and gRPC status code",
            rpc_requests.clone(),
        );
        let rpc_latency = Family::<MethodLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ])
        });
        registry.register(
            "temporal_rpc_duration_seconds",
            "Temporal RPC latency",
            rpc_latency.clone(),
        );
        let config_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "temporal_autoscaler_config_reloads",
            "Config directory reloads by result (applied, rejected)",
            config_reloads.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "temporal_autoscaler_leader",
            "1 when this replica holds the lease",
            leader.clone(),
        );
        Metrics {
            registry,
            queue_size,
            backlog_age,
            scale_up,
            scale_down,
            desired,
            current,
            trigger_errors,
            rpc_requests,
            rpc_latency,
            config_reloads,
            leader,
        }
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
