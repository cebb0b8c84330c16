//! Per-node identity in the simulator: nodes with their own keys that trust each other mesh and
//! carry frames over Noise IK sessions; a node nobody trusts gets no reply at all; a replayed
//! handshake is refused; sessions are renewed on the timer and old keys forgotten; a key removed
//! from the trusted set is cut off at once and cannot rejoin while the rest carries on; a flood
//! of handshake initiations is rate-limited and keeps no state.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::crypto::Cipher;
use ethcloud::identity::handshake::{self, Identity, INITIATION};
use ethcloud::identity::SecretKey;
use ethcloud::stats::DropReason;
use ethcloud::wire::Token;
use sim::{frame, mac, Simulator};

const ABC: [u8; 3] = [1, 2, 3];

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Nodes 1..=n that trust each other, in a chain (each connects to the one before).
fn chain(sim: &mut Simulator, n: u8) -> Vec<SocketAddr> {
    let all: Vec<u8> = (1..=n).collect();
    let mut addrs = Vec::new();
    for i in 1..=n {
        let a = sim.add_node(&Simulator::identity_config(i, &all));
        if let Some(prev) = addrs.last() {
            sim.connect(a, *prev);
        }
        addrs.push(a);
    }
    addrs
}

/// Nodes 1 (a) and 2 (b), trusting each other, b given a as its `--connect` address, run
/// until they are a full mesh (at most 30 simulated seconds).
fn meshed_pair(sim: &mut Simulator) -> (SocketAddr, SocketAddr) {
    let [a, b] = [1u8, 2].map(|i| sim.add_node(&Simulator::identity_config(i, &[1, 2])));
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    (a, b)
}

/// Sends one frame from `from` (mac `m`) to `to` (mac `n`) and says whether it arrived whole.
fn carries(sim: &mut Simulator, from: SocketAddr, to: SocketAddr, m: u8, n: u8) -> bool {
    let f = frame(mac(n), mac(m), None, 0);
    sim.inject_frame(from, &f);
    sim.run_until_idle(10_000);
    sim.take_frames(to).contains(&f)
}

#[test]
fn chain_of_ten_keyed_nodes_becomes_a_full_mesh_and_nothing_is_clear_on_the_wire() {
    let mut sim = Simulator::new(0x1d1);
    sim.wire_log = Some(Vec::new());
    let nodes = chain(&mut sim, 10);
    let took = sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    println!(
        "chain of 10 with per-node keys: full mesh after {} s",
        took.as_secs()
    );
    sim.assert_full_mesh();
    let mut payload = frame(mac(2), mac(1), None, 0);
    payload[14..].copy_from_slice(&[0x5a; 46]);
    sim.inject_frame(nodes[0], &payload);
    sim.run_until_idle(10_000);
    assert!(
        sim.take_frames(nodes[9]).contains(&payload),
        "flooded frame reached the far end"
    );
    let wire = sim.wire_log.take().unwrap();
    for d in &wire {
        assert!(
            matches!(d[7], 0x80 | 0x82 | 0x83 | 0x90 | 0x91),
            "every datagram is sealed or a handshake: {:#x}",
            d[7]
        );
        assert!(!contains(d, &[0x5a; 16]), "payload visible on the wire");
        // (In the sealed part: the clear front holds random session bytes and a counter,
        // which after a switch to AEGIS is 2^24 and more, 00 00 00 00 01 ..: behind a session
        // whose last byte is 02, that reads as a MAC.)
        let sealed_part = d.get(ethcloud::crypto::FRONT_LEN..).unwrap_or_default();
        assert!(!contains(sealed_part, &mac(1)), "a MAC visible on the wire");
    }
    for a in &nodes {
        let s = sim.session_stats(*a);
        assert!(s.sessions_made >= 9, "{a}: {s:?}");
        assert_eq!(
            s.handshakes_forged + s.handshakes_untrusted,
            0,
            "{a}: {s:?}"
        );
    }
}

#[test]
fn a_valid_key_that_nobody_trusts_gets_no_reply_at_all() {
    let mut sim = Simulator::new(0x1d2);
    let [a, b, c] = ABC.map(|i| sim.add_node(&Simulator::identity_config(i, &ABC)));
    // Node 4 trusts everyone, but nobody trusts it.
    let d = sim.add_node(&Simulator::identity_config(4, &[1, 2, 3, 4]));
    sim.connect(b, a);
    sim.connect(c, b);
    sim.connect(d, a);
    sim.connect(d, b);
    sim.wire_log = Some(Vec::new());
    sim.advance(Duration::from_secs(60));
    assert!(sim.is_full_mesh_among(&[a, b, c]));
    assert!(sim.peers_of(d).is_empty());
    for x in [a, b, c] {
        assert!(!sim.peers_of(x).contains(&d));
    }
    // Node 4 knows only a and b (nobody gives it a peer list): they refused it.
    for x in [a, b] {
        assert!(
            sim.session_stats(x).handshakes_untrusted > 0,
            "{x} refused 4"
        );
    }
    assert!(
        sim.traffic.get(&d).map_or(0, |t| t.datagrams()) > 0,
        "node 4 did try"
    );
    assert_eq!(sim.received_by(d), 0, "node 4 received nothing at all");
}

#[test]
fn a_replayed_initiation_is_refused_and_answered_by_nothing() {
    let mut sim = Simulator::new(0x1d3);
    let [a, b] = [1u8, 2].map(|i| sim.add_node(&Simulator::identity_config(i, &[1, 2])));
    sim.wire_log = Some(Vec::new());
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    let wire = sim.wire_log.take().unwrap();
    let initiation = wire
        .iter()
        .find(|d| d[7] == INITIATION)
        .expect("an initiation was sent")
        .clone();
    let before = sim.session_stats(a);
    let received_by_b = sim.received_by(b);
    sim.inject_datagram(b, a, initiation);
    sim.run_until_idle(100);
    let after = sim.session_stats(a);
    assert_eq!(after.handshakes_replayed, before.handshakes_replayed + 1);
    assert_eq!(
        after.responses_sent, before.responses_sent,
        "no answer to a replay"
    );
    assert_eq!(after.sessions_made, before.sessions_made);
    assert_eq!(sim.received_by(b), received_by_b);
}

#[test]
fn sessions_are_renewed_on_the_timer_and_old_traffic_cannot_be_opened_afterwards() {
    let mut sim = Simulator::new(0x1d5);
    let (a, b) = meshed_pair(&mut sim);
    let first = sim.session_id(a, 2).expect("a session with 2");
    sim.wire_log = Some(Vec::new());
    assert!(carries(&mut sim, a, b, 1, 2));
    let recorded: Vec<Vec<u8>> = sim.wire_log.take().unwrap();
    assert!(!recorded.is_empty());
    // Ten minutes with a frame every 10 s each way: every frame arrives across the renewals.
    let mut lost = 0;
    for i in 0..60 {
        sim.advance(Duration::from_secs(10));
        if !carries(&mut sim, a, b, 1, 2) || !carries(&mut sim, b, a, 2, 1) {
            lost += 1;
            println!("lost at {i}");
        }
    }
    assert_eq!(lost, 0);
    let (sa, sb) = (sim.session_stats(a), sim.session_stats(b));
    println!("after 10 min: a {sa:?}\nb {sb:?}");
    assert!(sa.rekeys + sb.rekeys >= 4, "renewed about every 2 minutes");
    let now = sim.session_id(a, 2).expect("a session with 2");
    assert_ne!(first, now, "the session changed");
    // What was recorded under the first session no longer opens: its keys are gone.
    let drops = sim.stats(b).total_drops();
    for d in recorded {
        sim.inject_datagram(a, b, d);
    }
    sim.run_until_idle(100);
    assert!(sim.stats(b).total_drops() > drops);
    assert!(
        sim.take_frames(b).is_empty(),
        "an old frame was delivered again"
    );
}

#[test]
fn a_key_removed_from_the_trusted_set_is_cut_off_at_once_and_cannot_rejoin() {
    let mut sim = Simulator::new(0x1d6);
    let all = [1u8, 2, 3, 4];
    let [a, b, c, d] = all.map(|i| sim.add_node(&Simulator::identity_config(i, &all)));
    sim.connect(b, a);
    sim.connect(c, b);
    sim.connect(d, c);
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    sim.assert_full_mesh();
    // SIGHUP on a, b and c with node 4 taken out of their trust files.
    for x in [a, b, c] {
        assert!(
            sim.set_trusted(x, &ABC) >= 1,
            "{x} dropped node 4's session"
        );
        assert!(!sim.peers_of(x).contains(&d));
    }
    // Traffic between the rest flows on, at once and later.
    assert!(carries(&mut sim, a, c, 1, 3));
    for _ in 0..30 {
        sim.advance(Duration::from_secs(10));
        for x in [a, b, c] {
            assert!(!sim.peers_of(x).contains(&d), "node 4 rejoined {x}");
        }
        assert!(carries(&mut sim, a, c, 1, 3) && carries(&mut sim, c, b, 3, 2));
    }
    assert!(sim.is_full_mesh_among(&[a, b, c]));
    assert!(
        sim.session_stats(a).handshakes_untrusted > 0,
        "node 4 kept trying"
    );
}

#[test]
fn a_flood_of_initiations_keeps_no_state_and_the_mesh_carries_on() {
    let mut sim = Simulator::new(0x1d7);
    let (a, b) = meshed_pair(&mut sim);
    // The sessions settle first: the renewal to AEGIS-128L (where this CPU has AES
    // instructions) is an answered handshake too, and not the flood's.
    let settled = Cipher::preferred_for_sessions(true);
    sim.advance_until(Duration::from_secs(30), |s| {
        s.session_cipher(a, 2) == Some(settled) && s.session_cipher(b, 1) == Some(settled)
    });
    let sessions_before = sim.node_sessions(a);
    let responses_before = sim.session_stats(a).responses_sent;
    // An untrusted key that knows a's public key: every initiation passes mac1.
    let attacker = Identity::new(SecretKey::from_random([66; 32]));
    let target = Simulator::public_key(1);
    // 100 distinct initiations (each costs the sender two DH), sent over and over.
    let initiations: Vec<Vec<u8>> = (0..100u32)
        .map(|i| {
            let mut out = [0u8; 256];
            let (_, len) = handshake::initiate(
                &attacker,
                Token::new(1).unwrap(),
                &target,
                i,
                handshake::timestamp(1 + u64::from(i)),
                // Distinct ephemeral keys (X25519 ignores the first byte's low bits).
                &[i as u8 ^ 0x80; 32],
                &mut out,
            )
            .unwrap();
            out[..len].to_vec()
        })
        .collect();
    let mut sent = 0;
    for round in 0..100u16 {
        for i in 0..1000u16 {
            let port = 1024 + (round * 7 + i) % 60000;
            let from = SocketAddr::from(([198, 18, 200, 1], port));
            sim.inject_datagram(from, a, initiations[usize::from(i % 100)].clone());
            sent += 1;
        }
        // Each initiation over the limit draws one cookie reply (to nobody here).
        sim.run_until_idle(4_000);
        if round % 10 == 9 {
            sim.tick();
        }
    }
    let s = sim.session_stats(a);
    println!("{sent} initiations: {s:?}");
    assert_eq!(s.responses_sent, responses_before, "no answer to the flood");
    assert!(s.handshakes_rate_limited > 90_000, "{s:?}");
    assert_eq!(
        s.cookies_sent, s.handshakes_rate_limited,
        "one cookie reply per initiation over the limit, no more"
    );
    assert!(
        s.handshakes_untrusted <= 20 * 10 + 20,
        "at most the per-source rate was looked at"
    );
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
    assert_eq!(
        sim.node_sessions(a),
        sessions_before,
        "no state kept for the flood"
    );
}

#[test]
fn sessions_are_renewed_after_a_message_count_too() {
    let mut sim = Simulator::new(0x1d8);
    let cfg = |i: u8| {
        let mut c = Simulator::identity_config(i, &[1, 2]);
        if let Some(id) = c.identity.as_mut() {
            id.config.rekey_after_messages = 50;
        }
        c
    };
    let [a, b] = [1u8, 2].map(|i| sim.add_node(&cfg(i)));
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    let first = sim.session_id(a, 2).expect("a session with 2");
    let rekeys = sim.session_stats(a).rekeys + sim.session_stats(b).rekeys;
    // 300 frames each way within 30 s (far less than the 120 s timer): every frame arrives.
    for _ in 0..30 {
        for _ in 0..10 {
            assert!(carries(&mut sim, a, b, 1, 2));
            assert!(carries(&mut sim, b, a, 2, 1));
        }
        sim.tick();
    }
    let renewed = sim.session_stats(a).rekeys + sim.session_stats(b).rekeys;
    println!(
        "600 frames, renewal after 50 sealed: {} renewals",
        renewed - rekeys
    );
    assert!(renewed - rekeys >= 4, "renewed by count");
    assert_ne!(sim.session_id(a, 2), Some(first));
}

/// The marker bytes of the sealed datagrams in `wire` (handshakes left out).
fn markers(wire: &[Vec<u8>]) -> std::collections::BTreeSet<u8> {
    wire.iter()
        .filter_map(|d| d.get(7).copied())
        .filter(|m| !matches!(m, 0x90 | 0x91))
        .collect()
}

#[test]
fn sessions_move_to_aegis_once_both_ends_say_they_open_it() {
    if !sim::seals_aegis_here() {
        return;
    }
    let mut sim = Simulator::new(0x1da);
    let (a, b) = meshed_pair(&mut sim);
    let took = sim.advance_until(Duration::from_secs(30), |s| {
        s.session_cipher(a, 2) == Some(Cipher::Aegis128L)
            && s.session_cipher(b, 1) == Some(Cipher::Aegis128L)
    });
    println!(
        "both directions on AEGIS-128L {} s after the mesh",
        took.as_secs()
    );
    assert_eq!(sim.session_cipher(a, 2), Some(Cipher::Aegis128L));
    assert_eq!(sim.session_cipher(b, 1), Some(Cipher::Aegis128L));
    // No renewal for it: each end switched its half of the first session once the other's
    // Hello came in it.
    let (sa, sb) = (sim.session_stats(a), sim.session_stats(b));
    assert_eq!(
        (sa.sessions_made, sb.sessions_made),
        (1, 1),
        "{sa:?} {sb:?}"
    );
    assert_eq!(
        (sa.aegis_switches, sb.aegis_switches),
        (1, 1),
        "{sa:?} {sb:?}"
    );
    sim.wire_log = Some(Vec::new());
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
    // Three minutes on: the timer renews the sessions, and each renewed one switches too.
    for _ in 0..18 {
        sim.advance(Duration::from_secs(10));
        assert!(carries(&mut sim, a, b, 1, 2));
        assert!(carries(&mut sim, b, a, 2, 1));
    }
    let (sa, sb) = (sim.session_stats(a), sim.session_stats(b));
    assert!(sa.rekeys >= 1, "{sa:?} {sb:?}");
    assert_eq!(
        (sa.aegis_switches, sb.aegis_switches),
        (1 + sa.rekeys, 1 + sb.rekeys),
        "every renewed session switched too"
    );
    assert_eq!(sim.session_cipher(a, 2), Some(Cipher::Aegis128L));
    assert_eq!(sim.session_cipher(b, 1), Some(Cipher::Aegis128L));
    // Frames went under AEGIS-128L; only the messages between a renewal's handshake and its
    // Hellos (the Hellos themselves) under AES-128-GCM.
    let wire = sim.wire_log.take().unwrap();
    let aegis = wire.iter().filter(|d| d.get(7) == Some(&0x83)).count();
    let gcm = wire.iter().filter(|d| d.get(7) == Some(&0x82)).count();
    println!("{aegis} datagrams under AEGIS-128L, {gcm} under AES-128-GCM");
    assert!(aegis >= 2 * 19, "{aegis}");
    assert!(gcm <= 4 * usize::try_from(sa.rekeys).unwrap(), "{gcm}");
    assert!(markers(&wire).is_subset(&[0x82, 0x83].into()));
}

/// Two nodes of per-node keys meshed, with `aegis_x4` as given for each.
fn pair_with_x4(seed: u64, x4: [bool; 2]) -> (Simulator, SocketAddr, SocketAddr) {
    let mut sim = Simulator::new(seed);
    let mut ca = Simulator::identity_config(1, &[1, 2]);
    let mut cb = Simulator::identity_config(2, &[1, 2]);
    ca.aegis_x4 = x4[0];
    cb.aegis_x4 = x4[1];
    let a = sim.add_node(&ca);
    let b = sim.add_node(&cb);
    sim.wire_log = Some(Vec::new());
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    (sim, a, b)
}

#[test]
fn sessions_move_to_aegis_128x4_only_where_both_ends_say_it_pays() {
    if !sim::seals_aegis_here() {
        return;
    }
    // Both say so: both halves go to AEGIS-128X4 (0x84), and frames travel under it.
    let (mut sim, a, b) = pair_with_x4(0x1e0, [true, true]);
    sim.advance_until(Duration::from_secs(30), |s| {
        s.session_cipher(a, 2) == Some(Cipher::Aegis128X4)
            && s.session_cipher(b, 1) == Some(Cipher::Aegis128X4)
    });
    assert_eq!(sim.session_cipher(a, 2), Some(Cipher::Aegis128X4));
    assert_eq!(sim.session_cipher(b, 1), Some(Cipher::Aegis128X4));
    let (sa, sb) = (sim.session_stats(a), sim.session_stats(b));
    assert_eq!((sa.aegis_switches, sb.aegis_switches), (1, 1));
    sim.wire_log = Some(Vec::new());
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
    let wire = sim.wire_log.take().unwrap();
    assert_eq!(markers(&wire), [0x84].into(), "frames under AEGIS-128X4");

    // Only one says so: AEGIS-128L both ways, never 0x84.
    for x4 in [[true, false], [false, true]] {
        let (mut sim, a, b) = pair_with_x4(0x1e1, x4);
        sim.advance_until(Duration::from_secs(30), |s| {
            s.session_cipher(a, 2) == Some(Cipher::Aegis128L)
                && s.session_cipher(b, 1) == Some(Cipher::Aegis128L)
        });
        assert_eq!(sim.session_cipher(a, 2), Some(Cipher::Aegis128L), "{x4:?}");
        assert_eq!(sim.session_cipher(b, 1), Some(Cipher::Aegis128L), "{x4:?}");
        assert!(carries(&mut sim, a, b, 1, 2));
        assert!(carries(&mut sim, b, a, 2, 1));
        let wire = sim.wire_log.take().unwrap();
        assert!(!markers(&wire).contains(&0x84), "{x4:?}");
    }
}

#[test]
fn a_node_that_does_not_say_it_opens_aegis_is_never_sent_it() {
    // Like an ethcloud from before AEGIS-128L: `--no-aegis` sends no AEGIS flag in its Hello.
    let mut sim = Simulator::new(0x1db);
    let a = sim.add_node(&Simulator::identity_config(1, &[1, 2]));
    let mut old = Simulator::identity_config(2, &[1, 2]);
    old.aegis = false;
    let b = sim.next_addr();
    sim.old_nodes.insert(b);
    sim.add_node_at(b, &old);
    sim.wire_log = Some(Vec::new());
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    sim.advance(Duration::from_secs(30));
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
    let wire = sim.wire_log.take().unwrap();
    let expected = Cipher::preferred_for_sessions(false);
    assert_eq!(
        markers(&wire),
        [expected.marker()].into(),
        "no AEGIS-128L either way"
    );
    assert_eq!(sim.session_cipher(a, 2), Some(expected));
    assert_eq!(sim.session_cipher(b, 1), Some(expected));
    let (sa, sb) = (sim.session_stats(a), sim.session_stats(b));
    assert_eq!(
        (sa.aegis_switches, sb.aegis_switches),
        (0, 0),
        "{sa:?} {sb:?}"
    );
    assert_eq!(sim.aegis_to_old, 0);
}

#[test]
fn a_peer_that_comes_back_without_aegis_is_sent_what_it_opens() {
    // What a node learnt of a peer's ciphers holds for that peer's session only: b crashes
    // and comes back at the same address and with the same key as an ethcloud that does not
    // open AEGIS-128L (an older version, or `--no-aegis`), and a must not go on with it.
    let mut sim = Simulator::new(0x1dc);
    let (a, b) = meshed_pair(&mut sim);
    sim.advance(Duration::from_secs(5));
    let aegis = Cipher::preferred_for_sessions(true);
    assert_eq!(sim.session_cipher(a, 2), Some(aegis));
    assert!(carries(&mut sim, a, b, 1, 2));
    sim.kill(b);
    let mut old = Simulator::identity_config(2, &[1, 2]);
    old.aegis = false;
    old.connect = vec![a];
    sim.old_nodes.insert(b);
    sim.add_node_at(b, &old);
    let took = sim.advance_until(Duration::from_secs(60), |s| {
        s.session_cipher(a, 2) == Some(Cipher::preferred_for_sessions(false))
    });
    println!(
        "a seals to the restarted b with its old cipher after {} s",
        took.as_secs()
    );
    // What went to b under the old session before the new one was made was lost anyway
    // (b no longer had that session); nothing under AEGIS-128L reaches it after.
    let lost = sim.aegis_to_old;
    sim.advance(Duration::from_secs(5));
    assert_eq!(
        sim.session_cipher(a, 2),
        Some(Cipher::preferred_for_sessions(false))
    );
    for _ in 0..5 {
        sim.advance(Duration::from_secs(10));
        assert!(carries(&mut sim, a, b, 1, 2));
        assert!(carries(&mut sim, b, a, 2, 1));
    }
    assert_eq!(sim.aegis_to_old, lost);
}

#[test]
fn checksums_are_left_partial_only_to_peers_that_complete_them_in_their_current_session() {
    // b's device completes checksums left partial (a tap with a virtio-net header) and says so
    // in its Hellos (flag 0x20); c's does not (a plain tap, or an older node).
    let mut sim = Simulator::new(0x1f0);
    let a = sim.add_node(&Simulator::identity_config(1, &[1, 2, 3]));
    let b = sim.add_node(&Simulator::identity_config(2, &[1, 2, 3]));
    let c = sim.next_addr();
    sim.plain_devices.insert(c);
    sim.add_node_at(c, &Simulator::identity_config(3, &[1, 2, 3]));
    assert!(!sim.leaves_partial(a, mac(2), None), "nothing known yet");
    sim.connect(b, a);
    sim.connect(c, a);
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    sim.advance(Duration::from_secs(5));
    // a learns b's and c's MACs from their frames.
    assert!(carries(&mut sim, b, a, 2, 1));
    assert!(carries(&mut sim, c, a, 3, 1));
    assert!(sim.leaves_partial(a, mac(2), None));
    assert!(
        !sim.leaves_partial(a, mac(3), None),
        "c never said it completes them"
    );
    assert!(
        !sim.leaves_partial(a, mac(9), None),
        "an unknown MAC is flooded"
    );
    assert!(
        !sim.leaves_partial(a, sim::BROADCAST, None),
        "a flood goes to c too"
    );
    assert!(!sim.leaves_partial(a, mac(2), Some(5)), "a tagged frame");
    assert!(!sim.leaves_partial(b, mac(3), None));
    assert!(carries(&mut sim, a, c, 1, 3));
    assert!(
        sim.leaves_partial(c, mac(1), None),
        "c may still leave them to a"
    );

    // Renewed sessions keep it once the peer's Hello in the new session says so again.
    sim.advance(Duration::from_secs(200));
    assert!(carries(&mut sim, b, a, 2, 1));
    assert!(sim.leaves_partial(a, mac(2), None));

    // b comes back at the same address with the same key but a plain device: the new
    // session starts without the flag, and b's Hello in it does not set it.
    sim.plain_devices.insert(b);
    sim.restart(b);
    sim.advance(Duration::from_secs(30));
    assert!(carries(&mut sim, b, a, 2, 1));
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(
        !sim.leaves_partial(a, mac(2), None),
        "b's new process does not complete them"
    );
}

#[test]
fn a_member_cannot_take_over_another_members_address() {
    let mut sim = Simulator::new(0x1d_0900);
    let nodes = chain(&mut sim, 3);
    let (a, b, m) = (nodes[0], nodes[1], nodes[2]);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, m, a, 3, 1));

    // M seals a frame for A in its own session, but sends it with B's address as its source.
    sim.inject_frame(m, &frame([0xff; 6], mac(3), None, 7));
    assert!(sim.spoof_source(m, a, None, b));
    sim.run_until_idle(10_000);
    assert_eq!(sim.session_stats(a).address_in_use, 1);
    // A still seals what it sends to B's address for B, and B still opens it.
    assert!(carries(&mut sim, a, b, 1, 2));

    // An initiation of M's key (M's own, fresh) that claims B's address: no answer, no
    // session.
    let mut out = [0u8; 256];
    let (_, len) = handshake::initiate(
        &Identity::new(SecretKey::from_random([3; 32])),
        Token::new(1).unwrap(),
        &Simulator::public_key(1),
        7,
        handshake::timestamp(1_800_000_000_000_000_000),
        &[0x33; 32],
        &mut out,
    )
    .unwrap();
    let responses = sim.session_stats(a).responses_sent;
    sim.inject_datagram(b, a, out[..len].to_vec());
    sim.run_until_idle(10_000);
    assert_eq!(sim.session_stats(a).responses_sent, responses, "answered");
    assert_eq!(sim.session_stats(a).address_in_use, 2);
    assert!(carries(&mut sim, a, b, 1, 2));
    // M from its own address is as welcome as ever.
    sim.advance(Duration::from_secs(60));
    assert!(carries(&mut sim, m, a, 3, 1));
    assert!(carries(&mut sim, a, b, 1, 2));
}

#[test]
fn a_peer_gone_for_good_is_not_sent_initiations_for_ever() {
    let mut sim = Simulator::new(0x1d_0a00);
    let (a, b) = meshed_pair(&mut sim);
    sim.kill(b);
    // A tries to renew, keeps the peer until the peer timeout (keepalives ask for a session
    // too), then lets it go.
    sim.advance(Duration::from_secs(2_000));
    assert!(!sim.peers_of(a).contains(&b));
    let sent = sim.session_stats(a).initiations_sent;
    sim.advance(Duration::from_secs(600));
    assert_eq!(
        sim.session_stats(a).initiations_sent,
        sent,
        "initiations to an address nobody answers at, on the renewal timer"
    );
}

/// Nodes 1 (a) and 2 (b) as [`meshed_pair`] makes them, but with low handshake limits, so
/// that a flood is cheap to simulate: 20 a second from all sources (and from the addresses of
/// trusted keys), 2 from one.
fn low_limit_pair(sim: &mut Simulator) -> (SocketAddr, SocketAddr) {
    let cfgs = [1u8, 2].map(|i| {
        let mut cfg = Simulator::identity_config(i, &[1, 2]);
        if let Some(identity) = cfg.identity.as_mut() {
            identity.config.handshakes_per_second = 20;
            identity.config.handshakes_per_source = 2;
        }
        cfg
    });
    let [a, b] = cfgs.each_ref().map(|cfg| sim.add_node(cfg));
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    (a, b)
}

/// An initiation to node `secret`'s key from a key nobody trusts: it passes that node's mac1.
fn attacker_initiation(secret: u8) -> Vec<u8> {
    let attacker = Identity::new(SecretKey::from_random([66; 32]));
    let mut out = [0u8; 256];
    let (_, len) = handshake::initiate(
        &attacker,
        Token::new(1).unwrap(),
        &Simulator::public_key(secret),
        1,
        handshake::timestamp(1),
        &[0x44; 32],
        &mut out,
    )
    .unwrap();
    out[..len].to_vec()
}

#[test]
fn a_flood_of_initiations_from_many_addresses_does_not_starve_the_renewals() {
    let mut sim = Simulator::new(0x1d_0b00);
    let (a, b) = low_limit_pair(&mut sim);
    let flood = [(a, attacker_initiation(1)), (b, attacker_initiation(2))];
    // At both nodes, from 40 addresses, 2 initiations each, every second: twice the limit of
    // all sources, for longer than a session lives without renewal.
    for _ in 0..300 {
        for (node, initiation) in &flood {
            for host in 0..40u8 {
                let from = SocketAddr::from(([198, 18, 201, host], 4000));
                for _ in 0..2 {
                    sim.inject_datagram(from, *node, initiation.clone());
                }
            }
        }
        sim.tick();
    }
    assert!(sim.session_stats(a).handshakes_rate_limited > 0);
    assert!(
        carries(&mut sim, a, b, 1, 2),
        "the sessions were not renewed"
    );
    assert!(carries(&mut sim, b, a, 2, 1));
}

#[test]
fn a_flood_that_forges_a_peers_own_address_does_not_starve_its_renewals() {
    let mut sim = Simulator::new(0x1d_0b80);
    let (a, b) = low_limit_pair(&mut sim);
    let made = sim.session_stats(a).sessions_made;
    // Each node gets initiations that pass its mac1 from the other's own address: 80 a
    // second, four times what that bucket takes, for longer than a session lives without
    // renewal (120 s + 60 s). The attacker never sees what is sent to the forged address.
    let flood = [
        (a, b, attacker_initiation(1)),
        (b, a, attacker_initiation(2)),
    ];
    for _ in 0..300 {
        for (node, forged, initiation) in &flood {
            for _ in 0..80 {
                sim.inject_datagram(*forged, *node, initiation.clone());
            }
        }
        sim.tick();
    }
    let s = sim.session_stats(a);
    assert!(s.handshakes_rate_limited > 10_000, "{s:?}");
    assert!(
        s.sessions_made >= made + 2,
        "the sessions were not renewed: {s:?}"
    );
    // Through cookies: the real peer, which receives at its address, came back with mac2;
    // the replies to the forged initiations reached it too, and it dropped them.
    let t = sim.session_stats(b);
    assert!(
        t.cookies_received >= 1 && s.initiations_proven >= 1,
        "{s:?} {t:?}"
    );
    assert!(t.cookies_unexpected > 10_000, "{t:?}");
    assert!(
        carries(&mut sim, a, b, 1, 2),
        "the sessions were not renewed"
    );
    assert!(carries(&mut sim, b, a, 2, 1));
}

/// A first initiation lost (sent before the other node's socket was up, as when two nodes
/// start together): the next round to that address, 5 s on or later, tries again, not only
/// once the lost one is forgotten (10 s) and a contact after that asks (15 s after the first
/// on the contact schedule, 0, 1, 3, 7, 15 s).
#[test]
fn a_lost_first_initiation_is_tried_again_at_the_next_round() {
    let mut sim = Simulator::new(0x1d_0c01);
    let [a, b] = [1u8, 2].map(|i| sim.add_node(&Simulator::identity_config(i, &[1, 2])));
    sim.lose_next(b, a, INITIATION);
    sim.connect(b, a);
    let took = sim.advance_until(Duration::from_secs(60), |s| {
        s.lost_next() && s.session_id(a, 2).is_some() && s.session_id(b, 1).is_some()
    });
    assert!(took < Duration::from_secs(10), "the session took {took:?}");
    assert!(carries(&mut sim, b, a, 2, 1));
}

#[test]
fn a_lost_response_to_a_renewal_does_not_cut_the_answering_side_off() {
    let mut sim = Simulator::new(0x1d_0c00);
    let (a, b) = meshed_pair(&mut sim);
    // B started the session and starts its renewals; A's answer to one is lost.
    sim.lose_next(a, b, handshake::RESPONSE);
    sim.advance_until(Duration::from_secs(200), |s| s.lost_next());
    // A holds the new session, B does not: A must go on sealing in the one B has.
    assert!(
        carries(&mut sim, a, b, 1, 2),
        "A sealed in a session B does not have"
    );
    assert!(carries(&mut sim, b, a, 2, 1));
    // B's next try completes the renewal, and both carry on in it.
    sim.advance(Duration::from_secs(30));
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
    sim.advance(Duration::from_secs(300));
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
}

#[test]
fn the_answering_side_of_a_renewal_sends_nothing_more_in_the_session_before_it() {
    let mut sim = Simulator::new(0x1d_0d00);
    let (a, b) = meshed_pair(&mut sim);
    // B started the session and starts its renewals; A answers them. (What A seals in carries
    // the id B receives it under.)
    let (before, a_sends_in) = (sim.session_id(a, 2).unwrap(), sim.session_id(b, 1).unwrap());
    sim.wire_log = Some(Vec::new());
    sim.advance_until(Duration::from_secs(200), |s| {
        s.session_id(a, 2).is_some_and(|id| id != before)
    });
    let wire = sim.wire_log.take().unwrap();
    let response = wire
        .iter()
        .position(|d| d.get(7) == Some(&handshake::RESPONSE))
        .expect("A answered a renewal");
    // From its response on, A seals in the new session once B's Hello confirms it; its own
    // Hello, which B's asks for, goes in the new one too (in the old one B would ignore it).
    let in_old = wire[response..]
        .iter()
        .filter(|d| d.get(8..24) == Some(&a_sends_in[..]))
        .count();
    assert_eq!(
        in_old, 0,
        "datagrams A sealed in the old session after answering"
    );
    assert!(carries(&mut sim, a, b, 1, 2));
    assert!(carries(&mut sim, b, a, 2, 1));
}

/// What a `--threads` lane of `at`, forwarding with `view`, sends for one broadcast `f`:
/// delivered by the simulator as `at`'s own datagrams. Returns the lane's counts.
fn lane_broadcast(
    sim: &mut Simulator,
    at: SocketAddr,
    view: ethcloud::lane::ForwardView,
    f: &[u8],
) -> ethcloud::lane::LaneCounts {
    use ethcloud::buf::PacketBuf;
    use ethcloud::lane::Lane;

    let recorder = sim::Recorder::default();
    let mut lane = Lane::new(recorder.clone(), std::sync::Arc::new(view), sim.now);
    let mut buf = PacketBuf::new();
    buf.frame_room()[..f.len()].copy_from_slice(f);
    lane.on_frame(sim.now, &mut buf, f.len()).unwrap();
    lane.flush();
    for (to, bytes) in std::mem::take(&mut *recorder.0.borrow_mut()) {
        sim.inject_datagram(at, to, bytes);
    }
    sim.run_until_idle(1000);
    lane.take_counts()
}

#[test]
fn a_lane_that_still_holds_the_view_from_before_the_aegis_switch_seals_with_aegis() {
    if !sim::seals_aegis_here() {
        return;
    }
    let mut sim = Simulator::new(0x1e1);
    let (a, b) = meshed_pair(&mut sim);
    sim.advance_until(Duration::from_secs(30), |s| {
        s.session_cipher(b, 1) == Some(Cipher::Aegis128L)
    });
    // On to the renewal, one datagram at a time: b's view is taken as soon as b seals in the
    // renewed session, before the Hellos switch it to AEGIS-128L.
    let first = sim.session_id(b, 1);
    let mut early = None;
    for _ in 0..100_000 {
        let renewed = sim.session_id(b, 1) != first;
        if renewed && sim.session_cipher(b, 1) == Some(Cipher::Aes128Gcm) {
            early = Some(sim.nodes[&b].forward_view());
            break;
        }
        if !sim.step() {
            sim.tick_timers();
        }
    }
    let early = early.expect("b renews its session within 100,000 steps");
    assert!(early.peers().contains(&a));
    sim.advance_until(Duration::from_secs(30), |s| {
        s.session_cipher(a, 2) == Some(Cipher::Aegis128L)
            && s.session_cipher(b, 1) == Some(Cipher::Aegis128L)
    });
    assert_eq!(sim.session_cipher(b, 1), Some(Cipher::Aegis128L));
    // a has opened AEGIS-128L in b's renewed session by now, and refuses AES-128-GCM in it:
    // what the lane seals must be AEGIS-128L too.
    assert!(carries(&mut sim, b, a, 2, 1));
    let refused = sim.stats(a).drops_of(DropReason::Unauthenticated);
    let f = frame(sim::BROADCAST, mac(2), None, 0x71);
    let counts = lane_broadcast(&mut sim, b, early, &f);
    assert_eq!(counts.stats.frames_flooded, 1);
    assert_eq!(
        sim.take_frames(a),
        vec![f],
        "a got the lane's frame ({:?})",
        sim.stats(a)
    );
    assert_eq!(sim.stats(a).drops_of(DropReason::Unauthenticated), refused);
}

#[test]
fn a_lane_that_still_holds_the_view_from_before_a_revocation_sends_the_revoked_key_nothing() {
    let mut sim = Simulator::new(0x1e2);
    let (a, b) = meshed_pair(&mut sim);
    let view = sim.nodes[&a].forward_view();
    assert_eq!(view.per_peer().map(|p| p.len()), Some(1));
    // SIGHUP on a with b's key taken out; b still trusts a.
    assert_eq!(sim.set_trusted(a, &[1]), 1);
    let f = frame(sim::BROADCAST, mac(1), None, 0x72);
    let counts = lane_broadcast(&mut sim, a, view, &f);
    assert!(
        sim.take_frames(b).is_empty(),
        "the revoked key got a frame from the lane"
    );
    assert_eq!(counts.no_session, 1, "counted as sent to no live session");
    assert_eq!(counts.stats.send_errors, 0);
}

#[test]
fn a_lost_hello_is_asked_for_again_so_sessions_still_move_to_aegis() {
    if !sim::seals_aegis_here() {
        return;
    }
    // Pairs whose sessions are made over a lossy path: a Hello lost there must not keep the
    // session off AEGIS-128L until its renewal once the path is clean again. (Asked again
    // every 5 s, up to 5 times, or a session nothing was heard in renewed 5 s after it was
    // made: AEGIS within 60 s of a clean path, half the renewal time, so that the timed
    // renewal is not what brings it. Under ETHCLOUD_SIM_SEED=16 one pair took 31 s.)
    let mut stuck = Vec::new();
    for seed in 0..12u64 {
        let mut sim = Simulator::new(0x1f00 + seed);
        let [a, b] = [1u8, 2].map(|i| sim.add_node(&Simulator::identity_config(i, &[1, 2])));
        sim.loss_per_mille = 400;
        sim.connect(b, a);
        sim.advance_until(Duration::from_secs(300), |s| {
            s.session_id(a, 2).is_some() && s.session_id(b, 1).is_some()
        });
        sim.loss_per_mille = 0;
        let aegis = |s: &Simulator| {
            [s.session_cipher(a, 2), s.session_cipher(b, 1)]
                .iter()
                .all(|c| *c == Some(Cipher::Aegis128L))
        };
        for _ in 0..60 {
            if aegis(&sim) {
                break;
            }
            sim.tick();
        }
        if !aegis(&sim) {
            stuck.push(seed);
        }
    }
    assert!(
        stuck.is_empty(),
        "sessions not on AEGIS-128L: seeds {stuck:?}"
    );
}

#[test]
fn a_lane_wanting_a_handshake_with_a_peer_that_has_a_session_by_now_starts_none() {
    // A lane's view is up to 20 ms old: it may ask for a handshake with a peer whose session
    // was made since. Started anyway, the handshake replaced the fresh session at once.
    let mut sim = Simulator::new(0x1a9e);
    let (a, b) = meshed_pair(&mut sim);
    assert!(carries(&mut sim, a, b, 1, 1));
    sim.advance(Duration::from_secs(10));
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    node.socket_mut().outbox.clear();
    let counts = ethcloud::lane::LaneCounts {
        no_session: 1,
        wanted: vec![b],
        ..Default::default()
    };
    node.absorb_lane(now, &counts);
    let to_b = node
        .socket_mut()
        .outbox
        .iter()
        .filter(|(to, _)| *to == b)
        .count();
    assert_eq!(to_b, 0, "a handshake with a peer that has a session");
}

/// The core draws no random bytes of its own: handshakes (ephemeral keys) and cookie secrets
/// come from the seed in the node's configuration, so a simulation with per-node keys runs
/// byte for byte the same from the same seeds, and another seed changes the bytes.
#[test]
fn the_same_seeds_give_the_same_bytes_on_the_wire() {
    fn run(seed_offset: u64) -> u64 {
        let mut sim = Simulator::new(0x1d_5eed);
        let all = [1u8, 2, 3];
        let mut addrs = Vec::new();
        for i in all {
            let mut cfg = Simulator::identity_config(i, &all);
            if let Some(setup) = cfg.identity.as_mut() {
                setup.config.seed = (u64::from(i) + seed_offset).into();
            }
            let a = sim.add_node(&cfg);
            if let Some(prev) = addrs.last() {
                sim.connect(a, *prev);
            }
            addrs.push(a);
        }
        sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
        sim.assert_full_mesh();
        // A renewal (new ephemeral keys) inside the run.
        sim.advance(Duration::from_secs(150));
        sim.trace_hash
    }
    assert_eq!(run(0), run(0));
    assert_ne!(run(0), run(100));
}

/// A hub (a, no `--connect`) restarts cleanly: its Close ends b's sessions with its key, so
/// b's next contact attempt starts a handshake with the new process at once. Before, b sealed
/// in the old session (which the new process cannot open) until its timer renewed it, two
/// minutes and more.
#[test]
fn a_hub_that_restarts_is_reached_again_at_once_after_its_close() {
    let mut sim = Simulator::new(0x1d_0b01);
    let (a, b) = meshed_pair(&mut sim);
    sim.advance(Duration::from_secs(5));
    sim.shutdown(a);
    sim.restart(a);
    let took = sim.advance_until(Duration::from_secs(400), |s| s.is_full_mesh());
    assert!(took <= Duration::from_secs(20), "took {took:?}");
    assert!(carries(&mut sim, b, a, 2, 1));
    assert!(carries(&mut sim, a, b, 1, 2));
}

/// The same hub crashes (no Close) and comes back at once: b hears nothing in its session for
/// a keep-alive interval and more, and renews it then, rather than on the two-minute timer;
/// the mesh is whole again well within two minutes.
#[test]
fn a_hub_that_crashes_and_restarts_is_reached_again_within_a_keepalive_or_so() {
    let mut sim = Simulator::new(0x1d_0b02);
    let (a, b) = meshed_pair(&mut sim);
    sim.advance(Duration::from_secs(5));
    sim.kill(a);
    sim.restart(a);
    let took = sim.advance_until(Duration::from_secs(400), |s| {
        s.is_full_mesh() && s.session_id(a, 2).is_some()
    });
    assert!(took <= Duration::from_secs(110), "took {took:?}");
    assert!(carries(&mut sim, b, a, 2, 1));
    assert!(carries(&mut sim, a, b, 1, 2));
}

/// A node's process restarts at a new address (b is told it, as a re-resolved name would):
/// once nothing came in b's session with that key for a keep-alive interval and more, the key
/// counts as live no more, and b's next round to the new address (at its next contact
/// attempt, up to a minute apart) probes it too. Before, it was skipped until the old session
/// ended, three minutes and more.
#[test]
fn a_node_back_at_a_new_address_is_probed_there_once_its_old_session_fell_silent() {
    let mut sim = Simulator::new(0x1d_0b03);
    let (a, b) = meshed_pair(&mut sim);
    sim.advance(Duration::from_secs(5));
    sim.kill(a);
    let a2 = sim.next_addr();
    sim.add_node_at(a2, &Simulator::identity_config(1, &[1, 2]));
    sim.connect(b, a2);
    let took = sim.advance_until(Duration::from_secs(400), |s| s.is_full_mesh_among(&[a2, b]));
    assert!(took <= Duration::from_secs(130), "took {took:?}");
    assert!(carries(&mut sim, b, a2, 2, 1));
}
