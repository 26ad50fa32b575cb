//! Criterion benchmarks of the protocol's per-tick hot paths at 100, 1,000 and
//! 5,000 entities: encoding and decoding full and delta snapshots, building a delta
//! (`snapshot::delta_into`) and applying one on a client (`ClientWorld::apply`).
//!
//! The worlds follow the default scenario (speed_per_tick 53 in a 16000-step world,
//! seven players in eight moving each tick), seeded so every run measures the same
//! bytes. Targets (BENCHMARKS.md): delta encode of 1,000 moving entities <= 20 µs,
//! decode <= 30 µs.
//!
//! ```text
//! cargo bench --bench codec -- --warm-up-time 1 --measurement-time 2
//! ```

use std::hint::black_box;

mod common;

use common::Rng;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use glam::Vec2;
use ticksync_protocol::{
    ClientWorld, EntityState, FixedPos, InputSeq, MoveConfig, MoveDir, PlayerId, ServerMsg,
    Snapshot, SnapshotBody, Tick, codec, snapshot, step,
};

const SIZES: [u32; 3] = [100, 1_000, 5_000];

/// One tick of a world of `n` players: the view before and after, and the
/// snapshots a server would send for it.
struct Scene {
    base: Vec<EntityState>,
    cur: Vec<EntityState>,
    full: ServerMsg,
    delta: ServerMsg,
    full_bytes: Vec<u8>,
    delta_bytes: Vec<u8>,
}

fn scene(n: u32) -> Scene {
    let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
    let mut rng = Rng(u64::from(n));
    let mut coord = || (rng.next() % 16_001) as i32;
    let base: Vec<EntityState> = (1..=n)
        .map(|id| EntityState {
            id: PlayerId(id),
            pos: FixedPos::new(coord(), coord()),
        })
        .collect();
    let cur: Vec<EntityState> = base
        .iter()
        .map(|e| {
            let r = rng.next();
            let dir = if r.is_multiple_of(8) {
                MoveDir::ZERO
            } else {
                let angle = (r >> 40) as f32 / (1u64 << 24) as f32 * std::f32::consts::TAU;
                MoveDir::from_vec2(Vec2::from_angle(angle))
            };
            EntityState {
                id: e.id,
                pos: step(e.pos, dir, &cfg),
            }
        })
        .collect();
    let msg = |body| {
        ServerMsg::Snapshot(Snapshot {
            ack_input: InputSeq(1234),
            body,
        })
    };
    let full = msg(snapshot::full(Tick(1001), &cur));
    let delta = msg(snapshot::delta(Tick(1001), Tick(1000), &base, &cur));
    Scene {
        full_bytes: codec::encode_server(&full),
        delta_bytes: codec::encode_server(&delta),
        base,
        cur,
        full,
        delta,
    }
}

impl Scene {
    /// The `"full"` or `"delta"` message and its bytes.
    fn pick(&self, kind: &str) -> (&ServerMsg, &[u8]) {
        match kind {
            "full" => (&self.full, &self.full_bytes),
            _ => (&self.delta, &self.delta_bytes),
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
        eprintln!(
            "{n} entities: full snapshot {} bytes, delta {} bytes ({} moved)",
            s.full_bytes.len(),
            s.delta_bytes.len(),
            body(&s.delta).changed.len()
        );
    }
    for kind in ["full", "delta"] {
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

    let mut g = c.benchmark_group("delta_build");
    for (n, s) in &scenes {
        g.throughput(Throughput::Elements(u64::from(*n)));
        let mut out = SnapshotBody::default();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                snapshot::delta_into(Tick(1001), Tick(1000), &s.base, &s.cur, &mut out);
                black_box(out.changed.len())
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("client_world_apply_delta");
    for (n, s) in &scenes {
        g.throughput(Throughput::Elements(u64::from(*n)));
        let mut holding_base = ClientWorld::new();
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
        let mut world = ClientWorld::new();
        g.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| world.apply(black_box(full)).expect("full applies"))
        });
    }
    g.finish();
}

criterion_group!(benches, codec_benches);
criterion_main!(benches);
