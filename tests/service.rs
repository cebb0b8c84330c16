//! Running ethcloud as a service, end to end: the real binary in network namespaces (the lab
//! of `e2e/mod.rs`), driven by a config file, with `--ifup` / `--ifdown`, the MTU it sets on
//! the tap, the stats file, `--user`, `-c` by a name from an `/etc/hosts` entry (through
//! `ip netns exec`'s `/etc/netns/NS/hosts`), reconnecting after a peer restarts, and the
//! systemd readiness notification.
//!
//! These need root, so they are `#[ignore]`d; `scripts/test.sh` (and so `.ci/run`) runs them
//! with `--include-ignored`. Each test's files live in a scratch directory and
//! `/etc/netns/<its namespaces>`, all removed on drop, also when the test fails; the lab stops
//! every daemon by PID and deletes its namespaces.

mod e2e;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use e2e::{wait_file_contains, Host, Lab, ETHCLOUD, SOON, TAP};

/// Longer than one `--connect` re-resolution round (30 s) plus a contact attempt.
const RESOLVE_SOON: Duration = Duration::from_secs(50);
const POLL: Duration = Duration::from_millis(100);

/// A scratch directory (writable by everyone, for the `--user` test) and `/etc/netns/NS`
/// directories, removed on drop.
struct Scratch {
    dir: PathBuf,
    netns_dirs: Vec<PathBuf>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("ethcloud-svc-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the scratch dir");
        // (Sticky, as /tmp: trust files in it are refused otherwise.)
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777))
            .expect("chmod the scratch dir");
        Scratch {
            dir,
            netns_dirs: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `text` to a file in the scratch dir and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        fs::write(&path, text).expect("write a scratch file");
        path
    }

    /// `/etc/netns/NS/hosts` for `host`: `ip netns exec` mounts it over `/etc/hosts`. Later
    /// calls rewrite the same file in place, so a running daemon sees the change. Beside it,
    /// an `nsswitch.conf` that looks names up in files and DNS only (not through a resolver
    /// daemon of the host, which a network namespace does not isolate) and a `resolv.conf`
    /// that names the namespace's own loopback, where nothing answers: a name the file lacks
    /// fails at once, and no query leaves the namespace.
    fn hosts(&mut self, host: &Host, text: &str) {
        let dir = Path::new("/etc/netns").join(&host.ns);
        if !self.netns_dirs.contains(&dir) {
            fs::create_dir_all(&dir).expect("create /etc/netns/NS");
            self.netns_dirs.push(dir.clone());
            fs::write(dir.join("resolv.conf"), "nameserver 127.0.0.1\n")
                .expect("write the resolv.conf");
            fs::write(
                dir.join("nsswitch.conf"),
                "passwd: files\ngroup: files\nhosts: files dns\n",
            )
            .expect("write the nsswitch.conf");
        }
        let hosts = dir.join("hosts");
        let content = format!("127.0.0.1 localhost\n{text}\n");
        if hosts.exists() {
            // In place (same inode): a bind mount of the old inode sees the new content.
            fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&hosts)
                .and_then(|mut f| std::io::Write::write_all(&mut f, content.as_bytes()))
                .expect("rewrite the hosts file");
        } else {
            fs::write(&hosts, content).expect("write the hosts file");
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for dir in &self.netns_dirs {
            let _ = fs::remove_dir_all(dir);
        }
        if thread::panicking() {
            eprintln!("(scratch files kept in {})", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// `ip link show` of the tap in `host`'s namespace.
fn tap_link(lab: &Lab, host: &Host) -> String {
    let out = lab.run(host, &["ip", "link", "show", "dev", TAP], SOON);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn tap_mac(lab: &Lab, host: &Host) -> String {
    let path = format!("/sys/class/net/{TAP}/address");
    let out = lab.run(host, &["cat", &path], SOON);
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Waits until `check` holds for the file's content; returns the content.
fn wait_file(path: &Path, what: &str, timeout: Duration, check: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if check(&text) {
            return text;
        }
        assert!(
            start.elapsed() < timeout,
            "{} has no {what} after {timeout:?}:\n{text}",
            path.display()
        );
        thread::sleep(POLL);
    }
}

/// The counter `name` in a text stats snapshot.
fn counter(stats: &str, name: &str) -> u64 {
    stats
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Overlay set-up as an operator writes it into `ifup`: the address, logged to `log`.
fn ifup_command(host: &Host, log: &Path) -> String {
    format!(
        "ip addr add {}/24 dev \"$IFNAME\" && echo \"up $IFNAME\" >> {}",
        host.overlay_v4(),
        log.display()
    )
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn config_file_sets_mtu_and_up_runs_ifup_and_ifdown_and_writes_stats_after_traffic() {
    let mut lab = Lab::new(2);
    let scratch = Scratch::new("config");
    let (a, b) = (lab.host(1), lab.host(2));
    let hooks_a = scratch.path("hooks-a.log");
    let stats_a = scratch.path("a.stats");
    let config_a = scratch.file(
        "a.toml",
        &format!(
            "# host A\nlisten = \"0.0.0.0:3210\"\ntoken = 7\nstats-file = \"{}\"\n\
             stats-interval = 1\nifup = '{}'\nifdown = 'echo \"down $IFNAME\" >> {}'\n",
            stats_a.display(),
            ifup_command(&a, &hooks_a),
            hooks_a.display()
        ),
    );
    // B's file has another token and MTU; the command line overrides both.
    let hooks_b = scratch.path("hooks-b.log");
    let config_b = scratch.file(
        "b.toml",
        &format!(
            "listen = \"[::]:3210\"\ntoken = 99\nmtu = 1300\nconnect = [\"{}\"]\nifup = '{}'\n",
            a.addr_v4(),
            ifup_command(&b, &hooks_b)
        ),
    );
    let config_a = config_a.to_str().expect("utf-8 path");
    let config_b = config_b.to_str().expect("utf-8 path");
    let da = lab.spawn(&a, &["--config", config_a]);
    let db = lab.spawn(&b, &["--config", config_b, "-t", "7", "--mtu", "1400"]);
    lab.daemons[da].wait_log(
        "started: device ethcloud0, listening on 0.0.0.0:3210, token 7",
        SOON,
    );
    lab.daemons[db].wait_log(
        "started: device ethcloud0, listening on [::]:3210, token 7",
        SOON,
    );

    // The tap is up, with 1450 = 1500 - 20 - 8 - 8 - 14 on A and the command line's 1400 on B.
    let link_a = tap_link(&lab, &a);
    assert!(link_a.contains(" mtu 1450 "), "{link_a}");
    assert!(link_a.contains(",UP"), "{link_a}");
    let link_b = tap_link(&lab, &b);
    assert!(link_b.contains(" mtu 1400 "), "{link_b}");
    assert!(link_b.contains(",UP"), "{link_b}");
    wait_file_contains(&hooks_a, "up ethcloud0", SOON);
    wait_file_contains(&hooks_b, "up ethcloud0", SOON);

    // The addresses ifup added carry traffic: nothing else configured the taps.
    lab.daemons[da].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    let out = lab.run(
        &a,
        &["ping", "-n", "-q", "-c5", "-i0.2", "-W2", &b.overlay_v4()],
        SOON,
    );
    assert!(out.status.success(), "{out:?}");

    let mac_b = tap_mac(&lab, &b);
    let peer_line = format!("peer {} verified, last seen ", b.addr_v4());
    let mac_line = format!("mac {mac_b} vlan 0 at {},", b.addr_v4());
    let stats = wait_file(&stats_a, "peer, MAC and traffic", SOON, |text| {
        text.contains(&peer_line)
            && text.contains(&mac_line)
            && counter(text, "frames_to_device") >= 5
            && counter(text, "frames_from_device") >= 5
    });
    for line in [
        "ethcloud status",
        "device ethcloud0",
        "listen 0.0.0.0:3210",
        "token 7",
        "peers 1",
        "drop_wrong_token 0",
    ] {
        assert!(stats.lines().any(|l| l == line), "no {line:?} in:\n{stats}");
    }
    assert!(counter(&stats, "bytes_to_device") > 5 * 84, "{stats}");
    assert!(counter(&stats, "bytes_sent") > 0, "{stats}");

    lab.daemons[da].signal(libc::SIGTERM);
    assert_eq!(lab.daemons[da].wait_exit(SOON).code(), Some(0));
    wait_file_contains(&hooks_a, "down ethcloud0", SOON);
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn daemon_drops_to_nobody_after_setup_and_still_forwards() {
    let mut lab = Lab::new(2);
    let scratch = Scratch::new("user");
    let (a, b) = (lab.host(1), lab.host(2));
    let hooks_a = scratch.path("hooks-a.log");
    let hooks_b = scratch.path("hooks-b.log");
    let stats_a = scratch.path("a.stats");
    let ifup_a = ifup_command(&a, &hooks_a);
    let ifup_b = ifup_command(&b, &hooks_b);
    let stats_arg = stats_a.to_str().expect("utf-8 path");
    let da = lab.spawn(
        &a,
        &[
            "-t",
            "7",
            "--user",
            "nobody",
            "--ifup",
            &ifup_a,
            "--stats-file",
            stats_arg,
            "--stats-interval",
            "1",
        ],
    );
    let connect = a.addr_v4();
    let db = lab.spawn(&b, &["-t", "7", "-c", &connect, "--ifup", &ifup_b]);
    lab.daemons[da].wait_log("running as user nobody (uid 65534), group nogroup", SOON);
    lab.daemons[da].wait_log("started: ", SOON);
    lab.daemons[db].wait_log(&format!("peer {} added", a.addr_v4()), SOON);

    // The process itself (ip netns exec execs it, same PID) runs as nobody, without
    // capabilities, for real, effective and saved ids.
    let pid = lab.daemons[da].pid();
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).expect("read comm");
    assert_eq!(comm.trim(), "ethcloud");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
    assert_eq!(field("Gid:"), "65534 65534 65534 65534", "{status}");
    assert_eq!(field("Groups:"), "65534", "{status}");
    assert_eq!(field("CapEff:"), "0000000000000000", "{status}");

    // ... and still forwards both ways, and writes its stats file as nobody.
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    wait_file(&stats_a, "a peer", SOON, |text| text.contains("peers 1"));
    let meta = fs::metadata(&stats_a).expect("stats file metadata");
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), 65534);

    // SIGUSR1 logs the status as well as the counters.
    lab.daemons[da].signal(libc::SIGUSR1);
    lab.daemons[da].wait_log(&format!("status: peer {} verified", b.addr_v4()), SOON);
    lab.daemons[da].wait_log("stats: peers=1 ", SOON);

    // `systemctl reload` reaches it: the unit's ExecReload, run as systemd runs it (as root
    // within the unit's CapabilityBoundingSet, unless the command starts with `+`), may
    // signal a daemon that no longer shares root's uid. Without CAP_KILL it could not.
    let reload = unit_reload_command(pid);
    println!("ExecReload as systemd runs it: {reload:?}");
    let out = Command::new(&reload[0])
        .args(&reload[1..])
        .output()
        .expect("run the unit's ExecReload");
    assert!(out.status.success(), "ExecReload failed: {out:?}");
    lab.daemons[da].wait_log("SIGHUP: not in keyed mode, nothing to reload", SOON);
}

/// The first value of `key` (as `ExecReload=`) in the shipped unit.
fn unit_value(key: &str) -> String {
    let unit =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ethcloud@.service"))
            .expect("read the unit");
    unit.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in the unit"))
        .trim()
        .to_owned()
}

/// `setpriv` and its options that run a command as systemd runs the unit's: as root within
/// the unit's `CapabilityBoundingSet`.
fn within_unit_caps() -> Vec<String> {
    let caps: Vec<String> = unit_value("CapabilityBoundingSet=")
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    vec![
        "setpriv".to_owned(),
        format!("--bounding-set=-all,{}", caps.join(",")),
        "--inh-caps=-all".to_owned(),
    ]
}

/// The unit's `ExecReload` for the daemon `pid`, as systemd runs it: with a `+` prefix as
/// full root, otherwise as root within the unit's `CapabilityBoundingSet` (`setpriv`).
fn unit_reload_command(pid: u32) -> Vec<String> {
    let exec = unit_value("ExecReload=");
    let (privileged, command) = match exec.strip_prefix('+') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, exec.trim_start_matches('-').to_owned()),
    };
    let mut argv: Vec<String> = command
        .replace("$MAINPID", &pid.to_string())
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if !privileged {
        let mut wrapped = within_unit_caps();
        wrapped.append(&mut argv);
        argv = wrapped;
    }
    argv
}

/// The shipped unit gives what the kernel path needs (CAP_BPF and CAP_NET_RAW in its
/// bounding set; the `bpf` system call, which its filter allows): two daemons run as systemd
/// runs the unit's (as root within its `CapabilityBoundingSet`; the system call filter cannot
/// be applied here without systemd) take the kernel path by default, without CAP_PERFMON
/// or CAP_SYS_ADMIN, and carry on with it after giving up CAP_BPF and CAP_NET_RAW.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn within_the_unit_s_capabilities_the_kernel_path_is_on_by_default() {
    let filters: Vec<String> =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("dist/ethcloud@.service"))
            .expect("read the unit")
            .lines()
            .filter_map(|l| l.strip_prefix("SystemCallFilter="))
            .flat_map(|v| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
            .collect();
    assert!(filters.iter().any(|f| f == "bpf"), "{filters:?}");
    let mut lab = Lab::new(2);
    lab.kernel_path_by_default = true;
    lab.wrapper = within_unit_caps();
    let (a, b) = (lab.host(1), lab.host(2));
    let da = lab.start(&a, &["-t", "7"]);
    let db = lab.start(&b, &["-t", "7", "-c", &a.addr_v4()]);
    for d in [da, db] {
        lab.daemons[d].wait_log(
            "kernel path: frames to and from direct IPv4 peers go through the kernel",
            SOON,
        );
        let status = fs::read_to_string(format!("/proc/{}/status", lab.daemons[d].pid()))
            .expect("read the daemon's status");
        let bounding = status
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .expect("CapBnd");
        // (CAP_NET_ADMIN is 12, CAP_NET_RAW 13, CAP_SYS_ADMIN 21, CAP_PERFMON 38,
        // CAP_BPF 39.)
        assert_eq!(bounding & (1 << 21 | 1 << 38), 0, "{status}");
        assert_ne!(bounding & 1 << 39, 0, "{status}");
        // Once the kernel path has started, CAP_BPF and CAP_NET_RAW are given up (CAP_BPF
        // is kept before Linux 6.5: see the man page); the daemon keeps CAP_NET_ADMIN.
        let given_up: u64 = if ethcloud::sys::bpf::needs_cap_bpf_all_along() {
            1 << 13
        } else {
            1 << 39 | 1 << 13
        };
        for set in ["CapPrm:", "CapEff:"] {
            let caps = status
                .lines()
                .find_map(|l| l.strip_prefix(set))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
                .expect("the daemon's capabilities");
            assert_eq!(caps & given_up, 0, "{set} {caps:x}");
            assert_ne!(caps & 1 << 12, 0, "{set} {caps:x}");
        }
    }
    lab.daemons[db].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    e2e::wait_kernel_sends(&mut lab, da, &a, &b.overlay_v4());
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_stats_file_the_user_cannot_write_stops_the_start_not_every_write_later() {
    // The unit's /run/ethcloud/NAME is root's, 0755: as nobody, every write of the stats file
    // would fail (warned once, then at debug only). Refused at start, naming the file.
    let mut lab = Lab::new(1);
    let scratch = Scratch::new("statsdir");
    let root_only = scratch.path("root-only");
    fs::create_dir(&root_only).expect("create a root-owned directory");
    fs::set_permissions(&root_only, fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    let stats = root_only.join("stats");
    let a = lab.host(1);
    // A daemon as nobody with the stats file at `path`: its index in `lab.daemons`.
    let as_nobody = |lab: &mut Lab, path: &Path| {
        let path = path.to_str().expect("utf-8 path");
        lab.spawn(&a, &["-t", "7", "--user", "nobody", "--stats-file", path])
    };
    let d = as_nobody(&mut lab, &stats);
    let status = lab.daemons[d].wait_exit(SOON);
    let log = lab.daemons[d].log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("as nobody, cannot write the --stats-file")
            && log.contains(stats.to_str().unwrap_or_default()),
        "{log}"
    );
    assert!(!log.contains("running as user nobody"), "{log}");
    let left: Vec<_> = fs::read_dir(&root_only)
        .expect("read the directory")
        .collect();
    assert!(left.is_empty(), "nothing left behind: {left:?}");

    // In a sticky directory anyone may write to (as /tmp), a stats file left by a run as root
    // cannot be replaced by nobody: refused too.
    let roots = scratch.file("roots.stats", "from a run as root\n");
    let d = as_nobody(&mut lab, &roots);
    let status = lab.daemons[d].wait_exit(SOON);
    let log = lab.daemons[d].log();
    assert_eq!(status.code(), Some(2), "{log}");
    assert!(
        log.contains("another user's, in a sticky directory"),
        "{log}"
    );

    // A directory that is not there (yet): a warning, and the daemon runs, as it does
    // without --user.
    let d = as_nobody(&mut lab, &scratch.path("not-yet").join("stats"));
    lab.daemons[d].wait_log("cannot be written now", SOON);
    lab.daemons[d].wait_log("running as user nobody", SOON);
    lab.daemons[d].signal(libc::SIGTERM);
    assert_eq!(lab.daemons[d].wait_exit(SOON).code(), Some(0));
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_stop_that_comes_before_ifup_runs_neither_hook() {
    // The control socket's directory is locked by someone else: the daemon waits up to 2 s
    // for it, after the tap is up and before --ifup. A SIGTERM then ends the start there.
    let mut lab = Lab::new(1);
    let scratch = Scratch::new("early-stop");
    let sockets = scratch.path("sockets");
    fs::create_dir(&sockets).expect("create the socket directory");
    let holder = fs::File::open(&sockets).expect("open the directory");
    // SAFETY: the fd is open for the call; flock takes plain integers.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&holder),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    assert_eq!(locked, 0, "lock the directory");
    let marker = scratch.path("hooks.log");
    let up = format!("echo up >> {}", marker.display());
    let down = format!("echo down >> {}", marker.display());
    let a = lab.host(1);
    let d = lab.spawn(
        &a,
        &[
            "-t",
            "7",
            "--control-socket",
            sockets.join("x.sock").to_str().expect("utf-8 path"),
            "--ifup",
            &up,
            "--ifdown",
            &down,
        ],
    );
    // Logged just before the control socket is bound, where the lock holds it.
    lab.daemons[d].wait_log(", up", SOON);
    lab.daemons[d].signal(libc::SIGTERM);
    let status = lab.daemons[d].wait_exit(SOON);
    let log = lab.daemons[d].log();
    drop(holder);
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("a signal came before --ifup"), "{log}");
    assert!(!marker.exists(), "a hook ran: {log}");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn connect_by_hosts_name_reconnects_after_the_peer_restarts_and_follows_a_new_address() {
    const NAME: &str = "peer-a.ethcloud.test";
    let mut lab = Lab::new(2);
    let mut scratch = Scratch::new("dns");
    let (a, b) = (lab.host(1), lab.host(2));
    scratch.hosts(&b, &format!("{} {NAME}", a.underlay_v4()));
    let connect = format!("{NAME}:3210");

    let first = lab.spawn(&a, &["-t", "7", "--peer-timeout", "60"]);
    let db = lab.spawn(&b, &["-t", "7", "--peer-timeout", "60", "-c", &connect]);
    let added_a = format!("peer {} added", a.addr_v4());
    lab.daemons[db].wait_log(&format!("peers to connect: {}", a.addr_v4()), SOON);
    lab.daemons[db].wait_log(&added_a, SOON);

    // A restarts in place: B hears Close, then finds A again by itself (back-off retries).
    lab.daemons[first].signal(libc::SIGTERM);
    assert_eq!(lab.daemons[first].wait_exit(SOON).code(), Some(0));
    lab.daemons[db].wait_log(
        &format!("peer {} removed: closed by peer", a.addr_v4()),
        SOON,
    );
    let second = lab.spawn(&a, &["-t", "7", "--peer-timeout", "60"]);
    lab.daemons[second].wait_log("started: ", SOON);
    let start = Instant::now();
    while lab.daemons[db].log().matches(&added_a).count() < 2 {
        assert!(
            start.elapsed() < SOON,
            "B did not reconnect to A within {SOON:?}:\n{}",
            lab.daemons[db].log()
        );
        thread::sleep(POLL);
    }

    // A moves to another address and the name follows it: B resolves the name again (it is
    // no longer a peer) and connects to the new address.
    let moved = "198.18.0.11";
    let out = lab.run(
        &a,
        &["ip", "addr", "add", &format!("{moved}/24"), "dev", "eth0"],
        SOON,
    );
    assert!(out.status.success(), "{out:?}");
    lab.daemons[second].signal(libc::SIGTERM);
    assert_eq!(lab.daemons[second].wait_exit(SOON).code(), Some(0));
    lab.daemons[db].wait_log(
        &format!("peer {} removed: closed by peer", a.addr_v4()),
        SOON,
    );
    let listen = format!("{moved}:3210");
    let third = lab.spawn(&a, &["-t", "7", "-l", &listen]);
    lab.daemons[third].wait_log("started: ", SOON);
    scratch.hosts(&b, &format!("{moved} {NAME}"));
    lab.daemons[db].wait_log(
        &format!("{connect} now resolves to {listen} (was {})", a.addr_v4()),
        RESOLVE_SOON,
    );
    lab.daemons[db].wait_log(&format!("peer {listen} added"), SOON);
    lab.daemons[third].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
}

/// A name that does not resolve when the daemon starts (a resolver not up yet at boot, a
/// name not yet published) does not stop the start: the daemon runs without it and joins
/// the peer once the name resolves.
#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_name_that_does_not_resolve_at_start_up_is_joined_once_it_does() {
    const NAME: &str = "late-a.ethcloud.test";
    let mut lab = Lab::new(2);
    let mut scratch = Scratch::new("late-dns");
    let (a, b) = (lab.host(1), lab.host(2));
    scratch.hosts(&b, "198.18.0.250 another.ethcloud.test");
    let connect = format!("{NAME}:3210");

    let da = lab.spawn(&a, &["-t", "7"]);
    let db = lab.spawn(&b, &["-t", "7", "-c", &connect]);
    lab.daemons[db].wait_log(&format!("cannot resolve peer address {connect}: "), SOON);
    lab.daemons[db].wait_log("peers to connect: none", SOON);
    lab.daemons[da].wait_log("started: ", SOON);

    scratch.hosts(&b, &format!("{} {NAME}", a.underlay_v4()));
    lab.daemons[db].wait_log(
        &format!("{connect} resolves now, to {}", a.addr_v4()),
        RESOLVE_SOON,
    );
    lab.daemons[db].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.daemons[da].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    assert!(
        !lab.daemons[db].log().contains("ERROR"),
        "{}",
        lab.daemons[db].log()
    );
}

/// A daemon started directly (not through the lab) in a fresh network namespace
/// (`unshare --net`), stopped by PID on drop.
struct Bare {
    child: Child,
}

impl Drop for Bare {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
                // SAFETY: kill takes no pointers; `pid` is our unreaped child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = self.child.wait();
    }
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn systemd_hears_ready_once_the_tap_is_up_and_stopping_at_sigterm() {
    let scratch = Scratch::new("notify");
    let socket_path = scratch.path("notify.sock");
    let listener = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    listener
        .set_read_timeout(Some(SOON))
        .expect("set a read timeout");
    let tap_state = scratch.path("tap-at-ready");
    // ifup records the tap's state as it is before READY=1 can be sent.
    let ifup = format!("ip link show dev \"$IFNAME\" > {}", tap_state.display());
    let mut bare = Bare {
        child: Command::new("unshare")
            .args(["--net", ETHCLOUD, "-l", "127.0.0.1:3210", "--ifup", &ifup])
            .env("NOTIFY_SOCKET", &socket_path)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ethcloud under unshare"),
    };
    let mut buf = [0u8; 256];
    let n = listener
        .recv(&mut buf)
        .expect("READY=1 within the deadline");
    assert_eq!(&buf[..n], b"READY=1");
    let state = fs::read_to_string(&tap_state).expect("ifup ran before READY=1");
    assert!(
        state.contains(",UP") && state.contains(" mtu 1450 "),
        "{state}"
    );

    let pid = libc::pid_t::try_from(bare.child.id()).expect("pid fits");
    // SAFETY: kill takes no pointers; `pid` is our unreaped child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let n = listener
        .recv(&mut buf)
        .expect("STOPPING=1 within the deadline");
    assert_eq!(&buf[..n], b"STOPPING=1");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = bare.child.try_wait().expect("wait for ethcloud") {
            break status;
        }
        assert!(
            start.elapsed() < SOON,
            "ethcloud still running after SIGTERM"
        );
        thread::sleep(POLL);
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_daemon_started_as_another_user_with_capabilities_drops_them_all() {
    // A service manager may start ethcloud as an unprivileged user with the capabilities it
    // needs (ambient CAP_NET_ADMIN, CAP_SETUID, CAP_SETGID). Leaving a uid that is not 0
    // takes no capability away by itself: they are cleared explicitly, so that root cannot be
    // had back and the --ifdown hook does not run with them.
    let mut lab = Lab::new(1);
    let scratch = Scratch::new("caps");
    let a = lab.host(1);
    let pid_file = scratch.path("pid");
    let id_file = scratch.path("ifdown-id");
    // (And CAP_DAC_OVERRIDE, where /dev/net/tun is root's alone, as on this test machine.)
    let caps = "+net_admin,+setuid,+setgid,+dac_override";
    let script = format!(
        "exec setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps {caps} \
         --ambient-caps {caps} {ETHCLOUD} -t 7 --user nobody \
         --ifup 'echo $PPID > {pid}' --ifdown 'id -u > {ids}; grep ^Cap /proc/self/status >> {ids}' 2>&1",
        pid = pid_file.display(),
        ids = id_file.display()
    );
    let log = lab.helper(&a, "caps", &["sh", "-c", &script]);
    wait_file_contains(&log, "running as user nobody", SOON);
    wait_file_contains(&log, "started: ", SOON);
    let pid = fs::read_to_string(&pid_file).expect("the --ifup hook wrote the PID");
    let status = fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .expect("read the daemon's status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
    for set in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(field(set), "0000000000000000", "{set} {status}");
    }
    // At exit, --ifdown runs as nobody, with no capabilities either.
    drop(lab);
    let ids = fs::read_to_string(&id_file).expect("the --ifdown hook ran");
    assert!(ids.starts_with("65534\n"), "{ids}");
    assert!(
        ids.contains("CapEff:\t0000000000000000") && ids.contains("CapAmb:\t0000000000000000"),
        "{ids}"
    );

    // With per-node keys and a trust directory nobody cannot read, the check made before
    // the switch does not let CAP_DAC_OVERRIDE read it for nobody: refused before the switch.
    let mut lab = Lab::new(1);
    let a = lab.host(1);
    let key = scratch.path("node.key");
    let public = e2e::genkey(&key);
    let trusted = scratch.path("trusted.d");
    fs::create_dir(&trusted).expect("create the trust directory");
    fs::write(trusted.join("self"), format!("{public}\n")).expect("write a trust file");
    fs::set_permissions(&trusted, fs::Permissions::from_mode(0o700)).expect("chmod 700");
    // Runs the daemon as uid 1000 with the capabilities `caps`, to its exit; its output.
    let run_as_1000 = |lab: &mut Lab, caps: &str, name: &str| {
        let script = format!(
            "setpriv --reuid 1000 --regid 1000 --clear-groups --inh-caps {caps} \
             --ambient-caps {caps} {ETHCLOUD} -t 7 --user nobody --private-key {key} \
             --trusted {trusted} 2>&1 & daemon=$!; trap 'kill $daemon' TERM; \
             wait $daemon; echo exit=$?",
            key = key.display(),
            trusted = trusted.display()
        );
        let log = lab.helper(&a, name, &["sh", "-c", &script]);
        wait_file_contains(&log, "exit=", SOON);
        fs::read_to_string(&log).unwrap_or_default()
    };
    let text = run_as_1000(&mut lab, caps, "caps-trusted");
    assert!(text.contains("exit=2"), "{text}");
    assert!(
        text.contains("as nobody, cannot read trusted keys"),
        "{text}"
    );
    assert!(
        !text.contains("running as user nobody"),
        "checked only after the switch: {text}"
    );

    // Without CAP_SETUID and CAP_SETGID, --user fails with the switch's own error, and the
    // check before it changes nothing (so it has nothing to put back, and says nothing).
    let text = run_as_1000(&mut lab, "+net_admin,+dac_override", "few-caps");
    assert!(text.contains("exit=1") || text.contains("exit=2"), "{text}");
    assert!(!text.contains("cannot put back"), "{text}");
    assert!(!text.contains("running as user nobody"), "{text}");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn a_daemon_started_with_sigchld_ignored_still_sees_its_hooks_succeed() {
    // A parent that ignores SIGCHLD passes that on across exec: the kernel then reaps the
    // hook's shell itself, and waiting for it fails (ECHILD) although it succeeded.
    let mut lab = Lab::new(1);
    let scratch = Scratch::new("sigchld");
    let a = lab.host(1);
    let ran = scratch.path("ifup-ran");
    // (Python, since dash does not pass on a `trap '' CHLD`.)
    let script = format!(
        "import os, signal; signal.signal(signal.SIGCHLD, signal.SIG_IGN); \
         os.dup2(1, 2); \
         os.execv('{ETHCLOUD}', ['ethcloud', '-t', '7', '--ifup', 'echo up > {ran}', \
         '--control-socket', '{sock}'])",
        ran = ran.display(),
        sock = scratch.path("control.sock").display()
    );
    let log = lab.helper(&a, "sigchld", &["python3", "-c", &script]);
    wait_file_contains(&log, "started: ", SOON);
    assert_eq!(fs::read_to_string(&ran).unwrap_or_default(), "up\n");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !text.contains("--ifup command \""),
        "a hook failure: {text}"
    );
}
