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

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
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

#[test]
fn packet_path_makes_no_allocation_after_warm_up() {
    let token = Token::new(7).unwrap();
    let peers: Vec<SocketAddr> = (1..=8)
        .map(|i| SocketAddr::from(([198, 18, 0, i], 3210)))
        .collect();
    let mut node = Node::new(
        Config::new(token),
        NullSocket::default(),
        NullDevice::default(),
        Instant::ZERO,
    );
    let now = Instant::from_secs(1);
    let mut get = [0u8; 8];
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).unwrap();
    // each peer asks for our list, is challenged, and answers: now verified
    let mut answer = [0u8; 10];
    let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).unwrap();
    for p in &peers {
        node.on_datagram(now, *p, &get).unwrap();
        node.on_datagram(now, *p, &answer[..answer_len]).unwrap();
    }
    assert_eq!(node.peer_count(), peers.len());
    let remote_mac = [2, 0, 0, 0, 0, 2];
    let local_mac = [2, 0, 0, 0, 0, 1];
    let mut incoming = vec![0u8; 1500];
    let len = wire::emit_frame(token, &ethernet(local_mac, remote_mac), &mut incoming).unwrap();
    let incoming = &incoming[..len];
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
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    run(&mut node, 10_000);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;

    assert_eq!(allocations, 0, "allocations on the packet path");
    assert_eq!(node.device().written, 10_100);
    assert_eq!(node.stats().frames_unicast, 10_100);
    assert_eq!(node.stats().frames_flooded, 10_100);
    // per round: 1 unicast + 8 flooded
    assert_eq!(node.socket().sent - sent_before, 10_000 * 9);
}
