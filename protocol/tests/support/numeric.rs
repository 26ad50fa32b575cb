//! The movement and checksum vectors: their JSON shapes and their generator.
//! `step_trace.json` carries the intermediate values of the step arithmetic so a
//! port can find which line of its arithmetic differs.

use glam::IVec2;
use serde::{Deserialize, Serialize};
use ticksync_protocol::checksum::{entity_hash, fmix32};
use ticksync_protocol::movement::velocity;
use ticksync_protocol::*;

use super::cases::{REGEN, story_views};
use super::json::PositionJson;

/// A point or vector as `{"x": .., "y": ..}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XY {
    pub x: i32,
    pub y: i32,
}

/// Movement constants as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigJson {
    pub speed_per_tick: i32,
    pub world_max_x: i32,
    pub world_max_y: i32,
}

impl From<ConfigJson> for MoveConfig {
    fn from(c: ConfigJson) -> Self {
        MoveConfig {
            speed_per_tick: c.speed_per_tick,
            world_max: IVec2::new(c.world_max_x, c.world_max_y),
        }
    }
}

/// One step of a trace, with the intermediate values of the arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepJson {
    /// The input direction as sent (`-128` allowed).
    pub dir: [i8; 2],
    /// Sum of squares of the clamped components.
    pub m2: i32,
    /// The divisor: `isqrt(m2)` if `m2 > 16129`, else 127.
    pub mag: i32,
    pub velocity: XY,
    /// The position after the step.
    pub pos: XY,
}

/// A sequence of steps from a start position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceJson {
    pub name: String,
    pub description: String,
    pub config: ConfigJson,
    pub start: XY,
    pub steps: Vec<StepJson>,
}

/// How the server derives movement constants from world units (informative).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivationJson {
    pub speed_units_per_s: f64,
    pub tick_rate: u32,
    pub world_size_units: f64,
    pub speed_per_tick: i32,
    pub world_max: i32,
}

/// The step trace vector file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepFile {
    pub about: String,
    pub traces: Vec<TraceJson>,
    pub config_derivation: Vec<DerivationJson>,
}

/// `fmix32` input and output.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FmixJson {
    pub input: u32,
    pub output: u32,
}

/// One entity and its hash.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityHashJson {
    pub id: u32,
    pub x: i32,
    pub y: i32,
    pub hash: u32,
}

/// An entity set and its checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksumSetJson {
    pub name: String,
    pub description: String,
    pub entities: Vec<PositionJson>,
    pub checksum: u32,
}

/// The checksum vector file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksumFile {
    pub about: String,
    pub fmix32: Vec<FmixJson>,
    pub entity_hash: Vec<EntityHashJson>,
    pub sets: Vec<ChecksumSetJson>,
}

fn trace(
    name: &str,
    description: &str,
    cfg: MoveConfig,
    start: (i32, i32),
    ds: &[(i8, i8)],
) -> TraceJson {
    let mut pos = FixedPos::new(start.0, start.1);
    let steps = ds
        .iter()
        .map(|&(x, y)| {
            let dir = MoveDir::new(x, y);
            let (cx, cy) = (i32::from(x).max(-127), i32::from(y).max(-127));
            let m2 = cx * cx + cy * cy;
            let mag = if m2 > 127 * 127 {
                (m2 as u32).isqrt() as i32
            } else {
                127
            };
            let v = velocity(dir, &cfg);
            pos = step(pos, dir, &cfg);
            StepJson {
                dir: [x, y],
                m2,
                mag,
                velocity: XY { x: v.x, y: v.y },
                pos: XY {
                    x: pos.0.x,
                    y: pos.0.y,
                },
            }
        })
        .collect();
    TraceJson {
        name: name.into(),
        description: description.into(),
        config: ConfigJson {
            speed_per_tick: cfg.speed_per_tick,
            world_max_x: cfg.world_max.x,
            world_max_y: cfg.world_max.y,
        },
        start: XY {
            x: start.0,
            y: start.1,
        },
        steps,
    }
}

/// The movement vectors.
pub fn step_file() -> StepFile {
    let default = MoveConfig::from_units(100.0, 30, 1000.0);
    let small = MoveConfig {
        speed_per_tick: 53,
        world_max: IVec2::new(100, 60),
    };
    let fast = MoveConfig {
        speed_per_tick: 1 << 20,
        world_max: IVec2::splat(1 << 28),
    };
    // (1, 32, 1/32): both products are exactly 0.5, which rounds away from zero to 1.
    let derivations = [
        (100.0, 30, 1000.0),
        (100.0, 60, 10.0),
        (1.0, 32, 0.031_25),
        (250.0, 30, 65_536.0),
    ];
    StepFile {
        about: format!("Ticksync protocol v2 golden vectors: the movement rule `step`. {REGEN}"),
        traces: vec![
            trace(
                "default_world",
                "speed_per_tick 53 in a 16000x16000 world: axis moves, diagonals (normalized by \
                 isqrt), -128 (clamped to -127), tiny directions (truncation toward zero), the \
                 m2 = 16129 boundary and standing still.",
                default,
                (8000, 8000),
                &[
                    (127, 0),
                    (0, 127),
                    (127, 127),
                    (-128, 0),
                    (-128, -128),
                    (1, 0),
                    (3, 0),
                    (-3, 0),
                    (-1, -1),
                    (64, -64),
                    (89, 90),
                    (90, -90),
                    (100, 100),
                    (127, -1),
                    (-127, 127),
                    (0, 0),
                    (-60, 5),
                ],
            ),
            trace(
                "world_edges",
                "A 100x60 world: each axis is clamped to [0, world_max] independently, so a \
                 diagonal into a wall slides along it.",
                small,
                (50, 30),
                &[
                    (127, 0),
                    (127, 0),
                    (0, 127),
                    (127, 127),
                    (-128, 0),
                    (-128, 0),
                    (-128, 0),
                    (-127, -127),
                    (0, -128),
                    (90, -90),
                    (127, 127),
                    (127, 127),
                    (127, 127),
                ],
            ),
            trace(
                "max_speed",
                "speed_per_tick 2^20 (the maximum) in a 2^28 world: products reach 127 x 2^20 = \
                 133169152, still exact in i32 and in JavaScript numbers.",
                fast,
                (0, 1 << 28),
                &[
                    (127, -127),
                    (127, -127),
                    (1, 0),
                    (-1, 0),
                    (127, 5),
                    (-128, 127),
                    (-128, -128),
                ],
            ),
        ],
        config_derivation: derivations
            .iter()
            .map(|&(speed, rate, size)| {
                let c = MoveConfig::from_units(speed, rate, size);
                DerivationJson {
                    speed_units_per_s: speed,
                    tick_rate: rate,
                    world_size_units: size,
                    speed_per_tick: c.speed_per_tick,
                    world_max: c.world_max.x,
                }
            })
            .collect(),
    }
}

fn set(name: &str, description: &str, entities: &[EntityState]) -> ChecksumSetJson {
    ChecksumSetJson {
        name: name.into(),
        description: description.into(),
        entities: entities.iter().map(PositionJson::from).collect(),
        checksum: snapshot::view_checksum(entities).0,
    }
}

/// The checksum vectors.
pub fn checksum_file() -> ChecksumFile {
    let [(_, v100), (_, v101), ..] = story_views();
    let mut reversed = v101.clone();
    reversed.reverse();
    let hashes = [
        (1, 0, 0),
        (1, -1, 5),
        (42, 8000, 8000),
        (70_000, 4_000_000, 16_000),
        (u32::MAX, i32::MIN, i32::MAX),
    ];
    ChecksumFile {
        about: format!(
            "Ticksync protocol v2 golden vectors: fmix32, the entity hash and view checksums \
             (wrapping u32 sums of entity hashes over positions; velocities do not enter). \
             {REGEN}"
        ),
        fmix32: [0, 1, 2, 42, 0x8000_0000, 0xdead_beef, u32::MAX]
            .into_iter()
            .map(|input| FmixJson {
                input,
                output: fmix32(input),
            })
            .collect(),
        entity_hash: hashes
            .into_iter()
            .map(|(id, x, y)| EntityHashJson {
                id,
                x,
                y,
                hash: entity_hash(PlayerId(id), FixedPos::new(x, y)),
            })
            .collect(),
        sets: vec![
            set("empty", "No entities: checksum 0.", &[]),
            set(
                "single",
                "One entity: the checksum is its hash.",
                &v100[..1],
            ),
            set("tick_100", "The view of snapshot_full (tick 100).", &v100),
            set(
                "tick_101",
                "The view after snapshot_delta (tick 101).",
                &v101,
            ),
            set(
                "tick_101_any_order",
                "The same set in another order: the same checksum.",
                &reversed,
            ),
        ],
    }
}
