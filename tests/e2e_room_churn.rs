//! Room churn, briefly: bots in `--churn` mode matchmake, play a short match
//! (their room's first second), leave and matchmake again, so the server opens
//! and closes rooms all the time (the driver of issue #13 item 9; the long run
//! and its figures are in BENCHMARKS.md). The bots stay in sync throughout, and
//! once they stop no room, seat or player is left behind.

mod common;

use std::time::Duration;

use ticksync_bot::BotConfig;
use ticksync_server::Config;

use common::WAIT;

const BOTS: u32 = 16;
const CAPACITY: u32 = 4;
const MATCH: Duration = Duration::from_secs(1);
const RUN: Duration = Duration::from_secs(6);

/// The value of an unlabelled sample in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The sum of every series of a labelled counter.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_opened_and_closed_all_the_time_leave_nothing_behind() {
    let server = common::start_server(Config {
        room_kinds: vec![
            format!("squad:capacity={CAPACITY},tick_rate=10,world_size=200")
                .parse()
                .unwrap(),
        ],
        room_idle_timeout: Duration::from_millis(200),
        ..Config::for_tests()
    })
    .await;
    let report = ticksync_bot::run(BotConfig {
        url: common::ws_url(&server),
        bots: BOTS,
        duration: RUN,
        ramp_up: Duration::from_millis(200),
        input_rate: 10,
        matchmake: true,
        kind: Some("squad".into()),
        churn: Some(MATCH),
        connect_timeout: WAIT,
        // Between two matches a bot is away for a matchmake and a join: on a
        // loaded debug build that can be a tenth of a 1 s match. Presence is
        // not what this test is about; sync and the rooms are.
        max_disconnected_share: 0.5,
        no_progress: true,
        ..BotConfig::default()
    })
    .await
    .expect("a valid bot config");
    assert!(report.passed, "{report}");
    assert_eq!((report.desyncs, report.errors), (0, 0), "{report}");
    // 16 bots in rooms of 4, matches of 1 s for 6 s: each bot plays several
    // matches, and each match is a room of its own.
    assert!(
        report.matches_played >= u64::from(BOTS) * 2,
        "{} matches",
        report.matches_played
    );
    let created = report.server.rooms_created.expect("rooms created");
    let closed = report.server.rooms_closed.expect("rooms closed");
    assert!(
        created >= u64::from(BOTS / CAPACITY) * 2,
        "{created} rooms opened"
    );
    assert!(
        closed >= created / 2,
        "{closed} of {created} rooms closed while the bots played"
    );
    assert!(
        report.rooms_joined >= created / 2,
        "{} rooms joined",
        report.rooms_joined
    );

    // Once the bots are gone every room closes: none, no player and no seat
    // is left, and the room gauge agrees with the counters.
    common::eventually(WAIT, "every room to close", || async {
        server.rooms().is_empty()
    })
    .await;
    let text = server.metrics().encode();
    assert_eq!(sample(&text, "ticksync_rooms"), Some(0.0), "{text}");
    assert_eq!(sample(&text, "ticksync_players"), Some(0.0), "{text}");
    let opened = sample(&text, "ticksync_rooms_created_total").expect("rooms created");
    assert_eq!(opened, sum(&text, "ticksync_rooms_closed_total"), "{text}");
    assert!(opened >= created as f64);
    common::shutdown(server).await;
}
