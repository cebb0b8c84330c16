//! The command line: [`Args`] as clap parses it (the options, short and long names of the seed
//! spec's synopsis, plus the service options), the `--config` file merged under it, and
//! [`Args::check`], which turns the raw strings into typed, checked [`Settings`] once, at the
//! edge.
//!
//! Owns option syntax, defaults, value validation, the rule that the command line overrides
//! the config file, the default MTU, and resolving `--connect` names at start-up. It opens
//! nothing but the config file: `main` builds the sockets and devices from [`Settings`].
//! Validation failures are usage errors ([`Error::exit_code`] 2), and a bad value from the
//! config file names its key and line; a name that cannot be resolved is each peer's own
//! result (`main` warns and starts without it).
//!
//! The parts, one responsibility each:
//!
//! ```text
//! args.rs      the clap definitions: Args, its options, help texts and -v / -q, the key tools
//! check.rs     Args::check: the config file under the command line, defaults, validation
//! settings.rs  Settings, the checked values, and what main derives from them
//! addr.rs      the --token, --listen and --connect syntax (resolving is `os::resolve`'s)
//! tests.rs     the unit tests of the whole command line
//! ```
//!
//! This file holds the defaults, the MTU arithmetic and the public names; everything public
//! is re-exported here, so the rest of the crate names it `cli::Args`, `cli::Settings`, ...
//!
//! [`Error::exit_code`]: crate::error::Error::exit_code

use crate::sys::udp::Families;

mod addr;
mod args;
mod check;
mod settings;
#[cfg(test)]
mod tests;

pub use addr::{parse_listen, parse_peer, parse_token, Host, PeerAddr};
pub use args::{Args, Command, ShowArgs};
pub use settings::{unique_addrs, KernelPathMode, Settings};

/// `--device` when neither the command line nor the config file gives one.
pub const DEFAULT_DEVICE: &str = "ethcloud%d";
/// `--listen` default.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:3210";
/// `--token` default.
pub const DEFAULT_TOKEN: &str = "0";
/// `--peer-timeout` default, seconds.
pub const DEFAULT_PEER_TIMEOUT_SECS: u64 = 1800;
/// `--mac-timeout` default, seconds.
pub const DEFAULT_MAC_TIMEOUT_SECS: u64 = 300;
/// `--stats-interval` default, seconds.
pub const DEFAULT_STATS_INTERVAL_SECS: u64 = 10;
/// The longest `--peer-timeout`, `--mac-timeout` and `--stats-interval` taken (136 years):
/// far past any use ("never" in practice), and far below where the clock's sums saturate,
/// which would make a MAC's age, worked back from its deadline, wrong.
pub const MAX_TIMEOUT_SECS: u64 = u32::MAX as u64;

/// The MTU of the underlay the default tap MTU is computed for (plain Ethernet).
pub const UNDERLAY_MTU: u32 = 1500;
/// IPv4 header without options.
pub const IPV4_HEADER_LEN: u32 = 20;
/// IPv6 header without extension headers.
pub const IPV6_HEADER_LEN: u32 = 40;
/// UDP header.
pub const UDP_HEADER_LEN: u32 = 8;
/// The ethcloud header: token and switch byte (`wire::HEADER_LEN`).
pub const ETHCLOUD_HEADER_LEN: u32 = 8;
/// The Ethernet header every frame carries on top of its payload, untagged
/// (`wire::ethernet::ETHERNET_HEADER_LEN`).
pub const FRAME_HEADER_LEN: u32 = 14;
/// The default `--busy-poll`, in microseconds.
pub const DEFAULT_BUSY_POLL_USECS: u64 = 50;
/// Default `--rekey-after`, seconds (as WireGuard's REKEY_AFTER_TIME).
pub const DEFAULT_REKEY_AFTER_SECS: u64 = 120;
/// Smallest `--rekey-after`, seconds.
pub const MIN_REKEY_AFTER_SECS: u64 = 10;
/// Largest `--rekey-after`, seconds.
pub const MAX_REKEY_AFTER_SECS: u64 = 86_400;
/// The default `--threads`: one (the loop alone; see the man page for why not one per core).
pub const DEFAULT_THREADS: u64 = 1;
/// The largest `--threads`.
pub const MAX_THREADS: u64 = 16;
/// The largest `--busy-poll`, in microseconds.
pub const MAX_BUSY_POLL_USECS: u64 = 100_000;
/// Default `--relay-rate`, Mbit/s.
pub const DEFAULT_RELAY_RATE_MBIT: u64 = 100;
/// Largest `--relay-rate`, Mbit/s.
pub const MAX_RELAY_RATE_MBIT: u64 = 100_000;

/// The most `--connect` addresses (each is resolved at start-up, one after the other).
pub const MAX_CONNECT: usize = 1024;

/// The smallest `--mtu`: the least IPv4 needs.
pub const MIN_MTU: u32 = 68;
/// The largest `--mtu`: a VLAN-tagged frame of this MTU (18-byte header) still fits into one
/// UDP datagram of at most 65507 bytes after the 8-byte ethcloud header.
pub const MAX_MTU: u32 = 65_481;

/// The tap MTU that lets a full-size frame cross a 1500-byte underlay in one datagram:
///
/// ```text
/// 1500 - 20 (IPv4) - 8 (UDP) - 8 (ethcloud) - 14 (Ethernet) = 1450
/// 1500 - 40 (IPv6) - 8 (UDP) - 8 (ethcloud) - 14 (Ethernet) = 1430
/// ```
///
/// A socket that reaches IPv6 peers (an IPv6 or dual-stack listen address) gets the IPv6
/// figure, since any of its datagrams may go over IPv6.
pub fn default_mtu(families: Families) -> u32 {
    let ip = if families.ipv6 {
        IPV6_HEADER_LEN
    } else {
        IPV4_HEADER_LEN
    };
    UNDERLAY_MTU - ip - UDP_HEADER_LEN - ETHCLOUD_HEADER_LEN - FRAME_HEADER_LEN
}
