//! [`Error`]: everything that can stop ethcloud before or outside the packet path.
//!
//! Owns the start-up and OS-edge failures (bad command-line values, the config file, the key
//! files, tap, socket, epoll, signals, timers, name resolution, the interface set-up, the
//! `--ifup` and `--ifdown` commands, dropping privileges, the key tools' standard input and
//! output) and their one-line messages. It does not cover packets:
//! a bad packet is a `stats::DropReason`, counted by the node and never fatal.
//!
//! Each variant carries its context. `Display` is written by hand, in `display.rs`: one line,
//! lower case, no final period, the OS error if there is one, and a hint on how to fix it.
//! `main` prints it as `ethcloud: {err}` and exits with [`Error::exit_code`]. The unit tests
//! are in `tests.rs`.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Exit code for a failure at run time or start-up (tap, socket, name resolution).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a bad command line or config file (the same code clap uses for its own usage
/// errors).
pub const EXIT_USAGE: u8 = 2;

/// A failure at start-up or at an OS edge.
#[derive(Debug)]
pub enum Error {
    /// `--token` is not a decimal number below 2^56.
    InvalidToken {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--listen` is not `ip:port`.
    InvalidListen {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--connect` value is not `host:port`.
    InvalidPeer {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--connect` IP address of a family the listening socket cannot reach.
    UnreachablePeer {
        /// The peer address.
        peer: SocketAddr,
        /// The listen address that rules it out.
        listen: SocketAddr,
    },
    /// `--device` is not a valid interface name.
    InvalidDeviceName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A timeout option is below its minimum.
    InvalidTimeout {
        /// The option, e.g. `--peer-timeout`.
        option: &'static str,
        /// The smallest value it takes, seconds.
        min: u64,
    },
    /// A timeout option is above [`MAX_TIMEOUT_SECS`](crate::cli::MAX_TIMEOUT_SECS).
    TimeoutTooLong {
        /// The option, e.g. `--mac-timeout`.
        option: &'static str,
    },
    /// A `--connect` name could not be resolved.
    Resolve {
        /// The value as given (`host:port`).
        peer: String,
        /// The resolver's error.
        source: io::Error,
    },
    /// A `--connect` name resolved, but to no address the socket can reach.
    NoUsableAddress {
        /// The value as given (`host:port`).
        peer: String,
        /// The listen address that rules the resolved addresses out.
        listen: SocketAddr,
    },
    /// The tap device could not be created.
    OpenTap {
        /// The requested name (maybe a template such as `ethcloud%d`).
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// The UDP socket could not be created or bound.
    Bind {
        /// The listen address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// The host's addresses could not be listed.
    LocalAddrs(io::Error),
    /// epoll could not be set up or waited on, or the lanes' eventfd could not be read.
    Epoll(io::Error),
    /// The signalfd could not be set up or read.
    Signal(io::Error),
    /// The timerfd could not be set up, armed or cleared.
    Timer(io::Error),
    /// Reading from the tap device failed for good (e.g. the device was deleted).
    DeviceRead {
        /// The device name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Receiving from the UDP socket failed for good.
    SocketRecv(io::Error),
    /// A size limit (`--max-peers`, `--broadcast-limit`, ...) is zero.
    InvalidLimit {
        /// The option, e.g. `--max-peers`.
        option: &'static str,
    },
    /// `--mtu` is outside what an Ethernet tap and one UDP datagram allow.
    InvalidMtu {
        /// The value as given.
        value: u32,
        /// The smallest MTU allowed.
        min: u32,
        /// The largest MTU allowed.
        max: u32,
    },
    /// A path option (`--stats-file`, `--control-socket`) that no file can have, or a hook
    /// command (`--ifup`, `--ifdown`) that cannot run.
    InvalidPath {
        /// The option, e.g. `--control-socket`.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A command-line option that needs another one, or excludes it.
    InvalidCombination {
        /// What is wrong, naming the options.
        reason: &'static str,
    },
    /// The `--config` file could not be read.
    ConfigRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--config` file may be written by others (it names commands run as root).
    ConfigMode {
        /// The path as given.
        path: PathBuf,
        /// Who may write it, the mode, and the fix.
        reason: String,
    },
    /// `--rekey-after` is out of range.
    InvalidRekeyAfter {
        /// The value as given, in seconds.
        value: u64,
        /// The smallest value allowed, in seconds.
        min: u64,
        /// The largest value allowed, in seconds.
        max: u64,
    },
    /// `--threads` is out of range.
    InvalidThreads {
        /// The value as given.
        value: u64,
    },
    /// The `--threads` lanes could not be started.
    Lanes(String),
    /// A `--threads` lane ended while the daemon ran (its own error line says why): the flows
    /// the kernel steers to its queue would be lost, so the daemon ends too.
    LaneEnded {
        /// The lane's number (1 for the second queue).
        index: usize,
    },
    /// `--busy-poll` is out of range.
    InvalidBusyPoll {
        /// The value as given, in microseconds.
        value: u64,
    },
    /// The `--key-file` cannot be read.
    KeyFileRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--key-file` holds no usable key.
    KeyFile {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The OS random number generator failed.
    Random(io::Error),
    /// The `--private-key` file cannot be opened or read.
    PrivateKeyRead {
        /// The path as given.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--private-key` file lets its group or others read it.
    PrivateKeyMode {
        /// The path as given.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The `--private-key` file holds no usable private key.
    PrivateKey {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `--trusted` file or directory cannot be opened or read.
    TrustedRead {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The `--trusted` files cannot be read once privileges are dropped (`--user`), so a
    /// SIGHUP could not revoke a key.
    TrustedAfterDrop {
        /// Who the daemon runs as now.
        user: String,
        /// What reading them as that user gave.
        source: Box<Error>,
    },
    /// The `--stats-file` cannot be written after the switch to `--user`.
    StatsAfterDrop {
        /// Who the daemon runs as then.
        user: String,
        /// The stats file.
        path: PathBuf,
        /// What creating a file beside it as that user gave.
        source: io::Error,
    },
    /// A `--trusted` file or directory holds something other than trusted public keys.
    Trusted {
        /// The file or directory.
        path: PathBuf,
        /// The 1-based line of the problem, when it is about one line.
        line: Option<usize>,
        /// What is wrong, one line.
        reason: String,
    },
    /// The private key given to `ethcloud pubkey` on standard input is not one.
    KeyInput {
        /// What is wrong with it.
        reason: String,
    },
    /// Standard input or output failed (`ethcloud genkey` and `ethcloud pubkey`).
    Stdio {
        /// `read from standard input` or `write to standard output`.
        action: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The `--config` file is not valid TOML, has an unknown key, or a value of the wrong type.
    ConfigParse {
        /// The path as given.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// The key concerned, when known.
        key: Option<String>,
        /// What is wrong, one line.
        message: String,
    },
    /// A value from the `--config` file failed the check its command-line option has.
    ConfigValue {
        /// The path as given.
        path: PathBuf,
        /// The 1-based line of the key.
        line: usize,
        /// The key.
        key: &'static str,
        /// The error the value gave.
        source: Box<Error>,
    },
    /// `--user` names no user (and is not a number).
    UnknownUser {
        /// The name as given.
        name: String,
    },
    /// `--group` names no group (and is not a number).
    UnknownGroup {
        /// The name as given.
        name: String,
    },
    /// The user or group database could not be read.
    UserLookup {
        /// The user or group name.
        name: String,
        /// The OS error.
        source: io::Error,
    },
    /// Switching to `--user` / `--group` failed.
    DropPrivileges {
        /// `user:group` as resolved.
        to: String,
        /// The OS error.
        source: io::Error,
    },
    /// Setting the tap device's MTU or bringing it up failed.
    SetUpDevice {
        /// The device name.
        name: String,
        /// What was being done, e.g. `set the MTU to 1450`.
        action: String,
        /// The OS error.
        source: io::Error,
    },
    /// An `--ifup` or `--ifdown` command could not be started or failed.
    Hook {
        /// `--ifup` or `--ifdown`.
        option: &'static str,
        /// The command as given.
        command: String,
        /// What went wrong.
        failure: HookFailure,
    },
}

/// How an `--ifup` / `--ifdown` command failed.
#[derive(Debug)]
pub enum HookFailure {
    /// `/bin/sh` could not be started.
    Spawn(io::Error),
    /// Waiting for the command failed (it was killed).
    Wait(io::Error),
    /// The command exited unsuccessfully.
    Status(ExitStatus),
    /// The command did not finish in time and was killed.
    Timeout(std::time::Duration),
}

impl Error {
    /// The process exit code for this error: [`EXIT_USAGE`] for a bad command line,
    /// [`EXIT_FAILURE`] for everything else.
    pub fn exit_code(&self) -> u8 {
        if self.is_usage() {
            EXIT_USAGE
        } else {
            EXIT_FAILURE
        }
    }

    /// Whether the command line was at fault (as opposed to the system).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidToken { .. }
                | Error::InvalidListen { .. }
                | Error::InvalidPeer { .. }
                | Error::UnreachablePeer { .. }
                | Error::InvalidDeviceName { .. }
                | Error::InvalidTimeout { .. }
                | Error::TimeoutTooLong { .. }
                | Error::InvalidLimit { .. }
                | Error::InvalidMtu { .. }
                | Error::InvalidPath { .. }
                | Error::InvalidCombination { .. }
                | Error::ConfigRead { .. }
                | Error::ConfigMode { .. }
                | Error::KeyFileRead { .. }
                | Error::InvalidBusyPoll { .. }
                | Error::InvalidThreads { .. }
                | Error::InvalidRekeyAfter { .. }
                | Error::KeyFile { .. }
                | Error::PrivateKeyRead { .. }
                | Error::PrivateKeyMode { .. }
                | Error::PrivateKey { .. }
                | Error::TrustedRead { .. }
                | Error::TrustedAfterDrop { .. }
                | Error::StatsAfterDrop { .. }
                | Error::Trusted { .. }
                | Error::KeyInput { .. }
                | Error::ConfigParse { .. }
                | Error::ConfigValue { .. }
                | Error::UnknownUser { .. }
                | Error::UnknownGroup { .. }
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Resolve { source, .. }
            | Error::ConfigRead { source, .. }
            | Error::UserLookup { source, .. }
            | Error::DropPrivileges { source, .. }
            | Error::SetUpDevice { source, .. }
            | Error::OpenTap { source, .. }
            | Error::Bind { source, .. }
            | Error::DeviceRead { source, .. }
            | Error::PrivateKeyRead { source, .. }
            | Error::TrustedRead { source, .. }
            | Error::Stdio { source, .. } => Some(source),
            Error::LocalAddrs(source)
            | Error::Epoll(source)
            | Error::Signal(source)
            | Error::Timer(source)
            | Error::SocketRecv(source) => Some(source),
            Error::ConfigValue { source, .. } => Some(source.as_ref()),
            Error::Hook {
                failure: HookFailure::Spawn(source),
                ..
            } => Some(source),
            _ => None,
        }
    }
}

mod display;
#[cfg(test)]
mod tests;
