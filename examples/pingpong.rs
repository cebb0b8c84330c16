//! UDP ping-pong latency, a helper of `scripts/bench.sh` (std only, no ethcloud code).
//!
//! - `pingpong server ADDR [IDLE_SECS]` echoes every datagram back to its sender; it exits
//!   after `IDLE_SECS` (default 300) without a datagram, so a forgotten server cannot linger.
//! - `pingpong client ADDR COUNT` sends COUNT 64-byte datagrams one at a time, each waiting for
//!   its echo (1 s timeout, then counted lost), after 100 warm-up rounds, and prints
//!   `median_us=… p99_us=… lost=…`: one-way latency, i.e. half the round trip.

use std::env;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const PAYLOAD_LEN: usize = 64;
const WARM_UP: u32 = 100;

fn main() -> ExitCode {
    let args: Vec<String> = env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("server") => server(&args[2..]),
        Some("client") => client(&args[2..]),
        _ => Err("usage: pingpong server ADDR [IDLE_SECS] | pingpong client ADDR COUNT".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pingpong: {e}");
            ExitCode::FAILURE
        }
    }
}

fn server(args: &[String]) -> Result<(), String> {
    let addr = args.first().ok_or("server needs ADDR")?;
    let idle_secs: u64 = match args.get(1) {
        Some(s) => s.parse().map_err(|_| format!("bad IDLE_SECS {s}"))?,
        None => 300,
    };
    let socket = UdpSocket::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(idle_secs.max(1))))
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((len, from)) => {
                let _ = socket.send_to(&buf[..len], from);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Ok(()),
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
}

fn client(args: &[String]) -> Result<(), String> {
    let addr = args.first().ok_or("client needs ADDR")?;
    let count: u32 = args
        .get(1)
        .ok_or("client needs COUNT")?
        .parse()
        .map_err(|_| "bad COUNT")?;
    let bind = if addr.starts_with('[') {
        "[::]:0"
    } else {
        "0.0.0.0:0"
    };
    let socket = UdpSocket::bind(bind).map_err(|e| e.to_string())?;
    socket.connect(addr).map_err(|e| format!("{addr}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let mut samples = Vec::with_capacity(count as usize);
    let mut lost = 0u32;
    let mut out = [0u8; PAYLOAD_LEN];
    let mut back = [0u8; 2048];
    for round in 0..WARM_UP + count {
        out[..4].copy_from_slice(&round.to_be_bytes());
        let start = Instant::now();
        socket.send(&out).map_err(|e| format!("send: {e}"))?;
        // Skip stale echoes of earlier (lost, then late) rounds.
        let answered = loop {
            match socket.recv(&mut back) {
                Ok(len) if len == PAYLOAD_LEN && back[..4] == round.to_be_bytes() => break true,
                Ok(_) => continue,
                Err(_) => break false,
            }
        };
        if round < WARM_UP {
            continue;
        }
        if answered {
            samples.push(start.elapsed().as_secs_f64() * 1e6 / 2.0);
        } else {
            lost += 1;
        }
    }
    if samples.is_empty() {
        return Err(format!("no echo at all from {addr}"));
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    let p99 = samples[(samples.len() * 99 / 100).min(samples.len() - 1)];
    println!("median_us={median:.1} p99_us={p99:.1} lost={lost}");
    Ok(())
}
