//! Per-connection and per-address limits: a token bucket on client messages with
//! a flood detector, and a count of open connections per IP address.
//!
//! The bucket is pure (time is a parameter), so its rules are tested without
//! sleeping; the connection task feeds it `Instant::now()`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;

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
}
