//! Verifying new peers: the "get peer list" that an address must answer before it is sent
//! anything else (`challenge`, `asked_recently`, `verify_peer`), the bound on what an
//! unverified address is sent, and the follow-up that helps a new peer verify us
//! (`follow_up`, `send_follow_ups`).
//!
//! It decides who counts as verified and what an unverified address may be sent. It must not
//! forward frames or touch the MAC table, and it seals nothing itself: its messages go out
//! through `send_control` and `send_control_buffer` (`seal.rs`).
//!
//! Choice made where the spec is silent:
//! - A valid message of the seed's protocol from an unknown address makes it a peer, except
//!   `Close`, which only ever removes (the sealed modes' handshake and relay messages never
//!   make a peer). A new peer is *unverified* until it answers a "get peer list" of ours with
//!   its peer list (the spec's own exchange, so any conforming node passes). Until then this
//!   module sends it nothing but that request (at most one per [`CHALLENGE_INTERVAL`]) and, if
//!   it asked for our list, a short list: together at most [`AMPLIFICATION_FACTOR`] times the
//!   size of its request. (In the sealed modes, where only members' datagrams open, a Hello
//!   that asks for one is answered from any address, and with per-node keys a handshake
//!   initiation gets its response and a Hello: each about the size of what came in.) It gets no frames, its frames teach the MAC table nothing, its peer lists are
//!   not followed, and it is dropped after [`UNVERIFIED_TIMEOUT`](super::UNVERIFIED_TIMEOUT).
//!   Once verified it gets our whole list. So a forged source address cannot make us flood or
//!   amplify towards a victim.

use std::net::SocketAddr;

use log::debug;

use super::{
    Node, AMPLIFICATION_FACTOR, ANSWER_WINDOW, CHALLENGE_INTERVAL, CONFIGURED_ROOM_INTERVAL,
    CONTROL_AT, FOLLOW_UP_DELAY, GOSSIP_INTERVAL_MIN, LIST_ANSWER_INTERVAL, LIST_ANSWER_RATE,
};
use crate::crypto;
use crate::io::{Device, Socket};
use crate::time::Instant;
use crate::wire::{emit_peers, peers::MAX_PEER_LIST_BODY_LEN, Kind, Message, HEADER_LEN};

/// Follow-up slots kept allocated when none is pending.
const FOLLOW_UPS_KEPT: usize = 16;

impl<S: Socket, D: Device> Node<S, D> {
    /// True if we sent `addr` a "get peer list" within [`ANSWER_WINDOW`].
    pub(super) fn asked_recently(&self, now: Instant, addr: SocketAddr) -> bool {
        let recent = |at: Option<Instant>| {
            at.is_some_and(|t| now.saturating_duration_since(t) <= ANSWER_WINDOW)
        };
        recent(self.contacts.get(addr).and_then(|c| c.last_sent))
            || recent(self.peers.get(addr).and_then(|p| p.asked_at))
    }

    /// Sends an unverified peer a "get peer list" (its answer will verify it), at most once per
    /// [`CHALLENGE_INTERVAL`]. If it asked for our peer list, it also gets a list no larger than
    /// [`AMPLIFICATION_FACTOR`] times its request. Nothing else of the seed's protocol is sent
    /// to an address that has not answered us, so a forged source address cannot turn us into
    /// an amplifier (the sealed modes' answers, see the module doc, need a member's datagram).
    pub(super) fn challenge(
        &mut self,
        now: Instant,
        to: SocketAddr,
        message: &Message<'_>,
        request_len: usize,
    ) {
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        if peer
            .asked_at
            .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_INTERVAL)
        {
            self.stats.replies_limited += 1;
            return;
        }
        peer.asked_at = Some(now);
        if let Message::GetPeers = message {
            let budget = request_len.saturating_mul(AMPLIFICATION_FACTOR);
            let body_budget = budget.saturating_sub(2 * (HEADER_LEN + self.seal_overhead()));
            self.send_peer_list(to, body_budget);
        }
        debug!("asking unverified peer {to} for its peer list");
        self.send_control(to, Kind::GetPeers);
    }

    /// A verified peer asked for our peer list: the whole list, at most once per
    /// [`LIST_ANSWER_INTERVAL`] per peer and within [`LIST_ANSWER_RATE`] for all (the rest is
    /// counted in `replies_limited`).
    pub(super) fn answer_get_peers(&mut self, now: Instant, from: SocketAddr) {
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        let recently = peer
            .listed_at
            .is_some_and(|t| now.saturating_duration_since(t) < LIST_ANSWER_INTERVAL);
        let largest = (HEADER_LEN + MAX_PEER_LIST_BODY_LEN) as u64;
        if recently || self.list_limiter.available(now, LIST_ANSWER_RATE) < largest {
            self.stats.replies_limited += 1;
            return;
        }
        peer.listed_at = Some(now);
        if let Some(len) = self.emit_peer_list(from, MAX_PEER_LIST_BODY_LEN) {
            self.list_limiter.take(len as u64);
            self.send_control_buffer(from, len);
        }
        self.follow_up(now, from);
    }

    /// The peer table is full of verified peers and `from`, a `--connect` address, is not
    /// among them: the verified peer heard from least recently makes room for it, at most once
    /// per [`CONFIGURED_ROOM_INTERVAL`] (whoever fills the table with addresses of its own
    /// must not keep a configured peer out for good, and a forged source of a configured
    /// address must not empty the table). Returns whether there is room now.
    pub(super) fn room_for_configured(&mut self, now: Instant, from: SocketAddr) -> bool {
        let configured = self.contacts.get(from).is_some_and(|c| c.is_configured);
        let due = self
            .configured_room_at
            .is_none_or(|t| now.saturating_duration_since(t) >= CONFIGURED_ROOM_INTERVAL);
        if !configured || !due {
            return false;
        }
        self.configured_room_at = Some(now);
        let Some(victim) = self.peers.evict_quietest() else {
            return false;
        };
        self.after_removal(now, victim, true, "room for a --connect address");
        true
    }

    pub(super) fn verify_peer(&mut self, now: Instant, addr: SocketAddr) {
        let was_asked_as_peer = self.peers.get(addr).is_some_and(|p| p.asked_at.is_some());
        if !self.peers.verify(addr) {
            return;
        }
        self.contacts.remove(addr);
        let count = self.peers.verified_len();
        self.note(now, format_args!("peer {addr} added ({count} peers)"));
        // The peer set grew: there is news to spread, gossip soon again (Trickle reset).
        self.trickle.reset(now, GOSSIP_INTERVAL_MIN);
        if was_asked_as_peer {
            // It contacted us first and got only a short list then: send the whole list now.
            self.send_peer_list(addr, MAX_PEER_LIST_BODY_LEN);
        }
        self.relay_on_verified(addr);
    }

    /// Queues one empty peer list to a new peer that asked for our list: its request is
    /// usually the challenge that verifies us, and if our answer is lost it drops us after
    /// [`UNVERIFIED_TIMEOUT`](super::UNVERIFIED_TIMEOUT) while we keep it, until our next
    /// keepalive (up to K later) starts the exchange again. Any peer list from us within
    /// [`ANSWER_WINDOW`] of its request verifies us there, so this one costs 10 bytes per
    /// request of a new peer (which already cost us a full list) and closes the gap in
    /// [`FOLLOW_UP_DELAY`]. It is sent even if we sent that peer something since: that may
    /// have been lost as well.
    pub(super) fn follow_up(&mut self, now: Instant, addr: SocketAddr) {
        let is_new = self
            .peers
            .get(addr)
            .is_some_and(|p| now.saturating_duration_since(p.added) < ANSWER_WINDOW / 3);
        // One pending per peer (its requests are answered at most once a second anyway).
        if is_new
            && self.follow_ups.len() < self.config.max_peers
            && !self.follow_ups.iter().any(|(_, a)| *a == addr)
        {
            self.follow_ups.push((now, addr));
        }
    }

    /// Sends the follow-ups that are due (see [`Node::follow_up`]). The queue fills only while
    /// links form; once it is empty its memory is given back.
    pub(super) fn send_follow_ups(&mut self, now: Instant) {
        if self.follow_ups.is_empty() {
            if self.follow_ups.capacity() > FOLLOW_UPS_KEPT {
                self.follow_ups.shrink_to(FOLLOW_UPS_KEPT);
            }
            return;
        }
        let mut i = 0;
        while let Some(&(answered, addr)) = self.follow_ups.get(i) {
            if now < answered + FOLLOW_UP_DELAY {
                i += 1;
                continue;
            }
            self.follow_ups.swap_remove(i);
            let Some(peer) = self.peers.get_mut(addr) else {
                continue;
            };
            if !peer.is_verified {
                continue;
            }
            peer.last_sent = now;
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, _)) = emit_peers(self.config.token, core::iter::empty(), buf) {
                debug!("follow-up to new peer {addr}");
                self.send_control_buffer(addr, len);
            }
        }
    }
}
