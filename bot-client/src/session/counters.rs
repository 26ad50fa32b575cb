//! What a session counts: the cumulative [`Counters`] the runner adds up into
//! the run's report.

use ticksync_protocol::Applied;

/// What a session has seen and done so far (cumulative over reconnects).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// `Snapshot` messages received.
    pub snapshots: u64,
    /// Deltas ignored while waiting for the full snapshot a `Resync` asked for.
    pub snapshots_skipped: u64,
    /// Snapshots that could not be applied (missing baseline, checksum mismatch, ...).
    pub desyncs: u64,
    /// `Resync` messages sent.
    pub resyncs_requested: u64,
    /// Snapshots whose own position differed from the prediction.
    pub mispredictions: u64,
    /// Inputs sent (one per simulation tick).
    pub inputs_sent: u64,
    /// Overdue inputs skipped after a stall.
    pub inputs_skipped: u64,
    /// `Input` messages sent.
    pub input_messages_sent: u64,
    /// `Ping` messages sent.
    pub pings_sent: u64,
    /// `Pong` messages received.
    pub pongs: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Payload bytes received.
    pub bytes_received: u64,
    /// Payload bytes sent.
    pub bytes_sent: u64,
    /// Server messages that did not decode.
    pub decode_errors: u64,
    /// Server messages of a type this version does not know (skipped).
    pub unknown_messages: u64,
    /// `Error` messages from the server.
    pub server_errors: u64,
    /// Messages that arrived at the wrong time (e.g. a snapshot before `Welcome`).
    pub unexpected_messages: u64,
    /// Deltas of one tick applied (the ones the listing counts below cover).
    pub one_tick_deltas: u64,
    /// Entities held after those deltas, summed.
    pub entities_in_one_tick_deltas: u64,
    /// Their `changed` entries (velocity changes: turns, starts, stops), summed.
    pub changed_entries: u64,
    /// Their `corrected` entries (positions off their velocity: late or doubled
    /// inputs), summed.
    pub corrected_entries: u64,
}

impl Counters {
    /// Counts what an applied snapshot listed, for one-tick deltas only: a delta
    /// spanning skipped ticks lists turns and corrections of several ticks.
    pub(crate) fn count_listing(&mut self, applied: &Applied, baseline_age: u32, held: usize) {
        if baseline_age != 1 {
            return;
        }
        self.one_tick_deltas += 1;
        self.entities_in_one_tick_deltas += held as u64;
        self.changed_entries += applied.changed as u64;
        self.corrected_entries += applied.corrected as u64;
    }
}
