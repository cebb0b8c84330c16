//! [`flow_hash`]: which flow a frame belongs to, the same number for both directions of one
//! conversation, for picking a queue of a multi-queue tap (`--threads`).
//!
//! Why the daemon needs it: a multi-queue tap sends a flow's outgoing frames to the queue
//! that last wrote one of that flow's incoming frames (the kernel's automatic flow steering,
//! by a symmetric hash of its own). If every received frame were written through one queue,
//! every flow would come back on that one queue and the other lanes would idle. Writing each
//! frame through the queue its flow hashes to here spreads the flows, and keeps each flow on
//! one queue, so its frames stay in order.
//!
//! Pure arithmetic over the frame's headers; nothing here is a security boundary (a peer can
//! only choose which lane carries its own flows).

use super::{ip_start, PROTO_TCP, PROTO_UDP};
#[cfg(test)]
use super::{ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN};

/// A hash of the frame's flow: IP addresses, protocol and, for TCP and UDP (not in an IPv4
/// fragment, the first included), ports; symmetric, so both directions hash alike. Up to
/// [`MAX_VLAN_TAGS`](super::MAX_VLAN_TAGS) tags (802.1Q or 802.1ad) are looked through and not hashed. Frames that
/// are not IP (ARP, more tags, ...) hash to 0.
// HOT PATH
pub fn flow_hash(frame: &[u8]) -> u32 {
    // Past the tags as the offloads look (`Layout::parse`).
    let Ok((l3, is_ipv6)) = ip_start(frame) else {
        return 0;
    };
    let Some(ip) = frame.get(l3..) else {
        return 0;
    };
    let (proto, addrs, l4): (u8, u64, Option<&[u8]>) = match is_ipv6 {
        false => {
            let Some(header) = ip.get(..20) else {
                return 0;
            };
            let ihl = usize::from(header[0] & 0x0f) * 4;
            // Any fragment, the first included (offset 0 with more-fragments set): only the
            // first carries the ports, so they are left out of every fragment's hash, and the
            // fragments of one datagram go through one queue.
            let fragment = u16::from_be_bytes([header[6], header[7]]) & 0x3fff != 0;
            let src = u64::from(u32::from_be_bytes([
                header[12], header[13], header[14], header[15],
            ]));
            let dst = u64::from(u32::from_be_bytes([
                header[16], header[17], header[18], header[19],
            ]));
            let l4 = if fragment { None } else { ip.get(ihl..) };
            (header[9], src ^ dst, l4)
        }
        true => {
            let Some(header) = ip.get(..40) else {
                return 0;
            };
            let mut addrs = 0u64;
            for word in header[8..40].chunks_exact(8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(word);
                addrs ^= u64::from_be_bytes(w);
            }
            (header[6], addrs, ip.get(40..))
        }
    };
    let ports = match (proto, l4) {
        (PROTO_TCP | PROTO_UDP, Some(l4)) => match (be16(l4, 0), be16(l4, 2)) {
            (Some(a), Some(b)) => u64::from(a ^ b),
            _ => 0,
        },
        _ => 0,
    };
    // A full 64-bit finaliser (MurmurHash3's fmix64): every input bit moves every output
    // bit. A single multiply is not enough: its top bits ignore the low bits of the ports, so
    // connections whose ports differ by 2 (Linux hands out even ports to connect()) all
    // landed on one queue of two.
    let mut x = addrs ^ (ports << 32) ^ u64::from(proto);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    (x >> 32) as u32
}

/// Which of `queues` queues the frame's flow goes through (0 with one queue).
// HOT PATH
pub fn queue_of(frame: &[u8], queues: usize) -> usize {
    if queues <= 1 {
        return 0;
    }
    let hash = u64::from(flow_hash(frame));
    // Multiply and shift instead of a division, as the kernel does.
    ((hash * queues as u64) >> 32) as usize
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    let pair = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([pair[0], pair[1]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + TCP/UDP frame from (`src`, `sport`) to (`dst`, `dport`).
    fn ipv4(proto: u8, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 20 + 20];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        f[14] = 0x45;
        f[14 + 9] = proto;
        f[14 + 12..14 + 16].copy_from_slice(&src);
        f[14 + 16..14 + 20].copy_from_slice(&dst);
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    fn ipv6(src: [u8; 16], sport: u16, dst: [u8; 16], dport: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14 + 40 + 8];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        f[14] = 0x60;
        f[14 + 6] = PROTO_UDP;
        f[14 + 8..14 + 24].copy_from_slice(&src);
        f[14 + 24..14 + 40].copy_from_slice(&dst);
        f[54..56].copy_from_slice(&sport.to_be_bytes());
        f[56..58].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn both_directions_of_a_flow_hash_alike_and_other_flows_differ() {
        let a = [198, 18, 0, 1];
        let b = [198, 18, 0, 2];
        let there = ipv4(PROTO_TCP, a, 40_000, b, 5201);
        let back = ipv4(PROTO_TCP, b, 5201, a, 40_000);
        assert_eq!(flow_hash(&there), flow_hash(&back));
        assert_ne!(
            flow_hash(&there),
            flow_hash(&ipv4(PROTO_TCP, a, 40_001, b, 5201))
        );
        assert_ne!(
            flow_hash(&there),
            flow_hash(&ipv4(PROTO_UDP, a, 40_000, b, 5201))
        );
        let mut tagged = there.clone();
        tagged.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
        assert_eq!(flow_hash(&tagged), flow_hash(&there));
        // QinQ: a service tag, then a customer tag, as the offloads look through.
        let mut stacked = tagged.clone();
        stacked.splice(12..12, [0x88, 0xa8, 0x00, 0x09]);
        assert_eq!(flow_hash(&stacked), flow_hash(&there));
        let mut service = there.clone();
        service.splice(12..12, [0x88, 0xa8, 0x00, 0x09]);
        assert_eq!(flow_hash(&service), flow_hash(&there));
        // A third tag is past what is looked through: not IP, queue 0's hash.
        let mut three = stacked.clone();
        three.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
        assert_eq!(flow_hash(&three), 0);

        // The fragments of one datagram: the first (offset 0, more fragments) carries the
        // ports, the others do not; all hash alike.
        let mut first = ipv4(PROTO_UDP, a, 40_000, b, 5201);
        first[14 + 6] = 0x20;
        let mut later = ipv4(PROTO_UDP, a, 1, b, 2);
        later[14 + 6..14 + 8].copy_from_slice(&185u16.to_be_bytes());
        assert_eq!(flow_hash(&first), flow_hash(&later));
        // (An unfragmented datagram of that flow hashes with its ports.)
        assert_ne!(
            flow_hash(&first),
            flow_hash(&ipv4(PROTO_UDP, a, 40_000, b, 5201))
        );

        let (x, y) = ([0xfd; 16], [0xfe; 16]);
        assert_eq!(flow_hash(&ipv6(x, 1, y, 2)), flow_hash(&ipv6(y, 2, x, 1)));
        assert_ne!(flow_hash(&ipv6(x, 1, y, 2)), flow_hash(&ipv6(x, 1, y, 3)));
    }

    #[test]
    fn flows_spread_over_the_queues_and_odd_frames_go_to_queue_0() {
        let mut per_queue = [0usize; 4];
        for port in 0..4000u16 {
            let frame = ipv4(
                PROTO_TCP,
                [198, 18, 0, 1],
                30_000 + port,
                [198, 18, 0, 2],
                5201,
            );
            per_queue[queue_of(&frame, 4)] += 1;
        }
        // 1000 each if perfectly even; each queue gets a fair share.
        assert!(
            per_queue.iter().all(|&n| (700..1300).contains(&n)),
            "{per_queue:?}"
        );
        for short in [&[][..], &[0u8; 13][..], &[0u8; 60][..]] {
            assert_eq!(queue_of(short, 4), 0);
        }
        let mut truncated = ipv4(PROTO_TCP, [198, 18, 0, 1], 1, [198, 18, 0, 2], 2);
        truncated.truncate(30);
        assert_eq!(flow_hash(&truncated), 0);
        assert_eq!(queue_of(&ipv4(PROTO_TCP, [1; 4], 1, [2; 4], 2), 1), 0);
    }

    /// Neighbouring flows (ports 1, 2, 4, ... apart, as one client's connections are, or
    /// neighbouring addresses) are as likely as any two flows to share a queue: about 1 in
    /// `queues`, never always.
    #[test]
    fn neighbouring_flows_share_a_queue_no_more_often_than_chance() {
        let frame =
            |addr: u8, port: u16| ipv4(PROTO_TCP, [198, 18, 0, addr], port, [198, 18, 1, 2], 5201);
        for queues in [2usize, 4] {
            for stride in [1u16, 2, 4, 8, 16] {
                let same = (0..2000u16)
                    .filter(|&i| {
                        let port = 32_768 + 7 * i;
                        queue_of(&frame(1, port), queues)
                            == queue_of(&frame(1, port + stride), queues)
                    })
                    .count();
                let expected = 2000 / queues;
                assert!(
                    same.abs_diff(expected) < expected / 4,
                    "ports {stride} apart on {queues} queues: {same} of 2000 pairs share one"
                );
            }
            let same = (1..=200u8)
                .filter(|&a| {
                    queue_of(&frame(a, 40_000), queues) == queue_of(&frame(a + 1, 40_000), queues)
                })
                .count();
            assert!(
                same.abs_diff(200 / queues) < 200 / queues / 2,
                "neighbouring addresses on {queues} queues: {same} of 200 pairs share one"
            );
        }
    }

    proptest::proptest! {
        /// Any bytes at all: no panic, a queue in range, and IP frames cut anywhere still
        /// hash without reading past their end.
        #[test]
        fn any_bytes_hash_to_a_queue_in_range(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..120),
            queues in 1usize..17,
            kind in 0u8..3,
        ) {
            let mut bytes = bytes;
            if bytes.len() >= 14 {
                let ethertype: u16 = [ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN][usize::from(kind)];
                bytes[12..14].copy_from_slice(&ethertype.to_be_bytes());
            }
            proptest::prop_assert!(queue_of(&bytes, queues) < queues);
            let _ = flow_hash(&bytes);
        }
    }
}
