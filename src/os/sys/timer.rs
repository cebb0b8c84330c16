//! [`Timer`]: a one-shot timerfd on `CLOCK_MONOTONIC`, armed relative to now.
//!
//! Owns the timerfd only. The daemon arms it for the node's next deadline and puts it in its
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
    /// Creates a disarmed timer (`timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`).
    ///
    /// # Errors
    ///
    /// The OS error of `timerfd_create`.
    pub fn new() -> io::Result<Timer> {
        let flags = libc::TFD_NONBLOCK | libc::TFD_CLOEXEC;
        // SAFETY: timerfd_create() takes plain integers and returns a new fd or -1.
        let raw = unsafe { syscall!(timerfd_create(libc::CLOCK_MONOTONIC, flags)) }?;
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

impl AsFd for Timer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::epoll::Poll;

    #[test]
    fn timer_fires_once_after_its_duration() {
        let mut timer = Timer::new().unwrap();
        let mut poll = Poll::new().unwrap();
        poll.register(timer.as_fd(), 7).unwrap();
        assert!(!timer.clear().unwrap());

        let start = std::time::Instant::now();
        timer.arm(Duration::from_millis(20)).unwrap();
        let tokens: Vec<u64> = poll.wait(Some(Duration::from_secs(5))).unwrap().collect();
        assert_eq!(tokens, [7]);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert!(timer.clear().unwrap());
        assert_eq!(
            poll.wait(Some(Duration::from_millis(30))).unwrap().count(),
            0
        );
    }
}
