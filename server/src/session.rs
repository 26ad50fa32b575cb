//! What a room and a connection share about one session: the connection's id
//! and the [`Closer`] either side uses to end it with one [`Closing`] (a
//! [`CloseCause`] and the `Error` message, if any, that announces it).
//!
//! Frames go the other way through `net/outbound.rs`; this module is only about
//! naming a connection and closing it.

use std::sync::Arc;

use tokio::sync::watch;

use ticksync_protocol::ErrorMsg;

use crate::metrics::DisconnectReason;

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
