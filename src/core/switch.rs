//! [`SwitchTable`]: the learning switch's MAC table, keyed by (VLAN, MAC).
//!
//! Owns which peer a (VLAN, MAC) was last seen behind, and for how long that holds. It does not
//! decide what to do with a frame (that is `node`) and never sees bytes or sockets.
//!
//! The table is capped in total, per peer and per host ([`Host`]: an IP address, or an IPv6
//! /64), so nobody on the network can grow it without bound, and one host cannot fill it
//! through many ports or relayed origins: a full table refuses new entries (the caller counts
//! them) and the frames to those MACs are flooded, as for any unknown destination.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::limit::{Host, Tally};
use crate::time::Instant;
use crate::wire::{Mac, VlanId};

/// Default cap on the whole table.
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;
/// Default cap on the entries that point at one peer.
pub const DEFAULT_MAX_ENTRIES_PER_PEER: usize = 4_096;

/// The cap on the entries charged to one host, for a table of `max_entries` in all and
/// `max_per_peer` per peer: a quarter of the table, or the per-peer cap if that is more (one
/// peer may always fill its own share).
pub fn max_per_host(max_entries: usize, max_per_peer: usize) -> usize {
    (max_entries / 4).max(max_per_peer)
}

/// A (VLAN, MAC) packed into one integer: the VLAN id above the 48 bits of the MAC. Hashing
/// one `u64` costs the table's SipHash a single write where the tuple took three (one per
/// field and the array's length), on every frame's lookup and learning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Key(u64);

impl Key {
    fn new(vlan: VlanId, mac: Mac) -> Key {
        let [a, b, c, d, e, f] = mac.0;
        let [hi, lo] = vlan.get().to_be_bytes();
        Key(u64::from_be_bytes([hi, lo, a, b, c, d, e, f]))
    }

    fn vlan(self) -> VlanId {
        let [hi, lo, ..] = self.0.to_be_bytes();
        VlanId::new(u16::from_be_bytes([hi, lo]))
    }

    fn mac(self) -> Mac {
        let [_, _, a, b, c, d, e, f] = self.0.to_be_bytes();
        Mac([a, b, c, d, e, f])
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    peer: SocketAddr,
    expires: Instant,
    /// Its place in its peer's list of keys (`SwitchTable::per_peer`).
    slot: u32,
    /// The host it counts against: the peer's, or for a frame relayed to us, the relay's.
    host: Host,
}

/// What [`SwitchTable::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learned {
    /// A new entry.
    New,
    /// The entry already pointed at this peer; its timeout was renewed.
    Refreshed,
    /// The entry pointed at another peer and now points at this one.
    Moved {
        /// The peer it pointed at before.
        from: SocketAddr,
    },
    /// Not learned: a cap was reached.
    Refused,
}

/// The MAC table.
#[derive(Debug)]
pub struct SwitchTable {
    entries: HashMap<Key, Entry>,
    /// The keys of each peer's entries (each entry's `slot` is its index there): a peer's
    /// entries go in time proportional to their number, not to the table's size (removing a
    /// peer is something the network can cause at a high rate).
    per_peer: PeerKeys,
    /// How many entries count against each host (a host with none has no entry).
    per_host: Tally<Host>,
    /// Reused by [`SwitchTable::expire`].
    expired: Vec<Key>,
    timeout: Duration,
    max_entries: usize,
    max_per_peer: usize,
    max_per_host: usize,
    /// Entries added, moved or removed since the table was made (see [`SwitchTable::changes`]).
    changes: u64,
}

/// A read-only copy of the [`SwitchTable`]'s entries, for lookups on another thread (a
/// `--threads` lane, see [`crate::lane`]). It is a snapshot: it never learns or expires
/// anything itself, but [`MacView::lookup_lagging`] still honours each entry's expiry.
#[derive(Clone, Debug, Default)]
pub struct MacView {
    entries: HashMap<Key, Entry>,
}

impl MacView {
    /// The peer behind `mac` on `vlan` in the snapshot, if not expired at `now` by more than
    /// `lag`: the owner refreshes entries without taking a new snapshot at once, and removes
    /// expired ones within `lag` (see [`crate::lane::VIEW_LAG`]).
    // HOT PATH
    pub fn lookup_lagging(
        &self,
        now: Instant,
        lag: Duration,
        vlan: VlanId,
        mac: Mac,
    ) -> Option<SocketAddr> {
        self.entries
            .get(&Key::new(vlan, mac))
            .filter(|e| e.expires + lag > now)
            .map(|e| e.peer)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every entry as (VLAN, MAC, peer, expiry), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (VlanId, Mac, SocketAddr, Instant)> + '_ {
        self.entries
            .iter()
            .map(|(&key, e)| (key.vlan(), key.mac(), e.peer, e.expires))
    }
}

impl SwitchTable {
    /// An empty table whose entries live for `timeout` after they were last seen, with at
    /// most `max_entries` in all, `max_per_peer` behind one peer and [`max_per_host`] against
    /// one host.
    pub fn new(timeout: Duration, max_entries: usize, max_per_peer: usize) -> SwitchTable {
        SwitchTable {
            entries: HashMap::new(),
            per_peer: PeerKeys::default(),
            per_host: Tally::default(),
            expired: Vec::new(),
            timeout,
            max_entries,
            max_per_peer,
            max_per_host: max_per_host(max_entries, max_per_peer),
            changes: 0,
        }
    }

    /// How many times an entry was added, moved to another peer or removed: a counter that
    /// only grows, so a snapshot ([`SwitchTable::view`]) taken at one count is current as
    /// long as the count stays the same. Refreshing an entry does not count.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// A copy of every entry, for lookups on another thread. O(n) in the table's room, which
    /// [`SwitchTable::expire`] keeps near its entries: take it when [`SwitchTable::changes`]
    /// moved, and not more often than needed.
    pub fn view(&self) -> MacView {
        MacView {
            entries: self.entries.clone(),
        }
    }

    /// Records that `mac` on `vlan` sits behind `peer`, as of `now`, counted against
    /// `peer`'s host.
    ///
    /// Group (multicast or broadcast) addresses are never learned; callers filter them.
    // HOT PATH
    #[inline]
    pub fn learn(&mut self, now: Instant, vlan: VlanId, mac: Mac, peer: SocketAddr) -> Learned {
        self.learn_through(now, vlan, mac, peer, peer)
    }

    /// [`SwitchTable::learn`] for a frame from `peer` that reached us through `through`
    /// (a relay; `peer` itself when it came directly), whose host the entry counts against.
    // HOT PATH
    pub fn learn_through(
        &mut self,
        now: Instant,
        vlan: VlanId,
        mac: Mac,
        peer: SocketAddr,
        through: SocketAddr,
    ) -> Learned {
        let expires = now + self.timeout;
        let key = Key::new(vlan, mac);
        let host = Host::of(through);
        if let Some(entry) = self.entries.get_mut(&key) {
            if entry.peer == peer && entry.host == host {
                entry.expires = expires;
                return Learned::Refreshed;
            }
            let (from, slot, old_host) = (entry.peer, entry.slot, entry.host);
            let moves_peer = from != peer;
            if (moves_peer && self.per_peer.count(peer) >= self.max_per_peer)
                || (old_host != host && self.per_host.get(&host) >= self.max_per_host)
            {
                if !moves_peer {
                    // The same peer, reached another way whose host is at its cap: the entry
                    // still points at the right peer, so it stays, counted against the host
                    // it was, and is refreshed (nothing is refused: no host's count grows).
                    entry.expires = expires;
                    return Learned::Refreshed;
                }
                // The new owner is at its cap, so the MAC cannot be learned behind it; and it
                // was just heard somewhere else than its entry says, so the entry is dropped:
                // frames to it are flooded (and reach it at its new place) until it is heard
                // again behind a peer with room. Keeping the entry would send them to the old
                // place, where the MAC no longer is, until it expired.
                if let Some(e) = self.entries.remove(&key) {
                    self.per_host.remove(&e.host);
                }
                self.per_peer.detach(&mut self.entries, from, slot);
                self.changes += 1;
                return Learned::Refused;
            }
            entry.expires = expires;
            if old_host != host {
                entry.host = host;
                self.per_host.add(host);
                self.per_host.remove(&old_host);
            }
            if !moves_peer {
                // The same peer, now reached another way (directly, or through another
                // relay): only the host it counts against changed.
                return Learned::Refreshed;
            }
            entry.peer = peer;
            entry.slot = self.per_peer.attach(peer, key);
            self.changes += 1;
            self.per_peer.detach(&mut self.entries, from, slot);
            return Learned::Moved { from };
        }
        if self.entries.len() >= self.max_entries
            || self.per_peer.count(peer) >= self.max_per_peer
            || self.per_host.get(&host) >= self.max_per_host
        {
            return Learned::Refused;
        }
        let slot = self.per_peer.attach(peer, key);
        self.per_host.add(host);
        self.entries.insert(
            key,
            Entry {
                peer,
                expires,
                slot,
                host,
            },
        );
        self.changes += 1;
        Learned::New
    }

    /// The peer behind `mac` on `vlan`, if known and not expired at `now`.
    // HOT PATH
    pub fn lookup(&self, now: Instant, vlan: VlanId, mac: Mac) -> Option<SocketAddr> {
        self.entries
            .get(&Key::new(vlan, mac))
            .filter(|e| e.expires > now)
            .map(|e| e.peer)
    }

    /// The peer behind `mac` on `vlan` if it was seen there within `fresh` before `now`.
    pub fn seen_within(
        &self,
        now: Instant,
        vlan: VlanId,
        mac: Mac,
        fresh: Duration,
    ) -> Option<SocketAddr> {
        let entry = self.entries.get(&Key::new(vlan, mac))?;
        let seen = entry.expires.saturating_duration_since(now);
        // `expires` is last seen + timeout: seen within `fresh` iff expires - now >= timeout - fresh.
        (entry.expires > now && seen + fresh >= self.timeout).then_some(entry.peer)
    }

    /// Removes entries not seen for the timeout; calls `on_expired` for each. Returns how many.
    pub fn expire(
        &mut self,
        now: Instant,
        mut on_expired: impl FnMut(VlanId, Mac, SocketAddr),
    ) -> usize {
        let mut expired = core::mem::take(&mut self.expired);
        expired.clear();
        expired.extend(
            self.entries
                .iter()
                .filter(|(_, e)| e.expires <= now)
                .map(|(key, _)| *key),
        );
        for key in &expired {
            if let Some(e) = self.entries.remove(key) {
                on_expired(key.vlan(), key.mac(), e.peer);
                self.per_peer.detach(&mut self.entries, e.peer, e.slot);
                self.per_host.remove(&e.host);
            }
        }
        let removed = expired.len();
        self.expired = expired;
        self.changes += removed as u64;
        // A table left sparse (a flood of made-up MACs expired, a peer forgotten) gives its
        // room back: else every lane's view, a copy of every bucket, and this walk would go on
        // costing the table's peak. Small tables keep theirs (no allocation on the way up).
        if self.entries.capacity() > 1024 && self.entries.len() * 4 < self.entries.capacity() {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        removed
    }

    /// Removes every entry that points at `peer`. Returns how many.
    pub fn forget_peer(&mut self, peer: SocketAddr) -> usize {
        let Some(keys) = self.per_peer.lists.remove(&peer) else {
            return 0;
        };
        for key in &keys {
            if let Some(e) = self.entries.remove(key) {
                self.per_host.remove(&e.host);
            }
        }
        let removed = keys.len();
        self.changes += removed as u64;
        self.per_peer.keep_spare(keys);
        removed
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of entries pointing at `peer`.
    pub fn count_for(&self, peer: SocketAddr) -> usize {
        self.per_peer.count(peer)
    }

    /// Number of entries counted against `host`.
    pub fn count_for_host(&self, host: Host) -> usize {
        self.per_host.get(&host)
    }

    /// Every entry as (VLAN, MAC, peer, expiry), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (VlanId, Mac, SocketAddr, Instant)> + '_ {
        self.entries
            .iter()
            .map(|(&key, e)| (key.vlan(), key.mac(), e.peer, e.expires))
    }
}

/// Emptied lists of keys kept for reuse, at most: a MAC that moves between two peers with no
/// other entry (a node that is a peer at two addresses, whose floods come from both) empties
/// one list and starts another with every move, which must not allocate.
const MAX_SPARE_LISTS: usize = 64;

/// The keys of each peer's entries (each entry's `slot` is its index in its peer's list), and
/// emptied lists kept for the next peer that needs one.
#[derive(Debug, Default)]
struct PeerKeys {
    lists: HashMap<SocketAddr, Vec<Key>>,
    spare: Vec<Vec<Key>>,
}

impl PeerKeys {
    /// How many entries point at `peer`.
    fn count(&self, peer: SocketAddr) -> usize {
        self.lists.get(&peer).map_or(0, Vec::len)
    }

    /// Adds `key` to `peer`'s list (a spare one if it had none); returns its slot there.
    fn attach(&mut self, peer: SocketAddr, key: Key) -> u32 {
        let spare = &mut self.spare;
        let keys = self
            .lists
            .entry(peer)
            .or_insert_with(|| spare.pop().unwrap_or_default());
        keys.push(key);
        // At most the per-peer cap, far below u32::MAX.
        u32::try_from(keys.len() - 1).unwrap_or(u32::MAX)
    }

    /// Takes the key at `slot` out of `peer`'s list: the last key moves into its place (its
    /// entry's slot in `entries` is updated), and a peer left with none goes, its list kept.
    fn detach(&mut self, entries: &mut HashMap<Key, Entry>, peer: SocketAddr, slot: u32) {
        let Some(keys) = self.lists.get_mut(&peer) else {
            return;
        };
        let slot = slot as usize;
        if slot >= keys.len() {
            return;
        }
        keys.swap_remove(slot);
        if let Some(moved) = keys.get(slot) {
            if let Some(e) = entries.get_mut(moved) {
                e.slot = u32::try_from(slot).unwrap_or(u32::MAX);
            }
        }
        if keys.is_empty() {
            if let Some(emptied) = self.lists.remove(&peer) {
                self.keep_spare(emptied);
            }
        }
    }

    /// Keeps `keys`' room for reuse, emptied, if there are fewer than [`MAX_SPARE_LISTS`]
    /// and it is small (a list that grew to a peer's thousands of entries is let go).
    fn keep_spare(&mut self, mut keys: Vec<Key>) {
        if self.spare.len() < MAX_SPARE_LISTS && keys.capacity() <= 64 {
            keys.clear();
            self.spare.push(keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_keys_round_trip_and_keep_vlans_and_macs_apart() {
        let macs = [Mac([0; 6]), Mac([2, 0, 0, 0, 0, 1]), Mac([0xff; 6])];
        let vlans = [VlanId::UNTAGGED, VlanId::new(1), VlanId::new(4095)];
        let mut seen = std::collections::HashSet::new();
        for &vlan in &vlans {
            for &mac in &macs {
                let key = Key::new(vlan, mac);
                assert_eq!((key.vlan(), key.mac()), (vlan, mac));
                assert!(seen.insert(key), "{vlan:?} {mac} collides");
            }
        }
    }

    #[test]
    fn at_most_max_spare_lists_of_departed_peers_are_kept() {
        let mut table = SwitchTable::new(Duration::from_secs(300), 1024, 16);
        let peers: Vec<SocketAddr> = (0..100u16)
            .map(|i| SocketAddr::from(([198, 18, 1, 1], 3000 + i)))
            .collect();
        for (i, &peer) in peers.iter().enumerate() {
            let mac = Mac([2, 0, 0, 0, (i >> 8) as u8, i as u8]);
            table.learn(Instant::ZERO, VlanId::UNTAGGED, mac, peer);
        }
        assert_eq!(table.per_peer.lists.len(), 100);
        for &peer in &peers {
            assert_eq!(table.forget_peer(peer), 1);
        }
        assert!(table.per_peer.lists.is_empty());
        assert_eq!(table.per_peer.spare.len(), MAX_SPARE_LISTS);
        // A new peer takes a kept one rather than a new allocation.
        table.learn(Instant::ZERO, VlanId::UNTAGGED, M, addr(9));
        assert_eq!(table.per_peer.spare.len(), MAX_SPARE_LISTS - 1);
    }

    #[test]
    fn seen_within_tells_how_fresh_an_entry_is() {
        let peer: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let mac = Mac([2, 0, 0, 0, 0, 1]);
        let mut table = SwitchTable::new(Duration::from_secs(300), 16, 16);
        table.learn(Instant::from_secs(100), VlanId::UNTAGGED, mac, peer);
        let fresh = Duration::from_secs(5);
        let at = |s| table.seen_within(Instant::from_secs(s), VlanId::UNTAGGED, mac, fresh);
        assert_eq!(at(100), Some(peer));
        assert_eq!(at(105), Some(peer));
        assert_eq!(at(106), None);
        assert_eq!(at(400), None);
    }

    fn addr(n: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, n], 3210))
    }
    const M: Mac = Mac([2, 0, 0, 0, 0, 1]);
    const T0: Instant = Instant::ZERO;

    fn table() -> SwitchTable {
        SwitchTable::new(Duration::from_secs(300), 8, 4)
    }

    #[test]
    fn switch_learn_keeps_vlans_apart() {
        let mut t = table();
        assert_eq!(t.learn(T0, VlanId::new(10), M, addr(1)), Learned::New);
        assert_eq!(t.learn(T0, VlanId::new(20), M, addr(2)), Learned::New);
        assert_eq!(t.lookup(T0, VlanId::new(10), M), Some(addr(1)));
        assert_eq!(t.lookup(T0, VlanId::new(20), M), Some(addr(2)));
        assert_eq!(t.lookup(T0, VlanId::UNTAGGED, M), None);
    }

    #[test]
    fn switch_mac_seen_from_another_peer_moves_there() {
        let mut t = table();
        t.learn(T0, VlanId::UNTAGGED, M, addr(1));
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, M, addr(1)),
            Learned::Refreshed
        );
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, M, addr(2)),
            Learned::Moved { from: addr(1) }
        );
        assert_eq!(t.lookup(T0, VlanId::UNTAGGED, M), Some(addr(2)));
        assert_eq!((t.count_for(addr(1)), t.count_for(addr(2))), (0, 1));
    }

    #[test]
    fn switch_entry_expires_after_timeout_unless_refreshed() {
        let mut t = table();
        t.learn(T0, VlanId::UNTAGGED, M, addr(1));
        let almost = Instant::from_secs(299);
        assert_eq!(t.expire(almost, |_, _, _| {}), 0);
        t.learn(almost, VlanId::UNTAGGED, M, addr(1));
        assert_eq!(t.expire(Instant::from_secs(300), |_, _, _| {}), 0);
        assert_eq!(
            t.lookup(Instant::from_secs(598), VlanId::UNTAGGED, M),
            Some(addr(1))
        );
        assert_eq!(t.lookup(Instant::from_secs(599), VlanId::UNTAGGED, M), None);
        let mut expired = Vec::new();
        assert_eq!(
            t.expire(Instant::from_secs(599), |v, m, p| expired.push((v, m, p))),
            1
        );
        assert_eq!(expired, vec![(VlanId::UNTAGGED, M, addr(1))]);
        assert!(t.is_empty());
        assert_eq!(t.count_for(addr(1)), 0);
    }

    #[test]
    fn switch_forget_peer_removes_only_its_entries() {
        let mut t = table();
        t.learn(T0, VlanId::UNTAGGED, M, addr(1));
        t.learn(T0, VlanId::new(5), M, addr(1));
        t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 0, 9]), addr(2));
        assert_eq!(t.forget_peer(addr(1)), 2);
        assert_eq!(t.forget_peer(addr(1)), 0);
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(T0, VlanId::UNTAGGED, M), None);
    }

    /// A view holds room for the entries there are, not for all the table ever held: after a
    /// flood of 60,000 MACs that expired, one entry left makes a small copy.
    #[test]
    fn a_view_is_sized_to_the_entries_left_not_to_the_tables_peak() {
        let mut t = SwitchTable::new(Duration::from_secs(300), 65_536, 65_536);
        for i in 0..60_000u32 {
            let [_, a, b, c] = i.to_be_bytes();
            let mac = Mac([2, 0, 0, a, b, c]);
            t.learn(T0, VlanId::UNTAGGED, mac, addr(1 + (i % 4) as u8));
        }
        assert_eq!(t.len(), 60_000);
        let later = T0 + Duration::from_secs(301);
        assert_eq!(t.expire(later, |_, _, _| {}), 60_000);
        t.learn(later, VlanId::UNTAGGED, M, addr(1));
        let view = t.view();
        assert_eq!(view.len(), 1);
        assert!(
            view.entries.capacity() < 1024,
            "a view of 1 entry has room for {}",
            view.entries.capacity()
        );
        assert_eq!(
            view.lookup_lagging(later, Duration::ZERO, VlanId::UNTAGGED, M),
            Some(addr(1))
        );
    }

    #[test]
    fn switch_caps_total_and_per_peer_entries() {
        let mut t = table();
        for i in 0..4u8 {
            assert_eq!(
                t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 1, i]), addr(1)),
                Learned::New
            );
        }
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 1, 99]), addr(1)),
            Learned::Refused,
            "per-peer cap"
        );
        for i in 0..4u8 {
            assert_eq!(
                t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, i]), addr(2)),
                Learned::New
            );
        }
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 3, 0]), addr(3)),
            Learned::Refused,
            "total cap"
        );
        assert_eq!(t.len(), 8);
        // a move onto a peer at its cap is refused, and the old entry dropped: the MAC is
        // no longer behind its old owner, so frames to it are flooded (and reach it).
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0]), addr(1)),
            Learned::Refused
        );
        assert_eq!(
            t.lookup(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0])),
            None
        );
        assert_eq!(
            (t.len(), t.count_for(addr(2)), t.count_for(addr(1))),
            (7, 3, 4)
        );
        // The old owner's other entries are intact (its list was re-indexed), and it can
        // learn the MAC back, or another one, in the room the dropped entry left.
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 3]), addr(2)),
            Learned::Refreshed
        );
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0]), addr(2)),
            Learned::New
        );
        assert_eq!(t.forget_peer(addr(2)), 4);
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn one_host_cannot_fill_the_table_through_many_ports_or_relayed_origins() {
        // 64 entries, 8 per peer: 16 per host.
        let mut t = SwitchTable::new(Duration::from_secs(300), 64, 8);
        assert_eq!(max_per_host(64, 8), 16);
        let mac = |i: u8| Mac([2, 0, 0, 0, 1, i]);
        let port = |p: u16| SocketAddr::from(([198, 18, 0, 1], p));
        // Eight ports of one host, eight MACs each: only two ports' worth is learned.
        let mut learned = 0;
        for p in 0..8u16 {
            for i in 0..8u8 {
                if t.learn(T0, VlanId::UNTAGGED, mac(p as u8 * 8 + i), port(4000 + p))
                    == Learned::New
                {
                    learned += 1;
                }
            }
        }
        assert_eq!(learned, 16);
        assert_eq!(t.count_for_host(Host::of(port(1))), 16);
        // Relayed origins count against their relay's host, whatever their own addresses.
        let relay = addr(7);
        let origin = |i: u8| SocketAddr::from(([198, 19, 0, i], 3210));
        let relayed = (0..40u8)
            .filter(|&i| {
                t.learn_through(T0, VlanId::new(5), mac(i), origin(i), relay) == Learned::New
            })
            .count();
        assert_eq!(relayed, 16);
        // A MAC of port(4000)'s peer, relayed now through the full relay: the same peer,
        // whose entry stays (it is not learnt against the relay's host, nor dropped), and
        // lives on while frames keep coming that way.
        let later = T0 + Duration::from_secs(200);
        assert_eq!(
            t.learn_through(later, VlanId::UNTAGGED, mac(0), port(4000), relay),
            Learned::Refreshed
        );
        assert_eq!(t.lookup(T0, VlanId::UNTAGGED, mac(0)), Some(port(4000)));
        let past_first_timeout = T0 + Duration::from_secs(301);
        assert_eq!(
            t.lookup(past_first_timeout, VlanId::UNTAGGED, mac(0)),
            Some(port(4000))
        );
        assert_eq!(t.count_for_host(Host::of(relay)), 16);
        // Another host still has room, and so does an IPv6 host; a second address in the
        // same /64 is the same host.
        assert_eq!(t.learn(T0, VlanId::UNTAGGED, M, addr(2)), Learned::New);
        let v6 = |s: &str| SocketAddr::new(s.parse().unwrap(), 3210);
        assert_eq!(Host::of(v6("fd00::1")), Host::of(v6("fd00::ffff:2")));
        assert_ne!(Host::of(v6("fd00::1")), Host::of(v6("fd00:0:0:1::1")));
        assert_eq!(
            Host::of(v6("::ffff:198.18.0.1")),
            Host::of(port(1)),
            "an IPv4-mapped address is its IPv4 host"
        );
        // A relayed origin reached directly later counts against its own host.
        assert_eq!(
            t.learn(T0, VlanId::new(5), mac(0), origin(0)),
            Learned::Refreshed
        );
        assert_eq!(t.count_for_host(Host::of(relay)), 15);
        assert_eq!(t.count_for_host(Host::of(origin(0))), 1);
        // Entries that go give the host its room back.
        t.forget_peer(port(4000));
        assert_eq!(t.count_for_host(Host::of(port(1))), 8);
        t.expire(Instant::from_secs(301), |_, _, _| {});
        assert!(t.is_empty());
        assert_eq!(t.count_for_host(Host::of(relay)), 0);
    }

    #[test]
    fn each_peers_list_of_keys_matches_the_entries_through_learning_moves_expiry_and_removal() {
        let mut table = SwitchTable::new(Duration::from_secs(30), 64, 24);
        let mut x = 0x9e37_79b9_u32;
        for step in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let now = Instant::from_secs(step / 50);
            let peer = addr((x % 5) as u8 + 1);
            let mac = Mac([2, 0, 0, 0, 0, (x >> 8) as u8 % 90]);
            let vlan = VlanId::new(((x >> 16) % 2) as u16);
            match x % 23 {
                0 => {
                    table.forget_peer(peer);
                }
                1 => {
                    table.expire(now, |_, _, _| {});
                }
                2..=5 => {
                    // Relayed, through one of two relays.
                    let relay = addr(9 + (x >> 24) as u8 % 2);
                    table.learn_through(now, vlan, mac, peer, relay);
                }
                _ => {
                    table.learn(now, vlan, mac, peer);
                }
            }
            let mut hosts = Tally::default();
            for e in table.entries.values() {
                hosts.add(e.host);
            }
            assert_eq!(hosts, table.per_host, "step {step}");
            assert!(
                table.entries.values().all(|e| hosts.get(&e.host) <= 24),
                "step {step}"
            );
            let listed: usize = table.per_peer.lists.values().map(Vec::len).sum();
            assert_eq!(listed, table.entries.len(), "step {step}");
            for (key, e) in &table.entries {
                let keys = &table.per_peer.lists[&e.peer];
                assert_eq!(keys[e.slot as usize], *key, "step {step}");
            }
            assert!(table
                .per_peer
                .lists
                .values()
                .all(|k| !k.is_empty() && k.len() <= 24));
            assert!(table.entries.len() <= 64);
        }
    }
}
