//! The receive path: [`RecvBatch`], the buffers allocated once, and
//! [`UdpSocket::recv_batch`], which fills them with one `recvmmsg` (runs coalesced by UDP GRO
//! come in as one message with their segment size); plus [`UdpSocket::recv_from`] for a
//! single datagram.
//!
//! Owns the receive slots and reading the GRO segment size from the control message. Senders
//! come back unmapped (plain IPv4). It sets no socket option and sends nothing.

use std::ffi::{c_int, c_uint, c_void};
use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use log::debug;

use super::{socklen, unmap, Cmsg, SockAddr, UdpSocket, RECV_SLOTS, RECV_SLOT_LEN, UDP_GRO};

/// Buffers for [`UdpSocket::recv_batch`]: [`RECV_SLOTS`] slots of [`RECV_SLOT_LEN`] bytes,
/// and the `recvmmsg` headers that describe them, allocated once.
pub struct RecvBatch {
    bytes: Box<[u8]>,
    /// One message header, I/O vector, sender address and control buffer per slot, kept
    /// between calls: each call points them at the slots again but does not clear them
    /// (the busy-poll spin makes a call on every pass, most of them finding nothing).
    msgs: Box<[libc::mmsghdr; RECV_SLOTS]>,
    iovs: Box<[libc::iovec; RECV_SLOTS]>,
    addrs: Box<[SockAddr; RECV_SLOTS]>,
    cmsgs: Box<[Cmsg<c_int>; RECV_SLOTS]>,
    /// (length, segment length, sender) per received message.
    received: [(usize, usize, Option<SocketAddr>); RECV_SLOTS],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

// SAFETY: the only pointers in a RecvBatch are those its message headers hold, and they
// point into the batch's own heap buffers, which move with it; nothing is shared with another
// value, so the batch (and the socket's worker with it) may move to another thread.
unsafe impl Send for RecvBatch {}

impl core::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("count", &self.count)
            .finish()
    }
}

impl RecvBatch {
    /// Allocates the slots (once, at start-up).
    pub fn new() -> RecvBatch {
        RecvBatch {
            bytes: vec![0u8; RECV_SLOTS * RECV_SLOT_LEN].into_boxed_slice(),
            // SAFETY: mmsghdr and iovec are plain C structs; all zeroes (null pointers, zero
            // lengths) is a valid value.
            msgs: Box::new(unsafe { mem::zeroed() }),
            // SAFETY: as above.
            iovs: Box::new(unsafe { mem::zeroed() }),
            addrs: Box::new([SockAddr::zeroed(); RECV_SLOTS]),
            cmsgs: Box::new([Cmsg::<c_int>::new(0, 0, 0); RECV_SLOTS]),
            received: [(0, 0, None); RECV_SLOTS],
            count: 0,
        }
    }

    /// Messages received by the last [`UdpSocket::recv_batch`].
    pub fn len(&self) -> usize {
        self.count
    }

    /// True if the last [`UdpSocket::recv_batch`] received nothing.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Message `i`: its sender (plain IPv4 if it was v4-mapped), its bytes, and the length of
    /// the datagrams in it (GRO: all but the last are this long; without GRO it is the whole
    /// message). `None` past the end, or for a message that was truncated or had no sender.
    // HOT PATH
    pub fn get(&self, i: usize) -> Option<(SocketAddr, &[u8], usize)> {
        if i >= self.count {
            return None;
        }
        let (len, segment_len, from) = *self.received.get(i)?;
        let start = i * RECV_SLOT_LEN;
        let bytes = self.bytes.get(start..start + len)?;
        Some((from?, bytes, segment_len.max(1)))
    }

    /// Like [`RecvBatch::get`], with the bytes mutable (keyed mode decrypts in place).
    // HOT PATH
    pub fn get_mut(&mut self, i: usize) -> Option<(SocketAddr, &mut [u8], usize)> {
        if i >= self.count {
            return None;
        }
        let (len, segment_len, from) = *self.received.get(i)?;
        let start = i * RECV_SLOT_LEN;
        let bytes = self.bytes.get_mut(start..start + len)?;
        Some((from?, bytes, segment_len.max(1)))
    }
}

impl UdpSocket {
    /// Receives up to [`RECV_SLOTS`] messages with one `recvmmsg` into `batch` and returns
    /// how many (see [`RecvBatch::get`]).
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when nothing is waiting; ICMP-queued errors and any other
    /// OS error as is.
    // HOT PATH
    pub fn recv_batch(&mut self, batch: &mut RecvBatch) -> io::Result<usize> {
        batch.count = 0;
        let RecvBatch {
            bytes,
            msgs,
            iovs,
            addrs,
            cmsgs,
            received,
            count,
        } = batch;
        // Every field the kernel reads is set again (the lengths it wrote back included);
        // the pointers are taken afresh from the buffers they point into.
        for ((((msg, iov), addr), cmsg), slot) in msgs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(addrs.iter_mut())
            .zip(cmsgs.iter_mut())
            .zip(bytes.chunks_exact_mut(RECV_SLOT_LEN))
        {
            iov.iov_base = slot.as_mut_ptr().cast::<c_void>();
            iov.iov_len = slot.len();
            msg.msg_hdr.msg_iov = iov;
            msg.msg_hdr.msg_iovlen = 1;
            msg.msg_hdr.msg_name = (addr as *mut SockAddr).cast::<c_void>();
            msg.msg_hdr.msg_namelen = socklen::<SockAddr>();
            msg.msg_hdr.msg_control = (cmsg as *mut Cmsg<c_int>).cast::<c_void>();
            msg.msg_hdr.msg_controllen = mem::size_of::<Cmsg<c_int>>() as _;
        }
        // SAFETY: `msgs` holds RECV_SLOTS initialised mmsghdrs whose iovecs, names and
        // control buffers point into `iovs`, `addrs`, `cmsgs` and `bytes`, all alive, not
        // otherwise borrowed and of the stated lengths until the call returns; the kernel
        // writes only within them. A null timeout is allowed.
        let n = unsafe {
            syscall!(recvmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                RECV_SLOTS as c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut()
            ))
        }?;
        let n = usize::try_from(n).unwrap_or(0).min(RECV_SLOTS);
        for (i, msg) in msgs.iter().enumerate().take(n) {
            let len = msg.msg_len as usize;
            let is_truncated = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let cmsg = &cmsgs[i];
            // `msg_controllen` is a `usize` on glibc but a `u32` on musl.
            #[allow(clippy::unnecessary_cast)]
            let control_len = msg.msg_hdr.msg_controllen as usize;
            let has_gro = control_len >= mem::size_of::<libc::cmsghdr>() + 4
                && cmsg.hdr.cmsg_level == libc::SOL_UDP
                && cmsg.hdr.cmsg_type == UDP_GRO;
            // (A segment size of 0, which the kernel never gives, is taken as one segment.)
            let segment_len = if has_gro {
                usize::try_from(cmsg.data)
                    .ok()
                    .filter(|&s| s > 0)
                    .unwrap_or(len)
            } else {
                len
            };
            let from = if is_truncated {
                debug!("dropped a truncated UDP message of more than {RECV_SLOT_LEN} bytes");
                None
            } else {
                addrs[i].get().map(unmap)
            };
            received[i] = (len.min(RECV_SLOT_LEN), segment_len, from);
        }
        *count = n;
        Ok(n)
    }

    /// Receives one datagram into `buf`; returns its length and sender. A v4-mapped sender is
    /// returned as a plain IPv4 address.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::WouldBlock`] when nothing is waiting; errors queued by ICMP (e.g.
    /// `ECONNREFUSED`) and any other OS error as is.
    // HOT PATH
    pub fn recv_from(&mut self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let (len, from) = self.socket.recv_from(buf)?;
        Ok((len, unmap(from)))
    }
}
