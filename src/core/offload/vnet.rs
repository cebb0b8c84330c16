//! The virtio-net header (`struct virtio_net_hdr`, 10 bytes) that a tap opened with
//! `IFF_VNET_HDR` puts in front of every frame it reads and expects in front of every frame
//! written to it.
//!
//! Owns the layout only. Legacy virtio uses the host's byte order, and so does the tap unless
//! told otherwise (`TUNSETVNETLE`/`BE`, which ethcloud never sets).
//!
//! ```text
//! | flags: u8 | gso_type: u8 | hdr_len: u16 | gso_size: u16 | csum_start: u16 | csum_offset: u16 |
//! ```

/// Bytes of the header.
pub const VNET_HDR_LEN: usize = 10;

/// `flags`: the checksum from `csum_start` to the end still has to be computed and stored at
/// `csum_start + csum_offset` (the field holds the pseudo-header sum meanwhile).
pub const F_NEEDS_CSUM: u8 = 1;
/// `flags`: the checksums were already checked.
pub const F_DATA_VALID: u8 = 2;

/// `gso_type`: a plain frame.
pub const GSO_NONE: u8 = 0;
/// `gso_type`: a TCP/IPv4 super-frame to be cut into `gso_size`-byte segments.
pub const GSO_TCPV4: u8 = 1;
/// `gso_type`: UDP fragmentation offload (never enabled by ethcloud).
pub const GSO_UDP: u8 = 3;
/// `gso_type`: a TCP/IPv6 super-frame.
pub const GSO_TCPV6: u8 = 4;
/// `gso_type`: a UDP super-frame to be cut into `gso_size`-byte datagrams (USO).
pub const GSO_UDP_L4: u8 = 5;
/// `gso_type` bit: the TCP segments carry ECN (CWR only on the first).
pub const GSO_ECN: u8 = 0x80;

/// One virtio-net header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    /// [`F_NEEDS_CSUM`], [`F_DATA_VALID`].
    pub flags: u8,
    /// `GSO_*`.
    pub gso_type: u8,
    /// Bytes of all headers (a hint only; ethcloud parses the headers itself).
    pub hdr_len: u16,
    /// Payload bytes per segment.
    pub gso_size: u16,
    /// Where the checksummed part starts (the transport header), from the frame's start.
    pub csum_start: u16,
    /// Where the checksum field is, from `csum_start`.
    pub csum_offset: u16,
}

impl VnetHdr {
    /// Reads a header from the first [`VNET_HDR_LEN`] bytes of `buf`; `None` if it is shorter.
    pub fn parse(buf: &[u8]) -> Option<VnetHdr> {
        let b = buf.get(..VNET_HDR_LEN)?;
        let u16_at = |i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16_at(2),
            gso_size: u16_at(4),
            csum_start: u16_at(6),
            csum_offset: u16_at(8),
        })
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0u8; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
        b
    }

    /// True for a plain frame that needs nothing done.
    pub fn is_plain(&self) -> bool {
        self.gso_type == GSO_NONE && self.flags & F_NEEDS_CSUM == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vnet_hdr_round_trips_and_rejects_short_input() {
        let h = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_TCPV6,
            hdr_len: 86,
            gso_size: 1348,
            csum_start: 54,
            csum_offset: 16,
        };
        let b = h.to_bytes();
        assert_eq!(b[0], 1);
        assert_eq!(b[1], 4);
        assert_eq!(VnetHdr::parse(&b), Some(h));
        assert_eq!(VnetHdr::parse(&b[..9]), None);
        assert!(VnetHdr::default().is_plain());
        assert!(!h.is_plain());
    }
}
