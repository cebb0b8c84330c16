//! [`Lane`]: one more worker's share of the packet path (`--threads`): frames read from one
//! queue of a multi-queue tap, sent to the peers that own their destinations, in the seed's
//! clear protocol, sealed with the network key, or sealed per peer (per-node keys).
//!
//! Owns the forwarding decision away from the node's thread. A lane reads a [`ForwardView`],
//! a read-only snapshot of what the node knows (the MAC table, the verified peers, the token,
//! the broadcast limit, the sealers and the active relay routes), which the
//! node's thread takes with [`Node::forward_view`](crate::node::Node::forward_view)
//! whenever [`Node::forward_generation`](crate::node::Node::forward_generation) moved, and keeps its own counters and broadcast
//! limit, handed back to the node with [`Lane::take_counts`] and [`Node::absorb_lane`](crate::node::Node::absorb_lane).
//!
//! What a lane does is what [`Node::on_frame`](crate::node::Node::on_frame) does for a frame:
//! both call `outbound::forward`, the lane answering its questions from the view,
//! so the same header goes to the same peer, byte for byte on the wire but for the counters:
//! unicast to the peer the MAC table names (through its relay if it has an active route), or
//! a flood to every verified peer and every relayed address; sealed with the node's own
//! sealers (the network key's, or the current session of each peer's key), whose counters the
//! node and all lanes share (atomics), so a receiver sees one sender session. What it must not
//! do: touch the node, its peer table, its MAC table or its sessions, send anything but
//! frames, or learn anything. Everything else (receiving, learning, control messages,
//! handshakes) stays on the node's thread; a frame to a peer with no live session is dropped
//! and counted, and the peer handed back to the node, which starts the handshake.
//!
//! The snapshot may be late by one publication: a frame to a MAC learned since is flooded
//! (as any unknown destination is), and a peer removed since may get a frame or two. The
//! daemon publishes a new view soon after every change (see `daemon::lanes`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::debug;

use crate::buf::{PacketBuf, BUF_LEN, SWITCH_AT};
use crate::crypto::{self, SealError, Sealer};
use crate::identity::session::may_seal;
use crate::io::Socket;
use crate::limit::RateLimiter;
use crate::node::tx::Tx;
use crate::outbound::{self, Outbound, Sealing};
use crate::stats::{DropReason, Stats};
use crate::switch::MacView;
use crate::time::Instant;
use crate::wire::relay::{emit_relayed, RELAY_TO};
use crate::wire::{self, Mac, Token, VlanId, TOKEN_LEN};

/// Where a relayed frame is written in a lane's relay buffer: room for the seal in front.
const RELAY_AT: usize = crypto::FRONT_LEN - TOKEN_LEN;
/// A lane's relay buffer: the largest datagram with its seal around it.
const RELAY_BUF_LEN: usize = RELAY_AT + wire::MAX_DATAGRAM_LEN + crypto::TAG_LEN;
/// The most peers a lane hands back per report as wanting a handshake.
const MAX_WANTED: usize = 16;

/// How long past the expiry a view shows a lane still takes a MAC entry. The node may have
/// refreshed the entry since the view was taken (refreshes do not publish a new view, and a
/// view is at most a publishing interval old); one that really expired, the node removes at
/// its next housekeeping, which publishes a new view without it. So within this lag a lane
/// sends to the peer the entry names, as a switch whose ageing runs once a second does,
/// rather than flood every frame to that MAC to all peers until the next view. The daemon
/// publishes views more often than this (and housekeeps at least once a second).
pub const VIEW_LAG: Duration = Duration::from_secs(2);

/// Per-node keys: the sealer of each peer's current session, as a lane needs them.
#[derive(Clone, Debug, Default)]
pub struct PeerSealers {
    /// (address, the current session's sealer, the time from which it seals nothing more),
    /// in address order.
    pub(crate) sealers: Vec<(SocketAddr, Arc<Sealer>, Instant)>,
    /// A session seals nothing once it sealed this many packets.
    pub(crate) max_messages: u64,
}

impl PeerSealers {
    /// The sealer for `peer`, if its session is live at `now`.
    // HOT PATH
    fn get(&self, peer: SocketAddr, now: Instant) -> Option<&Sealer> {
        let i = self.sealers.binary_search_by_key(&peer, |e| e.0).ok()?;
        let (_, sealer, until) = self.sealers.get(i)?;
        may_seal(sealer, *until, self.max_messages, now).then_some(&**sealer)
    }

    /// How many peers have a session.
    pub fn len(&self) -> usize {
        self.sealers.len()
    }

    /// True when no peer has a session.
    pub fn is_empty(&self) -> bool {
        self.sealers.is_empty()
    }
}

/// A read-only snapshot of what a lane needs to forward frames: taken by
/// [`Node::forward_view`](crate::node::Node::forward_view), shared by every lane behind an [`Arc`].
#[derive(Clone, Debug)]
pub struct ForwardView {
    /// [`Node::forward_generation`](crate::node::Node::forward_generation) when the view was taken.
    pub generation: u64,
    pub(crate) token: Token,
    /// The verified peers: who a flood goes to, and who may get unicast frames.
    pub(crate) peers: Vec<SocketAddr>,
    pub(crate) macs: MacView,
    pub(crate) broadcast_limit: Option<u64>,
    /// Keyed mode: the node's sealer (its counter shared by the node and every lane).
    pub(crate) sealer: Option<Arc<Sealer>>,
    /// Per-node keys: each peer's current sending session.
    pub(crate) per_peer: Option<PeerSealers>,
    /// Sealed modes: the active relay routes, (address, relaying peer), in address order.
    pub(crate) relays: Vec<(SocketAddr, SocketAddr)>,
}

impl ForwardView {
    /// A view with no peers and no MACs: every frame is dropped as "no peers" until the
    /// first real view arrives.
    pub fn empty(token: Token) -> ForwardView {
        ForwardView {
            generation: 0,
            token,
            peers: Vec::new(),
            macs: MacView::default(),
            broadcast_limit: None,
            sealer: None,
            per_peer: None,
            relays: Vec::new(),
        }
    }

    /// The verified peers in the view.
    pub fn peers(&self) -> &[SocketAddr] {
        &self.peers
    }

    /// Entries of the MAC table in the view.
    pub fn macs(&self) -> usize {
        self.macs.len()
    }

    /// The MAC table in the view.
    pub fn mac_view(&self) -> &MacView {
        &self.macs
    }

    /// Whether frames are sealed (keyed mode or per-node keys).
    pub fn is_sealed(&self) -> bool {
        self.sealer.is_some() || self.per_peer.is_some()
    }

    /// Per-node keys: the peers' sending sessions.
    pub fn per_peer(&self) -> Option<&PeerSealers> {
        self.per_peer.as_ref()
    }

    /// The active relay routes, (address, relaying peer).
    pub fn relays(&self) -> &[(SocketAddr, SocketAddr)] {
        &self.relays
    }

    /// The relaying peer of the active route to `addr`, if any.
    // HOT PATH
    fn route(&self, addr: SocketAddr) -> Option<SocketAddr> {
        if self.relays.is_empty() {
            return None;
        }
        self.relays
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()
            .and_then(|i| self.relays.get(i))
            .map(|&(_, via)| via)
    }
}

/// What a lane counted since its last [`Lane::take_counts`]: its share of the node's
/// counters, and what it sent to each peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneCounts {
    /// Counters in the node's terms (frames from the device, unicast, flooded, sent, drops).
    pub stats: Stats,
    /// (peer, datagrams, bytes) sent to each peer, for the peers' traffic counters.
    pub sent: Vec<(SocketAddr, u64, u64)>,
    /// Per-node keys: datagrams not sent for want of a live session with their peer.
    pub no_session: u64,
    /// Per-node keys: the peers those were for (at most 16), for the node to start
    /// handshakes with.
    pub wanted: Vec<SocketAddr>,
}

impl LaneCounts {
    /// Adds `other`'s counts to these (one hand-over in place of two, for a loop that does
    /// not take them for a while): counters summed, per-peer counts summed by peer, the
    /// wanted peers joined (at most 16).
    pub fn merge(&mut self, other: LaneCounts) {
        self.stats.add(&other.stats);
        self.no_session = self.no_session.saturating_add(other.no_session);
        // (By an index of this list: both may name thousands of peers.)
        let mut at: HashMap<SocketAddr, usize> = self
            .sent
            .iter()
            .enumerate()
            .map(|(i, (peer, _, _))| (*peer, i))
            .collect();
        for (peer, datagrams, bytes) in other.sent {
            match at.get(&peer).and_then(|&i| self.sent.get_mut(i)) {
                Some(entry) => {
                    entry.1 = entry.1.saturating_add(datagrams);
                    entry.2 = entry.2.saturating_add(bytes);
                }
                None => {
                    at.insert(peer, self.sent.len());
                    self.sent.push((peer, datagrams, bytes));
                }
            }
        }
        for peer in other.wanted {
            if self.wanted.len() < MAX_WANTED && !self.wanted.contains(&peer) {
                self.wanted.push(peer);
            }
        }
    }
}

/// One lane: forwards frames with the snapshot it was given, through its own socket.
pub struct Lane<S> {
    tx: Tx<S>,
    view: Arc<ForwardView>,
    stats: Stats,
    broadcasts: RateLimiter,
    /// (datagrams, bytes) sent to each peer since the last [`Lane::take_counts`]; room for
    /// every peer and relay of the view is reserved when the view is set, so counting
    /// allocates only for an address outside them (see `Out::send`).
    sent: HashMap<SocketAddr, (u64, u64)>,
    /// Where a frame to a relayed address is wrapped and sealed; allocated with the first
    /// view that has relay routes.
    relay_buf: Box<[u8]>,
    /// Per-node keys: where a flooded datagram is copied and sealed for each peer; allocated
    /// with the first such view.
    flood_buf: Box<[u8]>,
    /// Per-node keys: what could not be sealed since the last [`Lane::take_counts`].
    no_session: u64,
    wanted: Vec<SocketAddr>,
}

impl<S: Socket> Lane<S> {
    /// A lane that sends through `socket` and forwards with `view`.
    pub fn new(socket: S, view: Arc<ForwardView>, now: Instant) -> Lane<S> {
        let mut lane = Lane {
            tx: Tx::new(socket, now),
            broadcasts: RateLimiter::new(now, view.broadcast_limit.unwrap_or(u64::MAX)),
            view: Arc::new(ForwardView::empty(view.token)),
            stats: Stats::default(),
            sent: HashMap::new(),
            relay_buf: Box::default(),
            flood_buf: Box::default(),
            no_session: 0,
            wanted: Vec::with_capacity(MAX_WANTED),
        };
        lane.set_view(view);
        lane
    }

    /// The view in use.
    pub fn view(&self) -> &Arc<ForwardView> {
        &self.view
    }

    /// Forwards with `view` from now on (this may allocate room for the per-peer counts and
    /// the relay buffer: call it when the view changed, not per frame).
    pub fn set_view(&mut self, view: Arc<ForwardView>) {
        self.sent.reserve(view.peers.len() + view.relays.len());
        if !view.relays.is_empty() && self.relay_buf.is_empty() {
            self.relay_buf = vec![0u8; RELAY_BUF_LEN].into_boxed_slice();
        }
        if view.per_peer.is_some() && self.flood_buf.is_empty() {
            self.flood_buf = vec![0u8; BUF_LEN].into_boxed_slice();
        }
        self.view = view;
    }

    /// Sends the frame read into `buf.read_room()[..len]` to the peer owning its
    /// destination, or to every verified peer, as [`Node::on_frame`](crate::node::Node::on_frame)
    /// does, in every mode. The header (and the seal) is written around the frame in place.
    ///
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
        outbound::from_device(self, now, buf, len)
    }

    /// Sends what the socket queued (see [`Node::flush`](crate::node::Node::flush)).
    // HOT PATH
    pub fn flush(&mut self) {
        let sent = &mut self.sent;
        self.tx.flush(&mut self.stats, |peer, datagrams, bytes| {
            if let Some(count) = sent.get_mut(&peer) {
                count.0 = count.0.saturating_sub(datagrams);
                count.1 = count.1.saturating_sub(bytes);
            }
        });
    }

    /// Takes what was counted since the last call, for [`Node::absorb_lane`](crate::node::Node::absorb_lane) (allocates
    /// the per-peer list: call it now and then, not per frame).
    pub fn take_counts(&mut self) -> LaneCounts {
        let sent = self
            .sent
            .drain()
            .map(|(peer, (datagrams, bytes))| (peer, datagrams, bytes))
            .collect();
        self.sent
            .reserve(self.view.peers.len() + self.view.relays.len());
        let wanted = std::mem::replace(&mut self.wanted, Vec::with_capacity(MAX_WANTED));
        LaneCounts {
            stats: std::mem::take(&mut self.stats),
            sent,
            no_session: std::mem::take(&mut self.no_session),
            wanted,
        }
    }

    /// Arms the lane's send warnings again once
    /// [`WARN_AGAIN_AFTER`](crate::node::WARN_AGAIN_AFTER) passed since they last were.
    pub fn warn_again_if_due(&mut self, now: Instant) {
        self.tx.warn_again_if_due(now);
    }

    /// Whether a peer without a session waits to be handed to the node for a handshake
    /// (per-node keys): worth a hand-over before the next regular one.
    pub fn wants_handshakes(&self) -> bool {
        !self.wanted.is_empty()
    }

    /// The socket (how many datagrams it holds queued, for the daemon).
    pub fn socket(&self) -> &S {
        &self.tx.socket
    }
}

impl<S> Lane<S> {
    /// The lane split into its view, its relay and flood buffers, and its sending side.
    fn parts(&mut self) -> (&ForwardView, &mut [u8], &mut [u8], Out<'_, S>) {
        let Lane {
            tx,
            view,
            stats,
            broadcasts: _,
            sent,
            relay_buf,
            flood_buf,
            no_session,
            wanted,
        } = self;
        let out = Out {
            tx,
            stats,
            sent,
            no_session,
            wanted,
        };
        (view, relay_buf, flood_buf, out)
    }
}

/// A lane's answers to `outbound::forward`: its snapshot of the node's tables, its own
/// broadcast limit and counters, the shared sealers.
// HOT PATH
impl<S: Socket> Outbound for Lane<S> {
    fn token(&self) -> Token {
        self.view.token
    }

    fn allow_broadcast(&mut self, now: Instant) -> bool {
        self.broadcasts.allow_within(now, self.view.broadcast_limit)
    }

    fn lookup(&self, now: Instant, vlan: VlanId, dst: Mac) -> Option<SocketAddr> {
        self.view.macs.lookup_lagging(now, VIEW_LAG, vlan, dst)
    }

    fn has_peers(&self) -> bool {
        !self.view.peers.is_empty()
    }

    fn relaying(&self) -> bool {
        !self.view.relays.is_empty()
    }

    fn relay_to(&mut self, now: Instant, peer: SocketAddr, frame: &[u8]) -> bool {
        let (view, relay_buf, _, mut out) = self.parts();
        let Some(via) = view.route(peer) else {
            return false;
        };
        out.send_relayed(view, now, relay_buf, via, peer, frame);
        true
    }

    fn relay_to_all(&mut self, now: Instant, frame: &[u8]) {
        let (view, relay_buf, _, mut out) = self.parts();
        for &(addr, via) in &view.relays {
            out.send_relayed(view, now, relay_buf, via, addr, frame);
        }
    }

    fn sealing(&self) -> Sealing<'_> {
        match (&self.view.sealer, &self.view.per_peer) {
            (Some(sealer), _) => Sealing::Keyed(sealer),
            (None, Some(_)) => Sealing::PerPeer,
            (None, None) => Sealing::Clear,
        }
    }

    fn stats(&mut self) -> &mut Stats {
        &mut self.stats
    }

    fn send(&mut self, peer: SocketAddr, datagram: &[u8]) {
        self.parts().3.send(peer, datagram);
    }

    fn send_to_all(&mut self, datagram: &[u8]) {
        let (view, _, _, mut out) = self.parts();
        for &peer in &view.peers {
            out.send(peer, datagram);
        }
    }

    fn seal_and_send(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        bytes: &mut [u8],
        inner_len: usize,
    ) {
        let (view, _, _, mut out) = self.parts();
        out.seal_and_send(view, now, peer, bytes, inner_len);
    }

    fn seal_and_send_to_all(&mut self, now: Instant, clear: &[u8]) -> Result<(), DropReason> {
        let (view, _, flood_buf, mut out) = self.parts();
        for &peer in &view.peers {
            let inner_len = outbound::refill(flood_buf, clear)?;
            out.seal_and_send(view, now, peer, flood_buf, inner_len);
        }
        Ok(())
    }
}

/// A lane's sending side: the socket and the counters.
struct Out<'a, S> {
    tx: &'a mut Tx<S>,
    stats: &'a mut Stats,
    sent: &'a mut HashMap<SocketAddr, (u64, u64)>,
    no_session: &'a mut u64,
    wanted: &'a mut Vec<SocketAddr>,
}

impl<S: Socket> Out<'_, S> {
    /// Sends one datagram and counts it for `peer`.
    // HOT PATH
    /// Sends `datagram` to `peer`; returns whether it went out (was queued).
    fn send(&mut self, peer: SocketAddr, datagram: &[u8]) -> bool {
        let sent = self.tx.send(self.stats, peer, datagram, false);
        if sent {
            // Room for every peer and relay of the view was reserved, so this allocates only
            // for a MAC owner outside them (a relayed origin whose route ended since the
            // view was taken), once: the room is kept.
            let count = self.sent.entry(peer).or_insert((0, 0));
            count.0 += 1;
            count.1 += datagram.len() as u64;
        }
        sent
    }

    /// The sealer for datagrams to `peer` in `view`: `None` in the clear protocol, and `Err`
    /// with per-node keys when `peer` has no live session at `now` (counted, and `peer` noted
    /// for a handshake).
    // HOT PATH
    fn sealer_for<'v>(
        &mut self,
        view: &'v ForwardView,
        now: Instant,
        peer: SocketAddr,
    ) -> Result<Option<&'v Sealer>, ()> {
        match (&view.sealer, &view.per_peer) {
            (Some(sealer), _) => Ok(Some(sealer)),
            (None, None) => Ok(None),
            (None, Some(per_peer)) => match per_peer.get(peer, now) {
                Some(sealer) => Ok(Some(sealer)),
                None => {
                    *self.no_session += 1;
                    if self.wanted.len() < MAX_WANTED && !self.wanted.contains(&peer) {
                        // Never allocates: the capacity is MAX_WANTED.
                        self.wanted.push(peer);
                    }
                    Err(())
                }
            },
        }
    }

    /// Per-node keys: seals the clear datagram whose switch byte is at [`SWITCH_AT`] in
    /// `bytes` (`inner_len` bytes from it) for `peer` in place and sends it.
    // HOT PATH
    fn seal_and_send(
        &mut self,
        view: &ForwardView,
        now: Instant,
        peer: SocketAddr,
        bytes: &mut [u8],
        inner_len: usize,
    ) {
        let range = match self.sealer_for(view, now, peer) {
            Ok(Some(sealer)) => match sealer.seal(view.token, bytes, SWITCH_AT, inner_len) {
                Ok(range) => Some(range),
                Err(e) => {
                    self.seal_failed(peer, e);
                    None
                }
            },
            Ok(None) => Some(SWITCH_AT - TOKEN_LEN..SWITCH_AT + inner_len),
            Err(()) => None,
        };
        if let Some(datagram) = range.and_then(|r| bytes.get(r)) {
            self.send(peer, datagram);
        }
    }

    /// Sends `frame` to `to` through the relaying peer `via`, wrapped and sealed in `buf`
    /// as the node's own relayed frames are (man page: RELAYING).
    fn send_relayed(
        &mut self,
        view: &ForwardView,
        now: Instant,
        buf: &mut [u8],
        via: SocketAddr,
        to: SocketAddr,
        frame: &[u8],
    ) {
        let Some(out) = buf.get_mut(RELAY_AT..) else {
            return;
        };
        let len = match emit_relayed(view.token, RELAY_TO, to, frame, out) {
            Ok(len) => len,
            Err(e) => {
                self.stats.send_errors += 1;
                debug!("cannot relay a {}-byte frame to {to}: {e}", frame.len());
                return;
            }
        };
        let sealed = match self.sealer_for(view, now, via) {
            Ok(Some(sealer)) => sealer.seal(
                view.token,
                buf,
                RELAY_AT + TOKEN_LEN,
                len.saturating_sub(TOKEN_LEN),
            ),
            // Relaying exists only in the sealed modes.
            Ok(None) | Err(()) => return,
        };
        match sealed {
            Ok(range) => {
                // Counted once it went out, as the loop's own relaying counts it.
                if buf.get(range).is_some_and(|d| self.send(via, d)) {
                    self.stats.relay_frames_sent += 1;
                }
            }
            Err(e) => self.seal_failed(via, e),
        }
    }

    /// Counts a seal that failed: a session that ended since the view was taken (a revoked
    /// key) as no session, anything else as a send error.
    fn seal_failed(&mut self, peer: SocketAddr, e: SealError) {
        if e == SealError::Retired {
            *self.no_session += 1;
        } else {
            self.stats.send_errors += 1;
            debug!("cannot seal a message to {peer}: {e}");
        }
    }
}

#[cfg(test)]
mod tests;
