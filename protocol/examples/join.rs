//! A minimal Rust client built on `ticksync-protocol` alone plus a WebSocket
//! crate (tokio-tungstenite): it joins a server, walks in a slow circle, and
//! prints what it sees — the `Welcome`, then for each snapshot its tick, the
//! players in view and its own position as the server reports it.
//!
//! ```text
//! cargo run --release -p ticksync-server &
//! cargo run -p ticksync-protocol --example join -- ws://127.0.0.1:7777/ws 60
//! ```
//!
//! Arguments: the server's WebSocket URL (default `ws://127.0.0.1:7777/ws`) and
//! how many snapshots to read before closing with 1000 (default 30).

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use ticksync_protocol::{
    ClientMsg, ClientWorld, Hello, Input, InputSeq, MoveDir, PROTOCOL_VERSION, SUBPROTOCOL,
    ServerMsg, codec,
};

type Error = Box<dyn std::error::Error>;
type Ws = WebSocketStream<TcpStream>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "ws://127.0.0.1:7777/ws".into());
    let wanted: u32 = args.next().map(|n| n.parse()).transpose()?.unwrap_or(30);

    // The server speaks binary frames under the `ticksync.v2` subprotocol.
    let mut request = url.as_str().into_client_request()?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    let uri = request.uri();
    let host = uri.host().ok_or("the URL has no host")?;
    let tcp = TcpStream::connect((host, uri.port_u16().unwrap_or(80))).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
    send(
        &mut ws,
        &ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            name: Some("example".into()),
            ..Hello::default()
        }),
    )
    .await?;

    // Replaced at `Welcome`, which says how large the world is: players a
    // snapshot does not mention move on by their velocity, clamped to it.
    let mut world = ClientWorld::new(glam::IVec2::ZERO);
    let mut me = None;
    let mut seq = 0u32;
    let mut seen = 0u32;
    while seen < wanted {
        let Some(frame) = ws.next().await else {
            return Err("the server closed the connection".into());
        };
        let bytes = match frame? {
            Message::Binary(bytes) => bytes,
            Message::Close(frame) => return Err(format!("closed by the server: {frame:?}").into()),
            _ => continue,
        };
        match codec::decode_server(&bytes)? {
            ServerMsg::Welcome(w) => {
                println!(
                    "welcome: player {} at tick {}, {} ticks/s",
                    w.player_id.0, w.tick.0, w.tick_rate
                );
                me = Some(w.player_id);
                world = ClientWorld::new(w.movement.world_max);
            }
            ServerMsg::Snapshot(s) => {
                // Every snapshot carries a checksum; `apply` verifies it.
                world.apply(&s.body)?;
                seen += 1;
                // Position and velocity (grid steps per tick) as the server says.
                let own = me.and_then(|id| world.state(id));
                println!(
                    "snapshot tick {}: {} players in view, me at {}, input {} applied",
                    s.body.tick.0,
                    world.len(),
                    own.map_or("?".into(), |e| {
                        let p = e.pos.to_world();
                        format!("({:.2}, {:.2}) moving ({}, {})", p.x, p.y, e.vel.x, e.vel.y)
                    }),
                    s.ack_input.0
                );
                // One input per snapshot: a direction that turns slowly.
                seq += 1;
                let angle = seq as f32 * 0.05;
                let input = Input {
                    ack_tick: Some(s.body.tick),
                    first_seq: InputSeq(seq),
                    dirs: vec![MoveDir::from_vec2(glam::Vec2::from_angle(angle))],
                };
                send(&mut ws, &ClientMsg::Input(input)).await?;
            }
            ServerMsg::Error(e) => {
                return Err(format!("server error {:?}: {}", e.code, e.message).into());
            }
            _ => {}
        }
    }
    ws.close(None).await?;
    println!("done: {seen} snapshots");
    Ok(())
}

async fn send(ws: &mut Ws, msg: &ClientMsg) -> Result<(), Error> {
    ws.send(Message::Binary(codec::encode_client(msg).into()))
        .await?;
    Ok(())
}
