//! The fleet directory against a real `redis-server`: three in-process members
//! share it. Seats are reserved atomically across members (never past a
//! room's capacity), a reserved seat is claimed once on the room's member, a
//! member that stops heartbeating is forgotten within its TTL, a draining
//! member gets no seats, a Redis restart costs no tick and is healed by the
//! heartbeats, and a room everyone has left is not offered again (the same
//! rule as a single process).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::raw::{Ended, RawClient};
use common::services::RedisServer;
use common::{WAIT, eventually, within};
use ticksync_bot::{BotError, BotHandle, BotOptions};
use ticksync_protocol::{ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, SUBPROTOCOL};
use ticksync_server::auth::{AuthSecret, unix_now_ms};
use ticksync_server::fleet::{Fleet, FleetConfig, RedisDirectory};
use ticksync_server::matchmaker::seat::{self, SeatClaims, SeatKey};
use ticksync_server::matchmaker::{Claim, Directory, DirectoryError, Reserved, matchmake};
use ticksync_server::{Config, Server};

const SECRET: &str = "fleet-test-secret-0123456789";
/// Seats per room in these tests.
const CAPACITY: u32 = 8;
/// How long a reserved seat is held.
const HOLD: Duration = Duration::from_secs(10);

fn member_config(redis: &RedisServer, id: &str, ttl: Duration) -> Config {
    Config {
        room_capacity: CAPACITY,
        fleet: FleetConfig {
            redis: Some(redis.url()),
            member_id: Some(id.to_string()),
            public_url: None,
            fleet_secret: Some(SECRET.parse().expect("secret")),
            fleet_ttl: ttl,
            fleet_create_timeout: Duration::from_secs(2),
            redis_prefix: "ticksync:".into(),
        },
        ..Config::for_tests()
    }
}

async fn start_members(redis: &RedisServer, n: usize, ttl: Duration) -> Vec<Arc<Server>> {
    let mut members = Vec::new();
    for i in 1..=n {
        members.push(common::start_server(member_config(redis, &format!("m{i}"), ttl)).await);
    }
    members
}

fn fleet(server: &Server) -> &Arc<Fleet> {
    server.fleet().expect("started with --redis")
}

fn directory(server: &Server) -> RedisDirectory {
    RedisDirectory::new(fleet(server).clone())
}

async fn matchmake_on(server: &Server) -> Result<Reserved, DirectoryError> {
    let dir = directory(server);
    matchmake(&dir, "default", None, unix_now_ms(), HOLD).await
}

/// The seat token for the seat `r` reserved, signed with the fleet's secret,
/// valid until `expires_ms`.
fn seat_token(r: &Reserved, expires_ms: u64) -> String {
    let key = SeatKey::new(Some(&SECRET.parse::<AuthSecret>().expect("secret")));
    seat::mint(
        &key,
        &SeatClaims {
            room: r.listing.room,
            seat: r.reservation.seat,
            expires_ms,
            identity: None,
        },
    )
}

/// A bot that joins the seat `r` reserved, with its signed seat token.
async fn join_seat(r: &Reserved, n: u64) -> BotHandle {
    let token = seat_token(r, r.reservation.expires_ms);
    let mut opts = BotOptions::new(format!("{}/ws?room={}", r.listing.endpoint, r.listing.room));
    opts.auth_token = Some(token);
    opts.name = Some(format!("seat-{n}"));
    opts.seed = n;
    opts.connect_timeout = Duration::from_secs(10);
    within(WAIT, "a bot to join its seat", BotHandle::connect(opts))
        .await
        .unwrap_or_else(|e| panic!("bot {n} could not take its seat: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_matchmakes_on_three_members_never_pass_a_room_s_capacity() {
    let redis = RedisServer::start();
    let members = start_members(&redis, 3, Duration::from_secs(5)).await;
    for m in &members {
        eventually(WAIT, "every member registered", || async {
            fleet(m).members().await.is_ok_and(|l| l.len() == 3)
        })
        .await;
    }

    // 100 matchmakes at once, spread over the three members.
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..100 {
        let dir = directory(&members[i % 3]);
        tasks.spawn(async move { matchmake(&dir, "default", None, unix_now_ms(), HOLD).await });
    }
    let mut reserved = Vec::new();
    while let Some(r) = tasks.join_next().await {
        reserved.push(r.expect("task").expect("a seat for every matchmake"));
    }
    let mut per_room: HashMap<_, u32> = HashMap::new();
    for r in &reserved {
        *per_room.entry(r.listing.room).or_default() += 1;
    }
    for (room, n) in &per_room {
        assert!(
            *n <= CAPACITY,
            "room {room} got {n} seats for capacity {CAPACITY}"
        );
    }
    let min_rooms = 100u32.div_ceil(CAPACITY) as usize;
    assert!(
        per_room.len() >= min_rooms && per_room.len() <= min_rooms + 3,
        "{} rooms for 100 seats of {CAPACITY}",
        per_room.len()
    );
    // The directory agrees: nothing over capacity, every seat counted.
    let rooms = fleet(&members[0]).rooms().await.expect("fleet rooms");
    let taken: u32 = rooms.iter().map(|r| r.info.players + r.info.reserved).sum();
    assert_eq!(taken, 100, "{rooms:#?}");
    for r in &rooms {
        assert!(r.info.players + r.info.reserved <= r.info.capacity, "{r:?}");
        assert!(["m1", "m2", "m3"].contains(&r.member.as_str()), "{r:?}");
    }

    // Seats are taken on the room's member, once: a second claim is refused.
    let r = &reserved[0];
    let bot = join_seat(r, 1).await;
    let owner = members
        .iter()
        .find(|m| m.room(r.listing.room).is_some())
        .expect("the room runs on one member");
    // The Welcome reaches the bot before the room publishes its player count at
    // the end of that tick: wait for the count rather than read it once.
    let room = owner.room(r.listing.room).expect("room");
    eventually(WAIT, "the room to count the seated bot", || async {
        room.players() == 1
    })
    .await;
    let again = directory(owner)
        .claim(r.listing.room, r.reservation.seat, unix_now_ms())
        .await
        .expect("redis answers");
    assert_eq!(
        again,
        Claim::Unknown,
        "a claimed seat cannot be claimed again"
    );
    within(WAIT, "the bot to close", bot.close()).await;

    for m in members {
        common::shutdown(m).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_heartbeating_is_forgotten_within_its_ttl() {
    let redis = RedisServer::start();
    let ttl = Duration::from_secs(2);
    let mut members = start_members(&redis, 2, ttl).await;
    // A room on m2 with a seat reserved.
    let on_m2 = matchmake_on(&members[1]).await.expect("a seat");
    assert!(
        members[1].room(on_m2.listing.room).is_some(),
        "m2 opened it (least loaded, itself first)"
    );
    let survivor = members.remove(0);
    let dead = members.remove(0);
    // Dropped without a shutdown: no drain, no goodbye, its heartbeat stops,
    // as after kill -9.
    let stopped = Instant::now();
    drop(dead);
    eventually(WAIT, "m2 to leave the directory", || async {
        fleet(&survivor)
            .members()
            .await
            .is_ok_and(|l| l.iter().all(|m| m.id != "m2"))
    })
    .await;
    let gone_after = stopped.elapsed();
    assert!(
        gone_after <= ttl + Duration::from_millis(500),
        "forgotten after {gone_after:?}, TTL {ttl:?}"
    );
    let rooms = fleet(&survivor).rooms().await.expect("rooms");
    assert!(rooms.iter().all(|r| r.member == "m1"), "{rooms:?}");
    // Nothing it held is handed out: its room takes no reservation.
    let dir = directory(&survivor);
    let r = matchmake(&dir, "default", None, unix_now_ms(), HOLD)
        .await
        .expect("a seat on m1");
    assert_ne!(r.listing.room, on_m2.listing.room);
    assert!(survivor.room(r.listing.room).is_some());
    assert!(
        !dir.reserve(&on_m2.listing, &r.reservation)
            .await
            .expect("redis")
    );
    common::shutdown(survivor).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draining_member_gets_no_seats_and_leaves_on_shutdown() {
    let redis = RedisServer::start();
    let mut members = start_members(&redis, 2, Duration::from_secs(5)).await;
    let on_m2 = matchmake_on(&members[1]).await.expect("a seat");
    let m2 = members.remove(1);
    let m1 = members.remove(0);
    let bot = join_seat(&on_m2, 7).await;
    let shutdown = tokio::spawn(async move { common::shutdown(m2).await });
    eventually(WAIT, "m2 marked draining", || async {
        fleet(&m1)
            .members()
            .await
            .is_ok_and(|l| l.iter().all(|m| m.id != "m2" || m.draining))
    })
    .await;
    // A new matchmake lands on m1, never in m2's room.
    let r = matchmake_on(&m1).await.expect("a seat on m1");
    assert!(m1.room(r.listing.room).is_some());
    let outcome = within(WAIT, "the bot to be closed by the drain", bot.join()).await;
    assert!(
        matches!(
            outcome.last_error,
            Some(BotError::Closed { code: 1001, .. })
        ),
        "the drain closes players with 1001: {outcome:?}"
    );
    within(WAIT, "m2 to shut down", shutdown)
        .await
        .expect("shutdown");
    let left = fleet(&m1).members().await.expect("members");
    assert!(
        left.iter().all(|m| m.id != "m2"),
        "m2 left the directory at once: {left:?}"
    );
    common::shutdown(m1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_costs_no_tick_and_the_members_register_again() {
    let mut redis = RedisServer::start();
    let members = start_members(&redis, 2, Duration::from_secs(5)).await;
    let r = matchmake_on(&members[0]).await.expect("a seat");
    let bot = join_seat(&r, 3).await;
    let owner = members
        .iter()
        .find(|m| m.room(r.listing.room).is_some())
        .expect("owner")
        .clone();
    let room = owner.room(r.listing.room).expect("room");
    let before = room.info();

    redis.kill();
    let dir = directory(&members[0]);
    let down = matchmake(&dir, "default", None, unix_now_ms(), HOLD).await;
    assert!(
        matches!(down, Err(DirectoryError::Unavailable(_))),
        "{down:?}"
    );
    // The room ticks on without Redis.
    let tick = room.tick();
    eventually(WAIT, "the room to tick on while Redis is down", || async {
        room.tick().0 >= tick.0 + 30
    })
    .await;

    redis.restart();
    let back = Instant::now();
    eventually(
        Duration::from_secs(10),
        "matchmaking to work again",
        || async {
            matchmake(&dir, "default", None, unix_now_ms(), HOLD)
                .await
                .is_ok()
        },
    )
    .await;
    eventually(
        Duration::from_secs(10),
        "both members registered again",
        || async {
            fleet(&members[1])
                .members()
                .await
                .is_ok_and(|l| l.len() == 2)
        },
    )
    .await;
    eventually(Duration::from_secs(10), "the room listed again", || async {
        fleet(&members[1])
            .rooms()
            .await
            .is_ok_and(|l| l.iter().any(|x| x.info.id == r.listing.room))
    })
    .await;
    eprintln!(
        "matchmaking back {:?} after the Redis restart",
        back.elapsed()
    );
    // A tick thread that waited on Redis would miss a whole timeout's worth of
    // ticks (the client's 1 s = 30 ticks) at the kill and again at the restart;
    // a loaded 2-core machine can cost a tick or two through scheduling alone.
    let after = room.info();
    let missed = after.stats.missed_ticks - before.stats.missed_ticks;
    assert!(
        missed <= 2,
        "the room missed {missed} ticks during the Redis restart"
    );
    assert!(view_connected(&bot).await, "the player stayed connected");
    within(WAIT, "the bot to close", bot.close()).await;
    drop((room, owner));
    for m in members {
        common::shutdown(m).await;
    }
}

async fn view_connected(bot: &BotHandle) -> bool {
    common::view(bot).await.connected
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seat_that_runs_out_while_being_claimed_is_refused_as_expired_not_as_used() {
    let redis = RedisServer::start();
    let members = start_members(&redis, 1, Duration::from_secs(5)).await;
    let m = &members[0];
    let dir = directory(m);
    let hold = Duration::from_millis(300);
    let reserve = || async { matchmake(&dir, "default", None, unix_now_ms(), hold).await };
    let (a, b) = (
        reserve().await.expect("a seat"),
        reserve().await.expect("a seat"),
    );
    // Redis's clock runs the reservations out; their keys stay a while, so a
    // late claim can tell "expired" from "already used".
    tokio::time::sleep(hold * 2).await;

    // A player whose token passed its check (it is signed valid for longer)
    // while the reservation ran out before the claim reached Redis: that is
    // what a claim queued behind other writes meets.
    let path = format!("/ws?room={}", b.listing.room);
    let mut c = RawClient::connect_path(m.local_addr(), &path, Some(SUBPROTOCOL))
        .await
        .expect("connect");
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        auth_token: Some(seat_token(&b, unix_now_ms() + 60_000)),
        ..Hello::default()
    }))
    .await;
    let (ended, error) = c.until_closed().await;
    let error = error.expect("an Error before the close");
    assert_eq!(error.code, ErrorCode::AuthFailed, "{error:?}");
    assert_eq!(
        error.message,
        "the seat token expired while its seat was being claimed: matchmake again"
    );
    assert_eq!(ended, Ended::Closed(Some(1008)));

    // The directory says so too, with a clock that still believed in the seat.
    let claim = |at| dir.claim(a.listing.room, a.reservation.seat, at);
    assert_eq!(
        claim(a.reservation.expires_ms - 1).await,
        Ok(Claim::Expired)
    );
    assert_eq!(
        claim(a.reservation.expires_ms - 1).await,
        Ok(Claim::Unknown),
        "gone once told"
    );
    // No seat leaked: neither reservation holds one, here or in Redis.
    assert_eq!(m.room(b.listing.room).map(|r| r.players()), Some(0));
    eventually(WAIT, "Redis to count no seat in the room", || async {
        let rooms = fleet(m).rooms().await.expect("fleet rooms");
        rooms
            .iter()
            .any(|r| r.info.id == b.listing.room && r.info.players + r.info.reserved == 0)
    })
    .await;
    common::shutdown(members.into_iter().next().expect("the member")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_room_everyone_has_left_is_not_offered_again() {
    let redis = RedisServer::start();
    let members = start_members(&redis, 1, Duration::from_secs(5)).await;
    let m = &members[0];
    // A match: one player takes the seat, plays, and leaves.
    let first = matchmake_on(m).await.expect("a seat");
    let bot = join_seat(&first, 11).await;
    let room = m.room(first.listing.room).expect("the room runs here");
    eventually(WAIT, "the room to count the player", || async {
        room.players() == 1
    })
    .await;
    within(WAIT, "the bot to leave", bot.close()).await;
    eventually(WAIT, "the room to be empty", || async {
        room.seats.taken() == 0
    })
    .await;

    // The next player gets a fresh room, as from a single process
    // (`policy::matchmake_order`): the fleet-wide listing skips the empty
    // room, and so does the member asked to open one (which used to reserve
    // in its own emptiest room, refilling a match that was over).
    let next = matchmake_on(m).await.expect("a seat");
    assert_ne!(
        next.listing.room, first.listing.room,
        "a room everyone has left was offered again"
    );
    assert!(m.room(next.listing.room).is_some());
    // ... and once its player is on the way, that room is shared.
    let third = matchmake_on(m).await.expect("a seat");
    assert_eq!(third.listing.room, next.listing.room);
    // The empty room stays open (it closes at --room-idle-timeout), unoffered.
    assert!(m.room(first.listing.room).is_some());
    drop(room);
    common::shutdown(members.into_iter().next().expect("the member")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_match_on_another_member_is_not_offered() {
    let redis = RedisServer::start();
    let mut members = Vec::new();
    for id in ["m1", "m2"] {
        let config = Config {
            room_kinds: vec!["duel:capacity=2,lock=full".parse().expect("kind")],
            ..member_config(&redis, id, Duration::from_secs(5))
        };
        members.push(common::start_server(config).await);
    }
    let duel = |m: &Server| {
        let dir = directory(m);
        async move { matchmake(&dir, "duel", None, unix_now_ms(), HOLD).await }
    };
    // A duel on m2, both players in: the match is locked.
    let (a, b) = (
        duel(&members[1]).await.expect("a seat"),
        duel(&members[1]).await.expect("a seat"),
    );
    assert_eq!(a.listing.room, b.listing.room);
    let room = members[1].room(a.listing.room).expect("on m2");
    let (bot_a, bot_b) = (join_seat(&a, 21).await, join_seat(&b, 22).await);
    eventually(WAIT, "both players in", || async { room.players() == 2 }).await;
    assert!(room.seats.is_locked());
    // One leaves; m2's heartbeat tells the directory (one seat taken, locked).
    within(WAIT, "a player to leave", bot_a.close()).await;
    eventually(WAIT, "the directory to see the free seat", || async {
        fleet(&members[0]).rooms().await.is_ok_and(|rooms| {
            rooms
                .iter()
                .any(|r| r.info.id == a.listing.room && r.info.players == 1 && r.info.locked)
        })
    })
    .await;
    // `GET /rooms` on any member says so.
    let (status, body) = common::attack::http_get(members[0].local_addr(), "/rooms").await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&body).expect("a JSON array");
    let entry = listed
        .iter()
        .find(|r| r["id"] == a.listing.room.to_string().as_str())
        .unwrap_or_else(|| panic!("the duel in {body}"));
    assert_eq!(entry["locked"], true, "{entry}");
    // A matchmake on m1 does not refill it: the match is over for newcomers.
    let next = duel(&members[0]).await.expect("a seat");
    assert_ne!(next.listing.room, a.listing.room);
    assert!(
        !directory(&members[0])
            .reserve(&a.listing, &next.reservation)
            .await
            .expect("redis"),
        "Redis refuses a seat in a locked room"
    );
    within(WAIT, "the other player to leave", bot_b.close()).await;
    drop(room);
    for m in members {
        common::shutdown(m).await;
    }
}
