//! One WebSocket session: the `Hello` handshake (with the join token check),
//! then a reader (this task) and a writer task (`net/writer.rs`) that drains
//! the connection's bounded outbound queue.
//!
//! How each received message is judged, and how every way a session can end maps
//! to one close code, reason, metric label and `Error` message, is in
//! `net/inbound.rs`.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::oneshot;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tracing::{debug, info};

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientMsg, ErrorCode, ErrorMsg, Hello, PROTOCOL_VERSION, PlayerId, ResumeToken, ServerMsg,
    codec,
};

use super::inbound::{
    Ending, Received, Throttle, classify, msg_name, protocol_error, refused, room_closed,
    shutting_down, throttle, unexpected,
};
use super::limits::RateLimiter;
use super::outbound::{Outbound, OutboundRx};
use super::writer::{self, CLOSE_FLUSH_TIMEOUT, Incoming, close_frame};
use crate::auth;
use crate::matchmaker::admit::{Arrival, admit};
use crate::metrics::{DisconnectReason, InputRejection};
use crate::room::{Command, JoinRequest, RoomHandle, RoomId};
use crate::session::{Closer, Closing, ConnId};
use crate::shared::Shared;

/// Runs a session on an upgraded connection until it ends. `url_room` is the
/// room the URL named (`/ws?room=ID`), if any.
pub async fn run<S>(
    mut ws: WebSocketStream<S>,
    (out, out_rx): (Outbound, OutboundRx),
    shared: Arc<Shared>,
    conn: ConnId,
    closer: Closer,
    handshake_deadline: Instant,
    url_room: Option<RoomId>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut limiter = RateLimiter::new(shared.config.rate_limit(), std::time::Instant::now());
    let hello = match await_hello(&mut ws, &shared, &closer, handshake_deadline, &mut limiter).await
    {
        Ok(h) => h,
        Err(end) => return close_direct(ws, &shared, end).await,
    };
    let arrival = Arrival {
        url_room,
        resume: hello.resume_token.as_ref(),
        name: hello.name,
        token: hello.auth_token.as_deref(),
    };
    let admission = match admit(shared.gate(), arrival, auth::unix_now_ms()).await {
        Ok(a) => a,
        Err(e) => {
            info!(error = %e, "join refused");
            return close_direct(ws, &shared, refused(e)).await;
        }
    };
    let name = admission.name;
    let room = admission.room;
    tracing::Span::current().record("room", tracing::field::display(room.id));
    let (reply_tx, reply_rx) = oneshot::channel();
    let join = Command::Join(Box::new(JoinRequest {
        conn,
        name,
        resume: hello.resume_token,
        token: ResumeToken(rand::random()),
        seated: admission.seated,
        out: out.clone(),
        closer: closer.clone(),
        reply: reply_tx,
    }));
    // A join the room never handled (it closed first) leaves the seat with us.
    let unhandled = |shared: &Shared| {
        if admission.seated {
            shared.rooms().pool.release(&room.seats);
        }
    };
    if room.send(join).await.is_err() {
        unhandled(&shared);
        let end = if shared.is_draining() {
            shutting_down()
        } else {
            room_closed()
        };
        return close_direct(ws, &shared, end).await;
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
        Err(_) => {
            unhandled(&shared);
            return close_direct(ws, &shared, room_closed()).await;
        }
    };
    tracing::Span::current().record("player", player.0);
    info!(resumed = hello.resume_token.is_some(), "player joined");

    let (mut stream, writer) = writer::start(ws, out_rx, closer.clone(), shared.clone());
    let end = read_loop(
        &mut stream,
        &shared,
        &room,
        (conn, player),
        &out,
        &closer,
        limiter,
    )
    .await;
    // A close the client started is answered with its own code (tungstenite's
    // echo) before the writer's close frame, which then is not sent.
    stream.flush_replies().await;
    // The Error travels with the close request: the writer writes both after
    // whatever it has in flight, so neither can be lost to a full queue or a race.
    closer.request(Closing {
        cause: end.cause,
        error: end.error,
    });
    let cause = closer.cause().unwrap_or(end.cause);
    let clean = end.clean && cause == end.cause;
    let _ = room
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
            | Received::ForeignHello(version, _) => {
                return Err(Ending::error(
                    ErrorCode::VersionMismatch,
                    "protocol version mismatch",
                    DisconnectReason::version_mismatch,
                    ErrorMsg::version_mismatch_text(version),
                ));
            }
            Received::Msg(m) => {
                return Err(unexpected(format!(
                    "the first message must be Hello, got {}",
                    msg_name(&m)
                )));
            }
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

async fn read_loop<S>(
    stream: &mut Incoming<S>,
    shared: &Shared,
    room: &RoomHandle,
    (conn, player): (ConnId, PlayerId),
    out: &Outbound,
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
        if let Ok(Message::Pong(payload)) = &msg
            && let Some(rtt) = out.0.rtt.on_pong(payload, std::time::Instant::now())
        {
            shared.metrics.rtt.observe(rtt.as_secs_f64());
        }
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
            // Undecodable is malformed, whatever the tag (docs/PROTOCOL.md, section 7).
            Received::ForeignHello(_, e) => return protocol_error(&e),
        };
        match msg {
            ClientMsg::Input(input) => {
                let n = input.dirs.len() as u64;
                if room
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
                    server_tick: room.tick(),
                };
                // Best effort: a client whose queue is full has bigger problems.
                let _ = out.try_send(Bytes::from(codec::encode_server(&pong)));
            }
            ClientMsg::Resync => {
                let _ = room.try_send(Command::Resync { player, conn });
            }
            ClientMsg::Hello(_) => return unexpected("Hello may be sent only once per connection"),
        }
    }
}
