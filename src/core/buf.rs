//! [`PacketBuf`]: the one buffer a packet lives in from the moment it is read until it is sent.
//!
//! Owns the buffer layout only. A frame read from the device lands at [`FRAME_OFFSET`], so the
//! 8-byte ethcloud header can be written in front of it in place; [`HEADROOM`] bytes before the
//! header and [`TAILROOM`] bytes after the largest datagram are kept free for the sealed
//! modes (their marker, session and counter in front, the tag behind), so that sealing, too,
//! never copies a packet.
//!
//! ```text
//! | HEADROOM | header (8) | frame (up to MAX_FRAME_LEN) | TAILROOM |
//!            ^ datagram starts here
//! ```

use crate::wire::{HEADER_LEN, MAX_DATAGRAM_LEN, MAX_FRAME_LEN};

/// Bytes reserved in front of the header.
pub const HEADROOM: usize = 64;
/// Bytes reserved behind the largest datagram.
pub const TAILROOM: usize = 64;
/// Where a frame read from the device starts.
pub const FRAME_OFFSET: usize = HEADROOM + HEADER_LEN;
/// Where the switch byte of a frame datagram sits (right before the frame).
pub const SWITCH_AT: usize = FRAME_OFFSET - 1;
/// Total size of a [`PacketBuf`].
pub const BUF_LEN: usize = HEADROOM + MAX_DATAGRAM_LEN + TAILROOM;

/// A boxed, fixed-size packet buffer, allocated once and reused for every packet.
pub struct PacketBuf {
    bytes: Box<[u8]>,
}

impl Default for PacketBuf {
    fn default() -> Self {
        PacketBuf::new()
    }
}

impl core::fmt::Debug for PacketBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketBuf")
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl PacketBuf {
    /// Allocates the buffer (once, at start-up).
    pub fn new() -> PacketBuf {
        PacketBuf {
            bytes: vec![0u8; BUF_LEN].into_boxed_slice(),
        }
    }

    /// Room for one frame of up to [`MAX_FRAME_LEN`] bytes: a segment cut from a super-frame,
    /// a test's frame (device reads land in [`PacketBuf::read_room`]).
    pub fn frame_room(&mut self) -> &mut [u8] {
        self.bytes
            .get_mut(FRAME_OFFSET..FRAME_OFFSET + MAX_FRAME_LEN)
            .unwrap_or_default()
    }

    /// Where a device read lands: [`PacketBuf::frame_room`] and one byte more. A tap read
    /// copies at most what the buffer takes and returns that (not the frame's length), so a
    /// frame longer than [`MAX_FRAME_LEN`] (the tap's MTU raised past what a datagram holds)
    /// would come back cut to a length that looks whole; in this room it comes back one byte
    /// too long, and is dropped as such.
    pub fn read_room(&mut self) -> &mut [u8] {
        self.bytes
            .get_mut(FRAME_OFFSET..=FRAME_OFFSET + MAX_FRAME_LEN)
            .unwrap_or_default()
    }

    /// The frame of `len` bytes previously put into [`PacketBuf::read_room`] or
    /// [`PacketBuf::frame_room`].
    pub fn frame(&self, len: usize) -> &[u8] {
        let end = FRAME_OFFSET + len.min(MAX_FRAME_LEN);
        self.bytes.get(FRAME_OFFSET..end).unwrap_or_default()
    }

    /// Where a socket read should land: room for one datagram of up to [`MAX_DATAGRAM_LEN`].
    pub fn datagram_room(&mut self) -> &mut [u8] {
        self.bytes
            .get_mut(HEADROOM..HEADROOM + MAX_DATAGRAM_LEN)
            .unwrap_or_default()
    }

    /// The datagram of `len` bytes previously read into [`PacketBuf::datagram_room`].
    pub fn datagram(&self, len: usize) -> &[u8] {
        let end = HEADROOM + len.min(MAX_DATAGRAM_LEN);
        self.bytes.get(HEADROOM..end).unwrap_or_default()
    }

    /// The whole buffer, headroom and tailroom included (for sealing in place).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The whole buffer, mutably (for sealing in place).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The header slot and the frame of `frame_len` bytes behind it, as one mutable slice:
    /// the datagram that carries the frame once the header is written.
    pub fn header_and_frame_mut(&mut self, frame_len: usize) -> &mut [u8] {
        let end = FRAME_OFFSET + frame_len.min(MAX_FRAME_LEN);
        self.bytes.get_mut(HEADROOM..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_buf_frame_room_sits_right_after_header_slot() {
        let mut buf = PacketBuf::new();
        buf.frame_room()[..3].copy_from_slice(&[1, 2, 3]);
        assert_eq!(buf.frame(3), &[1, 2, 3]);
        let datagram = buf.header_and_frame_mut(3);
        assert_eq!(datagram.len(), HEADER_LEN + 3);
        assert_eq!(&datagram[HEADER_LEN..], &[1, 2, 3]);
        assert_eq!(buf.datagram(HEADER_LEN + 3)[HEADER_LEN..], [1, 2, 3]);
    }

    #[test]
    fn packet_buf_lengths_are_clamped_not_panicking() {
        let mut buf = PacketBuf::new();
        assert_eq!(buf.frame(usize::MAX).len(), MAX_FRAME_LEN);
        assert_eq!(buf.datagram(usize::MAX).len(), MAX_DATAGRAM_LEN);
        assert_eq!(buf.datagram_room().len(), MAX_DATAGRAM_LEN);
        assert_eq!(buf.header_and_frame_mut(usize::MAX).len(), MAX_DATAGRAM_LEN);
    }
}
