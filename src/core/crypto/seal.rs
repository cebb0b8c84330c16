//! [`Sealer`]: sealing outgoing datagrams in place for this process's session, one counter
//! per packet, and [`SealError`].
//!
//! Owns writing the sealed header (token, marker, session, counter) in front of the clear
//! switch byte and the tag behind the body. It never moves the frame, allocates nothing per
//! packet, and reads no clock or RNG: the caller supplies the session.
//!
//! A sealer may be shared by several threads (the `--threads` lanes, behind an `Arc`): the
//! counter is an atomic, and each seal takes the next one with a single compare-and-swap, so
//! no counter is ever used twice. Threads sealing at once may send their counters slightly
//! out of order; the receiver's replay window ([`super::WINDOW_LEN`] counters) takes that.
//!
//! A thread may hold a sealer a little longer than the session it seals in lasts (a lane
//! sees the node's changes with its next view, up to 20 ms later). So a sealer that is
//! replaced (a renewed session, the switch to AEGIS) is told its successor
//! ([`Sealer::forward_to`]), and one whose session ends (a revoked key) is retired
//! ([`Sealer::retire`]): from then on every holder seals with the successor, or seals
//! nothing, at the cost of one atomic load per packet.

use core::fmt;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use super::{field, subkey, AeadKey, Cipher, Key, FRONT_LEN, SESSION_LEN, TAG_LEN};
use crate::wire::{Token, TOKEN_LEN};

/// Why a packet could not be sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SealError {
    /// The buffer has fewer than [`FRONT_LEN`] bytes before the switch byte or [`TAG_LEN`] after
    /// the body (or the packet is longer than the cipher allows).
    NoRoom,
    /// Every counter of this session up to 2^64 - 2 is used; a new session (restart) is needed.
    CounterExhausted,
    /// The session ended ([`Sealer::retire`]): nothing is sealed in it any more.
    Retired,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::NoRoom => f.write_str("no room around the packet for the seal"),
            SealError::CounterExhausted => {
                f.write_str("packet counter exhausted; a restart starts a new session")
            }
            SealError::Retired => f.write_str("the session ended"),
        }
    }
}

impl std::error::Error for SealError {}

/// Seals outgoing datagrams for one session: one per process, counters from 0 (or from
/// [`Sealer::starting_at`]).
pub struct Sealer {
    key: AeadKey,
    cipher: Cipher,
    session: [u8; SESSION_LEN],
    /// The next counter; `u64::MAX` once all are used.
    pub(super) next: AtomicU64,
    /// Counters skipped at the start, never used (the first counter of
    /// [`Sealer::starting_at`], plus [`SWITCH_GAP`] after a switch): not counted as sealed.
    skipped: u64,
    /// Set once the session is replaced or ended: the sealer that seals in its place
    /// (`Some`, [`Sealer::forward_to`]) or none (`None`, [`Sealer::retire`]).
    after: OnceLock<Option<Arc<Sealer>>>,
}

/// How many counters a cipher switch ([`Sealer::switched`]) skips: threads that still seal
/// with the old cipher between the switch's read of its counter and the hand-over
/// ([`Sealer::forward_to`]) take their counters from below the gap, so the receiver does not
/// refuse the new cipher's first packets as replays of those. Not a lock: a margin, 2^24
/// seals (about 16 s at a million a second; a thread that switches could be preempted for
/// milliseconds on a busy machine, which 64 did not cover), free in a space of 2^64 whose
/// renewal comes at 2^40 (the receiver's window takes any jump forward).
pub(super) const SWITCH_GAP: u64 = 1 << 24;

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("cipher", &self.cipher)
            .field("session", &self.session)
            .field("sealed", &self.sealed())
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
            next: AtomicU64::new(0),
            skipped: 0,
            after: OnceLock::new(),
        }
    }

    /// The same sealer with its first counter at `first` instead of 0: a keyed-mode node of
    /// this version starts at [`super::ECHO_COUNTER`]. Only before the first seal.
    #[must_use]
    pub fn starting_at(mut self, first: u64) -> Sealer {
        self.next.store(first, Ordering::Relaxed);
        // Not sealed: [`Sealer::sealed`] counts from here.
        self.skipped = first;
        self
    }

    /// A sealer for the same `key` and `session` as `old` (whose key the caller kept) under
    /// `cipher`, going on from `old`'s next counter: the switch of a session of per-node keys
    /// to AEGIS-128L (see [`Opener::allow_switch_to_aegis`](super::Opener::allow_switch_to_aegis)).
    /// Counters stay unique under each subkey, since the subkey differs by cipher; the new
    /// sealer skips 2^24 for seals of the old one still under way. The
    /// caller then hands it to the old one's holders with [`Sealer::forward_to`].
    pub fn switched(old: &Sealer, key: &Key, cipher: Cipher) -> Sealer {
        let mut sealer = Sealer::with_cipher(key, old.session, cipher);
        let current = old.current();
        let next = current.next.load(Ordering::Relaxed);
        let first = next.saturating_add(SWITCH_GAP);
        sealer.next.store(first, Ordering::Relaxed);
        sealer.skipped = current.skipped.saturating_add(first - next);
        sealer
    }

    /// From now on this sealer seals with `next` (the session's new cipher, or the session
    /// that renewed it), also for the threads that still hold this one. Only the first call
    /// (of this and [`Sealer::retire`]) counts: a sealer is replaced at most once.
    pub fn forward_to(&self, next: Arc<Sealer>) {
        let _ = self.after.set(Some(next));
    }

    /// From now on this sealer seals nothing ([`SealError::Retired`]), also for the threads that
    /// still hold it: its session ended (a revoked key, a session not renewed in time). Does
    /// nothing if it was already forwarded or retired.
    pub fn retire(&self) {
        let _ = self.after.set(None);
    }

    /// The sealer that seals in this one's place: itself, or the last of its successors;
    /// `None` once retired.
    // HOT PATH: one atomic load for a sealer still in use.
    #[inline]
    fn live(&self) -> Option<&Sealer> {
        let mut sealer = self;
        // Ends: each successor was made after the sealer it follows, so there is no cycle.
        while let Some(after) = sealer.after.get() {
            sealer = after.as_deref()?;
        }
        Some(sealer)
    }

    /// This sealer's last successor, or itself if it was never forwarded (also if retired).
    fn current(&self) -> &Sealer {
        let mut sealer = self;
        while let Some(Some(next)) = sealer.after.get() {
            sealer = next;
        }
        sealer
    }

    /// Whether [`Sealer::retire`] ended it (or the sealer it forwards to).
    pub fn is_retired(&self) -> bool {
        self.live().is_none()
    }

    /// How many packets this sealer has sealed (the next counter, less the counters a switch
    /// skipped); of its last successor once forwarded.
    // HOT PATH
    #[inline]
    pub fn sealed(&self) -> u64 {
        let sealer = match self.after.get() {
            None => self,
            Some(_) => self.current(),
        };
        sealer
            .next
            .load(Ordering::Relaxed)
            .saturating_sub(sealer.skipped)
    }

    /// The cipher this sealer uses.
    pub fn cipher(&self) -> Cipher {
        self.current().cipher
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
        &self,
        token: Token,
        buf: &mut [u8],
        switch_at: usize,
        inner_len: usize,
    ) -> Result<Range<usize>, SealError> {
        self.live()
            .ok_or(SealError::Retired)?
            .seal_here(token, buf, switch_at, inner_len)
    }

    /// [`Sealer::seal`] with this very sealer.
    // HOT PATH
    #[inline]
    fn seal_here(
        &self,
        token: Token,
        buf: &mut [u8],
        switch_at: usize,
        inner_len: usize,
    ) -> Result<Range<usize>, SealError> {
        let start = switch_at.checked_sub(FRONT_LEN).ok_or(SealError::NoRoom)?;
        let body_end = switch_at.checked_add(inner_len).ok_or(SealError::NoRoom)?;
        let end = body_end.checked_add(TAG_LEN).ok_or(SealError::NoRoom)?;
        let sealed = buf.get_mut(start..end).ok_or(SealError::NoRoom)?;
        // Each counter once, also across threads; `u64::MAX` itself is never used.
        let counter = self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| SealError::CounterExhausted)?;

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
            .seal(counter, aad, inner)
            .ok_or(SealError::NoRoom)?;
        tag_room.copy_from_slice(&tag);
        Ok(start..end)
    }
}
