//! End-to-end tests of `--kernel-path`: two nodes whose frames to each other go through the
//! kernel's BPF programs, not the daemons: ping and TCP both ways, the counters that say the
//! kernel carried them, the daemon still seeing each flow now and then (so that its MAC
//! entries and peers stay), and a node without the kernel path talking to one with it. Root
//! only, like the rest of the end-to-end suite; it reuses its lab (`e2e/mod.rs`).

mod e2e;

use std::thread;
use std::time::Duration;

use e2e::{Host, Lab, SOON};

/// Starts a (listening) and b (connecting to a), with `a_args` and `b_args` added, and waits
/// for both to have the other as a peer. Each gets a control socket in the lab's directory;
/// returns their paths.
fn pair(lab: &mut Lab, a_args: &[&str], b_args: &[&str]) -> (String, String) {
    let (a, b) = (lab.host(1), lab.host(2));
    let sockets = [lab.file("a.sock"), lab.file("b.sock")];
    let sockets: Vec<String> = sockets
        .iter()
        .map(|p| p.to_str().expect("utf-8 path").to_owned())
        .collect();
    let common = ["-l", "0.0.0.0:3210", "-t", "7", "--mac-timeout", "8"];
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--control-socket", &sockets[0]]);
    args.extend_from_slice(a_args);
    lab.start(&a, &args);
    let connect = a.addr_v4();
    let mut args: Vec<&str> = common.to_vec();
    args.extend(["--control-socket", &sockets[1], "-c", &connect]);
    args.extend_from_slice(b_args);
    lab.start(&b, &args);
    lab.daemons[0].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    (sockets[0].clone(), sockets[1].clone())
}

/// The counter `key` of a daemon's SIGUSR1 line.
fn stat(lab: &mut Lab, daemon: usize, key: &str) -> u64 {
    let line = lab.daemons[daemon].stats_line();
    e2e::field(&line, key).unwrap_or_else(|| panic!("no {key} in: {line}"))
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn the_kernel_path_carries_ping_and_tcp_both_ways_and_the_daemons_still_see_each_flow() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let (_, b_socket) = pair(&mut lab, &["--kernel-path"], &["--kernel-path"]);
    for daemon in 0..2 {
        lab.daemons[daemon].wait_log("kernel path: frames to and from direct IPv4 peers", SOON);
    }
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v6());
    e2e::iperf3_one_off(&mut lab, &a, &b, &b.overlay_v4(), 5201, &[]);
    e2e::iperf3_one_off(&mut lab, &a, &b, &b.overlay_v4(), 5202, &["-R"]);
    e2e::iperf3_one_off(&mut lab, &a, &b, &b.overlay_v6(), 5203, &[]);

    // The kernel carried the streams: on each node, far more bytes went through the kernel
    // path than through the daemon (which saw the first frames of each flow, ARP and
    // neighbour discovery, and a frame of each flow every 2 s).
    for daemon in 0..2 {
        let kernel_sent = stat(&mut lab, daemon, "kernel_path_bytes_sent");
        let kernel_received = stat(&mut lab, daemon, "kernel_path_bytes_received");
        let own_sent = stat(&mut lab, daemon, "bytes_from_device");
        let own_received = stat(&mut lab, daemon, "bytes_to_device");
        eprintln!(
            "daemon {daemon}: kernel path sent {kernel_sent} received {kernel_received} bytes; \
             the daemon {own_sent} and {own_received}"
        );
        assert!(kernel_sent > 50_000_000, "kernel path sent {kernel_sent}");
        assert!(kernel_received > 50_000_000, "received {kernel_received}");
        assert!(own_sent < kernel_sent / 10, "daemon sent {own_sent}");
        assert!(
            own_received < kernel_received / 10,
            "received {own_received}"
        );
        let errors = stat(&mut lab, daemon, "kernel_path_map_errors");
        assert_eq!(errors, 0);
    }

    // With --mac-timeout 8 the daemon must be handed a frame of a flow about every 2 s: in
    // a 12-second ping run, b's daemon sees a few of the pings, not every one and not none,
    // and a's MAC in b's table, checked every second, is never older than that (without
    // the refresh it would age to 8 s and expire, and come back only through a flood).
    let before = stat(&mut lab, 1, "frames_to_device");
    let kernel_before = stat(&mut lab, 1, "kernel_path_received");
    let needle = format!(" at {}, age ", a.addr_v4());
    let (mut answered, mut oldest) = (0, 0.0f64);
    for _ in 0..12 {
        for _ in 0..5 {
            if lab.ping_once(&a, &b.overlay_v4()) {
                answered += 1;
            }
            thread::sleep(Duration::from_millis(150));
        }
        let answer = e2e::show(&lab, &b, &b_socket);
        let age: f64 = answer
            .lines()
            .find_map(|l| l.split(&needle).nth(1))
            .and_then(|rest| rest.trim_end_matches('s').parse().ok())
            .unwrap_or(f64::INFINITY);
        oldest = oldest.max(age);
    }
    let through_daemon = stat(&mut lab, 1, "frames_to_device") - before;
    let through_kernel = stat(&mut lab, 1, "kernel_path_received") - kernel_before;
    eprintln!(
        "{answered} pings answered; b got {through_daemon} frames through its daemon and \
         {through_kernel} through the kernel; a's MAC in b's table at most {oldest} s old"
    );
    assert!(answered >= 50, "{answered} pings answered");
    assert!(
        (3..=answered / 5).contains(&through_daemon),
        "{through_daemon} of {answered} pings through b's daemon"
    );
    assert!(
        through_kernel >= answered / 2,
        "{through_kernel} through the kernel"
    );
    assert!(oldest < 4.0, "a's MAC in b's table was {oldest} s old");
}

/// Turns the transmit checksum offload of `host`'s underlay interface off (see the test).
fn checksums_in_software(lab: &Lab, host: &Host) {
    e2e::must(lab, host, &["ethtool", "-K", "eth0", "tx", "off"]);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_node_without_the_kernel_path_talks_to_one_with_it() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    // a has the kernel path, b not. Over veths the kernel leaves the checksums inside a's
    // frames for the receiving side to complete, and only a kernel path there can: the man
    // page says to turn the sender's transmit checksum offload off on such links, as here.
    checksums_in_software(&lab, &a);
    pair(&mut lab, &["--kernel-path"], &[]);
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    e2e::iperf3_one_off(&mut lab, &a, &b, &b.overlay_v4(), 5201, &[]);
    e2e::iperf3_one_off(&mut lab, &a, &b, &b.overlay_v4(), 5202, &["-R"]);
    let sent = stat(&mut lab, 0, "kernel_path_bytes_sent");
    assert!(sent > 50_000_000, "a's kernel path sent {sent}");
    // b's daemon took every frame itself.
    assert_eq!(stat(&mut lab, 1, "kernel_path_sent"), 0);
}
