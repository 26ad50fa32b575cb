//! A connection's outbound path: the one way the tick side (and the
//! connection's own reader, for `Pong` and `Error`) hands encoded frames to the
//! connection's socket.
//!
//! The tick side never waits on it: [`Outbound::try_reserve`] either grants a
//! slot (before the frame is encoded, so a full client costs no encoding) or
//! says the client is full or gone. A granted frame goes into the tick thread's
//! [`SendBatch`] and reaches the socket when the batch
//! is flushed. At most `capacity` frames are outstanding (reserved and not yet
//! taken by the socket); a client that does not read skips ticks and is closed
//! after the stall timeout by its room.
//!
//! Two ways to the socket, chosen per connection when it is opened:
//!
//! - **Direct** (plain TCP): whoever delivers a frame — a sender shard, or the
//!   reader for a `Pong` — writes it, WebSocket-framed, straight into the
//!   non-blocking socket under the connection's lock: one `writev` and no task
//!   wake-up per frame. Only bytes the socket cannot take now go into the
//!   backlog, which the connection's writer task drains when the socket is
//!   writable again; while the backlog is non-empty every later byte queues
//!   behind it, so the byte stream stays in order. tungstenite's own writes (on
//!   the reader's side: pongs to client pings, close replies) go through the
//!   same lock (`GatedTcp` in `net/gated.rs`).
//! - **Queued** (TLS, tests): frames queue here for the writer task, which
//!   writes them through tungstenite.
//!
//! Room code depends only on [`Outbound`], [`OutboundPermit`] and [`Rejected`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use tokio::net::TcpStream;

pub(super) use super::gate::Gate;
use super::send::{SendBatch, ViewTickRef};
use crate::sim::ViewJob;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue is full: the client is not keeping up.
    Full,
    /// The connection is gone.
    Closed,
}

/// The sending side of one connection's outbound path (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbound(pub(super) Arc<Gate>);

/// A reserved slot; [`OutboundPermit::send`] puts a frame in it. Dropping the
/// permit unused releases the slot.
#[derive(Debug)]
pub struct OutboundPermit<'a> {
    gate: &'a Arc<Gate>,
    armed: bool,
}

/// The writer task's side of one connection's outbound path.
#[derive(Debug)]
pub struct OutboundRx(pub(super) Arc<Gate>);

/// A queued outbound path of `capacity` frames, drained by the holder of the
/// [`OutboundRx`] (tests; the server's own queued paths count their bytes).
pub fn channel(capacity: usize) -> (Outbound, OutboundRx) {
    queued(capacity, Counter::default())
}

/// A queued outbound path (TLS) counting delivered payload bytes in `bytes_sent`.
pub(super) fn queued(capacity: usize, bytes_sent: Counter) -> (Outbound, OutboundRx) {
    let gate = Arc::new(Gate::new(capacity, None, bytes_sent));
    (Outbound(gate.clone()), OutboundRx(gate))
}

/// A direct outbound path of `capacity` frames into `socket`.
pub(super) fn direct(
    capacity: usize,
    socket: Arc<TcpStream>,
    bytes_sent: Counter,
) -> (Outbound, OutboundRx) {
    let gate = Arc::new(Gate::new(capacity, Some(socket), bytes_sent));
    (Outbound(gate.clone()), OutboundRx(gate))
}

impl Outbound {
    /// Reserves a slot for one frame, without waiting.
    pub fn try_reserve(&self) -> Result<OutboundPermit<'_>, Rejected> {
        self.0.try_reserve()?;
        Ok(OutboundPermit {
            gate: &self.0,
            armed: true,
        })
    }

    /// Sends one frame now (on the calling thread), without waiting: for the
    /// few frames outside a tick's batch (`Welcome`, `Pong`, `Error`).
    pub fn try_send(&self, frame: Bytes) -> Result<(), Rejected> {
        self.0.try_send(frame)
    }

    /// The connection's last round-trip time as the server measured it with
    /// a WebSocket ping (`net/rtt.rs`), if a pong came back yet.
    pub fn rtt(&self) -> Option<Duration> {
        self.0.rtt.last()
    }
}

impl OutboundPermit<'_> {
    /// Puts the frame in the reserved slot: it reaches the socket when `batch`
    /// is flushed, after every frame sent to this connection before it.
    pub fn send(mut self, frame: Bytes, batch: &mut SendBatch) {
        self.armed = false;
        batch.push(self.gate.clone(), frame);
    }
}

impl OutboundPermit<'_> {
    /// Puts a frame still to be built in the reserved slot: the sender shard
    /// that writes it builds it from `tick`'s index just before (exact
    /// circles, `sim/view_jobs.rs`), after every frame sent to this
    /// connection before it.
    pub fn send_view(mut self, tick: ViewTickRef, job: ViewJob, batch: &mut SendBatch) {
        self.armed = false;
        batch.push_view(self.gate.clone(), tick, job);
    }
}

impl Drop for OutboundPermit<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.gate.release();
        }
    }
}

impl OutboundRx {
    /// The next queued frame, if any (queued paths only).
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.0.pop_queued()
    }

    /// The next queued frame, waiting for one (queued paths only).
    pub async fn recv(&mut self) -> Bytes {
        loop {
            if let Some(frame) = self.0.pop_queued() {
                return frame;
            }
            // A frame queued between the look and the wait leaves a permit.
            self.0.wake.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_released() {
        let (out, mut rx) = channel(2);
        let a = out.try_reserve().unwrap();
        out.try_send(Bytes::from_static(b"x")).unwrap();
        assert_eq!(out.try_reserve().unwrap_err(), Rejected::Full);
        drop(a);
        assert!(out.try_reserve().is_ok());
        assert_eq!(rx.try_recv().as_deref(), Some(&b"x"[..]));
        out.0.close();
        assert_eq!(out.try_reserve().unwrap_err(), Rejected::Closed);
    }
}
