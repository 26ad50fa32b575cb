//! Interest management end to end: a live server with `--view-radius` and raw
//! clients whose worlds must hold exactly the players within the radius, with the
//! checksum verified on every snapshot.

mod support;

use ticksync_protocol::{ClientWorld, EntityState, FixedPos, InputSeq, MoveDir};
use ticksync_server::Config;

use ticksync_testkit::raw::RawClient;

fn within(a: FixedPos, b: FixedPos, r: u32) -> bool {
    let d = (a.0 - b.0).as_i64vec2();
    d.x * d.x + d.y * d.y <= i64::from(r).pow(2)
}

fn visible(all: &[EntityState], me: FixedPos, r: u32) -> Vec<EntityState> {
    all.iter()
        .filter(|e| within(e.pos, me, r))
        .copied()
        .collect()
}

/// The centre of a client's view: itself with exact circles, else its cell's
/// centre (the last row and column of cells absorb the world's remainder).
fn view_center(me: FixedPos, cell: i32, world_max: i32) -> FixedPos {
    if cell == 0 {
        return me;
    }
    let c = |v: i32| (v / cell).min(world_max / cell) * cell + cell / 2;
    FixedPos::new(c(me.0.x), c(me.0.y))
}

#[tokio::test]
async fn clients_hold_only_the_players_within_the_view_radius() {
    views_follow_the_radius(0.0).await;
}

#[tokio::test]
async fn clients_of_a_cell_hold_the_players_around_its_centre() {
    views_follow_the_radius(30.0).await;
}

async fn views_follow_the_radius(view_cell: f64) {
    let config = Config {
        world_size: 300.0,
        view_radius: 60.0,
        view_cell,
        ..Config::for_tests()
    };
    config.validate().expect("valid config");
    let kinds = config.kinds().expect("valid kinds");
    let spec = &kinds.default_kind().spec;
    let (radius, cell) = (spec.view_radius_fixed(), spec.view_cell_fixed() as i32);
    let world_max = config.movement().world_max.x;
    let server = support::start(config).await;
    let addr = server.local_addr();
    let mut clients = Vec::new();
    for _ in 0..10 {
        let (c, w) = RawClient::join(addr, "test").await;
        clients.push((c, w.player_id, ClientWorld::new(w.movement.world_max)));
    }
    let center = FixedPos::new(150 * 16, 150 * 16);
    let (mut entered, mut left) = (0, 0);
    for round in 1..=60u32 {
        for (c, id, world) in &mut clients {
            let s = c.snapshot().await;
            let applied = world
                .apply(&s.body)
                .expect("every snapshot applies and its checksum verifies");
            entered += usize::from(!applied.full) * applied.spawned;
            left += applied.removed;
            let me = world.get(*id).expect("the own player is always in view");
            let eye = view_center(me, cell, world_max);
            for other in world.iter() {
                assert!(
                    within(other.pos, eye, radius),
                    "{:?} at {:?} is out of view",
                    other.id,
                    other.pos
                );
            }
            // Walk to the centre for a second, then away from it, so players
            // cross each other's views.
            let to_center = (center.0 - me.0).as_vec2().normalize_or_zero() * 127.0;
            let dir = if round <= 30 { to_center } else { -to_center };
            c.send_input(InputSeq(round), &[MoveDir::new(dir.x as i8, dir.y as i8)])
                .await;
        }
    }
    assert!(
        entered > 0 && left > 0,
        "views changed ({entered} in, {left} out)"
    );

    // Once everyone stands still, each view is exactly the server's players
    // within the radius.
    for (c, _, _) in &mut clients {
        c.send_input(InputSeq(61), &[MoveDir::new(0, 0)]).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (at, all) = server.world().await.expect("world");
    for (c, id, world) in &mut clients {
        loop {
            let s = c.snapshot().await;
            world.apply(&s.body).expect("applies");
            if s.body.tick >= at {
                break;
            }
        }
        let me = world.get(*id).expect("own player");
        let eye = view_center(me, cell, world_max);
        assert_eq!(world.to_sorted_vec(), visible(&all, eye, radius));
    }
    server.shutdown().await;
}
