//! Any bytes as a handshake message or a sealed datagram to a node with per-node keys: never a
//! panic, never a session from bytes nobody with a trusted key made, and state stays bounded.
#![no_main]

use std::net::SocketAddr;

use ethcloud::identity::handshake::{self, Identity};
use ethcloud::identity::{HandshakeEvent, IdentityConfig, SecretKey, Sessions, TrustedKeys};
use ethcloud::time::Instant;
use ethcloud::wire::Token;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = Token::new(1).unwrap();
    let mut id = Identity::new(SecretKey::from_random([1; 32]));
    id.set_trusted(&[SecretKey::from_random([2; 32]).public_key()]);
    let mut out = [0u8; 256];
    // The message functions on their own: refused or accepted, never a panic.
    let _ = handshake::check_initiation(&id, data);
    let _ = handshake::check_response(&id, data);
    let _ = handshake::respond(&id, token, data, |_| true, |_, _| true, 1, None, &mut out);

    // And through the session table, as a datagram from the network.
    let mut trusted = TrustedKeys::new();
    trusted.insert(SecretKey::from_random([2; 32]).public_key(), "two");
    let now = Instant::from_secs(1);
    let mut sessions = Sessions::new(
        Identity::new(SecretKey::from_random([1; 32])),
        token,
        trusted,
        IdentityConfig::new(Instant::ZERO, 0, 7),
        now,
    );
    let from = SocketAddr::from(([198, 18, 0, 9], 3210));
    // Arbitrary bytes cannot make an initiation from key 2 (that needs its private key).
    assert_ne!(
        sessions.on_handshake(now, from, data, &mut out),
        HandshakeEvent::Completed
    );
    let mut datagram = data.to_vec();
    assert!(sessions.open(now, from, &mut datagram).is_err());
    assert_eq!(sessions.open_sessions(), 0);
});
