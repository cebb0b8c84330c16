//! [`Random`]: the random bytes of per-node keys, drawn from a seed the caller passes.
//!
//! Owns the generator only: the handshakes' ephemeral keys and the cookie secrets come from
//! it, so the core reads no OS random source (the daemon seeds it from the OS, a simulation
//! from its own seed, and then runs the same bytes every time).
//!
//! The generator is HMAC-SHA256 with *fast key erasure*: each draw computes its output as
//! HMAC(k, "out" ‖ block number) and then replaces `k` by HMAC(k, "next") and wipes the old
//! one. HMAC-SHA256 is a pseudo-random function, so with a 32-byte seed nobody who does not
//! know it can tell the output from random bytes; and since `k` moves on after every draw, a
//! copy of the memory taken later tells nothing about keys drawn before it (the ephemeral
//! keys that give the sessions their forward secrecy). [`Random::reseed`] mixes fresh bytes
//! in, so that one taken earlier does not tell the later ones either (the daemon does it
//! every second). What `ring` keeps of an HMAC key (its inner and outer states, on the stack
//! of a draw) is not wiped, as ring's own copies of keys never are.

use ring::hmac;

/// A deterministic generator of random bytes from a 32-byte seed (see the module doc). Its
/// `Debug` shows nothing of its state.
pub struct Random {
    key: [u8; 32],
}

impl Random {
    /// A generator seeded with `seed`, under `label` (one seed gives unrelated streams under
    /// different labels).
    pub fn new(seed: &[u8; 32], label: &[u8]) -> Random {
        let mut random = Random { key: *seed };
        random.rekey(&[b"label", label]);
        random
    }

    /// Fills `out` with the next bytes, then moves the key on.
    pub fn fill(&mut self, out: &mut [u8]) {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        for (block, chunk) in (0u64..).zip(out.chunks_mut(32)) {
            let mut ctx = hmac::Context::with_key(&key);
            ctx.update(b"out");
            ctx.update(&block.to_be_bytes());
            let tag = ctx.sign();
            let n = chunk.len();
            chunk.copy_from_slice(&tag.as_ref()[..n]);
        }
        self.rekey(&[b"next"]);
    }

    /// 32 bytes, for a key or the seed of another generator.
    pub fn draw(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.fill(&mut out);
        out
    }

    /// Mixes `fresh` (random bytes from the OS, say) into the key.
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.rekey(&[b"reseed", fresh]);
    }

    /// Replaces the key by HMAC(key, parts...) and wipes the old one.
    fn rekey(&mut self, parts: &[&[u8]]) {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.key);
        let mut ctx = hmac::Context::with_key(&key);
        for part in parts {
            ctx.update(part);
        }
        self.key.copy_from_slice(ctx.sign().as_ref());
    }
}

impl Drop for Random {
    fn drop(&mut self) {
        super::keys::wipe(&mut self.key);
    }
}

impl core::fmt::Debug for Random {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Random { .. }")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_stream_and_another_seed_or_label_another() {
        let mut a = Random::new(&[1; 32], b"x");
        let mut b = Random::new(&[1; 32], b"x");
        let (first, second) = (a.draw(), a.draw());
        assert_eq!(b.draw(), first);
        assert_eq!(b.draw(), second);
        assert_ne!(first, second, "the key moves on after a draw");
        assert_ne!(Random::new(&[2; 32], b"x").draw(), first);
        assert_ne!(Random::new(&[1; 32], b"y").draw(), first);
        assert_ne!(first, [1; 32]);
    }

    #[test]
    fn long_draws_are_made_of_distinct_blocks_and_short_ones_are_prefixes() {
        let mut long = [0u8; 100];
        Random::new(&[3; 32], b"x").fill(&mut long);
        assert_ne!(long[..32], long[32..64]);
        assert_ne!(long[64..96], long[32..64]);
        let mut short = [0u8; 5];
        Random::new(&[3; 32], b"x").fill(&mut short);
        assert_eq!(short, long[..5]);
        // An empty draw still moves the key on.
        let mut c = Random::new(&[3; 32], b"x");
        c.fill(&mut []);
        assert_ne!(c.draw()[..5], short);
    }

    #[test]
    fn a_reseed_changes_what_follows() {
        let mut a = Random::new(&[4; 32], b"x");
        let mut b = Random::new(&[4; 32], b"x");
        b.reseed(&[9; 32]);
        assert_ne!(a.draw(), b.draw());
        assert_eq!(format!("{a:?}"), "Random { .. }");
    }
}
