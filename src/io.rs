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
    /// Sends one datagram to `to`.
    ///
    /// # Errors
    ///
    /// Any OS error; the core counts it and never retries.
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()>;
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
}
