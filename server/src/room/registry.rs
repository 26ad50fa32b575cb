//! The room registry: every open room of this process by id (a [`RoomHandle`]:
//! its kind, seats, figures and command queue), the process-wide seat pool,
//! and which room holds each live resume token.
//!
//! Connections and HTTP handlers read it concurrently (`dashmap`); rooms write
//! it only when they open, close, or a player joins or leaves: never per tick.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use ticksync_protocol::{EntityState, PlayerId, ResumeToken, Tick};

use super::command::Command;
use super::kind::{RoomKind, RoomLock};
use super::seats::{SeatPool, Seats};
use super::stats::{RoomDetail, RoomStats, RoomStatsView};

/// A room's id: 64 random bits, written as 16 lowercase hex digits (unique
/// across a fleet without coordination; a proxy can route on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(pub u64);

impl RoomId {
    /// A fresh random id.
    pub fn random() -> RoomId {
        RoomId(rand::random())
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for RoomId {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(());
        }
        u64::from_str_radix(s, 16).map(RoomId).map_err(|_| ())
    }
}

impl Serialize for RoomId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RoomId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse()
            .map_err(|()| serde::de::Error::custom("a room id is 16 hex digits"))
    }
}

/// The room is gone (closed, or its thread stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the room is closed")]
pub struct RoomGone;

/// What the rest of the process holds of one room.
#[derive(Debug)]
pub struct RoomHandle {
    /// The room's id.
    pub id: RoomId,
    /// Its kind.
    pub kind: Arc<RoomKind>,
    /// Its seats.
    pub seats: Seats,
    /// Its figures.
    pub stats: RoomStats,
    commands: mpsc::Sender<Command>,
    created: Instant,
}

/// One room as `GET /rooms` lists it (a fleet member reads other members'
/// entries back from Redis, hence `Deserialize`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RoomInfo {
    /// The room's id.
    pub id: RoomId,
    /// Its kind's name.
    pub kind: String,
    /// Players in the world (connected or within their resume grace).
    pub players: u32,
    /// Seats reserved for players not yet arrived.
    pub reserved: u32,
    /// The kind's capacity.
    pub capacity: u32,
    /// The room's current tick.
    pub tick: u32,
    /// The kind's tick rate.
    pub tick_rate: u16,
    /// Seconds since the room opened.
    pub age_secs: u64,
    /// Tick timing, traffic and the rest.
    pub stats: RoomStatsView,
    /// Whether its match is locked: matchmaking offers it no more (a kind
    /// with `lock=full` that was full once, or `lock=<duration>` that old).
    #[serde(default)]
    pub locked: bool,
    /// The fleet member that runs it (`--redis` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
}

impl RoomHandle {
    /// A handle around the sending side of a room's command queue.
    pub fn new(id: RoomId, kind: Arc<RoomKind>, commands: mpsc::Sender<Command>) -> RoomHandle {
        RoomHandle {
            id,
            seats: match kind.spec.lock {
                RoomLock::Full => Seats::locking(kind.spec.capacity),
                RoomLock::Never | RoomLock::After(_) => Seats::new(kind.spec.capacity),
            },
            kind,
            stats: RoomStats::default(),
            commands,
            created: Instant::now(),
        }
    }

    /// Queues a command, waiting for space.
    pub async fn send(&self, cmd: Command) -> Result<(), RoomGone> {
        self.commands.send(cmd).await.map_err(|_| RoomGone)
    }

    /// Queues a command if there is space; gives it back otherwise.
    pub fn try_send(&self, cmd: Command) -> Result<(), Command> {
        self.commands.try_send(cmd).map_err(|e| e.into_inner())
    }

    /// The room's current tick.
    pub fn tick(&self) -> Tick {
        Tick(self.stats.tick.load(Ordering::Acquire))
    }

    /// Players in the world.
    pub fn players(&self) -> u32 {
        self.stats.players.load(Ordering::Acquire)
    }

    /// Seats taken, and whether its match is locked at `now`: it was full
    /// once (`lock=full`, read in the same load as the seats) or it opened
    /// the kind's lock time ago (`lock=<duration>`).
    pub fn taken_and_locked_at(&self, now: Instant) -> (u32, bool) {
        let (taken, full) = self.seats.taken_and_locked();
        let timed = match self.kind.spec.lock {
            RoomLock::After(d) => now.saturating_duration_since(self.created) >= d,
            RoomLock::Never | RoomLock::Full => false,
        };
        (taken, full || timed)
    }

    /// Seats taken, and whether its match is locked now.
    pub fn taken_and_locked(&self) -> (u32, bool) {
        self.taken_and_locked_at(Instant::now())
    }

    /// The room as `GET /rooms` lists it.
    pub fn info(&self) -> RoomInfo {
        let players = self.players();
        RoomInfo {
            id: self.id,
            kind: self.kind.spec.name.clone(),
            players,
            reserved: self.seats.taken().saturating_sub(players),
            capacity: self.seats.capacity(),
            tick: self.tick().0,
            tick_rate: self.kind.spec.tick_rate,
            age_secs: self.created.elapsed().as_secs(),
            stats: self.stats.view(),
            locked: self.taken_and_locked().1,
            member: None,
        }
    }

    /// The world's tick and entities after the room's next tick.
    pub async fn world(&self) -> Result<(Tick, Vec<EntityState>), RoomGone> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Inspect { reply }).await?;
        rx.await.map_err(|_| RoomGone)
    }

    /// The room's players and figures, answered at its next tick.
    pub async fn detail(&self) -> Result<RoomDetail, RoomGone> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Detail { reply }).await?;
        rx.await.map_err(|_| RoomGone)
    }

    /// Kicks a player (close 4005, no resume); false if it is not in the room.
    pub async fn kick(&self, player: PlayerId) -> Result<bool, RoomGone> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Kick { player, reply }).await?;
        rx.await.map_err(|_| RoomGone)
    }

    /// Closes the room (its players get close 4004); returns once it has.
    pub async fn close(&self) -> Result<(), RoomGone> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Close { reply: Some(reply) }).await?;
        rx.await.map_err(|_| RoomGone)
    }
}

/// Every open room of the process.
#[derive(Debug)]
pub struct Rooms {
    rooms: DashMap<RoomId, Arc<RoomHandle>>,
    /// Rooms registered, counted before the map insert so concurrent opens
    /// cannot pass `max_rooms` together.
    open: AtomicUsize,
    max_rooms: usize,
    resume: DashMap<ResumeToken, RoomId>,
    /// Seats across all rooms (`--max-players`).
    pub pool: SeatPool,
}

impl Rooms {
    /// An empty registry for at most `max_rooms` rooms and `max_players`
    /// seats across them.
    pub fn new(max_rooms: usize, max_players: u32) -> Rooms {
        Rooms {
            rooms: DashMap::new(),
            open: AtomicUsize::new(0),
            max_rooms,
            resume: DashMap::new(),
            pool: SeatPool::new(max_players),
        }
    }

    /// Counts a room about to open; false at `max_rooms`. Pair with
    /// [`Rooms::insert`] or [`Rooms::unreserve`].
    pub fn reserve_slot(&self) -> bool {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_rooms).then_some(n + 1)
            })
            .is_ok()
    }

    /// Gives back a slot from [`Rooms::reserve_slot`] that was not used.
    pub fn unreserve(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Registers an opened room in a reserved slot; false if its id is taken.
    pub fn insert(&self, room: Arc<RoomHandle>) -> bool {
        match self.rooms.entry(room.id) {
            dashmap::Entry::Occupied(_) => false,
            dashmap::Entry::Vacant(v) => {
                v.insert(room);
                true
            }
        }
    }

    /// Unregisters a closed room and frees its slot.
    pub fn remove(&self, id: RoomId) {
        if self.rooms.remove(&id).is_some() {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The most rooms this process opens (`--max-rooms`).
    pub fn max_rooms(&self) -> usize {
        self.max_rooms
    }

    /// A room by id.
    pub fn get(&self, id: RoomId) -> Option<Arc<RoomHandle>> {
        self.rooms.get(&id).map(|r| r.clone())
    }

    /// Open rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether no room is open.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Every open room (of `kind`, if given), in no particular order.
    pub fn handles(&self, kind: Option<&str>) -> Vec<Arc<RoomHandle>> {
        self.rooms
            .iter()
            .filter(|r| kind.is_none_or(|k| r.kind.spec.name == k))
            .map(|r| r.clone())
            .collect()
    }

    /// Every open room as `GET /rooms` lists it, oldest first.
    pub fn list(&self) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self.rooms.iter().map(|r| r.info()).collect();
        rooms.sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.id.cmp(&b.id)));
        rooms
    }

    /// Players across every room.
    pub fn players(&self) -> u64 {
        self.rooms.iter().map(|r| u64::from(r.players())).sum()
    }

    /// The room holding a live resume token.
    pub fn room_of_token(&self, token: &ResumeToken) -> Option<RoomId> {
        self.resume.get(token).map(|r| *r)
    }

    /// A room issued `token` (or took it over on resume).
    pub fn token_issued(&self, token: ResumeToken, room: RoomId) {
        self.resume.insert(token, room);
    }

    /// `token` is no longer valid (used, expired, its player gone).
    pub fn token_revoked(&self, token: &ResumeToken) {
        self.resume.remove(token);
    }

    /// Live resume tokens across rooms.
    pub fn live_tokens(&self) -> usize {
        self.resume.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_ids_print_and_parse_as_16_hex_digits() {
        let id = RoomId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse(), Ok(id));
        for bad in [
            "",
            "abc",
            "00abcdef0123456g",
            "00abcdef012345678",
            "+0abcdef01234567",
        ] {
            assert!(bad.parse::<RoomId>().is_err(), "{bad}");
        }
    }
}
