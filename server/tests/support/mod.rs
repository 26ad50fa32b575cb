//! Test support: an in-process server on 127.0.0.1:0 and a raw WebSocket client
//! speaking the protocol through the protocol crate's codec.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use ticksync_protocol::{
    ClientMsg, Hello, Input, InputSeq, MoveDir, PROTOCOL_VERSION, SUBPROTOCOL, ServerMsg, Snapshot,
    Welcome, codec,
};
use ticksync_server::{Config, Server};

/// Generous bound for anything a test waits for (the machine is shared and noisy).
pub const WAIT: Duration = Duration::from_secs(10);

/// Waits (bounded by [`WAIT`]) until `cond` holds; panics otherwise.
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

pub async fn start_default() -> Server {
    start(Config::for_tests()).await
}

/// A raw protocol client.
pub struct Client {
    pub ws: WebSocketStream<TcpStream>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Closed(Option<u16>),
    Dropped,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        Client::connect_with_protocol(addr, Some(SUBPROTOCOL))
            .await
            .expect("upgrade accepted")
    }

    pub async fn connect_with_protocol(
        addr: SocketAddr,
        protocol: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let stream = TcpStream::connect(addr).await.expect("tcp connect");
        let mut req = format!("ws://{addr}/ws").into_client_request()?;
        if let Some(p) = protocol {
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p).unwrap());
        }
        let (ws, _) = tokio_tungstenite::client_async(req, stream).await?;
        Ok(Client { ws })
    }

    /// Connects and completes Hello/Welcome.
    pub async fn join(addr: SocketAddr) -> (Client, Welcome) {
        let mut c = Client::connect(addr).await;
        c.send(&ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: Some("test".into()),
            ..Hello::default()
        }))
        .await;
        let w = c.welcome().await;
        (c, w)
    }

    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_raw(codec::encode_client(msg)).await;
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.ws
            .send(Message::Binary(bytes.into()))
            .await
            .expect("send");
    }

    pub async fn send_input(&mut self, first: u32, dirs: &[MoveDir]) {
        self.send(&ClientMsg::Input(Input {
            ack_tick: None,
            first_seq: InputSeq(first),
            dirs: dirs.to_vec(),
        }))
        .await;
    }

    /// The next server message, skipping control frames; `Err` when the connection ends.
    pub async fn recv(&mut self) -> Result<ServerMsg, Ended> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("server message within the wait bound");
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    return Ok(codec::decode_server(&b).expect("server sends valid messages"));
                }
                Some(Ok(Message::Close(frame))) => {
                    return Err(Ended::Closed(frame.map(|f: CloseFrame| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    pub async fn welcome(&mut self) -> Welcome {
        match self.recv().await {
            Ok(ServerMsg::Welcome(w)) => w,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    pub async fn snapshot(&mut self) -> Snapshot {
        loop {
            match self.recv().await {
                Ok(ServerMsg::Snapshot(s)) => return s,
                Ok(ServerMsg::Pong { .. }) => continue,
                other => panic!("expected Snapshot, got {other:?}"),
            }
        }
    }

    /// Reads until the connection ends; returns the close code and any Error seen.
    /// Panics if the server keeps the connection open past the wait bound.
    pub async fn until_closed(&mut self) -> (Ended, Option<ticksync_protocol::ErrorMsg>) {
        let read = async {
            let mut error = None;
            loop {
                match self.recv().await {
                    Ok(ServerMsg::Error(e)) => error = Some(e),
                    Ok(_) => continue,
                    Err(end) => return (end, error),
                }
            }
        };
        tokio::time::timeout(WAIT, read)
            .await
            .expect("the server closes the connection within the wait bound")
    }
}
