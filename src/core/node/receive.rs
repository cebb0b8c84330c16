//! A datagram from the socket: the token check, opening it (keyed and identity mode) or
//! handing a handshake message to the sessions, adding its sender as a peer on hearing it
//! (add-on-hear), and what each kind of message leads to: a frame to `deliver`, a peer list to
//! `learn_addresses`, "get peer list" to our list, Close to removing the peer.
//!
//! It decides what a message means, not how the answers are made: frames are written in
//! `forward.rs`, challenges and verification are `verify.rs`'s, lists and removal `mesh.rs`'s,
//! sealing `seal.rs`'s.

use std::net::SocketAddr;

use log::{debug, warn};

use super::{Node, FULL_PEERS};
use crate::crypto::{self, OpenError};
use crate::identity::{cookie, handshake, HandshakeEvent};
use crate::io::{Device, Socket};
use crate::peers::{canonical, Touch};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::{self, Kind, Message, Packet};

impl<S: Socket, D: Device> Node<S, D> {
    /// Handles one datagram received from `from`.
    ///
    /// # Errors
    ///
    /// The [`DropReason`] when the datagram is not acted on; it has already been counted and
    /// logged at debug, so callers may ignore it.
    // HOT PATH
    pub fn on_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<(), DropReason> {
        self.stats.datagrams_received += 1;
        self.stats.bytes_received += datagram.len() as u64;
        self.now = now;
        let from = canonical(from);
        let result = self.handle_datagram(now, from, datagram);
        self.flush_handshakes(now);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped {} bytes from {from}: {reason}", datagram.len());
        }
        result
    }

    fn handle_datagram(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &mut [u8],
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(&*datagram).map_err(DropReason::Malformed)?;
        if packet.token() != self.config.token {
            return Err(DropReason::WrongToken);
        }
        if self.config.is_own(from) {
            return Err(DropReason::FromSelf);
        }
        // (Linux delivers a datagram from port 0: as a peer it would be sent questions that
        // fail, and be flooded to for good if a forged list verified it.)
        if crate::peers::is_unusable(from) {
            return Err(DropReason::BadSource);
        }
        let wire_len = datagram.len();
        self.sender_echoes = false;
        if let Some(sessions) = &mut self.sessions {
            let marker = datagram.get(wire::TOKEN_LEN).copied();
            if marker == Some(handshake::INITIATION)
                || marker == Some(handshake::RESPONSE)
                || marker == Some(cookie::COOKIE_REPLY)
            {
                return self.on_handshake(now, from, datagram);
            }
            // Identity mode: only what opens with a session of a trusted key goes on.
            let range = sessions
                .open(now, from, datagram)
                .map_err(open_drop_reason)?;
            let datagram: &[u8] = datagram.get(range).unwrap_or_default();
            return self.handle_clear(now, from, datagram, wire_len);
        }
        // Keyed mode: only what opens with the key and is no replay goes on, decrypted in place.
        let datagram: &[u8] = match &mut self.crypto {
            None => datagram,
            Some((_, opener)) => {
                // (Read before opening, which writes over the counter; it counts only once
                // the datagram opened, which authenticates it.)
                let echoes = crypto::sender_echoes(datagram);
                let range = opener.open(datagram).map_err(open_drop_reason)?;
                self.sender_echoes = echoes;
                self.new_session = opener.opened_new_session();
                let at = wire::TOKEN_LEN + 1;
                if let Some(session) = datagram.get(at..at + crypto::SESSION_LEN) {
                    self.last_session.copy_from_slice(session);
                }
                datagram.get(range).unwrap_or_default()
            }
        };
        self.handle_clear(now, from, datagram, wire_len)
    }

    /// Identity mode: a handshake message; a response goes back at once, and a session we
    /// started is greeted with a "get peer list" if its address is no verified peer yet.
    fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &[u8],
    ) -> Result<(), DropReason> {
        let Some(sessions) = &mut self.sessions else {
            return Err(DropReason::Unauthenticated);
        };
        match sessions.on_handshake(now, from, msg, &mut self.control) {
            HandshakeEvent::Answered(len, current) => {
                if let Some(reply) = self.control.get(..len) {
                    self.tx.send(&mut self.stats, from, reply, true);
                }
                // A renewal we answered is sealed in once the initiator's Hello confirms it,
                // and that Hello asks for ours: sent now, ours would go in the session before,
                // where it says nothing of the new one.
                if current {
                    self.hello_in_new_session(from, false);
                }
                Ok(())
            }
            HandshakeEvent::Completed => {
                if !self.peers.is_verified(from) {
                    debug!("asking {from} for its peer list (session made)");
                    self.send_control(from, Kind::GetPeers);
                }
                self.hello_in_new_session(from, true);
                Ok(())
            }
            HandshakeEvent::Dropped => Err(DropReason::Unauthenticated),
            HandshakeEvent::CookieReply(len) => {
                if let Some(reply) = self.control.get(..len) {
                    self.tx.send(&mut self.stats, from, reply, true);
                }
                // The initiation itself is not answered.
                Err(DropReason::Unauthenticated)
            }
            HandshakeEvent::Retried(len) => {
                if let Some(again) = self.control.get(..len) {
                    self.tx.send(&mut self.stats, from, again, true);
                }
                Ok(())
            }
        }
    }

    /// Acts on a clear datagram (opened first in keyed and identity mode).
    fn handle_clear(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        wire_len: usize,
    ) -> Result<(), DropReason> {
        let packet = Packet::new_checked(datagram).map_err(DropReason::Malformed)?;
        if wire::relay::is_extension(packet.kind_byte()) && self.is_sealed() {
            // Sealed modes only: the seed's protocol has no such kinds.
            return self.on_extension(now, from, datagram, wire_len);
        }
        let message = Message::parse(packet).map_err(DropReason::Malformed)?;
        if self.keyed_aegis.is_some() && !matches!(message, Message::Frame(_)) {
            // A restarted peer, or one under a new key, asks and answers in a new session.
            self.keyed_aegis_seen(from);
        }
        // (Frames only when they open a new session, or come from a peer whose new process is
        // not confirmed yet: a busy peer that restarted or rotated the key may send nothing
        // else for a keepalive, while the pin of its old process protects nothing and its new
        // one has none.)
        if self.crypto.is_some()
            && (!matches!(message, Message::Frame(_) | Message::Close) || self.recheck_due(from))
        {
            self.recheck_process(now, from);
        }
        if let Message::Close = message {
            self.on_close(now, from);
            return Ok(());
        }
        // A peer list from an address we recently asked is its answer: the address receives
        // what we send there. Decide before `touch`, which may add the peer.
        let is_answer = matches!(message, Message::Peers(_)) && self.asked_recently(now, from);
        let mut is_verified = match self.peers.touch_received(now, from, wire_len) {
            Touch::Refreshed { is_verified } => is_verified,
            Touch::Added { evicted } => {
                debug!("new unverified peer {from}");
                if let Some(victim) = evicted {
                    self.after_removal(now, victim, false, "the peer table is full");
                }
                false
            }
            Touch::Full if self.room_for_configured(now, from) => {
                match self.peers.touch_received(now, from, wire_len) {
                    Touch::Refreshed { is_verified } => is_verified,
                    Touch::Added { .. } => {
                        // The room was made for it: the next new address must not take it.
                        self.peers.shelter(from);
                        false
                    }
                    Touch::Full => return Err(DropReason::PeerTableFull),
                }
            }
            Touch::Full => {
                if self.first_time_full(FULL_PEERS) {
                    let max = self.config.max_peers;
                    warn!("peer table full ({max} verified peers): new addresses are ignored (counted; warned once)");
                }
                return Err(DropReason::PeerTableFull);
            }
        };
        // A sender that answers Challenges is verified by its Echo only: a peer list of its
        // could be a recording replayed from another address (see `verify.rs`).
        let echo_required = self.echo_required();
        if is_answer && !is_verified && !echo_required {
            self.verify_peer(now, from);
            is_verified = true;
        }
        if !is_verified {
            self.challenge(now, from, &message, wire_len);
        }
        match message {
            Message::Frame(frame) => self.deliver(now, from, frame, is_verified),
            Message::Peers(list) => {
                if is_verified {
                    self.learn_addresses(now, from, list);
                }
                Ok(())
            }
            Message::GetPeers => {
                if is_verified {
                    self.answer_get_peers(now, from);
                }
                Ok(())
            }
            Message::Close => Ok(()),
        }
    }
}

/// The drop counter of a datagram that did not open (keyed and identity mode).
fn open_drop_reason(e: OpenError) -> DropReason {
    match e {
        OpenError::Replayed | OpenError::StaleSession => DropReason::Replayed,
        OpenError::Truncated | OpenError::NotSealed | OpenError::Forged => {
            DropReason::Unauthenticated
        }
    }
}
