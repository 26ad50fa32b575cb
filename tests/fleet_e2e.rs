//! A fleet of real processes end to end: three `ticksync-server` members, a
//! `redis-server` and nginx (deploy/nginx/ticksync.conf), all on 127.0.0.1.
//! Players (bots with `--matchmake --reconnect`) matchmake with `POST
//! /matchmake` through nginx, connect through
//! nginx to the member the answer names and play with 0 desyncs, never past a
//! room's capacity; forged and reused seat tokens are refused through the
//! proxy. Then one member is killed with SIGKILL: its bots find no resume
//! can work and matchmake again by themselves, playing again on
//! the others within 10 s, the directory forgets it within its TTL and no seat
//! leaks. Then Redis restarts: no room misses a tick and matchmaking is back
//! within 10 s.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::fleet::{FleetProcesses, Seat, matchmake, metric, rooms};
use common::raw::{Ended, RawClient};
use common::{WAIT, within};
use ticksync_bot::{Backoff, BotHandle, BotOptions, Matchmaking};
use ticksync_protocol::{ClientMsg, ErrorCode, Hello, PROTOCOL_VERSION, SUBPROTOCOL};
use ticksync_testkit::forge_seat_token;

/// Players in the suite's run; `TICKSYNC_FLEET_PLAYERS` sets another number
/// for a load run (docs/SCALING.md: 300).
const PLAYERS: u64 = 24;
/// Seats per room: 24 players fill at least 4 rooms, spread over the members.
const CAPACITY: u64 = 6;
/// The members' `--fleet-ttl`.
const TTL: Duration = Duration::from_secs(3);
/// How long players of a killed member, or matchmaking after a Redis restart,
/// may take to be back.
const BACK_WITHIN: Duration = Duration::from_secs(10);

/// A player: the bot playing it and the room it plays in.
struct Player {
    n: u64,
    room: String,
    bot: BotHandle,
}

/// A bot that matchmakes through nginx by itself (`--matchmake`) and, with
/// `--reconnect`, resumes where a resume can work and matchmakes again where
/// it cannot. Tried again while its first matchmake is refused (503).
async fn join(nginx: SocketAddr, n: u64) -> Player {
    within(WAIT, "a player to matchmake and join", async {
        loop {
            let mut opts = BotOptions::new(format!("ws://{nginx}/ws"));
            opts.matchmake = Some(Matchmaking::default());
            opts.reconnect = Some(Backoff {
                min: Duration::from_millis(100),
                max: Duration::from_secs(1),
            });
            opts.name = Some(format!("fleet-{n}"));
            opts.seed = n;
            opts.connect_timeout = Duration::from_secs(5);
            match BotHandle::connect(opts).await {
                Ok(bot) => {
                    let room = common::view(&bot)
                        .await
                        .room
                        .expect("a matchmade bot's room");
                    return Player { n, room, bot };
                }
                Err(e) => {
                    eprintln!("player {n}: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    })
    .await
}

/// Room id -> member, from `GET /rooms` through nginx.
async fn room_members(nginx: SocketAddr) -> BTreeMap<String, String> {
    rooms(nginx)
        .await
        .into_iter()
        .map(|r| (r.id, r.member))
        .collect()
}

/// Joins players `ns` concurrently, one more every 50 ms (as bots ramp up;
/// a debug member matchmakes some 25 players a second on this machine).
async fn join_all(nginx: SocketAddr, ns: impl Iterator<Item = u64>) -> Vec<Player> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, n) in ns.enumerate() {
        let ramp = Duration::from_millis(50) * i as u32;
        tasks.spawn(async move {
            tokio::time::sleep(ramp).await;
            join(nginx, n).await
        });
    }
    let mut players = Vec::new();
    while let Some(p) = tasks.join_next().await {
        players.push(p.expect("join task"));
    }
    players.sort_by_key(|p| p.n);
    players
}

/// Waits until every player is connected and has received `more` snapshots
/// beyond what it had, with no desync.
async fn all_playing(players: &[Player], more: u64) {
    let mut had = Vec::new();
    for p in players {
        had.push(common::view(&p.bot).await.counters.snapshots);
    }
    for (p, had) in players.iter().zip(had) {
        let view = p
            .bot
            .wait_until(WAIT, |v| v.connected && v.counters.snapshots >= had + more)
            .await
            .unwrap_or_else(|e| panic!("player {} in room {} is not playing: {e}", p.n, p.room));
        assert_eq!(view.counters.desyncs, 0, "player {}: desyncs", p.n);
    }
}

/// `GET /rooms` through nginx: every room within capacity, `players` players
/// in all and no reservation outstanding; the players of each member.
async fn settled_rooms(nginx: SocketAddr, players: u64) -> BTreeMap<String, u64> {
    within(WAIT, "the fleet's rooms to list every player", async {
        loop {
            let list = rooms(nginx).await;
            for r in &list {
                assert!(
                    r.players + r.reserved <= r.capacity && r.capacity == CAPACITY,
                    "room over capacity: {r:?}"
                );
            }
            let seated: u64 = list.iter().map(|r| r.players).sum();
            if seated == players && list.iter().all(|r| r.reserved == 0) {
                let mut per_member = BTreeMap::new();
                for r in &list {
                    *per_member.entry(r.member.clone()).or_default() += r.players;
                }
                return per_member;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// A raw client through nginx on the seat's `/m/<member>/ws?room=ROOM` that
/// has sent `Hello` with `token`.
async fn hello(nginx: SocketAddr, seat: &Seat, token: &str) -> RawClient {
    let path = format!("/m/{}/ws?room={}", seat.member, seat.room);
    let mut c = RawClient::connect_path(nginx, &path, Some(SUBPROTOCOL))
        .await
        .expect("nginx passes the upgrade to the member");
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        auth_token: Some(token.to_string()),
        ..Hello::default()
    }))
    .await;
    c
}

/// `token` on the seat's URL is refused with `Error AuthFailed` naming `why`,
/// then close 1008.
async fn refused(nginx: SocketAddr, seat: &Seat, token: &str, why: &str) {
    let (ended, error) = hello(nginx, seat, token).await.until_closed().await;
    let error = error.unwrap_or_else(|| panic!("no Error before the close ({why})"));
    assert_eq!(error.code, ErrorCode::AuthFailed, "{error:?}");
    assert!(error.message.contains(why), "{why}: {error:?}");
    assert_eq!(ended, Ended::Closed(Some(1008)), "{why}");
}

/// Missed ticks of every live member, by member.
async fn missed_ticks(fleet: &FleetProcesses) -> BTreeMap<String, f64> {
    let mut missed = BTreeMap::new();
    for m in fleet.live() {
        missed.insert(
            m.id.clone(),
            metric(m.addr(), "ticksync_ticks_missed_total").await,
        );
    }
    missed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_of_processes_behind_nginx_survives_a_killed_member_and_a_redis_restart() {
    let capacity = CAPACITY.to_string();
    let ttl = format!("{}s", TTL.as_secs());
    let mut fleet = FleetProcesses::start(
        3,
        &[
            "--room-capacity",
            &capacity,
            "--fleet-ttl",
            &ttl,
            "--seat-timeout",
            "5s",
        ],
    );
    let nginx = fleet.nginx.addr;
    let total: u64 = std::env::var("TICKSYNC_FLEET_PLAYERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(PLAYERS);
    let t0 = Instant::now();
    let phase = |what: &str| eprintln!("[{:>6.1?}] {what}", t0.elapsed());

    // Players matchmake through nginx and play on the member their seat names.
    let started = Instant::now();
    let mut players = join_all(nginx, 0..total).await;
    all_playing(&players, 30).await;
    eprintln!(
        "{total} players matchmade and playing after {:?}",
        started.elapsed()
    );

    phase("tokens");
    // Seat tokens through the proxy: a seat is taken once; a used token and a
    // forged one are refused with the documented Error and close.
    let seat = matchmake(nginx).await.expect("a seat");
    let mut first = hello(nginx, &seat, &seat.token).await;
    first.welcome().await;
    refused(nginx, &seat, &seat.token, "already used").await;
    refused(
        nginx,
        &seat,
        &forge_seat_token(&seat.token),
        "invalid signature",
    )
    .await;
    first.close_normal().await;

    let per_member = settled_rooms(nginx, total).await;
    for m in &fleet.members {
        assert_eq!(
            metric(m.addr(), "ticksync_players").await as u64,
            per_member.get(&m.id).copied().unwrap_or(0),
            "{} runs the players GET /rooms lists on it",
            m.id
        );
    }
    let member_of = room_members(nginx).await;
    let used: BTreeSet<&str> = players
        .iter()
        .map(|p| member_of[&p.room].as_str())
        .collect();
    assert_eq!(used.len(), 3, "every member got players: {per_member:?}");

    phase("kill -9");
    // kill -9 the member with the most players.
    let victim = per_member
        .iter()
        .max_by_key(|(id, n)| (**n, id.as_str()))
        .map(|(id, _)| id.clone())
        .expect("a member with players");
    let (lost, kept): (Vec<Player>, Vec<Player>) = players
        .drain(..)
        .partition(|p| member_of[&p.room] == victim);
    let killed = Instant::now();
    fleet.kill9(&victim);
    let forgetting = {
        let (port, id) = (fleet.redis.port(), victim.clone());
        std::thread::spawn(move || {
            while common::fleet::registered(port, &id) && killed.elapsed() < WAIT {
                std::thread::sleep(Duration::from_millis(20));
            }
            killed.elapsed()
        })
    };
    // Their bots find that no resume can work (nginx answers 502 for the
    // dead member) and matchmake again by themselves.
    let mut back = Vec::new();
    for p in lost {
        let old = p.room.clone();
        let view = p
            .bot
            .wait_until(WAIT, |v| {
                v.connected && v.room.as_deref() != Some(old.as_str())
            })
            .await
            .unwrap_or_else(|e| panic!("player {} did not play again: {e}", p.n));
        let room = view.room.expect("a matchmade bot's room");
        back.push(Player { room, ..p });
    }
    all_playing(&back, 10).await;
    let replayed = killed.elapsed();
    eprintln!(
        "{} players of {victim} playing again after {replayed:?}",
        back.len()
    );
    assert!(
        replayed <= BACK_WITHIN,
        "players of the killed member back after {replayed:?}"
    );
    let member_of = room_members(nginx).await;
    for p in &back {
        assert_ne!(
            member_of.get(&p.room),
            Some(&victim),
            "player {} re-seated on a dead member",
            p.n
        );
    }
    let forgotten = forgetting.join().expect("the watching thread");
    assert!(!fleet.registered(&victim), "{victim} still registered");
    eprintln!("{victim} forgotten {forgotten:?} after the kill (TTL {TTL:?})");
    assert!(
        forgotten <= TTL + Duration::from_millis(500),
        "forgotten after {forgotten:?}, TTL {TTL:?}"
    );
    // Nothing of it is handed out any more (these seats expire unused).
    for _ in 0..5 {
        let seat = matchmake(nginx).await.expect("a seat");
        assert_ne!(seat.member, victim, "a seat on the dead member: {seat:?}");
    }
    players = kept;
    players.append(&mut back);
    players.sort_by_key(|p| p.n);
    phase("seat leaks");
    // No seat leaks: every player seated once, nothing reserved, nothing left
    // of the dead member.
    let per_member = settled_rooms(nginx, total).await;
    assert!(!per_member.contains_key(&victim), "{per_member:?}");
    for m in fleet.live() {
        assert_eq!(
            metric(m.addr(), "ticksync_players").await as u64,
            per_member.get(&m.id).copied().unwrap_or(0),
            "{}'s players",
            m.id
        );
    }
    all_playing(&players, 10).await;

    phase("redis restart");
    // Redis restarts: matchmaking says 503 while it is down, is back within
    // 10 s, and no room misses a tick meanwhile.
    let missed_before = missed_ticks(&fleet).await;
    fleet.redis.kill();
    let (status, body) = matchmake(nginx).await.expect_err("no directory, no seat");
    assert_eq!(status, 503, "{body}");
    all_playing(&players, 10).await;
    fleet.redis.restart();
    let restarted = Instant::now();
    let newcomer = join(nginx, total).await;
    let again = restarted.elapsed();
    eprintln!("matchmaking back {again:?} after the Redis restart");
    assert!(again <= BACK_WITHIN, "matchmaking back after {again:?}");
    players.push(newcomer);
    all_playing(&players, 10).await;
    settled_rooms(nginx, total + 1).await;
    assert_eq!(
        missed_ticks(&fleet).await,
        missed_before,
        "rooms missed ticks across the Redis restart"
    );

    phase("close");
    for p in players {
        let outcome = within(WAIT, "a bot to close", p.bot.close()).await;
        assert_eq!(outcome.counters.desyncs, 0, "player {}: desyncs", p.n);
    }
    let log = fleet.nginx.error_log();
    assert!(!log.contains("[emerg]"), "{log}");
}
