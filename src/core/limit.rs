//! [`RateLimiter`]: a token bucket on the injected clock; [`LogBudget`]: at most so many
//! log lines per window; [`Host`]: what a per-host cap counts against; [`Tally`]: how many
//! entries each host (or relay) holds, for such caps.
//!
//! [`SharedBudget`]: a rate shared by several senders so that none keeps the others out.
//!
//! Owns the arithmetic only; callers decide what is limited (contacts per second, broadcast
//! frames per source, log lines that the network can cause, table entries per host, the relay
//! rate). No clock reads, saturating arithmetic throughout. The maps of [`Tally`] and
//! [`SharedBudget`] grow with the keys present (and keep their room when keys go); nothing
//! else allocates.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::time::Instant;

/// The host an address belongs to, as the per-host cap counts it: the IP address (IPv4 as
/// an IPv4-mapped IPv6 address), and for other IPv6 addresses their /64 prefix, which one
/// host usually holds whole, except link-local ones (`fe80::/10`), which every host on a link
/// shares: the whole address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Host(u128);

impl Host {
    /// The host of `addr`.
    #[inline]
    pub fn of(addr: SocketAddr) -> Host {
        match addr.ip() {
            IpAddr::V4(v4) => Host(u128::from(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Host(u128::from(v4.to_ipv6_mapped())),
                None if v6.is_unicast_link_local() => Host(u128::from(v6)),
                None => Host(u128::from(v6) & !u128::from(u64::MAX)),
            },
        }
    }
}

/// How many entries each key holds (table entries per host, routes per relay), for a cap
/// per key: counted up when an entry comes, down when it goes; a key that holds none is
/// not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally<K: Hash + Eq>(HashMap<K, usize>);

impl<K: Hash + Eq> Default for Tally<K> {
    fn default() -> Tally<K> {
        Tally(HashMap::new())
    }
}

impl<K: Hash + Eq> Tally<K> {
    /// How many entries `key` holds.
    pub fn get(&self, key: &K) -> usize {
        self.0.get(key).copied().unwrap_or(0)
    }

    /// One entry more for `key`.
    pub fn add(&mut self, key: K) {
        *self.0.entry(key).or_default() += 1;
    }

    /// One entry fewer for `key` (none below zero); a key left with none goes.
    pub fn remove(&mut self, key: &K) {
        if let Some(n) = self.0.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.0.remove(key);
            }
        }
    }
}

/// A token bucket holding up to one second's worth of tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimiter {
    tokens: u64,
    /// Thousandths of a token earned but not yet a whole one (the clock counts milliseconds),
    /// so that a caller slower than one token per call still gets the whole rate.
    fraction: u64,
    last_refill: Instant,
}

impl RateLimiter {
    /// A full bucket for `rate` events per second, as of `now`.
    pub fn new(now: Instant, rate: u64) -> RateLimiter {
        RateLimiter {
            tokens: rate,
            fraction: 0,
            last_refill: now,
        }
    }

    fn refill(&mut self, now: Instant, rate: u64) {
        let elapsed_ms = u64::try_from(now.saturating_duration_since(self.last_refill).as_millis())
            .unwrap_or(u64::MAX);
        // `rate` per second is `rate` thousandths of a token per millisecond.
        let earned = elapsed_ms
            .saturating_mul(rate)
            .saturating_add(self.fraction);
        self.tokens = self.tokens.saturating_add(earned / 1000);
        self.fraction = earned % 1000;
        // (Never backwards: a time before the last refill earns nothing, then or later.)
        self.last_refill = self.last_refill.max(now);
        // never more than one second's worth, also when the rate was lowered since; a full
        // bucket saves no time for later
        if self.tokens >= rate {
            self.tokens = rate;
            self.fraction = 0;
        }
    }

    /// Takes one token if there is one, at `rate` per second.
    // HOT PATH
    pub fn allow(&mut self, now: Instant, rate: u64) -> bool {
        self.refill(now, rate);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }

    /// [`RateLimiter::allow`] under a limit that may be off: with `None`, always true (and
    /// nothing taken).
    // HOT PATH
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

/// A budget of `rate` tokens a second that several senders draw on (the relay rate), shared
/// so that none of them can keep the others out:
/// - while more than half of the budget would be left after a draw (or the budget is full:
///   a draw of more than half the rate fits no other way), anyone may draw;
/// - below that, a sender draws only on its own share as well, a bucket of half the rate.
///
/// So one sender alone gets the whole rate (and a whole second's burst), while under
/// contention one that keeps drawing gets about half and leaves the rest to the others. A
/// sender's share is kept only while it is not full ([`SharedBudget::prune`]): a full share
/// is what a new one would be. (Making a share may grow the map; forgetting one keeps its
/// room, so a steady set of senders allocates nothing.)
#[derive(Clone, Debug)]
pub struct SharedBudget<K: Hash + Eq> {
    all: RateLimiter,
    shares: HashMap<K, RateLimiter>,
}

impl<K: Hash + Eq + Copy> SharedBudget<K> {
    /// A full budget for `rate` tokens a second, as of `now`.
    pub fn new(now: Instant, rate: u64) -> SharedBudget<K> {
        SharedBudget {
            all: RateLimiter::new(now, rate),
            shares: HashMap::new(),
        }
    }

    /// Whether `key` may draw `cost` at `now`, at `rate` a second in all (nothing is taken).
    pub fn allows(&mut self, now: Instant, rate: u64, key: K, cost: u64) -> bool {
        match self.free(now, rate, cost) {
            None => false,
            Some(true) => true,
            Some(false) => {
                let share = rate / 2;
                self.shares
                    .get_mut(&key)
                    .map_or(share, |s| s.available(now, share))
                    >= cost
            }
        }
    }

    /// Draws `cost` for `key` at `now` (after [`SharedBudget::allows`] said yes, at the same
    /// `now`): from the budget, and, below half of it, from `key`'s share too.
    pub fn take(&mut self, now: Instant, rate: u64, key: K, cost: u64) {
        if self.free(now, rate, cost) == Some(false) {
            let share = rate / 2;
            let bucket = self
                .shares
                .entry(key)
                .or_insert_with(|| RateLimiter::new(now, share));
            bucket.available(now, share);
            bucket.take(cost);
        }
        self.all.take(cost);
    }

    /// Forgets the shares that filled up again by `now` (call it now and then: it walks them).
    pub fn prune(&mut self, now: Instant, rate: u64) {
        let share = rate / 2;
        self.shares.retain(|_, s| s.available(now, share) < share);
    }

    /// How many senders have a share that is not full.
    pub fn shares(&self) -> usize {
        self.shares.len()
    }

    /// `None` if the budget has less than `cost` left at `now`; otherwise whether anyone may
    /// draw `cost` from it: more than half of it would be left after, or it is full.
    fn free(&mut self, now: Instant, rate: u64, cost: u64) -> Option<bool> {
        let left = self.all.available(now, rate);
        let after = left.checked_sub(cost)?;
        Some(after > rate / 2 || left >= rate)
    }
}

/// At most this many lines at info per [`LOG_WINDOW`] about events that the network can
/// cause (peers added and removed, relay routes, sessions made): worth an operator's
/// attention, but anyone who knows the token can make a peer come and go (three datagrams),
/// and members can make sessions and routes. Past it they go to debug, and the next line at
/// info says how many were left out.
pub const LOG_BUDGET: u32 = 120;
/// The window of [`LOG_BUDGET`].
pub const LOG_WINDOW: Duration = Duration::from_secs(60);

/// At most `max` events per window of a fixed length, the windows back to back from the
/// first event; counts the events refused since the last one allowed, so that the caller can
/// say how many it left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogBudget {
    window_start: Instant,
    used: u32,
    left_out: u64,
}

impl LogBudget {
    /// A budget whose first window starts at `now`.
    pub const fn new(now: Instant) -> LogBudget {
        LogBudget {
            window_start: now,
            used: 0,
            left_out: 0,
        }
    }

    /// Whether one more event fits at `now`, at most `max` per `window`. If it does, returns
    /// how many events were refused since the last one allowed (and starts counting anew);
    /// `None` if it does not (and counts it).
    pub fn allow(&mut self, now: Instant, max: u32, window: Duration) -> Option<u64> {
        if now.saturating_duration_since(self.window_start) >= window {
            self.window_start = now;
            self.used = 0;
        }
        if self.used >= max {
            self.left_out = self.left_out.saturating_add(1);
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.left_out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every sender tries `want[i]` draws of `cost` a millisecond for `secs` seconds (a
    /// fraction: one draw every `1 / want` ms); returns what each got, in tokens.
    fn share_out(rate: u64, cost: u64, want: &[f64], secs: u64) -> Vec<u64> {
        let mut budget = SharedBudget::new(Instant::ZERO, rate);
        let mut got = vec![0u64; want.len()];
        let mut owed = vec![0f64; want.len()];
        for ms in 0..secs * 1000 {
            let now = Instant::from_millis(ms);
            // Senders take turns at being first within a millisecond.
            for k in 0..want.len() {
                let i = (k + usize::try_from(ms).unwrap()) % want.len();
                owed[i] += want[i];
                while owed[i] >= 1.0 {
                    owed[i] -= 1.0;
                    if budget.allows(now, rate, i, cost) {
                        budget.take(now, rate, i, cost);
                        got[i] += cost;
                    }
                }
            }
            if ms % 1000 == 999 {
                budget.prune(now, rate);
                assert!(budget.shares() <= want.len());
            }
        }
        got
    }

    #[test]
    fn a_host_is_its_ipv4_address_its_ipv6_64_or_its_whole_link_local_address() {
        let of = |text: &str| Host::of(text.parse().unwrap());
        assert_eq!(of("198.18.0.1:1"), of("198.18.0.1:2"));
        assert_eq!(of("198.18.0.1:1"), of("[::ffff:198.18.0.1]:2"));
        assert_ne!(of("198.18.0.1:1"), of("198.18.0.2:1"));
        assert_eq!(of("[fd00::1]:1"), of("[fd00::2:3]:1"), "one /64, one host");
        assert_ne!(of("[fd00::1]:1"), of("[fd00:0:0:1::1]:1"));
        // Every host on a link has an address in fe80::/64: each is a host of its own.
        assert_ne!(of("[fe80::1]:1"), of("[fe80::2]:1"));
        assert_eq!(of("[fe80::1]:1"), of("[fe80::1]:2"));
        assert_ne!(of("[fe80::1]:1"), of("[fe80::]:1"));
    }

    #[test]
    fn a_shared_budget_gives_a_lone_sender_all_and_keeps_half_from_a_greedy_one() {
        // 1,000,000 tokens a second, draws of 1,000: 1,000 draws a second in all.
        let (rate, cost, secs) = (1_000_000u64, 1_000u64, 10u64);
        let total = rate * secs;
        let near = |got: u64, want: u64| got.abs_diff(want) * 100 <= want * 3;
        // Alone, wanting twice the rate: the whole rate, and a burst of a second's worth at
        // first (after which it gets half for a second, until the budget is half full again).
        let got = share_out(rate, cost, &[2.0], secs);
        assert!(near(got[0], total + rate / 2), "{got:?}");
        // A greedy sender (twice the rate) and one that wants a third of it: the second gets
        // all it wants, the greedy one the rest.
        let got = share_out(rate, cost, &[2.0, 1.0 / 3.0], secs);
        assert!(near(got[1], total / 3), "{got:?}");
        assert!(got[0] + got[1] <= total + rate, "{got:?}");
        assert!(got[0] >= total / 2, "{got:?}");
        // A greedy sender and one that wants the whole rate: about half each.
        let got = share_out(rate, cost, &[2.0, 1.0], secs);
        for g in &got {
            assert!(*g >= total * 2 / 5 && *g <= total * 3 / 5 + rate, "{got:?}");
        }
        // Three greedy senders: nobody is shut out.
        let got = share_out(rate, cost, &[2.0, 2.0, 2.0], secs);
        for g in &got {
            assert!(*g >= total / 5, "{got:?}");
        }
        // Draws of more than half the rate still pass (from a full budget): a lone sender of
        // 600-token draws gets the rate, and so do two.
        let got = share_out(rate, 600_000, &[0.01], secs);
        assert!(got[0] >= total * 9 / 10, "{got:?}");
        let got = share_out(rate, 600_000, &[0.01, 0.013], secs);
        assert!(got[0] + got[1] >= total * 9 / 10, "{got:?}");
        assert!(got[0] > 0 && got[1] > 0, "{got:?}");
        // Idle shares are forgotten.
        let mut budget = SharedBudget::new(Instant::ZERO, rate);
        for i in 0..600u32 {
            if budget.allows(Instant::ZERO, rate, i, cost) {
                budget.take(Instant::ZERO, rate, i, cost);
            }
        }
        assert!(budget.shares() > 0);
        budget.prune(Instant::from_secs(1), rate);
        assert_eq!(budget.shares(), 0);
    }

    #[test]
    fn a_caller_slower_than_a_token_still_gets_the_whole_rate() {
        let mut bucket = RateLimiter::new(Instant::ZERO, 10);
        for _ in 0..10 {
            assert!(bucket.allow(Instant::ZERO, 10));
        }
        assert!(!bucket.allow(Instant::ZERO, 10));
        // One try every 90 ms for 10 s: a token comes every 100 ms, so about 100 pass (the
        // time between two tokens is not lost when a try comes between them).
        let passed = (1..=111u64)
            .filter(|k| bucket.allow(Instant::ZERO + Duration::from_millis(90 * k), 10))
            .count();
        assert!((98..=100).contains(&passed), "{passed} of about 100");
    }

    #[test]
    fn rates_that_do_not_divide_a_second_are_kept_too() {
        for rate in [300u64, 700, 3] {
            let mut bucket = RateLimiter::new(Instant::ZERO, rate);
            bucket.take(rate);
            // A call every millisecond for 10 s, each taking what is there.
            let mut got = 0;
            for ms in 1..=10_000u64 {
                let now = Instant::ZERO + Duration::from_millis(ms);
                got += bucket.available(now, rate);
                bucket.take(rate);
            }
            assert!(got.abs_diff(10 * rate) <= 1, "{got} at {rate} a second");
        }
    }

    #[test]
    fn a_full_bucket_saves_nothing_for_later() {
        let mut bucket = RateLimiter::new(Instant::ZERO, 10);
        assert_eq!(bucket.available(Instant::from_secs(100), 10), 10);
        for _ in 0..10 {
            assert!(bucket.allow(Instant::from_secs(100), 10));
        }
        assert!(!bucket.allow(Instant::from_secs(100), 10));
        assert_eq!(
            bucket.available(Instant::from_secs(100) + Duration::from_millis(150), 10),
            1
        );
    }

    #[test]
    fn log_budget_allows_max_per_window_then_reports_what_it_left_out() {
        let minute = Duration::from_secs(60);
        let mut b = LogBudget::new(Instant::ZERO);
        for i in 0..3 {
            assert_eq!(b.allow(Instant::from_secs(i), 3, minute), Some(0));
        }
        // The fourth to the tenth in the same minute are refused and counted.
        for i in 3..10 {
            assert_eq!(b.allow(Instant::from_secs(i), 3, minute), None);
        }
        assert_eq!(b.allow(Instant::from_secs(59), 3, minute), None);
        // A new window: the first one allowed says how many were left out, once.
        assert_eq!(b.allow(Instant::from_secs(60), 3, minute), Some(8));
        assert_eq!(b.allow(Instant::from_secs(61), 3, minute), Some(0));
        // Extreme times and a zero budget neither panic nor allow anything.
        let mut zero = LogBudget::new(Instant::FAR_FUTURE);
        assert_eq!(zero.allow(Instant::ZERO, 0, minute), None);
        assert_eq!(zero.allow(Instant::FAR_FUTURE, 0, Duration::ZERO), None);
    }

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
