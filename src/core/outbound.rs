//! The way out for a frame read from the device, decided in one place for both of the places
//! that send such frames: the node's own thread ([`Node::on_frame`](crate::node::Node::on_frame))
//! and the `--threads` lanes ([`Lane::on_frame`](crate::lane::Lane::on_frame)).
//!
//! Owns the order of the decisions and what is counted: the destination (the broadcast limit
//! for a multicast frame, the MAC table for a unicast one), "nobody to send to", the relay
//! routes first (before the frame is sealed in place for the direct peers), the header, then
//! one seal for every receiver (keyed mode) or one per receiver (per-node keys), and a frame
//! counted as unicast or flooded only once it could be sealed.
//!
//! What each step reads and where each datagram goes belong to the caller, through
//! `Outbound`: the node answers from its own tables and sessions, a lane from its snapshot
//! of them. This module must not know which of the two it serves, send anything but the one
//! frame, or learn anything.

use std::net::SocketAddr;

use crate::buf::{PacketBuf, HEADROOM, SWITCH_AT};
use crate::crypto::Sealer;
use crate::stats::{DropReason, Stats};
use crate::time::Instant;
use crate::wire::{emit_header, Frame, Kind, Mac, Token, VlanId, HEADER_LEN};

/// How the datagrams of frames are sealed.
#[derive(Clone, Copy)]
pub(crate) enum Sealing<'a> {
    /// The seed's clear protocol.
    Clear,
    /// Keyed mode: one sealer for every peer (its counter shared by all who seal with it).
    Keyed(&'a Sealer),
    /// Per-node keys: each peer's own session
    /// ([`Outbound::seal_and_send`], [`Outbound::seal_and_send_to_all`]).
    PerPeer,
}

/// What forwarding a frame needs from the one who sends it. Every method is on the hot path:
/// none may allocate.
pub(crate) trait Outbound {
    /// The network's token.
    fn token(&self) -> Token;
    /// Whether a multicast or broadcast frame from the device may go out at `now` (the
    /// broadcast limit, which this counts against; always true without one).
    fn allow_broadcast(&mut self, now: Instant) -> bool;
    /// The peer behind `dst` on `vlan`, if known at `now`.
    fn lookup(&self, now: Instant, vlan: VlanId, dst: Mac) -> Option<SocketAddr>;
    /// Whether there is any verified peer to flood to.
    fn has_peers(&self) -> bool;
    /// Whether any relay route is active (only then are the two `relay` methods called).
    fn relaying(&self) -> bool;
    /// Sends `frame` to `peer` through the relaying peer of its active route, if it has one;
    /// returns whether it had.
    fn relay_to(&mut self, now: Instant, peer: SocketAddr, frame: &[u8]) -> bool;
    /// Sends `frame` to every address reached through a relay.
    fn relay_to_all(&mut self, now: Instant, frame: &[u8]);
    /// How frames are sealed.
    fn sealing(&self) -> Sealing<'_>;
    /// The counters.
    fn stats(&mut self) -> &mut Stats;
    /// Sends a finished datagram to `peer` (counted for it).
    fn send(&mut self, peer: SocketAddr, datagram: &[u8]);
    /// Sends a finished datagram to every verified peer.
    fn send_to_all(&mut self, datagram: &[u8]);
    /// Per-node keys: seals the clear datagram in `bytes` (its switch byte at [`SWITCH_AT`],
    /// `inner_len` bytes from there) in place with `peer`'s session and sends it; without a
    /// live session, counts it and asks for a handshake instead.
    fn seal_and_send(&mut self, now: Instant, peer: SocketAddr, bytes: &mut [u8], inner_len: usize);
    /// Per-node keys: for every verified peer, seals a copy of the clear datagram `clear`
    /// (token first, as at [`HEADROOM`] in a packet buffer) with that peer's session, and
    /// sends it.
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] if `clear` does not fit the copy.
    fn seal_and_send_to_all(&mut self, now: Instant, clear: &[u8]) -> Result<(), DropReason>;
}

/// Sends the frame read into `buf.frame_room()[..len]` to the peer owning its destination, or
/// to every verified peer and every relayed address, through `out`. The header (and the seal)
/// is written around the frame in place. // HOT PATH
///
/// # Errors
///
/// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header (or one that
/// cannot be sealed), [`DropReason::BroadcastLimit`] over the broadcast limit,
/// [`DropReason::NoPeers`] when there is nobody to send to. The caller counts them.
pub(crate) fn forward<O: Outbound>(
    out: &mut O,
    now: Instant,
    buf: &mut PacketBuf,
    len: usize,
) -> Result<(), DropReason> {
    let (dst, vlan) = match Frame::new_checked(buf.frame(len)) {
        Ok(frame) => (frame.dst(), frame.vlan()),
        Err(_) => return Err(DropReason::BadDeviceFrame),
    };
    let target = if dst.is_multicast() {
        if !out.allow_broadcast(now) {
            return Err(DropReason::BroadcastLimit);
        }
        None
    } else {
        out.lookup(now, vlan, dst)
    };
    if target.is_none() && !out.has_peers() {
        return Err(DropReason::NoPeers);
    }
    if out.relaying() {
        // Through a relay, before the frame is sealed in place for the direct peers.
        match target {
            Some(peer) => {
                if out.relay_to(now, peer, buf.frame(len)) {
                    out.stats().frames_unicast += 1;
                    return Ok(());
                }
            }
            None => out.relay_to_all(now, buf.frame(len)),
        }
    }
    let token = out.token();
    if emit_header(token, Kind::Frame, buf.header_and_frame_mut(len)).is_err() {
        return Err(DropReason::BadDeviceFrame);
    }
    let clear = HEADROOM..HEADROOM + HEADER_LEN + len;
    let range = match out.sealing() {
        Sealing::Clear => clear,
        Sealing::Keyed(sealer) => sealer
            .seal(token, buf.bytes_mut(), SWITCH_AT, 1 + len)
            .map_err(|_| DropReason::BadDeviceFrame)?,
        Sealing::PerPeer => {
            // Sealed for each receiver with its own session: in place for one, in a copy per
            // peer for a flood.
            count(out.stats(), target);
            return match target {
                Some(peer) => {
                    out.seal_and_send(now, peer, buf.bytes_mut(), 1 + len);
                    Ok(())
                }
                None => {
                    let clear = buf.bytes().get(clear).ok_or(DropReason::BadDeviceFrame)?;
                    out.seal_and_send_to_all(now, clear)
                }
            };
        }
    };
    count(out.stats(), target);
    let datagram: &[u8] = buf.bytes().get(range).unwrap_or_default();
    match target {
        Some(peer) => out.send(peer, datagram),
        None => out.send_to_all(datagram),
    }
    Ok(())
}

/// Counts a frame that goes out as unicast (to `target`) or flooded (no target).
fn count(stats: &mut Stats, target: Option<SocketAddr>) {
    match target {
        Some(_) => stats.frames_unicast += 1,
        None => stats.frames_flooded += 1,
    }
}
