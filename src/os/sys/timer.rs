//! [`Timer`]: a one-shot timerfd on `CLOCK_BOOTTIME`, armed relative to now; and
//! [`boottime`], a reading of that clock.
//!
//! Owns the timerfd and the clock reading only. `CLOCK_BOOTTIME` counts the time the machine
//! was suspended, where `CLOCK_MONOTONIC` (std's `Instant`) stops: the node's timers are
//! about the world outside (a peer's session ends on the peer's clock), so they must count it. The daemon arms it for the node's next deadline and puts it in its
//! epoll set; nothing here knows what the deadline is for.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// A non-blocking one-shot timerfd.
#[derive(Debug)]
pub struct Timer {
    /// The timerfd (holds the `OwnedFd`); `File` gives us `read`.
    file: File,
}

impl Timer {
    /// Creates a disarmed timer (`timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC)`).
    ///
    /// # Errors
    ///
    /// The OS error of `timerfd_create`.
    pub fn new() -> io::Result<Timer> {
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        // SAFETY: timerfd_create() takes plain integers and returns a new fd or -1.
        let raw = unsafe { syscall!(timerfd_create(libc::CLOCK_BOOTTIME, flags)) }?;
        // SAFETY: `raw` was just returned by timerfd_create(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Timer {
            file: File::from(fd),
        })
    }

    /// Arms the timer to fire once, `after` from now; replaces any earlier setting. A zero
    /// duration is raised to one nanosecond (zero would disarm the timer instead).
    ///
    /// # Errors
    ///
    /// The OS error of `timerfd_settime`.
    pub fn arm(&mut self, after: Duration) -> io::Result<()> {
        let after = after.max(Duration::from_nanos(1));
        // `c_long` is `i32` on 32-bit targets, so the conversion is fallible there.
        #[allow(clippy::unnecessary_fallible_conversions)]
        let nanos = libc::c_long::try_from(after.subsec_nanos()).unwrap_or(0);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(after.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: nanos,
            },
        };
        // SAFETY: the timerfd is open; `spec` is an initialised itimerspec that outlives the
        // call; the old value is not wanted, so a null pointer is allowed.
        unsafe {
            syscall!(timerfd_settime(
                self.file.as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut()
            ))
        }?;
        Ok(())
    }

    /// Clears the "fired" state so level-triggered epoll stops reporting the timer.
    /// Returns whether the timer had fired.
    ///
    /// # Errors
    ///
    /// The OS error of `read`, other than `EAGAIN`.
    pub fn clear(&mut self) -> io::Result<bool> {
        super::wake::take_count(&self.file)
    }
}

/// The time since the machine booted, suspended time included (`CLOCK_BOOTTIME`); zero should
/// the clock fail (it does not on Linux since 2.6.39: the caller then counts without it).
pub fn boottime() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is an initialised timespec that outlives the call, which only writes it.
    if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos.min(999_999_999))
}

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::epoll::Poll;

    /// The timer counts suspended time: the kernel says which clock a timerfd is on.
    #[test]
    fn the_timer_is_on_the_clock_that_counts_suspended_time() {
        let timer = Timer::new().unwrap();
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", timer.file.as_raw_fd()))
            .unwrap();
        let clock = info
            .lines()
            .find_map(|l| l.strip_prefix("clockid:"))
            .map(str::trim);
        assert_eq!(clock, Some("7"), "CLOCK_BOOTTIME is 7:\n{info}");
    }

    #[test]
    fn boottime_runs_with_the_monotonic_clock_when_nothing_sleeps() {
        let (boot, mono) = (boottime(), std::time::Instant::now());
        assert!(boot > Duration::ZERO);
        std::thread::sleep(Duration::from_millis(20));
        let (boot_gap, mono_gap) = (boottime() - boot, mono.elapsed());
        assert!(boot_gap >= Duration::from_millis(20), "{boot_gap:?}");
        // Read in the order boot, then monotonic: the gap of boottime is the smaller one,
        // give or take the reads themselves.
        assert!(
            boot_gap <= mono_gap + Duration::from_millis(5),
            "{boot_gap:?} {mono_gap:?}"
        );
    }

    #[test]
    fn timer_fires_once_after_its_duration() {
        let mut timer = Timer::new().unwrap();
        let mut poll = Poll::new().unwrap();
        poll.register(timer.as_fd(), 7).unwrap();
        assert!(!timer.clear().unwrap());

        let start = std::time::Instant::now();
        timer.arm(Duration::from_millis(20)).unwrap();
        // (A wait that a signal interrupts returns no token, as the daemon's loop expects;
        // the test binary's other tests raise signals now and then. Waited on again.)
        let mut tokens: Vec<u64> = Vec::new();
        for _ in 0..100 {
            let left = Duration::from_secs(5).saturating_sub(start.elapsed());
            tokens = poll.wait(Some(left)).unwrap().collect();
            if !tokens.is_empty() || left.is_zero() {
                break;
            }
        }
        assert_eq!(tokens, [7]);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(timer.clear().unwrap());
        assert_eq!(
            poll.wait(Some(Duration::from_millis(30))).unwrap().count(),
            0
        );
    }
}
