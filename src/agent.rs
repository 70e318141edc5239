//! Wiring: the shared [`Context`] (`crate::context`), cluster detection, the lease, the config source feeding the
//! registry, and the HTTP server. `run` is the `temporal-autoscaler run` command.

pub use crate::context::{Context, Extras};
use crate::guard::{Guard, LeaderState, LeaseRunner, LeaseSettings};
use crate::metrics::ResultLabels;
use crate::registry::Registry;
use crate::report::status::StatusWriter;
use crate::settings::Settings;
use crate::source::crd::{self, CrEvent};
use crate::source::dir::{self, ReloadResult};
use crate::target::Targets;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Debounce for directory events, and the periodic re-read that catches missed events.
pub const DIR_DEBOUNCE: Duration = Duration::from_millis(200);
pub const DIR_RESYNC: Duration = Duration::from_secs(30);

/// A background task that stops when its handle is dropped.
pub struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Start the config-directory source feeding a registry; it runs while the guard is held.
pub async fn start_dir_source(ctx: Arc<Context>, dir: PathBuf) -> Result<TaskGuard, crate::Error> {
    start_sources(ctx, Some(dir), None).await
}

/// Start the registry fed by the config directory and/or the custom-resource events; the
/// directory is loaded before this returns. Everything runs while the guard is held.
pub async fn start_sources(
    ctx: Arc<Context>,
    dir: Option<PathBuf>,
    crs: Option<mpsc::Receiver<CrEvent>>,
) -> Result<TaskGuard, crate::Error> {
    let mut registry = Registry::new(ctx.clone());
    let mut watcher = None;
    let dir_rx = match dir {
        Some(dir) => {
            let metrics = ctx.metrics.clone();
            let state = ctx.state.clone();
            let path = dir.clone();
            let hook: dir::ReloadHook = Arc::new(move |result, snap| {
                let label = match result {
                    ReloadResult::Unchanged => return,
                    ReloadResult::Applied => "applied",
                    ReloadResult::Rejected => "rejected",
                };
                state.note_config_load(
                    &path,
                    label,
                    snap.scalers.len(),
                    snap.errors.values().flatten().map(|e| e.to_string()),
                );
                metrics
                    .config_reloads
                    .get_or_create(&ResultLabels {
                        result: label.into(),
                    })
                    .inc();
                for errs in snap.errors.values() {
                    for e in errs {
                        tracing::error!(error = %e, "invalid config; the file's last good version stays in force");
                    }
                }
                tracing::info!(
                    scalers = snap.scalers.len(),
                    result = label,
                    "config directory loaded"
                );
            });
            let w = dir::watch_dir(dir, DIR_DEBOUNCE, DIR_RESYNC, hook).await?;
            registry.apply_dir(&w.first);
            watcher = Some(TaskGuard(w.task));
            Some(w.next)
        }
        None => None,
    };
    ctx.ready.store(true, Ordering::SeqCst);
    Ok(TaskGuard(tokio::spawn(async move {
        // Aborting this task drops the registry, which stops every scaler it started.
        let _watcher = watcher;
        registry.run(dir_rx, crs).await;
    })))
}

/// The pod's namespace when in a cluster, else `default`.
fn own_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .or_else(|| {
            std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace").ok()
        })
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// A reachable cluster's client, every request of it under `timeout` (`kube_timeout`), or why
/// there is none.
pub async fn detect_cluster(timeout: Duration) -> Result<kube::Client, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no kubeconfig or in-cluster config: {e}"))?;
    let client = crate::deadline::client(config, timeout).map_err(|e| e.to_string())?;
    match client.apiserver_version().await {
        Ok(_) => Ok(client),
        Err(e) => Err(format!("API server not reachable: {e}")),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return ctrl_c.await.unwrap_or(()),
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await.unwrap_or(());
}

/// Targets in the agent's own cluster and in the remote clusters of its settings (each
/// kubeconfig read again when used, at most once a second, so a rotated one takes effect
/// without a restart).
fn targets_in_clusters(home: kube::Client, settings: &Settings, dry_run: bool) -> Targets {
    for c in &settings.clusters {
        tracing::info!(cluster = %c.name, kubeconfig = %c.kubeconfig.display(), "remote cluster");
    }
    let clusters = crate::clusters::Clusters::new(Some(home), &settings.clusters)
        .with_timeout(settings.kube_timeout());
    Targets::with_clusters(Arc::new(clusters), dry_run)
}

/// `temporal-autoscaler run`.
pub async fn run(settings: Settings) -> Result<(), crate::Error> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cluster = detect_cluster(settings.kube_timeout()).await;
    let identity = settings
        .identity
        .clone()
        .unwrap_or_else(|| format!("{}-{:08x}", crate::temporal::hostname(), fastrand::u32(..)));
    let mut lease_task = None;
    let mut lease_seen = None;
    let mut client_for_crs = None;
    let (targets, guard) = match cluster {
        Ok(client) if settings.dry_run => {
            tracing::info!("dry run against the cluster: reading /scale, never writing");
            client_for_crs = Some(client.clone());
            (targets_in_clusters(client, &settings, true), Guard::alone())
        }
        Ok(client) => {
            let lease = LeaseSettings {
                name: settings.lease_name.clone(),
                namespace: settings
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(own_namespace),
                identity: identity.clone(),
                duration: Duration::from_secs(settings.lease_duration),
            };
            tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "competing for the lease");
            let (tx, rx) = watch::channel(LeaderState {
                leader: false,
                since: None,
                valid_until: None,
            });
            let margin = lease.margin();
            let runner =
                LeaseRunner::new(client.clone(), lease).with_timeout(settings.kube_timeout());
            lease_seen = Some(runner.seen());
            lease_task = Some((runner, tx));
            client_for_crs = Some(client.clone());
            (
                targets_in_clusters(client, &settings, false),
                Guard::new(rx, margin),
            )
        }
        Err(why) if settings.dry_run => {
            tracing::info!(reason = %why, "no cluster: dry run with simulated targets (each starts at minReplicaCount)");
            tracing::info!("TemporalScaler custom resources are not watched: no cluster");
            (Targets::Simulated, Guard::alone())
        }
        Err(why) => return Err(crate::Error::NoCluster(why)),
    };

    // The CR source, and (when writing) status and events on the CRs.
    let mut cr_rx = None;
    let mut status = None;
    let secrets_client = client_for_crs.clone();
    if let Some(client) = client_for_crs {
        if settings.no_crds {
            tracing::info!("TemporalScaler custom resources are not watched: --no-crds");
        } else {
            let namespaces =
                (!settings.watch_namespaces.is_empty()).then(|| settings.watch_namespaces.clone());
            tracing::info!(namespaces = ?namespaces, "watching TemporalScaler custom resources");
            let (tx, rx) = mpsc::channel(1024);
            tokio::spawn(crd::run(client.clone(), namespaces, tx));
            cr_rx = Some(rx);
            if !settings.dry_run {
                status = Some(StatusWriter::spawn_with_timeout(
                    client,
                    guard.clone(),
                    identity.clone(),
                    settings.kube_timeout(),
                ));
            }
        }
    }
    let ctx = Context::with_extras(
        targets,
        guard,
        Extras {
            status,
            no_ui: !settings.ui,
            lease: lease_seen,
            no_idle_first: !settings.idle_first,
        },
    );
    if let Some(client) = secrets_client {
        ctx.pool.use_cluster_secrets(client);
    }
    ctx.pool.set_rps(settings.temporal_rps);
    ctx.pool
        .set_schedule_refresh(std::time::Duration::from_secs(
            settings.schedule_refresh_seconds,
        ));
    let lease_handle = lease_task.map(|(runner, tx)| {
        // Config-directory scalers keep what their schedules' runs needed in the Lease.
        let runner = runner.with_learned(ctx.state.clone());
        tokio::spawn(runner.run(tx, ctx.metrics.clone(), shutdown_rx.clone()))
    });
    if lease_handle.is_none() {
        ctx.metrics.leader.set(1);
    }

    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .map_err(|e| crate::Error::Listen {
            addr: settings.http_addr.clone(),
            source: e,
        })?;
    if settings.ui {
        tracing::info!(addr = %settings.http_addr, "HTTP server listening (/ status page, /metrics, /livez, /readyz, /scalers)");
    } else {
        tracing::info!(addr = %settings.http_addr, "HTTP server listening (/metrics, /livez, /readyz, /scalers; status page off)");
    }
    let app = crate::web::http::router(ctx.clone());
    let mut http_shutdown = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await;
    });

    if settings.config_dir.is_none() && cr_rx.is_none() {
        tracing::warn!("no --config-dir and no custom resources: no scalers to run");
    }
    let _sources = start_sources(ctx.clone(), settings.config_dir.clone(), cr_rx).await?;

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Some(h) = lease_handle {
        let _ = h.await; // releases the lease
    }
    let _ = http.await;
    Ok(())
}
