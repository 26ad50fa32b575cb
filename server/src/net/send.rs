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
//!
//! With exact circles the tick does not even encode: it pushes one
//! [`ViewJob`] per client, and the shards build each frame from the tick's
//! published index (`sim/view_jobs.rs`), in parallel with each other and with
//! the next tick, just before writing it.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::gate::Gate;
use crate::sim::{Built, JobEncoder, ViewJob, ViewTick};

/// One frame for one connection: encoded already, or (exact circles) to be
/// built by the shard from a tick's published index.
enum Item {
    Frame(Arc<Gate>, Bytes),
    /// `tick` indexes [`Work::ticks`].
    View(Arc<Gate>, u32, ViewJob),
}

/// What one flush hands one shard.
#[derive(Default)]
struct Work {
    /// The published indexes the view jobs refer to (one `Arc` per room and
    /// tick, not per client: no reference count bounces per frame).
    ticks: Vec<Arc<ViewTick>>,
    items: Vec<Item>,
}

impl std::fmt::Debug for Work {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Work")
            .field("ticks", &self.ticks.len())
            .field("items", &self.items.len())
            .finish()
    }
}

impl Work {
    /// Builds and delivers every item, in order.
    fn deliver(self, enc: &mut JobEncoder) {
        let mut built = vec![Built::default(); self.ticks.len()];
        for item in self.items {
            match item {
                Item::Frame(gate, frame) => gate.deliver(frame),
                Item::View(gate, t, job) => {
                    if gate.is_closed() {
                        // Nobody will read it: release the slot, skip the work.
                        gate.release();
                        continue;
                    }
                    let i = t as usize;
                    let frame = job.build(&self.ticks[i], enc, &mut built[i]);
                    gate.deliver(frame);
                }
            }
        }
        for (tick, built) in self.ticks.iter().zip(&built) {
            tick.count(built);
        }
    }
}

/// Where flushed batches go: the sender shards, or (without a runtime, as in
/// tests that drive ticks by hand) the flushing thread itself.
#[derive(Debug, Clone)]
pub struct Senders(Option<Arc<[mpsc::UnboundedSender<Work>]>>);

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
                let (tx, mut rx) = mpsc::unbounded_channel::<Work>();
                tokio::spawn(async move {
                    let mut enc = JobEncoder::new();
                    while let Some(work) = rx.recv().await {
                        work.deliver(&mut enc);
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
            shards: (0..shards).map(|_| Work::default()).collect(),
            senders: self.clone(),
            inline: JobEncoder::new(),
        }
    }
}

/// One tick thread's frames for the current tick, per sender shard.
#[derive(Debug)]
pub struct SendBatch {
    shards: Vec<Work>,
    senders: Senders,
    /// Builds view jobs delivered on the flushing thread (no shards, or a
    /// shard gone at shutdown).
    inline: JobEncoder,
}

/// A tick's published index as registered in a [`SendBatch`]
/// ([`SendBatch::view_tick`]): what a view job pushed with
/// `OutboundPermit::send_view` refers to.
#[derive(Debug, Clone, Copy)]
pub struct ViewTickRef(u32);

impl SendBatch {
    pub(super) fn push(&mut self, gate: Arc<Gate>, frame: Bytes) {
        let n = self.shards.len();
        self.shards[gate.shard % n]
            .items
            .push(Item::Frame(gate, frame));
    }

    /// Registers `tick`'s index with every shard (O(shards), once per room
    /// and tick), for the view jobs of that tick.
    pub fn view_tick(&mut self, tick: &Arc<ViewTick>) -> ViewTickRef {
        let mut at = 0;
        for work in &mut self.shards {
            at = work.ticks.len();
            work.ticks.push(tick.clone());
        }
        ViewTickRef(at as u32)
    }

    pub(super) fn push_view(&mut self, gate: Arc<Gate>, tick: ViewTickRef, job: ViewJob) {
        let n = self.shards.len();
        self.shards[gate.shard % n]
            .items
            .push(Item::View(gate, tick.0, job));
    }

    /// Frames waiting for the next flush.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|w| w.items.len()).sum()
    }

    /// Whether no frame waits for a flush.
    pub fn is_empty(&self) -> bool {
        self.shards.iter().all(|w| w.items.is_empty())
    }

    /// Hands every frame pushed since the last flush to its shard: one
    /// hand-off per non-empty shard, never waiting.
    pub fn flush(&mut self) {
        for (i, work) in self.shards.iter_mut().enumerate() {
            if work.items.is_empty() {
                work.ticks.clear();
                continue;
            }
            let next = Work {
                ticks: Vec::new(),
                items: Vec::with_capacity(work.items.len()),
            };
            let work = std::mem::replace(work, next);
            match &self.senders.0 {
                None => work.deliver(&mut self.inline),
                // A shard that is gone (the runtime is shutting down): deliver
                // here rather than lose frames that were granted a slot.
                Some(txs) => {
                    if let Err(e) = txs[i].send(work) {
                        e.0.deliver(&mut self.inline);
                    }
                }
            }
        }
    }
}

impl Drop for SendBatch {
    fn drop(&mut self) {
        self.flush();
    }
}
