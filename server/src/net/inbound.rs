//! What a client's messages mean for its session: decoding and classifying
//! each received message, the rate limit's verdict on it, and [`Ending`], the
//! one place where a failure becomes a close code, a reason, a metric label and
//! (where the protocol says so) an `Error` message (docs/PROTOCOL.md, section 12).

use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tracing::{debug, info};

use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ErrorCode, ErrorMsg, PROTOCOL_VERSION, codec};

use super::limits::{RateConfig, RateLimiter, Verdict};
use crate::matchmaker::admit::AdmitError;
use crate::metrics::{DisconnectReason, InputRejection};
use crate::room::ROOM_CLOSED;
use crate::session::CloseCause;
use crate::shared::Shared;

/// How a session ends.
pub(super) struct Ending {
    /// The close code, reason and metric.
    pub(super) cause: CloseCause,
    /// Sent right before the close frame.
    pub(super) error: Option<ErrorMsg>,
    /// Leave at once instead of keeping the player for the resume grace.
    pub(super) clean: bool,
}

impl Ending {
    /// An ending without an `Error` message.
    pub(super) fn new(code: u16, reason: &'static str, metric: DisconnectReason) -> Ending {
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

    /// An ending announced by `Error { code, message }`, closed with the close code
    /// the protocol pairs with that error code (`ErrorCode::close_code`).
    pub(super) fn error(
        code: ErrorCode,
        reason: &'static str,
        metric: DisconnectReason,
        message: impl Into<String>,
    ) -> Ending {
        Ending::new(code.close_code(), reason, metric).with_error(code, message)
    }

    /// Sends `Error { code, message }` before the close.
    pub(super) fn with_error(mut self, code: ErrorCode, message: impl Into<String>) -> Ending {
        self.error = Some(ErrorMsg {
            code,
            message: message.into(),
        });
        self
    }

    /// The ending another task asked for.
    pub(super) fn from_cause(cause: CloseCause) -> Ending {
        Ending {
            cause,
            error: None,
            clean: false,
        }
    }
}

/// An undecodable message.
pub(super) fn protocol_error(e: &codec::DecodeError) -> Ending {
    Ending::error(
        ErrorCode::Malformed,
        "malformed message",
        DisconnectReason::protocol_error,
        e.to_string(),
    )
}

/// A valid message at the wrong time.
pub(super) fn unexpected(what: impl Into<String>) -> Ending {
    Ending::error(
        ErrorCode::UnexpectedMessage,
        "unexpected message",
        DisconnectReason::protocol_error,
        what,
    )
}

/// A client message's name, for error texts.
pub(super) fn msg_name(m: &ClientMsg) -> &'static str {
    match m {
        ClientMsg::Hello(_) => "Hello",
        ClientMsg::Input(_) => "Input",
        ClientMsg::Ping { .. } => "Ping",
        ClientMsg::Resync => "Resync",
    }
}

/// A `Hello` that no room takes.
pub(super) fn refused(e: AdmitError) -> Ending {
    match e {
        AdmitError::NoSuchRoom => room_closed(),
        AdmitError::ResumeFailed => Ending::error(
            ErrorCode::ResumeFailed,
            "resume failed",
            DisconnectReason::resume_failed,
            e.to_string(),
        ),
        AdmitError::Full => Ending::error(
            ErrorCode::ServerFull,
            "server full",
            DisconnectReason::server_full,
            e.to_string(),
        ),
        AdmitError::ShuttingDown => shutting_down(),
        AdmitError::Auth(e) => Ending::error(
            ErrorCode::AuthFailed,
            "authentication failed",
            DisconnectReason::auth_failed,
            e.to_string(),
        ),
        AdmitError::Seat(e) => Ending::error(
            ErrorCode::AuthFailed,
            "seat refused",
            DisconnectReason::seat_refused,
            e.to_string(),
        ),
        AdmitError::Unavailable => Ending::error(
            ErrorCode::ServerFull,
            "directory unavailable",
            DisconnectReason::server_full,
            e.to_string(),
        ),
    }
}

/// The room closed (or never existed): close 4004, no `Error` message.
pub(super) fn room_closed() -> Ending {
    Ending::from_cause(ROOM_CLOSED)
}

/// The server is going away.
pub(super) fn shutting_down() -> Ending {
    Ending::error(
        ErrorCode::ShuttingDown,
        "server shutting down",
        DisconnectReason::shutdown,
        "the server is shutting down",
    )
}

/// A flood beyond the rate limit.
fn rate_limited(limit: &RateConfig) -> Ending {
    Ending::error(
        ErrorCode::RateLimited,
        "rate limit exceeded",
        DisconnectReason::rate_limited,
        format!(
            "more than {} messages per second (burst {}) for too long: {} messages dropped within {:?}",
            limit.rate, limit.burst, limit.max_drops, limit.window
        ),
    )
}

/// What the rate limit says about one received message.
pub(super) enum Throttle {
    /// Handle it.
    Pass,
    /// Drop it (counted).
    Drop,
    /// A flood: end the session.
    Close(Ending),
}

/// Applies the rate limit to a received message that would be handled (data
/// messages and control frames; endings pass).
pub(super) fn throttle(
    received: &Received,
    limiter: &mut RateLimiter,
    shared: &Shared,
) -> Throttle {
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
        return Throttle::Close(rate_limited(&shared.config.rate_limit()));
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
            format!("a client message is at most {max_size} bytes, got {size}"),
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
pub(super) enum Received {
    Msg(ClientMsg),
    /// A `Hello` of another protocol version whose layout this version cannot
    /// read: a version mismatch before `Welcome`, a malformed message after it.
    ForeignHello(u16, codec::DecodeError),
    Ignore,
    End(Ending),
}

/// Decodes and classifies one received message, counting it.
pub(super) fn classify(msg: Result<Message, WsError>, shared: &Shared) -> Received {
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
                    Some(v) if v != PROTOCOL_VERSION => Received::ForeignHello(v, e),
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
            .with_error(
                ErrorCode::Malformed,
                "text frames are not allowed: every message is a binary frame",
            ),
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
