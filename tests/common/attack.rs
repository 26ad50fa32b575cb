//! Attackers and witnesses for `tests/adversarial.rs`: raw TCP tricks (slowloris,
//! connections from another loopback address, a client that never reads) and
//! [`Witnesses`], well-behaved bots whose snapshot rate and desync count prove
//! that an attack did not hurt anybody else.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use futures_util::SinkExt;
use ticksync_bot::{BotHandle, BotOptions};
use ticksync_protocol::{ClientMsg, Hello, PROTOCOL_VERSION, SUBPROTOCOL, codec};
use ticksync_server::Server;

use super::raw::RawClient;
use super::{WAIT, assert_clean_end, bot_options, close_all, views, within};

/// Well-behaved bots playing beside the attackers.
pub struct Witnesses {
    /// The bots.
    pub bots: Vec<BotHandle>,
    tick_rate: f64,
}

/// Snapshot counts of every witness at one moment.
pub struct Mark {
    at: Instant,
    snapshots: Vec<u64>,
}

impl Witnesses {
    /// Connects `n` bots (numbered from 1000) with `opts` applied to each.
    pub async fn start_with(server: &Server, n: u64, opts: impl Fn(&mut BotOptions)) -> Witnesses {
        let mut bots = Vec::new();
        for i in 1000..1000 + n {
            let mut o = bot_options(server, i);
            o.name = Some(format!("witness-{i}"));
            opts(&mut o);
            bots.push(
                within(WAIT, "a witness bot to connect", BotHandle::connect(o))
                    .await
                    .expect("a witness is welcomed"),
            );
        }
        Witnesses {
            bots,
            tick_rate: f64::from(server.config().tick_rate),
        }
    }

    /// Connects `n` plain bots.
    pub async fn start(server: &Server, n: u64) -> Witnesses {
        Witnesses::start_with(server, n, |_| {}).await
    }

    /// Their snapshot counts now.
    pub async fn mark(&self) -> Mark {
        Mark {
            at: Instant::now(),
            snapshots: views(&self.bots)
                .await
                .iter()
                .map(|v| v.counters.snapshots)
                .collect(),
        }
    }

    /// Asserts that every witness is connected, saw no desync, and received at
    /// least half the tick rate in snapshots since `mark` (a loose bound: the
    /// machine is shared; a stalled server or a starved client falls far below).
    pub async fn assert_healthy_since(&self, mark: &Mark) {
        let elapsed = mark.at.elapsed().as_secs_f64();
        let now = views(&self.bots).await;
        for (i, (v, before)) in now.iter().zip(&mark.snapshots).enumerate() {
            assert!(v.connected, "witness #{i} is still connected");
            assert_eq!(v.counters.desyncs, 0, "witness #{i}: desyncs");
            let rate = (v.counters.snapshots - before) as f64 / elapsed;
            assert!(
                rate >= self.tick_rate * 0.5,
                "witness #{i}: {rate:.1} snapshots/s over {elapsed:.1} s (tick rate {})",
                self.tick_rate
            );
        }
    }

    /// Closes every witness and asserts each ended cleanly with 0 desyncs.
    pub async fn finish(self) {
        for (i, o) in close_all(self.bots).await.iter().enumerate() {
            assert_clean_end(i, o);
        }
    }
}

/// A TCP connection to `addr` from `source` (any 127.0.0.0/8 address works on
/// Linux loopback, which lets one test be several clients' IPs).
pub async fn tcp_from(source: IpAddr, addr: SocketAddr, recv_buffer: Option<u32>) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
    }
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("bind the source address");
    within(WAIT, "tcp connect", socket.connect(addr))
        .await
        .expect("tcp connect")
}

/// The WebSocket upgrade over `stream`: the socket, or the HTTP status of a refusal.
pub async fn upgrade(
    stream: TcpStream,
    addr: SocketAddr,
) -> Result<WebSocketStream<TcpStream>, u16> {
    let mut req = format!("ws://{addr}/ws")
        .into_client_request()
        .expect("request");
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    match within(
        WAIT,
        "the upgrade",
        tokio_tungstenite::client_async(req, stream),
    )
    .await
    {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("upgrade failed without an HTTP status: {e}"),
    }
}

/// Sends a minimal `Hello` on an upgraded socket.
pub async fn hello(ws: &mut WebSocketStream<TcpStream>) {
    let bytes = codec::encode_client(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        ..Hello::default()
    }));
    within(
        WAIT,
        "Hello to be sent",
        ws.send(Message::Binary(bytes.into())),
    )
    .await
    .expect("send Hello");
}

/// One `GET path` over a fresh connection: the status code and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http_request(addr, "GET", path, "").await
}

/// One HTTP/1.1 request (`Connection: close`, so a proxy in between ends the
/// answer too); the status and the body.
pub async fn http_request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    within(WAIT, "an HTTP answer", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        s.write_all(head.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        let status = out
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {out:?}"));
        let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
        (status, body)
    })
    .await
}

/// Slowloris: opens a connection and dribbles an HTTP request head one header
/// line every `every`, never finishing it. Returns how long the server kept it
/// open (it closes on the server's handshake timeout).
pub async fn slowloris(addr: SocketAddr, every: Duration) -> Duration {
    let start = Instant::now();
    within(WAIT, "the server to cut a slowloris connection", async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        if s.write_all(b"GET /ws HTTP/1.1\r\nHost: t\r\n")
            .await
            .is_err()
        {
            return start.elapsed();
        }
        let mut buf = [0u8; 256];
        for i in 0u64.. {
            let line = format!("X-Slow-{i}: a\r\n");
            if s.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            // The server answers nothing to a partial head; a read that ends
            // (EOF or reset) means it gave up on us.
            match tokio::time::timeout(every, s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break,
                _ => {}
            }
        }
        start.elapsed()
    })
    .await
}

/// Joins `n` players and drops their connections at once: they stay in the world,
/// standing still, for the server's resume grace. Makes full snapshots big (about
/// 7 bytes per player) without any client to keep alive.
pub async fn park_players(addr: SocketAddr, n: usize) {
    let mut parking = tokio::task::JoinSet::new();
    for i in 0..n {
        parking.spawn(async move { drop(RawClient::join(addr, &format!("parked-{i}")).await) });
    }
    while let Some(r) = parking.join_next().await {
        r.expect("a parked player joined");
    }
}

/// Starts `n` players that keep moving, turning back every tick (right, left,
/// right, ...), and read and discard their snapshots, so every tick's delta
/// lists every mover (a velocity change, 3 bytes): deltas of a few hundred
/// bytes, as slow-reader tests need. They stop when the returned set is dropped.
pub async fn spawn_movers(addr: SocketAddr, n: usize) -> tokio::task::JoinSet<()> {
    use futures_util::StreamExt;
    use ticksync_protocol::{InputSeq, MoveDir};

    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let (mut c, _) = RawClient::join(addr, &format!("mover-{i}")).await;
        set.spawn(async move {
            let mut seq = 1u32;
            let zigzag: [MoveDir; 8] =
                std::array::from_fn(|i| MoveDir::new(if i % 2 == 0 { 127 } else { -127 }, 0));
            loop {
                let msg = super::raw::input_msg(InputSeq(seq), &zigzag);
                seq += 8;
                if c.try_send_raw(codec::encode_client(&msg)).await.is_err() {
                    return;
                }
                let until = tokio::time::Instant::now() + Duration::from_millis(260);
                while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, c.ws.next()).await {}
            }
        });
    }
    set
}
