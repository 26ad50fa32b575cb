//! Building snapshot bodies: the full state of a view, or the delta between two
//! states of it.
//!
//! A view is a slice of [`EntityState`] sorted by id. The delta is one merge walk
//! over the baseline and the current view, so unchanged entities cost nothing to
//! send and building it is linear in the size of the view.

use std::cmp::Ordering;

use crate::checksum::checksum;
use crate::messages::{EntityDelta, EntityState, SnapshotBody};
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
    out.spawned.clear();
    out.spawned.extend_from_slice(view);
    out.checksum = view_checksum(view);
}

/// The delta that turns `base` (the view at `base_tick`) into `cur` (the view at
/// `tick`). Both must be sorted by id.
///
/// ```
/// use ticksync_protocol::{snapshot, EntityState, FixedPos, PlayerId, Tick};
/// let e = |id, x| EntityState { id: PlayerId(id), pos: FixedPos::new(x, 0) };
/// let base = [e(1, 0), e(2, 0), e(3, 0)];
/// let cur = [e(1, 0), e(3, 5), e(4, 9)];
/// let d = snapshot::delta(Tick(10), Tick(9), &base, &cur);
/// assert_eq!(d.removed, [PlayerId(2)]);
/// assert_eq!(d.spawned, [e(4, 9)]);
/// assert_eq!(d.changed.len(), 1); // entity 1 did not move and costs nothing
/// ```
pub fn delta(
    tick: Tick,
    base_tick: Tick,
    base: &[EntityState],
    cur: &[EntityState],
) -> SnapshotBody {
    let mut body = SnapshotBody::default();
    delta_into(tick, base_tick, base, cur, &mut body);
    body
}

/// Like [`delta`], reusing `out`'s buffers.
pub fn delta_into(
    tick: Tick,
    base_tick: Tick,
    base: &[EntityState],
    cur: &[EntityState],
    out: &mut SnapshotBody,
) {
    debug_assert!(is_sorted_view(base) && is_sorted_view(cur));
    out.tick = tick;
    out.baseline = Some(base_tick);
    out.removed.clear();
    out.spawned.clear();
    out.changed.clear();
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
                let d = cur[j].pos.0 - base[i].pos.0;
                if d != glam::IVec2::ZERO {
                    out.changed.push(EntityDelta {
                        id: cur[j].id,
                        delta: d,
                    });
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.checksum = view_checksum(cur);
}
