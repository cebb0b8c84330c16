//! The network key of keyed mode at the OS edge: the `--key-file` (read at start-up and on
//! SIGHUP, bounded, wiped once parsed) and the sender session a node seals under with it.
//!
//! The key file's formats (raw, hex, an Argon2id passphrase) are
//! [`crypto::Key`](crate::crypto::Key)'s; the random bytes come from
//! [`sys::random`](crate::sys::random).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{open_for_reading, read_bounded, wipe};
use crate::crypto::{Key, SESSION_LEN, SHORT_PASSPHRASE};
use crate::error::Error;
use crate::wire::Token;

/// The longest key file [`read_key`] accepts, in bytes.
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// Reads and parses the key file (see [`Key::from_file_contents`]), at start-up and on SIGHUP;
/// the contents are wiped once parsed.
///
/// # Errors
///
/// [`Error::KeyFileRead`] if the file cannot be read, [`Error::KeyFile`] if it holds no usable
/// key or is longer than [`MAX_KEY_FILE_LEN`].
pub fn read_key(path: &Path, token: Token) -> Result<Key, Error> {
    // Bounded: a key file is 32 to 64 bytes or a passphrase; a path to something endless
    // (a device, a pipe) must not grow memory.
    let contents = open_for_reading(path)
        .and_then(|file| {
            // The whole network's secret: other users reading it is a mistake worth a word.
            // (Not refused: the group may have to read it after --user, and earlier versions
            // took any mode.)
            let meta = file.metadata()?;
            let mode = meta.permissions().mode();
            if mode & 0o004 != 0 {
                log::warn!(
                    "the key file {} may be read by other users (mode {:o}): chmod o-r it",
                    path.display(),
                    mode & 0o7777
                );
            }
            if mode & 0o022 != 0 {
                log::warn!(
                    "the key file {} may be written by other users (mode {:o}), who could \
                     replace the network's key: chmod go-w it",
                    path.display(),
                    mode & 0o7777
                );
            }
            let could = "read and replace the network's key";
            if let Some(reason) = super::replaceable_or_owned(path, &meta, could) {
                log::warn!(
                    "the key file {} could be replaced by another user, with a key they \
                     know: {reason}",
                    path.display()
                );
            }
            read_bounded(file, MAX_KEY_FILE_LEN)
        })
        .map_err(|source| Error::KeyFileRead {
            path: path.to_owned(),
            source,
        })?;
    let Some(mut contents) = contents else {
        return Err(Error::KeyFile {
            path: path.to_owned(),
            reason: format!("longer than {MAX_KEY_FILE_LEN} bytes"),
        });
    };
    if Key::is_text_taken_raw(&contents) {
        log::warn!(
            "the key file {} holds 32 bytes of text: it is taken as a raw 32-byte key, not as \
             a passphrase, so a node whose file holds the same passphrase with or without a \
             newline gets another key (use a passphrase of another length, or 64 hex digits)",
            path.display()
        );
    }
    if let Some(digits) = Key::cut_hex(&contents) {
        log::warn!(
            "the key file {} holds {digits} hex digits, not 64: they are taken as a passphrase, \
             and give a key no other node has if they are a hex key cut short (read while it \
             was being written? write a new key file beside the old one and rename it into \
             place)",
            path.display()
        );
    }
    if let Some(len) = Key::short_passphrase(&contents) {
        log::warn!(
            "the key file {} holds a passphrase of only {len} bytes, which anyone who records \
             a datagram may guess: use 64 hex digits, or a passphrase of at least \
             {SHORT_PASSPHRASE} bytes",
            path.display()
        );
    }
    let key = Key::from_file_contents(&contents, token);
    wipe(&mut contents);
    key.map_err(|e| Error::KeyFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// A new keyed-mode session, at start-up and for each new key: the time now in milliseconds
/// since the Unix epoch (big-endian), then 8 random bytes, so that no two runs or keys ever
/// share nonces.
///
/// # Errors
///
/// [`Error::Random`] if the OS gives no random bytes.
pub fn new_session() -> Result<[u8; SESSION_LEN], Error> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    let mut session = [0u8; SESSION_LEN];
    let (time, random) = session.split_at_mut(8);
    time.copy_from_slice(&millis.to_be_bytes());
    crate::sys::random::fill(random).map_err(Error::Random)?;
    Ok(session)
}
