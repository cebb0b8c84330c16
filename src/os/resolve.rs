//! [`PeerAddr`], a `--connect` value (a literal address or a DNS name, with its port), and
//! resolving it to one address the socket can reach: at start-up (`main`) and again while a
//! named peer is lost (`service`).
//!
//! Owns the resolution rule (the first address of a reachable family, v4-mapped addresses as
//! IPv4). Parsing the text is `cli::addr`'s; this module sits below both its users, so neither
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
