//! The per-endpoint RPC rate limit: a token bucket.

use std::time::{Duration, Instant};

/// A token bucket; `take` says how long to wait for `n` tokens.
pub(super) struct TokenBucket {
    rate: f64,
    tokens: f64,
    pub(super) last: Instant,
}

impl TokenBucket {
    pub(super) fn new(rate: f64) -> Self {
        TokenBucket {
            rate,
            tokens: rate,
            last: Instant::now(),
        }
    }

    /// Takes `n` tokens now (possibly going negative) and returns the wait until they exist.
    pub(super) fn take(&mut self, n: f64, now: Instant) -> Duration {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.rate);
        self.last = now;
        self.tokens -= n;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}
