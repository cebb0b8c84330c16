//! The `ethcloud` binary: parse the command line (over the `--config` file), set up logging,
//! open the tap device and the socket, run the daemon, and turn any error into one line on
//! stderr and an exit code.
//!
//! Owns the order of start-up and shutdown only:
//!
//! 1. install the panic hook; run a key tool (`genkey`, `pubkey`, `show`) and exit, or print
//!    shell completions and exit, or block SIGHUP and SIGUSR1 and check the arguments and the
//!    config file, `--user` looked up (before logging is set up, since they choose the log
//!    level);
//! 2. block SIGINT and SIGTERM too (the signalfd), read the key files, resolve peers, bind, open the tap
//!    (so a bad peer name, user, key file or listen address never creates a tap device), set
//!    its MTU and bring it up;
//! 3. run `--ifup`, drop privileges, log one `started: ...` line, tell systemd `READY=1`;
//! 4. run the loop; then tell systemd `STOPPING=1` and run `--ifdown` while the tap still
//!    exists (a second fd keeps it alive until then).
//!
//! Everything else lives in the library.
//! Exit codes: 0 clean exit (also after SIGINT/SIGTERM), 1 run-time failure, 2 usage or
//! config error.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use log::{debug, error, info, warn};

use ethcloud::cli::{
    unique_addrs, Args, Command, Host, KernelPathMode, PeerAddr, Settings, ShowArgs,
};
use ethcloud::daemon;
use ethcloud::error::Error;
use ethcloud::hook::{self, HOOK_TIMEOUT};
use ethcloud::io::Socket as _;
use ethcloud::keyfiles::{self, NodeIdentity};
use ethcloud::kpath::KernelPath;
use ethcloud::node::Keyed;
use ethcloud::service::{NamedPeer, Service, StatsFileSpec};
use ethcloud::status::Header;
use ethcloud::sys::control::{self, ControlServer};
use ethcloud::sys::privdrop::{self, Identity};
use ethcloud::sys::{
    firewall, ifaddrs, netdev, notify, signal::SignalFd, tap::TapDevice, udp::UdpSocket,
};
use ethcloud::time::Instant;

fn main() -> ExitCode {
    // First: a panic anywhere after this, in the key tools and the option checks too, is the
    // one error line the man page describes.
    ethcloud::os::logging::install_panic_hook(ethcloud::os::logging::error_prefix());
    ethcloud::sys::files::note_starting_user();
    let args = Args::parse();
    if let Some(command) = args.command {
        let result = match command {
            Command::Genkey => {
                let stdout = stdout_metadata();
                if stdout.as_ref().is_some_and(is_dev_null) {
                    Err(Error::Stdio {
                        action: "write the private key to standard output",
                        source: io::Error::other(
                            "it is /dev/null (closed, or sent there), where the key would be \
                             lost",
                        ),
                    })
                } else {
                    warn_if_readable_by_others(stdout.as_ref());
                    keyfiles::genkey(&mut io::stdout().lock())
                }
            }
            Command::Pubkey => keyfiles::pubkey(io::stdin().lock(), &mut io::stdout().lock()),
            Command::Show(show) => return show_command(&show),
        };
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            // The reader went away: quietly, as `write_stdout` does.
            Err(Error::Stdio { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe => {
                ExitCode::from(141)
            }
            Err(err) => fail(&err),
        };
    }
    if let Some(shell) = args.completions {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Args::command(), "ethcloud", &mut script);
        return write_stdout(&script);
    }
    // SIGHUP and SIGUSR1 would kill the process during a slow start (an NSS lookup of
    // --user); blocked now, they wait for the signalfd.
    if let Err(e) = ethcloud::sys::signal::block_reload_and_status() {
        return fail(&Error::Signal(e));
    }
    let settings = match args.check() {
        Ok(settings) => settings,
        Err(err) => return fail(&err),
    };
    ethcloud::os::logging::init(settings.log_level);
    match run(&settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &Error) -> ExitCode {
    say(&format!(
        "{}ethcloud: {err}\n",
        ethcloud::os::logging::error_prefix()
    ));
    ExitCode::from(err.exit_code())
}

/// Writes `text` to standard error; a standard error that is closed or full is no reason
/// to stop (`eprint!` would panic).
fn say(text: &str) {
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `bytes` to standard output. A reader that went away (`ethcloud show | head -1`)
/// ends the command quietly with status 141, as a shell shows a command ended by SIGPIPE;
/// any other failure is one line on standard error and status 1. (`print!` would panic.)
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::from(141),
        Err(e) => {
            say(&format!("ethcloud: cannot write to standard output: {e}\n"));
            ExitCode::FAILURE
        }
    }
}

/// The `--connect` names resolved, on a thread of their own (each may take the resolver's
/// whole timeout, in a call no signal interrupts), while this one looks every 20 ms whether
/// `stop` says to give up: `None` then, and the thread is left to end with the process.
fn resolve_unless(
    settings: &Settings,
    stop: &dyn Fn() -> bool,
) -> Option<Vec<(PeerAddr, Result<SocketAddr, Error>)>> {
    let names = settings.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("resolve".to_owned())
        .spawn(move || {
            // The receiver may be gone (we stopped): nothing to tell then.
            let _ = tx.send(names.resolve_each());
        });
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => {
            debug!("cannot start a thread to resolve names ({e}): resolving here");
            return settings.resolve_each_unless(stop);
        }
    };
    loop {
        match rx.recv_timeout(std::time::Duration::from_millis(20)) {
            Ok(result) => {
                // Its last act was the send: joined, the process has one thread again, as
                // the switch of user (`privdrop::drop_to`) wants.
                if thread.join().is_err() {
                    debug!("the thread that resolved names ended in a panic after its answer");
                }
                return Some(result);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if stop() {
                    return None;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                // The thread ended without an answer (it panicked): resolve here instead.
                return settings.resolve_each_unless(stop);
            }
        }
    }
}

fn run(settings: &Settings) -> Result<(), Error> {
    // First, so that SIGINT/SIGTERM during start-up lead to a clean exit, not a kill.
    let signals = SignalFd::new().map_err(Error::Signal)?;
    if !settings.unused.is_empty() {
        warn!(
            "{} ignored: relaying and its options (and --no-aegis) apply to --key-file and \
             --private-key only, --rekey-after to --private-key only, --stats-interval and \
             --stats-format to --stats-file only",
            settings.unused.join(", ")
        );
    }
    // The hooks' exit status must be ours to wait for, whatever the parent left us.
    ethcloud::sys::signal::default_child_signal().map_err(Error::Signal)?;
    let identity = match &settings.user {
        Some(user) => Some(Identity::resolve(user, settings.group.as_deref())?),
        None => None,
    };
    let keyed = match &settings.key_file {
        Some(path) => Some(load_key(path, settings.token)?),
        None => None,
    };
    let node_identity = match &settings.private_key {
        Some(path) => Some(load_identity(path, &settings.trusted)?),
        None => None,
    };
    // SIGINT or SIGTERM while names resolve (each may take the resolver's whole timeout when
    // DNS is down) or while --ifup runs: stop there, and cleanly.
    let stop_pending = || match signals.stop_pending() {
        Ok(stop) => stop,
        Err(e) => {
            debug!("cannot look at the pending signals: {e}");
            false
        }
    };
    let Some(resolved) = resolve_unless(settings, &stop_pending) else {
        info!("stopped during start-up (a signal came while names were being resolved)");
        return Ok(());
    };
    let resolved = start_without_unresolved(resolved);
    let mut socket = UdpSocket::bind(settings.listen)?;
    if settings.offload {
        socket.enable_offloads();
    }
    let listen = socket.local_addr().map_err(|source| Error::Bind {
        addr: settings.listen,
        source,
    })?;
    let own_addrs = ifaddrs::own_addrs(listen).map_err(Error::LocalAddrs)?;
    let device = TapDevice::open_queues(&settings.device, settings.offload, settings.threads)?;
    let name = device.name().to_owned();
    set_up_device(&name, settings.mtu)?;
    info!("device {name}: mtu {}, up", settings.mtu);
    // A second fd on the tap keeps the interface alive after the loop has dropped the device,
    // so that --ifdown still finds it.
    let keep_tap = match device.as_fd().try_clone_to_owned() {
        Ok(fd) => Some(fd),
        Err(e) => {
            warn!("cannot duplicate the tap fd ({e}); --ifdown will run after {name} is gone");
            None
        }
    };
    let control = open_control(settings, &name);
    if stop_pending() {
        // (Before --ifup: a stop that came while the tap, the socket or the control socket
        // were being set up does not start a hook that could take a minute, nor its
        // counterpart.)
        info!("stopped during start-up (a signal came before --ifup)");
        return Ok(());
    }
    if let Some(command) = &settings.ifup {
        hook::run("--ifup", command, &name, HOOK_TIMEOUT)?;
        if stop_pending() {
            info!("stopped during start-up (a signal came while --ifup ran)");
            run_ifdown(settings, &name, None);
            return Ok(());
        }
    }
    // After --ifup (which may make the tap a bridge port), before the switch to --user
    // (loading and attaching need CAP_BPF and CAP_NET_ADMIN).
    let kernel_path = start_kernel_path(settings, &name, listen, &mut socket);
    give_up_kernel_path_privileges(kernel_path.is_some());
    if let Some(identity) = &identity {
        // What SIGHUP reads must stay readable after the switch: checked as that user
        // while still root, so that a failure leaves --ifdown its privileges.
        let unreadable = privdrop::as_filesystem_user(identity, || {
            check_trusted_readable(settings, identity)?;
            check_stats_writable(settings, identity)
        });
        if let Some(Err(err)) = unreadable {
            run_ifdown(settings, &name, Some(&err));
            return Err(err);
        }
        let before = privdrop::current_ids();
        if let Err(err) = privdrop::drop_to(identity) {
            // --ifup ran: its counterpart runs too, but only with the ids it ran with (a
            // switch refused outright); one that failed halfway leaves the process in a
            // state no hook should run in.
            if privdrop::current_ids() == before {
                run_ifdown(settings, &name, Some(&err));
            } else {
                error!("not running --ifdown: the switch to {identity} failed halfway");
            }
            return Err(err);
        }
        info!("running as {identity}");
        if let Err(err) = check_reloadable(settings, identity) {
            run_ifdown(settings, &name, Some(&err));
            return Err(err);
        }
    }

    let families = socket.families();
    let mut config = settings.node_config(unique_addrs(&resolved), own_addrs, families);
    config.keyed = keyed;
    info!(
        "started: device {name}, listening on {listen}, token {}, peers to connect: {}",
        config.token,
        peer_list(&config.connect)
    );
    let service = service(settings, &name, listen, &resolved, families).with_control(control);
    tell_systemd(notify::READY);

    let result = daemon::run(
        config,
        socket,
        device,
        signals,
        service,
        daemon::Paths {
            busy_poll: settings.busy_poll,
            kernel_path,
        },
        daemon::KeySources {
            key_file: settings.key_file.clone(),
            identity: node_identity,
            rekey_after: Some(settings.rekey_after),
        },
    );

    tell_systemd(notify::STOPPING);
    run_ifdown(settings, &name, result.as_ref().err());
    drop(keep_tap);
    result.map(|_| ())
}

/// Gives up, once the kernel path is started (or not), the capabilities only its start
/// needs: its raw socket is open and its programs loaded, or it is off for the whole run.
/// The maps change through their descriptors and `decap` is attached to new interfaces
/// with `CAP_NET_ADMIN`, which the daemon keeps (for the firewall check, among others); but
/// on a kernel before 6.5 every `bpf(2)` call may need `CAP_BPF`, which is then kept while
/// the kernel path is on.
fn give_up_kernel_path_privileges(on: bool) {
    let caps: &[u32] = if on && ethcloud::sys::bpf::needs_cap_bpf_all_along() {
        &[privdrop::CAP_NET_RAW]
    } else {
        &[privdrop::CAP_BPF, privdrop::CAP_NET_RAW]
    };
    if let Err(e) = privdrop::give_up(caps) {
        debug!("cannot give up capabilities {caps:?} (CAP_BPF is 39, CAP_NET_RAW 13): {e}");
    }
}

/// Starts the kernel path as `settings` asks (see [`KernelPathMode`]), after `--ifup` (which
/// may make the tap a bridge port) and before the switch to `--user` (loading and attaching
/// need `CAP_BPF` and `CAP_NET_ADMIN`). By default a host with a firewall, or a kernel or
/// privileges without what it needs, keeps every frame in the daemon, with one info line;
/// with `--kernel-path` a failure is a warning.
fn start_kernel_path(
    settings: &Settings,
    name: &str,
    listen: SocketAddr,
    socket: &mut UdpSocket,
) -> Option<KernelPath> {
    let forced = match settings.kernel_path {
        KernelPathMode::Off => return None,
        KernelPathMode::On => true,
        KernelPathMode::Auto => false,
    };
    if !forced && settings.user.is_some() {
        // The default asks about the firewall once a second, which nfnetlink answers only
        // with CAP_NET_ADMIN, given up with --user.
        info!(
            "kernel path off, every frame goes through the daemon: with --user the daemon \
             cannot watch the host's firewall (--kernel-path uses it anyway)"
        );
        return None;
    }
    if forced && settings.user.is_some() && ethcloud::sys::bpf::needs_cap_bpf_all_along() {
        // Before Linux 6.5 every bpf(2) call, map updates included, needs CAP_BPF (with
        // unprivileged BPF disabled), which the switch to --user gives up: the maps would
        // stop following the node.
        warn!(
            "kernel path off, every frame goes through the daemon: on Linux before 6.5 it \
             cannot change its maps once --user has given up CAP_BPF"
        );
        return None;
    }
    if !forced {
        match firewall::first() {
            Ok(None) => {}
            Ok(Some(what)) => {
                info!(
                    "kernel path off, every frame goes through the daemon: this host has a \
                     firewall ({what}), which frames in the kernel would pass by \
                     (--kernel-path uses it anyway)"
                );
                return None;
            }
            Err(e) => {
                info!(
                    "kernel path off, every frame goes through the daemon: cannot tell \
                     whether this host has a firewall ({e})"
                );
                return None;
            }
        }
    }
    let path = match KernelPath::start(
        name,
        settings.mtu,
        listen,
        settings.token,
        settings.max_peers,
        settings.max_macs,
        settings.mac_timeout,
        !forced,
    ) {
        Ok(path) => path,
        Err(e) if forced => {
            warn!("kernel path off, every frame goes through the daemon: {e}");
            return None;
        }
        Err(e) => {
            info!(
                "kernel path off, every frame goes through the daemon: {e} (it needs Linux \
                 6.6, CAP_BPF, CAP_NET_ADMIN and CAP_NET_RAW: see KERNEL PATH and SYSTEMD in \
                 the man page)"
            );
            return None;
        }
    };
    // Peers with a kernel path know each other by control messages without checksums,
    // which go through the raw socket while the node takes frames (see
    // `KernelPath::takes_frames`, which can change while it runs).
    match path.raw_control() {
        Ok(raw) => socket.send_control_without_checksums(raw),
        Err(e) => warn!(
            "kernel path: cannot share the raw socket with the daemon's control messages \
             ({e}): they go with checksums, and peers with a kernel path learn of this one \
             from its heartbeats only"
        ),
    }
    if !path.takes_frames() {
        socket.control_as_frames(true);
        if path.may_take_frames() {
            info!(
                "kernel path: no interface takes frames yet, so peers send their frames here \
                 through their daemons until one does"
            );
        } else {
            info!(
                "kernel path: {name} forwards what it gets (a bridge port, a bond member, or \
                 forwarding on), so peers send their frames here through their daemons"
            );
        }
    }
    Some(path)
}

/// Runs `--ifdown`, if given; a failure is a warning (the daemon is stopping anyway). With
/// `cause`, the error the daemon stops for, which its fatal line gives at the exit, after
/// the hook (up to a minute, and its own lines, perhaps errors of a device that is gone):
/// logged first, so that the log tells why before it tells what the hook did.
fn run_ifdown(settings: &Settings, name: &str, cause: Option<&Error>) {
    if let Some(command) = &settings.ifdown {
        if let Some(err) = cause {
            info!("stopping after an error: {err}");
        }
        if let Err(err) = hook::run("--ifdown", command, name, HOOK_TIMEOUT) {
            warn!("{err}");
        }
    }
}

/// `ethcloud show [--json]`: asks the daemon at the control socket and prints its answer.
/// Exit 0 with the answer on stdout; 1 with one line on stderr if there is no answer or the
/// daemon answers with an error.
fn show_command(show: &ShowArgs) -> ExitCode {
    // `ethcloud show --config /etc/ethcloud/NAME.toml` asks that instance.
    let file = match &show.config {
        Some(path) => match ethcloud::config::ConfigFile::read(path) {
            Ok(file) => Some(file.values),
            Err(err) => return fail(&err),
        },
        None => None,
    };
    let file_socket = file.as_ref().and_then(|f| f.control_socket.clone());
    let file_device = file.and_then(|f| f.device);
    let device = show.device.clone().or(file_device);
    let (path, stream) = match show.socket.clone().or(file_socket) {
        Some(path) => (path, None),
        None => match control::find_default(device.as_deref()) {
            Ok(found) => (found.path, found.stream),
            Err(err) => {
                say(&format!("ethcloud: {err}\n"));
                return ExitCode::FAILURE;
            }
        },
    };
    let request = if show.json { "show json" } else { "show" };
    match control::request_on(&path, stream, request) {
        Ok(answer) if answer.starts_with("error: ") => {
            say(&format!("ethcloud: {answer}"));
            ExitCode::FAILURE
        }
        // The JSON answer is one object; a cut at a line's end would still end in a newline.
        Ok(answer) if show.json && !answer.ends_with("}\n") => {
            say(&format!("ethcloud: {}\n", control::cut_off(&path)));
            ExitCode::FAILURE
        }
        Ok(answer) => write_stdout(answer.as_bytes()),
        Err(err) => {
            say(&format!("ethcloud: {err}\n"));
            ExitCode::FAILURE
        }
    }
}

/// Listens on the control socket (`--control-socket`, else the device's default path). A
/// failure is a warning: the VPN runs without `ethcloud show`.
fn open_control(settings: &Settings, device: &str) -> Option<ControlServer> {
    let path = settings
        .control_socket
        .clone()
        .unwrap_or_else(|| control::default_path(device));
    match ControlServer::bind(&path) {
        Ok(server) => {
            info!("control socket {}: ethcloud show asks here", path.display());
            Some(server)
        }
        Err(e) => {
            warn!(
                "no control socket at {}: {e}; `ethcloud show` cannot reach this daemon \
                 (choose another path with --control-socket)",
                path.display()
            );
            None
        }
    }
}

/// Reads the key file and makes this run's session: the start time in milliseconds since the
/// Unix epoch, then 8 random bytes, so that no two runs ever use the same nonces.
fn load_key(path: &std::path::Path, token: ethcloud::wire::Token) -> Result<Keyed, Error> {
    let key = keyfiles::read_key(path, token)?;
    let session = keyfiles::new_session()?;
    info!(
        "keyed mode: every packet is sealed ({}, the fastest on this CPU) with the key from {}",
        ethcloud::crypto::Cipher::preferred(),
        path.display()
    );
    Ok(Keyed { key, session })
}

/// With `--user`: the `--trusted` files, which SIGHUP reads again to revoke keys, must be
/// readable by that user (checked with its filesystem ids before the switch, and once more
/// after it).
fn check_trusted_readable(settings: &Settings, identity: &Identity) -> Result<(), Error> {
    if settings.private_key.is_some() {
        keyfiles::read_trusted(&settings.trusted).map_err(|source| Error::TrustedAfterDrop {
            user: identity.user.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// Before the switch to `--user`, as that user: the `--stats-file` must be writable then (it
/// is written every few seconds; failures after the first are logged at debug only). Refused
/// only for what no retry mends (permissions, a read-only file system); anything else (a
/// directory not there yet, a full file system) is a warning, as it is without `--user`.
fn check_stats_writable(settings: &Settings, identity: &Identity) -> Result<(), Error> {
    let Some(path) = &settings.stats_file else {
        return Ok(());
    };
    match ethcloud::service::check_writable_beside(path, identity.uid) {
        Ok(()) => Ok(()),
        Err(source)
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            Err(Error::StatsAfterDrop {
                user: identity.user.clone(),
                path: path.clone(),
                source,
            })
        }
        Err(e) => {
            warn!(
                "as {}, the --stats-file {} cannot be written now ({e}); it is tried again \
                 every --stats-interval",
                identity.user,
                path.display()
            );
            Ok(())
        }
    }
}

/// After the switch to `--user`: the files SIGHUP reads again must still be readable. The
/// `--trusted` ones are how a key is revoked, so not being able to read them is an error; a
/// `--key-file` that cannot be read only rules out a key rotation, which is a warning.
fn check_reloadable(settings: &Settings, identity: &Identity) -> Result<(), Error> {
    check_trusted_readable(settings, identity)?;
    if let Some(path) = &settings.key_file {
        // Not a plain open: a FIFO with no writer would block it for good.
        if let Err(e) = ethcloud::sys::files::open_for_reading(path) {
            warn!(
                "--key-file {} cannot be read as {identity} ({e}): SIGHUP cannot start a key \
                 rotation (make it 640, owned by root and that user's group)",
                path.display()
            );
        }
    }
    Ok(())
}

/// Reads the node's private key and the keys it trusts (refusing a key file others may read).
fn load_identity(
    path: &std::path::Path,
    trusted: &[std::path::PathBuf],
) -> Result<NodeIdentity, Error> {
    let identity = NodeIdentity::load(path, trusted)?;
    info!(
        "per-node keys: public key {} (from {}); trusted keys: {} (besides its own)",
        identity.secret.public_key(),
        path.display(),
        identity.peer_keys()
    );
    if identity.peer_keys() == 0 {
        warn!(
            "per-node keys: --trusted names no key but this node's own, so no node will be \
             accepted"
        );
    }
    Ok(identity)
}

/// What standard output is (`fstat`), if that can be told.
fn stdout_metadata() -> Option<std::fs::Metadata> {
    let fd = io::stdout().as_fd().try_clone_to_owned().ok()?;
    std::fs::File::from(fd).metadata().ok()
}

/// Whether `meta` is /dev/null's: standard output sent there, or closed when the process
/// started (the standard library opens /dev/null in its place, so writes to it would succeed).
fn is_dev_null(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    meta.file_type().is_char_device() && meta.rdev() == libc::makedev(1, 3)
}

/// `ethcloud genkey > FILE` leaves the key as readable as the shell's umask makes FILE; say so
/// (as `wg genkey` does) when that lets others read it (`stdout`: what standard output is, if
/// that could be told). The key is written all the same.
fn warn_if_readable_by_others(stdout: Option<&std::fs::Metadata>) {
    let Some(meta) = stdout else {
        return;
    };
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & keyfiles::PRIVATE_KEY_FORBIDDEN_MODE != 0 {
        say(&format!(
            "ethcloud: warning: the key goes to a file others can read (mode {:04o}); \
             chmod 600 it, and next time run `umask 077` first\n",
            mode & 0o7777
        ));
    }
}

/// Sets the tap's MTU and brings it up.
fn set_up_device(name: &str, mtu: u32) -> Result<(), Error> {
    let fail = |action: String| {
        let name = name.to_owned();
        move |source| Error::SetUpDevice {
            name,
            action,
            source,
        }
    };
    netdev::set_mtu(name, mtu).map_err(fail(format!("set the MTU to {mtu}")))?;
    netdev::set_up(name).map_err(fail("bring it up".to_owned()))?;
    Ok(())
}

/// The periodic jobs: the stats file and re-resolving the `--connect` names.
fn service(
    settings: &Settings,
    device: &str,
    listen: SocketAddr,
    resolved: &[(ethcloud::cli::PeerAddr, Option<SocketAddr>)],
    families: ethcloud::sys::udp::Families,
) -> Service {
    let stats = settings.stats_file.clone().map(|path| StatsFileSpec {
        path,
        interval: settings.stats_interval,
        format: settings.stats_format,
    });
    let mut names = Vec::new();
    let mut literals = Vec::new();
    for (peer, addr) in resolved {
        match peer.host {
            Host::Name(_) => names.push(NamedPeer {
                peer: peer.clone(),
                addr: *addr,
            }),
            Host::Ip(_) => literals.extend(*addr),
        }
    }
    let header = Header {
        device: device.to_owned(),
        listen,
    };
    Service::new(header, stats, names, literals, families, Instant::ZERO)
}

/// The `--connect` values with their addresses, a name that did not resolve with `None`
/// (warned about here: the daemon starts without it, and [`Service`] resolves it again
/// every 30 s), so that one stale name or a resolver not yet up at boot does not keep the
/// node off the network.
fn start_without_unresolved(
    resolved: Vec<(PeerAddr, Result<SocketAddr, Error>)>,
) -> Vec<(PeerAddr, Option<SocketAddr>)> {
    resolved
        .into_iter()
        .map(|(peer, result)| match result {
            Ok(addr) => (peer, Some(addr)),
            Err(e) => {
                warn!(
                    "{e}; starting without it, and resolving it again every {} s (further \
                     failures are logged at debug)",
                    ethcloud::service::RESOLVE_INTERVAL.as_secs()
                );
                (peer, None)
            }
        })
        .collect()
}

/// Sends `state` to systemd if it is listening; a failure is worth a warning, not an exit.
fn tell_systemd(state: &str) {
    if let Err(e) = notify::notify(state) {
        warn!("cannot tell systemd {state}: {e}");
    }
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
