//! The `snow` crypto resolver the handshakes build their Noise states with: `snow`'s default
//! resolver, except for X25519, which knows this node's static key pair.
//!
//! `snow` derives the public key of every private key it is given, so building a handshake
//! state with the node's static key costs a base-point multiplication each time: about 140 us
//! of the 480 us that refusing an untrusted initiation costs on the reference machine (a Zen 1
//! at 2 GHz), all of it spent again on a key whose public half [`Identity`] already holds.
//! [`Resolver`] hands `snow` that public half instead. Any other private key (the ephemeral
//! keys, a test's fixed ephemeral) gets its public key computed as before, and every
//! Diffie-Hellman is the same `curve25519-dalek` arithmetic `snow` uses.
//!
//! Owns only that resolver and its X25519 implementation; the messages and keys are
//! `handshake`'s. No I/O: randomness comes from `snow`'s default RNG, as before.
//!
//! [`Identity`]: super::handshake::Identity

use curve25519_dalek::MontgomeryPoint;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::keys::KEY_LEN;

/// A static key pair: the private key and its public key, computed once.
#[derive(Clone)]
pub(super) struct KeyPair {
    secret: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
}

impl KeyPair {
    /// The pair of `secret` and `public`, which the caller computed from it.
    pub(super) fn new(secret: [u8; KEY_LEN], public: [u8; KEY_LEN]) -> KeyPair {
        KeyPair { secret, public }
    }
}

impl Drop for KeyPair {
    fn drop(&mut self) {
        self.secret.fill(0);
        // Keeps the compiler from treating the stores above as dead (as `SecretKey` does).
        std::hint::black_box(&self.secret);
    }
}

/// `snow`'s default resolver with an X25519 that knows one key pair (see the module doc).
pub(super) struct Resolver {
    known: KeyPair,
}

impl Resolver {
    /// A resolver whose X25519 takes `known`'s public key instead of computing it.
    pub(super) fn new(known: KeyPair) -> Resolver {
        Resolver { known }
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                known: self.known.clone(),
                pair: KeyPair::new([0; KEY_LEN], [0; KEY_LEN]),
            })),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// X25519 as `snow`'s default resolver does it, with a known key pair's public key reused.
struct X25519 {
    known: KeyPair,
    pair: KeyPair,
}

impl X25519 {
    fn set_secret(&mut self, secret: [u8; KEY_LEN]) {
        self.pair.public = if secret == self.known.secret {
            self.known.public
        } else {
            MontgomeryPoint::mul_base_clamped(secret).to_bytes()
        };
        self.pair.secret = secret;
    }
}

impl Dh for X25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        KEY_LEN
    }

    fn priv_len(&self) -> usize {
        KEY_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        // `snow` passes the builder's key as given; a short one is zero-padded, as `snow`'s own
        // X25519 does (ours are always 32 bytes: `SecretKey` and the tests' fixed ephemerals).
        let mut secret = [0u8; KEY_LEN];
        let n = privkey.len().min(KEY_LEN);
        secret[..n].copy_from_slice(&privkey[..n]);
        self.set_secret(secret);
        secret.fill(0);
        std::hint::black_box(&secret);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut secret = [0u8; KEY_LEN];
        rng.try_fill_bytes(&mut secret)?;
        self.set_secret(secret);
        secret.fill(0);
        std::hint::black_box(&secret);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.pair.public
    }

    fn privkey(&self) -> &[u8] {
        &self.pair.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let point: [u8; KEY_LEN] = pubkey
            .get(..KEY_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let shared = MontgomeryPoint(point)
            .mul_clamped(self.pair.secret)
            .to_bytes();
        out.get_mut(..KEY_LEN)
            .ok_or(snow::Error::Dh)?
            .copy_from_slice(&shared);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_dh() -> Box<dyn Dh> {
        DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's X25519")
    }

    fn ours(known: &KeyPair) -> Box<dyn Dh> {
        Resolver::new(known.clone())
            .resolve_dh(&DHChoice::Curve25519)
            .expect("our X25519")
    }

    #[test]
    fn public_keys_and_shared_secrets_are_snow_s_own() {
        let mut reference = default_dh();
        reference.set(&[7; 32]);
        let known = KeyPair::new([7; 32], reference.pubkey().try_into().unwrap());
        let mut peer = default_dh();
        peer.set(&[9; 32]);

        // The known key (public key reused), another key (computed), both as snow has them.
        for secret in [[7u8; 32], [9; 32], [200; 32]] {
            let mut dh = ours(&known);
            dh.set(&secret);
            let mut expected = default_dh();
            expected.set(&secret);
            assert_eq!(dh.pubkey(), expected.pubkey());
            assert_eq!(dh.privkey(), expected.privkey());
            let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
            dh.dh(peer.pubkey(), &mut a).unwrap();
            expected.dh(peer.pubkey(), &mut b).unwrap();
            assert_eq!(a, b);
        }
    }

    #[test]
    fn a_known_public_key_is_taken_as_given() {
        // A pair whose public half does not belong to its secret shows the shortcut is taken
        // (the real caller passes a matching pair: `Identity` computes it once).
        let known = KeyPair::new([7; 32], [1; 32]);
        let mut dh = ours(&known);
        dh.set(&[7; 32]);
        assert_eq!(dh.pubkey(), &[1; 32]);
    }

    #[test]
    fn short_keys_and_buffers_are_errors_not_panics() {
        let mut dh = ours(&KeyPair::new([7; 32], [1; 32]));
        dh.set(&[5; 3]);
        let mut out = [0u8; 32];
        assert!(dh.dh(&[1; 31], &mut out).is_err());
        assert!(dh.dh(&[1; 32], &mut [0u8; 31]).is_err());
        dh.generate(&mut *DefaultResolver.resolve_rng().unwrap())
            .unwrap();
        assert_ne!(dh.pubkey(), &[0; 32]);
    }
}
