//! Raw protocol clients for tests that must send exactly the bytes they choose
//! (malformed messages, text frames, floods, stale sequence numbers): a
//! [`RawClient`] over tokio-tungstenite with the protocol crate's codec, and a
//! [`RawPlayer`] that also reconstructs the world with [`ClientWorld`] and
//! predicts with [`Predictor`], as a real client would.

use std::net::SocketAddr;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use ticksync_protocol::{
    ClientMsg, ClientWorld, ErrorMsg, FixedPos, Hello, Input, InputSeq, MoveDir, PROTOCOL_VERSION,
    PlayerId, Predictor, Reconciliation, ResumeToken, SUBPROTOCOL, ServerMsg, Snapshot, Welcome,
    codec,
};

use crate::{WAIT, within};

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code (`None`: a close frame without a code).
    Closed(Option<u16>),
    /// The connection broke without a close frame.
    Dropped,
}

/// A WebSocket client that speaks the protocol message by message.
pub struct RawClient {
    /// The socket, for tests that need more than the helpers.
    pub ws: WebSocketStream<TcpStream>,
}

impl RawClient {
    /// Opens a WebSocket to `addr` offering this version's subprotocol.
    pub async fn connect(addr: SocketAddr) -> RawClient {
        RawClient::connect_with_protocol(addr, Some(SUBPROTOCOL))
            .await
            .expect("upgrade accepted")
    }

    /// Opens a WebSocket to `addr` offering `protocol` as the subprotocol (or
    /// none); `Err` if the server refuses the upgrade.
    pub async fn connect_with_protocol(
        addr: SocketAddr,
        protocol: Option<&str>,
    ) -> Result<RawClient, WsError> {
        RawClient::connect_path(addr, "/ws", protocol).await
    }

    /// Opens a WebSocket to `path` (with its query, e.g. `/ws?room=ID`) on
    /// `addr`, offering `protocol`; `Err` if the server refuses the upgrade.
    pub async fn connect_path(
        addr: SocketAddr,
        path: &str,
        protocol: Option<&str>,
    ) -> Result<RawClient, WsError> {
        let connect = async {
            let stream = TcpStream::connect(addr).await.expect("tcp connect");
            stream.set_nodelay(true).expect("TCP_NODELAY");
            let mut req = format!("ws://{addr}{path}").into_client_request()?;
            if let Some(p) = protocol {
                let value = HeaderValue::from_str(p).expect("a header-safe subprotocol");
                req.headers_mut().insert("Sec-WebSocket-Protocol", value);
            }
            let (ws, _) = tokio_tungstenite::client_async(req, stream).await?;
            Ok(RawClient { ws })
        };
        within(WAIT, "the WebSocket upgrade", connect).await
    }

    /// Connects and completes `Hello` / `Welcome`.
    pub async fn join(addr: SocketAddr, name: &str) -> (RawClient, Welcome) {
        RawClient::join_at(addr, "/ws", name, None).await
    }

    /// Connects to `path` (e.g. a matchmake answer's `/ws?room=ID`) and
    /// completes `Hello` (with `auth_token`: a seat or join token) / `Welcome`.
    pub async fn join_at(
        addr: SocketAddr,
        path: &str,
        name: &str,
        auth_token: Option<&str>,
    ) -> (RawClient, Welcome) {
        let mut c = RawClient::connect_path(addr, path, Some(SUBPROTOCOL))
            .await
            .expect("upgrade accepted");
        c.send(&ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: Some(name.into()),
            auth_token: auth_token.map(str::to_string),
            ..Hello::default()
        }))
        .await;
        let w = c.welcome().await;
        (c, w)
    }

    /// Sends one message; panics if the connection is gone.
    pub async fn send(&mut self, msg: &ClientMsg) {
        self.send_raw(codec::encode_client(msg)).await;
    }

    /// Sends arbitrary bytes as one binary frame; panics if the connection is gone.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) {
        self.try_send_raw(bytes).await.expect("send");
    }

    /// Sends arbitrary bytes as one binary frame; `Err` once the connection is gone
    /// (for floods the server may cut off).
    pub async fn try_send_raw(&mut self, bytes: Vec<u8>) -> Result<(), WsError> {
        within(
            WAIT,
            "a frame to be sent",
            self.ws.send(Message::Binary(bytes.into())),
        )
        .await
    }

    /// Sends a text frame (the protocol is binary only).
    pub async fn send_text(&mut self, text: &str) {
        within(
            WAIT,
            "a text frame to be sent",
            self.ws.send(Message::text(text)),
        )
        .await
        .expect("send");
    }

    /// Sends one `Input` message: `dirs[i]` gets sequence number `first + i`.
    pub async fn send_input(&mut self, first: InputSeq, dirs: &[MoveDir]) {
        self.send(&input_msg(first, dirs)).await;
    }

    /// The next server message, skipping control frames; `Err` once the connection
    /// ends. Fails the test if nothing arrives within [`WAIT`].
    pub async fn recv(&mut self) -> Result<ServerMsg, Ended> {
        loop {
            let msg = within(WAIT, "a server message", self.ws.next()).await;
            match msg {
                Some(Ok(Message::Binary(b))) => {
                    return Ok(codec::decode_server(&b).expect("the server sends valid messages"));
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite queued the close reply; send it, as a polite
                    // client would (the server waits briefly for it).
                    let _ = tokio::time::timeout(WAIT, self.ws.flush()).await;
                    return Err(Ended::Closed(frame.map(|f| u16::from(f.code))));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(Ended::Dropped),
            }
        }
    }

    /// The next message, which must be a `Welcome`.
    pub async fn welcome(&mut self) -> Welcome {
        match self.recv().await {
            Ok(ServerMsg::Welcome(w)) => w,
            other => panic!("expected Welcome, got {other:?}"),
        }
    }

    /// The next `Snapshot`, skipping `Pong`s.
    pub async fn snapshot(&mut self) -> Snapshot {
        loop {
            match self.recv().await {
                Ok(ServerMsg::Snapshot(s)) => return s,
                Ok(ServerMsg::Pong { .. }) => continue,
                other => panic!("expected Snapshot, got {other:?}"),
            }
        }
    }

    /// Closes with code 1000 (a deliberate leave: the server removes the player
    /// at once) and reads until the server's close reply; returns its code.
    pub async fn close_normal(&mut self) -> Ended {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "test done".into(),
        };
        within(
            WAIT,
            "the close frame to be sent",
            self.ws.close(Some(frame)),
        )
        .await
        .expect("send close");
        self.until_closed().await.0
    }

    /// Reads until the connection ends; returns how, and the last `Error` seen.
    /// Fails the test if the server keeps the connection open past [`WAIT`].
    pub async fn until_closed(&mut self) -> (Ended, Option<ErrorMsg>) {
        within(WAIT, "the server to close the connection", async {
            let mut error = None;
            loop {
                match self.recv().await {
                    Ok(ServerMsg::Error(e)) => error = Some(e),
                    Ok(_) => continue,
                    Err(end) => return (end, error),
                }
            }
        })
        .await
    }
}

/// An `Input` message: `dirs[i]` gets sequence number `first + i`.
pub fn input_msg(first: InputSeq, dirs: &[MoveDir]) -> ClientMsg {
    ClientMsg::Input(Input {
        ack_tick: None,
        first_seq: first,
        dirs: dirs.to_vec(),
    })
}

/// A raw client that plays: it reconstructs the world from every snapshot and
/// predicts its own player, but the test decides which inputs go on the wire and
/// with which sequence numbers.
pub struct RawPlayer {
    /// The connection.
    pub client: RawClient,
    /// The server's `Welcome`.
    pub welcome: Welcome,
    /// The world rebuilt from snapshots.
    pub world: ClientWorld,
    /// The local prediction, started from the first snapshot.
    pub predictor: Predictor,
    /// The last snapshot's `ack_input`.
    pub last_ack: InputSeq,
}

/// What one snapshot did to a [`RawPlayer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The snapshot's tick.
    pub tick: ticksync_protocol::Tick,
    /// Its `ack_input`.
    pub ack: InputSeq,
    /// What reconciling the prediction with it found.
    pub reconciliation: Reconciliation,
}

impl RawPlayer {
    /// Joins, then reads the first (full) snapshot to start the world and the
    /// predictor from.
    pub async fn join(addr: SocketAddr, name: &str) -> RawPlayer {
        let (client, welcome) = RawClient::join(addr, name).await;
        RawPlayer::start(client, welcome).await
    }

    /// Resumes the session of `token` (from an earlier `Welcome`) on a new
    /// connection, then reads the first (full) snapshot like [`RawPlayer::join`].
    pub async fn resume(addr: SocketAddr, token: ResumeToken) -> RawPlayer {
        let mut client = RawClient::connect(addr).await;
        client
            .send(&ClientMsg::Hello(Hello {
                version: PROTOCOL_VERSION,
                resume_token: Some(token),
                ..Hello::default()
            }))
            .await;
        let welcome = client.welcome().await;
        assert!(welcome.resumed, "the session is resumed");
        RawPlayer::start(client, welcome).await
    }

    async fn start(mut client: RawClient, welcome: Welcome) -> RawPlayer {
        let first = client.snapshot().await;
        assert!(first.body.baseline.is_none(), "the first snapshot is full");
        let mut world = ClientWorld::new(welcome.movement.world_max);
        world.apply(&first.body).expect("full snapshot applies");
        let own = world
            .get(welcome.player_id)
            .expect("own player in the first snapshot");
        let predictor = Predictor::new(welcome.movement, own, first.ack_input);
        RawPlayer {
            client,
            welcome,
            world,
            predictor,
            last_ack: first.ack_input,
        }
    }

    /// The player's id.
    pub fn id(&self) -> PlayerId {
        self.welcome.player_id
    }

    /// The player's position in the reconstructed world (the server's word).
    pub fn authoritative(&self) -> FixedPos {
        self.world.get(self.id()).expect("own player in the world")
    }

    /// Reads the next snapshot, applies it (it must apply: no desync) and
    /// reconciles the prediction with it.
    pub async fn next_snapshot(&mut self) -> Applied {
        let s = self.client.snapshot().await;
        if let Err(e) = self.world.apply(&s.body) {
            panic!("snapshot of tick {} does not apply: {e}", s.body.tick.0);
        }
        self.last_ack = s.ack_input;
        let reconciliation = self.predictor.reconcile(s.ack_input, self.authoritative());
        Applied {
            tick: s.body.tick,
            ack: s.ack_input,
            reconciliation,
        }
    }

    /// Reads snapshots until one acknowledges `seq`; returns every one read.
    pub async fn until_acked(&mut self, seq: InputSeq) -> Vec<Applied> {
        let mut out = Vec::new();
        within(
            WAIT,
            &format!("input {} to be acknowledged", seq.0),
            async {
                while seq.is_after(self.last_ack) {
                    out.push(self.next_snapshot().await);
                }
            },
        )
        .await;
        out
    }

    /// A direction towards the middle of the world, so a step is never clamped
    /// away by a wall.
    pub fn towards_middle(&self) -> MoveDir {
        let pos = self.authoritative().0;
        let max = self.welcome.movement.world_max;
        let x = if pos.x < max.x / 2 { 127 } else { -127 };
        let y = if pos.y < max.y / 2 { 127 } else { -127 };
        MoveDir::new(x, y)
    }
}
