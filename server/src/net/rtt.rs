//! Round-trip time of a connection as the server sees it: the writer task puts
//! its send time into each WebSocket ping's payload, and the reader, when the
//! matching pong comes back, takes the difference. Nothing else is involved:
//! no extra message, no timer, no work on the tick thread.
//!
//! Only a pong echoing the last ping sent counts, once: a client cannot
//! report a time of its choosing with an unsolicited pong, and a late pong of
//! an older ping is ignored. What is measured includes the time the ping
//! waited behind snapshots in the connection's backlog, as a snapshot would:
//! that is the delay the player gets.
//!
//! The application-level `Ping`/`Pong` messages are the client's own clock
//! (it measures its RTT to us); this is the server's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Payload bytes of a timed ping: microseconds since the probe's epoch, big-endian.
pub const PING_PAYLOAD_LEN: usize = 8;

const NONE: u64 = u64::MAX;

/// One connection's pings in flight and its last measured round trip.
#[derive(Debug)]
pub struct RttProbe {
    epoch: Instant,
    /// Send time of the last ping not answered yet (µs since `epoch`), or `NONE`.
    pending: AtomicU64,
    /// The last round trip in µs, or `NONE` before the first pong.
    last: AtomicU64,
}

impl Default for RttProbe {
    fn default() -> Self {
        RttProbe::new(Instant::now())
    }
}

impl RttProbe {
    /// A probe whose timestamps count from `epoch`.
    pub fn new(epoch: Instant) -> RttProbe {
        RttProbe {
            epoch,
            pending: AtomicU64::new(NONE),
            last: AtomicU64::new(NONE),
        }
    }

    fn micros(&self, now: Instant) -> u64 {
        // Saturates below NONE: an epoch hundreds of thousands of years old.
        (now.saturating_duration_since(self.epoch).as_micros() as u64).min(NONE - 1)
    }

    /// The payload of a ping sent at `now`; it replaces any unanswered ping.
    pub fn ping_payload(&self, now: Instant) -> [u8; PING_PAYLOAD_LEN] {
        let sent = self.micros(now);
        self.pending.store(sent, Ordering::Release);
        sent.to_be_bytes()
    }

    /// A pong with `payload` arrived at `now`: the round trip, if it answers
    /// the last ping sent and that ping was not answered before.
    pub fn on_pong(&self, payload: &[u8], now: Instant) -> Option<Duration> {
        let sent = u64::from_be_bytes(payload.try_into().ok()?);
        if sent == NONE {
            return None;
        }
        self.pending
            .compare_exchange(sent, NONE, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let rtt = self.micros(now).saturating_sub(sent);
        self.last.store(rtt, Ordering::Release);
        Some(Duration::from_micros(rtt))
    }

    /// The last measured round trip, if a pong came back yet.
    pub fn last(&self) -> Option<Duration> {
        match self.last.load(Ordering::Acquire) {
            NONE => None,
            us => Some(Duration::from_micros(us)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_pong_echoing_the_last_ping_gives_the_round_trip_once() {
        let t0 = Instant::now();
        let probe = RttProbe::new(t0);
        assert_eq!(probe.last(), None);
        let ping = probe.ping_payload(t0 + 100 * MS);
        assert_eq!(probe.on_pong(&ping, t0 + 142 * MS), Some(42 * MS));
        assert_eq!(probe.last(), Some(42 * MS));
        // The same pong again (or a client replaying it) changes nothing.
        assert_eq!(probe.on_pong(&ping, t0 + 900 * MS), None);
        assert_eq!(probe.last(), Some(42 * MS));
    }

    #[test]
    fn forged_stale_and_malformed_pongs_are_ignored() {
        let t0 = Instant::now();
        let probe = RttProbe::new(t0);
        // Unsolicited: no ping sent yet.
        assert_eq!(probe.on_pong(&0u64.to_be_bytes(), t0 + MS), None);
        let old = probe.ping_payload(t0 + 10 * MS);
        let new = probe.ping_payload(t0 + 20 * MS);
        assert_eq!(probe.on_pong(&old, t0 + 25 * MS), None, "an older ping");
        let forged = 19_000u64.to_be_bytes();
        assert_eq!(probe.on_pong(&forged, t0 + 25 * MS), None);
        for bad in [&[][..], &[1, 2, 3], &[0; 9], &u64::MAX.to_be_bytes()] {
            assert_eq!(probe.on_pong(bad, t0 + 25 * MS), None, "{bad:?}");
        }
        assert_eq!(probe.last(), None);
        assert_eq!(probe.on_pong(&new, t0 + 27 * MS), Some(7 * MS));
    }
}
