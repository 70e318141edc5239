//! `temporal-autoscaler explain`: one evaluation of a scaler against the real Temporal server,
//! printed as the decision walk (raw stats per queue type → per-trigger recommendation → max →
//! stabilization → policies → clamps → final) with the rule behind each step. Never writes.

use crate::clusters::{ClusterSpec, Clusters};
use crate::decide::{self, History, Input, Pause};
use crate::metrics::Metrics;
use crate::source::dir::parse_file;
use crate::spec::{EndpointSource, ScalerConfig};
use crate::target::Targets;
use crate::target::fleet::{Current, Fleet};
use crate::temporal::{TemporalPool, WorkersRead};
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
    clusters: &[ClusterSpec],
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
        .filter(|c| name.is_none_or(|n| *c.name == *n))
        .collect();
    if configs.is_empty() {
        return Err(format!(
            "{}: no scaler named {}",
            file.display(),
            name.unwrap_or("?")
        ));
    }
    let home = if current.is_none() {
        crate::agent::detect_cluster(crate::deadline::DEFAULT_KUBE_TIMEOUT)
            .await
            .ok()
    } else {
        None
    };
    // Read-only targets: the agent's own cluster (if any) and the remote ones it would use.
    let targets = if current.is_none() && (home.is_some() || !clusters.is_empty()) {
        Targets::with_clusters(Arc::new(Clusters::new(home, clusters)), true)
    } else {
        Targets::Simulated
    };
    let pool = TemporalPool::new(Arc::new(Metrics::new()));
    let mut out = String::new();
    for cfg in &configs {
        explain_one(&mut out, cfg, &pool, &targets, current).await;
    }
    out.push_str("No writes were made.\n");
    Ok(out)
}

async fn explain_one(
    out: &mut String,
    cfg: &ScalerConfig,
    pool: &Arc<TemporalPool>,
    targets: &Targets,
    current: Option<u32>,
) {
    let _ = writeln!(
        out,
        "TemporalScaler {}/{} → {} ({})",
        cfg.namespace, cfg.name, cfg.target, cfg.target.api_version
    );
    let mut fleet = Fleet::new(targets, &Arc::new(cfg.clone()));
    let current = match current {
        Some(n) => {
            let _ = writeln!(out, "  current replicas: {n} (given)");
            n
        }
        None if matches!(targets, Targets::Simulated) => {
            let _ = writeln!(
                out,
                "  current replicas: {} (assumed minReplicaCount; no cluster)",
                cfg.min_replicas
            );
            cfg.min_replicas
        }
        None => match fleet.read().await {
            Current::Total(n) if cfg.placement.is_local() => {
                let _ = writeln!(out, "  current replicas: {n} (from /scale)");
                n
            }
            Current::Total(n) => {
                let _ = writeln!(
                    out,
                    "  current replicas: {n} (from /scale, summed over the reachable clusters)"
                );
                n
            }
            Current::Unreadable(e) => {
                let _ = writeln!(
                    out,
                    "  current replicas: {} (assumed minReplicaCount; /scale: {e})",
                    cfg.min_replicas
                );
                cfg.min_replicas
            }
        },
    };

    // KEDA's `<key>FromEnv`: read from the target's container (then this process's env).
    let (resolved, env_failed) = match crate::scaler::env::resolve(cfg, &fleet).await {
        Some((r, failed)) => (Some(r), failed),
        None if cfg.triggers.iter().any(|t| t.from_env.is_some()) => {
            let _ = writeln!(
                out,
                "  the scale target's environment could not be read (its API server did not answer)"
            );
            (None, Default::default())
        }
        None => (None, Default::default()),
    };
    let cfg = resolved.as_ref().unwrap_or(cfg);
    let reads: Vec<crate::temporal::TriggerRead> = futures::future::join_all(
        cfg.triggers
            .iter()
            .map(|t| pool.read_or(t, cfg.polling_interval, env_failed.get(&t.name))),
    )
    .await;
    let wall = std::time::SystemTime::now();
    // A fresh evaluation has learned nothing of the schedules' runs.
    let memory = crate::decide::schedule::ScheduleMemory::default();
    let mut schedule_views = Vec::new();
    let readings: Vec<_> = cfg
        .triggers
        .iter()
        .zip(&reads)
        .map(|(t, (r, w, s))| {
            let mut reading =
                crate::scaler::reading(t, cfg.target.statefulset(), r, w.as_ref(), wall);
            let version = reading.signals.version_status;
            let (signal, _, views) =
                crate::scaler::schedule_signal(t, s.as_ref(), version, &memory, wall);
            if reading.backlog.is_ok() {
                reading.signals.schedule = signal;
            }
            schedule_views.push(views);
            reading
        })
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

    for (i, ((t, (res, workers, _)), rec)) in
        cfg.triggers.iter().zip(&reads).zip(&d.triggers).enumerate()
    {
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
                if let Some(v) = stats.version_status {
                    let _ = writeln!(
                        out,
                        "    version status: {} (floor {} of minReplicaCount {})",
                        v.as_str(),
                        decide::version::floor(cfg.min_replicas, Some(v)),
                        cfg.min_replicas
                    );
                }
                explain_capacity(out, t, workers.as_ref(), &readings[i]);
                explain_schedules(out, t, &schedule_views[i], reads[i].2.as_ref());
                if t.keep_while_dispatching {
                    let _ = writeln!(
                        out,
                        "    keepWhileDispatching: dispatch {:.2}/s{}",
                        stats.tasks_dispatch_rate,
                        if stats.tasks_dispatch_rate > 0.0 {
                            " → active, at least 1 replica"
                        } else {
                            ""
                        }
                    );
                }
                let _ = writeln!(
                    out,
                    "    total     backlog {:<6} oldest {:>8.1}s → {} replica(s) [{}]{}",
                    stats.backlog,
                    stats.backlog_age.as_secs_f64(),
                    rec.replicas.map_or("-".into(), |n| n.to_string()),
                    rec.basis.as_str(),
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
    let _ = writeln!(out, "  final: {} (from {current}): {verdict}", d.desired);
    if !cfg.placement.is_local() {
        explain_placement(out, cfg, &mut fleet, d.desired);
    }
    if d.desired < current && cfg.idle_first {
        explain_idle_first(out, &mut fleet, d.desired, &readings).await;
    }
    out.push('\n');
}

/// For a scale-down: which pods are busy (kept longest) and which go first. With a cluster,
/// the target's pods as the agent would rank them (a dry run: nothing is written); without,
/// the worker hosts, which are the pods' names.
async fn explain_idle_first(
    out: &mut String,
    fleet: &mut Fleet,
    total: u32,
    readings: &[decide::TriggerReading],
) {
    use crate::decide::idle_first::{self, Steer};
    let Some(hosts) = idle_first::hosts(readings) else {
        return;
    };
    let _ = writeln!(
        out,
        "  idle pods first (the scale-down removes idle pods first):"
    );
    let plan = fleet.plan(total);
    let steered = fleet.steer(&plan.writes, &hosts).await;
    if steered.iter().all(Option::is_none) {
        // No pods to list (no cluster): the worker hosts are the pods.
        let busy: Vec<String> = hosts
            .iter()
            .filter(|h| h.1 > 0)
            .map(|(h, n)| format!("{h} ({n})"))
            .collect();
        let idle: Vec<&str> = hosts
            .iter()
            .filter(|h| h.1 == 0)
            .map(|h| h.0.as_str())
            .collect();
        let _ = writeln!(
            out,
            "    busy hosts, kept longest (slots in use): {}",
            if busy.is_empty() {
                "none".into()
            } else {
                busy.join(", ")
            }
        );
        let _ = writeln!(
            out,
            "    idle hosts, removed first: {}",
            if idle.is_empty() {
                "none".into()
            } else {
                idle.join(", ")
            }
        );
        return;
    }
    for (i, res) in steered.into_iter().enumerate() {
        let Some(res) = res else { continue };
        let cluster = crate::spec::placement_name(fleet.name(i));
        match res {
            Err(e) => {
                let _ = writeln!(out, "    {cluster}: cannot list the pods: {e}");
            }
            Ok(done) => match done.steer {
                Steer::Unmatched => {
                    let _ = writeln!(
                        out,
                        "    {cluster}: none of the {} pod(s) is a worker host: the scale-down would go by the count alone",
                        done.pods
                    );
                }
                Steer::Costs {
                    writes, busy, idle, ..
                } => {
                    let busy: Vec<String> =
                        busy.iter().map(|(p, n)| format!("{p} ({n})")).collect();
                    let _ = writeln!(
                        out,
                        "    {cluster}: {} pod(s); busy, kept longest (slots in use): {}; {idle} idle pod(s) removed first; {} deletion cost(s) to write",
                        done.pods,
                        if busy.is_empty() {
                            "none".into()
                        } else {
                            busy.join(", ")
                        },
                        writes.len()
                    );
                }
            },
        }
    }
}

/// Where the total goes: each cluster's bounds, reachability, count and share, and the
/// write it would get now.
fn explain_placement(out: &mut String, cfg: &ScalerConfig, fleet: &mut Fleet, total: u32) {
    let p = &cfg.placement;
    let plan = fleet.plan(total);
    let _ = writeln!(
        out,
        "  placement ({:?}, a cluster is unreachable after {} failed reads):",
        p.policy, p.failure_threshold
    );
    for (i, c) in p.clusters.iter().enumerate() {
        let m = &fleet.members[i];
        let now = match (&m.read, &m.error) {
            (Some(n), _) => format!("{n} now"),
            (None, Some(e)) => format!("unread ({e})"),
            (None, None) => "not read".to_string(),
        };
        let write = match plan.writes[i] {
            Some(n) => format!("would write {n}"),
            None => "no write".to_string(),
        };
        let _ = writeln!(
            out,
            "    {:<12} weight {:<4} [{}, {}]  {}{}  share {}  {write}",
            c.name,
            c.weight,
            c.min,
            c.max,
            now,
            if m.reachable(p.failure_threshold) {
                ""
            } else {
                ", unreachable"
            },
            plan.shares[i],
        );
    }
}

/// The capacity signal of a trigger: the heartbeats read, per slot kind, and what they ask.
fn explain_capacity(
    out: &mut String,
    t: &crate::spec::TriggerConfig,
    workers: Option<&Result<WorkersRead, crate::temporal::TemporalError>>,
    reading: &decide::TriggerReading,
) {
    let Some(c) = &t.capacity else { return };
    let _ = writeln!(
        out,
        "    capacity: targetSlotUtilization {}, heartbeats newer than {}s (ListWorkers {:?})",
        c.target_utilization,
        c.max_heartbeat_age.as_secs(),
        crate::temporal::worker_query(t)
    );
    match (workers, &reading.signals.capacity) {
        (Some(Ok(WorkersRead::Unavailable(why))), _) => {
            let _ = writeln!(
                out,
                "      capacity signal unavailable ({why}): the backlog alone decides"
            );
        }
        (_, Some(sig)) => {
            let cap = &sig.capacity;
            let _ = writeln!(
                out,
                "      {} worker(s) on {} host(s) counted, {} left out (stale or not running)",
                cap.workers, cap.hosts, cap.ignored
            );
            for k in &cap.kinds {
                let _ = writeln!(
                    out,
                    "      {:<13} used {:<4} free {:<4} utilization {}  busy on {} host(s)",
                    k.kind.as_str(),
                    k.used,
                    k.available,
                    k.utilization
                        .map_or("unknown".to_string(), |u| format!("{:.0}%", u * 100.0)),
                    k.busy_floor
                );
            }
            match (cap.utilization, cap.constrained) {
                (Some(u), Some(kind)) => {
                    let _ = writeln!(
                        out,
                        "      most constrained: {} at {:.0}% → ceil({} × {:.2} / {}) = {} replica(s); busy floor {}",
                        kind.as_str(),
                        u * 100.0,
                        cap.hosts,
                        u,
                        sig.target,
                        (cap.hosts as f64 * u / sig.target).ceil(),
                        busy_floor(cap)
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "      no known slot bound: busy floor {}",
                        busy_floor(cap)
                    );
                }
            }
        }
        _ => {}
    }
}

/// The busy floor and what set it: the busy hosts, or a StatefulSet's highest busy ordinal.
fn busy_floor(cap: &crate::decide::capacity::Capacity) -> String {
    match cap.highest_busy_ordinal {
        Some(o) if o.saturating_add(1) == cap.busy_floor => {
            format!("{} (StatefulSet: busy ordinal {o} + 1)", cap.busy_floor)
        }
        _ => format!("{} (busy hosts)", cap.busy_floor),
    }
}

/// `schedule nightly fires at 02:00:00Z in 1m58s; nothing learned yet → 1`, per schedule on
/// the trigger's queue (Schedules signal).
fn explain_schedules(
    out: &mut String,
    t: &crate::spec::TriggerConfig,
    views: &[crate::state::ScheduleView],
    read: Option<&crate::temporal::SchedulesRead>,
) {
    let Some(c) = &t.schedule else { return };
    if let Some(crate::temporal::SchedulesRead::Unavailable(why)) = read {
        let _ = writeln!(out, "    schedules: unavailable ({why})");
        return;
    }
    if views.is_empty() {
        let _ = writeln!(
            out,
            "    schedules: none starts workflows on {}",
            t.task_queue
        );
    }
    for v in views {
        let when = match (&v.next_action_time, v.next_action_in_seconds) {
            (Some(at), Some(secs)) => format!("fires at {at} in {}", short_duration(secs)),
            _ => "has no next action".to_string(),
        };
        let learned = match v.learned_replicas {
            Some(n) => format!("last run needed {n} → {n}"),
            None => format!(
                "nothing learned yet → {} (scheduleMinReplicas)",
                c.min_replicas
            ),
        };
        let paused = if v.paused {
            "; paused: counts for nothing"
        } else {
            ""
        };
        let window = match v.next_action_in_seconds {
            Some(s) if !v.paused && s <= c.lead.as_secs_f64() => ", within its lead",
            _ => "",
        };
        let _ = writeln!(
            out,
            "    schedule {} {when}{window}; {learned}{paused}",
            v.id
        );
    }
}

/// `1m58s`, `12s`, `2h3m`.
fn short_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}
