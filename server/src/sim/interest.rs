//! Interest management: who sees whom when the world has a view radius.
//!
//! A [`Grid`] of square cells indexes the world's entities once per tick (a
//! counting sort, linear in entities plus cells, into buffers reused across
//! ticks). A client's view is every entity within the view radius of its own
//! position — an exact circle test in integer math on the fixed-point grid, so the
//! client's own entity is always in it — gathered from the few cells the circle
//! touches. Within a cell, entities stay sorted by id, so a view is a handful of
//! sorted runs that one small sort merges.
//!
//! [`ViewEncoder`] turns a view into the client's next `Snapshot` message: a delta
//! against the view the client holds ([`HeldView`], the last one enqueued to it),
//! or a full snapshot. Entities entering the view are spawned, leaving ones
//! removed, and the checksum covers exactly the new view.

use bytes::{Bytes, BytesMut};
use glam::IVec2;
use ticksync_protocol::{EntityState, FixedPos, InputSeq, SnapshotBody, Tick, codec, snapshot};

/// Most cells along one axis: bounds the grid's memory and rebuild cost when the
/// radius is tiny compared with the world (the query then spans more cells).
const MAX_CELLS_PER_AXIS: i32 = 256;

/// A uniform grid over `[0, world_max]` that indexes entities by cell.
#[derive(Debug, Clone)]
pub struct Grid {
    radius: i32,
    cell: i32,
    cols: i32,
    rows: i32,
    /// `starts[c]..starts[c + 1]` is cell `c`'s range in `entries`.
    starts: Vec<u32>,
    /// Entities grouped by cell (row-major), sorted by id within a cell.
    entries: Vec<EntityState>,
    /// Scratch: each entity's cell, then the scatter cursors.
    cell_of: Vec<u32>,
    cursor: Vec<u32>,
}

impl Grid {
    /// A grid for views of `radius` grid steps (at least 1) over a world whose
    /// coordinates run from 0 to `world_max` inclusive. Cells are `radius` wide,
    /// or wider when that would exceed 256 cells per axis.
    pub fn new(radius: u32, world_max: IVec2) -> Grid {
        let radius = radius.clamp(1, i32::MAX as u32 / 4) as i32;
        let span = world_max.x.max(world_max.y).max(0) + 1;
        let min_cell = (span + MAX_CELLS_PER_AXIS - 1) / MAX_CELLS_PER_AXIS;
        Grid::with_cell(radius as u32, radius.max(min_cell) as u32, world_max)
    }

    /// Like [`Grid::new`] with an explicit cell side (benches compare sizes).
    pub fn with_cell(radius: u32, cell: u32, world_max: IVec2) -> Grid {
        let radius = radius.clamp(1, i32::MAX as u32 / 4) as i32;
        let cell = cell.clamp(1, i32::MAX as u32 / 4) as i32;
        let cols = (world_max.x.max(0) / cell + 1).min(MAX_CELLS_PER_AXIS * 4);
        let rows = (world_max.y.max(0) / cell + 1).min(MAX_CELLS_PER_AXIS * 4);
        Grid {
            radius,
            cell,
            cols,
            rows,
            starts: vec![0; (cols * rows) as usize + 1],
            entries: Vec::new(),
            cell_of: Vec::new(),
            cursor: Vec::new(),
        }
    }

    /// The view radius in grid steps.
    pub fn radius(&self) -> u32 {
        self.radius as u32
    }

    /// The side of a cell in grid steps.
    pub fn cell_side(&self) -> u32 {
        self.cell as u32
    }

    /// Number of cells.
    pub fn cells(&self) -> usize {
        self.starts.len() - 1
    }

    fn cell_xy(&self, pos: FixedPos) -> (i32, i32) {
        (
            (pos.0.x / self.cell).clamp(0, self.cols - 1),
            (pos.0.y / self.cell).clamp(0, self.rows - 1),
        )
    }

    /// Indexes `entities` (sorted by id), replacing the previous contents. Reuses
    /// its buffers, so a steady world rebuilds without allocating.
    pub fn rebuild(&mut self, entities: &[EntityState]) {
        self.starts.fill(0);
        self.cell_of.clear();
        for e in entities {
            let (cx, cy) = self.cell_xy(e.pos);
            let c = (cy * self.cols + cx) as u32;
            self.cell_of.push(c);
            self.starts[c as usize + 1] += 1;
        }
        for c in 1..self.starts.len() {
            self.starts[c] += self.starts[c - 1];
        }
        self.cursor.clear();
        self.cursor
            .extend_from_slice(&self.starts[..self.starts.len() - 1]);
        self.entries.clear();
        self.entries.resize(
            entities.len(),
            EntityState {
                id: Default::default(),
                pos: FixedPos::default(),
            },
        );
        // Scattering in id order keeps every cell sorted by id.
        for (e, &c) in entities.iter().zip(&self.cell_of) {
            let slot = &mut self.cursor[c as usize];
            self.entries[*slot as usize] = *e;
            *slot += 1;
        }
    }

    /// The entities of cell (`cx`, `cy`), sorted by id.
    pub fn cell(&self, cx: usize, cy: usize) -> &[EntityState] {
        let c = cy * self.cols as usize + cx;
        &self.entries[self.starts[c] as usize..self.starts[c + 1] as usize]
    }

    /// Writes into `out` (cleared first) every entity within the radius of
    /// `center`, sorted by id.
    pub fn view_into(&self, center: FixedPos, out: &mut Vec<EntityState>) {
        out.clear();
        let r = self.radius;
        let (x0, y0) = self.cell_xy(FixedPos(center.0 - IVec2::splat(r)));
        let (x1, y1) = self.cell_xy(FixedPos(center.0 + IVec2::splat(r)));
        let r2 = i64::from(r) * i64::from(r);
        let (px, py) = (i64::from(center.0.x), i64::from(center.0.y));
        for cy in y0..=y1 {
            let row = (cy * self.cols) as usize;
            let from = self.starts[row + x0 as usize] as usize;
            let to = self.starts[row + x1 as usize + 1] as usize;
            // Cells of one row are contiguous: one pass over the whole row span.
            out.extend(self.entries[from..to].iter().filter(|e| {
                let dx = i64::from(e.pos.0.x) - px;
                let dy = i64::from(e.pos.0.y) - py;
                dx * dx + dy * dy <= r2
            }));
        }
        // A few sorted runs (one per cell); the stable sort merges runs rather than
        // sorting from scratch, and small inputs use its stack scratch space.
        out.sort_by_key(|e| e.id);
    }
}

/// What one client holds: the entity set of the last snapshot enqueued to it
/// (over an ordered transport, that is its baseline) and that snapshot's tick.
#[derive(Debug, Clone, Default)]
pub struct HeldView {
    /// The tick of the held state (`None`: nothing yet, send a full snapshot).
    pub tick: Option<Tick>,
    /// The entities held, sorted by id.
    pub entities: Vec<EntityState>,
}

/// Builds per-client snapshot messages for views, reusing its buffers.
#[derive(Debug, Default)]
pub struct ViewEncoder {
    view: Vec<EntityState>,
    body: SnapshotBody,
    buf: Vec<u8>,
    last_full: bool,
}

/// Frames are cut out of shared chunks of this size: one allocation per chunk
/// instead of one per client (a frame is freed with the last frame of its chunk).
const ARENA_CHUNK: usize = 64 * 1024;

impl ViewEncoder {
    /// An encoder with empty buffers.
    pub fn new() -> ViewEncoder {
        ViewEncoder::default()
    }

    /// The complete `Snapshot` message for a client at `center` holding `held`
    /// (a full snapshot when `full` or when it holds nothing), carved out of
    /// `arena`. Call [`ViewEncoder::commit`] once the message is enqueued.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &mut self,
        grid: &Grid,
        tick: Tick,
        center: FixedPos,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
        arena: &mut BytesMut,
    ) -> Bytes {
        grid.view_into(center, &mut self.view);
        self.encode_view(tick, held, full, ack, arena)
    }

    /// Like [`ViewEncoder::encode`] with no interest management: the view is
    /// `view` itself (sorted by id).
    pub fn encode_all(
        &mut self,
        view: &[EntityState],
        tick: Tick,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
        arena: &mut BytesMut,
    ) -> Bytes {
        self.view.clear();
        self.view.extend_from_slice(view);
        self.encode_view(tick, held, full, ack, arena)
    }

    fn encode_view(
        &mut self,
        tick: Tick,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
        arena: &mut BytesMut,
    ) -> Bytes {
        match held.tick {
            Some(base) if !full && base < tick => {
                snapshot::delta_into(tick, base, &held.entities, &self.view, &mut self.body);
                self.last_full = false;
            }
            _ => {
                snapshot::full_into(tick, &self.view, &mut self.body);
                self.last_full = true;
            }
        }
        self.buf.clear();
        codec::encode_snapshot_header(ack, &mut self.buf);
        codec::encode_snapshot_body(&self.body, &mut self.buf);
        carve(arena, &self.buf)
    }

    /// Whether the last message encoded was a full snapshot.
    pub fn last_was_full(&self) -> bool {
        self.last_full
    }

    /// The last message was enqueued: the client now holds its view. Swaps
    /// buffers instead of copying, so neither side allocates in steady state.
    pub fn commit(&mut self, tick: Tick, held: &mut HeldView) {
        std::mem::swap(&mut self.view, &mut held.entities);
        held.tick = Some(tick);
    }
}

/// Copies `bytes` into `arena` and splits them off as an immutable frame.
pub fn carve(arena: &mut BytesMut, bytes: &[u8]) -> Bytes {
    if arena.capacity() - arena.len() < bytes.len() {
        arena.reserve(ARENA_CHUNK.max(bytes.len()));
    }
    arena.extend_from_slice(bytes);
    arena.split().freeze()
}

#[cfg(test)]
#[path = "interest_tests.rs"]
mod tests;
