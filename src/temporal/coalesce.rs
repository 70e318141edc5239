//! Coalescing of identical reads: scalers of one queue poll at the same instant of their grid,
//! and a read started less than a window ago (in flight, or just answered) is joined instead of
//! sent again. One place for the queue reads and the worker reads.

use super::TemporalError;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub type SharedRead<V> = Shared<BoxFuture<'static, Result<V, TemporalError>>>;

pub struct Coalescer<K, V: Clone> {
    /// Short, because a joined answer is that much older than the poll (reaction time).
    window: Mutex<Duration>,
    inflight: Mutex<HashMap<K, (Instant, SharedRead<V>)>>,
}

impl<K: Hash + Eq + Clone, V: Clone + Send + Sync + 'static> Coalescer<K, V> {
    pub fn new(window: Duration) -> Self {
        Coalescer {
            window: Mutex::new(window),
            inflight: Mutex::default(),
        }
    }

    pub fn set_window(&self, window: Duration) {
        *self.window.lock().unwrap_or_else(|p| p.into_inner()) = window;
    }

    /// The read for `key`: the one started within the window, or a new one from `start`.
    pub fn join_or_start(
        &self,
        key: K,
        start: impl FnOnce() -> BoxFuture<'static, Result<V, TemporalError>>,
    ) -> SharedRead<V> {
        let window = *self.window.lock().unwrap_or_else(|p| p.into_inner());
        let mut inflight = self.inflight.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        inflight.retain(|_, (at, f)| now.duration_since(*at) < window || f.peek().is_none());
        // A start-up burst (thousands of first polls at once) grows the map far beyond the
        // reads of a steady second; give the space back (with slack, so it does not churn).
        let live = inflight.len();
        if inflight.capacity() > 64 && live * 4 < inflight.capacity() {
            inflight.shrink_to(live * 2);
        }
        if let Some((_, f)) = inflight.get(&key) {
            return f.clone();
        }
        let f = start().shared();
        inflight.insert(key, (now, f.clone()));
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn identical_reads_within_the_window_share_one_call() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Coalescer::<&str, u32>::new(Duration::from_secs(3600));
        let start = |calls: Arc<AtomicU32>| {
            move || async move { Ok(calls.fetch_add(1, Ordering::SeqCst)) }.boxed()
        };
        let a = c.join_or_start("q", start(calls.clone()));
        let b = c.join_or_start("q", start(calls.clone()));
        let other = c.join_or_start("r", start(calls.clone()));
        assert_eq!((a.await, b.await), (Ok(0), Ok(0)));
        assert_eq!(other.await, Ok(1));
        // Answered, and still within the window: joined.
        assert_eq!(c.join_or_start("q", start(calls.clone())).await, Ok(0));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_answered_read_past_the_window_is_sent_again() {
        let calls = Arc::new(AtomicU32::new(0));
        let c = Coalescer::<&str, u32>::new(Duration::ZERO);
        for want in 0..3 {
            let n = calls.clone();
            let got = c
                .join_or_start("q", move || {
                    async move { Ok(n.fetch_add(1, Ordering::SeqCst)) }.boxed()
                })
                .await;
            assert_eq!(got, Ok(want));
        }
    }
}
