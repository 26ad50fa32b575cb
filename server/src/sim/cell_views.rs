//! Cell-quantized views: encode once per cell and baseline, send to many.
//!
//! With exact per-client circles ([`super::ViewEncoder`]) no two clients share a
//! view, so every client costs a view query, a delta and an encode each tick.
//! Here a client sees the entities within the view radius of the *centre of its
//! grid cell* (an exact circle test on the fixed-point grid). Every client in a
//! cell then has the same view, and clients that also hold the same baseline —
//! the same (tick, cell) view — get the very same body bytes. Per tick the work is
//! one view per occupied cell and one delta + encode per distinct
//! (baseline tick, baseline cell, cell); per client only a header and a copy.
//!
//! The price is precision: the circle's centre is up to `cell / √2` from the
//! client, so everything within `R - cell/√2` of it is always visible and nothing
//! beyond `R + cell/√2` ever is. The cell side must not exceed the radius, so a
//! client always sees itself. See docs/ARCHITECTURE.md for the measured trade-off.

use bytes::{Bytes, BytesMut};
use glam::IVec2;
use rustc_hash::FxHashMap;
use ticksync_protocol::{EntityState, FixedPos, InputSeq, SnapshotBody, Tick, codec, snapshot};

use super::interest::{Grid, HeldView, carve};

/// Which body a client needs: its baseline's identity and its current cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct BodyKey {
    /// `None`: a full snapshot.
    base: Option<(Tick, u32)>,
    cell: u32,
}

/// Per-tick caches of cell views and encoded bodies, reused across ticks.
#[derive(Debug, Default)]
pub struct CellViews {
    world_max: IVec2,
    tick: Tick,
    /// Per cell: `Some(range in store)` once its view was computed this tick.
    ranges: Vec<Option<(u32, u32)>>,
    /// Cells whose range must be reset at the next tick.
    touched: Vec<u32>,
    store: Vec<EntityState>,
    scratch: Vec<EntityState>,
    bodies: FxHashMap<BodyKey, Bytes>,
    body: SnapshotBody,
    buf: Vec<u8>,
    /// The cell of the last frame, for [`CellViews::commit`].
    pending: u32,
    last_full: bool,
    encoded: u64,
}

impl CellViews {
    /// Empty caches for a world whose largest coordinates are `world_max`.
    pub fn new(world_max: IVec2) -> CellViews {
        CellViews {
            world_max,
            ..CellViews::default()
        }
    }

    /// Starts a tick: forgets the previous tick's views and bodies (keeping their
    /// buffers). Call after rebuilding `grid`.
    pub fn begin_tick(&mut self, grid: &Grid, tick: Tick) {
        self.tick = tick;
        if self.ranges.len() != grid.cells() {
            self.ranges.clear();
            self.ranges.resize(grid.cells(), None);
        }
        for c in self.touched.drain(..) {
            self.ranges[c as usize] = None;
        }
        self.store.clear();
        self.bodies.clear();
    }

    fn view(&mut self, grid: &mut Grid, cell: u32) -> (u32, u32) {
        if let Some(r) = self.ranges[cell as usize] {
            return r;
        }
        let center = grid.cell_center(cell);
        grid.view_into(center, &mut self.scratch);
        let start = self.store.len() as u32;
        self.store.extend_from_slice(&self.scratch);
        let r = (start, self.store.len() as u32);
        self.ranges[cell as usize] = Some(r);
        self.touched.push(cell);
        r
    }

    /// The entities of `cell`'s view this tick, sorted by id.
    pub fn cell_view(&mut self, grid: &mut Grid, cell: u32) -> &[EntityState] {
        let (a, b) = self.view(grid, cell);
        &self.store[a as usize..b as usize]
    }

    /// The complete `Snapshot` message for a client at `pos` holding `held` (a
    /// full snapshot when `full` or when it holds nothing), carved out of
    /// `arena`. The body is encoded once per (baseline, cell) per tick. Call
    /// [`CellViews::commit`] once the message is enqueued.
    pub fn frame(
        &mut self,
        grid: &mut Grid,
        pos: FixedPos,
        held: &HeldView,
        full: bool,
        ack: InputSeq,
        arena: &mut BytesMut,
    ) -> Bytes {
        let tick = self.tick;
        let cell = grid.cell_index(pos);
        let (a, b) = self.view(grid, cell);
        let base = match (held.tick, held.cell) {
            (Some(t), Some(c)) if !full && t < tick => Some((t, c)),
            _ => None,
        };
        let key = BodyKey { base, cell };
        let body = match self.bodies.get(&key) {
            Some(body) => body.clone(),
            None => {
                let cur = &self.store[a as usize..b as usize];
                match base {
                    // Every client with this key holds the same entities: the
                    // view of cell `c` at tick `t`.
                    Some((t, _)) => snapshot::delta_into(
                        tick,
                        t,
                        &held.entities,
                        cur,
                        self.world_max,
                        &mut self.body,
                    ),
                    None => snapshot::full_into(tick, cur, &mut self.body),
                }
                self.buf.clear();
                codec::encode_snapshot_body(&self.body, &mut self.buf);
                self.encoded += 1;
                let body = carve(arena, &self.buf);
                self.bodies.insert(key, body.clone());
                body
            }
        };
        self.pending = cell;
        self.last_full = base.is_none();
        self.buf.clear();
        codec::encode_snapshot_header(ack, &mut self.buf);
        self.buf.extend_from_slice(&body);
        carve(arena, &self.buf)
    }

    /// Whether the last frame was a full snapshot.
    pub fn last_was_full(&self) -> bool {
        self.last_full
    }

    /// Bodies encoded since creation.
    pub fn bodies_encoded(&self) -> u64 {
        self.encoded
    }

    /// The last frame was enqueued: the client now holds its cell's view.
    pub fn commit(&mut self, held: &mut HeldView) {
        let (a, b) = self.ranges[self.pending as usize].unwrap_or((0, 0));
        held.entities.clear();
        held.entities
            .extend_from_slice(&self.store[a as usize..b as usize]);
        held.tick = Some(self.tick);
        held.cell = Some(self.pending);
    }
}

#[cfg(test)]
#[path = "cell_views_tests.rs"]
mod tests;
