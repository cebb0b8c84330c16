//! Nanoseconds per 64 KiB TCP super-frame through the offload code of both nodes: cut into
//! 1400-byte frames as the sending node does after a tap read (headers, sequence numbers and a
//! full TCP checksum per frame), then coalesced back into one super-frame as the receiving node
//! does before its tap write (each frame's checksums verified first). The checksum is most of
//! this work, so the figure is given twice in one run: with the portable sum, and with the
//! routine the daemon installs at start-up for this CPU (`sys::cpu`, e.g. AVX2), and their ratio;
//! then as in the sealed modes, where the receiving node does not verify the checksums
//! (`Coalescer::trust_checksums`), and where the sending node also leaves them partial for a
//! receiver that completes them (`Segmenter::leave_checksums_partial`).
//!
//! Run: `cargo bench --bench offload`. Prints the median of 11 runs of 2 000 super-frames.

use std::hint::black_box;
use std::time::Instant;

use ethcloud::offload::checksum;
use ethcloud::offload::coalesce::{Coalescer, Push};
use ethcloud::offload::segment::Segmenter;
use ethcloud::offload::vnet::{VnetHdr, F_NEEDS_CSUM, GSO_TCPV4};

/// Ethernet + IPv4 + TCP with 12 bytes of options (as Linux sends them: NOP NOP timestamp).
const HDR_LEN: usize = 14 + 20 + 32;
/// TCP payload per frame for a 1400-byte tap MTU: 1400 - 20 - 32.
const MSS: usize = 1348;
const PAYLOAD: usize = 65_536 - 14 - 20 - 32 - 2;

/// A TSO super-frame as the tap hands it over: one header for the whole payload, the checksum
/// field holding the pseudo-header sum and the vnet header asking to finish it.
fn super_frame() -> (VnetHdr, Vec<u8>) {
    let mut f = vec![0u8; HDR_LEN + PAYLOAD];
    f[0..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 2]);
    f[6..12].copy_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + 32 + PAYLOAD) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
    ip[6] = 0x40; // DF
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[198, 19, 0, 1]);
    ip[16..20].copy_from_slice(&[198, 19, 0, 2]);
    let tcp = &mut f[34..66];
    tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&1_000_000u32.to_be_bytes());
    tcp[12] = 8 << 4;
    tcp[13] = 0x10; // ACK
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    tcp[20..24].copy_from_slice(&[1, 1, 8, 10]);
    let mut x = 0x9e37_79b9u32;
    for b in &mut f[HDR_LEN..] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    let pseudo = checksum::pseudo_header(&[198, 19, 0, 1], &[198, 19, 0, 2], 6, 32 + PAYLOAD);
    let partial = checksum::fold(pseudo);
    f[34 + 16..34 + 18].copy_from_slice(&partial.to_be_bytes());
    let hdr = VnetHdr {
        flags: F_NEEDS_CSUM,
        gso_type: GSO_TCPV4,
        hdr_len: HDR_LEN as u16,
        gso_size: MSS as u16,
        csum_start: 34,
        csum_offset: 16,
    };
    (hdr, f)
}

/// Cuts `frame` and coalesces the pieces; returns the coalesced length (all must join).
fn round_trip(
    hdr: &VnetHdr,
    frame: &[u8],
    out: &mut [u8],
    co: &mut Coalescer,
    partial: bool,
) -> usize {
    let mut segments = Segmenter::new(hdr, frame).expect("a valid super-frame");
    if partial {
        segments.leave_checksums_partial();
    }
    while let Some(len) = segments.next_into(out) {
        let pushed = co.push(&out[..len]);
        assert!(matches!(pushed, Push::Held), "every frame joins the run");
    }
    co.take().map_or(0, |(_, f)| f.len())
}

fn median_ns(hdr: &VnetHdr, frame: &[u8], trusted: bool, partial: bool) -> f64 {
    const ROUNDS: usize = 2_000;
    let mut out = vec![0u8; 2048];
    let mut co = Coalescer::new();
    co.trust_checksums(trusted);
    let mut runs: Vec<f64> = (0..11)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..ROUNDS {
                black_box(round_trip(
                    hdr,
                    black_box(frame),
                    &mut out,
                    &mut co,
                    partial,
                ));
            }
            start.elapsed().as_nanos() as f64 / ROUNDS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn main() {
    let (hdr, frame) = super_frame();
    let mut out = vec![0u8; 2048];
    let mut co = Coalescer::new();
    let whole = round_trip(&hdr, &frame, &mut out, &mut co, false);
    assert_eq!(whole, frame.len(), "the super-frame comes back whole");
    let frames = PAYLOAD.div_ceil(MSS);
    println!(
        "one {}-byte TCP super-frame, cut into {frames} frames and coalesced back:",
        frame.len()
    );
    let portable = median_ns(&hdr, &frame, false, false);
    println!(
        "  portable checksum: {portable:>8.0} ns ({:.0} ns per frame)",
        portable / frames as f64
    );
    match ethcloud::sys::cpu::calibrate() {
        Some((calibration, sum)) => {
            assert!(ethcloud::offload::checksum::install(sum));
            let fast = median_ns(&hdr, &frame, false, false);
            let name = calibration.name;
            println!(
                "  {name} checksum:     {fast:>8.0} ns ({:.0} ns per frame), {:.2}x the portable time",
                fast / frames as f64,
                fast / portable
            );
            println!(
                "  start-up calibration: {name} {} ns, portable {} ns per {} bytes: the daemon {}",
                calibration.vector_ns,
                calibration.portable_ns,
                ethcloud::sys::cpu::CALIBRATION_SLICE,
                if calibration.pays {
                    "installs it"
                } else {
                    "keeps the portable sum"
                }
            );
        }
        None => println!("  no faster checksum for this CPU: the daemon uses the portable one"),
    }
    // The sealed modes: the receiving node takes the frames' checksums as the AEAD vouched
    // for them, so only the sending node sums (with the routine installed above).
    let trusted = median_ns(&hdr, &frame, true, false);
    println!(
        "  sealed modes (receiver trusts the checksums): {trusted:>8.0} ns ({:.0} ns per frame)",
        trusted / frames as f64
    );
    // And to a peer that completes checksums (Hello flag 0x20): the sender sums nothing either.
    let partial = median_ns(&hdr, &frame, true, true);
    println!(
        "  sealed modes, checksums left to the receiver:   {partial:>8.0} ns ({:.0} ns per frame)",
        partial / frames as f64
    );
}
