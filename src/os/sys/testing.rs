//! Helpers for the root-only tests of the OS edges: a network namespace of a test's own, and
//! skips that fail where the suite runs strict.

/// Runs `f` on a thread of its own in a new network namespace (with only a loopback, down)
/// and returns what it returned; the namespace goes with the thread. Needs root.
pub(crate) fn in_own_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let worker = std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_NEWNET) takes a flag and moves only this thread (and what it
        // starts) into a new network namespace; nothing else of the test shares it.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        f()
    });
    worker.join().expect("the worker in its namespace ran")
}

/// Runs `command` (a program and its arguments, split at spaces), which must succeed.
pub(crate) fn run(command: &str) {
    let mut words = command.split(' ');
    let program = words.next().unwrap_or_default();
    let ok = std::process::Command::new(program)
        .args(words)
        .status()
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    assert!(ok.success(), "{command}: {ok}");
}

/// A test that cannot check what it is for here (the kernel or the system lacks something)
/// says so on standard error and returns; but where `ETHCLOUD_STRICT_TESTS` is set, as
/// scripts/test.sh sets it (CI's machine has all of it), the skip is a failure.
pub(crate) fn skip(reason: &str) {
    assert!(
        std::env::var_os("ETHCLOUD_STRICT_TESTS").is_none(),
        "{reason} (ETHCLOUD_STRICT_TESTS is set: this test must not be skipped)"
    );
    eprintln!("skipped: {reason}");
}

/// A netlink message of type `kind` for request `seq`, with `body` (a family header and its
/// attributes) after the 16-byte header, padded to 4 bytes; the length set.
pub(crate) fn nl_message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out[4..6].copy_from_slice(&kind.to_ne_bytes());
    out[8..12].copy_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(body);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    let len = out.len() as u32;
    out[0..4].copy_from_slice(&len.to_ne_bytes());
    out
}

/// A netlink attribute of type `kind` holding `data`, padded to 4 bytes.
pub(crate) fn nl_attr(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(4 + data.len() as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}
