//! [`Opener`]: opening incoming datagrams, the replay window of each sender session, and the
//! bounded map of remembered sessions with its least-recently-used eviction and floor; and
//! [`OpenError`].
//!
//! Owns the replay rules (checked before decrypting, updated only after the tag verified) and
//! the session memory. It allocates only when a new, authenticated session is remembered (and
//! then, with the map full, once per [`EVICT_SHARE`]th of its sessions, for the eviction's
//! tally of processes), and once per key rotation
//! (for [`Opener::add_key`]'s scratch buffer). It reads no clock: session start times come from
//! the packets, and the wall clock that caps the floor is told ([`Opener::set_wall_clock_ms`]).
//!
//! **Key rotation.** An opener holds one key, or two while a key rotation is under way
//! ([`Opener::add_key`] until [`Opener::retire_old_key`]). A remembered session keeps the
//! subkey it was derived with, so only a packet of an unknown session needs the keys: it is
//! tried under the newer key first, then under the older one. The AEAD wipes the plaintext of a
//! packet that fails, so for the second try the sealed bytes are first copied into a scratch
//! buffer reserved by `add_key` (this costs a copy only for the first packet of each new
//! session while two keys are held). Each remembered session is tagged with the generation of
//! the key it was derived with; retiring the older key forgets the sessions of its generation.
//!
//! **Eviction.** When the map is full, the sender *processes* used least recently go, a
//! sixteenth of them ([`EVICT_SHARE`], at least one) at once, so the walk over every session
//! is paid once per that many new sessions: each with every remembered session of its start
//! time (a keyed node seals in up to three sessions, one per cipher, that share it), and the
//! floor rises to the latest of their start times. An unknown session that
//! started no later than the floor is refused, unless a session with its very start time is
//! still remembered: then it is a twin of a process that was never evicted (evicting one
//! session of a process evicts them all), which has just started to seal with another cipher.

use core::fmt;
use core::ops::Range;
use std::collections::HashMap;

use ring::hkdf::Prk;

use super::{
    field, subkey, AeadKey, Cipher, Key, COUNTER_LEN, FRONT_LEN, INITIAL_SESSIONS, SESSION_LEN,
    TAG_LEN, WINDOW_LEN,
};
use crate::wire::TOKEN_LEN;

/// Bytes an [`Opener`] keeps per remembered session: its map entry (session and pointer) and
/// the boxed replay window, cipher and subkey (about 1.6 KiB on x86_64), not counting the
/// allocator's and the map's spare room.
pub const SESSION_STATE_LEN: usize =
    SESSION_LEN + core::mem::size_of::<Box<SessionState>>() + core::mem::size_of::<SessionState>();

/// Why a datagram could not be opened. Small and `Copy`, so the caller can count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OpenError {
    /// Shorter than a token, marker, session, counter and tag.
    Truncated,
    /// The byte after the token is no [`Cipher`] marker (0x80 to 0x84).
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

/// Replay state of one sender session.
struct Window {
    /// The highest counter accepted.
    top: u64,
    /// Bit `c % WINDOW_LEN` is set when counter `c` (within the window) was accepted.
    seen: [u64; WINDOW_WORDS],
    /// The opener's tick when this session last had a packet accepted (for LRU eviction).
    last_used: u64,
}

const WINDOW_WORDS: usize = 128;
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
pub(super) fn start_time(session: &[u8; SESSION_LEN]) -> u64 {
    let mut ms = [0u8; 8];
    ms.copy_from_slice(session.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(ms)
}

/// 2024-01-01T00:00:00Z in ms since the Unix epoch: an earlier wall clock is not believed
/// (see [`Opener::set_wall_clock_ms`]).
const MIN_PLAUSIBLE_WALL_MS: u64 = 1_704_067_200_000;

/// What an [`Opener`] remembers of one sender session.
struct SessionState {
    window: Window,
    /// The cipher of the session's first authenticated packet; its subkey is `key`.
    cipher: Cipher,
    key: AeadKey,
    /// The generation of the network key `key` was derived from (see [`Opener::add_key`]).
    generation: u32,
}

/// How many of this node's own sessions an [`Opener`] refuses ([`Opener::refuse_session`]).
const OWN_SESSIONS: usize = 6;

/// The largest sealed part (ciphertext and tag) that [`Opener::add_key`]'s scratch buffer
/// holds: a whole UDP payload. A longer one (no UDP datagram is) is tried under the newer key
/// only.
const SCRATCH_LEN: usize = 65_536;

/// Opens incoming datagrams of one key (two during a key rotation) and remembers each sender
/// session's subkey and replay window.
pub struct Opener {
    /// The newest key's HKDF input key; its generation is `generation`.
    prk: Prk,
    /// During a key rotation, the previous key's (generation `generation - 1`).
    old_prk: Option<Prk>,
    /// Counts the keys added by [`Opener::add_key`]: 0 for the key of [`Opener::new`].
    generation: u32,
    /// The sealed bytes of a packet tried under the newer key, kept for the older one; its room
    /// is reserved by [`Opener::add_key`].
    scratch: Vec<u8>,
    /// Boxed, so that the map's spare slots cost a pointer each rather than a subkey.
    sessions: HashMap<[u8; SESSION_LEN], Box<SessionState>>,
    max_sessions: usize,
    /// Unknown sessions that started at or before this (ms) are refused (but see `starts`).
    pub(super) floor: Option<u64>,
    /// How many remembered sessions have each start time: a process's twins.
    starts: HashMap<u64, u32>,
    /// Counts accepted packets; orders sessions for LRU eviction.
    tick: u64,
    /// Whether a remembered session sealed under another cipher may move to an AEGIS cipher
    /// ([`Opener::allow_switch_to_aegis`]).
    switch_to_aegis: bool,
    /// This node's own sessions (the current ones, and those before a key rotation; keyed
    /// mode may seal in three at once, one per cipher).
    own: [Option<[u8; SESSION_LEN]>; OWN_SESSIONS],
    /// The local wall clock, ms since the Unix epoch, as last told
    /// ([`Opener::set_wall_clock_ms`]): the floor is never raised past it.
    pub(super) wall_ms: Option<u64>,
    /// Start times of sender processes the node knows to be live ([`Opener::pin_process`]),
    /// with how many times each was pinned: their sessions of the newest key never evicted.
    pinned: HashMap<u64, u32>,
    /// The last packet opened was the first of a session not remembered before.
    opened_new: bool,
}

/// When the map is full, this share of its sender processes (at least one) is forgotten at
/// once: the walk over every session then happens once per that many new sessions, not for
/// each (a member making up new sessions at full speed made it cost about a millisecond per
/// datagram with 16,384 sessions remembered).
pub const EVICT_SHARE: usize = 16;

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("sessions", &self.sessions.len())
            .field("max_sessions", &self.max_sessions)
            .field("floor", &self.floor)
            .field("generation", &self.generation)
            .field("old_key", &self.old_prk.is_some())
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// An opener that remembers at most `max_sessions` sender sessions (at least 1), e.g. 4096.
    /// It opens every cipher; each datagram's marker says which.
    pub fn new(key: &Key, max_sessions: usize) -> Opener {
        let max_sessions = max_sessions.max(1);
        Opener {
            prk: key.subkey_prk(),
            old_prk: None,
            generation: 0,
            scratch: Vec::new(),
            sessions: HashMap::with_capacity(max_sessions.min(INITIAL_SESSIONS)),
            max_sessions,
            floor: None,
            starts: HashMap::new(),
            tick: 0,
            switch_to_aegis: false,
            own: [None; OWN_SESSIONS],
            wall_ms: None,
            pinned: HashMap::new(),
            opened_new: false,
        }
    }

    /// Whether the last packet [`Opener::open`] opened was the first of a session it did not
    /// remember (a peer's new process, after a restart or a key rotation, or a replay of one
    /// it never heard or forgot).
    pub fn opened_new_session(&self) -> bool {
        self.opened_new
    }

    /// Keeps the sessions of the sender process that started at `start` (ms, the first 8
    /// bytes of its sessions) from being evicted, until as many [`Opener::unpin_process`]
    /// calls: the node pins the process of each peer it verified, whose Echo of a fresh
    /// Challenge proved it live. Without that, replayed first packets of sessions the node
    /// does not remember (recorded before it restarted, or sent to other members) fill the
    /// map and, least recently used being whoever was quiet during the burst, evict live
    /// peers' processes and raise the floor past their start: those peers were then refused
    /// ([`OpenError::StaleSession`]) until they restarted. At most one pin per peer, so the
    /// map (four sessions per peer) always has room for unpinned ones.
    pub fn pin_process(&mut self, start: u64) {
        *self.pinned.entry(start).or_insert(0) += 1;
    }

    /// Undoes one [`Opener::pin_process`] of `start`.
    pub fn unpin_process(&mut self, start: u64) {
        if let Some(count) = self.pinned.get_mut(&start) {
            *count -= 1;
            if *count == 0 {
                self.pinned.remove(&start);
            }
        }
    }

    /// Tells the opener the local wall clock (ms since the Unix epoch). A session forgotten
    /// to make room raises the floor to its start time, but never past this: a sender whose
    /// clock runs ahead (or a member that claims a start time years ahead) would otherwise
    /// push the floor above every session yet to start, and the node would refuse every new
    /// one (a peer restarted, a new peer) until it restarts itself. Call it now and then.
    ///
    /// A clock before 2024 is not believed (a board without a real-time clock, booted at
    /// 1970 before NTP): the cap would hold the floor near zero and protect nothing, so the
    /// floor then follows the forgotten sessions' start times as it did without a clock.
    pub fn set_wall_clock_ms(&mut self, ms: u64) {
        self.wall_ms = (ms >= MIN_PLAUSIBLE_WALL_MS).then_some(ms);
    }

    /// Refuses packets of `session` (as [`OpenError::Replayed`]): give it this node's own
    /// session, so that its packets reflected back to it are dropped. The last six sessions
    /// given are refused (in keyed mode the current one of each of its up to three ciphers,
    /// and the three before a key rotation).
    pub fn refuse_session(&mut self, session: [u8; SESSION_LEN]) {
        if !self.own.contains(&Some(session)) {
            self.own.rotate_right(1);
            self.own[0] = Some(session);
        }
    }

    /// Lets a remembered session move from the cipher of its first packet to AEGIS-128L or
    /// AEGIS-128X4, once: the first packet under marker 0x83 or 0x84 that opens under the
    /// session's subkey of that cipher binds the session to it, and packets under any other
    /// cipher are refused from then on (a session that began under an AEGIS cipher never
    /// switches). For the sessions of per-node keys, whose sender switches once the receiver
    /// said it opens AEGIS-128L ([`Sealer::switched`](super::Sealer::switched)). A packet that tries
    /// and fails costs one subkey derivation, as a packet of an unknown session does.
    pub fn allow_switch_to_aegis(&mut self) {
        self.switch_to_aegis = true;
    }

    /// Starts a key rotation: `key` becomes the newest key and the current one is kept as the
    /// older key, so that new sender sessions open under either (newest first). Remembered
    /// sessions keep their subkeys. If an older key was still held, it is retired first
    /// ([`Opener::retire_old_key`]): at most two keys are held.
    pub fn add_key(&mut self, key: &Key) {
        if self.old_prk.is_some() {
            self.retire_old_key();
        }
        self.old_prk = Some(core::mem::replace(&mut self.prk, key.subkey_prk()));
        self.generation = self.generation.wrapping_add(1);
        self.scratch = Vec::with_capacity(SCRATCH_LEN);
    }

    /// Ends a key rotation: new sessions under the older key are refused from now on, and the
    /// remembered sessions that were derived from it are forgotten (their packets then fail as
    /// [`OpenError::Forged`]). Returns how many sessions were forgotten; 0 without an older key.
    pub fn retire_old_key(&mut self) -> usize {
        if self.old_prk.take().is_none() {
            return 0;
        }
        self.scratch = Vec::new();
        let before = self.sessions.len();
        let generation = self.generation;
        self.sessions.retain(|_, s| s.generation == generation);
        self.recount_starts();
        before - self.sessions.len()
    }

    /// Whether an older key is held (a key rotation is under way).
    pub fn has_old_key(&self) -> bool {
        self.old_prk.is_some()
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
        let aad = front.get(..field::AAD_END).ok_or(OpenError::Truncated)?;

        self.opened_new = false;
        if self.own.contains(&Some(session)) {
            return Err(OpenError::Replayed);
        }
        if let Some(state) = self.sessions.get_mut(&session) {
            let switching = state.cipher != cipher;
            // The one switch allowed: from a cipher that is no AEGIS to an AEGIS one.
            if switching && !(self.switch_to_aegis && cipher.is_aegis() && !state.cipher.is_aegis())
            {
                return Err(OpenError::Forged);
            }
            state.window.check(counter)?;
            if switching {
                let prk = if state.generation == self.generation {
                    &self.prk
                } else {
                    self.old_prk.as_ref().ok_or(OpenError::Forged)?
                };
                let key = subkey(prk, &session, cipher);
                if !key.open(counter, aad, sealed) {
                    return Err(OpenError::Forged);
                }
                state.cipher = cipher;
                state.key = key;
            } else if !state.key.open(counter, aad, sealed) {
                return Err(OpenError::Forged);
            }
            self.tick = self.tick.wrapping_add(1);
            state.window.accept(counter);
            state.window.last_used = self.tick;
        } else {
            let start = start_time(&session);
            if self.floor.is_some_and(|f| start <= f) && !self.starts.contains_key(&start) {
                return Err(OpenError::StaleSession);
            }
            let (key, generation) =
                self.open_new_session(&session, cipher, counter, aad, sealed)?;
            if !self.insert(session, cipher, key, generation, counter) {
                return Err(OpenError::StaleSession);
            }
            self.opened_new = true;
        }
        front.copy_within(..TOKEN_LEN, field::SWITCH - TOKEN_LEN);
        Ok(field::SWITCH - TOKEN_LEN..tag_at)
    }

    /// Opens the first packet of an unknown session in place: under the newest key, else under
    /// the older one during a key rotation. Returns the subkey that opened it and its key's
    /// generation.
    fn open_new_session(
        &mut self,
        session: &[u8; SESSION_LEN],
        cipher: Cipher,
        counter: u64,
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Result<(AeadKey, u32), OpenError> {
        let key = subkey(&self.prk, session, cipher);
        let old_prk = match &self.old_prk {
            Some(old) if sealed.len() <= self.scratch.capacity() => old,
            _ => {
                if !key.open(counter, aad, sealed) {
                    return Err(OpenError::Forged);
                }
                return Ok((key, self.generation));
            }
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(sealed);
        if key.open(counter, aad, sealed) {
            return Ok((key, self.generation));
        }
        sealed.copy_from_slice(&self.scratch);
        let key = subkey(old_prk, session, cipher);
        if !key.open(counter, aad, sealed) {
            return Err(OpenError::Forged);
        }
        Ok((key, self.generation.wrapping_sub(1)))
    }

    /// Remembers a new session whose first packet (at `counter`) authenticated under `key`, of
    /// the key of `generation`. Returns false, remembering nothing, when the map is full of
    /// that session's own process (its twins): the packet must then be refused, since a
    /// session that is not remembered has no replay window.
    fn insert(
        &mut self,
        session: [u8; SESSION_LEN],
        cipher: Cipher,
        key: AeadKey,
        generation: u32,
        counter: u64,
    ) -> bool {
        self.tick = self.tick.wrapping_add(1);
        if self.sessions.len() >= self.max_sessions
            && !self.evict_least_recently_used(start_time(&session))
        {
            return false;
        }
        *self.starts.entry(start_time(&session)).or_insert(0) += 1;
        let window = Window::new(counter, self.tick);
        let state = Box::new(SessionState {
            window,
            cipher,
            key,
            generation,
        });
        self.sessions.insert(session, state);
        true
    }

    /// Forgets the sender processes used least recently, the [`EVICT_SHARE`]th of them (at
    /// least one; each with every session of its start time, used last when the most recent
    /// of them was), the old key's first while there are any, and raises the floor to the
    /// latest start time among them.
    /// Never the process that started at `arriving`: the new session is its twin, and
    /// evicting the process would let the twin in and then, through the exemption of twins,
    /// replays of the sessions just forgotten. Never a pinned process
    /// ([`Opener::pin_process`]) under the newest key: during a key rotation the pinned
    /// processes of the old key go first as the others do (each member switches within the
    /// minute, and the pin moves to its new process once it answers a Challenge). Runs only
    /// when a new session arrives with the map full; returns false if nothing could go.
    fn evict_least_recently_used(&mut self, arriving: u64) -> bool {
        // During a rotation the processes of the old key go first, whenever they were used:
        // each member switches within the minute and they are all forgotten then anyway,
        // while a new-key session forgotten would raise the bar past its start and be refused
        // for good (one that seals quietly meanwhile is often the least recently used).
        let mut used: HashMap<u64, (bool, u64)> = HashMap::with_capacity(self.starts.len());
        for (id, s) in &self.sessions {
            let start = start_time(id);
            let pinned = s.generation == self.generation && self.pinned.contains_key(&start);
            if start != arriving && !pinned {
                let current = s.generation == self.generation;
                let entry = used.entry(start).or_insert((current, 0));
                entry.0 |= current;
                entry.1 = entry.1.max(s.window.last_used);
            }
        }
        // (Newest key, used last, start time): the old key's first, then the least recent.
        let mut victims: Vec<(bool, u64, u64)> = used
            .into_iter()
            .map(|(start, (current, last))| (current, last, start))
            .collect();
        let share = (victims.len() / EVICT_SHARE).max(1);
        if victims.len() > share {
            victims.select_nth_unstable(share - 1);
            victims.truncate(share);
        }
        victims.sort_unstable_by_key(|(_, _, start)| *start);
        let Some(&(_, _, latest)) = victims.last() else {
            return false;
        };
        self.sessions.retain(|id, _| {
            victims
                .binary_search_by_key(&start_time(id), |(_, _, start)| *start)
                .is_err()
        });
        for (_, _, start) in &victims {
            self.starts.remove(start);
        }
        let raised = self.wall_ms.map_or(latest, |now| latest.min(now));
        self.floor = Some(self.floor.map_or(raised, |f| f.max(raised)));
        true
    }

    /// Counts the remembered sessions per start time again (after many were forgotten).
    fn recount_starts(&mut self) {
        self.starts.clear();
        for id in self.sessions.keys() {
            *self.starts.entry(start_time(id)).or_insert(0) += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_slide_keeps_seen_counters_and_frees_new_slots() {
        let mut w = Window::new(0, 0);
        for c in 1..=100 {
            w.check(c).unwrap();
            w.accept(c);
        }
        let top = WINDOW_LEN + 52;
        w.check(top).unwrap();
        w.accept(top); // window is now 53..=top
        assert_eq!(w.check(60), Err(OpenError::Replayed), "seen, still inside");
        assert_eq!(w.check(52), Err(OpenError::Replayed), "slid out");
        assert_eq!(w.check(top - 1), Ok(()), "its slot held 51 and was freed");
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
                0 => top + next() % (2 * WINDOW_LEN + 1000),
                1 => top.saturating_sub(next() % (2 * WINDOW_LEN + 1000)),
                _ => (top + 8).saturating_sub(next() % (WINDOW_LEN + 52)),
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
}
