//! Wiring: the shared [`Context`], cluster detection, the lease, the config source feeding the
//! registry, and the HTTP server. `run` is the `temporal-autoscaler run` command.

use crate::guard::{Guard, LeaderState, LeaseRunner, LeaseSettings};
use crate::registry::Registry;
use crate::report::metrics::{Metrics, ResultLabels};
use crate::report::state::StateStore;
use crate::settings::Settings;
use crate::source::dir::{self, ReloadResult};
use crate::target::Targets;
use crate::temporal::TemporalPool;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every scaler and the HTTP server share.
pub struct Context {
    pub pool: Arc<TemporalPool>,
    pub metrics: Arc<Metrics>,
    pub state: StateStore,
    pub targets: Targets,
    pub guard: Guard,
    pub ready: AtomicBool,
}

impl Context {
    pub fn new(targets: Targets, guard: Guard) -> Arc<Self> {
        let metrics = Arc::new(Metrics::new());
        Arc::new(Context {
            pool: TemporalPool::new(metrics.clone()),
            metrics,
            state: StateStore::new(),
            targets,
            guard,
            ready: AtomicBool::new(false),
        })
    }
}

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
    let metrics = ctx.metrics.clone();
    let hook: dir::ReloadHook = Arc::new(move |result, snap| {
        let label = match result {
            ReloadResult::Unchanged => return,
            ReloadResult::Applied => "applied",
            ReloadResult::Rejected => "rejected",
        };
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
    let (mut rx, watcher) = dir::watch_dir(dir, DIR_DEBOUNCE, DIR_RESYNC, hook).await?;
    let mut registry = Registry::new(ctx.clone());
    registry.apply_dir(&rx.borrow_and_update());
    ctx.ready.store(true, Ordering::SeqCst);
    Ok(TaskGuard(tokio::spawn(async move {
        // Aborting this task drops the registry, which stops every scaler it started.
        let _watcher = TaskGuard(watcher);
        while rx.changed().await.is_ok() {
            let snap = rx.borrow_and_update().clone();
            registry.apply_dir(&snap);
        }
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

/// A reachable cluster's client, or why there is none.
pub async fn detect_cluster() -> Result<kube::Client, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("no kubeconfig or in-cluster config: {e}"))?;
    let client = kube::Client::try_from(config).map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await {
        Ok(Ok(_)) => Ok(client),
        Ok(Err(e)) => Err(format!("API server not reachable: {e}")),
        Err(_) => Err("API server did not answer within 5s".into()),
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

/// `temporal-autoscaler run`.
pub async fn run(settings: Settings) -> Result<(), crate::Error> {
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let cluster = detect_cluster().await;
    let mut lease_task = None;
    let (targets, guard) = match cluster {
        Ok(client) if settings.dry_run => {
            tracing::info!("dry run against the cluster: reading /scale, never writing");
            (Targets::kube(client, true), Guard::alone())
        }
        Ok(client) => {
            let identity = settings.identity.clone().unwrap_or_else(|| {
                format!("{}-{:08x}", crate::temporal::hostname(), fastrand::u32(..))
            });
            let lease = LeaseSettings {
                name: settings.lease_name.clone(),
                namespace: settings
                    .lease_namespace
                    .clone()
                    .unwrap_or_else(own_namespace),
                identity,
                duration: Duration::from_secs(settings.lease_duration),
            };
            tracing::info!(lease = %lease.name, namespace = %lease.namespace, identity = %lease.identity, "competing for the lease");
            let (tx, rx) = watch::channel(LeaderState {
                leader: false,
                since: None,
                valid_until: None,
            });
            let margin = lease.margin();
            let runner = LeaseRunner::new(client.clone(), lease);
            lease_task = Some((runner, tx));
            (Targets::kube(client, false), Guard::new(rx, margin))
        }
        Err(why) if settings.dry_run => {
            tracing::info!(reason = %why, "no cluster: dry run with simulated targets (each starts at minReplicaCount)");
            (Targets::Simulated, Guard::alone())
        }
        Err(why) => return Err(crate::Error::NoCluster(why)),
    };
    let ctx = Context::new(targets, guard);
    let lease_handle = lease_task
        .map(|(runner, tx)| tokio::spawn(runner.run(tx, ctx.metrics.clone(), shutdown_rx.clone())));
    if lease_handle.is_none() {
        ctx.metrics.leader.set(1);
    }

    let listener = tokio::net::TcpListener::bind(&settings.http_addr)
        .await
        .map_err(|e| crate::Error::Listen {
            addr: settings.http_addr.clone(),
            source: e,
        })?;
    tracing::info!(addr = %settings.http_addr, "HTTP server listening (/metrics, /livez, /readyz, /scalers)");
    let app = crate::report::http::router(ctx.clone());
    let mut http_shutdown = shutdown_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_shutdown.changed().await;
            })
            .await;
    });

    let _source = match &settings.config_dir {
        Some(dir) => Some(start_dir_source(ctx.clone(), dir.clone()).await?),
        None => {
            tracing::warn!("no --config-dir: no scalers to run");
            ctx.ready.store(true, Ordering::SeqCst);
            None
        }
    };

    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = shutdown_tx.send(true);
    if let Some(h) = lease_handle {
        let _ = h.await; // releases the lease
    }
    let _ = http.await;
    Ok(())
}
