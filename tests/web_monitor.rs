//! The operator's monitor page (`--monitor`) in Debian's chromium, against an
//! in-process server with bots in three rooms (three kinds, seated by
//! `POST /matchmake`): the page signs in (a wrong token is refused), lists the
//! rooms with their player counts, draws its charts, shows a room's players
//! with their RTT, and closes a room with its button, which ends that room's
//! bots with close 4004 while the other rooms play on. A screenshot is saved
//! as `target/monitor.png`.
//!
//! A test binary of its own, so it never shares the two cores with the demo's
//! browser test (cargo runs test binaries one after the other).

mod common;

use std::time::Duration;

use serde_json::Value;

use ticksync_bot::{BotError, BotHandle};
use ticksync_protocol::messages::close;
use ticksync_server::metrics::{AdminRefusal, RoomCloseReason};
use ticksync_server::room::RoomId;
use ticksync_server::{Config, Server};
use ticksync_testkit::http;

use common::web::{assert_screenshot, chromium, ensure_node_modules, run_driver, screenshot_path};

const TOKEN: &str = "monitor-e2e-token-0123456789";

/// Bots `first..first + count`, all in one room of `kind`: each matchmakes
/// (`POST /matchmake`, fullest room first, so all get seats in the room the
/// first one opened) and joins with its seat token. Returns the room and bots.
async fn bots_of_kind(
    server: &Server,
    kind: &str,
    first: u64,
    count: u64,
) -> (RoomId, Vec<BotHandle>) {
    let body = format!(r#"{{"kind":"{kind}"}}"#);
    let mut seats = Vec::new();
    for _ in 0..count {
        let r = http::request(
            server.local_addr(),
            "POST",
            "/matchmake",
            &[],
            body.as_bytes(),
        )
        .await;
        assert_eq!(r.status, 200, "matchmake {kind}: {}", r.body);
        let seat: Value = serde_json::from_str(&r.body).expect("JSON");
        let field = |f: &str| seat[f].as_str().expect("a matchmake field").to_string();
        seats.push((field("room"), field("url"), field("token")));
    }
    let room = seats[0].0.clone();
    assert!(
        seats.iter().all(|s| s.0 == room),
        "one room of {kind}: {seats:?}"
    );
    let bots = common::connect_bots_with(first, count, |n| {
        let (_, url, token) = &seats[(n - first) as usize];
        let mut opts = common::bot_options(server, n);
        opts.url = url.clone();
        opts.auth_token = Some(token.clone());
        opts
    })
    .await;
    (room.parse().expect("a room id"), bots)
}

fn names(first: u64, count: u64) -> String {
    (first..first + count)
        .map(|n| format!("e2e-{n}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_page_lists_rooms_shows_players_and_closes_a_room_in_chromium() {
    let chromium = chromium();
    tokio::task::spawn_blocking(ensure_node_modules)
        .await
        .expect("npm ci task");
    let server = common::start_server(Config {
        monitor: true,
        admin_token: Some(TOKEN.parse().expect("a long enough token")),
        // RTT samples come with the server's pings.
        ping_interval: Duration::from_millis(300),
        room_kinds: vec![
            "arena:capacity=8".parse().expect("a kind"),
            "duel:capacity=2".parse().expect("a kind"),
        ],
        ..Config::for_tests()
    })
    .await;
    let (a, in_a) = bots_of_kind(&server, "default", 1, 3).await;
    let (b, in_b) = bots_of_kind(&server, "arena", 4, 2).await;
    let (c, in_c) = bots_of_kind(&server, "duel", 6, 1).await;

    let shot = screenshot_path("monitor.png");
    let args = vec![
        format!("--url=http://{}/monitor", server.local_addr()),
        format!("--token={TOKEN}"),
        format!(r#"--rooms={{"{a}": 3, "{b}": 2, "{c}": 1}}"#),
        format!("--detail={a}"),
        format!("--names={}", names(1, 3)),
        format!("--close={b}"),
        format!("--screenshot={}", shot.display()),
        format!("--chromium={}", chromium.display()),
    ];
    run_driver("e2e/monitor.mjs", args).await;
    assert_screenshot(&shot);

    // The page's close ended room b's bots with the documented code.
    for outcome in common::close_all(in_b).await {
        assert!(
            matches!(
                outcome.last_error,
                Some(BotError::Closed {
                    code: close::ROOM_CLOSED,
                    ..
                })
            ),
            "a bot of the closed room ended with {:?}",
            outcome.last_error
        );
    }
    assert!(server.room(b).is_none(), "the closed room is gone");
    let m = server.metrics();
    assert_eq!(m.rooms_closed(RoomCloseReason::command), 1);
    // One refusal: the wrong token the page tried first.
    assert_eq!(m.admin_refusals(AdminRefusal::invalid), 1);
    // The other rooms played on.
    for (i, outcome) in common::close_all(in_a).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    for (i, outcome) in common::close_all(in_c).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    common::shutdown(server).await;
}
