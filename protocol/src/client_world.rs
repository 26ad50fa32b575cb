//! `ClientWorld`: a client's reconstruction of the server's world from snapshots.
//!
//! It holds the entity set of the last snapshot it applied — each entity's position
//! and velocity — and applies the next one exactly as docs/PROTOCOL.md section 9
//! says: every entity kept from the baseline takes its velocity change, advances
//! by its velocity for the ticks in between (clamped to the world) and takes its
//! position correction. It refuses anything it cannot apply exactly: a delta
//! against a baseline it does not hold, an entity it does not know, a checksum
//! that does not match. After such an error it accepts only a full snapshot (send
//! `ClientMsg::Resync` to get one).
//!
//! Entities live in a vector sorted by id, and a snapshot's lists are sorted by id
//! too, so applying one is a single merge pass that writes the next state into a
//! second buffer (swapped, never reallocated in steady state). Each entity keeps
//! its hash, so the checksum costs a hash only for the entities whose position
//! changed.

use glam::IVec2;

use crate::checksum::entity_hash;
use crate::messages::{EntityDelta, EntityState, SnapshotBody};
use crate::motion::extrapolate;
use crate::types::{Checksum, FixedPos, PlayerId, Tick};

/// Why a snapshot could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The snapshot is a delta against a tick this world does not hold.
    #[error("delta against tick {need:?}, but the world holds {have:?}")]
    MissingBaseline {
        /// The tick the world holds (`None`: nothing valid).
        have: Option<Tick>,
        /// The baseline the delta needs.
        need: Tick,
    },
    /// A removed, changed or corrected entity is not in the world.
    #[error("entity {0:?} is not in the baseline")]
    UnknownEntity(PlayerId),
    /// A spawned entity is already in the world.
    #[error("entity {0:?} spawned twice")]
    DuplicateEntity(PlayerId),
    /// A velocity or position leaves the `i32` range.
    #[error("velocity or position of entity {0:?} overflows")]
    Overflow(PlayerId),
    /// The resulting state does not match the server's checksum.
    #[error("checksum mismatch at tick {tick:?}: server {expected:?}, client {actual:?}")]
    ChecksumMismatch {
        /// The snapshot's tick.
        tick: Tick,
        /// The checksum the server sent.
        expected: Checksum,
        /// The checksum of what the client now holds.
        actual: Checksum,
    },
}

/// What applying a snapshot did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Applied {
    /// The tick the world now holds.
    pub tick: Tick,
    /// Whether it was a full snapshot.
    pub full: bool,
    /// Entities removed.
    pub removed: usize,
    /// Entities spawned.
    pub spawned: usize,
    /// Entities whose velocity changed.
    pub changed: usize,
    /// Entities whose position was corrected.
    pub corrected: usize,
}

/// One held entity and the hash of its position (for the running checksum).
#[derive(Debug, Clone, Copy)]
struct Held {
    state: EntityState,
    hash: u32,
}

impl Held {
    fn new(state: EntityState) -> Held {
        Held {
            state,
            hash: entity_hash(state.id, state.pos),
        }
    }
}

/// A client's copy of the entities it can see.
#[derive(Debug, Clone)]
pub struct ClientWorld {
    world_max: IVec2,
    tick: Option<Tick>,
    /// Sorted by id.
    entities: Vec<Held>,
    /// The next state while applying; swapped with `entities`.
    next: Vec<Held>,
    sum: u32,
}

impl ClientWorld {
    /// An empty world that waits for a full snapshot. `world_max` is
    /// `Welcome::movement.world_max`: extrapolated positions are clamped to it.
    pub fn new(world_max: IVec2) -> ClientWorld {
        ClientWorld {
            world_max,
            tick: None,
            entities: Vec::new(),
            next: Vec::new(),
            sum: 0,
        }
    }

    /// The tick of the state held, or `None` before the first full snapshot and
    /// after an error.
    pub fn tick(&self) -> Option<Tick> {
        self.tick
    }

    /// The largest coordinates of the world (extrapolation clamps to them).
    pub fn world_max(&self) -> IVec2 {
        self.world_max
    }

    fn find(&self, id: PlayerId) -> Option<&Held> {
        self.entities
            .binary_search_by_key(&id, |h| h.state.id)
            .ok()
            .map(|i| &self.entities[i])
    }

    /// An entity's position.
    pub fn get(&self, id: PlayerId) -> Option<FixedPos> {
        self.find(id).map(|h| h.state.pos)
    }

    /// An entity's position and velocity.
    pub fn state(&self, id: PlayerId) -> Option<EntityState> {
        self.find(id).map(|h| h.state)
    }

    /// Number of entities held.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity is held.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// All entities, sorted by id.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntityState> + '_ {
        self.entities.iter().map(|h| h.state)
    }

    /// All entities sorted by id (handy for comparing with the server's view).
    pub fn to_sorted_vec(&self) -> Vec<EntityState> {
        self.iter().collect()
    }

    /// The checksum of what the world holds.
    pub fn checksum(&self) -> Checksum {
        Checksum(self.sum)
    }

    /// Applies a full or delta snapshot and verifies its checksum. On error the
    /// world is left invalid (see [`ClientWorld::tick`]) until a full snapshot.
    pub fn apply(&mut self, body: &SnapshotBody) -> Result<Applied, ApplyError> {
        let result = self.apply_inner(body);
        match result {
            Ok(_) => self.tick = Some(body.tick),
            Err(_) => {
                self.tick = None;
                self.entities.clear();
                self.sum = 0;
            }
        }
        result
    }

    fn apply_inner(&mut self, body: &SnapshotBody) -> Result<Applied, ApplyError> {
        self.next.clear();
        match body.baseline {
            None => self.next.extend(body.spawned.iter().map(|e| Held::new(*e))),
            Some(need) if self.tick != Some(need) => {
                return Err(ApplyError::MissingBaseline {
                    have: self.tick,
                    need,
                });
            }
            Some(need) => self.merge(body, body.tick.0.wrapping_sub(need.0))?,
        }
        let sum = self.next.iter().fold(0u32, |s, h| s.wrapping_add(h.hash));
        std::mem::swap(&mut self.entities, &mut self.next);
        self.sum = sum;
        if sum != body.checksum.0 {
            return Err(ApplyError::ChecksumMismatch {
                tick: body.tick,
                expected: body.checksum,
                actual: Checksum(sum),
            });
        }
        Ok(Applied {
            tick: body.tick,
            full: body.baseline.is_none(),
            removed: body.removed.len(),
            spawned: body.spawned.len(),
            changed: body.changed.len(),
            corrected: body.corrected.len(),
        })
    }

    /// Writes the state after the delta `body` (spanning `ticks` ticks) into
    /// `next`: one pass over the held entities and the four id-sorted lists.
    fn merge(&mut self, body: &SnapshotBody, ticks: u32) -> Result<(), ApplyError> {
        let mut removed = body.removed.iter().copied().peekable();
        let mut spawned = body.spawned.iter().copied().peekable();
        let mut changed = Cursor::new(&body.changed);
        let mut corrected = Cursor::new(&body.corrected);
        for h in &self.entities {
            let id = h.state.id;
            while let Some(s) = spawned.next_if(|s| s.id < id) {
                self.next.push(Held::new(s));
            }
            if let Some(&r) = removed.peek()
                && r <= id
            {
                removed.next();
                if r < id {
                    return Err(ApplyError::UnknownEntity(r));
                }
                // Removed first: a change or correction of it names no entity.
                if changed.take(id)?.is_some() || corrected.take(id)?.is_some() {
                    return Err(ApplyError::UnknownEntity(id));
                }
                continue;
            }
            if spawned.peek().is_some_and(|s| s.id == id) {
                return Err(ApplyError::DuplicateEntity(id));
            }
            let mut state = h.state;
            if let Some(dv) = changed.take(id)? {
                state.vel = checked_add(state.vel, dv).ok_or(ApplyError::Overflow(id))?;
            }
            state.pos = extrapolate(state.pos, state.vel, ticks, self.world_max);
            if let Some(r) = corrected.take(id)? {
                state.pos = FixedPos(checked_add(state.pos.0, r).ok_or(ApplyError::Overflow(id))?);
            }
            let hash = if state.pos == h.state.pos {
                h.hash
            } else {
                entity_hash(id, state.pos)
            };
            self.next.push(Held { state, hash });
        }
        if let Some(r) = removed.next() {
            return Err(ApplyError::UnknownEntity(r));
        }
        changed.finish()?;
        corrected.finish()?;
        self.next.extend(spawned.map(Held::new));
        Ok(())
    }
}

/// Walks a `changed` or `corrected` list alongside the held entities.
struct Cursor<'a> {
    entries: &'a [EntityDelta],
}

impl<'a> Cursor<'a> {
    fn new(entries: &'a [EntityDelta]) -> Cursor<'a> {
        Cursor { entries }
    }

    /// The entry for held entity `id`, if any. An entry for an id below `id` names
    /// an entity that is not held.
    fn take(&mut self, id: PlayerId) -> Result<Option<IVec2>, ApplyError> {
        match self.entries.first() {
            Some(e) if e.id < id => Err(ApplyError::UnknownEntity(e.id)),
            Some(e) if e.id == id => {
                self.entries = &self.entries[1..];
                Ok(Some(e.delta))
            }
            _ => Ok(None),
        }
    }

    /// Every entry must have been taken.
    fn finish(&self) -> Result<(), ApplyError> {
        match self.entries.first() {
            Some(e) => Err(ApplyError::UnknownEntity(e.id)),
            None => Ok(()),
        }
    }
}

fn checked_add(a: IVec2, b: IVec2) -> Option<IVec2> {
    Some(IVec2::new(a.x.checked_add(b.x)?, a.y.checked_add(b.y)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot;

    fn e(id: u32, x: i32, vx: i32) -> EntityState {
        EntityState::new(PlayerId(id), FixedPos::new(x, 5), IVec2::new(vx, 0))
    }

    const MAX: IVec2 = IVec2::new(1000, 1000);

    fn world(view: &[EntityState]) -> ClientWorld {
        let mut w = ClientWorld::new(MAX);
        w.apply(&snapshot::full(Tick(10), view)).unwrap();
        w
    }

    #[test]
    fn unlisted_entities_advance_by_their_velocity_and_stop_at_the_wall() {
        let mut w = world(&[e(1, 0, 53), e(2, 990, 53), e(3, 7, 0)]);
        let cur = [e(1, 159, 53), e(2, 1000, 53), e(3, 7, 0)];
        let d = snapshot::delta(Tick(13), Tick(10), &w.to_sorted_vec(), &cur, MAX);
        assert!(d.changed.is_empty() && d.corrected.is_empty());
        w.apply(&d).unwrap();
        assert_eq!(w.to_sorted_vec(), cur);
    }

    #[test]
    fn removed_then_changed_is_an_unknown_entity() {
        let mut w = world(&[e(1, 0, 0), e(2, 0, 0)]);
        let mut d = snapshot::delta(Tick(11), Tick(10), &w.to_sorted_vec(), &[e(1, 0, 0)], MAX);
        d.changed.push(EntityDelta {
            id: PlayerId(2),
            delta: IVec2::ONE,
        });
        assert_eq!(w.apply(&d), Err(ApplyError::UnknownEntity(PlayerId(2))));
        assert_eq!(w.tick(), None);
        assert!(w.is_empty());
    }

    #[test]
    fn spawning_a_held_entity_is_a_duplicate() {
        let mut w = world(&[e(1, 0, 0), e(2, 0, 0)]);
        let mut d = snapshot::delta(
            Tick(11),
            Tick(10),
            &w.to_sorted_vec(),
            &w.to_sorted_vec(),
            MAX,
        );
        d.spawned.push(e(2, 3, 0));
        assert_eq!(w.apply(&d), Err(ApplyError::DuplicateEntity(PlayerId(2))));
    }

    #[test]
    fn a_velocity_beyond_i32_overflows() {
        let mut w = world(&[e(1, 0, i32::MAX)]);
        let mut d = snapshot::delta(
            Tick(11),
            Tick(10),
            &w.to_sorted_vec(),
            &w.to_sorted_vec(),
            MAX,
        );
        d.changed = vec![EntityDelta {
            id: PlayerId(1),
            delta: IVec2::ONE,
        }];
        d.corrected.clear();
        assert_eq!(w.apply(&d), Err(ApplyError::Overflow(PlayerId(1))));
    }
}
