//! The kernel path (`--kernel-path`): frames between this node and its direct peers, in the
//! clear protocol, carried by two small BPF programs inside the kernel instead of through the
//! daemon. The bytes on the wire are the seed's frame packets, the same as the daemon sends;
//! what changes is that a frame crosses no system call and no copy into the daemon.
//!
//! - `encap`, on the tap's egress (a TCX link): an untagged IPv4 or IPv6 frame to a unicast
//!   MAC that the MAC map places behind a peer of the peer map gets the outer IPv4 and UDP
//!   headers, the token and switch byte 0, and leaves through the interface that peer's
//!   datagrams arrive on (`bpf_redirect_neigh`: the kernel routes it and fills in the
//!   Ethernet addresses). A TCP super-frame stays one packet, marked as UDP-tunnelled, and is
//!   cut into datagrams wherever it has to be, as the kernel's own VXLAN does.
//! - `decap`, on the ingress of every Ethernet interface (TCX links): a frame packet from a
//!   peer of the peer map, with the token, whose untagged IPv4 or IPv6 frame comes from a MAC
//!   the MAC map places behind that same peer, loses its outer headers and goes into the tap
//!   as if the daemon had written it. For every datagram from such a peer it also notes the
//!   interface it came in on and the address it was sent to, which `encap` uses.
//!
//! Everything else (broadcasts, multicasts and unknown destinations, which the daemon floods;
//! VLAN-tagged frames; ARP; frames from a MAC the daemon has not learnt behind that peer;
//! peer lists and every other message; IPv6 underlays) takes the daemon's path, unchanged.
//! The daemon stays the switch: it decides which peers and MACs the maps hold, from the
//! node's [`ForwardView`], within 20 ms of a change.
//!
//! So that the daemon keeps seeing each flow (MAC entries and peers expire when nothing is
//! heard), a MAC entry carries a refresh time: once it has passed, `decap` hands the next frame
//! from that MAC to the daemon and moves the refresh time on by [`refresh_every`]. A flow is
//! thus seen by the daemon about once per [`refresh_every`].
//!
//! This module owns the maps, the programs' links and the daemon's copy of what the maps
//! hold; the BPF system call is in [`crate::sys::bpf`] and the programs in `prog`. It must not
//! decide switching: that is the node's.

mod prog;

use std::collections::{BTreeMap, HashMap as StdHashMap};
use std::ffi::CStr;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::time::Duration;

use log::{debug, info, warn};

use crate::io::{Device, Socket};
use crate::lane::ForwardView;
use crate::node::Node;
use crate::sys::bpf::{self, HashMap, Hook};
use crate::sys::netdev;
use crate::time::Instant;
use crate::wire::{Mac, Token, VlanId};

/// Bytes the outer headers add between the frame's Ethernet header and its payload: IPv4
/// (20), UDP (8), token and switch byte (8), and the frame's own Ethernet header (14, where
/// the outer one was).
const HDR_ROOM: i32 = 50;
/// `bpf_skb_adjust_room` flags for the encapsulation: gso_size kept, outer IPv4 and UDP, an
/// Ethernet frame inside (14 bytes of inner MAC header).
const FLAGS_ENCAP: u64 = 1 | 1 << 1 | 1 << 4 | 1 << 6 | 14 << 56;

/// A peer map key: IPv4 address and port in network order, two zero bytes.
type PeerKey = [u8; 8];
/// A MAC map key: the MAC, then the VLAN (0: untagged, the only one the programs take).
type MacKey = [u8; 8];
/// Bytes of a MAC map value: the peer's key, then the refresh time (ns of
/// `CLOCK_MONOTONIC`, native order).
const MAC_VALUE: usize = 16;
/// Bytes of a peer map value: the interface index and our address as the peer sends to it
/// (written by `decap`), then sent packets and bytes, received packets and bytes (native
/// 64-bit counters, added to by the programs), and 8 spare bytes.
const PEER_VALUE: usize = 48;

/// The shortest time between two syncs after a change (as the `--threads` lanes' views).
const SYNC_MIN_GAP: Duration = Duration::from_millis(20);
/// The longest time between two syncs, refresh times and counter reads.
const SYNC_EVERY: Duration = Duration::from_secs(1);

/// How often a flow's frames go through the daemon once: a quarter of the MAC timeout, at
/// most 10 s, at least 1 s.
pub fn refresh_every(mac_timeout: Duration) -> Duration {
    (mac_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

fn peer_key(addr: SocketAddrV4) -> PeerKey {
    let [a, b, c, d] = addr.ip().octets();
    let [p, q] = addr.port().to_be_bytes();
    [a, b, c, d, p, q, 0, 0]
}

fn mac_key(mac: Mac) -> MacKey {
    let [a, b, c, d, e, f] = mac.0;
    [a, b, c, d, e, f, 0, 0]
}

/// What the maps should hold for a view: its verified IPv4 peers, and its live untagged MAC
/// entries behind them.
fn wanted(
    view: &ForwardView,
    now: Instant,
) -> (BTreeMap<PeerKey, SocketAddr>, BTreeMap<MacKey, PeerKey>) {
    let peers: BTreeMap<PeerKey, SocketAddr> = view
        .peers()
        .iter()
        .filter_map(|&addr| match addr {
            SocketAddr::V4(v4) => Some((peer_key(v4), addr)),
            SocketAddr::V6(_) => None,
        })
        .collect();
    let macs = view
        .mac_view()
        .iter()
        .filter(|&(vlan, _, _, expires)| vlan == VlanId::UNTAGGED && expires > now)
        .filter_map(|(_, mac, peer, _)| match peer {
            SocketAddr::V4(v4) if peers.contains_key(&peer_key(v4)) => {
                Some((mac_key(mac), peer_key(v4)))
            }
            _ => None,
        })
        .collect();
    (peers, macs)
}

/// The counters of a peer map value last read: sent and received (packets, bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Read {
    sent: (u64, u64),
    received: (u64, u64),
}

fn read_counters(value: &[u8; PEER_VALUE]) -> Read {
    let at = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&value[i..i + 8]);
        u64::from_ne_bytes(w)
    };
    Read {
        sent: (at(8), at(16)),
        received: (at(24), at(32)),
    }
}

/// Totals of what the kernel path moved, for `show`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Packets (a super-frame counted once) and bytes of frames sent to peers.
    pub sent: (u64, u64),
    /// Packets and bytes of frames received from peers and put into the tap.
    pub received: (u64, u64),
    /// Map updates the kernel refused (the map full, memory): those frames take the daemon's
    /// path.
    pub map_errors: u64,
}

/// The kernel path of one daemon: its maps, programs and links, and what the maps hold.
#[derive(Debug)]
pub struct KernelPath {
    macs: HashMap,
    peers: HashMap,
    /// The links keep the programs attached; dropping them detaches.
    _links: Vec<OwnedFd>,
    /// Peers in the map, with their addresses and counters as last read.
    in_peers: BTreeMap<PeerKey, (SocketAddr, Read)>,
    /// MAC entries in the map, with their peers.
    in_macs: StdHashMap<MacKey, PeerKey>,
    /// The node's forward generation at the last sync, and when that was.
    synced: Option<u64>,
    synced_at: Instant,
    refresh: Duration,
    totals: Totals,
}

/// The interfaces `decap` goes on: every Ethernet interface of this network namespace but
/// `tap`, as (name, index).
fn underlay_interfaces(tap: &str) -> Vec<(String, u32)> {
    let names = match netdev::interface_names() {
        Ok(names) => names,
        Err(e) => {
            warn!("kernel path: cannot list the interfaces ({e}): receiving on none");
            return Vec::new();
        }
    };
    names
        .into_iter()
        .filter(|name| name != tap && netdev::is_ethernet(name).unwrap_or(false))
        .filter_map(|name| netdev::ifindex(&name).ok().map(|i| (name, i)))
        .collect()
}

impl KernelPath {
    /// Creates the maps (room for `max_peers` peers and `max_macs` MAC entries), loads both
    /// programs and attaches them: `encap` to the tap `tap`, `decap` to every Ethernet
    /// interface there is now.
    ///
    /// # Errors
    ///
    /// One line saying what the kernel refused (no BPF or TCX, Linux before 6.6, missing
    /// privileges, the verifier).
    pub fn start(
        tap: &str,
        port: u16,
        token: Token,
        max_peers: usize,
        max_macs: usize,
        mac_timeout: Duration,
    ) -> Result<KernelPath, String> {
        let tap_index = netdev::ifindex(tap).map_err(|e| format!("no index for {tap}: {e}"))?;
        let cap = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let macs = HashMap::create(8, MAC_VALUE as u32, cap(max_macs))
            .map_err(|e| format!("cannot create the MAC map: {e}"))?;
        let peers = HashMap::create(8, PEER_VALUE as u32, cap(max_peers))
            .map_err(|e| format!("cannot create the peer map: {e}"))?;
        let token = token.to_bytes();
        let encap = prog::encap(macs.raw_fd(), peers.raw_fd(), port, token);
        let refresh = refresh_every(mac_timeout);
        let refresh_ns = u64::try_from(refresh.as_nanos()).unwrap_or(u64::MAX);
        let decap = prog::decap(
            macs.raw_fd(),
            peers.raw_fd(),
            port,
            token,
            tap_index,
            refresh_ns,
        );
        let load = |insns: &[u64], hook, name: &CStr| {
            bpf::load_classifier(insns, hook, name)
                .map_err(|e| format!("the kernel refused the {name:?} program: {e}"))
        };
        let encap = load(&encap, Hook::Egress, c"ethcloud_encap")?;
        let decap = load(&decap, Hook::Ingress, c"ethcloud_decap")?;
        let mut links = vec![bpf::attach_tcx(&encap, tap_index, Hook::Egress)
            .map_err(|e| format!("cannot attach to {tap}'s egress (TCX, Linux 6.6): {e}"))?];
        let mut on = Vec::new();
        for (name, index) in underlay_interfaces(tap) {
            match bpf::attach_tcx(&decap, index, Hook::Ingress) {
                Ok(link) => {
                    links.push(link);
                    on.push(name);
                }
                Err(e) => debug!("kernel path: not on {name}: {e}"),
            }
        }
        info!(
            "kernel path: frames to and from direct IPv4 peers go through the kernel; \
             receiving on {}",
            if on.is_empty() {
                "no interface (sending only)".to_owned()
            } else {
                on.join(", ")
            }
        );
        Ok(KernelPath {
            macs,
            peers,
            _links: links,
            in_peers: BTreeMap::new(),
            in_macs: StdHashMap::new(),
            synced: None,
            synced_at: Instant::ZERO,
            refresh,
            totals: Totals::default(),
        })
    }

    /// What the kernel path moved so far.
    pub fn totals(&self) -> Totals {
        self.totals
    }

    /// When [`KernelPath::tend`] must run next.
    pub fn due<S: Socket, D: Device>(&self, node: &Node<S, D>) -> Instant {
        if self.synced != Some(node.forward_generation()) {
            self.synced_at + SYNC_MIN_GAP
        } else {
            self.synced_at + SYNC_EVERY
        }
    }

    /// After a pass of the loop: when the node's view changed (at most every 20 ms) or a
    /// second passed, brings the maps in line with it and adds what the programs counted to
    /// the peers' traffic.
    pub fn tend<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        if now < self.due(node) {
            return;
        }
        let view = node.forward_view();
        self.synced = Some(view.generation);
        self.synced_at = now;
        let clock = bpf::monotonic_nanos();
        let refresh_at = clock.saturating_add(u64::try_from(self.refresh.as_nanos()).unwrap_or(0));
        let (peers, macs) = wanted(&view, now);
        // Peers first in, last out: a MAC entry never names a peer the map lacks for long.
        for (key, &addr) in &peers {
            if !self.in_peers.contains_key(key) {
                match self.peers.update(key, &[0u8; PEER_VALUE], bpf::NOEXIST) {
                    Ok(()) => {
                        self.in_peers.insert(*key, (addr, Read::default()));
                    }
                    Err(e) => self.map_error("peer", &e),
                }
            }
        }
        let gone: Vec<MacKey> = self
            .in_macs
            .keys()
            .filter(|k| !macs.contains_key(*k))
            .copied()
            .collect();
        for key in gone {
            match self.macs.delete(&key) {
                Ok(()) => {
                    self.in_macs.remove(&key);
                }
                Err(e) => self.map_error("MAC", &e),
            }
        }
        for (key, peer) in &macs {
            // (A refresh time, once written, is moved on by `decap` itself.)
            let write = self.in_macs.get(key) != Some(peer);
            if write && self.in_peers.contains_key(peer) {
                let mut value = [0u8; MAC_VALUE];
                value[..8].copy_from_slice(peer);
                value[8..].copy_from_slice(&refresh_at.to_ne_bytes());
                match self.macs.update(key, &value, bpf::ANY) {
                    Ok(()) => {
                        self.in_macs.insert(*key, *peer);
                    }
                    Err(e) => self.map_error("MAC", &e),
                }
            }
        }
        self.collect(node);
        let gone: Vec<PeerKey> = self
            .in_peers
            .keys()
            .filter(|k| !peers.contains_key(*k))
            .copied()
            .collect();
        for key in gone {
            match self.peers.delete(&key) {
                Ok(()) => {
                    self.in_peers.remove(&key);
                }
                Err(e) => self.map_error("peer", &e),
            }
        }
    }

    /// Reads each peer's counters and adds what moved since the last read (also done by
    /// [`KernelPath::tend`] once a second).
    pub fn collect<S: Socket, D: Device>(&mut self, node: &mut Node<S, D>) {
        let mut value = [0u8; PEER_VALUE];
        for (key, (addr, last)) in &mut self.in_peers {
            match self.peers.lookup(key, &mut value) {
                Ok(true) => {
                    let now = read_counters(&value);
                    let sent = (
                        now.sent.0.wrapping_sub(last.sent.0),
                        now.sent.1.wrapping_sub(last.sent.1),
                    );
                    let received = (
                        now.received.0.wrapping_sub(last.received.0),
                        now.received.1.wrapping_sub(last.received.1),
                    );
                    *last = now;
                    if sent != (0, 0) || received != (0, 0) {
                        node.count_kernel_path(*addr, sent, received);
                        let t = &mut self.totals;
                        t.sent = (t.sent.0.wrapping_add(sent.0), t.sent.1.wrapping_add(sent.1));
                        t.received = (
                            t.received.0.wrapping_add(received.0),
                            t.received.1.wrapping_add(received.1),
                        );
                    }
                }
                Ok(false) => {}
                Err(e) => debug!("kernel path: cannot read a peer's counters: {e}"),
            }
        }
    }

    fn map_error(&mut self, map: &str, e: &std::io::Error) {
        if self.totals.map_errors == 0 {
            warn!("kernel path: the {map} map refused an update ({e}); such frames take the daemon's path");
        }
        self.totals.map_errors = self.totals.map_errors.wrapping_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_address_and_port_in_network_order() {
        let addr: SocketAddrV4 = "198.18.0.1:3210".parse().unwrap();
        assert_eq!(peer_key(addr), [198, 18, 0, 1, 0x0c, 0x8a, 0, 0]);
        assert_eq!(mac_key(Mac([2, 0, 0, 0, 0, 9])), [2, 0, 0, 0, 0, 9, 0, 0]);
    }

    #[test]
    fn the_refresh_is_a_quarter_of_the_mac_timeout_within_1_to_10_s() {
        assert_eq!(
            refresh_every(Duration::from_secs(300)),
            Duration::from_secs(10)
        );
        assert_eq!(
            refresh_every(Duration::from_secs(20)),
            Duration::from_secs(5)
        );
        assert_eq!(
            refresh_every(Duration::from_secs(2)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn counters_are_read_at_their_offsets() {
        let mut v = [0u8; PEER_VALUE];
        for (i, n) in [(8, 1u64), (16, 2), (24, 3), (32, 4)] {
            v[i..i + 8].copy_from_slice(&n.to_ne_bytes());
        }
        let r = read_counters(&v);
        assert_eq!((r.sent, r.received), ((1, 2), (3, 4)));
    }
}
