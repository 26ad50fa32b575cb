//! Matchmaking: where a player plays.
//!
//! - [`policy`]: the joinOrCreate rule as plain functions;
//! - [`admit`]: which room a `Hello` joins;
//!
//! A client that names no room (a plain `/ws` connection) is seated here by
//! [`seat_local`]: the fullest open room of the default kind on this process
//! with a free seat, or a new one.

pub mod admit;
pub mod policy;

use std::sync::{Arc, Mutex};

use crate::room::{CreateError, RoomHandle, RoomHost};
use policy::Listing;

/// Serializes room creation so that callers who all find every room full
/// open one room between them, not one each.
#[derive(Debug, Default)]
pub struct CreateLock(Mutex<()>);

/// Takes a seat for a new player in a room of `kind` on this process: the
/// fullest open room with a free seat, else a new room. The seat is the
/// caller's to hand to the room's `Join` (`seated: true`).
pub fn seat_local(
    host: &RoomHost,
    lock: &CreateLock,
    kind: &str,
) -> Result<Arc<RoomHandle>, CreateError> {
    if let Some(room) = take_free_seat(host, kind) {
        return Ok(room);
    }
    // Poisoning only means another caller panicked mid-create; the lock
    // guards no data.
    let _guard = lock.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(room) = take_free_seat(host, kind) {
        return Ok(room);
    }
    host.create(kind, true)
}

fn take_free_seat(host: &RoomHost, kind: &str) -> Option<Arc<RoomHandle>> {
    let rooms = &host.env().rooms;
    let handles = rooms.handles(Some(kind));
    let listings = handles.iter().map(|r| local_listing(r)).collect();
    for l in policy::join_order(listings, kind) {
        if let Some(room) = handles.iter().find(|r| r.id == l.room)
            && rooms.pool.try_take(&room.seats)
        {
            return Some(room.clone());
        }
    }
    None
}

/// A room of this process as a directory lists it.
pub fn local_listing(room: &RoomHandle) -> Listing {
    Listing {
        room: room.id,
        kind: room.kind.spec.name.clone(),
        taken: room.seats.taken(),
        capacity: room.seats.capacity(),
        endpoint: String::new(),
    }
}
