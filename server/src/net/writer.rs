//! A session's writer task: whatever the socket could not take at once, pings,
//! and at the end the close request's `Error` and the close frame.
//!
//! On a direct path (plain TCP, `net/outbound.rs`) frames are written by
//! whoever delivers them; this task only drains the backlog when the socket was
//! full, sends WebSocket pings and, on a close request, finishes the backlog
//! (so a half-written frame is always completed), then writes the `Error` and
//! the close frame — frames of its own, behind everything queued. On a queued
//! path (TLS) it writes every frame through tungstenite, batched, one flush per
//! batch.
//!
//! Either way a close request never cuts a write short, and everything after
//! it is bounded by [`CLOSE_FLUSH_TIMEOUT`]: a client that does not read cannot
//! hold the writer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::Error as WsError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use ticksync_protocol::messages::close;
use ticksync_protocol::{ServerMsg, codec};

use super::gate::{Drained, Gate, OP_BINARY, OP_CLOSE, OP_PING};
use super::outbound::OutboundRx;
use crate::metrics::DisconnectReason;
use crate::session::{CloseCause, Closer, Closing};
use crate::shared::Shared;

/// Time the writer gets to flush queued frames and the close frame at the end.
pub(super) const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Frames written before one flush (queued paths).
const MAX_BATCH: usize = 16;

const CONNECTION_LOST: CloseCause = CloseCause {
    code: close::GOING_AWAY,
    reason: "connection lost",
    metric: DisconnectReason::connection_lost,
};

/// The close frame for a cause.
pub(super) fn close_frame(cause: CloseCause) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(cause.code),
        reason: cause.reason.into(),
    }
}

/// What the reader reads from once the writer runs: the whole WebSocket (direct
/// paths: the writer does not need tungstenite) or its read half. One per
/// session, held for its life: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum Incoming<S> {
    Whole(WebSocketStream<S>),
    Split(SplitStream<WebSocketStream<S>>),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Incoming<S> {
    type Item = Result<Message, WsError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.get_mut() {
            Incoming::Whole(ws) => ws.poll_next_unpin(cx),
            Incoming::Split(s) => s.poll_next_unpin(cx),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Incoming<S> {
    /// Writes the replies tungstenite owes the client (the echo of a close the
    /// client started, a pong). On a direct path nobody else would: the writer
    /// writes its own frames without tungstenite. On a queued path the writer's
    /// sink shares tungstenite's state, so its close is that echo already.
    pub(super) async fn flush_replies(&mut self) {
        if let Incoming::Whole(ws) = self {
            let _ = timeout_at(Instant::now() + CLOSE_FLUSH_TIMEOUT, ws.flush()).await;
        }
    }
}

/// Starts the writer task of a joined session.
pub(super) fn start<S>(
    ws: WebSocketStream<S>,
    rx: OutboundRx,
    closer: Closer,
    shared: Arc<Shared>,
) -> (Incoming<S>, JoinHandle<()>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if let Some(socket) = rx.0.socket() {
        let task = tokio::spawn(direct_loop(rx.0, socket, closer, shared));
        return (Incoming::Whole(ws), task);
    }
    let (sink, stream) = ws.split();
    let task = tokio::spawn(write_loop(sink, rx, closer, shared));
    (Incoming::Split(stream), task)
}

/// Direct paths: drains the backlog when woken, pings, and ends with the
/// close request.
async fn direct_loop(gate: Arc<Gate>, socket: Arc<TcpStream>, closer: Closer, shared: Arc<Shared>) {
    let period = shared.config.ping_interval;
    let mut ping = tokio::time::interval_at(Instant::now() + period, period);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let closing = loop {
        tokio::select! {
            biased;
            closing = closer.requested() => break closing,
            _ = gate.wake.notified() => {
                // Interrupting a drain loses nothing: what the socket has not
                // taken stays in the backlog, and the close path drains it first.
                let drained = tokio::select! {
                    biased;
                    closing = closer.requested() => break closing,
                    ok = drain(&gate, &socket) => ok,
                };
                if !drained {
                    closer.close(CONNECTION_LOST);
                }
            }
            _ = ping.tick() => {
                let payload = gate.rtt.ping_payload(std::time::Instant::now());
                if !gate.send_own(OP_PING, &payload) {
                    closer.close(CONNECTION_LOST);
                }
            }
        }
    };
    let deadline = Instant::now() + CLOSE_FLUSH_TIMEOUT;
    gate.close();
    let _ = timeout_at(deadline, finish_direct(&gate, &socket, closing, &shared)).await;
    gate.detach();
}

/// Writes the backlog out, waiting for the socket as needed; false if it broke.
async fn drain(gate: &Gate, socket: &TcpStream) -> bool {
    loop {
        match gate.drain() {
            Drained::Empty => return true,
            Drained::Broken => return false,
            Drained::Blocked => {
                if socket.writable().await.is_err() {
                    return false;
                }
            }
        }
    }
}

/// The backlog, then the `Error` (if any), then the close frame (unless
/// tungstenite already answered a close from the client).
async fn finish_direct(gate: &Gate, socket: &TcpStream, closing: Closing, shared: &Shared) {
    if !drain(gate, socket).await {
        return;
    }
    if let Some(error) = closing.error {
        let frame = codec::encode_server(&ServerMsg::Error(error));
        shared.metrics.bytes_sent.inc_by(frame.len() as u64);
        gate.send_own(OP_BINARY, &frame);
    }
    let cause = closing.cause;
    let mut payload = Vec::with_capacity(2 + cause.reason.len());
    payload.extend_from_slice(&cause.code.to_be_bytes());
    payload.extend_from_slice(cause.reason.as_bytes());
    // A control frame carries at most 125 bytes; our reasons are short.
    payload.truncate(125);
    gate.send_own(OP_CLOSE, &payload);
    drain(gate, socket).await;
}

/// The write half of a session's socket (queued paths).
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
            frame = rx.recv() => Work::Frames(frame),
            _ = ping.tick() => Work::Ping,
        };
        let write = async {
            match work {
                Work::Frames(first) => send_batch(&mut sink, first, &mut rx).await,
                Work::Ping => {
                    let payload = rx.0.rtt.ping_payload(std::time::Instant::now());
                    sink.send(Message::Ping(Bytes::copy_from_slice(&payload)))
                        .await
                }
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
            closer.close(CONNECTION_LOST);
            return;
        }
    };
    rx.0.close();
    let _ = timeout_at(deadline, async {
        while let Some(frame) = rx.try_recv() {
            sink.feed(Message::Binary(frame)).await?;
        }
        if let Some(error) = closing.error {
            let frame = codec::encode_server(&ServerMsg::Error(error));
            shared.metrics.bytes_sent.inc_by(frame.len() as u64);
            sink.feed(Message::Binary(Bytes::from(frame))).await?;
        }
        sink.send(Message::Close(Some(close_frame(closing.cause))))
            .await
    })
    .await;
}

/// Writes `first` and whatever else is queued, then flushes once.
async fn send_batch<S>(sink: &mut Sink<S>, first: Bytes, rx: &mut OutboundRx) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..MAX_BATCH {
        match rx.try_recv() {
            Some(frame) => sink.feed(Message::Binary(frame)).await?,
            None => break,
        }
    }
    sink.flush().await
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tokio::io::DuplexStream;
    use tokio_tungstenite::tungstenite::protocol::Role;

    use ticksync_protocol::{ErrorCode, ErrorMsg};

    use super::*;
    use crate::config::Config;
    use crate::net::outbound::{self, Outbound};
    use crate::session::Closing;

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
        let shared = Arc::new(Shared::for_tests(Config::for_tests()));
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
    async fn read_all<S: AsyncRead + AsyncWrite + Unpin>(
        client: &mut WebSocketStream<S>,
    ) -> (Vec<Bytes>, Option<u16>) {
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

    /// Queues `size` bytes the client never reads, requests a close, and
    /// expects the writer to end within the close flush timeout all the same.
    async fn gives_up_on_a_client_that_never_reads(
        out: &Outbound,
        closer: &Closer,
        task: tokio::task::JoinHandle<()>,
        size: usize,
    ) {
        out.try_send(Bytes::from(vec![7u8; size])).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        closer.request(malformed());
        tokio::time::timeout(CLOSE_FLUSH_TIMEOUT * 3, task)
            .await
            .expect("the writer gives up after the close flush timeout")
            .unwrap();
    }

    #[tokio::test]
    async fn a_client_that_never_reads_cannot_hold_the_writer_after_a_close() {
        let (out, closer, task, _client) = writer().await;
        gives_up_on_a_client_that_never_reads(&out, &closer, task, BIG).await;
    }

    /// A direct path over loopback TCP with a small send buffer, so a big frame
    /// is only partly written before the close request comes.
    async fn direct_writer() -> (
        Outbound,
        Closer,
        tokio::task::JoinHandle<()>,
        Incoming<super::super::gated::GatedTcp>,
        WebSocketStream<TcpStream>,
    ) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client_io = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server_io, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server_io)
            .set_send_buffer_size(4096)
            .unwrap();
        let (io, out, rx) = super::super::gated::open(server_io, 8, Default::default());
        let server = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        let closer = Closer::default();
        let shared = Arc::new(Shared::for_tests(Config::for_tests()));
        let (incoming, task) = start(server, rx, closer.clone(), shared);
        (out, closer, task, incoming, client)
    }

    /// More than the socket buffers hold while the client does not read.
    const HUGE: usize = 1 << 20;

    #[tokio::test]
    async fn direct_a_close_request_mid_frame_finishes_it_then_sends_error_and_close() {
        let (out, closer, task, _incoming, mut client) = direct_writer().await;
        out.try_send(Bytes::from(vec![7u8; HUGE])).unwrap();
        out.try_send(Bytes::from(vec![8u8; 100])).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        closer.request(malformed());
        let (frames, code) = read_all(&mut client).await;
        assert_eq!(frames.len(), 3, "both frames and the Error");
        assert_eq!((frames[0].len(), frames[1].len()), (HUGE, 100));
        assert!(is_error(&frames[2], ErrorCode::Malformed));
        assert_eq!(code, Some(close::PROTOCOL_ERROR));
        task.await.unwrap();
    }

    #[tokio::test]
    async fn direct_a_client_that_never_reads_cannot_hold_the_writer_after_a_close() {
        let (out, closer, task, _incoming, _client) = direct_writer().await;
        gives_up_on_a_client_that_never_reads(&out, &closer, task, HUGE).await;
        assert_eq!(out.try_reserve().unwrap_err(), outbound::Rejected::Closed);
    }
}
