//! Per-node keys: [`SecretKey`] (an X25519 private key, wiped on drop) and [`PublicKey`], their
//! text form (standard base64 with padding, 44 characters, as `wg genkey` prints), and the
//! trusted set ([`TrustedKeys`]) read from a trust file's contents.
//!
//! Owns the key text formats and the trust-file format. It reads no file and no RNG: the
//! caller passes file contents and random bytes.

use core::fmt;
use std::collections::HashMap;

/// Bytes of an X25519 key, private or public.
pub const KEY_LEN: usize = 32;
/// Characters of a key in text form (base64 of 32 bytes, with one `=` of padding).
pub const KEY_TEXT_LEN: usize = 44;
/// The most keys a trusted set holds; more is refused with an error.
pub const MAX_TRUSTED_KEYS: usize = 4096;
/// The longest name a trusted key may have, in bytes.
pub const MAX_KEY_NAME_LEN: usize = 64;

/// An X25519 public key: a node's identity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(pub [u8; KEY_LEN]);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = [0u8; KEY_TEXT_LEN];
        encode(&self.0, &mut text);
        f.pad(core::str::from_utf8(&text).unwrap_or("?"))
    }
}

impl PublicKey {
    /// The public key in its text form, `key`, surrounding white space ignored.
    ///
    /// # Errors
    ///
    /// [`KeyTextError`] when it is not 44 characters of base64 for 32 bytes.
    pub fn from_text(key: &str) -> Result<PublicKey, KeyTextError> {
        decode(key.trim()).map(PublicKey)
    }

    /// Whether this is a point of small order (all zeros is one): X25519 with it gives all
    /// zeros whatever the private key, so no handshake with it can ever complete, and no
    /// private key has it as its public key. A clamped scalar is a multiple of 8 below the
    /// group's prime order, so it maps exactly the points of order 1, 2, 4 or 8 to zero.
    pub fn is_low_order(&self) -> bool {
        let product = curve25519_dalek::MontgomeryPoint(self.0).mul_clamped([0x5a; KEY_LEN]);
        product.to_bytes() == [0u8; KEY_LEN]
    }

    /// Whether the bytes are a coordinate as X25519 writes it: below 2^255 - 19, the top bit
    /// clear. Every public key a private key makes is; another encoding of the same point
    /// would be a key that no lookup (by bytes) matches, so a trust line with it trusts no one.
    pub fn is_canonical(&self) -> bool {
        let top = self.0[KEY_LEN - 1];
        if top & 0x80 != 0 {
            return false;
        }
        // 2^255 - 19 and above: 0x7f, then thirty 0xff, then at least 0xed (little-endian).
        let all_ones_between = self.0[1..KEY_LEN - 1].iter().all(|b| *b == 0xff);
        !(top == 0x7f && all_ones_between && self.0[0] >= 0xed)
    }
}

/// An X25519 private key. Its bytes are overwritten with zeros when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_LEN]);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites secret bytes with zeros, in a way the compiler keeps (it would otherwise drop
/// the stores to memory about to be freed as dead).
pub(crate) fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&*bytes);
}

impl SecretKey {
    /// A private key from 32 random bytes (clamped as X25519 asks).
    pub fn from_random(mut bytes: [u8; KEY_LEN]) -> SecretKey {
        bytes[0] &= 248;
        bytes[31] &= 127;
        bytes[31] |= 64;
        SecretKey(bytes)
    }

    /// The private key in its text form (a key file's contents), surrounding white space
    /// ignored.
    ///
    /// # Errors
    ///
    /// [`KeyTextError`] when it is not 44 characters of base64 for 32 bytes.
    pub fn from_text(key: &str) -> Result<SecretKey, KeyTextError> {
        decode(key.trim()).map(SecretKey)
    }

    /// The private key's bytes (for the handshake).
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The text form: 44 characters of base64, as `ethcloud genkey` prints it.
    pub fn to_text(&self) -> String {
        let mut text = [0u8; KEY_TEXT_LEN];
        encode(&self.0, &mut text);
        let s = String::from_utf8_lossy(&text).into_owned();
        text.fill(0);
        s
    }

    /// The public key of this private key (X25519 with the base point). Computed here, not
    /// through `snow`'s key pair type, which keeps a copy of the private key it does not wipe.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(curve25519_dalek::MontgomeryPoint::mul_base_clamped(self.0).to_bytes())
    }
}

/// Why a key's text form was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTextError {
    /// Not 44 characters long.
    Length(usize),
    /// A character that is not base64, or padding in the wrong place.
    NotBase64,
}

impl fmt::Display for KeyTextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyTextError::Length(n) => write!(
                f,
                "a key is {KEY_TEXT_LEN} characters of base64 (as ethcloud genkey prints), not {n}"
            ),
            KeyTextError::NotBase64 => f.write_str("a key is base64 (as ethcloud genkey prints)"),
        }
    }
}

impl std::error::Error for KeyTextError {}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 of 32 bytes, with padding.
fn encode(bytes: &[u8; KEY_LEN], out: &mut [u8; KEY_TEXT_LEN]) {
    let sextet = |v: u32, shift: u32| ALPHABET[((v >> shift) & 63) as usize];
    let mut o = 0;
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        out[o] = sextet(v, 18);
        out[o + 1] = sextet(v, 12);
        out[o + 2] = if chunk.len() > 1 { sextet(v, 6) } else { b'=' };
        out[o + 3] = if chunk.len() > 2 { sextet(v, 0) } else { b'=' };
        o += 4;
    }
}

fn decode(text: &str) -> Result<[u8; KEY_LEN], KeyTextError> {
    let text = text.as_bytes();
    if text.len() != KEY_TEXT_LEN {
        return Err(KeyTextError::Length(text.len()));
    }
    if text[KEY_TEXT_LEN - 1] != b'=' {
        return Err(KeyTextError::NotBase64);
    }
    let value = |c: u8| -> Result<u32, KeyTextError> {
        ALPHABET
            .iter()
            .position(|a| *a == c)
            .map(|p| p as u32)
            .ok_or(KeyTextError::NotBase64)
    };
    let mut out = [0u8; KEY_LEN];
    let mut o = 0;
    for chunk in text[..KEY_TEXT_LEN - 4].chunks(4) {
        let v = chunk
            .iter()
            .try_fold(0u32, |v, c| Ok((v << 6) | value(*c)?))?;
        out[o] = (v >> 16) as u8;
        out[o + 1] = (v >> 8) as u8;
        out[o + 2] = v as u8;
        o += 3;
    }
    // The last group: 2 bytes in 3 characters and one `=`.
    let tail = &text[KEY_TEXT_LEN - 4..KEY_TEXT_LEN - 1];
    let v = tail
        .iter()
        .try_fold(0u32, |v, c| Ok((v << 6) | value(*c)?))?;
    if v & 3 != 0 {
        // Non-zero bits past the last byte: not the canonical form of any key.
        return Err(KeyTextError::NotBase64);
    }
    out[o] = (v >> 10) as u8;
    out[o + 1] = (v >> 2) as u8;
    Ok(out)
}

/// The set of public keys this node trusts, each with the name it was given (its file name, or
/// the text after the key on its line).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: HashMap<PublicKey, String>,
}

/// Why a trust file's contents were refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustError {
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for TrustError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for TrustError {}

/// A character that must not reach a log line, the status file or a terminal as it is: a
/// control character (a newline would forge a line, ESC drives terminals) or a bidirectional
/// formatting one (it reorders what a terminal shows).
pub fn is_unshowable(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// `name` as a trusted key's name may be shown (see [`TrustedKeys::add_contents`]), or `None`
/// when it may be shown as it is.
fn cleaned_name(name: &str) -> Option<String> {
    if name.len() <= MAX_KEY_NAME_LEN && !name.chars().any(is_unshowable) {
        return None;
    }
    let mut out = String::with_capacity(MAX_KEY_NAME_LEN);
    for c in name.chars() {
        let c = match c {
            '\t' => ' ',
            c if is_unshowable(c) => '?',
            c => c,
        };
        if out.len() + c.len_utf8() > MAX_KEY_NAME_LEN {
            break;
        }
        out.push(c);
    }
    Some(out)
}

impl TrustedKeys {
    /// An empty set.
    pub fn new() -> TrustedKeys {
        TrustedKeys::default()
    }

    /// Adds the keys of a trust file's contents: one public key per line, optionally followed
    /// by white space and a name; empty lines and lines starting with `#` are skipped.
    /// `default_name` names keys that have none on their line.
    ///
    /// A name goes into log lines, the status file and `ethcloud show`, so it is kept to
    /// [`MAX_KEY_NAME_LEN`] bytes (cut at a character boundary), with a tab as a space and any
    /// other control or bidirectional formatting character as `?` (a newline could forge
    /// lines, ESC drives terminals). Returns the first line whose name was changed so, for
    /// the caller to warn about.
    ///
    /// # Errors
    ///
    /// [`TrustError`] naming the first bad line (a bad key), or the line past
    /// [`MAX_TRUSTED_KEYS`].
    pub fn add_contents(
        &mut self,
        contents: &str,
        default_name: &str,
    ) -> Result<Option<usize>, TrustError> {
        let mut cleaned = None;
        // A byte order mark, as some Windows editors write, is not part of the first line.
        let contents = contents.strip_prefix('\u{feff}').unwrap_or(contents);
        // The key the file is named after, if it is: parsed once, not on every unnamed line.
        let file_key = PublicKey::from_text(default_name).ok();
        for (i, line) in contents.lines().enumerate() {
            let line = line.trim();
            let bad = |reason: &str| TrustError {
                line: i + 1,
                reason: reason.to_owned(),
            };
            if line.contains('\r') {
                // Old Mac line ends: the whole file would be one line, its first key trusted
                // and the others taken for its name.
                return Err(bad(
                    "a carriage return inside the line: write one key per line, with \
                     Unix line ends",
                ));
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, name, named_here) = match line.split_once(char::is_whitespace) {
                Some((key, name)) => (key, name.trim(), true),
                None => (line, default_name, false),
            };
            // (Only a name on the line: a file may well be named after a key, as one file per
            // node in a trust directory often is.)
            if named_here
                && name
                    .split_whitespace()
                    .next()
                    .is_some_and(|word| PublicKey::from_text(word).is_ok())
            {
                return Err(bad(
                    "a second key where the name goes: write one key per line",
                ));
            }
            let key = PublicKey::from_text(key).map_err(|e| TrustError {
                line: i + 1,
                reason: e.to_string(),
            })?;
            if !named_here && file_key.is_some_and(|named| named != key) {
                // A file named after a key that holds another (the key replaced, the file
                // not renamed): the other key would go by the first one's text.
                return Err(bad(
                    "the file is named after another key: rename it, or name the key on \
                     its line",
                ));
            }
            if key.is_low_order() {
                return Err(bad(
                    "a point of small order (all zeros is one), with which no handshake can \
                     complete: not a public key that genkey makes",
                ));
            }
            if !key.is_canonical() {
                return Err(bad(
                    "not a coordinate as X25519 writes it (the top bit set, or 2^255 - 19 or \
                     more): not a public key that genkey makes",
                ));
            }
            let name = match cleaned_name(name) {
                Some(shown) => {
                    cleaned = cleaned.or(Some(i + 1));
                    shown
                }
                None => name.to_owned(),
            };
            if !self.keys.contains_key(&key) && self.keys.len() >= MAX_TRUSTED_KEYS {
                return Err(TrustError {
                    line: i + 1,
                    reason: format!("more than {MAX_TRUSTED_KEYS} trusted keys"),
                });
            }
            self.keys.insert(key, name);
        }
        Ok(cleaned)
    }

    /// Adds one key with a name.
    pub fn insert(&mut self, key: PublicKey, name: &str) {
        self.keys.insert(key, name.to_owned());
    }

    /// Removes one key; returns whether it was there.
    pub fn remove(&mut self, key: &PublicKey) -> bool {
        self.keys.remove(key).is_some()
    }

    /// Whether `key` is trusted.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains_key(key)
    }

    /// The name `key` was given, if it is trusted.
    pub fn name(&self, key: &PublicKey) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// How many keys are trusted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The trusted keys, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> + '_ {
        self.keys.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_rfc7748_public_key() {
        // RFC 7748 section 6.1: Alice's private and public key.
        let private = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let public = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let secret = SecretKey(private);
        assert_eq!(secret.public_key(), PublicKey(public));
        let text = secret.to_text();
        assert_eq!(text.len(), KEY_TEXT_LEN);
        assert_eq!(SecretKey::from_text(&format!(" {text}\n")), Ok(secret));
        let p = PublicKey(public);
        assert_eq!(PublicKey::from_text(&p.to_string()), Ok(p));
        assert_eq!(
            p.to_string(),
            "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
        );
    }

    #[test]
    fn bad_key_text_is_refused() {
        assert_eq!(PublicKey::from_text(""), Err(KeyTextError::Length(0)));
        let good = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
        assert!(PublicKey::from_text(good).is_ok());
        assert_eq!(
            PublicKey::from_text(&good.replace('h', "!")),
            Err(KeyTextError::NotBase64)
        );
        assert_eq!(
            PublicKey::from_text(&good.replace('=', "A")),
            Err(KeyTextError::NotBase64)
        );
        // 'p' has its low bits set: no 32-byte key encodes to it.
        assert_eq!(
            PublicKey::from_text("hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp="),
            Err(KeyTextError::NotBase64)
        );
        for n in [43, 45, 100] {
            assert_eq!(
                PublicKey::from_text(&"A".repeat(n)),
                Err(KeyTextError::Length(n))
            );
        }
    }

    #[test]
    fn points_of_small_order_are_told_apart_from_keys_and_refused_in_trust_files() {
        // The points of order 1, 2, 4 and 8 as libsodium's blocklist gives them (0, 1, two
        // of order 8, p - 1, p, p + 1), and the same with the top bit set, which X25519
        // ignores.
        let small = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        for h in small {
            let mut key = PublicKey(hex(h));
            assert!(key.is_low_order(), "{h}");
            key.0[31] |= 0x80;
            assert!(key.is_low_order(), "{h} with the top bit");
        }
        let mut nine = [0u8; 32];
        nine[0] = 9;
        assert!(!PublicKey(nine).is_low_order(), "the base point");
        for seed in 1..=50u8 {
            let key = SecretKey::from_random([seed; 32]).public_key();
            assert!(!key.is_low_order(), "{key}");
        }
        let good = SecretKey::from_random([7; 32]).public_key();
        let zero = PublicKey([0; 32]);
        let err = TrustedKeys::new()
            .add_contents(&format!("{good} a\n{zero} placeholder\n"), "f")
            .unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("small order"), "{}", err.reason);
        // Another encoding of a good key's point (its top bit set) trusts no one: refused.
        let mut top = good;
        top.0[31] |= 0x80;
        let mut high = [0xffu8; 32];
        high[31] = 0x7f;
        high[0] = 0xf0;
        for odd in [top, PublicKey(high)] {
            assert!(!odd.is_low_order() && !odd.is_canonical(), "{odd}");
            let err = TrustedKeys::new()
                .add_contents(&format!("{good} a\n{odd} b\n"), "f")
                .unwrap_err();
            assert_eq!(err.line, 2);
            assert!(err.reason.contains("X25519 writes"), "{}", err.reason);
        }
        for seed in 1..=50u8 {
            assert!(SecretKey::from_random([seed; 32])
                .public_key()
                .is_canonical());
        }
    }

    #[test]
    fn a_byte_order_mark_is_skipped_and_keys_run_together_are_refused() {
        let a = SecretKey::from_random([1; 32]).public_key();
        let b = SecretKey::from_random([2; 32]).public_key();
        let mut t = TrustedKeys::new();
        t.add_contents(&format!("\u{feff}{a} alpha\r\n{b}\r\n"), "f")
            .unwrap();
        assert_eq!(
            (t.len(), t.name(&a), t.name(&b)),
            (2, Some("alpha"), Some("f"))
        );
        for (contents, line) in [
            (format!("{a}\r{b}\r"), 1),
            (format!("# keys\r{a}\r{b}\r"), 1),
            (format!("# two\n{a} {b}\n"), 2),
            (format!("{a} alpha\n{b}\t{a} beta\n"), 2),
        ] {
            let err = TrustedKeys::new().add_contents(&contents, "f").unwrap_err();
            assert_eq!(err.line, line, "{contents:?}: {err}");
        }
    }

    #[test]
    fn trust_file_lines_comments_names_and_errors() {
        let mut t = TrustedKeys::new();
        let a = SecretKey::from_random([1; 32]).public_key();
        let b = SecretKey::from_random([2; 32]).public_key();
        let contents = format!("# nodes\n\n{a} alpha node\n  {b}\n");
        t.add_contents(&contents, "file").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t.name(&a), Some("alpha node"));
        assert_eq!(t.name(&b), Some("file"));
        let err = t.add_contents("# x\nnot-a-key\n", "f").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn names_that_could_forge_log_or_status_lines_are_cleaned_and_their_line_named() {
        let a = SecretKey::from_random([1; 32]).public_key();
        let long = "n".repeat(MAX_KEY_NAME_LEN + 1);
        for (contents, default_name, line, shown) in [
            (
                format!("{a} evil\u{1b}[2J\n"),
                "file",
                1,
                "evil?[2J".to_owned(),
            ),
            (
                format!("# c\n{a} right\u{202e}left\n"),
                "file",
                2,
                "right?left".to_owned(),
            ),
            (
                format!("{a} gw\tBerlin\n"),
                "file",
                1,
                "gw Berlin".to_owned(),
            ),
            (
                format!("\n\n{a} {long}\n"),
                "file",
                3,
                "n".repeat(MAX_KEY_NAME_LEN),
            ),
            // The file's own name, for a key without one on its line.
            (
                format!("{a}\n"),
                "peer\n1.2.3.4:1 verified",
                1,
                "peer?1.2.3.4:1 verified".to_owned(),
            ),
            // Cut at a character boundary.
            (
                format!("{a} {}é\n", "n".repeat(MAX_KEY_NAME_LEN - 1)),
                "file",
                1,
                "n".repeat(MAX_KEY_NAME_LEN - 1),
            ),
        ] {
            let mut t = TrustedKeys::new();
            assert_eq!(
                t.add_contents(&contents, default_name),
                Ok(Some(line)),
                "{contents:?}"
            );
            assert_eq!(t.name(&a), Some(shown.as_str()));
        }
        // Within the bounds: taken as it is, also with spaces and non-ASCII letters.
        let mut t = TrustedKeys::new();
        let name = format!("Zürich {}", "n".repeat(MAX_KEY_NAME_LEN - 8));
        assert_eq!(t.add_contents(&format!("{a} {name}\n"), "file"), Ok(None));
        assert_eq!(t.name(&a), Some(name.as_str()));
    }

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
        }
        out
    }

    #[test]
    fn a_file_named_after_a_key_names_that_key_and_no_other() {
        let a = SecretKey::from_random([21; 32]).public_key();
        let b = SecretKey::from_random([22; 32]).public_key();
        let mut trusted = TrustedKeys::new();
        assert!(trusted
            .add_contents(&format!("{a}\n"), &a.to_string())
            .is_ok());
        assert_eq!(trusted.name(&a).map(str::to_owned), Some(a.to_string()));
        let err = TrustedKeys::new()
            .add_contents(&format!("{a}\n"), &b.to_string())
            .unwrap_err();
        assert_eq!(err.line, 1);
        assert!(
            err.reason.contains("named after another key"),
            "{}",
            err.reason
        );
        // Two keys on one line are still refused, whatever the file's name.
        let err = TrustedKeys::new()
            .add_contents(&format!("{a} {b}\n"), &a.to_string())
            .unwrap_err();
        assert!(err.reason.contains("second key"), "{}", err.reason);
    }
}
