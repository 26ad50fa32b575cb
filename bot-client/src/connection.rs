//! The thin async shell around one [`Session`]: opens the WebSocket, then moves
//! bytes between the socket and the session, ticks its input timer and answers
//! commands from the bot's handle. All protocol decisions are the session's.

use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use ticksync_protocol::{ErrorMsg, MAX_SERVER_MSG_LEN, PlayerId, SUBPROTOCOL, close};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, timeout};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{ClientRequestBuilder, Message, http::Uri};
use tokio_tungstenite::{WebSocketStream, client_async_with_config};

use crate::bot::{BotOptions, BotView};
use crate::config::parse_ws_url;
use crate::error::{BotError, ConfigError};
use crate::session::{Counters, Event, Session};
use crate::stats::{SampleBuf, SharedStats};
use crate::tls::{self, Stream};

/// Snapshot-interval samples a bot buffers before taking the shared lock.
const INTERVAL_BATCH: usize = 64;

/// How long a clean close waits for the server's close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Read buffer per connection: snapshots are small, and the 128 KiB default
/// would cost hundreds of MB across thousands of bots.
const READ_BUFFER: usize = 4096;

pub(crate) type Ws = WebSocketStream<Stream>;

/// What a bot's handle asks its task to do.
#[derive(Debug)]
pub(crate) enum Command {
    /// Reply with the bot's current state.
    Inspect(oneshot::Sender<BotView>),
    /// Stop (`true`) or restart (`false`) sending inputs.
    Quiesce(bool),
    /// Close with code 1000 and end the bot.
    Close,
    /// Drop the TCP connection without a close frame (the bot reconnects if its
    /// options say so, else it ends).
    DropConnection,
}

/// How a connection ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The handle asked to close cleanly (or was dropped).
    Closed,
    /// The match ended (`BotOptions::churn`): the bot left cleanly (1000).
    MatchOver,
    /// The handle asked to drop the connection.
    Dropped,
    /// The connection failed or the server closed it.
    Lost(BotError),
}

/// The WebSocket settings of a bot connection.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_SERVER_MSG_LEN))
        .max_frame_size(Some(MAX_SERVER_MSG_LEN))
}

/// Opens the TCP connection (TCP_NODELAY), runs the TLS handshake for `wss://`
/// and performs the WebSocket upgrade, offering this version's subprotocol.
pub(crate) async fn connect(opts: &BotOptions) -> Result<Ws, BotError> {
    let target = parse_ws_url(&opts.url)?;
    let uri: Uri = opts.url.parse().map_err(|e| {
        BotError::Config(ConfigError::Invalid {
            flag: "--url",
            why: format!("{e}"),
        })
    })?;
    let stream = tls::open(&target, opts.tls.as_ref()).await?;
    let request = ClientRequestBuilder::new(uri).with_sub_protocol(SUBPROTOCOL);
    let (ws, _response) = client_async_with_config(request, stream, Some(ws_config())).await?;
    Ok(ws)
}

/// One bot's long-lived state, carried across its connections.
pub(crate) struct Driver {
    pub session: Session,
    pub stats: Arc<SharedStats>,
    pub commands: mpsc::UnboundedReceiver<Command>,
    pub opts: BotOptions,
    /// Told the result of the first connection (for `BotHandle::connect`).
    pub ready: Option<oneshot::Sender<Result<PlayerId, BotError>>>,
    /// Whether any connection of this bot was welcomed.
    pub ever_welcomed: bool,
    /// Total time this bot's connections were welcomed.
    pub connected_for: Duration,
    /// The room of the bot's last seat (`--matchmake`).
    pub room: Option<String>,
    /// Since when the bot is without a room after giving its seat up (drain,
    /// room closed, member gone): its next `Welcome` is a re-matchmake.
    pub rematchmaking_since: Option<std::time::Instant>,
    published: Counters,
    rtt: SampleBuf<1>,
    intervals: SampleBuf<INTERVAL_BATCH>,
    buf: Vec<u8>,
    /// Outgoing payloads: once tungstenite has framed and dropped the previous
    /// one, `reserve` reclaims the same allocation, so sending allocates nothing.
    payload: BytesMut,
}

impl Driver {
    pub fn new(
        session: Session,
        stats: Arc<SharedStats>,
        commands: mpsc::UnboundedReceiver<Command>,
        opts: BotOptions,
        ready: Option<oneshot::Sender<Result<PlayerId, BotError>>>,
    ) -> Driver {
        Driver {
            session,
            stats,
            commands,
            opts,
            ready,
            ever_welcomed: false,
            connected_for: Duration::ZERO,
            room: None,
            rematchmaking_since: None,
            published: Counters::default(),
            rtt: SampleBuf::new(),
            intervals: SampleBuf::new(),
            buf: Vec::with_capacity(64),
            payload: BytesMut::with_capacity(256),
        }
    }

    /// Handles a command that needs no connection; returns the ones that do.
    pub fn handle_command(&mut self, cmd: Command) -> Option<Command> {
        match cmd {
            Command::Inspect(reply) => {
                // The handle may have given up waiting; nothing to do then.
                let mut view = BotView::of(&self.session);
                view.room = self.room.clone();
                let _ = reply.send(view);
                None
            }
            Command::Quiesce(q) => {
                self.session.set_quiesced(q);
                None
            }
            other => Some(other),
        }
    }

    /// Runs one connection until it ends. `welcomed` tells whether the server
    /// accepted the `Hello` on it.
    pub async fn drive(&mut self, mut ws: Ws) -> (Ended, bool) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.opts.input_rate.max(1)));
        let mut timer = interval_at(Instant::now() + period, period);
        timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let welcome_deadline = sleep(self.opts.connect_timeout);
        tokio::pin!(welcome_deadline);
        let mut welcomed_at: Option<Instant> = None;
        let mut refusal: Option<ErrorMsg> = None;
        let ended = 'conn: loop {
            let welcomed = welcomed_at.is_some();
            if let Err(e) = self.send_pending(&mut ws).await {
                break Ended::Lost(e);
            }
            tokio::select! {
                cmd = self.commands.recv() => match cmd.and_then(|c| self.handle_command(c)) {
                    None if !self.commands.is_closed() => {}
                    Some(Command::DropConnection) => break Ended::Dropped,
                    _ => {
                        close_cleanly(&mut ws).await;
                        break Ended::Closed;
                    }
                },
                msg = ws.next() => {
                    let now = Instant::now().into_std();
                    match msg {
                        Some(Ok(Message::Binary(bytes))) => {
                            if let Err(e) = self.session.handle_bytes(&bytes, now) {
                                tracing::warn!(error = %e, "undecodable server message");
                                close_with(&mut ws, close::PROTOCOL_ERROR, "undecodable message").await;
                                break Ended::Lost(BotError::Protocol(e.to_string()));
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            // tungstenite queued the close reply; send it.
                            let _ = ws.flush().await;
                            let (code, reason) = frame.map_or((1005, String::new()), |f| {
                                (u16::from(f.code), f.reason.to_string())
                            });
                            break Ended::Lost(match refusal.take() {
                                Some(e) if !welcomed => BotError::Refused(e),
                                _ => BotError::Closed { code, reason },
                            });
                        }
                        Some(Ok(Message::Text(_))) => {
                            self.session_error("text frame from the server");
                            close_with(&mut ws, close::UNSUPPORTED_DATA, "text frame").await;
                            break Ended::Lost(BotError::Protocol("text frame".into()));
                        }
                        Some(Ok(_)) => {
                            // Ping/pong: tungstenite answers pings on the next flush.
                            let _ = ws.flush().await;
                        }
                        Some(Err(e)) => break Ended::Lost(e.into()),
                        None => break Ended::Lost(BotError::Closed {
                            code: 1006,
                            reason: "connection ended without a close frame".into(),
                        }),
                    }
                }
                _ = timer.tick() => {
                    self.session.handle_timeout(Instant::now().into_std());
                    self.flush_stats();
                }
                _ = &mut welcome_deadline, if !welcomed => {
                    break Ended::Lost(BotError::Timeout("Welcome"));
                }
            }
            while let Some(event) = self.session.poll_event() {
                match event {
                    Event::Welcomed { player_id, resumed } => {
                        welcomed_at = Some(Instant::now());
                        self.on_welcomed(player_id, resumed);
                    }
                    Event::ServerError(e) => {
                        tracing::warn!(code = e.code.to_u16(), message = %e.message, "server error");
                        refusal = Some(e);
                    }
                    Event::Rtt(d) => {
                        if self.rtt.push(d) {
                            self.stats.record(self.rtt.as_slice(), &[]);
                            self.rtt.clear();
                        }
                    }
                    Event::SnapshotInterval(d) => {
                        if self.intervals.push(d) {
                            self.stats.record(&[], self.intervals.as_slice());
                            self.intervals.clear();
                        }
                    }
                    Event::Incompatible(why) => {
                        tracing::warn!(%why, "unusable Welcome");
                        close_with(&mut ws, close::PROTOCOL_ERROR, "unusable Welcome").await;
                        break 'conn Ended::Lost(BotError::Incompatible(why));
                    }
                    Event::Desync(_) | Event::Mispredicted { .. } => {}
                }
            }
            if self.match_is_over() {
                close_cleanly(&mut ws).await;
                break Ended::MatchOver;
            }
        };
        if let Some(t) = welcomed_at {
            use std::sync::atomic::Ordering::Relaxed;
            self.stats.connected_now.fetch_sub(1, Relaxed);
            let connected = t.elapsed();
            self.connected_for += connected;
            let us = connected.as_micros().min(u128::from(u64::MAX)) as u64;
            self.stats.connected_us.fetch_add(us, Relaxed);
        }
        self.flush_stats();
        (ended, welcomed_at.is_some())
    }

    /// Whether the room's tick reached the end of the match (`--churn`).
    fn match_is_over(&self) -> bool {
        let (Some(length), Some(welcome), Some(tick)) =
            (self.opts.churn, self.session.welcome(), self.session.tick())
        else {
            return false;
        };
        let ticks = length.as_secs_f64() * f64::from(welcome.tick_rate);
        f64::from(tick.0) >= ticks
    }

    fn on_welcomed(&mut self, player_id: PlayerId, resumed: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        self.stats.connected_now.fetch_add(1, Relaxed);
        if self.ever_welcomed {
            self.stats.reconnects.fetch_add(1, Relaxed);
            if resumed {
                self.stats.resumed.fetch_add(1, Relaxed);
            }
        } else {
            self.ever_welcomed = true;
            self.stats.bots_connected.fetch_add(1, Relaxed);
        }
        if let Some(since) = self.rematchmaking_since.take() {
            self.stats.rematchmade(since.elapsed());
        }
        tracing::debug!(player = player_id.0, resumed, "welcomed");
        if let Some(ready) = self.ready.take() {
            let _ = ready.send(Ok(player_id));
        }
    }

    fn session_error(&mut self, what: &str) {
        tracing::warn!("{what}");
        self.stats
            .errors
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Publishes counters and buffered samples to the shared statistics.
    pub fn flush_stats(&mut self) {
        self.stats
            .publish(self.session.counters(), &mut self.published);
        self.stats
            .record(self.rtt.as_slice(), self.intervals.as_slice());
        self.rtt.clear();
        self.intervals.clear();
    }

    async fn send_pending(&mut self, ws: &mut Ws) -> Result<(), BotError> {
        let mut sent = false;
        let now = Instant::now().into_std();
        while self.session.poll_transmit(&mut self.buf, now) {
            self.payload.reserve(self.buf.len());
            self.payload.extend_from_slice(&self.buf);
            ws.feed(Message::Binary(self.payload.split().freeze()))
                .await?;
            sent = true;
        }
        if sent {
            ws.flush().await?;
        }
        Ok(())
    }
}

/// Sends a close frame with code 1000 and waits briefly for the server's reply.
async fn close_cleanly(ws: &mut Ws) {
    close_with(ws, close::NORMAL, "bot done").await;
}

/// Sends a close frame and waits briefly for the server's reply.
async fn close_with(ws: &mut Ws, code: u16, reason: &str) {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    };
    if ws.close(Some(frame)).await.is_err() {
        return;
    }
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}
