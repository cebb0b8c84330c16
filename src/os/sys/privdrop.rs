//! Dropping root: `--user` / `--group` looked up with `getpwnam_r` / `getgrnam_r`, then
//! `setgroups`, `setgid`, `setuid`, in that order, and a check that the switch really happened
//! and cannot be undone.
//!
//! Owns the user and group lookups and the switch. It does not decide *when*: `main` calls
//! [`drop_to`] once the tap device and the socket are open (their fds keep working as any
//! user), before the daemon starts any thread. After the switch the process has no
//! capabilities, so it can forward frames but no longer reconfigure interfaces: leaving root
//! takes them away, and they are cleared explicitly as well, for a daemon started as another
//! user with capabilities of its own (`CAP_SETUID`, ambient ones), which keeps them across
//! `setuid`.

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::io;
use std::mem::MaybeUninit;

use crate::error::Error;

/// A larger buffer than this for one user or group entry is refused (runaway NSS module).
const MAX_ENTRY_BUF: usize = 1 << 20;
/// The first buffer size tried for one entry.
const FIRST_ENTRY_BUF: usize = 1024;

/// The user and group to switch to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user id.
    pub uid: libc::uid_t,
    /// The group id; also the only supplementary group.
    pub gid: libc::gid_t,
    /// The user as given (name or number), for messages.
    pub user: String,
    /// The group as given, or the user's primary group, for messages.
    pub group: String,
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "user {} (uid {}), group {} (gid {})",
            self.user, self.uid, self.group, self.gid
        )
    }
}

impl Identity {
    /// Looks up `user` (a name, or a uid) and `group` (likewise; default: the user's primary
    /// group, also for a uid that has an entry, or the same number as the uid for a uid that
    /// has none).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUser`] / [`Error::UnknownGroup`] for a name that is neither in the
    /// databases nor a number; [`Error::UserLookup`] if a database cannot be read.
    pub fn resolve(user: &str, group: Option<&str>) -> Result<Identity, Error> {
        // No user or group can have a NUL in its name (nor could the C lookups take one).
        if user.contains('\0') {
            return Err(Error::UnknownUser {
                name: user.to_owned(),
            });
        }
        if let Some(name) = group.filter(|g| g.contains('\0')) {
            return Err(Error::UnknownGroup {
                name: name.to_owned(),
            });
        }
        let lookup_error = |name: &str| {
            let name = name.to_owned();
            move |source| Error::UserLookup { name, source }
        };
        let (uid, primary_gid, primary_name) =
            match lookup_user(user).map_err(lookup_error(user))? {
                Some(entry) => entry,
                None => match user.parse::<libc::uid_t>() {
                    Ok(uid) => user_by_uid(uid).map_err(lookup_error(user))?.unwrap_or((
                        uid,
                        uid,
                        user.to_owned(),
                    )),
                    Err(_) => {
                        return Err(Error::UnknownUser {
                            name: user.to_owned(),
                        })
                    }
                },
            };
        let (gid, group) = match group {
            None => (primary_gid, group_name(primary_gid).unwrap_or(primary_name)),
            Some(name) => match lookup_group(name).map_err(lookup_error(name))? {
                Some(gid) => (gid, name.to_owned()),
                None => match name.parse::<libc::gid_t>() {
                    Ok(gid) => (gid, name.to_owned()),
                    Err(_) => {
                        return Err(Error::UnknownGroup {
                            name: name.to_owned(),
                        })
                    }
                },
            },
        };
        // Whatever the source (a number, or a user database that serves one): (uid_t)-1 and
        // (gid_t)-1, which setuid and setgid refuse, are no such user or group, refused
        // before --ifup rather than by the switch after it.
        if uid == libc::uid_t::MAX {
            return Err(Error::UnknownUser {
                name: user.to_owned(),
            });
        }
        if gid == libc::gid_t::MAX {
            return Err(Error::UnknownGroup { name: group });
        }
        Ok(Identity {
            uid,
            gid,
            user: user.to_owned(),
            group,
        })
    }
}

/// The uid and primary gid of user `name`, `None` if there is no such user.
///
/// # Errors
///
/// The OS error of `getpwnam_r` (other than "not found"), `InvalidInput` for a name with NUL.
pub fn lookup_user(name: &str) -> io::Result<Option<(libc::uid_t, libc::gid_t, String)>> {
    let name_c = c_name(name)?;
    nss_entry(
        // SAFETY: `name_c` is NUL-terminated; the other arguments come from `nss_entry`,
        // which documents them.
        |entry, buf, len, result| unsafe {
            libc::getpwnam_r(name_c.as_ptr(), entry, buf, len, result)
        },
        |entry: &libc::passwd| (entry.pw_uid, entry.pw_gid, name.to_owned()),
    )
}

/// The uid, primary gid and name of the user with `uid`, `None` if it has no entry.
///
/// # Errors
///
/// The OS error of `getpwuid_r` (other than "not found").
fn user_by_uid(uid: libc::uid_t) -> io::Result<Option<(libc::uid_t, libc::gid_t, String)>> {
    nss_entry(
        // SAFETY: the arguments come from `nss_entry`, which documents them.
        |entry, buf, len, result| unsafe { libc::getpwuid_r(uid, entry, buf, len, result) },
        |entry: &libc::passwd| {
            // SAFETY: `pw_name` of a filled-in entry points to a NUL-terminated string inside
            // the buffer, alive while `nss_entry` calls this.
            let name = unsafe { CStr::from_ptr(entry.pw_name) };
            (
                entry.pw_uid,
                entry.pw_gid,
                name.to_string_lossy().into_owned(),
            )
        },
    )
}

/// The gid of group `name`, `None` if there is no such group.
///
/// # Errors
///
/// The OS error of `getgrnam_r` (other than "not found"), `InvalidInput` for a name with NUL.
pub fn lookup_group(name: &str) -> io::Result<Option<libc::gid_t>> {
    let name_c = c_name(name)?;
    nss_entry(
        // SAFETY: as in `lookup_user`.
        |entry, buf, len, result| unsafe {
            libc::getgrnam_r(name_c.as_ptr(), entry, buf, len, result)
        },
        |entry: &libc::group| entry.gr_gid,
    )
}

/// The name of group `gid`, if it has one.
fn group_name(gid: libc::gid_t) -> Option<String> {
    nss_entry(
        // SAFETY: the arguments come from `nss_entry`, which documents them.
        |entry, buf, len, result| unsafe { libc::getgrgid_r(gid, entry, buf, len, result) },
        |entry: &libc::group| {
            // SAFETY: `gr_name` of a filled-in entry points to a NUL-terminated string inside
            // the buffer, alive while `nss_entry` calls this.
            let name = unsafe { CStr::from_ptr(entry.gr_name) };
            name.to_string_lossy().into_owned()
        },
    )
    .ok()
    .flatten()
}

/// One entry of a `get*_r` function of the user and group databases, whose strings live in a
/// buffer of the caller's: `call(entry, buf, buf_len, result)` is made with a valid place to
/// write the entry, a writable buffer of `buf_len` bytes and a valid place for the result
/// pointer; on `ERANGE` the buffer doubles (up to [`MAX_ENTRY_BUF`]) and the call is made
/// again. `read` gets the filled-in entry while the buffer is alive.
///
/// # Errors
///
/// The error code `call` returned, other than those that mean "no such entry" (`Ok(None)`).
fn nss_entry<E, T>(
    call: impl Fn(*mut E, *mut c_char, usize, *mut *mut E) -> libc::c_int,
    read: impl FnOnce(&E) -> T,
) -> io::Result<Option<T>> {
    let mut buf = vec![0 as c_char; FIRST_ENTRY_BUF];
    loop {
        let mut entry = MaybeUninit::<E>::uninit();
        let mut result: *mut E = std::ptr::null_mut();
        match call(entry.as_mut_ptr(), buf.as_mut_ptr(), buf.len(), &mut result) {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: the call returned 0 with a non-null result, so `entry` was filled in.
                let entry = unsafe { entry.assume_init_ref() };
                return Ok(Some(read(entry)));
            }
            libc::ERANGE if buf.len() < MAX_ENTRY_BUF => buf.resize(buf.len() * 2, 0),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the name"))
}

/// How many threads other than the caller the process has (`/proc/self/task`), if it can be
/// read. The switch of user needs one thread: glibc's `setuid` and `setgid` reach every
/// thread, but the calls that clear capabilities (`capset`, `PR_CAP_AMBIENT_CLEAR_ALL`) and
/// the final check act on the caller's alone, so another thread of a start with capabilities
/// (not as root) would keep `CAP_NET_ADMIN` for the whole run: [`drop_to`] refuses then, and
/// the start stops. `None` where `/proc` cannot be read: the switch goes ahead unchecked.
pub fn other_threads() -> Option<usize> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    Some(tasks.filter(Result::is_ok).count().saturating_sub(1))
}

/// Switches the whole process to `to`: supplementary groups to just `to.gid`, then the group,
/// then the user (real, effective and saved ids), and checks the result. Call it while the
/// process has one thread.
///
/// # Errors
///
/// [`Error::DropPrivileges`] if a call fails (typically `EPERM`: not root), if the ids read
/// back differ, or if root could be regained afterwards; and before any of it, if other
/// threads run (see [`other_threads`]).
pub fn drop_to(to: &Identity) -> Result<(), Error> {
    let fail = |source| Error::DropPrivileges {
        to: to.to_string(),
        source,
    };
    // A thread just joined may still be listed for a moment (the join returns before the
    // kernel has reaped it): asked again for up to 100 ms before refusing.
    let mut others = other_threads();
    for _ in 0..100 {
        if others.is_none_or(|n| n == 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
        others = other_threads();
    }
    if let Some(n) = others.filter(|n| *n > 0) {
        return Err(fail(io::Error::other(format!(
            "{n} other threads run, which would keep their capabilities"
        ))));
    }
    let groups = [to.gid];
    // SAFETY: `groups` holds exactly the one gid whose count is passed.
    unsafe { syscall!(setgroups(1, groups.as_ptr())) }.map_err(fail)?;
    // SAFETY: setgid() takes no pointers.
    unsafe { syscall!(setgid(to.gid)) }.map_err(fail)?;
    // SAFETY: setuid() takes no pointers.
    unsafe { syscall!(setuid(to.uid)) }.map_err(fail)?;
    if to.uid != 0 {
        clear_capabilities().map_err(fail)?;
    }

    let (uid, euid, gid, egid) = current_ids();
    if (uid, euid, gid, egid) != (to.uid, to.uid, to.gid, to.gid) {
        return Err(fail(io::Error::other(format!(
            "ids are uid {uid} euid {euid} gid {gid} egid {egid} after the switch"
        ))));
    }
    if to.uid != 0 {
        // SAFETY: setuid() takes no pointers. It must fail: root is gone for good.
        if unsafe { syscall!(setuid(0)) }.is_ok() {
            return Err(fail(io::Error::other("setuid(0) still succeeds")));
        }
        match has_capabilities() {
            Ok(false) => {}
            Ok(true) => {
                return Err(fail(io::Error::other(
                    "capabilities remain after the switch",
                )))
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Ok(())
}

/// Runs `f` with `to`'s filesystem ids (`setfsuid`, `setfsgid`, and `to.gid` as the only
/// supplementary group) and without the capabilities that bypass file permissions in the
/// effective set, so that what `f` opens is checked as it will be once the process is `to`;
/// then puts back the groups, the filesystem ids and the effective set it had. Call it while
/// the process has one thread, right before [`drop_to`].
///
/// Returns `None` without running `f` if that state cannot be taken (not root, no
/// `CAP_SETUID`/`CAP_SETGID`): the caller checks after the switch instead.
pub fn as_filesystem_user<T>(to: &Identity, f: impl FnOnce() -> T) -> Option<T> {
    // SAFETY: geteuid() and getegid() take no arguments and cannot fail. (The filesystem ids
    // follow the effective ones until set apart, which nothing here did before.)
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let groups = supplementary_groups().ok()?;
    let caps = capabilities().ok()?;
    let restore = |caps: &[CapData; 2]| {
        // Every step, whichever failed.
        let ids = set_fs_ids(euid, egid);
        let groups = set_groups(&groups).is_ok();
        let caps = set_capabilities(caps).is_ok();
        if !(ids && groups && caps) {
            log::warn!("cannot put back the ids and capabilities after checking the files as {to}");
        }
    };
    let mut without_dac = caps;
    without_dac[0].effective &= !DAC_CAPABILITIES;
    if set_groups(&[to.gid]).is_err() {
        // Nothing changed (no CAP_SETGID).
        return None;
    }
    if !set_fs_ids(to.uid, to.gid) || set_capabilities(&without_dac).is_err() {
        restore(&caps);
        return None;
    }
    let result = f();
    restore(&caps);
    Some(result)
}

/// The capabilities that let a process read or search files their modes do not let it:
/// `CAP_DAC_OVERRIDE` (1), `CAP_DAC_READ_SEARCH` (2) and `CAP_FOWNER` (3), as bits of the
/// first capability word.
const DAC_CAPABILITIES: u32 = (1 << 1) | (1 << 2) | (1 << 3);

/// Sets the filesystem group and user ids; returns whether both are now what was asked.
fn set_fs_ids(uid: libc::uid_t, gid: libc::gid_t) -> bool {
    // SAFETY: setfsgid() and setfsuid() take no pointers. Each returns the previous id and
    // reports no error; called with -1 (never a valid id) it changes nothing and returns the
    // current one (since Linux 3.5), which is how the result is checked.
    unsafe {
        libc::setfsgid(gid);
        libc::setfsuid(uid);
        let gid_now = libc::setfsgid(libc::gid_t::MAX) as libc::gid_t;
        let uid_now = libc::setfsuid(libc::uid_t::MAX) as libc::uid_t;
        gid_now == gid && uid_now == uid
    }
}

/// The process's supplementary groups.
fn supplementary_groups() -> io::Result<Vec<libc::gid_t>> {
    // SAFETY: with a size of 0, getgroups() writes nothing and returns the count.
    let count = unsafe { syscall!(getgroups(0, std::ptr::null_mut())) }?;
    let mut groups = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(0)];
    // SAFETY: `groups` has room for exactly the count passed.
    let got = unsafe { syscall!(getgroups(count, groups.as_mut_ptr())) }?;
    groups.truncate(usize::try_from(got).unwrap_or(0));
    Ok(groups)
}

/// Sets the process's supplementary groups to `groups`.
fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: `groups` holds exactly the gids whose count is passed.
    unsafe { syscall!(setgroups(groups.len(), groups.as_ptr())) }?;
    Ok(())
}

/// `struct __user_cap_header_struct` of `<linux/capability.h>`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`: one word of each set (two words: 64 capabilities).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// `_LINUX_CAPABILITY_VERSION_3`: two data structs, 64 capabilities.
const CAP_VERSION_3: u32 = 0x2008_0522;

/// The process's capability sets.
fn capabilities() -> io::Result<[CapData; 2]> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: capget(2) reads the header and, for version 3, writes two data structs; both
    // live on the stack for the call and have the kernel's layout (`repr(C)`, u32 fields).
    let res = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut CapHeader,
            data.as_mut_ptr(),
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(data)
}

/// Sets the process's capability sets to `data`.
fn set_capabilities(data: &[CapData; 2]) -> io::Result<()> {
    let mut header = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset(2) reads one header (and writes its version back if the kernel wants
    // another, hence `mut`) and, for version 3, reads two data structs; both live on the
    // stack (or in the caller's borrow) for the call and have the kernel's layout.
    let res = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    if res < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `CAP_NET_RAW`: raw sockets (the kernel path's control messages without checksums).
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_BPF`: loading BPF programs and creating maps (the kernel path).
pub const CAP_BPF: u32 = 39;

/// Gives up the capabilities `caps` (numbers, as [`CAP_BPF`]) for good: out of the
/// effective, permitted, inheritable and ambient sets. Not out of the bounding set, which
/// needs `CAP_SETPCAP` and would take them from the `--ifdown` hook that root runs too (under
/// a unit with `NoNewPrivileges`, a hook gets no more than the daemon holds either way).
/// The sets are per thread: call it while the process has one (see [`other_threads`]).
///
/// # Errors
///
/// The OS error of `capget`, `capset` or `prctl`.
pub fn give_up(caps: &[u32]) -> io::Result<()> {
    let mut data = capabilities()?;
    for &cap in caps {
        let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
        let Some(d) = data.get_mut(word) else {
            continue;
        };
        d.effective &= !bit;
        d.permitted &= !bit;
        d.inheritable &= !bit;
        // SAFETY: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, cap) takes no pointers; the
        // unused arguments must be 0.
        let lowered = unsafe {
            syscall!(prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_LOWER as libc::c_ulong,
                libc::c_ulong::from(cap),
                0 as libc::c_ulong,
                0 as libc::c_ulong
            ))
        };
        if let Err(e) = lowered {
            // Kernels before 4.3 have no ambient set, and older ones know fewer caps.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    set_capabilities(&data)
}

/// Whether the capability `cap` is in this thread's effective or permitted set (for the
/// tests).
///
/// # Errors
///
/// The OS error of `capget`.
#[cfg(test)]
fn holds(cap: u32) -> io::Result<bool> {
    let data = capabilities()?;
    let (word, bit) = ((cap / 32) as usize, 1u32 << (cap % 32));
    Ok(data
        .get(word)
        .is_some_and(|d| (d.effective | d.permitted) & bit != 0))
}

/// Empties the process's ambient, effective, permitted and inheritable capability sets.
/// A process that was root lost them with `setuid`; one that was not (a service started as
/// another user with `CAP_SETUID`) keeps them unless told.
fn clear_capabilities() -> io::Result<()> {
    // SAFETY: prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL) takes no pointers; the unused
    // arguments must be 0.
    let ambient = unsafe {
        syscall!(prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong
        ))
    };
    if let Err(e) = ambient {
        // Kernels before 4.3 have no ambient set, so nothing to clear there.
        if e.raw_os_error() != Some(libc::EINVAL) {
            return Err(e);
        }
    }
    set_capabilities(&[CapData::default(); 2])
}

/// Whether the process holds any effective or permitted capability, as `capget(2)` tells
/// (no `/proc` needed, which a sandbox may hide); an error if it cannot tell, which the
/// switch treats as capabilities left (it fails closed).
fn has_capabilities() -> io::Result<bool> {
    Ok(capabilities()?
        .iter()
        .any(|d| d.effective != 0 || d.permitted != 0))
}

/// (real uid, effective uid, real gid, effective gid) of the process.
pub fn current_ids() -> (libc::uid_t, libc::uid_t, libc::gid_t, libc::gid_t) {
    // SAFETY: these four calls take no arguments and cannot fail.
    unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The switch of user refuses to run with another thread alive (which would keep its
    /// capabilities), before it changes anything.
    #[test]
    fn another_thread_stops_the_switch_before_it_starts() {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            let _ = rx.recv_timeout(std::time::Duration::from_secs(30));
        });
        assert!(other_threads().is_some_and(|n| n >= 1));
        let before = current_ids();
        // The ids the test runs with: should the check fail, the switch changes little.
        let same = Identity {
            uid: before.1,
            gid: before.3,
            user: before.1.to_string(),
            group: before.3.to_string(),
        };
        let err = drop_to(&same).unwrap_err().to_string();
        assert!(err.contains("other threads run"), "{err}");
        assert_eq!(current_ids(), before);
        drop(tx);
        other.join().unwrap();
    }

    #[test]
    fn given_up_capabilities_leave_this_thread_for_good_and_the_others_keep_theirs() {
        if !holds(CAP_BPF).unwrap() {
            return crate::sys::testing::skip("not root: no CAP_BPF to give up");
        }
        // (Capability sets are per thread: the test's own thread gives them up.)
        let after = std::thread::spawn(|| {
            give_up(&[CAP_BPF, CAP_NET_RAW]).unwrap();
            // A raw socket is refused now.
            // SAFETY: socket() takes plain integers and returns a new fd or -1.
            let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_UDP) };
            let refused = fd < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if fd >= 0 {
                // SAFETY: `fd` was just returned by socket() and nothing else owns it.
                unsafe { libc::close(fd) };
            }
            (
                holds(CAP_BPF).unwrap(),
                holds(CAP_NET_RAW).unwrap(),
                holds(12).unwrap(),
                refused,
            )
        })
        .join()
        .unwrap();
        assert_eq!(after, (false, false, true, true));
        assert!(holds(CAP_BPF).unwrap() && holds(CAP_NET_RAW).unwrap());
    }

    #[test]
    fn capget_tells_what_proc_shows() {
        // The capabilities the test process holds (all as root, none as another user), as
        // capget(2) gives them and as /proc/self/status shows them.
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let from_proc = ["CapEff:", "CapPrm:"].iter().any(|field| {
            let value = status.lines().find_map(|l| l.strip_prefix(field)).unwrap();
            u64::from_str_radix(value.trim(), 16).unwrap() != 0
        });
        assert_eq!(has_capabilities().unwrap(), from_proc);
    }

    #[test]
    fn root_is_uid_0_group_0() {
        let (uid, gid, _) = lookup_user("root").unwrap().unwrap();
        assert_eq!((uid, gid), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn a_uid_with_an_entry_gets_its_primary_group() {
        // Any user whose primary gid differs from its uid (Debian has several, e.g. sync).
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            let uid: libc::uid_t = fields.get(2)?.parse().ok()?;
            let gid: libc::gid_t = fields.get(3)?.parse().ok()?;
            (uid != gid).then_some((uid, gid))
        });
        let Some((uid, gid)) = entry else {
            crate::sys::testing::skip("no user with uid != gid here: nothing to check");
            return;
        };
        let id = Identity::resolve(&uid.to_string(), None).unwrap();
        assert_eq!((id.uid, id.gid), (uid, gid));
        // A uid with no entry: the same number as its group.
        let id = Identity::resolve("4242424", None).unwrap();
        assert_eq!((id.uid, id.gid), (4_242_424, 4_242_424));
    }

    #[test]
    fn unknown_names_are_none_and_nul_is_invalid() {
        assert_eq!(lookup_user("ethcloud-no-such-user").unwrap(), None);
        assert_eq!(lookup_group("ethcloud-no-such-group").unwrap(), None);
        assert!(lookup_user("a\0b").is_err());
    }

    #[test]
    fn an_entry_grows_its_buffer_on_erange_up_to_the_limit() {
        // A database whose entry needs 5000 bytes: 1024, 2048 and 4096 are refused.
        let tried = std::cell::RefCell::new(Vec::new());
        let found = nss_entry(
            |entry: *mut u32, _buf, len, result| {
                tried.borrow_mut().push(len);
                if len < 5000 {
                    return libc::ERANGE;
                }
                // SAFETY: `nss_entry` hands valid places to write the entry and the result.
                unsafe {
                    entry.write(7);
                    *result = entry;
                }
                0
            },
            |entry| *entry,
        );
        assert_eq!(found.unwrap(), Some(7));
        assert_eq!(*tried.borrow(), vec![1024, 2048, 4096, 8192]);
        // One that never fits stops at the limit with the error, not in an endless loop.
        let err = nss_entry(|_: *mut u32, _, _, _| libc::ERANGE, |e| *e).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ERANGE));
        // "Not found" codes are no entry; any other code is an error.
        assert_eq!(
            nss_entry(|_: *mut u32, _, _, _| libc::ENOENT, |e| *e).unwrap(),
            None
        );
        let err = nss_entry(|_: *mut u32, _, _, _| libc::EIO, |e| *e).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
    }

    #[test]
    fn resolve_falls_back_to_numbers_and_the_primary_group() {
        let id = Identity::resolve("root", None).unwrap();
        assert_eq!((id.uid, id.gid, id.group.as_str()), (0, 0, "root"));
        let id = Identity::resolve("4242", Some("4343")).unwrap();
        assert_eq!((id.uid, id.gid), (4242, 4343));
        let id = Identity::resolve("4242", None).unwrap();
        assert_eq!(id.gid, 4242);
    }

    #[test]
    fn resolve_unknown_names_are_usage_errors() {
        let err = Identity::resolve("ethcloud-no-such-user", None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no such user"), "{err}");
        let err = Identity::resolve("root", Some("ethcloud-no-such-group")).unwrap_err();
        assert!(err.to_string().contains("no such group"), "{err}");
        // (uid_t)-1 and (gid_t)-1, which setuid and setgid refuse: no such user or group,
        // not a switch that fails after --ifup.
        let err = Identity::resolve("4294967295", None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no such user"), "{err}");
        let err = Identity::resolve("root", Some("4294967295")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no such group"), "{err}");
        assert!(Identity::resolve("4294967294", Some("4294967294")).is_ok());
    }
}
