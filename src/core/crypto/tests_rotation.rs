//! Unit tests of key rotation in the [`Opener`]: two keys at once, the newest tried first,
//! remembered sessions tagged with their key's generation, and retiring the older key.

use super::tests::{clear_frame, clear_get_peers, open, seal, session};
use super::*;

fn key(byte: u8) -> Key {
    Key::from_bytes([byte; KEY_LEN])
}

fn sealer(key_byte: u8, random: u64, cipher: Cipher) -> Sealer {
    Sealer::with_cipher(&key(key_byte), session(1_000 + random, random), cipher)
}

#[test]
fn opener_with_two_keys_opens_new_sessions_under_either_and_keeps_old_ones() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&key(1), 16);
        let mut remembered = sealer(1, 1, cipher);
        assert!(open(&mut opener, &seal(&mut remembered, &clear_get_peers())).is_ok());
        assert!(!opener.has_old_key());

        opener.add_key(&key(2));
        assert!(opener.has_old_key());
        // A session remembered before keeps opening.
        assert!(open(&mut opener, &seal(&mut remembered, &clear_get_peers())).is_ok());
        // A new session under the new key, and one under the old key (the second try): both
        // decrypt to the right bytes.
        let mut new_key = sealer(2, 2, cipher);
        let mut old_key = sealer(1, 3, cipher);
        for s in [&mut new_key, &mut old_key] {
            assert_eq!(
                open(&mut opener, &seal(s, &clear_frame())),
                Ok(clear_frame())
            );
            assert_eq!(
                open(&mut opener, &seal(s, &clear_frame())),
                Ok(clear_frame())
            );
        }
        assert_eq!(opener.sessions(), 3);
        // A third key opens nothing, and the failed tries leave no session behind.
        let mut other = sealer(3, 4, cipher);
        assert_eq!(
            open(&mut opener, &seal(&mut other, &clear_frame())),
            Err(OpenError::Forged)
        );
        assert_eq!(opener.sessions(), 3);
        // A replay of the first packet of the session under the old key is still caught.
        let mut again = sealer(1, 3, cipher);
        assert_eq!(
            open(&mut opener, &seal(&mut again, &clear_frame())),
            Err(OpenError::Replayed)
        );
    }
}

#[test]
fn retiring_the_old_key_forgets_its_sessions_and_refuses_new_ones() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&key(1), 16);
        let mut before = sealer(1, 1, cipher);
        assert!(open(&mut opener, &seal(&mut before, &clear_get_peers())).is_ok());
        opener.add_key(&key(2));
        let mut old_key = sealer(1, 2, cipher);
        let mut new_key = sealer(2, 3, cipher);
        assert!(open(&mut opener, &seal(&mut old_key, &clear_get_peers())).is_ok());
        assert!(open(&mut opener, &seal(&mut new_key, &clear_get_peers())).is_ok());
        assert_eq!(opener.sessions(), 3);

        assert_eq!(opener.retire_old_key(), 2, "both sessions of the old key");
        assert!(!opener.has_old_key());
        assert_eq!(opener.sessions(), 1);
        for s in [&mut before, &mut old_key] {
            assert_eq!(
                open(&mut opener, &seal(s, &clear_get_peers())),
                Err(OpenError::Forged)
            );
        }
        let mut late = sealer(1, 4, cipher);
        assert_eq!(
            open(&mut opener, &seal(&mut late, &clear_get_peers())),
            Err(OpenError::Forged),
            "a new session under the retired key"
        );
        assert!(open(&mut opener, &seal(&mut new_key, &clear_get_peers())).is_ok());
        let mut fresh = sealer(2, 5, cipher);
        assert!(open(&mut opener, &seal(&mut fresh, &clear_get_peers())).is_ok());
        assert_eq!(opener.retire_old_key(), 0, "nothing left to retire");
        assert_eq!(opener.sessions(), 2);
    }
}

#[test]
fn a_third_key_retires_the_first_at_most_two_keys_are_held() {
    let cipher = Cipher::preferred();
    let mut opener = Opener::new(&key(1), 16);
    let mut first = sealer(1, 1, cipher);
    assert!(open(&mut opener, &seal(&mut first, &clear_get_peers())).is_ok());
    opener.add_key(&key(2));
    opener.add_key(&key(3));
    assert_eq!(opener.sessions(), 0, "the first key's session is forgotten");
    let mut s1 = sealer(1, 2, cipher);
    let mut s2 = sealer(2, 3, cipher);
    let mut s3 = sealer(3, 4, cipher);
    assert_eq!(
        open(&mut opener, &seal(&mut s1, &clear_get_peers())),
        Err(OpenError::Forged)
    );
    assert!(open(&mut opener, &seal(&mut s2, &clear_get_peers())).is_ok());
    assert!(open(&mut opener, &seal(&mut s3, &clear_get_peers())).is_ok());
}

#[test]
fn own_sessions_before_and_after_a_rotation_are_both_refused() {
    let cipher = Cipher::preferred();
    let (first, second) = (session(1_000, 1), session(2_000, 2));
    let mut opener = Opener::new(&key(1), 16);
    opener.refuse_session(first);
    opener.add_key(&key(2));
    opener.refuse_session(second);
    opener.refuse_session(second); // twice changes nothing
    let mut old = Sealer::with_cipher(&key(1), first, cipher);
    let mut new = Sealer::with_cipher(&key(2), second, cipher);
    for s in [&mut old, &mut new] {
        assert_eq!(
            open(&mut opener, &seal(s, &clear_get_peers())),
            Err(OpenError::Replayed)
        );
    }
}

#[test]
fn during_a_rotation_the_old_key_sessions_make_room_first() {
    // A table of two: P and Q under the old key; Q switches first and then stays quiet while
    // P keeps sealing under the old key until it switches too. The room for P's new session
    // must come from P's old one (going away within the minute anyway), not from Q's new one:
    // that would raise the bar past Q's new session, refused from then on for good.
    let cipher = Cipher::Aes128Gcm;
    let mut opener = Opener::new(&key(1), 2);
    let mut p_old = Sealer::with_cipher(&key(1), session(1_001, 1), cipher);
    let mut q_old = Sealer::with_cipher(&key(1), session(1_002, 2), cipher);
    assert!(open(&mut opener, &seal(&mut p_old, &clear_frame())).is_ok());
    assert!(open(&mut opener, &seal(&mut q_old, &clear_frame())).is_ok());
    assert!(open(&mut opener, &seal(&mut p_old, &clear_frame())).is_ok());
    opener.add_key(&key(2));
    let mut q_new = Sealer::with_cipher(&key(2), session(2_002, 3), cipher);
    assert!(open(&mut opener, &seal(&mut q_new, &clear_frame())).is_ok());
    for _ in 0..3 {
        assert!(open(&mut opener, &seal(&mut p_old, &clear_frame())).is_ok());
    }
    let mut p_new = Sealer::with_cipher(&key(2), session(2_001, 4), cipher);
    assert!(open(&mut opener, &seal(&mut p_new, &clear_frame())).is_ok());
    assert_eq!(
        open(&mut opener, &seal(&mut q_new, &clear_frame())),
        Ok(clear_frame()),
        "Q's new session"
    );
}

/// During a key rotation the old key's processes go first, pinned or not: a peer's pin is on
/// the process it was verified in, which is the old key's until its new process answers a
/// Challenge. Honouring it would evict a live new-key process instead and raise the floor
/// past the rotation, refusing that peer, and every member whose new session started
/// earlier, until they restarted.
#[test]
fn pins_of_the_old_key_do_not_hold_during_a_rotation() {
    for cipher in Cipher::ALL {
        let mut opener = Opener::new(&key(1), 4);
        let s = |k: u8, start: u64| Sealer::with_cipher(&key(k), session(start, start), cipher);
        let (mut p1, mut p2) = (s(1, 1_000), s(1, 1_100));
        assert!(open(&mut opener, &seal(&mut p1, &clear_frame())).is_ok());
        assert!(open(&mut opener, &seal(&mut p2, &clear_frame())).is_ok());
        opener.pin_process(1_000);
        opener.pin_process(1_100);
        opener.add_key(&key(2));
        let (mut q1, mut q2, mut r) = (s(2, 2_000), s(2, 2_100), s(2, 2_050));
        assert!(open(&mut opener, &seal(&mut q1, &clear_frame())).is_ok());
        assert!(open(&mut opener, &seal(&mut q2, &clear_frame())).is_ok());
        assert!(open(&mut opener, &seal(&mut r, &clear_frame())).is_ok());
        assert!(
            opener.floor.is_some_and(|f| f <= 1_100),
            "{:?}",
            opener.floor
        );
        assert!(open(&mut opener, &seal(&mut q1, &clear_frame())).is_ok());
        // A pin of the newest key holds: Q1 pinned, a fifth process pushes out the others.
        opener.pin_process(2_000);
        let mut t = s(2, 2_200);
        assert!(open(&mut opener, &seal(&mut t, &clear_frame())).is_ok());
        assert!(open(&mut opener, &seal(&mut q1, &clear_frame())).is_ok());
    }
}
