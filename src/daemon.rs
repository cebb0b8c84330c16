//! The event loop: one thread, one epoll set over the tap device, the UDP socket, a timerfd and
//! a signalfd, driving a [`Node`].
//!
//! Owns the real clock (the only module that reads `std::time::Instant`), the packet buffer
//! (allocated once), the per-wake-up budget, and what signals mean: SIGINT/SIGTERM shut down
//! cleanly (the node sends `Close` to every peer), SIGUSR1 logs the counters. It does not touch
//! packet contents: every frame and datagram goes to the node, which counts and logs drops.

use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

use log::{debug, info, warn};

use crate::buf::PacketBuf;
use crate::error::Error;
use crate::node::{Config, Node};
use crate::sys::epoll::Poll;
use crate::sys::signal::{Signal, SignalFd};
use crate::sys::tap::TapDevice;
use crate::sys::timer::Timer;
use crate::sys::udp::UdpSocket;
use crate::time::Instant;

/// Packets read from one fd per wake-up at most, so one busy fd cannot starve the others
/// (the fd stays ready, so level-triggered epoll wakes us again for the rest).
pub const BUDGET: usize = 64;

/// The longest the loop sleeps, whatever the node's deadline (a safety net; the node's own
/// deadline is never more than about a second away).
pub const MAX_SLEEP: Duration = Duration::from_secs(1);

const TOKEN_DEVICE: u64 = 0;
const TOKEN_SOCKET: u64 = 1;
const TOKEN_TIMER: u64 = 2;
const TOKEN_SIGNAL: u64 = 3;

/// The monotonic clock, as the core sees it: milliseconds since the daemon started.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
}

impl Clock {
    /// Starts the clock at zero.
    pub fn start() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }

    /// Milliseconds since [`Clock::start`].
    pub fn now(&self) -> Instant {
        let millis = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        Instant::from_millis(millis)
    }
}

/// Why the loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// SIGINT or SIGTERM arrived; `Close` was sent to every peer.
    Signal,
}

/// Counters of the loop itself (the node keeps its own [`crate::stats::Stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Receive errors on the UDP socket that were ignored (ICMP errors such as `ECONNREFUSED`).
    pub socket_errors: u64,
}

/// Builds a [`Node`] over `socket` and `device` and runs it until `signals` reports SIGINT or
/// SIGTERM. Create `signals` as early as possible (it blocks the signals), so that a signal
/// sent during start-up is handled here instead of killing the process.
///
/// # Errors
///
/// [`Error::Epoll`], [`Error::Signal`] or [`Error::Timer`] if the loop cannot be set up or
/// waited on; [`Error::DeviceRead`] if the tap device fails for good (e.g. it was deleted);
/// [`Error::SocketRecv`] if the socket fails with anything but a transient or ICMP error.
pub fn run(
    config: Config,
    socket: UdpSocket,
    device: TapDevice,
    signals: SignalFd,
) -> Result<Exit, Error> {
    let timer = Timer::new().map_err(Error::Timer)?;
    let poll = Poll::new().map_err(Error::Epoll)?;
    poll.register(device.as_fd(), TOKEN_DEVICE)
        .and_then(|()| poll.register(socket.as_fd(), TOKEN_SOCKET))
        .and_then(|()| poll.register(timer.as_fd(), TOKEN_TIMER))
        .and_then(|()| poll.register(signals.as_fd(), TOKEN_SIGNAL))
        .map_err(Error::Epoll)?;

    let clock = Clock::start();
    let node = Node::new(config, socket, device, clock.now());
    Daemon {
        node,
        poll,
        timer,
        signals,
        clock,
        buf: PacketBuf::new(),
        stats: LoopStats::default(),
        armed_for: None,
    }
    .run()
}

/// Everything the loop owns.
struct Daemon {
    node: Node<UdpSocket, TapDevice>,
    poll: Poll,
    timer: Timer,
    signals: SignalFd,
    clock: Clock,
    buf: PacketBuf,
    stats: LoopStats,
    /// When the timer is set to fire, if it is armed.
    armed_for: Option<Instant>,
}

impl Daemon {
    fn run(mut self) -> Result<Exit, Error> {
        let mut ready = [false; 4];
        loop {
            let now = self.clock.now();
            // Re-arm only when the timer would fire too late (or already fired): saves a
            // syscall per wake-up under load. Firing early is harmless.
            let target = self.node.next_deadline().min(now + MAX_SLEEP);
            if self
                .armed_for
                .map_or(true, |armed| target < armed || armed <= now)
            {
                let sleep = target.saturating_duration_since(now);
                self.timer.arm(sleep).map_err(Error::Timer)?;
                self.armed_for = Some(target);
            }

            ready.fill(false);
            for token in self.poll.wait(None).map_err(Error::Epoll)? {
                if let Some(flag) = usize::try_from(token).ok().and_then(|i| ready.get_mut(i)) {
                    *flag = true;
                }
            }
            let [device, socket, timer, signal] = ready;

            let now = self.clock.now();
            if signal {
                if let Some(exit) = self.on_signals(now)? {
                    return Ok(exit);
                }
            }
            if socket {
                self.drain_socket(now)?;
            }
            if device {
                self.drain_device(now)?;
            }
            if timer {
                self.timer.clear().map_err(Error::Timer)?;
            }
            if now >= self.node.next_deadline() {
                self.node.housekeep(now);
            }
        }
    }

    /// Handles every pending signal; `Some` when the loop must end.
    fn on_signals(&mut self, now: Instant) -> Result<Option<Exit>, Error> {
        while let Some(signal) = self.signals.read().map_err(Error::Signal)? {
            match signal {
                Signal::Interrupt | Signal::Terminate => {
                    info!("shutting down ({signal})");
                    self.node.shutdown(now);
                    return Ok(Some(Exit::Signal));
                }
                Signal::User1 => info!(
                    "stats: peers={} {} socket_errors={}",
                    self.node.peer_count(),
                    self.node.stats(),
                    self.stats.socket_errors
                ),
            }
        }
        Ok(None)
    }

    /// Reads up to [`BUDGET`] datagrams and hands each to the node.
    // HOT PATH
    fn drain_socket(&mut self, now: Instant) -> Result<(), Error> {
        for _ in 0..BUDGET {
            match self.node.socket_mut().recv_from(self.buf.datagram_room()) {
                Ok((len, from)) => {
                    // A drop is counted and logged by the node itself.
                    let _ = self.node.on_datagram(now, from, self.buf.datagram(len));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_icmp_error(&e) => {
                    self.stats.socket_errors = self.stats.socket_errors.saturating_add(1);
                    debug!("ignored UDP receive error: {e}");
                }
                Err(e) if is_transient(&e) => {
                    warn!("UDP receive failed, retrying later: {e}");
                    break;
                }
                Err(e) => return Err(Error::SocketRecv(e)),
            }
        }
        Ok(())
    }

    /// Reads up to [`BUDGET`] frames from the tap device and hands each to the node.
    // HOT PATH
    fn drain_device(&mut self, now: Instant) -> Result<(), Error> {
        for _ in 0..BUDGET {
            match self.node.device_mut().read(self.buf.frame_room()) {
                Ok(len) => {
                    // A drop is counted and logged by the node itself.
                    let _ = self.node.on_frame(now, &mut self.buf, len);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient(&e) => {
                    warn!("tap read failed, retrying later: {e}");
                    break;
                }
                Err(source) => {
                    return Err(Error::DeviceRead {
                        name: self.node.device_mut().name().to_owned(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }
}

/// Errors a UDP socket reports because of an ICMP message about an earlier send: they say
/// nothing about the socket itself, so the loop goes on.
fn is_icmp_error(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNREFUSED
                | libc::ECONNRESET
                | libc::EHOSTUNREACH
                | libc::ENETUNREACH
                | libc::EHOSTDOWN
                | libc::ENETDOWN
                | libc::EPROTO
                | libc::EMSGSIZE
                | libc::ETIMEDOUT
        )
    )
}

/// Errors that may go away by themselves (memory pressure).
fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOMEM | libc::ENOBUFS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_starts_near_zero_and_never_goes_back() {
        let clock = Clock::start();
        let a = clock.now();
        let b = clock.now();
        assert!(a.as_millis() < 1000);
        assert!(b >= a);
    }

    #[test]
    fn icmp_errors_are_not_fatal_but_bad_fd_is() {
        assert!(is_icmp_error(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_icmp_error(&io::Error::from_raw_os_error(libc::EBADF)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EBADF)));
    }
}
