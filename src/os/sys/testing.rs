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
