//! The packet path of the loop: draining the UDP socket and the tap device, and cutting the
//! tap's super-frames into frames, every frame and datagram handed to the node.

use std::io;

use log::{debug, warn};

use super::{Daemon, BUDGET, FLUSH_AT, SOCKET_BATCHES};
use crate::error::Error;
use crate::offload::segment::{complete_checksum, Segmenter};
use crate::offload::vnet::{VnetHdr, GSO_NONE, VNET_HDR_LEN};
use crate::sys::udp::RECV_SLOTS;
use crate::time::Instant;

impl Daemon {
    /// Receives up to [`SOCKET_BATCHES`] batches of messages, hands each datagram to the
    /// node, and flushes after each batch. Returns whether anything came.
    // HOT PATH
    pub(super) fn drain_socket(&mut self, now: Instant) -> Result<bool, Error> {
        let mut traffic = false;
        for _ in 0..SOCKET_BATCHES {
            match self.node.socket_mut().recv_batch(&mut self.rx) {
                Ok(count) => {
                    traffic = true;
                    for i in 0..count {
                        let Some((from, bytes, segment_len)) = self.rx.get_mut(i) else {
                            continue;
                        };
                        for datagram in bytes.chunks_mut(segment_len) {
                            // A drop is counted and logged by the node itself.
                            let _ = self.node.on_datagram(now, from, datagram);
                        }
                    }
                    self.node.flush();
                    if count < RECV_SLOTS {
                        break;
                    }
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
        Ok(traffic)
    }

    /// Reads up to [`BUDGET`] frames from the tap device and hands each to the node.
    ///
    /// What the first read yields is sent at once, before the next read: a lone frame (a ping,
    /// a request) then leaves without waiting for the read that finds the device empty, and a
    /// burst costs one extra send per wake-up. Returns whether anything came.
    // HOT PATH
    pub(super) fn drain_device(&mut self, now: Instant) -> Result<bool, Error> {
        let mut traffic = false;
        for i in 0..BUDGET {
            let room = if self.vnet_hdr_len > 0 {
                &mut self.superframe[..]
            } else {
                self.buf.frame_room()
            };
            match self.node.device_mut().read(room) {
                Ok(len) if self.vnet_hdr_len > 0 => {
                    traffic = true;
                    self.on_superframe(now, len);
                    if i == 0 || self.node.socket().queued() >= FLUSH_AT {
                        self.node.flush();
                    }
                }
                Ok(len) => {
                    traffic = true;
                    // A drop is counted and logged by the node itself.
                    let _ = self.node.on_frame(now, &mut self.buf, len);
                    if i == 0 || self.node.socket().queued() >= FLUSH_AT {
                        self.node.flush();
                    }
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
        Ok(traffic)
    }

    /// Handles one tap read of `len` bytes in `superframe` (vnet header first): completes a
    /// checksum the kernel left to us, or cuts a super-frame into real frames, and hands each
    /// frame to the node.
    // HOT PATH
    fn on_superframe(&mut self, now: Instant, len: usize) {
        let Some(packet) = self.superframe.get_mut(..len) else {
            return;
        };
        let Some(hdr) = VnetHdr::parse(packet) else {
            self.offload_error(len, "shorter than its vnet header");
            return;
        };
        let frame = &mut packet[VNET_HDR_LEN..];
        if hdr.gso_type == GSO_NONE {
            if let Err(e) = complete_checksum(&hdr, frame) {
                self.offload_error(len, e);
                return;
            }
            let Some(room) = self.buf.frame_room().get_mut(..frame.len()) else {
                self.offload_error(len, "frame larger than the packet buffer");
                return;
            };
            room.copy_from_slice(frame);
            let _ = self.node.on_frame(now, &mut self.buf, frame.len());
            return;
        }
        let mut segments = match Segmenter::new(&hdr, frame) {
            Ok(s) => s,
            Err(e) => {
                self.offload_error(len, e);
                return;
            }
        };
        while let Some(segment_len) = segments.next_into(self.buf.frame_room()) {
            // A drop is counted and logged by the node itself.
            let _ = self.node.on_frame(now, &mut self.buf, segment_len);
        }
    }

    /// Counts and logs (at debug) a tap read that could not be cut into frames.
    fn offload_error(&mut self, len: usize, reason: impl core::fmt::Display) {
        self.stats.offload_errors = self.stats.offload_errors.saturating_add(1);
        debug!("dropped a {len}-byte read from the tap: {reason}");
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
    fn icmp_errors_are_not_fatal_but_bad_fd_is() {
        assert!(is_icmp_error(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_icmp_error(&io::Error::from_raw_os_error(libc::EBADF)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EBADF)));
    }
}
