//! [`Key`]: the 32-byte network key, read from the key file's contents (a raw key, 64 hex
//! digits, or a passphrase stretched with Argon2id), and the HKDF-SHA256 input key that every
//! session subkey is expanded from.
//!
//! Owns the key file formats, the Argon2id parameters and salt, and wiping the key on drop. It
//! reads no file (the caller passes the contents) and seals or opens nothing.

use core::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use ring::hkdf::{self, Prk, Salt};

use super::{KEY_LEN, MAX_PASSPHRASE_LEN};
use crate::wire::{Token, TOKEN_LEN};

/// Passphrases shorter than this many bytes get a warning ([`Key::short_passphrase`]).
pub const SHORT_PASSPHRASE: usize = 16;

/// Argon2id memory cost in KiB (64 MiB).
const KDF_MEMORY_KIB: u32 = 64 * 1024;
/// Argon2id passes.
const KDF_PASSES: u32 = 3;
/// Argon2id lanes.
const KDF_LANES: u32 = 1;
/// Salt prefix; the token's 7 wire bytes follow it.
const KDF_SALT_PREFIX: &[u8; 16] = b"ethcloud-key-v1:";
/// HKDF-SHA256 salt of the per-session subkeys.
const SUBKEY_SALT: &[u8; 19] = b"ethcloud-session-v1";

/// A 32-byte network key. Its bytes are overwritten with zeros when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Key([u8; KEY_LEN]);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the compiler from treating the stores above as dead.
        std::hint::black_box(&self.0);
    }
}

/// Why a key file could not be turned into a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The file is empty (or holds only a newline).
    Empty,
    /// The passphrase is nothing but white space (e.g. a file that `echo >>` wrote twice):
    /// a key anyone could guess.
    Blank,
    /// The passphrase is longer than [`MAX_PASSPHRASE_LEN`] bytes.
    TooLong,
    /// Argon2 refused its parameters or failed; the reason is its own message.
    Kdf(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Empty => f.write_str("key file is empty"),
            KeyError::Blank => f.write_str("key file holds nothing but white space"),
            KeyError::TooLong => write!(
                f,
                "key file passphrase is longer than {MAX_PASSPHRASE_LEN} bytes"
            ),
            KeyError::Kdf(reason) => write!(f, "argon2 key derivation failed: {reason}"),
        }
    }
}

impl std::error::Error for KeyError {}

impl Key {
    /// Whether a key file's `contents` are 32 bytes of text (with perhaps a final newline,
    /// or carriage return and newline): [`Key::from_file_contents`] takes them as a raw key,
    /// but they were most likely meant as a passphrase (31 characters and the newline `echo`
    /// adds, 30 and a Windows line end, or 32 written with `printf`), and a node whose file
    /// holds the same passphrase with another length gets another key. Text is UTF-8 with
    /// no control character but the tab. (Random raw bytes pass about once in 10^11 keys.)
    pub fn is_text_taken_raw(contents: &[u8]) -> bool {
        let body = contents
            .strip_suffix(b"\n")
            .map_or(contents, |b| b.strip_suffix(b"\r").unwrap_or(b));
        contents.len() == KEY_LEN
            && std::str::from_utf8(body)
                .is_ok_and(|text| text.chars().all(|c| c == '\t' || !c.is_control()))
    }

    /// The length of the passphrase that [`Key::from_file_contents`] would stretch from
    /// `contents`, if it is one and shorter than [`SHORT_PASSPHRASE`] bytes: guessable by
    /// anyone who records a datagram. (A hex key cut short is [`Key::cut_hex`]'s.) `None` for
    /// a raw or hex key, for a longer passphrase, and for contents that are refused anyway.
    pub fn short_passphrase(contents: &[u8]) -> Option<usize> {
        if contents.len() == KEY_LEN || parse_hex_key(contents.trim_ascii_end()).is_some() {
            return None;
        }
        let pass = contents
            .strip_suffix(b"\n")
            .map_or(contents, |p| p.strip_suffix(b"\r").unwrap_or(p));
        let refused = pass.iter().all(u8::is_ascii_whitespace);
        (!refused && pass.len() < SHORT_PASSPHRASE).then_some(pass.len())
    }

    /// The number of hex digits in `contents`, if they are nothing but hex digits (and
    /// trailing white space), but not the 64 of a hex key nor the 32 bytes of a raw one:
    /// [`Key::from_file_contents`] takes them as a passphrase, though they are most likely a
    /// hex key cut short (a key file read while it was being written, or copied in part).
    pub fn cut_hex(contents: &[u8]) -> Option<usize> {
        let digits = contents.trim_ascii_end();
        let cut = !digits.is_empty()
            && digits.len() != 2 * KEY_LEN
            && contents.len() != KEY_LEN
            && digits.iter().all(u8::is_ascii_hexdigit);
        cut.then_some(digits.len())
    }

    /// Reads a key file's contents.
    ///
    /// - exactly 32 bytes: the raw key;
    /// - 64 hex digits, optionally followed by whitespace: the key in hex;
    /// - anything else: a passphrase (one trailing `\n` or `\r\n` removed; 1 to 1024 bytes),
    ///   stretched with Argon2id (m = 64 MiB, t = 3, p = 1, 32-byte output, version 0x13) with
    ///   salt `b"ethcloud-key-v1:"` followed by the token's 7 wire bytes, so one passphrase gives
    ///   each network its own key. This takes a moment (64 MiB, 3 passes), once, at start-up.
    ///
    /// A 32-byte file is always a raw key and a 64-hex-digit file always a hex key, even if it
    /// was meant as a passphrase ([`Key::is_text_taken_raw`] says when that is likely). This
    /// is the wire-compatible rule: every node of a network must read the file the same way.
    /// `contents` is not wiped here; the caller owns it.
    ///
    /// # Errors
    ///
    /// [`KeyError::Empty`] for an empty passphrase, [`KeyError::Blank`] for one of nothing but
    /// white space, [`KeyError::TooLong`] past 1024 bytes, and
    /// [`KeyError::Kdf`] if Argon2 fails (it cannot with these parameters short of memory).
    pub fn from_file_contents(contents: &[u8], token: Token) -> Result<Key, KeyError> {
        // (A 32-byte file of text is still a raw key: see `is_text_taken_raw`.)
        if let Ok(raw) = <[u8; KEY_LEN]>::try_from(contents) {
            return Ok(Key(raw));
        }
        if let Some(key) = parse_hex_key(contents.trim_ascii_end()) {
            return Ok(key);
        }
        let pass = contents
            .strip_suffix(b"\n")
            .map_or(contents, |p| p.strip_suffix(b"\r").unwrap_or(p));
        if pass.is_empty() {
            return Err(KeyError::Empty);
        }
        if pass.iter().all(u8::is_ascii_whitespace) {
            return Err(KeyError::Blank);
        }
        if pass.len() > MAX_PASSPHRASE_LEN {
            return Err(KeyError::TooLong);
        }
        let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, KDF_LANES, Some(KEY_LEN))
            .map_err(|e| KeyError::Kdf(e.to_string()))?;
        let mut salt = [0u8; KDF_SALT_PREFIX.len() + TOKEN_LEN];
        let (prefix, token_bytes) = salt.split_at_mut(KDF_SALT_PREFIX.len());
        prefix.copy_from_slice(KDF_SALT_PREFIX);
        token_bytes.copy_from_slice(&token.to_bytes());
        let mut key = Key([0u8; KEY_LEN]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(pass, &salt, &mut key.0)
            .map_err(|e| KeyError::Kdf(e.to_string()))?;
        Ok(key)
    }

    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Key {
        Key(bytes)
    }

    /// A one-way fingerprint of the key (SHA-256 of a fixed label and the key): what a node
    /// remembers of the keys it used, to refuse going back to one, without keeping them.
    pub fn fingerprint(&self) -> [u8; 32] {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        ctx.update(b"ethcloud-key-fingerprint-v1");
        ctx.update(&self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    /// The HKDF-SHA256 pseudorandom key from which the session subkeys are expanded.
    pub(super) fn subkey_prk(&self) -> Prk {
        Salt::new(hkdf::HKDF_SHA256, SUBKEY_SALT).extract(&self.0)
    }
}

/// Exactly 64 hex digits (either case) into a key.
fn parse_hex_key(text: &[u8]) -> Option<Key> {
    if text.len() != 2 * KEY_LEN {
        return None;
    }
    let mut key = Key([0u8; KEY_LEN]);
    for (out, pair) in key.0.iter_mut().zip(text.chunks_exact(2)) {
        let (hi, lo) = (hex_digit(*pair.first()?)?, hex_digit(*pair.get(1)?)?);
        *out = hi << 4 | lo;
    }
    Some(key)
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::tests::{hex, test_key, token};

    #[test]
    fn hex_keys_cut_short_are_told_and_whole_keys_are_not() {
        let hex_text = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        for cut in [1, 10, 16, 31, 33, 40, 63] {
            assert_eq!(
                Key::cut_hex(&hex_text.as_bytes()[..cut]),
                Some(cut),
                "{cut}"
            );
            let with_newline = format!("{}\n", &hex_text[..cut]);
            // (31 digits and a newline are 32 bytes: a raw key.)
            let told = (cut != 31).then_some(cut);
            assert_eq!(Key::cut_hex(with_newline.as_bytes()), told, "{cut}");
        }
        // 32 bytes are a raw key, whatever they hold; 64 digits a hex key.
        assert_eq!(Key::cut_hex(&hex_text.as_bytes()[..32]), None);
        assert_eq!(Key::cut_hex(hex_text.as_bytes()), None);
        assert_eq!(Key::cut_hex(format!("{hex_text}\n").as_bytes()), None);
        // A passphrase is not hex digits; nor is nothing.
        assert_eq!(Key::cut_hex(b"correct horse battery staple\n"), None);
        assert_eq!(Key::cut_hex(b"\n"), None);
    }

    #[test]
    fn short_passphrases_are_told_and_keys_are_not() {
        let hex_text = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        assert_eq!(Key::short_passphrase(b"secret\n"), Some(6));
        assert_eq!(Key::short_passphrase(b"a\r\n"), Some(1));
        // Hex digits are a passphrase too (and cut_hex's as well).
        assert_eq!(Key::short_passphrase(&hex_text.as_bytes()[..10]), Some(10));
        assert_eq!(Key::short_passphrase(b"fifteen bytes!!"), Some(15));
        assert_eq!(Key::short_passphrase(b"sixteen bytes!!!\n"), None);
        assert_eq!(Key::short_passphrase(hex_text.as_bytes()), None);
        assert_eq!(
            Key::short_passphrase(format!("{hex_text}\n").as_bytes()),
            None
        );
        assert_eq!(Key::short_passphrase(&[7u8; KEY_LEN]), None);
        // Refused anyway: nothing to warn of.
        assert_eq!(Key::short_passphrase(b""), None);
        assert_eq!(Key::short_passphrase(b"  \n"), None);
    }

    #[test]
    fn raw_and_hex_key_files_parse() {
        let raw: Vec<u8> = (0..32).collect();
        let from_raw = Key::from_file_contents(&raw, token()).unwrap();
        assert_eq!(from_raw.0, test_key().0);
        let hex_text = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
        for contents in [
            hex_text.to_string(),
            format!("{hex_text}\n"),
            format!("{hex_text} \r\n\n"),
        ] {
            let key = Key::from_file_contents(contents.as_bytes(), token()).unwrap();
            assert_eq!(key.0, test_key().0, "{contents:?}");
        }
        assert_eq!(format!("{:?}", test_key()), "Key(..)");
    }

    #[test]
    fn empty_or_overlong_key_file_is_refused() {
        assert_eq!(
            Key::from_file_contents(b"", token()).unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Key::from_file_contents(b"\n", token()).unwrap_err(),
            KeyError::Empty
        );
        assert_eq!(
            Key::from_file_contents(b"\r\n", token()).unwrap_err(),
            KeyError::Empty
        );
        for blank in [&b"\n\n"[..], b"   \n", b"\t", b" \r\n\r\n"] {
            assert_eq!(
                Key::from_file_contents(blank, token()).unwrap_err(),
                KeyError::Blank,
                "{blank:?}"
            );
        }
        let long = vec![b'x'; MAX_PASSPHRASE_LEN + 1];
        assert_eq!(
            Key::from_file_contents(&long, token()).unwrap_err(),
            KeyError::TooLong
        );
        for e in [
            KeyError::Empty,
            KeyError::TooLong,
            KeyError::Kdf("x".into()),
        ] {
            let text = e.to_string();
            assert!(
                !text.contains('\n') && text == text.to_lowercase(),
                "{text}"
            );
        }
    }

    /// Argon2id(m = 64 MiB, t = 3, p = 1) of "correct horse battery staple", token 134.
    const GOLDEN_PASSPHRASE_KEY: &str =
        "1789e42f0de80a1afa2d10b1212401caa87f939d141f53734a492dfe57fd27e0";

    #[test]
    fn passphrase_key_is_deterministic_per_token_and_differs_across_tokens() {
        // Three KDF calls: each takes a while in a debug build.
        let k134 = Key::from_file_contents(b"correct horse battery staple\n", token()).unwrap();
        assert_eq!(hex(&k134.0), GOLDEN_PASSPHRASE_KEY);
        let crlf = Key::from_file_contents(b"correct horse battery staple\r\n", token()).unwrap();
        assert_eq!(crlf.0, k134.0);
        let other = Token::new(135).unwrap();
        let k135 = Key::from_file_contents(b"correct horse battery staple", other).unwrap();
        assert_ne!(k135.0, k134.0);
    }
}
