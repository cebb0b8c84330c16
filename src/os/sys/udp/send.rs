//! The batched send path: [`UdpSocket::enable_batching`] and the queue that `send_to` copies
//! datagrams into, and [`Socket::flush`], which sends the queue with as few `sendmmsg` calls
//! as possible, runs to one peer as one UDP GSO message where that is on.
//!
//! Owns the send queue, GSO runs, counting the datagrams the kernel refuses, and writing IPv4
//! peers v4-mapped on a dual-stack socket. It creates no socket and sets no option but the
//! per-message segment size; receiving is `recv`'s.

use std::ffi::{c_uint, c_void};
use std::io;
use std::mem;
use std::net::{SocketAddr, SocketAddrV6};
use std::os::fd::AsRawFd;

use log::{debug, info};

use super::{
    unmap, Cmsg, SockAddr, UdpSocket, GSO_MAX_BYTES, GSO_MAX_SEGMENTS, SEND_BATCH,
    SEND_QUEUE_DATAGRAMS, SEND_QUEUE_LEN, UDP_SEGMENT,
};
use crate::io::{FlushError, Socket};

/// Datagrams queued by `send_to`, back to back, until the next flush.
pub(super) struct SendQueue {
    bytes: Box<[u8]>,
    used: usize,
    /// (start in `bytes`, length, destination as the kernel sees it)
    entries: Vec<(usize, usize, SocketAddr)>,
    failed: u64,
    /// How many of `failed` were refused for a full buffer (`EAGAIN`).
    would_block: u64,
    /// Bytes of the `failed` datagrams.
    failed_bytes: u64,
    /// Each of the `failed` datagrams: its destination (as the node knows it, not
    /// v4-mapped) and length, for [`Socket::drain_failed`]; at most
    /// [`SEND_QUEUE_DATAGRAMS`], in room reserved once (more, from automatic flushes of an
    /// overfull queue between two of the node's, go unrecorded).
    failed_to: Vec<(SocketAddr, usize)>,
    first_error: Option<io::Error>,
    /// GSO messages the kernel refused since the last one it took (see `send_queued`).
    gso_refusals: u32,
    /// After [`GSO_REFUSALS_BEFORE_PAUSE`] refusals in a row: no GSO until then.
    gso_paused_until: Option<std::time::Instant>,
    /// How long the next pause lasts: [`GSO_PAUSE`], doubled after each pause that no GSO
    /// message taken ended, up to [`GSO_PAUSE_MAX`] (a cause that stays, such as an underlay
    /// without checksum offload, costs a refused call per run only that often).
    /// (At [`GSO_PAUSE`] also: the kernel took a GSO message since the last pause began, so
    /// the next pause is logged at info; the others at debug.)
    gso_pause: std::time::Duration,
    /// Pauses logged at info (for the tests).
    #[cfg(test)]
    gso_pauses_told: u32,
    /// One message header, I/O vector, address and GSO control message per message of a
    /// `sendmmsg`, kept between flushes: each flush fills in the ones it sends, completely,
    /// instead of clearing 8 KiB of them first (a lone datagram is flushed on its own).
    msgs: Box<[libc::mmsghdr; SEND_BATCH]>,
    iovs: Box<[libc::iovec; SEND_BATCH]>,
    addrs: Box<[SockAddr; SEND_BATCH]>,
    cmsgs: Box<[Cmsg<u16>; SEND_BATCH]>,
}

impl SendQueue {
    /// Counts one datagram of `len` bytes to `to` (as the node knows it) as not sent.
    fn count_failed(&mut self, to: SocketAddr, len: usize, would_block: bool) {
        self.failed += 1;
        if would_block {
            self.would_block += 1;
        }
        self.failed_bytes += len as u64;
        if self.failed_to.len() < SEND_QUEUE_DATAGRAMS {
            self.failed_to.push((to, len));
        }
    }

    /// Keeps `error` if it is the first since the last flush.
    fn keep_error(&mut self, error: io::Error) {
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }

    /// A datagram of `len` bytes to `to` (as the node knows it) sent outside the queue was
    /// not sent, for `error`: counted as the queue's own failures are.
    fn fail_one(&mut self, to: SocketAddr, len: usize, error: io::Error) {
        self.count_failed(to, len, error.kind() == io::ErrorKind::WouldBlock);
        self.keep_error(error);
    }

    /// The `count` queued datagrams from entry `from` on were not sent, for `error`.
    fn fail(&mut self, from: usize, count: usize, error: io::Error) {
        let would_block = error.kind() == io::ErrorKind::WouldBlock;
        for at in from..from.saturating_add(count) {
            let Some(&(_, len, to)) = self.entries.get(at) else {
                break;
            };
            self.count_failed(unmap(to), len, would_block);
        }
        self.keep_error(error);
    }
}

// SAFETY: the only pointers in a SendQueue are those its message headers hold, and they
// point into the queue's own heap buffers, which move with it; nothing is shared with another
// value, so the queue (and the socket that owns it) may move to another thread.
unsafe impl Send for SendQueue {}

impl core::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued", &self.entries.len())
            .finish()
    }
}

impl UdpSocket {
    /// From now on `send_to` queues datagrams (copied) and [`Socket::flush`] sends them with
    /// as few `sendmmsg` calls as possible. Allocates the queue once.
    pub fn enable_batching(&mut self) {
        if self.queue.is_none() {
            self.queue = Some(SendQueue {
                bytes: vec![0u8; SEND_QUEUE_LEN].into_boxed_slice(),
                used: 0,
                entries: Vec::with_capacity(SEND_QUEUE_DATAGRAMS),
                failed: 0,
                would_block: 0,
                failed_bytes: 0,
                failed_to: Vec::with_capacity(SEND_QUEUE_DATAGRAMS),
                first_error: None,
                gso_refusals: 0,
                gso_paused_until: None,
                gso_pause: GSO_PAUSE,
                #[cfg(test)]
                gso_pauses_told: 0,
                // SAFETY: plain C structs; all zeroes (null pointers, zero lengths) is valid.
                msgs: Box::new(unsafe { mem::zeroed() }),
                // SAFETY: as above.
                iovs: Box::new(unsafe { mem::zeroed() }),
                addrs: Box::new([SockAddr::zeroed(); SEND_BATCH]),
                cmsgs: Box::new([Cmsg::<u16>::new(libc::SOL_UDP, UDP_SEGMENT, 0); SEND_BATCH]),
            });
        }
    }

    /// GSO runs refused in a row (see [`GSO_REFUSALS_BEFORE_PAUSE`]).
    #[cfg(test)]
    pub(super) fn gso_refusals(&self) -> u32 {
        self.queue.as_ref().map_or(0, |q| q.gso_refusals)
    }

    /// Ends a GSO pause now, and returns how long the next one would last and how many pauses
    /// were logged at info (for the tests).
    #[cfg(test)]
    pub(super) fn end_gso_pause(&mut self) -> (std::time::Duration, u32) {
        let q = self.queue.as_mut().map(|q| {
            if q.gso_paused_until.is_some() {
                q.gso_paused_until = Some(std::time::Instant::now());
            }
            (q.gso_pause, q.gso_pauses_told)
        });
        q.unwrap_or_default()
    }

    /// Datagrams waiting in the send queue.
    pub fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.entries.len())
    }

    /// Sends everything queued: runs of equal-sized datagrams to one peer as one GSO message
    /// (if on), up to [`SEND_BATCH`] messages per `sendmmsg`. A failed message is dropped and
    /// counted; a full socket buffer drops the rest of the queue. If the kernel refuses a GSO
    /// message, the run is sent again datagram by datagram: the reasons are mostly one
    /// destination's (a segment above its path MTU, which an ICMP message about that peer
    /// alone can lower; a route through IPsec), so GSO stays on for the others. After
    /// [`GSO_REFUSALS_BEFORE_PAUSE`] refusals with none taken between, GSO rests for
    /// [`GSO_PAUSE`] (saving a refused call per run), and is tried again after it; twice as
    /// long after each pause that no GSO message taken ended, up to [`GSO_PAUSE_MAX`].
    // HOT PATH
    fn send_queued(&mut self) {
        let Some(mut q) = self.queue.take() else {
            return;
        };
        let total = q.entries.len();
        let mut next = 0;
        if q.gso_paused_until
            .is_some_and(|t| std::time::Instant::now() >= t)
        {
            q.gso_paused_until = None;
            q.gso_refusals = 0;
        }
        let mut gso = self.offloads.gso && q.gso_paused_until.is_none();
        // Entries before this are sent one by one: their GSO run was refused.
        let mut singly_before = 0;
        // Each round sends at least one message, drops one, or has a GSO run refused, which
        // sends that run's datagrams singly from then on (a run is two or more entries).
        // Why the rest of the queue was given up, if it was.
        let mut given_up = None;
        for _ in 0..2 * total + 2 {
            if next >= total {
                break;
            }
            let SendQueue {
                bytes: queued,
                entries,
                msgs,
                iovs,
                addrs,
                cmsgs,
                ..
            } = &mut q;
            let mut spans = [0usize; SEND_BATCH];
            let mut count = 0;
            let mut at = next;
            while count < SEND_BATCH && at < total {
                let (start, len, to) = entries[at];
                let mut run = 1;
                let mut bytes = len;
                if gso && at >= singly_before {
                    while at + run < total && run < GSO_MAX_SEGMENTS {
                        let (_, prev_len, _) = entries[at + run - 1];
                        let (_, next_len, next_to) = entries[at + run];
                        if next_to != to
                            || prev_len != len
                            || next_len > len
                            || bytes + next_len > GSO_MAX_BYTES
                        {
                            break;
                        }
                        bytes += next_len;
                        run += 1;
                    }
                }
                let Some(slice) = queued.get(start..start + bytes) else {
                    break;
                };
                iovs[count].iov_base = slice.as_ptr().cast_mut().cast::<c_void>();
                iovs[count].iov_len = slice.len();
                let (addr, addr_len) = SockAddr::new(to);
                addrs[count] = addr;
                let hdr = &mut msgs[count].msg_hdr;
                hdr.msg_name = (&mut addrs[count] as *mut SockAddr).cast::<c_void>();
                hdr.msg_namelen = addr_len;
                hdr.msg_iov = &mut iovs[count];
                hdr.msg_iovlen = 1;
                hdr.msg_flags = 0;
                // Every field is set: the arrays keep what the last flush put there.
                if run > 1 {
                    cmsgs[count].data = u16::try_from(len).unwrap_or(u16::MAX);
                    hdr.msg_control = (&mut cmsgs[count] as *mut Cmsg<u16>).cast::<c_void>();
                    hdr.msg_controllen = mem::size_of::<Cmsg<u16>>() as _;
                } else {
                    hdr.msg_control = std::ptr::null_mut();
                    hdr.msg_controllen = 0;
                }
                spans[count] = run;
                count += 1;
                at += run;
            }
            if count == 0 {
                given_up = Some(io::Error::other("send queue is inconsistent"));
                break;
            }
            // SAFETY: `msgs[..count]` are initialised mmsghdrs, every field set above, whose
            // names, iovecs and control messages point into `addrs`, `iovs`, `cmsgs` and the
            // queue's bytes, all alive and of the stated lengths until the call returns;
            // sendmmsg only reads them (and writes each `msg_len`).
            let result = unsafe {
                syscall!(sendmmsg(
                    self.socket.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    count as c_uint,
                    0
                ))
            };
            match result {
                Ok(sent) => {
                    let sent = usize::try_from(sent).unwrap_or(0).min(count);
                    if sent == 0 {
                        given_up = Some(io::Error::other("sendmmsg sent nothing"));
                        break;
                    }
                    if spans[..sent].iter().any(|&run| run > 1) {
                        q.gso_refusals = 0;
                        q.gso_pause = GSO_PAUSE;
                    }
                    next += spans[..sent].iter().sum::<usize>();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if spans[0] > 1 && is_gso_refusal(&e) => {
                    singly_before = next + spans[0];
                    q.gso_refusals = q.gso_refusals.saturating_add(1);
                    if q.gso_refusals >= GSO_REFUSALS_BEFORE_PAUSE {
                        let pause = q.gso_pause;
                        q.gso_paused_until = Some(std::time::Instant::now() + pause);
                        q.gso_pause = (pause * 2).min(GSO_PAUSE_MAX);
                        // The runs left in this flush go singly too: the pause starts now,
                        // and is logged once; at info only if GSO worked since the last one
                        // (a cause that stays would log it at every pause's end).
                        gso = false;
                        if pause == GSO_PAUSE {
                            #[cfg(test)]
                            {
                                q.gso_pauses_told += 1;
                            }
                            info!("UDP GSO refused by the kernel {GSO_REFUSALS_BEFORE_PAUSE} times in a row ({e}): sending datagrams one by one for {} s, then longer while it is still refused", pause.as_secs());
                        } else {
                            debug!(
                                "UDP GSO still refused ({e}): datagrams one by one for {} s",
                                pause.as_secs()
                            );
                        }
                    } else {
                        debug!(
                            "UDP GSO refused for a run to {} ({e}): sent datagram by datagram",
                            entries_dest(&q, next)
                        );
                    }
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    given_up = Some(e);
                    break;
                }
                Err(e) => {
                    q.fail(next, spans[0], e);
                    next += spans[0];
                }
            }
        }
        if next < total {
            // Given up, or the rounds ran out (only a run of interrupted blocking sends, in the
            // Close flush at exit, can do that): what is left is counted as dropped, not lost
            // unseen.
            let e = given_up.unwrap_or_else(|| io::Error::from(io::ErrorKind::Interrupted));
            q.fail(next, total - next, e);
        }
        q.entries.clear();
        q.used = 0;
        self.queue = Some(q);
    }

    /// Sends the raw socket's queue of control messages, if any (`--kernel-path`): one it
    /// refuses goes through the UDP socket; one that fails there too is counted with the
    /// queue's failures.
    fn send_raw_queued(&mut self) {
        let Some(raw) = self.control_raw.as_mut().filter(|raw| raw.queued() > 0) else {
            return;
        };
        let socket = &self.socket;
        let is_ipv6 = self.is_ipv6;
        let queue = &mut self.queue;
        raw.flush(|payload, to| {
            let sent = socket.send_to(payload, wire_addr(is_ipv6, SocketAddr::V4(to)));
            let error = match sent {
                Ok(n) if n == payload.len() => return,
                Ok(_) => io::Error::new(io::ErrorKind::WriteZero, "short UDP send"),
                Err(e) => e,
            };
            if let Some(q) = queue.as_mut() {
                q.fail_one(SocketAddr::V4(to), payload.len(), error);
            }
        });
    }

    /// The address to hand to the kernel for the peer `to`.
    fn wire_addr(&self, to: SocketAddr) -> SocketAddr {
        wire_addr(self.is_ipv6, to)
    }
}

/// The address to hand to the kernel for the peer `to`, on an `AF_INET6` socket if
/// `is_ipv6`.
fn wire_addr(is_ipv6: bool, to: SocketAddr) -> SocketAddr {
    match (is_ipv6, to) {
        (true, SocketAddr::V4(a)) => {
            SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
        }
        (false, SocketAddr::V6(_)) => unmap(to),
        _ => to,
    }
}

/// GSO messages refused in a row, none taken between, after which GSO rests ...
pub const GSO_REFUSALS_BEFORE_PAUSE: u32 = 64;
/// ... for this long, and twice as long after each pause that ended with no GSO message
/// taken ...
pub const GSO_PAUSE: std::time::Duration = std::time::Duration::from_secs(10);
/// ... up to this.
pub const GSO_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(640);

/// The destination of the queued entry `at` (for a log line).
fn entries_dest(q: &SendQueue, at: usize) -> String {
    q.entries
        .get(at)
        .map_or_else(String::new, |(_, _, to)| unmap(*to).to_string())
}

/// Errors with which the kernel refuses a GSO message it would take as single datagrams.
fn is_gso_refusal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::EIO | libc::EMSGSIZE | libc::EOPNOTSUPP)
    )
}

impl Socket for UdpSocket {
    /// Sends one datagram, or queues it if batching is on; IPv4 peers are written v4-mapped
    /// on a dual-stack socket.
    // HOT PATH
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let to = self.wire_addr(to);
        if let Some(q) = self.queue.as_ref() {
            if datagram.len() <= q.bytes.len() {
                if q.used + datagram.len() > q.bytes.len()
                    || q.entries.len() >= SEND_QUEUE_DATAGRAMS
                {
                    self.send_queued();
                }
                if let Some(q) = self.queue.as_mut() {
                    let start = q.used;
                    if let Some(slot) = q.bytes.get_mut(start..start + datagram.len()) {
                        slot.copy_from_slice(datagram);
                        q.used += datagram.len();
                        q.entries.push((start, datagram.len(), to));
                        return Ok(());
                    }
                }
            }
        }
        let sent = self.socket.send_to(datagram, to)?;
        if sent == datagram.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "short UDP send"))
        }
    }

    /// With `--kernel-path` ([`UdpSocket::send_control_without_checksums`]), a control
    /// message to an IPv4 peer is queued for the raw socket, which sends it after the UDP
    /// socket's queue, without a checksum (both queues are sent first if the raw one is
    /// full); one the raw socket cannot take (too long), or any without batching, goes as
    /// any other datagram.
    fn send_control_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        if let (Some(raw), SocketAddr::V4(v4), true, false) = (
            &self.control_raw,
            to,
            self.queue.is_some(),
            self.control_raw_paused,
        ) {
            if raw.is_full() {
                self.send_queued();
                self.send_raw_queued();
            }
            if self
                .control_raw
                .as_mut()
                .is_some_and(|raw| raw.queue(datagram, v4))
            {
                return Ok(());
            }
        }
        self.send_to(datagram, to)
    }

    /// While `as_frames`, control messages keep their checksums and go through the UDP
    /// socket, whatever [`UdpSocket::send_control_without_checksums`] set.
    fn control_as_frames(&mut self, as_frames: bool) {
        self.control_raw_paused = as_frames;
    }

    /// Sends what `send_to` queued (see [`UdpSocket::enable_batching`]).
    // HOT PATH
    fn flush(&mut self) -> Result<(), FlushError> {
        self.send_queued();
        self.send_raw_queued();
        let Some(q) = self.queue.as_mut() else {
            return Ok(());
        };
        match q.first_error.take() {
            None => {
                // (What an earlier failure left, if nobody asked for it: forgotten.)
                q.failed_to.clear();
                Ok(())
            }
            Some(error) => Err(FlushError {
                dropped: mem::take(&mut q.failed),
                would_block: mem::take(&mut q.would_block),
                dropped_bytes: mem::take(&mut q.failed_bytes),
                error,
            }),
        }
    }

    fn drain_failed(&mut self, f: &mut dyn FnMut(SocketAddr, u64, u64)) {
        if let Some(q) = self.queue.as_mut() {
            for (to, len) in q.failed_to.drain(..) {
                f(to, 1, len as u64);
            }
        }
    }
}
