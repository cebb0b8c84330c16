//! An impersonator's handshake initiation, a helper of `tests/e2e_identity.rs`.
//!
//! `forge_initiation TOKEN RESPONDER_PUBKEY CLAIMED_PUBKEY SECRET_KEY_FILE TARGET COUNT WAIT_SECS`
//!
//! Builds Noise IK first messages by hand (Noise spec section 5, with `snow`'s primitives) that
//! carry `CLAIMED_PUBKEY` as the initiator's static key while the `ss` Diffie-Hellman uses the
//! private key in `SECRET_KEY_FILE`: what someone who copied a trusted node's public key, but not
//! its private key, can send. mac1 is computed as any sender can (it needs the responder's
//! public key only), so the messages reach the responder's Noise step. When the private key
//! *is* the claimed key's, the message is a genuine initiation (the control).
//!
//! Before sending it checks that the hand-built message equals `ethcloud`'s own
//! [`initiate`] for the same keys and ephemeral key, so a "no reply" means the forgery was
//! refused, not that the forger is wrong. Then it sends `COUNT` initiations (fresh ephemeral
//! key, index and timestamp each, 100 ms apart) from one UDP socket to `TARGET`, listens until
//! `WAIT_SECS` after the last one, and prints `sent=N replies=M responses=R`, exit status 0:
//! M datagrams of any kind came back, R of them handshake responses (a genuine initiation's
//! session also carries the responder's Hello).

use std::env;
use std::fs::{self, File};
use std::io::Read;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ethcloud::identity::handshake::{
    initiate, timestamp, Identity, INITIATION, INITIATION_LEN, MAC1_LABEL, MAC1_LEN, NOISE_PARAMS,
    PROLOGUE_PREFIX, RESPONSE, RESPONSE_LEN, TIMESTAMP_LEN,
};
use ethcloud::identity::keys::{PublicKey, SecretKey, KEY_LEN};
use ethcloud::wire::{Token, TOKEN_LEN};
use ring::{digest, hmac};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};

const USAGE: &str = "usage: forge_initiation TOKEN RESPONDER_PUBKEY CLAIMED_PUBKEY SECRET_KEY_FILE TARGET COUNT WAIT_SECS";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    match run(&args) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("forge_initiation: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Does the work described in the module doc and returns the summary line. (Also called by
/// `tests/e2e_identity.rs`, which includes this file as a module and runs it on a thread that
/// entered the namespace.)
pub fn run(args: &[String]) -> Result<String, String> {
    let [token, responder, claimed, secret, target, count, wait] = args else {
        return Err(USAGE.into());
    };
    let token = token
        .parse::<u64>()
        .ok()
        .and_then(|t| Token::new(t).ok())
        .ok_or("bad TOKEN")?;
    let responder = PublicKey::from_text(responder).map_err(|e| format!("RESPONDER: {e:?}"))?;
    let claimed = PublicKey::from_text(claimed).map_err(|e| format!("CLAIMED: {e:?}"))?;
    let text = fs::read_to_string(secret).map_err(|e| format!("{secret}: {e}"))?;
    let secret = SecretKey::from_text(&text).map_err(|e| format!("SECRET_KEY_FILE: {e:?}"))?;
    let count: u32 = count.parse().map_err(|_| "bad COUNT")?;
    let wait: f64 = wait.parse().map_err(|_| "bad WAIT_SECS")?;

    self_check(token, &responder)?;

    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    let mut sent = 0u32;
    for _ in 0..count {
        let e = random::<KEY_LEN>()?;
        let index = u32::from_be_bytes(random::<4>()?);
        let msg = forge(token, &claimed, &secret, &responder, &e, index, now_stamp());
        socket
            .send_to(&msg, target.as_str())
            .map_err(|e| format!("send to {target}: {e}"))?;
        sent += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs_f64(wait);
    let mut replies = 0u32;
    let mut responses = 0u32;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(|e| format!("set_read_timeout: {e}"))?;
        match socket.recv_from(&mut buf) {
            Ok((n, from)) => {
                replies += 1;
                if n == RESPONSE_LEN && buf.get(TOKEN_LEN) == Some(&RESPONSE) {
                    responses += 1;
                }
                eprintln!("forge_initiation: {n} bytes from {from}");
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(format!("recv: {e}")),
        }
    }
    Ok(format!(
        "sent={sent} replies={replies} responses={responses}"
    ))
}

/// The hand-built message must be byte for byte `ethcloud`'s initiation when it is built
/// honestly (the private key belongs to the claimed public key).
fn self_check(token: Token, responder: &PublicKey) -> Result<(), String> {
    let honest = SecretKey::from_random(random::<KEY_LEN>()?);
    let e = random::<KEY_LEN>()?;
    let stamp = now_stamp();
    let mut genuine = [0u8; INITIATION_LEN];
    initiate(
        &Identity::new(honest.clone()),
        token,
        responder,
        7,
        stamp,
        &e,
        &mut genuine,
    )
    .map_err(|e| format!("initiate: {e}"))?;
    let built = forge(
        token,
        &honest.public_key(),
        &honest,
        responder,
        &e,
        7,
        stamp,
    );
    if built[..] != genuine[..] {
        return Err("self-check failed: the hand-built initiation differs from ethcloud's".into());
    }
    Ok(())
}

/// Noise IK message 1 (`-> e, es, s, ss` with the timestamp as payload) in ethcloud's framing,
/// claiming `claimed` while `secret` does the `ss` Diffie-Hellman.
fn forge(
    token: Token,
    claimed: &PublicKey,
    secret: &SecretKey,
    responder: &PublicKey,
    ephemeral: &[u8; KEY_LEN],
    index: u32,
    stamp: [u8; TIMESTAMP_LEN],
) -> Vec<u8> {
    let r = DefaultResolver;
    let mut sym = Symmetric::new(&r);
    let mut prologue = PROLOGUE_PREFIX.to_vec();
    prologue.extend_from_slice(&token.to_bytes());
    sym.mix_hash(&prologue);
    sym.mix_hash(&responder.0); // IK pre-message: <- s

    let mut msg = token.to_bytes().to_vec();
    msg.push(INITIATION);
    msg.extend_from_slice(&index.to_be_bytes());
    let mut e = r
        .resolve_dh(&DHChoice::Curve25519)
        .expect("x25519 resolver");
    e.set(ephemeral);
    let e_pub = e.pubkey().to_vec();
    msg.extend_from_slice(&e_pub);
    sym.mix_hash(&e_pub);
    let mut dh = [0u8; 32];
    e.dh(&responder.0, &mut dh).expect("es");
    sym.mix_key(&dh);
    sym.encrypt_and_hash(&claimed.0, &mut msg);
    let mut s = r
        .resolve_dh(&DHChoice::Curve25519)
        .expect("x25519 resolver");
    s.set(secret.as_bytes());
    s.dh(&responder.0, &mut dh).expect("ss");
    sym.mix_key(&dh);
    sym.encrypt_and_hash(&stamp, &mut msg);

    // mac1: HMAC-SHA256 keyed with SHA-256(label ‖ responder's public key), first 16 bytes.
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(MAC1_LABEL);
    ctx.update(&responder.0);
    let key = hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref());
    let tag = hmac::sign(&key, &msg);
    msg.extend_from_slice(&tag.as_ref()[..MAC1_LEN]);
    msg
}

/// Noise's SymmetricState (h, ck and the CipherState), enough for one message.
struct Symmetric {
    hash: Box<dyn snow::types::Hash>,
    cipher: Box<dyn snow::types::Cipher>,
    ck: [u8; 32],
    h: [u8; 32],
    n: u64,
}

impl Symmetric {
    fn new(r: &DefaultResolver) -> Symmetric {
        let mut hash = r.resolve_hash(&HashChoice::Blake2s).expect("blake2s");
        let mut h = [0u8; 64];
        // The protocol name is longer than the hash: h = HASH(name).
        hash.input(NOISE_PARAMS.as_bytes());
        hash.result(&mut h);
        let mut start = [0u8; 32];
        start.copy_from_slice(&h[..32]);
        Symmetric {
            hash,
            cipher: r
                .resolve_cipher(&CipherChoice::ChaChaPoly)
                .expect("chachapoly"),
            ck: start,
            h: start,
            n: 0,
        }
    }

    fn mix_hash(&mut self, data: &[u8]) {
        let mut out = [0u8; 64];
        self.hash.reset();
        self.hash.input(&self.h);
        self.hash.input(data);
        self.hash.result(&mut out);
        self.h.copy_from_slice(&out[..32]);
    }

    fn mix_key(&mut self, ikm: &[u8]) {
        let (mut o1, mut o2, mut o3) = ([0u8; 64], [0u8; 64], [0u8; 64]);
        let ck = self.ck;
        self.hash.hkdf(&ck, ikm, 2, &mut o1, &mut o2, &mut o3);
        self.ck.copy_from_slice(&o1[..32]);
        let mut k = [0u8; 32];
        k.copy_from_slice(&o2[..32]);
        self.cipher.set(&k);
        self.n = 0;
    }

    fn encrypt_and_hash(&mut self, plain: &[u8], out: &mut Vec<u8>) {
        let mut c = vec![0u8; plain.len() + 16];
        self.cipher.encrypt(self.n, &self.h, plain, &mut c);
        self.n += 1;
        self.mix_hash(&c);
        out.extend_from_slice(&c);
    }
}

/// The TAI64N timestamp of now.
fn now_stamp() -> [u8; TIMESTAMP_LEN] {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    timestamp(nanos)
}

fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut out = [0u8; N];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut out))
        .map_err(|e| format!("/dev/urandom: {e}"))?;
    Ok(out)
}
