//! End-to-end tests of the per-node identity mode (issue #12) with the real binary in network
//! namespaces: keys made with `ethcloud genkey` / `ethcloud pubkey`, files chmod 600, trust
//! files and trust directories.
//!
//! - three nodes ping each other and carry iperf3;
//! - a fourth node with a valid key nobody trusts gets no reply at all (underlay capture);
//! - an impersonator who copied a trusted node's public key (but not its private key) gets no
//!   reply (`examples/forge_initiation.rs`, checked against a genuine initiation first);
//! - removing a key and SIGHUP cuts its node off while traffic runs, and it stays out;
//! - sessions are renewed on the timer (`--rekey-after 10`) without loss, and a datagram
//!   captured two sessions ago and replayed is dropped before the tap;
//! - a flood of 100,000 initiations (`examples/handshake_flood.rs`) leaves RSS and CPU bounded
//!   and trusted traffic flowing;
//! - a flood that forges the two peers' own addresses (a third host sends from them with
//!   `IP_TRANSPARENT`) does not stop their sessions from renewing: the cookie replies reach the
//!   real peers, which come back with mac2.
//!
//! Root-only and `#[ignore]`d; scripts/test.sh passes `--include-ignored`. The two examples
//! are compiled into this test as modules and run on a thread that entered the attacker's
//! namespace (`setns`), so no second cargo build is needed; `ip netns exec NS` with the built
//! example does the same by hand.

mod e2e;
#[path = "../examples/forge_initiation.rs"]
#[allow(dead_code)]
mod forge_initiation;
#[path = "../examples/handshake_flood.rs"]
#[allow(dead_code)]
mod handshake_flood;

use std::fs;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use e2e::{Host, Lab, PORT, SOON, TAP};
use ethcloud::crypto::Cipher;

const IDWIRE: &str = include_str!("e2e/idwire.py");
const TOKEN: &str = "7";
const POLL: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------------
// Keys, trust files, stats files.

/// A scratch directory for keys, trust files, stats files and captures; removed on drop unless
/// the test failed (then kept for a look).
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ethcloud-id-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch dir");
        fs::write(dir.join("idwire.py"), IDWIRE).expect("write idwire.py");
        Scratch(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn idwire(&self) -> String {
        s(&self.path("idwire.py"))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("(scratch files kept in {})", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Taken by the two flood tests, which each keep a core busy for half a minute: cargo test
/// runs a binary's tests two at a time on two cores, and together each would measure its
/// daemons under the other's flood. With it they run one after the other (the other tests
/// of this binary still run beside either).
static FLOODS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A node's key pair, made by the binary: the private key file (mode 600) and the public key.
struct Key {
    file: PathBuf,
    public: String,
}

fn genkey(scratch: &Scratch, name: &str) -> Key {
    let file = scratch.path(&format!("{name}.key"));
    let public = e2e::genkey(&file);
    Key { file, public }
}

/// Writes a trust file of `<pubkey> <name>` lines.
fn trust_file(path: &Path, keys: &[(&Key, &str)]) {
    let mut text = String::from("# written by tests/e2e_identity.rs\n");
    for (key, name) in keys {
        text.push_str(&format!("{} {name}\n", key.public));
    }
    fs::write(path, text).expect("write a trust file");
}

fn s(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// Starts an identity-mode daemon on `host` with a stats file written every second; returns
/// its index in `lab.daemons` and the stats file.
fn start_node(
    lab: &mut Lab,
    scratch: &Scratch,
    host: &Host,
    key: &Key,
    trusted: &Path,
    extra: &[&str],
) -> (usize, PathBuf) {
    let stats = scratch.path(&format!("h{}.stats", host.index));
    let mut args: Vec<String> = [
        "-t",
        TOKEN,
        "--private-key",
        &s(&key.file),
        "--trusted",
        &s(trusted),
        "--stats-file",
        &s(&stats),
        "--stats-interval",
        "1",
    ]
    .iter()
    .map(|a| (*a).to_owned())
    .collect();
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = lab.start(host, &args);
    (id, stats)
}

fn read_stats(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The value of counter `name` (a `name value` line) in a stats snapshot.
fn counter(stats: &str, name: &str) -> Option<u64> {
    stats.lines().find_map(|l| {
        let (n, v) = l.split_once(' ')?;
        if n == name {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

fn count(path: &Path, name: &str) -> u64 {
    counter(&read_stats(path), name).unwrap_or(0)
}

/// The 8-hex-digit id of the session with `addr` in a stats snapshot.
fn session_id(stats: &str, addr: &str) -> Option<String> {
    let line = stats
        .lines()
        .find(|l| l.starts_with(&format!("session {addr} ")))?;
    let (_, rest) = line.split_once(", id ")?;
    Some(rest.split(',').next()?.trim().to_owned())
}

/// Polls the stats file until `ok` holds, or panics at the deadline with the last snapshot.
fn wait_stats(path: &Path, timeout: Duration, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let stats = read_stats(path);
        if ok(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < timeout,
            "{}: no {what} within {timeout:?}; last snapshot:\n{stats}",
            path.display()
        );
        thread::sleep(POLL);
    }
}

fn wait_counter(path: &Path, name: &str, at_least: u64, timeout: Duration) -> u64 {
    let stats = wait_stats(path, timeout, &format!("{name} >= {at_least}"), |st| {
        counter(st, name).is_some_and(|v| v >= at_least)
    });
    counter(&stats, name).unwrap_or(0)
}

/// `key=value` from a helper's one-line summary.
fn field(text: &str, key: &str) -> Option<String> {
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

fn num(text: &str, key: &str) -> u64 {
    field(text, key)
        .and_then(|v| v.trim_end_matches("/s").parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

/// `(transmitted, received)` from ping's summary line.
fn ping_summary(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut parts = line.split(',');
    let tx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    let rx = parts.next()?.split_whitespace().next()?.parse().ok()?;
    Some((tx, rx))
}

/// The wall-clock times (from `ping -D`) of the replies in a ping log.
fn reply_times(text: &str) -> Vec<f64> {
    text.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse().ok())
        .collect()
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Runs `f` on a thread that entered `host`'s network namespace (so its sockets live there)
/// and returns its result.
fn in_netns<T: Send + 'static>(host: &Host, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/var/run/netns/{}", host.ns);
    thread::spawn(move || {
        let ns = fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // SAFETY: setns with a valid namespace fd; it moves only this thread.
        let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("the thread in the namespace panicked")
}

/// The daemon's peak RSS (VmHWM) and current RSS (VmRSS) in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    let get = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmHWM:"), get("VmRSS:"))
}

/// The daemon's CPU time (user + system) in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command name (which ends with the last ')'): state is field 3, utime 14.
    let rest = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    ticks as f64 / hz as f64
}

/// The UDP `RcvbufErrors` counter of `host`'s namespace (datagrams dropped for a full socket
/// receive buffer).
fn udp_rcvbuf_errors(lab: &Lab, host: &Host) -> u64 {
    let out = lab.run(host, &["cat", "/proc/net/snmp"], SOON);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return 0;
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// Starts an iperf3 server on `server`'s overlay address, runs a `secs`-second TCP test from
/// `client` and returns the receiver's rate in Gb/s.
fn iperf3(lab: &mut Lab, client: &Host, server: &Host, secs: u32) -> f64 {
    iperf3_at(lab, client, server, &server.overlay_v4(), secs)
}

/// [`iperf3`] to the server's overlay address `bind` (IPv4 or IPv6).
fn iperf3_at(lab: &mut Lab, client: &Host, server: &Host, bind: &str, secs: u32) -> f64 {
    let bind = bind.to_owned();
    let listening = |lab: &Lab| {
        let out = lab.run(server, &["ss", "-Hltn", "sport = :5201"], SOON);
        !out.stdout.is_empty()
    };
    // The one-off server of an earlier run may still be closing: wait until the port is
    // free, so that the listener seen below is the new one.
    let start = Instant::now();
    while listening(lab) {
        assert!(
            start.elapsed() < SOON,
            "an earlier iperf3 server still listens after {SOON:?}"
        );
        thread::sleep(POLL);
    }
    lab.helper(
        server,
        "iperf3-server",
        &["iperf3", "-s", "-1", "-B", &bind],
    );
    let start = Instant::now();
    loop {
        if listening(lab) {
            break;
        }
        assert!(
            start.elapsed() < SOON,
            "iperf3 server not listening after {SOON:?}"
        );
        thread::sleep(POLL);
    }
    let t = secs.to_string();
    let out = lab.run(
        client,
        &[
            "iperf3",
            "-c",
            &bind,
            "-t",
            &t,
            "-f",
            "g",
            "--connect-timeout",
            "5000",
        ],
        Duration::from_secs(u64::from(secs) + 30),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("receiver"))
        .unwrap_or_else(|| panic!("iperf3 failed: {stdout} {out:?}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| *w == "Gbits/sec")
        .unwrap_or_else(|| panic!("no Gbits/sec in {line:?}"));
    words[at - 1].parse().expect("a rate")
}

/// Keys for h1, h2 and h3, and a trust file `net.trusted` naming all three.
fn three_members(scratch: &Scratch) -> (Vec<Key>, PathBuf) {
    let keys: Vec<Key> = (1..=3).map(|i| genkey(scratch, &format!("h{i}"))).collect();
    let trusted = scratch.path("net.trusted");
    trust_file(
        &trusted,
        &[(&keys[0], "h1"), (&keys[1], "h2"), (&keys[2], "h3")],
    );
    (keys, trusted)
}

/// The kernel's count of TCP segments received with a bad checksum in `host`'s namespace
/// (`InCsumErrors` of `Tcp` in /proc/net/snmp, IPv4 and IPv6 alike).
fn tcp_checksum_errors(lab: &Lab, host: &Host) -> u64 {
    let out = lab.run(host, &["cat", "/proc/net/snmp"], SOON);
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().unwrap_or_default(),
        tcp.next().unwrap_or_default(),
    );
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "InCsumErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no Tcp InCsumErrors in /proc/net/snmp of {}: {text}",
                host.ns
            )
        })
}

/// The counters of refused handshake messages.
const HANDSHAKE_REFUSALS: [&str; 5] = [
    "handshakes_invalid",
    "handshakes_forged",
    "handshakes_untrusted",
    "handshakes_replayed",
    "handshakes_rate_limited",
];

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn three_nodes_with_per_node_keys_ping_each_other_and_carry_iperf3() {
    let scratch = Scratch::new("three");
    let (keys, trusted) = three_members(&scratch);

    let mut lab = Lab::new(3);
    let hosts: Vec<Host> = (1..=3).map(|i| lab.host(i)).collect();
    let hub = hosts[0].addr_v4();
    let mut stats = Vec::new();
    let sockets: Vec<String> = (1..=3)
        .map(|i| s(&scratch.path(&format!("h{i}.sock"))))
        .collect();
    for (i, host) in hosts.iter().enumerate() {
        let mut extra = vec!["--control-socket", sockets[i].as_str()];
        if i > 0 {
            extra.extend(["-c", hub.as_str()]);
        }
        stats.push(start_node(&mut lab, &scratch, host, &keys[i], &trusted, &extra).1);
    }
    let start = Instant::now();
    for from in &hosts {
        for to in &hosts {
            if from.index != to.index {
                lab.assert_ping(from, &to.overlay_v4());
            }
        }
    }
    println!("all six directions ping after {:.1?}", start.elapsed());
    // Every node holds a session with both others, under the names of the trust file.
    for (i, path) in stats.iter().enumerate() {
        let snapshot = wait_stats(path, SOON, "two sessions", |st| {
            hosts
                .iter()
                .filter(|h| usize::from(h.index) != i + 1)
                .all(|h| session_id(st, &h.addr_v4()).is_some())
        });
        assert!(
            snapshot.contains(&format!("public key {}", keys[i].public)),
            "{snapshot}"
        );
        for (j, host) in hosts.iter().enumerate() {
            if i != j {
                let needle = format!("key {} (h{})", keys[j].public, host.index);
                assert!(snapshot.contains(&needle), "no {needle:?} in\n{snapshot}");
            }
        }
        assert_eq!(counter(&snapshot, "handshakes_forged"), Some(0));
        assert_eq!(counter(&snapshot, "handshakes_untrusted"), Some(0));
        // Both sessions switched to AEGIS-128L after the Hellos (on a CPU with AES).
        if e2e::cpu::seals_aegis_here() {
            wait_counter(path, "sessions_switched_to_aegis", 2, SOON);
            // To AEGIS-128X4 where the CPU (the same at both ends here) has 512-bit vector AES:
            // `ethcloud show` names the cipher of both sessions.
            let cipher = if ethcloud::crypto::has_vector_aes() {
                Cipher::Aegis128X4
            } else {
                Cipher::Aegis128L
            };
            let out = lab.run(
                &hosts[i],
                &[e2e::ETHCLOUD, "show", "--socket", &sockets[i]],
                SOON,
            );
            let shown = String::from_utf8_lossy(&out.stdout);
            let line = format!("packets sealed, {cipher}");
            assert_eq!(shown.matches(&line).count(), 2, "{out:?}");
        }
    }
    // `show --json` with per-node keys (the node's key, each peer's key and session) is what
    // the schema says (tests/show.rs checks it in the clear protocol).
    let out = lab.run(
        &hosts[0],
        &[e2e::ETHCLOUD, "show", "--json", "--socket", &sockets[0]],
        SOON,
    );
    let json = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    for key in [
        // (Its own key, on the trust file's first line, is not counted.)
        format!("\"public_key\":\"{}\",\"trusted_keys\":2,", keys[0].public),
        format!("\"key\":\"{}\",\"key_name\":\"h2\"", keys[1].public),
    ] {
        assert!(json.contains(&key), "no {key} in {json}");
    }
    e2e::assert_show_json_schema(&lab, &hosts[0], &scratch.path("show.json"), &json);
    let gbps = iperf3(&mut lab, &hosts[0], &hosts[2], 3);
    println!("iperf3 h1 -> h3 over per-node-key sessions, 3 s TCP: {gbps:.2} Gb/s");
    assert!(gbps > 0.0);
    for d in &mut lab.daemons {
        assert!(d.poll_exit().is_none(), "{} died", d.host.ns);
    }
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn checksums_are_left_partial_only_to_a_peer_whose_tap_completes_them() {
    // h1 and h2 have taps with a virtio-net header: each says in its Hellos that it completes
    // TCP/UDP checksums left partial (flag 0x20). h3 runs with --no-offload (a plain tap, as
    // an older node would be to this extension): it never says so, and must be sent frames
    // with complete checksums, or its kernel would drop them and TCP would stall.
    let scratch = Scratch::new("partial");
    let (keys, trusted) = three_members(&scratch);
    let mut lab = Lab::new(3);
    let hosts: Vec<Host> = (1..=3).map(|i| lab.host(i)).collect();
    let hub = hosts[0].addr_v4();
    let mut stats = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let mut extra = Vec::new();
        if i > 0 {
            extra.extend(["-c", hub.as_str()]);
        }
        if i == 2 {
            extra.push("--no-offload");
        }
        stats.push(start_node(&mut lab, &scratch, host, &keys[i], &trusted, &extra).1);
    }
    for to in &hosts[1..] {
        lab.assert_ping(&hosts[0], &to.overlay_v4());
        lab.assert_ping(to, &hosts[0].overlay_v4());
    }
    // h2's Hello in its session with h1 said it completes checksums; h3's did not.
    lab.daemons[0].wait_log(
        &format!(
            "{} completes checksums left partial: true",
            hosts[1].addr_v4()
        ),
        SOON,
    );

    // To h3 and back: complete checksums both ways, nothing left partial by h1.
    let gbps = iperf3(&mut lab, &hosts[0], &hosts[2], 2);
    println!("h1 -> h3 (plain tap), 2 s TCP: {gbps:.2} Gb/s");
    assert!(gbps > 0.1, "{gbps}");
    let gbps = iperf3(&mut lab, &hosts[2], &hosts[0], 2);
    println!("h3 -> h1, 2 s TCP: {gbps:.2} Gb/s");
    assert!(gbps > 0.1, "{gbps}");
    let snapshot = wait_stats(&stats[0], SOON, "a snapshot after the runs", |st| {
        counter(st, "frames_to_device").is_some_and(|v| v > 1000)
    });
    assert_eq!(
        counter(&snapshot, "partial_checksum_superframes"),
        Some(0),
        "h1 left checksums partial for h3, which does not complete them"
    );

    // To h2: the super-frames h1 cuts leave their checksums to h2, and TCP runs as well.
    let gbps = iperf3(&mut lab, &hosts[0], &hosts[1], 2);
    println!("h1 -> h2 (checksums left partial), 2 s TCP: {gbps:.2} Gb/s");
    assert!(gbps > 0.1, "{gbps}");
    let partial = wait_counter(&stats[0], "partial_checksum_superframes", 100, SOON);
    println!("h1 cut {partial} super-frames for h2 with partial checksums");
    // And over IPv6 (the other pseudo-header).
    let v6 = hosts[1].overlay_v6();
    let gbps = iperf3_at(&mut lab, &hosts[0], &hosts[1], &v6, 2);
    println!("h1 -> h2 over IPv6, 2 s TCP: {gbps:.2} Gb/s");
    assert!(gbps > 0.1, "{gbps}");
    let more = wait_counter(
        &stats[0],
        "partial_checksum_superframes",
        partial + 100,
        SOON,
    );
    println!("{} more over IPv6", more - partial);
    // No receiving kernel ever saw a bad TCP checksum: h2 completed every one left partial
    // (coalesced or not), and h3 was never sent one.
    for host in &hosts[1..] {
        assert_eq!(tcp_checksum_errors(&lab, host), 0, "in {}", host.ns);
    }
    for d in &mut lab.daemons {
        assert!(d.poll_exit().is_none(), "{} died", d.host.ns);
    }
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn a_node_with_a_valid_key_nobody_trusts_gets_no_reply_at_all() {
    let scratch = Scratch::new("untrusted");
    let keys: Vec<Key> = (1..=4)
        .map(|i| genkey(&scratch, &format!("h{i}")))
        .collect();
    let members = scratch.path("members.trusted");
    trust_file(
        &members,
        &[(&keys[0], "h1"), (&keys[1], "h2"), (&keys[2], "h3")],
    );
    // h4 trusts them all (a trust directory, one file per node).
    let dir = scratch.path("h4.trusted.d");
    fs::create_dir_all(&dir).expect("trust dir");
    for (i, key) in keys.iter().enumerate() {
        trust_file(
            &dir.join(format!("h{}", i + 1)),
            &[(key, &format!("h{}", i + 1))],
        );
    }

    let mut lab = Lab::new(4);
    let hosts: Vec<Host> = (1..=4).map(|i| lab.host(i)).collect();
    let hub = hosts[0].addr_v4();
    let mut stats = Vec::new();
    for (i, host) in hosts[..3].iter().enumerate() {
        let extra: &[&str] = if i == 0 { &[] } else { &["-c", &hub] };
        stats.push(start_node(&mut lab, &scratch, host, &keys[i], &members, extra).1);
    }
    lab.assert_ping(&hosts[1], &hosts[2].overlay_v4());
    lab.assert_ping(&hosts[0], &hosts[2].overlay_v4());

    // Capture h4's underlay from before its daemon starts until 8 s later.
    let capture_secs = 8;
    let watch = lab.helper(
        &hosts[3],
        "watch",
        &[
            "python3",
            &scratch.idwire(),
            "watch",
            "eth0",
            &capture_secs.to_string(),
            &PORT.to_string(),
        ],
    );
    e2e::wait_file_contains(&watch, "ready", SOON);
    let connect: Vec<String> = hosts[..3].iter().map(Host::addr_v4).collect();
    let (_, stats4) = start_node(
        &mut lab,
        &scratch,
        &hosts[3],
        &keys[3],
        &dir,
        &["-c", &connect[0], "-c", &connect[1], "-c", &connect[2]],
    );
    // It keeps trying while the capture runs: pings make it send.
    for _ in 0..3 {
        assert!(!lab.ping_once(&hosts[3], &hosts[0].overlay_v4()));
    }
    e2e::wait_file_contains(
        &watch,
        "in_from_port=",
        Duration::from_secs(capture_secs + 20),
    );
    let seen = fs::read_to_string(&watch).unwrap_or_default();
    let summary = seen.lines().last().unwrap_or_default();
    println!("h4 underlay capture, {capture_secs} s: {summary}");
    assert_eq!(
        num(summary, "in_from_port"),
        0,
        "the untrusted node got replies"
    );
    assert!(
        num(summary, "out_initiations") >= 1,
        "the untrusted node sent no initiations"
    );

    let st4 = wait_stats(&stats4, SOON, "initiations sent", |st| {
        counter(st, "handshake_initiations_sent").is_some_and(|v| v > 0)
    });
    assert_eq!(counter(&st4, "sessions_made"), Some(0), "{st4}");
    assert!(st4.contains("\npeers 0\n"), "{st4}");
    for (i, path) in stats.iter().enumerate() {
        let untrusted = wait_counter(path, "handshakes_untrusted", 1, SOON);
        let st = read_stats(path);
        println!(
            "h{}: handshakes_untrusted {untrusted}, handshakes_invalid {}, handshake_responses_sent {}",
            i + 1,
            counter(&st, "handshakes_invalid").unwrap_or(0),
            counter(&st, "handshake_responses_sent").unwrap_or(0)
        );
        assert!(!st.contains(&hosts[3].underlay_v4()), "h4 shows up:\n{st}");
    }
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn an_impersonator_with_a_trusted_public_key_but_not_its_private_key_is_ignored() {
    let scratch = Scratch::new("impersonate");
    let k1 = genkey(&scratch, "h1");
    let k2 = genkey(&scratch, "h2");
    let spare = genkey(&scratch, "spare"); // trusted, no daemon: the forger's control
    let mallory = genkey(&scratch, "mallory");
    let trusted = scratch.path("net.trusted");
    trust_file(&trusted, &[(&k1, "h1"), (&k2, "h2"), (&spare, "spare")]);

    // h3 forges; h4 sends the control's genuine initiation. (A session h1 answers and that
    // nothing then opens in is renewed by h1 five seconds later: towards h4, not towards the
    // forger, whose underlay must see nothing from h1.)
    let mut lab = Lab::new(4);
    let (h1, h2, h3, h4) = (lab.host(1), lab.host(2), lab.host(3), lab.host(4));
    let (_, stats1) = start_node(&mut lab, &scratch, &h1, &k1, &trusted, &[]);
    start_node(
        &mut lab,
        &scratch,
        &h2,
        &k2,
        &trusted,
        &["-c", &h1.addr_v4()],
    );
    lab.assert_ping(&h2, &h1.overlay_v4());
    let before = wait_stats(&stats1, SOON, "a session with h2", |st| {
        session_id(st, &h2.addr_v4()).is_some()
    });
    let h2_session = session_id(&before, &h2.addr_v4());

    let forge = |from: &Host, claimed: &Key, secret: &Key, count: &str| -> String {
        let args: Vec<String> = [
            TOKEN,
            &k1.public,
            &claimed.public,
            &s(&secret.file),
            &h1.addr_v4(),
            count,
            "2",
        ]
        .iter()
        .map(|a| (*a).to_owned())
        .collect();
        in_netns(from, move || forge_initiation::run(&args))
            .unwrap_or_else(|e| panic!("forge_initiation failed: {e}"))
    };

    // Control: with the spare key's own private key the hand-built initiation is genuine and
    // answered, so the silence below is the forgery's, not the forger's.
    let responses = count(&stats1, "handshake_responses_sent");
    let control = forge(&h4, &spare, &spare, "1");
    println!("genuine initiation (spare key, its own private key): {control}");
    assert_eq!(
        num(&control, "responses"),
        1,
        "the genuine initiation was not answered"
    );
    wait_counter(&stats1, "handshake_responses_sent", responses + 1, SOON);

    // The impersonator: h2's public key (a live node) and the spare's, Mallory's private key.
    let watch = lab.helper(
        &h3,
        "watch",
        &[
            "python3",
            &scratch.idwire(),
            "watch",
            "eth0",
            "9",
            &PORT.to_string(),
        ],
    );
    e2e::wait_file_contains(&watch, "ready", SOON);
    let forged = count(&stats1, "handshakes_forged");
    let responses = count(&stats1, "handshake_responses_sent");
    let as_h2 = forge(&h3, &k2, &mallory, "5");
    let as_spare = forge(&h3, &spare, &mallory, "5");
    println!("forged as h2: {as_h2}; forged as spare: {as_spare}");
    assert_eq!(
        num(&as_h2, "replies"),
        0,
        "an impersonation of h2 was answered"
    );
    assert_eq!(
        num(&as_spare, "replies"),
        0,
        "an impersonation of spare was answered"
    );
    let now_forged = wait_counter(&stats1, "handshakes_forged", forged + 10, SOON);
    e2e::wait_file_contains(&watch, "in_from_port=", SOON);
    let seen = fs::read_to_string(&watch).unwrap_or_default();
    let summary = seen.lines().last().unwrap_or_default();
    println!("impersonator's underlay capture: {summary}");
    assert_eq!(num(summary, "in_from_port"), 0);
    assert_eq!(num(summary, "out_initiations"), 10);

    let after = read_stats(&stats1);
    println!(
        "h1: handshakes_forged {forged} -> {now_forged}, handshake_responses_sent {responses} -> {}",
        counter(&after, "handshake_responses_sent").unwrap_or(0)
    );
    assert_eq!(counter(&after, "handshake_responses_sent"), Some(responses));
    // The real h2 is undisturbed: same session, pings flow.
    assert_eq!(session_id(&after, &h2.addr_v4()), h2_session, "{after}");
    lab.assert_ping(&h1, &h2.overlay_v4());
    assert!(
        !after.contains(&h3.underlay_v4()),
        "the forger shows up:\n{after}"
    );
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn removing_a_key_and_sighup_cuts_its_node_off_while_traffic_runs() {
    const CUT_WITHIN: Duration = Duration::from_secs(2);
    const STAYS_OUT: Duration = Duration::from_secs(30);
    let scratch = Scratch::new("revoke");
    let keys: Vec<Key> = (1..=3)
        .map(|i| genkey(&scratch, &format!("h{i}")))
        .collect();
    // A and B share a trust directory, one file per node; C has a trust file of its own.
    let dir = scratch.path("ab.trusted.d");
    fs::create_dir_all(&dir).expect("trust dir");
    for (i, key) in keys.iter().enumerate() {
        trust_file(
            &dir.join(format!("h{}", i + 1)),
            &[(key, &format!("h{}", i + 1))],
        );
    }
    let c_trusted = scratch.path("c.trusted");
    trust_file(
        &c_trusted,
        &[(&keys[0], "h1"), (&keys[1], "h2"), (&keys[2], "h3")],
    );

    let mut lab = Lab::new(3);
    let (a, b, c) = (lab.host(1), lab.host(2), lab.host(3));
    let (ad, stats_a) = start_node(&mut lab, &scratch, &a, &keys[0], &dir, &[]);
    let (bd, stats_b) = start_node(
        &mut lab,
        &scratch,
        &b,
        &keys[1],
        &dir,
        &["-c", &a.addr_v4()],
    );
    // C renews its sessions every 10 s, so it knocks again while it is out.
    let (_, stats_c) = start_node(
        &mut lab,
        &scratch,
        &c,
        &keys[2],
        &c_trusted,
        &["-c", &a.addr_v4(), "--rekey-after", "10"],
    );
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&c, &a.overlay_v4());
    lab.assert_ping(&c, &b.overlay_v4());
    for path in [&stats_a, &stats_b] {
        wait_stats(path, SOON, "a session with C", |st| {
            session_id(st, &c.addr_v4()).is_some()
        });
    }

    // Traffic: A pings B for 40 s, C pings A until the end.
    let ab = lab.helper(
        &a,
        "ping-ab",
        &[
            "ping",
            "-n",
            "-D",
            "-i",
            "0.2",
            "-c",
            "200",
            "-W",
            "1",
            &b.overlay_v4(),
        ],
    );
    let ca = lab.helper(
        &c,
        "ping-ca",
        &[
            "ping",
            "-n",
            "-D",
            "-i",
            "0.2",
            "-w",
            "45",
            "-W",
            "1",
            &a.overlay_v4(),
        ],
    );
    let start = Instant::now();
    while reply_times(&fs::read_to_string(&ca).unwrap_or_default()).len() < 5 {
        assert!(start.elapsed() < SOON, "C's pings to A get no replies");
        thread::sleep(POLL);
    }
    let untrusted_before =
        count(&stats_a, "handshakes_untrusted") + count(&stats_b, "handshakes_untrusted");

    // The operator removes C's file and reloads A and B.
    fs::remove_file(dir.join("h3")).expect("remove C's trust file");
    let cut_wall = unix_now();
    let cut = Instant::now();
    lab.daemons[ad].signal(libc::SIGHUP);
    lab.daemons[bd].signal(libc::SIGHUP);
    for id in [ad, bd] {
        lab.daemons[id].wait_log("is no longer trusted", SOON);
        let took = cut.elapsed();
        assert!(took < CUT_WITHIN, "sessions dropped only after {took:?}");
    }
    let logged = cut.elapsed();
    let c_addr = c.underlay_v4();
    for path in [&stats_a, &stats_b] {
        // The stats file is rewritten every second.
        wait_stats(path, CUT_WITHIN + Duration::from_secs(1), "C gone", |st| {
            !st.contains(&c_addr) && counter(st, "sessions_revoked").is_some_and(|v| v >= 1)
        });
    }
    let listed = cut.elapsed();
    println!("C's sessions dropped {logged:.2?} after SIGHUP (log); gone from A's and B's stats after {listed:.2?}");

    // C stays out for 30 s: no peer, no session, no reply, while it keeps knocking.
    let out_until = Instant::now() + STAYS_OUT;
    while Instant::now() < out_until {
        for path in [&stats_a, &stats_b] {
            let st = read_stats(path);
            assert!(
                !st.contains(&c_addr),
                "C is back in {}:\n{st}",
                path.display()
            );
        }
        thread::sleep(Duration::from_millis(500));
    }
    let replies = reply_times(&fs::read_to_string(&ca).unwrap_or_default());
    let last = replies.last().copied().unwrap_or(0.0) - cut_wall;
    println!(
        "C -> A: {} replies before SIGHUP, last reply {last:.2} s after SIGHUP, none for the {STAYS_OUT:?} after",
        replies.len()
    );
    assert!(
        last < CUT_WITHIN.as_secs_f64(),
        "C got a reply {last:.2} s after SIGHUP"
    );
    let untrusted_after =
        count(&stats_a, "handshakes_untrusted") + count(&stats_b, "handshakes_untrusted");
    let st_c = read_stats(&stats_c);
    println!(
        "A+B handshakes_untrusted {untrusted_before} -> {untrusted_after} (C's renewals refused); A drop_unauthenticated {}; C session_rekeys {}",
        count(&stats_a, "drop_unauthenticated"),
        counter(&st_c, "session_rekeys").unwrap_or(0)
    );
    assert!(
        untrusted_after > untrusted_before,
        "C did not knock again (its renewals)"
    );

    // A <-> B never noticed.
    e2e::wait_file_contains(&ab, "packets transmitted", Duration::from_secs(30));
    let text = fs::read_to_string(&ab).unwrap_or_default();
    let (tx, rx) = ping_summary(&text).expect("ping summary");
    println!("A -> B during the revocation: {tx} sent, {rx} answered");
    assert!(tx - rx <= 1, "A -> B lost {} of {tx}", tx - rx);
    lab.assert_ping(&b, &a.overlay_v4());
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn sessions_renew_on_the_timer_and_a_datagram_of_two_sessions_ago_is_dropped() {
    const PATTERN: &str = "e2e1d0c0ffee5a5a";
    let scratch = Scratch::new("renew");
    let k1 = genkey(&scratch, "h1");
    let k2 = genkey(&scratch, "h2");
    let trusted = scratch.path("net.trusted");
    trust_file(&trusted, &[(&k1, "h1"), (&k2, "h2")]);

    let mut lab = Lab::new(2);
    let (h1, h2) = (lab.host(1), lab.host(2));
    let rekey = ["--rekey-after", "10"];
    start_node(&mut lab, &scratch, &h1, &k1, &trusted, &rekey);
    let (_, stats2) = start_node(
        &mut lab,
        &scratch,
        &h2,
        &k2,
        &trusted,
        &["-c", &h1.addr_v4(), rekey[0], rekey[1]],
    );
    lab.assert_ping(&h1, &h2.overlay_v4());
    let h1_addr = h1.addr_v4();

    // A ping that must lose nothing, across the renewals (35 s).
    let ping = lab.helper(
        &h1,
        "ping",
        &[
            "ping",
            "-n",
            "-i",
            "0.2",
            "-c",
            "175",
            "-W",
            "1",
            &h2.overlay_v4(),
        ],
    );
    let observe_from = Instant::now();
    // What reaches h2's tap with the pattern, and one sealed datagram h1 -> h2 of a big ping.
    let tap = lab.helper(
        &h2,
        "tap",
        &["python3", &scratch.idwire(), "match", TAP, "50", PATTERN],
    );
    e2e::wait_file_contains(&tap, "ready", SOON);
    let frame = scratch.path("sealed.hex");
    let grab = lab.helper(
        &h2,
        "grab",
        &[
            "python3",
            &scratch.idwire(),
            "grab",
            "eth0",
            "15",
            &PORT.to_string(),
            "900",
            &s(&frame),
        ],
    );
    e2e::wait_file_contains(&grab, "ready", SOON);
    let out = lab.run(
        &h1,
        &[
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            "-s",
            "1000",
            "-p",
            PATTERN,
            &h2.overlay_v4(),
        ],
        SOON,
    );
    assert!(out.status.success(), "the patterned ping failed: {out:?}");
    e2e::wait_file_contains(&grab, "grabbed", SOON);
    let grabbed = fs::read_to_string(&grab).unwrap_or_default();
    let grabbed = grabbed.lines().last().unwrap_or_default().to_owned();
    println!("captured on h2's underlay: {grabbed}");
    assert!(!grabbed.contains("none"), "no sealed datagram captured");
    let captured_session = field(&grabbed, "session").expect("session");
    e2e::wait_file_contains(&tap, "match", SOON);
    let matches = |tap: &Path| {
        fs::read_to_string(tap)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == "match")
            .count()
    };
    assert_eq!(matches(&tap), 1, "the genuine frame reached the tap once");

    // The session it was sealed in is h2's current one (the stats show its first 4 bytes).
    let st = wait_stats(&stats2, SOON, "the captured session", |st| {
        session_id(st, &h1_addr).is_some_and(|id| captured_session.starts_with(&id))
    });
    let rekeys_at_capture = counter(&st, "session_rekeys").unwrap_or(0);
    let mut ids = vec![session_id(&st, &h1_addr).expect("id")];

    let inject = |lab: &Lab| {
        let out = lab.run(
            &h1,
            &["python3", &scratch.idwire(), "inject", "eth0", &s(&frame)],
            SOON,
        );
        assert!(out.status.success(), "inject failed: {out:?}");
    };
    // Control: replayed within its session it is refused by the replay window.
    let replayed = count(&stats2, "drop_replayed");
    inject(&lab);
    wait_counter(
        &stats2,
        "drop_replayed",
        replayed + 1,
        Duration::from_secs(5),
    );

    // Two renewals later that session is gone.
    let record = |ids: &mut Vec<String>, st: &str| {
        if let Some(id) = session_id(st, &h1_addr) {
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let st = read_stats(&stats2);
        record(&mut ids, &st);
        if counter(&st, "session_rekeys").unwrap_or(0) >= rekeys_at_capture + 2 && ids.len() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no two renewals within 40 s:\n{st}"
        );
        thread::sleep(POLL);
    }
    let unauthenticated = count(&stats2, "drop_unauthenticated");
    let replayed = count(&stats2, "drop_replayed");
    inject(&lab);
    let start = Instant::now();
    let st = loop {
        let st = read_stats(&stats2);
        let grew = counter(&st, "drop_unauthenticated").unwrap_or(0) > unauthenticated
            || counter(&st, "drop_replayed").unwrap_or(0) > replayed;
        if grew {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the replay was not counted:\n{st}"
        );
        thread::sleep(POLL);
    };
    println!(
        "replayed after 2 renewals: drop_unauthenticated {unauthenticated} -> {}, drop_replayed {replayed} -> {}",
        counter(&st, "drop_unauthenticated").unwrap_or(0),
        counter(&st, "drop_replayed").unwrap_or(0)
    );

    // Keep watching the renewals until 35 s have passed.
    while observe_from.elapsed() < Duration::from_secs(35) {
        record(&mut ids, &read_stats(&stats2));
        thread::sleep(Duration::from_millis(250));
    }
    e2e::wait_file_contains(&ping, "packets transmitted", Duration::from_secs(20));
    let st = read_stats(&stats2);
    let rekeys = counter(&st, "session_rekeys").unwrap_or(0);
    let (tx, rx) =
        ping_summary(&fs::read_to_string(&ping).unwrap_or_default()).expect("ping summary");
    println!(
        "h2's session ids with h1 over {:.0?}: {} ; session_rekeys {rekeys}; ping {tx} sent, {rx} answered",
        observe_from.elapsed(),
        ids.join(" -> ")
    );
    assert!(rekeys >= 2, "session_rekeys {rekeys}");
    assert!(
        ids.len() >= 3,
        "the session id changed fewer than twice: {ids:?}"
    );
    assert_eq!(
        tx,
        rx,
        "the ping lost {} of {tx} across the renewals",
        tx - rx
    );
    assert_eq!(matches(&tap), 1, "a replayed frame reached the tap");
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn a_flood_of_100k_untrusted_initiations_leaves_rss_and_cpu_bounded_and_traffic_flowing() {
    let _alone = FLOODS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    const FLOOD: u64 = 100_000;
    const RSS_BOUND_KIB: u64 = 8 * 1024;
    const SOURCES: u8 = 32;
    let scratch = Scratch::new("flood");
    let k1 = genkey(&scratch, "h1");
    let k2 = genkey(&scratch, "h2");
    let trusted = scratch.path("net.trusted");
    trust_file(&trusted, &[(&k1, "h1"), (&k2, "h2")]);

    let mut lab = Lab::new(3);
    lab.verbose = false; // as deployed: info level
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let (d1, stats1) = start_node(&mut lab, &scratch, &h1, &k1, &trusted, &[]);
    start_node(
        &mut lab,
        &scratch,
        &h2,
        &k2,
        &trusted,
        &["-c", &h1.addr_v4()],
    );
    lab.assert_ping(&h2, &h1.overlay_v4());
    // The flooder gets 32 source addresses, so the overall limit is hit, not only per source.
    let mut sources = Vec::new();
    for i in 0..SOURCES {
        let addr = format!("198.18.0.{}", 100 + i);
        e2e::ip(&[
            "-n",
            &h3.ns,
            "addr",
            "add",
            &format!("{addr}/24"),
            "dev",
            "eth0",
        ]);
        sources.push(addr);
    }
    let pid = lab.daemons[d1].pid();
    // A snapshot written after the handshake with h2 (the stats file lags up to a second).
    let before = wait_stats(&stats1, SOON, "the answered handshake of h2", |st| {
        counter(st, "handshake_responses_sent").is_some_and(|v| v >= 1)
            && session_id(st, &h2.addr_v4()).is_some()
    });
    let measured = Instant::now();
    let (hwm0, rss0) = rss_kib(pid);
    let cpu0 = cpu_secs(pid);

    let ping = lab.helper(
        &h2,
        "ping",
        &[
            "ping",
            "-n",
            "-i",
            "0.05",
            "-c",
            "120",
            "-W",
            "1",
            &h1.overlay_v4(),
        ],
    );
    // The flood starts once the ping is going: its first reply is in the log.
    e2e::wait_file_contains(&ping, "bytes from", SOON);
    let mut args: Vec<String> = vec![
        TOKEN.to_owned(),
        k1.public.clone(),
        h1.addr_v4(),
        FLOOD.to_string(),
        "200".to_owned(),
        "256".to_owned(),
    ];
    args.extend(sources.iter().cloned());
    let rcvbuf_errors0 = udp_rcvbuf_errors(&lab, &h1);
    // Attacker and target share this machine's cores; the attacker's thread runs at nice 19 so
    // that it takes CPU the target does not want, as an attacker elsewhere would (it still
    // sends as fast as it can).
    let flood = in_netns(&h3, move || {
        // SAFETY: setpriority on this thread's own id; no memory is passed.
        unsafe {
            let tid = libc::id_t::try_from(libc::gettid()).unwrap_or(0);
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
        handshake_flood::run(&args)
    })
    .unwrap_or_else(|e| panic!("handshake_flood failed: {e}"));
    e2e::wait_file_contains(&ping, "packets transmitted", Duration::from_secs(30));
    // Until the daemon has worked through what it read: two snapshots a second and more apart
    // with the same handshake counters, which include the flood.
    let handled = |st: &str| -> u64 {
        HANDSHAKE_REFUSALS
            .iter()
            .map(|n| counter(st, n).unwrap_or(0))
            .sum()
    };
    let handled_before = handled(&before);
    let drained = Instant::now();
    let mut last = (handled_before, Instant::now());
    loop {
        let now = handled(&read_stats(&stats1));
        if now != last.0 {
            last = (now, Instant::now());
        } else if now > handled_before && last.1.elapsed() > Duration::from_millis(1200) {
            break;
        }
        assert!(
            drained.elapsed() < Duration::from_secs(60),
            "the target's handshake counters did not settle"
        );
        thread::sleep(POLL);
    }
    let (hwm1, rss1) = rss_kib(pid);
    let cpu = cpu_secs(pid) - cpu0;
    let after = read_stats(&stats1);
    let rcvbuf_errors = udp_rcvbuf_errors(&lab, &h1) - rcvbuf_errors0;
    let (tx, rx) =
        ping_summary(&fs::read_to_string(&ping).unwrap_or_default()).expect("ping summary");

    let delta =
        |name: &str| counter(&after, name).unwrap_or(0) - counter(&before, name).unwrap_or(0);
    let seen: u64 = HANDSHAKE_REFUSALS.iter().map(|n| delta(n)).sum();
    let seconds: f64 = field(&flood, "seconds")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    println!("flood: {flood}");
    println!(
        "target daemon: {seen} initiations handled; CPU {cpu:.2} s ({:.1} us per datagram sent); \
         VmHWM {hwm0} -> {hwm1} KiB, VmRSS {rss0} -> {rss1} KiB",
        cpu * 1e6 / FLOOD as f64
    );
    println!("datagrams the kernel dropped at h1 for a full socket buffer (UDP RcvbufErrors): {rcvbuf_errors}");
    println!(
        "counters: handshakes_rate_limited +{}, handshakes_untrusted +{}, handshakes_invalid +{}, \
         handshake_responses_sent +{}, handshake_cookies_sent +{}; trusted ping h2 -> h1 during \
         the flood: {rx}/{tx} answered",
        delta("handshakes_rate_limited"),
        delta("handshakes_untrusted"),
        delta("handshakes_invalid"),
        delta("handshake_responses_sent"),
        delta("handshake_cookies_sent")
    );
    assert_eq!(num(&flood, "sent"), FLOOD);
    assert!(seconds > 0.0);
    assert!(
        hwm1 <= hwm0 + RSS_BOUND_KIB,
        "peak RSS grew by {} KiB (bound {RSS_BOUND_KIB})",
        hwm1 - hwm0
    );
    // Each initiation that reaches Noise costs one Diffie-Hellman (about 180 us here: the
    // static-static one is precomputed for trusted keys, and its absence refuses); only
    // those within the rate limit (500/s in all, a bucket of one second's worth) get there, so
    // the daemon spends far less than that per datagram sent. The debug build that
    // `cargo test` runs (its crypto crates optimised, see Cargo.toml) reads tens of thousands
    // of the datagrams and spent 6.6 to 11 us per datagram sent in the runs of 2026-12-05
    // (the kernel drops what it has no time for: RcvbufErrors above), so one bound serves both
    // builds.
    let cpu_bound_us = 50.0;
    assert!(
        cpu * 1e6 / (FLOOD as f64) < cpu_bound_us,
        "{cpu:.2} s of CPU for the flood (bound {cpu_bound_us} us per datagram)"
    );
    assert_eq!(
        delta("handshake_responses_sent"),
        0,
        "an untrusted key was answered"
    );
    let window = measured.elapsed().as_secs_f64() + 2.0; // the snapshots lag up to 1 s each
    let noise_bound = (500.0 * (window + 1.0)) as u64;
    assert!(
        delta("handshakes_untrusted") <= noise_bound,
        "{} initiations reached Noise in {window:.1} s, over the rate limit",
        delta("handshakes_untrusted")
    );
    assert!(delta("handshakes_untrusted") > 0);
    assert!(
        delta("handshakes_rate_limited") > 0,
        "the rate limit never engaged"
    );
    // Each initiation over the limit drew one cookie reply (56 bytes against its 136), no more.
    assert_eq!(
        delta("handshake_cookies_sent"),
        delta("handshakes_rate_limited")
    );
    assert!(
        rx * 10 >= tx * 9,
        "trusted pings: only {rx} of {tx} answered"
    );
    assert!(lab.daemons[d1].poll_exit().is_none(), "the target died");
}

/// A UDP socket bound to `src`, an address this namespace does not have: `IP_TRANSPARENT`
/// (root) lets it bind there and send with it as the source, as a host that forges its source
/// addresses does.
fn forging_socket(src: std::net::SocketAddrV4) -> std::io::Result<std::net::UdpSocket> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket() with constant arguments; the descriptor is handed to the UdpSocket
    // below at once, which owns and closes it.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by socket() and nothing else owns it.
    let sock = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on our own descriptor with a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_IP,
            libc::IP_TRANSPARENT,
            std::ptr::from_ref(&one).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: src.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*src.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: bind on our own descriptor with a pointer to a live sockaddr_in and its size.
    let rc = unsafe {
        libc::bind(
            fd,
            std::ptr::from_ref(&sin).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(sock)
}

/// Sends, for `seconds`, `rate` initiations a second to each `(responder key, target, forged
/// source)`: made by a key nobody trusts, each passes the responder's mac1, and each leaves
/// with the source address (IP and port) of another node. Returns how many were sent.
fn forged_flood(targets: &[(String, String, String)], rate: u64, seconds: u64) -> u64 {
    use ethcloud::identity::handshake::{initiate, timestamp, Identity, INITIATION_LEN};
    use ethcloud::identity::keys::{PublicKey, SecretKey};
    use ethcloud::wire::Token;
    let token = Token::new(TOKEN.parse().unwrap_or(7)).expect("the test token");
    let attacker = Identity::new(SecretKey::from_random([0x5a; 32]));
    let wall = (unix_now() * 1e9) as u64;
    let flows: Vec<(
        std::net::UdpSocket,
        std::net::SocketAddr,
        Vec<[u8; INITIATION_LEN]>,
    )> = targets
        .iter()
        .map(|(key, target, source)| {
            let key = PublicKey::from_text(key).expect("a public key");
            let source: std::net::SocketAddrV4 = source.parse().expect("an IPv4 source");
            let sock = forging_socket(source)
                .unwrap_or_else(|e| panic!("a socket with the source {source}: {e}"));
            let messages = (0..64u32)
                .map(|i| {
                    let mut out = [0u8; INITIATION_LEN];
                    initiate(
                        &attacker,
                        token,
                        &key,
                        i,
                        timestamp(wall + u64::from(i)),
                        // Distinct ephemeral keys (X25519 ignores the first byte's low bits).
                        &[i as u8 ^ 0x40; 32],
                        &mut out,
                    )
                    .expect("an initiation");
                    out
                })
                .collect();
            (sock, target.parse().expect("a target"), messages)
        })
        .collect();
    let start = Instant::now();
    let total = rate * seconds;
    let mut sent = 0u64;
    for i in 0..total {
        for (sock, target, messages) in &flows {
            // A full send buffer drops the datagram, as a flood would.
            if sock
                .send_to(&messages[i as usize % messages.len()], target)
                .is_ok()
            {
                sent += 1;
            }
        }
        // Evenly paced, as a steady flood is: a sleep would send bursts, and between them a
        // rate bucket fills up for whoever comes next. (Bounded by the flood's length.)
        let due = Duration::from_secs_f64((i + 1) as f64 / rate as f64);
        while start.elapsed() < due {
            thread::yield_now();
        }
    }
    sent
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn a_flood_that_forges_the_peers_own_addresses_does_not_stop_their_renewals() {
    let _alone = FLOODS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Per direction twenty times the 500 a second that the addresses of trusted keys get,
    // evenly spread, for three and a half renewal periods.
    const RATE: u64 = 10_000;
    const SECONDS: u64 = 35;
    let scratch = Scratch::new("forged");
    let k1 = genkey(&scratch, "h1");
    let k2 = genkey(&scratch, "h2");
    let trusted = scratch.path("net.trusted");
    trust_file(&trusted, &[(&k1, "h1"), (&k2, "h2")]);

    let mut lab = Lab::new(3);
    lab.verbose = false;
    let (h1, h2, h3) = (lab.host(1), lab.host(2), lab.host(3));
    let rekey = ["--rekey-after", "10"];
    let (d1, stats1) = start_node(&mut lab, &scratch, &h1, &k1, &trusted, &rekey);
    let (d2, stats2) = start_node(
        &mut lab,
        &scratch,
        &h2,
        &k2,
        &trusted,
        &["-c", &h1.addr_v4(), rekey[0], rekey[1]],
    );
    lab.assert_ping(&h2, &h1.overlay_v4());
    let before1 = wait_stats(&stats1, SOON, "a session with h2", |st| {
        session_id(st, &h2.addr_v4()).is_some()
    });
    let before2 = wait_stats(&stats2, SOON, "a session with h1", |st| {
        session_id(st, &h1.addr_v4()).is_some()
    });
    let ping = lab.helper(
        &h2,
        "ping",
        &[
            "ping",
            "-n",
            "-i",
            "0.2",
            "-c",
            &(SECONDS * 5).to_string(),
            "-W",
            "1",
            &h1.overlay_v4(),
        ],
    );
    // h3 sends h1 initiations from h2's address and h2 initiations from h1's.
    let targets = vec![
        (k1.public.clone(), h1.addr_v4(), h2.addr_v4()),
        (k2.public.clone(), h2.addr_v4(), h1.addr_v4()),
    ];
    let sent = in_netns(&h3, move || forged_flood(&targets, RATE, SECONDS));
    e2e::wait_file_contains(&ping, "packets transmitted", Duration::from_secs(30));
    // Snapshots written after the flood (the file is written every second).
    let flood_over = SystemTime::now() + Duration::from_millis(100);
    let written_after = |path: &Path| {
        let deadline = Instant::now() + SOON;
        while fs::metadata(path)
            .and_then(|m| m.modified())
            .map_or(true, |t| t <= flood_over)
        {
            assert!(
                Instant::now() < deadline,
                "{}: no new snapshot",
                path.display()
            );
            thread::sleep(POLL);
        }
        read_stats(path)
    };
    let after1 = written_after(&stats1);
    let after2 = written_after(&stats2);
    let (tx, rx) =
        ping_summary(&fs::read_to_string(&ping).unwrap_or_default()).expect("ping summary");
    let delta = |after: &str, before: &str, name: &str| {
        counter(after, name).unwrap_or(0) - counter(before, name).unwrap_or(0)
    };
    let report = |after: &str, before: &str| {
        [
            "handshakes_rate_limited",
            "handshake_cookies_sent",
            "handshake_cookies_received",
            "handshake_cookies_unexpected",
            "handshakes_proven",
            "session_rekeys",
        ]
        .map(|n| format!("{n} +{}", delta(after, before, n)))
        .join(", ")
    };
    println!("forged initiations sent: {sent}; h2 -> h1 ping during the flood: {rx}/{tx}");
    println!("h1: {}", report(&after1, &before1));
    println!("h2: {}", report(&after2, &before2));
    assert!(sent > RATE * SECONDS, "the flood did not go out: {sent}");
    for (after, before) in [(&after1, &before1), (&after2, &before2)] {
        assert!(
            delta(after, before, "handshakes_rate_limited") > RATE * SECONDS / 2,
            "the flood did not reach the limit"
        );
        // Renewals every 10 s, started by either side: at least two in 35 s at each end.
        assert!(
            delta(after, before, "session_rekeys") >= 2,
            "the sessions were not renewed through the flood"
        );
        // The replies to initiations forged with a node's address reach that node, which
        // drops them.
        assert!(delta(after, before, "handshake_cookies_unexpected") > 0);
    }
    assert!(
        delta(&after1, &before1, "handshakes_proven")
            + delta(&after2, &before2, "handshakes_proven")
            > 0
    );
    assert!(rx * 10 >= tx * 9, "h2 -> h1: only {rx} of {tx} answered");
    assert!(lab.daemons[d1].poll_exit().is_none(), "h1's daemon died");
    assert!(lab.daemons[d2].poll_exit().is_none(), "h2's daemon died");
}

#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn with_user_the_trust_files_must_stay_readable_so_that_sighup_can_revoke() {
    use std::os::unix::fs::{chown, PermissionsExt};
    const NOGROUP: u32 = 65534;
    let scratch = Scratch::new("user");
    let k1 = genkey(&scratch, "h1");
    let k2 = genkey(&scratch, "h2");
    // The man page's recipe: a trust directory made under `umask 077`, owned by root.
    let dir = scratch.path("trusted.d");
    fs::create_dir(&dir).expect("create the trust directory");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).expect("chmod 700");
    let file = dir.join("h2");
    trust_file(&file, &[(&k2, "h2")]);
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    // (Writable by nobody, for the stats file.)
    // (Sticky, as /tmp: a trust file in a directory anyone may change files in is refused.)
    fs::set_permissions(&scratch.0, fs::Permissions::from_mode(0o1777)).expect("chmod 1777");

    let mut lab = Lab::new(2);
    let (h1, h2) = (lab.host(1), lab.host(2));
    let user = ["--user", "nobody"];
    // (Checked before the switch, as nobody's filesystem ids: --ifdown still runs as root,
    // and can undo what --ifup did.)
    let ifdown_id = scratch.path("ifdown-id");
    let ifdown = format!("id -u > {}", s(&ifdown_id));
    let refused = lab.spawn(
        &h1,
        &[
            "-t",
            TOKEN,
            "--private-key",
            &s(&k1.file),
            "--trusted",
            &s(&dir),
            user[0],
            user[1],
            "--ifdown",
            &ifdown,
        ],
    );
    let status = lab.daemons[refused].wait_exit(SOON);
    let log = lab.daemons[refused].log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("as nobody, cannot read trusted keys")
            && log.contains("SIGHUP could not revoke a key"),
        "{log}"
    );
    assert!(!log.contains("running as user nobody"), "{log}");
    // Why, before what --ifdown did.
    let cause = log.find("stopping after an error: as nobody, cannot read trusted keys");
    let hook = log.find("running --ifdown command");
    assert!(cause.is_some() && cause < hook, "{log}");
    assert_eq!(
        fs::read_to_string(&ifdown_id).unwrap_or_default(),
        "0\n",
        "--ifdown ran as root: {log}"
    );

    // Readable by nobody's group: it starts, and SIGHUP revokes as it should.
    for (path, mode) in [(&dir, 0o750), (&file, 0o640)] {
        chown(path, None, Some(NOGROUP)).expect("chgrp nogroup");
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
    }
    let other = scratch.path("h2.trusted");
    trust_file(&other, &[(&k1, "h1")]);
    let (d1, stats1) = start_node(&mut lab, &scratch, &h1, &k1, &dir, &user);
    lab.daemons[d1].wait_log("running as user nobody", SOON);
    start_node(&mut lab, &scratch, &h2, &k2, &other, &["-c", &h1.addr_v4()]);
    lab.assert_ping(&h1, &h2.overlay_v4());
    trust_file(&file, &[]);
    lab.daemons[d1].signal(libc::SIGHUP);
    lab.daemons[d1].wait_log("SIGHUP: trusted keys read again: 0 (were 1); 1 peer", SOON);

    // A file added later under `umask 077` cannot be read by nobody: that SIGHUP changes
    // nothing, and says so where an operator looks (an error line, and reloads_failed).
    let added = dir.join("h3");
    trust_file(&added, &[(&k2, "h2")]);
    fs::set_permissions(&added, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    lab.daemons[d1].signal(libc::SIGHUP);
    lab.daemons[d1].wait_log("no key was revoked", SOON);
    assert!(
        lab.daemons[d1].log().contains("ERROR"),
        "{}",
        lab.daemons[d1].log()
    );
    let deadline = Instant::now() + SOON;
    while counter(&read_stats(&stats1), "reloads_failed") != Some(1) {
        assert!(Instant::now() < deadline, "{}", read_stats(&stats1));
        thread::sleep(Duration::from_millis(100));
    }

    // The same file given to nobody (who can read it now): refused at that SIGHUP as it
    // would be at the next start, since its owner may add keys to it.
    const NOBODY: u32 = 65534;
    chown(&added, Some(NOBODY), None).expect("chown nobody");
    lab.daemons[d1].signal(libc::SIGHUP);
    let deadline = Instant::now() + SOON;
    while counter(&read_stats(&stats1), "reloads_failed") != Some(2) {
        assert!(Instant::now() < deadline, "{}", read_stats(&stats1));
        thread::sleep(Duration::from_millis(100));
    }
    assert!(
        lab.daemons[d1]
            .log()
            .contains("owned by uid 65534, who could add a key"),
        "{}",
        lab.daemons[d1].log()
    );
}

/// A hub (h1, no `-c`) with per-node keys restarts cleanly (SIGTERM, then the same key
/// again): its Close ends h2's sessions with its key, so h2's next contact attempt starts a
/// handshake with the new process, and the overlay pings again within seconds. Before, h2
/// sealed in the old session, which the new process cannot open, until its renewal timer
/// ran (up to two minutes and more after the session was made).
#[test]
#[ignore = "needs root + netns; scripts/test.sh passes --include-ignored"]
fn a_hub_that_restarts_is_reached_again_within_seconds() {
    let scratch = Scratch::new("hubrestart");
    let (keys, trusted) = three_members(&scratch);
    let mut lab = Lab::new(2);
    let (a, b) = (lab.host(1), lab.host(2));
    let (ad, _) = start_node(&mut lab, &scratch, &a, &keys[0], &trusted, &[]);
    let hub = a.addr_v4();
    let (bd, _) = start_node(&mut lab, &scratch, &b, &keys[1], &trusted, &["-c", &hub]);
    lab.assert_ping(&b, &a.overlay_v4());
    lab.daemons[ad].signal(libc::SIGTERM);
    assert!(lab.daemons[ad].wait_exit(SOON).success());
    let restarted = Instant::now();
    start_node(&mut lab, &scratch, &a, &keys[0], &trusted, &[]);
    lab.daemons[bd].wait_log_count(&format!("peer {hub} added"), 2, Duration::from_secs(25));
    println!(
        "h2 has the restarted hub as a peer again {:.1?} after its restart",
        restarted.elapsed()
    );
    // The new process made a new tap, with a new MAC: h2's neighbour entry for the hub's
    // overlay address would take half a minute to go (the kernel's, not ethcloud's).
    e2e::ip(&["-n", &b.ns, "neigh", "flush", "dev", TAP]);
    lab.assert_ping(&b, &a.overlay_v4());
    lab.assert_ping(&a, &b.overlay_v4());
}
