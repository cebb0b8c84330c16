//! [`Poll`]: a level-triggered epoll instance over a handful of fds.
//!
//! Owns the epoll fd and a fixed array of events (no allocation per wait). Each registered fd
//! is named by a caller-chosen `u64` token, stored in the event instead of the fd. It does not
//! read from the fds: level-triggered readiness means a caller may drain a bounded number of
//! packets per wake-up and will simply be woken again for the rest.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// The most events one [`Poll::wait`] reports.
pub const MAX_EVENTS: usize = 16;

/// An epoll instance plus the buffer its events land in.
pub struct Poll {
    fd: OwnedFd,
    events: [libc::epoll_event; MAX_EVENTS],
    ready: usize,
}

impl std::fmt::Debug for Poll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poll").field("fd", &self.fd).finish()
    }
}

impl Poll {
    /// Creates an epoll instance (`epoll_create1(EPOLL_CLOEXEC)`).
    ///
    /// # Errors
    ///
    /// The OS error, e.g. `EMFILE`.
    pub fn new() -> io::Result<Poll> {
        // SAFETY: epoll_create1() takes a flag and returns a new fd or -1.
        let raw = unsafe { syscall!(epoll_create1(libc::EPOLL_CLOEXEC)) }?;
        // SAFETY: `raw` was just returned by epoll_create1(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(Poll {
            fd,
            events: [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS],
            ready: 0,
        })
    }

    /// Watches `fd` for readability (level-triggered); its events carry `token`.
    ///
    /// The caller must keep `fd` open while it is registered (closing an fd removes it from
    /// epoll, so a closed fd can only stop producing events, never corrupt memory).
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl`, e.g. `EEXIST` if `fd` is already registered.
    pub fn register(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, token, libc::EPOLLIN)
    }

    /// Watches the registered `fd` for room to write instead of for input (level-triggered),
    /// under `token`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl`, e.g. `ENOENT` if `fd` is not registered.
    pub fn watch_writable(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, libc::EPOLLOUT)
    }

    /// Stops watching the registered `fd` for anything but errors (it stays registered, under
    /// `token`), until [`Poll::watch_readable`].
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl`, e.g. `ENOENT` if `fd` is not registered.
    pub fn mute(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, 0)
    }

    /// Watches the registered `fd` for readability again (level-triggered), under `token`.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_ctl`, e.g. `ENOENT` if `fd` is not registered.
    pub fn watch_readable(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, fd, token, libc::EPOLLIN)
    }

    fn control(
        &self,
        op: libc::c_int,
        fd: BorrowedFd<'_>,
        token: u64,
        events: libc::c_int,
    ) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: events as u32,
            u64: token,
        };
        let event_ptr: *mut libc::epoll_event = &mut event;
        // SAFETY: both fds are open for the call; `event_ptr` points to a live, initialised
        // `epoll_event` that the kernel only reads.
        unsafe {
            syscall!(epoll_ctl(
                self.fd.as_raw_fd(),
                op,
                fd.as_raw_fd(),
                event_ptr
            ))
        }?;
        Ok(())
    }

    /// Waits until a registered fd is ready or `timeout` passes (`None`: no time limit), and
    /// returns the tokens of the ready fds. An interrupted wait (`EINTR`) returns no tokens.
    ///
    /// # Errors
    ///
    /// The OS error of `epoll_wait` other than `EINTR`.
    pub fn wait(&mut self, timeout: Option<Duration>) -> io::Result<Tokens<'_>> {
        let timeout_ms = match timeout {
            None => -1,
            Some(d) => {
                // Round up, so a wait never ends before its deadline.
                let ms = d.as_nanos().div_ceil(1_000_000);
                libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
            }
        };
        let max = libc::c_int::try_from(self.events.len()).unwrap_or(1);
        let events_ptr = self.events.as_mut_ptr();
        // SAFETY: the epoll fd is open; `events_ptr` points to `self.events`, which has room
        // for `max` == MAX_EVENTS events and is borrowed mutably for the call.
        let waited =
            unsafe { syscall!(epoll_wait(self.fd.as_raw_fd(), events_ptr, max, timeout_ms)) };
        self.ready = match waited {
            Ok(n) => usize::try_from(n).unwrap_or(0).min(MAX_EVENTS),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(e),
        };
        Ok(Tokens {
            events: self.events.get(..self.ready).unwrap_or_default().iter(),
        })
    }
}

/// The tokens of the fds found ready by one [`Poll::wait`].
#[derive(Debug)]
pub struct Tokens<'a> {
    events: std::slice::Iter<'a, libc::epoll_event>,
}

impl Iterator for Tokens<'_> {
    type Item = u64;

    fn next(&mut self) -> Option<u64> {
        // Copy the field out: `epoll_event` is packed on x86_64, so no reference to it.
        self.events.next().map(|event| event.u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn poll_reports_the_token_of_a_readable_socket_until_drained() {
        let a = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut poll = Poll::new().unwrap();
        poll.register(b.as_fd(), 42).unwrap();

        let timeout = Some(Duration::from_millis(10));
        assert_eq!(poll.wait(timeout).unwrap().count(), 0);

        a.send_to(b"x", b.local_addr().unwrap()).unwrap();
        let tokens: Vec<u64> = poll.wait(Some(Duration::from_secs(5))).unwrap().collect();
        assert_eq!(tokens, [42]);
        // Level-triggered: still ready until read.
        let tokens: Vec<u64> = poll.wait(timeout).unwrap().collect();
        assert_eq!(tokens, [42]);
        b.recv_from(&mut [0u8; 4]).unwrap();
        assert_eq!(poll.wait(timeout).unwrap().count(), 0);
    }
}
