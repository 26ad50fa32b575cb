//! Matchmaking: where a player plays.
//!
//! - [`policy`]: the joinOrCreate rule as plain functions;
//! - [`directory`]: rooms and seat reservations (the [`Directory`] trait, and
//!   [`LocalDirectory`] for this process);
//! - [`seat`]: signed single-use seat tokens;
//! - [`admit`]: which room a `Hello` joins (seat token, resume, or none);
//! - [`reaper`]: frees reservations not claimed in time;
//!
//! [`matchmake`] is `POST /matchmake`'s decision over any directory. A client
//! that names no room (a plain `/ws` connection) is seated by [`seat_local`]:
//! the fullest open room of the default kind on this process with a free
//! seat, or a new one.

pub mod admit;
pub mod directory;
pub mod policy;
pub mod reaper;
pub mod seat;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::room::{CreateError, RoomHandle, RoomHost};
pub use directory::{Claim, Directory, DirectoryError, LocalDirectory, Reservation};
use policy::Listing;
use seat::SeatId;

/// A reserved seat: the room (and where it runs) and the reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    /// The room, as the directory lists it.
    pub listing: Listing,
    /// The reservation.
    pub reservation: Reservation,
}

/// joinOrCreate with a seat reservation (Colyseus's model): reserves a seat
/// for `identity` in the fullest open room of `kind` with a free seat and
/// someone in it ([`policy::matchmake_order`]), else in a room the directory
/// opens; the seat is held until `now_ms + hold`.
pub async fn matchmake(
    dir: &dyn Directory,
    kind: &str,
    identity: Option<String>,
    now_ms: u64,
    hold: Duration,
) -> Result<Reserved, DirectoryError> {
    let reservation = Reservation {
        seat: SeatId::random(),
        kind: kind.to_string(),
        identity,
        expires_ms: now_ms.saturating_add(u64::try_from(hold.as_millis()).unwrap_or(u64::MAX)),
    };
    for listing in policy::matchmake_order(dir.open_rooms(kind).await?, kind) {
        if dir.reserve(&listing, &reservation).await? {
            return Ok(Reserved {
                listing,
                reservation,
            });
        }
    }
    let listing = dir.create(kind, &reservation).await?;
    Ok(Reserved {
        listing,
        reservation,
    })
}

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
    let order = policy::join_order;
    if let Some(room) = take_free_seat(host, kind, order) {
        return Ok(room);
    }
    // Poisoning only means another caller panicked mid-create; the lock
    // guards no data.
    let _guard = lock.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(room) = take_free_seat(host, kind, order) {
        return Ok(room);
    }
    host.create(kind, true)
}

/// Takes a seat in the first room of `kind` on this process that `order`
/// offers.
pub(crate) fn take_free_seat(
    host: &RoomHost,
    kind: &str,
    order: fn(Vec<Listing>, &str) -> Vec<Listing>,
) -> Option<Arc<RoomHandle>> {
    let rooms = &host.env().rooms;
    let handles = rooms.handles(Some(kind));
    let listings = handles.iter().map(|r| local_listing(r)).collect();
    for l in order(listings, kind) {
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
    let (taken, locked) = room.taken_and_locked();
    Listing {
        room: room.id,
        kind: room.kind.spec.name.clone(),
        taken,
        capacity: room.seats.capacity(),
        locked,
        endpoint: String::new(),
    }
}
