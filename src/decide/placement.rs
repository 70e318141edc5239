//! Placement: one scaler's total replica count split over several clusters (issue 15's
//! `spec.placement`). Pure: which clusters are reachable comes in as data.
//!
//! - `Weighted`: each reachable cluster gets `total × weight / Σ weight`, held within its
//!   [min, max] with what a bound cuts off spilled over to the others in proportion, and
//!   rounded by the largest-remainder method (ties to the cluster listed first). A cluster of
//!   weight 0 holds its min and takes only what the others cannot.
//! - `Failover`: clusters are filled in the listed order, each up to its max, after every
//!   reachable cluster has its min.
//!
//! An unreachable cluster gets nothing, and its share goes to the reachable ones. The shares
//! sum to the total clamped to [Σ min, Σ max] of the reachable clusters.

pub use crate::spec::PlacementPolicy as Policy;

/// One cluster of a placement, as the split sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub weight: u32,
    pub min: u32,
    pub max: u32,
    pub reachable: bool,
}

/// The shares, one per cluster in the order given.
pub fn split(total: u32, clusters: &[Slot], policy: Policy) -> Vec<u32> {
    let mut shares = vec![0u32; clusters.len()];
    let live: Vec<usize> = (0..clusters.len())
        .filter(|&i| clusters[i].reachable)
        .collect();
    if live.is_empty() {
        return shares;
    }
    // A max below the min is read as the min (validation refuses it; the split stays safe).
    let min = |i: usize| u64::from(clusters[i].min);
    let max = |i: usize| u64::from(clusters[i].max.max(clusters[i].min));
    let lo: u64 = live.iter().map(|&i| min(i)).sum();
    let hi: u64 = live.iter().map(|&i| max(i)).sum();
    let total = u64::from(total).clamp(lo, hi);
    match policy {
        Policy::Failover => {
            let mut left = total - lo;
            for &i in &live {
                let extra = left.min(max(i) - min(i));
                shares[i] = (min(i) + extra) as u32;
                left -= extra;
            }
        }
        Policy::Weighted => weighted(total, clusters, &live, &mut shares),
    }
    shares
}

/// Bounded proportional shares: find which clusters sit at a bound (repeatedly fixing the
/// side that is violated more), split the rest exactly by weight, then round by largest
/// remainder. All in integers: no float drift between agents.
fn weighted(total: u64, clusters: &[Slot], live: &[usize], shares: &mut [u32]) {
    let min = |i: usize| u64::from(clusters[i].min);
    let max = |i: usize| u64::from(clusters[i].max.max(clusters[i].min));
    // All weights zero: equal weights.
    let all_zero = live.iter().all(|&i| clusters[i].weight == 0);
    let weight = |i: usize| {
        if all_zero {
            1
        } else {
            u64::from(clusters[i].weight)
        }
    };
    // Clusters of weight 0 take only their min.
    let mut fixed: Vec<Option<u64>> = vec![None; clusters.len()];
    for &i in live {
        if weight(i) == 0 {
            fixed[i] = Some(min(i));
        }
    }
    loop {
        let free: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| fixed[i].is_none())
            .collect();
        if free.is_empty() {
            break;
        }
        let taken: u64 = live.iter().filter_map(|&i| fixed[i]).sum();
        let rest = total.saturating_sub(taken);
        let w: u64 = free.iter().map(|&i| weight(i)).sum();
        // ideal_i = rest × w_i / w, compared with the bounds as rest × w_i vs bound × w.
        let (mut over, mut under) = (0u128, 0u128);
        for &i in &free {
            let num = u128::from(rest) * u128::from(weight(i));
            let (lo, hi) = (
                u128::from(min(i)) * u128::from(w),
                u128::from(max(i)) * u128::from(w),
            );
            over += num.saturating_sub(hi);
            under += lo.saturating_sub(num);
        }
        if over == 0 && under == 0 {
            // Exact proportional split of `rest`, then the largest remainders.
            let mut given = 0u64;
            let mut rems: Vec<(u64, usize)> = Vec::with_capacity(free.len());
            for &i in &free {
                let num = rest * weight(i);
                fixed[i] = Some(num / w);
                given += num / w;
                rems.push((num % w, i));
            }
            // Largest remainder first; ties to the cluster listed first.
            rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for &(_, i) in rems.iter().take((rest - given) as usize) {
                fixed[i] = fixed[i].map(|s| s + 1);
            }
            break;
        }
        for &i in &free {
            let num = u128::from(rest) * u128::from(weight(i));
            if over >= under && num > u128::from(max(i)) * u128::from(w) {
                fixed[i] = Some(max(i));
            } else if over < under && num < u128::from(min(i)) * u128::from(w) {
                fixed[i] = Some(min(i));
            }
        }
    }
    // What the weighted clusters cannot hold (all at their max) spills to the clusters of
    // weight 0, in order: weight 0 is a standby that takes only the overflow.
    let mut left = total.saturating_sub(live.iter().filter_map(|&i| fixed[i]).sum());
    for &i in live {
        let share = fixed[i].unwrap_or(min(i));
        let extra = left.min(max(i) - share);
        left -= extra;
        shares[i] = (share + extra) as u32;
    }
}

/// A cluster's reachability from its reads: unreachable after `threshold` failed reads in a
/// row (`placement`'s `failureThreshold`), reachable again at its first good read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reachability {
    failures: u32,
}

impl Reachability {
    pub fn record(&mut self, read_ok: bool) {
        self.failures = if read_ok {
            0
        } else {
            self.failures.saturating_add(1)
        };
    }

    pub fn reachable(&self, threshold: u32) -> bool {
        self.failures < threshold.max(1)
    }

    /// A failure that lasts until someone changes something (an unknown cluster, a missing
    /// target): unreachable at once, whatever the threshold.
    pub fn record_lasting(&mut self) {
        self.failures = u32::MAX;
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// One tick's placement: each cluster's share of the total, and the counts to write now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub shares: Vec<u32>,
    /// `Some(n)`: write n to this cluster now (it differs from the count read).
    pub writes: Vec<Option<u32>>,
}

/// Split `total` over `slots` and step toward it from `current` (as read this tick: `None`
/// for a cluster that could not be read, which is never written).
pub fn plan(total: u32, slots: &[Slot], policy: Policy, current: &[Option<u32>]) -> Plan {
    let shares = split(total, slots, policy);
    let writes = transition(current, &shares)
        .into_iter()
        .zip(current)
        .map(|(step, now)| step.filter(|s| Some(*s) != *now))
        .collect();
    Plan { shares, writes }
}

/// The counts to write now, on the way from the counts in force (`current`, as read: `None`
/// where a cluster could not be read) to the split's `target`. Gains are written at once;
/// losses only as far as the counts in force already exceed the target in total, so a cluster
/// that comes back takes its share before the others give theirs up, and the total in force
/// never dips below the smaller of the two totals. A cluster that could not be read is left
/// alone (`None`: nothing is written to it). Losses go to the clusters that lose most first.
pub fn transition(current: &[Option<u32>], target: &[u32]) -> Vec<Option<u32>> {
    let read: Vec<usize> = (0..current.len().min(target.len()))
        .filter(|&i| current[i].is_some())
        .collect();
    let cur = |i: usize| u64::from(current[i].unwrap_or(0));
    let tgt = |i: usize| u64::from(target[i]);
    let in_force: u64 = read.iter().map(|&i| cur(i)).sum();
    let wanted: u64 = read.iter().map(|&i| tgt(i)).sum();
    let mut allowed = in_force.saturating_sub(wanted);
    let mut out: Vec<Option<u32>> = current.to_vec();
    let mut losers: Vec<usize> = read.iter().copied().filter(|&i| tgt(i) < cur(i)).collect();
    losers.sort_by(|&a, &b| (cur(b) - tgt(b)).cmp(&(cur(a) - tgt(a))).then(a.cmp(&b)));
    for i in losers {
        let give = allowed.min(cur(i) - tgt(i));
        allowed -= give;
        out[i] = Some((cur(i) - give) as u32);
    }
    for &i in &read {
        if tgt(i) > cur(i) {
            out[i] = Some(target[i]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slot(weight: u32, min: u32, max: u32) -> Slot {
        Slot {
            weight,
            min,
            max,
            reachable: true,
        }
    }

    #[test]
    fn weights_two_to_one() {
        // 12 tasks at target 2 is 6 replicas: 4 and 2 (issue 15's two-cluster case).
        let c = [slot(2, 0, 10), slot(1, 0, 10)];
        assert_eq!(split(6, &c, Policy::Weighted), [4, 2]);
        // Largest remainder: 7 × 2/3 = 4.67, 7 × 1/3 = 2.33.
        assert_eq!(split(7, &c, Policy::Weighted), [5, 2]);
        // Weights are of the total, not of what is left above the mins.
        let c = [slot(2, 3, 10), slot(1, 0, 10)];
        assert_eq!(split(6, &c, Policy::Weighted), [4, 2]);
    }

    #[test]
    fn bounds_hold_and_the_excess_spills_over() {
        let c = [slot(1, 0, 2), slot(1, 0, 10), slot(2, 1, 10)];
        // Ideal 2.5, 2.5, 5: the first is capped at 2, its excess split 1:2.
        assert_eq!(split(10, &c, Policy::Weighted), [2, 3, 5]);
        // Below the mins: every cluster its min.
        assert_eq!(split(0, &c, Policy::Weighted), [0, 0, 1]);
        // Above the maxes: every cluster its max.
        assert_eq!(split(100, &c, Policy::Weighted), [2, 10, 10]);
    }

    #[test]
    fn an_unreachable_clusters_share_moves_to_the_others() {
        let mut c = [slot(2, 0, 10), slot(1, 0, 10)];
        c[0].reachable = false;
        assert_eq!(split(6, &c, Policy::Weighted), [0, 6]);
        assert_eq!(
            split(12, &c, Policy::Weighted),
            [0, 10],
            "the clamp of the reachable"
        );
        c[1].reachable = false;
        assert_eq!(split(6, &c, Policy::Weighted), [0, 0]);
    }

    #[test]
    fn failover_fills_in_order() {
        let c = [slot(0, 1, 3), slot(0, 0, 5), slot(0, 0, 5)];
        assert_eq!(split(2, &c, Policy::Failover), [2, 0, 0]);
        assert_eq!(split(6, &c, Policy::Failover), [3, 3, 0]);
        let mut down = c.clone();
        down[0].reachable = false;
        assert_eq!(split(6, &down, Policy::Failover), [0, 5, 1]);
    }

    #[test]
    fn zero_weights_take_their_min_and_all_zero_is_even() {
        let c = [slot(0, 1, 10), slot(3, 0, 10)];
        assert_eq!(split(8, &c, Policy::Weighted), [1, 7]);
        let c = [slot(0, 0, 10), slot(0, 0, 10)];
        assert_eq!(split(5, &c, Policy::Weighted), [3, 2]);
    }

    fn slots() -> impl Strategy<Value = Vec<Slot>> {
        prop::collection::vec(
            (0u32..6, 0u32..5, 0u32..12, prop::bool::weighted(0.85)).prop_map(
                |(weight, min, span, reachable)| Slot {
                    weight,
                    min,
                    max: min + span,
                    reachable,
                },
            ),
            1..6,
        )
    }

    #[test]
    fn a_returning_cluster_takes_its_share_before_the_other_gives_it_up() {
        // Weights 2:1 over a total of 6; the second cluster was away, so the first held all 6.
        let target = split(6, &[slot(2, 0, 10), slot(1, 0, 10)], Policy::Weighted);
        assert_eq!(target, [4, 2]);
        // It comes back: it gets its 2 now, the first keeps 6 (8 in force, never below 6).
        let step1 = transition(&[Some(6), Some(0)], &target);
        assert_eq!(step1, [Some(6), Some(2)]);
        // Read again with the 2 in force: the first gives up what is now extra.
        let step2 = transition(&step1, &target);
        assert_eq!(step2, [Some(4), Some(2)]);
        // A cluster that cannot be read is left alone.
        assert_eq!(transition(&[Some(6), None], &target), [Some(4), None]);
    }

    #[test]
    fn reachability_needs_failure_threshold_failures_in_a_row() {
        let mut r = Reachability::default();
        for _ in 0..2 {
            r.record(false);
            assert!(r.reachable(3));
        }
        r.record(false);
        assert!(!r.reachable(3));
        r.record(true);
        assert!(r.reachable(3));
        assert_eq!(r.failures(), 0);
    }

    proptest! {
        /// Each step moves every read cluster between its count in force and its target, gains
        /// at once, keeps the total in force at least the smaller of the two totals, and
        /// repeated steps reach the target.
        #[test]
        fn transitions_never_dip_and_arrive(
            pairs in prop::collection::vec((prop::option::weighted(0.9, 0u32..20), 0u32..20), 1..6),
        ) {
            let current: Vec<Option<u32>> = pairs.iter().map(|p| p.0).collect();
            let target: Vec<u32> = pairs.iter().map(|p| p.1).collect();
            let step = transition(&current, &target);
            let sum = |v: &[Option<u32>]| v.iter().flatten().map(|&x| u64::from(x)).sum::<u64>();
            let wanted: u64 = current
                .iter()
                .zip(&target)
                .filter(|(c, _)| c.is_some())
                .map(|(_, &t)| u64::from(t))
                .sum();
            prop_assert!(sum(&step) >= sum(&current).min(wanted));
            for ((c, t), s) in current.iter().zip(&target).zip(&step) {
                match (c, s) {
                    (None, None) => {}
                    (Some(c), Some(s)) => {
                        prop_assert!(s >= c.min(t) && s <= c.max(t));
                        if t > c {
                            prop_assert_eq!(s, t);
                        }
                    }
                    _ => prop_assert!(false, "{:?} → {:?}", current, step),
                }
            }
            // The step's counts in force, read again: the target after one more step.
            let again = transition(&step, &target);
            for ((c, t), a) in current.iter().zip(&target).zip(&again) {
                if c.is_some() {
                    prop_assert_eq!(*a, Some(*t));
                }
            }
        }

        /// The shares sum to the total clamped to the reachable clusters' bounds, each share
        /// stays within its cluster's bounds, and an unreachable cluster gets nothing.
        #[test]
        fn shares_sum_to_the_clamped_total_within_bounds(
            c in slots(),
            total in 0u32..80,
            failover in any::<bool>(),
        ) {
            let policy = if failover { Policy::Failover } else { Policy::Weighted };
            let s = split(total, &c, policy);
            let live: Vec<&Slot> = c.iter().filter(|x| x.reachable).collect();
            let lo: u32 = live.iter().map(|x| x.min).sum();
            let hi: u32 = live.iter().map(|x| x.max).sum();
            let want = if live.is_empty() { 0 } else { total.clamp(lo, hi) };
            prop_assert_eq!(s.iter().sum::<u32>(), want);
            for (x, &share) in c.iter().zip(&s) {
                if x.reachable {
                    prop_assert!((x.min..=x.max).contains(&share), "{:?} got {}", x, share);
                } else {
                    prop_assert_eq!(share, 0);
                }
            }
        }

        /// Stable under small changes: one more replica in total moves no cluster's share by
        /// more than 2 (largest remainder may take one from a cluster while giving two to
        /// another), and never lowers a share under Failover.
        #[test]
        fn one_more_replica_moves_shares_a_little(
            c in slots(),
            total in 0u32..80,
            failover in any::<bool>(),
        ) {
            let policy = if failover { Policy::Failover } else { Policy::Weighted };
            let a = split(total, &c, policy);
            let b = split(total + 1, &c, policy);
            for (x, y) in a.iter().zip(&b) {
                prop_assert!((i64::from(*y) - i64::from(*x)).abs() <= 2, "{:?} → {:?}", a, b);
                if failover {
                    prop_assert!(y >= x, "{:?} → {:?}", a, b);
                }
            }
        }

        /// Proportional within rounding: where no bound binds, each share is the floor or the
        /// ceiling of total × weight / Σ weight.
        #[test]
        fn unbounded_shares_are_proportional(
            weights in prop::collection::vec(1u32..10, 1..6),
            total in 0u32..200,
        ) {
            let c: Vec<Slot> = weights.iter().map(|&w| slot(w, 0, 1000)).collect();
            let s = split(total, &c, Policy::Weighted);
            let sum: u32 = weights.iter().sum();
            for (w, share) in weights.iter().zip(&s) {
                let ideal = f64::from(total) * f64::from(*w) / f64::from(sum);
                prop_assert!((f64::from(*share) - ideal).abs() < 1.0, "{} vs {}", share, ideal);
            }
        }
    }
}
