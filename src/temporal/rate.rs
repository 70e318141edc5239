//! The per-endpoint RPC rate limit: a token bucket whose rate adapts to the server's. The
//! configured rate (`--temporal-rps`) is a ceiling: a server (or a Temporal Cloud namespace,
//! whose rate limit the workers share) that answers `ResourceExhausted` lowers it, and it
//! climbs back while the server accepts. RPCs waiting for it queue in order and only the
//! first sleeps, so a lowered rate applies at once to all of them. A dev server refuses
//! `DescribeTaskQueue` past about 200 a second on known task queues, and far fewer on new ones
//! (./scripts/bench's start-up): without this, the polls of thousands of scalers were refused
//! every interval and those scalers skipped their decision.

use std::time::{Duration, Instant};

tokio::task_local! {
    /// Set (by the scaler) for the reads of a prompt poll: a start, a new spec, the lease.
    /// They do not queue behind thousands of reads waiting for a lowered rate, so a changed
    /// spec takes effect at once; there are at most `context::PROMPT_POLLS` of them.
    pub static PROMPT: bool;
}

/// A throttled rate is multiplied by this (at most once per [`THROTTLE_HOLD`]).
const THROTTLE_FACTOR: f64 = 0.7;
/// One burst of refusals is one signal: the answers to RPCs sent before the rate was lowered
/// arrive together.
const THROTTLE_HOLD: Duration = Duration::from_secs(1);
/// Time to climb back from 0 to the configured rate while nothing is refused.
const RECOVERY: Duration = Duration::from_secs(60);
/// Never below this many RPCs a second.
const MIN_RATE: f64 = 1.0;

/// A token bucket; `take` says how long to wait for `n` tokens.
pub(super) struct TokenBucket {
    /// The configured rate: the most it climbs to.
    ceiling: f64,
    rate: f64,
    tokens: f64,
    pub(super) last: Instant,
    throttled_at: Option<Instant>,
    /// Tokens wanted by prompt reads waiting for them: they come first, so an ordinary read
    /// takes only what is left over them (without this, a prompt read raced the head of the
    /// line for each token and could lose every time).
    reserved: f64,
}

impl TokenBucket {
    pub(super) fn new(rate: f64) -> Self {
        TokenBucket {
            ceiling: rate,
            rate,
            tokens: rate,
            last: Instant::now(),
            throttled_at: None,
            reserved: 0.0,
        }
    }

    /// The current rate, RPCs a second.
    #[cfg(test)]
    pub(super) fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes `n` tokens if they are there now (zero wait), else says how long until they
    /// are at the current rate, taking none: the caller waits and asks again, so a rate
    /// lowered meanwhile applies to it. An `n` above the rate is taken once a full bucket is
    /// there (the bucket then goes negative).
    pub(super) fn try_take(&mut self, n: f64, now: Instant) -> Duration {
        self.take(n, self.reserved, now)
    }

    /// As [`Self::try_take`], for a prompt read that [`Self::reserve`]d `n`: ahead of every
    /// ordinary read.
    pub(super) fn try_take_prompt(&mut self, n: f64, now: Instant) -> Duration {
        self.take(n, 0.0, now)
    }

    /// A prompt read waits for `n` tokens: ordinary reads leave them to it.
    pub(super) fn reserve(&mut self, n: f64) {
        self.reserved += n;
    }

    /// A prompt read that reserved `n` took them, or stopped waiting (dropped).
    pub(super) fn unreserve(&mut self, n: f64) {
        self.reserved = (self.reserved - n).max(0.0);
    }

    /// Take `n` if they are there beyond `ahead` tokens owed to others.
    fn take(&mut self, n: f64, ahead: f64, now: Instant) -> Duration {
        self.refill(now);
        let need = n.min(self.rate);
        // Reservations never hold an ordinary read past a full bucket's worth.
        let need_here = (need + ahead).min(self.rate);
        if self.tokens >= need_here {
            self.tokens -= n;
            Duration::ZERO
        } else {
            Duration::from_secs_f64((need_here - self.tokens) / self.rate)
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        if self.rate < self.ceiling {
            self.rate =
                (self.rate + self.ceiling * elapsed / RECOVERY.as_secs_f64()).min(self.ceiling);
        }
        self.tokens = (self.tokens + elapsed * self.rate).min(self.rate);
        self.last = now;
    }

    /// The server refused an RPC sent at `sent` for its rate: lower the rate, once per burst
    /// of refusals, and only for an RPC sent since the last lowering (those sent before went
    /// at the old rate). Returns the new rate when it was lowered.
    pub(super) fn throttled(&mut self, sent: Instant, now: Instant) -> Option<f64> {
        self.refill(now);
        if self
            .throttled_at
            .is_some_and(|at| sent < at || now.saturating_duration_since(at) < THROTTLE_HOLD)
        {
            return None;
        }
        self.throttled_at = Some(now);
        self.rate = (self.rate * THROTTLE_FACTOR).max(MIN_RATE);
        // What was already granted stays granted; nothing more until the lower rate allows.
        self.tokens = self.tokens.min(0.0);
        Some(self.rate)
    }
}

impl super::Slot {
    fn bucket(&self) -> std::sync::MutexGuard<'_, TokenBucket> {
        self.rate.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The server refused an RPC sent at `sent` for its rate: lower the endpoint's rate (said
    /// in the log when it is).
    pub(super) fn refused_for_rate(&self, sent: Instant) {
        let lowered = self.bucket().throttled(sent, Instant::now());
        if let Some(rate) = lowered {
            tracing::info!(
                endpoint = %self.endpoint,
                rate = rate.round(),
                "Temporal refused an RPC for its rate (ResourceExhausted): the agent's RPC rate to this endpoint is lowered, and climbs back while nothing is refused"
            );
        }
    }
}

impl super::TemporalPool {
    /// One RPC through the endpoint's rate limit and concurrency bound, timed, counted and
    /// noted on the connection (a refusal for the rate lowers it). `rpc` is built before it
    /// is admitted but runs only once admitted.
    pub(super) async fn call<T>(
        &self,
        slot: &super::Slot,
        method: &'static str,
        rpc: impl std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, super::TemporalError> {
        let permit = Self::admit(slot, 1).await?;
        let sent = Instant::now();
        let res = Box::pin(self.timed(method, rpc)).await;
        drop(permit);
        self.note_rpc_result(slot, &res, sent).await;
        res
    }

    /// Wait for `rpcs` tokens of the endpoint's rate limit, then for a permit to send. Waiters
    /// queue in order (`pacer`) and only the first sleeps, re-reading the rate when it wakes:
    /// a rate lowered by the server's refusals applies at once to everything queued. The reads
    /// of a prompt poll ([`PROMPT`]) take their tokens without queueing, and before the line's.
    pub(super) async fn admit(
        slot: &super::Slot,
        rpcs: usize,
    ) -> Result<tokio::sync::SemaphorePermit<'_>, super::TemporalError> {
        let prompt = PROMPT.try_with(|p| *p).unwrap_or(false);
        if prompt {
            // No queue, and first at the bucket. The reservation is given back when the read
            // has its tokens, or is dropped while it waits (a superseded tick).
            struct Reserved<'a>(&'a super::Slot, f64);
            impl Drop for Reserved<'_> {
                fn drop(&mut self) {
                    self.0.bucket().unreserve(self.1);
                }
            }
            let n = rpcs as f64;
            slot.bucket().reserve(n);
            let _reserved = Reserved(slot, n);
            loop {
                let wait = slot.bucket().try_take_prompt(n, Instant::now());
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        } else {
            let _turn = slot.pacer.lock().await;
            loop {
                let wait = slot.bucket().try_take(rpcs as f64, Instant::now());
                if wait.is_zero() {
                    break;
                }
                tokio::time::sleep(wait).await;
            }
        }
        slot.permits
            .acquire()
            .await
            .map_err(|_| super::error::terr(super::ErrorKind::Other, "connection closed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A prompt read that waits for tokens gets the next ones: the head of the ordinary line,
    /// asking at the same moment, waits until the prompt read has taken its own.
    #[test]
    fn a_waiting_prompt_read_takes_the_next_tokens_first() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0);
        b.last = t0;
        assert!(b.try_take(10.0, t0).is_zero(), "the full bucket");
        b.reserve(2.0);
        // 0.2 s later two tokens are there: the prompt read's, not the line's.
        let t1 = t0 + Duration::from_millis(200);
        assert!(!b.try_take(1.0, t1).is_zero(), "the line waits");
        assert!(
            b.try_take_prompt(2.0, t1).is_zero(),
            "the prompt read goes first"
        );
        b.unreserve(2.0);
        // Nothing reserved now: the line's next token is its own.
        let t2 = t1 + Duration::from_millis(100);
        assert!(b.try_take(1.0, t2).is_zero());
        // A reservation given back (the read was dropped) holds nobody up.
        b.reserve(5.0);
        b.unreserve(5.0);
        assert!(b.try_take(1.0, t2 + Duration::from_millis(100)).is_zero());
    }

    #[test]
    fn a_refusal_lowers_the_rate_once_per_burst_and_it_climbs_back() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(300.0);
        b.last = t0;
        assert_eq!(b.throttled(t0, t0), Some(210.0));
        // The other refusals of the same burst do not lower it again.
        assert_eq!(b.throttled(t0, t0 + Duration::from_millis(500)), None);
        // Nor do refusals of RPCs sent before it, however late they come back.
        let late = t0 + Duration::from_secs(5);
        assert_eq!(b.throttled(t0 - Duration::from_millis(1), late), None);
        // Sent after it, 6 s after the first (it climbed 30 meanwhile): 240 × 0.7.
        let t1 = late + THROTTLE_HOLD;
        assert!((b.throttled(late, t1).unwrap() - 168.0).abs() < 1e-9);
        // Nothing refused for 10 s: up by a sixth of the ceiling.
        b.refill(t1 + Duration::from_secs(10));
        assert!((b.rate() - 218.0).abs() < 1e-9, "{}", b.rate());
        // And back to the ceiling, not above.
        b.refill(t1 + Duration::from_secs(120));
        assert_eq!(b.rate(), 300.0);
        // Refused every second: it settles where a second's climb makes up the cut (5 / 0.3).
        for i in 0..100 {
            let at = t1 + Duration::from_secs(200 + i);
            b.throttled(at, at);
        }
        assert!((b.rate() - 5.0 / 0.3 * 0.7).abs() < 0.01, "{}", b.rate());
        // And never below MIN_RATE.
        let mut slow = TokenBucket::new(2.0);
        slow.last = t0;
        for i in 0..20 {
            let at = t0 + Duration::from_secs(i);
            slow.throttled(at, at);
        }
        assert!(
            slow.rate() >= MIN_RATE && slow.rate() < 1.1,
            "{}",
            slow.rate()
        );
    }

    #[test]
    fn after_a_refusal_the_next_rpc_waits_for_the_lower_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(100.0);
        b.last = t0;
        assert!(b.try_take(1.0, t0).is_zero());
        b.throttled(t0, t0);
        // No token left: the next waits 1/70 s, and takes nothing while it waits.
        let w = b.try_take(1.0, t0);
        assert!((w.as_secs_f64() - 1.0 / 70.0).abs() < 1e-9, "{w:?}");
        assert_eq!(b.try_take(1.0, t0), w);
        assert!(b.try_take(1.0, t0 + w).is_zero());
    }

    #[test]
    fn the_rate_limit_spreads_a_burst_at_its_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(200.0);
        b.last = t0;
        // The burst allowance goes at once; then one RPC per 1/200 s.
        assert!((0..200).all(|_| b.try_take(1.0, t0).is_zero()));
        let w = b.try_take(1.0, t0);
        assert!((w.as_secs_f64() - 1.0 / 200.0).abs() < 1e-9, "{w:?}");
        assert!(b.try_take(1.0, t0 + w).is_zero());
        // More than the rate at once (a query of several RPCs at rate 2): taken from a full
        // bucket, which goes into debt.
        let mut slow = TokenBucket::new(2.0);
        slow.last = t0;
        assert!(slow.try_take(3.0, t0).is_zero());
        assert!(!slow.try_take(1.0, t0).is_zero());
    }
}
