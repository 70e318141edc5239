//! One timer for every scaler. A waiting scaler is a heap entry here (32 bytes) instead of a
//! task asleep in its own timer: 10,000 sleeping tasks each held a sleep, two wake-up futures
//! and the task's bookkeeping, about 700 bytes a scaler (docs/performance.md). When an entry
//! is due, its job is told so, with the token it was set with; a job that was set again since
//! ignores the older token, so rescheduling never has to find and remove an entry.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::{Arc, OnceLock, Weak};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Something to run at a time.
pub trait Due: Send + Sync + 'static {
    /// The time set with `token` has come. Called on the clock's task: return quickly (spawn
    /// the work).
    fn due(self: Arc<Self>, token: u64);
}

struct Entry {
    at: Instant,
    token: u64,
    /// Weak: a job dropped before its time (a removed scaler) is simply skipped.
    job: Weak<dyn Due>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.token).cmp(&(other.at, other.token))
    }
}

/// The clock's task starts with the first [`Clock::at`] (inside the runtime) and ends when
/// the clock is dropped.
#[derive(Default)]
pub struct Clock {
    tx: OnceLock<mpsc::UnboundedSender<Entry>>,
}

impl Clock {
    /// Tell `job` at `at` (at once if that has passed), with `token`.
    pub fn at(&self, at: Instant, job: Weak<dyn Due>, token: u64) {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(run(rx));
            tx
        });
        // The task ends only when this sender is dropped: the send cannot fail before.
        let _ = tx.send(Entry { at, token, job });
    }
}

async fn run(mut rx: mpsc::UnboundedReceiver<Entry>) {
    let mut heap: BinaryHeap<Reverse<Entry>> = BinaryHeap::new();
    loop {
        let now = Instant::now();
        while heap.peek().is_some_and(|Reverse(e)| e.at <= now) {
            if let Some(Reverse(e)) = heap.pop()
                && let Some(job) = e.job.upgrade()
            {
                job.due(e.token);
            }
        }
        // A heap that held a start-up's burst gives its memory back.
        if heap.capacity() > 1024 && heap.len() < heap.capacity() / 4 {
            heap.shrink_to(heap.len() * 2);
        }
        let next = heap.peek().map(|Reverse(e)| e.at);
        tokio::select! {
            _ = tokio::time::sleep_until(next.unwrap_or(now)), if next.is_some() => {}
            e = rx.recv() => match e {
                Some(e) => {
                    heap.push(Reverse(e));
                    // Take what else is queued before sleeping again.
                    while let Ok(e) = rx.try_recv() {
                        heap.push(Reverse(e));
                    }
                }
                None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[derive(Default)]
    struct Log(Mutex<Vec<(u64, Instant)>>, tokio::sync::Notify);

    impl Due for Log {
        fn due(self: Arc<Self>, token: u64) {
            self.0.lock().unwrap().push((token, Instant::now()));
            self.1.notify_one();
        }
    }

    impl Log {
        async fn next(&self) -> (u64, Instant) {
            loop {
                let notified = self.1.notified();
                {
                    let mut log = self.0.lock().unwrap();
                    if !log.is_empty() {
                        return log.remove(0);
                    }
                }
                notified.await;
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn jobs_are_told_in_time_order_not_before_their_time() {
        let clock = Clock::default();
        let log = Arc::new(Log::default());
        let t0 = Instant::now();
        let job: Arc<dyn Due> = log.clone();
        for (token, ms) in [(3, 300), (1, 100), (2, 200)] {
            clock.at(t0 + Duration::from_millis(ms), Arc::downgrade(&job), token);
        }
        for (token, ms) in [(1, 100), (2, 200), (3, 300)] {
            let (got, at) = log.next().await;
            assert_eq!(got, token);
            assert!(at >= t0 + Duration::from_millis(ms), "token {token} early");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_job_is_skipped_and_a_past_time_is_at_once() {
        let clock = Clock::default();
        let gone: Arc<dyn Due> = Arc::new(Log::default());
        clock.at(Instant::now(), Arc::downgrade(&gone), 1);
        drop(gone);
        let log = Arc::new(Log::default());
        let job: Arc<dyn Due> = log.clone();
        let t0 = Instant::now();
        clock.at(t0 - Duration::from_secs(1), Arc::downgrade(&job), 7);
        assert_eq!(log.next().await, (7, t0));
    }
}
