//! The command line: [`Args`] as clap parses it (the options, short and long names and defaults
//! of the seed spec's synopsis), and [`Args::check`], which turns the raw strings into typed,
//! checked [`Settings`] once, at the edge.
//!
//! Owns option syntax and value validation, and resolving `--connect` names. It does not open
//! anything: `main` builds the sockets and devices from [`Settings`]. Validation failures are
//! usage errors ([`Error::exit_code`] 2); a name that cannot be resolved is a run-time failure
//! (exit 1).

use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use clap::Parser;
use log::LevelFilter;

use crate::error::Error;
use crate::node::Config;
use crate::sys::tap;
use crate::sys::udp::{unmap, Families};
use crate::wire::Token;

/// The raw command line, exactly the options of the seed spec.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "ethcloud",
    version,
    about = "Layer 2 VPN over UDP: a learning Ethernet switch whose ports are peers in a \
             self-forming mesh"
)]
pub struct Args {
    /// Name of the tap device (%d lets the kernel pick a number)
    #[arg(
        short = 'd',
        long = "device",
        value_name = "device",
        default_value = "ethcloud%d"
    )]
    pub device: String,

    /// Address to listen on ([::]:port also serves IPv4 peers)
    #[arg(
        short = 'l',
        long = "listen",
        value_name = "listen",
        default_value = "0.0.0.0:3210"
    )]
    pub listen: String,

    /// Token that identifies the network
    #[arg(short = 't', long = "token", value_name = "token", default_value = "0")]
    pub token: String,

    /// List of peers (addr:port) to connect to; repeat for more peers
    #[arg(short = 'c', long = "connect", value_name = "connect")]
    pub connect: Vec<String>,

    /// Peer timeout in seconds
    #[arg(
        long = "peer-timeout",
        value_name = "peer_timeout",
        default_value_t = 1800
    )]
    pub peer_timeout_secs: u64,

    /// Mac table entry timeout in seconds
    #[arg(
        long = "mac-timeout",
        value_name = "mac_timeout",
        default_value_t = 300
    )]
    pub mac_timeout_secs: u64,

    /// Log verbosely
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,

    /// Only print error messages
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,
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
}

/// The host part of a `--connect` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A literal IPv4 or IPv6 address.
    Ip(IpAddr),
    /// A DNS name, resolved at start-up.
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

impl Args {
    /// The log level asked for: `Debug` with `-v`, `Error` with `-q`, else `Info`.
    pub fn log_level(&self) -> LevelFilter {
        if self.verbose {
            LevelFilter::Debug
        } else if self.quiet {
            LevelFilter::Error
        } else {
            LevelFilter::Info
        }
    }

    /// Checks every value and returns them typed.
    ///
    /// # Errors
    ///
    /// A usage error ([`Error::exit_code`] 2) naming the first bad value: token not a number
    /// or 2^56 or more, listen or connect address without a valid port, a device name the
    /// kernel would refuse, a timeout of 0, or a literal `--connect` IP of a family the
    /// listen address cannot reach.
    pub fn check(&self) -> Result<Settings, Error> {
        tap::check_name(&self.device).map_err(|reason| Error::InvalidDeviceName {
            name: self.device.clone(),
            reason,
        })?;
        let listen = parse_listen(&self.listen)?;
        let token = parse_token(&self.token)?;
        let families = Families::of(&listen);
        let mut connect = Vec::with_capacity(self.connect.len());
        for text in &self.connect {
            let peer = parse_peer(text)?;
            if let Host::Ip(ip) = peer.host {
                let addr = SocketAddr::new(ip, peer.port);
                if !families.reaches(&addr) {
                    return Err(Error::UnreachablePeer { peer: addr, listen });
                }
            }
            connect.push(peer);
        }
        Ok(Settings {
            device: self.device.clone(),
            listen,
            token,
            connect,
            peer_timeout: timeout(self.peer_timeout_secs, "--peer-timeout")?,
            mac_timeout: timeout(self.mac_timeout_secs, "--mac-timeout")?,
            log_level: self.log_level(),
        })
    }
}

impl Settings {
    /// Resolves every `--connect` peer to one address the socket on `listen` can reach,
    /// dropping duplicates, in command-line order.
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] if a name cannot be resolved, [`Error::NoUsableAddress`] if it
    /// resolves only to addresses of the other family.
    pub fn resolve_peers(&self) -> Result<Vec<SocketAddr>, Error> {
        let families = Families::of(&self.listen);
        let mut addrs: Vec<SocketAddr> = Vec::with_capacity(self.connect.len());
        for peer in &self.connect {
            let addr = peer.resolve(families, self.listen)?;
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
        Ok(addrs)
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
        config
    }
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
}
