//! Coalescing TCP segments and UDP datagrams on the way to the tap (user-space GRO).
//!
//! Consecutive, in-order data segments of one TCP flow become one super-frame: the first
//! segment's headers, every segment's payload, and a `GSO_TCPV4`/`GSO_TCPV6` virtio header
//! with `F_NEEDS_CSUM`, so the kernel's TCP stack takes them as one packet. The rules follow
//! Linux GRO: same Ethernet header, same addresses, TOS/traffic class, TTL/hop limit, ports,
//! ACK number, window and TCP options; sequence numbers that continue exactly; flags ACK (PSH
//! allowed, and it ends the run); every payload the size of the first except a shorter last
//! one (which ends the run); at most 64 KiB. A segment joins only if its IPv4 header checksum
//! and its TCP checksum are valid, so nothing corrupt is ever blessed with a fresh checksum
//! (but see the sealed modes below).
//! IPv4 segments need DF and no options; IPv6 segments no extension headers; frames with a
//! VLAN tag are never coalesced (the tap refuses GSO frames whose EtherType is not IP).
//! Anything else passes through untouched. One flow is held at a time.
//!
//! With [`Coalescer::with_udp`] (a tap that takes USO, Linux 6.2+), consecutive datagrams of
//! one UDP flow are coalesced the same way into a `GSO_UDP_L4` super-frame, as Linux's UDP
//! GRO does for a socket that asks for it: same headers but the lengths, IPv4 ID and
//! checksums; a valid, non-zero UDP checksum; every payload the size of the first except a
//! shorter last one (which ends the run); at most [`MAX_UDP_SEGMENTS`] datagrams. The kernel
//! cuts the super-frame back into the very datagrams (lengths, checksums and, under DF,
//! meaningless IPv4 IDs recomputed) before any socket or another interface sees them, so a
//! receiving application gets what was sent, one datagram per `recv`, in order; what it
//! saves is a tap write and a trip through the IP layer per datagram.
//!
//! In the sealed modes ([`Coalescer::trust_checksums`]) the TCP and UDP checksums of the
//! frames are not checked: every frame came in a datagram whose AEAD tag proved it to be, byte
//! for byte, what a trusted node sealed, checksums included. Linux does the same for the
//! packets WireGuard decrypts (it marks them `CHECKSUM_UNNECESSARY`, and GRO then joins them
//! without summing them). The IPv4 header checksum is still checked (20 bytes). A trusting
//! coalescer also hands a lone TCP or UDP frame to the kernel as one whose checksum is still
//! to be completed ([`partial_checksum`]), so a peer may leave the payload out of the
//! checksums of the frames it cuts (the Hello flag 0x20,
//! [`crate::wire::relay::FLAG_PARTIAL_CHECKSUMS`]).
//!
//! It owns the rules and the held bytes; when to write them out is the caller's choice
//! ([`Coalescer::take`] after each batch of received datagrams).

use super::checksum;
use super::vnet::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use super::{
    be16, be32, fix_ipv4_checksum, put16, Layout, IPV6_HEADER_LEN, PROTO_TCP, PROTO_UDP,
    TCP_CHECKSUM_OFFSET, UDP_CHECKSUM_OFFSET, UDP_HEADER_LEN,
};

/// Bytes of an Ethernet header without a tag.
const ETHERNET_LEN: usize = 14;
/// The largest IP packet a super-frame may hold (the 16-bit length fields).
const MAX_IP_LEN: usize = 65_535;
/// Capacity of the held super-frame.
pub const MAX_SUPER_LEN: usize = ETHERNET_LEN + MAX_IP_LEN;

/// The most datagrams in one UDP super-frame (Linux's `UDP_GRO_CNT_MAX`; the kernel takes
/// up to `UDP_MAX_SEGMENTS`, 64 or 128 depending on its version).
pub const MAX_UDP_SEGMENTS: u32 = 64;

const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;

/// How to hand a frame to the kernel with its TCP or UDP checksum still to be completed
/// (`F_NEEDS_CSUM`), from [`partial_checksum`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartialChecksum {
    /// The virtio-net header to write in front of the frame.
    pub hdr: VnetHdr,
    /// Where the checksum field lies in the frame.
    pub field: usize,
    /// What the field must hold: the pseudo-header sum, folded and not complemented.
    pub pseudo: u16,
}

/// Whether the IP length of `frame` (laid out as `layout`) covers the frame from its IP
/// header to its end exactly: no Ethernet padding after the packet, nothing cut off.
fn ip_covers_frame(frame: &[u8], layout: &Layout) -> bool {
    let l3 = layout.l3;
    let ip_len = if layout.is_ipv6 {
        be16(frame, l3 + 4).map(|len| usize::from(len) + IPV6_HEADER_LEN)
    } else {
        be16(frame, l3 + 2).map(usize::from)
    };
    ip_len.ok() == Some(frame.len() - l3)
}

/// If `frame` is one a node that announced the Hello flag 0x20 completes the checksum of:
/// untagged, IPv4 that is not a fragment (options allowed) or IPv6 with no extension header,
/// TCP (a whole header) or UDP (its length saying the same as the IP length), the IP length
/// covering the frame exactly (no Ethernet padding, which the kernel would sum). Whatever the
/// field holds now (a complete checksum, or only the pseudo-header sum a peer left there) is
/// replaced by the pseudo-header sum, and the kernel sums the rest or, for a local socket,
/// takes it as it takes any frame with a checksum still to be completed.
pub fn partial_checksum(frame: &[u8]) -> Option<PartialChecksum> {
    let layout = Layout::parse(frame).ok()?;
    if layout.l3 != ETHERNET_LEN {
        return None;
    }
    if !ip_covers_frame(frame, &layout) {
        return None;
    }
    let l4 = layout.l4;
    let csum_offset = match layout.protocol {
        PROTO_TCP if frame.len() >= l4 + 20 => TCP_CHECKSUM_OFFSET,
        PROTO_UDP
            if frame.len() >= l4 + UDP_HEADER_LEN
                && usize::from(be16(frame, l4 + 4).ok()?) == frame.len() - l4 =>
        {
            UDP_CHECKSUM_OFFSET
        }
        _ => return None,
    };
    Some(PartialChecksum {
        hdr: VnetHdr {
            flags: F_NEEDS_CSUM,
            csum_start: u16::try_from(l4).ok()?,
            csum_offset,
            ..VnetHdr::default()
        },
        field: l4 + usize::from(csum_offset),
        pseudo: checksum::fold(layout.pseudo_header(frame, frame.len() - l4)),
    })
}

/// What [`Coalescer::push`] did with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// The frame is held (it started or extended the super-frame).
    Held,
    /// The frame does not extend what is held: write out [`Coalescer::take`] first, then
    /// push the frame again.
    FlushFirst,
    /// Nothing is held and the frame cannot be coalesced: write it as it is.
    Rejected,
}

/// A TCP data segment or a UDP datagram that may be coalesced.
#[derive(Clone, Copy, Debug)]
struct Segment {
    layout: Layout,
    hdr_len: usize,
    /// The TCP sequence number (0 for UDP).
    seq: u32,
    payload_len: usize,
    is_push: bool,
}

impl Segment {
    /// The segment `frame` is, if it may be coalesced (UDP only with `udp`; the TCP or UDP
    /// checksum is not checked with `trusted`).
    fn parse(frame: &[u8], udp: bool, trusted: bool) -> Option<Segment> {
        let layout = Layout::parse(frame).ok()?;
        let is_udp = match layout.protocol {
            PROTO_TCP => false,
            PROTO_UDP if udp => true,
            _ => return None,
        };
        if layout.l3 != ETHERNET_LEN {
            return None;
        }
        let Layout { l3, l4, .. } = layout;
        // IPv4: IHL 5 and DF set (so IDs do not matter, RFC 6864).
        if !layout.is_ipv6 && (l4 - l3 != 20 || frame[l3 + 6] & 0x40 == 0) {
            return None;
        }
        if !ip_covers_frame(frame, &layout) {
            return None;
        }
        let (hdr_len, seq, is_push) = if is_udp {
            Segment::udp_header(frame, l4)?
        } else {
            Segment::tcp_header(frame, l4)?
        };
        // Nothing corrupt is ever blessed with a fresh checksum.
        if !layout.is_ipv6 && checksum::fold(checksum::add(0, &frame[l3..l4])) != 0xffff {
            return None;
        }
        if !trusted {
            let sum = layout.pseudo_header(frame, frame.len() - l4);
            if checksum::fold(checksum::add(sum, &frame[l4..])) != 0xffff {
                return None;
            }
        }
        Some(Segment {
            layout,
            hdr_len,
            seq,
            payload_len: frame.len() - hdr_len,
            is_push,
        })
    }

    /// A TCP data segment's header at `l4`: (header end, sequence number, PSH), if it may
    /// join a run (flags ACK or ACK PSH, no urgent pointer, a payload).
    fn tcp_header(frame: &[u8], l4: usize) -> Option<(usize, u32, bool)> {
        let doff = usize::from(*frame.get(l4 + 12)? >> 4) * 4;
        let hdr_len = l4 + doff;
        if doff < 20 || hdr_len >= frame.len() {
            return None;
        }
        let flags = frame[l4 + 13];
        if flags & !TCP_PSH != TCP_ACK || be16(frame, l4 + 18).ok()? != 0 {
            return None;
        }
        Some((hdr_len, be32(frame, l4 + 4).ok()?, flags & TCP_PSH != 0))
    }

    /// A UDP header at `l4` of a frame that holds exactly its IP packet: (header end, 0,
    /// false), if the datagram may join a run.
    fn udp_header(frame: &[u8], l4: usize) -> Option<(usize, u32, bool)> {
        let hdr_len = l4 + UDP_HEADER_LEN;
        // A payload (a `gso_size` of 0 is refused), the UDP length saying the same as the IP
        // length, and a checksum: 0 means none was sent (IPv4), and the kernel would put a
        // real one on each datagram it cuts, so such datagrams are not merged (a node that
        // completes checksums still writes them partial, and its kernel adds one).
        if hdr_len >= frame.len()
            || usize::from(be16(frame, l4 + 4).ok()?) != frame.len() - l4
            || be16(frame, l4 + 6).ok()? == 0
        {
            return None;
        }
        Some((hdr_len, 0, false))
    }
}

/// The flow being held.
#[derive(Clone, Copy, Debug)]
struct Flow {
    layout: Layout,
    hdr_len: usize,
    mss: usize,
    next_seq: u32,
    count: u32,
    is_closed: bool,
    is_push: bool,
}

/// Holds one growing super-frame. Allocated once.
pub struct Coalescer {
    buf: Box<[u8]>,
    len: usize,
    flow: Option<Flow>,
    /// UDP datagrams are coalesced too ([`Coalescer::with_udp`]).
    udp: bool,
    /// TCP and UDP checksums are taken as they are ([`Coalescer::trust_checksums`]).
    trusted: bool,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl core::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Coalescer")
            .field("len", &self.len)
            .field("flow", &self.flow)
            .finish()
    }
}

impl Coalescer {
    /// An empty coalescer of TCP segments (allocates its buffer).
    pub fn new() -> Coalescer {
        Coalescer {
            buf: vec![0u8; MAX_SUPER_LEN].into_boxed_slice(),
            len: 0,
            flow: None,
            udp: false,
            trusted: false,
        }
    }

    /// An empty coalescer of TCP segments and UDP datagrams, for a tap that takes
    /// `GSO_UDP_L4` super-frames (USO).
    pub fn with_udp() -> Coalescer {
        Coalescer {
            udp: true,
            ..Coalescer::new()
        }
    }

    /// With `on`, the frames pushed from now on are not checked for a valid TCP or UDP
    /// checksum before they join a run: the caller vouches that an AEAD tag proved each one
    /// unchanged since a trusted sender sealed it (the sealed modes). The checksum of an IPv4
    /// header is still checked. A lone frame is handed out with its checksum left to the
    /// kernel to complete ([`partial_checksum`]), so its sender may have left it partial.
    pub fn trust_checksums(&mut self, on: bool) {
        self.trusted = on;
    }

    /// How many segments are held.
    pub fn held(&self) -> usize {
        self.flow.map_or(0, |f| f.count as usize)
    }

    /// True if nothing is held.
    pub fn is_empty(&self) -> bool {
        self.flow.is_none()
    }

    /// Offers one frame; see [`Push`] for what the caller must do next.
    // HOT PATH
    pub fn push(&mut self, frame: &[u8]) -> Push {
        let Some(seg) = Segment::parse(frame, self.udp, self.trusted) else {
            return if self.flow.is_some() {
                Push::FlushFirst
            } else {
                Push::Rejected
            };
        };
        match self.flow {
            None => {
                let Some(slot) = self.buf.get_mut(..frame.len()) else {
                    return Push::Rejected;
                };
                slot.copy_from_slice(frame);
                self.len = frame.len();
                self.flow = Some(Flow {
                    layout: seg.layout,
                    hdr_len: seg.hdr_len,
                    mss: seg.payload_len,
                    next_seq: seg.seq.wrapping_add(seg.payload_len as u32),
                    count: 1,
                    is_closed: seg.is_push,
                    is_push: seg.is_push,
                });
                Push::Held
            }
            Some(flow) if self.extends(&flow, &seg, frame) => {
                let end = self.len + seg.payload_len;
                self.buf[self.len..end].copy_from_slice(&frame[seg.hdr_len..]);
                self.len = end;
                self.flow = Some(Flow {
                    next_seq: flow.next_seq.wrapping_add(seg.payload_len as u32),
                    count: flow.count + 1,
                    is_closed: seg.is_push || seg.payload_len < flow.mss,
                    is_push: seg.is_push,
                    ..flow
                });
                Push::Held
            }
            Some(_) => Push::FlushFirst,
        }
    }

    fn extends(&self, flow: &Flow, seg: &Segment, frame: &[u8]) -> bool {
        let Layout {
            l3, l4, is_ipv6, ..
        } = flow.layout;
        let held = &self.buf[..self.len];
        let same = |a: usize, b: usize| frame.get(a..b) == held.get(a..b);
        let is_udp = flow.layout.protocol == PROTO_UDP;
        !flow.is_closed
            && seg.layout == flow.layout
            && seg.hdr_len == flow.hdr_len
            && seg.payload_len <= flow.mss
            && self.len + seg.payload_len - l3 <= MAX_IP_LEN
            && same(0, l3)
            && if is_ipv6 {
                same(l3, l3 + 4) && same(l3 + 6, l4)
            } else {
                same(l3, l3 + 2) && same(l3 + 6, l3 + 10) && same(l3 + 12, l4)
            }
            && same(l4, l4 + 4)
            && if is_udp {
                // Ports above; the length and checksum differ; nothing else in the header.
                flow.count < MAX_UDP_SEGMENTS
            } else {
                seg.seq == flow.next_seq
                    && same(l4 + 8, l4 + 13)
                    && same(l4 + 14, l4 + 16)
                    && same(l4 + 18, flow.hdr_len)
            }
    }

    /// Hands out what is held and empties the coalescer: a single segment exactly as it came
    /// (with a plain header), or a super-frame with fixed-up lengths and checksums and the
    /// GSO header that describes it. `None` if nothing is held.
    // HOT PATH
    pub fn take(&mut self) -> Option<(VnetHdr, &[u8])> {
        let flow = self.flow.take()?;
        let len = core::mem::take(&mut self.len);
        let frame = self.buf.get_mut(..len)?;
        if flow.count == 1 {
            // Trusted: its checksum may have been left partial by the peer (flag 0x20).
            if let Some(partial) = self.trusted.then(|| partial_checksum(frame)).flatten() {
                put16(frame, partial.field, partial.pseudo);
                return Some((partial.hdr, frame));
            }
            return Some((VnetHdr::default(), frame));
        }
        let Layout {
            l3, l4, is_ipv6, ..
        } = flow.layout;
        if is_ipv6 {
            put16(frame, l3 + 4, u16::try_from(len - l4).ok()?);
        } else {
            put16(frame, l3 + 2, u16::try_from(len - l3).ok()?);
            fix_ipv4_checksum(frame, l3, l4);
        }
        let is_udp = flow.layout.protocol == PROTO_UDP;
        let (gso_type, csum_offset) = if is_udp {
            // The UDP length of the whole super-frame, as a USO send has it; the kernel
            // gives each datagram it cuts its own.
            put16(frame, l4 + 4, u16::try_from(len - l4).ok()?);
            (GSO_UDP_L4, UDP_CHECKSUM_OFFSET)
        } else {
            if flow.is_push {
                frame[l4 + 13] |= TCP_PSH;
            }
            let gso_type = if is_ipv6 { GSO_TCPV6 } else { GSO_TCPV4 };
            (gso_type, TCP_CHECKSUM_OFFSET)
        };
        // F_NEEDS_CSUM: the field holds the pseudo-header sum; the kernel adds the rest.
        let pseudo = checksum::fold(flow.layout.pseudo_header(frame, len - l4));
        put16(frame, l4 + usize::from(csum_offset), pseudo);
        let hdr = VnetHdr {
            flags: F_NEEDS_CSUM,
            gso_type,
            hdr_len: u16::try_from(flow.hdr_len).ok()?,
            gso_size: u16::try_from(flow.mss).ok()?,
            csum_start: u16::try_from(l4).ok()?,
            csum_offset,
        };
        Some((hdr, frame))
    }
}

#[cfg(test)]
mod tests {
    use super::super::segment::Segmenter;
    use super::super::testing::*;
    use super::super::vnet::GSO_NONE;
    use super::*;

    /// Pushes every frame the way the tap device does; returns what would be written.
    fn run(frames: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
        run_with(Coalescer::new(), frames)
    }

    /// [`run`] through `c`.
    fn run_with(mut c: Coalescer, frames: &[Vec<u8>]) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut written = Vec::new();
        for f in frames {
            for _ in 0..2 {
                match c.push(f) {
                    Push::Held => break,
                    Push::Rejected => {
                        written.push((VnetHdr::default(), f.clone()));
                        break;
                    }
                    Push::FlushFirst => {
                        let (h, b) = c.take().unwrap();
                        written.push((h, b.to_vec()));
                    }
                }
            }
        }
        if let Some((h, b)) = c.take() {
            written.push((h, b.to_vec()));
        }
        assert!(c.is_empty());
        written
    }

    #[test]
    fn segments_coalesce_into_the_super_frame_they_were_cut_from() {
        for spec in all_specs() {
            if spec.protocol != PROTO_TCP || spec.vlan.is_some() {
                continue;
            }
            for payload_len in [1348 * 2, 1348 * 3 + 1, 1348 * 40 + 999] {
                let payload = pattern(payload_len);
                let (hdr, superframe) = build_super(&spec, &payload, 1348);
                let segments = build_segments(&spec, &payload, 1348);
                let written = run(&segments);
                assert_eq!(written.len(), 1, "{spec:?} {payload_len}");
                assert_eq!(written[0].0, hdr, "{spec:?}");
                assert_eq!(written[0].1, superframe, "{spec:?} {payload_len}");
                // And cutting it again gives the very same segments.
                let mut s = Segmenter::new(&written[0].0, &written[0].1).unwrap();
                let mut out = vec![0u8; 2000];
                for want in &segments {
                    let len = s.next_into(&mut out).unwrap();
                    assert_eq!(&out[..len], &want[..]);
                }
            }
        }
    }

    #[test]
    fn a_lone_segment_passes_through_untouched() {
        let spec = Spec::tcp(false, None);
        let segments = build_segments(&spec, &pattern(100), 1348);
        let written = run(&segments);
        assert_eq!(written, [(VnetHdr::default(), segments[0].clone())]);
    }

    #[test]
    fn runs_over_64_kib_are_split_and_each_part_is_valid() {
        let spec = Spec::tcp(false, None);
        let payload = pattern(1348 * 100);
        let segments = build_segments(&spec, &payload, 1348);
        let written = run(&segments);
        assert!(written.len() >= 3, "{}", written.len());
        let mut again = Vec::new();
        for (h, f) in &written {
            assert!(f.len() <= MAX_SUPER_LEN);
            let mut s = Segmenter::new(h, f).unwrap();
            let mut out = vec![0u8; 2000];
            while let Some(len) = s.next_into(&mut out) {
                again.push(out[..len].to_vec());
            }
        }
        // PSH is only on the very last segment of the original run.
        assert_eq!(again.len(), segments.len());
        for (i, (a, b)) in again.iter().zip(&segments).enumerate() {
            let (mut a, mut b) = (a.clone(), b.clone());
            let l4 = spec.l4();
            // IPv4 IDs restart per super-frame; DF makes them meaningless (RFC 6864).
            for x in [&mut a, &mut b] {
                x[18..20].fill(0);
                x[24..26].fill(0);
            }
            assert_eq!(a[..l4 + 13], b[..l4 + 13], "segment {i}");
            assert_eq!(a[l4 + 14..l4 + 16], b[l4 + 14..l4 + 16], "segment {i}");
            assert_eq!(a[l4 + 18..], b[l4 + 18..], "segment {i}");
        }
    }

    #[test]
    fn gaps_other_flows_flags_and_bad_checksums_end_a_run() {
        let spec = Spec::tcp(false, None);
        let payload = pattern(1348 * 4);
        let segs = build_segments(&spec, &payload, 1348);

        // A missing segment: two super-frames.
        let written = run(&[segs[0].clone(), segs[1].clone(), segs[3].clone()]);
        assert_eq!(written.len(), 2);
        assert_eq!(written[1], (VnetHdr::default(), segs[3].clone()));

        // Another flow in between keeps order: A, B, A.
        let mut other = spec.clone();
        other.src_port += 1;
        let b = build_segments(&other, &pattern(500), 1348).remove(0);
        let written = run(&[segs[0].clone(), b.clone(), segs[1].clone()]);
        assert_eq!(written.len(), 3);
        assert_eq!(written[1].1, b);

        // SYN, FIN, RST or URG: never held.
        for flags in [0x02, 0x11, 0x04, 0x30] {
            let mut s = spec.clone();
            s.tcp_flags = flags;
            let f = build_segments(&s, &pattern(100), 1348).remove(0);
            assert_eq!(
                Coalescer::new().push(&f),
                Push::Rejected,
                "flags {flags:#x}"
            );
        }

        // A corrupted payload: not held, written as it is (the kernel drops it).
        let mut bad = segs[1].clone();
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        let written = run(&[segs[0].clone(), bad.clone(), segs[2].clone()]);
        assert_eq!(written.len(), 3);
        assert_eq!(written[1].1, bad);

        // A short segment ends the run; the next one starts a new one.
        let short = build_segments(&spec, &pattern(1348 + 10), 1348);
        let mut next = spec.clone();
        next.seq = spec.seq.wrapping_add(1358);
        let after = build_segments(&next, &pattern(1348 * 2), 1348);
        let mut all = short.clone();
        all.extend(after);
        assert_eq!(run(&all).len(), 2);
    }

    /// What a node that completes checksums hands to the kernel for a lone frame: untagged
    /// TCP or UDP over IPv4 or IPv6, exact length, the field set to the pseudo-header sum;
    /// anything else goes as it came.
    #[test]
    fn lone_frames_are_left_to_the_kernel_to_complete_only_where_it_can() {
        for spec in all_specs() {
            let frame = build_segments(&spec, &pattern(300), 1348).remove(0);
            let got = partial_checksum(&frame);
            if spec.vlan.is_some() {
                assert_eq!(got, None, "{spec:?}");
                continue;
            }
            let p = got.unwrap_or_else(|| panic!("{spec:?}"));
            assert_eq!(p.field, spec.checksum_at(), "{spec:?}");
            assert_eq!(usize::from(p.hdr.csum_start), spec.l4(), "{spec:?}");
            assert_eq!(
                usize::from(p.hdr.csum_start + p.hdr.csum_offset),
                p.field,
                "{spec:?}"
            );
            assert_eq!((p.hdr.flags, p.hdr.gso_type), (F_NEEDS_CSUM, 0), "{spec:?}");
            // Completing the field as the kernel would gives the frame's own checksum.
            let mut done = frame.clone();
            put16(&mut done, p.field, p.pseudo);
            let sum = checksum::finish(checksum::add(0, &done[spec.l4()..]));
            assert_eq!(sum.to_be_bytes(), frame[p.field..p.field + 2], "{spec:?}");

            // Through a trusting coalescer, a lone segment comes out so prepared.
            let mut c = Coalescer::with_udp();
            c.trust_checksums(true);
            let written = run_with(c, std::slice::from_ref(&frame));
            assert_eq!(written.len(), 1);
            assert_eq!(written[0].0, p.hdr, "{spec:?}");
            assert_eq!(written[0].1, done, "{spec:?}");

            // Ethernet padding after the IP packet, or a frame cut short: as it came.
            let mut padded = frame.clone();
            padded.extend([0u8; 6]);
            assert_eq!(partial_checksum(&padded), None, "{spec:?}");
            assert_eq!(partial_checksum(&frame[..spec.l4() + 4]), None, "{spec:?}");
        }
        // Not TCP or UDP, a fragment, not IP: as they came.
        let mut icmp = build_segments(&Spec::tcp(false, None), &pattern(100), 1348).remove(0);
        icmp[14 + 9] = 1;
        assert_eq!(partial_checksum(&icmp), None);
        let mut fragment = build_segments(&Spec::udp(false, None), &pattern(100), 1348).remove(0);
        fragment[14 + 6] |= 0x20; // more fragments
        assert_eq!(partial_checksum(&fragment), None);
        let mut arp = fragment.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(partial_checksum(&arp), None);
    }

    #[test]
    fn trusted_checksums_are_not_summed_but_ipv4_headers_still_are() {
        for spec in [
            Spec::tcp(false, None),
            Spec::tcp(true, None),
            Spec::udp(false, None),
            Spec::udp(true, None),
        ] {
            let segs = build_segments(&spec, &pattern(1348 * 3), 1348);
            // A payload byte changed behind the checksum's back: only a trusting coalescer
            // joins it (an AEAD tag vouched for it; the sum is not looked at).
            let mut odd = segs[1].clone();
            let last = odd.len() - 1;
            odd[last] ^= 0x5a;
            let frames = [segs[0].clone(), odd.clone(), segs[2].clone()];
            assert_eq!(
                run_with(Coalescer::with_udp(), &frames).len(),
                3,
                "{spec:?}"
            );
            let mut trusting = Coalescer::with_udp();
            trusting.trust_checksums(true);
            let written = run_with(trusting, &frames);
            assert_eq!(written.len(), 1, "{spec:?}");
            // What the kernel is handed is the joined payloads, with a checksum to complete.
            assert_eq!(written[0].0.flags, F_NEEDS_CSUM, "{spec:?}");
            let hdr_len = written[0].1.len() - 1348 * 3;
            assert_eq!(written[0].1[hdr_len + 1348 * 2 - 1], odd[last], "{spec:?}");

            // Turned off again: checked as before.
            let mut c = Coalescer::with_udp();
            c.trust_checksums(true);
            c.trust_checksums(false);
            assert_eq!(run_with(c, &frames).len(), 3, "{spec:?}");
        }
        // A bad IPv4 header checksum is refused even when trusting.
        let segs = build_segments(&Spec::tcp(false, None), &pattern(1348 * 2), 1348);
        let mut bad_ip = segs[1].clone();
        bad_ip[14 + 10] ^= 0x01;
        let mut trusting = Coalescer::new();
        trusting.trust_checksums(true);
        let written = run_with(trusting, &[segs[0].clone(), bad_ip.clone()]);
        assert_eq!(written.len(), 2);
        assert_eq!(written[1], (VnetHdr::default(), bad_ip));
    }

    #[test]
    fn tagged_udp_fragmented_and_garbage_frames_are_rejected() {
        let mut c = Coalescer::new();
        let tagged = build_segments(&Spec::tcp(false, Some(7)), &pattern(100), 1348);
        assert_eq!(c.push(&tagged[0]), Push::Rejected);
        let udp = build_segments(&Spec::udp(false, None), &pattern(100), 1348);
        assert_eq!(c.push(&udp[0]), Push::Rejected);
        let mut no_df = build_segments(&Spec::tcp(false, None), &pattern(100), 1348).remove(0);
        no_df[20] &= !0x40;
        assert_eq!(c.push(&no_df), Push::Rejected);
        let mut seed = 99u32;
        for _ in 0..5000 {
            let len = (xorshift(&mut seed) % 120) as usize;
            let mut f: Vec<u8> = (0..len).map(|_| xorshift(&mut seed) as u8).collect();
            if len > 14 {
                f[12] = 0x08;
                f[13] = 0x00;
            }
            if c.push(&f) == Push::FlushFirst {
                c.take();
            }
        }
    }

    #[test]
    fn damaged_and_cut_frames_of_every_kind_never_panic_any_coalescer() {
        // Valid segments of each kind (TCP and UDP, IPv4 and IPv6, tagged or not), each with
        // a few bytes changed and perhaps cut short, pushed into the coalescer in each of its
        // four set-ups: whatever is refused or merged, nothing panics, and what it writes
        // is never longer than its buffer.
        let mut bases = Vec::new();
        for is_ipv6 in [false, true] {
            for vlan in [None, Some(7)] {
                for spec in [Spec::tcp(is_ipv6, vlan), Spec::udp(is_ipv6, vlan)] {
                    bases.extend(build_segments(&spec, &pattern(1348 * 3), 1348));
                    bases.extend(build_segments(&spec, &pattern(64 * 3), 64));
                }
            }
        }
        let mut seed = 0x5eed_c0a1u32;
        for udp in [false, true] {
            for trust in [false, true] {
                let mut c = if udp {
                    Coalescer::with_udp()
                } else {
                    Coalescer::new()
                };
                c.trust_checksums(trust);
                for _ in 0..4000 {
                    let base = &bases[xorshift(&mut seed) as usize % bases.len()];
                    let mut f = base.clone();
                    for _ in 0..(1 + xorshift(&mut seed) % 4) {
                        let at = xorshift(&mut seed) as usize % f.len();
                        f[at] = xorshift(&mut seed) as u8;
                    }
                    if xorshift(&mut seed) % 3 == 0 {
                        f.truncate(xorshift(&mut seed) as usize % (f.len() + 1));
                    }
                    let take = |c: &mut Coalescer| {
                        if let Some((_, frame)) = c.take() {
                            assert!(frame.len() <= MAX_SUPER_LEN, "{}", frame.len());
                        }
                    };
                    if c.push(&f) == Push::FlushFirst {
                        take(&mut c);
                        let _ = c.push(&f);
                    }
                    if xorshift(&mut seed) % 16 == 0 {
                        take(&mut c);
                    }
                }
            }
        }
    }

    /// Cuts each written frame (a super-frame by its header) back into real frames.
    fn cut_all(written: &[(VnetHdr, Vec<u8>)]) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        for (h, f) in written {
            if h.gso_type == GSO_NONE {
                frames.push(f.clone());
                continue;
            }
            let mut s = Segmenter::new(h, f).unwrap();
            let mut out = vec![0u8; 2000];
            while let Some(len) = s.next_into(&mut out) {
                frames.push(out[..len].to_vec());
            }
        }
        frames
    }

    #[test]
    fn udp_datagrams_coalesce_into_the_uso_super_frame_they_were_cut_from() {
        for is_ipv6 in [false, true] {
            let spec = Spec::udp(is_ipv6, None);
            // Even sizes, a shorter last one, one alone, 64-byte datagrams (the packet-rate
            // test's), and exactly MAX_UDP_SEGMENTS of them.
            for (payload_len, size) in [(1372 * 3, 1372), (1372 * 5 + 7, 1372), (64 * 30, 64)]
                .into_iter()
                .chain([(64 * MAX_UDP_SEGMENTS as usize, 64), (300 * 2 + 1, 300)])
            {
                let payload = pattern(payload_len);
                let (hdr, superframe) = build_super(&spec, &payload, size);
                let datagrams = build_segments(&spec, &payload, size);
                let written = run_with(Coalescer::with_udp(), &datagrams);
                assert_eq!(written.len(), 1, "{spec:?} {payload_len}");
                assert_eq!(written[0].0, hdr, "{spec:?} {payload_len}");
                assert_eq!(written[0].1, superframe, "{spec:?} {payload_len}");
                // The kernel's cut (our segmenter does the same) gives back every datagram.
                assert_eq!(cut_all(&written), datagrams, "{spec:?} {payload_len}");
            }
        }
    }

    #[test]
    fn udp_runs_stop_at_the_segment_cap_a_short_datagram_and_another_flow() {
        let spec = Spec::udp(false, None);
        let datagrams = build_segments(&spec, &pattern(64 * 150), 64);
        let written = run_with(Coalescer::with_udp(), &datagrams);
        assert_eq!(written.len(), 3, "150 datagrams: 64 + 64 + 22");
        for (h, _) in &written {
            assert_eq!(h.gso_type, GSO_UDP_L4);
        }
        assert_eq!(cut_all(&written), datagrams);

        // A short datagram ends the run: [100, 30], then [100] alone.
        let mut all = build_segments(&spec, &pattern(100 + 30), 100);
        let next = build_segments(&spec, &pattern(100), 100).remove(0);
        all.push(next.clone());
        let written = run_with(Coalescer::with_udp(), &all);
        assert_eq!(written.len(), 2);
        assert_eq!(written[0].0.gso_type, GSO_UDP_L4);
        assert_eq!(written[1], (VnetHdr::default(), next.clone()));
        assert_eq!(cut_all(&written), all);
        // A longer datagram does not join: [100], then [200].
        let long = build_segments(&spec, &pattern(200), 200).remove(0);
        let all = vec![next.clone(), long.clone()];
        let written = run_with(Coalescer::with_udp(), &all);
        assert_eq!(
            written,
            [(VnetHdr::default(), next), (VnetHdr::default(), long)]
        );

        // Another flow in between keeps the order: A, B, A.
        let mut other = spec.clone();
        other.src_port += 1;
        let a = build_segments(&spec, &pattern(128), 64);
        let b = build_segments(&other, &pattern(64), 64);
        let all = vec![a[0].clone(), b[0].clone(), a[1].clone()];
        let written = run_with(Coalescer::with_udp(), &all);
        assert_eq!(written.len(), 3);
        assert_eq!(cut_all(&written), all);

        // UDP after TCP and TCP after UDP: separate runs, order kept.
        let tcp = build_segments(&Spec::tcp(false, None), &pattern(1348 * 2), 1348);
        let all = vec![
            a[0].clone(),
            a[1].clone(),
            tcp[0].clone(),
            tcp[1].clone(),
            a[0].clone(),
        ];
        let written = run_with(Coalescer::with_udp(), &all);
        assert_eq!(written.len(), 3);
        assert_eq!(written[0].0.gso_type, GSO_UDP_L4);
        assert_eq!(written[1].0.gso_type, GSO_TCPV4);
        assert_eq!(cut_all(&written), all);
    }

    #[test]
    fn udp_without_a_checksum_corrupt_tagged_or_off_passes_through() {
        let spec = Spec::udp(false, None);
        let good = build_segments(&spec, &pattern(64 * 3), 64);
        let l4 = spec.l4();
        // No checksum (0, allowed in IPv4): the kernel would invent one; left alone.
        let mut no_sum = good[1].clone();
        no_sum[l4 + 6..l4 + 8].fill(0);
        // A corrupt payload: never blessed with a fresh checksum.
        let mut corrupt = good[1].clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0x55;
        // A UDP length that disagrees with the IP length.
        let mut bad_len = good[1].clone();
        bad_len[l4 + 5] ^= 1;
        for bad in [no_sum, corrupt, bad_len] {
            assert_eq!(Coalescer::with_udp().push(&bad), Push::Rejected);
            let all = vec![good[0].clone(), bad.clone(), good[2].clone()];
            let written = run_with(Coalescer::with_udp(), &all);
            assert_eq!(written.len(), 3);
            assert_eq!(written[1], (VnetHdr::default(), bad));
        }
        // No payload: a gso_size of 0 is refused by the kernel.
        let empty = build_segments(&spec, &[], 64);
        assert_eq!(Coalescer::with_udp().push(&empty[0]), Push::Rejected);
        // Tagged frames and a coalescer without UDP: never held.
        let tagged = build_segments(&Spec::udp(false, Some(7)), &pattern(64), 64);
        assert_eq!(Coalescer::with_udp().push(&tagged[0]), Push::Rejected);
        assert_eq!(run(&good).len(), 3);
    }
}
