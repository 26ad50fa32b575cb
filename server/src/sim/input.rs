//! Input validation: a bounded, strictly increasing queue of one player's inputs.
//!
//! A client never sends a position, only directions with sequence numbers. Here the
//! server drops duplicates and old sequence numbers (a batch may repeat inputs the
//! server already has; "old" in serial-number order, so numbers wrap from
//! 2^32 − 1 to 0), clamps directions into range and bounds the queue so a
//! flood costs the flooder, not the server.

use std::collections::VecDeque;

use ticksync_protocol::{Input, InputSeq, MoveDir};

/// What became of one `Input` message's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputOutcome {
    /// Entries queued.
    pub accepted: u32,
    /// Entries whose sequence number was not above the last one received.
    pub stale: u32,
    /// Entries dropped because the queue was full.
    pub queue_full: u32,
    /// Entries whose direction was clamped into `-127..=127`.
    pub clamped: u32,
}

/// One player's pending inputs, oldest first.
#[derive(Debug, Clone)]
pub struct InputQueue {
    queue: VecDeque<(InputSeq, MoveDir)>,
    capacity: usize,
    last_received: InputSeq,
}

impl InputQueue {
    /// An empty queue holding at most `capacity` inputs, after sequence `last`.
    pub fn new(capacity: usize, last: InputSeq) -> InputQueue {
        InputQueue {
            queue: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            last_received: last,
        }
    }

    /// Validates and queues a batch.
    pub fn push(&mut self, input: &Input) -> InputOutcome {
        let mut out = InputOutcome::default();
        for (seq, dir) in input.iter() {
            if !seq.is_after(self.last_received) {
                out.stale += 1;
                continue;
            }
            // A dropped sequence number is gone for good: a later copy of it is stale,
            // and the client's predictor sees the difference as one correction.
            self.last_received = seq;
            if self.queue.len() >= self.capacity {
                out.queue_full += 1;
                continue;
            }
            let clamped = MoveDir::new(dir.x.max(-127), dir.y.max(-127));
            if clamped != dir {
                out.clamped += 1;
            }
            self.queue.push_back((seq, clamped));
            out.accepted += 1;
        }
        out
    }

    /// Takes the oldest input.
    pub fn pop(&mut self) -> Option<(InputSeq, MoveDir)> {
        self.queue.pop_front()
    }

    /// Drops every pending input (the connection is gone) and continues the
    /// sequence after `last_applied`, so a resumed client picks up from there.
    pub fn reset(&mut self, last_applied: InputSeq) {
        self.queue.clear();
        self.last_received = last_applied;
    }

    /// Inputs waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no input is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The highest sequence number received.
    pub fn last_received(&self) -> InputSeq {
        self.last_received
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An input batch starting at `first` (shared with the world's tests).
    pub(crate) fn input(first: u32, dirs: &[(i8, i8)]) -> Input {
        Input {
            ack_tick: None,
            first_seq: InputSeq(first),
            dirs: dirs.iter().map(|&(x, y)| MoveDir::new(x, y)).collect(),
        }
    }

    #[test]
    fn duplicates_and_old_sequences_are_dropped() {
        let mut q = InputQueue::new(16, InputSeq(0));
        let o = q.push(&input(1, &[(1, 0), (2, 0), (3, 0)]));
        assert_eq!(o.accepted, 3);
        // Overlapping batch: 2 and 3 again, then 4.
        let o = q.push(&input(2, &[(9, 9), (9, 9), (4, 0)]));
        assert_eq!((o.accepted, o.stale), (1, 2));
        let o = q.push(&input(1, &[(0, 0)]));
        assert_eq!(o.stale, 1);
        let seqs: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
    }

    #[test]
    fn flooding_fills_the_queue_and_drops_the_rest() {
        let mut q = InputQueue::new(4, InputSeq(0));
        let mut total = InputOutcome::default();
        for i in 0..5 {
            let o = q.push(&input(1 + i * 2, &[(1, 1), (1, 1)]));
            total.accepted += o.accepted;
            total.queue_full += o.queue_full;
        }
        assert_eq!((total.accepted, total.queue_full), (4, 6));
        assert_eq!(q.len(), 4);
        assert_eq!(q.last_received(), InputSeq(10));
    }

    #[test]
    fn oversize_direction_is_clamped() {
        let mut q = InputQueue::new(4, InputSeq(0));
        let o = q.push(&input(1, &[(-128, -128)]));
        assert_eq!(o.clamped, 1);
        assert_eq!(q.pop(), Some((InputSeq(1), MoveDir::new(-127, -127))));
    }

    #[test]
    fn sequence_numbers_wrap_with_serial_arithmetic() {
        let mut q = InputQueue::new(16, InputSeq(u32::MAX - 1));
        // u32::MAX - 1 (stale), u32::MAX, 0, 1: the last three are new.
        let o = q.push(&input(u32::MAX - 1, &[(1, 0); 4]));
        assert_eq!((o.accepted, o.stale), (3, 1));
        assert_eq!(q.push(&input(u32::MAX, &[(1, 0)])).stale, 1, "before 0");
        let seqs: Vec<u32> = std::iter::from_fn(|| q.pop()).map(|(s, _)| s.0).collect();
        assert_eq!(seqs, [u32::MAX, 0, 1]);
        // Up to 2^31 - 1 ahead is a skip forward; 2^31 ahead is not "after".
        assert_eq!(q.push(&input(1 + (1 << 31), &[(1, 0)])).stale, 1);
        assert_eq!(q.push(&input((1 << 31) - 1 + 1, &[(1, 0)])).accepted, 1);
        assert_eq!(q.last_received(), InputSeq(1 << 31));
    }

    #[test]
    fn resumed_queue_continues_the_sequence() {
        let mut q = InputQueue::new(4, InputSeq(41));
        assert_eq!(q.push(&input(41, &[(1, 0)])).stale, 1);
        assert_eq!(q.push(&input(42, &[(1, 0)])).accepted, 1);
    }
}
