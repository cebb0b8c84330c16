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
//!   same node shows (its MACs arrive directly, or with per-node keys R names a key that a
//!   direct peer holds): then it is *superseded* for [`SUPERSEDED_FOR`], and for as long as
//!   that direct peer stays one, and frames relayed from it are dropped as duplicates.
//! - Routes are one hop: a RelayedFrom is delivered, never passed on, so no loop can form.
//! - Per-node keys, through a relay that names keys (Hello flag 0x40): a route is *checking*
//!   until the relay named the key its far end holds, and carries frames (either way) only if
//!   that key is one we trust; one we do not trust makes it *refused* for [`REFUSED_FOR`] (a
//!   relay that names no key after [`KEY_ASKS`], for [`silent_refusal_wait`], then checking
//!   again: the two ends may have trusted different members only while their trust files
//!   were being changed). The
//!   key is asked again every [`KEY_RECHECK`], and a SIGHUP that revokes it refuses the route.
//!   An active route whose relay leaves [`KEY_RECHECKS_MISSED`] of those queries unanswered
//!   (it no longer names the key: the far end revoked us, stopped relaying, trusts other
//!   members now, or is away for a while) is checking again, and carries nothing until the
//!   relay answers. Having had a trusted key named, it is never refused for want of answers:
//!   after [`KEY_ASKS`] it is asked every [`KEY_RECHECK`] again (at once when a frame from its
//!   far end comes through the relay, which then relays between us again).
//!
//! It holds addresses and times only: it never sends, parses or touches the peer or MAC table;
//! the node asks it and acts.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use crate::limit::Tally;
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
/// A route still checking asks its relay for the far end's key this often.
pub const KEY_ASK_EVERY: Duration = Duration::from_secs(5);
/// An active route asks its relay for the far end's key again this often (the relay may have
/// a new node at that address by now).
pub const KEY_RECHECK: Duration = Duration::from_secs(60);
/// An active route moves to the relay that the far end's frames come through only once its
/// own relay has carried nothing from it for this long: a node that two relays list at two
/// addresses (behind a symmetric NAT), or one sending through both for a moment, does not
/// make it flap between them (with per-node keys each move is a new key check, frames dropped
/// meanwhile). It cuts both ways with a relaying member that lies: it cannot take over a route
/// while the honest relay carries frames, but one it took (the far end quiet for this long)
/// it keeps for as long as it relays a frame "from" there within each such period.
pub const ROUTE_STICKY: Duration = Duration::from_secs(5);
/// A route whose far end showed a key we do not trust stays refused this long.
pub const REFUSED_FOR: Duration = Duration::from_secs(300);
/// A route still checking whose relay did not answer this many queries (every
/// [`KEY_ASK_EVERY`]) is refused: the relay will not name that key.
pub const KEY_ASKS: u8 = 6;
/// An active route whose relay did not answer this many of its queries in a row (every
/// [`KEY_RECHECK`]) is checking again: frames sent through it would be dropped there.
pub const KEY_RECHECKS_MISSED: u8 = 2;
/// The most addresses of our own (as peers see us) remembered.
pub const MAX_PUBLIC: usize = 16;
/// The most routes and candidates together.
pub const MAX_ENTRIES: usize = 1024;
/// The most routes and candidates through any one relay: half the table, so that one
/// relaying peer (listing made-up addresses, or relaying frames from them) cannot take the
/// slots of the others. (Also for a lone relay: one that filled the whole table before a
/// second one came would keep it, refreshing its entries by listing them again.)
pub const MAX_PER_RELAY: usize = MAX_ENTRIES / 2;

/// Whether a route carries frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteState {
    /// Frames to the address go through the relay.
    Active,
    /// A direct path replaced it at the given time; relayed frames from it are dropped.
    Superseded(Instant),
    /// Per-node keys: waiting for the relay to name the key of the node at the address;
    /// nothing is sent or delivered yet.
    Checking,
    /// Per-node keys: the node at the address holds a key we do not trust (since the given
    /// time); nothing is sent or delivered.
    Refused(Instant),
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
    /// When a frame from the far end last came through `via` (or the route was made, or
    /// moved there): see [`ROUTE_STICKY`].
    pub carried: Instant,
    /// Active or superseded.
    pub state: RouteState,
    /// When its address was last tried directly.
    pub tried: Instant,
    /// Per-node keys: the key the relay named for the node at the address, if it did.
    pub key: Option<[u8; 32]>,
    /// The direct peer whose path superseded the route: it stays superseded while that peer
    /// does (else the relay's lists would make it again, and floods would go to the node
    /// twice, directly and through the relay).
    pub superseded_by: Option<SocketAddr>,
    /// When the relay was last asked for that key (`None`: not yet).
    pub asked: Option<Instant>,
    /// Queries sent since the relay last answered.
    pub unanswered: u8,
    /// Times it was refused because the relay named no key (see [`silent_refusal_wait`]).
    pub silent_refusals: u8,
}

/// How long a route refused for the `n`th time (from 1) because its relay named no key
/// stays refused before it is asked again: [`KEY_RECHECK`], doubling each time, at most
/// [`REFUSED_FOR`]. The relay may have answered nothing only while the two ends trusted
/// different members (their trust files changed one after the other); a far end that never
/// takes part (`--no-relay`) costs [`KEY_ASKS`] queries per [`REFUSED_FOR`] in the end.
pub fn silent_refusal_wait(n: u8) -> Duration {
    let doublings = u32::from(n.saturating_sub(1)).min(8);
    (KEY_RECHECK * (1u32 << doublings)).min(REFUSED_FOR)
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
    /// Drop it: the route waits for its relay to name the sender's key (ask it, if
    /// [`RelayTable::ask_due`] says so).
    Checking,
    /// Drop it: the sender holds a key we do not trust.
    Refused,
}

/// What a key named by a relay ([`RelayTable::on_key`]) did to a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyVerdict {
    /// A trusted key: the route, checking until now, carries frames.
    Activated,
    /// A key we do not trust: the route is refused.
    Refused,
    /// Nothing changed: the same verdict as before, or a route that no longer takes keys
    /// (superseded or refused).
    Unchanged,
    /// There is no route to that address through that relay: nothing asked for this key.
    NoRoute,
}

/// The relay state of one node. See the module doc.
#[derive(Debug, Default)]
pub struct RelayTable {
    capable: BTreeSet<SocketAddr>,
    accepting: BTreeSet<SocketAddr>,
    /// The node id each peer announced in its Hello.
    ids: BTreeMap<SocketAddr, u64>,
    /// The same, by id: finding the other address of a node costs a look-up, not a scan of
    /// every peer for each Hello.
    by_id: BTreeSet<(u64, SocketAddr)>,
    /// Per-node keys: the members' digest each peer announced in its Hello.
    members: BTreeMap<SocketAddr, u64>,
    /// Per-node keys: the relaying peers that name the keys of their peers (Hello flag 0x40).
    names_keys: BTreeSet<SocketAddr>,
    /// Relaying peers whose lists name only the peers they heard lately (Hello flag 0x80).
    fresh_lists: BTreeSet<SocketAddr>,
    /// Our own addresses as peers see them (newest last), at most [`MAX_PUBLIC`].
    public: Vec<SocketAddr>,
    candidates: BTreeMap<SocketAddr, Candidate>,
    routes: BTreeMap<SocketAddr, Route>,
    /// Routes and candidates through each relay (what [`MAX_PER_RELAY`] caps); a relay with
    /// none has no entry.
    held: Tally<SocketAddr>,
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
        } else if self.capable.remove(&peer) {
            self.drop_via(peer)
        } else {
            // Never capable: nothing goes through it (routes and candidates are only made
            // through capable peers), and a Hello repeated does not walk the routes again.
            Vec::new()
        }
    }

    /// `peer` announced node id `id`; returns another peer that announced the same id (the
    /// same node at an older address), if any.
    pub fn set_id(&mut self, peer: SocketAddr, id: u64) -> Option<SocketAddr> {
        if let Some(old) = self.ids.insert(peer, id) {
            self.by_id.remove(&(old, peer));
        }
        self.by_id.insert((id, peer));
        // `SocketAddr` orders every IPv4 address before every IPv6 one: this is the least.
        let least = SocketAddr::from(([0, 0, 0, 0], 0));
        self.by_id
            .range((id, least)..)
            .take_while(|(other_id, _)| *other_id == id)
            .map(|(_, addr)| *addr)
            .find(|addr| *addr != peer)
    }

    /// `peer` announced the digest of the members it trusts (per-node keys), or none.
    pub fn set_members(&mut self, peer: SocketAddr, members: Option<u64>) {
        match members {
            Some(m) => self.members.insert(peer, m),
            None => self.members.remove(&peer),
        };
    }

    /// Notes whether `peer` said (Hello flag 0x80) that its lists name only the peers it
    /// heard lately.
    pub fn set_fresh_lists(&mut self, peer: SocketAddr, fresh: bool) {
        if fresh {
            self.fresh_lists.insert(peer);
        } else {
            self.fresh_lists.remove(&peer);
        }
    }

    /// Whether `peer` said that its lists name only the peers it heard lately.
    pub fn lists_fresh(&self, peer: SocketAddr) -> bool {
        self.fresh_lists.contains(&peer)
    }

    /// Per-node keys: whether `peer` said in its Hello that it names the keys of the peers it
    /// relays to. Routes through such a peer are checked ([`RouteState::Checking`]).
    /// A relay that stops naming keys (it restarted as an earlier version) leaves its routes
    /// that were still checking active, as routes through such a relay are.
    pub fn set_names_keys(&mut self, peer: SocketAddr, names: bool) {
        if names {
            self.names_keys.insert(peer);
        } else if self.names_keys.remove(&peer) && self.held.get(&peer) > 0 {
            for r in self.routes.values_mut().filter(|r| r.via == peer) {
                // (Queries to a relay that names no keys are not missed answers.)
                r.unanswered = 0;
                r.asked = None;
                if r.state == RouteState::Checking {
                    r.state = RouteState::Active;
                    self.active += 1;
                    self.changes = self.changes.wrapping_add(1);
                }
            }
        }
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

    /// Takes `addr` off our public addresses (a verified peer is there, so it is not ours).
    pub fn remove_public(&mut self, addr: SocketAddr) {
        self.public.retain(|a| *a != addr);
    }

    /// Whether a relay listed `addr` to us: it has a route (in any state) or is a candidate
    /// for one. Mostly another node's address: a relay leaves out of its lists the address
    /// it sends them to, though not another address it knows the receiver at (the other
    /// family of a dual-stack node, a LAN address behind a hairpinning NAT).
    pub fn is_listed_node(&self, addr: SocketAddr) -> bool {
        self.routes.contains_key(&addr) || self.candidates.contains_key(&addr)
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

    /// The peers that announced that they relay, in address order.
    pub fn capable(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.capable.iter().copied()
    }

    /// The peers that announced that they accept relayed frames, in address order.
    pub fn accepting(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.accepting.iter().copied()
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
        self.remove_route(peer);
        if let Some(c) = self.candidates.remove(&peer) {
            self.held.remove(&c.via);
        }
        self.forget_peer_keeping_route(peer)
    }

    /// [`RelayTable::forget_peer`], but the route to `peer` (or its candidacy) stays: an
    /// unverified entry at an address reached through a relay went, not that node.
    pub fn forget_peer_keeping_route(&mut self, peer: SocketAddr) -> Vec<SocketAddr> {
        self.capable.remove(&peer);
        self.accepting.remove(&peer);
        if let Some(id) = self.ids.remove(&peer) {
            self.by_id.remove(&(id, peer));
        }
        self.members.remove(&peer);
        self.names_keys.remove(&peer);
        self.fresh_lists.remove(&peer);
        self.drop_via(peer)
    }

    /// Whether `addr` has a route (in any state) or is a candidate for one.
    pub fn is_routed(&self, addr: SocketAddr) -> bool {
        self.routes.contains_key(&addr) || self.candidates.contains_key(&addr)
    }

    /// `addr` became a direct peer: no route or candidate for it any more. Returns the relay
    /// of the route it had, if any.
    pub fn on_direct(&mut self, addr: SocketAddr) -> Option<SocketAddr> {
        if let Some(c) = self.candidates.remove(&addr) {
            self.held.remove(&c.via);
        }
        self.remove_route(addr).map(|r| r.via)
    }

    /// The relaying peer `via` listed `addr`, which is not a direct peer of ours. A new
    /// address is a candidate only while the table has room, in all and for `via`.
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
            if c.via != via {
                // Listed through another relay too: the candidate follows the one that
                // listed it last (the first may have lost it), if that one has room.
                if self.held.get(&via) >= MAX_PER_RELAY {
                    return;
                }
                self.held.remove(&c.via);
                self.held.add(via);
                c.via = via;
            }
            c.last_listed = now;
            return;
        }
        if self.len() < MAX_ENTRIES && self.held_by(via) < MAX_PER_RELAY {
            self.held.add(via);
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
    /// A new route needs room in the table, in all and for `via` ([`MAX_PER_RELAY`]); a
    /// route does not move to a `via` at its share. An active one still delivers what comes
    /// through `via` then, unless `via` names keys (it has not named the key of the node it
    /// relays from, which may be another node than ours at that address: dropped, as a
    /// route still checking drops it); either way that does not keep the route alive.
    pub fn accept_relayed(&mut self, now: Instant, via: SocketAddr, from: SocketAddr) -> Accept {
        let names_keys = self.names_keys.contains(&via);
        let via_full = self.held_by(via) >= MAX_PER_RELAY;
        if let Some(r) = self.routes.get_mut(&from) {
            // An active route whose relay carries the far end's frames stays with it
            // ([`ROUTE_STICKY`]), as one does that cannot move to a `via` at its share.
            let sticky = r.state == RouteState::Active
                && now.saturating_duration_since(r.carried) < ROUTE_STICKY;
            if r.via != via && (via_full || sticky) {
                return match r.state {
                    RouteState::Superseded(_) => Accept::Superseded,
                    RouteState::Active if names_keys => Accept::Checking,
                    // The far end sends through `via`, ours goes on through the relay it
                    // has.
                    RouteState::Active => Accept::Known,
                    RouteState::Checking => Accept::Checking,
                    RouteState::Refused(_) => Accept::Refused,
                };
            }
            return match r.state {
                RouteState::Superseded(_) => Accept::Superseded,
                RouteState::Refused(_) if r.via == via || !names_keys => Accept::Refused,
                RouteState::Refused(_) => {
                    // The far end picked another relay: its key is asked of that one.
                    move_via(&mut self.held, r, via);
                    r.state = RouteState::Checking;
                    r.key = None;
                    r.asked = None;
                    r.unanswered = 0;
                    r.last_used = now;
                    Accept::Checking
                }
                RouteState::Checking => {
                    r.last_used = now;
                    r.carried = now;
                    if r.via != via {
                        // Asked of the relay the other side picked, which named no key yet.
                        // (`asked` is kept: `ask_due` asks the new relay once KEY_ASK_EVERY
                        // has passed since the last query, so frames that alternate between
                        // two relays, moving the route each time, draw no query apiece.)
                        move_via(&mut self.held, r, via);
                        r.key = None;
                        r.unanswered = 0;
                        if !names_keys {
                            // (Not naming keys: as without the check.)
                            r.state = RouteState::Active;
                            self.active += 1;
                            self.changes = self.changes.wrapping_add(1);
                            return Accept::Known;
                        }
                    }
                    Accept::Checking
                }
                RouteState::Active => {
                    r.last_used = now;
                    r.carried = now;
                    // The other side picked this relay, and ours has gone quiet: follow it.
                    if r.via != via {
                        move_via(&mut self.held, r, via);
                        self.changes = self.changes.wrapping_add(1);
                        // (A key the old relay named says nothing of the new one's.)
                        r.key = None;
                        if names_keys {
                            // The key is asked of the new relay before anything passes.
                            r.state = RouteState::Checking;
                            r.asked = None;
                            r.unanswered = 0;
                            self.active -= 1;
                            return Accept::Checking;
                        }
                    }
                    Accept::Known
                }
            };
        }
        let candidate_via = self.candidates.get(&from).map(|c| c.via);
        if (candidate_via.is_none() && self.len() >= MAX_ENTRIES)
            || (candidate_via != Some(via) && via_full)
        {
            return Accept::Full;
        }
        if let Some(c) = self.candidates.remove(&from) {
            self.held.remove(&c.via);
        }
        match self.insert(from, via, now) {
            RouteState::Active => Accept::New,
            _ => Accept::Checking,
        }
    }

    /// Per-node keys, for a frame from `addr` that came through `via`: whether
    /// the relay is to be asked for the key of the node there now (never asked, or not for
    /// [`KEY_ASK_EVERY`] while checking, or for [`KEY_RECHECK`] while active); if so, notes
    /// it as asked and returns the relay. A route never confirmed, still checking after
    /// [`KEY_ASKS`] unanswered queries, is refused instead; an active one whose rechecks went
    /// unanswered is checking again (as [`RelayTable::due_key_queries`] says), and the second
    /// value is true (what was learnt behind it is to go).
    pub fn ask_due(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        via: SocketAddr,
    ) -> (Option<SocketAddr>, bool) {
        let Some(r) = self.routes.get_mut(&addr) else {
            return (None, false);
        };
        let relayed = r.via == via;
        let (ask, demoted) = ask_due(&self.names_keys, now, r, relayed);
        if demoted {
            self.active -= 1;
            self.changes = self.changes.wrapping_add(1);
        }
        (ask, demoted)
    }

    /// Appends to `out` every (address, relay) whose key is to be asked now
    /// ([`RelayTable::ask_due`]), and to `unconfirmed` the addresses of active routes that
    /// are checking again ([`KEY_RECHECKS_MISSED`]; what was learnt behind them is to go).
    pub fn due_key_queries(
        &mut self,
        now: Instant,
        out: &mut Vec<(SocketAddr, SocketAddr)>,
        unconfirmed: &mut Vec<SocketAddr>,
    ) {
        if self.names_keys.is_empty() {
            return;
        }
        let names_keys = &self.names_keys;
        let before = unconfirmed.len();
        for (addr, r) in &mut self.routes {
            let (via, demoted) = ask_due(names_keys, now, r, false);
            if let Some(via) = via {
                out.push((*addr, via));
            }
            if demoted {
                unconfirmed.push(*addr);
            }
        }
        let demoted = unconfirmed.len() - before;
        if demoted > 0 {
            self.active -= demoted;
            self.changes = self.changes.wrapping_add(1);
        }
    }

    /// The relaying peer `via` named `key` for its peer at `addr`; `trusted` says whether we
    /// trust it. Only a route to `addr` through `via` that is checking or active takes it.
    pub fn on_key(
        &mut self,
        now: Instant,
        via: SocketAddr,
        addr: SocketAddr,
        key: [u8; 32],
        trusted: bool,
    ) -> KeyVerdict {
        let Some(r) = self.routes.get_mut(&addr).filter(|r| r.via == via) else {
            return KeyVerdict::NoRoute;
        };
        let was_active = match r.state {
            RouteState::Checking => false,
            RouteState::Active => true,
            RouteState::Superseded(_) | RouteState::Refused(_) => return KeyVerdict::Unchanged,
        };
        r.key = Some(key);
        r.unanswered = 0;
        match (trusted, was_active) {
            (true, true) => KeyVerdict::Unchanged,
            (true, false) => {
                r.state = RouteState::Active;
                r.last_used = now;
                self.active += 1;
                self.changes = self.changes.wrapping_add(1);
                KeyVerdict::Activated
            }
            (false, _) => {
                r.state = RouteState::Refused(now);
                if was_active {
                    self.active -= 1;
                    self.changes = self.changes.wrapping_add(1);
                }
                KeyVerdict::Refused
            }
        }
    }

    /// Per-node keys, after SIGHUP changed the trusted keys: active routes whose far end's key
    /// `trusted` no longer accepts are refused (and checking ones whose relay named such a key
    /// before), and refused ones whose key it now accepts are checked again. Returns the
    /// addresses refused.
    pub fn retrust(
        &mut self,
        now: Instant,
        trusted: impl Fn(&[u8; 32]) -> bool,
    ) -> Vec<SocketAddr> {
        let mut refused = Vec::new();
        let (mut activated, mut deactivated) = (0, 0);
        for (addr, r) in &mut self.routes {
            match r.state {
                // (Also one checking again after its relay went quiet: the key the relay
                // named then is no longer one we take.)
                RouteState::Active | RouteState::Checking
                    if r.key.is_some_and(|k| !trusted(&k)) =>
                {
                    deactivated += usize::from(r.state == RouteState::Active);
                    r.state = RouteState::Refused(now);
                    refused.push(*addr);
                }
                // (Also one refused because its relay named no key: the relay may answer
                // now that the members changed.)
                RouteState::Refused(_) if r.key.is_none_or(|k| trusted(&k)) => {
                    activated += usize::from(recheck(&self.names_keys, r));
                }
                _ => {}
            }
        }
        if !refused.is_empty() || activated > 0 {
            self.active = self.active + activated - deactivated;
            self.changes = self.changes.wrapping_add(1);
        }
        refused
    }

    /// A direct path to the node behind the route to `addr` showed, at the direct peer `by`:
    /// supersede the route. Returns its relay if it was active (or still checking). See
    /// [`RelayTable::unsupersede`] for when evidence shows otherwise.
    pub fn supersede(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        by: SocketAddr,
    ) -> Option<SocketAddr> {
        let r = self.routes.get_mut(&addr)?;
        match r.state {
            RouteState::Active => {
                self.active -= 1;
                self.changes = self.changes.wrapping_add(1);
            }
            // Not carrying frames yet: superseded all the same, so that it never starts to.
            RouteState::Checking => {}
            RouteState::Superseded(_) | RouteState::Refused(_) => return None,
        }
        r.state = RouteState::Superseded(now);
        r.superseded_by = Some(by);
        Some(r.via)
    }

    /// A frame relayed from `addr` came from a MAC that is not behind the direct peer that
    /// superseded its route: the node there is another one (the MAC that moved was one that
    /// two nodes share, as a VRRP address, or moved between them; or the relay has another
    /// node at that address now). The superseded route goes, so that the frame (and the next
    /// ones) make a route again. Returns whether it did.
    pub fn unsupersede(&mut self, addr: SocketAddr) -> bool {
        let superseded = self
            .routes
            .get(&addr)
            .is_some_and(|r| matches!(r.state, RouteState::Superseded(_)));
        superseded && self.remove_route(addr).is_some()
    }

    /// The direct peer whose path superseded the route to `addr`, if it is superseded.
    pub fn superseded_by(&self, addr: SocketAddr) -> Option<SocketAddr> {
        self.routes
            .get(&addr)
            .filter(|r| matches!(r.state, RouteState::Superseded(_)))
            .and_then(|r| r.superseded_by)
    }

    /// Time passes: candidates listed for [`RELAY_AFTER`] whose relay still relays become
    /// routes (`on_new(addr, via, state)` is called for each: active, or checking through a
    /// relay that names keys), unless `not_tried_yet` says the
    /// address has not been asked directly yet (it waits in the contact queue); stale entries
    /// go. `is_direct` tells whether an address is a direct verified peer now.
    pub fn housekeep(
        &mut self,
        now: Instant,
        is_direct: impl Fn(SocketAddr) -> bool,
        not_tried_yet: impl Fn(SocketAddr) -> bool,
        mut on_new: impl FnMut(SocketAddr, SocketAddr, RouteState),
        mut on_gone: impl FnMut(SocketAddr, SocketAddr),
    ) {
        let capable = &self.capable;
        let held = &mut self.held;
        self.candidates.retain(|addr, c| {
            let keep = !is_direct(*addr)
                && capable.contains(&c.via)
                && now.saturating_duration_since(c.last_listed) < CANDIDATE_IDLE;
            if !keep {
                held.remove(&c.via);
            }
            keep
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
            if let Some(c) = self.candidates.remove(&addr) {
                self.held.remove(&c.via);
            }
            let state = self.insert(addr, via, now);
            on_new(addr, via, state);
        }
        let mut gone = Vec::new();
        let capable = &self.capable;
        let mut activated = 0;
        for (addr, r) in self.routes.iter_mut() {
            // One refused for want of answers (no key named) is checked again after
            // `silent_refusal_wait`, where it is (while the relay still lists or carries the
            // address): the relay may have answered nothing only while the two ends trusted
            // different members.
            if let RouteState::Refused(at) = r.state {
                if r.key.is_none()
                    && now.saturating_duration_since(at) >= silent_refusal_wait(r.silent_refusals)
                    && now.saturating_duration_since(r.last_used) < ROUTE_IDLE
                {
                    activated += usize::from(recheck(&self.names_keys, r));
                }
            }
            let stale = match r.state {
                RouteState::Active | RouteState::Checking => {
                    is_direct(*addr)
                        || !capable.contains(&r.via)
                        || now.saturating_duration_since(r.last_used) >= ROUTE_IDLE
                }
                // Kept past its time while the direct peer that superseded it stays one and
                // the relay still lists the address (else the listing would make the route
                // again), but not once neither holds.
                RouteState::Superseded(at) => {
                    now.saturating_duration_since(at) >= SUPERSEDED_FOR
                        && (!r.superseded_by.is_some_and(&is_direct)
                            || now.saturating_duration_since(r.last_used) >= ROUTE_IDLE)
                }
                RouteState::Refused(at) => {
                    let refused_for = if r.key.is_some() {
                        REFUSED_FOR
                    } else {
                        silent_refusal_wait(r.silent_refusals)
                    };
                    now.saturating_duration_since(at) >= refused_for
                }
            };
            if stale {
                gone.push((*addr, r.via));
            }
        }
        if activated > 0 {
            self.active += activated;
            self.changes = self.changes.wrapping_add(1);
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

    /// Routes and candidates through the relay `via` (what [`MAX_PER_RELAY`] caps).
    pub fn held_by(&self, via: SocketAddr) -> usize {
        self.held.get(&via)
    }

    /// True when there are no routes and no candidates.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes a route to `addr` through `via`: active, or checking where `via` names keys.
    /// Returns its state.
    fn insert(&mut self, addr: SocketAddr, via: SocketAddr, now: Instant) -> RouteState {
        let state = if self.names_keys.contains(&via) {
            RouteState::Checking
        } else {
            RouteState::Active
        };
        let old = self.routes.insert(
            addr,
            Route {
                via,
                since: now,
                last_used: now,
                carried: now,
                state,
                tried: now,
                key: None,
                asked: None,
                unanswered: 0,
                silent_refusals: 0,
                superseded_by: None,
            },
        );
        if let Some(old) = old {
            self.held.remove(&old.via);
        }
        self.held.add(via);
        let was_active = old.is_some_and(|r| r.state == RouteState::Active);
        match (was_active, state == RouteState::Active) {
            (false, true) => self.active += 1,
            (true, false) => self.active -= 1,
            _ => {}
        }
        self.changes = self.changes.wrapping_add(1);
        state
    }

    fn remove_route(&mut self, addr: SocketAddr) -> Option<Route> {
        let r = self.routes.remove(&addr)?;
        self.held.remove(&r.via);
        if r.state == RouteState::Active {
            self.active -= 1;
            self.changes = self.changes.wrapping_add(1);
        }
        Some(r)
    }

    fn drop_via(&mut self, via: SocketAddr) -> Vec<SocketAddr> {
        // Most peers that go carry nothing: no walk over the tables for them (`held` counts
        // every entry through each relay).
        if self.held.get(&via) == 0 {
            return Vec::new();
        }
        let held = &mut self.held;
        self.candidates.retain(|_, c| {
            if c.via == via {
                held.remove(&via);
            }
            c.via != via
        });
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

/// Refused route `r` is asked about again: checking, or active where its relay names no keys
/// any more (it restarted as an earlier version: nobody would be asked, so as routes through
/// it are). Returns whether it became active.
fn recheck(names_keys: &BTreeSet<SocketAddr>, r: &mut Route) -> bool {
    r.asked = None;
    r.unanswered = 0;
    if names_keys.contains(&r.via) {
        r.state = RouteState::Checking;
        false
    } else {
        r.state = RouteState::Active;
        true
    }
}

/// Route `r` goes through `via` from now on (counted in `held`).
fn move_via(held: &mut Tally<SocketAddr>, r: &mut Route, via: SocketAddr) {
    held.remove(&r.via);
    held.add(via);
    r.via = via;
}

/// [`RelayTable::ask_due`] for one route `r`, `names_keys` being the relays that name keys,
/// `relayed` whether a frame from the far end just came through the relay: the relay to ask,
/// and whether the route was active and is checking again (the caller keeps the count of
/// active routes and moves its change counter).
fn ask_due(
    names_keys: &BTreeSet<SocketAddr>,
    now: Instant,
    r: &mut Route,
    relayed: bool,
) -> (Option<SocketAddr>, bool) {
    if !names_keys.contains(&r.via) {
        return (None, false);
    }
    // A key was named for it once by this relay, and trusted (an untrusted one refuses the
    // route, and so does a SIGHUP that stops trusting it).
    let confirmed = r.key.is_some();
    let every = match r.state {
        RouteState::Checking if confirmed && !relayed && r.unanswered >= KEY_ASKS => KEY_RECHECK,
        RouteState::Checking => KEY_ASK_EVERY,
        RouteState::Active => KEY_RECHECK,
        RouteState::Superseded(_) | RouteState::Refused(_) => return (None, false),
    };
    if r.asked
        .is_some_and(|at| now.saturating_duration_since(at) < every)
    {
        return (None, false);
    }
    let mut demoted = false;
    if r.state == RouteState::Active && r.unanswered >= KEY_RECHECKS_MISSED {
        // The relay no longer names the key (the far end revoked us or stopped relaying, or
        // the two trust other members now: the relay drops what we send through it for that
        // address): checking again, asked at the pace of a new route.
        r.state = RouteState::Checking;
        r.unanswered = 0;
        demoted = true;
    }
    if r.state == RouteState::Checking && r.unanswered >= KEY_ASKS && !confirmed {
        // The relay does not name that key (the node there takes no part in relaying, or
        // the relay does not know it): refused, as a key not trusted is. (One it named
        // before, a trusted one, is asked on: its node may be away for a while.)
        r.state = RouteState::Refused(now);
        r.silent_refusals = r.silent_refusals.saturating_add(1);
        return (None, demoted);
    }
    r.asked = Some(now);
    r.unanswered = r.unanswered.saturating_add(1);
    (Some(r.via), demoted)
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
    /// X's node, reached directly at another address (its NAT's mapping towards us).
    const D: &str = "198.18.0.3:40001";

    fn table() -> RelayTable {
        let mut table = RelayTable::new();
        table.set_flags(a(R), true, true);
        table
    }

    #[test]
    fn at_most_max_public_own_addresses_are_kept_the_oldest_going_first() {
        let mut table = RelayTable::new();
        let seen = |i: u16| SocketAddr::from(([198, 19, 0, 1], 40_000 + i));
        let n = MAX_PUBLIC as u16 + 4;
        for i in 0..n {
            assert!(table.add_public(seen(i)));
        }
        let kept: Vec<SocketAddr> = (4..n).map(seen).collect();
        assert_eq!(table.public_addrs(), &kept[..], "the newest, in order");
        // One already kept is neither added twice nor moved.
        assert!(!table.add_public(seen(5)));
        assert_eq!(table.public_addrs(), &kept[..]);
        assert!(!table.is_public(seen(0)));
    }

    fn housekeep(table: &mut RelayTable, now: Instant) -> Vec<(SocketAddr, SocketAddr)> {
        let mut new = Vec::new();
        table.housekeep(
            now,
            |_| false,
            |_| false,
            |x, v, _| new.push((x, v)),
            |_, _| {},
        );
        check_held(table);
        new
    }

    #[test]
    fn the_other_address_of_a_node_id_is_found_as_a_scan_would_find_it() {
        // A model: random Hellos (address, id) and peers gone, against a scan of the ids.
        let mut table = RelayTable::new();
        let mut model: BTreeMap<SocketAddr, u64> = BTreeMap::new();
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let host = (rng >> 8) as u8 % 24;
            let addr = if host % 3 == 0 {
                SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, u16::from(host)], 3210))
            } else {
                SocketAddr::from(([198, 18, 0, host], 3210))
            };
            let id = (rng >> 20) % 6;
            if rng % 5 == 0 {
                table.forget_peer(addr);
                model.remove(&addr);
                continue;
            }
            let got = table.set_id(addr, id);
            let others: Vec<SocketAddr> = model
                .iter()
                .filter(|(a, i)| **i == id && **a != addr)
                .map(|(a, _)| *a)
                .collect();
            model.insert(addr, id);
            match got {
                Some(other) => assert!(others.contains(&other), "{other} for {addr} id {id}"),
                None => assert!(others.is_empty(), "missed {others:?} for {addr} id {id}"),
            }
            assert_eq!(table.known_ids(), model.len());
            assert_eq!(table.by_id.len(), model.len());
        }
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
            |x, v, _| new.push((x, v)),
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
        // Hello flag 0x02 without 0x04 (the man page's flags table): not a relay either.
        table.set_flags(a(R), true, false);
        assert!(!table.is_capable(a(R)));
        table.on_listed(t(60), a(R), a(X));
        assert!(housekeep(&mut table, t(120)).is_empty());
        assert!(table.is_empty());
    }

    #[test]
    fn a_direct_peer_is_never_relayed_and_ends_its_route() {
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        let mut new = 0;
        table.housekeep(
            t(11),
            |x| x == a(X),
            |_| false,
            |_, _, _| new += 1,
            |_, _| {},
        );
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
        assert_eq!(table.supersede(t(2), a(X), a(D)), Some(a(R)));
        assert_eq!(table.supersede(t(2), a(X), a(D)), None);
        assert_eq!(table.route(a(X)), None);
        assert_eq!(table.accept_relayed(t(3), a(R), a(X)), Accept::Superseded);
        housekeep(&mut table, t(2) + SUPERSEDED_FOR);
        assert!(table.is_empty());
        assert_eq!(table.accept_relayed(t(70), a(R), a(X)), Accept::New);
    }

    #[test]
    fn a_route_superseded_by_a_direct_peer_stays_so_while_that_peer_does() {
        // X is listed by R; X's node is a direct peer at D (a symmetric NAT maps it one way
        // towards R, another towards us), and the route was superseded when its MACs came
        // from D. R goes on listing X: the route must not come back while D is a peer, or
        // every flood would reach X's node twice, directly and through R.
        let mut table = table();
        table.on_listed(t(0), a(R), a(X));
        assert_eq!(housekeep(&mut table, t(10)), vec![(a(X), a(R))]);
        assert_eq!(table.supersede(t(11), a(X), a(D)), Some(a(R)));
        let direct = |addr: SocketAddr| addr == a(D);
        for now in (20..400).step_by(10) {
            table.on_listed(t(now), a(R), a(X));
            table.housekeep(
                t(now),
                direct,
                |_| false,
                |x, _, _| panic!("{x} again"),
                |_, _| {},
            );
            assert_eq!(table.route(a(X)), None, "at {now} s");
        }
        assert_eq!(table.accept_relayed(t(400), a(R), a(X)), Accept::Superseded);
        // D is gone: the superseded route goes after its time, and X may be relayed again.
        housekeep(&mut table, t(401));
        assert!(table.is_empty());
        table.on_listed(t(402), a(R), a(X));
        assert_eq!(housekeep(&mut table, t(412)), vec![(a(X), a(R))]);
        // Superseded again, and R stops listing X (the NAT gave X's node another mapping
        // towards R): the route goes once idle, D or not, and takes no room for ever.
        assert_eq!(table.supersede(t(413), a(X), a(D)), Some(a(R)));
        table.housekeep(
            t(411) + ROUTE_IDLE,
            direct,
            |_| false,
            |_, _, _| {},
            |_, _| {},
        );
        assert!(table.superseded_by(a(X)).is_some());
        table.housekeep(
            t(413) + ROUTE_IDLE,
            direct,
            |_| false,
            |_, _, _| {},
            |_, _| {},
        );
        assert!(table.is_empty(), "{:?}", table.routes().collect::<Vec<_>>());
        // Evidence of another node at X (a frame from a MAC not behind D) ends a
        // supersession at once.
        table.on_listed(t(800), a(R), a(X));
        housekeep(&mut table, t(810));
        assert_eq!(table.supersede(t(811), a(X), a(D)), Some(a(R)));
        assert!(table.unsupersede(a(X)));
        assert!(!table.unsupersede(a(X)));
        assert_eq!(table.accept_relayed(t(812), a(R), a(X)), Accept::New);
        check_held(&table);
    }

    #[test]
    fn a_candidate_follows_the_relay_that_lists_it() {
        // R1 listed X once; R2 lists X from then on. The route goes through R2, not through
        // R1, which may have lost X.
        let mut table = table();
        let r2 = a("198.18.0.2:3210");
        table.set_flags(r2, true, true);
        table.on_listed(t(0), a(R), a(X));
        for now in 1..=10 {
            table.on_listed(t(now), r2, a(X));
        }
        assert_eq!(housekeep(&mut table, t(10)), vec![(a(X), r2)]);
        assert_eq!(table.route(a(X)), Some(r2));
        assert_eq!((table.held_by(a(R)), table.held_by(r2)), (0, 1));
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
            |_, _, _| {},
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
        let relays = [a(R), a("198.18.0.2:3210"), a("198.18.0.4:3210")];
        for r in relays {
            table.set_flags(r, true, true);
        }
        for i in 0..(MAX_ENTRIES as u32 + 100) {
            let addr = SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 1));
            table.on_listed(t(0), relays[i as usize % 3], addr);
        }
        assert_eq!(table.len(), MAX_ENTRIES);
        assert_eq!(
            table.accept_relayed(t(0), a(R), a("198.18.9.9:9")),
            Accept::Full
        );
        check_held(&table);
    }

    /// `held` counts what it should: every route and candidate, by relay.
    fn check_held(table: &RelayTable) {
        let mut counted = Tally::default();
        for r in table.routes.values() {
            counted.add(r.via);
        }
        for c in table.candidates.values() {
            counted.add(c.via);
        }
        assert_eq!(table.held, counted);
        let active = table
            .routes
            .values()
            .filter(|r| r.state == RouteState::Active)
            .count();
        assert_eq!(table.active, active);
    }

    #[test]
    fn one_relay_takes_at_most_half_the_table() {
        let mut table = table();
        let other = a("198.18.0.2:3210");
        table.set_flags(other, true, true);
        let made_up = |i: u32| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 7));
        // R lists made-up addresses, then relays frames from more of them.
        for i in 0..600 {
            table.on_listed(t(0), a(R), made_up(i));
        }
        assert_eq!(table.held_by(a(R)), MAX_PER_RELAY);
        for i in 600..700 {
            assert_eq!(table.accept_relayed(t(1), a(R), made_up(i)), Accept::Full);
        }
        // A candidate of R's becomes a route through R: no new slot is taken.
        assert_eq!(table.accept_relayed(t(1), a(R), made_up(3)), Accept::New);
        assert_eq!(table.held_by(a(R)), MAX_PER_RELAY);
        check_held(&table);
        // The other relay still has its half, for candidates and for routes.
        table.on_listed(t(2), other, X.parse().unwrap());
        assert_eq!(
            table.accept_relayed(t(2), other, a("198.18.0.5:1")),
            Accept::New
        );
        assert_eq!(table.held_by(other), 2);
        // A route of the other relay does not move to R while R is at its share; what the
        // far end sends through R is still delivered.
        assert_eq!(
            table.accept_relayed(t(3), a(R), a("198.18.0.5:1")),
            Accept::Known
        );
        assert_eq!(table.route(a("198.18.0.5:1")), Some(other));
        // Nor does R's route to an address of the other's candidates take a slot of R's.
        assert_eq!(table.accept_relayed(t(3), a(R), a(X)), Accept::Full);
        check_held(&table);
        // Entries that go give their slots back.
        for i in 0..10 {
            table.on_direct(made_up(i));
        }
        assert_eq!(table.held_by(a(R)), MAX_PER_RELAY - 10);
        table.forget_peer(a(R));
        assert_eq!(table.held_by(a(R)), 0);
        check_held(&table);
    }

    /// The sequence the node follows for a frame from another node behind a superseded
    /// route (`Node::on_relayed`): a frame through another relay, one at its share,
    /// finds the route superseded; once the supersession ends, the same frame is refused
    /// for want of room (the node counts `relay_refused`), and the superseded route's slot
    /// under its old relay is given back.
    #[test]
    fn an_unsuperseded_route_through_a_relay_at_its_share_is_refused_for_room() {
        let mut table = table();
        let made_up = |i: u32| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 7));
        let other = a("198.18.0.2:3210");
        table.set_flags(other, true, true);
        for i in 0..MAX_PER_RELAY as u32 {
            table.on_listed(t(0), other, made_up(i));
        }
        assert_eq!(table.held_by(other), MAX_PER_RELAY);
        assert_eq!(table.accept_relayed(t(1), a(R), a(X)), Accept::New);
        assert_eq!(table.supersede(t(2), a(X), a(D)), Some(a(R)));
        assert_eq!(table.accept_relayed(t(3), other, a(X)), Accept::Superseded);
        assert!(table.unsupersede(a(X)));
        assert_eq!(table.held_by(a(R)), 0);
        assert_eq!(table.accept_relayed(t(3), other, a(X)), Accept::Full);
        assert_eq!(table.route(a(X)), None);
        // Through its old relay, which has room, the same frame makes a route again.
        assert_eq!(table.accept_relayed(t(4), a(R), a(X)), Accept::New);
        check_held(&table);
    }

    #[test]
    fn a_relay_at_its_share_does_not_move_a_route_nor_keep_it_alive_nor_pass_an_unnamed_key() {
        let mut table = table();
        let made_up = |i: u32| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 7));
        // A lone relay takes half the table too: a second one that comes later has room.
        for i in 0..(MAX_ENTRIES as u32 + 10) {
            table.on_listed(t(0), a(R), made_up(i));
        }
        assert_eq!(table.held_by(a(R)), MAX_PER_RELAY);
        let other = a("198.18.0.2:3210");
        table.set_flags(other, true, true);
        assert_eq!(table.accept_relayed(t(1), other, a(X)), Accept::New);
        // R, at its share, relays frames "from X": delivered (R does not name keys), but the
        // route stays with the other relay and is not kept alive by them.
        assert_eq!(table.accept_relayed(t(2), a(R), a(X)), Accept::Known);
        assert_eq!(table.route(a(X)), Some(other));
        let late = t(1) + ROUTE_IDLE;
        assert_eq!(table.accept_relayed(late, a(R), a(X)), Accept::Known);
        housekeep(&mut table, late);
        assert_eq!(table.route(a(X)), None, "idle through its own relay: gone");
        // Through a relay that names keys, a frame it relays without having named the key of
        // the node at X is not delivered.
        assert_eq!(table.accept_relayed(late, other, a(X)), Accept::New);
        for i in 0..(MAX_ENTRIES as u32) {
            table.on_listed(late, a(R), made_up(i));
        }
        assert_eq!(table.held_by(a(R)), MAX_PER_RELAY);
        table.set_names_keys(a(R), true);
        assert_eq!(table.accept_relayed(late, a(R), a(X)), Accept::Checking);
        assert_eq!(table.route(a(X)), Some(other));
        check_held(&table);
    }

    #[test]
    fn through_a_relay_that_names_keys_a_route_carries_frames_only_for_a_trusted_key() {
        let mut table = table();
        table.set_names_keys(a(R), true);
        let (key, other) = ([7u8; 32], [8u8; 32]);
        // A route made by the timer starts checking: nothing goes through it yet.
        table.on_listed(t(0), a(R), a(X));
        housekeep(&mut table, t(10));
        assert_eq!(
            table.routes().next().map(|(_, r)| r.state),
            Some(RouteState::Checking)
        );
        assert_eq!(table.route(a(X)), None);
        assert!(!table.has_active());
        // Its key is asked at once, then every KEY_ASK_EVERY while checking.
        let mut asked = Vec::new();
        table.due_key_queries(t(10), &mut asked, &mut Vec::new());
        assert_eq!(asked, vec![(a(X), a(R))]);
        assert_eq!(table.ask_due(t(14), a(X), a(R)).0, None);
        assert_eq!(table.ask_due(t(15), a(X), a(R)).0, Some(a(R)));
        // Frames relayed from it meanwhile are dropped.
        assert_eq!(table.accept_relayed(t(15), a(R), a(X)), Accept::Checking);
        // Another relay's answer is not taken; the relay's, with a trusted key, activates it.
        let changes = table.changes();
        assert_eq!(
            table.on_key(t(16), a(X), a(X), key, true),
            KeyVerdict::NoRoute
        );
        assert_eq!(
            table.on_key(t(16), a(R), a(X), key, true),
            KeyVerdict::Activated
        );
        assert_ne!(table.changes(), changes);
        assert_eq!(table.route(a(X)), Some(a(R)));
        assert_eq!(table.accept_relayed(t(17), a(R), a(X)), Accept::Known);
        // Asked again every KEY_RECHECK; the same answer changes nothing.
        assert_eq!(table.ask_due(t(17), a(X), a(R)).0, None);
        assert_eq!(table.ask_due(t(16) + KEY_RECHECK, a(X), a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(80), a(R), a(X), key, true),
            KeyVerdict::Unchanged
        );
        // SIGHUP revokes the key: refused at once, and for REFUSED_FOR.
        assert_eq!(table.retrust(t(90), |k| *k != key), vec![a(X)]);
        assert_eq!(table.route(a(X)), None);
        assert_eq!(table.accept_relayed(t(91), a(R), a(X)), Accept::Refused);
        assert_eq!(table.ask_due(t(200), a(X), a(R)).0, None);
        housekeep(&mut table, t(89) + REFUSED_FOR);
        assert_eq!(table.len(), 1);
        housekeep(&mut table, t(90) + REFUSED_FOR);
        assert!(table.is_empty());

        // A route made by a relayed frame checks too, and a key we do not trust refuses it.
        assert_eq!(table.accept_relayed(t(400), a(R), a(X)), Accept::Checking);
        assert_eq!(table.ask_due(t(400), a(X), a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(401), a(R), a(X), other, false),
            KeyVerdict::Refused
        );
        assert_eq!(table.accept_relayed(t(402), a(R), a(X)), Accept::Refused);
        assert!(!table.has_active());
    }

    /// An active route whose relay stops answering its rechecks (it no longer names the key)
    /// is checking again after KEY_RECHECKS_MISSED of them, and says so.
    #[test]
    fn an_active_route_whose_rechecks_go_unanswered_is_checking_again() {
        let mut table = table();
        table.set_names_keys(a(R), true);
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::Checking);
        assert_eq!(table.ask_due(t(0), a(X), a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(1), a(R), a(X), [7; 32], true),
            KeyVerdict::Activated
        );
        let at = |n: u32| t(1) + KEY_RECHECK * n;
        let (mut asked, mut unconfirmed) = (Vec::new(), Vec::new());
        for n in 1..=u32::from(KEY_RECHECKS_MISSED) {
            table.due_key_queries(at(n), &mut asked, &mut unconfirmed);
            assert_eq!(table.route(a(X)), Some(a(R)), "recheck {n}");
        }
        assert_eq!(asked.len(), usize::from(KEY_RECHECKS_MISSED));
        assert!(unconfirmed.is_empty());
        // The next recheck finds them all unanswered: checking, and asked at once.
        let changes = table.changes();
        asked.clear();
        table.due_key_queries(
            at(u32::from(KEY_RECHECKS_MISSED) + 1),
            &mut asked,
            &mut unconfirmed,
        );
        assert_eq!(unconfirmed, [a(X)]);
        assert_eq!(asked, [(a(X), a(R))]);
        assert_eq!(table.route(a(X)), None);
        assert!(!table.has_active());
        assert_ne!(table.changes(), changes);
        assert_eq!(table.accept_relayed(at(4), a(R), a(X)), Accept::Checking);
        // Answered again: active again.
        assert_eq!(
            table.on_key(at(4), a(R), a(X), [7; 32], true),
            KeyVerdict::Activated
        );
    }

    /// A route refused because its relay named no key is checked again after
    /// `silent_refusal_wait` where it is, while the relay still carries the address; if the
    /// relay names no keys by then (it restarted as an earlier version), the route is active,
    /// as routes through such a relay are (checking, it would never be asked, and drop what
    /// comes through it for good).
    #[test]
    fn a_route_refused_for_want_of_answers_is_checked_again_or_active_if_its_relay_names_no_keys() {
        let refused = || {
            let mut table = table();
            table.set_names_keys(a(R), true);
            assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::Checking);
            let mut at = t(0);
            for _ in 0..=KEY_ASKS {
                let _ = table.ask_due(at, a(X), a(R));
                at += KEY_ASK_EVERY;
            }
            assert!(matches!(
                table.routes().next().map(|(_, r)| r.state),
                Some(RouteState::Refused(_))
            ));
            (table, at)
        };
        let state = |table: &RelayTable| table.routes().next().map(|(_, r)| r.state);
        // Its relay still names keys: checking again, asked again.
        let (mut table, at) = refused();
        let later = at + silent_refusal_wait(1);
        assert_eq!(table.accept_relayed(later, a(R), a(X)), Accept::Refused);
        housekeep(&mut table, later);
        assert_eq!(state(&table), Some(RouteState::Checking));
        assert_eq!(table.ask_due(later, a(X), a(R)).0, Some(a(R)));
        // Its relay names no keys any more: active.
        let (mut table, at) = refused();
        table.set_names_keys(a(R), false);
        let later = at + silent_refusal_wait(1);
        assert_eq!(table.accept_relayed(later, a(R), a(X)), Accept::Refused);
        housekeep(&mut table, later);
        assert_eq!(state(&table), Some(RouteState::Active));
        assert!(table.has_active());
    }

    /// A route confirmed once, then checking again (its relay went quiet): a SIGHUP that
    /// stops trusting the key its relay named refuses it; asked on, it is asked at the slow
    /// pace once KEY_ASKS went unanswered, fast only for frames through its own relay; moved
    /// to another relay, it is not confirmed there, and is refused as a new route would be.
    #[test]
    fn a_route_checking_again_keeps_the_rules_of_the_key_it_had() {
        let q = a("198.18.0.2:3210");
        let confirmed_then_quiet = || {
            let mut table = table();
            table.set_flags(q, true, true);
            table.set_names_keys(a(R), true);
            table.set_names_keys(q, true);
            assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::Checking);
            assert_eq!(table.ask_due(t(0), a(X), a(R)).0, Some(a(R)));
            table.on_key(t(1), a(R), a(X), [7; 32], true);
            let (mut asked, mut unconfirmed) = (Vec::new(), Vec::new());
            for n in 1..=u32::from(KEY_RECHECKS_MISSED) + 1 {
                table.due_key_queries(t(1) + KEY_RECHECK * n, &mut asked, &mut unconfirmed);
            }
            assert_eq!(unconfirmed, [a(X)]);
            table
        };
        let after = t(1) + KEY_RECHECK * (u32::from(KEY_RECHECKS_MISSED) + 1);
        // SIGHUP: the key is no longer trusted.
        let mut table = confirmed_then_quiet();
        assert_eq!(table.retrust(after, |k| *k != [7; 32]), [a(X)]);
        assert_eq!(
            table.routes().next().map(|(_, r)| r.state),
            Some(RouteState::Refused(after))
        );
        assert_eq!(table.ask_due(after + KEY_RECHECK, a(X), a(R)).0, None);
        assert!(!table.has_active());
        // Asked on: KEY_ASKS at the fast pace, then only every KEY_RECHECK, but at the fast
        // one again for a frame through its own relay (not through another one).
        let mut table = confirmed_then_quiet();
        let (mut asked, mut none) = (Vec::new(), Vec::new());
        for i in 1..=u32::from(KEY_ASKS) {
            table.due_key_queries(after + KEY_ASK_EVERY * i, &mut asked, &mut none);
        }
        assert_eq!(asked.len(), usize::from(KEY_ASKS) - 1);
        let slow = after + KEY_ASK_EVERY * (u32::from(KEY_ASKS) + 1);
        asked.clear();
        table.due_key_queries(slow, &mut asked, &mut none);
        assert!(asked.is_empty(), "asked at the fast pace: {asked:?}");
        assert_eq!(table.ask_due(slow, a(X), q).0, None, "a frame through Q");
        assert_eq!(
            table.ask_due(slow, a(X), a(R)).0,
            Some(a(R)),
            "a frame through R"
        );
        assert!(matches!(
            table.routes().next().map(|(_, r)| r.state),
            Some(RouteState::Checking)
        ));
        // Moved to Q by a frame through it: Q named no key, so it is refused as a new
        // route is when its queries go unanswered.
        let mut table = confirmed_then_quiet();
        assert_eq!(table.accept_relayed(after, q, a(X)), Accept::Checking);
        let mut refused = false;
        for i in 0..=u32::from(KEY_ASKS) + 1 {
            table.ask_due(after + KEY_ASK_EVERY * (i + 1), a(X), q);
            refused |= matches!(
                table.routes().next().map(|(_, r)| r.state),
                Some(RouteState::Refused(_))
            );
        }
        assert!(refused, "a key R named kept the route at Q");
    }

    #[test]
    fn an_active_route_that_moves_to_a_relay_naming_keys_is_checked_again() {
        let mut table = table();
        let q = a("198.18.0.2:3210");
        table.set_flags(q, true, true);
        table.set_names_keys(q, true);
        // Through R (which names no keys, an earlier version): active at once.
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::New);
        assert_eq!(table.route(a(X)), Some(a(R)));
        // A frame of X's through Q, which names keys, while R still carries X's: dropped
        // (Q has not named the key there), and the route stays with R.
        assert_eq!(table.accept_relayed(t(1), q, a(X)), Accept::Checking);
        assert_eq!(table.route(a(X)), Some(a(R)));
        assert_eq!(table.ask_due(t(1), a(X), a(R)).0, None);
        // The far end picked Q, and R has carried nothing for ROUTE_STICKY: the route moves,
        // and is checked before anything passes.
        let moved = t(0) + ROUTE_STICKY;
        assert_eq!(table.accept_relayed(moved, q, a(X)), Accept::Checking);
        assert_eq!(table.route(a(X)), None);
        assert_eq!(table.ask_due(moved, a(X), a(R)).0, Some(q));
        assert_eq!(
            table.on_key(moved, q, a(X), [1; 32], true),
            KeyVerdict::Activated
        );
        assert_eq!(table.route(a(X)), Some(q));
        // A relay that stops naming keys leaves its routes as they are.
        table.set_names_keys(q, false);
        assert_eq!(table.ask_due(t(100), a(X), a(R)).0, None);
        assert_eq!(table.route(a(X)), Some(q));
    }

    /// A node two relays carry (listed at one address by both, or sending through both for a
    /// moment): the route stays with the relay that carries its frames, whatever comes through
    /// the other, and follows the other only once its own has gone quiet.
    #[test]
    fn an_active_route_stays_with_the_relay_that_carries_it() {
        let mut table = table();
        let o = a("198.18.0.2:3210");
        table.set_flags(o, true, true);
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::New);
        for s in 1..20 {
            // Copies through both, every second: delivered, the route stays with R.
            assert_eq!(table.accept_relayed(t(s), o, a(X)), Accept::Known);
            assert_eq!(table.accept_relayed(t(s), a(R), a(X)), Accept::Known);
            assert_eq!(table.route(a(X)), Some(a(R)), "at {s} s");
        }
        let changes = table.changes();
        // R goes quiet: O's frames move the route once ROUTE_STICKY has passed.
        assert_eq!(table.accept_relayed(t(21), o, a(X)), Accept::Known);
        assert_eq!(table.route(a(X)), Some(a(R)));
        assert_eq!(
            table.accept_relayed(t(19) + ROUTE_STICKY, o, a(X)),
            Accept::Known
        );
        assert_eq!(table.route(a(X)), Some(o));
        assert!(table.changes() > changes);
        check_held(&table);
    }

    #[test]
    fn a_checking_route_is_superseded_refused_when_unanswered_and_rechecked_when_trusted() {
        let mut table = table();
        table.set_names_keys(a(R), true);
        let key = [9u8; 32];
        // Superseded while still checking: it never starts to carry frames.
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::Checking);
        assert_eq!(table.supersede(t(0), a(X), a(D)), Some(a(R)));
        assert_eq!(
            table.on_key(t(1), a(R), a(X), key, true),
            KeyVerdict::Unchanged
        );
        assert_eq!(table.route(a(X)), None);
        assert_eq!(table.accept_relayed(t(1), a(R), a(X)), Accept::Superseded);
        housekeep(&mut table, t(0) + SUPERSEDED_FOR);
        assert!(table.is_empty());

        // A relay that never answers: refused after KEY_ASKS queries.
        assert_eq!(table.accept_relayed(t(100), a(R), a(X)), Accept::Checking);
        let mut sent = 0;
        for i in 0..20 {
            if table
                .ask_due(t(100) + KEY_ASK_EVERY * i, a(X), a(R))
                .0
                .is_some()
            {
                sent += 1;
            }
        }
        assert_eq!(sent, usize::from(KEY_ASKS));
        assert!(matches!(
            table.routes().next().map(|(_, r)| r.state),
            Some(RouteState::Refused(_))
        ));
        assert_eq!(table.accept_relayed(t(300), a(R), a(X)), Accept::Refused);

        // Refused for a key not trusted, then SIGHUP trusts it: checked again.
        let y = a("198.18.0.7:1");
        assert_eq!(table.accept_relayed(t(300), a(R), y), Accept::Checking);
        assert_eq!(table.ask_due(t(300), y, a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(300), a(R), y, key, false),
            KeyVerdict::Refused
        );
        assert!(table.retrust(t(301), |k| *k == key).is_empty());
        assert_eq!(table.accept_relayed(t(302), a(R), y), Accept::Checking);
        assert_eq!(table.ask_due(t(302), y, a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(303), a(R), y, key, true),
            KeyVerdict::Activated
        );
        assert_eq!(table.route(y), Some(a(R)));

        // Refused, then R restarts as an earlier version (it names no keys), then SIGHUP
        // trusts the key: nobody would answer a query, so the route is used as before
        // rather than left checking for ever.
        let z = a("198.18.0.8:1");
        assert_eq!(table.accept_relayed(t(310), a(R), z), Accept::Checking);
        assert_eq!(table.ask_due(t(310), z, a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(311), a(R), z, [5; 32], false),
            KeyVerdict::Refused
        );
        table.set_names_keys(a(R), false);
        assert!(table.retrust(t(312), |_| true).is_empty());
        assert_eq!(table.route(z), Some(a(R)));
        assert_eq!(table.accept_relayed(t(313), a(R), z), Accept::Known);
        check_held(&table);
    }

    #[test]
    fn routes_through_a_relay_that_stops_naming_keys_are_used_as_before() {
        let mut table = table();
        table.set_names_keys(a(R), true);
        assert_eq!(table.accept_relayed(t(0), a(R), a(X)), Accept::Checking);
        assert!(!table.has_active());
        // R restarts as an earlier version: its Hello has no 0x40.
        table.set_names_keys(a(R), false);
        assert_eq!(table.route(a(X)), Some(a(R)));
        assert_eq!(table.accept_relayed(t(1), a(R), a(X)), Accept::Known);
        // A refused route whose far end picks another relay is checked through that one.
        let q = a("198.18.0.2:3210");
        table.set_flags(q, true, true);
        table.set_names_keys(q, true);
        table.set_names_keys(a(R), true);
        let y = a("198.18.0.7:1");
        assert_eq!(table.accept_relayed(t(2), a(R), y), Accept::Checking);
        assert_eq!(table.ask_due(t(2), y, a(R)).0, Some(a(R)));
        assert_eq!(
            table.on_key(t(3), a(R), y, [1; 32], false),
            KeyVerdict::Refused
        );
        assert_eq!(table.accept_relayed(t(4), q, y), Accept::Checking);
        assert_eq!(table.ask_due(t(4), y, q).0, Some(q));
    }
}
