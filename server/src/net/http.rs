//! The HTTP/1.1 front door: reads one request head, then either answers it
//! (`/healthz`, `/metrics`, errors) or accepts the WebSocket upgrade on `/ws`.
//!
//! Only what a game server needs: one request per connection (`Connection: close`),
//! a bounded head (slowloris gets the handshake timeout, a huge head gets 431).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Largest request head accepted, in bytes.
pub const MAX_HEAD_LEN: usize = 8 * 1024;

const MAX_HEADERS: usize = 32;

/// Longest time an answer may take to write: a client that requests `/metrics`
/// and never reads cannot hold its task longer.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

async fn bounded(
    limit: Duration,
    write: impl Future<Output = std::io::Result<()>>,
) -> std::io::Result<()> {
    match tokio::time::timeout(limit, write).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

/// The parts of a request head the server looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query string.
    pub path: String,
    /// The query string (after `?`, empty if none).
    pub query: String,
    /// `Upgrade` header contains `websocket`.
    pub upgrade_websocket: bool,
    /// `Connection` header contains `upgrade`.
    pub connection_upgrade: bool,
    /// `Sec-WebSocket-Key`.
    pub ws_key: Option<String>,
    /// `Sec-WebSocket-Version`.
    pub ws_version: Option<String>,
    /// Every subprotocol offered in `Sec-WebSocket-Protocol`.
    pub ws_protocols: Vec<String>,
    /// `Host`.
    pub host: Option<String>,
    /// `X-Forwarded-Proto` (set by a TLS-terminating proxy).
    pub forwarded_proto: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// `Content-Length`: `Some(Err(()))` if present but not a number.
    pub content_length: Option<Result<usize, ()>>,
    /// `Transfer-Encoding` is present (bodies are accepted with a length only).
    pub transfer_encoding: bool,
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The peer closed or the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The head is longer than [`MAX_HEAD_LEN`].
    #[error("request head too large")]
    TooLarge,
    /// Not HTTP/1.x.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Reads one request head. Returns it and any bytes the client sent after it.
pub async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some((head, len)) = parse_head(&buf)? {
            let rest = buf.split_off(len);
            return Ok((head, rest));
        }
        if buf.len() > MAX_HEAD_LEN {
            return Err(HeadError::TooLarge);
        }
    }
}

/// Parses a complete head from the start of `buf`: `None` if more bytes are needed.
pub fn parse_head(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    let path = req.path.unwrap_or("/");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut head = RequestHead {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        ..RequestHead::default()
    };
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        let has_token = |token: &str| {
            value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case(token))
        };
        match h.name.to_ascii_lowercase().as_str() {
            "upgrade" => head.upgrade_websocket |= has_token("websocket"),
            "connection" => head.connection_upgrade |= has_token("upgrade"),
            "sec-websocket-key" => head.ws_key = Some(value.trim().to_string()),
            "sec-websocket-version" => head.ws_version = Some(value.trim().to_string()),
            "sec-websocket-protocol" => head
                .ws_protocols
                .extend(value.split(',').map(|p| p.trim().to_string())),
            "host" => head.host = Some(value.trim().to_string()),
            "x-forwarded-proto" => head.forwarded_proto = Some(value.trim().to_string()),
            "authorization" => head.authorization = Some(value.trim().to_string()),
            "content-length" => head.content_length = Some(value.trim().parse().map_err(|_| ())),
            "transfer-encoding" => head.transfer_encoding = true,
            _ => {}
        }
    }
    Ok(Some((head, len)))
}

impl RequestHead {
    /// The value of query parameter `name` (the first, undecoded), if present.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The peer closed or the socket failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// `Content-Length` is over the limit.
    #[error("request body too large")]
    TooLarge,
    /// Chunked or otherwise unsized body, or a bad `Content-Length`.
    #[error("a request body needs a valid Content-Length")]
    LengthRequired,
}

/// Reads the body `head` announces (none without `Content-Length`), at most
/// `max` bytes, starting with the bytes read after the head.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    head: &RequestHead,
    mut body: Vec<u8>,
    max: usize,
) -> Result<Vec<u8>, BodyError> {
    if head.transfer_encoding {
        return Err(BodyError::LengthRequired);
    }
    let len = match head.content_length {
        None => 0,
        Some(Ok(len)) => len,
        Some(Err(())) => return Err(BodyError::LengthRequired),
    };
    if len > max || body.len() > len {
        return Err(BodyError::TooLarge);
    }
    let have = body.len();
    body.resize(len, 0);
    stream.read_exact(&mut body[have..]).await?;
    Ok(body)
}

/// Writes a complete response with a body and `Connection: close`, then shuts
/// the stream's write side down; gives up after [`WRITE_TIMEOUT`].
pub async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    content_type: &str,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> std::io::Result<()> {
    respond_within(
        WRITE_TIMEOUT,
        stream,
        status,
        content_type,
        body,
        extra_headers,
    )
    .await
}

async fn respond_within<S: AsyncWrite + Unpin>(
    limit: Duration,
    stream: &mut S,
    status: u16,
    content_type: &str,
    body: &[u8],
    extra_headers: &[(&str, &str)],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n",
        reason_phrase(status),
        body.len()
    );
    for (name, value) in extra_headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    bounded(limit, async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        stream.flush().await?;
        // The response ends the connection: a FIN, and with TLS a close_notify
        // first, so clients can tell a complete answer from a cut one.
        stream.shutdown().await
    })
    .await
}

/// Writes the `101 Switching Protocols` answer to a valid upgrade request; gives
/// up after [`WRITE_TIMEOUT`].
pub async fn accept_upgrade<S: AsyncWrite + Unpin>(
    stream: &mut S,
    ws_key: &str,
    protocol: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n",
        derive_accept_key(ws_key.as_bytes())
    );
    bounded(WRITE_TIMEOUT, async {
        stream.write_all(head.as_bytes()).await?;
        stream.flush().await
    })
    .await
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_upgrade_request() {
        let raw = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, ticksync.v1\r\n\r\nEXTRA";
        let (head, len) = parse_head(raw).unwrap().unwrap();
        assert_eq!(&raw[len..], b"EXTRA");
        assert_eq!(head.method, "GET");
        assert_eq!(head.path, "/ws");
        assert_eq!(head.query, "x=1");
        assert_eq!(head.query_param("x"), Some("1"));
        assert_eq!(head.query_param("room"), None);
        assert!(head.upgrade_websocket && head.connection_upgrade);
        assert_eq!(head.ws_key.as_deref(), Some("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_eq!(head.ws_protocols, ["chat", "ticksync.v1"]);
    }

    #[test]
    fn partial_and_garbage_heads() {
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost").unwrap().is_none());
        assert!(parse_head(b"\x00\x01garbage\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn an_answer_nobody_reads_is_abandoned() {
        // A duplex pipe with a 64-byte buffer that is never read.
        let (mut server, _client) = tokio::io::duplex(64);
        let body = vec![b'x'; 4096];
        let limit = Duration::from_millis(50);
        let r = respond_within(limit, &mut server, 200, "text/plain", &body, &[]).await;
        assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn oversized_head_is_refused() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        while raw.len() <= MAX_HEAD_LEN + 100 {
            raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let mut reader = &raw[..];
        assert!(matches!(
            read_head(&mut reader).await,
            Err(HeadError::TooLarge) | Err(HeadError::Malformed(_))
        ));
    }
}
