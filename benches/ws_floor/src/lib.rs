//! The transport floor of a load run: what a bare tokio-tungstenite server pays
//! to move the same WebSocket traffic as Ticksync, with no game logic.
//!
//! The server sends every client one binary message of `frame_bytes` per tick
//! at `tick_rate` and answers each ping-tagged client message with a small
//! message (Ticksync's `Pong`); the clients send `input_rate` messages of
//! `input_bytes` per second plus one ping per `ping_interval`, as the bots do.
//! `benches/load.sh` runs it right after each Ticksync run with the sizes and
//! rates that run measured, and reports Ticksync's server CPU as a ratio to
//! this server's (user and system separately).
//!
//! The server is the plainest correct way to do this with tokio-tungstenite:
//! one task per connection owning the `WebSocketStream` (no split, no queue),
//! woken by its own tick timer or by the socket, sending with `send` (feed and
//! flush). Socket and WebSocket settings are Ticksync's: TCP_NODELAY, a 128 KiB
//! send buffer, 4 KiB read and 8 KiB write buffers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{accept_async_with_config, client_async_with_config};

/// First byte of a client message that asks for a pong; inputs start with 0.
pub const PING_TAG: u8 = 1;

/// What the floor server sends.
#[derive(Debug, Clone)]
pub struct ServerOpts {
    /// Messages per second to every client.
    pub tick_rate: u32,
    /// Size of each tick's message.
    pub frame_bytes: usize,
    /// Size of the answer to a ping.
    pub pong_bytes: usize,
    /// SO_SNDBUF per connection (Ticksync's default `--send-buffer`).
    pub send_buffer: usize,
}

impl Default for ServerOpts {
    fn default() -> Self {
        ServerOpts {
            tick_rate: 30,
            frame_bytes: 170,
            pong_bytes: 12,
            send_buffer: 128 * 1024,
        }
    }
}

/// The WebSocket settings Ticksync's server uses (`net::ws_config`).
fn server_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(1024))
        .max_frame_size(Some(1024))
}

/// Accepts connections on `listener` and serves each until it closes.
pub async fn serve(listener: TcpListener, opts: ServerOpts) {
    let opts = Arc::new(opts);
    let frame = Bytes::from(vec![0x5a; opts.frame_bytes]);
    let pong = Bytes::from(vec![0xa5; opts.pong_bytes]);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (opts, frame, pong) = (opts.clone(), frame.clone(), pong.clone());
        tokio::spawn(async move {
            let _ = serve_one(stream, &opts, frame, pong).await;
        });
    }
}

async fn serve_one(
    stream: TcpStream,
    opts: &ServerOpts,
    frame: Bytes,
    pong: Bytes,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    stream.set_nodelay(true)?;
    socket2::SockRef::from(&stream).set_send_buffer_size(opts.send_buffer)?;
    let mut ws = accept_async_with_config(stream, Some(server_ws_config())).await?;
    let mut tick = interval(Duration::from_secs(1) / opts.tick_rate.max(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) if b.first() == Some(&PING_TAG) => {
                    ws.send(Message::Binary(pong.clone())).await?;
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ok(()),
                Some(Ok(_)) => {}
            },
            _ = tick.tick() => ws.send(Message::Binary(frame.clone())).await?,
        }
    }
}

/// What the floor clients do.
#[derive(Debug, Clone)]
pub struct ClientOpts {
    /// The floor server.
    pub addr: SocketAddr,
    /// Connections.
    pub clients: usize,
    /// How long each run lasts, ramp-up included.
    pub duration: Duration,
    /// Connections open evenly over this time.
    pub ramp_up: Duration,
    /// Input messages per second per client.
    pub input_rate: u32,
    /// Size of an input message.
    pub input_bytes: usize,
    /// Time between two pings of a client.
    pub ping_interval: Duration,
}

/// What the clients saw, summed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Clients that completed the WebSocket upgrade.
    pub connected: usize,
    /// Tick messages received.
    pub frames: u64,
    /// Pongs received (messages of a size other than the tick message).
    pub pongs: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Messages sent (inputs and pings).
    pub sent: u64,
}

impl Summary {
    fn add(&mut self, o: &Summary) {
        self.connected += o.connected;
        self.frames += o.frames;
        self.pongs += o.pongs;
        self.bytes += o.bytes;
        self.sent += o.sent;
    }
}

/// Runs `opts.clients` clients against the floor server until `opts.duration`
/// has passed; `frame_bytes` tells tick messages from pongs.
pub async fn run_clients(opts: ClientOpts, frame_bytes: usize) -> Summary {
    let start = Instant::now();
    let end = start + opts.duration;
    let opts = Arc::new(opts);
    let mut tasks = JoinSet::new();
    for i in 0..opts.clients {
        let at = start + opts.ramp_up.mul_f64(i as f64 / opts.clients.max(1) as f64);
        let opts = opts.clone();
        tasks.spawn(async move {
            sleep_until(at).await;
            client(&opts, end, frame_bytes).await.unwrap_or_default()
        });
    }
    let mut sum = Summary::default();
    while let Some(r) = tasks.join_next().await {
        if let Ok(s) = r {
            sum.add(&s);
        }
    }
    sum
}

async fn client(
    opts: &ClientOpts,
    end: Instant,
    frame_bytes: usize,
) -> Result<Summary, tokio_tungstenite::tungstenite::Error> {
    let stream = TcpStream::connect(opts.addr).await?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024);
    let url = format!("ws://{}/", opts.addr);
    let (mut ws, _) = client_async_with_config(url, stream, Some(config)).await?;
    let mut s = Summary {
        connected: 1,
        ..Summary::default()
    };
    let period = Duration::from_secs(1) / opts.input_rate.max(1);
    let mut input = interval_at(Instant::now() + period, period);
    let mut ping = interval_at(Instant::now() + opts.ping_interval, opts.ping_interval);
    let mut body = vec![0u8; opts.input_bytes.max(1)];
    let inputs = Bytes::from(body.clone());
    body[0] = PING_TAG;
    let pings = Bytes::from(body);
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => {
                    s.bytes += b.len() as u64;
                    if b.len() == frame_bytes { s.frames += 1 } else { s.pongs += 1 }
                }
                Some(Ok(_)) => {}
                _ => return Ok(s),
            },
            _ = input.tick() => {
                ws.send(Message::Binary(inputs.clone())).await?;
                s.sent += 1;
            }
            _ = ping.tick() => {
                ws.send(Message::Binary(pings.clone())).await?;
                s.sent += 1;
            }
            _ = sleep_until(end) => break,
        }
    }
    let _ = timeout(Duration::from_secs(1), async {
        ws.close(None).await?;
        while let Some(m) = ws.next().await {
            m?;
        }
        Ok::<_, tokio_tungstenite::tungstenite::Error>(())
    })
    .await;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor moves what it is told to: every client connects, receives tick
    /// messages of exactly the frame size at about the tick rate, and gets a
    /// pong per ping.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn floor_moves_the_configured_traffic() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ServerOpts {
            frame_bytes: 200,
            ..ServerOpts::default()
        };
        let srv = tokio::spawn(serve(listener, server));
        let opts = ClientOpts {
            addr,
            clients: 4,
            duration: Duration::from_millis(1500),
            ramp_up: Duration::from_millis(100),
            input_rate: 30,
            input_bytes: 9,
            ping_interval: Duration::from_millis(250),
        };
        let s = run_clients(opts, 200).await;
        srv.abort();
        assert_eq!(s.connected, 4);
        // 30 Hz for ~1.4 s each: generous bounds, this is not a timing test.
        assert!((4 * 20..=4 * 50).contains(&s.frames), "{s:?}");
        assert!(s.pongs >= 4 * 3, "{s:?}");
        assert_eq!(s.bytes, s.frames * 200 + s.pongs * 12);
        assert!(s.sent >= 4 * 30, "{s:?}");
    }
}
