//! A small lab for end-to-end tests: the real `ethcloud` binary in network namespaces.
//!
//! Owns the namespaces, links and processes one test creates, and removes them all in `Drop`,
//! also when the test panics: every process it started is stopped by PID (SIGTERM, then
//! SIGKILL), and every namespace it created is deleted by name. Nothing outside its own
//! namespaces is touched.
//!
//! Layout of one lab (all names start with a prefix unique to the test, `ec<pid>n<k>`):
//!
//! ```text
//!   <prefix>sw : bridge br0 ── p1 ── p2 ── p3 ...         (the underlay "switch")
//!   <prefix>h1 : eth0 198.18.0.1/24 fd00::1/64 ── p1      ethcloud0 198.19.0.1/24 fd00:19::1/64
//!   <prefix>h2 : eth0 198.18.0.2/24 fd00::2/64 ── p2      ethcloud0 198.19.0.2/24 fd00:19::2/64
//! ```
//!
//! Every wait is a poll for a condition with a deadline; there is no sleep-and-hope.

#![allow(dead_code)]

#[path = "../sim/cpu.rs"]
pub mod cpu;

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The binary under test.
pub const ETHCLOUD: &str = env!("CARGO_BIN_EXE_ethcloud");

/// Makes a node's key pair with the binary itself: `ethcloud genkey` into `file` (mode 600),
/// then `ethcloud pubkey` reading it; returns the public key (44 characters of base64).
pub fn genkey(file: &Path) -> String {
    let out = Command::new(ETHCLOUD)
        .arg("genkey")
        .output()
        .expect("run ethcloud genkey");
    assert!(out.status.success(), "genkey failed: {out:?}");
    fs::write(file, &out.stdout).expect("write the key file");
    fs::set_permissions(file, fs::Permissions::from_mode(0o600)).expect("chmod 600");
    let out = Command::new(ETHCLOUD)
        .arg("pubkey")
        .stdin(File::open(file).expect("open the key file"))
        .output()
        .expect("run ethcloud pubkey");
    assert!(out.status.success(), "pubkey failed: {out:?}");
    let public = String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(
        public.len(),
        44,
        "a public key is 44 characters: {public:?}"
    );
    public
}
/// The tap name every daemon gets (`ethcloud%d` in a fresh namespace is `ethcloud0`).
pub const TAP: &str = "ethcloud0";
/// The UDP port every daemon listens on (each host is its own namespace).
pub const PORT: u16 = 3210;
/// How long a condition that should hold soon may take.
pub const SOON: Duration = Duration::from_secs(20);

const POLL: Duration = Duration::from_millis(100);
const RAWFRAME: &str = include_str!("rawframe.py");

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// One host of a lab: a namespace wired to the underlay bridge.
#[derive(Clone, Debug)]
pub struct Host {
    /// 1-based host number; its addresses end in it.
    pub index: u8,
    /// The namespace name.
    pub ns: String,
}

impl Host {
    /// Underlay IPv4 address, e.g. `198.18.0.1`.
    pub fn underlay_v4(&self) -> String {
        format!("198.18.0.{}", self.index)
    }
    /// Underlay IPv6 address, e.g. `fd00::1`.
    pub fn underlay_v6(&self) -> String {
        format!("fd00::{}", self.index)
    }
    /// The daemon's address over the IPv4 underlay, as ethcloud logs it: `198.18.0.1:3210`.
    pub fn addr_v4(&self) -> String {
        format!("{}:{PORT}", self.underlay_v4())
    }
    /// The daemon's address over the IPv6 underlay, as ethcloud logs it: `[fd00::1]:3210`.
    pub fn addr_v6(&self) -> String {
        format!("[{}]:{PORT}", self.underlay_v6())
    }
    /// Overlay IPv4 address on the tap, e.g. `198.19.0.1`.
    pub fn overlay_v4(&self) -> String {
        format!("198.19.0.{}", self.index)
    }
    /// Overlay IPv6 address on the tap, e.g. `fd00:19::1`.
    pub fn overlay_v6(&self) -> String {
        format!("fd00:19::{}", self.index)
    }
}

/// A running daemon started by the lab.
pub struct Daemon {
    /// The host it runs on.
    pub host: Host,
    child: Child,
    log: PathBuf,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    /// Everything it has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
    /// Sends it a signal.
    pub fn signal(&self, signal: libc::c_int) {
        if self.status.is_none() {
            send_signal(self.child.id(), signal);
        }
    }
    /// Asks for the counters (SIGUSR1) and returns the stats line this signal made (not one
    /// an earlier SIGUSR1 left in the log).
    pub fn stats_line(&mut self) -> String {
        let before = self.log().matches("stats: peers=").count();
        self.signal(libc::SIGUSR1);
        self.wait_log_count("stats: peers=", before + 1, SOON);
        self.log()
            .lines()
            .rev()
            .find(|l| l.contains("stats: peers="))
            .unwrap_or_default()
            .to_owned()
    }
    /// Waits until its log contains `needle`; returns how long that took, or panics at the
    /// deadline (or if the daemon died).
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) -> Duration {
        self.wait_log_count(needle, 1, timeout)
    }
    /// Waits until its log contains `needle` at least `count` times; returns how long that
    /// took, or panics at the deadline (or if the daemon died first).
    pub fn wait_log_count(&mut self, needle: &str, count: usize, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.log().matches(needle).count() >= count {
                return start.elapsed();
            }
            if let Some(status) = self.poll_exit() {
                if self.log().matches(needle).count() >= count {
                    return start.elapsed();
                }
                panic!(
                    "{} exited ({status}) before logging {needle:?} {count} times",
                    self.host.ns
                );
            }
            assert!(
                start.elapsed() < timeout,
                "{} did not log {needle:?} {count} times within {timeout:?}",
                self.host.ns
            );
            thread::sleep(POLL);
        }
    }
    /// Waits for the process to exit and returns its status, or panics at the deadline.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.poll_exit() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} (pid {}) still running {timeout:?} after it was asked to stop",
                self.host.ns,
                self.pid()
            );
            thread::sleep(POLL);
        }
    }
    /// The exit status if it has exited.
    pub fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }
    fn stop(&mut self) {
        stop_child(&mut self.child, self.status.is_some());
        self.status = self.child.try_wait().ok().flatten();
    }
}

/// Namespaces, links and processes of one test; all removed on drop.
pub struct Lab {
    prefix: String,
    dir: PathBuf,
    namespaces: Vec<String>,
    switch_ns: String,
    hosts: Vec<Host>,
    /// The daemons, in start order.
    pub daemons: Vec<Daemon>,
    helpers: Vec<Child>,
    /// Start daemons with `-v` (debug logs; the default). Off: info level.
    pub verbose: bool,
    /// Leave the kernel path to the daemon's default (on: these namespaces have no
    /// firewall). Off (the default here): daemons whose arguments do not name it get
    /// `--no-kernel-path`, since these tests are about the daemon's own path; the kernel
    /// path's tests are in `e2e_kernel_path.rs`.
    pub kernel_path_by_default: bool,
    /// A command (and its arguments) that daemons are started under, such as `setpriv` with
    /// a unit's capabilities; none by default.
    pub wrapper: Vec<String>,
}

impl Lab {
    /// A lab with `hosts` hosts on one underlay bridge, each with IPv4 and IPv6 addresses.
    pub fn new(hosts: u8) -> Lab {
        assert!(
            is_root(),
            "end-to-end tests need root (network namespaces and /dev/net/tun)"
        );
        let prefix = format!(
            "ec{}n{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(format!("ethcloud-e2e-{prefix}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the lab's temp dir");
        let switch_ns = format!("{prefix}sw");
        let mut lab = Lab {
            prefix,
            dir,
            namespaces: Vec::new(),
            switch_ns: switch_ns.clone(),
            hosts: Vec::new(),
            daemons: Vec::new(),
            helpers: Vec::new(),
            verbose: true,
            kernel_path_by_default: false,
            wrapper: Vec::new(),
        };
        lab.add_namespace(&switch_ns);
        ip(&["-n", &switch_ns, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch_ns, "link", "set", "br0", "up"]);
        for index in 1..=hosts {
            lab.add_host(index);
        }
        lab
    }

    /// Host number `index` (1-based).
    pub fn host(&self, index: u8) -> Host {
        self.hosts[usize::from(index) - 1].clone()
    }

    /// A namespace of this lab with no links yet, named with the lab's prefix and `suffix`
    /// (e.g. `h12`), removed with the lab. Returns its name.
    pub fn extra_namespace(&mut self, suffix: &str) -> String {
        let ns = format!("{}{suffix}", self.prefix);
        self.add_namespace(&ns);
        ns
    }

    fn add_namespace(&mut self, ns: &str) {
        ip(&["netns", "add", ns]);
        self.namespaces.push(ns.to_owned());
        ip(&["-n", ns, "link", "set", "lo", "up"]);
    }

    fn add_host(&mut self, index: u8) {
        let host = Host {
            index,
            ns: format!("{}h{index}", self.prefix),
        };
        self.add_namespace(&host.ns);
        let v4 = format!("{}/24", host.underlay_v4());
        let v6 = format!("{}/64", host.underlay_v6());
        self.plug(&host, "eth0");
        ip(&["-n", &host.ns, "addr", "add", &v4, "dev", "eth0"]);
        ip(&["-n", &host.ns, "addr", "add", &v6, "dev", "eth0", "nodad"]);
        self.hosts.push(host);
    }

    /// Gives `host` an interface `name` on the underlay bridge (a veth, up, without
    /// addresses): its `eth0`, or a second NIC plugged in while the daemons run. (The
    /// bridge's side of it is named after both, `p1` for host 1's `eth0`.)
    pub fn plug(&self, host: &Host, name: &str) {
        let port = if name == "eth0" {
            format!("p{}", host.index)
        } else {
            format!("{name}p{}", host.index)
        };
        let sw = self.switch_ns.as_str();
        ip(&[
            "-n", &host.ns, "link", "add", name, "type", "veth", "peer", "name", &port, "netns", sw,
        ]);
        ip(&["-n", sw, "link", "set", &port, "master", "br0", "up"]);
        ip(&["-n", &host.ns, "link", "set", name, "up"]);
    }

    /// Starts `ethcloud ARGS` on `host` (with `-v`, stderr to a log file), waits for its tap and
    /// sets it up as an operator would: MTU 1400, up, the host's overlay addresses. Returns
    /// the daemon's index in [`Lab::daemons`].
    pub fn start(&mut self, host: &Host, args: &[&str]) -> usize {
        let id = self.spawn(host, args);
        self.wait_for_tap(id);
        let ns = host.ns.as_str();
        ip(&["-n", ns, "link", "set", TAP, "mtu", "1400", "up"]);
        let v4 = format!("{}/24", host.overlay_v4());
        let v6 = format!("{}/64", host.overlay_v6());
        ip(&["-n", ns, "addr", "add", &v4, "dev", TAP]);
        ip(&["-n", ns, "addr", "add", &v6, "dev", TAP, "nodad"]);
        id
    }

    /// Starts `ethcloud -v ARGS` on `host` without waiting for anything.
    pub fn spawn(&mut self, host: &Host, args: &[&str]) -> usize {
        let log = self
            .dir
            .join(format!("{}-{}.log", host.ns, self.daemons.len()));
        let stderr = File::create(&log).expect("create a daemon log file");
        let level: &[&str] = if self.verbose { &["-v"] } else { &[] };
        let named = args.iter().any(|a| a.ends_with("kernel-path"));
        let pinned: &[&str] = if self.kernel_path_by_default || named {
            &[]
        } else {
            &["--no-kernel-path"]
        };
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(&self.wrapper)
            .arg(ETHCLOUD)
            .args(level)
            .args(pinned)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start ethcloud under ip netns exec");
        self.daemons.push(Daemon {
            host: host.clone(),
            child,
            log,
            status: None,
        });
        self.daemons.len() - 1
    }

    fn wait_for_tap(&mut self, id: usize) {
        let ns = self.daemons[id].host.ns.clone();
        let start = Instant::now();
        loop {
            let shown = Command::new("ip")
                .args(["-n", &ns, "link", "show", "dev", TAP])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run ip");
            if shown.success() {
                return;
            }
            if let Some(status) = self.daemons[id].poll_exit() {
                panic!("ethcloud on {ns} exited ({status}) before creating {TAP}");
            }
            assert!(start.elapsed() < SOON, "no {TAP} in {ns} after {SOON:?}");
            thread::sleep(POLL);
        }
    }

    /// Pings `target` from `from` (one echo, 1 s wait) until it answers; false at the deadline.
    pub fn ping_within(&self, from: &Host, target: &str, timeout: Duration) -> bool {
        let start = Instant::now();
        loop {
            if self.ping_once(from, target) {
                return true;
            }
            if start.elapsed() >= timeout {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// One ping (`-c1 -W1`): true if it was answered.
    pub fn ping_once(&self, from: &Host, target: &str) -> bool {
        Command::new("ip")
            .args([
                "netns", "exec", &from.ns, "ping", "-n", "-q", "-c1", "-W1", target,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run ping")
            .success()
    }

    /// Asserts that `from` reaches `target` within [`SOON`].
    pub fn assert_ping(&self, from: &Host, target: &str) {
        assert!(
            self.ping_within(from, target, SOON),
            "{} cannot ping {target} within {SOON:?}",
            from.ns
        );
    }

    /// Runs `COMMAND` in `host`'s namespace and returns its output, killing it at the deadline.
    pub fn run(&self, host: &Host, command: &[&str], timeout: Duration) -> Output {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start a command under ip netns exec");
        // Both pipes are read on threads of their own while the command runs: a command that
        // writes more than a pipe holds (64 KiB) must not block and run into the deadline.
        let read_all = |pipe: Option<Box<dyn Read + Send>>| {
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                let _ = tx.send(bytes);
            });
            rx
        };
        let stdout = read_all(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = read_all(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        // What a reader got, waiting at most a second past the command's end (a process the
        // command left behind may hold the pipe open).
        let collect = |rx: &mpsc::Receiver<Vec<u8>>| {
            rx.recv_timeout(Duration::from_secs(1)).unwrap_or_default()
        };
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for a command") {
                break status;
            }
            if start.elapsed() >= timeout {
                stop_child(&mut child, false);
                let _ = child.wait();
                panic!(
                    "{command:?} on {} did not finish within {timeout:?}; stdout: {} stderr: {}",
                    host.ns,
                    String::from_utf8_lossy(&collect(&stdout)),
                    String::from_utf8_lossy(&collect(&stderr))
                );
            }
            thread::sleep(POLL);
        };
        Output {
            status,
            stdout: collect(&stdout),
            stderr: collect(&stderr),
        }
    }

    /// Starts a helper process in `host`'s namespace with stdout to a file in the lab's dir;
    /// it is stopped (by PID) when the lab is dropped. Returns the stdout file.
    pub fn helper(&mut self, host: &Host, name: &str, command: &[&str]) -> PathBuf {
        let out = self.dir.join(format!("{}-{name}.out", host.ns));
        let stdout = File::create(&out).expect("create a helper's output file");
        let child = Command::new("ip")
            .args(["netns", "exec", &host.ns])
            .args(command)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("start a helper under ip netns exec");
        self.helpers.push(child);
        out
    }

    /// Writes the raw-frame script into the lab's dir and returns its path.
    pub fn rawframe_script(&self) -> PathBuf {
        self.script("rawframe.py", RAWFRAME)
    }

    /// The path of a file `name` in the lab's dir (removed with the lab).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a script (`text`) into the lab's dir as `name`, once, and returns its path.
    pub fn script(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        if !path.exists() {
            fs::write(&path, text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        }
        path
    }

    /// Starts capturing test frames on `host`'s tap for `seconds`; waits until the capture is
    /// ready and returns its output file.
    pub fn capture(&mut self, host: &Host, name: &str, seconds: u32) -> PathBuf {
        let script = self.rawframe_script();
        let secs = seconds.to_string();
        let out = self.helper(
            host,
            name,
            &[
                "python3",
                script.to_str().expect("utf-8 path"),
                "capture",
                TAP,
                &secs,
            ],
        );
        wait_file_contains(&out, "ready", SOON);
        out
    }

    /// Sends one test frame from `host`'s tap: `vid` None for untagged.
    pub fn send_frame(&self, host: &Host, dst: &str, src: &str, vid: Option<u16>, marker: &str) {
        let script = self.rawframe_script();
        let vid = vid.map_or_else(|| "none".to_owned(), |v| v.to_string());
        let out = self.run(
            host,
            &[
                "python3",
                script.to_str().expect("utf-8 path"),
                "send",
                TAP,
                dst,
                src,
                &vid,
                marker,
            ],
            SOON,
        );
        assert!(
            out.status.success(),
            "sending a raw frame on {} failed: {}",
            host.ns,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for daemon in &mut self.daemons {
            daemon.stop();
        }
        for child in &mut self.helpers {
            stop_child(child, false);
        }
        if thread::panicking() {
            for daemon in &self.daemons {
                eprintln!(
                    "----- ethcloud on {} (pid {}, exit {:?}) -----\n{}",
                    daemon.host.ns,
                    daemon.pid(),
                    daemon.status,
                    daemon.log()
                );
            }
            eprintln!("(logs kept in {})", self.dir.display());
        }
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if !thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Waits until the file contains `needle`; returns how long that took or panics at the deadline.
pub fn wait_file_contains(path: &Path, needle: &str, timeout: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if fs::read_to_string(path)
            .unwrap_or_default()
            .contains(needle)
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{} has no {needle:?} after {timeout:?}; it has:\n{}",
            path.display(),
            fs::read_to_string(path).unwrap_or_default()
        );
        thread::sleep(POLL);
    }
}

/// [`iperf3_tcp`] from `from` to `server`'s address `target`, against a one-off server (`-1`)
/// started on `port` for this run alone: a server that serves several runs closes its
/// listening socket between them, and a client that connects at that moment is reset (seen
/// once, with the slow debug build). `extra` goes to the client (with `-p PORT`).
pub fn iperf3_one_off(
    lab: &mut Lab,
    from: &Host,
    server: &Host,
    target: &str,
    port: u16,
    extra: &[&str],
) -> String {
    let port_text = port.to_string();
    lab.helper(
        server,
        &format!("iperf3-server-{port}"),
        &["iperf3", "-s", "-1", "-p", &port_text],
    );
    wait_port(lab, server, port);
    let mut args = vec!["-p", port_text.as_str()];
    args.extend_from_slice(extra);
    iperf3_tcp(lab, from, target, &args)
}

/// Runs a 2-second iperf3 TCP test from `from` to the iperf3 server at `server` (with
/// `extra` arguments such as `-R` or `-P 4`), asserts it completed with data received, and
/// returns the receiver's line (the `[SUM]` line with several streams).
pub fn iperf3_tcp(lab: &Lab, from: &Host, server: &str, extra: &[&str]) -> String {
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
    // With several streams the last receiver line is their sum.
    let receiver = stdout
        .lines()
        .rfind(|l| l.contains("receiver"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        out.status.success() && !receiver.is_empty(),
        "iperf3 {args:?} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !receiver.contains(" 0.00 Bytes"),
        "nothing arrived: {receiver}"
    );
    eprintln!("{}: {receiver}", args.join(" "));
    receiver
}

/// Asks a daemon for its counters (SIGUSR1) and asserts no super-frame was dropped.
pub fn assert_no_offload_errors(lab: &mut Lab, daemon: usize) {
    let last = lab.daemons[daemon].stats_line();
    assert!(last.contains("offload_errors=0"), "{last}");
}

/// The number after `key=` among the white-space separated words of `line`, if there is one.
pub fn field(line: &str, key: &str) -> Option<u64> {
    line.split_whitespace()
        .find_map(|w| w.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Waits until something listens on TCP `port` in `host`'s namespace, or panics at [`SOON`].
pub fn wait_port(lab: &Lab, host: &Host, port: u16) {
    let start = Instant::now();
    let needle = format!(":{port} ");
    loop {
        let out = lab.run(host, &["ss", "-Htln"], SOON);
        if String::from_utf8_lossy(&out.stdout).contains(&needle) {
            return;
        }
        assert!(
            start.elapsed() < SOON,
            "nothing listens on port {port} in {}",
            host.ns
        );
        thread::sleep(POLL);
    }
}

/// Runs `command` in `host`'s namespace (20 s at most) and asserts that it succeeds.
pub fn must(lab: &Lab, host: &Host, command: &[&str]) -> Output {
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

/// `ethcloud show` (text) against `socket`, run in `host`'s namespace; must succeed.
pub fn show(lab: &Lab, host: &Host, socket: &str) -> String {
    let out = must(lab, host, &[ETHCLOUD, "show", "--socket", socket]);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The counter `name` (`  name: value` under `counters:`) of a `show` text, or None if
/// `show` has no such counter.
pub fn counter(answer: &str, name: &str) -> Option<u64> {
    let needle = format!("  {name}: ");
    answer
        .lines()
        .skip_while(|l| *l != "counters:")
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
}

/// Pings `target` from `from` until `count` pings in a row are answered; panics at the
/// deadline.
pub fn ping_run(lab: &Lab, from: &Host, target: &str, count: usize, timeout: Duration) {
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

/// A scratch directory for a test's control sockets (and key files), removed on drop.
pub struct TestDir(PathBuf);

impl TestDir {
    /// A fresh, empty `ethcloud-<suite>-<test>-<pid>` in the temp dir (e.g. suite `nat`).
    pub fn new(suite: &str, test: &str) -> TestDir {
        let dir =
            std::env::temp_dir().join(format!("ethcloud-{suite}-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TestDir(dir)
    }
    /// [`TestDir::new`], then the directory's permission bits set to `mode` (e.g. `0o755`, so
    /// that a client run as `nobody` can reach a socket in it).
    pub fn with_mode(suite: &str, test: &str, mode: u32) -> TestDir {
        let dir = TestDir::new(suite, test);
        fs::set_permissions(&dir.0, fs::Permissions::from_mode(mode)).unwrap();
        dir
    }
    /// The path of `name` in the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    /// The path of `name` in the directory, as a string for a command line.
    pub fn path(&self, name: &str) -> String {
        self.join(name).to_string_lossy().into_owned()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One site behind a NAT (made by [`nat_site`]): its router (a lab host on the internet
/// bridge) and the node behind it.
pub struct Site {
    /// The router: lab host `k`, underlay 198.18.0.`k` on eth0, 198.18.`k`.1 on lan0.
    pub router: Host,
    /// The node behind it: namespace `<prefix>h1k`, 198.18.`k`.2 on eth0.
    pub node: Host,
}

impl Site {
    /// The node's address as the internet sees it behind a port-keeping NAT: the router's,
    /// port 3210 (masquerade keeps the port when it is free).
    pub fn public_addr(&self) -> String {
        self.router.addr_v4()
    }
    /// How every address the internet sees for this node begins: the router's IPv4 and a
    /// colon (the port depends on the destination behind a symmetric NAT).
    pub fn public_prefix(&self) -> String {
        format!("{}:", self.router.underlay_v4())
    }
    /// The node's address on its LAN (what a DNAT on its router forwards to).
    pub fn lan_v4(&self) -> String {
        format!("198.18.{}.2", self.router.index)
    }
}

/// Turns lab host `router_index` into a NAT router for a new LAN 198.18.`router_index`.0/24
/// with one node, 198.18.`router_index`.2 (lab host number 10 + `router_index`, namespace
/// `<prefix>h1<router_index>`), behind it. `masquerade` is the statement of the postrouting
/// rule on eth0 (`masquerade` keeps the port when it is free; `masquerade random` makes a
/// symmetric NAT). The router's input filter drops everything unsolicited from the internet.
/// Needs `nft`; the namespace goes with the lab.
pub fn nat_site(lab: &mut Lab, router_index: u8, masquerade: &str) -> Site {
    let router = lab.host(router_index);
    let index = 10 + router_index;
    let ns = lab.extra_namespace(&format!("h{index}"));
    let node = Host { index, ns };
    let lan = format!("198.18.{router_index}");
    ip(&[
        "-n", &router.ns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns",
        &node.ns,
    ]);
    let router_lan = format!("{lan}.1/24");
    ip(&["-n", &router.ns, "addr", "add", &router_lan, "dev", "lan0"]);
    ip(&["-n", &router.ns, "link", "set", "lan0", "up"]);
    let node_lan = format!("{lan}.2/24");
    ip(&["-n", &node.ns, "addr", "add", &node_lan, "dev", "eth0"]);
    ip(&["-n", &node.ns, "link", "set", "eth0", "up"]);
    let gateway = format!("{lan}.1");
    ip(&["-n", &node.ns, "route", "add", "default", "via", &gateway]);
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
        &[
            "nft",
            &format!("add rule ip nat postrouting oifname eth0 {masquerade}"),
        ],
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

/// The NAT lab: three hosts on the internet bridge, host 1 the public one, hosts 2 and 3
/// NAT routers with one node behind each ([`nat_site`] with the `masquerade` statement).
/// Returns the lab, the public host and the sites behind routers 2 and 3.
pub fn nat_lab(masquerade: &str) -> (Lab, Host, Site, Site) {
    let mut lab = Lab::new(3);
    let public = lab.host(1);
    let a = nat_site(&mut lab, 2, masquerade);
    let b = nat_site(&mut lab, 3, masquerade);
    (lab, public, a, b)
}

/// A router's UDP conntrack entries (`conntrack -L -p udp`), for evidence and failure
/// messages. Panics if `conntrack` fails: an empty answer would pass the checks that no
/// mapping exists without checking anything.
pub fn conntrack(lab: &Lab, router: &Host) -> String {
    let out = lab.run(
        router,
        &["conntrack", "-L", "-p", "udp"],
        Duration::from_secs(10),
    );
    assert!(
        out.status.success(),
        "conntrack -L failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (at most [`SOON`]) until the kernel path of daemon `daemon` has sent frames,
/// pinging `target` from `from`.
pub fn wait_kernel_sends(lab: &mut Lab, daemon: usize, from: &Host, target: &str) {
    wait_kernel_sends_past(lab, daemon, from, target, 0);
}

/// Waits (at most [`SOON`]) until the kernel path of daemon `daemon` has sent more than
/// `past` frames, pinging `target` from `from`.
pub fn wait_kernel_sends_past(lab: &mut Lab, daemon: usize, from: &Host, target: &str, past: u64) {
    let start = Instant::now();
    for _ in 0..100 {
        lab.ping_once(from, target);
        let line = lab.daemons[daemon].stats_line();
        if field(&line, "kernel_path_sent").is_some_and(|n| n > past) {
            return;
        }
        assert!(
            start.elapsed() < SOON,
            "daemon {daemon}'s kernel path sent nothing past {past}: {line}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    panic!("daemon {daemon}'s kernel path sent nothing past {past}");
}

/// Runs `ip ARGS`, panicking with its stderr if it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn send_signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions; `pid` is a child we started and have
    // not reaped yet, so the PID cannot have been reused.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// Stops a child by PID: SIGTERM, up to 3 s, then SIGKILL; always reaps it.
fn stop_child(child: &mut Child, already_exited: bool) {
    if already_exited || child.try_wait().ok().flatten().is_some() {
        return;
    }
    send_signal(child.id(), libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Debian's python3 where there is one (another python3 first on PATH, such as pyenv's, does
/// not see Debian's packages, python3-jsonschema among them).
pub fn python3() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Checks `json`, an `ethcloud show --json` answer written to `file`, against
/// `tests/show.schema.json` (with `tests/show_check.py`, in `host`'s namespace); returns the
/// checker's verdict. Under `ETHCLOUD_STRICT_TESTS` (scripts/test.sh, which installs
/// python3-jsonschema) the checker's fallback is not enough.
pub fn assert_show_json_schema(lab: &Lab, host: &Host, file: &Path, json: &str) -> String {
    fs::write(file, json).expect("write the show --json answer");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (schema, checker) = (
        root.join("tests/show.schema.json"),
        root.join("tests/show_check.py"),
    );
    let out = lab.run(
        host,
        &[
            python3(),
            checker.to_str().expect("utf-8 path"),
            schema.to_str().expect("utf-8 path"),
            file.to_str().expect("utf-8 path"),
        ],
        SOON,
    );
    let verdict = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{verdict}{}{json}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::env::var_os("ETHCLOUD_STRICT_TESTS").is_none() || verdict.contains("(jsonschema)"),
        "ETHCLOUD_STRICT_TESTS is set but the schema was not checked by jsonschema: {verdict}"
    );
    verdict
}
