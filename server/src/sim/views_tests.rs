//! Tests of the per-tick snapshot builder in every view mode: what each client
//! holds after applying its frames must be exactly the definition of its view —
//! positions and velocities — at every tick, through late inputs, skipped ticks
//! and requested full snapshots, while bodies are still shared.

use super::*;
use crate::sim::interest::tests::{LateInputs, brute};
use crate::sim::{SimConfig, World};
use ticksync_protocol::{
    ClientWorld, MoveConfig, MoveDir, PlayerId, ResumeToken, ServerMsg, Snapshot,
};

fn decode(frame: &Bytes) -> Snapshot {
    match codec::decode_server(frame) {
        Ok(ServerMsg::Snapshot(s)) => s,
        other => panic!("not a snapshot: {other:?}"),
    }
}

fn own_view(views: &mut Views, me: EntityState, others: &[EntityState]) -> Vec<EntityState> {
    let mut all = others.to_vec();
    all.push(me);
    all.sort_by_key(|e| e.id);
    views.begin_tick(Tick(1), &all);
    let (frame, full) = views.frame(me.pos, &HeldView::default(), false, InputSeq(0));
    assert!(full);
    decode(&frame).body.spawned
}

#[test]
fn every_mode_keeps_the_client_in_its_own_view() {
    let max = IVec2::splat(1 << 20);
    let me = EntityState::new(
        PlayerId(9),
        FixedPos::new((1 << 20) - 3, 5),
        IVec2::new(-53, 0),
    );
    let other = EntityState::at(PlayerId(2), FixedPos::new(0, 0));
    // (radius, cell): everyone; exact; cells; a cell the grid cannot make
    // that small, so exact circles instead.
    for (radius, cell, expect) in [
        (0, 0, vec![other, me]),
        (16, 0, vec![me]),
        (4_096, 2_048, vec![me]),
        (16, 8, vec![me]),
    ] {
        let mut views = Views::new(radius, cell, max, 4);
        assert_eq!(
            own_view(&mut views, me, &[other]),
            expect,
            "{radius}/{cell}"
        );
    }
}

/// A client as the tick loop keeps it: what it holds on the server side and what
/// it reconstructed on its side.
struct Client {
    id: PlayerId,
    held: HeldView,
    world: ClientWorld,
}

/// Plays `ticks` ticks of a world of walking players with late inputs, drives
/// every client through [`Views`] like the tick loop does (some skip ticks as if
/// their queue were full, some ask for full snapshots) and checks every client's
/// world against `definition(world view, own position)` after every frame.
/// Returns (frames sent, bodies encoded, corrections sent).
fn play(
    radius: u32,
    cell: u32,
    ticks: u32,
    definition: impl Fn(&[EntityState], FixedPos) -> Vec<EntityState>,
) -> (u64, u64, usize) {
    let movement = MoveConfig::from_units(100.0, 30, 200.0);
    let mut world = World::new(SimConfig {
        movement,
        max_players: 100,
        input_queue: 8,
        max_inputs_per_tick: 2,
        resume_grace_ticks: 30,
    });
    let mut views = Views::new(radius, cell, movement.world_max, 8);
    let mut clients: Vec<Client> = (0..60u8)
        .map(|n| {
            let id = world
                .join(None, ResumeToken([n; 16]), None)
                .expect("joins")
                .id;
            Client {
                id,
                held: HeldView::default(),
                world: ClientWorld::new(movement.world_max),
            }
        })
        .collect();
    let mut late = LateInputs::new(clients.len());
    let (mut frames, mut corrected) = (0, 0);
    for t in 1..=ticks {
        for (i, c) in clients.iter().enumerate() {
            // Each player turns every 25 ticks; one in eight directions is a stop.
            let dir = match (i as u32 * 5 + t / 25) % 8 {
                7 => MoveDir::ZERO,
                a => MoveDir::from_vec2(glam::Vec2::from_angle(a as f32 * 0.9)),
            };
            let hold_back = (i as u32 * 7 + t).is_multiple_of(13);
            if let Some(input) = late.input(i, t, dir, hold_back) {
                world.queue_input(c.id, &input);
            }
        }
        world.advance();
        views.begin_tick(world.tick(), world.view());
        for (i, c) in clients.iter_mut().enumerate() {
            if (i + t as usize).is_multiple_of(6) {
                continue; // queue full: skipped tick, the next delta spans it
            }
            let full = (i * 31 + t as usize).is_multiple_of(89);
            let me = world.player(c.id).expect("present").pos;
            let ack = world.player(c.id).expect("present").last_applied;
            let (frame, _) = views.frame(me, &c.held, full, ack);
            views.commit(&mut c.held);
            frames += 1;
            let s = decode(&frame);
            corrected += s.body.corrected.len();
            c.world
                .apply(&s.body)
                .unwrap_or_else(|e| panic!("tick {t}, client {i}: {e}"));
            assert_eq!(
                c.world.to_sorted_vec(),
                definition(world.view(), me),
                "tick {t}, client {i}"
            );
        }
    }
    (frames, views.bodies_encoded(), corrected)
}

#[test]
fn every_client_holds_the_whole_world_without_a_radius() {
    let (frames, bodies, corrected) = play(0, 0, 120, |all, _| all.to_vec());
    assert!(corrected > 50, "late inputs were corrected ({corrected})");
    // One delta body per distinct baseline tick plus the full ones.
    assert!(bodies * 10 < frames, "{bodies} bodies for {frames} frames");
}

#[test]
fn every_client_holds_its_exact_circle() {
    let radius = 50 * 16;
    let (frames, bodies, corrected) = play(radius, 0, 120, |all, me| brute(all, me, radius));
    assert!(corrected > 50, "late inputs were corrected ({corrected})");
    assert_eq!(bodies, frames, "one body per client per tick");
}

#[test]
fn every_client_holds_its_cells_circle_and_bodies_are_shared() {
    let (radius, cell) = (60 * 16, 30 * 16);
    let grid = Grid::with_cell(
        radius,
        cell,
        MoveConfig::from_units(100.0, 30, 200.0).world_max,
    );
    let (frames, bodies, corrected) = play(radius, cell, 120, |all, me| {
        brute(all, grid.cell_center(grid.cell_index(me)), radius)
    });
    assert!(corrected > 50, "late inputs were corrected ({corrected})");
    assert!(
        bodies * 3 < frames * 2,
        "{bodies} bodies for {frames} frames"
    );
}
