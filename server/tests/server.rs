//! Integration tests: a live server on 127.0.0.1:0 and raw WebSocket clients.

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    ClientMsg, ClientWorld, ErrorCode, FixedPos, Hello, InputSeq, MoveDir, PROTOCOL_VERSION,
    SUBPROTOCOL, ServerMsg, step,
};
use ticksync_server::Config;

use ticksync_testkit::WAIT;
use ticksync_testkit::raw::{Ended, RawClient};

#[tokio::test]
async fn welcome_then_full_snapshot_with_own_player() {
    let server = support::start_default().await;
    let (mut c, w) = RawClient::join(server.local_addr(), "test").await;
    assert_ne!(w.player_id.0, 0);
    assert_eq!(w.tick_rate, 30);
    assert_eq!(w.fixed_scale, 16);
    assert_eq!(w.movement, server.config().movement());
    assert_eq!(w.movement.speed_per_tick, 53);
    assert!(!w.resumed);
    assert_eq!(w.last_input_seq.0, 0);
    assert_ne!(w.resume_token.0, [0; 16]);
    let s = c.snapshot().await;
    assert!(s.body.baseline.is_none(), "the first snapshot is full");
    let mut world = ClientWorld::new(server.config().movement().world_max);
    world.apply(&s.body).expect("full snapshot applies");
    let me = world.get(w.player_id).expect("own player present");
    assert_eq!(w.movement.clamp(me), me);
    server.shutdown().await;
}

#[tokio::test]
async fn snapshots_arrive_every_tick_as_deltas() {
    let server = support::start_default().await;
    let (mut c, _) = RawClient::join(server.local_addr(), "test").await;
    let mut world = ClientWorld::new(server.config().movement().world_max);
    let first = c.snapshot().await;
    world.apply(&first.body).unwrap();
    let started = std::time::Instant::now();
    let mut last = first.body.tick;
    for _ in 0..30 {
        let s = c.snapshot().await;
        assert_eq!(
            s.body.tick,
            last.next(),
            "one snapshot per tick, none skipped"
        );
        assert_eq!(
            s.body.baseline,
            Some(last),
            "delta against the last snapshot"
        );
        world
            .apply(&s.body)
            .expect("delta applies and checksum matches");
        last = s.body.tick;
    }
    // 30 ticks at 30 Hz: about a second (loose bounds: shared, noisy machine).
    let elapsed = started.elapsed();
    assert!(elapsed > Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn inputs_move_the_player_exactly_as_step_predicts() {
    let server = support::start_default().await;
    let (mut c, w) = RawClient::join(server.local_addr(), "test").await;
    let mut world = ClientWorld::new(server.config().movement().world_max);
    world.apply(&c.snapshot().await.body).unwrap();
    let start = world.get(w.player_id).unwrap();
    let dirs = [
        MoveDir::new(127, 0),
        MoveDir::new(0, -127),
        MoveDir::new(90, 90),
        MoveDir::new(-128, 5),
        MoveDir::new(3, 3),
    ];
    c.send_input(InputSeq(1), &dirs[..2]).await;
    c.send_input(InputSeq(3), &dirs[2..]).await;
    let expected = dirs.iter().fold(start, |p, d| step(p, *d, &w.movement));
    loop {
        let s = c.snapshot().await;
        world.apply(&s.body).unwrap();
        if s.ack_input.0 == 5 {
            break;
        }
    }
    assert_eq!(world.get(w.player_id), Some(expected));
    // A replayed (stale) input changes nothing.
    c.send_input(InputSeq(1), &[MoveDir::new(127, 127)]).await;
    for _ in 0..3 {
        let s = c.snapshot().await;
        world.apply(&s.body).unwrap();
        assert_eq!(s.ack_input.0, 5);
    }
    assert_eq!(world.get(w.player_id), Some(expected));
    assert!(
        server
            .metrics()
            .inputs_rejected(ticksync_server::metrics::InputRejection::stale)
            >= 1
    );
    server.shutdown().await;
}

#[tokio::test]
async fn players_see_each_other_and_leavers_disappear() {
    let server = support::start_default().await;
    let (mut a, wa) = RawClient::join(server.local_addr(), "test").await;
    let (mut b, wb) = RawClient::join(server.local_addr(), "test").await;
    let mut world = ClientWorld::new(server.config().movement().world_max);
    loop {
        let s = a.snapshot().await;
        world.apply(&s.body).unwrap();
        if world.get(wb.player_id).is_some() {
            break;
        }
    }
    assert!(world.get(wa.player_id).is_some());
    b.ws.close(None).await.unwrap();
    loop {
        let s = a.snapshot().await;
        world.apply(&s.body).unwrap();
        if s.body.removed.contains(&wb.player_id) {
            break;
        }
    }
    assert_eq!(world.get(wb.player_id), None);
    server.shutdown().await;
}

#[tokio::test]
async fn healthz_and_metrics_answer_and_unknown_paths_are_404() {
    let server = support::start_default().await;
    let addr = server.local_addr();
    let (mut c, _) = RawClient::join(addr, "test").await;
    // The room publishes its player count at the end of a tick, and the Welcome
    // can arrive before that: its first snapshot cannot (the tick thread flushes
    // snapshots after the room published).
    c.snapshot().await;
    let health = http_get(addr, "/healthz").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let body = health.split("\r\n\r\n").nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["status"], "ok");
    // The plain client was seated in one room of the default kind.
    assert_eq!(
        (json["rooms"].as_u64(), json["players"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(json["stalled_tick_threads"].as_u64(), Some(0));
    let metrics = http_get(addr, "/metrics").await;
    assert!(metrics.starts_with("HTTP/1.1 200"));
    for name in [
        "ticksync_tick_duration_seconds_bucket",
        "ticksync_ticks_total",
        "ticksync_ticks_missed_total",
        "ticksync_players",
        "ticksync_connections",
        "ticksync_bytes_sent_total",
        "ticksync_messages_received_total",
        "ticksync_snapshots_skipped_total",
        "ticksync_rooms 1",
        "ticksync_rooms_created_total 1",
        "ticksync_rooms_closed_total{reason=\"idle\"} 0",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    assert!(http_get(addr, "/nope").await.starts_with("HTTP/1.1 404"));
    server.shutdown().await;
}

async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    tokio::time::timeout(WAIT, s.read_to_string(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn wrong_version_gets_an_error_naming_both_versions_then_1008() {
    let server = support::start_default().await;
    let mut c = RawClient::connect(server.local_addr()).await;
    c.send(&ClientMsg::Hello(Hello {
        version: 99,
        ..Hello::default()
    }))
    .await;
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    let error = error.expect("an Error message before the close");
    assert_eq!(error.code, ErrorCode::VersionMismatch);
    assert!(error.message.contains("99"), "{}", error.message);
    assert!(
        error.message.contains(&PROTOCOL_VERSION.to_string()),
        "{}",
        error.message
    );
    server.shutdown().await;
}

#[tokio::test]
async fn bad_first_messages_get_documented_close_codes() {
    let server = support::start_default().await;
    let addr = server.local_addr();

    let mut c = RawClient::connect(addr).await;
    c.send_input(InputSeq(1), &[MoveDir::new(1, 1)]).await;
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)));
    assert_eq!(error.unwrap().code, ErrorCode::UnexpectedMessage);

    let mut c = RawClient::connect(addr).await;
    c.send_raw(vec![0xff, 0x00, 0x13]).await;
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)));
    assert_eq!(error.unwrap().code, ErrorCode::Malformed);

    let mut c = RawClient::connect(addr).await;
    use futures_util::SinkExt;
    c.ws.send(tokio_tungstenite::tungstenite::Message::text("hi"))
        .await
        .unwrap();
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::UNSUPPORTED_DATA))
    );

    let mut c = RawClient::connect(addr).await;
    c.send_raw(vec![0u8; 4096]).await;
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::MESSAGE_TOO_BIG))
    );

    let (mut c, _) = RawClient::join(addr, "test").await;
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        ..Hello::default()
    }))
    .await;
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)));
    assert_eq!(error.unwrap().code, ErrorCode::UnexpectedMessage);

    // The server is still fine.
    let (mut c, _) = RawClient::join(addr, "test").await;
    c.snapshot().await;
    server.shutdown().await;
}

#[tokio::test]
async fn upgrade_without_the_subprotocol_is_refused() {
    let server = support::start_default().await;
    assert!(
        RawClient::connect_with_protocol(server.local_addr(), None)
            .await
            .is_err()
    );
    assert!(
        RawClient::connect_with_protocol(server.local_addr(), Some("chat"))
            .await
            .is_err()
    );
    assert!(
        RawClient::connect_with_protocol(server.local_addr(), Some("ticksync.vX"))
            .await
            .is_err()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_version_1_client_learns_the_version_mismatch() {
    let server = support::start_default().await;
    // A v1 client offers only its own subprotocol: the upgrade selects it, so
    // the client can send its Hello and read why it is refused.
    let mut c = RawClient::connect_with_protocol(server.local_addr(), Some("ticksync.v1"))
        .await
        .expect("upgrade with ticksync.v1");
    // Hello in v1's layout: tag 0, version 1, three absent options.
    c.send_raw(vec![0x00, 0x01, 0x00, 0x00, 0x00]).await;
    let (end, error) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    let error = error.expect("an Error message before the close");
    assert_eq!(error.code, ErrorCode::VersionMismatch);
    assert!(
        error.message.contains('1') && error.message.contains('2'),
        "{}",
        error.message
    );
    server.shutdown().await;
}

#[tokio::test]
async fn silent_clients_time_out() {
    let server = support::start(Config {
        handshake_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(600),
        ping_interval: Duration::from_millis(200),
        ..Config::for_tests()
    })
    .await;
    let mut c = RawClient::connect(server.local_addr()).await;
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::HANDSHAKE_TIMEOUT))
    );
    // A client that answers pings is alive; one that stops reading entirely
    // answers nothing and is closed once the idle timeout passes.
    let (mut c, _) = RawClient::join(server.local_addr(), "test").await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::IDLE_TIMEOUT))
    );
    support::eventually(|| {
        server
            .metrics()
            .disconnects(ticksync_server::metrics::DisconnectReason::idle_timeout)
            == 1
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn resume_takes_the_same_player_back() {
    let server = support::start_default().await;
    let addr = server.local_addr();
    let (mut c, w) = RawClient::join(addr, "test").await;
    let mut world = ClientWorld::new(server.config().movement().world_max);
    world.apply(&c.snapshot().await.body).unwrap();
    c.send_input(InputSeq(1), &[MoveDir::new(127, 0); 3]).await;
    loop {
        let s = c.snapshot().await;
        world.apply(&s.body).unwrap();
        if s.ack_input.0 == 3 {
            break;
        }
    }
    let pos: FixedPos = world.get(w.player_id).unwrap();
    drop(c); // abrupt: no close frame, so the player waits for a resume
    tokio::time::sleep(Duration::from_millis(100)).await;

    let mut c = RawClient::connect(addr).await;
    c.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        resume_token: Some(w.resume_token),
        ..Hello::default()
    }))
    .await;
    let w2 = c.welcome().await;
    assert!(w2.resumed);
    assert_eq!(w2.player_id, w.player_id);
    assert_eq!(w2.last_input_seq.0, 3);
    assert_ne!(w2.resume_token, w.resume_token, "tokens are single-use");
    let s = c.snapshot().await;
    assert!(s.body.baseline.is_none());
    let mut world = ClientWorld::new(server.config().movement().world_max);
    world.apply(&s.body).unwrap();
    assert_eq!(world.get(w.player_id), Some(pos));

    // The old token is spent.
    let mut c3 = RawClient::connect(addr).await;
    c3.send(&ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        resume_token: Some(w.resume_token),
        ..Hello::default()
    }))
    .await;
    let (end, error) = c3.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    assert_eq!(error.unwrap().code, ErrorCode::ResumeFailed);
    server.shutdown().await;
}

#[tokio::test]
async fn ping_gets_a_pong_with_the_timestamp() {
    let server = support::start_default().await;
    let (mut c, _) = RawClient::join(server.local_addr(), "test").await;
    c.send(&ClientMsg::Ping {
        client_time_us: 123_456_789,
    })
    .await;
    loop {
        match c.recv().await {
            Ok(ServerMsg::Pong {
                client_time_us,
                server_tick,
            }) => {
                assert_eq!(client_time_us, 123_456_789);
                assert!(server_tick.0 > 0);
                break;
            }
            Ok(_) => continue,
            Err(e) => panic!("connection ended: {e:?}"),
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_clients_with_1001_and_refuses_new_ones() {
    let server = support::start_default().await;
    let addr = server.local_addr();
    let (mut c, _) = RawClient::join(addr, "test").await;
    c.snapshot().await;
    let reader = tokio::spawn(async move { c.until_closed().await });
    server.shutdown().await;
    let (end, _) = reader.await.unwrap();
    assert_eq!(end, Ended::Closed(Some(close::GOING_AWAY)));
    assert!(
        TcpStream::connect(addr).await.is_err()
            || RawClient::connect_with_protocol(addr, Some(SUBPROTOCOL))
                .await
                .is_err()
    );
}

/// A close the client starts is answered with the client's own code (RFC 6455
/// §5.5.1; the web client decides whether to resume from the code it sees),
/// not with a close frame of the server's.
#[tokio::test]
async fn a_client_close_is_echoed_with_its_code() {
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let server = support::start_default().await;
    let (mut c, _) = RawClient::join(server.local_addr(), "test").await;
    c.snapshot().await;
    let frame = CloseFrame {
        code: CloseCode::from(4100),
        reason: "dropped on purpose".into(),
    };
    c.ws.close(Some(frame)).await.expect("send close");
    let (end, _) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(4100)));
    server.shutdown().await;
}
