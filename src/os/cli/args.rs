//! The clap definitions: [`Args`], with every option's short and long name, value name and
//! help text, and the log level `-v` / `-q` ask for.
//!
//! Owns the syntax clap checks (types, conflicts, exit code 2 for its errors) and nothing
//! else: defaults, the config file and value checks belong to `check`, so that an option left
//! out here stays `None` and a config file value can show through.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use log::LevelFilter;

use crate::status::StatsFormat;

/// The raw command line: the options of the seed spec plus the service options, or one of
/// the key tools ([`Command`]). Options with a default are `Option`s here, so that a value
/// from `--config` shows through where the command line says nothing; [`Args::check`]
/// applies the defaults.
#[derive(Parser, Debug, Clone, PartialEq, Eq)]
#[command(
    name = "ethcloud",
    version,
    about = "Layer 2 VPN over UDP: a learning Ethernet switch whose ports are peers in a \
             self-forming mesh",
    args_conflicts_with_subcommands = true,
    disable_help_subcommand = true
)]
pub struct Args {
    /// A key tool to run instead of the daemon; `None` runs the daemon.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Name of the tap device (%d lets the kernel pick a number) [default: ethcloud%d]
    #[arg(short = 'd', long = "device", value_name = "device")]
    pub device: Option<String>,

    /// Address to listen on (`[::]:port` also serves IPv4 peers) [default: 0.0.0.0:3210]
    #[arg(short = 'l', long = "listen", value_name = "listen")]
    pub listen: Option<String>,

    /// Token that identifies the network [default: 0]
    #[arg(short = 't', long = "token", value_name = "token")]
    pub token: Option<String>,

    /// List of peers (addr:port) to connect to; repeat for more peers
    #[arg(short = 'c', long = "connect", value_name = "connect")]
    pub connect: Vec<String>,

    /// Peer timeout in seconds [default: 1800]
    #[arg(long = "peer-timeout", value_name = "peer_timeout")]
    pub peer_timeout_secs: Option<u64>,

    /// Mac table entry timeout in seconds [default: 300]
    #[arg(long = "mac-timeout", value_name = "mac_timeout")]
    pub mac_timeout_secs: Option<u64>,

    /// Log verbosely
    #[arg(short = 'v', long = "verbose", conflicts_with = "quiet")]
    pub verbose: bool,

    /// Only print error messages
    #[arg(short = 'q', long = "quiet")]
    pub quiet: bool,

    // (The seed's options above, in the seed's order, open the usage; ours follow.)
    /// Read options from this TOML file (keys are the long options, e.g. peer-timeout = 60);
    /// options on the command line win. Convention: /etc/ethcloud/NAME.toml
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Send every peer something at least every SECS seconds, which keeps NAT mappings open
    /// [default: a quarter of --peer-timeout, at most 60]
    #[arg(long = "keepalive", value_name = "SECS")]
    pub keepalive_secs: Option<u64>,

    /// Most peers kept at once [default: 4096]
    #[arg(long = "max-peers", value_name = "N")]
    pub max_peers: Option<usize>,

    /// Most MAC table entries [default: 65536]
    #[arg(long = "max-macs", value_name = "N")]
    pub max_macs: Option<usize>,

    /// Most MAC table entries behind one peer [default: 4096]
    #[arg(long = "max-macs-per-peer", value_name = "N")]
    pub max_macs_per_peer: Option<usize>,

    /// Broadcast and multicast frames per second accepted from one source [default: no limit]
    #[arg(long = "broadcast-limit", value_name = "PER_SEC")]
    pub broadcast_limit: Option<u64>,

    /// Switch to this user once the tap device and the socket are open
    #[arg(long = "user", value_name = "USER")]
    pub user: Option<String>,

    /// Switch to this group along with --user [default: the user's primary group]
    #[arg(long = "group", value_name = "GROUP")]
    pub group: Option<String>,

    /// Shell command run once the tap device is up, with $IFNAME set to its name
    #[arg(long = "ifup", value_name = "CMD")]
    pub ifup: Option<String>,

    /// Shell command run at shutdown before the tap device goes, with $IFNAME set
    #[arg(long = "ifdown", value_name = "CMD")]
    pub ifdown: Option<String>,

    /// MTU of the tap device [default: 1450 with an IPv4 listen address, 1430 with IPv6; 41 less with --key-file or --private-key]
    #[arg(long = "mtu", value_name = "BYTES")]
    pub mtu: Option<u32>,

    /// Write peers, MAC table and counters to this file every --stats-interval seconds
    #[arg(long = "stats-file", value_name = "FILE")]
    pub stats_file: Option<PathBuf>,

    /// Seconds between two writes of --stats-file [default: 10]
    #[arg(long = "stats-interval", value_name = "SECS")]
    pub stats_interval_secs: Option<u64>,

    /// Format of --stats-file [default: text]
    #[arg(long = "stats-format", value_name = "FORMAT")]
    pub stats_format: Option<StatsFormat>,

    /// Turn off the segmentation offloads (tap TSO/USO/checksum, UDP GSO/GRO, TCP and UDP coalescing)
    #[arg(long = "no-offload")]
    pub no_offload: bool,

    /// Never relay (network key or per-node keys only): do not forward frames for two peers
    /// that cannot reach each other, and do not send through other nodes
    #[arg(long = "no-relay")]
    pub no_relay: bool,

    /// Never seal with AEGIS-128L or AEGIS-128X4, nor tell peers we open them: sessions and
    /// sealed frames stay on AES-GCM or ChaCha20-Poly1305 (network key or per-node keys only)
    #[arg(long = "no-aegis")]
    pub no_aegis: bool,

    /// Carry frames to and from direct IPv4 peers in the kernel (BPF) even with a firewall on the host (default: only without one; clear protocol, Linux 6.6 or later)
    #[arg(long = "kernel-path")]
    pub kernel_path: bool,

    /// Carry every frame through the daemon, never in the kernel
    #[arg(long = "no-kernel-path", conflicts_with = "kernel_path")]
    pub no_kernel_path: bool,

    /// Relay for others at most MBIT megabits per second in all; 0: use relays but never be one [default: 100]
    #[arg(long = "relay-rate", value_name = "MBIT")]
    pub relay_rate_mbit: Option<u64>,

    /// Forward frames from the device on N threads, one per queue of a multi-queue tap [default: 1]
    #[arg(long = "threads", value_name = "N")]
    pub threads: Option<u64>,

    /// After traffic, poll without sleeping for USECS microseconds (lower latency, more CPU) [default: 50]
    #[arg(long = "busy-poll", value_name = "USECS")]
    pub busy_poll_usecs: Option<u64>,

    /// Seal every packet with the key in FILE (32 bytes, 64 hex digits, or a passphrase)
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_file: Option<PathBuf>,

    /// Per-node keys: this node's private key (from `ethcloud genkey`, mode 600); needs --trusted
    #[arg(long = "private-key", value_name = "FILE")]
    pub private_key: Option<PathBuf>,

    /// Public keys this node accepts: a file of keys, one per line, or a directory of such
    /// files; repeat for more
    #[arg(long = "trusted", value_name = "PATH")]
    pub trusted: Vec<PathBuf>,

    /// Per-node keys: make new session keys with each peer every SECS seconds [default: 120]
    #[arg(long = "rekey-after", value_name = "SECS")]
    pub rekey_after_secs: Option<u64>,

    /// Print a completion script for SHELL to standard output and exit
    #[arg(long = "completions", value_name = "SHELL")]
    pub completions: Option<clap_complete::Shell>,

    /// Unix socket `ethcloud show` asks (root-only) [default: /run/ethcloud/DEVICE.sock]
    #[arg(long = "control-socket", value_name = "PATH")]
    pub control_socket: Option<PathBuf>,
}

/// The options of `ethcloud show`.
#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct ShowArgs {
    /// The daemon's tap device: asks /run/ethcloud/DEVICE.sock
    #[arg(value_name = "DEVICE")]
    pub device: Option<String>,

    /// Print the answer as JSON (one object; its keys are in the man page)
    #[arg(long = "json")]
    pub json: bool,

    /// The daemon's config file: its control-socket and device keys name the socket
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The daemon's control socket [default: the --config file's control-socket, else
    /// /run/ethcloud/DEVICE.sock (DEVICE from here or the config file), else the only socket
    /// in /run/ethcloud, else /run/ethcloud/ethcloud0.sock]
    #[arg(long = "socket", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// The tools that run instead of the daemon: each prints its result on standard output and
/// exits.
#[derive(Subcommand, Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the running daemon for its peers, MAC table and counters (like `wg show`)
    Show(ShowArgs),
    /// Print a new private key for --private-key (e.g. umask 077; ethcloud genkey > vpn0.key)
    Genkey,
    /// Read a private key on standard input and print its public key, for the others' --trusted
    Pubkey,
}

impl Args {
    /// The log level asked for on the command line: `Debug` with `-v`, `Error` with `-q`,
    /// else `Info`. [`Settings::log_level`](super::Settings::log_level) also heeds the config file.
    pub fn log_level(&self) -> LevelFilter {
        if self.verbose {
            LevelFilter::Debug
        } else if self.quiet {
            LevelFilter::Error
        } else {
            LevelFilter::Info
        }
    }
}
