//! The `ethcloud` binary's command-line contract, tested from the outside: exit codes
//! (0 clean, 1 run-time failure, 2 usage error) and "exactly one line on stderr, starting with
//! `ethcloud: `" for every error of ours (clap keeps its own format for its usage errors).
//!
//! Owns only black-box runs of the built binary; the validation rules themselves are unit
//! tested in `src/cli/tests.rs`. Cases that create a tap device need root and run in a throw-away
//! network namespace (`unshare --net`), so they are `#[ignore]`d by default.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ethcloud");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

/// Asserts the exit code and that stderr is exactly one line starting with `ethcloud: `;
/// returns that line.
fn assert_fails(args: &[&str], code: i32) -> String {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: stderr must be one line: {stderr:?}"
    );
    assert!(lines[0].starts_with("ethcloud: "), "{args:?}: {stderr:?}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    lines[0].to_owned()
}

#[test]
fn verbose_with_quiet_is_a_clap_usage_error() {
    let out = run(&["-v", "-q"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("--quiet"), "{stderr}");
}

#[test]
fn unknown_option_is_a_clap_usage_error() {
    let out = run(&["--frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn listen_without_port_exits_2() {
    let line = assert_fails(&["-l", "0.0.0.0"], 2);
    assert!(line.contains("missing port"), "{line}");
}

#[test]
fn listen_port_99999_exits_2() {
    let line = assert_fails(&["-l", "0.0.0.0:99999"], 2);
    assert!(line.contains("above 65535"), "{line}");
}

#[test]
fn connect_without_port_exits_2() {
    let line = assert_fails(&["-c", "198.18.0.2"], 2);
    assert!(line.contains("missing port"), "{line}");
}

#[test]
fn token_2_pow_56_exits_2_naming_the_limit() {
    let line = assert_fails(&["-t", "72057594037927936"], 2);
    assert!(line.contains("72057594037927935"), "{line}");
}

#[test]
fn token_abc_exits_2() {
    let line = assert_fails(&["-t", "abc"], 2);
    assert!(line.contains("not a decimal number"), "{line}");
}

#[test]
fn device_name_of_20_chars_exits_2() {
    let line = assert_fails(&["-d", "abcdefghijklmnopqrst"], 2);
    assert!(line.contains("IFNAMSIZ"), "{line}");
}

#[test]
fn zero_timeouts_exit_2() {
    assert_fails(&["--peer-timeout", "0"], 2);
    assert_fails(&["--mac-timeout", "0"], 2);
}

#[test]
fn listen_on_a_foreign_address_exits_1_before_touching_the_tap() {
    let addr = "198.18.255.254:3210";
    assert!(
        std::net::UdpSocket::bind(addr).is_err(),
        "precondition: {addr} must not be local"
    );
    // `-d lo` would fail as a tap device; the bind error must come first.
    let line = assert_fails(&["-l", addr, "-d", "lo"], 1);
    assert!(
        line.starts_with("ethcloud: cannot listen on 198.18.255.254:3210: "),
        "{line}"
    );
}

#[test]
fn unresolvable_peer_name_exits_1_before_touching_the_tap() {
    let line = assert_fails(&["-c", "nonexistent.invalid:3210", "-d", "lo"], 1);
    assert!(
        line.starts_with("ethcloud: cannot resolve peer address nonexistent.invalid:3210: "),
        "{line}"
    );
}

#[test]
fn help_exits_0_and_lists_the_specs_options() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "-d, --device <device>",
        "-l, --listen <listen>",
        "-t, --token <token>",
        "-c, --connect <connect>",
        "--peer-timeout <peer_timeout>",
        "--mac-timeout <mac_timeout>",
        "-v, --verbose",
        "-q, --quiet",
        "[default: ethcloud%d]",
        "[default: 0.0.0.0:3210]",
        "[default: 0]",
        "[default: 1800]",
        "[default: 300]",
    ] {
        assert!(help.contains(option), "--help lacks {option:?}:\n{help}");
    }
}

#[test]
fn version_exits_0() {
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("ethcloud {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn existing_non_tap_interface_exits_1_with_a_hint() {
    let out = Command::new("unshare")
        .args(["--net", BIN, "-d", "lo", "-l", "0.0.0.0:3210"])
        .env_remove("RUST_LOG")
        .output()
        .expect("unshare runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ethcloud: cannot create tap device lo: "),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn template_device_starts_logs_its_real_name_and_sigterm_exits_0() {
    let mut child = Command::new("unshare")
        .args([
            "--net",
            BIN,
            "-d",
            "ecltest%d",
            "-l",
            "[::]:3210",
            "-t",
            "134",
            "-c",
            "198.18.0.2:3210",
        ])
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare runs");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let started = wait_for(&rx, "started: ");
    assert!(
        started.ends_with(
            "started: device ecltest0, listening on [::]:3210, token 134, \
             peers to connect: 198.18.0.2:3210"
        ),
        "{started}"
    );

    // SIGUSR1 logs the counters and keeps running.
    signal(child.id(), "USR1");
    let stats = wait_for(&rx, "stats: ");
    assert!(stats.contains("stats: peers=0 "), "{stats}");

    signal(child.id(), "TERM");
    let status = child.wait().expect("the daemon exits");
    let rest: Vec<String> = rx.iter().collect();
    reader.join().expect("the reader thread ends");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("shutting down (SIGTERM)")),
        "{rest:?}"
    );
}

/// The first line containing `needle`, skipping others (e.g. warnings about unreachable
/// peers: the namespace has no routes).
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no line with {needle:?} within 10 s"));
        if line.contains(needle) {
            return line;
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}
