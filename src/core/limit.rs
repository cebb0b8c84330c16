//! [`RateLimiter`]: a token bucket on the injected clock.
//!
//! Owns the arithmetic only; callers decide what is limited (contacts per second, broadcast
//! frames per source). No allocation, no clock reads, saturating arithmetic throughout.

use crate::time::Instant;

/// A token bucket holding up to one second's worth of tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    tokens: u64,
    last_refill: Instant,
}

impl RateLimiter {
    /// A full bucket for `rate` events per second, as of `now`.
    pub fn new(now: Instant, rate: u64) -> RateLimiter {
        RateLimiter {
            tokens: rate,
            last_refill: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: u64) {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.last_refill).as_millis())
            .unwrap_or(u64::MAX);
        let refill = elapsed_ms.saturating_mul(rate) / 1000;
        if refill > 0 {
            self.tokens = self.tokens.saturating_add(refill);
            self.last_refill = now;
        }
        // never more than one second's worth, also when the rate was lowered since
        self.tokens = self.tokens.min(rate);
    }

    /// Takes one token if there is one, at `rate` per second. // HOT PATH
    pub fn allow(&mut self, now: Instant, rate: u64) -> bool {
        self.refill(now, rate);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// [`RateLimiter::allow`] under a limit that may be off: with `None`, always true (and
    /// nothing taken). // HOT PATH
    pub fn allow_within(&mut self, now: Instant, limit: Option<u64>) -> bool {
        limit.is_none_or(|rate| self.allow(now, rate))
    }

    /// How many tokens are available at `now` (without taking any).
    pub fn available(&mut self, now: Instant, rate: u64) -> u64 {
        self.refill(now, rate);
        self.tokens
    }

    /// Takes `n` tokens (at most what is available).
    pub fn take(&mut self, n: u64) {
        self.tokens = self.tokens.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limiter_allows_a_burst_then_the_rate() {
        let mut r = RateLimiter::new(Instant::ZERO, 10);
        let allowed = (0..100).filter(|_| r.allow(Instant::ZERO, 10)).count();
        assert_eq!(allowed, 10, "one second's worth at once");
        // 50 ms give half a token: nothing yet, but it is not lost
        assert!(!r.allow(Instant::from_millis(50), 10));
        assert!(r.allow(Instant::from_millis(100), 10));
        assert!(!r.allow(Instant::from_millis(100), 10));
        // a long pause refills to the burst, no more
        assert_eq!(r.available(Instant::from_secs(100), 10), 10);
        r.take(3);
        assert_eq!(r.available(Instant::from_secs(100), 10), 7);
    }

    #[test]
    fn rate_limiter_created_full_for_any_rate_bursts_only_the_rate_in_use() {
        let mut r = RateLimiter::new(Instant::ZERO, u64::MAX);
        let allowed = (0..100).filter(|_| r.allow(Instant::ZERO, 5)).count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn rate_limiter_survives_extreme_values() {
        let mut r = RateLimiter::new(Instant::ZERO, u64::MAX);
        assert!(r.allow(Instant::FAR_FUTURE, u64::MAX));
        let mut z = RateLimiter::new(Instant::ZERO, 0);
        assert!(!z.allow(Instant::FAR_FUTURE, 0));
    }

    #[test]
    fn allow_within_no_limit_always_allows_and_takes_nothing() {
        let t0 = Instant::from_secs(10);
        let mut limiter = RateLimiter::new(t0, 2);
        assert!((0..100).all(|_| limiter.allow_within(t0, None)));
        assert_eq!(limiter.available(t0, 2), 2);
        assert!(limiter.allow_within(t0, Some(2)));
        assert!(limiter.allow_within(t0, Some(2)));
        assert!(!limiter.allow_within(t0, Some(2)));
    }
}
