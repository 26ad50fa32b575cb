//! `ClientWorld`: a client's reconstruction of the server's world from snapshots.
//!
//! It holds the entity set of the last snapshot it applied, keeps the view checksum
//! up to date in O(changes), and refuses anything it cannot apply exactly: a delta
//! against a baseline it does not hold, an entity it does not know, a checksum that
//! does not match. After such an error it accepts only a full snapshot (send
//! `ClientMsg::Resync` to get one).

use glam::IVec2;
use rustc_hash::FxHashMap;

use crate::checksum::entity_hash;
use crate::messages::{EntityState, SnapshotBody};
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
    /// A removed or changed entity is not in the world.
    #[error("entity {0:?} is not in the baseline")]
    UnknownEntity(PlayerId),
    /// A spawned entity is already in the world.
    #[error("entity {0:?} spawned twice")]
    DuplicateEntity(PlayerId),
    /// A position change leaves the `i32` range.
    #[error("position of entity {0:?} overflows")]
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
    /// Entities moved.
    pub changed: usize,
}

/// A client's copy of the entities it can see.
#[derive(Debug, Clone, Default)]
pub struct ClientWorld {
    tick: Option<Tick>,
    entities: FxHashMap<PlayerId, FixedPos>,
    sum: u32,
}

impl ClientWorld {
    /// An empty world that waits for a full snapshot.
    pub fn new() -> ClientWorld {
        ClientWorld::default()
    }

    /// The tick of the state held, or `None` before the first full snapshot and
    /// after an error.
    pub fn tick(&self) -> Option<Tick> {
        self.tick
    }

    /// An entity's position.
    pub fn get(&self, id: PlayerId) -> Option<FixedPos> {
        self.entities.get(&id).copied()
    }

    /// Number of entities held.
    pub fn len(&self) -> usize {
        self.entities.len()
    }

    /// Whether no entity is held.
    pub fn is_empty(&self) -> bool {
        self.entities.is_empty()
    }

    /// All entities, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (PlayerId, FixedPos)> + '_ {
        self.entities.iter().map(|(id, pos)| (*id, *pos))
    }

    /// All entities sorted by id (handy for comparing with the server's view).
    pub fn to_sorted_vec(&self) -> Vec<EntityState> {
        let mut v: Vec<EntityState> = self
            .iter()
            .map(|(id, pos)| EntityState { id, pos })
            .collect();
        v.sort_unstable_by_key(|e| e.id);
        v
    }

    /// The checksum of what the world holds.
    pub fn checksum(&self) -> Checksum {
        Checksum(self.sum)
    }

    /// Applies a full or delta snapshot and verifies its checksum. On error the
    /// world is left invalid (see [`ClientWorld::tick`]) until a full snapshot.
    pub fn apply(&mut self, body: &SnapshotBody) -> Result<Applied, ApplyError> {
        let result = self.apply_inner(body);
        self.tick = match result {
            Ok(_) => Some(body.tick),
            Err(_) => None,
        };
        result
    }

    fn apply_inner(&mut self, body: &SnapshotBody) -> Result<Applied, ApplyError> {
        match body.baseline {
            None => {
                self.entities.clear();
                self.sum = 0;
            }
            Some(need) if self.tick != Some(need) => {
                return Err(ApplyError::MissingBaseline {
                    have: self.tick,
                    need,
                });
            }
            Some(_) => {}
        }
        for id in &body.removed {
            let pos = self
                .entities
                .remove(id)
                .ok_or(ApplyError::UnknownEntity(*id))?;
            self.sum = self.sum.wrapping_sub(entity_hash(*id, pos));
        }
        for e in &body.spawned {
            if self.entities.insert(e.id, e.pos).is_some() {
                return Err(ApplyError::DuplicateEntity(e.id));
            }
            self.sum = self.sum.wrapping_add(entity_hash(e.id, e.pos));
        }
        for c in &body.changed {
            let pos = self
                .entities
                .get_mut(&c.id)
                .ok_or(ApplyError::UnknownEntity(c.id))?;
            let old = *pos;
            let x = old.0.x.checked_add(c.delta.x);
            let y = old.0.y.checked_add(c.delta.y);
            let (Some(x), Some(y)) = (x, y) else {
                return Err(ApplyError::Overflow(c.id));
            };
            *pos = FixedPos(IVec2::new(x, y));
            self.sum = self
                .sum
                .wrapping_sub(entity_hash(c.id, old))
                .wrapping_add(entity_hash(c.id, *pos));
        }
        if self.sum != body.checksum.0 {
            return Err(ApplyError::ChecksumMismatch {
                tick: body.tick,
                expected: body.checksum,
                actual: Checksum(self.sum),
            });
        }
        Ok(Applied {
            tick: body.tick,
            full: body.baseline.is_none(),
            removed: body.removed.len(),
            spawned: body.spawned.len(),
            changed: body.changed.len(),
        })
    }
}
