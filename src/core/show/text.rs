//! The text form of `ethcloud show`, for people (see [`render_text`]).
//!
//! Owns the text layout only; it reads the node it is given and never changes it, and does
//! no I/O (the request and the socket are the parent module's and `sys::control`'s).

use std::fmt::Write as _;

use super::{
    connect_states, kernel_state_text, mac_age, mode, peer_key, route_state, secs, uptime,
    ControlStats, KernelStates, MAX_LISTED,
};
use crate::io::{Device, Socket};
use crate::node::Node;
use crate::status::{counters, drops, first_macs, Header, LoopCounters};
use crate::time::Instant;

/// The text form, for people:
///
/// ```text
/// interface: ethcloud0
///   listening on: 0.0.0.0:3210
///   mode: clear
///   token: 7
///   uptime: 12.3s
///
/// peer: 198.18.0.2:3210
///   state: verified
///   last heard: 0.4s ago
///   transfer: 12 datagrams (1234 bytes) received, 15 datagrams (2345 bytes) sent
///   macs: 1
///   kernel path: on
///
/// connect: 198.18.0.2:3210 (peer)
///
/// mac table: 1 entries
///   vlan 0:
///     02:ec:00:00:00:02 at 198.18.0.2:3210, age 1.0s
///
/// counters:
///   frames_from_device: 12
///   ...
///   drops: wrong_token 1
/// ```
pub fn render_text<S: Socket, D: Device>(
    header: &Header,
    now: Instant,
    node: &Node<S, D>,
    extra: LoopCounters,
    control: ControlStats,
    kernel: &KernelStates,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "interface: {}", header.device);
    let _ = writeln!(out, "  listening on: {}", header.listen);
    let _ = writeln!(out, "  mode: {}", mode(node));
    if let Some(sessions) = node.sessions() {
        let _ = writeln!(out, "  public key: {}", sessions.public());
        let _ = writeln!(out, "  trusted keys: {}", sessions.trusted().len());
    }
    let public = node.relay_table().public_addrs();
    if !public.is_empty() {
        let list: Vec<String> = public.iter().rev().map(ToString::to_string).collect();
        let _ = writeln!(out, "  seen by peers at: {}", list.join(", "));
    }
    let _ = writeln!(out, "  token: {}", node.config().token);
    let _ = writeln!(out, "  uptime: {}", secs(uptime(now)));

    let peers = node.peers();
    for (addr, peer) in peers.iter_verified_first().take(MAX_LISTED) {
        let t = peer.traffic;
        let _ = writeln!(out);
        let _ = writeln!(out, "peer: {addr}");
        let state = if peer.is_verified {
            "verified"
        } else {
            "unverified"
        };
        let _ = writeln!(out, "  state: {state}");
        let _ = writeln!(
            out,
            "  last heard: {} ago",
            secs(now.saturating_duration_since(peer.last_seen))
        );
        let _ = writeln!(
            out,
            "  transfer: {} datagrams ({} bytes) received, {} datagrams ({} bytes) sent",
            t.rx_datagrams, t.rx_bytes, t.tx_datagrams, t.tx_bytes
        );
        let _ = writeln!(out, "  macs: {}", node.switch_table().count_for(addr));
        if let Some(state) = kernel.get(&addr) {
            let _ = writeln!(out, "  kernel path: {}", kernel_state_text(state));
        }
        if let Some(k) = peer_key(node, now, addr) {
            let _ = writeln!(out, "  key: {} ({})", k.key, k.name);
            if let Some((id, age, sealed, cipher)) = k.session {
                let _ = writeln!(
                    out,
                    "  session: {id}, made {} ago, {sealed} packets sealed, {cipher}",
                    secs(age)
                );
            }
        }
    }
    if peers.len() > MAX_LISTED {
        let _ = writeln!(out);
        let _ = writeln!(out, "peers: {} more not listed", peers.len() - MAX_LISTED);
    }

    if !node.config().connect.is_empty() {
        let _ = writeln!(out);
    }
    for (addr, state) in connect_states(node) {
        let _ = writeln!(out, "connect: {addr} ({state})");
    }

    for (addr, route) in node.relay_table().routes().take(MAX_LISTED) {
        let _ = writeln!(out);
        let _ = writeln!(out, "relay: {addr} via {}", route.via);
        let _ = writeln!(out, "  state: {}", route_state(route));
        let _ = writeln!(
            out,
            "  since: {} ago",
            secs(now.saturating_duration_since(route.since))
        );
    }

    let (macs, total) = first_macs(node, MAX_LISTED);
    let _ = writeln!(out);
    let _ = writeln!(out, "mac table: {total} entries");
    let mut vlan_shown = None;
    for (vlan, mac, peer, expires) in &macs {
        if vlan_shown != Some(*vlan) {
            let _ = writeln!(out, "  vlan {}:", vlan.get());
            vlan_shown = Some(*vlan);
        }
        let _ = writeln!(
            out,
            "    {mac} at {peer}, age {}",
            secs(mac_age(node, now, *expires))
        );
    }
    if total > macs.len() {
        let _ = writeln!(out, "  ... {} more not listed", total - macs.len());
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "counters:");
    for (name, value, _) in counters(node.stats(), extra) {
        let _ = writeln!(out, "  {name}: {value}");
    }
    for (name, value) in control.named() {
        let _ = writeln!(out, "  {name}: {value}");
    }
    if let Some(sessions) = node.sessions() {
        for (name, value, _) in sessions.stats().named() {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
    let nonzero: Vec<String> = drops(node.stats())
        .filter(|(_, n)| *n > 0)
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    if nonzero.is_empty() {
        let _ = writeln!(out, "  drops: none");
    } else {
        let _ = writeln!(out, "  drops: {}", nonzero.join(", "));
    }
    out
}
