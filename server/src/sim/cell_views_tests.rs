//! Tests of cell-quantized shared views.

use super::*;
use crate::sim::interest::tests::{LateInputs, brute, e};
use crate::sim::{SimConfig, World};
use glam::IVec2;
use ticksync_protocol::{ClientWorld, MoveConfig, MoveDir, ResumeToken, ServerMsg};

fn decode(frame: &Bytes) -> ticksync_protocol::Snapshot {
    match codec::decode_server(frame) {
        Ok(ServerMsg::Snapshot(s)) => s,
        other => panic!("not a snapshot: {other:?}"),
    }
}

#[test]
fn clients_in_one_cell_with_one_baseline_share_the_body() {
    let mut grid = Grid::with_cell(100, 50, IVec2::splat(999));
    let mut views = CellViews::new(IVec2::splat(999));
    let mut arena = BytesMut::new();
    let all = [e(1, 10, 10), e(2, 40, 40), e(3, 120, 25), e(4, 900, 900)];
    grid.rebuild(&all);
    views.begin_tick(&grid, Tick(1));
    let mut held = [
        HeldView::default(),
        HeldView::default(),
        HeldView::default(),
    ];
    let a = views.frame(
        &mut grid,
        all[0].pos,
        &held[0],
        false,
        InputSeq(1),
        &mut arena,
    );
    views.commit(&mut held[0]);
    let b = views.frame(
        &mut grid,
        all[1].pos,
        &held[1],
        false,
        InputSeq(2),
        &mut arena,
    );
    views.commit(&mut held[1]);
    assert_eq!(views.bodies_encoded(), 1, "same cell, both full: one body");
    let (sa, sb) = (decode(&a), decode(&b));
    assert_eq!((sa.ack_input, sb.ack_input), (InputSeq(1), InputSeq(2)));
    assert_eq!(sa.body, sb.body);
    // The circle is around the cell centre (25, 25): 3 at (120, 25) is 95 away.
    assert_eq!(sa.body.spawned, [all[0], all[1], all[2]]);
    let c = views.frame(
        &mut grid,
        all[3].pos,
        &held[2],
        false,
        InputSeq(0),
        &mut arena,
    );
    views.commit(&mut held[2]);
    assert_eq!(decode(&c).body.spawned, [all[3]]);
    assert_eq!(views.bodies_encoded(), 2);

    // Next tick: one client changes cell, so its baseline and view differ.
    let moved = [e(1, 60, 10), e(2, 41, 40), e(3, 120, 25), e(4, 900, 900)];
    grid.rebuild(&moved);
    views.begin_tick(&grid, Tick(2));
    let a = views.frame(
        &mut grid,
        moved[0].pos,
        &held[0],
        false,
        InputSeq(1),
        &mut arena,
    );
    views.commit(&mut held[0]);
    let b = views.frame(
        &mut grid,
        moved[1].pos,
        &held[1],
        false,
        InputSeq(2),
        &mut arena,
    );
    views.commit(&mut held[1]);
    assert_eq!(views.bodies_encoded(), 4);
    assert_eq!(held[0].cell, Some(grid.cell_index(moved[0].pos)));
    let mut w = ClientWorld::new(IVec2::splat(999));
    w.apply(&sa.body).unwrap();
    w.apply(&decode(&a).body).unwrap();
    assert_eq!(
        w.to_sorted_vec(),
        brute(&moved, grid.cell_center(held[0].cell.unwrap()), 100)
    );
    let mut w = ClientWorld::new(IVec2::splat(999));
    w.apply(&sb.body).unwrap();
    w.apply(&decode(&b).body).unwrap();
    assert_eq!(w.to_sorted_vec(), brute(&moved, FixedPos::new(25, 25), 100));
}

/// Moving players, skipped ticks and resyncs: every client's world matches the
/// circle around its cell's centre, every checksum verifies, bodies are shared.
#[test]
fn client_worlds_follow_cell_views_over_many_ticks() {
    let movement = MoveConfig::from_units(100.0, 30, 300.0);
    let mut world = World::new(SimConfig {
        movement,
        max_players: 300,
        input_queue: 8,
        max_inputs_per_tick: 2,
        resume_grace_ticks: 30,
    });
    let radius = 60 * 16;
    let mut grid = Grid::with_cell(radius, radius / 2, movement.world_max);
    let mut views = CellViews::new(movement.world_max);
    let mut arena = BytesMut::new();
    let mut ids = Vec::new();
    for n in 0..250u32 {
        let mut token = [7u8; 16];
        token[..4].copy_from_slice(&n.to_le_bytes());
        ids.push(
            world
                .join(None, ResumeToken(token), None)
                .expect("joins")
                .id,
        );
    }
    let mut clients: Vec<(HeldView, ClientWorld)> = ids
        .iter()
        .map(|_| (HeldView::default(), ClientWorld::new(movement.world_max)))
        .collect();
    let mut late = LateInputs::new(ids.len());
    let (mut frames, mut changes, mut corrected) = (0u64, 0usize, 0usize);
    for t in 1..=150u32 {
        for (i, id) in ids.iter().enumerate() {
            let phase = (i as u32 * 7 + t / 20) % 8;
            let dirs = [
                (127, 0),
                (90, 90),
                (0, 127),
                (-90, 90),
                (-127, 0),
                (-90, -90),
                (0, -127),
                (0, 0),
            ];
            let (x, y) = dirs[phase as usize];
            let hold_back = (i as u32 * 13 + t).is_multiple_of(17);
            if let Some(input) = late.input(i, t, MoveDir::new(x, y), hold_back) {
                world.queue_input(*id, &input);
            }
        }
        world.advance();
        grid.rebuild(world.view());
        views.begin_tick(&grid, world.tick());
        for (i, id) in ids.iter().enumerate() {
            if i % 10 == 0 && (i + t as usize).is_multiple_of(5) {
                continue; // queue full: skipped tick
            }
            let full = (i * 31 + t as usize).is_multiple_of(97);
            let (held, cw) = &mut clients[i];
            let me = world.player(*id).expect("present").pos;
            let frame = views.frame(&mut grid, me, held, full, InputSeq(t), &mut arena);
            views.commit(held);
            frames += 1;
            let s = decode(&frame);
            changes += s.body.spawned.len() + s.body.removed.len();
            corrected += s.body.corrected.len();
            cw.apply(&s.body).expect("applies with a matching checksum");
            let center = grid.cell_center(grid.cell_index(me));
            assert_eq!(cw.to_sorted_vec(), brute(world.view(), center, radius));
            assert!(cw.get(*id).is_some(), "the own entity is always in view");
        }
    }
    assert!(
        changes > 1_000,
        "views changed ({changes} spawns and removals)"
    );
    assert!(corrected > 100, "late inputs were corrected ({corrected})");
    assert!(
        views.bodies_encoded() * 3 < frames * 2,
        "bodies are shared: {} for {frames} frames",
        views.bodies_encoded()
    );
}
