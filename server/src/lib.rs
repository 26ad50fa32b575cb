//! # ticksync-server
//!
//! The authoritative fixed-tick game server: many independent rooms in one
//! process. Layout:
//!
//! - [`sim`]: the pure simulation (world, input validation, snapshot planning);
//! - [`room`]: a room = a world, its views, its clients and its command queue;
//!   kinds, lifecycle, registry;
//! - [`schedule`]: the tick threads that run the rooms on their schedules;
//! - [`matchmaker`]: where a player plays (joinOrCreate, the room directory,
//!   seat tokens);
//! - [`fleet`]: many processes sharing a Redis directory (`--redis`);
//! - [`net`]: accept loop, HTTP endpoints, WebSocket sessions;
//! - [`monitor`]: the operator's view (`--monitor`) and its credential;
//! - [`session`]: what a room and a connection share (ids, closing);
//! - [`agones`]: running as an Agones game server (`--agones`);
//! - [`config`], [`metrics`], [`shared`], [`auth`]: what the parts share.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ticksync_server::StartError> {
//! let server = ticksync_server::Server::start(ticksync_server::Config::for_tests()).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod agones;
pub mod auth;
pub mod config;
pub mod fleet;
pub mod matchmaker;
pub mod metrics;
pub mod monitor;
pub mod net;
pub mod room;
pub mod schedule;
pub mod session;
pub mod shared;
pub mod sim;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;

use ticksync_protocol::{EntityState, Tick};

pub use config::Config;
pub use metrics::Metrics;
use room::{RoomEnv, RoomHandle, RoomHost, RoomId, RoomInfo, Rooms};
use schedule::Scheduler;
use shared::Shared;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] net::tls::TlsError),
    /// The tick thread could not be spawned.
    #[error("cannot start the tick thread: {0}")]
    Thread(std::io::Error),
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tls: Option<Arc<net::tls::Tls>>,
    tls_watch: Option<tokio::task::JoinHandle<()>>,
    sampler: Option<tokio::task::JoinHandle<()>>,
    scheduler: Option<Scheduler>,
    stop_accept: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    fleet: Option<fleet::Running>,
    agones: Option<agones::Agones>,
    stop_requested: Arc<watch::Sender<bool>>,
}

impl Server {
    /// Validates the config, binds the listener and starts the tick threads and
    /// the accept loop. Must be called inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        config.validate().map_err(StartError::Config)?;
        let kinds = config.kinds().map_err(StartError::Config)?;
        let tls = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => Some(Arc::new(net::tls::Tls::load(cert, key)?)),
            _ => None,
        };
        let listener = TcpListener::bind(config.bind)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.bind,
            source,
        })?;
        let senders = net::send::Senders::spawn();
        let scheduler = Scheduler::start(config.tick_threads(), config.tick_nice, &senders)
            .map_err(StartError::Thread)?;
        let metrics = Arc::new(Metrics::new());
        let env = RoomEnv {
            metrics: metrics.clone(),
            rooms: Arc::new(Rooms::new(
                config.max_rooms,
                u32::try_from(config.max_players).unwrap_or(u32::MAX),
            )),
        };
        let placement = scheduler.placement().clone();
        let host = RoomHost::new(kinds, env, placement.clone());
        let mut shared = Shared::new(config, metrics, host, placement);
        let fleet = match shared.config.fleet.redis.is_some() {
            true => Some(Self::join_fleet(&mut shared, addr)?),
            false => None,
        };
        let shared = Arc::new(shared);
        let fleet = match fleet {
            Some(f) => Some(fleet::Running::start(f).await),
            None => None,
        };
        let (stop_accept, stop_rx) = watch::channel(false);
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let accept = tokio::spawn(net::accept_loop(
            listener,
            shared.clone(),
            stop_rx,
            acceptor,
        ));
        tokio::spawn(matchmaker::reaper::run(
            shared.directory.clone(),
            shared.metrics.clone(),
            stop_accept.subscribe(),
        ));
        let every = shared.config.tls_watch;
        let tls_watch = tls
            .as_ref()
            .filter(|_| !every.is_zero())
            .map(|t| tokio::spawn(t.clone().watch(shared.clone(), every)));
        let stop_requested = Arc::new(watch::Sender::new(false));
        // Listening: Ready may go out now.
        let agones = shared
            .config
            .agones
            .enabled
            .then(|| start_agones(&shared, stop_requested.clone()));
        let sampler = shared
            .monitor
            .as_ref()
            .map(|_| tokio::spawn(monitor::Monitor::sample(shared.clone())));
        Ok(Server {
            addr,
            shared,
            tls,
            tls_watch,
            sampler,
            scheduler: Some(scheduler),
            stop_accept,
            accept,
            fleet,
            agones,
            stop_requested,
        })
    }

    /// Resolves when something inside the server asks for a drain: the
    /// Agones GameServer was deleted or shut down. The binary then drains as
    /// on SIGTERM.
    pub async fn stop_requested(&self) {
        let mut rx = self.stop_requested.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// The Agones integration, with `--agones`.
    pub fn agones(&self) -> Option<&agones::Agones> {
        self.agones.as_ref()
    }

    /// Makes `shared` a fleet member: seats are found and reserved through
    /// Redis from now on.
    fn join_fleet(shared: &mut Shared, addr: SocketAddr) -> Result<Arc<fleet::Fleet>, StartError> {
        let config = &shared.config;
        let url = config
            .fleet
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let max_players = u32::try_from(config.max_players).unwrap_or(u32::MAX);
        let member = fleet::Fleet::new(config.fleet.clone(), url, shared.host.clone(), max_players)
            .map_err(|e| StartError::Config(format!("--redis: {e}")))?;
        let member = Arc::new(member);
        shared.directory = Arc::new(fleet::RedisDirectory::new(member.clone()));
        shared.fleet = Some(member.clone());
        Ok(member)
    }

    /// This process's fleet membership (`--redis`).
    pub fn fleet(&self) -> Option<&Arc<fleet::Fleet>> {
        self.fleet.as_ref().map(|r| &r.fleet)
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Loads the TLS certificate and key from their files again: new connections
    /// get the new pair, established ones keep theirs. A pair that does not load
    /// (unreadable, malformed, key not the certificate's) is refused with an
    /// error log, and the current one stays. Counted in
    /// `ticksync_tls_reloads_total`. SIGHUP does the same for the binary.
    pub fn reload_tls(&self) -> Result<(), net::tls::TlsError> {
        let tls = self.tls.as_ref().ok_or(net::tls::TlsError::NotConfigured)?;
        tls.reload_counted(&self.shared.metrics, "request")
    }

    /// The TLS state (its current certificate), if the server serves TLS.
    pub fn tls(&self) -> Option<&net::tls::Tls> {
        self.tls.as_deref()
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The effective configuration.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Every open room, as `GET /rooms` lists them.
    pub fn rooms(&self) -> Vec<RoomInfo> {
        self.shared.rooms().list()
    }

    /// An open room by id: its figures, and its commands (world, detail, kick,
    /// close).
    pub fn room(&self, id: RoomId) -> Option<Arc<RoomHandle>> {
        self.shared.rooms().get(id)
    }

    /// The room a plain client is seated in when it fits: the fullest open room
    /// of the default kind (ties: the oldest). `None` if there is none.
    pub fn default_room(&self) -> Option<Arc<RoomHandle>> {
        let kind = &self.shared.host.kinds().default_kind().spec.name;
        let mut rooms = self.shared.rooms().handles(Some(kind));
        rooms.sort_by_key(|r| {
            (
                std::cmp::Reverse(r.players()),
                std::cmp::Reverse(r.info().age_secs),
                r.id,
            )
        });
        rooms.into_iter().next()
    }

    /// The default room's current tick and every entity, sorted by id, as its
    /// thread holds them right after a tick's snapshots. `None` if there is no
    /// such room (none opened yet, or it closed) or the server has stopped.
    pub async fn world(&self) -> Option<(Tick, Vec<EntityState>)> {
        self.default_room()?.world().await.ok()
    }

    /// Resolves once a drain has begun: [`Server::shutdown`], or an operator's
    /// `POST /drain`. The latter only stops admitting (`/healthz` 503, no new
    /// connection, room or seat); the players in stay until the server's
    /// owner calls [`Server::shutdown`], as the binary does at once (then it
    /// exits 0), so a fleet member is marked draining before they leave.
    pub async fn drain_requested(&self) {
        self.shared.drain_begun().await
    }

    /// Graceful drain: `/healthz` turns 503, new connections and rooms are
    /// refused at once, every client gets its queued snapshots and a close
    /// 1001, then the tick threads stop. Returns after at most about
    /// `--drain-timeout`.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        // The accept loop keeps running while draining, so load balancers see
        // `/healthz` answer 503 and new clients get a 503 instead of a reset.
        // A drain requested by `POST /drain` has stopped admitting already.
        self.shared.stop_admitting();
        // The fleet learns first, so players told to leave matchmake elsewhere.
        if let Some(fleet) = &self.fleet {
            fleet.drain().await;
        }
        self.shared.close_all_for_drain();
        let deadline = tokio::time::Instant::now() + self.shared.config.drain_timeout;
        while !self.shared.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if let Some(agones) = self.agones.take() {
            agones.shutdown().await;
        }
        let _ = self.stop_accept.send(true);
        for task in [self.tls_watch.take(), self.sampler.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
        if let Some(mut scheduler) = self.scheduler.take() {
            let _ = tokio::task::spawn_blocking(move || scheduler.stop()).await;
        }
        let _ = (&mut self.accept).await;
        if let Some(fleet) = self.fleet.take() {
            fleet.stop().await;
        }
        info!(
            remaining = self.shared.connections.len(),
            "shutdown complete"
        );
    }
}

/// Starts the Agones tasks of a listening server; a deleted GameServer
/// requests the drain.
fn start_agones(shared: &Arc<Shared>, stop_requested: Arc<watch::Sender<bool>>) -> agones::Agones {
    agones::Agones::start(
        &shared.config.agones,
        Arc::new(agones::probe::ServerProbe::new(shared.clone())),
        shared.metrics.agones.clone(),
        Box::new(move || {
            stop_requested.send_replace(true);
        }),
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server dropped without `shutdown` still stops its threads and tasks.
        if let Some(s) = &self.scheduler {
            s.request_stop();
        }
        let _ = self.stop_accept.send(true);
        self.accept.abort();
        for task in [&self.tls_watch, &self.sampler].into_iter().flatten() {
            task.abort();
        }
    }
}
