//! Criterion benchmarks of the protocol's per-tick hot paths at 100, 1,000 and
//! 5,000 entities: encoding and decoding full and delta snapshots, building a delta
//! (`snapshot::delta_into`) and applying one on a client (`ClientWorld::apply`),
//! and the hand-written body writer against the bincode one it replaced.
//!
//! The worlds follow the default scenario (speed_per_tick 53 in a 16000-step
//! world, seven players in eight walking). Two deltas: `delta` is a typical tick
//! (each player turns about once a second, so ~1 in 30 is listed), `delta_turn`
//! the worst case (every player turns at once, so every mover is listed). Seeded,
//! so every run measures the same bytes. Targets (BENCHMARKS.md): delta encode of
//! 1,000 moving entities <= 20 µs, decode <= 30 µs (both for the worst case).
//!
//! ```text
//! cargo bench --bench codec -- --warm-up-time 1 --measurement-time 2
//! ```

use std::hint::black_box;

mod common;

use common::Rng;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use glam::{IVec2, Vec2};
use ticksync_protocol::movement::velocity;
use ticksync_protocol::{
    ClientWorld, EntityState, FixedPos, InputSeq, MoveConfig, MoveDir, PlayerId, ServerMsg,
    Snapshot, SnapshotBody, Tick, codec, snapshot, step,
};

const SIZES: [u32; 3] = [100, 1_000, 5_000];

/// One tick of a world of `n` players: the view before and after (a typical tick
/// and one where everyone turns), and the snapshots a server would send for it.
struct Scene {
    base: Vec<EntityState>,
    cur: Vec<EntityState>,
    full: ServerMsg,
    delta: ServerMsg,
    turn: ServerMsg,
    full_bytes: Vec<u8>,
    delta_bytes: Vec<u8>,
    turn_bytes: Vec<u8>,
}

fn random_dir(rng: &mut Rng) -> MoveDir {
    let r = rng.next();
    if r.is_multiple_of(8) {
        MoveDir::ZERO
    } else {
        let angle = (r >> 40) as f32 / (1u64 << 24) as f32 * std::f32::consts::TAU;
        MoveDir::from_vec2(Vec2::from_angle(angle))
    }
}

fn scene(n: u32) -> Scene {
    let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
    let mut rng = Rng(u64::from(n));
    let coord = |rng: &mut Rng| (rng.next() % 16_001) as i32;
    let dirs: Vec<MoveDir> = (0..n).map(|_| random_dir(&mut rng)).collect();
    let base: Vec<EntityState> = (1..=n)
        .zip(&dirs)
        .map(|(id, d)| {
            let pos = FixedPos::new(coord(&mut rng), coord(&mut rng));
            EntityState::new(PlayerId(id), pos, velocity(*d, &cfg))
        })
        .collect();
    let walk = |e: &EntityState, dir: MoveDir| {
        EntityState::new(e.id, step(e.pos, dir, &cfg), velocity(dir, &cfg))
    };
    let cur: Vec<EntityState> = base
        .iter()
        .zip(&dirs)
        .map(|(e, d)| {
            let dir = if rng.next().is_multiple_of(30) {
                random_dir(&mut rng)
            } else {
                *d
            };
            walk(e, dir)
        })
        .collect();
    let turned: Vec<EntityState> = base.iter().map(|e| walk(e, random_dir(&mut rng))).collect();
    let msg = |body| {
        ServerMsg::Snapshot(Snapshot {
            ack_input: InputSeq(1234),
            body,
        })
    };
    let max = cfg.world_max;
    let full = msg(snapshot::full(Tick(1001), &cur));
    let delta = msg(snapshot::delta(Tick(1001), Tick(1000), &base, &cur, max));
    let turn = msg(snapshot::delta(Tick(1001), Tick(1000), &base, &turned, max));
    Scene {
        full_bytes: codec::encode_server(&full),
        delta_bytes: codec::encode_server(&delta),
        turn_bytes: codec::encode_server(&turn),
        base,
        cur,
        full,
        delta,
        turn,
    }
}

impl Scene {
    /// The `"full"`, `"delta"` or `"delta_turn"` message and its bytes.
    fn pick(&self, kind: &str) -> (&ServerMsg, &[u8]) {
        match kind {
            "full" => (&self.full, &self.full_bytes),
            "delta" => (&self.delta, &self.delta_bytes),
            _ => (&self.turn, &self.turn_bytes),
        }
    }
}

fn body(msg: &ServerMsg) -> &SnapshotBody {
    match msg {
        ServerMsg::Snapshot(s) => &s.body,
        _ => unreachable!("scenes hold snapshots"),
    }
}

fn codec_benches(c: &mut Criterion) {
    let scenes: Vec<(u32, Scene)> = SIZES.iter().map(|&n| (n, scene(n))).collect();
    for (n, s) in &scenes {
        let moved = s
            .base
            .iter()
            .zip(&s.cur)
            .filter(|(b, c)| b.pos != c.pos)
            .count();
        eprintln!(
            "{n} entities: full snapshot {} bytes, delta {} bytes ({moved} moved, {} listed), \
             everyone turning {} bytes ({} listed)",
            s.full_bytes.len(),
            s.delta_bytes.len(),
            body(&s.delta).changed.len(),
            s.turn_bytes.len(),
            body(&s.turn).changed.len(),
        );
    }
    for kind in ["full", "delta", "delta_turn"] {
        let mut g = c.benchmark_group(format!("encode_{kind}"));
        for (n, s) in &scenes {
            let (msg, _) = s.pick(kind);
            g.throughput(Throughput::Elements(u64::from(*n)));
            let mut out = Vec::new();
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| {
                    out.clear();
                    codec::encode_server_into(black_box(msg), &mut out);
                    black_box(out.len())
                })
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("decode_{kind}"));
        for (n, s) in &scenes {
            let (_, bytes) = s.pick(kind);
            g.throughput(Throughput::Elements(u64::from(*n)));
            g.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| codec::decode_server(black_box(bytes)))
            });
        }
        g.finish();
    }

    // The body writer: hand-written against bincode's, same bytes.
    for (kind, pick) in [("full", 0), ("delta_turn", 1)] {
        let mut g = c.benchmark_group(format!("body_writer_{kind}"));
        for (n, s) in &scenes {
            let b = body(if pick == 0 { &s.full } else { &s.turn });
            g.throughput(Throughput::Elements(u64::from(*n)));
            let mut out = Vec::new();
            g.bench_function(BenchmarkId::new("hand_written", n), |bch| {
                bch.iter(|| {
                    out.clear();
                    codec::encode_snapshot_body(black_box(b), &mut out);
                    black_box(out.len())
                })
            });
            g.bench_function(BenchmarkId::new("bincode", n), |bch| {
                bch.iter(|| {
                    out.clear();
                    codec::encode_snapshot_body_bincode(black_box(b), &mut out);
                    black_box(out.len())
                })
            });
        }
        g.finish();
    }

    let mut g = c.benchmark_group("delta_build");
    let max = IVec2::splat(16_000);
    for (n, s) in &scenes {
        g.throughput(Throughput::Elements(u64::from(*n)));
        let mut out = SnapshotBody::default();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                snapshot::delta_into(Tick(1001), Tick(1000), &s.base, &s.cur, max, &mut out);
                black_box(out.changed.len())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("client_world_apply_delta");
    for (n, s) in &scenes {
        g.throughput(Throughput::Elements(u64::from(*n)));
        let mut holding_base = ClientWorld::new(max);
        holding_base
            .apply(&snapshot::full(Tick(1000), &s.base))
            .expect("full snapshot applies");
        let delta = body(&s.delta);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter_batched_ref(
                || holding_base.clone(),
                |world| world.apply(black_box(delta)).expect("delta applies"),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let mut g = c.benchmark_group("client_world_apply_full");
    for (n, s) in &scenes {
        g.throughput(Throughput::Elements(u64::from(*n)));
        let full = body(&s.full);
        let mut world = ClientWorld::new(max);
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| world.apply(black_box(full)).expect("full applies"))
        });
    }
    g.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
