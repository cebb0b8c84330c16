//! Property tests of the wire format: parse(emit(x)) == x for every message kind, and arbitrary
//! bytes never panic the parsers.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use ethcloud::wire::{self, Frame, Kind, Message, Packet, Token, HEADER_LEN};
use proptest::prelude::*;

fn token() -> impl Strategy<Value = Token> {
    (0u64..=Token::MAX.get()).prop_map(|t| Token::new(t).unwrap())
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<u32>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv4Addr::from(ip), port))),
        (any::<u128>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::from((Ipv6Addr::from(ip), port))),
    ]
}

proptest! {
    #[test]
    fn control_messages_round_trip(t in token(), close in any::<bool>(), trailing in proptest::collection::vec(any::<u8>(), 0..16)) {
        let kind = if close { Kind::Close } else { Kind::GetPeers };
        let mut buf = vec![0u8; HEADER_LEN];
        let len = wire::emit_control(t, kind, &mut buf).unwrap();
        buf.extend_from_slice(&trailing);
        let pkt = Packet::new_checked(&buf[..]).unwrap();
        prop_assert_eq!(len, HEADER_LEN);
        prop_assert_eq!(pkt.token(), t);
        let msg = Message::parse(pkt).unwrap();
        prop_assert_eq!(msg.kind(), kind);
    }

    #[test]
    fn frames_round_trip_verbatim(t in token(), frame in proptest::collection::vec(any::<u8>(), 14..2000)) {
        prop_assume!(Frame::new_checked(&frame[..]).is_ok());
        let mut buf = vec![0u8; HEADER_LEN + frame.len()];
        let len = wire::emit_frame(t, &frame, &mut buf).unwrap();
        let pkt = Packet::new_checked(&buf[..len]).unwrap();
        prop_assert_eq!(pkt.token(), t);
        match Message::parse(pkt).unwrap() {
            Message::Frame(f) => prop_assert_eq!(f.as_bytes(), &frame[..]),
            other => prop_assert!(false, "not a frame: {:?}", other),
        }
    }

    #[test]
    fn peer_lists_round_trip(t in token(), addrs in proptest::collection::vec(addr(), 0..600)) {
        let mut buf = vec![0u8; HEADER_LEN + wire::peers::MAX_PEER_LIST_BODY_LEN];
        let (len, n) = wire::emit_peers(t, addrs.iter().copied(), &mut buf).unwrap();
        let v4: Vec<SocketAddr> = addrs.iter().copied().filter(SocketAddr::is_ipv4).take(255).collect();
        let v6: Vec<SocketAddr> = addrs.iter().copied().filter(SocketAddr::is_ipv6).take(255).collect();
        prop_assert_eq!(n, v4.len() + v6.len());
        let pkt = Packet::new_checked(&buf[..len]).unwrap();
        match Message::parse(pkt).unwrap() {
            Message::Peers(list) => {
                let got: Vec<SocketAddr> = list.iter().collect();
                let want: Vec<SocketAddr> = v4.into_iter().chain(v6).collect();
                prop_assert_eq!(got, want);
            }
            other => prop_assert!(false, "not a peer list: {:?}", other),
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..3000)) {
        if let Ok(pkt) = Packet::new_checked(&bytes[..]) {
            let _ = pkt.token();
            if let Ok(Message::Peers(list)) = Message::parse(pkt) {
                prop_assert!(list.iter().count() <= 510);
            }
        }
    }

    #[test]
    fn relay_messages_round_trip(
        t in token(),
        to_relay in any::<bool>(),
        a in addr(),
        frame in proptest::collection::vec(any::<u8>(), 14..1600),
        flags in any::<u8>(),
        id in any::<u64>(),
    ) {
        use ethcloud::wire::relay::{self, Extension};
        let mut buf = vec![0u8; 2000];
        let kind = if to_relay { relay::RELAY_TO } else { relay::RELAYED_FROM };
        let len = relay::emit_relayed(t, kind, a, &frame, &mut buf).unwrap();
        match Extension::parse(&buf[..len]) {
            Ok(Extension::RelayTo { to: got, frame: f }) | Ok(Extension::RelayedFrom { from: got, frame: f }) => {
                prop_assert_eq!(got, a);
                prop_assert_eq!(f.as_bytes(), &frame[..]);
                prop_assert_eq!(buf[wire::TOKEN_LEN], kind);
            }
            other => prop_assert!(false, "{:?}", other),
        }
        let members = (id % 2 == 0).then_some(id.rotate_left(17));
        let len = relay::emit_hello(t, flags, id, a, members, &mut buf).unwrap();
        prop_assert_eq!(
            Extension::parse(&buf[..len]),
            Ok(Extension::Hello { version: relay::HELLO_VERSION, flags, node_id: id, observed: a, members })
        );
        // Every prefix shorter than the address's end is refused, never a panic; a cut
        // members' digest is no digest.
        let without = len - members.map_or(0, |_| 8);
        for cut in 0..without {
            prop_assert!(Extension::parse(&buf[..cut]).is_err());
        }
        for cut in without..len {
            let cut_digest = matches!(Extension::parse(&buf[..cut]), Ok(Extension::Hello { members: None, .. }));
            prop_assert!(cut_digest, "cut at {}", cut);
        }
        // KeyQuery and KeyAnswer: round trip, and every cut one is refused.
        let key: [u8; relay::KEY_LEN] = core::array::from_fn(|i| (id >> (i % 8)) as u8 ^ flags);
        for named in [None, Some(&key)] {
            let len = relay::emit_key_message(t, a, named, &mut buf).unwrap();
            let parsed = Extension::parse(&buf[..len]);
            match named {
                None => prop_assert_eq!(parsed, Ok(Extension::KeyQuery { addr: a })),
                Some(k) => prop_assert_eq!(parsed, Ok(Extension::KeyAnswer { addr: a, key: *k })),
            }
            for cut in 0..len {
                prop_assert!(Extension::parse(&buf[..cut]).is_err(), "cut at {}", cut);
            }
        }
        // Challenge and Echo (network key): round trip, and every cut one is refused.
        for kind in [relay::CHALLENGE, relay::ECHO] {
            let len = relay::emit_echo_message(t, kind, id, &mut buf).unwrap();
            let expected = if kind == relay::CHALLENGE {
                Extension::Challenge { nonce: id }
            } else {
                Extension::Echo { nonce: id }
            };
            prop_assert_eq!(Extension::parse(&buf[..len]), Ok(expected));
            for cut in 0..len {
                prop_assert!(Extension::parse(&buf[..cut]).is_err(), "cut at {}", cut);
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_relay_parser(kind in 0x10u8..=0x16, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut datagram = vec![0u8, 0, 0, 0, 0, 0, 7, kind];
        datagram.extend_from_slice(&bytes);
        let _ = ethcloud::wire::relay::Extension::parse(&datagram);
    }
}
