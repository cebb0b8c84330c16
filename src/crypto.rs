//! Keyed mode (issue #8): sealing and opening datagrams with ChaCha20-Poly1305 or AES-256-GCM
//! (`ring`), per-session subkeys, replay windows per sender session, and the key file (a raw
//! key or an Argon2id passphrase).
//!
//! Owns the sealed byte layout, the key derivation and the replay state. It performs no I/O and
//! reads no clock and no RNG: the caller supplies the session (start time and random bytes),
//! and decides what to do with a packet that fails (drop it and count it).
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
//!   AES-256-GCM. Neither is a valid clear switch byte. Every node opens both; each seals with
//!   the one its CPU does fast ([`Cipher::preferred`]): AES-256-GCM where the CPU has AES
//!   instructions, ChaCha20-Poly1305 elsewhere.
//! - The session is the sender's process start time (milliseconds since the Unix epoch, 8 bytes
//!   big-endian) followed by 8 random bytes; the counter (8 bytes big-endian) starts at 0 and
//!   goes up by one per sealed packet.
//! - Each (session, cipher) seals with its own subkey: `HKDF-SHA256(salt =
//!   "ethcloud-session-v1", ikm = network key, info = session ‖ marker)`, 32 bytes. The 96-bit
//!   AEAD nonce is 4 zero bytes followed by the counter, so it is unique per subkey, and a new
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
//!
//! **Replay protection.** [`Opener`] keeps one window per sender *session* (not per address, so
//! a replay from another source address is caught as well): the highest counter seen and a
//! 2048-bit bitmap of the counters below it, as WireGuard does (RFC 6479). A counter is accepted
//! once if it is above the highest or within the 2048 below it and not yet seen; anything older
//! is dropped. The window is checked before decrypting (a cheap reject) and updated only after
//! the tag verified, so forged packets never change it.
//!
//! Sessions live in a `std::collections::HashMap` with the default, randomly keyed hasher (no
//! one can craft colliding sessions) capped at `max_sessions`. It is a map rather than a fixed
//! array because lookups are by a 16-byte key on every packet; its memory is reserved for the
//! first [`INITIAL_SESSIONS`] at construction; it grows, and a session's state is boxed, only
//! when a *new, authenticated* session is inserted, never while opening packets of known
//! sessions, so the steady state allocates nothing. A remembered session takes about
//! [`SESSION_STATE_LEN`] bytes (window and subkey, boxed, plus its map entry): 4096 sessions
//! take about 3.5 MiB. When the map is full, the least recently used session is evicted
//! (found by a scan: rare, and only a key holder can cause it) and a `floor` is raised to its
//! start time; a session that is not in the map and started at or before the floor is refused
//! ([`OpenError::StaleSession`]), so replays of forgotten sessions stay refused. There is no
//! time-based expiry. The floor compares start times read from different machines' clocks: a
//! peer whose clock is far behind may, after evictions, have to wait for its clock to pass the
//! floor, so `max_sessions` should comfortably exceed the number of peers.

use core::fmt;
use core::ops::Range;
use std::collections::HashMap;

use argon2::{Algorithm, Argon2, Params, Version};
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf::{self, Prk, Salt};

use crate::wire::{Token, TOKEN_LEN};

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
/// Counters accepted below the highest one seen, per session.
pub const WINDOW_LEN: u64 = 2048;
/// Bytes an [`Opener`] keeps per remembered session: its map entry (session and pointer) and
/// the boxed replay window, cipher and subkey (about 850 bytes on x86_64), not counting the
/// allocator's and the map's spare room.
pub const SESSION_STATE_LEN: usize =
    SESSION_LEN + core::mem::size_of::<Box<SessionState>>() + core::mem::size_of::<SessionState>();

/// Argon2id memory cost in KiB (64 MiB).
const KDF_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes.
const KDF_PASSES: u32 = 3;
/// Argon2id lanes.
const KDF_LANES: u32 = 1;
/// Salt prefix; the token's 7 wire bytes follow it.
const KDF_SALT_PREFIX: &[u8; 16] = b"ethcloud-key-v1:";
/// HKDF-SHA256 salt of the per-session subkeys.
const SUBKEY_SALT: &[u8; 19] = b"ethcloud-session-v1";

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
}

impl Cipher {
    /// Both ciphers, in marker order.
    pub const ALL: [Cipher; 2] = [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm];

    /// The marker byte after the token: 0x80 or 0x81 (never a valid clear switch byte).
    pub const fn marker(self) -> u8 {
        match self {
            Cipher::ChaCha20Poly1305 => 0x80,
            Cipher::Aes256Gcm => 0x81,
        }
    }

    /// The cipher a marker byte names, if any.
    pub const fn from_marker(marker: u8) -> Option<Cipher> {
        match marker {
            0x80 => Some(Cipher::ChaCha20Poly1305),
            0x81 => Some(Cipher::Aes256Gcm),
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

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Cipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Cipher::ChaCha20Poly1305 => "ChaCha20-Poly1305",
            Cipher::Aes256Gcm => "AES-256-GCM",
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

/// A 32-byte network key. Its bytes are overwritten with zeros when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the compiler from treating the stores above as dead.
        std::hint::black_box(&self.0);
    }
}

/// Why a key file could not be turned into a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The file is empty (or holds only a newline).
    Empty,
    /// The passphrase is longer than [`MAX_PASSPHRASE_LEN`] bytes.
    TooLong,
    /// Argon2 refused its parameters or failed; the reason is its own message.
    Kdf(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("key file is empty"),
            KeyError::TooLong => write!(
                f,
                "key file passphrase is longer than {MAX_PASSPHRASE_LEN} bytes"
            ),
            KeyError::Kdf(reason) => write!(f, "argon2 key derivation failed: {reason}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// Reads a key file's contents.
    ///
    /// - exactly 32 bytes: the raw key;
    /// - 64 hex digits, optionally followed by whitespace: the key in hex;
    /// - anything else: a passphrase (one trailing `\n` or `\r\n` removed; 1 to 1024 bytes),
    ///   stretched with Argon2id (m = 64 MiB, t = 3, p = 1, 32-byte output, version 0x13) with
    ///   salt `b"ethcloud-key-v1:"` followed by the token's 7 wire bytes, so one passphrase gives
    ///   each network its own key. This takes a moment (64 MiB, 3 passes), once, at start-up.
    ///
    /// A 32-byte file is always a raw key and a 64-hex-digit file always a hex key, even if it
    /// was meant as a passphrase. `contents` is not wiped here; the caller owns it.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] for an empty passphrase, [`KeyError::TooLong`] past 1024 bytes, and
    /// [`KeyError::Kdf`] if Argon2 fails (it cannot with these parameters short of memory).
    pub fn from_file_contents(contents: &[u8], token: Token) -> Result<Key, KeyError> {
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(contents) {
            return Ok(Key(raw));
        }
        if let Some(key) = parse_hex_key(contents.trim_ascii_end()) {
            return Ok(key);
        }
        let pass = contents
            .strip_suffix(b"\n")
            .map_or(contents, |p| p.strip_suffix(b"\r").unwrap_or(p));
        if pass.is_empty() {
            return Err(KeyError::Empty);
        }
        if pass.len() > MAX_PASSPHRASE_LEN {
            return Err(KeyError::TooLong);
        }
        let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(KEY_LEN))
            .map_err(|e| KeyError::Kdf(e.to_string()))?;
        let mut salt = [0u8; KDF_SALT_PREFIX.len() + TOKEN_LEN];
        let (prefix, token_bytes) = salt.split_at_mut(KDF_SALT_PREFIX.len());
        prefix.copy_from_slice(KDF_SALT_PREFIX);
        token_bytes.copy_from_slice(&token.to_bytes());
        let mut key = Key([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pass, &salt, &mut key.0)
            .map_err(|e| KeyError::Kdf(e.to_string()))?;
        Ok(key)
    }

    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// The HKDF-SHA256 pseudorandom key from which the session subkeys are expanded.
    fn subkey_prk(&self) -> Prk {
        Salt::new(hkdf::HKDF_SHA256, SUBKEY_SALT).extract(&self.0)
    }
}

/// The subkey of one sender session and cipher: HKDF-Expand(prk, session ‖ marker, 32 bytes).
#[allow(clippy::expect_used)]
fn subkey(prk: &Prk, session: &[u8; SESSION_LEN], cipher: Cipher) -> LessSafeKey {
    let marker = [cipher.marker()];
    let info: [&[u8]; 2] = [session, &marker];
    let okm = prk
        .expand(&info, cipher.algorithm())
        // expand fails only past 255 × 32 bytes; this asks for 32.
        .expect("invariant: a 32-byte HKDF-SHA256 output is always possible");
    LessSafeKey::new(UnboundKey::from(okm))
}

/// The AEAD nonce of `counter`: 4 zero bytes, then the counter big-endian.
fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    let (_, count) = bytes.split_at_mut(NONCE_LEN - COUNTER_LEN);
    count.copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// Exactly 64 hex digits (either case) into a key.
fn parse_hex_key(text: &[u8]) -> Option<Key> {
    if text.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = Key([0u8; KEY_LEN]);
    for (out, pair) in key.0.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (hex_digit(*pair.first()?)?, hex_digit(*pair.get(1)?)?);
        *out = hi << 4 | lo;
    }
    Some(key)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why a packet could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealError {
    /// The buffer has fewer than [`FRONT_LEN`] bytes before the switch byte or [`TAG_LEN`] after
    /// the body (or the packet is longer than the cipher allows).
    NoRoom,
    /// All 2^64 - 1 counters of this session are used; a new session (restart) is needed.
    CounterExhausted,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::NoRoom => f.write_str("no room around the packet for the seal"),
            SealError::CounterExhausted => {
                f.write_str("packet counter exhausted; a restart starts a new session")
            }
        }
    }
}

impl std::error::Error for SealError {}

/// Why a datagram could not be opened. Small and `Copy`, so the caller can count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenError {
    /// Shorter than a token, marker, session, counter and tag.
    Truncated,
    /// The byte after the token is no [`Cipher`] marker (0x80 or 0x81).
    NotSealed,
    /// The tag does not match: wrong key, wrong token, altered bytes, or the other cipher than
    /// this session's.
    Forged,
    /// The counter was seen already, or is older than the window.
    Replayed,
    /// An unknown session that started no later than one already forgotten.
    StaleSession,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpenError::Truncated => "sealed packet too short",
            OpenError::NotSealed => "packet is not sealed",
            OpenError::Forged => "sealed packet failed authentication",
            OpenError::Replayed => "sealed packet replayed or older than the window",
            OpenError::StaleSession => "sealed packet from a forgotten old session",
        })
    }
}

impl std::error::Error for OpenError {}

/// Seals outgoing datagrams for one session: one per process, counters from 0.
pub struct Sealer {
    key: LessSafeKey,
    cipher: Cipher,
    session: [u8; SESSION_LEN],
    next: u64,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("cipher", &self.cipher)
            .field("session", &self.session)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for `session` with this CPU's fastest cipher ([`Cipher::preferred`]).
    /// `session` is the process start time in milliseconds since the Unix epoch (8 bytes
    /// big-endian) followed by 8 random bytes, both read by the caller; it must differ on every
    /// start.
    pub fn new(key: &Key, session: [u8; SESSION_LEN]) -> Sealer {
        Sealer::with_cipher(key, session, Cipher::preferred())
    }

    /// A sealer for `session` with the given cipher (tests, test vectors, benchmarks).
    pub fn with_cipher(key: &Key, session: [u8; SESSION_LEN], cipher: Cipher) -> Sealer {
        Sealer {
            key: subkey(&key.subkey_prk(), &session, cipher),
            cipher,
            session,
            next: 0,
        }
    }

    /// The cipher this sealer uses.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// Seals in place. `buf[switch_at .. switch_at + inner_len]` holds the clear switch byte and
    /// body; the token, marker, session and counter are written into the [`FRONT_LEN`] bytes in
    /// front of it, the switch byte and body are encrypted, and the tag is written behind them.
    /// Returns the range of the sealed datagram in `buf`.
    ///
    /// # Errors
    ///
    /// [`SealError::NoRoom`] when `buf` lacks the room in front or behind (nothing is written);
    /// [`SealError::CounterExhausted`] after 2^64 - 1 packets.
    // HOT PATH: no allocation, no copy of the body.
    pub fn seal(
        &mut self,
        token: Token,
        buf: &mut [u8],
        switch_at: usize,
        inner_len: usize,
    ) -> Result<Range<usize>, SealError> {
        let start = switch_at.checked_sub(FRONT_LEN).ok_or(SealError::NoRoom)?;
        let body_end = switch_at.checked_add(inner_len).ok_or(SealError::NoRoom)?;
        let end = body_end.checked_add(TAG_LEN).ok_or(SealError::NoRoom)?;
        let sealed = buf.get_mut(start..end).ok_or(SealError::NoRoom)?;
        if self.next == u64::MAX {
            return Err(SealError::CounterExhausted);
        }
        let counter = self.next;

        let (front, rest) = sealed.split_at_mut(FRONT_LEN);
        let (inner, tag_room) = rest.split_at_mut(inner_len);
        let (aad, session_counter) = front.split_at_mut(field::AAD_END);
        let (token_room, marker) = aad.split_at_mut(TOKEN_LEN);
        token_room.copy_from_slice(&token.to_bytes());
        marker.fill(self.cipher.marker());
        let (session, count) = session_counter.split_at_mut(SESSION_LEN);
        session.copy_from_slice(&self.session);
        count.copy_from_slice(&counter.to_be_bytes());

        let tag = self
            .key
            .seal_in_place_separate_tag(nonce(counter), Aad::from(&*aad), inner)
            .map_err(|_| SealError::NoRoom)?;
        tag_room.copy_from_slice(tag.as_ref());
        self.next = counter + 1;
        Ok(start..end)
    }
}

/// Replay state of one sender session.
struct Window {
    /// The highest counter accepted.
    top: u64,
    /// Bit `c % WINDOW_LEN` is set when counter `c` (within the window) was accepted.
    seen: [u64; WINDOW_WORDS],
    /// The opener's tick when this session last had a packet accepted (for LRU eviction).
    last_used: u64,
}

const WINDOW_WORDS: usize = 32;
const _: () = assert!(WINDOW_WORDS as u64 * 64 == WINDOW_LEN);

/// The word and bit mask for counter `c`.
fn slot(c: u64) -> (usize, u64) {
    let bit = c % WINDOW_LEN;
    // bit / 64 < WINDOW_WORDS, so the conversion cannot fail.
    (usize::try_from(bit / 64).unwrap_or(0), 1 << (bit % 64))
}

impl Window {
    fn new(counter: u64, tick: u64) -> Window {
        let mut w = Window {
            top: counter,
            seen: [0; WINDOW_WORDS],
            last_used: tick,
        };
        w.mark(counter);
        w
    }

    fn is_seen(&self, c: u64) -> bool {
        let (word, mask) = slot(c);
        self.seen.get(word).is_some_and(|w| w & mask != 0)
    }

    fn mark(&mut self, c: u64) {
        let (word, mask) = slot(c);
        if let Some(w) = self.seen.get_mut(word) {
            *w |= mask;
        }
    }

    fn clear(&mut self, c: u64) {
        let (word, mask) = slot(c);
        if let Some(w) = self.seen.get_mut(word) {
            *w &= !mask;
        }
    }

    /// Whether `c` may be accepted (no change).
    fn check(&self, c: u64) -> Result<(), OpenError> {
        if c > self.top {
            Ok(())
        } else if self.top - c >= WINDOW_LEN || self.is_seen(c) {
            Err(OpenError::Replayed)
        } else {
            Ok(())
        }
    }

    /// Records `c`, which [`Window::check`] accepted.
    fn accept(&mut self, c: u64) {
        if c > self.top {
            if c - self.top >= WINDOW_LEN {
                self.seen = [0; WINDOW_WORDS];
            } else {
                // Forget the counters the window slides past: whole words where aligned.
                let mut n = self.top + 1;
                while n <= c {
                    let step = if n % 64 == 0 && c - n >= 63 {
                        let (word, _) = slot(n);
                        if let Some(w) = self.seen.get_mut(word) {
                            *w = 0;
                        }
                        64
                    } else {
                        self.clear(n);
                        1
                    };
                    match n.checked_add(step) {
                        Some(next) => n = next,
                        None => break,
                    }
                }
            }
            self.top = c;
        }
        self.mark(c);
    }
}

/// The start time (ms since the Unix epoch) in a session's first 8 bytes.
fn start_time(session: &[u8; SESSION_LEN]) -> u64 {
    let mut ms = [0u8; 8];
    ms.copy_from_slice(session.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(ms)
}

/// What an [`Opener`] remembers of one sender session.
struct SessionState {
    window: Window,
    /// The cipher of the session's first authenticated packet; its subkey is `key`.
    cipher: Cipher,
    key: LessSafeKey,
}

/// Opens incoming datagrams of one key and remembers each sender session's subkey and replay
/// window.
pub struct Opener {
    prk: Prk,
    /// Boxed, so that the map's spare slots cost a pointer each rather than a subkey.
    sessions: HashMap<[u8; SESSION_LEN], Box<SessionState>>,
    max_sessions: usize,
    /// Unknown sessions that started at or before this (ms) are refused.
    floor: Option<u64>,
    /// Counts accepted packets; orders sessions for LRU eviction.
    tick: u64,
    own: Option<[u8; SESSION_LEN]>,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("sessions", &self.sessions.len())
            .field("max_sessions", &self.max_sessions)
            .field("floor", &self.floor)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener that remembers at most `max_sessions` sender sessions (at least 1), e.g. 4096.
    /// It opens both ciphers.
    pub fn new(key: &Key, max_sessions: usize) -> Opener {
        let max_sessions = max_sessions.max(1);
        Opener {
            prk: key.subkey_prk(),
            sessions: HashMap::with_capacity(max_sessions.min(INITIAL_SESSIONS)),
            max_sessions,
            floor: None,
            tick: 0,
            own: None,
        }
    }

    /// Refuses packets of `session` (as [`OpenError::Replayed`]): give it this node's own
    /// session, so that its packets reflected back to it are dropped.
    pub fn refuse_session(&mut self, session: [u8; SESSION_LEN]) {
        self.own = Some(session);
    }

    /// The number of sender sessions remembered.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Authenticates and decrypts a sealed datagram in place. On success returns the range of
    /// the clear datagram (token, switch byte, body; the token is copied to just before the
    /// decrypted switch byte) inside `datagram`. The replay window is checked before decrypting
    /// and updated only once the tag has verified; an unknown session is remembered only then.
    ///
    /// # Errors
    ///
    /// [`OpenError::Truncated`] / [`OpenError::NotSealed`] for a malformed header,
    /// [`OpenError::Replayed`] / [`OpenError::StaleSession`] from the replay state (the bytes
    /// are untouched), [`OpenError::Forged`] when the tag does not verify (the bytes after the
    /// counter are then unspecified).
    // HOT PATH: no allocation for known sessions, no copy of the body.
    pub fn open(&mut self, datagram: &mut [u8]) -> Result<Range<usize>, OpenError> {
        let marker = *datagram.get(field::MARKER).ok_or(OpenError::Truncated)?;
        let cipher = Cipher::from_marker(marker).ok_or(OpenError::NotSealed)?;
        let tag_at = datagram
            .len()
            .checked_sub(TAG_LEN)
            .filter(|&t| t >= FRONT_LEN)
            .ok_or(OpenError::Truncated)?;
        // `front` is token, marker, session and counter; `sealed` is ciphertext and tag.
        let (front, sealed) = datagram.split_at_mut(FRONT_LEN);
        let session = front
            .get(field::SESSION..field::COUNTER)
            .and_then(|s| <[u8; SESSION_LEN]>::try_from(s).ok())
            .ok_or(OpenError::Truncated)?;
        let counter = front
            .get(field::COUNTER..FRONT_LEN)
            .and_then(|c| <[u8; COUNTER_LEN]>::try_from(c).ok())
            .map(u64::from_be_bytes)
            .ok_or(OpenError::Truncated)?;
        let aad = Aad::from(front.get(..field::AAD_END).ok_or(OpenError::Truncated)?);

        if self.own == Some(session) {
            return Err(OpenError::Replayed);
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            if state.cipher != cipher {
                return Err(OpenError::Forged);
            }
            state.window.check(counter)?;
            state
                .key
                .open_in_place(nonce(counter), aad, sealed)
                .map_err(|_| OpenError::Forged)?;
            self.tick = self.tick.wrapping_add(1);
            state.window.accept(counter);
            state.window.last_used = self.tick;
        } else {
            if self.floor.is_some_and(|f| start_time(&session) <= f) {
                return Err(OpenError::StaleSession);
            }
            let key = subkey(&self.prk, &session, cipher);
            key.open_in_place(nonce(counter), aad, sealed)
                .map_err(|_| OpenError::Forged)?;
            self.insert(session, cipher, key, counter);
        }
        front.copy_within(..TOKEN_LEN, field::SWITCH - TOKEN_LEN);
        Ok(field::SWITCH - TOKEN_LEN..tag_at)
    }

    /// Remembers a new session whose first packet (at `counter`) authenticated under `key`.
    fn insert(
        &mut self,
        session: [u8; SESSION_LEN],
        cipher: Cipher,
        key: LessSafeKey,
        counter: u64,
    ) {
        self.tick = self.tick.wrapping_add(1);
        if self.sessions.len() >= self.max_sessions {
            self.evict_least_recently_used();
        }
        let window = Window::new(counter, self.tick);
        let state = Box::new(SessionState {
            window,
            cipher,
            key,
        });
        self.sessions.insert(session, state);
    }

    /// Forgets the least recently used session and raises the floor to its start time.
    fn evict_least_recently_used(&mut self) {
        let victim = self
            .sessions
            .iter()
            .min_by_key(|(_, s)| s.window.last_used)
            .map(|(s, _)| *s);
        if let Some(victim) = victim {
            self.sessions.remove(&victim);
            let start = start_time(&victim);
            self.floor = Some(self.floor.map_or(start, |f| f.max(start)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{self, Kind, Message, Packet};

    const TOKEN: u64 = 134;
    /// Start time 1740786510848 ms (2025-02-28T23:48:30.848Z), then 8 fixed "random" bytes.
    const SESSION: [u8; 16] = [
        0x00, 0x00, 0x01, 0x95, 0x4e, 0xf6, 0x2c, 0x00, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07,
        0x18,
    ];

    fn token() -> Token {
        Token::new(TOKEN).unwrap()
    }

    fn test_key() -> Key {
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::try_from(i).unwrap();
        }
        Key::from_bytes(bytes)
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        s.chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    fn session(start_ms: u64, random: u64) -> [u8; 16] {
        let mut s = [0u8; 16];
        s[..8].copy_from_slice(&start_ms.to_be_bytes());
        s[8..].copy_from_slice(&random.to_be_bytes());
        s
    }

    /// Seals a clear datagram (token ‖ switch ‖ body) and returns the sealed bytes.
    fn seal(sealer: &mut Sealer, clear: &[u8]) -> Vec<u8> {
        let inner = &clear[TOKEN_LEN..];
        let mut buf = vec![0u8; FRONT_LEN + inner.len() + TAG_LEN];
        buf[FRONT_LEN..FRONT_LEN + inner.len()].copy_from_slice(inner);
        let token = Token::from_bytes(clear[..TOKEN_LEN].try_into().unwrap());
        let range = sealer
            .seal(token, &mut buf, FRONT_LEN, inner.len())
            .unwrap();
        assert_eq!(range, 0..buf.len());
        buf
    }

    fn open(opener: &mut Opener, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut buf = sealed.to_vec();
        opener.open(&mut buf).map(|r| buf[r].to_vec())
    }

    /// A short frame: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, type 0x88b5, "ethcloud".
    const FRAME: &[u8] = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5ethcloud";

    /// Key 00..1f, session above, token 134, ChaCha20-Poly1305, counter 0: GetPeers
    /// `00 00 00 00 00 00 86 02`.
    const GOLDEN_CHACHA_GET_PEERS: &str =
        "00000000000086 80 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
        33 f90b86332c8d19e427a75b292bf4bcda";
    /// The same sealer's next packet, counter 1: the frame above.
    const GOLDEN_CHACHA_FRAME: &str =
        "00000000000086 80 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
        952ea48274012f1b7ec549c2258eba0e4532ad1125a68a
        afa7ac29d7ed05feade7446205bc0088";
    /// As [`GOLDEN_CHACHA_GET_PEERS`] with AES-256-GCM.
    const GOLDEN_AES_GET_PEERS: &str =
        "00000000000086 81 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
        20 f0e55546ccac14a690343b75f025c5c2";
    /// As [`GOLDEN_CHACHA_FRAME`] with AES-256-GCM.
    const GOLDEN_AES_FRAME: &str =
        "00000000000086 81 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
        336ebce272494c8927b37df1e562552c1a7ff10682f183
        c7e45c8ef357f0efaee73884b1ac0ca4";
    /// HKDF-SHA256(salt "ethcloud-session-v1", ikm key 00..1f, info session ‖ marker), 32 bytes.
    const GOLDEN_CHACHA_SUBKEY: &str =
        "89253bdee09f8f23c1f1416d78d43d0e09ea6891d24f1ae8853130f12eacab36";
    const GOLDEN_AES_SUBKEY: &str =
        "176a5bcc65c53537e60ebbd51b250ab868b5cb92c3453e53958fba0e0678e49b";

    fn golden(cipher: Cipher) -> (&'static str, &'static str) {
        match cipher {
            Cipher::ChaCha20Poly1305 => (GOLDEN_CHACHA_GET_PEERS, GOLDEN_CHACHA_FRAME),
            Cipher::Aes256Gcm => (GOLDEN_AES_GET_PEERS, GOLDEN_AES_FRAME),
        }
    }

    fn clear_get_peers() -> Vec<u8> {
        let mut b = vec![0u8; 8];
        wire::emit_control(token(), Kind::GetPeers, &mut b).unwrap();
        b
    }

    fn clear_frame() -> Vec<u8> {
        let mut b = vec![0u8; 8 + FRAME.len()];
        let n = wire::emit_frame(token(), FRAME, &mut b).unwrap();
        b.truncate(n);
        b
    }

    fn sealed_frame(cipher: Cipher) -> Vec<u8> {
        let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
        seal(&mut sealer, &clear_frame())
    }

    /// Seals an empty GetPeers body at `counter` of `session`.
    fn packet(cipher: Cipher, session: [u8; 16], counter: u64) -> Vec<u8> {
        let mut sealer = Sealer::with_cipher(&test_key(), session, cipher);
        sealer.next = counter;
        seal(&mut sealer, &clear_get_peers())
    }

    #[test]
    fn layout_constants_add_up_and_fit_packet_buf() {
        assert_eq!(FRONT_LEN, 32);
        assert_eq!(OVERHEAD, 41);
        assert_eq!(FRONT_LEN - TOKEN_LEN + TAG_LEN, OVERHEAD);
        const { assert!(FRONT_LEN - TOKEN_LEN <= crate::buf::HEADROOM) };
        const { assert!(TAG_LEN <= crate::buf::TAILROOM) };
        for cipher in Cipher::ALL {
            assert!(cipher.marker() > Kind::Close as u8);
            assert_eq!(Cipher::from_marker(cipher.marker()), Some(cipher));
            assert_eq!(cipher.algorithm().tag_len(), TAG_LEN);
            assert_eq!(cipher.algorithm().nonce_len(), NONCE_LEN);
            assert_eq!(cipher.algorithm().key_len(), KEY_LEN);
        }
        let markers: Vec<u8> = (0..=255)
            .filter(|&m| Cipher::from_marker(m).is_some())
            .collect();
        assert_eq!(markers, [0x80, 0x81]);
    }

    #[test]
    fn preferred_cipher_follows_the_cpu() {
        let expected = if has_aes_instructions() {
            Cipher::Aes256Gcm
        } else {
            Cipher::ChaCha20Poly1305
        };
        assert_eq!(Cipher::preferred(), expected);
        assert_eq!(Sealer::new(&test_key(), SESSION).cipher(), expected);
        assert_eq!(Cipher::Aes256Gcm.to_string(), "AES-256-GCM");
        assert_eq!(Cipher::ChaCha20Poly1305.to_string(), "ChaCha20-Poly1305");
    }

    #[test]
    fn session_subkeys_match_golden_vectors() {
        for (cipher, expected) in [
            (Cipher::ChaCha20Poly1305, GOLDEN_CHACHA_SUBKEY),
            (Cipher::Aes256Gcm, GOLDEN_AES_SUBKEY),
        ] {
            let marker = [cipher.marker()];
            let info: [&[u8]; 2] = [&SESSION, &marker];
            let mut okm = [0u8; KEY_LEN];
            test_key()
                .subkey_prk()
                .expand(&info, cipher.algorithm())
                .unwrap()
                .fill(&mut okm)
                .unwrap();
            assert_eq!(hex(&okm), expected, "{cipher}");
        }
    }

    #[test]
    fn sealed_get_peers_and_frame_match_golden_vectors() {
        assert_eq!(clear_get_peers(), unhex("00000000000086 02"));
        for cipher in Cipher::ALL {
            let (golden_get_peers, golden_frame) = golden(cipher);
            let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
            let get_peers = seal(&mut sealer, &clear_get_peers());
            let frame = seal(&mut sealer, &clear_frame());
            assert_eq!(hex(&get_peers), hex(&unhex(golden_get_peers)), "{cipher}");
            assert_eq!(hex(&frame), hex(&unhex(golden_frame)), "{cipher}");
            assert_eq!(get_peers.len(), 8 + OVERHEAD);
            assert_eq!(frame.len(), 8 + FRAME.len() + OVERHEAD);
        }
    }

    #[test]
    fn golden_vectors_open_back_to_clear_datagrams() {
        for cipher in Cipher::ALL {
            let (golden_get_peers, golden_frame) = golden(cipher);
            let mut opener = Opener::new(&test_key(), 16);
            assert_eq!(
                open(&mut opener, &unhex(golden_get_peers)),
                Ok(clear_get_peers())
            );
            assert_eq!(open(&mut opener, &unhex(golden_frame)), Ok(clear_frame()));
        }
    }

    #[test]
    fn seal_then_open_round_trips_every_kind() {
        let t = token();
        let addrs: Vec<std::net::SocketAddr> = vec!["198.18.1.2:3210".parse().unwrap()];
        let mut clears = Vec::new();
        let mut b = vec![0u8; 64];
        let n = wire::emit_frame(t, FRAME, &mut b).unwrap();
        clears.push(b[..n].to_vec());
        let (n, _) = wire::emit_peers(t, addrs.iter().copied(), &mut b).unwrap();
        clears.push(b[..n].to_vec());
        for kind in [Kind::GetPeers, Kind::Close] {
            let n = wire::emit_control(t, kind, &mut b).unwrap();
            clears.push(b[..n].to_vec());
        }
        for cipher in Cipher::ALL {
            let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
            let mut opener = Opener::new(&test_key(), 16);
            for clear in &clears {
                let sealed = seal(&mut sealer, clear);
                assert_eq!(sealed.len(), clear.len() + OVERHEAD);
                assert_eq!(sealed[..TOKEN_LEN], clear[..TOKEN_LEN], "token in clear");
                assert_eq!(sealed[TOKEN_LEN], cipher.marker());
                let opened = open(&mut opener, &sealed).unwrap();
                assert_eq!(&opened, clear);
                let pkt = Packet::new_checked(&opened[..]).unwrap();
                assert_eq!(pkt.token(), t);
                assert!(Message::parse(pkt).is_ok());
            }
        }
    }

    #[test]
    fn chacha_and_aes_sealers_interoperate_with_one_opener() {
        let chacha_session = session(1_000, 1);
        let aes_session = session(2_000, 2);
        let mut chacha = Sealer::with_cipher(&test_key(), chacha_session, Cipher::ChaCha20Poly1305);
        let mut aes = Sealer::with_cipher(&test_key(), aes_session, Cipher::Aes256Gcm);
        let mut opener = Opener::new(&test_key(), 16);
        for _ in 0..3 {
            for sealer in [&mut chacha, &mut aes] {
                let sealed = seal(sealer, &clear_frame());
                assert_eq!(sealed[TOKEN_LEN], sealer.cipher().marker());
                assert_eq!(open(&mut opener, &sealed), Ok(clear_frame()));
                assert_eq!(open(&mut opener, &sealed), Err(OpenError::Replayed));
            }
        }
        assert_eq!(opener.sessions(), 2);
    }

    #[test]
    fn same_counter_in_two_sessions_or_ciphers_gives_unrelated_ciphertexts() {
        // The nonce holds only the counter: the subkey must differ per session and per cipher.
        let a = packet(Cipher::Aes256Gcm, session(1, 1), 0);
        let b = packet(Cipher::Aes256Gcm, session(1, 2), 0);
        let c = packet(Cipher::ChaCha20Poly1305, session(1, 1), 0);
        assert_ne!(a[FRONT_LEN..], b[FRONT_LEN..]);
        assert_ne!(a[FRONT_LEN..], c[FRONT_LEN..]);
    }

    #[test]
    fn known_session_under_the_other_marker_is_refused_without_harm() {
        for cipher in Cipher::ALL {
            let other = Cipher::ALL.into_iter().find(|&c| c != cipher).unwrap();
            let mut opener = Opener::new(&test_key(), 16);
            assert!(open(&mut opener, &packet(cipher, SESSION, 0)).is_ok());
            // A genuine seal of the same session under the other cipher (no honest sender does
            // this), and the first packet with only its marker switched.
            let switched = packet(other, SESSION, 1);
            let mut relabelled = packet(cipher, SESSION, 2);
            relabelled[TOKEN_LEN] = other.marker();
            for bad in [&switched, &relabelled] {
                assert_eq!(open(&mut opener, bad), Err(OpenError::Forged));
            }
            assert_eq!(opener.sessions(), 1);
            assert!(open(&mut opener, &packet(cipher, SESSION, 1)).is_ok());
            assert!(open(&mut opener, &packet(cipher, SESSION, 2)).is_ok());
        }
    }

    #[test]
    fn seal_in_place_leaves_frame_position_and_returns_its_range() {
        // Like a PacketBuf: headroom, token, switch byte, frame, tailroom.
        for cipher in Cipher::ALL {
            let switch_at = crate::buf::HEADROOM + TOKEN_LEN;
            let mut buf = vec![0u8; crate::buf::BUF_LEN];
            buf[switch_at] = Kind::Frame as u8;
            buf[switch_at + 1..switch_at + 1 + FRAME.len()].copy_from_slice(FRAME);
            let inner_len = 1 + FRAME.len();
            let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
            let sealed = sealer
                .seal(token(), &mut buf, switch_at, inner_len)
                .unwrap();
            assert_eq!(
                sealed,
                switch_at - FRONT_LEN..switch_at + inner_len + TAG_LEN
            );
            let mut opener = Opener::new(&test_key(), 16);
            let clear = opener.open(&mut buf[sealed.clone()]).unwrap();
            let clear = clear.start + sealed.start..clear.end + sealed.start;
            assert_eq!(clear, switch_at - TOKEN_LEN..switch_at + inner_len);
            assert_eq!(buf[clear], clear_frame()[..]);
        }
    }

    #[test]
    fn seal_without_room_is_refused_and_writes_nothing() {
        let mut sealer = Sealer::new(&test_key(), SESSION);
        let mut buf = [7u8; 64];
        let refused = [
            (FRONT_LEN - 1, 1),          // no room in front
            (FRONT_LEN, 64 - FRONT_LEN), // no room for the tag
            (usize::MAX, 1),
            (FRONT_LEN, usize::MAX),
        ];
        for (switch_at, inner_len) in refused {
            assert_eq!(
                sealer.seal(token(), &mut buf, switch_at, inner_len),
                Err(SealError::NoRoom)
            );
        }
        assert_eq!(buf, [7u8; 64]);
        assert_eq!(sealer.next, 0, "no counter used");
        assert!(sealer
            .seal(token(), &mut buf, FRONT_LEN, 64 - FRONT_LEN - TAG_LEN)
            .is_ok());
        assert_eq!(sealer.next, 1);
    }

    #[test]
    fn seal_refuses_once_counter_is_exhausted() {
        let mut sealer = Sealer::new(&test_key(), SESSION);
        sealer.next = u64::MAX - 1;
        let mut buf = [0u8; 64];
        assert!(sealer.seal(token(), &mut buf, FRONT_LEN, 1).is_ok());
        assert_eq!(
            sealer.seal(token(), &mut buf, FRONT_LEN, 1),
            Err(SealError::CounterExhausted)
        );
    }

    #[test]
    fn flipping_any_single_byte_fails_to_open() {
        for cipher in Cipher::ALL {
            let sealed = sealed_frame(cipher);
            for at in 0..sealed.len() {
                for mask in [0x01u8, 0x80, 0xff] {
                    let mut bad = sealed.clone();
                    bad[at] ^= mask;
                    // 0x80 ^ 0x01 is 0x81 and back: the other cipher's marker, so a forgery.
                    let expected = if at == TOKEN_LEN && Cipher::from_marker(bad[at]).is_none() {
                        OpenError::NotSealed
                    } else {
                        OpenError::Forged
                    };
                    let mut opener = Opener::new(&test_key(), 16);
                    assert_eq!(
                        open(&mut opener, &bad),
                        Err(expected),
                        "{cipher}: byte {at} ^ {mask:#x}"
                    );
                    assert_eq!(opener.sessions(), 0, "a forgery is not remembered");
                    // The forgery did not spoil the window for the real packet.
                    assert_eq!(open(&mut opener, &sealed), Ok(clear_frame()));
                    // Nor does one against a remembered session.
                    let mut next = packet(cipher, SESSION, 1);
                    let at = at.min(next.len() - 1);
                    next[at] ^= mask;
                    assert!(open(&mut opener, &next).is_err());
                    next[at] ^= mask;
                    assert!(open(&mut opener, &next).is_ok(), "{cipher}: byte {at}");
                }
            }
        }
    }

    #[test]
    fn other_key_or_token_fails_to_open() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&Key::from_bytes([9; 32]), 16);
            assert_eq!(
                open(&mut opener, &sealed_frame(cipher)),
                Err(OpenError::Forged)
            );
            let mut other = sealed_frame(cipher);
            other[..TOKEN_LEN].copy_from_slice(&Token::new(135).unwrap().to_bytes());
            let mut opener = Opener::new(&test_key(), 16);
            assert_eq!(open(&mut opener, &other), Err(OpenError::Forged));
            assert_eq!(opener.sessions(), 0);
        }
    }

    #[test]
    fn clear_datagram_is_not_sealed() {
        let mut opener = Opener::new(&test_key(), 16);
        assert_eq!(
            open(&mut opener, &clear_get_peers()),
            Err(OpenError::NotSealed)
        );
        assert_eq!(open(&mut opener, &clear_frame()), Err(OpenError::NotSealed));
    }

    #[test]
    fn truncation_at_every_length_fails_without_panic() {
        for cipher in Cipher::ALL {
            let sealed = sealed_frame(cipher);
            let mut opener = Opener::new(&test_key(), 16);
            for len in 0..sealed.len() {
                let expected = if len < FRONT_LEN + TAG_LEN {
                    OpenError::Truncated
                } else {
                    OpenError::Forged
                };
                assert_eq!(
                    open(&mut opener, &sealed[..len]),
                    Err(expected),
                    "{cipher}: len {len}"
                );
            }
            assert!(open(&mut opener, &sealed).is_ok());
        }
    }

    #[test]
    fn seeded_random_bytes_never_panic_or_open() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut opener = Opener::new(&test_key(), 4);
        let mut buf = [0u8; 200];
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 200).unwrap();
            for b in buf.iter_mut().take(len) {
                *b = u8::try_from(next() & 0xff).unwrap();
            }
            if len > TOKEN_LEN && next() % 4 != 0 {
                buf[TOKEN_LEN] = Cipher::ALL[usize::try_from(next() % 2).unwrap()].marker();
            }
            assert!(opener.open(&mut buf[..len]).is_err());
        }
        assert_eq!(opener.sessions(), 0);
    }

    #[test]
    fn remembered_session_state_stays_small() {
        // The node's MAX_SESSIONS times this is its worst case (plus the map's spare slots).
        const { assert!(SESSION_STATE_LEN <= 1024) };
        // With the node's MAX_SESSIONS, the worst case stays a few MiB.
        const { assert!(crate::node::MAX_SESSIONS * SESSION_STATE_LEN <= 4 << 20) };
    }

    #[test]
    fn replayed_packet_is_dropped() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&test_key(), 16);
            let p = packet(cipher, SESSION, 5);
            assert!(open(&mut opener, &p).is_ok());
            assert_eq!(open(&mut opener, &p), Err(OpenError::Replayed));
            assert_eq!(open(&mut opener, &p), Err(OpenError::Replayed));
        }
    }
    #[test]
    fn reordered_packets_within_window_are_accepted_once() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&test_key(), 16);
            let order = [10u64, 3, 12, 11, 0, 2047, 5, 1000];
            for c in order {
                assert!(
                    open(&mut opener, &packet(cipher, SESSION, c)).is_ok(),
                    "first {c}"
                );
            }
            for c in order {
                assert_eq!(
                    open(&mut opener, &packet(cipher, SESSION, c)),
                    Err(OpenError::Replayed),
                    "again {c}"
                );
            }
            assert!(open(&mut opener, &packet(cipher, SESSION, 4)).is_ok());
        }
    }
    #[test]
    fn counter_older_than_window_is_dropped() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&test_key(), 16);
            assert!(open(&mut opener, &packet(cipher, SESSION, 3000)).is_ok());
            assert_eq!(
                open(&mut opener, &packet(cipher, SESSION, 3000 - WINDOW_LEN)),
                Err(OpenError::Replayed)
            );
            assert!(open(&mut opener, &packet(cipher, SESSION, 3000 - WINDOW_LEN + 1)).is_ok());
            assert_eq!(
                open(&mut opener, &packet(cipher, SESSION, 0)),
                Err(OpenError::Replayed)
            );
        }
    }
    #[test]
    fn window_slide_keeps_seen_counters_and_frees_new_slots() {
        let mut w = Window::new(0, 0);
        for c in 1..=100 {
            w.check(c).unwrap();
            w.accept(c);
        }
        w.check(2100).unwrap();
        w.accept(2100); // window is now 53..=2100
        assert_eq!(w.check(60), Err(OpenError::Replayed), "seen, still inside");
        assert_eq!(w.check(52), Err(OpenError::Replayed), "slid out");
        assert_eq!(w.check(2099), Ok(()), "its slot held 51 and was freed");
        assert_eq!(w.check(101), Ok(()));
    }

    #[test]
    fn window_matches_a_simple_model_on_random_counters() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut w = Window::new(1_000, 0);
        let mut seen = std::collections::HashSet::from([1_000u64]);
        let mut top = 1_000u64;
        for i in 0..50_000 {
            // Mostly near the top, sometimes far ahead or far behind.
            let c = match next() % 16 {
                0 => top + next() % 5000,
                1 => top.saturating_sub(next() % 5000),
                _ => (top + 8).saturating_sub(next() % 2100),
            };
            let model_ok = c > top || (top - c < WINDOW_LEN && !seen.contains(&c));
            assert_eq!(
                w.check(c).is_ok(),
                model_ok,
                "step {i}: counter {c}, top {top}"
            );
            if model_ok {
                w.accept(c);
                seen.insert(c);
                top = top.max(c);
            }
        }
        let mut w = Window::new(u64::MAX - 3, 0);
        w.accept(u64::MAX);
        assert_eq!(w.check(u64::MAX - 3), Err(OpenError::Replayed));
        assert_eq!(w.check(u64::MAX - 1), Ok(()));
    }

    #[test]
    fn second_session_from_same_sender_is_independent() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&test_key(), 16);
            let restarted = session(start_time(&SESSION) + 60_000, 42);
            assert!(open(&mut opener, &packet(cipher, SESSION, 7)).is_ok());
            assert!(open(&mut opener, &packet(cipher, restarted, 7)).is_ok());
            assert!(open(&mut opener, &packet(cipher, restarted, 0)).is_ok());
            assert_eq!(
                open(&mut opener, &packet(cipher, SESSION, 7)),
                Err(OpenError::Replayed)
            );
            assert!(open(&mut opener, &packet(cipher, SESSION, 0)).is_ok());
            assert_eq!(opener.sessions(), 2);
        }
    }
    #[test]
    fn lru_eviction_raises_floor_and_refuses_stale_sessions() {
        for cipher in Cipher::ALL {
            let (a, b, c) = (session(100, 1), session(200, 2), session(300, 3));
            let mut opener = Opener::new(&test_key(), 2);
            assert!(open(&mut opener, &packet(cipher, a, 0)).is_ok());
            assert!(open(&mut opener, &packet(cipher, b, 0)).is_ok());
            // b is now least recently used.
            assert!(open(&mut opener, &packet(cipher, a, 1)).is_ok());
            assert!(open(&mut opener, &packet(cipher, c, 0)).is_ok()); // evicts b, floor = 200
            assert_eq!(opener.sessions(), 2);
            assert_eq!(opener.floor, Some(200));
            assert_eq!(
                open(&mut opener, &packet(cipher, b, 0)),
                Err(OpenError::StaleSession),
                "a replay of the forgotten session"
            );
            assert_eq!(
                open(&mut opener, &packet(cipher, b, 1)),
                Err(OpenError::StaleSession)
            );
            assert_eq!(
                open(&mut opener, &packet(cipher, session(150, 9), 0)),
                Err(OpenError::StaleSession),
                "an unknown session older than the floor"
            );
            assert_eq!(
                open(&mut opener, &packet(cipher, a, 1)),
                Err(OpenError::Replayed),
                "remembered sessions keep their windows"
            );
            assert!(open(&mut opener, &packet(cipher, a, 2)).is_ok());
            // A newer session evicts c (least recently used); a's start time is below the floor,
            // but a is still remembered, so it keeps working.
            assert!(open(&mut opener, &packet(cipher, session(400, 4), 0)).is_ok());
            assert_eq!(opener.floor, Some(300));
            assert!(open(&mut opener, &packet(cipher, a, 3)).is_ok());
            assert_eq!(
                open(&mut opener, &packet(cipher, c, 1)),
                Err(OpenError::StaleSession)
            );
        }
    }
    #[test]
    fn own_session_reflected_back_is_refused() {
        for cipher in Cipher::ALL {
            let mut opener = Opener::new(&test_key(), 16);
            opener.refuse_session(SESSION);
            assert_eq!(
                open(&mut opener, &sealed_frame(cipher)),
                Err(OpenError::Replayed)
            );
            assert!(open(&mut opener, &packet(cipher, session(1, 1), 0)).is_ok());
        }
    }
    #[test]
    fn raw_and_hex_key_files_parse() {
        let raw: Vec<u8> = (0..32).collect();
        let from_raw = Key::from_file_contents(&raw, token()).unwrap();
        assert_eq!(from_raw.0, test_key().0);
        let hex_text = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
        for contents in [
            hex_text.to_string(),
            format!("{hex_text}\n"),
            format!("{hex_text} \r\n\n"),
        ] {
            let key = Key::from_file_contents(contents.as_bytes(), token()).unwrap();
            assert_eq!(key.0, test_key().0, "{contents:?}");
        }
        assert_eq!(format!("{:?}", test_key()), "Key(..)");
    }

    #[test]
    fn empty_or_overlong_key_file_is_refused() {
        assert_eq!(
            Key::from_file_contents(b"", token()).unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Key::from_file_contents(b"\n", token()).unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Key::from_file_contents(b"\r\n", token()).unwrap_err(),
            KeyError::Empty
        );
        let long = vec![b'x'; MAX_PASSPHRASE_LEN + 1];
        assert_eq!(
            Key::from_file_contents(&long, token()).unwrap_err(),
            KeyError::TooLong
        );
        for e in [
            KeyError::Empty,
            KeyError::TooLong,
            KeyError::Kdf("x".into()),
        ] {
            let text = e.to_string();
            assert!(
                !text.contains('\n') && text == text.to_lowercase(),
                "{text}"
            );
        }
    }

    /// Argon2id(m = 64 MiB, t = 3, p = 1) of "correct horse battery staple", token 134.
    const GOLDEN_PASSPHRASE_KEY: &str =
        "1789e42f0de80a1afa2d10b1212401caa87f939d141f53734a492dfe57fd27e0";

    #[test]
    fn passphrase_key_is_deterministic_per_token_and_differs_across_tokens() {
        // Three KDF calls: each takes a while in a debug build.
        let k134 = Key::from_file_contents(b"correct horse battery staple\n", token()).unwrap();
        assert_eq!(hex(&k134.0), GOLDEN_PASSPHRASE_KEY);
        let crlf = Key::from_file_contents(b"correct horse battery staple\r\n", token()).unwrap();
        assert_eq!(crlf.0, k134.0);
        let other = Token::new(135).unwrap();
        let k135 = Key::from_file_contents(b"correct horse battery staple", other).unwrap();
        assert_ne!(k135.0, k134.0);
    }

    #[test]
    fn error_messages_are_one_lower_case_line() {
        let open_errors = [
            OpenError::Truncated,
            OpenError::NotSealed,
            OpenError::Forged,
            OpenError::Replayed,
            OpenError::StaleSession,
        ];
        let seal_errors = [SealError::NoRoom, SealError::CounterExhausted];
        let texts = open_errors
            .iter()
            .map(ToString::to_string)
            .chain(seal_errors.iter().map(ToString::to_string));
        for text in texts {
            assert!(!text.is_empty() && !text.contains('\n'), "{text}");
            assert_eq!(text, text.to_lowercase());
        }
    }
}
