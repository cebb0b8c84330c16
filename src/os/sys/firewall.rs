//! Whether this network namespace has a firewall that IPv4 datagrams pass through: a base
//! chain of nf_tables in the `ip`, `inet` or `netdev` family (what `nft`, `iptables-nft`,
//! firewalld and ufw create), read with one `NFT_MSG_GETCHAIN` dump over `NETLINK_NETFILTER`,
//! or a table of the legacy `ip_tables` (`/proc/net/ip_tables_names`). The kernel path asks
//! this when it is on by default (its programs run before netfilter, so it stays off, or steps
//! aside, wherever a firewall could be meant to see the daemon's datagrams).
//!
//! Owns that dump and its parsing. It changes nothing in the kernel and does not judge the
//! rules: any base chain counts, whatever it holds.

use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::netdev::{attributes, u16_at, u32_at, NLMSG_HDR_LEN};

/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN`.
const GETCHAIN: u16 = (10 << 8) | 4;
/// `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN`: each chain of the answer.
const NEWCHAIN: u16 = (10 << 8) | 3;
/// `struct nfgenmsg`: family, version, resource id.
const NFGENMSG_LEN: usize = 4;
/// The kernel's flag on the messages of a dump during which the rules changed.
const NLM_F_DUMP_INTR: u16 = 0x10;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
/// Receive calls one dump may take (each up to [`ANSWER_ROOM`] bytes).
const MAX_READS: usize = 256;
const ANSWER_ROOM: usize = 64 * 1024;

/// The families whose base chains see this host's IPv4 datagrams, with `nft`'s names.
fn family_name(family: u8) -> Option<&'static str> {
    match family {
        1 => Some("inet"),
        2 => Some("ip"),
        5 => Some("netdev"),
        _ => None,
    }
}

/// The first firewall found in this network namespace, as one phrase for a log line ("the
/// nftables chain ip filter input", "the iptables table filter"), or `None` if there is none.
///
/// # Errors
///
/// The OS error of the netlink socket or the kernel's error answer (other than nf_tables
/// not being there at all), or `InvalidData`/`TimedOut` for an answer that does not end.
pub fn first() -> io::Result<Option<String>> {
    // (thread-self: the namespace of this thread, which is the daemon's.)
    let legacy = match fs::read_to_string("/proc/thread-self/net/ip_tables_names") {
        Ok(text) => Some(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if let Some(table) = legacy_table(legacy) {
        return Ok(Some(format!("the iptables table {table}")));
    }
    // Where nf_tables is a module not loaded, each question would have the kernel run
    // modprobe for it: once it said so, it is asked again only once the module is there.
    if NFT_ABSENT.load(Ordering::Relaxed) {
        match fs::read_to_string("/proc/modules") {
            Ok(modules) if !module_loaded(&modules, "nf_tables") => return Ok(None),
            _ => NFT_ABSENT.store(false, Ordering::Relaxed),
        }
    }
    // A dump the rules changed under is asked again (three times at most).
    let mut found = nft_base_chain();
    for _ in 0..2 {
        if !matches!(found, Err(ref e) if e.raw_os_error() == Some(libc::EINTR)) {
            break;
        }
        found = nft_base_chain();
    }
    if matches!(found, Err(ref e) if e.kind() == io::ErrorKind::Unsupported) {
        NFT_ABSENT.store(true, Ordering::Relaxed);
        return Ok(None);
    }
    found
}

/// nf_tables was not in the kernel at the last question (see [`first`]).
static NFT_ABSENT: AtomicBool = AtomicBool::new(false);

/// Whether the text of `/proc/modules` lists `name` (each line starts with a module's name).
fn module_loaded(modules: &str, name: &str) -> bool {
    modules.lines().any(|l| l.split(' ').next() == Some(name))
}

/// The first table named in the text of `/proc/net/ip_tables_names` (absent when `ip_tables`
/// is not loaded).
fn legacy_table(text: Option<String>) -> Option<String> {
    text?
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned)
}

/// What a piece of the chain dump says.
#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// A base chain that counts, as "family table chain".
    Found(String),
    /// The end of the dump, and none found.
    Done,
    /// The kernel's error (a positive errno).
    Error(i32),
    /// Read on.
    More,
}

/// Reads the messages of `buf` (answers to dump `seq`). A dump the kernel marks as
/// interrupted (the rules changed while it was read) is an `EINTR` error.
fn scan(buf: &[u8], seq: u32) -> Scan {
    let mut at = 0;
    while let Some(len) = u32_at(buf, at).map(|l| l as usize) {
        let Some(msg) = at.checked_add(len).and_then(|end| buf.get(at..end)) else {
            return Scan::Error(libc::EIO);
        };
        if len < NLMSG_HDR_LEN {
            return Scan::Error(libc::EIO);
        }
        if u32_at(msg, 8) == Some(seq) {
            if u16_at(msg, 6).is_some_and(|flags| flags & NLM_F_DUMP_INTR != 0) {
                return Scan::Error(libc::EINTR);
            }
            match u16_at(msg, 4) {
                Some(kind) if kind == libc::NLMSG_DONE as u16 => {
                    // (The end of a dump may carry an error of its own.)
                    return match u32_at(msg, NLMSG_HDR_LEN)
                        .map(|c| i32::from_ne_bytes(c.to_ne_bytes()))
                    {
                        Some(c) if c < 0 => Scan::Error(c.saturating_neg()),
                        _ => Scan::Done,
                    };
                }
                Some(kind) if kind == libc::NLMSG_ERROR as u16 => {
                    // (An error message with code 0 is an acknowledgement.)
                    let code =
                        u32_at(msg, NLMSG_HDR_LEN).map(|c| i32::from_ne_bytes(c.to_ne_bytes()));
                    match code {
                        Some(0) => {}
                        Some(c) if c < 0 => return Scan::Error(c.saturating_neg()),
                        _ => return Scan::Error(libc::EIO),
                    }
                }
                Some(NEWCHAIN) => {
                    if let Some(found) = base_chain(msg) {
                        return Scan::Found(found);
                    }
                }
                _ => {}
            }
        }
        at += (len + 3) & !3;
    }
    Scan::More
}

/// "family table chain" if the `NFT_MSG_NEWCHAIN` message `msg` is a base chain (it has a
/// hook) of a family that counts.
fn base_chain(msg: &[u8]) -> Option<String> {
    let family = family_name(*msg.get(NLMSG_HDR_LEN)?)?;
    let (mut table, mut name, mut hooked) = ("?", "?", false);
    for (kind, value) in attributes(msg.get(NLMSG_HDR_LEN + NFGENMSG_LEN..)?) {
        match kind {
            NFTA_CHAIN_TABLE => table = text(value),
            NFTA_CHAIN_NAME => name = text(value),
            NFTA_CHAIN_HOOK => hooked = true,
            _ => {}
        }
    }
    hooked.then(|| format!("{family} {table} {name}"))
}

/// An attribute's NUL-terminated string, or "?".
fn text(v: &[u8]) -> &str {
    std::str::from_utf8(v.split(|b| *b == 0).next().unwrap_or_default()).unwrap_or("?")
}

/// The first base chain that counts, from a dump of every chain; an `Unsupported` error
/// where the kernel has no nf_tables (or no nfnetlink) now.
fn nft_base_chain() -> io::Result<Option<String>> {
    const ASK_LEN: usize = NLMSG_HDR_LEN + NFGENMSG_LEN;
    let flags = libc::SOCK_RAW | libc::SOCK_CLOEXEC;
    // SAFETY: socket() takes no pointers; the result is checked by `syscall!`.
    let raw = unsafe { syscall!(socket(libc::AF_NETLINK, flags, libc::NETLINK_NETFILTER)) }
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EPROTONOSUPPORT) => unsupported(),
            _ => e,
        })?;
    // SAFETY: `raw` was just returned by socket(), is open, and nothing else owns it.
    let socket = unsafe { OwnedFd::from_raw_fd(raw) };
    let timeout = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: the fd is open; `timeout` is a valid timeval, read for its size only.
    unsafe {
        syscall!(setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            std::ptr::from_ref(&timeout).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t
        ))
    }?;
    let seq: u32 = 1;
    let mut ask = [0u8; ASK_LEN];
    ask[0..4].copy_from_slice(&(ASK_LEN as u32).to_ne_bytes());
    ask[4..6].copy_from_slice(&GETCHAIN.to_ne_bytes());
    let dump = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    ask[6..8].copy_from_slice(&dump.to_ne_bytes());
    ask[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nfgenmsg: every family (NFPROTO_UNSPEC), version 0, resource id 0.
    // SAFETY: the fd is open; `ask` is valid for its length, which the kernel only reads.
    unsafe { syscall!(send(socket.as_raw_fd(), ask.as_ptr().cast(), ask.len(), 0)) }?;
    let mut answer = vec![0u8; ANSWER_ROOM];
    for _ in 0..MAX_READS {
        // SAFETY: the fd is open; `answer` is valid for writes of its length.
        let n = unsafe {
            syscall!(recv(
                socket.as_raw_fd(),
                answer.as_mut_ptr().cast(),
                answer.len(),
                0
            ))
        }?;
        let got = answer
            .get(..usize::try_from(n).unwrap_or(0))
            .unwrap_or_default();
        if got.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the chain dump ended early",
            ));
        }
        match scan(got, seq) {
            Scan::Found(chain) => return Ok(Some(format!("the nftables chain {chain}"))),
            Scan::Done => return Ok(None),
            // nf_tables not in this kernel (nfnetlink knows no such subsystem): no chain
            // can be there.
            Scan::Error(libc::EINVAL | libc::EOPNOTSUPP) => return Err(unsupported()),
            Scan::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
            Scan::More => {}
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "the chain dump did not end",
    ))
}

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "no nf_tables in this kernel")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testing::{nl_attr as attr, nl_message as message};

    /// A chain of `family` (`table`, `name`), a base chain if `hooked`.
    fn chain(seq: u32, family: u8, table: &str, name: &str, hooked: bool) -> Vec<u8> {
        let mut body = vec![family, 0, 0, 0];
        body.extend(attr(NFTA_CHAIN_TABLE, format!("{table}\0").as_bytes()));
        body.extend(attr(NFTA_CHAIN_NAME, format!("{name}\0").as_bytes()));
        if hooked {
            // Nested (NLA_F_NESTED): hook number 1, priority 0.
            let mut hook = attr(1, &1u32.to_be_bytes());
            hook.extend(attr(2, &0u32.to_be_bytes()));
            body.extend(attr(NFTA_CHAIN_HOOK | 0x8000, &hook));
        }
        message(NEWCHAIN, seq, &body)
    }

    #[test]
    fn a_base_chain_of_ip_inet_or_netdev_is_a_firewall() {
        for (family, name) in [(2, "ip"), (1, "inet"), (5, "netdev")] {
            let buf = chain(7, family, "filter", "input", true);
            assert_eq!(
                scan(&buf, 7),
                Scan::Found(format!("{name} filter input")),
                "family {family}"
            );
        }
    }

    #[test]
    fn regular_chains_other_families_and_other_dumps_are_not() {
        let mut buf = chain(7, 2, "t", "regular", false);
        buf.extend(chain(7, 10, "t6", "input", true)); // ip6
        buf.extend(chain(7, 7, "br", "forward", true)); // bridge
        buf.extend(chain(8, 2, "other", "dump", true)); // another request
        assert_eq!(scan(&buf, 7), Scan::More);
        buf.extend(message(libc::NLMSG_DONE as u16, 7, &[0; 4]));
        assert_eq!(scan(&buf, 7), Scan::Done);
        let mut found = chain(7, 2, "t", "regular", false);
        found.extend(chain(7, 1, "fw", "out", true));
        assert_eq!(scan(&found, 7), Scan::Found("inet fw out".to_owned()));
    }

    #[test]
    fn errors_and_cut_messages_are_errors() {
        let mut code = (-libc::EPERM).to_ne_bytes().to_vec();
        code.extend_from_slice(&[0; NLMSG_HDR_LEN]);
        let error = message(libc::NLMSG_ERROR as u16, 7, &code);
        assert_eq!(scan(&error, 7), Scan::Error(libc::EPERM));
        let whole = chain(7, 2, "filter", "input", true);
        assert_eq!(scan(&whole[..whole.len() - 4], 7), Scan::Error(libc::EIO));
        assert_eq!(scan(&[], 7), Scan::More);
        // A length below the header's.
        assert_eq!(scan(&[8, 0, 0, 0, 0, 0, 0, 0], 7), Scan::Error(libc::EIO));
    }

    #[test]
    fn a_module_is_loaded_if_a_line_starts_with_its_name() {
        let modules = "nf_tables_x 1 0 - Live 0x0\nnf_tables 372736 0 - Live 0x0\n";
        assert!(module_loaded(modules, "nf_tables"));
        assert!(!module_loaded("nf_tables_x 1 0 - Live 0x0\n", "nf_tables"));
        assert!(!module_loaded("", "nf_tables"));
    }

    #[test]
    fn an_interrupted_dump_and_an_error_at_its_end_are_errors() {
        let mut interrupted = chain(7, 2, "t", "regular", false);
        interrupted[6..8].copy_from_slice(&(NLM_F_DUMP_INTR | 2).to_ne_bytes());
        interrupted.extend(message(libc::NLMSG_DONE as u16, 7, &[0; 4]));
        assert_eq!(scan(&interrupted, 7), Scan::Error(libc::EINTR));
        let done = message(libc::NLMSG_DONE as u16, 7, &(-libc::EBUSY).to_ne_bytes());
        assert_eq!(scan(&done, 7), Scan::Error(libc::EBUSY));
    }

    #[test]
    fn the_first_legacy_table_is_named() {
        assert_eq!(legacy_table(None), None);
        assert_eq!(legacy_table(Some(String::new())), None);
        assert_eq!(
            legacy_table(Some("filter\nnat\n".to_owned())),
            Some("filter".to_owned())
        );
    }

    #[test]
    #[ignore = "needs root (a network namespace of its own) and nft; .ci/run passes --include-ignored"]
    fn the_kernel_s_own_answers_name_each_firewall() {
        use crate::sys::testing::{in_own_netns, run};
        let seen = in_own_netns(|| {
            let mut seen = vec![first().map_err(|e| e.to_string())];
            run("nft add table ip ecfw");
            run("nft add chain ip ecfw regular");
            run("nft add table ip6 ecfw6");
            run("nft add chain ip6 ecfw6 in { type filter hook input priority 0 ; }");
            seen.push(first().map_err(|e| e.to_string()));
            run("nft add chain ip ecfw out { type filter hook output priority 0 ; }");
            seen.push(first().map_err(|e| e.to_string()));
            run("nft delete table ip ecfw");
            seen.push(first().map_err(|e| e.to_string()));
            seen
        });
        assert_eq!(
            seen,
            [
                Ok(None),
                Ok(None),
                Ok(Some("the nftables chain ip ecfw out".to_owned())),
                Ok(None)
            ]
        );
    }

    #[test]
    fn this_namespace_can_be_asked() {
        // Whatever the host has, asking gives an answer; without CAP_NET_ADMIN nfnetlink
        // refuses every request.
        match first() {
            Ok(_) => {}
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }
}
