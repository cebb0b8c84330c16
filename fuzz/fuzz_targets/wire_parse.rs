//! Any bytes through the wire parsers (the seed's messages, and the relay extension's that
//! sealed datagrams carry): never a panic; whatever parses re-emits to the same message.
#![no_main]

use ethcloud::wire::relay::{self, Extension};
use ethcloud::wire::{self, Message, Packet, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packet) = Packet::new_checked(data) else {
        assert!(data.len() < HEADER_LEN);
        return;
    };
    let token = packet.token();
    if relay::is_extension(packet.kind_byte()) {
        let mut buf = vec![0u8; data.len() + 64];
        match Extension::parse(data) {
            Ok(Extension::Hello {
                version,
                flags,
                node_id,
                observed,
                members,
            }) => {
                let len =
                    relay::emit_hello(token, flags, node_id, observed, members, &mut buf).unwrap();
                // We write version 1; any other version parses the same (later versions keep
                // these fields and add theirs behind).
                buf[HEADER_LEN] = version;
                assert_eq!(&buf[..len], &data[..len]);
            }
            Ok(Extension::RelayTo { to: addr, frame })
            | Ok(Extension::RelayedFrom { from: addr, frame }) => {
                let kind = packet.kind_byte();
                let len =
                    relay::emit_relayed(token, kind, addr, frame.as_bytes(), &mut buf).unwrap();
                assert_eq!(&buf[..len], data);
            }
            Ok(Extension::KeyQuery { addr }) => {
                let len = relay::emit_key_message(token, addr, None, &mut buf).unwrap();
                // Trailing bytes (a later version's) are ignored.
                assert_eq!(&buf[..len], &data[..len]);
            }
            Ok(Extension::KeyAnswer { addr, key }) => {
                let len = relay::emit_key_message(token, addr, Some(&key), &mut buf).unwrap();
                assert_eq!(&buf[..len], &data[..len]);
            }
            Ok(Extension::Challenge { nonce }) | Ok(Extension::Echo { nonce }) => {
                let kind = packet.kind_byte();
                let len = relay::emit_echo_message(token, kind, nonce, &mut buf).unwrap();
                assert_eq!(&buf[..len], &data[..len]);
            }
            Err(_) => {}
        }
        return;
    }
    let Ok(message) = Message::parse(packet) else {
        return;
    };
    let mut buf = vec![0u8; data.len() + 16];
    match message {
        Message::Frame(frame) => {
            let _ = (frame.dst(), frame.src(), frame.vlan());
            let len = wire::emit_frame(token, frame.as_bytes(), &mut buf).unwrap();
            assert_eq!(&buf[..len], data);
        }
        Message::Peers(list) => {
            let addrs: Vec<_> = list.iter().collect();
            assert_eq!(addrs.len(), list.len());
            let mut out = vec![0u8; HEADER_LEN + wire::peers::MAX_PEER_LIST_BODY_LEN];
            let (len, n) = wire::emit_peers(token, addrs.iter().copied(), &mut out).unwrap();
            assert_eq!(n, addrs.len());
            // the re-emitted list is the original without any trailing bytes
            assert_eq!(&out[..len], &data[..len]);
        }
        Message::GetPeers | Message::Close => {
            let len = wire::emit_control(token, message.kind(), &mut buf).unwrap();
            assert_eq!(&buf[..len], &data[..HEADER_LEN]);
        }
    }
});
