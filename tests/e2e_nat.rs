//! NAT traversal end to end: two nodes, each behind its own Linux NAT router (nftables
//! masquerade in a router namespace), and one public node that both know. Everything is in
//! 198.18.0.0/15:
//!
//! ```text
//!   internet bridge 198.18.0.0/24
//!   ├── h1  198.18.0.1   public node P
//!   ├── h2  198.18.0.2   router R2: masquerade lan0 → eth0 ── h12 198.18.2.2  node A (-c P)
//!   └── h3  198.18.0.3   router R3: masquerade lan0 → eth0 ── h13 198.18.3.2  node B (-c P)
//! ```
//!
//! A and B learn each other's public address (the router's, port 3210 kept by masquerade)
//! from P's peer list and punch through both NATs. The direct path is shown by stopping P
//! and pinging on; NAT rebinding by flushing both routers' conntrack tables (every mapping
//! is lost at once) and timing how long until the ping gets through again, and by making
//! one router map to other ports (A's public port changes) with P still running.
//!
//! Needs root, `nft` (Debian package nftables) and `conntrack` (package conntrack);
//! `scripts/test.sh` installs them. `#[ignore]`d like every namespace test.

mod e2e;

use std::time::{Duration, Instant};

use e2e::{conntrack, must, nat_lab, ping_run, show, TestDir};

/// How long the two NATed nodes may take to find each other through the public node
/// (peer lists, then a contact attempt or two through both NATs).
const MESH: Duration = Duration::from_secs(25);
/// How long the ping between the NATed nodes may take to come back after both routers
/// lost every mapping (the next datagram each way makes new ones).
const HEAL: Duration = Duration::from_secs(20);
/// How long the ping may take to come back after a node's public port changed (its new
/// address must reach the other node: in its own datagrams or in the public node's list).
const REBIND: Duration = Duration::from_secs(30);

/// True if the `ethcloud show` text lists `peer` as verified.
fn shows_verified_peer(answer: &str, peer: &str) -> bool {
    let mut lines = answer.lines();
    while let Some(line) = lines.next() {
        if line == format!("peer: {peer}") {
            return lines.next() == Some("  state: verified");
        }
    }
    false
}

#[test]
#[ignore = "needs root + netns + nft + conntrack; .ci/run passes --include-ignored"]
fn nodes_behind_two_nats_mesh_talk_directly_without_the_public_node_and_survive_a_conntrack_flush()
{
    let (mut lab, public, a, b) = nat_lab("masquerade");
    // The nodes run as by default (the routers' NAT rules are in the routers' namespaces,
    // so the nodes have no firewall): their frames to each other go through the kernel.
    lab.kernel_path_by_default = true;
    let dir = TestDir::new("nat", "mesh");
    let sock_a = dir.path("a.sock");
    let p = public.addr_v4();

    lab.start(
        &public,
        &["-t", "7", "--control-socket", &dir.path("p.sock")],
    );
    lab.start(&a.node, &["-t", "7", "-c", &p, "--control-socket", &sock_a]);
    lab.start(
        &b.node,
        &["-t", "7", "-c", &p, "--control-socket", &dir.path("b.sock")],
    );

    // The public node sees both through their NATs, at the routers' addresses.
    lab.daemons[0].wait_log(&format!("peer {} added", a.public_addr()), MESH);
    lab.daemons[0].wait_log(&format!("peer {} added", b.public_addr()), MESH);
    // Full mesh: A and B find each other's public address in P's peer list and punch through.
    let start = Instant::now();
    let mesh = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        lab.daemons[1].wait_log(&format!("peer {} added", b.public_addr()), MESH);
        lab.daemons[2].wait_log(&format!("peer {} added", a.public_addr()), MESH);
    }));
    if mesh.is_err() {
        panic!(
            "no direct peering between the NATed nodes within {MESH:?}\nR2 conntrack:\n{}\nR3 conntrack:\n{}\nA log:\n{}\nB log:\n{}",
            conntrack(&lab, &a.router),
            conntrack(&lab, &b.router),
            lab.daemons[1].log(),
            lab.daemons[2].log()
        );
    }
    println!("full mesh through two NATs after {:?}", start.elapsed());
    let answer = show(&lab, &a.node, &sock_a);
    assert!(shows_verified_peer(&answer, &b.public_addr()), "{answer}");
    assert!(shows_verified_peer(&answer, &p), "{answer}");
    lab.assert_ping(&a.node, &b.node.overlay_v4());
    lab.assert_ping(&b.node, &a.node.overlay_v4());

    // The direct path: without the public node (ethcloud never relays), A and B go on.
    lab.daemons[0].signal(libc::SIGTERM);
    let status = lab.daemons[0].wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}");
    ping_run(
        &lab,
        &a.node,
        &b.node.overlay_v4(),
        5,
        Duration::from_secs(20),
    );
    ping_run(
        &lab,
        &b.node,
        &a.node.overlay_v4(),
        5,
        Duration::from_secs(20),
    );
    let answer = show(&lab, &a.node, &sock_a);
    assert!(shows_verified_peer(&answer, &b.public_addr()), "{answer}");
    assert!(
        !answer.contains(&format!("peer: {p}\n")),
        "P said Close:\n{answer}"
    );
    // Through both NATs, by the kernel (the NATs leave the checksum of 0 alone), once A has
    // heard a control message from B's kernel path (B's answer, or its heartbeat: within
    // about 5 s).
    let start = Instant::now();
    let mut line = String::new();
    for _ in 0..100 {
        lab.ping_once(&a.node, &b.node.overlay_v4());
        line = lab.daemons[1].stats_line();
        if e2e::field(&line, "kernel_path_sent").unwrap_or(0) > 0
            || start.elapsed() > Duration::from_secs(15)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let answer = show(&lab, &a.node, &sock_a);
    let sent = e2e::field(&line, "kernel_path_sent").unwrap_or(0);
    assert!(sent > 0, "A's kernel path sent nothing: {line}\n{answer}");
    assert!(answer.contains("\n  kernel path: on\n"), "{answer}");
    // And B's took them (else they would have reached B's daemon, and the pings passed all
    // the same).
    let b_line = lab.daemons[2].stats_line();
    let received = e2e::field(&b_line, "kernel_path_received").unwrap_or(0);
    assert!(received > 0, "B's kernel path took nothing: {b_line}");

    // NAT rebinding: both routers forget every mapping at once.
    for router in [&a.router, &b.router] {
        must(&lab, router, &["conntrack", "-F"]);
    }
    let flushed = Instant::now();
    let healed = lab.ping_within(&a.node, &b.node.overlay_v4(), HEAL)
        && lab.ping_within(
            &b.node,
            &a.node.overlay_v4(),
            HEAL.saturating_sub(flushed.elapsed()),
        );
    assert!(
        healed,
        "no ping {HEAL:?} after the conntrack flush\nR2 conntrack:\n{}\nR3 conntrack:\n{}\nA:\n{}",
        conntrack(&lab, &a.router),
        conntrack(&lab, &b.router),
        show(&lab, &a.node, &sock_a)
    );
    println!(
        "ping between the NATed nodes healed {:?} after both conntrack tables were flushed",
        flushed.elapsed()
    );
    ping_run(
        &lab,
        &a.node,
        &b.node.overlay_v4(),
        3,
        Duration::from_secs(20),
    );
}

#[test]
#[ignore = "needs root + netns + nft + conntrack; .ci/run passes --include-ignored"]
fn a_nated_node_whose_public_port_changes_is_found_again() {
    let (mut lab, public, a, b) = nat_lab("masquerade");
    let dir = TestDir::new("nat", "rebind");
    let sock_b = dir.path("b.sock");
    let p = public.addr_v4();
    lab.start(&public, &["-t", "7"]);
    lab.start(&a.node, &["-t", "7", "-c", &p]);
    lab.start(&b.node, &["-t", "7", "-c", &p, "--control-socket", &sock_b]);
    lab.daemons[1].wait_log(&format!("peer {} added", b.public_addr()), MESH);
    lab.daemons[2].wait_log(&format!("peer {} added", a.public_addr()), MESH);
    lab.assert_ping(&a.node, &b.node.overlay_v4());

    // Router 2 now maps to other ports and forgets its mappings: A's public port changes.
    must(&lab, &a.router, &["nft", "flush chain ip nat postrouting"]);
    must(
        &lab,
        &a.router,
        &[
            "nft",
            "add rule ip nat postrouting oifname eth0 meta l4proto udp masquerade to :40000-40999",
        ],
    );
    must(&lab, &a.router, &["conntrack", "-F"]);
    let changed = Instant::now();
    let healed = lab.ping_within(&a.node, &b.node.overlay_v4(), REBIND);
    let took = changed.elapsed();
    let answer = show(&lab, &b.node, &sock_b);
    assert!(
        healed,
        "no ping {REBIND:?} after A's public port changed\nR2 conntrack:\n{}\nR3 conntrack:\n{}\nB:\n{answer}",
        conntrack(&lab, &a.router),
        conntrack(&lab, &b.router),
    );
    println!("ping healed {took:?} after A's public port changed; B's view:\n{answer}");
    // B has A at its new public address, verified (through P's peer list or A's own
    // datagrams); the old address stays listed until it times out (--peer-timeout).
    let new_addr = answer
        .lines()
        .filter_map(|l| l.strip_prefix("peer: 198.18.0.2:"))
        .filter_map(|port| port.parse::<u16>().ok())
        .find(|port| (40000..=40999).contains(port));
    let new_addr = new_addr.map(|port| format!("198.18.0.2:{port}"));
    assert!(
        new_addr
            .as_deref()
            .is_some_and(|addr| shows_verified_peer(&answer, addr)),
        "{answer}"
    );
    ping_run(
        &lab,
        &b.node,
        &a.node.overlay_v4(),
        3,
        Duration::from_secs(20),
    );
}
