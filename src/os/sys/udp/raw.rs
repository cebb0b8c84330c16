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
//! control messages: the node says so (`Socket::send_control_to`), and
//! [`super::UdpSocket`] hands them here.

use std::ffi::c_void;
use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

use log::{debug, info};

use super::SockAddr;

/// IPv4 (20 bytes, no options) and UDP (8 bytes) headers.
const HEADERS_LEN: usize = 28;

/// The largest UDP payload sent this way: what fits in a 1500-byte IPv4 packet. A raw
/// socket does not fragment, so a longer message goes through the UDP socket, with a
/// checksum.
pub const RAW_MAX_PAYLOAD: usize = 1500 - HEADERS_LEN;

/// Control messages [`RawControl::queue`] holds until [`RawControl::flush`] at most.
pub const RAW_QUEUE: usize = 64;

/// A send-only raw socket that sends UDP datagrams to IPv4 peers with a checksum of 0.
#[derive(Debug)]
pub struct RawControl {
    fd: OwnedFd,
    /// The source address written into each packet, and the one the socket is bound to (so
    /// that routing rules by source address apply as they do to the UDP socket); unspecified
    /// lets the kernel choose it by route, as it does for a UDP socket bound to no address.
    source: Ipv4Addr,
    /// The UDP socket's port: the source port of each datagram.
    port: u16,
    /// The queued datagrams, headers and payload, each in a slot of
    /// [`HEADERS_LEN`] + [`RAW_MAX_PAYLOAD`] bytes (allocated once, at the first queue).
    slots: Vec<u8>,
    /// Each queued datagram's length (headers included) and destination, in order.
    queued: Vec<(usize, SocketAddrV4)>,
    /// A failure was logged at info (the later ones go to debug).
    failure_told: bool,
}

/// Bytes of a queue slot.
const SLOT: usize = HEADERS_LEN + RAW_MAX_PAYLOAD;

impl RawControl {
    /// Opens the raw socket (non-blocking; needs `CAP_NET_RAW`, which it keeps after a
    /// switch to `--user`: the kernel checks it only here), bound to `source` unless that is
    /// unspecified.
    ///
    /// # Errors
    ///
    /// The OS error of `socket` (`EPERM` without `CAP_NET_RAW`) or `bind`.
    pub fn open(source: Ipv4Addr, port: u16) -> io::Result<RawControl> {
        let kind = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
        // SAFETY: socket() takes plain integers and returns a new fd or -1.
        let raw = unsafe { syscall!(socket(libc::AF_INET, kind, libc::IPPROTO_RAW)) }?;
        // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if !source.is_unspecified() {
            let at = std::net::SocketAddr::V4(SocketAddrV4::new(source, 0));
            super::socket::bind_raw(fd.as_fd(), &at)?;
        }
        Ok(RawControl {
            fd,
            source,
            port,
            slots: Vec::new(),
            queued: Vec::new(),
            failure_told: false,
        })
    }

    /// [`RawControl::open`] for a UDP socket bound to `local`: its port, and its IPv4
    /// address (also v4-mapped) if it is bound to one.
    ///
    /// # Errors
    ///
    /// As [`RawControl::open`].
    pub fn for_socket(local: std::net::SocketAddr) -> io::Result<RawControl> {
        let source = match local.ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(ip) => ip.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED),
        };
        RawControl::open(source, local.port())
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
            slots: Vec::new(),
            queued: Vec::new(),
            failure_told: false,
        })
    }

    /// Queues `payload` for `to`, to be sent by [`RawControl::flush`] with a checksum of 0
    /// (the UDP socket's queue goes first: a Close stays after the frames before it). Returns
    /// false, and queues nothing, for a payload over [`RAW_MAX_PAYLOAD`] or a full queue:
    /// the caller sends it through the UDP socket.
    // HOT PATH (control messages only)
    pub fn queue(&mut self, payload: &[u8], to: SocketAddrV4) -> bool {
        let at = self.queued.len();
        if payload.len() > RAW_MAX_PAYLOAD || at >= RAW_QUEUE {
            return false;
        }
        if self.slots.is_empty() {
            self.slots = vec![0u8; RAW_QUEUE * SLOT];
            self.queued.reserve_exact(RAW_QUEUE);
        }
        let Some(slot) = self
            .slots
            .get_mut(at * SLOT..at * SLOT + HEADERS_LEN + payload.len())
        else {
            return false;
        };
        slot[..HEADERS_LEN].copy_from_slice(&headers(self.source, self.port, to, payload.len()));
        slot[HEADERS_LEN..].copy_from_slice(payload);
        self.queued.push((HEADERS_LEN + payload.len(), to));
        true
    }

    /// Datagrams waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queued.len()
    }

    /// Whether the queue holds [`RAW_QUEUE`] datagrams.
    pub fn is_full(&self) -> bool {
        self.queued.len() >= RAW_QUEUE
    }

    /// Sends the queue with as few `sendmmsg` calls as it takes; each datagram the kernel
    /// refuses goes to `fallback` (its payload and destination), which sends it through the
    /// UDP socket. The first refusal is logged at info, the others at debug.
    pub fn flush(&mut self, mut fallback: impl FnMut(&[u8], SocketAddrV4)) {
        let total = self.queued.len();
        let mut next = 0;
        // Each round sends at least one datagram or hands one to the fallback.
        for _ in 0..=total {
            if next >= total {
                break;
            }
            let count = total - next;
            // SAFETY: plain C structs; all zeroes (null pointers, zero lengths) is valid.
            let mut msgs: [libc::mmsghdr; RAW_QUEUE] = unsafe { mem::zeroed() };
            // SAFETY: as above.
            let mut iovs: [libc::iovec; RAW_QUEUE] = unsafe { mem::zeroed() };
            let mut addrs = [SockAddr::zeroed(); RAW_QUEUE];
            for i in 0..count {
                let (len, to) = self.queued[next + i];
                let slot = &self.slots[(next + i) * SLOT..(next + i) * SLOT + len];
                iovs[i].iov_base = slot.as_ptr().cast_mut().cast::<c_void>();
                iovs[i].iov_len = slot.len();
                let (addr, addr_len) =
                    SockAddr::new(std::net::SocketAddr::V4(SocketAddrV4::new(*to.ip(), 0)));
                addrs[i] = addr;
                let hdr = &mut msgs[i].msg_hdr;
                hdr.msg_name = (&mut addrs[i] as *mut SockAddr).cast::<c_void>();
                hdr.msg_namelen = addr_len;
                hdr.msg_iov = &mut iovs[i];
                hdr.msg_iovlen = 1;
            }
            // SAFETY: `msgs[..count]` are initialised mmsghdrs whose names and iovecs point
            // into `addrs`, `iovs` and `self.slots`, all alive and of the stated lengths until
            // the call returns; sendmmsg only reads them (and writes each `msg_len`).
            let sent = unsafe {
                syscall!(sendmmsg(
                    self.fd.as_raw_fd(),
                    msgs.as_mut_ptr(),
                    count as libc::c_uint,
                    0
                ))
            };
            match sent {
                Ok(n) if n > 0 => next += usize::try_from(n).unwrap_or(1).min(count),
                result => {
                    // The datagram at `next` was refused (or none was sent): it goes through
                    // the UDP socket.
                    let e = result
                        .err()
                        .unwrap_or_else(|| io::Error::other("sendmmsg sent nothing"));
                    let (len, to) = self.queued[next];
                    let payload = &self.slots[next * SLOT + HEADERS_LEN..next * SLOT + len];
                    if self.failure_told {
                        debug!("raw socket: a control message to {to} goes with a checksum: {e}");
                    } else {
                        self.failure_told = true;
                        info!(
                            "kernel path: a control message to {to} could not go through the \
                             raw socket ({e}); it is handed to the UDP socket instead, with a \
                             checksum (further cases at debug)"
                        );
                    }
                    fallback(payload, to);
                    next += 1;
                }
            }
        }
        self.queued.clear();
    }

    /// Sends `payload` to `to` at once as one UDP datagram from `source` (unspecified: the
    /// kernel's choice; the kernel fills in the IP header's length, identification, checksum
    /// and an unspecified source address), with a UDP checksum of 0 or, with `checksummed`,
    /// a real one, computed over `source`, which must then be the
    /// address the kernel sends from (the kernel path's heartbeats from a node whose tap
    /// forwards: see `crate::kpath`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a payload over [`RAW_MAX_PAYLOAD`]; the OS error of `sendmsg`
    /// (`EAGAIN`, `EMSGSIZE` past the route's MTU, `EPERM` from the firewall, ...).
    pub fn send_with(
        &self,
        payload: &[u8],
        to: SocketAddrV4,
        source: Ipv4Addr,
        checksummed: bool,
    ) -> io::Result<()> {
        if payload.len() > RAW_MAX_PAYLOAD {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let mut headers = headers(source, self.port, to, payload.len());
        if checksummed {
            let sum = udp_checksum(&headers, payload);
            headers[26..28].copy_from_slice(&sum.to_be_bytes());
        }
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

/// The UDP checksum of `payload` behind `headers` (whose own checksum field is 0): over the
/// pseudo-header, the UDP header and the payload; a computed 0 is sent as 0xffff (0 means
/// "none").
fn udp_checksum(headers: &[u8; HEADERS_LEN], payload: &[u8]) -> u16 {
    use crate::offload::checksum;
    let acc = checksum::pseudo_header(&headers[12..16], &headers[16..20], 17, 8 + payload.len());
    let acc = checksum::add(checksum::add(acc, &headers[20..28]), payload);
    match checksum::finish(acc) {
        0 => 0xffff,
        sum => sum,
    }
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

    #[test]
    fn a_checksummed_datagram_sums_to_all_ones() {
        use crate::offload::checksum;
        let to: SocketAddrV4 = "198.18.0.2:3210".parse().unwrap();
        for len in [0, 1, 8, 9, 200] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut h = headers(Ipv4Addr::new(198, 18, 0, 1), 4000, to, len);
            let sum = udp_checksum(&h, &payload);
            assert_ne!(sum, 0);
            h[26..28].copy_from_slice(&sum.to_be_bytes());
            let acc = checksum::pseudo_header(&h[12..16], &h[16..20], 17, 8 + len);
            let acc = checksum::add(checksum::add(acc, &h[20..28]), &payload);
            assert_eq!(checksum::fold(acc), 0xffff, "payload of {len} bytes");
        }
    }
}
