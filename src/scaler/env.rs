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
    at: Instant,
    /// The spec it was read for.
    of: Arc<ScalerConfig>,
    cfg: Arc<ScalerConfig>,
    /// Triggers that could not be read, with why.
    failed: HashMap<String, TemporalError>,
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

impl Scaler {
    /// The spec to act on: `self.cfg` with its `<key>FromEnv` values read (itself when it
    /// has none).
    pub(super) async fn resolved_config(&mut self) -> Arc<ScalerConfig> {
        let cfg = self.cfg.clone();
        let Some(container) = cfg.triggers.iter().find_map(|t| t.from_env.as_ref()) else {
            self.env.resolved = None;
            return cfg;
        };
        if let Some(r) = &self.env.resolved
            && Arc::ptr_eq(&r.of, &cfg)
            && r.at.elapsed() < ENV_REFRESH
        {
            return r.cfg.clone();
        }
        let container = container.container.clone();
        // The first cluster's target: a placement runs one workload in several clusters.
        let target = Box::pin(self.fleet.container_env(container.as_deref())).await;
        if let Some(Err(e)) = &target
            && e.is_unreachable()
            && let Some(r) = &mut self.env.resolved
            && Arc::ptr_eq(&r.of, &cfg)
        {
            // The API server did not answer: keep what was read, try again next tick.
            tracing::debug!(scaler = %self.key, error = %e, "target environment not read; keeping the last values");
            return r.cfg.clone();
        }
        let mut resolved = (*cfg).clone();
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
        let resolved = Arc::new(resolved);
        self.env.resolved = Some(Box::new(Resolved {
            at: Instant::now(),
            of: cfg,
            cfg: resolved.clone(),
            failed,
        }));
        resolved
    }
}
