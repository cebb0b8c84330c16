//! The one-line messages of [`Error`] and [`HookFailure`]: lower case, no final period, the
//! OS error without std's ` (os error N)` suffix, and a hint on how to fix it in parentheses.
//!
//! Owns the wording only: which error is which, and its exit code, is `mod.rs`'s.

use std::fmt;
use std::io;
use std::net::SocketAddr;

use super::{Error, HookFailure};
use crate::wire::Token;

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookFailure::Spawn(source) => write!(f, "cannot run /bin/sh: {}", OsError(source)),
            HookFailure::Wait(source) => {
                write!(f, "cannot be waited for ({})", OsError(source))
            }
            HookFailure::Status(status) => match status.code() {
                Some(code) => write!(f, "exited with status {code}"),
                None => write!(f, "was killed ({status})"),
            },
            HookFailure::Timeout(limit) => {
                write!(f, "still running after {} s, killed", limit.as_secs())
            }
        }
    }
}

/// Displays an [`io::Error`] without std's ` (os error N)` suffix, so that our own hint in
/// parentheses can follow it.
struct OsError<'a>(&'a io::Error);

impl fmt::Display for OsError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.to_string();
        match self.0.raw_os_error() {
            Some(code) => {
                let suffix = format!(" (os error {code})");
                f.write_str(text.strip_suffix(suffix.as_str()).unwrap_or(&text))
            }
            None => f.write_str(&text),
        }
    }
}

/// The family `addr` stands for: an IPv4-mapped IPv6 address (a socket bound to one reaches
/// IPv4 peers only) counts as IPv4.
fn family(addr: &SocketAddr) -> &'static str {
    if addr.ip().to_canonical().is_ipv4() {
        "IPv4"
    } else {
        "IPv6"
    }
}

fn tap_hint(name: &str, source: &io::Error) -> String {
    match source.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => {
            "(/dev/net/tun is missing: load the tun module with `modprobe tun`, \
             or pass /dev/net/tun into the container)"
                .to_owned()
        }
        Some(libc::EBUSY) => format!("({name} is in use by another program)"),
        Some(libc::EINVAL) => {
            format!(
                "(is {name} an existing interface that is not a tap device, or a tap made \
                 with another number of queues: one for --threads 1, multi_queue for more?)"
            )
        }
        _ => "(needs root or CAP_NET_ADMIN and /dev/net/tun)".to_owned(),
    }
}

fn bind_hint(addr: &SocketAddr, source: &io::Error) -> String {
    match source.raw_os_error() {
        Some(libc::EADDRNOTAVAIL) => format!("({} is not an address of this host)", addr.ip()),
        Some(libc::EADDRINUSE) => format!(
            "(port {} is in use by another program; choose another with --listen)",
            addr.port()
        ),
        Some(libc::EACCES | libc::EPERM) => {
            "(ports below 1024 need root or CAP_NET_BIND_SERVICE)".to_owned()
        }
        Some(libc::EAFNOSUPPORT) => format!(
            "(IPv6 is disabled on this host; listen on 0.0.0.0:{} instead)",
            addr.port()
        ),
        _ => "(check the --listen address)".to_owned(),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidToken { value, reason } => write!(
                f,
                "invalid token {value:?}: {reason} (expected a decimal number from 0 to {}, \
                 which fits in the 7 token bytes)",
                Token::MAX
            ),
            Error::InvalidListen { value, reason } => write!(
                f,
                "invalid listen address {value:?}: {reason} (expected ip:port, \
                 e.g. 0.0.0.0:3210 or [::]:3210)"
            ),
            Error::InvalidPeer { value, reason } => write!(
                f,
                "invalid peer address {value:?}: {reason} (expected host:port, \
                 e.g. 198.18.0.1:3210, [fd00::1]:3210 or vpn.example.org:3210)"
            ),
            Error::UnreachablePeer { peer, listen } => write!(
                f,
                "peer address {peer} is {} but the socket on {listen} reaches only {} peers \
                 (listen on [::]:{} to reach both)",
                family(peer),
                family(listen),
                listen.port()
            ),
            Error::InvalidDeviceName { name, reason } => write!(
                f,
                "invalid device name {name:?}: {reason} (e.g. ethcloud0, or ethcloud%d to let \
                 the kernel pick the number)"
            ),
            Error::InvalidTimeout { option, min: 1 } => {
                write!(f, "invalid {option}: must be at least 1 second")
            }
            Error::InvalidTimeout { option, min } => {
                write!(f, "invalid {option}: must be at least {min} seconds")
            }
            Error::TimeoutTooLong { option } => write!(
                f,
                "invalid {option}: must be at most {} seconds (136 years)",
                crate::cli::MAX_TIMEOUT_SECS
            ),
            Error::Resolve { peer, source } => write!(
                f,
                "cannot resolve peer address {peer}: {} (check the name and the resolver)",
                OsError(source)
            ),
            Error::NoUsableAddress { peer, listen } => write!(
                f,
                "cannot resolve peer address {peer}: no {} address found (the socket on \
                 {listen} reaches only {} peers; listen on [::]:{} to reach both)",
                family(listen),
                family(listen),
                listen.port()
            ),
            Error::OpenTap { name, source } => write!(
                f,
                "cannot create tap device {name}: {} {}",
                OsError(source),
                tap_hint(name, source)
            ),
            Error::Bind { addr, source } => write!(
                f,
                "cannot listen on {addr}: {} {}",
                OsError(source),
                bind_hint(addr, source)
            ),
            Error::LocalAddrs(source) => write!(
                f,
                "cannot list the local addresses: {} (give a specific --listen address)",
                OsError(source)
            ),
            Error::Epoll(source) => write!(
                f,
                "the event loop (epoll or its eventfd) failed: {} (out of file descriptors or \
                 memory?)",
                OsError(source)
            ),
            Error::Signal(source) => write!(
                f,
                "cannot set up signal handling: {} (out of file descriptors or memory?)",
                OsError(source)
            ),
            Error::Timer(source) => write!(
                f,
                "the loop's timer (timerfd) failed: {} (out of file descriptors or memory?)",
                OsError(source)
            ),
            Error::DeviceRead { name, source } => write!(
                f,
                "cannot read from tap device {name}: {} (was the device deleted?)",
                OsError(source)
            ),
            Error::SocketRecv(source) => write!(
                f,
                "cannot receive from the UDP socket: {} (restart ethcloud)",
                OsError(source)
            ),
            Error::InvalidLimit { option } => write!(f, "invalid {option}: must be at least 1"),
            Error::InvalidMtu { value, min, max } => write!(
                f,
                "invalid --mtu {value}: must be from {min} to {max} (leave it out for the \
                 underlay's default, 1450 over IPv4 or 1430 over IPv6, 41 less with a key)"
            ),
            Error::InvalidPath { option, reason } => write!(f, "invalid {option}: {reason}"),
            Error::InvalidCombination { reason } => f.write_str(reason),
            Error::InvalidRekeyAfter { value, min, max } => write!(
                f,
                "invalid --rekey-after {value}: must be between {min} and {max} seconds"
            ),
            Error::InvalidThreads { value } => write!(
                f,
                "invalid --threads {value}: must be between 1 and {}",
                crate::cli::MAX_THREADS
            ),
            Error::Lanes(reason) => write!(f, "cannot start the --threads lanes: {reason}"),
            Error::LaneEnded { index } => write!(
                f,
                "--threads lane {index} stopped (see the error before); stopping, because \
                 the flows on its tap queue would be lost"
            ),
            Error::InvalidBusyPoll { value } => write!(
                f,
                "invalid --busy-poll {value}: must be at most 100000 microseconds (0 turns it off)"
            ),
            Error::KeyFileRead { path, source } => write!(
                f,
                "cannot read key file {}: {} (check the --key-file path and its permissions)",
                OnOneLine(path),
                OsError(source)
            ),
            Error::KeyFile { path, reason } => write!(
                f,
                "key file {}: {reason} (use 32 raw bytes, 64 hex digits, or a passphrase)",
                OnOneLine(path),
            ),
            Error::Random(source) => write!(
                f,
                "cannot read the system's random number generator: {}",
                OsError(source)
            ),
            Error::PrivateKeyRead { path, source } => write!(
                f,
                "cannot read private key file {}: {} (check the --private-key path)",
                OnOneLine(path),
                OsError(source)
            ),
            Error::PrivateKeyMode { path, mode } => write!(
                f,
                "private key file {} is open to others (mode {:04o}): run `chmod 600 {}` \
                 and use a new key if others may have read it",
                OnOneLine(path),
                mode & 0o7777,
                OnOneLine(path),
            ),
            Error::PrivateKey { path, reason } => write!(
                f,
                "private key file {}: {reason} (make one with `umask 077; ethcloud genkey > FILE`)",
                OnOneLine(path),
            ),
            Error::TrustedRead { path, source } => write!(
                f,
                "cannot read trusted keys {}: {} (check the --trusted path)",
                OnOneLine(path),
                OsError(source)
            ),
            Error::TrustedAfterDrop { user, source } => write!(
                f,
                "as {user}, {source}: SIGHUP could not revoke a key, so ethcloud does not start \
                 (make the --trusted files and directories readable by that user's group, \
                 e.g. chgrp -R GROUP PATH && chmod -R g+rX PATH, or run without --user)"
            ),
            Error::StatsAfterDrop { user, path, source } => write!(
                f,
                "as {user}, cannot write the --stats-file {} ({}): give that user a \
                 directory it may write to (under the systemd unit, e.g. \
                 ExecStartPre=+/bin/chown {user} /run/ethcloud/%i in a drop-in), or run \
                 without --user",
                OnOneLine(path),
                OsError(source)
            ),
            Error::Trusted { path, line, reason } => {
                write!(f, "trusted keys {}", OnOneLine(path))?;
                if let Some(line) = line {
                    write!(f, ", line {line}")?;
                }
                write!(f, ": {reason}")
            }
            Error::KeyInput { reason } => write!(
                f,
                "standard input: {reason} (give a private key, e.g. `ethcloud pubkey < FILE`)"
            ),
            Error::Stdio { action, source } => {
                write!(f, "cannot {action}: {}", OsError(source))
            }
            Error::ConfigRead { path, source } => write!(
                f,
                "cannot read config file {}: {} (check the --config path)",
                OnOneLine(path),
                OsError(source)
            ),
            Error::ConfigMode { path, reason } => {
                write!(f, "config file {}: {reason}", OnOneLine(path))
            }
            Error::ConfigParse {
                path,
                line,
                key,
                message,
            } => {
                write!(f, "config file {}, line {line}: ", OnOneLine(path))?;
                if let Some(key) = key {
                    write!(f, "key {key}: ")?;
                }
                f.write_str(message)
            }
            Error::ConfigValue {
                path,
                line,
                key,
                source,
            } => write!(
                f,
                "config file {}, line {line}: key {key}: {source}",
                OnOneLine(path),
            ),
            // (The name goes into the hint only when it could be one: quoted, it may hold
            // anything, a newline included.)
            Error::UnknownUser { name } if is_plain_name(name) => write!(
                f,
                "invalid --user {name:?}: no such user (create it, e.g. with `adduser --system \
                 {name}`, or give a number)"
            ),
            Error::UnknownUser { name } => write!(f, "invalid --user {name:?}: no such user"),
            Error::UnknownGroup { name } if is_plain_name(name) => write!(
                f,
                "invalid --group {name:?}: no such group (create it, e.g. with `addgroup --system \
                 {name}`, or give a number)"
            ),
            Error::UnknownGroup { name } => write!(f, "invalid --group {name:?}: no such group"),
            Error::UserLookup { name, source } => write!(
                f,
                "cannot look up user or group {name:?}: {} (check /etc/nsswitch.conf)",
                OsError(source)
            ),
            Error::DropPrivileges { to, source } => write!(
                f,
                "cannot switch to {to}: {} (--user and --group need ethcloud to start as root, \
                 or with CAP_SETUID and CAP_SETGID)",
                OsError(source)
            ),
            Error::SetUpDevice {
                name,
                action,
                source,
            } => write!(
                f,
                "tap device {name}: cannot {action}: {} (needs root or CAP_NET_ADMIN)",
                OsError(source)
            ),
            Error::Hook {
                option,
                command,
                failure,
            } => write!(f, "{option} command {command:?} {failure}"),
        }
    }
}

/// A path as `Display` shows it, unless it holds a control character (a file in a trust
/// directory may be named anything, a newline included): then quoted and escaped, so that the
/// error stays one line.
struct OnOneLine<'a>(&'a std::path::Path);

impl fmt::Display for OnOneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.display().to_string();
        if shown.chars().any(char::is_control) {
            write!(f, "{shown:?}")
        } else {
            f.write_str(&shown)
        }
    }
}

/// Whether `name` could be a user or group name as adduser takes it (letters, digits, `_`,
/// `-`, `.`, not starting with `-`), and so may go into a hint unquoted.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
