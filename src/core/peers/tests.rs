//! Unit tests of the peer bookkeeping as a whole: the address rules, the peer table, the
//! Trickle and sweep pacing, and the contacts' back-off.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::time::Instant;

fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([198, 18, 0, n], 3210))
}

#[test]
fn canonical_unmaps_ipv4_mapped_addresses() {
    let mapped: SocketAddr = "[::ffff:198.18.0.1]:3210".parse().unwrap();
    assert_eq!(canonical(mapped), addr(1));
    let v6: SocketAddr = "[fd00::1]:3210".parse().unwrap();
    assert_eq!(canonical(v6), v6);
}

#[test]
fn unusable_addresses_are_recognised() {
    for bad in [
        "0.0.0.0:3210",
        "224.0.0.1:3210",
        "255.255.255.255:3210",
        "[::]:3210",
        "[ff02::1]:3210",
        "[fe80::1]:3210",
        "198.18.0.1:0",
        "[::198.18.0.2]:3210",
        "[::127.0.0.1]:3210",
        "[::2]:3210",
    ] {
        assert!(is_unusable(bad.parse().unwrap()), "{bad}");
    }
    assert!(!is_unusable(addr(1)));
    for good in [
        "[::1]:3210",
        "[fd00::2]:3210",
        "[::ffff:198.18.0.2]:3210",
        "[1::]:3210",
    ] {
        assert!(!is_unusable(good.parse().unwrap()), "{good}");
    }
}

#[test]
fn only_link_local_addresses_without_their_interface_are_unscoped() {
    let unscoped: SocketAddr = "[fe80::2]:3210".parse().unwrap();
    assert!(unscoped_link_local(unscoped));
    assert!(unscoped_link_local("[febf::2]:3210".parse().unwrap()));
    let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
        "fe80::2".parse().unwrap(),
        3210,
        0,
        3,
    ));
    assert!(!unscoped_link_local(scoped));
    for other in ["[fd00::2]:3210", "[fec0::2]:3210", "198.18.0.1:3210"] {
        assert!(!unscoped_link_local(other.parse().unwrap()), "{other}");
    }
}

#[test]
fn ceil_sqrt_matches_definition() {
    let expected = [0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 4];
    for (n, want) in expected.iter().enumerate() {
        assert_eq!(ceil_sqrt(n), *want, "n={n}");
    }
    assert_eq!(ceil_sqrt(1000), 32);
}

#[test]
fn peer_table_touch_adds_refreshes_and_caps() {
    let mut t = PeerTable::new(2);
    assert_eq!(
        t.touch(Instant::ZERO, addr(1)),
        Touch::Added { evicted: None }
    );
    assert_eq!(
        t.touch(Instant::from_secs(5), addr(1)),
        Touch::Refreshed { is_verified: false }
    );
    assert_eq!(t.get(addr(1)).unwrap().last_seen, Instant::from_secs(5));
    assert_eq!(
        t.touch(Instant::ZERO, addr(2)),
        Touch::Added { evicted: None }
    );
    assert!(t.verify(addr(1)));
    assert!(!t.verify(addr(1)));
    assert!(t.verify(addr(2)));
    assert_eq!(t.verified_len(), 2);
    assert_eq!(t.touch(Instant::ZERO, addr(3)), Touch::Full);
    assert_eq!(t.len(), 2);
    assert!(t.remove(addr(1)).is_some());
    assert!(t.remove(addr(1)).is_none());
    assert_eq!(t.verified_len(), 1);
}

#[test]
fn peer_table_round_robin_visits_everyone_in_turn() {
    let mut t = PeerTable::new(10);
    for n in 1..=6 {
        t.touch(Instant::ZERO, addr(n));
        if n != 6 {
            t.verify(addr(n));
        }
    }
    let mut cursor = None;
    let mut out = Vec::new();
    t.round_robin(&mut cursor, 2, &mut out);
    t.round_robin(&mut cursor, 2, &mut out);
    t.round_robin(&mut cursor, 2, &mut out);
    assert_eq!(
        out,
        vec![addr(1), addr(2), addr(3), addr(4), addr(5), addr(1)]
    );
    out.clear();
    t.round_robin(&mut cursor, 9, &mut out);
    assert_eq!(out.len(), 5, "wraps at most once, skips the unverified");
    // the cursor may point at a removed peer
    t.remove(addr(1));
    out.clear();
    t.round_robin(&mut cursor, 1, &mut out);
    assert_eq!(out, vec![addr(2)]);
}

#[test]
fn round_robin_and_sweep_give_the_same_peers_however_many_unverified_sit_between() {
    // Three verified peers among 3,000 unverified addresses (anyone's to make), and the same
    // three alone: the same lists, the same keepalives, the same cursors.
    let verified = [
        SocketAddr::from(([198, 18, 0, 1], 3210)),
        SocketAddr::from(([198, 18, 200, 1], 3210)),
        SocketAddr::from(([198, 19, 255, 1], 3210)),
    ];
    let mut crowded = PeerTable::new(4000);
    let mut alone = PeerTable::new(4000);
    for i in 0..3000u32 {
        let junk = SocketAddr::from(([198, 18, (i / 12) as u8, 2 + (i % 12) as u8], 7));
        crowded.touch(Instant::ZERO, junk);
    }
    for t in [&mut crowded, &mut alone] {
        for a in verified {
            t.touch(Instant::ZERO, a);
            t.verify(a);
        }
    }
    let (mut c1, mut c2, mut s1, mut s2) = (None, None, None, None);
    for step in 0..20u64 {
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        crowded.round_robin(&mut c1, 2, &mut o1);
        alone.round_robin(&mut c2, 2, &mut o2);
        assert_eq!((&o1, c1), (&o2, c2), "round robin, step {step}");
        let now = Instant::from_secs(step * 10);
        let idle = Duration::from_secs(15);
        let (mut k1, mut k2) = (Vec::new(), Vec::new());
        crowded.sweep(&mut s1, 2, now, idle, &mut k1);
        alone.sweep(&mut s2, 2, now, idle, &mut k2);
        assert_eq!((&k1, s1), (&k2, s2), "sweep, step {step}");
    }
}

#[test]
fn peer_table_shuffled_round_robin_gives_each_peer_once_per_round_in_random_order() {
    let mut t = PeerTable::new(300);
    for i in 1..=200u8 {
        t.touch(Instant::ZERO, addr(i));
        if i % 4 != 0 {
            t.verify(addr(i));
        }
    }
    // remove some, verified or not: the unordered list stays exact
    for i in (1..=200u8).step_by(7) {
        t.remove(addr(i));
    }
    let verified: std::collections::BTreeSet<SocketAddr> = t.verified_addrs().collect();
    let n = verified.len();
    assert_eq!(t.verified_len(), n);
    let mut rng = 0x1234_5678_u64;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // rounds of 12 straddle the end of each permutation: still no repeats within a call,
    // and each permutation holds every peer once
    let mut position = 0;
    let mut order = Vec::new();
    for _ in 0..(3 * n).div_ceil(12) {
        let mut out = Vec::new();
        t.shuffled_round_robin(&mut position, 12, &mut random, &mut out);
        assert_eq!(out.len(), 12);
        let distinct: std::collections::BTreeSet<_> = out.iter().copied().collect();
        assert_eq!(distinct.len(), 12, "distinct within a call");
        order.extend(out);
    }
    let first: Vec<SocketAddr> = order[..n].to_vec();
    let second: Vec<SocketAddr> = order[n..2 * n].to_vec();
    assert_eq!(
        first
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        verified
    );
    assert_eq!(
        second
            .iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        verified
    );
    assert_ne!(first, second, "a fresh order each round");
    let sorted: Vec<SocketAddr> = verified.iter().copied().collect();
    assert_ne!(first, sorted, "not address order");
    // the slots still match after all the swaps: removals stay exact
    for a in sorted.iter().take(50) {
        t.remove(*a);
    }
    let mut out = Vec::new();
    t.shuffled_round_robin(&mut position, 1000, &mut random, &mut out);
    let rest: std::collections::BTreeSet<_> = t.verified_addrs().collect();
    assert_eq!(out.len(), n - 50);
    assert_eq!(
        out.into_iter().collect::<std::collections::BTreeSet<_>>(),
        rest
    );
    PeerTable::new(4).shuffled_round_robin(&mut position, 3, &mut random, &mut Vec::new());
}

#[test]
fn peer_table_sweep_sends_to_the_idle_only_and_goes_round_in_order() {
    let mut t = PeerTable::new(10);
    for i in 1..=5u8 {
        t.touch(Instant::ZERO, addr(i));
        if i != 3 {
            t.verify(addr(i));
        }
    }
    let idle = Duration::from_secs(30);
    let mut cursor = None;
    let mut out = Vec::new();
    // nobody idle yet: walked, nothing sent, cursor moved
    t.sweep(&mut cursor, 2, Instant::from_secs(10), idle, &mut out);
    assert!(out.is_empty());
    assert_eq!(cursor, Some(addr(2)));
    t.note_sent(addr(4), Instant::from_secs(20));
    t.sweep(&mut cursor, 3, Instant::from_secs(30), idle, &mut out);
    // 4 (sent at 20 s) is skipped, 3 is unverified; wraps to 1
    assert_eq!(out, vec![addr(5), addr(1)]);
    assert_eq!(cursor, Some(addr(1)));
    assert_eq!(t.get(addr(5)).unwrap().last_sent, Instant::from_secs(30));
    out.clear();
    t.sweep(&mut cursor, 10, Instant::from_secs(49), idle, &mut out);
    assert_eq!(out, vec![addr(2)], "walks each verified peer once at most");
    assert_eq!(cursor, Some(addr(1)));
}

#[test]
fn peer_table_family_walk_starts_after_the_cursor_and_keeps_families_apart() {
    let mut t = PeerTable::new(10);
    let v6: SocketAddr = "[fd00::1]:3210".parse().unwrap();
    for a in [addr(1), addr(2), addr(3), addr(4), v6] {
        t.touch(Instant::ZERO, a);
        if a != addr(3) {
            t.verify(a);
        }
    }
    let walk =
        |is_v6, cursor| -> Vec<SocketAddr> { t.verified_of_family_after(is_v6, cursor).collect() };
    assert_eq!(walk(false, None), vec![addr(1), addr(2), addr(4)]);
    assert_eq!(walk(false, Some(addr(2))), vec![addr(4), addr(1), addr(2)]);
    assert_eq!(walk(false, Some(addr(3))), vec![addr(4), addr(1), addr(2)]);
    assert_eq!(walk(false, Some(v6)), vec![addr(1), addr(2), addr(4)]);
    assert_eq!(walk(true, None), vec![v6]);
    assert_eq!(walk(true, Some(v6)), vec![v6]);
    assert_eq!(walk(true, Some(addr(1))), vec![v6]);
}

#[test]
fn peer_table_expired_are_those_silent_for_the_timeout() {
    let mut t = PeerTable::new(10);
    t.touch(Instant::ZERO, addr(1));
    t.touch(Instant::from_secs(10), addr(2));
    t.verify(addr(1));
    t.verify(addr(2));
    let (timeout, unverified) = (Duration::from_secs(60), Duration::from_secs(5));
    let mut out = Vec::new();
    t.collect_expired(Instant::from_secs(59), timeout, unverified, &mut out);
    assert!(out.is_empty());
    t.collect_expired(Instant::from_secs(60), timeout, unverified, &mut out);
    assert_eq!(out, vec![addr(1)]);
}

#[test]
fn peer_table_expiry_walk_is_skipped_until_the_earliest_deadline() {
    let mut t = PeerTable::new(10);
    t.touch(Instant::ZERO, addr(1));
    t.verify(addr(1));
    let (timeout, unverified) = (Duration::from_secs(60), Duration::from_secs(5));
    let mut out = Vec::new();
    t.collect_expired(Instant::from_secs(1), timeout, unverified, &mut out);
    assert_eq!(t.quiet_until, Instant::from_secs(60));
    // a new peer may expire sooner: the next call walks again and sees it
    t.touch(Instant::from_secs(2), addr(2));
    t.collect_expired(Instant::from_secs(6), timeout, unverified, &mut out);
    assert!(out.is_empty());
    t.collect_expired(Instant::from_secs(7), timeout, unverified, &mut out);
    assert_eq!(out, vec![addr(2)], "unverified, not answered in time");
    t.remove(addr(2));
    out.clear();
    t.collect_expired(Instant::from_secs(8), timeout, unverified, &mut out);
    assert!(out.is_empty());
    // other timeouts: walks again
    t.collect_expired(
        Instant::from_secs(8),
        Duration::from_secs(8),
        unverified,
        &mut out,
    );
    assert_eq!(out, vec![addr(1)]);
    // a deadline moved through get_mut is seen at the next call
    out.clear();
    t.touch(Instant::from_secs(8), addr(1));
    t.collect_expired(Instant::from_secs(9), timeout, unverified, &mut out);
    t.get_mut(addr(1)).unwrap().last_seen = Instant::ZERO;
    t.collect_expired(Instant::from_secs(60), timeout, unverified, &mut out);
    assert_eq!(out, vec![addr(1)]);
}

#[test]
fn peer_table_unverified_expire_early_and_make_room_when_full() {
    let mut t = PeerTable::new(2);
    t.touch(Instant::ZERO, addr(1));
    t.touch(Instant::from_secs(1), addr(2));
    t.verify(addr(2));
    let mut out = Vec::new();
    t.collect_expired(
        Instant::from_secs(5),
        Duration::from_secs(60),
        Duration::from_secs(5),
        &mut out,
    );
    assert_eq!(out, vec![addr(1)], "not verified in time");
    // full: the oldest unverified peer makes room, a verified one never does
    assert_eq!(
        t.touch(Instant::from_secs(2), addr(3)),
        Touch::Added {
            evicted: Some(addr(1))
        },
        "the evicted address is told, for the node to forget the rest"
    );
    assert!(!t.contains(addr(1)));
    assert!(t.contains(addr(2)));
    t.verify(addr(3));
    assert_eq!(t.touch(Instant::from_secs(3), addr(4)), Touch::Full);
}

#[test]
fn peer_table_evicts_the_oldest_unverified_peer_as_a_scan_would() {
    // A model: the unverified peers by (added, address), checked against the table's index
    // over a random run of adds, verifications, removals and evictions.
    let mut t = PeerTable::new(16);
    let mut model: Vec<(Instant, SocketAddr)> = Vec::new();
    let mut verified: Vec<SocketAddr> = Vec::new();
    let mut x = 0x2545_f491_u32;
    for step in 0..5_000u64 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let a = addr((x % 40) as u8 + 1);
        let now = Instant::from_secs(step / 3);
        match x % 5 {
            0 | 1 => {
                let known = t.contains(a);
                match t.touch(now, a) {
                    Touch::Added { evicted } => {
                        assert!(!known);
                        model.sort();
                        if let Some(e) = evicted {
                            assert_eq!(model.first().map(|m| m.1), Some(e), "step {step}");
                            model.remove(0);
                        }
                        model.push((now, a));
                    }
                    Touch::Refreshed { .. } => assert!(known),
                    Touch::Full => assert!(model.is_empty() && verified.len() == 16),
                }
            }
            2 => {
                if t.verify(a) {
                    model.retain(|m| m.1 != a);
                    verified.push(a);
                }
            }
            3 => {
                if t.remove(a).is_some() {
                    model.retain(|m| m.1 != a);
                    verified.retain(|v| *v != a);
                }
            }
            _ => {
                if let Some(gone) = t.evict_quietest(|_| false) {
                    assert!(verified.contains(&gone));
                    verified.retain(|v| *v != gone);
                }
            }
        }
        assert_eq!(t.len(), model.len() + verified.len(), "step {step}");
        assert_eq!(t.verified_len(), verified.len(), "step {step}");
    }
}

const IMIN: Duration = Duration::from_secs(1);
const IMAX: Duration = Duration::from_secs(60);

/// Polls `t` once per `step` from `from` for `secs` seconds; the times of its rounds.
fn rounds(t: &mut Trickle, from: Instant, secs: u64, step: Duration, k: u32) -> Vec<u64> {
    let mut out = Vec::new();
    let mut now = from;
    while now < from + Duration::from_secs(secs) {
        if t.poll(now, IMIN, IMAX, k) {
            out.push(now.as_millis());
        }
        now += step;
    }
    out
}

#[test]
fn trickle_doubles_from_imin_to_imax_with_one_round_per_interval() {
    let mut t = Trickle::new(Instant::ZERO, IMIN, 7);
    let r = rounds(&mut t, Instant::ZERO, 603 + 1, Duration::from_secs(1), 2);
    // intervals 1, 2, 4, 8, 16, 32 s (ending at 63 s), then 60 s: 6 + 9 rounds by 603 s,
    // each in the second half of its interval
    assert_eq!(r.len(), 6 + 9, "{r:?}");
    let starts = [0u64, 1, 3, 7, 15, 31];
    for (i, start) in starts.iter().enumerate() {
        let len = 1u64 << i;
        let at = r[i] / 1000;
        assert!(
            at >= start + len / 2 && at <= start + len,
            "round {i} at {at}"
        );
    }
    assert_eq!(t.interval(), IMAX);
}

#[test]
fn trickle_plans_from_the_planned_time_so_late_polls_do_not_drift() {
    // polled every 1.7 s: intervals still start at multiples of 60 s after the doubling
    let mut t = Trickle::new(Instant::ZERO, IMIN, 9);
    let step = Duration::from_millis(1_700);
    let r = rounds(&mut t, Instant::ZERO, 63 + 60 * 100, step, 2);
    // one round per 60 s interval: 100 steady intervals, not fewer (drift would lose some)
    assert_eq!(r.len(), 6 + 100, "{} rounds", r.len());
    for w in r[6..].windows(2) {
        let gap = w[1] - w[0];
        assert!(gap < 2 * 60_000, "{gap} ms between steady rounds");
    }
}

#[test]
fn trickle_after_a_stall_sends_one_round_not_a_burst() {
    let mut t = Trickle::new(Instant::ZERO, IMIN, 3);
    let _ = rounds(&mut t, Instant::ZERO, 300, Duration::from_secs(1), 2);
    // an hour without housekeeping, then polls every second again
    let back = Instant::from_secs(300 + 3600);
    let r = rounds(&mut t, back, 60, Duration::from_secs(1), 2);
    assert!(r.len() <= 1, "burst after a stall: {r:?}");
    assert_eq!(r.len(), 1, "one round within an interval of coming back");
}

#[test]
fn trickle_suppresses_steady_rounds_after_k_consistent_lists_and_resets_on_news() {
    let mut t = Trickle::new(Instant::ZERO, IMIN, 5);
    let _ = rounds(&mut t, Instant::ZERO, 200, Duration::from_secs(1), 2);
    assert_eq!(t.interval(), IMAX);
    // two consistent lists early in each interval: every steady round is skipped
    let mut now = Instant::from_secs(200);
    let mut sent = 0;
    for s in 0..600u64 {
        if s % 20 == 0 {
            t.heard_consistent(addr(1));
            t.heard_consistent(addr(2));
        }
        if t.poll(now, IMIN, IMAX, 2) {
            sent += 1;
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(sent, 0);
    // one is not enough with k = 2
    let mut sent = 0;
    for _ in 0..600u64 {
        if t.heard() == 0 {
            t.heard_consistent(addr(1));
        }
        if t.poll(now, IMIN, IMAX, 2) {
            sent += 1;
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(sent, 10);
    // nor one peer repeating itself: its lists count once in a row
    let mut sent = 0;
    for _ in 0..600u64 {
        for _ in 0..5 {
            t.heard_consistent(addr(3));
        }
        if t.poll(now, IMIN, IMAX, 2) {
            sent += 1;
        }
        now += Duration::from_secs(1);
    }
    // (One round per 60 s interval; where the window cuts an interval decides 9 or 10.)
    assert!(sent >= 9, "silenced by one peer: {sent} rounds");
    // but two peers of one host (one machine, one LAN /64, one NAT) count as two
    let mut sent = 0;
    for _ in 0..600u64 {
        for port in [4000, 4001] {
            t.heard_consistent(SocketAddr::from(([198, 18, 0, 7], port)));
        }
        if t.poll(now, IMIN, IMAX, 2) {
            sent += 1;
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(
        sent, 0,
        "two peers of one host did not stand for each other"
    );
    // news: back to 1 s intervals, and short intervals are never suppressed
    t.reset(now, IMIN);
    assert_eq!(t.interval(), IMIN);
    t.heard_consistent(addr(1));
    t.heard_consistent(addr(2));
    now += Duration::from_secs(1);
    assert!(t.poll(now, IMIN, IMAX, 2));
}

#[test]
fn sweep_visits_n_per_period_without_rounding_drift_and_caps_after_a_stall() {
    let period = Duration::from_secs(59);
    let mut s = Sweep::new(Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut total = 0;
    for _ in 0..59 * 10 {
        now += Duration::from_secs(1);
        total += s.due(now, 7, period);
    }
    assert_eq!(total, 70, "7 peers, 10 periods");
    // uneven calls
    let mut total = 0;
    for i in 0..1000u64 {
        now += Duration::from_millis(500 + (i * 37) % 1000);
        total += s.due(now, 1000, period);
    }
    let elapsed = 500 * 1000 + (0..1000u64).map(|i| (i * 37) % 1000).sum::<u64>();
    let expected = 1000 * elapsed / 59_000;
    assert!(
        total.abs_diff(expected as usize) <= 1,
        "{total} vs {expected}"
    );
    // a stall owes at most one full sweep
    now += Duration::from_secs(3600);
    assert_eq!(s.due(now, 1000, period), 1000);
    assert_eq!(s.due(now, 1000, period), 0);
}

#[test]
fn contacts_configured_back_off_doubles_up_to_cap() {
    let mut c = Contacts::new(4);
    c.add_configured(addr(1), Instant::ZERO);
    let mut sent = Vec::new();
    let mut now = Instant::ZERO;
    for _ in 0..400 {
        let mut out = Vec::new();
        c.take_due(now, 10, &mut out);
        if !out.is_empty() {
            sent.push(now.as_millis() / 1000);
        }
        now += Duration::from_secs(1);
    }
    assert_eq!(&sent[..8], &[0, 1, 3, 7, 15, 31, 63, 123]);
    assert_eq!(sent[8] - sent[7], 60, "capped at 60 s");
}

#[test]
fn contacts_learned_are_tried_a_few_times_then_remembered_quietly() {
    let mut c = Contacts::new(4);
    assert!(c.add_learned(Instant::ZERO, addr(1), addr(1)));
    let mut attempts = Vec::new();
    for s in 0..200 {
        let now = Instant::from_secs(s);
        let mut out = Vec::new();
        c.take_due(now, 10, &mut out);
        attempts.extend(out.iter().map(|_| s));
        // peer lists keep naming it: no new attempts
        c.add_learned(now, addr(1), addr(1));
    }
    // Over 46 s with no gap over 16 s (two NAT'ed nodes meet through these), then given up
    // at 62 s, when the last attempt's answer was due.
    assert_eq!(attempts, [0, 2, 6, 14, 30, 46]);
    assert_eq!(attempts.len(), usize::try_from(LEARNED_ATTEMPTS).unwrap());
    assert!(c.contains(addr(1)));
    assert_eq!(c.next_due(), None);
    let given_up = Instant::from_secs(62);
    let mut out = Vec::new();
    c.take_due(
        given_up + (LEARNED_QUIET_PERIOD - Duration::from_secs(1)),
        10,
        &mut out,
    );
    assert!(out.is_empty());
    assert!(c.contains(addr(1)), "remembered for the whole quiet period");
    c.take_due(given_up + LEARNED_QUIET_PERIOD, 10, &mut out);
    assert!(out.is_empty());
    assert!(!c.contains(addr(1)), "forgotten after the quiet period");
}

#[test]
fn contacts_an_address_that_sent_close_is_tried_twice_and_then_forgotten_without_quiet() {
    let mut c = Contacts::new(4);
    assert!(c.try_once(Instant::ZERO, addr(1), addr(1)));
    let mut out = Vec::new();
    c.take_due(Instant::ZERO, 10, &mut out);
    assert_eq!(out, [addr(1)]);
    // Unanswered: a second attempt 2 s later (past the second in which a peer answers one
    // request), then none, and gone once that one's answer was due (4 s more) ...
    out.clear();
    c.take_due(Instant::from_secs(1), 10, &mut out);
    assert!(out.is_empty());
    c.take_due(Instant::from_secs(2), 10, &mut out);
    assert_eq!(out, [addr(1)]);
    out.clear();
    c.take_due(Instant::from_secs(5), 10, &mut out);
    assert!(out.is_empty());
    assert!(c.contains(addr(1)));
    c.take_due(Instant::from_secs(6), 10, &mut out);
    assert!(out.is_empty());
    assert!(!c.contains(addr(1)), "kept quiet after a Close");
    // ... so that a peer list naming it (it restarted) has it contacted again at once.
    assert!(c.add_learned(Instant::from_secs(7), addr(1), addr(2)));
    c.take_due(Instant::from_secs(7), 10, &mut out);
    assert_eq!(out, [addr(1)]);
}

#[test]
fn contacts_a_given_up_address_can_be_tried_once_more() {
    let mut c = Contacts::new(4);
    assert_eq!(
        c.try_once_more(Instant::ZERO, addr(1), addr(1)),
        Some(true),
        "new: queued"
    );
    assert_eq!(
        c.try_once_more(Instant::ZERO, addr(1), addr(1)),
        Some(false),
        "being tried already"
    );
    let mut out = Vec::new();
    for s in 0..70 {
        c.take_due(Instant::from_secs(s), 10, &mut out);
    }
    assert_eq!(out.len(), usize::try_from(LEARNED_ATTEMPTS).unwrap());
    // Given up and quiet; a relay route's direct try still gets one attempt, and one only.
    let at = Instant::from_secs(70);
    assert_eq!(c.try_once_more(at, addr(1), addr(1)), Some(true));
    out.clear();
    for s in 70..100 {
        c.take_due(Instant::from_secs(s), 10, &mut out);
    }
    assert_eq!(out, [addr(1)]);
    assert!(c.contains(addr(1)), "given up again, and remembered");
    // A --connect address in its back-off is tried now; a full queue says so.
    c.add_configured(addr(2), Instant::from_secs(200));
    assert_eq!(
        c.try_once_more(Instant::from_secs(100), addr(2), addr(2)),
        Some(true)
    );
    out.clear();
    c.take_due(Instant::from_secs(100), 10, &mut out);
    assert_eq!(out, [addr(2)]);
    let mut full = Contacts::new(1);
    full.add_configured(addr(3), Instant::ZERO);
    assert_eq!(full.try_once_more(Instant::ZERO, addr(4), addr(4)), None);
}

#[test]
fn contacts_learned_quiet_period_counts_from_giving_up_also_when_attempts_came_late() {
    let mut c = Contacts::new(4);
    assert!(c.add_learned(Instant::ZERO, addr(1), addr(1)));
    // A busy queue gets to the address only after 1000 s.
    let start = Instant::from_secs(1000);
    let mut out = Vec::new();
    for s in 0..70 {
        c.take_due(start + Duration::from_secs(s), 10, &mut out);
    }
    assert_eq!(out.len(), usize::try_from(LEARNED_ATTEMPTS).unwrap());
    // Given up at 1062 s: a peer list naming it again within the quiet period is ignored.
    let later = start + Duration::from_secs(62) + (LEARNED_QUIET_PERIOD - Duration::from_secs(1));
    out.clear();
    c.take_due(later, 10, &mut out);
    assert!(
        c.contains(addr(1)),
        "remembered although added over 300 s ago"
    );
    c.add_learned(later, addr(1), addr(1));
    c.take_due(later, 10, &mut out);
    assert!(
        out.is_empty(),
        "not contacted again within the quiet period"
    );
}

#[test]
fn contacts_refuse_learned_beyond_cap_and_limit_per_call() {
    let mut c = Contacts::new(2);
    assert!(c.add_learned(Instant::ZERO, addr(1), addr(1)));
    assert!(c.add_learned(Instant::ZERO, addr(2), addr(2)));
    assert!(!c.add_learned(Instant::ZERO, addr(3), addr(3)));
    let mut out = Vec::new();
    c.take_due(Instant::ZERO, 1, &mut out);
    assert_eq!(out, vec![addr(1)]);
    assert_eq!(c.next_due(), Some(Instant::ZERO));
}

#[test]
fn traffic_is_counted_per_peer_each_way() {
    let mut t = PeerTable::new(4);
    assert_eq!(
        t.touch_received(Instant::ZERO, addr(1), 100),
        Touch::Added { evicted: None }
    );
    t.touch_received(Instant::from_secs(1), addr(1), 50);
    t.touch(Instant::from_secs(2), addr(1));
    t.count_sent(addr(1), 70);
    // Not a peer: nothing to count, nothing added.
    t.count_sent(addr(2), 70);
    assert!(!t.contains(addr(2)));
    let traffic = t.get(addr(1)).unwrap().traffic;
    assert_eq!(
        traffic,
        Traffic {
            rx_datagrams: 2,
            rx_bytes: 150,
            tx_datagrams: 1,
            tx_bytes: 70
        }
    );
    // Flooding counts only verified peers.
    t.touch(Instant::ZERO, addr(3));
    t.verify(addr(1));
    let mut seen = Vec::new();
    t.for_each_verified(|a, traffic| {
        traffic.count_sent(10);
        seen.push(a);
    });
    assert_eq!(seen, [addr(1)]);
    assert_eq!(t.get(addr(1)).unwrap().traffic.tx_bytes, 80);
    assert_eq!(t.get(addr(3)).unwrap().traffic, Traffic::default());
}

#[test]
fn contacts_one_host_lists_at_most_a_quarter_of_the_queue() {
    let mut c = Contacts::new(16);
    assert_eq!(c.max_per_lister(), 4);
    let junk = |i: u16| SocketAddr::from(([198, 19, 1, 1], 1000 + i));
    // A peer lists junk from two ports of one host: four are queued, the rest refused.
    let queued = (0..10u16)
        .filter(|&i| {
            let port = SocketAddr::from(([198, 18, 0, 9], 3210 + i % 2));
            c.add_learned(Instant::ZERO, junk(i), port)
        })
        .count();
    assert_eq!(queued, 4);
    assert_eq!(c.listed_by(addr(9)), 4);
    // Another peer's addresses still get in.
    for n in 20..24 {
        assert!(c.add_learned(Instant::ZERO, addr(n), addr(2)));
    }
    // An address already queued is not refused, whoever lists it again.
    assert!(c.add_learned(Instant::ZERO, junk(0), addr(9)));
    // Room comes back as entries go: answered, or forgotten after the quiet period.
    c.remove(junk(0));
    assert_eq!(c.listed_by(addr(9)), 3);
    assert!(c.add_learned(Instant::ZERO, junk(100), addr(9)));
    let mut out = Vec::new();
    for s in 0..70 {
        c.take_due(Instant::from_secs(s), 100, &mut out);
    }
    c.take_due(Instant::from_secs(70) + LEARNED_QUIET_PERIOD, 100, &mut out);
    assert!(c.is_empty());
    assert_eq!(c.listed_by(addr(9)), 0);
    assert_eq!(c.listed_by(addr(2)), 0);
    // A --connect address that was learned first gives its lister's room back.
    assert!(c.add_learned(Instant::ZERO, addr(30), addr(9)));
    c.add_configured(addr(30), Instant::ZERO);
    assert_eq!(c.listed_by(addr(9)), 0);
}

/// Every walk over the verified peers gives them in address order, with their traffic, and
/// nothing else, both while they are most of the table and once unverified addresses crowd
/// it (when a flood looks them up one by one instead of walking the table).
#[test]
fn floods_walk_the_verified_peers_in_order_however_many_strangers_fill_the_table() {
    let mut t = PeerTable::new(200);
    let at = |i: u32| SocketAddr::from(([198, 19, (i >> 8) as u8, i as u8], 3210));
    // A fixed pseudo-random walk of adds, verifications and removals.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut step = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut crowded_checks = 0;
    for round in 0..3_000u32 {
        let r = step();
        let a = at(u32::try_from(r % 300).unwrap());
        // First mostly verified peers, then mostly strangers.
        let (touch, verify) = if round < 1_500 { (3, 8) } else { (6, 7) };
        match (r >> 32) % 10 {
            k if k < touch => {
                t.touch(Instant::from_millis(u64::from(round)), a);
            }
            k if k < verify => {
                t.verify(a);
            }
            _ => {
                t.remove(a);
            }
        }
        let expected: Vec<SocketAddr> = t
            .iter()
            .filter(|(_, p)| p.is_verified)
            .map(|(a, _)| a)
            .collect();
        assert_eq!(
            t.verified_addrs().collect::<Vec<_>>(),
            expected,
            "round {round}"
        );
        assert_eq!(t.verified_len(), expected.len());
        let mut seen = Vec::new();
        t.for_each_verified(|a, traffic| {
            traffic.count_sent(1);
            seen.push(a);
        });
        assert_eq!(seen, expected, "round {round}");
        if t.len() > 2 * t.verified_len() {
            crowded_checks += 1;
        }
    }
    // Both ways of walking were checked.
    assert!(crowded_checks > 100, "crowded {crowded_checks}");
    assert!(crowded_checks < 2_900, "crowded {crowded_checks}");
    // Only verified peers were counted as flooded to.
    for (_, p) in t.iter().filter(|(_, p)| !p.is_verified) {
        assert_eq!(p.traffic.tx_datagrams, 0);
    }
}

#[test]
fn contacts_at_high_addresses_are_served_while_low_ones_keep_the_queue_busy() {
    let mut c = Contacts::new(4096);
    // 300 addresses at the bottom of the order, from several listers, and one at the top.
    for i in 0..300u32 {
        let junk = SocketAddr::from(([1, 0, (i >> 8) as u8, i as u8], 1000));
        let lister = SocketAddr::from(([198, 18, 1, (i % 8) as u8], 3210));
        assert!(c.add_learned(Instant::ZERO, junk, lister));
    }
    let top = SocketAddr::from(([198, 19, 255, 1], 3210));
    assert!(c.add_learned(Instant::ZERO, top, addr(2)));
    // Ten a second: the top address is served within the first pass over the queue.
    let mut out = Vec::new();
    let served_at = (0..60u64).find(|&s| {
        out.clear();
        c.take_due(Instant::from_secs(s), 10, &mut out);
        out.contains(&top)
    });
    assert!(
        served_at.is_some_and(|s| s <= 31),
        "served at {served_at:?}"
    );
}
