//! Prometheus metrics (OpenMetrics text via prometheus-client). Names are a contract:
//! `temporal_queue_size`, `temporal_scaler_scale_up_total`, `temporal_scaler_scale_down_total`
//! come from the seed document.
//!
//! The per-scaler gauges (queue size, backlog age, desired and current replicas) and the
//! trigger error counter are not kept in metric families: they are encoded at scrape time from
//! the scalers' views in the [`StateStore`], which hold the same numbers. That is one place per
//! figure, no per-tick label hashing, and no series left behind by a removed scaler; with
//! 10,000 scalers the families cost about 1 KB per scaler (and the error counter about 300
//! bytes per failing scaler: on a saturated server, nearly all of 100,000). They are written a
//! page of scalers at a time (a scrape of 10,000 scalers is ~4 MB of text), each page under the
//! state's read lock alone, so the response is streamed; prometheus-client encodes the other
//! families.

use crate::spec::ScalerKey;
use crate::state::{ScalerView, StateStore, TriggerView};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ScalerLabels {
    pub source: String,
    pub namespace: String,
    pub scaler: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetErrorLabels {
    pub namespace: String,
    pub scaler: String,
    pub cluster: String,
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
pub struct EndpointLabels {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

pub struct Metrics {
    registry: Registry,
    /// The scalers whose gauges are written at each scrape (none for tools).
    scalers: Option<StateStore>,
    pub scale_up: Family<ScalerLabels, Counter>,
    pub scale_down: Family<ScalerLabels, Counter>,
    pub target_errors: Family<TargetErrorLabels, Counter>,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub rpc_latency: Family<MethodLabels, Histogram>,
    pub config_reloads: Family<ResultLabels, Counter>,
    pub leader: Gauge,
    /// Ticks running, and scalers due but waiting for a place, per endpoint (the gate of ticks in flight).
    pub ticks_in_flight: Family<EndpointLabels, Gauge>,
    pub ticks_waiting: Family<EndpointLabels, Gauge>,
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
        let target_errors = Family::<TargetErrorLabels, Counter>::default();
        registry.register(
            "temporal_scaler_target_errors",
            "Failed /scale reads and writes of the target, by cluster and error kind",
            target_errors.clone(),
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
        let ticks_in_flight = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "temporal_autoscaler_ticks_in_flight",
            "Scaler ticks running, per Temporal endpoint (at most the gate's bound)",
            ticks_in_flight.clone(),
        );
        let ticks_waiting = Family::<EndpointLabels, Gauge>::default();
        registry.register(
            "temporal_autoscaler_ticks_waiting",
            "Scalers whose poll is due, waiting for a place among their endpoint's ticks in flight",
            ticks_waiting.clone(),
        );
        Metrics {
            registry,
            scalers,
            scale_up,
            scale_down,
            target_errors,
            rpc_requests,
            rpc_latency,
            config_reloads,
            leader,
            ticks_in_flight,
            ticks_waiting,
        }
    }

    /// The whole scrape at once (tests, small agents); `/metrics` streams [`Self::pages`].
    pub fn encode(&self) -> String {
        self.pages().collect()
    }

    /// The scrape in pieces: the registry's families, the per-scaler gauges a page of scalers
    /// at a time, then `# EOF`.
    pub fn pages(&self) -> impl Iterator<Item = String> + Send + 'static {
        let mut head = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode_registry(&mut head, &self.registry);
        let gauges = self.scalers.clone().into_iter().flat_map(|store| {
            GAUGES.iter().flat_map(move |g| GaugePages {
                store: store.clone(),
                gauge: g,
                next: Some(None),
            })
        });
        std::iter::once(head)
            .chain(gauges)
            .chain(std::iter::once("# EOF\n".to_string()))
    }
}

/// One per-scaler family: its name, help, type, and the samples of one scaler's view.
struct ScalerGauge {
    name: &'static str,
    help: &'static str,
    /// `gauge`, or `counter` (whose samples are `<name>_total`).
    kind: &'static str,
    write: fn(&mut String, &'static str, &ScalerView),
}

const GAUGE: &str = "gauge";
const COUNTER: &str = "counter";

const GAUGES: [ScalerGauge; 11] = [
    ScalerGauge {
        name: "temporal_scaler_trigger_errors",
        help: "Failed trigger reads, by error kind",
        kind: COUNTER,
        write: |out, _, v| {
            let (ns, scaler) = names(v);
            for c in &v.trigger_errors {
                let labels = [
                    ("namespace", ns),
                    ("scaler", scaler),
                    ("trigger", &*c.trigger),
                    ("kind", c.kind),
                ];
                sample(
                    out,
                    "temporal_scaler_trigger_errors_total",
                    &labels,
                    c.count,
                );
            }
        },
    },
    ScalerGauge {
        name: "temporal_queue_size",
        help: "Task queue backlog (approximate_backlog_count summed over queue types)",
        kind: GAUGE,
        // A trigger whose last read failed has no series until it reads again.
        write: |out, name, v| {
            for t in &v.triggers {
                if let Some(b) = t.backlog {
                    sample(out, name, &queue_labels(v, t), b);
                }
            }
        },
    },
    ScalerGauge {
        name: "temporal_queue_backlog_age_seconds",
        help: "Age of the oldest task in the backlog",
        kind: GAUGE,
        write: |out, name, v| {
            for t in &v.triggers {
                if let Some(age) = t.backlog_age_seconds {
                    sample(out, name, &queue_labels(v, t), age);
                }
            }
        },
    },
    ScalerGauge {
        name: "temporal_worker_slots_used",
        help: "Worker task slots in use on the trigger's queue, over its slot kinds (targetSlotUtilization)",
        kind: GAUGE,
        write: |out, name, v| {
            for (t, c) in capacities(v) {
                sample(out, name, &queue_labels(v, t), c.slots_used);
            }
        },
    },
    ScalerGauge {
        name: "temporal_worker_slots_available",
        help: "Free worker task slots on the trigger's queue (workers with a known slot bound)",
        kind: GAUGE,
        write: |out, name, v| {
            for (t, c) in capacities(v) {
                sample(out, name, &queue_labels(v, t), c.slots_available);
            }
        },
    },
    ScalerGauge {
        name: "temporal_worker_slot_utilization",
        help: "Utilization of the most constrained slot kind, used / (used + available)",
        kind: GAUGE,
        write: |out, name, v| {
            for (t, c) in capacities(v) {
                if let Some(u) = c.utilization {
                    sample(out, name, &queue_labels(v, t), u);
                }
            }
        },
    },
    ScalerGauge {
        name: "temporal_scaler_desired_replicas",
        help: "Desired replicas of the target",
        kind: GAUGE,
        write: |out, name, v| {
            if let Some(n) = v.desired_replicas {
                sample(out, name, &scaler_labels(v), n);
            }
        },
    },
    ScalerGauge {
        name: "temporal_scaler_current_replicas",
        help: "Current replicas of the target (from /scale)",
        kind: GAUGE,
        write: |out, name, v| {
            if let Some(n) = v.current_replicas {
                sample(out, name, &scaler_labels(v), n);
            }
        },
    },
    ScalerGauge {
        name: "temporal_scaler_cluster_share_replicas",
        help: "Replicas the last decision placed in each cluster of the target (spec.placement)",
        kind: GAUGE,
        write: |out, name, v| {
            for c in &v.clusters {
                if let Some(n) = c.share {
                    sample(out, name, &cluster_labels(v, &c.name), n);
                }
            }
        },
    },
    ScalerGauge {
        name: "temporal_scaler_cluster_current_replicas",
        help: "Current replicas of the target in each of its clusters (last /scale read)",
        kind: GAUGE,
        write: |out, name, v| {
            for c in &v.clusters {
                if let Some(n) = c.current_replicas {
                    sample(out, name, &cluster_labels(v, &c.name), n);
                }
            }
        },
    },
    ScalerGauge {
        name: "temporal_scaler_cluster_reachable",
        help: "1 while a cluster of the target is reachable, 0 once failureThreshold reads failed",
        kind: GAUGE,
        write: |out, name, v| {
            for c in &v.clusters {
                sample(
                    out,
                    name,
                    &cluster_labels(v, &c.name),
                    u8::from(c.reachable),
                );
            }
        },
    },
];

fn cluster_labels<'a>(v: &'a ScalerView, cluster: &'a str) -> [(&'static str, &'a str); 4] {
    let [source, namespace, scaler] = scaler_labels(v);
    [source, namespace, scaler, ("cluster", cluster)]
}

/// The triggers whose capacity signal was read this tick (not failed, not unavailable).
fn capacities(v: &ScalerView) -> impl Iterator<Item = (&TriggerView, &crate::state::CapacityView)> {
    v.triggers.iter().filter_map(|t| {
        t.capacity
            .as_deref()
            .filter(|c| c.unavailable.is_none())
            .map(|c| (t, c))
    })
}

/// The pages of one gauge family: its descriptor with the first page.
struct GaugePages {
    store: StateStore,
    gauge: &'static ScalerGauge,
    /// The key to continue after (`Some(None)`: from the start; `None`: done).
    next: Option<Option<ScalerKey>>,
}

impl Iterator for GaugePages {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let after = self.next.take()?;
        let mut out = String::new();
        if after.is_none() {
            out.push_str(&format!(
                "# HELP {0} {1}\n# TYPE {0} {2}\n",
                self.gauge.name, self.gauge.help, self.gauge.kind
            ));
        }
        self.next = self
            .store
            .visit_page(after.as_ref(), PAGE, |v| {
                (self.gauge.write)(&mut out, self.gauge.name, v)
            })
            .map(Some);
        Some(out)
    }
}

/// Scalers per page of gauges: about 50 KB of text.
const PAGE: usize = 200;

/// One OpenMetrics sample line.
fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    use std::fmt::Write;
    out.push_str(name);
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    // Writing to a String cannot fail.
    let _ = writeln!(out, "}} {value}");
}

fn names(v: &ScalerView) -> (&str, &str) {
    (
        v.namespace.as_deref().unwrap_or_default(),
        v.name.as_deref().unwrap_or_default(),
    )
}

fn scaler_labels(v: &ScalerView) -> [(&'static str, &str); 3] {
    let (ns, scaler) = names(v);
    [
        ("source", v.source.as_str()),
        ("namespace", ns),
        ("scaler", scaler),
    ]
}

fn queue_labels<'a>(v: &'a ScalerView, t: &'a TriggerView) -> [(&'static str, &'a str); 5] {
    let (ns, scaler) = names(v);
    [
        ("namespace", ns),
        ("scaler", scaler),
        ("trigger", &*t.name),
        ("temporal_namespace", &*t.temporal_namespace),
        ("task_queue", &*t.task_queue),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ScalerKey, SourceKind};

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
            ]
            .into();
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

    /// The trigger error counter is kept with the view: one series per trigger and kind that
    /// failed, counting each failure, a counter by type, and gone with the scaler.
    #[test]
    fn trigger_errors_are_counters_read_from_the_views() {
        let state = StateStore::new();
        let metrics = Metrics::with_scalers(state.clone());
        let key = ScalerKey::new(SourceKind::Dir, "shop", "orders");
        let quiet = ScalerKey::new(SourceKind::Dir, "shop", "quiet");
        state.update(&quiet, |v| v.desired_replicas = Some(1));
        for kind in ["timeout", "unavailable", "timeout"] {
            state.update(&key, |v| v.count_trigger_error(&"trigger0".into(), kind));
        }
        state.update(&key, |v| {
            v.count_trigger_error(&"trigger1".into(), "timeout")
        });
        let text = metrics.encode();
        let series: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("temporal_scaler_trigger_errors_total{"))
            .collect();
        assert_eq!(
            series,
            [
                r#"temporal_scaler_trigger_errors_total{namespace="shop",scaler="orders",trigger="trigger0",kind="timeout"} 2"#,
                r#"temporal_scaler_trigger_errors_total{namespace="shop",scaler="orders",trigger="trigger0",kind="unavailable"} 1"#,
                r#"temporal_scaler_trigger_errors_total{namespace="shop",scaler="orders",trigger="trigger1",kind="timeout"} 1"#,
            ],
            "{text}"
        );
        assert!(text.contains("# TYPE temporal_scaler_trigger_errors counter\n"));
        assert_eq!(
            text.matches("# TYPE temporal_scaler_trigger_errors ")
                .count(),
            1
        );
        state.remove(&key);
        assert!(!metrics.encode().contains("scaler=\"orders\""));
    }

    #[test]
    fn cluster_gauges_have_a_series_per_cluster_and_none_for_local_targets() {
        use crate::state::ClusterView;
        let state = StateStore::new();
        let metrics = Metrics::with_scalers(state.clone());
        let key = |name: &str| ScalerKey {
            source: SourceKind::Dir,
            namespace: "shop".into(),
            name: name.into(),
        };
        state.update(&key("orders"), |v| {
            v.clusters = ClusterView::two_one_down().into();
        });
        state.update(&key("plain"), |v| v.current_replicas = Some(1));
        let text = metrics.encode();
        let labels =
            |c: &str| format!(r#"{{source="dir",namespace="shop",scaler="orders",cluster="{c}"}}"#);
        for line in [
            format!(
                "temporal_scaler_cluster_share_replicas{} 6\n",
                labels("local")
            ),
            format!("temporal_scaler_cluster_share_replicas{} 0\n", labels("eu")),
            format!(
                "temporal_scaler_cluster_current_replicas{} 2\n",
                labels("eu")
            ),
            format!("temporal_scaler_cluster_reachable{} 1\n", labels("local")),
            format!("temporal_scaler_cluster_reachable{} 0\n", labels("eu")),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert!(!text.contains(r#"scaler="plain",cluster"#), "{text}");
        assert_eq!(
            text.matches("temporal_scaler_cluster_reachable{").count(),
            2
        );
    }

    #[test]
    fn capacity_gauges_have_one_series_per_scaler_and_trigger() {
        use crate::state::CapacityView;
        let state = StateStore::new();
        let metrics = Metrics::with_scalers(state.clone());
        let key = ScalerKey {
            source: SourceKind::Dir,
            namespace: "shop".into(),
            name: "orders".into(),
        };
        let view = |name: &str, capacity: CapacityView| TriggerView {
            name: name.into(),
            temporal_namespace: "default".into(),
            task_queue: "orders".into(),
            capacity: Some(Box::new(capacity)),
            ..Default::default()
        };
        state.update(&key, |v| {
            v.triggers = vec![
                view(
                    "busy",
                    CapacityView {
                        slots_used: 9,
                        slots_available: 1,
                        utilization: Some(0.9),
                        ..Default::default()
                    },
                ),
                // Unknown bounds: used and free, but no utilization.
                view(
                    "unbounded",
                    CapacityView {
                        slots_used: 3,
                        ..Default::default()
                    },
                ),
                view(
                    "old-server",
                    CapacityView {
                        unavailable: Some("no ListWorkers".into()),
                        ..Default::default()
                    },
                ),
                TriggerView {
                    name: "backlog-only".into(),
                    ..Default::default()
                },
            ]
            .into();
        });
        let text = metrics.encode();
        let labels = |t: &str| {
            format!(
                r#"{{namespace="shop",scaler="orders",trigger="{t}",temporal_namespace="default",task_queue="orders"}}"#
            )
        };
        for line in [
            format!("temporal_worker_slots_used{} 9", labels("busy")),
            format!("temporal_worker_slots_available{} 1", labels("busy")),
            format!("temporal_worker_slot_utilization{} 0.9", labels("busy")),
            format!("temporal_worker_slots_used{} 3", labels("unbounded")),
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in {text}");
        }
        for (family, series) in [
            ("temporal_worker_slots_used", 2),
            ("temporal_worker_slots_available", 2),
            ("temporal_worker_slot_utilization", 1),
        ] {
            let n = text
                .lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .count();
            assert_eq!(n, series, "{family} in {text}");
        }
    }

    #[test]
    fn gauges_come_in_pages_with_one_descriptor_each_and_escaped_labels() {
        let state = StateStore::new();
        let metrics = Metrics::with_scalers(state.clone());
        let n = 2 * PAGE + 50;
        for i in 0..n {
            let key = ScalerKey {
                source: SourceKind::Dir,
                namespace: "shop".into(),
                name: format!("s-{i:04}").into(),
            };
            state.update(&key, |v| {
                v.desired_replicas = Some(1);
                v.triggers = vec![TriggerView {
                    name: "trigger0".into(),
                    task_queue: "q\"1\\x\n".into(),
                    backlog: Some(i as u64),
                    ..Default::default()
                }]
                .into();
            });
        }
        let pages: Vec<String> = metrics.pages().collect();
        // The registry, 3 pages of scalers for each family, and the end.
        assert_eq!(pages.len(), 1 + 3 * GAUGES.len() + 1);
        let text = pages.concat();
        assert_eq!(text, metrics.encode());
        assert!(text.ends_with("# EOF\n"));
        assert_eq!(text.matches("# EOF").count(), 1);
        for family in ["temporal_queue_size", "temporal_scaler_desired_replicas"] {
            assert_eq!(text.matches(&format!("# TYPE {family} gauge\n")).count(), 1);
            let series = text
                .lines()
                .filter(|l| l.starts_with(&format!("{family}{{")))
                .count();
            assert_eq!(series, n, "{family}");
        }
        assert!(
            text.contains(r#"scaler="s-0449",trigger="trigger0",temporal_namespace="",task_queue="q\"1\\x\n"} 449"#),
            "{}",
            &text[..2000]
        );
    }
}
