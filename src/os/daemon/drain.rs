//! The packet path of the loop: draining the UDP socket and the tap device, and cutting the
//! tap's super-frames into frames, every frame and datagram handed to the node.
//!
//! Owns the per-wake-up reads and their error handling (ICMP errors counted, memory pressure
//! warned once per run of failures, a tap frame the kernel could not hand over counted,
//! anything else fatal); what a frame or datagram means is
//! the node's, when the loop sleeps or spins is `mod.rs`'s.

use std::io;

use log::{debug, warn};

use super::{Daemon, BUDGET, FLUSH_AT, SOCKET_BATCHES};
use crate::buf::PacketBuf;
use crate::error::Error;
use crate::offload::segment::{complete_checksum, Segmenter};
use crate::offload::vnet::{VnetHdr, GSO_NONE, VNET_HDR_LEN};
use crate::sys::udp::RECV_SLOTS;
use crate::time::Instant;

impl Daemon {
    /// Receives up to [`SOCKET_BATCHES`] batches of messages, hands each datagram to the
    /// node, and flushes after each batch. Returns whether anything came, and how many frames
    /// the node wrote to the device meanwhile.
    // HOT PATH
    pub(super) fn drain_socket(&mut self, now: Instant) -> Result<Drained, Error> {
        let mut traffic = false;
        let written_before = self.node.stats().frames_to_device;
        for _ in 0..SOCKET_BATCHES {
            match self.node.socket_mut().recv_batch(&mut self.rx) {
                Ok(count) => {
                    traffic = true;
                    self.recv_trouble.over();
                    for i in 0..count {
                        let Some((from, bytes, segment_len)) = self.rx.get_mut(i) else {
                            continue;
                        };
                        if bytes.is_empty() {
                            // An empty datagram has no chunks: the node counts it (malformed).
                            let _ = self.node.on_datagram(now, from, bytes);
                            continue;
                        }
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
                    self.stats.socket_errors = self.stats.socket_errors.saturating_add(1);
                    self.recv_trouble.failed("UDP receive", &e);
                    break;
                }
                Err(e) => return Err(Error::SocketRecv(e)),
            }
        }
        Ok(Drained {
            traffic,
            written: self
                .node
                .stats()
                .frames_to_device
                .wrapping_sub(written_before),
        })
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
                self.buf.read_room()
            };
            match self.node.device_mut().read(room) {
                Ok(len) => {
                    traffic = true;
                    self.read_trouble.over();
                    if self.vnet_hdr_len > 0 {
                        self.on_superframe(now, len);
                    } else {
                        // A drop is counted and logged by the node itself.
                        let _ = self.node.on_frame(now, &mut self.buf, len);
                    }
                    if i == 0 || self.node.socket().queued() >= FLUSH_AT {
                        self.node.flush();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_transient(&e) => {
                    self.read_trouble.failed("tap read", &e);
                    break;
                }
                Err(e) if is_dropped_frame(&e) => {
                    self.stats.offload_errors = self.stats.offload_errors.saturating_add(1);
                    note_dropped_frame("tap read", &e);
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
        let packet = match whole_read(&mut self.superframe, len) {
            Ok(packet) => packet,
            Err(e) => {
                self.offload_error(len, e);
                return;
            }
        };
        let node = &mut self.node;
        // The frames cut from a super-frame may leave their checksums to a receiver that
        // completes them (flag 0x20); a lone frame is never asked about.
        let is_super = VnetHdr::parse(packet).is_some_and(|hdr| hdr.gso_type != GSO_NONE);
        let partial = is_super
            && packet
                .get(VNET_HDR_LEN..)
                .is_some_and(|frame| node.leaves_checksums_partial(now, frame));
        let result = cut_superframe(packet, &mut self.buf, partial, |buf, frame_len| {
            // A drop is counted and logged by the node itself.
            let _ = node.on_frame(now, buf, frame_len);
        });
        match result {
            Ok(true) => {
                self.stats.partial_checksum_superframes =
                    self.stats.partial_checksum_superframes.wrapping_add(1);
            }
            Ok(false) => {}
            Err(e) => self.offload_error(len, e),
        }
    }

    /// Counts and logs (at debug) a tap read that could not be cut into frames.
    fn offload_error(&mut self, len: usize, reason: impl core::fmt::Display) {
        self.stats.offload_errors = self.stats.offload_errors.saturating_add(1);
        debug!("dropped a {len}-byte read from the tap: {reason}");
    }
}

/// What [`Daemon::drain_socket`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Drained {
    /// Anything came.
    pub(super) traffic: bool,
    /// Frames the node wrote to the device.
    pub(super) written: u64,
}

/// The `len` bytes a tap read put into `superframe`, unless the read filled it: then it may
/// have been cut (the kernel copies what fits and says how much it copied, not how long the
/// frame was).
pub(super) fn whole_read(superframe: &mut [u8], len: usize) -> Result<&mut [u8], CutError> {
    let room = superframe.len();
    superframe
        .get_mut(..len)
        .filter(|_| len < room)
        .ok_or(CutError::FilledBuffer)
}

/// Why a tap read could not be cut into frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CutError {
    /// Shorter than its vnet header.
    Short,
    /// A plain frame larger than the packet buffer.
    TooLarge,
    /// A read that filled the super-frame buffer: it may have been cut ([`whole_read`]).
    FilledBuffer,
    /// The checksum or the segmentation failed.
    Offload(crate::offload::Error),
    /// A segment did not fit into the packet buffer (or its lengths into 16 bits): this and
    /// the segments after it were not sent.
    SegmentTooLarge,
}

impl core::fmt::Display for CutError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CutError::Short => f.write_str("shorter than its vnet header"),
            CutError::TooLarge => f.write_str("frame larger than the packet buffer"),
            CutError::FilledBuffer => f.write_str("filled the read buffer: may have been cut"),
            CutError::Offload(e) => e.fmt(f),
            CutError::SegmentTooLarge => f.write_str("a segment larger than the packet buffer"),
        }
    }
}

/// One tap read, `packet` (vnet header first): completes a checksum the kernel left to us,
/// or cuts a super-frame into real frames, each put into `buf.frame_room()` and handed to
/// `each` with its length; with `partial`, the cut frames' TCP or UDP checksums are left
/// partial ([`Segmenter::leave_checksums_partial`]). Returns whether they were (an untagged
/// super-frame). Shared by the loop and the `--threads` lanes (which always pass false).
///
/// # Errors
///
/// [`CutError`]; frames already handed to `each` stay sent.
// HOT PATH
pub(super) fn cut_superframe(
    packet: &mut [u8],
    buf: &mut PacketBuf,
    partial: bool,
    mut each: impl FnMut(&mut PacketBuf, usize),
) -> Result<bool, CutError> {
    let hdr = VnetHdr::parse(packet).ok_or(CutError::Short)?;
    let frame = packet.get_mut(VNET_HDR_LEN..).ok_or(CutError::Short)?;
    if hdr.gso_type == GSO_NONE {
        complete_checksum(&hdr, frame).map_err(CutError::Offload)?;
        let room = buf
            .frame_room()
            .get_mut(..frame.len())
            .ok_or(CutError::TooLarge)?;
        room.copy_from_slice(frame);
        each(buf, frame.len());
        return Ok(false);
    }
    let mut segments = Segmenter::new(&hdr, frame).map_err(CutError::Offload)?;
    let left_partial = partial && segments.leave_checksums_partial();
    let mut cut = 0;
    while let Some(segment_len) = segments.next_into(buf.frame_room()) {
        each(buf, segment_len);
        cut += 1;
    }
    if cut < segments.count() {
        return Err(CutError::SegmentTooLarge);
    }
    Ok(left_partial)
}

/// Errors a UDP socket reports because of an ICMP message about an earlier send: they say
/// nothing about the socket itself, so the loop goes on.
pub(super) fn is_icmp_error(e: &io::Error) -> bool {
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
pub(super) fn is_transient(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOMEM | libc::ENOBUFS))
}

/// A tap read that failed for one frame alone: `EINVAL`, which Linux gives when the vnet
/// header cannot describe a frame's offloads (`tun_put_user`). The kernel has dropped that
/// frame (`tun_do_read` frees it), so the next read gets the next one: the read is counted in
/// `offload_errors` and the loop goes on, where before the daemon stopped.
pub(super) fn is_dropped_frame(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINVAL)
}

/// Warns about the first tap read [`is_dropped_frame`] in this process; the later ones are
/// logged at debug (each is counted).
pub(super) fn note_dropped_frame(who: &str, e: &io::Error) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        debug!("{who}: the kernel dropped a frame it could not hand over: {e}");
    } else {
        warn!(
            "{who}: the kernel dropped a frame it could not hand over: {e} (counted in \
             offload_errors; further ones are logged at debug)"
        );
    }
}

/// A run of transient failures of one kind of I/O (see [`is_transient`]): warned about once
/// when it starts, at debug while it lasts, and over at the next success. The fd stays
/// readable through it, so each failure after the first waits [`TROUBLE_BACKOFF`]: a loop
/// asleep in epoll would otherwise wake at once and fail again, at full speed.
#[derive(Debug, Default)]
pub(super) struct Trouble {
    on: bool,
}

/// How long a thread waits after a transient failure that repeats (the fd stays readable,
/// so a loop asleep in epoll would otherwise wake at once, thousands of times a second).
pub(super) const TROUBLE_BACKOFF: std::time::Duration = std::time::Duration::from_millis(1);

impl Trouble {
    /// `what` failed with `e`; retried later. The first failure of a run returns at once;
    /// later ones wait [`TROUBLE_BACKOFF`] first (see [`Trouble::backoff`]).
    pub(super) fn failed(&mut self, what: &str, e: &io::Error) {
        let wait = self.backoff();
        if std::mem::replace(&mut self.on, true) {
            debug!("{what} failed again, retrying later: {e}");
        } else {
            warn!("{what} failed, retrying later: {e} (warned once until it works again)");
        }
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// What a failure now waits: nothing for the first of a run, [`TROUBLE_BACKOFF`] after.
    fn backoff(&self) -> std::time::Duration {
        if self.on {
            TROUBLE_BACKOFF
        } else {
            std::time::Duration::ZERO
        }
    }

    /// It worked: the next failure is warned about again.
    // HOT PATH
    pub(super) fn over(&mut self) {
        self.on = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_that_filled_the_buffer_is_told_apart_from_a_frame_too_large() {
        let mut room = [0u8; 8];
        assert_eq!(whole_read(&mut room, 7).map(|p| p.len()), Ok(7));
        let err = whole_read(&mut room, 8).unwrap_err();
        assert_eq!(err, CutError::FilledBuffer);
        assert!(err.to_string().contains("may have been cut"), "{err}");
        assert_ne!(err.to_string(), CutError::TooLarge.to_string());
    }

    #[test]
    fn trouble_warns_once_per_run_of_failures() {
        let e = io::Error::from_raw_os_error(libc::ENOBUFS);
        let mut t = Trouble::default();
        assert!(!t.on);
        assert!(t.backoff().is_zero(), "the first failure waits for nothing");
        t.failed("UDP receive", &e);
        assert!(t.on, "the first failure starts a run");
        assert_eq!(t.backoff(), TROUBLE_BACKOFF, "the next ones wait");
        t.failed("UDP receive", &e);
        assert!(t.on);
        t.over();
        assert!(!t.on, "a success ends it: the next failure warns again");
        assert!(t.backoff().is_zero());
    }

    #[test]
    fn a_super_frame_cut_short_is_an_error_and_partial_is_said_only_where_it_took() {
        use crate::offload::testing::{build_super, pattern, Spec};
        let cut = |spec: &Spec, payload: usize, mss: usize, partial: bool| {
            let (hdr, frame) = build_super(spec, &pattern(payload), mss);
            let mut packet = hdr.to_bytes().to_vec();
            packet.extend_from_slice(&frame);
            let mut buf = PacketBuf::new();
            let mut frames = 0;
            let result = cut_superframe(&mut packet, &mut buf, partial, |_, _| frames += 1);
            (result, frames)
        };
        // Two segments, cut and handed on; left partial only where asked and untagged.
        let tcp = Spec::tcp(false, None);
        assert_eq!(cut(&tcp, 2000, 1000, true), (Ok(true), 2));
        assert_eq!(cut(&tcp, 2000, 1000, false), (Ok(false), 2));
        assert_eq!(
            cut(&Spec::tcp(false, Some(7)), 2000, 1000, true),
            (Ok(false), 2)
        );
        // A segment larger than the packet buffer: not silently the end of the read.
        let big = Spec::tcp(true, None);
        assert_eq!(
            cut(&big, 65_460, 65_450, false),
            (Err(CutError::SegmentTooLarge), 0)
        );
    }

    #[test]
    fn icmp_errors_are_not_fatal_but_bad_fd_is() {
        assert!(is_icmp_error(&io::Error::from_raw_os_error(
            libc::ECONNREFUSED
        )));
        assert!(!is_icmp_error(&io::Error::from_raw_os_error(libc::EBADF)));
        assert!(!is_transient(&io::Error::from_raw_os_error(libc::EBADF)));
    }

    #[test]
    fn a_tap_read_the_kernel_could_not_describe_drops_one_frame_only() {
        let einval = io::Error::from_raw_os_error(libc::EINVAL);
        assert!(is_dropped_frame(&einval), "counted, and the loop goes on");
        assert!(!is_transient(&einval));
        for fatal in [libc::EBADF, libc::EIO, libc::EFAULT, libc::ENODEV] {
            let e = io::Error::from_raw_os_error(fatal);
            assert!(
                !is_dropped_frame(&e),
                "errno {fatal} still stops the daemon"
            );
        }
        assert!(!is_dropped_frame(&io::Error::from(
            io::ErrorKind::InvalidInput
        )));
    }
}
