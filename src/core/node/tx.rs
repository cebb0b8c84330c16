//! The send side of a [`Node`]: the socket, wrapped in [`Tx`] so that every datagram sent is
//! counted and each kind of failure is warned about once (per lane; by the node once per
//! [`WARN_AGAIN_AFTER`](super::WARN_AGAIN_AFTER)), and [`Node::flush`], which sends what
//! the socket queued and writes what the device held back.
//!
//! It decides nothing about what is sent or to whom, and never seals: callers hand it finished
//! datagrams.

use std::io;
use std::net::SocketAddr;

use log::{debug, warn};

use super::{Node, WARN_AGAIN_AFTER};
use crate::io::{Device, Socket};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;

/// Send side: the socket plus which kinds of failure were already logged at warn. Shared by
/// the node and the `--threads` lanes ([`crate::lane`]).
pub(crate) struct Tx<S> {
    pub(crate) socket: S,
    pub(crate) warned: u8,
    /// When `warned` is cleared again ([`WARN_AGAIN_AFTER`]).
    warn_again_at: Instant,
}

/// How the warnings' lines name [`WARN_AGAIN_AFTER`].
pub(super) const WARN_AGAIN_TEXT: &str = "for up to 10 minutes";
const _: () = assert!(WARN_AGAIN_AFTER.as_secs() == 600);

impl<S> Tx<S> {
    /// Wraps `socket`, at `now`.
    pub(crate) fn new(socket: S, now: Instant) -> Tx<S> {
        Tx {
            socket,
            warned: 0,
            warn_again_at: now + WARN_AGAIN_AFTER,
        }
    }

    /// Arms the warnings again if [`WARN_AGAIN_AFTER`] passed since they last were; returns
    /// whether it did (the node arms its device's warning with them).
    pub(crate) fn warn_again_if_due(&mut self, now: Instant) -> bool {
        if now < self.warn_again_at {
            return false;
        }
        self.warn_again_at = now + WARN_AGAIN_AFTER;
        self.warned = 0;
        true
    }
}

impl<S: Socket> Tx<S> {
    /// Sends one datagram; counts success or failure; warns once per kind of failure.
    /// Returns whether the socket took it.
    pub(crate) fn send(
        &mut self,
        stats: &mut Stats,
        to: SocketAddr,
        datagram: &[u8],
        is_control: bool,
    ) -> bool {
        let sent = if is_control {
            self.socket.send_control_to(datagram, to)
        } else {
            self.socket.send_to(datagram, to)
        };
        match sent {
            Ok(()) => {
                stats.datagrams_sent += 1;
                stats.bytes_sent += datagram.len() as u64;
                if is_control {
                    stats.control_sent += 1;
                    stats.control_bytes_sent += datagram.len() as u64;
                }
                true
            }
            Err(e) => {
                if e.kind() == io::ErrorKind::WouldBlock {
                    stats.send_would_block += 1;
                } else {
                    stats.send_errors += 1;
                }
                let bit = error_bit(e.kind());
                if self.warned & bit == 0 {
                    self.warned |= bit;
                    warn!("sending to {to} failed: {e} (counted; further failures of this kind are logged at debug {WARN_AGAIN_TEXT})");
                } else {
                    debug!("sending to {to} failed: {e}");
                }
                false
            }
        }
    }
}

impl<S: Socket> Tx<S> {
    /// Sends what the socket queued ([`Socket::flush`]); failures are moved from the sent
    /// counters to the failure counters and warned about once per kind, and
    /// `uncount(peer, datagrams, bytes)` takes back what each peer was counted
    /// ([`Socket::drain_failed`]).
    // HOT PATH
    pub(crate) fn flush(
        &mut self,
        stats: &mut Stats,
        mut uncount: impl FnMut(SocketAddr, u64, u64),
    ) {
        if let Err(e) = self.socket.flush() {
            self.socket.drain_failed(&mut uncount);
            stats.datagrams_sent = stats.datagrams_sent.saturating_sub(e.dropped);
            stats.bytes_sent = stats.bytes_sent.saturating_sub(e.dropped_bytes);
            let would_block = e.would_block.min(e.dropped);
            stats.send_would_block += would_block;
            stats.send_errors += e.dropped - would_block;
            let bit = error_bit(e.error.kind());
            if self.warned & bit == 0 {
                self.warned |= bit;
                warn!(
                    "sending {} queued datagrams failed: {} (counted; further failures of this kind are logged at debug {WARN_AGAIN_TEXT})",
                    e.dropped, e.error
                );
            } else {
                debug!("sending {} queued datagrams failed: {}", e.dropped, e.error);
            }
        }
    }
}

fn error_bit(kind: io::ErrorKind) -> u8 {
    match kind {
        io::ErrorKind::WouldBlock => 1,
        io::ErrorKind::ConnectionRefused => 2,
        io::ErrorKind::PermissionDenied => 4,
        io::ErrorKind::NetworkUnreachable | io::ErrorKind::HostUnreachable => 8,
        io::ErrorKind::InvalidInput | io::ErrorKind::AddrNotAvailable => 16,
        _ => 32,
    }
}

impl<S: Socket, D: Device> Node<S, D> {
    /// Sends the datagrams the socket queued and writes the frames the device held back
    /// ([`Socket::flush`], [`Device::flush`]). Call it after each batch of input, before
    /// waiting for more, so that nothing is held longer than one batch and a lone frame goes
    /// out at once. Failures are counted like those of single sends and writes (the queued
    /// datagrams were counted as sent when queued, and are moved to the failure counters).
    // HOT PATH
    pub fn flush(&mut self) {
        let peers = &mut self.peers;
        self.tx.flush(&mut self.stats, |peer, datagrams, bytes| {
            peers.uncount_sent(peer, datagrams, bytes);
        });
        if let Err(e) = self.device.flush() {
            self.stats.frames_to_device = self.stats.frames_to_device.saturating_sub(e.dropped);
            for _ in 0..e.dropped {
                self.stats.count_drop(DropReason::DeviceWrite);
            }
            if !self.device_warned {
                self.device_warned = true;
                warn!("writing held frames to the device failed: {} (counted as drops; further failures are logged at debug {WARN_AGAIN_TEXT})", e.error);
            } else {
                debug!(
                    "writing {} held frames to the device failed: {}",
                    e.dropped, e.error
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FlushError;

    /// A socket whose flush fails the way it is told to.
    struct Failing(Option<FlushError>);

    impl Socket for Failing {
        fn send_to(&mut self, _: &[u8], _: SocketAddr) -> io::Result<()> {
            Ok(())
        }
        fn flush(&mut self) -> Result<(), FlushError> {
            self.0.take().map_or(Ok(()), Err)
        }
    }

    #[test]
    fn a_flush_files_each_failed_datagram_under_its_own_kind() {
        // Five queued datagrams failed: the first for a full buffer, as one more did, and
        // three as refused.
        let mut tx = Tx {
            socket: Failing(Some(FlushError {
                dropped: 5,
                would_block: 2,
                dropped_bytes: 500,
                error: io::ErrorKind::WouldBlock.into(),
            })),
            warned: 0,
            warn_again_at: Instant::ZERO,
        };
        let mut stats = Stats {
            datagrams_sent: 5,
            bytes_sent: 500,
            ..Stats::default()
        };
        tx.flush(&mut stats, |_, _, _| {});
        assert_eq!((stats.datagrams_sent, stats.bytes_sent), (0, 0));
        assert_eq!((stats.send_would_block, stats.send_errors), (2, 3));
    }
}
