//! Join tokens, resume tokens, a reconnect storm, and the graceful drain.

use std::time::Duration;

use ticksync_bot::Backoff;
use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ErrorCode, ErrorMsg, Hello, PROTOCOL_VERSION, ResumeToken};
use ticksync_server::Config;
use ticksync_server::auth::{self, AuthSecret};
use ticksync_server::metrics::DisconnectReason;

use super::common::attack::{self, Witnesses};
use super::common::raw::{Ended, RawClient};
use super::common::{self, WAIT, eventually, within};
use super::{ATTACKER, assert_up, disconnects, hello, start, stop};

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
        drain_timeout: Duration::from_secs(10),
        handshake_timeout: Duration::from_secs(10),
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
    // A silent connection opened during the drain does not hold it up.
    let _silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (end, _) = within(WAIT, "the reader", reader).await.unwrap();
    assert_eq!(end, Ended::Closed(Some(close::GOING_AWAY)));
    within(WAIT, "shutdown", shutdown).await.unwrap();
    // The mute client costs about a second (the wait for its close reply); a
    // drain that waited for the silent connection would take 10 s.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "drained in {:?}",
        started.elapsed()
    );
    for (i, o) in common::close_all(w.bots).await.iter().enumerate() {
        assert_eq!(o.counters.desyncs, 0, "witness #{i}");
    }
}

#[tokio::test]
async fn guessed_and_expired_resume_tokens_are_refused() {
    let server = start(Config {
        resume_grace: Duration::from_millis(300),
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    let w = Witnesses::start(&server, 2).await;
    let mark = w.mark().await;
    let resume = |token: [u8; 16]| {
        ClientMsg::Hello(Hello {
            version: PROTOCOL_VERSION,
            resume_token: Some(ResumeToken(token)),
            ..Hello::default()
        })
    };
    let refused = |end: (Ended, Option<ErrorMsg>)| {
        assert_eq!(end.0, Ended::Closed(Some(close::POLICY_VIOLATION)));
        assert_eq!(end.1.map(|e| e.code), Some(ErrorCode::ResumeFailed));
    };
    // Guessing: tokens are 128 random bits.
    for guess in [[0u8; 16], [0xff; 16], *b"0123456789abcdef"] {
        let mut c = RawClient::connect(addr).await;
        c.send(&resume(guess)).await;
        refused(c.until_closed().await);
    }
    // Expired: the player's resume grace ran out before it came back.
    let (c, welcome) = RawClient::join(addr, "gone").await;
    drop(c);
    eventually(WAIT, "the dropped player to be removed", || async {
        server
            .world()
            .await
            .is_some_and(|(_, e)| e.iter().all(|e| e.id != welcome.player_id))
    })
    .await;
    let mut c = RawClient::connect(addr).await;
    c.send(&resume(welcome.resume_token.0)).await;
    refused(c.until_closed().await);
    disconnects(&server, DisconnectReason::resume_failed, 4).await;
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}
