//! Prometheus metrics (OpenMetrics text via prometheus-client). Names are a contract:
//! `temporal_queue_size`, `temporal_scaler_scale_up_total`, `temporal_scaler_scale_down_total`
//! come from the seed document.
//!
//! The per-scaler gauges (queue size, backlog age, desired and current replicas) are not kept
//! in metric families: they are encoded at scrape time from the scalers' views in the
//! [`StateStore`], which hold the same numbers. That is one place per figure, no per-tick label
//! hashing, and no series left behind by a removed scaler; with 10,000 scalers the families
//! cost about 1 KB per scaler.

use crate::report::state::{ScalerView, StateStore, TriggerView};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub source: String,
    pub namespace: String,
    pub scaler: String,
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
    pub scale_up: Family<ScalerLabels, Counter>,
    pub scale_down: Family<ScalerLabels, Counter>,
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
    /// The agent's metrics without per-scaler gauges (tools that only query Temporal).
    pub fn new() -> Self {
        Self::build(None)
    }

    /// The agent's metrics, with the per-scaler gauges read from `scalers` at each scrape.
    pub fn with_scalers(scalers: StateStore) -> Self {
        Self::build(Some(scalers))
    }

    fn build(scalers: Option<StateStore>) -> Self {
        let mut registry = Registry::default();
        if let Some(state) = scalers {
            registry.register_collector(Box::new(ScalerGauges(state)));
        }
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
            scale_up,
            scale_down,
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

/// The per-scaler gauges, encoded from the scalers' views at scrape time. A trigger whose
/// last read failed has no backlog series until it reads again (its backlog is unknown).
struct ScalerGauges(StateStore);

impl std::fmt::Debug for ScalerGauges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScalerGauges")
    }
}

impl Collector for ScalerGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut m = encoder.encode_descriptor(
            "temporal_queue_size",
            "Task queue backlog (approximate_backlog_count summed over queue types)",
            None,
            MetricType::Gauge,
        )?;
        self.0.try_for_each(|v| {
            for t in &v.triggers {
                if let Some(b) = t.backlog {
                    let b = i64::try_from(b).unwrap_or(i64::MAX);
                    ConstGauge::new(b).encode(m.encode_family(&queue_labels(v, t))?)?;
                }
            }
            Ok(())
        })?;
        let mut m = encoder.encode_descriptor(
            "temporal_queue_backlog_age_seconds",
            "Age of the oldest task in the backlog",
            None,
            MetricType::Gauge,
        )?;
        self.0.try_for_each(|v| {
            for t in &v.triggers {
                if let Some(age) = t.backlog_age_seconds {
                    ConstGauge::new(age).encode(m.encode_family(&queue_labels(v, t))?)?;
                }
            }
            Ok(())
        })?;
        type Replicas = fn(&ScalerView) -> Option<u32>;
        let per_scaler: [(&str, &str, Replicas); 2] = [
            (
                "temporal_scaler_desired_replicas",
                "Desired replicas of the target",
                |v| v.desired_replicas,
            ),
            (
                "temporal_scaler_current_replicas",
                "Current replicas of the target (from /scale)",
                |v| v.current_replicas,
            ),
        ];
        for (name, help, value) in per_scaler {
            let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            self.0.try_for_each(|v| {
                let Some(n) = value(v) else { return Ok(()) };
                let (ns, scaler) = names(v);
                let labels = [
                    ("source", v.source.as_str()),
                    ("namespace", ns),
                    ("scaler", scaler),
                ];
                ConstGauge::new(i64::from(n)).encode(m.encode_family(&labels)?)
            })?;
        }
        Ok(())
    }
}

fn names(v: &ScalerView) -> (&str, &str) {
    (
        v.namespace.as_deref().unwrap_or_default(),
        v.name.as_deref().unwrap_or_default(),
    )
}

fn queue_labels<'a>(v: &'a ScalerView, t: &'a TriggerView) -> [(&'static str, &'a str); 5] {
    let (ns, scaler) = names(v);
    [
        ("namespace", ns),
        ("scaler", scaler),
        ("trigger", t.name.as_str()),
        ("temporal_namespace", t.temporal_namespace.as_str()),
        ("task_queue", t.task_queue.as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{ScalerKey, SourceKind};

    #[test]
    fn scaler_gauges_are_read_from_the_views_and_go_with_them() {
        let state = StateStore::new();
        let metrics = Metrics::with_scalers(state.clone());
        let key = ScalerKey {
            source: SourceKind::Crd,
            namespace: "shop".into(),
            name: "orders".into(),
        };
        state.update(&key, |v| {
            v.desired_replicas = Some(3);
            v.current_replicas = Some(2);
            v.triggers = vec![
                TriggerView {
                    name: "trigger0".into(),
                    temporal_namespace: "prod".into(),
                    task_queue: "orders".into(),
                    backlog: Some(12),
                    backlog_age_seconds: Some(1.5),
                    ..Default::default()
                },
                // A failing trigger: its backlog is unknown, so it has no series.
                TriggerView {
                    name: "trigger1".into(),
                    error: Some("unavailable".into()),
                    ..Default::default()
                },
            ];
        });
        let text = metrics.encode();
        let queue = r#"{namespace="shop",scaler="orders",trigger="trigger0",temporal_namespace="prod",task_queue="orders"}"#;
        for line in [
            format!("temporal_queue_size{queue} 12\n"),
            format!("temporal_queue_backlog_age_seconds{queue} 1.5\n"),
            r#"temporal_scaler_desired_replicas{source="crd",namespace="shop",scaler="orders"} 3"#
                .to_string()
                + "\n",
            r#"temporal_scaler_current_replicas{source="crd",namespace="shop",scaler="orders"} 2"#
                .to_string()
                + "\n",
            "# TYPE temporal_queue_size gauge\n".to_string(),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains("trigger1"), "{text}");

        state.remove(&key);
        let text = metrics.encode();
        assert!(!text.contains("orders"), "{text}");
        assert!(
            text.contains("# TYPE temporal_scaler_desired_replicas gauge"),
            "{text}"
        );
    }
}
