//! The keyed and identity modes' glue: sealing the control messages (`send_control`,
//! `send_control_buffer`, `seal_overhead`), key rotation in keyed mode (`rekey` and its
//! phases), and in identity mode the trusted keys (`set_trusted`) and starting the handshakes
//! that sealing asked for. The cryptography itself is in `crate::crypto` and
//! `crate::identity`.
//!
//! It seals and counts what the other parts ask it to send; it must not decide what is sent or
//! to whom (beyond removing the peers of keys no longer trusted). Frames are sealed on the hot
//! path in `forward.rs`, datagrams opened in `receive.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, info};

use super::{Keyed, Node, Rekey, CONTROL_AT, KEY_GRACE, KEY_ROLLOVER};
use crate::crypto::{self, Sealer};
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

impl<S: Socket, D: Device> Node<S, D> {
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
