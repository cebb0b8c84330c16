//! Opening the files an operator names (key files, trust files, the configuration file)
//! without waiting on them, the one owner rule they share, and making a FIFO (for the tests
//! of that).
//!
//! Owns those calls; what is read and how else it is checked is `keyfiles`' and `config`'s.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` for reading without waiting for a writer: a FIFO that nobody has open for
/// writing would block a plain open for good (at start-up, or on SIGHUP in the forwarding loop
/// itself), and with SIGTERM blocked. Opened non-blocking and then switched back to blocking
/// reads, such a FIFO reads as empty (the callers make that an error), and one with a writer
/// (a shell's process substitution) is read as usual. (A writer that has it open and never
/// writes still holds up the read: that needs a process of the operator's own.)
///
/// # Errors
///
/// What `open(2)` or `fcntl(2)` returned; `IsADirectory` for a directory (every caller reads
/// a file, and a directory's mode is no advice for one).
pub fn open_for_reading(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::ErrorKind::IsADirectory.into());
    }
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL on a descriptor `file` owns and keeps open across the call.
    let flags = unsafe { syscall!(fcntl(fd, libc::F_GETFL)) }?;
    // SAFETY: F_SETFL with an integer flag word on the same descriptor.
    unsafe { syscall!(fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK)) }?;
    Ok(file)
}

/// The effective uid ethcloud started as, before any switch to **user**.
static STARTED_AS: std::sync::OnceLock<libc::uid_t> = std::sync::OnceLock::new();

/// Notes the effective uid ethcloud starts as, before any switch to **user**: the one owner
/// besides root that [`foreign_owner`] accepts, at the start and at every SIGHUP alike (so
/// that a file the **user** made is not taken at a SIGHUP and refused at the next start).
/// `main` calls it first; without that call, the first [`started_as`] notes it.
pub fn note_starting_user() {
    let _ = STARTED_AS.set(crate::sys::privdrop::current_ids().1);
}

/// The effective uid ethcloud started as (see [`note_starting_user`]).
pub fn started_as() -> libc::uid_t {
    *STARTED_AS.get_or_init(|| crate::sys::privdrop::current_ids().1)
}

/// Whether `uid` is neither root nor the user ethcloud started as: the owner rule of the
/// files it acts on ([`foreign_owner`], and `keyfiles`' entries in sticky directories).
pub fn is_foreign(uid: libc::uid_t) -> bool {
    uid != 0 && uid != started_as()
}

/// Why the file or directory that `meta` describes is refused for its owner, if it is: an
/// owner other than root and the user ethcloud started as may rewrite it (or `chmod` it and
/// then rewrite it) whatever its mode says, which lets them do what `could` says.
pub fn foreign_owner(meta: &std::fs::Metadata, could: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let owner = meta.uid();
    is_foreign(owner).then(|| {
        format!("owned by uid {owner}, who could {could}: make root its owner (chown root)")
    })
}

/// Makes a FIFO at `path` with mode `mode` (less the umask).
///
/// # Errors
///
/// What `mkfifo(3)` returned; `InvalidInput` for a path with a NUL byte.
pub fn make_fifo(path: &Path, mode: u32) -> io::Result<()> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c_path` is a NUL-terminated string that lives across the call.
    unsafe { syscall!(mkfifo(c_path.as_ptr(), mode as libc::mode_t)) }?;
    Ok(())
}
