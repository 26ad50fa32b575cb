//! "Open a room for this seat": how one member asks another to open a room
//! when no room of the kind has a free seat. The request goes to the target's
//! list `inbox:<member>` in Redis; the target opens the room (or reserves in
//! one of its own rooms that got a free seat meanwhile), publishes it with the
//! seat reserved, and answers on `reply:<request>`. The asking member waits at
//! most `--fleet-create-timeout` (a dead or stuck target times out and the
//! next least-loaded member is asked). Requests live 10 s in Redis, so a
//! target that was down does not open rooms nobody waits for any more.

use std::sync::Arc;
use std::time::Duration;

use redis::AsyncTypedCommands;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{debug, warn};

use super::{Fleet, FleetError, StoredSeat};
use crate::matchmaker::local_listing;
use crate::matchmaker::policy::{self, Listing};
use crate::room::CreateError;

/// How long requests and answers stay in Redis.
const MESSAGE_TTL_SECS: i64 = 10;

/// A create request.
#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: String,
    kind: String,
    seat: String,
    stored: StoredSeat,
}

/// The answer to a create request.
#[derive(Debug, Serialize, Deserialize)]
enum Answer {
    /// The room (its id, taken seats, capacity) with the seat reserved.
    Opened {
        room: String,
        taken: u32,
        capacity: u32,
    },
    /// Why the member opened none.
    Refused(String),
}

/// What an open attempt gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A room with the seat reserved in it.
    Room(Listing),
    /// The member could not (full, draining, unknown kind).
    Refused(String),
}

impl Fleet {
    /// A room of `kind` with `seat` reserved in it, on this member: one of its
    /// rooms that `POST /matchmake` would offer (a free seat and someone in it
    /// or on the way, `policy::matchmake_order`), else a new one. One at a time per member,
    /// so concurrent requests that all found every room full share a room.
    pub async fn open_here(
        &self,
        kind: &str,
        seat: &str,
        stored: &StoredSeat,
    ) -> Result<Opened, FleetError> {
        let _one = self.opening.lock().await;
        if self.is_draining() {
            return Ok(Opened::Refused(CreateError::Draining.to_string()));
        }
        // Its own rooms as `POST /matchmake` ranks rooms (the same policy as a
        // single process): one that another create request just opened has a
        // reservation and is shared; one everyone has left is not offered.
        let mine = self
            .fleet_open_rooms(kind)
            .await?
            .into_iter()
            .filter(|r| r.member == self.member)
            .map(|r| r.listing)
            .collect();
        for l in policy::matchmake_order(mine, kind) {
            if self.reserve(l.room, seat, stored).await? {
                return Ok(Opened::Room(Listing {
                    endpoint: self.url.clone(),
                    ..l
                }));
            }
        }
        let room = match self.host.create(kind, false) {
            Ok(room) => room,
            Err(e) => return Ok(Opened::Refused(e.to_string())),
        };
        if !self.publish_opened(&room, seat, stored).await? {
            // Left to close as idle: nobody can be seated in it.
            return Ok(Opened::Refused(
                "this member is draining or not registered".into(),
            ));
        }
        Ok(Opened::Room(Listing {
            endpoint: self.url.clone(),
            ..local_listing(&room)
        }))
    }

    /// Asks `member` to open a room of `kind` with `seat` reserved, waiting at
    /// most `--fleet-create-timeout`.
    pub async fn ask_open(
        &self,
        member: &str,
        url: &str,
        kind: &str,
        seat: &str,
        stored: &StoredSeat,
    ) -> Result<Opened, FleetError> {
        if member == self.member {
            return self.open_here(kind, seat, stored).await;
        }
        let request = Request {
            id: format!("{:016x}", rand::random::<u64>()),
            kind: kind.to_string(),
            seat: seat.to_string(),
            stored: stored.clone(),
        };
        let body = serde_json::to_string(&request).map_err(|e| FleetError::Redis(e.to_string()))?;
        let inbox = format!("{}inbox:{member}", self.prefix());
        let reply = format!("{}reply:{}", self.prefix(), request.id);
        let mut conn = self.conn.clone();
        redis::pipe()
            .lpush(&inbox, body)
            .expire(&inbox, MESSAGE_TTL_SECS)
            .exec_async(&mut conn)
            .await?;
        let limit = self.config.fleet_create_timeout;
        let answer = self
            .wait_list(&reply, limit)
            .await?
            .ok_or(FleetError::Timeout)?;
        match serde_json::from_str(&answer) {
            Ok(Answer::Opened {
                room,
                taken,
                capacity,
            }) => Ok(Opened::Room(Listing {
                room: room
                    .parse()
                    .map_err(|_| FleetError::Redis(format!("bad room id {room:?}")))?,
                kind: kind.to_string(),
                taken,
                capacity,
                // Just opened, or a room of the member's with a free seat.
                locked: false,
                endpoint: url.to_string(),
            })),
            Ok(Answer::Refused(why)) => Ok(Opened::Refused(why)),
            Err(e) => Err(FleetError::Redis(format!("bad answer from {member}: {e}"))),
        }
    }

    /// BLPOP on a connection of its own (a blocking command would hold up
    /// every other command on the shared one); `None` after `limit`.
    async fn wait_list(&self, key: &str, limit: Duration) -> Result<Option<String>, FleetError> {
        let mut conn = self.client.get_multiplexed_async_connection().await?;
        let popped = tokio::time::timeout(
            limit + Duration::from_secs(1),
            conn.blpop(key, limit.as_secs_f64()),
        )
        .await
        .map_err(|_| FleetError::Timeout)??;
        Ok(popped.map(|[_, value]| value))
    }

    /// Serves this member's create requests until `stop` turns true.
    pub async fn run_inbox(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let inbox = format!("{}inbox:{}", self.prefix(), self.member);
        loop {
            let next = tokio::select! {
                next = self.wait_list(&inbox, Duration::from_secs(1)) => next,
                _ = stop.changed() => return,
            };
            match next {
                Ok(Some(body)) => self.answer(&body).await,
                Ok(None) => {}
                Err(e) => {
                    debug!(error = %e, "fleet inbox: redis unavailable");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    async fn answer(&self, body: &str) {
        let Ok(req) = serde_json::from_str::<Request>(body) else {
            warn!(body, "fleet inbox: malformed request dropped");
            return;
        };
        let answer = match self.open_here(&req.kind, &req.seat, &req.stored).await {
            Ok(Opened::Room(l)) => Answer::Opened {
                room: l.room.to_string(),
                taken: l.taken,
                capacity: l.capacity,
            },
            Ok(Opened::Refused(why)) => Answer::Refused(why),
            Err(e) => Answer::Refused(e.to_string()),
        };
        let reply = format!("{}reply:{}", self.prefix(), req.id);
        let Ok(text) = serde_json::to_string(&answer) else {
            return;
        };
        let mut conn = self.conn.clone();
        let sent = redis::pipe()
            .lpush(&reply, text)
            .expire(&reply, MESSAGE_TTL_SECS)
            .exec_async(&mut conn)
            .await;
        if let Err(e) = sent {
            warn!(error = %e, request = %req.id, "fleet inbox: cannot answer");
        }
    }
}
