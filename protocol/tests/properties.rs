//! Property tests: the codec round-trips every message within the documented
//! limits and never panics on any bytes; a delta always rebuilds the current view
//! exactly with a matching checksum; `step` stays inside the world; and prediction
//! matches the server whenever the server applies every input.
//!
//! Case counts are kept modest (256) so the whole suite runs in about a second.

use std::collections::BTreeMap;

use glam::IVec2;
use proptest::prelude::*;
use ticksync_protocol::movement::{MAX_SPEED_PER_TICK, MAX_WORLD_FIXED};
use ticksync_protocol::*;

fn config() -> ProptestConfig {
    ProptestConfig::with_cases(256)
}

fn arb_dir() -> impl Strategy<Value = MoveDir> {
    any::<(i8, i8)>().prop_map(|(x, y)| MoveDir::new(x, y))
}

fn arb_token() -> impl Strategy<Value = ResumeToken> {
    any::<[u8; 16]>().prop_map(ResumeToken)
}

/// Up to 8 characters of at most 4 bytes each: within the 32-byte name limit.
fn arb_name() -> impl Strategy<Value = String> {
    "\\PC{0,8}"
}

fn arb_client_msg() -> impl Strategy<Value = ClientMsg> {
    let hello = (
        any::<u16>(),
        proptest::option::of(arb_name()),
        proptest::option::of("[ -~]{0,512}"),
        proptest::option::of(arb_token()),
    )
        .prop_map(|(version, name, auth_token, resume_token)| {
            ClientMsg::Hello(Hello {
                version,
                name,
                auth_token,
                resume_token,
            })
        });
    let input = (
        proptest::option::of(any::<u32>()),
        any::<u32>(),
        proptest::collection::vec(arb_dir(), 1..=MAX_INPUTS_PER_MSG),
    )
        .prop_map(|(ack, first, dirs)| {
            ClientMsg::Input(Input {
                ack_tick: ack.map(Tick),
                first_seq: InputSeq(first),
                dirs,
            })
        });
    prop_oneof![
        hello,
        input,
        any::<u64>().prop_map(|t| ClientMsg::Ping { client_time_us: t }),
        Just(ClientMsg::Resync),
    ]
}

/// Coordinates: mostly small, sometimes anywhere in the largest valid world.
fn arb_coord() -> impl Strategy<Value = i32> {
    prop_oneof![0..300i32, 0..=MAX_WORLD_FIXED]
}

fn arb_pos() -> impl Strategy<Value = FixedPos> {
    (arb_coord(), arb_coord()).prop_map(|(x, y)| FixedPos::new(x, y))
}

/// Velocities: mostly what `velocity` gives (up to two steps of 53), sometimes
/// anything a fast world allows.
fn arb_vel() -> impl Strategy<Value = IVec2> {
    let v = prop_oneof![4 => -106..=106i32, 1 => -MAX_SPEED_PER_TICK..=MAX_SPEED_PER_TICK];
    (v.clone(), v).prop_map(|(x, y)| IVec2::new(x, y))
}

/// A view: sorted unique ids (a few small, some anywhere in `u32`) with positions
/// and velocities.
fn arb_view(max_len: usize) -> impl Strategy<Value = Vec<EntityState>> {
    let id = prop_oneof![3 => 1..80u32, 1 => 1..=u32::MAX];
    proptest::collection::btree_map(id, (arb_pos(), arb_vel()), 0..max_len).prop_map(|m| {
        m.into_iter()
            .map(|(id, (pos, vel))| EntityState::new(PlayerId(id), pos, vel))
            .collect()
    })
}

/// What happens to a baseline entity by the current tick.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Removed,
    /// Moved as its velocity says.
    Steady,
    /// Changed velocity at the start of the interval.
    Turned(IVec2),
    /// Off its extrapolated position (a late or doubled input, a turn in between).
    Jittered(IVec2),
    /// Both.
    TurnedAndJittered(IVec2, IVec2),
}

fn arb_fate() -> impl Strategy<Value = Fate> {
    let off = (-120..=120i32, -120..=120i32).prop_map(|(x, y)| IVec2::new(x, y));
    prop_oneof![
        1 => Just(Fate::Removed),
        2 => Just(Fate::Steady),
        1 => arb_vel().prop_map(Fate::Turned),
        1 => off.clone().prop_map(Fate::Jittered),
        1 => (arb_vel(), off).prop_map(|(v, o)| Fate::TurnedAndJittered(v, o)),
    ]
}

/// A world, a baseline view, the number of ticks to the current one, and the
/// current view: unrelated, or made from the baseline by removing, moving,
/// turning and jittering entities and spawning new ones.
fn arb_base_and_cur() -> impl Strategy<Value = (IVec2, Vec<EntityState>, u32, Vec<EntityState>)> {
    let max = prop_oneof![
        Just(IVec2::splat(16_000)),
        Just(IVec2::splat(MAX_WORLD_FIXED))
    ];
    let evolved = (max.clone(), arb_view(40), 1..5u32)
        .prop_flat_map(|(max, base, ticks)| {
            let fates = proptest::collection::vec(arb_fate(), base.len());
            (Just(max), Just(base), Just(ticks), fates, arb_view(6))
        })
        .prop_map(|(max, base, ticks, fates, spawns)| {
            let mut cur = BTreeMap::new();
            for (e, fate) in base.iter().zip(fates) {
                let (vel, off) = match fate {
                    Fate::Removed => continue,
                    Fate::Steady => (e.vel, IVec2::ZERO),
                    Fate::Turned(v) => (v, IVec2::ZERO),
                    Fate::Jittered(o) => (e.vel, o),
                    Fate::TurnedAndJittered(v, o) => (v, o),
                };
                let at = motion::extrapolate(e.pos, vel, ticks, max);
                let pos = FixedPos((at.0 + off).clamp(IVec2::ZERO, max));
                cur.insert(e.id, EntityState::new(e.id, pos, vel));
            }
            for e in spawns {
                cur.entry(e.id).or_insert(e);
            }
            (max, base, ticks, cur.into_values().collect())
        });
    let unrelated = (max, arb_view(40), 1..5u32, arb_view(40));
    prop_oneof![unrelated, evolved]
}

fn arb_config() -> impl Strategy<Value = MoveConfig> {
    (
        0..=MAX_SPEED_PER_TICK,
        0..=MAX_WORLD_FIXED,
        0..=MAX_WORLD_FIXED,
    )
        .prop_map(|(speed, x, y)| MoveConfig {
            speed_per_tick: speed,
            world_max: IVec2::new(x, y),
        })
}

fn arb_body() -> impl Strategy<Value = SnapshotBody> {
    let full =
        (any::<u32>(), arb_view(12), any::<u32>()).prop_map(|(tick, view, sum)| SnapshotBody {
            checksum: Checksum(sum),
            ..snapshot::full(Tick(tick), &view)
        });
    let delta = (
        1..=u32::MAX,
        any::<u32>(),
        arb_view(12),
        arb_view(12),
        any::<u32>(),
    )
        .prop_map(|(tick, age, base, cur, sum)| {
            // baseline_age in 1..=tick: the baseline is in 0..tick.
            let baseline = Tick(tick - (age % tick + 1));
            let max = IVec2::splat(MAX_WORLD_FIXED);
            SnapshotBody {
                checksum: Checksum(sum),
                ..snapshot::delta(Tick(tick), baseline, &base, &cur, max)
            }
        });
    prop_oneof![full, delta]
}

fn arb_server_msg() -> impl Strategy<Value = ServerMsg> {
    let welcome = (
        (any::<u32>(), any::<u32>(), any::<u16>(), arb_config()),
        (
            any::<u16>(),
            any::<u32>(),
            arb_token(),
            any::<bool>(),
            any::<u32>(),
        ),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
        ),
    )
        .prop_map(
            |(
                (player, tick, rate, movement),
                (scale, radius, token, resumed, last),
                (idle, rate_limit, burst, grace, queue),
            )| {
                ServerMsg::Welcome(Welcome {
                    player_id: PlayerId(player),
                    tick: Tick(tick),
                    tick_rate: rate,
                    movement,
                    fixed_scale: scale,
                    view_radius: radius,
                    resume_token: token,
                    resumed,
                    last_input_seq: InputSeq(last),
                    limits: SessionLimits {
                        idle_timeout_ms: idle,
                        rate_limit,
                        rate_burst: burst,
                        resume_grace_ms: grace,
                        input_queue: queue,
                    },
                })
            },
        );
    let snapshot = (any::<u32>(), arb_body()).prop_map(|(ack, body)| {
        ServerMsg::Snapshot(Snapshot {
            ack_input: InputSeq(ack),
            body,
        })
    });
    let pong = (any::<u64>(), any::<u32>()).prop_map(|(t, tick)| ServerMsg::Pong {
        client_time_us: t,
        server_tick: Tick(tick),
    });
    let error = (any::<u16>(), "\\PC{0,256}").prop_map(|(code, message)| {
        ServerMsg::Error(ErrorMsg {
            code: ErrorCode::from_u16(code),
            message,
        })
    });
    prop_oneof![welcome, snapshot, pong, error]
}

/// Decoding either direction must return, never panic; whatever decodes must
/// re-encode to bytes that decode to the same message.
fn decode_is_total(bytes: &[u8]) {
    if let Ok(m) = codec::decode_client(bytes) {
        assert_eq!(codec::decode_client(&codec::encode_client(&m)), Ok(m));
    }
    if let Ok(m) = codec::decode_server(bytes) {
        assert_eq!(codec::decode_server(&codec::encode_server(&m)), Ok(m));
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Remove(usize),
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Set(i, b) if n > 0 => bytes[i % n] = b,
            Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Remove(i) if n > 0 => {
                bytes.remove(i % n);
            }
            _ => {}
        }
    }
    bytes
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn client_messages_round_trip(msg in arb_client_msg()) {
        let bytes = codec::encode_client(&msg);
        prop_assert!(bytes.len() <= MAX_CLIENT_MSG_LEN);
        prop_assert_eq!(codec::decode_client(&bytes), Ok(msg));
    }

    #[test]
    fn server_messages_round_trip(msg in arb_server_msg()) {
        let bytes = codec::encode_server(&msg);
        prop_assert_eq!(codec::decode_server(&bytes), Ok(msg));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        tag in 0u8..6,
        rest in proptest::collection::vec(any::<u8>(), 0..48),
    ) {
        decode_is_total(&rest);
        let mut bytes = vec![tag];
        bytes.extend_from_slice(&rest);
        decode_is_total(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(
        client in arb_client_msg(),
        server in arb_server_msg(),
        mutations in proptest::collection::vec(arb_mutation(), 1..4),
    ) {
        decode_is_total(&mutate(codec::encode_client(&client), &mutations));
        decode_is_total(&mutate(codec::encode_server(&server), &mutations));
    }

    #[test]
    fn hand_written_body_writer_matches_bincode(body in arb_body()) {
        let (mut fast, mut reference) = (Vec::new(), Vec::new());
        codec::encode_snapshot_body(&body, &mut fast);
        codec::encode_snapshot_body_bincode(&body, &mut reference);
        prop_assert_eq!(fast, reference);
    }

    #[test]
    fn delta_rebuilds_the_current_view((max, base, ticks, cur) in arb_base_and_cur()) {
        let mut world = ClientWorld::new(max);
        world.apply(&snapshot::full(Tick(7), &base)).expect("full snapshot applies");
        let delta = snapshot::delta(Tick(7 + ticks), Tick(7), &base, &cur, max);
        // Through the wire, as a client sees it.
        let bytes = codec::encode_server(&ServerMsg::Snapshot(Snapshot {
            ack_input: InputSeq(0),
            body: delta.clone(),
        }));
        let Ok(ServerMsg::Snapshot(decoded)) = codec::decode_server(&bytes) else {
            panic!("a delta must decode");
        };
        prop_assert_eq!(&decoded.body, &delta);
        let applied = world.apply(&decoded.body).expect("delta applies");
        prop_assert_eq!(applied.tick, Tick(7 + ticks));
        // Positions and velocities, exactly.
        prop_assert_eq!(world.to_sorted_vec(), cur.clone());
        prop_assert_eq!(world.checksum(), snapshot::view_checksum(&cur));
        // Entities that moved as their velocity says cost nothing.
        let steady = cur
            .iter()
            .filter(|c| {
                base.iter().any(|b| {
                    b.id == c.id
                        && b.vel == c.vel
                        && motion::extrapolate(b.pos, b.vel, ticks, max) == c.pos
                })
            })
            .count();
        let listed: std::collections::BTreeSet<_> =
            delta.changed.iter().chain(&delta.corrected).map(|d| d.id).collect();
        prop_assert_eq!(listed.len() + delta.spawned.len() + steady, cur.len());
    }

    #[test]
    fn step_stays_in_the_world(
        cfg in arb_config(),
        fx in 0.0..=1.0f64,
        fy in 0.0..=1.0f64,
        dirs in proptest::collection::vec(arb_dir(), 1..16),
    ) {
        let mut pos = FixedPos::new(
            (f64::from(cfg.world_max.x) * fx) as i32,
            (f64::from(cfg.world_max.y) * fy) as i32,
        );
        for dir in dirs {
            let next = step(pos, dir, &cfg);
            prop_assert!((0..=cfg.world_max.x).contains(&next.0.x), "{next:?} {cfg:?}");
            prop_assert!((0..=cfg.world_max.y).contains(&next.0.y), "{next:?} {cfg:?}");
            // Never faster than speed_per_tick per axis.
            prop_assert!((next.0 - pos.0).abs().max_element() <= cfg.speed_per_tick);
            pos = next;
        }
    }

    #[test]
    fn prediction_matches_the_server_when_every_input_is_applied(
        dirs in proptest::collection::vec(arb_dir(), 1..40),
        acks in proptest::collection::vec(any::<bool>(), 40),
        start in (0..=16_000i32, 0..=16_000i32),
    ) {
        let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
        let start = FixedPos::new(start.0, start.1);
        let mut predictor = Predictor::new(cfg, start, InputSeq(0));
        let mut server = Vec::new();
        let mut pos = start;
        for (i, dir) in dirs.iter().enumerate() {
            let (seq, predicted) = predictor.push(*dir);
            pos = step(pos, *dir, &cfg);
            server.push((seq, pos));
            prop_assert_eq!(predicted, pos);
            // The server acknowledges some earlier input, lagging behind.
            if acks[i] {
                let (ack, at) = server[i / 2];
                prop_assert_eq!(predictor.reconcile(ack, at), Reconciliation::Confirmed);
            }
        }
        let (last, at) = *server.last().expect("at least one input");
        prop_assert_eq!(predictor.reconcile(last, at), Reconciliation::Confirmed);
        prop_assert_eq!(predictor.position(), pos);
        prop_assert_eq!(predictor.mispredictions(), 0);
    }

    #[test]
    fn prediction_converges_when_the_server_drops_inputs(
        dirs in proptest::collection::vec((arb_dir(), any::<bool>()), 1..40),
    ) {
        let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
        let start = FixedPos::new(8000, 8000);
        let mut predictor = Predictor::new(cfg, start, InputSeq(0));
        let mut server = start;
        let mut last = InputSeq(0);
        for (dir, dropped) in &dirs {
            (last, _) = predictor.push(*dir);
            if !dropped {
                server = step(server, *dir, &cfg);
            }
        }
        predictor.reconcile(last, server);
        prop_assert_eq!(predictor.position(), server);
        prop_assert_eq!(predictor.unacknowledged().len(), 0);
    }
}
