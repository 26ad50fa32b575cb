//! The network shell: the accept loop (connection limits, optional TLS) and
//! per-connection routing of HTTP requests to `/healthz`, `/metrics`,
//! matchmaking (`/matchmake`, `/rooms`), the WebSocket endpoint `/ws`, the web
//! demo and (with `--monitor`) the admin API and monitor page (`admin.rs`).

mod admin;
pub mod connection;
mod gate;
mod gated;
pub mod http;
mod inbound;
pub mod limits;
pub mod matchmake;
pub mod outbound;
pub mod rtt;
pub mod send;
pub mod tls;
pub mod web;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{Instrument, debug, info_span, warn};

use ticksync_protocol::{SUBPROTOCOL, SUBPROTOCOL_PREFIX, WS_PATH};

use crate::metrics::{DisconnectReason, Refusal};
use crate::room::RoomId;
use crate::session::{Closer, ConnId};
use crate::shared::{ConnEntry, Shared};
use http::{HeadError, RequestHead};
use limits::IpCounts;
use outbound::{Outbound, OutboundRx};
use prometheus_client::metrics::counter::Counter;

/// A tick thread that has not finished an iteration for this long is stuck
/// (a room's tick never returns) or dead: `/healthz` fails, so an orchestrator
/// restarts the process.
pub(crate) const STALLED_TICK_THREAD: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` turns true; with `tls`, every connection
/// is TLS (`wss://`, `https://`).
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
    tls: Option<TlsAcceptor>,
) {
    if shared.config.auth_secret.is_none() {
        warn!("no --auth-secret: the server is open, anyone may join under any name");
    }
    let per_ip = Arc::new(IpCounts::default());
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if shared.config.send_buffer > 0 {
            let _ = socket2::SockRef::from(&stream).set_send_buffer_size(shared.config.send_buffer);
        }
        let id = shared.next_conn_id();
        let span = info_span!(
            "conn",
            id = id.0,
            %peer,
            room = tracing::field::Empty,
            player = tracing::field::Empty
        );
        let shared = shared.clone();
        let tls = tls.clone();
        let (ip_guard, from_ip) = per_ip.acquire(peer.ip());
        let open = OpenTcp::new(&shared);
        tokio::spawn(
            async move {
                let _ip_guard = ip_guard;
                let _open = open;
                serve_connection(stream, peer, id, shared, tls, from_ip).await
            }
            .instrument(span),
        );
    }
}

/// A stream a WebSocket session can run on.
pub trait SessionStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// The stream tungstenite runs on.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// Opens the connection's outbound path (`capacity` frames, delivered
    /// payload bytes counted in `bytes_sent`) and the stream for tungstenite.
    fn open(self, capacity: usize, bytes_sent: Counter) -> (Self::Io, Outbound, OutboundRx);
}

/// Plain TCP: frames go straight into the socket (`net/outbound.rs`).
impl SessionStream for TcpStream {
    type Io = gated::GatedTcp;

    fn open(self, capacity: usize, bytes_sent: Counter) -> (Self::Io, Outbound, OutboundRx) {
        gated::open(self, capacity, bytes_sent)
    }
}

/// TLS: frames queue for the writer task, which writes through tungstenite.
impl SessionStream for tokio_rustls::server::TlsStream<TcpStream> {
    type Io = Self;

    fn open(self, capacity: usize, bytes_sent: Counter) -> (Self::Io, Outbound, OutboundRx) {
        let (out, rx) = outbound::queued(capacity, bytes_sent);
        (self, out, rx)
    }
}

/// Counts an accepted TCP connection in `ticksync_tcp_connections` until its task
/// ends, whatever it turns out to be (a flood of idle sockets shows up here).
struct OpenTcp(Arc<Shared>);

impl OpenTcp {
    fn new(shared: &Arc<Shared>) -> OpenTcp {
        shared.metrics.tcp_connections.inc();
        OpenTcp(shared.clone())
    }
}

impl Drop for OpenTcp {
    fn drop(&mut self) {
        self.0.metrics.tcp_connections.dec();
    }
}

/// Removes a connection from the registry, however its task ends.
struct Registered<'a> {
    shared: &'a Shared,
    id: ConnId,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.connections.remove(&self.id);
    }
}

/// Counts an upgraded WebSocket connection in `ticksync_connections` while alive
/// (plain HTTP requests such as scrapes are not counted).
struct Counted<'a>(&'a Shared);

impl<'a> Counted<'a> {
    fn new(shared: &'a Shared) -> Counted<'a> {
        shared.metrics.connections.inc();
        Counted(shared)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.metrics.connections.dec();
    }
}

/// Registers a connection, checks its limits, runs the TLS handshake if any,
/// then serves its one HTTP request. The handshake deadline bounds TLS, the
/// request head and `Hello` together, so a slowloris holds nothing for longer.
async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    id: ConnId,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    from_ip: usize,
) {
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let closer = Closer::default();
    let refusal = if shared.connections.len() >= shared.config.max_connections {
        Some(Refusal::server_full)
    } else if from_ip > shared.config.max_connections_per_ip
        && !shared.config.ip_limit_exempt.contains(peer.ip())
    {
        Some(Refusal::per_ip_limit)
    } else {
        None
    };
    // A connection accepted while draining only ever gets a 503 or a health
    // answer: it is not registered, so the drain does not wait for it.
    if !shared.is_draining() {
        shared.connections.insert(
            id,
            ConnEntry {
                peer,
                closer: closer.clone(),
            },
        );
    }
    let _registered = Registered {
        shared: &shared,
        id,
    };
    let Some(acceptor) = tls else {
        return serve_http(stream, &shared, id, closer, deadline, refusal, peer).await;
    };
    let accepted = tokio::select! {
        r = timeout_at(deadline, acceptor.accept(stream)) => r,
        _ = closer.closed() => return,
    };
    match accepted {
        Ok(Ok(stream)) => serve_http(stream, &shared, id, closer, deadline, refusal, peer).await,
        Ok(Err(e)) => debug!(error = %e, "TLS handshake failed"),
        Err(_) => {
            shared
                .metrics
                .disconnect(DisconnectReason::handshake_timeout);
            debug!("no TLS handshake before the handshake timeout");
        }
    }
}

/// Reads one request head and answers it, or upgrades `/ws` and runs the session.
async fn serve_http<S: SessionStream>(
    mut stream: S,
    shared: &Arc<Shared>,
    id: ConnId,
    closer: Closer,
    deadline: Instant,
    refusal: Option<Refusal>,
    peer: SocketAddr,
) {
    let head = tokio::select! {
        r = timeout_at(deadline, http::read_head(&mut stream)) => r,
        _ = closer.closed() => return,
    };
    let (head, leftover) = match head {
        Err(_) => {
            shared
                .metrics
                .disconnect(DisconnectReason::handshake_timeout);
            debug!("no request head before the handshake timeout");
            return;
        }
        Ok(Err(HeadError::Io(_))) => return,
        Ok(Err(HeadError::TooLarge)) => {
            let _ = http::respond(
                &mut stream,
                431,
                "text/plain",
                b"request head too large\n",
                &[],
            )
            .await;
            return;
        }
        Ok(Err(HeadError::Malformed(e))) => {
            debug!(error = %e, "malformed request");
            let _ =
                http::respond(&mut stream, 400, "text/plain", b"malformed request\n", &[]).await;
            return;
        }
        Ok(Ok(h)) => h,
    };
    if head.path == matchmake::MATCHMAKE_PATH {
        return matchmake::serve_matchmake(&mut stream, &head, leftover, shared, deadline, peer)
            .await;
    }
    if let Some(monitor) = &shared.monitor
        && admin::is_admin_path(&head.path)
    {
        let _ = admin::serve(&mut stream, shared, monitor, &head).await;
        return;
    }
    if head.method != "GET" {
        let _ = http::respond(
            &mut stream,
            405,
            "text/plain",
            b"only GET\n",
            &[("Allow", "GET")],
        )
        .await;
        return;
    }
    match head.path.as_str() {
        "/healthz" => {
            let _ = healthz(&mut stream, shared).await;
        }
        matchmake::ROOMS_PATH => matchmake::serve_rooms(&mut stream, shared, peer).await,
        "/metrics" => {
            let body = shared.metrics.encode();
            let _ = http::respond(
                &mut stream,
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body.as_bytes(),
                &[],
            )
            .await;
        }
        WS_PATH => {
            let refusal = if shared.is_draining() {
                Some(Refusal::draining)
            } else {
                refusal
            };
            if let Some(reason) = refusal {
                shared.metrics.connection_refused(reason);
                debug!(?reason, "connection refused before the upgrade");
                let (status, body): (u16, &[u8]) = match reason {
                    Refusal::per_ip_limit => (429, b"too many connections from your address\n"),
                    _ => (503, b"server unavailable, try again later\n"),
                };
                let _ = http::respond(
                    &mut stream,
                    status,
                    "text/plain",
                    body,
                    &[("Retry-After", "5")],
                )
                .await;
                return;
            }
            let url_room = match head.query_param("room").map(str::parse::<RoomId>) {
                None => None,
                Some(Ok(id)) => Some(id),
                Some(Err(())) => {
                    let _ = http::respond(
                        &mut stream,
                        400,
                        "text/plain",
                        b"room must be a room id (16 hex digits)\n",
                        &[],
                    )
                    .await;
                    return;
                }
            };
            let protocol = match check_upgrade(&head) {
                Ok(protocol) => protocol,
                Err(msg) => {
                    let _ =
                        http::respond(&mut stream, 400, "text/plain", msg.as_bytes(), &[]).await;
                    return;
                }
            };
            let key = head.ws_key.as_deref().unwrap_or_default();
            if http::accept_upgrade(&mut stream, key, protocol)
                .await
                .is_err()
            {
                return;
            }
            let (ws, out) = upgraded(stream, leftover, shared).await;
            let _counted = Counted::new(shared);
            // Boxed: the session's state is allocated once a connection gets this
            // far, instead of inside every accepted connection's task (a flood of
            // idle sockets would otherwise pay for it, see OPERATIONS.md).
            Box::pin(connection::run(
                ws,
                out,
                shared.clone(),
                id,
                closer,
                deadline,
                url_room,
            ))
            .await;
        }
        path if web::asset(path).is_some() => {
            let _ = web::serve(&mut stream, path).await;
        }
        _ => {
            let _ = http::respond(&mut stream, 404, "text/plain", b"not found\n", &[]).await;
        }
    }
}

/// Checks that a `/ws` request is a WebSocket upgrade offering a Ticksync
/// subprotocol, and picks the one to select.
fn check_upgrade(head: &RequestHead) -> Result<&str, String> {
    if !(head.upgrade_websocket && head.connection_upgrade && head.ws_key.is_some()) {
        return Err(format!("{WS_PATH} expects a WebSocket upgrade\n"));
    }
    if head.ws_version.as_deref() != Some("13") {
        return Err("Sec-WebSocket-Version must be 13\n".into());
    }
    select_subprotocol(&head.ws_protocols)
        .ok_or_else(|| format!("Sec-WebSocket-Protocol must offer {SUBPROTOCOL}\n"))
}

/// Our own version's subprotocol if offered; otherwise another version's
/// (`ticksync.v1`, ...), so that the client's `Hello` reaches the server and gets
/// a `VersionMismatch` naming both versions instead of a bare HTTP 400
/// (docs/PROTOCOL.md section 14).
fn select_subprotocol(offered: &[String]) -> Option<&str> {
    let ours = offered.iter().find(|p| *p == SUBPROTOCOL);
    ours.or_else(|| {
        offered.iter().find(|p| {
            p.strip_prefix(SUBPROTOCOL_PREFIX)
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        })
    })
    .map(String::as_str)
}

/// The WebSocket configuration: small buffers (the defaults cost ~1 GB per 10k
/// sockets) and the client message limit.
pub fn ws_config(max_message_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_message_size))
}

/// The session's WebSocket and its outbound path. The queue holds
/// `--outbound-queue` snapshots plus room for a `Welcome`/`Pong` and an `Error`.
async fn upgraded<S: SessionStream>(
    stream: S,
    leftover: Vec<u8>,
    shared: &Shared,
) -> (WebSocketStream<S::Io>, (Outbound, OutboundRx)) {
    let capacity = shared.config.outbound_queue + 2;
    let (io, out, rx) = stream.open(capacity, shared.metrics.bytes_sent.clone());
    let config = Some(ws_config(shared.config.max_message_size));
    let ws = WebSocketStream::from_partially_read(io, leftover, Role::Server, config).await;
    (ws, (out, rx))
}

async fn healthz<S: AsyncWrite + Unpin>(stream: &mut S, shared: &Shared) -> std::io::Result<()> {
    let (status, stalled) = shared.health();
    let rooms = shared.rooms();
    let body = serde_json::json!({
        "status": status,
        "rooms": rooms.len(),
        "players": rooms.players(),
        "connections": shared.connections.len(),
        "tick_threads": shared.placement.threads().len(),
        "stalled_tick_threads": stalled,
    })
    .to_string();
    let code = if status == "ok" { 200 } else { 503 };
    http::respond(stream, code, "application/json", body.as_bytes(), &[]).await
}
