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

use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use e2e::{ip, Host, Lab, ETHCLOUD};

/// How long the two NATed nodes may take to find each other through the public node
/// (peer lists, then a contact attempt or two through both NATs).
const MESH: Duration = Duration::from_secs(25);
/// How long the ping between the NATed nodes may take to come back after both routers
/// lost every mapping (the next datagram each way makes new ones).
const HEAL: Duration = Duration::from_secs(20);
/// How long the ping may take to come back after a node's public port changed (its new
/// address must reach the other node: in its own datagrams or in the public node's list).
const REBIND: Duration = Duration::from_secs(30);

/// One site behind a NAT: its router (a lab host on the internet bridge) and the node
/// behind it.
struct Site {
    router: Host,
    node: Host,
}

impl Site {
    /// The node's address as the internet sees it: the router's, port 3210 (masquerade keeps
    /// the port when it is free).
    fn public_addr(&self) -> String {
        self.router.addr_v4()
    }
}

/// Runs `command` in `host`'s namespace and asserts that it succeeds.
fn must(lab: &Lab, host: &Host, command: &[&str]) -> Output {
    let out = lab.run(host, command, Duration::from_secs(20));
    assert!(
        out.status.success(),
        "{command:?} in {} failed: {}{}",
        host.ns,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Turns lab host `router_index` into a masquerading router for a new LAN
/// 198.18.`router_index`.0/24 with one node, 198.18.`router_index`.2, behind it.
fn nat_site(lab: &mut Lab, router_index: u8) -> Site {
    let router = lab.host(router_index);
    let index = 10 + router_index;
    let ns = lab.extra_namespace(&format!("h{index}"));
    let node = Host { index, ns };
    let lan = format!("198.18.{router_index}");
    ip(&[
        "-n", &router.ns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns",
        &node.ns,
    ]);
    ip(&[
        "-n",
        &router.ns,
        "addr",
        "add",
        &format!("{lan}.1/24"),
        "dev",
        "lan0",
    ]);
    ip(&["-n", &router.ns, "link", "set", "lan0", "up"]);
    ip(&[
        "-n",
        &node.ns,
        "addr",
        "add",
        &format!("{lan}.2/24"),
        "dev",
        "eth0",
    ]);
    ip(&["-n", &node.ns, "link", "set", "eth0", "up"]);
    ip(&[
        "-n",
        &node.ns,
        "route",
        "add",
        "default",
        "via",
        &format!("{lan}.1"),
    ]);
    must(lab, &router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    must(lab, &router, &["nft", "add table ip nat"]);
    must(
        lab,
        &router,
        &[
            "nft",
            "add chain ip nat postrouting { type nat hook postrouting priority srcnat ; }",
        ],
    );
    must(
        lab,
        &router,
        &["nft", "add rule ip nat postrouting oifname eth0 masquerade"],
    );
    // The router's own stateful firewall, as on any home router: nothing unsolicited from
    // the internet reaches the router itself. Such a packet is dropped before conntrack
    // confirms an entry for it, so it cannot occupy the tuple that the node's own mapping
    // towards the sender will need (without this, the first hole-punching packet from the
    // other side makes Linux give the node's mapping a random port: a symmetric NAT).
    must(lab, &router, &["nft", "add table ip filter"]);
    must(
        lab,
        &router,
        &[
            "nft",
            "add chain ip filter input { type filter hook input priority filter ; }",
        ],
    );
    must(
        lab,
        &router,
        &[
            "nft",
            "add rule ip filter input iifname eth0 ct state new,invalid drop",
        ],
    );
    Site { router, node }
}

/// A directory for the control sockets, removed on drop.
struct SocketDir(PathBuf);

impl SocketDir {
    fn new(test: &str) -> SocketDir {
        let dir = std::env::temp_dir().join(format!("ethcloud-nat-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        SocketDir(dir)
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `ethcloud show` against `socket`.
fn show(lab: &Lab, host: &Host, socket: &str) -> String {
    let out = must(lab, host, &[ETHCLOUD, "show", "--socket", socket]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

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

/// Pings `target` from `from` until `count` pings in a row are answered; panics at `deadline`.
fn ping_run(lab: &Lab, from: &Host, target: &str, count: usize, timeout: Duration) {
    let start = Instant::now();
    let mut run = 0;
    while run < count {
        assert!(
            start.elapsed() < timeout,
            "{} could not ping {target} {count} times in a row within {timeout:?}",
            from.ns
        );
        if lab.ping_once(from, target) {
            run += 1;
        } else {
            run = 0;
        }
    }
}

/// The routers' conntrack entries between the two sites, for the failure messages.
fn conntrack(lab: &Lab, router: &Host) -> String {
    let out = lab.run(
        router,
        &["conntrack", "-L", "-p", "udp"],
        Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
#[ignore = "needs root + netns + nft + conntrack; .ci/run passes --include-ignored"]
fn nodes_behind_two_nats_mesh_talk_directly_without_the_public_node_and_survive_a_conntrack_flush()
{
    let mut lab = Lab::new(3);
    let public = lab.host(1);
    let a = nat_site(&mut lab, 2);
    let b = nat_site(&mut lab, 3);
    let dir = SocketDir::new("mesh");
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
    let mut lab = Lab::new(3);
    let public = lab.host(1);
    let a = nat_site(&mut lab, 2);
    let b = nat_site(&mut lab, 3);
    let dir = SocketDir::new("rebind");
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
