//! State shared between the accept loop, connection tasks and the tick thread:
//! the config, metrics, the connection registry and the command channel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};

use ticksync_protocol::ErrorMsg;

use crate::config::Config;
use crate::metrics::{DisconnectReason, Metrics};
use crate::net::send::Senders;
use crate::tick::Command;

/// Identifies one TCP connection (a resumed player gets a new one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(pub u64);

/// Why and how a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseCause {
    /// WebSocket close code.
    pub code: u16,
    /// Close reason text.
    pub reason: &'static str,
    /// The metric label.
    pub metric: DisconnectReason,
}

/// A close request: why, and the `Error` message (if any) the client gets
/// before the close frame. The two travel together so that whoever writes the
/// close frame also writes the `Error` (no queue in between can lose it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closing {
    /// The close code, reason and metric.
    pub cause: CloseCause,
    /// Sent right before the close frame.
    pub error: Option<ErrorMsg>,
}

/// Asks a connection's tasks to close; the first request wins.
#[derive(Debug, Clone)]
pub struct Closer(Arc<watch::Sender<Option<Closing>>>);

impl Default for Closer {
    fn default() -> Self {
        Closer(Arc::new(watch::Sender::new(None)))
    }
}

impl Closer {
    /// Requests a close without an `Error` message. Returns false if a close was
    /// already requested.
    pub fn close(&self, cause: CloseCause) -> bool {
        self.request(Closing { cause, error: None })
    }

    /// Requests a close announced by an `Error` message. Returns false if a close
    /// was already requested (that one stands, with its own message if any).
    pub fn request(&self, closing: Closing) -> bool {
        self.0.send_if_modified(|c| {
            if c.is_none() {
                *c = Some(closing);
                true
            } else {
                false
            }
        })
    }

    /// The requested close's cause, if any.
    pub fn cause(&self) -> Option<CloseCause> {
        self.0.borrow().as_ref().map(|c| c.cause)
    }

    /// The requested close, if any.
    pub fn closing(&self) -> Option<Closing> {
        self.0.borrow().clone()
    }

    /// Waits until a close is requested; returns its cause.
    pub async fn closed(&self) -> CloseCause {
        self.requested().await.cause
    }

    /// Waits until a close is requested; returns the request.
    pub async fn requested(&self) -> Closing {
        let mut rx = self.0.subscribe();
        loop {
            if let Some(c) = &*rx.borrow_and_update() {
                return c.clone();
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as `self`; unreachable in practice.
                std::future::pending::<()>().await;
            }
        }
    }
}

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
    pub metrics: Metrics,
    /// The tick of the world's current state.
    pub tick: AtomicU32,
    /// Players in the world.
    pub players: AtomicU32,
    /// Set on shutdown: refuse new connections, `/healthz` answers 503.
    pub draining: AtomicBool,
    /// Every open connection.
    pub connections: DashMap<ConnId, ConnEntry>,
    next_conn: AtomicU64,
    /// Commands to the tick thread.
    pub commands: mpsc::Sender<Command>,
    /// Where tick threads' batches of frames go (inline until the server
    /// starts its sender shards).
    pub senders: Senders,
}

impl Shared {
    /// Shared state around a command channel to the tick thread.
    pub fn new(config: Config, commands: mpsc::Sender<Command>) -> Shared {
        Shared {
            config,
            metrics: Metrics::new(),
            tick: AtomicU32::new(0),
            players: AtomicU32::new(0),
            draining: AtomicBool::new(false),
            connections: DashMap::new(),
            next_conn: AtomicU64::new(1),
            commands,
            senders: Senders::inline(),
        }
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
