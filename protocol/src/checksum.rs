//! The view checksum: an order-independent hash of the entities a client holds.
//!
//! It is a wrapping sum of per-entity hashes, so the server can add up the parts of
//! a view and a client can keep it up to date in O(changes) instead of rehashing its
//! whole world on every snapshot.

use crate::types::{Checksum, FixedPos, PlayerId};

/// MurmurHash3's 32-bit finalizer: a fast, well-mixed bijection on `u32`.
pub fn fmix32(mut h: u32) -> u32 {
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h
}

/// The hash of one entity's state.
pub fn entity_hash(id: PlayerId, pos: FixedPos) -> u32 {
    fmix32(fmix32(fmix32(id.0) ^ pos.0.x as u32) ^ pos.0.y as u32)
}

/// The checksum of a set of entities (each id at most once), in any order.
pub fn checksum(entities: impl IntoIterator<Item = (PlayerId, FixedPos)>) -> Checksum {
    Checksum(entities.into_iter().fold(0u32, |acc, (id, pos)| {
        acc.wrapping_add(entity_hash(id, pos))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_independent_and_sensitive_to_state() {
        let a = (PlayerId(1), FixedPos::new(10, 20));
        let b = (PlayerId(2), FixedPos::new(-5, 7));
        assert_eq!(checksum([a, b]), checksum([b, a]));
        assert_ne!(checksum([a, b]), checksum([a]));
        assert_ne!(
            checksum([a]),
            checksum([(PlayerId(1), FixedPos::new(10, 21))])
        );
        // Swapping coordinates must matter.
        assert_ne!(
            entity_hash(PlayerId(1), FixedPos::new(1, 2)),
            entity_hash(PlayerId(1), FixedPos::new(2, 1))
        );
        assert_eq!(checksum([]), Checksum(0));
    }
}
