//! [`PeerTable`] (who we talk to) and [`Contacts`] (whom we are trying to reach), plus the
//! rules for which addresses are worth contacting at all.
//!
//! Owns the bookkeeping: when a peer was last heard from, round-robin cursors for gossip, and
//! back-off for addresses that have not answered yet. It never sends anything and never parses
//! bytes; `node` asks it what to do and does it.
//!
//! Lookups are by address (`BTreeMap`), and the gossip rounds walk the verified peers in the
//! order they were verified and removed in (a `Vec`): the same inputs always give the same
//! decisions, which the simulator depends on, as long as callers that remove several peers at
//! once do so in an order the inputs fix (`node`: address order, or the order of the
//! sessions' map, whose hasher is seeded from the node's configuration).
//!
//! The parts, one responsibility each:
//!
//! ```text
//! table.rs     PeerTable: the peers, their verification, expiry and the gossip cursors
//! contacts.rs  Contacts: the addresses being contacted, with back-off
//! pacing.rs    Trickle and Sweep: when gossip rounds and keepalives are due
//! tests.rs     the unit tests of the whole module
//! ```
//!
//! This file holds the limits and back-off constants and the rules for which addresses are
//! worth contacting; everything public is re-exported here, so the rest of the crate names it
//! `peers::PeerTable`, `peers::Contacts`, ...

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

mod contacts;
mod pacing;
mod table;
#[cfg(test)]
mod tests;

pub use contacts::{Contact, Contacts};
pub use pacing::{Sweep, Trickle};
pub use table::{Peer, PeerTable, Touch, Traffic};

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
/// Longest retry delay for an address learned from a peer list.
pub const LEARNED_BACKOFF_MAX: Duration = Duration::from_secs(16);
/// How often an address learned from a peer list is tried before it is given up: at 0, 2, 6,
/// 14, 30 and 46 s. The requests are also how two nodes behind NATs meet (each one's requests
/// open its own NAT to the other), so they span 46 s with no gap over 16 s: a NAT that keeps
/// a one-way mapping for 30 s (Linux's conntrack) lets the other node's requests in for over a
/// minute after this node learned of it, however late the other learns of this one within
/// that time.
pub const LEARNED_ATTEMPTS: u32 = 6;
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

/// True if `addr` is a loopback address and `seen_from` is not: named by (or to) a node on
/// another host, where that address is its own host's (another instance here is reached at
/// it only from this host). Such an address is neither contacted, nor relayed from, nor named
/// in a peer list to such a node.
pub fn foreign_loopback(addr: SocketAddr, seen_from: SocketAddr) -> bool {
    addr.ip().is_loopback() && !seen_from.ip().is_loopback()
}

/// True for addresses nobody can be reached at: unspecified, multicast, broadcast, port 0,
/// IPv6 link-local without its interface ([`unscoped_link_local`]), and IPv4-compatible
/// IPv6 (`::a.b.c.d`, deprecated by RFC 4291, section 2.5.5.1: no host has one, and the
/// loopback check would not see `::127.0.0.1` for what it is).
pub fn is_unusable(addr: SocketAddr) -> bool {
    if addr.port() == 0 || unscoped_link_local(addr) || ipv4_compatible(addr.ip()) {
        return true;
    }
    addr.ip().is_unspecified() || is_group(addr.ip())
}

/// True for an IPv4-compatible IPv6 address: `::/96` but for `::` and `::1`.
fn ipv4_compatible(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[..6] == [0; 6] && !v6.is_unspecified() && !v6.is_loopback())
}

/// True for a multicast or broadcast address: a group, no one node.
pub fn is_group(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_multicast() || ip.is_broadcast(),
        IpAddr::V6(ip) => ip.is_multicast(),
    }
}

/// True for an IPv6 link-local address (`fe80::/10`), with its interface or without.
pub fn link_local(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(a) if a.ip().is_unicast_link_local())
}

/// True for an IPv6 link-local address (`fe80::/10`) without its interface (scope 0), as
/// every such entry of a peer list is (the format has no room for the interface): nobody can
/// send to it, so it is not worth contacting.
pub fn unscoped_link_local(addr: SocketAddr) -> bool {
    matches!(addr, SocketAddr::V6(a) if a.scope_id() == 0) && link_local(addr)
}

/// ⌈√n⌉ without floating point; 0 for 0.
pub fn ceil_sqrt(n: usize) -> usize {
    let mut r = 0usize;
    while r.saturating_mul(r) < n {
        r += 1;
    }
    r
}
