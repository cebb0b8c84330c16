//! [`Error`]: everything that can stop ethcloud before or outside the packet path.
//!
//! Owns the start-up and OS-edge failures (bad command-line values, tap, socket, epoll,
//! signals, timers, name resolution) and their one-line messages. It does not cover packets:
//! a bad packet is a `stats::DropReason`, counted by the node and never fatal.
//!
//! Each variant carries its context. `Display` is written by hand: one line, lower case, no
//! final period, the OS error if there is one, and a hint on how to fix it. `main` prints it as
//! `ethcloud: {err}` and exits with [`Error::exit_code`].

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::wire::Token;

/// Exit code for a failure at run time or start-up (tap, socket, name resolution).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad command line (the same code clap uses for its own usage errors).
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
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. }
            | Error::OpenTap { source, .. }
            | Error::Bind { source, .. }
            | Error::DeviceRead { source, .. } => Some(source),
            Error::LocalAddrs(source)
            | Error::Epoll(source)
            | Error::Signal(source)
            | Error::Timer(source)
            | Error::SocketRecv(source) => Some(source),
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
        ];
        for err in errors {
            let text = err.to_string();
            assert!(!text.contains('\n'), "{text}");
            assert!(!text.ends_with('.'), "{text}");
            assert!(text.starts_with(|c: char| c.is_lowercase()), "{text}");
        }
    }
}
