//! ethcloud: a layer-2 VPN over UDP.
//!
//! Every Ethernet frame read from a tap device is sent over UDP to the peer that owns its
//! destination MAC (or to all peers when unknown), and peers cross-connect into a full mesh by
//! exchanging peer lists. The wire protocol is the one in the ethcloud man page.
//!
//! The files follow the design: `src/core/` is the pure core and `src/os/` the OS edges
//! (see `docs/architecture.md`); both re-export their modules here, so paths stay short
//! (`ethcloud::wire`, `crate::node`).
//!
//! ```text
//! main ──→ cli, error, daemon, sys::*             the binary shell
//! cli ──→ config                                  the command line over the config file
//! main ──→ hook; daemon ──→ service ──→ status     ifup/ifdown, stats file, re-resolving names
//! main ──→ keyfiles ──→ identity, crypto, sys      key files, genkey and pubkey
//! service ──→ show, sys::control                  `ethcloud show`: the control socket's answers
//! daemon ──→ node, io, stats, time, sys::epoll    the thin loop: the only reader of the node's clock
//! sys::* ──→ io (implements it), libc, c/tapdev   the only unsafe code
//! node ──→ wire, switch, peers, relay, crypto,    pure core
//!          identity, lane, limit, buf, stats, io, time
//!   node/mod.rs: the facade; forward, receive, verify, mesh, seal, relay, tx, view: one each
//! node, lane ──→ outbound                         a frame's way out, decided once for both
//! switch ──→ wire (Mac, VlanId), limit, time
//! peers ──→ limit, time
//! wire ──→ core/std only
//! ```
//!
//! The core (`wire`, `switch`, `peers`, `node`, `outbound`, `lane`, `relay`, `crypto`,
//! `identity`, `offload`, `buf`, `time`, `io`, `stats`, `limit`, `show`, `status`) performs no
//! I/O, reads no clock and no random source, so tests drive it deterministically in a
//! simulator (on one CPU: `crypto` picks its ciphers by the CPU's AES instructions). The OS
//! edges (`sys`, `daemon`, `service`, `hook`, `cli`, `config`, `keyfiles`,
//! `error`, `spin`, `resolve`, `logging`) build only with the `os` feature (on by default), and so do
//! libc, clap and the config parser: `cargo check --lib --no-default-features` builds the core
//! alone, which fails if the core reaches for any of them.

#![deny(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod core;
#[cfg(feature = "os")]
pub mod os;

// The modules keep their short paths (`ethcloud::wire`, `crate::node`, ...) wherever they live.
pub use self::core::{
    buf, crypto, identity, io, lane, limit, node, offload, outbound, peers, relay, show, stats,
    status, switch, time, wire,
};
#[cfg(feature = "os")]
pub use self::os::{
    cli, config, daemon, error, hook, keyfiles, kpath, logging, resolve, service, spin, sys,
};
