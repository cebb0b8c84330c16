//! [`Settings`]: the command line after checking, typed values only, and what the binary
//! derives from it: the `--connect` peers resolved to addresses, and the node's [`Config`].
//!
//! Owns nothing but these conversions. Values get here only through [`Args::check`]
//! (`check`), so nothing here validates again; it opens no socket or device, that is `main`'s.
//!
//! [`Args::check`]: super::Args::check

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use log::LevelFilter;

use super::PeerAddr;
use crate::error::Error;
use crate::node::Config;
use crate::status::StatsFormat;
use crate::sys::udp::Families;
use crate::wire::Token;

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
    /// `--keepalive`; `None` for the node's default (a quarter of the peer timeout).
    pub keepalive: Option<Duration>,
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
    /// The tap MTU (`--mtu`, else [`default_mtu`](super::default_mtu) for the listen address).
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
    /// The node's private key file for per-node keys, if any (never together with `key_file`).
    pub private_key: Option<PathBuf>,
    /// The trusted public keys' files and directories; not empty exactly when `private_key`
    /// is set.
    pub trusted: Vec<PathBuf>,
    /// How long the loop keeps polling without sleeping after traffic.
    pub busy_poll: Duration,
    /// Threads forwarding frames from the device (`--threads`): the loop and `threads - 1`
    /// lanes, one tap queue each.
    pub threads: usize,
    /// Per-node keys: how often sessions are renewed.
    pub rekey_after: Duration,
    /// The control socket `ethcloud show` asks (`--control-socket`); `None`: the default
    /// path for the device, [`crate::sys::control::default_path`].
    pub control_socket: Option<PathBuf>,
    /// Take part in relaying (not `--no-relay`); sealed modes only.
    pub relay: bool,
    /// `--relay-rate`, in bytes per second.
    pub relay_rate: u64,
    /// Seal with AEGIS-128L where peers open it, and say that we do (not `--no-aegis`).
    pub aegis: bool,
    /// Whether frames to and from direct IPv4 peers go through the kernel (clear protocol
    /// only).
    pub kernel_path: KernelPathMode,
    /// Options given that the mode chosen does not use (the sealed modes' options without
    /// `--key-file` or `--private-key`, the stats file's without `--stats-file`): the daemon
    /// says so at start-up.
    pub unused: Vec<&'static str>,
}

impl Settings {
    /// Resolves every `--connect` peer to one address the socket on `listen` can reach, in
    /// command-line order, each with the value it came from (several values may give the
    /// same address) and its own result: a name that does not resolve is not the others'
    /// failure (the daemon starts without it and resolves it again later).
    ///
    /// Each failure is [`Error::Resolve`] if the name cannot be resolved, or
    /// [`Error::NoUsableAddress`] if it resolves only to addresses of the other family.
    pub fn resolve_each(&self) -> Vec<(PeerAddr, Result<SocketAddr, Error>)> {
        self.resolve_each_unless(|| false).unwrap_or_default()
    }

    /// [`Settings::resolve_each`], asking `stop` before each name (each may take the
    /// resolver's whole timeout): `None` once it says stop.
    pub fn resolve_each_unless(
        &self,
        mut stop: impl FnMut() -> bool,
    ) -> Option<Vec<(PeerAddr, Result<SocketAddr, Error>)>> {
        let families = Families::of(&self.listen);
        let mut each = Vec::with_capacity(self.connect.len());
        for peer in &self.connect {
            if stop() {
                return None;
            }
            each.push((peer.clone(), peer.resolve(families, self.listen)));
        }
        Some(each)
    }

    /// Resolves every `--connect` peer to one address the socket on `listen` can reach,
    /// dropping duplicates, in command-line order.
    ///
    /// # Errors
    ///
    /// The first failure in command-line order, as in [`Settings::resolve_each`].
    pub fn resolve_peers(&self) -> Result<Vec<SocketAddr>, Error> {
        let mut each = Vec::with_capacity(self.connect.len());
        for (peer, result) in self.resolve_each() {
            each.push((peer, Some(result?)));
        }
        Ok(unique_addrs(&each))
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
        config.keepalive = self.keepalive;
        config.relay = self.relay;
        config.relay_rate = self.relay_rate;
        config.aegis = self.aegis;
        config
    }
}

/// The addresses of `resolved` (`None`: a name not resolved), first occurrence kept, in
/// order.
pub fn unique_addrs(resolved: &[(PeerAddr, Option<SocketAddr>)]) -> Vec<SocketAddr> {
    let mut seen = std::collections::HashSet::with_capacity(resolved.len());
    resolved
        .iter()
        .filter_map(|(_, addr)| *addr)
        .filter(|addr| seen.insert(*addr))
        .collect()
}

/// When frames to and from direct IPv4 peers go through the kernel path (`crate::kpath`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelPathMode {
    /// The default: on where the kernel and the daemon's privileges allow it, in the clear
    /// protocol, and while this network namespace has no firewall (the programs run before
    /// netfilter): off, and nothing loaded, if there is one at start-up; stepping aside within
    /// about a second if one comes later.
    Auto,
    /// `--kernel-path` (or `kernel-path = true`): on whatever the firewall, which the kernel
    /// path then follows through its heartbeats; a start-up failure is a warning.
    On,
    /// `--no-kernel-path` (or `kernel-path = false`): every frame through the daemon.
    Off,
}
