//! A connection's outbound queue: the one way the tick side (and the
//! connection's own reader, for `Pong` and `Error`) hands encoded frames to the
//! connection's writer.
//!
//! The tick side never waits on it: [`Outbound::try_reserve`] either grants a
//! slot (before the frame is encoded, so a full client costs no encoding) or
//! says the client is full or gone. The queue is bounded; a client that does not
//! read skips ticks and is closed after the stall timeout by its room.
//!
//! How the frames reach the socket is this module's business alone: room code
//! depends only on [`Outbound`], [`OutboundPermit`] and [`Rejected`].

use bytes::Bytes;
use tokio::sync::mpsc;

/// Why a frame was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue is full: the client is not keeping up.
    Full,
    /// The connection is gone.
    Closed,
}

impl<T> From<mpsc::error::TrySendError<T>> for Rejected {
    fn from(e: mpsc::error::TrySendError<T>) -> Rejected {
        match e {
            mpsc::error::TrySendError::Full(_) => Rejected::Full,
            mpsc::error::TrySendError::Closed(_) => Rejected::Closed,
        }
    }
}

/// The sending side of one connection's outbound queue (cheap to clone).
#[derive(Debug, Clone)]
pub struct Outbound(mpsc::Sender<Bytes>);

/// A reserved slot in an outbound queue; sending through it cannot fail.
#[derive(Debug)]
pub struct OutboundPermit<'a>(mpsc::Permit<'a, Bytes>);

/// The writer's side of one connection's outbound queue.
#[derive(Debug)]
pub struct OutboundRx(mpsc::Receiver<Bytes>);

/// A bounded outbound queue of `capacity` frames.
pub fn channel(capacity: usize) -> (Outbound, OutboundRx) {
    let (tx, rx) = mpsc::channel(capacity);
    (Outbound(tx), OutboundRx(rx))
}

impl Outbound {
    /// Reserves a slot for one frame, without waiting.
    pub fn try_reserve(&self) -> Result<OutboundPermit<'_>, Rejected> {
        self.0.try_reserve().map(OutboundPermit).map_err(Into::into)
    }

    /// Queues one frame, without waiting.
    pub fn try_send(&self, frame: Bytes) -> Result<(), Rejected> {
        self.0.try_send(frame).map_err(Into::into)
    }
}

impl OutboundPermit<'_> {
    /// Queues the frame in the reserved slot.
    pub fn send(self, frame: Bytes) {
        self.0.send(frame);
    }
}

impl OutboundRx {
    /// The next frame; `None` once every [`Outbound`] is dropped and the queue is empty.
    pub async fn recv(&mut self) -> Option<Bytes> {
        self.0.recv().await
    }

    /// The next frame if one is queued.
    pub fn try_recv(&mut self) -> Option<Bytes> {
        self.0.try_recv().ok()
    }
}
