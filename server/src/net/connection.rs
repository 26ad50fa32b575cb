//! One WebSocket session: the `Hello` handshake, then a reader (this task) and a
//! writer task that drains the connection's bounded outbound queue.
//!
//! Every way a session can end maps to one [`CloseCause`] here: a close code, a
//! reason and a metric label, and where the protocol says so an `Error` message
//! first (docs/PROTOCOL.md, "Errors and close codes").

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tracing::{debug, info};

use super::limits::{RateLimiter, Verdict};
use crate::auth;

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientMsg, ErrorCode, ErrorMsg, Hello, PROTOCOL_VERSION, PlayerId, ResumeToken, ServerMsg,
    codec,
};

use crate::metrics::{DisconnectReason, InputRejection};
use crate::shared::{CloseCause, Closer, ConnId, Shared};
use crate::tick::Command;

/// Time the writer gets to flush queued frames and the close frame at the end.
const CLOSE_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

/// Frames written before one flush.
const MAX_BATCH: usize = 16;

/// How a session ends.
struct Ending {
    cause: CloseCause,
    /// Sent (best effort) before the close frame.
    error: Option<ErrorMsg>,
    /// Leave at once instead of keeping the player for the resume grace.
    clean: bool,
}

impl Ending {
    fn new(code: u16, reason: &'static str, metric: DisconnectReason) -> Ending {
        Ending {
            cause: CloseCause {
                code,
                reason,
                metric,
            },
            error: None,
            clean: false,
        }
    }

    fn with_error(mut self, code: ErrorCode, message: impl Into<String>) -> Ending {
        self.error = Some(ErrorMsg {
            code,
            message: message.into(),
        });
        self
    }

    fn from_cause(cause: CloseCause) -> Ending {
        Ending {
            cause,
            error: None,
            clean: false,
        }
    }
}

fn protocol_error(e: &codec::DecodeError) -> Ending {
    Ending::new(
        close::PROTOCOL_ERROR,
        "malformed message",
        DisconnectReason::protocol_error,
    )
    .with_error(ErrorCode::Malformed, e.to_string())
}

fn unexpected(what: &str) -> Ending {
    Ending::new(
        close::PROTOCOL_ERROR,
        "unexpected message",
        DisconnectReason::protocol_error,
    )
    .with_error(ErrorCode::UnexpectedMessage, what.to_string())
}

fn rate_limited() -> Ending {
    Ending::new(
        close::POLICY_VIOLATION,
        "rate limit exceeded",
        DisconnectReason::rate_limited,
    )
    .with_error(ErrorCode::RateLimited, "too many messages")
}

/// What the rate limit says about one received message.
enum Throttle {
    /// Handle it.
    Pass,
    /// Drop it (counted).
    Drop,
    /// A flood: end the session.
    Close(Ending),
}

/// Applies the rate limit to a received message that would be handled (data
/// messages and control frames; endings pass).
fn throttle(received: &Received, limiter: &mut RateLimiter, shared: &Shared) -> Throttle {
    if !matches!(received, Received::Msg(_) | Received::Ignore) {
        return Throttle::Pass;
    }
    let verdict = limiter.check(std::time::Instant::now());
    if verdict == Verdict::Allow {
        return Throttle::Pass;
    }
    shared.metrics.messages_rate_limited.inc();
    if let Received::Msg(ClientMsg::Input(input)) = received {
        shared
            .metrics
            .input_rejected(InputRejection::rate_limited, input.dirs.len() as u64);
    }
    if verdict == Verdict::Abuse {
        info!("closing a flooding connection");
        return Throttle::Close(rate_limited());
    }
    Throttle::Drop
}

/// Maps a read error to an ending.
fn read_error(e: WsError) -> Ending {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => Ending::new(
            close::MESSAGE_TOO_BIG,
            "message too big",
            DisconnectReason::too_big,
        )
        .with_error(
            ErrorCode::Malformed,
            format!("message of {size} bytes exceeds the {max_size}-byte limit"),
        ),
        WsError::Protocol(p) => {
            debug!(error = %p, "websocket protocol error");
            Ending::new(
                close::PROTOCOL_ERROR,
                "websocket protocol error",
                DisconnectReason::protocol_error,
            )
        }
        WsError::Utf8(_) => Ending::new(
            close::UNSUPPORTED_DATA,
            "text frames are not supported",
            DisconnectReason::text_frame,
        ),
        other => {
            debug!(error = %other, "connection lost");
            Ending::new(
                close::GOING_AWAY,
                "connection lost",
                DisconnectReason::connection_lost,
            )
        }
    }
}

/// What one received WebSocket message means for the session.
enum Received {
    Msg(ClientMsg),
    /// A `Hello` of another protocol version whose layout this version cannot read.
    ForeignHello(u16),
    Ignore,
    End(Ending),
}

fn classify(msg: Result<Message, WsError>, shared: &Shared) -> Received {
    let msg = match msg {
        Ok(m) => m,
        Err(e) => return Received::End(read_error(e)),
    };
    match msg {
        Message::Binary(b) => {
            shared.metrics.messages_received.inc();
            shared.metrics.bytes_received.inc_by(b.len() as u64);
            match codec::decode_client(&b) {
                Ok(m) => Received::Msg(m),
                Err(e) => match codec::hello_version(&b) {
                    Some(v) if v != PROTOCOL_VERSION => Received::ForeignHello(v),
                    _ => Received::End(protocol_error(&e)),
                },
            }
        }
        Message::Text(_) => Received::End(
            Ending::new(
                close::UNSUPPORTED_DATA,
                "text frames are not supported",
                DisconnectReason::text_frame,
            )
            .with_error(ErrorCode::Malformed, "the protocol uses binary frames only"),
        ),
        Message::Close(frame) => {
            let code = frame.as_ref().map(|f| u16::from(f.code));
            let mut end = Ending::new(close::NORMAL, "bye", DisconnectReason::client_closed);
            end.clean = matches!(code, Some(close::NORMAL) | Some(close::GOING_AWAY));
            Received::End(end)
        }
        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Received::Ignore,
    }
}

/// Runs a session on an upgraded connection until it ends.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    shared: Arc<Shared>,
    conn: ConnId,
    closer: Closer,
    handshake_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut limiter = RateLimiter::new(shared.config.rate_limit(), std::time::Instant::now());
    let hello = match await_hello(&mut ws, &shared, &closer, handshake_deadline, &mut limiter).await
    {
        Ok(h) => h,
        Err(end) => return close_direct(ws, &shared, end).await,
    };
    let name = match auth::admit(
        shared.config.auth_secret.as_ref(),
        hello.name,
        hello.auth_token.as_deref(),
        auth::unix_now(),
    ) {
        Ok(name) => name,
        Err(e) => {
            info!(error = %e, "join refused");
            let end = Ending::new(
                close::POLICY_VIOLATION,
                "authentication failed",
                DisconnectReason::auth_failed,
            )
            .with_error(ErrorCode::AuthFailed, e.to_string());
            return close_direct(ws, &shared, end).await;
        }
    };
    let capacity = shared.config.outbound_queue + 2;
    let (out, out_rx) = mpsc::channel::<Bytes>(capacity);
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = Command::Join {
        conn,
        name,
        resume: hello.resume_token,
        token: ResumeToken(rand::random()),
        out: out.clone(),
        closer: closer.clone(),
        reply: reply_tx,
    };
    let shutting_down = || {
        Ending::new(
            close::GOING_AWAY,
            "server shutting down",
            DisconnectReason::shutdown,
        )
        .with_error(ErrorCode::ShuttingDown, "server shutting down")
    };
    if shared.commands.send(join).await.is_err() {
        return close_direct(ws, &shared, shutting_down()).await;
    }
    let player = match reply_rx.await {
        Ok(Ok(id)) => id,
        Ok(Err((error, cause))) => {
            let end = Ending {
                cause,
                error: Some(error),
                clean: true,
            };
            return close_direct(ws, &shared, end).await;
        }
        Err(_) => return close_direct(ws, &shared, shutting_down()).await,
    };
    tracing::Span::current().record("player", player.0);
    info!(resumed = hello.resume_token.is_some(), "player joined");

    let (sink, mut stream) = ws.split();
    let writer = tokio::spawn(write_loop(sink, out_rx, closer.clone(), shared.clone()));
    let end = read_loop(&mut stream, &shared, (conn, player), &out, &closer, limiter).await;
    if let Some(error) = &end.error {
        let _ = out.try_send(Bytes::from(codec::encode_server(&ServerMsg::Error(
            error.clone(),
        ))));
    }
    closer.close(end.cause);
    let cause = closer.cause().unwrap_or(end.cause);
    let clean = end.clean && cause == end.cause;
    let _ = shared
        .commands
        .send(Command::Leave {
            player,
            conn,
            clean,
        })
        .await;
    drop(out);
    let _ = timeout(CLOSE_FLUSH_TIMEOUT * 3, writer).await;
    // Closing handshake: wait briefly for the client's close reply, so the socket
    // is not torn down (and reset) under data the client has yet to read.
    let _ = timeout(CLOSE_FLUSH_TIMEOUT, async {
        while let Some(Ok(msg)) = stream.next().await {
            if msg.is_close() {
                break;
            }
        }
    })
    .await;
    shared.metrics.disconnect(cause.metric);
    info!(
        code = cause.code,
        reason = cause.reason,
        "player disconnected"
    );
}

/// Waits for the first message, which must be a `Hello` of our version.
async fn await_hello<S>(
    ws: &mut WebSocketStream<S>,
    shared: &Shared,
    closer: &Closer,
    deadline: Instant,
    limiter: &mut RateLimiter,
) -> Result<Hello, Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        let next = tokio::select! {
            cause = closer.closed() => return Err(Ending::from_cause(cause)),
            r = timeout_at(deadline, ws.next()) => r,
        };
        let msg = match next {
            Err(_) => {
                return Err(Ending::new(
                    close::HANDSHAKE_TIMEOUT,
                    "no Hello in time",
                    DisconnectReason::handshake_timeout,
                ));
            }
            Ok(None) => {
                return Err(Ending::new(
                    close::GOING_AWAY,
                    "connection lost",
                    DisconnectReason::connection_lost,
                ));
            }
            Ok(Some(m)) => m,
        };
        let received = classify(msg, shared);
        match throttle(&received, limiter, shared) {
            Throttle::Pass => {}
            Throttle::Drop => continue,
            Throttle::Close(end) => return Err(end),
        }
        match received {
            Received::Ignore => continue,
            Received::End(end) => return Err(end),
            Received::Msg(ClientMsg::Hello(h)) if h.version == PROTOCOL_VERSION => return Ok(h),
            Received::Msg(ClientMsg::Hello(Hello { version, .. }))
            | Received::ForeignHello(version) => {
                return Err(Ending::new(
                    close::POLICY_VIOLATION,
                    "protocol version mismatch",
                    DisconnectReason::version_mismatch,
                )
                .with_error(
                    ErrorCode::VersionMismatch,
                    format!(
                        "server speaks protocol version {PROTOCOL_VERSION}, client sent version {version}"
                    ),
                ));
            }
            Received::Msg(_) => return Err(unexpected("the first message must be Hello")),
        }
    }
}

/// Ends a session that never got its writer task: error, close frame, metric.
async fn close_direct<S>(mut ws: WebSocketStream<S>, shared: &Shared, end: Ending)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = timeout(CLOSE_FLUSH_TIMEOUT, async {
        if let Some(error) = end.error {
            let bytes = codec::encode_server(&ServerMsg::Error(error));
            shared.metrics.bytes_sent.inc_by(bytes.len() as u64);
            ws.send(Message::Binary(Bytes::from(bytes))).await?;
        }
        ws.close(Some(close_frame(end.cause))).await
    })
    .await;
    shared.metrics.disconnect(end.cause.metric);
    debug!(
        code = end.cause.code,
        reason = end.cause.reason,
        "closed during handshake"
    );
}

fn close_frame(cause: CloseCause) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(cause.code),
        reason: cause.reason.into(),
    }
}

async fn read_loop<S>(
    stream: &mut SplitStream<WebSocketStream<S>>,
    shared: &Shared,
    (conn, player): (ConnId, PlayerId),
    out: &mpsc::Sender<Bytes>,
    closer: &Closer,
    mut limiter: RateLimiter,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let idle = shared.config.idle_timeout;
    loop {
        let next = tokio::select! {
            biased;
            cause = closer.closed() => return Ending::from_cause(cause),
            r = timeout(idle, stream.next()) => r,
        };
        let msg = match next {
            Err(_) => {
                return Ending::new(
                    close::IDLE_TIMEOUT,
                    "idle timeout",
                    DisconnectReason::idle_timeout,
                );
            }
            Ok(None) => {
                return Ending::new(
                    close::GOING_AWAY,
                    "connection lost",
                    DisconnectReason::connection_lost,
                );
            }
            Ok(Some(m)) => m,
        };
        let received = classify(msg, shared);
        match throttle(&received, &mut limiter, shared) {
            Throttle::Pass => {}
            Throttle::Drop => continue,
            Throttle::Close(end) => return end,
        }
        let msg = match received {
            Received::Msg(m) => m,
            Received::Ignore => continue,
            Received::End(end) => return end,
            Received::ForeignHello(_) => return unexpected("Hello was already received"),
        };
        match msg {
            ClientMsg::Input(input) => {
                let n = input.dirs.len() as u64;
                if shared
                    .commands
                    .try_send(Command::Input {
                        player,
                        conn,
                        input,
                    })
                    .is_err()
                {
                    shared
                        .metrics
                        .input_rejected(InputRejection::server_busy, n);
                }
            }
            ClientMsg::Ping { client_time_us } => {
                let pong = ServerMsg::Pong {
                    client_time_us,
                    server_tick: ticksync_protocol::Tick(shared.tick.load(Ordering::Acquire)),
                };
                // Best effort: a client whose queue is full has bigger problems.
                let _ = out.try_send(Bytes::from(codec::encode_server(&pong)));
            }
            ClientMsg::Resync => {
                let _ = shared.commands.try_send(Command::Resync { player, conn });
            }
            ClientMsg::Hello(_) => return unexpected("Hello was already received"),
        }
    }
}

type Sink<S> = SplitSink<WebSocketStream<S>, Message>;

async fn write_loop<S>(
    mut sink: Sink<S>,
    mut rx: mpsc::Receiver<Bytes>,
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
                    while let Ok(frame) = rx.try_recv() {
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
    rx: &mut mpsc::Receiver<Bytes>,
    shared: &Shared,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut bytes = first.len();
    sink.feed(Message::Binary(first)).await?;
    for _ in 1..MAX_BATCH {
        match rx.try_recv() {
            Ok(frame) => {
                bytes += frame.len();
                sink.feed(Message::Binary(frame)).await?;
            }
            Err(_) => break,
        }
    }
    sink.flush().await?;
    shared.metrics.bytes_sent.inc_by(bytes as u64);
    Ok(())
}
