//! Test helpers: frames built from scratch with a naive checksum, as an independent oracle
//! for the segmenter and the coalescer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::vnet::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4};
use super::{PROTO_TCP, PROTO_UDP};

/// One kind of frame.
#[derive(Clone, Debug)]
pub struct Spec {
    pub is_ipv6: bool,
    pub protocol: u8,
    pub vlan: Option<u16>,
    pub tcp_flags: u8,
    pub ip_id: u16,
    pub seq: u32,
    pub src_port: u16,
}

impl Spec {
    pub fn tcp(is_ipv6: bool, vlan: Option<u16>) -> Spec {
        Spec {
            is_ipv6,
            protocol: PROTO_TCP,
            vlan,
            tcp_flags: 0x18, // ACK PSH
            ip_id: 0x1234,
            seq: 0xffff_f000, // wraps within the test payloads
            src_port: 40_000,
        }
    }
    pub fn udp(is_ipv6: bool, vlan: Option<u16>) -> Spec {
        Spec {
            protocol: PROTO_UDP,
            ..Spec::tcp(is_ipv6, vlan)
        }
    }
    pub fn l3(&self) -> usize {
        if self.vlan.is_some() {
            18
        } else {
            14
        }
    }
    pub fn l4(&self) -> usize {
        self.l3() + if self.is_ipv6 { 40 } else { 20 }
    }
    pub fn header_len(&self) -> usize {
        // TCP with 12 bytes of options (NOP NOP timestamp).
        self.l4() + if self.protocol == PROTO_TCP { 32 } else { 8 }
    }
    pub fn checksum_at(&self) -> usize {
        self.l4() + if self.protocol == PROTO_TCP { 16 } else { 6 }
    }
}

pub fn all_specs() -> Vec<Spec> {
    let mut v = Vec::new();
    for is_ipv6 in [false, true] {
        for vlan in [None, Some(7)] {
            v.push(Spec::tcp(is_ipv6, vlan));
            v.push(Spec::udp(is_ipv6, vlan));
        }
    }
    v
}

pub fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

pub fn xorshift(state: &mut u32) -> u32 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    x
}

fn naive_sum(data: &[u8]) -> u32 {
    let mut s: u32 = 0;
    for p in data.chunks(2) {
        s += u32::from(p[0]) << 8 | u32::from(*p.get(1).unwrap_or(&0));
        s = (s & 0xffff) + (s >> 16);
    }
    s
}

fn naive_fold(mut s: u32) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn pseudo(f: &[u8], spec: &Spec, l4_len: usize) -> u32 {
    let l3 = spec.l3();
    let addrs = if spec.is_ipv6 {
        &f[l3 + 8..l3 + 40]
    } else {
        &f[l3 + 12..l3 + 20]
    };
    naive_sum(addrs) + u32::from(spec.protocol) + l4_len as u32
}

/// True if the IPv4 header checksum and the TCP/UDP checksum verify.
pub fn checksums_valid(f: &[u8]) -> bool {
    let l3 = if f[12] == 0x81 { 18 } else { 14 };
    let is_ipv6 = f[l3] >> 4 == 6;
    let l4 = l3 + if is_ipv6 { 40 } else { 20 };
    if !is_ipv6 && naive_fold(naive_sum(&f[l3..l4])) != 0xffff {
        return false;
    }
    let protocol = if is_ipv6 { f[l3 + 6] } else { f[l3 + 9] };
    let spec = Spec {
        is_ipv6,
        protocol,
        vlan: (l3 == 18).then_some(0),
        ..Spec::tcp(is_ipv6, None)
    };
    naive_fold(pseudo(f, &spec, f.len() - l4) + naive_sum(&f[l4..])) == 0xffff
}

/// One frame with the given fields; `checksum` None fills in the full checksum, Some(v)
/// stores v.
fn build(spec: &Spec, payload: &[u8], seq: u32, flags: u8, id: u16, partial: bool) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&[2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1]);
    if let Some(vid) = spec.vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&vid.to_be_bytes());
    }
    f.extend_from_slice(if spec.is_ipv6 {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    let l3 = f.len();
    let l4_len = payload.len() + if spec.protocol == PROTO_TCP { 32 } else { 8 };
    if spec.is_ipv6 {
        f.extend_from_slice(&[0x60, 0x0a, 0xbc, 0xde]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[spec.protocol, 64]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&[0x45, 0x00]);
        f.extend_from_slice(&((20 + l4_len) as u16).to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.extend_from_slice(&[0x40, 0x00, 64, spec.protocol, 0, 0]);
        f.extend_from_slice(&[198, 19, 0, 1, 198, 19, 0, 2]);
        let c = !naive_fold(naive_sum(&f[l3..l3 + 20]));
        f[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
    }
    let l4 = f.len();
    f.extend_from_slice(&spec.src_port.to_be_bytes());
    f.extend_from_slice(&5201u16.to_be_bytes());
    if spec.protocol == PROTO_TCP {
        f.extend_from_slice(&seq.to_be_bytes());
        f.extend_from_slice(&0x0102_0304u32.to_be_bytes());
        f.extend_from_slice(&[0x80, flags]);
        f.extend_from_slice(&[0x01, 0xf5, 0, 0, 0, 0]);
        f.extend_from_slice(&[1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9]);
    } else {
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(payload);
    let at = spec.checksum_at();
    let c = if partial {
        naive_fold(pseudo(&f, spec, f.len() - l4))
    } else {
        let c = !naive_fold(pseudo(&f, spec, f.len() - l4) + naive_sum(&f[l4..]));
        if c == 0 && spec.protocol == PROTO_UDP {
            0xffff
        } else {
            c
        }
    };
    f[at..at + 2].copy_from_slice(&c.to_be_bytes());
    f
}

/// The super-frame and header a tap with TSO/USO hands out for `payload`.
pub fn build_super(spec: &Spec, payload: &[u8], mss: usize) -> (VnetHdr, Vec<u8>) {
    let f = build(spec, payload, spec.seq, spec.tcp_flags, spec.ip_id, true);
    let gso_type = match (spec.protocol, spec.is_ipv6) {
        (PROTO_TCP, false) => GSO_TCPV4,
        (PROTO_TCP, true) => GSO_TCPV6,
        _ => GSO_UDP_L4,
    };
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type,
        hdr_len: spec.header_len() as u16,
        gso_size: mss as u16,
        csum_start: spec.l4() as u16,
        csum_offset: (spec.checksum_at() - spec.l4()) as u16,
    };
    (hdr, f)
}

/// The real frames that super-frame stands for, built one by one.
pub fn build_segments(spec: &Spec, payload: &[u8], mss: usize) -> Vec<Vec<u8>> {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(mss).collect()
    };
    let n = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut flags = spec.tcp_flags;
            if i + 1 != n {
                flags &= !0x09;
            }
            if i != 0 {
                flags &= !0x80;
            }
            let seq = spec.seq.wrapping_add((i * mss) as u32);
            build(
                spec,
                c,
                seq,
                flags,
                spec.ip_id.wrapping_add(i as u16),
                false,
            )
        })
        .collect()
}
