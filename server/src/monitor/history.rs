//! The last minutes of the server's figures, for the monitor's charts: the
//! sampler feeds it the counters' totals once a second, it keeps what changed
//! in each interval. Pure: time is a parameter.

use std::collections::VecDeque;

use serde::Serialize;

/// The server's totals and levels at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Open WebSocket connections.
    pub connections: i64,
    /// Players in rooms.
    pub players: i64,
    /// Rooms open.
    pub rooms: i64,
    /// WebSocket payload bytes sent since start.
    pub bytes_sent: u64,
    /// WebSocket payload bytes received since start.
    pub bytes_received: u64,
    /// Room ticks missed since start.
    pub ticks_missed: u64,
    /// Disconnects since start, one count per reason (a fixed order).
    pub disconnects: Vec<u64>,
    /// Connections refused before the upgrade, one count per reason.
    pub refusals: Vec<u64>,
    /// Each tick thread's busy share of the last second, in thousandths.
    pub busy_permille: Vec<u32>,
}

/// One interval: levels at its end, counts within it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Increases by one per sample; `?since=` asks for the later ones.
    pub seq: u64,
    /// The end of the interval, unix milliseconds.
    pub t_ms: u64,
    /// The interval's length in milliseconds.
    pub dt_ms: u64,
    /// Open WebSocket connections at its end.
    pub connections: i64,
    /// Players at its end.
    pub players: i64,
    /// Rooms at its end.
    pub rooms: i64,
    /// Each tick thread's busy share, in thousandths.
    pub busy_permille: Vec<u32>,
    /// Bytes sent within the interval.
    pub bytes_sent: u64,
    /// Bytes received within the interval.
    pub bytes_received: u64,
    /// Room ticks missed within the interval.
    pub ticks_missed: u64,
    /// Disconnects within the interval, per reason.
    pub disconnects: Vec<u64>,
    /// Refused connections within the interval, per reason.
    pub refusals: Vec<u64>,
}

/// A ring of the last `capacity` samples.
#[derive(Debug)]
pub struct History {
    samples: VecDeque<Sample>,
    capacity: usize,
    last: Option<(u64, Totals)>,
    next_seq: u64,
}

impl History {
    /// An empty history of at most `capacity` samples.
    pub fn new(capacity: usize) -> History {
        History {
            samples: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
            last: None,
            next_seq: 1,
        }
    }

    /// Takes the totals at unix time `t_ms`: the first call sets the baseline,
    /// each later one adds the interval since the previous call.
    pub fn record(&mut self, t_ms: u64, totals: Totals) {
        let Some((last_t, last)) = self.last.replace((t_ms, totals.clone())) else {
            return;
        };
        // Counters only grow; a smaller total (never expected) counts as 0.
        let delta = |now: &[u64], before: &[u64]| -> Vec<u64> {
            now.iter()
                .enumerate()
                .map(|(i, n)| n.saturating_sub(before.get(i).copied().unwrap_or(0)))
                .collect()
        };
        let sample = Sample {
            seq: self.next_seq,
            t_ms,
            dt_ms: t_ms.saturating_sub(last_t),
            connections: totals.connections,
            players: totals.players,
            rooms: totals.rooms,
            busy_permille: totals.busy_permille,
            bytes_sent: totals.bytes_sent.saturating_sub(last.bytes_sent),
            bytes_received: totals.bytes_received.saturating_sub(last.bytes_received),
            ticks_missed: totals.ticks_missed.saturating_sub(last.ticks_missed),
            disconnects: delta(&totals.disconnects, &last.disconnects),
            refusals: delta(&totals.refusals, &last.refusals),
        };
        self.next_seq += 1;
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples after sequence number `since` (0: all), oldest first.
    pub fn since(&self, since: u64) -> Vec<Sample> {
        self.samples
            .iter()
            .filter(|s| s.seq > since)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(sent: u64, lost: u64, players: i64) -> Totals {
        Totals {
            players,
            bytes_sent: sent,
            disconnects: vec![0, lost],
            refusals: vec![0],
            busy_permille: vec![100, 200],
            ..Totals::default()
        }
    }

    #[test]
    fn samples_hold_what_changed_in_each_interval() {
        let mut h = History::new(3);
        h.record(1_000, totals(500, 2, 4));
        assert!(h.since(0).is_empty(), "the first call is the baseline");
        h.record(2_000, totals(800, 2, 5));
        h.record(3_500, totals(800, 5, 3));
        let s = h.since(0);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].seq, s[0].dt_ms, s[0].bytes_sent), (1, 1_000, 300));
        assert_eq!(s[0].disconnects, [0, 0]);
        assert_eq!((s[1].dt_ms, s[1].bytes_sent, s[1].players), (1_500, 0, 3));
        assert_eq!(s[1].disconnects, [0, 3]);
        assert_eq!(s[1].busy_permille, [100, 200]);
        assert_eq!(h.since(1).len(), 1);
        assert!(h.since(2).is_empty());
    }

    #[test]
    fn only_the_last_samples_are_kept() {
        let mut h = History::new(3);
        for i in 0..10 {
            h.record(i * 1_000, totals(i * 10, 0, 0));
        }
        let seqs: Vec<u64> = h.since(0).iter().map(|s| s.seq).collect();
        assert_eq!(seqs, [7, 8, 9]);
    }
}
