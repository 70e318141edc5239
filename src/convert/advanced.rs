//! `spec.advanced`: the HPA behavior KEDA passed on, which the agent applies itself.

use super::fields::{Fields, read};
use super::{Mapping, NO_EQUIVALENT, Notes, UNKNOWN};
use crate::spec::{AdvancedSpec, BehaviorSpec, HpaConfigSpec, PolicySpec, ScalingRulesSpec};
use serde_json::Value;

pub(super) fn advanced(path: &str, m: &Mapping, n: &mut Notes) -> Option<AdvancedSpec> {
    let mut f = Fields::new(path, m);
    let hpa = f
        .get_at::<&Mapping>("horizontalPodAutoscalerConfig", n)
        .and_then(|(p, m)| {
            let mut h = Fields::new(p, m);
            h.discard(
                "name",
                n,
                "no equivalent (the agent creates no HPA); dropped",
            );
            let behavior = h
                .get_at::<&Mapping>("behavior", n)
                .map(|(p, m)| behavior(&p, m, n));
            h.finish(n, UNKNOWN);
            behavior.map(|b| HpaConfigSpec { behavior: Some(b) })
        });
    f.discard("restoreToOriginalReplicaCount", n, NO_EQUIVALENT);
    if f.take("scalingModifiers").is_some() {
        n.refuse(
            &f.path("scalingModifiers"),
            "KEDA scaled on this formula over the triggers' metrics; the agent scales on each \
             trigger's own count (the highest wins), so the triggers kept would scale otherwise: \
             remove scalingModifiers to convert",
        );
    }
    f.finish(n, UNKNOWN);
    hpa.map(|h| AdvancedSpec {
        horizontal_pod_autoscaler_config: Some(h),
        ..AdvancedSpec::default()
    })
}

fn behavior(path: &str, m: &Mapping, n: &mut Notes) -> BehaviorSpec {
    let mut f = Fields::new(path, m);
    let scale_up = f
        .get_at::<&Mapping>("scaleUp", n)
        .map(|(p, m)| rules(&p, m, n));
    let scale_down = f
        .get_at::<&Mapping>("scaleDown", n)
        .map(|(p, m)| rules(&p, m, n));
    f.finish(n, UNKNOWN);
    BehaviorSpec {
        scale_up,
        scale_down,
    }
}

fn rules(path: &str, m: &Mapping, n: &mut Notes) -> ScalingRulesSpec {
    let mut f = Fields::new(path, m);
    let stabilization_window_seconds = f.get::<i32>("stabilizationWindowSeconds", n);
    let select_policy = f.get::<String>("selectPolicy", n);
    let policies = f
        .items("policies", n)
        .map(|items| items.iter().filter_map(|(p, v)| policy(p, v, n)).collect());
    let tolerance = f.get::<f64>("tolerance", n);
    f.finish(n, UNKNOWN);
    ScalingRulesSpec {
        stabilization_window_seconds,
        select_policy,
        policies,
        tolerance,
    }
}

fn policy(path: &str, v: &Value, n: &mut Notes) -> Option<PolicySpec> {
    let mut f = Fields::new(path, read::<&Mapping>(v, path, n)?);
    let type_ = f.get::<String>("type", n);
    let value = f.get::<i32>("value", n);
    let period_seconds = f.get::<i32>("periodSeconds", n);
    f.finish(n, UNKNOWN);
    match (type_, value, period_seconds) {
        (Some(type_), Some(value), Some(period_seconds)) => Some(PolicySpec {
            type_,
            value,
            period_seconds,
        }),
        _ => {
            // Dropping one policy would change what the others allow (selectPolicy picks
            // among them).
            n.refuse(
                path,
                "incomplete policy: type, value and periodSeconds are required (the HPA rejects it), and dropping it would change what the other policies allow",
            );
            None
        }
    }
}
