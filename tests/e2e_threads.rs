//! End-to-end tests of `--threads`: two nodes with a two-queue tap each carry ping, TCP with
//! several streams both ways, and many UDP flows at once, each flow whole and in order, and
//! the second thread (the lane) forwards its share; in the clear protocol, in keyed mode and
//! with per-node keys (where the lane seals with the loop's sessions). Root only, like the
//! rest of the end-to-end suite; it reuses its lab (`e2e/mod.rs`).

mod e2e;

use std::time::Duration;

use e2e::{Lab, SOON};

/// The number in the daemon's "lane N stopped after F frames" line, once it has exited.
fn lane_frames(lab: &Lab, daemon: usize, lane: usize) -> u64 {
    let log = lab.daemons[daemon].log();
    let needle = format!("lane {lane} stopped after ");
    let line = log
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no '{needle}' line in the log:\n{log}"));
    line.split(&needle)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the frame count in: {line}"))
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_threads_carry_ping_tcp_streams_and_many_flows_in_order_and_the_lane_does_its_share() {
    two_threads(Mode::Clear);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_threads_with_a_network_key_carry_the_same_and_the_lane_seals_its_share() {
    two_threads(Mode::Keyed);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn two_threads_with_per_node_keys_carry_the_same_and_the_lane_seals_per_peer() {
    two_threads(Mode::Identity);
}

/// The protocol the two nodes speak.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Clear,
    Keyed,
    Identity,
}

/// Two nodes with `--threads 2` in `mode`: ping, 16 UDP flows in order, iperf3 with 4
/// streams both ways and over IPv6, and a's lane forwarded frames.
fn two_threads(mode: Mode) {
    const PORT: &str = "7200";
    const FLOWS: &str = "16";
    const COUNT: &str = "200";
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let common = vec!["-l", "[::]:3210", "-t", "7", "--threads", "2"];
    let mut per_node: [Vec<String>; 2] = [Vec::new(), Vec::new()];
    match mode {
        Mode::Clear => {}
        Mode::Keyed => {
            let key = lab.script("net.key", &"5e".repeat(32));
            let key = key.to_str().expect("utf-8 path").to_owned();
            for args in &mut per_node {
                args.extend(["--key-file".to_owned(), key.clone()]);
            }
        }
        Mode::Identity => {
            // A key pair per node (ethcloud genkey / pubkey), each trusting both.
            let mut trust = String::new();
            let mut keys = Vec::new();
            for name in ["a", "b"] {
                let private = lab.file(&format!("{name}.key"));
                let public = e2e::genkey(&private);
                trust.push_str(&format!("{public} {name}\n"));
                keys.push(private.to_str().expect("utf-8 path").to_owned());
            }
            let trusted = lab.script("trusted", &trust);
            let trusted = trusted.to_str().expect("utf-8 path").to_owned();
            for (args, key) in per_node.iter_mut().zip(keys) {
                args.extend([
                    "--private-key".to_owned(),
                    key,
                    "--trusted".to_owned(),
                    trusted.clone(),
                ]);
            }
        }
    }
    let mut args: Vec<&str> = common.clone();
    args.extend(per_node[0].iter().map(String::as_str));
    lab.start(&a, &args);
    let connect = a.addr_v4();
    let mut args: Vec<&str> = common.clone();
    args.extend(per_node[1].iter().map(String::as_str));
    args.extend(["-c", &connect]);
    lab.start(&b, &args);
    for daemon in 0..2 {
        lab.daemons[daemon].wait_log("threads: 2 (the loop and 1 lanes", SOON);
    }
    lab.daemons[0].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v6());

    // Many flows from a to b at once: the tap spreads them over its two queues, so both of
    // a's threads send; every flow must arrive whole and in order.
    let script = lab.script("flows.py", include_str!("e2e/flows.py"));
    let script = script.to_str().expect("utf-8 path").to_owned();
    let out = lab.helper(
        &b,
        "flows",
        &["python3", &script, "receive", PORT, FLOWS, COUNT, "30"],
    );
    e2e::wait_file_contains(&out, "listening", SOON);
    let target = b.overlay_v4();
    let sent = lab.run(
        &a,
        &["python3", &script, "send", &target, PORT, FLOWS, COUNT],
        Duration::from_secs(30),
    );
    assert!(sent.status.success(), "send: {sent:?}");
    e2e::wait_file_contains(&out, "flows ok", Duration::from_secs(30));

    // TCP, 4 streams, both ways and over both overlay families, each run against a one-off
    // server of its own (see `iperf3_one_off`).
    let (v4, v6) = (b.overlay_v4(), b.overlay_v6());
    for (port, target, reverse) in [(5201, &v4, false), (5202, &v4, true), (5203, &v6, false)] {
        let extra: &[&str] = if reverse {
            &["-P", "4", "-R"]
        } else {
            &["-P", "4"]
        };
        e2e::iperf3_one_off(&mut lab, &a, &b, target, port, extra);
    }

    // No tap read was lost, the lane's included (it hands its count to the status).
    e2e::assert_no_offload_errors(&mut lab, 0);
    e2e::assert_no_offload_errors(&mut lab, 1);

    // Stop both; each lane logs what it forwarded. a's lane carried some of the 16 flows
    // (all 16 hashing to one queue has a chance of 1 in 65 536) and of the TCP streams.
    for daemon in 0..2 {
        lab.daemons[daemon].signal(libc::SIGTERM);
        let status = lab.daemons[daemon].wait_exit(SOON);
        assert!(status.success(), "daemon {daemon} exited with {status}");
    }
    let (a_lane, b_lane) = (lane_frames(&lab, 0, 1), lane_frames(&lab, 1, 1));
    eprintln!("frames from the device forwarded by the lanes: a {a_lane}, b {b_lane}");
    assert!(a_lane > 0, "a's lane forwarded nothing");
}
