//! The worker-capacity signal: task-slot usage from the workers' own heartbeats (ListWorkers),
//! summarised per trigger. Pure: the heartbeats and the clock come in as values.
//!
//! Fast workers keep a queue's backlog at 0 while every slot is busy; backlog alone then reads
//! "no load" and scales busy workers away. Slot usage says how busy the workers are.

use crate::spec::QueueType;
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// A kind of task slot a worker reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SlotKind {
    WorkflowTask,
    Activity,
    Nexus,
    LocalActivity,
}

impl SlotKind {
    pub const ALL: [SlotKind; 4] = [
        SlotKind::WorkflowTask,
        SlotKind::Activity,
        SlotKind::Nexus,
        SlotKind::LocalActivity,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SlotKind::WorkflowTask => "workflowTask",
            SlotKind::Activity => "activity",
            SlotKind::Nexus => "nexus",
            SlotKind::LocalActivity => "localActivity",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// The slot kinds that serve a trigger's queue types: a workflow queue's tasks run in
    /// workflow-task slots, and the local activities they start in local-activity slots.
    pub fn for_queue_types(types: &[QueueType]) -> Vec<SlotKind> {
        let mut kinds = Vec::new();
        for t in types {
            match t {
                QueueType::Workflow => {
                    kinds.extend([SlotKind::WorkflowTask, SlotKind::LocalActivity])
                }
                QueueType::Activity => kinds.push(SlotKind::Activity),
                QueueType::Nexus => kinds.push(SlotKind::Nexus),
            }
        }
        kinds
    }
}

/// One kind of slots of one worker: `available` is `None` when the bound is unknown (the
/// heartbeat says -1, e.g. a resource-based slot supplier).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slots {
    pub used: u32,
    pub available: Option<u32>,
}

/// What one worker's last heartbeat says.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkerSample {
    /// `host_info.host_name`: one pod, as the HPA counts pods.
    pub host: String,
    /// Status RUNNING (not shutting down or shut down).
    pub running: bool,
    pub heartbeat_at: Option<SystemTime>,
    /// Indexed by [`SlotKind`].
    pub slots: [Slots; 4],
}

impl WorkerSample {
    pub fn slots(&self, kind: SlotKind) -> Slots {
        self.slots[kind.index()]
    }
}

/// One slot kind over the counted workers.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KindCapacity {
    pub kind: SlotKind,
    /// Slots in use, on every counted worker (known bound or not).
    pub used: u64,
    /// Free slots, on the workers with a known bound.
    pub available: u64,
    /// used / (used + available) over the workers with a known bound.
    pub utilization: Option<f64>,
    /// Hosts with a slot of this kind in use.
    pub busy_floor: u32,
}

/// The capacity signal of one trigger this tick.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Capacity {
    /// Workers counted: RUNNING, with a recent heartbeat.
    pub workers: u32,
    /// Workers left out: stale heartbeat, or shutting down.
    pub ignored: u32,
    /// Distinct hosts among the counted workers: the replica basis.
    pub hosts: u32,
    /// Slots in use and free, over the trigger's slot kinds.
    pub used: u64,
    pub available: u64,
    /// The most constrained kind's utilization (`None` when no kind has a known bound).
    pub utilization: Option<f64>,
    /// The kind that sets `utilization`.
    pub constrained: Option<SlotKind>,
    /// Hosts with a slot of the trigger's kinds in use: never fewer replicas while they are.
    /// A busy slot cannot move to another pod, so each busy host is a replica of its own,
    /// however many free slots the others have. For a StatefulSet, at least the highest busy
    /// ordinal + 1: its scale-downs remove the highest ordinals, busy or not.
    pub busy_floor: u32,
    /// For a StatefulSet target: the highest ordinal among the busy hosts named
    /// `<statefulset>-<ordinal>`.
    pub highest_busy_ordinal: Option<u32>,
    /// Every counted host (sorted) with its slots in use of the trigger's kinds, 0 for an idle
    /// one: which pods are busy, for the scale-down that removes idle ones first. Kept for the
    /// tick only.
    #[serde(skip)]
    pub host_slots: Vec<(String, u32)>,
    pub kinds: Vec<KindCapacity>,
}

/// Summarise the heartbeats of a trigger's workers for its slot kinds. Workers that are not
/// RUNNING, or whose last heartbeat is older than `max_age` (or has no time), are left out:
/// a killed worker keeps its last heartbeat on the server. `statefulset`: the target's name
/// when it is a StatefulSet, whose busy ordinals then raise the floor.
pub fn summarize(
    samples: &[WorkerSample],
    kinds: &[SlotKind],
    now: SystemTime,
    max_age: Duration,
    statefulset: Option<&str>,
) -> Capacity {
    let fresh = |w: &WorkerSample| {
        w.running
            && w.heartbeat_at.is_some_and(|at| {
                // A heartbeat from a clock ahead of ours is fresh.
                now.duration_since(at).map_or(true, |age| age <= max_age)
            })
    };
    let counted: Vec<&WorkerSample> = samples.iter().filter(|w| fresh(w)).collect();
    let mut hosts: Vec<&str> = counted.iter().map(|w| w.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut busy: Vec<&str> = counted
        .iter()
        .filter(|w| kinds.iter().any(|&k| w.slots(k).used > 0))
        .map(|w| w.host.as_str())
        .collect();
    busy.sort_unstable();
    busy.dedup();
    let highest_busy_ordinal =
        statefulset.and_then(|set| busy.iter().filter_map(|h| ordinal(h, set)).max());
    let host_slots = hosts
        .iter()
        .map(|&h| {
            let used: u64 = counted
                .iter()
                .filter(|w| w.host == h)
                .flat_map(|w| kinds.iter().map(|&k| u64::from(w.slots(k).used)))
                .sum();
            (h.to_string(), used.min(u64::from(u32::MAX)) as u32)
        })
        .collect();
    let mut cap = Capacity {
        workers: counted.len() as u32,
        ignored: (samples.len() - counted.len()) as u32,
        hosts: hosts.len() as u32,
        busy_floor: (busy.len() as u32)
            .max(highest_busy_ordinal.map_or(0, |o| o.saturating_add(1))),
        highest_busy_ordinal,
        host_slots,
        ..Capacity::default()
    };
    for &kind in kinds {
        let k = kind_capacity(&counted, kind);
        cap.used += k.used;
        cap.available += k.available;
        if let Some(u) = k.utilization
            && cap.utilization.is_none_or(|best| u > best)
        {
            cap.utilization = Some(u);
            cap.constrained = Some(kind);
        }
        cap.kinds.push(k);
    }
    cap
}

/// The ordinal of a StatefulSet `set`'s pod named `host` (`<set>-<ordinal>`, as the
/// StatefulSet controller names them: decimal, no leading zero), if it is one.
pub fn ordinal(host: &str, set: &str) -> Option<u32> {
    let n = host.strip_prefix(set)?.strip_prefix('-')?;
    let canonical =
        !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && (n == "0" || !n.starts_with('0'));
    canonical.then(|| n.parse().ok()).flatten()
}

fn kind_capacity(workers: &[&WorkerSample], kind: SlotKind) -> KindCapacity {
    let mut used = 0u64;
    let (mut known_used, mut known_free) = (0u64, 0u64);
    let mut busy_hosts: Vec<&str> = Vec::new();
    for w in workers {
        let s = w.slots(kind);
        used += u64::from(s.used);
        if let Some(free) = s.available {
            known_used += u64::from(s.used);
            known_free += u64::from(free);
        }
        if s.used > 0 {
            busy_hosts.push(&w.host);
        }
    }
    busy_hosts.sort_unstable();
    busy_hosts.dedup();
    let total = known_used + known_free;
    let utilization = (total > 0).then(|| known_used as f64 / total as f64);
    let busy_floor = busy_hosts.len() as u32;
    KindCapacity {
        kind,
        used,
        available: known_free,
        utilization,
        busy_floor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn worker(host: &str, age_secs: u64, running: bool, slots: [(u32, i64); 4]) -> WorkerSample {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        WorkerSample {
            host: host.into(),
            running,
            heartbeat_at: Some(now - Duration::from_secs(age_secs)),
            slots: slots.map(|(used, free)| Slots {
                used,
                available: u32::try_from(free).ok(),
            }),
        }
    }

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000)
    }

    const MAX_AGE: Duration = Duration::from_secs(180);

    #[test]
    fn the_most_constrained_kind_decides() {
        // 100 idle workflow-task slots must not hide 4 saturated activity slots.
        let w = worker("a", 1, true, [(0, 100), (4, 0), (0, 0), (0, 100)]);
        let kinds = SlotKind::for_queue_types(&[QueueType::Workflow, QueueType::Activity]);
        let c = summarize(&[w], &kinds, now(), MAX_AGE, None);
        assert_eq!(c.utilization, Some(1.0));
        assert_eq!(c.constrained, Some(SlotKind::Activity));
        assert_eq!((c.hosts, c.workers, c.used, c.available), (1, 1, 4, 200));
        assert_eq!(c.busy_floor, 1);
    }

    #[test]
    fn stale_and_shutting_down_workers_are_left_out() {
        let busy = [(0, 10), (9, 1), (0, 0), (0, 10)];
        let samples = [
            worker("a", 1, true, busy),
            worker("b", 181, true, busy),
            worker("c", 1, false, busy),
        ];
        let c = summarize(&samples, &[SlotKind::Activity], now(), MAX_AGE, None);
        assert_eq!((c.workers, c.ignored, c.hosts, c.used), (1, 2, 1, 9));
        let none = WorkerSample {
            heartbeat_at: None,
            ..samples[0].clone()
        };
        assert_eq!(
            summarize(&[none], &[SlotKind::Activity], now(), MAX_AGE, None).workers,
            0
        );
    }

    #[test]
    fn unknown_bounds_count_for_the_floor_not_for_utilization() {
        let samples = [
            worker("a", 1, true, [(0, 0), (3, -1), (0, 0), (0, 0)]),
            worker("b", 1, true, [(0, 0), (0, -1), (0, 0), (0, 0)]),
        ];
        let c = summarize(&samples, &[SlotKind::Activity], now(), MAX_AGE, None);
        assert_eq!(c.utilization, None);
        assert_eq!((c.used, c.available, c.busy_floor, c.hosts), (3, 0, 1, 2));
    }

    #[test]
    fn the_busy_floor_is_the_busy_hosts() {
        // Two hosts of 5 activity slots, 9 in use: both are busy.
        let samples = [
            worker("a", 1, true, [(0, 0), (5, 0), (0, 0), (0, 0)]),
            worker("b", 1, true, [(0, 0), (4, 1), (0, 0), (0, 0)]),
        ];
        let c = summarize(&samples, &[SlotKind::Activity], now(), MAX_AGE, None);
        assert_eq!(c.busy_floor, 2);
        assert_eq!(c.utilization, Some(0.9));
        // Issue 21: three hosts of 4 slots, one long activity on each of two: 2/12 in use
        // would pack into one host, but a running activity cannot move, so both stay.
        let samples = [
            worker("a", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
            worker("b", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
            worker("c", 1, true, [(0, 0), (0, 4), (0, 0), (0, 0)]),
        ];
        let c = summarize(&samples, &[SlotKind::Activity], now(), MAX_AGE, None);
        assert_eq!((c.busy_floor, c.hosts, c.used), (2, 3, 2));
        // A host busy in another of the trigger's kinds counts once, for the union.
        let samples = [
            worker("a", 1, true, [(1, 3), (1, 3), (0, 0), (0, 0)]),
            worker("b", 1, true, [(1, 3), (0, 4), (0, 0), (0, 0)]),
            worker("c", 1, true, [(0, 4), (0, 4), (0, 0), (0, 0)]),
        ];
        let kinds = [SlotKind::WorkflowTask, SlotKind::Activity];
        let c = summarize(&samples, &kinds, now(), MAX_AGE, None);
        assert_eq!(c.busy_floor, 2);
        assert_eq!(
            c.kinds.iter().map(|k| k.busy_floor).collect::<Vec<_>>(),
            [2, 1]
        );
        // Two workers in one pod are one host.
        let samples = [
            worker("a", 1, true, [(0, 0), (1, 4), (0, 0), (0, 0)]),
            worker("a", 1, true, [(0, 0), (1, 4), (0, 0), (0, 0)]),
        ];
        let c = summarize(&samples, &[SlotKind::Activity], now(), MAX_AGE, None);
        assert_eq!((c.hosts, c.workers, c.busy_floor), (1, 2, 1));
    }

    #[test]
    fn a_statefulset_keeps_its_highest_busy_ordinal() {
        // One busy pod, ordinal 2 of web-0..web-3: a StatefulSet removes the highest ordinals,
        // so 3 replicas keep web-2; a Deployment needs only the one busy host.
        let samples = [
            worker("web-0", 1, true, [(0, 0), (0, 4), (0, 0), (0, 0)]),
            worker("web-2", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
            worker("web-3", 1, true, [(0, 0), (0, 4), (0, 0), (0, 0)]),
        ];
        let kinds = [SlotKind::Activity];
        let set = summarize(&samples, &kinds, now(), MAX_AGE, Some("web"));
        assert_eq!((set.busy_floor, set.highest_busy_ordinal), (3, Some(2)));
        let plain = summarize(&samples, &kinds, now(), MAX_AGE, None);
        assert_eq!((plain.busy_floor, plain.highest_busy_ordinal), (1, None));
        // Hosts that are not this StatefulSet's pods count as busy hosts only.
        let samples = [
            worker("web-1", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
            worker("webapp-7", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
            worker("other", 1, true, [(0, 0), (1, 3), (0, 0), (0, 0)]),
        ];
        let c = summarize(&samples, &kinds, now(), MAX_AGE, Some("web"));
        assert_eq!((c.busy_floor, c.highest_busy_ordinal), (3, Some(1)));
    }

    #[test]
    fn ordinals_are_the_statefulset_controllers_names() {
        assert_eq!(ordinal("web-0", "web"), Some(0));
        assert_eq!(ordinal("web-12", "web"), Some(12));
        assert_eq!(ordinal("my-web-3", "my-web"), Some(3));
        for not in [
            "web", "web-", "web-01", "web-1a", "webx-1", "web-+1", "xweb-1",
        ] {
            assert_eq!(ordinal(not, "web"), None, "{not}");
        }
        assert_eq!(ordinal("web-99999999999", "web"), None, "beyond u32");
    }

    #[test]
    fn only_the_triggers_slot_kinds_count() {
        let w = worker("a", 1, true, [(1, 9), (10, 0), (2, 8), (0, 10)]);
        let c = summarize(
            &[w],
            &SlotKind::for_queue_types(&[QueueType::Workflow]),
            now(),
            MAX_AGE,
            None,
        );
        assert_eq!(c.used, 1);
        assert_eq!(c.utilization, Some(0.1));
        assert_eq!(
            c.kinds.iter().map(|k| k.kind).collect::<Vec<_>>(),
            [SlotKind::WorkflowTask, SlotKind::LocalActivity]
        );
    }

    fn arb_worker() -> impl Strategy<Value = WorkerSample> {
        (
            0u8..4,
            0u64..400,
            any::<bool>(),
            prop::array::uniform4((0u32..50, -1i64..50)),
        )
            .prop_map(|(h, age, running, slots)| {
                worker(&format!("h{h}"), age, running, slots.map(|(u, f)| (u, f)))
            })
    }

    proptest! {
        /// For a StatefulSet, the floor keeps every busy ordinal: never below the highest
        /// busy ordinal + 1, nor below the busy hosts.
        #[test]
        fn a_statefulset_floor_keeps_every_busy_ordinal(
            samples in prop::collection::vec(arb_worker(), 0..12),
        ) {
            // arb_worker's hosts h0..h3 as the pods h-0..h-3 of StatefulSet "h".
            let samples: Vec<WorkerSample> = samples
                .into_iter()
                .map(|mut w| {
                    w.host = w.host.replace('h', "h-");
                    w
                })
                .collect();
            let kinds = [SlotKind::Activity];
            let set = summarize(&samples, &kinds, now(), MAX_AGE, Some("h"));
            let plain = summarize(&samples, &kinds, now(), MAX_AGE, None);
            for w in samples.iter().filter(|w| w.running && w.slots(SlotKind::Activity).used > 0) {
                if now().duration_since(w.heartbeat_at.unwrap()).unwrap() <= MAX_AGE {
                    let o = ordinal(&w.host, "h").unwrap();
                    prop_assert!(set.busy_floor > o, "{} busy, floor {}", w.host, set.busy_floor);
                }
            }
            prop_assert!(set.busy_floor >= plain.busy_floor);
            prop_assert_eq!(set.busy_floor == 0, plain.busy_floor == 0);
        }

        #[test]
        fn summaries_are_bounded_and_consistent(
            samples in prop::collection::vec(arb_worker(), 0..12),
            kinds in prop::sample::subsequence(SlotKind::ALL.to_vec(), 0..=4),
        ) {
            let c = summarize(&samples, &kinds, now(), MAX_AGE, None);
            prop_assert_eq!(c.workers + c.ignored, samples.len() as u32);
            prop_assert!(c.hosts <= c.workers);
            if let Some(u) = c.utilization {
                prop_assert!((0.0..=1.0).contains(&u));
                prop_assert!(c.kinds.iter().all(|k| k.utilization.is_none_or(|x| x <= u)));
            }
            // The floor is exactly the distinct fresh hosts with a slot of the trigger's kinds
            // in use: never more than the hosts, nor than the busy slots.
            let mut busy: Vec<&str> = samples
                .iter()
                .filter(|w| w.running && now().duration_since(w.heartbeat_at.unwrap()).unwrap() <= MAX_AGE)
                .filter(|w| kinds.iter().any(|&k| w.slots(k).used > 0))
                .map(|w| w.host.as_str())
                .collect();
            busy.sort_unstable();
            busy.dedup();
            prop_assert_eq!(c.busy_floor, busy.len() as u32);
            prop_assert_eq!(c.busy_floor > 0, c.used > 0);
            prop_assert!(c.busy_floor <= c.hosts);
            prop_assert!(u64::from(c.busy_floor) <= c.used);
            // Stale or stopped workers change nothing.
            let fresh: Vec<WorkerSample> = samples
                .iter()
                .filter(|w| w.running && now().duration_since(w.heartbeat_at.unwrap()).unwrap() <= MAX_AGE)
                .cloned()
                .collect();
            let again = summarize(&fresh, &kinds, now(), MAX_AGE, None);
            prop_assert_eq!(
                (again.hosts, again.used, again.available, again.busy_floor, again.utilization),
                (c.hosts, c.used, c.available, c.busy_floor, c.utilization)
            );
        }
    }
}
