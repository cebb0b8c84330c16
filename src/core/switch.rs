//! [`SwitchTable`]: the learning switch's MAC table, keyed by (VLAN, MAC).
//!
//! Owns which peer a (VLAN, MAC) was last seen behind, and for how long that holds. It does not
//! decide what to do with a frame (that is `node`) and never sees bytes or sockets.
//!
//! The table is capped in total and per peer, so nobody on the network can grow it without bound:
//! a full table refuses new entries (the caller counts them) and the frames to those MACs are
//! flooded, as for any unknown destination.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Instant;
use crate::wire::{Mac, VlanId};

/// Default cap on the whole table.
pub const DEFAULT_MAX_ENTRIES: usize = 65_536;
/// Default cap on the entries that point at one peer.
pub const DEFAULT_MAX_ENTRIES_PER_PEER: usize = 4_096;

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
    per_peer: HashMap<SocketAddr, usize>,
    timeout: Duration,
    max_entries: usize,
    max_per_peer: usize,
    /// Entries added, moved or removed since the table was made (see [`SwitchTable::changes`]).
    changes: u64,
}

/// A read-only copy of the [`SwitchTable`]'s entries, for lookups on another thread (a
/// `--threads` lane, see [`crate::lane`]). It is a snapshot: it never learns or expires
/// anything itself, but [`MacView::lookup`] still honours each entry's expiry.
#[derive(Clone, Debug, Default)]
pub struct MacView {
    entries: HashMap<Key, Entry>,
}

impl MacView {
    /// The peer behind `mac` on `vlan` in the snapshot, if not expired at `now`.
    // HOT PATH
    pub fn lookup(&self, now: Instant, vlan: VlanId, mac: Mac) -> Option<SocketAddr> {
        self.entries
            .get(&Key::new(vlan, mac))
            .filter(|e| e.expires > now)
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
}

impl SwitchTable {
    /// An empty table whose entries live for `timeout` after they were last seen.
    pub fn new(timeout: Duration, max_entries: usize, max_per_peer: usize) -> SwitchTable {
        SwitchTable {
            entries: HashMap::new(),
            per_peer: HashMap::new(),
            timeout,
            max_entries,
            max_per_peer,
            changes: 0,
        }
    }

    /// How many times an entry was added, moved to another peer or removed: a counter that
    /// only grows, so a snapshot ([`SwitchTable::view`]) taken at one count is current as
    /// long as the count stays the same. Refreshing an entry does not count.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// A copy of every entry, for lookups on another thread. O(n): take it when
    /// [`SwitchTable::changes`] moved, and not more often than needed.
    pub fn view(&self) -> MacView {
        MacView {
            entries: self.entries.clone(),
        }
    }

    /// Records that `mac` on `vlan` sits behind `peer`, as of `now`.
    ///
    /// Group (multicast or broadcast) addresses are never learned; callers filter them.
    // HOT PATH
    pub fn learn(&mut self, now: Instant, vlan: VlanId, mac: Mac, peer: SocketAddr) -> Learned {
        let expires = now + self.timeout;
        if let Some(entry) = self.entries.get_mut(&Key::new(vlan, mac)) {
            if entry.peer == peer {
                entry.expires = expires;
                return Learned::Refreshed;
            }
            let from = entry.peer;
            if count_of(&self.per_peer, peer) >= self.max_per_peer {
                // The new owner is at its cap: keep the old entry rather than exceed it, but
                // do not refresh it either (the MAC was not heard behind the old owner), so
                // it expires unless the old owner still sends from it.
                return Learned::Refused;
            }
            entry.expires = expires;
            entry.peer = peer;
            self.changes += 1;
            decrement(&mut self.per_peer, from);
            *self.per_peer.entry(peer).or_insert(0) += 1;
            return Learned::Moved { from };
        }
        if self.entries.len() >= self.max_entries
            || count_of(&self.per_peer, peer) >= self.max_per_peer
        {
            return Learned::Refused;
        }
        self.entries
            .insert(Key::new(vlan, mac), Entry { peer, expires });
        self.changes += 1;
        *self.per_peer.entry(peer).or_insert(0) += 1;
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
        let before = self.entries.len();
        let per_peer = &mut self.per_peer;
        self.entries.retain(|&key, e| {
            if e.expires > now {
                return true;
            }
            on_expired(key.vlan(), key.mac(), e.peer);
            decrement(per_peer, e.peer);
            false
        });
        let removed = before - self.entries.len();
        self.changes += removed as u64;
        removed
    }

    /// Removes every entry that points at `peer`. Returns how many.
    pub fn forget_peer(&mut self, peer: SocketAddr) -> usize {
        if self.per_peer.remove(&peer).is_none() {
            return 0;
        }
        let before = self.entries.len();
        self.entries.retain(|_, e| e.peer != peer);
        let removed = before - self.entries.len();
        self.changes += removed as u64;
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
        count_of(&self.per_peer, peer)
    }

    /// Every entry as (VLAN, MAC, peer, expiry), in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (VlanId, Mac, SocketAddr, Instant)> + '_ {
        self.entries
            .iter()
            .map(|(&key, e)| (key.vlan(), key.mac(), e.peer, e.expires))
    }
}

fn count_of(map: &HashMap<SocketAddr, usize>, peer: SocketAddr) -> usize {
    map.get(&peer).copied().unwrap_or(0)
}

fn decrement(map: &mut HashMap<SocketAddr, usize>, peer: SocketAddr) {
    if let Some(n) = map.get_mut(&peer) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            map.remove(&peer);
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
        // a move onto a peer at its cap is refused and the old owner kept
        assert_eq!(
            t.learn(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0]), addr(1)),
            Learned::Refused
        );
        assert_eq!(
            t.lookup(T0, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0])),
            Some(addr(2))
        );
        // ... and not refreshed by the refused move: frames from the capped peer do not keep
        // the old owner's entry alive past its own timeout.
        let late = T0 + Duration::from_secs(200);
        assert_eq!(
            t.learn(late, VlanId::UNTAGGED, Mac([2, 0, 0, 0, 2, 0]), addr(1)),
            Learned::Refused
        );
        assert_eq!(
            t.lookup(
                T0 + Duration::from_secs(300),
                VlanId::UNTAGGED,
                Mac([2, 0, 0, 0, 2, 0])
            ),
            None
        );
    }
}
