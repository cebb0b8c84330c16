//! ethcloud: a layer-2 VPN over UDP.
//!
//! Every Ethernet frame read from a tap device is sent over UDP to the peer that owns its
//! destination MAC (or to all peers when unknown), and peers cross-connect into a full mesh by
//! exchanging peer lists. The wire protocol is the one in the ethcloud man page.
//!
//! ```text
//! main ──→ cli, error, daemon, sys::*             the binary shell
//! cli ──→ config                                  the command line over the config file
//! main ──→ hook; daemon ──→ service ──→ status     ifup/ifdown, stats file, re-resolving names
//! main ──→ keyfiles ──→ identity, sys::random      per-node key files, genkey and pubkey
//! service ──→ show, sys::control                  `ethcloud show`: the control socket's answers
//! daemon ──→ node, io, stats, time, sys::epoll    the thin loop: the only place that reads the real clock
//! sys::* ──→ io (implements it), libc, c/tapdev   the only unsafe code
//! node ──→ wire, switch, peers, stats, io, time   pure core
//!   node/mod.rs: the facade; forward, receive, verify, mesh, seal, tx: one responsibility each
//! switch, peers ──→ wire (Mac, VlanId), time
//! wire ──→ core/std only
//! ```
//!
//! The core (`wire`, `switch`, `peers`, `node`, `crypto`, `identity`, `offload`, `buf`, `time`,
//! `io`, `stats`, `limit`, `show`, `status`) performs no I/O and reads no clock, so tests drive
//! it deterministically in a simulator. The OS edges (`sys`, `daemon`, `service`, `hook`, `cli`,
//! `config`, `keyfiles`, `error`) build only with the `os` feature (on by default), and so do
//! libc, clap and the config parser: `cargo check --lib --no-default-features` builds the core
//! alone, which fails if the core reaches for any of them.

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod buf;
#[cfg(feature = "os")]
pub mod cli;
#[cfg(feature = "os")]
pub mod config;
pub mod crypto;
#[cfg(feature = "os")]
pub mod daemon;
#[cfg(feature = "os")]
pub mod error;
#[cfg(feature = "os")]
pub mod hook;
pub mod identity;
pub mod io;
#[cfg(feature = "os")]
pub mod keyfiles;
pub mod limit;
pub mod node;
pub mod offload;
pub mod peers;
#[cfg(feature = "os")]
pub mod service;
pub mod show;
pub mod stats;
pub mod status;
pub mod switch;
#[cfg(feature = "os")]
pub mod sys;
pub mod time;
pub mod wire;
