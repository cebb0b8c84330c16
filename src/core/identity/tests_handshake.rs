//! Unit tests of the handshake: golden vectors, round trips, replays, untrusted initiators,
//! short output buffers and forward secrecy between two handshakes; the helpers the tampering
//! tests (`tests_handshake_tamper`) share.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;

use super::handshake::*;
use super::keys::{PublicKey, SecretKey};
use crate::crypto::{Cipher, Key, OpenError, Opener, Sealer, FRONT_LEN, TAG_LEN};
use crate::wire::{Token, TOKEN_LEN};

pub(super) const TOKEN: u64 = 134;
pub(super) const E_INIT: [u8; 32] = [3; 32];
pub(super) const E_RESP: [u8; 32] = [4; 32];
pub(super) const INIT_INDEX: u32 = 0x0102_0304;
pub(super) const RESP_INDEX: u32 = 0xa0b0_c0d0;
/// 2025-02-28T23:48:30.848000001Z.
pub(super) const UNIX_NANOS: u64 = 1_740_786_510_848_000_001;

pub(super) fn token() -> Token {
    Token::new(TOKEN).unwrap()
}

/// The identity of the key `[seed; 32]`, trusting the keys of `peers` (as seeds).
pub(super) fn identity(seed: u8, peers: &[u8]) -> Identity {
    let mut id = Identity::new(SecretKey::from_random([seed; 32]));
    let keys: Vec<PublicKey> = peers
        .iter()
        .map(|p| SecretKey::from_random([*p; 32]).public_key())
        .collect();
    id.set_trusted(&keys);
    id
}

/// Alice's identity, trusting Bob, made once (a public key costs a scalar multiplication).
pub(super) fn alice() -> &'static Identity {
    static ALICE: OnceLock<Identity> = OnceLock::new();
    ALICE.get_or_init(|| identity(1, &[2]))
}

/// Bob's identity, trusting Alice, made once.
pub(super) fn bob() -> &'static Identity {
    static BOB: OnceLock<Identity> = OnceLock::new();
    BOB.get_or_init(|| identity(2, &[1]))
}

/// An ephemeral private key no other call gave (from a counter: the tests need distinct
/// keys, not secret ones). The count is in bytes 8 to 15: X25519 clears the low bits of the
/// first byte, where consecutive counts would make the same key.
pub(super) fn fresh() -> [u8; 32] {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut key = [0x5a; 32];
    key[8..16].copy_from_slice(&NEXT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Alice's initiation to Bob, with the fixed ephemeral, index and timestamp.
pub(super) fn initiation(
    ts: [u8; TIMESTAMP_LEN],
    ephemeral: Option<&[u8; 32]>,
) -> (Initiator, Vec<u8>) {
    let mut out = [0u8; 200];
    let (init, n) = initiate(
        alice(),
        token(),
        &bob().public(),
        INIT_INDEX,
        ts,
        &ephemeral.copied().unwrap_or_else(fresh),
        &mut out,
    )
    .unwrap();
    (init, out[..n].to_vec())
}

/// Bob's answer to `msg`, trusting every key and every timestamp.
pub(super) fn answer(
    msg: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> Result<(Established, Vec<u8>), HandshakeError> {
    answer_by(bob(), msg, ephemeral)
}

/// `id`'s answer to `msg`, its callbacks trusting every key and every timestamp.
fn answer_by(
    id: &Identity,
    msg: &[u8],
    ephemeral: Option<&[u8; 32]>,
) -> Result<(Established, Vec<u8>), HandshakeError> {
    let mut out = [0u8; RESPONSE_LEN];
    respond(
        id,
        token(),
        msg,
        |_| true,
        |_, _| true,
        RESP_INDEX,
        &ephemeral.copied().unwrap_or_else(fresh),
        &mut out,
    )
    .map(|(est, n)| (est, out[..n].to_vec()))
}

/// Bob's answer to `msg` into `out`, his `is_trusted` saying yes; also whether it was asked.
pub(super) fn answer_asking(
    msg: &[u8],
    out: &mut [u8],
) -> (Result<(Established, usize), HandshakeError>, bool) {
    let asked = Cell::new(false);
    let is_trusted = |_: &PublicKey| {
        asked.set(true);
        true
    };
    let result = respond(
        bob(),
        token(),
        msg,
        is_trusted,
        |_, _| true,
        RESP_INDEX,
        &fresh(),
        out,
    );
    (result, asked.get())
}

/// A full handshake with the fixed values: (initiator's side, responder's side, the two
/// messages).
fn handshake() -> (Established, Established, Vec<u8>, Vec<u8>) {
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS), Some(&E_INIT));
    let (resp, msg2) = answer(&msg1, Some(&E_RESP)).unwrap();
    let est = init.complete(&msg2).unwrap();
    (est, resp, msg1, msg2)
}

/// A short frame behind the switch byte 0: dst 02:..:02, src 02:..:01, type 0x88b5, "ethcloud".
const INNER: &[u8] = b"\x00\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5ethcloud";

fn seal(key: &Key, session: [u8; 16]) -> Vec<u8> {
    let sealer = Sealer::with_cipher(key, session, Cipher::ChaCha20Poly1305);
    let mut buf = vec![0u8; FRONT_LEN + INNER.len() + TAG_LEN];
    buf[FRONT_LEN..FRONT_LEN + INNER.len()].copy_from_slice(INNER);
    let range = sealer
        .seal(token(), &mut buf, FRONT_LEN, INNER.len())
        .unwrap();
    assert_eq!(range, 0..buf.len());
    buf
}

fn open(key: &Key, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut opener = Opener::new(key, 16);
    let mut buf = sealed.to_vec();
    opener.open(&mut buf).map(|r| buf[r].to_vec())
}

/// Recomputes mac1 of a message for `to`'s key (what anyone who knows the key can do).
pub(super) fn remac(msg: &mut [u8], to: &PublicKey) {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(MAC1_LABEL);
    ctx.update(&to.0);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, ctx.finish().as_ref());
    let at = msg.len() - MAC1_LEN;
    let tag = ring::hmac::sign(&key, &msg[..at]);
    msg[at..].copy_from_slice(&tag.as_ref()[..MAC1_LEN]);
}

/// token 134, 0x90, index 01020304, e, encrypted s, encrypted timestamp, mac1.
const GOLDEN_INITIATION: &str = "00000000000086 90 01020304
    5dfedd3b6bd47f6fa28ee15d969d5bb0ea53774d488bdaf9df1c6e0124b3ef22
    4391bcfef3f1b0f051873c2103356110f8056ef928c4354783347c74dc7b71b7
    21f7b75349e7cdf74faf11bf48b7440f
    af02fa61f1f938c146bd2e1bc59197aa866f292a5733ebf2b546cf70
    9e20b640392904d854612ef77ff1ed6b";
/// token 134, 0x91, index a0b0c0d0, receiver 01020304, e, encrypted empty payload, mac1.
const GOLDEN_RESPONSE: &str = "00000000000086 91 a0b0c0d0 01020304
    ac01b2209e86354fb853237b5de0f4fab13c7fcbf433a61c019369617fecf10b
    1faf6188a59ed3315db2098cf137f428
    6614adeb34bf70e604d507ce74881c6f";
const GOLDEN_SESSION_I2R: &str = "b694493ba8aa3438684638377ee01ee0";
const GOLDEN_SESSION_R2I: &str = "933478e7afaddabe2ae2c4db1ac4c9f4";
/// [`INNER`] sealed with ChaCha20-Poly1305 by the initiator (its send key and session).
const GOLDEN_SEALED_I2R: &str =
    "00000000000086 80 b694493ba8aa3438684638377ee01ee0 0000000000000000
    b5a78af2e466030895a651c8f37aa27670130096e90d32
    d69b720e9152ee5615ca6ec4417d36f3";

#[test]
fn handshake_golden_vectors() {
    let (init, resp, msg1, msg2) = handshake();
    let sealed = seal(&init.send_key, init.send_session);
    assert_eq!(msg1, unhex(GOLDEN_INITIATION));
    assert_eq!(msg2, unhex(GOLDEN_RESPONSE));
    assert_eq!(init.send_session.to_vec(), unhex(GOLDEN_SESSION_I2R));
    assert_eq!(init.recv_session.to_vec(), unhex(GOLDEN_SESSION_R2I));
    assert_eq!(sealed, unhex(GOLDEN_SEALED_I2R));
    let mut clear = token().to_bytes().to_vec();
    clear.extend_from_slice(INNER);
    assert_eq!(open(&resp.recv_key, &sealed), Ok(clear));
}

#[test]
fn timestamp_is_tai64n() {
    assert_eq!(
        hex(&timestamp(UNIX_NANOS)),
        format!("{:016x}{:08x}", (1u64 << 62) + 1_740_786_510, 848_000_001)
    );
    assert_eq!(hex(&timestamp(0)), "400000000000000000000000");
    assert!(timestamp(UNIX_NANOS + 1) > timestamp(UNIX_NANOS));
    assert!(timestamp(UNIX_NANOS + 1_000_000_000) > timestamp(UNIX_NANOS + 999_999_999));
}

#[test]
fn handshake_round_trip_gives_matching_keys_and_sessions() {
    // Random ephemerals (snow's RNG), as in production.
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS), None);
    assert_eq!(msg1.len(), INITIATION_LEN);
    assert_eq!(&msg1[..TOKEN_LEN], &token().to_bytes());
    assert_eq!(msg1[TOKEN_LEN], INITIATION);
    assert_eq!(check_initiation(bob(), &msg1), Ok(INIT_INDEX));
    let (resp, msg2) = answer(&msg1, None).unwrap();
    assert_eq!(msg2.len(), RESPONSE_LEN);
    assert_eq!(msg2[TOKEN_LEN], RESPONSE);
    assert_eq!(check_response(alice(), &msg2), Ok((RESP_INDEX, INIT_INDEX)));
    let est = init.complete(&msg2).unwrap();

    assert!(est.is_initiator && !resp.is_initiator);
    assert_eq!(est.remote, bob().public());
    assert_eq!(resp.remote, alice().public());
    assert_eq!(
        (est.local_index, est.remote_index),
        (INIT_INDEX, RESP_INDEX)
    );
    assert_eq!(
        (resp.local_index, resp.remote_index),
        (RESP_INDEX, INIT_INDEX)
    );
    assert!(est.send_key == resp.recv_key && est.recv_key == resp.send_key);
    assert!(est.send_key != est.recv_key);
    assert_eq!(est.send_session, resp.recv_session);
    assert_eq!(est.recv_session, resp.send_session);
    assert_ne!(est.send_session, est.recv_session);

    // Both directions carry a datagram.
    let mut clear = token().to_bytes().to_vec();
    clear.extend_from_slice(INNER);
    let i2r = seal(&est.send_key, est.send_session);
    assert_eq!(open(&resp.recv_key, &i2r), Ok(clear.clone()));
    let r2i = seal(&resp.send_key, resp.send_session);
    assert_eq!(open(&est.recv_key, &r2i), Ok(clear));
    assert_eq!(open(&est.recv_key, &i2r), Err(OpenError::Forged));

    // A finished initiator completes nothing more.
    assert_eq!(init.complete(&msg2).err(), Some(HandshakeError::Noise));
}

#[test]
fn replayed_initiation_is_refused_by_a_newest_timestamp_store() {
    let newest: std::cell::RefCell<HashMap<PublicKey, [u8; TIMESTAMP_LEN]>> = Default::default();
    let newer = |key: &PublicKey, ts: &[u8; TIMESTAMP_LEN]| {
        let mut store = newest.borrow_mut();
        if store.get(key).is_some_and(|seen| ts <= seen) {
            return false;
        }
        store.insert(*key, *ts);
        true
    };
    let bob = bob();
    let mut out = [0u8; RESPONSE_LEN];
    let mut respond_to = |msg: &[u8]| {
        respond(
            bob,
            token(),
            msg,
            |_| true,
            newer,
            RESP_INDEX,
            &fresh(),
            &mut out,
        )
        .map(|_| ())
    };
    let (_, first) = initiation(timestamp(UNIX_NANOS), None);
    let (_, older) = initiation(timestamp(UNIX_NANOS - 1), None);
    let (_, same) = initiation(timestamp(UNIX_NANOS), None);
    let (_, newer) = initiation(timestamp(UNIX_NANOS + 1), None);
    assert_eq!(respond_to(&first), Ok(()));
    assert_eq!(respond_to(&first), Err(HandshakeError::Replayed));
    assert_eq!(respond_to(&older), Err(HandshakeError::Replayed));
    assert_eq!(respond_to(&same), Err(HandshakeError::Replayed));
    assert_eq!(respond_to(&newer), Ok(()));
    assert_eq!(respond_to(&first), Err(HandshakeError::Replayed));
    assert_eq!(
        newest.borrow().get(&alice().public()),
        Some(&timestamp(UNIX_NANOS + 1))
    );
}

#[test]
fn untrusted_initiator_is_refused_and_nothing_is_written() {
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), None);
    let asked = Cell::new(None);
    let stamped = Cell::new(false);
    let mut out = [0xaa; RESPONSE_LEN];
    let result = respond(
        bob(),
        token(),
        &msg1,
        |key| {
            asked.set(Some(*key));
            false
        },
        |_, _| {
            stamped.set(true);
            true
        },
        RESP_INDEX,
        &fresh(),
        &mut out,
    );
    assert_eq!(result.err(), Some(HandshakeError::Untrusted));
    assert_eq!(asked.get(), Some(alice().public()));
    assert!(
        !stamped.get(),
        "an untrusted key must not move the timestamp store"
    );
    assert_eq!(out, [0xaa; RESPONSE_LEN]);
}

#[test]
fn an_initiator_the_identity_does_not_trust_is_refused_before_the_static_static_dh() {
    // Carol's initiation is well made (mac1, Noise) but Bob holds no secret for her key: the
    // read stops at `ss`, and `is_trusted` is never asked.
    let carol = identity(5, &[2]);
    let mut msg = [0u8; INITIATION_LEN];
    initiate(
        &carol,
        token(),
        &bob().public(),
        INIT_INDEX,
        timestamp(UNIX_NANOS),
        &fresh(),
        &mut msg,
    )
    .unwrap();
    let mut out = [0xaa; RESPONSE_LEN];
    let (result, asked) = answer_asking(&msg, &mut out);
    assert_eq!(result.err(), Some(HandshakeError::Untrusted));
    assert!(!asked, "the read went past ss");
    assert_eq!(out, [0xaa; RESPONSE_LEN]);
    // Once Bob trusts her, the same initiation is answered.
    let mut bob_too = identity(2, &[1, 5]);
    assert_eq!(bob_too.trusted_len(), 2);
    assert!(answer_by(&bob_too, &msg, None).is_ok());
    // And when he stops, refused again.
    bob_too.set_trusted(&[alice().public()]);
    assert_eq!(
        answer_by(&bob_too, &msg, None).err(),
        Some(HandshakeError::Untrusted)
    );
}

#[test]
fn short_output_buffers_are_refused_untouched() {
    let mut out = [0xaa; INITIATION_LEN - 1];
    let r = initiate(
        alice(),
        token(),
        &bob().public(),
        INIT_INDEX,
        timestamp(UNIX_NANOS),
        &fresh(),
        &mut out,
    );
    assert_eq!(r.err(), Some(HandshakeError::NoRoom));
    assert_eq!(out, [0xaa; INITIATION_LEN - 1]);
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), None);
    let stamped = Cell::new(false);
    let mut out = [0xaa; RESPONSE_LEN - 1];
    let r = respond(
        bob(),
        token(),
        &msg1,
        |_| true,
        |_, _| {
            stamped.set(true);
            true
        },
        RESP_INDEX,
        &fresh(),
        &mut out,
    );
    assert_eq!(r.err(), Some(HandshakeError::NoRoom));
    assert!(!stamped.get());
    assert_eq!(out, [0xaa; RESPONSE_LEN - 1]);
}

#[test]
fn second_handshake_keys_open_nothing_of_the_first() {
    let (_, msg1) = initiation(timestamp(UNIX_NANOS), None);
    let (first, _) = answer(&msg1, None).unwrap();
    let (mut init, msg1) = initiation(timestamp(UNIX_NANOS + 1), None);
    let (second_resp, msg2) = answer(&msg1, None).unwrap();
    let second = init.complete(&msg2).unwrap();
    assert!(first.send_key != second_resp.send_key && first.recv_key != second_resp.recv_key);
    assert_ne!(first.send_session, second_resp.send_session);

    // Datagrams of the first session, both directions, under the second session's keys.
    let r2i = seal(&first.send_key, first.send_session);
    assert_eq!(open(&second.recv_key, &r2i), Err(OpenError::Forged));
    let i2r = seal(&first.recv_key, first.recv_session);
    assert_eq!(open(&second_resp.recv_key, &i2r), Err(OpenError::Forged));
    // Even relabelled with the second session's id.
    let mut relabelled = r2i.clone();
    relabelled[TOKEN_LEN + 1..TOKEN_LEN + 17].copy_from_slice(&second.recv_session);
    assert_eq!(open(&second.recv_key, &relabelled), Err(OpenError::Forged));
    // While the first session's own keys open them.
    assert!(open(&first.recv_key, &i2r).is_ok());
}
