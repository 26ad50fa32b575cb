//! What an operator sees of a live server and what it may do: each player's
//! round-trip time, and the admin API behind `--monitor` and `--admin-token`
//! (off by default; every JSON answer and action refused without the
//! credential, counted; with it: rooms, a room's players, kick, close, drain).

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use ticksync_protocol::messages::close;
use ticksync_server::metrics::AdminRefusal;
use ticksync_server::{Config, Server};
use ticksync_testkit::http::{Response, request};
use ticksync_testkit::raw::{Ended, RawClient};
use ticksync_testkit::{WAIT, within};

const TOKEN: &str = "test-admin-token-0123456789";

/// Pings (so RTT samples) every 100 ms.
fn fast_pings() -> Config {
    Config {
        ping_interval: Duration::from_millis(100),
        ..Config::for_tests()
    }
}

/// The monitor on, and a second room kind to matchmake into.
fn with_monitor() -> Config {
    Config {
        monitor: true,
        admin_token: Some(TOKEN.parse().expect("a long enough token")),
        room_kinds: vec!["duel:capacity=2".parse().expect("a kind")],
        ..fast_pings()
    }
}

/// Takes a seat in a room of `kind` as `name` (`POST /matchmake`, then its
/// URL with its seat token); returns the client and the room's id.
async fn join_kind(addr: SocketAddr, kind: &str, name: &str) -> (RawClient, String) {
    let body = format!(r#"{{"kind":"{kind}"}}"#);
    let r = request(addr, "POST", "/matchmake", &[], body.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seat = json(&r);
    let url = seat["url"].as_str().expect("a URL");
    let path = &url[url.find("/ws").expect("a /ws URL")..];
    let token = seat["token"].as_str().expect("a seat token");
    let (c, _) = RawClient::join_at(addr, path, name, Some(token)).await;
    (c, seat["room"].as_str().expect("a room id").to_string())
}

async fn admin(addr: SocketAddr, method: &str, path: &str) -> Response {
    let auth = format!("Bearer {TOKEN}");
    request(addr, method, path, &[("Authorization", &auth)], b"").await
}

fn json(r: &Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.body))
}

/// Reads snapshots (answering the server's pings) until the player's RTT shows
/// in its room's detail; returns it in µs.
async fn rtt_of(server: &Server, c: &mut RawClient, player: u32) -> u64 {
    let room = server.default_room().expect("the player's room");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        c.snapshot().await;
        let detail = room.detail().await.expect("the room answers");
        let me = detail.players.iter().find(|p| p.id == player);
        if let Some(rtt) = me.expect("the player is listed").rtt_us {
            return rtt;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no RTT within {WAIT:?}"
        );
    }
}

#[tokio::test]
async fn each_players_rtt_is_measured_with_the_servers_pings() {
    let server = support::start(fast_pings()).await;
    let (mut c, w) = RawClient::join(server.local_addr(), "rtt").await;
    let rtt = rtt_of(&server, &mut c, w.player_id.0).await;
    // Loopback; generous for a loaded machine, but a real measurement, not 0
    // or a clock difference.
    assert!((1..2_000_000).contains(&rtt), "rtt {rtt} µs");
    let text = server.metrics().encode();
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("ticksync_rtt_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the RTT histogram is exported");
    assert!(count >= 1, "RTT samples counted: {count}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_monitor_is_off_unless_enabled_and_then_needs_a_token() {
    let server = support::start(Config {
        admin_token: Some(TOKEN.parse().unwrap()),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    for (method, path) in [
        ("GET", "/monitor"),
        ("GET", "/monitor/state"),
        ("GET", "/rooms/0000000000000001"),
        ("POST", "/drain"),
    ] {
        let r = admin(addr, method, path).await;
        assert!(
            r.status == 404 || r.status == 405,
            "{method} {path} without --monitor: {}",
            r.status
        );
    }
    assert_eq!(request(addr, "GET", "/healthz", &[], b"").await.status, 200);
    server.shutdown().await;

    let no_token = Config {
        monitor: true,
        ..Config::for_tests()
    };
    let err = no_token.validate().expect_err("--monitor alone is refused");
    assert!(err.contains("--admin-token"), "{err}");
    assert!(Server::start(no_token).await.is_err());
    assert!(
        "short"
            .parse::<ticksync_server::monitor::token::AdminToken>()
            .is_err()
    );
}

#[tokio::test]
async fn without_the_admin_token_every_answer_and_action_is_refused_and_counted() {
    let server = support::start(with_monitor()).await;
    let addr = server.local_addr();
    let (mut c, w) = RawClient::join(addr, "victim").await;
    let room = server.default_room().expect("a room").id;
    let player = w.player_id.0;
    let requests = [
        ("GET", "/monitor/state".to_string()),
        ("GET", format!("/rooms/{room}")),
        ("POST", format!("/rooms/{room}/close")),
        ("POST", format!("/rooms/{room}/kick/{player}")),
        ("POST", "/drain".to_string()),
        // Refused before the route is looked at: nothing to learn.
        ("GET", "/rooms/0000000000000000".to_string()),
    ];
    let wrong = format!("Bearer {TOKEN}x");
    let basic = format!("Basic {TOKEN}");
    let credentials: [(&[(&str, &str)], AdminRefusal); 4] = [
        (&[], AdminRefusal::missing),
        (&[("Authorization", basic.as_str())], AdminRefusal::missing),
        (&[("Authorization", wrong.as_str())], AdminRefusal::invalid),
        (&[("Authorization", "Bearer ")], AdminRefusal::missing),
    ];
    for (method, path) in &requests {
        for (headers, _) in &credentials {
            let r = request(addr, method, path, headers, b"").await;
            assert_eq!(
                r.status, 401,
                "{method} {path} with {headers:?}: {}",
                r.body
            );
            assert_eq!(
                r.header("www-authenticate"),
                Some("Bearer realm=\"ticksync\"")
            );
            assert!(!r.body.contains(&room.to_string()), "{}", r.body);
        }
    }
    // `GET /rooms` is the public room list (matchmaking's), not the admin
    // API's: never refused for a credential, even with --monitor on.
    let list = request(addr, "GET", "/rooms", &[], b"").await;
    assert_eq!(list.status, 200, "GET /rooms is public: {}", list.body);
    assert!(list.body.contains(&room.to_string()), "{}", list.body);
    let n = requests.len() as u64;
    let m = server.metrics();
    assert_eq!(m.admin_refusals(AdminRefusal::missing), 3 * n);
    assert_eq!(m.admin_refusals(AdminRefusal::invalid), n);
    // Nothing happened: the room is open, the player plays, no drain.
    assert!(server.room(room).is_some());
    c.snapshot().await;
    assert_eq!(request(addr, "GET", "/healthz", &[], b"").await.status, 200);
    // The page itself holds no data: it loads without the token, framed by nobody.
    let page = request(addr, "GET", "/monitor", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("/monitor/app.js"));
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .is_some_and(|p| p.contains("frame-ancestors 'none'"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn with_the_token_the_api_lists_rooms_and_players_kicks_and_closes() {
    let server = support::start(with_monitor()).await;
    let addr = server.local_addr();
    let (mut a, wa) = RawClient::join(addr, "ada").await;
    let (mut b, wb) = RawClient::join(addr, "bob").await;
    let busy = server.default_room().expect("the players' room").id;
    // A third player in a room of another kind.
    let (mut c, duel) = join_kind(addr, "duel", "cyd").await;
    rtt_of(&server, &mut a, wa.player_id.0).await;

    let state = json(&admin(addr, "GET", "/monitor/state").await);
    let players_of = |id: String| {
        state["rooms"]
            .as_array()
            .expect("a list")
            .iter()
            .find(|r| r["id"] == id)
            .map(|r| r["players"].as_u64().expect("a count"))
    };
    assert_eq!(players_of(busy.to_string()), Some(2));
    assert_eq!(players_of(duel), Some(1));

    let detail = admin(addr, "GET", &format!("/rooms/{busy}")).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    let detail = json(&detail);
    assert_eq!(detail["kind"], "default");
    let names: Vec<&str> = detail["players"]
        .as_array()
        .expect("players")
        .iter()
        .map(|p| p["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"ada") && names.contains(&"bob"),
        "{names:?}"
    );
    let ada = detail["players"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "ada")
        .unwrap();
    assert!(ada["rtt_us"].as_u64().is_some_and(|us| us > 0), "{ada}");
    assert_eq!(ada["connected"], true);

    assert_eq!(state["status"], "ok");
    assert_eq!(state["players"], 3);
    assert_eq!(state["rooms"].as_array().map(Vec::len), Some(2));
    assert!(
        state["tick_threads"]
            .as_array()
            .is_some_and(|t| !t.is_empty())
    );
    assert!(
        state["reasons"]["disconnects"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x == "room_closed"))
    );

    // Kick bob: 4005. An unknown player or room is a 404, not an error.
    let kicked = admin(
        addr,
        "POST",
        &format!("/rooms/{busy}/kick/{}", wb.player_id.0),
    )
    .await;
    assert_eq!(kicked.status, 200, "{}", kicked.body);
    assert_eq!(b.until_closed().await.0, Ended::Closed(Some(close::KICKED)));
    let again = admin(
        addr,
        "POST",
        &format!("/rooms/{busy}/kick/{}", wb.player_id.0),
    )
    .await;
    assert_eq!(again.status, 404);
    let nowhere = admin(addr, "GET", "/rooms/0000000000000000").await;
    assert_eq!(nowhere.status, 404);
    assert_eq!(admin(addr, "GET", "/drain").await.status, 405);

    // Close the busy room: ada gets 4004, the other room plays on.
    let closed = admin(addr, "POST", &format!("/rooms/{busy}/close")).await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(
        a.until_closed().await.0,
        Ended::Closed(Some(close::ROOM_CLOSED))
    );
    assert!(server.room(busy).is_none());
    assert_eq!(
        admin(addr, "GET", &format!("/rooms/{busy}")).await.status,
        404
    );
    c.snapshot().await;
    assert_eq!(server.metrics().admin_refusals(AdminRefusal::missing), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn drain_on_the_admin_api_stops_admitting_then_the_owner_drains() {
    let server = support::start(with_monitor()).await;
    let addr = server.local_addr();
    let (mut c, _) = RawClient::join(addr, "last").await;
    // The binary waits on this, then drains as on SIGTERM and exits.
    let requested = tokio::spawn(async move {
        within(WAIT, "the drain request", server.drain_requested()).await;
        server
    });
    let r = admin(addr, "POST", "/drain").await;
    assert_eq!(r.status, 202, "{}", r.body);
    let server = requested.await.expect("drain waiter");
    // Nobody new gets in, and the operator sees the drain...
    let health = request(addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(health.status, 503);
    assert!(health.body.contains("draining"), "{}", health.body);
    assert_eq!(request(addr, "GET", "/ws", &[], b"").await.status, 503);
    assert_eq!(
        json(&admin(addr, "GET", "/monitor/state").await)["status"],
        "draining"
    );
    // ...while the player in plays on until the owner finishes the drain.
    c.snapshot().await;
    let shutdown = tokio::spawn(server.shutdown());
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::GOING_AWAY))
    );
    within(WAIT, "the shutdown", shutdown)
        .await
        .expect("shutdown task");
}
