//! Membership: the heartbeat that registers this member and its rooms in
//! Redis with a TTL (and so re-registers everything after a Redis restart),
//! the drain mark set at SIGTERM, and the goodbye at the end.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{info, warn};

use super::{Fleet, FleetError};

impl Fleet {
    /// Registers or refreshes this member and every room it runs; rooms it no
    /// longer runs leave the directory.
    pub async fn heartbeat(&self) -> Result<u32, FleetError> {
        let rooms = &self.host.env().rooms;
        let _writes = self.writes.lock().await;
        let mut call = self.scripts.publish.prepare_invoke();
        call.arg(self.prefix())
            .arg(&self.member)
            .arg(ms(self.config.fleet_ttl))
            .arg(&self.url)
            .arg(self.max_players)
            .arg(rooms.pool.taken())
            .arg(rooms.players())
            .arg(u8::from(self.is_draining()));
        for room in rooms.handles(None) {
            let info = room.info();
            call.arg(room.id.to_string())
                .arg(&info.kind)
                .arg(info.capacity)
                .arg(room.seats.taken())
                .arg(info.players)
                .arg(info.tick)
                .arg(info.tick_rate)
                .arg(info.age_secs);
        }
        self.run(&call).await
    }

    /// Marks this member and its rooms draining in Redis at once: no seat is
    /// reserved here any more. Heartbeats keep the mark.
    pub async fn drain(&self) -> Result<u32, FleetError> {
        self.draining.store(true, Ordering::Release);
        self.run(
            self.scripts
                .drain
                .prepare_invoke()
                .arg(self.prefix())
                .arg(&self.member),
        )
        .await
    }

    /// Removes this member and its rooms from the directory (graceful end).
    pub async fn leave(&self) -> Result<u32, FleetError> {
        self.run(
            self.scripts
                .leave
                .prepare_invoke()
                .arg(self.prefix())
                .arg(&self.member),
        )
        .await
    }

    /// The heartbeat period: a fifth of the TTL, so four heartbeats in a row
    /// can be lost before the member is forgotten.
    pub fn heartbeat_every(&self) -> Duration {
        self.config.fleet_ttl / 5
    }

    /// Heartbeats until `stop` turns true. Logs when Redis goes away and when
    /// this member is registered again.
    pub async fn run_membership(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.heartbeat_every());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut registered = false;
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            match self.heartbeat().await {
                Ok(rooms) if !registered => {
                    registered = true;
                    info!(member = %self.member, url = %self.url, rooms, "registered in the fleet directory");
                }
                Ok(_) => {}
                Err(e) if registered => {
                    registered = false;
                    warn!(member = %self.member, error = %e, "fleet directory unreachable: rooms keep running, matchmaking answers 503 until it is back");
                }
                Err(_) => {}
            }
        }
    }
}

/// A duration in whole milliseconds (Redis TTLs), at least 1.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
