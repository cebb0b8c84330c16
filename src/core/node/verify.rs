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
//!   Once verified it gets our whole list, within the budget of all whole lists
//!   ([`LIST_ANSWER_RATE`]). So a forged source address cannot make us flood or amplify
//!   towards a victim beyond that budget. (What the hosts behind the tap answer to its frames
//!   goes to a destination never learned, and so is flooded to the verified peers, as any
//!   frame to an unknown destination: the man page's Switching section says so.)
//! - With a network key, every member seals in one session for all its peers, so a recorded
//!   peer list of a member could be replayed once to another member from any address, answer
//!   that member's "get peer list" there and verify the replayer's address. A sender of this
//!   version (its counters start at [`crate::crypto::ECHO_COUNTER`], which the seal
//!   authenticates) is therefore sent a Challenge in place of the request, and verified only
//!   by an Echo of its nonce from that address. The nonce is new for each Challenge and
//!   differs from every other node's, so no recording carries it; and a node echoes only to an
//!   address it verified or chose to contact, so a replayer cannot hand one member's Challenge
//!   to another from its own address and carry the Echo back; nor, with a forged address of a
//!   peer, a Challenge sealed by a sender process we verified elsewhere (`process_of`). (It
//!   still can through a member that has not verified the challenger: no message under one
//!   shared key names its receiver. The man page says so; per-node keys have no such gap.) A Challenge
//!   goes out at most once per [`CHALLENGE_INTERVAL`]; a datagram that comes sooner is owed
//!   one once the interval has passed (never more Challenges than datagrams), except to an
//!   address we contacted, which is owed [`CONTACTED_ECHO_RETRIES`] more. A sender of an
//!   earlier version (counters from 0) is verified by its peer list as before.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use log::debug;

use super::{
    Node, AMPLIFICATION_FACTOR, ANSWER_WINDOW, CHALLENGE_INTERVAL, CONFIGURED_ROOM_INTERVAL,
    CONTROL_AT, FOLLOW_UP_DELAY, GOSSIP_INTERVAL_MIN, LIST_ANSWER_INTERVAL, LIST_ANSWER_RATE,
};
use crate::crypto;
use crate::io::{Device, Socket};
use crate::peers::Touch;
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::relay::{emit_echo_message, CHALLENGE, ECHO, ECHO_MESSAGE_LEN};
use crate::wire::{emit_peers, peers::MAX_PEER_LIST_BODY_LEN, Error, Kind, Message, HEADER_LEN};

/// An heir's Challenges are echoed for two keep-alive intervals and this much more after its
/// process replaced the old one at another address.
const HEIR_SLACK: core::time::Duration = core::time::Duration::from_secs(10);

/// The addresses where `process` is noted (`Node::by_process`).
fn homes(
    by_process: &BTreeSet<(u128, SocketAddr)>,
    process: u128,
) -> impl Iterator<Item = SocketAddr> + '_ {
    by_process
        .range((process, SocketAddr::from(([0, 0, 0, 0], 0)))..)
        .take_while(move |(p, _)| *p == process)
        .map(|(_, addr)| *addr)
}

/// Keyed mode: the process awaited at a verified address (`Node::heir_of`), which replaced
/// the one we knew there at another address, `proven_at` (an Echo there showed it).
#[derive(Clone, Copy, Debug)]
pub(super) struct Heir {
    process: u128,
    proven_at: SocketAddr,
    until: Instant,
}

/// Follow-up slots kept allocated when none is pending.
const FOLLOW_UPS_KEPT: usize = 16;
/// Keyed mode: Challenges sent, one per [`CHALLENGE_INTERVAL`], after the one a datagram
/// drew from an address we chose to contact, while it stays unverified (so that a lost
/// Challenge or Echo does not wait for its next datagram).
pub const CONTACTED_ECHO_RETRIES: u8 = 2;

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
        let echo = self.echo_required();
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        if peer
            .asked_at
            .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_INTERVAL)
        {
            self.stats.replies_limited += 1;
            if echo {
                self.owe_echo_challenge(to, 1);
            }
            return;
        }
        peer.asked_at = Some(now);
        // A sender that answers Challenges gets one in place of the request: its peer list
        // would verify nothing.
        let request = if echo { ECHO_MESSAGE_LEN } else { HEADER_LEN };
        if let Message::GetPeers = message {
            let budget = request_len.saturating_mul(AMPLIFICATION_FACTOR);
            let overhead = self.seal_overhead();
            let body_budget = budget.saturating_sub(HEADER_LEN + request + 2 * overhead);
            self.send_peer_list(to, body_budget);
        }
        if echo {
            self.send_echo_challenge(to);
            if self.contacts.get(to).is_some() {
                // An address we chose to contact: asked again, every interval, up to
                // CONTACTED_ECHO_RETRIES times (see `send_echo_retries`).
                self.owe_echo_challenge(to, CONTACTED_ECHO_RETRIES);
            }
        } else {
            debug!("asking unverified peer {to} for its peer list");
            self.send_control(to, Kind::GetPeers);
        }
    }

    /// A verified peer asked for our peer list: the whole list, at most once per
    /// [`LIST_ANSWER_INTERVAL`] per peer and within [`LIST_ANSWER_RATE`] for all (the rest is
    /// counted in `replies_limited`).
    pub(super) fn answer_get_peers(&mut self, now: Instant, from: SocketAddr) {
        if self.send_whole_list(now, from, true) {
            self.follow_up(now, from);
        }
    }

    /// Sends `to` our whole peer list within [`LIST_ANSWER_RATE`] for all, and, if it is the
    /// answer to `to`'s request (`as_answer`), at most once per [`LIST_ANSWER_INTERVAL`] for
    /// `to`; what is held back is counted in `replies_limited`. Returns whether it went.
    ///
    /// An answer the budget holds back still goes as an empty list (10 bytes, once per
    /// interval for `to`): the request may be `to` checking us, and any list answers that,
    /// so a spent budget never keeps us unverified at a new peer.
    fn send_whole_list(&mut self, now: Instant, to: SocketAddr, as_answer: bool) -> bool {
        let Some(peer) = self.peers.get_mut(to) else {
            return false;
        };
        let recently = as_answer
            && peer
                .listed_at
                .is_some_and(|t| now.saturating_duration_since(t) < LIST_ANSWER_INTERVAL);
        let largest = (HEADER_LEN + MAX_PEER_LIST_BODY_LEN) as u64;
        if recently || self.list_limiter.available(now, LIST_ANSWER_RATE) < largest {
            self.stats.replies_limited += 1;
            if as_answer && !recently {
                peer.listed_at = Some(now);
                self.send_empty_list(to);
            }
            return false;
        }
        if as_answer {
            peer.listed_at = Some(now);
        }
        if let Some(len) = self.emit_peer_list(to, MAX_PEER_LIST_BODY_LEN) {
            self.list_limiter.take(len as u64);
            self.send_control_buffer(to, len);
        }
        true
    }

    /// The peer table is full of verified peers and `from`, a `--connect` address, is not
    /// among them: the verified peer heard from least recently makes room for it, at most once
    /// per [`CONFIGURED_ROOM_INTERVAL`] (whoever fills the table with addresses of its own
    /// must not keep a configured peer out for good, and a forged source of a configured
    /// address must not empty the table). Another `--connect` peer never makes room: with
    /// more of them than `--max-peers`, they would push each other out every second for
    /// good; the table keeps those it has. Returns whether there is room now.
    pub(super) fn room_for_configured(&mut self, now: Instant, from: SocketAddr) -> bool {
        let configured = self.contacts.get(from).is_some_and(|c| c.is_configured);
        let due = self
            .configured_room_at
            .is_none_or(|t| now.saturating_duration_since(t) >= CONFIGURED_ROOM_INTERVAL);
        if !configured || !due {
            return false;
        }
        self.configured_room_at = Some(now);
        let configured = &self.connect_set;
        let Some(victim) = self.peers.evict_quietest(|a| configured.contains(&a)) else {
            return false;
        };
        self.after_removal(now, victim, true, "room for a --connect address");
        true
    }

    /// Whether the datagram being handled came, in keyed mode, from a sender that answers
    /// Challenges, so that only its Echo verifies its address (see the module doc).
    pub(super) fn echo_required(&self) -> bool {
        self.sender_echoes && self.config.keyed_echo && self.crypto.is_some()
    }

    /// Keyed mode: sends the peer `to` a Challenge with a new nonce; only an Echo of that
    /// nonce will verify it, or for a verified peer tell its sender process
    /// ([`Node::on_echo`]). The caller keeps to [`CHALLENGE_INTERVAL`] (`Peer::asked_at`,
    /// `Peer::rechallenged_at`).
    fn send_echo_challenge(&mut self, to: SocketAddr) {
        let nonce = self.next_echo_nonce();
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        peer.echo_challenge = Some(nonce);
        self.send_echo_message(to, CHALLENGE, nonce);
        debug!("sent a Challenge to peer {to}");
    }

    /// Keyed mode: the unverified peer `to` sent us something within [`CHALLENGE_INTERVAL`]
    /// of our last Challenge: another one is sent once the interval has passed
    /// ([`Node::send_echo_retries`]), in case that one or its Echo was lost; `count` is how
    /// many it is owed at least, one per interval. A datagram from it makes it owed one, so it
    /// is never sent more Challenges than it sent us datagrams, except an address we chose to
    /// contact, which is owed [`CONTACTED_ECHO_RETRIES`] after each Challenge its datagrams
    /// drew.
    pub(super) fn owe_echo_challenge(&mut self, to: SocketAddr, count: u8) {
        let room = self.echo_retries.len() < self.config.max_peers;
        let Some(peer) = self.peers.get_mut(to) else {
            return;
        };
        if peer.is_verified || !(room || peer.echo_again > 0) {
            return;
        }
        peer.echo_again = peer.echo_again.max(count);
        self.echo_retries.insert(to);
    }

    /// Housekeeping of [`Node::owe_echo_challenge`]: the Challenges owed are sent once due.
    pub(super) fn send_echo_retries(&mut self, now: Instant) {
        if self.echo_retries.is_empty() {
            return;
        }
        let mut retries = core::mem::take(&mut self.echo_retries);
        retries.retain(|addr| {
            let Some(peer) = self.peers.get_mut(*addr) else {
                return false;
            };
            if peer.is_verified || peer.echo_again == 0 {
                peer.echo_again = 0;
                return false;
            }
            if peer
                .asked_at
                .is_some_and(|t| now.saturating_duration_since(t) < CHALLENGE_INTERVAL)
            {
                return true;
            }
            peer.asked_at = Some(now);
            peer.echo_again -= 1;
            let more = peer.echo_again > 0;
            self.send_echo_challenge(*addr);
            more
        });
        // (Nothing was added meanwhile: only datagrams add.)
        self.echo_retries = retries;
    }

    /// A nonce no other Challenge (of ours or of any other node) carries: the first 8 bytes
    /// of SHA-256("ethcloud-echo-v1" ‖ our session ‖ a sequence number). The session differs
    /// between processes, the sequence number between our Challenges.
    fn next_echo_nonce(&mut self) -> u64 {
        self.echo_sequence = self.echo_sequence.wrapping_add(1);
        let session = self.config.keyed.as_ref().map(|k| k.session);
        let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
        hash.update(b"ethcloud-echo-v1");
        hash.update(&session.unwrap_or_default());
        hash.update(&self.echo_sequence.to_be_bytes());
        let digest = hash.finish();
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.as_ref().get(..8).unwrap_or(&[0; 8]));
        u64::from_be_bytes(first)
    }

    /// Sends `to` a Challenge or an Echo (`kind`) with `nonce`, sealed.
    fn send_echo_message(&mut self, to: SocketAddr, kind: u8, nonce: u64) {
        let token = self.config.token;
        let Some(out) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        if let Ok(len) = emit_echo_message(token, kind, nonce, out) {
            self.send_control_buffer(to, len);
        }
    }

    /// Whether this node takes Challenge and Echo (`kind`): with a network key, as this
    /// version; else they are unknown kinds, as to an earlier version or with per-node keys.
    fn knows_echo(&self, kind: u8) -> Result<(), DropReason> {
        if self.config.keyed_echo && self.crypto.is_some() {
            Ok(())
        } else {
            Err(DropReason::Malformed(Error::UnknownKind(kind)))
        }
    }

    /// Keyed mode: `from` sent a Challenge: its nonce goes back in an Echo, to the address it
    /// came from (the same size as the Challenge, so no amplification; and only a member's
    /// datagram, or a replay of one, opens). A node acting as an earlier version
    /// ([`Config::keyed_echo`](super::Config::keyed_echo) off), or with per-node keys, does
    /// not know the message.
    pub(super) fn on_echo_challenge(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        wire_len: usize,
    ) -> Result<(), DropReason> {
        self.knows_echo(CHALLENGE)?;
        if self.peers.is_verified(from) {
            let _ = self.peers.touch_received(now, from, wire_len);
        }
        // Echoed only to an address we verified or contacted ourselves: otherwise a
        // replayer could hand us, from its own address, a Challenge another member sent it
        // there, and take our Echo back to that member. And a Challenge sealed by a process
        // that speaks to us from verified addresses only to one of those: from elsewhere it
        // is that member's Challenge handed on by someone else, with a forged source. Except
        // from a verified address whose process we saw that very process replace at another
        // address, within two keep-alive intervals and while we still know it there
        // (`is_heir`): a dual-stack node restarted, whose new process we verified at one of
        // its addresses while we know the other from its old one, challenges us from that
        // other (and would wait for our Echo for good: it echoes ours only where it verified
        // us).
        let process = crypto::sender_process(&self.last_session);
        let elsewhere = {
            let mut at = homes(&self.by_process, process).peekable();
            at.peek().is_some() && at.all(|home| home != from)
        } && !self.is_heir(now, from, process);
        if elsewhere {
            self.stats.replies_limited += 1;
            debug!("not echoing a Challenge from {from}: its sender speaks from another address");
        } else if self.peers.is_verified(from) || self.contacts.get(from).is_some() {
            self.send_echo_message(from, ECHO, nonce);
        } else {
            self.stats.replies_limited += 1;
            debug!("not echoing a Challenge from {from}: neither verified nor contacted");
            if let Some(peer) = self.peers.get_mut(from) {
                // Echoed if its own Echo verifies it (its Challenge often comes first).
                peer.unanswered_challenge = Some(nonce);
            }
        }
        if !self.sender_echoes || self.peers.is_verified(from) {
            return Ok(());
        }
        // An address we contacted answers with a Challenge: a peer now, unverified, as if it
        // had answered with a seed message (the request we sent proves we chose it).
        if !self.peers.contains(from) && self.contacts.get(from).is_some() {
            match self.peers.touch_received(now, from, wire_len) {
                Touch::Added {
                    evicted: Some(victim),
                } => self.after_removal(now, victim, false, "the peer table is full"),
                // (Its Echo went out above; it stays no peer, as any new address would.)
                Touch::Full => return Err(DropReason::PeerTableFull),
                _ => {}
            }
        }
        // Its Challenge is a datagram from it like any other: it is challenged in turn (so two
        // nodes that wait for each other's Echo keep asking, one Challenge per interval).
        if self.peers.contains(from) {
            self.challenge(now, from, &Message::Close, wire_len);
        }
        Ok(())
    }

    /// Keyed mode: `from` sent an Echo; with the nonce of our last Challenge to that address
    /// (an unverified peer) it verifies it. Any other nonce is counted as a replay: no
    /// recording carries a nonce of ours to another address.
    pub(super) fn on_echo(
        &mut self,
        now: Instant,
        from: SocketAddr,
        nonce: u64,
        wire_len: usize,
    ) -> Result<(), DropReason> {
        self.knows_echo(ECHO)?;
        let Some(peer) = self.peers.get_mut(from) else {
            return Err(DropReason::Replayed);
        };
        if peer.is_verified {
            if peer.echo_challenge == Some(nonce) {
                // The Echo of the Challenge `recheck_process` sent: the process that sealed
                // it answers at this address now.
                peer.echo_challenge = None;
                self.note_process(from);
                debug!("{from} echoed our Challenge from its new process");
            }
            // (Else the Echo of a Challenge sent just before another way verified it, or a
            // repeat.)
            let _ = self.peers.touch_received(now, from, wire_len);
            return Ok(());
        }
        if peer.echo_challenge != Some(nonce) {
            return Err(DropReason::Replayed);
        }
        peer.echo_challenge = None;
        let _ = self.peers.touch_received(now, from, wire_len);
        debug!("{from} echoed our Challenge");
        self.verify_peer(now, from);
        // Its peer list, if it sent one, came while it was unverified and was not followed.
        self.send_control(from, Kind::GetPeers);
        Ok(())
    }

    /// Keyed mode, a sender that answers Challenges: a message (not a frame, unless it is the
    /// first of a new session) of the verified peer `from` came from a sender process other
    /// than the one noted for it when it was verified (it restarted, or rotated the key,
    /// while it stayed a peer). The process is not
    /// noted from that message, which a replay forged from `from` could be: `from` is sent a
    /// Challenge (one per [`CHALLENGE_INTERVAL`]), and the process that seals its Echo is
    /// noted ([`Node::on_echo`]), so that [`Node::on_echo_challenge`] knows where it speaks.
    pub(super) fn recheck_process(&mut self, now: Instant, from: SocketAddr) {
        if !self.echo_required() || !self.peers.is_verified(from) {
            return;
        }
        let process = crypto::sender_process(&self.last_session);
        if self.process_of.get(&from) == Some(&process) {
            return;
        }
        // Until an Echo notes a process for it (`note_process`), or it goes.
        self.unconfirmed.insert(from);
        let Some(peer) = self.peers.get_mut(from) else {
            return;
        };
        if peer
            .rechallenged_at
            .is_some_and(|at| now < at + CHALLENGE_INTERVAL)
        {
            return;
        }
        debug!("{from} speaks from a new process: sending it a Challenge to learn which");
        self.send_process_challenge(now, from);
    }

    /// Keyed mode: whether a frame or relay message from `from` is to check its sender
    /// process ([`Node::recheck_process`]): it opened a new session, or `from` was heard from
    /// a process not confirmed yet. (A set lookup only while some peer is unconfirmed.)
    // HOT PATH
    pub(super) fn recheck_due(&self, from: SocketAddr) -> bool {
        self.new_session || (!self.unconfirmed.is_empty() && self.unconfirmed.contains(&from))
    }

    /// Sends the verified peer `from` the Challenge whose Echo tells its sender process
    /// ([`Node::on_echo`]), and notes when (the rate of [`Node::recheck_process`]).
    pub(super) fn send_process_challenge(&mut self, now: Instant, from: SocketAddr) {
        if let Some(peer) = self.peers.get_mut(from) {
            peer.rechallenged_at = Some(now);
        }
        self.send_echo_challenge(from);
    }

    /// Keyed mode: `addr` was verified by a datagram of the sender process of
    /// [`Node::last_session`]: noted, for [`Node::on_echo_challenge`].
    fn note_process(&mut self, addr: SocketAddr) {
        if self.crypto.is_none() {
            return;
        }
        let now = self.now;
        let process = crypto::sender_process(&self.last_session);
        let before = self.process_of.get(&addr).copied();
        let awaited = self.is_heir(now, addr, process);
        // (Its heir and dispute stay as they are but where the process changes, below.)
        self.drop_process(addr);
        if let Some(before) = before.filter(|b| *b != process) {
            let others: Vec<SocketAddr> = homes(&self.by_process, process).collect();
            if !others.is_empty() && !awaited {
                // A process we know at another address, and not as this one's heir: no
                // restart, but another member's process taken for one of the two (a
                // Challenge handed on, man page item 4). Both are disputed: their next
                // change makes no heirs (this peer's other addresses must not echo that
                // member, nor that member's the peer). An heir awaited here still is
                // (its proof stands elsewhere): the node it belongs to restarted.
                self.disputed.insert(addr);
                self.disputed.extend(others);
            } else {
                self.heir_of.remove(&addr);
                // (A disputed address's change ends its dispute, and makes no heirs.)
                if !self.disputed.remove(&addr) && others.is_empty() {
                    // The process we knew at `addr` restarted as `process`: where else we
                    // knew it (the other address of a dual-stack node), `process` may
                    // challenge us next; and where we awaited `before` as an heir (it
                    // restarted again), `process`. For two keep-alive intervals, in which our
                    // datagrams there draw its Challenge, and while `addr` keeps it.
                    let until = now + self.config.keepalive() * 2 + HEIR_SLACK;
                    let next = Heir {
                        process,
                        proven_at: addr,
                        until,
                    };
                    // (Only heirs whose proof stood here until now: one left by a take undone
                    // since must not come back with the taken member's next restart.)
                    for heir in self.heir_of.values_mut() {
                        if heir.process == before && heir.proven_at == addr {
                            *heir = next;
                        }
                    }
                    for other in homes(&self.by_process, before) {
                        self.heir_of.insert(other, next);
                    }
                }
                // (Awaited: the heir came, at its other address.)
            }
        }
        self.process_of.insert(addr, process);
        self.by_process.insert((process, addr));
        // Only a process whose Echo of a fresh Challenge proved it live is pinned.
        if self.echo_required() {
            if let Some((_, opener)) = &mut self.crypto {
                opener.pin_process(crypto::process_start(process));
                self.pinned_by.insert(addr);
            }
        }
    }

    /// Whether `process` is the heir awaited at `addr` (see [`Node::note_process`]): within
    /// its time, and while the address where it replaced the old process still knows it
    /// there (a take there, man page item 4, undone since, takes the heir with it).
    fn is_heir(&self, now: Instant, addr: SocketAddr, process: u128) -> bool {
        self.heir_of.get(&addr).is_some_and(|heir| {
            heir.process == process
                && now < heir.until
                && self.process_of.get(&heir.proven_at) == Some(&process)
        })
    }

    /// Forgets the sender process `addr` was verified in, its heir and its dispute (it is no
    /// peer any more).
    pub(super) fn forget_process(&mut self, addr: SocketAddr) {
        self.heir_of.remove(&addr);
        self.disputed.remove(&addr);
        self.drop_process(addr);
    }

    /// Forgets the sender process `addr` was verified in (and unpins it).
    fn drop_process(&mut self, addr: SocketAddr) {
        self.unconfirmed.remove(&addr);
        if let Some(process) = self.process_of.remove(&addr) {
            self.by_process.remove(&(process, addr));
            if self.pinned_by.remove(&addr) {
                if let Some((_, opener)) = &mut self.crypto {
                    opener.unpin_process(crypto::process_start(process));
                }
            }
        }
    }

    pub(super) fn verify_peer(&mut self, now: Instant, addr: SocketAddr) {
        let was_asked_as_peer = self.peers.get(addr).is_some_and(|p| p.asked_at.is_some());
        let unanswered = self
            .peers
            .get_mut(addr)
            .and_then(|p| p.unanswered_challenge.take());
        if !self.peers.verify(addr) {
            return;
        }
        self.note_process(addr);
        self.contacts.remove(addr);
        let count = self.peers.verified_len();
        self.note(now, format_args!("peer {addr} added ({count} peers)"));
        // The peer set grew past what the last round spread: there is news, gossip soon again
        // (Trickle reset). A peer that only takes the place of one that left since does not
        // count: churn alone must not keep rounds a second apart.
        if count > self.gossip_high {
            self.gossip_high = count;
            self.trickle.reset(now, GOSSIP_INTERVAL_MIN);
        }
        // It verifies us only once a list of ours reaches it (within its ANSWER_WINDOW of its
        // request); its request, or the list we send it next, may have been lost: the
        // follow-up closes that gap too. (On the side that asked first, the peer's request
        // usually queues the same one through `answer_get_peers`: one pending per peer. The
        // side that was asked first now sends one too: 10 bytes per new link.)
        self.follow_up(now, addr);
        if was_asked_as_peer {
            // It contacted us first and got only a short list then: the whole list now,
            // within the rate of all whole lists (an address forged and verified by timing
            // must not make us an amplifier beyond it). Not counted as its answer per
            // interval: the request it sends to verify us must still be answered.
            self.send_whole_list(now, addr, false);
        }
        if let Some(nonce) = unanswered {
            // Keyed mode: the Challenge it sent before we could answer it.
            self.send_echo_message(addr, ECHO, nonce);
        }
        self.relay_on_verified(addr);
    }

    /// Queues one empty peer list to a new peer that asked for our list, or that we just
    /// verified by its answer (`verify_peer`; its own request may have been lost on its way):
    /// its request is usually the challenge that verifies us, and if our answer (or the list
    /// we send a peer we verified) is lost it drops us after
    /// [`UNVERIFIED_TIMEOUT`](super::UNVERIFIED_TIMEOUT) while we keep it, until our next
    /// keepalive (up to K later) starts the exchange again. Any peer list from us within
    /// [`ANSWER_WINDOW`] of its request verifies us there, so this one costs 10 bytes per new
    /// peer (one pending at a time per peer, however it came) and closes the gap in
    /// [`FOLLOW_UP_DELAY`]. It is sent even if we sent that peer something since: that may
    /// have been lost as well.
    pub(super) fn follow_up(&mut self, now: Instant, addr: SocketAddr) {
        let room = self.follow_ups.len() < self.config.max_peers;
        let Some(peer) = self.peers.get_mut(addr) else {
            return;
        };
        let is_new = now.saturating_duration_since(peer.added) < ANSWER_WINDOW / 3;
        // One pending per peer (its requests are answered at most once a second anyway),
        // told by a flag on the peer rather than a walk of the queue.
        if is_new && room && !peer.follow_up_pending {
            peer.follow_up_pending = true;
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
            peer.follow_up_pending = false;
            if !peer.is_verified {
                continue;
            }
            peer.last_sent = now;
            debug!("follow-up to new peer {addr}");
            self.send_empty_list(addr);
        }
    }

    /// Sends `to` a peer list that names nobody (10 bytes in the clear).
    fn send_empty_list(&mut self, to: SocketAddr) {
        let end = self.control.len() - crypto::TAG_LEN;
        let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
            return;
        };
        if let Ok((len, _)) = emit_peers(self.config.token, core::iter::empty(), buf) {
            self.send_control_buffer(to, len);
        }
    }
}
