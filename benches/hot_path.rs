//! Nanoseconds per frame through the core, with in-memory socket and device that do nothing:
//! tap→UDP (unicast to a learned MAC, and a flood to 8 peers, also with 4,000 unverified
//! peers in the table) and UDP→tap. Also what each
//! pass of the busy-poll spin pays at the socket when nothing has come: one `recv_batch`
//! (a `recvmmsg`) on an empty, real UDP socket on loopback; and what a lone datagram costs
//! through the send queue (`send_to`, then `flush`: one `sendmmsg`) to a socket on loopback.
//! Last, a stats-file snapshot with the MAC table full: what the loop spends taking it, and
//! what the writer thread spends finishing it.
//!
//! Run: `cargo bench --bench hot_path`. Prints the median of 11 runs of 200 000 frames (or
//! calls) each.

use std::hint::black_box;
use std::io;
use std::net::SocketAddr;
use std::time::Instant as WallClock;

use ethcloud::buf::PacketBuf;
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, Node};
use ethcloud::sys::udp::{RecvBatch, UdpSocket};
use ethcloud::time::Instant;
use ethcloud::wire::{self, Token};

struct Sink;
impl Socket for Sink {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        black_box((datagram, to));
        Ok(())
    }
}
impl Device for Sink {
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        black_box(frame);
        Ok(())
    }
}

const FRAMES: u32 = 200_000;
const RUNS: usize = 11;

fn median_ns(mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..FRAMES {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(FRAMES)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 1400];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

fn main() {
    let token = Token::new(7).expect("small token");
    let now = Instant::from_secs(1);
    let mut node = Node::new(Config::new(token), Sink, Sink, Instant::ZERO);
    let mut get = [0u8; 8];
    wire::emit_control(token, wire::Kind::GetPeers, &mut get).expect("8 bytes");
    let peers: Vec<SocketAddr> = (1..=8)
        .map(|i| SocketAddr::from(([198, 18, 0, i], 3210)))
        .collect();
    let mut answer = [0u8; 10];
    let (answer_len, _) = wire::emit_peers(token, std::iter::empty(), &mut answer).expect("fits");
    for p in &peers {
        node.on_datagram(now, *p, &mut get.clone()).expect("valid");
        node.on_datagram(now, *p, &mut answer[..answer_len])
            .expect("valid");
    }
    let local = [2, 0, 0, 0, 0, 1];
    let remote = [2, 0, 0, 0, 0, 2];
    let mut incoming = vec![0u8; 1500];
    let len = wire::emit_frame(token, &frame(local, remote), &mut incoming).expect("fits");
    incoming.truncate(len);
    node.on_datagram(now, peers[0], &mut incoming)
        .expect("valid");

    let unicast = frame(remote, local);
    let broadcast = frame([0xff; 6], local);
    let mut buf = PacketBuf::new();

    let rx = median_ns(|| {
        let _ = node.on_datagram(now, peers[0], black_box(&mut incoming));
    });
    let tx = median_ns(|| {
        buf.frame_room()[..unicast.len()].copy_from_slice(&unicast);
        let _ = node.on_frame(now, &mut buf, unicast.len());
    });
    let flood = median_ns(|| {
        buf.frame_room()[..broadcast.len()].copy_from_slice(&broadcast);
        let _ = node.on_frame(now, &mut buf, broadcast.len());
    });
    println!("hot path, 1400-byte frames, median of {RUNS} x {FRAMES}:");
    println!("  udp -> tap (learn + deliver):        {rx:8.1} ns/frame");
    println!("  tap -> udp (unicast, incl. 1400 B copy into buffer): {tx:8.1} ns/frame");
    println!("  tap -> udp (flood to 8 peers, incl. copy):           {flood:8.1} ns/frame");

    // The same flood with the table's other 4,000 places taken by unverified addresses (anyone
    // who knows the token can send from as many): a flood goes to the 8 verified peers only,
    // and should cost about the same.
    for i in 0..4_000u32 {
        let [_, _, a, b] = i.to_be_bytes();
        let stranger = SocketAddr::from(([198, 19, a, b], 4000));
        let _ = node.on_datagram(now, stranger, &mut get.clone());
    }
    assert_eq!(node.peers().len(), 4_008, "4,000 unverified peers added");
    let crowded = median_ns(|| {
        buf.frame_room()[..broadcast.len()].copy_from_slice(&broadcast);
        let _ = node.on_frame(now, &mut buf, broadcast.len());
    });
    println!("  the same, with 4000 unverified peers in the table:   {crowded:8.1} ns/frame");
    // A "get peer list" from a new address each time (each gets a short list, and makes room
    // by pushing out the oldest unverified address once the table is full).
    let mut fresh = 0u32;
    let ask = median_ns(|| {
        fresh = fresh.wrapping_add(1);
        let [_, a, b, c] = fresh.to_be_bytes();
        let stranger = SocketAddr::from(([198, 18, 128 | (a & 0x7f), b], 1024 + u16::from(c)));
        let _ = node.on_datagram(now, stranger, black_box(&mut get.clone()));
    });
    println!("  get peer list from a new address, 4000 unverified:   {ask:8.1} ns/datagram");

    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut socket = UdpSocket::bind(loopback).expect("a UDP socket on loopback");
    let mut batch = RecvBatch::new();
    let empty = median_ns(|| {
        let _ = black_box(socket.recv_batch(&mut batch));
    });
    println!("  empty socket, one recv_batch (a busy-poll pass): {empty:8.1} ns/call");

    // A lone datagram through the send queue (a ping, a request): queued, then one sendmmsg.
    // It goes to the receiving socket itself, which is drained now and then.
    let mut sender = UdpSocket::bind(loopback).expect("a UDP socket on loopback");
    sender.enable_batching();
    let to = socket.local_addr().expect("bound");
    let datagram = [0u8; 64];
    let mut sent = 0u32;
    let lone = median_ns(|| {
        let _ = sender.send_to(black_box(&datagram), to);
        let _ = sender.flush();
        sent += 1;
        if sent % 16 == 0 {
            while socket.recv_batch(&mut batch).is_ok_and(|n| n > 0) {}
        }
    });
    println!("  one 64-byte datagram queued and flushed (sendmmsg): {lone:8.1} ns/datagram");

    // A stats-file snapshot with the MAC table full (its default cap, 65,536 entries, behind
    // one peer): what the forwarding loop spends on one, every --stats-interval.
    let header = ethcloud::status::Header {
        device: "ethcloud0".to_owned(),
        listen: SocketAddr::from(([0, 0, 0, 0], 3210)),
    };
    // (At most 4,096 entries behind one peer: 16 verified peers fill it.)
    let more: Vec<SocketAddr> = (1..=16)
        .map(|i| SocketAddr::from(([198, 18, 1, i], 3210)))
        .collect();
    for p in &more {
        node.on_datagram(now, *p, &mut get.clone()).expect("valid");
        node.on_datagram(now, *p, &mut answer[..answer_len])
            .expect("valid");
    }
    let mut macs = 0u32;
    while node.switch_table().len() < node.config().max_macs && macs < 200_000 {
        macs += 1;
        let [_, a, b, c] = macs.to_be_bytes();
        let len = wire::emit_frame(token, &frame(local, [2, 1, 0, a, b, c]), &mut incoming)
            .expect("fits");
        let behind = more[macs as usize % more.len()];
        let _ = node.on_datagram(now, behind, &mut incoming[..len]);
    }
    let entries = node.switch_table().len();
    let median_ms = |f: &mut dyn FnMut()| {
        let mut times: Vec<f64> = (0..5)
            .map(|_| {
                let start = WallClock::now();
                f();
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[2]
    };
    let take = || {
        ethcloud::status::snapshot(
            ethcloud::status::StatsFormat::Text,
            &header,
            now,
            &node,
            ethcloud::status::LoopCounters::default(),
        )
    };
    let on_loop = median_ms(&mut || {
        black_box(take());
    });
    let off_loop = median_ms(&mut || {
        black_box(take().finish());
    }) - on_loop;
    println!(
        "  stats-file snapshot, {entries} MAC entries: {on_loop:6.2} ms on the loop, {off_loop:6.2} ms more on the writer thread (medians of 5)"
    );
}
