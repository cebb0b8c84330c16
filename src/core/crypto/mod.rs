//! Keyed mode (issue #8): sealing and opening datagrams with AES-GCM or ChaCha20-Poly1305
//! (`ring`) or AEGIS-128L and AEGIS-128X4 (`aegis`), per-session subkeys, replay windows per
//! sender session, and the key file (a raw key or an Argon2id passphrase).
//!
//! Owns the sealed byte layout, the key derivation and the replay state. It performs no I/O and
//! reads no clock and no RNG: the caller supplies the session (start time and random bytes),
//! and decides what to do with a packet that fails (drop it and count it). Two things come
//! from the host all the same: which AES instructions the CPU has ([`Cipher::preferred`] and
//! the AEGIS checks ask std's feature detection), so the cipher chosen, and with it the
//! bytes on the wire, can differ from one CPU to another; and the sessions map's hasher, keyed
//! at random by std (only lookups, never an order, depend on it).
//!
//! ```text
//! clear:                                      | token 7 | switch 1 | body ... |
//! sealed: | token 7 | marker 1 | session 16 | counter 8 | ciphertext of (switch | body) | tag 16 |
//!         '- associated data -'
//!         ^ switch_at - FRONT_LEN                         ^ switch_at                   ^ body end
//! ```
//!
//! - The token stays in clear and, with the marker byte, is the AEAD's associated data:
//!   several networks can share a port, and the receiver can pick the network before it
//!   decrypts.
//! - The marker names the cipher ([`Cipher`]): 0x80 = ChaCha20-Poly1305 (RFC 8439), 0x81 =
//!   AES-256-GCM, 0x82 = AES-128-GCM, 0x83 = AEGIS-128L, 0x84 = AEGIS-128X4. None is a valid
//!   clear switch byte. Every node opens all five; in keyed mode each seals with the one its CPU does fast
//!   ([`Cipher::preferred`]): AES-256-GCM where the CPU has AES instructions,
//!   ChaCha20-Poly1305 elsewhere. Sessions of per-node keys, whose keys live two minutes, seal
//!   with AES-128-GCM there instead ([`Cipher::preferred_for_sessions`]): four fewer rounds per
//!   block, 128-bit keys like TLS's default suite; older keyed-mode nodes never see it. To a
//!   peer that said it opens AEGIS-128L (a flag in its Hello) both modes seal with AEGIS-128L,
//!   about three times as fast again where the CPU has no vector AES; where both ends have
//!   512-bit vector AES (a second flag in the Hello), with AEGIS-128X4, the same construction
//!   on four lanes, about 1.5 times as fast again per 1400-byte frame (the node decides; see
//!   `node/seal.rs` and the sessions). The per-cipher key and nonce handling is
//!   `aead_key.rs`'s.
//! - The session is the sender's process start time (milliseconds since the Unix epoch, 8 bytes
//!   big-endian) followed by 8 random bytes; the counter (8 bytes big-endian) starts at 0 and
//!   goes up by one per sealed packet. A keyed-mode node of this version starts its counters
//!   at [`ECHO_COUNTER`] instead (2^63, a value an earlier version's counters never reach):
//!   the counter is in the nonce, so that top bit is authenticated, and it tells the receiver
//!   that the sender answers a Challenge with an Echo (`node/verify.rs`).
//! - Each (session, cipher) seals with its own subkey: `HKDF-SHA256(salt =
//!   "ethcloud-session-v1", ikm = network key, info = session ‖ marker)`, 32 bytes (16 for AES-128-GCM
//!   and the AEGIS ciphers). The 96-bit AEAD nonce is 4 zero bytes followed by the counter
//!   (the AEGIS ciphers' 128-bit nonce: 8 zero bytes, then the counter), so it is unique per subkey, and a new
//!   session (every start: a new start time and new random bytes) gets a new subkey: a nonce
//!   never repeats under one key, also across restarts.
//! - The clear switch byte sits where it sits in a clear datagram, so sealing and opening never
//!   move the frame: the seal adds [`FRONT_LEN`] - 7 = 25 bytes in front of the switch byte
//!   (in the headroom of [`crate::buf::PacketBuf`]) and [`TAG_LEN`] bytes behind the body (in
//!   its tailroom). [`OVERHEAD`] = 41 bytes in all.
//!
//! **Keys.** The [`Sealer`] derives its subkey once, at construction. The [`Opener`] derives a
//! sender session's subkey when it first sees the session, and keeps it (a `ring`
//! `LessSafeKey`) with that session's replay window, but remembers the session only once a
//! packet's tag verified under it: a packet of an unknown session costs one HKDF and one key
//! setup (about a microsecond) and never memory. A session is bound to the cipher of its first
//! authenticated packet; a packet of a remembered session under the other marker is refused as
//! [`OpenError::Forged`] (no honest sender does that: a sealer uses one cipher for its life).
//! During a key rotation the opener holds two keys and tries an unknown session under the
//! newer one first, then the older one, until the older key is retired (see `open.rs`); the
//! wire does not change.
//!
//! **Replay protection.** [`Opener`] keeps one window per sender *session* (not per address, so
//! a replay from another source address is caught as well): the highest counter seen and a
//! [`WINDOW_LEN`]-bit bitmap (8192, about as wide as Linux's WireGuard's) of the counters
//! below it (RFC 6479). A counter is accepted once if it is above the highest or one of the
//! 8191 below it and not yet seen (8192 with the highest); anything older is dropped. The window is that wide because
//! the `--threads` lanes seal with the node's one sealer: their datagrams leave slightly out
//! of counter order, and a lane held up by the scheduler for a few milliseconds must not see
//! its batch refused (with 2048 some were: a few dozen datagrams in 1.5 million, 2 threads on
//! 2 busy cores). The window is checked before decrypting (a cheap reject) and updated only
//! after the tag verified, so forged packets never change it.
//!
//! Sessions live in a `std::collections::HashMap` with the default, randomly keyed hasher (no
//! one can craft colliding sessions) capped at `max_sessions`. It is a map rather than a fixed
//! array because lookups are by a 16-byte key on every packet; its memory is reserved for the
//! first [`INITIAL_SESSIONS`] at construction; it grows, and a session's state is boxed, only
//! when a *new, authenticated* session is inserted, never while opening packets of known
//! sessions, so the steady state allocates nothing. A remembered session takes about
//! [`SESSION_STATE_LEN`] bytes (window and subkey, boxed, plus its map entry): 4096 sessions
//! take about 6.5 MiB (the node allows four per peer). When the map is full, the sender processes
//! used least recently are evicted, a sixteenth of them at once (at least one), each with all
//! its sessions (those with its start time) (found by a scan, once per that many new sessions; replays of sessions the opener does not remember can cause it without the key,
//! so processes the node pinned as live, [`Opener::pin_process`], are never chosen), and a
//! `floor` is raised to the latest of their start
//! times; a session that is not in the map and started at or before the floor is refused
//! ([`OpenError::StaleSession`]) unless a session with its very start time is still
//! remembered (its twin under another cipher), so replays of forgotten sessions stay refused.
//! There is no
//! time-based expiry. The floor compares start times read from different machines' clocks: a
//! peer whose clock is far behind may, after evictions, have to wait for its clock to pass the
//! floor, so `max_sessions` should comfortably exceed the number of peers.
//!
//! The parts, one responsibility each:
//!
//! ```text
//! key.rs    Key and the key file: raw, hex or an Argon2id passphrase; the HKDF input key
//! aead_key.rs  AeadKey: one subkey of any of the five ciphers, sealing and opening in place
//! seal.rs   Sealer and SealError: sealing outgoing datagrams in place
//! open.rs   Opener and OpenError: opening, the replay windows and the sender sessions
//! tests.rs  the unit tests of sealing and opening, with the golden vectors
//! tests_rotation.rs  the unit tests of an opener with two keys (key rotation)
//! ```
//!
//! This file holds the layout constants, the [`Cipher`] markers and the subkey and nonce
//! derivation that sealing and opening share; everything public is re-exported here, so the
//! rest of the crate names it `crypto::Sealer`, `crypto::Opener`, ...

use core::fmt;

use ring::aead;
use ring::hkdf::Prk;

use crate::wire::TOKEN_LEN;

mod aead_key;
mod key;
mod open;
mod seal;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_rotation;

use aead_key::AeadKey;
pub use key::{Key, KeyError, SHORT_PASSPHRASE};
pub use open::{OpenError, Opener, SESSION_STATE_LEN};
pub use seal::{SealError, Sealer};

/// Bytes of a sender session: start time in ms (8, big-endian), then 8 random bytes.
pub const SESSION_LEN: usize = 16;
/// Bytes of the packet counter on the wire (big-endian).
pub const COUNTER_LEN: usize = 8;
/// Bytes of the AEAD nonce: 4 zero bytes, then the counter.
pub const NONCE_LEN: usize = 12;
/// Bytes of the authentication tag at the end of a sealed datagram.
pub const TAG_LEN: usize = 16;
/// Bytes in front of the clear switch byte: token, marker, session and counter.
pub const FRONT_LEN: usize = TOKEN_LEN + 1 + SESSION_LEN + COUNTER_LEN;
/// Sealed length minus clear length: marker, session, counter and tag.
pub const OVERHEAD: usize = 1 + SESSION_LEN + COUNTER_LEN + TAG_LEN;
/// Bytes of a key (the network key and every subkey).
pub const KEY_LEN: usize = 32;
/// Sessions an [`Opener`] reserves room for up front (it grows up to `max_sessions`).
pub const INITIAL_SESSIONS: usize = 64;
/// The longest passphrase accepted in a key file.
pub const MAX_PASSPHRASE_LEN: usize = 1024;
/// The first counter of a keyed-mode sender that answers a Challenge with an Echo (and
/// verifies new addresses only by an Echo): its top bit set. An earlier version's counters
/// start at 0 and never reach it.
pub const ECHO_COUNTER: u64 = 1 << 63;

/// Whether a sealed datagram that opened (so its counter is authentic) came from a sender of
/// [`ECHO_COUNTER`]'s kind; false for anything too short to be sealed.
// HOT PATH: one byte read.
#[inline]
pub fn sender_echoes(datagram: &[u8]) -> bool {
    datagram
        .get(field::COUNTER)
        .is_some_and(|first| first & 0x80 != 0)
}

/// The start time (ms) of a sender process ([`sender_process`]): the first 8 bytes of its
/// sessions, which they share.
pub fn process_start(process: u128) -> u64 {
    (process >> 64) as u64
}

/// The sender process of a session: the session with its 8 random bytes brought back to one
/// of the four forms a process's sessions take (every byte XORed with 0x00, 0xff, 0x55 or
/// 0xaa: the first cipher's, AEGIS-128L's and AEGIS-128X4's), so every session of one process
/// gives the same value.
pub fn sender_process(session: &[u8; SESSION_LEN]) -> u128 {
    let mut id = *session;
    // The XOR that clears the first random byte's top two bits: one of the four does.
    let mask = match id[8] >> 6 {
        0b00 => 0x00,
        0b11 => 0xff,
        0b01 => 0x55,
        _ => 0xaa,
    };
    for byte in &mut id[8..] {
        *byte ^= mask;
    }
    u128::from_be_bytes(id)
}

/// Counters accepted below the highest one seen, per session.
pub const WINDOW_LEN: u64 = 8192;

/// Offsets inside a sealed datagram.
mod field {
    use super::{FRONT_LEN, SESSION_LEN};
    use crate::wire::TOKEN_LEN;
    pub const MARKER: usize = TOKEN_LEN;
    /// Associated data: token and marker.
    pub const AAD_END: usize = MARKER + 1;
    pub const SESSION: usize = AAD_END;
    pub const COUNTER: usize = SESSION + SESSION_LEN;
    pub const SWITCH: usize = FRONT_LEN;
}

/// The AEAD of a sealed datagram, named by its marker byte (the byte after the token).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cipher {
    /// ChaCha20-Poly1305 (RFC 8439), marker 0x80: fast everywhere in software.
    ChaCha20Poly1305,
    /// AES-256-GCM, marker 0x81: the fastest where the CPU has AES and carry-less multiply
    /// instructions.
    Aes256Gcm,
    /// AES-128-GCM, marker 0x82: faster still on such CPUs (10 rounds instead of 14); sealed
    /// only by the sessions of per-node keys.
    Aes128Gcm,
    /// AEGIS-128L (draft-irtf-cfrg-aegis-aead), marker 0x83: about three times as fast as
    /// AES-128-GCM per 1400-byte frame where the CPU has AES instructions; sealed only to a
    /// peer that announced it opens it (the Hello's [`crate::wire::relay::FLAG_AEGIS`]).
    Aegis128L,
    /// AEGIS-128X4 (draft-irtf-cfrg-aegis-aead, four lanes of AEGIS-128L), marker 0x84: about
    /// 1.5 times as fast as AEGIS-128L per 1400-byte frame where the CPU has 512-bit vector
    /// AES (VAES with AVX-512), slower than it elsewhere; sealed only where both ends have it
    /// ([`has_vector_aes`], [`crate::wire::relay::FLAG_AEGIS_X4`]): by a session of per-node
    /// keys, or in keyed mode to such peers (frames while every verified peer has it).
    Aegis128X4,
}

impl Cipher {
    /// Every cipher, in marker order.
    pub const ALL: [Cipher; 5] = [
        Cipher::ChaCha20Poly1305,
        Cipher::Aes256Gcm,
        Cipher::Aes128Gcm,
        Cipher::Aegis128L,
        Cipher::Aegis128X4,
    ];

    /// The marker byte after the token: 0x80 to 0x84 (never a valid clear switch byte).
    pub const fn marker(self) -> u8 {
        match self {
            Cipher::ChaCha20Poly1305 => 0x80,
            Cipher::Aes256Gcm => 0x81,
            Cipher::Aes128Gcm => 0x82,
            Cipher::Aegis128L => 0x83,
            Cipher::Aegis128X4 => 0x84,
        }
    }

    /// The cipher a marker byte names, if any.
    pub const fn from_marker(marker: u8) -> Option<Cipher> {
        match marker {
            0x80 => Some(Cipher::ChaCha20Poly1305),
            0x81 => Some(Cipher::Aes256Gcm),
            0x82 => Some(Cipher::Aes128Gcm),
            0x83 => Some(Cipher::Aegis128L),
            0x84 => Some(Cipher::Aegis128X4),
            _ => None,
        }
    }

    /// The cipher this CPU seals fastest: AES-256-GCM when it has AES instructions (AES-NI and
    /// PCLMULQDQ on x86_64, the AES extension on aarch64), ChaCha20-Poly1305 otherwise.
    pub fn preferred() -> Cipher {
        if has_aes_instructions() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        }
    }

    /// The cipher the sessions of per-node keys seal with on this CPU, for a peer that opens
    /// AEGIS-128L or not (`peer_opens_aegis`): AEGIS-128L or AES-128-GCM when it has AES
    /// instructions, ChaCha20-Poly1305 otherwise (software AES would be slower than it).
    pub fn preferred_for_sessions(peer_opens_aegis: bool) -> Cipher {
        match (has_aes_instructions(), peer_opens_aegis) {
            (true, true) => Cipher::Aegis128L,
            (true, false) => Cipher::Aes128Gcm,
            (false, _) => Cipher::ChaCha20Poly1305,
        }
    }

    /// Whether this is one of the AEGIS ciphers (0x83, 0x84), to which a session of per-node
    /// keys may switch once.
    pub const fn is_aegis(self) -> bool {
        matches!(self, Cipher::Aegis128L | Cipher::Aegis128X4)
    }

    /// Bytes of this cipher's key: 16 for AES-128-GCM and the AEGIS ciphers, 32 for the
    /// others.
    pub const fn key_len(self) -> usize {
        match self {
            Cipher::Aes128Gcm | Cipher::Aegis128L | Cipher::Aegis128X4 => 16,
            Cipher::ChaCha20Poly1305 | Cipher::Aes256Gcm => KEY_LEN,
        }
    }

    /// `ring`'s algorithm for this cipher; `None` for the AEGIS ciphers, which `ring` lacks.
    fn ring_algorithm(self) -> Option<&'static aead::Algorithm> {
        match self {
            Cipher::ChaCha20Poly1305 => Some(&aead::CHACHA20_POLY1305),
            Cipher::Aes256Gcm => Some(&aead::AES_256_GCM),
            Cipher::Aes128Gcm => Some(&aead::AES_128_GCM),
            Cipher::Aegis128L | Cipher::Aegis128X4 => None,
        }
    }
}

/// The HKDF output length of a subkey of `cipher` (`ring`'s HKDF asks for it as a type).
struct SubkeyLen(usize);

impl ring::hkdf::KeyType for SubkeyLen {
    fn len(&self) -> usize {
        self.0
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Cipher::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Cipher::Aes256Gcm => "AES-256-GCM",
            Cipher::Aes128Gcm => "AES-128-GCM",
            Cipher::Aegis128L => "AEGIS-128L",
            Cipher::Aegis128X4 => "AEGIS-128X4",
        })
    }
}

#[cfg(target_arch = "x86_64")]
fn has_aes_instructions() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
}

#[cfg(target_arch = "aarch64")]
fn has_aes_instructions() -> bool {
    std::arch::is_aarch64_feature_detected!("aes")
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn has_aes_instructions() -> bool {
    false
}

/// Whether this CPU runs AEGIS-128X4 at full width: AES on 512-bit vectors (VAES with
/// AVX-512F), where libaegis's AEGIS-128X4 seals a 1400-byte frame in about two thirds of
/// AEGIS-128L's time. The default of the node's `aegis_x4`, which its Hello says
/// ([`crate::wire::relay::FLAG_AEGIS_X4`]).
#[cfg(target_arch = "x86_64")]
pub fn has_vector_aes() -> bool {
    std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("avx512f")
}

/// Whether this CPU runs AEGIS-128X4 at full width: never off x86_64.
#[cfg(not(target_arch = "x86_64"))]
pub fn has_vector_aes() -> bool {
    false
}

/// The subkey of one sender session and cipher: HKDF-Expand(prk, session ‖ marker), as many
/// bytes as the cipher's key has (32, or 16 for AES-128-GCM and the AEGIS ciphers).
#[allow(clippy::expect_used)]
fn subkey(prk: &Prk, session: &[u8; SESSION_LEN], cipher: Cipher) -> AeadKey {
    let marker = [cipher.marker()];
    let info: [&[u8]; 2] = [session, &marker];
    let mut okm = [0u8; KEY_LEN];
    let okm = &mut okm[..cipher.key_len()];
    prk.expand(&info, SubkeyLen(okm.len()))
        .and_then(|o| o.fill(okm))
        // expand fails only past 255 × 32 bytes; this asks for 16 or 32.
        .expect("invariant: a 16- or 32-byte HKDF-SHA256 output is always possible");
    let key = AeadKey::new(cipher, okm);
    okm.fill(0);
    core::hint::black_box(&okm);
    // The length is the cipher's own key length, which every cipher takes.
    key.expect("invariant: a subkey of the cipher's key length is a valid key")
}
