//! [`RedisDirectory`]: the matchmaker's [`Directory`] over the fleet's Redis,
//! so `POST /matchmake` on any member finds a seat anywhere in the fleet with
//! the same joinOrCreate rule as a single process (`matchmaker::matchmake`).

use std::sync::Arc;

use futures_util::FutureExt;
use tracing::warn;

use super::inbox::Opened;
use super::seats::Claimed;
use super::{Fleet, FleetError, StoredSeat};
use crate::matchmaker::directory::DirFuture;
use crate::matchmaker::policy::Listing;
use crate::matchmaker::seat::SeatId;
use crate::matchmaker::{Claim, Directory, DirectoryError, Reservation};
use crate::room::{RoomId, RoomInfo};

/// Members asked in turn to open a room before a matchmake gives up.
const OPEN_ATTEMPTS: usize = 3;

/// The fleet-wide directory of a member.
#[derive(Debug, Clone)]
pub struct RedisDirectory {
    fleet: Arc<Fleet>,
}

impl RedisDirectory {
    /// The directory `fleet` keeps in Redis.
    pub fn new(fleet: Arc<Fleet>) -> RedisDirectory {
        RedisDirectory { fleet }
    }

    async fn create_in_fleet(
        &self,
        kind: &str,
        seat: &Reservation,
    ) -> Result<Listing, DirectoryError> {
        let fleet = &self.fleet;
        if fleet.host.kinds().get(kind).is_none() {
            return Err(DirectoryError::UnknownKind(kind.to_string()));
        }
        let mut members = fleet.members().await.map_err(unavailable)?;
        members.retain(|m| !m.draining && m.taken < m.capacity);
        if members.is_empty() {
            return Err(DirectoryError::Full);
        }
        // Least loaded first; among equals the one with fewer rooms, then this
        // member (no round trip), then by id.
        members.sort_by(|a, b| {
            a.load()
                .total_cmp(&b.load())
                .then(a.rooms.cmp(&b.rooms))
                .then((a.id != fleet.member).cmp(&(b.id != fleet.member)))
                .then(a.id.cmp(&b.id))
        });
        let stored = stored(seat);
        let seat_id = seat.seat.to_string();
        for m in members.iter().take(OPEN_ATTEMPTS) {
            match fleet.ask_open(&m.id, &m.url, kind, &seat_id, &stored).await {
                Ok(Opened::Room(listing)) => return Ok(listing),
                Ok(Opened::Refused(why)) => {
                    warn!(member = %m.id, why, "fleet member refused to open a room");
                }
                Err(FleetError::Timeout) => {
                    warn!(member = %m.id, "fleet member did not open a room in time");
                }
                Err(e) => return Err(unavailable(e)),
            }
        }
        Err(DirectoryError::Full)
    }
}

fn unavailable(e: FleetError) -> DirectoryError {
    DirectoryError::Unavailable(e.to_string())
}

fn stored(seat: &Reservation) -> StoredSeat {
    StoredSeat {
        kind: seat.kind.clone(),
        identity: seat.identity.clone(),
        expires_ms: seat.expires_ms,
    }
}

impl Directory for RedisDirectory {
    fn open_rooms<'a>(&'a self, kind: &'a str) -> DirFuture<'a, Vec<Listing>> {
        async move { self.fleet.open_rooms(kind).await.map_err(unavailable) }.boxed()
    }

    fn reserve<'a>(&'a self, room: &'a Listing, seat: &'a Reservation) -> DirFuture<'a, bool> {
        async move {
            self.fleet
                .reserve(room.room, seat.seat, &stored(seat))
                .await
                .map_err(unavailable)
        }
        .boxed()
    }

    fn create<'a>(&'a self, kind: &'a str, seat: &'a Reservation) -> DirFuture<'a, Listing> {
        self.create_in_fleet(kind, seat).boxed()
    }

    fn claim(&self, room: RoomId, seat: SeatId, now_ms: u64) -> DirFuture<'_, Claim> {
        async move {
            let Some(handle) = self.fleet.host.env().rooms.get(room) else {
                return Ok(Claim::Unknown);
            };
            let s = match self.fleet.claim(&handle, seat).await.map_err(unavailable)? {
                Claimed::Seat(s) => s,
                Claimed::Expired => return Ok(Claim::Expired),
                Claimed::Unknown => return Ok(Claim::Unknown),
            };
            if now_ms >= s.expires_ms {
                // Redis's clock still held it; this member's says it is void.
                self.fleet.host.env().rooms.pool.release(&handle.seats);
                return Ok(Claim::Expired);
            }
            Ok(Claim::Taken(Reservation {
                seat,
                kind: s.kind,
                identity: s.identity,
                expires_ms: s.expires_ms,
            }))
        }
        .boxed()
    }

    fn expire(&self, _now_ms: u64) -> DirFuture<'_, u32> {
        // Reservations expire inside Redis: every script that counts seats
        // drops the expired ones first (`ZREMRANGEBYSCORE` by Redis's clock),
        // and nothing is held locally until a claim.
        std::future::ready(Ok(0)).boxed()
    }

    fn list(&self) -> DirFuture<'_, Vec<RoomInfo>> {
        async move {
            let rooms = self.fleet.rooms().await.map_err(unavailable)?;
            Ok(rooms.into_iter().map(|r| r.info).collect())
        }
        .boxed()
    }
}
