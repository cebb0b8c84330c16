//! End-to-end tests of the segmentation offloads: a node with offloads (the default) talks to
//! one started with `--no-offload`, and TCP runs through both directions over IPv4 and IPv6
//! overlays without a super-frame being dropped. Root only, like the rest of the end-to-end
//! suite; it reuses its lab (`e2e/mod.rs`). VLAN-tagged super-frames are covered by the unit
//! tests of `offload::segment` (a test kernel may lack both 8021q and bridge VLAN filtering).

mod e2e;

use e2e::{Host, Lab, SOON};

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

    let (v4, v6) = (b.overlay_v4(), b.overlay_v6());
    // offload -> no-offload and back, over both overlay families, each run against a one-off
    // server of its own (see `iperf3_one_off`).
    for (port, target, reverse) in [
        (5201, &v4, false),
        (5202, &v4, true),
        (5203, &v6, false),
        (5204, &v6, true),
    ] {
        let extra: &[&str] = if reverse { &["-R"] } else { &[] };
        e2e::iperf3_one_off(&mut lab, &a, &b, target, port, extra);
    }
    e2e::assert_no_offload_errors(&mut lab, 0);
}

/// A counter of interface `dev` in `host`'s namespace (`/sys/class/net/DEV/statistics/NAME`).
fn link_counter(lab: &Lab, host: &Host, dev: &str, name: &str) -> u64 {
    let path = format!("/sys/class/net/{dev}/statistics/{name}");
    let out = lab.run(host, &["cat", &path], SOON);
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("cannot read {path} in {}", host.ns))
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn udp_bursts_are_coalesced_and_arrive_whole_and_in_order_over_ipv4_and_ipv6() {
    const PORT: &str = "7100";
    const BURST: u64 = 40;
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    lab.start(&a, &["-l", "[::]:3210", "-t", "7"]);
    let connect = a.addr_v4();
    lab.start(&b, &["-l", "[::]:3210", "-t", "7", "-c", &connect]);
    // A tap takes USO from Linux 6.2 on (where a distribution backported it, earlier too);
    // without it the daemon coalesces TCP only, and says so (Debian 12's kernel is 6.1): then
    // that is all there is to check. From 6.2 on it must have found USO.
    lab.daemons[1].wait_log("coalescing tcp on, udp ", SOON);
    if !lab.daemons[1]
        .log()
        .contains("uso on, coalescing tcp on, udp on")
    {
        let log = lab.daemons[1].log();
        assert!(log.contains("uso off, coalescing tcp on, udp off"), "{log}");
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let version: Vec<u32> = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .take(2)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        assert!(
            version < vec![6, 2],
            "Linux {}: the tap should take USO, but the daemon found none:\n{log}",
            release.trim()
        );
        eprintln!(
            "Linux {}: no USO on a tap, so no UDP coalescing to test",
            release.trim()
        );
        return;
    }
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v6());

    // Bursts of BURST datagrams: the smallest, a middling size, the largest the 1400-byte
    // overlay carries unfragmented (1372 bytes over IPv4, 1352 over IPv6).
    let bursts = [
        (b.overlay_v4(), 64),
        (b.overlay_v4(), 700),
        (b.overlay_v4(), 1372),
        (b.overlay_v6(), 64),
        (b.overlay_v6(), 1352),
    ];
    let spec: Vec<String> = bursts.iter().map(|(_, s)| format!("{BURST}:{s}")).collect();
    let script = lab.script("udpburst.py", include_str!("e2e/udpburst.py"));
    let script = script.to_str().expect("utf-8 path").to_owned();
    let out = lab.helper(
        &b,
        "udpburst",
        &["python3", &script, "receive", PORT, "60", &spec.join(",")],
    );
    e2e::wait_file_contains(&out, "listening", SOON);

    let mut first = 0u64;
    for (k, (target, size)) in bursts.iter().enumerate() {
        // Hold a's daemon while the burst is sent: the whole burst then waits in a's tap
        // (the send returns once the kernel has queued every datagram there), and a's next
        // drain reads it in one go and sends it in a few batches, each one UDP GSO message,
        // which b's daemon receives as one message and coalesces. That makes the coalescing
        // certain, not a matter of timing.
        let written = link_counter(&lab, &b, e2e::TAP, "rx_packets");
        lab.daemons[0].signal(libc::SIGSTOP);
        let (first_s, count_s, size_s) = (first.to_string(), BURST.to_string(), size.to_string());
        let sent = lab.run(
            &a,
            &[
                "python3", &script, "send", target, PORT, &first_s, &count_s, &size_s,
            ],
            SOON,
        );
        lab.daemons[0].signal(libc::SIGCONT);
        assert!(sent.status.success(), "send: {sent:?}");
        e2e::wait_file_contains(&out, &format!("burst {k} ok"), SOON);
        // a sends the first datagram at once, then batches of up to 32 (FLUSH_AT): b writes
        // a few super-frames or lone datagrams (seen here: 2 to 5 in 30 bursts) instead of
        // 40 writes; the bound leaves room for a stray frame of the network's own (neighbour
        // discovery) and a batch cut in two.
        let writes = link_counter(&lab, &b, e2e::TAP, "rx_packets") - written;
        eprintln!("burst {k}: {BURST} datagrams of {size} bytes to {target}: {writes} tap writes");
        assert!(
            (1..=8).contains(&writes),
            "burst {k} ({size} bytes to {target}): {writes} tap writes for {BURST} datagrams"
        );
        first += BURST;
    }
    e2e::wait_file_contains(&out, "done", SOON);
    e2e::assert_no_offload_errors(&mut lab, 1);
}
