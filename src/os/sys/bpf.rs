//! The `bpf(2)` system call, as much of it as the kernel path needs ([`crate::kpath`]): hash
//! maps (create, update, delete, look up), loading a traffic-control program, and attaching
//! it to a device through a TCX link (Linux 6.6 and later), which detaches it when the link's
//! fd is closed, so a daemon that exits or crashes leaves no program behind.
//!
//! It owns only the system call and its argument layout (`union bpf_attr`); what the
//! programs do and what goes into the maps is the kernel path's business.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

// bpf(2) commands.
const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_LINK_UPDATE: libc::c_long = 29;
/// `BPF_MAP_TYPE_HASH`.
const MAP_TYPE_HASH: u32 = 1;
/// `BPF_PROG_TYPE_SCHED_CLS`: a traffic-control classifier.
const PROG_TYPE_SCHED_CLS: u32 = 3;
/// `BPF_ANY`: an update that creates or replaces.
pub const ANY: u64 = 0;

/// Where a TCX program runs on its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// Packets the device receives (`BPF_TCX_INGRESS`).
    Ingress,
    /// Packets sent out through the device (`BPF_TCX_EGRESS`); for a tap, the frames the
    /// kernel hands to the daemon.
    Egress,
}

impl Hook {
    fn attach_type(self) -> u32 {
        match self {
            Hook::Ingress => 46,
            Hook::Egress => 47,
        }
    }
}

/// A `union bpf_attr`, as raw bytes (each command's fields are written at their offsets).
#[repr(C, align(8))]
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(&mut self, at: usize, value: u32) -> &mut Attr {
        if let Some(field) = self.0.get_mut(at..at + 4) {
            field.copy_from_slice(&value.to_ne_bytes());
        }
        self
    }
    fn u64(&mut self, at: usize, value: u64) -> &mut Attr {
        if let Some(field) = self.0.get_mut(at..at + 8) {
            field.copy_from_slice(&value.to_ne_bytes());
        }
        self
    }
}

fn bpf(cmd: libc::c_long, attr: &mut Attr) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a valid, writable 128-byte `bpf_attr` for the whole call, and every
    // pointer written into it (keys, values, instructions, licence, log) points to memory
    // the caller keeps alive and large enough for the sizes given with it; the kernel reads
    // and writes only within those sizes.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.0.as_mut_ptr(), attr.0.len()) };
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn fd_from(ret: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(ret).map_err(|_| io::Error::other("bpf(2) returned no fd"))?;
    // SAFETY: `fd` was just returned by the kernel as a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A BPF hash map with fixed-size keys and values.
#[derive(Debug)]
pub struct HashMap {
    fd: OwnedFd,
    key_size: usize,
    value_size: usize,
}

/// `map_flags`: allocate entries on update, not all at creation.
const BPF_F_NO_PREALLOC: u32 = 1;

impl HashMap {
    /// Creates a hash map of at most `max_entries` entries.
    ///
    /// # Errors
    ///
    /// The kernel's refusal (no `CAP_BPF`, memory limits, ...).
    pub fn create(key_size: u32, value_size: u32, max_entries: u32) -> io::Result<HashMap> {
        let ret = bpf(
            BPF_MAP_CREATE,
            Attr::new()
                .u32(0, MAP_TYPE_HASH)
                .u32(4, key_size)
                .u32(8, value_size)
                .u32(12, max_entries)
                // Entries allocated as they are added, not all of them up front: the maps'
                // bounds follow --max-peers and --max-macs, which may be large.
                .u32(16, BPF_F_NO_PREALLOC),
        )?;
        Ok(HashMap {
            fd: fd_from(ret)?,
            key_size: key_size as usize,
            value_size: value_size as usize,
        })
    }

    /// The map's fd, for a program's map references.
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    fn check(&self, key: &[u8], value: Option<usize>) -> io::Result<()> {
        if key.len() != self.key_size || value.is_some_and(|v| v != self.value_size) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "key or value of the wrong size for the map",
            ));
        }
        Ok(())
    }

    /// Writes `value` under `key`; `flags` is [`ANY`] (or another `BPF_*` update flag).
    ///
    /// # Errors
    ///
    /// The kernel's refusal (the map full, memory).
    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        self.check(key, Some(value.len()))?;
        bpf(
            BPF_MAP_UPDATE_ELEM,
            Attr::new()
                .u32(0, self.fd.as_raw_fd() as u32)
                .u64(8, key.as_ptr() as u64)
                .u64(16, value.as_ptr() as u64)
                .u64(24, flags),
        )
        .map(drop)
    }

    /// Removes `key` (absent is not an error).
    ///
    /// # Errors
    ///
    /// The kernel's refusal.
    pub fn delete(&self, key: &[u8]) -> io::Result<()> {
        self.check(key, None)?;
        match bpf(
            BPF_MAP_DELETE_ELEM,
            Attr::new()
                .u32(0, self.fd.as_raw_fd() as u32)
                .u64(8, key.as_ptr() as u64),
        ) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Reads the value under `key` into `value`; false if the key is absent.
    ///
    /// # Errors
    ///
    /// The kernel's refusal.
    pub fn lookup(&self, key: &[u8], value: &mut [u8]) -> io::Result<bool> {
        self.check(key, Some(value.len()))?;
        match bpf(
            BPF_MAP_LOOKUP_ELEM,
            Attr::new()
                .u32(0, self.fd.as_raw_fd() as u32)
                .u64(8, key.as_ptr() as u64)
                .u64(16, value.as_mut_ptr() as u64),
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Loads `insns` as a traffic-control program for `hook`. A refusal carries the verifier's
/// last lines (asked for only then: loaded again with the log on, since a log that outgrew
/// its buffer would itself make a good program fail).
///
/// # Errors
///
/// The kernel's refusal (no `CAP_BPF`/`CAP_NET_ADMIN`, or the verifier's).
pub fn load_classifier(insns: &[u64], hook: Hook, name: &CStr) -> io::Result<OwnedFd> {
    let license = c"GPL";
    let mut attr = Attr::new();
    attr.u32(0, PROG_TYPE_SCHED_CLS)
        .u32(4, u32::try_from(insns.len()).unwrap_or(u32::MAX))
        .u64(8, insns.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .u32(68, hook.attach_type());
    let bytes = name.to_bytes();
    let n = bytes.len().min(15);
    attr.0[48..48 + n].copy_from_slice(&bytes[..n]);
    let mut quiet = Attr(attr.0);
    if let Ok(ret) = bpf(BPF_PROG_LOAD, &mut quiet) {
        return fd_from(ret);
    }
    let mut log = vec![0u8; 1 << 16];
    attr.u32(24, 1)
        .u32(28, log.len() as u32)
        .u64(32, log.as_mut_ptr() as u64);
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(ret) => fd_from(ret),
        Err(e) => {
            let end = log.iter().position(|&b| b == 0).unwrap_or(0);
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            Err(io::Error::new(
                e.kind(),
                format!("{e}; verifier: {}", tail.join(" / ")),
            ))
        }
    }
}

/// Attaches `prog` to device `ifindex` at `hook` through a TCX link, after the programs
/// already there. The program stays attached while the returned fd is open.
///
/// # Errors
///
/// The kernel's refusal (no TCX before Linux 6.6: `EINVAL`; no such device: `ENODEV`).
pub fn attach_tcx(prog: &OwnedFd, ifindex: u32, hook: Hook) -> io::Result<OwnedFd> {
    let ret = bpf(
        BPF_LINK_CREATE,
        Attr::new()
            .u32(0, prog.as_raw_fd() as u32)
            .u32(4, ifindex)
            .u32(8, hook.attach_type()),
    )?;
    fd_from(ret)
}

/// Puts `prog` in the place of the program TCX link `link` runs, at once and without a
/// moment with neither (`BPF_LINK_UPDATE`; it needs no capability from Linux 6.5 on).
///
/// # Errors
///
/// The kernel's refusal (a program of another type: `EINVAL`; the link's device gone:
/// `ENOLINK`).
pub fn update_link(link: &OwnedFd, prog: &OwnedFd) -> io::Result<()> {
    bpf(
        BPF_LINK_UPDATE,
        Attr::new()
            .u32(0, link.as_raw_fd() as u32)
            .u32(4, prog.as_raw_fd() as u32),
    )?;
    Ok(())
}

/// The id of the program TCX link `link` runs (for tests: which of two it is).
///
/// # Errors
///
/// The kernel's refusal of `BPF_OBJ_GET_INFO_BY_FD`.
#[cfg(test)]
fn link_prog_id(link: &OwnedFd) -> io::Result<u32> {
    let info = tcx_link_info(link)?;
    Ok(u32::from_ne_bytes([info[8], info[9], info[10], info[11]]))
}

/// Whether map updates and the like need `CAP_BPF` for as long as the daemon runs: before
/// Linux 6.5, with unprivileged BPF disabled (as most distributions ship it), every `bpf(2)`
/// command did, and a kernel of that age may have TCX backported. Also where the kernel's
/// release cannot be read (kept, to be safe).
pub fn needs_cap_bpf_all_along() -> bool {
    // SAFETY: utsname is plain data; uname() fills it in or fails.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid utsname for uname to write.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return true;
    }
    // SAFETY: uname succeeded, so `release` holds a NUL-terminated string.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) };
    release_before(&release.to_string_lossy(), (6, 5)).unwrap_or(true)
}

/// Whether the kernel release `release` (as "6.18.44-fc") is older than `(major, minor)`;
/// `None` if it does not start with two numbers.
fn release_before(release: &str, (major, minor): (u32, u32)) -> Option<bool> {
    let mut parts = release.split(['.', '-']);
    let got_major: u32 = parts.next()?.parse().ok()?;
    let got_minor: u32 = parts.next()?.parse().ok()?;
    Some((got_major, got_minor) < (major, minor))
}

/// The index of the device the TCX link `link` is attached to: 0 once that device is gone
/// (the kernel detaches its links then, and the index may go to another device).
///
/// # Errors
///
/// The kernel's refusal of `BPF_OBJ_GET_INFO_BY_FD`.
pub fn tcx_link_ifindex(link: &OwnedFd) -> io::Result<u32> {
    let info = tcx_link_info(link)?;
    Ok(u32::from_ne_bytes([info[16], info[17], info[18], info[19]]))
}

/// The start of TCX link `link`'s `struct bpf_link_info`: type, id and prog_id, then
/// (8-aligned) the tcx member's ifindex and attach_type.
fn tcx_link_info(link: &OwnedFd) -> io::Result<[u8; 24]> {
    let mut info = [0u8; 24];
    bpf(
        BPF_OBJ_GET_INFO_BY_FD,
        Attr::new()
            .u32(0, link.as_raw_fd() as u32)
            .u32(4, info.len() as u32)
            .u64(8, info.as_mut_ptr() as u64),
    )?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_before_6_5_are_told_apart() {
        assert_eq!(release_before("6.18.44-fc-v1300", (6, 5)), Some(false));
        assert_eq!(release_before("6.5.0", (6, 5)), Some(false));
        assert_eq!(release_before("6.4.16-200.fc38.x86_64", (6, 5)), Some(true));
        assert_eq!(release_before("5.14.0-427.el9.x86_64", (6, 5)), Some(true));
        assert_eq!(release_before("6", (6, 5)), None);
        assert_eq!(release_before("", (6, 5)), None);
        assert_eq!(release_before("x.y", (6, 5)), None);
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own) and Linux 6.6; .ci/run passes --include-ignored"]
    fn a_tcx_link_names_its_device_until_the_device_is_gone() {
        let seen = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            // r0 = -1 (TCX_NEXT); exit.
            let insns = [0xb7 | (0xffff_ffffu64 << 32), 0x95];
            let prog = load_classifier(&insns, Hook::Ingress, c"ethcloud_test").unwrap();
            run("ip link add ecl0 type veth peer name ecl1");
            run("ip link add ecl2 type veth peer name ecl3");
            let index = crate::sys::netdev::ifindex("ecl0").unwrap();
            let link = attach_tcx(&prog, index, Hook::Ingress).unwrap();
            let other = attach_tcx(
                &prog,
                crate::sys::netdev::ifindex("ecl2").unwrap(),
                Hook::Ingress,
            )
            .unwrap();
            let mut seen = vec![tcx_link_ifindex(&link).unwrap() == index];
            run("ip link set ecl0 name ecl9");
            seen.push(tcx_link_ifindex(&link).unwrap() == index);
            run("ip link del ecl9");
            seen.push(tcx_link_ifindex(&link).unwrap() == 0);
            seen.push(tcx_link_ifindex(&other).unwrap() != 0);
            // Moved to another namespace, an interface keeps its links (the kernel detaches
            // them only when the interface goes), and this namespace has it no more.
            let away = format!("ectcx{}", std::process::id());
            run(&format!("ip netns add {away}"));
            // (Deleted however the test ends: a named namespace outlives the process.)
            struct Remove(String);
            impl Drop for Remove {
                fn drop(&mut self) {
                    let _ = std::process::Command::new("ip")
                        .args(["netns", "del", &self.0])
                        .status();
                }
            }
            let _remove = Remove(away.clone());
            let index2 = crate::sys::netdev::ifindex("ecl2").unwrap();
            run(&format!("ip link set ecl2 netns {away}"));
            seen.push(tcx_link_ifindex(&other).unwrap() != 0);
            seen.push(crate::sys::netdev::name_of_index(index2).unwrap().is_none());
            seen
        });
        assert_eq!(seen, [true, true, true, true, true, true]);
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own) and Linux 6.6; .ci/run passes --include-ignored"]
    fn a_tcx_link_takes_another_program_in_place() {
        let seen = crate::sys::testing::in_own_netns(|| {
            use crate::sys::testing::run;
            // r0 = -1 (TCX_NEXT); exit. And r0 = 0 (TCX_PASS); exit.
            let next = [0xb7 | (0xffff_ffffu64 << 32), 0x95];
            let pass = [0xb7, 0x95];
            let first = load_classifier(&next, Hook::Ingress, c"ethcloud_test").unwrap();
            let second = load_classifier(&pass, Hook::Ingress, c"ethcloud_test").unwrap();
            run("ip link add ecl0 type veth peer name ecl1");
            let index = crate::sys::netdev::ifindex("ecl0").unwrap();
            let link = attach_tcx(&first, index, Hook::Ingress).unwrap();
            let before = link_prog_id(&link).unwrap();
            update_link(&link, &second).unwrap();
            let after = link_prog_id(&link).unwrap();
            // As the daemon under its unit does, once it has given up CAP_BPF (and never
            // had CAP_SYS_ADMIN): on a thread of its own, since capabilities are per thread.
            let back = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        use crate::sys::privdrop::{give_up, CAP_BPF, CAP_NET_RAW};
                        // (CAP_SYS_ADMIN, 21: it would allow what CAP_BPF does.)
                        give_up(&[CAP_BPF, 21, CAP_NET_RAW]).unwrap();
                        update_link(&link, &first)
                    })
                    .join()
                    .unwrap()
            });
            vec![
                before != 0,
                after != before,
                back.is_ok(),
                link_prog_id(&link).unwrap() == before,
                tcx_link_ifindex(&link).unwrap() == index,
            ]
        });
        assert_eq!(seen, [true, true, true, true, true]);
    }
}
