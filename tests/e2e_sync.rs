//! End to end: many bots against an in-process server. Every bot sees every
//! player, never desyncs, its world at tick t is the server's world at tick t
//! while everyone moves, and once everyone stands still every world equals the
//! server's bit for bit.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use ticksync_server::Config;
use ticksync_server::metrics::InputRejection;

use common::WAIT;
use common::history::{History, Recorder, Verdict, ViewLog};
use ticksync_protocol::{EntityState, FixedPos, PlayerId, Tick};

const BOTS: u64 = 50;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_bots_share_one_exact_world() {
    let server = common::start_server(Config::for_tests()).await;
    let bots = common::connect_bots(&server, 1, BOTS).await;
    let ids = common::player_ids(&bots);
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        BOTS as usize,
        "distinct player ids: {ids:?}"
    );
    common::wait_all(&bots, "every player in the world", |v| {
        common::sees_all(v, &ids) && v.entities.len() == ids.len()
    })
    .await;
    let (_, at_start) = common::server_world(&server).await;

    // Play for a while, sampling every bot's world to compare with the server's
    // world of the same tick.
    let recorder = Recorder::start(server.clone());
    let mut log = ViewLog::default();
    log.sample_for(&bots, Duration::from_secs(2), Duration::from_millis(40))
        .await;
    let settled = common::quiesce_and_compare(&server, &bots).await;
    recorder.wait_for(settled.tick).await;
    let history = recorder.finish().await;
    let coverage = log.check(&history);
    eprintln!(
        "{} ticks recorded, {} bot samples equal to the server's world, {} unrecorded",
        history.len(),
        coverage.checked,
        coverage.unrecorded
    );
    assert!(
        coverage.checked >= BOTS as usize,
        "too few samples compared: {coverage:?}"
    );

    // They did play: most players moved (a random walk idles now and then).
    let moved = settled
        .world
        .iter()
        .zip(&at_start)
        .filter(|(now, before)| now.pos != before.pos)
        .count();
    assert!(moved >= BOTS as usize / 2, "only {moved} players moved");

    // Movement depends only on a player's own inputs, so the prediction can only
    // be wrong where the server dropped an input (none expected here).
    let m = server.metrics();
    let rejected: u64 = [
        InputRejection::stale,
        InputRejection::queue_full,
        InputRejection::server_busy,
        InputRejection::rate_limited,
    ]
    .into_iter()
    .map(|r| m.inputs_rejected(r))
    .sum();
    let mispredictions: u64 = settled
        .views
        .iter()
        .map(|v| v.counters.mispredictions)
        .sum();
    if rejected > 0 {
        eprintln!("warning: the server dropped {rejected} inputs (overloaded machine?)");
    }
    assert!(
        mispredictions <= rejected,
        "{mispredictions} mispredictions with {rejected} inputs dropped by the server"
    );
    for (i, v) in settled.views.iter().enumerate() {
        assert!(v.counters.snapshots > 30, "bot #{i} got few snapshots");
        assert_eq!(v.counters.desyncs, 0, "bot #{i}");
        assert!(v.counters.inputs_sent > 0, "bot #{i} sent inputs");
    }

    for (i, outcome) in common::close_all(bots).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    common::eventually(WAIT, "every player to leave", || async {
        common::server_world(&server).await.1.is_empty()
    })
    .await;
    common::shutdown(server).await;
}

/// The comparison the test above relies on does catch what it should.
#[test]
fn history_check_catches_any_difference() {
    let e = |id, x| EntityState::at(PlayerId(id), FixedPos::new(x, 0));
    let h: History = [
        (Tick(9), vec![e(1, 5), e(2, 5)]),
        (Tick(10), vec![e(2, 6), e(3, 0)]),
    ]
    .into_iter()
    .collect();
    assert_eq!(h.check(Tick(10), &[e(2, 6), e(3, 0)]), Verdict::Equal);
    assert_eq!(h.check(Tick(9), &[e(1, 5), e(2, 5)]), Verdict::Equal);
    for wrong in [
        vec![e(2, 7), e(3, 0)], // moved differently
        vec![
            EntityState {
                vel: glam::IVec2::X,
                ..e(2, 6)
            },
            e(3, 0),
        ], // another velocity
        vec![e(2, 6), e(4, 0)], // another player
        vec![e(1, 9), e(2, 6), e(3, 0)], // one too many
        vec![e(2, 6)],          // one missing
        vec![],
    ] {
        assert!(
            matches!(h.check(Tick(10), &wrong), Verdict::Differs(_)),
            "{wrong:?}"
        );
    }
    assert_eq!(h.check(Tick(11), &[]), Verdict::Unrecorded);
}
