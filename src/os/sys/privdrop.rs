//! Dropping root: `--user` / `--group` looked up with `getpwnam_r` / `getgrnam_r`, then
//! `setgroups`, `setgid`, `setuid`, in that order, and a check that the switch really happened
//! and cannot be undone.
//!
//! Owns the user and group lookups and the switch. It does not decide *when*: `main` calls
//! [`drop_to`] once the tap device and the socket are open (their fds keep working as any
//! user), before the daemon starts any thread. Capabilities go with root: after the switch the
//! process has none, so it can forward frames but no longer reconfigure interfaces.

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
    /// Looks up `user` (a name, or a number with no entry) and `group` (likewise; default:
    /// the user's primary group, or the same number as the uid for a bare number).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownUser`] / [`Error::UnknownGroup`] for a name that is neither in the
    /// databases nor a number; [`Error::UserLookup`] if a database cannot be read.
    pub fn resolve(user: &str, group: Option<&str>) -> Result<Identity, Error> {
        let lookup_error = |name: &str| {
            let name = name.to_owned();
            move |source| Error::UserLookup { name, source }
        };
        let (uid, primary_gid, primary_name) =
            match lookup_user(user).map_err(lookup_error(user))? {
                Some(entry) => entry,
                None => match user.parse::<libc::uid_t>() {
                    Ok(uid) => (uid, uid, user.to_owned()),
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
    let mut buf = vec![0 as c_char; FIRST_ENTRY_BUF];
    loop {
        let mut entry = MaybeUninit::<libc::passwd>::uninit();
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `name_c` is NUL-terminated; `entry` and `result` are valid places to write;
        // `buf` is writable for `buf.len()` bytes and outlives every use of `entry`'s strings
        // (none: only the ids are read).
        let rc = syscall!(getpwnam_r(
            name_c.as_ptr(),
            entry.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut result
        ))?;
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: rc == 0 and `result` is non-null, so `entry` was filled in.
                let entry = unsafe { entry.assume_init() };
                return Ok(Some((entry.pw_uid, entry.pw_gid, name.to_owned())));
            }
            libc::ERANGE if buf.len() < MAX_ENTRY_BUF => buf.resize(buf.len() * 2, 0),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

/// The gid of group `name`, `None` if there is no such group.
///
/// # Errors
///
/// The OS error of `getgrnam_r` (other than "not found"), `InvalidInput` for a name with NUL.
pub fn lookup_group(name: &str) -> io::Result<Option<libc::gid_t>> {
    let name_c = c_name(name)?;
    let mut buf = vec![0 as c_char; FIRST_ENTRY_BUF];
    loop {
        let mut entry = MaybeUninit::<libc::group>::uninit();
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: as in `lookup_user`, with a `group` entry.
        let rc = syscall!(getgrnam_r(
            name_c.as_ptr(),
            entry.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut result
        ))?;
        match rc {
            0 if result.is_null() => return Ok(None),
            0 => {
                // SAFETY: rc == 0 and `result` is non-null, so `entry` was filled in.
                let entry = unsafe { entry.assume_init() };
                return Ok(Some(entry.gr_gid));
            }
            libc::ERANGE if buf.len() < MAX_ENTRY_BUF => buf.resize(buf.len() * 2, 0),
            libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => return Ok(None),
            code => return Err(io::Error::from_raw_os_error(code)),
        }
    }
}

/// The name of group `gid`, if it has one.
fn group_name(gid: libc::gid_t) -> Option<String> {
    let mut buf = vec![0 as c_char; FIRST_ENTRY_BUF];
    loop {
        let mut entry = MaybeUninit::<libc::group>::uninit();
        let mut result: *mut libc::group = std::ptr::null_mut();
        // SAFETY: `entry` and `result` are valid places to write; `buf` is writable for
        // `buf.len()` bytes and outlives the read of `gr_name` below.
        let rc = syscall!(getgrgid_r(
            gid,
            entry.as_mut_ptr(),
            buf.as_mut_ptr(),
            buf.len(),
            &mut result
        ))
        .ok()?;
        match rc {
            0 if result.is_null() => return None,
            0 => {
                // SAFETY: rc == 0 and `result` is non-null, so `entry` was filled in, and its
                // `gr_name` points to a NUL-terminated string inside `buf`, still alive.
                let name = unsafe { CStr::from_ptr(entry.assume_init().gr_name) };
                return Some(name.to_string_lossy().into_owned());
            }
            libc::ERANGE if buf.len() < MAX_ENTRY_BUF => buf.resize(buf.len() * 2, 0),
            _ => return None,
        }
    }
}

fn c_name(name: &str) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in the name"))
}

/// Switches the whole process to `to`: supplementary groups to just `to.gid`, then the group,
/// then the user (real, effective and saved ids), and checks the result. Call it while the
/// process has one thread.
///
/// # Errors
///
/// [`Error::DropPrivileges`] if a call fails (typically `EPERM`: not root), if the ids read
/// back differ, or if root could be regained afterwards.
pub fn drop_to(to: &Identity) -> Result<(), Error> {
    let fail = |source| Error::DropPrivileges {
        to: to.to_string(),
        source,
    };
    let groups = [to.gid];
    // SAFETY: `groups` holds exactly the one gid whose count is passed.
    syscall!(setgroups(1, groups.as_ptr())).map_err(fail)?;
    // SAFETY: setgid() takes no pointers.
    syscall!(setgid(to.gid)).map_err(fail)?;
    // SAFETY: setuid() takes no pointers.
    syscall!(setuid(to.uid)).map_err(fail)?;

    let (uid, euid, gid, egid) = current_ids();
    if (uid, euid, gid, egid) != (to.uid, to.uid, to.gid, to.gid) {
        return Err(fail(io::Error::other(format!(
            "ids are uid {uid} euid {euid} gid {gid} egid {egid} after the switch"
        ))));
    }
    if to.uid != 0 {
        // SAFETY: setuid() takes no pointers. It must fail: root is gone for good.
        if syscall!(setuid(0)).is_ok() {
            return Err(fail(io::Error::other("setuid(0) still succeeds")));
        }
    }
    Ok(())
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

    #[test]
    fn root_is_uid_0_group_0() {
        let (uid, gid, _) = lookup_user("root").unwrap().unwrap();
        assert_eq!((uid, gid), (0, 0));
        assert_eq!(lookup_group("root").unwrap(), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
    }

    #[test]
    fn unknown_names_are_none_and_nul_is_invalid() {
        assert_eq!(lookup_user("ethcloud-no-such-user").unwrap(), None);
        assert_eq!(lookup_group("ethcloud-no-such-group").unwrap(), None);
        assert!(lookup_user("a\0b").is_err());
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
    }
}
