//! The unit tests of the key files: the private key, the trust files and directories, the key
//! tools, and the network key file.

use super::*;
use crate::identity::PublicKey;

/// RFC 7748 section 6.1, Alice's key pair, in text form.
const ALICE_PRIVATE: &str = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";
const ALICE_PUBLIC: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

/// A fresh, empty directory for one test; removed again on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("ethcloud-keyfiles-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn public(seed: u8) -> PublicKey {
    SecretKey::from_random([seed; 32]).public_key()
}

#[test]
fn private_key_and_trust_file_load() {
    let dir = TempDir::new("load");
    let key = dir.write("node.key", format!("{ALICE_PRIVATE}\n").as_bytes(), 0o600);
    let trust = dir.write(
        "peers",
        format!("# the others\n{} beta\n\n{}\n", public(1), public(2)).as_bytes(),
        0o644,
    );
    let (secret, trusted) = load_identity(&key, std::slice::from_ref(&trust)).unwrap();
    assert_eq!(secret.public_key().to_string(), ALICE_PUBLIC);
    assert_eq!(trusted.len(), 2);
    assert_eq!(trusted.name(&public(1)), Some("beta"));
    assert_eq!(trusted.name(&public(2)), Some("peers"));

    let identity = NodeIdentity::load(&key, std::slice::from_ref(&trust)).unwrap();
    assert_eq!(identity.private_key, key);
    assert_eq!(identity.trusted_paths, vec![trust]);
    assert_eq!(identity.trusted, trusted);
    assert_eq!(identity.peer_keys(), 2);
}

/// A trust file every node shares names each node's own key too: the log's count and its
/// "no node will be accepted" warning leave it out, as `ethcloud show` does.
#[test]
fn the_nodes_own_key_in_its_trust_file_is_no_peer_key() {
    let dir = TempDir::new("own");
    let key = dir.write("node.key", format!("{ALICE_PRIVATE}\n").as_bytes(), 0o600);
    let own = dir.write("own", format!("{ALICE_PUBLIC} me\n").as_bytes(), 0o644);
    let identity = NodeIdentity::load(&key, std::slice::from_ref(&own)).unwrap();
    assert_eq!(identity.trusted.len(), 1);
    assert_eq!(identity.peer_keys(), 0);
    let both = dir.write(
        "both",
        format!("{ALICE_PUBLIC} me\n{} beta\n", public(1)).as_bytes(),
        0o644,
    );
    let identity = NodeIdentity::load(&key, std::slice::from_ref(&both)).unwrap();
    assert_eq!(identity.peer_keys(), 1);
}

#[test]
fn private_key_readable_by_group_or_others_is_refused_naming_chmod() {
    let dir = TempDir::new("mode");
    for mode in [0o644, 0o640, 0o604, 0o601, 0o610, 0o666] {
        let key = dir.write("node.key", ALICE_PRIVATE.as_bytes(), mode);
        let err = read_private_key(&key).unwrap_err();
        assert!(
            matches!(err, Error::PrivateKeyMode { .. }),
            "{mode:o}: {err}"
        );
        let text = err.to_string();
        assert!(text.contains(&key.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("chmod 600 {}", key.display())),
            "{text}"
        );
        assert!(text.contains(&format!("mode 0{mode:o}")), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }
    for mode in [0o600, 0o400, 0o700] {
        let key = dir.write("node.key", ALICE_PRIVATE.as_bytes(), mode);
        assert!(read_private_key(&key).is_ok(), "{mode:o}");
    }
}

/// A directory given as a key (a trust directory by mistake) is said to be one: the advice to
/// chmod 600 its mode 0755 would not mend it.
#[test]
fn a_directory_given_as_a_key_file_is_named_as_one() {
    let dir = TempDir::new("keydir");
    let sub = dir.0.join("trusted.d");
    std::fs::create_dir(&sub).unwrap();
    std::fs::set_permissions(&sub, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = read_private_key(&sub).unwrap_err().to_string();
    assert!(
        err.contains("is a directory") && !err.contains("chmod"),
        "{err}"
    );
    let err = read_key(&sub, crate::wire::Token::new(7).unwrap())
        .unwrap_err()
        .to_string();
    assert!(err.contains("is a directory"), "{err}");
}

#[test]
fn a_private_key_inside_a_directory_any_user_may_write_to_is_refused_unless_sticky() {
    // Anyone could put a key they know in its place, and the node would use it.
    let dir = TempDir::new("open-key");
    let open = dir.0.join("open");
    std::fs::create_dir(&open).unwrap();
    let key = open.join("node.key");
    std::fs::write(&key, ALICE_PRIVATE).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = read_private_key(&key).unwrap_err();
    assert!(matches!(err, Error::PrivateKey { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("which any user may write to (mode 0777)"),
        "{err}"
    );
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert!(read_private_key(&key).is_ok());
}

#[test]
fn bad_private_key_files_are_one_line_errors() {
    let dir = TempDir::new("badkey");
    let garbage = dir.write("garbage.key", b"not a key\n", 0o600);
    let err = read_private_key(&garbage).unwrap_err();
    assert!(matches!(err, Error::PrivateKey { .. }), "{err}");
    assert!(err.to_string().contains("garbage.key"), "{err}");
    assert!(err.to_string().contains("ethcloud genkey"), "{err}");
    assert_eq!(err.exit_code(), 2);

    let binary = dir.write("raw.key", &[0xff; 32], 0o600);
    assert!(read_private_key(&binary)
        .unwrap_err()
        .to_string()
        .contains("not text"));

    let huge = vec![b' '; usize::try_from(MAX_PRIVATE_KEY_LEN).unwrap() + 1];
    let huge = dir.write("huge.key", &huge, 0o600);
    let err = read_private_key(&huge).unwrap_err();
    assert!(err.to_string().contains("longer than 65536 bytes"), "{err}");
    // Exactly at the bound is read (and then refused only for its contents).
    let padded = format!(
        "{ALICE_PRIVATE}{}",
        " ".repeat(usize::try_from(MAX_PRIVATE_KEY_LEN).unwrap() - ALICE_PRIVATE.len())
    );
    let padded = dir.write("padded.key", padded.as_bytes(), 0o600);
    assert!(read_private_key(&padded).is_ok());

    let err = read_private_key(&dir.0.join("missing.key")).unwrap_err();
    assert!(matches!(err, Error::PrivateKeyRead { .. }), "{err}");
    assert!(err.to_string().contains("missing.key"), "{err}");
}

#[test]
fn bad_trust_line_is_reported_with_file_and_line() {
    let dir = TempDir::new("badline");
    let key = dir.write("node.key", ALICE_PRIVATE.as_bytes(), 0o600);
    let trust = dir.write(
        "peers",
        format!(
            "# ok\n{}\n\n{} gamma\nhSDwCYkwp1R0i33ctD73Wg2/Og0m\n",
            public(1),
            public(2)
        )
        .as_bytes(),
        0o644,
    );
    let err = load_identity(&key, std::slice::from_ref(&trust)).unwrap_err();
    assert!(
        matches!(err, Error::Trusted { line: Some(5), .. }),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("trusted keys {}, line 5: ", trust.display())),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert_eq!(err.exit_code(), 2);

    let latin1 = dir.write("latin1", b"# ok\n# caf\xe9\n", 0o644);
    let err = read_trusted(&[latin1]).unwrap_err();
    assert!(err.to_string().contains("line 2: not UTF-8 text"), "{err}");
}

#[test]
fn trust_directory_reads_its_files_sorted_named_by_file() {
    let dir = TempDir::new("dir");
    let trust = dir.0.join("trusted.d");
    std::fs::create_dir(&trust).unwrap();
    let write = |name: &str, contents: String| {
        std::fs::write(trust.join(name), contents).unwrap();
    };
    write("alpha", format!("{}\n", public(1)));
    write("beta", format!("# beta's key\n{}\n", public(2)));
    // The later file (by name) wins for a key in two files.
    write(
        "gamma",
        format!("{} gamma-laptop\n{}\n", public(3), public(1)),
    );
    write(".hidden", format!("{}\n", public(4)));
    write("beta~", format!("{}\n", public(5)));
    // Copies and set-aside versions: `mv delta delta.bak` removes delta.
    for name in [
        "delta.bak",
        "delta.disabled",
        "delta.dpkg-old",
        "#delta#",
        "delta.rpmsave",
        // What dpkg's rm_conffile and rpm leave of a conffile a package removes or replaces.
        "delta.dpkg-bak",
        "delta.dpkg-backup",
        "delta.dpkg-remove",
        "delta.rpmorig",
        "delta.pacsave",
    ] {
        write(name, format!("{}\n", public(8)));
    }
    // ... but a name merely holding a dot is a trust file, and so is one named after the key
    // it holds (one file per node, named by its key).
    write("epsilon.key", format!("{}\n", public(9)));
    let named_by_key = (10..60u8)
        .map(public)
        .find(|k| !k.to_string().contains('/'))
        .expect("a key whose text has no slash");
    write(&named_by_key.to_string(), format!("{named_by_key}\n"));
    std::fs::create_dir(trust.join("subdir")).unwrap();
    std::fs::write(trust.join("subdir").join("x"), format!("{}\n", public(6))).unwrap();
    std::os::unix::fs::symlink(trust.join("beta"), trust.join("link")).unwrap();

    let trusted = read_trusted(std::slice::from_ref(&trust)).unwrap();
    assert_eq!(trusted.len(), 5, "{trusted:?}");
    assert_eq!(trusted.name(&public(9)), Some("epsilon.key"));
    assert_eq!(
        trusted.name(&named_by_key).map(str::to_owned),
        Some(named_by_key.to_string())
    );
    assert_eq!(trusted.name(&public(1)), Some("gamma"));
    // "link" sorts after "beta": the link's name wins.
    assert_eq!(trusted.name(&public(2)), Some("link"));
    assert_eq!(trusted.name(&public(3)), Some("gamma-laptop"));
    for hidden in [4, 5, 6, 8] {
        assert!(!trusted.contains(&public(hidden)), "{hidden}");
    }

    // A directory and a file together; an empty directory adds nothing.
    let empty = dir.0.join("empty.d");
    std::fs::create_dir(&empty).unwrap();
    let extra = dir.write("extra", format!("{} extra\n", public(7)).as_bytes(), 0o644);
    let trusted = read_trusted(&[trust.clone(), empty, extra]).unwrap();
    assert_eq!(trusted.len(), 6);
    assert_eq!(trusted.name(&public(7)), Some("extra"));

    // A dangling link is an error naming it, not a key quietly dropped.
    std::os::unix::fs::symlink(trust.join("gone"), trust.join("dangling")).unwrap();
    let err = read_trusted(&[trust]).unwrap_err();
    assert!(matches!(err, Error::TrustedRead { .. }), "{err}");
    assert!(err.to_string().contains("dangling"), "{err}");
}

#[test]
fn trust_files_and_directories_are_bounded() {
    let dir = TempDir::new("bounds");
    let mut big = format!("{} big\n", public(1)).into_bytes();
    big.resize(usize::try_from(MAX_TRUST_FILE_LEN).unwrap() + 1, b'\n');
    let big = dir.write("big", &big, 0o644);
    let err = read_trusted(std::slice::from_ref(&big)).unwrap_err();
    assert!(matches!(err, Error::Trusted { line: None, .. }), "{err}");
    assert!(
        err.to_string().contains("longer than 1048576 bytes"),
        "{err}"
    );

    let many = dir.0.join("many.d");
    std::fs::create_dir(&many).unwrap();
    for i in 0..=MAX_TRUST_DIR_FILES {
        std::fs::write(many.join(format!("n{i:05}")), "# no key\n").unwrap();
    }
    let err = read_trusted(std::slice::from_ref(&many)).unwrap_err();
    assert!(err.to_string().contains("more than 4096 files"), "{err}");
    std::fs::remove_file(many.join("n00000")).unwrap();
    assert!(read_trusted(&[many]).unwrap().is_empty());

    let err = read_trusted(&[PathBuf::from("/dev/null")]).unwrap_err();
    assert!(
        err.to_string().contains("neither a file nor a directory"),
        "{err}"
    );
    let err = read_trusted(&[dir.0.join("missing")]).unwrap_err();
    assert!(matches!(err, Error::TrustedRead { .. }), "{err}");
}

#[test]
fn genkey_prints_a_fresh_key_each_time() {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    genkey(&mut a).unwrap();
    genkey(&mut b).unwrap();
    assert_ne!(a, b);
    let text = String::from_utf8(a).unwrap();
    assert_eq!(text.len(), 45);
    assert!(text.ends_with('\n'));
    let key = SecretKey::from_text(&text).unwrap();
    // Clamped as X25519 asks.
    assert_eq!(key.as_bytes()[0] & 7, 0);
    assert_eq!(key.as_bytes()[31] & 0xc0, 0x40);
}

#[test]
fn pubkey_of_rfc7748_alice_and_of_garbage() {
    let mut out = Vec::new();
    pubkey(format!("{ALICE_PRIVATE}\n").as_bytes(), &mut out).unwrap();
    assert_eq!(out, format!("{ALICE_PUBLIC}\n").into_bytes());

    let err = pubkey(&b"garbage\n"[..], &mut Vec::new()).unwrap_err();
    assert!(matches!(err, Error::KeyInput { .. }), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");

    let long = vec![b' '; usize::try_from(MAX_KEY_INPUT_LEN).unwrap() + 1];
    let err = pubkey(&long[..], &mut Vec::new()).unwrap_err();
    assert!(err.to_string().contains("longer than 4096 bytes"), "{err}");
}

#[test]
fn key_files_are_read_whole_but_never_past_the_bound() {
    let dir = std::env::temp_dir().join(format!("ethcloud-keyfile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = crate::wire::Token::new(7).unwrap();
    let good = dir.join("good.key");
    std::fs::write(&good, [0x42u8; 32]).unwrap();
    assert!(read_key(&good, token).is_ok());
    let huge = dir.join("huge.key");
    std::fs::write(
        &huge,
        vec![b'a'; usize::try_from(MAX_KEY_FILE_LEN).unwrap() + 1],
    )
    .unwrap();
    let err = read_key(&huge, token).unwrap_err();
    assert!(matches!(err, Error::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains("longer than"), "{err}");
    assert!(matches!(
        read_key(&dir.join("missing.key"), token),
        Err(Error::KeyFileRead { .. })
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `f` on a thread and waits at most 5 s for it: `None` if it did not return by then
/// (the thread is left behind; the test fails).
fn within_5s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(5)).ok()
}

#[test]
fn a_fifo_nobody_writes_is_an_error_at_once_not_a_wait_for_ever() {
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("key");
    crate::sys::files::make_fifo(&fifo, 0o600).unwrap();
    let path = fifo.clone();
    let private = within_5s(move || read_private_key(&path).is_err());
    assert_eq!(private, Some(true), "--private-key on a FIFO");
    let path = fifo.clone();
    let network = within_5s(move || network::read_key(&path, crate::wire::Token::MAX).is_err());
    assert_eq!(network, Some(true), "--key-file on a FIFO");
    let path = fifo.clone();
    let trusted = within_5s(move || read_trusted(&[path]).is_err());
    assert_eq!(trusted, Some(true), "--trusted on a FIFO");
    let path = fifo.clone();
    // Not read as an empty configuration (which would start the node on the defaults).
    let config = within_5s(move || crate::config::ConfigFile::read(&path).is_err());
    assert_eq!(config, Some(true), "--config on a FIFO");
}

#[test]
fn a_fifo_with_a_writer_is_read_as_a_file_would_be() {
    // As a shell's process substitution gives one: --key-file <(...).
    let dir = TempDir::new("fifo-written");
    let fifo = dir.0.join("key");
    crate::sys::files::make_fifo(&fifo, 0o600).unwrap();
    let path = fifo.clone();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        // The open blocks until a reader has the FIFO open; a reader that closed it again
        // before the write (it found it empty) makes the write fail: once more, bounded.
        (0..50).any(|_| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|mut w| w.write_all(b"correct horse battery staple\n"))
                .is_ok()
        })
    });
    // The reader opens first or second; either way it reads what the writer wrote, once
    // the writer has it open (a reader that opened first and found no writer yet reads an
    // empty FIFO: tried again, bounded).
    let mut key = None;
    for _ in 0..50 {
        let path = fifo.clone();
        match within_5s(move || network::read_key(&path, crate::wire::Token::MAX)) {
            Some(Ok(k)) => {
                key = Some(k);
                break;
            }
            Some(Err(_)) => std::thread::sleep(std::time::Duration::from_millis(20)),
            None => break,
        }
    }
    assert!(key.is_some(), "the passphrase from a FIFO was not read");
    assert!(writer.join().unwrap());
}

#[test]
fn a_trust_file_whose_name_would_forge_lines_names_its_key_cleaned_and_errors_stay_one_line() {
    let dir = TempDir::new("badname");
    let trust = dir.0.join("trusted.d");
    std::fs::create_dir(&trust).unwrap();
    // A key without a name on its line is named after its file: this one's name would add a
    // line to the status file.
    let file = trust.join("node\npeer 198.18.0.66:1 verified");
    std::fs::write(&file, format!("{ALICE_PUBLIC}\n")).unwrap();
    let trusted = read_trusted(std::slice::from_ref(&trust)).unwrap();
    let key = PublicKey::from_text(ALICE_PUBLIC).unwrap();
    assert_eq!(trusted.name(&key), Some("node?peer 198.18.0.66:1 verified"));
    // A bad line in that file: the error names the file on one line.
    std::fs::write(&file, "not-a-key\n").unwrap();
    let err = read_trusted(std::slice::from_ref(&trust)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Trusted { line: Some(1), .. }),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    assert!(text.contains("node\\npeer"), "{text}");
}

#[test]
fn a_trust_file_or_directory_any_user_may_write_to_is_refused() {
    let dir = TempDir::new("writable");
    let file = dir.write("net.trusted", format!("{}\n", public(1)).as_bytes(), 0o646);
    let err = read_trusted(std::slice::from_ref(&file)).unwrap_err();
    assert!(matches!(err, Error::Trusted { .. }), "{err}");
    assert!(
        err.to_string().contains("writable by any user (mode 0646)"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    // Group-writable or readable by all is the operator's choice (public keys, a group of
    // admins): accepted.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
    assert_eq!(read_trusted(std::slice::from_ref(&file)).unwrap().len(), 1);

    // A directory anyone can add a file to, and a file in a directory that is fine.
    let trust = dir.0.join("trusted.d");
    std::fs::create_dir(&trust).unwrap();
    std::fs::write(trust.join("a"), format!("{}\n", public(2))).unwrap();
    std::fs::set_permissions(&trust, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = read_trusted(std::slice::from_ref(&trust)).unwrap_err();
    assert!(
        err.to_string().contains("writable by any user (mode 0777)"),
        "{err}"
    );
    std::fs::set_permissions(&trust, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(read_trusted(std::slice::from_ref(&trust)).unwrap().len(), 1);
    std::fs::set_permissions(trust.join("a"), std::fs::Permissions::from_mode(0o666)).unwrap();
    let err = read_trusted(std::slice::from_ref(&trust)).unwrap_err();
    assert!(err.to_string().contains("trusted.d/a"), "{err}");
}

#[test]
#[ignore = "needs root (files given to another user); .ci/run passes --include-ignored"]
fn key_files_another_user_owns_are_refused_whatever_their_mode() {
    // A file copied in by a user keeps that user as its owner, who may then rewrite it (a
    // trust file: add a key) or read it (the private key, even at mode 0600).
    const OTHER: u32 = 1000;
    let dir = TempDir::new("owner");
    let chown = |path: &Path, uid: u32| std::os::unix::fs::lchown(path, Some(uid), None).unwrap();
    let key = dir.write("node.key", ALICE_PRIVATE.as_bytes(), 0o600);
    let file = dir.write("net.trusted", format!("{}\n", public(1)).as_bytes(), 0o644);
    let trust = dir.0.join("trusted.d");
    std::fs::create_dir(&trust).unwrap();
    std::fs::write(trust.join("a"), format!("{}\n", public(2))).unwrap();
    assert!(read_private_key(&key).is_ok());
    assert_eq!(
        read_trusted(&[file.clone(), trust.clone()]).unwrap().len(),
        2
    );

    chown(&key, OTHER);
    let err = read_private_key(&key).unwrap_err().to_string();
    assert!(
        err.contains("owned by uid 1000, who could read and replace the node's identity key"),
        "{err}"
    );
    chown(&file, OTHER);
    let err = read_trusted(std::slice::from_ref(&file)).unwrap_err();
    assert!(matches!(err, Error::Trusted { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("owned by uid 1000, who could add a key"),
        "{err}"
    );
    assert_eq!(err.exit_code(), 2);
    // A directory of theirs (they could add a file), and a file of theirs in one of root's.
    chown(&trust, OTHER);
    let err = read_trusted(std::slice::from_ref(&trust)).unwrap_err();
    assert!(err.to_string().contains("owned by uid 1000"), "{err}");
    chown(&trust, 0);
    chown(&trust.join("a"), OTHER);
    let err = read_trusted(std::slice::from_ref(&trust)).unwrap_err();
    assert!(err.to_string().contains("trusted.d/a"), "{err}");
    // Given back to root: accepted again.
    chown(&trust.join("a"), 0);
    chown(&file, 0);
    chown(&key, 0);
    assert!(read_private_key(&key).is_ok());
    assert_eq!(read_trusted(&[file, trust]).unwrap().len(), 2);
}

#[test]
fn a_trust_file_inside_a_directory_any_user_may_write_to_is_refused_unless_sticky() {
    // A 0644 file is fine in itself, but in a 0777 directory anyone can replace it, and
    // a link to it from a trust directory changes nothing.
    let dir = TempDir::new("open-parent");
    let open = dir.0.join("open");
    std::fs::create_dir(&open).unwrap();
    let file = open.join("net.trusted");
    std::fs::write(&file, format!("{}\n", public(1))).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let trust = dir.0.join("trusted.d");
    std::fs::create_dir(&trust).unwrap();
    std::os::unix::fs::symlink(&file, trust.join("net")).unwrap();
    for path in [&file, &trust] {
        let err = read_trusted(std::slice::from_ref(path)).unwrap_err();
        assert!(matches!(err, Error::Trusted { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("which any user may write to (mode 0777)"),
            "{err}"
        );
    }
    // With the sticky bit (as /tmp), only the owner may replace it: accepted.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o1777)).unwrap();
    assert_eq!(read_trusted(std::slice::from_ref(&file)).unwrap().len(), 1);
    assert_eq!(read_trusted(std::slice::from_ref(&trust)).unwrap().len(), 1);
    // ... unless another user owns it there (the name was free, and they took it).
    if crate::sys::privdrop::current_ids().1 == 0 {
        std::os::unix::fs::lchown(&file, Some(65534), None).unwrap();
        let err = read_trusted(std::slice::from_ref(&file)).unwrap_err();
        assert!(err.to_string().contains("is owned by uid 65534"), "{err}");
        std::os::unix::fs::lchown(&file, Some(0), None).unwrap();
    }

    // A link that sits in an open directory can be pointed elsewhere, whatever it points
    // at: refused too.
    let fine = dir.write("fine.trusted", format!("{}\n", public(2)).as_bytes(), 0o644);
    let link = open.join("link.trusted");
    std::os::unix::fs::symlink(&fine, &link).unwrap();
    assert_eq!(read_trusted(std::slice::from_ref(&fine)).unwrap().len(), 1);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = read_trusted(std::slice::from_ref(&link)).unwrap_err();
    assert!(
        err.to_string()
            .contains("which any user may write to (mode 0777)"),
        "{err}"
    );
}

/// Gives its bytes a few at a time, then perhaps an error: how a pipe or a slow disk reads.
struct Trickle<'a> {
    left: &'a [u8],
    step: usize,
    fail_at_end: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left.is_empty() && self.fail_at_end {
            return Err(io::Error::other("disk gone"));
        }
        let n = self.step.min(buf.len()).min(self.left.len());
        let (now, rest) = self.left.split_at(n);
        buf[..n].copy_from_slice(now);
        self.left = rest;
        Ok(n)
    }
}

#[test]
fn bounded_reads_take_up_to_the_limit_and_refuse_one_byte_more() {
    let trickle = |left, fail_at_end| Trickle {
        left,
        step: 7,
        fail_at_end,
    };
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for (limit, len) in [
        (64, 0),
        (64, 63),
        (64, 64),
        (65_536, 65_536),
        (1 << 20, 200_001),
    ] {
        let got = read_bounded(trickle(&data[..len], false), limit).unwrap();
        assert_eq!(got.as_deref(), Some(&data[..len]), "{len} of {limit}");
    }
    for (limit, len) in [(64, 65), (65_536, 65_537), (100_000, 300_000)] {
        let got = read_bounded(trickle(&data[..len], false), limit).unwrap();
        assert!(got.is_none(), "{len} of {limit}");
    }
    // Something endless stops one byte past the limit.
    assert!(read_bounded(io::repeat(1), 4096).unwrap().is_none());
    let err = read_bounded(trickle(&data[..10], true), 64).unwrap_err();
    assert_eq!(err.to_string(), "disk gone");
}
