//! [`Error`]: everything that can stop ethcloud before or outside the packet path.
//!
//! Owns the start-up and OS-edge failures (bad command-line values, the config file, the key
//! files, tap, socket, epoll, signals, timers, name resolution, the interface set-up, the
//! `--ifup` and `--ifdown` commands, dropping privileges, the key tools' standard input and
//! output) and their one-line messages. It does not cover packets:
//! a bad packet is a `stats::DropReason`, counted by the node and never fatal.
//!
//! Each variant carries its context. `Display` is written by hand: one line, lower case, no
//! final period, the OS error if there is one, and a hint on how to fix it. `main` prints it as
//! `ethcloud: {err}` and exits with [`Error::exit_code`].

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

use crate::wire::Token;

/// Exit code for a failure at run time or start-up (tap, socket, name resolution).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad command line or config file (the same code clap uses for its own usage
/// errors).
pub const EXIT_USAGE: u8 = 2;

/// A failure at start-up or at an OS edge.
#[derive(Debug)]
pub enum Error {
    /// `--token` is not a decimal number below 2^56.
    InvalidToken {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--listen` is not `ip:port`.
    InvalidListen {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--connect` value is not `host:port`.
    InvalidPeer {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--connect` IP address of a family the listening socket cannot reach.
    UnreachablePeer {
        /// The peer address.
        peer: SocketAddr,
        /// The listen address that rules it out.
        listen: SocketAddr,
    },
    /// `--device` is not a valid interface name.
    InvalidDeviceName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timeout option is zero.
    InvalidTimeout {
        /// The option, e.g. `--peer-timeout`.
        option: &'static str,
    },
    /// A `--connect` name could not be resolved.
    Resolve {
        /// The value as given (`host:port`).
        peer: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// A `--connect` name resolved, but to no address the socket can reach.
    NoUsableAddress {
        /// The value as given (`host:port`).
        peer: String,
        /// The listen address that rules the resolved addresses out.
        listen: SocketAddr,
    },
    /// The tap device could not be created.
    OpenTap {
        /// The requested name (maybe a template such as `ethcloud%d`).
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The UDP socket could not be created or bound.
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The host's addresses could not be listed.
    LocalAddrs(io::Error),
    /// epoll could not be set up or waited on.
    Epoll(io::Error),
    /// The signalfd could not be set up or read.
    Signal(io::Error),
    /// The timerfd could not be set up or armed.
    Timer(io::Error),
    /// Reading from the tap device failed for good (e.g. the device was deleted).
    DeviceRead {
        /// The device name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Receiving from the UDP socket failed for good.
    SocketRecv(io::Error),
    /// A size limit (`--max-peers`, `--broadcast-limit`, ...) is zero.
    InvalidLimit {
        /// The option, e.g. `--max-peers`.
        option: &'static str,
    },
    /// `--mtu` is outside what an Ethernet tap and one UDP datagram allow.
    InvalidMtu {
        /// The value as given.
        value: u32,
        /// The smallest MTU allowed.
        min: u32,
        /// The largest MTU allowed.
        max: u32,
    },
    /// A command-line option that needs another one, or excludes it.
    InvalidCombination {
        /// What is wrong, naming the options.
        reason: &'static str,
    },
    /// The `--config` file could not be read.
    ConfigRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `--rekey-after` is out of range.
    InvalidRekeyAfter {
        /// The value as given, in seconds.
        value: u64,
        /// The smallest value allowed, in seconds.
        min: u64,
        /// The largest value allowed, in seconds.
        max: u64,
    },
    /// `--busy-poll` is out of range.
    InvalidBusyPoll {
        /// The value as given, in microseconds.
        value: u64,
    },
    /// The `--key-file` cannot be read.
    KeyFileRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--key-file` holds no usable key.
    KeyFile {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The OS random number generator failed.
    Random(io::Error),
    /// The `--private-key` file cannot be opened or read.
    PrivateKeyRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--private-key` file lets its group or others read it.
    PrivateKeyMode {
        /// The path as given.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The `--private-key` file holds no usable private key.
    PrivateKey {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--trusted` file or directory cannot be opened or read.
    TrustedRead {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A `--trusted` file or directory holds something other than trusted public keys.
    Trusted {
        /// The file or directory.
        path: PathBuf,
        /// The 1-based line of the problem, when it is about one line.
        line: Option<usize>,
        /// What is wrong, one line.
        reason: String,
    },
    /// The private key given to `ethcloud pubkey` on standard input is not one.
    KeyInput {
        /// What is wrong with it.
        reason: String,
    },
    /// Standard input or output failed (`ethcloud genkey` and `ethcloud pubkey`).
    Stdio {
        /// `read from standard input` or `write to standard output`.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The `--config` file is not valid TOML, has an unknown key, or a value of the wrong type.
    ConfigParse {
        /// The path as given.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// The key concerned, when known.
        key: Option<String>,
        /// What is wrong, one line.
        message: String,
    },
    /// A value from the `--config` file failed the check its command-line option has.
    ConfigValue {
        /// The path as given.
        path: PathBuf,
        /// The 1-based line of the key.
        line: usize,
        /// The key.
        key: &'static str,
        /// The error the value gave.
        source: Box<Error>,
    },
    /// `--user` names no user (and is not a number).
    UnknownUser {
        /// The name as given.
        name: String,
    },
    /// `--group` names no group (and is not a number).
    UnknownGroup {
        /// The name as given.
        name: String,
    },
    /// The user or group database could not be read.
    UserLookup {
        /// The user or group name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Switching to `--user` / `--group` failed.
    DropPrivileges {
        /// `user:group` as resolved.
        to: String,
        /// The OS error.
        source: io::Error,
    },
    /// Setting the tap device's MTU or bringing it up failed.
    SetUpDevice {
        /// The device name.
        name: String,
        /// What was being done, e.g. `set the MTU to 1450`.
        action: String,
        /// The OS error.
        source: io::Error,
    },
    /// An `--ifup` or `--ifdown` command could not be started or failed.
    Hook {
        /// `--ifup` or `--ifdown`.
        option: &'static str,
        /// The command as given.
        command: String,
        /// What went wrong.
        failure: HookFailure,
    },
}

/// How an `--ifup` / `--ifdown` command failed.
#[derive(Debug)]
pub enum HookFailure {
    /// `/bin/sh` could not be started.
    Spawn(io::Error),
    /// The command exited unsuccessfully.
    Status(ExitStatus),
    /// The command did not finish in time and was killed.
    Timeout(std::time::Duration),
}

impl fmt::Display for HookFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HookFailure::Spawn(source) => write!(f, "cannot run /bin/sh: {}", OsError(source)),
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

impl Error {
    /// The process exit code for this error: [`EXIT_USAGE`] for a bad command line,
    /// [`EXIT_FAILURE`] for everything else.
    pub fn exit_code(&self) -> u8 {
        if self.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        }
    }

    /// Whether the command line was at fault (as opposed to the system).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken { .. }
                | Error::InvalidListen { .. }
                | Error::InvalidPeer { .. }
                | Error::UnreachablePeer { .. }
                | Error::InvalidDeviceName { .. }
                | Error::InvalidTimeout { .. }
                | Error::InvalidLimit { .. }
                | Error::InvalidMtu { .. }
                | Error::InvalidCombination { .. }
                | Error::ConfigRead { .. }
                | Error::KeyFileRead { .. }
                | Error::InvalidBusyPoll { .. }
                | Error::InvalidRekeyAfter { .. }
                | Error::KeyFile { .. }
                | Error::PrivateKeyRead { .. }
                | Error::PrivateKeyMode { .. }
                | Error::PrivateKey { .. }
                | Error::TrustedRead { .. }
                | Error::Trusted { .. }
                | Error::KeyInput { .. }
                | Error::ConfigParse { .. }
                | Error::ConfigValue { .. }
                | Error::UnknownUser { .. }
                | Error::UnknownGroup { .. }
        )
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

fn family(addr: &SocketAddr) -> &'static str {
    if addr.is_ipv4() {
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
            format!("(is {name} an existing interface that is not a tap device?)")
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
            Error::InvalidTimeout { option } => {
                write!(f, "invalid {option}: must be at least 1 second")
            }
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
                "epoll failed: {} (out of file descriptors or memory?)",
                OsError(source)
            ),
            Error::Signal(source) => write!(
                f,
                "cannot set up signal handling: {} (out of file descriptors or memory?)",
                OsError(source)
            ),
            Error::Timer(source) => write!(
                f,
                "cannot set up the timer: {} (out of file descriptors or memory?)",
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
                 underlay's default, 1450 over IPv4 or 1430 over IPv6)"
            ),
            Error::InvalidCombination { reason } => f.write_str(reason),
            Error::InvalidRekeyAfter { value, min, max } => write!(
                f,
                "invalid --rekey-after {value}: must be between {min} and {max} seconds"
            ),
            Error::InvalidBusyPoll { value } => write!(
                f,
                "invalid --busy-poll {value}: must be at most 100000 microseconds (0 turns it off)"
            ),
            Error::KeyFileRead { path, source } => write!(
                f,
                "cannot read key file {}: {} (check the --key-file path and its permissions)",
                path.display(),
                OsError(source)
            ),
            Error::KeyFile { path, reason } => write!(
                f,
                "key file {}: {reason} (use 32 raw bytes, 64 hex digits, or a passphrase)",
                path.display()
            ),
            Error::Random(source) => write!(
                f,
                "cannot read the system's random number generator: {}",
                OsError(source)
            ),
            Error::PrivateKeyRead { path, source } => write!(
                f,
                "cannot read private key file {}: {} (check the --private-key path)",
                path.display(),
                OsError(source)
            ),
            Error::PrivateKeyMode { path, mode } => write!(
                f,
                "private key file {} can be read by others (mode {:04o}): run `chmod 600 {}` \
                 and use a new key if others may have read it",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
            Error::PrivateKey { path, reason } => write!(
                f,
                "private key file {}: {reason} (make one with `umask 077; ethcloud genkey > FILE`)",
                path.display()
            ),
            Error::TrustedRead { path, source } => write!(
                f,
                "cannot read trusted keys {}: {} (check the --trusted path)",
                path.display(),
                OsError(source)
            ),
            Error::Trusted { path, line, reason } => {
                write!(f, "trusted keys {}", path.display())?;
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
                path.display(),
                OsError(source)
            ),
            Error::ConfigParse {
                path,
                line,
                key,
                message,
            } => {
                write!(f, "config file {}, line {line}: ", path.display())?;
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
                path.display()
            ),
            Error::UnknownUser { name } => write!(
                f,
                "invalid --user {name:?}: no such user (create it, e.g. with `adduser --system \
                 {name}`, or give a number)"
            ),
            Error::UnknownGroup { name } => write!(
                f,
                "invalid --group {name:?}: no such group (create it, e.g. with `addgroup --system \
                 {name}`, or give a number)"
            ),
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. }
            | Error::ConfigRead { source, .. }
            | Error::UserLookup { source, .. }
            | Error::DropPrivileges { source, .. }
            | Error::SetUpDevice { source, .. }
            | Error::OpenTap { source, .. }
            | Error::Bind { source, .. }
            | Error::DeviceRead { source, .. }
            | Error::PrivateKeyRead { source, .. }
            | Error::TrustedRead { source, .. }
            | Error::Stdio { source, .. } => Some(source),
            Error::LocalAddrs(source)
            | Error::Epoll(source)
            | Error::Signal(source)
            | Error::Timer(source)
            | Error::SocketRecv(source) => Some(source),
            Error::ConfigValue { source, .. } => Some(source.as_ref()),
            Error::Hook {
                failure: HookFailure::Spawn(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
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
            "private key file /etc/ethcloud/vpn0.key can be read by others (mode 0640): run \
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
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        }
    }
}
