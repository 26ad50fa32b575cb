//! Statistics shared by all bots of a run, kept cheap to update from thousands of
//! connections: plain atomics for counters, and latency samples buffered per bot
//! and merged into shared hdrhistograms a batch at a time, so the lock is touched
//! rarely.

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::session::Counters;

/// Largest latency recorded, in microseconds (longer samples are clamped to it).
const MAX_LATENCY_US: u64 = 60_000_000;

/// A histogram of microsecond latencies with 3 significant digits.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    // Bounds are constants within hdrhistogram's limits, so this cannot fail.
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// Latency distributions of a run.
#[derive(Debug)]
pub(crate) struct Histograms {
    /// Round-trip times of the whole run.
    pub rtt: Histogram<u64>,
    /// Round-trip times since the last progress line.
    pub rtt_window: Histogram<u64>,
    /// Time between consecutive snapshots of one bot.
    pub snapshot_interval: Histogram<u64>,
    /// `POST /matchmake` latencies (`--matchmake`).
    pub matchmake: Histogram<u64>,
    /// From losing a room to playing in another (`--matchmake`).
    pub rematchmake: Histogram<u64>,
}

/// Counters and distributions of all bots of a run.
#[derive(Debug)]
pub(crate) struct SharedStats {
    /// Bots with an open, welcomed connection right now.
    pub connected_now: AtomicU64,
    /// Bots that were welcomed at least once.
    pub bots_connected: AtomicU64,
    /// Connection attempts that ended before a `Welcome`.
    pub connect_failures: AtomicU64,
    /// Welcomed connections that ended without the bot asking for it.
    pub disconnects: AtomicU64,
    /// Successful reconnections (after the first connection).
    pub reconnects: AtomicU64,
    /// Reconnections that resumed the earlier session.
    pub resumed: AtomicU64,
    /// Lost sessions not resumed because their resume grace was over.
    pub resumes_expired: AtomicU64,
    /// Bots that lost their room and were welcomed in another after a new
    /// matchmake (`--matchmake`: drain, room closed, a resume that failed).
    pub rematchmades: AtomicU64,
    /// Sessions the server ended with close 1001 (it drains or shuts down).
    pub drained: AtomicU64,
    /// Matches a bot played to their end and left (`--churn`).
    pub matches: AtomicU64,
    /// Total time bots spent welcomed, in microseconds (for per-bot rates).
    pub connected_us: AtomicU64,
    /// Sums of all bots' [`Counters`], published a few times a second.
    pub snapshots: AtomicU64,
    pub desyncs: AtomicU64,
    pub mispredictions: AtomicU64,
    pub errors: AtomicU64,
    pub inputs_sent: AtomicU64,
    pub inputs_skipped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub resyncs_requested: AtomicU64,
    pub one_tick_deltas: AtomicU64,
    pub entities_in_one_tick_deltas: AtomicU64,
    pub changed_entries: AtomicU64,
    pub corrected_entries: AtomicU64,
    pub hist: Mutex<Histograms>,
    /// Rooms some bot was welcomed in after matchmaking.
    pub rooms: Mutex<HashSet<String>>,
}

impl SharedStats {
    pub fn new() -> SharedStats {
        SharedStats {
            connected_now: AtomicU64::new(0),
            bots_connected: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
            disconnects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            resumes_expired: AtomicU64::new(0),
            rematchmades: AtomicU64::new(0),
            drained: AtomicU64::new(0),
            matches: AtomicU64::new(0),
            connected_us: AtomicU64::new(0),
            snapshots: AtomicU64::new(0),
            desyncs: AtomicU64::new(0),
            mispredictions: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            inputs_sent: AtomicU64::new(0),
            inputs_skipped: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            resyncs_requested: AtomicU64::new(0),
            one_tick_deltas: AtomicU64::new(0),
            entities_in_one_tick_deltas: AtomicU64::new(0),
            changed_entries: AtomicU64::new(0),
            corrected_entries: AtomicU64::new(0),
            hist: Mutex::new(Histograms {
                rtt: latency_histogram(),
                rtt_window: latency_histogram(),
                snapshot_interval: latency_histogram(),
                matchmake: latency_histogram(),
                rematchmake: latency_histogram(),
            }),
            rooms: Mutex::new(HashSet::new()),
        }
    }

    /// Adds what changed in a bot's counters since `published`, then remembers them.
    pub fn publish(&self, now: &Counters, published: &mut Counters) {
        let add = |a: &AtomicU64, new: u64, old: u64| {
            if new > old {
                a.fetch_add(new - old, Relaxed);
            }
        };
        add(&self.snapshots, now.snapshots, published.snapshots);
        add(&self.desyncs, now.desyncs, published.desyncs);
        add(
            &self.mispredictions,
            now.mispredictions,
            published.mispredictions,
        );
        add(&self.errors, error_count(now), error_count(published));
        add(&self.inputs_sent, now.inputs_sent, published.inputs_sent);
        add(
            &self.inputs_skipped,
            now.inputs_skipped,
            published.inputs_skipped,
        );
        add(
            &self.bytes_received,
            now.bytes_received,
            published.bytes_received,
        );
        add(&self.bytes_sent, now.bytes_sent, published.bytes_sent);
        add(
            &self.resyncs_requested,
            now.resyncs_requested,
            published.resyncs_requested,
        );
        add(
            &self.one_tick_deltas,
            now.one_tick_deltas,
            published.one_tick_deltas,
        );
        add(
            &self.entities_in_one_tick_deltas,
            now.entities_in_one_tick_deltas,
            published.entities_in_one_tick_deltas,
        );
        add(
            &self.changed_entries,
            now.changed_entries,
            published.changed_entries,
        );
        add(
            &self.corrected_entries,
            now.corrected_entries,
            published.corrected_entries,
        );
        *published = *now;
    }

    /// Records latency samples of one bot.
    pub fn record(&self, rtt: &[u64], intervals: &[u64]) {
        if rtt.is_empty() && intervals.is_empty() {
            return;
        }
        let mut h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        for &us in rtt {
            h.rtt.saturating_record(us.max(1));
            h.rtt_window.saturating_record(us.max(1));
        }
        for &us in intervals {
            h.snapshot_interval.saturating_record(us.max(1));
        }
    }

    /// Records one `POST /matchmake`'s latency.
    pub fn matchmade(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        h.matchmake.saturating_record(us.max(1));
    }

    /// A bot that lost its room plays again in another, `took` after the loss.
    pub fn rematchmade(&self, took: Duration) {
        self.rematchmades.fetch_add(1, Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let mut h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        h.rematchmake.saturating_record(us.max(1));
    }

    /// A bot was welcomed in `room` (after matchmaking).
    pub fn room_joined(&self, room: &str) {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if !rooms.contains(room) {
            rooms.insert(room.to_string());
        }
    }

    /// The 99th percentile RTT since the last call, and starts a new window.
    pub fn take_rtt_window_p99(&self) -> Option<Duration> {
        let mut h = self.hist.lock().unwrap_or_else(|p| p.into_inner());
        let p99 = (!h.rtt_window.is_empty())
            .then(|| Duration::from_micros(h.rtt_window.value_at_quantile(0.99)));
        h.rtt_window.reset();
        p99
    }
}

/// Errors a bot saw: undecodable messages, server `Error`s, unexpected messages.
pub(crate) fn error_count(c: &Counters) -> u64 {
    c.decode_errors + c.server_errors + c.unexpected_messages
}

/// A few latency samples buffered by one bot before they go to [`SharedStats`].
#[derive(Debug)]
pub(crate) struct SampleBuf<const N: usize> {
    buf: [u64; N],
    len: usize,
}

impl<const N: usize> SampleBuf<N> {
    pub fn new() -> Self {
        SampleBuf {
            buf: [0; N],
            len: 0,
        }
    }

    /// Adds a sample; `true` when the buffer is full and should be flushed.
    pub fn push(&mut self, d: Duration) -> bool {
        if self.len < N {
            self.buf[self.len] = d.as_micros().min(u128::from(u64::MAX)) as u64;
            self.len += 1;
        }
        self.len == N
    }

    /// The samples so far.
    pub fn as_slice(&self) -> &[u64] {
        &self.buf[..self.len]
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_adds_only_the_difference() {
        let s = SharedStats::new();
        let mut published = Counters::default();
        let mut c = Counters {
            snapshots: 10,
            desyncs: 1,
            decode_errors: 1,
            ..Counters::default()
        };
        s.publish(&c, &mut published);
        c.snapshots = 15;
        c.server_errors = 2;
        s.publish(&c, &mut published);
        assert_eq!(s.snapshots.load(Relaxed), 15);
        assert_eq!(s.desyncs.load(Relaxed), 1);
        assert_eq!(s.errors.load(Relaxed), 3);
    }

    #[test]
    fn rtt_window_resets() {
        let s = SharedStats::new();
        s.record(&[1000, 2000, 50_000], &[33_000]);
        let p99 = s.take_rtt_window_p99().unwrap();
        assert!((49_000..=50_100).contains(&(p99.as_micros() as u64)));
        assert_eq!(s.take_rtt_window_p99(), None);
        let h = s.hist.lock().unwrap();
        assert_eq!(h.rtt.len(), 3);
        assert_eq!(h.snapshot_interval.len(), 1);
    }
}
