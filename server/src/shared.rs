//! State shared by the accept loop, connection tasks and HTTP handlers: the
//! config, metrics, the connection registry, and the room host (kinds,
//! registry, tick threads).
//!
//! Rooms do not see this: they get a [`crate::room::RoomEnv`] (metrics and
//! registry) only, so nothing here depends on a room's internals.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;

use crate::config::Config;
use crate::fleet::Fleet;
use crate::matchmaker::admit::Gate;
use crate::matchmaker::seat::SeatKey;
use crate::matchmaker::{Directory, LocalDirectory};
use crate::metrics::Metrics;
use crate::net::limits::{ApiConfig, ApiLimits};
use crate::room::{RoomHost, Rooms};
use crate::schedule::Placement;
use crate::session::{Closer, ConnId};

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
    pub draining: AtomicBool,
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
        Shared {
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
}
