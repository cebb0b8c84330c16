//! The offload code on input it does not choose: the coalescer on frames from the network
//! (some of them valid TCP segments or UDP datagrams of one flow, some broken in one field),
//! and on frames of any bytes at all, and the segmenter and checksum completion on any vnet
//! header and any bytes from the tap.
//!
//! Never a panic, and what comes out is what went in: a lone frame comes back as it was (or,
//! from a coalescer that trusts checksums, with the field set for the kernel to complete), a
//! coalesced super-frame holds exactly the payloads of the frames that joined it, and cutting
//! it again gives frames that coalesce back into the same super-frame.
#![no_main]

use ethcloud::offload::coalesce::{partial_checksum, Coalescer, Push, MAX_SUPER_LEN};
use ethcloud::offload::flow::{flow_hash, queue_of};
use ethcloud::offload::segment::{complete_checksum, Segmenter};
use ethcloud::offload::vnet::{VnetHdr, GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, VNET_HDR_LEN};
use ethcloud::offload::{checksum, Layout};
use libfuzzer_sys::fuzz_target;

/// Ethernet + IPv4 (DF) or IPv6 + TCP (ACK, with `opt` bytes of options) + `payload`, with
/// valid lengths and checksums.
fn tcp_frame(ipv6: bool, opt: usize, seq: u32, flags: u8, port: u16, payload: &[u8]) -> Vec<u8> {
    let l3 = 14;
    let l4 = l3 + if ipv6 { 40 } else { 20 };
    let tcp_len = 20 + opt + payload.len();
    let mut f = vec![0u8; l4 + tcp_len];
    f[..12].copy_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    if ipv6 {
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f[l3] = 0x60;
        f[l3 + 4..l3 + 6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        f[l3 + 6] = 6;
        f[l3 + 7] = 64;
        f[l3 + 8] = 0xfd;
        f[l3 + 23] = 1;
        f[l3 + 24] = 0xfd;
        f[l3 + 39] = 2;
    } else {
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f[l3] = 0x45;
        f[l3 + 2..l3 + 4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        f[l3 + 6] = 0x40;
        f[l3 + 8] = 64;
        f[l3 + 9] = 6;
        f[l3 + 12..l3 + 16].copy_from_slice(&[198, 19, 0, 1]);
        f[l3 + 16..l3 + 20].copy_from_slice(&[198, 19, 0, 2]);
        let sum = checksum::finish(checksum::add(0, &f[l3..l4]));
        f[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
    }
    f[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    f[l4 + 2..l4 + 4].copy_from_slice(&5201u16.to_be_bytes());
    f[l4 + 4..l4 + 8].copy_from_slice(&seq.to_be_bytes());
    f[l4 + 12] = (((20 + opt) / 4) as u8) << 4;
    f[l4 + 13] = flags;
    f[l4 + 14] = 2;
    for b in &mut f[l4 + 20..l4 + 20 + opt] {
        *b = 1; // NOP
    }
    f[l4 + 20 + opt..].copy_from_slice(payload);
    let (src, dst) = if ipv6 {
        (&f[l3 + 8..l3 + 24], &f[l3 + 24..l3 + 40])
    } else {
        (&f[l3 + 12..l3 + 16], &f[l3 + 16..l3 + 20])
    };
    let pseudo = checksum::pseudo_header(src, dst, 6, tcp_len);
    let sum = checksum::finish(checksum::add(pseudo, &f[l4..]));
    f[l4 + 16..l4 + 18].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The same frame as UDP: what `tcp_frame` built, its TCP header replaced by a UDP one.
fn udp_frame(ipv6: bool, port: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = tcp_frame(ipv6, 0, 0, 0x10, port, &[]);
    let l3 = 14;
    let l4 = l3 + if ipv6 { 40 } else { 20 };
    let udp_len = 8 + payload.len();
    f.truncate(l4 + 8);
    f.extend_from_slice(payload);
    if ipv6 {
        f[l3 + 4..l3 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        f[l3 + 6] = 17;
    } else {
        f[l3 + 2..l3 + 4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        f[l3 + 9] = 17;
        f[l3 + 10..l3 + 12].fill(0);
        let sum = checksum::finish(checksum::add(0, &f[l3..l4]));
        f[l3 + 10..l3 + 12].copy_from_slice(&sum.to_be_bytes());
    }
    f[l4 + 4..l4 + 6].copy_from_slice(&(udp_len as u16).to_be_bytes());
    f[l4 + 6..l4 + 8].fill(0);
    let (src, dst) = if ipv6 {
        (&f[l3 + 8..l3 + 24], &f[l3 + 24..l3 + 40])
    } else {
        (&f[l3 + 12..l3 + 16], &f[l3 + 16..l3 + 20])
    };
    let pseudo = checksum::pseudo_header(src, dst, 17, udp_len);
    let sum = match checksum::finish(checksum::add(pseudo, &f[l4..])) {
        0 => 0xffff,
        sum => sum,
    };
    f[l4 + 6..l4 + 8].copy_from_slice(&sum.to_be_bytes());
    f
}

/// The TCP or UDP payload of a frame this target built (header lengths known from the frame).
fn payload_of(frame: &[u8]) -> &[u8] {
    let l4 = if frame[12] == 0x86 { 54 } else { 34 };
    let protocol = if frame[12] == 0x86 {
        frame[20]
    } else {
        frame[23]
    };
    if protocol == 17 {
        return &frame[l4 + 8..];
    }
    let doff = usize::from(frame[l4 + 12] >> 4) * 4;
    &frame[l4 + doff..]
}

/// Checks what the coalescer gives back against the frames that went into it (`trusted`: it
/// hands a lone TCP or UDP frame out for the kernel to complete its checksum).
fn check_taken(co: &mut Coalescer, run: &mut Vec<Vec<u8>>, trusted: bool) {
    let Some((hdr, out)) = co.take() else {
        assert!(run.is_empty());
        return;
    };
    let (hdr, out) = (hdr, out.to_vec());
    assert!(out.len() <= MAX_SUPER_LEN);
    if run.len() == 1 {
        assert_eq!(hdr.gso_type, GSO_NONE);
        match partial_checksum(&run[0]).filter(|_| trusted) {
            Some(p) => {
                assert_eq!(hdr, p.hdr);
                let mut want = run[0].clone();
                want[p.field..p.field + 2].copy_from_slice(&p.pseudo.to_be_bytes());
                assert_eq!(out, want);
            }
            None => {
                assert_eq!(hdr, VnetHdr::default());
                assert_eq!(out, run[0]);
            }
        }
    } else {
        assert!([GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4].contains(&hdr.gso_type));
        let joined: Vec<u8> = run
            .iter()
            .flat_map(|f| payload_of(f).iter().copied())
            .collect();
        assert_eq!(payload_of(&out), &joined[..]);
        // Cut again and coalesce again: the same super-frame.
        let mut cut = Segmenter::new(&hdr, &out).expect("a super-frame we made cuts");
        assert_eq!(cut.count(), run.len());
        let mut again = Coalescer::with_udp();
        let mut piece = vec![0u8; cut.max_segment_len()];
        while let Some(len) = cut.next_into(&mut piece) {
            assert!(matches!(again.push(&piece[..len]), Push::Held));
        }
        let (_, back) = again.take().expect("held");
        assert_eq!(back, &out[..]);
    }
    run.clear();
}

/// The coalescer a mode's first byte asks for, and whether it trusts checksums: bit 4, UDP
/// datagrams are coalesced too (else they pass through); bit 5, the sealed modes' coalescer,
/// which takes TCP and UDP checksums as they are.
fn coalescer_for(first: u8) -> (Coalescer, bool) {
    let mut co = if first & 0x10 != 0 {
        Coalescer::with_udp()
    } else {
        Coalescer::new()
    };
    let trusted = first & 0x20 != 0;
    co.trust_checksums(trusted);
    (co, trusted)
}

fn coalesce(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let ipv6 = first & 1 != 0;
    let opt = usize::from(first >> 1 & 3) * 4;
    // Bit 3: the frames are UDP datagrams, bit 4: also coalesced (else they pass through).
    let is_udp = first & 0x08 != 0;
    let mut seq = u32::from_be_bytes([first, 0x5a, 0, 0]);
    let (mut co, trusted) = coalescer_for(first);
    let mut run: Vec<Vec<u8>> = Vec::new();
    // Each frame: [control, length]; its payload is the next `length` * 8 bytes of the input
    // (padded with a pattern if the input runs out).
    while let [ctl, len, tail @ ..] = rest {
        let n = usize::from(*len) * 8;
        let payload: Vec<u8> = (0..n)
            .map(|i| tail.get(i).copied().unwrap_or(i as u8))
            .collect();
        rest = tail.get(n..).unwrap_or_default();
        let flags = match ctl & 0x0c {
            0x04 => 0x18, // ACK PSH
            0x08 => 0x11, // ACK FIN: never joins
            _ => 0x10,    // ACK
        };
        let seq_here = if ctl & 0x10 != 0 {
            seq.wrapping_add(1)
        } else {
            seq
        };
        let port = if ctl & 0x20 != 0 { 40_001 } else { 40_000 };
        let mut frame = if is_udp {
            udp_frame(ipv6, port, &payload)
        } else {
            tcp_frame(ipv6, opt, seq_here, flags, port, &payload)
        };
        if ctl & 0x40 != 0 {
            // One byte broken after the checksums were made: the frame must not join a run.
            let at = usize::from(*ctl) % frame.len();
            frame[at] ^= 0x80;
        }
        seq = seq_here.wrapping_add(payload.len() as u32);
        loop {
            match co.push(&frame) {
                Push::Held => {
                    run.push(frame);
                    break;
                }
                Push::FlushFirst => check_taken(&mut co, &mut run, trusted),
                Push::Rejected => break,
            }
        }
        if ctl & 0x80 != 0 {
            check_taken(&mut co, &mut run, trusted);
        }
    }
    check_taken(&mut co, &mut run, trusted);
}

/// Frames of any bytes, as a peer may send them: after the first byte (bits 4 and 5 as in
/// `coalesce`), each `[length high, length low]` and that many bytes (fewer at the end of the
/// input), pushed as they are; each is also hashed for `--threads`.
fn coalesce_raw(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let (mut co, trusted) = coalescer_for(first);
    let mut run: Vec<Vec<u8>> = Vec::new();
    while let [hi, lo, tail @ ..] = rest {
        let n = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (frame, after) = tail.split_at(n);
        rest = after;
        let _ = (flow_hash(frame), queue_of(frame, 3));
        loop {
            match co.push(frame) {
                Push::Held => {
                    run.push(frame.to_vec());
                    break;
                }
                Push::FlushFirst => check_taken(&mut co, &mut run, trusted),
                Push::Rejected => {
                    assert!(run.is_empty());
                    break;
                }
            }
        }
    }
    check_taken(&mut co, &mut run, trusted);
}

fn segment(data: &[u8]) {
    let Some(hdr) = VnetHdr::parse(data) else {
        return;
    };
    let frame = &data[VNET_HDR_LEN..];
    let _ = complete_checksum(&hdr, &mut frame.to_vec());
    let Ok(mut cut) = Segmenter::new(&hdr, frame) else {
        return;
    };
    // Unused vnet flag bit: cut for a peer that completes checksums, which takes only
    // untagged frames without IPv6 option headers.
    let partial = hdr.flags & 0x80 != 0 && cut.leave_checksums_partial();
    if partial {
        let l3 = 14;
        assert!(matches!(
            frame.get(12..14),
            Some([0x08, 0x00] | [0x86, 0xdd])
        ));
        if frame[12] == 0x86 {
            assert!(
                !matches!(frame[l3 + 6], 0 | 60),
                "partial past IPv6 option headers"
            );
        }
    }
    let max = cut.max_segment_len();
    let count = cut.count();
    let header_len = cut.header_len();
    let mut out = vec![0u8; max];
    let mut n = 0;
    let mut payload = Vec::with_capacity(frame.len());
    while let Some(len) = cut.next_into(&mut out) {
        assert!(len <= max && len >= header_len);
        n += 1;
        assert!(n <= count);
        payload.extend_from_slice(&out[header_len..len]);
        if !partial {
            assert!(transport_checksum_ok(&out[..len]), "segment {n} of {count}");
        }
    }
    if n == count {
        // What the segments carry is the super-frame's payload, in order, all of it.
        assert_eq!(payload, &frame[header_len..]);
    } else {
        // Stopped early only where a segment's length fits no 16-bit length field.
        assert!(max > 65_535, "{n} of {count} segments, at most {max} bytes");
    }
}

/// Whether the TCP or UDP checksum of a cut segment verifies (Ethernet with up to two VLAN
/// tags, IPv4 with options or IPv6 with hop-by-hop and destination options headers). Where
/// the pseudo-header's destination is a route's final one, this check does not find it on its
/// own: an IPv4 header with options takes it from `Layout::pseudo_header` (whose source-route
/// rule `segment.rs`'s unit tests pin), and a segment behind an IPv6 routing header is not
/// checked (the segmenter takes that sum from the kernel's partial checksum).
fn transport_checksum_ok(f: &[u8]) -> bool {
    let mut at = 12;
    while matches!(f.get(at..at + 2), Some([0x81, 0x00] | [0x88, 0xa8])) {
        at += 4;
    }
    let l3 = at + 2;
    let (src, dst, mut protocol, mut l4) = match f.get(at..at + 2) {
        Some([0x08, 0x00]) => (
            &f[l3 + 12..l3 + 16],
            &f[l3 + 16..l3 + 20],
            f[l3 + 9],
            l3 + usize::from(f[l3] & 0x0f) * 4,
        ),
        Some([0x86, 0xdd]) => (
            &f[l3 + 8..l3 + 24],
            &f[l3 + 24..l3 + 40],
            f[l3 + 6],
            l3 + 40,
        ),
        _ => panic!("a segment that is not IP"),
    };
    while matches!(protocol, 0 | 43 | 60) {
        if protocol == 43 {
            return true;
        }
        protocol = f[l4];
        l4 += (usize::from(f[l4 + 1]) + 1) * 8;
    }
    let pseudo = if f[at..at + 2] == [0x08, 0x00] && l4 > l3 + 20 {
        Layout::parse(f)
            .expect("a segment with IPv4 options parses")
            .pseudo_header(f, f.len() - l4)
    } else {
        checksum::pseudo_header(src, dst, protocol, f.len() - l4)
    };
    let at = if protocol == 6 { l4 + 16 } else { l4 + 6 };
    if protocol == 17 && f[at..at + 2] == [0, 0] {
        return false; // never written as 0: 0xffff stands for it
    }
    checksum::finish(checksum::add(pseudo, &f[l4..])) == 0
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        // (A mode of its own, which no input of the corpus had before: the other modes'
        // inputs keep their meaning.)
        Some((0xfe, rest)) => coalesce_raw(rest),
        Some((mode, rest)) if mode % 2 == 0 => coalesce(rest),
        Some((_, rest)) => segment(rest),
        None => {}
    }
});
