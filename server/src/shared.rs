//! State shared by the accept loop, connection tasks and HTTP handlers: the
//! config, metrics, the connection registry, the room host (kinds,
//! registry, tick threads), the monitor, and the drain switch.
//!
//! Rooms do not see this: they get a [`crate::room::RoomEnv`] (metrics and
//! registry) only, so nothing here depends on a room's internals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::sync::Notify;

use ticksync_protocol::messages::close;

use crate::config::Config;
use crate::fleet::Fleet;
use crate::matchmaker::admit::Gate;
use crate::matchmaker::seat::SeatKey;
use crate::matchmaker::{Directory, LocalDirectory};
use crate::metrics::{DisconnectReason, Metrics};
use crate::monitor::Monitor;
use crate::net::STALLED_TICK_THREAD;
use crate::net::limits::{ApiConfig, ApiLimits};
use crate::room::{RoomHost, Rooms};
use crate::schedule::Placement;
use crate::session::{CloseCause, Closer, ConnId};

/// The close every player gets when the server drains.
const SHUTTING_DOWN: CloseCause = CloseCause {
    code: close::GOING_AWAY,
    reason: "server shutting down",
    metric: DisconnectReason::shutdown,
};

/// A registered connection.
#[derive(Debug)]
pub struct ConnEntry {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Closes it.
    pub closer: Closer,
}

/// Everything the tasks of one server share.
#[derive(Debug)]
pub struct Shared {
    /// The validated configuration.
    pub config: Config,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Set on shutdown: refuse new connections, `/healthz` answers 503.
    draining: AtomicBool,
    /// Every open connection.
    pub connections: DashMap<ConnId, ConnEntry>,
    next_conn: AtomicU64,
    /// Opens rooms; holds the kinds and the registry.
    pub host: Arc<RoomHost>,
    /// The tick threads' figures.
    pub placement: Arc<Placement>,
    /// This process's rooms and reservations (plain joins are seated here).
    pub local: Arc<LocalDirectory>,
    /// Where `POST /matchmake` reserves seats: `local` unless a fleet
    /// directory replaces it.
    pub directory: Arc<dyn Directory>,
    /// Signs and checks seat tokens.
    pub seat_key: SeatKey,
    /// This process's membership in a fleet (`--redis`).
    pub fleet: Option<Arc<Fleet>>,
    /// Per-address limits of `POST /matchmake` and `GET /rooms`.
    pub api_limits: ApiLimits,
    /// The operator's view and its credential (`--monitor`).
    pub monitor: Option<Monitor>,
    /// Woken when a drain begins.
    drain_begun: Notify,
}

impl Shared {
    /// Shared state around a room host.
    pub fn new(
        config: Config,
        metrics: Arc<Metrics>,
        host: RoomHost,
        placement: Arc<Placement>,
    ) -> Shared {
        let host = Arc::new(host);
        let local = Arc::new(LocalDirectory::new(host.clone()));
        // A fleet's members share the seat key: tokens minted by one member
        // are checked by the room's member.
        let seat_key = SeatKey::new(config.fleet.seat_secret(config.auth_secret.as_ref()));
        let api_limits = ApiLimits::new(ApiConfig {
            rate: config.matchmake_rate(),
            burst: config.matchmake_burst(),
            seats: config.seats_per_ip(),
            window: config.seat_timeout,
        });
        let monitor = (config.admin_token.clone())
            .filter(|_| config.monitor)
            .map(Monitor::new);
        Shared {
            monitor,
            drain_begun: Notify::new(),
            config,
            metrics,
            draining: AtomicBool::new(false),
            connections: DashMap::new(),
            next_conn: AtomicU64::new(1),
            host,
            placement,
            directory: local.clone(),
            local,
            seat_key,
            fleet: None,
            api_limits,
        }
    }

    /// What admission checks a `Hello` against.
    pub fn gate(&self) -> Gate<'_> {
        Gate {
            local: &self.local,
            directory: self.directory.as_ref(),
            seat_key: &self.seat_key,
            secret: self.config.auth_secret.as_ref(),
        }
    }

    /// Shared state for tests of the network shell alone: default kinds, an
    /// empty registry, and no tick threads (rooms opened are dropped).
    #[cfg(test)]
    pub(crate) fn for_tests(config: Config) -> Shared {
        let metrics = Arc::new(Metrics::new());
        let env = crate::room::RoomEnv {
            metrics: metrics.clone(),
            rooms: Arc::new(Rooms::new(config.max_rooms, 100)),
        };
        let placement = Arc::new(Placement::without_threads());
        let kinds = config.kinds().expect("valid test config");
        let host = RoomHost::new(kinds, env, placement.clone());
        Shared::new(config, metrics, host, placement)
    }

    /// The room registry.
    pub fn rooms(&self) -> &Arc<Rooms> {
        &self.host.env().rooms
    }

    /// A fresh connection id.
    pub fn next_conn_id(&self) -> ConnId {
        ConnId(self.next_conn.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether the server is shutting down.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The first step of the graceful drain (SIGTERM, `Server::shutdown`,
    /// `POST /drain`): `/healthz` turns 503 and no new connection, room or
    /// seat is accepted; whoever waits on [`Shared::drain_begun`] is woken.
    /// Players already in stay until [`Shared::close_all_for_drain`] (the
    /// server's owner finishes the drain: `Server::shutdown`). Returns false
    /// if a drain had begun already.
    pub fn stop_admitting(&self) -> bool {
        if self.draining.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.host.stop_opening();
        self.drain_begun.notify_waiters();
        true
    }

    /// Asks every connection to finish: its queued snapshots, then close 1001.
    pub fn close_all_for_drain(&self) {
        for entry in self.connections.iter() {
            entry.closer.close(SHUTTING_DOWN);
        }
    }

    /// Waits until a drain has begun.
    pub async fn drain_begun(&self) {
        loop {
            // Registered before the check: a drain in between still wakes it.
            let begun = self.drain_begun.notified();
            if self.is_draining() {
                return;
            }
            begun.await;
        }
    }

    /// `/healthz`'s status (`ok`, `draining` or `stalled`) and the number of
    /// stalled tick threads.
    pub fn health(&self) -> (&'static str, usize) {
        let stalled = self.placement.stalled_threads(STALLED_TICK_THREAD);
        let status = if self.is_draining() {
            "draining"
        } else if stalled > 0 {
            "stalled"
        } else {
            "ok"
        };
        (status, stalled)
    }
}
