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
use std::time::Duration;

mod common;

use bytes::BytesMut;
use common::Rng;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ticksync_protocol::{
    EntityState, FIXED_SCALE, Input, InputSeq, MoveConfig, MoveDir, PlayerId, ResumeToken,
    SnapshotBody, Tick, codec, snapshot,
};
use ticksync_server::sim::interest::carve;
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

/// 256 consecutive ticks of a 2,000-player world (10 MB), replayed in a loop so
/// a bench can run for as long as it likes on realistic motion. Forward only:
/// with wire v2 a tick replayed backwards lists every entity (it moves against
/// its velocity); the wrap from the last tick to the first does, once in 256.
fn recorded_ticks() -> Vec<Vec<EntityState>> {
    let mut w = Walkers::new(CLIENTS);
    for _ in 0..30 {
        w.tick();
    }
    (0..256)
        .map(|_| {
            w.tick();
            w.world.view().to_vec()
        })
        .collect()
}

fn frame_of(k: u64, len: usize) -> usize {
    (k % len as u64) as usize
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
    for (name, cell) in [
        ("cell_r", RADIUS),
        ("cell_r_half", RADIUS / 2),
        ("cell_r_quarter", RADIUS / 4),
        ("cell_r_eighth", RADIUS / 8),
    ] {
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

/// The per-client cost of exact circles (R = 100, 2,000 clients): the tick's
/// path ([`Views`]) next to `reference`, the same work done by the public pieces
/// one after the other as the exact-circle encoder did before issue #15 item 3
/// (cells of R, a delta that hashes every entity of the view for the checksum,
/// header and body written into a buffer, then copied into the frame arena).
/// `query` and `query_delta` are the tick path's first steps alone (cells of
/// R/4, the checksum summed by the query), for the breakdown. Every variant
/// walks the same recorded ticks with every client's held view.
///
/// Measured in CPU time of the bench thread ([`ThreadCpu`]), not wall time: on
/// the shared 2-core box other engineers' builds take most of the wall clock.
fn exact_circles(c: &mut Criterion<ThreadCpu>) {
    let ticks = recorded_ticks();
    let max = MoveConfig::from_units(100.0, 30, 1000.0).world_max;
    let mut g = c.benchmark_group("exact_circles_2000_clients");
    g.throughput(Throughput::Elements(u64::from(CLIENTS)));

    let mut views = Views::new(RADIUS, 0, max, 32);
    let mut held: Vec<HeldView> = (0..CLIENTS).map(|_| HeldView::default()).collect();
    let mut tick = 0u32;
    g.bench_function("views", |b| {
        b.iter(|| {
            tick += 1;
            let view = &ticks[frame_of(u64::from(tick), ticks.len())];
            views.begin_tick(Tick(tick), view);
            for (e, h) in view.iter().zip(&mut held) {
                black_box(views.frame(e.pos, h, false, InputSeq(tick)));
                views.commit(h);
            }
        })
    });

    for step in [Step::Query, Step::QueryDelta, Step::Reference] {
        let mut grid = match step {
            Step::Reference => Grid::new(RADIUS, max),
            _ => Grid::for_views(RADIUS, max),
        };
        let mut held: Vec<HeldView> = (0..CLIENTS).map(|_| HeldView::default()).collect();
        let (mut out, mut body, mut buf) = (Vec::new(), SnapshotBody::default(), Vec::new());
        let mut arena = BytesMut::new();
        let mut tick = 0u32;
        g.bench_function(step.name(), |b| {
            b.iter(|| {
                tick += 1;
                let t = Tick(tick);
                let view = &ticks[frame_of(u64::from(tick), ticks.len())];
                grid.rebuild(view);
                for (e, h) in view.iter().zip(&mut held) {
                    let sum = grid.view_into(e.pos, &mut out);
                    match (step, h.tick) {
                        (Step::Query, _) => {}
                        (_, None) => snapshot::full_into(t, &out, &mut body),
                        (Step::QueryDelta, Some(base)) => {
                            snapshot::delta_lists_into(t, base, &h.entities, &out, max, &mut body);
                            body.checksum = sum;
                        }
                        (Step::Reference, Some(base)) => {
                            snapshot::delta_into(t, base, &h.entities, &out, max, &mut body)
                        }
                    }
                    if step == Step::Reference {
                        buf.clear();
                        codec::encode_snapshot_header(InputSeq(tick), &mut buf);
                        codec::encode_snapshot_body(&body, &mut buf);
                        black_box(carve(&mut arena, &buf));
                    }
                    black_box(&body);
                    std::mem::swap(&mut out, &mut h.entities);
                    h.tick = Some(t);
                }
            })
        });
    }
    g.finish();
}

#[derive(Clone, Copy, PartialEq)]
enum Step {
    Query,
    QueryDelta,
    Reference,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Query => "query",
            Step::QueryDelta => "query_delta",
            Step::Reference => "reference",
        }
    }
}

/// Criterion measurement in CPU time of the calling thread
/// (`CLOCK_THREAD_CPUTIME_ID`): time the scheduler gave other processes is not
/// counted, so a run on a loaded machine still compares the variants (their
/// caches are still shared with whatever else runs).
struct ThreadCpu;

impl Measurement for ThreadCpu {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }
    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        static WALL: WallTime = WallTime;
        WALL.formatter()
    }
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

criterion_group!(benches, world_step, grid, snapshots);
criterion_group! {
    name = cpu_benches;
    config = Criterion::default().with_measurement(ThreadCpu);
    targets = exact_circles
}
criterion_main!(benches, cpu_benches);
