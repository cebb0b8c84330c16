//! The `--ifup` and `--ifdown` commands: a shell command run with `IFNAME` set to the tap
//! device's name, so that operators can add addresses and routes (`ip addr add ... dev
//! $IFNAME`) or attach the tap to a bridge.
//!
//! Owns starting the command (`/bin/sh -c`), its environment, and waiting for it with a
//! deadline. It does not decide when to run it: `main` runs `--ifup` once the tap is up (still
//! with root's privileges) and `--ifdown` after the loop ends, while the tap still exists.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Duration;

use log::{debug, info};

use crate::error::{Error, HookFailure};
use crate::sys::notify::NOTIFY_SOCKET;

/// The environment variable that holds the tap device's name.
pub const IFNAME: &str = "IFNAME";
/// How long a command may run before it is killed and counted as failed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a running command is checked on.
const POLL: Duration = Duration::from_millis(20);

/// Runs `command` with `/bin/sh -c`, `IFNAME=ifname` in its environment, stdin from
/// `/dev/null` and stdout and stderr shared with the daemon (so they land in its log), and
/// waits up to `timeout` for it. `option` (`--ifup` / `--ifdown`) names it in messages. The
/// command runs in a process group of its own, so that on timeout everything it started is
/// killed with it, not left running (what leaves that group, as `timeout` or `setsid` does,
/// is not).
///
/// # Errors
///
/// [`Error::Hook`] if the shell cannot be started, the command exits non-zero or is killed
/// by a signal, or it runs longer than `timeout` (it is then killed).
pub fn run(
    option: &'static str,
    command: &str,
    ifname: &str,
    timeout: Duration,
) -> Result<(), Error> {
    let fail = |failure| Error::Hook {
        option,
        command: command.to_owned(),
        failure,
    };
    info!("running {option} command for {ifname}: {command}");
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env(IFNAME, ifname)
        // Only the daemon may talk to systemd about the service's state.
        .env_remove(NOTIFY_SOCKET)
        .stdin(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| fail(HookFailure::Spawn(e)))?;
    // Counted in polls rather than read from a clock: the daemon owns the clock.
    let polls = timeout.as_millis() / POLL.as_millis();
    for _ in 0..=polls {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                debug!("{option} command finished");
                return Ok(());
            }
            Ok(Some(status)) => return Err(fail(HookFailure::Status(status))),
            Ok(None) => thread::sleep(POLL),
            Err(e) => {
                // Cannot tell how it ended (or whether it did). Unless it is gone already
                // (ECHILD: reaped by someone else, its PID free for reuse), it is stopped,
                // group and all.
                if e.raw_os_error() != Some(libc::ECHILD) {
                    let _ = crate::sys::signal::kill_process_group(child.id());
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(fail(HookFailure::Wait(e)));
            }
        }
    }
    // Our own child, not yet reaped: its PID, which is also its group's id, cannot have been
    // reused. The group first, so that what the shell started dies too.
    if let Err(e) = crate::sys::signal::kill_process_group(child.id()) {
        debug!("killing the process group of the {option} command: {e}");
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(fail(HookFailure::Timeout(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty directory of this test process's own, named after `tag`.
    fn fresh_dir(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ethcloud-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn command_sees_ifname() {
        let dir = fresh_dir("hook");
        let out = dir.join("out");
        let command = format!("echo \"up $IFNAME\" > '{}'", out.display());
        run("--ifup", &command, "ethcloud7", HOOK_TIMEOUT).unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "up ethcloud7\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn failing_command_reports_its_status_in_one_line() {
        let err = run("--ifdown", "exit 3", "ethcloud0", HOOK_TIMEOUT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--ifdown command \"exit 3\" exited with status 3"
        );
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn command_over_its_time_is_killed() {
        let started = std::time::Instant::now();
        let err = run(
            "--ifup",
            "sleep 30",
            "ethcloud0",
            Duration::from_millis(200),
        )
        .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(err.to_string().contains("killed"), "{err}");
    }

    /// Whether process `pid` is gone: no such process, or a zombie waiting to be reaped.
    fn is_gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn what_a_command_over_its_time_started_is_killed_too() {
        let dir = fresh_dir("hook-kill");
        let pid_file = dir.join("pid");
        // The shell starts a grandchild in the background, writes its PID and waits for it.
        // (3 s: time enough for the shell to get that far on a loaded machine.)
        let command = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let err = run("--ifup", &command, "ethcloud0", Duration::from_secs(3)).unwrap_err();
        assert!(err.to_string().contains("killed"), "{err}");
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let pid = pid.trim();
        assert!(!pid.is_empty());
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !is_gone(pid) && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let gone = is_gone(pid);
        if !gone {
            // Do not leave it behind when the test fails.
            let _ = Command::new("kill").arg("-9").arg(pid).status();
        }
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            gone,
            "the command's background child {pid} outlived the timeout"
        );
    }
}
