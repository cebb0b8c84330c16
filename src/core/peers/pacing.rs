//! The pacing of gossip and keepalives: [`Trickle`], which plans gossip rounds (doubling
//! intervals, suppression once the mesh is consistent), and [`Sweep`], which spreads the
//! keepalive sweep evenly over its period.
//!
//! Owns the timing arithmetic only: no peer is named here and nothing is sent. Time is passed
//! in and the randomness comes from a generator seeded by the caller, so the same inputs give
//! the same rounds.

use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Instant;

/// When to run gossip rounds: a Trickle timer (RFC 6206, simplified).
///
/// Time is cut into intervals. Each interval has one planned round at a point picked at random
/// in its second half. When an interval ends, the next one starts at the *planned* end (so
/// rounds do not drift later by the housekeeping granularity) and is twice as long, up to
/// `imax`. [`Trickle::reset`] starts over at `imin` (the peer set grew: there is news to
/// spread). Once at `imax`, the round of an interval is suppressed if `k` or more
/// *consistent* lists (lists that taught us nothing new, [`Trickle::heard_consistent`]) arrived
/// in that interval before it: enough of the mesh is already gossiping, so in steady state only
/// a few nodes per interval send rounds, whatever the size of the mesh.
///
/// The random point comes from a small deterministic generator seeded by the caller, so the
/// same seed and the same calls give the same rounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trickle {
    interval: Duration,
    start: Instant,
    round_at: Instant,
    round_done: bool,
    heard: u32,
    /// Who sent the consistent list counted last in this interval: one sender's lists count
    /// once in a row, so that a single peer cannot silence our gossip by repeating itself.
    /// (By address, not by host: the peers of a mesh on one LAN or behind one NAT often share
    /// a host, and their lists must still be able to stand for each other.)
    heard_from: Option<SocketAddr>,
    rng: u64,
}

impl Trickle {
    /// A timer whose first interval, of length `imin`, starts at `now`.
    pub fn new(now: Instant, imin: Duration, seed: u64) -> Trickle {
        let mut t = Trickle {
            interval: imin,
            start: now,
            round_at: now,
            round_done: false,
            heard: 0,
            heard_from: None,
            rng: seed | 1,
        };
        t.begin(now, imin);
        t
    }

    /// The current interval length.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// When the current interval's round is planned.
    pub fn round_at(&self) -> Instant {
        self.round_at
    }

    /// Consistent lists heard so far in the current interval.
    pub fn heard(&self) -> u32 {
        self.heard
    }

    /// The next number of the timer's pseudo-random generator (xorshift64); the node also
    /// picks its gossip targets with it.
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn begin(&mut self, start: Instant, interval: Duration) {
        let ms = u64::try_from(interval.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let half = ms / 2;
        let offset = half + self.next_random() % (ms - half).max(1);
        self.start = start;
        self.interval = interval;
        self.round_at = start + Duration::from_millis(offset);
        self.round_done = false;
        self.heard = 0;
        self.heard_from = None;
    }

    /// Starts over with an interval of `imin` from `now`, unless already at `imin` (Trickle's
    /// rule: the current short interval's round comes soon anyway).
    pub fn reset(&mut self, now: Instant, imin: Duration) {
        if self.interval > imin {
            self.begin(now, imin);
        }
    }

    /// Counts a list from `from` that taught us nothing new; not if the list counted last in
    /// this interval came from `from` too.
    pub fn heard_consistent(&mut self, from: SocketAddr) {
        if self.heard_from == Some(from) {
            return;
        }
        self.heard_from = Some(from);
        self.heard = self.heard.saturating_add(1);
    }

    /// Call at every housekeeping: true if a gossip round is due now. Also moves on to the next
    /// interval when this one is over. After a stall longer than the next interval, that
    /// interval starts at `now` instead of at the planned time, so a stall is followed by at
    /// most one round, not a burst of catch-up rounds.
    pub fn poll(&mut self, now: Instant, imin: Duration, imax: Duration, k: u32) -> bool {
        let mut send = false;
        if !self.round_done && now >= self.round_at {
            self.round_done = true;
            send = !(self.interval >= imax && self.heard >= k);
        }
        let end = self.start + self.interval;
        if now >= end {
            let interval = (self.interval * 2).min(imax).max(imin);
            let start = if end + interval <= now { now } else { end };
            self.begin(start, interval);
        }
        send
    }
}

/// How many peers the keepalive sweep visits at each housekeeping: `n` per `period` on
/// average, whatever the spacing of the calls, carrying the fraction over (no rounding drift)
/// and owing at most one full sweep after a stall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sweep {
    last: Instant,
    /// Visits owed, in peer·milliseconds (one visit per `period` in ms).
    owed: u64,
}

impl Sweep {
    /// A sweep that owes nothing at `now`.
    pub fn new(now: Instant) -> Sweep {
        Sweep { last: now, owed: 0 }
    }

    /// The number of visits due at `now` for `n` peers, each to be visited once per `period`.
    pub fn due(&mut self, now: Instant, n: usize, period: Duration) -> usize {
        let dt =
            u64::try_from(now.saturating_duration_since(self.last).as_millis()).unwrap_or(u64::MAX);
        self.last = self.last.max(now);
        let period = u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1);
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        self.owed = self
            .owed
            .saturating_add(n.saturating_mul(dt))
            .min(n.saturating_mul(period));
        let visits = self.owed / period;
        self.owed -= visits * period;
        usize::try_from(visits).unwrap_or(usize::MAX)
    }
}
