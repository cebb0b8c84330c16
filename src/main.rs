//! The `ethcloud` binary: parse the command line, set up logging, open the tap device and the
//! socket, run the daemon, and turn any error into one line on stderr and an exit code.
//!
//! Owns the order of start-up only: block signals, check the arguments, resolve peers, bind,
//! open the tap (so a bad peer name or listen address never creates a tap device), log one
//! `started: ...` line, run. Everything else lives in the library.
//! Exit codes: 0 clean exit (also after SIGINT/SIGTERM), 1 run-time failure, 2 usage error.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use log::info;

use ethcloud::cli::Args;
use ethcloud::daemon;
use ethcloud::error::Error;
use ethcloud::sys::{ifaddrs, signal::SignalFd, tap::TapDevice, udp::UdpSocket};

fn main() -> ExitCode {
    let args = Args::parse();
    env_logger::Builder::new()
        .filter_level(args.log_level())
        .parse_default_env()
        .init();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ethcloud: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn run(args: &Args) -> Result<(), Error> {
    // First, so that SIGINT/SIGTERM during start-up lead to a clean exit, not a kill.
    let signals = SignalFd::new().map_err(Error::Signal)?;
    let settings = args.check()?;
    let connect = settings.resolve_peers()?;
    let socket = UdpSocket::bind(settings.listen)?;
    let listen = socket.local_addr().map_err(|source| Error::Bind {
        addr: settings.listen,
        source,
    })?;
    let own_addrs = ifaddrs::own_addrs(listen).map_err(Error::LocalAddrs)?;
    let device = TapDevice::open(&settings.device)?;
    let config = settings.node_config(connect, own_addrs, socket.families());
    info!(
        "started: device {}, listening on {listen}, token {}, peers to connect: {}",
        device.name(),
        config.token,
        peer_list(&config.connect)
    );
    daemon::run(config, socket, device, signals)?;
    Ok(())
}

/// `a, b, c`, or `none`.
fn peer_list(peers: &[SocketAddr]) -> String {
    if peers.is_empty() {
        return "none".to_owned();
    }
    peers
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
