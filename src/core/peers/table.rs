//! [`PeerTable`]: the peers we have heard from, verified or not, with when each was last
//! heard from and sent to, their expiry, and the cursors and shuffles that pick whom gossip
//! and keepalives go to next.
//!
//! Owns the table's bookkeeping and its cap. It never sends anything and never parses bytes.
//! Lookups are by address (`BTreeMap`); the gossip's walk follows the verified peers' `Vec`,
//! whose order is that of their verifications and removals (see the module `peers`).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::Duration;

use crate::limit::RateLimiter;
use crate::time::Instant;

/// What we know about one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// When it was added. Never changed afterwards: the table's index of unverified peers is
    /// keyed by it.
    pub added: Instant,
    /// When we last received a valid message from it.
    pub last_seen: Instant,
    /// It answered a "get peer list" of ours, so it really receives what we send to that
    /// address. Only verified peers are sent data, gossip and full peer lists.
    pub is_verified: bool,
    /// When we last sent it a "get peer list" (a challenge, or a contact attempt).
    pub asked_at: Option<Instant>,
    /// When we last answered its "get peer list" with our whole list (verified peers only).
    pub listed_at: Option<Instant>,
    /// Keyed mode, unverified peers that answer Challenges: the nonce of the Challenge we sent
    /// it last (when: `asked_at`); only an Echo of that nonce verifies it.
    pub echo_challenge: Option<u64>,
    /// Challenges owed to it, one per interval, in case the last one or its Echo was lost
    /// (see the node's `owe_echo_challenge`).
    pub echo_again: u8,
    /// Keyed mode, a verified peer that speaks from a process other than the one that
    /// verified it: when we last sent it a Challenge to learn that process (see the node's
    /// `recheck_process`).
    pub rechallenged_at: Option<Instant>,
    /// Keyed mode: the nonce of a Challenge it sent us while unverified (and so unanswered):
    /// echoed once it is verified.
    pub unanswered_challenge: Option<u64>,
    /// A follow-up to it is queued (see the node's `follow_up`).
    pub follow_up_pending: bool,
    /// Its broadcast and multicast frames, when those are rate-limited.
    pub broadcasts: RateLimiter,
    /// When we last sent it a keepalive or a gossip list, or when it was added (we answer a
    /// new peer at once).
    pub last_sent: Instant,
    /// Datagrams and bytes to and from it (for `ethcloud show`).
    pub traffic: Traffic,
    /// Its place in the table's list of verified peers (meaningful only when verified).
    slot: usize,
}

/// Datagrams and bytes exchanged with one peer, as they were on the wire (sealed, in keyed
/// mode). Received: valid datagrams from it; sent: datagrams handed to the socket for it
/// (a later batched send that fails is counted in the node's totals only).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Valid datagrams received from it.
    pub rx_datagrams: u64,
    /// Bytes of those datagrams.
    pub rx_bytes: u64,
    /// Datagrams sent to it.
    pub tx_datagrams: u64,
    /// Bytes of those datagrams.
    pub tx_bytes: u64,
}

impl Traffic {
    /// Counts one datagram of `len` bytes sent.
    // HOT PATH
    #[inline]
    pub fn count_sent(&mut self, len: usize) {
        self.tx_datagrams = self.tx_datagrams.wrapping_add(1);
        self.tx_bytes = self.tx_bytes.wrapping_add(len as u64);
    }

    /// Counts `datagrams` datagrams of `bytes` bytes in all sent (by a `--threads` lane).
    pub fn count_sent_many(&mut self, datagrams: u64, bytes: u64) {
        self.tx_datagrams = self.tx_datagrams.wrapping_add(datagrams);
        self.tx_bytes = self.tx_bytes.wrapping_add(bytes);
    }

    /// Takes back `datagrams` datagrams of `bytes` bytes counted as sent that the socket
    /// then dropped (a failed flush). Never below zero: what is taken back may include
    /// datagrams sent while the address was not a peer (handshakes, the Echo to a contacted
    /// address, the ask after a Close), which were never counted for it.
    pub fn uncount_sent(&mut self, datagrams: u64, bytes: u64) {
        self.tx_datagrams = self.tx_datagrams.saturating_sub(datagrams);
        self.tx_bytes = self.tx_bytes.saturating_sub(bytes);
    }

    /// Counts one datagram of `len` bytes received.
    // HOT PATH
    #[inline]
    pub fn count_received(&mut self, len: usize) {
        self.rx_datagrams = self.rx_datagrams.wrapping_add(1);
        self.rx_bytes = self.rx_bytes.wrapping_add(len as u64);
    }

    /// Counts `datagrams` datagrams of `bytes` bytes in all received (by the kernel path).
    pub fn count_received_many(&mut self, datagrams: u64, bytes: u64) {
        self.rx_datagrams = self.rx_datagrams.wrapping_add(datagrams);
        self.rx_bytes = self.rx_bytes.wrapping_add(bytes);
    }
}

/// What [`PeerTable::touch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// The address is a new, unverified peer.
    Added {
        /// The unverified peer removed to make room for it (the table was full), if any: the
        /// caller forgets what else it kept about that address.
        evicted: Option<SocketAddr>,
    },
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
    /// The verified peers again, in address order: what a flood walks, so that its cost
    /// follows the verified peers, not the unverified addresses that anyone who knows the
    /// token can fill the rest of the table with.
    verified_in_order: BTreeSet<SocketAddr>,
    /// The unverified peers by the time they were added: the oldest makes room in O(log n)
    /// when the table is full (a scan per datagram from a new address would let a flood of
    /// such datagrams cost a walk of the whole table each).
    unverified: BTreeSet<(Instant, SocketAddr)>,
    max: usize,
    /// No peer expires before this, for the timeouts in `quiet_for`: lets
    /// [`PeerTable::collect_expired`] skip its walk over every peer. Set back to zero whenever
    /// a deadline may have moved earlier (a peer added, or changed through `get_mut`).
    pub(super) quiet_until: Instant,
    /// The (timeout, unverified timeout) that `quiet_until` was computed for.
    quiet_for: (Duration, Duration),
    /// How many times a peer became verified or a verified peer was removed.
    verified_changes: u64,
}

impl PeerTable {
    /// An empty table holding at most `max` peers.
    pub fn new(max: usize) -> PeerTable {
        PeerTable {
            peers: BTreeMap::new(),
            verified: Vec::new(),
            verified_in_order: BTreeSet::new(),
            unverified: BTreeSet::new(),
            max,
            quiet_until: Instant::ZERO,
            quiet_for: (Duration::ZERO, Duration::ZERO),
            verified_changes: 0,
        }
    }

    /// Records a valid message from `addr` at `now`, adding it (unverified) if there is room.
    /// When the table is full, the unverified peer added longest ago makes room. Counts no
    /// traffic; see [`PeerTable::touch_received`].
    pub fn touch(&mut self, now: Instant, addr: SocketAddr) -> Touch {
        self.touch_inner(now, addr, None)
    }

    /// [`PeerTable::touch`] for a valid datagram of `len` bytes, counted in the peer's
    /// [`Traffic`] (when it is or becomes a peer).
    // HOT PATH
    pub fn touch_received(&mut self, now: Instant, addr: SocketAddr, len: usize) -> Touch {
        self.touch_inner(now, addr, Some(len))
    }

    /// Counts a datagram of `len` bytes sent to `addr`, if it is a peer (one lookup, two
    /// additions).
    // HOT PATH
    #[inline]
    pub fn count_sent(&mut self, addr: SocketAddr, len: usize) {
        // Not through `get_mut`: this moves no expiry deadline.
        if let Some(p) = self.peers.get_mut(&addr) {
            p.traffic.count_sent(len);
        }
    }

    /// Takes back, for `addr` if it is still a peer, what a failed flush dropped of what it
    /// was counted as sent ([`Traffic::uncount_sent`]).
    pub fn uncount_sent(&mut self, addr: SocketAddr, datagrams: u64, bytes: u64) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.traffic.uncount_sent(datagrams, bytes);
        }
    }

    /// Counts `datagrams` datagrams of `bytes` bytes in all sent to `addr` (by a `--threads`
    /// lane), if it is still a peer.
    pub fn count_sent_many(&mut self, addr: SocketAddr, datagrams: u64, bytes: u64) {
        // Not through `get_mut`: this moves no expiry deadline.
        if let Some(p) = self.peers.get_mut(&addr) {
            p.traffic.count_sent_many(datagrams, bytes);
        }
    }

    /// Counts `datagrams` datagrams of `bytes` bytes in all received from `addr` (by the
    /// kernel path), if it is still a peer. Moves no expiry deadline: the peer's keepalives
    /// do that (see `crate::kpath`).
    pub fn count_received_many(&mut self, addr: SocketAddr, datagrams: u64, bytes: u64) {
        if let Some(p) = self.peers.get_mut(&addr) {
            p.traffic.count_received_many(datagrams, bytes);
        }
    }

    /// Calls `f` with every verified peer's address and traffic counters, in address order
    /// (flooding: send, then count). Walks the whole table while the verified peers are at
    /// least half of it, and otherwise looks each verified peer up, so that a table filled
    /// with unverified addresses does not make every flood a walk over all of them.
    // HOT PATH
    #[inline]
    pub fn for_each_verified(&mut self, mut f: impl FnMut(SocketAddr, &mut Traffic)) {
        // Not through `get_mut`: this moves no expiry deadline.
        if self.unverified.len() <= self.verified_in_order.len() {
            for (addr, p) in self.peers.iter_mut().filter(|(_, p)| p.is_verified) {
                f(*addr, &mut p.traffic);
            }
            return;
        }
        for addr in &self.verified_in_order {
            if let Some(p) = self.peers.get_mut(addr) {
                f(*addr, &mut p.traffic);
            }
        }
    }

    fn touch_inner(&mut self, now: Instant, addr: SocketAddr, len: Option<usize>) -> Touch {
        if let Some(peer) = self.peers.get_mut(&addr) {
            peer.last_seen = now;
            if let Some(len) = len {
                peer.traffic.count_received(len);
            }
            return Touch::Refreshed {
                is_verified: peer.is_verified,
            };
        }
        let mut evicted = None;
        if self.peers.len() >= self.max {
            match self.unverified.pop_first() {
                Some((_, victim)) => {
                    self.peers.remove(&victim);
                    evicted = Some(victim);
                }
                None => return Touch::Full,
            }
        }
        self.unverified.insert((now, addr));
        self.quiet_until = Instant::ZERO;
        let mut traffic = Traffic::default();
        if let Some(len) = len {
            traffic.count_received(len);
        }
        self.peers.insert(
            addr,
            Peer {
                added: now,
                last_seen: now,
                is_verified: false,
                asked_at: None,
                listed_at: None,
                echo_challenge: None,
                echo_again: 0,
                rechallenged_at: None,
                unanswered_challenge: None,
                follow_up_pending: false,
                broadcasts: RateLimiter::new(now, u64::MAX),
                last_sent: now,
                traffic,
                slot: 0,
            },
        );
        Touch::Added { evicted }
    }

    /// Takes the unverified peer `addr` out of the eviction order: it stays until it is
    /// verified, removed or expires ([`PeerTable::collect_expired`] walks every peer), and a
    /// new address cannot push it out. For the `--connect` address let in by evicting a
    /// verified peer: the next forged address must not take its place at once.
    pub fn shelter(&mut self, addr: SocketAddr) {
        if let Some(peer) = self.peers.get(&addr).filter(|p| !p.is_verified) {
            self.unverified.remove(&(peer.added, addr));
        }
    }

    /// Marks `addr` verified; true if it is a peer that was not verified before.
    pub fn verify(&mut self, addr: SocketAddr) -> bool {
        match self.peers.get_mut(&addr) {
            Some(peer) if !peer.is_verified => {
                peer.is_verified = true;
                self.unverified.remove(&(peer.added, addr));
                peer.slot = self.verified.len();
                self.verified.push(addr);
                self.verified_in_order.insert(addr);
                self.verified_changes += 1;
                true
            }
            _ => false,
        }
    }

    /// How many times a peer became verified or a verified peer was removed: a counter that
    /// only grows, so a copy of [`PeerTable::verified_addrs`] taken at one count is current as
    /// long as the count stays the same.
    pub fn verified_changes(&self) -> u64 {
        self.verified_changes
    }

    /// Removes the verified peer heard from least recently, of those `spare` does not spare,
    /// to make room when the table is full of verified peers (see `Node`: only for a
    /// `--connect` address, at most once a second, and never another one). Returns its
    /// address. A scan of the table.
    pub fn evict_quietest(&mut self, spare: impl Fn(SocketAddr) -> bool) -> Option<SocketAddr> {
        let victim = self
            .peers
            .iter()
            .filter(|(a, p)| p.is_verified && !spare(**a))
            .min_by_key(|(_, p)| p.last_seen)
            .map(|(a, _)| *a)?;
        self.remove(victim).map(|_| victim)
    }

    /// Removes `addr`; returns what it was, if it was a peer.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Peer> {
        let peer = self.peers.remove(&addr)?;
        if !peer.is_verified {
            self.unverified.remove(&(peer.added, addr));
        }
        if peer.is_verified {
            self.verified_in_order.remove(&addr);
        }
        if peer.is_verified && self.verified.get(peer.slot) == Some(&addr) {
            self.verified.swap_remove(peer.slot);
            self.verified_changes += 1;
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

    /// How many valid datagrams came from the peer at `addr` so far, if it is a peer: what
    /// a check of that address compares against later (counted, not timed: an answer may
    /// come within the same millisecond as the question).
    pub fn heard(&self, addr: SocketAddr) -> Option<u64> {
        self.peers.get(&addr).map(|p| p.traffic.rx_datagrams)
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

    /// The verified peers' addresses, in address order.
    // HOT PATH (flooding)
    pub fn verified_addrs(&self) -> impl Iterator<Item = SocketAddr> + Clone + '_ {
        self.verified_in_order.iter().copied()
    }

    /// Every peer with what we know of it: the verified ones first, then the others, each in
    /// address order (what a listing cut short should show first: unverified addresses are
    /// anyone's to make, from forged sources too).
    pub fn iter_verified_first(&self) -> impl Iterator<Item = (SocketAddr, &Peer)> + '_ {
        let verified = self
            .verified_in_order
            .iter()
            .filter_map(|a| self.peers.get(a).map(|p| (*a, p)));
        let others = self
            .peers
            .iter()
            .filter(|(_, p)| !p.is_verified)
            .map(|(a, p)| (*a, p));
        verified.chain(others)
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
        // The verified peers alone: unverified addresses, anyone's to make, are never walked.
        let verified = &self.verified_in_order;
        let (after, before) = match *cursor {
            Some(c) => (
                verified.range((Bound::Excluded(c), Bound::Unbounded)),
                verified.range((Bound::Unbounded, Bound::Included(c))),
            ),
            None => (
                verified.range::<SocketAddr, _>(..),
                // empty: nothing sorts below the smallest address
                verified.range((Bound::Unbounded, Bound::Excluded(MIN_ADDR))),
            ),
        };
        out.extend(after.chain(before).copied().take(count));
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
        let mut last = None;
        // The verified peers alone (see `round_robin`), each looked up to note the send.
        let verified = &self.verified_in_order;
        let walk = match *cursor {
            Some(c) => verified
                .range((Bound::Excluded(c), Bound::Unbounded))
                .chain(verified.range((Bound::Unbounded, Bound::Included(c)))),
            None => verified
                .range::<SocketAddr, _>(..)
                .chain(verified.range((Bound::Unbounded, Bound::Excluded(MIN_ADDR)))),
        };
        for addr in walk.take(count) {
            last = Some(*addr);
            if let Some(p) = self.peers.get_mut(addr) {
                if now.saturating_duration_since(p.last_sent) >= idle {
                    p.last_sent = now;
                    out.push(*addr);
                }
            }
        }
        if last.is_some() {
            *cursor = last;
        }
    }

    /// The verified peers of one address family (IPv6 if `is_v6`) in address order, starting
    /// after `cursor` (if it is of that family) and wrapping once. Only that family's verified
    /// peers are walked, and lazily: taking the first k costs O(k + log n), however many
    /// unverified addresses the table holds.
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
        // The verified peers alone: unverified addresses, anyone's to make, are never walked.
        let verified = &self.verified_in_order;
        let (after, before) = match cursor {
            Some(c) if c.is_ipv6() == is_v6 => (
                verified.range((Bound::Excluded(c), Bound::Included(high))),
                verified.range((Bound::Included(low), Bound::Included(c))),
            ),
            _ => (
                verified.range((Bound::Included(low), Bound::Included(high))),
                // empty: start and end are the same address, the end excluded
                verified.range((Bound::Included(low), Bound::Excluded(low))),
            ),
        };
        after.chain(before).copied()
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
