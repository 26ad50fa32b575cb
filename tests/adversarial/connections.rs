//! Connection limits, slowloris and the timeouts, and a client that never reads.

use std::time::Duration;

use ticksync_protocol::messages::close;
use ticksync_protocol::{ClientMsg, ClientWorld};
use ticksync_server::Config;
use ticksync_server::metrics::{DisconnectReason, Refusal};

use super::common::attack::{self, Witnesses};
use super::common::raw::{Ended, RawClient};
use super::common::{WAIT, eventually};
use super::{ATTACKER, assert_up, disconnects, start, stop};

/// Ticks of views a room keeps to delta against (`HISTORY_TICKS` in
/// server/src/room/mod.rs): a client holding an older tick gets a full snapshot.
const HISTORY_TICKS: u32 = 32;

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
    // 127.0.0.1 (the machine itself: local load tests, a local TLS proxy) is
    // exempt by default: beyond the limit of 3 its upgrades still succeed.
    let mut local = Vec::new();
    for _ in 0..4 {
        let s = attack::tcp_from("127.0.0.1".parse().unwrap(), addr, None).await;
        local.push(attack::upgrade(s, addr).await.expect("127.0.0.1 is exempt"));
    }
    drop(local);
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
    attack::park_players(addr, 150).await;
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
async fn a_client_that_stops_reading_briefly_gets_a_delta_spanning_the_skipped_ticks() {
    let server = start(Config {
        stall_timeout: Duration::from_secs(5),
        send_buffer: 4 * 1024,
        max_connections_per_ip: 10_000,
        ..Config::for_tests()
    })
    .await;
    let addr = server.local_addr();
    // Movers make each tick's delta a few hundred bytes.
    let movers = attack::spawn_movers(addr, 80).await;
    let w = Witnesses::start(&server, 3).await;
    let mark = w.mark().await;

    let s = attack::tcp_from(ATTACKER, addr, Some(2048)).await;
    let mut c = RawClient {
        ws: attack::upgrade(s, addr).await.expect("upgrade"),
    };
    c.send(&super::hello(Some("slow"), None)).await;
    let welcome = c.welcome().await;
    let mut world = ClientWorld::new(welcome.movement.world_max);
    world
        .apply(&c.snapshot().await.body)
        .expect("first snapshot");
    // Stop reading until the server has had to skip ticks for us (well within
    // the stall timeout), then read everything: each snapshot must apply to
    // exactly what we hold (checksums verified), and the one after the skipped
    // ticks is a delta spanning them. A full snapshot is right only when what we
    // hold is older than the server's history of ticks (a loaded machine can
    // delay this task that long): then try again.
    let mut spanned = false;
    for _attempt in 0..5 {
        let skipped = server.metrics().snapshots_skipped.get();
        eventually(
            WAIT,
            "the server to skip ticks for the slow reader",
            || async { server.metrics().snapshots_skipped.get() >= skipped + 15 },
        )
        .await;
        for read in 0.. {
            assert!(read < 2_000, "no delta spanned the skipped ticks");
            let held = world.tick().expect("a tick is held");
            let snap = c.snapshot().await;
            if let Err(e) = world.apply(&snap.body) {
                panic!("snapshot of tick {} does not apply: {e}", snap.body.tick.0);
            }
            match snap.body.baseline {
                Some(b) if snap.body.tick.0 - b.0 > 1 => {
                    spanned = true;
                    break;
                }
                Some(_) => {}
                None => {
                    assert!(
                        snap.body.tick.0 - held.0 >= HISTORY_TICKS,
                        "a full snapshot at tick {} while tick {} was held",
                        snap.body.tick.0,
                        held.0
                    );
                    break;
                }
            }
        }
        if spanned {
            break;
        }
    }
    assert!(spanned, "no delta spanned the skipped ticks in 5 attempts");
    for _ in 0..30 {
        let snap = c.snapshot().await;
        world.apply(&snap.body).expect("deltas keep applying");
    }
    assert!(server.metrics().snapshots_skipped.get() > 0);
    assert_eq!(
        server
            .metrics()
            .disconnects(DisconnectReason::slow_consumer),
        0
    );
    drop((c, movers));
    assert_up(&server).await;
    w.assert_healthy_since(&mark).await;
    w.finish().await;
    stop(server).await;
}
