//! The values of `--token`, `--listen` and `--connect` as text: their syntax, parsed once
//! into [`Token`], [`SocketAddr`] and [`PeerAddr`] (resolving one is `os::resolve`'s job).
//!
//! Owns the address syntax (IPv6 in brackets, a port that must be there, what may pass as a
//! DNS name) and the error message naming what is wrong. Which value is used (command line,
//! file or default) is decided in `check`, never here.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use crate::error::Error;
pub use crate::os::resolve::{Host, PeerAddr};
use crate::peers::unscoped_link_local;
use crate::wire::Token;

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
    if unscoped_link_local(SocketAddr::new(ip, port)) {
        return Err(invalid(LINK_LOCAL));
    }
    // Linux binds a UDP socket to such an address, and the node would then hear nothing:
    // it sends from its unicast address, where peers answer.
    if crate::peers::is_group(ip.to_canonical()) {
        return Err(invalid(
            "a multicast or broadcast address: listen on a unicast address, or 0.0.0.0 or [::]",
        ));
    }
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
        Some(ip) if unscoped_link_local(SocketAddr::new(ip, port)) => {
            return Err(invalid(LINK_LOCAL))
        }
        // An IPv4-mapped IPv6 address (`[::ffff:198.18.0.2]`) is that IPv4 address, as peer
        // lists and the socket treat it.
        Some(ip) => Host::Ip(ip.to_canonical()),
        None if is_dns_name(host) => Host::Name(host.to_owned()),
        None => return Err(invalid("the host is neither an IP address nor a DNS name")),
    };
    Ok(PeerAddr {
        text: text.to_owned(),
        host,
        port,
    })
}

/// Why an IPv6 link-local address is refused: it needs its interface (a scope), which
/// nothing here carries, so the socket could neither bind to it nor send to it.
const LINK_LOCAL: &str =
    "a link-local address needs an interface, which ethcloud cannot take: use a global or unique local address";

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
    match host.parse::<IpAddr>() {
        Ok(ip) => Ok(Some(ip)),
        // No DNS name ends in a label of digits: this is an address the resolver would read
        // the old inet_aton way (010.0.0.1 as 8.0.0.1, 3232235777 as 192.168.1.1).
        Err(_) if ends_in_a_number(host) => {
            Err("not an IPv4 address: four decimal numbers from 0 to 255, without leading zeros")
        }
        Err(_) => Ok(None),
    }
}

/// Whether the last dot-separated label of `host` is a number as `inet_aton` reads one:
/// decimal digits, or `0x` and hexadecimal digits.
fn ends_in_a_number(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.rsplit('.').next().is_some_and(|last| {
        let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
        match hex {
            Some(digits) => digits.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()),
        }
    })
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
