//! [`Sessions`]: the identity mode's session table: which trusted key stands behind which
//! address, the data sessions each handshake yields (a [`Sealer`] to send, an [`Opener`] to
//! receive), when to renew them, and the handshakes in flight.
//!
//! Owns the session lifecycle: handshakes are started for addresses we must send to and have
//! no session with, answered only for trusted keys and within a rate limit, renewed on a timer
//! and after a message count, and the keys of a session older than the one before the current
//! are dropped. It performs no I/O (what to send is passed to a `send` callback) and reads no
//! clock: `now` comes from the caller, the wall time of handshake timestamps is derived from the
//! wall time given in [`IdentityConfig`] at start, or in the latest
//! [`Sessions::set_wall_clock`].
//!
//! Rules, in the order a reader of the man page meets them:
//! - A node seals every datagram to an address with the session of the key that answered
//!   there; an address with no session gets nothing but handshake initiations. Datagrams to it
//!   are dropped (and counted) and a handshake is started (at most one round per
//!   [`HANDSHAKE_RETRY`] per address).
//! - The initiator of a handshake must know the responder's key. For an address whose key is
//!   unknown (a `--connect` address, or one learnt from a peer list), one initiation is sent for
//!   each trusted key that has no live session yet, at most [`MAX_PROBES`] per round, starting
//!   where the previous round to that address stopped, and at most [`MAX_PROBES_PER_SECOND`]
//!   in all. When the table of handshakes in flight is full, the oldest probe makes room
//!   before any handshake with a known key does. Initiations aimed at another key fail
//!   the responder's mac1 check and cost it one HMAC.
//! - The responder answers an initiation only after its mac1 is right, the source is within
//!   its rate limit ([`IdentityConfig::handshakes_per_second`] in all and
//!   [`IdentityConfig::handshakes_per_source`] per source IP address), the Noise message
//!   opens, the initiator's key is trusted and its timestamp is newer than the last one
//!   accepted from that key. Otherwise it sends nothing and keeps nothing, except over the
//!   rate limit: there the source gets a cookie reply (`cookie`), and an initiation that
//!   comes back with its mac2 draws on buckets of its own, which forged sources never reach.
//! - The initiator sends an initiation again at once, with mac2, when a cookie reply answers
//!   it, and adds mac2 to its initiations to that address while the cookie is fresh
//!   ([`COOKIE_LIFETIME`](super::cookie::COOKIE_LIFETIME)); never to an address that sent
//!   none, so a node of an earlier version gets the initiation it knows.
//! - A session is renewed by its initiator [`IdentityConfig::rekey_after`] after it was made
//!   (by the responder [`RESPONDER_REKEY_DELAY`] later, should the initiator not do it), or
//!   once it sealed [`IdentityConfig::rekey_after_messages`] packets. It seals nothing past
//!   [`IdentityConfig::rekey_after`] + [`REJECT_SLACK`] or twice the message count, and opens
//!   nothing after that plus [`RECEIVE_GRACE`]. When a new session is made with a key, the one
//!   before it is still opened (the peer may not have switched yet). The receiving half of
//!   the one before that stays until it expires when we completed the new one, and goes at
//!   once when a renewal we answered is confirmed. A session we answered that nothing opened
//!   in after [`HANDSHAKE_RETRY`] (a replayed initiation) is renewed at once.
//! - A session nothing of the peer opened in for [`IdentityConfig::renew_after_silence`]
//!   (the keep-alive interval, at least 60 s, + [`SILENCE_SLACK`]; its responder
//!   [`RESPONDER_REKEY_DELAY`] later) is renewed then; if that renewal goes unanswered, the
//!   key counts as live no more when another address is probed: the peer restarted or
//!   moved. A Close that opened in a session ends the sessions with its key
//!   ([`Sessions::peer_closed`]).

use core::fmt;
use core::ops::Range;
use core::time::Duration;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, info};

use super::cookie::{Cookie, CookieSecret};
use super::handshake::{self, Identity, Initiator};
use super::keys::{PublicKey, TrustedKeys};
use super::random::Random;
use crate::crypto::{self, OpenError, Opener, SealError, Sealer};
use crate::limit::{Host, LogBudget, RateLimiter};
use crate::time::Instant;
use crate::wire::{Token, TOKEN_LEN};

mod handshakes;
mod stats;

use stats::FastMap;
pub use stats::{FastBuildHasher, FastHasher, SessionStats};

/// An address is sent at most one round of initiations per this interval.
pub const HANDSHAKE_RETRY: Duration = Duration::from_secs(5);
/// A handshake not answered within this time is forgotten.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The most initiations sent to one address in one round.
pub const MAX_PROBES: usize = 64;
/// The most handshakes in flight (initiator side).
pub const MAX_PENDING: usize = 1024;
/// The most renewals answered but not yet confirmed that a node holds per key (`next` and the
/// earlier ones): a restarted peer probes each address it knows of ours, and completes
/// whichever answer comes back first.
pub const MAX_UNCONFIRMED: usize = 4;
/// The most probes (initiations to an address whose key is unknown) a second, in all: what
/// peer lists naming many addresses (junk, from a member) can make a node spend on
/// handshakes it starts. Initiations to addresses of known keys (renewals) are not counted.
pub const MAX_PROBES_PER_SECOND: u64 = 1024;
/// The most addresses waiting for a handshake round.
pub const MAX_WANTED: usize = 1024;
/// The most source addresses with a handshake rate bucket of their own.
pub const MAX_SOURCES: usize = 4096;
/// The most address-to-key bindings remembered.
pub const MAX_BINDINGS: usize = 8192;
/// The responder of a session renews it this long after its initiator would have.
pub const RESPONDER_REKEY_DELAY: Duration = Duration::from_secs(30);
/// A session seals nothing this long after it should have been renewed.
pub const REJECT_SLACK: Duration = Duration::from_secs(60);
/// A session opens packets this long after it stopped sealing.
pub const RECEIVE_GRACE: Duration = Duration::from_secs(10);
/// What [`IdentityConfig::renew_after_silence`] adds to the keep-alive interval: a peer's
/// keep-alives may come that much late (a round trip, the housekeeping's second).
pub const SILENCE_SLACK: Duration = Duration::from_secs(10);

/// How the identity mode is set up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityConfig {
    /// Renew a session this long after it was made (120 s by default, as WireGuard).
    pub rekey_after: Duration,
    /// Renew a session once it sealed this many packets.
    pub rekey_after_messages: u64,
    /// Renew a session in which nothing from the peer opened for this long (at most once per
    /// this long): a peer that restarted, or moved, cannot open what we seal in it, and
    /// would otherwise wait for the timer. The node sets the longer of its keep-alive
    /// interval and the default's (60 s), and [`SILENCE_SLACK`], since a live peer sends at
    /// least that often (the default here is that).
    pub renew_after_silence: Duration,
    /// Handshakes answered per second, from all sources together.
    pub handshakes_per_second: u64,
    /// Handshakes answered per second from one source IP address.
    pub handshakes_per_source: u64,
    /// Wall time at `started`, in nanoseconds since the Unix epoch (for handshake timestamps).
    pub wall_start_nanos: u64,
    /// The node's clock reading when `wall_start_nanos` was taken.
    pub started: Instant,
    /// Random bytes from the caller (the OS's, or a simulation's seed): the key under which
    /// handshake indices are drawn, so that nobody who sees some of them can tell the others,
    /// and the seed of the [`Random`] behind ephemeral keys and cookie secrets. (`Debug`
    /// does not show it.)
    pub seed: Seed,
}

/// The 32 random bytes of [`IdentityConfig::seed`]; its `Debug` shows nothing of them, and
/// they are wiped when it goes. They live on the heap, so that moving a configuration (by
/// value, into the node) copies a pointer and leaves no copy of them behind. [`Sessions::new`]
/// takes them out of the configuration it keeps ([`Seed::default`], all zeros, is left).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Seed(pub Box<[u8; 32]>);

impl Drop for Seed {
    fn drop(&mut self) {
        super::keys::wipe(&mut self.0[..]);
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed(..)")
    }
}

impl From<u64> for Seed {
    /// A seed made of one number, for tests and simulations: its 8 bytes, then zeros.
    fn from(n: u64) -> Seed {
        let mut seed = Seed::default();
        seed.0[..8].copy_from_slice(&n.to_le_bytes());
        seed
    }
}

impl IdentityConfig {
    /// The defaults, with the wall time and seed the caller read.
    pub fn new(started: Instant, wall_start_nanos: u64, seed: impl Into<Seed>) -> IdentityConfig {
        IdentityConfig {
            rekey_after: Duration::from_secs(120),
            rekey_after_messages: 1 << 40,
            renew_after_silence: Duration::from_secs(60) + SILENCE_SLACK,
            handshakes_per_second: 500,
            handshakes_per_source: 20,
            wall_start_nanos,
            started,
            seed: seed.into(),
        }
    }
}

/// Whether a sending session that seals nothing from `until` on, with `sealer`, may seal one
/// more packet at `now`: before `until` and under `max_messages` sealed (see the module doc).
/// The one rule for [`Sessions::seal`] and for the `--threads` lanes' copies of the sessions.
// HOT PATH
#[inline]
pub fn may_seal(sealer: &Sealer, until: Instant, max_messages: u64, now: Instant) -> bool {
    now < until && sealer.sealed() < max_messages
}

/// What a handshake message led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeEvent {
    /// We answered an initiation (the response is in `out[..len]`, to be sent back) and hold
    /// a new session with its sender: the current one if `true`, else a renewal that waits for
    /// the initiator's first datagram in it (we seal in the session before until then).
    Answered(usize, bool),
    /// Our initiation was answered: we hold a new session with the sender.
    Completed,
    /// Dropped, for the reason counted in [`SessionStats`].
    Dropped,
    /// An initiation over the rate limit without a proof of its source address: dropped too,
    /// and the cookie reply in `out[..len]` is to be sent back to its source.
    CookieReply(usize),
    /// A cookie reply to one of our initiations: the initiation again, with mac2, is in
    /// `out[..len]`, to be sent back to the reply's source.
    Retried(usize),
}

/// The sending half of a session and what we need to know to renew it.
struct SendSession {
    /// Shared with the `--threads` lanes ([`Sessions::for_each_sending`]); its counter is an
    /// atomic, so the lanes seal in this one session.
    sealer: Arc<Sealer>,
    /// The session's sending key, kept to switch `sealer` to AEGIS-128L
    /// ([`Sessions::peer_opens_aegis`]); `None` once switched, and from the start where this
    /// CPU would not seal AEGIS-128L (no AES instructions).
    switch_key: Option<crypto::Key>,
    recv_session: [u8; crypto::SESSION_LEN],
    made: Instant,
    is_initiator: bool,
    /// Something sealed by the peer opened in this session (its Hello follows the handshake
    /// at once), or we started it. A session we answered that stays unheard may have been
    /// made by a replayed initiation, which nobody completes: `housekeep` renews it after
    /// [`HANDSHAKE_RETRY`].
    heard: bool,
    /// The peer's Hello in this session had the partial-checksum flag (0x20)
    /// ([`Sessions::peer_completes_checksums`]).
    completes_checksums: bool,
    /// The receiving half of the handshake that crossed this one, if one did: the peer's,
    /// which we answered within [`HANDSHAKE_TIMEOUT`] before this one completed (usually
    /// with the same process behind it: a restart within those seconds is not told apart).
    /// The peer seals in that one while we seal in this one, so its Hellos come there
    /// ([`SendSession::speaks_for`]).
    crossed: Option<[u8; crypto::SESSION_LEN]>,
}

impl SendSession {
    /// Whether what the peer says in the session `id` holds for this one: it is this one's
    /// receiving half, or the one whose handshake crossed it.
    fn speaks_for(&self, id: [u8; crypto::SESSION_LEN]) -> bool {
        self.recv_session == id || self.crossed == Some(id)
    }
}

/// A session's receiving half.
struct RecvSession {
    opener: Opener,
    remote: PublicKey,
    made: Instant,
    /// Where its last packet came from: while that stays the same, the address bindings need
    /// no look-up.
    last_from: Option<SocketAddr>,
    /// When a packet last opened in it.
    heard_at: Option<Instant>,
}

/// What we hold per trusted key.
#[derive(Default)]
struct KeyState {
    /// Where the key last answered or sent from.
    addr: Option<SocketAddr>,
    current: Option<SendSession>,
    /// A renewal we answered, not yet confirmed: we keep sealing in `current` until a
    /// datagram of this one opens, which shows that the initiator has it too (its response
    /// may have been lost), and then make it `current`.
    next: Option<SendSession>,
    /// Unconfirmed renewals that `next` replaced, oldest first (with `next`, at most
    /// [`MAX_UNCONFIRMED`]): the initiator may have sent several (to several of our
    /// addresses, or a retry) and completed any, so they are kept, keys and all, until one of
    /// them is confirmed (the others then go) or they expire.
    earlier: Vec<SendSession>,
    /// The receiving session of the session before `current`, and when it was made.
    previous: Option<([u8; crypto::SESSION_LEN], Instant)>,
    /// The newest handshake timestamp accepted from this key.
    last_timestamp: Option<[u8; handshake::TIMESTAMP_LEN]>,
    /// When we last started a renewal with this key.
    last_rekey: Option<Instant>,
}

struct Pending {
    initiator: Initiator,
    addr: SocketAddr,
    sent: Instant,
    /// The initiation as sent, without mac2: a cookie reply's associated data is its mac1,
    /// and a reply has it sent again with mac2.
    message: [u8; handshake::INITIATION_LEN],
    /// Whether a cookie reply already had it sent again (once per initiation).
    retried: bool,
    /// A probe (the key at `addr` was not known): the first to go when the table is full.
    probe: bool,
    /// When the cookie whose mac2 it carried came (at first, or sent again after a cookie
    /// reply); `None` without mac2.
    mac2_cookie: Option<Instant>,
}

impl Pending {
    /// Whether it is still in flight at `now`, to be waited for rather than sent again: sent
    /// within [`HANDSHAKE_RETRY`]. One unanswered for longer (a first initiation lost, or
    /// sent before the other node's socket was up) counts as lost for the rounds and the
    /// renewals, though it is kept until [`HANDSHAKE_TIMEOUT`] for a late answer.
    fn in_flight(&self, now: Instant) -> bool {
        now < self.sent + HANDSHAKE_RETRY
    }
}

/// The identity mode's sessions. See the module doc.
pub struct Sessions {
    identity: Identity,
    token: Token,
    trusted: TrustedKeys,
    /// The trusted keys, sorted, for probing in a fixed order.
    probe_order: Vec<PublicKey>,
    /// [`Sessions::members`]: a digest of the trusted keys and our own.
    members: u64,
    config: IdentityConfig,
    keys: FastMap<PublicKey, KeyState>,
    by_addr: FastMap<SocketAddr, PublicKey>,
    by_session: FastMap<[u8; crypto::SESSION_LEN], RecvSession>,
    pending: HashMap<u32, Pending>,
    /// Addresses to start a handshake round with.
    wanted: Vec<SocketAddr>,
    /// The "session ... made" lines at info, which a trusted peer can cause at the handshake
    /// rate: within [`LOG_BUDGET`](crate::limit::LOG_BUDGET) a minute.
    log_budget: LogBudget,
    /// When each address last had a round, and where its probing stopped.
    rounds: HashMap<SocketAddr, (Instant, usize)>,
    sources: HashMap<Host, RateLimiter>,
    /// Initiations from addresses no trusted key uses, all together.
    all_sources: RateLimiter,
    /// Probes sent, all together ([`MAX_PROBES_PER_SECOND`]).
    probes: RateLimiter,
    /// Initiations from addresses a trusted key uses, all together: a bucket of their own, so
    /// that a flood from other addresses cannot starve renewals, and the CPU spent on
    /// handshakes stays bounded by the two.
    known_sources: RateLimiter,
    /// The responder's cookie secret: initiations over the limits above get a cookie reply,
    /// and those that come back with its mac2 draw on the three buckets below instead.
    cookie_secret: CookieSecret,
    /// Proven initiations (mac2) per source IP address.
    proven_sources: HashMap<Host, RateLimiter>,
    /// Proven initiations from addresses no trusted key uses, all together.
    proven_all: RateLimiter,
    /// Proven initiations from addresses a trusted key uses, all together: forged source
    /// addresses never get here, so a flood that forges peers' addresses cannot starve them.
    proven_known: RateLimiter,
    /// And per trusted key those addresses are bound to (a member that binds many source
    /// ports still has one bucket).
    proven_keys: HashMap<PublicKey, RateLimiter>,
    /// The initiator's cookies, by the address whose reply brought them, and when.
    cookies: HashMap<SocketAddr, (Cookie, Instant)>,
    /// The key handshake indices are drawn under (from [`IdentityConfig::seed`]), and how
    /// many were drawn: each index is the first 4 bytes of SHA-256(key ‖ count).
    index_key: [u8; 32],
    /// Where the handshakes' ephemeral keys come from (seeded from [`IdentityConfig::seed`]).
    random: Random,
    index_count: u64,
    /// The timestamp of our last initiation (nanoseconds since the Unix epoch): each next one
    /// is later, also two in the same instant, so that a peer never takes one for a replay.
    last_initiation: u64,
    scratch: Box<[u8; 256]>,
    stats: SessionStats,
    /// Moves whenever what [`Sessions::for_each_sending`] shows changes.
    changes: u64,
    /// The receiving session of the datagram [`Sessions::open`] opened last.
    last_opened: Option<[u8; crypto::SESSION_LEN]>,
}

impl core::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sessions")
            .field("public", &self.identity.public())
            .field("trusted", &self.trusted.len())
            .field("sessions", &self.by_session.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Sessions for `identity` on the network `token`, trusting `trusted`.
    pub fn new(
        identity: Identity,
        token: Token,
        trusted: TrustedKeys,
        mut config: IdentityConfig,
        now: Instant,
    ) -> Sessions {
        // Used here, then wiped (it is dropped at the end of this call), not kept.
        let seed = core::mem::take(&mut config.seed);
        let mut random = Random::new(&seed.0, b"ethcloud-sessions-v1");
        let cookie_secret = CookieSecret::new(
            &identity.public(),
            now,
            Random::new(&random.draw(), b"ethcloud-cookies-v1"),
        );
        let index_key = index_key(&seed, &identity);
        // The tables' hash seed: secret (bytes of the indices' key, which never leaves).
        let table_seed = FastBuildHasher::new(u64::from_le_bytes(
            index_key
                .get(24..)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 8]),
        ));
        let mut sessions = Sessions {
            identity,
            token,
            trusted: TrustedKeys::new(),
            probe_order: Vec::new(),
            members: 0,
            all_sources: RateLimiter::new(now, config.handshakes_per_second),
            probes: RateLimiter::new(now, MAX_PROBES_PER_SECOND),
            known_sources: RateLimiter::new(now, config.handshakes_per_second),
            cookie_secret,
            proven_sources: HashMap::new(),
            proven_all: RateLimiter::new(now, config.handshakes_per_second),
            proven_known: RateLimiter::new(now, config.handshakes_per_second),
            proven_keys: HashMap::new(),
            cookies: HashMap::new(),
            log_budget: LogBudget::new(now),
            index_key,
            random,
            index_count: 0,
            last_initiation: 0,
            config,
            keys: FastMap::with_hasher(table_seed),
            by_addr: FastMap::with_hasher(table_seed),
            by_session: FastMap::with_hasher(table_seed),
            pending: HashMap::new(),
            // All it may ever hold: `want` runs on the packet path and must not allocate.
            wanted: Vec::with_capacity(MAX_WANTED),
            rounds: HashMap::new(),
            sources: HashMap::new(),
            scratch: Box::new([0u8; 256]),
            stats: SessionStats::default(),
            changes: 0,
            last_opened: None,
        };
        sessions.set_trusted(trusted);
        sessions
    }

    /// Our own public key.
    pub fn public(&self) -> PublicKey {
        self.identity.public()
    }

    /// The counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The trusted keys.
    pub fn trusted(&self) -> &TrustedKeys {
        &self.trusted
    }

    /// Sessions that can be opened now (current and previous ones).
    pub fn open_sessions(&self) -> usize {
        self.by_session.len()
    }

    /// The key behind `addr`, if a session was made there.
    pub fn key_of(&self, addr: SocketAddr) -> Option<PublicKey> {
        self.by_addr.get(&addr).copied()
    }

    /// Where `key` last answered or sent from, if it has a current session.
    pub fn addr_of(&self, key: &PublicKey) -> Option<SocketAddr> {
        self.keys
            .get(key)
            .filter(|k| k.current.is_some())
            .and_then(|k| k.addr)
    }

    /// The current sending session of `key`: its 16-byte id, when it was made, and how many
    /// packets it sealed.
    pub fn current_session(
        &self,
        key: &PublicKey,
    ) -> Option<([u8; crypto::SESSION_LEN], Instant, u64)> {
        let s = self.keys.get(key)?.current.as_ref()?;
        Some((s.recv_session, s.made, s.sealer.sealed()))
    }

    /// Calls `f(addr, sealer, until)` for every address bound to a key with a current sending
    /// session: the session that [`Sessions::seal`] would seal with for `addr`, and the time
    /// from which it seals nothing more. For the `--threads` lanes, which also stop at
    /// [`Sessions::max_messages`] sealed.
    pub fn for_each_sending(&self, mut f: impl FnMut(SocketAddr, &Arc<Sealer>, Instant)) {
        let reject_after = self.config.rekey_after + REJECT_SLACK;
        for (addr, key) in &self.by_addr {
            if let Some(s) = self.keys.get(key).and_then(|k| k.current.as_ref()) {
                f(*addr, &s.sealer, s.made + reject_after);
            }
        }
    }

    /// The first 8 bytes (big-endian) of SHA-256 over the sorted public keys of the trusted
    /// set and this node's own: nodes that trust the same set of members (each its own key
    /// included, as when every node is given the same trust file) have the same digest. Sent
    /// in the Hello, so that a relay passes frames only between nodes that trust the same
    /// members (man page: RELAYING).
    pub fn members(&self) -> u64 {
        self.members
    }

    /// The wall clock read again (nanoseconds since the Unix epoch at `now`), so that the
    /// timestamps of our initiations follow it when it was set after we started (a host whose
    /// clock was behind until NTP set it would otherwise stay behind, and peers that remember a
    /// later timestamp of ours refuse our initiations as replays). Each timestamp is still
    /// later than the one before, whatever the clock does.
    pub fn set_wall_clock(&mut self, now: Instant, wall_nanos: u64) {
        self.config.started = now;
        self.config.wall_start_nanos = wall_nanos;
    }

    /// The configuration the sessions keep (its seed taken out), for tests.
    #[cfg(test)]
    pub(crate) fn config(&self) -> &IdentityConfig {
        &self.config
    }

    /// Mixes `fresh` random bytes (the OS's) into the generators of ephemeral keys and cookie
    /// secrets, so that a copy of their state taken earlier does not tell what they draw
    /// from now on.
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.random.reseed(fresh);
        self.cookie_secret.reseed(fresh);
    }

    /// A session seals nothing once it sealed this many packets.
    pub fn max_messages(&self) -> u64 {
        self.config.rekey_after_messages.saturating_mul(2)
    }

    /// A number that moves whenever what [`Sessions::for_each_sending`] shows changes (a
    /// session made, renewed or dropped, an address bound to another key).
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// Adds `n` datagrams that a `--threads` lane could not seal for want of a session
    /// (counted as [`SessionStats::no_session`]).
    pub fn count_no_session(&mut self, n: u64) {
        self.stats.no_session += n;
    }

    /// Replaces the trusted set (start-up and SIGHUP). Sessions with keys no longer trusted are
    /// dropped at once; returns the addresses they were bound to, for the node to remove.
    pub fn set_trusted(&mut self, mut trusted: TrustedKeys) -> Vec<SocketAddr> {
        self.changes = self.changes.wrapping_add(1);
        let own = self.identity.public();
        trusted.remove(&own);
        let mut probe_order: Vec<PublicKey> = trusted.iter().copied().collect();
        probe_order.sort_unstable();
        self.members = members_digest(&probe_order, &own);
        self.probe_order = probe_order;
        self.trusted = trusted;
        // The static-static secret with each key (one X25519 for each new one).
        self.identity.set_trusted(self.trusted.iter());
        let revoked: Vec<PublicKey> = self
            .keys
            .keys()
            .filter(|k| !self.trusted.contains(k))
            .copied()
            .collect();
        let mut addrs = Vec::new();
        for key in revoked {
            if let Some(mut state) = self.keys.remove(&key) {
                if end_sessions(&mut state, &mut self.by_session) {
                    self.stats.revoked += 1;
                }
                info!(
                    "key {key} is no longer trusted: its sessions are dropped (now {} trusted keys)",
                    self.trusted.len()
                );
            }
        }
        // Whatever is left of them: receiving sessions, bindings, handshakes in flight.
        let trusted = &self.trusted;
        self.by_session.retain(|_, s| trusted.contains(&s.remote));
        self.by_addr.retain(|addr, key| {
            let keep = trusted.contains(key);
            if !keep {
                addrs.push(*addr);
            }
            keep
        });
        self.pending
            .retain(|_, p| trusted.contains(&p.initiator.remote));
        addrs
    }

    /// Seals the clear datagram at `buf[switch_at - TOKEN_LEN .. switch_at + inner_len]` for
    /// `to`, in place.
    ///
    /// # Errors
    ///
    /// [`SealOutcome::NoSession`] when there is no live session with `to` (a handshake is then
    /// queued, started by [`Sessions::flush`]); [`SealOutcome::Seal`] when the buffer lacks room.
    // HOT PATH
    pub fn seal(
        &mut self,
        now: Instant,
        to: SocketAddr,
        buf: &mut [u8],
        switch_at: usize,
        inner_len: usize,
    ) -> Result<Range<usize>, SealOutcome> {
        let reject_after = self.config.rekey_after + REJECT_SLACK;
        let max_messages = self.max_messages();
        let session = self
            .by_addr
            .get(&to)
            .and_then(|key| self.keys.get_mut(key))
            .and_then(|state| state.current.as_mut())
            .filter(|s| may_seal(&s.sealer, s.made + reject_after, max_messages, now));
        match session {
            Some(s) => s
                .sealer
                .seal(self.token, buf, switch_at, inner_len)
                .map_err(SealOutcome::Seal),
            None => {
                self.stats.no_session += 1;
                self.want(now, to);
                Err(SealOutcome::NoSession)
            }
        }
    }

    /// The datagram opened last (by [`Sessions::open`]) said that its sender opens
    /// AEGIS-128L: a Hello with that flag. If it came in the receiving half of the current
    /// session with its key, the peer behind that session (that very handshake, so that very
    /// process) opens AEGIS-128L; so it does if it came in the session whose handshake crossed
    /// the current one (`SendSession::crossed`: each side seals in the one it started and
    /// opens the other's, usually the same process behind both). Without that second rule, two ends
    /// whose renewals keep crossing (both started their sessions, so their timers run alike)
    /// never left the first cipher. Then the sending half switches to an AEGIS cipher, going on
    /// with its counter ([`Sealer::switched`]), where this CPU has AES instructions:
    /// AEGIS-128X4 if `x4` (the node found that both ends have 512-bit vector AES: the
    /// Hello's second AEGIS flag and its own `aegis_x4`), AEGIS-128L otherwise. Returns the
    /// cipher it switched to, if it did. The receiver lets the session switch
    /// ([`Opener::allow_switch_to_aegis`]).
    pub fn peer_opens_aegis(&mut self, x4: bool) -> Option<crypto::Cipher> {
        let id = self.last_opened?;
        let remote = self.by_session.get(&id).map(|s| s.remote)?;
        let current = self
            .keys
            .get_mut(&remote)
            .and_then(|state| state.current.as_mut())
            .filter(|c| c.speaks_for(id))?;
        // Kept only where this CPU seals AEGIS-128L and the session does not yet.
        let key = current.switch_key.take()?;
        let cipher = if x4 {
            crypto::Cipher::Aegis128X4
        } else {
            crypto::Cipher::Aegis128L
        };
        let switched = Arc::new(Sealer::switched(&current.sealer, &key, cipher));
        // The lanes that hold the old one seal with the new cipher at once too: the receiver
        // refuses the old cipher in this session after the first packet of the new one.
        current.sealer.forward_to(Arc::clone(&switched));
        current.sealer = switched;
        self.changes = self.changes.wrapping_add(1);
        self.stats.aegis_switches += 1;
        Some(cipher)
    }

    /// The datagram opened last (by [`Sessions::open`]) was a Close: the process behind its
    /// session is going, and nothing we seal with its key opens any more (a restarted
    /// process has no session). The key's sessions end, so that the next datagram for it
    /// starts a handshake, with whatever process answers there next, instead of being sealed
    /// in vain until the timers renew the session (two minutes and more). Returns whether
    /// anything ended.
    pub fn peer_closed(&mut self) -> bool {
        let Some(id) = self.last_opened else {
            return false;
        };
        let Some(remote) = self.by_session.get(&id).map(|s| s.remote) else {
            return false;
        };
        let Some(state) = self.keys.get_mut(&remote) else {
            return false;
        };
        let ended = end_sessions(state, &mut self.by_session);
        // (The Close itself opened in one of them: gone with them, or left to expire.)
        self.by_session.remove(&id);
        self.last_opened = None;
        if ended {
            self.changes = self.changes.wrapping_add(1);
            debug!("sessions with {remote} ended: it closed");
        }
        ended
    }

    /// The datagram opened last (by [`Sessions::open`]) was a Hello; `on` is its
    /// partial-checksum flag (0x20). It counts if it came in the receiving half of the current
    /// session with its key, or of the one that crossed it (as for
    /// [`Sessions::peer_opens_aegis`]): then the process behind that session completes TCP and UDP
    /// checksums left partial, or does not. A new session starts without it. Returns whether
    /// that changed anything.
    pub fn peer_completes_checksums(&mut self, on: bool) -> bool {
        let Some(id) = self.last_opened else {
            return false;
        };
        let Some(remote) = self.by_session.get(&id).map(|s| s.remote) else {
            return false;
        };
        let Some(current) = self
            .keys
            .get_mut(&remote)
            .and_then(|state| state.current.as_mut())
            .filter(|c| c.speaks_for(id))
        else {
            return false;
        };
        let changed = current.completes_checksums != on;
        current.completes_checksums = on;
        changed
    }

    /// Whether the current session with the peer at `to` may still seal and its peer said in
    /// it that it completes checksums left partial ([`Sessions::peer_completes_checksums`]).
    // HOT PATH (once per super-frame)
    pub fn completes_checksums(&self, now: Instant, to: SocketAddr) -> bool {
        self.sealing_session(now, to)
            .is_some_and(|s| s.completes_checksums)
    }

    /// Whether the current session with the peer at `to` may still seal (a frame to it goes).
    pub fn can_seal(&self, now: Instant, to: SocketAddr) -> bool {
        self.sealing_session(now, to).is_some()
    }

    /// The current session with the peer at `to`, if it may still seal at `now`.
    fn sealing_session(&self, now: Instant, to: SocketAddr) -> Option<&SendSession> {
        let reject_after = self.config.rekey_after + REJECT_SLACK;
        let max_messages = self.max_messages();
        self.by_addr
            .get(&to)
            .and_then(|key| self.keys.get(key))
            .and_then(|state| state.current.as_ref())
            .filter(|s| may_seal(&s.sealer, s.made + reject_after, max_messages, now))
    }

    /// The cipher the current sending session of `key` seals with.
    pub fn current_cipher(&self, key: &PublicKey) -> Option<crypto::Cipher> {
        Some(self.keys.get(key)?.current.as_ref()?.sealer.cipher())
    }

    /// Queues a handshake round with `to` (started by [`Sessions::flush`]), unless `to` had
    /// one within [`HANDSHAKE_RETRY`] of `now` (the round would do nothing): a flood to many
    /// peers without sessions then looks each up once, rather than walking the queue for
    /// each again and again.
    pub fn want(&mut self, now: Instant, to: SocketAddr) {
        if self.had_round(now, to) {
            return;
        }
        if self.wanted.len() < MAX_WANTED && !self.wanted.contains(&to) {
            self.wanted.push(to);
        }
    }

    /// Whether `addr` had a handshake round within [`HANDSHAKE_RETRY`] of `now` (another one
    /// does nothing).
    fn had_round(&self, now: Instant, addr: SocketAddr) -> bool {
        self.rounds
            .get(&addr)
            .is_some_and(|(at, _)| now < *at + HANDSHAKE_RETRY)
    }

    /// Whether handshakes are waiting to be started by [`Sessions::flush`].
    pub fn has_wanted(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// Opens a sealed datagram from `from` in place; returns the clear part's range.
    ///
    /// # Errors
    ///
    /// [`OpenError`]: not sealed, of no session we hold (counted as forged), expired, altered
    /// or replayed.
    // HOT PATH
    pub fn open(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<Range<usize>, OpenError> {
        let mut id = [0u8; crypto::SESSION_LEN];
        let field = datagram
            .get(TOKEN_LEN + 1..TOKEN_LEN + 1 + crypto::SESSION_LEN)
            .ok_or(OpenError::Truncated)?;
        id.copy_from_slice(field);
        let expired = self.config.rekey_after + REJECT_SLACK + RECEIVE_GRACE;
        let session = self.by_session.get_mut(&id).ok_or(OpenError::Forged)?;
        if now >= session.made + expired {
            return Err(OpenError::StaleSession);
        }
        let range = session.opener.open(datagram)?;
        session.heard_at = Some(now);
        if session.last_from == Some(from) {
            self.last_opened = Some(id);
            return Ok(range);
        }
        let remote = session.remote;
        if self.used_by_other(from, &remote, now) {
            // A member's datagram with the source address of another member that still
            // sends from there: refused, so that no trusted key can take over another's
            // address (and have what we send there sealed for itself).
            self.stats.address_in_use += 1;
            return Err(OpenError::Forged);
        }
        self.last_opened = Some(id);
        if let Some(session) = self.by_session.get_mut(&id) {
            session.last_from = Some(from);
        }
        // The key now sends from here (a NAT may have moved it): send there too.
        if self.by_addr.get(&from) != Some(&remote) {
            self.bind(from, remote);
        }
        if let Some(state) = self.keys.get_mut(&remote) {
            state.addr = Some(from);
            let confirmed = if state.next.as_ref().is_some_and(|s| s.recv_session == id) {
                state.next.take()
            } else {
                state
                    .earlier
                    .iter()
                    .position(|s| s.recv_session == id)
                    .map(|i| state.earlier.remove(i))
            };
            if let Some(confirmed) = confirmed {
                // The renewal we answered is confirmed: seal in it from now on. The other
                // candidates are of no use any more.
                for other in state.next.take().into_iter().chain(state.earlier.drain(..)) {
                    other.sealer.retire();
                    self.by_session.remove(&other.recv_session);
                }
                if let Some((older, _)) = state.previous.take() {
                    self.by_session.remove(&older);
                }
                let old = state.current.take();
                // (Not crossed by our own it replaces: the peer sealed in this one, so both
                // ends seal in it now.)
                state.current = Some(confirmed);
                if let Some(old) = old {
                    if let Some(current) = &state.current {
                        // Lanes still holding the old one seal in the new one too.
                        old.sealer.forward_to(Arc::clone(&current.sealer));
                    }
                    state.previous = Some((old.recv_session, old.made));
                }
                self.changes = self.changes.wrapping_add(1);
            }
            if let Some(current) = state.current.as_mut().filter(|c| c.recv_session == id) {
                current.heard = true;
            }
        }
        Ok(range)
    }

    /// Whether `addr` belongs to another trusted key than `key` that still uses it
    /// ([`Sessions::user_of`]).
    fn used_by_other(&self, addr: SocketAddr, key: &PublicKey, now: Instant) -> bool {
        self.user_of(addr, now).is_some_and(|owner| owner != *key)
    }

    /// The trusted key that still uses `addr`: the key bound to it, which last sent from
    /// there, in a session that is not past its end. A key that moved away, or whose session
    /// ended (a node gone for good, or back there with another key), leaves the address free.
    fn user_of(&self, addr: SocketAddr, now: Instant) -> Option<PublicKey> {
        let owner = *self.by_addr.get(&addr)?;
        let end = self.config.rekey_after + REJECT_SLACK + RECEIVE_GRACE;
        let state = self.keys.get(&owner)?;
        let live = state.addr == Some(addr)
            && state
                .current
                .as_ref()
                .is_some_and(|current| now < current.made + end);
        live.then_some(owner)
    }

    fn bind(&mut self, addr: SocketAddr, key: PublicKey) {
        if self.by_addr.len() >= MAX_BINDINGS && !self.by_addr.contains_key(&addr) {
            // Keep only the addresses the keys use now.
            let keys = &self.keys;
            self.by_addr
                .retain(|a, k| keys.get(k).is_some_and(|s| s.addr == Some(*a)));
            // A session last heard from an address no longer bound must bind it again at its
            // next datagram from there (`open` skips that for the address it last came from).
            let by_addr = &self.by_addr;
            for session in self.by_session.values_mut() {
                if session.last_from.is_some_and(|a| !by_addr.contains_key(&a)) {
                    session.last_from = None;
                }
            }
        }
        if self.by_addr.insert(addr, key) != Some(key) {
            self.changes = self.changes.wrapping_add(1);
        }
    }
}

/// Ends every session `state` holds with its key: each sending half is retired (also for the
/// `--threads` lanes that still hold it: nothing more is sealed to the key in it) and each
/// receiving half leaves `by_session`. Returns whether there was any.
fn end_sessions(
    state: &mut KeyState,
    by_session: &mut FastMap<[u8; crypto::SESSION_LEN], RecvSession>,
) -> bool {
    let mut any = false;
    for session in state
        .current
        .take()
        .into_iter()
        .chain(state.next.take())
        .chain(state.earlier.drain(..))
    {
        session.sealer.retire();
        by_session.remove(&session.recv_session);
        any = true;
    }
    if let Some((previous, _)) = state.previous.take() {
        by_session.remove(&previous);
        any = true;
    }
    any
}

/// Why [`Sessions::seal`] sealed nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealOutcome {
    /// No live session with the address; a handshake was queued.
    NoSession,
    /// The sealer failed.
    Seal(SealError),
}

/// See [`Sessions::members`]: `trusted` sorted, without `own`.
fn members_digest(trusted: &[PublicKey], own: &PublicKey) -> u64 {
    let mut all: Vec<&PublicKey> = trusted.iter().chain(core::iter::once(own)).collect();
    all.sort_unstable();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for key in all {
        ctx.update(&key.0);
    }
    let digest = ctx.finish();
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(first)
}

/// The key handshake indices are drawn under: from `seed` (this run's) and a secret of the
/// private key's, so that it is as hard to guess as that key.
fn index_key(seed: &Seed, identity: &Identity) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"ethcloud-index-v1");
    ctx.update(&seed.0[..]);
    ctx.update(&identity.derived_secret(b"ethcloud-index-v1"));
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}
