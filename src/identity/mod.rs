//! Per-node identity (issue #12): each node its own X25519 key pair, a set of trusted public
//! keys, a Noise IK handshake that authenticates both ends and gives forward secrecy, and the
//! sessions it yields.
//!
//! Owns the identity keys, the trust set, the handshake messages and the session keys. Like the
//! rest of the core it performs no I/O and reads no clock or RNG: the caller passes time,
//! random bytes and file contents.

pub mod handshake;
pub mod keys;
pub mod session;

pub use handshake::{Established, HandshakeError, Identity};
pub use keys::{KeyTextError, PublicKey, SecretKey, TrustError, TrustedKeys};
pub use session::{HandshakeEvent, IdentityConfig, SealOutcome, SessionStats, Sessions};
