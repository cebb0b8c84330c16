//! [`AeadKey`]: one session subkey, ready to seal and open, for whichever [`Cipher`] it was
//! derived for: `ring`'s AES-GCM and ChaCha20-Poly1305, or AEGIS-128L and AEGIS-128X4 (the
//! `aegis` crate, libaegis by the draft's co-author, with its own run-time choice of AES
//! instructions).
//!
//! Owns the per-cipher nonce layout (4 zero bytes then the counter for the 96-bit nonces of
//! `ring`'s ciphers, 8 zero bytes then the counter for the AEGIS ciphers' 128-bit nonce) and the
//! wiping of AEGIS subkeys on drop. (`ring` 0.17 does not wipe its keys, nor the HKDF
//! pseudo-random keys an `Opener` keeps to derive the subkeys of sessions it has not met yet:
//! a copy of their schedules may stay in freed memory until it is reused. Only a process that
//! can read this one's memory could find them, and that process could read the live keys.)
//! It knows nothing of the datagram
//! layout: the caller hands it the associated data, the bytes to seal or open, and the counter.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey};

use super::{Cipher, COUNTER_LEN, NONCE_LEN, TAG_LEN};

/// Bytes of an AEGIS-128L key and nonce.
pub(super) const AEGIS_LEN: usize = 16;

/// A session subkey of one cipher.
// Unboxed on purpose: a key lives in a `Sealer` or in an `Opener`'s boxed session state, and
// boxing `ring`'s key would add a pointer chase to every packet for 528 bytes saved per key.
#[allow(clippy::large_enum_variant)]
pub(super) enum AeadKey {
    /// AES-128-GCM, AES-256-GCM or ChaCha20-Poly1305.
    Ring(LessSafeKey),
    /// AEGIS-128L; the key bytes are wiped when dropped.
    Aegis128L(AegisKey),
    /// AEGIS-128X4; the key bytes are wiped when dropped.
    Aegis128X4(AegisKey),
}

/// An AEGIS-128L or AEGIS-128X4 key, wiped when dropped.
pub(super) struct AegisKey([u8; AEGIS_LEN]);

impl Drop for AegisKey {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the compiler from treating the stores above as dead (as `Key` does).
        std::hint::black_box(&self.0);
    }
}

/// The 96-bit nonce of `counter` for `ring`'s ciphers: 4 zero bytes, then the counter
/// big-endian.
fn ring_nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    let (_, count) = bytes.split_at_mut(NONCE_LEN - COUNTER_LEN);
    count.copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(bytes)
}

/// The 128-bit nonce of `counter` for the AEGIS ciphers: 8 zero bytes, then the counter
/// big-endian.
fn aegis_nonce(counter: u64) -> [u8; AEGIS_LEN] {
    let mut bytes = [0u8; AEGIS_LEN];
    let (_, count) = bytes.split_at_mut(AEGIS_LEN - COUNTER_LEN);
    count.copy_from_slice(&counter.to_be_bytes());
    bytes
}

impl AeadKey {
    /// A key of `cipher` from the subkey bytes `okm` (as many as the cipher's key has).
    /// `None` when `okm` has the wrong length.
    pub(super) fn new(cipher: Cipher, okm: &[u8]) -> Option<AeadKey> {
        match cipher.ring_algorithm() {
            Some(algorithm) => UnboundKey::new(algorithm, okm)
                .ok()
                .map(|k| AeadKey::Ring(LessSafeKey::new(k))),
            None => {
                let key = AegisKey(<[u8; AEGIS_LEN]>::try_from(okm).ok()?);
                Some(if cipher == Cipher::Aegis128X4 {
                    AeadKey::Aegis128X4(key)
                } else {
                    AeadKey::Aegis128L(key)
                })
            }
        }
    }

    /// Encrypts `inner` in place under `counter`, authenticating `aad` with it; returns the
    /// tag.
    // HOT PATH
    pub(super) fn seal(&self, counter: u64, aad: &[u8], inner: &mut [u8]) -> Option<[u8; TAG_LEN]> {
        match self {
            AeadKey::Ring(key) => {
                let tag = key
                    .seal_in_place_separate_tag(ring_nonce(counter), Aad::from(aad), inner)
                    .ok()?;
                <[u8; TAG_LEN]>::try_from(tag.as_ref()).ok()
            }
            AeadKey::Aegis128L(AegisKey(key)) => Some(
                aegis::aegis128l::Aegis128L::<TAG_LEN>::new(key, &aegis_nonce(counter))
                    .encrypt_in_place(inner, aad),
            ),
            AeadKey::Aegis128X4(AegisKey(key)) => Some(
                aegis::aegis128x4::Aegis128X4::<TAG_LEN>::new(key, &aegis_nonce(counter))
                    .encrypt_in_place(inner, aad),
            ),
        }
    }

    /// Checks and decrypts `sealed` (ciphertext then the [`TAG_LEN`]-byte tag) in place under
    /// `counter` and `aad`. `false` when it does not verify (the ciphertext's bytes are then
    /// unspecified: both libraries wipe them).
    // HOT PATH
    pub(super) fn open(&self, counter: u64, aad: &[u8], sealed: &mut [u8]) -> bool {
        match self {
            AeadKey::Ring(key) => key
                .open_in_place(ring_nonce(counter), Aad::from(aad), sealed)
                .is_ok(),
            AeadKey::Aegis128L(AegisKey(key)) => split_tag(sealed).is_some_and(|(text, tag)| {
                aegis::aegis128l::Aegis128L::<TAG_LEN>::new(key, &aegis_nonce(counter))
                    .decrypt_in_place(text, tag, aad)
                    .is_ok()
            }),
            AeadKey::Aegis128X4(AegisKey(key)) => split_tag(sealed).is_some_and(|(text, tag)| {
                aegis::aegis128x4::Aegis128X4::<TAG_LEN>::new(key, &aegis_nonce(counter))
                    .decrypt_in_place(text, tag, aad)
                    .is_ok()
            }),
        }
    }
}

/// `sealed` split into its ciphertext and its [`TAG_LEN`]-byte tag; `None` when shorter.
fn split_tag(sealed: &mut [u8]) -> Option<(&mut [u8], &[u8; TAG_LEN])> {
    let tag_at = sealed.len().checked_sub(TAG_LEN)?;
    let (text, tag) = sealed.split_at_mut(tag_at);
    Some((text, <&[u8; TAG_LEN]>::try_from(&*tag).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Test vector 1 of draft-irtf-cfrg-aegis-aead (AEGIS-128L, 128-bit tag): the library we
    /// link computes the published algorithm.
    #[test]
    fn aegis_128l_matches_the_drafts_test_vector() {
        let key: [u8; 16] = unhex("10010000000000000000000000000000")
            .try_into()
            .unwrap();
        let nonce: [u8; 16] = unhex("10000200000000000000000000000000")
            .try_into()
            .unwrap();
        let mut msg = [0u8; 16];
        let tag =
            aegis::aegis128l::Aegis128L::<16>::new(&key, &nonce).encrypt_in_place(&mut msg, &[]);
        assert_eq!(msg.to_vec(), unhex("c1c0e58bd913006feba00f4b3cc3594e"));
        assert_eq!(tag.to_vec(), unhex("abe0ece80c24868a226a35d16bdae37a"));
    }

    /// Test vector 2 of draft-irtf-cfrg-aegis-aead for AEGIS-128X4 (128-bit tag; 8 bytes of
    /// associated data, 120 of message), and `AeadKey` computes the same.
    #[test]
    fn aegis_128x4_matches_the_drafts_test_vector() {
        let key = unhex("000102030405060708090a0b0c0d0e0f");
        let nonce: [u8; 16] = unhex("101112131415161718191a1b1c1d1e1f")
            .try_into()
            .unwrap();
        let mut msg = unhex(&"04050607".repeat(30));
        let tag =
            aegis::aegis128x4::Aegis128X4::<16>::new(key.as_slice().try_into().unwrap(), &nonce)
                .encrypt_in_place(&mut msg, &unhex("0102030401020304"));
        assert_eq!(
            msg,
            unhex(
                "e836118562f4479c9d35c17356a833114c21f9aa39e4dda5e5c87f4152a00fce\
                 9a7c38f832eafe8b1c12f8a7cf12a81a1ad8a9c24ba9dedfbdaa586ffea67ddc\
                 801ea97d9ab4a872f42d0e352e2713dacd609f9442c17517c5a29daf3e2a3fac\
                 4ff6b1380c4e46df7b086af6ce6bc1ed594b8dd64aed2a7e"
            )
        );
        assert_eq!(tag.to_vec(), unhex("0e56ab94e2e85db80f9d54010caabfb4"));
        // The same through `AeadKey`, whose nonce is 8 zero bytes then the counter.
        let sealer = AeadKey::new(Cipher::Aegis128X4, &key).unwrap();
        assert!(matches!(sealer, AeadKey::Aegis128X4(_)));
        let mut text = *b"sixteen bytes!!!";
        let tag = sealer.seal(9, b"ad", &mut text).unwrap();
        let mut expect = *b"sixteen bytes!!!";
        let expect_tag = aegis::aegis128x4::Aegis128X4::<16>::new(
            key.as_slice().try_into().unwrap(),
            &aegis_nonce(9),
        )
        .encrypt_in_place(&mut expect, b"ad");
        assert_eq!((text, tag), (expect, expect_tag));
    }

    #[test]
    fn nonces_put_the_counter_last() {
        assert_eq!(
            aegis_nonce(0x0102_0304_0506_0708),
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
    }

    #[test]
    fn aegis_keys_seal_open_and_refuse() {
        for cipher in [Cipher::Aegis128L, Cipher::Aegis128X4] {
            aegis_key_seals_opens_and_refuses(cipher);
        }
    }

    fn aegis_key_seals_opens_and_refuses(cipher: Cipher) {
        let key = AeadKey::new(cipher, &[7u8; 16]).unwrap();
        assert!(AeadKey::new(cipher, &[7u8; 32]).is_none());
        let mut buf = *b"a frame of some bytes, then room";
        let (text, tag_room) = buf.split_at_mut(16);
        let tag = key.seal(5, b"aad", text).unwrap();
        tag_room.copy_from_slice(&tag);
        let sealed = buf;
        let mut good = sealed;
        assert!(key.open(5, b"aad", &mut good));
        assert_eq!(&good[..16], b"a frame of some ");
        let mut other_counter = sealed;
        assert!(!key.open(6, b"aad", &mut other_counter));
        let mut other_aad = sealed;
        assert!(!key.open(5, b"aae", &mut other_aad));
        assert!(!key.open(5, b"aad", &mut [0u8; 15]), "shorter than a tag");
        for i in 0..sealed.len() {
            let mut flipped = sealed;
            flipped[i] ^= 0x01;
            assert!(!key.open(5, b"aad", &mut flipped), "byte {i} flipped");
        }
    }
}
