//! [`Node`]: everything the spec says an ethcloud node does, with no I/O of its own.
//!
//! Owns the behaviour: token check, MAC learning, unicast or flood, add-on-hear peers, answering
//! and sending "get peer list", gossip of √n peer subsets, timeouts, Close. It writes through the
//! [`Socket`] and [`Device`] traits and reads time only from the `now` it is given, so the daemon
//! and the simulator drive the very same code. It must not touch the OS, a clock or threads.
//!
//! Choices made where the spec is silent:
//! - A valid message from an unknown address makes it a peer, except `Close`, which only ever
//!   removes. A new peer is *unverified* until it answers a "get peer list" of ours with its
//!   peer list (the spec's own exchange, so any conforming node passes). Until then it is sent
//!   nothing but that request (at most one per [`CHALLENGE_INTERVAL`]) and, if it asked for our
//!   list, a short list: together at most [`AMPLIFICATION_FACTOR`] times the size of its
//!   request. It gets no frames, its frames teach the MAC table nothing, its peer lists are
//!   not followed, and it is dropped after [`UNVERIFIED_TIMEOUT`]. Once verified it gets our
//!   whole list. So a forged source address cannot make us flood or amplify towards a victim.
//! - Addresses from peer lists are queued and sent "get peer list" at a bounded rate
//!   (`contacts_per_second`), each at most [`peers::LEARNED_ATTEMPTS`] times with back-off; they
//!   become peers only when they answer.
//! - `--connect` addresses are retried forever with exponential back-off (1 s doubling to 60 s),
//!   also after they time out or close.
//! - Keepalive and gossip are separate. Every peer must hear from us at least once per
//!   K = `min(peer_timeout / 4, 60 s)`, so that it keeps us (with margin) and NAT mappings stay
//!   open. A sweep goes round the verified peers (round-robin) twice per K and sends the
//!   smallest valid message, an empty peer list (10 bytes in the clear), to those that have
//!   been sent nothing for half a K: so each gets one about every K − 2 s, and a gossip list
//!   sent to a peer stands in for its next keepalive.
//! - Gossip rounds follow Trickle ([`peers::Trickle`]): after the peer set grows, intervals start
//!   at 1 s and double up to K, with one round at a random point in the second half of each. A
//!   round sends the next ⌈√n⌉ peers of a round-robin in random order a list of ⌈√n⌉ peers
//!   (round-robin, never the receiver itself). At the steady interval a round is skipped if
//!   [`GOSSIP_REDUNDANCY`] lists that taught us nothing new arrived in the interval before it
//!   (Trickle's suppression), so in steady state only a few nodes per interval gossip, and
//!   gossip per node grows as √n·log n. See `docs/scale.md`.
//! - A "get peer list" from a verified peer is answered with up to 255 verified peers per
//!   address family, never including the asker itself. Only verified peers are ever shared.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, info, warn};

use crate::buf::BUF_LEN;
use crate::buf::{PacketBuf, HEADROOM, SWITCH_AT};
use crate::crypto::{self, Key, OpenError, Opener, Sealer};
use crate::identity::{
    handshake, HandshakeEvent, IdentityConfig, SealOutcome, SecretKey, Sessions, TrustedKeys,
};
use crate::io::{Device, Socket};
use crate::limit::RateLimiter;
use crate::peers::{
    self, canonical, ceil_sqrt, is_unusable, Contacts, PeerTable, Sweep, Touch, Trickle,
};
use crate::stats::{DropReason, Stats};
use crate::switch::{self, Learned, SwitchTable};
use crate::time::Instant;
use crate::wire::{
    self, emit_control, emit_header, emit_peers,
    peers::{MAX_ENTRIES_PER_FAMILY, MAX_PEER_LIST_BODY_LEN, V4_ENTRY_LEN},
    Frame, Kind, Message, Packet, Token, HEADER_LEN,
};

/// How often [`Node::housekeep`] wants to run.
pub const HOUSEKEEP_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest gossip interval, used right after the peer set grew.
pub const GOSSIP_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Every peer hears from us at least this often (or every quarter of the peer timeout, if
/// shorter), which keeps NAT mappings open. It is also the longest gossip interval.
pub const KEEPALIVE_MAX: Duration = Duration::from_secs(60);
/// Trickle's redundancy constant k: at the longest interval, a gossip round is skipped if this
/// many peer lists that taught us nothing new arrived in the interval before it.
pub const GOSSIP_REDUNDANCY: u32 = 2;
/// A peer list verifies its sender if we asked that address for it at most this long ago.
pub const ANSWER_WINDOW: Duration = Duration::from_secs(30);
/// A peer added less than [`ANSWER_WINDOW`] / 3 ago that asks for our list is (usually)
/// checking us; it is sent one empty peer list this long after our answer, unless something
/// else reached it first (see `Node::follow_up`).
pub const FOLLOW_UP_DELAY: Duration = Duration::from_secs(6);
/// Follow-up slots kept allocated when none is pending.
const FOLLOW_UPS_KEPT: usize = 16;
/// An unverified peer is sent at most one "get peer list" per this interval.
pub const CHALLENGE_INTERVAL: Duration = Duration::from_secs(5);
/// What we send an unverified address in answer to one datagram is at most this many times as
/// large as that datagram.
pub const AMPLIFICATION_FACTOR: usize = 3;
/// An unverified peer that has not answered within this time is dropped.
pub const UNVERIFIED_TIMEOUT: Duration = Duration::from_secs(30);
/// Default rate of "get peer list" sent to addresses not yet peers.
pub const DEFAULT_CONTACTS_PER_SECOND: usize = 64;

/// How a node is set up. Build with [`Config::new`] and change fields as needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The network token; datagrams with another token are dropped.
    pub token: Token,
    /// A peer silent this long is removed (`--peer-timeout`).
    pub peer_timeout: Duration,
    /// A MAC entry not refreshed this long is removed (`--mac-timeout`).
    pub mac_timeout: Duration,
    /// Addresses to connect to (`--connect`), already resolved.
    pub connect: Vec<SocketAddr>,
    /// Addresses that are ourselves: never a peer, never contacted.
    pub own_addrs: Vec<SocketAddr>,
    /// The socket can send to IPv4 addresses.
    pub accepts_ipv4: bool,
    /// The socket can send to IPv6 addresses.
    pub accepts_ipv6: bool,
    /// Cap on the peer table.
    pub max_peers: usize,
    /// Cap on the MAC table.
    pub max_macs: usize,
    /// Cap on MAC entries behind one peer.
    pub max_macs_per_peer: usize,
    /// Cap on the addresses waiting to be contacted.
    pub max_contacts: usize,
    /// "get peer list" messages per second to addresses that are not peers yet.
    pub contacts_per_second: usize,
    /// Broadcast and multicast frames per second accepted from one source (each peer, and our
    /// own device); `None` for no limit. Frames over the limit are dropped and counted.
    pub broadcast_limit: Option<u64>,
    /// The network key and this run's session, for the keyed mode; `None` for the seed's
    /// cleartext protocol.
    pub keyed: Option<Keyed>,
    /// Per-node identity: our private key, the keys we trust and the session timers; `None`
    /// unless `--private-key` is given. Excludes `keyed`.
    pub identity: Option<IdentitySetup>,
}

/// Per-node identity mode (see [`crate::identity`]): every datagram is sealed with a session
/// made by a Noise IK handshake with the peer's own key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentitySetup {
    /// Our private key.
    pub secret: SecretKey,
    /// The public keys we trust.
    pub trusted: TrustedKeys,
    /// Session timers and limits.
    pub config: IdentityConfig,
}

/// Keyed mode: every datagram is sealed with the network key (see [`crate::crypto`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyed {
    /// The network key.
    pub key: Key,
    /// This run's session: start time in ms since the Unix epoch (big-endian) and 8 random
    /// bytes. It must differ on every start, so that nonces never repeat.
    pub session: [u8; crypto::SESSION_LEN],
}

/// Key rotation, phase 1: after [`Node::rekey`], the node opens new sender sessions under the
/// new key as well as the old one, but keeps sealing with its old key and session this long,
/// so that peers given the new key within this time can open what it sends once it switches.
pub const KEY_ROLLOVER: Duration = Duration::from_secs(60);
/// Key rotation, phase 2: after the node switched to sealing with the new key (in a new
/// session), it still accepts the old key this long; then the old key is retired: new sessions
/// under it are refused and those remembered are forgotten, so a node without the new key is
/// cut off.
pub const KEY_GRACE: Duration = Duration::from_secs(60);

/// What [`Node::rekey`] did with a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rekey {
    /// The node is not in keyed mode; nothing changed.
    NotKeyed,
    /// The key is the one in use (or being rotated to); nothing changed.
    Unchanged,
    /// Another key rotation is under way (it ends within [`KEY_ROLLOVER`] + [`KEY_GRACE`]);
    /// nothing changed.
    Busy,
    /// A key rotation to the new key started.
    Started,
}

/// A key rotation under way (see [`Node::rekey`]).
#[derive(Debug)]
enum Rollover {
    /// Phase 1: new sessions open under both keys; we seal with the old one until `until`,
    /// then with `next`.
    Opening { next: Keyed, until: Instant },
    /// Phase 2: we seal with the new key; the old one is retired at `until`.
    Sealing { until: Instant },
}

/// How many senders' sessions a keyed node remembers for replay protection.
pub const MAX_SESSIONS: usize = peers::DEFAULT_MAX_PEERS;

/// Where a clear control datagram starts in the control buffer: room for sealing in front.
const CONTROL_AT: usize = crypto::FRONT_LEN - wire::TOKEN_LEN;

impl Config {
    /// The spec's defaults (peer timeout 1800 s, MAC timeout 300 s) for `token`.
    pub fn new(token: Token) -> Config {
        Config {
            token,
            peer_timeout: Duration::from_secs(1800),
            mac_timeout: Duration::from_secs(300),
            connect: Vec::new(),
            own_addrs: Vec::new(),
            accepts_ipv4: true,
            accepts_ipv6: true,
            max_peers: peers::DEFAULT_MAX_PEERS,
            max_macs: switch::DEFAULT_MAX_ENTRIES,
            max_macs_per_peer: switch::DEFAULT_MAX_ENTRIES_PER_PEER,
            max_contacts: peers::DEFAULT_MAX_CONTACTS,
            contacts_per_second: DEFAULT_CONTACTS_PER_SECOND,
            broadcast_limit: None,
            keyed: None,
            identity: None,
        }
    }

    fn is_own(&self, addr: SocketAddr) -> bool {
        self.own_addrs.contains(&addr)
    }

    fn is_configured(&self, addr: SocketAddr) -> bool {
        self.connect.contains(&addr)
    }

    fn can_reach(&self, addr: SocketAddr) -> bool {
        match addr {
            SocketAddr::V4(_) => self.accepts_ipv4,
            SocketAddr::V6(_) => self.accepts_ipv6,
        }
    }

    /// How often every peer must hear from us.
    fn keepalive(&self) -> Duration {
        (self.peer_timeout / 4).clamp(GOSSIP_INTERVAL_MIN, KEEPALIVE_MAX)
    }
}

/// A seed for the gossip timer's random points: our own addresses and the start time, so that
/// nodes started together still pick different points, and the simulator stays deterministic.
fn trickle_seed(config: &Config, now: Instant) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&now.as_millis().to_le_bytes());
    for addr in &config.own_addrs {
        match addr {
            SocketAddr::V4(a) => feed(&a.ip().octets()),
            SocketAddr::V6(a) => feed(&a.ip().octets()),
        }
        feed(&addr.port().to_be_bytes());
    }
    h
}

/// Send side: the socket plus which kinds of failure were already logged at warn.
struct Tx<S> {
    socket: S,
    warned: u8,
}

impl<S: Socket> Tx<S> {
    /// Sends one datagram; counts success or failure; warns once per kind of failure.
    /// Returns whether the socket took it.
    fn send(
        &mut self,
        stats: &mut Stats,
        to: SocketAddr,
        datagram: &[u8],
        is_control: bool,
    ) -> bool {
        match self.socket.send_to(datagram, to) {
            Ok(()) => {
                stats.datagrams_sent += 1;
                stats.bytes_sent += datagram.len() as u64;
                if is_control {
                    stats.control_sent += 1;
                    stats.control_bytes_sent += datagram.len() as u64;
                }
                true
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    stats.send_would_block += 1;
                } else {
                    stats.send_errors += 1;
                }
                let bit = error_bit(e.kind());
                if self.warned & bit == 0 {
                    self.warned |= bit;
                    warn!("sending to {to} failed: {e} (counted; further failures of this kind are logged at debug)");
                } else {
                    debug!("sending to {to} failed: {e}");
                }
                false
            }
        }
    }
}

/// The drop counter of a datagram that did not open (keyed and identity mode).
fn open_drop_reason(e: OpenError) -> DropReason {
    match e {
        OpenError::Replayed | OpenError::StaleSession => DropReason::Replayed,
        OpenError::Truncated | OpenError::NotSealed | OpenError::Forged => {
            DropReason::Unauthenticated
        }
    }
}

fn error_bit(kind: io::ErrorKind) -> u8 {
    match kind {
        io::ErrorKind::WouldBlock => 1,
        io::ErrorKind::ConnectionRefused => 2,
        io::ErrorKind::PermissionDenied => 4,
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => 8,
        io::ErrorKind::InvalidInput | io::ErrorKind::AddrNotAvailable => 16,
        _ => 32,
    }
}

/// One ethcloud node: a learning switch whose ports are peers.
pub struct Node<S: Socket, D: Device> {
    config: Config,
    /// Keyed mode: our sealer and the opener with its replay windows.
    crypto: Option<(Sealer, Opener)>,
    /// Keyed mode: the key rotation under way, if any.
    rollover: Option<Rollover>,
    /// Identity mode: the sessions with each trusted key.
    sessions: Option<Box<Sessions>>,
    /// Identity mode: where a flooded datagram is copied and sealed for each peer.
    flood: Box<[u8]>,
    /// The time of the latest call that gave us one (for the sealing of control messages).
    now: Instant,
    tx: Tx<S>,
    device: D,
    device_warned: bool,
    peers: PeerTable,
    switch: SwitchTable,
    contacts: Contacts,
    stats: Stats,
    /// Scratch space for management messages, allocated once.
    control: Box<[u8]>,
    /// Scratch lists for housekeeping, reused.
    targets: Vec<SocketAddr>,
    /// New peers that asked for our list, with when we answered (see [`FOLLOW_UP_DELAY`]);
    /// at most `max_peers` entries.
    follow_ups: Vec<(Instant, SocketAddr)>,
    entries: Vec<SocketAddr>,
    /// Where the keepalive sweep over the verified peers is.
    sweep_cursor: Option<SocketAddr>,
    /// Where the gossip round-robin (in random order) is.
    gossip_position: usize,
    /// How many peers the keepalive sweep visits at each housekeeping.
    keepalives: Sweep,
    /// Which peers the next gossip list names (round-robin).
    share_cursor: Option<SocketAddr>,
    /// Where the last peer list we sent ended, per family (IPv4, IPv6).
    list_cursors: [Option<SocketAddr>; 2],
    /// When gossip rounds run.
    trickle: Trickle,
    next_housekeep: Instant,
    contact_limiter: RateLimiter,
    device_broadcasts: RateLimiter,
    /// Which "table full" warnings were already given (one each).
    full_warned: u8,
}

const FULL_PEERS: u8 = 1;
const FULL_MACS: u8 = 2;
const FULL_CONTACTS: u8 = 4;

impl<S: Socket, D: Device> Node<S, D> {
    /// A node with no peers yet. Its `--connect` addresses (minus our own) are contacted at the
    /// first [`Node::housekeep`], which [`Node::next_deadline`] asks for at once.
    pub fn new(mut config: Config, socket: S, device: D, now: Instant) -> Self {
        let connect = core::mem::take(&mut config.connect);
        let contact_rate = config.contacts_per_second.max(1) as u64;
        let broadcast_rate = config.broadcast_limit.unwrap_or(0);
        let crypto = config.keyed.as_ref().map(|k| {
            let mut opener = Opener::new(&k.key, MAX_SESSIONS);
            opener.refuse_session(k.session);
            (Sealer::new(&k.key, k.session), opener)
        });
        let sessions = config.identity.as_ref().map(|setup| {
            Box::new(Sessions::new(
                handshake::Identity::new(setup.secret.clone()),
                config.token,
                setup.trusted.clone(),
                setup.config.clone(),
                now,
            ))
        });
        let flood = if sessions.is_some() {
            vec![0u8; BUF_LEN].into_boxed_slice()
        } else {
            Box::default()
        };
        let mut node = Node {
            crypto,
            rollover: None,
            sessions,
            flood,
            now,
            peers: PeerTable::new(config.max_peers),
            switch: SwitchTable::new(
                config.mac_timeout,
                config.max_macs,
                config.max_macs_per_peer,
            ),
            tx: Tx { socket, warned: 0 },
            device,
            device_warned: false,
            stats: Stats::default(),
            control: vec![0u8; CONTROL_AT + HEADER_LEN + MAX_PEER_LIST_BODY_LEN + crypto::TAG_LEN]
                .into_boxed_slice(),
            targets: Vec::new(),
            follow_ups: Vec::new(),
            entries: Vec::new(),
            sweep_cursor: None,
            gossip_position: 0,
            keepalives: Sweep::new(now),
            share_cursor: None,
            list_cursors: [None, None],
            trickle: Trickle::new(now, GOSSIP_INTERVAL_MIN, trickle_seed(&config, now)),
            next_housekeep: now,
            contact_limiter: RateLimiter::new(now, contact_rate),
            device_broadcasts: RateLimiter::new(now, broadcast_rate),
            full_warned: 0,
            contacts: Contacts::new(config.max_contacts),
            config,
        };
        for addr in connect {
            node.add_connect(now, addr);
        }
        node
    }

    /// Adds a `--connect` address: contacted at the next housekeeping, retried with back-off
    /// until it answers, and again whenever it is lost. Our own address, an unusable one or one
    /// of a family the socket cannot reach is refused with a warning. Returns whether it was
    /// added (or already there).
    pub fn add_connect(&mut self, now: Instant, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        if self.config.is_own(addr) {
            warn!("not connecting to {addr}: that is this node's own address");
            return false;
        }
        if is_unusable(addr) {
            warn!("not connecting to {addr}: no node can be reached there");
            return false;
        }
        if !self.config.can_reach(addr) {
            warn!("not connecting to {addr}: the listen socket cannot reach that address family");
            return false;
        }
        if !self.config.connect.contains(&addr) {
            self.config.connect.push(addr);
            if !self.peers.contains(addr) {
                self.contacts.add_configured(addr, now);
            }
            self.next_housekeep = self.next_housekeep.min(now);
        }
        true
    }

    /// Handles one datagram received from `from`. // HOT PATH
    ///
    /// # Errors
    ///
    /// The [`DropReason`] when the datagram is not acted on; it has already been counted and
    /// logged at debug, so callers may ignore it.
    pub fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<(), DropReason> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        self.now = now;
        let from = canonical(from);
        let result = self.handle_datagram(now, from, datagram);
        self.flush_handshakes(now);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped {} bytes from {from}: {reason}", datagram.len());
        }
        result
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(&*datagram).map_err(DropReason::Malformed)?;
        if packet.token() != self.config.token {
            return Err(DropReason::WrongToken);
        }
        if self.config.is_own(from) {
            return Err(DropReason::FromSelf);
        }
        let wire_len = datagram.len();
        if let Some(sessions) = &mut self.sessions {
            let marker = datagram.get(wire::TOKEN_LEN).copied();
            if marker == Some(handshake::INITIATION) || marker == Some(handshake::RESPONSE) {
                return self.on_handshake(now, from, datagram);
            }
            // Identity mode: only what opens with a session of a trusted key goes on.
            let range = sessions
                .open(now, from, datagram)
                .map_err(open_drop_reason)?;
            let datagram: &[u8] = datagram.get(range).unwrap_or_default();
            return self.handle_clear(now, from, datagram, wire_len);
        }
        // Keyed mode: only what opens with the key and is no replay goes on, decrypted in place.
        let datagram: &[u8] = match &mut self.crypto {
            None => datagram,
            Some((_, opener)) => {
                let range = opener.open(datagram).map_err(open_drop_reason)?;
                datagram.get(range).unwrap_or_default()
            }
        };
        self.handle_clear(now, from, datagram, wire_len)
    }

    /// Identity mode: a handshake message; a response goes back at once, and a session we
    /// started is greeted with a "get peer list" if its address is no verified peer yet.
    fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &[u8],
    ) -> Result<(), DropReason> {
        let Some(sessions) = &mut self.sessions else {
            return Err(DropReason::Unauthenticated);
        };
        match sessions.on_handshake(now, from, msg, &mut self.control) {
            HandshakeEvent::Answered(len) => {
                if let Some(reply) = self.control.get(..len) {
                    self.tx.send(&mut self.stats, from, reply, true);
                }
                Ok(())
            }
            HandshakeEvent::Completed => {
                if !self.peers.is_verified(from) {
                    debug!("asking {from} for its peer list (session made)");
                    self.send_control(from, Kind::GetPeers);
                }
                Ok(())
            }
            HandshakeEvent::Dropped => Err(DropReason::Unauthenticated),
        }
    }

    /// Acts on a clear datagram (opened first in keyed and identity mode).
    fn handle_clear(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        wire_len: usize,
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(datagram).map_err(DropReason::Malformed)?;
        let message = Message::parse(packet).map_err(DropReason::Malformed)?;
        if let Message::Close = message {
            self.remove_peer(now, from, "closed by peer");
            return Ok(());
        }
        // A peer list from an address we recently asked is its answer: the address receives
        // what we send there. Decide before `touch`, which may add the peer.
        let is_answer = matches!(message, Message::Peers(_)) && self.asked_recently(now, from);
        let mut is_verified = match self.peers.touch_received(now, from, wire_len) {
            Touch::Refreshed { is_verified } => is_verified,
            Touch::Added => {
                debug!("new unverified peer {from}");
                false
            }
            Touch::Full => {
                if self.first_time_full(FULL_PEERS) {
                    let max = self.config.max_peers;
                    warn!("peer table full ({max} verified peers): new addresses are ignored (counted; warned once)");
                }
                return Err(DropReason::PeerTableFull);
            }
        };
        if is_answer && !is_verified {
            self.verify_peer(now, from);
            is_verified = true;
        }
        if !is_verified {
            self.challenge(now, from, &message, wire_len);
        }
        match message {
            Message::Frame(frame) => self.deliver(now, from, frame, is_verified),
            Message::Peers(list) => {
                if is_verified {
                    self.learn_addresses(now, from, list);
                }
                Ok(())
            }
            Message::GetPeers => {
                if is_verified {
                    self.send_peer_list(from, MAX_PEER_LIST_BODY_LEN);
                    self.follow_up(now, from);
                }
                Ok(())
            }
            Message::Close => Ok(()),
        }
    }

    /// True if we sent `addr` a "get peer list" within [`ANSWER_WINDOW`].
    fn asked_recently(&self, now: Instant, addr: SocketAddr) -> bool {
        let recent = |at: Option<Instant>| {
            at.is_some_and(|t| now.saturating_duration_since(t) <= ANSWER_WINDOW)
        };
        recent(self.contacts.get(addr).and_then(|c| c.last_sent))
            || recent(self.peers.get(addr).and_then(|p| p.asked_at))
    }

    /// Sends an unverified peer a "get peer list" (its answer will verify it), at most once per
    /// [`CHALLENGE_INTERVAL`]. If it asked for our peer list, it also gets a list no larger than
    /// [`AMPLIFICATION_FACTOR`] times its request. Nothing else is ever sent to an address that
    /// has not answered us, so a forged source address cannot turn us into an amplifier.
    fn challenge(
        &mut self,
        now: Instant,
        to: SocketAddr,
        message: &Message<'_>,
        request_len: usize,
    ) {
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        if peer
            .asked_at
            .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_INTERVAL)
        {
            self.stats.replies_limited += 1;
            return;
        }
        peer.asked_at = Some(now);
        if let Message::GetPeers = message {
            let budget = request_len.saturating_mul(AMPLIFICATION_FACTOR);
            let body_budget = budget.saturating_sub(2 * (HEADER_LEN + self.seal_overhead()));
            self.send_peer_list(to, body_budget);
        }
        debug!("asking unverified peer {to} for its peer list");
        self.send_control(to, Kind::GetPeers);
    }

    /// Queues one empty peer list to a new peer that asked for our list: its request is
    /// usually the challenge that verifies us, and if our answer is lost it drops us after
    /// [`UNVERIFIED_TIMEOUT`] while we keep it, until our next keepalive (up to K later)
    /// starts the exchange again. Any peer list from us within [`ANSWER_WINDOW`] of its
    /// request verifies us there, so this one costs 10 bytes per request of a new peer (which
    /// already cost us a full list) and closes the gap in [`FOLLOW_UP_DELAY`]. It is sent even
    /// if we sent that peer something since: that may have been lost as well.
    fn follow_up(&mut self, now: Instant, addr: SocketAddr) {
        let is_new = self
            .peers
            .get(addr)
            .is_some_and(|p| now.saturating_duration_since(p.added) < ANSWER_WINDOW / 3);
        if is_new && self.follow_ups.len() < self.config.max_peers {
            self.follow_ups.push((now, addr));
        }
    }

    /// Sends the follow-ups that are due (see [`Node::follow_up`]). The queue fills only while
    /// links form; once it is empty its memory is given back.
    fn send_follow_ups(&mut self, now: Instant) {
        if self.follow_ups.is_empty() {
            if self.follow_ups.capacity() > FOLLOW_UPS_KEPT {
                self.follow_ups.shrink_to(FOLLOW_UPS_KEPT);
            }
            return;
        }
        let mut i = 0;
        while let Some(&(answered, addr)) = self.follow_ups.get(i) {
            if now < answered + FOLLOW_UP_DELAY {
                i += 1;
                continue;
            }
            self.follow_ups.swap_remove(i);
            let Some(peer) = self.peers.get_mut(addr) else {
                continue;
            };
            if !peer.is_verified {
                continue;
            }
            peer.last_sent = now;
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, _)) = emit_peers(self.config.token, core::iter::empty(), buf) {
                debug!("follow-up to new peer {addr}");
                self.send_control_buffer(addr, len);
            }
        }
    }

    fn verify_peer(&mut self, now: Instant, addr: SocketAddr) {
        let was_asked_as_peer = self.peers.get(addr).is_some_and(|p| p.asked_at.is_some());
        if !self.peers.verify(addr) {
            return;
        }
        self.contacts.remove(addr);
        info!("peer {addr} added ({} peers)", self.peers.verified_len());
        // The peer set grew: there is news to spread, gossip soon again (Trickle reset).
        self.trickle.reset(now, GOSSIP_INTERVAL_MIN);
        if was_asked_as_peer {
            // It contacted us first and got only a short list then: send the whole list now.
            self.send_peer_list(addr, MAX_PEER_LIST_BODY_LEN);
        }
    }

    /// Learns the frame's source and writes it to the device. // HOT PATH
    /// Only frames from verified peers teach the MAC table, so unicast never goes to an address
    /// that has not shown it receives our packets.
    fn deliver(
        &mut self,
        now: Instant,
        from: SocketAddr,
        frame: Frame<&[u8]>,
        is_verified: bool,
    ) -> Result<(), DropReason> {
        if let Some(rate) = self.config.broadcast_limit {
            if frame.dst().is_multicast() {
                let allowed = self
                    .peers
                    .get_mut(from)
                    .is_some_and(|p| p.broadcasts.allow(now, rate));
                if !allowed {
                    return Err(DropReason::BroadcastLimit);
                }
            }
        }
        let src = frame.src();
        if is_verified && !src.is_multicast() {
            let vlan = frame.vlan();
            match self.switch.learn(now, vlan, src, from) {
                Learned::Refreshed => {}
                Learned::New => debug!("learned {src} on {vlan} at {from}"),
                Learned::Moved { from: old } => {
                    self.stats.mac_moves += 1;
                    debug!("{src} on {vlan} moved from {old} to {from}");
                }
                Learned::Refused => {
                    self.stats.macs_refused += 1;
                    if self.first_time_full(FULL_MACS) {
                        let (total, per_peer) =
                            (self.config.max_macs, self.config.max_macs_per_peer);
                        warn!("mac table full ({total} entries, {per_peer} per peer): frames to new macs are flooded (counted; warned once)");
                    }
                    debug!("not learning {src} on {vlan} at {from}: mac table full");
                }
            }
        }
        let bytes = frame.as_bytes();
        match self.device.write_frame(bytes) {
            Ok(()) => {
                self.stats.frames_to_device += 1;
                self.stats.bytes_to_device += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                if !self.device_warned {
                    self.device_warned = true;
                    warn!("writing a frame to the device failed: {e} (counted as drops; further failures are logged at debug)");
                }
                Err(DropReason::DeviceWrite)
            }
        }
    }

    /// Queues the addresses in a verified peer's list that are new to us. A non-empty list with
    /// nothing new is *consistent* and counts towards suppressing our next steady gossip round.
    fn learn_addresses(&mut self, now: Instant, from: SocketAddr, list: wire::PeerList<'_>) {
        let mut news = 0usize;
        for addr in list.iter() {
            let addr = canonical(addr);
            if addr == from || self.peers.contains(addr) || self.contacts.contains(addr) {
                continue;
            }
            if is_unusable(addr) || self.config.is_own(addr) || !self.config.can_reach(addr) {
                self.stats.peer_entries_ignored += 1;
                continue;
            }
            news += 1;
            if !self.contacts.add_learned(now, addr) {
                self.stats.contacts_refused += 1;
                if self.first_time_full(FULL_CONTACTS) {
                    let max = self.config.max_contacts;
                    warn!("contact queue full ({max} addresses): addresses from peer lists are ignored (counted; warned once)");
                }
                debug!("not contacting {addr}: contact queue full");
            }
        }
        if news == 0 && !list.is_empty() {
            self.trickle.heard_consistent();
        }
    }

    fn remove_peer(&mut self, now: Instant, addr: SocketAddr, reason: &str) {
        let Some(peer) = self.peers.remove(addr) else {
            return;
        };
        let macs = self.switch.forget_peer(addr);
        if peer.is_verified {
            info!(
                "peer {addr} removed: {reason} ({} peers)",
                self.peers.verified_len()
            );
        } else {
            debug!("unverified peer {addr} removed: {reason}");
        }
        if macs > 0 {
            debug!("forgot {macs} mac entries behind {addr}");
        }
        if self.config.is_configured(addr) {
            self.contacts
                .add_configured(addr, now + peers::CONNECT_BACKOFF_START);
        }
    }

    /// Sends `to` our verified peers, leaving `to` itself out: up to 255 per family, and no
    /// more than fit in a body of `body_budget` bytes. Each family's list starts where the
    /// previous list ended, so when there are more peers than fit, successive askers learn
    /// different parts of the mesh; and only the entries sent are walked, not the whole table.
    fn send_peer_list(&mut self, to: SocketAddr, body_budget: usize) {
        if let Some(len) = self.emit_peer_list(to, body_budget) {
            self.send_control_buffer(to, len);
        }
    }

    /// Writes the peer list for `to` at [`CONTROL_AT`]; returns its length.
    fn emit_peer_list(&mut self, to: SocketAddr, body_budget: usize) -> Option<usize> {
        let peers = &self.peers;
        let family = |is_v6: bool, cursor: Option<SocketAddr>| {
            peers
                .verified_of_family_after(is_v6, cursor)
                .filter(move |a| *a != to)
                .take(MAX_ENTRIES_PER_FAMILY)
        };
        let [cursor_v4, cursor_v6] = self.list_cursors;
        let (v4, v6) = (family(false, cursor_v4), family(true, cursor_v6));
        let room = self.control.len() - CONTROL_AT - crypto::TAG_LEN;
        let len = (HEADER_LEN + body_budget).min(room);
        let buf = self.control.get_mut(CONTROL_AT..CONTROL_AT + len)?;
        let (len, _) = emit_peers(self.config.token, v4.clone().chain(v6.clone()), buf).ok()?;
        // The body starts with the IPv4 count, and the IPv6 count follows the IPv4 entries.
        let n4 = buf.get(HEADER_LEN).map_or(0, |n| usize::from(*n));
        let n6 = buf
            .get(HEADER_LEN + 1 + n4 * V4_ENTRY_LEN)
            .map_or(0, |n| usize::from(*n));
        if let Some(last) = n4.checked_sub(1).and_then(|i| v4.clone().nth(i)) {
            self.list_cursors[0] = Some(last);
        }
        if let Some(last) = n6.checked_sub(1).and_then(|i| v6.clone().nth(i)) {
            self.list_cursors[1] = Some(last);
        }
        Some(len)
    }

    fn send_control(&mut self, to: SocketAddr, kind: Kind) {
        let Some(buf) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        if let Ok(len) = emit_control(self.config.token, kind, buf) {
            self.send_control_buffer(to, len);
        }
    }

    /// Sends the clear datagram of `len` bytes at [`CONTROL_AT`] in the control buffer, sealed
    /// first in keyed mode.
    fn send_control_buffer(&mut self, to: SocketAddr, len: usize) {
        if let Some(sessions) = &mut self.sessions {
            let switch_at = CONTROL_AT + wire::TOKEN_LEN;
            let inner_len = len.saturating_sub(wire::TOKEN_LEN);
            match sessions.seal(self.now, to, &mut self.control, switch_at, inner_len) {
                Ok(range) => {
                    if let Some(datagram) = self.control.get(range) {
                        if self.tx.send(&mut self.stats, to, datagram, true) {
                            self.peers.count_sent(to, datagram.len());
                        }
                    }
                }
                Err(SealOutcome::NoSession) => {
                    debug!("no session with {to} yet: a handshake is started")
                }
                Err(SealOutcome::Seal(e)) => {
                    self.stats.send_errors += 1;
                    debug!("cannot seal a message to {to}: {e}");
                }
            }
            return;
        }
        let range = match &mut self.crypto {
            None => CONTROL_AT..CONTROL_AT + len,
            Some((sealer, _)) => {
                let switch_at = CONTROL_AT + wire::TOKEN_LEN;
                let inner_len = len.saturating_sub(wire::TOKEN_LEN);
                match sealer.seal(self.config.token, &mut self.control, switch_at, inner_len) {
                    Ok(range) => range,
                    Err(e) => {
                        self.stats.send_errors += 1;
                        debug!("cannot seal a message to {to}: {e}");
                        return;
                    }
                }
            }
        };
        if let Some(datagram) = self.control.get(range) {
            if self.tx.send(&mut self.stats, to, datagram, true) {
                self.peers.count_sent(to, datagram.len());
            }
        }
    }

    /// Bytes a datagram grows by when sealed (0 in the clear protocol).
    fn seal_overhead(&self) -> usize {
        if self.crypto.is_some() || self.sessions.is_some() {
            crypto::OVERHEAD
        } else {
            0
        }
    }

    /// Sends the frame read into `buf.frame_room()[..len]` to the peer owning its destination, or
    /// to every peer. The header is written in front of the frame in place. // HOT PATH
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header,
    /// [`DropReason::NoPeers`] when there is nobody to send to. Both are already counted.
    pub fn on_frame(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        self.stats.frames_from_device += 1;
        self.stats.bytes_from_device += len as u64;
        self.now = now;
        let result = self.forward(now, buf, len);
        self.flush_handshakes(now);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped a {len}-byte frame from the device: {reason}");
        }
        result
    }

    fn forward(&mut self, now: Instant, buf: &mut PacketBuf, len: usize) -> Result<(), DropReason> {
        let (dst, vlan) = match Frame::new_checked(buf.frame(len)) {
            Ok(frame) => (frame.dst(), frame.vlan()),
            Err(_) => return Err(DropReason::BadDeviceFrame),
        };
        let target = if dst.is_multicast() {
            if let Some(rate) = self.config.broadcast_limit {
                if !self.device_broadcasts.allow(now, rate) {
                    return Err(DropReason::BroadcastLimit);
                }
            }
            None
        } else {
            self.switch.lookup(now, vlan, dst)
        };
        if target.is_none() && self.peers.verified_len() == 0 {
            return Err(DropReason::NoPeers);
        }
        let datagram = buf.header_and_frame_mut(len);
        if emit_header(self.config.token, Kind::Frame, datagram).is_err() {
            return Err(DropReason::BadDeviceFrame);
        }
        if self.sessions.is_some() {
            return self.forward_sealed_per_peer(now, buf, len, target);
        }
        let range = match &mut self.crypto {
            None => HEADROOM..HEADROOM + HEADER_LEN + len,
            Some((sealer, _)) => {
                match sealer.seal(self.config.token, buf.bytes_mut(), SWITCH_AT, 1 + len) {
                    Ok(range) => range,
                    Err(_) => return Err(DropReason::BadDeviceFrame),
                }
            }
        };
        let datagram: &[u8] = buf.bytes().get(range).unwrap_or_default();
        match target {
            Some(peer) => {
                self.stats.frames_unicast += 1;
                if self.tx.send(&mut self.stats, peer, datagram, false) {
                    self.peers.count_sent(peer, datagram.len());
                }
            }
            None => {
                self.stats.frames_flooded += 1;
                let (tx, stats) = (&mut self.tx, &mut self.stats);
                self.peers.for_each_verified(|peer, traffic| {
                    if tx.send(stats, peer, datagram, false) {
                        traffic.count_sent(datagram.len());
                    }
                });
            }
        }
        Ok(())
    }

    /// Identity mode: seals the frame datagram in `buf` with the session of each receiver: in
    /// place for one, in a copy per peer for a flood. // HOT PATH
    fn forward_sealed_per_peer(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
        target: Option<SocketAddr>,
    ) -> Result<(), DropReason> {
        let Node {
            sessions: Some(sessions),
            tx,
            stats,
            peers,
            flood,
            ..
        } = self
        else {
            return Err(DropReason::BadDeviceFrame);
        };
        let clear_end = HEADROOM + HEADER_LEN + len;
        match target {
            Some(peer) => {
                stats.frames_unicast += 1;
                if let Ok(range) = sessions.seal(now, peer, buf.bytes_mut(), SWITCH_AT, 1 + len) {
                    if let Some(datagram) = buf.bytes().get(range) {
                        if tx.send(stats, peer, datagram, false) {
                            peers.count_sent(peer, datagram.len());
                        }
                    }
                }
            }
            None => {
                stats.frames_flooded += 1;
                let (Some(clear), Some(copy)) = (
                    buf.bytes().get(HEADROOM..clear_end),
                    flood.get_mut(HEADROOM..clear_end),
                ) else {
                    return Err(DropReason::BadDeviceFrame);
                };
                copy.copy_from_slice(clear);
                peers.for_each_verified(|peer, traffic| {
                    // Each seal encrypts the copy in place: restore the clear bytes first.
                    if let (Some(clear), Some(copy)) = (
                        buf.bytes().get(HEADROOM..clear_end),
                        flood.get_mut(HEADROOM..clear_end),
                    ) {
                        copy.copy_from_slice(clear);
                    }
                    if let Ok(range) = sessions.seal(now, peer, flood, SWITCH_AT, 1 + len) {
                        if let Some(datagram) = flood.get(range) {
                            if tx.send(stats, peer, datagram, false) {
                                traffic.count_sent(datagram.len());
                            }
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Identity mode: starts the handshakes that sealing asked for.
    fn flush_handshakes(&mut self, now: Instant) {
        let Node {
            sessions: Some(sessions),
            tx,
            stats,
            ..
        } = self
        else {
            return;
        };
        if sessions.has_wanted() {
            sessions.flush(now, &mut |to, bytes| {
                tx.send(stats, to, bytes, true);
            });
        }
    }

    /// Identity mode: replaces the trusted keys (SIGHUP). The sessions of keys no longer
    /// trusted are dropped at once and their addresses removed from the peers; returns how
    /// many addresses were removed. Does nothing in the other modes.
    pub fn set_trusted(&mut self, now: Instant, trusted: TrustedKeys) -> usize {
        let Some(sessions) = &mut self.sessions else {
            return 0;
        };
        let addrs = sessions.set_trusted(trusted);
        for addr in addrs.iter() {
            // A --connect address stays in the contacts (with back-off), so that it comes back
            // if its key is trusted again; its handshakes meanwhile get no answer.
            self.remove_peer(now, *addr, "its key is no longer trusted");
        }
        addrs.len()
    }

    /// Identity mode: the sessions (keys, counters); `None` in the other modes.
    pub fn sessions(&self) -> Option<&Sessions> {
        self.sessions.as_deref()
    }

    /// Runs the timers: expires peers and MAC entries, contacts queued addresses, gossips.
    /// Call it whenever `now >= self.next_deadline()`; calling it more often is harmless.
    pub fn housekeep(&mut self, now: Instant) {
        self.next_housekeep = now + HOUSEKEEP_INTERVAL;
        self.now = now;

        let mut expired = core::mem::take(&mut self.targets);
        expired.clear();
        let unverified_timeout = UNVERIFIED_TIMEOUT.min(self.config.peer_timeout);
        self.peers.collect_expired(
            now,
            self.config.peer_timeout,
            unverified_timeout,
            &mut expired,
        );
        for addr in expired.iter() {
            self.remove_peer(now, *addr, "timed out");
        }
        self.targets = expired;

        self.switch.expire(now, |vlan, mac, peer| {
            debug!("{mac} on {vlan} at {peer} expired");
        });

        self.contact_due(now);

        let keepalive = self.config.keepalive();
        if self
            .trickle
            .poll(now, GOSSIP_INTERVAL_MIN, keepalive, GOSSIP_REDUNDANCY)
        {
            self.gossip(now);
        }
        self.send_keepalives(now, keepalive);
        self.send_follow_ups(now);
        self.advance_rollover(now);
        if let Node {
            sessions: Some(sessions),
            tx,
            stats,
            ..
        } = self
        {
            sessions.housekeep(now, &mut |to, bytes| {
                tx.send(stats, to, bytes, true);
            });
        }
    }

    /// Keyed mode: starts a rotation to `next.key` (see [`KEY_ROLLOVER`] and [`KEY_GRACE`]).
    /// At once, new sender sessions are opened under the new key as well as the old one; after
    /// [`KEY_ROLLOVER`] the node seals with the new key in the session `next.session` (made by
    /// the caller like the first one: the time now, then 8 fresh random bytes); after a further
    /// [`KEY_GRACE`] the old key is retired. The phases advance in [`Node::housekeep`]. A key
    /// equal to the newest one, or any key while a rotation is under way, changes nothing.
    pub fn rekey(&mut self, now: Instant, next: Keyed) -> Rekey {
        let (Some((_, opener)), Some(current)) = (&mut self.crypto, &self.config.keyed) else {
            return Rekey::NotKeyed;
        };
        let newest = match &self.rollover {
            Some(Rollover::Opening { next, .. }) => &next.key,
            _ => &current.key,
        };
        if *newest == next.key {
            return Rekey::Unchanged;
        }
        if self.rollover.is_some() {
            return Rekey::Busy;
        }
        opener.add_key(&next.key);
        opener.refuse_session(next.session);
        info!(
            "key rotation: new key; new sessions open under the old and the new key; sealing \
             with the old key for another {} s",
            KEY_ROLLOVER.as_secs()
        );
        self.rollover = Some(Rollover::Opening {
            next,
            until: now + KEY_ROLLOVER,
        });
        Rekey::Started
    }

    /// Moves a key rotation on to its next phase when its time has come.
    fn advance_rollover(&mut self, now: Instant) {
        let due = match &self.rollover {
            Some(Rollover::Opening { until, .. } | Rollover::Sealing { until }) => now >= *until,
            None => false,
        };
        if !due {
            return;
        }
        match self.rollover.take() {
            Some(Rollover::Opening { next, .. }) => {
                if let Some((sealer, _)) = &mut self.crypto {
                    *sealer = Sealer::new(&next.key, next.session);
                }
                self.config.keyed = Some(next);
                self.rollover = Some(Rollover::Sealing {
                    until: now + KEY_GRACE,
                });
                info!(
                    "key rotation: sealing with the new key now; the old key is still accepted \
                     for {} s",
                    KEY_GRACE.as_secs()
                );
            }
            Some(Rollover::Sealing { .. }) => {
                let forgotten = self
                    .crypto
                    .as_mut()
                    .map_or(0, |(_, opener)| opener.retire_old_key());
                info!(
                    "key rotation done: the old key is retired ({forgotten} sender sessions \
                     under it forgotten)"
                );
            }
            None => {}
        }
    }

    /// Whether a key rotation is under way (from [`Node::rekey`] until the old key is retired).
    pub fn is_rotating_key(&self) -> bool {
        self.rollover.is_some()
    }

    fn contact_due(&mut self, now: Instant) {
        let rate = self.config.contacts_per_second.max(1) as u64;
        let budget = self.contact_limiter.available(now, rate);
        let mut due = core::mem::take(&mut self.targets);
        due.clear();
        self.contacts
            .take_due(now, usize::try_from(budget).unwrap_or(usize::MAX), &mut due);
        self.contact_limiter.take(due.len() as u64);
        for addr in due.iter() {
            debug!("asking {addr} for its peer list");
            self.send_control(*addr, Kind::GetPeers);
        }
        self.targets = due;
    }

    /// True the first time a table of this kind is found full: warn then, only count later.
    fn first_time_full(&mut self, which: u8) -> bool {
        let first = self.full_warned & which == 0;
        self.full_warned |= which;
        first
    }

    /// The keepalive sweep: goes round the verified peers in turn, twice per keepalive K, and
    /// sends an empty peer list to each one that has been sent nothing for a while.
    ///
    /// With H the housekeeping interval, a sweep takes P = (K − 2H) / 2 and a peer is sent a
    /// keepalive when it has been sent nothing for S = P + H. Visits to one peer come P apart,
    /// give or take H, so: a peer sent nothing else gets a keepalive every other visit, every
    /// 2P = K − 2H; and after a keepalive or a gossip list the next one comes at most
    /// S + P + H = K later (plus however late a housekeeping runs). A gossip list thus stands
    /// in for a keepalive. Below K = 4H the rule is simply a keepalive at every visit, one per
    /// K − H.
    fn send_keepalives(&mut self, now: Instant, keepalive: Duration) {
        let h = HOUSEKEEP_INTERVAL;
        let (period, idle) = if keepalive >= h * 4 {
            let period = (keepalive - h * 2) / 2;
            (period, period + h)
        } else {
            (keepalive.saturating_sub(h).max(h), Duration::ZERO)
        };
        let due = self.keepalives.due(now, self.peers.verified_len(), period);
        if due == 0 {
            return;
        }
        let mut targets = core::mem::take(&mut self.targets);
        targets.clear();
        self.peers
            .sweep(&mut self.sweep_cursor, due, now, idle, &mut targets);
        for to in targets.iter().copied() {
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, _)) = emit_peers(self.config.token, core::iter::empty(), buf) {
                self.send_control_buffer(to, len);
            }
        }
        self.targets = targets;
    }

    /// One gossip round: the next ⌈√n⌉ peers of a round-robin in random order each get a list
    /// of ⌈√n⌉ peers (round-robin). The round-robin reaches every peer in turn (which matters
    /// while the mesh forms: a peer that lost our answer hears from us again soon); its random
    /// order keeps the lists of many nodes spread evenly over the mesh (in address order, nodes
    /// that started together gossip to the same peers at the same time, and suppression works
    /// badly).
    fn gossip(&mut self, now: Instant) {
        let n = self.peers.verified_len();
        if n == 0 {
            return;
        }
        let share = ceil_sqrt(n);
        let mut targets = core::mem::take(&mut self.targets);
        targets.clear();
        let trickle = &mut self.trickle;
        self.peers.shuffled_round_robin(
            &mut self.gossip_position,
            share,
            || trickle.next_random(),
            &mut targets,
        );
        let mut entries = core::mem::take(&mut self.entries);
        for to in targets.iter().copied() {
            entries.clear();
            self.peers
                .round_robin(&mut self.share_cursor, share + 1, &mut entries);
            let list = entries
                .iter()
                .copied()
                .filter(move |a| *a != to)
                .take(share);
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, count)) = emit_peers(self.config.token, list, buf) {
                debug!("gossip: sending {count} peers to {to}");
                self.send_control_buffer(to, len);
                self.peers.note_sent(to, now);
            }
        }
        self.entries = entries;
        self.targets = targets;
    }

    /// Sends the datagrams the socket queued and writes the frames the device held back
    /// ([`Socket::flush`], [`Device::flush`]). Call it after each batch of input, before
    /// waiting for more, so that nothing is held longer than one batch and a lone frame goes
    /// out at once. Failures are counted like those of single sends and writes (the queued
    /// datagrams were counted as sent when queued, and are moved to the failure counters).
    // HOT PATH
    pub fn flush(&mut self) {
        if let Err(e) = self.tx.socket.flush() {
            self.stats.datagrams_sent = self.stats.datagrams_sent.saturating_sub(e.dropped);
            if e.error.kind() == io::ErrorKind::WouldBlock {
                self.stats.send_would_block += e.dropped;
            } else {
                self.stats.send_errors += e.dropped;
            }
            let bit = error_bit(e.error.kind());
            if self.tx.warned & bit == 0 {
                self.tx.warned |= bit;
                warn!(
                    "sending {} queued datagrams failed: {} (counted; further failures of this kind are logged at debug)",
                    e.dropped, e.error
                );
            } else {
                debug!("sending {} queued datagrams failed: {}", e.dropped, e.error);
            }
        }
        if let Err(e) = self.device.flush() {
            self.stats.frames_to_device = self.stats.frames_to_device.saturating_sub(e.dropped);
            for _ in 0..e.dropped {
                self.stats.count_drop(DropReason::DeviceWrite);
            }
            if !self.device_warned {
                self.device_warned = true;
                warn!("writing held frames to the device failed: {} (counted as drops; further failures are logged at debug)", e.error);
            } else {
                debug!(
                    "writing {} held frames to the device failed: {}",
                    e.dropped, e.error
                );
            }
        }
    }

    /// When [`Node::housekeep`] should run next.
    pub fn next_deadline(&self) -> Instant {
        self.next_housekeep
    }

    /// Forgets a `--connect` address (e.g. a DNS name now resolves elsewhere): it is no longer
    /// retried. If it is a peer it stays one until it times out or closes, like any other.
    pub fn remove_connect(&mut self, addr: SocketAddr) {
        let addr = canonical(addr);
        self.config.connect.retain(|a| *a != addr);
        if self.contacts.get(addr).is_some_and(|c| c.is_configured) {
            self.contacts.remove(addr);
        }
    }

    /// True if `addr` is a verified peer.
    pub fn is_peer(&self, addr: SocketAddr) -> bool {
        self.peers.is_verified(canonical(addr))
    }

    /// Sends Close to every peer (the spec's shutdown rule) and forgets them.
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
        let mut peers = core::mem::take(&mut self.targets);
        peers.clear();
        peers.extend(self.peers.verified_addrs());
        for addr in peers.iter() {
            self.send_control(*addr, Kind::Close);
        }
        info!("sent close to {} peers", peers.len());
        peers.clear();
        peers.extend(self.peers.addrs());
        for addr in peers.iter() {
            self.peers.remove(*addr);
            self.switch.forget_peer(*addr);
        }
        self.targets = peers;
        self.next_housekeep = now + HOUSEKEEP_INTERVAL;
    }

    /// The current gossip interval (1 s right after the peer set grew, doubling up to the
    /// keepalive).
    pub fn gossip_interval(&self) -> Duration {
        self.trickle.interval()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of verified peers: those that are sent data.
    pub fn peer_count(&self) -> usize {
        self.peers.verified_len()
    }

    /// The peer table.
    pub fn peers(&self) -> &PeerTable {
        &self.peers
    }

    /// The MAC table.
    pub fn switch_table(&self) -> &SwitchTable {
        &self.switch
    }

    /// Addresses waiting to be contacted.
    pub fn contacts(&self) -> &Contacts {
        &self.contacts
    }

    /// The configuration in force (`connect` holds the usable `--connect` addresses).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The socket.
    pub fn socket(&self) -> &S {
        &self.tx.socket
    }

    /// The socket, mutably (the daemon receives on it).
    pub fn socket_mut(&mut self) -> &mut S {
        &mut self.tx.socket
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (the daemon reads frames from it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the node sends: (time, to, length, switch byte).
    #[derive(Default)]
    struct Recorder {
        now: Instant,
        sent: Vec<(Instant, SocketAddr, usize, u8)>,
    }

    impl Socket for Recorder {
        fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
            let kind = datagram.get(wire::TOKEN_LEN).copied().unwrap_or(0xff);
            self.sent.push((self.now, to, datagram.len(), kind));
            Ok(())
        }
    }

    struct NoDevice;

    impl Device for NoDevice {
        fn write_frame(&mut self, _frame: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }

    /// A node with `n` verified peers (198.18.1.k:3210, each answered our "get peer list" with an
    /// empty list) at time 10 s, and its peer timeout set to `timeout`.
    fn node_with_peers(n: u8, timeout: Duration) -> (Node<Recorder, NoDevice>, Vec<SocketAddr>) {
        let token = Token::new(5).unwrap();
        let mut config = Config::new(token);
        config.peer_timeout = timeout;
        let mut now = Instant::from_secs(10);
        let mut node = Node::new(config, Recorder::default(), NoDevice, now);
        let peers: Vec<SocketAddr> = (1..=n)
            .map(|k| SocketAddr::from(([198, 18, 1, k], 3210)))
            .collect();
        for p in &peers {
            node.add_connect(now, *p);
        }
        node.housekeep(now);
        let mut answer = [0u8; 16];
        let (len, _) = emit_peers(token, core::iter::empty(), &mut answer).unwrap();
        for p in &peers {
            let mut d = answer;
            node.on_datagram(now, *p, &mut d[..len]).unwrap();
        }
        assert_eq!(node.peer_count(), usize::from(n));
        now += Duration::from_secs(1);
        node.socket_mut().now = now;
        node.socket_mut().sent.clear();
        (node, peers)
    }

    /// For each peer, the messages it was sent in order: (time, length).
    fn per_peer(node: &Node<Recorder, NoDevice>, p: SocketAddr) -> Vec<(Instant, usize)> {
        let sent = &node.socket().sent;
        sent.iter()
            .filter(|s| s.1 == p)
            .map(|s| (s.0, s.2))
            .collect()
    }

    #[test]
    fn every_peer_hears_from_us_at_least_once_per_keepalive_and_keepalives_are_empty_lists() {
        let timeout = Duration::from_secs(120);
        let keepalive = Duration::from_secs(30);
        let (mut node, peers) = node_with_peers(7, timeout);
        let start = node.socket().now;
        let mut now = start;
        // housekeeping not on whole seconds, as in a real loop, and each one 3 ms late
        let step = Duration::from_millis(1_003);
        let mut answer = [0u8; 16];
        let (len, _) =
            emit_peers(Token::new(5).unwrap(), core::iter::empty(), &mut answer).unwrap();
        // 20 keepalive periods; the peers keep talking to us (empty lists), so none times out
        while now < start + keepalive * 20 {
            node.socket_mut().now = now;
            node.housekeep(now);
            for p in &peers {
                let mut d = answer;
                node.on_datagram(now, *p, &mut d[..len]).unwrap();
            }
            now += step;
        }
        assert_eq!(node.peer_count(), peers.len());
        assert!(
            node.socket().sent.iter().all(|s| s.3 == 1),
            "only peer lists"
        );
        // K = 30 s: the sweep takes P = 14 s, and a keepalive goes to a peer sent nothing for
        // S = 15 s; so the longest silence is S + P + one housekeeping step
        let bound = keepalive + (step - HOUSEKEEP_INTERVAL);
        for p in &peers {
            let msgs = per_peer(&node, *p);
            let mut last = start;
            for (at, len) in &msgs {
                assert!(*len >= 10);
                let gap = at.saturating_duration_since(last);
                assert!(gap <= bound, "{p} waited {gap:?} (keepalive {keepalive:?})");
                last = *at;
            }
            let gap = now.saturating_duration_since(last);
            assert!(gap <= bound, "{p} waited {gap:?} at the end");
            // one keepalive about every 2P = 28 s, when nothing else was sent: 600 / 28 = 21.4
            let empty = msgs.iter().filter(|m| m.1 == 10).count();
            assert!(
                (15..=22).contains(&empty),
                "{p}: {empty} keepalives in 20 keepalive periods"
            );
        }
    }

    #[test]
    fn gossip_lists_stand_in_for_keepalives_and_suppression_quiets_steady_rounds() {
        let keepalive = Duration::from_secs(60);
        let (mut node, peers) = node_with_peers(16, Duration::from_secs(1800));
        let token = Token::new(5).unwrap();
        let start = node.socket().now;
        let mut now = start;
        // a peer names others to us (nothing new): consistent lists, one per 5 s
        let mut list = [0u8; 128];
        let (len, _) = emit_peers(token, peers.iter().copied().take(4), &mut list).unwrap();
        let mut rounds_in_last_half = 0;
        while now < start + keepalive * 20 {
            node.socket_mut().now = now;
            let before = node.socket().sent.len();
            node.housekeep(now);
            let gossip = node.socket().sent[before..]
                .iter()
                .filter(|s| s.2 > 10)
                .count();
            if now >= start + keepalive * 10 && gossip > 0 {
                rounds_in_last_half += 1;
            }
            if (now.as_millis() / 1000) % 5 == 0 {
                let mut d = list;
                node.on_datagram(now, peers[15], &mut d[..len]).unwrap();
            }
            now += Duration::from_secs(1);
        }
        assert_eq!(node.peer_count(), peers.len());
        assert_eq!(rounds_in_last_half, 0, "steady rounds are suppressed");
        let sent = &node.socket().sent;
        // the early rounds (intervals of 1, 2, 4, 8, 16, 32 s) went to 4 peers each, with 4
        // entries (never the receiver itself)
        let lists: Vec<_> = sent.iter().filter(|s| s.2 > 10).collect();
        assert!(lists.iter().all(|s| s.2 == 10 + 4 * 6));
        assert_eq!(lists.len(), 6 * 4);
        // K = 60 s: P = 29 s, S = 30 s. A keepalive goes only to a peer sent nothing, gossip
        // included, for S; so a gossip list stands in for the next keepalive. And nobody waits
        // longer than K.
        let idle = Duration::from_secs(30);
        let mut keepalives = 0;
        for p in &peers {
            let mut last = start;
            for (i, (at, len)) in per_peer(&node, *p).into_iter().enumerate() {
                let gap = at.saturating_duration_since(last);
                assert!(gap <= keepalive, "{p} waited {gap:?}");
                if len == 10 && i > 0 {
                    assert!(
                        gap >= idle,
                        "{p}: a keepalive only {gap:?} after the last list"
                    );
                }
                keepalives += usize::from(len == 10);
                last = at;
            }
        }
        // one per peer about every 2P = 58 s: 16 × 1200 / 58 = 331
        assert!(
            keepalives <= 16 * 1200 / 58 + 16,
            "{keepalives} keepalives to 16 peers in 20 minutes"
        );
    }

    #[test]
    fn keepalive_is_an_empty_peer_list_of_ten_bytes() {
        let mut buf = [0u8; 16];
        let (len, count) =
            emit_peers(Token::new(5).unwrap(), core::iter::empty(), &mut buf).unwrap();
        assert_eq!((len, count), (10, 0));
        assert_eq!(&buf[7..10], &[1, 0, 0]);
    }

    #[test]
    fn keepalive_is_a_quarter_of_the_timeout_capped_at_a_minute() {
        let mut c = Config::new(Token::default());
        assert_eq!(c.keepalive(), KEEPALIVE_MAX);
        c.peer_timeout = Duration::from_secs(20);
        assert_eq!(c.keepalive(), Duration::from_secs(5));
        c.peer_timeout = Duration::from_secs(1);
        assert_eq!(c.keepalive(), GOSSIP_INTERVAL_MIN);
    }
}
