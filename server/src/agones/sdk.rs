//! A client of the Agones SDK server's REST gateway: the sidecar every
//! GameServer pod runs, on `127.0.0.1:$AGONES_SDK_HTTP_PORT`. Each call is
//! one HTTP/1.1 request on a fresh loopback connection, bounded as a whole by
//! the call timeout (connect, request, response); nothing survives a call, so
//! a restarted or hung sidecar costs one timed-out call, never a stuck socket.
//! The watch is a long-lived streamed response, one GameServer per line.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use super::gameserver::{GameServer, WatchLine};

/// Largest answer (or watch line) read from the SDK server: a GameServer is a
/// few KiB; anything far beyond is not the SDK server.
const MAX_BODY: usize = 1 << 20;

/// Why an SDK call failed.
#[derive(Debug, thiserror::Error)]
pub enum SdkError {
    /// The whole call took longer than the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No connection (the SDK server is not up, or restarting).
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    /// The HTTP exchange failed (connection reset, malformed answer).
    #[error("http: {0}")]
    Http(String),
    /// The SDK server answered with an error status (an unknown counter, a
    /// count over capacity, ...).
    #[error("status {status}: {body}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The answer's body (the gateway's error message).
        body: String,
    },
    /// The answer was not the expected JSON.
    #[error("unexpected answer: {0}")]
    Json(String),
    /// The watch stream reported an error, or ended.
    #[error("watch stream: {0}")]
    Stream(String),
}

/// The SDK server's REST API.
#[derive(Debug, Clone)]
pub struct Sdk {
    addr: SocketAddr,
    timeout: Duration,
}

impl Sdk {
    /// A client of the SDK server at `addr` (always loopback in a pod), with
    /// `timeout` for each whole call.
    pub fn new(addr: SocketAddr, timeout: Duration) -> Sdk {
        Sdk { addr, timeout }
    }

    /// The SDK server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `POST /ready`: the server accepts players.
    pub async fn ready(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/ready", Some(json!({})))
            .await
            .map(drop)
    }

    /// `POST /health`: one health ping.
    pub async fn health(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/health", Some(json!({})))
            .await
            .map(drop)
    }

    /// `POST /shutdown`: the server is done; Agones deletes the pod.
    pub async fn shutdown(&self) -> Result<(), SdkError> {
        self.call(Method::POST, "/shutdown", Some(json!({})))
            .await
            .map(drop)
    }

    /// `PUT /metadata/label`: label `agones.dev/sdk-<key>` on the GameServer.
    pub async fn set_label(&self, key: &str, value: &str) -> Result<(), SdkError> {
        let body = json!({ "key": key, "value": value });
        self.call(Method::PUT, "/metadata/label", Some(body))
            .await
            .map(drop)
    }

    /// `PUT /metadata/annotation`: annotation `agones.dev/sdk-<key>`.
    pub async fn set_annotation(&self, key: &str, value: &str) -> Result<(), SdkError> {
        let body = json!({ "key": key, "value": value });
        self.call(Method::PUT, "/metadata/annotation", Some(body))
            .await
            .map(drop)
    }

    /// `PATCH /v1beta1/counters/<key>`: sets the counter's count and capacity
    /// (absolute values, so a retried call cannot count twice).
    pub async fn set_counter(&self, key: &str, count: u64, capacity: u64) -> Result<(), SdkError> {
        // int64 travels as a string in proto JSON.
        let body =
            json!({ "name": key, "count": count.to_string(), "capacity": capacity.to_string() });
        self.call(
            Method::PATCH,
            &format!("/v1beta1/counters/{key}"),
            Some(body),
        )
        .await
        .map(drop)
    }

    /// `GET /gameserver`: the GameServer as it is now.
    pub async fn game_server(&self) -> Result<GameServer, SdkError> {
        let body = self.call(Method::GET, "/gameserver", None).await?;
        serde_json::from_slice(&body).map_err(|e| SdkError::Json(e.to_string()))
    }

    /// `GET /watch/gameserver`: opens the stream of GameServer updates. Opening
    /// is bounded by the call timeout; the stream then lasts until it breaks.
    pub async fn watch(&self) -> Result<Watch, SdkError> {
        let opened = tokio::time::timeout(self.timeout, async {
            let (mut send, conn) = self.connect().await?;
            let conn = tokio::spawn(async move {
                let _ = conn.await;
            });
            let answer = send.send_request(self.request(Method::GET, "/watch/gameserver", None)?);
            let response = answer.await.map_err(http_error);
            match response {
                Ok(r) => Ok((r, conn)),
                Err(e) => {
                    conn.abort();
                    Err(e)
                }
            }
        })
        .await;
        let (response, conn) = opened.map_err(|_| SdkError::Timeout(self.timeout))??;
        if !response.status().is_success() {
            conn.abort();
            return Err(SdkError::Status {
                status: response.status().as_u16(),
                body: String::new(),
            });
        }
        Ok(Watch {
            body: response.into_body(),
            buf: BytesMut::new(),
            conn,
        })
    }

    /// One request and its whole answer within the timeout; an error status
    /// is an error.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Bytes, SdkError> {
        let exchange = async {
            let (mut send, conn) = self.connect().await?;
            let request = self.request(method, path, body)?;
            let work = async move {
                let response: Response<Incoming> =
                    send.send_request(request).await.map_err(http_error)?;
                // Dropping the sender lets the connection task end after the body.
                drop(send);
                let status = response.status();
                let body = Limited::new(response.into_body(), MAX_BODY)
                    .collect()
                    .await
                    .map_err(|e| SdkError::Http(e.to_string()))?
                    .to_bytes();
                if status.is_success() {
                    Ok(body)
                } else {
                    Err(SdkError::Status {
                        status: status.as_u16(),
                        body: String::from_utf8_lossy(&body).trim().to_string(),
                    })
                }
            };
            let (answer, _) = tokio::join!(work, conn);
            answer
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| SdkError::Timeout(self.timeout))?
    }

    async fn connect(
        &self,
    ) -> Result<
        (
            hyper::client::conn::http1::SendRequest<Full<Bytes>>,
            hyper::client::conn::http1::Connection<TokioIo<TcpStream>, Full<Bytes>>,
        ),
        SdkError,
    > {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(SdkError::Connect)?;
        let _ = stream.set_nodelay(true);
        hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(http_error)
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Request<Full<Bytes>>, SdkError> {
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, format!("localhost:{}", self.addr.port()))
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| SdkError::Http(e.to_string()))
    }
}

fn http_error(e: hyper::Error) -> SdkError {
    SdkError::Http(e.to_string())
}

/// An open `GET /watch/gameserver` stream: newline-delimited JSON, one
/// `{"result": GameServer}` per update.
#[derive(Debug)]
pub struct Watch {
    body: Incoming,
    buf: BytesMut,
    conn: tokio::task::JoinHandle<()>,
}

impl Watch {
    /// The next GameServer update; `Err` when the stream breaks, ends or
    /// reports an error (then open a new one).
    pub async fn next(&mut self) -> Result<GameServer, SdkError> {
        loop {
            if let Some(line) = take_line(&mut self.buf) {
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return parse_watch_line(&line);
            }
            if self.buf.len() > MAX_BODY {
                return Err(SdkError::Stream("a line longer than 1 MiB".into()));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(SdkError::Stream(e.to_string())),
                None => return Err(SdkError::Stream("ended".into())),
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

/// Splits the first complete line (without its `\n`) off `buf`.
fn take_line(buf: &mut BytesMut) -> Option<Bytes> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let line = buf.split_to(end + 1);
    Some(line.freeze().slice(..end))
}

fn parse_watch_line(line: &[u8]) -> Result<GameServer, SdkError> {
    let parsed: WatchLine =
        serde_json::from_slice(line).map_err(|e| SdkError::Json(e.to_string()))?;
    match (parsed.result, parsed.error) {
        (Some(gs), None) => Ok(gs),
        (_, Some(e)) => Err(SdkError::Stream(e.to_string())),
        (None, None) => Err(SdkError::Json("a watch line without result".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks() {
        let mut buf = BytesMut::from(&b"{\"result\":{\"status\":{\"state\":\"Re"[..]);
        assert!(take_line(&mut buf).is_none());
        buf.extend_from_slice(b"ady\"}}}\n{\"result\":{}}\n{\"err");
        let first = take_line(&mut buf).expect("a line");
        assert_eq!(
            parse_watch_line(&first)
                .expect("parses")
                .status
                .state
                .name(),
            "Ready"
        );
        let second = take_line(&mut buf).expect("a line");
        assert!(parse_watch_line(&second).is_ok());
        assert!(take_line(&mut buf).is_none());
        assert_eq!(&buf[..], b"{\"err");
    }

    #[test]
    fn an_error_line_is_an_error() {
        let e = parse_watch_line(br#"{"error":{"code":14,"message":"unavailable"}}"#);
        assert!(matches!(e, Err(SdkError::Stream(m)) if m.contains("unavailable")));
        assert!(matches!(parse_watch_line(b"{}"), Err(SdkError::Json(_))));
        assert!(matches!(
            parse_watch_line(b"nonsense"),
            Err(SdkError::Json(_))
        ));
    }
}
