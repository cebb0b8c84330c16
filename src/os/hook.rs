//! The `--ifup` and `--ifdown` commands: a shell command run with `IFNAME` set to the tap
//! device's name, so that operators can add addresses and routes (`ip addr add ... dev
//! $IFNAME`) or attach the tap to a bridge.
//!
//! Owns starting the command (`/bin/sh -c`), its environment, and waiting for it with a
//! deadline. It does not decide when to run it: `main` runs `--ifup` once the tap is up (still
//! with root's privileges) and `--ifdown` after the loop ends, while the tap still exists.

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
/// waits up to `timeout` for it. `option` (`--ifup` / `--ifdown`) names it in messages.
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
            Err(e) => return Err(fail(HookFailure::Spawn(e))),
        }
    }
    // Our own child, not yet reaped: its PID cannot have been reused.
    let _ = child.kill();
    let _ = child.wait();
    Err(fail(HookFailure::Timeout(timeout)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_sees_ifname() {
        let dir = std::env::temp_dir().join(format!("ethcloud-hook-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
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
}
