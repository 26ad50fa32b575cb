//! Tests of the bot's async shell against a small fake server on 127.0.0.1 built
//! from the protocol crate's codec and snapshot helpers: the WebSocket handshake
//! (subprotocol), inputs and snapshots end to end, Resync after a corrupted
//! checksum, close code 1000, resume after a dropped connection, and a whole
//! `run` whose metrics scrape fails. The real server is tested end to end in the
//! workspace's tests/.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use ticksync_bot::{Backoff, BotConfig, BotHandle, BotOptions, Report, run};
use ticksync_protocol::{
    ClientMsg, EntityState, FixedPos, Hello, InputSeq, MoveConfig, PlayerId, ResumeToken,
    SUBPROTOCOL, ServerMsg, SessionLimits, Snapshot, Tick, Welcome, codec, snapshot, step,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

/// Fake-server tick period: faster than 30 Hz to keep the tests short.
const TICK: Duration = Duration::from_millis(20);

fn movement() -> MoveConfig {
    MoveConfig::from_units(100.0, 30, 1000.0)
}

/// Misbehaviour to inject into every connection of the fake server.
#[derive(Debug, Clone, Default)]
struct Faults {
    /// Corrupt the checksum of this snapshot (counted per connection).
    corrupt_tick: Option<u32>,
    /// Send these bytes instead of this snapshot.
    replace_tick: Option<(u32, Vec<u8>)>,
    /// Drop every connection open at this instant without a close frame, as a
    /// crashed server or a network failure would (later connections are kept).
    cut_at: Option<tokio::time::Instant>,
    /// Announce this tick rate in `Welcome` instead of 30.
    tick_rate: Option<u16>,
    /// Close every connection with this code at this tick (counted per connection).
    close_at_tick: Option<(u32, u16)>,
}

/// What the fake server saw, for the test to check.
#[derive(Debug, PartialEq)]
enum Seen {
    Hello(Hello),
    Resync,
    Closed(Option<u16>),
}

#[derive(Default)]
struct FakeWorld {
    /// Position and last applied input of every player.
    players: BTreeMap<PlayerId, (FixedPos, InputSeq)>,
    next_id: u32,
}

impl FakeWorld {
    fn view(&self) -> Vec<EntityState> {
        // This server applies inputs as they arrive, not per tick, so it
        // announces no velocity: every move is a correction.
        let entity =
            |(id, (pos, _)): (&PlayerId, &(FixedPos, InputSeq))| EntityState::at(*id, *pos);
        self.players.iter().map(entity).collect()
    }
}

struct FakeServer {
    url: String,
    world: Arc<Mutex<FakeWorld>>,
    seen: mpsc::UnboundedReceiver<Seen>,
}

impl FakeServer {
    /// Starts the server; each connection misbehaves as `faults` says.
    async fn start(faults: Faults) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/ws", listener.local_addr().unwrap());
        let world = Arc::new(Mutex::new(FakeWorld::default()));
        let (tx, seen) = mpsc::unbounded_channel();
        let w = world.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, w.clone(), tx.clone(), faults.clone()));
            }
        });
        FakeServer { url, world, seen }
    }

    async fn next_seen(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(3), self.seen.recv())
            .await
            .expect("the fake server saw nothing")
            .expect("fake server gone")
    }
}

// The signature is tungstenite's handshake `Callback`; its error type is large.
#[allow(clippy::result_large_err)]
fn require_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL));
    assert!(offered, "the bot must offer {SUBPROTOCOL}");
    resp.headers_mut()
        .insert("Sec-WebSocket-Protocol", SUBPROTOCOL.parse().unwrap());
    Ok(resp)
}

async fn serve(
    stream: TcpStream,
    world: Arc<Mutex<FakeWorld>>,
    seen: mpsc::UnboundedSender<Seen>,
    faults: Faults,
) {
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, require_subprotocol).await else {
        return;
    };
    let Some(Ok(Message::Binary(b))) = ws.next().await else {
        return;
    };
    let Ok(ClientMsg::Hello(hello)) = codec::decode_client(&b) else {
        panic!("first message must be Hello")
    };
    let (id, resumed) = {
        let mut w = world.lock().unwrap();
        match hello.resume_token {
            // Tokens are the player id in the first byte.
            Some(t) => (PlayerId(u32::from(t.0[0])), true),
            None => {
                w.next_id += 1;
                let id = PlayerId(w.next_id);
                w.players
                    .insert(id, (FixedPos::new(8000, 8000), InputSeq(0)));
                (id, false)
            }
        }
    };
    let _ = seen.send(Seen::Hello(hello));
    let last_input_seq = world.lock().unwrap().players[&id].1;
    let welcome = ServerMsg::Welcome(Welcome {
        player_id: id,
        tick: Tick(0),
        tick_rate: faults.tick_rate.unwrap_or(30),
        movement: movement(),
        fixed_scale: 16,
        view_radius: 0,
        resume_token: ResumeToken([id.0 as u8; 16]),
        resumed,
        last_input_seq,
        limits: SessionLimits {
            idle_timeout_ms: 15_000,
            rate_limit: 68,
            rate_burst: 68,
            resume_grace_ms: 10_000,
            input_queue: 16,
        },
    });
    let send = |m: &ServerMsg| Message::Binary(codec::encode_server(m).into());
    ws.send(send(&welcome)).await.unwrap();
    let mut ticker = tokio::time::interval(TICK);
    let cut_at = faults.cut_at.filter(|t| *t > tokio::time::Instant::now());
    let (mut tick, mut full_next) = (0u32, true);
    let (mut base_tick, mut sent_view) = (Tick(0), Vec::new());
    loop {
        tokio::select! {
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => match codec::decode_client(&b).unwrap() {
                    ClientMsg::Input(input) => {
                        let mut w = world.lock().unwrap();
                        let p = w.players.get_mut(&id).unwrap();
                        for (seq, dir) in input.iter() {
                            if seq.is_after(p.1) {
                                *p = (step(p.0, dir, &movement()), seq);
                            }
                        }
                    }
                    ClientMsg::Ping { client_time_us } => {
                        let pong = ServerMsg::Pong { client_time_us, server_tick: Tick(tick) };
                        ws.send(send(&pong)).await.unwrap();
                    }
                    ClientMsg::Resync => {
                        full_next = true;
                        let _ = seen.send(Seen::Resync);
                    }
                    ClientMsg::Hello(_) => panic!("second Hello"),
                },
                Some(Ok(Message::Close(frame))) => {
                    let _ = seen.send(Seen::Closed(frame.map(|f| u16::from(f.code))));
                    world.lock().unwrap().players.remove(&id);
                    return;
                }
                Some(Ok(_)) => {}
                // Dropped without a close frame: the player stays, resumable.
                Some(Err(_)) | None => return,
            },
            _ = tokio::time::sleep_until(cut_at.unwrap_or_else(tokio::time::Instant::now)), if cut_at.is_some() => return,
            _ = ticker.tick() => {
                tick += 1;
                if let Some((_, code)) = faults.close_at_tick.filter(|c| c.0 == tick) {
                    let frame = CloseFrame { code: code.into(), reason: "test".into() };
                    let _ = ws.close(Some(frame)).await;
                    // Read to the close reply: dropping the socket over unread
                    // inputs would reset it before the client reads the close frame.
                    let reply = async { while let Some(Ok(_)) = ws.next().await {} };
                    let _ = tokio::time::timeout(Duration::from_secs(1), reply).await;
                    return;
                }
                let (view, ack) = {
                    let w = world.lock().unwrap();
                    (w.view(), w.players.get(&id).map_or(InputSeq(0), |p| p.1))
                };
                let replaced = faults.replace_tick.as_ref().filter(|r| r.0 == tick);
                let msg = if let Some((_, bytes)) = replaced {
                    // The client never gets this tick: deltas go on from the last one.
                    Message::Binary(bytes.clone().into())
                } else {
                    let mut body = if full_next {
                        snapshot::full(Tick(tick), &view)
                    } else {
                        snapshot::delta(
                            Tick(tick),
                            base_tick,
                            &sent_view,
                            &view,
                            movement().world_max,
                        )
                    };
                    full_next = false;
                    if faults.corrupt_tick == Some(tick) {
                        body.checksum.0 ^= 0x55;
                    }
                    (base_tick, sent_view) = (Tick(tick), view);
                    send(&ServerMsg::Snapshot(Snapshot { ack_input: ack, body }))
                };
                if ws.send(msg).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn opts(url: &str) -> BotOptions {
    BotOptions {
        input_rate: 50,
        ping_interval: Duration::from_millis(100),
        ..BotOptions::new(url)
    }
}

#[tokio::test]
async fn plays_predicts_and_closes_with_1000() {
    let mut server = FakeServer::start(Faults::default()).await;
    let other = BotHandle::connect(opts(&server.url)).await.unwrap();
    let bot = BotHandle::connect(opts(&server.url)).await.unwrap();
    assert!(matches!(server.next_seen().await, Seen::Hello(h) if h.resume_token.is_none()));
    let id = bot.player_id().unwrap();
    bot.wait_until(Duration::from_secs(2), |v| {
        v.last_ack.0 >= 10 && v.counters.pongs > 0
    })
    .await
    .unwrap();
    for b in [&bot, &other] {
        b.set_quiesced(true);
    }
    for b in [&bot, &other] {
        b.wait_until(Duration::from_secs(2), |v| v.all_inputs_acked())
            .await
            .unwrap();
    }
    tokio::time::sleep(TICK * 3).await;
    let view = bot.view().await.unwrap();
    assert_eq!(view.entities, server.world.lock().unwrap().view());
    assert_eq!(view.own_position, view.predicted_position);
    assert_ne!(
        view.own_position,
        Some(FixedPos::new(8000, 8000)),
        "it moved"
    );
    assert_eq!(
        (view.counters.desyncs, view.counters.mispredictions),
        (0, 0)
    );

    let outcome = bot.close().await;
    assert!(outcome.connected && outcome.last_error.is_none());
    assert_eq!(outcome.player_id, Some(id));
    assert!(matches!(server.next_seen().await, Seen::Hello(_)));
    assert_eq!(server.next_seen().await, Seen::Closed(Some(1000)));
    // The other bot sees it leave.
    other
        .wait_until(Duration::from_secs(2), |v| {
            v.entities.iter().all(|e| e.id != id)
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn corrupted_checksum_leads_to_resync_and_recovery() {
    let mut server = FakeServer::start(Faults {
        corrupt_tick: Some(5),
        ..Faults::default()
    })
    .await;
    let bot = BotHandle::connect(opts(&server.url)).await.unwrap();
    assert!(matches!(server.next_seen().await, Seen::Hello(_)));
    assert_eq!(server.next_seen().await, Seen::Resync);
    let view = bot
        .wait_until(Duration::from_secs(2), |v| v.tick.is_some_and(|t| t.0 >= 8))
        .await
        .unwrap();
    assert_eq!(view.counters.desyncs, 1);
    assert_eq!(view.counters.resyncs_requested, 1);
    bot.close().await;
}

#[tokio::test]
async fn dropped_connection_resumes_the_session() {
    let mut server = FakeServer::start(Faults::default()).await;
    let bot = BotHandle::connect(BotOptions {
        reconnect: Some(Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(50),
        }),
        ..opts(&server.url)
    })
    .await
    .unwrap();
    let id = bot.player_id().unwrap();
    assert!(matches!(server.next_seen().await, Seen::Hello(_)));
    let before = bot
        .wait_until(Duration::from_secs(2), |v| v.last_ack.0 >= 5)
        .await
        .unwrap();
    bot.drop_connection();
    let Seen::Hello(again) = server.next_seen().await else {
        panic!("expected a second Hello")
    };
    assert_eq!(again.resume_token, Some(ResumeToken([id.0 as u8; 16])));
    let after = bot
        .wait_until(Duration::from_secs(2), |v| {
            v.connected && v.last_ack.0 > before.last_ack.0 + 5
        })
        .await
        .unwrap();
    assert_eq!(after.player_id, Some(id));
    assert_eq!(after.counters.desyncs, 0);
    bot.close().await;
}

#[tokio::test]
async fn run_reports_and_survives_a_failed_metrics_scrape() {
    let server = FakeServer::start(Faults::default()).await;
    let report = run(BotConfig {
        url: server.url.clone(),
        bots: 3,
        duration: Duration::from_millis(600),
        ramp_up: Duration::from_millis(100),
        seed: Some(5),
        // Nothing serves /metrics on the fake server's port.
        ..BotConfig::default()
    })
    .await
    .unwrap();
    assert_eq!((report.bots_requested, report.bots_connected), (3, 3));
    assert!(report.passed, "{report}");
    assert!(report.snapshots_received > 0 && report.inputs_sent > 0);
    assert_eq!(report.desyncs, 0);
    assert!(report.rtt_ms.p50.is_some());
    assert!(!report.server.scraped);
    assert!(report.server.ticks_missed.is_none());
    assert!(report.warnings.iter().any(|w| w.contains("/metrics")));
}

#[tokio::test]
async fn nothing_listening_is_a_connect_failure_and_a_failed_run() {
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("ws://127.0.0.1:{port}/ws");
    assert!(BotHandle::connect(opts(&url)).await.is_err());
    let report = run(BotConfig {
        url,
        bots: 2,
        duration: Duration::from_millis(200),
        ramp_up: Duration::ZERO,
        ..BotConfig::default()
    })
    .await
    .unwrap();
    assert_eq!((report.bots_connected, report.connect_failures), (0, 2));
    assert!(!report.passed);
}

#[tokio::test]
async fn unknown_message_types_are_skipped() {
    let server = FakeServer::start(Faults {
        // Tag 9 is no v1 message; the next snapshot is a delta against tick 4,
        // which the bot holds, so nothing else changes.
        replace_tick: Some((5, vec![0x09, 0x00])),
        ..Faults::default()
    })
    .await;
    let bot = BotHandle::connect(opts(&server.url)).await.unwrap();
    let view = bot
        .wait_until(Duration::from_secs(2), |v| v.tick.is_some_and(|t| t.0 >= 8))
        .await
        .unwrap();
    assert_eq!(view.counters.unknown_messages, 1);
    assert_eq!((view.counters.desyncs, view.counters.decode_errors), (0, 0));
    assert!(bot.close().await.last_error.is_none());
}

#[tokio::test]
async fn undecodable_message_closes_with_1002() {
    let mut server = FakeServer::start(Faults {
        // A snapshot cut short.
        replace_tick: Some((3, vec![0x01, 0x00, 0x03])),
        ..Faults::default()
    })
    .await;
    let bot = BotHandle::connect(opts(&server.url)).await.unwrap();
    assert!(matches!(server.next_seen().await, Seen::Hello(_)));
    assert_eq!(server.next_seen().await, Seen::Closed(Some(1002)));
    let outcome = bot.join().await;
    assert_eq!(outcome.counters.decode_errors, 1);
    assert!(matches!(
        outcome.last_error,
        Some(ticksync_bot::BotError::Protocol(_))
    ));
}

/// [`opts`] with reconnection after 10 ms.
fn reconnecting(url: &str) -> BotOptions {
    BotOptions {
        reconnect: Some(Backoff {
            min: Duration::from_millis(10),
            max: Duration::from_millis(10),
        }),
        ..opts(url)
    }
}

#[tokio::test]
async fn an_unusable_welcome_is_refused_with_1002_and_never_retried() {
    let mut server = FakeServer::start(Faults {
        tick_rate: Some(0),
        ..Faults::default()
    })
    .await;
    let connect = BotHandle::connect(reconnecting(&server.url));
    let Err(e) = connect.await else {
        panic!("a Welcome with tick_rate 0 is refused")
    };
    assert!(
        matches!(&e, ticksync_bot::BotError::Incompatible(why) if why.contains("Welcome.tick_rate")),
        "{e}"
    );
    assert!(matches!(server.next_seen().await, Seen::Hello(_)));
    assert_eq!(server.next_seen().await, Seen::Closed(Some(1002)));
    // No second Hello, although reconnecting is allowed after 10 ms.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.seen.try_recv().is_err(), "the bot came back");
}

#[tokio::test]
async fn after_a_server_close_with_1002_or_1008_the_bot_rejoins_without_resuming() {
    for code in [1002u16, 1008] {
        let mut server = FakeServer::start(Faults {
            close_at_tick: Some((3, code)),
            ..Faults::default()
        })
        .await;
        let bot = BotHandle::connect(reconnecting(&server.url)).await.unwrap();
        let Seen::Hello(first) = server.next_seen().await else {
            panic!("expected Hello")
        };
        assert_eq!(first.resume_token, None);
        let Seen::Hello(again) = server.next_seen().await else {
            panic!("{code}: expected a second Hello")
        };
        assert_eq!(again.resume_token, None, "{code}: not resumed");
        bot.close().await;
    }
}

/// When the fake server cuts every connection, into a run of [`CUT_RUN`].
const CUT: Duration = Duration::from_millis(600);
const CUT_RUN: Duration = Duration::from_secs(3);

/// A run of 4 bots against a server that drops every connection [`CUT`] into
/// it; with `backoff`, the bots reconnect after that (min = max) delay.
async fn run_with_a_cut(backoff: Option<Duration>) -> Report {
    let cut_at = tokio::time::Instant::now() + CUT;
    let server = FakeServer::start(Faults {
        cut_at: Some(cut_at),
        ..Faults::default()
    })
    .await;
    let mut config = BotConfig {
        url: server.url.clone(),
        bots: 4,
        duration: CUT_RUN,
        ramp_up: Duration::from_millis(100),
        seed: Some(11),
        ..BotConfig::default()
    };
    if let Some(delay) = backoff {
        config.reconnect = true;
        config.reconnect_min_backoff = delay;
        config.reconnect_max_backoff = delay;
    }
    run(config).await.unwrap()
}

#[tokio::test]
async fn bots_that_end_the_run_disconnected_fail_it() {
    let report = run_with_a_cut(None).await;
    assert_eq!(report.bots_connected, 4);
    assert_eq!(report.bots_ended_disconnected, 4, "{report}");
    assert!(!report.passed, "{report}");
    assert!(
        report.failures[0].contains("4 ended the run disconnected"),
        "{:?}",
        report.failures
    );
    // Connected for about the first 0.6 s of 3 s.
    let mean = report.connected_share.mean.unwrap();
    assert!(mean > 0.05 && mean < 0.5, "{report}");
    // Allowed failures still apply to these bots.
    let mut allowed = report.clone();
    allowed.allow_failures = 4;
    allowed.judge();
    assert!(allowed.passed, "{allowed}");
}

#[tokio::test]
async fn bots_that_reconnect_at_once_pass_and_slow_ones_fail() {
    let quick = run_with_a_cut(Some(Duration::from_millis(40))).await;
    assert!(quick.passed, "{quick}");
    assert!(quick.reconnects >= 4, "{quick}");
    assert_eq!(quick.bots_ended_disconnected, 0);
    assert_eq!(quick.bots_disconnected_too_long, 0);
    assert!(quick.connected_share.min.unwrap() > 0.9, "{quick}");

    // Back only 0.6-1.2 s later: away for 20-40 % of the run, over the default 10 %.
    let slow = run_with_a_cut(Some(Duration::from_millis(1200))).await;
    assert!(slow.reconnects >= 4, "{slow}");
    assert_eq!(slow.bots_ended_disconnected, 0, "{slow}");
    assert_eq!(slow.bots_disconnected_too_long, 4, "{slow}");
    assert!(!slow.passed, "{slow}");
}
