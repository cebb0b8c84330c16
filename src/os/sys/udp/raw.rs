//! [`RawControl`]: control messages to IPv4 peers without a UDP checksum, for `--kernel-path`.
//!
//! Peers with a kernel path know each other by control messages that carry a UDP checksum of
//! 0 (see `crate::kpath`). `SO_NO_CHECK` would do that for every datagram of the socket, and
//! the kernel refuses UDP GSO without checksums, so the daemon's own frames would lose GSO.
//! Instead the control messages alone go out through a send-only raw socket
//! (`IPPROTO_RAW`, which never receives), with IPv4 and UDP headers written here: the same
//! source port as the UDP socket's, the source address the UDP socket would use (its bound
//! one, or the kernel's choice by route when it is bound to no address), and a checksum of
//! 0. Frames keep their checksums and GSO.
//!
//! Owns the raw socket and the two headers. It decides nothing about which datagrams are
//! control messages: [`super::UdpSocket`]'s `send_to` does.

use std::ffi::c_void;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::SockAddr;

/// IPv4 (20 bytes, no options) and UDP (8 bytes) headers.
const HEADERS_LEN: usize = 28;

/// The largest UDP payload sent this way: what fits in a 1500-byte IPv4 packet. A raw
/// socket does not fragment, so a longer message goes through the UDP socket, with a
/// checksum.
pub const RAW_MAX_PAYLOAD: usize = 1500 - HEADERS_LEN;

/// A send-only raw socket that sends UDP datagrams to IPv4 peers with a checksum of 0.
#[derive(Debug)]
pub struct RawControl {
    fd: OwnedFd,
    /// The source address written into each packet; unspecified lets the kernel choose it
    /// by route, as it does for a UDP socket bound to no address.
    source: Ipv4Addr,
    /// The UDP socket's port: the source port of each datagram.
    port: u16,
}

impl RawControl {
    /// Opens the raw socket (non-blocking; needs `CAP_NET_RAW`, which it keeps after a
    /// switch to `--user`: the kernel checks it only here).
    ///
    /// # Errors
    ///
    /// The OS error of `socket` (`EPERM` without `CAP_NET_RAW`).
    pub fn open(source: Ipv4Addr, port: u16) -> io::Result<RawControl> {
        let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes plain integers and returns a new fd or -1.
        let raw = unsafe { syscall!(socket(libc::AF_INET, kind, libc::IPPROTO_RAW)) }?;
        // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        Ok(RawControl { fd, source, port })
    }

    /// A second handle on the same raw socket (a duplicated fd).
    ///
    /// # Errors
    ///
    /// The OS error of `dup`.
    pub fn try_clone(&self) -> io::Result<RawControl> {
        Ok(RawControl {
            fd: self.fd.try_clone()?,
            source: self.source,
            port: self.port,
        })
    }

    /// Sends `payload` to `to` as one UDP datagram with a checksum of 0. The kernel fills in
    /// the IP header's length, identification, checksum and (if unspecified) source address.
    /// Nothing is allocated.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a payload over [`RAW_MAX_PAYLOAD`]; the OS error of `sendmsg`
    /// (`EAGAIN`, `EMSGSIZE` past the route's MTU, `EPERM` from the firewall, ...). The
    /// caller sends it through the UDP socket instead.
    pub fn send(&self, payload: &[u8], to: SocketAddrV4) -> io::Result<()> {
        if payload.len() > RAW_MAX_PAYLOAD {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let headers = headers(self.source, self.port, to, payload.len());
        let mut iov = [
            libc::iovec {
                iov_base: headers.as_ptr().cast_mut().cast::<c_void>(),
                iov_len: headers.len(),
            },
            libc::iovec {
                iov_base: payload.as_ptr().cast_mut().cast::<c_void>(),
                iov_len: payload.len(),
            },
        ];
        // Port 0: a raw socket takes only the address.
        let (mut addr, addr_len) =
            SockAddr::new(std::net::SocketAddr::V4(SocketAddrV4::new(*to.ip(), 0)));
        // SAFETY: msghdr is a plain C struct; all zeroes (null pointers, zero lengths) is valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = (&mut addr as *mut SockAddr).cast::<c_void>();
        msg.msg_namelen = addr_len;
        msg.msg_iov = iov.as_mut_ptr();
        msg.msg_iovlen = iov.len() as _;
        // SAFETY: `msg` points at `addr` and at the two iovecs, which point at `headers` and
        // `payload`; all are alive and of the stated lengths until the call returns, and
        // sendmsg only reads them.
        let sent = unsafe { syscall!(sendmsg(self.fd.as_raw_fd(), &msg, 0)) }?;
        if usize::try_from(sent).ok() == Some(HEADERS_LEN + payload.len()) {
            Ok(())
        } else {
            Err(io::Error::new(io::ErrorKind::WriteZero, "short raw send"))
        }
    }
}

/// The IPv4 and UDP headers of a datagram of `len` payload bytes from `source`:`port` to
/// `to`: no IP options, don't-fragment set, TTL 64, UDP checksum 0; the IP length,
/// identification and checksum 0 for the kernel to fill in.
fn headers(source: Ipv4Addr, port: u16, to: SocketAddrV4, len: usize) -> [u8; HEADERS_LEN] {
    let mut h = [0u8; HEADERS_LEN];
    h[0] = 0x45;
    h[6] = 0x40; // don't fragment
    h[8] = 64;
    h[9] = 17; // UDP
    h[12..16].copy_from_slice(&source.octets());
    h[16..20].copy_from_slice(&to.ip().octets());
    h[20..22].copy_from_slice(&port.to_be_bytes());
    h[22..24].copy_from_slice(&to.port().to_be_bytes());
    let udp_len = u16::try_from(8 + len).unwrap_or(u16::MAX);
    h[24..26].copy_from_slice(&udp_len.to_be_bytes());
    // h[26..28]: the UDP checksum, 0.
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_ipv4_and_udp_with_a_zero_checksum() {
        let to: SocketAddrV4 = "198.18.0.2:3210".parse().unwrap();
        let h = headers(Ipv4Addr::new(198, 18, 0, 1), 4000, to, 10);
        assert_eq!(
            h,
            [
                0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2, 0x0f,
                0xa0, 0x0c, 0x8a, 0, 18, 0, 0
            ]
        );
    }
}
