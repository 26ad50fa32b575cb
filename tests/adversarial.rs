//! Adversarial end-to-end tests: each one attacks a live server on 127.0.0.1 the
//! way the public internet would (garbage, floods, slowloris, connection storms,
//! clients that never read, forged join tokens, reconnect storms, shutdown under
//! load) and asserts the outcome documented in docs/PROTOCOL.md (section 12) and
//! docs/OPERATIONS.md, that the server stays up, and that well-behaved bots
//! playing beside the attackers see 0 desyncs and keep their snapshot rate.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use ticksync_bot::Backoff;
use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ErrorCode, Hello, InputSeq, MoveDir, PROTOCOL_VERSION};
use ticksync_server::auth::{self, AuthSecret};
use ticksync_server::metrics::{DisconnectReason, InputRejection, Refusal};
use ticksync_server::{Config, Server};

use common::attack::{self, Witnesses};
use common::raw::{Ended, RawClient, input_msg};
use common::{WAIT, eventually, within};

const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

async fn assert_up(server: &Server) {
    let (status, body) = attack::http_get(server.local_addr(), "/healthz").await;
    assert_eq!(status, 200, "healthz: {body}");
}

async fn stop(server: Server) {
    within(WAIT, "the server to shut down", server.shutdown()).await;
}

/// Waits until a disconnect counter reaches `n`.
async fn disconnects(server: &Server, reason: DisconnectReason, n: u64) {
    eventually(WAIT, &format!("{n} disconnects {reason:?}"), || async {
        server.metrics().disconnects(reason) >= n
    })
    .await;
}

fn hello(name: Option<&str>, token: Option<String>) -> ClientMsg {
    ClientMsg::Hello(Hello {
        version: PROTOCOL_VERSION,
        name: name.map(Into::into),
        auth_token: token,
        resume_token: None,
    })
}

#[tokio::test]
async fn garbage_gets_the_documented_error_and_close_code() {
    let server = start(Config::for_tests()).await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    // Oversize binary message -> 1009.
    let mut c = RawClient::connect(addr).await;
    let _ = c.try_send_raw(vec![0u8; 4096]).await;
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::MESSAGE_TOO_BIG))
    );
    // Text frame -> Error Malformed, 1003.
    let mut c = RawClient::connect(addr).await;
    c.send_text("hello?").await;
    let (end, err) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::UNSUPPORTED_DATA)));
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::Malformed));
    // Undecodable bytes -> Error Malformed, 1002.
    for junk in [vec![0xff, 0xff, 0xff], vec![1], vec![9, 9, 9, 9], vec![]] {
        let mut c = RawClient::connect(addr).await;
        c.send_raw(junk.clone()).await;
        let (end, err) = c.until_closed().await;
        assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)), "{junk:?}");
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::Malformed), "{junk:?}");
    }
    // Input before Hello, and a second Hello -> Error UnexpectedMessage, 1002.
    let mut c = RawClient::connect(addr).await;
    c.send_input(InputSeq(1), &[MoveDir::new(1, 0)]).await;
    let (end, err) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)));
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::UnexpectedMessage));
    let (mut c, _) = RawClient::join(addr, "twice").await;
    c.send(&hello(None, None)).await;
    let (end, err) = c.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::PROTOCOL_ERROR)));
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::UnexpectedMessage));
    // Garbage after a good join -> 1002 as well.
    let (mut c, _) = RawClient::join(addr, "junk").await;
    c.send_raw(vec![7, 7, 7]).await;
    assert_eq!(
        c.until_closed().await.0,
        Ended::Closed(Some(close::PROTOCOL_ERROR))
    );
    // Not HTTP at all -> 400, no upgrade.
    let (status, _) = attack::http_get(addr, "\u{1}\u{2} nonsense").await;
    assert_eq!(status, 400);

    let m = server.metrics();
    assert_eq!(m.disconnects(DisconnectReason::too_big), 1);
    assert_eq!(m.disconnects(DisconnectReason::text_frame), 1);
    disconnects(&server, DisconnectReason::protocol_error, 7).await;
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn input_flood_is_dropped_and_counted_then_closed_with_1008() {
    let server = start(Config {
        input_rate_limit: 40.0,
        input_burst: 20,
        flood_drops: 60,
        flood_window: Duration::from_secs(2),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    // A short burst over the bucket: the excess is dropped, the client stays.
    let (mut burst, _) = RawClient::join(addr, "bursty").await;
    for seq in 1..=30 {
        burst
            .send(&input_msg(InputSeq(seq), &[MoveDir::new(0, 1)]))
            .await;
    }
    eventually(WAIT, "dropped inputs counted", || async {
        server
            .metrics()
            .inputs_rejected(InputRejection::rate_limited)
            >= 5
    })
    .await;

    // A sustained flood: dropped, then Error RateLimited and close 1008.
    let (mut flood, _) = RawClient::join(addr, "flooder").await;
    let sender = tokio::spawn(async move {
        for seq in 1..=5_000u32 {
            let msg = input_msg(InputSeq(seq), &[MoveDir::new(1, 0); 4]);
            if flood
                .try_send_raw(ticksync_protocol::codec::encode_client(&msg))
                .await
                .is_err()
            {
                break;
            }
        }
        flood
    });
    let mut flood = within(WAIT, "the flood to end", sender)
        .await
        .expect("flood task");
    let (end, err) = flood.until_closed().await;
    assert_eq!(end, Ended::Closed(Some(close::POLICY_VIOLATION)));
    assert_eq!(err.map(|e| e.code), Some(ErrorCode::RateLimited));
    disconnects(&server, DisconnectReason::rate_limited, 1).await;

    // The bursty client was never closed: it still gets snapshots.
    burst.snapshot().await;
    let m = server.metrics();
    assert!(m.messages_rate_limited.get() >= 60);
    assert!(m.inputs_rejected(InputRejection::rate_limited) >= 60 * 4);
    assert_eq!(m.disconnects(DisconnectReason::rate_limited), 1);
    drop((burst, flood));
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn connection_limits_refuse_before_the_upgrade() {
    let server = start(Config {
        max_connections_per_ip: 3,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    // Witnesses connect from 127.0.0.1, the attacker from 127.0.0.2.
    let w = Witnesses::start(&server, 2).await;
    let mark = w.mark().await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let s = attack::tcp_from(ATTACKER, addr, None).await;
        let mut ws = attack::upgrade(s, addr).await.expect("within the limit");
        attack::hello(&mut ws).await;
        held.push(ws);
    }
    for _ in 0..5 {
        let s = attack::tcp_from(ATTACKER, addr, None).await;
        assert_eq!(attack::upgrade(s, addr).await.err(), Some(429));
    }
    assert_eq!(
        server.metrics().connections_refused(Refusal::per_ip_limit),
        5
    );
    // Other addresses are not affected, and a freed slot is usable again.
    let extra = Witnesses::start(&server, 1).await;
    drop(held.pop());
    eventually(WAIT, "a slot to free up", || async {
        let s = attack::tcp_from(ATTACKER, addr, None).await;
        attack::upgrade(s, addr).await.is_ok()
    })
    .await;
    drop(held);
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    extra.finish().await;
    w.finish().await;
    stop(server).await;

    // The total limit: 503 before the upgrade.
    let server = start(Config {
        max_connections: 2,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let (a, _) = RawClient::join(addr, "a").await;
    let (b, _) = RawClient::join(addr, "b").await;
    let s = attack::tcp_from(ATTACKER, addr, None).await;
    assert_eq!(attack::upgrade(s, addr).await.err(), Some(503));
    assert_eq!(
        server.metrics().connections_refused(Refusal::server_full),
        1
    );
    drop((a, b));
    stop(server).await;
}

#[tokio::test]
async fn slowloris_silent_and_idle_connections_are_cut() {
    let server = start(Config {
        handshake_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(1500),
        ping_interval: Duration::from_millis(300),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        tasks.spawn(attack::slowloris(addr, Duration::from_millis(100)));
    }
    // Upgraded but no Hello: 4000.
    let mut no_hello = RawClient::connect(addr).await;
    // Connected and silent at the TCP level, not even a request line.
    let mut silent = Vec::new();
    for _ in 0..10 {
        silent.push(tokio::net::TcpStream::connect(addr).await.expect("connect"));
    }
    // Joined, then neither sends nor reads: 4001 after the idle timeout.
    let (mut idle, _) = RawClient::join(addr, "idle").await;

    while let Some(held) = tasks.join_next().await {
        let held = held.expect("slowloris task");
        assert!(held < Duration::from_secs(5), "held for {held:?}");
    }
    assert_eq!(
        no_hello.until_closed().await.0,
        Ended::Closed(Some(close::HANDSHAKE_TIMEOUT))
    );
    disconnects(&server, DisconnectReason::handshake_timeout, 31).await;
    disconnects(&server, DisconnectReason::idle_timeout, 1).await;
    // The idle client's close frame sits behind unanswered pings it never read:
    // reading them now makes it answer into a closed socket, so it may see the
    // reset before the 4001 frame. The server's metric above names the reason.
    let (end, _) = idle.until_closed().await;
    assert!(
        matches!(
            end,
            Ended::Closed(Some(close::IDLE_TIMEOUT)) | Ended::Dropped
        ),
        "{end:?}"
    );
    // Nothing is left behind: only the witnesses hold connections.
    eventually(WAIT, "only the witnesses connected", || async {
        server.metrics().connections.get() == 3
    })
    .await;
    drop(silent);
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_cut_off_without_slowing_anyone() {
    let server = start(Config {
        stall_timeout: Duration::from_secs(1),
        send_buffer: 16 * 1024,
        resume_grace: Duration::from_secs(60),
        max_connections_per_ip: 10_000,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    // Parked players (dropped connections in their resume grace) make every full
    // snapshot about a kilobyte, so the staller's socket buffers fill quickly.
    let mut parking = tokio::task::JoinSet::new();
    for i in 0..150 {
        parking.spawn(async move { drop(RawClient::join(addr, &format!("parked-{i}")).await) });
    }
    while let Some(r) = parking.join_next().await {
        r.expect("a parked player joined");
    }
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;
    let ticks_before = server.metrics().ticks.get();
    let started = std::time::Instant::now();

    let s = attack::tcp_from(ATTACKER, addr, Some(2048)).await;
    let mut ws = attack::upgrade(s, addr).await.expect("upgrade");
    attack::hello(&mut ws).await;
    // Never read; ask for a full snapshot 20 times a second (within the rate limit).
    let staller = tokio::spawn(async move {
        use futures_util::SinkExt;
        let resync = ticksync_protocol::codec::encode_client(&ClientMsg::Resync);
        loop {
            let frame = tokio_tungstenite::tungstenite::Message::Binary(resync.clone().into());
            match tokio::time::timeout(Duration::from_secs(1), ws.send(frame)).await {
                Ok(Ok(())) => tokio::time::sleep(Duration::from_millis(50)).await,
                _ => return ws,
            }
        }
    });
    disconnects(&server, DisconnectReason::slow_consumer, 1).await;
    let elapsed = started.elapsed().as_secs_f64();
    staller.abort();
    let m = server.metrics();
    assert!(
        m.snapshots_skipped.get() >= 25,
        "skipped ticks were counted"
    );
    // The tick kept its schedule while the staller's queue was full.
    let ticks = (m.ticks.get() - ticks_before) as f64;
    assert!(
        ticks >= elapsed * 30.0 * 0.7,
        "{ticks} ticks in {elapsed:.1} s"
    );
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn joining_needs_a_valid_token_for_the_claimed_identity() {
    let secret: AuthSecret = "adversarial-test-secret-0123".parse().unwrap();
    let server = start(Config {
        auth_secret: Some(secret.clone()),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let exp = auth::unix_now() + 3600;
    let w = Witnesses::start_with(&server, 3, |o| {
        let name = o.name.clone().unwrap();
        o.auth_token = Some(auth::mint(&secret, &name, exp).unwrap());
    })
    .await;
    let mark = w.mark().await;

    let other: AuthSecret = "some-other-secret-0123456".parse().unwrap();
    let ada = auth::mint(&secret, "ada", exp).unwrap();
    let attempts = [
        (Some("ada"), None),
        (Some("ada"), Some(auth::mint(&other, "ada", exp).unwrap())),
        (Some("ada"), Some(auth::mint(&secret, "ada", 1).unwrap())),
        (Some("eve"), Some(ada.clone())),
        (None, Some(format!("{ada}x"))),
        (None, Some("not.a-token".into())),
    ];
    for (name, token) in attempts.iter().cloned() {
        let mut c = RawClient::connect(addr).await;
        c.send(&hello(name, token.clone())).await;
        let (end, err) = c.until_closed().await;
        assert_eq!(
            end,
            Ended::Closed(Some(close::POLICY_VIOLATION)),
            "{name:?} {token:?}"
        );
        assert_eq!(err.map(|e| e.code), Some(ErrorCode::AuthFailed));
    }
    disconnects(
        &server,
        DisconnectReason::auth_failed,
        attempts.len() as u64,
    )
    .await;
    // The real ada gets in, with or without repeating her name.
    let mut c = RawClient::connect(addr).await;
    c.send(&hello(None, Some(ada))).await;
    c.welcome().await;
    drop(c);
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}

#[tokio::test]
async fn a_reconnect_storm_loses_no_player_and_no_state() {
    let server = std::sync::Arc::new(start(Config::for_tests()).await);
    let mut bots = Vec::new();
    for n in 0..20 {
        let mut o = common::bot_options(&server, n);
        o.reconnect = Some(Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        });
        bots.push(
            within(WAIT, "a bot", ticksync_bot::BotHandle::connect(o))
                .await
                .expect("welcomed"),
        );
    }
    let ids = common::player_ids(&bots);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = common::quiesce_and_compare(&server, &bots).await;

    // Everyone drops at once (no close frame) and resumes.
    for b in &bots {
        b.drop_connection();
    }
    eventually(WAIT, "every bot to resume", || async {
        server.metrics().sessions_resumed.get() >= 20
    })
    .await;
    common::wait_all(&bots, "reconnected", |v| v.connected).await;
    let after = common::quiesce_and_compare(&server, &bots).await;
    assert_eq!(after.world, before.world, "same players at the same places");
    assert_eq!(common::player_ids(&bots), ids);
    for v in &after.views {
        assert_eq!(v.counters.desyncs, 0);
    }

    // Input sequences continue: play on, then everything still agrees.
    common::unquiesce(&bots);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let played = common::quiesce_and_compare(&server, &bots).await;
    assert_ne!(played.world, before.world, "the bots moved after resuming");
    assert_eq!(played.world.len(), 20);
    for (i, o) in common::close_all(bots).await.iter().enumerate() {
        common::assert_clean_end(i, o);
    }
    common::shutdown(server).await;
}

#[tokio::test]
async fn drain_answers_503_then_closes_everyone_with_1001() {
    let server = start(Config {
        drain_timeout: Duration::from_secs(3),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 3).await;
    let (mut reader, _) = RawClient::join(addr, "reader").await;
    reader.snapshot().await;
    // A client that never answers the close keeps the drain busy for a moment.
    let (_mute, _) = RawClient::join(addr, "mute").await;
    let reader = tokio::spawn(async move { reader.until_closed().await });
    let started = std::time::Instant::now();
    let shutdown = tokio::spawn(server.shutdown());
    eventually(WAIT, "healthz to say draining", || async {
        let (status, body) = attack::http_get(addr, "/healthz").await;
        status == 503 && body.contains("draining")
    })
    .await;
    let s = attack::tcp_from(ATTACKER, addr, None).await;
    assert_eq!(attack::upgrade(s, addr).await.err(), Some(503));
    let (end, _) = within(WAIT, "the reader", reader).await.unwrap();
    assert_eq!(end, Ended::Closed(Some(close::GOING_AWAY)));
    within(WAIT, "shutdown", shutdown).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "within the drain timeout"
    );
    for (i, o) in common::close_all(w.bots).await.iter().enumerate() {
        assert_eq!(o.counters.desyncs, 0, "witness #{i}");
    }
}
