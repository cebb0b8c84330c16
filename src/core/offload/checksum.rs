//! The Internet checksum (RFC 1071): one's-complement sums over big-endian 16-bit words.
//!
//! Owns the arithmetic only, and the one slot (a `OnceLock`, set at most once, at start-up)
//! for a faster routine the OS edge may install; it never looks at the CPU itself (unlike
//! `crypto`'s choice of cipher). Sums are
//! kept unfolded in a `u64` so that the pieces of one checksum (pseudo-header, header,
//! payload) can be added before [`fold`]ing; every piece but the last must have an even
//! length.

use std::sync::OnceLock;

/// A routine that sums like [`add_portable`]: same arguments, same result for every input.
pub type SumFn = fn(u64, &[u8]) -> u64;

/// The faster equivalent of [`add_portable`] that the OS edge installed, if any.
static FAST: OnceLock<SumFn> = OnceLock::new();

/// Makes [`add`] use `sum` from now on, after checking that it agrees with [`add_portable`]
/// on inputs of every length class and alignment (lengths 0 to 300 at 8 offsets, and two
/// 64 KiB slices, one of them all ones so that every word carries). Returns false, and
/// changes nothing, if it disagrees or if a routine is already installed. The OS edge calls this once at start-up with a routine compiled for the CPU's
/// vector instructions (see `sys::cpu`); this module never looks at the CPU itself.
pub fn install(sum: SumFn) -> bool {
    agrees_with_portable(sum) && FAST.set(sum).is_ok()
}

/// The check [`install`] makes: `sum` gives [`add_portable`]'s result on every test input.
fn agrees_with_portable(sum: SumFn) -> bool {
    let data: Vec<u8> = (0..65_600u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let short = (0..8).all(|at| {
        (0..300).all(|len| {
            let d = &data[at..at + len];
            sum(7, d) == add_portable(7, d)
        })
    });
    let ones = vec![0xffu8; 65_535];
    short
        && sum(0, &data[1..65_536]) == add_portable(0, &data[1..65_536])
        && sum(0, &ones) == add_portable(0, &ones)
}

/// True if [`install`] put a faster routine in place.
pub fn accelerated() -> bool {
    FAST.get().is_some()
}

/// Slices shorter than this (addresses, headers) are summed inline by [`add_portable`] even
/// where a faster routine is installed: for them the call would cost more than it saves.
const FAST_MIN_LEN: usize = 128;

/// Adds `data` to the running sum `acc` (an odd last byte counts as its high half): with the
/// routine [`install`]ed, if any and if `data` is long enough, else with [`add_portable`].
/// The result is the same.
// HOT PATH
pub fn add(acc: u64, data: &[u8]) -> u64 {
    if data.len() >= FAST_MIN_LEN {
        if let Some(sum) = FAST.get() {
            return sum(acc, data);
        }
    }
    add_portable(acc, data)
}

/// Adds `data` to the running sum `acc` (an odd last byte counts as its high half), in
/// portable code.
///
/// The bulk is summed as native-endian 32-bit words in eight independent `u64` lanes (which
/// the compiler turns into vector adds: four 128-bit registers with the baseline's SSE2, two
/// 256-bit ones where the caller is compiled for AVX2), folded, and byte-swapped into
/// network order at the end: the one's-complement sum does not depend on byte order (RFC 1071,
/// section 2(B)). The lanes cannot overflow: a slice would need 2^32 chunks to carry out of
/// 64 bits. Always inlined, so that a caller compiled with more vector instructions gets a
/// loop compiled with them.
#[inline(always)]
pub fn add_portable(acc: u64, data: &[u8]) -> u64 {
    let mut lanes = [0u64; 8];
    let mut chunks = data.chunks_exact(32);
    for chunk in &mut chunks {
        for (lane, word) in lanes.iter_mut().zip(chunk.chunks_exact(4)) {
            let mut b = [0u8; 4];
            b.copy_from_slice(word);
            *lane += u64::from(u32::from_ne_bytes(b));
        }
    }
    let mut native = lanes
        .iter()
        .fold(0u64, |a, &l| a + (l >> 32) + (l & 0xffff_ffff));
    let rest = chunks.remainder();
    let mut pairs = rest.chunks_exact(2);
    for p in &mut pairs {
        native += u64::from(u16::from_ne_bytes([p[0], p[1]]));
    }
    let folded = fold(native);
    let network = if cfg!(target_endian = "little") {
        folded.swap_bytes()
    } else {
        folded
    };
    let mut acc = acc + u64::from(network);
    if let [last] = pairs.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds a running sum into 16 bits (not complemented).
pub fn fold(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    // The loop leaves at most 16 bits.
    u16::try_from(acc).unwrap_or(u16::MAX)
}

/// The checksum to store: the complement of the folded sum.
pub fn finish(acc: u64) -> u16 {
    !fold(acc)
}

/// The sum of the TCP/UDP pseudo-header: addresses, protocol and the transport length.
/// `src` and `dst` are 4 bytes (IPv4) or 16 bytes (IPv6).
pub fn pseudo_header(src: &[u8], dst: &[u8], protocol: u8, l4_len: usize) -> u64 {
    let acc = add(add(0, src), dst);
    acc + u64::from(protocol) + l4_len as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_routine_that_sums_like_the_portable_one_is_accepted() {
        assert!(agrees_with_portable(add_portable));
        // Wrong only from 64 bytes on, or only at the odd last byte: both caught.
        assert!(!agrees_with_portable(|acc, d| {
            add_portable(acc, d) + u64::from(d.len() >= 64)
        }));
        assert!(!agrees_with_portable(|acc, d| {
            add_portable(acc, d.get(..d.len() & !1).unwrap_or_default())
        }));
    }

    #[test]
    fn rfc1071_example_sums_to_ddf2() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
    }

    #[test]
    fn word_sizes_and_odd_tails_agree_with_a_plain_16_bit_sum() {
        let data: Vec<u8> = (0..1001u32)
            .map(|i| (i.wrapping_mul(7919) >> 3) as u8)
            .collect();
        for len in [
            0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 999, 1000, 1001,
        ] {
            let d = &data[..len];
            let mut plain: u64 = 0;
            for p in d.chunks(2) {
                plain += u64::from(p[0]) << 8 | u64::from(*p.get(1).unwrap_or(&0));
            }
            assert_eq!(fold(add(0, d)), fold(plain), "len {len}");
        }
    }

    #[test]
    fn pieces_sum_like_the_whole_even_with_every_carry() {
        // All-ones data carries on every word; a 64 KiB slice is the largest a frame gives.
        for fill in [0xffu8, 0x80, 0x01] {
            let data = vec![fill; 65_535];
            let mut plain: u64 = 0;
            for p in data.chunks(2) {
                plain += u64::from(p[0]) << 8 | u64::from(*p.get(1).unwrap_or(&0));
            }
            assert_eq!(fold(add(0, &data)), fold(plain), "fill {fill:#x}");
            for cut in [0, 2, 14, 16, 1000, 65_534] {
                let (a, b) = data.split_at(cut);
                assert_eq!(fold(add(add(7, a), b)), fold(plain + 7), "cut {cut}");
            }
        }
    }

    #[test]
    fn ipv4_header_checksum_of_a_known_header() {
        // A real IPv4 header (checksum field b861), from the Wikipedia example.
        let mut h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(finish(add(0, &h)), 0xb861);
        h[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(fold(add(0, &h)), 0xffff);
    }
}
