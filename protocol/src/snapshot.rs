//! Building snapshot bodies: the full state of a view, or the delta between two
//! states of it.
//!
//! A view is a slice of [`EntityState`] sorted by id. The delta is one merge walk
//! over the baseline and the current view, so entities that move as their
//! velocity says cost nothing to send and building it is linear in the size of
//! the view.

use std::cmp::Ordering;

use glam::IVec2;

use crate::checksum::checksum;
use crate::messages::{EntityDelta, EntityState, SnapshotBody};
use crate::motion::extrapolate;
use crate::types::{Checksum, Tick};

/// Whether `view` is sorted by id with no id twice, as snapshots require.
pub fn is_sorted_view(view: &[EntityState]) -> bool {
    view.windows(2).all(|w| w[0].id < w[1].id)
}

/// The checksum of a view.
pub fn view_checksum(view: &[EntityState]) -> Checksum {
    checksum(view.iter().map(|e| (e.id, e.pos)))
}

/// A full snapshot of `view` (sorted by id) at `tick`.
pub fn full(tick: Tick, view: &[EntityState]) -> SnapshotBody {
    let mut body = SnapshotBody::default();
    full_into(tick, view, &mut body);
    body
}

/// Like [`full`], reusing `out`'s buffers.
pub fn full_into(tick: Tick, view: &[EntityState], out: &mut SnapshotBody) {
    debug_assert!(is_sorted_view(view));
    out.tick = tick;
    out.baseline = None;
    out.removed.clear();
    out.changed.clear();
    out.corrected.clear();
    out.spawned.clear();
    out.spawned.extend_from_slice(view);
    out.checksum = view_checksum(view);
}

/// The delta that turns `base` (the view at `base_tick`) into `cur` (the view at
/// `tick`), for a world whose largest coordinates are `world_max`. Both views must
/// be sorted by id.
///
/// An entity in both is listed in `changed` when its velocity differs and in
/// `corrected` when its position is not `extrapolate(base position, current
/// velocity, tick - base_tick)`; an entity walking at a steady velocity, or
/// standing at a wall it walks into, is in neither and costs nothing. Entries
/// wrap on `i32` overflow, which a server's states (positions inside the world,
/// velocities of at most a few steps) never reach.
///
/// ```
/// use glam::IVec2;
/// use ticksync_protocol::{snapshot, EntityState, FixedPos, PlayerId, Tick};
/// let e = |id, x, vx| EntityState::new(PlayerId(id), FixedPos::new(x, 0), IVec2::new(vx, 0));
/// let max = IVec2::splat(16_000);
/// let base = [e(1, 0, 53), e(2, 0, 0), e(3, 0, 0)];
/// let cur = [e(1, 53, 53), e(3, 5, 5), e(4, 9, 0)];
/// let d = snapshot::delta(Tick(10), Tick(9), &base, &cur, max);
/// assert_eq!(d.removed, [PlayerId(2)]);
/// assert_eq!(d.spawned, [e(4, 9, 0)]);
/// assert_eq!(d.changed.len(), 1); // entity 3 started moving; 1 walks on for free
/// assert!(d.corrected.is_empty());
/// ```
pub fn delta(
    tick: Tick,
    base_tick: Tick,
    base: &[EntityState],
    cur: &[EntityState],
    world_max: IVec2,
) -> SnapshotBody {
    let mut body = SnapshotBody::default();
    delta_into(tick, base_tick, base, cur, world_max, &mut body);
    body
}

/// Like [`delta`], reusing `out`'s buffers.
pub fn delta_into(
    tick: Tick,
    base_tick: Tick,
    base: &[EntityState],
    cur: &[EntityState],
    world_max: IVec2,
    out: &mut SnapshotBody,
) {
    delta_lists_into(tick, base_tick, base, cur, world_max, out);
    out.checksum = view_checksum(cur);
}

/// Like [`delta_into`] but leaves `out.checksum` alone, for a caller that knows
/// the checksum of `cur` already (a server summing precomputed entity hashes).
pub fn delta_lists_into(
    tick: Tick,
    base_tick: Tick,
    base: &[EntityState],
    cur: &[EntityState],
    world_max: IVec2,
    out: &mut SnapshotBody,
) {
    debug_assert!(is_sorted_view(base) && is_sorted_view(cur));
    debug_assert!(base_tick < tick);
    let ticks = tick.0.wrapping_sub(base_tick.0);
    out.tick = tick;
    out.baseline = Some(base_tick);
    out.removed.clear();
    out.spawned.clear();
    out.changed.clear();
    out.corrected.clear();
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < cur.len() {
        let order = match (base.get(i), cur.get(j)) {
            (Some(b), Some(c)) => b.id.cmp(&c.id),
            (Some(_), None) => Ordering::Less,
            _ => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                out.removed.push(base[i].id);
                i += 1;
            }
            Ordering::Greater => {
                out.spawned.push(cur[j]);
                j += 1;
            }
            Ordering::Equal => {
                kept_into(&base[i], &cur[j], ticks, world_max, out);
                i += 1;
                j += 1;
            }
        }
    }
}

/// The entries of a delta for one entity kept in view, `ticks` after the
/// baseline that had it as `b`, now `c`: `changed` if its velocity changed,
/// `corrected` if it is not where its new velocity takes it from `b`. Called
/// in id order, it appends to `out`'s lists in id order (the one rule for
/// every delta builder, e.g. a server's bitmap fast path).
#[inline]
pub fn kept_into(
    b: &EntityState,
    c: &EntityState,
    ticks: u32,
    world_max: IVec2,
    out: &mut SnapshotBody,
) {
    if c.vel != b.vel {
        out.changed.push(EntityDelta {
            id: c.id,
            delta: c.vel.wrapping_sub(b.vel),
        });
    }
    let expected = extrapolate(b.pos, c.vel, ticks, world_max);
    if c.pos != expected {
        out.corrected.push(EntityDelta {
            id: c.id,
            delta: c.pos.0.wrapping_sub(expected.0),
        });
    }
}
