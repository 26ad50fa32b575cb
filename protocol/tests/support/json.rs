//! The JSON shape of the golden vector files, mirroring docs/PROTOCOL.md's field
//! names (not the Rust structs), so a client in any language can build and compare
//! messages from them. `u64` values are decimal strings (JavaScript numbers cannot
//! hold every `u64`); byte arrays are lowercase hex strings.

use glam::IVec2;
use serde::{Deserialize, Serialize};
use ticksync_protocol::*;

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes of a hex string (test data only: panics on bad input).
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd-length hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn token_from_hex(s: &str) -> ResumeToken {
    ResumeToken(unhex(s).try_into().expect("16-byte resume token"))
}

/// A client message as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientJson {
    /// `ClientMsg::Hello`.
    Hello {
        version: u16,
        name: Option<String>,
        auth_token: Option<String>,
        /// 32 hex digits.
        resume_token: Option<String>,
    },
    /// `ClientMsg::Input`; `dirs` are `[x, y]` pairs.
    Input {
        ack_tick: Option<u32>,
        first_seq: u32,
        dirs: Vec<[i8; 2]>,
    },
    /// `ClientMsg::Ping`.
    Ping { client_time_us: String },
    /// `ClientMsg::Resync`.
    Resync,
}

impl From<&ClientMsg> for ClientJson {
    fn from(m: &ClientMsg) -> Self {
        match m {
            ClientMsg::Hello(h) => ClientJson::Hello {
                version: h.version,
                name: h.name.clone(),
                auth_token: h.auth_token.clone(),
                resume_token: h.resume_token.map(|t| hex(&t.0)),
            },
            ClientMsg::Input(i) => ClientJson::Input {
                ack_tick: i.ack_tick.map(|t| t.0),
                first_seq: i.first_seq.0,
                dirs: i.dirs.iter().map(|d| [d.x, d.y]).collect(),
            },
            ClientMsg::Ping { client_time_us } => ClientJson::Ping {
                client_time_us: client_time_us.to_string(),
            },
            ClientMsg::Resync => ClientJson::Resync,
        }
    }
}

impl From<&ClientJson> for ClientMsg {
    fn from(j: &ClientJson) -> Self {
        match j {
            ClientJson::Hello {
                version,
                name,
                auth_token,
                resume_token,
            } => ClientMsg::Hello(Hello {
                version: *version,
                name: name.clone(),
                auth_token: auth_token.clone(),
                resume_token: resume_token.as_deref().map(token_from_hex),
            }),
            ClientJson::Input {
                ack_tick,
                first_seq,
                dirs,
            } => ClientMsg::Input(Input {
                ack_tick: ack_tick.map(Tick),
                first_seq: InputSeq(*first_seq),
                dirs: dirs.iter().map(|[x, y]| MoveDir::new(*x, *y)).collect(),
            }),
            ClientJson::Ping { client_time_us } => ClientMsg::Ping {
                client_time_us: client_time_us.parse().expect("u64 decimal string"),
            },
            ClientJson::Resync => ClientMsg::Resync,
        }
    }
}

/// An entity's full state as JSON: position and velocity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityJson {
    pub id: u32,
    pub x: i32,
    pub y: i32,
    pub vx: i32,
    pub vy: i32,
}

impl From<&EntityState> for EntityJson {
    fn from(e: &EntityState) -> Self {
        EntityJson {
            id: e.id.0,
            x: e.pos.0.x,
            y: e.pos.0.y,
            vx: e.vel.x,
            vy: e.vel.y,
        }
    }
}

impl From<&EntityJson> for EntityState {
    fn from(e: &EntityJson) -> Self {
        EntityState::new(
            PlayerId(e.id),
            FixedPos::new(e.x, e.y),
            IVec2::new(e.vx, e.vy),
        )
    }
}

/// An entity's position, for the checksum sets (which ignore velocities).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PositionJson {
    pub id: u32,
    pub x: i32,
    pub y: i32,
}

impl From<&EntityState> for PositionJson {
    fn from(e: &EntityState) -> Self {
        PositionJson {
            id: e.id.0,
            x: e.pos.0.x,
            y: e.pos.0.y,
        }
    }
}

impl From<&PositionJson> for EntityState {
    fn from(e: &PositionJson) -> Self {
        EntityState::at(PlayerId(e.id), FixedPos::new(e.x, e.y))
    }
}

/// A `changed` entry as JSON: the velocity change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeJson {
    pub id: u32,
    pub dvx: i32,
    pub dvy: i32,
}

/// A `corrected` entry as JSON: the position residual.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorrectionJson {
    pub id: u32,
    pub rx: i32,
    pub ry: i32,
}

/// A server message as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ServerJson {
    /// `ServerMsg::Welcome`, with the movement constants flattened.
    Welcome {
        player_id: u32,
        tick: u32,
        tick_rate: u16,
        speed_per_tick: i32,
        world_max_x: i32,
        world_max_y: i32,
        fixed_scale: u16,
        view_radius: u32,
        resume_token: String,
        resumed: bool,
        last_input_seq: u32,
        idle_timeout_ms: u32,
        rate_limit: u16,
        rate_burst: u16,
        resume_grace_ms: u32,
        input_queue: u16,
    },
    /// `ServerMsg::Snapshot`: `baseline_age` is the wire field, `baseline_tick`
    /// the tick it names (`null` for a full snapshot).
    Snapshot {
        ack_input: u32,
        tick: u32,
        baseline_age: u32,
        baseline_tick: Option<u32>,
        removed: Vec<u32>,
        spawned: Vec<EntityJson>,
        changed: Vec<ChangeJson>,
        corrected: Vec<CorrectionJson>,
        checksum: u32,
    },
    /// `ServerMsg::Pong`.
    Pong {
        client_time_us: String,
        server_tick: u32,
    },
    /// `ServerMsg::Error`; `code_name` is informative.
    Error {
        code: u16,
        code_name: String,
        message: String,
    },
}

fn code_name(c: ErrorCode) -> String {
    match c {
        ErrorCode::Other(_) => "Other".into(),
        known => format!("{known:?}"),
    }
}

impl From<&ServerMsg> for ServerJson {
    fn from(m: &ServerMsg) -> Self {
        match m {
            ServerMsg::Welcome(w) => ServerJson::Welcome {
                player_id: w.player_id.0,
                tick: w.tick.0,
                tick_rate: w.tick_rate,
                speed_per_tick: w.movement.speed_per_tick,
                world_max_x: w.movement.world_max.x,
                world_max_y: w.movement.world_max.y,
                fixed_scale: w.fixed_scale,
                view_radius: w.view_radius,
                resume_token: hex(&w.resume_token.0),
                resumed: w.resumed,
                last_input_seq: w.last_input_seq.0,
                idle_timeout_ms: w.limits.idle_timeout_ms,
                rate_limit: w.limits.rate_limit,
                rate_burst: w.limits.rate_burst,
                resume_grace_ms: w.limits.resume_grace_ms,
                input_queue: w.limits.input_queue,
            },
            ServerMsg::Snapshot(s) => {
                let b = &s.body;
                ServerJson::Snapshot {
                    ack_input: s.ack_input.0,
                    tick: b.tick.0,
                    baseline_age: b.baseline_age(),
                    baseline_tick: b.baseline.map(|t| t.0),
                    removed: b.removed.iter().map(|id| id.0).collect(),
                    spawned: b.spawned.iter().map(EntityJson::from).collect(),
                    changed: b
                        .changed
                        .iter()
                        .map(|c| ChangeJson {
                            id: c.id.0,
                            dvx: c.delta.x,
                            dvy: c.delta.y,
                        })
                        .collect(),
                    corrected: b
                        .corrected
                        .iter()
                        .map(|c| CorrectionJson {
                            id: c.id.0,
                            rx: c.delta.x,
                            ry: c.delta.y,
                        })
                        .collect(),
                    checksum: b.checksum.0,
                }
            }
            ServerMsg::Pong {
                client_time_us,
                server_tick,
            } => ServerJson::Pong {
                client_time_us: client_time_us.to_string(),
                server_tick: server_tick.0,
            },
            ServerMsg::Error(e) => ServerJson::Error {
                code: e.code.to_u16(),
                code_name: code_name(e.code),
                message: e.message.clone(),
            },
        }
    }
}

impl From<&ServerJson> for ServerMsg {
    fn from(j: &ServerJson) -> Self {
        match j {
            ServerJson::Welcome {
                player_id,
                tick,
                tick_rate,
                speed_per_tick,
                world_max_x,
                world_max_y,
                fixed_scale,
                view_radius,
                resume_token,
                resumed,
                last_input_seq,
                idle_timeout_ms,
                rate_limit,
                rate_burst,
                resume_grace_ms,
                input_queue,
            } => ServerMsg::Welcome(Welcome {
                player_id: PlayerId(*player_id),
                tick: Tick(*tick),
                tick_rate: *tick_rate,
                movement: MoveConfig {
                    speed_per_tick: *speed_per_tick,
                    world_max: IVec2::new(*world_max_x, *world_max_y),
                },
                fixed_scale: *fixed_scale,
                view_radius: *view_radius,
                resume_token: token_from_hex(resume_token),
                resumed: *resumed,
                last_input_seq: InputSeq(*last_input_seq),
                limits: SessionLimits {
                    idle_timeout_ms: *idle_timeout_ms,
                    rate_limit: *rate_limit,
                    rate_burst: *rate_burst,
                    resume_grace_ms: *resume_grace_ms,
                    input_queue: *input_queue,
                },
            }),
            ServerJson::Snapshot {
                ack_input,
                tick,
                baseline_age,
                baseline_tick,
                removed,
                spawned,
                changed,
                corrected,
                checksum,
            } => {
                assert_eq!(
                    baseline_tick.map_or(0, |b| tick - b),
                    *baseline_age,
                    "baseline_tick and baseline_age disagree"
                );
                ServerMsg::Snapshot(Snapshot {
                    ack_input: InputSeq(*ack_input),
                    body: SnapshotBody {
                        tick: Tick(*tick),
                        baseline: baseline_tick.map(Tick),
                        removed: removed.iter().map(|id| PlayerId(*id)).collect(),
                        spawned: spawned.iter().map(EntityState::from).collect(),
                        changed: changed
                            .iter()
                            .map(|c| EntityDelta {
                                id: PlayerId(c.id),
                                delta: IVec2::new(c.dvx, c.dvy),
                            })
                            .collect(),
                        corrected: corrected
                            .iter()
                            .map(|c| EntityDelta {
                                id: PlayerId(c.id),
                                delta: IVec2::new(c.rx, c.ry),
                            })
                            .collect(),
                        checksum: Checksum(*checksum),
                    },
                })
            }
            ServerJson::Pong {
                client_time_us,
                server_tick,
            } => ServerMsg::Pong {
                client_time_us: client_time_us.parse().expect("u64 decimal string"),
                server_tick: Tick(*server_tick),
            },
            ServerJson::Error {
                code,
                code_name: name,
                message,
            } => {
                let code = ErrorCode::from_u16(*code);
                assert_eq!(*name, code_name(code), "code_name disagrees with code");
                ServerMsg::Error(ErrorMsg {
                    code,
                    message: message.clone(),
                })
            }
        }
    }
}

/// One encodable message and its bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgCase<M> {
    pub name: String,
    pub description: String,
    pub message: M,
    /// The bytes to decode. Encoding `message` yields them too, unless
    /// `canonical_hex` is present (a valid but non-shortest encoding).
    pub hex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical_hex: Option<String>,
}

/// A vector file of messages of one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MsgFile<M> {
    pub about: String,
    pub protocol_version: u16,
    pub cases: Vec<MsgCase<M>>,
}

/// Bytes that must not decode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidCase {
    pub name: String,
    pub description: String,
    /// `"client_to_server"` (decode as a client message, 1024-byte limit) or
    /// `"server_to_client"` (server message, 16 MiB limit).
    pub direction: String,
    pub hex: String,
    /// The error kind: `TooLarge`, `Truncated`, `TrailingBytes`, `UnknownTag`,
    /// `LimitExceeded` or `Invalid`.
    pub error: String,
}

/// The invalid-message vector file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidFile {
    pub about: String,
    pub cases: Vec<InvalidCase>,
}
