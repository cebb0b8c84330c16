//! [`UdpSocket`]: the non-blocking UDP socket every datagram goes through.
//!
//! Owns creating and binding the socket (dual-stack for an IPv6 listen address), the socket
//! buffer sizes, and the translation between plain IPv4 addresses (all the core ever sees) and
//! the v4-mapped IPv6 addresses a dual-stack socket uses on the wire. It does not parse
//! datagrams or decide where they go.
//!
//! Batching (turned on by the daemon with [`UdpSocket::enable_batching`]): `send_to` copies
//! each datagram into a queue that [`Socket::flush`](crate::io::Socket::flush) sends with
//! one `sendmmsg`, and [`UdpSocket::recv_batch`] receives up to [`RECV_SLOTS`] messages with
//! one `recvmmsg`.
//! Offloads ([`UdpSocket::enable_offloads`], each probed, off with `--no-offload`): UDP GSO
//! (`UDP_SEGMENT`) sends a run of equal-sized datagrams to one peer as one message, and UDP
//! GRO (`UDP_GRO`) receives such runs as one message with their segment size. Either way each
//! datagram on the wire is an ordinary one, so peers without offloads see no difference.
//!
//! The parts, one responsibility each:
//!
//! ```text
//! socket.rs  creating, configuring and binding the socket; options and offload probing
//! send.rs    the batched send queue: send_to, flush, sendmmsg with GSO
//! recv.rs    RecvBatch and receiving: recv_batch (recvmmsg with GRO) and recv_from
//! raw.rs     RawControl: control messages to IPv4 peers without a UDP checksum (--kernel-path)
//! tests.rs   the unit tests of the whole socket
//! ```
//!
//! This file holds the constants, the public types that are plain values ([`UdpOffloads`],
//! [`Families`]), the address translation, the [`UdpSocket`] struct itself and the kernel
//! layouts (`SockAddr`, `Cmsg`) that sending and receiving share; everything public is
//! re-exported here, so the rest of the crate names it `sys::udp::UdpSocket`, ...

use std::ffi::c_int;
use std::mem;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

mod raw;
mod recv;
mod send;
mod socket;
#[cfg(test)]
mod tests;

pub use raw::{RawControl, RAW_MAX_PAYLOAD, RAW_QUEUE};
pub use recv::RecvBatch;
use send::SendQueue;
pub use socket::Widened;

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

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
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
    /// `Some` with the kernel path: control messages to IPv4 peers go out through it,
    /// without a UDP checksum (see [`UdpSocket::send_control_without_checksums`]).
    control_raw: Option<RawControl>,
    /// While the kernel path stands aside: control messages keep their checksums.
    control_raw_paused: bool,
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
