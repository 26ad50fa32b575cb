//! Tests of the interest grid and the per-client view snapshots.

use super::*;
use crate::sim::{SimConfig, World};
use ticksync_protocol::{
    ClientWorld, Input, MoveConfig, MoveDir, PlayerId, ResumeToken, ServerMsg, snapshot,
};

/// A small deterministic generator (xorshift), so failures replay exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 32) as u32
    }

    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next()) * u64::from(n)) >> 32) as u32
    }
}

/// An entity standing at grid position (x, y) (shared with the cell-view tests).
pub(crate) fn e(id: u32, x: i32, y: i32) -> EntityState {
    EntityState::at(PlayerId(id), FixedPos::new(x, y))
}

/// The definition: every entity within `r` of `c`, sorted by id (shared with the
/// cell-view tests).
pub(crate) fn brute(all: &[EntityState], c: FixedPos, r: u32) -> Vec<EntityState> {
    let r2 = i64::from(r).pow(2);
    all.iter()
        .filter(|e| {
            let d = (e.pos.0 - c.0).as_i64vec2();
            d.x * d.x + d.y * d.y <= r2
        })
        .copied()
        .collect()
}

fn random_world(rng: &mut Rng, n: u32, max: i32) -> Vec<EntityState> {
    (1..=n)
        .map(|id| {
            e(
                id * 3,
                rng.below(max as u32 + 1) as i32,
                rng.below(max as u32 + 1) as i32,
            )
        })
        .collect()
}

#[test]
fn views_are_exactly_the_entities_within_the_radius() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let max = 16_000;
    let all = random_world(&mut rng, 2_000, max);
    // Cells smaller than the radius: the query clips each row of cells to the
    // circle's width there.
    for (radius, cell) in [
        (1_600, 1_600),
        (1_600, 800),
        (1_600, 400),
        (1_600, 230),
        (1_600, 3_000),
        (700, 700),
    ] {
        let mut grid = Grid::with_cell(radius, cell, IVec2::splat(max));
        grid.rebuild(&all);
        let mut out = Vec::new();
        for _ in 0..200 {
            let c = FixedPos::new(
                rng.below(max as u32 + 1) as i32,
                rng.below(max as u32 + 1) as i32,
            );
            let sum = grid.view_into(c, &mut out);
            assert_eq!(out, brute(&all, c, radius), "radius {radius} cell {cell}");
            assert_eq!(sum, snapshot::view_checksum(&out), "the view's checksum");
        }
    }
}

#[test]
fn boundaries_are_inclusive_and_corners_work() {
    let all = [
        e(1, 0, 0),
        e(2, 100, 0),
        e(3, 101, 0),
        e(4, 60, 80),
        e(5, 61, 80),
    ];
    let mut grid = Grid::new(100, IVec2::splat(1_000));
    grid.rebuild(&all);
    let mut out = Vec::new();
    grid.view_into(FixedPos::new(0, 0), &mut out);
    let ids: Vec<u32> = out.iter().map(|e| e.id.0).collect();
    assert_eq!(ids, [1, 2, 4]); // 60²+80² = 100² is inside, 61²+80² is not
}

#[test]
fn cells_stay_sorted_by_id_and_rebuilds_replace_contents() {
    let mut grid = Grid::new(10, IVec2::splat(99));
    assert_eq!(grid.cells(), 100);
    grid.rebuild(&[e(1, 5, 5), e(2, 95, 95), e(3, 6, 6), e(7, 1, 1)]);
    assert_eq!(
        grid.cell(0, 0).collect::<Vec<_>>(),
        [e(1, 5, 5), e(3, 6, 6), e(7, 1, 1)]
    );
    assert_eq!(grid.cell(9, 9).collect::<Vec<_>>(), [e(2, 95, 95)]);
    grid.rebuild(&[e(3, 95, 95)]);
    assert_eq!(grid.cell(0, 0).count(), 0);
    assert_eq!(grid.cell(9, 9).collect::<Vec<_>>(), [e(3, 95, 95)]);
}

#[test]
fn a_tiny_radius_does_not_explode_the_grid() {
    let grid = Grid::new(1, IVec2::splat(1 << 28));
    assert!(grid.cells() <= 256 * 256);
    assert!(grid.cell_side() >= (1 << 28) / 256);
    let grid = Grid::with_cell(1, 1, IVec2::splat(1 << 28));
    assert!(grid.cells() <= 1_025 * 1_025);
    // The last cell's centre is still near the world's far corner.
    let far = FixedPos::new(1 << 28, 1 << 28);
    let c = grid.cell_center(grid.cell_index(far));
    assert!((far.0 - c.0).abs().max_element() <= grid.cell_side() as i32);
}

fn decode(frame: &Bytes) -> ticksync_protocol::Snapshot {
    match codec::decode_server(frame) {
        Ok(ServerMsg::Snapshot(s)) => s,
        other => panic!("not a snapshot: {other:?}"),
    }
}

#[test]
fn entering_spawns_leaving_removes_and_moving_is_corrected() {
    let mut grid = Grid::new(100, IVec2::splat(1_000));
    let mut enc = ViewEncoder::new(IVec2::splat(1_000));
    let mut held = HeldView::default();
    let mut arena = BytesMut::new();
    let me = FixedPos::new(500, 500);
    grid.rebuild(&[e(1, 500, 500), e(2, 550, 500), e(3, 900, 900)]);
    let f = enc.encode(
        &grid,
        None,
        Tick(1),
        me,
        &held,
        false,
        InputSeq(4),
        &mut arena,
    );
    assert!(enc.last_was_full());
    enc.commit(Tick(1), &mut held);
    let s = decode(&f);
    assert_eq!(s.ack_input, InputSeq(4));
    assert_eq!(s.body.spawned, [e(1, 500, 500), e(2, 550, 500)]);

    // 2 walks out, 3 walks in, 1 stays.
    grid.rebuild(&[e(1, 500, 500), e(2, 650, 500), e(3, 590, 500)]);
    let f = enc.encode(
        &grid,
        None,
        Tick(2),
        me,
        &held,
        false,
        InputSeq(5),
        &mut arena,
    );
    enc.commit(Tick(2), &mut held);
    let s = decode(&f).body;
    assert_eq!(s.baseline, Some(Tick(1)));
    assert_eq!(s.removed, [PlayerId(2)]);
    assert_eq!(s.spawned, [e(3, 590, 500)]);
    assert!(s.changed.is_empty() && s.corrected.is_empty());
    assert_eq!(s.checksum, snapshot::view_checksum(&held.entities));

    grid.rebuild(&[e(1, 500, 500), e(2, 650, 500), e(3, 580, 500)]);
    let f = enc.encode(
        &grid,
        None,
        Tick(3),
        me,
        &held,
        false,
        InputSeq(5),
        &mut arena,
    );
    let s = decode(&f).body;
    // 3 moved although its velocity is 0: a correction.
    assert_eq!(
        (
            s.removed.len(),
            s.spawned.len(),
            s.changed.len(),
            s.corrected.len()
        ),
        (0, 0, 0, 1)
    );
    // A requested full snapshot ignores the baseline.
    let f = enc.encode(
        &grid,
        None,
        Tick(3),
        me,
        &held,
        true,
        InputSeq(5),
        &mut arena,
    );
    assert_eq!(decode(&f).body.baseline, None);
}

/// Many moving players over many ticks, each client applying its own frames to a
/// `ClientWorld` (which verifies every checksum); some clients skip ticks as if
/// their queue were full, so deltas span several ticks.
#[test]
fn client_worlds_follow_their_views_over_many_ticks() {
    let movement = MoveConfig::from_units(100.0, 30, 300.0);
    let mut world = World::new(SimConfig {
        movement,
        max_players: 200,
        input_queue: 8,
        max_inputs_per_tick: 2,
        resume_grace_ticks: 30,
    });
    let radius = 40 * 16;
    let mut grid = Grid::new(radius, movement.world_max);
    let mut enc = ViewEncoder::new(movement.world_max);
    let mut arena = BytesMut::new();
    let mut rng = Rng(42);
    let mut ids = Vec::new();
    for n in 0..120u32 {
        let token = ResumeToken([
            n as u8,
            (n >> 8) as u8,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            9,
            0,
            1,
            2,
            3,
            4,
        ]);
        ids.push(world.join(None, token, None).expect("joins").id);
    }
    let mut clients: Vec<(HeldView, ClientWorld)> = ids
        .iter()
        .map(|_| (HeldView::default(), ClientWorld::new(movement.world_max)))
        .collect();
    let mut dirs: Vec<MoveDir> = ids.iter().map(|_| MoveDir::new(0, 0)).collect();
    let mut late = LateInputs::new(ids.len());
    let (mut spawns, mut removals, mut corrected) = (0, 0, 0);
    for t in 1..=240u32 {
        for (i, id) in ids.iter().enumerate() {
            if rng.below(20) == 0 {
                let mut axis = || (rng.below(255) as i32 - 127) as i8;
                dirs[i] = MoveDir::new(axis(), axis());
            }
            let hold_back = rng.below(15) == 0;
            if let Some(input) = late.input(i, t, dirs[i], hold_back) {
                world.queue_input(*id, &input);
            }
        }
        world.advance();
        let tick = world.tick();
        grid.rebuild(world.view());
        for (i, id) in ids.iter().enumerate() {
            if (i + t as usize).is_multiple_of(7) {
                continue; // queue full: skipped tick
            }
            let (held, cw) = &mut clients[i];
            let me = world.player(*id).expect("present").pos;
            let frame = enc.encode(&grid, None, tick, me, held, false, InputSeq(t), &mut arena);
            enc.commit(tick, held);
            let s = decode(&frame);
            spawns += s.body.spawned.len();
            removals += s.body.removed.len();
            corrected += s.body.corrected.len();
            cw.apply(&s.body).expect("applies with a matching checksum");
            assert_eq!(cw.to_sorted_vec(), brute(world.view(), me, radius));
            assert!(cw.get(*id).is_some(), "the own entity is always in view");
        }
    }
    assert!(removals > 100, "players left views ({removals})");
    assert!(spawns > removals, "players entered views ({spawns})");
    assert!(corrected > 100, "late inputs were corrected ({corrected})");
}

/// One input per player per tick, some held back a tick (sent late, together
/// with the next one): the server applies none in one tick and two in the next,
/// as with a client whose input missed its tick (shared with the other view
/// tests).
pub(crate) struct LateInputs {
    /// Per player: the first sequence number and directions not sent yet.
    pending: Vec<(u32, Vec<MoveDir>)>,
}

impl LateInputs {
    pub(crate) fn new(players: usize) -> LateInputs {
        LateInputs {
            pending: vec![(1, Vec::new()); players],
        }
    }

    /// Player `i`'s input of tick `t` (sequence number `t`): the message to queue
    /// now, or `None` when it is held back.
    pub(crate) fn input(
        &mut self,
        i: usize,
        t: u32,
        dir: MoveDir,
        hold_back: bool,
    ) -> Option<Input> {
        let (first, dirs) = &mut self.pending[i];
        if dirs.is_empty() {
            *first = t;
        }
        dirs.push(dir);
        if hold_back && dirs.len() == 1 {
            return None;
        }
        Some(Input {
            ack_tick: None,
            first_seq: InputSeq(*first),
            dirs: std::mem::take(dirs),
        })
    }
}

#[test]
fn frames_share_arena_chunks() {
    let mut arena = BytesMut::new();
    let a = carve(&mut arena, &[1, 2, 3]);
    let b = carve(&mut arena, &[4, 5]);
    assert_eq!((&a[..], &b[..]), (&[1, 2, 3][..], &[4, 5][..]));
    // Adjacent in one chunk: the second frame did not allocate.
    assert_eq!(ptr_distance(&a, &b), Some(3));
    let big = carve(&mut arena, &vec![7; 100_000]);
    assert_eq!(big.len(), 100_000);
}

fn ptr_distance(a: &Bytes, b: &Bytes) -> Option<usize> {
    (b.as_ptr() as usize).checked_sub(a.as_ptr() as usize)
}
