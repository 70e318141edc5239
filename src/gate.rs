//! How many ticks run at once, per Temporal endpoint. A tick that waits on a slow or throttled
//! server holds its futures, its reads' buffers and its place in the rate limiter: about 2.5 KB
//! (docs/performance.md). At 100,000 scalers against a saturated server nearly all of them were
//! such ticks. Past the bound, a scaler whose time has come waits in line as what it is between
//! ticks (its cell: a 24-byte entry here) and starts when a tick of its endpoint ends, in the
//! order it came, or ahead of that when its poll was asked for at once (a start, a new spec,
//! the lease). Each endpoint has its own line and bound: an endpoint that hangs fills its own
//! places, never another's.

use crate::metrics::EndpointLabels;
use prometheus_client::metrics::{family::Family, gauge::Gauge};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Ticks in flight per endpoint: 100,000 scalers polling every 15 s are 6,700 ticks a second,
/// about 700 in flight at 100 ms a read; past that the server, not the agent, is the limit,
/// and more ticks would only wait longer. 2,048 ticks waiting on a silent server cost about
/// 5 MB.
pub const TICKS_PER_ENDPOINT: usize = 2048;

/// Something that waits in line for a place.
pub trait Admit: Send + Sync + 'static {
    /// A place came free for the wait set with `token`: run with `pass`, or give it back when
    /// the job no longer waits with that token (it was set again, or stopped), so that the
    /// next in line gets it. Called with no lock of the gate held; the pass is not dropped
    /// during the call (that would admit the next in line from inside it).
    fn admit(self: Arc<Self>, token: u64, pass: Pass) -> Option<Pass>;
}

struct Waiter {
    job: Weak<dyn Admit>,
    token: u64,
}

#[derive(Default)]
struct Lane {
    running: usize,
    waiting: VecDeque<Waiter>,
    /// Its `ticks_in_flight` and `ticks_waiting` gauges.
    gauges: Option<(Gauge, Gauge)>,
}

impl Lane {
    fn show(&self) {
        if let Some((in_flight, waiting)) = &self.gauges {
            in_flight.set(self.running as i64);
            waiting.set(self.waiting.len() as i64);
        }
    }
}

/// The families of the lanes' gauges.
struct Gauges {
    in_flight: Family<EndpointLabels, Gauge>,
    waiting: Family<EndpointLabels, Gauge>,
}

pub struct Gate {
    per_lane: usize,
    lanes: Mutex<HashMap<Arc<str>, Lane>>,
    gauges: Option<Gauges>,
}

/// A place in a lane, given back when dropped (to the next in line, if any).
pub struct Pass {
    gate: Option<Arc<Gate>>,
    lane: Arc<str>,
}

impl Pass {
    /// Give the place up without handing it on: for a tick that never started (its task was
    /// dropped as it was spawned, on a runtime that is stopping), whose drop may come while
    /// its scaler's lock is held, where admitting the next in line could come back to it.
    pub fn leave(mut self) {
        if let Some(gate) = self.gate.take() {
            let mut lanes = gate.lock();
            if let Some(l) = lanes.get_mut(&*self.lane) {
                l.running = l.running.saturating_sub(1);
                l.show();
            }
        }
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(gate) = self.gate.take() {
            gate.hand_on(self.lane.clone());
        }
    }
}

impl Gate {
    pub fn new(per_lane: usize) -> Arc<Self> {
        Self::build(per_lane, None)
    }

    /// With `temporal_autoscaler_ticks_in_flight` and `_ticks_waiting`, per endpoint.
    pub fn with_gauges(
        per_lane: usize,
        in_flight: Family<EndpointLabels, Gauge>,
        waiting: Family<EndpointLabels, Gauge>,
    ) -> Arc<Self> {
        Self::build(per_lane, Some(Gauges { in_flight, waiting }))
    }

    fn build(per_lane: usize, gauges: Option<Gauges>) -> Arc<Self> {
        Arc::new(Gate {
            per_lane: per_lane.max(1),
            lanes: Mutex::default(),
            gauges,
        })
    }

    /// A lane, kept once made: there are as many as endpoints, and a lane made and dropped
    /// with every tick of a quiet agent would cost more than it saves.
    fn lane(&self, lane: &str) -> Lane {
        Lane {
            gauges: self.gauges.as_ref().map(|g| {
                let labels = EndpointLabels {
                    endpoint: lane.to_string(),
                };
                (
                    g.in_flight.get_or_create(&labels).clone(),
                    g.waiting.get_or_create(&labels).clone(),
                )
            }),
            ..Lane::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Lane>> {
        self.lanes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place in `lane` now, or `None`: then `job` waits in line (at its head when `first`)
    /// and is admitted with `token` when a place comes free.
    pub fn enter(
        self: &Arc<Self>,
        lane: &str,
        job: Weak<dyn Admit>,
        token: u64,
        first: bool,
    ) -> Option<Pass> {
        let mut lanes = self.lock();
        let key = match lanes.get_key_value(lane) {
            Some((k, _)) => k.clone(),
            None => {
                let k: Arc<str> = Arc::from(lane);
                lanes.insert(k.clone(), self.lane(lane));
                k
            }
        };
        let l = lanes.get_mut(lane)?;
        if l.running < self.per_lane {
            l.running += 1;
            l.show();
            return Some(Pass {
                gate: Some(self.clone()),
                lane: key,
            });
        }
        let w = Waiter { job, token };
        if first {
            l.waiting.push_front(w);
        } else {
            l.waiting.push_back(w);
        }
        l.show();
        None
    }

    /// A place in `lane` came free: the first waiter still waiting takes it, else it is free.
    fn hand_on(self: &Arc<Self>, lane: Arc<str>) {
        loop {
            let next = {
                let mut lanes = self.lock();
                let Some(l) = lanes.get_mut(&*lane) else {
                    return;
                };
                let next = l.waiting.pop_front();
                if next.is_none() {
                    l.running = l.running.saturating_sub(1);
                    // A line that emptied gives its memory back (a burst's thousands).
                    if l.waiting.capacity() > 64 {
                        l.waiting.shrink_to_fit();
                    }
                }
                l.show();
                match next {
                    Some(w) => w,
                    None => return,
                }
            };
            let Some(job) = next.job.upgrade() else {
                continue;
            };
            let pass = Pass {
                gate: Some(self.clone()),
                lane: lane.clone(),
            };
            match job.admit(next.token, pass) {
                None => return,
                // Not wanted: defused (it must not hand on again), and offered to the next.
                Some(mut p) => p.gate = None,
            }
        }
    }

    /// Ticks running and scalers waiting in `lane` (tests, metrics).
    pub fn load(&self, lane: &str) -> (usize, usize) {
        self.lock()
            .get(lane)
            .map_or((0, 0), |l| (l.running, l.waiting.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it was admitted with; keeps the passes it takes until told to let go.
    #[derive(Default)]
    struct Job {
        want: Mutex<Option<u64>>,
        admitted: Mutex<Vec<u64>>,
        held: Mutex<Vec<Pass>>,
    }

    impl Admit for Job {
        fn admit(self: Arc<Self>, token: u64, pass: Pass) -> Option<Pass> {
            if *self.want.lock().unwrap() != Some(token) {
                return Some(pass);
            }
            self.admitted.lock().unwrap().push(token);
            self.held.lock().unwrap().push(pass);
            None
        }
    }

    fn job(want: u64) -> (Arc<Job>, Weak<dyn Admit>) {
        let j = Arc::new(Job::default());
        *j.want.lock().unwrap() = Some(want);
        let d: Arc<dyn Admit> = j.clone();
        let w = Arc::downgrade(&d);
        (j, w)
    }

    #[test]
    fn past_the_bound_jobs_wait_in_order_and_a_prompt_one_goes_first() {
        let gate = Gate::new(2);
        let (_a, wa) = job(1);
        let p1 = gate.enter("e", wa.clone(), 1, false).expect("a place");
        let p2 = gate.enter("e", wa, 1, false).expect("a place");
        let (b, wb) = job(2);
        let (c, wc) = job(3);
        let (d, wd) = job(4);
        assert!(gate.enter("e", wb, 2, false).is_none());
        assert!(gate.enter("e", wc, 3, false).is_none());
        assert!(gate.enter("e", wd, 4, true).is_none());
        assert_eq!(gate.load("e"), (2, 3));
        drop(p1);
        assert_eq!(*d.admitted.lock().unwrap(), [4], "the prompt one first");
        drop(p2);
        assert_eq!(*b.admitted.lock().unwrap(), [2]);
        assert!(c.admitted.lock().unwrap().is_empty());
        assert_eq!(gate.load("e"), (2, 1));
        d.held.lock().unwrap().clear();
        assert_eq!(*c.admitted.lock().unwrap(), [3]);
        b.held.lock().unwrap().clear();
        c.held.lock().unwrap().clear();
        assert_eq!(gate.load("e"), (0, 0));
    }

    #[test]
    fn a_stale_or_dropped_waiter_passes_its_place_on() {
        let gate = Gate::new(1);
        let (_a, wa) = job(1);
        let p = gate.enter("e", wa, 1, false).expect("a place");
        let (stale, ws) = job(9);
        let (gone, wg) = job(1);
        let (next, wn) = job(5);
        assert!(gate.enter("e", ws, 8, false).is_none());
        assert!(gate.enter("e", wg, 1, false).is_none());
        assert!(gate.enter("e", wn, 5, false).is_none());
        drop(gone);
        drop(p);
        assert!(stale.admitted.lock().unwrap().is_empty());
        assert_eq!(*next.admitted.lock().unwrap(), [5]);
        assert_eq!(gate.load("e"), (1, 0));
    }

    #[test]
    fn the_gauges_show_each_endpoints_ticks_and_line() {
        let (in_flight, waiting) = (Family::default(), Family::default());
        let gate = Gate::with_gauges(1, in_flight.clone(), waiting.clone());
        let get = |f: &Family<EndpointLabels, Gauge>| {
            f.get_or_create(&EndpointLabels {
                endpoint: "t:7233".into(),
            })
            .get()
        };
        let (_a, wa) = job(1);
        let p = gate.enter("t:7233", wa.clone(), 1, false).expect("a place");
        assert!(gate.enter("t:7233", wa, 2, false).is_none());
        assert_eq!((get(&in_flight), get(&waiting)), (1, 1));
        drop(p);
        assert_eq!(
            (get(&in_flight), get(&waiting)),
            (0, 0),
            "the stale waiter left"
        );
    }

    /// A place left (a tick whose task never started: the runtime is stopping) is not handed
    /// on: nobody is admitted from where it was left.
    #[test]
    fn a_place_left_is_not_handed_on() {
        let gate = Gate::new(1);
        let (_a, wa) = job(1);
        let p = gate.enter("e", wa, 1, false).expect("a place");
        let (b, wb) = job(2);
        assert!(gate.enter("e", wb, 2, false).is_none());
        p.leave();
        assert!(b.admitted.lock().unwrap().is_empty());
        assert_eq!(gate.load("e"), (0, 1));
    }

    #[test]
    fn each_endpoint_has_its_own_places() {
        let gate = Gate::new(1);
        let (_a, wa) = job(1);
        let _hung = gate
            .enter("silent:7233", wa.clone(), 1, false)
            .expect("a place");
        assert!(gate.enter("silent:7233", wa.clone(), 1, false).is_none());
        assert!(
            gate.enter("healthy:7233", wa, 1, false).is_some(),
            "a hanging endpoint takes no other endpoint's place"
        );
    }
}
