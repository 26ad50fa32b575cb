//! How a session numbers its inputs: a verifying session predicts each one with
//! the protocol crate's [`Predictor`]; a session that only counts snapshots (it
//! holds no world to reconcile with) just numbers them.

use glam::IVec2;
use ticksync_protocol::{FixedPos, InputSeq, MoveDir, Predictor, Reconciliation};

/// Input numbering (and prediction) for one connection, from its first snapshot.
#[derive(Debug)]
pub(super) enum Numbering {
    /// Predicts the own player and reconciles with every snapshot.
    Predicted(Predictor),
    /// Only numbers inputs: `next` is the sequence number of the next one.
    Counted {
        /// The next sequence number.
        next: InputSeq,
    },
}

impl Numbering {
    /// Numbering that continues after `ack`, the first snapshot's `ack_input`.
    pub fn counted(ack: InputSeq) -> Numbering {
        Numbering::Counted { next: ack.next() }
    }

    /// Numbers (and predicts) a new input; returns its sequence number.
    pub fn push(&mut self, dir: MoveDir) -> InputSeq {
        match self {
            Numbering::Predicted(p) => p.push(dir).0,
            Numbering::Counted { next } => {
                let seq = *next;
                *next = seq.next();
                seq
            }
        }
    }

    /// The sequence number the next input gets.
    pub fn next_seq(&self) -> InputSeq {
        match self {
            Numbering::Predicted(p) => p.next_seq(),
            Numbering::Counted { next } => *next,
        }
    }

    /// Reconciles a prediction with the server's position of the own player;
    /// the misprediction, if there was one.
    pub fn reconcile(&mut self, ack: InputSeq, own: FixedPos) -> Option<IVec2> {
        match self {
            Numbering::Predicted(p) => match p.reconcile(ack, own) {
                Reconciliation::Corrected { error } => Some(error),
                Reconciliation::Confirmed => None,
            },
            Numbering::Counted { .. } => None,
        }
    }
}
