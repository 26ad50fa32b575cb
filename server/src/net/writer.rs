//! A session's writer task: drains the bounded outbound queue into the socket,
//! pings, and ends with the close request's `Error` and the close frame.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::SinkExt;
use futures_util::stream::SplitSink;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use ticksync_protocol::messages::close;
use ticksync_protocol::{ServerMsg, codec};

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

/// What the writer is doing between two looks at the close request.
enum Work {
    /// Writing this frame and whatever else is queued, then flushing.
    Frames(Bytes),
    /// Sending a WebSocket ping.
    Ping,
}

/// Drains the outbound queue into the socket (batched, one flush per batch),
/// sends WebSocket pings, and on a close request ends with the queued frames,
/// the request's `Error` message and the close frame.
///
/// A close request never cuts a write short: the frames in flight are
/// finished first (a half-written frame would corrupt the stream), so while
/// the socket takes bytes the client always gets the `Error` and the close
/// frame. Everything after the request is bounded by [`CLOSE_FLUSH_TIMEOUT`]:
/// a client that does not read cannot hold the writer.
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
    let (closing, deadline) = loop {
        let work = tokio::select! {
            biased;
            closing = closer.requested() => break (closing, Instant::now() + CLOSE_FLUSH_TIMEOUT),
            frame = rx.recv() => match frame {
                Some(frame) => Work::Frames(frame),
                // The reader drops its sender only after requesting the close.
                None => match closer.closing() {
                    Some(closing) => break (closing, Instant::now() + CLOSE_FLUSH_TIMEOUT),
                    None => return,
                },
            },
            _ = ping.tick() => Work::Ping,
        };
        let write = async {
            match work {
                Work::Frames(first) => send_batch(&mut sink, first, &mut rx, &shared).await,
                Work::Ping => sink.send(Message::Ping(Bytes::new())).await,
            }
        };
        tokio::pin!(write);
        let written = tokio::select! {
            r = &mut write => r,
            closing = closer.requested() => {
                let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
                match timeout_at(deadline, write).await {
                    Ok(Ok(())) => break (closing, deadline),
                    // Not writable in time, or gone: no close frame can follow.
                    _ => return,
                }
            }
        };
        if written.is_err() {
            closer.close(CloseCause {
                code: close::GOING_AWAY,
                reason: "connection lost",
                metric: DisconnectReason::connection_lost,
            });
            return;
        }
    };
    let _ = timeout_at(deadline, async {
        let mut bytes = 0;
        while let Some(frame) = rx.try_recv() {
            bytes += frame.len();
            sink.feed(Message::Binary(frame)).await?;
        }
        if let Some(error) = closing.error {
            let frame = codec::encode_server(&ServerMsg::Error(error));
            bytes += frame.len();
            sink.feed(Message::Binary(Bytes::from(frame))).await?;
        }
        shared.metrics.bytes_sent.inc_by(bytes as u64);
        sink.send(Message::Close(Some(close_frame(closing.cause))))
            .await
    })
    .await;
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

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::io::DuplexStream;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use ticksync_protocol::{ErrorCode, ErrorMsg};

    use super::*;
    use crate::config::Config;
    use crate::net::outbound::{self, Outbound};
    use crate::shared::Closing;

    /// Room for a little less than one big frame between writer and client.
    const PIPE: usize = 1024;
    const BIG: usize = 8 * 1024;

    /// A writer task over an in-memory pipe, and the client's end of it.
    async fn writer() -> (
        Outbound,
        Closer,
        tokio::task::JoinHandle<()>,
        WebSocketStream<DuplexStream>,
    ) {
        let (server_io, client_io) = tokio::io::duplex(PIPE);
        let server = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        // The read half stays alive (unpolled) for the writer's whole life, as in a session.
        let (sink, stream) = server.split();
        let (out, rx) = outbound::channel(8);
        let closer = Closer::default();
        let shared = Arc::new(Shared::new(Config::for_tests(), mpsc::channel(1).0));
        let task = tokio::spawn({
            let closer = closer.clone();
            async move {
                let _stream = stream;
                write_loop(sink, rx, closer, shared).await
            }
        });
        (out, closer, task, client)
    }

    fn malformed() -> Closing {
        Closing {
            cause: CloseCause {
                code: close::PROTOCOL_ERROR,
                reason: "malformed message",
                metric: DisconnectReason::protocol_error,
            },
            error: Some(ErrorMsg {
                code: ErrorCode::Malformed,
                message: "test".into(),
            }),
        }
    }

    /// Reads every message until the close frame: the binary payloads and the close code.
    async fn read_all(client: &mut WebSocketStream<DuplexStream>) -> (Vec<Bytes>, Option<u16>) {
        let mut frames = Vec::new();
        let read = async {
            while let Some(msg) = client.next().await {
                match msg.expect("a whole, valid WebSocket stream") {
                    Message::Binary(b) => frames.push(b),
                    Message::Close(f) => return f.map(|f| u16::from(f.code)),
                    _ => {}
                }
            }
            None
        };
        let code = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("the writer ends with a close frame");
        (frames, code)
    }

    fn is_error(frame: &Bytes, code: ErrorCode) -> bool {
        matches!(codec::decode_server(frame), Ok(ServerMsg::Error(e)) if e.code == code)
    }

    #[tokio::test]
    async fn a_close_request_mid_write_finishes_the_frame_then_sends_error_and_close() {
        let (out, closer, task, mut client) = writer().await;
        out.try_send(Bytes::from(vec![7u8; BIG])).unwrap();
        // Nobody reads yet: the writer is stuck inside the big frame when the close comes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!task.is_finished());
        closer.request(malformed());
        let (frames, code) = read_all(&mut client).await;
        assert_eq!(frames.len(), 2, "the frame in flight and the Error");
        assert_eq!(frames[0].len(), BIG);
        assert!(is_error(&frames[1], ErrorCode::Malformed));
        assert_eq!(code, Some(close::PROTOCOL_ERROR));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_full_queue_does_not_lose_the_error() {
        let (out, closer, task, mut client) = writer().await;
        let mut queued = 0;
        while out.try_send(Bytes::from(vec![1u8; 100])).is_ok() {
            queued += 1;
        }
        closer.request(malformed());
        let (frames, code) = read_all(&mut client).await;
        assert!(frames.len() > queued.min(1), "queued frames are delivered");
        assert!(is_error(frames.last().unwrap(), ErrorCode::Malformed));
        assert_eq!(code, Some(close::PROTOCOL_ERROR));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_reads_cannot_hold_the_writer_after_a_close() {
        let (out, closer, task, _client) = writer().await;
        out.try_send(Bytes::from(vec![7u8; BIG])).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        closer.request(malformed());
        tokio::time::timeout(CLOSE_FLUSH_TIMEOUT * 3, task)
            .await
            .expect("the writer gives up after the close flush timeout")
            .unwrap();
    }
}
