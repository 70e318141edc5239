//! `<key>FromEnv` trigger keys (KEDA's meaning): the values come from an environment variable
//! of the scale target's container. They are read when the scaler starts, when its spec
//! changes and every [`ENV_REFRESH`] after (KEDA reads them when it builds a scaler), and each
//! trigger is then validated as the trigger it is. A variable the target does not define is
//! looked up in the agent's own environment (where KEDA would report the key missing): that
//! keeps configs that set `endpointFromEnv`/`apiKeyFromEnv` on the agent working, and gives a
//! dry run without a cluster its values.
//!
//! A trigger whose values cannot be read fails as a configuration error: it never lowers the
//! replica count, and the error names the variable, the container and why.

use super::Scaler;
use crate::spec::{ScalerConfig, validate_filled};
use crate::target::TargetError;
use crate::target::env::ContainerEnv;
use crate::target::fleet::Fleet;
use crate::temporal::{ErrorKind, TemporalError};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the target's environment is read again (a rollout may change it).
pub(super) const ENV_REFRESH: Duration = Duration::from_secs(300);

/// The spec with every trigger's environment read.
#[derive(Default)]
pub(super) struct EnvResolution {
    /// Boxed: most scalers have none, and each of 10,000 scalers holds this field.
    resolved: Option<Box<Resolved>>,
}

struct Resolved {
    /// When it was read; `None` when it could not be (read again next tick).
    at: Option<Instant>,
    /// The spec it was read for.
    of: Arc<ScalerConfig>,
    cfg: Arc<ScalerConfig>,
    /// Triggers that could not be read, with why.
    failed: HashMap<Arc<str>, TemporalError>,
}

impl EnvResolution {
    /// Why `trigger`'s environment could not be read, if it could not.
    pub(super) fn failure(&self, trigger: &str) -> Option<&TemporalError> {
        self.resolved.as_ref()?.failed.get(trigger)
    }
}

/// A variable's value: the target's container first (KEDA), then the agent's own
/// environment. Values are trimmed, and an empty one is unset (KEDA's rule).
fn lookup(target: &Option<Result<ContainerEnv, TargetError>>, var: &str) -> Result<String, String> {
    let set = |v: &str| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    if let Some(Ok(env)) = target
        && let Some(v) = env.vars.get(var).and_then(|v| set(v))
    {
        return Ok(v);
    }
    if let Some(v) = std::env::var(var).ok().and_then(|v| set(&v)) {
        return Ok(v);
    }
    Err(match target {
        Some(Ok(env)) => format!("{}, nor in the agent's environment", env.missing(var)),
        Some(Err(e)) => format!(
            "the target's environment could not be read ({e}), and the agent's environment has no {var}"
        ),
        None => format!(
            "{var} is not set in the agent's environment (a dry run without a cluster has no target to read)"
        ),
    })
}

/// `cfg` with every trigger's `<key>FromEnv` values read from the target's container in the
/// first cluster of `fleet` (then the agent's environment), and the triggers that could not be
/// read, with why. `None` when the API server did not answer (nothing was decided).
pub(crate) async fn resolve(
    cfg: &ScalerConfig,
    fleet: &Fleet,
) -> Option<(ScalerConfig, HashMap<Arc<str>, TemporalError>)> {
    let container = cfg
        .triggers
        .iter()
        .find_map(|t| t.from_env.as_ref())?
        .container
        .clone();
    let target = Box::pin(fleet.container_env(container.as_deref())).await;
    if let Some(Err(e)) = &target
        && e.is_unreachable()
    {
        return None;
    }
    let mut resolved = cfg.clone();
    let mut failed = HashMap::new();
    for t in &mut resolved.triggers {
        let Some(fe) = t.from_env.clone() else {
            continue;
        };
        let filled = fe
            .fill(|var| lookup(&target, var))
            .map_err(|errs| {
                errs.into_iter()
                    .map(|(path, why)| format!("{path}: {why}"))
                    .collect::<Vec<_>>()
            })
            .and_then(|spec| validate_filled(&cfg.namespace, fe.index, &spec));
        match filled {
            Ok(tc) => *t = tc,
            Err(why) => {
                failed.insert(
                    t.name.clone(),
                    TemporalError {
                        kind: ErrorKind::Config,
                        message: why.join("; "),
                    },
                );
            }
        }
    }
    Some((resolved, failed))
}

impl Scaler {
    /// The spec to act on: `self.cfg` with its `<key>FromEnv` values read (itself when it
    /// has none).
    pub(super) async fn resolved_config(&mut self) -> Arc<ScalerConfig> {
        let cfg = self.cfg.clone();
        if cfg.triggers.iter().all(|t| t.from_env.is_none()) {
            self.env.resolved = None;
            return cfg;
        }
        if let Some(r) = &self.env.resolved
            && Arc::ptr_eq(&r.of, &cfg)
            && r.at.is_some_and(|at| at.elapsed() < ENV_REFRESH)
        {
            return r.cfg.clone();
        }
        let Some((resolved, failed)) = resolve(&cfg, &self.fleet).await else {
            // The API server did not answer: keep what was read, try again next tick.
            if let Some(r) = &self.env.resolved
                && Arc::ptr_eq(&r.of, &cfg)
                && r.at.is_some()
            {
                tracing::debug!(scaler = %self.key, "target environment not read; keeping the last values");
                return r.cfg.clone();
            }
            let failed = cfg
                .triggers
                .iter()
                .filter(|t| t.from_env.is_some())
                .map(|t| {
                    let e = TemporalError {
                        kind: ErrorKind::Config,
                        message: format!(
                            "trigger {}: the scale target's environment could not be read (its API server did not answer)",
                            t.name
                        ),
                    };
                    (t.name.clone(), e)
                })
                .collect();
            // Not kept past this tick: the next one reads again.
            self.env.resolved = Some(Box::new(Resolved {
                at: None,
                of: cfg.clone(),
                cfg: cfg.clone(),
                failed,
            }));
            return cfg;
        };
        let resolved = Arc::new(resolved);
        self.env.resolved = Some(Box::new(Resolved {
            at: Some(Instant::now()),
            of: cfg,
            cfg: resolved.clone(),
            failed,
        }));
        resolved
    }
}
