//! Every message that travels over the wire, as plain Rust types.
//!
//! The byte layout of each is defined by docs/PROTOCOL.md and implemented in
//! [`crate::codec`]; nothing here knows about bytes.

use glam::IVec2;

use crate::movement::MoveConfig;
use crate::types::{Checksum, FixedPos, InputSeq, MoveDir, PlayerId, ResumeToken, Tick};

/// The protocol's major version. A server accepts only clients of its own version.
pub const PROTOCOL_VERSION: u16 = 2;

/// The WebSocket subprotocol a client must offer: `ticksync.v` and the version.
pub const SUBPROTOCOL: &str = "ticksync.v2";

/// The prefix every version's subprotocol shares (`ticksync.v1`, `ticksync.v2`, ...).
pub const SUBPROTOCOL_PREFIX: &str = "ticksync.v";

/// The HTTP path of the WebSocket endpoint.
pub const WS_PATH: &str = "/ws";

/// Most inputs one `Input` message may carry.
pub const MAX_INPUTS_PER_MSG: usize = 8;

/// Messages per second a client may send besides one `Input` per tick: its
/// `Ping`s, `Resync`s and WebSocket control frames (docs/PROTOCOL.md, section 11).
pub const CLIENT_EXTRA_MSGS_PER_SEC: u32 = 4;

/// The most messages per second a compliant client sends at `tick_rate`: one
/// `Input` per tick plus [`CLIENT_EXTRA_MSGS_PER_SEC`]. A server's rate limit
/// is never below it.
pub fn client_msg_budget(tick_rate: u16) -> u32 {
    u32::from(tick_rate) + CLIENT_EXTRA_MSGS_PER_SEC
}

/// Longest player name, in bytes of UTF-8.
pub const MAX_NAME_LEN: usize = 32;

/// Longest auth token, in bytes.
pub const MAX_AUTH_TOKEN_LEN: usize = 512;

/// Longest error message text, in bytes.
pub const MAX_ERROR_TEXT_LEN: usize = 1024;

/// Largest encoded client message, in bytes.
pub const MAX_CLIENT_MSG_LEN: usize = 1024;

/// Largest encoded server message a client must accept, in bytes.
pub const MAX_SERVER_MSG_LEN: usize = 16 << 20;

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMsg {
    /// The first message of every connection.
    Hello(Hello),
    /// One or more consecutive movement inputs.
    Input(Input),
    /// Application-level ping, answered by [`ServerMsg::Pong`].
    Ping {
        /// The client's clock in microseconds, echoed back.
        client_time_us: u64,
    },
    /// Ask for a full snapshot next tick (after a desync).
    Resync,
}

impl ClientMsg {
    /// The message's name in docs/PROTOCOL.md (`"Hello"`, `"Input"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ClientMsg::Hello(_) => "Hello",
            ClientMsg::Input(_) => "Input",
            ClientMsg::Ping { .. } => "Ping",
            ClientMsg::Resync => "Resync",
        }
    }
}

/// Opens a session.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    /// Must equal the server's [`PROTOCOL_VERSION`].
    pub version: u16,
    /// Display name, at most [`MAX_NAME_LEN`] bytes.
    pub name: Option<String>,
    /// Signed join token, required when the server has an auth secret.
    pub auth_token: Option<String>,
    /// Resume token from an earlier `Welcome`, to take a session back.
    pub resume_token: Option<ResumeToken>,
}

/// A batch of consecutive inputs: `dirs[i]` has sequence number `first_seq + i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    /// The latest snapshot tick the client holds, if any.
    pub ack_tick: Option<Tick>,
    /// Sequence number of `dirs[0]`; 1 for a session's first input.
    pub first_seq: InputSeq,
    /// One direction per tick, 1 to [`MAX_INPUTS_PER_MSG`] of them.
    pub dirs: Vec<MoveDir>,
}

impl Input {
    /// The inputs with their sequence numbers.
    pub fn iter(&self) -> impl Iterator<Item = (InputSeq, MoveDir)> + '_ {
        self.dirs
            .iter()
            .enumerate()
            .map(|(i, d)| (InputSeq(self.first_seq.0.wrapping_add(i as u32)), *d))
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMsg {
    /// Accepts a `Hello`.
    Welcome(Welcome),
    /// The world state for one tick.
    Snapshot(Snapshot),
    /// Answers a client `Ping`.
    Pong {
        /// The client's timestamp from the `Ping`.
        client_time_us: u64,
        /// The server tick when the ping was handled.
        server_tick: Tick,
    },
    /// A failure; usually followed by a close.
    Error(ErrorMsg),
}

impl ServerMsg {
    /// The message's name in docs/PROTOCOL.md (`"Welcome"`, `"Snapshot"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            ServerMsg::Welcome(_) => "Welcome",
            ServerMsg::Snapshot(_) => "Snapshot",
            ServerMsg::Pong { .. } => "Pong",
            ServerMsg::Error(_) => "Error",
        }
    }
}

/// The server's answer to a `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// The client's own player (and entity) id.
    pub player_id: PlayerId,
    /// The server's current tick.
    pub tick: Tick,
    /// Ticks per second.
    pub tick_rate: u16,
    /// Movement constants and world bounds for `step`.
    pub movement: MoveConfig,
    /// Grid steps per world unit (always [`crate::FIXED_SCALE`] in v1).
    pub fixed_scale: u16,
    /// Interest radius in grid steps; 0 means every client sees every player.
    pub view_radius: u32,
    /// Token to resume this session after a disconnect.
    pub resume_token: ResumeToken,
    /// Whether this `Welcome` resumed an earlier session.
    pub resumed: bool,
    /// The last input sequence the server processed (0 for a new session).
    pub last_input_seq: InputSeq,
    /// The numbers this client must respect (timeouts, rate limit, queue).
    pub limits: SessionLimits,
}

impl Welcome {
    /// Checks the values a client cannot play with although they decode
    /// (docs/PROTOCOL.md, section 6, "Refusing a Welcome"): a client that gets
    /// such a `Welcome` closes with 1002 and neither resumes nor reconnects to
    /// that server. The error names the field and the rule.
    ///
    /// ```
    /// # use ticksync_protocol::*;
    /// # let mut w = Welcome {
    /// #     player_id: PlayerId(1), tick: Tick(0), tick_rate: 30,
    /// #     movement: MoveConfig::from_units(100.0, 30, 1000.0), fixed_scale: 16,
    /// #     view_radius: 0, resume_token: ResumeToken([0; 16]), resumed: false,
    /// #     last_input_seq: InputSeq(0),
    /// #     limits: SessionLimits {
    /// #         idle_timeout_ms: 15_000, rate_limit: 68, rate_burst: 68,
    /// #         resume_grace_ms: 10_000, input_queue: 16,
    /// #     },
    /// # };
    /// assert_eq!(w.validate(), Ok(()));
    /// w.tick_rate = 0;
    /// assert_eq!(w.validate().unwrap_err(), "Welcome.tick_rate must be at least 1, got 0");
    /// ```
    pub fn validate(&self) -> Result<(), String> {
        if self.player_id.0 == 0 {
            return Err("Welcome.player_id must be at least 1, got 0".into());
        }
        if self.tick_rate == 0 {
            return Err("Welcome.tick_rate must be at least 1, got 0".into());
        }
        if i32::from(self.fixed_scale) != crate::FIXED_SCALE {
            return Err(format!(
                "Welcome.fixed_scale must be {} in protocol version {PROTOCOL_VERSION}, got {}",
                crate::FIXED_SCALE,
                self.fixed_scale
            ));
        }
        let l = &self.limits;
        for (field, value) in [
            ("Welcome.idle_timeout_ms", l.idle_timeout_ms),
            ("Welcome.rate_limit", u32::from(l.rate_limit)),
            ("Welcome.rate_burst", u32::from(l.rate_burst)),
            ("Welcome.input_queue", u32::from(l.input_queue)),
        ] {
            if value == 0 {
                return Err(format!("{field} must be at least 1, got 0"));
            }
        }
        Ok(())
    }
}

/// The server's limits for a session, as `Welcome` announces them: the effective
/// values after the server derived its defaults (docs/PROTOCOL.md sections 3, 11
/// and 13 say what each one asks of a client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionLimits {
    /// The server closes (4001) a connection it received nothing from for this
    /// long; a client with nothing else to send pings at least every third of it.
    pub idle_timeout_ms: u32,
    /// Messages per second the server accepts from a client (the refill rate of
    /// its token bucket over every message and WebSocket control frame).
    pub rate_limit: u16,
    /// How many messages may arrive back to back (the bucket's size).
    pub rate_burst: u16,
    /// How long a dropped session's player stays in the world, resumable.
    pub resume_grace_ms: u32,
    /// Received but unapplied directions the server holds per player; more are
    /// dropped.
    pub input_queue: u16,
}

/// One entity's full state: where it is and the velocity a client advances it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityState {
    /// The entity (player) id.
    pub id: PlayerId,
    /// Its position.
    pub pos: FixedPos,
    /// Its velocity in grid steps per tick: a client moves the entity by it every
    /// tick the snapshots do not say otherwise (see [`crate::motion`]).
    pub vel: IVec2,
}

impl EntityState {
    /// An entity at `pos` moving at `vel` grid steps per tick.
    pub const fn new(id: PlayerId, pos: FixedPos, vel: IVec2) -> EntityState {
        EntityState { id, pos, vel }
    }

    /// An entity at `pos` standing still.
    pub const fn at(id: PlayerId, pos: FixedPos) -> EntityState {
        EntityState::new(id, pos, IVec2::ZERO)
    }
}

/// One entity's entry in a delta's `changed` (velocity change) or `corrected`
/// (position residual) list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EntityDelta {
    /// The entity (player) id.
    pub id: PlayerId,
    /// The change, in grid steps (per tick, for a velocity).
    pub delta: IVec2,
}

/// A snapshot as sent to one client: a per-client header and a body that clients
/// sharing a baseline and a view can share byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The last input sequence the server processed for this client (0: none).
    pub ack_input: InputSeq,
    /// The world part.
    pub body: SnapshotBody,
}

/// The world part of a snapshot: the entities a client should hold at `tick`.
///
/// Lists are sorted by id with each id at most once per list. An entity kept from
/// the baseline gets its velocity changed by its `changed` entry, is advanced by
/// that velocity for `tick - baseline` ticks (clamped to the world) and moved by
/// its `corrected` entry; `removed` ones are dropped and `spawned` ones added
/// ([`crate::ClientWorld::apply`], docs/PROTOCOL.md section 9).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotBody {
    /// The tick this state belongs to.
    pub tick: Tick,
    /// The tick of the state this is a delta against; `None` for a full snapshot.
    pub baseline: Option<Tick>,
    /// Entities in the baseline that are gone.
    pub removed: Vec<PlayerId>,
    /// Entities not in the baseline (all of them, in a full snapshot), with their
    /// position and velocity.
    pub spawned: Vec<EntityState>,
    /// Entities in both whose velocity changed: new velocity minus old.
    pub changed: Vec<EntityDelta>,
    /// Entities in both whose position is not where their (new) velocity takes
    /// them: current position minus the extrapolated one.
    pub corrected: Vec<EntityDelta>,
    /// Checksum of the resulting entity set (positions only).
    pub checksum: Checksum,
}

impl SnapshotBody {
    /// The wire field `baseline_age`: 0 for a full snapshot, else `tick - baseline`.
    pub fn baseline_age(&self) -> u32 {
        self.baseline.map_or(0, |b| self.tick.0.wrapping_sub(b.0))
    }
}

/// An error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorMsg {
    /// What went wrong.
    pub code: ErrorCode,
    /// Human-readable detail, at most [`MAX_ERROR_TEXT_LEN`] bytes.
    pub message: String,
}

/// Error codes of [`ErrorMsg`], stable across versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `Hello.version` differs from the server's; the message names both.
    VersionMismatch,
    /// A message could not be decoded.
    Malformed,
    /// A valid message at the wrong time (e.g. `Input` before `Hello`, a second `Hello`).
    UnexpectedMessage,
    /// Missing, invalid or expired join token.
    AuthFailed,
    /// Unknown, expired or already used resume token.
    ResumeFailed,
    /// No room for another player.
    ServerFull,
    /// Too many messages.
    RateLimited,
    /// The server is shutting down.
    ShuttingDown,
    /// A code this version does not know.
    Other(u16),
}

impl ErrorMsg {
    /// The text of a `VersionMismatch` error for a client that sent `Hello.version`
    /// = `client_version`: it names both versions, as the spec requires.
    ///
    /// ```
    /// # use ticksync_protocol::ErrorMsg;
    /// assert_eq!(
    ///     ErrorMsg::version_mismatch_text(1),
    ///     "Hello.version is 1, but this server speaks protocol version 2 (ticksync.v2)"
    /// );
    /// ```
    pub fn version_mismatch_text(client_version: u16) -> String {
        format!(
            "Hello.version is {client_version}, but this server speaks protocol version \
             {PROTOCOL_VERSION} ({SUBPROTOCOL})"
        )
    }
}

impl ErrorCode {
    /// The code's number on the wire.
    pub fn to_u16(self) -> u16 {
        match self {
            ErrorCode::VersionMismatch => 1,
            ErrorCode::Malformed => 2,
            ErrorCode::UnexpectedMessage => 3,
            ErrorCode::AuthFailed => 4,
            ErrorCode::ResumeFailed => 5,
            ErrorCode::ServerFull => 6,
            ErrorCode::RateLimited => 7,
            ErrorCode::ShuttingDown => 8,
            ErrorCode::Other(n) => n,
        }
    }

    /// The WebSocket close code that follows an `Error` with this code when the
    /// error ends the connection (docs/PROTOCOL.md, section 12). Exceptions: a text
    /// frame closes with [`close::UNSUPPORTED_DATA`], an oversize message with
    /// [`close::MESSAGE_TOO_BIG`].
    pub fn close_code(self) -> u16 {
        match self {
            ErrorCode::Malformed | ErrorCode::UnexpectedMessage => close::PROTOCOL_ERROR,
            ErrorCode::ServerFull => close::TRY_AGAIN_LATER,
            ErrorCode::ShuttingDown => close::GOING_AWAY,
            ErrorCode::VersionMismatch
            | ErrorCode::AuthFailed
            | ErrorCode::ResumeFailed
            | ErrorCode::RateLimited
            | ErrorCode::Other(_) => close::POLICY_VIOLATION,
        }
    }

    /// The code for a number on the wire; unknown numbers are kept as `Other`.
    pub fn from_u16(n: u16) -> ErrorCode {
        match n {
            1 => ErrorCode::VersionMismatch,
            2 => ErrorCode::Malformed,
            3 => ErrorCode::UnexpectedMessage,
            4 => ErrorCode::AuthFailed,
            5 => ErrorCode::ResumeFailed,
            6 => ErrorCode::ServerFull,
            7 => ErrorCode::RateLimited,
            8 => ErrorCode::ShuttingDown,
            n => ErrorCode::Other(n),
        }
    }
}

/// WebSocket close codes the server uses (docs/PROTOCOL.md, section 12).
pub mod close {
    /// Normal close; a client closing with it leaves at once (no resume grace).
    pub const NORMAL: u16 = 1000;
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Undecodable message or message at the wrong time.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Text frame (the protocol is binary only).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Policy violation: flood, failed auth or resume, version mismatch.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Message larger than the limit.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Server full; try again later.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// No `Hello` within the handshake timeout.
    pub const HANDSHAKE_TIMEOUT: u16 = 4000;
    /// Nothing received within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4001;
    /// The client did not read its snapshots for the stall timeout.
    pub const SLOW_CONSUMER: u16 = 4002;
    /// Another connection resumed this session.
    pub const SESSION_TAKEN_OVER: u16 = 4003;
    /// The player's room closed, or the room the client asked for does not
    /// exist: do not resume, matchmake again.
    pub const ROOM_CLOSED: u16 = 4004;
    /// The player was removed from its room: do not resume or reconnect.
    pub const KICKED: u16 = 4005;
}
