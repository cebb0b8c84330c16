//! The status snapshot an operator asks for first: which peers (and when each was last heard
//! from), which MAC addresses on which VLAN live behind which peer, and the counters (frames
//! and bytes each way, drops by reason), as plain text or in the Prometheus text format.
//!
//! Owns the rendering only: [`render_text`] and [`render_prometheus`] read a `&Node` and
//! return a `String`. It runs off the packet path (every few seconds, or on SIGUSR1), so it
//! may allocate. It never changes the
//! node and does no I/O; `service` writes the result to the stats file and the log. For the
//! stats file the work is split: [`snapshot`] copies what it needs from the node on the
//! forwarding loop, and [`Snapshot::finish`] sorts and writes out the MAC lines on the file's
//! writer thread (`cargo bench --bench hot_path` measures both halves).
//!
//! The text format, one fact per line, sorted so that two snapshots diff cleanly:
//!
//! ```text
//! ethcloud status
//! device ethcloud0
//! listen 0.0.0.0:3210
//! token 7
//! uptime 42.1s
//! peers 1
//! peer 198.18.0.2:3210 verified, last seen 0.4s ago, 1 macs
//! connect 198.18.0.2:3210 peer
//! macs 1
//! mac 02:ec:00:00:00:02 vlan 0 at 198.18.0.2:3210, expires in 299.6s
//! counters
//! frames_from_device 12
//! ...
//! drop_wrong_token 0
//! ```

use std::fmt::{self, Write as _};
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::io::{Device, Socket};
use crate::node::Node;
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::ethernet::{Mac, VlanId};

/// The format of the stats file (`--stats-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "os", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum StatsFormat {
    /// One fact per line, for people and `grep`.
    #[default]
    Text,
    /// The Prometheus text exposition format, e.g. for node_exporter's textfile collector.
    Prometheus,
}

/// What the snapshot says about the daemon itself, besides the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The tap device's name.
    pub device: String,
    /// The bound listen address.
    pub listen: SocketAddr,
}

/// Counters of the daemon's loop that the node does not keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopCounters {
    /// Failed receives on the socket (ICMP errors), ignored by the loop.
    pub socket_errors: u64,
    /// Tap reads that could not be cut into frames (a super-frame not segmented, a checksum
    /// not completed, a read too short or too long) and were dropped.
    pub offload_errors: u64,
    /// Datagrams the kernel dropped on the UDP socket because its receive buffer was full, or
    /// for a bad checksum (the socket's drop counter, read about once a second).
    pub udp_receive_overflows: u64,
    /// Frames the kernel dropped at the tap device because its queue toward the daemon was
    /// full (the device's transmit drops, read about once a second).
    pub tap_queue_drops: u64,
    /// Busy-poll spins ended early because the scheduler preempted them for another task.
    pub busy_poll_yields: u64,
    /// Tap super-frames cut into frames whose TCP or UDP checksums were left to the
    /// receiving peer to complete (it sent the Hello flag 0x20).
    pub partial_checksum_superframes: u64,
    /// Yields of the busy-poll spin right after writing a few frames to the tap (a request
    /// or a reply), so that the application they woke runs at once.
    pub busy_poll_write_yields: u64,
    /// SIGHUPs whose key or trust files could not be read or used: nothing was reloaded
    /// (with per-node keys, no key was revoked).
    pub reloads_failed: u64,
    /// `--kernel-path`: packets (a super-frame counted once) the kernel sent to peers
    /// without the daemon.
    pub kernel_path_sent: u64,
    /// `--kernel-path`: bytes of those (the frames, without outer headers).
    pub kernel_path_bytes_sent: u64,
    /// `--kernel-path`: packets from peers the kernel put into the tap without the daemon.
    pub kernel_path_received: u64,
    /// `--kernel-path`: bytes of those.
    pub kernel_path_bytes_received: u64,
    /// `--kernel-path`: map updates the kernel refused (those frames took the daemon's path).
    pub kernel_path_map_errors: u64,
}

/// Which parts of the text snapshot to write, and how many MAC lines at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextParts {
    /// Include the counters section.
    pub counters: bool,
    /// At most this many `mac` lines; the rest is summarised in one line.
    pub max_macs: usize,
}

impl TextParts {
    /// Everything (the stats file).
    pub const ALL: TextParts = TextParts {
        counters: true,
        max_macs: usize::MAX,
    };
}

/// The snapshot in `format` as the forwarding loop takes it, to be finished elsewhere
/// ([`Snapshot::finish`]).
pub fn snapshot<S: Socket, D: Device>(
    format: StatsFormat,
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
) -> Snapshot {
    match format {
        StatsFormat::Text => text_snapshot(header, now, node, extra, TextParts::ALL),
        StatsFormat::Prometheus => render_prometheus(header, now, node, extra).into(),
    }
}

/// A snapshot taken but not yet written out: the text but for the MAC lines, and the MAC
/// entries as the table holds them. Sorting and writing up to 65,536 MAC lines takes tens of
/// milliseconds, which [`Snapshot::finish`] spends wherever it is called: for the stats file,
/// on its writer thread, not on the forwarding loop (which only copies the entries).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Everything before the MAC lines (all of it in the Prometheus format).
    head: String,
    /// The MAC entries to list, in no order.
    macs: Vec<MacEntry>,
    /// How many the table holds (more than `macs.len()` if the list is cut).
    total: usize,
    /// When the snapshot was taken (the entries' expiry times count from then).
    now: Instant,
    /// Everything after the MAC lines.
    tail: String,
}

impl From<String> for Snapshot {
    /// A snapshot that is all text already (the Prometheus format lists no MAC entries).
    fn from(text: String) -> Snapshot {
        Snapshot {
            head: text,
            ..Snapshot::default()
        }
    }
}

impl Snapshot {
    /// The whole text.
    pub fn finish(mut self) -> String {
        let mut out = self.head;
        self.macs.sort_unstable_by_key(mac_order);
        for (vlan, mac, peer, expires) in &self.macs {
            let _ = writeln!(
                out,
                "mac {mac} vlan {} at {peer}, expires in {}",
                vlan.get(),
                secs(expires.saturating_duration_since(self.now))
            );
        }
        if self.total > self.macs.len() {
            let _ = writeln!(
                out,
                "mac ... {} more (`ethcloud show` lists up to 1024 of them, a --stats-file all)",
                self.total - self.macs.len()
            );
        }
        out.push_str(&self.tail);
        out
    }
}

/// The plain-text snapshot (see the module docs), limited to `parts`.
pub fn render_text<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    parts: TextParts,
) -> String {
    text_snapshot(header, now, node, extra, parts).finish()
}

/// [`render_text`] as taken, to be finished by [`Snapshot::finish`].
fn text_snapshot<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    parts: TextParts,
) -> Snapshot {
    let mut out = String::new();
    let _ = writeln!(out, "ethcloud status");
    let _ = writeln!(out, "device {}", header.device);
    let _ = writeln!(out, "listen {}", header.listen);
    let _ = writeln!(out, "token {}", node.config().token);
    let _ = writeln!(
        out,
        "uptime {}",
        secs(now.saturating_duration_since(Instant::ZERO))
    );

    let _ = writeln!(out, "peers {}", node.peer_count());
    for (addr, peer) in node.peers().iter() {
        let state = if peer.is_verified {
            "verified"
        } else {
            "unverified"
        };
        let _ = writeln!(
            out,
            "peer {addr} {state}, last seen {} ago, {} macs",
            secs(now.saturating_duration_since(peer.last_seen)),
            node.switch_table().count_for(addr)
        );
    }
    if let Some(sessions) = node.sessions() {
        let _ = writeln!(out, "public key {}", sessions.public());
        let _ = writeln!(out, "trusted keys {}", sessions.trusted().len());
        for (addr, peer) in node.peers().iter() {
            let Some(key) = sessions.key_of(addr) else {
                continue;
            };
            if let Some((id, made, sealed)) = sessions.current_session(&key) {
                let name = sessions.trusted().name(&key).unwrap_or("");
                let _ = writeln!(
                    out,
                    "session {addr} key {key} ({name}), id {}, made {} ago, {sealed} packets sealed{}",
                    hex_prefix(&id),
                    secs(now.saturating_duration_since(made)),
                    if peer.is_verified { "" } else { ", peer unverified" }
                );
            }
        }
    }
    for addr in &node.config().connect {
        if node.is_peer(*addr) {
            let _ = writeln!(out, "connect {addr} peer");
        } else if let Some(contact) = node.contacts().get(*addr) {
            let _ = writeln!(
                out,
                "connect {addr} trying, {} attempts, next in {}",
                contact.attempts,
                secs(contact.next_attempt.saturating_duration_since(now))
            );
        } else {
            let _ = writeln!(out, "connect {addr} waiting");
        }
    }

    let (macs, total) = chosen_macs(node, parts.max_macs);
    let _ = writeln!(out, "macs {total}");
    let head = out;

    let mut out = String::new();
    if parts.counters {
        let _ = writeln!(out, "counters");
        for (name, value, _) in counters(node.stats(), extra) {
            let _ = writeln!(out, "{name} {value}");
        }
        for (name, value) in drops(node.stats()) {
            let _ = writeln!(out, "drop_{name} {value}");
        }
        if let Some(sessions) = node.sessions() {
            for (name, value, _) in sessions.stats().named() {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
    Snapshot {
        head,
        macs,
        total,
        now,
        tail: out,
    }
}

/// The snapshot in the Prometheus text exposition format (version 0.0.4). Every series has a
/// `device` label, so that the files of several networks can be collected side by side.
/// MAC addresses are not listed one by one (a series each would be too many); their number
/// per peer is.
pub fn render_prometheus<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
) -> String {
    let mut p = Prometheus {
        out: String::new(),
        device: label(&header.device),
    };
    let uptime = now.saturating_duration_since(Instant::ZERO);
    p.family(
        "uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
    );
    p.sample("uptime_seconds", "", uptime.as_secs_f64());
    p.family("peers", "gauge", "Verified peers.");
    p.sample("peers", "", node.peer_count());
    p.family(
        "unverified_peers",
        "gauge",
        "Addresses heard from that are not verified peers (yet).",
    );
    let unverified = node.peers().len().saturating_sub(node.peer_count());
    p.sample("unverified_peers", "", unverified);
    // One series per verified peer only: unverified addresses are anyone's to make, from
    // forged sources too, and each would be a series for the scraper to keep.
    p.family(
        "peer_last_seen_seconds",
        "gauge",
        "Seconds since each verified peer was last heard from.",
    );
    for (addr, peer) in node.peers().iter().filter(|(_, p)| p.is_verified) {
        let labels = format!(",peer=\"{addr}\",verified=\"true\"");
        let ago = now.saturating_duration_since(peer.last_seen);
        p.sample("peer_last_seen_seconds", &labels, ago.as_secs_f64());
    }
    p.family(
        "peer_macs",
        "gauge",
        "MAC addresses learned behind each verified peer.",
    );
    for addr in node.peers().verified_addrs() {
        let labels = format!(",peer=\"{addr}\"");
        let count = node.switch_table().count_for(addr);
        p.sample("peer_macs", &labels, count);
    }
    p.family("macs", "gauge", "Entries in the MAC table.");
    p.sample("macs", "", node.switch_table().len());
    for (name, value, help) in counters(node.stats(), extra) {
        let metric = format!("{name}_total");
        p.family(&metric, "counter", help);
        p.sample(&metric, "", value);
    }
    p.family("drops_total", "counter", "Packets dropped, by reason.");
    for (reason, value) in drops(node.stats()) {
        p.sample("drops_total", &format!(",reason=\"{reason}\""), value);
    }
    if let Some(sessions) = node.sessions() {
        for (name, value, help) in sessions.stats().named() {
            let metric = format!("{name}_total");
            p.family(&metric, "counter", help);
            p.sample(&metric, "", value);
        }
    }
    p.out
}

/// The Prometheus text being built.
struct Prometheus {
    out: String,
    /// The escaped device name, the label every series has.
    device: String,
}

impl Prometheus {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP ethcloud_{name} {help}");
        let _ = writeln!(self.out, "# TYPE ethcloud_{name} {kind}");
    }

    /// One sample; `labels` is empty or starts with a comma.
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(
            self.out,
            "ethcloud_{name}{{device=\"{}\"{labels}}} {value}",
            self.device
        );
    }
}

/// The node's counters plus the loop's, as (name, value, help), in a fixed order.
pub fn counters(stats: &Stats, extra: LoopCounters) -> [(&'static str, u64, &'static str); 35] {
    let [l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12] = loop_counters(extra);
    [
        (
            "frames_from_device",
            stats.frames_from_device,
            "Frames read from the tap device.",
        ),
        (
            "bytes_from_device",
            stats.bytes_from_device,
            "Bytes of frames read from the tap device.",
        ),
        (
            "frames_to_device",
            stats.frames_to_device,
            "Frames written to the tap device.",
        ),
        (
            "bytes_to_device",
            stats.bytes_to_device,
            "Bytes of frames written to the tap device.",
        ),
        (
            "frames_unicast",
            stats.frames_unicast,
            "Tap frames sent to one peer.",
        ),
        (
            "frames_flooded",
            stats.frames_flooded,
            "Tap frames sent to every peer.",
        ),
        (
            "datagrams_received",
            stats.datagrams_received,
            "UDP datagrams received, valid or not.",
        ),
        (
            "bytes_received",
            stats.bytes_received,
            "Bytes of UDP datagrams received.",
        ),
        (
            "datagrams_sent",
            stats.datagrams_sent,
            "UDP datagrams sent.",
        ),
        (
            "bytes_sent",
            stats.bytes_sent,
            "Bytes of UDP datagrams sent.",
        ),
        (
            "control_sent",
            stats.control_sent,
            "Management datagrams sent.",
        ),
        (
            "control_bytes_sent",
            stats.control_bytes_sent,
            "Bytes of management datagrams sent.",
        ),
        (
            "send_would_block",
            stats.send_would_block,
            "Sends refused because the socket buffer was full.",
        ),
        (
            "send_errors",
            stats.send_errors,
            "Sends that failed for another reason.",
        ),
        (
            "mac_moves",
            stats.mac_moves,
            "MAC entries that moved to another peer.",
        ),
        (
            "macs_refused",
            stats.macs_refused,
            "MAC entries not learned because a table was full.",
        ),
        (
            "peer_entries_ignored",
            stats.peer_entries_ignored,
            "Unusable peer-list entries ignored.",
        ),
        (
            "contacts_refused",
            stats.contacts_refused,
            "Addresses not contacted because the queue was full.",
        ),
        (
            "replies_limited",
            stats.replies_limited,
            "Replies held back by the rate and verification limits (to unverified peers, and whole lists to verified ones).",
        ),
        (
            "relay_frames_sent",
            stats.relay_frames_sent,
            "Frames sent through a relay.",
        ),
        (
            "relay_frames_received",
            stats.relay_frames_received,
            "Frames that reached us through a relay.",
        ),
        (
            "relayed_for_others",
            stats.relayed_for_others,
            "Frames passed on as a relay for two peers.",
        ),
        l0, l1, l2, l3, l4, l5, l6, l7, l8, l9, l10, l11, l12,
    ]
}

/// The loop's counters, as (name, value, help), in a fixed order: the end of [`counters`], and
/// what the SIGUSR1 line adds after the node's (see `LoopCounters`' `Display`).
pub fn loop_counters(extra: LoopCounters) -> [(&'static str, u64, &'static str); 13] {
    [
        (
            "socket_errors",
            extra.socket_errors,
            "Failed receives on the UDP socket.",
        ),
        (
            "offload_errors",
            extra.offload_errors,
            "Tap reads that could not be cut into frames (segmenting, checksums, lengths).",
        ),
        (
            "udp_receive_overflows",
            extra.udp_receive_overflows,
            "Datagrams the kernel dropped because the UDP receive buffer was full, or for a bad checksum.",
        ),
        (
            "tap_queue_drops",
            extra.tap_queue_drops,
            "Frames the kernel dropped because the tap queue to the daemon was full.",
        ),
        (
            "busy_poll_yields",
            extra.busy_poll_yields,
            "Busy-poll spins ended early because another task preempted them.",
        ),
        (
            "partial_checksum_superframes",
            extra.partial_checksum_superframes,
            "Tap super-frames cut with their checksums left to the receiving peer.",
        ),
        (
            "busy_poll_write_yields",
            extra.busy_poll_write_yields,
            "Yields right after writing a request or reply to the tap.",
        ),
        (
            "reloads_failed",
            extra.reloads_failed,
            "SIGHUPs whose key or trust files could not be used (nothing reloaded).",
        ),
        (
            "kernel_path_sent",
            extra.kernel_path_sent,
            "Packets the kernel path sent to peers without the daemon (--kernel-path).",
        ),
        (
            "kernel_path_bytes_sent",
            extra.kernel_path_bytes_sent,
            "Bytes of frames the kernel path sent to peers.",
        ),
        (
            "kernel_path_received",
            extra.kernel_path_received,
            "Packets from peers the kernel path put into the tap without the daemon.",
        ),
        (
            "kernel_path_bytes_received",
            extra.kernel_path_bytes_received,
            "Bytes of frames the kernel path put into the tap.",
        ),
        (
            "kernel_path_map_errors",
            extra.kernel_path_map_errors,
            "Kernel path map updates the kernel refused (those frames took the daemon's path).",
        ),
    ]
}

impl fmt::Display for LoopCounters {
    /// `name=value` for each of [`loop_counters`], separated by spaces.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value, _)) in loop_counters(*self).iter().enumerate() {
            let space = if i == 0 { "" } else { " " };
            write!(f, "{space}{name}={value}")?;
        }
        Ok(())
    }
}

/// Every drop reason with its count, zeros included, in [`DropReason::NAMES`] order.
pub fn drops(stats: &Stats) -> impl Iterator<Item = (&'static str, u64)> + '_ {
    DropReason::NAMES
        .iter()
        .copied()
        .zip(stats.drops.iter().copied())
}

/// One MAC table entry as listed: VLAN, MAC, peer, expiry.
pub(crate) type MacEntry = (VlanId, Mac, SocketAddr, Instant);

/// The first `limit` entries of the MAC table by VLAN, then MAC, and how many there are in
/// all. Only those listed are sorted: `ethcloud show` lists 1,024 of up to 65,536 entries,
/// on the loop's thread.
pub(crate) fn first_macs<S: Socket, D: Device>(
    node: &Node<S, D>,
    limit: usize,
) -> (Vec<MacEntry>, usize) {
    let (mut macs, total) = chosen_macs(node, limit);
    macs.sort_unstable_by_key(mac_order);
    (macs, total)
}

/// The entries [`first_macs`] gives, in no order: all of them, or the first `limit` (chosen in
/// linear time), and how many the table holds.
fn chosen_macs<S: Socket, D: Device>(node: &Node<S, D>, limit: usize) -> (Vec<MacEntry>, usize) {
    let mut macs: Vec<MacEntry> = node.switch_table().iter().collect();
    let total = macs.len();
    if limit == 0 {
        macs.clear();
    } else if limit < total {
        macs.select_nth_unstable_by_key(limit - 1, mac_order);
        macs.truncate(limit);
    }
    (macs, total)
}

/// The order MAC entries are listed in: by VLAN, then address.
fn mac_order(e: &MacEntry) -> (VlanId, [u8; 6]) {
    (e.0, e.1 .0)
}

/// `12.3s`.
/// The first 4 bytes of a session id in hex: enough to see it change.
fn hex_prefix(id: &[u8]) -> String {
    id.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// A Prometheus label value: `\`, `"` and newlines escaped.
fn label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// Test doubles for the unit tests here and in `service`, which render and poll a real
/// [`Node`]: a socket and a device that accept everything and keep nothing.
#[cfg(test)]
pub(crate) mod test_io {
    use std::io;
    use std::net::SocketAddr;

    use crate::io::{Device, Socket};
    use crate::node::{Config, Node};
    use crate::time::Instant;
    use crate::wire::{emit_frame, emit_peers, Token};

    /// A socket that drops every datagram.
    pub(crate) struct NullSocket;
    impl Socket for NullSocket {
        fn send_to(&mut self, _: &[u8], _: SocketAddr) -> io::Result<()> {
            Ok(())
        }
    }

    /// A device that drops every frame.
    pub(crate) struct NullDevice;
    impl Device for NullDevice {
        fn write_frame(&mut self, _: &[u8]) -> io::Result<()> {
            Ok(())
        }
    }
    pub(crate) const PEER: &str = "198.18.0.2:3210";
    pub(crate) const PEER_MAC: [u8; 6] = [0x02, 0xec, 0, 0, 0, 0x02];

    /// A node that asked `PEER` for its peers, got an answer (so `PEER` is verified) and then
    /// a frame from MAC 02:ec:00:00:00:02 on VLAN 0, and one datagram of another network.
    pub(crate) fn node_with_a_peer() -> (Node<NullSocket, NullDevice>, Instant) {
        let token = Token::new(7).unwrap();
        let peer: SocketAddr = PEER.parse().unwrap();
        let mut config = Config::new(token);
        config.connect = vec![peer];
        let mut node = Node::new(config, NullSocket, NullDevice, Instant::ZERO);
        node.housekeep(Instant::ZERO);
        let mut buf = [0u8; 256];
        let (len, _) = emit_peers(token, std::iter::empty(), &mut buf).unwrap();
        node.on_datagram(Instant::from_millis(100), peer, &mut buf[..len])
            .unwrap();
        let mut frame = [0u8; 60];
        frame[..6].copy_from_slice(&[0xff; 6]);
        frame[6..12].copy_from_slice(&PEER_MAC);
        let len = emit_frame(token, &frame, &mut buf).unwrap();
        node.on_datagram(Instant::from_millis(200), peer, &mut buf[..len])
            .unwrap();
        let mut foreign = buf;
        foreign[0] ^= 1;
        let _ = node.on_datagram(Instant::from_millis(300), peer, &mut foreign[..len]);
        (node, Instant::from_millis(1200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_io::node_with_a_peer;

    /// The first entries of the MAC table, listed without sorting all of it, are the first
    /// of the whole table sorted, in order, whatever the limit; the total counts them all.
    #[test]
    fn first_macs_are_the_first_of_the_whole_table_in_order() {
        let (mut node, now) = node_with_a_peer();
        let token = node.config().token;
        let peer: SocketAddr = test_io::PEER.parse().unwrap();
        let mut buf = [0u8; 256];
        let mut x = 0x9e37_79b9u32;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut frame = [0u8; 60];
            frame[..6].copy_from_slice(&[0xff; 6]);
            frame[6] = 0x02;
            frame[7..11].copy_from_slice(&x.to_be_bytes());
            // Some tagged, in a few VLANs.
            if x % 3 == 0 {
                frame.copy_within(12..56, 16);
                frame[12..16].copy_from_slice(&[0x81, 0x00, 0x00, (x % 7) as u8 + 1]);
            }
            let len = crate::wire::emit_frame(token, &frame, &mut buf).unwrap();
            node.on_datagram(now, peer, &mut buf[..len]).unwrap();
        }
        let mut all: Vec<MacEntry> = node.switch_table().iter().collect();
        all.sort_unstable_by_key(|e| (e.0, e.1 .0));
        assert!(all.len() > 250, "{}", all.len());
        for limit in [0, 1, 7, 100, all.len() - 1, all.len(), all.len() + 5] {
            let (first, total) = first_macs(&node, limit);
            assert_eq!(total, all.len());
            assert_eq!(first[..], all[..limit.min(all.len())], "limit {limit}");
        }
    }

    fn header() -> Header {
        Header {
            device: "ethcloud0".to_owned(),
            listen: "0.0.0.0:3210".parse().unwrap(),
        }
    }

    #[test]
    fn text_names_the_peer_its_mac_and_the_counters() {
        let (node, now) = node_with_a_peer();
        let extra = LoopCounters {
            socket_errors: 4,
            offload_errors: 0,
            udp_receive_overflows: 17,
            tap_queue_drops: 5,
            busy_poll_yields: 0,
            partial_checksum_superframes: 3,
            busy_poll_write_yields: 9,
            reloads_failed: 2,
            kernel_path_sent: 11,
            ..LoopCounters::default()
        };
        let text = snapshot(StatsFormat::Text, &header(), now, &node, extra).finish();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ethcloud status");
        for expected in [
            "device ethcloud0",
            "listen 0.0.0.0:3210",
            "token 7",
            "uptime 1.2s",
            "peers 1",
            "peer 198.18.0.2:3210 verified, last seen 1.0s ago, 1 macs",
            "connect 198.18.0.2:3210 peer",
            "macs 1",
            "frames_to_device 1",
            "bytes_to_device 60",
            "drop_wrong_token 1",
            "drop_no_peers 0",
            "socket_errors 4",
            "udp_receive_overflows 17",
            "tap_queue_drops 5",
            "busy_poll_yields 0",
            "partial_checksum_superframes 3",
            "busy_poll_write_yields 9",
            "reloads_failed 2",
            "kernel_path_sent 11",
            "kernel_path_map_errors 0",
        ] {
            assert!(lines.contains(&expected), "no {expected:?} in:\n{text}");
        }
        assert!(
            text.contains("mac 02:ec:00:00:00:02 vlan 0 at 198.18.0.2:3210, expires in 299.0s"),
            "{text}"
        );
    }

    #[test]
    fn log_parts_cut_the_mac_list_and_leave_out_the_counters() {
        let (node, now) = node_with_a_peer();
        let parts = TextParts {
            counters: false,
            max_macs: 0,
        };
        let text = render_text(&header(), now, &node, LoopCounters::default(), parts);
        assert!(text.contains("mac ... 1 more"), "{text}");
        assert!(!text.contains("frames_to_device"), "{text}");
    }

    #[test]
    fn prometheus_has_typed_families_and_device_labels() {
        let (mut node, now) = node_with_a_peer();
        // An unverified address (anyone's to make): counted, but no series of its own.
        let mut get = [0u8; 8];
        crate::wire::emit_control(node.config().token, crate::wire::Kind::GetPeers, &mut get)
            .unwrap();
        let stranger: SocketAddr = "198.18.0.9:3210".parse().unwrap();
        let _ = node.on_datagram(now, stranger, &mut get);
        let text = snapshot(
            StatsFormat::Prometheus,
            &header(),
            now,
            &node,
            LoopCounters::default(),
        )
        .finish();
        for expected in [
            "# TYPE ethcloud_peers gauge",
            "ethcloud_peers{device=\"ethcloud0\"} 1",
            "ethcloud_unverified_peers{device=\"ethcloud0\"} 1",
            "ethcloud_peer_last_seen_seconds{device=\"ethcloud0\",peer=\"198.18.0.2:3210\",verified=\"true\"} 1",
            "ethcloud_peer_macs{device=\"ethcloud0\",peer=\"198.18.0.2:3210\"} 1",
            "# TYPE ethcloud_frames_to_device_total counter",
            "ethcloud_frames_to_device_total{device=\"ethcloud0\"} 1",
            "ethcloud_drops_total{device=\"ethcloud0\",reason=\"wrong_token\"} 1",
        ] {
            assert!(text.lines().any(|l| l == expected), "no {expected:?} in:\n{text}");
        }
        assert!(!text.contains("198.18.0.9"), "{text}");
        // Every sample line belongs to a family declared before it.
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_owned());
            } else if !line.starts_with('#') {
                let name = line.split('{').next().unwrap();
                assert!(declared.iter().any(|d| d == name), "{line}");
            }
        }
    }

    /// The loop's part of the SIGUSR1 line: every loop counter, in the order of the status.
    #[test]
    fn the_loop_counters_line_names_each_counter_once_in_order() {
        let extra = LoopCounters {
            socket_errors: 1,
            reloads_failed: 8,
            ..LoopCounters::default()
        };
        assert_eq!(
            extra.to_string(),
            "socket_errors=1 offload_errors=0 udp_receive_overflows=0 tap_queue_drops=0 \
             busy_poll_yields=0 partial_checksum_superframes=0 busy_poll_write_yields=0 \
             reloads_failed=8 kernel_path_sent=0 kernel_path_bytes_sent=0 \
             kernel_path_received=0 kernel_path_bytes_received=0 kernel_path_map_errors=0"
        );
        let names: Vec<&str> = counters(&Stats::default(), extra)
            .iter()
            .map(|(name, _, _)| *name)
            .collect();
        assert!(names.ends_with(&loop_counters(extra).map(|(name, _, _)| name)));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
