//! Every key file at the OS edge. Here, those of per-node identity (issue #12): the
//! `--private-key` file, the `--trusted` files and directories, and the key tools `ethcloud
//! genkey` and `ethcloud pubkey`; in `network.rs`, keyed mode's `--key-file` and its sender
//! session; the unit tests of both in `tests.rs`.
//!
//! Owns reading these with a bound (a path to something endless must not grow memory),
//! refusing a private key file that others may read, the layout of a trust directory, and
//! naming the file and line of anything bad in one [`Error`]. The key and trust-file formats
//! themselves are [`identity::keys`](crate::identity::keys)'s; the random bytes come from
//! [`sys::random`](crate::sys::random).
//!
//! A trust directory holds one trust file per entry: its regular files (symbolic links
//! followed), sorted by name, each file's name naming the keys that have no name on their
//! line. Hidden files (`.name`) and editor backups (`name~`) are skipped, so that a key
//! removed from a file does not live on in its backup.

use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::identity::keys::KEY_LEN;
use crate::identity::{SecretKey, TrustedKeys};
pub(crate) use crate::sys::files::open_for_reading;

/// The longest `--private-key` file accepted, in bytes (as for `--key-file`).
pub const MAX_PRIVATE_KEY_LEN: u64 = 64 * 1024;
/// The longest trust file accepted, in bytes.
pub const MAX_TRUST_FILE_LEN: u64 = 1 << 20;
/// The most files a trust directory may hold.
pub const MAX_TRUST_DIR_FILES: usize = 4096;
/// The longest private key `ethcloud pubkey` reads on standard input, in bytes.
pub const MAX_KEY_INPUT_LEN: u64 = 4096;
/// Permission bits of a private key file that must be clear: none for group or others.
pub const PRIVATE_KEY_FORBIDDEN_MODE: u32 = 0o077;

/// A node's identity as loaded at start-up: its private key and the public keys it trusts,
/// with the paths they came from (to be read again on SIGHUP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIdentity {
    /// The node's private key.
    pub secret: SecretKey,
    /// The public keys the node accepts.
    pub trusted: TrustedKeys,
    /// The `--private-key` file.
    pub private_key: PathBuf,
    /// The `--trusted` files and directories, in the order given.
    pub trusted_paths: Vec<PathBuf>,
}

impl NodeIdentity {
    /// Loads the private key from `private_key` and the trusted keys from `trusted` (see
    /// [`load_identity`]) and keeps the paths.
    ///
    /// # Errors
    ///
    /// As [`load_identity`].
    pub fn load(private_key: &Path, trusted: &[PathBuf]) -> Result<NodeIdentity, Error> {
        let (secret, trusted_keys) = load_identity(private_key, trusted)?;
        Ok(NodeIdentity {
            secret,
            trusted: trusted_keys,
            private_key: private_key.to_owned(),
            trusted_paths: trusted.to_vec(),
        })
    }

    /// How many trusted keys are other nodes' (the node's own key, which a trust file shared
    /// by every node names too, is no peer: the sessions leave it out, and so do the counts
    /// that `ethcloud show` and the log give).
    pub fn peer_keys(&self) -> usize {
        let own = self.trusted.contains(&self.secret.public_key());
        self.trusted.len() - usize::from(own)
    }
}

/// Reads the node's private key from `private_key` ([`read_private_key`]) and the keys it
/// trusts from every path of `trusted` ([`read_trusted`]).
///
/// # Errors
///
/// As [`read_private_key`] and [`read_trusted`]; the private key is read first.
pub fn load_identity(
    private_key: &Path,
    trusted: &[PathBuf],
) -> Result<(SecretKey, TrustedKeys), Error> {
    let secret = read_private_key(private_key)?;
    let trusted = read_trusted(trusted)?;
    Ok((secret, trusted))
}

/// Reads a private key file: one key in text form (as `ethcloud genkey` prints it), white
/// space around it ignored. The file's mode is checked before anything is read from it, and
/// the contents are wiped once parsed.
///
/// # Errors
///
/// [`Error::PrivateKeyMode`] if the group or others may read the file (any bit of
/// [`PRIVATE_KEY_FORBIDDEN_MODE`]), [`Error::PrivateKeyRead`] if it cannot be opened or read,
/// [`Error::PrivateKey`] if it is longer than [`MAX_PRIVATE_KEY_LEN`] or holds no key, or if
/// another user could replace it or owns it (any but root and the user ethcloud started as).
pub fn read_private_key(path: &Path) -> Result<SecretKey, Error> {
    let read_error = |source| Error::PrivateKeyRead {
        path: path.to_owned(),
        source,
    };
    let file = open_for_reading(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    let mode = meta.permissions().mode();
    if mode & PRIVATE_KEY_FORBIDDEN_MODE != 0 {
        return Err(Error::PrivateKeyMode {
            path: path.to_owned(),
            mode,
        });
    }
    // Another user who could put their own file there would know the node's identity key;
    // so would one who owns the file (they may read it, mode 0600 or not).
    let could = "read and replace the node's identity key";
    if let Some(reason) = replaceable_or_owned(path, &meta, could) {
        return Err(Error::PrivateKey {
            path: path.to_owned(),
            reason,
        });
    }
    let mut contents = read_bounded(file, MAX_PRIVATE_KEY_LEN)
        .map_err(read_error)?
        .ok_or_else(|| Error::PrivateKey {
            path: path.to_owned(),
            reason: format!("longer than {MAX_PRIVATE_KEY_LEN} bytes"),
        })?;
    let key = parse_secret(&contents);
    wipe(&mut contents);
    key.map_err(|reason| Error::PrivateKey {
        path: path.to_owned(),
        reason,
    })
}

/// Reads the trusted public keys from `paths`, each a trust file or a directory of trust files
/// (see the module documentation), into one set. A key without a name on its line is named
/// after its file.
///
/// # Errors
///
/// [`Error::TrustedRead`] if a path, a directory entry or a file cannot be read;
/// [`Error::Trusted`] for a file or directory that any user may write to, that another user
/// owns (any but root and the user ethcloud started as) or could replace, a file longer
/// than [`MAX_TRUST_FILE_LEN`] or not UTF-8, a directory
/// of more than [`MAX_TRUST_DIR_FILES`] files, a path that is neither a file nor a directory,
/// and for a bad key (with its line) or a key past
/// [`MAX_TRUSTED_KEYS`](crate::identity::keys::MAX_TRUSTED_KEYS).
pub fn read_trusted(paths: &[PathBuf]) -> Result<TrustedKeys, Error> {
    let mut trusted = TrustedKeys::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::TrustedRead {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            refuse_writable_by_all(path, &meta)?;
            for file in trust_dir_files(path)? {
                add_trust_file(&mut trusted, &file)?;
            }
        } else if meta.is_file() {
            add_trust_file(&mut trusted, path)?;
        } else {
            return Err(Error::Trusted {
                path: path.clone(),
                line: None,
                reason: "neither a file nor a directory".to_owned(),
            });
        }
    }
    Ok(trusted)
}

/// A trust file or directory that any user may write to is refused: anyone on the host
/// could add a key to it (or, in a directory, a file of keys), and be trusted at the next
/// start or SIGHUP. So is one inside a directory (its own, after symbolic links, or any
/// above it) that any user may write to without the sticky bit: anyone could replace it.
/// And so is one that a user other than root and the one ethcloud started as owns: they may
/// write to it whatever its mode. (Writable by its group is the operator's choice, a group
/// of admins: accepted.)
fn refuse_writable_by_all(path: &Path, meta: &std::fs::Metadata) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let refuse = |reason: String| {
        Err(Error::Trusted {
            path: path.to_owned(),
            line: None,
            reason,
        })
    };
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return refuse(format!(
            "writable by any user (mode {:04o}), who could add a key: run `chmod o-w` on it",
            mode & 0o7777
        ));
    }
    replaceable_or_owned(path, meta, "add a key").map_or(Ok(()), refuse)
}

/// Why another user could read or replace the file or directory at `path`, whose metadata
/// is `meta`, if one could: it could be replaced where it is ([`replaceable_path`]), or its
/// owner is another user ([`foreign_owner`](crate::sys::files::foreign_owner)), who could do
/// what `could` says.
pub(super) fn replaceable_or_owned(
    path: &Path,
    meta: &std::fs::Metadata,
    could: &str,
) -> Option<String> {
    replaceable_path(path).or_else(|| crate::sys::files::foreign_owner(meta, could))
}

/// Why another user could replace the file at `path` (see [`replaceable`]), if one could:
/// checked on the path as given (a symbolic link in it could be replaced where it sits) and
/// as resolved (where the file is). A path that cannot be resolved fails when it is opened.
fn replaceable_path(path: &Path) -> Option<String> {
    let given = std::env::current_dir()
        .map(|dir| dir.join(path))
        .unwrap_or_else(|_| path.to_owned());
    [Some(given), std::fs::canonicalize(path).ok()]
        .into_iter()
        .flatten()
        .find_map(|chain| replaceable(&chain))
}

/// Why the file at the absolute path `path` could be replaced by a user other than root and
/// the one ethcloud started as, if it could: a directory on the way that any user may write
/// to, without the sticky bit; or, in a sticky one (as /tmp), an entry that such a user owns
/// (the **user** switched to too: at a SIGHUP as at the start).
fn replaceable(path: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut entry = path;
    for dir in path.ancestors().skip(1) {
        let Ok(meta) = std::fs::metadata(dir) else {
            entry = dir;
            continue;
        };
        let mode = meta.permissions().mode();
        if mode & 0o002 != 0 {
            if mode & 0o1000 == 0 {
                return Some(format!(
                    "inside {}, which any user may write to (mode {:04o}), so anyone could \
                     replace it: run `chmod o-w` (or `chmod +t`) on that directory",
                    dir.display(),
                    mode & 0o7777
                ));
            }
            let owner = std::fs::symlink_metadata(entry).map(|m| m.uid()).ok();
            if let Some(uid) = owner.filter(|uid| crate::sys::files::is_foreign(*uid)) {
                return Some(format!(
                    "{} is owned by uid {uid}, in {}, which any user may write to: only \
                     root (or the user that starts this daemon) may own what it reads there",
                    entry.display(),
                    dir.display()
                ));
            }
        }
        entry = dir;
    }
    None
}

/// The trust files of directory `dir`: its regular files (links followed), less hidden files
/// and backups, sorted by name.
fn trust_dir_files(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::TrustedRead { path, source }
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error(dir))? {
        let entry = entry.map_err(read_error(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_set_aside(&name) {
            log::info!(
                "trusted keys: skipping {:?} (a hidden file or a backup's name)",
                entry.path()
            );
            continue;
        }
        let path = entry.path();
        // Follows a symbolic link; a dangling one is an error rather than a key quietly lost.
        let meta = std::fs::metadata(&path).map_err(read_error(&path))?;
        if !meta.is_file() {
            continue;
        }
        if files.len() >= MAX_TRUST_DIR_FILES {
            return Err(Error::Trusted {
                path: dir.to_owned(),
                line: None,
                reason: format!("more than {MAX_TRUST_DIR_FILES} files"),
            });
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// Endings of the names that editors, package managers and people give the copies and
/// set-aside versions of a file.
const SET_ASIDE_ENDINGS: [&str; 24] = [
    "~",
    ".bak",
    ".old",
    ".orig",
    ".rej",
    ".swp",
    ".tmp",
    ".disabled",
    ".dpkg-old",
    ".dpkg-new",
    ".dpkg-dist",
    ".dpkg-tmp",
    ".dpkg-bak",
    ".dpkg-backup",
    ".dpkg-remove",
    ".ucf-old",
    ".ucf-new",
    ".ucf-dist",
    ".rpmsave",
    ".rpmnew",
    ".rpmorig",
    ".pacnew",
    ".pacsave",
    ".pacorig",
];

/// Whether a file of a trust directory is skipped: a hidden file, or a name that says it is
/// a copy or set aside (see [`SET_ASIDE_ENDINGS`]; an Emacs auto-save `#name#` too), so that
/// `mv alice alice.bak` or an editor's backup cannot keep a removed key trusted.
fn is_set_aside(name: &str) -> bool {
    name.starts_with('.')
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
        || SET_ASIDE_ENDINGS.iter().any(|end| name.ends_with(end))
}

/// Adds the keys of trust file `path` to `trusted`, named after the file where their line
/// names none.
fn add_trust_file(trusted: &mut TrustedKeys, path: &Path) -> Result<(), Error> {
    let read_error = |source| Error::TrustedRead {
        path: path.to_owned(),
        source,
    };
    let bad = |line: Option<usize>, reason: String| Error::Trusted {
        path: path.to_owned(),
        line,
        reason,
    };
    let file = open_for_reading(path).map_err(read_error)?;
    let meta = file.metadata().map_err(read_error)?;
    let regular = meta.is_file();
    if regular {
        refuse_writable_by_all(path, &meta)?;
    }
    let contents = read_bounded(file, MAX_TRUST_FILE_LEN)
        .map_err(read_error)?
        .ok_or_else(|| bad(None, format!("longer than {MAX_TRUST_FILE_LEN} bytes")))?;
    if contents.is_empty() && !regular {
        // A FIFO whose writer is not there (yet): not the same as a trust file that is empty.
        return Err(bad(
            None,
            "not a regular file, and nothing to read from it".to_owned(),
        ));
    }
    let text = std::str::from_utf8(&contents).map_err(|e| {
        let line = line_at(&contents, e.valid_up_to());
        bad(Some(line), "not UTF-8 text".to_owned())
    })?;
    let default_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned = trusted
        .add_contents(text, &default_name)
        .map_err(|e| bad(Some(e.line), e.reason))?;
    if let Some(line) = cleaned {
        log::warn!(
            "trusted keys {:?}, line {line} (and maybe more): a key's name was longer than {} \
             bytes or held control characters; it is shown shortened, with them replaced",
            path,
            crate::identity::keys::MAX_KEY_NAME_LEN
        );
    }
    Ok(())
}

/// `ethcloud genkey`: writes a new private key (32 bytes from the kernel's random number
/// generator, clamped for X25519) to `out` in text form, with a newline.
///
/// # Errors
///
/// [`Error::Random`] if the kernel gives no random bytes, [`Error::Stdio`] if `out` fails.
pub fn genkey(out: &mut impl Write) -> Result<(), Error> {
    let mut bytes = [0u8; KEY_LEN];
    crate::sys::random::fill(&mut bytes).map_err(Error::Random)?;
    let key = SecretKey::from_random(bytes);
    wipe(&mut bytes);
    let mut line = key.to_text().into_bytes();
    line.push(b'\n');
    let written = out.write_all(&line).and_then(|()| out.flush());
    wipe(&mut line);
    written.map_err(|source| Error::Stdio {
        action: "write to standard output",
        source,
    })
}

/// `ethcloud pubkey`: reads a private key in text form from `input` (at most
/// [`MAX_KEY_INPUT_LEN`] bytes, white space around it ignored) and writes its public key to
/// `out`, with a newline.
///
/// # Errors
///
/// [`Error::KeyInput`] if the input is too long or holds no private key, [`Error::Stdio`] if
/// reading `input` or writing `out` fails.
pub fn pubkey(input: impl Read, out: &mut impl Write) -> Result<(), Error> {
    let mut contents = read_bounded(input, MAX_KEY_INPUT_LEN)
        .map_err(|source| Error::Stdio {
            action: "read from standard input",
            source,
        })?
        .ok_or_else(|| Error::KeyInput {
            reason: format!("longer than {MAX_KEY_INPUT_LEN} bytes"),
        })?;
    let key = parse_secret(&contents);
    wipe(&mut contents);
    let public = key
        .map_err(|reason| Error::KeyInput { reason })?
        .public_key();
    writeln!(out, "{public}")
        .and_then(|()| out.flush())
        .map_err(|source| Error::Stdio {
            action: "write to standard output",
            source,
        })
}

/// A private key from a file's or stream's bytes; the reason, one line, if they hold none.
fn parse_secret(bytes: &[u8]) -> Result<SecretKey, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        "not text: a private key is 44 characters of base64, as ethcloud genkey prints".to_owned()
    })?;
    SecretKey::from_text(text).map_err(|e| e.to_string())
}

/// Everything `reader` gives, or `None` if that is more than `limit` bytes; reads at most
/// `limit + 1` bytes either way.
///
/// Secret files (limits up to 64 KiB) are read into one buffer allocated up front, never
/// moved, and wiped on every way out but the one that hands it over, so no copy of a key is
/// left in freed memory. Only a trust file (public keys) past 64 KiB makes the buffer grow.
fn read_bounded(mut reader: impl Read, limit: u64) -> io::Result<Option<Vec<u8>>> {
    const UP_FRONT: usize = 64 * 1024 + 1;
    let most = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_add(1);
    let mut contents = vec![0u8; most.min(UP_FRONT)];
    let mut len = 0;
    let read = loop {
        if len == contents.len() {
            if len >= most {
                break Ok(());
            }
            contents.resize(len.saturating_mul(2).min(most), 0);
        }
        let Some(room) = contents.get_mut(len..) else {
            break Ok(());
        };
        match reader.read(room) {
            Ok(0) => break Ok(()),
            Ok(n) => len = len.saturating_add(n).min(contents.len()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if let Err(e) = read {
        wipe(&mut contents);
        return Err(e);
    }
    if u64::try_from(len).unwrap_or(u64::MAX) > limit {
        wipe(&mut contents);
        return Ok(None);
    }
    contents.truncate(len);
    Ok(Some(contents))
}

/// Overwrites `bytes` with zeros (key material that is no longer needed).
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    // Keeps the compiler from treating the stores above as dead.
    std::hint::black_box(&*bytes);
}

/// The 1-based line holding byte `offset` of `bytes`.
fn line_at(bytes: &[u8], offset: usize) -> usize {
    let before = bytes.get(..offset).unwrap_or(bytes);
    before.iter().filter(|b| **b == b'\n').count() + 1
}

mod network;
#[cfg(test)]
mod tests;

pub use network::{new_session, read_key, MAX_KEY_FILE_LEN};
