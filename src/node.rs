//! PLACEHOLDER API (being written): signatures only.
use std::net::SocketAddr;
use std::time::Duration;

use crate::buf::PacketBuf;
use crate::io::{Device, Socket};
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::Token;

/// Node configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Network token.
    pub token: Token,
    /// --peer-timeout.
    pub peer_timeout: Duration,
    /// --mac-timeout.
    pub mac_timeout: Duration,
    /// Resolved --connect addresses.
    pub connect: Vec<SocketAddr>,
    /// Our own addresses (listen port on every local IP).
    pub own_addrs: Vec<SocketAddr>,
    /// The socket can reach IPv4 peers.
    pub accepts_ipv4: bool,
    /// The socket can reach IPv6 peers.
    pub accepts_ipv6: bool,
}

impl Config {
    /// Defaults of the spec for `token`.
    pub fn new(token: Token) -> Config {
        Config {
            token,
            peer_timeout: Duration::from_secs(1800),
            mac_timeout: Duration::from_secs(300),
            connect: Vec::new(),
            own_addrs: Vec::new(),
            accepts_ipv4: true,
            accepts_ipv6: true,
        }
    }
}

/// The node.
pub struct Node<S: Socket, D: Device> {
    config: Config,
    socket: S,
    device: D,
    stats: Stats,
}

impl<S: Socket, D: Device> Node<S, D> {
    /// New node.
    pub fn new(config: Config, socket: S, device: D, _now: Instant) -> Self {
        Node { config, socket, device, stats: Stats::default() }
    }
    /// A datagram arrived.
    pub fn on_datagram(&mut self, _now: Instant, _from: SocketAddr, _datagram: &[u8]) -> Result<(), DropReason> { Ok(()) }
    /// A frame was read into buf.frame_room()[..len].
    pub fn on_frame(&mut self, _now: Instant, _buf: &mut PacketBuf, _len: usize) -> Result<(), DropReason> { Ok(()) }
    /// Timers.
    pub fn housekeep(&mut self, _now: Instant) {}
    /// When housekeep must run next.
    pub fn next_deadline(&self) -> Instant { Instant::FAR_FUTURE }
    /// Send Close to all.
    pub fn shutdown(&mut self, _now: Instant) {}
    /// Counters.
    pub fn stats(&self) -> &Stats { &self.stats }
    /// Number of peers.
    pub fn peer_count(&self) -> usize { 0 }
    /// Config.
    pub fn config(&self) -> &Config { &self.config }
    /// Socket.
    pub fn socket_mut(&mut self) -> &mut S { &mut self.socket }
    /// Device.
    pub fn device_mut(&mut self) -> &mut D { &mut self.device }
}
