//! The CPU's vector instructions, for the one place where they pay: the Internet checksum
//! that segmentation and coalescing compute over every byte of every TCP frame.
//!
//! Owns the check of what the CPU has, the timing that decides whether its routine pays
//! ([`calibrate`]: having AVX2 does not make it faster everywhere), and the only `unsafe` it
//! needs (calling code compiled for AVX2). The arithmetic is the core's
//! ([`checksum::add_portable`], inlined here into a function compiled with AVX2); this file
//! only picks it and hands it to [`checksum::install`], which checks it against the portable
//! code before using it.

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
    // SAFETY: `add_avx2` only requires a CPU with AVX2. This function is private to this
    // module and handed out only by `candidate`, after `is_x86_feature_detected!("avx2")`
    // said yes.
    unsafe { add_avx2(acc, data) }
}

/// The vector routine this CPU can run, with its name; `None` if there is none.
pub fn candidate() -> Option<(&'static str, checksum::SumFn)> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            return Some(("avx2", add_avx2_checked as checksum::SumFn));
        }
    }
    None
}

/// Bytes per slice in [`calibrate`]: a full-sized frame's TCP payload at the default MTU.
pub const CALIBRATION_SLICE: usize = 1448;
/// Rounds in [`calibrate`], alternating between the two routines; the best round counts.
pub const CALIBRATION_ROUNDS: usize = 24;
/// The vector routine is installed only if its best round takes at most this share of the
/// portable code's (in percent): a routine that is not clearly faster is not worth the call.
pub const CALIBRATION_MAX_PERCENT: u128 = 97;

/// What [`calibrate`] measured: the vector routine's and the portable code's time for one
/// [`CALIBRATION_SLICE`]-byte slice, in nanoseconds (best of the rounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calibration {
    /// The vector routine's name ("avx2").
    pub name: &'static str,
    /// Its time per slice, called the way [`checksum::add`] calls an installed routine.
    pub vector_ns: u64,
    /// The portable code's time per slice, as [`checksum::add`] runs it.
    pub portable_ns: u64,
    /// Whether the vector routine is clearly faster, so that installing it pays.
    pub pays: bool,
}

/// Times the vector routine this CPU can run against the portable code, on 64 KiB of data in
/// [`CALIBRATION_SLICE`]-byte slices, [`CALIBRATION_ROUNDS`] alternating rounds (under a
/// millisecond in all). Having the instructions does not make the routine faster: on AMD
/// Zen 1, which splits every 256-bit operation in two, the AVX2 sum is slower than the
/// portable one behind the indirect call (`cargo bench --bench offload`). `None` without a
/// vector routine.
pub fn calibrate() -> Option<(Calibration, checksum::SumFn)> {
    let (name, sum) = candidate()?;
    let data: Vec<u8> = (0..65_536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let slices = data.len() / CALIBRATION_SLICE;
    let round = |f: &dyn Fn(u64, &[u8]) -> u64| {
        let start = std::time::Instant::now();
        let mut acc = 0u64;
        for chunk in data.chunks_exact(CALIBRATION_SLICE) {
            acc = acc.wrapping_add(f(0, std::hint::black_box(chunk)));
        }
        std::hint::black_box(acc);
        start.elapsed().as_nanos()
    };
    let vector = |acc: u64, d: &[u8]| std::hint::black_box(sum)(acc, d);
    let portable = |acc: u64, d: &[u8]| checksum::add(acc, d);
    let (mut best_vector, mut best_portable) = (u128::MAX, u128::MAX);
    for _ in 0..CALIBRATION_ROUNDS {
        best_vector = best_vector.min(round(&vector));
        best_portable = best_portable.min(round(&portable));
    }
    let per_slice = |ns: u128| u64::try_from(ns / slices as u128).unwrap_or(u64::MAX);
    let calibration = Calibration {
        name,
        vector_ns: per_slice(best_vector),
        portable_ns: per_slice(best_portable),
        pays: best_vector * 100 <= best_portable * CALIBRATION_MAX_PERCENT,
    };
    Some((calibration, sum))
}

/// Installs the CPU's vector checksum routine if [`calibrate`] finds it clearly faster than
/// the portable code (and [`checksum::install`] finds it correct), and says what runs, for
/// the start-up log line: e.g. "avx2 (19 ns per 1448 bytes, portable 27)" or "portable (avx2
/// not faster here: 30 ns per 1448 bytes, portable 28)". Call once at start-up, before
/// [`checksum::add`] is used from more than one thread.
pub fn install_fast_checksum() -> String {
    let Some((c, sum)) = calibrate() else {
        return "portable".to_string();
    };
    let times = format!(
        "{} ns per {CALIBRATION_SLICE} bytes, portable {}",
        c.vector_ns, c.portable_ns
    );
    if !c.pays {
        format!("portable ({} not faster here: {times})", c.name)
    } else if checksum::install(sum) {
        format!("{} ({times})", c.name)
    } else {
        format!("portable ({} disagreed with the portable sum)", c.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Whether `/proc/cpuinfo` lists AVX2 (false where it cannot be read).
    fn cpuinfo_lists_avx2() -> bool {
        std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|info| {
            info.lines()
                .filter(|l| l.starts_with("flags"))
                .any(|l| l.split_whitespace().any(|flag| flag == "avx2"))
        })
    }

    /// The AVX2 tests have nothing to check on a CPU without AVX2; where `/proc/cpuinfo`
    /// lists it, the detection must have found it (a detection broken into "no" would
    /// otherwise turn the vector sum off with every test green).
    #[cfg(target_arch = "x86_64")]
    fn avx2_here() -> bool {
        let here = std::arch::is_x86_feature_detected!("avx2");
        assert!(
            here || !cpuinfo_lists_avx2(),
            "/proc/cpuinfo lists avx2 but it was not detected"
        );
        here
    }

    #[cfg(target_arch = "x86_64")]
    proptest! {
        #[test]
        fn avx2_sums_like_the_portable_code(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            at in 0usize..32,
            acc in any::<u32>(),
        ) {
            // (Not prop_assume: a CPU without AVX2 would reject every case and fail.)
            if !avx2_here() {
                return Ok(());
            }
            let d = &data[at.min(data.len())..];
            prop_assert_eq!(
                add_avx2_checked(u64::from(acc), d),
                checksum::add_portable(u64::from(acc), d)
            );
        }
    }

    #[test]
    fn installing_follows_the_calibration_and_changes_no_result() {
        let data: Vec<u8> = (0..2000u32).map(|i| ((i * 31) >> 2) as u8).collect();
        let before = checksum::add(0, &data);
        let said = install_fast_checksum();
        assert_eq!(
            checksum::accelerated(),
            !said.starts_with("portable"),
            "{said}"
        );
        if let Some((name, _)) = candidate() {
            assert!(said.contains(name), "{said} does not name {name}");
            assert!(said.contains("ns per 1448 bytes, portable "), "{said}");
        } else {
            assert_eq!(said, "portable");
        }
        assert_eq!(checksum::add(0, &data), before);
        if checksum::accelerated() {
            // A second install of anything is refused.
            assert!(!checksum::install(checksum::add_portable));
        }
    }

    #[test]
    fn calibration_times_both_routines_and_pays_only_when_clearly_faster() {
        let Some((c, _)) = calibrate() else {
            // (Not a strict skip: a CPU without the vector instructions is a fine machine;
            // but one whose /proc/cpuinfo lists them must have been found to have them.)
            assert!(
                !cpuinfo_lists_avx2(),
                "/proc/cpuinfo lists avx2 but there is no vector checksum to calibrate"
            );
            eprintln!("skipped: this CPU has no vector checksum to calibrate");
            return;
        };
        assert!(c.vector_ns > 0 && c.portable_ns > 0, "{c:?}");
        assert!(c.vector_ns < 100_000 && c.portable_ns < 100_000, "{c:?}");
        if c.pays {
            assert!(c.vector_ns <= c.portable_ns, "{c:?}");
        }
    }
}
