//! Error types of the bot library: one enum for configuration, one for a bot's
//! connection, one for the metrics scrape.

use ticksync_protocol::ErrorMsg;
use tokio_tungstenite::tungstenite;

/// A setting is out of range or malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The flag's value is not acceptable.
    #[error("{flag}: {why}")]
    Invalid {
        /// The command-line flag at fault.
        flag: &'static str,
        /// What is wrong with it.
        why: String,
    },
}

/// Why a bot could not connect or lost its connection.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The TLS handshake failed (e.g. an untrusted or mismatched certificate).
    #[error("TLS: {0}")]
    Tls(#[source] std::io::Error),
    /// The WebSocket upgrade or the connection failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// A step took longer than its timeout.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The server answered `Hello` with an `Error`.
    #[error("server refused the session: {0:?}")]
    Refused(ErrorMsg),
    /// The server broke the protocol (an undecodable message, a text frame); the
    /// bot closed the connection with 1002 or 1003.
    #[error("protocol violation by the server: {0}")]
    Protocol(String),
    /// The server's `Welcome` is unusable (e.g. `tick_rate` 0); the bot closed
    /// with 1002 and does not come back (docs/PROTOCOL.md, section 6).
    #[error("incompatible server: {0}")]
    Incompatible(String),
    /// The server closed the connection.
    #[error("server closed the connection (code {code}: {reason})")]
    Closed {
        /// The close code (1005 if none was given).
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// The bot's task is gone (it ended or panicked).
    #[error("the bot has stopped")]
    Stopped,
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `POST /matchmake` failed (`status` `None`: no HTTP answer).
    #[error("matchmake failed (HTTP {status:?}): {why}")]
    Matchmake {
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// The server's error text, or what went wrong.
        why: String,
    },
}

/// Why the server's metrics could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScrapeError {
    /// The HTTP request failed.
    #[error("request failed: {0}")]
    Http(String),
    /// The server answered with a status other than 200.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A metric the report needs is missing or malformed.
    #[error("metrics text: {0}")]
    Parse(String),
}
