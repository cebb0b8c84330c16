//! Relaying (man page: RELAYING): the Hello that announces it, frames sent through a relay to
//! an address we cannot reach directly, frames relayed for two of our peers, and frames that
//! reach us through a relay. Only in the sealed modes, where every message comes from a node
//! that opened a session with us; the seed's cleartext protocol never carries any of it.
//!
//! It decides per message whether relaying is allowed, within the rate limit and without loops
//! (a relayed frame is delivered, never passed on); the routes themselves are
//! `crate::relay`'s. It changes the peer table only as any message does (a peer heard from is
//! refreshed; a moved node's old address is removed, and so is a peer that went silent, or
//! stopped hearing us, and did not answer while a relay that sets Hello flag 0x80 lists it, so
//! that the relay carries its frames), and it sends only through `send_sealed` (control
//! buffer, sealed like any control message).

use std::net::SocketAddr;
use std::time::Duration;

use log::debug;

use super::mesh::{check_of, Check};
use super::{
    HelloCheck, Node, Why, CONTROL_AT, KEEPALIVE_MAX, MAX_MOVE_CHECKS, MAX_SILENCE_CHECKS,
    MOVE_CHECK, RECHECK_AFTER, SILENCE_ASK_RELAYS, SILENCE_CHECK, SILENCE_SCAN,
};
use crate::identity::PublicKey;
use crate::io::{Device, Socket};
use crate::limit::Host;
use crate::peers::{canonical, is_unusable, PeerTable};
use crate::relay::{Accept, KeyVerdict, RelayTable, RouteState, DIRECT_FRESH};
use crate::stats::DropReason;
use crate::time::Instant;
use crate::wire::relay::{
    emit_hello, emit_key_message, emit_relayed, Extension, FLAG_AEGIS, FLAG_AEGIS_X4, FLAG_ANSWER,
    FLAG_FRESH_LISTS, FLAG_NAMES_KEYS, FLAG_PARTIAL_CHECKSUMS, FLAG_RELAY, FLAG_RELAYED, KEY_LEN,
    RELAYED_FROM, RELAY_TO,
};
use crate::wire::{Frame, Kind};

/// Whom a share of `--relay-rate` belongs to: with per-node keys the sender's key (one member,
/// however many addresses it has, and members behind one NAT apart), else its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) enum RelaySender {
    /// Per-node keys: the key the sender's session belongs to.
    Key(PublicKey),
    /// Keyed mode: the sender's IP address, or its IPv6 /64.
    Host(Host),
}

/// A peer asked for its Hello and silent this long is asked again ...
pub const HELLO_RETRY: Duration = Duration::from_secs(5);
/// ... up to this many times in all.
pub const HELLO_TRIES: u8 = 5;

impl<S: Socket, D: Device> Node<S, D> {
    /// Our Hello flags: we open AEGIS-128L (unless `--no-aegis`), and AEGIS-128X4 pays here
    /// (`aegis_x4`: this CPU has 512-bit vector AES); with relaying on, we take part, and we
    /// relay for others unless the rate is 0 (with per-node keys naming their keys); our
    /// device completes checksums left partial.
    fn hello_flags(&self) -> u8 {
        let names_keys = if self.sessions.is_some() {
            FLAG_NAMES_KEYS
        } else {
            0
        };
        let mut relay = match (self.relays(), self.config.relay_rate > 0) {
            (false, _) => 0,
            (true, true) => FLAG_RELAY | FLAG_RELAYED | FLAG_FRESH_LISTS | names_keys,
            (true, false) => FLAG_RELAYED,
        };
        if self.completes_checksums {
            relay |= FLAG_PARTIAL_CHECKSUMS;
        }
        match (self.config.aegis, self.config.aegis_x4) {
            (false, _) => relay,
            (true, false) => relay | FLAG_AEGIS,
            (true, true) => relay | FLAG_AEGIS | FLAG_AEGIS_X4,
        }
    }

    /// Sends `to` our Hello, asking for its own if `answer`. Only in the sealed modes.
    pub(super) fn send_hello(&mut self, to: SocketAddr, answer: bool) {
        if !self.is_sealed() {
            return;
        }
        let flags = self.hello_flags() | if answer { FLAG_ANSWER } else { 0 };
        let token = self.config.token;
        let Some(out) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        let members = self.sessions.as_ref().map(|s| s.members());
        if let Ok(len) = emit_hello(token, flags, self.node_id, to, members, out) {
            self.send_control_buffer(to, len);
            if answer {
                self.asked_hello(to);
            }
        }
    }

    /// Whether `addr` is a peer whose Hello we wait for: a verified peer, or (per-node keys)
    /// an address a session was made with.
    fn awaits_hello(&self, addr: SocketAddr) -> bool {
        self.peers.is_verified(addr)
            || self
                .sessions
                .as_ref()
                .is_some_and(|s| s.key_of(addr).is_some())
    }

    /// We asked `to` for its Hello: noted, to ask again if it stays silent
    /// ([`Node::hello_retries`]). One lost Hello would otherwise keep the frames off AEGIS
    /// (keyed mode: for every peer, for good; per-node keys: that session's, until renewed).
    fn asked_hello(&mut self, to: SocketAddr) {
        let now = self.now;
        let room = self.hello_asked.len() < self.config.max_peers;
        if self.awaits_hello(to) && (room || self.hello_asked.contains_key(&to)) {
            let entry = self.hello_asked.entry(to).or_insert((now, 0));
            *entry = (now, entry.1.saturating_add(1));
        }
    }

    /// Housekeeping: the peers asked for their Hello and silent for [`HELLO_RETRY`] are asked
    /// again, up to [`HELLO_TRIES`] times in all.
    pub(super) fn hello_retries(&mut self, now: Instant) {
        if self.hello_asked.is_empty() {
            return;
        }
        let mut asked = core::mem::take(&mut self.hello_asked);
        asked.retain(|addr, (_, tries)| *tries < HELLO_TRIES && self.awaits_hello(*addr));
        self.hello_asked = asked;
        let mut due = core::mem::take(&mut self.targets);
        due.clear();
        due.extend(
            self.hello_asked
                .iter()
                .filter(|(_, (at, _))| now.saturating_duration_since(*at) >= HELLO_RETRY)
                .map(|(addr, _)| *addr),
        );
        // (In address order, a `BTreeMap`'s: the same inputs send the same datagrams in the
        // same order.)
        for to in due.iter() {
            debug!("asking {to} for its Hello again");
            self.send_hello(*to, true);
        }
        self.targets = due;
    }

    /// Per-node keys: a session was made with `to`: our Hello in it tells the peer that we
    /// open AEGIS-128L (so that it switches its half of this session; the initiator asks for
    /// the responder's Hello too), and the initiator's confirms the session to the responder
    /// at once, which seals in it only from then on.
    pub(super) fn hello_in_new_session(&mut self, to: SocketAddr, answer: bool) {
        self.send_hello(to, answer);
    }

    /// A verified peer became one: send our Hello (sealed modes), and end any route to its
    /// address.
    pub(super) fn relay_on_verified(&mut self, addr: SocketAddr) {
        self.keyed_aegis_changed(addr);
        // A verified peer there is another node (in the sealed modes, where public addresses
        // are learnt, a node never verifies itself): a Hello that named it as ours was wrong,
        // and its relayed frames and listings are to be taken again.
        self.relay.remove_public(addr);
        if self.relays() {
            if let Some(via) = self.relay.on_direct(addr) {
                self.note(
                    self.now,
                    format_args!("{addr} is a direct peer now: no longer relayed through {via}"),
                );
            }
        }
        self.send_hello(addr, true);
    }

    /// A peer is gone: the routes through it end, and the MACs learnt behind them; the route
    /// to it too, unless `keep_route` (see [`Node::after_removal`]).
    pub(super) fn relay_on_removed(&mut self, addr: SocketAddr, keep_route: bool) {
        self.keyed_aegis_forget(addr);
        self.hello_asked.remove(&addr);
        self.rechecks.remove(&addr);
        // Always, also with no routes and no relaying peer: the table keeps each peer's node
        // id and flags from its Hello, and they must go with the peer.
        let through = if keep_route {
            self.relay.forget_peer_keeping_route(addr)
        } else {
            self.relay.forget_peer(addr)
        };
        for gone in through {
            self.switch.forget_peer(gone);
            self.note(
                self.now,
                format_args!("relay route to {gone} ended: {addr} is gone"),
            );
        }
    }

    /// A relaying peer listed `addr`: a candidate for a route if it stays out of reach.
    pub(super) fn relay_on_listed(&mut self, now: Instant, via: SocketAddr, addr: SocketAddr) {
        if self.relays() && !self.peers.is_verified(addr) && !self.relay.is_public(addr) {
            self.relay.on_listed(now, via, addr);
        }
    }

    /// Housekeeping: candidates due become routes, stale routes end, and the addresses of
    /// routes are tried directly from time to time.
    pub(super) fn relay_housekeep(&mut self, now: Instant) {
        if self.relay.is_empty() {
            return;
        }
        let mut tries = core::mem::take(&mut self.targets);
        tries.clear();
        self.relay.due_direct_tries(now, &mut tries);
        for addr in &tries {
            // An address of a family our socket cannot send to is reached through relays
            // only (a dual-stack relay joins an IPv4-only and an IPv6-only node).
            if self.peers.contains(*addr) || !self.config.can_reach(*addr) {
                continue;
            }
            let via = self.relay.route(*addr).unwrap_or(*addr);
            match self.contacts.try_once_more(now, *addr, via) {
                Some(true) => debug!("trying {addr} directly again (reached through a relay)"),
                Some(false) => {}
                None => self.stats.contacts_refused += 1,
            }
        }
        self.targets = tries;
        let Node {
            relay,
            peers,
            switch,
            contacts,
            ..
        } = self;
        // Logged after, through the budget of lines about peers and routes (a member listing
        // hundreds of addresses makes as many routes in one pass).
        let (mut made, mut ended) = (Vec::new(), Vec::new());
        relay.housekeep(
            now,
            |addr| peers.is_verified(addr),
            // Still waiting in the contact queue (a node that joins a large mesh asks at most
            // `contacts_per_second` a second): not out of reach, only not asked yet.
            |addr| contacts.get(addr).is_some_and(|c| c.attempts == 0),
            |addr, via, state| made.push((addr, via, state)),
            |addr, via| {
                switch.forget_peer(addr);
                ended.push((addr, via));
            },
        );
        for (addr, via, state) in made {
            let checking = if state == RouteState::Checking {
                " (once it names the key there)"
            } else {
                ""
            };
            self.note(
                now,
                format_args!(
                    "no direct path to {addr} after {}s: relaying through {via}{checking}",
                    crate::relay::RELAY_AFTER.as_secs()
                ),
            );
        }
        for (addr, via) in ended {
            self.note(
                now,
                format_args!("relay route to {addr} through {via} ended"),
            );
        }
        // Per-node keys: ask the relays for the keys of the routes' far ends (new routes at
        // once, then from time to time).
        let mut queries = core::mem::take(&mut self.relay_targets);
        queries.clear();
        let mut unconfirmed = Vec::new();
        self.relay
            .due_key_queries(now, &mut queries, &mut unconfirmed);
        for addr in unconfirmed {
            self.relay_route_unconfirmed(now, addr);
        }
        for (addr, via) in &queries {
            self.send_key_message(*via, *addr, None);
        }
        self.relay_targets = queries;
    }

    /// The active route to `addr` is checking again (its relay no longer names the key there):
    /// what was learnt behind it goes, since frames to it would go to the far end directly.
    fn relay_route_unconfirmed(&mut self, now: Instant, addr: SocketAddr) {
        self.switch.forget_peer(addr);
        self.note(
            now,
            format_args!(
                "relay route to {addr}: its relay no longer names the key there; checking again"
            ),
        );
    }

    /// Sends `to` a KeyQuery about `addr`, or with `key` a KeyAnswer.
    fn send_key_message(&mut self, to: SocketAddr, addr: SocketAddr, key: Option<&[u8; KEY_LEN]>) {
        let token = self.config.token;
        let Some(out) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        if let Ok(len) = emit_key_message(token, addr, key, out) {
            self.send_sealed(to, len, false);
        }
    }

    /// Per-node keys: `from` asks which key our peer at `addr` holds. Answered for a peer that
    /// takes part in relaying about one that does too, if both trust the same members (what
    /// a route through us needs).
    fn on_key_query(&mut self, from: SocketAddr, addr: SocketAddr) -> Result<(), DropReason> {
        let key = self
            .sessions
            .as_ref()
            .filter(|_| {
                self.config.relay_rate > 0
                    && self.relay.accepts(from)
                    && self.relay.accepts(addr)
                    && self.peers.is_verified(addr)
                    // Only for a pair we would relay between (see `relay_for`): an answer
                    // for any other would make the asker's route active, and everything it
                    // sent through us would be dropped.
                    && self.relay.same_members(from, addr)
            })
            .and_then(|sessions| sessions.key_of(addr))
            .ok_or(DropReason::RelayRefused)?;
        self.send_key_message(from, addr, Some(&key.0));
        Ok(())
    }

    /// Per-node keys: the relaying peer `via` says its peer at `addr` holds `key`: a route to
    /// `addr` through `via` carries frames only if we trust it. An answer nothing asked for
    /// (no such route through `via`, or a network key) is dropped as refused.
    fn on_key_answer(
        &mut self,
        now: Instant,
        via: SocketAddr,
        addr: SocketAddr,
        key: [u8; KEY_LEN],
    ) -> Result<(), DropReason> {
        let Some(sessions) = &self.sessions else {
            return Err(DropReason::RelayRefused);
        };
        let public = PublicKey(key);
        let trusted = sessions.trusted().contains(&public);
        let direct = sessions
            .addr_of(&public)
            .filter(|at| *at != addr && self.peers.is_verified(*at));
        let verdict = self.relay.on_key(now, via, addr, key, trusted);
        if let (Some(at), true) = (direct, trusted) {
            // The node there is a direct peer of ours (at another address: its NAT maps it
            // one way towards us and another towards the relay): the relay is a detour.
            if matches!(verdict, KeyVerdict::Activated | KeyVerdict::Unchanged) {
                self.relay_on_moved(now, addr, at);
                return Ok(());
            }
        }
        match verdict {
            KeyVerdict::Activated => {
                // (Once per route made.)
                let name = sessions.trusted().name(&public).unwrap_or("").to_owned();
                self.note(
                    now,
                    format_args!("relaying with {addr} through {via}: key {public} ({name})"),
                );
            }
            KeyVerdict::Refused => {
                self.switch.forget_peer(addr);
                self.note(
                    now,
                    format_args!(
                        "not relaying with {addr} through {via}: its key {public} is not trusted"
                    ),
                );
            }
            KeyVerdict::Unchanged => {}
            KeyVerdict::NoRoute => return Err(DropReason::RelayRefused),
        }
        Ok(())
    }

    /// After SIGHUP changed the trusted keys: routes to nodes whose key is no longer trusted
    /// are refused at once.
    pub(super) fn relay_retrust(&mut self, now: Instant) {
        let Some(sessions) = &self.sessions else {
            return;
        };
        let trusted = sessions.trusted();
        let refused = self
            .relay
            .retrust(now, |key| trusted.contains(&PublicKey(*key)));
        for addr in refused {
            self.switch.forget_peer(addr);
            self.note(
                now,
                format_args!("relay route to {addr} refused: its key is no longer trusted"),
            );
        }
    }

    /// A MAC of the node behind the route to `old` arrived directly from `now_at`: the direct
    /// path replaces the relay.
    pub(super) fn relay_on_moved(&mut self, now: Instant, old: SocketAddr, now_at: SocketAddr) {
        if let Some(via) = self.relay.supersede(now, old, now_at) {
            self.switch.forget_peer(old);
            self.note(
                now,
                format_args!("direct path to {now_at} replaces the relay through {via} (to {old})"),
            );
        }
    }

    /// Sends `frame` to `to` through the relaying peer `via`.
    fn send_relayed(&mut self, via: SocketAddr, to: SocketAddr, frame: &[u8]) {
        let token = self.config.token;
        let Some(out) = self.control.get_mut(CONTROL_AT..) else {
            return;
        };
        match emit_relayed(token, RELAY_TO, to, frame, out) {
            Ok(len) => {
                if self.send_sealed(via, len, false) {
                    self.stats.relay_frames_sent += 1;
                }
            }
            Err(e) => {
                self.stats.send_errors += 1;
                debug!("cannot relay a {}-byte frame to {to}: {e}", frame.len());
            }
        }
    }

    /// The hot path's part: a unicast frame to `target` goes through its relay if it has an
    /// active route; returns whether it did.
    // HOT PATH
    #[inline]
    pub(super) fn relay_unicast(&mut self, target: SocketAddr, frame: &[u8]) -> bool {
        let Some(via) = self.relay.route(target) else {
            return false;
        };
        self.send_relayed(via, target, frame);
        true
    }

    /// A flooded frame also goes to every address reached through a relay.
    pub(super) fn relay_flood(&mut self, frame: &[u8]) {
        if !self.relay.has_active() {
            return;
        }
        let mut targets = core::mem::take(&mut self.relay_targets);
        targets.clear();
        self.relay
            .for_each_active(|addr, via| targets.push((addr, via)));
        for (addr, via) in &targets {
            self.send_relayed(*via, *addr, frame);
        }
        self.relay_targets = targets;
    }

    /// An extension message (opened, from `from`): a Hello, a frame to relay, or a relayed
    /// frame. Only peers are heard, and only verified peers relay or are relayed for.
    pub(super) fn on_extension(
        &mut self,
        now: Instant,
        from: SocketAddr,
        datagram: &[u8],
        wire_len: usize,
    ) -> Result<(), DropReason> {
        let message = Extension::parse(datagram).map_err(DropReason::Malformed)?;
        match message {
            Extension::Challenge { nonce } => {
                return self.on_echo_challenge(now, from, nonce, wire_len)
            }
            Extension::Echo { nonce } => return self.on_echo(now, from, nonce, wire_len),
            _ => {}
        }
        // As for frames: a relay's new process may send nothing but relayed frames.
        if self.crypto.is_some() && self.recheck_due(from) {
            self.recheck_process(now, from);
        }
        // A Hello is heard from any peer, verified or not: it opened with a session, so an
        // authenticated node sent it, and it may come before we verified that address. The
        // rest needs a verified peer.
        let known = match message {
            Extension::Hello { .. } => self.peers.contains(from),
            _ => self.peers.is_verified(from),
        };
        if let Extension::Hello { flags, .. } = message {
            // It answered (or spoke first): no need to ask again.
            self.hello_asked.remove(&from);
            for m in self.hello_checks.iter_mut().filter(|m| m.old == from) {
                m.hello = true;
            }
            // The cipher flag counts whoever sent it: with per-node keys it speaks for the
            // session it came in, and for the current one whose handshake crossed that one
            // (see `Sessions::peer_opens_aegis`).
            let opens = flags & FLAG_AEGIS != 0;
            let completes = flags & FLAG_PARTIAL_CHECKSUMS != 0;
            if let Some(sessions) = &mut self.sessions {
                if sessions.peer_completes_checksums(completes) {
                    debug!("{from} completes checksums left partial: {completes}");
                }
                let x4 = flags & FLAG_AEGIS_X4 != 0 && self.config.aegis_x4;
                if let Some(cipher) = (self.config.aegis && opens)
                    .then(|| sessions.peer_opens_aegis(x4))
                    .flatten()
                {
                    debug!("sealing to {from} with {cipher} now (it opens it)");
                }
            } else if known {
                // Keyed mode (a no-op with `--no-aegis`).
                self.keyed_aegis_hello(from, opens, flags & FLAG_AEGIS_X4 != 0, completes);
            }
            if !known {
                // Not a peer (yet): the Hello only said which ciphers the sender opens.
                if flags & FLAG_ANSWER != 0 {
                    self.send_hello(from, false);
                }
                return Ok(());
            }
        } else if !self.relays() || !known {
            return Err(DropReason::RelayRefused);
        }
        let _ = self.peers.touch_received(now, from, wire_len);
        match message {
            Extension::Hello {
                flags,
                node_id,
                observed,
                members,
                ..
            } => {
                // Where `from` sees us: one of our own public addresses, which we never
                // contact or relay to (it only stops contacts and routes, and datagrams from
                // it are still heard). Taken from a verified peer only, and never naming a
                // verified peer of ours: that would wipe the peer's relay state and routes.
                // With a network key, nor naming a node a relay lists to us (which has a route
                // or is about to): a Hello the relay sent that node opens here too, and
                // replayed from the relay's address it would end that node's route and have
                // its listings and frames refused for good. (With per-node keys a Hello opens
                // only at the node it was sealed for.)
                let observed = canonical(observed);
                let relay_lists_a_node =
                    self.sessions.is_none() && self.relay.is_listed_node(observed);
                let credible = self.peers.is_verified(from)
                    && !self.peers.is_verified(observed)
                    && !relay_lists_a_node
                    && !is_unusable(observed);
                if credible && self.relay.add_public(observed) {
                    debug!("{from} sees this node at {observed}");
                    // A `--connect` address stays queued: if a member lied, the configured
                    // peer would otherwise never be asked again. If it is ours (a
                    // configuration shared by every node lists this one too), asking it costs
                    // now and then, at its back-off, what it cost before this Hello: with a
                    // network key a datagram that comes back sealed by our own session and is
                    // dropped; with per-node keys an initiation for each trusted key without a
                    // session, which comes back to us and is counted as invalid.
                    if !self.connect_set.contains(&observed) {
                        self.contacts.remove(observed);
                    }
                    // (What was learnt at that address itself, through a route to it that
                    // just went, goes too: frames to it would go to our own address.)
                    self.switch.forget_peer(observed);
                    for gone in self.relay.forget_peer(observed) {
                        self.switch.forget_peer(gone);
                    }
                }
                if let Some(old) = self.relay.set_id(from, node_id) {
                    if self.same_key(old, from) {
                        // The node moved (its NAT gave it a new address), or it has both
                        // (IPv4 and IPv6): the old address is asked, and goes unless it
                        // answers, instead of staying until the peer timeout.
                        self.check_move(now, old, from);
                    }
                }
                // With relaying off, nobody is relayed for, to or through.
                let relays = flags & FLAG_RELAY != 0 && self.relays();
                let accepts = flags & FLAG_RELAYED != 0 && self.relays();
                self.relay.set_members(from, members);
                self.relay.set_names_keys(
                    from,
                    relays && flags & FLAG_NAMES_KEYS != 0 && self.sessions.is_some(),
                );
                self.relay
                    .set_fresh_lists(from, relays && flags & FLAG_FRESH_LISTS != 0);
                let had = (self.relay.is_capable(from), self.relay.accepts(from));
                for gone in self.relay.set_flags(from, relays, accepts) {
                    self.switch.forget_peer(gone);
                }
                if had != (relays && accepts, accepts) {
                    debug!("{from} relays: {relays}, takes relayed frames: {accepts}");
                }
                if flags & FLAG_ANSWER != 0 {
                    self.send_hello(from, false);
                }
                Ok(())
            }
            Extension::RelayTo { to, frame } => self.relay_for(now, from, canonical(to), frame),
            Extension::RelayedFrom {
                from: origin,
                frame,
            } => self.on_relayed(now, from, canonical(origin), frame),
            Extension::KeyQuery { addr } => self.on_key_query(from, canonical(addr)),
            Extension::KeyAnswer { addr, key } => {
                self.on_key_answer(now, from, canonical(addr), key)
            }
            // (Handled above.)
            Extension::Challenge { .. } | Extension::Echo { .. } => Ok(()),
        }
    }

    /// The node at `old` speaks from `new` now: asks `old` for its Hello (answered at once,
    /// where a peer list may be held back by its rate) and drops it at
    /// [`Node::settle_checks`] unless it answers within [`MOVE_CHECK`]. (Only the sealed modes
    /// know node ids, and so call this.)
    fn check_move(&mut self, now: Instant, old: SocketAddr, new: SocketAddr) {
        if let Some(at) = self
            .hello_checks
            .iter()
            .position(|m| m.old == old && m.why == Why::Silent)
        {
            // A silence check of `old` is under way: it becomes this one (its node is at
            // `new` now, and `old` goes unless it answers). (Not a one-way check, which only
            // a Hello answers: `old` is heard, and would pass a move check.)
            self.hello_checks.swap_remove(at);
        }
        if self.hello_checks.len() >= MAX_MOVE_CHECKS || self.checking(old) {
            return;
        }
        debug!("{old} speaks from {new} too: asking {old} whether it is still there");
        self.ask_if_there(now, old, Why::Moved(new));
    }

    /// Asks `old` for its Hello, and notes it for [`Node::settle_checks`].
    fn ask_if_there(&mut self, now: Instant, old: SocketAddr, why: Why) {
        let heard = self.peers.heard(old).unwrap_or(0);
        self.send_hello(old, true);
        self.hello_checks.push(HelloCheck {
            old,
            why,
            asked: now,
            heard,
            hello: false,
            listed_by: None,
            lists_asked: false,
        });
    }

    /// How long a verified peer must have been silent to be checked (see [`SILENCE_CHECK`]):
    /// a keepalive longer than what a relay's lists allow (`Config::heard_within`), so that a
    /// relay names it only if it heard it after we last did.
    pub(super) fn silent_after(&self) -> Duration {
        self.config.keepalive().max(KEEPALIVE_MAX) + self.config.heard_within()
    }

    /// Whether `addr` is a verified peer that takes relayed frames and has been silent for
    /// [`Node::silent_after`] (relaying on only).
    pub(super) fn is_silent(&self, addr: SocketAddr) -> bool {
        self.relays()
            && silent(
                &self.relay,
                &self.peers,
                self.now,
                self.silent_after(),
                addr,
            )
    }

    /// Whether a check of `addr` is under way.
    fn checking(&self, addr: SocketAddr) -> bool {
        self.hello_checks
            .iter()
            .any(|m| m.old == addr || m.why == Why::Moved(addr))
    }

    /// Whether a check of `addr` for silence or a one-way path may start now: none within
    /// [`RECHECK_AFTER`], room for it, and none under way. (The cheap tests first: a one-way
    /// check is asked for at every relayed frame of a direct peer.)
    fn may_check(&self, now: Instant, addr: SocketAddr) -> bool {
        self.rechecks
            .get(&addr)
            .is_none_or(|at| now.saturating_duration_since(*at) >= RECHECK_AFTER)
            && (self.rechecks.len() < self.config.max_peers || self.rechecks.contains_key(&addr))
            && self.hello_checks.len() < MAX_MOVE_CHECKS
            && self
                .hello_checks
                .iter()
                .filter(|m| !matches!(m.why, Why::Moved(_)))
                .count()
                < MAX_SILENCE_CHECKS
            && !self.checking(addr)
    }

    /// Starts a check of `addr` for silence or a one-way path.
    fn start_check(&mut self, now: Instant, addr: SocketAddr, why: Why) {
        self.rechecks.insert(addr, now);
        self.ask_if_there(now, addr, why);
    }

    /// Housekeeping, every [`SILENCE_SCAN`] with relaying on: the silent peers
    /// ([`Node::is_silent`]) are asked for their Hello ([`Node::settle_checks`] asks the
    /// relays for their lists if the first goes unanswered). One that stays silent for
    /// [`SILENCE_CHECK`] while such a list names it goes: its direct path broke, and that
    /// relay still reaches it. Where no relay lists it (this node lost its own network, the
    /// relays lost it too, or it stopped), nothing changes: it stays until the peer timeout,
    /// as in the seed's protocol.
    pub(super) fn check_silent_peers(&mut self, now: Instant) {
        if now < self.next_silence_scan {
            return;
        }
        self.next_silence_scan = now + SILENCE_SCAN;
        if !self.relays() {
            return;
        }
        let mut due = core::mem::take(&mut self.targets);
        due.clear();
        due.extend(
            self.relay
                .accepting()
                .filter(|addr| self.is_silent(*addr) && self.may_check(now, *addr))
                .take(MAX_SILENCE_CHECKS),
        );
        for addr in due.iter() {
            // (Each start takes a place: the last ones may find none.)
            if !self.may_check(now, *addr) {
                break;
            }
            debug!(
                "{addr} has been silent for {} s: asking whether it is still there",
                self.silent_after().as_secs()
            );
            self.start_check(now, *addr, Why::Silent);
        }
        self.targets = due;
    }

    /// Asks up to [`SILENCE_ASK_RELAYS`] relaying peers that are not silent and whose lists
    /// count (Hello flag 0x80) for their lists, a different few each time, for a silence
    /// check; only `via`, if given, for a one-way check.
    fn ask_relays_for_lists(&mut self, via: Option<SocketAddr>) {
        let mut relays = core::mem::take(&mut self.targets);
        relays.clear();
        match via {
            Some(via) => relays.push(via),
            None => {
                relays.extend(self.relay.capable().filter(|r| {
                    self.relay.lists_fresh(*r) && self.peers.is_verified(*r) && !self.is_silent(*r)
                }));
                if !relays.is_empty() {
                    let start = self.relay_ask_cursor % relays.len();
                    relays.rotate_left(start);
                    self.relay_ask_cursor = start + SILENCE_ASK_RELAYS;
                }
                relays.truncate(SILENCE_ASK_RELAYS);
            }
        }
        for to in relays.iter() {
            self.send_control(*to, Kind::GetPeers);
        }
        self.targets = relays;
    }

    /// A relaying peer `via` whose lists name only the peers it still hears (Hello flag 0x80)
    /// listed `addr`: noted by a check of `addr` for silence or a one-way path. (`via` is not
    /// silent: its list was just heard.)
    pub(super) fn note_listed(&mut self, via: SocketAddr, addr: SocketAddr) {
        for m in self.hello_checks.iter_mut() {
            if m.old == addr && !matches!(m.why, Why::Moved(_)) && m.listed_by.is_none() {
                m.listed_by = Some(via);
            }
        }
    }

    /// Frames of the direct peer `origin` came through the relaying peer `via`: it no longer
    /// takes us for its peer, so the path from us to it may have broken (it still reaches us:
    /// a break one way only). Checked as a silent peer is, at most every [`RECHECK_AFTER`],
    /// but only a Hello counts as an answer.
    fn check_one_way(&mut self, now: Instant, via: SocketAddr, origin: SocketAddr) {
        if !self.relay.accepts(origin) || !self.may_check(now, origin) {
            return;
        }
        debug!("frames of direct peer {origin} come through {via}: asking whether it hears us");
        self.start_check(now, origin, Why::OneWay(via));
    }

    /// Housekeeping of the checks: an address that answered stays; one that did not in its
    /// time goes: as moved ([`MOVE_CHECK`]), or, where a relay listed it, as out of direct
    /// reach ([`SILENCE_CHECK`]; its relay becomes its route).
    pub(super) fn settle_checks(&mut self, now: Instant) {
        if self.hello_checks.is_empty() {
            return;
        }
        let mut checks = core::mem::take(&mut self.hello_checks);
        let mut ask_relays = false;
        checks.retain_mut(|m| {
            let until = m.asked
                + match m.why {
                    Why::Moved(_) => MOVE_CHECK,
                    Why::Silent | Why::OneWay(_) => SILENCE_CHECK,
                };
            let heard = self.peers.heard(m.old);
            let check = match (m.why, heard) {
                (_, None) => Check::Gone,
                (Why::OneWay(_), Some(_)) if m.hello => Check::Answered,
                (Why::OneWay(_), Some(_)) if now < until => Check::Waiting,
                (Why::OneWay(_), Some(_)) => Check::Unanswered,
                (_, heard) => check_of(heard, m.heard, now, until),
            };
            if matches!(check, Check::Waiting)
                && !m.lists_asked
                && now >= m.asked + HELLO_RETRY
                && !matches!(m.why, Why::Moved(_))
            {
                // The first Hello went unanswered: now the relays are asked whether they
                // still reach it (not before, so that a peer that only keeps quiet, with a
                // longer keepalive, costs its Hello and nothing more).
                m.lists_asked = true;
                match m.why {
                    Why::OneWay(via) => self.ask_relays_for_lists(Some(via)),
                    _ => ask_relays = true,
                }
            }
            match (check, m.why) {
                (Check::Gone, _) => false,
                (Check::Answered, Why::Moved(new)) => {
                    debug!("{} answers as well as {new}: the node has both", m.old);
                    false
                }
                (Check::Answered, _) => {
                    debug!("{} answers: it is still there", m.old);
                    false
                }
                (Check::Waiting, _) => true,
                (Check::Unanswered, Why::Moved(new)) => {
                    self.remove_peer(now, m.old, "the same node speaks from a new address");
                    self.note(now, format_args!("{} moved to {new}", m.old));
                    false
                }
                (Check::Unanswered, _) => {
                    if let Some(via) = m.listed_by {
                        self.remove_peer(
                            now,
                            m.old,
                            "no answer to a Hello, and a relay lists it: its direct path is down",
                        );
                        // (Listed while it was a peer, which made no candidate then.)
                        self.relay_on_listed(now, via, m.old);
                    } else {
                        debug!("{} does not answer, and no relay lists it: it stays", m.old);
                    }
                    false
                }
            }
        });
        self.hello_checks = checks;
        if ask_relays {
            self.ask_relays_for_lists(None);
        }
    }

    /// Whether two peers are the same node by their keys: with per-node keys the sessions
    /// must belong to one key; with a network key any member could claim any id anyway.
    fn same_key(&self, a: SocketAddr, b: SocketAddr) -> bool {
        match &self.sessions {
            Some(sessions) => {
                sessions.key_of(a).is_some() && sessions.key_of(a) == sessions.key_of(b)
            }
            None => true,
        }
    }

    /// `from` asks us to pass `frame` to our peer `to`.
    fn relay_for(
        &mut self,
        now: Instant,
        from: SocketAddr,
        to: SocketAddr,
        frame: Frame<&[u8]>,
    ) -> Result<(), DropReason> {
        let rate = self.config.relay_rate;
        if rate == 0
            || to == from
            || !self.relay.accepts(from)
            || !self.relay.accepts(to)
            || !self.peers.is_verified(to)
        {
            return Err(DropReason::RelayRefused);
        }
        if self.sessions.is_some() && !self.relay.same_members(from, to) {
            // Per-node keys: only between two nodes that trust the same members (so each
            // trusts the other), whatever we trust; a node that revoked a key, or never
            // trusted it, is not reached by it through us.
            return Err(DropReason::RelayRefused);
        }
        let bytes = frame.as_bytes();
        let cost = relayed_cost(from, to, bytes.len(), self.seal_overhead());
        let sender = match self.sessions.as_ref().and_then(|s| s.key_of(from)) {
            Some(key) => RelaySender::Key(key),
            None => RelaySender::Host(Host::of(from)),
        };
        if !self.relay_budget.allows(now, rate, sender, cost) {
            return Err(DropReason::RelayRateLimited);
        }
        let token = self.config.token;
        let Some(out) = self.control.get_mut(CONTROL_AT..) else {
            return Err(DropReason::RelayRefused);
        };
        let len =
            emit_relayed(token, RELAYED_FROM, from, bytes, out).map_err(DropReason::Malformed)?;
        if !self.send_sealed(to, len, false) {
            // No session with `to` yet (per-node keys), or the send failed: nothing spent.
            return Err(DropReason::RelayRefused);
        }
        self.relay_budget.take(now, rate, sender, cost);
        self.stats.relayed_for_others += 1;
        Ok(())
    }

    /// `frame` from the node at `origin` reached us through the relaying peer `via`.
    fn on_relayed(
        &mut self,
        now: Instant,
        via: SocketAddr,
        origin: SocketAddr,
        frame: Frame<&[u8]>,
    ) -> Result<(), DropReason> {
        // An origin nobody can be reached at, a loopback address from a relay that is not on
        // loopback, or one of our own public addresses: its route would have us contact it
        // (the direct tries), as a peer list naming it would (`learn_addresses`).
        let foreign_loopback = crate::peers::foreign_loopback(origin, via);
        if !self.relay.is_capable(via)
            || origin == via
            || self.config.is_own(origin)
            || is_unusable(origin)
            || foreign_loopback
            || self.relay.is_public(origin)
        {
            return Err(DropReason::RelayRefused);
        }
        if self.peers.is_verified(origin) {
            // We reach it directly: this is a copy of what comes (or will come) that way.
            // Unless the path from us to it broke, one way only: it dropped us, and relays.
            self.check_one_way(now, via, origin);
            return Err(DropReason::RelaySuperseded);
        }
        let src = frame.src();
        if !src.is_multicast() {
            if let Some(at) = self
                .switch
                .seen_within(now, frame.vlan(), src, DIRECT_FRESH)
            {
                if at != origin && self.peers.is_verified(at) {
                    // Its node reaches us directly (from `at`): the relay is a detour now.
                    self.relay.accept_relayed(now, via, origin);
                    self.relay_on_moved(now, origin, at);
                    return Err(DropReason::RelaySuperseded);
                }
            }
        }
        let mut accept = self.relay.accept_relayed(now, via, origin);
        let mut renewed = false;
        if matches!(accept, Accept::Superseded) {
            let by = self.relay.superseded_by(origin);
            let elsewhere = !src.is_multicast()
                && by.is_some_and(|by| self.switch.lookup(now, frame.vlan(), src) != Some(by));
            if !elsewhere {
                return Err(DropReason::RelaySuperseded);
            }
            // A MAC that is not behind the direct peer that superseded the route: the node
            // there is another one, which only the relay reaches.
            self.relay.unsupersede(origin);
            self.note(
                now,
                format_args!(
                    "frames from {origin} through {via} come from another node than the \
                     direct peer that replaced that route: relayed again"
                ),
            );
            // As for a route never seen: it may not fit (its relay's share is full), or
            // need a key check first.
            accept = self.relay.accept_relayed(now, via, origin);
            renewed = true;
        }
        match accept {
            Accept::Known => {}
            Accept::New if renewed => {}
            Accept::New => self.note(
                now,
                format_args!("frames from {origin} arrive through the relay {via}"),
            ),
            // (Not after the route was removed above.)
            Accept::Superseded => return Err(DropReason::RelaySuperseded),
            Accept::Full => return Err(DropReason::RelayRefused),
            Accept::Checking => {
                let (ask, demoted) = self.relay.ask_due(now, origin, via);
                if demoted {
                    self.relay_route_unconfirmed(now, origin);
                } else if self.relay.route(origin).is_none() {
                    // (A route that was active and now waits for a key: what was learnt
                    // behind it goes, so that frames to those MACs are not sent to the
                    // origin. One that stays active through its relay keeps them.)
                    self.switch.forget_peer(origin);
                }
                if let Some(via) = ask {
                    self.send_key_message(via, origin, None);
                }
                return Err(DropReason::RelayUnverified);
            }
            Accept::Refused => return Err(DropReason::RelayUnverified),
        }
        self.stats.relay_frames_received += 1;
        self.deliver_at(now, origin, via, frame, true)
    }
}

/// What passing on a `frame_len`-byte frame from `from` to `to` costs in `--relay-rate`: the
/// whole datagram it makes, as the network carries it (the RelayedFrom's header and address
/// field, the frame, the seal's `seal_overhead` bytes, and the UDP and IP headers of `to`'s
/// family), so that small frames cannot pass many more datagrams than the rate suggests.
fn relayed_cost(from: SocketAddr, to: SocketAddr, frame_len: usize, seal_overhead: usize) -> u64 {
    let ip_udp = match to {
        SocketAddr::V4(_) => 20 + 8,
        SocketAddr::V6(_) => 40 + 8,
    };
    let datagram = crate::wire::HEADER_LEN + crate::wire::relay::addr_len(from) + frame_len;
    (datagram + seal_overhead + ip_udp) as u64
}

/// [`Node::is_silent`] with relaying on, from the tables it reads: `addr` takes relayed
/// frames, and nothing came from it for `after`.
pub(super) fn silent(
    relay: &RelayTable,
    peers: &PeerTable,
    now: Instant,
    after: Duration,
    addr: SocketAddr,
) -> bool {
    relay.accepts(addr)
        && peers.get(addr).is_some_and(|peer| {
            peer.is_verified && now.saturating_duration_since(peer.last_seen) >= after
        })
}
