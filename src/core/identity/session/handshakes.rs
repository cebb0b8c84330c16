//! The handshakes of [`Sessions`]: answering initiations (mac1, rate limits, trust, replay),
//! completing our own, starting rounds to addresses without a session, and the renewal timers.
//! The session table itself (sealing, opening, installing what a handshake made) is the
//! parent module's.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::{debug, info};

use super::{
    FastMap, HandshakeEvent, KeyState, Pending, RecvSession, SendSession, Sessions,
    HANDSHAKE_RETRY, HANDSHAKE_TIMEOUT, MAX_PENDING, MAX_PROBES, MAX_PROBES_PER_SECOND,
    MAX_SOURCES, MAX_UNCONFIRMED, MAX_WANTED, RECEIVE_GRACE, REJECT_SLACK, RESPONDER_REKEY_DELAY,
};
use crate::crypto::{Cipher, Opener, Sealer};
use crate::identity::cookie::{self, COOKIE_LIFETIME, COOKIE_REPLY, INITIATION_WITH_MAC2_LEN};
use crate::identity::handshake::{
    self, Established, HandshakeError, INITIATION, INITIATION_LEN, RESPONSE,
};
use crate::identity::keys::wipe;
use crate::identity::keys::PublicKey;
use crate::limit::{Host, RateLimiter, LOG_BUDGET, LOG_WINDOW};
use crate::time::Instant;
use crate::wire::TOKEN_LEN;

/// What became of an initiation [`Sessions::initiate`] was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Initiated {
    /// It went out and is in flight.
    Sent,
    /// A probe found no room in flight (handshakes with known keys fill it).
    NoRoom,
    /// No message could be made for the key.
    Failed,
}

impl Sessions {
    /// Handles a handshake message (the byte after the token is [`INITIATION`], [`RESPONSE`]
    /// or [`COOKIE_REPLY`]); a message to send back is written to `out`.
    pub fn on_handshake(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &[u8],
        out: &mut [u8],
    ) -> HandshakeEvent {
        match msg.get(TOKEN_LEN).copied() {
            Some(INITIATION) => self.on_initiation(now, from, msg, out),
            Some(RESPONSE) => self.on_response(now, from, msg),
            Some(COOKIE_REPLY) => self.on_cookie_reply(now, from, msg, out),
            _ => {
                self.stats.handshakes_invalid += 1;
                HandshakeEvent::Dropped
            }
        }
    }

    fn on_initiation(
        &mut self,
        now: Instant,
        from: SocketAddr,
        full: &[u8],
        out: &mut [u8],
    ) -> HandshakeEvent {
        // An initiation with mac2 is the 136-byte one and 16 bytes more (`cookie`); `msg` is
        // the 136 bytes either way.
        let with_mac2 = full.len() == INITIATION_WITH_MAC2_LEN;
        let msg = match full.get(..INITIATION_LEN) {
            Some(body) if with_mac2 => body,
            _ => full,
        };
        if handshake::check_initiation(&self.identity, msg).is_err() {
            self.stats.handshakes_invalid += 1;
            return HandshakeEvent::Dropped;
        }
        // mac2 is looked at only after mac1, which is checked over the first 136 bytes.
        let proven = with_mac2 && self.cookie_secret.proves(now, from, full);
        if proven {
            self.stats.initiations_proven += 1;
        }
        let within = if proven {
            self.within_proven_rate(now, from)
        } else {
            self.within_rate(now, from)
        };
        if !within {
            self.stats.handshakes_rate_limited += 1;
            if proven {
                return HandshakeEvent::Dropped;
            }
            // Over the limit, and nothing shows that the sender receives at its source: a
            // cookie reply, which only a sender that does can use. At most one reply, of 56
            // bytes, per initiation of 136 or more.
            return match self.cookie_secret.write_reply(now, from, msg, out) {
                Ok(len) => {
                    self.stats.cookies_sent += 1;
                    HandshakeEvent::CookieReply(len)
                }
                Err(_) => HandshakeEvent::Dropped,
            };
        }
        let local_index = self.next_index();
        let trusted = &self.trusted;
        let keys = &self.keys;
        let mut timestamp = None;
        let mut ephemeral = self.random.draw();
        let result = handshake::respond(
            &self.identity,
            self.token,
            msg,
            |key| trusted.contains(key),
            |key, ts| {
                let newer = keys
                    .get(key)
                    .and_then(|s| s.last_timestamp)
                    .is_none_or(|last| ts > &last);
                if newer {
                    timestamp = Some(*ts);
                }
                newer
            },
            local_index,
            &ephemeral,
            out,
        );
        wipe(&mut ephemeral);
        match result {
            Ok((established, _)) if self.used_by_other(from, &established.remote, now) => {
                // An initiation of one trusted key from the address of another that still
                // uses it: a member posing as another. No answer, no session.
                self.stats.address_in_use += 1;
                debug!("handshake initiation from {from} refused: another trusted key uses that address");
                HandshakeEvent::Dropped
            }
            Ok((established, len)) => {
                self.stats.responses_sent += 1;
                let key = established.remote;
                let current = self.install(now, from, established);
                if let (Some(state), Some(ts)) = (self.keys.get_mut(&key), timestamp) {
                    state.last_timestamp = Some(ts);
                }
                HandshakeEvent::Answered(len, current)
            }
            Err(e) => {
                self.count_refusal(e);
                debug!("handshake initiation from {from} refused: {e}");
                HandshakeEvent::Dropped
            }
        }
    }

    fn on_response(&mut self, now: Instant, from: SocketAddr, msg: &[u8]) -> HandshakeEvent {
        let Ok((_, receiver_index)) = handshake::check_response(&self.identity, msg) else {
            self.stats.handshakes_invalid += 1;
            return HandshakeEvent::Dropped;
        };
        let Some(remote) = self
            .pending
            .get(&receiver_index)
            .map(|p| p.initiator.remote)
        else {
            self.stats.responses_unexpected += 1;
            return HandshakeEvent::Dropped;
        };
        if !self.trusted.contains(&remote) {
            self.stats.handshakes_untrusted += 1;
            return HandshakeEvent::Dropped;
        }
        // A response may not claim the address of another member (see `on_initiation`).
        if self.used_by_other(from, &remote, now) {
            self.stats.address_in_use += 1;
            debug!("handshake response from {from} refused: another trusted key uses that address");
            return HandshakeEvent::Dropped;
        }
        let Some(pending) = self.pending.get_mut(&receiver_index) else {
            return HandshakeEvent::Dropped;
        };
        match pending.initiator.complete(msg) {
            Ok(established) => {
                let key = established.remote;
                // This and other initiations to this key (other addresses) are done with.
                self.pending.retain(|_, p| p.initiator.remote != key);
                self.install(now, from, established);
                HandshakeEvent::Completed
            }
            Err(e) => {
                // Anyone who knows our public key can make a response that passes mac1, but
                // only one who saw the initiation (the node it went to, or one on the path)
                // knows its index. Opening a response costs two Diffie-Hellmans, so a handshake
                // takes one refused response and no more: it is given up, and the next round
                // starts another.
                self.pending.remove(&receiver_index);
                self.count_refusal(e);
                debug!("handshake response from {from} refused: {e} (handshake given up)");
                HandshakeEvent::Dropped
            }
        }
    }

    /// A cookie reply: the responder was over its rate limit for one of our initiations. The
    /// cookie is kept for the address, and the initiation goes again at once with mac2 (once),
    /// with a timeout of its own from then. A reply with the cookie we hold already (a replay,
    /// or the responder's same secret) leaves its time as it was: the cookie lives as long as
    /// the secret it came from, counted from when it first came.
    fn on_cookie_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        msg: &[u8],
        out: &mut [u8],
    ) -> HandshakeEvent {
        let Some(index) = cookie::reply_receiver(msg) else {
            self.stats.handshakes_invalid += 1;
            return HandshakeEvent::Dropped;
        };
        // Only from the address the initiation went to: the cookie is for our address as that
        // responder sees it. (Replies to initiations forged with our address come here too.)
        let Some(pending) = self.pending.get_mut(&index).filter(|p| p.addr == from) else {
            self.stats.cookies_unexpected += 1;
            return HandshakeEvent::Dropped;
        };
        let opened =
            cookie::open_reply(self.token, &pending.initiator.remote, &pending.message, msg);
        let Ok(got) = opened else {
            self.stats.cookies_unexpected += 1;
            return HandshakeEvent::Dropped;
        };
        self.stats.cookies_received += 1;
        let again = !pending.retried;
        pending.retried = true;
        if again {
            pending.sent = now;
        }
        let message = pending.message;
        if self.cookies.get(&from).is_none_or(|(held, _)| *held != got) {
            self.keep_cookie(now, from, got);
        }
        if again {
            // The time of the cookie held, which the mac2 of the retry is made with: if the
            // retry goes unanswered, that cookie goes (see `housekeep`).
            let held = self.cookies.get(&from).map(|(_, at)| *at);
            if let Some(pending) = self.pending.get_mut(&index) {
                pending.mac2_cookie = held;
            }
        }
        let Some(out) = out.get_mut(..INITIATION_WITH_MAC2_LEN) else {
            return HandshakeEvent::Dropped;
        };
        if !again {
            return HandshakeEvent::Dropped;
        }
        out[..INITIATION_LEN].copy_from_slice(&message);
        out[INITIATION_LEN..].copy_from_slice(&cookie::mac2(&got, &message));
        self.stats.initiations_sent += 1;
        debug!("handshake with {from}: sent again with a cookie (the responder is over its rate limit)");
        HandshakeEvent::Retried(INITIATION_WITH_MAC2_LEN)
    }

    /// Keeps `got`, the cookie `from` sent us; the table holds at most [`MAX_PENDING`].
    fn keep_cookie(&mut self, now: Instant, from: SocketAddr, got: cookie::Cookie) {
        if self.cookies.len() >= MAX_PENDING && !self.cookies.contains_key(&from) {
            self.cookies
                .retain(|_, (_, at)| now < *at + COOKIE_LIFETIME);
            if self.cookies.len() >= MAX_PENDING {
                if let Some(oldest) = self
                    .cookies
                    .iter()
                    // (Ties by address, not by the map's order, which differs per process.)
                    .min_by_key(|(addr, (_, at))| (*at, **addr))
                    .map(|(a, _)| *a)
                {
                    self.cookies.remove(&oldest);
                }
            }
        }
        self.cookies.insert(from, (got, now));
    }

    fn count_refusal(&mut self, e: HandshakeError) {
        match e {
            HandshakeError::Untrusted => self.stats.handshakes_untrusted += 1,
            HandshakeError::Replayed => self.stats.handshakes_replayed += 1,
            HandshakeError::Noise => self.stats.handshakes_forged += 1,
            _ => self.stats.handshakes_invalid += 1,
        }
    }

    /// Per-source and overall rate limits on handshakes answered.
    fn within_rate(&mut self, now: Instant, from: SocketAddr) -> bool {
        let rate = self.config.handshakes_per_second;
        if self.by_addr.contains_key(&from) {
            // An address that a trusted key uses draws on a bucket of its own, not on that of
            // its IP address: a flood from other addresses (other hosts behind the same NAT
            // address or in the same /64 too) cannot starve the renewals of the sessions we
            // have.
            return self.known_sources.allow(now, rate);
        }
        source_allows(
            &mut self.sources,
            now,
            from,
            self.config.handshakes_per_source,
        ) && self.all_sources.allow(now, rate)
    }

    /// The same limits for initiations whose mac2 proves their source address, on buckets of
    /// their own: what floods the ones above from forged addresses cannot reach these.
    fn within_proven_rate(&mut self, now: Instant, from: SocketAddr) -> bool {
        let rate = self.config.handshakes_per_second;
        if let Some(&key) = self.by_addr.get(&from) {
            // Each key these addresses belong to has a bucket of its own as well, so that no
            // one of them (a member's, even one that binds many source ports to its key, or
            // one whose proven initiations someone on the path replays) takes the whole
            // allowance of the others.
            let per_source = self.config.handshakes_per_source;
            return bucket_allows(&mut self.proven_keys, key, now, per_source)
                && self.proven_known.allow(now, rate);
        }
        source_allows(
            &mut self.proven_sources,
            now,
            from,
            self.config.handshakes_per_source,
        ) && self.proven_all.allow(now, rate)
    }

    /// Makes `established` the current session of its key, at `addr`; a renewal we answered
    /// (not started) waits as the key's next session until the initiator shows it has it too.
    /// Returns whether it is the current session now (false for such a renewal).
    fn install(&mut self, now: Instant, addr: SocketAddr, established: Established) -> bool {
        let key = established.remote;
        let state = self.keys.entry(key).or_default();
        let renewed = state.current.is_some();
        let confirm_first = renewed && !established.is_initiator;
        // The receiving half of the session before `current` (`previous`) is not dropped
        // here when `current` moves there: the peer may still seal in it (after a first
        // contact that crossed, each side seals in the session it started, which the other
        // opens as `previous`, until its Hello in the renewal arrives). It expires with the
        // other receiving halves (`housekeep`), and revocation drops it with its key.
        // AEGIS-128L only once the peer's Hello in this session says it opens it.
        let cipher = Cipher::preferred_for_sessions(false);
        let aegis = Cipher::preferred_for_sessions(true);
        // A handshake of the peer's that we answered meanwhile crossed this one of ours, if
        // this is ours (both started one at once): the peer seals in that one, and its Hellos
        // there speak for this one. It is the one we answered and hold as `next` (a renewal
        // the peer has not confirmed), or else the current one if we answered it (a first
        // contact, or a renewal of the peer's that it confirmed before ours completed);
        // answered within HANDSHAKE_TIMEOUT.
        let crossed = established
            .is_initiator
            .then(|| {
                state
                    .next
                    .as_ref()
                    .or(state.current.as_ref().filter(|c| !c.is_initiator))
            })
            .flatten()
            .filter(|s| now.saturating_duration_since(s.made) <= HANDSHAKE_TIMEOUT)
            .map(|s| s.recv_session);
        let send = SendSession {
            sealer: Arc::new(Sealer::with_cipher(
                &established.send_key,
                established.send_session,
                cipher,
            )),
            switch_key: (aegis != cipher).then(|| established.send_key.clone()),
            recv_session: established.recv_session,
            made: now,
            is_initiator: established.is_initiator,
            heard: established.is_initiator,
            completes_checksums: false,
            crossed,
        };
        if confirm_first {
            // An unconfirmed renewal that a newer one replaces is kept among the earlier ones:
            // the initiator may complete any (initiations in flight to several of our
            // addresses cross on the way). Past MAX_UNCONFIRMED one goes: the oldest once no
            // initiator can still be completing it, else the newest of the earlier ones, not
            // the oldest, which is the answer most likely to reach an initiator first (a
            // restarted peer probing us at many addresses completes that one). Replays of
            // recorded initiations then only push out each other.
            if let Some(stale) = state.next.replace(send) {
                let full = state.earlier.len() + 1 >= MAX_UNCONFIRMED;
                let oldest_done = state
                    .earlier
                    .first()
                    .is_some_and(|oldest| now >= oldest.made + HANDSHAKE_TIMEOUT * 2);
                let dropped = match (full, oldest_done) {
                    (false, _) => None,
                    (true, true) => Some(state.earlier.remove(0)),
                    (true, false) => state.earlier.pop(),
                };
                if let Some(dropped) = dropped {
                    dropped.sealer.retire();
                    self.by_session.remove(&dropped.recv_session);
                }
                state.earlier.push(stale);
            }
        } else {
            if let Some(current) = state.current.take() {
                // The lanes that still hold the old one seal in the new one at once.
                current.sealer.forward_to(Arc::clone(&send.sealer));
                state.previous = Some((current.recv_session, current.made));
            }
            state.current = Some(send);
            // A renewal of the peer's we answered meanwhile (both started one at once): the
            // peer may seal in it, so its receiving half stays until it expires.
            state.next = None;
            state.earlier.clear();
        }
        state.addr = Some(addr);
        let mut opener = Opener::new(&established.recv_key, 1);
        opener.refuse_session(established.send_session);
        opener.allow_switch_to_aegis();
        self.by_session.insert(
            established.recv_session,
            RecvSession {
                opener,
                remote: key,
                made: now,
                last_from: None,
                heard_at: None,
            },
        );
        self.bind(addr, key);
        self.changes = self.changes.wrapping_add(1);
        self.wanted.retain(|a| *a != addr);
        self.stats.sessions_made += 1;
        if renewed {
            self.stats.rekeys += 1;
            debug!("session with {key} at {addr} renewed");
        } else {
            let name = self.trusted.name(&key).unwrap_or("");
            match self.log_budget.allow(now, LOG_BUDGET, LOG_WINDOW) {
                Some(0) => info!("session with {key} ({name}) at {addr} made"),
                Some(left_out) => {
                    info!(
                        "{left_out} more sessions made were logged at debug only (at most \
                         {LOG_BUDGET} a minute at info; -v shows them all)"
                    );
                    info!("session with {key} ({name}) at {addr} made");
                }
                None => debug!("session with {key} ({name}) at {addr} made"),
            }
        }
        !confirm_first
    }

    /// A fresh handshake index: drawn under a secret key, so that the indices a node sees
    /// (those of the handshakes with it) tell nothing of the others, and a response forged
    /// off the path cannot name a handshake in flight.
    fn next_index(&mut self) -> u32 {
        loop {
            self.index_count = self.index_count.wrapping_add(1);
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(&self.index_key);
            ctx.update(&self.index_count.to_le_bytes());
            let digest = ctx.finish();
            let mut first = [0u8; 4];
            first.copy_from_slice(&digest.as_ref()[..4]);
            let index = u32::from_le_bytes(first);
            if !self.pending.contains_key(&index) {
                return index;
            }
        }
    }

    fn timestamp(&mut self, now: Instant) -> [u8; handshake::TIMESTAMP_LEN] {
        let since = now.saturating_duration_since(self.config.started);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        let at = self
            .config
            .wall_start_nanos
            .saturating_add(nanos)
            .max(self.last_initiation.saturating_add(1));
        self.last_initiation = at;
        handshake::timestamp(at)
    }

    /// Starts the handshake rounds queued by [`Sessions::seal`] and [`Sessions::want`], and the
    /// renewals that are due; `send` sends one datagram.
    pub fn flush(&mut self, now: Instant, send: &mut dyn FnMut(SocketAddr, &[u8])) {
        let wanted = core::mem::take(&mut self.wanted);
        for addr in wanted.iter() {
            self.round(now, *addr, send);
        }
        self.wanted = wanted;
        self.wanted.clear();
    }

    /// One round of initiations to `addr`: to the key that uses it if there is one
    /// ([`Sessions::user_of`]), else to every trusted key without a live session (at most
    /// [`MAX_PROBES`]). A key merely bound there, whose session ended, is probed with the
    /// others: the node may be back at that address with another trusted key, which would
    /// otherwise never be asked.
    fn round(&mut self, now: Instant, addr: SocketAddr, send: &mut dyn FnMut(SocketAddr, &[u8])) {
        if self.had_round(now, addr) {
            return;
        }
        let cursor = self.rounds.get(&addr).map_or(0, |(_, cursor)| *cursor);
        let known = self.user_of(addr, now);
        let mut next_cursor = cursor;
        match known {
            Some(key) => {
                // (Several handshakes with one key may be in flight, to several addresses or
                // with a renewal: the responder keeps each unconfirmed one it answered, up to
                // MAX_UNCONFIRMED, and confirms the one we complete.)
                let _ = self.initiate(now, addr, key, false, send);
            }
            None => {
                let n = self.probe_order.len();
                let mut sent = 0;
                // The keys with a handshake in flight to this address, gathered once (not one
                // walk of up to MAX_PENDING handshakes per trusted key).
                // Only those sent within HANDSHAKE_RETRY: one that went unanswered longer (a
                // first initiation lost, or sent before the other node's socket was up) is
                // tried again with this round, as a known key's is, not only once it is
                // forgotten at HANDSHAKE_TIMEOUT and a contact after that asks again.
                let in_flight_here: std::collections::HashSet<PublicKey> = self
                    .pending
                    .values()
                    .filter(|p| p.addr == addr && p.in_flight(now))
                    .map(|p| p.initiator.remote)
                    .collect();
                for i in 0..n {
                    if sent >= MAX_PROBES {
                        break;
                    }
                    let at = (cursor + i) % n;
                    let Some(key) = self.probe_order.get(at).copied() else {
                        break;
                    };
                    next_cursor = at + 1;
                    // (Not a session nothing has opened in yet: one answered to a replayed
                    // initiation, bound to a forged address, would keep the key from being
                    // probed at its real one until it ended. Nor one that fell silent and
                    // whose renewal at its own address, tried since, went unanswered: the
                    // node may have moved here. A node merely quiet, or reachable at a second
                    // address too, answers that renewal and keeps one session.)
                    let live = self.keys.get(&key).is_some_and(|s| {
                        s.current.as_ref().is_some_and(|c| {
                            let quiet = quiet_since(s, c, &self.by_session);
                            let silence = for_role(c, self.config.renew_after_silence);
                            let abandoned = now >= quiet + silence + HANDSHAKE_RETRY
                                && s.last_rekey.is_some_and(|t| t >= quiet && c.made < t);
                            c.heard
                                && now < c.made + self.config.rekey_after + REJECT_SLACK
                                && !abandoned
                        })
                    });
                    if live || in_flight_here.contains(&key) {
                        continue;
                    }
                    if self.probes.available(now, MAX_PROBES_PER_SECOND) == 0 {
                        // Over the budget: the next round to this address goes on from here.
                        next_cursor = at;
                        self.stats.probes_deferred += 1;
                        break;
                    }
                    // (A token only for an initiation that went: not for one with no room, or
                    // one that could not be made.)
                    match self.initiate(now, addr, key, true, send) {
                        Initiated::Sent => {
                            self.probes.take(1);
                            sent += 1;
                        }
                        Initiated::NoRoom => {
                            // No room in flight: the next round goes on from this key.
                            next_cursor = at;
                            break;
                        }
                        // No message can be made for this key (a low-order point, which the
                        // trust file's reader refuses anyway): the others still get theirs.
                        Initiated::Failed => {}
                    }
                }
            }
        }
        if self.rounds.len() >= MAX_WANTED * 4 {
            self.rounds.retain(|_, (at, _)| now < *at + HANDSHAKE_RETRY);
        }
        self.rounds.insert(addr, (now, next_cursor));
    }

    /// Sends an initiation to `key` at `addr` and keeps it in flight; returns whether it went
    /// (not: a probe with no room but a known key's, or a message that could not be made).
    fn initiate(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        key: PublicKey,
        probe: bool,
        send: &mut dyn FnMut(SocketAddr, &[u8]),
    ) -> Initiated {
        if self.pending.len() >= MAX_PENDING {
            // Forget the oldest probe in flight, or if there is none the oldest handshake: a
            // flood of probes (peer lists naming many addresses) cannot push out renewals.
            let oldest = self
                .pending
                .iter()
                // (Ties, as among one round's probes, by index, not by the map's order.)
                .min_by_key(|(i, p)| (!p.probe, p.sent, **i))
                .map(|(i, p)| (*i, p.probe));
            match oldest {
                Some((index, oldest_is_probe)) if oldest_is_probe || !probe => {
                    self.pending.remove(&index);
                }
                // A probe never makes room by pushing out a handshake with a known key.
                Some(_) => {
                    self.stats.probes_deferred += 1;
                    return Initiated::NoRoom;
                }
                None => {}
            }
        }
        let index = self.next_index();
        let timestamp = self.timestamp(now);
        let scratch = &mut self.scratch[..];
        let mut ephemeral = self.random.draw();
        let initiated = handshake::initiate(
            &self.identity,
            self.token,
            &key,
            index,
            timestamp,
            &ephemeral,
            scratch,
        );
        wipe(&mut ephemeral);
        match initiated {
            Ok((initiator, len)) => {
                let mut message = [0u8; INITIATION_LEN];
                if let Some(bytes) = scratch.get(..INITIATION_LEN) {
                    message.copy_from_slice(bytes);
                }
                // mac2 for a responder that sent us a cookie lately (and so is a version that
                // reads it); to any other, the initiation as it always was.
                let fresh = self
                    .cookies
                    .get(&addr)
                    .filter(|(_, at)| now < *at + COOKIE_LIFETIME);
                let (len, mac2_cookie) =
                    match (fresh, scratch.get_mut(len..INITIATION_WITH_MAC2_LEN)) {
                        (Some((got, at)), Some(tail)) => {
                            tail.copy_from_slice(&cookie::mac2(got, &message));
                            (INITIATION_WITH_MAC2_LEN, Some(*at))
                        }
                        _ => (len, None),
                    };
                if let Some(bytes) = scratch.get(..len) {
                    send(addr, bytes);
                }
                self.stats.initiations_sent += 1;
                self.pending.insert(
                    index,
                    Pending {
                        initiator,
                        addr,
                        sent: now,
                        message,
                        retried: false,
                        probe,
                        mac2_cookie,
                    },
                );
                Initiated::Sent
            }
            Err(e) => {
                debug!("cannot start a handshake with {key} at {addr}: {e}");
                Initiated::Failed
            }
        }
    }

    /// Timers: renewals due, handshakes timed out, sessions expired. `send` sends one datagram.
    pub fn housekeep(&mut self, now: Instant, send: &mut dyn FnMut(SocketAddr, &[u8])) {
        // An initiation with mac2 that nobody answered: its cookie goes, and the next one to
        // that address is the plain 136 bytes again. (A forged reply, or a node of an earlier
        // version now at that address, cannot keep us sending what goes unread.)
        // (Only the cookie it carried: not one that came later and did its work.)
        let cookies = &mut self.cookies;
        self.pending.retain(|_, p| {
            let live = now < p.sent + HANDSHAKE_TIMEOUT;
            if let (false, Some(used)) = (live, p.mac2_cookie) {
                if cookies.get(&p.addr).is_some_and(|(_, at)| *at == used) {
                    cookies.remove(&p.addr);
                }
            }
            live
        });
        self.cookies
            .retain(|_, (_, at)| now < *at + COOKIE_LIFETIME);
        let rekey_after = self.config.rekey_after;
        let reject = rekey_after + REJECT_SLACK + RECEIVE_GRACE;
        self.by_session.retain(|_, s| now < s.made + reject);
        let mut due = Vec::new();
        let mut ended = false;
        let silence = self.config.renew_after_silence;
        let by_session = &self.by_session;
        for (key, state) in self.keys.iter_mut() {
            if let Some((_, made)) = state.previous {
                if now >= made + reject {
                    state.previous = None;
                }
            }
            // (Their receiving halves went with `by_session` above.)
            if state.next.as_ref().is_some_and(|n| now >= n.made + reject) {
                state.next = None;
            }
            state.earlier.retain(|n| now < n.made + reject);
            if state
                .current
                .as_ref()
                .is_some_and(|c| now >= c.made + reject)
            {
                // Not renewed in time (the peer is gone, or unreachable): the session ends,
                // its keys are forgotten, and no more renewals are tried on the timer. A
                // handshake starts again only when something is to be sent there.
                if let Some(current) = state.current.take() {
                    current.sealer.retire();
                }
                ended = true;
                debug!("session with {key} ended: not renewed");
            }
            let Some(current) = &state.current else {
                continue;
            };
            let after = for_role(current, rekey_after);
            // A session we answered that nothing has opened in since (the initiator's Hello
            // comes right after the handshake) may have been made by a replayed initiation
            // (after a restart, no newer timestamp is known), which nobody completes: the
            // peer cannot open what we seal in it. Renewed at once, as by the timer; once per
            // session (towards a forged source, one initiation per replay, not one every
            // 5 s), later tries being the timer's.
            let unheard = !current.heard
                && now >= current.made + HANDSHAKE_RETRY
                && state.last_rekey.is_none_or(|t| t < current.made);
            // Nothing from the peer opened for a keep-alive interval and more (in this session
            // or the ones around it): it restarted, or moved, and cannot open what we seal;
            // or it is gone. Renewed then, once per such interval (a peer gone costs one
            // initiation a minute until the session ends), not only on the timer; by the
            // session's responder [`RESPONDER_REKEY_DELAY`] later, as on the timer, so that
            // the two ends of a path that was cut do not both start one.
            let quiet_since = quiet_since(state, current, by_session);
            let silence = for_role(current, silence);
            let silent =
                now >= quiet_since + silence && state.last_rekey.is_none_or(|t| now >= t + silence);
            let old = unheard
                || silent
                || now >= current.made + after
                || current.sealer.sealed() >= self.config.rekey_after_messages;
            let recently = state.last_rekey.is_some_and(|t| now < t + HANDSHAKE_RETRY);
            if let (true, false, Some(addr)) = (old, recently, state.addr) {
                state.last_rekey = Some(now);
                due.push((addr, *key));
            }
        }
        if ended {
            self.changes = self.changes.wrapping_add(1);
        }
        // The keys with a handshake in flight to the same address, gathered once (not one walk
        // of the handshakes in flight per due key). (One to another address, a probe of that
        // key there, does not renew this session: skipping for it spent the one renewal of an
        // unheard session.)
        let in_flight: std::collections::HashSet<(PublicKey, SocketAddr)> = if due.is_empty() {
            std::collections::HashSet::new()
        } else {
            // (As in `round`, only those `Pending::in_flight`: an older one, a probe lost before
            // the peer's socket was up, must not spend the one renewal of the session the peer
            // made with us since.)
            self.pending
                .values()
                .filter(|p| p.in_flight(now))
                .map(|p| (p.initiator.remote, p.addr))
                .collect()
        };
        for (addr, key) in due {
            if !in_flight.contains(&(key, addr)) {
                debug!("renewing the session with {key} at {addr}");
                let _ = self.initiate(now, addr, key, false, send);
            }
        }
        self.flush(now, send);
    }
}

/// How long before `current` is renewed, on the timer or after a silence: `wait` for its
/// initiator, [`RESPONDER_REKEY_DELAY`] more for its responder (should the initiator not do
/// it).
fn for_role(current: &SendSession, wait: core::time::Duration) -> core::time::Duration {
    if current.is_initiator {
        wait
    } else {
        wait + RESPONDER_REKEY_DELAY
    }
}

/// When the peer behind `current`, the session `state` holds with a key, was last heard: the
/// latest packet that opened in this session or the ones around it (before, the one that
/// crossed it, and renewals we answered), or when the session was made if that is later.
fn quiet_since(
    state: &KeyState,
    current: &SendSession,
    by_session: &FastMap<[u8; crate::crypto::SESSION_LEN], RecvSession>,
) -> Instant {
    [
        Some(current.recv_session),
        current.crossed,
        state.previous.map(|(id, _)| id),
    ]
    .into_iter()
    .flatten()
    .chain(state.next.iter().map(|n| n.recv_session))
    .chain(state.earlier.iter().map(|n| n.recv_session))
    .filter_map(|id| by_session.get(&id).and_then(|s| s.heard_at))
    .fold(current.made, Instant::max)
}

/// Whether the per-source bucket of `from` in `sources` (its [`Host`]: an IPv6 source counts
/// as its /64, but a link-local one as itself) allows one more initiation at `per_source` a
/// second; `sources` holds at most
/// [`MAX_SOURCES`] buckets.
fn source_allows(
    sources: &mut HashMap<Host, RateLimiter>,
    now: Instant,
    from: SocketAddr,
    per_source: u64,
) -> bool {
    bucket_allows(sources, Host::of(from), now, per_source)
}

/// Whether `key`'s bucket in `buckets` allows one more initiation at `rate` a second;
/// `buckets` holds at most [`MAX_SOURCES`].
fn bucket_allows<K: core::hash::Hash + Eq>(
    buckets: &mut HashMap<K, RateLimiter>,
    key: K,
    now: Instant,
    rate: u64,
) -> bool {
    if buckets.len() >= MAX_SOURCES && !buckets.contains_key(&key) {
        // Full buckets are of sources quiet for as long as a bucket takes to fill (1/rate s
        // per initiation spent): forgetting them loses nothing.
        buckets.retain(|_, bucket| bucket.available(now, rate) < rate);
        if buckets.len() >= MAX_SOURCES / 2 {
            // Still half full (a flood from many sources): forgetting them all costs at most
            // one second's allowance per source, keeps the map bounded, and leaves room for
            // half the table of new sources before the next walk, so that a flood tuned to
            // keep buckets from filling cannot make every new source cost a walk.
            buckets.clear();
        }
    }
    buckets
        .entry(key)
        .or_insert_with(|| RateLimiter::new(now, rate))
        .allow(now, rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{handshake::Identity, IdentityConfig, SecretKey, TrustedKeys};
    use crate::identity::{HandshakeEvent, INITIATION_LEN};
    use crate::wire::Token;
    use std::time::Duration;

    #[test]
    fn initiations_in_the_same_instant_carry_later_and_later_timestamps() {
        let mut sessions = Sessions::new(
            Identity::new(SecretKey::from_random([7; 32])),
            Token::MAX,
            TrustedKeys::new(),
            IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, 1),
            Instant::ZERO,
        );
        let now = Instant::from_secs(5);
        let first = sessions.timestamp(now);
        let second = sessions.timestamp(now);
        assert!(
            second > first,
            "a second initiation would be taken for a replay"
        );
        assert!(sessions.timestamp(now + Duration::from_secs(1)) > second);
    }

    #[test]
    fn timestamps_follow_the_wall_clock_when_it_is_set_later_and_never_go_back() {
        // Started with the clock a day behind.
        let day = 86_400_000_000_000u64;
        let wall = 1_700_000_000_000_000_000u64;
        let mut sessions = Sessions::new(
            Identity::new(SecretKey::from_random([7; 32])),
            Token::MAX,
            TrustedKeys::new(),
            IdentityConfig::new(Instant::ZERO, wall - day, 1),
            Instant::ZERO,
        );
        let before = sessions.timestamp(Instant::from_secs(10));
        assert!(before < handshake::timestamp(wall));
        // NTP sets the clock; the daemon tells the sessions.
        sessions.set_wall_clock(Instant::from_secs(20), wall);
        let after = sessions.timestamp(Instant::from_secs(21));
        assert!(after > handshake::timestamp(wall));
        // And back a day (a bad clock): never earlier than the last one.
        sessions.set_wall_clock(Instant::from_secs(30), wall - day);
        assert!(sessions.timestamp(Instant::from_secs(31)) > after);
    }

    /// A node of key `[me; 32]` trusting the key `[other; 32]`, answering `per_second`
    /// initiations a second from the addresses trusted keys use, and from all others.
    fn node(me: u8, other: u8, per_second: u64) -> Sessions {
        let mut cfg = IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, 9);
        cfg.handshakes_per_second = per_second;
        cfg.handshakes_per_source = per_second;
        let mut trusted = TrustedKeys::new();
        trusted.insert(SecretKey::from_random([other; 32]).public_key(), "");
        Sessions::new(
            Identity::new(SecretKey::from_random([me; 32])),
            Token::MAX,
            trusted,
            cfg,
            Instant::ZERO,
        )
    }

    /// A node back at a known address with another trusted key (the hub restarted with a new
    /// key, the old one still trusted for a while): once the old key's session has ended, a
    /// round to that address asks every trusted key there, not only the old one, which would
    /// never answer again.
    #[test]
    fn a_round_to_an_address_whose_key_s_session_ended_probes_the_other_keys_too() {
        let at_hub: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let mut old_hub = node(1, 2, 20);
        let mut b = node(2, 1, 20);
        b.set_trusted({
            let mut t = TrustedKeys::new();
            t.insert(SecretKey::from_random([1; 32]).public_key(), "");
            t.insert(SecretKey::from_random([3; 32]).public_key(), "");
            t
        });
        let now = Instant::from_secs(1);
        handshake(&mut old_hub, &mut b, (at_hub, at_b), now);
        assert!(carries(&mut old_hub, &mut b, (at_hub, at_b), now));
        assert!(carries(&mut b, &mut old_hub, (at_b, at_hub), now));
        // The hub is back with key 3 and says nothing; key 1's session ends at b.
        let end = b.config().rekey_after + REJECT_SLACK + RECEIVE_GRACE;
        let later = now + end + Duration::from_secs(1);
        b.housekeep(later, &mut |_, _| {});
        let mut new_hub = node(3, 2, 20);
        let mut out = [0u8; 256];
        let answered = round_to(&mut b, later, at_hub)
            .iter()
            .filter(|init| {
                matches!(
                    new_hub.on_handshake(later, at_b, init, &mut out),
                    HandshakeEvent::Answered(..)
                )
            })
            .count();
        assert_eq!(answered, 1, "the key now at the address was not asked");
    }

    /// A session with a key falls silent (nothing of its peer opened for the silence
    /// interval): a round to another address (the same node's second address, or a node that
    /// moved) still does not probe that key there until the renewal tried at the session's own
    /// address went unanswered. A node merely quiet, or reachable at two addresses, answers
    /// that renewal and keeps one session; one that moved does not, and is probed.
    #[test]
    fn a_silent_session_is_probed_elsewhere_only_once_its_renewal_went_unanswered() {
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let at_b6: SocketAddr = "[fd00::2]:3210".parse().unwrap();
        let mut a = node(1, 2, 20);
        let mut b = node(2, 1, 20);
        let now = Instant::from_secs(1);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        assert!(carries(&mut b, &mut a, (at_b, at_a), now));
        let silence = a.config().renew_after_silence;
        let silent = now + silence + Duration::from_secs(1);
        assert!(
            round_to(&mut a, silent, at_b6).is_empty(),
            "silent, but no renewal tried yet: still live"
        );
        let mut renewal = Vec::new();
        a.housekeep(silent, &mut |to, bytes| renewal.push((to, bytes.to_vec())));
        assert_eq!(renewal.len(), 1, "the silent session is renewed");
        assert_eq!(renewal[0].0, at_b);
        let unanswered = silent + HANDSHAKE_RETRY + Duration::from_secs(1);
        assert_eq!(
            round_to(&mut a, unanswered, at_b6).len(),
            1,
            "the renewal went unanswered: the key is probed at the other address"
        );
        // Answered instead (b quiet but there): live, nothing probed elsewhere.
        let mut a = node(1, 2, 20);
        let mut b = node(2, 1, 20);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        assert!(carries(&mut b, &mut a, (at_b, at_a), now));
        let mut renewal = Vec::new();
        a.housekeep(silent, &mut |to, bytes| renewal.push((to, bytes.to_vec())));
        complete(&mut a, &mut b, (at_a, at_b), silent, &renewal[0].1);
        assert!(round_to(&mut a, unanswered, at_b6).is_empty());
    }

    #[test]
    fn an_address_whose_binding_a_full_table_dropped_is_bound_again_by_its_next_datagram() {
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let now = Instant::from_secs(1);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        assert!(carries(&mut a, &mut b, (at_a, at_b), now));
        // a's key has moved on to another address (its datagrams of another session come
        // from there), and the binding table fills: the walk keeps only the addresses the
        // keys use now, so at_a goes.
        let key_a = SecretKey::from_random([1; 32]).public_key();
        let elsewhere: SocketAddr = "198.18.0.9:3210".parse().unwrap();
        if let Some(state) = b.keys.get_mut(&key_a) {
            state.addr = Some(elsewhere);
        }
        let filler = SecretKey::from_random([7; 32]).public_key();
        for i in 0..crate::identity::session::MAX_BINDINGS {
            let port = u16::try_from(i % 60_000).unwrap();
            let ip = [198, 19, u8::try_from(i / 60_000).unwrap(), 1];
            b.bind(SocketAddr::from((ip, port)), filler);
        }
        assert!(!b.by_addr.contains_key(&at_a));
        // a's next datagram from at_a binds it again, so b can send there.
        assert!(carries(&mut a, &mut b, (at_a, at_b), now));
        assert_eq!(b.by_addr.get(&at_a), Some(&key_a));
    }

    #[test]
    fn after_a_crossed_first_contact_a_renewal_still_opens_what_the_peer_seals_meanwhile() {
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let now = Instant::from_secs(1);
        // Both start at once: each answers the other's initiation, then completes its own.
        cross(&mut a, &mut b, (at_a, at_b), now, now, true);
        assert!(carries(&mut a, &mut b, (at_a, at_b), now));
        assert!(carries(&mut b, &mut a, (at_b, at_a), now));
        // a renews; b answers and keeps sealing in its session until a's Hello in the new
        // one arrives. Meanwhile a must still open what b seals.
        let later = now + a.config.rekey_after + Duration::from_secs(1);
        let mut renewal = Vec::new();
        a.housekeep(later, &mut |_, bytes| renewal.push(bytes.to_vec()));
        assert_eq!(renewal.len(), 1, "a did not renew");
        assert!(
            !complete(&mut a, &mut b, (at_a, at_b), later, &renewal[0]),
            "b did not answer the renewal as a renewal"
        );
        assert!(
            carries(&mut b, &mut a, (at_b, at_a), later),
            "a dropped the session b still seals in"
        );
    }

    /// Both start a handshake at once, and each seals in the one it started: each side's
    /// Hello that it opens AEGIS-128L comes in the other's session, not in the receiving half
    /// of its own current one. It still switches both (their renewals, on the same timers,
    /// would cross again and again: under ETHCLOUD_SIM_SEED=19, tests/identity.rs's lost-Hello
    /// test had a pair stay on AES-128-GCM for good).
    #[test]
    fn after_crossed_handshakes_each_side_s_hello_switches_the_other_to_aegis() {
        if Cipher::preferred_for_sessions(true) != Cipher::Aegis128L {
            return; // no AES instructions here: no switch to make
        }
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let now = Instant::from_secs(1);
        let later = now + Duration::from_millis(300);
        cross(&mut a, &mut b, (at_a, at_b), now, later, true);
        // b's Hello, sealed in b's session, opens at a: a switches the session it seals in.
        assert!(carries(&mut b, &mut a, (at_b, at_a), later));
        assert_eq!(a.peer_opens_aegis(false), Some(Cipher::Aegis128L));
        assert!(carries(&mut a, &mut b, (at_a, at_b), later));
        assert_eq!(b.peer_opens_aegis(false), Some(Cipher::Aegis128L));
        // And what each seals in AEGIS-128L now opens at the other.
        for _ in 0..3 {
            assert!(carries(&mut a, &mut b, (at_a, at_b), later));
            assert!(carries(&mut b, &mut a, (at_b, at_a), later));
        }
        // A renewal 3 s after a session (not crossed: f answered it and goes on sealing in
        // the first until e's first datagram in the new one) does not make f's Hello in the
        // first one speak for it, however close in time.
        let (mut e, mut f, at_e, at_f) = cookie_pair(20);
        handshake(&mut e, &mut f, (at_e, at_f), now);
        let soon = now + Duration::from_secs(3);
        let mut init = Vec::new();
        let _ = e.initiate(soon, at_f, f.public(), false, &mut |_, m| {
            init.push(m.to_vec())
        });
        complete(&mut e, &mut f, (at_e, at_f), soon, &init[0]);
        assert!(carries(&mut f, &mut e, (at_f, at_e), soon));
        assert_eq!(
            e.peer_opens_aegis(false),
            None,
            "a Hello in a session not crossed"
        );
        // Nor does a session c answered long before its own renewal completes (the one it
        // answered is its current one, as after a first contact, but not within
        // HANDSHAKE_TIMEOUT).
        let (mut c, mut d, at_c, at_d) = cookie_pair(20);
        handshake(&mut d, &mut c, (at_d, at_c), now);
        let renewed = now + c.config.rekey_after + Duration::from_secs(1);
        handshake(&mut c, &mut d, (at_c, at_d), renewed);
        // (d still seals in the first session until c's first datagram in the new one.)
        assert!(carries(&mut d, &mut c, (at_d, at_c), renewed));
        assert_eq!(
            c.peer_opens_aegis(false),
            None,
            "a Hello in the previous session"
        );
    }

    /// A session, then renewals that cross: both ends start one at once (their timers run
    /// alike), each answers the other's before its own completes, and each seals in the one
    /// it started. Each side's Hello, in its own, still switches the other to AEGIS-128L; and
    /// what the peer seals in its own keeps ours from looking silent (which renewed it early,
    /// crossing again).
    #[test]
    fn crossed_renewals_move_to_aegis_and_do_not_look_silent() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(20);
        let now = Instant::from_secs(1);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        let t = now + Duration::from_secs(30);
        cross(&mut a, &mut b, (at_a, at_b), t, t, false);
        if Cipher::preferred_for_sessions(true) == Cipher::Aegis128L {
            assert!(carries(&mut b, &mut a, (at_b, at_a), t));
            assert_eq!(a.peer_opens_aegis(false), Some(Cipher::Aegis128L));
            assert!(carries(&mut a, &mut b, (at_a, at_b), t));
            assert_eq!(b.peer_opens_aegis(false), Some(Cipher::Aegis128L));
        }
        // b keeps sealing in its own; a hears it there, and does not renew for silence.
        let mut now = t;
        let end = t + a.config.renew_after_silence + Duration::from_secs(20);
        while now < end {
            now += Duration::from_secs(10);
            assert!(carries(&mut b, &mut a, (at_b, at_a), now));
            let mut sent = 0;
            a.housekeep(now, &mut |_, _| sent += 1);
            assert_eq!(
                sent,
                0,
                "a renewed {:?} after the crossing",
                now.saturating_duration_since(t)
            );
        }
    }

    /// a's first initiation to b (at `at_b`), answered by b; then b restarts (knowing no
    /// timestamp of a's) and someone replays that recording from `from`: b answers it as a
    /// first contact. Returns a, the restarted b, the time of the replay and the recording.
    fn replayed_after_restart(from: SocketAddr) -> (Sessions, Sessions, Instant, Vec<u8>) {
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let mut out = [0u8; 256];
        let now = Instant::from_secs(1);
        let recorded = round_to(&mut a, now, at_b).remove(0);
        let HandshakeEvent::Answered(..) = b.on_handshake(now, at_a, &recorded, &mut out) else {
            panic!("no answer");
        };
        let later = now + Duration::from_secs(30);
        let mut b = node(2, 1, 20);
        let HandshakeEvent::Answered(_, true) = b.on_handshake(later, from, &recorded, &mut out)
        else {
            panic!("the replay was not taken as a first contact");
        };
        (a, b, later, recorded)
    }

    #[test]
    fn a_session_made_by_a_replayed_initiation_after_a_restart_is_replaced_by_our_own() {
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let mut out = [0u8; 256];
        // b restarts, knowing no timestamp of a's: someone replays a's recorded initiation
        // from a's address. b answers (nobody will complete it), and would seal to a in it.
        let (mut a, mut b, later, recorded) = replayed_after_restart(at_a);
        let mut sent = Vec::new();
        b.housekeep(later + Duration::from_secs(1), &mut |to, bytes| {
            sent.push((to, bytes.to_vec()));
        });
        assert!(
            sent.is_empty(),
            "a just-made session is not doubted at once"
        );
        // Nothing of a's opens in it: a few seconds on, b renews it with a handshake of its
        // own (whether or not it has anything to send).
        let doubted = later + HANDSHAKE_RETRY;
        b.housekeep(doubted, &mut |to, bytes| sent.push((to, bytes.to_vec())));
        assert_eq!(sent.len(), 1, "b never started a handshake of its own");
        assert_eq!(sent[0].0, at_a);
        assert_eq!(sent[0].1.len(), INITIATION_LEN);
        // a answers; b completes, and the two ends hold one session again.
        complete(&mut b, &mut a, (at_b, at_a), doubted, &sent[0].1);
        assert!(carries(&mut b, &mut a, (at_b, at_a), doubted));

        // Once per such session: a replay whose source never answers (forged) draws one
        // initiation there, not one every 5 s until the session ends.
        let mut c = node(2, 1, 20);
        let HandshakeEvent::Answered(_, true) = c.on_handshake(later, at_a, &recorded, &mut out)
        else {
            panic!("the replay was not taken as a first contact");
        };
        let mut tries = 0;
        for s in 1..60u64 {
            c.housekeep(later + Duration::from_secs(s), &mut |_, _| tries += 1);
        }
        assert_eq!(tries, 1, "initiations to the replay's source in a minute");
    }

    /// After a restart, a recorded initiation of a's replayed from a forged address makes an
    /// unheard session bound there; when b then wants a at its real address, it probes there
    /// at once (it skipped a's key as "live" until that session ended, up to 3 minutes, and
    /// a, whose old session still sealed, did not start one either).
    #[test]
    fn a_replay_bound_to_a_forged_address_does_not_keep_a_key_from_being_probed() {
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let at_z: SocketAddr = "198.18.9.9:3210".parse().unwrap();
        let (mut a, mut b, later, _) = replayed_after_restart(at_z);
        let sent = round_to(&mut b, later, at_a);
        assert_eq!(sent.len(), 1, "no probe to a's real address");
        assert_eq!(sent[0].len(), INITIATION_LEN);
        complete(&mut b, &mut a, (at_b, at_a), later, &sent[0]);
        assert!(carries(&mut b, &mut a, (at_b, at_a), later));
    }

    /// The one renewal of an unheard session goes out even while that key is being probed at
    /// another address (it was skipped for any handshake in flight with the key, and that
    /// spent it: the pair stayed cut off until a timer's renewal, minutes later).
    #[test]
    fn an_unheard_session_is_renewed_while_its_key_is_probed_elsewhere() {
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_x: SocketAddr = "198.18.0.9:3210".parse().unwrap();
        let (_, mut b, later, _) = replayed_after_restart(at_a);
        // b wants an address it knows no key of: a's key is probed there.
        let probes = round_to(&mut b, later + Duration::from_secs(1), at_x);
        assert_eq!(probes.len(), 1);
        assert_renews(&mut b, later + HANDSHAKE_RETRY, at_a);
    }

    /// Asserts that `b`'s housekeeping at `now` sends an initiation to `at`: its unheard
    /// session there is renewed.
    fn assert_renews(b: &mut Sessions, now: Instant, at: SocketAddr) {
        let mut sent = Vec::new();
        b.housekeep(now, &mut |to, bytes| sent.push((to, bytes.len())));
        assert!(
            sent.contains(&(at, INITIATION_LEN)),
            "the unheard session was not renewed: {sent:?}"
        );
    }

    /// b's probe to a's address is lost (a's socket was not up yet); a then initiates, and b
    /// answers, but that answer is lost too: b's session with a is unheard, and its one
    /// renewal, 5 s on, goes out although b's lost probe to the same key and address is still
    /// in flight (it spent the renewal, and the pair waited for a timer's, minutes later).
    #[test]
    fn an_unheard_session_is_renewed_while_an_older_probe_to_its_address_is_pending() {
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let t0 = Instant::from_secs(1);
        assert_eq!(round_to(&mut b, t0, at_a).len(), 1, "b's probe (lost)");
        let made = t0 + Duration::from_secs(1);
        let init = round_to(&mut a, made, at_b);
        let mut out = [0u8; 256];
        assert!(matches!(
            b.on_handshake(made, at_a, &init[0], &mut out),
            HandshakeEvent::Answered(..)
        ));
        // (The answer is lost.)
        assert_renews(&mut b, made + HANDSHAKE_RETRY, at_a);
    }

    /// IPv6 sources share a bucket per /64, except link-local ones, which every host on the
    /// link has in fe80::/64: each has its own.
    #[test]
    fn link_local_sources_each_have_their_own_bucket() {
        let mut sources = HashMap::new();
        let now = Instant::from_secs(1);
        let at = |text: &str| -> SocketAddr { text.parse().unwrap() };
        assert!(source_allows(&mut sources, now, at("[fd00::1]:1"), 1));
        assert!(
            !source_allows(&mut sources, now, at("[fd00::2]:1"), 1),
            "one /64, one bucket"
        );
        assert!(source_allows(&mut sources, now, at("[fe80::1]:1"), 1));
        assert!(source_allows(&mut sources, now, at("[fe80::2]:1"), 1));
        assert!(!source_allows(&mut sources, now, at("[fe80::2]:2"), 1));
    }

    #[test]
    fn a_bucket_table_that_a_walk_cannot_empty_is_cleared_so_walks_stay_rare() {
        // Every bucket used a moment ago (a flood tuned so that few are full again) but six,
        // quiet long enough to be full: the walk frees only those six, and would run again
        // after six more new sources. Cleared instead, the next MAX_SOURCES / 2 go in without
        // one.
        let mut buckets: HashMap<u32, RateLimiter> = HashMap::new();
        let (then, now) = (Instant::from_secs(1), Instant::from_secs(10));
        for i in 0..MAX_SOURCES as u32 {
            let at = if i < 6 { then } else { now };
            assert!(bucket_allows(&mut buckets, i, at, 20));
        }
        assert_eq!(buckets.len(), MAX_SOURCES);
        assert!(bucket_allows(&mut buckets, u32::MAX, now, 20));
        assert_eq!(buckets.len(), 1, "the table was not cleared");
    }

    #[test]
    fn a_member_bound_at_many_ports_draws_one_key_s_share_of_proven_initiations() {
        // b answers 500 proven initiations a second from members' addresses, at most 20 per
        // member. Member A has 30 source ports bound (one sealed datagram from each is
        // enough); C renews from its one address.
        let mut b = node(2, 1, 500);
        b.config.handshakes_per_source = 20;
        let key_a = SecretKey::from_random([1; 32]).public_key();
        let key_c = SecretKey::from_random([3; 32]).public_key();
        let now = Instant::from_secs(1);
        for port in 0..30u16 {
            b.bind(SocketAddr::from(([198, 18, 0, 1], 4000 + port)), key_a);
        }
        let at_c: SocketAddr = "198.18.0.3:3210".parse().unwrap();
        b.bind(at_c, key_c);
        let mut allowed = 0;
        for port in 0..30u16 {
            for _ in 0..20 {
                let from = SocketAddr::from(([198, 18, 0, 1], 4000 + port));
                allowed += usize::from(b.within_proven_rate(now, from));
            }
        }
        assert_eq!(allowed, 20, "A's ports share A's bucket");
        assert!(b.within_proven_rate(now, at_c), "A took C's share");
    }

    /// Two nodes that trust each other; b answers `per_second` initiations a second from the
    /// addresses trusted keys use, and from all others.
    fn cookie_pair(per_second: u64) -> (Sessions, Sessions, SocketAddr, SocketAddr) {
        let (a, b) = (node(1, 2, per_second), node(2, 1, per_second));
        let addrs = ["198.18.0.1:3210", "198.18.0.2:3210"].map(|s| s.parse().unwrap());
        (a, b, addrs[0], addrs[1])
    }

    /// `n` initiations that pass `to`'s mac1, from a key it does not trust, sent from `from`
    /// (a flood that spends `to`'s allowance).
    fn flood(to: &mut Sessions, now: Instant, from: SocketAddr, n: usize) {
        let stranger = Identity::new(SecretKey::from_random([77; 32]));
        let mut out = [0u8; 256];
        for i in 0..n {
            let (_, len) = handshake::initiate(
                &stranger,
                Token::MAX,
                &to.public(),
                7,
                handshake::timestamp(1 + i as u64),
                &[7; 32],
                &mut out,
            )
            .unwrap();
            let msg = out[..len].to_vec();
            to.on_handshake(now, from, &msg, &mut out);
        }
    }

    /// `a`'s initiation to `b`, sent once a flood from `a`'s address spent `b`'s allowance of
    /// `spent`, and the cookie reply `b` sends for it.
    fn over_the_limit(
        a: &mut Sessions,
        b: &mut Sessions,
        (at_a, at_b): (SocketAddr, SocketAddr),
        now: Instant,
        spent: usize,
    ) -> (Vec<Vec<u8>>, Vec<u8>) {
        let first = round_to(a, now, at_b);
        flood(b, now, at_a, spent);
        let mut out = [0u8; 256];
        let HandshakeEvent::CookieReply(len) = b.on_handshake(now, at_a, &first[0], &mut out)
        else {
            panic!("no cookie reply over the limit");
        };
        (first, out[..len].to_vec())
    }

    /// What `a` sends when it starts a handshake round with `to` at `now`.
    fn round_to(a: &mut Sessions, now: Instant, to: SocketAddr) -> Vec<Vec<u8>> {
        let mut sent = Vec::new();
        a.want(now, to);
        a.flush(now, &mut |addr, bytes| {
            assert_eq!(addr, to);
            sent.push(bytes.to_vec());
        });
        sent
    }

    /// Handshakes that cross: `a` and `b` each start one with the other at `start` (a first
    /// contact, through `want` and `flush`, or else a renewal), each answers the other's,
    /// and each completes its own at `done`.
    fn cross(
        a: &mut Sessions,
        b: &mut Sessions,
        (at_a, at_b): (SocketAddr, SocketAddr),
        start: Instant,
        done: Instant,
        first_contact: bool,
    ) {
        let (key_a, key_b) = (a.public(), b.public());
        let inits = [(&mut *a, at_b, key_b), (&mut *b, at_a, key_a)].map(|(from, to, key)| {
            if first_contact {
                return round_to(from, start, to);
            }
            let mut sent = Vec::new();
            let _ = from.initiate(start, to, key, false, &mut |_, m| sent.push(m.to_vec()));
            sent
        });
        let (to_a, _) = answer(b, start, at_a, &inits[0][0]);
        let (to_b, _) = answer(a, start, at_b, &inits[1][0]);
        let mut out = [0u8; 256];
        assert_eq!(
            a.on_handshake(done, at_b, &to_a, &mut out),
            HandshakeEvent::Completed
        );
        assert_eq!(
            b.on_handshake(done, at_a, &to_b, &mut out),
            HandshakeEvent::Completed
        );
    }

    /// A whole handshake at `now`: `a` starts a round to `b` at `at_b`, `b` answers it (from
    /// `at_a`), and `a` completes it.
    fn handshake(
        a: &mut Sessions,
        b: &mut Sessions,
        (at_a, at_b): (SocketAddr, SocketAddr),
        now: Instant,
    ) {
        let init = round_to(a, now, at_b);
        assert_eq!(init.len(), 1);
        complete(a, b, (at_a, at_b), now, &init[0]);
    }

    /// `responder` answers at `now` the initiation `init` that came from `from`: the response,
    /// and whether the session it made is its current one (see `HandshakeEvent::Answered`).
    #[track_caller]
    fn answer(
        responder: &mut Sessions,
        now: Instant,
        from: SocketAddr,
        init: &[u8],
    ) -> (Vec<u8>, bool) {
        let mut out = [0u8; 256];
        let HandshakeEvent::Answered(len, current) =
            responder.on_handshake(now, from, init, &mut out)
        else {
            panic!("an initiation was not answered");
        };
        (out[..len].to_vec(), current)
    }

    /// `initiator` (at `at_i`) completes at `now` its handshake `init` with `responder`'s (at
    /// `at_r`) answer; returns whether that answer made the responder's current session.
    #[track_caller]
    fn complete(
        initiator: &mut Sessions,
        responder: &mut Sessions,
        (at_i, at_r): (SocketAddr, SocketAddr),
        now: Instant,
        init: &[u8],
    ) -> bool {
        let (response, current) = answer(responder, now, at_i, init);
        let mut out = [0u8; 256];
        assert_eq!(
            initiator.on_handshake(now, at_r, &response, &mut out),
            HandshakeEvent::Completed
        );
        current
    }

    #[test]
    fn a_cookie_reply_brings_the_initiation_back_with_mac2_and_that_one_is_answered() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(2);
        let mut now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        // Before any reply, a node sends the initiation as it always was: 136 bytes.
        // b's allowance for it is spent by a flood from a's address.
        let (first, reply) = over_the_limit(&mut a, &mut b, (at_a, at_b), now, 2);
        assert!(!first.is_empty());
        assert!(first.iter().all(|m| m.len() == INITIATION_LEN));
        assert_eq!(first.len(), 1);
        // From elsewhere, the reply is not taken.
        let elsewhere: SocketAddr = "198.18.0.9:3210".parse().unwrap();
        assert_eq!(
            a.on_handshake(now, elsewhere, &reply, &mut out),
            HandshakeEvent::Dropped
        );
        assert_eq!(a.stats().cookies_unexpected, 1);
        let HandshakeEvent::Retried(len) = a.on_handshake(now, at_b, &reply, &mut out) else {
            panic!("the initiation was not sent again");
        };
        assert_eq!(len, INITIATION_WITH_MAC2_LEN);
        assert_eq!(
            &out[..INITIATION_LEN],
            &first[0][..],
            "the same initiation, mac2 added"
        );
        let again = out[..len].to_vec();
        // Once per initiation: a second reply to it brings nothing more.
        assert_eq!(
            a.on_handshake(now, at_b, &reply, &mut out),
            HandshakeEvent::Dropped
        );
        // The cookie is b's address's only: to another address, the plain initiation.
        let other: SocketAddr = "198.18.0.3:3210".parse().unwrap();
        let to_other = round_to(&mut a, now, other);
        assert!(!to_other.is_empty());
        assert!(to_other.iter().all(|m| m.len() == INITIATION_LEN));
        // b is still over its limit for unproven initiations, but this one is proven.
        assert!(matches!(
            b.on_handshake(now, at_a, &first[0], &mut out),
            HandshakeEvent::CookieReply(_)
        ));
        assert!(complete(&mut a, &mut b, (at_a, at_b), now, &again));
        assert_eq!(b.stats().initiations_proven, 1);
        // The cookie goes on the initiations to b for its lifetime.
        now += Duration::from_secs(20);
        a.housekeep(now, &mut |_, _| {});
        let later = round_to(&mut a, now, at_b);
        assert!(!later.is_empty());
        assert!(later.iter().all(|m| m.len() == INITIATION_WITH_MAC2_LEN));
        // (A round to b's address again, once the one in flight timed out.)
        now = Instant::from_secs(1) + COOKIE_LIFETIME;
        a.housekeep(now, &mut |_, _| {});
        let expired = round_to(&mut a, now, at_b);
        assert!(!expired.is_empty());
        assert!(expired.iter().all(|m| m.len() == INITIATION_LEN));
    }

    /// The cookies kept are at most [`MAX_PENDING`]: with the table full, a new one first
    /// pushes out those past their lifetime, and only if none is, the oldest.
    #[test]
    fn at_most_max_pending_cookies_are_kept_expired_ones_going_first_then_the_oldest() {
        let (mut a, ..) = cookie_pair(1);
        let from = |i: usize| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 3210));
        let t0 = Instant::from_secs(1);
        for i in 0..MAX_PENDING {
            let at = t0 + Duration::from_millis(i as u64);
            a.keep_cookie(at, from(i), [i as u8; cookie::COOKIE_LEN]);
        }
        assert_eq!(a.cookies.len(), MAX_PENDING);
        // Full, none expired: the oldest goes, and only it.
        let later = t0 + Duration::from_secs(1);
        a.keep_cookie(later, from(MAX_PENDING), [1; cookie::COOKIE_LEN]);
        assert_eq!(a.cookies.len(), MAX_PENDING);
        assert!(!a.cookies.contains_key(&from(0)));
        assert!(a.cookies.contains_key(&from(1)));
        // An address already held is replaced in place, pushing out nothing.
        a.keep_cookie(later, from(5), [2; cookie::COOKIE_LEN]);
        assert_eq!(a.cookies.len(), MAX_PENDING);
        assert!(a.cookies.contains_key(&from(1)));
        // Once the first ones are past their lifetime, all of those go at the next new one.
        let expired = t0 + COOKIE_LIFETIME + Duration::from_millis(100);
        a.keep_cookie(expired, from(MAX_PENDING + 1), [3; cookie::COOKIE_LEN]);
        // (Kept at t0 + 1..1023 ms: those up to t0 + 100 ms are past it; 5 was renewed.)
        assert_eq!(a.cookies.len(), MAX_PENDING - 99 + 1);
        assert!(a.cookies.contains_key(&from(5)) && a.cookies.contains_key(&from(101)));
        assert!(!a.cookies.contains_key(&from(100)));
    }

    /// The rounds remembered per address are pruned of those older than [`HANDSHAKE_RETRY`]
    /// once there are `MAX_WANTED * 4`, so the map does not keep every address ever asked.
    #[test]
    fn old_rounds_are_forgotten_once_there_are_max_wanted_times_four() {
        let (mut a, ..) = cookie_pair(1);
        let to = |i: usize| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 3210));
        let t0 = Instant::from_secs(1);
        let cap = MAX_WANTED * 4;
        for i in 0..cap {
            a.round(t0, to(i), &mut |_, _| {});
        }
        assert_eq!(a.rounds.len(), cap);
        // Within HANDSHAKE_RETRY of them all, nothing is old enough to go.
        a.round(t0 + Duration::from_secs(1), to(cap), &mut |_, _| {});
        assert_eq!(a.rounds.len(), cap + 1);
        // Past it, every one of them goes but the two newest.
        a.round(t0 + HANDSHAKE_RETRY, to(cap + 1), &mut |_, _| {});
        assert_eq!(a.rounds.len(), 2);
    }

    #[test]
    fn a_late_cookie_reply_gets_its_retry_a_whole_timeout_and_a_replay_refreshes_nothing() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(1);
        let start = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let (_, reply) = over_the_limit(&mut a, &mut b, (at_a, at_b), start, 1);
        // The reply comes 8 s after the initiation went.
        let late = start + Duration::from_secs(8);
        let HandshakeEvent::Retried(len) = a.on_handshake(late, at_b, &reply, &mut out) else {
            panic!("not sent again");
        };
        let again = out[..len].to_vec();
        // Replayed a second later: the cookie keeps the time it first came.
        let replayed = late + Duration::from_secs(1);
        assert_eq!(
            a.on_handshake(replayed, at_b, &reply, &mut out),
            HandshakeEvent::Dropped
        );
        assert_eq!(a.cookies.get(&at_b).map(|(_, at)| *at), Some(late));
        // 10 s after the first send, but not after the retry: the answer still completes.
        let answered = start + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        a.housekeep(answered, &mut |_, _| {});
        assert!(complete(&mut a, &mut b, (at_a, at_b), answered, &again));
    }

    #[test]
    fn a_proof_for_one_address_is_no_proof_for_another() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(1);
        let now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let (_, reply) = over_the_limit(&mut a, &mut b, (at_a, at_b), now, 1);
        let HandshakeEvent::Retried(len) = a.on_handshake(now, at_b, &reply, &mut out) else {
            panic!("not sent again");
        };
        let again = out[..len].to_vec();
        // The same bytes from another address (or port) prove nothing there: a cookie reply
        // again, no answer.
        let moved: SocketAddr = "198.18.0.1:3211".parse().unwrap();
        assert!(matches!(
            b.on_handshake(now, moved, &again, &mut out),
            HandshakeEvent::CookieReply(_)
        ));
        assert_eq!(b.stats().initiations_proven, 0);
        assert_eq!(b.stats().responses_sent, 0);
    }

    #[test]
    fn an_initiation_with_a_wrong_mac2_is_taken_as_one_without() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(1);
        let now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let first = round_to(&mut a, now, at_b);
        let mut wrong = first[0].clone();
        wrong.extend_from_slice(&[0x5a; 16]);
        // Within the limit: answered as the 136 bytes would be.
        assert!(matches!(
            b.on_handshake(now, at_a, &wrong, &mut out),
            HandshakeEvent::Answered(_, true)
        ));
        assert_eq!(b.stats().initiations_proven, 0);
        // Over it: a cookie reply, as for any initiation without a proof.
        flood(&mut b, now, at_a, 1);
        assert!(matches!(
            b.on_handshake(now, at_a, &wrong, &mut out),
            HandshakeEvent::CookieReply(_)
        ));
    }

    #[test]
    fn a_cookie_is_dropped_when_an_initiation_with_its_mac2_goes_unanswered() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(1);
        let now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let (_, reply) = over_the_limit(&mut a, &mut b, (at_a, at_b), now, 1);
        assert!(matches!(
            a.on_handshake(now, at_b, &reply, &mut out),
            HandshakeEvent::Retried(_)
        ));
        // The initiation with mac2 is lost (or unread: a node of an earlier version took the
        // address, or the reply was forged). Once it times out, a sends the plain one again.
        let later = now + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        a.housekeep(later, &mut |_, _| {});
        let again = round_to(&mut a, later, at_b);
        assert!(!again.is_empty());
        assert!(
            again.iter().all(|m| m.len() == INITIATION_LEN),
            "{:?}",
            again.iter().map(Vec::len).collect::<Vec<_>>()
        );
    }

    #[test]
    fn one_peer_address_cannot_spend_the_proven_allowance_of_the_others() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(40);
        let mut now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let first = round_to(&mut a, now, at_b);
        assert!(matches!(
            b.on_handshake(now, at_a, &first[0], &mut out),
            HandshakeEvent::Answered(_, true)
        ));
        assert!(b.by_addr.contains_key(&at_a));
        // a's address is one a trusted key uses now. Per address, 2 a second; in all, 40.
        b.config.handshakes_per_source = 2;
        now += Duration::from_secs(2);
        // Proven initiations from a's address (replayed by someone on the path, say), more
        // than that address's own bucket takes: 2 get through, and the rest of the 40 stay
        // for the other addresses.
        let mut reply = [0u8; 64];
        let n = b
            .cookie_secret
            .write_reply(now, at_a, &first[0], &mut reply)
            .unwrap();
        let cookie = cookie::open_reply(Token::MAX, &b.public(), &first[0], &reply[..n]).unwrap();
        let mut proven = first[0].clone();
        proven.extend_from_slice(&cookie::mac2(&cookie, &first[0]));
        let before = b.stats().initiations_proven;
        let limited = b.stats().handshakes_rate_limited;
        for _ in 0..10 {
            b.on_handshake(now, at_a, &proven, &mut out);
        }
        assert_eq!(b.stats().initiations_proven, before + 10);
        assert_eq!(b.stats().handshakes_rate_limited, limited + 8);
    }

    #[test]
    fn a_restarted_peer_that_reaches_us_at_three_addresses_gets_the_session_it_completed() {
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let at_b6: SocketAddr = "[fd00::2]:3210".parse().unwrap();
        let at_b_lan: SocketAddr = "198.18.1.2:3210".parse().unwrap();
        let mut out = [0u8; 256];
        let now = Instant::from_secs(1);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        // a restarts (a new process, the same key) and knows b at three addresses (A, AAAA
        // and a LAN address): a probe to each. b, whose session with a's old process is
        // current, answers all as renewals to confirm; a completes with the first answer to
        // come back.
        let later = now + Duration::from_secs(30);
        let mut a = node(1, 2, 20);
        let mut sent = Vec::new();
        a.want(now, at_b);
        a.want(now, at_b6);
        a.want(now, at_b_lan);
        a.flush(later, &mut |to, bytes| sent.push((to, bytes.to_vec())));
        assert_eq!(sent.len(), 3);
        let mut answers = Vec::new();
        for (to, message) in &sent {
            let HandshakeEvent::Answered(len, false) =
                b.on_handshake(later, at_a, message, &mut out)
            else {
                panic!("b did not answer the probe to {to} as a renewal");
            };
            answers.push((*to, out[..len].to_vec()));
        }
        assert_eq!(
            a.on_handshake(later, answers[0].0, &answers[0].1, &mut out),
            HandshakeEvent::Completed
        );
        // a seals in the session it completed (the first); b opens it, and seals in it back.
        assert!(
            carries(&mut a, &mut b, (at_a, at_b), later),
            "b dropped the session a completed, for the later one"
        );
        assert!(
            carries(&mut b, &mut a, (at_b, at_a), later),
            "b seals in a session a does not have"
        );
    }

    #[test]
    fn a_restarted_peer_that_reaches_us_at_six_addresses_still_gets_the_first_it_completes() {
        let (mut a, mut b) = (node(1, 2, 20), node(2, 1, 20));
        let at_a: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let at_b: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let mut out = [0u8; 256];
        let now = Instant::from_secs(1);
        handshake(&mut a, &mut b, (at_a, at_b), now);
        // a restarts and probes b at six addresses within a round trip. b answers them all as
        // renewals, and keeps MAX_UNCONFIRMED waiting: the later ones push out each other,
        // not the oldest, which is the one a completes first.
        let later = now + Duration::from_secs(30);
        let mut a = node(1, 2, 20);
        let addresses: Vec<SocketAddr> = (0..6u8)
            .map(|i| SocketAddr::from(([198, 18, i, 2], 3210)))
            .collect();
        assert_eq!(addresses[0], at_b);
        let mut sent = Vec::new();
        for to in &addresses {
            a.want(now, *to);
        }
        a.flush(later, &mut |to, bytes| sent.push((to, bytes.to_vec())));
        assert_eq!(sent.len(), 6);
        let mut answers = Vec::new();
        for (to, message) in &sent {
            match b.on_handshake(later, at_a, message, &mut out) {
                HandshakeEvent::Answered(len, false) => answers.push((*to, out[..len].to_vec())),
                other => panic!("{other:?} for the probe to {to}"),
            }
        }
        assert_eq!(answers.len(), 6);
        assert_eq!(
            a.on_handshake(later, answers[0].0, &answers[0].1, &mut out),
            HandshakeEvent::Completed
        );
        assert!(
            carries(&mut a, &mut b, (at_a, at_b), later),
            "b dropped the session a completed, for a later one"
        );
        assert!(carries(&mut b, &mut a, (at_b, at_a), later));
    }

    /// Whether a one-byte datagram `from` seals (it must have a session) reaches `to`, which
    /// opens it: (`from`'s address, `to`'s address).
    fn carries(
        from: &mut Sessions,
        to: &mut Sessions,
        (at_from, at_to): (SocketAddr, SocketAddr),
        now: Instant,
    ) -> bool {
        let mut buf = vec![0u8; crate::buf::BUF_LEN];
        let at = crate::buf::SWITCH_AT;
        buf[at] = 0x02;
        let range = from
            .seal(now, at_to, &mut buf, at, 1)
            .expect("the sender has a session");
        let mut datagram = buf[range].to_vec();
        to.open(now, at_from, &mut datagram).is_ok()
    }

    #[test]
    fn a_handshake_takes_one_refused_response_and_no_more() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(20);
        let now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let first = round_to(&mut a, now, at_b);
        assert_eq!(first.len(), 1);
        // Whoever got the initiation knows its index, and anyone knows a's public key: a
        // response with random Noise bytes passes mac1, and costs a two Diffie-Hellmans.
        let a_public = a.public();
        let forged = |fill: u8| {
            let mut m = vec![fill; handshake::RESPONSE_LEN];
            m[..7].copy_from_slice(&Token::MAX.to_bytes());
            m[7] = handshake::RESPONSE;
            m[12..16].copy_from_slice(&first[0][8..12]);
            crate::identity::tests_handshake::remac(&mut m, &a_public);
            m
        };
        for i in 0..1000 {
            let from = if i % 2 == 0 { at_b } else { at_a };
            let _ = a.on_handshake(now, from, &forged(i as u8), &mut out);
        }
        let stats = a.stats();
        assert_eq!(
            stats.handshakes_forged, 1,
            "one refused response, then the handshake is given up"
        );
        assert_eq!(stats.responses_unexpected, 999);
        // b's real answer to that initiation finds nothing in flight; the next round's does.
        if let HandshakeEvent::Answered(len, _) = b.on_handshake(now, at_a, &first[0], &mut out) {
            let answer = out[..len].to_vec();
            assert_eq!(
                a.on_handshake(now, at_b, &answer, &mut out),
                HandshakeEvent::Dropped
            );
        } else {
            panic!("b did not answer");
        }
        let later = now + HANDSHAKE_RETRY;
        a.housekeep(later, &mut |_, _| {});
        handshake(&mut a, &mut b, (at_a, at_b), later);
    }

    #[test]
    fn probes_are_budgeted_and_never_push_a_handshake_with_a_known_key_out() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(10_000);
        let now = Instant::from_secs(1);
        // a trusts b and 64 keys that no address has shown yet.
        let mut trusted = TrustedKeys::new();
        trusted.insert(b.public(), "b");
        for i in 0..64u8 {
            let key = SecretKey::from_random([100u8.wrapping_add(i); 32]).public_key();
            trusted.insert(key, "");
        }
        a.set_trusted(trusted);
        // b starts a session with a, so a knows b's key at at_b ...
        handshake(&mut b, &mut a, (at_b, at_a), now);
        // ... and renews it: one initiation to a known key, in flight.
        assert_eq!(round_to(&mut a, now, at_b).len(), 1);
        // A second later, peer lists name 20 addresses: 64 probes each, 1,024 a second in
        // all, and more than the table of handshakes in flight holds.
        let now = now + Duration::from_secs(1);
        let mut probes = 0;
        for i in 0..20u8 {
            probes += round_to(&mut a, now, SocketAddr::from(([198, 19, 0, i], 3210))).len();
        }
        assert_eq!(probes, 1024);
        assert!(a.stats().probes_deferred >= 4, "{:?}", a.stats());
        assert_eq!(a.pending.len(), MAX_PENDING);
        assert!(
            a.pending.values().any(|p| p.addr == at_b && !p.probe),
            "the renewal, the oldest, is still in flight"
        );
        // A second later the budget is back; the rounds go on 5 s later where they stopped.
        let later = now + HANDSHAKE_RETRY;
        let again = round_to(&mut a, later, SocketAddr::from(([198, 19, 0, 17], 3210)));
        assert_eq!(again.len(), 64);
        assert!(a.pending.values().any(|p| p.addr == at_b && !p.probe));
    }

    #[test]
    fn a_key_no_handshake_can_be_made_with_does_not_stop_the_probes_to_the_others() {
        let (mut a, b, _, at_b) = cookie_pair(10_000);
        let now = Instant::from_secs(1);
        // All zeros (a point of small order; the trust file's reader refuses it) sorts first
        // in the probe order: every initiation to it fails, and used to end the round.
        let mut trusted = TrustedKeys::new();
        trusted.insert(PublicKey([0; 32]), "placeholder");
        trusted.insert(b.public(), "b");
        a.set_trusted(trusted);
        let first = round_to(&mut a, now, at_b);
        assert_eq!(first.len(), 1, "one initiation, to b");
        // Which took one probe token: the failed one took none.
        assert_eq!(
            a.probes.available(now, MAX_PROBES_PER_SECOND),
            MAX_PROBES_PER_SECOND - 1
        );
        let later = now + HANDSHAKE_TIMEOUT + HANDSHAKE_RETRY;
        a.housekeep(later, &mut |_, _| {});
        assert_eq!(round_to(&mut a, later, at_b).len(), 1, "and again later");
    }

    #[test]
    fn handshake_indices_are_not_a_linear_function_of_the_seed() {
        // A generator linear over GF(2) (xorshift) gives, for seeds s1 ^ s2 ^ s3 = s4, first
        // indices that XOR to zero; from a few indices its whole state can be solved for,
        // and every later index of the node predicted.
        let first = |seed: u64| {
            let mut sessions = Sessions::new(
                Identity::new(SecretKey::from_random([7; 32])),
                Token::MAX,
                TrustedKeys::new(),
                IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, seed),
                Instant::ZERO,
            );
            [sessions.next_index(), sessions.next_index()]
        };
        let seeds = [0x1234_5679u64, 0x0bad_cafe_0001, 0x7777_0000_0003];
        let s4 = seeds[0] ^ seeds[1] ^ seeds[2];
        let [i1, i2, i3, i4] = [seeds[0], seeds[1], seeds[2], s4].map(first);
        assert_ne!(i1[0] ^ i2[0] ^ i3[0] ^ i4[0], 0);
        assert_ne!(i1[1] ^ i2[1] ^ i3[1] ^ i4[1], 0);
        // Still the same indices for the same seed (simulations are reproducible).
        assert_eq!(first(seeds[0]), i1);
    }

    #[test]
    fn a_timed_out_initiation_drops_only_the_cookie_it_carried_not_a_newer_one() {
        let (mut a, mut b, at_a, at_b) = cookie_pair(1);
        let now = Instant::from_secs(1);
        let mut out = [0u8; 256];
        let (_, reply) = over_the_limit(&mut a, &mut b, (at_a, at_b), now, 1);
        assert!(matches!(
            a.on_handshake(now, at_b, &reply, &mut out),
            HandshakeEvent::Retried(_)
        ));
        // A newer cookie from b came meanwhile (for another initiation, which went through).
        a.keep_cookie(now + Duration::from_secs(2), at_b, [7; cookie::COOKIE_LEN]);
        // The first initiation times out: the newer cookie stays, and goes on the next one.
        let later = now + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
        a.housekeep(later, &mut |_, _| {});
        let next = round_to(&mut a, later, at_b);
        assert!(!next.is_empty());
        assert!(next.iter().all(|m| m.len() == INITIATION_WITH_MAC2_LEN));
    }
}
