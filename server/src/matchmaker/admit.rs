//! Which room a `Hello` joins, and under which name:
//!
//! - a **seat token** from `POST /matchmake` in `Hello.auth_token`: its room,
//!   once (the reservation is claimed from the directory), under the identity
//!   the seat was reserved for;
//! - a **resume token**: the room holding it (the player keeps its seat);
//! - **neither**: a plain client, seated in the default kind (joinOrCreate on
//!   this process), with the join token checked as before (`auth.rs`).
//!
//! A URL naming a room (`/ws?room=ID`) without a seat token is refused unless
//! it resumes: rooms are reached through the matchmaker, so a seat cannot be
//! taken around it (docs/PROTOCOL.md, "Matchmaking").

use std::sync::Arc;

use ticksync_protocol::ResumeToken;

use super::directory::{Claim, Directory, LocalDirectory};
use super::seat::{self, SeatError, SeatKey};
use crate::auth::{self, AuthError, AuthSecret};
use crate::room::{CreateError, RoomHandle, RoomId};

/// Where a connection plays.
#[derive(Debug)]
pub struct Admission {
    /// The room.
    pub room: Arc<RoomHandle>,
    /// Whether a seat was taken for a new player (the join must give it back
    /// if it fails).
    pub seated: bool,
    /// The name the player joins with (its identity with `--auth-secret`).
    pub name: Option<String>,
}

/// Why a `Hello` has no room.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// The room in the URL or seat token is not open (closed, or never
    /// existed here).
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
    /// The join token was refused.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The seat token was refused.
    #[error(transparent)]
    Seat(#[from] SeatError),
    /// The directory could not claim the seat.
    #[error("the room directory is unavailable")]
    Unavailable,
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

/// What a `Hello` (and its URL) ask for.
#[derive(Debug, Clone, Default)]
pub struct Arrival<'a> {
    /// The room the URL names (`/ws?room=ID`).
    pub url_room: Option<RoomId>,
    /// `Hello.resume_token`.
    pub resume: Option<&'a ResumeToken>,
    /// `Hello.name`.
    pub name: Option<String>,
    /// `Hello.auth_token`: a join token, a seat token, or nothing.
    pub token: Option<&'a str>,
}

/// What admission checks against.
#[derive(Clone, Copy)]
pub struct Gate<'a> {
    /// This process's rooms.
    pub local: &'a LocalDirectory,
    /// Where seats were reserved (the local directory, or a fleet's).
    pub directory: &'a dyn Directory,
    /// Signs and checks seat tokens.
    pub seat_key: &'a SeatKey,
    /// `--auth-secret`.
    pub secret: Option<&'a AuthSecret>,
}

/// The room and name for `arrival` at unix time `now_ms`.
pub async fn admit(
    gate: Gate<'_>,
    arrival: Arrival<'_>,
    now_ms: u64,
) -> Result<Admission, AdmitError> {
    if let Some(token) = arrival.token.filter(|t| seat::is_seat_token(t)) {
        return admit_seat(gate, &arrival, token, now_ms).await;
    }
    let name = auth::admit(gate.secret, arrival.name, arrival.token, now_ms / 1000)?;
    let rooms = &gate.local.host().env().rooms;
    if let Some(token) = arrival.resume {
        // The resumed player still holds its seat.
        let id = arrival
            .url_room
            .or_else(|| rooms.room_of_token(token))
            .ok_or(AdmitError::ResumeFailed)?;
        return resume(gate, id, arrival.url_room.is_some(), name);
    }
    if arrival.url_room.is_some() {
        return Err(SeatError::Missing.into());
    }
    let kind = &gate.local.host().kinds().default_kind().spec.name;
    let room = gate.local.seat_plain(kind)?;
    Ok(Admission {
        room,
        seated: true,
        name,
    })
}

async fn admit_seat(
    gate: Gate<'_>,
    arrival: &Arrival<'_>,
    token: &str,
    now_ms: u64,
) -> Result<Admission, AdmitError> {
    let claims = if arrival.resume.is_some() {
        seat::verify_signature(gate.seat_key, token)?
    } else {
        seat::verify(gate.seat_key, token, now_ms)?
    };
    if arrival.url_room.is_some_and(|r| r != claims.room) {
        return Err(SeatError::WrongRoom.into());
    }
    if let (Some(id), Some(name)) = (&claims.identity, &arrival.name)
        && id != name
    {
        return Err(SeatError::NameMismatch.into());
    }
    let name = claims.identity.clone().or_else(|| arrival.name.clone());
    if arrival.resume.is_some() {
        return resume(gate, claims.room, true, name);
    }
    // Looked up before the claim: a seat claimed is ours to release, which
    // needs its room.
    let room = gate
        .local
        .host()
        .env()
        .rooms
        .get(claims.room)
        .ok_or(AdmitError::NoSuchRoom)?;
    match gate.directory.claim(claims.room, claims.seat, now_ms).await {
        Ok(Claim::Taken(_)) => Ok(Admission {
            room,
            seated: true,
            name,
        }),
        Ok(Claim::Expired) => Err(SeatError::ExpiredDuringClaim.into()),
        Ok(Claim::Unknown) => Err(SeatError::Used.into()),
        Err(_) => Err(AdmitError::Unavailable),
    }
}

fn resume(
    gate: Gate<'_>,
    id: RoomId,
    named: bool,
    name: Option<String>,
) -> Result<Admission, AdmitError> {
    let room = gate.local.host().env().rooms.get(id).ok_or(if named {
        AdmitError::NoSuchRoom
    } else {
        AdmitError::ResumeFailed
    })?;
    Ok(Admission {
        room,
        seated: false,
        name,
    })
}
