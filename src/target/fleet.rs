//! One scaler's target in each of its clusters (a plain scaler has one, in the agent's own
//! cluster): the `/scale` reads of a tick, each cluster's reachability, and the writes of a
//! placement plan. The plan itself is pure (`decide::placement`).

use super::{ScaleRead, Target, TargetError, Targets};
use crate::decide::idle_first::{self, Steer};
use crate::decide::placement::{self, Plan, Reachability, Slot};
use crate::outage::Outage;
use crate::spec::{Placement, ScalerConfig};
use std::sync::Arc;

/// Deletion-cost patches in flight at once, per cluster, before a scale-down.
const STEER_CONCURRENCY: usize = 8;

/// What steering a member's scale-down did.
#[derive(Debug)]
pub struct Steered {
    /// The target's pods listed.
    pub pods: u32,
    pub steer: Steer,
    /// Deletion costs written (none in a dry run).
    pub written: u32,
    /// Writes that failed (the scale-down goes on: the count is still right).
    pub errors: Vec<TargetError>,
}

/// The target in one cluster (named by the placement's cluster of the same index).
pub struct Member {
    target: Target,
    reach: Reachability,
    /// The last count read (kept while reads fail, for the total while still reachable).
    pub last: Option<u32>,
    /// This tick's read.
    pub read: Option<u32>,
    /// The selector of the target's pods, from the last read (`status.selector`).
    selector: Option<Box<str>>,
    /// This tick's read or write error (boxed: rarely there, and 10,000 scalers keep one).
    pub error: Option<Box<TargetError>>,
    /// The share of the last plan.
    pub share: Option<u32>,
    /// A failing `/scale`, logged and evented as triggers are.
    pub outage: Outage,
}

impl Member {
    fn new(targets: &Targets, cfg: &ScalerConfig, cluster: &str, initial: u32) -> Self {
        Member {
            target: targets.target_in(cluster, &cfg.namespace, &cfg.target, initial),
            reach: Reachability::default(),
            last: None,
            read: None,
            selector: None,
            error: None,
            share: None,
            outage: Outage::default(),
        }
    }

    /// This tick's read: the count, or the error (which counts toward unreachability, at once
    /// for a lasting one).
    fn absorb(&mut self, read: Result<ScaleRead, TargetError>) {
        match read {
            Ok(ScaleRead {
                replicas: n,
                selector,
            }) => {
                self.reach.record(true);
                (self.read, self.last, self.error) = (Some(n), Some(n), None);
                if self.selector.as_deref() != selector.as_deref() {
                    self.selector = selector.map(String::into_boxed_str);
                }
            }
            Err(e) => {
                if e.is_lasting() {
                    self.reach.record_lasting();
                } else {
                    self.reach.record(false);
                }
                (self.read, self.error) = (None, Some(Box::new(e)));
            }
        }
    }

    /// A write of `n`: in force when written; an error is this tick's.
    fn absorb_write(&mut self, n: u32, res: &Result<bool, TargetError>) {
        match res {
            Ok(true) => {
                self.read = Some(n);
                self.last = Some(n);
            }
            Ok(false) => {}
            Err(e) => self.error = Some(Box::new(e.clone())),
        }
    }

    pub fn reachable(&self, threshold: u32) -> bool {
        self.reach.reachable(threshold)
    }

    pub fn failures(&self) -> u32 {
        self.reach.failures()
    }
}

/// The members in the placement's order: the first inline (a plain scaler has only it, and
/// 10,000 scalers then need no allocation for it), the others on the heap.
pub struct Members {
    first: Member,
    rest: Vec<Member>,
}

impl Members {
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    pub fn is_empty(&self) -> bool {
        false
    }

    pub fn iter(&self) -> impl Iterator<Item = &Member> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        std::iter::once(&mut self.first).chain(&mut self.rest)
    }

    fn into_vec(self) -> Vec<Member> {
        let mut v = Vec::with_capacity(self.len());
        v.push(self.first);
        v.extend(self.rest);
        v
    }
}

impl std::ops::Index<usize> for Members {
    type Output = Member;
    fn index(&self, i: usize) -> &Member {
        if i == 0 {
            &self.first
        } else {
            &self.rest[i - 1]
        }
    }
}

impl std::ops::IndexMut<usize> for Members {
    fn index_mut(&mut self, i: usize) -> &mut Member {
        if i == 0 {
            &mut self.first
        } else {
            &mut self.rest[i - 1]
        }
    }
}

impl<'a> IntoIterator for &'a Members {
    type Item = &'a Member;
    type IntoIter = std::iter::Chain<std::iter::Once<&'a Member>, std::slice::Iter<'a, Member>>;
    fn into_iter(self) -> Self::IntoIter {
        std::iter::once(&self.first).chain(self.rest.iter())
    }
}

pub struct Fleet {
    pub members: Members,
    /// The spec the members were made for (shared, not copied).
    cfg: Arc<ScalerConfig>,
}

/// What a tick's reads give the decision.
pub enum Current {
    /// Σ over the reachable clusters (this tick's count, else the last read).
    Total(u32),
    /// No cluster could be read: the errors, each naming its cluster.
    Unreadable(String),
}

impl Fleet {
    pub fn new(targets: &Targets, cfg: &Arc<ScalerConfig>) -> Self {
        let member = |c: &crate::spec::PlacementCluster| {
            // A simulated target starts at minReplicaCount (a placement's at its min).
            let initial = if cfg.placement.spread {
                c.min
            } else {
                cfg.min_replicas
            };
            Member::new(targets, cfg, &c.name, initial)
        };
        let clusters = &cfg.placement.clusters;
        // Validation makes every placement name a cluster; the agent's own otherwise.
        let first = clusters
            .first()
            .map_or_else(|| Member::new(targets, cfg, crate::spec::LOCAL, 0), member);
        let rest: Vec<Member> = clusters.iter().skip(1).map(member).collect();
        Fleet {
            members: Members { first, rest },
            cfg: cfg.clone(),
        }
    }

    /// A changed spec: clusters still named keep their state, new ones start afresh.
    pub fn update(&mut self, targets: &Targets, cfg: &Arc<ScalerConfig>, same_target: bool) {
        let old = std::mem::replace(self, Fleet::new(targets, cfg));
        if !same_target {
            return;
        }
        let old_names: Vec<&str> = old.cfg.placement.names().collect();
        let mut kept: Vec<Option<Member>> = old.members.into_vec().into_iter().map(Some).collect();
        for (m, name) in self.members.iter_mut().zip(cfg.placement.names()) {
            if let Some(k) = old_names
                .iter()
                .position(|o| *o == name)
                .and_then(|i| kept.get_mut(i).and_then(Option::take))
            {
                *m = k;
            }
        }
    }

    pub fn placement(&self) -> &Placement {
        &self.cfg.placement
    }

    /// The cluster of member `i`.
    pub fn name(&self, i: usize) -> &str {
        self.cfg
            .placement
            .clusters
            .get(i)
            .map_or("", |c| c.name.as_ref())
    }

    /// The environment of the target's container in the first cluster (`<key>FromEnv`); `None`
    /// for a simulated target.
    pub async fn container_env(
        &self,
        container: Option<&str>,
    ) -> Option<Result<super::env::ContainerEnv, super::TargetError>> {
        self.members.first.target.container_env(container).await
    }

    /// Read every cluster's `/scale` at once.
    pub async fn read(&mut self) -> Current {
        if self.members.rest.is_empty() {
            // A plain scaler: one read, no list of futures (10,000 scalers, every tick).
            let read = self.members.first.target.read().await;
            self.members.first.absorb(read);
        } else {
            let reads =
                futures::future::join_all(self.members.iter().map(|m| m.target.read())).await;
            for (m, read) in self.members.iter_mut().zip(reads) {
                m.absorb(read);
            }
        }
        if self.members.iter().all(|m| m.read.is_none()) {
            let why: Vec<String> = self
                .members
                .iter()
                .filter_map(|m| m.error.as_ref().map(|e| e.to_string()))
                .collect();
            return Current::Unreadable(why.join("; "));
        }
        Current::Total(self.in_force())
    }

    /// The split of `total` and the writes toward it, from this tick's reads.
    pub fn plan(&mut self, total: u32) -> Plan {
        let p = &self.cfg.placement;
        let threshold = p.failure_threshold;
        let slots: Vec<Slot> = p
            .clusters
            .iter()
            .zip(&self.members)
            .map(|(c, m)| Slot {
                weight: c.weight,
                min: c.min,
                max: c.max,
                reachable: m.reach.reachable(threshold),
            })
            .collect();
        let current: Vec<Option<u32>> = self.members.iter().map(|m| m.read).collect();
        let plan = placement::plan(total, &slots, p.policy, &current);
        for (m, share) in self.members.iter_mut().zip(&plan.shares) {
            m.share = Some(*share);
        }
        plan
    }

    /// Write each member its `Some(n)` of `writes`, all at once (each under its cluster's
    /// deadline): per member asked, whether it was written (a dry run never writes). A plain
    /// scaler's one write needs no list of futures.
    pub async fn write_all(
        &mut self,
        writes: &[Option<u32>],
    ) -> Vec<Option<Result<bool, TargetError>>> {
        let want = |i: usize| writes.get(i).copied().flatten();
        let results: Vec<Option<Result<bool, TargetError>>> = if self.members.rest.is_empty() {
            match want(0) {
                Some(n) => vec![Some(self.members.first.target.scale(n).await)],
                None => vec![None],
            }
        } else {
            futures::future::join_all(self.members.iter().enumerate().map(|(i, m)| async move {
                match want(i) {
                    Some(n) => Some(m.target.scale(n).await),
                    None => None,
                }
            }))
            .await
        };
        for (i, res) in results.iter().enumerate() {
            if let (Some(n), Some(res)) = (want(i), res) {
                self.members[i].absorb_write(n, res);
            }
        }
        results
    }

    /// Each member's competing HorizontalPodAutoscaler, if any (from a list per namespace
    /// shared by every scaler there, at most every 30 s). A member not read this tick is not
    /// asked: nothing is written to it, and a silent cluster must not cost a second deadline.
    pub async fn competing_hpas(&self) -> Vec<Option<String>> {
        async fn of(m: &Member) -> Option<String> {
            m.read?;
            m.target.competing_hpa().await
        }
        if self.members.rest.is_empty() {
            return vec![of(&self.members.first).await];
        }
        let mut each = Vec::with_capacity(self.members.len());
        for m in self.members.iter() {
            each.push(of(m));
        }
        futures::future::join_all(each).await
    }

    /// Before the writes of a scale-down: for each member whose count `writes` lowers, its pods
    /// (by the selector of its last read) and their deletion costs for `hosts` (each worker
    /// host's slots in use), the changed ones written, a few at a time. `None` for a member
    /// that is not lowered or has no pods to list (a simulated target, no selector).
    pub async fn steer(
        &self,
        writes: &[Option<u32>],
        hosts: &[(String, u32)],
    ) -> Vec<Option<Result<Steered, TargetError>>> {
        let mut each = Vec::with_capacity(self.members.len());
        for (i, m) in self.members.iter().enumerate() {
            each.push(steer_member(m, writes.get(i).copied().flatten(), hosts));
        }
        futures::future::join_all(each).await
    }

    /// The count in force over the reachable clusters: this tick's count, else the last read
    /// (a cluster failing below the threshold still counts).
    pub fn in_force(&self) -> u32 {
        let threshold = self.cfg.placement.failure_threshold;
        self.members
            .iter()
            .filter(|m| m.reach.reachable(threshold))
            .map(|m| u64::from(m.read.or(m.last).unwrap_or(0)))
            .sum::<u64>()
            .min(u64::from(u32::MAX)) as u32
    }
}

/// [`Fleet::steer`] for one member written `to`.
async fn steer_member(
    m: &Member,
    to: Option<u32>,
    hosts: &[(String, u32)],
) -> Option<Result<Steered, TargetError>> {
    if to? >= m.read? {
        return None;
    }
    let pods = match m.target.pods(m.selector.as_deref()?).await? {
        Ok(pods) => pods,
        Err(e) => return Some(Err(e)),
    };
    let steer = idle_first::steer(&pods, hosts);
    let mut done = Steered {
        pods: pods.len() as u32,
        steer,
        written: 0,
        errors: Vec::new(),
    };
    if let Steer::Costs { writes, .. } = &done.steer {
        use futures::StreamExt;
        let mut patches = Vec::with_capacity(writes.len());
        for (pod, cost) in writes {
            patches.push(m.target.set_cost(pod, *cost));
        }
        let mut results = futures::stream::iter(patches).buffer_unordered(STEER_CONCURRENCY);
        while let Some(r) = results.next().await {
            match r {
                Ok(true) => done.written += 1,
                Ok(false) => {}
                Err(e) => done.errors.push(e),
            }
        }
    }
    Some(Ok(done))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(placement: &str) -> Arc<ScalerConfig> {
        let yaml = format!(
            "apiVersion: scaling.example.com/v1alpha1\nkind: TemporalScaler\nmetadata: {{name: s}}\nspec:\n  scaleTargetRef: {{name: w}}\n  triggers:\n  - type: temporal\n    metadata: {{endpoint: \"t:7233\", taskQueue: q}}\n  placement:\n{placement}\n"
        );
        Arc::new(
            crate::source::dir::parse_file(std::path::Path::new("s.yaml"), &yaml)
                .unwrap()
                .remove(0),
        )
    }

    #[tokio::test]
    async fn reads_sum_plans_split_and_a_changed_spec_keeps_the_clusters_still_named() {
        let targets = Targets::Simulated;
        let two = cfg("    clusters: [{name: local, weight: 2, minReplicaCount: 1}, {name: eu}]");
        let mut fleet = Fleet::new(&targets, &two);
        assert_eq!(fleet.members.len(), 2);
        assert_eq!((fleet.name(0), fleet.name(1)), ("local", "eu"));
        // Simulated targets start at their cluster's min.
        assert!(matches!(fleet.read().await, Current::Total(1)));
        let plan = fleet.plan(6);
        assert_eq!(plan.shares, [4, 2]);
        assert_eq!(plan.writes, [Some(4), Some(2)]);
        let wrote = fleet.write_all(&plan.writes).await;
        assert_eq!(wrote.len(), 2);
        for res in wrote {
            assert_eq!(res.and_then(Result::ok), Some(true));
        }
        assert_eq!(fleet.members[1].read, Some(2));
        assert_eq!(fleet.in_force(), 6);
        assert!(matches!(fleet.read().await, Current::Total(6)));

        // eu stays, local goes, us comes: eu keeps its count and reachability.
        let next = cfg("    clusters: [{name: eu}, {name: us}]");
        fleet.update(&targets, &next, true);
        assert_eq!((fleet.name(0), fleet.name(1)), ("eu", "us"));
        assert_eq!(fleet.members[0].last, Some(2));
        assert_eq!(fleet.members[1].last, None);
        assert_eq!(fleet.members[0].share, Some(2));
        // A different target: nothing is kept.
        fleet.update(&targets, &next, false);
        assert_eq!(fleet.members[0].last, None);
    }
}
