//! The relay extension's messages (man page: RELAYING): parsing and emitting, nothing else.
//!
//! These kinds exist only inside sealed datagrams (network key or per-node keys), where every
//! sender is an ethcloud node that opened a session with us; the seed's cleartext protocol never
//! carries them, and [`crate::wire::Message::parse`] keeps refusing their switch bytes. Which
//! peer may relay, and to whom, is decided in `crate::relay` and the node, never here.
//!
//! ```text
//! | token: 7 | 0x10 | version: u8 = 1 | flags: u8 | node id: 8 | address | [members: 8] | (ignored ...)  Hello
//! | token: 7 | 0x11 | address | frame ...                                           RelayTo
//! | token: 7 | 0x12 | address | frame ...                                           RelayedFrom
//! | token: 7 | 0x13 | address | (ignored ...)                                       KeyQuery
//! | token: 7 | 0x14 | address | key: 32 | (ignored ...)                             KeyAnswer
//! | token: 7 | 0x15 | nonce: 8 | (ignored ...)                                      Challenge
//! | token: 7 | 0x16 | nonce: 8 | (ignored ...)                                      Echo
//!   address = 0x04 | ipv4[4] | port[2]     or     0x06 | ipv6[16] | port[2]   (big-endian)
//!   flags: 0x01 = please answer with your Hello; 0x02 = relays for its peers;
//!          0x04 = sends through relays and accepts relayed frames;
//!          0x08 = opens datagrams sealed with AEGIS-128L (marker 0x83);
//!          0x10 = with 0x08: has 512-bit vector AES (AEGIS-128X4, marker 0x84);
//!          0x20 = completes TCP/UDP checksums left partial;
//!          0x40 = (per-node keys, with 0x02) answers KeyQuery;
//!          0x80 = (with 0x02) its lists name only the relaying peers it heard lately;
//!          other bits: ignore
//! ```
//!
//! A Hello's address is the receiver's, as the sender sees it (where its datagrams come from:
//! a NAT's public address and port), so a node learns its own public addresses. With per-node
//! keys, `members` follows: a digest of the keys the sender trusts and its own
//! (`crate::identity::Sessions::members`); a relay passes frames only between two nodes whose
//! digests are the same.
//! `RelayTo` asks the receiver to pass the frame to its peer at `address`; the receiver sends
//! that peer a `RelayedFrom` whose `address` is where the original sender is, as the relay sees
//! it. The frame is a whole Ethernet frame, as in a seed Frame message.
//! With per-node keys, `KeyQuery` asks a relay which public key its peer at `address` holds a
//! session with, and `KeyAnswer` says it, so that the far ends of a route check each other's
//! key against their own trusted keys before any frame passes.
//! `Challenge` and `Echo` exist with a network key only: a node verifies a new address of a
//! sender of this version (one whose counters start at [`crate::crypto::ECHO_COUNTER`]) only
//! once that address sent back, sealed, the nonce of a Challenge sent to it there (see
//! `crate::node`'s `verify.rs`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{Error, Frame, Token, HEADER_LEN, TOKEN_LEN};

/// Switch byte of a Hello: the sender's relay capabilities.
pub const HELLO: u8 = 0x10;
/// Switch byte of a RelayTo: "pass this frame to your peer at this address".
pub const RELAY_TO: u8 = 0x11;
/// Switch byte of a RelayedFrom: "this frame comes from the node at this address".
pub const RELAYED_FROM: u8 = 0x12;
/// Switch byte of a KeyQuery: "which key does your peer at this address hold?"
pub const KEY_QUERY: u8 = 0x13;
/// Switch byte of a KeyAnswer: "my peer at this address holds this key".
pub const KEY_ANSWER: u8 = 0x14;
/// Switch byte of a Challenge (network key only): "send this nonce back in an Echo".
pub const CHALLENGE: u8 = 0x15;
/// Switch byte of an Echo (network key only): "here is the nonce of your Challenge".
pub const ECHO: u8 = 0x16;
/// Bytes of a Challenge or Echo message: header and nonce.
pub const ECHO_MESSAGE_LEN: usize = HEADER_LEN + 8;
/// Bytes of a public key in a KeyAnswer.
pub const KEY_LEN: usize = 32;
/// The Hello version this node speaks.
pub const HELLO_VERSION: u8 = 1;
/// Hello flag: the receiver should answer with its own Hello.
pub const FLAG_ANSWER: u8 = 0x01;
/// Hello flag: the sender relays for its peers.
pub const FLAG_RELAY: u8 = 0x02;
/// Hello flag: the sender sends through relays and accepts relayed frames.
pub const FLAG_RELAYED: u8 = 0x04;
/// Hello flag: the sender opens datagrams sealed with AEGIS-128L (marker 0x83), so sessions
/// of per-node keys may seal to it with that cipher (`crate::crypto::Cipher::Aegis128L`).
/// Not a relay capability: a node sends its Hello in the sealed modes even with relaying off.
pub const FLAG_AEGIS: u8 = 0x08;
/// Hello flag, only with [`FLAG_AEGIS`]: the sender's CPU has 512-bit vector AES (VAES with
/// AVX-512), so a node whose own CPU has it too seals to it with AEGIS-128X4 (marker 0x84,
/// `crate::crypto::Cipher::Aegis128X4`) rather than AEGIS-128L (in keyed mode, frames only
/// while every verified peer said so).
/// Every node of this version opens AEGIS-128X4; the flag says where it pays.
pub const FLAG_AEGIS_X4: u8 = 0x10;
/// Hello flag: the sender completes the TCP and UDP checksums of the frames it is sent (its
/// tap takes frames whose checksum is left to the kernel), so the frames a node cuts from its
/// own super-frames may go to it with the checksum field holding only the pseudo-header sum
/// (untagged IPv4 or IPv6 frames, unicast to it directly; see the man page, PERFORMANCE).
/// Counts for the session it came in (per-node keys) or the sender's session (network key).
pub const FLAG_PARTIAL_CHECKSUMS: u8 = 0x20;
/// Hello flag, per-node keys only and only with [`FLAG_RELAY`]: the sender answers a
/// [`KEY_QUERY`] about the peers it relays to, so that a route through it carries frames only
/// once the node at its far end showed a key this node trusts.
pub const FLAG_NAMES_KEYS: u8 = 0x40;
/// Hello flag, only with [`FLAG_RELAY`]: the sender's peer lists name only the relaying peers
/// it heard lately (within its keepalive interval, at least 60 s, and 10 s), so a list of its
/// says that it still reaches them: what lets a node take a silent direct peer for one behind
/// a broken path (see the man page, RELAYING, "Broken direct paths"). A relay of an earlier
/// version lists every peer until its timeout, and its lists do not count for that.
pub const FLAG_FRESH_LISTS: u8 = 0x80;
/// Bytes of a Hello message before its address field (header, version, flags, node id).
pub const HELLO_FIXED_LEN: usize = HEADER_LEN + 2 + 8;
/// Bytes of an IPv4 address field.
pub const V4_ADDR_LEN: usize = 7;
/// Bytes of an IPv6 address field.
pub const V6_ADDR_LEN: usize = 19;
/// The most bytes an address field takes: what relaying adds to a frame datagram at most.
pub const MAX_ADDR_LEN: usize = V6_ADDR_LEN;

/// True for the switch bytes of this extension.
pub const fn is_extension(kind: u8) -> bool {
    matches!(
        kind,
        HELLO | RELAY_TO | RELAYED_FROM | KEY_QUERY | KEY_ANSWER | CHALLENGE | ECHO
    )
}

/// A parsed extension message, borrowing the datagram's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension<'a> {
    /// The sender's capabilities.
    Hello {
        /// The sender's Hello version (1 today; later versions keep these two bytes).
        version: u8,
        /// [`FLAG_ANSWER`], [`FLAG_RELAY`], [`FLAG_RELAYED`], [`FLAG_AEGIS`],
        /// [`FLAG_AEGIS_X4`], [`FLAG_PARTIAL_CHECKSUMS`], [`FLAG_NAMES_KEYS`],
        /// [`FLAG_FRESH_LISTS`]; unknown bits are ignored.
        flags: u8,
        /// The sender's node id: the same for every address the node speaks from (so a
        /// peer seen at a new address is known to be the one at the old address).
        node_id: u64,
        /// The receiver's address as the sender sees it.
        observed: SocketAddr,
        /// Per-node keys: the digest of the members the sender trusts (itself included);
        /// `None` with a network key, or from a version without it.
        members: Option<u64>,
    },
    /// Pass `frame` on to the peer at `to`.
    RelayTo {
        /// The final receiver, as the relay knows it.
        to: SocketAddr,
        /// The frame.
        frame: Frame<&'a [u8]>,
    },
    /// `frame` was relayed from the node at `from`.
    RelayedFrom {
        /// The original sender, as the relay knows it.
        from: SocketAddr,
        /// The frame.
        frame: Frame<&'a [u8]>,
    },
    /// Which public key does the relay's peer at `addr` hold its session with?
    KeyQuery {
        /// The far end of a route through the relay, as the relay knows it.
        addr: SocketAddr,
    },
    /// The relay's peer at `addr` holds its session with `key`.
    KeyAnswer {
        /// The address the query named.
        addr: SocketAddr,
        /// The peer's public key (X25519, 32 bytes).
        key: [u8; KEY_LEN],
    },
    /// Network key: the sender asks for `nonce` back in an [`Extension::Echo`], sent from the
    /// address this Challenge reached.
    Challenge {
        /// What the Echo must carry.
        nonce: u64,
    },
    /// Network key: the answer to a Challenge.
    Echo {
        /// The Challenge's nonce.
        nonce: u64,
    },
}

impl<'a> Extension<'a> {
    /// Parses a whole datagram (header included) whose switch byte is an extension's.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKind`] for a switch byte outside the extension, [`Error::Truncated`] for
    /// a short body or an address field of an unknown family, and the frame errors for a frame
    /// shorter than its Ethernet header.
    pub fn parse(datagram: &'a [u8]) -> Result<Extension<'a>, Error> {
        let kind = *datagram.get(TOKEN_LEN).ok_or(Error::Truncated)?;
        let body = datagram.get(HEADER_LEN..).ok_or(Error::Truncated)?;
        match kind {
            HELLO => match body {
                [version, flags, rest @ ..] if rest.len() >= 8 => {
                    let mut node_id = [0u8; 8];
                    node_id.copy_from_slice(rest.get(..8).ok_or(Error::Truncated)?);
                    let (observed, after) = parse_addr(rest.get(8..).unwrap_or_default())?;
                    let members = after
                        .get(..8)
                        .and_then(|m| <[u8; 8]>::try_from(m).ok())
                        .map(u64::from_be_bytes);
                    Ok(Extension::Hello {
                        version: *version,
                        flags: *flags,
                        node_id: u64::from_be_bytes(node_id),
                        observed,
                        members,
                    })
                }
                _ => Err(Error::Truncated),
            },
            RELAY_TO => {
                let (to, rest) = parse_addr(body)?;
                Ok(Extension::RelayTo {
                    to,
                    frame: Frame::new_checked(rest)?,
                })
            }
            RELAYED_FROM => {
                let (from, rest) = parse_addr(body)?;
                Ok(Extension::RelayedFrom {
                    from,
                    frame: Frame::new_checked(rest)?,
                })
            }
            KEY_QUERY => {
                let (addr, _) = parse_addr(body)?;
                Ok(Extension::KeyQuery { addr })
            }
            KEY_ANSWER => {
                let (addr, rest) = parse_addr(body)?;
                let key = rest
                    .get(..KEY_LEN)
                    .and_then(|k| <[u8; KEY_LEN]>::try_from(k).ok())
                    .ok_or(Error::Truncated)?;
                Ok(Extension::KeyAnswer { addr, key })
            }
            CHALLENGE | ECHO => {
                let nonce = body
                    .get(..8)
                    .and_then(|n| <[u8; 8]>::try_from(n).ok())
                    .map(u64::from_be_bytes)
                    .ok_or(Error::Truncated)?;
                Ok(if kind == CHALLENGE {
                    Extension::Challenge { nonce }
                } else {
                    Extension::Echo { nonce }
                })
            }
            other => Err(Error::UnknownKind(other)),
        }
    }
}

/// Reads an address field; returns it and the bytes after it.
fn parse_addr(body: &[u8]) -> Result<(SocketAddr, &[u8]), Error> {
    match body.first() {
        Some(4) => {
            let field = body.get(..V4_ADDR_LEN).ok_or(Error::Truncated)?;
            let mut ip = [0u8; 4];
            ip.copy_from_slice(field.get(1..5).ok_or(Error::Truncated)?);
            let port = u16::from_be_bytes([field[5], field[6]]);
            let rest = body.get(V4_ADDR_LEN..).unwrap_or_default();
            Ok((SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port), rest))
        }
        Some(6) => {
            let field = body.get(..V6_ADDR_LEN).ok_or(Error::Truncated)?;
            let mut ip = [0u8; 16];
            ip.copy_from_slice(field.get(1..17).ok_or(Error::Truncated)?);
            let port = u16::from_be_bytes([field[17], field[18]]);
            let rest = body.get(V6_ADDR_LEN..).unwrap_or_default();
            Ok((SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port), rest))
        }
        _ => Err(Error::Truncated),
    }
}

/// Bytes of the address field for `addr`.
pub fn addr_len(addr: SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => V4_ADDR_LEN,
        SocketAddr::V6(_) => V6_ADDR_LEN,
    }
}

/// Writes a Hello with `flags`, `node_id` and the receiver's address as we see it
/// (`observed`); returns its length.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` cannot hold it.
pub fn emit_hello(
    token: Token,
    flags: u8,
    node_id: u64,
    observed: SocketAddr,
    members: Option<u64>,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let at = HELLO_FIXED_LEN + addr_len(observed);
    let len = at + members.map_or(0, |_| 8);
    let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
    out[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    out[TOKEN_LEN] = HELLO;
    out[HEADER_LEN] = HELLO_VERSION;
    out[HEADER_LEN + 1] = flags;
    out[HEADER_LEN + 2..HELLO_FIXED_LEN].copy_from_slice(&node_id.to_be_bytes());
    write_addr(observed, &mut out[HELLO_FIXED_LEN..at]);
    if let Some(members) = members {
        out[at..len].copy_from_slice(&members.to_be_bytes());
    }
    Ok(len)
}

/// Writes the address field of `addr` into `field` (exactly [`addr_len`] bytes).
fn write_addr(addr: SocketAddr, field: &mut [u8]) {
    match addr {
        SocketAddr::V4(a) => {
            field[0] = 4;
            field[1..5].copy_from_slice(&a.ip().octets());
            field[5..7].copy_from_slice(&a.port().to_be_bytes());
        }
        SocketAddr::V6(a) => {
            field[0] = 6;
            field[1..17].copy_from_slice(&a.ip().octets());
            field[17..19].copy_from_slice(&a.port().to_be_bytes());
        }
    }
}

/// Writes the header and address field of a `RelayTo` or `RelayedFrom` (`kind`) and the
/// `frame` behind them; returns the datagram's length.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` cannot hold it all, [`Error::UnknownKind`] for a `kind`
/// that is neither.
pub fn emit_relayed(
    token: Token,
    kind: u8,
    addr: SocketAddr,
    frame: &[u8],
    buf: &mut [u8],
) -> Result<usize, Error> {
    if kind != RELAY_TO && kind != RELAYED_FROM {
        return Err(Error::UnknownKind(kind));
    }
    let at = HEADER_LEN + addr_len(addr);
    let len = at + frame.len();
    let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
    out[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    out[TOKEN_LEN] = kind;
    write_addr(addr, &mut out[HEADER_LEN..at]);
    out[at..].copy_from_slice(frame);
    Ok(len)
}

/// Writes a KeyQuery about `addr` (with `key`, a KeyAnswer saying that `addr` holds it);
/// returns its length.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` cannot hold it.
pub fn emit_key_message(
    token: Token,
    addr: SocketAddr,
    key: Option<&[u8; KEY_LEN]>,
    buf: &mut [u8],
) -> Result<usize, Error> {
    let at = HEADER_LEN + addr_len(addr);
    let len = at + key.map_or(0, |_| KEY_LEN);
    let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
    out[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    out[TOKEN_LEN] = if key.is_some() { KEY_ANSWER } else { KEY_QUERY };
    write_addr(addr, &mut out[HEADER_LEN..at]);
    if let Some(key) = key {
        out[at..].copy_from_slice(key);
    }
    Ok(len)
}

/// Writes a Challenge (`kind` [`CHALLENGE`]) or an Echo ([`ECHO`]) carrying `nonce`; returns
/// its length, [`ECHO_MESSAGE_LEN`].
///
/// # Errors
///
/// [`Error::Truncated`] if `buf` is shorter than [`ECHO_MESSAGE_LEN`], and
/// [`Error::UnknownKind`] for another `kind`.
pub fn emit_echo_message(
    token: Token,
    kind: u8,
    nonce: u64,
    buf: &mut [u8],
) -> Result<usize, Error> {
    if kind != CHALLENGE && kind != ECHO {
        return Err(Error::UnknownKind(kind));
    }
    let out = buf.get_mut(..ECHO_MESSAGE_LEN).ok_or(Error::Truncated)?;
    out[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    out[TOKEN_LEN] = kind;
    out[HEADER_LEN..].copy_from_slice(&nonce.to_be_bytes());
    Ok(ECHO_MESSAGE_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Token = match Token::new(7) {
        Ok(t) => t,
        Err(_) => Token::MAX,
    };

    fn frame() -> Vec<u8> {
        let mut f = vec![0u8; 60];
        f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        f
    }

    #[test]
    fn hello_is_golden_vector_and_round_trips() {
        let mut buf = [0u8; 48];
        let flags = FLAG_ANSWER | FLAG_RELAY | FLAG_RELAYED;
        let you: SocketAddr = "198.18.0.2:3210".parse().unwrap();
        let len = emit_hello(T, flags, 0x0102_0304_0506_0708, you, None, &mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            &[
                0, 0, 0, 0, 0, 0, 7, 0x10, 1, 7, 1, 2, 3, 4, 5, 6, 7, 8, 4, 198, 18, 0, 2, 0x0c,
                0x8a
            ]
        );
        assert_eq!(
            Extension::parse(&buf[..len]),
            Ok(Extension::Hello {
                version: 1,
                flags: 7,
                node_id: 0x0102_0304_0506_0708,
                observed: you,
                members: None,
            })
        );
        // Trailing bytes (a later version's) are ignored.
        assert!(Extension::parse(&buf[..len + 3]).is_ok());
        assert_eq!(Extension::parse(&buf[..len - 1]), Err(Error::Truncated));
        // With per-node keys the members' digest follows the address.
        let len = emit_hello(T, flags, 1, you, Some(0x1122_3344_5566_7788), &mut buf).unwrap();
        assert_eq!(
            &buf[len - 8..len],
            &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]
        );
        assert!(matches!(
            Extension::parse(&buf[..len]),
            Ok(Extension::Hello {
                members: Some(0x1122_3344_5566_7788),
                ..
            })
        ));
        // Fewer than 8 bytes after the address: no digest (and no error).
        assert!(matches!(
            Extension::parse(&buf[..len - 1]),
            Ok(Extension::Hello { members: None, .. })
        ));
    }

    #[test]
    fn relay_to_v4_is_golden_vector_and_round_trips() {
        let f = frame();
        let to: SocketAddr = "198.18.0.3:3210".parse().unwrap();
        let mut buf = [0u8; 128];
        let len = emit_relayed(T, RELAY_TO, to, &f, &mut buf).unwrap();
        assert_eq!(len, 8 + 7 + 60);
        assert_eq!(
            &buf[..15],
            &[0, 0, 0, 0, 0, 0, 7, 0x11, 4, 198, 18, 0, 3, 0x0c, 0x8a]
        );
        match Extension::parse(&buf[..len]) {
            Ok(Extension::RelayTo { to: got, frame }) => {
                assert_eq!(got, to);
                assert_eq!(frame.as_bytes(), &f[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn relayed_from_v6_round_trips() {
        let f = frame();
        let from: SocketAddr = "[fd00::5]:40000".parse().unwrap();
        let mut buf = [0u8; 128];
        let len = emit_relayed(T, RELAYED_FROM, from, &f, &mut buf).unwrap();
        assert_eq!(len, 8 + 19 + 60);
        assert_eq!(buf[7..9], [0x12, 6]);
        match Extension::parse(&buf[..len]) {
            Ok(Extension::RelayedFrom { from: got, frame }) => {
                assert_eq!(got, from);
                assert_eq!(frame.as_bytes(), &f[..]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_truncation_and_bad_family_is_refused_without_panic() {
        let f = frame();
        let mut buf = [0u8; 128];
        for addr in ["198.18.0.3:1", "[fd00::1]:2"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let len = emit_relayed(T, RELAY_TO, addr, &f, &mut buf).unwrap();
            for cut in 0..HEADER_LEN + addr_len(addr) + 14 {
                assert!(Extension::parse(&buf[..cut]).is_err(), "cut at {cut}");
            }
            assert!(Extension::parse(&buf[..len]).is_ok());
        }
        for family in [0u8, 5, 7, 255] {
            buf[HEADER_LEN] = family;
            assert_eq!(Extension::parse(&buf[..80]), Err(Error::Truncated));
        }
        assert_eq!(
            emit_relayed(T, HELLO, "198.18.0.1:1".parse().unwrap(), &f, &mut buf),
            Err(Error::UnknownKind(HELLO))
        );
        let mut small = [0u8; 20];
        assert_eq!(
            emit_relayed(T, RELAY_TO, "198.18.0.1:1".parse().unwrap(), &f, &mut small),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn key_query_and_answer_are_golden_vectors_and_round_trip() {
        let addr: SocketAddr = "198.18.0.3:3210".parse().unwrap();
        let mut buf = [0u8; 64];
        let len = emit_key_message(T, addr, None, &mut buf).unwrap();
        assert_eq!(
            &buf[..len],
            &[0, 0, 0, 0, 0, 0, 7, 0x13, 4, 198, 18, 0, 3, 0x0c, 0x8a]
        );
        assert_eq!(
            Extension::parse(&buf[..len]),
            Ok(Extension::KeyQuery { addr })
        );
        // Trailing bytes (a later version's) are ignored; a cut address is not.
        assert!(Extension::parse(&buf[..len + 2]).is_ok());
        assert_eq!(Extension::parse(&buf[..len - 1]), Err(Error::Truncated));

        let key: [u8; KEY_LEN] = core::array::from_fn(|i| i as u8);
        let v6: SocketAddr = "[fd00::5]:40000".parse().unwrap();
        let len = emit_key_message(T, v6, Some(&key), &mut buf).unwrap();
        assert_eq!(len, 8 + 19 + 32);
        assert_eq!(buf[7..9], [0x14, 6]);
        assert_eq!(&buf[27..59], &key);
        assert_eq!(
            Extension::parse(&buf[..len]),
            Ok(Extension::KeyAnswer { addr: v6, key })
        );
        for cut in 0..len {
            assert!(Extension::parse(&buf[..cut]).is_err(), "cut at {cut}");
        }
        let mut small = [0u8; 40];
        assert_eq!(
            emit_key_message(T, v6, Some(&key), &mut small),
            Err(Error::Truncated)
        );
    }

    #[test]
    fn seed_parser_still_refuses_extension_kinds() {
        for kind in [
            HELLO,
            RELAY_TO,
            RELAYED_FROM,
            KEY_QUERY,
            KEY_ANSWER,
            CHALLENGE,
            ECHO,
        ] {
            let bytes = [
                0, 0, 0, 0, 0, 0, 7, kind, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 2, 3, 4, 0, 1,
            ];
            let packet = super::super::Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(
                super::super::Message::parse(packet),
                Err(Error::UnknownKind(kind))
            );
            assert!(is_extension(kind));
        }
        assert!(!is_extension(0) && !is_extension(3) && !is_extension(0x80));
        assert!(!is_extension(0x17));
    }

    #[test]
    fn challenge_and_echo_layout() {
        let mut buf = [0u8; 32];
        let nonce = 0x0102_0304_0506_0708;
        for (kind, expected) in [
            (CHALLENGE, Extension::Challenge { nonce }),
            (ECHO, Extension::Echo { nonce }),
        ] {
            let len = emit_echo_message(T, kind, nonce, &mut buf).unwrap();
            assert_eq!(len, 16);
            assert_eq!(
                buf[..len],
                [0, 0, 0, 0, 0, 0, 7, kind, 1, 2, 3, 4, 5, 6, 7, 8]
            );
            assert_eq!(Extension::parse(&buf[..len]), Ok(expected));
            // Bytes after the nonce are ignored (room for later versions).
            assert_eq!(Extension::parse(&buf[..len + 4]), Ok(expected));
            for cut in 0..len {
                assert!(Extension::parse(&buf[..cut]).is_err(), "cut at {cut}");
            }
            assert_eq!(
                emit_echo_message(T, kind, nonce, &mut buf[..15]),
                Err(Error::Truncated)
            );
        }
        assert_eq!(
            emit_echo_message(T, KEY_QUERY, 1, &mut buf),
            Err(Error::UnknownKind(KEY_QUERY))
        );
    }
}
