//! The golden vector generator: every case as a Rust value, turned into the JSON
//! files of `protocol/tests/vectors/` with the bytes this crate's codec produces.
//! The cases are chosen to hit every message, every optional field and every varint
//! width; the snapshots form one sequence a client can apply in order.

use glam::IVec2;
use ticksync_protocol::checksum::{entity_hash, fmix32};
use ticksync_protocol::movement::velocity;
use ticksync_protocol::*;

use super::json::*;

const REGEN: &str = "Regenerate with `TICKSYNC_BLESS=1 cargo test -p ticksync-protocol --test golden`; \
     the normative text is docs/PROTOCOL.md.";

fn case<M>(name: &str, description: &str, message: M, bytes: &[u8]) -> MsgCase<M> {
    MsgCase {
        name: name.into(),
        description: description.into(),
        message,
        hex: hex(bytes),
        canonical_hex: None,
    }
}

fn client(name: &str, description: &str, msg: ClientMsg) -> MsgCase<ClientJson> {
    case(
        name,
        description,
        (&msg).into(),
        &codec::encode_client(&msg),
    )
}

fn server(name: &str, description: &str, msg: ServerMsg) -> MsgCase<ServerJson> {
    case(
        name,
        description,
        (&msg).into(),
        &codec::encode_server(&msg),
    )
}

fn dirs(d: &[(i8, i8)]) -> Vec<MoveDir> {
    d.iter().map(|&(x, y)| MoveDir::new(x, y)).collect()
}

/// The client-to-server vectors.
pub fn client_file() -> MsgFile<ClientJson> {
    let token = ResumeToken(core::array::from_fn(|i| 0xa0 + i as u8));
    let mut cases = vec![
        client(
            "hello_minimal",
            "Hello with only the version: all three options absent (0x00 each).",
            ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                ..Hello::default()
            }),
        ),
        client(
            "hello_name",
            "Hello with a name: Option tag 0x01, then a String (varint byte length, UTF-8).",
            ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                name: Some("Ada".into()),
                ..Hello::default()
            }),
        ),
        client(
            "hello_utf8_name",
            "A name's length counts UTF-8 bytes, not characters: 'Zoë 🚀' is 6 characters, 9 bytes.",
            ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                name: Some("Zoë 🚀".into()),
                ..Hello::default()
            }),
        ),
        client(
            "hello_all_fields",
            "Hello with name, a 300-byte auth token (length 300 = 0xFB 0x2C 0x01) and a resume \
             token (16 raw bytes, no length prefix).",
            ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                name: Some("bot-17".into()),
                auth_token: Some("0123456789abcdefghijklmnopqrst".repeat(10)),
                resume_token: Some(token),
            }),
        ),
        client(
            "hello_resume_only",
            "Resuming a session without a name or auth token.",
            ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                resume_token: Some(token),
                ..Hello::default()
            }),
        ),
        client(
            "input_first",
            "A session's first input: no snapshot held yet (ack_tick absent), seq 1, moving right \
             at full length.",
            ClientMsg::Input(Input {
                ack_tick: None,
                first_seq: InputSeq(1),
                dirs: dirs(&[(127, 0)]),
            }),
        ),
        client(
            "input_batch_of_8",
            "Eight inputs, seqs 300..=307 (first_seq 300 = 0xFB 0x2C 0x01), ack_tick 250 (one \
             byte, the largest single-byte varint). dirs are raw i8 bytes: -128 is 0x80, -1 0xff.",
            ClientMsg::Input(Input {
                ack_tick: Some(Tick(250)),
                first_seq: InputSeq(300),
                dirs: dirs(&[
                    (-128, -128),
                    (0, 0),
                    (-1, 1),
                    (90, -90),
                    (127, 127),
                    (-127, 0),
                    (0, -127),
                    (3, -3),
                ]),
            }),
        ),
        client(
            "input_large_numbers",
            "ack_tick 70000 needs 0xFC + u32; first_seq 65535 is the largest 0xFB value.",
            ClientMsg::Input(Input {
                ack_tick: Some(Tick(70_000)),
                first_seq: InputSeq(65_535),
                dirs: dirs(&[(10, 20), (-30, 40)]),
            }),
        ),
        client(
            "ping_zero",
            "Ping with client_time_us 0.",
            ClientMsg::Ping { client_time_us: 0 },
        ),
        client(
            "ping_u16",
            "client_time_us 1000 = 0xFB 0xE8 0x03.",
            ClientMsg::Ping {
                client_time_us: 1000,
            },
        ),
        client(
            "ping_u64",
            "A Unix time in microseconds needs 0xFD + u64 (it is above 2^32).",
            ClientMsg::Ping {
                client_time_us: 1_700_000_000_123_456,
            },
        ),
        client("resync", "Resync has no fields.", ClientMsg::Resync),
    ];
    let mut lenient = client(
        "ping_non_shortest_varint",
        "Decoders accept a varint longer than necessary (here 5 as 0xFB 0x05 0x00) as long as its \
         marker is not wider than the field; encoders always write the shortest form.",
        ClientMsg::Ping { client_time_us: 5 },
    );
    lenient.canonical_hex = Some(std::mem::replace(&mut lenient.hex, "02fb0500".into()));
    cases.push(lenient);
    MsgFile {
        about: format!("Ticksync protocol v1 golden vectors: client-to-server messages. {REGEN}"),
        protocol_version: PROTOCOL_VERSION,
        cases,
    }
}

fn e(id: u32, x: i32, y: i32) -> EntityState {
    EntityState {
        id: PlayerId(id),
        pos: FixedPos::new(x, y),
    }
}

fn snap(ack: u32, body: SnapshotBody) -> ServerMsg {
    ServerMsg::Snapshot(Snapshot {
        ack_input: InputSeq(ack),
        body,
    })
}

/// The views of the snapshot sequence: ticks 100, 101, 102 and 105.
pub fn story_views() -> [(Tick, Vec<EntityState>); 4] {
    let t100 = vec![
        e(1, 0, 0),
        e(2, 16_000, 16_000),
        e(42, 8000, 8000),
        e(300, 120, 7),
    ];
    let t101 = vec![
        e(1, 53, 0),
        e(42, 7963, 7963),
        e(300, -80, 1007),
        e(70_000, 4_000_000, 16_000),
    ];
    let mut t105 = t101.clone();
    t105[1] = e(42, 7963, 8122);
    [
        (Tick(100), t100),
        (Tick(101), t101.clone()),
        (Tick(102), t101),
        (Tick(105), t105),
    ]
}

/// The server-to-client vectors.
pub fn server_file() -> MsgFile<ServerJson> {
    let [(t100, v100), (t101, v101), (t102, v102), (t105, v105)] = story_views();
    let cases = vec![
        server(
            "welcome_default",
            "Welcome for a new session with the default server settings (30 Hz, speed 100 \
             units/s -> speed_per_tick 53, a 1000x1000-unit world -> world_max 16000, every \
             player visible). Signed fields are zigzag: 53 -> 106, 16000 -> 32000 = 0xFB 0x00 0x7D.",
            ServerMsg::Welcome(Welcome {
                player_id: PlayerId(42),
                tick: Tick(100),
                tick_rate: 30,
                movement: MoveConfig::from_units(100.0, 30, 1000.0),
                fixed_scale: FIXED_SCALE as u16,
                view_radius: 0,
                resume_token: ResumeToken(core::array::from_fn(|i| i as u8)),
                resumed: false,
                last_input_seq: InputSeq(0),
            }),
        ),
        server(
            "welcome_resumed_large",
            "Welcome after a resume, with values that need 0xFB and 0xFC varints (player 70000, \
             tick 123456, a 2^28 world, view radius 4800 grid steps).",
            ServerMsg::Welcome(Welcome {
                player_id: PlayerId(70_000),
                tick: Tick(123_456),
                tick_rate: 60,
                movement: MoveConfig {
                    speed_per_tick: 27,
                    world_max: IVec2::new(1 << 28, 1 << 20),
                },
                fixed_scale: FIXED_SCALE as u16,
                view_radius: 4800,
                resume_token: ResumeToken([0xff; 16]),
                resumed: true,
                last_input_seq: InputSeq(300),
            }),
        ),
        server(
            "snapshot_full_empty",
            "A full snapshot (baseline_age 0) of an empty view: checksum 0.",
            snap(0, snapshot::full(Tick(0), &[])),
        ),
        server(
            "snapshot_full",
            "Full snapshot at tick 100. Ids are gaps: 1, 1, 40, 258 (0xFB 0x02 0x01). Start of a \
             sequence: apply this, then snapshot_delta, snapshot_delta_empty, \
             snapshot_delta_age_3. The numbers in the sequence exercise the encodings (0xFB and \
             0xFC varints, negative values) rather than follow the movement rule; decoding and \
             applying do not check either.",
            snap(0, snapshot::full(t100, &v100)),
        ),
        server(
            "snapshot_delta",
            "Delta at tick 101 against tick 100 (baseline_age 1): entity 2 removed, 70000 spawned \
             (gap 70000 = 0xFC, x 4000000 zigzags to 8000000 = 0xFC), 1/42/300 moved with \
             negative and 0xFB-sized offsets. ack_input 1.",
            snap(1, snapshot::delta(t101, t100, &v100, &v101)),
        ),
        server(
            "snapshot_delta_empty",
            "Delta at tick 102 against 101 where nothing moved: three empty lists and the \
             unchanged checksum. The server processed two inputs this tick (ack_input 3).",
            snap(3, snapshot::delta(t102, t101, &v101, &v102)),
        ),
        server(
            "snapshot_delta_age_3",
            "Delta at tick 105 against tick 102 (baseline_age 3: ticks 103 and 104 were skipped \
             for this client); entity 42 moved 159 = 3 x 53 down.",
            snap(6, snapshot::delta(t105, t102, &v102, &v105)),
        ),
        server(
            "snapshot_full_after_resume",
            "Full snapshot after a resume or Resync, with a large tick and ack_input.",
            snap(
                300,
                snapshot::full(
                    Tick(123_457),
                    &[e(7, 1, 2), e(70_000, 268_435_456, 1 << 20)],
                ),
            ),
        ),
        server(
            "pong_small",
            "Pong echoing client_time_us 1000 at server tick 101.",
            ServerMsg::Pong {
                client_time_us: 1000,
                server_tick: Tick(101),
            },
        ),
        server(
            "pong_large",
            "Pong with a u64 timestamp (0xFD) and a u32 tick (0xFC).",
            ServerMsg::Pong {
                client_time_us: 1_700_000_000_123_456,
                server_tick: Tick(4_000_000_000),
            },
        ),
        server(
            "error_version_mismatch",
            "Error code 1 (VersionMismatch) naming both versions; the server then closes with 1008.",
            ServerMsg::Error(ErrorMsg {
                code: ErrorCode::VersionMismatch,
                message: "client version 2, server version 1".into(),
            }),
        ),
        server(
            "error_server_full_utf8",
            "Error code 6 (ServerFull); the text's length is in UTF-8 bytes.",
            ServerMsg::Error(ErrorMsg {
                code: ErrorCode::ServerFull,
                message: "serveur plein — réessayez".into(),
            }),
        ),
        server(
            "error_unknown_code",
            "An error code this version does not define (999 = 0xFB 0xE7 0x03) with an empty \
             text: clients treat unknown codes as generic errors.",
            ServerMsg::Error(ErrorMsg {
                code: ErrorCode::Other(999),
                message: String::new(),
            }),
        ),
    ];
    MsgFile {
        about: format!("Ticksync protocol v1 golden vectors: server-to-client messages. {REGEN}"),
        protocol_version: PROTOCOL_VERSION,
        cases,
    }
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
        about: format!("Ticksync protocol v1 golden vectors: the movement rule `step`. {REGEN}"),
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
        entities: entities.iter().map(EntityJson::from).collect(),
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
            "Ticksync protocol v1 golden vectors: fmix32, the entity hash and view checksums \
             (wrapping u32 sums of entity hashes). {REGEN}"
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
