//! The hot path: a frame read from the device goes to the peer that owns its destination MAC
//! or to every verified peer (`on_frame`, `forward`, and `forward_sealed_per_peer` in identity
//! mode), and a frame received from a peer teaches the MAC table and goes to the device
//! (`deliver`). Every frame passes once, in one buffer, with no copy and no allocation.
//!
//! It owns the MAC table's learning and lookups and the broadcast limits. It must not allocate,
//! send control messages or change the peer table (beyond counting traffic and the per-peer
//! broadcast limit); datagrams are opened and dispatched in `receive.rs`, and verification is
//! `verify.rs`'s.

use std::net::SocketAddr;

use log::{debug, warn};

use super::{Node, FULL_MACS};
use crate::buf::{PacketBuf, HEADROOM, SWITCH_AT};
use crate::io::{Device, Socket};
use crate::stats::DropReason;
use crate::switch::Learned;
use crate::time::Instant;
use crate::wire::{emit_header, Frame, Kind, HEADER_LEN};

impl<S: Socket, D: Device> Node<S, D> {
    /// Sends the frame read into `buf.frame_room()[..len]` to the peer owning its destination, or
    /// to every peer. The header is written in front of the frame in place. // HOT PATH
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header,
    /// [`DropReason::NoPeers`] when there is nobody to send to. Both are already counted.
    pub fn on_frame(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        self.stats.frames_from_device += 1;
        self.stats.bytes_from_device += len as u64;
        self.now = now;
        let result = self.forward(now, buf, len);
        self.flush_handshakes(now);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped a {len}-byte frame from the device: {reason}");
        }
        result
    }

    pub(super) fn forward(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        let (dst, vlan) = match Frame::new_checked(buf.frame(len)) {
            Ok(frame) => (frame.dst(), frame.vlan()),
            Err(_) => return Err(DropReason::BadDeviceFrame),
        };
        let target = if dst.is_multicast() {
            if let Some(rate) = self.config.broadcast_limit {
                if !self.device_broadcasts.allow(now, rate) {
                    return Err(DropReason::BroadcastLimit);
                }
            }
            None
        } else {
            self.switch.lookup(now, vlan, dst)
        };
        if target.is_none() && self.peers.verified_len() == 0 {
            return Err(DropReason::NoPeers);
        }
        if self.relay.has_active() {
            // Through a relay, before the frame is sealed in place for the direct peers.
            match target {
                Some(peer) => {
                    if self.relay_unicast(peer, buf.frame(len)) {
                        self.stats.frames_unicast += 1;
                        return Ok(());
                    }
                }
                None => self.relay_flood(buf.frame(len)),
            }
        }
        let datagram = buf.header_and_frame_mut(len);
        if emit_header(self.config.token, Kind::Frame, datagram).is_err() {
            return Err(DropReason::BadDeviceFrame);
        }
        if self.sessions.is_some() {
            return self.forward_sealed_per_peer(now, buf, len, target);
        }
        let range = match &mut self.crypto {
            None => HEADROOM..HEADROOM + HEADER_LEN + len,
            Some((sealer, _)) => {
                match sealer.seal(self.config.token, buf.bytes_mut(), SWITCH_AT, 1 + len) {
                    Ok(range) => range,
                    Err(_) => return Err(DropReason::BadDeviceFrame),
                }
            }
        };
        let datagram: &[u8] = buf.bytes().get(range).unwrap_or_default();
        match target {
            Some(peer) => {
                self.stats.frames_unicast += 1;
                if self.tx.send(&mut self.stats, peer, datagram, false) {
                    self.peers.count_sent(peer, datagram.len());
                }
            }
            None => {
                self.stats.frames_flooded += 1;
                let (tx, stats) = (&mut self.tx, &mut self.stats);
                self.peers.for_each_verified(|peer, traffic| {
                    if tx.send(stats, peer, datagram, false) {
                        traffic.count_sent(datagram.len());
                    }
                });
            }
        }
        Ok(())
    }

    /// Identity mode: seals the frame datagram in `buf` with the session of each receiver: in
    /// place for one, in a copy per peer for a flood. // HOT PATH
    pub(super) fn forward_sealed_per_peer(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
        target: Option<SocketAddr>,
    ) -> Result<(), DropReason> {
        let Node {
            sessions: Some(sessions),
            tx,
            stats,
            peers,
            flood,
            ..
        } = self
        else {
            return Err(DropReason::BadDeviceFrame);
        };
        let clear_end = HEADROOM + HEADER_LEN + len;
        match target {
            Some(peer) => {
                stats.frames_unicast += 1;
                if let Ok(range) = sessions.seal(now, peer, buf.bytes_mut(), SWITCH_AT, 1 + len) {
                    if let Some(datagram) = buf.bytes().get(range) {
                        if tx.send(stats, peer, datagram, false) {
                            peers.count_sent(peer, datagram.len());
                        }
                    }
                }
            }
            None => {
                stats.frames_flooded += 1;
                let (Some(clear), Some(copy)) = (
                    buf.bytes().get(HEADROOM..clear_end),
                    flood.get_mut(HEADROOM..clear_end),
                ) else {
                    return Err(DropReason::BadDeviceFrame);
                };
                copy.copy_from_slice(clear);
                peers.for_each_verified(|peer, traffic| {
                    // Each seal encrypts the copy in place: restore the clear bytes first.
                    if let (Some(clear), Some(copy)) = (
                        buf.bytes().get(HEADROOM..clear_end),
                        flood.get_mut(HEADROOM..clear_end),
                    ) {
                        copy.copy_from_slice(clear);
                    }
                    if let Ok(range) = sessions.seal(now, peer, flood, SWITCH_AT, 1 + len) {
                        if let Some(datagram) = flood.get(range) {
                            if tx.send(stats, peer, datagram, false) {
                                traffic.count_sent(datagram.len());
                            }
                        }
                    }
                });
            }
        }
        Ok(())
    }

    /// Learns the frame's source and writes it to the device. // HOT PATH
    /// Only frames from verified peers teach the MAC table, so unicast never goes to an address
    /// that has not shown it receives our packets.
    pub(super) fn deliver(
        &mut self,
        now: Instant,
        from: SocketAddr,
        frame: Frame<&[u8]>,
        is_verified: bool,
    ) -> Result<(), DropReason> {
        self.deliver_at(now, from, from, frame, is_verified)
    }

    /// [`Node::deliver`] for a frame from the node at `from` that reached us through the peer
    /// `limit_by` (itself, unless relayed), whose broadcast limit it counts against.
    pub(super) fn deliver_at(
        &mut self,
        now: Instant,
        from: SocketAddr,
        limit_by: SocketAddr,
        frame: Frame<&[u8]>,
        is_verified: bool,
    ) -> Result<(), DropReason> {
        if let Some(rate) = self.config.broadcast_limit {
            if frame.dst().is_multicast() {
                let allowed = self
                    .peers
                    .get_mut(limit_by)
                    .is_some_and(|p| p.broadcasts.allow(now, rate));
                if !allowed {
                    return Err(DropReason::BroadcastLimit);
                }
            }
        }
        let src = frame.src();
        if is_verified && !src.is_multicast() {
            let vlan = frame.vlan();
            match self.switch.learn(now, vlan, src, from) {
                Learned::Refreshed => {}
                Learned::New => debug!("learned {src} on {vlan} at {from}"),
                Learned::Moved { from: old } => {
                    self.stats.mac_moves += 1;
                    debug!("{src} on {vlan} moved from {old} to {from}");
                    if from == limit_by && !self.relay.is_empty() {
                        // Directly from a node we reached through a relay at `old`.
                        self.relay_on_moved(now, old, from);
                    }
                }
                Learned::Refused => {
                    self.stats.macs_refused += 1;
                    if self.first_time_full(FULL_MACS) {
                        let (total, per_peer) =
                            (self.config.max_macs, self.config.max_macs_per_peer);
                        warn!("mac table full ({total} entries, {per_peer} per peer): frames to new macs are flooded (counted; warned once)");
                    }
                    debug!("not learning {src} on {vlan} at {from}: mac table full");
                }
            }
        }
        let bytes = frame.as_bytes();
        match self.device.write_frame(bytes) {
            Ok(()) => {
                self.stats.frames_to_device += 1;
                self.stats.bytes_to_device += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                if !self.device_warned {
                    self.device_warned = true;
                    warn!("writing a frame to the device failed: {e} (counted as drops; further failures are logged at debug)");
                }
                Err(DropReason::DeviceWrite)
            }
        }
    }
}
