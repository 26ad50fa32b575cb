//! Criterion benchmarks of the server's per-tick work at scale: the world step at
//! 100, 1,000 and 5,000 players; the interest grid (rebuild and view queries);
//! and the full per-tick snapshot build for 2,000 clients, with a view radius of
//! 100 units in a 1000×1000 world and without one.
//!
//! Players walk like the bots: a random direction held for about a second, one
//! change in eight standing still. Seeded, so every run measures the same worlds.
//! Targets are in BENCHMARKS.md.
//!
//! ```text
//! cargo bench --bench scale -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

mod common;

use common::Rng;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_protocol::{
    EntityState, FIXED_SCALE, Input, InputSeq, MoveConfig, MoveDir, PlayerId, ResumeToken, Tick,
};
use ticksync_server::sim::{Grid, HeldView, SimConfig, Views, World};

/// A world of `n` players walking like bots, one input per player per tick.
struct Walkers {
    world: World,
    inputs: Vec<(PlayerId, Input)>,
    rng: Rng,
}

impl Walkers {
    fn new(n: u32) -> Walkers {
        let mut world = World::new(SimConfig {
            movement: MoveConfig::from_units(100.0, 30, 1000.0),
            max_players: n as usize,
            input_queue: 16,
            max_inputs_per_tick: 2,
            resume_grace_ticks: 300,
        });
        let inputs = (0..n)
            .map(|i| {
                let mut token = [0u8; 16];
                token[..4].copy_from_slice(&i.to_le_bytes());
                let id = world.join(None, ResumeToken(token), None).expect("fits").id;
                let input = Input {
                    ack_tick: None,
                    first_seq: InputSeq(0),
                    dirs: vec![MoveDir::new(0, 0)],
                };
                (id, input)
            })
            .collect();
        Walkers {
            world,
            inputs,
            rng: Rng(u64::from(n)),
        }
    }

    /// Queues one input per player and advances one tick.
    fn tick(&mut self) {
        for (id, input) in &mut self.inputs {
            let r = self.rng.next();
            if r.is_multiple_of(30) {
                let axis = |v: u64| ((v % 255) as i32 - 127) as i8;
                input.dirs[0] = if r % 8 == 1 {
                    MoveDir::new(0, 0)
                } else {
                    MoveDir::new(axis(r >> 8), axis(r >> 24))
                };
            }
            input.first_seq = input.first_seq.next();
            self.world.queue_input(*id, input);
        }
        black_box(self.world.advance());
    }
}

fn world_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("world_step");
    for n in [100u32, 1_000, 5_000] {
        let mut w = Walkers::new(n);
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_function(BenchmarkId::from_parameter(n), |b| b.iter(|| w.tick()));
    }
    g.finish();
}

const CLIENTS: u32 = 2_000;
const RADIUS: u32 = 100 * FIXED_SCALE as u32;

/// 64 consecutive ticks of a 2,000-player world, replayed forth and back so a
/// bench can run for as long as it likes on realistic motion.
fn recorded_ticks() -> Vec<Vec<EntityState>> {
    let mut w = Walkers::new(CLIENTS);
    for _ in 0..30 {
        w.tick();
    }
    (0..64)
        .map(|_| {
            w.tick();
            w.world.view().to_vec()
        })
        .collect()
}

fn frame_of(k: u64, len: usize) -> usize {
    let k = (k % (2 * len as u64 - 2)) as usize;
    if k < len { k } else { 2 * len - 2 - k }
}

fn grid(c: &mut Criterion) {
    let ticks = recorded_ticks();
    let max = MoveConfig::from_units(100.0, 30, 1000.0).world_max;
    let mut g = c.benchmark_group("grid");
    g.throughput(Throughput::Elements(u64::from(CLIENTS)));
    let mut grid = Grid::new(RADIUS, max);
    let mut k = 0;
    g.bench_function("rebuild_2000", |b| {
        b.iter(|| {
            k += 1;
            grid.rebuild(&ticks[frame_of(k, ticks.len())]);
        })
    });
    for (name, cell) in [("cell_r", RADIUS), ("cell_r_half", RADIUS / 2)] {
        let mut grid = Grid::with_cell(RADIUS, cell, max);
        let view = &ticks[0];
        grid.rebuild(view);
        let mut out = Vec::new();
        g.bench_function(format!("views_2000_{name}"), |b| {
            b.iter(|| {
                let mut total = 0;
                for e in view {
                    grid.view_into(e.pos, &mut out);
                    total += out.len();
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

/// Everything `send_snapshots` does per tick except handing frames to sockets:
/// [`Views`] is the tick loop's snapshot builder.
fn snapshots(c: &mut Criterion) {
    let ticks = recorded_ticks();
    let max = MoveConfig::from_units(100.0, 30, 1000.0).world_max;
    let mut g = c.benchmark_group("tick_snapshots_2000_clients");
    g.throughput(Throughput::Elements(u64::from(CLIENTS)));
    let fixed = FIXED_SCALE as u32;
    for (name, radius, cell) in [
        ("r100_exact", RADIUS, 0),
        ("r100_cell50", RADIUS, 50 * fixed),
        ("r100_cell25", RADIUS, 25 * fixed),
        ("r0", 0, 0),
    ] {
        let mut views = Views::new(radius, cell, max, 32);
        let mut held: Vec<HeldView> = (0..CLIENTS).map(|_| HeldView::default()).collect();
        let mut tick = 0u32;
        let (mut bytes, mut frames) = (0usize, 0usize);
        let mut encoded = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                tick += 1;
                let view = &ticks[frame_of(u64::from(tick), ticks.len())];
                views.begin_tick(Tick(tick), view);
                let before = views.bodies_encoded();
                for (e, h) in view.iter().zip(&mut held) {
                    let (f, _) = views.frame(e.pos, h, false, InputSeq(tick));
                    views.commit(h);
                    bytes += f.len();
                    frames += 1;
                }
                encoded += views.bodies_encoded() - before;
            })
        });
        if frames > 0 {
            let per_tick = f64::from(CLIENTS) / frames as f64;
            eprintln!(
                "{name}: {:.0} bytes per frame, {:.0} bodies encoded per tick",
                bytes as f64 / frames as f64,
                encoded as f64 * per_tick
            );
        }
    }
    g.finish();
}

criterion_group!(benches, world_step, grid, snapshots);
criterion_main!(benches);
