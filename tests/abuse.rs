//! A forged source address cannot make a node an amplifier: an address that has not answered
//! one of our requests gets at most a small, rate-limited reply and no data.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::node::{AMPLIFICATION_FACTOR, UNVERIFIED_TIMEOUT};
use ethcloud::wire::{self, Kind, Token};
use sim::{frame, mac, Simulator, BROADCAST};

fn mesh(seed: u64, n: usize) -> (Simulator, Vec<SocketAddr>) {
    let mut sim = Simulator::new(seed);
    let cfg = Simulator::config();
    let nodes = sim.add_star(&cfg, n);
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    (sim, nodes)
}

/// Bytes `a` has queued for `to` (without delivering them).
fn queued_to(sim: &mut Simulator, a: SocketAddr, to: SocketAddr) -> (usize, usize) {
    let outbox = &mut sim.nodes.get_mut(&a).unwrap().socket_mut().outbox;
    let (mut count, mut bytes) = (0, 0);
    for (dst, datagram) in outbox.drain(..) {
        if dst == to {
            count += 1;
            bytes += datagram.len();
        }
    }
    (count, bytes)
}

#[test]
fn get_peers_burst_from_a_fresh_address_yields_at_most_three_times_one_request() {
    let (mut sim, nodes) = mesh(0xa3f, 40);
    let a = nodes[0];
    let victim: SocketAddr = "198.19.200.1:3210".parse().unwrap();
    let mut request = [0u8; 8];
    wire::emit_control(Token::new(1).unwrap(), Kind::GetPeers, &mut request).unwrap();
    let burst = 1000;
    let now = sim.now;
    for _ in 0..burst {
        let _ = sim
            .nodes
            .get_mut(&a)
            .unwrap()
            .on_datagram(now, victim, &mut request.clone());
    }
    let (count, bytes) = queued_to(&mut sim, a, victim);
    let sent = burst * request.len();
    println!(
        "burst of {burst} get-peer-list ({sent} bytes) from a fresh address to a node with 39 peers: \
         {count} replies, {bytes} bytes (ratio {:.4})",
        bytes as f64 / sent as f64
    );
    assert!(
        bytes <= AMPLIFICATION_FACTOR * request.len(),
        "{bytes} reply bytes"
    );
    assert!(count <= 2, "a short list and one request back");
    assert_eq!(sim.stats(a).replies_limited, burst as u64 - 1);
    // a verified peer asking gets the whole list
    let b = nodes[1];
    let _ = sim
        .nodes
        .get_mut(&a)
        .unwrap()
        .on_datagram(now, b, &mut request.clone());
    let (_, bytes) = queued_to(&mut sim, a, b);
    assert!(
        bytes >= 8 + 2 + 38 * 6,
        "a verified peer gets every other peer: {bytes} bytes"
    );
}

#[test]
fn forged_frames_earn_no_data_and_are_not_learned() {
    let (mut sim, nodes) = mesh(0xf0e, 3);
    let a = nodes[0];
    let forged: SocketAddr = "198.19.200.2:3210".parse().unwrap();
    let mut datagram = vec![0u8; 100];
    let f = frame(BROADCAST, mac(66), None, 1);
    let len = wire::emit_frame(Token::new(1).unwrap(), &f, &mut datagram).unwrap();
    let now = sim.now;
    for _ in 0..100 {
        let _ = sim
            .nodes
            .get_mut(&a)
            .unwrap()
            .on_datagram(now, forged, &mut datagram[..len]);
    }
    assert_eq!(sim.take_frames(a).len(), 100, "frames are still delivered");
    let (count, bytes) = queued_to(&mut sim, a, forged);
    assert_eq!((count, bytes), (1, 8), "one request back, nothing else");
    // the forged source's MAC is not learned, and floods do not go there
    sim.inject_frame(a, &frame(mac(66), mac(1), None, 2));
    let (count, _) = queued_to(&mut sim, a, forged);
    assert_eq!(count, 0);
    assert_eq!(
        sim.stats(a).frames_flooded,
        1,
        "unknown destination: flooded to real peers"
    );
    assert!(!sim.peers_of(a).contains(&forged));
    // and the unverified entry goes away
    sim.advance(UNVERIFIED_TIMEOUT + Duration::from_secs(1));
    assert!(!sim.nodes[&a].peers().contains(forged));
}
