//! The per-tick snapshot builder the tick loop drives: it picks the interest
//! scheme from the config and turns "this client, at this position, holding this
//! baseline" into one complete `Snapshot` message.
//!
//! - No view radius: everyone sees everyone, one body per distinct baseline
//!   ([`SnapshotPlanner`]) shared by all clients behind a per-client header.
//! - Exact circles ([`ViewEncoder`]): one view, delta and encode per client.
//! - Cell circles ([`CellViews`]): one body per (baseline, cell), shared.
//!
//! Frames are carved out of shared chunks ([`carve`]), so a tick allocates per
//! 64 KiB of frames rather than per client.

use bytes::{Bytes, BytesMut};
use glam::IVec2;
use ticksync_protocol::{EntityState, FixedPos, InputSeq, Tick, codec};

use super::interest::{Grid, HeldView, ViewEncoder, carve};
use super::{CellViews, SnapshotPlanner};

#[derive(Debug)]
enum Mode {
    All(SnapshotPlanner),
    Exact(Grid, ViewEncoder),
    Cells(Grid, CellViews),
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
                Grid::with_cell(r, c.min(r), world_max),
                CellViews::new(world_max),
            ),
            (r, _) => Mode::Exact(Grid::for_views(r, world_max), ViewEncoder::new(world_max)),
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
            Mode::Exact(grid, _) => grid.rebuild(view),
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
            Mode::Exact(grid, encoder) => {
                self.exact_encoded += 1;
                let frame = encoder.encode(grid, self.tick, center, held, full, ack, arena);
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
            Mode::Exact(_, encoder) => encoder.commit(self.tick, held),
            Mode::Cells(_, views) => views.commit(held),
        }
    }

    /// Snapshot bodies encoded since creation.
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
