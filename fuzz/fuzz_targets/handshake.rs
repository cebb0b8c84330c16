//! Any bytes as a handshake message or a sealed datagram to a node with per-node keys: never a
//! panic, never a session from bytes nobody with a trusted key made, and state stays bounded.
#![no_main]

use std::net::SocketAddr;

use ethcloud::identity::cookie::{self, CookieSecret};
use ethcloud::identity::handshake::{self, Identity};
use ethcloud::identity::random::Random;
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
    let _ = handshake::respond(
        &id,
        token,
        data,
        |_| true,
        |_, _| true,
        1,
        &[5; 32],
        &mut out,
    );
    // The cookie reply and mac2 (an initiation of 152 bytes), both ways.
    let from = SocketAddr::from(([198, 18, 0, 9], 3210));
    let _ = cookie::reply_receiver(data);
    let mut initiation = [0u8; handshake::INITIATION_LEN];
    let len = initiation.len().min(data.len());
    initiation[..len].copy_from_slice(&data[..len]);
    let _ = cookie::open_reply(token, &id.public(), &initiation, data);
    let mut secret = CookieSecret::new(&id.public(), Instant::ZERO, Random::new(&[6; 32], b"fuzz"));
    let _ = secret.proves(Instant::from_secs(1), from, data);
    let _ = secret.write_reply(Instant::from_secs(1), from, data, &mut out);

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
    // A handshake of ours in flight to `from`, so that a cookie reply has something to
    // answer.
    sessions.want(now, from);
    sessions.flush(now, &mut |_, _| {});
    // Arbitrary bytes cannot make an initiation from key 2 (that needs its private key), nor
    // a cookie reply that opens for the initiation in flight (whose mac1, the associated
    // data, depends on an ephemeral key the input never sees).
    let event = sessions.on_handshake(now, from, data, &mut out);
    assert!(
        !matches!(
            event,
            HandshakeEvent::Completed | HandshakeEvent::Answered(..) | HandshakeEvent::Retried(_)
        ),
        "{event:?}"
    );
    let mut datagram = data.to_vec();
    assert!(sessions.open(now, from, &mut datagram).is_err());
    assert_eq!(sessions.open_sessions(), 0);
});
