//! A fleet of Ticksync processes sharing one Redis as their directory
//! (`--redis`; docs/SCALING.md). Each member registers itself and its rooms
//! with a TTL that its heartbeat refreshes ([`membership`]); any member
//! answers a matchmake by reserving a seat atomically in Redis, anywhere in
//! the fleet, or by asking the least-loaded member to open a room
//! ([`inbox`]); the seat token it hands out is checked by the room's member.
//!
//! Redis is never on the tick path: rooms tick on their threads whatever
//! Redis does. Only matchmaking and the fleet-wide room list need it; while it
//! is unreachable they fail with 503 and the heartbeat keeps trying, so a
//! member re-registers everything by itself when Redis is back.
//!
//! - [`config`]: the flags;
//! - [`directory`]: the matchmaker's directory over Redis;
//! - [`scripts`]: the Lua scripts and the Redis keys they use;
//! - [`membership`]: heartbeat, drain, leave;
//! - [`seats`]: open rooms, reservations, claims;
//! - [`inbox`]: "open a room for this seat" requests between members.

pub mod config;
pub mod directory;
pub mod inbox;
pub mod membership;
pub mod scripts;
pub mod seats;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};

pub use config::FleetConfig;
pub use directory::RedisDirectory;
pub use membership::Running;
use scripts::Scripts;

use crate::room::{RoomHost, RoomInfo};

/// Longest a single Redis command may take before the caller treats Redis as
/// unavailable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a fleet operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FleetError {
    /// Redis is unreachable, timed out or answered an error.
    #[error("redis: {0}")]
    Redis(String),
    /// No member answered a create request in time.
    #[error("no member opened a room within the create timeout")]
    Timeout,
}

impl From<redis::RedisError> for FleetError {
    fn from(e: redis::RedisError) -> FleetError {
        FleetError::Redis(e.to_string())
    }
}

/// One member as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberInfo {
    /// Its id.
    pub id: String,
    /// Its public WebSocket base URL.
    pub url: String,
    /// Its `--max-players`.
    pub capacity: u32,
    /// Seats taken on it (players and reservations).
    pub taken: u32,
    /// Whether it is draining.
    pub draining: bool,
    /// Rooms it runs.
    pub rooms: u32,
}

impl MemberInfo {
    /// Share of its capacity in use (what "least loaded" compares).
    pub fn load(&self) -> f64 {
        f64::from(self.taken) / f64::from(self.capacity.max(1))
    }
}

/// One room of the fleet as `GET /rooms` lists it with `--redis`: its entry
/// as of its member's last heartbeat, with the member and the seats taken now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRoom {
    /// The member that runs it.
    pub member: String,
    /// The member's public WebSocket base URL.
    pub url: String,
    /// The room.
    pub info: RoomInfo,
}

/// A seat reservation as the directory stores it (`seat:<room>:<seat>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSeat {
    /// The kind asked for.
    pub kind: String,
    /// Who it is for.
    pub identity: Option<String>,
    /// Unix ms from which it is void.
    pub expires_ms: u64,
}

/// A member's handle on the fleet directory.
pub struct Fleet {
    /// This member's id.
    pub member: String,
    /// Where players reach it: the WebSocket base URL of `--public-url`
    /// (or of `http://<bound address>`), as listings carry it.
    pub url: String,
    config: FleetConfig,
    client: redis::Client,
    conn: ConnectionManager,
    scripts: Scripts,
    host: Arc<RoomHost>,
    max_players: u32,
    /// Serializes this member's writes of its seat counts (heartbeat, claim,
    /// open), so a heartbeat's `taken`, read before a claim, can never
    /// overwrite the claim's update after it: the directory's count of a room
    /// is never below the truth.
    writes: tokio::sync::Mutex<()>,
    /// One room opening at a time on this member.
    opening: tokio::sync::Mutex<()>,
    draining: AtomicBool,
    up: AtomicBool,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("member", &self.member)
            .field("url", &self.url)
            .field("redis_up", &self.redis_up())
            .finish()
    }
}

impl Fleet {
    /// A member of the fleet in `config` (validated, `--redis` set), reached
    /// at `url`, opening rooms with `host`. Connects lazily: a Redis that is
    /// down at start-up only delays registration.
    pub fn new(
        config: FleetConfig,
        url: String,
        host: Arc<RoomHost>,
        max_players: u32,
    ) -> Result<Fleet, FleetError> {
        let redis_url = config
            .redis
            .clone()
            .ok_or_else(|| FleetError::Redis("no --redis URL".into()))?;
        let client = redis::Client::open(redis_url)?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_max_delay(Duration::from_millis(500))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)?;
        Ok(Fleet {
            member: config.member_id(),
            url: Fleet::ws_base(&url),
            config,
            client,
            conn,
            scripts: Scripts::default(),
            host,
            max_players,
            writes: tokio::sync::Mutex::new(()),
            opening: tokio::sync::Mutex::new(()),
            draining: AtomicBool::new(false),
            up: AtomicBool::new(false),
        })
    }

    /// The flags it runs with.
    pub fn config(&self) -> &FleetConfig {
        &self.config
    }

    /// Whether the last Redis call succeeded.
    pub fn redis_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Whether this member is draining.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The WebSocket base URL of a member reached at `base`: `http(s)://` becomes
    /// `ws(s)://`, a trailing `/` goes; players connect to `<it>/ws?room=ID`.
    pub fn ws_base(base: &str) -> String {
        let base = base.trim_end_matches('/');
        if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else {
            base.to_string()
        }
    }

    /// Every live member.
    pub async fn members(&self) -> Result<Vec<MemberInfo>, FleetError> {
        let flat: Vec<String> = self
            .run(self.scripts.members.prepare_invoke().arg(self.prefix()))
            .await?;
        Ok(flat
            .chunks_exact(6)
            .map(|c| MemberInfo {
                id: c[0].clone(),
                url: c[1].clone(),
                capacity: num(&c[2]),
                taken: num(&c[3]),
                draining: c[4] == "1",
                rooms: num(&c[5]),
            })
            .collect())
    }

    /// Every room of every live member.
    pub async fn rooms(&self) -> Result<Vec<FleetRoom>, FleetError> {
        let flat: Vec<String> = self
            .run(self.scripts.rooms.prepare_invoke().arg(self.prefix()))
            .await?;
        let mut rooms: Vec<FleetRoom> = flat
            .chunks_exact(4)
            .filter_map(|c| {
                let mut info: RoomInfo = serde_json::from_str(&c[2]).ok()?;
                let taken: u32 = num(&c[3]);
                info.reserved = taken.saturating_sub(info.players);
                info.member = Some(c[0].clone());
                Some(FleetRoom {
                    member: c[0].clone(),
                    url: c[1].clone(),
                    info,
                })
            })
            .collect();
        rooms.sort_by(|a, b| a.member.cmp(&b.member).then(a.info.id.cmp(&b.info.id)));
        Ok(rooms)
    }

    fn prefix(&self) -> &str {
        &self.config.redis_prefix
    }

    /// Runs a script invocation with the command timeout; records whether
    /// Redis answered.
    async fn run<T: redis::FromRedisValue>(
        &self,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, FleetError> {
        let mut conn = self.conn.clone();
        let result = tokio::time::timeout(REDIS_TIMEOUT * 2, invocation.invoke_async(&mut conn))
            .await
            .map_err(|_| FleetError::Redis("timed out".into()))
            .and_then(|r| r.map_err(FleetError::from));
        self.up.store(result.is_ok(), Ordering::Relaxed);
        result
    }
}

/// A decimal field of a script's answer (0 when absent or malformed: the
/// directory is written by members only, so this is a stale or partial entry).
fn num<T: std::str::FromStr + Default>(s: &str) -> T {
    s.parse().unwrap_or_default()
}
