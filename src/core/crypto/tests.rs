//! Unit tests of sealing and opening as a whole: the layout, the golden vectors of both
//! ciphers, round trips, tampering and truncation, and the replay rules seen through
//! [`Opener::open`]. The replay window's own tests sit beside it in `open`, the key file's in
//! `key`.

use std::sync::Arc;

use super::open::start_time;
use super::*;
use crate::wire::{self, Kind, Message, Packet, Token};

const TOKEN: u64 = 134;
/// Start time 1740786510848 ms (2025-02-28T23:48:30.848Z), then 8 fixed "random" bytes.
const SESSION: [u8; 16] = [
    0x00, 0x00, 0x01, 0x95, 0x4e, 0xf6, 0x2c, 0x00, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07, 0x18,
];

pub(super) fn token() -> Token {
    Token::new(TOKEN).unwrap()
}

pub(super) fn test_key() -> Key {
    let mut bytes = [0u8; 32];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::try_from(i).unwrap();
    }
    Key::from_bytes(bytes)
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    s.chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

pub(super) fn session(start_ms: u64, random: u64) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[..8].copy_from_slice(&start_ms.to_be_bytes());
    s[8..].copy_from_slice(&random.to_be_bytes());
    s
}

/// Seals a clear datagram (token ‖ switch ‖ body) and returns the sealed bytes.
pub(super) fn seal(sealer: &mut Sealer, clear: &[u8]) -> Vec<u8> {
    seal_with(sealer, clear)
}

/// [`seal`] with a sealer shared behind an `Arc`, as the `--threads` lanes hold them.
fn seal_with(sealer: &Sealer, clear: &[u8]) -> Vec<u8> {
    let inner = &clear[TOKEN_LEN..];
    let mut buf = vec![0u8; FRONT_LEN + inner.len() + TAG_LEN];
    buf[FRONT_LEN..FRONT_LEN + inner.len()].copy_from_slice(inner);
    let token = Token::from_bytes(clear[..TOKEN_LEN].try_into().unwrap());
    let range = sealer
        .seal(token, &mut buf, FRONT_LEN, inner.len())
        .unwrap();
    assert_eq!(range, 0..buf.len());
    buf
}

pub(super) fn open(opener: &mut Opener, sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    let mut buf = sealed.to_vec();
    opener.open(&mut buf).map(|r| buf[r].to_vec())
}

/// A short frame: dst 02:00:00:00:00:02, src 02:00:00:00:00:01, type 0x88b5, "ethcloud".
const FRAME: &[u8] = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5ethcloud";

/// Key 00..1f, session above, token 134, ChaCha20-Poly1305, counter 0: GetPeers
/// `00 00 00 00 00 00 86 02`.
const GOLDEN_CHACHA_GET_PEERS: &str =
    "00000000000086 80 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
    33 f90b86332c8d19e427a75b292bf4bcda";
/// The same sealer's next packet, counter 1: the frame above.
const GOLDEN_CHACHA_FRAME: &str =
    "00000000000086 80 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
    952ea48274012f1b7ec549c2258eba0e4532ad1125a68a
    afa7ac29d7ed05feade7446205bc0088";
/// As [`GOLDEN_CHACHA_GET_PEERS`] with AES-256-GCM.
const GOLDEN_AES_GET_PEERS: &str =
    "00000000000086 81 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
    20 f0e55546ccac14a690343b75f025c5c2";
/// As [`GOLDEN_CHACHA_FRAME`] with AES-256-GCM.
const GOLDEN_AES_FRAME: &str = "00000000000086 81 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
    336ebce272494c8927b37df1e562552c1a7ff10682f183
    c7e45c8ef357f0efaee73884b1ac0ca4";
/// As [`GOLDEN_CHACHA_GET_PEERS`] with AES-128-GCM (computed with Python's `cryptography`).
const GOLDEN_AES128_GET_PEERS: &str =
    "00000000000086 82 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
    31 1f6ab05e7f68c9f2e9134e574a239c4f";
/// As [`GOLDEN_CHACHA_FRAME`] with AES-128-GCM.
const GOLDEN_AES128_FRAME: &str =
    "00000000000086 82 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
    e153315fc8ccd19cb2406d697624563bca79fc89f7076e
    697675f4f76b23894aa5b07d2c0eea0c";
/// As [`GOLDEN_CHACHA_GET_PEERS`] with AEGIS-128L (computed with an AEGIS-128L written
/// apart from this crate's, in `scripts/aegis_vectors.py`, checked there against the draft's
/// test vector 1).
const GOLDEN_AEGIS_GET_PEERS: &str =
    "00000000000086 83 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
    32 d9ca7969f17c1da5112c1e568b401543";
/// As [`GOLDEN_CHACHA_FRAME`] with AEGIS-128L.
const GOLDEN_AEGIS_FRAME: &str =
    "00000000000086 83 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
    694b195affb3fff28b838d58f78151520576b2e5bba3f6
    5f3e02cdf62515109a34fbc8b4f818c9";
/// As [`GOLDEN_CHACHA_GET_PEERS`] with AEGIS-128X4 (from `scripts/aegis_vectors.py` too, its
/// AEGIS-128X4 checked there against the draft's test vector 2 for it).
const GOLDEN_AEGIS_X4_GET_PEERS: &str =
    "00000000000086 84 000001954ef62c00a1b2c3d4e5f60718 0000000000000000
    24 b3e19a5fd0d8755b595c85ca937f09cb";
/// As [`GOLDEN_CHACHA_FRAME`] with AEGIS-128X4.
const GOLDEN_AEGIS_X4_FRAME: &str =
    "00000000000086 84 000001954ef62c00a1b2c3d4e5f60718 0000000000000001
    a725d40167ca0bbefd3bc52190b2680f9c427b759c9470
    ed7532e08e737376bd41ba9856f78d62";
/// HKDF-SHA256(salt "ethcloud-session-v1", ikm key 00..1f, info session ‖ marker), 32 bytes
/// (16 for AES-128-GCM and the AEGIS ciphers).
const GOLDEN_CHACHA_SUBKEY: &str =
    "89253bdee09f8f23c1f1416d78d43d0e09ea6891d24f1ae8853130f12eacab36";
const GOLDEN_AES_SUBKEY: &str = "176a5bcc65c53537e60ebbd51b250ab868b5cb92c3453e53958fba0e0678e49b";
const GOLDEN_AES128_SUBKEY: &str = "bcec15d78c3d1df277247e6618a4659b";
const GOLDEN_AEGIS_SUBKEY: &str = "34137d5848a46dfb61239381e0e24af3";
const GOLDEN_AEGIS_X4_SUBKEY: &str = "cda2e26fe4bbf5270bc801117bc1ce79";

fn golden(cipher: Cipher) -> (&'static str, &'static str) {
    match cipher {
        Cipher::ChaCha20Poly1305 => (GOLDEN_CHACHA_GET_PEERS, GOLDEN_CHACHA_FRAME),
        Cipher::Aes256Gcm => (GOLDEN_AES_GET_PEERS, GOLDEN_AES_FRAME),
        Cipher::Aes128Gcm => (GOLDEN_AES128_GET_PEERS, GOLDEN_AES128_FRAME),
        Cipher::Aegis128L => (GOLDEN_AEGIS_GET_PEERS, GOLDEN_AEGIS_FRAME),
        Cipher::Aegis128X4 => (GOLDEN_AEGIS_X4_GET_PEERS, GOLDEN_AEGIS_X4_FRAME),
    }
}

pub(super) fn clear_get_peers() -> Vec<u8> {
    let mut b = vec![0u8; 8];
    wire::emit_control(token(), Kind::GetPeers, &mut b).unwrap();
    b
}

pub(super) fn clear_frame() -> Vec<u8> {
    let mut b = vec![0u8; 8 + FRAME.len()];
    let n = wire::emit_frame(token(), FRAME, &mut b).unwrap();
    b.truncate(n);
    b
}

fn sealed_frame(cipher: Cipher) -> Vec<u8> {
    let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
    seal(&mut sealer, &clear_frame())
}

/// Seals an empty GetPeers body at `counter` of `session`.
fn packet(cipher: Cipher, session: [u8; 16], counter: u64) -> Vec<u8> {
    let mut sealer = Sealer::with_cipher(&test_key(), session, cipher);
    sealer.next = counter.into();
    seal(&mut sealer, &clear_get_peers())
}

#[test]
fn layout_constants_add_up_and_fit_packet_buf() {
    assert_eq!(FRONT_LEN, 32);
    assert_eq!(OVERHEAD, 41);
    assert_eq!(FRONT_LEN - TOKEN_LEN + TAG_LEN, OVERHEAD);
    const { assert!(FRONT_LEN - TOKEN_LEN <= crate::buf::HEADROOM) };
    const { assert!(TAG_LEN <= crate::buf::TAILROOM) };
    for cipher in Cipher::ALL {
        assert!(cipher.marker() > Kind::Close as u8);
        assert_eq!(Cipher::from_marker(cipher.marker()), Some(cipher));
        if let Some(algorithm) = cipher.ring_algorithm() {
            assert_eq!(algorithm.tag_len(), TAG_LEN);
            assert_eq!(algorithm.nonce_len(), NONCE_LEN);
            assert_eq!(algorithm.key_len(), cipher.key_len());
        }
        let key_len = match cipher {
            Cipher::Aes128Gcm | Cipher::Aegis128L | Cipher::Aegis128X4 => 16,
            _ => KEY_LEN,
        };
        assert_eq!(cipher.key_len(), key_len);
    }
    let markers: Vec<u8> = (0..=255)
        .filter(|&m| Cipher::from_marker(m).is_some())
        .collect();
    assert_eq!(markers, [0x80, 0x81, 0x82, 0x83, 0x84]);
    let aegis: Vec<Cipher> = Cipher::ALL.into_iter().filter(|c| c.is_aegis()).collect();
    assert_eq!(aegis, [Cipher::Aegis128L, Cipher::Aegis128X4]);
}

#[test]
fn preferred_cipher_follows_the_cpu() {
    let expected = if has_aes_instructions() {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    assert_eq!(Cipher::preferred(), expected);
    assert_eq!(Sealer::new(&test_key(), SESSION).cipher(), expected);
    assert_eq!(Cipher::Aes256Gcm.to_string(), "AES-256-GCM");
    assert_eq!(Cipher::ChaCha20Poly1305.to_string(), "ChaCha20-Poly1305");
}

#[test]
fn session_subkeys_match_golden_vectors() {
    for (cipher, expected) in [
        (Cipher::ChaCha20Poly1305, GOLDEN_CHACHA_SUBKEY),
        (Cipher::Aes256Gcm, GOLDEN_AES_SUBKEY),
        (Cipher::Aes128Gcm, GOLDEN_AES128_SUBKEY),
        (Cipher::Aegis128L, GOLDEN_AEGIS_SUBKEY),
        (Cipher::Aegis128X4, GOLDEN_AEGIS_X4_SUBKEY),
    ] {
        let marker = [cipher.marker()];
        let info: [&[u8]; 2] = [&SESSION, &marker];
        let mut okm = vec![0u8; cipher.key_len()];
        test_key()
            .subkey_prk()
            .expand(&info, SubkeyLen(cipher.key_len()))
            .unwrap()
            .fill(&mut okm)
            .unwrap();
        assert_eq!(hex(&okm), expected, "{cipher}");
    }
}

#[test]
fn sealed_get_peers_and_frame_match_golden_vectors() {
    assert_eq!(clear_get_peers(), unhex("00000000000086 02"));
    for cipher in Cipher::ALL {
        let (golden_get_peers, golden_frame) = golden(cipher);
        let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
        let get_peers = seal(&mut sealer, &clear_get_peers());
        let frame = seal(&mut sealer, &clear_frame());
        assert_eq!(hex(&get_peers), hex(&unhex(golden_get_peers)), "{cipher}");
        assert_eq!(hex(&frame), hex(&unhex(golden_frame)), "{cipher}");
        assert_eq!(get_peers.len(), 8 + OVERHEAD);
        assert_eq!(frame.len(), 8 + FRAME.len() + OVERHEAD);
    }
}

#[test]
fn golden_vectors_open_back_to_clear_datagrams() {
    for cipher in Cipher::ALL {
        let (golden_get_peers, golden_frame) = golden(cipher);
        let mut opener = Opener::new(&test_key(), 16);
        assert_eq!(
            open(&mut opener, &unhex(golden_get_peers)),
            Ok(clear_get_peers())
        );
        assert_eq!(open(&mut opener, &unhex(golden_frame)), Ok(clear_frame()));
    }
}

#[test]
fn seal_then_open_round_trips_every_kind() {
    let t = token();
    let addrs: Vec<std::net::SocketAddr> = vec!["198.18.1.2:3210".parse().unwrap()];
    let mut clears = Vec::new();
    let mut b = vec![0u8; 64];
    let n = wire::emit_frame(t, FRAME, &mut b).unwrap();
    clears.push(b[..n].to_vec());
    let (n, _) = wire::emit_peers(t, addrs.iter().copied(), &mut b).unwrap();
    clears.push(b[..n].to_vec());
    for kind in [Kind::GetPeers, Kind::Close] {
        let n = wire::emit_control(t, kind, &mut b).unwrap();
        clears.push(b[..n].to_vec());
    }
    for cipher in Cipher::ALL {
        let mut sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
        let mut opener = Opener::new(&test_key(), 16);
        for clear in &clears {
            let sealed = seal(&mut sealer, clear);
            assert_eq!(sealed.len(), clear.len() + OVERHEAD);
            assert_eq!(sealed[..TOKEN_LEN], clear[..TOKEN_LEN], "token in clear");
            assert_eq!(sealed[TOKEN_LEN], cipher.marker());
            let opened = open(&mut opener, &sealed).unwrap();
            assert_eq!(&opened, clear);
            let pkt = Packet::new_checked(&opened[..]).unwrap();
            assert_eq!(pkt.token(), t);
            assert!(Message::parse(pkt).is_ok());
        }
    }
}

#[test]
fn chacha_and_aes_sealers_interoperate_with_one_opener() {
    let chacha_session = session(1_000, 1);
    let aes_session = session(2_000, 2);
    let mut chacha = Sealer::with_cipher(&test_key(), chacha_session, Cipher::ChaCha20Poly1305);
    let mut aes = Sealer::with_cipher(&test_key(), aes_session, Cipher::Aes256Gcm);
    let mut opener = Opener::new(&test_key(), 16);
    for _ in 0..3 {
        for sealer in [&mut chacha, &mut aes] {
            let sealed = seal(sealer, &clear_frame());
            assert_eq!(sealed[TOKEN_LEN], sealer.cipher().marker());
            assert_eq!(open(&mut opener, &sealed), Ok(clear_frame()));
            assert_eq!(open(&mut opener, &sealed), Err(OpenError::Replayed));
        }
    }
    assert_eq!(opener.sessions(), 2);
}

#[test]
fn same_counter_in_two_sessions_or_ciphers_gives_unrelated_ciphertexts() {
    // The nonce holds only the counter: the subkey must differ per session and per cipher.
    let a = packet(Cipher::Aes256Gcm, session(1, 1), 0);
    let b = packet(Cipher::Aes256Gcm, session(1, 2), 0);
    let c = packet(Cipher::ChaCha20Poly1305, session(1, 1), 0);
    assert_ne!(a[FRONT_LEN..], b[FRONT_LEN..]);
    assert_ne!(a[FRONT_LEN..], c[FRONT_LEN..]);
}

#[test]
fn known_session_under_the_other_marker_is_refused_without_harm() {
    for cipher in Cipher::ALL {
        let other = Cipher::ALL.into_iter().find(|&c| c != cipher).unwrap();
        let mut opener = Opener::new(&test_key(), 16);
        assert!(open(&mut opener, &packet(cipher, SESSION, 0)).is_ok());
        // A genuine seal of the same session under the other cipher (no honest sender does
        // this), and the first packet with only its marker switched.
        let switched = packet(other, SESSION, 1);
        let mut relabelled = packet(cipher, SESSION, 2);
        relabelled[TOKEN_LEN] = other.marker();
        for bad in [&switched, &relabelled] {
            assert_eq!(open(&mut opener, bad), Err(OpenError::Forged));
        }
        assert_eq!(opener.sessions(), 1);
        assert!(open(&mut opener, &packet(cipher, SESSION, 1)).is_ok());
        assert!(open(&mut opener, &packet(cipher, SESSION, 2)).is_ok());
    }
}

#[test]
fn seal_in_place_leaves_frame_position_and_returns_its_range() {
    // Like a PacketBuf: headroom, token, switch byte, frame, tailroom.
    for cipher in Cipher::ALL {
        let switch_at = crate::buf::HEADROOM + TOKEN_LEN;
        let mut buf = vec![0u8; crate::buf::BUF_LEN];
        buf[switch_at] = Kind::Frame as u8;
        buf[switch_at + 1..switch_at + 1 + FRAME.len()].copy_from_slice(FRAME);
        let inner_len = 1 + FRAME.len();
        let sealer = Sealer::with_cipher(&test_key(), SESSION, cipher);
        let sealed = sealer
            .seal(token(), &mut buf, switch_at, inner_len)
            .unwrap();
        assert_eq!(
            sealed,
            switch_at - FRONT_LEN..switch_at + inner_len + TAG_LEN
        );
        let mut opener = Opener::new(&test_key(), 16);
        let clear = opener.open(&mut buf[sealed.clone()]).unwrap();
        let clear = clear.start + sealed.start..clear.end + sealed.start;
        assert_eq!(clear, switch_at - TOKEN_LEN..switch_at + inner_len);
        assert_eq!(buf[clear], clear_frame()[..]);
    }
}

#[test]
fn seal_without_room_is_refused_and_writes_nothing() {
    let sealer = Sealer::new(&test_key(), SESSION);
    let mut buf = [7u8; 64];
    let refused = [
        (FRONT_LEN - 1, 1),          // no room in front
        (FRONT_LEN, 64 - FRONT_LEN), // no room for the tag
        (usize::MAX, 1),
        (FRONT_LEN, usize::MAX),
    ];
    for (switch_at, inner_len) in refused {
        assert_eq!(
            sealer.seal(token(), &mut buf, switch_at, inner_len),
            Err(SealError::NoRoom)
        );
    }
    assert_eq!(buf, [7u8; 64]);
    assert_eq!(sealer.sealed(), 0, "no counter used");
    assert!(sealer
        .seal(token(), &mut buf, FRONT_LEN, 64 - FRONT_LEN - TAG_LEN)
        .is_ok());
    assert_eq!(sealer.sealed(), 1);
}

#[test]
fn seal_refuses_once_counter_is_exhausted() {
    let mut sealer = Sealer::new(&test_key(), SESSION);
    sealer.next = (u64::MAX - 1).into();
    let mut buf = [0u8; 64];
    assert!(sealer.seal(token(), &mut buf, FRONT_LEN, 1).is_ok());
    assert_eq!(
        sealer.seal(token(), &mut buf, FRONT_LEN, 1),
        Err(SealError::CounterExhausted)
    );
}

#[test]
fn flipping_any_single_byte_fails_to_open() {
    for cipher in Cipher::ALL {
        let sealed = sealed_frame(cipher);
        for at in 0..sealed.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = sealed.clone();
                bad[at] ^= mask;
                // 0x80 ^ 0x01 is 0x81 and back: the other cipher's marker, so a forgery.
                let expected = if at == TOKEN_LEN && Cipher::from_marker(bad[at]).is_none() {
                    OpenError::NotSealed
                } else {
                    OpenError::Forged
                };
                let mut opener = Opener::new(&test_key(), 16);
                assert_eq!(
                    open(&mut opener, &bad),
                    Err(expected),
                    "{cipher}: byte {at} ^ {mask:#x}"
                );
                assert_eq!(opener.sessions(), 0, "a forgery is not remembered");
                // The forgery did not spoil the window for the real packet.
                assert_eq!(open(&mut opener, &sealed), Ok(clear_frame()));
                // Nor does one against a remembered session.
                let mut next = packet(cipher, SESSION, 1);
                let at = at.min(next.len() - 1);
                next[at] ^= mask;
                assert!(open(&mut opener, &next).is_err());
                next[at] ^= mask;
                assert!(open(&mut opener, &next).is_ok(), "{cipher}: byte {at}");
            }
        }
    }
}

#[test]
fn other_key_or_token_fails_to_open() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&Key::from_bytes([9; 32]), 16);
        assert_eq!(
            open(&mut opener, &sealed_frame(cipher)),
            Err(OpenError::Forged)
        );
        let mut other = sealed_frame(cipher);
        other[..TOKEN_LEN].copy_from_slice(&Token::new(135).unwrap().to_bytes());
        let mut opener = Opener::new(&test_key(), 16);
        assert_eq!(open(&mut opener, &other), Err(OpenError::Forged));
        assert_eq!(opener.sessions(), 0);
    }
}

#[test]
fn clear_datagram_is_not_sealed() {
    let mut opener = Opener::new(&test_key(), 16);
    assert_eq!(
        open(&mut opener, &clear_get_peers()),
        Err(OpenError::NotSealed)
    );
    assert_eq!(open(&mut opener, &clear_frame()), Err(OpenError::NotSealed));
}

#[test]
fn truncation_at_every_length_fails_without_panic() {
    for cipher in Cipher::ALL {
        let sealed = sealed_frame(cipher);
        let mut opener = Opener::new(&test_key(), 16);
        for len in 0..sealed.len() {
            let expected = if len < FRONT_LEN + TAG_LEN {
                OpenError::Truncated
            } else {
                OpenError::Forged
            };
            assert_eq!(
                open(&mut opener, &sealed[..len]),
                Err(expected),
                "{cipher}: len {len}"
            );
        }
        assert!(open(&mut opener, &sealed).is_ok());
    }
}

#[test]
fn seeded_random_bytes_never_panic_or_open() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut opener = Opener::new(&test_key(), 4);
    let mut buf = [0u8; 200];
    for _ in 0..20_000 {
        let len = usize::try_from(next() % 200).unwrap();
        for b in buf.iter_mut().take(len) {
            *b = u8::try_from(next() & 0xff).unwrap();
        }
        if len > TOKEN_LEN && next() % 4 != 0 {
            buf[TOKEN_LEN] = Cipher::ALL[usize::try_from(next() % 5).unwrap()].marker();
        }
        assert!(opener.open(&mut buf[..len]).is_err());
    }
    assert_eq!(opener.sessions(), 0);
}

#[test]
fn remembered_session_state_stays_small() {
    // The node's MAX_SESSIONS times this is its worst case (plus the map's spare slots).
    const { assert!(SESSION_STATE_LEN <= 2048) };
    // With the node's MAX_SESSIONS (the default --max-peers), the worst case stays a few
    // tens of MiB, reached only if members open that many sessions.
    const { assert!(crate::node::MAX_SESSIONS * SESSION_STATE_LEN <= 32 << 20) };
}

#[test]
fn replayed_packet_is_dropped() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 16);
        let p = packet(cipher, SESSION, 5);
        assert!(open(&mut opener, &p).is_ok());
        assert_eq!(open(&mut opener, &p), Err(OpenError::Replayed));
        assert_eq!(open(&mut opener, &p), Err(OpenError::Replayed));
    }
}
#[test]
fn reordered_packets_within_window_are_accepted_once() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 16);
        let order = [10u64, 3, 12, 11, 0, 2047, 5, 1000];
        for c in order {
            assert!(
                open(&mut opener, &packet(cipher, SESSION, c)).is_ok(),
                "first {c}"
            );
        }
        for c in order {
            assert_eq!(
                open(&mut opener, &packet(cipher, SESSION, c)),
                Err(OpenError::Replayed),
                "again {c}"
            );
        }
        assert!(open(&mut opener, &packet(cipher, SESSION, 4)).is_ok());
    }
}
#[test]
fn counter_older_than_window_is_dropped() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 16);
        let top = WINDOW_LEN + 952;
        assert!(open(&mut opener, &packet(cipher, SESSION, top)).is_ok());
        assert_eq!(
            open(&mut opener, &packet(cipher, SESSION, top - WINDOW_LEN)),
            Err(OpenError::Replayed)
        );
        assert!(open(&mut opener, &packet(cipher, SESSION, top - WINDOW_LEN + 1)).is_ok());
        assert_eq!(
            open(&mut opener, &packet(cipher, SESSION, 0)),
            Err(OpenError::Replayed)
        );
    }
}

#[test]
fn second_session_from_same_sender_is_independent() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 16);
        let restarted = session(start_time(&SESSION) + 60_000, 42);
        assert!(open(&mut opener, &packet(cipher, SESSION, 7)).is_ok());
        assert!(open(&mut opener, &packet(cipher, restarted, 7)).is_ok());
        assert!(open(&mut opener, &packet(cipher, restarted, 0)).is_ok());
        assert_eq!(
            open(&mut opener, &packet(cipher, SESSION, 7)),
            Err(OpenError::Replayed)
        );
        assert!(open(&mut opener, &packet(cipher, SESSION, 0)).is_ok());
        assert_eq!(opener.sessions(), 2);
    }
}
#[test]
fn lru_eviction_raises_floor_and_refuses_stale_sessions() {
    for cipher in Cipher::ALL {
        let (a, b, c) = (session(100, 1), session(200, 2), session(300, 3));
        let mut opener = Opener::new(&test_key(), 2);
        assert!(open(&mut opener, &packet(cipher, a, 0)).is_ok());
        assert!(open(&mut opener, &packet(cipher, b, 0)).is_ok());
        // b is now least recently used.
        assert!(open(&mut opener, &packet(cipher, a, 1)).is_ok());
        assert!(open(&mut opener, &packet(cipher, c, 0)).is_ok()); // evicts b, floor = 200
        assert_eq!(opener.sessions(), 2);
        assert_eq!(opener.floor, Some(200));
        assert_eq!(
            open(&mut opener, &packet(cipher, b, 0)),
            Err(OpenError::StaleSession),
            "a replay of the forgotten session"
        );
        assert_eq!(
            open(&mut opener, &packet(cipher, b, 1)),
            Err(OpenError::StaleSession)
        );
        assert_eq!(
            open(&mut opener, &packet(cipher, session(150, 9), 0)),
            Err(OpenError::StaleSession),
            "an unknown session older than the floor"
        );
        assert_eq!(
            open(&mut opener, &packet(cipher, a, 1)),
            Err(OpenError::Replayed),
            "remembered sessions keep their windows"
        );
        assert!(open(&mut opener, &packet(cipher, a, 2)).is_ok());
        // A newer session evicts c (least recently used); a's start time is below the floor,
        // but a is still remembered, so it keeps working.
        assert!(open(&mut opener, &packet(cipher, session(400, 4), 0)).is_ok());
        assert_eq!(opener.floor, Some(300));
        assert!(open(&mut opener, &packet(cipher, a, 3)).is_ok());
        assert_eq!(
            open(&mut opener, &packet(cipher, c, 1)),
            Err(OpenError::StaleSession)
        );
    }
}
/// With the map full, a new session makes room for itself and the next ones: the least
/// recently used sixteenth of the processes goes at once (the walk over every session runs
/// once per that many new sessions, not for each), and the floor rises to the latest start
/// time among them. (Here the processes used earlier started later, so that the latest
/// start is not the last one used.)
#[test]
fn a_full_map_forgets_a_share_of_its_processes_at_once() {
    use super::open::EVICT_SHARE;
    let cipher = Cipher::ChaCha20Poly1305;
    let full = 10 * EVICT_SHARE;
    let mut opener = Opener::new(&test_key(), full);
    let start = |i: usize| 10_000 - 10 * i as u64;
    for i in 0..full {
        assert!(open(&mut opener, &packet(cipher, session(start(i), 1), 0)).is_ok());
    }
    // Process 0 was used last of all: it stays; processes 1 to 10 are the least recent.
    assert!(open(&mut opener, &packet(cipher, session(start(0), 1), 1)).is_ok());
    assert!(open(&mut opener, &packet(cipher, session(50_000, 1), 0)).is_ok());
    assert_eq!(opener.sessions(), full - 10 + 1);
    assert_eq!(opener.floor, Some(start(1)));
    assert!(open(&mut opener, &packet(cipher, session(start(0), 1), 2)).is_ok());
    for i in 1..=10 {
        assert_eq!(
            open(&mut opener, &packet(cipher, session(start(i), 1), 1)),
            Err(OpenError::StaleSession),
            "process {i} was forgotten"
        );
    }
    assert!(open(&mut opener, &packet(cipher, session(start(11), 1), 1)).is_ok());
    // The next nine new sessions find room without forgetting anyone.
    for k in 1..10 {
        assert!(open(&mut opener, &packet(cipher, session(50_000 + k, 1), 0)).is_ok());
    }
    assert_eq!(opener.sessions(), full);
    assert_eq!(opener.floor, Some(start(1)));
}

/// Replayed first packets of sessions the opener does not remember (a recording of members'
/// processes from before it restarted) fill the map; the live peer's process, quiet during the
/// burst, is pinned and never evicted, so its next packet still opens. Without the pin it was
/// the least recently used, went, and raised the floor past its own start: refused for good.
/// With nothing but pinned processes and the newcomer's twins left, the newcomer is refused,
/// and the floor stays.
#[test]
fn a_pinned_live_process_is_never_evicted_by_replayed_sessions() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 4);
        let live = session(1_000, 1);
        assert!(open(&mut opener, &packet(cipher, live, 0)).is_ok());
        opener.pin_process(1_000);
        for i in 0..8 {
            let recorded = session(2_000 + i, 10 + i);
            assert!(
                open(&mut opener, &packet(cipher, recorded, 0)).is_ok(),
                "{i}"
            );
        }
        assert!(open(&mut opener, &packet(cipher, live, 1)).is_ok());
        assert!(opener.floor.is_some_and(|f| f < 2_008));
        // Pinned all but the newcomer's own: it is refused, nothing is raised.
        let mut full = Opener::new(&test_key(), 2);
        assert!(open(&mut full, &packet(cipher, live, 0)).is_ok());
        assert!(open(&mut full, &packet(cipher, session(1_500, 5), 0)).is_ok());
        full.pin_process(1_000);
        full.pin_process(1_500);
        assert_eq!(
            open(&mut full, &packet(cipher, session(3_000, 6), 0)),
            Err(OpenError::StaleSession)
        );
        assert_eq!(full.floor, None);
        // Unpinned (the peer went), it is evicted as before; pins are counted.
        full.pin_process(1_000);
        full.unpin_process(1_000);
        full.unpin_process(1_500);
        assert!(open(&mut full, &packet(cipher, session(3_000, 6), 0)).is_ok());
        assert_eq!(full.floor, Some(1_500));
        assert!(open(&mut full, &packet(cipher, live, 1)).is_ok());
        full.unpin_process(1_000);
        assert!(open(&mut full, &packet(cipher, session(4_000, 7), 0)).is_ok());
        assert_eq!(full.floor, Some(3_000), "the least recently used went");
        assert_eq!(
            open(&mut full, &packet(cipher, session(3_000, 6), 1)),
            Err(OpenError::StaleSession)
        );
        assert!(open(&mut full, &packet(cipher, live, 2)).is_ok());
    }
}

#[test]
fn a_start_time_ahead_of_the_clock_cannot_raise_the_floor_past_it() {
    for cipher in Cipher::ALL {
        // 2026-12-06.
        let now = 1_796_515_200_000;
        let mut opener = Opener::new(&test_key(), 2);
        // A clock at 1970 is not believed (the cap would protect nothing) ...
        opener.set_wall_clock_ms(1_000);
        assert_eq!(opener.wall_ms, None);
        opener.set_wall_clock_ms(now);
        // A sender whose clock runs years ahead, then two others: it is forgotten first.
        let ahead = session(now + 10_000_000_000, 1);
        assert!(open(&mut opener, &packet(cipher, ahead, 0)).is_ok());
        assert!(open(&mut opener, &packet(cipher, session(now - 5_000, 2), 0)).is_ok());
        assert!(open(&mut opener, &packet(cipher, session(now - 4_000, 3), 0)).is_ok());
        assert_eq!(
            opener.floor,
            Some(now),
            "raised to the clock, not to the start time"
        );
        // A peer that restarts after now is still let in ...
        assert!(open(&mut opener, &packet(cipher, session(now + 60_000, 4), 0)).is_ok());
        // ... and an unknown session that started before the clock is still refused.
        assert_eq!(
            open(&mut opener, &packet(cipher, session(now - 60_000, 5), 0)),
            Err(OpenError::StaleSession)
        );
    }
}

#[test]
fn eviction_takes_a_whole_process_and_spares_the_twins_of_a_live_one() {
    // A keyed process seals in up to three sessions that share its start time.
    let twin = |start: u64, n: u64| session(start, 0x0101_0101_0101_0101 * n);
    let (old_base, old_aegis) = (twin(100, 1), twin(100, 2));
    let (dead_base, dead_aegis) = (twin(200, 1), twin(200, 2));
    let mut opener = Opener::new(&test_key(), 4);
    for s in [old_base, old_aegis, dead_base, dead_aegis] {
        assert!(open(&mut opener, &packet(Cipher::ChaCha20Poly1305, s, 0)).is_ok());
    }
    // The long-running process 100 goes on with its AEGIS session only; its base session
    // idles. Process 200 is gone (restarted), its sessions idle since.
    assert!(open(&mut opener, &packet(Cipher::ChaCha20Poly1305, old_aegis, 1)).is_ok());
    // A new process: the least recently used *process* goes whole (200), not the idle
    // base session of the live one (100), whose own last use is older.
    assert!(open(
        &mut opener,
        &packet(Cipher::ChaCha20Poly1305, twin(300, 1), 0)
    )
    .is_ok());
    assert_eq!(opener.sessions(), 3);
    assert_eq!(opener.floor, Some(200));
    assert!(
        open(&mut opener, &packet(Cipher::ChaCha20Poly1305, old_base, 1)).is_ok(),
        "the live process's idle session is still remembered"
    );
    // A twin of the live process that was never seen before (it starts sealing with a third
    // cipher) passes the floor; the dead process's sessions and other old ones do not.
    assert!(open(
        &mut opener,
        &packet(Cipher::ChaCha20Poly1305, twin(100, 3), 0)
    )
    .is_ok());
    for s in [dead_base, dead_aegis, twin(200, 3), twin(150, 1)] {
        assert_eq!(
            open(&mut opener, &packet(Cipher::ChaCha20Poly1305, s, 5)),
            Err(OpenError::StaleSession)
        );
    }

    // A process never evicts itself for its own twin: with the map full and the arriving
    // twin's process least recently used, another process goes.
    let mut opener = Opener::new(&test_key(), 2);
    let (p_base, p_x4, q) = (twin(500, 1), twin(500, 3), twin(600, 1));
    assert!(open(&mut opener, &packet(Cipher::ChaCha20Poly1305, p_base, 0)).is_ok());
    assert!(open(&mut opener, &packet(Cipher::ChaCha20Poly1305, q, 0)).is_ok());
    assert!(open(&mut opener, &packet(Cipher::ChaCha20Poly1305, p_x4, 0)).is_ok());
    assert_eq!(opener.floor, Some(600), "q went, not p");
    assert_eq!(
        open(&mut opener, &packet(Cipher::ChaCha20Poly1305, p_base, 0)),
        Err(OpenError::Replayed),
        "p's first session keeps its window: no replay"
    );
    // The map full of one process: a third twin is refused, not let in unremembered.
    assert_eq!(
        open(
            &mut opener,
            &packet(Cipher::ChaCha20Poly1305, twin(500, 2), 0)
        ),
        Err(OpenError::StaleSession)
    );
    assert_eq!(opener.sessions(), 2);
}

#[test]
fn own_session_reflected_back_is_refused() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&test_key(), 16);
        opener.refuse_session(SESSION);
        assert_eq!(
            open(&mut opener, &sealed_frame(cipher)),
            Err(OpenError::Replayed)
        );
        assert!(open(&mut opener, &packet(cipher, session(1, 1), 0)).is_ok());
    }
}

#[test]
fn the_last_six_own_sessions_are_refused() {
    // Keyed mode: three ciphers' sessions now and three before a key rotation.
    let mut opener = Opener::new(&test_key(), 16);
    let own: Vec<[u8; SESSION_LEN]> = (1..=7).map(|i| session(1, i)).collect();
    for s in &own[..6] {
        opener.refuse_session(*s);
    }
    for s in &own[..6] {
        let sealed = packet(Cipher::Aegis128L, *s, 0);
        assert_eq!(open(&mut opener, &sealed), Err(OpenError::Replayed));
    }
    opener.refuse_session(own[6]);
    let first = packet(Cipher::Aegis128L, own[0], 0);
    assert!(
        open(&mut opener, &first).is_ok(),
        "the oldest one is let go"
    );
}

#[test]
fn error_messages_are_one_lower_case_line() {
    let open_errors = [
        OpenError::Truncated,
        OpenError::NotSealed,
        OpenError::Forged,
        OpenError::Replayed,
        OpenError::StaleSession,
    ];
    let seal_errors = [
        SealError::NoRoom,
        SealError::CounterExhausted,
        SealError::Retired,
    ];
    let texts = open_errors
        .iter()
        .map(ToString::to_string)
        .chain(seal_errors.iter().map(ToString::to_string));
    for text in texts {
        assert!(!text.is_empty() && !text.contains('\n'), "{text}");
        assert_eq!(text, text.to_lowercase());
    }
}

#[test]
fn sessions_seal_with_aegis_only_to_a_peer_that_opens_it_and_with_aes_instructions() {
    let (with, without) = if has_aes_instructions() {
        (Cipher::Aegis128L, Cipher::Aes128Gcm)
    } else {
        (Cipher::ChaCha20Poly1305, Cipher::ChaCha20Poly1305)
    };
    assert_eq!(Cipher::preferred_for_sessions(true), with);
    assert_eq!(Cipher::preferred_for_sessions(false), without);
    assert_eq!(Cipher::Aegis128L.to_string(), "AEGIS-128L");
    assert_eq!(Cipher::Aegis128L.key_len(), 16);
    assert_eq!(Cipher::Aegis128X4.to_string(), "AEGIS-128X4");
    assert_eq!(Cipher::Aegis128X4.key_len(), 16);
}

#[test]
fn a_session_may_switch_to_aegis_once_where_the_opener_allows_it() {
    // Three packets under AES-128-GCM (counters 0..3), then the switch: counters go on, past
    // a gap for seals of the old cipher still under way on other threads.
    let mut gcm = Sealer::with_cipher(&test_key(), SESSION, Cipher::Aes128Gcm);
    let under_gcm: Vec<Vec<u8>> = (0..3).map(|_| seal(&mut gcm, &clear_frame())).collect();
    let mut aegis = Sealer::switched(&gcm, &test_key(), Cipher::Aegis128L);
    let first = 3 + seal::SWITCH_GAP;
    // (The skipped counters are not counted as sealed.)
    assert_eq!((aegis.cipher(), aegis.sealed()), (Cipher::Aegis128L, 3));
    let under_aegis: Vec<Vec<u8>> = (0..3).map(|_| seal(&mut aegis, &clear_frame())).collect();
    assert_eq!(under_aegis[0][TOKEN_LEN], 0x83);
    assert_eq!(
        &under_aegis[0][FRONT_LEN - 8..FRONT_LEN],
        &first.to_be_bytes()
    );

    // Not allowed (keyed mode): a known session under another marker is forged.
    let mut strict = Opener::new(&test_key(), 4);
    assert_eq!(open(&mut strict, &under_gcm[0]), Ok(clear_frame()));
    assert_eq!(open(&mut strict, &under_aegis[0]), Err(OpenError::Forged));

    // Allowed (sessions of per-node keys): a forgery under 0x83 changes nothing, the real
    // switch binds the session to AEGIS-128L, and AES-128-GCM is refused after it.
    let mut opener = Opener::new(&test_key(), 1);
    opener.allow_switch_to_aegis();
    assert_eq!(open(&mut opener, &under_gcm[0]), Ok(clear_frame()));
    let mut forged = under_aegis[0].clone();
    *forged.last_mut().unwrap() ^= 1;
    assert_eq!(open(&mut opener, &forged), Err(OpenError::Forged));
    assert_eq!(
        open(&mut opener, &under_gcm[1]),
        Ok(clear_frame()),
        "still on AES-128-GCM"
    );
    assert_eq!(open(&mut opener, &under_aegis[0]), Ok(clear_frame()));
    assert_eq!(open(&mut opener, &under_aegis[0]), Err(OpenError::Replayed));
    assert_eq!(open(&mut opener, &under_aegis[2]), Ok(clear_frame()));
    assert_eq!(
        open(&mut opener, &under_gcm[2]),
        Err(OpenError::Forged),
        "no way back"
    );
    assert_eq!(
        open(&mut opener, &under_aegis[1]),
        Ok(clear_frame()),
        "reordered, in the window"
    );
    // Only to an AEGIS cipher: a switch to another cipher is refused.
    let mut chacha = Sealer::switched(&gcm, &test_key(), Cipher::ChaCha20Poly1305);
    let mut opener = Opener::new(&test_key(), 1);
    opener.allow_switch_to_aegis();
    assert_eq!(open(&mut opener, &under_gcm[0]), Ok(clear_frame()));
    assert_eq!(
        open(&mut opener, &seal(&mut chacha, &clear_frame())),
        Err(OpenError::Forged)
    );
    assert_eq!(opener.sessions(), 1);
}

#[test]
fn a_session_may_switch_to_aegis_128x4_once_and_never_between_aegis_ciphers() {
    let mut gcm = Sealer::with_cipher(&test_key(), SESSION, Cipher::Aes128Gcm);
    let first = seal(&mut gcm, &clear_frame());
    let mut x4 = Sealer::switched(&gcm, &test_key(), Cipher::Aegis128X4);
    let mut l = Sealer::switched(&gcm, &test_key(), Cipher::Aegis128L);
    let under_x4: Vec<Vec<u8>> = (0..2).map(|_| seal(&mut x4, &clear_frame())).collect();
    let under_l = seal(&mut l, &clear_frame());
    assert_eq!(under_x4[0][TOKEN_LEN], 0x84);

    // Not allowed (keyed mode): refused like any other marker.
    let mut strict = Opener::new(&test_key(), 4);
    assert_eq!(open(&mut strict, &first), Ok(clear_frame()));
    assert_eq!(open(&mut strict, &under_x4[0]), Err(OpenError::Forged));

    // Allowed: the switch to AEGIS-128X4 binds the session to it; neither AES-128-GCM nor
    // AEGIS-128L opens after it (no switch from one AEGIS cipher to the other).
    let mut opener = Opener::new(&test_key(), 1);
    opener.allow_switch_to_aegis();
    assert_eq!(open(&mut opener, &first), Ok(clear_frame()));
    assert_eq!(open(&mut opener, &under_x4[0]), Ok(clear_frame()));
    assert_eq!(open(&mut opener, &under_l), Err(OpenError::Forged));
    assert_eq!(open(&mut opener, &under_x4[1]), Ok(clear_frame()));

    // And a session that switched to AEGIS-128L does not move on to AEGIS-128X4.
    let mut opener = Opener::new(&test_key(), 1);
    opener.allow_switch_to_aegis();
    assert_eq!(open(&mut opener, &first), Ok(clear_frame()));
    assert_eq!(open(&mut opener, &under_l), Ok(clear_frame()));
    assert_eq!(open(&mut opener, &under_x4[1]), Err(OpenError::Forged));
}

#[test]
fn a_replaced_sealer_seals_with_its_successor_and_a_retired_one_seals_nothing() {
    // A lane holds `old` (its view is from before the switch) while the node switches the
    // session to AEGIS-128L: what the lane seals from then on is under the new cipher, with
    // the new sealer's counters, and opens where the old cipher would now be refused.
    let old = Arc::new(Sealer::with_cipher(&test_key(), SESSION, Cipher::Aes128Gcm));
    let lane = Arc::clone(&old);
    let mut opener = Opener::new(&test_key(), 1);
    opener.allow_switch_to_aegis();
    assert_eq!(
        open(&mut opener, &seal_with(&lane, &clear_frame())),
        Ok(clear_frame())
    );
    let new = Arc::new(Sealer::switched(&old, &test_key(), Cipher::Aegis128L));
    old.forward_to(Arc::clone(&new));
    assert_eq!(
        open(&mut opener, &seal_with(&new, &clear_frame())),
        Ok(clear_frame())
    );
    let from_lane = seal_with(&lane, &clear_frame());
    assert_eq!(from_lane[TOKEN_LEN], 0x83, "sealed by the successor");
    assert_eq!(open(&mut opener, &from_lane), Ok(clear_frame()));
    assert_eq!(
        (lane.cipher(), lane.sealed(), new.sealed()),
        (Cipher::Aegis128L, 2 + 1, 2 + 1),
        "one count for both, the skipped counters left out"
    );
    assert!(!lane.is_retired());

    // A lane that keeps sealing with the old cipher while the thread that switches is held
    // up between the switch and the hand-over (preempted for a few ms, say): its counters
    // stay below the new sealer's, so the new cipher's packets are not refused as replays
    // once the old cipher's with those counters were opened.
    let held = Arc::new(Sealer::with_cipher(&test_key(), SESSION, Cipher::Aes128Gcm));
    let mut fresh = Opener::new(&test_key(), 1);
    fresh.allow_switch_to_aegis();
    let next = Arc::new(Sealer::switched(&held, &test_key(), Cipher::Aegis128L));
    for _ in 0..5_000 {
        assert_eq!(
            open(&mut fresh, &seal_with(&held, &clear_frame())),
            Ok(clear_frame())
        );
    }
    held.forward_to(Arc::clone(&next));
    assert_eq!(
        open(&mut fresh, &seal_with(&next, &clear_frame())),
        Ok(clear_frame()),
        "the new cipher's first packet"
    );
    // Forwarded once only: a later call changes nothing.
    old.forward_to(Arc::new(Sealer::with_cipher(
        &test_key(),
        session(1, 2),
        Cipher::Aes128Gcm,
    )));
    assert_eq!(seal_with(&lane, &clear_frame())[TOKEN_LEN], 0x83);

    // The session then ends (its key revoked): every holder, through the chain, seals nothing
    // and writes nothing.
    new.retire();
    assert!(lane.is_retired() && new.is_retired());
    let mut buf = vec![0u8; 200];
    let before = buf.clone();
    assert_eq!(
        lane.seal(token(), &mut buf, FRONT_LEN, 20),
        Err(SealError::Retired)
    );
    assert_eq!(
        new.seal(token(), &mut buf, FRONT_LEN, 20),
        Err(SealError::Retired)
    );
    assert_eq!(buf, before);
}

#[test]
fn the_four_forms_of_a_sessions_random_bytes_name_one_sender_process() {
    let mut session = [0u8; 16];
    session[..8].copy_from_slice(&1_765_000_000_000u64.to_be_bytes());
    session[8..].copy_from_slice(&[0x9c, 1, 2, 3, 0xfe, 5, 6, 7]);
    let id = super::sender_process(&session);
    for mask in [0xff, 0x55, 0xaa] {
        let mut twin = session;
        for b in &mut twin[8..] {
            *b ^= mask;
        }
        assert_eq!(super::sender_process(&twin), id, "mask {mask:#x}");
    }
    let mut other = session;
    other[15] ^= 1;
    assert_ne!(super::sender_process(&other), id);
    other = session;
    other[7] ^= 1;
    assert_ne!(super::sender_process(&other), id, "another start time");
}

#[test]
fn a_32_byte_key_file_of_text_is_a_raw_key_and_is_said_to_look_like_a_passphrase() {
    let token = Token::new(7).unwrap();
    let echoed = b"correct horse battery staple 31\n";
    let printed = b"correct horse battery staple 32!";
    let windows = b"correct horse battery stapl 30\r\n";
    let tabbed = "caf\u{e9}\tcorrect horse battery 32..".as_bytes();
    assert_eq!(
        (echoed.len(), printed.len(), windows.len(), tabbed.len()),
        (32, 32, 32, 32)
    );
    for text in [&echoed[..], &printed[..], &windows[..], tabbed] {
        assert!(Key::is_text_taken_raw(text));
        // Taken as the raw bytes, as always (every node must read a file alike).
        let hex: String = text.iter().map(|b| format!("{b:02x}")).collect();
        let key = Key::from_file_contents(text, token).unwrap();
        assert!(key == Key::from_file_contents(hex.as_bytes(), token).unwrap());
    }
    let mut raw = [0u8; 32];
    for (i, b) in raw.iter_mut().enumerate() {
        *b = u8::try_from(i * 37 % 256).unwrap();
    }
    assert!(!Key::is_text_taken_raw(&raw));
    assert!(!Key::is_text_taken_raw(b"31 characters and no newline..."));
    assert!(!Key::is_text_taken_raw(
        b"a control byte \x01 in 32 bytes.."
    ));
    assert!(!Key::is_text_taken_raw(
        b"a passphrase of 33 characters ok!"
    ));
}

/// A sealer that starts at a counter (a keyed node's start at [`ECHO_COUNTER`]) counts what
/// it seals from there: `sealed` is 0 before the first seal, not 2^63.
#[test]
fn a_sealer_started_at_a_counter_counts_only_what_it_sealed() {
    let sealer = Sealer::new(&test_key(), session(1, 1)).starting_at(ECHO_COUNTER);
    assert_eq!(sealer.sealed(), 0);
    let token = Token::new(1).unwrap();
    let mut buf = vec![0u8; 200];
    sealer.seal(token, &mut buf, 64, 20).unwrap();
    assert_eq!(sealer.sealed(), 1);
}
