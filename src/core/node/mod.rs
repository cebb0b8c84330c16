//! [`Node`]: everything the spec says an ethcloud node does, with no I/O of its own.
//!
//! Owns the behaviour: token check, MAC learning, unicast or flood, add-on-hear peers, answering
//! and sending "get peer list", gossip of √n peer subsets, timeouts, Close. It writes through the
//! [`Socket`] and [`Device`] traits and reads time only from the `now` it is given, so the daemon
//! and the simulator drive the very same code. It must not touch the OS, a clock or threads.
//!
//! This file is the facade: the [`Node`] struct, its [`Config`] and the keyed and identity
//! set-ups, the constants, [`Node::new`] and the accessors. The behaviour is split by
//! responsibility, each file an `impl Node` block of its own that uses the fields and the
//! helpers of the others but owns its part:
//! - `forward.rs`, the hot path: a frame from the device to one peer or to all (`on_frame`),
//!   and a frame from a peer to the device (`deliver`);
//! - `receive.rs`: a datagram from the socket: token, opening, handshakes, and what each kind
//!   of message leads to;
//! - `verify.rs`: verifying new peers: the challenge, the amplification bound, follow-ups;
//! - `mesh.rs`: mesh upkeep: housekeeping, `--connect` and the contact queue, keepalives,
//!   gossip, the peer lists we send, learning addresses, removing peers, shutdown;
//! - `seal.rs`: the keyed and identity modes' glue: sealing control messages, key rotation,
//!   keyed mode's AEGIS choice, the trusted keys, starting handshakes;
//! - `relay.rs`: the relay extension: Hellos, frames sent and received through a relay,
//!   relaying for others, the relays' key queries;
//! - `tx.rs`: the send side: the socket, counting and warning once per kind of failure,
//!   [`Node::flush`];
//! - `view.rs`: the `--threads` lanes' snapshot of the node, and what they hand back.
//!
//! The choices made where the spec is silent are listed with the code that makes them: how a
//! new peer is verified and what an unverified address may be sent in `verify.rs`; contacts,
//! `--connect` retries, keepalives, gossip and the lists we answer with in `mesh.rs`.

mod forward;
mod mesh;
mod receive;
mod relay;
mod seal;
#[cfg(test)]
mod tests;
pub(crate) mod tx;
mod verify;
mod view;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::buf::BUF_LEN;
use crate::crypto::{self, Key, Opener, Sealer};
use crate::identity::{handshake, IdentityConfig, SecretKey, Sessions, TrustedKeys};
use crate::io::{Device, Socket};
use crate::limit::{LogBudget, RateLimiter, SharedBudget};
pub use crate::limit::{LOG_BUDGET, LOG_WINDOW};
use crate::peers::{self, canonical, Contacts, PeerTable, Sweep, Trickle};
use crate::relay::RelayTable;
use crate::stats::Stats;
use crate::switch::{self, SwitchTable};
use crate::time::Instant;
use crate::wire::{self, peers::MAX_PEER_LIST_BODY_LEN, Token, HEADER_LEN};

use mesh::trickle_seed;
use seal::Rollover;
use tx::Tx;

/// How often [`Node::housekeep`] wants to run.
pub const HOUSEKEEP_INTERVAL: Duration = Duration::from_secs(1);
/// A kind of send or device-write failure warned about once is warned about again after this
/// long (the ones between are logged at debug, and all counted): a fault at boot must not
/// hide another one weeks later.
pub const WARN_AGAIN_AFTER: Duration = Duration::from_secs(600);
/// The shortest gossip interval, used right after the peer set grew.
pub const GOSSIP_INTERVAL_MIN: Duration = Duration::from_secs(1);
/// Without `--keepalive`, every peer hears from us at least this often (or every quarter of the
/// peer timeout, if shorter), which keeps NAT mappings open; it is then also the longest gossip
/// interval. `--keepalive` sets both, up to half the peer timeout.
pub const KEEPALIVE_MAX: Duration = Duration::from_secs(60);
/// Trickle's redundancy constant k: at the longest interval, a gossip round is skipped if this
/// many peer lists that taught us nothing new arrived in the interval before it.
pub const GOSSIP_REDUNDANCY: u32 = 2;
/// A peer list verifies its sender if we asked that address for it at most this long ago.
pub const ANSWER_WINDOW: Duration = Duration::from_secs(30);
/// A peer added less than [`ANSWER_WINDOW`] / 3 ago that asks for our list is (usually)
/// checking us, and one we verify by its answer still has to hear a list of ours; either is
/// sent one empty peer list this long after, whatever was sent to it since (see
/// `Node::follow_up`).
pub const FOLLOW_UP_DELAY: Duration = Duration::from_secs(6);
/// An unverified peer is sent at most one "get peer list" per this interval.
pub const CHALLENGE_INTERVAL: Duration = Duration::from_secs(5);
/// What we send an unverified address in answer to one datagram is at most this many times as
/// large as that datagram.
pub const AMPLIFICATION_FACTOR: usize = 3;
/// A verified peer's "get peer list" is answered with our whole list at most once per this
/// interval: in the clear protocol anyone who forges a source address can get it verified
/// (the seed's request carries no nonce), and an 8-byte request may bring up to 6 KB.
pub const LIST_ANSWER_INTERVAL: Duration = Duration::from_secs(1);
/// Bytes a second of whole peer lists sent in answer to requests, to all peers together.
pub const LIST_ANSWER_RATE: u64 = 1 << 20;
/// With the peer table full of verified peers, a `--connect` address that speaks gets the
/// room of the peer heard from least recently, at most once per this interval.
pub const CONFIGURED_ROOM_INTERVAL: Duration = Duration::from_secs(1);
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
    /// own device, where each `--threads` lane keeps a bucket of its own for its queue);
    /// `None` for no limit. Frames over the limit are dropped and counted.
    pub broadcast_limit: Option<u64>,
    /// Every peer hears from us at least this often (`--keepalive`), which also keeps NAT
    /// mappings open; `None` for a quarter of `peer_timeout`, between
    /// [`GOSSIP_INTERVAL_MIN`] and [`KEEPALIVE_MAX`].
    pub keepalive: Option<Duration>,
    /// The network key and this run's session, for the keyed mode; `None` for the seed's
    /// cleartext protocol.
    pub keyed: Option<Keyed>,
    /// Per-node identity: our private key, the keys we trust and the session timers; `None`
    /// unless `--private-key` is given. Excludes `keyed`.
    pub identity: Option<IdentitySetup>,
    /// Take part in relaying (`--no-relay` turns it off): announce it in a Hello, send through
    /// relays to addresses we cannot reach directly, accept relayed frames. Only in the sealed
    /// modes (`keyed` or `identity`); the seed's protocol never relays.
    pub relay: bool,
    /// The most bytes per second of frames we pass on for others as a relay (`--relay-rate`),
    /// each counted as the whole datagram it makes, UDP and IP headers included; 0: we do not
    /// relay for others (but may still use relays).
    pub relay_rate: u64,
    /// Sealed modes: tell peers (in the Hello) that we open AEGIS-128L, and seal with it to
    /// the peers that say so (`--no-aegis` turns both off). See [`crate::crypto::Cipher`].
    pub aegis: bool,
    /// Sealed modes, with `aegis`: tell peers that AEGIS-128X4 pays here (512-bit vector AES),
    /// and seal with it to the peers that say the same (in keyed mode frames only while every
    /// verified peer does). Default: whether this CPU has it
    /// ([`crate::crypto::has_vector_aes`]); `--no-aegis` turns it off with `aegis`.
    pub aegis_x4: bool,
    /// Keyed mode: start our counters at [`crate::crypto::ECHO_COUNTER`], answer a Challenge
    /// with an Echo, and verify an address that speaks in a session of such a sender only by
    /// its Echo (see `verify.rs`). Always on in the daemon; off, the node acts as a keyed node
    /// of an earlier version (what the tests of mixed networks use).
    pub keyed_echo: bool,
}

/// How long an address whose node spoke from a new one has to be heard from again (it is
/// asked with a Hello that asks for an answer, flag 0x01) before it is dropped as moved (a node
/// that has both addresses answers at both, and keeps both); also how long a keyed-mode Close
/// from an unknown process waits for a sign of life of the peer.
pub const MOVE_CHECK: Duration = Duration::from_secs(5);
/// The most addresses checked at once (for a move, silence or a one-way path); past it a move
/// is left to the peer timeout.
pub const MAX_MOVE_CHECKS: usize = 64;

/// How long a silence check lasts. A relaying node names in its lists (answers and gossip)
/// only the peers that take relayed frames and that it heard within
/// `Config::heard_within` (a keepalive interval, at least 60 s, and 10 s: 70 s by
/// default), and says so in its Hello (flag 0x80): such a list says that its sender still
/// hears them. A verified peer that takes relayed frames and that nothing valid came from for a
/// keepalive interval (at least 60 s) more than that (130 s by default) is *silent*: it is
/// asked for its Hello, again after `HELLO_RETRY`, and then up to [`SILENCE_ASK_RELAYS`]
/// relaying peers that set 0x80 are asked for their lists. It is dropped if nothing comes from
/// it within this long while such a list names it: its direct path broke, and that relay still
/// reaches it (the relay carries its frames from then on, instead of nobody until the peer
/// timeout). A peer that stopped is named by no such relay by then (its last datagram to any
/// of them is at most a keepalive younger than its last one to us), so nobody drops it this
/// way. (All of it assumes the same `--keepalive` throughout.)
pub const SILENCE_CHECK: Duration = Duration::from_secs(10);
/// A peer checked for silence or a one-way path is not checked again within this long.
pub const RECHECK_AFTER: Duration = Duration::from_secs(60);
/// Checks for silence or a one-way path hold at most this many of the [`MAX_MOVE_CHECKS`]
/// places, so that they never keep checks of moves out.
pub const MAX_SILENCE_CHECKS: usize = MAX_MOVE_CHECKS / 2;
/// How often the verified peers are looked over for silence (see [`SILENCE_CHECK`]).
pub const SILENCE_SCAN: Duration = Duration::from_secs(5);
/// At most this many relaying peers that set Hello flag 0x80 and are not silent are asked for
/// their lists by a silence check whose first Hello went unanswered (in turn, a different few
/// each time).
pub const SILENCE_ASK_RELAYS: usize = 4;

/// Why an address is being checked (see [`HelloCheck`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    /// Its node (same node id, and with per-node keys the same key) spoke from this address.
    Moved(SocketAddr),
    /// It is silent (see [`SILENCE_CHECK`]).
    Silent,
    /// Its frames came through this relay although it is a direct peer.
    OneWay(SocketAddr),
}

/// An address that was asked for its Hello, and goes unless it answers in time.
#[derive(Clone, Copy, Debug)]
struct HelloCheck {
    old: SocketAddr,
    why: Why,
    /// When it was asked for its Hello.
    asked: Instant,
    /// How many valid datagrams had come from `old` by then: it answered once that count
    /// moved (not "heard since `asked`": one pass over the socket reads datagrams under one
    /// clock reading, so one that came before the ask could pass for an answer).
    heard: u64,
    /// A Hello came from `old` since (a one-way check takes nothing else for an answer: the
    /// peer's own direct tries reach us whichever way the path broke).
    hello: bool,
    /// A relaying peer heard lately that listed `old` since (silence and one-way checks drop
    /// only an address a relay reaches: the route goes through it).
    listed_by: Option<SocketAddr>,
    /// The relays were asked for their lists (once `old` left the first Hello unanswered).
    lists_asked: bool,
}

/// Keyed mode: a verified peer's Close sealed by a process it is not known by (see
/// `Node::on_close`): the peer stays if anything comes from it before `until`, else it goes
/// as closed.
#[derive(Clone, Copy, Debug)]
struct CloseCheck {
    until: Instant,
    /// How many valid datagrams had come from it when the Close came.
    heard: u64,
}

/// Default for [`Config::relay_rate`]: 100 Mbit/s.
pub const DEFAULT_RELAY_RATE: u64 = 100_000_000 / 8;

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
/// cut off. Longer than [`KEY_ROLLOVER`] by 10 s: a peer given SIGHUP 59.9 s after this node
/// switches at its first housekeeping after its own 60 s, up to a second later (and lanes
/// later still, by up to 20 ms), so with equal phases this node would retire the old key
/// before that peer stopped sealing with it.
pub const KEY_GRACE: Duration = Duration::from_secs(70);

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
    /// The key is one this node used before in this run; nothing changed. Datagrams
    /// recorded under it would open again (their sessions were forgotten with the key).
    Reused,
}

/// The most keys a keyed node remembers (by fingerprint) as used, to refuse rotating back.
pub const MAX_KEYS_REMEMBERED: usize = 64;

/// How many sessions a keyed node remembers per peer it may have (`max_peers`): a peer's
/// process seals in up to three (one per cipher), and one more leaves room for processes that
/// ended (restarts), which go first when the map is full.
pub const SESSIONS_PER_PEER: usize = 4;

/// How many senders' sessions a keyed node remembers for replay protection by default
/// ([`SESSIONS_PER_PEER`] for each of the default most peers).
pub const MAX_SESSIONS: usize = SESSIONS_PER_PEER * peers::DEFAULT_MAX_PEERS;

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
            keepalive: None,
            keyed: None,
            identity: None,
            relay: true,
            relay_rate: DEFAULT_RELAY_RATE,
            aegis: true,
            aegis_x4: crate::crypto::has_vector_aes(),
            keyed_echo: true,
        }
    }

    /// Whether `addr` is one of ours: a binary search, as the node keeps `own_addrs` sorted
    /// (`normalize_own`, at start and at each update); a host may have many addresses, and
    /// this runs for every datagram.
    fn is_own(&self, addr: SocketAddr) -> bool {
        self.own_addrs.binary_search(&addr).is_ok()
    }

    fn can_reach(&self, addr: SocketAddr) -> bool {
        match addr {
            SocketAddr::V4(_) => self.accepts_ipv4,
            SocketAddr::V6(_) => self.accepts_ipv6,
        }
    }

    /// How long a live peer goes at most without being heard: a keepalive interval (ours, or
    /// the default's, 60 s, if that is longer: a node with a short `--keepalive` must not take
    /// every peer of the defaults for silent) and
    /// [`SILENCE_SLACK`](crate::identity::session::SILENCE_SLACK). Sessions of per-node keys
    /// renew after that long without a word; relaying nodes list only the peers heard within
    /// it (see [`SILENCE_CHECK`]).
    fn heard_within(&self) -> Duration {
        self.keepalive().max(KEEPALIVE_MAX) + crate::identity::session::SILENCE_SLACK
    }

    /// How often every peer must hear from us.
    fn keepalive(&self) -> Duration {
        self.keepalive
            .unwrap_or_else(|| (self.peer_timeout / 4).clamp(GOSSIP_INTERVAL_MIN, KEEPALIVE_MAX))
            .max(GOSSIP_INTERVAL_MIN)
    }
}

/// One ethcloud node: a learning switch whose ports are peers.
pub struct Node<S: Socket, D: Device> {
    config: Config,
    /// Keyed mode: our sealer (shared with the `--threads` lanes) and the opener with its
    /// replay windows.
    crypto: Option<(Arc<Sealer>, Opener)>,
    /// Keyed mode with AEGIS-128L: the second sealer and the peers that open it.
    keyed_aegis: Option<seal::KeyedAegis>,
    /// Keyed mode: the sender session of the datagram opened last (its sender process:
    /// [`crypto::sender_process`]).
    last_session: [u8; crypto::SESSION_LEN],
    /// Keyed mode: the datagram opened last came from a sender that answers a Challenge
    /// ([`crate::crypto::sender_echoes`]), so only its Echo verifies its address.
    sender_echoes: bool,
    /// Keyed mode: the sender process each verified peer was verified in, and the same by
    /// process: a Challenge sealed by a process that speaks to us from verified addresses is
    /// echoed only to one of them (`verify.rs`).
    process_of: HashMap<SocketAddr, u128>,
    by_process: BTreeSet<(u128, SocketAddr)>,
    /// Keyed mode: verified peers whose noted process an Echo showed replaced by another at
    /// another address of the same peer's (a dual-stack node restarted): that process, whose
    /// Challenge from here is echoed (`verify.rs`). At most one per verified peer.
    heir_of: HashMap<SocketAddr, verify::Heir>,
    /// Keyed mode: verified peers whose process, when an Echo showed it, was one we knew at
    /// another address too, not as their heir (another member's, taken for theirs: man page
    /// item 4's gap; or theirs, taken for the other's): their next change of process makes
    /// no heirs (`verify.rs`).
    disputed: HashSet<SocketAddr>,
    /// Keyed mode: the peers whose process was noted from their Echo, and so pinned in the
    /// opener ([`Opener::pin_process`]); a peer of an earlier version, verified by a peer list
    /// (which could be a recording), pins nothing.
    pinned_by: HashSet<SocketAddr>,
    /// Keyed mode: the datagram opened last was the first of a session the opener did not
    /// remember ([`Opener::opened_new_session`]).
    new_session: bool,
    /// Keyed mode: verified peers heard from a sender process other than the one noted for
    /// them, whose new process is not confirmed by an Echo yet: each of their datagrams, frames
    /// too, may draw the process Challenge again (at its rate), so a lost Challenge or Echo
    /// is asked again. At most one entry per verified peer.
    unconfirmed: HashSet<SocketAddr>,
    /// Keyed mode: Challenges sent so far (what each one's nonce is made from).
    echo_sequence: u64,
    /// Keyed mode: unverified peers owed another Challenge (`Peer::echo_again`), at most
    /// `max_peers`.
    echo_retries: BTreeSet<SocketAddr>,
    /// Keyed mode: moves whenever the sealer of frames is replaced (key rotation, frames
    /// switched to or from AEGIS-128L), for [`Node::forward_generation`].
    sealer_changes: u64,
    /// Keyed mode: the key rotation under way, if any.
    rollover: Option<Rollover>,
    /// Keyed mode: the fingerprints of the keys used in this run, oldest first, at most
    /// [`MAX_KEYS_REMEMBERED`].
    keys_used: Vec<[u8; 32]>,
    /// Identity mode: the sessions with each trusted key.
    sessions: Option<Box<Sessions>>,
    /// Identity mode: where a flooded datagram is copied and sealed for each peer.
    flood: Box<[u8]>,
    /// The time of the latest call that gave us one (for the sealing of control messages).
    now: Instant,
    tx: Tx<S>,
    device: D,
    device_warned: bool,
    /// Lines at info about peers and relay routes, which the network can cause: at most
    /// [`LOG_BUDGET`] per [`LOG_WINDOW`] (see `Node::note`).
    log_budget: LogBudget,
    /// Our device completes TCP and UDP checksums left partial (sealed modes, a device that
    /// says so): our Hellos carry the flag 0x20.
    completes_checksums: bool,
    peers: PeerTable,
    switch: SwitchTable,
    contacts: Contacts,
    stats: Stats,
    /// Scratch space for management messages, allocated once.
    control: Box<[u8]>,
    /// Scratch lists for housekeeping, reused.
    targets: Vec<SocketAddr>,
    /// Addresses asked for their Hello, and dropped unless they answer: whose node spoke from
    /// a new one (within [`MOVE_CHECK`]), or silent or one-way peers (within
    /// [`SILENCE_CHECK`], and only where a relay lists them; see `relay.rs`); at most
    /// [`MAX_MOVE_CHECKS`].
    hello_checks: Vec<HelloCheck>,
    /// When the verified peers are next looked over for silence (see [`SILENCE_CHECK`]).
    next_silence_scan: Instant,
    /// When each peer was last checked for silence or a one-way path (see [`RECHECK_AFTER`]);
    /// at most `max_peers`, and pruned with the peer.
    rechecks: BTreeMap<SocketAddr, Instant>,
    /// Where the next silence check starts among the relaying peers it asks for lists.
    relay_ask_cursor: usize,
    /// Keyed mode: peers whose Close came sealed by a process they are not known by, waiting
    /// [`MOVE_CHECK`] for a sign of life; one per verified peer at most, so at most
    /// `max_peers`.
    close_checks: BTreeMap<SocketAddr, CloseCheck>,
    /// Sealed modes: peers asked for their Hello and not heard yet, with when they were last
    /// asked and how many times (see `Node::hello_retries`); at most `max_peers`.
    hello_asked: BTreeMap<SocketAddr, (Instant, u8)>,
    /// When a verified peer last made room for a `--connect` address (see
    /// `Node::room_for_configured`).
    configured_room_at: Option<Instant>,
    /// The addresses of `config.connect`, for lookups (every removal of a peer asks, and
    /// forged addresses can make an eviction per datagram: not a walk of up to 1,024).
    connect_set: HashSet<SocketAddr>,
    /// New peers that asked for our list or that we verified, with when (see
    /// [`FOLLOW_UP_DELAY`]); at most `max_peers` entries.
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
    /// The most verified peers since the gossip timer last settled: only a verification past
    /// it restarts the timer (churn that does not grow the set, such as forged verifications
    /// and forged Close one after the other, must not keep rounds a second apart).
    gossip_high: usize,
    next_housekeep: Instant,
    contact_limiter: RateLimiter,
    device_broadcasts: RateLimiter,
    /// Which "table full" warnings were already given (one each).
    full_warned: u8,
    /// Relaying: who relays, and the addresses we reach through a relay.
    relay: RelayTable,
    /// Bytes per second of frames relayed for others, shared between the hosts that send
    /// them so that none keeps the others out.
    relay_budget: SharedBudget<relay::RelaySender>,
    /// Bytes of whole peer lists sent in answer ([`LIST_ANSWER_RATE`]).
    list_limiter: RateLimiter,
    /// Scratch list of (address, relay) for a flood through relays, reused.
    relay_targets: Vec<(SocketAddr, SocketAddr)>,
    /// Our node id in Hellos: the random half of the keyed session, or the first 8 bytes of
    /// our public key (the same at every address we speak from).
    node_id: u64,
}

const FULL_PEERS: u8 = 1;
const FULL_MACS: u8 = 2;
const FULL_CONTACTS: u8 = 4;

/// The first counter of our keyed sealers: [`crate::crypto::ECHO_COUNTER`] with
/// [`Config::keyed_echo`], else 0 (an earlier version's).
fn first_counter(config: &Config) -> u64 {
    if config.keyed_echo {
        crate::crypto::ECHO_COUNTER
    } else {
        0
    }
}

/// The node id a node announces in its Hellos (0 in the cleartext protocol, which has none).
fn node_id(config: &Config) -> u64 {
    let mut id = [0u8; 8];
    if let Some(identity) = &config.identity {
        id.copy_from_slice(&identity.secret.public_key().0[..8]);
    } else if let Some(keyed) = &config.keyed {
        id.copy_from_slice(&keyed.session[crypto::SESSION_LEN - 8..]);
    }
    u64::from_be_bytes(id)
}

impl<S: Socket, D: Device> Node<S, D> {
    /// A node with no peers yet. Its `--connect` addresses (minus our own) are contacted at the
    /// first [`Node::housekeep`], which [`Node::next_deadline`] asks for at once.
    pub fn new(mut config: Config, socket: S, device: D, now: Instant) -> Self {
        let connect = core::mem::take(&mut config.connect);
        mesh::normalize_own(&mut config.own_addrs);
        let contact_rate = config.contacts_per_second.max(1) as u64;
        let broadcast_rate = config.broadcast_limit.unwrap_or(0);
        let first_counter = first_counter(&config);
        let keyed_aegis = config
            .keyed
            .as_ref()
            .filter(|_| config.aegis)
            .and_then(|k| seal::KeyedAegis::new(k, config.aegis_x4, first_counter));
        let crypto = config.keyed.as_ref().map(|k| {
            let mut opener =
                Opener::new(&k.key, config.max_peers.saturating_mul(SESSIONS_PER_PEER));
            opener.refuse_session(k.session);
            for session in keyed_aegis.iter().flat_map(seal::KeyedAegis::sessions) {
                opener.refuse_session(session);
            }
            let sealer = Sealer::new(&k.key, k.session).starting_at(first_counter);
            (Arc::new(sealer), opener)
        });
        let heard_within = config.heard_within();
        let sessions = config.identity.as_mut().map(|setup| {
            // The seed goes to the sessions and leaves the configuration the node keeps: a
            // copy of it would tell every ephemeral key drawn before the first reseed.
            let seeded = IdentityConfig {
                seed: core::mem::take(&mut setup.config.seed),
                renew_after_silence: heard_within,
                ..setup.config.clone()
            };
            Box::new(Sessions::new(
                handshake::Identity::new(setup.secret.clone()),
                config.token,
                setup.trusted.clone(),
                seeded,
                now,
            ))
        });
        let sealed = sessions.is_some() || crypto.is_some();
        let mut device = device;
        // Every frame a sealed node writes has passed an AEAD tag (`Device::trust_checksums`).
        let completes_checksums = device.trust_checksums(sealed) && sealed;
        let node_id = node_id(&config);
        let control_len = if sealed && config.relay {
            // Room for a relayed frame: the largest datagram and its seal.
            CONTROL_AT + wire::MAX_DATAGRAM_LEN + crypto::TAG_LEN
        } else {
            CONTROL_AT + HEADER_LEN + MAX_PEER_LIST_BODY_LEN + crypto::TAG_LEN
        };
        let flood = if sessions.is_some() {
            vec![0u8; BUF_LEN].into_boxed_slice()
        } else {
            Box::default()
        };
        let mut node = Node {
            crypto,
            keyed_aegis,
            last_session: [0; crypto::SESSION_LEN],
            sender_echoes: false,
            process_of: HashMap::new(),
            by_process: BTreeSet::new(),
            heir_of: HashMap::new(),
            disputed: HashSet::new(),
            pinned_by: HashSet::new(),
            new_session: false,
            unconfirmed: HashSet::new(),
            echo_sequence: 0,
            echo_retries: BTreeSet::new(),
            sealer_changes: 0,
            rollover: None,
            keys_used: config.keyed.iter().map(|k| k.key.fingerprint()).collect(),
            sessions,
            flood,
            now,
            peers: PeerTable::new(config.max_peers),
            switch: SwitchTable::new(
                config.mac_timeout,
                config.max_macs,
                config.max_macs_per_peer,
            ),
            tx: Tx::new(socket, now),
            device,
            device_warned: false,
            log_budget: LogBudget::new(now),
            completes_checksums,
            stats: Stats::default(),
            control: vec![0u8; control_len].into_boxed_slice(),
            targets: Vec::new(),
            hello_checks: Vec::new(),
            next_silence_scan: now + SILENCE_SCAN,
            rechecks: BTreeMap::new(),
            relay_ask_cursor: 0,
            close_checks: BTreeMap::new(),
            hello_asked: BTreeMap::new(),
            configured_room_at: None,
            connect_set: HashSet::new(),
            follow_ups: Vec::new(),
            entries: Vec::new(),
            sweep_cursor: None,
            gossip_position: 0,
            keepalives: Sweep::new(now),
            share_cursor: None,
            list_cursors: [None, None],
            trickle: Trickle::new(now, GOSSIP_INTERVAL_MIN, trickle_seed(&config, now)),
            gossip_high: 0,
            next_housekeep: now,
            contact_limiter: RateLimiter::new(now, contact_rate),
            device_broadcasts: RateLimiter::new(now, broadcast_rate),
            full_warned: 0,
            relay: RelayTable::new(),
            relay_budget: SharedBudget::new(now, config.relay_rate),
            list_limiter: RateLimiter::new(now, LIST_ANSWER_RATE),
            relay_targets: Vec::new(),
            node_id,
            contacts: Contacts::new(config.max_contacts),
            config,
        };
        for addr in connect {
            node.add_connect(now, addr);
        }
        node
    }

    /// True the first time a table of this kind is found full: warn then, only count later.
    fn first_time_full(&mut self, which: u8) -> bool {
        let first = self.full_warned & which == 0;
        self.full_warned |= which;
        first
    }

    /// When [`Node::housekeep`] should run next.
    pub fn next_deadline(&self) -> Instant {
        self.next_housekeep
    }

    /// True if `addr` is a verified peer.
    pub fn is_peer(&self, addr: SocketAddr) -> bool {
        self.peers.is_verified(canonical(addr))
    }

    /// The current gossip interval (1 s right after the peer set grew, doubling up to the
    /// keepalive).
    pub fn gossip_interval(&self) -> Duration {
        self.trickle.interval()
    }

    /// Identity mode: the sessions (keys, counters); `None` in the other modes.
    pub fn sessions(&self) -> Option<&Sessions> {
        self.sessions.as_deref()
    }

    /// Identity mode: the sessions, to seal with them outside the node's own messages (a test
    /// that speaks for this node as a modified one would); `None` in the other modes.
    pub fn sessions_mut(&mut self) -> Option<&mut Sessions> {
        self.sessions.as_deref_mut()
    }

    /// The wall clock, read again by the caller: per-node keys take their handshake
    /// timestamps from it (see [`Sessions::set_wall_clock`]); keyed mode never raises its
    /// floor of forgotten sessions past it (see [`Opener::set_wall_clock_ms`]).
    pub fn set_wall_clock(&mut self, now: Instant, wall_nanos: u64) {
        if let Some(sessions) = &mut self.sessions {
            sessions.set_wall_clock(now, wall_nanos);
        }
        if let Some((_, opener)) = &mut self.crypto {
            opener.set_wall_clock_ms(wall_nanos / 1_000_000);
        }
    }

    /// Per-node keys: mixes `fresh` random bytes into the generators of ephemeral keys and
    /// cookie secrets (see [`Sessions::reseed`]); nothing without per-node keys.
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        if let Some(sessions) = &mut self.sessions {
            sessions.reseed(fresh);
        }
    }

    /// Whether a key rotation is under way (from [`Node::rekey`] until the old key is retired).
    pub fn is_rotating_key(&self) -> bool {
        self.rollover.is_some()
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

    /// The relay state: which peers relay, and the routes through them.
    pub fn relay_table(&self) -> &RelayTable {
        &self.relay
    }

    /// Whether this node takes part in relaying: a sealed mode and `relay` on.
    pub fn relays(&self) -> bool {
        self.config.relay && self.is_sealed()
    }

    /// Whether this node seals its datagrams (a network key or per-node keys).
    pub fn is_sealed(&self) -> bool {
        self.crypto.is_some() || self.sessions.is_some()
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
