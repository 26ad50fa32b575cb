//! Velocities (wire v2): how a client advances an entity the snapshots do not
//! mention ([`extrapolate`]), and how the reference server chooses the velocity it
//! tells clients ([`Motion`]).
//!
//! A client holds a position and a velocity per entity. Every tick a delta does not
//! list an entity, the client moves it by its velocity, clamped to the world like
//! [`crate::step`] clamps a player; so a player walking steadily (or pushing into a
//! wall) costs no bytes. The velocity is whatever the server says it is: clients
//! never derive it themselves, so the server's choice ([`Motion`]) is a matter of
//! bytes, not of correctness.

use glam::{I64Vec2, IVec2};

use crate::movement::{MoveConfig, velocity};
use crate::types::{FixedPos, MoveDir};

/// Where an entity at `pos` moving at `vel` grid steps per tick is after `ticks`
/// ticks: `clamp(pos + ticks * vel, 0, world_max)` on each axis.
///
/// The product and sum are exact (64-bit: `|ticks * vel| < 2^63` and no overflow
/// is possible), and the result is always inside the world. For a constant
/// velocity this equals clamping after every tick, as [`crate::step`] does, because
/// a clamped axis stays clamped.
///
/// ```
/// use glam::IVec2;
/// use ticksync_protocol::{motion::extrapolate, FixedPos};
/// let max = IVec2::splat(16_000);
/// assert_eq!(extrapolate(FixedPos::new(100, 100), IVec2::new(53, -37), 3, max), FixedPos::new(259, 0));
/// ```
pub fn extrapolate(pos: FixedPos, vel: IVec2, ticks: u32, world_max: IVec2) -> FixedPos {
    let k = i64::from(ticks);
    let p = pos.0.as_i64vec2() + vel.as_i64vec2() * k;
    let p = p.clamp(I64Vec2::ZERO, world_max.max(IVec2::ZERO).as_i64vec2());
    // Inside [0, world_max], so it fits an i32.
    FixedPos(p.as_ivec2())
}

/// The reference server's velocity for one player: the velocity of the last
/// direction it applied, kept through one tick without input (a late input is
/// more likely than a stop), and zero after two.
///
/// Why this choice, not the last tick's displacement: a steady walk costs nothing
/// either way, but with the displacement a player pushing into a wall would be
/// listed twice (slowing, stopping), and a late input three times (stop, double
/// step, back to normal); here a wall costs nothing ([`extrapolate`] clamps) and
/// a late input costs two position corrections (docs/PROTOCOL.md, section 15).
///
/// ```
/// use glam::IVec2;
/// use ticksync_protocol::{motion::Motion, MoveConfig, MoveDir};
/// let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
/// let mut m = Motion::default();
/// assert_eq!(m.after_tick(Some(MoveDir::new(127, 0)), &cfg), IVec2::new(53, 0));
/// assert_eq!(m.after_tick(None, &cfg), IVec2::new(53, 0)); // one late input
/// assert_eq!(m.after_tick(None, &cfg), IVec2::ZERO); // stopped sending
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Motion {
    vel: IVec2,
    /// Consecutive ticks without an applied input (saturating).
    idle: u8,
}

impl Motion {
    /// Updates the velocity after a tick: `last` is the direction of the last
    /// input the player applied in it (`None`: none). Returns the new velocity.
    pub fn after_tick(&mut self, last: Option<MoveDir>, cfg: &MoveConfig) -> IVec2 {
        match last {
            Some(dir) => {
                self.vel = velocity(dir, cfg);
                self.idle = 0;
            }
            None => {
                self.idle = self.idle.saturating_add(1);
                if self.idle >= 2 {
                    self.vel = IVec2::ZERO;
                }
            }
        }
        self.vel
    }

    /// The current velocity in grid steps per tick.
    pub fn velocity(&self) -> IVec2 {
        self.vel
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step;

    #[test]
    fn extrapolation_equals_stepping_with_a_constant_direction() {
        let cfg = MoveConfig {
            speed_per_tick: 53,
            world_max: IVec2::new(300, 200),
        };
        for dir in [(127, 0), (-127, 90), (0, -128), (127, 127), (3, -3), (0, 0)] {
            let dir = MoveDir::new(dir.0, dir.1);
            let v = velocity(dir, &cfg);
            let start = FixedPos::new(150, 20);
            let mut pos = start;
            for k in 1..=12 {
                pos = step(pos, dir, &cfg);
                assert_eq!(extrapolate(start, v, k, cfg.world_max), pos, "{dir:?} {k}");
            }
        }
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let max = IVec2::splat(1 << 28);
        let far = extrapolate(
            FixedPos::new(i32::MAX, i32::MIN),
            IVec2::new(i32::MAX, i32::MIN),
            u32::MAX,
            max,
        );
        assert_eq!(far, FixedPos::new(1 << 28, 0));
        let back = extrapolate(
            FixedPos::new(i32::MIN, i32::MAX),
            IVec2::new(i32::MIN, i32::MAX),
            u32::MAX,
            max,
        );
        assert_eq!(back, FixedPos::new(0, 1 << 28));
        assert_eq!(
            extrapolate(FixedPos::new(-5, 7), IVec2::ZERO, 0, max),
            FixedPos::new(0, 7)
        );
    }

    #[test]
    fn a_stopped_player_is_stopped_after_two_empty_ticks() {
        let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
        let mut m = Motion::default();
        assert_eq!(m.after_tick(None, &cfg), IVec2::ZERO);
        m.after_tick(Some(MoveDir::new(0, -127)), &cfg);
        m.after_tick(None, &cfg);
        assert_eq!(m.velocity(), IVec2::new(0, -53));
        assert_eq!(
            m.after_tick(Some(MoveDir::new(0, -127)), &cfg),
            IVec2::new(0, -53)
        );
        m.after_tick(None, &cfg);
        m.after_tick(None, &cfg);
        assert_eq!(m.velocity(), IVec2::ZERO);
        assert_eq!(m.after_tick(Some(MoveDir::ZERO), &cfg), IVec2::ZERO);
    }
}
