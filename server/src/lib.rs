//! # ticksync-server
//!
//! The authoritative fixed-tick game server. Layout:
//!
//! - [`sim`]: the pure simulation (world, input validation, snapshot planning);
//! - [`tick`]: the tick thread that owns the world and feeds every client;
//! - [`net`]: accept loop, HTTP endpoints, WebSocket sessions;
//! - [`config`], [`metrics`], [`shared`]: what the parts share.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ticksync_server::StartError> {
//! let server = ticksync_server::Server::start(ticksync_server::Config::for_tests()).await?;
//! println!("listening on http://{}", server.local_addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod metrics;
pub mod net;
pub mod shared;
pub mod sim;
pub mod tick;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use ticksync_protocol::messages::close;
use ticksync_protocol::{EntityState, Tick};

pub use config::Config;
use metrics::DisconnectReason;
pub use metrics::Metrics;
use shared::{CloseCause, Shared};

/// Capacity of the command channel from connections to the tick thread.
const COMMAND_QUEUE: usize = 16 * 1024;

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
    stop_tick: Arc<AtomicBool>,
    stop_accept: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
    tick: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Validates the config, binds the listener and starts the tick thread and the
    /// accept loop. Must be called inside a tokio runtime.
    pub async fn start(config: Config) -> Result<Server, StartError> {
        config.validate().map_err(StartError::Config)?;
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
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        let mut shared = Shared::new(config, tx);
        shared.senders = net::send::Senders::spawn();
        let shared = Arc::new(shared);
        let stop_tick = Arc::new(AtomicBool::new(false));
        let stop = stop_tick.clone();
        let tick = tick::spawn(shared.clone(), rx, move || stop.load(Ordering::Acquire))
            .map_err(StartError::Thread)?;
        let (stop_accept, stop_rx) = watch::channel(false);
        let acceptor = tls.as_ref().map(|t| t.acceptor());
        let accept = tokio::spawn(net::accept_loop(
            listener,
            shared.clone(),
            stop_rx,
            acceptor,
        ));
        let every = shared.config.tls_watch;
        let tls_watch = tls
            .as_ref()
            .filter(|_| !every.is_zero())
            .map(|t| tokio::spawn(t.clone().watch(shared.clone(), every)));
        Ok(Server {
            addr,
            shared,
            tls,
            tls_watch,
            stop_tick,
            stop_accept,
            accept,
            tick: Some(tick),
        })
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

    /// The world's current tick and every entity, sorted by id, as the tick thread
    /// holds them between two ticks. `None` if the tick thread has stopped.
    pub async fn world(&self) -> Option<(Tick, Vec<EntityState>)> {
        let (reply, rx) = oneshot::channel();
        self.shared
            .commands
            .send(tick::Command::Inspect { reply })
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Graceful drain: `/healthz` turns 503 and new connections are refused at
    /// once, every client gets its queued snapshots and a close 1001, then the
    /// tick thread stops. Returns after at most about `--drain-timeout`.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        // The accept loop keeps running while draining, so load balancers see
        // `/healthz` answer 503 and new clients get a 503 instead of a reset.
        self.shared.draining.store(true, Ordering::Release);
        let cause = CloseCause {
            code: close::GOING_AWAY,
            reason: "server shutting down",
            metric: DisconnectReason::shutdown,
        };
        for entry in self.shared.connections.iter() {
            entry.closer.close(cause);
        }
        let deadline = tokio::time::Instant::now() + self.shared.config.drain_timeout;
        while !self.shared.connections.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = self.stop_accept.send(true);
        if let Some(w) = self.tls_watch.take() {
            w.abort();
        }
        self.stop_tick.store(true, Ordering::Release);
        if let Some(t) = self.tick.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
        let _ = (&mut self.accept).await;
        info!(
            remaining = self.shared.connections.len(),
            "shutdown complete"
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A server dropped without `shutdown` still stops its thread and tasks.
        self.stop_tick.store(true, Ordering::Release);
        let _ = self.stop_accept.send(true);
        self.accept.abort();
        if let Some(w) = &self.tls_watch {
            w.abort();
        }
    }
}
