//! The Noise IK handshake messages (`Noise_IK_25519_ChaChaPoly_BLAKE2s`, through `snow`): the
//! initiation (type 0x90) and the response (type 0x91), their mac1, and the session keys and
//! session ids both ends derive from a finished handshake ([`Established`]).
//!
//! Owns the two message layouts, the prologue, the mac1 key and tag, and the key and session
//! derivation. It performs no I/O, reads no clock and draws no random bytes: the caller passes
//! the TAI64N timestamp ([`timestamp`]) and the ephemeral private key (from its
//! [`Random`](super::random::Random), or fixed by a test), decides which keys are trusted and
//! which timestamps are fresh (it keeps the newest per key), routes responses to their
//! [`Initiator`] by index, and sends the bytes.
//!
//! ```text
//! initiation: | token 7 | 0x90 | sender 4 | e 32 | enc s 48 | enc timestamp 28 | mac1 16 |  136
//! response:   | token 7 | 0x91 | sender 4 | receiver 4 | e 32 | enc empty 16 | mac1 16 |    80
//! ```
//!
//! Indices are big-endian. mac1 is the first 16 bytes of HMAC-SHA256 keyed with
//! SHA-256(`"ethcloud-mac1-v1"` ‖ the receiver's static public key) over every byte before it,
//! so a receiver drops a message aimed at another key, or altered, for one HMAC and before any
//! Diffie-Hellman. It is no authentication (anyone who knows the public key can compute it);
//! Noise is. The prologue is `"ethcloud-ik-v1"` ‖ the token's 7 bytes, so a message of another
//! network fails Noise even where its clear token was rewritten. The indices are covered by
//! mac1 only, as in WireGuard: one rewritten on the path breaks that handshake, nothing more.

use core::fmt;
use std::sync::Arc;

use ring::{digest, hmac};
use snow::params::NoiseParams;
use snow::{Builder, HandshakeState};

use super::keys::{PublicKey, SecretKey, KEY_LEN};
use super::resolver::{Refusal, Resolver, Statics};
use crate::crypto::{self, SESSION_LEN};
use crate::wire::{Token, TOKEN_LEN};

/// Type byte (after the token) of an initiation.
pub const INITIATION: u8 = 0x90;
/// Type byte (after the token) of a response.
pub const RESPONSE: u8 = 0x91;
/// Bytes of an initiation, exactly.
pub const INITIATION_LEN: usize = 136;
/// Bytes of a response, exactly.
pub const RESPONSE_LEN: usize = 80;
/// Bytes of a TAI64N timestamp: 8 bytes of seconds (+ 2^62), 4 bytes of nanoseconds.
pub const TIMESTAMP_LEN: usize = 12;
/// Bytes of the mac1 tag at the end of both messages.
pub const MAC1_LEN: usize = 16;
/// Bytes of the Noise part of an initiation: e 32, encrypted s 48, encrypted timestamp 28.
pub const INITIATION_NOISE_LEN: usize = 108;
/// Bytes of the Noise part of a response: e 32, encrypted empty payload 16.
pub const RESPONSE_NOISE_LEN: usize = 48;
/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
/// The start of the prologue; the token's 7 wire bytes follow it.
pub const PROLOGUE_PREFIX: &[u8; 14] = b"ethcloud-ik-v1";
/// The start of the mac1 key's hash input; the receiver's public key follows it.
pub const MAC1_LABEL: &[u8; 16] = b"ethcloud-mac1-v1";

/// TAI64 label: 2^62, added to the seconds.
const TAI64_BASE: u64 = 1 << 62;
const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Offsets inside the two messages.
mod field {
    use super::{INITIATION_NOISE_LEN, RESPONSE_NOISE_LEN};
    use crate::wire::TOKEN_LEN;
    pub const TYPE: usize = TOKEN_LEN;
    pub const SENDER: usize = TYPE + 1;
    /// Initiation: the Noise message, then mac1.
    pub const INIT_NOISE: usize = SENDER + 4;
    pub const INIT_MAC1: usize = INIT_NOISE + INITIATION_NOISE_LEN;
    /// Response: the receiver index, the Noise message, then mac1.
    pub const RECEIVER: usize = SENDER + 4;
    pub const RESP_NOISE: usize = RECEIVER + 4;
    pub const RESP_MAC1: usize = RESP_NOISE + RESPONSE_NOISE_LEN;
}

const _: () = assert!(field::INIT_MAC1 + MAC1_LEN == INITIATION_LEN);
const _: () = assert!(field::RESP_MAC1 + MAC1_LEN == RESPONSE_LEN);

/// Why a handshake message was refused or could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeError {
    /// The message is not exactly [`INITIATION_LEN`] or [`RESPONSE_LEN`] bytes.
    Length,
    /// The byte after the token is not the expected message type.
    Type,
    /// mac1 does not verify under this node's public key: aimed at another key, or altered.
    Mac,
    /// The clear token is not this network's (the caller's token).
    Token,
    /// A response's receiver index is not the initiation's sender index.
    Index,
    /// Noise failed: a decryption or Diffie-Hellman failed (wrong keys, another network's
    /// token, or an altered message), or `snow` refused its state.
    Noise,
    /// The initiator's static key is not trusted.
    Untrusted,
    /// The initiation's timestamp is not newer than the newest seen from that key.
    Replayed,
    /// The output buffer is shorter than the message.
    NoRoom,
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandshakeError::Length => "handshake message of the wrong length",
            HandshakeError::Type => "not a handshake message of the expected type",
            HandshakeError::Mac => "handshake mac1 does not verify (another key's, or altered)",
            HandshakeError::Token => "handshake message of another network's token",
            HandshakeError::Index => "handshake response to an index that is not ours",
            HandshakeError::Noise => "noise handshake failed (wrong keys, or altered)",
            HandshakeError::Untrusted => "handshake from a key that is not trusted",
            HandshakeError::Replayed => "handshake initiation replayed (timestamp not newer)",
            HandshakeError::NoRoom => "no room for the handshake message in the buffer",
        })
    }
}

impl std::error::Error for HandshakeError {}

impl From<snow::Error> for HandshakeError {
    fn from(_: snow::Error) -> HandshakeError {
        HandshakeError::Noise
    }
}

/// This node's static key pair, its precomputed mac1 key (the one peers mac their messages
/// to this node with), and its static-static secret with each key it trusts.
#[derive(Debug)]
pub struct Identity {
    secret: SecretKey,
    public: PublicKey,
    mac1: hmac::Key,
    statics: Arc<Statics>,
}

impl Identity {
    /// The identity of `secret`, trusting no key yet ([`Identity::set_trusted`]).
    pub fn new(secret: SecretKey) -> Identity {
        let public = secret.public_key();
        Identity {
            mac1: mac1_key(&public),
            statics: Arc::new(Statics::new(*secret.as_bytes(), public.0)),
            secret,
            public,
        }
    }

    /// 32 secret bytes derived from the private key for `label` (HMAC-SHA256 keyed with it):
    /// for values others must not be able to predict, which need no randomness of their own.
    pub fn derived_secret(&self, label: &[u8]) -> [u8; 32] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.secret.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(hmac::sign(&key, label).as_ref());
        out
    }

    /// This node's public key.
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// Trusts exactly `keys`: keeps the static-static secret with each (one X25519 for each
    /// key not trusted before), as the handshakes use it. [`respond`] refuses, after one
    /// Diffie-Hellman, an initiation whose static key is not among them.
    pub fn set_trusted<'a>(&mut self, keys: impl IntoIterator<Item = &'a PublicKey>) {
        self.statics = Arc::new(self.statics.trusting(keys.into_iter().map(|k| &k.0)));
    }

    /// How many keys [`Identity::set_trusted`] gave.
    pub fn trusted_len(&self) -> usize {
        self.statics.len()
    }

    /// A `snow` builder for `params` whose X25519 knows this node's statics (see `resolver`)
    /// and whose ephemeral private key is `own_ephemeral`; a responder's says through
    /// `refusal` that it refused an untrusted static key.
    fn builder<'a>(
        &self,
        params: NoiseParams,
        responder: Option<([u8; KEY_LEN], Refusal)>,
        own_ephemeral: &[u8; KEY_LEN],
    ) -> Builder<'a> {
        let statics = Arc::clone(&self.statics);
        let resolver = match responder {
            Some((ephemeral, refusal)) => Resolver::responder(statics, ephemeral, refusal),
            None => Resolver::initiator(statics),
        };
        Builder::with_resolver(params, Box::new(resolver.drawing(own_ephemeral)))
    }
}

/// An initiation in flight (initiator side), waiting for its response.
pub struct Initiator {
    /// The responder's static key.
    pub remote: PublicKey,
    /// The sender index this initiation carries (the response's receiver index).
    pub local_index: u32,
    token: Token,
    /// This node's mac1 key, to check the response.
    mac1: hmac::Key,
    state: HandshakeState,
}

impl fmt::Debug for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Initiator")
            .field("remote", &self.remote)
            .field("local_index", &self.local_index)
            .field("token", &self.token)
            .finish_non_exhaustive()
    }
}

/// A finished handshake: the peer, the indices, and the keys and session ids each direction
/// seals and opens under (with [`crypto::Sealer`] and [`crypto::Opener`]).
#[derive(Debug)]
pub struct Established {
    /// The peer's static key.
    pub remote: PublicKey,
    /// This node's index for the handshake.
    pub local_index: u32,
    /// The peer's index for the handshake.
    pub remote_index: u32,
    /// Whether this node sent the initiation.
    pub is_initiator: bool,
    /// The key this node seals with.
    pub send_key: crypto::Key,
    /// The key this node opens with.
    pub recv_key: crypto::Key,
    /// The session this node seals under.
    pub send_session: [u8; SESSION_LEN],
    /// The session this node opens (the peer's send session).
    pub recv_session: [u8; SESSION_LEN],
}

/// The TAI64N form of a time given in nanoseconds since the Unix epoch: 8 bytes big-endian of
/// 2^62 + seconds, then 4 bytes big-endian of nanoseconds. (Leap seconds are not added: the
/// stamp only has to grow with time.)
pub fn timestamp(unix_nanos: u64) -> [u8; TIMESTAMP_LEN] {
    let seconds = TAI64_BASE + unix_nanos / NANOS_PER_SEC;
    // Below 10^9, so it fits.
    let nanos = u32::try_from(unix_nanos % NANOS_PER_SEC).unwrap_or(0);
    let mut out = [0u8; TIMESTAMP_LEN];
    out[..8].copy_from_slice(&seconds.to_be_bytes());
    out[8..].copy_from_slice(&nanos.to_be_bytes());
    out
}

/// Starts a handshake with `remote`: writes the initiation into `out[..INITIATION_LEN]` and
/// returns the state that waits for the response, with the length written.
/// `ephemeral` is the handshake's ephemeral private key: 32 bytes the caller drew from its
/// [`Random`](super::random::Random) (never used twice), or a test vector's.
///
/// # Errors
///
/// [`HandshakeError::NoRoom`] when `out` is shorter than [`INITIATION_LEN`] (nothing is
/// written); [`HandshakeError::Noise`] if `snow` fails.
pub fn initiate(
    id: &Identity,
    token: Token,
    remote: &PublicKey,
    local_index: u32,
    timestamp: [u8; TIMESTAMP_LEN],
    ephemeral: &[u8; KEY_LEN],
    out: &mut [u8],
) -> Result<(Initiator, usize), HandshakeError> {
    let out = out
        .get_mut(..INITIATION_LEN)
        .ok_or(HandshakeError::NoRoom)?;
    let params = params()?;
    let prologue = prologue(token);
    let mut state = id
        .builder(params, None, ephemeral)
        .local_private_key(id.secret.as_bytes())?
        .remote_public_key(&remote.0)?
        .prologue(&prologue)?
        .build_initiator()?;

    let mut msg = [0u8; INITIATION_LEN];
    msg[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    msg[field::TYPE] = INITIATION;
    msg[field::SENDER..field::INIT_NOISE].copy_from_slice(&local_index.to_be_bytes());
    let n = state.write_message(&timestamp, &mut msg[field::INIT_NOISE..field::INIT_MAC1])?;
    if n != INITIATION_NOISE_LEN {
        return Err(HandshakeError::Noise);
    }
    let tag = mac1(&mac1_key(remote), &msg[..field::INIT_MAC1]);
    msg[field::INIT_MAC1..].copy_from_slice(&tag);
    out.copy_from_slice(&msg);

    let initiator = Initiator {
        remote: *remote,
        local_index,
        token,
        mac1: id.mac1.clone(),
        state,
    };
    Ok((initiator, INITIATION_LEN))
}

/// The responder's cheap check of an initiation: exact length, type byte and mac1 under `id`'s
/// key; no Diffie-Hellman. Returns the initiator's sender index.
///
/// # Errors
///
/// [`HandshakeError::Length`], [`HandshakeError::Type`] or [`HandshakeError::Mac`].
pub fn check_initiation(id: &Identity, msg: &[u8]) -> Result<u32, HandshakeError> {
    check(&id.mac1, msg, INITIATION, INITIATION_LEN, field::INIT_MAC1)?;
    Ok(index_at(msg, field::SENDER))
}

/// The responder's full step: [`check_initiation`], the Noise read, then
/// `is_trusted(initiator's key)`, then `timestamp_ok(initiator's key, timestamp)` (the caller
/// keeps the newest timestamp per key and accepts only newer ones), then writes the response
/// into `out[..RESPONSE_LEN]` and returns the finished handshake with the length written.
/// `ephemeral` is the response's ephemeral private key, as for [`initiate`].
///
/// `out` is written only on success. `timestamp_ok` is called only for an authenticated
/// initiation from a trusted key, and only when `out` has room, so a refused message never
/// moves the caller's newest timestamp.
///
/// The Noise read costs one Diffie-Hellman (`es`); the static-static one comes from the
/// secrets [`Identity::set_trusted`] computed, and an initiator key with none there ends the
/// read as [`HandshakeError::Untrusted`] before `is_trusted` is asked. So `is_trusted` is a
/// second word, for a caller whose trust may be narrower than the identity's.
///
/// # Errors
///
/// [`HandshakeError::NoRoom`] when `out` is short (checked first); those of
/// [`check_initiation`]; [`HandshakeError::Token`] when the clear token is not `token`;
/// [`HandshakeError::Noise`] when the message does not decrypt (wrong keys, altered);
/// [`HandshakeError::Untrusted`] when the initiator's key is not among the identity's trusted
/// keys or `is_trusted` says no; [`HandshakeError::Replayed`] when `timestamp_ok` says no.
#[allow(clippy::too_many_arguments)]
pub fn respond(
    id: &Identity,
    token: Token,
    msg: &[u8],
    is_trusted: impl FnOnce(&PublicKey) -> bool,
    timestamp_ok: impl FnOnce(&PublicKey, &[u8; TIMESTAMP_LEN]) -> bool,
    local_index: u32,
    ephemeral: &[u8; KEY_LEN],
    out: &mut [u8],
) -> Result<(Established, usize), HandshakeError> {
    let out = out.get_mut(..RESPONSE_LEN).ok_or(HandshakeError::NoRoom)?;
    let remote_index = check_initiation(id, msg)?;
    if msg.get(..TOKEN_LEN) != Some(&token.to_bytes()[..]) {
        return Err(HandshakeError::Token);
    }
    let noise = msg
        .get(field::INIT_NOISE..field::INIT_MAC1)
        .ok_or(HandshakeError::Length)?;

    let their_ephemeral: [u8; KEY_LEN] = noise
        .get(..KEY_LEN)
        .and_then(|e| e.try_into().ok())
        .ok_or(HandshakeError::Length)?;

    let params = params()?;
    let prologue = prologue(token);
    let refusal = Refusal::default();
    let mut state = id
        .builder(params, Some((their_ephemeral, refusal.clone())), ephemeral)
        .local_private_key(id.secret.as_bytes())?
        .prologue(&prologue)?
        .build_responder()?;

    let mut payload = [0u8; INITIATION_NOISE_LEN];
    let n = match state.read_message(noise, &mut payload) {
        Ok(n) => n,
        // The initiator's static key has no static-static secret here: not trusted.
        Err(_) if refusal.refused() => return Err(HandshakeError::Untrusted),
        Err(e) => return Err(e.into()),
    };
    let ts: [u8; TIMESTAMP_LEN] = payload
        .get(..n)
        .and_then(|p| p.try_into().ok())
        .ok_or(HandshakeError::Noise)?;
    let remote = state
        .get_remote_static()
        .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
        .map(PublicKey)
        .ok_or(HandshakeError::Noise)?;
    if !is_trusted(&remote) {
        return Err(HandshakeError::Untrusted);
    }
    if !timestamp_ok(&remote, &ts) {
        return Err(HandshakeError::Replayed);
    }

    let mut reply = [0u8; RESPONSE_LEN];
    reply[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    reply[field::TYPE] = RESPONSE;
    reply[field::SENDER..field::RECEIVER].copy_from_slice(&local_index.to_be_bytes());
    reply[field::RECEIVER..field::RESP_NOISE].copy_from_slice(&remote_index.to_be_bytes());
    let n = state.write_message(&[], &mut reply[field::RESP_NOISE..field::RESP_MAC1])?;
    if n != RESPONSE_NOISE_LEN {
        return Err(HandshakeError::Noise);
    }
    let tag = mac1(&mac1_key(&remote), &reply[..field::RESP_MAC1]);
    reply[field::RESP_MAC1..].copy_from_slice(&tag);

    let established = establish(&mut state, remote, local_index, remote_index)?;
    out.copy_from_slice(&reply);
    Ok((established, RESPONSE_LEN))
}

/// The initiator's cheap check of a response: exact length, type byte and mac1 under `id`'s
/// key; no Diffie-Hellman. Returns (sender index, receiver index): the receiver index names
/// the [`Initiator`] it answers.
///
/// # Errors
///
/// [`HandshakeError::Length`], [`HandshakeError::Type`] or [`HandshakeError::Mac`].
pub fn check_response(id: &Identity, msg: &[u8]) -> Result<(u32, u32), HandshakeError> {
    check(&id.mac1, msg, RESPONSE, RESPONSE_LEN, field::RESP_MAC1)?;
    Ok((index_at(msg, field::SENDER), index_at(msg, field::RECEIVER)))
}

impl Initiator {
    /// Finishes the handshake with its response (checked again as [`check_response`] does,
    /// then the Noise read: two Diffie-Hellmans).
    ///
    /// It takes `&mut self` rather than `self`: mac1 is no authentication, so anyone who sees
    /// the initiation can send a response that passes [`check_response`]; a refused response
    /// leaves the initiation in flight, and the genuine one can still complete it. Once it
    /// succeeded, drop the initiator (a second call returns [`HandshakeError::Noise`]).
    ///
    /// # Errors
    ///
    /// Those of [`check_response`]; [`HandshakeError::Token`] when the clear token is not the
    /// initiation's; [`HandshakeError::Index`] when the receiver index is not
    /// [`Initiator::local_index`]; [`HandshakeError::Noise`] when it does not decrypt.
    pub fn complete(&mut self, msg: &[u8]) -> Result<Established, HandshakeError> {
        check(&self.mac1, msg, RESPONSE, RESPONSE_LEN, field::RESP_MAC1)?;
        if msg.get(..TOKEN_LEN) != Some(&self.token.to_bytes()[..]) {
            return Err(HandshakeError::Token);
        }
        if index_at(msg, field::RECEIVER) != self.local_index {
            return Err(HandshakeError::Index);
        }
        let noise = msg
            .get(field::RESP_NOISE..field::RESP_MAC1)
            .ok_or(HandshakeError::Length)?;
        let mut payload = [0u8; RESPONSE_NOISE_LEN];
        let n = self.state.read_message(noise, &mut payload)?;
        if n != 0 || !self.state.is_handshake_finished() {
            return Err(HandshakeError::Noise);
        }
        let remote_index = index_at(msg, field::SENDER);
        establish(&mut self.state, self.remote, self.local_index, remote_index)
    }
}

/// The keys and sessions of a finished handshake, oriented for the side `state` is.
fn establish(
    state: &mut HandshakeState,
    remote: PublicKey,
    local_index: u32,
    remote_index: u32,
) -> Result<Established, HandshakeError> {
    if !state.is_handshake_finished() {
        return Err(HandshakeError::Noise);
    }
    let is_initiator = state.is_initiator();
    let h = state.get_handshake_hash();
    let session_i2r = session_id(h, b"i2r");
    let session_r2i = session_id(h, b"r2i");
    let (mut raw_i2r, mut raw_r2i) = state.dangerously_get_raw_split();
    let key_i2r = crypto::Key::from_bytes(raw_i2r);
    let key_r2i = crypto::Key::from_bytes(raw_r2i);
    raw_i2r.fill(0);
    raw_r2i.fill(0);
    // Keeps the compiler from treating the stores above as dead.
    std::hint::black_box((&raw_i2r, &raw_r2i));
    let (send_key, recv_key, send_session, recv_session) = if is_initiator {
        (key_i2r, key_r2i, session_i2r, session_r2i)
    } else {
        (key_r2i, key_i2r, session_r2i, session_i2r)
    };
    Ok(Established {
        remote,
        local_index,
        remote_index,
        is_initiator,
        send_key,
        recv_key,
        send_session,
        recv_session,
    })
}

/// SHA-256(h ‖ label), first 16 bytes.
fn session_id(h: &[u8], label: &[u8]) -> [u8; SESSION_LEN] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(h);
    ctx.update(label);
    let digest = ctx.finish();
    let mut out = [0u8; SESSION_LEN];
    out.copy_from_slice(&digest.as_ref()[..SESSION_LEN]);
    out
}

fn params() -> Result<NoiseParams, HandshakeError> {
    NOISE_PARAMS.parse().map_err(|_| HandshakeError::Noise)
}

fn prologue(token: Token) -> [u8; PROLOGUE_PREFIX.len() + TOKEN_LEN] {
    let mut out = [0u8; PROLOGUE_PREFIX.len() + TOKEN_LEN];
    out[..PROLOGUE_PREFIX.len()].copy_from_slice(PROLOGUE_PREFIX);
    out[PROLOGUE_PREFIX.len()..].copy_from_slice(&token.to_bytes());
    out
}

/// The key messages to `public` are mac'd with: SHA-256(label ‖ public key).
fn mac1_key(public: &PublicKey) -> hmac::Key {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(MAC1_LABEL);
    ctx.update(&public.0);
    hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref())
}

fn mac1(key: &hmac::Key, data: &[u8]) -> [u8; MAC1_LEN] {
    let tag = hmac::sign(key, data);
    let mut out = [0u8; MAC1_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC1_LEN]);
    out
}

/// Exact length, type byte, then mac1 (compared in constant time).
fn check(
    key: &hmac::Key,
    msg: &[u8],
    kind: u8,
    len: usize,
    mac_at: usize,
) -> Result<(), HandshakeError> {
    if msg.len() != len {
        return Err(HandshakeError::Length);
    }
    if msg.get(field::TYPE) != Some(&kind) {
        return Err(HandshakeError::Type);
    }
    let (data, tag) = msg.split_at_checked(mac_at).ok_or(HandshakeError::Length)?;
    if tag.len() != MAC1_LEN {
        return Err(HandshakeError::Length);
    }
    let expected = mac1(key, data);
    let diff = expected.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
    if std::hint::black_box(diff) != 0 {
        return Err(HandshakeError::Mac);
    }
    Ok(())
}

/// The big-endian u32 at `at` (0 past the end; callers checked the length).
fn index_at(msg: &[u8], at: usize) -> u32 {
    msg.get(at..at + 4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}
