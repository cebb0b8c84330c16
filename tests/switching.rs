//! Switch behaviour across nodes, in the simulator: learning, flooding, VLANs, moves, Close.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::node::Config;
use ethcloud::stats::DropReason;
use sim::{frame, mac, Simulator, BROADCAST};

fn two_connected(seed: u64) -> (Simulator, SocketAddr, SocketAddr) {
    let mut sim = Simulator::new(seed);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(a, b);
    sim.advance_until(Duration::from_secs(10), |s| s.is_full_mesh());
    (sim, a, b)
}

/// Three nodes of `cfg`, b and c given a as their `--connect` address, once they are a full
/// mesh.
fn three_in_mesh(seed: u64, cfg: &Config) -> (Simulator, SocketAddr, SocketAddr, SocketAddr) {
    let mut sim = Simulator::new(seed);
    let [a, b, c] = sim.add_nodes(cfg);
    sim.connect(b, a);
    sim.connect(c, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    (sim, a, b, c)
}

#[test]
fn two_nodes_frames_cross_both_ways_verbatim() {
    let (mut sim, a, b) = two_connected(1);
    let f1 = frame(mac(2), mac(1), None, 0xaa);
    sim.inject_frame(a, &f1);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(b), vec![f1]);
    let f2 = frame(mac(1), mac(2), None, 0xbb);
    sim.inject_frame(b, &f2);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(a), vec![f2]);
}

#[test]
fn unknown_destination_floods_and_learned_goes_unicast() {
    let (mut sim, a, b, c) = three_in_mesh(2, &Simulator::config());

    // unknown destination: everyone gets it
    let to_b = frame(mac(2), mac(1), None, 1);
    sim.inject_frame(a, &to_b);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(b).len(), 1);
    assert_eq!(sim.take_frames(c).len(), 1);
    assert_eq!(sim.stats(a).frames_flooded, 1);

    // b answers: b learned mac(1) from the flood, so this is unicast; a learns mac(2)
    sim.inject_frame(b, &frame(mac(1), mac(2), None, 2));
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(a).len(), 1);
    assert!(
        sim.take_frames(c).is_empty(),
        "b learned mac(1) from the flood"
    );

    // now a → mac(2) goes to b only
    sim.inject_frame(a, &to_b);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(b).len(), 1);
    assert!(
        sim.take_frames(c).is_empty(),
        "learned destination must be unicast"
    );
    assert_eq!(sim.stats(a).frames_unicast, 1);
}

#[test]
fn broadcast_goes_to_every_peer_and_is_never_forwarded_again() {
    let mut sim = Simulator::new(3);
    let cfg = Simulator::config();
    let [a, b, c, d] = sim.add_nodes(&cfg);
    for n in [b, c, d] {
        sim.connect(n, a);
    }
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    let before: u64 = [b, c, d].iter().map(|n| sim.stats(*n).datagrams_sent).sum();
    sim.inject_frame(a, &frame(BROADCAST, mac(1), None, 3));
    sim.run_until_idle(100);
    for n in [b, c, d] {
        assert_eq!(sim.take_frames(n).len(), 1);
    }
    let after: u64 = [b, c, d].iter().map(|n| sim.stats(*n).datagrams_sent).sum();
    assert_eq!(
        before, after,
        "receivers must not re-send a frame from the network"
    );
}

#[test]
fn vlans_zero_ten_and_twenty_are_learned_apart_with_the_same_mac() {
    let (mut sim, a, b, c) = three_in_mesh(4, &Simulator::config());
    // the same MAC lives behind b on VLAN 0 and 10, behind c on VLAN 20
    for (node, vlan) in [(b, None), (b, Some(10)), (c, Some(20))] {
        sim.inject_frame(node, &frame(BROADCAST, mac(9), vlan, 0));
        sim.run_until_idle(100);
    }
    for n in [a, b, c] {
        sim.take_frames(n);
    }
    for (vlan, owner, other) in [(None, b, c), (Some(10), b, c), (Some(20), c, b)] {
        let f = frame(mac(9), mac(1), vlan, 7);
        sim.inject_frame(a, &f);
        sim.run_until_idle(100);
        assert_eq!(sim.take_frames(owner), vec![f], "vlan {vlan:?}");
        assert!(sim.take_frames(other).is_empty(), "vlan {vlan:?} leaked");
    }
    let table = sim.nodes[&a].switch_table();
    assert_eq!(table.len(), 3);
}

#[test]
fn tag_with_vlan_id_zero_stays_on_the_frame() {
    let (mut sim, a, b) = two_connected(5);
    let f = frame(mac(2), mac(1), Some(0x2000), 9); // priority 1, VID 0
    sim.inject_frame(a, &f);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(b), vec![f]);
}

#[test]
fn broadcast_and_multicast_sources_are_never_learned() {
    let (mut sim, a, b) = two_connected(6);
    sim.inject_frame(b, &frame(mac(1), BROADCAST, None, 0));
    sim.inject_frame(b, &frame(mac(1), [0x01, 0, 0x5e, 0, 0, 1], None, 0));
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(a).len(), 2, "still delivered");
    assert!(sim.nodes[&a].switch_table().is_empty());
}

#[test]
fn mac_seen_at_another_peer_moves_there_and_is_counted() {
    let (mut sim, a, b, c) = three_in_mesh(7, &Simulator::config());
    sim.inject_frame(b, &frame(BROADCAST, mac(5), None, 0));
    sim.run_until_idle(100);
    sim.inject_frame(c, &frame(BROADCAST, mac(5), None, 0));
    sim.run_until_idle(100);
    for n in [a, b, c] {
        sim.take_frames(n);
    }
    let f = frame(mac(5), mac(1), None, 1);
    sim.inject_frame(a, &f);
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(c), vec![f]);
    assert!(sim.take_frames(b).is_empty());
    assert_eq!(sim.stats(a).mac_moves, 1);
}

#[test]
fn mac_entry_expires_after_mac_timeout_on_the_fake_clock() {
    let mut cfg = Simulator::config();
    cfg.mac_timeout = Duration::from_secs(30);
    let (mut sim, a, b, c) = three_in_mesh(8, &cfg);
    sim.inject_frame(b, &frame(BROADCAST, mac(2), None, 0));
    sim.run_until_idle(100);
    assert_eq!(sim.nodes[&a].switch_table().len(), 1);
    sim.advance(Duration::from_secs(29));
    assert_eq!(sim.nodes[&a].switch_table().len(), 1, "not yet");
    sim.advance(Duration::from_secs(2));
    assert!(sim.nodes[&a].switch_table().is_empty(), "expired");
    for n in [a, b, c] {
        sim.take_frames(n);
    }
    sim.inject_frame(a, &frame(mac(2), mac(1), None, 0));
    sim.run_until_idle(100);
    assert_eq!(sim.take_frames(c).len(), 1, "unknown again: flooded");
}

#[test]
fn after_close_no_data_goes_to_the_closed_peer_even_for_its_macs() {
    let (mut sim, a, b, c) = three_in_mesh(9, &Simulator::config());
    sim.inject_frame(b, &frame(BROADCAST, mac(2), None, 0));
    sim.run_until_idle(100);
    sim.shutdown(b);
    sim.run_until_idle(100);
    assert!(!sim.peers_of(a).contains(&b));
    assert!(sim.nodes[&a].switch_table().is_empty());
    let sent_before = sim.stats(a).datagrams_sent;
    sim.inject_frame(a, &frame(mac(2), mac(1), None, 0));
    sim.run_until_idle(100);
    assert_eq!(
        sim.stats(a).datagrams_sent,
        sent_before + 1,
        "flooded to c only"
    );
    assert_eq!(sim.take_frames(c).len(), 2);
}

#[test]
fn frames_with_nowhere_to_go_or_too_short_are_counted_drops() {
    let mut sim = Simulator::new(10);
    let cfg = Simulator::config();
    let a = sim.add_node(&cfg);
    sim.inject_frame(a, &frame(BROADCAST, mac(1), None, 0));
    sim.inject_frame(a, &[0u8; 13]);
    let s = sim.stats(a);
    assert_eq!(s.drops_of(DropReason::NoPeers), 1);
    assert_eq!(s.drops_of(DropReason::BadDeviceFrame), 1);
}

#[test]
fn broadcast_limit_caps_each_source_and_counts_the_rest() {
    let mut sim = Simulator::new(11);
    let mut cfg = Simulator::config();
    cfg.broadcast_limit = Some(10);
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(10), |s| s.is_full_mesh());
    // b's device storms: b itself lets 10 through
    for _ in 0..100 {
        sim.inject_frame(b, &frame(BROADCAST, mac(2), None, 0));
    }
    sim.run_until_idle(1000);
    assert_eq!(sim.take_frames(a).len(), 10);
    assert_eq!(sim.stats(b).drops_of(DropReason::BroadcastLimit), 90);
    // unicast is never limited
    for _ in 0..100 {
        sim.inject_frame(b, &frame(mac(1), mac(2), None, 0));
    }
    sim.run_until_idle(1000);
    assert_eq!(sim.take_frames(a).len(), 100);
    // a second later the budget is back
    sim.advance(Duration::from_secs(1));
    sim.inject_frame(b, &frame(BROADCAST, mac(2), None, 0));
    sim.run_until_idle(1000);
    assert_eq!(sim.take_frames(a).len(), 1);
}

#[test]
fn broadcast_limit_applies_per_peer_on_receive() {
    let mut sim = Simulator::new(12);
    let mut limited = Simulator::config();
    limited.broadcast_limit = Some(5);
    let a = sim.add_node(&limited);
    let b = sim.add_node(&Simulator::config()); // b itself has no limit
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(10), |s| s.is_full_mesh());
    for _ in 0..50 {
        sim.inject_frame(b, &frame(BROADCAST, mac(2), None, 0));
    }
    sim.run_until_idle(1000);
    assert_eq!(sim.take_frames(a).len(), 5);
    assert_eq!(sim.stats(a).drops_of(DropReason::BroadcastLimit), 45);
}
