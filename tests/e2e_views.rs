//! End to end with exact per-client circles (`--view-radius R`, `--view-cell
//! 0`): each client's frame is built by a sender shard from the tick's
//! published index (`sim/view_jobs.rs`), in parallel with the other shards and
//! the next tick. Over real sockets, every bot must hold exactly the players
//! within R of itself, never desync, and get one body of its own per frame.

mod common;

use std::time::Duration;

use ticksync_protocol::{EntityState, FIXED_SCALE};
use ticksync_server::Config;

const BOTS: u64 = 40;
/// World units: a small world, so views overlap and players walk in and out.
const RADIUS: f64 = 120.0;

/// The definition of a view: every entity within `r` (grid steps) of `me`.
fn circle(world: &[EntityState], me: &EntityState, r: i64) -> Vec<EntityState> {
    world
        .iter()
        .filter(|e| {
            let d = (e.pos.0 - me.pos.0).as_i64vec2();
            d.x * d.x + d.y * d.y <= r * r
        })
        .copied()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forty_bots_hold_exactly_their_circles() {
    let server = common::start_server(Config {
        view_radius: RADIUS,
        world_size: 400.0,
        ..Config::for_tests()
    })
    .await;
    let r = (RADIUS * f64::from(FIXED_SCALE)).round() as i64;
    let bots = common::connect_bots(&server, 1, BOTS).await;
    // Play: everyone walks, views change every tick.
    common::wait_all(&bots, "snapshots flowing", |v| v.counters.snapshots > 30).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let settled_tick = {
        for b in &bots {
            b.set_quiesced(true);
        }
        common::wait_all(&bots, "all inputs acknowledged", |v| {
            v.quiesced && v.all_inputs_acked()
        })
        .await;
        common::eventually(common::WAIT, "the world at rest", || async {
            common::at_rest(&common::server_world(&server).await.1)
        })
        .await;
        common::server_world(&server).await
    };
    let (tick, world) = settled_tick;
    let views = common::wait_all(&bots, "worlds at the compared tick", |v| {
        v.tick.is_some_and(|t| t >= tick)
    })
    .await;
    let mut partial = 0;
    for (i, v) in views.iter().enumerate() {
        let id = v.player_id.expect("connected");
        let me = world.iter().find(|e| e.id == id).expect("in the world");
        let expected = circle(&world, me, r);
        assert_eq!(v.entities, expected, "bot #{i} at tick {:?}", v.tick);
        assert_eq!(v.counters.desyncs, 0, "bot #{i}: desyncs");
        partial += usize::from(expected.len() < world.len());
    }
    assert!(
        partial > 0,
        "the radius cuts some views ({} players)",
        world.len()
    );
    for (i, outcome) in common::close_all(bots).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    // One body per frame: nothing is shared between exact circles. The
    // shards report what they built to the room's next tick, so the counts
    // meet once no frame is sent any more.
    let m = server.metrics();
    common::eventually(common::WAIT, "one body per frame sent", || async {
        m.snapshot_bodies_encoded.get() == m.snapshots_sent.get()
    })
    .await;
    assert!(
        m.snapshots_full.get() >= BOTS,
        "each bot's first frame is full"
    );
    common::shutdown(server).await;
}
