//! A node driven by a structured script: datagrams from a handful of addresses (right token or
//! not, any switch byte, any body), frames from the device, and time passing with housekeeping.
//! Never a panic; the tables never exceed their caps. The first byte picks the mode, modulo 3:
//! - 0: the clear protocol;
//! - 1: a network key, each datagram sealed with it (by one of a few sender sessions) first,
//!   so that the sealed modes' messages (Hello, relaying, key queries, Challenge and Echo) are
//!   reached too;
//! - 2: per-node keys, with a second node (a trusted peer, at 198.18.0.2) that has completed
//!   a handshake with this one first: each datagram is sealed in that peer's session, so what a
//!   trusted member may send (peer lists, Hello, relaying, key queries and answers) is reached
//!   with any body.
#![no_main]

use std::io;
use std::net::SocketAddr;

use ethcloud::buf::PacketBuf;
use ethcloud::crypto::{Key, Sealer, ECHO_COUNTER, FRONT_LEN, TAG_LEN};
use ethcloud::identity::{IdentityConfig, SecretKey, TrustedKeys};
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, IdentitySetup, Node};
use ethcloud::time::Instant;
use ethcloud::wire::Token;
use libfuzzer_sys::fuzz_target;

struct Null;
impl Socket for Null {
    fn send_to(&mut self, _: &[u8], _: SocketAddr) -> io::Result<()> {
        Ok(())
    }
}
impl Device for Null {
    fn write_frame(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
}

/// A socket that keeps what is sent (at most 64 datagrams; the rest are dropped), so that two
/// nodes can be introduced.
#[derive(Default)]
struct Capture(Vec<(SocketAddr, Vec<u8>)>);
impl Socket for Capture {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        if self.0.len() < 64 {
            self.0.push((to, datagram.to_vec()));
        }
        Ok(())
    }
}

/// Hands what `from` (at `from_addr`) sent to `to_addr` over to `to`; drops the rest.
fn deliver(
    from: &mut Node<Capture, Null>,
    from_addr: SocketAddr,
    to: &mut Node<Capture, Null>,
    to_addr: SocketAddr,
    now: Instant,
) {
    for (dest, mut datagram) in std::mem::take(&mut from.socket_mut().0) {
        if dest == to_addr {
            let _ = to.on_datagram(now, from_addr, &mut datagram);
        }
    }
}

/// The script's ops, each `[op, arg, len, body of len bytes (fewer at the end)]`.
fn ops(mut rest: &[u8]) -> impl Iterator<Item = (u8, u8, &[u8])> {
    std::iter::from_fn(move || {
        let [op, arg, len, tail @ ..] = rest else {
            return None;
        };
        let (body, next) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = next;
        Some((*op, *arg, body))
    })
}

/// The script's ops 2 and 3, alike in every mode: `body` as a frame from the device, or
/// `arg` tenths of a second passing, with housekeeping.
fn frame_or_time<S: Socket>(
    node: &mut Node<S, Null>,
    op: u8,
    arg: u8,
    body: &[u8],
    now: &mut Instant,
    buf: &mut PacketBuf,
) {
    if op % 4 == 2 {
        buf.frame_room()[..body.len()].copy_from_slice(body);
        let _ = node.on_frame(*now, buf, body.len());
    } else {
        *now += std::time::Duration::from_millis(u64::from(arg) * 100);
        node.housekeep(*now);
    }
}

const A: [u8; 4] = [198, 18, 0, 1];
const B: [u8; 4] = [198, 18, 0, 2];

/// The per-node-key configuration of node `n` (1 or 2), trusting both.
fn identity(config: &Config, n: u8) -> Config {
    let secret = |n: u8| SecretKey::from_random([n; 32]);
    let mut trusted = TrustedKeys::new();
    trusted.insert(secret(1).public_key(), "a");
    trusted.insert(secret(2).public_key(), "b");
    let mut config = config.clone();
    config.own_addrs = vec![SocketAddr::from((if n == 1 { A } else { B }, 3210))];
    config.identity = Some(IdentitySetup {
        secret: secret(n),
        trusted,
        config: IdentityConfig::new(Instant::ZERO, 1_700_000_000_000_000_000, u64::from(n)),
    });
    config
}

fuzz_target!(|data: &[u8]| {
    let token = Token::new(0x0102_0304).unwrap();
    let mut config = Config::new(token);
    config.max_peers = 8;
    config.max_macs = 16;
    config.max_macs_per_peer = 4;
    config.max_contacts = 8;
    config.peer_timeout = std::time::Duration::from_secs(20);
    config.mac_timeout = std::time::Duration::from_secs(10);
    config.own_addrs = vec![SocketAddr::from((A, 3210))];
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    let key = Key::from_bytes([7; 32]);
    let keyed = mode % 3 == 1;
    if mode % 3 == 2 {
        return per_node_keys(&config, rest);
    }
    if keyed {
        config.keyed = Some(ethcloud::node::Keyed {
            key: key.clone(),
            session: [1; 16],
        });
    }
    // Sender sessions of a few peers (start times 2..=5 ms, so never below the node's); the
    // even ones of this version (counters from 2^63: verified by Challenge and Echo), the odd
    // ones of an earlier one.
    let sealers: Vec<Sealer> = (2u8..6)
        .map(|i| {
            let mut session = [i; 16];
            session[..8].copy_from_slice(&u64::from(i).to_be_bytes());
            let first = if i % 2 == 0 { ECHO_COUNTER } else { 0 };
            Sealer::new(&key, session).starting_at(first)
        })
        .collect();
    let mut node = Node::new(config, Null, Null, Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut buf = PacketBuf::new();
    for (op, arg, body) in ops(rest) {
        match op % 4 {
            0 | 1 => {
                let from = SocketAddr::from(([198, 18, 0, arg % 12], 3210));
                let mut datagram = Vec::with_capacity(FRONT_LEN + 8 + body.len() + TAG_LEN);
                if keyed && op % 4 == 0 {
                    // Sealed: any switch byte up to the relay extension's last, any body.
                    datagram.resize(FRONT_LEN, 0);
                    datagram.push(arg % 0x15);
                    datagram.extend_from_slice(body);
                    datagram.resize(datagram.len() + TAG_LEN, 0);
                    let sealer = &sealers[usize::from(arg / 0x15) % sealers.len()];
                    let inner = 1 + body.len();
                    let Ok(range) = sealer.seal(token, &mut datagram, FRONT_LEN, inner) else {
                        continue;
                    };
                    let mut sealed = datagram[range].to_vec();
                    let _ = node.on_datagram(now, from, &mut sealed);
                    continue;
                }
                if op % 4 == 0 {
                    datagram.extend_from_slice(&token.to_bytes());
                    datagram.push(arg % 5);
                }
                datagram.extend_from_slice(body);
                let _ = node.on_datagram(now, from, &mut datagram);
            }
            _ => frame_or_time(&mut node, op, arg, body, &mut now, &mut buf),
        }
        assert!(node.peers().len() <= 8);
        assert!(node.switch_table().len() <= 16);
        assert!(node.contacts().len() <= 8);
    }
    node.shutdown(now);
});

/// Mode 2: node A (198.18.0.1) and its trusted peer B (198.18.0.2) complete a handshake and
/// verify each other; then the script's datagrams reach A sealed in B's session (or as they
/// are, from any of a dozen addresses), with its frames and time passing as in the other
/// modes.
fn per_node_keys(config: &Config, rest: &[u8]) {
    let (a_addr, b_addr) = (SocketAddr::from((A, 3210)), SocketAddr::from((B, 3210)));
    let node = |n| Node::new(identity(config, n), Capture::default(), Null, Instant::ZERO);
    let (mut a, mut b) = (node(1), node(2));
    let mut now = Instant::from_secs(1);
    b.add_connect(now, a_addr);
    b.housekeep(now);
    for _ in 0..6 {
        deliver(&mut b, b_addr, &mut a, a_addr, now);
        deliver(&mut a, a_addr, &mut b, b_addr, now);
    }
    assert_eq!(
        (a.peer_count(), b.peer_count()),
        (1, 1),
        "the two nodes met"
    );
    let token = config.token;
    // What B seals, A opens: a Get peer list in B's session gets A's answer. (Else every
    // sealed op below would be a forgery A drops, and the mode would fuzz nothing more.)
    a.socket_mut().0.clear();
    let mut ask = vec![0u8; FRONT_LEN + 1 + TAG_LEN];
    ask[FRONT_LEN] = 2;
    let sealed = b
        .sessions_mut()
        .and_then(|s| s.seal(now, a_addr, &mut ask, FRONT_LEN, 1).ok());
    let range = sealed.expect("B seals in its session with A");
    let _ = a.on_datagram(now, b_addr, &mut ask[range].to_vec());
    assert!(
        a.socket().0.iter().any(|(to, _)| *to == b_addr),
        "A opened B's Get peer list and answered it"
    );
    let mut buf = PacketBuf::new();
    for (op, arg, body) in ops(rest) {
        match op % 4 {
            0 => {
                // Sealed in B's session: any switch byte up to the relay extension's last.
                let mut datagram = Vec::with_capacity(FRONT_LEN + 1 + body.len() + TAG_LEN);
                datagram.resize(FRONT_LEN, 0);
                datagram.push(arg % 0x15);
                datagram.extend_from_slice(body);
                datagram.resize(datagram.len() + TAG_LEN, 0);
                let inner = 1 + body.len();
                let Some(sessions) = b.sessions_mut() else {
                    return;
                };
                if let Ok(range) = sessions.seal(now, a_addr, &mut datagram, FRONT_LEN, inner) {
                    let mut sealed = datagram[range].to_vec();
                    let _ = a.on_datagram(now, b_addr, &mut sealed);
                }
            }
            1 => {
                let from = SocketAddr::from(([198, 18, 0, arg % 12], 3210));
                let mut datagram = body.to_vec();
                if arg % 2 == 0 {
                    datagram.splice(0..0, token.to_bytes().into_iter().chain([arg % 5]));
                }
                let _ = a.on_datagram(now, from, &mut datagram);
            }
            _ => {
                frame_or_time(&mut a, op, arg, body, &mut now, &mut buf);
                if op % 4 == 3 {
                    // B keeps up its side as time passes (keep-alives, renewals, answered
                    // both ways), so that its session with A still seals after minutes of
                    // script time.
                    b.housekeep(now);
                    for _ in 0..3 {
                        deliver(&mut b, b_addr, &mut a, a_addr, now);
                        deliver(&mut a, a_addr, &mut b, b_addr, now);
                    }
                }
            }
        }
        // What else A sends is dropped (B is driven by the script only through its session).
        a.socket_mut().0.clear();
        assert!(a.peers().len() <= 8);
        assert!(a.switch_table().len() <= 16);
        assert!(a.contacts().len() <= 8);
    }
    a.shutdown(now);
}
