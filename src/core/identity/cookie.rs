//! The cookie reply (type 0x92) and mac2: how a responder that is over its handshake rate
//! limit makes an initiator show that it receives at its source address before it spends a
//! Diffie-Hellman on it (WireGuard's cookie mechanism, in ethcloud's own layout).
//!
//! Owns the two layouts, the responder's rotating cookie secret ([`CookieSecret`]) and the
//! initiator's side (opening a reply, adding mac2). It decides nothing: the session table
//! chooses when to send a reply, which initiations count as proven and which buckets they
//! draw on. It reads no clock (`now` comes from the caller) and no random source: the secrets
//! and the reply nonces' random prefix are drawn from a seeded generator the session table
//! gives it ([`Random`]), as the handshakes' ephemeral keys are.
//!
//! ```text
//! cookie reply: | token 7 | 0x92 | receiver 4 | nonce 12 | enc cookie 16 | tag 16 |   56
//! initiation with mac2: | initiation 136 (mac1 included) | mac2 16 |              152
//! ```
//!
//! - The cookie for a source address is the first 16 bytes of HMAC-SHA256 keyed with the
//!   responder's secret over the address: the IP as 16 bytes (IPv4 mapped into IPv6), then the
//!   port, big-endian. The secret is 32 random bytes, a new one for each period of
//!   [`SECRET_LIFETIME`]; the one of the period before is still accepted, so a cookie stays
//!   good for at least one period and at most two.
//! - The reply's receiver index is the initiation's sender index. The cookie is sealed with
//!   ChaCha20-Poly1305 under SHA-256(`"ethcloud-cookie-v1"` ‖ the responder's static public
//!   key), with the reply's nonce and, as associated data, the mac1 of the initiation it
//!   answers: the initiator takes a reply only for an initiation of its own, so one made for
//!   another initiation, or by someone who never saw that initiation (an off-path forger),
//!   does not open. (The key follows from the public key: someone who sees both the
//!   initiation and the reply can read the cookie, but that one already receives at the
//!   address.)
//! - mac2 is the first 16 bytes of HMAC-SHA256 keyed with the cookie over the 136 bytes of the
//!   initiation before it. An initiator adds it for [`COOKIE_LIFETIME`] after a reply from
//!   that address, and never otherwise, so a node that has never sent a reply (an earlier
//!   version) is never sent the longer initiation.

use core::time::Duration;
use std::net::{IpAddr, SocketAddr};

use ring::{aead, digest, hmac};

use super::handshake::{HandshakeError, INITIATION_LEN, MAC1_LEN};
use super::keys::PublicKey;
use super::random::Random;
use crate::time::Instant;
use crate::wire::{Token, TOKEN_LEN};

/// Type byte (after the token) of a cookie reply.
pub const COOKIE_REPLY: u8 = 0x92;
/// Bytes of a cookie reply, exactly.
pub const COOKIE_REPLY_LEN: usize = 56;
/// Bytes of a cookie.
pub const COOKIE_LEN: usize = 16;
/// Bytes of mac2.
pub const MAC2_LEN: usize = 16;
/// Bytes of an initiation that carries mac2.
pub const INITIATION_WITH_MAC2_LEN: usize = INITIATION_LEN + MAC2_LEN;
/// The start of the reply key's hash input; the responder's public key follows it.
pub const COOKIE_LABEL: &[u8; 18] = b"ethcloud-cookie-v1";
/// A responder replaces its cookie secret this often, and accepts the one before too.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// An initiator adds mac2 with a cookie for this long after the reply that brought it
/// (shorter than [`SECRET_LIFETIME`], so it never uses a cookie the responder forgot).
pub const COOKIE_LIFETIME: Duration = Duration::from_secs(110);

/// A cookie: proof that its holder receives at one source address.
pub type Cookie = [u8; COOKIE_LEN];

/// Offsets inside a cookie reply.
mod field {
    use crate::wire::TOKEN_LEN;
    pub const TYPE: usize = TOKEN_LEN;
    pub const RECEIVER: usize = TYPE + 1;
    pub const NONCE: usize = RECEIVER + 4;
    pub const SEALED: usize = NONCE + 12;
}

const _: () = assert!(field::SEALED + COOKIE_LEN + 16 == COOKIE_REPLY_LEN);
const _: () = assert!(COOKIE_LIFETIME.as_secs() < SECRET_LIFETIME.as_secs());

/// The key cookie replies from `responder` are sealed with.
fn reply_key(responder: &PublicKey) -> Result<aead::LessSafeKey, HandshakeError> {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(COOKIE_LABEL);
    ctx.update(&responder.0);
    let key = aead::UnboundKey::new(&aead::CHACHA20_POLY1305, ctx.finish().as_ref())
        .map_err(|_| HandshakeError::Noise)?;
    Ok(aead::LessSafeKey::new(key))
}

/// The mac1 an initiation carries (its associated data in the reply).
fn mac1_of(initiation: &[u8]) -> Option<&[u8]> {
    initiation.get(INITIATION_LEN - MAC1_LEN..INITIATION_LEN)
}

/// mac2 of the 136-byte initiation `body` under `cookie`.
pub fn mac2(cookie: &Cookie, body: &[u8]) -> [u8; MAC2_LEN] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, cookie), body);
    let mut out = [0u8; MAC2_LEN];
    out.copy_from_slice(&tag.as_ref()[..MAC2_LEN]);
    out
}

/// The receiver index of a cookie reply of the right length and type, else `None`.
pub fn reply_receiver(reply: &[u8]) -> Option<u32> {
    if reply.len() != COOKIE_REPLY_LEN || reply.get(field::TYPE) != Some(&COOKIE_REPLY) {
        return None;
    }
    reply
        .get(field::RECEIVER..field::NONCE)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
}

/// The initiator's step: the cookie in `reply`, an answer from `responder` to `initiation`
/// (the 136 bytes we sent, whose mac1 is the reply's associated data).
///
/// # Errors
///
/// [`HandshakeError::Length`] or [`HandshakeError::Type`] for a message that is no cookie
/// reply, [`HandshakeError::Token`] for another network's, [`HandshakeError::Index`] when it
/// answers another initiation's index, [`HandshakeError::Mac`] when it does not open (forged,
/// altered, or an answer to another initiation).
pub fn open_reply(
    token: Token,
    responder: &PublicKey,
    initiation: &[u8],
    reply: &[u8],
) -> Result<Cookie, HandshakeError> {
    if reply.len() != COOKIE_REPLY_LEN {
        return Err(HandshakeError::Length);
    }
    let receiver = reply_receiver(reply).ok_or(HandshakeError::Type)?;
    if reply.get(..TOKEN_LEN) != Some(&token.to_bytes()[..]) {
        return Err(HandshakeError::Token);
    }
    let sender = initiation
        .get(TOKEN_LEN + 1..TOKEN_LEN + 5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    if sender != Some(receiver) {
        return Err(HandshakeError::Index);
    }
    let aad = mac1_of(initiation).ok_or(HandshakeError::Length)?;
    let nonce = reply
        .get(field::NONCE..field::SEALED)
        .and_then(|n| aead::Nonce::try_assume_unique_for_key(n).ok())
        .ok_or(HandshakeError::Length)?;
    let mut sealed = [0u8; COOKIE_LEN + 16];
    sealed.copy_from_slice(reply.get(field::SEALED..).ok_or(HandshakeError::Length)?);
    let opened = reply_key(responder)?
        .open_in_place(nonce, aead::Aad::from(aad), &mut sealed)
        .map_err(|_| HandshakeError::Mac)?;
    let mut cookie = [0u8; COOKIE_LEN];
    if opened.len() != COOKIE_LEN {
        return Err(HandshakeError::Mac);
    }
    cookie.copy_from_slice(opened);
    Ok(cookie)
}

/// The responder's side: the cookie secret (a new one every [`SECRET_LIFETIME`], the one before
/// still accepted), the key its replies are sealed with, and their nonces (a random 8-byte
/// prefix drawn with each secret, then a 4-byte count). Secrets and prefixes come from a
/// [`Random`] of its own.
pub struct CookieSecret {
    random: Random,
    secret: hmac::Key,
    previous: Option<hmac::Key>,
    /// The period of `secret`: the time in [`SECRET_LIFETIME`]s.
    period: u64,
    reply_key: Option<aead::LessSafeKey>,
    nonce_prefix: [u8; 8],
    count: u32,
}

impl core::fmt::Debug for CookieSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieSecret")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl CookieSecret {
    /// A fresh secret for the responder whose static public key is `own`, its secrets drawn
    /// from `random`.
    pub fn new(own: &PublicKey, now: Instant, mut random: Random) -> CookieSecret {
        let secret = hmac::Key::new(hmac::HMAC_SHA256, &random.draw());
        let mut nonce_prefix = [0u8; 8];
        random.fill(&mut nonce_prefix);
        CookieSecret {
            random,
            secret,
            previous: None,
            period: period_of(now),
            reply_key: reply_key(own).ok(),
            nonce_prefix,
            count: 0,
        }
    }

    /// Time runs in periods of [`SECRET_LIFETIME`]; each has its own secret, and the one of
    /// the period before is still accepted. So a cookie is good for at least one period and
    /// at most two.
    fn rotate(&mut self, now: Instant) {
        let period = period_of(now);
        if period == self.period {
            return;
        }
        let fresh = hmac::Key::new(hmac::HMAC_SHA256, &self.random.draw());
        let old = core::mem::replace(&mut self.secret, fresh);
        self.previous = (period == self.period + 1).then_some(old);
        self.period = period;
        self.random.fill(&mut self.nonce_prefix);
        self.count = 0;
    }

    /// Mixes `fresh` bytes into the generator the secrets come from (see [`Random::reseed`]).
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.random.reseed(fresh);
    }

    /// Whether `msg`, an initiation of [`INITIATION_WITH_MAC2_LEN`] bytes from `from`, carries
    /// the mac2 of a cookie for `from` under the current secret or the one before. (Its mac1
    /// is the caller's to check.)
    pub fn proves(&mut self, now: Instant, from: SocketAddr, msg: &[u8]) -> bool {
        self.rotate(now);
        let (Some(body), Some(tag)) = (
            msg.get(..INITIATION_LEN),
            msg.get(INITIATION_LEN..INITIATION_WITH_MAC2_LEN),
        ) else {
            return false;
        };
        if msg.len() != INITIATION_WITH_MAC2_LEN {
            return false;
        }
        let addr = address_bytes(from);
        [Some(&self.secret), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .any(|secret| {
                let expected = mac2(&cookie(secret, &addr), body);
                let diff = expected.iter().zip(tag).fold(0u8, |d, (a, b)| d | (a ^ b));
                std::hint::black_box(diff) == 0
            })
    }

    /// Writes into `out` the cookie reply to `initiation` (at least its first 136 bytes), which
    /// came from `from`, and returns its length.
    ///
    /// # Errors
    ///
    /// [`HandshakeError::NoRoom`] when `out` is shorter than [`COOKIE_REPLY_LEN`],
    /// [`HandshakeError::Length`] when `initiation` is short, [`HandshakeError::Noise`] if the
    /// sealing fails.
    pub fn write_reply(
        &mut self,
        now: Instant,
        from: SocketAddr,
        initiation: &[u8],
        out: &mut [u8],
    ) -> Result<usize, HandshakeError> {
        self.rotate(now);
        let out = out
            .get_mut(..COOKIE_REPLY_LEN)
            .ok_or(HandshakeError::NoRoom)?;
        let head = initiation
            .get(..TOKEN_LEN + 5)
            .ok_or(HandshakeError::Length)?;
        let aad = mac1_of(initiation).ok_or(HandshakeError::Length)?;
        let key = self.reply_key.as_ref().ok_or(HandshakeError::Noise)?;
        self.count = self.count.wrapping_add(1);
        if self.count == 0 {
            // 2^32 replies under one prefix: draw another rather than repeat a nonce.
            self.random.fill(&mut self.nonce_prefix);
        }
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&self.nonce_prefix);
        nonce[8..].copy_from_slice(&self.count.to_be_bytes());
        let mut sealed = [0u8; COOKIE_LEN + 16];
        sealed[..COOKIE_LEN].copy_from_slice(&cookie(&self.secret, &address_bytes(from)));
        let tag = key
            .seal_in_place_separate_tag(
                aead::Nonce::assume_unique_for_key(nonce),
                aead::Aad::from(aad),
                &mut sealed[..COOKIE_LEN],
            )
            .map_err(|_| HandshakeError::Noise)?;
        sealed[COOKIE_LEN..].copy_from_slice(tag.as_ref());
        // The token and the initiation's sender index (the reply's receiver) as they came.
        out[..TOKEN_LEN].copy_from_slice(&head[..TOKEN_LEN]);
        out[field::TYPE] = COOKIE_REPLY;
        out[field::RECEIVER..field::NONCE].copy_from_slice(&head[TOKEN_LEN + 1..]);
        out[field::NONCE..field::SEALED].copy_from_slice(&nonce);
        out[field::SEALED..].copy_from_slice(&sealed);
        Ok(COOKIE_REPLY_LEN)
    }
}

/// The period of [`SECRET_LIFETIME`] that `now` falls in.
fn period_of(now: Instant) -> u64 {
    now.as_millis() / (SECRET_LIFETIME.as_secs() * 1000).max(1)
}

/// A source address as the cookie covers it: 16 bytes of IP (IPv4 mapped), 2 of port.
fn address_bytes(addr: SocketAddr) -> [u8; 18] {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let mut out = [0u8; 18];
    out[..16].copy_from_slice(&ip.octets());
    out[16..].copy_from_slice(&addr.port().to_be_bytes());
    out
}

fn cookie(secret: &hmac::Key, addr: &[u8; 18]) -> Cookie {
    let tag = hmac::sign(secret, addr);
    let mut out = [0u8; COOKIE_LEN];
    out.copy_from_slice(&tag.as_ref()[..COOKIE_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::handshake::{initiate, timestamp, Identity};
    use crate::identity::SecretKey;

    const TOKEN: Token = Token::MAX;

    fn responder() -> Identity {
        Identity::new(SecretKey::from_random([9; 32]))
    }

    /// An initiation to `to` with sender index `index`.
    fn initiation(to: &Identity, index: u32) -> [u8; INITIATION_LEN] {
        let me = Identity::new(SecretKey::from_random([4; 32]));
        let mut out = [0u8; INITIATION_LEN];
        initiate(
            &me,
            TOKEN,
            &to.public(),
            index,
            timestamp(7),
            &[7; 32],
            &mut out,
        )
        .unwrap();
        out
    }

    fn with_mac2(body: &[u8; INITIATION_LEN], cookie: &Cookie) -> Vec<u8> {
        let mut v = body.to_vec();
        v.extend_from_slice(&mac2(cookie, body));
        v
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_reply_opens_for_its_initiation_and_its_mac2_proves_that_address_only() {
        let r = responder();
        let mut secret =
            CookieSecret::new(&r.public(), Instant::ZERO, Random::new(&[1; 32], b"cookie"));
        let body = initiation(&r, 0x0102_0304);
        let from = addr("198.18.0.2:3210");
        let mut out = [0u8; 64];
        let len = secret
            .write_reply(Instant::ZERO, from, &body, &mut out)
            .unwrap();
        assert_eq!(len, COOKIE_REPLY_LEN);
        let reply = &out[..len];
        assert_eq!(&reply[..TOKEN_LEN], &TOKEN.to_bytes()[..]);
        assert_eq!(reply[TOKEN_LEN], COOKIE_REPLY);
        assert_eq!(
            &reply[8..12],
            &[1, 2, 3, 4],
            "the receiver is our sender index"
        );
        assert_eq!(reply_receiver(reply), Some(0x0102_0304));
        let got = open_reply(TOKEN, &r.public(), &body, reply).unwrap();
        let now = Instant::from_secs(1);
        assert!(secret.proves(now, from, &with_mac2(&body, &got)));
        // Not for another address or port, nor without mac2, nor with another cookie.
        assert!(!secret.proves(now, addr("198.18.0.3:3210"), &with_mac2(&body, &got)));
        assert!(!secret.proves(now, addr("198.18.0.2:3211"), &with_mac2(&body, &got)));
        assert!(!secret.proves(now, from, &body));
        assert!(!secret.proves(now, from, &with_mac2(&body, &[0; COOKIE_LEN])));
        // mac2 covers the whole initiation.
        let mut altered = with_mac2(&body, &got);
        altered[20] ^= 1;
        assert!(!secret.proves(now, from, &altered));
        // IPv6 sources have cookies of their own.
        let v6 = addr("[fd00::2]:3210");
        let len = secret.write_reply(now, v6, &body, &mut out).unwrap();
        let got6 = open_reply(TOKEN, &r.public(), &body, &out[..len]).unwrap();
        assert_ne!(got6, got);
        assert!(secret.proves(now, v6, &with_mac2(&body, &got6)));
    }

    #[test]
    fn a_reply_opens_for_nobody_else_and_not_when_altered() {
        let r = responder();
        let mut secret =
            CookieSecret::new(&r.public(), Instant::ZERO, Random::new(&[1; 32], b"cookie"));
        let body = initiation(&r, 5);
        let from = addr("198.18.0.2:3210");
        let mut out = [0u8; COOKIE_REPLY_LEN];
        secret
            .write_reply(Instant::ZERO, from, &body, &mut out)
            .unwrap();
        // Another initiation with the same index (another mac1): the reply does not open.
        let other = initiation(&Identity::new(SecretKey::from_random([8; 32])), 5);
        assert_eq!(
            open_reply(TOKEN, &r.public(), &other, &out),
            Err(HandshakeError::Mac)
        );
        // Sealed for another responder's key.
        let stranger = Identity::new(SecretKey::from_random([3; 32])).public();
        assert_eq!(
            open_reply(TOKEN, &stranger, &body, &out),
            Err(HandshakeError::Mac)
        );
        assert_eq!(
            open_reply(TOKEN, &r.public(), &initiation(&r, 6), &out),
            Err(HandshakeError::Index)
        );
        assert_eq!(
            open_reply(Token::new(1).unwrap(), &r.public(), &body, &out),
            Err(HandshakeError::Token)
        );
        assert_eq!(
            open_reply(TOKEN, &r.public(), &body, &out[..COOKIE_REPLY_LEN - 1]),
            Err(HandshakeError::Length)
        );
        for at in [TOKEN_LEN + 5, 30, COOKIE_REPLY_LEN - 1] {
            let mut bad = out;
            bad[at] ^= 0x40;
            assert_eq!(
                open_reply(TOKEN, &r.public(), &body, &bad),
                Err(HandshakeError::Mac),
                "byte {at} altered"
            );
        }
        let mut bad = out;
        bad[TOKEN_LEN] = 0x91;
        assert_eq!(
            open_reply(TOKEN, &r.public(), &body, &bad),
            Err(HandshakeError::Type)
        );
        // No room, or a short initiation: an error, not a panic.
        let mut small = [0u8; COOKIE_REPLY_LEN - 1];
        assert_eq!(
            secret.write_reply(Instant::ZERO, from, &body, &mut small),
            Err(HandshakeError::NoRoom)
        );
        assert_eq!(
            secret.write_reply(Instant::ZERO, from, &body[..100], &mut out),
            Err(HandshakeError::Length)
        );
    }

    #[test]
    fn two_replies_never_share_a_nonce() {
        let r = responder();
        let mut secret =
            CookieSecret::new(&r.public(), Instant::ZERO, Random::new(&[1; 32], b"cookie"));
        let body = initiation(&r, 5);
        let from = addr("198.18.0.2:3210");
        let mut nonces = std::collections::HashSet::new();
        for i in 0..1000u64 {
            let mut out = [0u8; COOKIE_REPLY_LEN];
            // Across two secrets too.
            let now = Instant::from_secs(i / 4);
            secret.write_reply(now, from, &body, &mut out).unwrap();
            assert!(nonces.insert(out[12..24].to_vec()), "reply {i}");
        }
    }

    #[test]
    fn a_cookie_is_good_for_one_lifetime_of_the_secret_at_least_and_two_at_most() {
        let r = responder();
        let body = initiation(&r, 5);
        let from = addr("198.18.0.2:3210");
        for made in [0u64, 1, 60, 119] {
            let mut secret =
                CookieSecret::new(&r.public(), Instant::ZERO, Random::new(&[1; 32], b"cookie"));
            let mut out = [0u8; COOKIE_REPLY_LEN];
            let at = Instant::from_secs(made);
            secret.write_reply(at, from, &body, &mut out).unwrap();
            let got = open_reply(TOKEN, &r.public(), &body, &out).unwrap();
            let msg = with_mac2(&body, &got);
            // The initiator uses it for COOKIE_LIFETIME: good all that time.
            for later in [
                0,
                30,
                COOKIE_LIFETIME.as_secs(),
                SECRET_LIFETIME.as_secs() - 1,
            ] {
                assert!(
                    secret.proves(at + Duration::from_secs(later), from, &msg),
                    "made at {made} s, {later} s later"
                );
            }
            // Two periods later both secrets are new.
            assert!(!secret.proves(at + SECRET_LIFETIME * 2, from, &msg));
        }
    }
}
