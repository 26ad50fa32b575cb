//! Frames built off the tick thread are the frames the tick thread would have
//! built, byte for byte, even when they are built after the next tick began.

use super::*;
use crate::sim::interest::tests::LateInputs;
use crate::sim::{SimConfig, ViewEncoder, Views, World};
use ticksync_protocol::{MoveConfig, MoveDir, PlayerId, ResumeToken};

/// A tick's index and its jobs, each with the frame the tick thread made.
type Pending = (Arc<ViewTick>, Vec<(ViewJob, Bytes)>);

/// One client kept three times: its baseline for [`Views::frame`], for jobs,
/// and for the reference encoder (the list merge, no bitmap delta).
struct Twin {
    id: PlayerId,
    held: HeldView,
    shared: SharedHeld,
    reference: HeldView,
}

fn twin(world: &mut World, n: u8) -> Twin {
    Twin {
        id: world
            .join(None, ResumeToken([n; 16]), None)
            .expect("joins")
            .id,
        held: HeldView::default(),
        shared: SharedHeld::default(),
        reference: HeldView::default(),
    }
}

#[test]
fn jobs_built_a_tick_late_match_the_tick_threads_frames() {
    let movement = MoveConfig::from_units(100.0, 30, 200.0);
    let mut world = World::new(SimConfig {
        movement,
        max_players: 100,
        input_queue: 8,
        max_inputs_per_tick: 2,
        resume_grace_ticks: 30,
    });
    let radius = 50 * 16;
    let mut views = Views::new(radius, 0, movement.world_max, 8);
    let mut twins: Vec<Twin> = (0..60u8).map(|n| twin(&mut world, n)).collect();
    let mut late = LateInputs::new(twins.len() + 1);
    let mut enc = JobEncoder::new();
    let (mut reference, mut arena) = (ViewEncoder::new(movement.world_max), BytesMut::new());
    let mut bitmap_ticks = 0;
    // The previous tick's index and jobs, with the frames the tick thread made.
    let mut pending: Option<Pending> = None;
    let (mut frames, mut full) = (0u64, 0u64);
    let mut built = Built::default();
    for t in 1..=90u32 {
        if t == 45 {
            // The ids change: that tick's deltas take the list merge.
            twins.push(twin(&mut world, 200));
        }
        for (i, c) in twins.iter().enumerate() {
            let dir = match (i as u32 * 5 + t / 25) % 8 {
                7 => MoveDir::ZERO,
                a => MoveDir::from_vec2(glam::Vec2::from_angle(a as f32 * 0.9)),
            };
            if let Some(input) = late.input(i, t, dir, (i as u32 * 7 + t).is_multiple_of(13)) {
                world.queue_input(c.id, &input);
            }
        }
        world.advance();
        views.begin_tick(world.tick(), world.view());
        // Last tick's jobs are built now, while this tick's index is live:
        // the index they refer to must not have been rebuilt under them.
        if let Some((tick, jobs)) = pending.take() {
            for (job, expected) in jobs {
                assert_eq!(job.build(&tick, &mut enc, &mut built), expected, "tick {t}");
            }
        }
        let tick = views.view_tick().expect("exact circles publish").clone();
        assert_eq!(tick.tick(), world.tick());
        let prev = Tick(world.tick().0 - 1);
        bitmap_ticks += usize::from(tick.motion().applies(prev, world.len().div_ceil(64)));
        let mut jobs = Vec::new();
        for (i, c) in twins.iter_mut().enumerate() {
            if (i + t as usize).is_multiple_of(6) {
                continue; // no slot: skipped tick
            }
            let want_full = (i * 31 + t as usize).is_multiple_of(89);
            let p = world.player(c.id).expect("present");
            let (frame, was_full) = views.frame(p.pos, &c.held, want_full, p.last_applied);
            views.commit(&mut c.held);
            let by_lists = reference.encode(
                tick.grid(),
                None,
                tick.tick(),
                p.pos,
                &c.reference,
                want_full,
                p.last_applied,
                &mut arena,
            );
            reference.commit(tick.tick(), &mut c.reference);
            assert_eq!(
                frame, by_lists,
                "tick {t}, client {i}: bitmap delta vs list merge"
            );
            frames += 1;
            full += u64::from(was_full);
            let job = ViewJob {
                held: c.shared.clone(),
                center: p.pos,
                ack: p.last_applied,
                full: want_full,
            };
            jobs.push((job, frame));
        }
        pending = Some((tick, jobs));
    }
    let (tick, jobs) = pending.expect("last tick");
    for (job, expected) in jobs {
        assert_eq!(job.build(&tick, &mut enc, &mut built), expected);
    }
    for c in &twins {
        let shared = lock_held(&c.shared);
        assert_eq!(
            (shared.tick, &shared.entities),
            (c.held.tick, &c.held.entities)
        );
    }
    assert_eq!((built.bodies, built.full), (frames, full));
    assert!(full >= 61, "every client's first frame is full ({full})");
    // Every tick but the first and the one a player joined.
    assert_eq!(bitmap_ticks, 88);
}

#[test]
fn a_tick_still_being_built_is_not_rebuilt() {
    let max = IVec2::splat(10_000);
    let mut views = Views::new(800, 0, max, 4);
    let a = [EntityState::at(PlayerId(1), FixedPos::new(5, 5))];
    let b = [EntityState::at(PlayerId(1), FixedPos::new(900, 900))];
    views.begin_tick(Tick(1), &a);
    let first = views.view_tick().expect("exact").clone();
    views.begin_tick(Tick(2), &b);
    views.begin_tick(Tick(3), &b);
    // The shard's copy of tick 1 still says tick 1, with its entity at (5, 5).
    assert_eq!(first.tick(), Tick(1));
    let job = ViewJob {
        held: SharedHeld::default(),
        center: FixedPos::new(0, 0),
        ack: InputSeq(0),
        full: true,
    };
    let mut built = Built::default();
    job.build(&first, &mut JobEncoder::new(), &mut built);
    assert_eq!(lock_held(&job.held).entities, a);
    assert_eq!(views.view_tick().expect("exact").tick(), Tick(3));
    // And counts come back to the room once per shard and tick.
    first.count(&built);
    assert_eq!(views.take_built().bodies, 1);
    assert_eq!(views.take_built(), Built::default());
}
