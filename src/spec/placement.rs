//! `spec.placement` and `spec.scaleTargetRef.cluster`, validated: the clusters a scaler's
//! target lives in. Which cluster names the agent knows is a runtime (and `check`) question:
//! here only their form.

use super::TemporalScalerSpec;
use super::validate::{Errors, is_dns_label, show};
use std::borrow::Cow;

/// How a placement spreads the total over its clusters (`spec.placement.policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlacementPolicy {
    Weighted,
    Failover,
}

/// The agent's own cluster, by name (the empty name means it too).
pub const LOCAL: &str = "local";
/// `spec.placement.failureThreshold` when unset.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;

/// Where a scaler's replicas go: one cluster (a plain scaler, or `scaleTargetRef.cluster`), or
/// a placement's clusters.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    pub policy: PlacementPolicy,
    /// Failed reads in a row before a cluster's share moves to the others.
    pub failure_threshold: u32,
    /// In the listed order (Failover fills them in it). A plain scaler's is a shared static
    /// slice: no allocation per scaler (10,000 of them).
    pub clusters: Cow<'static, [PlacementCluster]>,
    /// From `spec.placement` (not a single target).
    pub spread: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlacementCluster {
    /// `local` for the agent's own cluster (borrowed: a plain scaler's costs no allocation,
    /// times 10,000 scalers).
    pub name: Cow<'static, str>,
    pub weight: u32,
    pub min: u32,
    pub max: u32,
}

/// The one cluster of a plain scaler.
static LOCAL_ONLY: [PlacementCluster; 1] = [PlacementCluster {
    name: Cow::Borrowed(LOCAL),
    weight: 1,
    min: 0,
    max: u32::MAX,
}];

impl Placement {
    /// All the replicas in one cluster.
    pub fn single(cluster: &str) -> Self {
        let clusters = match normalize(cluster) {
            LOCAL => Cow::Borrowed(&LOCAL_ONLY[..]),
            other => Cow::Owned(vec![PlacementCluster {
                name: Cow::Owned(other.to_string()),
                ..LOCAL_ONLY[0].clone()
            }]),
        };
        Placement {
            policy: PlacementPolicy::Weighted,
            failure_threshold: DEFAULT_FAILURE_THRESHOLD,
            clusters,
            spread: false,
        }
    }

    /// Only the agent's own cluster: nothing of clusters to report.
    pub fn is_local(&self) -> bool {
        !self.spread && self.clusters.iter().all(|c| c.name == LOCAL)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.clusters.iter().map(|c| c.name.as_ref())
    }
}

/// `""` and `local` are the agent's own cluster.
pub fn normalize(name: &str) -> &str {
    if name.is_empty() { LOCAL } else { name }
}

/// A cluster's name as a placement keeps it: the agent's own borrowed, others owned.
fn cluster_name(name: &str) -> Cow<'static, str> {
    match normalize(name) {
        LOCAL => Cow::Borrowed(LOCAL),
        other => Cow::Owned(other.to_string()),
    }
}

fn check_name(errs: &mut Errors, path: &str, name: &str) {
    if !name.is_empty() && !is_dns_label(name) {
        errs.push(
            path,
            show(name),
            "a cluster name from the agent's settings (a DNS label), or \"local\"",
        );
    }
}

/// The placement of a spec whose replica bounds are `min`..=`max`.
pub(super) fn validate(
    errs: &mut Errors,
    spec: &TemporalScalerSpec,
    min: i32,
    max: i32,
) -> Placement {
    let target_cluster = spec.scale_target_ref.cluster.as_deref().unwrap_or_default();
    check_name(errs, "spec.scaleTargetRef.cluster", target_cluster);
    let Some(p) = &spec.placement else {
        return Placement::single(target_cluster);
    };
    if !target_cluster.is_empty() {
        errs.push(
            "spec.scaleTargetRef.cluster",
            show(target_cluster),
            "unset with spec.placement (its clusters name where the target is)",
        );
    }
    let policy = match p.policy.as_deref() {
        None | Some("Weighted") => PlacementPolicy::Weighted,
        Some("Failover") => PlacementPolicy::Failover,
        Some(other) => {
            errs.push(
                "spec.placement.policy",
                show(other),
                "one of Weighted, Failover",
            );
            PlacementPolicy::Weighted
        }
    };
    let failure_threshold = match p.failure_threshold {
        None => DEFAULT_FAILURE_THRESHOLD,
        Some(n @ 1..=100) => n as u32,
        Some(n) => {
            errs.push(
                "spec.placement.failureThreshold",
                show(n),
                "an integer from 1 to 100",
            );
            DEFAULT_FAILURE_THRESHOLD
        }
    };
    if p.clusters.is_empty() || p.clusters.len() > 32 {
        errs.push(
            "spec.placement.clusters",
            Some(format!("{} clusters", p.clusters.len())),
            "from 1 to 32 clusters",
        );
    }
    let mut clusters: Vec<PlacementCluster> = Vec::with_capacity(p.clusters.len());
    for (i, c) in p.clusters.iter().enumerate() {
        let at = |field: &str| format!("spec.placement.clusters[{i}].{field}");
        check_name(errs, &at("name"), &c.name);
        let name = cluster_name(&c.name);
        if clusters.iter().any(|o| o.name == name) {
            errs.push(
                at("name"),
                show(&c.name),
                "a cluster named once in the placement",
            );
        }
        let weight = c.weight.unwrap_or(1);
        if !(0..=1000).contains(&weight) {
            errs.push(at("weight"), show(weight), "an integer from 0 to 1000");
        }
        let cmin = c.min_replica_count.unwrap_or(0);
        if cmin < 0 {
            errs.push(at("minReplicaCount"), show(cmin), "an integer ≥ 0");
        }
        let cmax = c.max_replica_count.unwrap_or(max);
        if cmax < cmin.max(0) {
            errs.push(
                at("maxReplicaCount"),
                show(cmax),
                format!(
                    "an integer ≥ this cluster's minReplicaCount ({})",
                    cmin.max(0)
                ),
            );
        }
        clusters.push(PlacementCluster {
            name,
            weight: weight.clamp(0, 1000) as u32,
            min: cmin.max(0) as u32,
            max: cmax.max(cmin).max(0) as u32,
        });
    }
    // The shares sum to the total clamped to [Σ min, Σ max]: both must leave room for the
    // scaler's own bounds.
    let sum_min: u64 = clusters.iter().map(|c| u64::from(c.min)).sum();
    let sum_max: u64 = clusters.iter().map(|c| u64::from(c.max)).sum();
    if sum_min > max.max(0) as u64 {
        errs.push(
            "spec.placement.clusters",
            Some(format!("minReplicaCount summing to {sum_min}")),
            format!("a sum ≤ spec.maxReplicaCount ({max})"),
        );
    }
    if !clusters.is_empty() && sum_max < min.max(0) as u64 {
        errs.push(
            "spec.placement.clusters",
            Some(format!("maxReplicaCount summing to {sum_max}")),
            format!("a sum ≥ spec.minReplicaCount ({min})"),
        );
    }
    clusters.shrink_to_fit();
    Placement {
        policy,
        failure_threshold,
        clusters: Cow::Owned(clusters),
        spread: true,
    }
}

#[cfg(test)]
mod tests {
    use crate::source::dir::parse_file;
    use crate::spec::ScalerConfig;
    use std::path::Path;

    fn parse(extra: &str) -> Result<ScalerConfig, String> {
        let yaml = format!(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  maxReplicaCount: 10\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"t:7233\", taskQueue: q}}\n{extra}"
        );
        parse_file(Path::new("s.yaml"), &yaml)
            .map(|mut v| v.remove(0))
            .map_err(|errs| {
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            })
    }

    #[test]
    fn a_plain_scaler_is_local_and_a_cluster_ref_is_one_remote_cluster() {
        let c = parse("  scaleTargetRef: {name: w}\n").unwrap();
        assert!(c.placement.is_local());
        assert_eq!(c.placement.names().collect::<Vec<_>>(), ["local"]);
        let c = parse("  scaleTargetRef: {name: w, cluster: \"\"}\n").unwrap();
        assert!(c.placement.is_local());
        let c = parse("  scaleTargetRef: {name: w, cluster: eu-west}\n").unwrap();
        assert!(!c.placement.is_local());
        assert_eq!(c.placement.names().collect::<Vec<_>>(), ["eu-west"]);
    }

    #[test]
    fn a_placement_has_defaults_and_keeps_its_order() {
        let c = parse(
            "  scaleTargetRef: {name: w}\n  placement:\n    clusters:\n    - {name: local, weight: 2}\n    - {name: eu, minReplicaCount: 1, maxReplicaCount: 4}\n",
        )
        .unwrap();
        let p = &c.placement;
        assert!(p.spread && !p.is_local());
        assert_eq!(p.policy, super::PlacementPolicy::Weighted);
        assert_eq!(p.failure_threshold, 3);
        assert_eq!(
            p.clusters
                .iter()
                .map(|c| (c.name.as_ref(), c.weight, c.min, c.max))
                .collect::<Vec<_>>(),
            [("local", 2, 0, 10), ("eu", 1, 1, 4)]
        );
        let c = parse(
            "  scaleTargetRef: {name: w}\n  placement:\n    policy: Failover\n    failureThreshold: 5\n    clusters: [{name: \"\"}, {name: us}]\n",
        )
        .unwrap();
        assert_eq!(c.placement.policy, super::PlacementPolicy::Failover);
        assert_eq!(c.placement.failure_threshold, 5);
        assert_eq!(c.placement.clusters[0].name, "local");
    }

    #[test]
    fn bad_placements_name_the_field() {
        for (extra, field, want) in [
            (
                "  scaleTargetRef: {name: w, cluster: EU}\n",
                "spec.scaleTargetRef.cluster",
                "DNS label",
            ),
            (
                "  scaleTargetRef: {name: w, cluster: eu}\n  placement: {clusters: [{name: us}]}\n",
                "spec.scaleTargetRef.cluster",
                "unset with spec.placement",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: us}, {name: us}]}\n",
                "spec.placement.clusters[1].name",
                "named once",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: local}, {name: \"\"}]}\n",
                "spec.placement.clusters[1].name",
                "named once",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: us, weight: -1}]}\n",
                "spec.placement.clusters[0].weight",
                "from 0 to 1000",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: us, minReplicaCount: 3, maxReplicaCount: 2}]}\n",
                "spec.placement.clusters[0].maxReplicaCount",
                "minReplicaCount (3)",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: us, minReplicaCount: 6}, {name: eu, minReplicaCount: 6}]}\n",
                "spec.placement.clusters",
                "maxReplicaCount (10)",
            ),
            (
                "  minReplicaCount: 5\n  scaleTargetRef: {name: w}\n  placement: {clusters: [{name: us, maxReplicaCount: 2}]}\n",
                "spec.placement.clusters",
                "minReplicaCount (5)",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {clusters: []}\n",
                "spec.placement.clusters",
                "from 1 to 32",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {policy: RoundRobin, clusters: [{name: us}]}\n",
                "spec.placement.policy",
                "Weighted, Failover",
            ),
            (
                "  scaleTargetRef: {name: w}\n  placement: {failureThreshold: 0, clusters: [{name: us}]}\n",
                "spec.placement.failureThreshold",
                "from 1 to 100",
            ),
        ] {
            let e = parse(extra).unwrap_err();
            assert!(e.contains(field) && e.contains(want), "{extra}: {e}");
        }
    }
}
