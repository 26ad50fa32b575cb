//! Interest management: who sees whom when the world has a view radius.
//!
//! A [`Grid`] of square cells indexes the world's entities once per tick (a
//! counting sort, linear in entities plus cells, into buffers reused across
//! ticks). A client's view is every entity within the view radius of its own
//! position — an exact circle test in integer math on the fixed-point grid, so the
//! client's own entity is always in it — gathered from the cells the circle
//! touches (each row of cells clipped to the circle's width there) and read back
//! in id order from a bitmap. The view's checksum comes with it, summed from
//! entity hashes made once per tick at rebuild.
//!
//! [`ViewEncoder`] turns a view into the client's next `Snapshot` message: a delta
//! against the view the client holds ([`HeldView`], the last one enqueued to it),
//! or a full snapshot. Entities entering the view are spawned, leaving ones
//! removed, and the checksum covers exactly the new view.

use super::view_delta::TickMotion;
use bytes::{Bytes, BytesMut};
use glam::IVec2;
use ticksync_protocol::checksum::entity_hash;
use ticksync_protocol::{
    Checksum, EntityState, FixedPos, InputSeq, SnapshotBody, Tick, codec, snapshot,
};

/// Most cells along one axis: bounds the grid's memory and rebuild cost when the
/// radius is tiny compared with the world (the query then spans more cells).
const MAX_CELLS_PER_AXIS: i32 = 256;

/// One indexed entity: its position and its index in the indexed (id-sorted) view.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    pos: IVec2,
    slot: u32,
}

/// A uniform grid over `[0, world_max]` that indexes entities by cell.
#[derive(Debug, Clone)]
pub struct Grid {
    radius: i32,
    cell: i32,
    cols: i32,
    rows: i32,
    /// `starts[c]..starts[c + 1]` is cell `c`'s range in `entries`.
    starts: Vec<u32>,
    /// Entities grouped by cell (row-major), in id order within a cell.
    entries: Vec<Entry>,
    /// The indexed view, sorted by id: `Entry::slot` points into it.
    source: Vec<EntityState>,
    /// Each indexed entity's checksum hash (`checksum::entity_hash`), by slot:
    /// hashed once per tick instead of once per view that holds it.
    hashes: Vec<u32>,
    /// Query scratch: one bit per slot, set for the entities in view.
    bits: Vec<u64>,
    /// Rebuild scratch: each entity's cell, then the scatter cursors.
    cell_of: Vec<u32>,
    cursor: Vec<u32>,
}

impl Grid {
    /// A grid for views of `radius` grid steps (at least 1) over a world whose
    /// coordinates run from 0 to `world_max` inclusive. Cells are `radius` wide,
    /// or wider when that would exceed 256 cells per axis.
    pub fn new(radius: u32, world_max: IVec2) -> Grid {
        Grid::capped(radius, radius, world_max)
    }

    /// The grid exact per-client circles query ([`ViewEncoder`]): cells of a
    /// quarter of the radius, or wider when that would exceed 256 cells per
    /// axis. With small cells the query's row clipping leaves fewer candidates
    /// outside the circle (75 instead of 141 for a 57-entity view, R = 100 at
    /// 2,000 players), for a few more rows per query (`benches/scale.rs`, group
    /// `grid`, measures cells of R to R/8).
    pub fn for_views(radius: u32, world_max: IVec2) -> Grid {
        Grid::capped(radius, radius / 4, world_max)
    }

    /// A grid of cells `cell` wide, raised to keep at most 256 cells per axis.
    fn capped(radius: u32, cell: u32, world_max: IVec2) -> Grid {
        let span = world_max.x.max(world_max.y).max(0) + 1;
        let min_cell = (span + MAX_CELLS_PER_AXIS - 1) / MAX_CELLS_PER_AXIS;
        let cell = cell.clamp(1, i32::MAX as u32 / 4).max(min_cell as u32);
        Grid::with_cell(radius, cell, world_max)
    }

    /// The smallest cell side [`Grid::with_cell`] accepts for this world: it
    /// keeps the grid within 1,024 cells per axis.
    pub fn min_cell_side(world_max: IVec2) -> u32 {
        let span = world_max.x.max(world_max.y).max(0) + 1;
        let cap = MAX_CELLS_PER_AXIS * 4;
        ((span + cap - 1) / cap) as u32
    }

    /// Like [`Grid::new`] with an explicit cell side (see [`super::CellViews`]),
    /// raised to [`Grid::min_cell_side`] if smaller.
    pub fn with_cell(radius: u32, cell: u32, world_max: IVec2) -> Grid {
        let radius = radius.clamp(1, i32::MAX as u32 / 4) as i32;
        let cell = cell
            .max(Grid::min_cell_side(world_max))
            .clamp(1, i32::MAX as u32 / 4) as i32;
        // Every position maps to its own cell: cell centres stay near the
        // positions they stand for.
        let cols = world_max.x.max(0) / cell + 1;
        let rows = world_max.y.max(0) / cell + 1;
        Grid {
            radius,
            cell,
            cols,
            rows,
            starts: vec![0; (cols * rows) as usize + 1],
            entries: Vec::new(),
            source: Vec::new(),
            hashes: Vec::new(),
            bits: Vec::new(),
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

    // Called per row of every query: profiled as a call of its own (~6 % of
    // the tick thread) when left to the compiler.
    #[inline(always)]
    fn cell_xy(&self, pos: FixedPos) -> (i32, i32) {
        (
            (pos.0.x / self.cell).clamp(0, self.cols - 1),
            (pos.0.y / self.cell).clamp(0, self.rows - 1),
        )
    }

    /// The index of the cell holding `pos` (row-major).
    pub fn cell_index(&self, pos: FixedPos) -> u32 {
        let (cx, cy) = self.cell_xy(pos);
        (cy * self.cols + cx) as u32
    }

    /// The centre of cell `index` (as [`Grid::cell_index`] numbers them).
    pub fn cell_center(&self, index: u32) -> FixedPos {
        let (cx, cy) = (index as i32 % self.cols, index as i32 / self.cols);
        FixedPos::new(
            cx * self.cell + self.cell / 2,
            cy * self.cell + self.cell / 2,
        )
    }

    /// Indexes `entities` (sorted by id), replacing the previous contents. Reuses
    /// its buffers, so a steady world rebuilds without allocating.
    pub fn rebuild(&mut self, entities: &[EntityState]) {
        debug_assert!(snapshot::is_sorted_view(entities));
        self.source.clear();
        self.source.extend_from_slice(entities);
        self.hashes.clear();
        self.hashes
            .extend(entities.iter().map(|e| entity_hash(e.id, e.pos)));
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
        self.entries.resize(entities.len(), Entry::default());
        // Scattering in id order keeps every cell in id order.
        for (slot, (e, &c)) in entities.iter().zip(&self.cell_of).enumerate() {
            let at = &mut self.cursor[c as usize];
            self.entries[*at as usize] = Entry {
                pos: e.pos.0,
                slot: slot as u32,
            };
            *at += 1;
        }
    }

    /// The entities of cell (`cx`, `cy`), sorted by id.
    pub fn cell(&self, cx: usize, cy: usize) -> impl Iterator<Item = EntityState> + '_ {
        let c = cy * self.cols as usize + cx;
        self.entries[self.starts[c] as usize..self.starts[c + 1] as usize]
            .iter()
            .map(|e| self.source[e.slot as usize])
    }

    /// Writes into `out` (cleared first) every entity within the radius of
    /// `center`, sorted by id, and returns the view's checksum
    /// (`snapshot::view_checksum(out)`, summed from hashes made at rebuild).
    pub fn view_into(&mut self, center: FixedPos, out: &mut Vec<EntityState>) -> Checksum {
        let mut bits = std::mem::take(&mut self.bits);
        let sum = self.query(center, &mut bits, out);
        self.bits = bits;
        sum
    }

    /// [`Grid::view_into`] on a shared grid, with the caller's bitmap scratch:
    /// what sender shards run on a tick's published grid ([`super::ViewTick`]).
    pub fn query(
        &self,
        center: FixedPos,
        bits: &mut Vec<u64>,
        out: &mut Vec<EntityState>,
    ) -> Checksum {
        out.clear();
        let r = self.radius;
        let (_, y0) = self.cell_xy(FixedPos(center.0 - IVec2::splat(r)));
        let (_, y1) = self.cell_xy(FixedPos(center.0 + IVec2::splat(r)));
        let r2 = i64::from(r) * i64::from(r);
        let (px, py) = (i64::from(center.0.x), i64::from(center.0.y));
        // Mark hits in a bitmap indexed by slot (id order), then read it in
        // order: no sort, and no branch on the circle test (a third of the
        // candidates hit, so a branch would mispredict often).
        bits.clear();
        bits.resize(self.source.len().div_ceil(64), 0);
        let (mut lo, mut hi) = (usize::MAX, 0);
        for cy in y0..=y1 {
            // Only the cells of this row that the circle reaches: its half-width
            // where it comes closest to the row's band of y (the edge rows also
            // hold what clamps into them).
            let top = if cy == 0 {
                i64::MIN / 4
            } else {
                i64::from(cy * self.cell)
            };
            let bottom = if cy + 1 == self.rows {
                i64::MAX / 4
            } else {
                i64::from((cy + 1) * self.cell - 1)
            };
            let dy = (top - py).max(py - bottom).max(0);
            if dy > i64::from(r) {
                continue;
            }
            let half = isqrt(r2 - dy * dy) as i32;
            let (x0, _) = self.cell_xy(FixedPos(IVec2::new(center.0.x - half, center.0.y)));
            let (x1, _) = self.cell_xy(FixedPos(IVec2::new(center.0.x + half, center.0.y)));
            let row = (cy * self.cols) as usize;
            let from = self.starts[row + x0 as usize] as usize;
            let to = self.starts[row + x1 as usize + 1] as usize;
            // Cells of one row are contiguous: one pass over the whole row span.
            for e in &self.entries[from..to] {
                let dx = i64::from(e.pos.x) - px;
                let dy = i64::from(e.pos.y) - py;
                let hit = u64::from(dx * dx + dy * dy <= r2);
                let w = e.slot as usize >> 6;
                bits[w] |= hit << (e.slot & 63);
                lo = lo.min(w);
                hi = hi.max(w);
            }
        }
        let mut sum = 0u32;
        if lo > hi {
            return Checksum(sum);
        }
        for (w, &word) in bits[lo..=hi].iter().enumerate() {
            let mut word = word;
            let base = (lo + w) << 6;
            while word != 0 {
                let slot = base + word.trailing_zeros() as usize;
                out.push(self.source[slot]);
                sum = sum.wrapping_add(self.hashes[slot]);
                word &= word - 1;
            }
        }
        Checksum(sum)
    }
}

/// The largest `h` with `h * h <= v` (`v >= 0`).
fn isqrt(v: i64) -> i64 {
    let mut h = (v as f64).sqrt() as i64;
    while h * h > v {
        h -= 1;
    }
    while (h + 1) * (h + 1) <= v {
        h += 1;
    }
    h
}

/// What one client holds: the entity set of the last snapshot enqueued to it
/// (over an ordered transport, that is its baseline) and that snapshot's tick.
#[derive(Debug, Clone, Default)]
pub struct HeldView {
    /// The tick of the held state (`None`: nothing yet, send a full snapshot).
    pub tick: Option<Tick>,
    /// The entities held, sorted by id.
    pub entities: Vec<EntityState>,
    /// With cell-quantized views ([`super::CellViews`]): the cell whose view the
    /// client holds, part of the identity of its baseline.
    pub cell: Option<u32>,
    /// With exact circles: the held view as a bitmap over the slots of its
    /// tick's grid, for the bitmap delta of `sim/view_delta.rs`.
    pub bits: Vec<u64>,
}

/// Builds per-client snapshot messages for views, reusing its buffers.
#[derive(Debug, Default)]
pub struct ViewEncoder {
    pub(super) world_max: IVec2,
    view: Vec<EntityState>,
    /// Query scratch (one bit per entity), so the grid itself can be shared.
    bits: Vec<u64>,
    body: SnapshotBody,
    buf: Vec<u8>,
    last_full: bool,
}

/// Frames are cut out of shared chunks of this size: one allocation per chunk
/// instead of one per client (a frame is freed with the last frame of its chunk).
const ARENA_CHUNK: usize = 64 * 1024;

impl ViewEncoder {
    /// An encoder for a world whose largest coordinates are `world_max`.
    pub fn new(world_max: IVec2) -> ViewEncoder {
        ViewEncoder {
            world_max,
            ..ViewEncoder::default()
        }
    }

    /// The complete `Snapshot` message for a client at `center` holding `held`
    /// (a full snapshot when `full` or when it holds nothing), carved out of
    /// `arena`. Call [`ViewEncoder::commit`] once the message is enqueued.
    /// `motion`: how the world moved since the previous tick, if known; a
    /// client holding that tick then gets its delta from bitmaps
    /// ([`TickMotion`]), the same bytes as the list merge.
    #[allow(clippy::too_many_arguments)]
    pub fn encode(
        &mut self,
        grid: &Grid,
        motion: Option<&TickMotion>,
        tick: Tick,
        center: FixedPos,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
        arena: &mut BytesMut,
    ) -> Bytes {
        let checksum = grid.query(center, &mut self.bits, &mut self.view);
        match held.tick {
            Some(base) if !full && base < tick => {
                // The grid summed the view's checksum from per-tick entity
                // hashes; the delta only compares the two views.
                match motion {
                    Some(m) if m.applies(base, held.bits.len()) => m.delta_into(
                        tick,
                        base,
                        &grid.source,
                        &held.bits,
                        &self.bits,
                        self.world_max,
                        &mut self.body,
                    ),
                    _ => snapshot::delta_lists_into(
                        tick,
                        base,
                        &held.entities,
                        &self.view,
                        self.world_max,
                        &mut self.body,
                    ),
                }
                self.body.checksum = checksum;
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
        std::mem::swap(&mut self.bits, &mut held.bits);
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
pub(crate) mod tests;
