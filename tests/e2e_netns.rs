//! End-to-end tests: the real `ethcloud` binary in network namespaces, with real taps, real UDP
//! and real pings. They need root, so they are `#[ignore]`d; `scripts/test.sh` (and so
//! `.ci/run`) runs them with `--include-ignored`.
//!
//! Each test builds its own lab (namespaces with a unique prefix, see `e2e/mod.rs`), so the
//! tests can run in parallel even though every lab uses the same addresses.

mod e2e;

use std::time::{Duration, Instant};

use e2e::{wait_file_contains, Lab, SOON};

/// Starts host 1 plain and host 2 with `-c` to host 1, both on `listen` with token 7, and
/// waits until each has the other as a peer. `addr` gives a host's address as logged.
fn two_connected_nodes(
    lab: &mut Lab,
    listen: &str,
    connect_to_1: &str,
    addr: fn(&e2e::Host) -> String,
) {
    let (a, b) = (lab.host(1), lab.host(2));
    lab.start(&a, &["-l", listen, "-t", "7"]);
    lab.start(&b, &["-l", listen, "-t", "7", "-c", connect_to_1]);
    lab.daemons[0].wait_log(&format!("peer {} added", addr(&b)), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", addr(&a)), SOON);
}

fn assert_pings_both_ways(lab: &Lab) {
    let (a, b) = (lab.host(1), lab.host(2));
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v6());
    lab.assert_ping(&b, &a.overlay_v6());
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_nodes_ping_both_ways_over_ipv4_and_ipv6_overlay() {
    let mut lab = Lab::new(2);
    let connect = lab.host(1).addr_v4();
    two_connected_nodes(&mut lab, "0.0.0.0:3210", &connect, e2e::Host::addr_v4);
    assert_pings_both_ways(&lab);

    // A full-size IPv4 packet (1400 bytes, the tap MTU, with DF set) crosses too.
    let (a, b) = (lab.host(1), lab.host(2));
    let out = lab.run(
        &a,
        &[
            "ping",
            "-n",
            "-q",
            "-c1",
            "-W2",
            "-M",
            "do",
            "-s",
            "1372",
            &b.overlay_v4(),
        ],
        SOON,
    );
    assert!(out.status.success(), "1400-byte ping failed: {out:?}");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_nodes_ping_both_ways_over_an_ipv6_underlay() {
    let mut lab = Lab::new(2);
    let connect = lab.host(1).addr_v6();
    two_connected_nodes(&mut lab, "[::]:3210", &connect, e2e::Host::addr_v6);
    assert_pings_both_ways(&lab);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_nodes_carry_a_3_second_iperf3_tcp_run() {
    let mut lab = Lab::new(2);
    let connect = lab.host(1).addr_v4();
    two_connected_nodes(&mut lab, "0.0.0.0:3210", &connect, e2e::Host::addr_v4);
    let (a, b) = (lab.host(1), lab.host(2));
    lab.assert_ping(&a, &b.overlay_v4());

    let server_addr = b.overlay_v4();
    lab.helper(
        &b,
        "iperf3-server",
        &["iperf3", "-s", "-1", "-B", &server_addr],
    );
    let start = Instant::now();
    loop {
        let out = lab.run(&b, &["ss", "-Hltn", "sport = :5201"], SOON);
        if !out.stdout.is_empty() {
            break;
        }
        assert!(
            start.elapsed() < SOON,
            "iperf3 server not listening after {SOON:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = lab.run(
        &a,
        &[
            "iperf3",
            "-c",
            &server_addr,
            "-t",
            "3",
            "--connect-timeout",
            "5000",
        ],
        Duration::from_secs(30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("receiver"),
        "iperf3 client failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{stdout}");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn chain_of_three_becomes_a_mesh_and_survives_the_middle_node_stopping() {
    let mut lab = Lab::new(3);
    let (a, b, c) = (lab.host(1), lab.host(2), lab.host(3));
    let listen = "0.0.0.0:3210";
    let to_b = b.addr_v4();
    let bd = lab.start(&b, &["-l", listen]);
    let ad = lab.start(&a, &["-l", listen, "-c", &to_b]);
    let cd = lab.start(&c, &["-l", listen, "-c", &to_b]);

    // A and C only know B, yet learn of each other through B's peer lists.
    let took = lab.daemons[ad].wait_log(&format!("peer {} added", c.addr_v4()), SOON);
    lab.daemons[cd].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    eprintln!("A peered with C after {took:?}");

    lab.daemons[bd].signal(libc::SIGTERM);
    let status = lab.daemons[bd].wait_exit(SOON);
    assert_eq!(status.code(), Some(0), "B's exit status");
    let removed_b = format!("peer {} removed: closed by peer", b.addr_v4());
    lab.daemons[ad].wait_log(&removed_b, SOON);
    lab.daemons[cd].wait_log(&removed_b, SOON);

    lab.assert_ping(&a, &c.overlay_v4());
    lab.assert_ping(&c, &a.overlay_v4());
    lab.assert_ping(&a, &c.overlay_v6());
}

/// The same MAC lives behind B on VLAN 10 and behind C on VLAN 20. A unicast from A to that
/// MAC on VLAN 10 must reach B only, and on VLAN 20 C only. A switch that keyed its table by
/// MAC alone would send both to C (the later one learned) and fail this test.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn vlan_tagged_frames_keep_their_tags_and_each_vlan_has_its_own_mac_table() {
    const SHARED_MAC: &str = "02:ec:00:00:00:99";
    const A_MAC: &str = "02:ec:00:00:00:0a";
    const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";
    let mut lab = Lab::new(3);
    let (a, b, c) = (lab.host(1), lab.host(2), lab.host(3));
    let listen = "0.0.0.0:3210";
    let to_a = a.addr_v4();
    let ad = lab.start(&a, &["-l", listen]);
    lab.start(&b, &["-l", listen, "-c", &to_a]);
    lab.start(&c, &["-l", listen, "-c", &to_a]);
    lab.daemons[ad].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[ad].wait_log(&format!("peer {} added", c.addr_v4()), SOON);

    let at_a = lab.capture(&a, "capture", 120);
    let at_b = lab.capture(&b, "capture", 120);
    let at_c = lab.capture(&c, "capture", 120);

    // A learns (VLAN 10, SHARED_MAC) -> B, then (VLAN 20, SHARED_MAC) -> C; both frames reach
    // A's tap with their tags.
    lab.send_frame(&b, BROADCAST, SHARED_MAC, Some(10), "learn-b-v10");
    wait_file_contains(
        &at_a,
        &format!("frame learn-b-v10 vid=10 src={SHARED_MAC}"),
        SOON,
    );
    lab.send_frame(&c, BROADCAST, SHARED_MAC, Some(20), "learn-c-v20");
    wait_file_contains(
        &at_a,
        &format!("frame learn-c-v20 vid=20 src={SHARED_MAC}"),
        SOON,
    );

    // Unicasts from A to the shared MAC, one per VLAN, then a broadcast as a barrier: A sends
    // all three in order over the same socket, so once B and C have the barrier, whatever A
    // sent them before it has arrived too.
    lab.send_frame(&a, SHARED_MAC, A_MAC, Some(10), "to-shared-v10");
    lab.send_frame(&a, SHARED_MAC, A_MAC, Some(20), "to-shared-v20");
    lab.send_frame(&a, BROADCAST, A_MAC, None, "barrier");
    wait_file_contains(&at_b, "frame barrier vid=none", SOON);
    wait_file_contains(&at_c, "frame barrier vid=none", SOON);

    let seen_b = std::fs::read_to_string(&at_b).unwrap_or_default();
    let seen_c = std::fs::read_to_string(&at_c).unwrap_or_default();
    let to_shared = |vid| format!("frame to-shared-v{vid} vid={vid} src={A_MAC} dst={SHARED_MAC}");
    assert_eq!(
        seen_b.matches(&to_shared(10)).count(),
        1,
        "B must get the VLAN 10 unicast once, tag intact:\n{seen_b}"
    );
    assert_eq!(
        seen_c.matches(&to_shared(20)).count(),
        1,
        "C must get the VLAN 20 unicast once, tag intact:\n{seen_c}"
    );
    assert!(
        !seen_b.contains("to-shared-v20"),
        "B got C's VLAN 20 frame:\n{seen_b}"
    );
    assert!(
        !seen_c.contains("to-shared-v10"),
        "C got B's VLAN 10 frame:\n{seen_c}"
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn networks_with_different_tokens_on_one_underlay_never_mix() {
    let mut lab = Lab::new(4);
    let hosts: Vec<_> = (1..=4).map(|i| lab.host(i)).collect();
    let [h1, h2, h3, h4] = [&hosts[0], &hosts[1], &hosts[2], &hosts[3]];
    let listen = "0.0.0.0:3210";
    let (to_h1, to_h3) = (h1.addr_v4(), h3.addr_v4());
    // Network 1: h1, h2. Network 2: h3, h4; h3 also tries to connect to h1 (wrong network).
    let d1 = lab.start(h1, &["-l", listen, "-t", "1"]);
    let d2 = lab.start(h2, &["-l", listen, "-t", "1", "-c", &to_h1]);
    let d3 = lab.start(h3, &["-l", listen, "-t", "2", "-c", &to_h1]);
    let d4 = lab.start(h4, &["-l", listen, "-t", "2", "-c", &to_h3]);
    lab.daemons[d1].wait_log(&format!("peer {} added", h2.addr_v4()), SOON);
    lab.daemons[d3].wait_log(&format!("peer {} added", h4.addr_v4()), SOON);

    lab.assert_ping(h1, &h2.overlay_v4());
    lab.assert_ping(h3, &h4.overlay_v4());
    for (from, to) in [(h3, h1), (h4, h2), (h1, h3), (h2, h4)] {
        let out = lab.run(
            from,
            &["ping", "-n", "-q", "-c3", "-i0.3", "-W1", &to.overlay_v4()],
            SOON,
        );
        assert!(
            !out.status.success(),
            "{} reached {} across tokens",
            from.ns,
            to.ns
        );
    }

    // h3's datagrams did reach h1 and were refused for their token.
    lab.daemons[d1].signal(libc::SIGUSR1);
    lab.daemons[d1].wait_log("drop_wrong_token=", SOON);

    for (d, foreign) in [
        (d1, [h3, h4]),
        (d2, [h3, h4]),
        (d3, [h1, h2]),
        (d4, [h1, h2]),
    ] {
        let log = lab.daemons[d].log();
        for host in foreign {
            let added = format!("peer {} added", host.addr_v4());
            assert!(
                !log.contains(&added),
                "{added} in the other network's log:\n{log}"
            );
        }
    }
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn sigterm_sends_close_and_the_peer_removes_it_at_once() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let to_a = a.addr_v4();
    let ad = lab.start(&a, &["-l", "0.0.0.0:3210", "--peer-timeout", "60"]);
    let bd = lab.start(
        &b,
        &["-l", "0.0.0.0:3210", "--peer-timeout", "60", "-c", &to_a],
    );
    lab.daemons[ad].wait_log(&format!("peer {} added", b.addr_v4()), SOON);

    lab.daemons[bd].signal(libc::SIGTERM);
    let took = lab.daemons[ad].wait_log(
        &format!("peer {} removed: closed by peer (0 peers)", b.addr_v4()),
        Duration::from_secs(3),
    );
    eprintln!("A removed B {took:?} after SIGTERM");
    assert_eq!(lab.daemons[bd].wait_exit(SOON).code(), Some(0));
    assert!(lab.daemons[bd].log().contains("sent close to 1 peers"));
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn killed_node_times_out_after_peer_timeout_and_not_before() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let to_a = a.addr_v4();
    let timeout = ["--peer-timeout", "5"];
    let ad = lab.start(&a, &[&["-l", "0.0.0.0:3210"][..], &timeout].concat());
    let bd = lab.start(
        &b,
        &[&["-l", "0.0.0.0:3210", "-c", &to_a][..], &timeout].concat(),
    );
    lab.daemons[ad].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[bd].wait_log(&format!("peer {} added", a.addr_v4()), SOON);

    lab.daemons[bd].signal(libc::SIGKILL);
    lab.daemons[bd].wait_exit(SOON);
    let took = lab.daemons[ad].wait_log(
        &format!("peer {} removed: timed out (0 peers)", b.addr_v4()),
        SOON,
    );
    eprintln!("A timed B out {took:?} after SIGKILL");
    // B spoke to A at least every 1.25 s (a quarter of the timeout), so A heard from it at
    // most that long before the kill: the 5 s timeout cannot end before 3.75 s.
    assert!(
        took >= Duration::from_millis(3500),
        "timed out too early: {took:?}"
    );
    assert!(!lab.daemons[ad].log().contains("closed by peer"));
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn daemon_exits_0_on_sigterm_and_on_sigint() {
    let mut lab = Lab::new(1);
    let host = lab.host(1);
    for (signal, name) in [(libc::SIGTERM, "SIGTERM"), (libc::SIGINT, "SIGINT")] {
        let d = lab.spawn(&host, &[]);
        // The default device template ethcloud%d gives ethcloud0 in a fresh namespace.
        lab.daemons[d].wait_log(
            "started: device ethcloud0, listening on 0.0.0.0:3210, token 0",
            SOON,
        );
        lab.daemons[d].signal(signal);
        let status = lab.daemons[d].wait_exit(SOON);
        assert_eq!(status.code(), Some(0), "exit status after {name}");
    }
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn dual_stack_listener_sees_an_ipv4_peer_as_plain_ipv4() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let to_a = a.addr_v4();
    let ad = lab.start(&a, &["-l", "[::]:3210"]);
    let bd = lab.start(&b, &["-l", "0.0.0.0:3210", "-c", &to_a]);
    // Not [::ffff:198.18.0.2]:3210: v4-mapped addresses are IPv4 addresses.
    lab.daemons[ad].wait_log(&format!("peer {} added (1 peers)", b.addr_v4()), SOON);
    lab.daemons[bd].wait_log(&format!("peer {} added (1 peers)", a.addr_v4()), SOON);
    assert!(!lab.daemons[ad].log().contains("::ffff:"));
    assert_pings_both_ways(&lab);
}

/// With `--mac-timeout 10`, a MAC learned behind B gets unicasts from A only while it is fresh;
/// once the entry expires, frames to it are flooded (C sees them too), and not before.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn mac_entries_expire_after_mac_timeout_and_then_frames_flood() {
    const B_MAC: &str = "02:ec:00:00:00:0b";
    const A_MAC: &str = "02:ec:00:00:00:0a";
    const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";
    let mut lab = Lab::new(3);
    let (a, b, c) = (lab.host(1), lab.host(2), lab.host(3));
    let to_a = a.addr_v4();
    // 10 s: room for the checks of a fresh entry (two frames sent and seen by processes
    // started in the namespaces) on a slow machine.
    let args = ["-l", "0.0.0.0:3210", "--mac-timeout", "10"];
    let ad = lab.start(&a, &args);
    lab.start(&b, &[&args[..], &["-c", &to_a]].concat());
    lab.start(&c, &[&args[..], &["-c", &to_a]].concat());
    lab.daemons[ad].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[ad].wait_log(&format!("peer {} added", c.addr_v4()), SOON);
    let at_a = lab.capture(&a, "capture", 120);
    let at_b = lab.capture(&b, "capture", 120);
    let at_c = lab.capture(&c, "capture", 120);

    lab.send_frame(&b, BROADCAST, B_MAC, None, "learn");
    wait_file_contains(&at_a, &format!("frame learn vid=none src={B_MAC}"), SOON);
    let learned = Instant::now();

    // Fresh: the unicast goes to B alone (the broadcast after it is a barrier for C).
    lab.send_frame(&a, B_MAC, A_MAC, None, "fresh");
    lab.send_frame(&a, BROADCAST, A_MAC, None, "barrier");
    wait_file_contains(&at_b, "frame fresh", SOON);
    wait_file_contains(&at_c, "frame barrier", SOON);
    let seen_c = std::fs::read_to_string(&at_c).unwrap_or_default();
    assert!(
        !seen_c.contains("frame fresh"),
        "a unicast to a learned MAC was flooded:\n{seen_c}"
    );
    assert!(
        learned.elapsed() < Duration::from_millis(8000),
        "too slow to test a 10 s MAC timeout"
    );

    // Stale: keep sending unicasts until C gets one, which happens only when they are flooded.
    let mut probe = 0;
    let expired_after = loop {
        probe += 1;
        lab.send_frame(&a, B_MAC, A_MAC, None, &format!("stale-{probe}"));
        let seen_c = std::fs::read_to_string(&at_c).unwrap_or_default();
        if seen_c.contains("frame stale-") {
            break learned.elapsed();
        }
        assert!(
            learned.elapsed() < Duration::from_secs(25),
            "the MAC entry never expired"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    eprintln!("unicasts to {B_MAC} flooded {expired_after:?} after it was learned");
    assert!(
        expired_after >= Duration::from_millis(9500),
        "the MAC entry expired after {expired_after:?}, before --mac-timeout 10"
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn connect_address_is_found_again_after_that_node_restarts() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let to_b = b.addr_v4();
    let b_added = format!("peer {} added", b.addr_v4());
    let first_b = lab.start(&b, &["-l", "0.0.0.0:3210"]);
    let ad = lab.start(&a, &["-l", "0.0.0.0:3210", "-c", &to_b]);
    lab.daemons[ad].wait_log(&b_added, SOON);

    lab.daemons[first_b].signal(libc::SIGTERM);
    assert_eq!(lab.daemons[first_b].wait_exit(SOON).code(), Some(0));
    lab.daemons[ad].wait_log(
        &format!("peer {} removed: closed by peer", b.addr_v4()),
        SOON,
    );

    // B comes back knowing nobody; A keeps asking its --connect address and finds it.
    lab.start(&b, &["-l", "0.0.0.0:3210"]);
    let took = lab.daemons[ad].wait_log_count(&b_added, 2, SOON);
    eprintln!("A found the restarted B after {took:?}");
    assert_pings_both_ways(&lab);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_node_whose_tap_is_deleted_exits_with_an_error_and_its_peer_hears_close_at_once() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    // A with an --ifdown hook: the cause is logged before the hook runs, not only in the
    // fatal line at the exit, after it.
    lab.start(&a, &["-t", "7", "--ifdown", "echo ifdown-ran"]);
    lab.start(&b, &["-t", "7", "-c", &a.addr_v4()]);
    lab.daemons[0].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    e2e::ip(&["-n", &a.ns, "link", "del", e2e::TAP]);
    let status = lab.daemons[0].wait_exit(SOON);
    assert_eq!(status.code(), Some(1), "A's exit status");
    let log = lab.daemons[0].log();
    let cause = log.find("stopping after an error: cannot read from tap device");
    let hook = log.find("running --ifdown command");
    assert!(
        cause.is_some() && hook.is_some() && cause < hook,
        "the cause is not logged before --ifdown runs:\n{log}"
    );
    assert!(
        log.lines()
            .last()
            .is_some_and(|l| l.starts_with("ethcloud: cannot read from tap device")),
        "the fatal line is not the last:\n{log}"
    );
    // Not after the peer timeout (30 minutes): A's Close tells B at once.
    let removed = format!("peer {} removed: closed by peer", a.addr_v4());
    lab.daemons[1].wait_log(&removed, SOON);
}

/// A host gains an address while its node runs (on `[::]`): after a SIGHUP (or within 30 s)
/// the node counts it as its own. Here A's IPv6 address comes only after A started, and B
/// knows A at its IPv4 and its IPv6 address (two peers to B: the clear protocol cannot tell),
/// so B's lists to A name A's IPv6 address; A ignores that entry instead of asking it, which
/// made A its own peer there, every flood coming back into its tap.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn an_address_the_host_gains_becomes_the_nodes_own_and_never_its_peer() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let v6 = format!("{}/64", a.underlay_v6());
    e2e::ip(&["-n", &a.ns, "addr", "del", &v6, "dev", "eth0"]);
    let ad = lab.start(&a, &["-l", "[::]:3210", "-t", "7"]);
    e2e::ip(&["-n", &a.ns, "addr", "add", &v6, "dev", "eth0", "nodad"]);
    lab.daemons[ad].signal(libc::SIGHUP);
    lab.daemons[ad].wait_log("this node's addresses changed", SOON);
    let bd = lab.start(
        &b,
        &[
            "-l",
            "[::]:3210",
            "-t",
            "7",
            "-c",
            &a.addr_v4(),
            "-c",
            &a.addr_v6(),
        ],
    );
    lab.daemons[bd].wait_log(&format!("peer {} added", a.addr_v6()), SOON);
    lab.daemons[bd].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    // B names A's IPv6 address to A's IPv4 one (its only other peer) in two gossip rounds,
    // seconds apart; A ignores that entry (it asked it at once, before).
    let to_a_v4 = format!("gossip: sending 1 peers to {}", a.addr_v4());
    lab.daemons[bd].wait_log_count(&to_a_v4, 2, Duration::from_secs(60));
    let line = lab.daemons[ad].stats_line();
    assert!(
        e2e::field(&line, "peer_entries_ignored").is_some_and(|n| n >= 2),
        "{line}"
    );
    let log = lab.daemons[ad].log();
    assert!(
        !log.contains(&format!("peer {} added", a.addr_v6())),
        "{log}"
    );
    assert!(
        log.contains("peer 198.18.0.2:3210 added") || log.contains("peer [fd00::2]:3210 added"),
        "{log}"
    );
}

/// Under `-q` (errors only) a SIGUSR1 still logs the counters and the status: the operator
/// asked for them.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn sigusr1_logs_the_counters_and_status_under_quiet_too() {
    let mut lab = Lab::new(1);
    lab.verbose = false;
    let a = lab.host(1);
    let ad = lab.start(&a, &["-q", "-t", "7"]);
    let line = lab.daemons[ad].stats_line();
    assert!(line.contains("stats: peers=0"), "{line}");
    lab.daemons[ad].wait_log("status: ", SOON);
    let log = lab.daemons[ad].log();
    assert!(
        !log.contains("started: device"),
        "-q shows an info line: {log}"
    );
}
