//! The keyed and identity modes' glue: sealing the control messages (`send_control`,
//! `send_control_buffer`, `seal_overhead`), key rotation in keyed mode (`rekey` and its
//! phases), keyed mode's choice of cipher for frames and control messages (`KeyedAegis`:
//! AEGIS-128L or -128X4 while every verified peer said it opens it, from their Hellos), and in
//! identity mode the trusted keys (`set_trusted`) and starting the handshakes that sealing
//! asked for. The cryptography itself is in `crate::crypto` and `crate::identity`.
//!
//! It seals and counts what the other parts ask it to send; it must not decide what is sent or
//! to whom (beyond removing the peers of keys no longer trusted). Frames are sealed on the hot
//! path in `forward.rs`, datagrams opened in `receive.rs`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, info};

use super::{Keyed, Node, Rekey, CONTROL_AT, KEY_GRACE, KEY_ROLLOVER};
use crate::crypto::{self, Cipher, Opener, Sealer};
use crate::identity::{SealOutcome, TrustedKeys};
use crate::io::{Device, Socket};
use crate::time::Instant;
use crate::wire::{self, emit_control, Kind};

/// A key rotation under way (see [`Node::rekey`]).
#[derive(Debug)]
pub(super) enum Rollover {
    /// Phase 1: new sessions open under both keys; we seal with the old one until `until`,
    /// then with `next`.
    Opening { next: Keyed, until: Instant },
    /// Phase 2: we seal with the new key; the old one is retired at `until`.
    Sealing { until: Instant },
}

/// Keyed mode with AEGIS-128L (not `--no-aegis`, and a CPU with AES instructions): a second
/// sealer, in a session of its own, for the peers whose Hello said they open AEGIS-128L, and,
/// where this CPU has 512-bit vector AES (`aegis_x4`), a third one for AEGIS-128X4 in a third
/// session, for the peers whose Hello said they have it too. Control messages to a peer are
/// sealed with the fastest of them it takes; frames with the fastest that every verified peer
/// takes, since a flood is sealed once for all of them.
#[derive(Debug)]
pub(super) struct KeyedAegis {
    sealer: Arc<Sealer>,
    /// The session `sealer` seals in ([`aegis_session`] of the node's).
    session: [u8; crypto::SESSION_LEN],
    /// The AEGIS-128X4 sealer and its session ([`x4_session`] of the node's), if `aegis_x4`.
    x4: Option<(Arc<Sealer>, [u8; crypto::SESSION_LEN])>,
    /// The first counter of every sealer (see [`crate::crypto::ECHO_COUNTER`]).
    first_counter: u64,
    /// The peers whose Hello had the AEGIS-128L flag, each with the sender session the Hello
    /// came in (the flags hold for that process of the peer only: see
    /// [`Node::keyed_aegis_seen`]), whether it also had the AEGIS-128X4 flag, and whether it
    /// had the partial-checksum flag (0x20). At most the peer table's peers: each leaves with
    /// its peer.
    peers: HashMap<SocketAddr, ([u8; crypto::SESSION_LEN], bool, bool)>,
    /// What frames are sealed with: AEGIS-128X4 or AEGIS-128L while every verified peer (at
    /// least one) takes it, else `None`: the network key's first cipher.
    frames: Option<Cipher>,
    /// A change that may allow a faster cipher for frames (a peer gone, or one that takes a
    /// faster one now) is decided by a walk over the verified peers: at once, but at most
    /// once per [`AEGIS_WALK_EVERY`]; one that comes sooner sets this, and the next
    /// housekeeping walks. A change that calls for a slower one is made at once, without a
    /// walk. So a member's Hellos or a churn of addresses cost no walk per datagram.
    upgrade_due: bool,
    /// When the verified peers were last walked.
    walked: Option<Instant>,
}

/// The verified peers are walked at most this often to decide whether frames may be sealed
/// with a faster cipher ([`KeyedAegis::upgrade_due`]).
pub(super) const AEGIS_WALK_EVERY: core::time::Duration = core::time::Duration::from_secs(1);

/// The order of what frames may be sealed with: the network key's first cipher (`None`),
/// then AEGIS-128L, then AEGIS-128X4.
fn frames_rank(cipher: Option<Cipher>) -> u8 {
    match cipher {
        None => 0,
        Some(Cipher::Aegis128X4) => 2,
        Some(_) => 1,
    }
}

impl KeyedAegis {
    /// The AEGIS-128L sealer for the network key `keyed`, if this CPU has AES instructions
    /// (elsewhere AEGIS-128L in software would be slower than ChaCha20-Poly1305), with the
    /// AEGIS-128X4 one if `x4`; their counters start at `first_counter`.
    pub(super) fn new(keyed: &Keyed, x4: bool, first_counter: u64) -> Option<KeyedAegis> {
        (Cipher::preferred_for_sessions(true) == Cipher::Aegis128L).then(|| {
            let session = aegis_session(keyed.session);
            let sealer = Sealer::with_cipher(&keyed.key, session, Cipher::Aegis128L)
                .starting_at(first_counter);
            KeyedAegis {
                sealer: Arc::new(sealer),
                session,
                x4: x4.then(|| x4_sealer(keyed, first_counter)),
                first_counter,
                peers: HashMap::new(),
                frames: None,
                upgrade_due: false,
                walked: None,
            }
        })
    }

    /// The sessions the AEGIS sealers seal in (AEGIS-128L's, then AEGIS-128X4's if any).
    pub(super) fn sessions(&self) -> impl Iterator<Item = [u8; crypto::SESSION_LEN]> + '_ {
        std::iter::once(self.session).chain(self.x4.as_ref().map(|(_, s)| *s))
    }

    /// A key rotation: the AEGIS sealers seal with the new key `next` from now on, also
    /// those the lanes still hold (each old one is forwarded to its successor).
    fn rekey(&mut self, next: &Keyed) {
        self.session = aegis_session(next.session);
        let sealer = Arc::new(
            Sealer::with_cipher(&next.key, self.session, Cipher::Aegis128L)
                .starting_at(self.first_counter),
        );
        self.sealer.forward_to(Arc::clone(&sealer));
        self.sealer = sealer;
        if let Some((old, _)) = &self.x4 {
            let x4 = x4_sealer(next, self.first_counter);
            old.forward_to(Arc::clone(&x4.0));
            self.x4 = Some(x4);
        }
    }

    /// The sealer of `cipher` (AEGIS-128X4 only if there is one).
    fn sealer_of(&self, cipher: Cipher) -> &Arc<Sealer> {
        match (&self.x4, cipher) {
            (Some((sealer, _)), Cipher::Aegis128X4) => sealer,
            _ => &self.sealer,
        }
    }

    /// Whether the peer at `to` said, in the process it runs now, that it completes checksums
    /// left partial (Hello flag 0x20).
    pub(super) fn completes_checksums(&self, to: SocketAddr) -> bool {
        self.peers.get(&to).is_some_and(|p| p.2)
    }

    /// The AEGIS cipher the peer at `to` takes, if any: AEGIS-128X4 where it said it has
    /// 512-bit vector AES and this node seals it, else AEGIS-128L if it opens that.
    fn cipher_for(&self, to: SocketAddr) -> Option<Cipher> {
        let (_, x4, _) = self.peers.get(&to)?;
        Some(if *x4 && self.x4.is_some() {
            Cipher::Aegis128X4
        } else {
            Cipher::Aegis128L
        })
    }
}

/// The AEGIS-128X4 sealer of `keyed` and its session.
fn x4_sealer(keyed: &Keyed, first_counter: u64) -> (Arc<Sealer>, [u8; crypto::SESSION_LEN]) {
    let session = x4_session(keyed.session);
    let sealer =
        Sealer::with_cipher(&keyed.key, session, Cipher::Aegis128X4).starting_at(first_counter);
    (Arc::new(sealer), session)
}

/// Keyed mode: the session of the AEGIS-128L sealer, made from the node's session: the same
/// start time, the 8 random bytes inverted (so applying it twice gives the node's session
/// back). A receiver binds a session to one cipher, so the two need two ids; the subkeys
/// differ by the marker anyway.
pub(super) fn aegis_session(session: [u8; crypto::SESSION_LEN]) -> [u8; crypto::SESSION_LEN] {
    twin(session, 0xff)
}

/// Keyed mode: the session of the AEGIS-128X4 sealer: the node's session with each of the 8
/// random bytes XORed with 0x55 (so 0xaa from the AEGIS-128L session's).
pub(super) fn x4_session(session: [u8; crypto::SESSION_LEN]) -> [u8; crypto::SESSION_LEN] {
    twin(session, 0x55)
}

/// `session` with each of its 8 random bytes XORed with `mask`.
fn twin(session: [u8; crypto::SESSION_LEN], mask: u8) -> [u8; crypto::SESSION_LEN] {
    let mut s = session;
    for b in s.iter_mut().skip(crypto::SESSION_LEN - 8) {
        *b ^= mask;
    }
    s
}

/// Keyed mode: whether `a` and `b` are sessions of one process of a node: the same, or twins
/// of each other (its own session, its AEGIS-128L one, its AEGIS-128X4 one).
fn same_process(a: &[u8; crypto::SESSION_LEN], b: &[u8; crypto::SESSION_LEN]) -> bool {
    [0x00, 0xff, 0x55, 0xaa]
        .iter()
        .any(|&mask| twin(*a, mask) == *b)
}

/// Keyed mode: the sealer for a control message to `to`: the AEGIS cipher `to` takes, if any.
fn keyed_sealer_for<'a>(
    aegis: &'a Option<KeyedAegis>,
    crypto: &'a Option<(Arc<Sealer>, Opener)>,
    to: SocketAddr,
) -> Option<&'a Sealer> {
    aegis
        .as_ref()
        .and_then(|a| Some(a.sealer_of(a.cipher_for(to)?)))
        .or_else(|| crypto.as_ref().map(|(sealer, _)| sealer))
        .map(Arc::as_ref)
}

impl<S: Socket, D: Device> Node<S, D> {
    /// Keyed mode: the sealer of frames (sealed once for every receiver), shared with the
    /// `--threads` lanes: AEGIS-128X4 or AEGIS-128L while every verified peer takes it.
    pub(super) fn frame_sealer(&self) -> Option<&Arc<Sealer>> {
        self.keyed_aegis
            .as_ref()
            .and_then(|a| Some(a.sealer_of(a.frames?)))
            .or_else(|| self.crypto.as_ref().map(|(sealer, _)| sealer))
    }

    /// Keyed mode: a Hello from the peer at `from` (in the peer table) came in the sender
    /// session of the datagram opened last, and says whether it opens AEGIS-128L (`opens`)
    /// and has 512-bit vector AES (`x4`).
    pub(super) fn keyed_aegis_hello(
        &mut self,
        from: SocketAddr,
        opens: bool,
        x4: bool,
        partial: bool,
    ) {
        let session = self.last_session;
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        let changed = if opens {
            let new = (session, x4, partial);
            aegis.peers.insert(from, new) != Some(new)
        } else {
            aegis.peers.remove(&from).is_some()
        };
        if changed {
            self.keyed_aegis_changed(from);
        }
    }

    /// Keyed mode: what the verified peer at `peer` takes changed (its Hello, its process, or
    /// it was just verified). Frames move to a slower cipher at once if it takes less than
    /// they are sealed with; a faster one is decided by a walk, at most once a second
    /// ([`KeyedAegis::upgrade_due`]). Nothing for a peer that is not verified: frames do not
    /// depend on it.
    pub(super) fn keyed_aegis_changed(&mut self, peer: SocketAddr) {
        let Some(aegis) = &self.keyed_aegis else {
            return;
        };
        if !self.peers.is_verified(peer) {
            return;
        }
        let takes = aegis.cipher_for(peer);
        if frames_rank(takes) < frames_rank(aegis.frames) {
            self.keyed_aegis_set(takes);
        } else {
            self.keyed_aegis_may_upgrade();
        }
    }

    /// Keyed mode: frames may be sealed with a faster cipher now; the walk that decides it
    /// runs at once unless one ran within [`AEGIS_WALK_EVERY`] (then at the next
    /// housekeeping).
    fn keyed_aegis_may_upgrade(&mut self) {
        let now = self.now;
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        if aegis.walked.is_some_and(|t| now < t + AEGIS_WALK_EVERY) {
            aegis.upgrade_due = true;
        } else {
            self.keyed_aegis_update();
        }
    }

    /// Keyed mode, at housekeeping: the walk a change that may allow a faster cipher waits
    /// for.
    pub(super) fn keyed_aegis_housekeep(&mut self) {
        if self.keyed_aegis.as_ref().is_some_and(|a| a.upgrade_due) {
            self.keyed_aegis_update();
        }
    }

    /// Keyed mode: a control message from `from` opened in [`Node::last_session`]. If `from`
    /// said it opens AEGIS-128L in another session than this one or its AEGIS twins, the
    /// node behind it is another process (a restart, perhaps of a version without AEGIS-128L)
    /// or sealed under a new key: the flags are dropped until a new Hello, which we ask for.
    pub(super) fn keyed_aegis_seen(&mut self, from: SocketAddr) {
        let session = self.last_session;
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        let Some((said_in, _, _)) = aegis.peers.get(&from).copied() else {
            return;
        };
        if same_process(&session, &said_in) {
            return;
        }
        aegis.peers.remove(&from);
        debug!(
            "{from} seals in a new session: sealing to it with AEGIS-128L again after its Hello"
        );
        self.keyed_aegis_changed(from);
        self.send_hello(from, true);
    }

    /// Keyed mode: the peer at `addr` is gone. (Also when it did not open AEGIS-128L: then
    /// perhaps every peer left does, which the next housekeeping finds.)
    pub(super) fn keyed_aegis_forget(&mut self, addr: SocketAddr) {
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        if aegis.peers.remove(&addr).is_some() || aegis.frames.is_none() {
            self.keyed_aegis_may_upgrade();
        }
    }

    /// Keyed mode: decides again, by a walk over the verified peers, whether frames are
    /// sealed with AEGIS-128X4, AEGIS-128L or neither.
    pub(super) fn keyed_aegis_update(&mut self) {
        let Node {
            keyed_aegis: Some(aegis),
            peers,
            ..
        } = self
        else {
            return;
        };
        aegis.walked = Some(self.now);
        aegis.upgrade_due = false;
        let mut all = peers.verified_len() > 0;
        let mut all_x4 = all && aegis.x4.is_some();
        peers.for_each_verified(|peer, _| {
            let cipher = aegis.cipher_for(peer);
            all &= cipher.is_some();
            all_x4 &= cipher == Some(Cipher::Aegis128X4);
        });
        let frames = match (all_x4, all) {
            (true, _) => Some(Cipher::Aegis128X4),
            (false, true) => Some(Cipher::Aegis128L),
            (false, false) => None,
        };
        self.keyed_aegis_set(frames);
    }

    /// Keyed mode: frames are sealed with `frames` from now on (logged, within the budget,
    /// when that is a change).
    fn keyed_aegis_set(&mut self, frames: Option<Cipher>) {
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        if frames != aegis.frames {
            aegis.frames = frames;
            self.sealer_changes = self.sealer_changes.wrapping_add(1);
            // A peer's Hello flags decide this, so peers can make it flip: within the budget.
            let now = self.now;
            match frames {
                Some(cipher) => self.note(
                    now,
                    format_args!("frames are sealed with {cipher} now: every peer opens it"),
                ),
                None => self.note(
                    now,
                    format_args!(
                        "frames are sealed with the network key's first cipher again: \
                         not every peer opens AEGIS-128L"
                    ),
                ),
            }
        }
    }

    pub(super) fn send_control(&mut self, to: SocketAddr, kind: Kind) {
        let Some(buf) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        if let Ok(len) = emit_control(self.config.token, kind, buf) {
            self.send_control_buffer(to, len);
        }
    }

    /// Sends the clear datagram of `len` bytes at [`CONTROL_AT`] in the control buffer, sealed
    /// first in keyed mode.
    pub(super) fn send_control_buffer(&mut self, to: SocketAddr, len: usize) {
        self.send_sealed(to, len, true);
    }

    /// [`Node::send_control_buffer`], counted as a control message or not (a relayed frame).
    /// Returns whether the datagram went to the socket: not with per-node keys and no
    /// session with `to` yet (a handshake is started), nor when sealing or the send failed
    /// (counted in `send_errors` or `send_would_block`).
    pub(super) fn send_sealed(&mut self, to: SocketAddr, len: usize, is_control: bool) -> bool {
        let range = if let Some(sessions) = &mut self.sessions {
            let switch_at = CONTROL_AT + wire::TOKEN_LEN;
            let inner_len = len.saturating_sub(wire::TOKEN_LEN);
            match sessions.seal(self.now, to, &mut self.control, switch_at, inner_len) {
                Ok(range) => range,
                Err(SealOutcome::NoSession) => {
                    debug!("no session with {to} yet: a handshake is started");
                    return false;
                }
                Err(SealOutcome::Seal(e)) => {
                    self.stats.send_errors += 1;
                    debug!("cannot seal a message to {to}: {e}");
                    return false;
                }
            }
        } else {
            match keyed_sealer_for(&self.keyed_aegis, &self.crypto, to) {
                None => CONTROL_AT..CONTROL_AT + len,
                Some(sealer) => {
                    let switch_at = CONTROL_AT + wire::TOKEN_LEN;
                    let inner_len = len.saturating_sub(wire::TOKEN_LEN);
                    match sealer.seal(self.config.token, &mut self.control, switch_at, inner_len) {
                        Ok(range) => range,
                        Err(e) => {
                            self.stats.send_errors += 1;
                            debug!("cannot seal a message to {to}: {e}");
                            return false;
                        }
                    }
                }
            }
        };
        let Some(datagram) = self.control.get(range) else {
            return false;
        };
        let sent = self.tx.send(&mut self.stats, to, datagram, is_control);
        if sent {
            self.peers.count_sent(to, datagram.len());
        }
        sent
    }

    /// Bytes a datagram grows by when sealed (0 in the clear protocol).
    pub(super) fn seal_overhead(&self) -> usize {
        if self.crypto.is_some() || self.sessions.is_some() {
            crypto::OVERHEAD
        } else {
            0
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
        let fingerprint = next.key.fingerprint();
        if self.keys_used.contains(&fingerprint) {
            return Rekey::Reused;
        }
        if self.keys_used.len() >= super::MAX_KEYS_REMEMBERED {
            self.keys_used.remove(0);
        }
        self.keys_used.push(fingerprint);
        opener.add_key(&next.key);
        opener.refuse_session(next.session);
        if let Some(aegis) = &self.keyed_aegis {
            opener.refuse_session(aegis_session(next.session));
            if aegis.x4.is_some() {
                opener.refuse_session(x4_session(next.session));
            }
        }
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
    pub(super) fn advance_rollover(&mut self, now: Instant) {
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
                    let first = super::first_counter(&self.config);
                    let new = Arc::new(Sealer::new(&next.key, next.session).starting_at(first));
                    // Lanes still holding the old one seal with the new key from now on.
                    sealer.forward_to(Arc::clone(&new));
                    *sealer = new;
                    self.sealer_changes = self.sealer_changes.wrapping_add(1);
                }
                if let Some(aegis) = &mut self.keyed_aegis {
                    aegis.rekey(&next);
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

    /// Identity mode: starts the handshakes that sealing asked for.
    pub(super) fn flush_handshakes(&mut self, now: Instant) {
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

    /// Identity mode: the sessions' timers (renewals due, handshakes timed out, sessions expired).
    pub(super) fn housekeep_sessions(&mut self, now: Instant) {
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

    /// Identity mode: replaces the trusted keys (SIGHUP). The sessions of keys no longer
    /// trusted are dropped at once and their addresses removed from the peers; returns how
    /// many addresses were removed. Does nothing in the other modes.
    pub fn set_trusted(&mut self, now: Instant, trusted: TrustedKeys) -> usize {
        let Some(sessions) = &mut self.sessions else {
            return 0;
        };
        let members = sessions.members();
        let addrs = sessions.set_trusted(trusted);
        let changed = sessions.members() != members;
        for addr in addrs.iter() {
            // A --connect address stays in the contacts (with back-off), so that it comes back
            // if its key is trusted again; its handshakes meanwhile get no answer.
            self.remove_peer(now, *addr, "its key is no longer trusted");
        }
        self.relay_retrust(now);
        if !changed {
            return addrs.len();
        }
        // Our members' digest changed with the set: every peer hears it at once, so that the
        // relays among them stop passing frames between us and a node we no longer trust.
        let mut peers = core::mem::take(&mut self.targets);
        peers.clear();
        self.peers.for_each_verified(|addr, _| peers.push(addr));
        for peer in peers.iter() {
            self.send_hello(*peer, false);
        }
        self.targets = peers;
        addrs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_sessions_are_told_apart_from_another_process() {
        let base: [u8; crypto::SESSION_LEN] = *b"\x00\x00\x01\x95\x4e\xf6\x2c\x00rand0m!!";
        let l = aegis_session(base);
        let x4 = x4_session(base);
        assert_eq!(aegis_session(l), base, "an involution");
        assert_eq!(x4_session(x4), base, "an involution");
        assert_ne!(l, x4);
        assert_eq!(&l[..8], &base[..8], "the start time stays");
        for (a, b) in [(base, l), (base, x4), (l, x4), (x4, l), (x4, x4)] {
            assert!(same_process(&a, &b));
        }
        // Another process: other random bytes, or another start time.
        let mut other = base;
        other[15] ^= 1;
        let mut later = base;
        later[7] ^= 1;
        for s in [other, later, aegis_session(other), x4_session(later)] {
            assert!(!same_process(&base, &s), "{s:02x?}");
            assert!(!same_process(&x4, &s), "{s:02x?}");
        }
    }

    #[test]
    fn a_rotation_hands_the_aegis_sealers_the_lanes_hold_on_to_the_new_key() {
        let keyed = |byte: u8| Keyed {
            key: crate::crypto::Key::from_bytes([byte; 32]),
            session: [byte; crypto::SESSION_LEN],
        };
        // (None where this CPU has no AES instructions: nothing to check there.)
        let Some(mut aegis) = KeyedAegis::new(&keyed(1), true, 0) else {
            return;
        };
        // What a lane holds: the two sealers from before the rotation.
        let held = [
            Arc::clone(&aegis.sealer),
            Arc::clone(&aegis.x4.as_ref().unwrap().0),
        ];
        aegis.rekey(&keyed(2));
        let want = [
            aegis_session(keyed(2).session),
            x4_session(keyed(2).session),
        ];
        let token = crate::wire::Token::new(7).unwrap();
        for (sealer, session) in held.iter().zip(want) {
            let mut buf = [0u8; 128];
            let range = sealer.seal(token, &mut buf, crypto::FRONT_LEN, 8).unwrap();
            let at = range.start + crate::wire::TOKEN_LEN + 1;
            assert_eq!(
                buf[at..at + crypto::SESSION_LEN],
                session,
                "the old key's session"
            );
        }
    }
}
