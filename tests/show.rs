//! `ethcloud show` against real daemons in network namespaces: two nodes, a ping across, then
//! the text and JSON answers (the JSON checked against `tests/show.schema.json`), a bad
//! request, a silent client that must not hold anything up, the default socket path (mode
//! 0600, removed at exit), and the client's errors: no daemon, wrong socket, not permitted.
//!
//! They need root, so they are `#[ignore]`d; `scripts/test.sh` runs them with
//! `--include-ignored`.

mod e2e;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use e2e::{assert_show_json_schema, python3, Lab, TestDir, ETHCLOUD, SOON};

/// How long one `ethcloud show` may take (it times out by itself after 5 s).
const CLIENT: Duration = Duration::from_secs(10);
/// The mode of the test's socket directory: open to everybody (the `nobody` client must
/// reach the socket to be refused by it).
const SOCKET_DIR_MODE: u32 = 0o755;

/// Runs `ethcloud show ARGS` (as `prefix`, e.g. setpriv, if given) on `lab`'s host 1.
fn show(lab: &Lab, prefix: &[&str], args: &[&str]) -> Output {
    let mut command: Vec<&str> = prefix.to_vec();
    command.extend([ETHCLOUD, "show"]);
    command.extend(args);
    lab.run(&lab.host(1), &command, CLIENT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that `out` failed with exit status 1 and one stderr line containing `needle`.
fn assert_fails_with(out: &Output, needle: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", text(&out.stdout));
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(needle), "no {needle:?} in: {stderr}");
}

/// Leaves a stale socket file at `path`: bound, then closed. A process another test
/// spawns at that moment holds a copy of the listener until its `exec`, and a connect
/// then still succeeds; so this waits (at most 5 s) until a connect is refused.
fn stale_socket(path: &Path) {
    drop(UnixListener::bind(path).unwrap());
    let start = Instant::now();
    loop {
        match UnixStream::connect(path) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
            other => assert!(
                start.elapsed() < Duration::from_secs(5),
                "the closed socket still takes connections: {other:?}"
            ),
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The number after `key: ` on the first line that has it, e.g. `  frames_to_device: 3`.
fn number_after(answer: &str, key: &str) -> u64 {
    answer
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in:\n{answer}"))
}

/// Two nodes with control sockets in `dir`, connected and pinging; returns host 1's socket.
fn two_pinging_nodes(lab: &mut Lab, dir: &TestDir) -> PathBuf {
    let (a, b) = (lab.host(1), lab.host(2));
    let sock_a = dir.join("a.sock");
    let sock_b = dir.join("b.sock");
    let (sa, sb) = (sock_a.to_str().unwrap(), sock_b.to_str().unwrap());
    lab.start(&a, &["-t", "7", "--control-socket", sa]);
    lab.start(&b, &["-t", "7", "--control-socket", sb, "-c", &a.addr_v4()]);
    lab.daemons[0].wait_log(&format!("peer {} added", b.addr_v4()), SOON);
    lab.daemons[1].wait_log(&format!("peer {} added", a.addr_v4()), SOON);
    lab.assert_ping(&a, &b.overlay_v4());
    lab.assert_ping(&b, &a.overlay_v4());
    sock_a
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn show_lists_the_peer_its_macs_and_counters_in_text_and_json() {
    let mut lab = Lab::new(2);
    let dir = TestDir::with_mode("show", "answer", SOCKET_DIR_MODE);
    let sock = two_pinging_nodes(&mut lab, &dir);
    let sock = sock.to_str().unwrap();
    let b = lab.host(2);

    let out = show(&lab, &[], &["--socket", sock]);
    let answer = text(&out.stdout);
    assert!(out.status.success(), "{}{answer}", text(&out.stderr));
    println!("ethcloud show:\n{answer}");
    for expected in [
        "interface: ethcloud0".to_owned(),
        "  mode: clear".to_owned(),
        "  token: 7".to_owned(),
        format!("peer: {}", b.addr_v4()),
        "  state: verified".to_owned(),
        "  vlan 0:".to_owned(),
    ] {
        assert!(
            answer.lines().any(|l| l == expected),
            "no {expected:?} in:\n{answer}"
        );
    }
    // A MAC entry behind the peer (its tap's address, learned from the pings).
    assert!(
        answer
            .lines()
            .any(|l| l.starts_with("    ") && l.contains(&format!(" at {}, age ", b.addr_v4()))),
        "no MAC entry behind {} in:\n{answer}",
        b.addr_v4()
    );
    let transfer = answer
        .lines()
        .find(|l| l.starts_with("  transfer: "))
        .expect("a transfer line");
    assert!(!transfer.contains(" 0 datagrams"), "{transfer}");
    for counter in [
        "frames_from_device",
        "frames_to_device",
        "datagrams_received",
        "datagrams_sent",
        "bytes_sent",
        // Each echo request came alone after a quiet pass: the loop yielded after writing it.
        "busy_poll_write_yields",
    ] {
        assert!(
            number_after(&answer, counter) > 0,
            "{counter} is 0:\n{answer}"
        );
    }

    let out = show(&lab, &[], &["--socket", sock, "--json"]);
    let json = text(&out.stdout);
    assert!(out.status.success(), "{}{json}", text(&out.stderr));
    println!("ethcloud show --json:\n{json}");
    let file = dir.join("show.json");
    let verdict = assert_show_json_schema(&lab, &lab.host(1), &file, &json);
    println!("schema check: {verdict}");
    // The values, not only the shape: the peer with traffic both ways, its MAC, counters.
    let script = format!(
        "import json,sys\n\
         d=json.load(open(sys.argv[1]))\n\
         p=[p for p in d['peers'] if p['address']=='{peer}']\n\
         assert len(p)==1 and p[0]['verified'], d['peers']\n\
         p=p[0]\n\
         assert min(p['rx_datagrams'],p['rx_bytes'],p['tx_datagrams'],p['tx_bytes'])>0, p\n\
         assert p['macs']>=1, p\n\
         assert any(m['peer']=='{peer}' for m in d['macs']), d['macs']\n\
         assert d['macs_total']==len(d['macs'])>=1\n\
         assert d['counters']['frames_to_device']>0 and d['counters']['bytes_sent']>0\n\
         assert d['device']=='ethcloud0' and d['mode']=='clear' and d['token']==7\n\
         print('values ok')\n",
        peer = b.addr_v4()
    );
    let out = lab.run(
        &lab.host(1),
        &[python3(), "-c", &script, file.to_str().unwrap()],
        CLIENT,
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn bad_requests_get_an_error_and_silent_clients_hold_nothing_up() {
    let mut lab = Lab::new(2);
    let dir = TestDir::with_mode("show", "requests", SOCKET_DIR_MODE);
    let sock = two_pinging_nodes(&mut lab, &dir);

    // A request that is not one: one error line, then the daemon closes.
    let mut client = UnixStream::connect(&sock).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.write_all(b"shwo me\n").unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("error: unknown request \"shwo me\""),
        "{answer}"
    );

    // Clients that connect and say nothing: the daemon still forwards and answers others
    // at once, and drops the silent ones after its 1 s deadline.
    let silent: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&sock).unwrap())
        .collect();
    let start = Instant::now();
    let out = show(&lab, &[], &["--socket", sock.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "show took {:?} with silent clients connected",
        start.elapsed()
    );
    lab.assert_ping(&lab.host(1), &lab.host(2).overlay_v4());
    for mut client in silent {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut rest = Vec::new();
        // The daemon closes the connection (EOF) within its deadline, well before ours.
        let start = Instant::now();
        let read = client.read_to_end(&mut rest);
        assert!(read.is_ok(), "{read:?}");
        assert!(start.elapsed() < Duration::from_secs(4));
        assert!(rest.is_empty());
    }

    // Clients that ask and hang up at once (the answer meets a closed socket: EPIPE, never
    // a SIGPIPE that would kill the daemon).
    for _ in 0..20 {
        let mut client = UnixStream::connect(&sock).unwrap();
        client.write_all(b"show json\n").unwrap();
        drop(client);
    }

    // An over-long request line is cut off, not buffered: one error line.
    let mut client = UnixStream::connect(&sock).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = client.write_all(&[b'x'; 4096]);
    let mut rest = Vec::new();
    let start = Instant::now();
    let read = client.read_to_end(&mut rest);
    // The daemon answers and hangs up at once: end of stream, or a reset when it closed with
    // the rest of the line unread. A read that runs into our 5 s timeout means it kept the
    // line.
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(start.elapsed() < Duration::from_secs(4));
    assert_eq!(text(&rest), "error: request longer than 256 bytes\n");

    // The daemon is alive and well after all that.
    let out = show(&lab, &[], &["--socket", sock.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let answer = text(&out.stdout);
    assert!(number_after(&answer, "control_timed_out") >= 3, "{answer}");
    assert!(lab.daemons[0].poll_exit().is_none());
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn show_errors_no_daemon_wrong_socket_not_permitted() {
    let mut lab = Lab::new(2);
    let dir = TestDir::with_mode("show", "errors", SOCKET_DIR_MODE);
    let sock = two_pinging_nodes(&mut lab, &dir);

    let missing = dir.join("missing.sock");
    let out = show(&lab, &[], &["--socket", missing.to_str().unwrap()]);
    assert_fails_with(
        &out,
        &format!(
            "no ethcloud daemon at {} (is it running? --socket)",
            missing.display()
        ),
    );

    let file = dir.join("regular-file");
    std::fs::write(&file, "not a socket").unwrap();
    let out = show(&lab, &[], &["--socket", file.to_str().unwrap()]);
    assert_fails_with(&out, "is not a socket");

    let stale = dir.join("stale.sock");
    stale_socket(&stale);
    let out = show(&lab, &[], &["--socket", stale.to_str().unwrap()]);
    assert_fails_with(&out, "nothing listens on");

    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the control socket is root-only");
    let nobody = [
        "setpriv",
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
    ];
    let out = show(&lab, &nobody, &["--socket", sock.to_str().unwrap()]);
    assert_fails_with(
        &out,
        &format!("permission denied on {}: run as root", sock.display()),
    );
    // Root still gets its answer.
    let out = show(&lab, &[], &["--socket", sock.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
#[ignore = "needs root + netns; .ci/run passes --include-ignored"]
fn default_socket_is_per_device_root_only_replaces_a_stale_one_and_goes_at_exit() {
    let mut lab = Lab::new(1);
    let a = lab.host(1);
    // A device name of this test alone, so that its default path is too.
    let device = format!("ecs{}", std::process::id() % 1_000_000_000);
    let path = PathBuf::from(format!("/run/ethcloud/{device}.sock"));
    /// Removes the socket file if the test fails before the daemon does (a name of this
    /// test's alone: nothing else is touched), and the directory if the test made it and
    /// it is empty again.
    struct RemoveOnDrop(PathBuf, bool);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
            if self.1 {
                // (Fails, and leaves it, if anything else is in it by now.)
                let _ = std::fs::remove_dir("/run/ethcloud");
            }
        }
    }
    // A stale socket file of a daemon that is gone. The directory, if this test makes it,
    // gets the mode the daemon gives it (not the one the umask would).
    let made_dir = !Path::new("/run/ethcloud").exists();
    let _remove = RemoveOnDrop(path.clone(), made_dir);
    if made_dir {
        std::fs::create_dir_all("/run/ethcloud").unwrap();
        std::fs::set_permissions("/run/ethcloud", std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let _ = std::fs::remove_file(&path);
    stale_socket(&path);

    let id = lab.spawn(&a, &["-d", &device, "-t", "7"]);
    lab.daemons[id].wait_log(&format!("control socket {}", path.display()), SOON);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let dir_mode = std::fs::metadata("/run/ethcloud")
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode & 0o755, 0o755, "{dir_mode:o}");

    // `ethcloud show DEVICE` finds it without --socket.
    let out = show(&lab, &[], &[&device]);
    let answer = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        answer.starts_with(&format!("interface: {device}\n")),
        "{answer}"
    );

    lab.daemons[id].signal(libc::SIGTERM);
    let status = lab.daemons[id].wait_exit(SOON);
    assert!(status.success(), "{status}");
    assert!(!path.exists(), "{} is left behind", path.display());
    let out = show(&lab, &[], &[&device]);
    assert_fails_with(&out, "no ethcloud daemon at");
}
