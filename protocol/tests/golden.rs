//! Golden vector tests: the files in `protocol/tests/vectors/` are the wire format's
//! reference data for every client implementation (docs/PROTOCOL.md links them).
//!
//! Each test reads a file and checks this crate against it: encoding each message
//! gives exactly its bytes and decoding the bytes gives back the message, the step
//! traces and checksums reproduce, and every invalid byte string fails with its
//! stated error kind. A further test checks that the files are what the generator in
//! `tests/support/` produces, so they cannot silently drift from it.
//!
//! To regenerate the files after adding cases, run
//!
//! ```text
//! TICKSYNC_BLESS=1 cargo test -p ticksync-protocol --test golden
//! ```
//!
//! and review the diff. A changed byte in an existing vector is a wire format change,
//! which needs a new protocol version (docs/PROTOCOL.md, "Versioning").

mod support;

use std::collections::BTreeSet;
use std::fs;
use std::sync::Once;

use serde::de::DeserializeOwned;
use ticksync_protocol::checksum::{entity_hash, fmix32};
use ticksync_protocol::movement::velocity;
use ticksync_protocol::*;

use support::json::*;
use support::numeric::*;

static BLESS: Once = Once::new();

/// Reads a vector file, after rewriting all of them first if `TICKSYNC_BLESS=1`.
fn load<T: DeserializeOwned>(name: &str) -> T {
    BLESS.call_once(|| {
        if std::env::var("TICKSYNC_BLESS").as_deref() == Ok("1") {
            fs::create_dir_all(support::vectors_dir()).expect("create vectors dir");
            for (file, text) in support::generated_files() {
                fs::write(support::vectors_dir().join(file), text).expect("write vector file");
            }
        }
    });
    let path = support::vectors_dir().join(name);
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn vector_files_match_the_generator() {
    for (name, text) in support::generated_files() {
        let on_disk: serde_json::Value = load(name);
        let generated: serde_json::Value = serde_json::from_str(&text).expect("generated JSON");
        assert!(
            on_disk == generated,
            "{name} differs from the generator: run TICKSYNC_BLESS=1 cargo test -p \
             ticksync-protocol --test golden and review the diff"
        );
    }
}

#[test]
fn client_vectors_encode_and_decode_exactly() {
    let file: MsgFile<ClientJson> = load("client_messages.json");
    let mut types = BTreeSet::new();
    for case in &file.cases {
        let msg = ClientMsg::from(&case.message);
        let bytes = unhex(&case.hex);
        assert_eq!(
            codec::decode_client(&bytes),
            Ok(msg.clone()),
            "{}",
            case.name
        );
        let canonical = case.canonical_hex.as_ref().unwrap_or(&case.hex);
        assert_eq!(
            &hex(&codec::encode_client(&msg)),
            canonical,
            "{}",
            case.name
        );
        assert_eq!(ClientJson::from(&msg), case.message, "{}", case.name);
        types.insert(format!("{:?}", std::mem::discriminant(&msg)));
    }
    assert_eq!(types.len(), 4, "every ClientMsg variant has a vector");
}

#[test]
fn server_vectors_encode_and_decode_exactly() {
    let file: MsgFile<ServerJson> = load("server_messages.json");
    let mut types = BTreeSet::new();
    for case in &file.cases {
        let msg = ServerMsg::from(&case.message);
        let bytes = unhex(&case.hex);
        assert_eq!(
            codec::decode_server(&bytes),
            Ok(msg.clone()),
            "{}",
            case.name
        );
        assert_eq!(hex(&codec::encode_server(&msg)), case.hex, "{}", case.name);
        assert_eq!(ServerJson::from(&msg), case.message, "{}", case.name);
        if let ServerMsg::Snapshot(s) = &msg {
            // Header and shared body concatenate to the whole message.
            let mut split = Vec::new();
            codec::encode_snapshot_header(s.ack_input, &mut split);
            codec::encode_snapshot_body(&s.body, &mut split);
            assert_eq!(split, bytes, "{}", case.name);
            // The hand-written body writer and the bincode one agree.
            let mut reference = Vec::new();
            codec::encode_snapshot_header(s.ack_input, &mut reference);
            codec::encode_snapshot_body_bincode(&s.body, &mut reference);
            assert_eq!(reference, bytes, "{}", case.name);
        }
        types.insert(format!("{:?}", std::mem::discriminant(&msg)));
    }
    assert_eq!(types.len(), 4, "every ServerMsg variant has a vector");
}

#[test]
fn snapshot_vectors_apply_in_sequence_with_matching_checksums() {
    let file: MsgFile<ServerJson> = load("server_messages.json");
    let body = |name: &str| {
        let case = file.cases.iter().find(|c| c.name == name).expect(name);
        match codec::decode_server(&unhex(&case.hex)) {
            Ok(ServerMsg::Snapshot(s)) => s.body,
            other => panic!("{name}: {other:?}"),
        }
    };
    let mut world = ClientWorld::new(support::cases::STORY_WORLD_MAX);
    for (name, (tick, view)) in [
        "snapshot_full",
        "snapshot_delta",
        "snapshot_delta_empty",
        "snapshot_delta_age_3",
    ]
    .into_iter()
    .zip(support::cases::story_views())
    {
        let applied = world.apply(&body(name)).expect(name);
        assert_eq!(applied.tick, tick);
        assert_eq!(world.to_sorted_vec(), view, "{name}");
    }
    for name in ["snapshot_full_empty", "snapshot_full_after_resume"] {
        let mut world = ClientWorld::new(support::cases::STORY_WORLD_MAX);
        world.apply(&body(name)).expect(name);
    }
}

#[test]
fn trace_applies_tick_by_tick() {
    let file: support::trace::TraceFile = load("snapshot_trace.json");
    let cfg = MoveConfig::from(file.config);
    let mut world = ClientWorld::new(cfg.world_max);
    let (mut full, mut deltas, mut ages) = (0, 0, BTreeSet::new());
    let mut listed = BTreeSet::new();
    for t in &file.ticks {
        let Some(case) = &t.snapshot else {
            continue;
        };
        let msg = ServerMsg::from(&case.message);
        assert_eq!(
            codec::decode_server(&unhex(&case.hex)),
            Ok(msg.clone()),
            "{}",
            t.tick
        );
        assert_eq!(hex(&codec::encode_server(&msg)), case.hex, "{}", t.tick);
        let ServerMsg::Snapshot(s) = msg else {
            panic!("tick {}: not a snapshot", t.tick)
        };
        let applied = world
            .apply(&s.body)
            .unwrap_or_else(|e| panic!("tick {}: {e}", t.tick));
        let expected: Vec<EntityState> = t.entities.iter().map(EntityState::from).collect();
        assert_eq!(world.to_sorted_vec(), expected, "tick {}", t.tick);
        assert_eq!(world.checksum(), Checksum(t.checksum), "tick {}", t.tick);
        assert_eq!(snapshot::view_checksum(&expected), Checksum(t.checksum));
        if applied.full {
            full += 1;
        } else {
            deltas += 1;
            ages.insert(s.body.baseline_age());
        }
        listed.extend(
            ["removed", "spawned", "changed", "corrected"]
                .into_iter()
                .zip([
                    applied.removed,
                    applied.spawned,
                    applied.changed,
                    applied.corrected,
                ])
                .filter(|(_, n)| *n > 0)
                .map(|(list, _)| list),
        );
    }
    // The trace covers what it claims to: several full snapshots, deltas of age 1
    // and 3, and every list in use.
    assert!(full >= 2 && deltas >= 8, "{full} full, {deltas} deltas");
    assert_eq!(ages, BTreeSet::from([1, 3]));
    assert_eq!(listed.len(), 4, "{listed:?}");
}

#[test]
fn invalid_vectors_fail_with_their_error_kind() {
    let file: InvalidFile = load("invalid_messages.json");
    for case in &file.cases {
        let bytes = unhex(&case.hex);
        let err = match case.direction.as_str() {
            "client_to_server" => codec::decode_client(&bytes).map(|_| ()),
            "server_to_client" => codec::decode_server(&bytes).map(|_| ()),
            other => panic!("{}: unknown direction {other}", case.name),
        }
        .expect_err(&case.name);
        assert_eq!(DecodeError::kind(&err), case.error, "{}: {err}", case.name);
        // The text goes to clients in `Error` messages: a sentence naming the
        // field (or the message) and the rule, not a Rust debug dump.
        let text = err.to_string();
        assert!(
            !text.contains(['{', '}']) && !text.contains("::") && text.len() < 160,
            "{}: {text}",
            case.name
        );
        let names_what = [
            "Hello", "Input", "Ping", "Resync", "Welcome", "Snapshot", "Pong",
        ]
        .iter()
        .chain(&["Error.", "tag", "message is at most"])
        .any(|n| text.contains(n));
        assert!(names_what, "{}: {text}", case.name);
    }
}

#[test]
fn step_traces_reproduce() {
    let file: StepFile = load("step_trace.json");
    for trace in &file.traces {
        let cfg = MoveConfig::from(trace.config);
        assert!(cfg.is_valid(), "{}", trace.name);
        let mut pos = FixedPos::new(trace.start.x, trace.start.y);
        for (i, s) in trace.steps.iter().enumerate() {
            let dir = MoveDir::new(s.dir[0], s.dir[1]);
            // The spec's arithmetic, written out independently of `velocity`.
            let (x, y) = (i32::from(dir.x).max(-127), i32::from(dir.y).max(-127));
            let m2 = x * x + y * y;
            let mag = if m2 > 16129 {
                (m2 as u32).isqrt() as i32
            } else {
                127
            };
            assert_eq!((m2, mag), (s.m2, s.mag), "{} step {i}", trace.name);
            let v = velocity(dir, &cfg);
            assert_eq!(
                (v.x, v.y),
                (s.velocity.x, s.velocity.y),
                "{} step {i}",
                trace.name
            );
            assert_eq!(v.x, x * cfg.speed_per_tick / mag);
            pos = step(pos, dir, &cfg);
            assert_eq!(
                pos,
                FixedPos::new(s.pos.x, s.pos.y),
                "{} step {i}",
                trace.name
            );
        }
    }
    for d in &file.config_derivation {
        let cfg = MoveConfig::from_units(d.speed_units_per_s, d.tick_rate, d.world_size_units);
        assert_eq!(
            (cfg.speed_per_tick, cfg.world_max.x),
            (d.speed_per_tick, d.world_max)
        );
    }
}

#[test]
fn checksum_vectors_reproduce() {
    let file: ChecksumFile = load("checksum.json");
    for f in &file.fmix32 {
        assert_eq!(fmix32(f.input), f.output, "fmix32({})", f.input);
    }
    for h in &file.entity_hash {
        let pos = FixedPos::new(h.x, h.y);
        assert_eq!(entity_hash(PlayerId(h.id), pos), h.hash, "{h:?}");
    }
    for set in &file.sets {
        let view: Vec<EntityState> = set.entities.iter().map(EntityState::from).collect();
        // Only positions count: velocities do not change the checksum.
        let moving: Vec<EntityState> = view
            .iter()
            .map(|e| EntityState::new(e.id, e.pos, glam::IVec2::new(7, -9)))
            .collect();
        assert_eq!(snapshot::view_checksum(&moving), Checksum(set.checksum));
        assert_eq!(
            snapshot::view_checksum(&view),
            Checksum(set.checksum),
            "{}",
            set.name
        );
    }
}

/// A few encodings worked out by hand from docs/PROTOCOL.md, independent of the
/// generator: if these fail, the spec or the codec is wrong.
#[test]
fn hand_checked_examples() {
    let hello = ClientMsg::Hello(Hello {
        version: 2,
        name: Some("Ada".into()),
        ..Hello::default()
    });
    // tag 0, version 2, Some, len 3, "Ada", None, None
    assert_eq!(hex(&codec::encode_client(&hello)), "000201034164610000");
    let input = ClientMsg::Input(Input {
        ack_tick: Some(Tick(250)),
        first_seq: InputSeq(300),
        dirs: vec![MoveDir::new(-128, -1), MoveDir::new(3, 0)],
    });
    // tag 1, Some 250, 300 = FB 2C 01, count 2, (80 ff), (03 00)
    assert_eq!(hex(&codec::encode_client(&input)), "0101fafb2c010280ff0300");
    let e = |id, x, y, vx, vy| {
        EntityState::new(PlayerId(id), FixedPos::new(x, y), glam::IVec2::new(vx, vy))
    };
    let max = glam::IVec2::splat(16_000);
    // 5 turns from (53, 0) to (53, -37); 300 walks on at (0, 53); 70000 arrives
    // moving left; 9 should be at 110 + 2 * 0 but is at 100 (corrected by -10).
    let base = [
        e(5, 100, 100, 53, 0),
        e(9, 110, 5, 0, 0),
        e(300, 0, 0, 0, 53),
    ];
    let cur = [
        e(5, 206, 26, 53, -37),
        e(9, 100, 5, 0, 0),
        e(300, 0, 106, 0, 53),
        e(70_000, 16_000, 1, -1, 0),
    ];
    let body = snapshot::delta(Tick(1000), Tick(998), &base, &cur, max);
    let msg = ServerMsg::Snapshot(Snapshot {
        ack_input: InputSeq(7),
        body,
    });
    let sum = snapshot::view_checksum(&cur).0.to_le_bytes();
    // tag 1, ack 7, tick 1000 = FB E8 03, age 2, removed 0,
    // spawned 1: gap 70000 = FC 70 11 01 00, x 16000 -> 32000 = FB 00 7D, y 1 -> 2,
    //   vx -1 -> 1, vy 0,
    // changed 1: gap 5, dvx 0, dvy -37 -> 73 = 49,
    // corrected 1: gap 9, rx -10 -> 19 = 13, ry 0; checksum LE.
    let expected = format!(
        "0107fbe8030200 01fc70110100fb007d020100 01050049 01091300{}",
        hex(&sum)
    );
    assert_eq!(hex(&codec::encode_server(&msg)), expected.replace(' ', ""));
}

/// `vectors/README.md` is how a port learns to read the files: it must name every
/// file and every key that occurs in them, so a new field cannot arrive
/// undocumented.
#[test]
fn the_vectors_readme_documents_every_file_and_key() {
    fn keys(v: &serde_json::Value, out: &mut BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    out.insert(k.clone());
                    keys(x, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| keys(x, out)),
            _ => {}
        }
    }
    let readme = fs::read_to_string(support::vectors_dir().join("README.md")).expect("README.md");
    let mut missing = Vec::new();
    for (file, text) in support::generated_files() {
        if !readme.contains(&format!("`{file}`")) {
            missing.push(file.to_string());
        }
        let mut found = BTreeSet::new();
        keys(&serde_json::from_str(&text).expect(file), &mut found);
        for k in found {
            // Documented as `key`, `key[]`, `parent.key`, `parent[].key[]`, or
            // inside a `{a, b}` object pattern.
            let documented = [
                format!("`{k}`"),
                format!(".{k}`"),
                format!("`{k}[]"),
                format!(".{k}[]"),
                format!("{{{k},"),
                format!(" {k},"),
                format!(" {k}}}"),
            ]
            .iter()
            .any(|p| readme.contains(p.as_str()));
            if !documented {
                missing.push(format!("{file}: {k}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in vectors/README.md: {missing:?}");
}
