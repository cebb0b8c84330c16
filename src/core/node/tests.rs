//! Unit tests of the keepalive sweep and gossip timing (the simulator in `tests/` covers the
//! rest).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use super::{
    Config, Node, FOLLOW_UP_DELAY, GOSSIP_INTERVAL_MIN, HOUSEKEEP_INTERVAL, KEEPALIVE_MAX,
};
use crate::io::{Device, Socket};
use crate::time::Instant;
use crate::wire::{self, emit_peers, PeerList, Token};

/// Records what the node sends: (time, to, length, switch byte), and the addresses each
/// peer list named (to, addresses).
#[derive(Default)]
struct Recorder {
    now: Instant,
    sent: Vec<(Instant, SocketAddr, usize, u8)>,
    named: Vec<(SocketAddr, Vec<SocketAddr>)>,
}

impl Socket for Recorder {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let kind = datagram.get(wire::TOKEN_LEN).copied().unwrap_or(0xff);
        self.sent.push((self.now, to, datagram.len(), kind));
        if kind == 1 {
            let body = datagram.get(wire::TOKEN_LEN + 1..).unwrap_or_default();
            if let Ok(list) = PeerList::parse(body) {
                self.named.push((to, list.iter().collect()));
            }
        }
        Ok(())
    }
}

struct NoDevice;

impl Device for NoDevice {
    fn write_frame(&mut self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// A node with `n` verified peers (198.18.1.k:3210, each answered our "get peer list" with an
/// empty list) at time 10 s, and its peer timeout set to `timeout`.
fn node_with_peers(n: u8, timeout: Duration) -> (Node<Recorder, NoDevice>, Vec<SocketAddr>) {
    let token = Token::new(5).unwrap();
    let mut config = Config::new(token);
    config.peer_timeout = timeout;
    let mut now = Instant::from_secs(10);
    let mut node = Node::new(config, Recorder::default(), NoDevice, now);
    let peers: Vec<SocketAddr> = (1..=n)
        .map(|k| SocketAddr::from(([198, 18, 1, k], 3210)))
        .collect();
    for p in &peers {
        node.add_connect(now, *p);
    }
    node.housekeep(now);
    let mut answer = [0u8; 16];
    let (len, _) = emit_peers(token, core::iter::empty(), &mut answer).unwrap();
    for p in &peers {
        let mut d = answer;
        node.on_datagram(now, *p, &mut d[..len]).unwrap();
    }
    assert_eq!(node.peer_count(), usize::from(n));
    now += Duration::from_secs(1);
    node.socket_mut().now = now;
    node.socket_mut().sent.clear();
    (node, peers)
}

/// For each peer, the messages it was sent in order: (time, length).
fn per_peer(node: &Node<Recorder, NoDevice>, p: SocketAddr) -> Vec<(Instant, usize)> {
    let sent = &node.socket().sent;
    sent.iter()
        .filter(|s| s.1 == p)
        .map(|s| (s.0, s.2))
        .collect()
}

#[test]
fn every_peer_hears_from_us_at_least_once_per_keepalive_and_keepalives_are_empty_lists() {
    let timeout = Duration::from_secs(120);
    let keepalive = Duration::from_secs(30);
    let (mut node, peers) = node_with_peers(7, timeout);
    let start = node.socket().now;
    let mut now = start;
    // housekeeping not on whole seconds, as in a real loop, and each one 3 ms late
    let step = Duration::from_millis(1_003);
    let mut answer = [0u8; 16];
    let (len, _) = emit_peers(Token::new(5).unwrap(), core::iter::empty(), &mut answer).unwrap();
    // 20 keepalive periods; the peers keep talking to us (empty lists), so none times out
    while now < start + keepalive * 20 {
        node.socket_mut().now = now;
        node.housekeep(now);
        for p in &peers {
            let mut d = answer;
            node.on_datagram(now, *p, &mut d[..len]).unwrap();
        }
        now += step;
    }
    assert_eq!(node.peer_count(), peers.len());
    assert!(
        node.socket().sent.iter().all(|s| s.3 == 1),
        "only peer lists"
    );
    // K = 30 s: the sweep takes P = 14 s, and a keepalive goes to a peer sent nothing for
    // S = 15 s; so the longest silence is S + P + one housekeeping step
    let bound = keepalive + (step - HOUSEKEEP_INTERVAL);
    for p in &peers {
        let msgs = per_peer(&node, *p);
        let mut last = start;
        for (at, len) in &msgs {
            assert!(*len >= 10);
            let gap = at.saturating_duration_since(last);
            assert!(gap <= bound, "{p} waited {gap:?} (keepalive {keepalive:?})");
            last = *at;
        }
        let gap = now.saturating_duration_since(last);
        assert!(gap <= bound, "{p} waited {gap:?} at the end");
        // one keepalive about every 2P = 28 s, when nothing else was sent: 600 / 28 = 21.4
        let empty = msgs.iter().filter(|m| m.1 == 10).count();
        assert!(
            (15..=22).contains(&empty),
            "{p}: {empty} keepalives in 20 keepalive periods"
        );
    }
}

#[test]
fn gossip_lists_stand_in_for_keepalives_and_suppression_quiets_steady_rounds() {
    let keepalive = Duration::from_secs(60);
    let (mut node, peers) = node_with_peers(16, Duration::from_secs(1800));
    let token = Token::new(5).unwrap();
    let start = node.socket().now;
    let mut now = start;
    // two peers name others to us in turn (nothing new): consistent lists, one per 5 s (one
    // peer alone, repeating itself, counts once: see the Trickle's tests)
    let mut list = [0u8; 128];
    let (len, _) = emit_peers(token, peers.iter().copied().take(4), &mut list).unwrap();
    let mut rounds_in_last_half = 0;
    while now < start + keepalive * 20 {
        node.socket_mut().now = now;
        let before = node.socket().sent.len();
        node.housekeep(now);
        let gossip = node.socket().sent[before..]
            .iter()
            .filter(|s| s.2 > 10)
            .count();
        if now >= start + keepalive * 10 && gossip > 0 {
            rounds_in_last_half += 1;
        }
        let secs = now.as_millis() / 1000;
        if secs % 5 == 0 {
            let mut d = list;
            let from = if secs % 10 == 0 { peers[15] } else { peers[14] };
            node.on_datagram(now, from, &mut d[..len]).unwrap();
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(node.peer_count(), peers.len());
    assert_eq!(rounds_in_last_half, 0, "steady rounds are suppressed");
    let sent = &node.socket().sent;
    // the early rounds (intervals of 1, 2, 4, 8, 16, 32 s) went to 4 peers each, with 4
    // entries (never the receiver itself)
    let lists: Vec<_> = sent.iter().filter(|s| s.2 > 10).collect();
    assert!(lists.iter().all(|s| s.2 == 10 + 4 * 6));
    assert_eq!(lists.len(), 6 * 4);
    // K = 60 s: P = 29 s, S = 30 s. A keepalive goes only to a peer sent nothing, gossip
    // included, for S; so a gossip list stands in for the next keepalive. And nobody waits
    // longer than K.
    let idle = Duration::from_secs(30);
    let mut keepalives = 0;
    // (The follow-up to each new peer, FOLLOW_UP_DELAY after it was verified at 10 s, is no
    // keepalive: it goes whatever was sent since.)
    let follow_up = Instant::from_secs(10) + FOLLOW_UP_DELAY;
    for p in &peers {
        let mut last = start;
        for (i, (at, len)) in per_peer(&node, *p).into_iter().enumerate() {
            let gap = at.saturating_duration_since(last);
            assert!(gap <= keepalive, "{p} waited {gap:?}");
            if len == 10 && at == follow_up {
                last = at;
                continue;
            }
            if len == 10 && i > 0 {
                assert!(
                    gap >= idle,
                    "{p}: a keepalive only {gap:?} after the last list"
                );
            }
            keepalives += usize::from(len == 10);
            last = at;
        }
    }
    // one per peer about every 2P = 58 s: 16 × 1200 / 58 = 331
    assert!(
        keepalives <= 16 * 1200 / 58 + 16,
        "{keepalives} keepalives to 16 peers in 20 minutes"
    );
}

/// A peer verified by its answer to our request, which has not asked for our list (its
/// request lost, or not sent yet), still counts us unverified until a list of ours reaches
/// it: one empty list goes FOLLOW_UP_DELAY later, whatever went since (a gossip round to it
/// may have been lost too). Without it, one lost request and one lost list left the link
/// half made until our next keepalive (tests/mesh.rs's lost-answers test, seed 18).
#[test]
fn a_peer_verified_by_its_answer_alone_gets_one_follow_up() {
    let (mut node, peers) = node_with_peers(3, Duration::from_secs(1800));
    let verified = Instant::from_secs(10);
    let mut now = node.socket().now;
    while now <= verified + FOLLOW_UP_DELAY + Duration::from_secs(2) {
        node.socket_mut().now = now;
        node.housekeep(now);
        now += Duration::from_secs(1);
    }
    for p in &peers {
        let empty: Vec<Instant> = per_peer(&node, *p)
            .into_iter()
            .filter(|m| m.1 == 10)
            .map(|m| m.0)
            .collect();
        assert_eq!(empty, [verified + FOLLOW_UP_DELAY], "{p}");
    }
}

#[test]
fn keepalive_is_an_empty_peer_list_of_ten_bytes() {
    let mut buf = [0u8; 16];
    let (len, count) = emit_peers(Token::new(5).unwrap(), core::iter::empty(), &mut buf).unwrap();
    assert_eq!((len, count), (10, 0));
    assert_eq!(&buf[7..10], &[1, 0, 0]);
}

#[test]
fn keepalive_is_a_quarter_of_the_timeout_capped_at_a_minute() {
    let mut c = Config::new(Token::default());
    assert_eq!(c.keepalive(), KEEPALIVE_MAX);
    c.peer_timeout = Duration::from_secs(20);
    assert_eq!(c.keepalive(), Duration::from_secs(5));
    c.peer_timeout = Duration::from_secs(1);
    assert_eq!(c.keepalive(), GOSSIP_INTERVAL_MIN);
    // --keepalive wins, e.g. for a NAT that forgets mappings after 30 s.
    c.peer_timeout = Duration::from_secs(1800);
    c.keepalive = Some(Duration::from_secs(15));
    assert_eq!(c.keepalive(), Duration::from_secs(15));
    c.keepalive = Some(Duration::from_secs(300));
    assert_eq!(c.keepalive(), Duration::from_secs(300));
}

#[test]
fn peers_added_and_removed_take_from_the_log_budget() {
    use super::{LOG_BUDGET, LOG_WINDOW};
    // 40 peers verified at 10 s: 40 lines at info.
    let (mut node, peers) = node_with_peers(40, Duration::from_secs(60));
    let now = Instant::from_secs(11);
    // Two of them close: 2 more.
    for p in &peers[..2] {
        let mut close = [0u8; 8];
        let len =
            wire::emit_control(Token::new(5).unwrap(), wire::Kind::Close, &mut close).unwrap();
        node.on_datagram(now, *p, &mut close[..len]).unwrap();
    }
    assert_eq!(node.peer_count(), 38);
    // What is left of the minute's budget: LOG_BUDGET - 42 lines, then none.
    let left = (0..LOG_BUDGET)
        .take_while(|_| node.log_budget.allow(now, LOG_BUDGET, LOG_WINDOW).is_some())
        .count();
    assert_eq!(left, usize::try_from(LOG_BUDGET).unwrap() - 42);
    // A minute after the first line, a new window, which first reports the one refused.
    let later = Instant::from_secs(70);
    assert_eq!(
        node.log_budget.allow(later, LOG_BUDGET, LOG_WINDOW),
        Some(1)
    );
}

#[test]
fn a_new_peer_has_one_follow_up_queued_however_often_it_asks() {
    let (mut node, peers) = node_with_peers(1, Duration::from_secs(120));
    let peer = peers[0];
    let token = node.config().token;
    let mut get = [0u8; 8];
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    // Answered once a second; each answer wants a follow-up, one stays queued.
    let start = Instant::from_secs(11);
    for s in 0..3 {
        let now = start + Duration::from_secs(s);
        node.on_datagram(now, peer, &mut get.clone()).unwrap();
    }
    assert_eq!(node.follow_ups.len(), 1);
    assert!(node.peers.get(peer).is_some_and(|p| p.follow_up_pending));
    // Sent at housekeeping once due; the peer may have another queued after that.
    node.housekeep(start + Duration::from_secs(20));
    assert!(node.follow_ups.is_empty());
    assert!(node.peers.get(peer).is_some_and(|p| !p.follow_up_pending));
}

#[test]
fn gossip_names_every_peer_to_every_other_peer_whatever_their_number() {
    // With 8 peers a list holds ⌈√8⌉ = 3 of them, and 8 is a multiple of 3 + 1: the windows
    // of 4 that lists are cut from line up the same way round after round, and a window's
    // last peer used to be left out of the lists to everyone outside the window, for ever.
    for n in [5u8, 8, 10, 15] {
        let (mut node, peers) = node_with_peers(n, Duration::from_secs(8000));
        let start = node.socket().now;
        let mut now = start;
        // about 120 rounds at the steady interval of 60 s
        while now < start + Duration::from_secs(7200) {
            node.socket_mut().now = now;
            node.housekeep(now);
            now += Duration::from_secs(1);
        }
        assert_eq!(node.peer_count(), peers.len());
        let named = &node.socket().named;
        assert!(named.iter().all(|(to, list)| !list.contains(to)));
        for to in &peers {
            for p in peers.iter().filter(|p| *p != to) {
                assert!(
                    named.iter().any(|(t, list)| t == to && list.contains(p)),
                    "n = {n}: {to} never heard of {p} in {} lists",
                    named.len()
                );
            }
        }
    }
}

#[test]
fn shutdown_sends_close_to_unverified_peers_too() {
    // X asked for our list (so it counts us as its peer), and we have not verified it yet:
    // it gets a Close as well, and stops sending to us now rather than after its timeout.
    let (mut node, peers) = node_with_peers(2, Duration::from_secs(1800));
    let x = SocketAddr::from(([198, 18, 2, 1], 3210));
    let now = node.socket().now;
    let mut ask = [0u8; 8];
    let len = wire::emit_control(Token::new(5).unwrap(), wire::Kind::GetPeers, &mut ask).unwrap();
    node.on_datagram(now, x, &mut ask[..len]).unwrap();
    node.socket_mut().sent.clear();
    node.shutdown(now);
    let closed: Vec<SocketAddr> = node
        .socket()
        .sent
        .iter()
        .filter(|s| s.3 == 3)
        .map(|s| s.1)
        .collect();
    assert_eq!(closed.len(), 3, "{closed:?}");
    assert!(closed.contains(&x) && peers.iter().all(|p| closed.contains(p)));
    assert_eq!(node.peer_count(), 0);
}

#[test]
fn a_lane_starts_handshakes_only_with_peers_still_verified() {
    use crate::identity::{IdentityConfig, SecretKey, TrustedKeys};
    use crate::lane::LaneCounts;
    let token = Token::new(7).unwrap();
    let mut config = Config::new(token);
    let mut trusted = TrustedKeys::new();
    trusted.insert(SecretKey::from_random([6; 32]).public_key(), "other");
    config.identity = Some(super::IdentitySetup {
        secret: SecretKey::from_random([5; 32]),
        trusted,
        config: IdentityConfig::new(Instant::ZERO, 1, 5),
    });
    let now = Instant::from_secs(1);
    let mut node = Node::new(config, Recorder::default(), NoDevice, Instant::ZERO);
    // The seed went to the sessions: the configuration the node keeps has none (a copy
    // of it would tell the ephemeral keys drawn before the first reseed).
    let kept = node
        .config()
        .identity
        .as_ref()
        .map(|s| s.config.seed.clone());
    assert_eq!(kept, Some(crate::identity::Seed::default()));
    assert_eq!(
        node.sessions.as_ref().map(|s| s.config().seed.clone()),
        kept
    );
    let verified = SocketAddr::from(([198, 18, 1, 1], 3210));
    let gone = SocketAddr::from(([198, 18, 1, 2], 3210));
    node.peers.touch(now, verified);
    assert!(node.peers.verify(verified));
    // A lane's view, a little behind, still had `gone` (removed since: timed out, or its key
    // revoked); both had no session.
    let counts = LaneCounts {
        no_session: 2,
        wanted: vec![gone, verified],
        ..LaneCounts::default()
    };
    // At a stop, the same counts start nothing (an initiation just before the Close would
    // leave the peer a session nobody completes), and are still counted.
    node.absorb_lane_at_stop(now, &counts);
    assert!(node.socket_mut().sent.is_empty(), "no initiation at a stop");
    assert_eq!(node.sessions().map(|s| s.stats().no_session), Some(2));
    node.absorb_lane(now, &counts);
    let sent = std::mem::take(&mut node.socket_mut().sent);
    let to: Vec<SocketAddr> = sent.iter().map(|s| s.1).collect();
    assert_eq!(to, [verified], "one initiation, to the verified peer only");
    assert_eq!(node.sessions().map(|s| s.stats().no_session), Some(4));
}

/// Two Closes forged from a live, learned peer less than a second apart: it answered the
/// ask after the first, and holds back its answer to the ask after the second (one a second,
/// `LIST_ANSWER_INTERVAL`). The node asks it a second time 2 s later, past that second, so
/// the peer is back within seconds. With one ask it stayed cut off until something else
/// made the two meet again (its keepalive, up to a minute later).
#[test]
fn a_peer_cut_off_by_two_forged_closes_within_a_second_is_asked_again() {
    let token = Token::new(5).unwrap();
    let mut now = Instant::from_secs(10);
    let mut node = Node::new(Config::new(token), Recorder::default(), NoDevice, now);
    let b = SocketAddr::from(([198, 18, 1, 9], 3210));
    let (mut get, mut close, mut empty) = ([0u8; 8], [0u8; 8], [0u8; 10]);
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    wire::emit_control(token, wire::Kind::Close, &mut close).unwrap();
    let (len, _) = emit_peers(token, core::iter::empty(), &mut empty).unwrap();
    // B asks, is asked back, answers: a learned, verified peer.
    node.on_datagram(now, b, &mut get.clone()).unwrap();
    node.on_datagram(now, b, &mut empty[..len].to_vec())
        .unwrap();
    assert!(node.peers().is_verified(b));
    let asks = |node: &Node<Recorder, NoDevice>| {
        node.socket()
            .sent
            .iter()
            .filter(|s| s.1 == b && s.3 == wire::Kind::GetPeers as u8)
            .count()
    };
    // A forged Close; the node asks B, which answers.
    now += Duration::from_secs(5);
    node.socket_mut().sent.clear();
    let _ = node.on_datagram(now, b, &mut close.clone());
    node.housekeep(now);
    assert_eq!(asks(&node), 1);
    node.on_datagram(now, b, &mut empty[..len].to_vec())
        .unwrap();
    assert!(node.peers().is_verified(b));
    // Another, 300 ms later: the node asks, B (having answered 300 ms ago) does not answer.
    now += Duration::from_millis(300);
    let _ = node.on_datagram(now, b, &mut close.clone());
    node.housekeep(now);
    assert_eq!(asks(&node), 2);
    assert!(!node.peers().contains(b));
    // Asked again once B answers requests again; its answer makes it a peer.
    for _ in 0..3 {
        now += Duration::from_secs(1);
        node.socket_mut().now = now;
        node.housekeep(now);
    }
    assert_eq!(asks(&node), 3, "not asked again");
    node.on_datagram(now, b, &mut empty[..len].to_vec())
        .unwrap();
    assert!(node.peers().is_verified(b));
}

/// A socket that queues and whose every flush drops all it queued, saying to whom.
#[derive(Default)]
struct DroppingQueue {
    queued: Vec<(SocketAddr, usize)>,
    failed: Vec<(SocketAddr, u64, u64)>,
}

impl Socket for DroppingQueue {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.queued.push((to, datagram.len()));
        Ok(())
    }
    fn flush(&mut self) -> Result<(), crate::io::FlushError> {
        if self.queued.is_empty() {
            return Ok(());
        }
        let dropped = self.queued.len() as u64;
        let dropped_bytes = self.queued.iter().map(|q| q.1 as u64).sum();
        for (to, len) in self.queued.drain(..) {
            self.failed.push((to, 1, len as u64));
        }
        Err(crate::io::FlushError {
            dropped,
            would_block: dropped,
            dropped_bytes,
            error: io::ErrorKind::WouldBlock.into(),
        })
    }
    fn drain_failed(&mut self, f: &mut dyn FnMut(SocketAddr, u64, u64)) {
        for (to, datagrams, bytes) in self.failed.drain(..) {
            f(to, datagrams, bytes);
        }
    }
}

/// What a failed flush dropped is taken back from the peer's sent counters too, as from the
/// node's: `show` said more was sent to it than went out.
#[test]
fn a_failed_flush_takes_back_what_each_peer_was_counted() {
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let mut node = Node::new(Config::new(token), DroppingQueue::default(), NoDevice, now);
    let b = SocketAddr::from(([198, 18, 1, 9], 3210));
    let (mut get, mut empty) = ([0u8; 8], [0u8; 10]);
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    let (len, _) = emit_peers(token, core::iter::empty(), &mut empty).unwrap();
    node.on_datagram(now, b, &mut get.clone()).unwrap();
    node.on_datagram(now, b, &mut empty[..len].to_vec())
        .unwrap();
    assert!(node.peers().is_verified(b));
    node.flush();
    let traffic = |node: &Node<DroppingQueue, NoDevice>| {
        let t = &node.peers().get(b).unwrap().traffic;
        (t.tx_datagrams, t.tx_bytes)
    };
    assert_eq!(traffic(&node), (0, 0));
    assert_eq!(node.stats().datagrams_sent, 0);
    // B asks again (a second later): answered, counted, dropped by the flush, taken back.
    let later = now + Duration::from_secs(2);
    node.on_datagram(later, b, &mut get.clone()).unwrap();
    assert_eq!(traffic(&node).0, 1);
    node.flush();
    assert_eq!(traffic(&node), (0, 0));
    assert_eq!(node.stats().datagrams_sent, 0);
    // What is taken back may include datagrams never counted for the peer (the ask after
    // its Close went while it was none): never below zero.
    let mut close = [0u8; 8];
    wire::emit_control(token, wire::Kind::Close, &mut close).unwrap();
    let later = later + Duration::from_secs(2);
    let _ = node.on_datagram(later, b, &mut close.clone());
    node.housekeep(later);
    let _ = node.on_datagram(later, b, &mut get.clone());
    node.flush();
    assert_eq!(traffic(&node), (0, 0));
}

/// A peer at a loopback address (another instance on this host) is named in the lists to
/// peers on this host only: elsewhere the address is that host's own, which a node of the
/// seed's protocol would contact.
#[test]
fn a_loopback_peer_is_named_only_to_peers_on_this_host() {
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let mut node = Node::new(Config::new(token), Recorder::default(), NoDevice, now);
    let local = SocketAddr::from(([127, 0, 0, 1], 3211));
    let other_local = SocketAddr::from(([127, 0, 0, 1], 3212));
    let remote = SocketAddr::from(([198, 18, 1, 1], 3210));
    let (mut get, mut empty) = ([0u8; 8], [0u8; 10]);
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    let (len, _) = emit_peers(token, core::iter::empty(), &mut empty).unwrap();
    for p in [local, other_local, remote] {
        node.on_datagram(now, p, &mut get.clone()).unwrap();
        node.on_datagram(now, p, &mut empty[..len].to_vec())
            .unwrap();
        assert!(node.peers().is_verified(p));
    }
    node.socket_mut().named.clear();
    let later = now + Duration::from_secs(2);
    for p in [local, remote] {
        node.on_datagram(later, p, &mut get.clone()).unwrap();
    }
    let named = &node.socket().named;
    let to = |p: SocketAddr| named.iter().find(|(t, _)| *t == p).map(|(_, l)| l.clone());
    assert_eq!(
        to(remote),
        Some(vec![]),
        "a loopback peer named to {remote}"
    );
    let mut to_local = to(local).unwrap();
    to_local.sort();
    assert_eq!(to_local, vec![other_local, remote]);
}

/// A peer at an IPv6 link-local address (it reached us on one of our links, so its address
/// carries that link's interface) is named to nobody: a peer list has no room for the
/// interface, new nodes ignore such entries, and old ones would try them in vain.
#[test]
fn a_link_local_peer_is_named_to_nobody() {
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let mut node = Node::new(Config::new(token), Recorder::default(), NoDevice, now);
    let link_local = SocketAddr::V6(std::net::SocketAddrV6::new(
        std::net::Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 7),
        3211,
        0,
        2,
    ));
    let other_v6 = SocketAddr::from((std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2), 3210));
    let remote = SocketAddr::from(([198, 18, 1, 1], 3210));
    let (mut get, mut empty) = ([0u8; 8], [0u8; 10]);
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    let (len, _) = emit_peers(token, core::iter::empty(), &mut empty).unwrap();
    for p in [link_local, other_v6, remote] {
        node.on_datagram(now, p, &mut get.clone()).unwrap();
        node.on_datagram(now, p, &mut empty[..len].to_vec())
            .unwrap();
        assert!(node.peers().is_verified(p), "{p} verified");
    }
    node.socket_mut().named.clear();
    let later = now + Duration::from_secs(2);
    for p in [link_local, other_v6, remote] {
        node.on_datagram(later, p, &mut get.clone()).unwrap();
    }
    let named = &node.socket().named;
    let to = |p: SocketAddr| {
        let mut list = named
            .iter()
            .find(|(t, _)| *t == p)
            .map(|(_, l)| l.clone())
            .unwrap();
        list.sort();
        list
    };
    assert_eq!(to(remote), vec![other_v6], "the list to {remote}");
    assert_eq!(to(other_v6), vec![remote], "the list to {other_v6}");
    assert_eq!(to(link_local), vec![remote, other_v6]);
}

/// An address the node gains while it runs (read again from its interfaces) is its own from
/// then on: a peer there (the node itself, reached through a list that named the address) is
/// removed, datagrams from it are dropped as from the node itself, and it is not contacted.
#[test]
fn an_address_that_becomes_the_nodes_own_is_no_peer_any_more() {
    use crate::stats::DropReason;
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let mut node = Node::new(Config::new(token), Recorder::default(), NoDevice, now);
    let gained = SocketAddr::from(([198, 18, 7, 9], 3210));
    let other = SocketAddr::from(([198, 18, 7, 1], 3210));
    let (mut get, mut empty) = ([0u8; 8], [0u8; 10]);
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    let (len, _) = emit_peers(token, core::iter::empty(), &mut empty).unwrap();
    for p in [gained, other] {
        node.on_datagram(now, p, &mut get.clone()).unwrap();
        node.on_datagram(now, p, &mut empty[..len].to_vec())
            .unwrap();
        assert!(node.peers().is_verified(p));
    }
    let later = now + Duration::from_secs(1);
    assert!(node.set_own_addrs(later, vec![gained]));
    assert!(!node.set_own_addrs(later, vec![gained]), "unchanged");
    assert!(!node.is_peer(gained));
    assert!(node.peers().is_verified(other), "other peers stay");
    assert_eq!(
        node.on_datagram(later, gained, &mut get.clone()),
        Err(DropReason::FromSelf)
    );
    assert!(!node.is_peer(gained));
    assert!(node.connect_refusal(gained).is_some());
}

/// The node's own addresses as configured, in any order and IPv4 ones possibly v4-mapped
/// (as a dual-stack socket's look-ups give them), are each refused as a source, and an
/// address next to them in the order is not.
#[test]
fn own_addresses_given_in_any_order_are_each_refused_as_a_source() {
    use crate::stats::DropReason;
    use std::net::{Ipv6Addr, SocketAddrV6};
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let v4 = |last: u8| SocketAddr::from(([198, 18, 7, last], 3210));
    let mapped = SocketAddr::V6(SocketAddrV6::new(
        Ipv6Addr::from([0, 0, 0, 0, 0, 0xffff, 0xc612, 0x0705]),
        3210,
        0,
        0,
    ));
    let v6 = SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 9], 3210));
    let mut config = Config::new(token);
    config.own_addrs = vec![v4(200), v6, mapped, v4(3), v4(200)];
    let mut node = Node::new(config, Recorder::default(), NoDevice, now);
    let mut get = [0u8; 8];
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    for own in [v4(200), v6, v4(5), v4(3)] {
        assert_eq!(
            node.on_datagram(now, own, &mut get.clone()),
            Err(DropReason::FromSelf),
            "{own}"
        );
    }
    for other in [
        v4(4),
        v4(6),
        v4(199),
        SocketAddr::from(([0xfd00, 0, 0, 0, 0, 0, 0, 8], 3210)),
    ] {
        assert_eq!(
            node.on_datagram(now, other, &mut get.clone()),
            Ok(()),
            "{other}"
        );
    }
}

/// A `--connect` address that becomes the node's own while it runs (a failover address
/// moved to this host) is not asked any more; it stays a connect address, and is asked again
/// once it is no longer the node's own.
#[test]
fn a_connect_address_that_becomes_the_nodes_own_is_not_asked_while_it_is() {
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let failover = SocketAddr::from(([198, 18, 7, 50], 3210));
    let mut config = Config::new(token);
    config.connect = vec![failover];
    let mut node = Node::new(config, Recorder::default(), NoDevice, now);
    let asked = |node: &Node<Recorder, NoDevice>| {
        node.socket()
            .sent
            .iter()
            .filter(|s| s.1 == failover)
            .count()
    };
    node.housekeep(now);
    node.flush();
    let before = asked(&node);
    assert!(before >= 1, "asked at start");
    node.set_own_addrs(now, vec![failover]);
    let mut t = now;
    for _ in 0..200 {
        t += Duration::from_secs(1);
        node.housekeep(t);
        node.flush();
    }
    assert_eq!(asked(&node), before, "asked while it was this node's own");
    assert!(node.config().connect.contains(&failover));
    node.set_own_addrs(t, vec![]);
    for _ in 0..120 {
        t += Duration::from_secs(1);
        node.housekeep(t);
        node.flush();
    }
    assert!(asked(&node) > before, "not asked again once it moved away");
}

/// A kind of send failure warned about once is warned about again ten minutes later (the
/// failures between are logged at debug): one at boot must not hide another weeks later.
#[test]
fn send_failures_are_warned_about_again_after_ten_minutes() {
    use super::WARN_AGAIN_AFTER;
    let token = Token::new(5).unwrap();
    let now = Instant::from_secs(10);
    let peer = SocketAddr::from(([198, 18, 7, 1], 3210));
    let mut config = Config::new(token);
    config.connect = vec![peer];
    let mut node = Node::new(config, DroppingQueue::default(), NoDevice, now);
    node.housekeep(now);
    node.flush();
    assert_ne!(node.tx.warned, 0, "the first failure is warned about");
    node.housekeep(now + (WARN_AGAIN_AFTER - Duration::from_secs(1)));
    assert_ne!(node.tx.warned, 0, "not yet armed again");
    node.housekeep(now + WARN_AGAIN_AFTER);
    assert_eq!(node.tx.warned, 0, "armed again after ten minutes");
}
