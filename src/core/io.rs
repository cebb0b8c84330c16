//! The seams between the pure core and the operating system: [`Socket`] and [`Device`].
//!
//! Owns the two traits only. Real implementations live in `sys` (UDP socket, tap device);
//! test doubles live in the tests. Nothing in this module performs I/O itself.

use std::io;
use std::net::SocketAddr;

/// Where the core sends datagrams to peers.
///
/// Implementations must not block: a full send buffer is reported as
/// [`io::ErrorKind::WouldBlock`], which the core counts as a drop.
pub trait Socket {
    /// Sends one datagram to `to`, or queues it (copied) until [`Socket::flush`]: an
    /// implementation may batch datagrams into one system call.
    ///
    /// # Errors
    ///
    /// Any OS error; the core counts it and never retries.
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()>;

    /// Sends one control message (any datagram but a frame, relayed frames included in the
    /// frames) to `to`, as [`Socket::send_to`] does; an implementation may send control
    /// messages another way (the OS socket with `--kernel-path`: without a UDP checksum).
    /// The default is [`Socket::send_to`].
    ///
    /// # Errors
    ///
    /// As [`Socket::send_to`].
    fn send_control_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.send_to(datagram, to)
    }

    /// Whether control messages go as [`Socket::send_to`] sends frames (`true`), even where
    /// the implementation has another way for them (the OS socket's raw socket without
    /// checksums, which the kernel path turns off while it stands aside). The default has
    /// no other way, so it does nothing.
    fn control_as_frames(&mut self, _as_frames: bool) {}

    /// Sends whatever [`Socket::send_to`] queued. The core calls it after each batch of
    /// input (through [`crate::node::Node::flush`]), so a lone datagram waits for nothing.
    /// The default queues nothing, so it does nothing.
    ///
    /// # Errors
    ///
    /// [`FlushError`]: how many queued datagrams were dropped, and the first error.
    fn flush(&mut self) -> Result<(), FlushError> {
        Ok(())
    }

    /// After a [`Socket::flush`] that failed: calls `f(to, datagrams, bytes)` for the queued
    /// datagrams it dropped (what [`FlushError`] totals, by destination; an implementation
    /// may call it once per datagram, and may leave some out under overload), and forgets
    /// them, so that what was counted as sent to each peer can be taken back. The default,
    /// for a socket that queues nothing, has none.
    fn drain_failed(&mut self, f: &mut dyn FnMut(SocketAddr, u64, u64)) {
        let _ = f;
    }
}

/// What a flush could not deliver: the counts are exact, the error is the first one seen.
#[derive(Debug)]
pub struct FlushError {
    /// Datagrams (or frames) that were dropped.
    pub dropped: u64,
    /// How many of `dropped` failed for a full buffer ([`io::ErrorKind::WouldBlock`]), the
    /// rest for other errors, whatever `error` is.
    pub would_block: u64,
    /// Their bytes, where the caller counted them as sent (datagrams).
    pub dropped_bytes: u64,
    /// The first error.
    pub error: io::Error,
}

/// Where the core delivers Ethernet frames that arrived from peers (the tap device).
///
/// Implementations must not block, for the same reason as [`Socket`].
pub trait Device {
    /// Writes one complete Ethernet frame (destination MAC first, no preamble or CRC).
    ///
    /// # Errors
    ///
    /// Any OS error; the core counts it and never retries.
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()>;

    /// Writes whatever [`Device::write_frame`] held back (e.g. TCP segments being coalesced
    /// into one super-frame). The core calls it after each batch of input. The default holds
    /// nothing back, so it does nothing.
    ///
    /// # Errors
    ///
    /// [`FlushError`]: how many held frames were dropped, and the first error.
    fn flush(&mut self) -> Result<(), FlushError> {
        Ok(())
    }

    /// Called once by the node: with `on` (the sealed modes), every frame it writes came in a
    /// datagram whose AEAD tag proved it unchanged since a trusted node sealed it, so a
    /// device that joins frames (user-space GRO) may take their TCP and UDP checksums as they
    /// are instead of summing them. Returns whether the device then also *completes* those
    /// checksums: it hands every untagged TCP or UDP frame to the kernel as one whose checksum
    /// is still to be filled in, so peers may leave them partial (the Hello flag
    /// [`crate::wire::relay::FLAG_PARTIAL_CHECKSUMS`]). The default does nothing and returns
    /// false.
    fn trust_checksums(&mut self, on: bool) -> bool {
        let _ = on;
        false
    }
}
