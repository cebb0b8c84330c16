//! Nanoseconds per 1400-byte frame through two nodes' cores, sender and receiver together
//! (tap→seal→UDP on one node, UDP→open→tap on the other), in the modes: the seed's clear
//! protocol, keyed mode (`--key-file`) and per-node keys (`--private-key`), each of the two
//! with and without `--no-aegis`, and both with AEGIS-128X4 (both ends saying that it pays,
//! whatever this CPU). Socket and device are
//! in memory; the last datagram sent is kept in a fixed buffer and handed to the other node.
//! It isolates what sealing and the session lookups cost from the kernel, which a throughput
//! benchmark on a busy machine cannot.
//!
//! Run: `cargo bench --bench sealed_path`. Prints the median of 11 runs of 100 000 frames.

use std::io;
use std::net::SocketAddr;
use std::time::Instant as WallClock;

use ethcloud::buf::PacketBuf;
use ethcloud::crypto::Key;
use ethcloud::identity::{IdentityConfig, SecretKey, TrustedKeys};
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, IdentitySetup, Keyed, Node};
use ethcloud::time::Instant;
use ethcloud::wire::Token;

/// Keeps the datagrams sent since the last `take` (a few, during set-up) or the last one.
struct Wire {
    last: Box<[u8; 2048]>,
    len: usize,
    queue: Vec<Vec<u8>>,
    keep_all: bool,
}
impl Socket for Wire {
    fn send_to(&mut self, datagram: &[u8], _to: SocketAddr) -> io::Result<()> {
        if self.keep_all {
            self.queue.push(datagram.to_vec());
        }
        self.len = datagram.len().min(2048);
        self.last[..self.len].copy_from_slice(&datagram[..self.len]);
        Ok(())
    }
}
struct Tap;
impl Device for Tap {
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        std::hint::black_box(frame);
        Ok(())
    }
}

fn wire() -> Wire {
    Wire {
        last: Box::new([0; 2048]),
        len: 0,
        queue: Vec::new(),
        keep_all: true,
    }
}

const FRAMES: u32 = 100_000;
const RUNS: usize = 11;

fn frame(dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = vec![0u8; 1400];
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f
}

fn pump(from: &mut Node<Wire, Tap>, from_addr: SocketAddr, to: &mut Node<Wire, Tap>, now: Instant) {
    for mut d in std::mem::take(&mut from.socket_mut().queue) {
        let _ = to.on_datagram(now, from_addr, &mut d);
    }
}

/// Median ns per frame from a to b (sealed by a, opened by b), after the two met.
fn measure(config: impl Fn(u8) -> Config) -> f64 {
    let a_addr = SocketAddr::from(([198, 18, 0, 1], 3210));
    let b_addr = SocketAddr::from(([198, 18, 0, 2], 3210));
    let mut a = Node::new(config(1), wire(), Tap, Instant::ZERO);
    let mut b = Node::new(config(2), wire(), Tap, Instant::ZERO);
    let now = Instant::from_secs(1);
    b.add_connect(now, a_addr);
    b.housekeep(now);
    for _ in 0..8 {
        pump(&mut b, b_addr, &mut a, now);
        pump(&mut a, a_addr, &mut b, now);
    }
    assert_eq!((a.peer_count(), b.peer_count()), (1, 1), "the nodes met");
    // A second later: the renewal the Hellos asked for (sessions move to AEGIS-128L where
    // both ends open it and this CPU has AES instructions).
    let now = Instant::from_secs(2);
    for _ in 0..4 {
        a.housekeep(now);
        b.housekeep(now);
        pump(&mut b, b_addr, &mut a, now);
        pump(&mut a, a_addr, &mut b, now);
    }
    let (ma, mb) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    // b learns a's MAC, a learns b's: unicast both ways.
    let mut buf = PacketBuf::new();
    let there = frame(mb, ma);
    buf.frame_room()[..there.len()].copy_from_slice(&there);
    let _ = a.on_frame(now, &mut buf, there.len());
    pump(&mut a, a_addr, &mut b, now);
    let back = frame(ma, mb);
    buf.frame_room()[..back.len()].copy_from_slice(&back);
    let _ = b.on_frame(now, &mut buf, back.len());
    pump(&mut b, b_addr, &mut a, now);
    a.socket_mut().keep_all = false;
    let f = frame(mb, ma);
    let mut datagram = vec![0u8; 2048];
    let mut samples: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..FRAMES {
                buf.frame_room()[..f.len()].copy_from_slice(&f);
                let _ = a.on_frame(now, &mut buf, f.len());
                let len = a.socket().len;
                datagram[..len].copy_from_slice(&a.socket().last[..len]);
                let _ = b.on_datagram(now, a_addr, &mut datagram[..len]);
            }
            start.elapsed().as_nanos() as f64 / f64::from(FRAMES)
        })
        .collect();
    assert!(
        b.stats().frames_to_device > u64::from(FRAMES),
        "frames arrived"
    );
    samples.sort_by(f64::total_cmp);
    samples[RUNS / 2]
}

fn main() {
    let token = Token::new(7).expect("small token");
    // SEALED_PATH_ONLY=identity (or identity-x4, identity-no-aegis, keyed, keyed-x4,
    // keyed-no-aegis, clear) measures
    // one mode, e.g. under perf.
    let only = std::env::var("SEALED_PATH_ONLY").unwrap_or_default();
    let wanted = |mode: &str| only.is_empty() || only == mode;
    let clear = if wanted("clear") {
        measure(|_| Config::new(token))
    } else {
        f64::NAN
    };
    let keyed_config = |n: u8, aegis: bool, x4: bool| {
        let mut c = Config::new(token);
        c.keyed = Some(Keyed {
            key: Key::from_bytes([3; 32]),
            session: [n; 16],
        });
        c.aegis = aegis;
        c.aegis_x4 = x4;
        c
    };
    let keyed = if !wanted("keyed") {
        f64::NAN
    } else {
        measure(|n| keyed_config(n, true, false))
    };
    let keyed_x4 = if !wanted("keyed-x4") {
        f64::NAN
    } else {
        measure(|n| keyed_config(n, true, true))
    };
    let keyed_gcm = if !wanted("keyed-no-aegis") {
        f64::NAN
    } else {
        measure(|n| keyed_config(n, false, false))
    };
    let mut trusted = TrustedKeys::new();
    for n in [1u8, 2] {
        trusted.insert(SecretKey::from_random([n; 32]).public_key(), "node");
    }
    let identity_config = |n: u8, aegis: bool, x4: bool| {
        let mut c = Config::new(token);
        c.identity = Some(IdentitySetup {
            secret: SecretKey::from_random([n; 32]),
            trusted: trusted.clone(),
            config: IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, u64::from(n)),
        });
        c.aegis = aegis;
        c.aegis_x4 = x4;
        c
    };
    let identity = if !wanted("identity") {
        f64::NAN
    } else {
        measure(|n| identity_config(n, true, false))
    };
    let identity_x4 = if !wanted("identity-x4") {
        f64::NAN
    } else {
        measure(|n| identity_config(n, true, true))
    };
    let identity_gcm = if !wanted("identity-no-aegis") {
        f64::NAN
    } else {
        measure(|n| identity_config(n, false, false))
    };
    println!("sealed path, 1400-byte frames, seal on one node + open on the other, median of {RUNS} x {FRAMES}:");
    println!("  clear (seed protocol):     {clear:8.1} ns/frame");
    println!(
        "  keyed (--key-file):        {keyed:8.1} ns/frame  ({:.2}x clear; {} where every peer opens AEGIS-128L)",
        keyed / clear,
        ethcloud::crypto::Cipher::preferred_for_sessions(true)
    );
    println!(
        "  keyed, AEGIS-128X4:        {keyed_x4:8.1} ns/frame  ({:.2}x clear; where every node has 512-bit vector AES)",
        keyed_x4 / clear
    );
    println!(
        "  keyed, --no-aegis:         {keyed_gcm:8.1} ns/frame  ({:.2}x clear; {})",
        keyed_gcm / clear,
        ethcloud::crypto::Cipher::preferred()
    );
    println!(
        "  per-node keys (identity):  {identity:8.1} ns/frame  ({:.2}x keyed; {} where both ends open AEGIS-128L)",
        identity / keyed,
        ethcloud::crypto::Cipher::preferred_for_sessions(true)
    );
    println!(
        "  per-node keys, AEGIS-128X4:{identity_x4:8.1} ns/frame  ({:.2}x keyed AEGIS-128X4; where both ends have 512-bit vector AES: {})",
        identity_x4 / keyed_x4,
        if ethcloud::crypto::has_vector_aes() { "this CPU has it" } else { "not this CPU" }
    );
    println!(
        "  per-node keys, --no-aegis: {identity_gcm:8.1} ns/frame  ({:.2}x keyed; {})",
        identity_gcm / keyed,
        ethcloud::crypto::Cipher::preferred_for_sessions(false)
    );
}
