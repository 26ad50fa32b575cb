//! Seats in the fleet directory: which rooms of a kind have a free seat,
//! reserving one atomically (never past capacity, under any concurrency),
//! opening a room with a seat reserved, and claiming a reservation on the
//! room's member. The Lua side is in [`super::scripts`].

use std::fmt::Display;
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use super::membership::ms;
use super::scripts::EXPIRED;
use super::{Fleet, FleetError, StoredSeat, num};
use crate::matchmaker::policy::Listing;
use crate::room::{RoomHandle, RoomId};

impl Fleet {
    /// The open rooms of `kind` on live, non-draining members, with their
    /// seats taken (including live reservations); `endpoint` is the member's
    /// public URL. For this member's own rooms `taken` is the room's count
    /// now plus the live reservations, not the count of the last heartbeat:
    /// players who left since are not counted, so a room everyone has left is
    /// seen as such at once (`policy::matchmake_order` offers it no more).
    pub async fn open_rooms(&self, kind: &str) -> Result<Vec<Listing>, FleetError> {
        Ok(self
            .fleet_open_rooms(kind)
            .await?
            .into_iter()
            .map(|r| r.listing)
            .collect())
    }

    /// [`Fleet::open_rooms`] with the member of each room.
    pub(super) async fn fleet_open_rooms(&self, kind: &str) -> Result<Vec<OpenRoom>, FleetError> {
        let flat: Vec<String> = self
            .run(
                self.scripts
                    .open_rooms
                    .prepare_invoke()
                    .arg(self.prefix())
                    .arg(kind),
            )
            .await?;
        let rooms = &self.host.env().rooms;
        Ok(flat
            .chunks_exact(6)
            .filter_map(|c| {
                let room: RoomId = c[0].parse().ok()?;
                // Another member's room is not locked as of its last
                // heartbeat (the script skips locked ones).
                let (mut taken, mut locked) = (num(&c[2]), false);
                if c[4] == self.member {
                    // Gone here: closed since the last heartbeat.
                    let here = rooms.get(room)?;
                    let (mine, lock) = here.taken_and_locked();
                    (taken, locked) = (mine.saturating_add(num(&c[5])), lock);
                }
                Some(OpenRoom {
                    listing: Listing {
                        room,
                        kind: kind.to_string(),
                        capacity: num(&c[1]),
                        taken,
                        locked,
                        endpoint: c[3].clone(),
                    },
                    member: c[4].clone(),
                })
            })
            .collect())
    }

    /// Reserves a seat in `room` until `stored.expires_ms`; false if it is
    /// full, locked, draining, or its member is gone or draining.
    pub async fn reserve(
        &self,
        room: RoomId,
        seat: impl Display,
        stored: &StoredSeat,
    ) -> Result<bool, FleetError> {
        let n: u8 = self
            .run(
                self.scripts
                    .reserve
                    .prepare_invoke()
                    .arg(self.prefix())
                    .arg(room.to_string())
                    .arg(seat.to_string())
                    .arg(stored.expires_ms)
                    .arg(json(stored)),
            )
            .await?;
        Ok(n == 1)
    }

    /// Publishes `room`, just opened here, with `seat` reserved in it. False
    /// if this member is draining or not registered (Redis restarted and the
    /// heartbeat has not run yet).
    pub async fn publish_opened(
        &self,
        room: &RoomHandle,
        seat: impl Display,
        stored: &StoredSeat,
    ) -> Result<bool, FleetError> {
        let _writes = self.writes.lock().await;
        let n: u8 = self
            .run(
                self.scripts
                    .open
                    .prepare_invoke()
                    .arg(self.prefix())
                    .arg(&self.member)
                    .arg(ms(self.config.fleet_ttl))
                    .arg(room.id.to_string())
                    .arg(&room.kind.spec.name)
                    .arg(room.seats.capacity())
                    .arg(room.seats.taken())
                    .arg(seat.to_string())
                    .arg(stored.expires_ms)
                    .arg(json(stored))
                    .arg(serde_json::to_string(&room.info()).unwrap_or_default()),
            )
            .await?;
        Ok(n == 1)
    }

    /// Claims reservation `seat` of `room` (a room of this member): takes the
    /// seat in the room's local [`crate::room::seats::Seats`] and moves it from
    /// pending to taken in Redis, in that order and under this member's write
    /// lock. With the local seat given back: [`Claimed::Expired`] if Redis's
    /// clock says the reservation ran out, [`Claimed::Unknown`] if Redis does
    /// not know it (claimed, never made) or the room is full here.
    pub async fn claim(
        &self,
        room: &RoomHandle,
        seat: impl Display,
    ) -> Result<Claimed, FleetError> {
        let pool = &self.host.env().rooms.pool;
        let asked = Instant::now();
        let _writes = self.writes.lock().await;
        let waited = asked.elapsed();
        if !pool.try_take(&room.seats) {
            return Ok(Claimed::Unknown);
        }
        let answer: Result<Option<String>, FleetError> = self
            .run(
                self.scripts
                    .claim
                    .prepare_invoke()
                    .arg(self.prefix())
                    .arg(room.id.to_string())
                    .arg(seat.to_string()),
            )
            .await;
        let claimed = match answer {
            Ok(Some(data)) if data == EXPIRED => Claimed::Expired,
            Ok(Some(data)) => serde_json::from_str(&data).map_or(Claimed::Unknown, Claimed::Seat),
            Ok(None) => Claimed::Unknown,
            Err(e) => {
                pool.release(&room.seats);
                return Err(e);
            }
        };
        if !matches!(claimed, Claimed::Seat(_)) {
            pool.release(&room.seats);
        }
        // What a claim costs and how long it queued behind this member's other
        // directory writes (heartbeats, rooms opening, other claims):
        // benches/fleet_matchmake.sh reads these.
        let (waited_us, took_us) = (micros(waited), micros(asked.elapsed() - waited));
        debug!(room = %room.id, waited_us, took_us, "seat claim");
        if waited > CLAIM_WAIT_WARN {
            warn!(room = %room.id, waited_us, "a seat claim queued behind directory writes");
        }
        Ok(claimed)
    }
}

/// A claim that waited longer than this for the write lock is logged as a
/// warning: its seat token may run out meanwhile.
const CLAIM_WAIT_WARN: Duration = Duration::from_millis(250);

/// Whole microseconds, saturating.
pub(super) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// An open room of the fleet and the member that runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct OpenRoom {
    /// The room as the matchmaker orders it.
    pub listing: Listing,
    /// Its member's id.
    pub member: String,
}

/// What [`Fleet::claim`] found in Redis.
#[derive(Debug)]
pub enum Claimed {
    /// The reservation, now a seat taken here.
    Seat(StoredSeat),
    /// It ran out before the claim.
    Expired,
    /// Claimed before, never made, or no seat free here.
    Unknown,
}

fn json(stored: &StoredSeat) -> String {
    serde_json::to_string(stored).unwrap_or_default()
}
