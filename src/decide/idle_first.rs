//! Idle pods first: which pod a scale-down removes. A ReplicaSet that scales down deletes its
//! pods with the lowest `controller.kubernetes.io/pod-deletion-cost` first (after the ones
//! not yet scheduled, pending or not ready). Set on the target's pods just before the agent
//! lowers the count, idle pods cost 0 and busy ones their slots in use, so the ReplicaSet
//! removes idle pods first and, among busy ones, the least busy.
//!
//! Pure: the pods (as listed) and each worker host's slots in use come in as values; a pod's
//! host name is its name (unless its spec sets `hostname`).

use super::TriggerReading;

/// The annotation a ReplicaSet ranks its pods by on a scale-down (int32, unset is 0).
pub const COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A pod of the target as listed: its name and its deletion cost as annotated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub name: String,
    /// The annotation's value, if set.
    pub cost: Option<String>,
}

/// What to do before a scale-down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Steer {
    /// No pod is a host that heartbeats (a pod `hostname`, workers outside the cluster): the
    /// pods cannot be told apart, nothing is written.
    Unmatched,
    /// The costs to write (only those that change), and the busy pods with their slots in use.
    Costs {
        writes: Vec<(String, i32)>,
        busy: Vec<(String, u32)>,
        /// Pods with no slot in use (or no fresh heartbeat): the ones that go first.
        idle: u32,
    },
}

/// The deletion cost of a pod with `used` slots in use: 0 when idle, else the slots in use, so
/// that among busy pods the least busy goes first.
pub fn cost(used: u32) -> i32 {
    i32::try_from(used).unwrap_or(i32::MAX)
}

/// The annotation as the ReplicaSet reads it: unset (or not an int32, which the API server
/// refuses anyway) is 0.
fn current(p: &Pod) -> i32 {
    p.cost
        .as_deref()
        .and_then(|c| c.trim().parse().ok())
        .unwrap_or(0)
}

/// Each worker host with its slots in use, over the triggers that read the capacity signal this
/// tick: the most any trigger saw on it (two triggers may read the same worker). Sorted by host.
/// `None` when no trigger has the signal (nothing says which pods are busy).
pub fn hosts(readings: &[TriggerReading]) -> Option<Vec<(String, u32)>> {
    let mut any = false;
    let mut all: Vec<(String, u32)> = Vec::new();
    for c in readings.iter().filter_map(|r| r.signals.capacity.as_ref()) {
        any = true;
        all.extend(c.capacity.host_slots.iter().cloned());
    }
    if !any {
        return None;
    }
    all.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    all.dedup_by(|later, first| later.0 == first.0);
    Some(all)
}

/// The costs for `pods` given the hosts' slots in use (`hosts` sorted by name, as [`hosts`]
/// gives them). A pod that matches no host counts as idle; if none matches, nothing is steered.
pub fn steer(pods: &[Pod], hosts: &[(String, u32)]) -> Steer {
    let used = |name: &str| {
        hosts
            .binary_search_by(|(h, _)| h.as_str().cmp(name))
            .ok()
            .map(|i| hosts[i].1)
    };
    if !pods.iter().any(|p| used(&p.name).is_some()) {
        return Steer::Unmatched;
    }
    let mut writes = Vec::new();
    let mut busy = Vec::new();
    let mut idle = 0;
    for p in pods {
        let slots = used(&p.name).unwrap_or(0);
        if slots > 0 {
            busy.push((p.name.clone(), slots));
        } else {
            idle += 1;
        }
        let want = cost(slots);
        if current(p) != want {
            writes.push((p.name.clone(), want));
        }
    }
    Steer::Costs { writes, busy, idle }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pod(name: &str, cost: Option<&str>) -> Pod {
        Pod {
            name: name.into(),
            cost: cost.map(String::from),
        }
    }

    fn hosts_of(h: &[(&str, u32)]) -> Vec<(String, u32)> {
        let mut v: Vec<(String, u32)> = h.iter().map(|(n, u)| (n.to_string(), *u)).collect();
        v.sort();
        v
    }

    #[test]
    fn busy_pods_cost_their_slots_idle_ones_nothing_and_only_changes_are_written() {
        let pods = [
            pod("w-a", None),
            pod("w-b", Some("1")),
            pod("w-c", Some("3")),
            pod("w-d", None),
        ];
        // w-a runs 2 tasks, w-b 1 (already annotated so), w-c is idle now, w-d sends no
        // heartbeat (idle).
        let hosts = hosts_of(&[("w-a", 2), ("w-b", 1), ("w-c", 0), ("elsewhere", 4)]);
        assert_eq!(
            steer(&pods, &hosts),
            Steer::Costs {
                writes: vec![("w-a".into(), 2), ("w-c".into(), 0)],
                busy: vec![("w-a".into(), 2), ("w-b".into(), 1)],
                idle: 2,
            }
        );
    }

    #[test]
    fn pods_that_match_no_heartbeat_are_not_steered() {
        // `spec.hostname` set: the hosts are not the pods' names.
        let pods = [pod("w-7f9c-x2", None), pod("w-7f9c-k4", None)];
        assert_eq!(steer(&pods, &hosts_of(&[("worker", 3)])), Steer::Unmatched);
        assert_eq!(steer(&[], &hosts_of(&[("w", 1)])), Steer::Unmatched);
    }

    #[test]
    fn unset_and_unparsable_costs_read_as_zero() {
        let pods = [pod("a", Some(" 0 ")), pod("b", Some("x")), pod("c", None)];
        let hosts = hosts_of(&[("a", 0), ("b", 0), ("c", 0)]);
        assert_eq!(
            steer(&pods, &hosts),
            Steer::Costs {
                writes: vec![],
                busy: vec![],
                idle: 3,
            }
        );
        assert_eq!(cost(u32::MAX), i32::MAX);
    }

    #[test]
    fn the_hosts_of_several_triggers_merge_to_the_most_seen() {
        use crate::decide::{CapacitySignal, Signals};
        let reading = |h: &[(&str, u32)]| TriggerReading {
            name: "t".into(),
            backlog: Ok(0),
            target: 5.0,
            activation: 0.0,
            signals: Signals {
                capacity: Some(CapacitySignal {
                    target: 0.8,
                    capacity: crate::decide::capacity::Capacity {
                        host_slots: hosts_of(h),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            },
        };
        let plain = TriggerReading {
            signals: Signals::default(),
            ..reading(&[])
        };
        assert_eq!(hosts(std::slice::from_ref(&plain)), None);
        assert_eq!(
            hosts(&[
                reading(&[("a", 1), ("b", 0)]),
                plain,
                reading(&[("a", 3), ("c", 2)])
            ]),
            Some(hosts_of(&[("a", 3), ("b", 0), ("c", 2)]))
        );
    }

    proptest! {
        /// After the writes, every busy pod costs more than every idle one, and so the
        /// ReplicaSet removes every idle pod before any busy one; nothing already right is
        /// written, and each pod at most once.
        #[test]
        fn after_the_writes_idle_pods_go_first(
            pods in prop::collection::vec((0u8..12, prop::option::of(-5i32..5)), 0..10),
            hosts in prop::collection::vec((0u8..16, 0u32..6), 0..12),
        ) {
            let mut pods: Vec<Pod> = pods
                .into_iter()
                .map(|(n, c)| pod(&format!("p{n}"), c.map(|c| c.to_string()).as_deref()))
                .collect();
            pods.sort_by(|a, b| a.name.cmp(&b.name));
            pods.dedup_by(|a, b| a.name == b.name);
            let mut hosts: Vec<(String, u32)> =
                hosts.into_iter().map(|(n, u)| (format!("p{n}"), u)).collect();
            hosts.sort();
            hosts.dedup_by(|a, b| a.0 == b.0);
            match steer(&pods, &hosts) {
                Steer::Unmatched => {
                    prop_assert!(!pods.iter().any(|p| hosts.iter().any(|h| h.0 == p.name)));
                }
                Steer::Costs { writes, busy, idle } => {
                    prop_assert_eq!(busy.len() + idle as usize, pods.len());
                    let mut after: Vec<(String, i32)> =
                        pods.iter().map(|p| (p.name.clone(), current(p))).collect();
                    for (name, c) in &writes {
                        let p = pods.iter().find(|p| &p.name == name).unwrap();
                        prop_assert_ne!(current(p), *c, "a write that changes nothing");
                        after.iter_mut().find(|a| &a.0 == name).unwrap().1 = *c;
                    }
                    let mut names: Vec<&String> = writes.iter().map(|w| &w.0).collect();
                    names.dedup();
                    prop_assert_eq!(names.len(), writes.len());
                    let is_busy = |n: &str| busy.iter().any(|b| b.0 == n);
                    let max_idle = after.iter().filter(|a| !is_busy(&a.0)).map(|a| a.1).max();
                    let min_busy = after.iter().filter(|a| is_busy(&a.0)).map(|a| a.1).min();
                    if let (Some(i), Some(b)) = (max_idle, min_busy) {
                        prop_assert!(i < b, "idle {i} vs busy {b}");
                    }
                }
            }
        }
    }
}
