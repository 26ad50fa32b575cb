//! Exact circles built off the tick thread.
//!
//! With exact per-client circles no two clients share a body, so the view
//! query, delta and encode run once per client: ~2,000 × a few µs per tick,
//! more than the tick's own budget. The tick therefore does only what is
//! O(entities): it indexes the world once ([`Grid::rebuild`]) and publishes
//! that index as an immutable [`ViewTick`]. Each client's frame is then a
//! [`ViewJob`] (the client's centre, ack, full flag and its [`SharedHeld`]
//! baseline) that whoever delivers the frame — a sender shard, in parallel
//! with the other shards and with the next tick — turns into bytes with its own
//! [`JobEncoder`] ([`ViewJob::build`]).
//!
//! The bytes are exactly what [`ViewEncoder`] makes on the tick thread (it is
//! the same code on the same grid). A connection's jobs are built in the order
//! its frames are sent (one shard per connection), so each delta is against the
//! view the previous frame left the client holding; a tick the client skipped
//! (no slot) makes no job, and its next delta is against what it really holds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use glam::IVec2;
use ticksync_protocol::{EntityState, FixedPos, InputSeq, Tick};

use super::interest::{Grid, HeldView, ViewEncoder};
use super::view_delta::TickMotion;

/// A client's baseline, shared between its room (which creates it and resets
/// it on join) and the shard that builds its frames (the only writer while the
/// client is connected, so the lock is never contended in steady state).
pub type SharedHeld = Arc<Mutex<HeldView>>;

/// Locks a [`SharedHeld`]; a poisoned lock (a panic while encoding) still
/// holds a valid view: the next frame is a delta from it or a full snapshot.
pub fn lock_held(held: &SharedHeld) -> MutexGuard<'_, HeldView> {
    held.lock().unwrap_or_else(|p| p.into_inner())
}

/// One tick's index of the world, immutable once published.
#[derive(Debug)]
pub struct ViewTick {
    tick: Tick,
    world_max: IVec2,
    grid: Grid,
    /// How the world moved since the previous tick (`sim/view_delta.rs`).
    motion: TickMotion,
    sent: Arc<SentCounts>,
}

impl ViewTick {
    pub(super) fn new(grid: Grid, world_max: IVec2, sent: Arc<SentCounts>) -> ViewTick {
        ViewTick {
            tick: Tick(0),
            world_max,
            grid,
            motion: TickMotion::default(),
            sent,
        }
    }

    /// Re-indexes `view` for tick `tick` (only while unshared); `prev` is the
    /// world at tick `from`, the tick before, if known.
    pub(super) fn rebuild(
        &mut self,
        tick: Tick,
        view: &[EntityState],
        from: Option<Tick>,
        prev: &[EntityState],
    ) {
        self.tick = tick;
        self.grid.rebuild(view);
        self.motion.update(from, prev, view, self.world_max);
    }

    /// The grid of this tick.
    pub(super) fn grid(&self) -> &Grid {
        &self.grid
    }

    /// How the world moved since the previous tick.
    pub(super) fn motion(&self) -> &TickMotion {
        &self.motion
    }

    /// The tick indexed.
    pub fn tick(&self) -> Tick {
        self.tick
    }

    /// Adds what a shard built from this tick (once per shard and tick, not
    /// per frame: these atomics are the room's).
    pub fn count(&self, built: &Built) {
        self.sent.bytes.fetch_add(built.bytes, Ordering::Relaxed);
        self.sent.full.fetch_add(built.full, Ordering::Relaxed);
        self.sent.bodies.fetch_add(built.bodies, Ordering::Relaxed);
    }
}

/// What the shards built for one room since the room last took the counts.
#[derive(Debug, Default)]
pub struct SentCounts {
    bytes: AtomicU64,
    full: AtomicU64,
    bodies: AtomicU64,
}

impl SentCounts {
    /// Takes the counts, leaving zeros.
    pub fn take(&self) -> Built {
        Built {
            bytes: self.bytes.swap(0, Ordering::Relaxed),
            full: self.full.swap(0, Ordering::Relaxed),
            bodies: self.bodies.swap(0, Ordering::Relaxed),
        }
    }
}

/// Frames built: message bytes, full snapshots among them, bodies encoded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Built {
    /// Message bytes.
    pub bytes: u64,
    /// Full snapshots.
    pub full: u64,
    /// Bodies encoded (one per frame with exact circles).
    pub bodies: u64,
}

/// One client's frame of one tick, to be built by [`ViewJob::build`].
#[derive(Debug)]
pub struct ViewJob {
    /// The client's baseline; the build leaves the new view in it.
    pub held: SharedHeld,
    /// The client's own position: the centre of its view.
    pub center: FixedPos,
    /// The client's last applied input.
    pub ack: InputSeq,
    /// A full snapshot whatever the client holds (join, resume, `Resync`).
    pub full: bool,
}

/// A shard's encoding scratch: reused across frames, ticks and rooms.
#[derive(Debug, Default)]
pub struct JobEncoder {
    encoder: ViewEncoder,
    arena: BytesMut,
}

impl JobEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> JobEncoder {
        JobEncoder::default()
    }
}

impl ViewJob {
    /// The client's complete `Snapshot` message for `tick`; the client's
    /// baseline becomes the new view (so call it only for a frame that will be
    /// delivered, in the connection's order). `built` counts the frame.
    pub fn build(&self, tick: &ViewTick, enc: &mut JobEncoder, built: &mut Built) -> Bytes {
        let mut held = lock_held(&self.held);
        let e = &mut enc.encoder;
        e.world_max = tick.world_max;
        let frame = e.encode(
            &tick.grid,
            Some(&tick.motion),
            tick.tick,
            self.center,
            &held,
            self.full,
            self.ack,
            &mut enc.arena,
        );
        built.bytes += frame.len() as u64;
        built.full += u64::from(e.last_was_full());
        built.bodies += 1;
        e.commit(tick.tick, &mut held);
        frame
    }
}

#[cfg(test)]
#[path = "view_jobs_tests.rs"]
mod tests;
