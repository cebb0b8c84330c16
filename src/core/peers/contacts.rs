//! [`Contacts`]: the addresses we are trying to reach with "get peer list", configured
//! (`--connect`, tried forever with back-off) or learned from peer lists (tried a few times,
//! then remembered quietly), capped in all and per host that listed them (a quarter of the
//! queue), so that one peer listing junk cannot keep out the addresses the others list.
//!
//! Owns when each address is due and its back-off. It sends nothing: `node` takes the due
//! addresses and sends.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::Duration;

use super::{
    CONNECT_BACKOFF_MAX, CONNECT_BACKOFF_START, LEARNED_ATTEMPTS, LEARNED_BACKOFF_MAX,
    LEARNED_BACKOFF_START, LEARNED_QUIET_PERIOD,
};
use crate::limit::{Host, Tally};
use crate::time::Instant;

/// One address we are trying to reach with "get peer list".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Contact {
    /// When to send the next "get peer list".
    pub next_attempt: Instant,
    /// The delay after the next attempt.
    pub backoff: Duration,
    /// Attempts made so far.
    pub attempts: u32,
    /// From `--connect` (tried forever) rather than from a peer list (tried a few times).
    pub is_configured: bool,
    /// For learned addresses: when the entry is forgotten, [`LEARNED_QUIET_PERIOD`] after it
    /// was given up (far in the future until then).
    pub forget_at: Instant,
    /// When we last sent it "get peer list".
    pub last_sent: Option<Instant>,
    /// For learned addresses: the host of the peer that listed it (or of the relay whose
    /// route it is), whose share of the queue it takes.
    pub lister: Option<Host>,
    /// Asked after it sent Close ([`Contacts::try_once`]): forgotten as soon as the second
    /// attempt goes unanswered, with no quiet period (peer lists that name it later, as
    /// when it restarts, have it contacted again).
    pub once: bool,
}

/// Addresses to contact, with back-off, capped.
#[derive(Debug)]
pub struct Contacts {
    entries: BTreeMap<SocketAddr, Contact>,
    max: usize,
    /// Learned entries by the host that listed them (a host with none has no entry).
    per_lister: Tally<Host>,
    /// The last address served by [`Contacts::take_due`]: the next call starts after it, so
    /// that when more are due than a call takes, the ones at low addresses (junk listed
    /// there) do not come first every time.
    served_last: Option<SocketAddr>,
}

impl Contacts {
    /// An empty queue holding at most `max` addresses, and at most a quarter of that (at
    /// least one) listed by any one host.
    pub fn new(max: usize) -> Contacts {
        Contacts {
            entries: BTreeMap::new(),
            max,
            per_lister: Tally::default(),
            served_last: None,
        }
    }

    /// The most learned addresses one host's lists may hold in the queue.
    pub fn max_per_lister(&self) -> usize {
        (self.max / 4).max(1)
    }

    /// Learned addresses in the queue that `lister`'s host listed.
    pub fn listed_by(&self, lister: SocketAddr) -> usize {
        self.per_lister.get(&Host::of(lister))
    }

    /// Queues a `--connect` address for an attempt at `at`. Configured addresses are never
    /// refused for lack of room and never given up.
    pub fn add_configured(&mut self, addr: SocketAddr, at: Instant) {
        let old = self.entries.insert(
            addr,
            Contact {
                next_attempt: at,
                backoff: CONNECT_BACKOFF_START,
                attempts: 0,
                is_configured: true,
                forget_at: Instant::FAR_FUTURE,
                last_sent: None,
                lister: None,
                once: false,
            },
        );
        self.discharge(old);
    }

    /// Queues an address learned from a peer list of `lister`, unless it is already queued
    /// (or was given up recently). Returns false if it was refused because the queue is
    /// full, or holds [`Contacts::max_per_lister`] addresses listed by `lister`'s host.
    pub fn add_learned(&mut self, now: Instant, addr: SocketAddr, lister: SocketAddr) -> bool {
        if self.entries.contains_key(&addr) {
            return true;
        }
        let host = Host::of(lister);
        let listed = self.per_lister.get(&host);
        if self.entries.len() >= self.max || listed >= self.max_per_lister() {
            return false;
        }
        self.per_lister.add(host);
        self.entries.insert(
            addr,
            Contact {
                next_attempt: now,
                backoff: LEARNED_BACKOFF_START,
                attempts: 0,
                is_configured: false,
                forget_at: Instant::FAR_FUTURE,
                last_sent: None,
                lister: Some(host),
                once: false,
            },
        );
        true
    }

    /// A learned entry left the queue: its lister's host has room for one more.
    fn discharge(&mut self, gone: Option<Contact>) {
        if let Some(host) = gone.and_then(|c| c.lister) {
            self.per_lister.remove(&host);
        }
    }

    /// One more attempt at `addr`, due at `now` (a relay route's regular direct try): a learned
    /// address that was given up gets one attempt despite its quiet period, and is given up
    /// again if it does not answer; a `--connect` address is tried now rather than at the end
    /// of its back-off; a new one is queued as by [`Contacts::add_learned`], in the share of
    /// `lister` (the relay of its route). Returns `Some(true)` if an attempt was queued,
    /// `Some(false)` if one was queued already, `None` if there was no room.
    pub fn try_once_more(
        &mut self,
        now: Instant,
        addr: SocketAddr,
        lister: SocketAddr,
    ) -> Option<bool> {
        match self.entries.get_mut(&addr) {
            Some(c) if !c.is_configured && c.attempts >= LEARNED_ATTEMPTS => {
                c.attempts = LEARNED_ATTEMPTS - 1;
                c.next_attempt = now;
                c.forget_at = Instant::FAR_FUTURE;
                Some(true)
            }
            Some(c) if c.is_configured && c.next_attempt > now => {
                c.next_attempt = now;
                Some(true)
            }
            Some(_) => Some(false),
            None => self.add_learned(now, addr, lister).then_some(true),
        }
    }

    /// An attempt at `addr`, due at `now`, and one more [`LEARNED_BACKOFF_START`] later if
    /// it goes unanswered, then none (a peer that sent Close: one that is still there
    /// answers, one that is gone is not asked again). Two, because a peer answers a peer
    /// list request at most once a second: a second Close forged within that second had its
    /// one ask go unanswered, and left the live peer cut off until its next keepalive. An
    /// address already queued is handled as by [`Contacts::try_once_more`]. Returns whether
    /// an attempt was queued.
    pub fn try_once(&mut self, now: Instant, addr: SocketAddr, lister: SocketAddr) -> bool {
        if self.entries.contains_key(&addr) {
            return self.try_once_more(now, addr, lister) == Some(true);
        }
        if !self.add_learned(now, addr, lister) {
            return false;
        }
        if let Some(c) = self.entries.get_mut(&addr) {
            c.attempts = LEARNED_ATTEMPTS - 2;
            c.once = true;
        }
        true
    }

    /// Removes `addr` (it answered, so it is a peer now). Returns what was queued.
    pub fn remove(&mut self, addr: SocketAddr) -> Option<Contact> {
        let gone = self.entries.remove(&addr);
        self.discharge(gone);
        gone
    }

    /// True if `addr` is queued.
    pub fn contains(&self, addr: SocketAddr) -> bool {
        self.entries.contains_key(&addr)
    }

    /// Number of queued addresses (including given-up ones still remembered).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The queued entry for `addr`.
    pub fn get(&self, addr: SocketAddr) -> Option<&Contact> {
        self.entries.get(&addr)
    }

    /// Forgets given-up learned entries whose quiet period is over, then appends up to `limit`
    /// addresses due at `now` to `out` and schedules each one's next attempt. The walk starts
    /// after the address the last call served and wraps around, so every due address is served
    /// within a few calls, whatever its place in the order.
    pub fn take_due(&mut self, now: Instant, limit: usize, out: &mut Vec<SocketAddr>) {
        let per_lister = &mut self.per_lister;
        self.entries.retain(|_, c| {
            let keep = c.is_configured || c.attempts < LEARNED_ATTEMPTS || c.forget_at > now;
            if let (false, Some(host)) = (keep, c.lister) {
                per_lister.remove(&host);
            }
            keep
        });
        let first = out.len();
        let mut serve = |addr: &SocketAddr, c: &mut Contact| {
            if out.len() >= limit {
                return false;
            }
            if c.next_attempt > now || (!c.is_configured && c.attempts >= LEARNED_ATTEMPTS) {
                return true;
            }
            out.push(*addr);
            c.last_sent = Some(now);
            c.attempts = c.attempts.saturating_add(1);
            c.next_attempt = now + c.backoff;
            if !c.is_configured && c.attempts >= LEARNED_ATTEMPTS {
                // Given up when the last attempt's answer is due; quiet from then on, however
                // late a busy queue got to the attempts (not after a Close: see `once`).
                c.forget_at = if c.once {
                    c.next_attempt
                } else {
                    c.next_attempt + LEARNED_QUIET_PERIOD
                };
            }
            let cap = if c.is_configured {
                CONNECT_BACKOFF_MAX
            } else {
                LEARNED_BACKOFF_MAX
            };
            c.backoff = c.backoff.saturating_mul(2).min(cap);
            true
        };
        match self.served_last {
            Some(last) => {
                let after = self
                    .entries
                    .range_mut((Bound::Excluded(last), Bound::Unbounded));
                let mut more = true;
                for (addr, c) in after {
                    more = serve(addr, c);
                    if !more {
                        break;
                    }
                }
                if more {
                    for (addr, c) in self.entries.range_mut(..=last) {
                        if !serve(addr, c) {
                            break;
                        }
                    }
                }
            }
            None => {
                for (addr, c) in self.entries.iter_mut() {
                    if !serve(addr, c) {
                        break;
                    }
                }
            }
        }
        if let Some(last) = out.get(first..).and_then(<[SocketAddr]>::last) {
            self.served_last = Some(*last);
        }
    }

    /// The earliest time an entry becomes due, if any is waiting.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter(|c| c.is_configured || c.attempts < LEARNED_ATTEMPTS)
            .map(|c| c.next_attempt)
            .min()
    }
}
