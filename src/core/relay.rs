//! [`RelayTable`]: which peers relay, and which addresses we reach through one of them.
//!
//! Owns the relay decisions (man page: RELAYING), on the injected clock:
//! - A peer relays only after it said so in a Hello (`capable`); nothing is relayed to or for a
//!   peer that did not.
//! - An address that a relaying peer R lists, and that has not become a direct peer of ours
//!   [`RELAY_AFTER`] after we first saw it listed, is a *candidate* turned *route*: frames for
//!   it go to R in a RelayTo. A RelayedFrom through R makes (or refreshes) a route back at once.
//! - While a route is active its address is tried directly every [`DIRECT_RETRY`].
//! - A route ends when R stops being a relaying peer, when its address becomes a direct peer,
//!   when it was neither listed by R nor used for [`ROUTE_IDLE`], or when a direct path to the
//!   same node shows (its MACs arrive directly): then it is *superseded* for
//!   [`SUPERSEDED_FOR`], and frames relayed from it are dropped as duplicates.
//! - Routes are one hop: a RelayedFrom is delivered, never passed on, so no loop can form.
//!
//! It holds addresses and times only: it never sends, parses or touches the peer or MAC table;
//! the node asks it and acts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::time::Instant;

/// An address listed by a relaying peer and not a direct peer this long after is relayed.
pub const RELAY_AFTER: Duration = Duration::from_secs(10);
/// A route neither listed by its relay nor used this long is dropped.
pub const ROUTE_IDLE: Duration = Duration::from_secs(300);
/// A candidate not listed again this long is forgotten.
pub const CANDIDATE_IDLE: Duration = Duration::from_secs(120);
/// A route replaced by a direct path stays refused this long (relayed copies are dropped).
pub const SUPERSEDED_FOR: Duration = Duration::from_secs(60);
/// A MAC seen directly within this time is taken as proof of a direct path to its node.
pub const DIRECT_FRESH: Duration = Duration::from_secs(5);
/// While a route is active, its address is tried directly (a contact attempt, which also
/// punches holes) this often, so that a direct path takes over once one exists.
pub const DIRECT_RETRY: Duration = Duration::from_secs(30);
/// The most addresses of our own (as peers see us) remembered.
pub const MAX_PUBLIC: usize = 16;
/// The most routes and candidates together.
pub const MAX_ENTRIES: usize = 1024;

/// Whether a route carries frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteState {
    /// Frames to the address go through the relay.
    Active,
    /// A direct path replaced it at the given time; relayed frames from it are dropped.
    Superseded(Instant),
}

/// One address reached through a relay.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    /// The peer that relays.
    pub via: SocketAddr,
    /// When the route was made.
    pub since: Instant,
    /// When it was last listed by `via` or a frame came through it (what we send through it
    /// does not count: that proves nothing about the far end).
    pub last_used: Instant,
    /// Active or superseded.
    pub state: RouteState,
    /// When its address was last tried directly.
    pub tried: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    via: SocketAddr,
    first_listed: Instant,
    last_listed: Instant,
}

/// What [`RelayTable::accept_relayed`] decided about a frame relayed to us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Deliver it; the route existed.
    Known,
    /// Deliver it; a new route was made.
    New,
    /// Drop it: the route was superseded by a direct path.
    Superseded,
    /// Drop it: the table is full.
    Full,
}

/// The relay state of one node. See the module doc.
#[derive(Debug, Default)]
pub struct RelayTable {
    capable: BTreeSet<SocketAddr>,
    accepting: BTreeSet<SocketAddr>,
    /// The node id each peer announced in its Hello.
    ids: BTreeMap<SocketAddr, u64>,
    /// Per-node keys: the members' digest each peer announced in its Hello.
    members: BTreeMap<SocketAddr, u64>,
    /// Our own addresses as peers see them (newest last), at most [`MAX_PUBLIC`].
    public: Vec<SocketAddr>,
    candidates: BTreeMap<SocketAddr, Candidate>,
    routes: BTreeMap<SocketAddr, Route>,
    /// Active routes, counted so that the hot path can skip the table when there are none.
    active: usize,
    /// Moves whenever an active route is made, ends or changes its relay (see
    /// [`RelayTable::changes`]).
    changes: u64,
}

impl RelayTable {
    /// An empty table.
    pub fn new() -> RelayTable {
        RelayTable::default()
    }

    /// `peer` said in a Hello whether it relays for others (`relays`) and whether it takes
    /// part in relaying at all: sends through relays and accepts relayed frames (`accepts`).
    /// Returns the addresses whose routes went through `peer` and ended.
    pub fn set_flags(&mut self, peer: SocketAddr, relays: bool, accepts: bool) -> Vec<SocketAddr> {
        if accepts {
            self.accepting.insert(peer);
        } else {
            self.accepting.remove(&peer);
        }
        if relays && accepts {
            self.capable.insert(peer);
            Vec::new()
        } else {
            self.capable.remove(&peer);
            self.drop_via(peer)
        }
    }

    /// `peer` announced node id `id`; returns another peer that announced the same id (the
    /// same node at an older address), if any.
    pub fn set_id(&mut self, peer: SocketAddr, id: u64) -> Option<SocketAddr> {
        let other = self
            .ids
            .iter()
            .find(|(addr, other)| **other == id && **addr != peer)
            .map(|(addr, _)| *addr);
        self.ids.insert(peer, id);
        other
    }

    /// `peer` announced the digest of the members it trusts (per-node keys), or none.
    pub fn set_members(&mut self, peer: SocketAddr, members: Option<u64>) {
        match members {
            Some(m) => self.members.insert(peer, m),
            None => self.members.remove(&peer),
        };
    }

    /// Whether `a` and `b` announced the same members' digest (both announced one).
    pub fn same_members(&self, a: SocketAddr, b: SocketAddr) -> bool {
        matches!((self.members.get(&a), self.members.get(&b)), (Some(x), Some(y)) if x == y)
    }

    /// A peer sees us at `addr`: remember it as ours (the oldest of [`MAX_PUBLIC`] goes).
    /// Returns whether it was new.
    pub fn add_public(&mut self, addr: SocketAddr) -> bool {
        if self.public.contains(&addr) {
            return false;
        }
        if self.public.len() >= MAX_PUBLIC {
            self.public.remove(0);
        }
        self.public.push(addr);
        true
    }

    /// Whether a peer told us that `addr` is where it sees us.
    pub fn is_public(&self, addr: SocketAddr) -> bool {
        self.public.contains(&addr)
    }

    /// Our own addresses as peers see them, oldest first.
    pub fn public_addrs(&self) -> &[SocketAddr] {
        &self.public
    }

    /// Whether `peer` announced that it relays for others.
    pub fn is_capable(&self, peer: SocketAddr) -> bool {
        self.capable.contains(&peer)
    }

    /// Whether `peer` announced that it sends through relays and accepts relayed frames.
    pub fn accepts(&self, peer: SocketAddr) -> bool {
        self.accepting.contains(&peer)
    }

    /// Number of peers that announced that they relay.
    pub fn capable_len(&self) -> usize {
        self.capable.len()
    }

    /// How many peers' node ids (from their Hellos) the table holds: at most one per peer in
    /// the peer table, since a peer's goes with it ([`RelayTable::forget_peer`]).
    pub fn known_ids(&self) -> usize {
        self.ids.len()
    }

    /// `peer` is gone: forget that it relays, its node id, the routes through it and the
    /// route to it.
    /// Returns the addresses whose routes went through it.
    pub fn forget_peer(&mut self, peer: SocketAddr) -> Vec<SocketAddr> {
        self.capable.remove(&peer);
        self.accepting.remove(&peer);
        self.ids.remove(&peer);
        self.members.remove(&peer);
        self.remove_route(peer);
        self.candidates.remove(&peer);
        self.drop_via(peer)
    }

    /// `addr` became a direct peer: no route or candidate for it any more. Returns the relay
    /// of the route it had, if any.
    pub fn on_direct(&mut self, addr: SocketAddr) -> Option<SocketAddr> {
        self.candidates.remove(&addr);
        self.remove_route(addr).map(|r| r.via)
    }

    /// The relaying peer `via` listed `addr`, which is not a direct peer of ours.
    pub fn on_listed(&mut self, now: Instant, via: SocketAddr, addr: SocketAddr) {
        if !self.capable.contains(&via) || addr == via {
            return;
        }
        if let Some(route) = self.routes.get_mut(&addr) {
            if route.via == via {
                route.last_used = now;
            }
            return;
        }
        if let Some(c) = self.candidates.get_mut(&addr) {
            c.last_listed = now;
            return;
        }
        if self.len() < MAX_ENTRIES {
            self.candidates.insert(
                addr,
                Candidate {
                    via,
                    first_listed: now,
                    last_listed: now,
                },
            );
        }
    }

    /// The relay of the active route to `addr`, if any.
    // HOT PATH
    #[inline]
    pub fn route(&self, addr: SocketAddr) -> Option<SocketAddr> {
        if self.active == 0 {
            return None;
        }
        self.routes
            .get(&addr)
            .filter(|r| r.state == RouteState::Active)
            .map(|r| r.via)
    }

    /// A number that moves whenever the active routes change (one made, superseded or
    /// removed, or its relay changed): what the `--threads` lanes' snapshot of the routes
    /// is checked against.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Whether any route is active (so floods must also go through relays).
    // HOT PATH
    #[inline]
    pub fn has_active(&self) -> bool {
        self.active > 0
    }

    /// Calls `f(addr, via)` for every active route.
    pub fn for_each_active(&self, mut f: impl FnMut(SocketAddr, SocketAddr)) {
        if self.active == 0 {
            return;
        }
        for (addr, r) in &self.routes {
            if r.state == RouteState::Active {
                f(*addr, r.via);
            }
        }
    }

    /// A frame from `from` reached us through the relaying peer `via`: may it be delivered?
    pub fn accept_relayed(&mut self, now: Instant, via: SocketAddr, from: SocketAddr) -> Accept {
        if let Some(r) = self.routes.get_mut(&from) {
            return match r.state {
                RouteState::Superseded(_) => Accept::Superseded,
                RouteState::Active => {
                    r.last_used = now;
                    // The other side picked this relay; follow it if ours differs.
                    if r.via != via {
                        r.via = via;
                        self.changes = self.changes.wrapping_add(1);
                    }
                    Accept::Known
                }
            };
        }
        let had_candidate = self.candidates.remove(&from).is_some();
        if !had_candidate && self.len() >= MAX_ENTRIES {
            return Accept::Full;
        }
        self.insert_active(from, via, now);
        Accept::New
    }

    /// A direct path to the node behind the route to `addr` showed: supersede the route.
    /// Returns its relay if it was active.
    pub fn supersede(&mut self, now: Instant, addr: SocketAddr) -> Option<SocketAddr> {
        let r = self.routes.get_mut(&addr)?;
        if r.state != RouteState::Active {
            return None;
        }
        r.state = RouteState::Superseded(now);
        self.active -= 1;
        self.changes = self.changes.wrapping_add(1);
        Some(r.via)
    }

    /// Time passes: candidates listed for [`RELAY_AFTER`] whose relay still relays become
    /// routes (`on_new(addr, via)` is called for each), unless `not_tried_yet` says the
    /// address has not been asked directly yet (it waits in the contact queue); stale entries
    /// go. `is_direct` tells whether an address is a direct verified peer now.
    pub fn housekeep(
        &mut self,
        now: Instant,
        is_direct: impl Fn(SocketAddr) -> bool,
        not_tried_yet: impl Fn(SocketAddr) -> bool,
        mut on_new: impl FnMut(SocketAddr, SocketAddr),
        mut on_gone: impl FnMut(SocketAddr, SocketAddr),
    ) {
        let capable = &self.capable;
        self.candidates.retain(|addr, c| {
            !is_direct(*addr)
                && capable.contains(&c.via)
                && now.saturating_duration_since(c.last_listed) < CANDIDATE_IDLE
        });
        let due: Vec<(SocketAddr, SocketAddr)> = self
            .candidates
            .iter()
            .filter(|(addr, c)| {
                now.saturating_duration_since(c.first_listed) >= RELAY_AFTER
                    && !not_tried_yet(**addr)
            })
            .map(|(a, c)| (*a, c.via))
            .collect();
        for (addr, via) in due {
            self.candidates.remove(&addr);
            self.insert_active(addr, via, now);
            on_new(addr, via);
        }
        let mut gone = Vec::new();
        for (addr, r) in &self.routes {
            let stale = match r.state {
                RouteState::Active => {
                    is_direct(*addr)
                        || !self.capable.contains(&r.via)
                        || now.saturating_duration_since(r.last_used) >= ROUTE_IDLE
                }
                RouteState::Superseded(at) => now.saturating_duration_since(at) >= SUPERSEDED_FOR,
            };
            if stale {
                gone.push((*addr, r.via));
            }
        }
        for (addr, via) in gone {
            if let Some(r) = self.remove_route(addr) {
                if r.state == RouteState::Active {
                    on_gone(addr, via);
                }
            }
        }
    }

    /// Appends to `out` the addresses of active routes not tried directly for
    /// [`DIRECT_RETRY`], and notes them as tried now.
    pub fn due_direct_tries(&mut self, now: Instant, out: &mut Vec<SocketAddr>) {
        if self.active == 0 {
            return;
        }
        for (addr, r) in &mut self.routes {
            if r.state == RouteState::Active
                && now.saturating_duration_since(r.tried) >= DIRECT_RETRY
            {
                r.tried = now;
                out.push(*addr);
            }
        }
    }

    /// Every route, in address order.
    pub fn routes(&self) -> impl Iterator<Item = (SocketAddr, &Route)> + '_ {
        self.routes.iter().map(|(a, r)| (*a, r))
    }

    /// Routes and candidates together (what [`MAX_ENTRIES`] caps).
    pub fn len(&self) -> usize {
        self.routes.len() + self.candidates.len()
    }

    /// True when there are no routes and no candidates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn insert_active(&mut self, addr: SocketAddr, via: SocketAddr, now: Instant) {
        let old = self.routes.insert(
            addr,
            Route {
                via,
                since: now,
                last_used: now,
                state: RouteState::Active,
                tried: now,
            },
        );
        if old.is_none_or(|r| r.state != RouteState::Active) {
            self.active += 1;
        }
        self.changes = self.changes.wrapping_add(1);
    }

    fn remove_route(&mut self, addr: SocketAddr) -> Option<Route> {
        let r = self.routes.remove(&addr)?;
        if r.state == RouteState::Active {
            self.active -= 1;
            self.changes = self.changes.wrapping_add(1);
        }
        Some(r)
    }

    fn drop_via(&mut self, via: SocketAddr) -> Vec<SocketAddr> {
        self.candidates.retain(|_, c| c.via != via);
        let gone: Vec<SocketAddr> = self
            .routes
            .iter()
            .filter(|(_, r)| r.via == via)
            .map(|(a, _)| *a)
            .collect();
        for addr in &gone {
            self.remove_route(*addr);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    const R: &str = "198.18.0.1:3210";
    const X: &str = "198.18.0.3:40000";

    fn table() -> RelayTable {
        let mut table = RelayTable::new();
        table.set_flags(a(R), true, true);
        table
    }

    fn housekeep(table: &mut RelayTable, now: Instant) -> Vec<(SocketAddr, SocketAddr)> {
        let mut new = Vec::new();
        table.housekeep(
            now,
            |_| false,
            |_| false,
            |x, v| new.push((x, v)),
            |_, _| {},
        );
        new
    }

    #[test]
    fn an_address_not_asked_directly_yet_is_not_relayed() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        let mut new = Vec::new();
        table.housekeep(
            t(30),
            |_| false,
            |x| x == a(X),
            |x, v| new.push((x, v)),
            |_, _| {},
        );
        assert!(new.is_empty(), "still in the contact queue");
        assert_eq!(housekeep(&mut table, t(31)), vec![(a(X), a(R))]);
    }

    #[test]
    fn a_listed_address_is_relayed_only_after_relay_after() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        assert!(housekeep(&mut table, t(9)).is_empty());
        assert_eq!(table.route(a(X)), None);
        assert_eq!(housekeep(&mut table, t(10)), vec![(a(X), a(R))]);
        assert_eq!(table.route(a(X)), Some(a(R)));
        assert!(table.has_active());
    }

    #[test]
    fn nothing_is_learnt_from_a_peer_that_does_not_relay() {
        let mut table = RelayTable::new();
        table.on_listed(t(0), a(R), a(X));
        assert!(housekeep(&mut table, t(60)).is_empty());
        assert!(table.is_empty());
    }

    #[test]
    fn a_direct_peer_is_never_relayed_and_ends_its_route() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        let mut new = 0;
        table.housekeep(t(11), |x| x == a(X), |_| false, |_, _| new += 1, |_, _| {});
        assert_eq!(new, 0);
        table.on_listed(t(12), a(R), a(X));
        housekeep(&mut table, t(30));
        assert_eq!(table.on_direct(a(X)), Some(a(R)));
        assert_eq!(table.route(a(X)), None);
        assert!(!table.has_active());
    }

    #[test]
    fn a_node_id_seen_at_a_second_address_names_the_first() {
        let mut table = table();
        assert_eq!(table.set_id(a(R), 7), None);
        assert_eq!(table.set_id(a(R), 7), None, "the same address again");
        assert_eq!(table.set_id(a(X), 7), Some(a(R)));
        table.forget_peer(a(R));
        assert_eq!(table.set_id(a(X), 7), None);
    }

    #[test]
    fn a_relay_that_leaves_takes_its_routes_with_it() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        housekeep(&mut table, t(10));
        assert_eq!(table.forget_peer(a(R)), vec![a(X)]);
        assert_eq!(table.route(a(X)), None);
        assert!(table.is_empty());
        assert!(!table.is_capable(a(R)));
    }

    #[test]
    fn a_superseded_route_refuses_relayed_frames_then_goes() {
        let mut table = table();
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::New);
        assert_eq!(table.accept_relayed(t(1), a(R), a(X)), Accept::Known);
        assert_eq!(table.supersede(t(2), a(X)), Some(a(R)));
        assert_eq!(table.supersede(t(2), a(X)), None);
        assert_eq!(table.route(a(X)), None);
        assert_eq!(table.accept_relayed(t(3), a(R), a(X)), Accept::Superseded);
        housekeep(&mut table, t(2) + SUPERSEDED_FOR);
        assert!(table.is_empty());
        assert_eq!(table.accept_relayed(t(70), a(R), a(X)), Accept::New);
    }

    #[test]
    fn idle_routes_and_candidates_expire() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        housekeep(&mut table, t(10));
        let mut gone = Vec::new();
        table.housekeep(
            t(10) + ROUTE_IDLE,
            |_| false,
            |_| false,
            |_, _| {},
            |x, v| gone.push((x, v)),
        );
        assert_eq!(gone, vec![(a(X), a(R))]);
        table.on_listed(t(400), a(R), a("198.18.0.9:1"));
        housekeep(&mut table, t(400) + CANDIDATE_IDLE);
        assert!(table.is_empty());
    }

    #[test]
    fn the_table_is_capped() {
        let mut table = table();
        for i in 0..(MAX_ENTRIES as u32 + 100) {
            let addr = SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 1));
            table.on_listed(t(0), a(R), addr);
        }
        assert_eq!(table.len(), MAX_ENTRIES);
        assert_eq!(
            table.accept_relayed(t(0), a(R), a("198.18.9.9:9")),
            Accept::Full
        );
    }
}
