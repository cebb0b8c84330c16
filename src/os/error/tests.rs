//! The unit tests of [`Error`](super::Error): each message in one line, with its hint, and
//! the exit codes.

use super::*;

#[test]
fn open_tap_eperm_names_the_device_and_the_fix() {
    let err = Error::OpenTap {
        name: "ethcloud%d".to_owned(),
        source: io::Error::from_raw_os_error(libc::EPERM),
    };
    assert_eq!(
        err.to_string(),
        "cannot create tap device ethcloud%d: Operation not permitted \
         (needs root or CAP_NET_ADMIN and /dev/net/tun)"
    );
    assert_eq!(err.exit_code(), EXIT_FAILURE);
}

#[test]
fn bind_eaddrnotavail_says_address_is_not_local() {
    let addr: SocketAddr = "198.18.255.254:3210".parse().unwrap();
    let err = Error::Bind {
        addr,
        source: io::Error::from_raw_os_error(libc::EADDRNOTAVAIL),
    };
    let text = err.to_string();
    assert!(
        text.starts_with("cannot listen on 198.18.255.254:3210: "),
        "{text}"
    );
    assert!(
        text.ends_with("(198.18.255.254 is not an address of this host)"),
        "{text}"
    );
    assert!(!text.contains("os error"), "{text}");
}

#[test]
fn usage_errors_exit_2_and_system_errors_exit_1() {
    let usage = Error::InvalidTimeout {
        option: "--mac-timeout",
        min: 1,
    };
    assert_eq!(usage.exit_code(), EXIT_USAGE);
    let system = Error::Epoll(io::Error::from_raw_os_error(libc::EMFILE));
    assert_eq!(system.exit_code(), EXIT_FAILURE);
}

#[test]
fn key_file_errors_are_config_errors_and_name_the_fix() {
    let mode = Error::PrivateKeyMode {
        path: PathBuf::from("/etc/ethcloud/vpn0.key"),
        mode: 0o100640,
    };
    assert_eq!(
        mode.to_string(),
        "private key file /etc/ethcloud/vpn0.key is open to others (mode 0640): run \
         `chmod 600 /etc/ethcloud/vpn0.key` and use a new key if others may have read it"
    );
    assert_eq!(mode.exit_code(), EXIT_USAGE);
    let stdio = Error::Stdio {
        action: "read from standard input",
        source: io::Error::from_raw_os_error(libc::EIO),
    };
    assert_eq!(stdio.exit_code(), EXIT_FAILURE);
    let whole_file = Error::Trusted {
        path: PathBuf::from("/etc/ethcloud/t.d"),
        line: None,
        reason: "more than 4096 files".to_owned(),
    };
    assert_eq!(
        whole_file.to_string(),
        "trusted keys /etc/ethcloud/t.d: more than 4096 files"
    );
}

#[test]
fn every_message_is_one_line_without_final_period() {
    let errors = [
        Error::InvalidToken {
            value: "abc".to_owned(),
            reason: "not a number",
        },
        Error::InvalidListen {
            value: "x".to_owned(),
            reason: "missing port",
        },
        Error::Resolve {
            peer: "nonexistent.invalid:3210".to_owned(),
            source: io::Error::other("name not known"),
        },
        Error::SocketRecv(io::Error::from_raw_os_error(libc::EBADF)),
        Error::PrivateKeyMode {
            path: PathBuf::from("/etc/ethcloud/vpn0.key"),
            mode: 0o100644,
        },
        Error::Trusted {
            path: PathBuf::from("/etc/ethcloud/vpn0.trusted"),
            line: Some(3),
            reason: "a key is base64".to_owned(),
        },
        Error::Stdio {
            action: "write to standard output",
            source: io::Error::from_raw_os_error(libc::EPIPE),
        },
    ];
    // Paths with a newline in them (a TOML string may hold one) stay on one line too.
    let odd = || PathBuf::from("/etc/ethcloud/a\nb");
    let read = || io::Error::from_raw_os_error(libc::ENOENT);
    let odd_paths = [
        Error::KeyFileRead {
            path: odd(),
            source: read(),
        },
        Error::KeyFile {
            path: odd(),
            reason: "too short".to_owned(),
        },
        Error::PrivateKeyRead {
            path: odd(),
            source: read(),
        },
        Error::PrivateKeyMode {
            path: odd(),
            mode: 0o100644,
        },
        Error::PrivateKey {
            path: odd(),
            reason: "no key".to_owned(),
        },
        Error::ConfigRead {
            path: odd(),
            source: read(),
        },
        Error::ConfigMode {
            path: odd(),
            reason: "writable by others".to_owned(),
        },
        Error::ConfigParse {
            path: odd(),
            line: 2,
            key: None,
            message: "expected a value".to_owned(),
        },
    ];
    for err in errors.into_iter().chain(odd_paths) {
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(!text.ends_with('.'), "{text}");
        assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
    }
}
