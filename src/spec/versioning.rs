//! A trigger's version selector: Worker Deployment versions (`workerDeploymentName` with
//! `workerDeploymentBuildId`, KEDA's keys), the deprecated build-id selection (`buildId`,
//! `selectAllActive`, `selectUnversioned`), and this agent's older aliases
//! (`workerVersioningType` with `deploymentName`, a KEDA design that was never merged; kept
//! because earlier releases accepted them, see docs/spec.md).

use super::validate::{Errors, parse_bool};
use super::*;

/// The version selector: ours (`workerDeploymentName` + `workerDeploymentBuildId`; `buildId`,
/// `selectAllActive`, `selectUnversioned`) or KEDA's (`workerVersioningType` with
/// `deploymentName` and `buildId`), with KEDA's rules for its keys. Mixing the two for one
/// selector is an error naming both fields.
pub(super) fn versioning_keys<'a>(
    errs: &mut Errors,
    p: &dyn Fn(&str) -> String,
    get: &dyn Fn(&str) -> Option<&'a String>,
    value_of: &dyn Fn(&str) -> Option<String>,
) -> Versioning {
    let all_active =
        parse_bool(errs, &p("selectAllActive"), get("selectAllActive")).unwrap_or(false);
    let unversioned =
        parse_bool(errs, &p("selectUnversioned"), get("selectUnversioned")).unwrap_or(false);
    let build_id = get("buildId");
    let deployment_name = get("deploymentName");
    let ours = ["workerDeploymentName", "workerDeploymentBuildId"];
    // An error at `k` when it is set.
    let conflict = |errs: &mut Errors, k: &str, expected: &str| {
        if get(k).is_some() {
            errs.push(p(k), value_of(k), expected);
        }
    };
    match get("workerVersioningType").map(|v| v.trim()) {
        Some("deployment") => {
            for k in ours {
                conflict(
                    errs,
                    k,
                    "either workerVersioningType: deployment (with deploymentName and buildId) \
                     or workerDeploymentName with workerDeploymentBuildId, not both",
                );
            }
            for k in ["selectAllActive", "selectUnversioned"] {
                conflict(
                    errs,
                    k,
                    "no build-id selection with workerVersioningType: deployment",
                );
            }
            // KEDA's rule: its deployment read covers every queue type of the version.
            conflict(
                errs,
                "queueTypes",
                "no queueTypes with workerVersioningType: deployment (it reads every task \
                 queue and type of the version, as KEDA does; for one queue's types use \
                 workerDeploymentName with workerDeploymentBuildId)",
            );
            match (deployment_name, build_id) {
                (Some(n), Some(b)) => Versioning::WorkerDeployment {
                    name: n.trim().into(),
                    build_id: b.trim().into(),
                    scope: DeploymentScope::Version,
                },
                (n, b) => {
                    if n.is_none() {
                        errs.push(
                            p("deploymentName"),
                            None,
                            "the Worker Deployment's name with workerVersioningType: deployment",
                        );
                    }
                    if b.is_none() {
                        errs.push(
                            p("buildId"),
                            None,
                            "the version's build id with workerVersioningType: deployment",
                        );
                    }
                    Versioning::All
                }
            }
        }
        Some("build-id") => {
            conflict(
                errs,
                "deploymentName",
                "no deploymentName with workerVersioningType: build-id (deploymentName \
                 belongs to workerVersioningType: deployment)",
            );
            for k in ours {
                conflict(
                    errs,
                    k,
                    "either workerVersioningType: build-id or workerDeploymentName with \
                     workerDeploymentBuildId, not both",
                );
            }
            // KEDA would send an empty version selection, a read the agent does not make.
            if build_id.is_none() && !all_active && !unversioned {
                errs.push(
                    p("buildId"),
                    None,
                    "a build id with workerVersioningType: build-id",
                );
            }
            Versioning::BuildIds {
                build_id: build_id.map(|b| b.trim().into()),
                select_all_active: all_active,
                select_unversioned: unversioned,
            }
        }
        Some("none") => {
            for k in ["buildId", "deploymentName"].iter().chain(&ours) {
                conflict(
                    errs,
                    k,
                    &format!("no {k} with workerVersioningType: none (it selects no version)"),
                );
            }
            for (k, on) in [
                ("selectAllActive", all_active),
                ("selectUnversioned", unversioned),
            ] {
                if on {
                    errs.push(
                        p(k),
                        value_of(k),
                        format!("no {k} with workerVersioningType: none (it selects no version)"),
                    );
                }
            }
            Versioning::All
        }
        Some(_) => {
            errs.push(
                p("workerVersioningType"),
                value_of("workerVersioningType"),
                "none, build-id or deployment",
            );
            Versioning::All
        }
        None => {
            // KEDA rejects deploymentName without workerVersioningType too.
            conflict(
                errs,
                "deploymentName",
                "workerVersioningType: deployment with it (and buildId), or \
                 workerDeploymentName with workerDeploymentBuildId",
            );
            let legacy = build_id.is_some() || all_active || unversioned;
            match (get("workerDeploymentName"), get("workerDeploymentBuildId")) {
                (Some(n), Some(b)) => {
                    // Named at the legacy key that is set (selectAllActive alone is not buildId).
                    let set = [
                        ("buildId", build_id.is_some()),
                        ("selectAllActive", all_active),
                        ("selectUnversioned", unversioned),
                    ];
                    if let Some((k, _)) = set.iter().find(|(_, on)| *on) {
                        errs.push(p(k), value_of(k), "either buildId/selectAllActive/selectUnversioned or workerDeploymentName/workerDeploymentBuildId, not both");
                    }
                    Versioning::WorkerDeployment {
                        name: n.as_str().into(),
                        build_id: b.as_str().into(),
                        scope: DeploymentScope::TaskQueue,
                    }
                }
                (Some(_), None) => {
                    errs.push(
                        p("workerDeploymentBuildId"),
                        None,
                        "a build id with workerDeploymentName",
                    );
                    Versioning::All
                }
                (None, Some(_)) => {
                    errs.push(
                        p("workerDeploymentName"),
                        None,
                        "a deployment name with workerDeploymentBuildId",
                    );
                    Versioning::All
                }
                (None, None) if legacy => Versioning::BuildIds {
                    build_id: build_id.map(|b| b.as_str().into()),
                    select_all_active: all_active,
                    select_unversioned: unversioned,
                },
                (None, None) => Versioning::All,
            }
        }
    }
}
