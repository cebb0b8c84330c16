//! [`Wake`]: an eventfd that one thread sets and another thread's epoll sees, so that a
//! `--threads` lane can wake the loop when it has something for it that should not wait for
//! the loop's next regular wake-up (up to a second when it is idle).
//!
//! Owns the eventfd only. It carries no data: a set flag means "look at what was handed
//! over", and the reader clears it before looking.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};

/// A non-blocking eventfd used as a flag between threads.
#[derive(Debug)]
pub struct Wake {
    /// The eventfd (holds the `OwnedFd`); `File` gives us `read` and `write`.
    file: File,
}

impl Wake {
    /// Creates a cleared flag (`eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)`).
    ///
    /// # Errors
    ///
    /// The OS error of `eventfd`, e.g. `EMFILE`.
    pub fn new() -> io::Result<Wake> {
        let flags = libc::EFD_NONBLOCK | libc::EFD_CLOEXEC;
        // SAFETY: eventfd() takes plain integers and returns a new fd or -1.
        let raw = unsafe { syscall!(eventfd(0, flags)) }?;
        // SAFETY: `raw` was just returned by eventfd(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Wake {
            file: File::from(fd),
        })
    }

    /// Sets the flag: the fd becomes readable until [`Wake::clear`]. Never blocks; setting a
    /// flag that is already set does nothing more (a counter that would overflow only after
    /// 2^64 - 2 sets without a clear).
    pub fn set(&self) {
        // A full counter (EAGAIN) is already set; nothing else can fail on an open eventfd.
        let _ = (&self.file).write(&1u64.to_ne_bytes());
    }

    /// Clears the flag; returns whether it was set.
    ///
    /// # Errors
    ///
    /// The OS error of `read`, other than `EAGAIN`.
    pub fn clear(&self) -> io::Result<bool> {
        take_count(&self.file)
    }
}

/// Reads (and so resets) the 8-byte count of a non-blocking eventfd or timerfd; returns
/// whether it was set. Shared with [`Timer::clear`](super::timer::Timer::clear).
///
/// # Errors
///
/// The OS error of `read`, other than `EAGAIN`.
pub(super) fn take_count(mut file: &File) -> io::Result<bool> {
    let mut count = [0u8; 8];
    match file.read(&mut count) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

impl AsFd for Wake {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::sys::epoll::Poll;

    #[test]
    fn a_flag_set_on_another_thread_wakes_an_epoll_wait_until_cleared() {
        let wake = Arc::new(Wake::new().expect("an eventfd"));
        let mut poll = Poll::new().expect("epoll");
        poll.register(wake.as_fd(), 9).expect("registered");
        // Nothing set: nothing to report.
        assert_eq!(poll.wait(Some(Duration::ZERO)).expect("wait").count(), 0);
        assert!(!wake.clear().expect("clear"));
        let setter = Arc::clone(&wake);
        let thread = std::thread::spawn(move || {
            setter.set();
            setter.set();
        });
        // Woken well before the timeout (a failure would wait the whole 10 s, then fail).
        let tokens: Vec<u64> = poll
            .wait(Some(Duration::from_secs(10)))
            .expect("wait")
            .collect();
        assert_eq!(tokens, [9]);
        thread.join().expect("the setter ran");
        // Two sets, one clear: the flag is down again.
        assert!(wake.clear().expect("clear"));
        assert!(!wake.clear().expect("clear"));
        assert_eq!(poll.wait(Some(Duration::ZERO)).expect("wait").count(), 0);
    }
}
