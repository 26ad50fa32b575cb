//! Matchmaking over HTTP on the game port: `POST /matchmake` answers a room, a
//! URL and a seat token; the token seats its player once, in its room only;
//! every refusal has its status or close code; `GET /rooms` lists the rooms.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, Welcome};
use ticksync_server::Config;
use ticksync_server::auth::{self, AuthSecret};
use ticksync_server::config::IpList;
use ticksync_server::metrics::{ApiRoute, MatchmakeOutcome};
use ticksync_server::room::RoomId;
use ticksync_testkit::forge_seat_token;
use ticksync_testkit::http::{self, Response};
use ticksync_testkit::raw::{Ended, RawClient};

const SECRET: &str = "matchmake-test-secret-0123456789";

fn two_kinds() -> Config {
    Config {
        room_kinds: vec!["duel:capacity=2".parse().unwrap()],
        room_capacity: 8,
        ..Config::for_tests()
    }
}

async fn post(addr: SocketAddr, body: &str, headers: &[(&str, &str)]) -> Response {
    http::request(addr, "POST", "/matchmake", headers, body.as_bytes()).await
}

/// A 200 answer's JSON.
async fn matchmake(addr: SocketAddr, body: &str, headers: &[(&str, &str)]) -> Value {
    let r = post(addr, body, headers).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    serde_json::from_str(&r.body).expect("JSON")
}

fn path_of(url: &str) -> &str {
    let rest = url.strip_prefix("ws://").expect("a ws:// URL");
    &rest[rest.find('/').expect("a path")..]
}

/// Connects to `url` (a matchmake answer's) and says `Hello` with `token`.
async fn hello(addr: SocketAddr, url: &str, name: Option<&str>, token: &str) -> RawClient {
    let mut c = RawClient::connect_path(addr, path_of(url), Some(ticksync_protocol::SUBPROTOCOL))
        .await
        .expect("upgrade");
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.map(str::to_string),
        auth_token: Some(token.to_string()),
        ..Hello::default()
    }))
    .await;
    c
}

async fn seated(addr: SocketAddr, seat: &Value, name: Option<&str>) -> (RawClient, Welcome) {
    let mut c = hello(addr, str_of(&seat["url"]), name, str_of(&seat["token"])).await;
    let w = c.welcome().await;
    (c, w)
}

/// Asserts the connection is refused with `Error AuthFailed` whose text
/// contains `why`, then close 1008.
async fn refused(mut c: RawClient, why: &str) {
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    let error = error.expect("an Error before the close");
    assert_eq!(error.code, ErrorCode::AuthFailed);
    assert!(
        error.message.contains(why),
        "{:?} lacks {why:?}",
        error.message
    );
}

fn str_of(v: &Value) -> &str {
    v.as_str().expect("a string")
}

fn room_of(seat: &Value) -> RoomId {
    str_of(&seat["room"]).parse().expect("a room id")
}

#[tokio::test]
async fn a_matchmade_seat_joins_its_room_and_rooms_are_listed() {
    let server = support::start(two_kinds()).await;
    let addr = server.local_addr();
    let a = matchmake(addr, r#"{"kind":"duel"}"#, &[]).await;
    let room = room_of(&a);
    assert_eq!(str_of(&a["kind"]), "duel");
    assert_eq!(str_of(&a["url"]), format!("ws://{addr}/ws?room={room}"));
    assert!(a["expires_in_ms"].as_u64().unwrap() <= 10_000);
    // The second duellist gets the same room; the third a new one.
    let b = matchmake(addr, r#"{"kind":"duel"}"#, &[]).await;
    let c = matchmake(addr, r#"{"kind":"duel"}"#, &[]).await;
    assert_eq!(b["room"], a["room"]);
    assert_ne!(c["room"], a["room"]);
    // No body: the default kind.
    let d = matchmake(addr, "", &[]).await;
    assert_eq!(str_of(&d["kind"]), "default");

    let (_pa, wa) = seated(addr, &a, Some("ada")).await;
    let (_pb, wb) = seated(addr, &b, Some("bob")).await;
    assert_ne!(wa.player_id, wb.player_id);
    let handle = server.room(room).expect("the room is open");
    let detail = handle.detail().await.unwrap();
    let mut names: Vec<_> = detail
        .players
        .iter()
        .filter_map(|p| p.name.clone())
        .collect();
    names.sort();
    assert_eq!(names, ["ada", "bob"]);

    let r = http::request(addr, "GET", "/rooms", &[], b"").await;
    assert_eq!(r.status, 200);
    let rooms: Vec<Value> = serde_json::from_str(&r.body).unwrap();
    assert_eq!(rooms.len(), 3);
    let listed = rooms.iter().find(|r| r["id"] == a["room"]).unwrap();
    assert_eq!(
        (&listed["kind"], &listed["players"], &listed["capacity"]),
        (&Value::from("duel"), &Value::from(2), &Value::from(2))
    );
    assert!(listed.get("stats").is_none(), "internals are not public");
    assert_eq!(server.metrics().matchmakes(MatchmakeOutcome::ok), 4);
    server.shutdown().await;
}

#[tokio::test]
async fn forged_reused_foreign_and_missing_seat_tokens_are_refused() {
    let server = support::start(two_kinds()).await;
    let addr = server.local_addr();
    let a = matchmake(addr, r#"{"kind":"duel"}"#, &[]).await;
    let other = matchmake(addr, r#"{"kind":"default"}"#, &[]).await;
    let (url, token) = (str_of(&a["url"]), str_of(&a["token"]));

    let forged = forge_seat_token(token);
    refused(hello(addr, url, None, &forged).await, "invalid signature").await;
    // Presented at another room's URL.
    refused(
        hello(addr, str_of(&other["url"]), None, token).await,
        "another room",
    )
    .await;
    // A named room without a seat token.
    let plain = RawClient::connect_path(addr, path_of(url), Some(ticksync_protocol::SUBPROTOCOL))
        .await
        .unwrap();
    let mut plain = plain;
    plain
        .send(&ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            ..Hello::default()
        }))
        .await;
    refused(plain, "seat token").await;
    // Used once, then refused.
    let (_first, _) = seated(addr, &a, None).await;
    refused(hello(addr, url, None, token).await, "already used").await;
    // A plain /ws client still plays, in the default kind.
    let (_c, _w) = RawClient::join(addr, "plain").await;

    // Counted when the refused connection's task ends, which may be just
    // after the client saw the close.
    support::eventually(|| {
        server
            .metrics()
            .encode()
            .contains("ticksync_disconnects_total{reason=\"seat_refused\"} 4")
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn an_unused_reservation_expires_and_frees_its_seat() {
    let server = support::start(Config {
        seat_timeout: Duration::from_millis(300),
        ..two_kinds()
    })
    .await;
    let addr = server.local_addr();
    let a = matchmake(addr, r#"{"kind":"duel"}"#, &[]).await;
    let room = room_of(&a);
    let handle = server.room(room).unwrap();
    assert_eq!(handle.info().reserved, 1);
    support::eventually(|| handle.info().reserved == 0).await;
    refused(
        hello(addr, str_of(&a["url"]), None, str_of(&a["token"])).await,
        "expired",
    )
    .await;
    let text = server.metrics().encode();
    assert!(
        text.contains("ticksync_reservations_expired_total 1"),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_requests_get_their_status() {
    let server = support::start(Config {
        max_rooms: 1,
        room_capacity: 1,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    for (body, status, text) in [
        (r#"{"kind":"chess"}"#, 400, "unknown room kind"),
        ("{kind", 400, "JSON"),
        (r#"{"kind":7}"#, 400, "JSON"),
    ] {
        let r = post(addr, body, &[]).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.body.contains(text), "{body}: {}", r.body);
    }
    let r = post(addr, &" ".repeat(2000), &[]).await;
    assert_eq!(r.status, 413);
    let r = http::request(addr, "GET", "/matchmake", &[], b"").await;
    assert_eq!((r.status, r.header("allow")), (405, Some("POST, OPTIONS")));
    let r = http::request(addr, "OPTIONS", "/matchmake", &[], b"").await;
    assert_eq!(r.status, 204);
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("Authorization")
    );
    let r = http::send_raw(
        addr,
        b"POST /matchmake HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(r.status, 411);
    // The one seat of the one room, then full.
    matchmake(addr, "", &[]).await;
    let r = post(addr, "", &[]).await;
    assert_eq!((r.status, r.header("retry-after")), (503, Some("1")));
    let m = server.metrics();
    assert_eq!(
        [
            MatchmakeOutcome::ok,
            MatchmakeOutcome::bad_request,
            MatchmakeOutcome::too_large,
            MatchmakeOutcome::full,
        ]
        .map(|o| m.matchmakes(o)),
        [1, 3, 2, 1]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn with_an_auth_secret_the_seat_carries_the_callers_identity() {
    let secret: AuthSecret = SECRET.parse().unwrap();
    let server = support::start(Config {
        auth_secret: Some(secret.clone()),
        ..two_kinds()
    })
    .await;
    let addr = server.local_addr();
    let r = post(addr, "", &[]).await;
    assert_eq!(
        (r.status, r.header("www-authenticate")),
        (401, Some("Bearer"))
    );
    let r = post(addr, "", &[("Authorization", "Bearer nope.nope")]).await;
    assert_eq!(r.status, 401);
    let expired = auth::mint(&secret, "ada", 1).unwrap();
    let r = post(addr, "", &[("Authorization", &format!("Bearer {expired}"))]).await;
    assert!(r.status == 401 && r.body.contains("expired"), "{}", r.body);

    let join = auth::mint(&secret, "ada", auth::unix_now() + 60).unwrap();
    let bearer = format!("Bearer {join}");
    let a = matchmake(addr, "", &[("Authorization", &bearer)]).await;
    // Another name than the seat's identity is refused...
    refused(
        hello(addr, str_of(&a["url"]), Some("eve"), str_of(&a["token"])).await,
        "identity",
    )
    .await;
    // ...and that attempt did not use the seat: no name joins as the identity.
    let (_c, _) = seated(addr, &a, None).await;
    let room = room_of(&a);
    let detail = server.room(room).unwrap().detail().await.unwrap();
    assert_eq!(detail.players[0].name.as_deref(), Some("ada"));
    assert_eq!(
        server.metrics().matchmakes(MatchmakeOutcome::unauthorized),
        3
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_matchmakes_for_the_last_seats_never_overfill() {
    // 2 rooms of 4 at most: 8 seats for 100 callers, all at once.
    let server = support::start(Config {
        max_rooms: 2,
        room_capacity: 4,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let calls: Vec<_> = (0..100)
        .map(|_| tokio::spawn(async move { post(addr, "", &[]).await }))
        .collect();
    let mut per_room = std::collections::HashMap::new();
    let mut full = 0;
    for call in calls {
        let r = call.await.unwrap();
        match r.status {
            200 => {
                let seat: Value = serde_json::from_str(&r.body).unwrap();
                *per_room.entry(room_of(&seat)).or_insert(0) += 1;
            }
            503 => full += 1,
            s => panic!("status {s}: {}", r.body),
        }
    }
    assert_eq!(full, 92);
    assert_eq!(per_room.len(), 2);
    assert!(per_room.values().all(|&n| n == 4), "{per_room:?}");
    for room in server.rooms() {
        assert_eq!((room.players + room.reserved, room.capacity), (4, 4));
    }
    server.shutdown().await;
}

const FLOODER: [u8; 4] = [127, 0, 0, 1];
const NEIGHBOUR: [u8; 4] = [127, 0, 0, 2];

/// `POST /matchmake` from `ip`.
async fn post_from(ip: [u8; 4], addr: SocketAddr) -> Response {
    http::request_from(ip.into(), addr, "POST", "/matchmake", &[], b"").await
}

/// Per-address limits on, for every address (loopback is exempt by default).
fn limited(rate: f64, burst: u32, seats: u32) -> Config {
    Config {
        ip_limit_exempt: IpList::default(),
        matchmake_rate: Some(rate),
        matchmake_burst: Some(burst),
        seats_per_ip: Some(seats),
        max_players: 40,
        ..two_kinds()
    }
}

fn retry_after(r: &Response) -> u64 {
    r.header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in whole seconds")
}

#[tokio::test]
async fn a_matchmake_flood_from_one_address_gets_429_and_others_are_served() {
    // A burst of 5, then one request every 10 s.
    let server = support::start(limited(0.1, 5, 1000)).await;
    let addr = server.local_addr();
    let mut statuses = Vec::new();
    for _ in 0..30 {
        statuses.push(post_from(FLOODER, addr).await);
    }
    assert!(statuses[..5].iter().all(|r| r.status == 200));
    for r in &statuses[5..] {
        assert_eq!(r.status, 429, "{}", r.body);
        assert!((1..=10).contains(&retry_after(r)), "{:?}", r.headers);
        assert_eq!(r.header("access-control-allow-origin"), Some("*"));
        assert!(
            r.body.contains("too many matchmaking requests"),
            "{}",
            r.body
        );
    }
    // The flood took 5 seats, no more; the neighbour is served in full.
    assert_eq!(server.rooms().iter().map(|r| r.reserved).sum::<u32>(), 5);
    for _ in 0..5 {
        assert_eq!(post_from(NEIGHBOUR, addr).await.status, 200);
    }
    // GET /rooms has a bucket of its own: the flooder may still list rooms,
    // until it floods that too.
    let rooms = |ip: [u8; 4]| http::request_from(ip.into(), addr, "GET", "/rooms", &[], b"");
    for _ in 0..5 {
        assert_eq!(rooms(FLOODER).await.status, 200);
    }
    let r = rooms(FLOODER).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(retry_after(&r) >= 1);
    assert_eq!(rooms(NEIGHBOUR).await.status, 200);

    let m = server.metrics();
    assert_eq!(m.matchmakes(MatchmakeOutcome::rate_limited), 25);
    assert_eq!(m.matchmakes(MatchmakeOutcome::ok), 10);
    assert_eq!(m.api_limits_hit(ApiRoute::matchmake), 25);
    assert_eq!(m.api_limits_hit(ApiRoute::rooms), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_hold_more_than_its_seats() {
    // Requests are not the limit here; seats are: 4 per address within one
    // seat timeout, in a server of 40 seats.
    let server = support::start(Config {
        seat_timeout: Duration::from_millis(1500),
        ..limited(1000.0, 1000, 4)
    })
    .await;
    let addr = server.local_addr();
    let mut held = Vec::new();
    for _ in 0..4 {
        let r = post_from(FLOODER, addr).await;
        assert_eq!(r.status, 200, "{}", r.body);
        held.push(serde_json::from_str::<Value>(&r.body).unwrap());
    }
    for _ in 0..20 {
        let r = post_from(FLOODER, addr).await;
        assert_eq!(r.status, 429, "{}", r.body);
        assert!(r.body.contains("holds the most seats"), "{}", r.body);
        assert!((1..=2).contains(&retry_after(&r)), "{:?}", r.headers);
    }
    // Refused requests reserved nothing: the flooder holds 4 of 40 seats, and
    // the neighbour gets its own 4 (a matchmake that reserves nothing, here bad
    // JSON, counts no seat).
    assert_eq!(server.rooms().iter().map(|r| r.reserved).sum::<u32>(), 4);
    let bad = http::request_from(NEIGHBOUR.into(), addr, "POST", "/matchmake", &[], b"{").await;
    assert_eq!(bad.status, 400);
    for _ in 0..4 {
        assert_eq!(post_from(NEIGHBOUR, addr).await.status, 200);
    }
    assert_eq!(post_from(NEIGHBOUR, addr).await.status, 429);
    assert_eq!(server.rooms().iter().map(|r| r.reserved).sum::<u32>(), 8);
    assert_eq!(
        server.metrics().matchmakes(MatchmakeOutcome::seats_held),
        21
    );
    // The seats age out with the seat timeout (unclaimed, they are freed
    // too): the flooder may reserve again.
    support::eventually(|| server.rooms().iter().all(|r| r.reserved == 0)).await;
    assert_eq!(post_from(FLOODER, addr).await.status, 200);
    drop(held);
    server.shutdown().await;
}
