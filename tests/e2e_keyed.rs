//! Keyed mode end to end, with the real binary in network namespaces: two nodes with the same
//! key file ping each other and nothing readable crosses the wire; a node with another key and
//! a node without one are ignored (no reply, no peer, counted drops).
//! Root-only and `#[ignore]`d; `.ci/run` passes `--include-ignored`.

mod e2e;

use std::fs;
use std::time::Duration;

use e2e::{Lab, SOON};

const FLOOD: &str = include_str!("e2e/flood.py");

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn same_key_pings_wrong_key_and_no_key_are_ignored_and_the_wire_shows_no_payload() {
    let dir = std::env::temp_dir().join(format!("ethcloud-keyed-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let good = dir.join("good.key");
    let other = dir.join("other.key");
    fs::write(&good, "correct horse battery staple\n").expect("write key");
    fs::write(&other, [0x42u8; 32]).expect("write key");
    let flood = dir.join("flood.py");
    fs::write(&flood, FLOOD).expect("write flood.py");

    let mut lab = Lab::new(4);
    let (h1, h2, h3, h4) = (lab.host(1), lab.host(2), lab.host(3), lab.host(4));
    let hub = h1.addr_v4();
    let good = good.to_str().expect("utf-8 path");
    let other = other.to_str().expect("utf-8 path");
    lab.start(&h1, &["-t", "3", "--key-file", good]);
    lab.start(&h2, &["-t", "3", "--key-file", good, "-c", &hub]);
    lab.start(&h3, &["-t", "3", "--key-file", other, "-c", &hub]);
    lab.start(&h4, &["-t", "3", "-c", &hub]);
    lab.daemons[0].wait_log(&format!("peer {} added", h2.addr_v4()), SOON);
    lab.daemons[0].wait_log("keyed mode", SOON);

    // A capture of the underlay on h2 while h1 pings h2 with a known pattern.
    let sniff = lab.helper(
        &h2,
        "sniff",
        &[
            "python3",
            flood.to_str().expect("utf-8 path"),
            "sniff",
            "eth0",
            "6",
            "5a5ac3c3a5a50f0f",
        ],
    );
    e2e::wait_file_contains(&sniff, "ready", SOON);
    let out = lab.run(
        &h1,
        &[
            "ping",
            "-c",
            "5",
            "-i",
            "0.2",
            "-W",
            "2",
            "-p",
            "5a5ac3c3a5a50f0f",
            &h2.overlay_v4(),
        ],
        SOON,
    );
    assert!(out.status.success(), "keyed nodes cannot ping: {out:?}");
    lab.assert_ping(&h2, &h1.overlay_v4());
    e2e::wait_file_contains(&sniff, "udp=", Duration::from_secs(15));
    let seen = fs::read_to_string(&sniff).unwrap_or_default();
    println!(
        "underlay capture on h2 during a patterned ping: {}",
        seen.trim()
    );
    assert!(
        seen.contains(" matches=0"),
        "the ping pattern crossed in clear: {seen}"
    );
    assert!(
        !seen.contains("udp=0 "),
        "the capture saw no ethcloud traffic: {seen}"
    );

    // The strangers get nowhere: no ping, no peer, and their packets are counted as drops.
    assert!(!lab.ping_within(&h3, &h1.overlay_v4(), Duration::from_secs(4)));
    assert!(!lab.ping_within(&h4, &h1.overlay_v4(), Duration::from_secs(4)));
    assert!(!lab.ping_within(&h1, &h3.overlay_v4(), Duration::from_secs(2)));
    let log = lab.daemons[0].log();
    for stranger in [&h3, &h4] {
        assert!(
            !log.contains(&format!("peer {} added", stranger.addr_v4())),
            "{} became a peer",
            stranger.ns
        );
    }
    lab.daemons[0].signal(libc::SIGUSR1);
    lab.daemons[0].wait_log("drop_unauthenticated=", SOON);
    let log = lab.daemons[0].log();
    let stats = log
        .lines()
        .rev()
        .find(|l| l.contains("stats: peers="))
        .unwrap_or_default();
    println!("{stats}");
    assert!(
        stats.contains("stats: peers=1 "),
        "only h2 is a peer: {stats}"
    );
    // and the keyed nodes never answered the strangers
    for id in [2, 3] {
        lab.daemons[id].signal(libc::SIGUSR1);
        lab.daemons[id].wait_log("stats: peers=", SOON);
        let log = lab.daemons[id].log();
        let stats = log
            .lines()
            .rev()
            .find(|l| l.contains("stats: peers="))
            .unwrap_or_default();
        assert!(stats.contains("stats: peers=0 "), "{stats}");
        assert!(
            stats.contains("frames_to_device=0 "),
            "a stranger got frames: {stats}"
        );
    }
    let _ = fs::remove_dir_all(&dir);
}
