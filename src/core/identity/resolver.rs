//! The `snow` crypto resolver the handshakes build their Noise states with: `snow`'s default
//! resolver, except for X25519, which knows this node's static key pair and its static-static
//! secret with each trusted key ([`Statics`]).
//!
//! Two costs it takes off a handshake, measured on the reference machine (a Zen 1 at 2 GHz),
//! where one X25519 multiplication costs about 150 to 180 us:
//!
//! - `snow` derives the public key of every private key it is given, so building a handshake
//!   state with the node's static key cost a base-point multiplication each time, on a key
//!   whose public half [`Statics`] already holds.
//! - The static-static Diffie-Hellman (the IK pattern's `ss`) depends only on the two static
//!   keys, so it is computed once per trusted key when the trust set is read (as WireGuard
//!   precomputes it per peer) and looked up afterwards.
//!
//! And one check it moves forward: answering an initiation, the responder learns the
//! initiator's static key after the first Diffie-Hellman (`es`). When `snow` then asks for
//! `ss` with a key that has no precomputed secret, that key is not trusted, and the resolver
//! refuses the Diffie-Hellman: `snow` stops there, the handshake layer reports the
//! initiation as untrusted ([`Refusal`]), and the initiation has cost one multiplication
//! instead of two (the initiator's claim would have been refused after the full read
//! anyway). Refusing an untrusted initiation went from about 530 us to about 180 us
//! (release build, medians of seven runs of 200), answering a trusted one from about 1030
//! to about 660 us.
//!
//! Every other Diffie-Hellman (the ephemeral ones, a static one on the initiator's side with
//! a key it has no secret for) is computed as `snow` computes it, with the same
//! `curve25519-dalek` arithmetic. Owns only that resolver, its X25519 and the table of
//! secrets; the messages and keys are `handshake`'s. No I/O, and no random source: the one
//! random value a handshake needs, its ephemeral private key, is drawn by the caller
//! ([`super::random::Random`]) and handed to `snow` as the resolver's RNG ([`Drawn`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use curve25519_dalek::MontgomeryPoint;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

use super::keys::{wipe, KEY_LEN};

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same_secret(a: &[u8; KEY_LEN], b: &[u8; KEY_LEN]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether a Diffie-Hellman result is all zeros (a low-order point), looked at whole (no
/// early exit on the first non-zero byte).
fn is_zero(shared: &[u8; KEY_LEN]) -> bool {
    std::hint::black_box(shared.iter().fold(0u8, |acc, b| acc | b)) == 0
}

/// X25519 of `secret` and `point` (`secret` is clamped, as X25519 asks).
fn x25519(secret: [u8; KEY_LEN], point: [u8; KEY_LEN]) -> [u8; KEY_LEN] {
    MontgomeryPoint(point).mul_clamped(secret).to_bytes()
}

/// This node's static key pair and its static-static secret with each trusted key: what a
/// handshake needs of the static keys, computed when the key and the trust set are read.
pub(super) struct Statics {
    secret: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
    /// X25519(our secret, their public key), per trusted public key.
    shared: HashMap<[u8; KEY_LEN], [u8; KEY_LEN]>,
}

impl Statics {
    /// The statics of the pair `secret`, `public` (which the caller computed from it), with no
    /// trusted key yet.
    pub(super) fn new(secret: [u8; KEY_LEN], public: [u8; KEY_LEN]) -> Statics {
        Statics {
            secret,
            public,
            shared: HashMap::new(),
        }
    }

    /// The same pair with a secret for each of `keys`: taken from `self` where it has one,
    /// computed (one X25519 each) where not.
    pub(super) fn trusting<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a [u8; KEY_LEN]>,
    ) -> Statics {
        let shared = keys
            .into_iter()
            .map(|key| {
                let secret = self
                    .shared
                    .get(key)
                    .copied()
                    .unwrap_or_else(|| x25519(self.secret, *key));
                (*key, secret)
            })
            .collect();
        Statics {
            secret: self.secret,
            public: self.public,
            shared,
        }
    }

    /// How many keys have a precomputed secret.
    pub(super) fn len(&self) -> usize {
        self.shared.len()
    }
}

impl Drop for Statics {
    fn drop(&mut self) {
        wipe(&mut self.secret);
        for secret in self.shared.values_mut() {
            wipe(secret);
        }
    }
}

impl fmt::Debug for Statics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Statics")
            .field("trusted", &self.shared.len())
            .finish_non_exhaustive()
    }
}

/// Set when a responder's X25519 refused the static-static Diffie-Hellman with a key that has
/// no precomputed secret: the initiator's key is not trusted.
#[derive(Clone, Default)]
pub(super) struct Refusal(Arc<AtomicBool>);

impl Refusal {
    /// Whether the handshake was refused for an untrusted static key.
    pub(super) fn refused(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `snow`'s default resolver with the X25519 of the module doc.
pub(super) struct Resolver {
    statics: Arc<Statics>,
    /// For a responder: the initiation's ephemeral key (the one static Diffie-Hellman that
    /// needs no precomputed secret, `es`) and where to say that `ss` was refused.
    responder: Option<([u8; KEY_LEN], Refusal)>,
    /// Our ephemeral private key, drawn by the caller: what the RNG it gives `snow` yields.
    own_ephemeral: Option<[u8; KEY_LEN]>,
}

impl Drop for Resolver {
    fn drop(&mut self) {
        if let Some(key) = &mut self.own_ephemeral {
            wipe(key);
        }
    }
}

/// The RNG a handshake state gets: the 32 bytes of its ephemeral private key, drawn by the
/// caller, given once; any other request is an error (`snow` asks for nothing else).
pub(super) struct Drawn(Option<[u8; KEY_LEN]>);

impl Drawn {
    /// An RNG that yields `key`, once.
    #[cfg(test)]
    pub(super) fn new(key: [u8; KEY_LEN]) -> Drawn {
        Drawn(Some(key))
    }
}

impl Drop for Drawn {
    fn drop(&mut self) {
        if let Some(key) = &mut self.0 {
            wipe(key);
        }
    }
}

impl Random for Drawn {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        match (self.0.as_mut(), <&mut [u8; KEY_LEN]>::try_from(dest)) {
            (Some(key), Ok(dest)) => {
                dest.copy_from_slice(key);
                wipe(key);
                self.0 = None;
                Ok(())
            }
            _ => Err(snow::Error::Rng),
        }
    }
}

impl Resolver {
    /// A resolver for an initiator.
    pub(super) fn initiator(statics: Arc<Statics>) -> Resolver {
        Resolver {
            statics,
            responder: None,
            own_ephemeral: None,
        }
    }

    /// A resolver for a responder to an initiation whose ephemeral key is `ephemeral`; a
    /// refused static key is reported through `refusal`.
    pub(super) fn responder(
        statics: Arc<Statics>,
        ephemeral: [u8; KEY_LEN],
        refusal: Refusal,
    ) -> Resolver {
        Resolver {
            statics,
            responder: Some((ephemeral, refusal)),
            own_ephemeral: None,
        }
    }

    /// The same, with `key` as our ephemeral private key (what its RNG yields).
    pub(super) fn drawing(mut self, key: &[u8; KEY_LEN]) -> Resolver {
        self.own_ephemeral = Some(*key);
        self
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        // Without a drawn key, an RNG that fails: the core has no random source of its own.
        Some(Box::new(Drawn(self.own_ephemeral)))
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(X25519 {
                statics: Arc::clone(&self.statics),
                responder: self.responder.clone(),
                secret: [0; KEY_LEN],
                public: [0; KEY_LEN],
                is_static: false,
                es_done: AtomicBool::new(false),
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

/// X25519 as `snow`'s default resolver does it, with the shortcuts of the module doc.
struct X25519 {
    statics: Arc<Statics>,
    responder: Option<([u8; KEY_LEN], Refusal)>,
    secret: [u8; KEY_LEN],
    public: [u8; KEY_LEN],
    /// Whether `secret` is the node's static key.
    is_static: bool,
    /// A responder's `es` was computed: the initiation's ephemeral key gets one
    /// Diffie-Hellman with our static key, not two (an initiator that claims its ephemeral
    /// key as its static one would otherwise get `ss` computed as well).
    es_done: AtomicBool,
}

impl X25519 {
    fn set_secret(&mut self, secret: [u8; KEY_LEN]) {
        self.is_static = same_secret(&secret, &self.statics.secret);
        self.public = if self.is_static {
            self.statics.public
        } else {
            MontgomeryPoint::mul_base_clamped(secret).to_bytes()
        };
        self.secret = secret;
    }
}

impl Drop for X25519 {
    fn drop(&mut self) {
        wipe(&mut self.secret);
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
        wipe(&mut secret);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut secret = [0u8; KEY_LEN];
        rng.try_fill_bytes(&mut secret)?;
        self.set_secret(secret);
        wipe(&mut secret);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let point: [u8; KEY_LEN] = pubkey
            .get(..KEY_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let out = out.get_mut(..KEY_LEN).ok_or(snow::Error::Dh)?;
        if self.is_static {
            if let Some(shared) = self.statics.shared.get(&point) {
                if is_zero(shared) {
                    // A low-order "key" in a trust file (all zeros, say): anyone would
                    // complete the handshake as it. Refused, as WireGuard refuses it.
                    return Err(snow::Error::Dh);
                }
                out.copy_from_slice(shared);
                return Ok(());
            }
            if let Some((ephemeral, refusal)) = &self.responder {
                if point != *ephemeral || self.es_done.swap(true, Ordering::Relaxed) {
                    // `ss` with a key we hold no secret for: not trusted.
                    refusal.0.store(true, Ordering::Relaxed);
                    return Err(snow::Error::Dh);
                }
            }
        }
        let shared = x25519(self.secret, point);
        if is_zero(&shared) {
            // A low-order point (an ephemeral or static key of the peer's): the result would
            // be known to anyone.
            return Err(snow::Error::Dh);
        }
        out.copy_from_slice(&shared);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snow_dh(secret: &[u8; 32]) -> Box<dyn Dh> {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's X25519");
        dh.set(secret);
        dh
    }

    fn public(secret: &[u8; 32]) -> [u8; 32] {
        snow_dh(secret).pubkey().try_into().unwrap()
    }

    fn statics(trusted: &[[u8; 32]]) -> Arc<Statics> {
        Arc::new(Statics::new([7; 32], public(&[7; 32])).trusting(trusted))
    }

    fn ours(resolver: &Resolver, secret: &[u8; 32]) -> Box<dyn Dh> {
        let mut dh = resolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("our X25519");
        dh.set(secret);
        dh
    }

    fn dh(dh: &dyn Dh, point: &[u8; 32]) -> Result<[u8; 32], snow::Error> {
        let mut out = [0u8; 32];
        dh.dh(point, &mut out).map(|()| out)
    }

    #[test]
    fn a_low_order_point_gives_no_shared_secret_static_or_not() {
        // 0 and 1 are points of small order: X25519 with either gives all zeros, whatever the
        // secret, so a trust file holding one would let anyone be that key.
        let zero = [0u8; 32];
        let mut one = [0u8; 32];
        one[0] = 1;
        let resolver = Resolver::initiator(statics(&[zero, one]));
        for secret in [[7u8; 32], [9; 32]] {
            let ours = ours(&resolver, &secret);
            for point in [zero, one] {
                assert!(dh(&*ours, &point).is_err(), "{secret:?} with {point:?}");
            }
            // An ordinary point still works.
            assert!(dh(&*ours, &public(&[11; 32])).is_ok());
        }
    }

    #[test]
    fn public_keys_and_shared_secrets_are_snow_s_own() {
        let trusted = public(&[9; 32]);
        let other = public(&[11; 32]);
        let resolver = Resolver::initiator(statics(&[trusted]));
        // The static key (public key and ss from the table), other keys (computed).
        for secret in [[7u8; 32], [9; 32], [200; 32]] {
            let ours = ours(&resolver, &secret);
            let theirs = snow_dh(&secret);
            assert_eq!(ours.pubkey(), theirs.pubkey());
            assert_eq!(ours.privkey(), theirs.privkey());
            for point in [trusted, other] {
                let mut expected = [0u8; 32];
                theirs.dh(&point, &mut expected).unwrap();
                assert_eq!(dh(&*ours, &point).unwrap(), expected);
            }
        }
    }

    #[test]
    fn precomputed_secrets_are_taken_as_given() {
        // A table entry that is not the real secret shows the lookup is taken (the real table
        // holds X25519 results, checked above).
        let trusted = public(&[9; 32]);
        let mut table = Statics::new([7; 32], [1; 32]);
        table.shared.insert(trusted, [5; 32]);
        let resolver = Resolver::initiator(Arc::new(table));
        let ours = ours(&resolver, &[7; 32]);
        assert_eq!(ours.pubkey(), &[1; 32]);
        assert_eq!(dh(&*ours, &trusted).unwrap(), [5; 32]);
    }

    #[test]
    fn a_responder_refuses_ss_with_an_untrusted_key_and_says_so() {
        let trusted = public(&[9; 32]);
        let ephemeral = public(&[13; 32]);
        let stranger = public(&[11; 32]);
        let refusal = Refusal::default();
        let resolver = Resolver::responder(statics(&[trusted]), ephemeral, refusal.clone());
        let s = ours(&resolver, &[7; 32]);
        // es (the initiation's ephemeral) and ss with a trusted key: answered.
        assert!(dh(&*s, &ephemeral).is_ok());
        assert!(dh(&*s, &trusted).is_ok());
        assert!(!refusal.refused());
        // ss with a key we hold no secret for: refused, and reported.
        assert!(dh(&*s, &stranger).is_err());
        assert!(refusal.refused());
        // The ephemeral keys are never refused.
        let e = ours(&resolver, &[21; 32]);
        assert!(dh(&*e, &stranger).is_ok());
    }

    #[test]
    fn a_responder_computes_one_dh_with_the_initiations_ephemeral_key_not_two() {
        let ephemeral = public(&[13; 32]);
        let refusal = Refusal::default();
        let resolver = Resolver::responder(statics(&[]), ephemeral, refusal.clone());
        let s = ours(&resolver, &[7; 32]);
        assert!(dh(&*s, &ephemeral).is_ok(), "es");
        // An initiator that claims its ephemeral key as its static one: `ss` is refused.
        assert!(dh(&*s, &ephemeral).is_err());
        assert!(refusal.refused());
    }

    #[test]
    fn trusting_again_reuses_what_it_has() {
        let (a, b) = (public(&[9; 32]), public(&[11; 32]));
        let mut first = Statics::new([7; 32], public(&[7; 32])).trusting(&[a]);
        first.shared.insert(a, [5; 32]); // marks the entry: reused, not recomputed
        let second = first.trusting(&[a, b]);
        assert_eq!(second.len(), 2);
        assert_eq!(second.shared[&a], [5; 32]);
        assert_eq!(second.shared[&b], x25519([7; 32], b));
        assert_eq!(first.trusting(&[]).len(), 0);
    }

    #[test]
    fn secrets_compare_equal_only_when_every_byte_is() {
        let a = [7u8; 32];
        assert!(same_secret(&a, &[7; 32]));
        for i in [0, 17, 31] {
            let mut b = a;
            b[i] ^= 0x80;
            assert!(!same_secret(&a, &b));
        }
    }

    #[test]
    fn short_keys_and_buffers_are_errors_not_panics() {
        let resolver = Resolver::initiator(statics(&[]));
        let mut ours = ours(&resolver, &[5; 32]);
        ours.set(&[5; 3]);
        assert!(ours.dh(&[1; 31], &mut [0u8; 32]).is_err());
        assert!(ours.dh(&[1; 32], &mut [0u8; 31]).is_err());
        ours.generate(&mut Drawn::new([9; 32])).unwrap();
        assert_ne!(ours.pubkey(), &[0; 32]);
        // The drawn key is given once; a second request, or one of another size, fails.
        let mut drawn = Drawn::new([9; 32]);
        assert!(drawn.try_fill_bytes(&mut [0u8; 16]).is_err());
        let mut key = [0u8; 32];
        drawn.try_fill_bytes(&mut key).unwrap();
        assert_eq!(key, [9; 32]);
        assert!(drawn.try_fill_bytes(&mut key).is_err());
        assert!(ours.generate(&mut drawn).is_err());
    }
}
