//! The CPU's vector instructions, for the one place where they pay: the Internet checksum
//! that segmentation and coalescing compute over every byte of every TCP frame.
//!
//! Owns the check of what the CPU has and the only `unsafe` it needs (calling code compiled
//! for AVX2). The arithmetic is the core's ([`checksum::add_portable`], inlined here into a
//! function compiled with AVX2); this file only picks it and hands it to
//! [`checksum::install`], which checks it against the portable code before using it.

use crate::offload::checksum;

/// [`checksum::add_portable`] compiled for AVX2: the same loop over 32-byte chunks, its lanes
/// in two 256-bit registers instead of four 128-bit ones (19 ns instead of 27 for a 1400-byte
/// frame on the development machine).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn add_avx2(acc: u64, data: &[u8]) -> u64 {
    checksum::add_portable(acc, data)
}

/// [`add_avx2`] behind a safe signature, for [`checksum::install`].
#[cfg(target_arch = "x86_64")]
fn add_avx2_checked(acc: u64, data: &[u8]) -> u64 {
    // SAFETY: `add_avx2` only requires a CPU with AVX2. This function is handed to the core
    // only by `install_fast_checksum`, after `is_x86_feature_detected!("avx2")` said yes, and
    // is not reachable any other way (it is private to this module).
    unsafe { add_avx2(acc, data) }
}

/// Installs the fastest checksum routine this CPU runs, if one beats the portable code, and
/// names it ("avx2"); `None` if the portable code stays. Call once at start-up.
pub fn install_fast_checksum() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && checksum::install(add_avx2_checked) {
            return Some("avx2");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[cfg(target_arch = "x86_64")]
    proptest! {
        #[test]
        fn avx2_sums_like_the_portable_code(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            at in 0usize..32,
            acc in any::<u32>(),
        ) {
            prop_assume!(std::arch::is_x86_feature_detected!("avx2"));
            let d = &data[at.min(data.len())..];
            prop_assert_eq!(
                add_avx2_checked(u64::from(acc), d),
                checksum::add_portable(u64::from(acc), d)
            );
        }
    }

    #[test]
    fn installing_is_accepted_once_and_changes_no_result() {
        let data: Vec<u8> = (0..2000u32).map(|i| ((i * 31) >> 2) as u8).collect();
        let before = checksum::add(0, &data);
        let name = install_fast_checksum();
        if name.is_some() {
            assert!(checksum::accelerated());
        }
        assert_eq!(checksum::add(0, &data), before);
        if name.is_some() {
            // A second install of anything is refused.
            assert!(!checksum::install(checksum::add_portable));
        }
    }
}
