//! `temporal-autoscaler explain`: one evaluation of a scaler against the real Temporal server,
//! printed as the decision walk (raw stats per queue type → per-trigger recommendation → max →
//! stabilization → policies → clamps → final) with the rule behind each step. Never writes.

use crate::decide::{self, History, Input, Pause};
use crate::report::metrics::Metrics;
use crate::source::dir::parse_file;
use crate::spec::{EndpointSource, ScalerConfig};
use crate::target::Targets;
use crate::temporal::TemporalPool;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Explain every scaler in `file` (or the one named). `current` overrides the replica count;
/// otherwise it is read from `/scale` when a cluster is reachable, else minReplicaCount.
pub async fn explain(
    file: &Path,
    name: Option<&str>,
    current: Option<u32>,
) -> Result<String, String> {
    let content = std::fs::read_to_string(file)
        .map_err(|e| format!("{}: cannot read: {e}", file.display()))?;
    let configs = parse_file(file, &content).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let configs: Vec<ScalerConfig> = configs
        .into_iter()
        .filter(|c| name.is_none_or(|n| c.name == n))
        .collect();
    if configs.is_empty() {
        return Err(format!(
            "{}: no scaler named {}",
            file.display(),
            name.unwrap_or("?")
        ));
    }
    let cluster = if current.is_none() {
        crate::agent::detect_cluster().await.ok()
    } else {
        None
    };
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let mut out = String::new();
    for cfg in &configs {
        explain_one(&mut out, cfg, &pool, cluster.as_ref(), current).await;
    }
    out.push_str("No writes were made.\n");
    Ok(out)
}

async fn explain_one(
    out: &mut String,
    cfg: &ScalerConfig,
    pool: &Arc<TemporalPool>,
    cluster: Option<&kube::Client>,
    current: Option<u32>,
) {
    let _ = writeln!(
        out,
        "TemporalScaler {}/{} → {} ({})",
        cfg.namespace, cfg.name, cfg.target, cfg.target.api_version
    );
    let current = match (current, cluster) {
        (Some(n), _) => {
            let _ = writeln!(out, "  current replicas: {n} (given)");
            n
        }
        (None, Some(client)) => match Targets::kube(client.clone(), true)
            .target(&cfg.namespace, &cfg.target, 0)
            .replicas()
            .await
        {
            Ok(n) => {
                let _ = writeln!(out, "  current replicas: {n} (from /scale)");
                n
            }
            Err(e) => {
                let _ = writeln!(
                    out,
                    "  current replicas: {} (assumed minReplicaCount; /scale: {e})",
                    cfg.min_replicas
                );
                cfg.min_replicas
            }
        },
        (None, None) => {
            let _ = writeln!(
                out,
                "  current replicas: {} (assumed minReplicaCount; no cluster)",
                cfg.min_replicas
            );
            cfg.min_replicas
        }
    };

    let results = futures::future::join_all(cfg.triggers.iter().map(|t| pool.query(t))).await;
    let readings: Vec<_> = cfg
        .triggers
        .iter()
        .zip(&results)
        .map(|(t, r)| crate::scaler::reading(t, r))
        .collect();
    let now = Instant::now();
    // A fresh evaluation: no history, and long enough observed that no start-up hold applies.
    let long_ago = now
        .checked_sub(Duration::from_secs(86_400 * 7))
        .unwrap_or(now);
    let input = Input {
        config: cfg,
        current,
        readings: &readings,
        now,
        observing_since: long_ago,
        started_at: long_ago,
        pause: Pause::from_annotations(&cfg.annotations),
    };
    let d = decide::decide(&input, &History::default());

    for ((t, res), rec) in cfg.triggers.iter().zip(&results).zip(&d.triggers) {
        let endpoint = match &t.endpoint {
            EndpointSource::Literal(e) => e.clone(),
            EndpointSource::FromEnv(v) => format!("${v}"),
        };
        let _ = writeln!(
            out,
            "  trigger {}: {}/{} on {endpoint}, targetQueueSize {}, active above {}",
            t.name, t.namespace, t.task_queue, t.target_queue_size, t.activation_target_queue_size
        );
        match res {
            Err(e) => {
                let _ = writeln!(out, "    read failed: {e}");
            }
            Ok(stats) => {
                for (qt, s) in &stats.per_type {
                    let _ = writeln!(
                        out,
                        "    {:<9} backlog {:<6} oldest {:>8.1}s  add {:.2}/s  dispatch {:.2}/s{}",
                        qt.as_str(),
                        s.backlog,
                        s.backlog_age.as_secs_f64(),
                        s.tasks_add_rate,
                        s.tasks_dispatch_rate,
                        if s.rate_limited { "  rate limited" } else { "" }
                    );
                }
                if let Some(n) = stats.running_workflows {
                    let _ = writeln!(out, "    running workflows: {n}");
                }
                let _ = writeln!(
                    out,
                    "    total     backlog {:<6} oldest {:>8.1}s → {} replica(s) [{}]{}",
                    stats.backlog,
                    stats.backlog_age.as_secs_f64(),
                    rec.replicas.map_or("-".into(), |n| n.to_string()),
                    serde_json::to_value(rec.basis)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    if rec.active {
                        ", active"
                    } else {
                        ", not active"
                    }
                );
            }
        }
    }
    let _ = writeln!(
        out,
        "  decision (empty history, as a freshly started agent):"
    );
    for (i, s) in d.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "    {}. {:<18} {:>4}   {}",
            i + 1,
            s.rule.to_string(),
            s.replicas,
            s.detail
        );
    }
    let verdict = match d.desired.cmp(&current) {
        std::cmp::Ordering::Greater => "would scale up",
        std::cmp::Ordering::Less => "would scale down",
        std::cmp::Ordering::Equal => "no change",
    };
    let _ = writeln!(out, "  final: {} (from {current}): {verdict}\n", d.desired);
}
