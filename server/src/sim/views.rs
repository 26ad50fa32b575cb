//! The per-tick snapshot builder the tick loop drives: it picks the interest
//! scheme from the config and turns "this client, at this position, holding this
//! baseline" into one complete `Snapshot` message.
//!
//! - No view radius: everyone sees everyone, one body per distinct baseline
//!   ([`SnapshotPlanner`]) shared by all clients behind a per-client header.
//! - Exact circles ([`ViewEncoder`]): one view, delta and encode per client,
//!   normally built off the tick thread from the tick's published index
//!   ([`Views::view_tick`], `sim/view_jobs.rs`).
//! - Cell circles ([`CellViews`]): one body per (baseline, cell), shared.
//!
//! Frames are carved out of shared chunks ([`carve`]), so a tick allocates per
//! 64 KiB of frames rather than per client.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use glam::IVec2;
use ticksync_protocol::{EntityState, FixedPos, InputSeq, Tick, codec};

use super::interest::{Grid, HeldView, ViewEncoder, carve};
use super::view_jobs::{Built, SentCounts, ViewTick};
use super::{CellViews, SnapshotPlanner};

#[derive(Debug)]
enum Mode {
    All(SnapshotPlanner),
    Exact(ExactViews),
    Cells(Box<Grid>, CellViews),
}

/// Exact circles: the published per-tick indexes and an encoder for frames
/// built on the tick thread ([`Views::frame`]).
#[derive(Debug)]
struct ExactViews {
    radius: u32,
    world_max: IVec2,
    /// Indexes of recent ticks; sender shards hold the ones not yet built.
    /// An unshared one is rebuilt, so this stays at two or three in steady
    /// state (bounded by the ticks of frames a client may have outstanding).
    pool: Vec<Arc<ViewTick>>,
    current: usize,
    encoder: ViewEncoder,
    sent: Arc<SentCounts>,
    /// The previous tick's world and its tick, for [`super::TickMotion`].
    last: Vec<EntityState>,
    last_tick: Option<Tick>,
}

impl ExactViews {
    fn begin_tick(&mut self, tick: Tick, view: &[EntityState]) {
        let free = self.pool.iter_mut().position(|t| Arc::get_mut(t).is_some());
        let i = free.unwrap_or_else(|| {
            let grid = Grid::for_views(self.radius, self.world_max);
            let t = ViewTick::new(grid, self.world_max, self.sent.clone());
            self.pool.push(Arc::new(t));
            self.pool.len() - 1
        });
        if let Some(t) = Arc::get_mut(&mut self.pool[i]) {
            t.rebuild(tick, view, self.last_tick, &self.last);
        }
        self.current = i;
        self.last.clear();
        self.last.extend_from_slice(view);
        self.last_tick = Some(tick);
    }

    fn current(&self) -> &Arc<ViewTick> {
        &self.pool[self.current]
    }
}

/// Builds every client's snapshot of the current tick.
#[derive(Debug)]
pub struct Views {
    mode: Mode,
    tick: Tick,
    arena: BytesMut,
    buf: Vec<u8>,
    /// Exact mode: per-client bodies encoded.
    exact_encoded: u64,
}

impl Views {
    /// `radius` and `cell` in grid steps: radius 0 means no interest management;
    /// cell 0 exact per-client circles, otherwise cell-centred circles (`cell` is
    /// capped at `radius`). `history`: ticks of baselines kept without a radius.
    pub fn new(radius: u32, cell: u32, world_max: IVec2, history: usize) -> Views {
        let mode = match (radius, cell) {
            (0, _) => Mode::All(SnapshotPlanner::new(world_max, history)),
            // A cell wider than the radius could leave a client out of its own
            // view; a radius too small for the grid's cell cap gets exact circles.
            (r, c) if c > 0 && Grid::min_cell_side(world_max) <= r => Mode::Cells(
                Box::new(Grid::with_cell(r, c.min(r), world_max)),
                CellViews::new(world_max),
            ),
            (r, _) => {
                let sent = Arc::<SentCounts>::default();
                let first = ViewTick::new(Grid::for_views(r, world_max), world_max, sent.clone());
                Mode::Exact(ExactViews {
                    radius: r,
                    world_max,
                    pool: vec![Arc::new(first)],
                    current: 0,
                    encoder: ViewEncoder::new(world_max),
                    sent,
                    last: Vec::new(),
                    last_tick: None,
                })
            }
        };
        Views {
            mode,
            tick: Tick(0),
            arena: BytesMut::new(),
            buf: Vec::new(),
            exact_encoded: 0,
        }
    }

    /// Starts tick `tick` whose world is `view` (sorted by id).
    pub fn begin_tick(&mut self, tick: Tick, view: &[EntityState]) {
        self.tick = tick;
        match &mut self.mode {
            Mode::All(planner) => planner.record(tick, view),
            Mode::Exact(exact) => exact.begin_tick(tick, view),
            Mode::Cells(grid, views) => {
                grid.rebuild(view);
                views.begin_tick(grid, tick);
            }
        }
    }

    /// The `Snapshot` message for a client at `center` holding `held` (full when
    /// `full`), and whether it is a full snapshot. Call [`Views::commit`] once
    /// it is enqueued.
    pub fn frame(
        &mut self,
        center: FixedPos,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
    ) -> (Bytes, bool) {
        let arena = &mut self.arena;
        match &mut self.mode {
            Mode::Exact(exact) => {
                self.exact_encoded += 1;
                let t = &exact.pool[exact.current];
                let encoder = &mut exact.encoder;
                let (grid, motion) = (t.grid(), Some(t.motion()));
                let frame = encoder.encode(grid, motion, self.tick, center, held, full, ack, arena);
                (frame, encoder.last_was_full())
            }
            Mode::Cells(grid, views) => {
                let frame = views.frame(grid, center, held, full, ack, arena);
                (frame, views.last_was_full())
            }
            Mode::All(planner) => {
                let body = planner.body(if full { None } else { held.tick });
                self.buf.clear();
                codec::encode_snapshot_header(ack, &mut self.buf);
                self.buf.extend_from_slice(&body.bytes);
                (carve(arena, &self.buf), body.baseline.is_none())
            }
        }
    }

    /// The last frame was enqueued: `held` becomes what the client now holds.
    pub fn commit(&mut self, held: &mut HeldView) {
        match &mut self.mode {
            Mode::All(_) => held.tick = Some(self.tick),
            Mode::Exact(exact) => exact.encoder.commit(self.tick, held),
            Mode::Cells(_, views) => views.commit(held),
        }
    }

    /// Exact circles: this tick's published index, from which each client's
    /// frame can be built elsewhere ([`super::ViewJob`]) instead of by
    /// [`Views::frame`]. `None` in the modes that share bodies.
    pub fn view_tick(&self) -> Option<&Arc<ViewTick>> {
        match &self.mode {
            Mode::Exact(exact) => Some(exact.current()),
            _ => None,
        }
    }

    /// What was built from this room's [`ViewTick`]s since the last call.
    pub fn take_built(&self) -> Built {
        match &self.mode {
            Mode::Exact(exact) => exact.sent.take(),
            _ => Built::default(),
        }
    }

    /// Snapshot bodies encoded by [`Views::frame`] since creation.
    pub fn bodies_encoded(&self) -> u64 {
        match &self.mode {
            Mode::All(planner) => planner.bodies_encoded(),
            Mode::Exact(..) => self.exact_encoded,
            Mode::Cells(_, views) => views.bodies_encoded(),
        }
    }
}

#[cfg(test)]
#[path = "views_tests.rs"]
mod tests;
