//! The keyed and identity modes' glue: sealing the control messages (`send_control`,
//! `send_control_buffer`, `seal_overhead`), key rotation in keyed mode (`rekey` and its
//! phases), and in identity mode the trusted keys (`set_trusted`) and starting the handshakes
//! that sealing asked for. The cryptography itself is in `crate::crypto` and
//! `crate::identity`.
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
/// sealer, in a session of its own, for the peers whose Hello said they open AEGIS-128L.
/// Control messages to such a peer are sealed with it; frames only while every verified peer
/// opens it, since a flood is sealed once for all of them.
#[derive(Debug)]
pub(super) struct KeyedAegis {
    sealer: Arc<Sealer>,
    /// The session `sealer` seals in ([`aegis_session`] of the node's).
    session: [u8; crypto::SESSION_LEN],
    /// The peers whose Hello had the AEGIS-128L flag, each with the sender session the Hello
    /// came in: the flag holds for that process of the peer only (see
    /// [`Node::keyed_aegis_seen`]). At most the peer table's peers: each leaves with its peer.
    peers: HashMap<SocketAddr, [u8; crypto::SESSION_LEN]>,
    /// Every verified peer (at least one) is in `peers`: frames are sealed with `sealer`.
    frames: bool,
}

impl KeyedAegis {
    /// The AEGIS-128L sealer for the network key `keyed`, if this CPU has AES instructions
    /// (elsewhere AEGIS-128L in software would be slower than ChaCha20-Poly1305).
    pub(super) fn new(keyed: &Keyed) -> Option<KeyedAegis> {
        (Cipher::preferred_for_sessions(true) == Cipher::Aegis128L).then(|| {
            let session = aegis_session(keyed.session);
            KeyedAegis {
                sealer: Arc::new(Sealer::with_cipher(&keyed.key, session, Cipher::Aegis128L)),
                session,
                peers: HashMap::new(),
                frames: false,
            }
        })
    }

    /// The session the AEGIS-128L sealer seals in.
    pub(super) fn session(&self) -> [u8; crypto::SESSION_LEN] {
        self.session
    }

    /// A key rotation: the AEGIS-128L sealer seals with the new key `next` from now on.
    fn rekey(&mut self, next: &Keyed) {
        self.session = aegis_session(next.session);
        self.sealer = Arc::new(Sealer::with_cipher(
            &next.key,
            self.session,
            Cipher::Aegis128L,
        ));
    }
}

/// Keyed mode: the session of the AEGIS-128L sealer, made from the node's session: the same
/// start time, the 8 random bytes inverted (so applying it twice gives the node's session
/// back). A receiver binds a session to one cipher, so the two need two ids; the subkeys
/// differ by the marker anyway.
pub(super) fn aegis_session(session: [u8; crypto::SESSION_LEN]) -> [u8; crypto::SESSION_LEN] {
    let mut s = session;
    for b in s.iter_mut().skip(crypto::SESSION_LEN - 8) {
        *b = !*b;
    }
    s
}

/// Keyed mode: the sealer for a control message to `to`: AEGIS-128L if `to` opens it.
fn keyed_sealer_for<'a>(
    aegis: &'a Option<KeyedAegis>,
    crypto: &'a Option<(Arc<Sealer>, Opener)>,
    to: SocketAddr,
) -> Option<&'a Sealer> {
    match (aegis, crypto) {
        (Some(aegis), _) if aegis.peers.contains_key(&to) => Some(&aegis.sealer),
        (_, Some((sealer, _))) => Some(sealer),
        (_, None) => None,
    }
}

impl<S: Socket, D: Device> Node<S, D> {
    /// Keyed mode: the sealer of frames (sealed once for every receiver), shared with the
    /// `--threads` lanes: AEGIS-128L while every verified peer opens it.
    pub(super) fn frame_sealer(&self) -> Option<&Arc<Sealer>> {
        match (&self.keyed_aegis, &self.crypto) {
            (Some(aegis), _) if aegis.frames => Some(&aegis.sealer),
            (_, Some((sealer, _))) => Some(sealer),
            (_, None) => None,
        }
    }

    /// Keyed mode: a Hello from the peer at `from` (in the peer table) came in the sender
    /// session of the datagram opened last, and says whether it opens AEGIS-128L.
    pub(super) fn keyed_aegis_hello(&mut self, from: SocketAddr, opens: bool) {
        let session = self.last_session;
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        let changed = if opens {
            aegis.peers.insert(from, session) != Some(session)
        } else {
            aegis.peers.remove(&from).is_some()
        };
        if changed {
            self.keyed_aegis_update();
        }
    }

    /// Keyed mode: a control message from `from` opened in [`Node::last_session`]. If `from`
    /// said it opens AEGIS-128L in another session than this one or its AEGIS-128L twin, the
    /// node behind it is another process (a restart, perhaps of a version without AEGIS-128L)
    /// or sealed under a new key: the flag is dropped until a new Hello, which we ask for.
    pub(super) fn keyed_aegis_seen(&mut self, from: SocketAddr) {
        let session = self.last_session;
        let Some(aegis) = &mut self.keyed_aegis else {
            return;
        };
        let Some(said_in) = aegis.peers.get(&from).copied() else {
            return;
        };
        if session == said_in || session == aegis_session(said_in) {
            return;
        }
        aegis.peers.remove(&from);
        debug!(
            "{from} seals in a new session: sealing to it with AEGIS-128L again after its Hello"
        );
        self.keyed_aegis_update();
        self.send_hello(from, true);
    }

    /// Keyed mode: the peer at `addr` is gone.
    pub(super) fn keyed_aegis_forget(&mut self, addr: SocketAddr) {
        if let Some(aegis) = &mut self.keyed_aegis {
            // Also when it did not open AEGIS-128L: then perhaps every peer left does.
            aegis.peers.remove(&addr);
            self.keyed_aegis_update();
        }
    }

    /// Keyed mode: decides again whether frames are sealed with AEGIS-128L (after a Hello, a
    /// peer verified or removed).
    pub(super) fn keyed_aegis_update(&mut self) {
        let Node {
            keyed_aegis: Some(aegis),
            peers,
            ..
        } = self
        else {
            return;
        };
        let mut all = peers.verified_len() > 0;
        peers.for_each_verified(|peer, _| all &= aegis.peers.contains_key(&peer));
        if all != aegis.frames {
            aegis.frames = all;
            self.sealer_changes = self.sealer_changes.wrapping_add(1);
            if all {
                info!("frames are sealed with AEGIS-128L now: every peer opens it");
            } else {
                info!("frames are sealed with the network key's first cipher again: not every peer opens AEGIS-128L");
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
    pub(super) fn send_sealed(&mut self, to: SocketAddr, len: usize, is_control: bool) {
        if let Some(sessions) = &mut self.sessions {
            let switch_at = CONTROL_AT + wire::TOKEN_LEN;
            let inner_len = len.saturating_sub(wire::TOKEN_LEN);
            match sessions.seal(self.now, to, &mut self.control, switch_at, inner_len) {
                Ok(range) => {
                    if let Some(datagram) = self.control.get(range) {
                        if self.tx.send(&mut self.stats, to, datagram, is_control) {
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
        let range = match keyed_sealer_for(&self.keyed_aegis, &self.crypto, to) {
            None => CONTROL_AT..CONTROL_AT + len,
            Some(sealer) => {
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
            if self.tx.send(&mut self.stats, to, datagram, is_control) {
                self.peers.count_sent(to, datagram.len());
            }
        }
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
        opener.add_key(&next.key);
        opener.refuse_session(next.session);
        if self.keyed_aegis.is_some() {
            opener.refuse_session(aegis_session(next.session));
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
                    *sealer = Arc::new(Sealer::new(&next.key, next.session));
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
        let addrs = sessions.set_trusted(trusted);
        for addr in addrs.iter() {
            // A --connect address stays in the contacts (with back-off), so that it comes back
            // if its key is trusted again; its handshakes meanwhile get no answer.
            self.remove_peer(now, *addr, "its key is no longer trusted");
        }
        addrs.len()
    }
}
