//! Mesh upkeep: housekeeping (expiry of peers and MAC entries, the contact queue, gossip,
//! keepalives, follow-ups, the phases of a key rotation), `--connect` addresses, learning
//! addresses from verified peers' lists, the peer lists we send, removing peers, and the
//! Close to every peer at shutdown.
//!
//! It never forwards frames or writes to the device (`forward.rs`) and never seals or opens
//! anything itself (`seal.rs`): its messages go out through `send_control` and
//! `send_control_buffer`.
//!
//! Choices made where the spec is silent:
//! - Addresses from peer lists are queued and sent "get peer list" at a bounded rate
//!   (`contacts_per_second`), each at most [`peers::LEARNED_ATTEMPTS`] times with back-off; they
//!   become peers only when they answer.
//! - `--connect` addresses are retried forever with exponential back-off (1 s doubling to 60 s),
//!   also after they time out or close.
//! - Keepalive and gossip are separate. Every peer must hear from us at least once per
//!   K = `min(peer_timeout / 4, 60 s)` (or `--keepalive`, at most half the peer timeout), so
//!   that it keeps us (with margin) and NAT mappings stay open. A sweep goes round the verified peers (round-robin) twice per K and sends the
//!   smallest peer list, an empty one (10 bytes in the clear), to those that have
//!   been sent nothing for half a K: so each gets one about every K − 2 s, and a gossip list
//!   sent to a peer stands in for its next keepalive.
//! - Gossip rounds follow Trickle ([`peers::Trickle`]): after the peer set grows, intervals start
//!   at 1 s and double up to K, with one round at a random point in the second half of each. A
//!   round sends the next ⌈√n⌉ peers of a round-robin in random order a list of ⌈√n⌉ peers
//!   (round-robin, never the receiver itself). At the steady interval a round is skipped if
//!   [`GOSSIP_REDUNDANCY`] lists that taught us nothing new arrived in the interval before it
//!   (Trickle's suppression), so in steady state only a few nodes per interval gossip, and
//!   gossip per node grows as √n·log n. See `docs/scale.md`.
//! - A "get peer list" from a verified peer is answered with up to 255 verified peers per
//!   address family, never including the asker itself. Only verified peers are ever shared.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use log::{debug, info, warn};

use super::relay::silent;
use super::{
    CloseCheck, Config, Node, CONTROL_AT, FULL_CONTACTS, GOSSIP_INTERVAL_MIN, GOSSIP_REDUNDANCY,
    HOUSEKEEP_INTERVAL, LOG_BUDGET, LOG_WINDOW, MOVE_CHECK, UNVERIFIED_TIMEOUT,
};
use crate::crypto;
use crate::io::{Device, Socket};
use crate::peers::PeerTable;
use crate::peers::{
    self, canonical, ceil_sqrt, foreign_loopback, is_unusable, unscoped_link_local,
};
use crate::relay::RelayTable;
use crate::time::Instant;
use crate::wire::{
    self, emit_peers,
    peers::{MAX_ENTRIES_PER_FAMILY, V4_ENTRY_LEN},
    Kind, HEADER_LEN,
};

/// The node's own addresses as [`Config::is_own`] searches them: canonical (IPv4 unmapped),
/// sorted, each once.
pub(super) fn normalize_own(addrs: &mut Vec<SocketAddr>) {
    for a in addrs.iter_mut() {
        *a = canonical(*a);
    }
    addrs.sort_unstable();
    addrs.dedup();
}

/// A seed for the gossip timer's random points: our own addresses and the start time, so that
/// nodes started together still pick different points, and the simulator stays deterministic.
pub(super) fn trickle_seed(config: &Config, now: Instant) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(&now.as_millis().to_le_bytes());
    for addr in &config.own_addrs {
        match addr {
            SocketAddr::V4(a) => feed(&a.ip().octets()),
            SocketAddr::V6(a) => feed(&a.ip().octets()),
        }
        feed(&addr.port().to_be_bytes());
    }
    h
}

impl<S: Socket, D: Device> Node<S, D> {
    /// Logs an event about a peer or a relay route at info, within [`LOG_BUDGET`] lines
    /// per [`LOG_WINDOW`]; past it at debug, and the next line at info first says how many
    /// were left out. The network can cause these events at will, the log must not grow
    /// with them.
    pub(super) fn note(&mut self, now: Instant, event: fmt::Arguments<'_>) {
        match self.log_budget.allow(now, LOG_BUDGET, LOG_WINDOW) {
            Some(0) => info!("{event}"),
            Some(left_out) => {
                info!(
                    "{left_out} more events about peers and relay routes were logged at debug \
                     only (at most {LOG_BUDGET} a minute at info; -v shows them all)"
                );
                info!("{event}");
            }
            None => debug!("{event}"),
        }
    }

    /// Adds a `--connect` address: contacted at the next housekeeping, retried with back-off
    /// until it answers, and again whenever it is lost. Our own address, an unusable one or one
    /// of a family the socket cannot reach is refused with a warning. Returns whether it was
    /// added (or already there).
    pub fn add_connect(&mut self, now: Instant, addr: SocketAddr) -> bool {
        let addr = canonical(addr);
        if let Some(why) = self.connect_refusal(addr) {
            warn!("not connecting to {addr}: {why}");
            return false;
        }
        if self.connect_set.insert(addr) {
            self.config.connect.push(addr);
            if !self.peers.contains(addr) {
                self.contacts.add_configured(addr, now);
            }
            self.next_housekeep = self.next_housekeep.min(now);
        }
        true
    }

    /// Why [`Node::add_connect`] would refuse `addr`, without logging anything: our own
    /// address, an unusable one (unspecified, multicast, port 0, ...), a link-local one
    /// without its interface (a name that resolves to one) or one of a family the socket
    /// cannot reach. `None` if it would be taken.
    pub fn connect_refusal(&self, addr: SocketAddr) -> Option<&'static str> {
        let addr = canonical(addr);
        if self.config.is_own(addr) {
            Some("that is this node's own address")
        } else if unscoped_link_local(addr) {
            Some("a link-local address needs an interface, which ethcloud cannot take")
        } else if is_unusable(addr) {
            Some("no node can be reached there")
        } else if !self.config.can_reach(addr) {
            Some("the listen socket cannot reach that address family")
        } else {
            None
        }
    }

    /// Replaces the addresses that are this node's own (read again from its interfaces, which
    /// gain and lose addresses while it runs: IPv6 temporary addresses, a DHCP lease, an
    /// interface brought up later). A peer at an address that is now ours is removed: in the
    /// clear protocol a list naming such an address made the node its own peer, every flood
    /// coming back into its device. Returns whether the set changed.
    pub fn set_own_addrs(&mut self, now: Instant, mut addrs: Vec<SocketAddr>) -> bool {
        normalize_own(&mut addrs);
        if addrs == self.config.own_addrs {
            return false;
        }
        self.config.own_addrs = addrs;
        // (An address that was ours before is no peer: datagrams from it were refused.)
        let gained: Vec<SocketAddr> = self
            .config
            .own_addrs
            .iter()
            .filter(|a| self.peers.contains(**a))
            .copied()
            .collect();
        for addr in gained {
            self.remove_peer(now, addr, "the address is now this node's own");
        }
        true
    }

    /// Forgets a `--connect` address (e.g. a DNS name now resolves elsewhere): it is no longer
    /// retried. If it is a peer it stays one until it times out or closes, like any other.
    pub fn remove_connect(&mut self, addr: SocketAddr) {
        let addr = canonical(addr);
        if self.connect_set.remove(&addr) {
            self.config.connect.retain(|a| *a != addr);
        }
        if self.contacts.get(addr).is_some_and(|c| c.is_configured) {
            self.contacts.remove(addr);
        }
    }

    /// Sends Close to every peer (the spec's shutdown rule) and forgets them. With per-node
    /// keys only to the verified ones: the others have no session to seal it in (sending
    /// would start a handshake).
    pub fn shutdown(&mut self, now: Instant) {
        self.now = now;
        let mut peers = core::mem::take(&mut self.targets);
        peers.clear();
        if self.sessions.is_some() {
            peers.extend(self.peers.verified_addrs());
        } else {
            // Unverified ones too: a node that asked us for our list, and so counts us as
            // its peer, stops sending to us now rather than after its peer timeout.
            peers.extend(self.peers.addrs());
        }
        for addr in peers.iter() {
            self.send_control(*addr, Kind::Close);
        }
        info!("sent close to {} peers", peers.len());
        peers.clear();
        peers.extend(self.peers.addrs());
        for addr in peers.iter() {
            self.peers.remove(*addr);
            self.switch.forget_peer(*addr);
        }
        self.targets = peers;
        self.next_housekeep = now + HOUSEKEEP_INTERVAL;
    }

    /// Runs the timers: expires peers and MAC entries, contacts queued addresses, gossips.
    /// Call it whenever `now >= self.next_deadline()`; calling it more often is harmless.
    pub fn housekeep(&mut self, now: Instant) {
        self.next_housekeep = now + HOUSEKEEP_INTERVAL;
        self.now = now;

        let mut expired = core::mem::take(&mut self.targets);
        expired.clear();
        let unverified_timeout = UNVERIFIED_TIMEOUT.min(self.config.peer_timeout);
        self.peers.collect_expired(
            now,
            self.config.peer_timeout,
            unverified_timeout,
            &mut expired,
        );
        for addr in expired.iter() {
            self.remove_peer(now, *addr, "timed out");
        }
        self.targets = expired;

        self.switch.expire(now, |vlan, mac, peer| {
            debug!("{mac} on {vlan} at {peer} expired");
        });

        self.contact_due(now);
        self.relay_housekeep(now);
        self.relay_budget.prune(now, self.config.relay_rate);
        self.check_silent_peers(now);
        self.settle_checks(now);
        self.settle_closes(now);
        self.hello_retries(now);
        self.keyed_aegis_housekeep();
        if self.tx.warn_again_if_due(now) {
            self.device_warned = false;
        }

        let keepalive = self.config.keepalive();
        if self
            .trickle
            .poll(now, GOSSIP_INTERVAL_MIN, keepalive, GOSSIP_REDUNDANCY)
        {
            self.gossip(now);
        }
        // Once the rounds are a keepalive apart (the timer settled, whether its rounds run or
        // are suppressed), the set as it is now is what gossip spreads: growth past it is news
        // again. (Only then: after a restart the timer takes about a keepalive to settle
        // again, so peers that come and go restart it at most that often, not every second.)
        if self.trickle.interval() >= keepalive {
            self.gossip_high = self.peers.verified_len();
        }
        self.send_keepalives(now, keepalive);
        self.send_follow_ups(now);
        self.send_echo_retries(now);
        self.advance_rollover(now);
        self.housekeep_sessions(now);
    }

    fn contact_due(&mut self, now: Instant) {
        let rate = self.config.contacts_per_second.max(1) as u64;
        let budget = self.contact_limiter.available(now, rate);
        let mut due = core::mem::take(&mut self.targets);
        due.clear();
        self.contacts
            .take_due(now, usize::try_from(budget).unwrap_or(usize::MAX), &mut due);
        self.contact_limiter.take(due.len() as u64);
        for addr in due.iter() {
            // (A `--connect` address, or one learnt, that became this node's own while it
            // runs (`set_own_addrs`) is not asked: it would only reach this node. It stays
            // a connect address, in case the address moves away again.)
            if self.config.is_own(*addr) {
                debug!("not asking {addr}: it is this node's own address now");
                continue;
            }
            debug!("asking {addr} for its peer list");
            self.send_control(*addr, Kind::GetPeers);
        }
        self.targets = due;
    }

    /// The keepalive sweep: goes round the verified peers in turn, twice per keepalive K, and
    /// sends an empty peer list to each one that has been sent nothing for a while.
    ///
    /// With H the housekeeping interval, a sweep takes P = (K − 2H) / 2 and a peer is sent a
    /// keepalive when it has been sent nothing for S = P + H. Visits to one peer come P apart,
    /// give or take H, so: a peer sent nothing else gets a keepalive every other visit, every
    /// 2P = K − 2H; and after a keepalive or a gossip list the next one comes at most
    /// S + P + H = K later (plus however late a housekeeping runs). A gossip list thus stands
    /// in for a keepalive. Below K = 4H the rule is simply a keepalive at every visit, one per
    /// K − H.
    fn send_keepalives(&mut self, now: Instant, keepalive: Duration) {
        let h = HOUSEKEEP_INTERVAL;
        let (period, idle) = if keepalive >= h * 4 {
            let period = (keepalive - h * 2) / 2;
            (period, period + h)
        } else {
            (keepalive.saturating_sub(h).max(h), Duration::ZERO)
        };
        let due = self.keepalives.due(now, self.peers.verified_len(), period);
        if due == 0 {
            return;
        }
        let mut targets = core::mem::take(&mut self.targets);
        targets.clear();
        self.peers
            .sweep(&mut self.sweep_cursor, due, now, idle, &mut targets);
        for to in targets.iter().copied() {
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, _)) = emit_peers(self.config.token, core::iter::empty(), buf) {
                self.send_control_buffer(to, len);
            }
        }
        self.targets = targets;
    }

    /// One gossip round: the next ⌈√n⌉ peers of a round-robin in random order each get a list
    /// of ⌈√n⌉ peers (round-robin). The round-robin reaches every peer in turn (which matters
    /// while the mesh forms: a peer that lost our answer hears from us again soon); its random
    /// order keeps the lists of many nodes spread evenly over the mesh (in address order, nodes
    /// that started together gossip to the same peers at the same time, and suppression works
    /// badly).
    fn gossip(&mut self, now: Instant) {
        let n = self.peers.verified_len();
        if n == 0 {
            return;
        }
        let share = ceil_sqrt(n);
        let mut targets = core::mem::take(&mut self.targets);
        targets.clear();
        let trickle = &mut self.trickle;
        self.peers.shuffled_round_robin(
            &mut self.gossip_position,
            share,
            || trickle.next_random(),
            &mut targets,
        );
        let mut entries = core::mem::take(&mut self.entries);
        for to in targets.iter().copied() {
            entries.clear();
            self.peers
                .round_robin(&mut self.share_cursor, share + 1, &mut entries);
            // The next list starts share peers on, whoever this one goes to: the windows of
            // successive lists then start at every peer in turn, and a window's last peer,
            // left out when `to` is not in it, starts the next one. (Moving past the whole
            // window let them line up the same way round after round when n is a multiple
            // of share + 1, and some peers were never named to some receivers.)
            if entries.len() > share {
                self.share_cursor = entries.get(share - 1).copied();
            }
            let cut = self
                .relays()
                .then_some((&self.relay, now, self.config.heard_within()));
            entries.retain(|a| listable(&self.peers, cut, *a, to));
            entries.truncate(share);
            let list = entries.iter().copied();
            let end = self.control.len() - crypto::TAG_LEN;
            let Some(buf) = self.control.get_mut(CONTROL_AT..end) else {
                continue;
            };
            if let Ok((len, count)) = emit_peers(self.config.token, list, buf) {
                debug!("gossip: sending {count} peers to {to}");
                self.send_control_buffer(to, len);
                self.peers.note_sent(to, now);
            }
        }
        self.entries = entries;
        self.targets = targets;
    }

    /// Queues the addresses in a verified peer's list that are new to us. A list with nothing
    /// new that names at least one address we know is *consistent* and counts towards
    /// suppressing our next steady gossip round.
    pub(super) fn learn_addresses(
        &mut self,
        now: Instant,
        from: SocketAddr,
        list: wire::PeerList<'_>,
    ) {
        let (mut news, mut known) = (0usize, 0usize);
        let relay_listed = self.relays() && self.relay.is_capable(from);
        // (What the checks of silent and one-way peers wait for: see `SILENCE_CHECK`.)
        let fresh_list =
            relay_listed && self.relay.lists_fresh(from) && !self.hello_checks.is_empty();
        for addr in list.iter() {
            let addr = canonical(addr);
            if addr == from {
                continue;
            }
            let foreign_loopback = foreign_loopback(addr, from);
            if relay_listed && !is_unusable(addr) && !foreign_loopback && !self.config.is_own(addr)
            {
                self.relay_on_listed(now, from, addr);
                if fresh_list {
                    self.note_listed(from, addr);
                }
            }
            if self.peers.contains(addr)
                || self.contacts.contains(addr)
                || self.relay.is_public(addr)
            {
                known += 1;
                continue;
            }
            // A loopback address in the list of a peer that is not on loopback itself names
            // a host of that peer's, never one of ours: probing it would only send our "get
            // peer list" to whatever listens on that port of this very host.
            if is_unusable(addr)
                || foreign_loopback
                || self.config.is_own(addr)
                || !self.config.can_reach(addr)
            {
                self.stats.peer_entries_ignored += 1;
                continue;
            }
            news += 1;
            if !self.contacts.add_learned(now, addr, from) {
                self.stats.contacts_refused += 1;
                if self.first_time_full(FULL_CONTACTS) {
                    let max = self.config.max_contacts;
                    let share = self.contacts.max_per_lister();
                    warn!("contact queue full ({max} addresses, or {share} listed by one host): addresses from peer lists are ignored (counted; warned once)");
                }
                debug!("not contacting {addr}: contact queue full (or {from}'s share of it)");
            }
        }
        // Consistent: it names what we know and nothing new (a list of unusable entries
        // alone says nothing about our view, and does not count).
        if news == 0 && known > 0 {
            self.trickle.heard_consistent(from);
        }
    }

    /// A Close from `from`. From a verified peer it removes the peer at once (the seed's
    /// rule), except with a network key when another sender process than the one the peer is
    /// known by sealed it (see below and [`Node::settle_closes`]). In the clear protocol, where anyone can forge a Close, the address is then
    /// asked at once (within the contact rate), and once more 2 s later if no answer came
    /// ([`Contacts::try_once`](crate::peers::Contacts::try_once)): a peer that is still there
    /// answers, and is a peer again a round trip later, rather than stay cut off until its
    /// next datagram (a restarted one is found again as quickly); one that is gone sends
    /// nothing, and is not asked again. A Close from an unverified peer is ignored: it is sent nothing
    /// but our questions and goes by itself, and a forged Close must not wipe the question of
    /// a verification under way.
    pub(super) fn on_close(&mut self, now: Instant, from: SocketAddr) {
        if !self.peers.is_verified(from) {
            debug!("ignored a Close from unverified peer {from}");
            return;
        }
        if self.crypto.is_some() {
            // Keyed mode: a Close sealed by a process other than the one this peer is known by
            // is a recording of another member's (or of the peer's before it restarted)
            // replayed with its address, or the peer restarted or rotated the key and closes
            // before its Echo told its new process. Not obeyed at once: the peer is sent a
            // Challenge (one per check, whatever `recheck_process`'s own rate; a peer of an
            // earlier version drops it) and goes unless something comes from it within
            // MOVE_CHECK (`settle_closes`). One check per verified peer at most; with the list
            // full (never, as long as it holds only verified peers), the Close is ignored
            // and the peer left to its timeout.
            let process = crypto::sender_process(&self.last_session);
            let unknown = self
                .process_of
                .get(&from)
                .is_some_and(|known| *known != process);
            if unknown {
                let pending = self.close_checks.contains_key(&from);
                if !pending && self.close_checks.len() < self.config.max_peers {
                    let heard = self.peers.heard(from).unwrap_or(0);
                    let until = now + MOVE_CHECK;
                    self.close_checks.insert(from, CloseCheck { until, heard });
                    if self.config.keyed_echo {
                        self.send_process_challenge(now, from);
                    }
                }
                debug!("a Close from {from} sealed by a process it is not known by: asking it");
                return;
            }
        }
        self.remove_peer(now, from, "closed by peer");
        // Per-node keys: the process that closed held our sessions with its key; a new one
        // there (a restart) opens none of them. Ended, so that what we send next starts a
        // handshake.
        if let Some(sessions) = self.sessions.as_deref_mut() {
            sessions.peer_closed();
        }
        if !self.is_sealed() && self.contacts.try_once(now, from, from) {
            self.contact_due(now);
        }
    }

    /// Housekeeping of the Closes [`Node::on_close`] did not obey at once: a peer from which
    /// nothing came since goes, as closed.
    pub(super) fn settle_closes(&mut self, now: Instant) {
        if self.close_checks.is_empty() {
            return;
        }
        // (In address order, a `BTreeMap`'s: the peer table's order after the removals,
        // which the gossip's rounds follow, is the same for the same inputs.)
        let mut checks = core::mem::take(&mut self.close_checks);
        checks.retain(
            |&addr, c| match check_of(self.peers.heard(addr), c.heard, now, c.until) {
                Check::Gone | Check::Answered => false,
                Check::Waiting => true,
                Check::Unanswered => {
                    self.remove_peer(now, addr, "closed by peer (silent since)");
                    false
                }
            },
        );
        self.close_checks = checks;
    }

    pub(super) fn remove_peer(&mut self, now: Instant, addr: SocketAddr, reason: &str) {
        let Some(peer) = self.peers.remove(addr) else {
            return;
        };
        self.after_removal(now, addr, peer.is_verified, reason);
    }

    /// Forgets what the node keeps about `addr` besides its peer-table entry, which is gone
    /// (removed by [`Node::remove_peer`], or evicted by the table to make room), and logs it.
    pub(super) fn after_removal(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        was_verified: bool,
        reason: &str,
    ) {
        // An unverified entry at an address reached through a relay (its node's direct tries
        // get through to us, ours do not reach it: a path broken one way) goes without the
        // route and the MACs learnt through it, which still work.
        let routed = !was_verified && self.relay.is_routed(addr);
        let macs = if routed {
            0
        } else {
            self.switch.forget_peer(addr)
        };
        self.relay_on_removed(addr, routed);
        self.forget_process(addr);
        self.close_checks.remove(&addr);
        if was_verified {
            let count = self.peers.verified_len();
            self.note(
                now,
                format_args!("peer {addr} removed: {reason} ({count} peers)"),
            );
        } else {
            debug!("unverified peer {addr} removed: {reason}");
        }
        if macs > 0 {
            debug!("forgot {macs} mac entries behind {addr}");
        }
        if self.connect_set.contains(&addr) {
            self.contacts
                .add_configured(addr, now + peers::CONNECT_BACKOFF_START);
        }
    }

    /// Sends `to` our verified peers, leaving `to` itself out: up to 255 per family, and no
    /// more than fit in a body of `body_budget` bytes. Each family's list starts where the
    /// previous list ended, so when there are more peers than fit, successive askers learn
    /// different parts of the mesh; and only the entries sent are walked, not the whole table.
    pub(super) fn send_peer_list(&mut self, to: SocketAddr, body_budget: usize) {
        if let Some(len) = self.emit_peer_list(to, body_budget) {
            self.send_control_buffer(to, len);
        }
    }

    /// Writes the peer list for `to` at [`CONTROL_AT`]; returns its length.
    pub(super) fn emit_peer_list(&mut self, to: SocketAddr, body_budget: usize) -> Option<usize> {
        let peers = &self.peers;
        let cut = self
            .relays()
            .then_some((&self.relay, self.now, self.config.heard_within()));
        let family = |is_v6: bool, cursor: Option<SocketAddr>| {
            peers
                .verified_of_family_after(is_v6, cursor)
                .filter(move |a| listable(peers, cut, *a, to))
                .take(MAX_ENTRIES_PER_FAMILY)
        };
        let [cursor_v4, cursor_v6] = self.list_cursors;
        let (v4, v6) = (family(false, cursor_v4), family(true, cursor_v6));
        let room = self.control.len() - CONTROL_AT - crypto::TAG_LEN;
        let len = (HEADER_LEN + body_budget).min(room);
        let buf = self.control.get_mut(CONTROL_AT..CONTROL_AT + len)?;
        let (len, _) = emit_peers(self.config.token, v4.clone().chain(v6.clone()), buf).ok()?;
        // The body starts with the IPv4 count, and the IPv6 count follows the IPv4 entries.
        let n4 = buf.get(HEADER_LEN).map_or(0, |n| usize::from(*n));
        let n6 = buf
            .get(HEADER_LEN + 1 + n4 * V4_ENTRY_LEN)
            .map_or(0, |n| usize::from(*n));
        if let Some(last) = n4.checked_sub(1).and_then(|i| v4.clone().nth(i)) {
            self.list_cursors[0] = Some(last);
        }
        if let Some(last) = n6.checked_sub(1).and_then(|i| v6.clone().nth(i)) {
            self.list_cursors[1] = Some(last);
        }
        Some(len)
    }
}

/// Whether a peer list to `to` may name `peer`: not `to` itself, nor a loopback peer (another
/// instance on this host) to a node elsewhere, where that address is its own host's, and a
/// node of the seed's protocol would contact whatever listens there; nor an IPv6 link-local
/// peer, whose interface the list cannot carry (new nodes ignore such entries, a node of the
/// seed's protocol would try them in vain).
fn may_name(peer: SocketAddr, to: SocketAddr) -> bool {
    peer != to && !foreign_loopback(peer, to) && !crate::peers::link_local(peer)
}

/// Whether a list to `to` may name the verified `peer` ([`may_name`]), and, with relaying on
/// (`cut`: the relay table, the time and `Config::heard_within`), whether it is not a relaying
/// peer unheard for that long: a relaying node lists only the peers it still hears (see
/// [`super::SILENCE_CHECK`]).
fn listable(
    peers: &PeerTable,
    cut: Option<(&RelayTable, Instant, Duration)>,
    peer: SocketAddr,
    to: SocketAddr,
) -> bool {
    may_name(peer, to)
        && !cut.is_some_and(|(relay, now, after)| silent(relay, peers, now, after, peer))
}

/// Where a check of a peer that was asked something stands (a Close not obeyed at once, an
/// address the node may have moved from).
pub(super) enum Check {
    /// The address is no peer any more: nothing to decide.
    Gone,
    /// Something came from it since it was asked.
    Answered,
    /// Nothing yet, and its time is not up.
    Waiting,
    /// Nothing came within its time.
    Unanswered,
}

/// The [`Check`] of a peer from which `heard` datagrams have come by `now` (`None`: no peer),
/// `then` when it was asked, with time until `until`.
pub(super) fn check_of(heard: Option<u64>, then: u64, now: Instant, until: Instant) -> Check {
    match heard {
        None => Check::Gone,
        Some(heard) if heard != then => Check::Answered,
        Some(_) if now < until => Check::Waiting,
        Some(_) => Check::Unanswered,
    }
}
