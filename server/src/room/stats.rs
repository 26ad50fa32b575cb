//! Per-room figures readable from any thread (`GET /rooms`, the monitor): the
//! room's tick thread writes them, HTTP handlers read them, nobody locks.
//!
//! Tick durations go into a [`TickWindow`] owned by the room (plain integers,
//! no atomics on the hot path), whose p50/p99 over the last minute the room
//! publishes into [`RoomStats`] once a second. Add a figure by adding an atomic
//! here and a field to [`RoomStatsView`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Figures of one room, updated by its tick thread.
#[derive(Debug, Default)]
pub struct RoomStats {
    /// The room's current tick.
    pub tick: AtomicU32,
    /// Players in the world (connected or within their resume grace).
    pub players: AtomicU32,
    /// Players with a live connection.
    pub connected: AtomicU32,
    /// The tick thread the room runs on.
    pub thread: AtomicU32,
    /// Ticks run.
    pub ticks: AtomicU64,
    /// Ticks that started a whole period late or were skipped.
    pub missed_ticks: AtomicU64,
    /// Median tick duration over the last minute, in nanoseconds.
    pub tick_p50_ns: AtomicU64,
    /// 99th percentile tick duration over the last minute, in nanoseconds.
    pub tick_p99_ns: AtomicU64,
    /// Longest lateness of a tick start over the last second, in nanoseconds.
    pub lateness_max_ns: AtomicU64,
    /// Bytes of frames enqueued to the room's clients over the last second.
    pub bytes_per_sec: AtomicU64,
    /// Bytes of frames enqueued since the room opened.
    pub bytes_total: AtomicU64,
    /// Snapshots skipped because a client's queue was full, since the room opened.
    pub snapshots_skipped: AtomicU64,
}

/// A copy of [`RoomStats`] for JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomStatsView {
    /// Ticks run.
    pub ticks: u64,
    /// Ticks that started a whole period late or were skipped.
    pub missed_ticks: u64,
    /// Median tick duration over the last minute, in microseconds.
    pub tick_p50_us: u64,
    /// 99th percentile tick duration over the last minute, in microseconds.
    pub tick_p99_us: u64,
    /// Longest start lateness over the last second, in microseconds.
    pub lateness_max_us: u64,
    /// Bytes enqueued to the room's clients over the last second.
    pub bytes_per_sec: u64,
    /// Snapshots skipped for full client queues since the room opened.
    pub snapshots_skipped: u64,
    /// Players with a live connection.
    pub connected: u32,
    /// The tick thread the room runs on.
    pub thread: u32,
}

impl RoomStats {
    /// The current figures.
    pub fn view(&self) -> RoomStatsView {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RoomStatsView {
            ticks: get(&self.ticks),
            missed_ticks: get(&self.missed_ticks),
            tick_p50_us: get(&self.tick_p50_ns) / 1_000,
            tick_p99_us: get(&self.tick_p99_ns) / 1_000,
            lateness_max_us: get(&self.lateness_max_ns) / 1_000,
            bytes_per_sec: get(&self.bytes_per_sec),
            snapshots_skipped: get(&self.snapshots_skipped),
            connected: self.connected.load(Ordering::Relaxed),
            thread: self.thread.load(Ordering::Relaxed),
        }
    }
}

/// One player as its room sees it (`GET /rooms/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayerDetail {
    /// The player id.
    pub id: u32,
    /// Display name or token identity.
    pub name: Option<String>,
    /// Whether its connection is live (false: within the resume grace).
    pub connected: bool,
    /// Inputs received and not yet applied.
    pub input_queue: usize,
    /// The last input sequence applied.
    pub last_input: u32,
    /// Snapshots skipped for this connection because its queue was full.
    pub snapshots_skipped: u64,
    /// The connection's last round-trip time in microseconds, measured with
    /// the server's WebSocket pings; `None` before the first pong (and in the
    /// resume grace).
    pub rtt_us: Option<u64>,
}

/// A room's players and figures, answered by the room's own thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoomDetail {
    /// The room's tick when it answered.
    pub tick: u32,
    /// Every player, by id.
    pub players: Vec<PlayerDetail>,
}

/// Buckets per doubling of duration: ~19 % wide, good enough for p50/p99.
const PER_OCTAVE: u32 = 4;
/// 1 µs .. ~1 s.
const BUCKETS: usize = 21 * PER_OCTAVE as usize;
/// One slot per 5 s, 12 slots: the last minute.
const SLOTS: usize = 12;

/// Tick durations of the last minute in log buckets, in slots of 5 seconds of
/// ticks. Pure: the room feeds it durations and says when a tick passed.
#[derive(Debug, Clone)]
pub struct TickWindow {
    counts: Vec<[u32; BUCKETS]>,
    slot: usize,
    ticks_in_slot: u32,
    ticks_per_slot: u32,
}

impl TickWindow {
    /// A window for a room ticking `tick_rate` times a second.
    pub fn new(tick_rate: u16) -> TickWindow {
        TickWindow {
            counts: vec![[0; BUCKETS]; SLOTS],
            slot: 0,
            ticks_in_slot: 0,
            ticks_per_slot: u32::from(tick_rate.max(1)) * 5,
        }
    }

    /// Records one tick's duration.
    pub fn record(&mut self, d: Duration) {
        if self.ticks_in_slot == self.ticks_per_slot {
            self.slot = (self.slot + 1) % SLOTS;
            self.counts[self.slot] = [0; BUCKETS];
            self.ticks_in_slot = 0;
        }
        self.ticks_in_slot += 1;
        self.counts[self.slot][bucket(d)] += 1;
    }

    /// The `q`-quantile (0..=1) of the window, as its bucket's upper bound.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut total = [0u64; BUCKETS];
        for slot in &self.counts {
            for (t, c) in total.iter_mut().zip(slot) {
                *t += u64::from(*c);
            }
        }
        let n: u64 = total.iter().sum();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in total.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_bound(i);
            }
        }
        upper_bound(BUCKETS - 1)
    }
}

fn bucket(d: Duration) -> usize {
    let us = d.as_secs_f64() * 1e6;
    if us <= 1.0 {
        return 0;
    }
    ((us.log2() * f64::from(PER_OCTAVE)).ceil() as usize).min(BUCKETS - 1)
}

fn upper_bound(i: usize) -> Duration {
    Duration::from_secs_f64(2f64.powf(i as f64 / f64::from(PER_OCTAVE)) / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_the_last_minute_only() {
        let mut w = TickWindow::new(10); // 50 ticks per slot
        assert_eq!(w.quantile(0.5), Duration::ZERO);
        for i in 0..100 {
            let us = if i < 98 { 100 } else { 5_000 };
            w.record(Duration::from_micros(us));
        }
        let p50 = w.quantile(0.5).as_micros();
        let p99 = w.quantile(0.99).as_micros();
        assert!((100..=120).contains(&p50), "p50 {p50}");
        assert!((5_000..=6_000).contains(&p99), "p99 {p99}");
        // A minute of fast ticks pushes the slow ones out.
        for _ in 0..600 {
            w.record(Duration::from_micros(10));
        }
        assert!(w.quantile(0.99).as_micros() <= 12);
    }
}
