//! Per-version bounds, for a trigger that selects a Worker Deployment version (Temporal's worker
//! controller renders one scaler per version). The server reports each version's status
//! (`WorkerDeploymentVersionStatus`); a rollout moves a version from current (or ramping) to
//! draining, drained, and finally away:
//! - current, ramping, created (or no version): `minReplicaCount` applies;
//! - draining (workflows still pinned to it): at most one replica is kept as a floor, for the
//!   pinned workflows' next tasks; above it the version scales on its own backlog and busy slots;
//! - drained or inactive: no floor: the version goes to 0 once idle, and never back up without
//!   its own backlog. (The controller scales drained versions to 0 and deletes them only at 0:
//!   a floor here would fight it.)
//!
//! With several triggers the most alive status wins (the highest floor).

/// A version's status on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VersionStatus {
    Inactive,
    Current,
    Ramping,
    Draining,
    Drained,
    Created,
}

impl VersionStatus {
    /// From `temporal.api.enums.v1.WorkerDeploymentVersionStatus` (0, unspecified: `None`).
    pub fn from_proto(v: i32) -> Option<VersionStatus> {
        Some(match v {
            1 => VersionStatus::Inactive,
            2 => VersionStatus::Current,
            3 => VersionStatus::Ramping,
            4 => VersionStatus::Draining,
            5 => VersionStatus::Drained,
            6 => VersionStatus::Created,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Inactive => "inactive",
            VersionStatus::Current => "current",
            VersionStatus::Ramping => "ramping",
            VersionStatus::Draining => "draining",
            VersionStatus::Drained => "drained",
            VersionStatus::Created => "created",
        }
    }
}

/// The floor for a version in `status` with `minReplicaCount` `min`.
pub fn floor(min: u32, status: Option<VersionStatus>) -> u32 {
    match status {
        Some(VersionStatus::Draining) => min.min(1),
        Some(VersionStatus::Drained | VersionStatus::Inactive) => 0,
        _ => min,
    }
}

/// The floor over a scaler's triggers (each with its version's status, `None` when it selects
/// no version or its read failed), and the status that lowered it below `min`, if any.
pub fn scaler_floor(
    min: u32,
    statuses: impl Iterator<Item = Option<VersionStatus>>,
) -> (u32, Option<VersionStatus>) {
    let mut best: Option<(u32, Option<VersionStatus>)> = None;
    for s in statuses {
        let f = floor(min, s);
        if best.is_none_or(|(b, _)| f > b) {
            best = Some((f, s));
        }
    }
    match best {
        Some((f, s)) if f < min => (f, s),
        _ => (min, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VersionStatus::*;

    #[test]
    fn current_and_ramping_keep_min_draining_keeps_one_drained_none() {
        assert_eq!(floor(3, Some(Current)), 3);
        assert_eq!(floor(3, Some(Ramping)), 3);
        assert_eq!(floor(3, Some(Created)), 3);
        assert_eq!(floor(3, None), 3);
        assert_eq!(floor(3, Some(Draining)), 1);
        assert_eq!(floor(0, Some(Draining)), 0);
        assert_eq!(floor(3, Some(Drained)), 0);
        assert_eq!(floor(3, Some(Inactive)), 0);
    }

    #[test]
    fn the_most_alive_trigger_sets_the_floor() {
        assert_eq!(
            scaler_floor(2, [Some(Drained), Some(Draining)].into_iter()),
            (1, Some(Draining))
        );
        assert_eq!(
            scaler_floor(2, [Some(Drained), None].into_iter()),
            (2, None)
        );
        assert_eq!(
            scaler_floor(2, [Some(Drained)].into_iter()),
            (0, Some(Drained))
        );
        assert_eq!(scaler_floor(2, std::iter::empty()), (2, None));
        assert_eq!(VersionStatus::from_proto(4), Some(Draining));
        assert_eq!(VersionStatus::from_proto(0), None);
    }
}
