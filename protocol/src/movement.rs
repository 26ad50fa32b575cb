//! The one movement rule, `step`, shared by the server (simulation) and every client
//! (prediction). Integer arithmetic only, so it is bit-exact in any language; the
//! exact arithmetic is specified in docs/PROTOCOL.md ("Movement").

use glam::IVec2;

use crate::types::{FIXED_SCALE, FixedPos, MoveDir};

/// Largest direction component; longer vectors are scaled down to this length.
pub const DIR_MAX: i32 = 127;

/// Upper bound for [`MoveConfig::speed_per_tick`] so that `dir * speed` fits an `i32`.
pub const MAX_SPEED_PER_TICK: i32 = 1 << 20;

/// Upper bound for a world side in grid steps, so positions plus a step fit an `i32`.
pub const MAX_WORLD_FIXED: i32 = 1 << 28;

/// Movement constants, sent to clients in `Welcome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MoveConfig {
    /// Distance a full-length direction moves in one tick, in grid steps.
    pub speed_per_tick: i32,
    /// Largest valid coordinate on each axis (inclusive); the smallest is 0.
    pub world_max: IVec2,
}

impl MoveConfig {
    /// Derives the grid constants from world units: `speed` in units per second,
    /// `world_size` the side of the square world in units.
    ///
    /// ```
    /// use ticksync_protocol::MoveConfig;
    /// let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
    /// assert_eq!(cfg.speed_per_tick, 53); // 100 * 16 / 30 = 53.3, rounded
    /// assert_eq!(cfg.world_max.x, 16_000);
    /// ```
    pub fn from_units(speed: f64, tick_rate: u32, world_size: f64) -> MoveConfig {
        let per_tick = (speed * f64::from(FIXED_SCALE) / f64::from(tick_rate.max(1))).round();
        let side = (world_size * f64::from(FIXED_SCALE)).round();
        MoveConfig {
            speed_per_tick: per_tick.clamp(0.0, f64::from(MAX_SPEED_PER_TICK)) as i32,
            world_max: IVec2::splat(side.clamp(0.0, f64::from(MAX_WORLD_FIXED)) as i32),
        }
    }

    /// Whether the constants are within the ranges the spec guarantees.
    pub fn is_valid(&self) -> bool {
        (0..=MAX_SPEED_PER_TICK).contains(&self.speed_per_tick)
            && (0..=MAX_WORLD_FIXED).contains(&self.world_max.x)
            && (0..=MAX_WORLD_FIXED).contains(&self.world_max.y)
    }

    /// Clamps a position into the world.
    pub fn clamp(&self, pos: FixedPos) -> FixedPos {
        FixedPos(pos.0.clamp(IVec2::ZERO, self.world_max))
    }
}

/// The velocity, in grid steps per tick, that a direction produces.
pub fn velocity(dir: MoveDir, cfg: &MoveConfig) -> IVec2 {
    let dx = i32::from(dir.x).clamp(-DIR_MAX, DIR_MAX);
    let dy = i32::from(dir.y).clamp(-DIR_MAX, DIR_MAX);
    let m2 = (dx * dx + dy * dy) as u32;
    let mag = if m2 > (DIR_MAX * DIR_MAX) as u32 {
        m2.isqrt() as i32
    } else {
        DIR_MAX
    };
    // Rust's `/` truncates toward zero, as the spec requires.
    IVec2::new(dx * cfg.speed_per_tick / mag, dy * cfg.speed_per_tick / mag)
}

/// Advances one player by one tick of input: the only way a position ever changes.
///
/// ```
/// use ticksync_protocol::{step, FixedPos, MoveConfig, MoveDir};
/// let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
/// let p = step(FixedPos::new(100, 100), MoveDir::new(127, 0), &cfg);
/// assert_eq!(p, FixedPos::new(153, 100));
/// // Clamped at the world's edge.
/// assert_eq!(step(FixedPos::new(0, 0), MoveDir::new(-127, -127), &cfg), FixedPos::new(0, 0));
/// ```
pub fn step(pos: FixedPos, dir: MoveDir, cfg: &MoveConfig) -> FixedPos {
    let v = velocity(dir, cfg);
    let x = pos.0.x.saturating_add(v.x).clamp(0, cfg.world_max.x);
    let y = pos.0.y.saturating_add(v.y).clamp(0, cfg.world_max.y);
    FixedPos::new(x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MoveConfig {
        MoveConfig::from_units(100.0, 30, 1000.0)
    }

    #[test]
    fn diagonal_is_normalized() {
        let v = velocity(MoveDir::new(127, 127), &cfg());
        // |(127,127)| = 179.6, isqrt = 179; 127 * 53 / 179 = 37.6 -> 37
        assert_eq!(v, IVec2::new(37, 37));
        let len2 = v.x * v.x + v.y * v.y;
        assert!(len2 <= 53 * 53);
    }

    #[test]
    fn minus_128_is_clamped_to_minus_127() {
        assert_eq!(
            velocity(MoveDir::new(-128, 0), &cfg()),
            velocity(MoveDir::new(-127, 0), &cfg())
        );
    }

    #[test]
    fn negative_components_truncate_toward_zero() {
        // -1 * 53 / 127 = -0.417 -> 0, not -1.
        assert_eq!(velocity(MoveDir::new(-1, 0), &cfg()), IVec2::ZERO);
        assert_eq!(velocity(MoveDir::new(-64, 0), &cfg()), IVec2::new(-26, 0));
    }

    #[test]
    fn from_units_rounds() {
        assert_eq!(MoveConfig::from_units(100.0, 60, 10.0).speed_per_tick, 27);
        assert!(cfg().is_valid());
    }
}
