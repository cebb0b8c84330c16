//! A deterministic, in-process network of ethcloud nodes.
//!
//! Owns the fake network only: datagrams in flight (FIFO, zero latency), loss from a seeded
//! xorshift RNG, blocked links (partitions), NAT'ed nodes, and a fake clock advanced in 1-second
//! ticks. It drives the library's public API (`Node`, `Socket`, `Device`) and nothing else: no
//! threads, no sockets, no wall clock, ordered maps only. The same seed gives the same trace;
//! every assertion names the seed.

#![allow(dead_code)]

pub mod cpu;

#[allow(unused_imports)] // (not every test crate that includes the simulator asks)
pub use cpu::seals_aegis_here;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::buf::PacketBuf;
use ethcloud::io::{Device, Socket};
use ethcloud::node::{Config, Node};
use ethcloud::stats::Stats;
use ethcloud::time::Instant;
use ethcloud::wire::Token;

/// How long a NAT keeps a mapping open after the inside node last sent to an address, unless
/// a test sets [`Simulator::nat_timeout`].
pub const NAT_TIMEOUT: Duration = Duration::from_secs(120);

/// A socket that records what the node sends.
#[derive(Default)]
pub struct SimSocket {
    pub outbox: Vec<(SocketAddr, Vec<u8>)>,
}

impl Socket for SimSocket {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.outbox.push((to, datagram.to_vec()));
        Ok(())
    }
}

/// A tap device that records the frames written to it.
#[derive(Default)]
pub struct SimDevice {
    pub written: Vec<Vec<u8>>,
    /// What the node last passed to [`Device::trust_checksums`].
    pub trusts_checksums: bool,
    /// Whether it says it completes checksums when trusting them (as a tap with a virtio-net
    /// header does); see [`Simulator::plain_devices`].
    pub completes_checksums: bool,
}

impl Device for SimDevice {
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.written.push(frame.to_vec());
        Ok(())
    }

    fn trust_checksums(&mut self, on: bool) -> bool {
        self.trusts_checksums = on;
        on && self.completes_checksums
    }
}

/// Small deterministic RNG (xorshift64).
pub struct XorShift64(u64);

impl XorShift64 {
    pub fn new(seed: u64) -> Self {
        XorShift64(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// Uniform-ish in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

pub type SimNode = Node<SimSocket, SimDevice>;

/// What one node sent, by kind, as a wiretap sees it (clear protocol; sealed datagrams of the
/// keyed mode are counted as `sealed`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Empty peer lists (10 bytes): keepalives.
    pub keepalives: u64,
    pub keepalive_bytes: u64,
    /// Peer lists with entries: gossip, and answers to "get peer list".
    pub lists: u64,
    pub list_bytes: u64,
    /// "get peer list" and Close.
    pub requests: u64,
    pub request_bytes: u64,
    /// Ethernet frames.
    pub frames: u64,
    /// Sealed datagrams (keyed mode), any kind.
    pub sealed: u64,
}

impl Traffic {
    fn count(&mut self, bytes: &[u8]) {
        let len = bytes.len() as u64;
        match bytes.get(7) {
            Some(1) if len == 10 => {
                self.keepalives += 1;
                self.keepalive_bytes += len;
            }
            Some(1) => {
                self.lists += 1;
                self.list_bytes += len;
            }
            Some(2) | Some(3) => {
                self.requests += 1;
                self.request_bytes += len;
            }
            Some(0) => self.frames += 1,
            _ => self.sealed += 1,
        }
    }

    /// Datagrams of every kind.
    pub fn datagrams(&self) -> u64 {
        self.keepalives + self.lists + self.requests + self.frames + self.sealed
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Traffic) {
        self.keepalives += other.keepalives;
        self.keepalive_bytes += other.keepalive_bytes;
        self.lists += other.lists;
        self.list_bytes += other.list_bytes;
        self.requests += other.requests;
        self.request_bytes += other.request_bytes;
        self.frames += other.frames;
        self.sealed += other.sealed;
    }
}

struct Datagram {
    from: SocketAddr,
    to: SocketAddr,
    bytes: Vec<u8>,
}

pub struct Simulator {
    pub seed: u64,
    pub now: Instant,
    pub nodes: BTreeMap<SocketAddr, SimNode>,
    configs: BTreeMap<SocketAddr, Config>,
    in_flight: VecDeque<Datagram>,
    pub rng: XorShift64,
    /// Chance in 1000 that any datagram is lost.
    pub loss_per_mille: u16,
    blocked: BTreeSet<(SocketAddr, SocketAddr)>,
    /// NAT'ed node → (remote → last time the node sent to it).
    nat: BTreeMap<SocketAddr, BTreeMap<SocketAddr, Instant>>,
    /// How long the NATs keep a mapping open ([`NAT_TIMEOUT`] unless set): Linux's conntrack
    /// keeps a one-way UDP mapping for 30 s.
    pub nat_timeout: Duration,
    /// A second address of a node (of the other family: a dual-stack host) → the node.
    aliases: BTreeMap<SocketAddr, SocketAddr>,
    /// Public address -> node behind a NAT that hairpins (see [`Simulator::add_hairpin`]).
    hairpins: BTreeMap<SocketAddr, SocketAddr>,
    /// (from, to, byte after the token): the next such datagram is lost.
    lose_next: Option<(SocketAddr, SocketAddr, u8)>,
    next_host: u32,
    buf: PacketBuf,
    /// FNV-1a over every delivered datagram (time, from, to, bytes): the trace fingerprint.
    pub trace_hash: u64,
    pub delivered: u64,
    pub lost: u64,
    /// When `Some`, every delivered datagram's bytes are kept here (what a wiretap sees).
    pub wire_log: Option<Vec<Vec<u8>>>,
    /// When set, every delivered datagram with its source and destination.
    pub flow_log: Option<Vec<(SocketAddr, SocketAddr, Vec<u8>)>>,
    /// Nodes that stand for an ethcloud from before AEGIS-128L (give them `aegis = false` too,
    /// so that they do not announce it): a datagram under marker 0x83 to one of them is
    /// dropped, as such a node drops what it cannot open, and counted in `aegis_to_old`.
    pub old_nodes: BTreeSet<SocketAddr>,
    /// Datagrams under AEGIS-128L sent to one of `old_nodes`.
    pub aegis_to_old: u64,
    /// Addresses whose nodes (when started or restarted) get a device that does not complete
    /// checksums, as a tap without a virtio-net header or an older ethcloud: they do not
    /// announce the Hello flag 0x20. Every other node's device does.
    pub plain_devices: BTreeSet<SocketAddr>,
    /// Datagrams delivered to each address.
    received: BTreeMap<SocketAddr, u64>,
    starts: u32,
    /// What each node sent, by kind (kept across restarts at the same address).
    pub traffic: BTreeMap<SocketAddr, Traffic>,
    /// When `Some`: for each watched pair (from, to), the last delivery and the longest silence
    /// so far ([`Simulator::watch_gaps`]).
    gaps: Option<BTreeMap<(SocketAddr, SocketAddr), (Instant, Duration)>>,
}

fn ip_bits(addr: SocketAddr) -> u32 {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => u32::from(ip),
        std::net::IpAddr::V6(ip) => ip
            .octets()
            .iter()
            .fold(0, |h, b| h.rotate_left(5) ^ u32::from(*b)),
    }
}

impl Simulator {
    /// A simulator whose random choices (delivery order, loss) follow `seed`, XORed with a
    /// multiple of `ETHCLOUD_SIM_SEED` (a decimal number) where that is set: a test that
    /// holds only for the order of events its own seed gives is found by running the suite
    /// again with a few values of it (`ETHCLOUD_SIM_SEED=1 cargo test --test relay`). The
    /// simulator's own failures name the seed used; a test's own messages name its seed.
    pub fn new(seed: u64) -> Self {
        // (Spread over every bit: a plain XOR with 1 would only swap neighbouring seeds, and
        // tests often use runs of them.)
        let seed = seed
            ^ std::env::var("ETHCLOUD_SIM_SEED")
                .map(|s| {
                    s.parse::<u64>()
                        .expect("ETHCLOUD_SIM_SEED must be a decimal number")
                })
                .unwrap_or(0)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        Simulator {
            seed,
            now: Instant::from_secs(1_000),
            nodes: BTreeMap::new(),
            configs: BTreeMap::new(),
            in_flight: VecDeque::new(),
            rng: XorShift64::new(seed),
            loss_per_mille: 0,
            blocked: BTreeSet::new(),
            nat: BTreeMap::new(),
            nat_timeout: NAT_TIMEOUT,
            aliases: BTreeMap::new(),
            hairpins: BTreeMap::new(),
            lose_next: None,
            next_host: 1,
            buf: PacketBuf::new(),
            trace_hash: 0xcbf2_9ce4_8422_2325,
            delivered: 0,
            lost: 0,
            wire_log: None,
            flow_log: None,
            old_nodes: BTreeSet::new(),
            aegis_to_old: 0,
            plain_devices: BTreeSet::new(),
            received: BTreeMap::new(),
            starts: 0,
            traffic: BTreeMap::new(),
            gaps: None,
        }
    }

    /// A config for tests: token 1, the spec's timeouts.
    /// A node's config: token 1, clear; AEGIS-128X4 off whatever the CPU (a test turns it on),
    /// so that every machine runs the same protocol.
    pub fn config() -> Config {
        let mut cfg = Config::new(Token::new(1).unwrap());
        cfg.aegis_x4 = false;
        cfg
    }

    /// [`Simulator::config`] in keyed mode with the key of 32 `key_byte`s (the simulator
    /// gives every start its own session).
    pub fn keyed_config(key_byte: u8) -> Config {
        let mut cfg = Simulator::config();
        cfg.keyed = Some(ethcloud::node::Keyed {
            key: ethcloud::crypto::Key::from_bytes([key_byte; 32]),
            session: [0; 16],
        });
        cfg
    }

    /// [`Simulator::config`] in identity mode: the private key made from 32 `secret` bytes,
    /// trusting the public keys of the nodes named by `trusted` (their `secret` bytes).
    pub fn identity_config(secret: u8, trusted: &[u8]) -> Config {
        use ethcloud::identity::{IdentityConfig, SecretKey, TrustedKeys};
        let mut cfg = Simulator::config();
        let mut keys = TrustedKeys::new();
        for t in trusted {
            keys.insert(Simulator::public_key(*t), &format!("node{t}"));
        }
        cfg.identity = Some(ethcloud::node::IdentitySetup {
            secret: SecretKey::from_random([secret; 32]),
            trusted: keys,
            config: IdentityConfig::new(
                Instant::ZERO,
                1_700_000_000_000_000_000,
                u64::from(secret),
            ),
        });
        cfg
    }

    /// The public key of the node made with `secret` bytes (see [`Simulator::identity_config`]).
    pub fn public_key(secret: u8) -> ethcloud::identity::PublicKey {
        ethcloud::identity::SecretKey::from_random([secret; 32]).public_key()
    }

    /// A fresh address in 198.18.0.0/15.
    pub fn next_addr(&mut self) -> SocketAddr {
        let n = self.next_host;
        self.next_host += 1;
        let ip = 0xc612_0000u32 + n; // 198.18.0.0 + n
        SocketAddr::from((std::net::Ipv4Addr::from(ip), 3210))
    }

    /// Adds a node at a fresh address; it knows its own address.
    pub fn add_node(&mut self, cfg: &Config) -> SocketAddr {
        let addr = self.next_addr();
        self.add_node_at(addr, cfg);
        addr
    }

    pub fn add_nodes<const N: usize>(&mut self, cfg: &Config) -> [SocketAddr; N] {
        std::array::from_fn(|_| self.add_node(cfg))
    }

    /// Adds `n` nodes of `cfg`, each given the one before it as its `--connect` address (a
    /// chain: only neighbours know each other at first).
    pub fn add_chain(&mut self, cfg: &Config, n: usize) -> Vec<SocketAddr> {
        let nodes: Vec<SocketAddr> = (0..n).map(|_| self.add_node(cfg)).collect();
        for w in nodes.windows(2) {
            self.connect(w[1], w[0]);
        }
        nodes
    }

    /// Adds `n` nodes of `cfg`, each after the first given the first as its `--connect`
    /// address (a star around the first).
    pub fn add_star(&mut self, cfg: &Config, n: usize) -> Vec<SocketAddr> {
        let nodes: Vec<SocketAddr> = (0..n).map(|_| self.add_node(cfg)).collect();
        for node in &nodes[1..] {
            self.connect(*node, nodes[0]);
        }
        nodes
    }

    /// Adds (or restarts) a node at `addr`.
    pub fn add_node_at(&mut self, addr: SocketAddr, cfg: &Config) {
        let mut cfg = cfg.clone();
        if !cfg.own_addrs.contains(&addr) {
            cfg.own_addrs.push(addr);
        }
        let mut run_cfg = cfg.clone();
        if let Some(keyed) = run_cfg.keyed.as_mut() {
            // A fresh session per start, as the daemon makes one: start time, then the
            // address and a start counter in place of random bytes.
            self.starts += 1;
            keyed.session[..8].copy_from_slice(&self.now.as_millis().to_be_bytes());
            let tail = (u64::from(self.starts) << 32) ^ u64::from(ip_bits(addr));
            keyed.session[8..].copy_from_slice(&tail.to_be_bytes());
        }
        if let Some(identity) = run_cfg.identity.as_mut() {
            // The wall clock moves on with the simulated one; the index seed differs per start.
            self.starts += 1;
            identity.config.started = self.now;
            identity.config.wall_start_nanos += self.now.as_millis() * 1_000_000;
            let start = (u64::from(self.starts) << 32) ^ u64::from(ip_bits(addr));
            for (byte, with) in identity.config.seed.0.iter_mut().zip(start.to_le_bytes()) {
                *byte ^= with;
            }
        }
        let device = SimDevice {
            completes_checksums: !self.plain_devices.contains(&addr),
            ..SimDevice::default()
        };
        let node = Node::new(run_cfg, SimSocket::default(), device, self.now);
        self.configs.insert(addr, cfg);
        self.nodes.insert(addr, node);
        self.flush(addr);
    }

    /// Gives keyed node `a` a new key, as SIGHUP after a new key file does: a fresh session is
    /// made as at a start ([`Node::rekey`]). Restarts of `a` use the new key.
    pub fn rekey(&mut self, a: SocketAddr, key: ethcloud::crypto::Key) -> ethcloud::node::Rekey {
        self.starts += 1;
        let mut session = [0u8; 16];
        session[..8].copy_from_slice(&self.now.as_millis().to_be_bytes());
        let tail = (u64::from(self.starts) << 32) ^ u64::from(ip_bits(a));
        session[8..].copy_from_slice(&tail.to_be_bytes());
        if let Some(keyed) = self.configs.get_mut(&a).and_then(|c| c.keyed.as_mut()) {
            keyed.key = key.clone();
        }
        let now = self.now;
        let done = self
            .node(a)
            .rekey(now, ethcloud::node::Keyed { key, session });
        self.flush(a);
        done
    }

    fn node(&mut self, addr: SocketAddr) -> &mut SimNode {
        let seed = self.seed;
        self.nodes
            .get_mut(&addr)
            .unwrap_or_else(|| panic!("seed {seed:#x}: no node at {addr}"))
    }

    /// Identity mode: `a` now trusts only the nodes named by `trusted` (as SIGHUP after the
    /// trust file changed). Returns how many peer addresses were cut off.
    pub fn set_trusted(&mut self, a: SocketAddr, trusted: &[u8]) -> usize {
        let mut keys = ethcloud::identity::TrustedKeys::new();
        for t in trusted {
            keys.insert(Simulator::public_key(*t), &format!("node{t}"));
        }
        if let Some(identity) = self.configs.get_mut(&a).and_then(|c| c.identity.as_mut()) {
            identity.trusted = keys.clone();
        }
        let now = self.now;
        let cut = self.node(a).set_trusted(now, keys);
        self.flush(a);
        cut
    }

    /// Identity mode: the session counters of `a`.
    pub fn session_stats(&self, a: SocketAddr) -> ethcloud::identity::SessionStats {
        self.nodes
            .get(&a)
            .and_then(|n| n.sessions())
            .map(|s| *s.stats())
            .unwrap_or_default()
    }

    /// Identity mode: the id of the session `a` seals with towards the node made with `secret`.
    pub fn session_id(&self, a: SocketAddr, secret: u8) -> Option<[u8; 16]> {
        let key = Simulator::public_key(secret);
        self.nodes
            .get(&a)
            .and_then(|n| n.sessions())
            .and_then(|s| s.current_session(&key))
            .map(|(id, _, _)| id)
    }

    /// Identity mode: the cipher `a` seals with towards the node made with `secret`.
    pub fn session_cipher(&self, a: SocketAddr, secret: u8) -> Option<ethcloud::crypto::Cipher> {
        let key = Simulator::public_key(secret);
        self.nodes
            .get(&a)
            .and_then(|n| n.sessions())
            .and_then(|s| s.current_cipher(&key))
    }

    /// Tells `a` to connect to `b` (as `-c b`).
    pub fn connect(&mut self, a: SocketAddr, b: SocketAddr) {
        let now = self.now;
        self.node(a).add_connect(now, b);
        if let Some(cfg) = self.configs.get_mut(&a) {
            cfg.connect.push(b); // remembered for restarts
        }
    }

    /// Gives the node at `node` a second address `alias` of the other family, as a dual-stack
    /// host has: datagrams to `alias` reach it, and what it sends to an address of that
    /// family leaves from `alias`. The node must know `alias` as its own (`own_addrs` of its
    /// config), as the daemon knows its local addresses.
    pub fn add_alias(&mut self, node: SocketAddr, alias: SocketAddr) {
        assert_ne!(
            node.is_ipv4(),
            alias.is_ipv4(),
            "an alias is of the other family"
        );
        self.aliases.insert(alias, node);
    }

    /// `public` is where the outside reaches `node` (a 1:1 NAT or a port forward), and the
    /// NAT hairpins: what `node` itself sends to `public` comes back to it, from `public`.
    pub fn add_hairpin(&mut self, node: SocketAddr, public: SocketAddr) {
        self.hairpins.insert(public, node);
    }

    /// The address a datagram from the node at `addr` to `to` leaves from.
    fn source(&self, addr: SocketAddr, to: SocketAddr) -> SocketAddr {
        if addr.is_ipv4() == to.is_ipv4() {
            return addr;
        }
        self.aliases
            .iter()
            .find(|(alias, node)| **node == addr && alias.is_ipv4() == to.is_ipv4())
            .map_or(addr, |(alias, _)| *alias)
    }

    /// Moves what `addr` sent into flight.
    fn flush(&mut self, addr: SocketAddr) {
        let now = self.now;
        let Some(node) = self.nodes.get_mut(&addr) else {
            return;
        };
        let out = std::mem::take(&mut node.socket_mut().outbox);
        if !out.is_empty() {
            let traffic = self.traffic.entry(addr).or_default();
            for (_, bytes) in &out {
                traffic.count(bytes);
            }
        }
        for (to, bytes) in out {
            if let Some(seen) = self.nat.get_mut(&addr) {
                seen.insert(to, now);
            }
            let from = self.source(addr, to);
            self.in_flight.push_back(Datagram { from, to, bytes });
        }
    }

    /// A frame appears on `a`'s tap device.
    pub fn inject_frame(&mut self, a: SocketAddr, frame: &[u8]) {
        let now = self.now;
        let mut buf = std::mem::take(&mut self.buf);
        buf.frame_room()[..frame.len()].copy_from_slice(frame);
        let _ = self.node(a).on_frame(now, &mut buf, frame.len());
        self.buf = buf;
        self.flush(a);
    }

    /// Frames written to `b`'s tap since the last call.
    pub fn take_frames(&mut self, b: SocketAddr) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.node(b).device_mut().written)
    }

    /// Removes `a` without a Close (crash, power cut).
    pub fn kill(&mut self, a: SocketAddr) {
        self.nodes.remove(&a);
    }

    /// Stops `a` cleanly: it sends Close to its peers, then is gone.
    pub fn shutdown(&mut self, a: SocketAddr) {
        let now = self.now;
        self.node(a).shutdown(now);
        self.flush(a);
        self.nodes.remove(&a);
    }

    /// Restarts a node at `a` with its previous configuration.
    /// Whether node `at` would leave the TCP/UDP checksums of the frames it cuts from a
    /// super-frame to `dst` (on `vlan`) partial, now.
    pub fn leaves_partial(&self, at: SocketAddr, dst: [u8; 6], vlan: Option<u16>) -> bool {
        let f = frame(dst, mac(0xfe), vlan, 0);
        self.nodes[&at].leaves_checksums_partial(self.now, &f)
    }

    pub fn restart(&mut self, a: SocketAddr) {
        let cfg = self
            .configs
            .get(&a)
            .cloned()
            .expect("restart of a node never added");
        self.add_node_at(a, &cfg);
    }

    /// A NAT in front of `old` gives it a new public address `new`: the node goes on with its
    /// state, but everything it sends now comes from `new` and only `new` reaches it (its own
    /// idea of its address does not change, as behind a real NAT).
    pub fn rebind(&mut self, old: SocketAddr, new: SocketAddr) {
        if let Some(node) = self.nodes.remove(&old) {
            self.nodes.insert(new, node);
        }
        if let Some(cfg) = self.configs.remove(&old) {
            self.configs.insert(new, cfg);
        }
    }

    /// Drops all datagrams between `a` and `b`, both ways.
    pub fn partition(&mut self, a: SocketAddr, b: SocketAddr) {
        self.blocked.insert((a, b));
        self.blocked.insert((b, a));
    }

    /// Drops what `a` sends to `b` (only that way) until [`Simulator::heal`].
    pub fn block_one_way(&mut self, a: SocketAddr, b: SocketAddr) {
        self.blocked.insert((a, b));
    }

    pub fn heal(&mut self, a: SocketAddr, b: SocketAddr) {
        self.blocked.remove(&(a, b));
        self.blocked.remove(&(b, a));
    }

    pub fn heal_all(&mut self) {
        self.blocked.clear();
    }

    /// Puts `a` behind a NAT: datagrams to it pass only from addresses it sent to in the last
    /// [`Simulator::nat_timeout`].
    pub fn set_nat(&mut self, a: SocketAddr) {
        self.nat.entry(a).or_default();
    }

    fn record(&mut self, d: &Datagram) {
        if let Some(log) = self.wire_log.as_mut() {
            log.push(d.bytes.clone());
        }
        if let Some(log) = self.flow_log.as_mut() {
            log.push((d.from, d.to, d.bytes.clone()));
        }
        let mut h = self.trace_hash;
        let mut feed = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(&self.now.as_millis().to_le_bytes());
        // the addresses as bytes (not text: no allocation per datagram)
        for addr in [d.from, d.to] {
            match addr.ip() {
                std::net::IpAddr::V4(ip) => feed(&ip.octets()),
                std::net::IpAddr::V6(ip) => feed(&ip.octets()),
            }
            feed(&addr.port().to_be_bytes());
        }
        feed(&d.bytes);
        self.trace_hash = h;
    }

    /// Puts a datagram in flight as if `from` had sent it (forged, replayed or captured bytes).
    pub fn inject_datagram(&mut self, from: SocketAddr, to: SocketAddr, bytes: Vec<u8>) {
        self.in_flight.push_back(Datagram { from, to, bytes });
    }

    /// Gives the first datagram in flight from `from` to `to` whose byte after the token is
    /// `kind` (any, if `None`) the source address `as_from` instead: a node that forges its
    /// source. Returns whether there was one.
    pub fn spoof_source(
        &mut self,
        from: SocketAddr,
        to: SocketAddr,
        kind: Option<u8>,
        as_from: SocketAddr,
    ) -> bool {
        let found = self.in_flight.iter_mut().find(|d| {
            d.from == from && d.to == to && kind.is_none_or(|k| d.bytes.get(7) == Some(&k))
        });
        match found {
            Some(d) => {
                d.from = as_from;
                true
            }
            None => false,
        }
    }

    /// The next datagram from `from` to `to` whose byte after the token is `kind` is lost
    /// (once); [`Simulator::lost_next`] says whether that happened yet.
    pub fn lose_next(&mut self, from: SocketAddr, to: SocketAddr, kind: u8) {
        self.lose_next = Some((from, to, kind));
    }

    /// Whether the datagram [`Simulator::lose_next`] asked for was lost.
    pub fn lost_next(&self) -> bool {
        self.lose_next.is_none()
    }

    /// Delivers (or drops) one datagram. Returns false when nothing was in flight.
    pub fn step(&mut self) -> bool {
        let Some(d) = self.in_flight.pop_front() else {
            return false;
        };
        if self.lose_next.is_some_and(|(from, to, kind)| {
            d.from == from && d.to == to && d.bytes.get(7) == Some(&kind)
        }) {
            self.lose_next = None;
            self.lost += 1;
            return true;
        }
        if self.loss_per_mille > 0 && self.rng.below(1000) < usize::from(self.loss_per_mille) {
            self.lost += 1;
            return true;
        }
        if self.blocked.contains(&(d.from, d.to)) {
            self.lost += 1;
            return true;
        }
        if let Some(seen) = self.nat.get(&d.to) {
            let open = seen
                .get(&d.from)
                .is_some_and(|t| self.now.saturating_duration_since(*t) < self.nat_timeout);
            if !open {
                self.lost += 1;
                return true;
            }
        }
        let mut d = d;
        let at = match self.hairpins.get(&d.to) {
            Some(&node) => {
                if d.from == node {
                    d.from = d.to;
                }
                node
            }
            None => self.aliases.get(&d.to).copied().unwrap_or(d.to),
        };
        if !self.nodes.contains_key(&at) {
            self.lost += 1;
            return true;
        }
        if self.old_nodes.contains(&d.to) && matches!(d.bytes.get(7), Some(&(0x83 | 0x84))) {
            self.aegis_to_old += 1;
            return true;
        }
        self.record(&d);
        self.delivered += 1;
        *self.received.entry(at).or_default() += 1;
        if let Some((last, longest)) = self.gaps.as_mut().and_then(|g| g.get_mut(&(d.from, d.to))) {
            *longest = (*longest).max(self.now.saturating_duration_since(*last));
            *last = self.now;
        }
        let now = self.now;
        let _ = self.node(at).on_datagram(now, d.from, &mut d.bytes);
        self.flush(at);
        true
    }

    /// Delivers until nothing is in flight; panics (naming the seed) past `max_steps`, which
    /// catches message storms.
    pub fn run_until_idle(&mut self, max_steps: usize) {
        for _ in 0..max_steps {
            if !self.step() {
                return;
            }
        }
        panic!(
            "seed {:#x}: still {} datagrams in flight after {max_steps} steps (storm?)",
            self.seed,
            self.in_flight.len()
        );
    }

    /// One second passes: every node whose deadline is due housekeeps (in address order), then
    /// the network settles.
    pub fn tick(&mut self) {
        self.tick_timers();
        let budget = 1000 + 200 * self.nodes.len() * self.nodes.len();
        self.run_until_idle(budget);
    }

    /// One second passes and every node whose deadline is due housekeeps (in address order);
    /// what they send stays in flight, for [`Simulator::step`].
    pub fn tick_timers(&mut self) {
        self.now += Duration::from_secs(1);
        let now = self.now;
        let addrs: Vec<SocketAddr> = self.nodes.keys().copied().collect();
        for addr in addrs {
            let node = self.node(addr);
            if now >= node.next_deadline() {
                node.housekeep(now);
            }
            self.flush(addr);
        }
    }

    /// Moves the clock on by `d` (less than a second: no node's timers run), then lets the
    /// network settle.
    pub fn pass(&mut self, d: Duration) {
        assert!(
            d < Duration::from_secs(1),
            "timers would be due: use advance"
        );
        self.now += d;
        self.run_until_idle(10_000);
    }

    /// Advances the clock by `d` in 1-second ticks.
    pub fn advance(&mut self, d: Duration) {
        for _ in 0..d.as_secs() {
            self.tick();
        }
    }

    /// Advances until `cond` holds; returns the simulated time it took. Panics past `limit`.
    pub fn advance_until(
        &mut self,
        limit: Duration,
        mut cond: impl FnMut(&Simulator) -> bool,
    ) -> Duration {
        let start = self.now;
        for _ in 0..limit.as_secs() {
            if cond(self) {
                return self.now.saturating_duration_since(start);
            }
            self.tick();
        }
        if cond(self) {
            return self.now.saturating_duration_since(start);
        }
        panic!(
            "seed {:#x}: condition not reached within {limit:?}",
            self.seed
        );
    }

    /// True when every node has every other node as a peer, and nothing else.
    /// Whether each of `among` has every other one of them as a verified peer.
    pub fn is_full_mesh_among(&self, among: &[SocketAddr]) -> bool {
        among.iter().all(|a| {
            let peers = self.peers_of(*a);
            among.iter().all(|b| b == a || peers.contains(b))
        })
    }

    /// Datagrams delivered to `a` so far (from anyone).
    pub fn received_by(&self, a: SocketAddr) -> u64 {
        self.received.get(&a).copied().unwrap_or(0)
    }

    /// Identity mode: the receiving sessions `a` holds.
    pub fn node_sessions(&self, a: SocketAddr) -> usize {
        self.nodes
            .get(&a)
            .and_then(|n| n.sessions())
            .map_or(0, |s| s.open_sessions())
    }

    pub fn is_full_mesh(&self) -> bool {
        let all: BTreeSet<SocketAddr> = self.nodes.keys().copied().collect();
        self.nodes.iter().all(|(addr, node)| {
            let peers: BTreeSet<SocketAddr> = node.peers().verified_addrs().collect();
            peers.len() == all.len() - 1 && peers.iter().all(|p| all.contains(p) && p != addr)
        })
    }

    pub fn assert_full_mesh(&self) {
        for (addr, node) in &self.nodes {
            let peers: BTreeSet<SocketAddr> = node.peers().verified_addrs().collect();
            let missing: Vec<_> = self
                .nodes
                .keys()
                .filter(|a| *a != addr && !peers.contains(a))
                .collect();
            let extra: Vec<_> = peers
                .iter()
                .filter(|p| !self.nodes.contains_key(p))
                .collect();
            assert!(
                missing.is_empty() && extra.is_empty() && !peers.contains(addr),
                "seed {:#x}: {addr} is not fully meshed: missing {missing:?}, extra {extra:?}",
                self.seed
            );
        }
    }

    /// The verified peers of `a` (those it sends data to).
    pub fn peers_of(&self, a: SocketAddr) -> BTreeSet<SocketAddr> {
        self.nodes
            .get(&a)
            .map(|n| n.peers().verified_addrs().collect())
            .unwrap_or_default()
    }

    pub fn stats(&self, a: SocketAddr) -> Stats {
        self.nodes
            .get(&a)
            .map(|n| n.stats().clone())
            .unwrap_or_default()
    }

    /// Management bytes sent, averaged over the live nodes.
    pub fn control_bytes_per_node(&self) -> u64 {
        let total: u64 = self
            .nodes
            .values()
            .map(|n| n.stats().control_bytes_sent)
            .sum();
        total / self.nodes.len().max(1) as u64
    }

    /// True when every node has as many verified peers as there are other nodes. Cheaper than
    /// [`Simulator::is_full_mesh`] (no sets), and the same thing as long as no node has left:
    /// a verified peer answered us, so it is a node of this simulator.
    pub fn is_full_mesh_by_count(&self) -> bool {
        let others = self.nodes.len().saturating_sub(1);
        self.nodes.values().all(|n| n.peer_count() == others)
    }

    /// Starts watching every pair (a, b) where b is a verified peer of a now: from here on,
    /// the simulator notes the longest time b goes without receiving a datagram from a.
    pub fn watch_gaps(&mut self) {
        let now = self.now;
        let mut gaps = BTreeMap::new();
        for (a, node) in &self.nodes {
            for b in node.peers().verified_addrs() {
                gaps.insert((*a, b), (now, Duration::ZERO));
            }
        }
        self.gaps = Some(gaps);
    }

    /// The watched pair that went longest without a delivery, counting the silence up to now,
    /// and that silence.
    pub fn longest_gap(&self) -> Option<((SocketAddr, SocketAddr), Duration)> {
        let now = self.now;
        self.gaps
            .as_ref()?
            .iter()
            .map(|(pair, (last, longest))| {
                (*pair, (*longest).max(now.saturating_duration_since(*last)))
            })
            .max_by_key(|(_, gap)| *gap)
    }

    /// What all live nodes sent, summed.
    pub fn traffic_total(&self) -> Traffic {
        let mut total = Traffic::default();
        for (addr, t) in &self.traffic {
            if self.nodes.contains_key(addr) {
                total.add(t);
            }
        }
        total
    }

    /// Datagrams in flight right now.
    pub fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Gives back spare capacity of the simulator's own queues, so that heap measurements
    /// count the nodes rather than the high-water mark of the network.
    pub fn shrink_buffers(&mut self) {
        self.in_flight.shrink_to_fit();
    }
}

/// An Ethernet frame: dst, src, optional 802.1Q tag, EtherType 0x0800, 46 bytes of payload.
pub fn frame(dst: [u8; 6], src: [u8; 6], vlan: Option<u16>, payload_byte: u8) -> Vec<u8> {
    let mut f = Vec::with_capacity(64);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    if let Some(v) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend(std::iter::repeat_n(payload_byte, 46));
    f
}

pub const BROADCAST: [u8; 6] = [0xff; 6];

/// Datagrams sent, with their addresses.
pub type Sent = Vec<(SocketAddr, Vec<u8>)>;

/// Keeps what a `--threads` lane sends, for the simulator to deliver
/// ([`Simulator::inject_datagram`]).
#[derive(Clone, Default)]
pub struct Recorder(pub std::rc::Rc<std::cell::RefCell<Sent>>);

impl Socket for Recorder {
    fn send_to(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        self.0.borrow_mut().push((to, datagram.to_vec()));
        Ok(())
    }
}

/// A datagram sealed by `sealer` (made with the network key of
/// [`Simulator::keyed_config`]`(7)`): `kind`, then `body`, after the token.
pub fn sealed_by(sealer: &ethcloud::crypto::Sealer, kind: u8, body: &[u8]) -> Vec<u8> {
    use ethcloud::crypto::{FRONT_LEN, TAG_LEN};
    let token = ethcloud::wire::Token::new(1).unwrap();
    let mut buf = vec![0u8; FRONT_LEN + 1 + body.len() + TAG_LEN];
    buf[FRONT_LEN] = kind;
    buf[FRONT_LEN + 1..FRONT_LEN + 1 + body.len()].copy_from_slice(body);
    let range = sealer
        .seal(token, &mut buf, FRONT_LEN, 1 + body.len())
        .unwrap();
    buf[range].to_vec()
}

pub fn mac(n: u8) -> [u8; 6] {
    [0x02, 0, 0, 0, 0, n]
}
