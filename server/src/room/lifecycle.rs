//! A room's life: opened on demand by [`RoomHost::create`] (registered, then
//! handed to a tick thread), closed by its own thread when it has had no
//! players and no reserved seat for `--room-idle-timeout`, or on command
//! ([`crate::room::Command::Close`]). A closed room leaves the registry and is
//! dropped by its thread, which releases its memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing::info;

use super::kind::{Kinds, RoomKind};
use super::registry::{RoomHandle, RoomId};
use super::{Room, RoomEnv};

/// Where a new room goes to be ticked (the scheduler implements it).
pub trait Place: Send + Sync {
    /// Takes the room and runs its ticks from now on.
    fn place(&self, room: Room);
}

/// Why no room was opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreateError {
    /// No kind of that name.
    #[error("unknown room kind {0:?}")]
    UnknownKind(String),
    /// `--max-rooms` rooms are open.
    #[error("the server has no room for another room")]
    TooManyRooms,
    /// `--max-players` seats are taken across rooms.
    #[error("the server is full")]
    ServerFull,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    Draining,
}

/// Opens rooms: the kinds on offer, the registry, and the tick threads.
pub struct RoomHost {
    kinds: Kinds,
    env: RoomEnv,
    place: Arc<dyn Place>,
    draining: AtomicBool,
}

impl std::fmt::Debug for RoomHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomHost")
            .field("kinds", &self.kinds)
            .field("rooms", &self.env.rooms.len())
            .finish()
    }
}

impl RoomHost {
    /// A host for `kinds` whose rooms run where `place` puts them.
    pub fn new(kinds: Kinds, env: RoomEnv, place: Arc<dyn Place>) -> RoomHost {
        RoomHost {
            kinds,
            env,
            place,
            draining: AtomicBool::new(false),
        }
    }

    /// The kinds on offer.
    pub fn kinds(&self) -> &Kinds {
        &self.kinds
    }

    /// What every room gets (metrics, registry).
    pub fn env(&self) -> &RoomEnv {
        &self.env
    }

    /// Opens no more rooms (shutdown).
    pub fn stop_opening(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Opens a room of `kind`. With `seated`, one seat of it is taken for the
    /// caller (a matchmake or a plain join), so no other caller can fill it and
    /// it cannot close as idle before its first player arrives.
    pub fn create(&self, kind: &str, seated: bool) -> Result<Arc<RoomHandle>, CreateError> {
        let kind = self
            .kinds
            .get(kind)
            .ok_or_else(|| CreateError::UnknownKind(kind.to_string()))?;
        self.create_of(kind.clone(), seated)
    }

    fn create_of(&self, kind: Arc<RoomKind>, seated: bool) -> Result<Arc<RoomHandle>, CreateError> {
        if self.draining.load(Ordering::Acquire) {
            return Err(CreateError::Draining);
        }
        let rooms = &self.env.rooms;
        if !rooms.reserve_slot() {
            return Err(CreateError::TooManyRooms);
        }
        let (room, handle) = loop {
            let (room, handle) = Room::new(RoomId::random(), kind.clone(), self.env.clone());
            if !seated || rooms.pool.try_take(&handle.seats) {
                if rooms.insert(handle.clone()) {
                    break (room, handle);
                }
                // 64 random bits collided: give the seat back and draw again.
                if seated {
                    rooms.pool.release(&handle.seats);
                }
                continue;
            }
            rooms.unreserve();
            return Err(CreateError::ServerFull);
        };
        let m = &self.env.metrics;
        m.rooms.inc();
        m.rooms_created.inc();
        info!(room = %handle.id, kind = %kind.spec.name, "room opened");
        self.place.place(room);
        Ok(handle)
    }
}
