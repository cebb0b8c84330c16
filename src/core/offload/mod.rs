//! Segmentation offloads done in user space: pure code over byte slices, no I/O, no libc.
//!
//! A tap opened with `IFF_VNET_HDR` and `TUNSETOFFLOAD` hands ethcloud TCP and UDP
//! *super-frames* of up to 64 KiB with a [`vnet::VnetHdr`] in front, and accepts them back.
//! The wire never sees one: every datagram still carries exactly one real Ethernet frame no
//! larger than the overlay MTU, so nodes with and without offloads interoperate.
//!
//! - [`segment`] cuts a super-frame read from the tap into real frames (`gso_size` payload
//!   bytes each, the last one shorter) with correct IPv4/IPv6 lengths and IDs, TCP sequence
//!   numbers and flags, and full TCP/UDP checksums; it also completes a plain frame whose
//!   checksum the kernel left to us.
//! - [`coalesce`] does the reverse on the way to the tap: consecutive in-order TCP segments of
//!   one flow become one super-frame with a `GSO_TCPV4`/`GSO_TCPV6` header, so the kernel's
//!   TCP stack handles them as one packet (as Linux GRO and wireguard-go's TUN GRO do); with
//!   a tap that takes USO, runs of UDP datagrams of one flow become `GSO_UDP_L4` super-frames.
//! - [`checksum`] is the Internet checksum both use.
//! - [`flow`] hashes a frame's flow (the same for both directions), so that a multi-queue tap
//!   (`--threads`) is written each flow through one queue of its own.
//!
//! It owns header layouts and arithmetic only; opening the tap, the ioctls and the socket
//! options are in `sys`, and when to flush is decided by the daemon.

pub mod checksum;
pub mod coalesce;
pub mod flow;
pub mod segment;
pub mod vnet;

use core::fmt;

/// EtherType of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// EtherType of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// EtherType (TPID) of an 802.1Q VLAN tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// EtherType (TPID) of an 802.1ad service tag (QinQ).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;
/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Bytes of the fixed IPv6 header.
pub const IPV6_HEADER_LEN: usize = 40;
/// IPv6 next-header value of a hop-by-hop options header.
pub const IPV6_HOP_BY_HOP: u8 = 0;
/// IPv6 next-header value of a destination options header.
pub const IPV6_DEST_OPTIONS: u8 = 60;
/// IPv6 next-header value of a routing header.
pub const IPV6_ROUTING: u8 = 43;
/// The most IPv6 extension headers [`Layout::parse_past_ipv6_options`] walks past.
pub const MAX_IPV6_OPTION_HEADERS: usize = 4;
/// Where the checksum lies in a TCP header.
pub(crate) const TCP_CHECKSUM_OFFSET: u16 = 16;
/// Where the checksum lies in a UDP header.
pub(crate) const UDP_CHECKSUM_OFFSET: u16 = 6;
/// Bytes of a UDP header.
pub const UDP_HEADER_LEN: usize = 8;
/// The most VLAN tags in front of the IP header that are looked through.
pub const MAX_VLAN_TAGS: usize = 2;

/// Why a frame could not be segmented or coalesced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The frame ends inside its headers.
    Truncated,
    /// Not IPv4 or IPv6 (after at most [`MAX_VLAN_TAGS`] tags).
    NotIp,
    /// The IP header is malformed or carries another protocol than the offload says.
    BadIpHeader,
    /// A `gso_type` ethcloud does not handle.
    UnsupportedGso(u8),
    /// `gso_size` is 0.
    ZeroGsoSize,
    /// The checksum position lies outside the frame.
    BadChecksumOffset,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("super-frame ends inside its headers"),
            Error::NotIp => f.write_str("super-frame is not ipv4 or ipv6"),
            Error::BadIpHeader => f.write_str("super-frame has a malformed ip header"),
            Error::UnsupportedGso(t) => write!(f, "unsupported gso type {t}"),
            Error::ZeroGsoSize => f.write_str("gso size 0"),
            Error::BadChecksumOffset => f.write_str("checksum offset outside the frame"),
        }
    }
}

impl std::error::Error for Error {}

/// Where the headers of an IP frame start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the IP header (after the Ethernet header and any VLAN tags).
    pub l3: usize,
    /// Offset of the transport header.
    pub l4: usize,
    /// IPv6 rather than IPv4.
    pub is_ipv6: bool,
    /// The transport protocol ([`PROTO_TCP`] or [`PROTO_UDP`]).
    pub protocol: u8,
    /// An IPv6 routing header lies before the transport header
    /// ([`Layout::parse_past_ipv6_options`]): the pseudo-header's destination is then the
    /// route's final one, not the IPv6 header's.
    pub routed: bool,
}

impl Layout {
    /// Parses the Ethernet header (with up to [`MAX_VLAN_TAGS`] tags) and the IP header of
    /// `frame`. IPv4 options are allowed; IPv6 extension headers and IPv4 fragments are not.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`], [`Error::NotIp`] or [`Error::BadIpHeader`].
    pub fn parse(frame: &[u8]) -> Result<Layout, Error> {
        let (l3, is_ipv6) = ip_start(frame)?;
        let first = *frame.get(l3).ok_or(Error::Truncated)?;
        if is_ipv6 {
            if first >> 4 != 6 {
                return Err(Error::BadIpHeader);
            }
            let protocol = *frame.get(l3 + 6).ok_or(Error::Truncated)?;
            let l4 = l3 + IPV6_HEADER_LEN;
            if frame.len() < l4 {
                return Err(Error::Truncated);
            }
            Ok(Layout {
                l3,
                l4,
                is_ipv6,
                protocol,
                routed: false,
            })
        } else {
            let ihl = usize::from(first & 0x0f) * 4;
            if first >> 4 != 4 || ihl < 20 {
                return Err(Error::BadIpHeader);
            }
            let l4 = l3 + ihl;
            if frame.len() < l4 {
                return Err(Error::Truncated);
            }
            // More-fragments bit or a fragment offset: not a whole transport packet.
            if be16(frame, l3 + 6)? & 0x3fff != 0 {
                return Err(Error::BadIpHeader);
            }
            Ok(Layout {
                l3,
                l4,
                is_ipv6,
                protocol: frame[l3 + 9],
                routed: false,
            })
        }
    }

    /// [`Layout::parse`], then for IPv6 past hop-by-hop, destination options and routing
    /// headers (at most [`MAX_IPV6_OPTION_HEADERS`]) to the transport header, which the
    /// kernel's TSO and USO allow too. Only for cutting a super-frame: the headers before the
    /// transport one are copied into every segment as they are. A routing header makes the
    /// pseudo-header's destination the route's final one ([`Layout::routed`]); fragments are
    /// still refused.
    ///
    /// # Errors
    ///
    /// As [`Layout::parse`]; [`Error::Truncated`] for an option header past the frame's end.
    pub fn parse_past_ipv6_options(frame: &[u8]) -> Result<Layout, Error> {
        let mut layout = Layout::parse(frame)?;
        if !layout.is_ipv6 {
            return Ok(layout);
        }
        for _ in 0..MAX_IPV6_OPTION_HEADERS {
            if !matches!(
                layout.protocol,
                IPV6_HOP_BY_HOP | IPV6_DEST_OPTIONS | IPV6_ROUTING
            ) {
                break;
            }
            layout.routed |= layout.protocol == IPV6_ROUTING;
            let next = *frame.get(layout.l4).ok_or(Error::Truncated)?;
            let len = (usize::from(*frame.get(layout.l4 + 1).ok_or(Error::Truncated)?) + 1) * 8;
            if frame.len() < layout.l4 + len {
                return Err(Error::Truncated);
            }
            layout.protocol = next;
            layout.l4 += len;
        }
        Ok(layout)
    }

    /// The source and destination address bytes (4 or 16 each).
    pub fn addrs<'a>(&self, frame: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        let (src, dst) = if self.is_ipv6 {
            (self.l3 + 8..self.l3 + 24, self.l3 + 24..self.l3 + 40)
        } else {
            (self.l3 + 12..self.l3 + 16, self.l3 + 16..self.l3 + 20)
        };
        (
            frame.get(src).unwrap_or_default(),
            frame.get(dst).unwrap_or_default(),
        )
    }

    /// The pseudo-header sum for a transport packet of `l4_len` bytes. Its destination is
    /// the final one: for an IPv4 header with a source route whose hops are not used up, the
    /// route's last address, which the final receiver checks (RFC 9293 3.1, as Linux's TCP
    /// sums it; its UDP sums the first hop); otherwise the header's destination.
    pub fn pseudo_header(&self, frame: &[u8], l4_len: usize) -> u64 {
        let (src, mut dst) = self.addrs(frame);
        if !self.is_ipv6 {
            if let Some(last) = ipv4_route_end(frame.get(self.l3 + 20..self.l4).unwrap_or_default())
            {
                dst = last;
            }
        }
        checksum::pseudo_header(src, dst, self.protocol, l4_len)
    }
}

/// IPv4 option: the end of the option list.
const IPV4_OPTION_END: u8 = 0;
/// IPv4 option: no operation (one byte).
const IPV4_OPTION_NOP: u8 = 1;
/// IPv4 option: loose source and record route.
const IPV4_OPTION_LSRR: u8 = 131;
/// IPv4 option: strict source and record route.
const IPV4_OPTION_SSRR: u8 = 137;

/// The final destination a source route option in the IPv4 `options` names: the last
/// address of its route data, if the route still has hops to go (its pointer is at one of
/// the addresses). `None` without such an option, or if the options are malformed (then the
/// header's destination is used, and the checksum is as wrong as the frame).
fn ipv4_route_end(options: &[u8]) -> Option<&[u8]> {
    let mut at = 0;
    while let Some(&kind) = options.get(at) {
        match kind {
            IPV4_OPTION_END => return None,
            IPV4_OPTION_NOP => at += 1,
            _ => {
                let len = usize::from(*options.get(at + 1)?);
                let option = options.get(at..at + len)?;
                if len < 2 {
                    return None;
                }
                if matches!(kind, IPV4_OPTION_LSRR | IPV4_OPTION_SSRR) {
                    // Type, length, pointer (1-based, 4 at the first address), addresses.
                    let pointer = usize::from(*option.get(2)?);
                    if len < 7 || pointer < 4 || pointer + 3 > len {
                        return None;
                    }
                    return option.get(len - 4..);
                }
                at += len;
            }
        }
    }
    None
}

/// Where the IP header of `frame` starts, past at most [`MAX_VLAN_TAGS`] tags (802.1Q or
/// 802.1ad), and whether it is IPv6.
///
/// # Errors
///
/// [`Error::Truncated`] if the frame ends inside its EtherTypes; [`Error::NotIp`] for another
/// EtherType, or more tags.
pub(crate) fn ip_start(frame: &[u8]) -> Result<(usize, bool), Error> {
    let mut type_at = 12;
    for _ in 0..=MAX_VLAN_TAGS {
        match be16(frame, type_at)? {
            ETHERTYPE_VLAN | ETHERTYPE_QINQ => type_at += 4,
            ETHERTYPE_IPV4 => return Ok((type_at + 2, false)),
            ETHERTYPE_IPV6 => return Ok((type_at + 2, true)),
            _ => return Err(Error::NotIp),
        }
    }
    Err(Error::NotIp)
}

/// The big-endian `u16` at `at`.
fn be16(b: &[u8], at: usize) -> Result<u16, Error> {
    match b.get(at..at + 2) {
        Some(&[x, y]) => Ok(u16::from_be_bytes([x, y])),
        _ => Err(Error::Truncated),
    }
}

/// The big-endian `u32` at `at`.
fn be32(b: &[u8], at: usize) -> Result<u32, Error> {
    match b.get(at..at + 4) {
        Some(&[w, x, y, z]) => Ok(u32::from_be_bytes([w, x, y, z])),
        _ => Err(Error::Truncated),
    }
}

/// Writes `v` big-endian at `at` (nothing if it does not fit).
fn put16(b: &mut [u8], at: usize, v: u16) {
    if let Some(s) = b.get_mut(at..at + 2) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Writes `v` big-endian at `at` (nothing if it does not fit).
fn put32(b: &mut [u8], at: usize, v: u32) {
    if let Some(s) = b.get_mut(at..at + 4) {
        s.copy_from_slice(&v.to_be_bytes());
    }
}

/// Recomputes the IPv4 header checksum of the header `frame[l3..l4]`.
fn fix_ipv4_checksum(frame: &mut [u8], l3: usize, l4: usize) {
    put16(frame, l3 + 10, 0);
    let sum = checksum::finish(checksum::add(0, frame.get(l3..l4).unwrap_or_default()));
    put16(frame, l3 + 10, sum);
}

#[cfg(test)]
pub(crate) mod testing;
