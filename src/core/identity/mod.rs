//! Per-node identity (issue #12): each node its own X25519 key pair, a set of trusted public
//! keys, a Noise IK handshake that authenticates both ends and gives forward secrecy, and the
//! sessions it yields.
//!
//! Owns the identity keys, the trust set, the handshake messages and the session keys. Like the
//! rest of the core it performs no I/O, reads no clock and no random source: the caller passes
//! time, file contents and a random seed, from which [`random::Random`] draws the handshakes'
//! ephemeral keys and the cookie secrets.
//!
//! **The handshake** is `Noise_IK_25519_ChaChaPoly_BLAKE2s` with the prologue
//! `"ethcloud-ik-v1"` followed by the token's 7 wire bytes; the initiator knows the responder's
//! static public key beforehand. Every message starts with the 7-byte token in clear, so
//! several networks can share a port. All integers are big-endian; a message of any other
//! length is refused.
//!
//! ```text
//! initiation, type 0x90, 136 bytes:
//! | token 7 | 0x90 | sender_index 4 | e 32 | enc s 48 | enc timestamp 28 | mac1 16 |
//!                                    '------- noise message 1, 108 -------'
//! response, type 0x91, 80 bytes:
//! | token 7 | 0x91 | sender_index 4 | receiver_index 4 | e 32 | enc empty 16 | mac1 16 |
//!                                                       '- noise msg 2, 48 -'
//! ```
//!
//! - The sender index names the sender's handshake; the response's receiver index is the
//!   initiation's sender index. Indices are covered by mac1 only (as in WireGuard), not by
//!   Noise.
//! - The initiation's payload is a 12-byte TAI64N timestamp: 8 bytes of 2^62 + seconds since
//!   the Unix epoch, 4 bytes of nanoseconds. The responder keeps the newest timestamp per
//!   initiator key and refuses an initiation that is not newer, so a replayed initiation does
//!   nothing.
//! - mac1 is the first 16 bytes of HMAC-SHA256 keyed with SHA-256(`"ethcloud-mac1-v1"` ‖ the
//!   receiver's static public key) over all the message's bytes before it (the initiation is
//!   mac'd to the responder's key, the response to the initiator's). The receiver checks it
//!   first, so a message aimed at another key, or altered, costs one HMAC and is dropped before
//!   any Diffie-Hellman.
//! - The responder answers only an initiation whose static key it trusts. It computes the
//!   static-static Diffie-Hellman with each trusted key once, when it reads the trust set, so
//!   an initiation from a key it does not trust ends after one Diffie-Hellman (`resolver`).
//! - After the handshake both ends split the Noise state into two 32-byte keys, initiator to
//!   responder and back, and take the session ids from the handshake hash `h`:
//!   `session_i2r` = SHA-256(h ‖ `"i2r"`)\[..16\], `session_r2i` = SHA-256(h ‖ `"r2i"`)\[..16\].
//!   Each direction seals with its key and session as keyed mode does (`crypto`). Every
//!   handshake has fresh ephemeral keys, so a later handshake's keys open nothing of an
//!   earlier one's (forward secrecy).
//!
//! The parts:
//!
//! ```text
//! keys.rs             SecretKey, PublicKey, their text form, TrustedKeys and the trust file
//! handshake.rs        Identity, the two messages, mac1, Initiator, Established
//! cookie.rs           the cookie reply and mac2, for a responder over its rate limit
//! random.rs           Random: the seeded generator of ephemeral keys and cookie secrets
//!                     (HMAC-SHA256 with fast key erasure)
//! resolver.rs         the snow resolver whose X25519 reuses the node's own public key
//! session/          Sessions: the session table (mod.rs), its handshakes and timers
//!                    (handshakes.rs), its counters and table hasher (stats.rs)
//! tests_handshake.rs  the handshake's unit tests, with the golden vectors
//! tests_handshake_tamper.rs  its tests against altered, forged and truncated messages
//! ```

pub mod cookie;
pub mod handshake;
pub mod keys;
pub mod random;
mod resolver;
pub mod session;
#[cfg(test)]
mod tests_handshake;
#[cfg(test)]
mod tests_handshake_tamper;

pub use handshake::{
    check_initiation, check_response, initiate, respond, timestamp, Established, HandshakeError,
    Identity, Initiator, INITIATION, INITIATION_LEN, RESPONSE, RESPONSE_LEN, TIMESTAMP_LEN,
};
pub use keys::{KeyTextError, PublicKey, SecretKey, TrustError, TrustedKeys};
pub use session::{HandshakeEvent, IdentityConfig, SealOutcome, Seed, SessionStats, Sessions};
