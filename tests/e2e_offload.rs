//! End-to-end tests of the segmentation offloads: a node with offloads (the default) talks to
//! one started with `--no-offload`, and TCP runs through both directions over IPv4 and IPv6
//! overlays without a super-frame being dropped. Root only, like the rest of the end-to-end
//! suite; it reuses its lab (`e2e/mod.rs`). VLAN-tagged super-frames are covered by the unit
//! tests of `offload::segment` (a test kernel may lack both 8021q and bridge VLAN filtering).

mod e2e;

use std::time::{Duration, Instant};

use e2e::{Host, Lab, SOON};

/// Waits until an iperf3 server listens on port 5201 in `host`.
fn wait_iperf3_server(lab: &Lab, host: &Host) {
    let start = Instant::now();
    loop {
        let out = lab.run(host, &["ss", "-Hltn", "sport = :5201"], SOON);
        if !out.stdout.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < SOON,
            "iperf3 server not listening on {} after {SOON:?}",
            host.ns
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a 2-second iperf3 TCP test from `from` to `server` (with `extra` arguments such as
/// `-R`) and asserts it completed with data received.
fn iperf3(lab: &Lab, from: &Host, server: &str, extra: &[&str]) {
    let mut args = vec![
        "iperf3",
        "-c",
        server,
        "-t",
        "2",
        "--connect-timeout",
        "5000",
    ];
    args.extend_from_slice(extra);
    let out = lab.run(from, &args, Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("receiver"),
        "iperf3 {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receiver = stdout
        .lines()
        .find(|l| l.contains("receiver"))
        .unwrap_or_default();
    assert!(
        !receiver.contains(" 0.00 Bytes"),
        "nothing arrived: {receiver}"
    );
    eprintln!("{}: {receiver}", args.join(" "));
}

/// Asks a daemon for its counters (SIGUSR1) and asserts no super-frame was dropped.
fn assert_no_offload_errors(lab: &mut Lab, daemon: usize) {
    lab.daemons[daemon].signal(libc::SIGUSR1);
    lab.daemons[daemon].wait_log("offload_errors=", SOON);
    let log = lab.daemons[daemon].log();
    let last = log
        .lines()
        .rev()
        .find(|l| l.contains("offload_errors="))
        .unwrap_or_default();
    assert!(last.contains("offload_errors=0"), "{last}");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn offload_node_and_no_offload_node_carry_tcp_both_ways_over_ipv4_and_ipv6() {
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    lab.start(&a, &["-l", "[::]:3210", "-t", "7"]);
    let connect = a.addr_v4();
    lab.start(
        &b,
        &["-l", "[::]:3210", "-t", "7", "-c", &connect, "--no-offload"],
    );
    lab.daemons[0].wait_log("offloads: tap vnet header", SOON);
    lab.daemons[1].wait_log("offloads: tap off; udp gso off, gro off", SOON);
    lab.daemons[0].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v6());

    lab.helper(&b, "iperf3-server", &["iperf3", "-s"]);
    wait_iperf3_server(&lab, &b);
    let (v4, v6) = (b.overlay_v4(), b.overlay_v6());
    // offload -> no-offload and back, over both overlay families
    iperf3(&lab, &a, &v4, &[]);
    iperf3(&lab, &a, &v4, &["-R"]);
    iperf3(&lab, &a, &v6, &[]);
    iperf3(&lab, &a, &v6, &["-R"]);
    assert_no_offload_errors(&mut lab, 0);
}
