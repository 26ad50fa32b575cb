//! The session's mirror of the server's token bucket (docs/PROTOCOL.md, sections
//! 11 and 13): the bot never sends faster than `Welcome.rate_limit`, nor more than
//! `Welcome.rate_burst` messages back to back.

use std::time::Instant;

use ticksync_protocol::SessionLimits;

/// Messages per second (and of the burst) left unused for what the session does not
/// see: the pongs the WebSocket layer sends for the server's pings count against the
/// server's bucket too.
const CONTROL_FRAME_RESERVE: u16 = 1;

/// A token bucket: refilled at `rate` per second up to `burst`; a message without a
/// token waits.
#[derive(Debug, Clone, Copy)]
pub(super) struct SendBudget {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl SendBudget {
    /// The budget of a `Welcome`'s limits, less what the WebSocket layer may spend;
    /// `Hello` already took a token of the server's bucket.
    pub fn of(limits: &SessionLimits, now: Instant) -> SendBudget {
        let less = |n: u16| f64::from(n.saturating_sub(CONTROL_FRAME_RESERVE).max(1));
        let burst = less(limits.rate_burst);
        SendBudget {
            rate: less(limits.rate_limit),
            burst,
            tokens: (burst - 1.0).max(0.0),
            at: now,
        }
    }

    /// Takes a token if there is one at `now`.
    pub fn take(&mut self, now: Instant) -> bool {
        if now > self.at {
            let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
            self.at = now;
        }
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}
