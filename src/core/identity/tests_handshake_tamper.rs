//! Unit tests of the handshake against altered and forged input: every flipped byte, every
//! length, mac1 recomputed by an attacker, random messages, an impersonator with a trusted
//! public key, a message aimed at another key, and another network's token.

use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};

use super::handshake::*;
use super::keys::{PublicKey, SecretKey};
use super::tests_handshake::{
    alice, answer, answer_asking, bob, fresh, initiation, remac, token, E_INIT, E_RESP, INIT_INDEX,
    TOKEN, UNIX_NANOS,
};
use crate::wire::{Token, TOKEN_LEN};

#[test]
fn initiation_with_any_byte_flipped_is_refused() {
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    for at in 0..INITIATION_LEN {
        for x in [0x01, 0xff] {
            let mut m = msg1.clone();
            m[at] ^= x;
            let checked = check_initiation(bob(), &m);
            let expected = if at == TOKEN_LEN {
                HandshakeError::Type
            } else {
                HandshakeError::Mac
            };
            assert_eq!(checked, Err(expected), "byte {at} ^ {x:#x}");
            assert_eq!(answer(&m, None).err(), Some(expected), "byte {at} ^ {x:#x}");
        }
    }
}

#[test]
fn initiation_altered_with_mac1_recomputed_fails_noise_except_the_index() {
    // mac1 is no authentication: anyone can recompute it. Noise catches every change to the
    // token or the Noise message; the sender index is covered by mac1 only (as in WireGuard),
    // so changing it on the path only breaks that handshake.
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    for at in 0..INITIATION_LEN - MAC1_LEN {
        if at == TOKEN_LEN {
            continue;
        }
        let mut m = msg1.clone();
        m[at] ^= 0x01;
        remac(&mut m, &bob().public());
        assert_eq!(check_initiation(bob(), &m), Ok(index(&m, 8)), "byte {at}");
        let result = answer(&m, None);
        if (8..12).contains(&at) {
            assert_eq!(result.unwrap().0.remote_index, index(&m, 8));
        } else if at < TOKEN_LEN {
            assert_eq!(result.err(), Some(HandshakeError::Token), "byte {at}");
        } else {
            assert_eq!(result.err(), Some(HandshakeError::Noise), "byte {at}");
        }
    }
}

fn index(msg: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(msg[at..at + 4].try_into().unwrap())
}

#[test]
fn response_with_any_byte_flipped_is_refused_and_the_genuine_one_still_completes() {
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    let (resp, msg2) = answer(&msg1, Some(&E_RESP)).unwrap();
    for at in 0..RESPONSE_LEN {
        for x in [0x01, 0xff] {
            let mut m = msg2.clone();
            m[at] ^= x;
            let expected = if at == TOKEN_LEN {
                HandshakeError::Type
            } else {
                HandshakeError::Mac
            };
            assert_eq!(
                check_response(alice(), &m),
                Err(expected),
                "byte {at} ^ {x:#x}"
            );
            assert_eq!(
                init.complete(&m).err(),
                Some(expected),
                "byte {at} ^ {x:#x}"
            );
            // Forged by someone who knows Alice's public key: mac1 passes, Noise does not.
            if at < RESPONSE_LEN - MAC1_LEN && at != TOKEN_LEN {
                remac(&mut m, &alice().public());
                let expected = match at {
                    0..=6 => Some(HandshakeError::Token),
                    8..=11 => None,
                    12..=15 => Some(HandshakeError::Index),
                    _ => Some(HandshakeError::Noise),
                };
                if let Some(expected) = expected {
                    assert_eq!(
                        init.complete(&m).err(),
                        Some(expected),
                        "byte {at} ^ {x:#x}"
                    );
                }
            }
        }
    }
    // None of that spent the initiation.
    let est = init.complete(&msg2).unwrap();
    assert!(est.send_key == resp.recv_key && est.recv_key == resp.send_key);
    assert_eq!(est.send_session, resp.recv_session);
}

/// A hand-rolled Noise IK first message (Noise spec section 5) whose encrypted static key is
/// `claimed` while the `ss` Diffie-Hellman uses `secret`: what an impersonator who knows a
/// trusted node's public key but not its private key can send.
fn forged_msg1(claimed: &PublicKey, secret: &SecretKey, responder: &PublicKey) -> Vec<u8> {
    struct Sym {
        hash: Box<dyn snow::types::Hash>,
        cipher: Box<dyn snow::types::Cipher>,
        ck: [u8; 32],
        h: [u8; 32],
        n: u64,
    }
    impl Sym {
        fn mix_hash(&mut self, data: &[u8]) {
            let mut out = [0u8; 64];
            self.hash.reset();
            self.hash.input(&self.h);
            self.hash.input(data);
            self.hash.result(&mut out);
            self.h.copy_from_slice(&out[..32]);
        }
        fn mix_key(&mut self, ikm: &[u8]) {
            let (mut o1, mut o2, mut o3) = ([0u8; 64], [0u8; 64], [0u8; 64]);
            let ck = self.ck;
            self.hash.hkdf(&ck, ikm, 2, &mut o1, &mut o2, &mut o3);
            self.ck.copy_from_slice(&o1[..32]);
            self.cipher.set(o2[..32].try_into().unwrap());
            self.n = 0;
        }
        fn encrypt_and_hash(&mut self, plain: &[u8], out: &mut Vec<u8>) {
            let mut c = vec![0u8; plain.len() + 16];
            self.cipher.encrypt(self.n, &self.h, plain, &mut c);
            self.n += 1;
            self.mix_hash(&c);
            out.extend_from_slice(&c);
        }
    }
    let r = DefaultResolver;
    let mut hash = r.resolve_hash(&HashChoice::Blake2s).unwrap();
    let mut h = [0u8; 64];
    // The name is 33 bytes, longer than the hash: h = HASH(name).
    hash.input(NOISE_PARAMS.as_bytes());
    hash.result(&mut h);
    let mut sym = Sym {
        hash,
        cipher: r.resolve_cipher(&CipherChoice::ChaChaPoly).unwrap(),
        ck: h[..32].try_into().unwrap(),
        h: h[..32].try_into().unwrap(),
        n: 0,
    };
    let mut prologue = PROLOGUE_PREFIX.to_vec();
    prologue.extend_from_slice(&token().to_bytes());
    sym.mix_hash(&prologue);
    sym.mix_hash(&responder.0);

    let mut msg = token().to_bytes().to_vec();
    msg.push(INITIATION);
    msg.extend_from_slice(&INIT_INDEX.to_be_bytes());
    let mut e = r.resolve_dh(&DHChoice::Curve25519).unwrap();
    e.set(&E_INIT);
    let e_pub = e.pubkey().to_vec();
    msg.extend_from_slice(&e_pub);
    sym.mix_hash(&e_pub);
    let mut dh = [0u8; 32];
    e.dh(&responder.0, &mut dh).unwrap();
    sym.mix_key(&dh);
    sym.encrypt_and_hash(&claimed.0, &mut msg);
    let mut s = r.resolve_dh(&DHChoice::Curve25519).unwrap();
    s.set(secret.as_bytes());
    s.dh(&responder.0, &mut dh).unwrap();
    sym.mix_key(&dh);
    sym.encrypt_and_hash(&timestamp(UNIX_NANOS), &mut msg);
    msg.extend_from_slice(&[0; MAC1_LEN]);
    remac(&mut msg, responder);
    msg
}

#[test]
fn impersonator_with_a_trusted_public_key_but_its_own_private_key_is_refused() {
    let alice_secret = SecretKey::from_random([1; 32]);
    let mallory = SecretKey::from_random([9; 32]);
    // The hand-rolled message is faithful: with Alice's own key it is her initiation.
    let (_, genuine) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    assert_eq!(
        forged_msg1(&alice().public(), &alice_secret, &bob().public()),
        genuine
    );

    let forged = forged_msg1(&alice().public(), &mallory, &bob().public());
    assert_eq!(check_initiation(bob(), &forged), Ok(INIT_INDEX));
    let trusted = |k: &PublicKey| *k == alice().public();
    let mut out = [0u8; RESPONSE_LEN];
    let result = respond(
        bob(),
        token(),
        &forged,
        trusted,
        |_, _| true,
        1,
        &fresh(),
        &mut out,
    );
    assert_eq!(result.err(), Some(HandshakeError::Noise));
    assert_eq!(out, [0u8; RESPONSE_LEN]);
}

#[test]
fn initiation_aimed_at_another_key_fails_mac1_before_any_diffie_hellman() {
    let carol = Identity::new(SecretKey::from_random([5; 32]));
    let mut out = [0u8; INITIATION_LEN];
    let (_, n) = initiate(
        alice(),
        token(),
        &carol.public(),
        INIT_INDEX,
        timestamp(UNIX_NANOS),
        &fresh(),
        &mut out,
    )
    .unwrap();
    assert_eq!(check_initiation(bob(), &out[..n]), Err(HandshakeError::Mac));
    assert_eq!(check_initiation(&carol, &out[..n]), Ok(INIT_INDEX));
    let mut reply = [0u8; RESPONSE_LEN];
    let (result, asked) = answer_asking(&out[..n], &mut reply);
    assert_eq!(result.err(), Some(HandshakeError::Mac));
    assert!(!asked);
    // And a response aimed at another initiator fails Alice's mac1 likewise.
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), None);
    let (_, msg2) = answer(&msg1, None).unwrap();
    assert_eq!(check_response(&carol, &msg2), Err(HandshakeError::Mac));
}

#[test]
fn another_networks_token_is_refused_even_with_mac1_recomputed() {
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), None);
    let other = Token::new(TOKEN + 1).unwrap();
    let mut out = [0u8; RESPONSE_LEN];
    let r = respond(
        bob(),
        other,
        &msg1,
        |_| true,
        |_, _| true,
        1,
        &fresh(),
        &mut out,
    );
    assert_eq!(r.err(), Some(HandshakeError::Token));
    // Rewritten into the other network's token: the prologue differs, Noise fails.
    let mut m = msg1.clone();
    m[..TOKEN_LEN].copy_from_slice(&other.to_bytes());
    remac(&mut m, &bob().public());
    let r = respond(
        bob(),
        other,
        &m,
        |_| true,
        |_, _| true,
        1,
        &fresh(),
        &mut out,
    );
    assert_eq!(r.err(), Some(HandshakeError::Noise));
}

#[test]
fn every_other_length_is_refused_without_panic() {
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    let (_, msg2) = answer(&msg1, Some(&E_RESP)).unwrap();
    for len in 0..200 {
        let mut m1 = msg1.clone();
        m1.resize(len, 0);
        let mut m2 = msg2.clone();
        m2.resize(len, 0);
        if len != INITIATION_LEN {
            assert_eq!(check_initiation(bob(), &m1), Err(HandshakeError::Length));
            assert_eq!(answer(&m1, None).err(), Some(HandshakeError::Length));
        }
        // An initiation is no response, and the other way round.
        assert!(check_response(alice(), &m1).is_err());
        assert!(check_initiation(bob(), &m2).is_err());
        if len != RESPONSE_LEN {
            assert_eq!(check_response(alice(), &m2), Err(HandshakeError::Length));
            assert_eq!(init.complete(&m2).err(), Some(HandshakeError::Length));
        }
    }
    assert!(init.complete(&msg2).is_ok());
}

#[test]
fn random_messages_with_valid_type_and_mac1_are_refused_without_panic() {
    // Seeded xorshift; every message has the right length, token, type and mac1, so each one
    // reaches Noise.
    let mut state = 0x5eed_u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS), None);
    for round in 0..50 {
        let mut m1: Vec<u8> = (0..INITIATION_LEN).map(|_| next() as u8).collect();
        m1[..TOKEN_LEN + 1].copy_from_slice(&msg1[..TOKEN_LEN + 1]);
        remac(&mut m1, &bob().public());
        assert_eq!(
            answer(&m1, None).err(),
            Some(HandshakeError::Noise),
            "round {round}"
        );
        let mut m2: Vec<u8> = (0..RESPONSE_LEN).map(|_| next() as u8).collect();
        m2[..TOKEN_LEN].copy_from_slice(&token().to_bytes());
        m2[TOKEN_LEN] = RESPONSE;
        m2[12..16].copy_from_slice(&INIT_INDEX.to_be_bytes());
        remac(&mut m2, &alice().public());
        assert_eq!(
            init.complete(&m2).err(),
            Some(HandshakeError::Noise),
            "round {round}"
        );
    }
}
