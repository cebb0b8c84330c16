//! Nanoseconds per seal and per open of a 1400-byte frame in keyed mode (`ethcloud::crypto`),
//! in place in a `PacketBuf`-shaped buffer, for each cipher; and per refused packet of an
//! unknown session (the cost of a forgery: one HKDF, one key setup and a failed tag). Also
//! what the sealer's counter costs: since `--threads` shares one sealer between threads, each
//! seal takes its counter with an atomic compare-and-swap (`fetch_update`, as in
//! `Sealer::seal`), measured here on one thread against a plain increment.
//!
//! And the handshake (`ethcloud::identity::handshake`, issue #12): microseconds to refuse an
//! initiation from a key the responder does not trust (what a handshake flood costs once past
//! the rate limit), to answer one from a trusted key, and to make one; and what an initiation
//! over the rate limit costs: its mac1 checked and a cookie reply made.
//!
//! Run: `cargo bench --bench crypto`. Prints the median of 11 runs.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant as WallClock;

use ethcloud::buf::{BUF_LEN, HEADROOM};
use ethcloud::crypto::{Cipher, Key, Opener, Sealer, FRONT_LEN, OVERHEAD, TAG_LEN};
use std::net::SocketAddr;

use ethcloud::identity::cookie::{CookieSecret, COOKIE_REPLY_LEN};
use ethcloud::identity::handshake::{
    check_initiation, initiate, respond, timestamp, Identity, INITIATION_LEN, RESPONSE_LEN,
};
use ethcloud::identity::keys::SecretKey;
use ethcloud::time::Instant;
use ethcloud::wire::{Token, HEADER_LEN, TOKEN_LEN};

const FRAME_LEN: usize = 1400;
const RUNS: usize = 11;
const SEALS_PER_RUN: u32 = 100_000;
/// Packets sealed (untimed) and then opened (timed) per batch; each can be opened only once.
const BATCH: usize = 2048;
const BATCHES_PER_RUN: usize = 25;
const FORGERIES_PER_RUN: u32 = 20_000;

fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn bench(cipher: Cipher) {
    let token = Token::new(7).expect("small token");
    let key = Key::from_bytes([0x42; 32]);
    let mut session = [0u8; 16];
    session[..8].copy_from_slice(&1_740_787_200_000u64.to_be_bytes());
    let sealer = Sealer::with_cipher(&key, session, cipher);
    let mut opener = Opener::new(&key, 4096);

    // The switch byte sits where it does in a PacketBuf: right after the token at HEADROOM.
    let switch_at = HEADROOM + TOKEN_LEN;
    let inner_len = 1 + FRAME_LEN;
    let mut buf = vec![0u8; BUF_LEN];
    buf[switch_at + 1..switch_at + inner_len].fill(0xab);

    let seal_ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..SEALS_PER_RUN {
                let r = sealer
                    .seal(token, black_box(&mut buf), switch_at, inner_len)
                    .expect("room in a PacketBuf");
                black_box(r);
            }
            start.elapsed().as_nanos() as f64 / f64::from(SEALS_PER_RUN)
        })
        .collect();

    let sealed_len = HEADER_LEN + FRAME_LEN + OVERHEAD;
    let mut batch = vec![vec![0u8; sealed_len]; BATCH];
    let open_ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let mut elapsed = 0u128;
            for _ in 0..BATCHES_PER_RUN {
                for packet in &mut batch {
                    packet[FRONT_LEN] = 0;
                    packet[FRONT_LEN + 1..sealed_len - TAG_LEN].fill(0xab);
                    let r = sealer
                        .seal(token, packet, FRONT_LEN, inner_len)
                        .expect("exact room");
                    assert_eq!(r, 0..sealed_len);
                }
                let start = WallClock::now();
                for packet in &mut batch {
                    let r = opener.open(black_box(packet)).expect("fresh sealed packet");
                    black_box(r);
                }
                elapsed += start.elapsed().as_nanos();
            }
            elapsed as f64 / (BATCH * BATCHES_PER_RUN) as f64
        })
        .collect();

    // A forged 1400-byte frame under a new session each time: the opener derives a subkey,
    // fails the tag and remembers nothing.
    let mut forged = vec![0u8; sealed_len];
    forged[FRONT_LEN + 1..sealed_len - TAG_LEN].fill(0xab);
    sealer
        .seal(token, &mut forged, FRONT_LEN, inner_len)
        .expect("exact room");
    forged[sealed_len - 1] ^= 1;
    let mut unknown = 0u64;
    let forged_ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..FORGERIES_PER_RUN {
                unknown += 1;
                forged[TOKEN_LEN + 1 + 8..FRONT_LEN - 8].copy_from_slice(&unknown.to_be_bytes());
                let r = opener.open(black_box(&mut forged));
                assert!(r.is_err());
            }
            start.elapsed().as_nanos() as f64 / f64::from(FORGERIES_PER_RUN)
        })
        .collect();
    assert_eq!(opener.sessions(), 1, "forgeries are not remembered");

    println!(
        "{cipher:>17}: seal {FRAME_LEN}-byte frame {:7.1} ns, open {:7.1} ns, \
         refuse forged unknown session {:7.1} ns (medians of {RUNS})",
        median(seal_ns),
        median(open_ns),
        median(forged_ns),
    );
}

/// Nanoseconds per counter step: the sealer's atomic compare-and-swap, and a plain `u64`.
fn counter() {
    const STEPS: u64 = 10_000_000;
    let atomic = AtomicU64::new(0);
    let cas_ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..STEPS {
                let r =
                    black_box(&atomic)
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1));
                black_box(r.ok());
            }
            start.elapsed().as_nanos() as f64 / STEPS as f64
        })
        .collect();
    let mut plain = 0u64;
    let plain_ns: Vec<f64> = (0..RUNS)
        .map(|_| {
            let start = WallClock::now();
            for _ in 0..STEPS {
                let next = black_box(plain).checked_add(1);
                plain = black_box(next).unwrap_or(u64::MAX);
            }
            start.elapsed().as_nanos() as f64 / STEPS as f64
        })
        .collect();
    println!(
        "    sealer counter: atomic compare-and-swap {:5.1} ns, plain increment {:5.1} ns \
         per seal, one thread (medians of {RUNS})",
        median(cas_ns),
        median(plain_ns),
    );
}

/// Microseconds per call of `f`, median of [`RUNS`] runs of `per_run` calls.
fn micros(per_run: u32, mut f: impl FnMut()) -> f64 {
    median(
        (0..RUNS)
            .map(|_| {
                let start = WallClock::now();
                for _ in 0..per_run {
                    f();
                }
                start.elapsed().as_secs_f64() * 1e6 / f64::from(per_run)
            })
            .collect(),
    )
}

/// The handshake's three costs (see the module doc). Bob trusts Alice only and Alice Bob, as
/// nodes do after reading their trust files; Carol's initiation is well made but untrusted.
fn handshakes() {
    const PER_RUN: u32 = 100;
    let token = Token::new(7).expect("small token");
    let mut alice = Identity::new(SecretKey::from_random([1; 32]));
    let carol = Identity::new(SecretKey::from_random([3; 32]));
    let mut bob = Identity::new(SecretKey::from_random([2; 32]));
    bob.set_trusted(&[alice.public()]);
    alice.set_trusted(&[bob.public()]);
    let message = |from: &Identity| {
        let mut out = [0u8; INITIATION_LEN];
        initiate(
            from,
            token,
            &bob.public(),
            1,
            timestamp(1),
            &[7; 32],
            &mut out,
        )
        .expect("an initiation");
        out
    };
    let (trusted, untrusted) = (message(&alice), message(&carol));
    let mut out = [0u8; RESPONSE_LEN];
    let mut answered = |msg: &[u8]| {
        respond(
            &bob,
            token,
            msg,
            |_| true,
            |_, _| true,
            2,
            &[8; 32],
            &mut out,
        )
        .is_ok()
    };
    let refuse = micros(PER_RUN, || assert!(!answered(&untrusted)));
    let answer = micros(PER_RUN, || assert!(answered(&trusted)));
    let mut init = [0u8; INITIATION_LEN];
    let make = micros(PER_RUN, || {
        let r = initiate(
            &alice,
            token,
            &bob.public(),
            1,
            timestamp(1),
            &[9; 32],
            &mut init,
        );
        black_box(r.expect("an initiation"));
    });
    println!(
        "         handshake: refuse an untrusted initiation {refuse:6.1} us, answer a trusted one \
         {answer:6.1} us, make one {make:6.1} us (medians of {RUNS})"
    );
    // Over the rate limit: the mac1 check and the cookie reply (an HMAC and 16 bytes sealed).
    let mut secret = CookieSecret::new(
        &bob.public(),
        Instant::ZERO,
        ethcloud::identity::random::Random::new(&[1; 32], b"bench"),
    );
    let from = SocketAddr::from(([198, 18, 0, 2], 3210));
    let mut reply = [0u8; COOKIE_REPLY_LEN];
    let cookie_reply = micros(PER_RUN * 100, || {
        assert!(check_initiation(&bob, &untrusted).is_ok());
        let n = secret.write_reply(Instant::ZERO, from, &untrusted, &mut reply);
        black_box(n.expect("a cookie reply"));
    });
    println!(
        "         handshake over the rate limit: mac1 and a cookie reply {cookie_reply:6.2} us \
         (median of {RUNS})"
    );
}

/// Microseconds per new sender session opened while the opener's map is full (16,384
/// sessions, the default's four per peer): the subkey, the tag, and the room made for it.
fn new_sessions_when_full() {
    const FULL: usize = 16_384;
    const NEW: usize = 4_096;
    let token = Token::new(7).expect("small token");
    let key = Key::from_bytes([0x42; 32]);
    let inner_len = 1 + 64;
    let sealed_len = HEADER_LEN + 64 + OVERHEAD;
    let packets: Vec<Vec<u8>> = (0..FULL + NEW)
        .map(|i| {
            let mut session = [0u8; 16];
            session[..8].copy_from_slice(&(1_740_787_200_000u64 + i as u64).to_be_bytes());
            let sealer = Sealer::with_cipher(&key, session, Cipher::ChaCha20Poly1305);
            let mut packet = vec![0u8; sealed_len];
            sealer
                .seal(token, &mut packet, FRONT_LEN, inner_len)
                .expect("exact room");
            packet
        })
        .collect();
    let mut opener = Opener::new(&key, FULL);
    let mut packets = packets.into_iter();
    for mut packet in packets.by_ref().take(FULL) {
        opener.open(&mut packet).expect("a new session");
    }
    let start = WallClock::now();
    for mut packet in packets {
        let r = opener.open(black_box(&mut packet)).expect("a new session");
        black_box(r);
    }
    let us = start.elapsed().as_secs_f64() * 1e6 / NEW as f64;
    println!("  new session, map full ({FULL} sessions): {us:8.2} us each, over {NEW} in a row");
}

fn main() {
    println!("preferred on this CPU: {}", Cipher::preferred());
    for cipher in Cipher::ALL {
        bench(cipher);
    }
    counter();
    new_sessions_when_full();
    handshakes();
}
