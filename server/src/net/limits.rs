//! Per-connection and per-address limits: a token bucket on client messages with
//! a flood detector, a count of open connections per IP address, and
//! [`ApiLimits`], the per-address limits of the public HTTP API (`POST
//! /matchmake`, `GET /rooms`).
//!
//! The bucket is pure (time is a parameter), so its rules are tested without
//! sleeping; the connection task feeds it `Instant::now()`.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;

pub use crate::metrics::ApiRoute;

/// A token bucket: `rate` tokens per second, at most `burst` stored.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(0.0),
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now.max(self.last);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is there (zero if one is).
    pub fn wait(&self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if tokens >= 1.0 {
            Duration::ZERO
        } else if self.rate > 0.0 {
            Duration::from_secs_f64((1.0 - tokens) / self.rate)
        } else {
            Duration::MAX
        }
    }

    /// Whether the bucket is full at `now` (nothing to remember about it).
    fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.rate >= self.burst
    }
}

/// What to do with one received message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: handle it.
    Allow,
    /// Over the rate: drop it and count it.
    Drop,
    /// Over the rate for too long: close the connection (1008).
    Abuse,
}

/// Rate-limit settings of one connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Messages per second refilled.
    pub rate: f64,
    /// Messages that may arrive back to back.
    pub burst: u32,
    /// Dropped messages within one `window` that mark a flood.
    pub max_drops: u32,
    /// The flood detector's window.
    pub window: Duration,
}

/// The token bucket plus a flood detector: a client that keeps sending over the
/// rate gets `max_drops` dropped messages within one window, then is closed.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    bucket: TokenBucket,
    cfg: RateConfig,
    window_start: Instant,
    drops: u32,
}

impl RateLimiter {
    /// A limiter with a full bucket at `now`.
    pub fn new(cfg: RateConfig, now: Instant) -> RateLimiter {
        RateLimiter {
            bucket: TokenBucket::new(cfg.rate, cfg.burst, now),
            cfg,
            window_start: now,
            drops: 0,
        }
    }

    /// Judges one message received at `now`.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if self.bucket.try_take(now) {
            return Verdict::Allow;
        }
        if now.saturating_duration_since(self.window_start) >= self.cfg.window {
            self.window_start = now;
            self.drops = 0;
        }
        self.drops += 1;
        if self.drops >= self.cfg.max_drops {
            Verdict::Abuse
        } else {
            Verdict::Drop
        }
    }
}

/// Open connections per IP address. Entries disappear when their count drops to 0,
/// so the table holds only addresses with open connections.
#[derive(Debug, Default)]
pub struct IpCounts {
    counts: DashMap<IpAddr, usize>,
}

impl IpCounts {
    /// Counts a new connection from `ip`; the guard uncounts it when dropped.
    /// Returns the guard and the number of connections from `ip` including it.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> (IpGuard, usize) {
        let n = {
            let mut e = self.counts.entry(ip).or_insert(0);
            *e += 1;
            *e
        };
        (
            IpGuard {
                table: self.clone(),
                ip,
            },
            n,
        )
    }

    /// Open connections from `ip`.
    pub fn get(&self, ip: IpAddr) -> usize {
        self.counts.get(&ip).map(|e| *e).unwrap_or(0)
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.counts.len()
    }
}

/// One counted connection; see [`IpCounts::acquire`].
#[derive(Debug)]
pub struct IpGuard {
    table: Arc<IpCounts>,
    ip: IpAddr,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        if let Some(mut e) = self.table.counts.get_mut(&self.ip) {
            *e = e.saturating_sub(1);
        }
        self.table.counts.remove_if(&self.ip, |_, n| *n == 0);
    }
}

/// Why a request was refused (HTTP 429), and when asking again can succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// The address's token bucket for the route is empty.
    Rate(Duration),
    /// The address reserved `--seats-per-ip` seats within one `--seat-timeout`.
    Seats(Duration),
}

impl Limited {
    /// The `Retry-After` value: whole seconds, at least 1.
    pub fn retry_after_secs(self) -> u64 {
        let (Limited::Rate(d) | Limited::Seats(d)) = self;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// The settings of [`ApiLimits`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiConfig {
    /// Requests per second per address and route (`--matchmake-rate`).
    pub rate: f64,
    /// Back-to-back requests per address and route (`--matchmake-burst`).
    pub burst: u32,
    /// Seats one address may reserve within one `window` (`--seats-per-ip`).
    pub seats: u32,
    /// The seat hold (`--seat-timeout`): a seat reserved longer ago than this
    /// is claimed or freed.
    pub window: Duration,
}

/// One address's state.
#[derive(Debug)]
struct ApiEntry {
    matchmake: TokenBucket,
    rooms: TokenBucket,
    /// When each seat still counted against the address was reserved, oldest
    /// first.
    seats: VecDeque<Instant>,
}

/// Per-address limits of the public HTTP API: a token bucket per address and
/// route, and a bound on the seats an address reserved within one seat
/// timeout (so one address can neither starve other callers of the
/// matchmaker nor hold the server's seats). IPv6 addresses count per /64 (one
/// subscriber's prefix), IPv4-mapped IPv6 as IPv4.
///
/// Addresses are forgotten once their buckets are full again and their seats
/// aged out (a sweep at most every second), so the table holds only the
/// addresses active within the last few seconds.
#[derive(Debug)]
pub struct ApiLimits {
    cfg: ApiConfig,
    table: DashMap<IpAddr, ApiEntry>,
    epoch: Instant,
    /// Milliseconds after `epoch` of the last sweep.
    swept_ms: AtomicU64,
    sweeping: Mutex<()>,
}

impl ApiLimits {
    /// Limits with `cfg`, no address seen yet.
    pub fn new(cfg: ApiConfig) -> ApiLimits {
        ApiLimits {
            cfg,
            table: DashMap::new(),
            epoch: Instant::now(),
            swept_ms: AtomicU64::new(0),
            sweeping: Mutex::new(()),
        }
    }

    /// The key `ip` is counted under: IPv4 as is, IPv6 by its /64.
    pub fn key(ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
            v4 => v4,
        }
    }

    /// Judges one request for `route` from `ip` at `now`. For
    /// [`ApiRoute::matchmake`] an allowed request also takes one of the
    /// address's seats: give it back with [`ApiLimits::unreserve`] if no seat
    /// was reserved after all.
    pub fn check(&self, ip: IpAddr, route: ApiRoute, now: Instant) -> Result<(), Limited> {
        self.sweep(now);
        let cfg = &self.cfg;
        let mut e = self.table.entry(Self::key(ip)).or_insert_with(|| ApiEntry {
            matchmake: TokenBucket::new(cfg.rate, cfg.burst, now),
            rooms: TokenBucket::new(cfg.rate, cfg.burst, now),
            seats: VecDeque::new(),
        });
        let e = &mut *e;
        let bucket = match route {
            ApiRoute::matchmake => &mut e.matchmake,
            ApiRoute::rooms => &mut e.rooms,
        };
        if !bucket.try_take(now) {
            return Err(Limited::Rate(bucket.wait(now)));
        }
        if route == ApiRoute::rooms {
            return Ok(());
        }
        while e
            .seats
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= cfg.window)
        {
            e.seats.pop_front();
        }
        if e.seats.len() >= cfg.seats as usize {
            let oldest = e.seats.front().copied().unwrap_or(now);
            return Err(Limited::Seats(
                (oldest + cfg.window).saturating_duration_since(now),
            ));
        }
        e.seats.push_back(now);
        Ok(())
    }

    /// Gives back the seat [`ApiLimits::check`] took at `at` for `ip` (the
    /// matchmake reserved none).
    pub fn unreserve(&self, ip: IpAddr, at: Instant) {
        if let Some(mut e) = self.table.get_mut(&Self::key(ip))
            && let Some(i) = e.seats.iter().rposition(|&t| t == at)
        {
            e.seats.remove(i);
        }
    }

    /// Seats counted against `ip` at `now`.
    pub fn seats(&self, ip: IpAddr, now: Instant) -> usize {
        self.table.get(&Self::key(ip)).map_or(0, |e| {
            e.seats
                .iter()
                .filter(|&&t| now.saturating_duration_since(t) < self.cfg.window)
                .count()
        })
    }

    /// Addresses remembered.
    pub fn addresses(&self) -> usize {
        self.table.len()
    }

    /// Forgets the addresses with nothing to remember, at most once a second.
    fn sweep(&self, now: Instant) {
        let at = now.saturating_duration_since(self.epoch).as_millis() as u64;
        if at < self.swept_ms.load(Ordering::Relaxed) + 1000 {
            return;
        }
        let Ok(_one) = self.sweeping.try_lock() else {
            return;
        };
        self.swept_ms.store(at, Ordering::Relaxed);
        let window = self.cfg.window;
        self.table.retain(|_, e| {
            !(e.matchmake.is_full(now)
                && e.rooms.is_full(now)
                && e.seats
                    .back()
                    .is_none_or(|&t| now.saturating_duration_since(t) >= window))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: RateConfig = RateConfig {
        rate: 10.0,
        burst: 5,
        max_drops: 3,
        window: Duration::from_secs(1),
    };

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 5, t0);
        assert_eq!((0..8).filter(|_| b.try_take(t0)).count(), 5);
        // 100 ms refill one token at 10/s, never more than the burst.
        assert!(b.try_take(t0 + Duration::from_millis(100)));
        assert!(!b.try_take(t0 + Duration::from_millis(100)));
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..8).filter(|_| b.try_take(later)).count(), 5);
    }

    #[test]
    fn steady_senders_at_the_rate_are_never_dropped() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(CFG, t0);
        for i in 0..1000 {
            assert_eq!(l.check(t0 + Duration::from_millis(100 * i)), Verdict::Allow);
        }
    }

    #[test]
    fn a_flood_is_dropped_then_closed() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(CFG, t0);
        let verdicts: Vec<_> = (0..8).map(|_| l.check(t0)).collect();
        assert_eq!(&verdicts[..5], &[Verdict::Allow; 5]);
        assert_eq!(
            &verdicts[5..],
            &[Verdict::Drop, Verdict::Drop, Verdict::Abuse]
        );
    }

    #[test]
    fn occasional_drops_spread_over_windows_are_forgiven() {
        let t0 = Instant::now();
        let mut l = RateLimiter::new(CFG, t0);
        for _ in 0..5 {
            l.check(t0);
        }
        // Two drops per window, below max_drops, for many windows.
        for w in 0..20u64 {
            let t = t0 + Duration::from_secs(w) + Duration::from_millis(999);
            let mut allowed = 0;
            let first_refusal = loop {
                match l.check(t) {
                    Verdict::Allow => allowed += 1,
                    v => break v,
                }
            };
            assert_eq!(allowed, 5, "window {w}: the bucket refilled");
            assert_eq!(first_refusal, Verdict::Drop);
            assert_eq!(l.check(t), Verdict::Drop, "window {w}");
        }
    }

    #[test]
    fn ip_counts_come_and_go() {
        let t = Arc::new(IpCounts::default());
        let a: IpAddr = [127, 0, 0, 2].into();
        let (g1, n1) = t.acquire(a);
        let (g2, n2) = t.acquire(a);
        assert_eq!((n1, n2, t.get(a)), (1, 2, 2));
        drop(g1);
        assert_eq!(t.get(a), 1);
        drop(g2);
        assert_eq!((t.get(a), t.addresses()), (0, 0));
    }

    const API: ApiConfig = ApiConfig {
        rate: 2.0,
        burst: 4,
        seats: 3,
        window: Duration::from_secs(10),
    };

    #[test]
    fn an_address_over_its_rate_waits_and_others_do_not() {
        let t0 = Instant::now();
        let l = ApiLimits::new(ApiConfig { seats: 100, ..API });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        for _ in 0..4 {
            assert_eq!(l.check(a, ApiRoute::matchmake, t0), Ok(()));
        }
        // Empty at 2/s: the next token in 500 ms, Retry-After rounds up to 1 s.
        let refused = l.check(a, ApiRoute::matchmake, t0).unwrap_err();
        assert_eq!(refused, Limited::Rate(Duration::from_millis(500)));
        assert_eq!(refused.retry_after_secs(), 1);
        // Another address and another route keep their own buckets.
        assert_eq!(l.check(b, ApiRoute::matchmake, t0), Ok(()));
        assert_eq!(l.check(a, ApiRoute::rooms, t0), Ok(()));
        // Refused requests take no seat; a refill lets one through.
        assert_eq!(l.seats(a, t0), 4);
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(l.check(a, ApiRoute::matchmake, t1), Ok(()));
        assert!(l.check(a, ApiRoute::matchmake, t1).is_err());
    }

    #[test]
    fn seats_per_address_are_bounded_until_they_age_out() {
        let t0 = Instant::now();
        let l = ApiLimits::new(ApiConfig { burst: 100, ..API });
        let a: IpAddr = [10, 0, 0, 1].into();
        let at = |ms| t0 + Duration::from_millis(ms);
        for ms in [0, 1000, 2000] {
            assert_eq!(l.check(a, ApiRoute::matchmake, at(ms)), Ok(()));
        }
        // The oldest seat counts until 10 s after it was reserved.
        assert_eq!(
            l.check(a, ApiRoute::matchmake, at(2500)),
            Err(Limited::Seats(Duration::from_millis(7500)))
        );
        assert_eq!(
            Limited::Seats(Duration::from_millis(7500)).retry_after_secs(),
            8
        );
        // A matchmake that reserved nothing gives its seat back.
        l.unreserve(a, at(2000));
        assert_eq!(l.check(a, ApiRoute::matchmake, at(2600)), Ok(()));
        assert!(l.check(a, ApiRoute::matchmake, at(9999)).is_err());
        assert_eq!(l.check(a, ApiRoute::matchmake, at(10_000)), Ok(()));
        // GET /rooms takes no seat.
        assert_eq!(l.check(a, ApiRoute::rooms, at(10_000)), Ok(()));
        assert_eq!(l.seats(a, at(10_000)), 3);
    }

    #[test]
    fn ipv6_counts_per_64_and_idle_addresses_are_forgotten() {
        let t0 = Instant::now();
        let l = ApiLimits::new(ApiConfig { seats: 100, ..API });
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for ip in [one, same_64, one, same_64] {
            assert_eq!(l.check(ip, ApiRoute::rooms, t0), Ok(()));
        }
        assert!(l.check(same_64, ApiRoute::rooms, t0).is_err());
        assert_eq!(l.check(other_64, ApiRoute::rooms, t0), Ok(()));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(ApiLimits::key(mapped), IpAddr::from([10, 1, 2, 3]));
        assert_eq!(l.addresses(), 2);
        // Buckets full again and no seat within the window: forgotten.
        let later = t0 + Duration::from_secs(3);
        assert_eq!(l.check(mapped, ApiRoute::rooms, later), Ok(()));
        assert_eq!(l.addresses(), 1);
    }
}
