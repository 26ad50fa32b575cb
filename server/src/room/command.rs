//! What the rest of the process may ask of a room: the messages of its bounded
//! command queue, drained by the room at the start of each of its ticks.

use tokio::sync::oneshot;

use ticksync_protocol::{EntityState, ErrorMsg, Input, PlayerId, ResumeToken, Tick};

use super::stats::RoomDetail;
use crate::net::outbound::Outbound;
use crate::session::{CloseCause, Closer, ConnId};

/// A room's answer to a join: the player id, or the error to send before
/// closing.
pub type JoinReply = Result<PlayerId, (ErrorMsg, CloseCause)>;

/// A validated `Hello` for this room.
#[derive(Debug)]
pub struct JoinRequest {
    /// The connection.
    pub conn: ConnId,
    /// Display name (or the identity a join or seat token carried).
    pub name: Option<String>,
    /// Resume token from the `Hello`.
    pub resume: Option<ResumeToken>,
    /// The new session token (random, from the connection task).
    pub token: ResumeToken,
    /// Whether the caller holds a seat of this room for a new player (taken
    /// from the room's and the process's seats). A join that fails gives it
    /// back; a resume needs none (the player still has its seat).
    pub seated: bool,
    /// The connection's outbound queue: `Welcome` and snapshots go here.
    pub out: Outbound,
    /// Closes the connection (takeover, slow consumer, kick, room close).
    pub closer: Closer,
    /// The player id, or the error to send before closing.
    pub reply: oneshot::Sender<JoinReply>,
}

/// A message to a room.
#[derive(Debug)]
pub enum Command {
    /// Add (or resume) a player.
    Join(Box<JoinRequest>),
    /// An input batch.
    Input {
        /// The player.
        player: PlayerId,
        /// The connection it came from.
        conn: ConnId,
        /// The batch.
        input: Input,
    },
    /// The client wants a full snapshot.
    Resync {
        /// The player.
        player: PlayerId,
        /// The connection it came from.
        conn: ConnId,
    },
    /// The connection ended.
    Leave {
        /// The player.
        player: PlayerId,
        /// The connection that ended.
        conn: ConnId,
        /// A deliberate leave (close 1000/1001): no resume grace.
        clean: bool,
    },
    /// Reports the room's current tick and entities (tests, tools), answered
    /// after the tick's snapshots so it is exactly what they describe.
    Inspect {
        /// Where to send the answer.
        reply: oneshot::Sender<(Tick, Vec<EntityState>)>,
    },
    /// Reports the room's players and figures (`GET /rooms/{id}`).
    Detail {
        /// Where to send the answer.
        reply: oneshot::Sender<RoomDetail>,
    },
    /// Removes a player at once: its connection is closed with
    /// `close::KICKED` (4005) and it cannot resume.
    Kick {
        /// The player.
        player: PlayerId,
        /// Whether the player was in the room.
        reply: oneshot::Sender<bool>,
    },
    /// Closes the room: every connection gets `close::ROOM_CLOSED` (4004), the
    /// room leaves the registry and its memory is released.
    Close {
        /// Answered once the room has closed.
        reply: Option<oneshot::Sender<()>>,
    },
}
