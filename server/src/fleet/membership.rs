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
        let started = std::time::Instant::now();
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
            let (taken, locked) = room.taken_and_locked();
            call.arg(room.id.to_string())
                .arg(&info.kind)
                .arg(info.capacity)
                .arg(taken)
                .arg(u8::from(locked))
                .arg(serde_json::to_string(&info).unwrap_or_default());
        }
        let published = self.run(&call).await;
        // How long claims may queue behind it (benches/fleet_matchmake.sh).
        let took_us = super::seats::micros(started.elapsed());
        tracing::debug!(took_us, "heartbeat");
        published
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

/// A member's background work (heartbeat and inbox tasks), stopped by
/// [`Running::stop`] or on drop.
#[derive(Debug)]
pub struct Running {
    /// The membership.
    pub fleet: Arc<Fleet>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Registers `fleet` once (a failure is logged: Redis may come later) and
    /// starts its heartbeat and inbox tasks.
    pub async fn start(fleet: Arc<Fleet>) -> Running {
        match fleet.heartbeat().await {
            Ok(_) => {
                info!(member = %fleet.member, url = %fleet.url, "registered in the fleet directory")
            }
            Err(e) => {
                warn!(member = %fleet.member, error = %e, "fleet directory unreachable at start-up: retrying with every heartbeat")
            }
        }
        let (stop, rx) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(fleet.clone().run_membership(rx.clone())),
            tokio::spawn(fleet.clone().run_inbox(rx)),
        ];
        Running { fleet, stop, tasks }
    }

    /// Marks the member draining in Redis (bounded: a Redis that does not
    /// answer within 2 s does not hold up the shutdown).
    pub async fn drain(&self) {
        match tokio::time::timeout(Duration::from_secs(2), self.fleet.drain()).await {
            Ok(Ok(rooms)) => {
                info!(member = %self.fleet.member, rooms, "marked draining in the fleet directory")
            }
            Ok(Err(e)) => {
                warn!(error = %e, "cannot mark this member draining in the fleet directory")
            }
            Err(_) => warn!("fleet directory did not answer the drain mark in time"),
        }
    }

    /// Stops the tasks and removes the member from the directory.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        match tokio::time::timeout(Duration::from_secs(2), self.fleet.leave()).await {
            Ok(Ok(_)) => info!(member = %self.fleet.member, "left the fleet directory"),
            _ => {
                warn!(member = %self.fleet.member, "could not leave the fleet directory: its entries expire with their TTL")
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for task in &self.tasks {
            task.abort();
        }
    }
}
