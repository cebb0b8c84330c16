//! [`PeerAddr`], a `--connect` value (a literal address or a DNS name, with its port), and
//! resolving it to the addresses the socket can reach: at start-up (`main`, which takes the
//! first) and again while a named peer is lost (`service`, which moves on to the next one).
//!
//! Owns the resolution rule (the addresses of a reachable family in the resolver's order, at
//! most [`MAX_ADDRESSES`], v4-mapped addresses as IPv4). Parsing the text is `cli::addr`'s; this module sits below both its users, so neither
//! `service` nor `main` imports upwards for it.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use crate::error::Error;
use crate::sys::udp::{unmap, Families};

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

/// The most addresses of one name that are kept, and tried in turn while none answers.
pub const MAX_ADDRESSES: usize = 8;

impl PeerAddr {
    /// The first address of this peer of a family in `families` (a literal IP is its own
    /// address). v4-mapped IPv6 addresses count as IPv4.
    ///
    /// # Errors
    ///
    /// As [`PeerAddr::resolve_all`].
    pub fn resolve(&self, families: Families, listen: SocketAddr) -> Result<SocketAddr, Error> {
        let all = self.resolve_all(families, listen)?;
        all.first().copied().ok_or_else(|| Error::NoUsableAddress {
            peer: self.text.clone(),
            listen,
        })
    }

    /// Every address of this peer of a family in `families`, in the resolver's order, without
    /// duplicates, at most [`MAX_ADDRESSES`] (a literal IP is its own one address). v4-mapped
    /// IPv6 addresses count as IPv4. Never empty.
    ///
    /// # Errors
    ///
    /// [`Error::Resolve`] if the name cannot be resolved, [`Error::NoUsableAddress`] if no
    /// address of a reachable family comes back.
    pub fn resolve_all(
        &self,
        families: Families,
        listen: SocketAddr,
    ) -> Result<Vec<SocketAddr>, Error> {
        let mut found = Vec::new();
        match &self.host {
            Host::Ip(ip) => {
                let addr = unmap(SocketAddr::new(*ip, self.port));
                if families.reaches(&addr) {
                    found.push(addr);
                }
            }
            Host::Name(name) => {
                let all = (name.as_str(), self.port)
                    .to_socket_addrs()
                    .map_err(|source| Error::Resolve {
                        peer: self.text.clone(),
                        source,
                    })?;
                for addr in all.map(unmap) {
                    if found.len() >= MAX_ADDRESSES {
                        break;
                    }
                    if families.reaches(&addr) && !found.contains(&addr) {
                        found.push(addr);
                    }
                }
            }
        }
        if found.is_empty() {
            return Err(Error::NoUsableAddress {
                peer: self.text.clone(),
                listen,
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(host: Host) -> PeerAddr {
        PeerAddr {
            text: "peer".to_owned(),
            host,
            port: 3210,
        }
    }

    #[test]
    fn a_literal_is_its_own_one_address_and_a_name_gives_each_usable_one_once() {
        let listen: SocketAddr = "[::]:3210".parse().unwrap();
        let both = Families::of(&listen);
        let literal = peer(Host::Ip("198.18.0.2".parse().unwrap()));
        assert_eq!(
            literal.resolve_all(both, listen).unwrap(),
            ["198.18.0.2:3210".parse::<SocketAddr>().unwrap()]
        );
        // localhost: 127.0.0.1, and ::1 where the hosts file has it.
        let name = peer(Host::Name("localhost".to_owned()));
        let all = name.resolve_all(both, listen).unwrap();
        assert!(!all.is_empty() && all.len() <= MAX_ADDRESSES);
        for (i, addr) in all.iter().enumerate() {
            assert!(addr.ip().is_loopback() && addr.port() == 3210, "{addr}");
            assert!(!all[..i].contains(addr), "{addr} twice");
        }
        assert_eq!(name.resolve(both, listen).unwrap(), all[0]);
        // An IPv4 socket gets the IPv4 ones only; none at all is an error.
        let v4: SocketAddr = "0.0.0.0:3210".parse().unwrap();
        let only_v4 = name.resolve_all(Families::of(&v4), v4).unwrap();
        assert!(only_v4.iter().all(SocketAddr::is_ipv4), "{only_v4:?}");
        let v6_literal = peer(Host::Ip("fd00::2".parse().unwrap()));
        assert!(matches!(
            v6_literal.resolve_all(Families::of(&v4), v4),
            Err(Error::NoUsableAddress { .. })
        ));
    }
}
