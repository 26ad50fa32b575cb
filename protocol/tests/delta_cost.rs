//! The wire cost of movement: in the default scenario (speed 100 units/s at 30 Hz,
//! so `speed_per_tick` 53, in a 1000-unit world; each player's direction changes
//! about once a second and one change in eight is standing still, like the bots),
//! an entity that moved costs at most 4 bytes in a delta: a 1-byte id gap and two
//! 1-byte zigzag offsets (|offset| <= 53, zigzag <= 106 < 251).
//!
//! Deterministic: it counts bytes with a seeded generator, it does not time
//! anything. Run with `--nocapture` to see the figures (BENCHMARKS.md quotes them).

use glam::Vec2;
use ticksync_protocol::*;

/// SplitMix64: a tiny seeded generator, so the scenario is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability 1/n.
    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn dir(&mut self) -> MoveDir {
        if self.one_in(8) {
            MoveDir::ZERO
        } else {
            MoveDir::from_vec2(Vec2::from_angle(self.unit() * std::f32::consts::TAU))
        }
    }
}

struct Cost {
    /// Bytes of the changed-entity entries, summed over all deltas.
    changed_bytes: usize,
    /// Changed entities, summed over all deltas.
    changed: usize,
    /// Whole delta bodies, summed.
    body_bytes: usize,
    ticks: usize,
    full_bytes: usize,
}

fn body_len(body: &SnapshotBody) -> usize {
    let mut out = Vec::new();
    codec::encode_snapshot_body(body, &mut out);
    out.len()
}

/// Runs `ticks` ticks of `n` players and measures every tick's delta.
fn simulate(n: u32, ticks: u32, seed: u64) -> Cost {
    let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
    assert_eq!(cfg.speed_per_tick, 53);
    let mut rng = Rng(seed);
    let mut view: Vec<EntityState> = (1..=n)
        .map(|id| EntityState {
            id: PlayerId(id),
            pos: FixedPos::new(
                (rng.next() % (cfg.world_max.x as u64 + 1)) as i32,
                (rng.next() % (cfg.world_max.y as u64 + 1)) as i32,
            ),
        })
        .collect();
    let mut dirs: Vec<MoveDir> = (0..n).map(|_| rng.dir()).collect();
    let full_bytes = body_len(&snapshot::full(Tick(0), &view));
    let mut cost = Cost {
        changed_bytes: 0,
        changed: 0,
        body_bytes: 0,
        ticks: ticks as usize,
        full_bytes,
    };
    let mut body = SnapshotBody::default();
    for t in 1..=ticks {
        let base = view.clone();
        for (e, dir) in view.iter_mut().zip(&mut dirs) {
            if rng.one_in(30) {
                *dir = rng.dir();
            }
            e.pos = step(e.pos, *dir, &cfg);
        }
        snapshot::delta_into(Tick(t), Tick(t - 1), &base, &view, &mut body);
        let len = body_len(&body);
        let changed = std::mem::take(&mut body.changed);
        cost.changed_bytes += len - body_len(&body);
        cost.changed += changed.len();
        cost.body_bytes += len;
    }
    cost
}

#[test]
fn a_moving_entity_costs_at_most_4_bytes_per_delta() {
    let cost = simulate(1000, 150, 0x5eed);
    let per_entity = cost.changed_bytes as f64 / cost.changed as f64;
    let moving = cost.changed as f64 / cost.ticks as f64;
    eprintln!(
        "default scenario, 1000 players, {} ticks: {moving:.0} moving per tick, \
         {per_entity:.3} bytes per moving entity, {:.0} bytes per delta body, \
         full snapshot {} bytes ({:.2} per entity)",
        cost.ticks,
        cost.body_bytes as f64 / cost.ticks as f64,
        cost.full_bytes,
        cost.full_bytes as f64 / 1000.0,
    );
    // Most players move (7 in 8 directions are not "stand still"), so the figure
    // is an average over hundreds of entries per delta, not a handful.
    assert!(moving > 700.0, "{moving} moving per tick");
    // 3 bytes is the floor: a gap byte and two offset bytes.
    assert!((3.0..=4.0).contains(&per_entity), "{per_entity} bytes");
}
