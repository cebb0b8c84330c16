//! The hot path: a frame read from the device goes to the peer that owns its destination MAC
//! or to every verified peer (`on_frame`: the decisions are [`crate::outbound`]'s, which this
//! file answers from the node's tables and sessions by implementing `Outbound`), and a frame
//! received from a peer teaches the MAC table and goes to the device (`deliver`). Every frame
//! passes once, in one buffer, with no copy and no allocation (but the per-peer copies of a
//! flood with per-node keys).
//!
//! It owns the MAC table's learning and lookups and the broadcast limits. It must not allocate,
//! send control messages or change the peer table (beyond counting traffic and the per-peer
//! broadcast limit); datagrams are opened and dispatched in `receive.rs`, and verification is
//! `verify.rs`'s.

use std::net::SocketAddr;

use log::{debug, warn};

use super::{Node, FULL_MACS};
use crate::buf::{PacketBuf, SWITCH_AT};
use crate::identity::SealOutcome;
use crate::io::{Device, Socket};
use crate::outbound::{self, Outbound, Sealing};
use crate::stats::{DropReason, Stats};
use crate::switch::{self, Learned};
use crate::time::Instant;
use crate::wire::{Frame, Mac, Token, VlanId};

impl<S: Socket, D: Device> Node<S, D> {
    /// Sends the frame read into `buf.read_room()[..len]` to the peer owning its destination, or
    /// to every peer. The header is written in front of the frame in place.
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header (or one
    /// that cannot be sealed), [`DropReason::BroadcastLimit`] over the broadcast limit,
    /// [`DropReason::NoPeers`] when there is nobody to send to. All are already counted.
    // HOT PATH
    pub fn on_frame(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        self.now = now;
        let result = outbound::from_device(self, now, buf, len);
        // Per-node keys: handshakes with the peers that had no session for this frame.
        self.flush_handshakes(now);
        result
    }

    /// Whether the frames about to be cut from a super-frame that starts with `frame` (its
    /// Ethernet header at least) may leave their TCP or UDP checksum partial: an untagged
    /// unicast to a MAC we know at a verified peer that we reach directly (no relay route) and
    /// that said, in the process and session it runs now, that it completes such checksums
    /// (Hello flag 0x20). Per-node keys: with a live session; network key: where the peer's
    /// AEGIS flags are tracked (this CPU seals AEGIS-128L). Always false in the clear
    /// protocol, where a seed node takes every frame as it is.
    // HOT PATH (once per read)
    pub fn leaves_checksums_partial(&self, now: Instant, frame: &[u8]) -> bool {
        let Ok(frame) = Frame::new_checked(frame) else {
            return false;
        };
        if frame.is_tagged() || frame.dst().is_multicast() {
            return false;
        }
        let Some(peer) = self.switch.lookup(now, VlanId::UNTAGGED, frame.dst()) else {
            return false;
        };
        if !self.peers.is_verified(peer) || self.relay.route(peer).is_some() {
            return false;
        }
        match (&self.sessions, &self.keyed_aegis) {
            (Some(sessions), _) => sessions.completes_checksums(now, peer),
            (None, Some(aegis)) => aegis.completes_checksums(peer),
            (None, None) => false,
        }
    }

    /// Learns the frame's source and writes it to the device.
    /// Only frames from verified peers teach the MAC table, so unicast never goes to an address
    /// that has not shown it receives our packets.
    // HOT PATH
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
            match self.switch.learn_through(now, vlan, src, from, limit_by) {
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
                        let per_host = switch::max_per_host(total, per_peer);
                        warn!("mac table full ({total} entries, {per_peer} per peer, {per_host} per host): frames to new macs are flooded (counted; warned once)");
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
                    warn!("writing a frame to the device failed: {e} (counted as drops; further failures are logged at debug {})", super::tx::WARN_AGAIN_TEXT);
                }
                Err(DropReason::DeviceWrite)
            }
        }
    }
}

/// The node's answers to `outbound::forward`: its own MAC table, verified peers,
/// relay routes and sealers.
// HOT PATH
impl<S: Socket, D: Device> Outbound for Node<S, D> {
    fn token(&self) -> Token {
        self.config.token
    }

    fn allow_broadcast(&mut self, now: Instant) -> bool {
        self.device_broadcasts
            .allow_within(now, self.config.broadcast_limit)
    }

    fn lookup(&self, now: Instant, vlan: VlanId, dst: Mac) -> Option<SocketAddr> {
        self.switch.lookup(now, vlan, dst)
    }

    fn has_peers(&self) -> bool {
        self.peers.verified_len() > 0
    }

    fn relaying(&self) -> bool {
        self.relay.has_active()
    }

    fn relay_to(&mut self, _now: Instant, peer: SocketAddr, frame: &[u8]) -> bool {
        self.relay_unicast(peer, frame)
    }

    fn relay_to_all(&mut self, _now: Instant, frame: &[u8]) {
        self.relay_flood(frame);
    }

    fn sealing(&self) -> Sealing<'_> {
        match (&self.sessions, self.frame_sealer()) {
            (Some(_), _) => Sealing::PerPeer,
            (None, Some(sealer)) => Sealing::Keyed(sealer),
            (None, None) => Sealing::Clear,
        }
    }

    fn stats(&mut self) -> &mut Stats {
        &mut self.stats
    }

    fn send(&mut self, peer: SocketAddr, datagram: &[u8]) {
        if self.tx.send(&mut self.stats, peer, datagram, false) {
            self.peers.count_sent(peer, datagram.len());
        }
    }

    fn send_to_all(&mut self, datagram: &[u8]) {
        let (tx, stats) = (&mut self.tx, &mut self.stats);
        self.peers.for_each_verified(|peer, traffic| {
            if tx.send(stats, peer, datagram, false) {
                traffic.count_sent(datagram.len());
            }
        });
    }

    fn seal_and_send(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        bytes: &mut [u8],
        inner_len: usize,
    ) {
        let Some(sessions) = &mut self.sessions else {
            return;
        };
        // Without a session, `seal` counts it and asks for a handshake (started by `on_frame`).
        match sessions.seal(now, peer, bytes, SWITCH_AT, inner_len) {
            Ok(range) => {
                if let Some(datagram) = bytes.get(range) {
                    self.send(peer, datagram);
                }
            }
            Err(SealOutcome::Seal(_)) => self.stats.send_errors += 1,
            Err(SealOutcome::NoSession) => {}
        }
    }

    fn seal_and_send_to_all(&mut self, now: Instant, clear: &[u8]) -> Result<(), DropReason> {
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
        let mut result = Ok(());
        peers.for_each_verified(|peer, traffic| {
            let inner_len = match outbound::refill(flood, clear) {
                Ok(inner_len) => inner_len,
                Err(e) => {
                    result = Err(e);
                    return;
                }
            };
            match sessions.seal(now, peer, flood, SWITCH_AT, inner_len) {
                Ok(range) => {
                    if let Some(datagram) = flood.get(range) {
                        if tx.send(stats, peer, datagram, false) {
                            traffic.count_sent(datagram.len());
                        }
                    }
                }
                Err(SealOutcome::Seal(_)) => stats.send_errors += 1,
                Err(SealOutcome::NoSession) => {}
            }
        });
        result
    }
}
