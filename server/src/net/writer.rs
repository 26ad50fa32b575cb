//! A session's writer task: drains the bounded outbound queue into the socket,
//! pings, and ends with the close frame.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use ticksync_protocol::messages::close;

use super::outbound::OutboundRx;
use crate::metrics::DisconnectReason;
use crate::shared::{CloseCause, Closer, Shared};

/// Time the writer gets to flush queued frames and the close frame at the end.
pub(super) const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Frames written before one flush.
const MAX_BATCH: usize = 16;

/// The close frame for a cause.
pub(super) fn close_frame(cause: CloseCause) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(cause.code),
        reason: cause.reason.into(),
    }
}

/// The write half of a session's socket.
type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

/// Drains the outbound queue into the socket (batched, one flush per batch),
/// sends WebSocket pings, and on a close request flushes what is queued and
/// sends the close frame.
pub(super) async fn write_loop<S>(
    mut sink: Sink<S>,
    mut rx: OutboundRx,
    closer: Closer,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval(shared.config.ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            biased;
            cause = closer.closed() => {
                let _ = timeout(CLOSE_FLUSH_TIMEOUT, async {
                    while let Some(frame) = rx.try_recv() {
                        shared.metrics.bytes_sent.inc_by(frame.len() as u64);
                        sink.feed(Message::Binary(frame)).await?;
                    }
                    sink.send(Message::Close(Some(close_frame(cause)))).await
                }).await;
                return;
            }
            frame = rx.recv() => {
                let Some(frame) = frame else { return };
                let sent = tokio::select! {
                    r = send_batch(&mut sink, frame, &mut rx, &shared) => r,
                    _ = closer.closed() => return,
                };
                if sent.is_err() {
                    closer.close(CloseCause {
                        code: close::GOING_AWAY,
                        reason: "connection lost",
                        metric: DisconnectReason::connection_lost,
                    });
                    return;
                }
            }
            _ = ping.tick() => {
                let r = tokio::select! {
                    r = sink.send(Message::Ping(Bytes::new())) => r,
                    _ = closer.closed() => return,
                };
                if r.is_err() {
                    return;
                }
            }
        }
    }
}

/// Writes `first` and whatever else is queued, then flushes once.
async fn send_batch<S>(
    sink: &mut Sink<S>,
    first: Bytes,
    rx: &mut OutboundRx,
    shared: &Shared,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = first.len();
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..MAX_BATCH {
        match rx.try_recv() {
            Some(frame) => {
                bytes += frame.len();
                sink.feed(Message::Binary(frame)).await?;
            }
            None => break,
        }
    }
    sink.flush().await?;
    shared.metrics.bytes_sent.inc_by(bytes as u64);
    Ok(())
}
