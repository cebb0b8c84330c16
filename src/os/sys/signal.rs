//! [`SignalFd`]: SIGINT, SIGTERM, SIGUSR1 and SIGHUP delivered as readable events on an fd.
//!
//! Owns blocking those four signals (so their default action, killing the process, never
//! runs) and reading them from a signalfd that sits in the daemon's epoll set, killing a
//! hook command's process group ([`kill_process_group`]), and setting SIGCHLD back to its
//! default action at start ([`default_child_signal`]). It does not decide what a signal
//! means: the daemon does.

use std::fs::File;
use std::io::{self, Read};
use std::mem;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// Blocks SIGHUP and SIGUSR1, whose default action kills the process, before the daemon's
/// slow start (the config file, an NSS lookup of `--user`): one sent then stays pending, and
/// [`SignalFd::new`] later hands it over (SIGHUP never stops the daemon). SIGINT and SIGTERM
/// keep their default action until then: they are meant to stop it.
///
/// # Errors
///
/// What `sigprocmask(2)` returned.
pub fn block_reload_and_status() -> io::Result<()> {
    block(&[libc::SIGUSR1, libc::SIGHUP]).map(|_| ())
}

/// Blocks `signals` for the calling thread (`sigprocmask`); returns the set of them.
fn block(signals: &[libc::c_int]) -> io::Result<libc::sigset_t> {
    // Zeroed first, whatever sigemptyset() writes (glibc clears the whole set, another
    // libc may clear only the kernel's part).
    // SAFETY: sigset_t is plain integers, for which all zeroes is a valid value.
    let mut set: libc::sigset_t = unsafe { mem::zeroed() };
    // SAFETY: `set` is a valid, initialised sigset_t that outlives the call.
    unsafe { syscall!(sigemptyset(&mut set)) }?;
    for &signal in signals {
        // SAFETY: `set` is initialised; `signal` is a valid signal number.
        unsafe { syscall!(sigaddset(&mut set, signal)) }?;
    }
    // SAFETY: `set` is an initialised sigset_t that outlives the call; the old mask is not
    // wanted, so a null pointer is allowed.
    unsafe { syscall!(sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())) }?;
    Ok(set)
}

/// Puts SIGCHLD back to its default action. A daemon started with SIGCHLD ignored (a parent
/// that ignored it passes that on across `exec`) would have its children reaped by the
/// kernel, and waiting for a hook command would fail with `ECHILD` even when the command
/// succeeded.
///
/// # Errors
///
/// What `sigaction(2)` returned.
pub fn default_child_signal() -> io::Result<()> {
    // SAFETY: sigaction is plain data; all zeroes with SIG_DFL (0) as the handler is the
    // default action with an empty mask and no flags.
    let mut action: libc::sigaction = unsafe { mem::zeroed() };
    action.sa_sigaction = libc::SIG_DFL;
    // SAFETY: `action` is an initialised sigaction that outlives the call; the old action is
    // not wanted, so a null pointer is allowed.
    unsafe { syscall!(sigaction(libc::SIGCHLD, &action, std::ptr::null_mut())) }.map(|_| ())
}

/// Sends SIGKILL to every process in the process group `pgid`: a child started as the leader
/// of a group of its own (`CommandExt::process_group(0)`, so the group's id is the child's
/// PID), and whatever it started that is still in the group. Killing only the child would
/// leave those running, orphaned, and still holding the daemon's stdout and stderr.
///
/// # Errors
///
/// `InvalidInput` for a `pgid` of 0 or 1 or one that is not a PID (it would name our own
/// group, or every process); `ESRCH` if the group is empty.
pub fn kill_process_group(pgid: u32) -> io::Result<()> {
    let pgid = libc::pid_t::try_from(pgid)
        .ok()
        .filter(|&p| p > 1)
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; a negative PID names
    // the process group, and `pgid` > 1 rules out our own group (0) and every process (-1).
    unsafe { syscall!(kill(-pgid, libc::SIGKILL)) }.map(|_| ())
}

/// A signal ethcloud handles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT (Ctrl-C): shut down cleanly.
    Interrupt,
    /// SIGTERM: shut down cleanly.
    Terminate,
    /// SIGUSR1: log the counters.
    User1,
    /// SIGHUP: re-read the key file (keyed mode) or the trust files (per-node keys), and
    /// the node's own addresses.
    Hangup,
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::User1 => "SIGUSR1",
            Signal::Hangup => "SIGHUP",
        })
    }
}

impl Signal {
    fn from_number(number: u32) -> Option<Signal> {
        let number = libc::c_int::try_from(number).ok()?;
        match number {
            libc::SIGINT => Some(Signal::Interrupt),
            libc::SIGTERM => Some(Signal::Terminate),
            libc::SIGUSR1 => Some(Signal::User1),
            libc::SIGHUP => Some(Signal::Hangup),
            _ => None,
        }
    }
}

/// A non-blocking signalfd for SIGINT, SIGTERM, SIGUSR1 and SIGHUP.
#[derive(Debug)]
pub struct SignalFd {
    /// The signalfd (holds the `OwnedFd`); `File` gives us `read`.
    file: File,
}

const SIGINFO_LEN: usize = mem::size_of::<libc::signalfd_siginfo>();

impl SignalFd {
    /// Blocks SIGINT, SIGTERM, SIGUSR1 and SIGHUP for the calling thread (with `sigprocmask`) and
    /// returns a signalfd that reports them. Call it before any other thread is started, so
    /// that threads inherit the mask.
    ///
    /// # Errors
    ///
    /// The OS error of `sigprocmask` or `signalfd`.
    pub fn new() -> io::Result<SignalFd> {
        let set = block(&[libc::SIGINT, libc::SIGTERM, libc::SIGUSR1, libc::SIGHUP])?;
        // SAFETY: -1 asks for a new fd; `set` is initialised and only read.
        let raw = unsafe { syscall!(signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC)) }?;
        // SAFETY: `raw` was just returned by signalfd(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(SignalFd {
            file: File::from(fd),
        })
    }

    /// Whether SIGINT or SIGTERM is pending (blocked and not read yet), without taking it
    /// or any other: start-up checks this between its slow steps (names to resolve, the
    /// `--ifup` hook), so that a stop asked for meanwhile is not kept waiting for the rest.
    ///
    /// # Errors
    ///
    /// The OS error of `sigpending`.
    pub fn stop_pending(&self) -> io::Result<bool> {
        // Zeroed first: sigpending() writes only the bytes of the signals the kernel has (8),
        // not the whole of libc's 128-byte sigset_t.
        // SAFETY: sigset_t is plain integers, for which all zeroes is a valid value (the
        // empty set).
        let mut set: libc::sigset_t = unsafe { mem::zeroed() };
        // SAFETY: `set` is a valid, initialised sigset_t that outlives the call.
        unsafe { syscall!(sigpending(&mut set)) }?;
        let mut stop = false;
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: `set` is an initialised sigset_t that is only read; `signal` is valid.
            stop |= unsafe { syscall!(sigismember(&set, signal)) }? == 1;
        }
        Ok(stop)
    }

    /// The next pending signal, or `None` when none is pending.
    ///
    /// # Errors
    ///
    /// The OS error of `read`, other than `EAGAIN`.
    pub fn read(&mut self) -> io::Result<Option<Signal>> {
        let mut info = [0u8; SIGINFO_LEN];
        loop {
            match self.file.read(&mut info) {
                Ok(len) if len == SIGINFO_LEN => {
                    // `ssi_signo` is the first field, a native-endian u32.
                    let mut signo = [0u8; 4];
                    signo.copy_from_slice(info.get(..4).unwrap_or(&[0; 4]));
                    match Signal::from_number(u32::from_ne_bytes(signo)) {
                        Some(signal) => return Ok(Some(signal)),
                        None => continue,
                    }
                }
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "short read from signalfd",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for SignalFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (On a thread of its own: the mask is per thread.)
    #[test]
    fn sighup_and_sigusr1_are_blocked_early_and_sigint_is_not() {
        std::thread::spawn(|| {
            block_reload_and_status().unwrap();
            // SAFETY: sigset_t is plain integers, for which all zeroes is a valid value.
            let mut now: libc::sigset_t = unsafe { mem::zeroed() };
            // SAFETY: with a null new set, pthread_sigmask only writes the calling thread's
            // mask into `now`, which outlives the call.
            let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut now) };
            assert_eq!(rc, 0);
            // SAFETY: `now` is an initialised sigset_t; sigismember only reads it.
            let blocked = |s| unsafe { libc::sigismember(&now, s) } == 1;
            assert!(blocked(libc::SIGHUP) && blocked(libc::SIGUSR1));
            assert!(!blocked(libc::SIGINT) && !blocked(libc::SIGTERM));
        })
        .join()
        .unwrap();
        // The binary does it before it reads its settings.
        let main = include_str!("../../main.rs");
        let block = main.find("block_reload_and_status()").unwrap();
        let check = main.find("args.check()").unwrap();
        assert!(block < check, "main blocks them only after args.check()");
    }

    #[test]
    fn signalfd_reports_a_raised_sigusr1_instead_of_dying() {
        // The test harness runs each test on its own thread; the mask is per thread, and
        // raise() sends to the calling thread, so this stays inside this test.
        let mut signals = SignalFd::new().unwrap();
        assert_eq!(signals.read().unwrap(), None);
        // SAFETY: raise() takes a signal number; SIGUSR1 is blocked on this thread above.
        let rc = unsafe { libc::raise(libc::SIGUSR1) };
        assert_eq!(rc, 0);
        assert_eq!(signals.read().unwrap(), Some(Signal::User1));
        assert_eq!(signals.read().unwrap(), None);
        // SAFETY: as above; SIGHUP (whose default action is to terminate) is blocked too.
        let rc = unsafe { libc::raise(libc::SIGHUP) };
        assert_eq!(rc, 0);
        assert_eq!(signals.read().unwrap(), Some(Signal::Hangup));
    }
}
