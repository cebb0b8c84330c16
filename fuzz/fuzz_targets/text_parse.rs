//! Any bytes through the parsers of local text: key text (`genkey`'s and `pubkey`'s form),
//! trust files and the control socket's requests. Never a panic, and:
//! - a key that parses writes back to the same text, and that text parses to the same key;
//! - every key a trust file adds is named by at most `MAX_KEY_NAME_LEN` bytes, with nothing a
//!   log line or a terminal would misread (`is_unshowable`);
//! - a request that is not one answers with exactly one line.
#![no_main]

use ethcloud::identity::keys::{is_unshowable, MAX_KEY_NAME_LEN};
use ethcloud::identity::{PublicKey, SecretKey, TrustedKeys};
use ethcloud::show::Request;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(answer) = Request::parse(data) {
        assert!(answer.ends_with('\n'), "{answer:?}");
        assert_eq!(answer.matches('\n').count(), 1, "{answer:?}");
        // At most 64 characters of the request, each escaped in at most 10 bytes (`\u{10ffff}`).
        assert!(answer.len() <= 100 + 64 * 10, "{} bytes", answer.len());
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(key) = PublicKey::from_text(text) {
        let back = key.to_string();
        assert_eq!(back, text.trim());
        assert_eq!(PublicKey::from_text(&back).ok(), Some(key));
    }
    if let Ok(key) = SecretKey::from_text(text) {
        let back = key.to_text();
        assert_eq!(back, text.trim());
        let again = SecretKey::from_text(&back).expect("its own text parses");
        assert_eq!(again.as_bytes(), key.as_bytes());
    }
    // The first line may name the file (as a trust directory's files often are named after
    // their key), the rest is the file.
    let (file_name, contents) = text.split_once('\n').unwrap_or(("peer", text));
    let mut trusted = TrustedKeys::new();
    let _ = trusted.add_contents(contents, file_name);
    for key in trusted.iter() {
        let name = trusted.name(key).expect("a trusted key has a name");
        assert!(name.len() <= MAX_KEY_NAME_LEN, "{name:?}");
        assert!(!name.chars().any(is_unshowable), "{name:?}");
        assert!(key.is_canonical() && !key.is_low_order());
    }
});
