//! [`UdpSocket`]: the non-blocking UDP socket every datagram goes through.
//!
//! Owns creating and binding the socket (dual-stack for an IPv6 listen address), the socket
//! buffer sizes, and the translation between plain IPv4 addresses (all the core ever sees) and
//! the v4-mapped IPv6 addresses a dual-stack socket uses on the wire. It does not parse
//! datagrams or decide where they go.

use std::io;
use std::mem;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use log::debug;

use crate::error::Error;
use crate::io::Socket;

/// The socket buffer size asked for in each direction (best effort: the kernel may cap it).
pub const SOCKET_BUF_LEN: usize = 4 << 20;

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
        })
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

impl Socket for UdpSocket {
    /// Sends one datagram; IPv4 peers are written v4-mapped on a dual-stack socket.
    // HOT PATH
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let sent = self.socket.send_to(datagram, self.wire_addr(to))?;
        if sent == datagram.len() {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "short UDP send"))
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
