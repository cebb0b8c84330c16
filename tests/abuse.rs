//! A forged source address cannot make a node an amplifier: an address that has not answered
//! one of our requests gets at most a small, rate-limited reply and no data; and one verified
//! by a blind forged answer (the clear protocol has no nonce) gets at most one whole peer list
//! a second, within a budget for all.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::node::{
    AMPLIFICATION_FACTOR, LIST_ANSWER_INTERVAL, LIST_ANSWER_RATE, UNVERIFIED_TIMEOUT,
};
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

#[test]
fn forged_verified_addresses_get_one_whole_list_a_second_each_and_within_the_budget_together() {
    // The seed's "get peer list" carries no nonce: whoever forges a source address can send
    // the request and then, blindly, an answer to ours, and the address is verified. What it
    // then gets in whole lists is bounded, per address and in all.
    let (mut sim, nodes) = mesh(0xa40, 40);
    let a = nodes[0];
    let token = Token::new(1).unwrap();
    let mut get = [0u8; 8];
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    let mut empty = [0u8; 10];
    let (len, _) = wire::emit_peers(token, std::iter::empty(), &mut empty).unwrap();
    let fakes: Vec<SocketAddr> = (0..1200u32)
        .map(|i| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 4000)))
        .collect();
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    for v in &fakes {
        let _ = node.on_datagram(now, *v, &mut get.clone());
        let _ = node.on_datagram(now, *v, &mut empty[..len].to_vec());
    }
    assert_eq!(
        node.peers().verified_len(),
        39 + fakes.len(),
        "forged, and verified"
    );
    // Each was sent the whole list as it was verified (it spoke first, and got only a short
    // list then): within the same budget as answers (it grows to 255 entries, 1.5 KB, as the
    // forged addresses join the list).
    let outbox = std::mem::take(&mut sim.nodes.get_mut(&a).unwrap().socket_mut().outbox);
    let short = 3 * get.len();
    let whole: usize = outbox
        .iter()
        .filter(|(_, d)| d.get(7) == Some(&1) && d.len() > short)
        .map(|(_, d)| d.len())
        .sum();
    println!(
        "{} forged addresses verified: {whole} bytes of whole lists",
        fakes.len()
    );
    assert!(whole as u64 <= LIST_ANSWER_RATE, "{whole} bytes");
    assert!(whole > 0);

    // A second later (the budget full again), every forged address asks ten times at once.
    let now = now + LIST_ANSWER_INTERVAL;
    let limited = sim.stats(a).replies_limited;
    let node = sim.nodes.get_mut(&a).unwrap();
    for v in &fakes {
        for _ in 0..10 {
            let _ = node.on_datagram(now, *v, &mut get.clone());
        }
    }
    let outbox = std::mem::take(&mut sim.nodes.get_mut(&a).unwrap().socket_mut().outbox);
    let lists: Vec<&(SocketAddr, Vec<u8>)> = outbox
        .iter()
        .filter(|(_, d)| d.get(7) == Some(&1))
        .collect();
    // Whole lists, and the empty ones (10 bytes) that answer what the budget held back.
    let (whole_lists, empty_lists): (Vec<_>, Vec<_>) =
        lists.iter().copied().partition(|(_, d)| d.len() > len);
    let bytes: usize = whole_lists.iter().map(|(_, d)| d.len()).sum();
    let mut per_address = std::collections::BTreeMap::new();
    for (to, _) in &lists {
        *per_address.entry(*to).or_insert(0) += 1;
    }
    println!(
        "{} requests from {} forged verified addresses: {} whole lists, {bytes} bytes, {} empty",
        10 * fakes.len(),
        fakes.len(),
        whole_lists.len(),
        empty_lists.len()
    );
    assert_eq!(per_address.len(), fakes.len(), "every address got a list");
    assert!(
        per_address.values().all(|n| *n == 1),
        "one list per address"
    );
    assert!(bytes as u64 <= LIST_ANSWER_RATE, "{bytes} bytes");
    assert!(whole_lists.len() < fakes.len(), "the budget held some back");
    assert!(empty_lists.iter().all(|(_, d)| d.len() == len));

    // With the budget spent, a new node that checks A (its request answering A's) still gets
    // a list, empty: that verifies A there, where holding it back would have left A
    // unverified at that node until its next keepalive, half a minute later.
    let newcomer: SocketAddr = "198.18.77.1:3210".parse().unwrap();
    let node = sim.nodes.get_mut(&a).unwrap();
    let _ = node.on_datagram(now, newcomer, &mut get.clone());
    let _ = node.on_datagram(now, newcomer, &mut empty[..len].to_vec());
    assert!(node.peers().get(newcomer).is_some_and(|p| p.is_verified));
    let _ = std::mem::take(&mut node.socket_mut().outbox);
    let _ = node.on_datagram(now, newcomer, &mut get.clone());
    let outbox = std::mem::take(&mut sim.nodes.get_mut(&a).unwrap().socket_mut().outbox);
    let answers: Vec<usize> = outbox
        .iter()
        .filter(|(to, d)| *to == newcomer && d.get(7) == Some(&1))
        .map(|(_, d)| d.len())
        .collect();
    assert_eq!(
        answers,
        [len],
        "the newcomer's check is answered, with an empty list"
    );
    assert!(sim.stats(a).replies_limited >= limited + 9 * fakes.len() as u64);
    // A second later one may ask again.
    let later = now + LIST_ANSWER_INTERVAL;
    let node = sim.nodes.get_mut(&a).unwrap();
    let _ = node.on_datagram(later, fakes[0], &mut get.clone());
    let (count, _) = queued_to(&mut sim, a, fakes[0]);
    assert!(count >= 1);
}

/// A node `a` that holds at most 8 peers and has `--connect` address `c` (not started), its
/// table filled with 8 addresses verified by forgery (request, then a blind answer).
fn full_of_forged_verified(seed: u64) -> (Simulator, SocketAddr, SocketAddr) {
    let mut sim = Simulator::new(seed);
    let mut cfg = Simulator::config();
    cfg.max_peers = 8;
    let a = sim.add_node(&cfg);
    let c = sim.next_addr();
    sim.connect(a, c);
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    for i in 0..8u8 {
        let v = SocketAddr::from(([198, 19, 7, i], 4000));
        let _ = node.on_datagram(now, v, &mut request());
        let _ = node.on_datagram(now, v, &mut empty_list());
    }
    (sim, a, c)
}

/// A "get peer list" of token 1.
fn request() -> Vec<u8> {
    let mut get = [0u8; 8];
    wire::emit_control(Token::new(1).unwrap(), Kind::GetPeers, &mut get).unwrap();
    get.to_vec()
}

/// An empty peer list of token 1.
fn empty_list() -> Vec<u8> {
    let mut empty = [0u8; 10];
    let (len, _) =
        wire::emit_peers(Token::new(1).unwrap(), std::iter::empty(), &mut empty).unwrap();
    empty[..len].to_vec()
}

#[test]
fn a_table_full_of_verified_addresses_still_takes_a_connect_address_back() {
    // A holds at most 8 peers; someone fills its table with 8 verified addresses of its own
    // (here forged: request, then a blind answer). A's `--connect` peer C must still get in.
    let (mut sim, a, c) = full_of_forged_verified(0xa41);
    let node = sim.nodes.get_mut(&a).unwrap();
    assert_eq!(node.peers().verified_len(), 8);
    node.socket_mut().outbox.clear();
    // C starts; A's attempts reach it, and its answers must find room.
    sim.add_node_at(c, &Simulator::config());
    sim.advance_until(Duration::from_secs(120), |s| s.peers_of(a).contains(&c));
    assert!(sim.peers_of(a).contains(&c));
    assert_eq!(sim.nodes[&a].peers().verified_len(), 8);
}

#[test]
fn the_room_made_for_a_connect_address_is_not_taken_by_the_next_new_address() {
    let (mut sim, a, c) = full_of_forged_verified(0xa42);
    let (get, empty) = (request(), empty_list());
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    assert_eq!(node.peers().verified_len(), 8);
    // C's request finds the table full of verified addresses: one makes room for it ...
    let _ = node.on_datagram(now, c, &mut get.clone());
    assert!(node.peers().contains(c));
    // ... and a new address right after it (as a flood sends them) does not push it out.
    let x = SocketAddr::from(([198, 19, 8, 1], 4000));
    let _ = node.on_datagram(now, x, &mut get.clone());
    assert!(
        node.peers().contains(c),
        "the next new address took C's room"
    );
    assert!(!node.peers().contains(x));
    // C answers A's question and is a peer.
    let _ = node.on_datagram(now, c, &mut empty.clone());
    assert!(node.peers().is_verified(c));
}

#[test]
fn a_forged_close_cuts_a_live_peer_off_for_a_round_trip_not_until_its_next_keepalive() {
    let (mut sim, nodes) = mesh(0xc105e, 3);
    let (a, b) = (nodes[0], nodes[1]);
    assert!(sim.peers_of(a).contains(&b));
    let mut close = [0u8; 8];
    wire::emit_control(Token::new(1).unwrap(), Kind::Close, &mut close).unwrap();
    // Someone forges B's Close to A: A removes B (the seed's rule; it cannot tell) ...
    sim.inject_datagram(b, a, close.to_vec());
    sim.step();
    assert!(!sim.peers_of(a).contains(&b), "a Close removes its sender");
    // ... and asks B, which is there and answers: a peer again within the next round trips,
    // with no timer of A's or B's run (B's next keepalive would be up to a minute away).
    sim.pass(Duration::from_millis(100));
    assert!(
        sim.peers_of(a).contains(&b),
        "B stays cut off from A after a forged Close"
    );
}

#[test]
fn a_close_from_an_unverified_address_does_not_undo_its_verification() {
    let (mut sim, nodes) = mesh(0xc105f, 2);
    let a = nodes[0];
    let token = Token::new(1).unwrap();
    let newcomer: SocketAddr = "198.18.88.1:3210".parse().unwrap();
    let (mut get, mut close, mut empty) = ([0u8; 8], [0u8; 8], [0u8; 10]);
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    wire::emit_control(token, Kind::Close, &mut close).unwrap();
    let (len, _) = wire::emit_peers(token, std::iter::empty(), &mut empty).unwrap();
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    // The newcomer asks A, which asks it back; a Close forged in between changes nothing, and
    // the newcomer's answer verifies it.
    let _ = node.on_datagram(now, newcomer, &mut get.clone());
    let _ = node.on_datagram(now, newcomer, &mut close.clone());
    assert!(node.peers().contains(newcomer), "an unverified entry stays");
    let _ = node.on_datagram(now, newcomer, &mut empty[..len].to_vec());
    assert!(
        node.peers().get(newcomer).is_some_and(|p| p.is_verified),
        "the answer no longer verifies the newcomer"
    );
}

#[test]
fn peers_that_come_and_go_do_not_keep_gossip_rounds_a_second_apart() {
    // Each second, someone forges the verification of a new address of its own and then its
    // Close: the set of verified peers does not grow, and gossip must stay at its settled pace
    // (each round sends a list to several peers), not start over every second.
    let (mut sim, nodes) = mesh(0x90551, 9);
    sim.advance(Duration::from_secs(300));
    let a = nodes[0];
    let real: std::collections::BTreeSet<SocketAddr> = nodes[1..].iter().copied().collect();
    let token = Token::new(1).unwrap();
    let (mut get, mut close, mut empty) = ([0u8; 8], [0u8; 8], [0u8; 10]);
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    wire::emit_control(token, Kind::Close, &mut close).unwrap();
    let (len, _) = wire::emit_peers(token, std::iter::empty(), &mut empty).unwrap();
    let mut now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    node.socket_mut().outbox.clear();
    let mut gossip = 0;
    for i in 0..120u16 {
        now += Duration::from_secs(1);
        let fake = SocketAddr::from(([198, 19, 9, (i % 250) as u8], 4000 + i));
        let _ = node.on_datagram(now, fake, &mut get.clone());
        let _ = node.on_datagram(now, fake, &mut empty[..len].to_vec());
        let _ = node.on_datagram(now, fake, &mut close.clone());
        node.housekeep(now);
        for (to, d) in node.socket_mut().outbox.drain(..) {
            if real.contains(&to) && d.get(7) == Some(&1) && d.len() > len {
                gossip += 1;
            }
        }
    }
    println!("lists to real peers in 120 s of churn: {gossip}");
    // Settled: a round a keepalive apart, a few lists each; the doubling rounds after the
    // first verification at most once per settled interval. A round a second sends hundreds.
    assert!(gossip <= 60, "{gossip} gossip lists to real peers in 120 s");
}

#[test]
fn a_peer_that_takes_the_place_of_one_that_left_a_while_ago_is_news_again() {
    // Settled (rounds a keepalive apart, most of them suppressed): a peer leaves, and a
    // housekeeping later another joins. The set is no larger than before, but the newcomer
    // is news: the rounds start over.
    let (mut sim, nodes) = mesh(0x90552, 9);
    sim.advance(Duration::from_secs(300));
    let a = nodes[0];
    let token = Token::new(1).unwrap();
    let (mut get, mut close, mut empty) = ([0u8; 8], [0u8; 8], [0u8; 10]);
    wire::emit_control(token, Kind::GetPeers, &mut get).unwrap();
    wire::emit_control(token, Kind::Close, &mut close).unwrap();
    let (len, _) = wire::emit_peers(token, std::iter::empty(), &mut empty).unwrap();
    let node = sim.nodes.get_mut(&a).unwrap();
    let settled = node.gossip_interval();
    assert!(settled > Duration::from_secs(8), "{settled:?}");
    let mut now = sim.now;
    let _ = node.on_datagram(now, nodes[8], &mut close.clone());
    now += Duration::from_secs(1);
    node.housekeep(now);
    let newcomer: SocketAddr = "198.18.99.1:3210".parse().unwrap();
    let _ = node.on_datagram(now, newcomer, &mut get.clone());
    let _ = node.on_datagram(now, newcomer, &mut empty[..len].to_vec());
    assert!(node.peers().is_verified(newcomer));
    assert_eq!(
        node.gossip_interval(),
        Duration::from_secs(1),
        "no fresh rounds"
    );
}

#[test]
fn more_connect_addresses_than_max_peers_do_not_push_each_other_out() {
    // `--max-peers 2 -c C1 -c C2 -c C3`: a table full of configured peers keeps the two it
    // has. Before, the third evicted the quietest to make room, which came back a second later
    // and evicted the next: the peers changed every second for good, each change forgetting
    // MACs and logging.
    let mut sim = Simulator::new(0x3a9);
    let mut cfg = Simulator::config();
    cfg.max_peers = 2;
    let a = sim.add_node(&cfg);
    let others: [SocketAddr; 3] = sim.add_nodes(&Simulator::config());
    for c in others {
        sim.connect(a, c);
    }
    sim.advance_until(Duration::from_secs(30), |s| s.peers_of(a).len() == 2);
    sim.advance(Duration::from_secs(10));
    let settled = sim.peers_of(a);
    assert_eq!(settled.len(), 2);
    for second in 0..60 {
        sim.advance(Duration::from_secs(1));
        assert_eq!(sim.peers_of(a), settled, "after {second} s more");
    }
}
