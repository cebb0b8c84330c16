//! The packet path allocates nothing: a counting global allocator sees zero allocations over
//! 10 000 frames each way (unicast, flood, and from the network) after warm-up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use ethcloud::buf::PacketBuf;
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, Node};
use ethcloud::time::Instant;
use ethcloud::wire::{self, Token};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Only the measuring thread counts, into its own counter: the test harness and other
    /// tests allocate on their own threads.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static COUNTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn count_one() {
    ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    if COUNTING.with(|c| c.get()) {
        COUNTED.with(|c| c.set(c.get() + 1));
    }
}

/// Runs `f` with this thread's allocations counted; returns how many there were.
fn allocations_in(f: impl FnOnce()) -> u64 {
    COUNTED.with(|c| c.set(0));
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    COUNTED.with(|c| c.get())
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Default)]
struct NullSocket {
    sent: u64,
}
impl Socket for NullSocket {
    fn send_to(&mut self, _datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        self.sent += 1;
        Ok(())
    }
}

#[derive(Default)]
struct NullDevice {
    written: u64,
}
impl Device for NullDevice {
    fn write_frame(&mut self, _frame: &[u8]) -> io::Result<()> {
        self.written += 1;
        Ok(())
    }
}

fn ethernet(dst: [u8; 6], src: [u8; 6]) -> [u8; 1400] {
    let mut f = [0u8; 1400];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

/// A clear-protocol node with 8 verified peers (each asked for our list, was challenged and
/// answered), at `now`.
fn node_with_8_peers(
    token: Token,
    now: Instant,
) -> (Node<NullSocket, NullDevice>, Vec<SocketAddr>) {
    let peers: Vec<SocketAddr> = (1..=8)
        .map(|i| SocketAddr::from(([198, 18, 0, i], 3210)))
        .collect();
    let mut node = Node::new(
        Config::new(token),
        NullSocket::default(),
        NullDevice::default(),
        Instant::ZERO,
    );
    let mut get = [0u8; 8];
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    let mut answer = [0u8; 10];
    let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
    for p in &peers {
        node.on_datagram(now, *p, &mut get.clone()).unwrap();
        node.on_datagram(now, *p, &mut answer[..answer_len])
            .unwrap();
    }
    assert_eq!(node.peer_count(), peers.len());
    (node, peers)
}

#[test]
fn packet_path_makes_no_allocation_after_warm_up() {
    let token = Token::new(7).unwrap();
    let now = Instant::from_secs(1);
    let (mut node, peers) = node_with_8_peers(token, now);
    let remote_mac = [2, 0, 0, 0, 0, 2];
    let local_mac = [2, 0, 0, 0, 0, 1];
    let mut incoming = vec![0u8; 1500];
    let len = wire::emit_frame(token, &ethernet(local_mac, remote_mac), &mut incoming).unwrap();
    let incoming = &mut incoming[..len];
    let unicast = ethernet(remote_mac, local_mac);
    let broadcast = ethernet([0xff; 6], local_mac);
    let mut buf = PacketBuf::new();

    let mut run = |node: &mut Node<NullSocket, NullDevice>, rounds: usize| {
        for _ in 0..rounds {
            node.on_datagram(now, peers[0], incoming).unwrap();
            buf.frame_room()[..unicast.len()].copy_from_slice(&unicast);
            node.on_frame(now, &mut buf, unicast.len()).unwrap();
            buf.frame_room()[..broadcast.len()].copy_from_slice(&broadcast);
            node.on_frame(now, &mut buf, broadcast.len()).unwrap();
        }
    };
    run(&mut node, 100); // warm-up: tables reach their steady size
    let sent_before = node.socket().sent;
    let allocations = allocations_in(|| run(&mut node, 10_000));

    assert_eq!(allocations, 0, "allocations on the packet path");
    assert_eq!(node.device().written, 10_100);
    assert_eq!(node.stats().frames_unicast, 10_100);
    assert_eq!(node.stats().frames_flooded, 10_100);
    // per round: 1 unicast + 8 flooded
    assert_eq!(node.socket().sent - sent_before, 10_000 * 9);
}

/// A MAC whose frames come from two peers in turn, each with no other entry (a node that is a
/// peer at two addresses, its floods arriving from both): every frame moves its entry from
/// one peer's list of keys to the other's, emptying one and starting the other.
#[test]
fn a_mac_moving_between_two_peers_allocates_nothing() {
    let token = Token::new(7).unwrap();
    let now = Instant::from_secs(1);
    let (mut node, peers) = node_with_8_peers(token, now);
    let mut incoming = vec![0u8; 1500];
    let len = wire::emit_frame(
        token,
        &ethernet([0xff; 6], [2, 0, 0, 0, 0, 2]),
        &mut incoming,
    )
    .unwrap();
    // (The clear protocol leaves a datagram's bytes as they came: one buffer serves all.)
    let mut run = |node: &mut Node<NullSocket, NullDevice>, rounds: usize| {
        for _ in 0..rounds {
            for peer in &peers[..2] {
                node.on_datagram(now, *peer, &mut incoming[..len]).unwrap();
            }
        }
    };
    run(&mut node, 100); // warm-up
    let moves_before = node.stats().mac_moves;
    let allocations = allocations_in(|| run(&mut node, 10_000));
    assert_eq!(node.stats().mac_moves - moves_before, 20_000);
    assert_eq!(allocations, 0, "allocations while a MAC moves");
}

/// Keeps the datagrams sent since the last `take`, in fixed slots (no allocation).
struct Capture {
    slots: Box<[[u8; 2048]; 8]>,
    lens: [usize; 8],
    count: usize,
}
impl Capture {
    fn new() -> Capture {
        Capture {
            slots: Box::new([[0; 2048]; 8]),
            lens: [0; 8],
            count: 0,
        }
    }
    /// Copies datagram `i` of the ones sent into `out`; returns its length.
    fn copy(&self, i: usize, out: &mut [u8]) -> usize {
        let len = self.lens[i];
        out[..len].copy_from_slice(&self.slots[i][..len]);
        len
    }
}
impl Socket for Capture {
    fn send_to(&mut self, datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        let slot = self.count % 8;
        let len = datagram.len().min(2048);
        self.slots[slot][..len].copy_from_slice(&datagram[..len]);
        self.lens[slot] = len;
        self.count += 1;
        Ok(())
    }
}

/// Delivers everything `from` sent since the last call to `to`.
fn deliver(
    from: &mut Node<Capture, NullDevice>,
    from_addr: SocketAddr,
    to: &mut Node<Capture, NullDevice>,
    now: Instant,
    scratch: &mut [u8],
) {
    let count = from.socket().count.min(8);
    for i in 0..count {
        let len = from.socket().copy(i, scratch);
        let _ = to.on_datagram(now, from_addr, &mut scratch[..len]);
    }
    from.socket_mut().count = 0;
}

/// The test pair's addresses: a at .1, b at .2.
fn pair_addrs() -> (SocketAddr, SocketAddr) {
    (
        SocketAddr::from(([198, 18, 0, 1], 3210)),
        SocketAddr::from(([198, 18, 0, 2], 3210)),
    )
}

/// Nodes a and b made from `config(1)` and `config(2)`, b given a as its `--connect`
/// address, after `exchanges` rounds of everything each sent delivered to the other at
/// `now`; asserts that they verified each other (`mode` names them in the message).
fn connected_pair(
    config: impl Fn(u8) -> Config,
    exchanges: usize,
    now: Instant,
    mode: &str,
) -> (Node<Capture, NullDevice>, Node<Capture, NullDevice>) {
    let (a_addr, b_addr) = pair_addrs();
    let node = |n| {
        Node::new(
            config(n),
            Capture::new(),
            NullDevice::default(),
            Instant::ZERO,
        )
    };
    let (mut a, mut b) = (node(1), node(2));
    let mut scratch = vec![0u8; 2048];
    b.add_connect(now, a_addr);
    b.housekeep(now);
    for _ in 0..exchanges {
        deliver(&mut b, b_addr, &mut a, now, &mut scratch);
        deliver(&mut a, a_addr, &mut b, now, &mut scratch);
    }
    assert_eq!(
        (a.peer_count(), b.peer_count()),
        (1, 1),
        "{mode} nodes verified each other"
    );
    (a, b)
}

/// Runs a `--threads` lane with `a`'s view (`b` its only peer): 10 100 rounds of a unicast
/// frame (`to_b`) and a broadcast, every datagram delivered to `b`. Checks that the last
/// 10 000 rounds allocate nothing and that `b` opened every datagram; returns the lane's
/// counts.
fn lane_to_b_allocates_nothing(
    a: &Node<Capture, NullDevice>,
    b: &mut Node<Capture, NullDevice>,
    a_addr: SocketAddr,
    now: Instant,
    to_b: &[u8; 1400],
    mode: &str,
) -> ethcloud::lane::LaneCounts {
    use ethcloud::lane::Lane;
    let mut lane = Lane::new(Capture::new(), std::sync::Arc::new(a.forward_view()), now);
    let broadcast = ethernet([0xff; 6], [2, 0, 0, 0, 0, 1]);
    let (mut buf, mut scratch) = (PacketBuf::new(), vec![0u8; 2048]);
    let mut round = |lane: &mut Lane<Capture>, b: &mut Node<Capture, NullDevice>| {
        for f in [to_b, &broadcast] {
            buf.frame_room()[..f.len()].copy_from_slice(f);
            lane.on_frame(now, &mut buf, f.len()).unwrap();
            lane.flush();
            // The one datagram just sent (b is a's only peer).
            let last = (lane.socket().count - 1) % 8;
            let len = lane.socket().copy(last, &mut scratch);
            b.on_datagram(now, a_addr, &mut scratch[..len]).unwrap();
        }
    };
    for _ in 0..100 {
        round(&mut lane, b);
    }
    let written = b.device().written;
    let allocations = allocations_in(|| {
        for _ in 0..10_000 {
            round(&mut lane, b);
        }
    });
    assert_eq!(allocations, 0, "allocations on a {mode} lane's packet path");
    assert_eq!(b.device().written - written, 20_000, "b opened every one");
    let counts = lane.take_counts();
    assert_eq!(counts.stats.frames_flooded, 10_100);
    counts
}

#[test]
fn keyed_packet_path_makes_no_allocation_after_warm_up() {
    use ethcloud::crypto::Key;
    use ethcloud::node::Keyed;
    let token = Token::new(7).unwrap();
    let keyed = |session: u8| {
        let mut config = Config::new(token);
        config.keyed = Some(Keyed {
            key: Key::from_bytes([3; 32]),
            session: [session; 16],
        });
        config
    };
    let (a_addr, b_addr) = pair_addrs();
    let now = Instant::from_secs(1);
    // b contacts a (its --connect address); the two verify each other by exchanging messages
    let (mut a, mut b) = connected_pair(keyed, 4, now, "keyed");
    let mut scratch = vec![0u8; 2048];
    let remote_mac = [2, 0, 0, 0, 0, 2];
    let local_mac = [2, 0, 0, 0, 0, 1];
    let from_b = ethernet(local_mac, remote_mac);
    let to_b = ethernet(remote_mac, local_mac);
    let mut buf = PacketBuf::new();
    let mut round = |a: &mut Node<Capture, NullDevice>, b: &mut Node<Capture, NullDevice>| {
        buf.frame_room()[..from_b.len()].copy_from_slice(&from_b);
        b.on_frame(now, &mut buf, from_b.len()).unwrap();
        deliver(b, b_addr, a, now, &mut scratch);
        buf.frame_room()[..to_b.len()].copy_from_slice(&to_b);
        a.on_frame(now, &mut buf, to_b.len()).unwrap();
        a.socket_mut().count = 0;
    };
    for _ in 0..100 {
        round(&mut a, &mut b);
    }
    let allocations = allocations_in(|| {
        for _ in 0..10_000 {
            round(&mut a, &mut b);
        }
    });
    assert_eq!(allocations, 0, "allocations on the keyed packet path");
    assert_eq!(a.device().written, 10_100);
    assert_eq!(a.stats().frames_unicast, 10_100);

    // A `--threads` lane of a, sealing with a's sealer: no allocation either, and b opens
    // every datagram it sends (one session with a, counters shared).
    let counts = lane_to_b_allocates_nothing(&a, &mut b, a_addr, now, &to_b, "keyed");
    assert_eq!(counts.stats.frames_unicast, 10_100);

    // A key rotation: two keys at once, then sealing with the new key in a new session.
    use ethcloud::node::{Rekey, KEY_ROLLOVER};
    let new_key = Key::from_bytes([4; 32]);
    let rekey = |node: &mut Node<Capture, NullDevice>, session: u8| {
        let next = Keyed {
            key: new_key.clone(),
            session: [session; 16],
        };
        assert_eq!(node.rekey(now, next), Rekey::Started);
    };
    rekey(&mut a, 11);
    rekey(&mut b, 12);
    for phase in ["both keys held", "sealing with the new key"] {
        for _ in 0..100 {
            round(&mut a, &mut b);
        }
        let allocations = allocations_in(|| {
            for _ in 0..1_000 {
                round(&mut a, &mut b);
            }
        });
        assert_eq!(allocations, 0, "allocations during a key rotation: {phase}");
        for node in [&mut a, &mut b] {
            node.housekeep(now + KEY_ROLLOVER);
            node.socket_mut().count = 0;
        }
    }
    assert_eq!(a.device().written, 12_300, "no frame lost in the rotation");
}

#[test]
fn identity_packet_path_makes_no_allocation_with_sessions_held() {
    identity_packet_path_makes_no_allocation(true, false);
}

#[test]
fn identity_packet_path_with_aegis_128x4_makes_no_allocation_with_sessions_held() {
    identity_packet_path_makes_no_allocation(true, true);
}

#[test]
fn identity_packet_path_with_no_aegis_makes_no_allocation_with_sessions_held() {
    identity_packet_path_makes_no_allocation(false, false);
}

/// Two per-node-key nodes, with AEGIS-128L on (both ends open it: the sessions switch once
/// the Hellos are through), AEGIS-128X4 on too (`x4`: both say it pays, whatever this CPU),
/// or off (`--no-aegis`: AES-128-GCM where the CPU has AES).
fn identity_packet_path_makes_no_allocation(aegis: bool, x4: bool) {
    use ethcloud::crypto::Cipher;
    use ethcloud::identity::{IdentityConfig, SecretKey, TrustedKeys};
    use ethcloud::node::IdentitySetup;
    let token = Token::new(7).unwrap();
    let secret = |n: u8| SecretKey::from_random([n; 32]);
    let mut trusted = TrustedKeys::new();
    trusted.insert(secret(1).public_key(), "a");
    trusted.insert(secret(2).public_key(), "b");
    let identity = |n: u8| {
        let mut config = Config::new(token);
        config.identity = Some(IdentitySetup {
            secret: secret(n),
            trusted: trusted.clone(),
            config: IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, u64::from(n)),
        });
        config.aegis = aegis;
        config.aegis_x4 = x4;
        config
    };
    let (a_addr, b_addr) = pair_addrs();
    let mut now = Instant::from_secs(1);
    // b contacts a: handshake, then the two verify each other by exchanging peer lists.
    let (mut a, mut b) = connected_pair(identity, 6, now, "per-node key");
    // The Hellos went through with the handshake and the peer lists: with AEGIS-128L on,
    // both sending halves switched to it (on a CPU with AES instructions).
    let cipher = |n: &Node<Capture, NullDevice>, peer: u8| {
        n.sessions()
            .unwrap()
            .current_cipher(&secret(peer).public_key())
    };
    let expected = match Cipher::preferred_for_sessions(aegis) {
        Cipher::Aegis128L if x4 => Cipher::Aegis128X4,
        other => other,
    };
    assert_eq!(
        (cipher(&a, 2), cipher(&b, 1)),
        (Some(expected), Some(expected))
    );
    let mut scratch = vec![0u8; 2048];
    let remote_mac = [2, 0, 0, 0, 0, 2];
    let local_mac = [2, 0, 0, 0, 0, 1];
    let from_b = ethernet(local_mac, remote_mac);
    let to_b = ethernet(remote_mac, local_mac);
    let broadcast = ethernet([0xff; 6], local_mac);
    let mut buf = PacketBuf::new();
    let mut round =
        |a: &mut Node<Capture, NullDevice>, b: &mut Node<Capture, NullDevice>, now: Instant| {
            buf.frame_room()[..from_b.len()].copy_from_slice(&from_b);
            b.on_frame(now, &mut buf, from_b.len()).unwrap();
            deliver(b, b_addr, a, now, &mut scratch);
            buf.frame_room()[..to_b.len()].copy_from_slice(&to_b);
            a.on_frame(now, &mut buf, to_b.len()).unwrap();
            // A flood: sealed once per peer, in the flood copy.
            buf.frame_room()[..broadcast.len()].copy_from_slice(&broadcast);
            a.on_frame(now, &mut buf, broadcast.len()).unwrap();
            deliver(a, a_addr, b, now, &mut scratch);
        };
    for _ in 0..100 {
        round(&mut a, &mut b, now);
    }
    let allocations = allocations_in(|| {
        for _ in 0..10_000 {
            round(&mut a, &mut b, now);
        }
    });
    assert_eq!(
        allocations, 0,
        "allocations on the per-node-key packet path"
    );
    assert_eq!(a.device().written, 10_100);
    assert_eq!(b.device().written, 2 * 10_100);

    // A `--threads` lane of a, sealing with a's session with b: no allocation either, and b
    // opens every datagram it sends.
    assert_eq!(a.forward_view().per_peer().map(|p| p.len()), Some(1));
    let counts = lane_to_b_allocates_nothing(&a, &mut b, a_addr, now, &to_b, "per-node-key");
    assert_eq!(counts.no_session, 0);

    // A renewal: the new session is current and the previous one is still held. (Traffic
    // both ways a minute in, as keep-alives bring: after a longer silence both ends would
    // renew.)
    let rekeys = a.sessions().unwrap().stats().rekeys + b.sessions().unwrap().stats().rekeys;
    let mut scratch2 = vec![0u8; 2048];
    now += std::time::Duration::from_secs(60);
    round(&mut a, &mut b, now);
    now += std::time::Duration::from_secs(61);
    for node in [&mut a, &mut b] {
        node.housekeep(now);
    }
    for _ in 0..4 {
        deliver(&mut a, a_addr, &mut b, now, &mut scratch2);
        deliver(&mut b, b_addr, &mut a, now, &mut scratch2);
    }
    let renewed = a.sessions().unwrap().stats().rekeys + b.sessions().unwrap().stats().rekeys;
    assert!(renewed > rekeys, "the session was renewed");
    assert_eq!(
        (cipher(&a, 2), cipher(&b, 1)),
        (Some(expected), Some(expected)),
        "the renewed sessions switched too"
    );
    assert_eq!(
        a.sessions().unwrap().open_sessions(),
        2,
        "current and previous held"
    );
    for _ in 0..100 {
        round(&mut a, &mut b, now);
    }
    let allocations = allocations_in(|| {
        for _ in 0..1_000 {
            round(&mut a, &mut b, now);
        }
    });
    assert_eq!(allocations, 0, "allocations after a renewal");
    assert_eq!(
        a.device().written,
        11_201,
        "no frame lost across the renewal (one of them the minute's round)"
    );
}

#[test]
fn a_lanes_packet_path_makes_no_allocation_after_warm_up() {
    use ethcloud::lane::Lane;
    use std::sync::Arc;

    let token = Token::new(7).unwrap();
    let now = Instant::from_secs(1);
    let (mut node, peers) = node_with_8_peers(token, now);
    let remote_mac = [2, 0, 0, 0, 0, 2];
    let local_mac = [2, 0, 0, 0, 0, 1];
    let mut incoming = vec![0u8; 1500];
    let len = wire::emit_frame(token, &ethernet(local_mac, remote_mac), &mut incoming).unwrap();
    node.on_datagram(now, peers[0], &mut incoming[..len])
        .unwrap();
    let view = Arc::new(node.forward_view());
    let mut lane = Lane::new(NullSocket::default(), view, now);
    let unicast = ethernet(remote_mac, local_mac);
    let broadcast = ethernet([0xff; 6], local_mac);
    let mut buf = PacketBuf::new();

    let mut run = |lane: &mut Lane<NullSocket>, rounds: usize| {
        for _ in 0..rounds {
            buf.frame_room()[..unicast.len()].copy_from_slice(&unicast);
            lane.on_frame(now, &mut buf, unicast.len()).unwrap();
            buf.frame_room()[..broadcast.len()].copy_from_slice(&broadcast);
            lane.on_frame(now, &mut buf, broadcast.len()).unwrap();
            lane.flush();
        }
    };
    run(&mut lane, 100);
    let sent_before = lane.socket().sent;
    let allocations = allocations_in(|| run(&mut lane, 10_000));

    assert_eq!(allocations, 0, "allocations on a lane's packet path");
    // per round: 1 unicast + 8 flooded
    assert_eq!(lane.socket().sent - sent_before, 10_000 * 9);
    let counts = lane.take_counts();
    assert_eq!(counts.stats.frames_unicast, 10_100);
    assert_eq!(counts.stats.frames_flooded, 10_100);
}
