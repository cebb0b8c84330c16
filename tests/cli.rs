//! The `ethcloud` binary's command-line contract, tested from the outside: exit codes
//! (0 clean, 1 run-time failure, 2 usage error) and "exactly one line on stderr, starting with
//! `ethcloud: `" for every error of ours (clap keeps its own format for its usage errors).
//!
//! Owns only black-box runs of the built binary; the validation rules themselves are unit
//! tested in `src/os/cli/tests.rs`. Cases that create a tap device need root and run in a throw-away
//! network namespace (`unshare --net`), so they are `#[ignore]`d by default.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_ethcloud");

/// The longest a run of the binary may take: every case here ends at once unless a check
/// that should stop it before it starts working no longer does.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// A child process that is killed (by its PID) and reaped when dropped, also when a test
/// panics before it ends.
struct Guard(Child);

impl Guard {
    /// Waits for the child to exit, at most `limit`; past it the test fails (and the drop
    /// kills the child). `what` names it in the failure.
    fn wait_within(&mut self, limit: Duration, what: &str) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{what} did not end within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Reads all of `source` on a thread of its own, so that a full pipe never blocks the child.
fn read_all(mut source: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = source.read_to_end(&mut bytes);
        bytes
    })
}

/// Runs `command` to its end with `input` on its standard input (none if empty), at most
/// [`RUN_LIMIT`]: one that runs longer is killed and fails the test.
fn output_within_limit(mut command: Command, input: &[u8]) -> Output {
    let stdin = if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    let child = command
        .env_remove("RUST_LOG")
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    let mut child = Guard(child);
    if let Some(mut stdin) = child.0.stdin.take() {
        use std::io::Write;
        let input = input.to_vec();
        // The child may exit before reading everything; a broken pipe is its answer, not
        // ours. Written on a thread, so that a child that never reads cannot block the test.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout = read_all(child.0.stdout.take().expect("stdout is piped"));
    let stderr = read_all(child.0.stderr.take().expect("stderr is piped"));
    let status = child.wait_within(RUN_LIMIT, &format!("{command:?}"));
    Output {
        status,
        stdout: stdout.join().expect("the stdout reader ends"),
        stderr: stderr.join().expect("the stderr reader ends"),
    }
}

fn run(args: &[&str]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    output_within_limit(command, &[])
}

/// [`run`] in a network namespace of its own with nothing but a loopback that is down
/// (`unshare -rn`: a user namespace too, so that it needs no root): whatever the binary
/// tries to send, a DNS query included, goes nowhere.
fn run_isolated(args: &[&str]) -> Output {
    let mut command = Command::new("unshare");
    command.arg("-rn").arg(BIN).args(args);
    output_within_limit(command, &[])
}

/// Asserts the exit code and that stderr is exactly one line starting with `ethcloud: `;
/// returns that line. Run isolated ([`run_isolated`]): should a check that must refuse the
/// arguments be missing, the daemon starts in a namespace of its own, not on the test host
/// (a tap `ethcloud0`, the port 3210) until the run's limit.
fn assert_fails(args: &[&str], code: i32) -> String {
    let out = if user_namespaces_work() {
        run_isolated(args)
    } else {
        run(args)
    };
    assert_output_fails(args, &out, code)
}

/// Whether `unshare -rn` works here (it needs user namespaces, which a container or a
/// distribution's policy may forbid to a user who is not root). Where it does not, the cases
/// run on the host as they did before, with a note; where `ETHCLOUD_STRICT_TESTS` is set (as
/// `.ci/run` sets it, as root), that fails instead.
fn user_namespaces_work() -> bool {
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        let works = Command::new("unshare")
            .args(["-rn", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !works {
            assert!(
                std::env::var_os("ETHCLOUD_STRICT_TESTS").is_none(),
                "`unshare -rn true` fails (ETHCLOUD_STRICT_TESTS is set: the usage errors \
                 must be tried in a namespace of their own)"
            );
            eprintln!("`unshare -rn` fails here: the usage errors are tried on the host");
        }
        works
    })
}

/// [`assert_fails`] for an output already taken.
fn assert_output_fails(args: &[&str], out: &Output, code: i32) -> String {
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

/// Under systemd, with standard error going to the journal (`JOURNAL_STREAM` names that very
/// file), the fatal line carries the syslog priority of an error, `<3>`; written anywhere
/// else (the variable names another file), it does not.
#[test]
fn a_fatal_line_to_the_journal_carries_the_error_priority() {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::temp_dir().join(format!("ethcloud-cli-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let run_to = |name: &str, stream_of: Option<&str>| {
        let path = dir.join(name);
        let file = std::fs::File::create(&path).unwrap();
        let meta = file.metadata().unwrap();
        let named = match stream_of {
            Some(other) => std::fs::metadata(dir.join(other)).unwrap(),
            None => meta,
        };
        let mut child = Guard(
            Command::new(BIN)
                .args(["-l", "0.0.0.0"])
                .env("JOURNAL_STREAM", format!("{}:{}", named.dev(), named.ino()))
                .env_remove("RUST_LOG")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(file)
                .spawn()
                .unwrap(),
        );
        let status = child.wait_within(RUN_LIMIT, "ethcloud -l 0.0.0.0");
        assert_eq!(status.code(), Some(2));
        std::fs::read_to_string(&path).unwrap()
    };
    let journal = run_to("journal", None);
    assert!(
        journal.starts_with("<3>ethcloud: invalid listen address"),
        "{journal:?}"
    );
    let elsewhere = run_to("elsewhere", Some("journal"));
    assert!(
        elsewhere.starts_with("ethcloud: invalid listen address"),
        "{elsewhere:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
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
    // `-d lo` would fail as a tap device; the bind error must come first (on the host: a
    // namespace of its own, with no address at all, lets any address be bound).
    let args = ["-l", addr, "-d", "lo"];
    let line = assert_output_fails(&args, &run(&args), 1);
    assert!(
        line.starts_with("ethcloud: cannot listen on 198.18.255.254:3210: "),
        "{line}"
    );
}

/// A name that does not resolve at start-up (a stale one among several, or a resolver not
/// up yet at boot) is one warning, and the start goes on without it: here as far as the tap,
/// which `-d lo` makes fail.
#[test]
fn unresolvable_peer_name_is_a_warning_and_the_start_goes_on() {
    // Isolated: the resolver's query must not leave this machine (so not tried at all where
    // user namespaces are forbidden).
    if !user_namespaces_work() {
        return;
    }
    let args = ["-c", "nonexistent.invalid:3210", "-d", "lo"];
    let out = run_isolated(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].contains("WARN"), "{stderr}");
    assert!(
        lines[0].contains("cannot resolve peer address nonexistent.invalid:3210: "),
        "{stderr}"
    );
    assert!(
        lines[0].ends_with(
            "; starting without it, and resolving it again every 30 s (further failures are \
             logged at debug)"
        ),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("ethcloud: cannot create tap device lo: "),
        "{stderr}"
    );
}

#[test]
fn help_exits_0_and_lists_the_specs_options() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    // The seed's eight options, in the seed's order.
    let seed = [
        "-d, --device <device>",
        "-l, --listen <listen>",
        "-t, --token <token>",
        "-c, --connect <connect>",
        "--peer-timeout <peer_timeout>",
        "--mac-timeout <mac_timeout>",
        "-v, --verbose",
        "-q, --quiet",
    ];
    let defaults = [
        "[default: ethcloud%d]",
        "[default: 0.0.0.0:3210]",
        "[default: 0]",
        "[default: 1800]",
        "[default: 300]",
    ];
    for option in seed.iter().chain(&defaults) {
        assert!(help.contains(option), "--help lacks {option:?}:\n{help}");
    }
    // They open the list, in that order; ours follow.
    let options: Vec<&str> = help
        .lines()
        .skip_while(|l| *l != "Options:")
        .filter(|l| l.starts_with("  -") || l.starts_with("      --"))
        .map(str::trim)
        .take(seed.len())
        .collect();
    assert_eq!(options, seed, "{help}");
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

/// RFC 7748 section 6.1, Alice's key pair, in text form.
const ALICE_PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const ALICE_PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

/// A listen address that is not local: should a start-up check be missing, the daemon fails
/// to bind (exit 1) before it touches any tap device.
const FOREIGN_LISTEN: &str = "198.18.255.254:3210";

/// Runs the binary with `input` on its standard input.
fn run_with_input(args: &[&str], input: &[u8]) -> Output {
    let mut command = Command::new(BIN);
    command.args(args);
    output_within_limit(command, input)
}

/// A fresh directory for one test's files.
fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ethcloud-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn write_file(path: &std::path::Path, contents: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, contents).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[test]
fn genkey_prints_a_new_key_each_run_and_pubkey_derives_its_public_key() {
    let genkey = || {
        let out = run(&["genkey"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        let key = String::from_utf8(out.stdout).expect("text");
        assert_eq!(key.len(), 45, "{key:?}");
        assert!(key.ends_with("=\n"), "{key:?}");
        key
    };
    let (a, b) = (genkey(), genkey());
    assert_ne!(a, b);
    for key in [a, b] {
        let out = run_with_input(&["pubkey"], key.as_bytes());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let public = String::from_utf8(out.stdout).expect("text");
        assert_eq!(public.len(), 45, "{public:?}");
        assert_ne!(public, key);
    }
}

/// A private key written to /dev/null is lost: genkey refuses it, whether standard output
/// was sent there or closed (`>&-`; the child then gets /dev/null in its place).
#[test]
fn genkey_refuses_a_standard_output_that_is_dev_null_or_closed() {
    use std::os::unix::process::CommandExt;
    for closed in [false, true] {
        let mut command = Command::new(BIN);
        command
            .arg("genkey")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if closed {
            // SAFETY: runs in the child between fork and exec; close(2) is async-signal-safe
            // and touches nothing but the child's own descriptor 1.
            unsafe {
                command.pre_exec(|| {
                    libc::close(1);
                    Ok(())
                });
            }
        }
        let mut child = Guard(command.spawn().expect("the command runs"));
        let stderr = read_all(child.0.stderr.take().expect("stderr is piped"));
        let status = child.wait_within(RUN_LIMIT, "genkey into /dev/null");
        let said = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
        assert_eq!(status.code(), Some(1), "closed {closed}: {said}");
        assert_eq!(
            said,
            "ethcloud: cannot write the private key to standard output: it is /dev/null \
             (closed, or sent there), where the key would be lost\n",
            "closed {closed}"
        );
    }
}

#[test]
fn pubkey_of_rfc7748_alice_is_her_public_key() {
    let out = run_with_input(&["pubkey"], format!("{ALICE_PRIVATE}\n").as_bytes());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{ALICE_PUBLIC}\n")
    );
    // No newline at the end is fine too (`printf %s KEY | ethcloud pubkey`).
    let out = run_with_input(&["pubkey"], ALICE_PRIVATE.as_bytes());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{ALICE_PUBLIC}\n")
    );
}

#[test]
fn pubkey_of_garbage_fails_with_one_line() {
    for input in [&b"garbage\n"[..], b"", &[0xff; 44], &[b'A'; 10_000]] {
        let out = run_with_input(&["pubkey"], input);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.starts_with("ethcloud: standard input: "), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn key_tools_do_not_take_daemon_options() {
    let out = run(&["-t", "7", "genkey"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn private_key_with_key_file_exits_2() {
    let line = assert_fails(
        &[
            "--private-key",
            "/nonexistent/a.key",
            "--trusted",
            "/nonexistent/trusted",
            "--key-file",
            "/nonexistent/b.key",
            "-l",
            FOREIGN_LISTEN,
        ],
        2,
    );
    assert!(
        line.starts_with("ethcloud: --private-key cannot be combined with --key-file"),
        "{line}"
    );
    let line = assert_fails(&["--private-key", "/nonexistent/a.key"], 2);
    assert!(line.contains("--private-key needs --trusted"), "{line}");
}

#[test]
fn world_readable_private_key_exits_with_the_chmod_hint() {
    let dir = temp_dir("mode");
    let key = dir.join("node.key");
    let trusted = dir.join("trusted");
    write_file(&key, &format!("{ALICE_PRIVATE}\n"), 0o644);
    write_file(&trusted, &format!("{ALICE_PUBLIC} alice\n"), 0o644);
    let key_arg = key.to_str().expect("utf-8 path");
    let args = [
        "--private-key",
        key_arg,
        "--trusted",
        trusted.to_str().expect("utf-8 path"),
        "-l",
        FOREIGN_LISTEN,
        "-q",
    ];
    let line = assert_fails(&args, 2);
    assert!(
        line.starts_with(&format!(
            "ethcloud: private key file {key_arg} is open to others"
        )),
        "{line}"
    );
    assert!(line.contains(&format!("chmod 600 {key_arg}")), "{line}");

    // Once it is 0600 the keys load, and start-up goes on to the (failing) bind (on the
    // host: a namespace of its own, with no address at all, lets any address be bound).
    write_file(&key, &format!("{ALICE_PRIVATE}\n"), 0o600);
    let line = assert_output_fails(&args, &run(&args), 1);
    assert!(line.starts_with("ethcloud: cannot listen on "), "{line}");

    // A bad trusted key is named with its file and line.
    write_file(&trusted, "# nodes\nnot-a-key\n", 0o644);
    let line = assert_fails(&args, 2);
    assert!(
        line.starts_with(&format!(
            "ethcloud: trusted keys {}, line 2: ",
            trusted.display()
        )),
        "{line}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn ifdown_runs_when_dropping_privileges_fails_after_ifup() {
    let dir = temp_dir("ifdown");
    let (up, down, socket) = (dir.join("up"), dir.join("down"), dir.join("c.sock"));
    let ifup = format!("touch {}", up.display());
    let ifdown = format!("touch {}", down.display());
    // A user namespace that maps only root: the switch to uid 4242 fails, after --ifup ran.
    let args = [
        "-q",
        "-d",
        "ectest0",
        "-l",
        "127.0.0.1:0",
        "--user",
        "4242",
        "--control-socket",
        socket.to_str().expect("utf-8 path"),
        "--ifup",
        &ifup,
        "--ifdown",
        &ifdown,
    ];
    let line = assert_output_fails(&args, &run_isolated(&args), 1);
    assert!(
        line.starts_with("ethcloud: cannot switch to user 4242"),
        "{line}"
    );
    assert!(up.exists(), "--ifup did not run");
    assert!(
        down.exists(),
        "--ifdown did not run after the failed switch"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn existing_non_tap_interface_exits_1_with_a_hint() {
    let mut command = Command::new("unshare");
    command.args(["--net", BIN, "-d", "lo", "-l", "0.0.0.0:3210"]);
    let out = output_within_limit(command, &[]);
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
    let child = Command::new("unshare")
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
    // Killed by its PID if anything below fails.
    let mut child = Guard(child);
    let stderr = child.0.stderr.take().expect("stderr is piped");
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
    signal(child.0.id(), "USR1");
    let stats = wait_for(&rx, "stats: ");
    assert!(stats.contains("stats: peers=0 "), "{stats}");

    signal(child.0.id(), "TERM");
    let status = child.wait_within(RUN_LIMIT, "the daemon after SIGTERM");
    // The daemon has exited, so its stderr ends and the reader with it.
    let rest: Vec<String> = rx.iter().collect();
    reader.join().expect("the reader thread ends");
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("shutting down (SIGTERM)")),
        "{rest:?}"
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn sigterm_while_a_name_resolves_against_a_silent_resolver_exits_0_at_once() {
    // In a network and mount namespace of their own, the resolver is 198.18.99.1, routed
    // into loopback where nothing answers: each name takes the resolver's whole timeout
    // (30 s here), in a call no signal interrupts. SIGTERM must not wait for it.
    let dir = temp_dir("resolve");
    let resolv = dir.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 198.18.99.1\noptions timeout:30 attempts:1\n",
    )
    .expect("resolv.conf");
    // Plain DNS, whatever the host uses (a systemd-resolved host would answer over a Unix
    // socket, which the namespace does not cut off).
    let nsswitch = dir.join("nsswitch.conf");
    std::fs::write(&nsswitch, "hosts: files dns\n").expect("nsswitch.conf");
    let script = format!(
        "mount --bind {} /etc/resolv.conf && mount --bind {} /etc/nsswitch.conf && \
         ip link set lo up && ip route add 198.18.99.0/24 dev lo && \
         exec {BIN} -d ecrtest%d -l 127.0.0.1:0 -c peer.example.invalid:3210",
        resolv.display(),
        nsswitch.display()
    );
    let mut child =
        spawn_for_stderr(Command::new("unshare").args(["--net", "--mount", "sh", "-c", &script]));
    // The query is out once a socket to 198.18.99.1:53 shows in the daemon's namespace
    // (/proc/PID/net/udp writes the address as little-endian hex).
    let udp = format!("/proc/{}/net/udp", child.0.id());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let table = std::fs::read_to_string(&udp).unwrap_or_default();
        if table.contains("016312C6:0035") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no query to the resolver within 10 s:\n{table}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, stderr) = terminate(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("stopped during start-up"), "{stderr}");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn sigterm_while_ifup_runs_runs_ifdown_and_exits_0_without_starting() {
    let dir = temp_dir("ifup-stop");
    let (up, go, down) = (dir.join("up"), dir.join("go"), dir.join("down"));
    // --ifup runs until the test says go (after the signal), at most 20 s: however slow the
    // machine, the signal comes while it runs.
    let ifup = format!(
        "touch {}; i=0; while [ ! -e {} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done",
        up.display(),
        go.display()
    );
    let ifdown = format!("touch {}", down.display());
    let mut child = spawn_for_stderr(Command::new("unshare").args([
        "--net",
        BIN,
        "-d",
        "ecutest%d",
        "-l",
        "127.0.0.1:0",
        "--ifup",
        &ifup,
        "--ifdown",
        &ifdown,
    ]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !up.exists() {
        assert!(
            Instant::now() < deadline,
            "--ifup did not start within 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    signal(child.0.id(), "TERM");
    std::fs::write(&go, "").expect("go");
    let (status, stderr) = terminate(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stopped during start-up (a signal came while --ifup ran)"),
        "{stderr}"
    );
    assert!(!stderr.contains("started: "), "{stderr}");
    assert!(down.exists(), "--ifdown did not run");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

/// Starts `command` (with no RUST_LOG, its standard error piped), killed by its PID if the
/// test fails before it ends.
fn spawn_for_stderr(command: &mut Command) -> Guard {
    let child = command
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command starts");
    Guard(child)
}

/// Sends `child` SIGTERM and waits at most `limit` for it to end: its status and all it
/// wrote to standard error.
fn terminate(child: &mut Guard, limit: Duration) -> (std::process::ExitStatus, String) {
    signal(child.0.id(), "TERM");
    let status = child.wait_within(limit, "the daemon after SIGTERM");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.0.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("stderr");
    }
    (status, stderr)
}

/// The first line containing `needle` within 10 s, skipping others (e.g. warnings about
/// unreachable peers: the namespace has no routes).
fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
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

/// Runs the binary with its standard output a pipe whose reader is already gone, and with
/// standard error as given; returns how it ended.
fn run_into_closed_pipe(args: &[&str], stderr: Stdio) -> std::process::ExitStatus {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(stderr)
        .spawn()
        .expect("start the binary");
    Guard(child).wait_within(RUN_LIMIT, "a run into a closed pipe")
}

/// One end of a connected socket pair whose other end is closed before anything can be
/// written (a write there fails with EPIPE, as into a pipe nobody reads any more).
fn closed_pipe() -> Stdio {
    let (reader, writer) = std::os::unix::net::UnixStream::pair().expect("make a socket pair");
    drop(reader);
    Stdio::from(std::os::fd::OwnedFd::from(writer))
}

#[test]
fn a_reader_that_went_away_ends_the_output_quietly_not_with_a_panic() {
    use std::os::unix::net::UnixListener;
    use std::os::unix::process::ExitStatusExt;
    // `ethcloud --completions bash | true`: status 141, as a shell shows SIGPIPE, and
    // nothing on standard error (no panic message, no abort).
    let mut child = Command::new(BIN)
        .args(["--completions", "bash"])
        .stdin(Stdio::null())
        .stdout(closed_pipe())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let stderr = read_all(child.stderr.take().expect("stderr"));
    let status = Guard(child).wait_within(RUN_LIMIT, "--completions into a closed pipe");
    let said = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
    assert_eq!(
        (status.code(), status.signal()),
        (Some(141), None),
        "{said}"
    );
    assert!(said.is_empty(), "{said}");

    let status = run_into_closed_pipe(&["genkey"], Stdio::null());
    assert_eq!((status.code(), status.signal()), (Some(141), None));

    // `ethcloud show | head -1` with an answer larger than a pipe holds, from a daemon
    // stand-in on a socket of its own.
    let dir = temp_dir("closed-pipe");
    let path = dir.join("show.sock");
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).expect("bind the stand-in's socket");
    let server = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 64];
            let _ = stream.read(&mut request);
            let line = "peer 198.18.0.2:3210 verified\n".repeat(20_000);
            let _ = stream.write_all(line.as_bytes());
        }
    });
    let socket = path.to_str().expect("utf-8 path");
    let status = run_into_closed_pipe(&["show", "--socket", socket], Stdio::null());
    assert_eq!((status.code(), status.signal()), (Some(141), None));
    server.join().expect("the stand-in");

    // And a standard error that cannot be written (/dev/full) does not turn an error into a
    // panic either: status 1, as with any.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("open /dev/full");
    let status = run_into_closed_pipe(
        &["show", "--socket", "/nonexistent/x.sock"],
        Stdio::from(full),
    );
    assert_eq!((status.code(), status.signal()), (Some(1), None));
    let _ = std::fs::remove_dir_all(&dir);
}
