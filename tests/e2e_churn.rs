//! End to end: players join and leave while others play. A joiner appears in
//! every world in the snapshot right after its `Welcome` tick; a clean leaver
//! (close 1000) is gone from every world in the snapshot after the tick the
//! server handled its leave; and throughout, every sampled bot world is the
//! server's world of the same tick.

mod common;

use std::time::Duration;

use ticksync_bot::BotHandle;
use ticksync_protocol::{PlayerId, Tick};
use ticksync_server::Config;

use common::history::{History, Recorder, ViewLog};
use common::raw::{Ended, RawClient};

/// Bots that stay for the whole test.
const STABLE: u64 = 8;
/// Join/leave rounds.
const ROUNDS: u64 = 5;
/// Longest a leave may take from the client's close to the server's tick, in
/// ticks: a liveness bound only (1 s, for a loaded machine); the exactness of
/// what bots see is checked per tick against the server's history.
const LEAVE_LATENCY_TICKS: u32 = 30;

const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// A leave: who, and the server's tick just before the close was sent.
struct Leave {
    id: PlayerId,
    before: Tick,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joiners_and_leavers_appear_and_vanish_for_everyone_within_a_tick() {
    let server = common::start_server(Config::for_tests()).await;
    let recorder = Recorder::start(server.clone());
    let mut bots = common::connect_bots(&server, 1, STABLE).await;
    let ids = common::player_ids(&bots);
    common::wait_all(&bots, "the stable bots to see each other", |v| {
        common::sees_all(v, &ids)
    })
    .await;
    let mut log = ViewLog::default();

    // A raw joiner shows the exact rule: its first snapshot is of tick W + 1 and
    // holds it; every bot's world from tick W + 1 on holds it.
    let (mut raw, welcome) = RawClient::join(server.local_addr(), "raw-joiner").await;
    let w = welcome.tick;
    let first = raw.snapshot().await;
    assert_eq!(
        first.body.tick,
        w.next(),
        "first snapshot right after Welcome"
    );
    assert!(
        first.body.baseline.is_none(),
        "a joiner's first snapshot is full"
    );
    assert!(
        first.body.spawned.iter().any(|e| e.id == welcome.player_id),
        "the joiner is in its own first snapshot"
    );
    for v in common::wait_all(&bots, "a world at the joiner's first tick", |v| {
        v.tick.is_some_and(|t| t >= w.next())
    })
    .await
    {
        assert!(common::sees(&v, welcome.player_id), "{v:?}");
    }
    log.sample(&bots).await;
    let mut leaves = vec![Leave {
        id: welcome.player_id,
        before: common::server_tick(&server),
    }];
    assert_eq!(raw.close_normal().await, Ended::Closed(Some(1000)));
    let mut joins = vec![(welcome.player_id, Some(w))];

    // Bots join and leave while everyone plays.
    for round in 0..ROUNDS {
        let joiner = common::connect_bot(&server, 100 + round).await;
        joins.push((joiner.player_id().expect("id"), None));
        bots.push(joiner);
        log.sample_for(&bots, Duration::from_millis(200), SAMPLE_EVERY)
            .await;
        if round % 2 == 1 {
            // The oldest churner leaves (stable bots come first).
            let leaver: BotHandle = bots.remove(STABLE as usize);
            let id = leaver.player_id().expect("id");
            let before = common::server_tick(&server);
            let outcome = common::within(common::WAIT, "the leaver to close", leaver.close()).await;
            assert!(outcome.last_error.is_none(), "{:?}", outcome.last_error);
            leaves.push(Leave { id, before });
            log.sample_for(&bots, Duration::from_millis(200), SAMPLE_EVERY)
                .await;
        }
    }

    let end = common::server_tick(&server);
    recorder.wait_for(end).await;
    let history = recorder.finish().await;
    let coverage = log.check(&history);
    assert!(
        coverage.checked >= log.samples.len() / 2,
        "too few samples compared exactly: {coverage:?} of {}",
        log.samples.len()
    );
    check_leaves(&history, &log, &leaves);
    check_joins(&history, &log, &joins);
    eprintln!(
        "{} ticks recorded, {coverage:?} of {} samples",
        history.len(),
        log.samples.len()
    );

    for (i, outcome) in common::close_all(bots).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    common::shutdown(server).await;
}

/// Every leaver is gone from the server's world soon after its close, and from
/// every bot's world from that very tick on.
fn check_leaves(history: &History, log: &ViewLog, leaves: &[Leave]) {
    for l in leaves {
        let gone = history
            .first_tick(l.id, false, l.before)
            .unwrap_or_else(|| panic!("player {} never left the server's world", l.id.0));
        let latency = gone.0 - l.before.0;
        eprintln!(
            "player {} left: close sent after tick {}, gone from the server's world at {} ({latency} ticks)",
            l.id.0, l.before.0, gone.0
        );
        assert!(
            latency <= LEAVE_LATENCY_TICKS,
            "player {} took {latency} ticks to leave",
            l.id.0
        );
        for s in &log.samples {
            if s.tick >= gone {
                assert!(
                    !s.entities.iter().any(|e| e.id == l.id),
                    "bot {:?} still sees leaver {} at tick {} (gone at {})",
                    s.player,
                    l.id.0,
                    s.tick.0,
                    gone.0
                );
            }
        }
    }
}

/// Every joiner is in every bot's world from the tick after its `Welcome` on (for
/// bots, whose `Welcome` tick the test does not see: from the first record of
/// the server's world that holds it).
fn check_joins(history: &History, log: &ViewLog, joins: &[(PlayerId, Option<Tick>)]) {
    for &(id, welcome) in joins {
        let seen = history
            .first_tick(id, true, Tick(0))
            .unwrap_or_else(|| panic!("joiner {} never in the server's world", id.0));
        let from = match welcome {
            Some(w) => {
                // The Welcome carries the tick before the join's first snapshot.
                assert!(
                    seen == w.next(),
                    "joiner {} first recorded at tick {}, Welcome tick {}",
                    id.0,
                    seen.0,
                    w.0
                );
                w.next()
            }
            None => seen,
        };
        let left = history
            .first_tick(id, false, seen)
            .unwrap_or(Tick(u32::MAX));
        for s in &log.samples {
            if s.tick >= from && s.tick < left {
                assert!(
                    s.entities.iter().any(|e| e.id == id),
                    "bot {:?} lacks joiner {} at tick {} (in every world from {})",
                    s.player,
                    id.0,
                    s.tick.0,
                    from.0
                );
            }
        }
    }
}
