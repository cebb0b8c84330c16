//! [`Args::check`]: the raw command line and the `--config` file turned into [`Settings`],
//! option by option: the command-line value, else the file's, else the default, then checked.
//!
//! Owns the precedence rule, the defaults being applied and every value check that spans
//! options (`--group` needs `--user`, a literal `--connect` address the listen socket can
//! reach, `--private-key` with `--trusted` but without `--key-file`, the MTU with and without
//! a key), and blaming a bad file value on its key and line. It opens nothing but the config
//! file (the key files are read by `main`) and resolves no names; the syntax of a single
//! address or token is `addr`'s.

use std::net::SocketAddr;
use std::time::Duration;

use log::LevelFilter;

use super::{
    default_mtu, parse_listen, parse_peer, parse_token, Args, Host, KernelPathMode, Settings,
    DEFAULT_BUSY_POLL_USECS, DEFAULT_DEVICE, DEFAULT_LISTEN, DEFAULT_MAC_TIMEOUT_SECS,
    DEFAULT_PEER_TIMEOUT_SECS, DEFAULT_REKEY_AFTER_SECS, DEFAULT_RELAY_RATE_MBIT,
    DEFAULT_STATS_INTERVAL_SECS, DEFAULT_THREADS, DEFAULT_TOKEN, MAX_BUSY_POLL_USECS, MAX_CONNECT,
    MAX_MTU, MAX_REKEY_AFTER_SECS, MAX_RELAY_RATE_MBIT, MAX_THREADS, MAX_TIMEOUT_SECS, MIN_MTU,
    MIN_REKEY_AFTER_SECS,
};
use crate::config::{ConfigFile, FileValues};
use crate::crypto;
use crate::error::Error;
use crate::status::StatsFormat;
use crate::sys::tap;
use crate::sys::udp::Families;
use crate::{peers, switch};

/// Where a value came from: the command line (or the built-in default), or a key of the
/// config file, so that an error can point at the right place.
#[derive(Clone, Copy, Debug)]
enum Origin<'a> {
    CommandLine,
    File(&'a ConfigFile, &'static str),
}

impl Origin<'_> {
    /// `err` as it should be reported for a value from here.
    fn blame(self, err: Error) -> Error {
        match self {
            Origin::CommandLine => err,
            Origin::File(file, key) => Error::ConfigValue {
                path: file.path.clone(),
                line: file.line_of(key).unwrap_or(0),
                key,
                source: Box::new(err),
            },
        }
    }
}

/// The command-line value if there is one, else the file's, else `default`.
fn pick<'a, T>(
    given: Option<T>,
    file: Option<&'a ConfigFile>,
    key: &'static str,
    from_file: impl FnOnce(&FileValues) -> Option<T>,
    default: T,
) -> (T, Origin<'a>) {
    if let Some(value) = given {
        return (value, Origin::CommandLine);
    }
    match file.and_then(|f| from_file(&f.values).map(|v| (v, f))) {
        Some((value, f)) => (value, Origin::File(f, key)),
        None => (default, Origin::CommandLine),
    }
}

impl Args {
    /// Reads the `--config` file, if any, and checks every value, the command line winning
    /// over the file.
    ///
    /// # Errors
    ///
    /// As [`Args::check_with`], plus the errors of [`ConfigFile::read`].
    pub fn check(&self) -> Result<Settings, Error> {
        let file = match &self.config {
            Some(path) => Some(ConfigFile::read(path)?),
            None => None,
        };
        self.check_with(file.as_ref())
    }

    /// Checks every value and returns them typed: for each option the command-line value,
    /// else the one from `file`, else the default.
    ///
    /// # Errors
    ///
    /// A usage error ([`Error::exit_code`] 2) naming the first bad value: token not a number
    /// or 2^56 or more, listen or connect address without a valid port, a device name the
    /// kernel would refuse, a timeout, cap or interval of 0, an MTU out of range, `--group`
    /// without `--user`, `verbose` with `quiet`, `--private-key` with `--key-file` or without
    /// `--trusted`, `--trusted` without `--private-key`, or a literal `--connect` IP of a
    /// family the listen address cannot reach. A value from `file` is reported as
    /// [`Error::ConfigValue`], with its key and line.
    pub fn check_with(&self, file: Option<&ConfigFile>) -> Result<Settings, Error> {
        let (device, at) = pick(
            self.device.clone(),
            file,
            "device",
            |f| f.device.clone(),
            DEFAULT_DEVICE.to_owned(),
        );
        tap::check_name(&device).map_err(|reason| {
            at.blame(Error::InvalidDeviceName {
                name: device.clone(),
                reason,
            })
        })?;
        let (listen, at) = pick(
            self.listen.clone(),
            file,
            "listen",
            |f| f.listen.clone(),
            DEFAULT_LISTEN.to_owned(),
        );
        let listen = parse_listen(&listen).map_err(|e| at.blame(e))?;
        let (token, at) = pick(
            self.token.clone(),
            file,
            "token",
            |f| f.token.clone(),
            DEFAULT_TOKEN.to_owned(),
        );
        let token = parse_token(&token).map_err(|e| at.blame(e))?;

        let given_connect = (!self.connect.is_empty()).then(|| self.connect.clone());
        let (connect_texts, at) = pick(
            given_connect,
            file,
            "connect",
            |f| f.connect.clone(),
            Vec::new(),
        );
        if connect_texts.len() > MAX_CONNECT {
            return Err(at.blame(Error::InvalidCombination {
                reason:
                    "more than 1024 --connect addresses (peers learn the others from peer lists)",
            }));
        }
        let families = Families::of(&listen);
        let mut connect = Vec::with_capacity(connect_texts.len());
        for text in &connect_texts {
            let peer = parse_peer(text).map_err(|e| at.blame(e))?;
            if let Host::Ip(ip) = peer.host {
                let addr = SocketAddr::new(ip, peer.port);
                if !families.reaches(&addr) {
                    return Err(at.blame(Error::UnreachablePeer { peer: addr, listen }));
                }
                // (A name that resolves to one is refused when it does, with a warning.)
                if peers::is_unusable(addr) {
                    return Err(at.blame(Error::InvalidPeer {
                        value: text.clone(),
                        reason: "no node can be at an unspecified, multicast, broadcast or \
                                 IPv4-compatible IPv6 (::a.b.c.d) address",
                    }));
                }
            }
            connect.push(peer);
        }

        let secs = |given: Option<u64>,
                    key: &'static str,
                    from_file: fn(&FileValues) -> Option<u64>,
                    default: u64,
                    option: &'static str| {
            let (value, at) = pick(given, file, key, from_file, default);
            timeout(value, option).map_err(|e| at.blame(e))
        };
        // The shortest keepalive is 1 s and it may be at most half the peer timeout, so a
        // timeout of 1 s would leave no keepalive that works.
        let (peer_timeout, at) = pick(
            self.peer_timeout_secs,
            file,
            "peer-timeout",
            |f| f.peer_timeout,
            DEFAULT_PEER_TIMEOUT_SECS,
        );
        let peer_timeout = at_least(peer_timeout, 2, "--peer-timeout").map_err(|e| at.blame(e))?;
        let (keepalive, at) = pick(
            self.keepalive_secs.map(Some),
            file,
            "keepalive",
            |f| f.keepalive.map(Some),
            None,
        );
        let keepalive = match keepalive {
            Some(secs) if secs == 0 || Duration::from_secs(secs) > peer_timeout / 2 => {
                return Err(at.blame(Error::InvalidCombination {
                    reason: "--keepalive must be at least 1 second and at most half of \
                             --peer-timeout (so that a peer hears from us twice before it \
                             gives up)",
                }));
            }
            other => other.map(Duration::from_secs),
        };
        let mac_timeout = secs(
            self.mac_timeout_secs,
            "mac-timeout",
            |f| f.mac_timeout,
            DEFAULT_MAC_TIMEOUT_SECS,
            "--mac-timeout",
        )?;
        let stats_interval = secs(
            self.stats_interval_secs,
            "stats-interval",
            |f| f.stats_interval,
            DEFAULT_STATS_INTERVAL_SECS,
            "--stats-interval",
        )?;

        let cap = |given: Option<usize>,
                   key: &'static str,
                   from_file: fn(&FileValues) -> Option<usize>,
                   default: usize,
                   option: &'static str| {
            let (value, at) = pick(given, file, key, from_file, default);
            at_least_1(value, option).map_err(|e| at.blame(e))
        };
        let max_peers = cap(
            self.max_peers,
            "max-peers",
            |f| f.max_peers,
            peers::DEFAULT_MAX_PEERS,
            "--max-peers",
        )?;
        let max_macs = cap(
            self.max_macs,
            "max-macs",
            |f| f.max_macs,
            switch::DEFAULT_MAX_ENTRIES,
            "--max-macs",
        )?;
        let max_macs_per_peer = cap(
            self.max_macs_per_peer,
            "max-macs-per-peer",
            |f| f.max_macs_per_peer,
            switch::DEFAULT_MAX_ENTRIES_PER_PEER,
            "--max-macs-per-peer",
        )?;
        let (broadcast_limit, at) = pick(
            self.broadcast_limit.map(Some),
            file,
            "broadcast-limit",
            |f| f.broadcast_limit.map(Some),
            None,
        );
        if broadcast_limit == Some(0) {
            return Err(at.blame(Error::InvalidLimit {
                option: "--broadcast-limit",
            }));
        }

        let (key_file, key_file_at) = pick(
            self.key_file.clone().map(Some),
            file,
            "key-file",
            |f| f.key_file.clone().map(Some),
            None,
        );
        let (private_key, private_key_at) = pick(
            self.private_key.clone().map(Some),
            file,
            "private-key",
            |f| f.private_key.clone().map(Some),
            None,
        );
        let given_trusted = (!self.trusted.is_empty()).then(|| self.trusted.clone());
        let (trusted, trusted_at) = pick(
            given_trusted,
            file,
            "trusted",
            |f| f.trusted.clone(),
            Vec::new(),
        );
        // In a config file, as for the other paths: relative to the directory the daemon
        // was started in, they would work by hand and fail under the unit (started in /).
        if let Some(path) = &key_file {
            usable_path(path, "--key-file", key_file_at, None)?;
        }
        if let Some(path) = &private_key {
            usable_path(path, "--private-key", private_key_at, None)?;
        }
        for path in &trusted {
            usable_path(path, "--trusted", trusted_at, None)?;
        }
        if key_file.is_some() && private_key.is_some() {
            return Err(blame_either(
                private_key_at,
                key_file_at,
                Error::InvalidCombination {
                    reason: "--private-key cannot be combined with --key-file (per-node keys \
                             or one network-wide key: choose one)",
                },
            ));
        }
        if private_key.is_some() && trusted.is_empty() {
            return Err(private_key_at.blame(Error::InvalidCombination {
                reason: "--private-key needs --trusted (the public keys this node accepts: \
                         a file, or a directory of files)",
            }));
        }
        if private_key.is_none() && !trusted.is_empty() {
            return Err(trusted_at.blame(Error::InvalidCombination {
                reason: "--trusted needs --private-key (this node's own key, from \
                         `ethcloud genkey`)",
            }));
        }
        let (busy_poll_usecs, at) = pick(
            self.busy_poll_usecs,
            file,
            "busy-poll",
            |f| f.busy_poll,
            DEFAULT_BUSY_POLL_USECS,
        );
        if busy_poll_usecs > MAX_BUSY_POLL_USECS {
            return Err(at.blame(Error::InvalidBusyPoll {
                value: busy_poll_usecs,
            }));
        }
        let busy_poll = Duration::from_micros(busy_poll_usecs);
        let (threads, threads_at) = pick(
            self.threads,
            file,
            "threads",
            |f| f.threads,
            DEFAULT_THREADS,
        );
        if !(1..=MAX_THREADS).contains(&threads) {
            return Err(threads_at.blame(Error::InvalidThreads { value: threads }));
        }
        let threads = usize::try_from(threads).unwrap_or(1);
        let (rekey_after_secs, at) = pick(
            self.rekey_after_secs,
            file,
            "rekey-after",
            |f| f.rekey_after,
            DEFAULT_REKEY_AFTER_SECS,
        );
        if !(MIN_REKEY_AFTER_SECS..=MAX_REKEY_AFTER_SECS).contains(&rekey_after_secs) {
            return Err(at.blame(Error::InvalidRekeyAfter {
                value: rekey_after_secs,
                min: MIN_REKEY_AFTER_SECS,
                max: MAX_REKEY_AFTER_SECS,
            }));
        }
        let rekey_after = Duration::from_secs(rekey_after_secs);
        let (mtu, at) = pick(self.mtu.map(Some), file, "mtu", |f| f.mtu.map(Some), None);
        let mtu = match mtu {
            // Sealing adds crypto::OVERHEAD bytes to every datagram; per-node keys are given
            // the same room.
            None if key_file.is_some() || private_key.is_some() => default_mtu(families)
                .saturating_sub(u32::try_from(crypto::OVERHEAD).unwrap_or(u32::MAX)),
            None => default_mtu(families),
            Some(value) => {
                // A sealed datagram is crypto::OVERHEAD bytes longer, and must still fit in one
                // UDP datagram.
                let max = if key_file.is_some() || private_key.is_some() {
                    MAX_MTU.saturating_sub(u32::try_from(crypto::OVERHEAD).unwrap_or(u32::MAX))
                } else {
                    MAX_MTU
                };
                if !(MIN_MTU..=max).contains(&value) {
                    return Err(at.blame(Error::InvalidMtu {
                        value,
                        min: MIN_MTU,
                        max,
                    }));
                }
                value
            }
        };

        let (user, user_at) = pick(
            self.user.clone().map(Some),
            file,
            "user",
            |f| f.user.clone().map(Some),
            None,
        );
        let (group, at) = pick(
            self.group.clone().map(Some),
            file,
            "group",
            |f| f.group.clone().map(Some),
            None,
        );
        if group.is_some() && user.is_none() {
            return Err(at.blame(Error::InvalidCombination {
                reason: "--group needs --user (ethcloud switches user and group together)",
            }));
        }
        // Looked up now, so that a name the system does not know is blamed on its line of
        // the config file (a usage error); the daemon looks it up again when it switches. A
        // database that cannot be read now (LDAP not up yet at boot) is not a usage error:
        // that lookup fails then, with status 1, which a service manager retries.
        if let Some(user) = &user {
            match crate::sys::privdrop::Identity::resolve(user, group.as_deref()) {
                Err(e @ Error::UnknownUser { .. }) => return Err(user_at.blame(e)),
                Err(e @ Error::UnknownGroup { .. }) => return Err(at.blame(e)),
                Ok(_) | Err(_) => {}
            }
        }
        let (ifup, ifup_at) = pick(
            self.ifup.clone().map(Some),
            file,
            "ifup",
            |f| f.ifup.clone().map(Some),
            None,
        );
        let (ifdown, ifdown_at) = pick(
            self.ifdown.clone().map(Some),
            file,
            "ifdown",
            |f| f.ifdown.clone().map(Some),
            None,
        );
        for (command, option, at) in [(&ifup, "--ifup", ifup_at), (&ifdown, "--ifdown", ifdown_at)]
        {
            if let Some(command) = command {
                usable_command(command, option, at)?;
            }
        }
        let (stats_file, at) = pick(
            self.stats_file.clone().map(Some),
            file,
            "stats-file",
            |f| f.stats_file.clone().map(Some),
            None,
        );
        if let Some(path) = &stats_file {
            usable_path(path, "--stats-file", at, None)?;
        }
        let (control_socket, at) = pick(
            self.control_socket.clone().map(Some),
            file,
            "control-socket",
            |f| f.control_socket.clone().map(Some),
            None,
        );
        if let Some(path) = &control_socket {
            usable_path(
                path,
                "--control-socket",
                at,
                Some(crate::sys::control::MAX_PATH_LEN),
            )?;
        }
        let (stats_format, _) = pick(
            self.stats_format,
            file,
            "stats-format",
            |f| f.stats_format,
            StatsFormat::Text,
        );

        let (no_offload, _) = pick(
            self.no_offload.then_some(true),
            file,
            "no-offload",
            |f| f.no_offload,
            false,
        );

        let (no_relay, _) = pick(
            self.no_relay.then_some(true),
            file,
            "no-relay",
            |f| f.no_relay,
            false,
        );
        let (no_aegis, _) = pick(
            self.no_aegis.then_some(true),
            file,
            "no-aegis",
            |f| f.no_aegis,
            false,
        );
        let given = if self.kernel_path {
            Some(Some(true))
        } else if self.no_kernel_path {
            Some(Some(false))
        } else {
            None
        };
        let (kernel_path, kernel_path_at) = pick(
            given,
            file,
            "kernel-path",
            |f| f.kernel_path.map(Some),
            None,
        );
        let sealed = key_file.is_some() || private_key.is_some();
        let kernel_path = match kernel_path {
            Some(true) => KernelPathMode::On,
            Some(false) => KernelPathMode::Off,
            // The sealed modes have no kernel path: not an error unless asked for.
            None if sealed => KernelPathMode::Off,
            None => KernelPathMode::Auto,
        };
        if kernel_path == KernelPathMode::On && sealed {
            return Err(kernel_path_at.blame(Error::InvalidCombination {
                reason: "--kernel-path carries clear frames only: it cannot be used with \
                         --key-file or --private-key",
            }));
        }
        let (relay_rate_mbit, at) = pick(
            self.relay_rate_mbit,
            file,
            "relay-rate",
            |f| f.relay_rate,
            DEFAULT_RELAY_RATE_MBIT,
        );
        if relay_rate_mbit > MAX_RELAY_RATE_MBIT {
            return Err(at.blame(Error::InvalidCombination {
                reason: "--relay-rate must be at most 100000 (Mbit/s); 0 turns relaying for \
                         others off",
            }));
        }

        // Options that only the sealed modes use, given without one: a word at start-up.
        let given = |cli: bool, in_file: fn(&ConfigFile) -> bool| cli || file.is_some_and(in_file);
        let mut unused = Vec::new();
        if key_file.is_none() && private_key.is_none() {
            for (option, cli, in_file) in [
                (
                    "--no-relay",
                    self.no_relay,
                    (|f| f.values.no_relay == Some(true)) as fn(&ConfigFile) -> bool,
                ),
                ("--no-aegis", self.no_aegis, |f| {
                    f.values.no_aegis == Some(true)
                }),
                ("--relay-rate", self.relay_rate_mbit.is_some(), |f| {
                    f.values.relay_rate.is_some()
                }),
            ] {
                if given(cli, in_file) {
                    unused.push(option);
                }
            }
        }
        if private_key.is_none()
            && given(self.rekey_after_secs.is_some(), |f| {
                f.values.rekey_after.is_some()
            })
        {
            unused.push("--rekey-after");
        }
        // And the stats file's options without one.
        if stats_file.is_none() {
            if given(self.stats_interval_secs.is_some(), |f| {
                f.values.stats_interval.is_some()
            }) {
                unused.push("--stats-interval");
            }
            if given(self.stats_format.is_some(), |f| {
                f.values.stats_format.is_some()
            }) {
                unused.push("--stats-format");
            }
        }

        let log_level = if self.verbose || self.quiet {
            self.log_level()
        } else {
            match file.map(|f| (f, f.values.verbose, f.values.quiet)) {
                Some((f, Some(true), Some(true))) => {
                    return Err(Origin::File(f, "quiet").blame(Error::InvalidCombination {
                        reason: "--quiet cannot be combined with --verbose",
                    }))
                }
                Some((_, Some(true), _)) => LevelFilter::Debug,
                Some((_, _, Some(true))) => LevelFilter::Error,
                _ => LevelFilter::Info,
            }
        };

        Ok(Settings {
            device,
            listen,
            token,
            connect,
            peer_timeout,
            keepalive,
            mac_timeout,
            log_level,
            max_peers,
            max_macs,
            max_macs_per_peer,
            broadcast_limit,
            user,
            group,
            ifup,
            ifdown,
            mtu,
            stats_file,
            stats_interval,
            stats_format,
            offload: !no_offload,
            key_file,
            private_key,
            trusted,
            busy_poll,
            threads,
            rekey_after,
            control_socket,
            relay: !no_relay,
            aegis: !no_aegis,
            kernel_path,
            relay_rate: relay_rate_mbit.saturating_mul(1_000_000 / 8),
            unused,
        })
    }
}

/// `err` blamed on the first of `a` and `b` that is a config file key (the value an operator
/// may not see on the command line), else as it is.
fn blame_either(a: Origin<'_>, b: Origin<'_>, err: Error) -> Error {
    match (a, b) {
        (Origin::File(..), _) => a.blame(err),
        (_, Origin::File(..)) => b.blame(err),
        _ => err,
    }
}

fn timeout(secs: u64, option: &'static str) -> Result<Duration, Error> {
    at_least(secs, 1, option)
}

/// A path option's value that no file can have is refused before anything starts: empty,
/// holding a NUL byte, too long for a socket address (`max_len`), or, in a config file,
/// relative (the daemon runs in `/` under systemd, `ethcloud show --config` wherever it is
/// started, so the two would look in different places). The error names `at`.
fn usable_path(
    path: &std::path::Path,
    option: &'static str,
    at: Origin<'_>,
    max_len: Option<usize>,
) -> Result<(), Error> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let reason = if bytes.is_empty() {
        "the path is empty"
    } else if bytes.contains(&0) {
        "the path holds a NUL byte"
    } else if max_len.is_some_and(|max| bytes.len() > max) {
        "a socket's path must be at most 107 bytes long"
    } else if matches!(at, Origin::File(..)) && path.is_relative() {
        "a path in a config file must be absolute"
    } else {
        return Ok(());
    };
    Err(at.blame(Error::InvalidPath { option, reason }))
}

/// A hook command that cannot run as meant is refused before anything starts (the hook
/// would fail only once the device exists): one holding a NUL byte (`sh -c` cannot take it),
/// or a carriage return, which a config file saved with Windows line ends leaves at the end of
/// each line of a multi-line string (the shell would read `up\r` for `up`). The error names
/// `at`.
fn usable_command(command: &str, option: &'static str, at: Origin<'_>) -> Result<(), Error> {
    let reason = if command.contains('\0') {
        "the command holds a NUL byte"
    } else if command.contains('\r') {
        "the command holds a carriage return (save the config file with Unix line ends)"
    } else {
        return Ok(());
    };
    Err(at.blame(Error::InvalidPath { option, reason }))
}

fn at_least(secs: u64, min: u64, option: &'static str) -> Result<Duration, Error> {
    if secs < min {
        Err(Error::InvalidTimeout { option, min })
    } else if secs > MAX_TIMEOUT_SECS {
        Err(Error::TimeoutTooLong { option })
    } else {
        Ok(Duration::from_secs(secs))
    }
}

fn at_least_1(value: usize, option: &'static str) -> Result<usize, Error> {
    if value == 0 {
        Err(Error::InvalidLimit { option })
    } else {
        Ok(value)
    }
}
