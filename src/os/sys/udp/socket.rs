//! Creating the socket: `socket`, `IPV6_V6ONLY` off for a dual-stack bind, the socket
//! buffer sizes, `bind`, and probing the UDP offloads ([`UdpSocket::enable_offloads`]); plus
//! the socket's plain accessors.
//!
//! Owns the socket options and nothing on the packet path: sending is `send`'s, receiving
//! `recv`'s. Every fd is held in an [`OwnedFd`] from the moment `socket` returns it.

use std::io;
use std::mem;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use log::debug;

use super::{
    socklen, unmap, Families, RawControl, SockAddr, UdpOffloads, UdpSocket, SOCKET_BUF_LEN,
    UDP_GRO, UDP_SEGMENT,
};
use crate::error::Error;

/// Entries of the `SO_MEMINFO` array this code reads (`SK_MEMINFO_VARS` of `linux/sock_diag.h`).
const SK_MEMINFO_VARS: usize = 9;
/// Index of the socket's drop counter in it.
const SK_MEMINFO_DROPS: usize = 8;

pub(super) fn set_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
    value: libc::c_int,
) -> io::Result<()> {
    let value_ptr: *const libc::c_int = &value;
    // SAFETY: `fd` is an open socket borrowed for the call; `value_ptr` points to a live
    // `c_int` and the length passed is exactly its size.
    unsafe {
        syscall!(setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value_ptr.cast(),
            socklen::<libc::c_int>()
        ))
    }?;
    Ok(())
}

fn get_int_option(
    fd: BorrowedFd<'_>,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = socklen::<libc::c_int>();
    let (value_ptr, len_ptr): (*mut libc::c_int, *mut libc::socklen_t) = (&mut value, &mut len);
    // SAFETY: `fd` is an open socket borrowed for the call; `value_ptr` points to a writable
    // `c_int` and `len_ptr` to its exact size, so the kernel writes at most that many bytes.
    unsafe {
        syscall!(getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            value_ptr.cast(),
            len_ptr
        ))
    }?;
    Ok(value)
}

pub(super) fn bind_raw(fd: BorrowedFd<'_>, addr: &SocketAddr) -> io::Result<()> {
    let (sockaddr, len) = SockAddr::new(*addr);
    let ptr: *const SockAddr = &sockaddr;
    // SAFETY: `fd` is an open socket of `addr`'s family; `ptr` points to a `SockAddr` whose
    // variant for that family is fully initialised and outlives the call, and `len` is that
    // variant's exact size, so the kernel reads only initialised bytes.
    unsafe { syscall!(bind(fd.as_raw_fd(), ptr.cast(), len)) }?;
    Ok(())
}

/// Asks for bigger socket buffers: `SO_*BUFFORCE` (root may pass `net.core.*mem_max`), else
/// the plain option, which the kernel caps without an error (at `net.core.rmem_max`, 208 KiB
/// by default, where the process lacks `CAP_NET_ADMIN` in the host's namespace: a user
/// namespace's container, a non-root start on a persistent tap). Failure only costs
/// throughput under bursts, so a buffer that came out short is logged once per process, at
/// info, with what to raise.
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
    static TOLD: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let short = short_buffers(fd);
    if !short.is_empty() && !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
        for (what, got, sysctl) in short {
            log::info!(
                "the UDP socket's {what} buffer came out at {got} bytes, not {} (as the kernel \
                 counts them: {SOCKET_BUF_LEN} asked for; capped at net.core.{sysctl} without \
                 CAP_NET_ADMIN in the host's namespace): raise that sysctl, or bursts may be \
                 dropped",
                2 * SOCKET_BUF_LEN
            );
        }
    }
}

/// The socket buffers that came out smaller than [`grow_buffers`] asked for: (which, its
/// size as the kernel reports it, which is twice what it takes as data, the sysctl that caps
/// it).
pub(super) fn short_buffers(fd: BorrowedFd<'_>) -> Vec<(&'static str, usize, &'static str)> {
    [
        (libc::SO_RCVBUF, "receive", "rmem_max"),
        (libc::SO_SNDBUF, "send", "wmem_max"),
    ]
    .into_iter()
    .filter_map(|(name, what, sysctl)| {
        let got = get_int_option(fd, libc::SOL_SOCKET, name).ok()?;
        let got = usize::try_from(got).unwrap_or(0);
        (got < 2 * SOCKET_BUF_LEN).then_some((what, got, sysctl))
    })
    .collect()
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
        let raw = unsafe { syscall!(socket(domain, kind, 0)) }?;
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
            control_raw: None,
            control_raw_paused: false,
        })
    }

    /// For the last datagrams before exit (the Close messages): the socket blocks from now
    /// on, each send waiting at most `timeout` for room in its buffer, so that a buffer that
    /// a flood filled does not drop them all (non-blocking, they would fail at once with
    /// `EAGAIN`). Nothing may read or send through it afterwards on the hot path: this holds
    /// for every handle on it (see [`UdpSocket::try_clone`]).
    ///
    /// # Errors
    ///
    /// The OS error of `setsockopt` or `fcntl`.
    pub fn block_for_last_sends(&self, timeout: std::time::Duration) -> io::Result<()> {
        self.socket.set_write_timeout(Some(timeout))?;
        self.socket.set_nonblocking(false)
    }

    /// A second handle on the same socket (a duplicated fd), with its own send queue (off
    /// until [`UdpSocket::enable_batching`]) and the same offloads: a `--threads` lane sends
    /// through it. Datagrams sent through either leave from the same address and port.
    ///
    /// # Errors
    ///
    /// The OS error of `dup` (`EMFILE`, ...).
    pub fn try_clone(&self) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            socket: self.socket.try_clone()?,
            is_ipv6: self.is_ipv6,
            families: self.families,
            queue: None,
            offloads: self.offloads,
            control_raw: self
                .control_raw
                .as_ref()
                .map(RawControl::try_clone)
                .transpose()?,
            control_raw_paused: self.control_raw_paused,
        })
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

    /// From now on, control messages ([`Socket::send_control_to`](crate::io::Socket)) to
    /// IPv4 peers go out with a UDP checksum of 0, through the raw socket `raw`: with
    /// `--kernel-path`, whose peers with a kernel path recognise each other by them (RFC 768
    /// allows a checksum of 0 over IPv4). Frames keep their checksums, and UDP GSO. A control
    /// message the raw socket cannot send (over [`super::RAW_MAX_PAYLOAD`] bytes, a full
    /// buffer, ...) goes through the UDP socket, with a checksum.
    ///
    /// `raw` is a handle on the kernel path's raw socket (see [`RawControl::for_socket`]).
    pub fn send_control_without_checksums(&mut self, raw: RawControl) {
        self.control_raw = Some(raw);
    }

    /// Datagrams the kernel dropped on this socket before the daemon could read them, since it
    /// was created: the socket's drop counter (`SO_MEMINFO`, `SK_MEMINFO_DROPS`), which grows
    /// when a datagram finds the receive buffer full (and, rarely, for a bad UDP checksum). One
    /// `getsockopt`: read it now and then, not per packet.
    ///
    /// # Errors
    ///
    /// The OS error of `getsockopt` (`ENOPROTOOPT` before Linux 4.6).
    pub fn receive_drops(&self) -> io::Result<u32> {
        let mut meminfo = [0u32; SK_MEMINFO_VARS];
        let mut len = socklen::<[u32; SK_MEMINFO_VARS]>();
        let len_ptr: *mut libc::socklen_t = &mut len;
        // SAFETY: the socket is open for the duration of the call; `meminfo` is a writable
        // buffer of exactly `len` bytes and `len_ptr` points to that length, so the kernel
        // writes at most `len` bytes and stores the length it wrote.
        unsafe {
            syscall!(getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                meminfo.as_mut_ptr().cast(),
                len_ptr
            ))
        }?;
        let written = usize::try_from(len).unwrap_or(0) / mem::size_of::<u32>();
        if written <= SK_MEMINFO_DROPS {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "SO_MEMINFO without a drop counter",
            ));
        }
        Ok(meminfo[SK_MEMINFO_DROPS])
    }

    /// The offloads in force.
    pub fn offloads(&self) -> UdpOffloads {
        self.offloads
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
}

/// A kernel counter 32 bits wide (as the socket's drop count), read now and then, kept as a
/// 64-bit total that does not go back when the kernel's wraps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Widened {
    last: u32,
    total: u64,
}

impl Widened {
    /// Takes in a new reading of the counter (the first counts from 0) and returns the total.
    /// Readings must come often enough that the counter cannot wrap twice between two.
    pub fn update(&mut self, raw: u32) -> u64 {
        let grew = raw.wrapping_sub(self.last);
        self.last = raw;
        self.total = self.total.saturating_add(u64::from(grew));
        self.total
    }
}
