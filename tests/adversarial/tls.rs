//! The same server behind TLS (`wss://`): a few hundred bots over TLS stay in
//! sync, and connections that abuse the TLS handshake (stalled, garbage, plain
//! HTTP to the TLS port, a handshake with no request after it) are cut at the
//! handshake timeout without disturbing the players.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use ticksync_bot::{BotConfig, TlsMode};
use ticksync_server::Config;
use ticksync_server::metrics::DisconnectReason;

use crate::common::attack::{Witnesses, tcp_from};
use crate::common::tls::{TestCa, wss_url};
use crate::common::{WAIT, within};
use crate::{ATTACKER, disconnects, start, stop};

/// Bots of the TLS run: a few hundred, as the issue asks, on a shared 2-core box.
const BOTS: u32 = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_few_hundred_bots_over_wss_see_no_desync() {
    let ca = TestCa::new("run");
    ca.install(&ca.issue());
    // The timeouts are generous: a debug build handshaking 300 times beside the
    // other tests of this binary on a shared 2-core machine can be starved for
    // seconds; what must hold regardless is that every bot gets in and no bot
    // ever desyncs.
    let server = start(Config {
        // Interest management and 10 Hz keep a debug build's work per second
        // (server and 300 bots in this one process) within a shared machine.
        view_radius: 150.0,
        tick_rate: 10,
        handshake_timeout: Duration::from_secs(20),
        ..ca.server_config()
    })
    .await;
    let config = BotConfig {
        url: wss_url(&server),
        ca_cert: Some(ca.ca_path()),
        bots: BOTS,
        duration: Duration::from_secs(15),
        ramp_up: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(20),
        input_rate: 10,
        reconnect: true,
        // Timeliness is the benchmarks' business (BENCHMARKS.md): on a starved
        // machine the handshakes alone can take a bot's first seconds, so the
        // verdict here is on correctness: every bot in, playing at the end, in sync.
        max_disconnected_share: 1.0,
        seed: Some(19),
        no_progress: true,
        ..BotConfig::default()
    };
    let started = std::time::Instant::now();
    let report = within(
        Duration::from_secs(50),
        "the wss:// run",
        ticksync_bot::run(config),
    )
    .await
    .expect("valid run config");
    eprintln!(
        "wss:// run of {BOTS} bots took {:?}:\n{report}",
        started.elapsed()
    );
    assert!(report.passed, "{report}");
    assert_eq!(report.tls, TlsMode::Verified);
    assert_eq!(report.bots_connected, u64::from(BOTS), "{report}");
    assert_eq!(report.desyncs, 0, "{report}");
    assert_eq!(report.bots_ended_disconnected, 0, "{report}");
    assert!(report.snapshots_received > u64::from(BOTS) * 10, "{report}");
    // The metrics were scraped over https:// from the same port.
    assert!(report.server.scraped, "{report}");
    assert!(report.server.metrics_url.starts_with("https://"));
    stop(server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshake_abuse_is_cut_and_hurts_no_player() {
    let ca = TestCa::new("abuse");
    ca.install(&ca.issue());
    let server = start(Config {
        handshake_timeout: Duration::from_millis(600),
        ..ca.server_config()
    })
    .await;
    let tls = ca.client();
    let witnesses = Witnesses::start_with(&server, 4, |o| {
        o.url = wss_url(&server);
        o.tls = Some(tls.clone());
    })
    .await;
    let mark = witnesses.mark().await;
    let addr = server.local_addr();
    let mut attacks = tokio::task::JoinSet::new();
    // 10 of each: half a ClientHello then silence; TLS-looking garbage; plain
    // HTTP to the TLS port; a full handshake followed by no request at all.
    for _ in 0..10 {
        attacks.spawn(async move {
            let mut tcp = tcp_from(ATTACKER, addr, None).await;
            tcp.write_all(&[0x16, 0x03]).await.expect("write");
            until_closed(tcp).await
        });
        attacks.spawn(async move {
            let mut tcp = tcp_from(ATTACKER, addr, None).await;
            let mut junk = vec![0x16, 0x03, 0x01, 0x40, 0x00];
            junk.extend((0..200u32).map(|i| (i * 37 % 251) as u8));
            let _ = tcp.write_all(&junk).await;
            until_closed(tcp).await
        });
        attacks.spawn(async move {
            let mut tcp = tcp_from(ATTACKER, addr, None).await;
            let _ = tcp
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            until_closed(tcp).await
        });
    }
    // Witnesses and attackers alike: 10 TLS sessions that never send a request.
    let mut idle = Vec::new();
    for _ in 0..10 {
        idle.push(ca.handshake(tcp_from(ATTACKER, addr, None).await).await);
    }
    while let Some(served) = attacks.join_next().await {
        let served = served.expect("attack task");
        assert!(
            !String::from_utf8_lossy(&served).contains("HTTP/1.1 200"),
            "nothing is served without a TLS handshake"
        );
    }
    // The 10 stalled handshakes and the 10 silent TLS sessions hit the timeout;
    // garbage and plain HTTP fail the handshake at once.
    disconnects(&server, DisconnectReason::handshake_timeout, 20).await;
    for mut tls in idle {
        let mut buf = [0u8; 16];
        let n = within(WAIT, "the idle TLS session to be cut", tls.read(&mut buf)).await;
        assert!(matches!(n, Ok(0) | Err(_)), "cut: {n:?}");
    }
    witnesses.assert_healthy_since(&mark).await;
    let (status, body) = ca.https_get(addr, "/healthz").await;
    assert_eq!(status, 200, "healthz: {body}");
    witnesses.finish().await;
    stop(server).await;
}

/// Reads until the server closes; returns what it sent.
async fn until_closed(mut tcp: TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let _ = within(WAIT, "the server to close", tcp.read_to_end(&mut got)).await;
    got
}
