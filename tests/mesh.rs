//! Mesh behaviour in the simulator: convergence, Close, timeouts, self-detection, partitions,
//! loss, NAT hole punching, determinism.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use ethcloud::stats::DropReason;
use ethcloud::wire::{self, Token};
use sim::Simulator;

fn report(name: &str, sim: &Simulator, took: Duration) {
    println!(
        "{name}: seed {:#x}, {} nodes, full mesh after {} s simulated, {} management bytes per node, {} datagrams delivered",
        sim.seed,
        sim.nodes.len(),
        took.as_secs(),
        sim.control_bytes_per_node(),
        sim.delivered
    );
}

#[test]
fn chain_of_ten_becomes_full_mesh() {
    let mut sim = Simulator::new(0x5eed);
    let cfg = Simulator::config();
    sim.add_chain(&cfg, 10);
    let took = sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    sim.assert_full_mesh();
    report("chain of 10", &sim, took);
}

#[test]
fn star_of_200_becomes_full_mesh() {
    let mut sim = Simulator::new(0x57a2);
    let cfg = Simulator::config();
    let hub = sim.add_node(&cfg);
    for _ in 0..199 {
        let n = sim.add_node(&cfg);
        sim.connect(n, hub);
    }
    let took = sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh());
    sim.assert_full_mesh();
    report("star of 200", &sim, took);
}

#[test]
fn random_tree_of_200_becomes_full_mesh() {
    let mut sim = Simulator::new(0x7233);
    let cfg = Simulator::config();
    let mut nodes: Vec<SocketAddr> = Vec::new();
    for i in 0..200 {
        let n = sim.add_node(&cfg);
        if i > 0 {
            let parent = nodes[sim.rng.below(nodes.len())];
            sim.connect(n, parent);
        }
        nodes.push(n);
    }
    let took = sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh());
    sim.assert_full_mesh();
    report("random tree of 200", &sim, took);
}

#[test]
fn mesh_forms_with_five_percent_loss() {
    let mut sim = Simulator::new(0x1055);
    sim.loss_per_mille = 50;
    let cfg = Simulator::config();
    sim.add_chain(&cfg, 20);
    let took = sim.advance_until(Duration::from_secs(600), |s| s.is_full_mesh());
    assert!(
        sim.lost > 0,
        "seed {:#x}: the loss model dropped nothing",
        sim.seed
    );
    report("chain of 20 with 5% loss", &sim, took);
    // and it stays whole: nobody times out through loss
    sim.advance(Duration::from_secs(3600));
    sim.assert_full_mesh();
}

/// A link is verified on each side by an answer, and with loss one side's answer (or its
/// request) can be lost while the other side has already verified it. Both sides send a new
/// peer a follow-up (`FOLLOW_UP_DELAY`) so the link heals in seconds, not at the next
/// keepalive (60 s here). Over 30 seeds, the third-slowest time to full mesh must stay well
/// under that: without any follow-up it was 41 s (then 44 and 70); with one from the side
/// that answered a request only, 17 s (then 22 and 61); with one from both sides, 17 s (then
/// 18 and 18), and 12, 13 and 15 s under ETHCLOUD_SIM_SEED=18, where the first kind gave 31,
/// 31 and 36.
#[test]
fn lost_answers_heal_in_seconds_not_at_the_next_keepalive() {
    let mut took: Vec<u64> = Vec::new();
    for seed in 1u64..=30 {
        let mut sim = Simulator::new(seed);
        sim.loss_per_mille = 50;
        let cfg = Simulator::config();
        sim.add_chain(&cfg, 20);
        let t = sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh());
        took.push(t.as_secs());
    }
    took.sort_unstable();
    let third_slowest = took[took.len() - 3];
    println!("chain of 20 with 5% loss, 30 seeds: full mesh after {took:?} s");
    assert!(
        third_slowest <= 25,
        "third-slowest seed took {third_slowest} s: lost answers wait for a keepalive"
    );
}

#[test]
fn mesh_stays_whole_for_hours_without_data_traffic() {
    let mut sim = Simulator::new(0x1d1e);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = Duration::from_secs(120);
    sim.add_star(&cfg, 30);
    sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh());
    let before = sim.control_bytes_per_node();
    sim.advance(Duration::from_secs(3 * 3600));
    sim.assert_full_mesh();
    let per_minute = (sim.control_bytes_per_node() - before) / 180;
    println!("30 nodes, peer timeout 120 s: {per_minute} management bytes per node per minute in steady state");
}

/// The liveness rule: a peer drops us if it hears nothing for the peer timeout, so every peer
/// must hear from us at least once per keepalive K = timeout / 4 (here 30 s), also when there
/// is no data and gossip has gone quiet. Over 10 timeouts of an idle mesh, no peer waits longer
/// than K for any other, and none times out (a timed-out peer that comes back is re-added,
/// which would show as a later `added` time).
#[test]
fn idle_mesh_every_peer_hears_from_every_other_within_the_keepalive() {
    let mut sim = Simulator::new(0x11fe);
    let timeout = Duration::from_secs(120);
    let keepalive = timeout / 4;
    let mut cfg = Simulator::config();
    cfg.peer_timeout = timeout;
    let mut nodes: Vec<SocketAddr> = Vec::new();
    for i in 0..40 {
        let n = sim.add_node(&cfg);
        if i > 0 {
            let parent = nodes[sim.rng.below(nodes.len())];
            sim.connect(n, parent);
        }
        nodes.push(n);
    }
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    // let gossip settle to its longest interval (it doubles from 1 s up to K)
    sim.advance(Duration::from_secs(120));
    let watch_start = sim.now;
    sim.watch_gaps();
    let before = sim.traffic_total();
    sim.advance(timeout * 10);
    sim.assert_full_mesh();
    for (addr, node) in &sim.nodes {
        for (peer, p) in node.peers().iter() {
            assert!(
                p.added <= watch_start,
                "seed {:#x}: {addr} lost {peer} and added it again at {}",
                sim.seed,
                p.added
            );
        }
    }
    let ((from, to), gap) = sim.longest_gap().expect("pairs watched");
    println!(
        "40 nodes idle for {} s: the longest any peer went without hearing from another was {} s ({from} -> {to}), keepalive {} s",
        (timeout * 10).as_secs(),
        gap.as_secs(),
        keepalive.as_secs()
    );
    assert!(
        gap <= keepalive,
        "seed {:#x}: {to} heard nothing from {from} for {gap:?}, more than the keepalive {keepalive:?}",
        sim.seed
    );
    // and it is done with about one empty list per peer per K, not with gossip
    let mut t = sim.traffic_total();
    t.keepalives -= before.keepalives;
    t.lists -= before.lists;
    // the floor the liveness rule forces: 40 nodes × 39 peers once per K. With K = 30 s a peer
    // sent nothing else gets an empty list every 28 s (K − 2 s), so at most
    // 40 × 39 × 1200 / 28 of them, give or take one per node; gossip lists stand in for some.
    let floor = 40 * 39 * 40;
    let most = 40 * 39 * 1200 / 28 + 40;
    println!(
        "  sent: {} keepalives and {} gossip lists (floor 40·39 per K: {floor}; at most {most} keepalives)",
        t.keepalives, t.lists
    );
    assert!(
        t.keepalives + t.lists >= floor && t.keepalives <= most,
        "seed {:#x}: {} keepalives and {} lists in 40 keepalive periods",
        sim.seed,
        t.keepalives,
        t.lists
    );
}

#[test]
fn close_removes_the_sender_at_once() {
    let mut sim = Simulator::new(0xc105e);
    let cfg = Simulator::config();
    let [a, b, c] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.connect(c, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    sim.shutdown(c);
    sim.run_until_idle(100);
    assert_eq!(sim.peers_of(a), [b].into());
    assert_eq!(sim.peers_of(b), [a].into());
}

#[test]
fn node_killed_without_close_disappears_after_peer_timeout_not_before() {
    let mut sim = Simulator::new(0xdead);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = Duration::from_secs(60);
    let [a, b, c] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.connect(c, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    sim.kill(c);
    sim.advance(Duration::from_secs(30));
    assert!(sim.peers_of(a).contains(&c), "removed before the timeout");
    sim.advance(Duration::from_secs(31));
    assert!(!sim.peers_of(a).contains(&c));
    assert!(!sim.peers_of(b).contains(&c));
    // and no peer list brings the dead node back
    sim.advance(Duration::from_secs(900));
    assert!(!sim.peers_of(a).contains(&c));
    assert!(!sim.peers_of(b).contains(&c));
    sim.assert_full_mesh();
}

#[test]
fn dead_node_in_a_large_mesh_is_not_kept_alive_by_gossip() {
    let mut sim = Simulator::new(0xd0d0);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = Duration::from_secs(60);
    let nodes = sim.add_star(&cfg, 25);
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    let dead = nodes[7];
    sim.kill(dead);
    sim.advance(Duration::from_secs(61));
    for n in sim.nodes.keys() {
        assert!(
            !sim.peers_of(*n).contains(&dead),
            "{n} still has the dead node"
        );
    }
    sim.advance(Duration::from_secs(600));
    for n in sim.nodes.keys() {
        assert!(
            !sim.peers_of(*n).contains(&dead),
            "{n} re-added the dead node"
        );
    }
}

#[test]
fn restarted_connect_peer_is_reconnected() {
    let mut sim = Simulator::new(0xbac0);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = Duration::from_secs(60);
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(10), |s| s.is_full_mesh());
    sim.shutdown(a);
    sim.advance(Duration::from_secs(5));
    sim.restart(a); // a forgot everything; b still has a as its --connect peer
    let took = sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    println!("reconnected {} s after restart", took.as_secs());
}

#[test]
fn node_given_its_own_address_never_peers_with_itself() {
    let mut sim = Simulator::new(0x5e1f);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(a, a);
    sim.connect(b, a);
    sim.advance(Duration::from_secs(30));
    assert_eq!(sim.peers_of(a), [b].into());
    assert_eq!(sim.peers_of(b), [a].into());
    assert!(!sim.nodes[&a].contacts().contains(a));
}

/// Two nodes meshed; the verified peer `b` (not on loopback) sends `a` a peer list naming
/// `listed`. Returns the simulator, `a`, and `a`'s count of ignored entries before the list.
fn list_from_a_verified_peer(seed: u64, listed: &[SocketAddr]) -> (Simulator, SocketAddr, u64) {
    let mut sim = Simulator::new(seed);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance_until(Duration::from_secs(30), |s| s.is_full_mesh());
    assert!(!b.ip().is_loopback());
    let mut buf = [0u8; 128];
    let (len, _) =
        wire::emit_peers(Token::new(1).unwrap(), listed.iter().copied(), &mut buf).unwrap();
    let now = sim.now;
    let ignored = sim.stats(a).peer_entries_ignored;
    sim.nodes
        .get_mut(&a)
        .unwrap()
        .on_datagram(now, b, &mut buf[..len])
        .unwrap();
    (sim, a, ignored)
}

#[test]
fn loopback_addresses_in_a_remote_peers_list_are_not_contacted() {
    // Loopback addresses, which would be this host's own services, and one ordinary address.
    let far = SocketAddr::from(([198, 18, 77, 7], 3210));
    let listed: [SocketAddr; 4] = [
        SocketAddr::from(([127, 0, 0, 1], 53)),
        SocketAddr::from(([127, 9, 9, 9], 3210)),
        "[::1]:5353".parse().unwrap(),
        far,
    ];
    let (sim, a, ignored) = list_from_a_verified_peer(0x5e3f, &listed);
    for addr in &listed[..3] {
        assert!(!sim.nodes[&a].contacts().contains(*addr), "{addr} queued");
    }
    assert!(sim.nodes[&a].contacts().contains(far));
    assert_eq!(sim.stats(a).peer_entries_ignored, ignored + 3);
}

#[test]
fn link_local_addresses_in_a_peers_list_are_not_contacted() {
    // A peer list carries no interface, so a link-local IPv6 entry arrives with scope 0,
    // which nobody can send to: every try would only fail and count a send error.
    let link_local: SocketAddr = "[fe80::2]:3210".parse().unwrap();
    let global: SocketAddr = "[fd00::7]:3210".parse().unwrap();
    let (mut sim, a, ignored) = list_from_a_verified_peer(0x5e4f, &[link_local, global]);
    assert!(!sim.nodes[&a].contacts().contains(link_local));
    assert!(sim.nodes[&a].contacts().contains(global));
    assert_eq!(sim.stats(a).peer_entries_ignored, ignored + 1);
    // Nor is one a name resolves to (a literal one is refused on the command line).
    let now = sim.now;
    assert!(sim.nodes[&a].connect_refusal(link_local).is_some());
    assert!(!sim.nodes.get_mut(&a).unwrap().add_connect(now, link_local));
    assert!(sim.nodes[&a].connect_refusal(global).is_none());
}

#[test]
fn peer_list_naming_the_receiver_is_not_followed_to_itself() {
    let mut sim = Simulator::new(0x5e2f);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance(Duration::from_secs(5));
    // b hand-crafts a peer list that names a itself
    let mut buf = [0u8; 64];
    let (len, _) = wire::emit_peers(Token::new(1).unwrap(), [a].into_iter(), &mut buf).unwrap();
    let now = sim.now;
    sim.nodes
        .get_mut(&a)
        .unwrap()
        .on_datagram(now, b, &mut buf[..len])
        .unwrap();
    assert!(!sim.nodes[&a].contacts().contains(a));
    assert_eq!(sim.stats(a).peer_entries_ignored, 1);
    // a datagram claiming to come from a's own address is dropped
    let mut get = [0u8; 8];
    wire::emit_control(Token::new(1).unwrap(), wire::Kind::GetPeers, &mut get).unwrap();
    let r = sim.nodes.get_mut(&a).unwrap().on_datagram(now, a, &mut get);
    assert_eq!(r, Err(DropReason::FromSelf));
    assert_eq!(sim.peers_of(a), [b].into());
}

#[test]
fn addresses_from_peer_lists_become_peers_only_when_they_answer() {
    let mut sim = Simulator::new(0xadd);
    let cfg = Simulator::config();
    let [a, b] = sim.add_nodes(&cfg);
    sim.connect(b, a);
    sim.advance(Duration::from_secs(5));
    let ghost: SocketAddr = "198.19.9.9:3210".parse().unwrap();
    let mut buf = [0u8; 64];
    let (len, _) = wire::emit_peers(Token::new(1).unwrap(), [ghost].into_iter(), &mut buf).unwrap();
    let now = sim.now;
    sim.nodes
        .get_mut(&a)
        .unwrap()
        .on_datagram(now, b, &mut buf[..len])
        .unwrap();
    assert!(
        sim.nodes[&a].contacts().contains(ghost),
        "queued for contact"
    );
    sim.advance(Duration::from_secs(60));
    assert!(
        !sim.peers_of(a).contains(&ghost),
        "never answered, never a peer"
    );
}

#[test]
fn wrong_token_is_dropped_and_counted() {
    let mut sim = Simulator::new(0x70c);
    let cfg = Simulator::config();
    let mut other = Simulator::config();
    other.token = Token::new(2).unwrap();
    let a = sim.add_node(&cfg);
    let b = sim.add_node(&other);
    sim.connect(b, a);
    sim.advance(Duration::from_secs(10));
    assert!(sim.peers_of(a).is_empty());
    assert!(sim.peers_of(b).is_empty());
    assert!(sim.stats(a).drops_of(DropReason::WrongToken) > 0);
}

#[test]
fn partition_that_heals_reforms_the_mesh() {
    let mut sim = Simulator::new(0x9a27);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = Duration::from_secs(60);
    let nodes = sim.add_chain(&cfg, 6);
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    let (left, right) = nodes.split_at(3);
    for l in left {
        for r in right {
            sim.partition(*l, *r);
        }
    }
    sim.advance(Duration::from_secs(120));
    for l in left {
        for r in right {
            assert!(!sim.peers_of(*l).contains(r), "partition did not separate");
        }
    }
    sim.heal_all();
    // nodes[3] still has nodes[2] as its --connect address, so the sides find each other
    let took = sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh());
    report("healed partition of 6", &sim, took);
}

#[test]
fn nodes_behind_nat_punch_holes_to_each_other() {
    let mut sim = Simulator::new(0x0a7);
    let cfg = Simulator::config();
    let [public, x, y] = sim.add_nodes(&cfg);
    sim.set_nat(x);
    sim.set_nat(y);
    sim.connect(x, public);
    sim.connect(y, public);
    let took = sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    report("two NAT'ed nodes and a public one", &sim, took);
    // and the holes stay open: keepalives keep the mappings alive
    sim.advance(Duration::from_secs(3600));
    sim.assert_full_mesh();
}

/// Two NAT'ed nodes that learn of each other 40 s apart, with NATs that keep a one-way
/// mapping for 30 s (Linux's conntrack): the first one's requests, dropped at the second's
/// NAT, must keep its own NAT open long enough for the second one's requests to get in.
#[test]
fn nat_ed_nodes_that_learn_of_each_other_40_s_apart_still_meet() {
    let mut sim = Simulator::new(0x0a8);
    sim.nat_timeout = Duration::from_secs(30);
    let cfg = Simulator::config();
    let [public, y] = sim.add_nodes(&cfg);
    sim.set_nat(y);
    sim.connect(y, public);
    sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    sim.assert_full_mesh();
    // y hears nothing from the public node for a while, so it learns of x late.
    sim.partition(public, y);
    let [x] = sim.add_nodes(&cfg);
    sim.set_nat(x);
    sim.connect(x, public);
    sim.advance_until(Duration::from_secs(20), |s| s.peers_of(x).contains(&public));
    assert!(sim.nodes[&x].contacts().contains(y), "x never learned of y");
    sim.advance(Duration::from_secs(40));
    sim.heal(public, y);
    let took = sim.advance_until(Duration::from_secs(60), |s| s.is_full_mesh());
    report("NAT'ed nodes learning of each other 40 s apart", &sim, took);
    sim.assert_full_mesh();
}

#[test]
fn same_seed_gives_same_trace_and_loss_changes_it() {
    fn run(seed: u64) -> u64 {
        let mut sim = Simulator::new(seed);
        sim.loss_per_mille = 100;
        let cfg = Simulator::config();
        sim.add_chain(&cfg, 12);
        sim.advance(Duration::from_secs(120));
        sim.trace_hash
    }
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn everyone_restarting_at_once_causes_no_storm() {
    let mut sim = Simulator::new(0x5707);
    let cfg = Simulator::config();
    let nodes = sim.add_star(&cfg, 60);
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh());
    for n in &nodes {
        sim.kill(*n);
    }
    for n in &nodes {
        sim.restart(*n);
    }
    let mut worst = 0u64;
    for _ in 0..120 {
        let before = sim.delivered;
        sim.tick();
        worst = worst.max(sim.delivered - before);
    }
    sim.assert_full_mesh();
    let per_node = worst / nodes.len() as u64;
    println!("60 nodes restarting at once: at most {worst} datagrams in one second ({per_node} per node)");
    assert!(
        per_node < 200,
        "seed {:#x}: storm: {per_node} datagrams per node per second",
        sim.seed
    );
}

#[test]
fn removed_connect_address_is_no_longer_retried() {
    let mut sim = Simulator::new(0x4e4);
    let cfg = Simulator::config();
    let a = sim.add_node(&cfg);
    let gone: SocketAddr = "198.19.7.7:3210".parse().unwrap();
    sim.connect(a, gone);
    sim.advance(Duration::from_secs(2));
    assert!(sim.nodes[&a].contacts().contains(gone));
    sim.nodes.get_mut(&a).unwrap().remove_connect(gone);
    assert!(!sim.nodes[&a].contacts().contains(gone));
    assert!(!sim.nodes[&a].config().connect.contains(&gone));
    let sent = sim.stats(a).control_sent;
    sim.advance(Duration::from_secs(300));
    assert_eq!(
        sim.stats(a).control_sent,
        sent,
        "nothing sent to the removed address"
    );
}
