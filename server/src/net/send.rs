//! The tick side's hand-off of a tick's frames to the sockets: a per-tick-thread
//! [`SendBatch`] that room code fills (through
//! [`OutboundPermit::send`](super::outbound::OutboundPermit::send)) and the tick
//! thread flushes once its frames for the tick are done, and the sender shards
//! that write them.
//!
//! A flush is one hand-off per shard, not one per client: the shards are tokio
//! tasks (one per runtime worker), each delivering its part of the batch, in
//! order, straight into the non-blocking sockets (`Gate::deliver`). So a tick
//! costs the tick thread O(clients) plain pushes and O(shards) wake-ups, and
//! the runtime one task poll per shard instead of one per client.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::gate::Gate;

type Frames = Vec<(Arc<Gate>, Bytes)>;

/// Where flushed batches go: the sender shards, or (without a runtime, as in
/// tests that drive ticks by hand) the flushing thread itself.
#[derive(Debug, Clone)]
pub struct Senders(Option<Arc<[mpsc::UnboundedSender<Frames>]>>);

impl Senders {
    /// No shards: a flush delivers every frame on the flushing thread.
    pub fn inline() -> Senders {
        Senders(None)
    }

    /// One sender shard per worker of the current tokio runtime. Must be
    /// called inside a runtime; the shards end when every [`Senders`] and
    /// [`SendBatch`] made from this one is dropped.
    pub fn spawn() -> Senders {
        let shards = tokio::runtime::Handle::current()
            .metrics()
            .num_workers()
            .max(1);
        let txs: Vec<_> = (0..shards)
            .map(|_| {
                let (tx, mut rx) = mpsc::unbounded_channel::<Frames>();
                tokio::spawn(async move {
                    while let Some(frames) = rx.recv().await {
                        for (gate, frame) in frames {
                            gate.deliver(frame);
                        }
                    }
                });
                tx
            })
            .collect();
        Senders(Some(txs.into()))
    }

    /// An empty batch that flushes to these senders.
    pub fn batch(&self) -> SendBatch {
        let shards = self.0.as_ref().map_or(1, |s| s.len());
        SendBatch {
            shards: (0..shards).map(|_| Vec::new()).collect(),
            senders: self.clone(),
        }
    }
}

/// One tick thread's frames for the current tick, per sender shard.
#[derive(Debug)]
pub struct SendBatch {
    shards: Vec<Frames>,
    senders: Senders,
}

impl SendBatch {
    pub(super) fn push(&mut self, gate: Arc<Gate>, frame: Bytes) {
        let n = self.shards.len();
        self.shards[gate.shard % n].push((gate, frame));
    }

    /// Frames waiting for the next flush.
    pub fn len(&self) -> usize {
        self.shards.iter().map(Vec::len).sum()
    }

    /// Whether no frame waits for a flush.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(Vec::is_empty)
    }

    /// Hands every frame pushed since the last flush to its shard: one
    /// hand-off per non-empty shard, never waiting.
    pub fn flush(&mut self) {
        for (i, frames) in self.shards.iter_mut().enumerate() {
            if frames.is_empty() {
                continue;
            }
            let next = Vec::with_capacity(frames.len());
            let frames = std::mem::replace(frames, next);
            match &self.senders.0 {
                None => deliver(frames),
                // A shard that is gone (the runtime is shutting down): deliver
                // here rather than lose frames that were granted a slot.
                Some(txs) => {
                    if let Err(e) = txs[i].send(frames) {
                        deliver(e.0);
                    }
                }
            }
        }
    }
}

fn deliver(frames: Frames) {
    for (gate, frame) in frames {
        gate.deliver(frame);
    }
}

impl Drop for SendBatch {
    fn drop(&mut self) {
        self.flush();
    }
}
