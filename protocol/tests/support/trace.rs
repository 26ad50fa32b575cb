//! The multi-tick snapshot trace (`snapshot_trace.json`): a small world played
//! tick by tick with the movement rule and the reference server's velocity policy,
//! one client's view of it, and every snapshot that client receives — steady
//! walks that cost nothing, turns, a late input, a player that stops sending, a
//! wall, joins, leaves, an entity entering the view while moving, two skipped
//! ticks (a delta of age 3) and a `Resync` (a full snapshot in the middle).

use glam::IVec2;
use serde::{Deserialize, Serialize};
use ticksync_protocol::motion::Motion;
use ticksync_protocol::*;

use super::cases::REGEN;
use super::json::{EntityJson, MsgCase, ServerJson, hex};
use super::numeric::{ConfigJson, XY};

/// The inputs one player applied in one tick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppliedJson {
    pub id: u32,
    /// The directions applied in this tick, in order (0, 1 or 2 of them).
    pub dirs: Vec<[i8; 2]>,
}

/// One tick of the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceTickJson {
    pub tick: u32,
    /// What happens in this tick, in words.
    pub note: String,
    /// The inputs every player in the world applied.
    pub applied: Vec<AppliedJson>,
    /// The client's view after the tick: what it holds once it applied `snapshot`.
    pub entities: Vec<EntityJson>,
    /// The checksum of `entities`.
    pub checksum: u32,
    /// The snapshot the client receives for this tick (`null`: skipped).
    pub snapshot: Option<MsgCase<ServerJson>>,
}

/// The trace vector file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceFile {
    pub about: String,
    pub config: ConfigJson,
    /// The client's view: every player within `view_radius` of `view_center`.
    pub view_center: XY,
    pub view_radius: i32,
    pub ticks: Vec<TraceTickJson>,
}

const FIRST_TICK: u32 = 1000;
const CENTER: IVec2 = IVec2::new(400, 240);
const RADIUS: i32 = 300;

/// What a player does in tick `FIRST_TICK + t`: the directions it applies, or
/// `None` when it is not in the world.
fn script(id: u32, t: u32) -> Option<Vec<(i8, i8)>> {
    let right = (127, 0);
    Some(match id {
        // Walks right at full speed: never listed while in view, leaves the view.
        1 => vec![right],
        // Walks down, turns left at t = 3, then up-right at t = 9.
        2 => vec![match t {
            0..=2 => (0, 127),
            3..=8 => (-127, 0),
            _ => (90, -90),
        }],
        // Walks up; its input for t = 4 is late, so it applies none at 4 and two at 5.
        3 => match t {
            4 => vec![],
            5 => vec![(0, -127), (0, -127)],
            _ => vec![(0, -127)],
        },
        // Walks down-right, stops sending at t = 6 (its connection dropped).
        4 => match t {
            0..=5 => vec![(127, 127)],
            _ => vec![],
        },
        // Stands still, then walks right from t = 7 (while the client skips ticks).
        5 => vec![if t < 7 { (0, 0) } else { right }],
        // Joins at t = 5, starts walking up at t = 6 into the wall y = 0.
        6 => match t {
            0..=4 => return None,
            5 => vec![],
            _ => vec![(0, -127)],
        },
        // Leaves at t = 7.
        7 => match t {
            0..=6 => vec![(-64, 64)],
            _ => return None,
        },
        // Comes from outside the view towards its centre, slowly.
        8 => vec![(-25, 25)],
        _ => return None,
    })
}

fn start(id: u32) -> FixedPos {
    let (x, y) = match id {
        1 => (150, 240),
        2 => (400, 100),
        3 => (300, 400),
        4 => (300, 200),
        5 => (500, 300),
        6 => (350, 100),
        7 => (460, 180),
        _ => (800, 0),
    };
    FixedPos::new(x, y)
}

fn note(t: u32) -> &'static str {
    match t {
        0 => {
            "Full snapshot, the first of the session: every entity in view with its position and \
             velocity (6 has not joined yet, 8 is outside the view)."
        }
        1 | 2 => {
            "Everyone keeps their direction: an empty delta. Every entity advances by its \
             velocity (5 stands still)."
        }
        3 => {
            "2 turns left: changed by (-53, -53). Its new velocity takes it exactly where it is, \
             so it needs no correction."
        }
        4 => {
            "3's input is late: it applies none and stands still, but keeps its velocity (a late \
             input is likelier than a stop), so it is corrected by (0, 53)."
        }
        5 => {
            "3 applies two inputs (the late one and this tick's): corrected by (0, -53). 6 joins: \
             spawned standing still."
        }
        6 => {
            "Skipped by this client (its queue was full). 4 stops sending: it stands still and \
             keeps its velocity for this one tick. 6 starts walking up."
        }
        7 => {
            "Skipped by this client. 7 leaves the world; 4's velocity drops to 0 (a second tick \
             without input); 3 and 6 reach the wall y = 0; 5 starts walking right."
        }
        8 => {
            "A delta of age 3 against tick 1005: 2 (out of the view) and 7 (gone) are removed. \
             4 is changed to velocity 0 and stays where it stopped. 6 is changed to (0, -53) and \
             extrapolated three ticks from y = 100, clamped at the wall y = 0. 5 is changed to \
             (53, 0); three ticks of it from x = 500 give 659, but it only walked two: corrected \
             by (-53, 0). 3 stands at the wall at no cost."
        }
        9 => "2 turns up-right and comes back into the view: spawned with its new velocity.",
        10 => "1 and 5 walk out of the view: removed.",
        11 => "The client sent Resync (after a failure, say): a full snapshot.",
        12 => "8 enters the view: spawned with its velocity (-10, 10).",
        _ => "Nothing but steady motion: an empty delta.",
    }
}

/// The client skips these offsets (no snapshot; the next is a delta of age 3) and
/// gets a full snapshot at the `RESYNC` one.
const SKIPPED: [u32; 2] = [6, 7];
const RESYNC: u32 = 11;
const TICKS: u32 = 14;

/// The trace file.
pub fn trace_file() -> TraceFile {
    let cfg = MoveConfig {
        speed_per_tick: 53,
        world_max: IVec2::new(800, 480),
    };
    // (id, position, velocity policy), sorted by id.
    let mut players: Vec<(u32, FixedPos, Motion)> = Vec::new();
    let mut held: Option<(Tick, Vec<EntityState>)> = None;
    let mut ticks = Vec::new();
    for t in 0..TICKS {
        let tick = Tick(FIRST_TICK + t);
        players.retain(|(id, ..)| script(*id, t).is_some());
        for id in 1..=8 {
            if script(id, t).is_some() && !players.iter().any(|p| p.0 == id) {
                players.push((id, start(id), Motion::default()));
            }
        }
        players.sort_by_key(|p| p.0);
        let mut applied = Vec::new();
        for (id, pos, motion) in &mut players {
            let dirs = script(*id, t).unwrap_or_default();
            for &(x, y) in &dirs {
                *pos = step(*pos, MoveDir::new(x, y), &cfg);
            }
            motion.after_tick(dirs.last().map(|&(x, y)| MoveDir::new(x, y)), &cfg);
            applied.push(AppliedJson {
                id: *id,
                dirs: dirs.iter().map(|&(x, y)| [x, y]).collect(),
            });
        }
        let view: Vec<EntityState> = players
            .iter()
            .filter(|(_, pos, _)| (pos.0 - CENTER).length_squared() <= RADIUS * RADIUS)
            .map(|(id, pos, m)| EntityState::new(PlayerId(*id), *pos, m.velocity()))
            .collect();
        let snapshot = (!SKIPPED.contains(&t)).then(|| {
            let body = match &held {
                Some((base_tick, base)) if t != RESYNC => {
                    snapshot::delta(tick, *base_tick, base, &view, cfg.world_max)
                }
                _ => snapshot::full(tick, &view),
            };
            held = Some((tick, view.clone()));
            let msg = ServerMsg::Snapshot(Snapshot {
                ack_input: InputSeq(40 + t),
                body,
            });
            MsgCase {
                name: format!("tick_{}", tick.0),
                description: String::new(),
                message: ServerJson::from(&msg),
                hex: hex(&codec::encode_server(&msg)),
                canonical_hex: None,
            }
        });
        ticks.push(TraceTickJson {
            tick: tick.0,
            note: note(t).into(),
            applied,
            entities: view.iter().map(EntityJson::from).collect(),
            checksum: snapshot::view_checksum(&view).0,
            snapshot,
        });
    }
    TraceFile {
        about: format!(
            "Ticksync protocol v2 golden vectors: a multi-tick trace. Players move by `step` with \
             the inputs in `applied`; their velocity follows the reference server's policy (the \
             velocity of the last direction applied, kept through one tick without input, zero \
             after two). One client sees every player within view_radius of view_center. Apply \
             each tick's snapshot in order: the result must be `entities` (positions and \
             velocities) with `checksum`. {REGEN}"
        ),
        config: ConfigJson {
            speed_per_tick: cfg.speed_per_tick,
            world_max_x: cfg.world_max.x,
            world_max_y: cfg.world_max.y,
        },
        view_center: XY {
            x: CENTER.x,
            y: CENTER.y,
        },
        view_radius: RADIUS,
        ticks,
    }
}
