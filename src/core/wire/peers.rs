//! Peer-list body (spec: "Peer list", switch value 1). Owns parsing and emitting the body only;
//! which peers to send is decided in `peers`, never here.
//!
//! ```text
//! | n4: u8 | n4 × (ipv4[4] port[2]) | n6: u8 | n6 × (ipv6[16] port[2]) | (ignored trailing bytes)
//! ```
//! Addresses and ports are in network byte order (big-endian). Bytes after the IPv6 entries are
//! ignored, as a later protocol revision might append data there.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use super::Error;

/// Bytes of one IPv4 entry: address and port.
pub const V4_ENTRY_LEN: usize = 6;
/// Bytes of one IPv6 entry: address and port.
pub const V6_ENTRY_LEN: usize = 18;
/// The most entries of one family a list can claim (the count is a single byte).
pub const MAX_ENTRIES_PER_FAMILY: usize = 255;
/// The longest peer-list body ethcloud ever emits.
pub const MAX_PEER_LIST_BODY_LEN: usize =
    1 + MAX_ENTRIES_PER_FAMILY * V4_ENTRY_LEN + 1 + MAX_ENTRIES_PER_FAMILY * V6_ENTRY_LEN;

/// A checked view of a peer-list body: both counts are known to fit in the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerList<'a> {
    v4: &'a [u8],
    v6: &'a [u8],
}

impl<'a> PeerList<'a> {
    /// Checks the two counts against the body's length.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when a count byte is missing or claims more entries than follow.
    pub fn parse(body: &'a [u8]) -> Result<PeerList<'a>, Error> {
        let n4 = usize::from(*body.first().ok_or(Error::Truncated)?);
        let v4_end = 1 + n4 * V4_ENTRY_LEN;
        let v4 = body.get(1..v4_end).ok_or(Error::Truncated)?;
        let n6 = usize::from(*body.get(v4_end).ok_or(Error::Truncated)?);
        let v6_start = v4_end + 1;
        let v6 = body
            .get(v6_start..v6_start + n6 * V6_ENTRY_LEN)
            .ok_or(Error::Truncated)?;
        Ok(PeerList { v4, v6 })
    }

    /// Number of IPv4 entries.
    pub fn v4_len(&self) -> usize {
        self.v4.len() / V4_ENTRY_LEN
    }

    /// Number of IPv6 entries.
    pub fn v6_len(&self) -> usize {
        self.v6.len() / V6_ENTRY_LEN
    }

    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.v4_len() + self.v6_len()
    }

    /// True when the list holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entries, IPv4 first, in the order they appear. IPv6 entries keep their raw form:
    /// a v4-mapped address stays an IPv6 address here (the caller decides how to treat it).
    pub fn iter(&self) -> impl Iterator<Item = SocketAddr> + 'a {
        let v4 = self.v4.chunks_exact(V4_ENTRY_LEN).map(|e| {
            let mut ip = [0u8; 4];
            ip.copy_from_slice(e.get(..4).unwrap_or(&[0; 4]));
            let port = u16::from_be_bytes([byte(e, 4), byte(e, 5)]);
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))
        });
        let v6 = self.v6.chunks_exact(V6_ENTRY_LEN).map(|e| {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(e.get(..16).unwrap_or(&[0; 16]));
            let port = u16::from_be_bytes([byte(e, 16), byte(e, 17)]);
            SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0))
        });
        v4.chain(v6)
    }
}

fn byte(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

/// Writes a peer-list body into `buf`; returns the body length and how many addresses it holds.
///
/// Takes at most [`MAX_ENTRIES_PER_FAMILY`] addresses of each family from `addrs` (the rest are
/// skipped, never wrapped into the count byte) and stops early rather than overrun `buf`.
/// A buffer shorter than 2 bytes cannot hold a list: nothing is written and `(0, 0)` returned.
pub fn emit_peer_list<I>(addrs: I, buf: &mut [u8]) -> (usize, usize)
where
    I: Iterator<Item = SocketAddr> + Clone,
{
    // A valid list needs both count bytes; keep the last byte free for the IPv6 count.
    if buf.len() < 2 {
        return (0, 0);
    }
    let Some((n4_slot, rest)) = buf.split_first_mut() else {
        return (0, 0);
    };
    let v4_room = rest.len().saturating_sub(1);
    let mut n4 = 0usize;
    let mut pos = 0usize;
    for addr in addrs.clone() {
        if let SocketAddr::V4(a) = addr {
            if n4 == MAX_ENTRIES_PER_FAMILY || pos + V4_ENTRY_LEN > v4_room {
                break;
            }
            let Some(entry) = rest.get_mut(pos..pos + V4_ENTRY_LEN) else {
                break;
            };
            entry[..4].copy_from_slice(&a.ip().octets());
            entry[4..].copy_from_slice(&a.port().to_be_bytes());
            pos += V4_ENTRY_LEN;
            n4 += 1;
        }
    }
    *n4_slot = u8::try_from(n4).unwrap_or(u8::MAX);
    let Some((n6_slot, rest)) = rest.get_mut(pos..).and_then(|r| r.split_first_mut()) else {
        return (1 + pos, n4);
    };
    let mut n6 = 0usize;
    let mut pos6 = 0usize;
    for addr in addrs {
        if let SocketAddr::V6(a) = addr {
            if n6 == MAX_ENTRIES_PER_FAMILY {
                break;
            }
            let Some(entry) = rest.get_mut(pos6..pos6 + V6_ENTRY_LEN) else {
                break;
            };
            entry[..16].copy_from_slice(&a.ip().octets());
            entry[16..].copy_from_slice(&a.port().to_be_bytes());
            pos6 += V6_ENTRY_LEN;
            n6 += 1;
        }
    }
    *n6_slot = u8::try_from(n6).unwrap_or(u8::MAX);
    (1 + pos + 1 + pos6, n4 + n6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn peer_list_golden_bytes_parse() {
        // one IPv4 entry 198.18.0.1:3210, one IPv6 entry [fd00::1]:80
        let mut body = vec![1, 198, 18, 0, 1, 0x0c, 0x8a, 1];
        body.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80]);
        let list = PeerList::parse(&body).unwrap();
        let got: Vec<_> = list.iter().collect();
        assert_eq!(got, vec![v4("198.18.0.1:3210"), v4("[fd00::1]:80")]);
        assert_eq!((list.v4_len(), list.v6_len(), list.len()), (1, 1, 2));
    }

    #[test]
    fn peer_list_empty_is_two_zero_bytes() {
        let mut buf = [0xaa; 8];
        let (len, n) = emit_peer_list(core::iter::empty(), &mut buf);
        assert_eq!((len, n), (2, 0));
        assert_eq!(&buf[..2], &[0, 0]);
        assert!(PeerList::parse(&buf[..2]).unwrap().is_empty());
    }

    #[test]
    fn peer_list_round_trips_mixed_families() {
        let addrs = [
            v4("198.18.0.1:1"),
            v4("[fd00::2]:2"),
            v4("198.19.255.254:65535"),
            v4("[fd00::ffff]:3210"),
        ];
        let mut buf = [0u8; MAX_PEER_LIST_BODY_LEN];
        let (len, n) = emit_peer_list(addrs.iter().copied(), &mut buf);
        assert_eq!(n, 4);
        assert_eq!(len, 1 + 2 * 6 + 1 + 2 * 18);
        let got: Vec<_> = PeerList::parse(&buf[..len]).unwrap().iter().collect();
        assert_eq!(
            got,
            vec![addrs[0], addrs[2], addrs[1], addrs[3]],
            "IPv4 entries come first"
        );
    }

    #[test]
    fn peer_list_emit_caps_each_family_at_255() {
        let addrs: Vec<SocketAddr> = (0..300u32)
            .map(|i| SocketAddr::from((Ipv4Addr::from(0xc612_0000 + i), 1)))
            .chain(
                (0..300u16)
                    .map(|i| SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, i), 2))),
            )
            .collect();
        let mut buf = [0u8; MAX_PEER_LIST_BODY_LEN];
        let (len, n) = emit_peer_list(addrs.iter().copied(), &mut buf);
        assert_eq!(len, MAX_PEER_LIST_BODY_LEN);
        assert_eq!(n, 510);
        let list = PeerList::parse(&buf[..len]).unwrap();
        assert_eq!((list.v4_len(), list.v6_len()), (255, 255));
    }

    #[test]
    fn peer_list_emit_never_overruns_a_short_buffer() {
        let addrs = [v4("198.18.0.1:1"), v4("198.18.0.2:1"), v4("[fd00::1]:1")];
        for size in 0..64 {
            let mut buf = vec![0u8; size];
            let (len, n) = emit_peer_list(addrs.iter().copied(), &mut buf);
            assert!(len <= size);
            if size >= 2 {
                let list = PeerList::parse(&buf[..len]).unwrap();
                assert_eq!(list.len(), n, "size {size}");
            }
        }
    }

    #[test]
    fn peer_list_parse_rejects_every_truncation() {
        let addrs = [v4("198.18.0.1:1"), v4("[fd00::1]:1")];
        let mut buf = [0u8; 64];
        let (len, _) = emit_peer_list(addrs.iter().copied(), &mut buf);
        for cut in 0..len {
            assert_eq!(
                PeerList::parse(&buf[..cut]),
                Err(Error::Truncated),
                "cut {cut}"
            );
        }
        assert!(PeerList::parse(&buf[..len]).is_ok());
    }

    #[test]
    fn peer_list_parse_rejects_counts_beyond_payload() {
        assert_eq!(PeerList::parse(&[255, 0]), Err(Error::Truncated));
        assert_eq!(PeerList::parse(&[0, 1, 0, 0]), Err(Error::Truncated));
    }

    #[test]
    fn peer_list_parse_ignores_trailing_bytes() {
        let list = PeerList::parse(&[0, 0, 9, 9, 9]).unwrap();
        assert!(list.is_empty());
    }
}
