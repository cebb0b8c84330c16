//! A flood of handshake initiations from a key nobody trusts, a helper of `tests/e2e_identity.rs`.
//!
//! `handshake_flood TOKEN RESPONDER_PUBKEY TARGET COUNT DISTINCT SOCKETS SRC_IP [SRC_IP ...]`
//!
//! Makes `DISTINCT` genuine initiations with [`initiate`] from a fresh random key (each costs
//! two X25519 Diffie-Hellmans, so they are made once), mac'd to `RESPONDER_PUBKEY` so that each
//! one passes the responder's cheap check and reaches its rate limit and Noise step. Then it
//! sends `COUNT` datagrams at full speed, cycling through the initiations and through `SOCKETS`
//! UDP sockets, each bound to a kernel-chosen (random) port on one of the `SRC_IP`s in turn.
//! A send the kernel refuses for lack of buffer space is retried after 50 µs; the whole flood
//! gives up after [`LIMIT`].
//!
//! Prints `sent=N retries=R seconds=S rate=D/s sockets=K sources=J`, exit status 0.

use std::env;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ethcloud::identity::handshake::{initiate, timestamp, Identity, INITIATION_LEN};
use ethcloud::identity::keys::{PublicKey, SecretKey};
use ethcloud::wire::Token;

/// The longest the flood may take (its callers wait on it with no deadline of their own).
const LIMIT: Duration = Duration::from_secs(120);

const USAGE: &str =
    "usage: handshake_flood TOKEN RESPONDER_PUBKEY TARGET COUNT DISTINCT SOCKETS SRC_IP [SRC_IP ...]";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("handshake_flood: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Does the work described in the module doc and returns the summary line. (Also called by
/// `tests/e2e_identity.rs`, which includes this file as a module and runs it on a thread that
/// entered the namespace.)
pub fn run(args: &[String]) -> Result<String, String> {
    let [token, responder, target, count, distinct, sockets, sources @ ..] = args else {
        return Err(USAGE.into());
    };
    if sources.is_empty() {
        return Err(USAGE.into());
    }
    let token = token
        .parse::<u64>()
        .ok()
        .and_then(|t| Token::new(t).ok())
        .ok_or("bad TOKEN")?;
    let responder = PublicKey::from_text(responder).map_err(|e| format!("RESPONDER: {e:?}"))?;
    let target: SocketAddr = target.parse().map_err(|_| "bad TARGET")?;
    let count: u64 = count.parse().map_err(|_| "bad COUNT")?;
    let distinct: usize = distinct.parse().map_err(|_| "bad DISTINCT")?;
    let sockets: usize = sockets.parse().map_err(|_| "bad SOCKETS")?;
    let sources: Vec<IpAddr> = sources
        .iter()
        .map(|s| s.parse().map_err(|_| format!("bad SRC_IP {s}")))
        .collect::<Result<_, _>>()?;
    if distinct == 0 || sockets == 0 {
        return Err("DISTINCT and SOCKETS must be at least 1".into());
    }

    let id = Identity::new(SecretKey::from_random(random::<32>()?));
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let mut messages = Vec::with_capacity(distinct);
    for i in 0..distinct {
        let mut out = [0u8; INITIATION_LEN];
        let index = u32::from_be_bytes(random::<4>()?);
        let stamp = timestamp(wall + i as u64);
        initiate(
            &id,
            token,
            &responder,
            index,
            stamp,
            &random::<32>()?,
            &mut out,
        )
        .map_err(|e| format!("initiate: {e}"))?;
        messages.push(out);
    }
    let socks: Vec<UdpSocket> = (0..sockets)
        .map(|i| {
            let src = SocketAddr::new(sources[i % sources.len()], 0);
            UdpSocket::bind(src).map_err(|e| format!("bind {src}: {e}"))
        })
        .collect::<Result<_, _>>()?;

    let start = Instant::now();
    let mut retries = 0u64;
    for i in 0..count {
        let i = i as usize;
        let msg = &messages[i % distinct];
        let sock = &socks[i % sockets];
        loop {
            match sock.send_to(msg, target) {
                Ok(_) => break,
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock
                        || e.raw_os_error() == Some(libc::ENOBUFS) =>
                {
                    retries += 1;
                    if start.elapsed() > LIMIT {
                        return Err(format!(
                            "send to {target}: {e} (giving up after {} s)",
                            LIMIT.as_secs()
                        ));
                    }
                    std::thread::sleep(Duration::from_micros(50));
                }
                Err(e) => return Err(format!("send to {target}: {e}")),
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    Ok(format!(
        "sent={count} retries={retries} seconds={seconds:.3} rate={:.0}/s sockets={sockets} sources={}",
        count as f64 / seconds.max(1e-9),
        sources.len()
    ))
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(out)
}
