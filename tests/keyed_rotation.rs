//! Key rotation in the simulator (SIGHUP with a new key file, see `ethcloud.md`): three keyed
//! nodes get a new key a few seconds apart, all within the rollover period; frames keep flowing
//! between every pair throughout, and once the old key is retired a node that still has only
//! the old key is cut off, while a fresh node with the old key is never accepted.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::crypto::{Cipher, Key};
use ethcloud::node::{Rekey, KEY_GRACE, KEY_ROLLOVER};
use sim::{frame, mac, Simulator, BROADCAST};

/// Sends one frame from each node of `nodes` to each other (node i has MAC i + 1) and returns
/// how many of them arrived at their destination, exactly once each.
fn exchange(sim: &mut Simulator, nodes: &[SocketAddr], round: u8) -> usize {
    for &n in nodes {
        sim.take_frames(n);
    }
    let mut delivered = 0;
    for (i, &from) in nodes.iter().enumerate() {
        for (j, &to) in nodes.iter().enumerate() {
            if i == j {
                continue;
            }
            let src = mac(u8::try_from(i + 1).unwrap());
            let dst = mac(u8::try_from(j + 1).unwrap());
            let payload = frame(dst, src, None, round);
            sim.inject_frame(from, &payload);
            sim.run_until_idle(100);
            let got = sim.take_frames(to);
            if got == vec![payload] {
                delivered += 1;
            }
        }
    }
    delivered
}

#[test]
fn key_rotation_keeps_frames_flowing_and_cuts_off_a_node_without_the_new_key() {
    let seed = 0x8e7;
    let mut sim = Simulator::new(seed);
    let old = Simulator::keyed_config(7);
    let [a, b, c] = sim.add_nodes(&old);
    let laggard = sim.add_node(&old); // never gets the new key
    sim.connect(b, a);
    sim.connect(c, a);
    sim.connect(laggard, a);
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    let nodes = [a, b, c, laggard];
    // Each node announces its MAC, so the frames below go unicast.
    for (i, &n) in nodes.iter().enumerate() {
        sim.inject_frame(
            n,
            &frame(BROADCAST, mac(u8::try_from(i + 1).unwrap()), None, 0),
        );
        sim.run_until_idle(100);
    }
    let rotated = [a, b, c];
    assert_eq!(exchange(&mut sim, &nodes, 0), 12, "seed {seed:#x}: before");

    let new_key = Key::from_bytes([9; 32]);
    // a at 5 s, b at 25 s, c at 45 s: all within the rollover period of each other.
    let rekey_at = [(5, a), (25, b), (45, c)];
    let last_rekey = 45;
    let retired_by = last_rekey + (KEY_ROLLOVER + KEY_GRACE).as_secs() + 2;
    let mut sent = 0;
    let mut delivered = 0;
    let mut laggard_heard_until = 0;
    for t in 1..=retired_by {
        sim.advance(Duration::from_secs(1));
        for (at, node) in rekey_at {
            if at == t {
                assert_eq!(sim.rekey(node, new_key.clone()), Rekey::Started);
                assert_eq!(sim.rekey(node, new_key.clone()), Rekey::Unchanged);
            }
        }
        let round = u8::try_from(t % 250).unwrap();
        sent += 6;
        delivered += exchange(&mut sim, &rotated, round);
        // The laggard keeps talking to a: heard until a retires the old key.
        sim.take_frames(a);
        let payload = frame(mac(1), mac(4), None, round);
        sim.inject_frame(laggard, &payload);
        sim.run_until_idle(100);
        if sim.take_frames(a) == vec![payload] {
            laggard_heard_until = t;
        }
    }
    println!(
        "{delivered} of {sent} frames between the rotated nodes delivered; the laggard was heard \
         until {laggard_heard_until} s"
    );
    assert_eq!(
        delivered, sent,
        "seed {seed:#x}: frames lost during the rotation"
    );
    for n in rotated {
        assert!(
            !sim.nodes[&n].is_rotating_key(),
            "seed {seed:#x}: rotation done"
        );
    }
    // a retires the old key R + G after its rekey (give or take a housekeeping second).
    let a_retires = 5 + (KEY_ROLLOVER + KEY_GRACE).as_secs();
    assert!(
        (a_retires - 1..=a_retires + 1).contains(&laggard_heard_until),
        "seed {seed:#x}: laggard heard until {laggard_heard_until} s, a retired at ~{a_retires} s"
    );
    let cut_off = exchange(&mut sim, &nodes, 1);
    assert_eq!(
        cut_off, 6,
        "seed {seed:#x}: only the rotated nodes' frames arrive, none to or from the laggard"
    );

    // A fresh node with the old key is never accepted, and hears nothing.
    let fresh = sim.add_node(&old);
    sim.connect(fresh, a);
    sim.connect(fresh, b);
    sim.advance(Duration::from_secs(30));
    assert!(sim.peers_of(fresh).is_empty(), "seed {seed:#x}");
    for n in rotated {
        assert!(!sim.nodes[&n].peers().contains(fresh), "seed {seed:#x}");
        sim.take_frames(n);
    }
    sim.inject_frame(fresh, &frame(BROADCAST, mac(5), None, 2));
    sim.run_until_idle(100);
    for n in rotated {
        assert!(sim.take_frames(n).is_empty(), "seed {seed:#x}");
    }
    // The rotated nodes still mesh and carry frames.
    for n in rotated {
        let peers = sim.peers_of(n);
        for m in rotated {
            assert!(m == n || peers.contains(&m), "seed {seed:#x}: {n} lost {m}");
        }
    }
    assert_eq!(exchange(&mut sim, &rotated, 3), 6, "seed {seed:#x}: after");
    // Under the new key they seal in new sessions: each asked the others for a Hello in
    // theirs, and frames go under AEGIS-128L again (on a CPU with AES).
    sim.wire_log = Some(Vec::new());
    assert_eq!(exchange(&mut sim, &rotated, 4), 6, "seed {seed:#x}: after");
    let wire = sim.wire_log.take().unwrap();
    let aegis = Cipher::preferred_for_sessions(true).marker();
    let markers: Vec<u8> = wire.iter().map(|d| d[7]).collect();
    assert!(
        markers.iter().all(|m| *m == aegis),
        "seed {seed:#x}: {markers:x?}"
    );
}

#[test]
fn rekey_without_keyed_mode_or_during_a_rotation_changes_nothing() {
    let mut sim = Simulator::new(0x8e8);
    let clear = sim.add_node(&Simulator::config());
    assert_eq!(sim.rekey(clear, Key::from_bytes([9; 32])), Rekey::NotKeyed);
    let a = sim.add_node(&Simulator::keyed_config(7));
    assert_eq!(sim.rekey(a, Key::from_bytes([7; 32])), Rekey::Unchanged);
    assert_eq!(sim.rekey(a, Key::from_bytes([9; 32])), Rekey::Started);
    assert_eq!(sim.rekey(a, Key::from_bytes([10; 32])), Rekey::Busy);
    sim.advance(KEY_ROLLOVER + Duration::from_secs(2));
    assert!(sim.nodes[&a].is_rotating_key());
    assert_eq!(sim.rekey(a, Key::from_bytes([9; 32])), Rekey::Unchanged);
    assert_eq!(sim.rekey(a, Key::from_bytes([10; 32])), Rekey::Busy);
    sim.advance(KEY_GRACE);
    assert!(!sim.nodes[&a].is_rotating_key());
    assert_eq!(sim.rekey(a, Key::from_bytes([10; 32])), Rekey::Started);
}

#[test]
fn a_key_used_before_is_refused_since_its_recordings_would_open_again() {
    let mut sim = Simulator::new(0x8e9);
    let a = sim.add_node(&Simulator::keyed_config(7));
    let rotate = |sim: &mut Simulator, byte: u8| {
        let result = sim.rekey(a, Key::from_bytes([byte; 32]));
        if result == Rekey::Started {
            sim.advance(KEY_ROLLOVER + KEY_GRACE + Duration::from_secs(2));
            assert!(!sim.nodes[&a].is_rotating_key());
        }
        result
    };
    assert_eq!(rotate(&mut sim, 9), Rekey::Started);
    // Back to the first key (its sessions were forgotten when it was retired): refused.
    assert_eq!(rotate(&mut sim, 7), Rekey::Reused);
    assert_eq!(rotate(&mut sim, 10), Rekey::Started);
    assert_eq!(rotate(&mut sim, 9), Rekey::Reused);
    assert_eq!(rotate(&mut sim, 10), Rekey::Unchanged);
}
