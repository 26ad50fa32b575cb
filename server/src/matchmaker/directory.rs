//! The directory: which rooms exist, which have a free seat, and seat
//! reservations. One trait, two homes: [`LocalDirectory`] (this process's rooms,
//! the default) and a fleet-wide one (Redis, `server/src/fleet/`), so the
//! matchmaker's rules ([`super::matchmake`]) are written and tested once.
//!
//! The trait is object-safe (boxed futures), so the server holds an
//! `Arc<dyn Directory>` chosen by flag. Every method may fail: a remote
//! directory can be unreachable, and the matchmaker answers 503 then.
//!
//! Seats: whatever the directory, **the room's own process is the authority**
//! on its seats (`room::Seats`). [`Directory::claim`] runs on that process
//! when the player arrives, and on success the seat is counted in the local
//! room's `Seats` and the process's seat pool, for the player's `Join`.

use std::sync::Arc;

use dashmap::DashMap;
use futures_util::future::{BoxFuture, FutureExt};

use super::policy::{self, Listing};
use super::seat::SeatId;
use super::{CreateLock, local_listing, seat_local, take_free_seat};
use crate::room::{CreateError, RoomHandle, RoomHost, RoomId, RoomInfo};

/// What every directory method returns.
pub type DirFuture<'a, T> = BoxFuture<'a, Result<T, DirectoryError>>;

/// Why a directory could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The directory cannot be reached or failed (Redis down, timeout):
    /// `POST /matchmake` answers 503.
    #[error("the room directory is unavailable: {0}")]
    Unavailable(String),
    /// No room kind of that name.
    #[error("unknown room kind {0:?}")]
    UnknownKind(String),
    /// No free seat, and no room can be opened (`--max-rooms`,
    /// `--max-players`, or every member is full).
    #[error("no free seat and no room can be opened")]
    Full,
    /// The server (or every member) is draining.
    #[error("the server is shutting down")]
    Draining,
}

impl From<CreateError> for DirectoryError {
    fn from(e: CreateError) -> DirectoryError {
        match e {
            CreateError::UnknownKind(k) => DirectoryError::UnknownKind(k),
            CreateError::TooManyRooms | CreateError::ServerFull => DirectoryError::Full,
            CreateError::Draining => DirectoryError::Draining,
        }
    }
}

/// A seat held for a player on its way, until `expires_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    /// Its id (in the seat token).
    pub seat: SeatId,
    /// The kind asked for.
    pub kind: String,
    /// Who it is for (the join token's identity; `None` on an open server).
    pub identity: Option<String>,
    /// Unix time in milliseconds from which it is void and its seat free.
    pub expires_ms: u64,
}

/// What [`Directory::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The seat is the caller's now.
    Taken(Reservation),
    /// The reservation ran out before the claim reached it (for a seat token
    /// that was still valid when it was checked: it expired mid-claim).
    Expired,
    /// Claimed before, or never made.
    Unknown,
}

/// Where rooms and seats are looked up and reserved.
///
/// Contract for implementations:
/// - [`reserve`](Directory::reserve) and [`create`](Directory::create) never
///   let a room's seats taken (players + reservations) pass its capacity, under
///   any concurrency;
/// - [`claim`](Directory::claim) hands each reservation out at most once;
/// - a reservation neither claimed nor expired holds its seat; after
///   [`expire`](Directory::expire) has run past its `expires_ms`, it does not.
pub trait Directory: Send + Sync {
    /// Open rooms of `kind` (any fill; the caller orders them with
    /// `policy::join_order`).
    fn open_rooms<'a>(&'a self, kind: &'a str) -> DirFuture<'a, Vec<Listing>>;

    /// Reserves a seat in `room` for `seat`, atomically; false if the room is
    /// full or gone.
    fn reserve<'a>(&'a self, room: &'a Listing, seat: &'a Reservation) -> DirFuture<'a, bool>;

    /// A room of `kind` with `seat` reserved in it: a new room on whichever
    /// process the directory picks, or an open room that got a free seat while
    /// the caller was deciding (so concurrent callers who all found every room
    /// full open one room between them, not one each).
    fn create<'a>(&'a self, kind: &'a str, seat: &'a Reservation) -> DirFuture<'a, Listing>;

    /// Takes the reservation `seat` in `room` (single use), on the process that
    /// runs the room: [`Claim::Expired`] if it expired at `now_ms` (or by the
    /// directory's own clock), [`Claim::Unknown`] if it was claimed before or
    /// never existed. On [`Claim::Taken`] the seat is counted in the local
    /// room's seats and the seat pool: the caller's `Join` (`seated: true`)
    /// owns it.
    fn claim(&self, room: RoomId, seat: SeatId, now_ms: u64) -> DirFuture<'_, Claim>;

    /// Frees every reservation expired at `now_ms`; returns how many.
    fn expire(&self, now_ms: u64) -> DirFuture<'_, u32>;

    /// Every open room as `GET /rooms` lists it (fleet-wide for a fleet
    /// directory).
    fn list(&self) -> DirFuture<'_, Vec<RoomInfo>>;
}

impl std::fmt::Debug for dyn Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Directory")
    }
}

/// A reservation held in a room of this process.
#[derive(Debug)]
struct Pending {
    reservation: Reservation,
    room: Arc<RoomHandle>,
}

/// The directory of one process: its own rooms (the registry) and its
/// reservations in memory.
#[derive(Debug)]
pub struct LocalDirectory {
    host: Arc<RoomHost>,
    lock: CreateLock,
    pending: DashMap<(RoomId, SeatId), Pending>,
}

impl LocalDirectory {
    /// The directory of the rooms `host` opens.
    pub fn new(host: Arc<RoomHost>) -> LocalDirectory {
        LocalDirectory {
            host,
            lock: CreateLock::default(),
            pending: DashMap::new(),
        }
    }

    /// The room host.
    pub fn host(&self) -> &Arc<RoomHost> {
        &self.host
    }

    /// Takes a seat for a player who names no room (a plain `/ws` client):
    /// joinOrCreate in `kind` on this process, sharing the creation lock with
    /// [`Directory::create`].
    pub fn seat_plain(&self, kind: &str) -> Result<Arc<RoomHandle>, CreateError> {
        seat_local(&self.host, &self.lock, kind)
    }

    /// Reservations outstanding.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    fn hold(&self, room: Arc<RoomHandle>, seat: &Reservation) -> Listing {
        let listing = local_listing(&room);
        self.pending.insert(
            (room.id, seat.seat),
            Pending {
                reservation: seat.clone(),
                room,
            },
        );
        listing
    }

    fn release(&self, p: &Pending) {
        self.host.env().rooms.pool.release(&p.room.seats);
    }
}

impl Directory for LocalDirectory {
    fn open_rooms<'a>(&'a self, kind: &'a str) -> DirFuture<'a, Vec<Listing>> {
        let rooms = self.host.env().rooms.handles(Some(kind));
        let listings = rooms.iter().map(|r| local_listing(r)).collect();
        std::future::ready(Ok(listings)).boxed()
    }

    fn reserve<'a>(&'a self, room: &'a Listing, seat: &'a Reservation) -> DirFuture<'a, bool> {
        let rooms = &self.host.env().rooms;
        let reserved = match rooms.get(room.room) {
            Some(r) if rooms.pool.try_take(&r.seats) => {
                self.hold(r, seat);
                true
            }
            _ => false,
        };
        std::future::ready(Ok(reserved)).boxed()
    }

    fn create<'a>(&'a self, kind: &'a str, seat: &'a Reservation) -> DirFuture<'a, Listing> {
        let created = (|| {
            // Poisoning only means another caller panicked mid-create; the
            // lock guards no data.
            let _guard = self.lock.0.lock().unwrap_or_else(|p| p.into_inner());
            let room = match take_free_seat(&self.host, kind, policy::matchmake_order) {
                Some(room) => room,
                None => self.host.create(kind, true)?,
            };
            Ok(self.hold(room, seat))
        })();
        std::future::ready(created).boxed()
    }

    fn claim(&self, room: RoomId, seat: SeatId, now_ms: u64) -> DirFuture<'_, Claim> {
        let claimed = match self.pending.remove(&(room, seat)) {
            None => Claim::Unknown,
            Some((_, p)) if now_ms >= p.reservation.expires_ms => {
                self.release(&p);
                Claim::Expired
            }
            Some((_, p)) => Claim::Taken(p.reservation),
        };
        std::future::ready(Ok(claimed)).boxed()
    }

    fn expire(&self, now_ms: u64) -> DirFuture<'_, u32> {
        let mut expired = 0;
        self.pending.retain(|_, p| {
            let keep = now_ms < p.reservation.expires_ms;
            if !keep {
                self.release(p);
                expired += 1;
            }
            keep
        });
        std::future::ready(Ok(expired)).boxed()
    }

    fn list(&self) -> DirFuture<'_, Vec<RoomInfo>> {
        std::future::ready(Ok(self.host.env().rooms.list())).boxed()
    }
}
