//! [`PeerTable`] (who we talk to) and [`Contacts`] (whom we are trying to reach), plus the
//! rules for which addresses are worth contacting at all.
//!
//! Owns the bookkeeping: when a peer was last heard from, round-robin cursors for gossip, and
//! back-off for addresses that have not answered yet. It never sends anything and never parses
//! bytes; `node` asks it what to do and does it.
//!
//! Iteration order is the order of addresses (`BTreeMap`), so the same inputs always give the
//! same decisions: the simulator depends on it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::Bound;
use std::time::Duration;

use crate::limit::RateLimiter;
use crate::time::Instant;

/// Default cap on the number of peers.
pub const DEFAULT_MAX_PEERS: usize = 4_096;
/// Default cap on the addresses waiting to be contacted.
pub const DEFAULT_MAX_CONTACTS: usize = 4_096;

/// First retry delay for a `--connect` address that has not answered.
pub const CONNECT_BACKOFF_START: Duration = Duration::from_secs(1);
/// Longest retry delay for a `--connect` address.
pub const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// First retry delay for an address learned from a peer list.
pub const LEARNED_BACKOFF_START: Duration = Duration::from_secs(2);
/// How often an address learned from a peer list is tried before it is given up.
pub const LEARNED_ATTEMPTS: u32 = 3;
/// How long a given-up learned address is remembered, so that peer lists naming it again do not
/// make us contact it again before then.
pub const LEARNED_QUIET_PERIOD: Duration = Duration::from_secs(300);

/// Turns an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) into the plain IPv4 one, so that one peer
/// has one address whichever socket family it arrived on.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(v6) => match v6.ip().to_ipv4_mapped() {
            Some(v4) => SocketAddr::from((v4, v6.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// True for addresses nobody can be reached at: unspecified, multicast, broadcast, port 0.
pub fn is_unusable(addr: SocketAddr) -> bool {
    if addr.port() == 0 {
        return true;
    }
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_unspecified() || ip.is_multicast() || ip.is_broadcast(),
        IpAddr::V6(ip) => ip.is_unspecified() || ip.is_multicast(),
    }
}

/// ⌈√n⌉ without floating point; 0 for 0.
pub fn ceil_sqrt(n: usize) -> usize {
    let mut r = 0usize;
    while r.saturating_mul(r) < n {
        r += 1;
    }
    r
}

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
    }

    /// Starts over with an interval of `imin` from `now`, unless already at `imin` (Trickle's
    /// rule: the current short interval's round comes soon anyway).
    pub fn reset(&mut self, now: Instant, imin: Duration) {
        if self.interval > imin {
            self.begin(now, imin);
        }
    }

    /// Counts a list that taught us nothing new.
    pub fn heard_consistent(&mut self) {
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

/// What we know about one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// When it was added.
    pub added: Instant,
    /// When we last received a valid message from it.
    pub last_seen: Instant,
    /// It answered a "get peer list" of ours, so it really receives what we send to that
    /// address. Only verified peers are sent data, gossip and full peer lists.
    pub is_verified: bool,
    /// When we last sent it a "get peer list" (a challenge, or a contact attempt).
    pub asked_at: Option<Instant>,
    /// Its broadcast and multicast frames, when those are rate-limited.
    pub broadcasts: RateLimiter,
    /// When we last sent it a keepalive or a gossip list, or when it was added (we answer a
    /// new peer at once).
    pub last_sent: Instant,
    /// Its place in the table's list of verified peers (meaningful only when verified).
    slot: usize,
}

/// What [`PeerTable::touch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// The address is a new, unverified peer.
    Added,
    /// The address was already a peer; refreshed.
    Refreshed {
        /// Whether that peer is verified.
        is_verified: bool,
    },
    /// The address is not a peer and the table is full of verified peers.
    Full,
}

/// The peers: addresses we have heard from and not yet timed out.
#[derive(Debug)]
pub struct PeerTable {
    peers: BTreeMap<SocketAddr, Peer>,
    /// The verified peers in no particular order, so that one can be picked at random in O(1).
    /// Each verified peer's `slot` is its index here.
    verified: Vec<SocketAddr>,
    max: usize,
    /// No peer expires before this, for the timeouts in `quiet_for`: lets
    /// [`PeerTable::collect_expired`] skip its walk over every peer. Set back to zero whenever
    /// a deadline may have moved earlier (a peer added, or changed through `get_mut`).
    quiet_until: Instant,
    /// The (timeout, unverified timeout) that `quiet_until` was computed for.
    quiet_for: (Duration, Duration),
}

impl PeerTable {
    /// An empty table holding at most `max` peers.
    pub fn new(max: usize) -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            verified: Vec::new(),
            max,
            quiet_until: Instant::ZERO,
            quiet_for: (Duration::ZERO, Duration::ZERO),
        }
    }

    /// Records a valid message from `addr` at `now`, adding it (unverified) if there is room.
    /// When the table is full, the unverified peer added longest ago makes room. // HOT PATH
    pub fn touch(&mut self, now: Instant, addr: SocketAddr) -> Touch {
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.last_seen = now;
            return Touch::Refreshed {
                is_verified: peer.is_verified,
            };
        }
        if self.peers.len() >= self.max {
            let oldest = self
                .peers
                .iter()
                .filter(|(_, p)| !p.is_verified)
                .min_by_key(|(_, p)| p.added)
                .map(|(a, _)| *a);
            match oldest {
                Some(victim) => {
                    self.peers.remove(&victim);
                }
                None => return Touch::Full,
            }
        }
        self.quiet_until = Instant::ZERO;
        self.peers.insert(
            addr,
            Peer {
                added: now,
                last_seen: now,
                is_verified: false,
                asked_at: None,
                broadcasts: RateLimiter::new(now, u64::MAX),
                last_sent: now,
                slot: 0,
            },
        );
        Touch::Added
    }

    /// Marks `addr` verified; true if it is a peer that was not verified before.
    pub fn verify(&mut self, addr: SocketAddr) -> bool {
        match self.peers.get_mut(&addr) {
            Some(peer) if !peer.is_verified => {
                peer.is_verified = true;
                peer.slot = self.verified.len();
                self.verified.push(addr);
                true
            }
            _ => false,
        }
    }

    /// Removes `addr`; returns what it was, if it was a peer.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Peer> {
        let peer = self.peers.remove(&addr)?;
        if peer.is_verified && self.verified.get(peer.slot) == Some(&addr) {
            self.verified.swap_remove(peer.slot);
            if let Some(moved) = self.verified.get(peer.slot).copied() {
                if let Some(p) = self.peers.get_mut(&moved) {
                    p.slot = peer.slot;
                }
            }
        }
        Some(peer)
    }

    /// Notes that we sent `addr` a gossip list at `now` (it counts as a keepalive).
    pub fn note_sent(&mut self, addr: SocketAddr, now: Instant) {
        // Not through `get_mut`: this moves no expiry deadline.
        if let Some(p) = self.peers.get_mut(&addr) {
            p.last_sent = p.last_sent.max(now);
        }
    }

    /// Appends to `out` the next `count` verified peers (at most all of them, each once) of a
    /// round-robin in random order: each round of the table is a fresh random permutation,
    /// drawn as it goes (Fisher-Yates, with `random` as the source), so every peer comes once
    /// per round, and two nodes' orders have nothing in common. `position` is the caller's
    /// place in the round. O(count · log n).
    pub fn shuffled_round_robin(
        &mut self,
        position: &mut usize,
        count: usize,
        mut random: impl FnMut() -> u64,
        out: &mut Vec<SocketAddr>,
    ) {
        let n = self.verified.len();
        // Peers taken in this call before a new round began sit at the end of the list: they
        // are not drawn again in this call.
        let mut taken_before_wrap = 0usize;
        for taken in 0..count.min(n) {
            if *position >= n {
                *position = 0;
                taken_before_wrap = taken;
            }
            let end = n - taken_before_wrap;
            if *position >= end {
                break;
            }
            let span = u64::try_from(end - *position).unwrap_or(u64::MAX);
            let j = *position + usize::try_from(random() % span).unwrap_or(0);
            self.swap_verified(*position, j);
            if let Some(addr) = self.verified.get(*position) {
                out.push(*addr);
            }
            *position += 1;
        }
    }

    fn swap_verified(&mut self, i: usize, j: usize) {
        if i == j || i >= self.verified.len() || j >= self.verified.len() {
            return;
        }
        self.verified.swap(i, j);
        for k in [i, j] {
            let addr = self.verified[k];
            if let Some(p) = self.peers.get_mut(&addr) {
                p.slot = k;
            }
        }
    }

    /// True if `addr` is a peer (verified or not).
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.peers.contains_key(&addr)
    }

    /// True if `addr` is a verified peer.
    pub fn is_verified(&self, addr: SocketAddr) -> bool {
        self.peers.get(&addr).is_some_and(|p| p.is_verified)
    }

    /// The peer at `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<&Peer> {
        self.peers.get(&addr)
    }

    /// The peer at `addr`, mutably. (The caller may move its deadlines, so the next
    /// [`PeerTable::collect_expired`] walks the whole table again.)
    pub fn get_mut(&mut self, addr: SocketAddr) -> Option<&mut Peer> {
        self.quiet_until = Instant::ZERO;
        self.peers.get_mut(&addr)
    }

    /// Number of peers, verified or not.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Number of verified peers.
    pub fn verified_len(&self) -> usize {
        self.verified.len()
    }

    /// True when there are no peers at all.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Every peer's address, verified or not, in address order.
    pub fn addrs(&self) -> impl Iterator<Item = SocketAddr> + Clone + '_ {
        self.peers.keys().copied()
    }

    /// The verified peers' addresses, in address order. // HOT PATH (flooding)
    pub fn verified_addrs(&self) -> impl Iterator<Item = SocketAddr> + Clone + '_ {
        self.peers
            .iter()
            .filter(|(_, p)| p.is_verified)
            .map(|(a, _)| *a)
    }

    /// Every peer with what we know of it, in address order.
    pub fn iter(&self) -> impl Iterator<Item = (SocketAddr, &Peer)> + '_ {
        self.peers.iter().map(|(a, p)| (*a, p))
    }

    /// Appends to `out` the peers to drop at `now`: verified ones silent for `timeout`, and
    /// unverified ones not verified within `unverified_timeout` of being added.
    ///
    /// A walk over the table also notes the earliest deadline still ahead; until then, calls
    /// with the same timeouts return at once (hearing from a peer only moves its deadline
    /// later). So housekeeping every second costs O(n) only about once per timeout, not every
    /// second.
    pub fn collect_expired(
        &mut self,
        now: Instant,
        timeout: Duration,
        unverified_timeout: Duration,
        out: &mut Vec<SocketAddr>,
    ) {
        if now < self.quiet_until && self.quiet_for == (timeout, unverified_timeout) {
            return;
        }
        let start = out.len();
        let mut earliest = Instant::FAR_FUTURE;
        for (addr, p) in self.peers.iter() {
            let mut deadline = p.last_seen + timeout;
            if !p.is_verified {
                deadline = deadline.min(p.added + unverified_timeout);
            }
            if deadline <= now {
                out.push(*addr);
            } else {
                earliest = earliest.min(deadline);
            }
        }
        // Whatever is returned stays due until the caller removes it: look again next time.
        self.quiet_until = if out.len() > start { now } else { earliest };
        self.quiet_for = (timeout, unverified_timeout);
    }

    /// Up to `count` verified peers in round-robin order, starting after `cursor` and wrapping
    /// once; appended to `out`. Moves `cursor` to the last one taken.
    pub fn round_robin(
        &self,
        cursor: &mut Option<SocketAddr>,
        count: usize,
        out: &mut Vec<SocketAddr>,
    ) {
        let start = out.len();
        let (after, before) = match *cursor {
            Some(c) => (
                self.peers.range((Bound::Excluded(c), Bound::Unbounded)),
                self.peers.range((Bound::Unbounded, Bound::Included(c))),
            ),
            None => (
                self.peers.range::<SocketAddr, _>(..),
                // empty: nothing sorts below the smallest address
                self.peers
                    .range((Bound::Unbounded, Bound::Excluded(MIN_ADDR))),
            ),
        };
        out.extend(
            after
                .chain(before)
                .filter(|(_, p)| p.is_verified)
                .map(|(a, _)| *a)
                .take(count),
        );
        if let Some(last) = out.get(start..).and_then(|taken| taken.last()) {
            *cursor = Some(*last);
        }
    }

    /// The keepalive sweep: walks up to `count` verified peers in round-robin order, starting
    /// after `cursor` and wrapping once, and appends to `out` those not sent anything for at
    /// least `idle` before `now`, noting them as sent at `now`. Moves `cursor` to the last peer
    /// walked.
    pub fn sweep(
        &mut self,
        cursor: &mut Option<SocketAddr>,
        count: usize,
        now: Instant,
        idle: Duration,
        out: &mut Vec<SocketAddr>,
    ) {
        let mut walked = 0usize;
        let mut last = None;
        let mut part = |range: std::collections::btree_map::RangeMut<'_, SocketAddr, Peer>| {
            for (addr, p) in range.filter(|(_, p)| p.is_verified) {
                if walked >= count {
                    break;
                }
                walked += 1;
                last = Some(*addr);
                if now.saturating_duration_since(p.last_sent) >= idle {
                    p.last_sent = now;
                    out.push(*addr);
                }
            }
        };
        match *cursor {
            Some(c) => {
                part(self.peers.range_mut((Bound::Excluded(c), Bound::Unbounded)));
                part(self.peers.range_mut((Bound::Unbounded, Bound::Included(c))));
            }
            None => part(self.peers.range_mut::<SocketAddr, _>(..)),
        }
        if last.is_some() {
            *cursor = last;
        }
    }

    /// The verified peers of one address family (IPv6 if `is_v6`) in address order, starting
    /// after `cursor` (if it is of that family) and wrapping once. Only that family's part of
    /// the table is walked, and lazily: taking the first k costs O(k + log n) when most peers
    /// are verified, not O(n).
    pub fn verified_of_family_after(
        &self,
        is_v6: bool,
        cursor: Option<SocketAddr>,
    ) -> impl Iterator<Item = SocketAddr> + Clone + '_ {
        let (low, high) = if is_v6 {
            (MIN_V6, MAX_V6)
        } else {
            (MIN_ADDR, MAX_V4)
        };
        let (after, before) = match cursor {
            Some(c) if c.is_ipv6() == is_v6 => (
                self.peers
                    .range((Bound::Excluded(c), Bound::Included(high))),
                self.peers.range((Bound::Included(low), Bound::Included(c))),
            ),
            _ => (
                self.peers
                    .range((Bound::Included(low), Bound::Included(high))),
                // empty: start and end are the same address, the end excluded
                self.peers
                    .range((Bound::Included(low), Bound::Excluded(low))),
            ),
        };
        after
            .chain(before)
            .filter(|(_, p)| p.is_verified)
            .map(|(a, _)| *a)
    }
}

/// The smallest socket address, used to express an empty range.
const MIN_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));
/// The largest IPv4 socket address: every IPv4 address sorts at or below it.
const MAX_V4: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::BROADCAST,
    u16::MAX,
));
/// The smallest IPv6 socket address: every IPv6 address sorts at or above it.
const MIN_V6: SocketAddr = SocketAddr::V6(std::net::SocketAddrV6::new(
    std::net::Ipv6Addr::UNSPECIFIED,
    0,
    0,
    0,
));
/// The largest IPv6 socket address (flow info and scope id included in the order).
const MAX_V6: SocketAddr = SocketAddr::V6(std::net::SocketAddrV6::new(
    std::net::Ipv6Addr::new(
        u16::MAX,
        u16::MAX,
        u16::MAX,
        u16::MAX,
        u16::MAX,
        u16::MAX,
        u16::MAX,
        u16::MAX,
    ),
    u16::MAX,
    u32::MAX,
    u32::MAX,
));

/// One address we are trying to reach with "get peer list".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// When to send the next "get peer list".
    pub next_attempt: Instant,
    /// The delay after the next attempt.
    pub backoff: Duration,
    /// Attempts made so far.
    pub attempts: u32,
    /// From `--connect` (tried forever) rather than from a peer list (tried a few times).
    pub is_configured: bool,
    /// For learned addresses: when the entry is forgotten once given up.
    pub forget_at: Instant,
    /// When we last sent it "get peer list".
    pub last_sent: Option<Instant>,
}

/// Addresses to contact, with back-off, capped.
#[derive(Debug)]
pub struct Contacts {
    entries: BTreeMap<SocketAddr, Contact>,
    max: usize,
}

impl Contacts {
    /// An empty queue holding at most `max` addresses.
    pub fn new(max: usize) -> Contacts {
        Contacts {
            entries: BTreeMap::new(),
            max,
        }
    }

    /// Queues a `--connect` address for an attempt at `at`. Configured addresses are never
    /// refused for lack of room and never given up.
    pub fn add_configured(&mut self, addr: SocketAddr, at: Instant) {
        self.entries.insert(
            addr,
            Contact {
                next_attempt: at,
                backoff: CONNECT_BACKOFF_START,
                attempts: 0,
                is_configured: true,
                forget_at: Instant::FAR_FUTURE,
                last_sent: None,
            },
        );
    }

    /// Queues an address learned from a peer list, unless it is already queued (or was given up
    /// recently). Returns false if it was refused because the queue is full.
    pub fn add_learned(&mut self, now: Instant, addr: SocketAddr) -> bool {
        if self.entries.contains_key(&addr) {
            return true;
        }
        if self.entries.len() >= self.max {
            return false;
        }
        self.entries.insert(
            addr,
            Contact {
                next_attempt: now,
                backoff: LEARNED_BACKOFF_START,
                attempts: 0,
                is_configured: false,
                forget_at: now + LEARNED_QUIET_PERIOD,
                last_sent: None,
            },
        );
        true
    }

    /// Removes `addr` (it answered, so it is a peer now). Returns what was queued.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Contact> {
        self.entries.remove(&addr)
    }

    /// True if `addr` is queued.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.entries.contains_key(&addr)
    }

    /// Number of queued addresses (including given-up ones still remembered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The queued entry for `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<&Contact> {
        self.entries.get(&addr)
    }

    /// Forgets given-up learned entries whose quiet period is over, then appends up to `limit`
    /// addresses due at `now` to `out` and schedules each one's next attempt.
    pub fn take_due(&mut self, now: Instant, limit: usize, out: &mut Vec<SocketAddr>) {
        self.entries
            .retain(|_, c| c.is_configured || c.attempts < LEARNED_ATTEMPTS || c.forget_at > now);
        for (addr, c) in self.entries.iter_mut() {
            if out.len() >= limit {
                break;
            }
            if c.next_attempt > now || (!c.is_configured && c.attempts >= LEARNED_ATTEMPTS) {
                continue;
            }
            out.push(*addr);
            c.last_sent = Some(now);
            c.attempts = c.attempts.saturating_add(1);
            c.next_attempt = now + c.backoff;
            let cap = if c.is_configured {
                CONNECT_BACKOFF_MAX
            } else {
                LEARNED_QUIET_PERIOD
            };
            c.backoff = c.backoff.saturating_mul(2).min(cap);
        }
    }

    /// The earliest time an entry becomes due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|c| c.is_configured || c.attempts < LEARNED_ATTEMPTS)
            .map(|c| c.next_attempt)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, n], 3210))
    }

    #[test]
    fn canonical_unmaps_ipv4_mapped_addresses() {
        let mapped: SocketAddr = "[::ffff:198.18.0.1]:3210".parse().unwrap();
        assert_eq!(canonical(mapped), addr(1));
        let v6: SocketAddr = "[fd00::1]:3210".parse().unwrap();
        assert_eq!(canonical(v6), v6);
    }

    #[test]
    fn unusable_addresses_are_recognised() {
        for bad in [
            "0.0.0.0:3210",
            "224.0.0.1:3210",
            "255.255.255.255:3210",
            "[::]:3210",
            "[ff02::1]:3210",
            "198.18.0.1:0",
        ] {
            assert!(is_unusable(bad.parse().unwrap()), "{bad}");
        }
        assert!(!is_unusable(addr(1)));
    }

    #[test]
    fn ceil_sqrt_matches_definition() {
        let expected = [0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 4];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(ceil_sqrt(n), *want, "n={n}");
        }
        assert_eq!(ceil_sqrt(1000), 32);
    }

    #[test]
    fn peer_table_touch_adds_refreshes_and_caps() {
        let mut t = PeerTable::new(2);
        assert_eq!(t.touch(Instant::ZERO, addr(1)), Touch::Added);
        assert_eq!(
            t.touch(Instant::from_secs(5), addr(1)),
            Touch::Refreshed { is_verified: false }
        );
        assert_eq!(t.get(addr(1)).unwrap().last_seen, Instant::from_secs(5));
        assert_eq!(t.touch(Instant::ZERO, addr(2)), Touch::Added);
        assert!(t.verify(addr(1)));
        assert!(!t.verify(addr(1)));
        assert!(t.verify(addr(2)));
        assert_eq!(t.verified_len(), 2);
        assert_eq!(t.touch(Instant::ZERO, addr(3)), Touch::Full);
        assert_eq!(t.len(), 2);
        assert!(t.remove(addr(1)).is_some());
        assert!(t.remove(addr(1)).is_none());
        assert_eq!(t.verified_len(), 1);
    }

    #[test]
    fn peer_table_round_robin_visits_everyone_in_turn() {
        let mut t = PeerTable::new(10);
        for n in 1..=6 {
            t.touch(Instant::ZERO, addr(n));
            if n != 6 {
                t.verify(addr(n));
            }
        }
        let mut cursor = None;
        let mut out = Vec::new();
        t.round_robin(&mut cursor, 2, &mut out);
        t.round_robin(&mut cursor, 2, &mut out);
        t.round_robin(&mut cursor, 2, &mut out);
        assert_eq!(
            out,
            vec![addr(1), addr(2), addr(3), addr(4), addr(5), addr(1)]
        );
        out.clear();
        t.round_robin(&mut cursor, 9, &mut out);
        assert_eq!(out.len(), 5, "wraps at most once, skips the unverified");
        // the cursor may point at a removed peer
        t.remove(addr(1));
        out.clear();
        t.round_robin(&mut cursor, 1, &mut out);
        assert_eq!(out, vec![addr(2)]);
    }

    #[test]
    fn peer_table_shuffled_round_robin_gives_each_peer_once_per_round_in_random_order() {
        let mut t = PeerTable::new(300);
        for i in 1..=200u8 {
            t.touch(Instant::ZERO, addr(i));
            if i % 4 != 0 {
                t.verify(addr(i));
            }
        }
        // remove some, verified or not: the unordered list stays exact
        for i in (1..=200u8).step_by(7) {
            t.remove(addr(i));
        }
        let verified: std::collections::BTreeSet<SocketAddr> = t.verified_addrs().collect();
        let n = verified.len();
        assert_eq!(t.verified_len(), n);
        let mut rng = 0x1234_5678_u64;
        let mut random = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        // rounds of 12 straddle the end of each permutation: still no repeats within a call,
        // and each permutation holds every peer once
        let mut position = 0;
        let mut order = Vec::new();
        for _ in 0..(3 * n).div_ceil(12) {
            let mut out = Vec::new();
            t.shuffled_round_robin(&mut position, 12, &mut random, &mut out);
            assert_eq!(out.len(), 12);
            let distinct: std::collections::BTreeSet<_> = out.iter().copied().collect();
            assert_eq!(distinct.len(), 12, "distinct within a call");
            order.extend(out);
        }
        let first: Vec<SocketAddr> = order[..n].to_vec();
        let second: Vec<SocketAddr> = order[n..2 * n].to_vec();
        assert_eq!(
            first
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            verified
        );
        assert_eq!(
            second
                .iter()
                .copied()
                .collect::<std::collections::BTreeSet<_>>(),
            verified
        );
        assert_ne!(first, second, "a fresh order each round");
        let sorted: Vec<SocketAddr> = verified.iter().copied().collect();
        assert_ne!(first, sorted, "not address order");
        // the slots still match after all the swaps: removals stay exact
        for a in sorted.iter().take(50) {
            t.remove(*a);
        }
        let mut out = Vec::new();
        t.shuffled_round_robin(&mut position, 1000, &mut random, &mut out);
        let rest: std::collections::BTreeSet<_> = t.verified_addrs().collect();
        assert_eq!(out.len(), n - 50);
        assert_eq!(
            out.into_iter().collect::<std::collections::BTreeSet<_>>(),
            rest
        );
        PeerTable::new(4).shuffled_round_robin(&mut position, 3, &mut random, &mut Vec::new());
    }

    #[test]
    fn peer_table_sweep_sends_to_the_idle_only_and_goes_round_in_order() {
        let mut t = PeerTable::new(10);
        for i in 1..=5u8 {
            t.touch(Instant::ZERO, addr(i));
            if i != 3 {
                t.verify(addr(i));
            }
        }
        let idle = Duration::from_secs(30);
        let mut cursor = None;
        let mut out = Vec::new();
        // nobody idle yet: walked, nothing sent, cursor moved
        t.sweep(&mut cursor, 2, Instant::from_secs(10), idle, &mut out);
        assert!(out.is_empty());
        assert_eq!(cursor, Some(addr(2)));
        t.note_sent(addr(4), Instant::from_secs(20));
        t.sweep(&mut cursor, 3, Instant::from_secs(30), idle, &mut out);
        // 4 (sent at 20 s) is skipped, 3 is unverified; wraps to 1
        assert_eq!(out, vec![addr(5), addr(1)]);
        assert_eq!(cursor, Some(addr(1)));
        assert_eq!(t.get(addr(5)).unwrap().last_sent, Instant::from_secs(30));
        out.clear();
        t.sweep(&mut cursor, 10, Instant::from_secs(49), idle, &mut out);
        assert_eq!(out, vec![addr(2)], "walks each verified peer once at most");
        assert_eq!(cursor, Some(addr(1)));
    }

    #[test]
    fn peer_table_family_walk_starts_after_the_cursor_and_keeps_families_apart() {
        let mut t = PeerTable::new(10);
        let v6: SocketAddr = "[fd00::1]:3210".parse().unwrap();
        for a in [addr(1), addr(2), addr(3), addr(4), v6] {
            t.touch(Instant::ZERO, a);
            if a != addr(3) {
                t.verify(a);
            }
        }
        let walk = |is_v6, cursor| -> Vec<SocketAddr> {
            t.verified_of_family_after(is_v6, cursor).collect()
        };
        assert_eq!(walk(false, None), vec![addr(1), addr(2), addr(4)]);
        assert_eq!(walk(false, Some(addr(2))), vec![addr(4), addr(1), addr(2)]);
        assert_eq!(walk(false, Some(addr(3))), vec![addr(4), addr(1), addr(2)]);
        assert_eq!(walk(false, Some(v6)), vec![addr(1), addr(2), addr(4)]);
        assert_eq!(walk(true, None), vec![v6]);
        assert_eq!(walk(true, Some(v6)), vec![v6]);
        assert_eq!(walk(true, Some(addr(1))), vec![v6]);
    }

    #[test]
    fn peer_table_expired_are_those_silent_for_the_timeout() {
        let mut t = PeerTable::new(10);
        t.touch(Instant::ZERO, addr(1));
        t.touch(Instant::from_secs(10), addr(2));
        t.verify(addr(1));
        t.verify(addr(2));
        let (timeout, unverified) = (Duration::from_secs(60), Duration::from_secs(5));
        let mut out = Vec::new();
        t.collect_expired(Instant::from_secs(59), timeout, unverified, &mut out);
        assert!(out.is_empty());
        t.collect_expired(Instant::from_secs(60), timeout, unverified, &mut out);
        assert_eq!(out, vec![addr(1)]);
    }

    #[test]
    fn peer_table_expiry_walk_is_skipped_until_the_earliest_deadline() {
        let mut t = PeerTable::new(10);
        t.touch(Instant::ZERO, addr(1));
        t.verify(addr(1));
        let (timeout, unverified) = (Duration::from_secs(60), Duration::from_secs(5));
        let mut out = Vec::new();
        t.collect_expired(Instant::from_secs(1), timeout, unverified, &mut out);
        assert_eq!(t.quiet_until, Instant::from_secs(60));
        // a new peer may expire sooner: the next call walks again and sees it
        t.touch(Instant::from_secs(2), addr(2));
        t.collect_expired(Instant::from_secs(6), timeout, unverified, &mut out);
        assert!(out.is_empty());
        t.collect_expired(Instant::from_secs(7), timeout, unverified, &mut out);
        assert_eq!(out, vec![addr(2)], "unverified, not answered in time");
        t.remove(addr(2));
        out.clear();
        t.collect_expired(Instant::from_secs(8), timeout, unverified, &mut out);
        assert!(out.is_empty());
        // other timeouts: walks again
        t.collect_expired(
            Instant::from_secs(8),
            Duration::from_secs(8),
            unverified,
            &mut out,
        );
        assert_eq!(out, vec![addr(1)]);
        // a deadline moved through get_mut is seen at the next call
        out.clear();
        t.touch(Instant::from_secs(8), addr(1));
        t.collect_expired(Instant::from_secs(9), timeout, unverified, &mut out);
        t.get_mut(addr(1)).unwrap().last_seen = Instant::ZERO;
        t.collect_expired(Instant::from_secs(60), timeout, unverified, &mut out);
        assert_eq!(out, vec![addr(1)]);
    }

    #[test]
    fn peer_table_unverified_expire_early_and_make_room_when_full() {
        let mut t = PeerTable::new(2);
        t.touch(Instant::ZERO, addr(1));
        t.touch(Instant::from_secs(1), addr(2));
        t.verify(addr(2));
        let mut out = Vec::new();
        t.collect_expired(
            Instant::from_secs(5),
            Duration::from_secs(60),
            Duration::from_secs(5),
            &mut out,
        );
        assert_eq!(out, vec![addr(1)], "not verified in time");
        // full: the oldest unverified peer makes room, a verified one never does
        assert_eq!(t.touch(Instant::from_secs(2), addr(3)), Touch::Added);
        assert!(!t.contains(addr(1)));
        assert!(t.contains(addr(2)));
        t.verify(addr(3));
        assert_eq!(t.touch(Instant::from_secs(3), addr(4)), Touch::Full);
    }

    const IMIN: Duration = Duration::from_secs(1);
    const IMAX: Duration = Duration::from_secs(60);

    /// Polls `t` once per `step` from `from` for `secs` seconds; the times of its rounds.
    fn rounds(t: &mut Trickle, from: Instant, secs: u64, step: Duration, k: u32) -> Vec<u64> {
        let mut out = Vec::new();
        let mut now = from;
        while now < from + Duration::from_secs(secs) {
            if t.poll(now, IMIN, IMAX, k) {
                out.push(now.as_millis());
            }
            now += step;
        }
        out
    }

    #[test]
    fn trickle_doubles_from_imin_to_imax_with_one_round_per_interval() {
        let mut t = Trickle::new(Instant::ZERO, IMIN, 7);
        let r = rounds(&mut t, Instant::ZERO, 603 + 1, Duration::from_secs(1), 2);
        // intervals 1, 2, 4, 8, 16, 32 s (ending at 63 s), then 60 s: 6 + 9 rounds by 603 s,
        // each in the second half of its interval
        assert_eq!(r.len(), 6 + 9, "{r:?}");
        let starts = [0u64, 1, 3, 7, 15, 31];
        for (i, start) in starts.iter().enumerate() {
            let len = 1u64 << i;
            let at = r[i] / 1000;
            assert!(
                at >= start + len / 2 && at <= start + len,
                "round {i} at {at}"
            );
        }
        assert_eq!(t.interval(), IMAX);
    }

    #[test]
    fn trickle_plans_from_the_planned_time_so_late_polls_do_not_drift() {
        // polled every 1.7 s: intervals still start at multiples of 60 s after the doubling
        let mut t = Trickle::new(Instant::ZERO, IMIN, 9);
        let step = Duration::from_millis(1_700);
        let r = rounds(&mut t, Instant::ZERO, 63 + 60 * 100, step, 2);
        // one round per 60 s interval: 100 steady intervals, not fewer (drift would lose some)
        assert_eq!(r.len(), 6 + 100, "{} rounds", r.len());
        for w in r[6..].windows(2) {
            let gap = w[1] - w[0];
            assert!(gap < 2 * 60_000, "{gap} ms between steady rounds");
        }
    }

    #[test]
    fn trickle_after_a_stall_sends_one_round_not_a_burst() {
        let mut t = Trickle::new(Instant::ZERO, IMIN, 3);
        let _ = rounds(&mut t, Instant::ZERO, 300, Duration::from_secs(1), 2);
        // an hour without housekeeping, then polls every second again
        let back = Instant::from_secs(300 + 3600);
        let r = rounds(&mut t, back, 60, Duration::from_secs(1), 2);
        assert!(r.len() <= 1, "burst after a stall: {r:?}");
        assert_eq!(r.len(), 1, "one round within an interval of coming back");
    }

    #[test]
    fn trickle_suppresses_steady_rounds_after_k_consistent_lists_and_resets_on_news() {
        let mut t = Trickle::new(Instant::ZERO, IMIN, 5);
        let _ = rounds(&mut t, Instant::ZERO, 200, Duration::from_secs(1), 2);
        assert_eq!(t.interval(), IMAX);
        // two consistent lists early in each interval: every steady round is skipped
        let mut now = Instant::from_secs(200);
        let mut sent = 0;
        for s in 0..600u64 {
            if s % 20 == 0 {
                t.heard_consistent();
                t.heard_consistent();
            }
            if t.poll(now, IMIN, IMAX, 2) {
                sent += 1;
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(sent, 0);
        // one is not enough with k = 2
        let mut sent = 0;
        for _ in 0..600u64 {
            if t.heard() == 0 {
                t.heard_consistent();
            }
            if t.poll(now, IMIN, IMAX, 2) {
                sent += 1;
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(sent, 10);
        // news: back to 1 s intervals, and short intervals are never suppressed
        t.reset(now, IMIN);
        assert_eq!(t.interval(), IMIN);
        t.heard_consistent();
        t.heard_consistent();
        now += Duration::from_secs(1);
        assert!(t.poll(now, IMIN, IMAX, 2));
    }

    #[test]
    fn sweep_visits_n_per_period_without_rounding_drift_and_caps_after_a_stall() {
        let period = Duration::from_secs(59);
        let mut s = Sweep::new(Instant::ZERO);
        let mut now = Instant::ZERO;
        let mut total = 0;
        for _ in 0..59 * 10 {
            now += Duration::from_secs(1);
            total += s.due(now, 7, period);
        }
        assert_eq!(total, 70, "7 peers, 10 periods");
        // uneven calls
        let mut total = 0;
        for i in 0..1000u64 {
            now += Duration::from_millis(500 + (i * 37) % 1000);
            total += s.due(now, 1000, period);
        }
        let elapsed = 500 * 1000 + (0..1000u64).map(|i| (i * 37) % 1000).sum::<u64>();
        let expected = 1000 * elapsed / 59_000;
        assert!(
            total.abs_diff(expected as usize) <= 1,
            "{total} vs {expected}"
        );
        // a stall owes at most one full sweep
        now += Duration::from_secs(3600);
        assert_eq!(s.due(now, 1000, period), 1000);
        assert_eq!(s.due(now, 1000, period), 0);
    }

    #[test]
    fn contacts_configured_back_off_doubles_up_to_cap() {
        let mut c = Contacts::new(4);
        c.add_configured(addr(1), Instant::ZERO);
        let mut sent = Vec::new();
        let mut now = Instant::ZERO;
        for _ in 0..400 {
            let mut out = Vec::new();
            c.take_due(now, 10, &mut out);
            if !out.is_empty() {
                sent.push(now.as_millis() / 1000);
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(&sent[..8], &[0, 1, 3, 7, 15, 31, 63, 123]);
        assert_eq!(sent[8] - sent[7], 60, "capped at 60 s");
    }

    #[test]
    fn contacts_learned_are_tried_a_few_times_then_remembered_quietly() {
        let mut c = Contacts::new(4);
        assert!(c.add_learned(Instant::ZERO, addr(1)));
        let mut attempts = 0;
        let mut now = Instant::ZERO;
        for _ in 0..200 {
            let mut out = Vec::new();
            c.take_due(now, 10, &mut out);
            attempts += out.len();
            // peer lists keep naming it: no new attempts
            c.add_learned(now, addr(1));
            now += Duration::from_secs(1);
        }
        assert_eq!(attempts, usize::try_from(LEARNED_ATTEMPTS).unwrap());
        assert!(c.contains(addr(1)));
        assert_eq!(c.next_due(), None);
        let mut out = Vec::new();
        c.take_due(Instant::ZERO + LEARNED_QUIET_PERIOD, 10, &mut out);
        assert!(out.is_empty());
        assert!(!c.contains(addr(1)), "forgotten after the quiet period");
    }

    #[test]
    fn contacts_refuse_learned_beyond_cap_and_limit_per_call() {
        let mut c = Contacts::new(2);
        assert!(c.add_learned(Instant::ZERO, addr(1)));
        assert!(c.add_learned(Instant::ZERO, addr(2)));
        assert!(!c.add_learned(Instant::ZERO, addr(3)));
        let mut out = Vec::new();
        c.take_due(Instant::ZERO, 1, &mut out);
        assert_eq!(out, vec![addr(1)]);
        assert_eq!(c.next_due(), Some(Instant::ZERO));
    }
}
