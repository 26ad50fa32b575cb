//! `Predictor`: client-side prediction and reconciliation for the local player.
//!
//! The client moves its own player at once with the shared [`step`] and remembers
//! every input the server has not acknowledged yet. Each snapshot says which input
//! the server processed last (`ack_input`) and where the player really is; the
//! predictor compares that with what it predicted for the same input, counts a
//! misprediction when they differ, and replays the unacknowledged inputs on top of
//! the authoritative position. Movement depends only on a player's own inputs, so
//! with no input lost or rejected the prediction is exact.

use std::collections::VecDeque;

use glam::IVec2;

use crate::movement::{MoveConfig, step};
use crate::types::{FixedPos, InputSeq, MoveDir};

#[derive(Debug, Clone, Copy)]
struct Pending {
    seq: InputSeq,
    dir: MoveDir,
    predicted: FixedPos,
}

/// The result of reconciling with an authoritative snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconciliation {
    /// The server agrees with the prediction.
    Confirmed,
    /// The server disagrees: the prediction was off by `error` (authoritative minus
    /// predicted) and has been corrected.
    Corrected {
        /// Authoritative position minus predicted position at the acknowledged input.
        error: IVec2,
    },
}

/// Predicts the local player's position ahead of the server.
#[derive(Debug, Clone)]
pub struct Predictor {
    cfg: MoveConfig,
    pending: VecDeque<Pending>,
    /// The last acknowledged input and where the prediction put the player after it.
    acked: (InputSeq, FixedPos),
    position: FixedPos,
    next_seq: InputSeq,
    mispredictions: u64,
}

impl Predictor {
    /// A predictor for a player at `pos` whose last processed input is `last_seq`
    /// (`InputSeq(0)` for a new session, `Welcome::last_input_seq` on resume).
    pub fn new(cfg: MoveConfig, pos: FixedPos, last_seq: InputSeq) -> Predictor {
        Predictor {
            cfg,
            pending: VecDeque::new(),
            acked: (last_seq, pos),
            position: pos,
            next_seq: last_seq.next(),
            mispredictions: 0,
        }
    }

    /// Applies a new local input: returns its sequence number (to send) and the
    /// predicted position after it.
    pub fn push(&mut self, dir: MoveDir) -> (InputSeq, FixedPos) {
        let seq = self.next_seq;
        self.next_seq = seq.next();
        self.position = step(self.position, dir, &self.cfg);
        self.pending.push_back(Pending {
            seq,
            dir,
            predicted: self.position,
        });
        (seq, self.position)
    }

    /// Reconciles with the server: `ack` is the snapshot's `ack_input`, `authoritative`
    /// the player's position in it.
    pub fn reconcile(&mut self, ack: InputSeq, authoritative: FixedPos) -> Reconciliation {
        while let Some(p) = self.pending.front() {
            if p.seq.is_after(ack) {
                break;
            }
            self.acked = (p.seq, p.predicted);
            self.pending.pop_front();
        }
        let expected = (self.acked.0 == ack).then_some(self.acked.1);
        self.acked = (ack, authoritative);
        if expected == Some(authoritative) {
            return Reconciliation::Confirmed;
        }
        // Rebase the unacknowledged inputs on the server's position.
        let mut pos = authoritative;
        for p in &mut self.pending {
            pos = step(pos, p.dir, &self.cfg);
            p.predicted = pos;
        }
        self.position = pos;
        match expected {
            Some(expected) => {
                self.mispredictions += 1;
                Reconciliation::Corrected {
                    error: authoritative.0 - expected.0,
                }
            }
            None => {
                // An ack the client never sent (e.g. inputs of an earlier connection
                // of a resumed session) has no prediction to compare against: take
                // the server's word, and never reuse a sequence number it has seen,
                // since the server would drop it as stale.
                if !self.next_seq.is_after(ack) {
                    self.next_seq = ack.next();
                }
                Reconciliation::Confirmed
            }
        }
    }

    /// The predicted position after all inputs so far.
    pub fn position(&self) -> FixedPos {
        self.position
    }

    /// The sequence number the next input will get.
    pub fn next_seq(&self) -> InputSeq {
        self.next_seq
    }

    /// Inputs not yet acknowledged by the server, oldest first.
    pub fn unacknowledged(&self) -> impl ExactSizeIterator<Item = (InputSeq, MoveDir)> + '_ {
        self.pending.iter().map(|p| (p.seq, p.dir))
    }

    /// How many times the server disagreed with the prediction.
    pub fn mispredictions(&self) -> u64 {
        self.mispredictions
    }

    /// The movement constants in use.
    pub fn config(&self) -> &MoveConfig {
        &self.cfg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MoveConfig {
        MoveConfig::from_units(100.0, 30, 1000.0)
    }

    #[test]
    fn exact_when_server_applies_every_input() {
        let cfg = cfg();
        let start = FixedPos::new(1000, 1000);
        let mut p = Predictor::new(cfg, start, InputSeq(0));
        let mut server = start;
        for i in 0..20 {
            let dir = MoveDir::new((i * 13 % 255 - 127) as i8, 50);
            let (seq, _) = p.push(dir);
            server = step(server, dir, &cfg);
            if i % 3 == 0 {
                assert_eq!(p.reconcile(seq, server), Reconciliation::Confirmed);
            }
        }
        assert_eq!(p.mispredictions(), 0);
        assert_eq!(p.position(), server);
    }

    #[test]
    fn rejected_input_shows_up_as_one_correction() {
        let cfg = cfg();
        let start = FixedPos::new(1000, 1000);
        let mut p = Predictor::new(cfg, start, InputSeq(0));
        let right = MoveDir::new(127, 0);
        p.push(right); // seq 1: the server drops it
        let (s2, _) = p.push(right);
        let (_s3, _) = p.push(right);
        let server = step(start, right, &cfg); // only seq 2 applied
        let r = p.reconcile(s2, server);
        assert_eq!(
            r,
            Reconciliation::Corrected {
                error: IVec2::new(-53, 0)
            }
        );
        // Replayed seq 3 on top of the authoritative position.
        assert_eq!(p.position(), step(server, right, &cfg));
        assert_eq!(p.unacknowledged().len(), 1);
        // The same ack again, same position: no new misprediction.
        assert_eq!(p.reconcile(s2, server), Reconciliation::Confirmed);
        assert_eq!(p.mispredictions(), 1);
    }

    #[test]
    fn prediction_is_exact_across_the_sequence_wrap() {
        let cfg = cfg();
        let start = FixedPos::new(1000, 1000);
        let mut p = Predictor::new(cfg, start, InputSeq(u32::MAX - 2));
        let dir = MoveDir::new(127, 0);
        let seqs: Vec<InputSeq> = (0..4).map(|_| p.push(dir).0).collect();
        assert_eq!(seqs, [u32::MAX - 1, u32::MAX, 0, 1].map(InputSeq));
        let mut server = start;
        for (i, seq) in seqs.iter().enumerate() {
            server = step(server, dir, &cfg);
            assert_eq!(p.reconcile(*seq, server), Reconciliation::Confirmed);
            assert_eq!(p.unacknowledged().len(), 3 - i);
        }
        assert_eq!(p.next_seq(), InputSeq(2));
        assert_eq!(p.position(), server);
        assert_eq!(p.mispredictions(), 0);
    }

    #[test]
    fn ack_never_sent_adopts_server_position_and_skips_its_seqs() {
        let cfg = cfg();
        let mut p = Predictor::new(cfg, FixedPos::new(500, 500), InputSeq(0));
        p.push(MoveDir::new(127, 0)); // seq 1
        // The server reports seq 7 processed (inputs of an earlier connection).
        let server = FixedPos::new(900, 40);
        assert_eq!(p.reconcile(InputSeq(7), server), Reconciliation::Confirmed);
        assert_eq!(p.position(), server);
        assert_eq!(p.next_seq(), InputSeq(8));
        assert_eq!(p.unacknowledged().len(), 0);
        assert_eq!(p.mispredictions(), 0);
    }
}
