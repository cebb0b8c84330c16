//! [`UdpSocket`]: the non-blocking UDP socket every datagram goes through.
//!
//! Owns creating and binding the socket (dual-stack for an IPv6 listen address), the socket
//! buffer sizes, and the translation between plain IPv4 addresses (all the core ever sees) and
//! the v4-mapped IPv6 addresses a dual-stack socket uses on the wire. It does not parse
//! datagrams or decide where they go.
//!
//! Batching (turned on by the daemon with [`UdpSocket::enable_batching`]): `send_to` copies
//! each datagram into a queue that [`Socket::flush`] sends with one `sendmmsg`, and
//! [`UdpSocket::recv_batch`] receives up to [`RECV_SLOTS`] messages with one `recvmmsg`.
//! Offloads ([`UdpSocket::enable_offloads`], each probed, off with `--no-offload`): UDP GSO
//! (`UDP_SEGMENT`) sends a run of equal-sized datagrams to one peer as one message, and UDP
//! GRO (`UDP_GRO`) receives such runs as one message with their segment size. Either way each
//! datagram on the wire is an ordinary one, so peers without offloads see no difference.

use std::ffi::{c_int, c_uint, c_void};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use log::{debug, info};

use crate::error::Error;
use crate::io::{FlushError, Socket};

/// The socket buffer size asked for in each direction (best effort: the kernel may cap it).
pub const SOCKET_BUF_LEN: usize = 4 << 20;

/// Messages one `sendmmsg` call carries at most.
pub const SEND_BATCH: usize = 64;
/// Bytes the send queue holds; a `send_to` that does not fit sends the queue first.
pub const SEND_QUEUE_LEN: usize = 1 << 20;
/// Datagrams the send queue holds.
pub const SEND_QUEUE_DATAGRAMS: usize = 1024;
/// Messages one `recvmmsg` call receives at most.
pub const RECV_SLOTS: usize = 32;
/// Bytes per receive slot: room for a whole GRO message (64 KiB).
pub const RECV_SLOT_LEN: usize = 1 << 16;
/// Datagrams in one GSO message at most (the kernel's `UDP_MAX_SEGMENTS` is 64 or more).
pub const GSO_MAX_SEGMENTS: usize = 64;
/// Bytes in one GSO message at most (below the 65 507-byte UDP payload limit).
pub const GSO_MAX_BYTES: usize = 65_000;

/// `SOL_UDP` socket option: send with this segment size (`linux/udp.h`).
const UDP_SEGMENT: c_int = 103;
/// `SOL_UDP` socket option: receive coalesced datagrams (`linux/udp.h`).
const UDP_GRO: c_int = 104;

/// Which UDP offloads the socket uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpOffloads {
    /// Runs of datagrams to one peer go out as one GSO message.
    pub gso: bool,
    /// Runs of datagrams from one peer come in as one GRO message.
    pub gro: bool,
}

impl core::fmt::Display for UdpOffloads {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        write!(f, "gso {}, gro {}", on(self.gso), on(self.gro))
    }
}

/// A socket address as the kernel reads and writes it.
#[repr(C)]
#[derive(Clone, Copy)]
union SockAddr {
    v4: libc::sockaddr_in,
    v6: libc::sockaddr_in6,
}

impl SockAddr {
    fn zeroed() -> SockAddr {
        SockAddr {
            v6: libc::sockaddr_in6 {
                sin6_family: 0,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr { s6_addr: [0; 16] },
                sin6_scope_id: 0,
            },
        }
    }

    fn new(addr: SocketAddr) -> (SockAddr, libc::socklen_t) {
        match addr {
            SocketAddr::V4(a) => (
                SockAddr {
                    v4: libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: a.port().to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_ne_bytes(a.ip().octets()),
                        },
                        sin_zero: [0; 8],
                    },
                },
                socklen::<libc::sockaddr_in>(),
            ),
            SocketAddr::V6(a) => (
                SockAddr {
                    v6: libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: a.port().to_be(),
                        sin6_flowinfo: a.flowinfo(),
                        sin6_addr: libc::in6_addr {
                            s6_addr: a.ip().octets(),
                        },
                        sin6_scope_id: a.scope_id(),
                    },
                },
                socklen::<libc::sockaddr_in6>(),
            ),
        }
    }

    fn get(&self) -> Option<SocketAddr> {
        // SAFETY: both variants are plain integer structs and the union was fully
        // initialised (zeroed, then maybe written by the kernel), so any field reads a valid
        // value; `sin_family` and `sin6_family` share the first bytes.
        let family = c_int::from(unsafe { self.v4.sin_family });
        if family == libc::AF_INET {
            // SAFETY: as above; the kernel wrote an AF_INET address.
            let a = unsafe { self.v4 };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(a.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(a.sin_port),
            )))
        } else if family == libc::AF_INET6 {
            // SAFETY: as above; the kernel wrote an AF_INET6 address.
            let a = unsafe { self.v6 };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        } else {
            None
        }
    }
}

/// One control message with its data, laid out as `CMSG_SPACE(size_of::<T>())` bytes
/// (`cmsghdr` is a multiple of the alignment on Linux, so the data starts right behind it).
#[repr(C)]
#[derive(Clone, Copy)]
struct Cmsg<T: Copy> {
    hdr: libc::cmsghdr,
    data: T,
}

impl<T: Copy> Cmsg<T> {
    fn new(level: c_int, kind: c_int, data: T) -> Cmsg<T> {
        // SAFETY: `cmsghdr` is a plain C struct of integers; all zeroes is a valid value.
        let mut hdr: libc::cmsghdr = unsafe { mem::zeroed() };
        hdr.cmsg_len = (mem::size_of::<libc::cmsghdr>() + mem::size_of::<T>()) as _;
        hdr.cmsg_level = level;
        hdr.cmsg_type = kind;
        Cmsg { hdr, data }
    }
}

/// Datagrams queued by `send_to`, back to back, until the next flush.
struct SendQueue {
    bytes: Box<[u8]>,
    used: usize,
    /// (start in `bytes`, length, destination as the kernel sees it)
    entries: Vec<(usize, usize, SocketAddr)>,
    failed: u64,
    first_error: Option<io::Error>,
}

impl SendQueue {
    fn fail(&mut self, count: usize, error: io::Error) {
        self.failed += count as u64;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

/// Buffers for [`UdpSocket::recv_batch`]: [`RECV_SLOTS`] slots of [`RECV_SLOT_LEN`] bytes,
/// allocated once.
pub struct RecvBatch {
    bytes: Box<[u8]>,
    /// (length, segment length, sender) per received message.
    received: [(usize, usize, Option<SocketAddr>); RECV_SLOTS],
    count: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch::new()
    }
}

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

/// Which address families a socket bound to some listen address can talk to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Families {
    /// Can send to and receive from IPv4 peers.
    pub ipv4: bool,
    /// Can send to and receive from IPv6 peers.
    pub ipv6: bool,
}

impl Families {
    /// The families a socket bound to `listen` reaches: an IPv4 address reaches IPv4 only;
    /// the unspecified IPv6 address (`[::]`, dual-stack) reaches both; a specific IPv6 address
    /// reaches IPv6 only, except a v4-mapped one, which reaches IPv4 only.
    pub fn of(listen: &SocketAddr) -> Families {
        match listen {
            SocketAddr::V4(_) => Families {
                ipv4: true,
                ipv6: false,
            },
            SocketAddr::V6(a) if a.ip().is_unspecified() => Families {
                ipv4: true,
                ipv6: true,
            },
            SocketAddr::V6(a) if a.ip().to_ipv4_mapped().is_some() => Families {
                ipv4: true,
                ipv6: false,
            },
            SocketAddr::V6(_) => Families {
                ipv4: false,
                ipv6: true,
            },
        }
    }

    /// Whether `addr` is of a family this socket reaches.
    pub fn reaches(&self, addr: &SocketAddr) -> bool {
        match addr {
            SocketAddr::V4(_) => self.ipv4,
            SocketAddr::V6(_) => self.ipv6,
        }
    }
}

/// Turns a v4-mapped IPv6 address (`[::ffff:a.b.c.d]:p`) into the plain IPv4 one; leaves
/// every other address as it is.
pub fn unmap(addr: SocketAddr) -> SocketAddr {
    match addr {
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(ip) => SocketAddr::V4(SocketAddrV4::new(ip, a.port())),
            None => addr,
        },
        SocketAddr::V4(_) => addr,
    }
}

/// A bound, non-blocking UDP socket.
#[derive(Debug)]
pub struct UdpSocket {
    socket: std::net::UdpSocket,
    /// The socket is `AF_INET6`, so IPv4 destinations must be written v4-mapped.
    is_ipv6: bool,
    families: Families,
    /// `Some` once batching is on: `send_to` queues, `flush` sends.
    queue: Option<SendQueue>,
    offloads: UdpOffloads,
}

impl core::fmt::Debug for SendQueue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SendQueue")
            .field("queued", &self.entries.len())
            .finish()
    }
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let value_ptr: *const libc::c_int = &value;
    // SAFETY: `fd` is an open socket borrowed for the call; `value_ptr` points to a live
    // `c_int` and the length passed is exactly its size.
    syscall!(setsockopt(
        fd.as_raw_fd(),
        level,
        name,
        value_ptr.cast(),
        socklen::<libc::c_int>()
    ))?;
    Ok(())
}

fn bind_raw(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            let sin_ptr: *const libc::sockaddr_in = &sin;
            // SAFETY: `fd` is an open AF_INET socket; `sin_ptr` points to a fully initialised
            // `sockaddr_in` that outlives the call, and the length is its exact size.
            syscall!(bind(
                fd.as_raw_fd(),
                sin_ptr.cast(),
                socklen::<libc::sockaddr_in>()
            ))?;
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            let sin6_ptr: *const libc::sockaddr_in6 = &sin6;
            // SAFETY: `fd` is an open AF_INET6 socket; `sin6_ptr` points to a fully
            // initialised `sockaddr_in6` that outlives the call, and the length is its size.
            syscall!(bind(
                fd.as_raw_fd(),
                sin6_ptr.cast(),
                socklen::<libc::sockaddr_in6>()
            ))?;
        }
    }
    Ok(())
}

/// Asks for bigger socket buffers: `SO_*BUFFORCE` (root may pass `net.core.*mem_max`), else
/// the plain option, which the kernel caps. Failure only costs throughput, so it is logged.
fn grow_buffers(fd: BorrowedFd<'_>) {
    let len = libc::c_int::try_from(SOCKET_BUF_LEN).unwrap_or(libc::c_int::MAX);
    for (force, plain, what) in [
        (libc::SO_RCVBUFFORCE, libc::SO_RCVBUF, "receive"),
        (libc::SO_SNDBUFFORCE, libc::SO_SNDBUF, "send"),
    ] {
        if set_int_option(fd, libc::SOL_SOCKET, force, len).is_err() {
            if let Err(e) = set_int_option(fd, libc::SOL_SOCKET, plain, len) {
                debug!("cannot set the socket {what} buffer to {len} bytes: {e}");
            }
        }
    }
}

impl UdpSocket {
    /// Creates a non-blocking UDP socket bound to `addr`. An IPv6 address is bound with
    /// `IPV6_V6ONLY` off, so `[::]:port` serves IPv4 peers too. Socket buffers of
    /// [`SOCKET_BUF_LEN`] are asked for (best effort).
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] if the socket cannot be created, configured or bound.
    pub fn bind(addr: SocketAddr) -> Result<UdpSocket, Error> {
        Self::bind_io(&addr).map_err(|source| Error::Bind { addr, source })
    }

    fn bind_io(addr: &SocketAddr) -> io::Result<UdpSocket> {
        let is_ipv6 = addr.is_ipv6();
        let domain = if is_ipv6 {
            libc::AF_INET6
        } else {
            libc::AF_INET
        };
        let kind = libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes plain integers and returns a new fd or -1.
        let raw = syscall!(socket(domain, kind, 0))?;
        // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if is_ipv6 {
            set_int_option(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 0)?;
        }
        grow_buffers(fd.as_fd());
        bind_raw(fd.as_fd(), addr)?;
        Ok(UdpSocket {
            socket: std::net::UdpSocket::from(fd),
            is_ipv6,
            families: Families::of(addr),
            queue: None,
            offloads: UdpOffloads::default(),
        })
    }

    /// From now on `send_to` queues datagrams (copied) and [`Socket::flush`] sends them with
    /// as few `sendmmsg` calls as possible. Allocates the queue once.
    pub fn enable_batching(&mut self) {
        if self.queue.is_none() {
            self.queue = Some(SendQueue {
                bytes: vec![0u8; SEND_QUEUE_LEN].into_boxed_slice(),
                used: 0,
                entries: Vec::with_capacity(SEND_QUEUE_DATAGRAMS),
                failed: 0,
                first_error: None,
            });
        }
    }

    /// Turns on UDP GSO (used by batched sends) and UDP GRO (used by
    /// [`UdpSocket::recv_batch`]) where the kernel supports them, and returns which are on.
    pub fn enable_offloads(&mut self) -> UdpOffloads {
        let fd = self.socket.as_fd();
        // Segment size 0 means "none by default": this only probes that the option exists.
        let gso = set_int_option(fd, libc::SOL_UDP, UDP_SEGMENT, 0).is_ok();
        let gro = set_int_option(fd, libc::SOL_UDP, UDP_GRO, 1).is_ok();
        self.offloads = UdpOffloads { gso, gro };
        self.offloads
    }

    /// The offloads in force.
    pub fn offloads(&self) -> UdpOffloads {
        self.offloads
    }

    /// Datagrams waiting in the send queue.
    pub fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, |q| q.entries.len())
    }

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
        // SAFETY: mmsghdr and iovec are plain C structs; all zeroes (null pointers, zero
        // lengths) is a valid value.
        let mut msgs: [libc::mmsghdr; RECV_SLOTS] = unsafe { mem::zeroed() };
        // SAFETY: as above.
        let mut iovs: [libc::iovec; RECV_SLOTS] = unsafe { mem::zeroed() };
        let mut addrs = [SockAddr::zeroed(); RECV_SLOTS];
        let mut cmsgs = [Cmsg::<c_int>::new(0, 0, 0); RECV_SLOTS];
        for ((((msg, iov), addr), cmsg), slot) in msgs
            .iter_mut()
            .zip(iovs.iter_mut())
            .zip(addrs.iter_mut())
            .zip(cmsgs.iter_mut())
            .zip(batch.bytes.chunks_exact_mut(RECV_SLOT_LEN))
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
        // control buffers point into `iovs`, `addrs`, `cmsgs` and `batch.bytes`, all alive
        // and of the stated lengths until the call returns; the kernel writes only within
        // them. A null timeout is allowed.
        let n = syscall!(recvmmsg(
            self.socket.as_raw_fd(),
            msgs.as_mut_ptr(),
            RECV_SLOTS as c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut()
        ))?;
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
            let segment_len = if has_gro {
                usize::try_from(cmsg.data).unwrap_or(len)
            } else {
                len
            };
            let from = if is_truncated {
                debug!("dropped a truncated UDP message of more than {RECV_SLOT_LEN} bytes");
                None
            } else {
                addrs[i].get().map(unmap)
            };
            batch.received[i] = (len.min(RECV_SLOT_LEN), segment_len, from);
        }
        batch.count = n;
        Ok(n)
    }

    /// Sends everything queued: runs of equal-sized datagrams to one peer as one GSO message
    /// (if on), up to [`SEND_BATCH`] messages per `sendmmsg`. A failed message is dropped and
    /// counted; a full socket buffer drops the rest of the queue. If the kernel refuses a GSO
    /// message (e.g. a segment above the path MTU), GSO is turned off for good and the run
    /// is sent again datagram by datagram.
    // HOT PATH
    fn send_queued(&mut self) {
        let Some(mut q) = self.queue.take() else {
            return;
        };
        let total = q.entries.len();
        let mut next = 0;
        // Each round sends at least one message, drops one, or turns GSO off (once).
        for _ in 0..2 * total + 2 {
            if next >= total {
                break;
            }
            // SAFETY: plain C structs; all zeroes (null pointers, zero lengths) is valid.
            let mut msgs: [libc::mmsghdr; SEND_BATCH] = unsafe { mem::zeroed() };
            // SAFETY: as above.
            let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { mem::zeroed() };
            let mut addrs = [SockAddr::zeroed(); SEND_BATCH];
            let mut cmsgs = [Cmsg::<u16>::new(libc::SOL_UDP, UDP_SEGMENT, 0); SEND_BATCH];
            let mut spans = [0usize; SEND_BATCH];
            let mut count = 0;
            let mut at = next;
            while count < SEND_BATCH && at < total {
                let (start, len, to) = q.entries[at];
                let mut run = 1;
                let mut bytes = len;
                if self.offloads.gso {
                    while at + run < total && run < GSO_MAX_SEGMENTS {
                        let (_, prev_len, _) = q.entries[at + run - 1];
                        let (_, next_len, next_to) = q.entries[at + run];
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
                let Some(slice) = q.bytes.get(start..start + bytes) else {
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
                if run > 1 {
                    cmsgs[count].data = u16::try_from(len).unwrap_or(u16::MAX);
                    hdr.msg_control = (&mut cmsgs[count] as *mut Cmsg<u16>).cast::<c_void>();
                    hdr.msg_controllen = mem::size_of::<Cmsg<u16>>() as _;
                }
                spans[count] = run;
                count += 1;
                at += run;
            }
            if count == 0 {
                q.fail(total - next, io::Error::other("send queue is inconsistent"));
                break;
            }
            // SAFETY: `msgs[..count]` are initialised mmsghdrs whose names, iovecs and
            // control messages point into `addrs`, `iovs`, `cmsgs` and `q.bytes`, all alive
            // and of the stated lengths until the call returns; sendmmsg only reads them.
            let result = syscall!(sendmmsg(
                self.socket.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as c_uint,
                0
            ));
            match result {
                Ok(sent) => {
                    let sent = usize::try_from(sent).unwrap_or(0).min(count);
                    if sent == 0 {
                        q.fail(total - next, io::Error::other("sendmmsg sent nothing"));
                        break;
                    }
                    next += spans[..sent].iter().sum::<usize>();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if spans[0] > 1 && is_gso_refusal(&e) => {
                    self.offloads.gso = false;
                    info!("UDP GSO refused by the kernel ({e}): sending datagrams one by one from now on");
                }
                Err(e)
                    if e.kind() == io::ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    q.fail(total - next, e);
                    break;
                }
                Err(e) => {
                    q.fail(spans[0], e);
                    next += spans[0];
                }
            }
        }
        q.entries.clear();
        q.used = 0;
        self.queue = Some(q);
    }

    /// The address the socket is bound to (with the real port if 0 was asked for), unmapped.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockname`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr().map(unmap)
    }

    /// The address families this socket can reach.
    pub fn families(&self) -> Families {
        self.families
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

    /// The address to hand to the kernel for the peer `to`.
    fn wire_addr(&self, to: SocketAddr) -> SocketAddr {
        match (self.is_ipv6, to) {
            (true, SocketAddr::V4(a)) => {
                SocketAddr::V6(SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0))
            }
            (false, SocketAddr::V6(_)) => unmap(to),
            _ => to,
        }
    }
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

    /// Sends what `send_to` queued (see [`UdpSocket::enable_batching`]).
    // HOT PATH
    fn flush(&mut self) -> Result<(), FlushError> {
        self.send_queued();
        let Some(q) = self.queue.as_mut() else {
            return Ok(());
        };
        match q.first_error.take() {
            None => Ok(()),
            Some(error) => Err(FlushError {
                dropped: mem::take(&mut q.failed),
                error,
            }),
        }
    }
}

impl AsFd for UdpSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for UdpSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn families_follow_the_listen_address() {
        let both = Families {
            ipv4: true,
            ipv6: true,
        };
        assert_eq!(Families::of(&addr("[::]:3210")), both);
        assert!(!Families::of(&addr("0.0.0.0:3210")).ipv6);
        assert!(!Families::of(&addr("[fd00::1]:3210")).ipv4);
        assert!(!Families::of(&addr("[::ffff:198.18.0.1]:3210")).ipv6);
    }

    #[test]
    fn unmap_turns_v4_mapped_into_plain_ipv4() {
        assert_eq!(unmap(addr("[::ffff:198.18.0.1]:7")), addr("198.18.0.1:7"));
        assert_eq!(unmap(addr("[fd00::1]:7")), addr("[fd00::1]:7"));
        assert_eq!(unmap(addr("198.18.0.1:7")), addr("198.18.0.1:7"));
    }

    #[test]
    fn dual_stack_socket_talks_to_ipv4_and_reports_plain_ipv4_senders() {
        let mut v6 = UdpSocket::bind(addr("[::]:0")).unwrap();
        let mut v4 = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let v6_port = v6.local_addr().unwrap().port();
        let v4_addr = v4.local_addr().unwrap();
        assert_eq!(v4_addr.ip().to_string(), "127.0.0.1");

        v6.send_to(b"ping", v4_addr).unwrap();
        let mut buf = [0u8; 16];
        let (len, from) = recv_blocking(&mut v4, &mut buf);
        assert_eq!(&buf[..len], b"ping");
        assert_eq!(from, addr(&format!("127.0.0.1:{v6_port}")));

        v4.send_to(b"pong", addr(&format!("127.0.0.1:{v6_port}")))
            .unwrap();
        let (len, from) = recv_blocking(&mut v6, &mut buf);
        assert_eq!(&buf[..len], b"pong");
        assert_eq!(
            from, v4_addr,
            "v4-mapped sender must come back as plain IPv4"
        );
    }

    #[test]
    fn empty_socket_reports_would_block() {
        let mut socket = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let err = socket.recv_from(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    fn bind_to_foreign_address_fails_with_context() {
        let err = UdpSocket::bind(addr("198.18.255.254:3210")).unwrap_err();
        assert!(matches!(err, Error::Bind { .. }), "{err}");
    }

    /// Receives with `recv_batch` until `count` datagrams arrived (cut by segment size).
    fn recv_datagrams(socket: &mut UdpSocket, count: usize) -> Vec<(SocketAddr, Vec<u8>)> {
        let mut batch = RecvBatch::new();
        let mut got = Vec::new();
        for _ in 0..1000 {
            match socket.recv_batch(&mut batch) {
                Ok(n) => {
                    for i in 0..n {
                        let (from, bytes, segment_len) = batch.get(i).unwrap();
                        for d in bytes.chunks(segment_len) {
                            got.push((from, d.to_vec()));
                        }
                    }
                    if got.len() >= count {
                        return got;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("recv_batch failed: {e}"),
            }
        }
        panic!("only {} of {count} datagrams within a second", got.len());
    }

    #[test]
    fn batched_sends_with_gso_arrive_as_the_same_datagrams_with_and_without_gro() {
        let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        tx.enable_batching();
        let offloads = tx.enable_offloads();
        let mut with_gro = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        with_gro.enable_offloads();
        let mut without = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        let from = tx.local_addr().unwrap();
        let mut want = Vec::new();
        for i in 0..10u8 {
            want.push(vec![i; 1000]);
        }
        want.push(vec![10; 333]);
        for rx in [&mut with_gro, &mut without] {
            let to = rx.local_addr().unwrap();
            for d in &want {
                tx.send_to(d, to).unwrap();
            }
            assert_eq!(tx.queued(), want.len(), "{offloads}");
            tx.flush().unwrap();
            assert_eq!(tx.queued(), 0);
            let got = recv_datagrams(rx, want.len());
            assert_eq!(got.len(), want.len());
            for ((f, d), w) in got.iter().zip(&want) {
                assert_eq!(*f, from);
                assert_eq!(d, w);
            }
        }
    }

    #[test]
    fn flush_counts_datagrams_the_kernel_refuses() {
        let mut tx = UdpSocket::bind(addr("127.0.0.1:0")).unwrap();
        tx.enable_batching();
        // Port 0 cannot be sent to: every datagram fails, and the flush says how many.
        for _ in 0..3 {
            tx.send_to(b"x", addr("127.0.0.1:0")).unwrap();
        }
        let err = tx.flush().unwrap_err();
        assert_eq!(err.dropped, 3, "{}", err.error);
        assert!(tx.flush().is_ok(), "the failure is reported once");
    }

    fn recv_blocking(socket: &mut UdpSocket, buf: &mut [u8]) -> (usize, SocketAddr) {
        for _ in 0..1000 {
            match socket.recv_from(buf) {
                Ok(r) => return r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                Err(e) => panic!("recv failed: {e}"),
            }
        }
        panic!("nothing received within a second");
    }
}
