//! A raw HTTP/1.1 client for tests: sends exactly the request a test writes
//! (bodies of any size, bad JSON, missing headers) and reads the whole answer
//! (the server closes every HTTP connection after one answer).

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::{WAIT, within};

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Response {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `method path` with `headers` and `body` (a `Content-Length` is added
/// when there is a body) and returns the answer.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    exchange(None, addr, &build(addr, method, path, headers, body)).await
}

/// [`request`] from the local address `from` (any of 127.0.0.0/8 on loopback:
/// a second client address for per-address limits).
pub async fn request_from(
    from: IpAddr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    exchange(Some(from), addr, &build(addr, method, path, headers, body)).await
}

/// The bytes of a request; see [`request`].
fn build(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (n, v) in headers {
        raw.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    let mut bytes = raw.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Sends `bytes` as they are and returns the answer.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    exchange(None, addr, bytes).await
}

async fn exchange(from: Option<IpAddr>, addr: SocketAddr, bytes: &[u8]) -> Response {
    within(WAIT, "an HTTP answer", async {
        let mut stream = match from {
            None => TcpStream::connect(addr).await.expect("tcp connect"),
            Some(ip) => {
                let socket = if ip.is_ipv4() {
                    TcpSocket::new_v4()
                } else {
                    TcpSocket::new_v6()
                }
                .expect("socket");
                socket
                    .bind(SocketAddr::new(ip, 0))
                    .expect("bind the source");
                socket.connect(addr).await.expect("tcp connect")
            }
        };
        // The server may answer (e.g. 413) before reading everything.
        let _ = stream.write_all(bytes).await;
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw).await;
        parse(&raw)
    })
    .await
}

fn parse(raw: &[u8]) -> Response {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}
