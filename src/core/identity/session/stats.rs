//! The identity mode's counters ([`SessionStats`]) and the hasher of its per-packet tables
//! ([`FastHasher`]).
//!
//! Owns their definitions only: the sessions count, the status renders; nothing here
//! decides anything or touches a session.

use std::collections::HashMap;

/// A fast hasher for the session tables, which are looked up for every packet. They hold
/// only what authenticated handshakes and packets inserted (trusted keys, their addresses and
/// their sessions), but a member chooses the addresses it sends from (every port, and the
/// host part of an IPv6 /64): so the hash starts from a secret seed of the run
/// ([`FastBuildHasher`]) and ends with MurmurHash3's finaliser, which spreads every bit of
/// the state into the low bits the table indexes with. Without the seed, addresses cannot
/// be chosen to fall into one bucket; SipHash would cost several times more per packet.
#[derive(Clone, Copy, Default)]
pub struct FastHasher(u64);

impl core::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
        }
        for b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(*b)).wrapping_mul(K);
        }
    }
}

/// Makes [`FastHasher`]s that start from this run's secret seed (no `Default`: a map must
/// be given its seed).
#[derive(Clone, Copy)]
pub struct FastBuildHasher(u64);

impl FastBuildHasher {
    /// Hashers seeded with `seed` (secret, random per run).
    pub fn new(seed: u64) -> FastBuildHasher {
        FastBuildHasher(seed)
    }
}

impl core::hash::BuildHasher for FastBuildHasher {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

pub(super) type FastMap<K, V> = HashMap<K, V, FastBuildHasher>;

/// Counters of the identity mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Initiations sent.
    pub initiations_sent: u64,
    /// Responses sent (initiations accepted).
    pub responses_sent: u64,
    /// Sessions made (either role).
    pub sessions_made: u64,
    /// Sessions made that replaced a session with the same key: renewals, and the second of
    /// two first sessions when both ends initiated at once (it replaces the first).
    pub rekeys: u64,
    /// Handshake messages with a bad length, type or mac1 (aimed at another key, or altered).
    pub handshakes_invalid: u64,
    /// Handshake messages whose Noise payload did not open (wrong keys, impersonation).
    pub handshakes_forged: u64,
    /// Initiations from keys we do not trust.
    pub handshakes_untrusted: u64,
    /// Initiations with a timestamp not newer than the last one of their key (replays).
    pub handshakes_replayed: u64,
    /// Initiations not looked at because their source was over its rate limit.
    pub handshakes_rate_limited: u64,
    /// Responses to no handshake of ours.
    pub responses_unexpected: u64,
    /// Datagrams not sent because no session exists with their address.
    pub no_session: u64,
    /// Keys removed from the trusted set while they had sessions (current, next, or one
    /// still opened): one per key, whose sessions were all dropped.
    pub revoked: u64,
    /// Sending sessions switched to AEGIS-128L or AEGIS-128X4 because the peer's Hello said
    /// it opens it.
    pub aegis_switches: u64,
    /// Initiations and datagrams of one trusted key from an address another trusted key still
    /// uses (a member posing as another), refused.
    pub address_in_use: u64,
    /// Cookie replies sent to initiations over the rate limit that did not prove their source.
    pub cookies_sent: u64,
    /// Cookie replies to our own initiations, opened and kept.
    pub cookies_received: u64,
    /// Cookie replies to no initiation of ours, from elsewhere, or that did not open (among
    /// them the replies to initiations others forged with our address).
    pub cookies_unexpected: u64,
    /// Initiations whose mac2 proved that their sender receives at their source address.
    pub initiations_proven: u64,
    /// Probes (initiations to an address whose key is unknown) put off: over the budget of
    /// [`MAX_PROBES_PER_SECOND`](super::MAX_PROBES_PER_SECOND), or no room in flight that
    /// only a handshake with a known key could have made.
    pub probes_deferred: u64,
}

impl SessionStats {
    /// Every counter with its name (as in the stats file) and a one-line description.
    pub fn named(&self) -> [(&'static str, u64, &'static str); 19] {
        [
            (
                "handshake_initiations_sent",
                self.initiations_sent,
                "Handshake initiations sent.",
            ),
            (
                "handshake_responses_sent",
                self.responses_sent,
                "Handshake initiations accepted and answered.",
            ),
            (
                "sessions_made",
                self.sessions_made,
                "Sessions made with a trusted key (either role).",
            ),
            (
                "session_rekeys",
                self.rekeys,
                "Sessions that replaced an older one with the same key.",
            ),
            (
                "handshakes_invalid",
                self.handshakes_invalid,
                "Handshake messages with a bad length, type or mac1.",
            ),
            (
                "handshakes_forged",
                self.handshakes_forged,
                "Handshake messages that failed Noise authentication.",
            ),
            (
                "handshakes_untrusted",
                self.handshakes_untrusted,
                "Initiations from keys not trusted.",
            ),
            (
                "handshakes_replayed",
                self.handshakes_replayed,
                "Initiations with an old timestamp (replays).",
            ),
            (
                "handshakes_rate_limited",
                self.handshakes_rate_limited,
                "Initiations over the rate limit, not looked at.",
            ),
            (
                "handshake_responses_unexpected",
                self.responses_unexpected,
                "Responses to no handshake of ours.",
            ),
            (
                "sends_without_session",
                self.no_session,
                "Datagrams not sent: no session with the address yet.",
            ),
            (
                "sessions_revoked",
                self.revoked,
                "Keys no longer trusted whose sessions were dropped (one per key).",
            ),
            (
                "sessions_switched_to_aegis",
                self.aegis_switches,
                "Sending sessions switched to AEGIS-128L or AEGIS-128X4 (the peer opens it).",
            ),
            (
                "sessions_address_in_use",
                self.address_in_use,
                "Initiations and datagrams of one key from an address another key uses, refused.",
            ),
            (
                "handshake_cookies_sent",
                self.cookies_sent,
                "Cookie replies sent to initiations over the rate limit.",
            ),
            (
                "handshake_cookies_received",
                self.cookies_received,
                "Cookie replies to our initiations, kept.",
            ),
            (
                "handshake_cookies_unexpected",
                self.cookies_unexpected,
                "Cookie replies to no initiation of ours, or that did not open.",
            ),
            (
                "handshakes_proven",
                self.initiations_proven,
                "Initiations whose mac2 proved their source address.",
            ),
            (
                "handshake_probes_deferred",
                self.probes_deferred,
                "Initiations to addresses of unknown keys put off (over 1024 a second, or no room).",
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::BuildHasher;
    use std::net::SocketAddr;

    /// The table index (low bits) of each address, under `seed`.
    fn buckets(seed: u64, addrs: &[SocketAddr]) -> std::collections::BTreeSet<u64> {
        let build = FastBuildHasher::new(seed);
        addrs.iter().map(|a| build.hash_one(a) & 1023).collect()
    }

    #[test]
    fn addresses_a_member_chooses_in_its_64_spread_over_the_table_under_any_seed() {
        // 1,000 addresses of one /64 that differ only in the top byte of the host part and
        // the port's top byte: what a member picks to make them collide.
        let addrs: Vec<SocketAddr> = (0..1000u32)
            .map(|i| {
                let [_, _, hi, lo] = i.to_be_bytes();
                let ip = std::net::Ipv6Addr::new(0xfd00, 0, 0, 0, u16::from(lo) << 8, 0, 0, 1);
                SocketAddr::from((ip, u16::from(hi) << 8 | 0x42))
            })
            .collect();
        for seed in [0, 1, 0x9e37_79b9_7f4a_7c15] {
            let used = buckets(seed, &addrs).len();
            // Random placement fills about 640 of 1,024 buckets with 1,000 keys.
            assert!(used >= 550, "seed {seed:#x}: {used} buckets of 1024");
        }
        // Addresses found offline to share a bucket under the unseeded hash without the
        // finaliser (what the tables used before): spread under the seeded one.
        struct Unseeded(u64);
        impl core::hash::Hasher for Unseeded {
            fn finish(&self) -> u64 {
                self.0
            }
            fn write(&mut self, bytes: &[u8]) {
                let mut inner = FastHasher(self.0);
                inner.write(bytes);
                self.0 = inner.0;
            }
        }
        let unseeded = |a: &SocketAddr| {
            let mut h = Unseeded(0);
            core::hash::Hash::hash(a, &mut h);
            core::hash::Hasher::finish(&h) & 1023
        };
        let crafted: Vec<SocketAddr> = (0..2_000_000u64)
            .map(|i| {
                let ip = std::net::Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(i));
                SocketAddr::from((ip, 3210))
            })
            .filter(|a| unseeded(a) == 0)
            .take(200)
            .collect();
        assert_eq!(crafted.len(), 200, "the old hash is easy to collide");
        for seed in [1u64, 0x9e37_79b9_7f4a_7c15] {
            let used = buckets(seed, &crafted).len();
            // Random placement fills about 182 of 1,024 buckets with 200 keys.
            assert!(used >= 150, "seed {seed:#x}: {used} buckets");
        }
        // And the seed moves them: one address's bucket under two seeds differs for most.
        let moved = addrs
            .iter()
            .filter(|a| {
                let [x, y] = [1u64, 2].map(|s| FastBuildHasher::new(s).hash_one(a) & 1023);
                x != y
            })
            .count();
        assert!(moved > 900, "{moved}");
    }
}
