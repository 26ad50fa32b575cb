//! The message vectors' generator: every case as a Rust value, turned into JSON
//! with the bytes this crate's codec produces. The cases are chosen to hit every
//! message, every optional field and every varint width; the snapshots form one
//! sequence a client can apply in order.

use glam::IVec2;
use ticksync_protocol::*;

use super::json::*;

pub const REGEN: &str = "Regenerate with `TICKSYNC_BLESS=1 cargo test -p ticksync-protocol --test golden`; \
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
        about: format!("Ticksync protocol v2 golden vectors: client-to-server messages. {REGEN}"),
        protocol_version: PROTOCOL_VERSION,
        cases,
    }
}

fn e(id: u32, (x, y): (i32, i32), (vx, vy): (i32, i32)) -> EntityState {
    EntityState::new(PlayerId(id), FixedPos::new(x, y), IVec2::new(vx, vy))
}

fn snap(ack: u32, body: SnapshotBody) -> ServerMsg {
    ServerMsg::Snapshot(Snapshot {
        ack_input: InputSeq(ack),
        body,
    })
}

/// The world of the snapshot sequence: `welcome_resumed_large`'s, so that the
/// sequence can use positions that need 0xFC varints.
pub const STORY_WORLD_MAX: IVec2 = IVec2::new(1 << 28, 1 << 20);

/// The limits of a default server at 30 Hz.
pub fn default_limits() -> SessionLimits {
    SessionLimits {
        idle_timeout_ms: 15_000,
        rate_limit: 68,
        rate_burst: 68,
        resume_grace_ms: 10_000,
        input_queue: 16,
    }
}

/// The views of the snapshot sequence: ticks 100, 101, 102 and 105.
pub fn story_views() -> [(Tick, Vec<EntityState>); 4] {
    let t100 = vec![
        e(1, (0, 0), (53, 0)),
        e(2, (16_000, 16_000), (0, 0)),
        e(42, (8000, 8000), (0, -37)),
        e(300, (120, 7), (0, 0)),
    ];
    // 1 walks on; 2 leaves; 42 turns; 300 starts moving and its x, which would
    // be -80, is clamped to 0 and corrected; 70000 arrives moving.
    let t101 = vec![
        e(1, (53, 0), (53, 0)),
        e(42, (7963, 7963), (-37, -37)),
        e(300, (80, 1007), (-200, 1000)),
        e(70_000, (4_000_000, 16_000), (-1, 300)),
    ];
    // Everyone moves as their velocity says (300 stays at the wall x = 0).
    let t102 = vec![
        e(1, (106, 0), (53, 0)),
        e(42, (7926, 7926), (-37, -37)),
        e(300, (0, 2007), (-200, 1000)),
        e(70_000, (3_999_999, 16_300), (-1, 300)),
    ];
    // Three ticks later: 42 moved one more tick and stopped (a velocity change
    // and a correction); 70000 went 159 further down than its velocity says.
    let t105 = vec![
        e(1, (265, 0), (53, 0)),
        e(42, (7889, 7889), (0, 0)),
        e(300, (0, 5007), (-200, 1000)),
        e(70_000, (3_999_996, 17_359), (-1, 300)),
    ];
    [
        (Tick(100), t100),
        (Tick(101), t101),
        (Tick(102), t102),
        (Tick(105), t105),
    ]
}

/// The server-to-client vectors.
pub fn server_file() -> MsgFile<ServerJson> {
    let [(t100, v100), (t101, v101), (t102, v102), (t105, v105)] = story_views();
    let delta = |tick, base_tick, base: &[EntityState], cur: &[EntityState]| {
        snapshot::delta(tick, base_tick, base, cur, STORY_WORLD_MAX)
    };
    let cases = vec![
        server(
            "welcome_default",
            "Welcome for a new session with the default server settings (30 Hz, speed 100 \
             units/s -> speed_per_tick 53, a 1000x1000-unit world -> world_max 16000, every \
             player visible) and its 30 Hz limits (idle 15 s = 0xFB 0x98 0x3A, 68 messages/s, \
             a burst of 68, resume grace 10 s, 16 queued directions). Signed fields are zigzag: \
             53 -> 106, 16000 -> 32000 = 0xFB 0x00 0x7D.",
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
                limits: default_limits(),
            }),
        ),
        server(
            "welcome_resumed_large",
            "Welcome after a resume, with values that need 0xFB and 0xFC varints (player 70000, \
             tick 123456, a 2^28 world, view radius 4800 grid steps, a 2-minute idle timeout, \
             250 messages/s (0xFA, the largest one-byte varint) with a burst of 500, a \
             one-hour resume grace).",
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
                limits: SessionLimits {
                    idle_timeout_ms: 120_000,
                    rate_limit: 250,
                    rate_burst: 500,
                    resume_grace_ms: 3_600_000,
                    input_queue: 64,
                },
            }),
        ),
        server(
            "snapshot_full_empty",
            "A full snapshot (baseline_age 0) of an empty view: checksum 0.",
            snap(0, snapshot::full(Tick(0), &[])),
        ),
        server(
            "snapshot_full",
            "Full snapshot at tick 100: every entity with its position and velocity. Ids are \
             gaps: 1, 1, 40, 258 (0xFB 0x02 0x01). Start of a sequence in welcome_resumed_large's \
             world (world_max 2^28 x 2^20): apply this, then snapshot_delta, \
             snapshot_delta_empty, snapshot_delta_age_3. The numbers exercise the encodings \
             (0xFB and 0xFC varints, negative values, clamping) rather than follow the movement \
             rule; decoding and applying do not check it.",
            snap(0, snapshot::full(t100, &v100)),
        ),
        server(
            "snapshot_delta",
            "Delta at tick 101 against tick 100 (baseline_age 1). Entity 1 walks on at its \
             velocity (53, 0) and is not listed. 2 is removed. 70000 is spawned (gap 70000 = 0xFC, \
             x 4000000 zigzags to 8000000 = 0xFC) with velocity (-1, 300). 42 turns: changed by \
             (-37, 0) to velocity (-37, -37). 300 starts moving: changed by (-200, 1000) (0xFB \
             varints); its extrapolated x, 120 - 200 = -80, is clamped to 0, and corrected by \
             (80, 0) to its position (80, 1007). ack_input 1.",
            snap(1, delta(t101, t100, &v100, &v101)),
        ),
        server(
            "snapshot_delta_empty",
            "Delta at tick 102 against 101 where every entity moved as its velocity says: \
             four empty lists, and the checksum of the advanced positions (300 stays at the \
             wall x = 0). The server processed two inputs this tick (ack_input 3).",
            snap(3, delta(t102, t101, &v101, &v102)),
        ),
        server(
            "snapshot_delta_age_3",
            "Delta at tick 105 against tick 102 (baseline_age 3: ticks 103 and 104 were skipped \
             for this client). Unlisted entities advance 3 ticks: 1 by (159, 0), 300 by (-600, \
             3000), clamped at x = 0. 42 stopped after one more tick: changed by (37, 37) to \
             velocity 0, so it would stay at (7926, 7926), and corrected by (-37, -37). 70000 \
             keeps its velocity but is corrected by (0, 159).",
            snap(6, delta(t105, t102, &v102, &v105)),
        ),
        server(
            "snapshot_full_after_resume",
            "Full snapshot after a resume or Resync, with a large tick and ack_input.",
            snap(
                300,
                snapshot::full(
                    Tick(123_457),
                    &[
                        e(7, (1, 2), (0, 0)),
                        e(70_000, (268_435_456, 1 << 20), (-53, 37)),
                    ],
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
                message: ErrorMsg::version_mismatch_text(1),
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
        about: format!("Ticksync protocol v2 golden vectors: server-to-client messages. {REGEN}"),
        protocol_version: PROTOCOL_VERSION,
        cases,
    }
}
