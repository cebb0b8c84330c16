//! The command line: [`Args`] as clap parses it (the options, short and long names of the seed
//! spec's synopsis, plus the service options), the `--config` file merged under it, and
//! [`Args::check`], which turns the raw strings into typed, checked [`Settings`] once, at the
//! edge.
//!
//! Owns option syntax, defaults, value validation, the rule that the command line overrides
//! the config file, the default MTU, and resolving `--connect` names at start-up. It opens
//! nothing but the config file: `main` builds the sockets and devices from [`Settings`].
//! Validation failures are usage errors ([`Error::exit_code`] 2), and a bad value from the
//! config file names its key and line; a name that cannot be resolved is a run-time failure
//! (exit 1).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use log::LevelFilter;

use crate::config::{ConfigFile, FileValues};
use crate::crypto;
use crate::error::Error;
use crate::node::Config;
use crate::status::StatsFormat;
use crate::sys::tap;
use crate::sys::udp::{unmap, Families};
use crate::wire::Token;
use crate::{peers, switch};

/// `--device` when neither the command line nor the config file gives one.
pub const DEFAULT_DEVICE: &str = "ethcloud%d";
/// `--listen` default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3210";
/// `--token` default.
pub const DEFAULT_TOKEN: &str = "0";
/// `--peer-timeout` default, seconds.
pub const DEFAULT_PEER_TIMEOUT_SECS: u64 = 1800;
/// `--mac-timeout` default, seconds.
pub const DEFAULT_MAC_TIMEOUT_SECS: u64 = 300;
/// `--stats-interval` default, seconds.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 10;

/// The MTU of the underlay the default tap MTU is computed for (plain Ethernet).
pub const UNDERLAY_MTU: u32 = 1500;
/// IPv4 header without options.
pub const IPV4_HEADER_LEN: u32 = 20;
/// IPv6 header without extension headers.
pub const IPV6_HEADER_LEN: u32 = 40;
/// UDP header.
pub const UDP_HEADER_LEN: u32 = 8;
/// The ethcloud header: token and switch byte (`wire::HEADER_LEN`).
pub const ETHCLOUD_HEADER_LEN: u32 = 8;
/// The Ethernet header every frame carries on top of its payload, untagged
/// (`wire::ethernet::ETHERNET_HEADER_LEN`).
pub const FRAME_HEADER_LEN: u32 = 14;
/// The default `--busy-poll`, in microseconds.
pub const DEFAULT_BUSY_POLL_USECS: u64 = 50;
/// The largest `--busy-poll`, in microseconds.
pub const MAX_BUSY_POLL_USECS: u64 = 100_000;

/// The smallest `--mtu`: the least IPv4 needs.
pub const MIN_MTU: u32 = 68;
/// The largest `--mtu`: a VLAN-tagged frame of this MTU (18-byte header) still fits into one
/// UDP datagram of at most 65507 bytes after the 8-byte ethcloud header.
pub const MAX_MTU: u32 = 65_481;

/// The raw command line: the options of the seed spec plus the service options. Options
/// with a default are `Option`s here, so that a value from `--config` shows through where the
/// command line says nothing; [`Args::check`] applies the defaults.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "ethcloud",
    version,
    about = "Layer 2 VPN over UDP: a learning Ethernet switch whose ports are peers in a \
             self-forming mesh"
)]
pub struct Args {
    /// Read options from this TOML file (keys are the long options, e.g. peer-timeout = 60);
    /// options on the command line win. Convention: /etc/ethcloud/NAME.toml
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Name of the tap device (%d lets the kernel pick a number) [default: ethcloud%d]
    #[arg(short = 'd', long = "device", value_name = "device")]
    pub device: Option<String>,

    /// Address to listen on ([::]:port also serves IPv4 peers) [default: 0.0.0.0:3210]
    #[arg(short = 'l', long = "listen", value_name = "listen")]
    pub listen: Option<String>,

    /// Token that identifies the network [default: 0]
    #[arg(short = 't', long = "token", value_name = "token")]
    pub token: Option<String>,

    /// List of peers (addr:port) to connect to; repeat for more peers
    #[arg(short = 'c', long = "connect", value_name = "connect")]
    pub connect: Vec<String>,

    /// Peer timeout in seconds [default: 1800]
    #[arg(long = "peer-timeout", value_name = "peer_timeout")]
    pub peer_timeout_secs: Option<u64>,

    /// Mac table entry timeout in seconds [default: 300]
    #[arg(long = "mac-timeout", value_name = "mac_timeout")]
    pub mac_timeout_secs: Option<u64>,

    /// Log verbosely
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,

    /// Only print error messages
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    /// Most peers kept at once [default: 4096]
    #[arg(long = "max-peers", value_name = "N")]
    pub max_peers: Option<usize>,

    /// Most MAC table entries [default: 65536]
    #[arg(long = "max-macs", value_name = "N")]
    pub max_macs: Option<usize>,

    /// Most MAC table entries behind one peer [default: 4096]
    #[arg(long = "max-macs-per-peer", value_name = "N")]
    pub max_macs_per_peer: Option<usize>,

    /// Broadcast and multicast frames per second accepted from one source [default: no limit]
    #[arg(long = "broadcast-limit", value_name = "PER_SEC")]
    pub broadcast_limit: Option<u64>,

    /// Switch to this user once the tap device and the socket are open
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Switch to this group along with --user [default: the user's primary group]
    #[arg(long = "group", value_name = "GROUP")]
    pub group: Option<String>,

    /// Shell command run once the tap device is up, with $IFNAME set to its name
    #[arg(long = "ifup", value_name = "CMD")]
    pub ifup: Option<String>,

    /// Shell command run at shutdown before the tap device goes, with $IFNAME set
    #[arg(long = "ifdown", value_name = "CMD")]
    pub ifdown: Option<String>,

    /// MTU of the tap device [default: 1450 with an IPv4 listen address, 1430 with IPv6; 41 less with --key-file]
    #[arg(long = "mtu", value_name = "BYTES")]
    pub mtu: Option<u32>,

    /// Write peers, MAC table and counters to this file every --stats-interval seconds
    #[arg(long = "stats-file", value_name = "FILE")]
    pub stats_file: Option<PathBuf>,

    /// Seconds between two writes of --stats-file [default: 10]
    #[arg(long = "stats-interval", value_name = "SECS")]
    pub stats_interval_secs: Option<u64>,

    /// Format of --stats-file [default: text]
    #[arg(long = "stats-format", value_name = "FORMAT")]
    pub stats_format: Option<StatsFormat>,

    /// Turn off the segmentation offloads (tap TSO/USO/checksum, UDP GSO/GRO, TCP coalescing)
    #[arg(long = "no-offload")]
    pub no_offload: bool,

    /// After traffic, poll without sleeping for USECS microseconds (lower latency, more CPU) [default: 50]
    #[arg(long = "busy-poll", value_name = "USECS")]
    pub busy_poll_usecs: Option<u64>,

    /// Seal every packet with the key in FILE (32 bytes, 64 hex digits, or a passphrase)
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Print a completion script for SHELL to standard output and exit
    #[arg(long = "completions", value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,
}

/// The command line after checking: typed values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The tap device name (maybe a `%d` template), checked against the kernel's rules.
    pub device: String,
    /// The address to bind the UDP socket to.
    pub listen: SocketAddr,
    /// The network token.
    pub token: Token,
    /// The `--connect` peers, syntax checked but not resolved.
    pub connect: Vec<PeerAddr>,
    /// How long a silent peer is kept.
    pub peer_timeout: Duration,
    /// How long a learned MAC address is kept.
    pub mac_timeout: Duration,
    /// The log level from `-v` / `-q` (`RUST_LOG` may still override it).
    pub log_level: LevelFilter,
    /// Cap on the peer table.
    pub max_peers: usize,
    /// Cap on the MAC table.
    pub max_macs: usize,
    /// Cap on the MAC entries behind one peer.
    pub max_macs_per_peer: usize,
    /// Broadcast and multicast frames per second per source; `None` for no limit.
    pub broadcast_limit: Option<u64>,
    /// The user to switch to, if any.
    pub user: Option<String>,
    /// The group to switch to along with `user` (`None`: the user's primary group).
    pub group: Option<String>,
    /// The `--ifup` command.
    pub ifup: Option<String>,
    /// The `--ifdown` command.
    pub ifdown: Option<String>,
    /// The tap MTU (`--mtu`, else [`default_mtu`] for the listen address).
    pub mtu: u32,
    /// The stats file, if any.
    pub stats_file: Option<PathBuf>,
    /// How often the stats file is written.
    pub stats_interval: Duration,
    /// The stats file's format.
    pub stats_format: StatsFormat,
    /// Use the segmentation offloads where the kernel supports them (not `--no-offload`).
    pub offload: bool,
    /// The key file for the keyed mode, if any.
    pub key_file: Option<PathBuf>,
    /// How long the loop keeps polling without sleeping after traffic.
    pub busy_poll: Duration,
}

/// The host part of a `--connect` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, resolved at start-up and again while it is not a peer.
    Name(String),
}

/// A `--connect` value: `host:port`, with the text kept for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// The value as given.
    pub text: String,
    /// The host part.
    pub host: Host,
    /// The port (never 0).
    pub port: u16,
}

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

/// The tap MTU that lets a full-size frame cross a 1500-byte underlay in one datagram:
///
/// ```text
/// 1500 - 20 (IPv4) - 8 (UDP) - 8 (ethcloud) - 14 (Ethernet) = 1450
/// 1500 - 40 (IPv6) - 8 (UDP) - 8 (ethcloud) - 14 (Ethernet) = 1430
/// ```
///
/// A socket that reaches IPv6 peers (an IPv6 or dual-stack listen address) gets the IPv6
/// figure, since any of its datagrams may go over IPv6.
pub fn default_mtu(families: Families) -> u32 {
    let ip = if families.ipv6 {
        IPV6_HEADER_LEN
    } else {
        IPV4_HEADER_LEN
    };
    UNDERLAY_MTU - ip - UDP_HEADER_LEN - ETHCLOUD_HEADER_LEN - FRAME_HEADER_LEN
}

impl Args {
    /// The log level asked for on the command line: `Debug` with `-v`, `Error` with `-q`,
    /// else `Info`. [`Settings::log_level`] also heeds the config file.
    pub fn log_level(&self) -> LevelFilter {
        if self.verbose {
            LevelFilter::Debug
        } else if self.quiet {
            LevelFilter::Error
        } else {
            LevelFilter::Info
        }
    }

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
    /// without `--user`, `verbose` with `quiet`, or a literal `--connect` IP of a family the
    /// listen address cannot reach. A value from `file` is reported as
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
        let families = Families::of(&listen);
        let mut connect = Vec::with_capacity(connect_texts.len());
        for text in &connect_texts {
            let peer = parse_peer(text).map_err(|e| at.blame(e))?;
            if let Host::Ip(ip) = peer.host {
                let addr = SocketAddr::new(ip, peer.port);
                if !families.reaches(&addr) {
                    return Err(at.blame(Error::UnreachablePeer { peer: addr, listen }));
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
        let peer_timeout = secs(
            self.peer_timeout_secs,
            "peer-timeout",
            |f| f.peer_timeout,
            DEFAULT_PEER_TIMEOUT_SECS,
            "--peer-timeout",
        )?;
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

        let (key_file, _) = pick(
            self.key_file.clone().map(Some),
            file,
            "key-file",
            |f| f.key_file.clone().map(Some),
            None,
        );
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
        let (mtu, at) = pick(self.mtu.map(Some), file, "mtu", |f| f.mtu.map(Some), None);
        let mtu = match mtu {
            // Sealing adds crypto::OVERHEAD bytes to every datagram.
            None if key_file.is_some() => default_mtu(families)
                .saturating_sub(u32::try_from(crypto::OVERHEAD).unwrap_or(u32::MAX)),
            None => default_mtu(families),
            Some(value) if (MIN_MTU..=MAX_MTU).contains(&value) => value,
            Some(value) => return Err(at.blame(Error::InvalidMtu { value })),
        };

        let (user, _) = pick(
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
        let (ifup, _) = pick(
            self.ifup.clone().map(Some),
            file,
            "ifup",
            |f| f.ifup.clone().map(Some),
            None,
        );
        let (ifdown, _) = pick(
            self.ifdown.clone().map(Some),
            file,
            "ifdown",
            |f| f.ifdown.clone().map(Some),
            None,
        );
        let (stats_file, _) = pick(
            self.stats_file.clone().map(Some),
            file,
            "stats-file",
            |f| f.stats_file.clone().map(Some),
            None,
        );
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
            busy_poll,
        })
    }
}

impl Settings {
    /// Resolves every `--connect` peer to one address the socket on `listen` can reach, in
    /// command-line order, each with the value it came from (several values may give the
    /// same address).
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] if a name cannot be resolved, [`Error::NoUsableAddress`] if it
    /// resolves only to addresses of the other family.
    pub fn resolve_each(&self) -> Result<Vec<(PeerAddr, SocketAddr)>, Error> {
        let families = Families::of(&self.listen);
        self.connect
            .iter()
            .map(|peer| Ok((peer.clone(), peer.resolve(families, self.listen)?)))
            .collect()
    }

    /// Resolves every `--connect` peer to one address the socket on `listen` can reach,
    /// dropping duplicates, in command-line order.
    ///
    /// # Errors
    ///
    /// As [`Settings::resolve_each`].
    pub fn resolve_peers(&self) -> Result<Vec<SocketAddr>, Error> {
        Ok(unique_addrs(&self.resolve_each()?))
    }

    /// The node's configuration: the spec's defaults, then the checked values. `connect` and
    /// `own_addrs` are the resolved peers and the local addresses; `families` those the bound
    /// socket reaches.
    pub fn node_config(
        &self,
        connect: Vec<SocketAddr>,
        own_addrs: Vec<SocketAddr>,
        families: Families,
    ) -> Config {
        let mut config = Config::new(self.token);
        config.peer_timeout = self.peer_timeout;
        config.mac_timeout = self.mac_timeout;
        config.connect = connect;
        config.own_addrs = own_addrs;
        config.accepts_ipv4 = families.ipv4;
        config.accepts_ipv6 = families.ipv6;
        config.max_peers = self.max_peers;
        config.max_macs = self.max_macs;
        config.max_macs_per_peer = self.max_macs_per_peer;
        config.broadcast_limit = self.broadcast_limit;
        config
    }
}

/// The addresses of `resolved`, first occurrence kept, in order.
pub fn unique_addrs(resolved: &[(PeerAddr, SocketAddr)]) -> Vec<SocketAddr> {
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(resolved.len());
    for (_, addr) in resolved {
        if !addrs.contains(addr) {
            addrs.push(*addr);
        }
    }
    addrs
}

impl PeerAddr {
    /// The first address of this peer of a family in `families` (a literal IP is its own
    /// address). v4-mapped IPv6 addresses count as IPv4.
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] if the name cannot be resolved, [`Error::NoUsableAddress`] if no
    /// address of a reachable family comes back.
    pub fn resolve(&self, families: Families, listen: SocketAddr) -> Result<SocketAddr, Error> {
        let found = match &self.host {
            Host::Ip(ip) => Some(unmap(SocketAddr::new(*ip, self.port))),
            Host::Name(name) => (name.as_str(), self.port)
                .to_socket_addrs()
                .map_err(|source| Error::Resolve {
                    peer: self.text.clone(),
                    source,
                })?
                .map(unmap)
                .find(|addr| families.reaches(addr)),
        };
        found
            .filter(|addr| families.reaches(addr))
            .ok_or_else(|| Error::NoUsableAddress {
                peer: self.text.clone(),
                listen,
            })
    }
}

/// Parses `--token`: a decimal number below 2^56.
///
/// # Errors
///
/// [`Error::InvalidToken`] for anything else.
pub fn parse_token(text: &str) -> Result<Token, Error> {
    let invalid = |reason| Error::InvalidToken {
        value: text.to_owned(),
        reason,
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("not a decimal number"));
    }
    let too_large = "too large";
    let value: u64 = text.parse().map_err(|_| invalid(too_large))?;
    Token::new(value).map_err(|_| invalid(too_large))
}

/// Parses `--listen`: an IP address (IPv6 in brackets) and a port, e.g. `0.0.0.0:3210` or
/// `[::]:3210`. Port 0 asks the kernel for a free port.
///
/// # Errors
///
/// [`Error::InvalidListen`] naming what is wrong.
pub fn parse_listen(text: &str) -> Result<SocketAddr, Error> {
    let invalid = |reason| Error::InvalidListen {
        value: text.to_owned(),
        reason,
    };
    let (host, port) = split_host_port(text).map_err(invalid)?;
    let ip = parse_ip(host)
        .map_err(invalid)?
        .ok_or_else(|| invalid("the host must be an IP address, not a name"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Parses a `--connect` value: `host:port` where host is an IPv4 address, an IPv6 address in
/// brackets or a DNS name, and port is 1 to 65535.
///
/// # Errors
///
/// [`Error::InvalidPeer`] naming what is wrong.
pub fn parse_peer(text: &str) -> Result<PeerAddr, Error> {
    let invalid = |reason| Error::InvalidPeer {
        value: text.to_owned(),
        reason,
    };
    let (host, port) = split_host_port(text).map_err(invalid)?;
    if port == 0 {
        return Err(invalid("port 0 cannot be connected to"));
    }
    let host = match parse_ip(host).map_err(invalid)? {
        Some(ip) => Host::Ip(ip),
        None if is_dns_name(host) => Host::Name(host.to_owned()),
        None => return Err(invalid("the host is neither an IP address nor a DNS name")),
    };
    Ok(PeerAddr {
        text: text.to_owned(),
        host,
        port,
    })
}

/// Splits `host:port`, checking the port. The host is returned as written (brackets kept).
fn split_host_port(text: &str) -> Result<(&str, u16), &'static str> {
    if text.ends_with(']') {
        return Err("missing port");
    }
    let (host, port) = text.rsplit_once(':').ok_or("missing port")?;
    if port.is_empty() {
        return Err("missing port");
    }
    if host.is_empty() {
        return Err("missing host");
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the port is not a number");
    }
    let port = port.parse::<u16>().map_err(|_| "the port is above 65535")?;
    Ok((host, port))
}

/// `Some(ip)` for an IPv4 address or a bracketed IPv6 address, `None` for anything that may
/// be a DNS name.
fn parse_ip(host: &str) -> Result<Option<IpAddr>, &'static str> {
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner
            .strip_suffix(']')
            .ok_or("unbalanced '[' in the host")?;
        return inner
            .parse::<Ipv6Addr>()
            .map(|ip| Some(IpAddr::V6(ip)))
            .map_err(|_| "not an IPv6 address inside the brackets");
    }
    if host.contains(':') {
        return Err("an IPv6 address must be in brackets, e.g. [fd00::1]:3210");
    }
    Ok(host.parse::<IpAddr>().ok())
}

/// A plausible DNS name: dot-separated labels of letters, digits, `-` and `_`, at most 253
/// bytes. The resolver has the last word.
fn is_dns_name(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn timeout(secs: u64, option: &'static str) -> Result<Duration, Error> {
    if secs == 0 {
        Err(Error::InvalidTimeout { option })
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("ethcloud").chain(list.iter().copied()))
    }

    fn check(list: &[&str]) -> Result<Settings, Error> {
        args(list).unwrap().check()
    }

    fn usage_error(list: &[&str]) -> String {
        let err = check(list).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        err.to_string()
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = check(&[]).unwrap();
        assert_eq!(s.device, "ethcloud%d");
        assert_eq!(s.listen, "0.0.0.0:3210".parse().unwrap());
        assert_eq!(s.token, Token::new(0).unwrap());
        assert!(s.connect.is_empty());
        assert_eq!(s.peer_timeout, Duration::from_secs(1800));
        assert_eq!(s.mac_timeout, Duration::from_secs(300));
        assert_eq!(s.log_level, LevelFilter::Info);
        assert!(s.offload);
        assert!(!check(&["--no-offload"]).unwrap().offload);
        assert_eq!(
            check(&[]).unwrap().busy_poll,
            Duration::from_micros(DEFAULT_BUSY_POLL_USECS)
        );
        assert!(check(&["--busy-poll", "0"]).unwrap().busy_poll.is_zero());
        assert!(check(&["--busy-poll", "100001"]).is_err());
    }

    #[test]
    fn short_and_long_options_are_the_specs() {
        let s = check(&[
            "-d",
            "vpn0",
            "-l",
            "[::]:4000",
            "-t",
            "134",
            "-c",
            "198.18.0.2:3210",
            "-c",
            "[fd00::2]:3210",
            "--peer-timeout",
            "60",
            "--mac-timeout",
            "30",
            "-v",
        ])
        .unwrap();
        assert_eq!(s.device, "vpn0");
        assert_eq!(s.listen, "[::]:4000".parse().unwrap());
        assert_eq!(s.token.get(), 134);
        assert_eq!(s.connect.len(), 2);
        assert_eq!(s.peer_timeout, Duration::from_secs(60));
        assert_eq!(s.mac_timeout, Duration::from_secs(30));
        assert_eq!(s.log_level, LevelFilter::Debug);
        let long = check(&[
            "--device",
            "vpn0",
            "--listen",
            "[::]:4000",
            "--token",
            "134",
            "--connect",
            "198.18.0.2:3210",
            "--quiet",
        ])
        .unwrap();
        assert_eq!(long.log_level, LevelFilter::Error);
        assert_eq!(long.token.get(), 134);
    }

    #[test]
    fn verbose_with_quiet_is_a_clap_conflict() {
        let err = args(&["-v", "-q"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn non_numeric_timeout_is_a_clap_error() {
        let err = args(&["--peer-timeout", "soon"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn token_of_2_pow_56_is_rejected_naming_the_limit() {
        let text = usage_error(&["-t", "72057594037927936"]);
        assert!(text.contains("too large"), "{text}");
        assert!(text.contains("72057594037927935"), "{text}");
        assert_eq!(
            check(&["-t", "72057594037927935"]).unwrap().token,
            Token::MAX
        );
    }

    #[test]
    fn token_beyond_u64_is_too_large() {
        let text = usage_error(&["-t", "99999999999999999999999"]);
        assert!(text.contains("too large"), "{text}");
    }

    #[test]
    fn token_not_a_number_is_rejected() {
        for bad in ["abc", "", "-1", "1e3", " 1", "0x10"] {
            let text = usage_error(&[&format!("--token={bad}")]);
            assert!(text.contains("not a decimal number"), "{bad:?}: {text}");
        }
    }

    #[test]
    fn listen_without_valid_port_is_rejected() {
        for (bad, why) in [
            ("0.0.0.0", "missing port"),
            ("0.0.0.0:", "missing port"),
            ("[::]", "missing port"),
            ("0.0.0.0:99999", "above 65535"),
            ("0.0.0.0:http", "not a number"),
            (":3210", "missing host"),
            ("::1:3210", "brackets"),
            ("localhost:3210", "IP address"),
            ("[nonsense]:3210", "IPv6"),
        ] {
            let text = usage_error(&["-l", bad]);
            assert!(text.contains(why), "{bad:?}: {text}");
            assert!(text.starts_with("invalid listen address"), "{text}");
        }
    }

    #[test]
    fn listen_accepts_ipv4_ipv6_and_port_0() {
        assert_eq!(
            check(&["-l", "[fd00::1]:0"]).unwrap().listen,
            "[fd00::1]:0".parse().unwrap()
        );
        assert_eq!(
            check(&["-l", "127.0.0.1:3210"]).unwrap().listen,
            "127.0.0.1:3210".parse().unwrap()
        );
    }

    #[test]
    fn connect_without_valid_port_is_rejected() {
        for (bad, why) in [
            ("198.18.0.2", "missing port"),
            ("198.18.0.2:0", "port 0"),
            ("198.18.0.2:65536", "above 65535"),
            ("[fd00::2]", "missing port"),
            ("fd00::2:3210", "brackets"),
            ("bad host:3210", "neither"),
            ("a..b:3210", "neither"),
        ] {
            let text = usage_error(&["-l", "[::]:3210", "-c", bad]);
            assert!(text.contains(why), "{bad:?}: {text}");
            assert!(text.starts_with("invalid peer address"), "{text}");
        }
    }

    #[test]
    fn connect_accepts_ipv4_bracketed_ipv6_and_names() {
        let s = check(&[
            "-l",
            "[::]:3210",
            "-c",
            "198.18.0.2:1",
            "-c",
            "[fd00::2]:2",
            "-c",
            "peer-1.example:3",
        ])
        .unwrap();
        assert_eq!(s.connect[0].host, Host::Ip("198.18.0.2".parse().unwrap()));
        assert_eq!(s.connect[1].host, Host::Ip("fd00::2".parse().unwrap()));
        assert_eq!(s.connect[2].host, Host::Name("peer-1.example".to_owned()));
        assert_eq!(s.connect[2].port, 3);
    }

    #[test]
    fn connect_ipv6_peer_from_ipv4_socket_is_rejected() {
        let text = usage_error(&["-l", "0.0.0.0:3210", "-c", "[fd00::2]:3210"]);
        assert!(text.contains("reaches only IPv4"), "{text}");
    }

    #[test]
    fn device_name_of_16_bytes_or_more_is_rejected() {
        let text = usage_error(&["-d", "abcdefghijklmnop"]);
        assert!(text.contains("IFNAMSIZ"), "{text}");
        usage_error(&["-d", "a-name-of-20-chars!!"]);
        usage_error(&["-d", ""]);
        assert_eq!(
            check(&["-d", "abcdefghijklmno"]).unwrap().device,
            "abcdefghijklmno"
        );
    }

    #[test]
    fn zero_timeouts_are_rejected() {
        let text = usage_error(&["--peer-timeout", "0"]);
        assert!(text.contains("--peer-timeout"), "{text}");
        let text = usage_error(&["--mac-timeout", "0"]);
        assert!(text.contains("--mac-timeout"), "{text}");
        assert_eq!(
            check(&["--mac-timeout", "1"]).unwrap().mac_timeout,
            Duration::from_secs(1)
        );
    }

    #[test]
    fn literal_peers_resolve_without_dns_and_v4_mapped_becomes_ipv4() {
        let s = check(&[
            "-l",
            "[::]:3210",
            "-c",
            "[::ffff:198.18.0.2]:3210",
            "-c",
            "198.18.0.2:3210",
            "-c",
            "[fd00::2]:3210",
        ])
        .unwrap();
        let addrs = s.resolve_peers().unwrap();
        assert_eq!(
            addrs,
            [
                "198.18.0.2:3210".parse().unwrap(),
                "[fd00::2]:3210".parse().unwrap()
            ]
        );
    }

    #[test]
    fn localhost_resolves_to_the_listen_family() {
        let s = check(&["-l", "0.0.0.0:3210", "-c", "localhost:3210"]).unwrap();
        let addrs = s.resolve_peers().unwrap();
        assert_eq!(addrs, ["127.0.0.1:3210".parse().unwrap()]);
    }

    #[test]
    fn unresolvable_name_is_a_runtime_error_naming_the_peer() {
        let s = check(&["-c", "nonexistent.invalid:3210"]).unwrap();
        let err = s.resolve_peers().unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(
            text.starts_with("cannot resolve peer address nonexistent.invalid:3210: "),
            "{text}"
        );
    }

    #[test]
    fn node_config_carries_the_checked_values() {
        let s = check(&["-t", "7", "--peer-timeout", "9", "--mac-timeout", "8"]).unwrap();
        let families = Families::of(&s.listen);
        let peer: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let own: SocketAddr = "198.18.0.1:3210".parse().unwrap();
        let config = s.node_config(vec![peer], vec![own], families);
        assert_eq!(config.token.get(), 7);
        assert_eq!(config.peer_timeout, Duration::from_secs(9));
        assert_eq!(config.mac_timeout, Duration::from_secs(8));
        assert_eq!(config.connect, [peer]);
        assert_eq!(config.own_addrs, [own]);
        assert!(config.accepts_ipv4 && !config.accepts_ipv6);
    }

    fn file(text: &str) -> ConfigFile {
        ConfigFile::parse(std::path::Path::new("/etc/ethcloud/vpn0.toml"), text).unwrap()
    }

    fn check_file(list: &[&str], text: &str) -> Result<Settings, Error> {
        args(list).unwrap().check_with(Some(&file(text)))
    }

    const FILE: &str = r#"
device = "vpn0"
listen = "[::]:4000"
token = 134
connect = ["198.18.0.2:3210", "[fd00::2]:3210"]
peer-timeout = 60
quiet = true
max-peers = 10
broadcast-limit = 100
mtu = 1400
user = "nobody"
stats-file = "/run/ethcloud/vpn0/stats"
stats-format = "prometheus"
"#;

    #[test]
    fn config_file_values_apply_where_the_command_line_is_silent() {
        let s = check_file(&[], FILE).unwrap();
        assert_eq!(s.device, "vpn0");
        assert_eq!(s.listen, "[::]:4000".parse().unwrap());
        assert_eq!(s.token.get(), 134);
        assert_eq!(s.connect.len(), 2);
        assert_eq!(s.peer_timeout, Duration::from_secs(60));
        assert_eq!(s.mac_timeout, Duration::from_secs(300), "default");
        assert_eq!(s.log_level, LevelFilter::Error);
        assert_eq!(s.max_peers, 10);
        assert_eq!(s.broadcast_limit, Some(100));
        assert_eq!(s.mtu, 1400);
        assert_eq!(s.user.as_deref(), Some("nobody"));
        assert_eq!(s.stats_format, StatsFormat::Prometheus);
        assert_eq!(s.stats_interval, Duration::from_secs(10), "default");
    }

    #[test]
    fn command_line_overrides_the_config_file() {
        let s = check_file(
            &[
                "-d",
                "vpn9",
                "-t",
                "9",
                "-c",
                "198.18.0.9:3210",
                "--peer-timeout",
                "5",
                "-v",
                "--mtu",
                "1300",
                "--stats-format",
                "text",
            ],
            FILE,
        )
        .unwrap();
        assert_eq!(s.device, "vpn9");
        assert_eq!(s.token.get(), 9);
        assert_eq!(s.connect.len(), 1, "-c replaces the file's list");
        assert_eq!(s.connect[0].text, "198.18.0.9:3210");
        assert_eq!(s.peer_timeout, Duration::from_secs(5));
        assert_eq!(s.log_level, LevelFilter::Debug, "-v beats quiet = true");
        assert_eq!(s.mtu, 1300);
        assert_eq!(s.stats_format, StatsFormat::Text);
        assert_eq!(s.listen, "[::]:4000".parse().unwrap(), "not overridden");
    }

    #[test]
    fn bad_config_value_names_the_file_the_key_and_the_line() {
        let err = check_file(&[], "device = \"vpn0\"\n\npeer-timeout = 0\n").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "config file /etc/ethcloud/vpn0.toml, line 3: key peer-timeout: \
             invalid --peer-timeout: must be at least 1 second"
        );
        let err = check_file(&[], "token = 72057594037927936\n").unwrap_err();
        assert!(
            err.to_string().contains("line 1: key token: invalid token"),
            "{err}"
        );
        let err = check_file(&[], "connect = [\"198.18.0.1\"]\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("key connect: invalid peer address"),
            "{err}"
        );
        let err = check_file(&[], "max-macs = 0\n").unwrap_err();
        assert!(
            err.to_string().contains("key max-macs: invalid --max-macs"),
            "{err}"
        );
    }

    #[test]
    fn bad_config_value_overridden_on_the_command_line_is_no_error() {
        let s = check_file(&["--peer-timeout", "7"], "peer-timeout = 0\n").unwrap();
        assert_eq!(s.peer_timeout, Duration::from_secs(7));
    }

    #[test]
    fn bad_command_line_value_is_not_blamed_on_the_file() {
        let err = check_file(&["--mtu", "20"], "mtu = 1400\n").unwrap_err();
        assert!(err.to_string().starts_with("invalid --mtu 20"), "{err}");
    }

    #[test]
    fn default_mtu_leaves_room_for_the_underlay_headers() {
        assert_eq!(check(&[]).unwrap().mtu, 1450);
        assert_eq!(check(&["-l", "[::]:3210"]).unwrap().mtu, 1430);
        assert_eq!(check(&["-l", "[fd00::1]:3210"]).unwrap().mtu, 1430);
        assert_eq!(
            check(&["-l", "[::ffff:198.18.0.1]:3210"]).unwrap().mtu,
            1450
        );
        assert_eq!(ETHCLOUD_HEADER_LEN as usize, crate::wire::HEADER_LEN);
        assert_eq!(
            FRAME_HEADER_LEN as usize,
            crate::wire::ethernet::ETHERNET_HEADER_LEN
        );
        let tagged = crate::wire::ethernet::TAGGED_HEADER_LEN;
        assert_eq!(MAX_MTU as usize + tagged, crate::wire::MAX_FRAME_LEN);
    }

    #[test]
    fn mtu_out_of_range_is_rejected() {
        usage_error(&["--mtu", "67"]);
        usage_error(&["--mtu", "65482"]);
        assert_eq!(check(&["--mtu", "68"]).unwrap().mtu, 68);
        assert_eq!(check(&["--mtu", "65481"]).unwrap().mtu, 65481);
    }

    #[test]
    fn caps_and_broadcast_limit_reach_the_node_config() {
        let s = check(&[
            "--max-peers",
            "3",
            "--max-macs",
            "4",
            "--max-macs-per-peer",
            "2",
            "--broadcast-limit",
            "50",
        ])
        .unwrap();
        let config = s.node_config(vec![], vec![], Families::of(&s.listen));
        assert_eq!(config.max_peers, 3);
        assert_eq!(config.max_macs, 4);
        assert_eq!(config.max_macs_per_peer, 2);
        assert_eq!(config.broadcast_limit, Some(50));
        let defaults = check(&[]).unwrap();
        assert_eq!(defaults.max_peers, 4096);
        assert_eq!(defaults.max_macs, 65536);
        assert_eq!(defaults.max_macs_per_peer, 4096);
        assert_eq!(defaults.broadcast_limit, None);
    }

    #[test]
    fn zero_caps_are_rejected() {
        for option in [
            "--max-peers",
            "--max-macs",
            "--max-macs-per-peer",
            "--broadcast-limit",
        ] {
            let text = usage_error(&[option, "0"]);
            assert!(text.contains(option), "{text}");
        }
        usage_error(&["--stats-interval", "0"]);
    }

    #[test]
    fn group_without_user_is_rejected() {
        let text = usage_error(&["--group", "nogroup"]);
        assert!(text.contains("--group needs --user"), "{text}");
        assert!(check(&["--user", "nobody", "--group", "nogroup"]).is_ok());
    }

    #[test]
    fn resolve_each_keeps_every_value_with_its_address() {
        let s = check(&["-c", "127.0.0.1:1", "-c", "localhost:1"]).unwrap();
        let each = s.resolve_each().unwrap();
        assert_eq!(each.len(), 2);
        assert_eq!(unique_addrs(&each), ["127.0.0.1:1".parse().unwrap()]);
    }
}
