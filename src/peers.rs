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
    verified: usize,
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
            verified: 0,
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
            },
        );
        Touch::Added
    }

    /// Marks `addr` verified; true if it is a peer that was not verified before.
    pub fn verify(&mut self, addr: SocketAddr) -> bool {
        match self.peers.get_mut(&addr) {
            Some(peer) if !peer.is_verified => {
                peer.is_verified = true;
                self.verified += 1;
                true
            }
            _ => false,
        }
    }

    /// Removes `addr`; returns what it was, if it was a peer.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Peer> {
        let peer = self.peers.remove(&addr)?;
        if peer.is_verified {
            self.verified = self.verified.saturating_sub(1);
        }
        Some(peer)
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
        self.verified
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
