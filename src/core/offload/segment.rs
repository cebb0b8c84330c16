//! Cutting a TSO/USO super-frame read from the tap into real frames (user-space GSO).
//!
//! Owns the per-segment header rewrite: IPv4 total length, ID (+1 per segment) and header
//! checksum (from a sum of the shared header fields made once per super-frame), IPv6 payload
//! length, TCP sequence number and flags (FIN and PSH only on the last segment, CWR only on
//! the first), UDP length, and the full TCP/UDP checksum of every segment. VLAN tags and IP
//! options are copied as they are. It never allocates: each segment is written into a buffer
//! the caller lends.

use super::checksum;
use super::vnet::{VnetHdr, F_NEEDS_CSUM, GSO_ECN, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use super::{
    be16, be32, put16, put32, Error, Layout, IPV6_HEADER_LEN, PROTO_TCP, PROTO_UDP,
    TCP_CHECKSUM_OFFSET, UDP_CHECKSUM_OFFSET, UDP_HEADER_LEN,
};

/// Bytes of an Ethernet header without a tag.
const ETHERNET_LEN: usize = 14;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// Completes the checksum the kernel left to us in a frame that needs no segmentation
/// (`F_NEEDS_CSUM` without GSO): sums from `csum_start` to the end and stores the result at
/// `csum_start + csum_offset`. Does nothing without `F_NEEDS_CSUM`.
///
/// # Errors
///
/// [`Error::BadChecksumOffset`] if the positions lie outside the frame.
pub fn complete_checksum(hdr: &VnetHdr, frame: &mut [u8]) -> Result<(), Error> {
    if hdr.flags & F_NEEDS_CSUM == 0 {
        return Ok(());
    }
    let start = usize::from(hdr.csum_start);
    let field = start + usize::from(hdr.csum_offset);
    if field + 2 > frame.len() {
        return Err(Error::BadChecksumOffset);
    }
    let sum = checksum::finish(checksum::add(0, &frame[start..]));
    // As the kernel does: a computed 0 is sent as 0xffff (for UDP, 0 means "no checksum").
    put16(frame, field, if sum == 0 { 0xffff } else { sum });
    Ok(())
}

/// The sum of the IPv4 header at `frame[l3..l4]` with the total length (bytes 2-3), ID
/// (4-5) and header checksum (10-11) taken as zero: what every segment's header sums to
/// before its own length and ID are added. The header is at most 60 bytes.
fn ipv4_header_base(frame: &[u8], l3: usize, l4: usize) -> u64 {
    let mut header = [0u8; 60];
    let Some(src) = frame.get(l3..l4) else {
        return 0;
    };
    let Some(room) = header.get_mut(..src.len()) else {
        return 0;
    };
    room.copy_from_slice(src);
    for field in [2, 4, 10] {
        if let Some(word) = room.get_mut(field..field + 2) {
            word.fill(0);
        }
    }
    checksum::add(0, room)
}

/// An iterator-like cutter over one super-frame: [`Segmenter::next_into`] writes one real
/// frame after the other.
#[derive(Debug)]
pub struct Segmenter<'a> {
    frame: &'a [u8],
    layout: Layout,
    hdr_len: usize,
    mss: usize,
    offset: usize,
    index: u32,
    count: u32,
    /// The TCP/UDP checksum field gets the pseudo-header sum only
    /// ([`Segmenter::leave_checksums_partial`]).
    partial: bool,
    /// The pseudo-header sum without the transport length (addresses and protocol), which
    /// every segment shares.
    pseudo_base: u64,
    /// IPv4: the sum of the IP header with its total length, ID and checksum fields taken as
    /// zero, which every segment shares (the two fields are added per segment, as the
    /// kernel's GSO does); 0 for IPv6.
    ipv4_base: u64,
}

impl<'a> Segmenter<'a> {
    /// Prepares cutting `frame` (which came with `hdr`, whose `gso_type` is not `GSO_NONE`).
    /// The header lengths are parsed from the frame itself; `hdr.hdr_len` is not trusted.
    ///
    /// # Errors
    ///
    /// [`Error::UnsupportedGso`] for anything but TCPv4, TCPv6 and UDP (USO);
    /// [`Error::ZeroGsoSize`]; [`Error::NotIp`], [`Error::BadIpHeader`] or [`Error::Truncated`]
    /// if the headers do not match the offload type; [`Error::BadIpHeader`] for one behind an
    /// IPv6 routing header without `F_NEEDS_CSUM` (no pseudo-header sum to go by).
    pub fn new(hdr: &VnetHdr, frame: &'a [u8]) -> Result<Segmenter<'a>, Error> {
        let gso_type = hdr.gso_type & !GSO_ECN;
        let protocol = match gso_type {
            GSO_TCPV4 | GSO_TCPV6 => PROTO_TCP,
            GSO_UDP_L4 => PROTO_UDP,
            other => return Err(Error::UnsupportedGso(other)),
        };
        if hdr.gso_size == 0 {
            return Err(Error::ZeroGsoSize);
        }
        let layout = Layout::parse_past_ipv6_options(frame)?;
        if layout.protocol != protocol
            || (gso_type == GSO_TCPV4 && layout.is_ipv6)
            || (gso_type == GSO_TCPV6 && !layout.is_ipv6)
        {
            return Err(Error::BadIpHeader);
        }
        let l4_len = if protocol == PROTO_TCP {
            let doff = usize::from(*frame.get(layout.l4 + 12).ok_or(Error::Truncated)? >> 4) * 4;
            if doff < 20 {
                return Err(Error::Truncated);
            }
            doff
        } else {
            UDP_HEADER_LEN
        };
        let hdr_len = layout.l4 + l4_len;
        if frame.len() < hdr_len {
            return Err(Error::Truncated);
        }
        let mss = usize::from(hdr.gso_size);
        let payload = frame.len() - hdr_len;
        let count = u32::try_from(payload.div_ceil(mss).max(1)).unwrap_or(u32::MAX);
        let pseudo_base = if layout.routed {
            // The final destination a routing header names is what the pseudo-header sums,
            // and the kernel put the pseudo-header's sum for the whole super-frame in the
            // checksum field (as for any it leaves to be completed): take it from there, less
            // that length, as the kernel's own GSO does.
            if hdr.flags & F_NEEDS_CSUM == 0 {
                return Err(Error::BadIpHeader);
            }
            let at = layout.l4
                + usize::from(if protocol == PROTO_TCP {
                    TCP_CHECKSUM_OFFSET
                } else {
                    UDP_CHECKSUM_OFFSET
                });
            let whole = u16::try_from(frame.len() - layout.l4).map_err(|_| Error::BadIpHeader)?;
            u64::from(be16(frame, at)?) + u64::from(!whole)
        } else {
            layout.pseudo_header(frame, 0)
        };
        let ipv4_base = if layout.is_ipv6 {
            0
        } else {
            ipv4_header_base(frame, layout.l3, layout.l4)
        };
        Ok(Segmenter {
            frame,
            layout,
            hdr_len,
            mss,
            offset: 0,
            index: 0,
            count,
            partial: false,
            pseudo_base,
            ipv4_base,
        })
    }

    /// Leaves the TCP or UDP checksum of every frame partial: the field holds the
    /// pseudo-header sum (folded, not complemented), as a checksum offload expects, and the
    /// payload is not summed. For a receiver that completes such checksums (the Hello flag
    /// 0x20) only, which takes untagged frames without IPv6 option headers only: on any
    /// other super-frame this does nothing. The IPv4 header checksum is always computed.
    /// Returns whether it took.
    pub fn leave_checksums_partial(&mut self) -> bool {
        let ipv6_options =
            self.layout.is_ipv6 && self.layout.l4 != self.layout.l3 + IPV6_HEADER_LEN;
        self.partial = self.layout.l3 == ETHERNET_LEN && !ipv6_options;
        self.partial
    }

    /// Bytes of headers (Ethernet to TCP or UDP) each frame starts with; the rest of a frame
    /// is its piece of the super-frame's payload.
    pub fn header_len(&self) -> usize {
        self.hdr_len
    }

    /// How many frames the super-frame becomes.
    pub fn count(&self) -> usize {
        self.count as usize
    }

    /// The longest frame [`Segmenter::next_into`] writes.
    pub fn max_segment_len(&self) -> usize {
        self.hdr_len + self.mss.min(self.frame.len() - self.hdr_len)
    }

    /// Writes the next frame into `out` and returns its length; `None` when all are written
    /// (or if `out` is shorter than [`Segmenter::max_segment_len`]).
    // HOT PATH
    pub fn next_into(&mut self, out: &mut [u8]) -> Option<usize> {
        if self.index >= self.count {
            return None;
        }
        let payload = &self.frame[self.hdr_len..];
        let chunk = self.mss.min(payload.len() - self.offset);
        let len = self.hdr_len + chunk;
        let out = out.get_mut(..len)?;
        let is_first = self.index == 0;
        let is_last = self.index + 1 == self.count;
        out[..self.hdr_len].copy_from_slice(&self.frame[..self.hdr_len]);
        out[self.hdr_len..].copy_from_slice(&payload[self.offset..self.offset + chunk]);

        let Layout { l3, l4, .. } = self.layout;
        if self.layout.is_ipv6 {
            // The payload length counts any option headers too.
            put16(out, l3 + 4, u16::try_from(len - l3 - IPV6_HEADER_LEN).ok()?);
        } else {
            let total = u16::try_from(len - l3).ok()?;
            let id = be16(out, l3 + 4).ok()?.wrapping_add(self.index as u16);
            put16(out, l3 + 2, total);
            put16(out, l3 + 4, id);
            let sum = self.ipv4_base + u64::from(total) + u64::from(id);
            put16(out, l3 + 10, checksum::finish(sum));
        }
        let check_at = if self.layout.protocol == PROTO_TCP {
            let seq = be32(out, l4 + 4).ok()?;
            put32(out, l4 + 4, seq.wrapping_add(self.offset as u32));
            let mut flags = out[l4 + 13];
            if !is_last {
                flags &= !(TCP_FIN | TCP_PSH);
            }
            if !is_first {
                flags &= !TCP_CWR;
            }
            out[l4 + 13] = flags;
            l4 + usize::from(TCP_CHECKSUM_OFFSET)
        } else {
            put16(out, l4 + 4, u16::try_from(len - l4).ok()?);
            l4 + usize::from(UDP_CHECKSUM_OFFSET)
        };
        put16(out, check_at, 0);
        let pseudo = self.pseudo_base + (len - l4) as u64;
        let sum = if self.partial {
            // Left to the receiver: the pseudo-header sum only.
            checksum::fold(pseudo)
        } else {
            match checksum::finish(checksum::add(pseudo, &out[l4..])) {
                0 if self.layout.protocol == PROTO_UDP => 0xffff,
                sum => sum,
            }
        };
        put16(out, check_at, sum);

        self.offset += chunk;
        self.index += 1;
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::vnet::GSO_NONE;
    use super::*;

    fn cut(hdr: &VnetHdr, frame: &[u8]) -> Vec<Vec<u8>> {
        let mut s = Segmenter::new(hdr, frame).unwrap();
        let mut out = vec![0u8; 70_000];
        let mut segments = Vec::new();
        while let Some(len) = s.next_into(&mut out) {
            segments.push(out[..len].to_vec());
        }
        assert_eq!(segments.len(), s.count());
        segments
    }

    /// Every combination: the cut frames equal, byte for byte, frames built independently
    /// with correct headers and checksums.
    #[test]
    fn segments_are_byte_exact_and_checksum_valid_for_every_kind() {
        for spec in all_specs() {
            for payload_len in [1, 1348, 1348 * 3, 1348 * 3 + 1, 1348 * 47 + 777] {
                let payload = pattern(payload_len);
                let (hdr, superframe) = build_super(&spec, &payload, 1348);
                let segments = cut(&hdr, &superframe);
                let expected = build_segments(&spec, &payload, 1348);
                assert_eq!(segments.len(), expected.len(), "{spec:?} {payload_len}");
                for (i, (got, want)) in segments.iter().zip(&expected).enumerate() {
                    assert_eq!(got, want, "{spec:?} payload {payload_len} segment {i}");
                    assert!(checksums_valid(got), "{spec:?} segment {i}");
                    assert!(got.len() <= spec.header_len() + 1348);
                }
            }
        }
    }

    /// A destination options header (8 bytes: a PadN option) after the IPv6 header of
    /// `frame`, which is untagged; its payload length grows by 8 unless `super_frame` (whose
    /// length field nobody reads).
    fn with_dest_options(frame: &[u8], super_frame: bool) -> Vec<u8> {
        let (l3, l4) = (14, 14 + IPV6_HEADER_LEN);
        let mut f = frame[..l4].to_vec();
        f.extend_from_slice(&[frame[l3 + 6], 0, 1, 4, 0, 0, 0, 0]);
        f.extend_from_slice(&frame[l4..]);
        f[l3 + 6] = super::super::IPV6_DEST_OPTIONS;
        if !super_frame {
            let len = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) + 8;
            f[l3 + 4..l3 + 6].copy_from_slice(&len.to_be_bytes());
        }
        f
    }

    #[test]
    fn ipv6_super_frames_with_option_headers_are_cut_past_them() {
        // The kernel's TSO and USO take TCP and UDP over IPv6 with hop-by-hop or destination
        // options headers; such a super-frame used to be refused and dropped whole, which
        // stalls the connection (its retransmissions are super-frames too).
        for spec in all_specs()
            .into_iter()
            .filter(|s| s.is_ipv6 && s.vlan.is_none())
        {
            let payload = pattern(1348 * 3 + 5);
            let (mut hdr, superframe) = build_super(&spec, &payload, 1348);
            let superframe = with_dest_options(&superframe, true);
            hdr.hdr_len += 8;
            hdr.csum_start += 8;
            let want: Vec<Vec<u8>> = build_segments(&spec, &payload, 1348)
                .iter()
                .map(|f| with_dest_options(f, false))
                .collect();
            let got = cut(&hdr, &superframe);
            assert_eq!(got, want, "{spec:?}");
            // Left partial they are not: receivers complete frames without option headers
            // only.
            let mut s = Segmenter::new(&hdr, &superframe).unwrap();
            assert!(!s.leave_checksums_partial(), "{spec:?}");
        }
    }

    /// A routing header (a segment routing header naming the final destination `final_dst`,
    /// one segment left) after the IPv6 header of `frame`, which is untagged and whose
    /// destination becomes the waypoint fd00::99; its payload length grows by 24 unless
    /// `super_frame`.
    fn with_routing_header(frame: &[u8], super_frame: bool) -> Vec<u8> {
        let (l3, l4) = (14, 14 + IPV6_HEADER_LEN);
        let mut f = frame[..l4].to_vec();
        let final_dst: [u8; 16] = frame[l3 + 24..l3 + 40].try_into().unwrap();
        f.extend_from_slice(&[frame[l3 + 6], 2, 4, 1, 0, 0, 0, 0]);
        f.extend_from_slice(&final_dst);
        f.extend_from_slice(&frame[l4..]);
        f[l3 + 6] = super::super::IPV6_ROUTING;
        let waypoint: std::net::Ipv6Addr = "fd00::99".parse().unwrap();
        f[l3 + 24..l3 + 40].copy_from_slice(&waypoint.octets());
        if !super_frame {
            let len = u16::from_be_bytes([f[l3 + 4], f[l3 + 5]]) + 24;
            f[l3 + 4..l3 + 6].copy_from_slice(&len.to_be_bytes());
        }
        f
    }

    /// Through a routing header, whose final destination the checksums sum (not the IPv6
    /// header's first waypoint): cut as the kernel's GSO cuts them, every checksum right.
    /// Such a super-frame used to be refused and dropped whole, which stalled the connection.
    #[test]
    fn ipv6_super_frames_with_a_routing_header_are_cut_with_the_final_destination() {
        for spec in all_specs()
            .into_iter()
            .filter(|s| s.is_ipv6 && s.vlan.is_none())
        {
            let payload = pattern(1348 * 3 + 5);
            // Built for the final destination, then routed through the waypoint.
            let (mut hdr, superframe) = build_super(&spec, &payload, 1348);
            let superframe = with_routing_header(&superframe, true);
            hdr.hdr_len += 24;
            hdr.csum_start += 24;
            let want: Vec<Vec<u8>> = build_segments(&spec, &payload, 1348)
                .iter()
                .map(|f| with_routing_header(f, false))
                .collect();
            let got = cut(&hdr, &superframe);
            assert_eq!(got, want, "{spec:?}");
            let mut s = Segmenter::new(&hdr, &superframe).unwrap();
            assert!(!s.leave_checksums_partial(), "{spec:?}");
            // Without the kernel's partial sum to go by, it is refused.
            let mut plain = hdr;
            plain.flags = 0;
            assert!(Segmenter::new(&plain, &superframe).is_err(), "{spec:?}");
        }
    }

    /// Left partial: the same frames but for the checksum field, which holds the
    /// pseudo-header sum; and completing that field gives back the full frames. Tagged
    /// super-frames ignore the request (receivers complete untagged frames only).
    #[test]
    fn partial_checksums_hold_the_pseudo_header_sum_and_only_untagged() {
        for spec in all_specs() {
            let payload = pattern(1348 * 3 + 5);
            let (hdr, superframe) = build_super(&spec, &payload, 1348);
            let full = cut(&hdr, &superframe);
            let mut s = Segmenter::new(&hdr, &superframe).unwrap();
            s.leave_checksums_partial();
            let mut out = vec![0u8; 2000];
            let at = spec.checksum_at();
            let mut n = 0;
            while let Some(len) = s.next_into(&mut out) {
                let got = &out[..len];
                let want = &full[n];
                n += 1;
                if spec.vlan.is_some() {
                    assert_eq!(got, &want[..], "{spec:?}: tagged frames stay complete");
                    continue;
                }
                assert_eq!(got[..at], want[..at], "{spec:?}");
                assert_eq!(got[at + 2..], want[at + 2..], "{spec:?}");
                let layout = Layout::parse(got).unwrap();
                let pseudo = checksum::fold(layout.pseudo_header(got, len - layout.l4));
                assert_eq!(be16(got, at).unwrap(), pseudo, "{spec:?}");
                assert!(!checksums_valid(got), "{spec:?}: the payload is not summed");
                let partial = VnetHdr {
                    flags: F_NEEDS_CSUM,
                    csum_start: layout.l4 as u16,
                    csum_offset: (at - layout.l4) as u16,
                    ..VnetHdr::default()
                };
                let mut done = got.to_vec();
                complete_checksum(&partial, &mut done).unwrap();
                assert_eq!(done, *want, "{spec:?}: completed, it is the full frame");
            }
            assert_eq!(n, full.len());
        }
    }

    #[test]
    fn fin_and_psh_only_on_the_last_segment_and_cwr_only_on_the_first() {
        let mut spec = Spec::tcp(false, None);
        spec.tcp_flags = 0x80 | 0x10 | 0x08 | 0x01; // CWR ACK PSH FIN
        let payload = pattern(3000);
        let (hdr, superframe) = build_super(&spec, &payload, 1000);
        let segments = cut(&hdr, &superframe);
        let flags: Vec<u8> = segments.iter().map(|s| s[spec.l4() + 13]).collect();
        assert_eq!(flags, [0x90, 0x10, 0x19]);
        assert!(segments.iter().all(|s| checksums_valid(s)));
    }

    #[test]
    fn ipv4_ids_count_up_and_wrap() {
        let mut spec = Spec::tcp(false, None);
        spec.ip_id = 0xffff;
        let (hdr, superframe) = build_super(&spec, &pattern(2500), 1000);
        let segments = cut(&hdr, &superframe);
        let ids: Vec<u16> = segments
            .iter()
            .map(|s| u16::from_be_bytes([s[spec.l3() + 4], s[spec.l3() + 5]]))
            .collect();
        assert_eq!(ids, [0xffff, 0, 1]);
    }

    #[test]
    fn complete_checksum_fills_in_what_the_kernel_left() {
        for spec in all_specs() {
            let want = build_segments(&spec, &pattern(333), 1348).remove(0);
            let mut frame = want.clone();
            // The kernel leaves the pseudo-header sum in the field.
            let layout = Layout::parse(&frame).unwrap();
            let at = spec.checksum_at();
            let pseudo = checksum::fold(layout.pseudo_header(&frame, frame.len() - layout.l4));
            frame[at..at + 2].copy_from_slice(&pseudo.to_be_bytes());
            let hdr = VnetHdr {
                flags: F_NEEDS_CSUM,
                gso_type: GSO_NONE,
                csum_start: layout.l4 as u16,
                csum_offset: (at - layout.l4) as u16,
                ..VnetHdr::default()
            };
            complete_checksum(&hdr, &mut frame).unwrap();
            assert_eq!(frame, want, "{spec:?}");
        }
    }

    #[test]
    fn bad_headers_are_errors_not_panics() {
        let spec = Spec::tcp(false, None);
        let (hdr, superframe) = build_super(&spec, &pattern(5000), 1000);
        for len in 0..spec.header_len() {
            assert!(
                Segmenter::new(&hdr, &superframe[..len]).is_err(),
                "len {len}"
            );
        }
        let zero = VnetHdr { gso_size: 0, ..hdr };
        assert_eq!(
            Segmenter::new(&zero, &superframe).unwrap_err(),
            Error::ZeroGsoSize
        );
        let v6 = VnetHdr {
            gso_type: GSO_TCPV6,
            ..hdr
        };
        assert_eq!(
            Segmenter::new(&v6, &superframe).unwrap_err(),
            Error::BadIpHeader
        );
        let ufo = VnetHdr { gso_type: 3, ..hdr };
        assert_eq!(
            Segmenter::new(&ufo, &superframe).unwrap_err(),
            Error::UnsupportedGso(3)
        );
        let far = VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: 60_000,
            ..hdr
        };
        let mut copy = superframe.clone();
        assert_eq!(
            complete_checksum(&far, &mut copy[..100]),
            Err(Error::BadChecksumOffset)
        );
        let mut s = Segmenter::new(&hdr, &superframe).unwrap();
        assert_eq!(s.next_into(&mut [0u8; 10]), None, "short buffer");
        // Random bytes behind a GSO header never panic.
        let mut seed = 0x1234_5678u32;
        for _ in 0..2000 {
            let len = (xorshift(&mut seed) % 200) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            for gso_type in [GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4] {
                let h = VnetHdr {
                    gso_type,
                    gso_size: 1 + (xorshift(&mut seed) % 64) as u16,
                    ..VnetHdr::default()
                };
                if let Ok(mut s) = Segmenter::new(&h, &bytes) {
                    let mut out = [0u8; 512];
                    while s.next_into(&mut out).is_some() {}
                }
            }
        }
    }

    /// IPv4 options and an ID that wraps: every segment's header checksum (made from the
    /// sum shared by the segments) equals one computed over the whole header, and the TCP
    /// checksum behind the longer header verifies.
    #[test]
    fn ipv4_header_checksums_hold_with_options_and_a_wrapping_id() {
        let spec = Spec {
            ip_id: 0xfffe,
            ..Spec::tcp(false, None)
        };
        let payload = pattern(1348 * 4 + 3);
        let (hdr, plain) = build_super(&spec, &payload, 1348);
        let l3 = spec.l3();
        // Four bytes of options (three NOPs and the end of the list): IHL 6.
        let mut frame = plain[..l3 + 20].to_vec();
        frame[l3] = 0x46;
        frame.extend_from_slice(&[1, 1, 1, 0]);
        frame.extend_from_slice(&plain[l3 + 20..]);
        let mut s = Segmenter::new(&hdr, &frame).unwrap();
        assert_eq!(s.count(), 5);
        let mut out = vec![0u8; 2000];
        let mut index = 0u16;
        while let Some(len) = s.next_into(&mut out) {
            let got = &out[..len];
            assert_eq!(be16(got, l3 + 4).unwrap(), 0xfffeu16.wrapping_add(index));
            assert_eq!(usize::from(be16(got, l3 + 2).unwrap()), len - l3);
            let mut want = got.to_vec();
            super::super::fix_ipv4_checksum(&mut want, l3, l3 + 24);
            assert_eq!(got, &want[..], "segment {index}");
            let l4 = l3 + 24;
            let layout = Layout::parse(got).unwrap();
            assert_eq!(layout.l4, l4);
            let pseudo = layout.pseudo_header(got, len - l4);
            assert_eq!(checksum::fold(checksum::add(pseudo, &got[l4..])), 0xffff);
            index += 1;
        }
        assert_eq!(index, 5);
    }

    /// A TCP super-frame sent along an IPv4 source route (`IP_OPTIONS` with a loose or
    /// strict route): the header names the first hop, and every segment's checksum covers a
    /// pseudo-header with the final destination, the route's last address, as the sender's
    /// stack and the receiver's (once the route is used up) compute it. Left partial, the
    /// field holds that pseudo-header's sum. A route whose pointer is past its addresses is
    /// used up, and the header's destination is the final one.
    #[test]
    fn source_routed_segments_sum_the_final_destination() {
        let spec = Spec::tcp(false, None);
        let payload = pattern(1348 * 2 + 9);
        let (hdr, plain) = build_super(&spec, &payload, 1348);
        let l3 = spec.l3();
        let src: [u8; 4] = plain[l3 + 12..l3 + 16].try_into().unwrap();
        let first_hop = [198, 18, 7, 1];
        let last = [198, 18, 9, 2];
        for (kind, pointer, final_dst) in [(131u8, 4u8, last), (137, 8, last), (131, 12, first_hop)]
        {
            // IHL 8: type, length 11, pointer, two addresses, then the end of the list.
            let mut frame = plain[..l3 + 20].to_vec();
            frame[l3] = 0x48;
            frame[l3 + 16..l3 + 20].copy_from_slice(&first_hop);
            frame.extend_from_slice(&[kind, 11, pointer]);
            frame.extend_from_slice(&[198, 18, 8, 1]);
            frame.extend_from_slice(&last);
            frame.push(0);
            frame.extend_from_slice(&plain[l3 + 20..]);
            let l4 = l3 + 32;
            for partial in [false, true] {
                let mut s = Segmenter::new(&hdr, &frame).unwrap();
                if partial {
                    assert!(s.leave_checksums_partial());
                }
                let mut out = vec![0u8; 2000];
                let mut n = 0;
                while let Some(len) = s.next_into(&mut out) {
                    let got = &out[..len];
                    let pseudo = checksum::pseudo_header(&src, &final_dst, PROTO_TCP, len - l4);
                    let sum = if partial {
                        u16::from_be_bytes([got[l4 + 16], got[l4 + 17]]) == checksum::fold(pseudo)
                    } else {
                        checksum::fold(checksum::add(pseudo, &got[l4..])) == 0xffff
                    };
                    assert!(
                        sum,
                        "option {kind} pointer {pointer} partial {partial} segment {n}"
                    );
                    if !partial {
                        // A receiver that completes checksums leaves the same sum.
                        let left = super::super::coalesce::partial_checksum(got).unwrap();
                        assert_eq!(left.pseudo, checksum::fold(pseudo));
                    }
                    n += 1;
                }
                assert_eq!(n, 3);
            }
        }
        // Malformed route options (too short, pointer before the data) fall back to the
        // header's destination, without a panic.
        for option in [
            [131u8, 3, 4, 0],
            [131, 11, 4, 0],
            [137, 7, 3, 0],
            [7, 0, 0, 0],
        ] {
            let mut frame = plain[..l3 + 20].to_vec();
            frame[l3] = 0x46;
            frame.extend_from_slice(&option);
            frame.extend_from_slice(&plain[l3 + 20..]);
            let layout = Layout::parse(&frame).unwrap();
            let (s, d) = layout.addrs(&frame);
            assert_eq!(
                layout.pseudo_header(&frame, 100),
                checksum::pseudo_header(s, d, PROTO_TCP, 100),
                "{option:?}"
            );
        }
    }
}
