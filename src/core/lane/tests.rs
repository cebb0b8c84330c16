//! Tests of [`Lane`](super::Lane): byte for byte against the node, counts, generations,
//! sealed modes, and a property over any frames.

use std::io;

use super::*;
use crate::io::Device;
use crate::node::{Config, Node};
use crate::stats::DropReason;
use crate::wire::{self, Kind};

/// Keeps every datagram sent, with its address.
#[derive(Default)]
struct Recorder(Vec<(SocketAddr, Vec<u8>)>);
impl Socket for Recorder {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.0.push((to, datagram.to_vec()));
        Ok(())
    }
}

#[derive(Default)]
struct Sink;
impl Device for Sink {
    fn write_frame(&mut self, _frame: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

fn peer(i: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, i], 3210))
}

fn frame(dst: [u8; 6], src: [u8; 6], len: usize) -> Vec<u8> {
    let mut f = vec![0x5a; len];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A node in the clear protocol with `peers` verified peers; the first one has sent us a
/// frame from `remote` (so the MAC table knows it).
fn node_with_peers(peers: u8, remote: [u8; 6], now: Instant) -> Node<Recorder, Sink> {
    let token = Token::new(7).unwrap();
    let mut node = Node::new(Config::new(token), Recorder::default(), Sink, Instant::ZERO);
    let mut get = [0u8; 8];
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    let mut answer = [0u8; 10];
    let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
    for i in 1..=peers {
        node.on_datagram(now, peer(i), &mut get.clone()).unwrap();
        node.on_datagram(now, peer(i), &mut answer[..answer_len])
            .unwrap();
    }
    let mut incoming = vec![0u8; 200];
    let len =
        wire::emit_frame(token, &frame([2, 0, 0, 0, 0, 1], remote, 60), &mut incoming).unwrap();
    node.on_datagram(now, peer(1), &mut incoming[..len])
        .unwrap();
    node
}

fn send_through_node(
    node: &mut Node<Recorder, Sink>,
    now: Instant,
    f: &[u8],
) -> Vec<(SocketAddr, Vec<u8>)> {
    node.socket_mut().0.clear();
    let mut buf = PacketBuf::new();
    buf.frame_room()[..f.len()].copy_from_slice(f);
    let _ = node.on_frame(now, &mut buf, f.len());
    let mut sent = std::mem::take(&mut node.socket_mut().0);
    sent.sort();
    sent
}

fn send_through_lane(
    lane: &mut Lane<Recorder>,
    now: Instant,
    f: &[u8],
) -> Vec<(SocketAddr, Vec<u8>)> {
    lane.tx.socket.0.clear();
    let mut buf = PacketBuf::new();
    buf.frame_room()[..f.len()].copy_from_slice(f);
    let _ = lane.on_frame(now, &mut buf, f.len());
    let mut sent = std::mem::take(&mut lane.tx.socket.0);
    sent.sort();
    sent
}

#[test]
fn a_lane_sends_what_the_node_sends_byte_for_byte_unicast_flood_and_broadcast() {
    let now = Instant::from_secs(1);
    let remote = [2, 0, 0, 0, 0, 2];
    let mut node = node_with_peers(3, remote, now);
    let view = Arc::new(node.forward_view());
    assert_eq!(view.peers().len(), 3);
    assert_eq!(view.macs(), 1);
    let mut lane = Lane::new(Recorder::default(), view, now);
    let local = [2, 0, 0, 0, 0, 1];
    for f in [
        frame(remote, local, 1400),                 // known: unicast to peer 1
        frame([2, 0, 0, 0, 0, 9], local, 60),       // unknown: flooded
        frame([0xff; 6], local, 342),               // broadcast: flooded
        frame([0x33, 0x33, 0, 0, 0, 1], local, 86), // multicast: flooded
    ] {
        let by_node = send_through_node(&mut node, now, &f);
        let by_lane = send_through_lane(&mut lane, now, &f);
        assert!(!by_node.is_empty());
        assert_eq!(by_lane, by_node);
    }
    assert_eq!(
        send_through_lane(&mut lane, now, &frame(remote, local, 100))
            .iter()
            .map(|(to, _)| *to)
            .collect::<Vec<_>>(),
        vec![peer(1)]
    );
    // A frame too short for an Ethernet header is dropped and counted, as by the node.
    let mut buf = PacketBuf::new();
    assert_eq!(
        lane.on_frame(now, &mut buf, 10),
        Err(DropReason::BadDeviceFrame)
    );
    // At its expiry in the view, the entry still holds (the node may have refreshed it
    // since the view was taken: a newer view would say so) ...
    let expiry = now + node.config().mac_timeout;
    let sent = send_through_lane(&mut lane, expiry, &frame(remote, local, 100));
    assert_eq!(
        sent.len(),
        1,
        "a frame to a MAC the node may have refreshed is not flooded"
    );
    let sent = send_through_lane(
        &mut lane,
        expiry + Duration::from_millis(1999),
        &frame(remote, local, 100),
    );
    assert_eq!(sent.len(), 1);
    // ... but not past the lag, by which a newer view would have removed it.
    let sent = send_through_lane(&mut lane, expiry + VIEW_LAG, &frame(remote, local, 100));
    assert_eq!(sent.len(), 3, "an expired entry floods");
}

/// The MACs the property below draws from: `mac(i)` is a unicast address.
fn mac(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, i]
}

/// A frame of `len` bytes (cut at `len` even inside its header) from `src` to `dst`,
/// tagged with `vlan` if given.
fn tagged(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, len: usize) -> Vec<u8> {
    let mut f = vec![0x5a; len.max(18)];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    match vlan {
        Some(vid) => {
            f[12..14].copy_from_slice(&[0x81, 0x00]);
            f[14..16].copy_from_slice(&vid.to_be_bytes());
            f[16..18].copy_from_slice(&[0x08, 0x00]);
        }
        None => f[12..14].copy_from_slice(&[0x08, 0x00]),
    }
    f.truncate(len);
    f
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
    /// Whatever the node learned and whatever comes from the device (known, unknown,
    /// broadcast or multicast destinations, tagged or not, any length, a broadcast limit
    /// or none), a lane fed the node's view sends the very datagrams the node sends, to the
    /// same peers, and counts the same: both go through `outbound::forward`.
    #[test]
    fn a_lane_sends_and_counts_what_the_node_does_for_any_frame(
        learned in proptest::collection::vec((1u8..4, 0u8..6, proptest::option::of(1u16..4)), 0..10),
        frames in proptest::collection::vec(
            (0u8..4, 0u8..8, proptest::option::of(1u16..4), 0usize..1515), 1..20),
        limit in proptest::option::of(1u64..4),
    ) {
        let now = Instant::from_secs(1);
        let token = Token::new(7).unwrap();
        let mut config = Config::new(token);
        config.broadcast_limit = limit;
        let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
        let mut get = [0u8; 8];
        wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
        let mut answer = [0u8; 10];
        let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
        for i in 1..=3 {
            node.on_datagram(now, peer(i), &mut get.clone()).unwrap();
            node.on_datagram(now, peer(i), &mut answer[..answer_len]).unwrap();
        }
        // MACs learned behind the peers, on VLANs or not (a MAC may move between peers).
        let mut incoming = vec![0u8; 200];
        for &(from, m, vlan) in &learned {
            let f = tagged([2, 0, 0, 0, 0, 1], mac(m), vlan, 60);
            let len = wire::emit_frame(token, &f, &mut incoming).unwrap();
            let _ = node.on_datagram(now, peer(from), &mut incoming[..len]);
        }
        let mut lane = Lane::new(Recorder::default(), Arc::new(node.forward_view()), now);
        let before = node.stats().clone();
        let local = [2, 0, 0, 0, 0, 1];
        for &(kind, m, vlan, len) in &frames {
            let dst = match kind {
                0 => mac(m),                       // learned (on some VLAN) or not
                1 => [0xff; 6],                    // broadcast
                2 => [0x01, 0x00, 0x5e, 0, 0, m],  // multicast
                _ => [2, 0, 0, 0, 2, m],           // never learned
            };
            let f = tagged(dst, local, vlan, len);
            let by_node = send_through_node(&mut node, now, &f);
            let by_lane = send_through_lane(&mut lane, now, &f);
            proptest::prop_assert_eq!(by_lane, by_node);
        }
        let counts = lane.take_counts().stats;
        let node_stats = node.stats();
        proptest::prop_assert_eq!(
            counts.frames_unicast, node_stats.frames_unicast - before.frames_unicast);
        proptest::prop_assert_eq!(
            counts.frames_flooded, node_stats.frames_flooded - before.frames_flooded);
        proptest::prop_assert_eq!(
            counts.datagrams_sent, node_stats.datagrams_sent - before.datagrams_sent);
        proptest::prop_assert_eq!(
            counts.total_drops(), node_stats.total_drops() - before.total_drops());
        proptest::prop_assert_eq!(counts.frames_from_device, frames.len() as u64);
    }
}

#[test]
fn counts_go_back_to_the_node_and_the_generation_moves_with_what_the_view_shows() {
    let now = Instant::from_secs(1);
    let remote = [2, 0, 0, 0, 0, 2];
    let mut node = node_with_peers(2, remote, now);
    let generation = node.forward_generation();
    let view = Arc::new(node.forward_view());
    assert_eq!(view.generation, generation);
    let mut lane = Lane::new(Recorder::default(), view, now);
    let local = [2, 0, 0, 0, 0, 1];
    send_through_lane(&mut lane, now, &frame(remote, local, 100)); // 1 datagram
    send_through_lane(&mut lane, now, &frame([0xff; 6], local, 100)); // 2 datagrams
    let counts = lane.take_counts();
    assert_eq!(counts.stats.frames_from_device, 2);
    assert_eq!(counts.stats.datagrams_sent, 3);
    let mut sent = counts.sent.clone();
    sent.sort();
    assert_eq!(sent, vec![(peer(1), 2, 216), (peer(2), 1, 108)]);
    assert_eq!(lane.take_counts(), LaneCounts::default());

    let before = node.stats().clone();
    let traffic_before = node.peers().get(peer(1)).unwrap().traffic;
    node.absorb_lane(now, &counts);
    assert_eq!(
        node.stats().frames_from_device,
        before.frames_from_device + 2
    );
    assert_eq!(node.stats().datagrams_sent, before.datagrams_sent + 3);
    let traffic = node.peers().get(peer(1)).unwrap().traffic;
    assert_eq!(traffic.tx_datagrams, traffic_before.tx_datagrams + 2);
    assert_eq!(traffic.tx_bytes, traffic_before.tx_bytes + 216);

    // Refreshing a MAC does not move the generation; a new MAC and a new peer do.
    let token = node.config().token;
    let mut incoming = vec![0u8; 200];
    let len = wire::emit_frame(token, &frame(local, remote, 60), &mut incoming).unwrap();
    node.on_datagram(now, peer(1), &mut incoming[..len])
        .unwrap();
    assert_eq!(node.forward_generation(), generation);
    let len =
        wire::emit_frame(token, &frame(local, [2, 0, 0, 0, 0, 3], 60), &mut incoming).unwrap();
    node.on_datagram(now, peer(2), &mut incoming[..len])
        .unwrap();
    assert_ne!(node.forward_generation(), generation);
    let view = Arc::new(node.forward_view());
    lane.set_view(view);
    let sent = send_through_lane(&mut lane, now, &frame([2, 0, 0, 0, 0, 3], local, 100));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, peer(2));
}

/// A keyed node with `peers` verified peers that sealed their datagrams with `remote`;
/// the first one has sent us a frame from `mac`.
fn keyed_node_with_peers(
    peers: u8,
    mac: [u8; 6],
    remote: &Sealer,
    now: Instant,
) -> Node<Recorder, Sink> {
    let token = Token::new(7).unwrap();
    let mut config = Config::new(token);
    config.keyed = Some(crate::node::Keyed {
        key: crate::crypto::Key::from_bytes([9; 32]),
        session: [1; crypto::SESSION_LEN],
    });
    let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
    let seal = |clear: &[u8]| {
        let inner = clear.len() - TOKEN_LEN;
        let mut buf = vec![0u8; crypto::FRONT_LEN + inner + crypto::TAG_LEN];
        buf[crypto::FRONT_LEN..crypto::FRONT_LEN + inner].copy_from_slice(&clear[TOKEN_LEN..]);
        let range = remote
            .seal(token, &mut buf, crypto::FRONT_LEN, inner)
            .unwrap();
        buf[range].to_vec()
    };
    let mut get = [0u8; 8];
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    let mut answer = [0u8; 10];
    let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
    for i in 1..=peers {
        node.on_datagram(now, peer(i), &mut seal(&get)).unwrap();
        node.on_datagram(now, peer(i), &mut seal(&answer[..answer_len]))
            .unwrap();
    }
    let mut incoming = vec![0u8; 200];
    let len = wire::emit_frame(token, &frame([2, 0, 0, 0, 0, 1], mac, 60), &mut incoming).unwrap();
    node.on_datagram(now, peer(1), &mut seal(&incoming[..len]))
        .unwrap();
    assert_eq!(node.peers().verified_len(), usize::from(peers));
    node
}

/// Opens `sent` with the network key of [`keyed_node_with_peers`]: (to, session,
/// counter, opened bytes) each.
fn open_all(sent: &[(SocketAddr, Vec<u8>)]) -> Vec<(SocketAddr, Vec<u8>, u64, Vec<u8>)> {
    sent.iter()
        .map(|(to, sealed)| {
            // One opener each: a flood sends one sealed datagram to every peer.
            let mut opener = crypto::Opener::new(&crate::crypto::Key::from_bytes([9; 32]), 1);
            let session = sealed[TOKEN_LEN + 1..TOKEN_LEN + 1 + crypto::SESSION_LEN].to_vec();
            let at = TOKEN_LEN + 1 + crypto::SESSION_LEN;
            let counter = u64::from_be_bytes(sealed[at..at + 8].try_into().unwrap());
            let mut buf = sealed.clone();
            let range = opener.open(&mut buf).expect("a lane's datagram opens");
            (*to, session, counter, buf[range].to_vec())
        })
        .collect()
}

#[test]
fn a_keyed_lane_seals_what_the_node_seals_in_the_node_s_session_with_counters_of_its_own() {
    let now = Instant::from_secs(1);
    let mac = [2, 0, 0, 0, 0, 2];
    let remote = Sealer::new(&crate::crypto::Key::from_bytes([9; 32]), [2; 16]);
    let mut node = keyed_node_with_peers(3, mac, &remote, now);
    let view = Arc::new(node.forward_view());
    assert!(view.is_sealed());
    let mut lane = Lane::new(Recorder::default(), view, now);
    let local = [2, 0, 0, 0, 0, 1];
    let mut counters = Vec::new();
    for f in [
        frame(mac, local, 1400),                    // known: unicast to peer 1
        frame([2, 0, 0, 0, 0, 9], local, 60),       // unknown: flooded
        frame([0xff; 6], local, 342),               // broadcast: flooded
        frame([0x33, 0x33, 0, 0, 0, 1], local, 86), // multicast: flooded
    ] {
        let by_node = open_all(&send_through_node(&mut node, now, &f));
        let by_lane = open_all(&send_through_lane(&mut lane, now, &f));
        assert!(!by_node.is_empty());
        assert_eq!(by_lane.len(), by_node.len());
        for (n, l) in by_node.iter().zip(&by_lane) {
            assert_eq!(l.0, n.0, "same receiver");
            assert_eq!(l.1, n.1, "the node's one session");
            assert_eq!(l.1, vec![1; crypto::SESSION_LEN]);
            assert_eq!(l.3, n.3, "same clear datagram");
            assert!(l.3.ends_with(&f), "the frame itself");
        }
        // A flood is one sealed datagram (one counter) sent to every peer.
        for sent in [&by_node, &by_lane] {
            assert!(sent.iter().all(|d| d.2 == sent[0].2));
            counters.push(sent[0].2);
        }
    }
    let all = counters.len();
    counters.sort_unstable();
    counters.dedup();
    assert_eq!(counters.len(), all, "no counter used twice");
    assert_eq!(all, 8);
}

#[test]
fn a_keyed_lane_seals_with_the_new_key_as_soon_as_the_node_rotates_to_it() {
    // The lane keeps the copy it had before the rotation (the next one comes with the next
    // view): what it seals must be in the new session all the same.
    let now = Instant::from_secs(1);
    let mac = [2, 0, 0, 0, 0, 2];
    let remote = Sealer::new(&crate::crypto::Key::from_bytes([9; 32]), [2; 16]);
    let mut node = keyed_node_with_peers(1, mac, &remote, now);
    let mut lane = Lane::new(Recorder::default(), Arc::new(node.forward_view()), now);
    let next = crate::node::Keyed {
        key: crate::crypto::Key::from_bytes([10; 32]),
        session: [5; crypto::SESSION_LEN],
    };
    assert_eq!(node.rekey(now, next), crate::node::Rekey::Started);
    // Past the time in which peers take the new key: the node seals with it.
    let later = now + crate::node::KEY_ROLLOVER + std::time::Duration::from_secs(1);
    node.housekeep(later);
    let f = frame(mac, [2, 0, 0, 0, 0, 1], 60);
    let sent = send_through_lane(&mut lane, later, &f);
    assert_eq!(sent.len(), 1);
    let session = &sent[0].1[TOKEN_LEN + 1..TOKEN_LEN + 1 + crypto::SESSION_LEN];
    assert_eq!(
        session,
        &[5; crypto::SESSION_LEN],
        "sealed in the old session"
    );
}

#[test]
fn a_sealer_shared_by_threads_never_uses_a_counter_twice() {
    let sealer = Arc::new(Sealer::new(
        &crate::crypto::Key::from_bytes([9; 32]),
        [3; 16],
    ));
    let token = Token::new(7).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let sealer = Arc::clone(&sealer);
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                (0..2000)
                    .map(|_| {
                        let range = sealer.seal(token, &mut buf, crypto::FRONT_LEN, 8).unwrap();
                        let at = range.start + TOKEN_LEN + 1 + crypto::SESSION_LEN;
                        u64::from_be_bytes(buf[at..at + 8].try_into().unwrap())
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    let mut all: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    all.sort_unstable();
    assert_eq!(all, (0..8000).collect::<Vec<u64>>());
    assert_eq!(sealer.sealed(), 8000);
}

#[test]
fn with_per_node_keys_a_peer_without_a_session_is_counted_and_handed_back_for_a_handshake() {
    use crate::identity::{IdentityConfig, SecretKey, TrustedKeys};
    let token = Token::new(7).unwrap();
    let mut config = Config::new(token);
    let mut trusted = TrustedKeys::new();
    trusted.insert(SecretKey::from_random([6; 32]).public_key(), "other");
    config.identity = Some(crate::node::IdentitySetup {
        secret: SecretKey::from_random([5; 32]),
        trusted,
        config: IdentityConfig::new(Instant::ZERO, 1, 5),
    });
    let now = Instant::from_secs(1);
    let mut node = Node::new(config, Recorder::default(), Sink, Instant::ZERO);
    let view = node.forward_view();
    assert!(view.is_sealed());
    assert_eq!(view.per_peer().map(PeerSealers::len), Some(0));

    // A verified peer with no session (it expired, say): nothing is sent to it.
    let view = ForwardView {
        peers: vec![peer(1)],
        ..view
    };
    let mut lane = Lane::new(Recorder::default(), Arc::new(view), now);
    for f in [
        frame([0xff; 6], [2, 0, 0, 0, 0, 1], 60),
        frame([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1], 60),
    ] {
        assert!(send_through_lane(&mut lane, now, &f).is_empty());
    }
    let counts = lane.take_counts();
    assert_eq!(counts.no_session, 2);
    assert_eq!(counts.wanted, vec![peer(1)], "once");
    assert_eq!(counts.stats.frames_flooded, 2);
    assert_eq!(counts.stats.datagrams_sent, 0);

    // A relay route through that peer: a frame for the far end goes nowhere, and is not
    // counted as relayed.
    let view = ForwardView {
        relays: vec![(peer(9), peer(1))],
        ..(*lane.view).clone()
    };
    let mut relaying = Lane::new(Recorder::default(), Arc::new(view), now);
    assert!(send_through_lane(
        &mut relaying,
        now,
        &frame([0xff; 6], [2, 0, 0, 0, 0, 1], 60)
    )
    .is_empty());
    let relayed = relaying.take_counts();
    assert_eq!(relayed.stats.relay_frames_sent, 0);
    assert_eq!(relayed.stats.datagrams_sent, 0);

    // The node counts them; it starts a handshake only with a peer it still has verified
    // (see the node's own test of absorb_lane): not with peer(1), which it never had.
    node.socket_mut().0.clear();
    node.absorb_lane(now, &counts);
    assert_eq!(node.sessions().map(|s| s.stats().no_session), Some(2));
    let sent = std::mem::take(&mut node.socket_mut().0);
    assert!(sent.is_empty(), "{sent:?}");

    // An empty view sends nothing at all.
    let mut lane = Lane::new(
        Recorder::default(),
        Arc::new(ForwardView::empty(token)),
        now,
    );
    let mut buf = PacketBuf::new();
    let f = frame([0xff; 6], [2, 0, 0, 0, 0, 1], 60);
    buf.frame_room()[..f.len()].copy_from_slice(&f);
    assert_eq!(
        lane.on_frame(now, &mut buf, f.len()),
        Err(DropReason::NoPeers)
    );
    assert!(lane.tx.socket.0.is_empty());
    assert_eq!(lane.take_counts().stats.drops_of(DropReason::NoPeers), 1);
}
