//! Ethernet frame view (spec: "Frame packet", switch value 0, and the 802.1Q paragraph).
//!
//! Owns reading the destination, source and VLAN id out of a frame's bytes. It never copies or
//! rewrites a frame: the switch forwards frames as they came, tags included (only the offload
//! edge, `crate::offload`, cuts, merges or leaves checksums to the kernel; see the man page's
//! PERFORMANCE).
//!
//! ```text
//! untagged: | dst[6] | src[6] | ethertype[2] | payload ...
//! tagged:   | dst[6] | src[6] | 0x8100[2] | pcp:3 dei:1 vid:12 [2] | ethertype[2] | payload ...
//! ```

use core::fmt;

use super::Error;

/// Length of a MAC address.
pub const MAC_LEN: usize = 6;
/// Length of an untagged Ethernet header (two MACs and the EtherType).
pub const ETHERNET_HEADER_LEN: usize = 14;
/// Length of an 802.1Q-tagged Ethernet header.
pub const TAGGED_HEADER_LEN: usize = 18;
/// The 802.1Q tag protocol identifier.
pub const TPID_8021Q: u16 = 0x8100;

mod field {
    use core::ops::Range;
    pub const DESTINATION: Range<usize> = 0..6;
    pub const SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const TCI: Range<usize> = 14..16;
}

/// A 48-bit Ethernet MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mac(pub [u8; MAC_LEN]);

impl Mac {
    /// The broadcast address `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Mac = Mac([0xff; MAC_LEN]);

    /// True for group addresses (multicast, which includes broadcast): the I/G bit is set.
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for `ff:ff:ff:ff:ff:ff`.
    pub fn is_broadcast(&self) -> bool {
        *self == Mac::BROADCAST
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A 12-bit 802.1Q VLAN id; untagged frames belong to VLAN 0.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct VlanId(u16);

impl VlanId {
    /// The VLAN of untagged frames.
    pub const UNTAGGED: VlanId = VlanId(0);

    /// Keeps the low 12 bits of `tci`, dropping priority and DEI bits.
    pub const fn new(tci: u16) -> VlanId {
        VlanId(tci & 0x0fff)
    }

    /// The id, 0..=4095.
    pub const fn get(self) -> u16 {
        self.0
    }
}

impl fmt::Display for VlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vlan {}", self.0)
    }
}

fn mac_at(bytes: &[u8], range: core::ops::Range<usize>) -> Mac {
    let mut mac = [0u8; MAC_LEN];
    if let Some(src) = bytes.get(range) {
        mac.copy_from_slice(src);
    }
    Mac(mac)
}

fn u16_at(bytes: &[u8], range: core::ops::Range<usize>) -> u16 {
    match bytes.get(range) {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        _ => 0,
    }
}

/// A checked, read-only view of an Ethernet frame.
///
/// The only way to build one is [`Frame::new_checked`]; afterwards no accessor can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Checks that `buffer` holds a whole Ethernet header, and the whole 802.1Q tag if the
    /// EtherType says there is one.
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooShort`] below 14 bytes, [`Error::TruncatedVlanTag`] for a frame whose
    /// TPID is 0x8100 but which ends before its tag and inner EtherType.
    pub fn new_checked(buffer: T) -> Result<Frame<T>, Error> {
        let bytes = buffer.as_ref();
        if bytes.len() < ETHERNET_HEADER_LEN {
            return Err(Error::FrameTooShort);
        }
        if u16_at(bytes, field::ETHERTYPE) == TPID_8021Q && bytes.len() < TAGGED_HEADER_LEN {
            return Err(Error::TruncatedVlanTag);
        }
        Ok(Frame { buffer })
    }

    /// The destination MAC.
    pub fn dst(&self) -> Mac {
        mac_at(self.buffer.as_ref(), field::DESTINATION)
    }

    /// The source MAC.
    pub fn src(&self) -> Mac {
        mac_at(self.buffer.as_ref(), field::SOURCE)
    }

    /// True when the frame carries an 802.1Q tag.
    pub fn is_tagged(&self) -> bool {
        u16_at(self.buffer.as_ref(), field::ETHERTYPE) == TPID_8021Q
    }

    /// The frame's VLAN: the tag's 12-bit id, or [`VlanId::UNTAGGED`] without a tag.
    /// A tag whose id is 0 (priority tag) maps to VLAN 0 as well.
    pub fn vlan(&self) -> VlanId {
        if self.is_tagged() {
            VlanId::new(u16_at(self.buffer.as_ref(), field::TCI))
        } else {
            VlanId::UNTAGGED
        }
    }

    /// The whole frame.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNTAGGED: [u8; 14] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst: broadcast
        0x02, 0, 0, 0, 0, 0x01, // src
        0x08, 0x06, // ARP
    ];
    const TAGGED: [u8; 18] = [
        0x02, 0, 0, 0, 0, 0x02, // dst
        0x02, 0, 0, 0, 0, 0x01, // src
        0x81, 0x00, // TPID
        0xe0, 0x0a, // PCP 7, VID 10
        0x08, 0x00, // IPv4
    ];

    #[test]
    fn frame_untagged_reads_macs_and_vlan_zero() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert!(f.dst().is_broadcast());
        assert!(f.dst().is_multicast());
        assert_eq!(f.src(), Mac([2, 0, 0, 0, 0, 1]));
        assert!(!f.src().is_multicast());
        assert_eq!(f.vlan(), VlanId::UNTAGGED);
        assert!(!f.is_tagged());
    }

    #[test]
    fn frame_tagged_reads_twelve_bit_vid_ignoring_priority() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert!(f.is_tagged());
        assert_eq!(f.vlan(), VlanId::new(10));
        assert_eq!(f.vlan().get(), 10);
        assert_eq!(f.dst(), Mac([2, 0, 0, 0, 0, 2]));
    }

    #[test]
    fn frame_tag_with_vid_zero_is_vlan_zero() {
        let mut bytes = TAGGED;
        bytes[14] = 0x20;
        bytes[15] = 0x00;
        let f = Frame::new_checked(&bytes[..]).unwrap();
        assert!(f.is_tagged());
        assert_eq!(f.vlan(), VlanId::UNTAGGED);
    }

    #[test]
    fn frame_rejects_every_truncation() {
        for len in 0..ETHERNET_HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&UNTAGGED[..len]),
                Err(Error::FrameTooShort)
            );
        }
        assert!(Frame::new_checked(&UNTAGGED[..]).is_ok());
        for len in ETHERNET_HEADER_LEN..TAGGED_HEADER_LEN {
            assert_eq!(
                Frame::new_checked(&TAGGED[..len]),
                Err(Error::TruncatedVlanTag)
            );
        }
        assert!(Frame::new_checked(&TAGGED[..]).is_ok());
    }

    #[test]
    fn mac_displays_lower_case_colon_separated() {
        assert_eq!(
            Mac([0xaa, 0xbb, 0xcc, 0x0d, 0xee, 0xff]).to_string(),
            "aa:bb:cc:0d:ee:ff"
        );
        assert_eq!(VlanId::new(0xf007).to_string(), "vlan 7");
    }
}
