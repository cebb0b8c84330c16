//! What the CPU says it has, read from `/proc/cpuinfo` independently of the library's own
//! feature detection, so that a test skipped for want of AES instructions is skipped only
//! where the CPU really has none (shared by the simulator's and the end-to-end tests).

/// Whether `/proc/cpuinfo` lists the instructions ethcloud needs for AEGIS-128L: `aes` and
/// `pclmulqdq` on x86-64 (its `flags` lines), `aes` on AArch64 (`Features`). False where the
/// file cannot be read.
pub fn cpuinfo_lists_aes() -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    let needed: &[&str] = if cfg!(target_arch = "x86_64") {
        &["aes", "pclmulqdq"]
    } else if cfg!(target_arch = "aarch64") {
        &["aes"]
    } else {
        return false;
    };
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(name, _)| matches!(name.trim(), "flags" | "Features"))
        .any(|(_, flags)| {
            needed
                .iter()
                .all(|n| flags.split_whitespace().any(|f| f == *n))
        })
}

/// Asserts that a test about to skip its AEGIS part because the library found no AES
/// instructions runs on a CPU that really has none: else the library's detection is wrong,
/// and the skip would hide it.
pub fn assert_no_aes_really() {
    assert!(
        !cpuinfo_lists_aes(),
        "/proc/cpuinfo lists AES instructions, but ethcloud does not seal with AEGIS-128L: \
         its CPU feature detection is wrong (the AEGIS tests must not be skipped here)"
    );
}

/// Whether this CPU seals with AEGIS-128L (it has AES instructions); says so when not, for
/// the tests of AEGIS-128L that then have nothing to check (everything stays on
/// ChaCha20-Poly1305 there).
pub fn seals_aegis_here() -> bool {
    let here = ethcloud::crypto::Cipher::preferred_for_sessions(true)
        == ethcloud::crypto::Cipher::Aegis128L;
    if !here {
        assert_no_aes_really();
        println!("no AES instructions: no AEGIS-128L, nothing to test");
    }
    here
}
