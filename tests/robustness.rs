//! Bad input never panics the node and is always counted: seeded random datagrams (with the
//! right token and the wrong one, every switch byte, every length up to 2 KiB) and random frames
//! from the device.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::wire::{Token, HEADER_LEN};
use sim::{Simulator, XorShift64};

#[test]
fn random_datagrams_never_panic_and_every_one_is_accounted_for() {
    for seed in [1u64, 2, 3, 0xfeed] {
        let mut sim = Simulator::new(seed);
        let cfg = Simulator::config();
        let [a, b] = sim.add_nodes(&cfg);
        sim.connect(b, a);
        sim.advance(Duration::from_secs(3));
        let token = Token::new(1).unwrap().to_bytes();
        let mut rng = XorShift64::new(seed);
        let mut bytes = vec![0u8; 2048];
        let before = sim.stats(a);
        let rounds = 20_000u64;
        let mut refused = 0u64;
        for i in 0..rounds {
            let len = rng.below(bytes.len());
            for byte in bytes.iter_mut().take(len) {
                *byte = rng.next_u64() as u8;
            }
            if i % 4 != 0 && len >= HEADER_LEN {
                bytes[..7].copy_from_slice(&token);
                bytes[7] = (rng.next_u64() % 5) as u8;
            }
            let from = SocketAddr::from(([198, 18, 1, rng.below(250) as u8], 3210));
            let now = sim.now;
            let result = sim
                .nodes
                .get_mut(&a)
                .unwrap()
                .on_datagram(now, from, &mut bytes[..len]);
            refused += u64::from(result.is_err());
            // the node's replies go nowhere in particular; keep the outbox from growing
            sim.nodes.get_mut(&a).unwrap().socket_mut().outbox.clear();
        }
        let after = sim.stats(a);
        assert_eq!(after.datagrams_received - before.datagrams_received, rounds);
        // Each datagram refused is one drop counted, no more, no fewer (a datagram taken
        // counts nothing here: what it caused, such as an answer, is not a drop).
        assert!(refused > rounds / 4, "seed {seed}: only {refused} refused");
        assert_eq!(
            after.total_drops() - before.total_drops(),
            refused,
            "seed {seed}: drops counted against datagrams refused"
        );
        // the node still works: housekeeping runs, and a real frame crosses
        sim.advance(Duration::from_secs(5));
        sim.inject_frame(b, &sim::frame([0xff; 6], sim::mac(2), None, 1));
        sim.run_until_idle(10_000);
        assert!(
            !sim.take_frames(a).is_empty(),
            "seed {seed}: node stopped forwarding"
        );
        let s = sim.stats(a);
        assert!(sim.nodes[&a].peer_count() <= 4096);
        assert!(sim.nodes[&a].contacts().len() <= 4096);
        println!("seed {seed}: {s}");
    }
}

#[test]
fn random_frames_from_the_device_never_panic() {
    let mut sim = Simulator::new(77);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance(Duration::from_secs(3));
    let mut rng = XorShift64::new(77);
    let mut frame = vec![0u8; 1600];
    for _ in 0..5_000 {
        let len = rng.below(frame.len());
        for byte in frame.iter_mut().take(len) {
            *byte = rng.next_u64() as u8;
        }
        sim.inject_frame(a, &frame[..len]);
        sim.run_until_idle(100);
    }
    let s = sim.stats(a);
    assert_eq!(s.frames_from_device, 5_000);
    assert_eq!(
        s.frames_unicast + s.frames_flooded + s.total_drops(),
        5_000,
        "every frame is sent or counted as a drop"
    );
}

#[test]
fn a_datagram_from_a_source_nothing_can_be_sent_to_is_dropped_and_counted() {
    // Linux delivers a datagram from port 0. As a peer such an address was sent questions
    // that could not go (each a send error), and flooded to for good if a forged list made it
    // verified. It is dropped as it comes, counted, and answered with nothing.
    let mut sim = Simulator::new(0xbad5);
    let a = sim.add_node(&Simulator::config());
    let mut get = [0u8; 8];
    ethcloud::wire::emit_control(
        Token::new(1).unwrap(),
        ethcloud::wire::Kind::GetPeers,
        &mut get,
    )
    .unwrap();
    let sources = [
        "198.18.9.9:0",
        "0.0.0.0:3210",
        "224.0.0.1:3210",
        "255.255.255.255:3210",
        "[ff02::1]:3210",
    ];
    let now = sim.now;
    let node = sim.nodes.get_mut(&a).unwrap();
    for from in sources {
        let from: SocketAddr = from.parse().unwrap();
        assert!(
            node.on_datagram(now, from, &mut get.clone()).is_err(),
            "{from}"
        );
    }
    assert_eq!(node.peer_count(), 0);
    assert!(node.socket_mut().outbox.is_empty());
    assert_eq!(
        sim.stats(a)
            .drops_of(ethcloud::stats::DropReason::BadSource),
        sources.len() as u64
    );
}
