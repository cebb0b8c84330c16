//! [`Lane`]: one more worker's share of the packet path (`--threads`): frames read from one
//! queue of a multi-queue tap, sent to the peers that own their destinations, in the seed's
//! clear protocol.
//!
//! Owns the forwarding decision away from the node's thread. A lane reads a [`ForwardView`],
//! a read-only snapshot of what the node knows (the MAC table, the verified peers, the token
//! and the broadcast limit), which the node's thread takes with [`Node::forward_view`](crate::node::Node::forward_view)
//! whenever [`Node::forward_generation`](crate::node::Node::forward_generation) moved, and keeps its own counters and broadcast
//! limit, handed back to the node with [`Lane::take_counts`] and [`Node::absorb_lane`](crate::node::Node::absorb_lane).
//!
//! What a lane does is what [`Node::on_frame`](crate::node::Node::on_frame) does for a frame in the clear mode, byte for
//! byte on the wire: the same header, unicast to the peer the MAC table names, or a flood to
//! every verified peer. What it must not do: touch the node, its peer table or its MAC table,
//! send anything but frames, or learn anything. Everything else (receiving, learning, control
//! messages, the sealed modes, relaying) stays on the node's thread, and [`Node::forward_view`](crate::node::Node::forward_view)
//! gives no view in the modes a lane cannot serve.
//!
//! The snapshot may be late by one publication: a frame to a MAC learned since is flooded
//! (as any unknown destination is), and a peer removed since may get a frame or two. The
//! daemon publishes a new view soon after every change (see `daemon::lanes`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use log::debug;

use crate::buf::{PacketBuf, HEADROOM};
use crate::io::Socket;
use crate::limit::RateLimiter;
use crate::node::tx::Tx;
use crate::stats::{DropReason, Stats};
use crate::switch::MacView;
use crate::time::Instant;
use crate::wire::{emit_header, Frame, Kind, Token, HEADER_LEN};

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
}

/// What a lane counted since its last [`Lane::take_counts`]: its share of the node's
/// counters, and what it sent to each peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneCounts {
    /// Counters in the node's terms (frames from the device, unicast, flooded, sent, drops).
    pub stats: Stats,
    /// (peer, datagrams, bytes) sent to each peer, for the peers' traffic counters.
    pub sent: Vec<(SocketAddr, u64, u64)>,
}

/// One lane: forwards frames with the snapshot it was given, through its own socket.
pub struct Lane<S> {
    tx: Tx<S>,
    view: Arc<ForwardView>,
    stats: Stats,
    broadcasts: RateLimiter,
    /// (datagrams, bytes) sent to each peer since the last [`Lane::take_counts`]; room for
    /// every peer of the view is reserved when the view is set, so counting never allocates.
    sent: HashMap<SocketAddr, (u64, u64)>,
}

impl<S: Socket> Lane<S> {
    /// A lane that sends through `socket` and forwards with `view`.
    pub fn new(socket: S, view: Arc<ForwardView>, now: Instant) -> Lane<S> {
        let sent = HashMap::with_capacity(view.peers.len());
        Lane {
            tx: Tx { socket, warned: 0 },
            broadcasts: RateLimiter::new(now, view.broadcast_limit.unwrap_or(u64::MAX)),
            view,
            stats: Stats::default(),
            sent,
        }
    }

    /// The view in use.
    pub fn view(&self) -> &Arc<ForwardView> {
        &self.view
    }

    /// Forwards with `view` from now on (this may allocate room for the per-peer counts:
    /// call it when the view changed, not per frame).
    pub fn set_view(&mut self, view: Arc<ForwardView>) {
        self.sent.reserve(view.peers.len());
        self.view = view;
    }

    /// Sends the frame read into `buf.frame_room()[..len]` to the peer owning its
    /// destination, or to every verified peer, as [`Node::on_frame`](crate::node::Node::on_frame) does in the clear mode.
    /// The header is written in front of the frame in place. // HOT PATH
    ///
    /// # Errors
    ///
    /// [`DropReason::BadDeviceFrame`] for a frame without a whole Ethernet header,
    /// [`DropReason::BroadcastLimit`] over the broadcast limit, [`DropReason::NoPeers`] when
    /// there is nobody to send to. All are already counted.
    pub fn on_frame(
        &mut self,
        now: Instant,
        buf: &mut PacketBuf,
        len: usize,
    ) -> Result<(), DropReason> {
        self.stats.frames_from_device += 1;
        self.stats.bytes_from_device += len as u64;
        let result = self.forward(now, buf, len);
        if let Err(reason) = result {
            self.stats.count_drop(reason);
            debug!("dropped a {len}-byte frame from the device: {reason}");
        }
        result
    }

    fn forward(&mut self, now: Instant, buf: &mut PacketBuf, len: usize) -> Result<(), DropReason> {
        let Lane {
            tx,
            view,
            stats,
            broadcasts,
            sent,
        } = self;
        let (dst, vlan) = match Frame::new_checked(buf.frame(len)) {
            Ok(frame) => (frame.dst(), frame.vlan()),
            Err(_) => return Err(DropReason::BadDeviceFrame),
        };
        let target = if dst.is_multicast() {
            if let Some(rate) = view.broadcast_limit {
                if !broadcasts.allow(now, rate) {
                    return Err(DropReason::BroadcastLimit);
                }
            }
            None
        } else {
            view.macs.lookup(now, vlan, dst)
        };
        if target.is_none() && view.peers.is_empty() {
            return Err(DropReason::NoPeers);
        }
        let datagram = buf.header_and_frame_mut(len);
        if emit_header(view.token, Kind::Frame, datagram).is_err() {
            return Err(DropReason::BadDeviceFrame);
        }
        let datagram: &[u8] = buf
            .bytes()
            .get(HEADROOM..HEADROOM + HEADER_LEN + len)
            .unwrap_or_default();
        let mut send = |peer: SocketAddr| {
            if tx.send(stats, peer, datagram, false) {
                // Never allocates: room for every peer of the view was reserved.
                let count = sent.entry(peer).or_insert((0, 0));
                count.0 += 1;
                count.1 += datagram.len() as u64;
            }
        };
        match target {
            Some(peer) => {
                send(peer);
                self.stats.frames_unicast += 1;
            }
            None => {
                for &peer in &view.peers {
                    send(peer);
                }
                self.stats.frames_flooded += 1;
            }
        }
        Ok(())
    }

    /// Sends what the socket queued (see [`Node::flush`](crate::node::Node::flush)). // HOT PATH
    pub fn flush(&mut self) {
        self.tx.flush(&mut self.stats);
    }

    /// Takes what was counted since the last call, for [`Node::absorb_lane`](crate::node::Node::absorb_lane) (allocates
    /// the per-peer list: call it now and then, not per frame).
    pub fn take_counts(&mut self) -> LaneCounts {
        let sent = self
            .sent
            .drain()
            .map(|(peer, (datagrams, bytes))| (peer, datagrams, bytes))
            .collect();
        self.sent.reserve(self.view.peers.len());
        LaneCounts {
            stats: std::mem::take(&mut self.stats),
            sent,
        }
    }

    /// The socket (how many datagrams it holds queued, for the daemon).
    pub fn socket(&self) -> &S {
        &self.tx.socket
    }
}
