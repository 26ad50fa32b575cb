//! Which room a `Hello` joins: the room its URL names (`/ws?room=ID`), the
//! room holding its resume token, or, for a client that names no room, a
//! seat in the default kind (joinOrCreate on this process).

use std::sync::Arc;

use ticksync_protocol::ResumeToken;

use super::{CreateLock, seat_local};
use crate::room::{CreateError, RoomHandle, RoomHost, RoomId};

/// Where a connection plays.
#[derive(Debug)]
pub struct Admission {
    /// The room.
    pub room: Arc<RoomHandle>,
    /// Whether a seat was taken for a new player (the join must give it back
    /// if it fails).
    pub seated: bool,
}

/// Why a `Hello` has no room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The room in the URL is not open (closed, or never existed here).
    #[error("no such room: it closed or never existed")]
    NoSuchRoom,
    /// The resume token belongs to no open room.
    #[error("unknown, expired or already used resume token")]
    ResumeFailed,
    /// Every room is full and no room can be opened (`--max-rooms`,
    /// `--max-players`), or the named room is full.
    #[error("the server is full")]
    Full,
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
}

impl From<CreateError> for AdmitError {
    fn from(e: CreateError) -> AdmitError {
        match e {
            CreateError::Draining => AdmitError::ShuttingDown,
            CreateError::UnknownKind(_) | CreateError::TooManyRooms | CreateError::ServerFull => {
                AdmitError::Full
            }
        }
    }
}

/// The room a `Hello` with `resume` joins, arriving at a URL naming `url_room`.
pub fn admit(
    host: &RoomHost,
    lock: &CreateLock,
    url_room: Option<RoomId>,
    resume: Option<&ResumeToken>,
) -> Result<Admission, AdmitError> {
    let rooms = &host.env().rooms;
    if let Some(token) = resume {
        // The resumed player still holds its seat.
        let id = url_room
            .or_else(|| rooms.room_of_token(token))
            .ok_or(AdmitError::ResumeFailed)?;
        let room = rooms.get(id).ok_or(if url_room.is_some() {
            AdmitError::NoSuchRoom
        } else {
            AdmitError::ResumeFailed
        })?;
        return Ok(Admission {
            room,
            seated: false,
        });
    }
    if let Some(id) = url_room {
        let room = rooms.get(id).ok_or(AdmitError::NoSuchRoom)?;
        if !rooms.pool.try_take(&room.seats) {
            return Err(if room.seats.is_closed() {
                AdmitError::NoSuchRoom
            } else {
                AdmitError::Full
            });
        }
        return Ok(Admission { room, seated: true });
    }
    let kind = &host.kinds().default_kind().spec.name;
    let room = seat_local(host, lock, kind)?;
    Ok(Admission { room, seated: true })
}
