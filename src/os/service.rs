//! What the daemon does besides forwarding, on its own slow clock: write the status snapshot
//! to the `--stats-file` every `--stats-interval`, log it on SIGUSR1, re-resolve the
//! `--connect` names whose address is not a peer, so that a peer with a dynamic address is
//! found again, and answer `ethcloud show` on the control socket ([`Service::serve_control`]).
//!
//! Owns those periodic jobs and their state. The daemon's loop calls [`Service::poll`] after
//! every wake-up (it only compares two instants unless a job is due) and
//! [`Service::log_status`] on SIGUSR1. Nothing here runs on the packet path, and nothing
//! here blocks the loop on the outside world: names are resolved on a helper thread, one
//! round at a time, whose results the loop picks up at a later poll, and the stats file is
//! written by a thread of its own (the loop takes the snapshot, which reads the node; the
//! thread finishes it, sorting and writing out its MAC lines). It also reads the node's own
//! addresses again every [`RESOLVE_INTERVAL`] (and after a SIGHUP), on a thread too, where they
//! come from the interfaces (the listen address is unspecified). The node is changed only
//! through [`Node::add_connect`], [`Node::remove_connect`] and [`Node::set_own_addrs`].

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::time::Duration;

use log::{debug, info, warn};

use crate::error::Error;
use crate::io::{Device, Socket};
use crate::node::Node;
use crate::os::resolve::PeerAddr;
use crate::show::{self, Request};
use crate::status::{self, Header, LoopCounters, Snapshot, StatsFormat, TextParts};
use crate::sys::control::ControlServer;
use crate::sys::epoll::Poll;
use crate::sys::udp::Families;
use crate::time::Instant;

/// How often `--connect` names that are not peers are resolved again.
pub const RESOLVE_INTERVAL: Duration = Duration::from_secs(30);
/// At most this many MAC addresses are logged on SIGUSR1 (the stats file has them all).
pub const LOGGED_MACS: usize = 100;

/// Where and how to write the stats file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatsFileSpec {
    /// The file; it is replaced atomically (a temporary file beside it, then a rename).
    pub path: PathBuf,
    /// How often.
    pub interval: Duration,
    /// In which format.
    pub format: StatsFormat,
}

/// A `--connect` value that is a DNS name, with the one of its addresses in use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPeer {
    /// The value as given.
    pub peer: PeerAddr,
    /// The address in use (given to the node as a connect address); `None` while the name
    /// has never resolved (it did not at start-up, and has not since).
    pub addr: Option<SocketAddr>,
}

/// The periodic jobs of one daemon.
#[derive(Debug)]
pub struct Service {
    header: Header,
    stats: Option<StatsFile>,
    resolver: Resolver,
    /// `None` where the node's addresses do not come from the interfaces.
    own: Option<OwnAddrs>,
    /// The control socket `ethcloud show` asks, if it could be opened.
    control: Option<ControlServer>,
}

#[derive(Debug)]
struct StatsFile {
    spec: StatsFileSpec,
    next_at: Instant,
    /// Who writes the snapshots.
    writing: Writing,
}

/// Who writes the stats file's snapshots.
#[derive(Debug)]
enum Writing {
    /// Nobody yet: the writer thread starts at the first snapshot.
    NotStarted,
    /// The writer thread.
    Thread(StatsWriter),
    /// The loop itself, as no thread could be started (warned once); `failing`: the last
    /// write failed (warned once; further failures are logged at debug).
    Here { failing: bool },
}

/// How many snapshots may wait for the writer thread while it writes one: more are skipped
/// (a file system that hangs, as an NFS mount whose server is gone, holds one write, one
/// snapshot, and nothing else).
const STATS_WAITING: usize = 1;

/// How long a stopping daemon waits for the stats file's writer to finish the write under way
/// (it is a rename away from done, or stuck).
const STATS_WRITER_STOP: Duration = Duration::from_secs(2);

/// The writer thread of the stats file: taking a snapshot is the loop's (it reads the node);
/// finishing it (sorting and writing out up to 65,536 MAC lines, tens of milliseconds) and
/// writing the file are this thread's, so that neither a full MAC table nor a slow or hung
/// file system holds up the packet loop.
#[derive(Debug)]
struct StatsWriter {
    /// Snapshots to write; `None` once the daemon stops.
    to_write: Option<mpsc::SyncSender<Snapshot>>,
    /// Disconnected when the thread ends.
    ended: Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Snapshots not written because the one before was still being written.
    skipped: u64,
}

impl StatsWriter {
    fn start(path: PathBuf, write: fn(&Path, &[u8]) -> io::Result<()>) -> io::Result<StatsWriter> {
        let (to_write, snapshots) = mpsc::sync_channel::<Snapshot>(STATS_WAITING);
        let (ended_tx, ended) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("stats-file".to_owned())
            .spawn(move || {
                let _ended = ended_tx;
                remove_leftovers(&path);
                let mut failing = false;
                for snapshot in snapshots {
                    let text = snapshot.finish();
                    failing = report_write(&path, write(&path, text.as_bytes()), failing);
                }
            })?;
        Ok(StatsWriter {
            to_write: Some(to_write),
            ended,
            thread: Some(thread),
            skipped: 0,
        })
    }

    /// Hands `snapshot` to the thread; skipped (logged at debug) if one still waits.
    fn send(&mut self, snapshot: Snapshot) {
        let Some(to_write) = &self.to_write else {
            return;
        };
        match to_write.try_send(snapshot) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                self.skipped += 1;
                debug!(
                    "stats file: the write before is not done; this snapshot is skipped ({} so \
                     far)",
                    self.skipped
                );
            }
            Err(mpsc::TrySendError::Disconnected(_)) => self.to_write = None,
        }
    }
}

impl Drop for StatsWriter {
    /// Lets the thread write what waits and end, for at most [`STATS_WRITER_STOP`]; a thread
    /// stuck in a write is left to the process's exit.
    fn drop(&mut self) {
        self.to_write = None;
        if let Err(mpsc::RecvTimeoutError::Disconnected) =
            self.ended.recv_timeout(STATS_WRITER_STOP)
        {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            warn!(
                "the stats file's last write did not finish within {} s; stopping without it",
                STATS_WRITER_STOP.as_secs()
            );
        }
    }
}

/// Removes the temporary files of [`write_atomically`] left beside `path` (a daemon stopped
/// while a write took longer than [`STATS_WRITER_STOP`], or killed): names `.NAME.` with 16
/// hex digits and `.tmp`, which only it makes. At most 4,096 directory entries are looked at.
fn remove_leftovers(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    use std::os::unix::ffi::OsStrExt;
    let mut prefix = b".".to_vec();
    prefix.extend_from_slice(name.as_bytes());
    prefix.push(b'.');
    for entry in entries.filter_map(Result::ok).take(4096) {
        let file = entry.file_name();
        let is_ours = file
            .as_bytes()
            .strip_prefix(prefix.as_slice())
            .and_then(|rest| rest.strip_suffix(b".tmp"))
            .is_some_and(|hex| hex.len() == 16 && hex.iter().all(u8::is_ascii_hexdigit));
        if is_ours {
            match fs::remove_file(entry.path()) {
                Ok(()) => info!(
                    "removed {}, left by an earlier write",
                    entry.path().display()
                ),
                Err(e) => debug!("cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
}

/// Logs the outcome of a stats file write: the first failure at warn, the next ones at debug,
/// and at info when writing works again. Returns whether it failed.
fn report_write(path: &Path, result: io::Result<()>, failing: bool) -> bool {
    match result {
        Ok(()) => {
            if failing {
                info!("stats file {} written again", path.display());
            }
            false
        }
        Err(e) if failing => {
            debug!("cannot write stats file {}: {e}", path.display());
            true
        }
        Err(e) => {
            warn!(
                "cannot write stats file {}: {e} (is its directory writable by the user \
                 ethcloud runs as? further failures are logged at debug)",
                path.display()
            );
            true
        }
    }
}

/// One resolution round's results: for each name (by index), its addresses or the error.
type Round = Vec<(usize, Result<Vec<SocketAddr>, Error>)>;

/// One job at a time on a thread of its own, whose result a later poll picks up: the loop
/// never waits on the outside world.
#[derive(Debug)]
struct Job<T> {
    pending: Option<Receiver<T>>,
}

impl<T: Send + 'static> Job<T> {
    fn new() -> Job<T> {
        Job { pending: None }
    }

    /// Whether a job is under way.
    fn running(&self) -> bool {
        self.pending.is_some()
    }

    /// The job's result, if it ended (a job whose thread ended without one is over too).
    fn take(&mut self) -> Option<T> {
        let result = match self.pending.as_ref()?.try_recv() {
            Ok(result) => Some(result),
            Err(TryRecvError::Empty) => return None,
            Err(TryRecvError::Disconnected) => None,
        };
        self.pending = None;
        result
    }

    /// Starts `work` on a thread named `name`; warns, naming `what`, if no thread can start.
    fn start(&mut self, name: &str, what: &str, work: impl FnOnce() -> T + Send + 'static) {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _ = tx.send(work());
            });
        match spawned {
            Ok(_) => self.pending = Some(rx),
            Err(e) => warn!("cannot start a thread to {what}: {e}"),
        }
    }
}

/// The node's own addresses, read again from the interfaces every [`RESOLVE_INTERVAL`] and
/// after a SIGHUP ([`Service::read_own_addrs_again`]) when they come from there (the listen
/// address is unspecified), on a thread of its own: the kernel's answer may wait on its
/// routing lock.
#[derive(Debug)]
struct OwnAddrs {
    listen: SocketAddr,
    next_at: Instant,
    job: Job<io::Result<Vec<SocketAddr>>>,
    /// The last reading failed (warned once until one works).
    failing: bool,
}

impl OwnAddrs {
    /// The job for a node listening on `listen`, if its addresses come from the interfaces
    /// (the listen address is unspecified); the first reading is due at `first`.
    fn new(listen: SocketAddr, first: Instant) -> Option<OwnAddrs> {
        listen.ip().is_unspecified().then(|| OwnAddrs {
            listen,
            next_at: first,
            job: Job::new(),
            failing: false,
        })
    }

    fn poll<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        match self.job.take() {
            Some(Ok(addrs)) => {
                self.failing = false;
                let count = addrs.len();
                if node.set_own_addrs(now, addrs) {
                    debug!("this node's addresses changed: {count} now");
                }
            }
            Some(Err(e)) if !std::mem::replace(&mut self.failing, true) => {
                warn!("cannot read this node's addresses again ({e}); keeping the last ones");
            }
            Some(Err(_)) | None => {}
        }
        if now < self.next_at || self.job.running() {
            return;
        }
        self.next_at = now + RESOLVE_INTERVAL;
        let listen = self.listen;
        self.job
            .start("own-addrs", "read this node's addresses", move || {
                crate::sys::ifaddrs::own_addrs(listen)
            });
    }
}

#[derive(Debug)]
struct Resolver {
    names: Vec<NamedPeer>,
    /// Literal `--connect` addresses: never removed from the node for a name's sake.
    literals: Vec<SocketAddr>,
    /// Names whose last resolution failed (warned once until it works again).
    failing: Vec<bool>,
    /// Names moved on to another of their addresses since they were last a peer (the first
    /// move is logged at info, the next ones at debug).
    moved: Vec<bool>,
    families: Families,
    listen: SocketAddr,
    next_at: Instant,
    job: Job<Round>,
    /// Whether the first poll has looked for names whose start-up address the node refused.
    started: bool,
}

impl Service {
    /// The jobs for a daemon with `header`; `stats` if a stats file is wanted; `names` the
    /// `--connect` names as resolved at start-up (an address of `None`: not resolved, tried
    /// again at the interval), `literals` the literal `--connect`
    /// addresses; `families` what the socket on `header.listen` reaches. The first stats file
    /// is written at the first poll, the first re-resolution is [`RESOLVE_INTERVAL`] after
    /// `now`.
    pub fn new(
        header: Header,
        stats: Option<StatsFileSpec>,
        names: Vec<NamedPeer>,
        literals: Vec<SocketAddr>,
        families: Families,
        now: Instant,
    ) -> Service {
        let listen = header.listen;
        Service {
            header,
            stats: stats.map(|spec| StatsFile {
                spec,
                next_at: Instant::ZERO,
                writing: Writing::NotStarted,
            }),
            resolver: Resolver {
                // (A name that did not resolve at start-up was warned about then.)
                failing: names.iter().map(|named| named.addr.is_none()).collect(),
                moved: vec![false; names.len()],
                names,
                literals,
                families,
                listen,
                next_at: now + RESOLVE_INTERVAL,
                job: Job::new(),
                started: false,
            },
            own: OwnAddrs::new(listen, now + RESOLVE_INTERVAL),
            control: None,
        }
    }

    /// The same jobs, also answering `ethcloud show` on `control`.
    pub fn with_control(mut self, control: Option<ControlServer>) -> Service {
        self.control = control;
        self
    }

    /// The control socket's fd, for the daemon's epoll set (its clients join the set under
    /// the same token, see [`Service::serve_control`]).
    pub fn control_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        self.control.as_ref().map(|c| c.as_fd())
    }

    /// The device and listen address the snapshots name.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Answers `ethcloud show` (`kernel` gives the kernel path's peer states, asked only when
    /// a client is ready): `wake` is `(poll, token, ready)`, `ready` when the control
    /// socket's token was (new clients are registered with `poll` under `token`); either way,
    /// clients silent past their deadline are dropped, and a listener paused after a failed
    /// `accept` is watched again when its pause is over. Never blocks; cheap without clients.
    pub fn serve_control<S: Socket, D: Device>(
        &mut self,
        now: Instant,
        wake: (&Poll, u64, bool),
        node: &Node<S, D>,
        extra: LoopCounters,
        kernel: impl FnOnce() -> show::KernelStates,
    ) {
        let Some(control) = &mut self.control else {
            return;
        };
        let (poll, token, ready) = wake;
        if !ready {
            control.resume(now, poll, token);
            control.expire(now);
            return;
        }
        let header = &self.header;
        let counters = control.stats();
        let kernel = kernel();
        control.on_ready(now, poll, token, |line| match Request::parse(line) {
            Ok(request) => show::answer(request, header, now, node, extra, counters, &kernel),
            Err(error) => error,
        });
    }

    /// Reads the node's own addresses again at the next poll (SIGHUP), where they come from
    /// the interfaces.
    pub fn read_own_addrs_again(&mut self, now: Instant) {
        if let Some(own) = &mut self.own {
            own.next_at = now;
        }
    }

    /// Runs the jobs that are due at `now`. Cheap when none is.
    pub fn poll<S: Socket, D: Device>(
        &mut self,
        now: Instant,
        node: &mut Node<S, D>,
        extra: LoopCounters,
    ) {
        self.resolver.poll(now, node);
        if let Some(own) = &mut self.own {
            own.poll(now, node);
        }
        if let Some(stats) = &mut self.stats {
            if now >= stats.next_at {
                stats.next_at = now + stats.spec.interval;
                let snapshot = status::snapshot(stats.spec.format, &self.header, now, node, extra);
                stats.write(snapshot);
            }
        }
    }

    /// Logs the peers and MAC addresses at info, one line each (at most [`LOGGED_MACS`] MAC
    /// lines); the daemon logs the counters itself.
    pub fn log_status<S: Socket, D: Device>(
        &self,
        now: Instant,
        node: &Node<S, D>,
        extra: LoopCounters,
    ) {
        let parts = TextParts {
            counters: false,
            max_macs: LOGGED_MACS,
        };
        let text = status::render_text(&self.header, now, node, extra, parts);
        for line in text.lines().skip(1) {
            info!(target: crate::logging::ON_REQUEST, "status: {line}");
        }
    }

    /// The `--connect` names and their current addresses.
    pub fn names(&self) -> &[NamedPeer] {
        &self.resolver.names
    }
}

impl StatsFile {
    /// Hands `snapshot` to the writer thread, started at the first snapshot (a thread that
    /// cannot be started is warned about, and the snapshot is finished and written here
    /// instead).
    fn write(&mut self, snapshot: Snapshot) {
        if let Writing::NotStarted = self.writing {
            self.writing = match StatsWriter::start(self.spec.path.clone(), write_atomically) {
                Ok(writer) => Writing::Thread(writer),
                Err(e) => {
                    warn!("cannot start a thread to write the stats file: {e}; writing it here");
                    remove_leftovers(&self.spec.path);
                    Writing::Here { failing: false }
                }
            };
        }
        match &mut self.writing {
            Writing::Thread(writer) => writer.send(snapshot),
            Writing::Here { failing } => {
                let text = snapshot.finish();
                let result = write_atomically(&self.spec.path, text.as_bytes());
                *failing = report_write(&self.spec.path, result, *failing);
            }
            Writing::NotStarted => {}
        }
    }
}

/// Writes `bytes` to a temporary file beside `path`, then renames it over `path`, so that a
/// reader sees the old content or the new, never half of it. The temporary file has a random
/// name and must not exist when it is created, so that nothing planted in a directory others
/// may write to (a symbolic link, a hard link, a FIFO, a file we may not remove) is written
/// through, waited on or in the way.
///
/// # Errors
///
/// The OS error of creating, writing or renaming; the temporary file is removed on failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temporary_beside(path)?;
    let result = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes))
        .and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A new name for a temporary file beside `path`: a dot, its name, 16 random hex digits.
///
/// # Errors
///
/// `InvalidInput` if `path` has no file name; the error of the random source.
fn temporary_beside(path: &Path) -> io::Result<std::path::PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut random = [0u8; 8];
    crate::sys::random::fill(&mut random)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{:016x}.tmp", u64::from_le_bytes(random)));
    Ok(path.with_file_name(tmp_name))
}

/// Whether user `uid` can write `path` the way [`write_atomically`] does: creates a
/// temporary file beside it with a random name and removes it; and if `path` exists in a
/// sticky directory (such as /tmp), checks that `uid` owns it or the directory, since
/// otherwise the rename over it is refused.
///
/// # Errors
///
/// The OS error of creating the file (or of removing it, or of reading the metadata), or
/// `PermissionDenied` for another user's file in a sticky directory.
pub fn check_writable_beside(path: &Path, uid: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let probe = temporary_beside(path)?;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    fs::remove_file(&probe)?;
    let dir = match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => dir,
        None => Path::new("."),
    };
    let dir_meta = fs::metadata(dir)?;
    match fs::symlink_metadata(path) {
        Ok(file) if dir_meta.mode() & 0o1000 != 0 && file.uid() != uid && dir_meta.uid() != uid => {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "the file there is another user's, in a sticky directory: it cannot be replaced",
            ))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

impl Resolver {
    fn poll<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>) {
        if let Some(round) = self.job.take() {
            self.apply(now, node, round);
        }
        // A name's first address refused at start-up (the node's own, as on one of several
        // gateways behind one name): that name (only) is resolved again now, not in 30 s.
        let early = !std::mem::replace(&mut self.started, true)
            && self.names.iter().any(|named| {
                named
                    .addr
                    .is_some_and(|at| node.connect_refusal(at).is_some())
            });
        if early {
            self.next_at = now;
        }
        if now < self.next_at || self.job.running() {
            return;
        }
        self.next_at = now + RESOLVE_INTERVAL;
        let mut due: Vec<(usize, PeerAddr)> = Vec::new();
        for (i, (named, moved)) in self.names.iter().zip(&mut self.moved).enumerate() {
            let refused = named
                .addr
                .is_some_and(|at| node.connect_refusal(at).is_some());
            if named.addr.is_some_and(|at| node.is_peer(at)) {
                *moved = false;
            } else if !early || refused {
                due.push((i, named.peer.clone()));
            }
        }
        if due.is_empty() {
            return;
        }
        debug!("resolving {} --connect names again", due.len());
        let (families, listen) = (self.families, self.listen);
        self.job
            .start("resolve", "resolve --connect names", move || {
                due.into_iter()
                    .map(|(i, peer)| (i, peer.resolve_all(families, listen)))
                    .collect()
            });
    }

    /// Takes in one round of results. A name is resolved again only while its address does
    /// not answer, so the address after it among the name's usable ones is connected instead
    /// (the first one, if the name no longer has it): a name with several addresses is tried
    /// at each in turn, and one that moved is followed.
    fn apply<S: Socket, D: Device>(&mut self, now: Instant, node: &mut Node<S, D>, round: Round) {
        for (i, result) in round {
            let (Some(named), Some(failing), Some(moved)) = (
                self.names.get(i),
                self.failing.get_mut(i),
                self.moved.get_mut(i),
            ) else {
                continue;
            };
            let old = named.addr;
            if old.is_some_and(|at| node.is_peer(at)) {
                // It answered while the name was being resolved: it stays.
                *failing = false;
                continue;
            }
            match result {
                Ok(all) => {
                    // A refused address (a filtering resolver's 0.0.0.0, our own address) is
                    // never taken; with nothing else, that counts as a failure, and the old
                    // address, which may still work, is kept.
                    let usable: Vec<SocketAddr> = all
                        .iter()
                        .copied()
                        .filter(|addr| node.connect_refusal(*addr).is_none())
                        .collect();
                    let next = usable
                        .iter()
                        .position(|addr| Some(*addr) == old)
                        .and_then(|at| usable.get((at + 1) % usable.len()))
                        .or(usable.first())
                        .copied();
                    let Some(new) = next else {
                        let text = &named.peer.text;
                        let refused = all.first().copied().or(old);
                        let why = refused
                            .and_then(|at| node.connect_refusal(at))
                            .unwrap_or("refused");
                        let refused = refused.map_or_else(String::new, |at| at.to_string());
                        let still = still_trying(old);
                        if std::mem::replace(failing, true) {
                            debug!("{text} resolves to {refused}, refused ({why}); {still}");
                        } else {
                            warn!(
                                "{text} now resolves to {refused}, which is refused ({why}); \
                                 {still} (further failures are logged at debug)"
                            );
                        }
                        continue;
                    };
                    let text = &named.peer.text;
                    match old {
                        // Its first address since start-up.
                        None => info!("{text} resolves now, to {new}"),
                        Some(old) if new == old => {
                            if std::mem::take(failing) {
                                info!("{text} resolves again, still to {old}");
                            }
                            continue;
                        }
                        Some(old) => {
                            if usable.contains(&old) {
                                if std::mem::replace(moved, true) {
                                    debug!("{text}: {old} does not answer; trying {new}");
                                } else {
                                    info!(
                                        "{text}: {old} does not answer; trying {new}, another \
                                         of its addresses (further moves are logged at debug)"
                                    );
                                }
                            } else {
                                info!("{text} now resolves to {new} (was {old})");
                            }
                            let still_used = self.literals.contains(&old)
                                || self
                                    .names
                                    .iter()
                                    .enumerate()
                                    .any(|(j, other)| j != i && other.addr == Some(old));
                            if !still_used {
                                node.remove_connect(old);
                            }
                        }
                    }
                    *failing = false;
                    node.add_connect(now, new);
                    if let Some(named) = self.names.get_mut(i) {
                        named.addr = Some(new);
                    }
                }
                Err(e) if *failing => debug!("{e}; {}", still_trying(old)),
                Err(e) => {
                    *failing = true;
                    warn!(
                        "{e}; {} (further failures are logged at debug)",
                        still_trying(old)
                    );
                }
            }
        }
    }
}

/// What a name that did not resolve leaves in use: the address it had, if any.
fn still_trying(old: Option<SocketAddr>) -> String {
    match old {
        Some(old) => format!("still trying {old}"),
        None => "nothing to try yet".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::Config;
    use crate::os::resolve::Host;
    use crate::status::test_io::{NullDevice, NullSocket};
    use crate::wire::Token;

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn node(connect: &[SocketAddr]) -> Node<NullSocket, NullDevice> {
        let mut config = Config::new(Token::new(7).unwrap());
        config.connect = connect.to_vec();
        Node::new(config, NullSocket, NullDevice, Instant::ZERO)
    }

    fn service(names: Vec<NamedPeer>, literals: Vec<SocketAddr>) -> Service {
        let header = Header {
            device: "ethcloud0".to_owned(),
            listen: addr("0.0.0.0:3210"),
        };
        let families = Families::of(&header.listen);
        Service::new(header, None, names, literals, families, Instant::ZERO)
    }

    fn named(text: &str, at: &str) -> NamedPeer {
        NamedPeer {
            peer: {
                let (host, port) = text.rsplit_once(':').unwrap();
                PeerAddr {
                    text: text.to_owned(),
                    host: Host::Name(host.to_owned()),
                    port: port.parse().unwrap(),
                }
            },
            addr: Some(addr(at)),
        }
    }

    #[test]
    fn name_at_a_new_address_is_connected_there_instead() {
        let old = addr("198.18.0.2:3210");
        let new = addr("198.18.0.3:3210");
        let mut node = node(&[old]);
        let mut svc = service(vec![named("peer.example:3210", "198.18.0.2:3210")], vec![]);
        svc.resolver
            .apply(Instant::from_secs(30), &mut node, vec![(0, Ok(vec![new]))]);
        assert_eq!(node.config().connect, [new]);
        assert_eq!(svc.names()[0].addr, Some(new));
    }

    /// A name with several addresses (three gateways behind one name): while the one in use
    /// does not answer, each round moves on to the next usable one, round and round, so a
    /// name whose first address is down still reaches the others.
    #[test]
    fn a_name_with_several_addresses_is_tried_at_each_in_turn() {
        let (first, second, third) = (
            addr("198.18.0.2:3210"),
            addr("198.18.0.3:3210"),
            addr("198.18.0.4:3210"),
        );
        let mut node = node(&[first]);
        let mut svc = service(vec![named("gw.example:3210", "198.18.0.2:3210")], vec![]);
        // (A filtering resolver's 0.0.0.0 among them is skipped.)
        let all = vec![first, addr("0.0.0.0:3210"), second, third];
        for want in [second, third, first, second] {
            svc.resolver.apply(
                Instant::from_secs(30),
                &mut node,
                vec![(0, Ok(all.clone()))],
            );
            assert_eq!(node.config().connect, [want]);
            assert_eq!(svc.names()[0].addr, Some(want));
            assert!(!svc.resolver.failing[0]);
        }
        // A name that has only the address in use keeps it.
        svc.resolver.apply(
            Instant::from_secs(60),
            &mut node,
            vec![(0, Ok(vec![second]))],
        );
        assert_eq!(node.config().connect, [second]);
    }

    /// A name whose address answered while the round was out stays at that address.
    #[test]
    fn a_name_whose_address_answered_meanwhile_is_not_moved() {
        let (first, second) = (addr("198.18.0.2:3210"), addr("198.18.0.3:3210"));
        let mut node = node(&[first]);
        let mut svc = service(vec![named("gw.example:3210", "198.18.0.2:3210")], vec![]);
        // Asked (it is a --connect address), it answers with its list.
        node.housekeep(Instant::from_secs(1));
        let mut list = [0u8; 10];
        let (len, _) =
            crate::wire::emit_peers(node.config().token, std::iter::empty(), &mut list).unwrap();
        node.on_datagram(Instant::from_secs(1), first, &mut list[..len])
            .unwrap();
        assert!(node.is_peer(first));
        svc.resolver.apply(
            Instant::from_secs(30),
            &mut node,
            vec![(0, Ok(vec![first, second]))],
        );
        assert_eq!(node.config().connect, [first]);
        assert_eq!(svc.names()[0].addr, Some(first));
    }

    /// A name whose start-up address the node refused (one of its own, as on one of several
    /// gateways behind one name) is resolved again at the first poll, not 30 s later; the
    /// other names are not (a name with several addresses would be moved off a first one
    /// that simply has not answered yet).
    #[test]
    fn a_name_whose_first_address_was_refused_is_resolved_again_at_once() {
        let other = addr("198.18.0.2:3210");
        let mut node = node(&[other]);
        let mut svc = service(
            vec![
                named("localhost:3210", "0.0.0.0:3210"),
                // (Also a name the hosts file answers, so that a round that took it in by
                // mistake sends no query to the machine's resolver: it would show as
                // 127.0.0.1:3211 below.)
                named("localhost:3211", "198.18.0.2:3210"),
            ],
            vec![],
        );
        svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        assert!(svc.resolver.job.running(), "not resolved again at once");
        let start = std::time::Instant::now();
        while svc.resolver.job.running() {
            assert!(start.elapsed() < Duration::from_secs(10), "no result");
            std::thread::sleep(Duration::from_millis(10));
            svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        }
        assert_eq!(svc.names()[0].addr, Some(addr("127.0.0.1:3210")));
        assert_eq!(node.config().connect, [other, addr("127.0.0.1:3210")]);
        assert_eq!(
            svc.names()[1].addr,
            Some(other),
            "a name not refused was resolved too"
        );
        // Once only: the next round is the interval's.
        svc.poll(Instant::from_secs(2), &mut node, LoopCounters::default());
        assert!(!svc.resolver.job.running());
    }

    #[test]
    fn a_name_that_now_resolves_to_a_refused_address_keeps_the_old_one() {
        let old = addr("198.18.0.2:3210");
        let mut node = node(&[old]);
        let mut svc = service(vec![named("peer.example:3210", "198.18.0.2:3210")], vec![]);
        // A filtering resolver's answer, then a multicast group.
        for refused in [addr("0.0.0.0:3210"), addr("224.0.0.1:3210")] {
            svc.resolver
                .apply(Instant::ZERO, &mut node, vec![(0, Ok(vec![refused]))]);
            assert_eq!(node.config().connect, [old]);
            assert_eq!(svc.names()[0].addr, Some(old));
            assert!(svc.resolver.failing[0]);
        }
        // Once it resolves to a usable address again, that one is taken.
        let new = addr("198.18.0.3:3210");
        svc.resolver
            .apply(Instant::ZERO, &mut node, vec![(0, Ok(vec![new]))]);
        assert_eq!(node.config().connect, [new]);
        assert!(!svc.resolver.failing[0]);
    }

    #[test]
    fn old_address_that_is_also_a_literal_stays() {
        let old = addr("198.18.0.2:3210");
        let new = addr("198.18.0.3:3210");
        let mut node = node(&[old]);
        let mut svc = service(
            vec![named("peer.example:3210", "198.18.0.2:3210")],
            vec![old],
        );
        svc.resolver
            .apply(Instant::ZERO, &mut node, vec![(0, Ok(vec![new]))]);
        assert_eq!(node.config().connect, [old, new]);
    }

    #[test]
    fn failed_resolution_keeps_the_old_address() {
        let old = addr("198.18.0.2:3210");
        let mut node = node(&[old]);
        let mut svc = service(vec![named("peer.example:3210", "198.18.0.2:3210")], vec![]);
        let err = Error::Resolve {
            peer: "peer.example:3210".to_owned(),
            source: io::Error::other("temporary failure"),
        };
        svc.resolver
            .apply(Instant::ZERO, &mut node, vec![(0, Err(err))]);
        assert_eq!(node.config().connect, [old]);
        assert!(svc.resolver.failing[0]);
        svc.resolver
            .apply(Instant::ZERO, &mut node, vec![(0, Ok(vec![old]))]);
        assert!(!svc.resolver.failing[0]);
    }

    /// A name that did not resolve at start-up (the daemon started without it) is resolved
    /// again each interval, and connected once it resolves.
    #[test]
    fn a_name_that_did_not_resolve_at_start_up_is_connected_once_it_resolves() {
        let literal = addr("198.18.0.9:3210");
        let mut node = node(&[literal]);
        let mut unresolved = named("localhost:3210", "0.0.0.0:1");
        unresolved.addr = None;
        let mut svc = service(vec![unresolved], vec![literal]);
        assert!(svc.resolver.failing[0], "warned at start-up: not again");
        // Not at once: at the interval.
        svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        assert!(!svc.resolver.job.running());
        // Still failing: nothing changes.
        let err = Error::Resolve {
            peer: "localhost:3210".to_owned(),
            source: io::Error::other("temporary failure"),
        };
        svc.resolver
            .apply(Instant::from_secs(30), &mut node, vec![(0, Err(err))]);
        assert_eq!(node.config().connect, [literal]);
        assert_eq!(svc.names()[0].addr, None);
        // A refused answer is no address either.
        svc.resolver.apply(
            Instant::from_secs(60),
            &mut node,
            vec![(0, Ok(vec![addr("0.0.0.0:3210")]))],
        );
        assert_eq!(node.config().connect, [literal]);
        assert_eq!(svc.names()[0].addr, None);
        // The round of the interval, on the thread, resolves it (from the hosts file).
        svc.poll(Instant::from_secs(90), &mut node, LoopCounters::default());
        assert!(svc.resolver.job.running(), "not resolved again");
        let start = std::time::Instant::now();
        while svc.resolver.job.running() {
            assert!(start.elapsed() < Duration::from_secs(10), "no result");
            std::thread::sleep(Duration::from_millis(10));
            svc.poll(Instant::from_secs(91), &mut node, LoopCounters::default());
        }
        let at = addr("127.0.0.1:3210");
        assert_eq!(svc.names()[0].addr, Some(at));
        assert_eq!(node.config().connect, [literal, at]);
        assert!(!svc.resolver.failing[0]);
    }

    #[test]
    fn names_are_resolved_again_only_after_the_interval_and_on_a_thread() {
        let mut node = node(&[addr("127.0.0.1:3210")]);
        let mut svc = service(vec![named("localhost:3210", "127.0.0.1:3210")], vec![]);
        svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        assert!(!svc.resolver.job.running());
        svc.poll(Instant::from_secs(30), &mut node, LoopCounters::default());
        assert!(svc.resolver.job.running());
        // The round comes back within a few seconds; poll for it with a deadline.
        let start = std::time::Instant::now();
        while svc.resolver.job.running() {
            assert!(start.elapsed() < Duration::from_secs(10), "no result");
            std::thread::sleep(Duration::from_millis(10));
            svc.poll(Instant::from_secs(31), &mut node, LoopCounters::default());
        }
        assert_eq!(svc.names()[0].addr, Some(addr("127.0.0.1:3210")));
        assert!(!svc.resolver.failing[0]);
    }

    /// The node's own addresses are read again every interval (and at once after a SIGHUP),
    /// on a thread: here the host's loopback address, which the node did not know it had at
    /// start, becomes its own (a peer there is removed, a list naming it is ignored).
    #[test]
    fn own_addresses_are_read_again_every_interval_and_after_a_sighup() {
        let mut node = node(&[]);
        let mut svc = service(vec![], vec![]);
        let loopback = addr("127.0.0.1:3210");
        assert_eq!(node.connect_refusal(loopback), None);
        let wait = |svc: &mut Service, node: &mut Node<NullSocket, NullDevice>, at: u64| {
            let start = std::time::Instant::now();
            while svc.own.as_ref().unwrap().job.running() {
                assert!(start.elapsed() < Duration::from_secs(10), "no result");
                std::thread::sleep(Duration::from_millis(10));
                svc.poll(Instant::from_secs(at), node, LoopCounters::default());
            }
        };
        svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        assert!(
            !svc.own.as_ref().unwrap().job.running(),
            "not before the interval"
        );
        svc.poll(Instant::from_secs(30), &mut node, LoopCounters::default());
        assert!(svc.own.as_ref().unwrap().job.running());
        wait(&mut svc, &mut node, 30);
        assert!(
            node.connect_refusal(loopback).is_some(),
            "{:?}",
            node.config().own_addrs
        );
        // Forgotten again (as if it had been removed): a SIGHUP reads them at the next poll.
        node.set_own_addrs(Instant::from_secs(31), vec![]);
        svc.poll(Instant::from_secs(32), &mut node, LoopCounters::default());
        assert!(!svc.own.as_ref().unwrap().job.running());
        svc.read_own_addrs_again(Instant::from_secs(33));
        svc.poll(Instant::from_secs(33), &mut node, LoopCounters::default());
        wait(&mut svc, &mut node, 33);
        assert!(node.connect_refusal(loopback).is_some());
        assert!(!svc.own.as_ref().unwrap().failing);
    }

    /// An empty directory of this test run's own.
    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("ethcloud-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn stats_file_is_replaced_whole() {
        let dir = fresh_dir("stats");
        let path = dir.join("stats");
        write_atomically(&path, b"first\n").unwrap();
        write_atomically(&path, b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        let left: Vec<_> = fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "the temporary file is gone");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_link_planted_as_the_temporary_file_is_not_written_through() {
        let dir = fresh_dir("stats3");
        let victim = dir.join("victim");
        fs::write(&victim, b"precious\n").unwrap();
        let path = dir.join("stats");
        // Planted where a predictable temporary name would be.
        std::os::unix::fs::symlink(&victim, dir.join(".stats.tmp")).unwrap();
        fs::hard_link(&victim, dir.join(".stats.0000000000000000.tmp")).unwrap();
        write_atomically(&path, b"first\n").unwrap();
        write_atomically(&path, b"second\n").unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "second\n");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            4,
            "no temporary file left"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stats_file_is_written_at_the_first_poll_and_then_every_interval() {
        let dir = fresh_dir("stats2");
        let path = dir.join("stats");
        let mut svc = service(vec![], vec![]);
        svc.stats = Some(StatsFile {
            spec: StatsFileSpec {
                path: path.clone(),
                interval: Duration::from_secs(10),
                format: StatsFormat::Text,
            },
            next_at: Instant::ZERO,
            writing: Writing::NotStarted,
        });
        // A temporary file an earlier daemon left (stopped during a slow write) goes; a file
        // of another name stays.
        let leftover = dir.join(".stats.0123456789abcdef.tmp");
        let other = dir.join(".stats.notours.tmp");
        fs::write(&leftover, "old").unwrap();
        fs::write(&other, "keep").unwrap();
        let mut node = node(&[]);
        svc.poll(Instant::from_secs(1), &mut node, LoopCounters::default());
        let first = wait_for(&path, "uptime 1.0s");
        assert!(!leftover.exists() && other.exists());
        fs::remove_file(&other).unwrap();
        svc.poll(Instant::from_secs(5), &mut node, LoopCounters::default());
        svc.poll(Instant::from_secs(11), &mut node, LoopCounters::default());
        let second = wait_for(&path, "uptime 11.0s");
        assert!(!second.contains("uptime 5.0s") && first != second);
        // Stopping lets the thread finish: nothing is left beside the file.
        drop(svc);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The file at `path` once it holds `text` (waited for, at most 10 s).
    fn wait_for(path: &Path, text: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let now = fs::read_to_string(path).unwrap_or_default();
            if now.contains(text) {
                return now;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {text:?} in {now}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Held while [`held_write`] may not go on.
    static HOLD: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static WRITES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A write that waits for [`HOLD`] (a file system that hangs), then counts itself.
    fn held_write(_: &Path, _: &[u8]) -> io::Result<()> {
        drop(
            HOLD.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        WRITES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// A stats file write that hangs holds up neither the loop nor memory: the loop hands
    /// snapshots over without waiting, one waits while one is written, the rest are skipped
    /// and counted; once the file system answers again, the waiting one is written.
    #[test]
    fn a_hung_stats_file_write_holds_up_nothing_and_keeps_at_most_one_snapshot() {
        let hold = HOLD.lock().unwrap();
        let mut writer = StatsWriter::start(PathBuf::from("/nowhere"), held_write).unwrap();
        let start = std::time::Instant::now();
        for i in 0..100 {
            writer.send(format!("snapshot {i}").into());
        }
        assert!(start.elapsed() < Duration::from_secs(1), "the sends waited");
        // One being written (or about to be), one waiting: 98 or 99 skipped.
        assert!((98..=99).contains(&writer.skipped), "{}", writer.skipped);
        drop(hold);
        drop(writer);
        let written = WRITES.load(std::sync::atomic::Ordering::SeqCst);
        assert!((1..=2).contains(&written), "{written}");
    }
}
