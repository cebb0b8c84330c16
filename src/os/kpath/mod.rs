//! The kernel path (on by default where the host has no firewall; `--kernel-path` forces it,
//! `--no-kernel-path` turns it off): frames between this node and its direct peers, in the
//! clear protocol, carried by two small BPF programs inside the kernel instead of through the
//! daemon. The bytes on the wire are the seed's frame packets, the same as the daemon sends;
//! what changes is that a frame crosses no system call and no copy into the daemon.
//!
//! - `encap`, on the tap's egress (a TCX link): an untagged IPv4 or IPv6 frame to a unicast
//!   MAC that the MAC map places behind a peer of the peer map that has a kernel path gets the
//!   outer IPv4 and UDP headers, the token and switch byte 0, and leaves through the
//!   interface the kernel routes that peer's address through, from the address it would pick
//!   (`bpf_redirect_neigh`: the kernel fills in the Ethernet addresses). The daemon asks the
//!   kernel for that route (`RTM_GETROUTE`) when the peer comes in, soon after a change
//!   rtnetlink announces to the interfaces, addresses, routes, rules or forwarding (see
//!   `Rechecks`), and every 30 s; a peer
//!   whose route is not a unicast one, or whose MTU is below the tap's plus the 50 bytes of
//!   headers, stays with the daemon. A TCP or UDP super-frame from the tap stays one packet,
//!   marked as UDP-tunnelled, and is cut into datagrams wherever it has to be, as the
//!   kernel's own VXLAN's are.
//! - `decap`, on the ingress of every Ethernet interface (TCX links; one that appears later
//!   gets it at the next of those checks, see [`netdev::ChangeWatch`]): a frame
//!   packet for one of this host's addresses, with a UDP checksum of 0 (what a kernel path
//!   sends; anything checksummed goes through the kernel's UDP input), from a peer of the
//!   peer map, on the interface the route to it leaves through, with the token, whose
//!   untagged IPv4 or IPv6 unicast frame comes from a MAC the MAC map places behind that
//!   same peer, loses its outer headers and goes into the tap as if the daemon had written
//!   it. A control message without a checksum from such a peer marks it as one whose kernel
//!   path takes frames.
//!
//! Peers find each other so: with the kernel path on (and not stepped aside), the daemon sends its control messages to
//! IPv4 peers without checksums (through a raw socket, `sys::udp::RawControl`; its frames
//! keep their checksums and UDP GSO), and the daemon asks each peer it starts to serve for its peer list (twice,
//! 2 s apart); the request and the answer mark both ends. A peer without a kernel path (whose
//! control messages carry checksums) is never marked, and never sent frames the kernel left with
//! partial checksums (which a veth delivers as they are). A node whose tap forwards (a
//! bridge port, a bond member, forwarding on) after `--ifup`, or starts to while it runs,
//! takes no super-frames (they keep the marks of a tunnelled packet, which a NIC could cut
//! wrongly if the host sent them on) and keeps the checksums of its control messages, so
//! nobody marks it (one that starts to sends each peer a Close: see `KernelPath::follow_tap`);
//! nor does a node whose `decap` is on no interface, until it goes on one (see
//! `KernelPath::tend`).
//!
//! Everything else (broadcasts, multicasts and unknown destinations, which the daemon floods;
//! VLAN-tagged frames; ARP; frames from a MAC the daemon has not learnt behind that peer;
//! every other message; IPv6 underlays) takes the daemon's path, unchanged: a program that
//! does not take a packet hands it on (`TCX_NEXT`) to the programs and filters after it.
//! The daemon stays the switch: it decides which peers and MACs the maps hold, from the
//! node's [`ForwardView`], within 20 ms of a change. The socket keeps its UDP GRO: Linux never
//! merges UDP datagrams with a checksum of 0 (`udp_gro_receive_segment` requires one, "for
//! symmetry with GSO"), so the datagrams `decap` takes reach it one by one whatever the
//! socket or the interface (`rx-gro-list`) asks.
//!
//! So that the daemon keeps its MAC entries while their frames go through the kernel, `decap`
//! notes in each MAC entry when it last took a frame from it (at most once a second), and the
//! daemon reads those times every [`refresh_every`] and refreshes its own entries.
//!
//! The programs run before netfilter. By default the daemon starts the kernel path only on a
//! host without a firewall ([`crate::sys::firewall`]), asks again once a second, and steps
//! aside while one is there: empty maps, control messages with checksums, no heartbeats,
//! and one Close to each peer (which it keeps as a peer), so that peers stop taking it for
//! a node whose kernel path takes frames; it comes back on after five clean checks. With `--kernel-path` it follows the firewall
//! through the daemon instead (`follow`): a heartbeat (an empty peer list) every 5 s to each verified IPv4 peer,
//! through a raw socket the OUTPUT chain sees; a peer whose heartbeat is refused, or that is
//! known to run a kernel path and has not been heard through the socket for 20 s, is held
//! back out of the maps until that ends.
//!
//! This module owns the maps, the programs' links and the daemon's copy of what the maps
//! hold; the BPF system call is in [`crate::sys::bpf`], the programs in `prog` and the
//! firewall's holds in `follow`. It must not
//! decide switching: that is the node's.

mod follow;
mod prog;

use std::collections::{BTreeMap, BTreeSet, HashMap as StdHashMap};
use std::ffi::CStr;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::OwnedFd;
use std::time::Duration;

use log::{debug, info, warn};

use crate::io::{Device, Socket};
use crate::lane::ForwardView;
use crate::node::Node;
use crate::sys::bpf::{self, HashMap, Hook};
use crate::sys::udp::RawControl;
use crate::sys::{firewall, ifaddrs, netdev};
use crate::time::Instant;
use crate::wire::{self, Mac, Token, VlanId};

/// Checks in a row (one a second) that must find no firewall before the kernel path comes
/// back on after stepping aside.
const CLEAN_CHECKS: u32 = 5;

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
/// Bytes of a MAC map value: the peer's key, then when `decap` last took a frame from the
/// MAC (ns of `CLOCK_MONOTONIC`, native order; 0 never).
const MAC_VALUE: usize = 16;
/// Bytes of a peer map value: the index of the interface frames to the peer leave through
/// and the address they leave from (network order), written by the daemon; then sent
/// packets and bytes, received packets and bytes (native 64-bit counters, added to by the
/// programs), and a word `decap` sets once the peer sent a datagram without a UDP checksum,
/// as a kernel path's daemon does (only then does `encap` send to it).
const PEER_VALUE: usize = 48;
/// Most interfaces `decap` is attached to (one fd each); the first by index are taken.
const MAX_INTERFACES: usize = 64;
/// Most local addresses `decap` knows (frames to addresses past them take the daemon's path).
const MAX_LOCALS: usize = 256;

/// The shortest time between two syncs after a change (as the `--threads` lanes' views).
const SYNC_MIN_GAP: Duration = Duration::from_millis(20);
/// The longest time between two syncs and counter reads.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// How often the routes to the peers, the interfaces and the host's addresses are asked
/// again, when nothing says they changed.
const RECHECK_EVERY: Duration = Duration::from_secs(30);
/// The shortest time between two such checks when changes are announced (see
/// [`netdev::ChangeWatch`]).
const RECHECK_GAP: Duration = Duration::from_secs(2);
/// How many checks announced changes may bring forward in any [`RECHECK_EVERY`]: past them, a
/// change waits until the oldest of them is that long ago, so that a host whose links or
/// routes never stop changing is asked about every peer's route a few times in 30 s, not
/// every 2 s.
const EARLY_CHECKS: usize = 4;

/// When the routes, the interfaces, the host's addresses and whether the tap forwards are
/// asked again: every
/// [`RECHECK_EVERY`], and sooner after a change the kernel announces (at once, or at the
/// end of [`RECHECK_GAP`] after the last check, within [`EARLY_CHECKS`]).
#[derive(Clone, Copy, Debug)]
struct Rechecks {
    /// When the next check is due.
    at: Instant,
    /// When the last one was.
    last: Instant,
    /// When the last [`EARLY_CHECKS`] checks that changes brought forward were, oldest
    /// first (`None`: fewer so far).
    early: [Option<Instant>; EARLY_CHECKS],
    /// Whether a change brought the next check forward.
    brought: bool,
}

impl Rechecks {
    /// A schedule whose first check is due at once.
    fn new() -> Rechecks {
        Rechecks {
            at: Instant::ZERO,
            last: Instant::ZERO,
            early: [None; EARLY_CHECKS],
            brought: false,
        }
    }

    /// A change was announced at `now`: the next check comes as soon as the gap after the
    /// last check and the budget of early checks allow.
    fn changed(&mut self, now: Instant) {
        let budget = match self.early[0] {
            Some(oldest) => oldest + RECHECK_EVERY,
            None => Instant::ZERO,
        };
        let soon = now.max(self.last + RECHECK_GAP).max(budget);
        // (A check the 30-s timer brings within the second anyway is not brought forward,
        // and so uses none of the budget.)
        if soon + SYNC_EVERY < self.at {
            self.at = soon;
            self.brought = true;
        }
    }

    /// Whether a check is due at `now`; if so, it counts as done.
    fn due(&mut self, now: Instant) -> bool {
        if now < self.at {
            return false;
        }
        if self.brought {
            self.early.rotate_left(1);
            self.early[EARLY_CHECKS - 1] = Some(now);
        }
        self.brought = false;
        self.last = now;
        self.at = now + RECHECK_EVERY;
        true
    }
}
/// When a peer put in the map is asked a second time for its peer list.
const HELLO_AGAIN: Duration = Duration::from_secs(2);

/// How often the daemon reads when the kernel path last took a frame from each MAC, and
/// refreshes its own entries: a quarter of the MAC timeout, at most 10 s, at least 1 s.
pub fn refresh_every(mac_timeout: Duration) -> Duration {
    (mac_timeout / 4).clamp(Duration::from_secs(1), Duration::from_secs(10))
}

fn peer_key(addr: SocketAddrV4) -> PeerKey {
    let [a, b, c, d] = addr.ip().octets();
    let [p, q] = addr.port().to_be_bytes();
    [a, b, c, d, p, q, 0, 0]
}

/// The address a peer map key names (the inverse of [`peer_key`]).
fn key_addr(key: &PeerKey) -> SocketAddrV4 {
    let [a, b, c, d, p, q, ..] = *key;
    SocketAddrV4::new(Ipv4Addr::new(a, b, c, d), u16::from_be_bytes([p, q]))
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
) -> (BTreeMap<PeerKey, SocketAddrV4>, BTreeMap<MacKey, PeerKey>) {
    let peers: BTreeMap<PeerKey, SocketAddrV4> = view
        .peers()
        .iter()
        .filter_map(|&addr| match addr {
            SocketAddr::V4(v4) => Some((peer_key(v4), v4)),
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

/// While the kernel path stands aside, or the node takes no frames (its tap started
/// forwarding), the peers (of the view's `peers`) to send a Close to now, noted in `closed`. Peers whose kernel paths took this node for one that takes frames
/// would go on sending it frames only a kernel path can take (partial checksums, whole
/// super-frames over a veth): a Close makes them drop it and verify it again, and its
/// control messages now carry checksums, so they do not mark it again. Each peer gets one,
/// also one verified meanwhile (it may have marked it before); none when
/// this node never took frames (`marked` false: it never marked itself; a node that took
/// them once may have been marked by a peer it no longer knows, and a peer verified again
/// may still hold the mark).
fn aside_closes(
    closed: &mut BTreeSet<PeerKey>,
    peers: &BTreeMap<PeerKey, SocketAddrV4>,
    marked: bool,
) -> Vec<SocketAddrV4> {
    if !marked {
        return Vec::new();
    }
    closed.retain(|k| peers.contains_key(k));
    peers
        .iter()
        .filter(|(key, _)| closed.insert(**key))
        .map(|(_, addr)| *addr)
        .collect()
}

/// Where frames to a peer leave (the first 8 bytes of its peer map value): the interface
/// index, native order, and the source address, network order.
fn egress_bytes(oif: u32, local: Ipv4Addr) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&oif.to_ne_bytes());
    out[4..].copy_from_slice(&local.octets());
    out
}

/// Where the kernel path sends frames to `peer` from, if it may: the route's interface and
/// source address (the `--listen` address if it names one), when the route is a unicast
/// one whose MTU takes a tap frame with its 50 bytes of headers.
fn egress(peer: Ipv4Addr, listen: SocketAddr, min_mtu: u32) -> Result<[u8; 8], String> {
    let route = netdev::route_to(peer)
        .map_err(|e| format!("no route: {e}"))?
        .ok_or("not a unicast route")?;
    let mtu = match route.mtu {
        Some(mtu) => mtu,
        None => netdev::mtu_of_index(route.oif).map_err(|e| format!("no MTU: {e}"))?,
    };
    if mtu < min_mtu {
        return Err(format!("route MTU {mtu} < {min_mtu}"));
    }
    let local = match listen_v4(listen) {
        Some(ip) => ip,
        None => route.prefsrc.ok_or("no source address on the route")?,
    };
    Ok(egress_bytes(route.oif, local))
}

/// The IPv4 address `--listen` names, if it names one (also as `[::ffff:a.b.c.d]`).
fn listen_v4(listen: SocketAddr) -> Option<Ipv4Addr> {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) => ip,
        std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped()?,
    };
    (!ip.is_unspecified()).then_some(ip)
}

/// The counters of a peer map value last read: sent and received (packets, bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Read {
    sent: (u64, u64),
    received: (u64, u64),
    /// `decap` marked the peer as one whose kernel path takes frames.
    marked: bool,
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
        marked: at(40) != 0,
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

/// A peer in the peer map.
#[derive(Debug)]
struct InPeer {
    addr: SocketAddrV4,
    /// Where its frames leave, as written (see [`egress_bytes`]).
    egress: [u8; 8],
    /// Its counters as last read.
    read: Read,
    /// When the node added it (see [`Node::peer_added`]).
    added: Instant,
}

/// A MAC entry in the MAC map.
#[derive(Clone, Copy, Debug)]
struct InMac {
    peer: PeerKey,
    /// The last-seen time last read from the map (0: none yet).
    seen: u64,
}

/// The kernel path of one daemon: its maps, programs and links, and what the maps hold.
#[derive(Debug)]
pub struct KernelPath {
    macs: HashMap,
    peers: HashMap,
    locals: HashMap,
    /// `encap`'s link to the tap: it keeps the program attached; dropping it detaches.
    _encap_link: OwnedFd,
    /// The `decap` program that takes super-frames whole, while the tap does not forward
    /// (see [`KernelPath::may_take_frames`]).
    decap_whole: OwnedFd,
    /// The `decap` program that takes single frames only, while the tap forwards.
    decap_single: OwnedFd,
    /// Whether a failure to ask whether the tap forwards was logged at info (told once).
    tap_check_told: bool,
    /// `decap`'s links, by the index of the interface each is on (with its name).
    decap_on: BTreeMap<u32, (String, OwnedFd)>,
    /// Interfaces `decap` is not on and will not be tried on again while they are there: the
    /// tap, those that are not Ethernet, those the kernel refused.
    passed_over: BTreeSet<u32>,
    /// The tap's index.
    tap_index: u32,
    /// Whether 64 interfaces were taken and another found (told once).
    too_many_told: bool,
    /// Whether the host had more local IPv4 addresses than the map takes (told once).
    too_many_locals_told: bool,
    /// Tells when interfaces, addresses, routes, rules or forwarding changed (`None` if it
    /// could not be opened: then only the 30-s checks see them).
    changes: Option<netdev::ChangeWatch>,
    /// The `--listen` address (its IP, if it names one, is where frames leave from).
    listen: SocketAddr,
    /// The smallest route MTU a peer may have: the tap's MTU and 50 bytes of headers.
    min_mtu: u32,
    /// Peers in the map.
    in_peers: BTreeMap<PeerKey, InPeer>,
    /// Peers the kernel path cannot take now (see [`egress`]), until their next check.
    not_eligible: BTreeSet<PeerKey>,
    /// MAC entries in the map, with their peers.
    in_macs: StdHashMap<MacKey, InMac>,
    /// Local addresses in the map.
    in_locals: Vec<Ipv4Addr>,
    /// The node's forward generation at the last sync, and when that was.
    synced: Option<u64>,
    synced_at: Instant,
    /// When the counters were last read and the firewall followed (once a second, however
    /// often the maps are synced).
    collected_at: Instant,
    /// When the routes, the interfaces, the local addresses and the tap's forwarding are
    /// asked again.
    rechecks: Rechecks,
    /// When the MACs' last-seen times are read next.
    seen_read_at: Instant,
    refresh: Duration,
    /// Whether peers' kernel paths may send here (see [`KernelPath::takes_frames`]).
    takes_frames: bool,
    /// Whether it ever did since start-up: then peers may have marked it (see
    /// `aside_closes`).
    took_frames: bool,
    /// Whether they may once `decap` is on an interface: the tap does not forward what it
    /// gets (see [`KernelPath::takes_frames`]), as last asked (see `follow_tap`). A node
    /// that started with `decap` on no interface takes frames from the first one `decap`
    /// goes on.
    may_take_frames: bool,
    /// Peers just put in the map, and when to ask them a second time for their peer list.
    hello_again: BTreeMap<PeerKey, Instant>,
    totals: Totals,
    /// The peers known to run a kernel path, and those held back (see [`follow`]).
    follow: follow::Follow,
    /// The raw socket the heartbeats go out through.
    raw: RawControl,
    /// An empty peer list: the heartbeat.
    heartbeat: [u8; wire::HEADER_LEN + 2],
    /// A heartbeat failure other than the firewall's was logged at info.
    heartbeat_error_told: bool,
    /// Whether the kernel path steps aside while this network namespace has a firewall (on by
    /// default, not with `--kernel-path`).
    watch_firewall: bool,
    /// Whether it stands aside (for a firewall, or because it could not tell).
    aside: bool,
    /// While aside or taking no frames, the peers sent a Close (each gets one, however late
    /// it was verified; emptied when the node takes frames, not aside, again).
    closed: BTreeSet<PeerKey>,
    /// While aside, how many checks in a row found no firewall (it comes back on at
    /// [`CLEAN_CHECKS`]).
    clean_checks: u32,
    /// While aside, the peers it would take (for `show`).
    aside_peers: Vec<SocketAddrV4>,
}

/// What becomes of `decap`'s link on the interface with index `index` (named `known` so far),
/// from what the kernel says the link is attached to (`attached`), the name the list of
/// interfaces gives that index (`listed`), and, if the list lacks it, what asking by index
/// says (`asked`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum LinkFate {
    /// Still on that interface, under its name.
    Keep,
    /// Still on that interface, which has this name now.
    Renamed(String),
    /// Its interface is gone (the kernel detached the link, and the index may name another
    /// interface by now) or went to another network namespace (where the program has no
    /// business, and perhaps under another index): the link is closed.
    Gone,
}

/// Decides a [`LinkFate`] (see there). A list taken while interfaces come and go can miss
/// one, so an interface the list lacks is asked for by index before its link goes; and
/// when the kernel cannot be asked about the link, it is kept.
fn link_fate(
    index: u32,
    known: &str,
    attached: std::io::Result<u32>,
    listed: Option<&str>,
    asked: impl FnOnce() -> std::io::Result<Option<String>>,
) -> LinkFate {
    match attached {
        Ok(0) => return LinkFate::Gone,
        Ok(on) if on != index => return LinkFate::Gone,
        Ok(_) => {}
        Err(e) => {
            debug!("kernel path: cannot ask about the link on interface {index}: {e}");
            return LinkFate::Keep;
        }
    }
    let name = match listed {
        Some(name) => Some(name.to_owned()),
        None => match asked() {
            Ok(name) => name,
            Err(e) => {
                debug!("kernel path: cannot ask for interface {index}: {e}");
                return LinkFate::Keep;
            }
        },
    };
    match name {
        Some(name) if name == known => LinkFate::Keep,
        Some(name) => LinkFate::Renamed(name),
        None => LinkFate::Gone,
    }
}

impl KernelPath {
    /// Creates the maps (room for `max_peers` peers and `max_macs` MAC entries), loads both
    /// programs and attaches them: `encap` to the tap `tap` (MTU `tap_mtu`), `decap` to the
    /// Ethernet interfaces there are now (at most 64; and, from [`KernelPath::tend`], to
    /// those that come later). Frames go out from `listen`'s
    /// port (and its address, if it names one). With `watch_firewall` it checks once a
    /// second whether this network namespace has a firewall ([`crate::sys::firewall`]) and
    /// steps aside while it has one: its maps empty, every frame goes through the daemon.
    ///
    /// # Errors
    ///
    /// One line saying what the kernel refused (no BPF or TCX, Linux before 6.6, missing
    /// privileges, the verifier).
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        tap: &str,
        tap_mtu: u32,
        listen: SocketAddr,
        token: Token,
        max_peers: usize,
        max_macs: usize,
        mac_timeout: Duration,
        watch_firewall: bool,
    ) -> Result<KernelPath, String> {
        let tap_index = netdev::ifindex(tap).map_err(|e| format!("no index for {tap}: {e}"))?;
        let cap = |n: usize| u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        let macs = HashMap::create(8, MAC_VALUE as u32, cap(max_macs))
            .map_err(|e| format!("cannot create the MAC map: {e}"))?;
        let peers = HashMap::create(8, PEER_VALUE as u32, cap(max_peers))
            .map_err(|e| format!("cannot create the peer map: {e}"))?;
        let locals = HashMap::create(4, 1, cap(MAX_LOCALS))
            .map_err(|e| format!("cannot create the address map: {e}"))?;
        let mut heartbeat = [0u8; wire::HEADER_LEN + 2];
        wire::emit_peers(token, std::iter::empty(), &mut heartbeat)
            .map_err(|e| format!("cannot write the heartbeat: {e}"))?;
        let raw = RawControl::for_socket(listen)
            .map_err(|e| format!("cannot open a raw socket for the heartbeats: {e}"))?;
        let token = token.to_bytes();
        let port = listen.port();
        let refresh = refresh_every(mac_timeout);
        // A super-frame taken whole keeps the marks of a tunnelled packet, which only a
        // packet for this host may (one the tap forwards on to a NIC could be cut wrongly
        // there): such a node takes single frames only, and says to no peer that it has a
        // kernel path (see `takes_frames`).
        let take_super = match netdev::forwards(tap) {
            Ok(forwards) => !forwards,
            Err(e) => {
                debug!("kernel path: cannot tell whether {tap} forwards ({e}): taking it does");
                false
            }
        };
        let encap = prog::encap(macs.raw_fd(), peers.raw_fd(), port, token);
        // Both forms of `decap` are loaded now, while the daemon may: the tap may start or
        // stop forwarding while it runs (see `follow_tap`).
        let decap = |take_super| {
            prog::decap(
                macs.raw_fd(),
                peers.raw_fd(),
                locals.raw_fd(),
                port,
                token,
                tap_index,
                take_super,
            )
        };
        let (decap_whole, decap_single) = (decap(true), decap(false));
        let load = |insns: &[u64], hook, name: &CStr| {
            bpf::load_classifier(insns, hook, name)
                .map_err(|e| format!("the kernel refused the {name:?} program: {e}"))
        };
        let encap = load(&encap, Hook::Egress, c"ethcloud_encap")?;
        let decap_whole = load(&decap_whole, Hook::Ingress, c"ethcloud_decap")?;
        let decap_single = load(&decap_single, Hook::Ingress, c"ethcloud_decap")?;
        let encap_link = bpf::attach_tcx(&encap, tap_index, Hook::Egress)
            .map_err(|e| format!("cannot attach to {tap}'s egress (TCX, Linux 6.6): {e}"))?;
        // (Before the interfaces are listed: one that comes meanwhile is not missed.)
        let changes = netdev::ChangeWatch::open()
            .map_err(|e| {
                info!(
                    "kernel path: cannot watch the interfaces and routes ({e}): \
                     asking every 30 s only"
                );
            })
            .ok();
        let mut path = KernelPath {
            macs,
            peers,
            locals,
            _encap_link: encap_link,
            decap_whole,
            decap_single,
            tap_check_told: false,
            decap_on: BTreeMap::new(),
            passed_over: BTreeSet::new(),
            tap_index,
            too_many_told: false,
            too_many_locals_told: false,
            changes,
            listen,
            min_mtu: tap_mtu.saturating_add(HDR_ROOM as u32),
            in_peers: BTreeMap::new(),
            not_eligible: BTreeSet::new(),
            in_macs: StdHashMap::new(),
            in_locals: Vec::new(),
            synced: None,
            synced_at: Instant::ZERO,
            collected_at: Instant::ZERO,
            rechecks: Rechecks::new(),
            seen_read_at: Instant::ZERO,
            refresh,
            takes_frames: false,
            took_frames: false,
            may_take_frames: take_super,
            hello_again: BTreeMap::new(),
            totals: Totals::default(),
            follow: follow::Follow::default(),
            raw,
            heartbeat,
            heartbeat_error_told: false,
            watch_firewall,
            aside: false,
            closed: BTreeSet::new(),
            clean_checks: 0,
            aside_peers: Vec::new(),
        };
        let on = path.sync_interfaces();
        info!(
            "kernel path: frames to and from direct IPv4 peers go through the kernel; \
             receiving on {}",
            if on.is_empty() {
                "no interface (sending only)".to_owned()
            } else {
                on.join(", ")
            }
        );
        path.takes_frames = take_super && !on.is_empty();
        path.took_frames = path.takes_frames;
        path.sync_locals();
        Ok(path)
    }

    /// Puts `decap` on the Ethernet interfaces of this network namespace it is not on yet
    /// (but the tap; at most [`MAX_INTERFACES`] at a time, taken by index) and lets go of the
    /// links of interfaces that are gone. Returns the names of those it went on. (On a
    /// bridge port or a bond member it takes nothing: the route to a peer leaves through the
    /// bridge or the bond, and `decap` takes a datagram only from the interface the route to
    /// its sender leaves through.)
    fn sync_interfaces(&mut self) -> Vec<String> {
        let all = match netdev::interfaces() {
            Ok(all) => all,
            Err(e) => {
                warn!("kernel path: cannot list the interfaces: {e}");
                return Vec::new();
            }
        };
        let listed: StdHashMap<u32, &str> = all
            .iter()
            .map(|(name, index)| (*index, name.as_str()))
            .collect();
        self.decap_on.retain(|index, (name, link)| {
            let fate = link_fate(
                *index,
                name,
                bpf::tcx_link_ifindex(link),
                listed.get(index).copied(),
                || netdev::name_of_index(*index),
            );
            match fate {
                LinkFate::Keep => true,
                LinkFate::Renamed(now_named) => {
                    debug!("kernel path: {name} is now {now_named}");
                    *name = now_named;
                    true
                }
                LinkFate::Gone => {
                    debug!("kernel path: {name} is gone");
                    false
                }
            }
        });
        self.passed_over.retain(|index| listed.contains_key(index));
        let mut new: Vec<(String, u32)> = all
            .iter()
            .filter(|(_, index)| {
                !self.decap_on.contains_key(index) && !self.passed_over.contains(index)
            })
            .cloned()
            .collect();
        new.sort_by_key(|&(_, index)| index);
        let mut on = Vec::new();
        for (name, index) in new {
            let ethernet = index != self.tap_index
                && match netdev::is_ethernet(&name) {
                    Ok(is) => is,
                    Err(e) => {
                        // (Gone or renamed since the list: asked again at the next check.)
                        debug!("kernel path: not on {name} for now: {e}");
                        continue;
                    }
                };
            if !ethernet {
                self.passed_over.insert(index);
                continue;
            }
            if self.decap_on.len() >= MAX_INTERFACES {
                if !self.too_many_told {
                    self.too_many_told = true;
                    warn!(
                        "kernel path: more than {MAX_INTERFACES} Ethernet interfaces; \
                         receiving on {MAX_INTERFACES} of them only"
                    );
                }
                break;
            }
            match bpf::attach_tcx(self.decap(), index, Hook::Ingress) {
                Ok(link) => {
                    self.decap_on.insert(index, (name.clone(), link));
                    on.push(name);
                }
                Err(e) => {
                    debug!("kernel path: not on {name}: {e}");
                    self.passed_over.insert(index);
                }
            }
        }
        on
    }

    /// The form of `decap` for the tap as it is: whole super-frames only while it does not
    /// forward.
    fn decap(&self) -> &OwnedFd {
        if self.may_take_frames {
            &self.decap_whole
        } else {
            &self.decap_single
        }
    }

    /// Asks again whether the tap forwards what it gets (a bridge port, a bond member,
    /// forwarding on: see [`KernelPath::takes_frames`]), and follows a change. Once it
    /// forwards, `decap` takes single frames only (each link is given the other program in
    /// place; one the kernel refuses is closed, and the next check attaches the right one),
    /// control messages and heartbeats take checksums again, and each peer the kernel path
    /// would serve gets one Close (as when stepping aside; none while it stands aside, which
    /// sent them), so that peers' kernel paths that marked this node verify it anew and send
    /// their frames through their daemons. Once it no longer forwards, the other way back:
    /// `tend` lets peers' kernel paths send here again (see `start_taking_frames`).
    fn follow_tap<S: Socket, D: Device>(&mut self, node: &mut Node<S, D>) {
        // (By its index: the tap may have been renamed, also while it is asked, which the
        // second look at its name tells.)
        let name = || netdev::name_of_index(self.tap_index).ok().flatten();
        let Some(tap) = name() else {
            return;
        };
        let forwards = netdev::forwards(&tap);
        if name().as_ref() != Some(&tap) {
            return;
        }
        let forwards = match forwards {
            Ok(forwards) => forwards,
            Err(e) => {
                if !self.tap_check_told {
                    self.tap_check_told = true;
                    info!(
                        "kernel path: cannot tell whether {tap} forwards ({e}): asked again \
                         at the next check"
                    );
                }
                return;
            }
        };
        if forwards != self.may_take_frames {
            return;
        }
        self.may_take_frames = !forwards;
        let prog = if forwards {
            &self.decap_single
        } else {
            &self.decap_whole
        };
        let refused: Vec<u32> = self
            .decap_on
            .iter()
            .filter_map(|(index, (name, link))| match bpf::update_link(link, prog) {
                Ok(()) => None,
                Err(e) => {
                    debug!("kernel path: cannot change the program on {name} ({e}): off it");
                    Some(*index)
                }
            })
            .collect();
        for index in refused {
            self.decap_on.remove(&index);
        }
        if !forwards {
            info!(
                "kernel path: {tap} no longer forwards what it gets: super-frames are taken \
                 whole again"
            );
            return;
        }
        info!(
            "kernel path: {tap} forwards what it gets now (a bridge port, a bond member, or \
             forwarding on): no super-frames are taken whole, and peers send their frames \
             here through their daemons"
        );
        // (The sync of this pass sends the Closes: see `aside_closes`.)
        self.takes_frames = false;
        self.sync_control(node);
    }

    /// Has control messages go with checksums, through the UDP socket, while the kernel
    /// path stands aside or the node takes no frames, and without them otherwise.
    fn sync_control<S: Socket, D: Device>(&self, node: &mut Node<S, D>) {
        node.socket_mut()
            .control_as_frames(self.aside || !self.takes_frames);
    }

    /// Whether peers' kernel paths may send frames here: not when the tap forwards what it
    /// gets (a bridge port, a bond member, forwarding on), where a super-frame could not be
    /// taken whole, nor, until `decap` goes on one, while no interface takes frames. The
    /// daemon then keeps its control messages checksummed (see
    /// [`KernelPath::may_take_frames`]), so that peers do not take it for a node with a
    /// kernel path; its own frames still go out through the kernel.
    pub fn takes_frames(&self) -> bool {
        self.takes_frames
    }

    /// Whether peers' kernel paths may send frames here once an interface takes them: the
    /// tap does not forward what it gets. Such a node sends its control messages through the
    /// raw socket ([`KernelPath::raw_control`], if that could be had) from the moment
    /// [`KernelPath::takes_frames`] holds, which [`KernelPath::tend`] turns on (with the
    /// socket's [`Socket::control_as_frames`]) when `decap` goes on a first interface, or the
    /// tap stops forwarding, while the kernel path does not stand aside (else when it comes
    /// back on).
    pub fn may_take_frames(&self) -> bool {
        self.may_take_frames
    }

    /// What the kernel path does for each peer it knows, for `ethcloud show` (see
    /// [`crate::show::KERNEL_STATES`]): "on" (frames both ways), "unmarked" (in the maps, but
    /// the peer has shown no kernel path that takes frames, so frames to it go through the
    /// daemon), "held-refused" or "held-unheard" (held back, see `follow`), "no-route".
    pub fn peer_states(&self) -> crate::show::KernelStates {
        let mut out = crate::show::KernelStates::new();
        for peer in self.in_peers.values() {
            let state = if peer.read.marked { "on" } else { "unmarked" };
            out.insert(SocketAddr::V4(peer.addr), state);
        }
        for (addr, why) in self.follow.held() {
            let state = match why {
                follow::Held::Refused => "held-refused",
                follow::Held::Quiet => "held-unheard",
            };
            out.insert(SocketAddr::V4(addr), state);
        }
        for key in &self.not_eligible {
            out.entry(SocketAddr::V4(key_addr(key)))
                .or_insert("no-route");
        }
        for addr in &self.aside_peers {
            out.insert(SocketAddr::V4(*addr), "aside");
        }
        out
    }

    /// A handle on the raw socket the heartbeats go out through, for the daemon's control
    /// messages (see `sys::udp::UdpSocket::send_control_without_checksums`).
    ///
    /// # Errors
    ///
    /// The OS error of `dup`.
    pub fn raw_control(&self) -> std::io::Result<RawControl> {
        self.raw.try_clone()
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

    /// The host's IPv4 addresses `decap` takes frames for: the `--listen` address if it
    /// names one, else every IPv4 address of the host (at most [`MAX_LOCALS`]).
    fn sync_locals(&mut self) {
        let mut want: Vec<Ipv4Addr> = match listen_v4(self.listen) {
            Some(ip) => vec![ip],
            None => match ifaddrs::local_addrs() {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|addr| match addr.ip() {
                        std::net::IpAddr::V4(ip) => Some(ip),
                        std::net::IpAddr::V6(_) => None,
                    })
                    .collect(),
                Err(e) => {
                    debug!("kernel path: cannot list the host's addresses: {e}");
                    return;
                }
            },
        };
        // (Never loopback's: a datagram for 127/8 from outside is a martian.)
        want.retain(|ip| !ip.is_loopback());
        want.sort_unstable();
        want.dedup();
        if want.len() > MAX_LOCALS {
            if !self.too_many_locals_told {
                self.too_many_locals_told = true;
                warn!(
                    "kernel path: {} local IPv4 addresses; frames to those past the first \
                     {MAX_LOCALS} take the daemon's path",
                    want.len()
                );
            }
            want.truncate(MAX_LOCALS);
        }
        for ip in &self.in_locals {
            if !want.contains(ip) {
                if let Err(e) = self.locals.delete(&ip.octets()) {
                    debug!("kernel path: cannot forget the address {ip}: {e}");
                }
            }
        }
        for ip in &want {
            if let Err(e) = self.locals.update(&ip.octets(), &[1], bpf::ANY) {
                debug!("kernel path: cannot add the address {ip}: {e}");
            }
        }
        self.in_locals = want;
    }

    /// After a pass of the loop: when the node's view changed (at most every 20 ms), brings
    /// the maps in line with it; every second adds what the programs counted to the peers'
    /// traffic; every 30 s, and soon after a change the kernel announces (see `Rechecks`),
    /// also asks again whether the tap forwards (see `follow_tap`), where frames to each peer
    /// leave, the interfaces `decap` goes on, and the host's addresses.
    pub fn tend<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        if now < self.due(node) {
            return;
        }
        self.synced_at = now;
        if now >= self.collected_at + SYNC_EVERY
            && self.changes.as_mut().is_some_and(|c| c.changed())
        {
            // Interfaces, addresses, routes or forwarding changed: asked again soon (see
            // `Rechecks`), not at the next 30-s check, so that frames do not keep leaving
            // through an interface the route no longer takes, nor arrive where `decap` is
            // not, nor whole where the tap now forwards.
            self.rechecks.changed(now);
        }
        let recheck = self.rechecks.due(now);
        if recheck {
            self.not_eligible.clear();
            self.follow_tap(node);
            let on = self.sync_interfaces();
            if !on.is_empty() {
                debug!("kernel path: receiving on {} too", on.join(", "));
            }
            self.sync_locals();
        }
        if now >= self.collected_at + SYNC_EVERY || recheck {
            self.collected_at = now;
            self.collect(node);
            if self.watch_firewall {
                self.watch_firewall(node);
            }
            self.follow_firewall(now, node);
        }
        if !self.takes_frames && self.may_take_frames && !self.aside && !self.decap_on.is_empty() {
            self.start_taking_frames(node);
        }
        // The maps follow the node's view only when it moved (or the routes are checked):
        // a view is a copy of the MAC table.
        if self.synced != Some(node.forward_generation()) || recheck {
            // A peer removed and added again since the last sync (its Close, and a question
            // answered, can take less than the 20 ms between syncs) is a new peer: out of
            // the maps first, so that its entry starts unmarked (see "Finding each other").
            let again: Vec<PeerKey> = self
                .in_peers
                .iter()
                .filter(|(_, p)| {
                    node.peer_added(SocketAddr::V4(p.addr))
                        .is_some_and(|added| added != p.added)
                })
                .map(|(k, _)| *k)
                .collect();
            for key in again {
                self.drop_peer(&key);
                self.follow.forget(&key);
            }
            let view = node.forward_view();
            self.synced = Some(view.generation);
            let (mut peers, mut macs) = wanted(&view, now);
            self.aside_peers.clear();
            if self.aside || !self.takes_frames {
                // Peers that may have marked this node while it took frames are told to
                // verify it anew (see `aside_closes`).
                for addr in aside_closes(&mut self.closed, &peers, self.took_frames) {
                    node.close_and_stay(SocketAddr::V4(addr));
                }
            }
            if self.aside {
                // Everything out of the maps: every frame through the daemon, and the
                // firewall.
                self.aside_peers.extend(peers.values().copied());
                peers.clear();
                macs.clear();
            }
            self.sync_peers(now, node, &peers, recheck);
            self.sync_macs(&macs);
            let gone: Vec<PeerKey> = self
                .in_peers
                .keys()
                .filter(|k| !peers.contains_key(*k))
                .copied()
                .collect();
            self.remove_peers(gone);
            self.follow.sync_view(now, &peers);
        }
        let again: Vec<PeerKey> = self
            .hello_again
            .iter()
            .filter(|&(_, &at)| at <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in again {
            self.hello_again.remove(&key);
            if let Some(peer) = self.in_peers.get(&key) {
                node.ask_peer_list(SocketAddr::V4(peer.addr));
            }
        }
        // (After the sync: the entries read are the node's of this view.)
        if now >= self.seen_read_at {
            self.seen_read_at = now + self.refresh;
            self.read_seen(now, node);
        }
    }

    /// Lets peers' kernel paths send here, once `decap` went on a first interface (a node that
    /// started with none), or the tap stopped forwarding, while the kernel path does not
    /// stand aside: control messages go
    /// without checksums from now on, and so do the heartbeats (see `follow_firewall`). A
    /// peer that enters the map from now on is asked for its peer list at once (see
    /// `sync_peers`); one already there marks this node at its next control message or
    /// heartbeat, within 5 s.
    fn start_taking_frames<S: Socket, D: Device>(&mut self, node: &mut Node<S, D>) {
        let on: Vec<&str> = self
            .decap_on
            .values()
            .map(|(name, _)| name.as_str())
            .collect();
        info!(
            "kernel path: receiving on {}: peers' kernel paths may send here now",
            on.join(", ")
        );
        self.takes_frames = true;
        self.took_frames = true;
        // (From now on peers may mark it again: each is owed a Close at the next change.)
        self.closed.clear();
        self.sync_control(node);
    }

    /// Takes `keys` out of the peer map (and out of `in_peers` once the kernel let them go;
    /// a refusal is counted, and the next sync tries again).
    fn remove_peers(&mut self, keys: Vec<PeerKey>) {
        for key in keys {
            match self.peers.delete(&key) {
                Ok(()) => {
                    self.in_peers.remove(&key);
                }
                Err(e) => self.map_error("peer", &e),
            }
        }
    }

    /// Takes `keys` out of the MAC map, as [`KernelPath::remove_peers`] does peers.
    fn remove_macs(&mut self, keys: Vec<MacKey>) {
        for key in keys {
            match self.macs.delete(&key) {
                Ok(()) => {
                    self.in_macs.remove(&key);
                }
                Err(e) => self.map_error("MAC", &e),
            }
        }
    }

    /// Puts the peers of `peers` the kernel path can take into the peer map (first in, last
    /// out: a MAC entry never names a peer the map lacks), and with `recheck` moves those
    /// whose route changed.
    fn sync_peers<S: Socket, D: Device>(
        &mut self,
        now: Instant,
        node: &mut Node<S, D>,
        peers: &BTreeMap<PeerKey, SocketAddrV4>,
        recheck: bool,
    ) {
        for (key, &addr) in peers {
            let known = self.in_peers.get(key).map(|p| p.egress);
            if (known.is_some() && !recheck)
                || self.not_eligible.contains(key)
                || self.follow.is_held(key)
            {
                continue;
            }
            let egress = match egress(*addr.ip(), self.listen, self.min_mtu) {
                Ok(egress) => egress,
                Err(why) => {
                    debug!("kernel path: not for {addr}: {why}");
                    self.not_eligible.insert(*key);
                    if known.is_some() {
                        self.drop_peer(key);
                    }
                    continue;
                }
            };
            if known == Some(egress) {
                continue;
            }
            let mut value = [0u8; PEER_VALUE];
            value[..8].copy_from_slice(&egress);
            // A moved route: the counters (and the kernel-peer mark) go on where they are.
            // (What the programs add between this read and the update is lost: a few
            // frames' worth, once per route change.)
            let mut read = Read::default();
            if let Some(peer) = self.in_peers.get(key) {
                let mut current = [0u8; PEER_VALUE];
                if matches!(self.peers.lookup(key, &mut current), Ok(true)) {
                    value[8..].copy_from_slice(&current[8..]);
                    read = peer.read;
                }
            }
            match self.peers.update(key, &value, bpf::ANY) {
                Ok(()) => {
                    if known.is_none() && self.takes_frames {
                        // So that both kernel paths learn of each other (see `prog::decap`):
                        // now, and once more when it has surely put us in its own map.
                        node.ask_peer_list(SocketAddr::V4(addr));
                        self.hello_again.insert(*key, now + HELLO_AGAIN);
                    }
                    let added = node.peer_added(SocketAddr::V4(addr)).unwrap_or(now);
                    self.in_peers.insert(
                        *key,
                        InPeer {
                            addr,
                            egress,
                            read,
                            added,
                        },
                    );
                }
                Err(e) => self.map_error("peer", &e),
            }
        }
    }

    /// Takes `key` out of the peer map and its MAC entries out of the MAC map.
    fn drop_peer(&mut self, key: &PeerKey) {
        let macs: Vec<MacKey> = self
            .in_macs
            .iter()
            .filter(|(_, m)| m.peer == *key)
            .map(|(k, _)| *k)
            .collect();
        self.remove_macs(macs);
        self.remove_peers(vec![*key]);
    }

    /// Brings the MAC map in line with `macs`: entries gone, or behind a peer the peer map
    /// lacks, removed; new and moved ones written, never seen.
    fn sync_macs(&mut self, macs: &BTreeMap<MacKey, PeerKey>) {
        let gone: Vec<MacKey> = self
            .in_macs
            .iter()
            .filter(|(k, m)| macs.get(*k) != Some(&m.peer) || !self.in_peers.contains_key(&m.peer))
            .map(|(k, _)| *k)
            .collect();
        self.remove_macs(gone);
        for (key, peer) in macs {
            if self.in_macs.contains_key(key) || !self.in_peers.contains_key(peer) {
                continue;
            }
            let mut value = [0u8; MAC_VALUE];
            value[..8].copy_from_slice(peer);
            match self.macs.update(key, &value, bpf::ANY) {
                Ok(()) => {
                    self.in_macs.insert(
                        *key,
                        InMac {
                            peer: *peer,
                            seen: 0,
                        },
                    );
                }
                Err(e) => self.map_error("MAC", &e),
            }
        }
    }

    /// Refreshes the node's entries of the MACs `decap` took frames from since the last read
    /// (one map lookup per entry).
    fn read_seen<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        let mut value = [0u8; MAC_VALUE];
        for (key, entry) in &mut self.in_macs {
            if !matches!(self.macs.lookup(key, &mut value), Ok(true)) {
                continue;
            }
            let mut seen = [0u8; 8];
            seen.copy_from_slice(&value[8..]);
            let seen = u64::from_ne_bytes(seen);
            if seen <= entry.seen {
                continue;
            }
            entry.seen = seen;
            if let Some(peer) = self.in_peers.get(&entry.peer) {
                let mut mac = [0u8; 6];
                mac.copy_from_slice(&key[..6]);
                node.seen_by_kernel_path(now, SocketAddr::V4(peer.addr), Mac(mac));
            }
        }
    }

    /// Reads each peer's counters and adds what moved since the last read (also done by
    /// [`KernelPath::tend`] once a second).
    pub fn collect<S: Socket, D: Device>(&mut self, node: &mut Node<S, D>) {
        let mut value = [0u8; PEER_VALUE];
        for (key, peer) in &mut self.in_peers {
            match self.peers.lookup(key, &mut value) {
                Ok(true) => {
                    let read = read_counters(&value);
                    let last = peer.read;
                    let sent = (
                        read.sent.0.wrapping_sub(last.sent.0),
                        read.sent.1.wrapping_sub(last.sent.1),
                    );
                    let received = (
                        read.received.0.wrapping_sub(last.received.0),
                        read.received.1.wrapping_sub(last.received.1),
                    );
                    peer.read = read;
                    let source = Ipv4Addr::new(
                        peer.egress[4],
                        peer.egress[5],
                        peer.egress[6],
                        peer.egress[7],
                    );
                    self.follow
                        .note(key, source, read.marked || read.received.0 != 0);
                    if sent != (0, 0) || received != (0, 0) {
                        // The peer's traffic counts datagrams (the frame and its 8 bytes of
                        // token and switch byte), as the daemon's own sends and receives do.
                        let datagrams =
                            |(n, bytes): (u64, u64)| (n, bytes.wrapping_add(n.wrapping_mul(8)));
                        node.count_kernel_path(
                            SocketAddr::V4(peer.addr),
                            datagrams(sent),
                            datagrams(received),
                        );
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

    /// Sends the heartbeats that are due (counted in the peers' traffic), and holds back or
    /// lets go the peers whose datagrams the firewall now refuses or lets through (see
    /// [`follow`]). A node that takes no frames (its tap forwards, or `decap` is on no
    /// interface yet) sends its heartbeats with a UDP checksum, so that they do not mark it
    /// (to peers whose source address is known: in the map).
    fn follow_firewall<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        let mut changes = Vec::new();
        let checksummed = !self.takes_frames;
        let due = self.follow.heartbeats(now, checksummed, |addr| {
            node.last_heard(SocketAddr::V4(addr))
        });
        for (key, addr, source) in due {
            let source = source.unwrap_or(Ipv4Addr::UNSPECIFIED);
            let sent = self
                .raw
                .send_with(&self.heartbeat, addr, source, checksummed);
            match &sent {
                Ok(()) => {
                    let len = self.heartbeat.len() as u64;
                    node.count_kernel_path(SocketAddr::V4(addr), (1, len), (0, 0));
                }
                Err(e) if e.raw_os_error() != Some(libc::EPERM) => {
                    if self.heartbeat_error_told {
                        debug!("kernel path: a heartbeat to {addr} failed: {e}");
                    } else {
                        self.heartbeat_error_told = true;
                        info!(
                            "kernel path: a heartbeat to {addr} failed ({e}); it is tried again \
                             a second later (further failures at debug)"
                        );
                    }
                }
                Err(_) => {}
            }
            if let Some(change) = self.follow.sent(now, &key, &sent) {
                changes.push((key, addr, change));
            }
        }
        changes.extend(
            self.follow
                .check_quiet(now, |addr| node.last_heard(SocketAddr::V4(addr))),
        );
        for (key, addr, change) in changes {
            match change {
                follow::Change::Held(why) => {
                    let why = match why {
                        follow::Held::Refused => {
                            format!("the firewall refuses datagrams to {addr}")
                        }
                        follow::Held::Quiet => format!(
                            "nothing heard from {addr} for {} s (a firewall, or the path)",
                            follow::QUIET.as_secs()
                        ),
                    };
                    // Told at info only for a peer the programs served (it marked itself,
                    // or sent frames through them): for the others nothing changes.
                    let served = self
                        .in_peers
                        .get(&key)
                        .is_some_and(|p| p.read.marked || p.read.received.0 != 0);
                    if self.in_peers.contains_key(&key) {
                        self.drop_peer(&key);
                    }
                    if served {
                        info!("kernel path: {why}; its frames go through the daemon");
                        self.follow.told(&key);
                    } else {
                        debug!("kernel path: {why}");
                    }
                }
                follow::Change::Released { told } => {
                    if told {
                        info!(
                            "kernel path: datagrams to and from {addr} pass again; back on \
                             the kernel path"
                        );
                    } else {
                        debug!("kernel path: datagrams to and from {addr} pass again");
                    }
                    // (This pass's sync puts it back into the map.)
                    self.synced = None;
                }
            }
        }
    }

    /// Asks whether this network namespace has a firewall now, and steps aside if it has:
    /// control messages take checksums, and the next sync empties the maps and sends every
    /// peer a Close. It comes back on (control messages without checksums again if the node
    /// takes frames, the maps filled) once [`CLEAN_CHECKS`] checks in a row found none, so that a firewall that
    /// comes and goes does not cost every peer a Close each time. A question the kernel
    /// does not answer counts as a firewall.
    fn watch_firewall<S: Socket, D: Device>(&mut self, node: &mut Node<S, D>) {
        let found = match firewall::first() {
            Ok(found) => found.map(|what| format!("this host now has a firewall ({what})")),
            Err(e) => Some(format!(
                "cannot tell whether this host has a firewall ({e})"
            )),
        };
        match (self.aside, found) {
            (false, Some(why)) => {
                info!("kernel path: stepping aside, every frame goes through the daemon: {why}");
                self.aside = true;
                self.sync_control(node);
                self.clean_checks = 0;
            }
            (true, None) => {
                self.clean_checks += 1;
                if self.clean_checks < CLEAN_CHECKS {
                    return;
                }
                info!("kernel path: on again: this host has had no firewall for {CLEAN_CHECKS} s");
                self.aside = false;
                self.sync_control(node);
                if self.takes_frames {
                    // (Peers may mark it again: each is owed a Close at the next change.)
                    self.closed.clear();
                }
            }
            (true, Some(_)) => {
                self.clean_checks = 0;
                return;
            }
            (false, None) => return,
        }
        self.synced = None;
    }

    fn map_error(&mut self, map: &str, e: &std::io::Error) {
        if self.totals.map_errors == 0 {
            warn!(
                "kernel path: the {map} map refused an update ({e}); such frames take the \
                 daemon's path"
            );
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
        assert_eq!(key_addr(&peer_key(addr)), addr);
        assert_eq!(mac_key(Mac([2, 0, 0, 0, 0, 9])), [2, 0, 0, 0, 0, 9, 0, 0]);
    }

    #[test]
    fn the_maps_get_the_verified_ipv4_peers_and_their_live_untagged_macs() {
        use crate::switch::SwitchTable;
        let v4_addr: SocketAddrV4 = "198.18.0.2:3210".parse().unwrap();
        let v4 = SocketAddr::V4(v4_addr);
        let other: SocketAddr = "198.18.0.3:3210".parse().unwrap();
        let v6: SocketAddr = "[fd00::2]:3210".parse().unwrap();
        let mut table = SwitchTable::new(Duration::from_secs(300), 64, 16);
        let t0 = Instant::ZERO;
        let mac = |n| Mac([2, 0, 0, 0, 0, n]);
        table.learn(t0, VlanId::UNTAGGED, mac(1), v4);
        table.learn(t0, VlanId::new(5), mac(2), v4);
        table.learn(t0, VlanId::UNTAGGED, mac(3), v6);
        table.learn(t0, VlanId::UNTAGGED, mac(4), other);
        let mut view = ForwardView::empty(Token::new(7).unwrap());
        view.peers = vec![v4, v6];
        view.macs = table.view();
        let (peers, macs) = wanted(&view, t0 + Duration::from_secs(1));
        assert_eq!(peers.len(), 1);
        assert_eq!(
            peers.get(&[198, 18, 0, 2, 0x0c, 0x8a, 0, 0]),
            Some(&v4_addr)
        );
        // Not the tagged one, not the IPv6 peer's, not the one behind an unverified peer.
        assert_eq!(macs.len(), 1);
        assert_eq!(
            macs.get(&mac_key(mac(1))),
            Some(&[198, 18, 0, 2, 0x0c, 0x8a, 0, 0])
        );
        // An expired entry is left out.
        let (_, later) = wanted(&view, t0 + Duration::from_secs(301));
        assert!(later.is_empty());
    }

    #[test]
    fn aside_each_peer_gets_one_close_and_a_node_that_takes_no_frames_none() {
        let addr = |n: u8| SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, n), 3210);
        let view = |ns: &[u8]| -> BTreeMap<PeerKey, SocketAddrV4> {
            ns.iter().map(|&n| (peer_key(addr(n)), addr(n))).collect()
        };
        let mut closed = BTreeSet::new();
        assert_eq!(
            aside_closes(&mut closed, &view(&[1, 2]), true),
            [addr(1), addr(2)]
        );
        // The next sync: nobody twice; a peer verified since gets its one.
        assert_eq!(aside_closes(&mut closed, &view(&[1, 2]), true), []);
        assert_eq!(
            aside_closes(&mut closed, &view(&[1, 2, 3]), true),
            [addr(3)]
        );
        // A peer gone and back (removed and verified again) gets another.
        assert_eq!(aside_closes(&mut closed, &view(&[1, 3]), true), []);
        assert_eq!(
            aside_closes(&mut closed, &view(&[1, 2, 3]), true),
            [addr(2)]
        );
        let mut none = BTreeSet::new();
        assert_eq!(aside_closes(&mut none, &view(&[1, 2]), false), []);
        assert!(none.is_empty());
    }

    #[test]
    fn rechecks_come_every_30_s_and_soon_after_a_change_but_a_few_times_in_30_s_at_most() {
        let t = |secs: u64| Instant::ZERO + Duration::from_secs(secs);
        // Runs `changes` (one at each of those seconds) through a fresh schedule, calling
        // `due` every second up to `end`; returns the seconds of the checks.
        let run = |changes: &[u64], end: u64| {
            let mut r = Rechecks::new();
            let mut checks = Vec::new();
            for second in 0..=end {
                if changes.contains(&second) {
                    r.changed(t(second));
                }
                if r.due(t(second)) {
                    checks.push(second);
                }
            }
            checks
        };
        // Nothing announced: at once, then every 30 s.
        assert_eq!(run(&[], 95), [0, 30, 60, 90]);
        // A change within the second before a 30-s check: that check, as it was.
        assert_eq!(run(&[29], 65), [0, 30, 60]);
        // A change 10 s after a check: checked at once, and 30 s after that.
        assert_eq!(run(&[40], 95), [0, 30, 40, 70]);
        // One within 2 s of a check waits for those 2 s.
        assert_eq!(run(&[31], 65), [0, 30, 32, 62]);
        // Changes now and then (every 20 s: unrelated links coming and going): each is
        // checked at once, and so is one that matters among them.
        let noise: Vec<u64> = (1..=10).map(|k| 20 * k).chain([221]).collect();
        let checks = run(&noise, 230);
        for change in &noise {
            assert!(
                checks.contains(change),
                "{change} not checked at once: {checks:?}"
            );
        }
        // Changes every second or every 2 s: at most four checks brought forward in any
        // 30 s (and the 30-s ones), not one every 2 s.
        for every in [1, 2] {
            let churn: Vec<u64> = (1..=300).step_by(every).collect();
            let checks = run(&churn, 300);
            for window in checks.windows(EARLY_CHECKS + 2) {
                assert!(
                    window[EARLY_CHECKS + 1] - window[0] >= 30,
                    "every {every} s: {checks:?}"
                );
            }
            assert!(checks.len() <= 300 / 30 * EARLY_CHECKS + 1, "{checks:?}");
            assert_eq!(&checks[..6], [0, 2, 4, 6, 8, 32], "every {every} s");
        }
    }

    #[test]
    fn a_link_goes_when_its_interface_is_gone_or_moved_away_and_follows_a_rename() {
        let never = || -> std::io::Result<Option<String>> { panic!("asked") };
        let err = || Err(std::io::Error::from_raw_os_error(libc::EPERM));
        assert_eq!(
            link_fate(4, "eth0", Ok(4), Some("eth0"), never),
            LinkFate::Keep
        );
        assert_eq!(
            link_fate(4, "eth0", Ok(4), Some("wan0"), never),
            LinkFate::Renamed("wan0".to_owned())
        );
        // Detached: the interface was deleted (its index may name another one now).
        assert_eq!(
            link_fate(4, "eth0", Ok(0), Some("eth9"), never),
            LinkFate::Gone
        );
        // Moved to another namespace, under another index there, or under the same one.
        assert_eq!(link_fate(4, "eth0", Ok(7), None, never), LinkFate::Gone);
        assert_eq!(
            link_fate(4, "eth0", Ok(4), None, || Ok(None)),
            LinkFate::Gone
        );
        // Missed by the list, but there when asked by index.
        assert_eq!(
            link_fate(4, "eth0", Ok(4), None, || Ok(Some("eth0".to_owned()))),
            LinkFate::Keep
        );
        // Cannot tell: kept.
        assert_eq!(link_fate(4, "eth0", Ok(4), None, err), LinkFate::Keep);
        assert_eq!(
            link_fate(4, "eth0", err().map(|_: Option<String>| 0), None, never),
            LinkFate::Keep
        );
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
