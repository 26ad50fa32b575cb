//! The bots' movement pattern: a seeded random walk whose direction changes about
//! once a second, so a run is reproducible from `--seed` and every bot wanders the
//! whole world instead of standing still or marching into one wall.

use glam::Vec2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ticksync_protocol::MoveDir;

/// One in this many direction changes makes the bot stand still for a while, so
/// zero inputs (and entities that do not change) are exercised too.
const IDLE_ONE_IN: u32 = 8;

/// A reproducible random walk that produces one [`MoveDir`] per simulation tick.
#[derive(Debug, Clone)]
pub struct RandomWalk {
    rng: SmallRng,
    dir: MoveDir,
    started: bool,
}

impl RandomWalk {
    /// A walk determined entirely by `seed`.
    pub fn new(seed: u64) -> RandomWalk {
        RandomWalk {
            rng: SmallRng::seed_from_u64(seed),
            dir: MoveDir::ZERO,
            started: false,
        }
    }

    /// The direction for the next tick. With `ticks_per_change` ticks per second, the
    /// direction changes on average once a second.
    pub fn next_dir(&mut self, ticks_per_change: u32) -> MoveDir {
        let change = !self.started || self.rng.random_ratio(1, ticks_per_change.max(1));
        self.started = true;
        if change {
            self.dir = if self.rng.random_ratio(1, IDLE_ONE_IN) {
                MoveDir::ZERO
            } else {
                let angle = self.rng.random::<f32>() * std::f32::consts::TAU;
                MoveDir::from_vec2(Vec2::from_angle(angle))
            };
        }
        self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_walk_and_direction_changes_now_and_then() {
        let mut a = RandomWalk::new(42);
        let mut b = RandomWalk::new(42);
        let walk_a: Vec<MoveDir> = (0..300).map(|_| a.next_dir(30)).collect();
        let walk_b: Vec<MoveDir> = (0..300).map(|_| b.next_dir(30)).collect();
        assert_eq!(walk_a, walk_b);
        let changes = walk_a.windows(2).filter(|w| w[0] != w[1]).count();
        // About once a second over 10 seconds; far from every tick and from never.
        assert!((2..=40).contains(&changes), "{changes} changes");
        let other: Vec<MoveDir> = {
            let mut c = RandomWalk::new(43);
            (0..300).map(|_| c.next_dir(30)).collect()
        };
        assert_ne!(walk_a, other);
    }
}
