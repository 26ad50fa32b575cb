//! `--matchmake`: before connecting, a bot asks the server's `POST /matchmake`
//! (same host and port as `--url`, `https://` for `wss://`) for a seat, then
//! connects to the URL it answers with the seat token in `Hello.auth_token`
//! (docs/PROTOCOL.md, section 16). The join token (`--auth-token`), if any,
//! goes in `Authorization: Bearer`.

use serde::Deserialize;

use crate::config::parse_ws_url;
use crate::error::{BotError, ConfigError};
use crate::metrics::http_request;
use crate::tls::TlsClient;

/// What a bot asks the matchmaker for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Matchmaking {
    /// The room kind (`None`: the server's default kind).
    pub kind: Option<String>,
}

/// A seat from `POST /matchmake`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Seat {
    /// The room id.
    pub room: String,
    /// The room's kind.
    pub kind: String,
    /// The WebSocket URL to connect to.
    pub url: String,
    /// The seat token for `Hello.auth_token`.
    pub token: String,
}

/// The matchmaking URL of the server `ws_url` points at:
/// `ws://HOST:PORT/...` → `http://HOST:PORT/matchmake`.
pub fn matchmake_url(ws_url: &str) -> Result<String, ConfigError> {
    let target = parse_ws_url(ws_url)?;
    let scheme = if target.tls { "https" } else { "http" };
    Ok(format!("{scheme}://{}/matchmake", target.addr()))
}

/// Asks the server of `ws_url` for a seat in a room of `want.kind`, as the
/// holder of join token `bearer`.
pub async fn matchmake(
    ws_url: &str,
    want: &Matchmaking,
    bearer: Option<&str>,
    tls: Option<&TlsClient>,
) -> Result<Seat, BotError> {
    let url = matchmake_url(ws_url)?;
    let body = match &want.kind {
        Some(kind) => serde_json::json!({ "kind": kind }).to_string(),
        None => String::new(),
    };
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a));
    }
    let (status, answer) = http_request(&url, "POST", &headers, body.as_bytes(), tls)
        .await
        .map_err(|e| BotError::Matchmake {
            status: None,
            why: e.to_string(),
        })?;
    let text = String::from_utf8_lossy(&answer);
    if status != 200 {
        return Err(BotError::Matchmake {
            status: Some(status),
            why: text.trim().to_string(),
        });
    }
    serde_json::from_str(&text).map_err(|e| BotError::Matchmake {
        status: Some(status),
        why: format!("unexpected answer {text:?}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_matchmake_url_follows_the_websocket_url() {
        assert_eq!(
            matchmake_url("ws://127.0.0.1:7777/ws").unwrap(),
            "http://127.0.0.1:7777/matchmake"
        );
        assert_eq!(
            matchmake_url("wss://game.example:443/ws?x=1").unwrap(),
            "https://game.example:443/matchmake"
        );
        assert!(matchmake_url("http://x/ws").is_err());
    }
}
