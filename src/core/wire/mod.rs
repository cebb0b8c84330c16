//! The ethcloud wire protocol (spec: "NETWORK PROTOCOL"): parsing and emitting datagrams.
//!
//! Owns the byte layout and nothing else: no decisions about whom to send to, no I/O.
//! Parsing goes through checked, zero-copy views: [`Packet::new_checked`] proves the header is
//! there, then [`Message::parse`] proves the body matches its kind; after that no accessor can
//! fail. Every `parse` has an `emit` twin that writes into a caller's buffer.
//!
//! ```text
//! | token: 7 bytes, big-endian | switch: u8 | body ...
//!   switch 0 = Frame     body: one Ethernet frame (dst MAC first, no preamble/FCS)
//!   switch 1 = Peers     body: see `peers`
//!   switch 2 = GetPeers  body: empty (trailing bytes ignored)
//!   switch 3 = Close     body: empty (trailing bytes ignored)
//! ```
//!
//! The token's byte order is not written in the seed spec; like the 2015 reference, which packs
//! `(token << 8) | switch` into one big-endian `u64`, ethcloud sends the low 56 bits of the
//! token big-endian.
//!
//! ```
//! use ethcloud::wire::{emit_control, Kind, Message, Packet, Token};
//! let token = Token::new(134).unwrap();
//! let mut buf = [0u8; 8];
//! let len = emit_control(token, Kind::GetPeers, &mut buf).unwrap();
//! assert_eq!(&buf[..len], &[0, 0, 0, 0, 0, 0, 134, 2]);
//! let pkt = Packet::new_checked(&buf[..len]).unwrap();
//! assert_eq!(pkt.token(), token);
//! assert_eq!(Message::parse(pkt), Ok(Message::GetPeers));
//! ```

pub mod ethernet;
pub mod peers;
pub mod relay;

use core::fmt;

pub use ethernet::{Frame, Mac, VlanId};
pub use peers::{emit_peer_list, PeerList};

/// Bytes of the network token.
pub const TOKEN_LEN: usize = 7;
/// Bytes of the whole header: token and switch byte.
pub const HEADER_LEN: usize = TOKEN_LEN + 1;
/// The longest datagram ethcloud handles (the IPv4 UDP payload limit).
pub const MAX_DATAGRAM_LEN: usize = 65_507;
/// The longest Ethernet frame that fits in one datagram.
pub const MAX_FRAME_LEN: usize = MAX_DATAGRAM_LEN - HEADER_LEN;

/// Why bytes could not be parsed. Small and `Copy`, so it can be counted per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// The datagram or a peer list ends before its declared content.
    Truncated,
    /// The switch byte is not 0..=3.
    UnknownKind(u8),
    /// A frame shorter than an Ethernet header.
    FrameTooShort,
    /// A frame with TPID 0x8100 that ends inside its 802.1Q tag.
    TruncatedVlanTag,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Truncated => f.write_str("truncated packet"),
            Error::UnknownKind(k) => write!(f, "unknown switch byte {k}"),
            Error::FrameTooShort => f.write_str("frame shorter than an ethernet header"),
            Error::TruncatedVlanTag => f.write_str("frame cut inside its 802.1q tag"),
        }
    }
}

impl std::error::Error for Error {}

/// The network token: the low 56 bits of the configured number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Token(u64);

/// A number of 2^56 or more was given as a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenTooLarge(pub u64);

impl fmt::Display for TokenTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "token {} does not fit in 7 bytes (the largest is {})",
            self.0,
            Token::MAX.0
        )
    }
}

impl std::error::Error for TokenTooLarge {}

impl Token {
    /// The largest token, 2^56 - 1.
    pub const MAX: Token = Token((1 << 56) - 1);

    /// Makes a token.
    ///
    /// # Errors
    ///
    /// [`TokenTooLarge`] for values of 2^56 or more, which 7 bytes cannot carry.
    pub const fn new(value: u64) -> Result<Token, TokenTooLarge> {
        if value > Token::MAX.0 {
            Err(TokenTooLarge(value))
        } else {
            Ok(Token(value))
        }
    }

    /// The numeric value.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The 7 bytes as they go on the wire, big-endian.
    pub fn to_bytes(self) -> [u8; TOKEN_LEN] {
        let be = self.0.to_be_bytes();
        let mut out = [0u8; TOKEN_LEN];
        out.copy_from_slice(&be[1..]);
        out
    }

    /// Reads a token from its 7 wire bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_LEN]) -> Token {
        let mut be = [0u8; 8];
        be[1..].copy_from_slice(&bytes);
        Token(u64::from_be_bytes(be))
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The switch byte: what the body holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u8)]
pub enum Kind {
    /// An Ethernet frame (0).
    Frame = 0,
    /// The sender's peer list (1).
    Peers = 1,
    /// A request for the receiver's peer list (2).
    GetPeers = 2,
    /// The sender is leaving (3).
    Close = 3,
}

impl TryFrom<u8> for Kind {
    type Error = Error;
    fn try_from(value: u8) -> Result<Kind, Error> {
        match value {
            0 => Ok(Kind::Frame),
            1 => Ok(Kind::Peers),
            2 => Ok(Kind::GetPeers),
            3 => Ok(Kind::Close),
            other => Err(Error::UnknownKind(other)),
        }
    }
}

/// A checked view of a datagram: it is at least [`HEADER_LEN`] bytes long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Checks the header is present.
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] when `buffer` is shorter than [`HEADER_LEN`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>, Error> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    /// The token in the first 7 bytes.
    pub fn token(&self) -> Token {
        let mut bytes = [0u8; TOKEN_LEN];
        if let Some(src) = self.buffer.as_ref().get(..TOKEN_LEN) {
            bytes.copy_from_slice(src);
        }
        Token::from_bytes(bytes)
    }

    /// The raw switch byte.
    pub fn kind_byte(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(TOKEN_LEN)
            .copied()
            .unwrap_or(u8::MAX)
    }

    /// Everything after the switch byte.
    pub fn body(&self) -> &[u8] {
        self.buffer.as_ref().get(HEADER_LEN..).unwrap_or(&[])
    }
}

/// A parsed datagram body, borrowing the datagram's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// An Ethernet frame with at least a whole header.
    Frame(Frame<&'a [u8]>),
    /// A peer list whose counts fit its bytes.
    Peers(PeerList<'a>),
    /// A request for our peer list.
    GetPeers,
    /// The sender is leaving.
    Close,
}

impl<'a> Message<'a> {
    /// Parses the body according to the switch byte.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownKind`] for a switch byte above 3; the frame and peer-list errors for a
    /// body that does not hold what its kind requires.
    pub fn parse(packet: Packet<&'a [u8]>) -> Result<Message<'a>, Error> {
        let body = packet.buffer.get(HEADER_LEN..).unwrap_or(&[]);
        match Kind::try_from(packet.kind_byte())? {
            Kind::Frame => Ok(Message::Frame(Frame::new_checked(body)?)),
            Kind::Peers => Ok(Message::Peers(PeerList::parse(body)?)),
            Kind::GetPeers => Ok(Message::GetPeers),
            Kind::Close => Ok(Message::Close),
        }
    }

    /// The kind of this message.
    pub fn kind(&self) -> Kind {
        match self {
            Message::Frame(_) => Kind::Frame,
            Message::Peers(_) => Kind::Peers,
            Message::GetPeers => Kind::GetPeers,
            Message::Close => Kind::Close,
        }
    }
}

/// Writes the 8-byte header into `buf[..HEADER_LEN]`.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` is shorter than [`HEADER_LEN`].
pub fn emit_header(token: Token, kind: Kind, buf: &mut [u8]) -> Result<(), Error> {
    let header = buf.get_mut(..HEADER_LEN).ok_or(Error::Truncated)?;
    header[..TOKEN_LEN].copy_from_slice(&token.to_bytes());
    header[TOKEN_LEN] = kind as u8;
    Ok(())
}

/// Writes a body-less message (`GetPeers` or `Close`) and returns its length, [`HEADER_LEN`].
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` is shorter than [`HEADER_LEN`].
pub fn emit_control(token: Token, kind: Kind, buf: &mut [u8]) -> Result<usize, Error> {
    emit_header(token, kind, buf)?;
    Ok(HEADER_LEN)
}

/// Writes a whole frame message (header then `frame`) and returns its length.
///
/// The packet path does not use this (it writes the header in front of a frame already in
/// place); it exists for tests, tools and round trips.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` cannot hold the header and the frame.
pub fn emit_frame(token: Token, frame: &[u8], buf: &mut [u8]) -> Result<usize, Error> {
    let len = HEADER_LEN + frame.len();
    emit_header(token, Kind::Frame, buf)?;
    buf.get_mut(HEADER_LEN..len)
        .ok_or(Error::Truncated)?
        .copy_from_slice(frame);
    Ok(len)
}

/// Writes a whole peer-list message and returns its length and the number of addresses written.
///
/// # Errors
///
/// [`Error::Truncated`] when `buf` cannot hold the header and both count bytes.
pub fn emit_peers<I>(token: Token, addrs: I, buf: &mut [u8]) -> Result<(usize, usize), Error>
where
    I: Iterator<Item = std::net::SocketAddr> + Clone,
{
    if buf.len() < HEADER_LEN + 2 {
        return Err(Error::Truncated);
    }
    emit_header(token, Kind::Peers, buf)?;
    let body = buf.get_mut(HEADER_LEN..).ok_or(Error::Truncated)?;
    let (len, n) = emit_peer_list(addrs, body);
    Ok((HEADER_LEN + len, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Message<'_>, Error> {
        Message::parse(Packet::new_checked(bytes)?)
    }

    #[test]
    fn token_134_get_peers_is_golden_vector() {
        let mut buf = [0u8; 16];
        let len = emit_control(Token::new(134).unwrap(), Kind::GetPeers, &mut buf).unwrap();
        assert_eq!(&buf[..len], &[0, 0, 0, 0, 0, 0, 0x86, 0x02]);
    }

    #[test]
    fn token_12345_frame_header_is_golden_vector() {
        let mut buf = [0u8; 64];
        let frame = [0u8; 14];
        let len = emit_frame(Token::new(12345).unwrap(), &frame, &mut buf).unwrap();
        assert_eq!(len, 22);
        assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0x30, 0x39, 0x00]);
    }

    #[test]
    fn token_uses_all_seven_bytes_big_endian() {
        let t = Token::new(0x0011_2233_4455_6677).unwrap();
        assert_eq!(t.to_bytes(), [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77]);
        assert_eq!(Token::from_bytes(t.to_bytes()), t);
        assert_eq!(Token::MAX.to_bytes(), [0xff; 7]);
    }

    #[test]
    fn token_of_two_to_the_56_is_refused() {
        assert_eq!(Token::new(1 << 56), Err(TokenTooLarge(1 << 56)));
        assert_eq!(Token::new(u64::MAX), Err(TokenTooLarge(u64::MAX)));
        assert!(Token::new((1 << 56) - 1).is_ok());
        assert!(TokenTooLarge(1 << 56).to_string().contains("7 bytes"));
    }

    #[test]
    fn close_and_get_peers_round_trip_and_tolerate_trailing_bytes() {
        let t = Token::new(7).unwrap();
        for (kind, msg) in [
            (Kind::Close, Message::Close),
            (Kind::GetPeers, Message::GetPeers),
        ] {
            let mut buf = [0xeeu8; 12];
            let len = emit_control(t, kind, &mut buf).unwrap();
            assert_eq!(parse(&buf[..len]), Ok(msg));
            assert_eq!(parse(&buf[..]), Ok(msg), "trailing bytes are ignored");
            assert_eq!(msg.kind(), kind);
        }
    }

    #[test]
    fn frame_round_trips_verbatim() {
        let t = Token::new(1).unwrap();
        let frame: Vec<u8> = (0..60u8).collect();
        let mut buf = [0u8; 128];
        let len = emit_frame(t, &frame, &mut buf).unwrap();
        match parse(&buf[..len]) {
            Ok(Message::Frame(f)) => assert_eq!(f.as_bytes(), &frame[..]),
            other => panic!("not a frame: {other:?}"),
        }
    }

    #[test]
    fn peers_round_trip_through_whole_message() {
        let t = Token::new(99).unwrap();
        let addrs: Vec<std::net::SocketAddr> = vec![
            "198.18.1.2:3210".parse().unwrap(),
            "[fd00::7]:9".parse().unwrap(),
        ];
        let mut buf = [0u8; 256];
        let (len, n) = emit_peers(t, addrs.iter().copied(), &mut buf).unwrap();
        assert_eq!(n, 2);
        match parse(&buf[..len]) {
            Ok(Message::Peers(list)) => assert_eq!(list.iter().collect::<Vec<_>>(), addrs),
            other => panic!("not a peer list: {other:?}"),
        }
    }

    #[test]
    fn packet_shorter_than_header_is_truncated() {
        let bytes = [0u8; HEADER_LEN];
        for len in 0..HEADER_LEN {
            assert_eq!(Packet::new_checked(&bytes[..len]), Err(Error::Truncated));
        }
    }

    #[test]
    fn unknown_switch_byte_is_rejected() {
        for k in 4..=255u8 {
            let bytes = [0, 0, 0, 0, 0, 0, 0, k];
            assert_eq!(parse(&bytes), Err(Error::UnknownKind(k)));
        }
    }

    #[test]
    fn frame_message_with_short_frame_is_rejected() {
        let mut bytes = vec![0u8; HEADER_LEN + 13];
        assert_eq!(parse(&bytes), Err(Error::FrameTooShort));
        bytes.resize(HEADER_LEN + 14, 0);
        bytes[HEADER_LEN + 12] = 0x81;
        assert_eq!(parse(&bytes), Err(Error::TruncatedVlanTag));
    }

    #[test]
    fn seeded_random_datagrams_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut buf = [0u8; 300];
        for _ in 0..20_000 {
            let len = usize::try_from(next() % 300).unwrap();
            for b in buf.iter_mut().take(len) {
                *b = u8::try_from(next() & 0xff).unwrap();
            }
            // bias the switch byte towards valid kinds so the bodies get exercised
            if len > TOKEN_LEN {
                buf[TOKEN_LEN] %= 5;
            }
            if let Ok(Message::Peers(list)) = parse(&buf[..len]) {
                assert!(list.iter().count() <= 510);
            }
        }
    }
}
