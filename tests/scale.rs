//! Scale sanity in the simulator, small enough for a debug build: 10 % churn in a mesh of 100
//! heals and the dead leave every peer table by the timeout, steady-state traffic per node is a
//! linear keepalive floor plus gossip growing no faster than √N·log N, and everyone restarting
//! at once stays under a stated per-node message bound. The full-size figures (N up to 1000) come from
//! `cargo bench --bench scale` and are kept in `docs/scale.md`.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use sim::Simulator;

const N: usize = 100;

/// Adds `n` nodes, each connecting to a random earlier one.
fn random_tree(sim: &mut Simulator, cfg: &ethcloud::node::Config, n: usize) -> Vec<SocketAddr> {
    let mut nodes: Vec<SocketAddr> = Vec::with_capacity(n);
    for i in 0..n {
        let node = sim.add_node(cfg);
        if i > 0 {
            let parent = nodes[sim.rng.below(nodes.len())];
            sim.connect(node, parent);
        }
        nodes.push(node);
    }
    nodes
}

/// The live nodes that still have any of `gone` in their peer table (verified or not).
fn holders(sim: &Simulator, gone: &[SocketAddr]) -> Vec<SocketAddr> {
    sim.nodes
        .iter()
        .filter(|(_, node)| gone.iter().any(|g| node.peers().contains(*g)))
        .map(|(a, _)| *a)
        .collect()
}

#[test]
fn mesh_of_100_heals_after_ten_percent_churn_and_forgets_the_dead_by_the_timeout() {
    let mut sim = Simulator::new(0xc4a2);
    let timeout = Duration::from_secs(60);
    let mut cfg = Simulator::config();
    cfg.peer_timeout = timeout;
    let nodes = random_tree(&mut sim, &cfg, N);
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh_by_count());
    sim.assert_full_mesh();
    sim.advance(Duration::from_secs(30));

    // every 10th node leaves, alternately with Close and silently
    let leaving: Vec<SocketAddr> = nodes.iter().copied().skip(5).step_by(10).collect();
    let (closed, silent): (Vec<_>, Vec<_>) = leaving
        .iter()
        .enumerate()
        .partition::<Vec<_>, _>(|(i, _)| i % 2 == 0);
    let closed: Vec<SocketAddr> = closed.into_iter().map(|(_, a)| *a).collect();
    let silent: Vec<SocketAddr> = silent.into_iter().map(|(_, a)| *a).collect();
    for a in &closed {
        sim.shutdown(*a);
    }
    for a in &silent {
        sim.kill(*a);
    }
    sim.run_until_idle(1_000_000);
    assert_eq!(
        holders(&sim, &closed),
        Vec::<SocketAddr>::new(),
        "seed {:#x}: a Close did not remove its sender at once",
        sim.seed
    );

    // the silent ones are gone from every table one second past the timeout...
    sim.advance(timeout + Duration::from_secs(1));
    assert_eq!(
        holders(&sim, &silent),
        Vec::<SocketAddr>::new(),
        "seed {:#x}: a dead node outlived the peer timeout",
        sim.seed
    );
    // ...and no peer list brings any of them back
    sim.advance(Duration::from_secs(300));
    assert_eq!(holders(&sim, &leaving), Vec::<SocketAddr>::new());
    sim.assert_full_mesh();

    // they come back (same address, same --connect) and the mesh heals
    for a in &leaving {
        sim.restart(*a);
    }
    let took = sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh_by_count());
    sim.assert_full_mesh();
    println!(
        "{N} nodes: {} closed, {} silent, all gone by the {} s timeout; back in a full mesh {} s after returning",
        closed.len(),
        silent.len(),
        timeout.as_secs(),
        took.as_secs()
    );
}

/// Steady-state management traffic per node per minute, measured in an idle mesh of N = 50 and
/// N = 200 (random tree, default timeouts, so K = 60 s), 10 simulated minutes after the mesh
/// formed and gossip settled. The model (`docs/scale.md`):
/// - keepalives: the liveness rule forces one datagram to each of the N − 1 peers per K. A peer
///   sent nothing else gets an empty list (10 bytes) every K − 2 s, so at most (N − 1)·60/58
///   per minute; a gossip list stands in for one. Linear.
/// - gossip: Trickle at its longest interval (K), with suppression, sends about
///   (2/3)·ln N lists of ⌈√(N−1)⌉ entries per node per interval: ∝ √N·log N bytes. Measured
///   here: 4.0 and 3.8·√N·log₂N B/min at N = 50 and 200.
///
/// The bounds: keepalives and lists together at least N − 1 per minute, keepalives at most
/// (N − 1)·60/58 + 1, gossip under 8·√N·log₂N B/min, and from N = 50 to N = 200 it grows by at most
/// 1.25 times the growth of √N·log N (2.71×, so 3.39×): linear growth (4×), the old design's
/// N^1.5 (8×) or a gossip storm would fail it.
#[test]
fn steady_state_traffic_is_a_linear_keepalive_floor_plus_gossip_under_sqrt_n_log_n() {
    let mut gossip = Vec::new();
    for (n, seed) in [(50usize, 0x57ea_d050u64), (200, 0x57ea_d200)] {
        let mut sim = Simulator::new(seed);
        let cfg = Simulator::config();
        let _ = random_tree(&mut sim, &cfg, n);
        sim.advance_until(Duration::from_secs(300), |s| s.is_full_mesh_by_count());
        sim.advance(Duration::from_secs(180));
        let before = sim.traffic_total();
        let minutes = 10;
        sim.advance(Duration::from_secs(60 * minutes));
        sim.assert_full_mesh();
        let after = sim.traffic_total();
        let per_node_minute = (n as u64 * minutes) as f64;
        let keepalives = (after.keepalives - before.keepalives) as f64 / per_node_minute;
        let keepalive_bytes =
            (after.keepalive_bytes - before.keepalive_bytes) as f64 / per_node_minute;
        let lists = (after.lists - before.lists) as f64 / per_node_minute;
        let list_bytes = (after.list_bytes - before.list_bytes) as f64 / per_node_minute;
        let requests = after.requests - before.requests;
        let nf = n as f64;
        let reference = nf.sqrt() * nf.log2();
        println!(
            "N = {n}: per node per minute {keepalives:.1} keepalives ({keepalive_bytes:.0} B), {lists:.2} gossip lists ({list_bytes:.0} B = {:.2}·√N·log₂N), {requests} requests in all",
            list_bytes / reference
        );
        let floor = (n - 1) as f64;
        assert!(
            keepalives + lists >= floor && keepalives <= floor * 60.0 / 58.0 + 1.0,
            "seed {seed:#x}: {keepalives:.1} keepalives and {lists:.1} lists per node per minute for {} peers",
            n - 1
        );
        assert_eq!(
            after.keepalive_bytes - before.keepalive_bytes,
            10 * (after.keepalives - before.keepalives),
            "keepalives are empty peer lists of 10 bytes"
        );
        assert!(
            list_bytes <= 8.0 * reference,
            "seed {seed:#x}: gossip {list_bytes:.0} B per node per minute at N = {n}, over 8·√N·log₂N = {:.0}",
            8.0 * reference
        );
        assert_eq!(
            requests, 0,
            "seed {seed:#x}: nobody is asked anything in steady state"
        );
        gossip.push((nf, list_bytes));
    }
    let (small, large) = (gossip[0], gossip[1]);
    let growth = large.1 / small.1;
    let reference = (large.0.sqrt() * large.0.log2()) / (small.0.sqrt() * small.0.log2());
    println!("gossip grew {growth:.2}× from N = 50 to 200; √N·log N grows {reference:.2}×");
    assert!(
        growth <= 1.25 * reference,
        "gossip grew {growth:.2}× from N = 50 to N = 200 (√N·log N: {reference:.2}×)"
    );
}

/// No storm: while all 100 restarted nodes find each other again, no node sends more than
/// `3·N` datagrams in any one second, nor more than `6·N` in total until the mesh is whole
/// (each of its N−1 links costs a handful of messages, once). Measured: 177 per second at most
/// and 454 in total for the busiest node (`docs/scale.md`).
#[test]
fn everyone_restarting_at_once_stays_under_a_per_node_message_bound() {
    let mut sim = Simulator::new(0x4e57);
    let cfg = Simulator::config();
    let mut nodes: Vec<SocketAddr> = Vec::with_capacity(N);
    for i in 0..N {
        let node = sim.add_node(&cfg);
        if i > 0 {
            sim.connect(node, nodes[i - 1]);
        }
        nodes.push(node);
    }
    sim.advance_until(Duration::from_secs(120), |s| s.is_full_mesh_by_count());
    sim.advance(Duration::from_secs(60));
    for a in &nodes {
        sim.kill(*a);
    }
    for a in &nodes {
        sim.restart(*a);
    }

    let (per_second_bound, total_bound) = (3 * N as u64, 6 * N as u64);
    let mut worst = 0u64;
    let mut before: Vec<u64> = Vec::with_capacity(N);
    for _ in 0..120 {
        if sim.is_full_mesh_by_count() {
            break;
        }
        before.clear();
        before.extend(sim.nodes.values().map(|n| n.stats().datagrams_sent));
        sim.tick();
        for (node, sent) in sim.nodes.values().zip(before.iter()) {
            worst = worst.max(node.stats().datagrams_sent - sent);
        }
    }
    sim.assert_full_mesh();
    let most = sim
        .nodes
        .values()
        .map(|n| n.stats().datagrams_sent)
        .max()
        .unwrap_or(0);
    println!("{N} nodes restarting at once: at most {worst} datagrams sent by one node in one second, at most {most} in total until full mesh");
    assert!(
        worst <= per_second_bound,
        "seed {:#x}: storm: {worst} datagrams from one node in one second (bound {per_second_bound})",
        sim.seed
    );
    assert!(
        most <= total_bound,
        "seed {:#x}: {most} datagrams from one node until full mesh (bound {total_bound})",
        sim.seed
    );
}
