//! A fleet of real processes: a `redis-server`, `ticksync-server` members as
//! child processes (each with `--redis`, reached through nginx under
//! `/m/<id>/`), and an nginx running deploy/nginx/ticksync.conf in front of
//! them; plus what a client of the fleet asks through nginx (`POST
//! /matchmake`, `GET /rooms`) and what a test reads off each member
//! (`/metrics`) or off Redis.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::attack::{http_get, http_request};
use super::bins::{BotProcess, ServerProcess, built_binaries, report_count as count};
use super::services::{Nginx, RedisServer, free_port, redis_command};
use super::{WAIT, eventually};

/// The secret the members share (seat tokens minted by one are checked by another).
pub const SECRET: &str = "fleet-e2e-secret-0123456789";

/// One member process.
pub struct Member {
    /// Its `--member-id`.
    pub id: String,
    /// The process; `None` once killed.
    pub process: Option<ServerProcess>,
}

impl Member {
    /// The process, which must still run.
    pub fn process(&self) -> &ServerProcess {
        self.process
            .as_ref()
            .unwrap_or_else(|| panic!("member {} was killed", self.id))
    }

    /// Its own address (not through nginx).
    pub fn addr(&self) -> SocketAddr {
        self.process().addr
    }
}

/// Redis, the members (`m1`, `m2`, ...) and nginx in front of them. Every
/// process stops when this is dropped.
pub struct FleetProcesses {
    /// The directory.
    pub redis: RedisServer,
    /// The members, `m1` first.
    pub members: Vec<Member>,
    /// The one public address.
    pub nginx: Nginx,
}

impl FleetProcesses {
    /// Starts Redis, `n` members with `--redis`, `--member-id mI`,
    /// `--public-url http://<nginx>/m/mI`, the shared secret and `args`, then
    /// nginx routing to them.
    pub fn start(n: usize, args: &[&str]) -> FleetProcesses {
        FleetProcesses::start_each(n, args, |_| Vec::new())
    }

    /// [`FleetProcesses::start`] with more arguments for each member, by its
    /// id (e.g. its own Agones SDK stand-in).
    pub fn start_each(
        n: usize,
        args: &[&str],
        own: impl Fn(&str) -> Vec<String>,
    ) -> FleetProcesses {
        let (server, _) = built_binaries();
        let redis = RedisServer::start();
        // The members hand out URLs under nginx's address: pick it first.
        let port = free_port();
        let members: Vec<Member> = (1..=n)
            .map(|i| {
                let id = format!("m{i}");
                let public = format!("http://127.0.0.1:{port}/m/{id}");
                let mut all = vec![
                    "--redis",
                    &redis.url(),
                    "--member-id",
                    &id,
                    "--public-url",
                    &public,
                    "--fleet-secret",
                    SECRET,
                ]
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>();
                all.extend(args.iter().map(|a| a.to_string()));
                all.extend(own(&id));
                let all: Vec<&str> = all.iter().map(String::as_str).collect();
                let process = ServerProcess::start(&server, &all, Duration::from_secs(30));
                Member {
                    id,
                    process: Some(process),
                }
            })
            .collect();
        let routes: Vec<(String, SocketAddr)> =
            members.iter().map(|m| (m.id.clone(), m.addr())).collect();
        let nginx = Nginx::start_on(port, &routes);
        FleetProcesses {
            redis,
            members,
            nginx,
        }
    }

    /// The member `id`.
    pub fn member(&self, id: &str) -> &Member {
        self.members
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no member {id}"))
    }

    /// The members still running.
    pub fn live(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.process.is_some())
    }

    /// Kills member `id` with SIGKILL (no drain, no goodbye) and reaps it.
    pub fn kill9(&mut self, id: &str) {
        let process = self.take(id);
        let status = Command::new("kill")
            .args(["-KILL", &process.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL failed: {status}");
        // Dropping reaps it (it is dead already).
        drop(process);
    }

    /// Sends member `id` SIGTERM (it drains: marked draining in Redis, its
    /// players get their last snapshots and 1001) and waits at most `limit`
    /// for its exit.
    pub fn terminate(&mut self, id: &str, limit: Duration) -> std::process::ExitStatus {
        self.take(id).terminate(limit)
    }

    /// Waits at most `limit` for member `id` to exit by itself (its Agones
    /// GameServer deleted, say); its exit status and its logs.
    pub fn wait_exit(&mut self, id: &str, limit: Duration) -> (std::process::ExitStatus, String) {
        let mut process = self.take(id);
        let status = process.wait(limit);
        (status, process.output())
    }

    /// Member `id`'s process, which must run; the member counts as gone after.
    fn take(&mut self, id: &str) -> ServerProcess {
        let member = self
            .members
            .iter_mut()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("no member {id}"));
        member.process.take().expect("a running member")
    }

    /// Whether Redis still holds member `id`'s entry.
    pub fn registered(&self, id: &str) -> bool {
        registered(self.redis.port(), id)
    }
}

/// Whether the Redis on `port` holds member `id`'s entry (a plain function, for
/// a thread that watches it while the test goes on).
pub fn registered(port: u16, id: &str) -> bool {
    redis_command(port, &["EXISTS", &format!("ticksync:member:{id}")])
        .is_ok_and(|reply| reply.starts_with(":1"))
}

/// A seat from `POST /matchmake`.
#[derive(Debug, Clone)]
pub struct Seat {
    /// The room id.
    pub room: String,
    /// The WebSocket URL (through nginx, under the owner's prefix).
    pub url: String,
    /// The seat token.
    pub token: String,
    /// The member the URL names (`/m/<member>/`).
    pub member: String,
}

/// Players per member, as `GET /rooms` through the fleet's nginx lists them.
pub async fn players_per_member(fleet: &FleetProcesses) -> BTreeMap<String, u64> {
    let mut per = BTreeMap::new();
    for r in rooms(fleet.nginx.addr).await {
        *per.entry(r.member).or_default() += r.players;
    }
    per
}

/// `POST /matchmake` at `addr`: the seat, or the status and body of a refusal.
pub async fn matchmake(addr: SocketAddr) -> Result<Seat, (u16, String)> {
    let (status, body) = http_request(addr, "POST", "/matchmake", "").await;
    if status != 200 {
        return Err((status, body));
    }
    let v: Value = serde_json::from_str(&body).map_err(|e| (status, format!("{e}: {body}")))?;
    let field = |name: &str| v[name].as_str().map(String::from);
    let (Some(room), Some(url), Some(token)) = (field("room"), field("url"), field("token")) else {
        return Err((status, body));
    };
    let member = url
        .split("/m/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_default()
        .to_string();
    Ok(Seat {
        room,
        url,
        token,
        member,
    })
}

/// One entry of `GET /rooms`.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Room id.
    pub id: String,
    /// Its member.
    pub member: String,
    /// Players in it.
    pub players: u64,
    /// Seats reserved and not yet taken.
    pub reserved: u64,
    /// Its capacity.
    pub capacity: u64,
}

/// `GET /rooms` at `addr` (any member answers for the fleet).
pub async fn rooms(addr: SocketAddr) -> Vec<Listed> {
    let (status, body) = http_get(addr, "/rooms").await;
    assert_eq!(status, 200, "GET /rooms: {body}");
    let list: Vec<Value> = serde_json::from_str(&body).expect("GET /rooms is a JSON array");
    list.iter()
        .map(|r| Listed {
            id: r["id"].as_str().unwrap_or_default().to_string(),
            member: r["member"].as_str().unwrap_or_default().to_string(),
            players: r["players"].as_u64().unwrap_or(u64::MAX),
            reserved: r["reserved"].as_u64().unwrap_or(u64::MAX),
            capacity: r["capacity"].as_u64().unwrap_or(0),
        })
        .collect()
}

/// The value of an unlabelled metric in `/metrics` of the member at `addr`.
pub async fn metric(addr: SocketAddr, name: &str) -> f64 {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200, "GET /metrics: {body}");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
}

/// `bots` of the `ticksync-bot` binary playing for `run` through the fleet's
/// nginx with `--matchmake --reconnect`: what a drain test drains.
pub fn start_rematchmaking_bots(fleet: &FleetProcesses, bots: u64, run: &str) -> BotProcess {
    let (_, bot_bin) = built_binaries();
    let n = bots.to_string();
    let url = format!("ws://{}/ws", fleet.nginx.addr);
    let args = [
        // The drained bots are away for the re-matchmake: bounded by
        // `assert_rematchmade` (10 s), not by the bot's default 10 % of the run.
        "--max-disconnected-share",
        "0.9",
        "--bots",
        &n,
        "--duration",
        run,
        "--ramp-up",
        "1s",
        "--matchmake",
        "--reconnect",
    ];
    BotProcess::start(&bot_bin, &url, &args)
}

/// Once all `bots` are seated: the member holding the most of them, and how
/// many it holds (some, not all: the test needs a survivor with players).
pub async fn busiest_member(fleet: &FleetProcesses, bots: u64) -> (String, u64) {
    eventually(WAIT, "every bot seated", || async {
        players_per_member(fleet).await.values().sum::<u64>() == bots
    })
    .await;
    let before = players_per_member(fleet).await;
    let (member, n) = before
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(m, n)| (m.clone(), *n))
        .expect("a member with players");
    assert!(n > 0 && n < bots, "players per member: {before:?}");
    (member, n)
}

/// Waits until all `bots` play on members other than `gone`.
pub async fn all_playing_without(fleet: &FleetProcesses, bots: u64, gone: &str) {
    eventually(WAIT, "every bot playing on the other members", || async {
        let now = players_per_member(fleet).await;
        now.values().sum::<u64>() == bots && !now.contains_key(gone)
    })
    .await;
}

/// From the bot binary's JSON report: all `bots` connected; exactly the
/// `drained` bots of the drained member were closed with 1001, matchmade
/// again by themselves and were back in play within 10 s, without trying a
/// resume there; no desync.
pub fn assert_rematchmade(report: &Value, bots: u64, drained: u64) {
    let show = || format!("{report:#}");
    assert_eq!(count(report, "/bots_connected"), bots, "{}", show());
    assert_eq!(
        count(report, "/drained"),
        drained,
        "each drained bot got a close 1001: {}",
        show()
    );
    assert_eq!(
        count(report, "/rematchmades"),
        drained,
        "each drained bot matchmade again by itself: {}",
        show()
    );
    assert_eq!(count(report, "/rematchmake_ms/samples"), drained);
    eprintln!(
        "{drained} bots drained, back in play after {} ms",
        report["rematchmake_ms"]
    );
    let slowest = report
        .pointer("/rematchmake_ms/max")
        .and_then(Value::as_f64)
        .unwrap_or(f64::MAX);
    assert!(
        slowest < 10_000.0,
        "back in play within 10 s: {slowest} ms\n{}",
        show()
    );
    assert_eq!(count(report, "/desyncs"), 0, "{}", show());
    assert_eq!(
        count(report, "/resumed"),
        0,
        "no resume on a draining member"
    );
    assert_eq!(report["passed"], Value::Bool(true), "{}", show());
}
