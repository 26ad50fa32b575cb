//! The common case of an exact-circle delta, on bitmaps.
//!
//! A client whose baseline is the previous tick holds, for every entity of its
//! view, exactly that entity's state at the previous tick. So whether an entity
//! it keeps is `changed` (new velocity) or `corrected` (not where its velocity
//! took it) depends on the entity, not on the client: [`TickMotion`] works it
//! out once per tick for the whole world. When the world's ids did not change
//! between the two ticks, an entity has the same slot (index in the id-sorted
//! world) in both grids, and a client's delta is word operations on its two
//! view bitmaps: removed = held & !now, spawned = now & !held, and the listed
//! ones = held & now & moved — a few dozen words instead of a merge over two
//! ~57-entity lists per client (profiled at about a quarter of the tick thread's
//! time, most of it cache misses on the held lists).
//!
//! The lists come out in slot order, which is id order, and each kept entity's
//! entries come from `snapshot::kept_into`, the merge's own rule: the body is
//! the one `snapshot::delta_lists_into` builds, entry for entry (tests compare
//! both).

use glam::IVec2;
use ticksync_protocol::motion::extrapolate;
use ticksync_protocol::{EntityState, SnapshotBody, Tick, snapshot};

/// How every entity moved from one tick to the next, when the world's set of
/// ids stayed the same.
#[derive(Debug, Clone, Default)]
pub struct TickMotion {
    /// The tick the motion starts from; `None`: no usable previous tick (the
    /// first one, or players joined or left in between).
    from: Option<Tick>,
    /// The world at `from`, by slot.
    prev: Vec<EntityState>,
    /// Slots that go in a delta against `from`: velocity changed, or not where
    /// the new velocity takes them from their old position.
    moved: Vec<u64>,
}

impl TickMotion {
    /// The motion from `prev` (the world at `from`) to `cur` (the next tick).
    pub fn update(
        &mut self,
        from: Option<Tick>,
        prev: &[EntityState],
        cur: &[EntityState],
        world_max: IVec2,
    ) {
        let same_ids = prev.len() == cur.len() && prev.iter().zip(cur).all(|(p, c)| p.id == c.id);
        self.moved.clear();
        self.prev.clear();
        if !same_ids {
            self.from = None;
            return;
        }
        self.from = from;
        self.prev.extend_from_slice(prev);
        self.moved.resize(cur.len().div_ceil(64), 0);
        for (slot, (p, c)) in prev.iter().zip(cur).enumerate() {
            let listed = c.vel != p.vel || c.pos != extrapolate(p.pos, c.vel, 1, world_max);
            self.moved[slot >> 6] |= u64::from(listed) << (slot & 63);
        }
    }

    /// Whether a delta from a client holding tick `base` (as a bitmap of
    /// `held_words` words) can be built here.
    pub fn applies(&self, base: Tick, held_words: usize) -> bool {
        self.from == Some(base) && held_words == self.moved.len()
    }

    /// Fills `out`'s lists (not its checksum) for a client that held `held`
    /// (bitmap over slots, at `base`) and now sees `now` (bitmap over slots of
    /// `cur`, the world at `tick`). Only when [`TickMotion::applies`].
    #[allow(clippy::too_many_arguments)]
    pub fn delta_into(
        &self,
        tick: Tick,
        base: Tick,
        cur: &[EntityState],
        held: &[u64],
        now: &[u64],
        world_max: IVec2,
        out: &mut SnapshotBody,
    ) {
        debug_assert!(self.applies(base, held.len()) && now.len() == held.len());
        out.tick = tick;
        out.baseline = Some(base);
        out.removed.clear();
        out.spawned.clear();
        out.changed.clear();
        out.corrected.clear();
        for (w, ((&h, &n), &m)) in held.iter().zip(now).zip(&self.moved).enumerate() {
            let base_slot = w << 6;
            for slot in ones(h & !n, base_slot) {
                out.removed.push(cur[slot].id);
            }
            for slot in ones(n & !h, base_slot) {
                out.spawned.push(cur[slot]);
            }
            for slot in ones(h & n & m, base_slot) {
                snapshot::kept_into(&self.prev[slot], &cur[slot], 1, world_max, out);
            }
        }
    }
}

/// The set bits of `word`, as slots counted from `base`, lowest first.
fn ones(mut word: u64, base: usize) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let slot = base + word.trailing_zeros() as usize;
            word &= word - 1;
            slot
        })
    })
}
