//! Random bytes from the kernel (`getrandom(2)`): keyed mode's session ids, the seed and the
//! reseeds of the per-node keys' generator, `genkey`'s keys, temporary file names.
//!
//! Owns the one syscall; callers decide what the bytes are for.

use std::io;

/// Fills `buf` with random bytes from the kernel's CSPRNG, retrying on `EINTR` and short reads.
///
/// # Errors
///
/// The OS error if `getrandom` fails (e.g. `ENOSYS` on a very old kernel).
pub fn fill(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = buf.get_mut(filled..).unwrap_or_default();
        // SAFETY: `rest` is a valid, writable buffer of `rest.len()` bytes for the duration of
        // the call; flags 0 means "block until the pool is initialised", which is what we want.
        match unsafe { syscall!(getrandom(rest.as_mut_ptr().cast(), rest.len(), 0)) } {
            Ok(n) => filled += usize::try_from(n).unwrap_or(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_fill_fills_and_differs() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 32]);
    }
}
