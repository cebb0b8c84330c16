//! A node driven by a structured script: datagrams from a handful of addresses (right token or
//! not, any switch byte, any body), frames from the device, and time passing with housekeeping.
//! Never a panic; the tables never exceed their caps. With the first byte odd the node has a
//! network key, and each datagram is sealed with it (by one of a few sender sessions) first,
//! so that the sealed modes' messages (Hello, relaying, key queries, Challenge and Echo) are
//! reached too.
#![no_main]

use std::io;
use std::net::SocketAddr;

use ethcloud::buf::PacketBuf;
use ethcloud::crypto::{Key, Sealer, ECHO_COUNTER, FRONT_LEN, TAG_LEN};
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, Node};
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

fuzz_target!(|data: &[u8]| {
    let token = Token::new(0x0102_0304).unwrap();
    let mut config = Config::new(token);
    config.max_peers = 8;
    config.max_macs = 16;
    config.max_macs_per_peer = 4;
    config.max_contacts = 8;
    config.peer_timeout = std::time::Duration::from_secs(20);
    config.mac_timeout = std::time::Duration::from_secs(10);
    config.own_addrs = vec![SocketAddr::from(([198, 18, 0, 1], 3210))];
    let Some((mode, mut rest)) = data.split_first() else {
        return;
    };
    let key = Key::from_bytes([7; 32]);
    let keyed = mode % 2 == 1;
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
    // each op: [op, arg, len, bytes...]
    while let [op, arg, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (body, next) = tail.split_at(len);
        rest = next;
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
            2 => {
                buf.frame_room()[..body.len()].copy_from_slice(body);
                let _ = node.on_frame(now, &mut buf, body.len());
            }
            _ => {
                now += std::time::Duration::from_millis(u64::from(*arg) * 100);
                node.housekeep(now);
            }
        }
        assert!(node.peers().len() <= 8);
        assert!(node.switch_table().len() <= 16);
        assert!(node.contacts().len() <= 8);
    }
    node.shutdown(now);
});
