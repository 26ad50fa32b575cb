//! `--agones` against a stand-in of the Agones SDK server
//! (`ticksync_testkit::agones`; real Agones needs Kubernetes, see
//! docs/SCALING.md for what this does not prove): Ready after the listener,
//! Health at its interval, labels, the counters following joins and leaves,
//! an allocation seen and exposed, deletion draining the server, Shutdown
//! after the drain, a lost or hung SDK server survived without touching the
//! tick or the players, Health withheld while a tick thread is stalled,
//! nothing at all without `--agones`; and the binary: Shutdown after the
//! SIGTERM drain, exiting by itself when its GameServer is deleted.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::bins::{ServerProcess, built_binaries};
use common::raw::{Ended, RawPlayer};
use common::{WAIT, eventually, within};
use ticksync_server::agones::{Agones, AgonesArgs, Fill, Load, PLAYERS, Probe, ROOMS};
use ticksync_server::metrics::{AgonesMetrics, SdkCall};
use ticksync_server::{Config, Server};
use ticksync_testkit::agones::{Counter, StandIn};

/// Counters as a Fleet declares them (deploy/agones/fleet.yaml).
const DECLARED: &[(&str, i64)] = &[(ROOMS, 1000), (PLAYERS, 1000)];

fn agones_config(sdk_port: u16) -> Config {
    let mut c = Config::for_tests();
    c.agones.enabled = true;
    c.agones.sdk_port = Some(sdk_port);
    c.agones.health_interval = Duration::from_millis(100);
    c.agones.counter_interval = Duration::from_millis(50);
    c.agones.timeout = Duration::from_millis(500);
    // Rooms close soon after their last player: the rooms counter moves.
    c.room_idle_timeout = Duration::from_millis(300);
    c
}

/// Starts a server on a port chosen beforehand, so the stand-in can check
/// that it already listens when Ready arrives (a port taken meanwhile by
/// someone else is simply tried again).
async fn start_on_known_port(stand_in: &StandIn, mut config: Config) -> Server {
    for _ in 0..20 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        stand_in.check_listening_at_ready(addr);
        config.bind = addr;
        if let Ok(server) = Server::start(config.clone()).await {
            return server;
        }
    }
    panic!("no free port to start the server on");
}

fn health_pings(s: &StandIn) -> Vec<Instant> {
    s.calls_to("/health").iter().map(|c| c.at).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_after_listen_health_counters_allocation_then_shutdown_after_the_drain() {
    let stand_in = StandIn::start(DECLARED).await;
    let server = start_on_known_port(&stand_in, agones_config(stand_in.port())).await;
    let max_players = server.config().max_players as i64;
    let max_rooms = server.config().max_rooms as i64;

    stand_in.wait_for("Ready", |s| s.state() == "Ready").await;
    assert_eq!(
        stand_in.listening_at_ready(),
        vec![true],
        "Ready before listen"
    );
    let version = env!("CARGO_PKG_VERSION");
    stand_in
        .wait_for("the version label and annotation", |s| {
            s.label("agones.dev/sdk-ticksync-version").as_deref() == Some(version)
                && s.annotation("agones.dev/sdk-ticksync-version").as_deref() == Some(version)
        })
        .await;
    assert_eq!(
        stand_in
            .label("agones.dev/sdk-ticksync-protocol")
            .as_deref(),
        Some(ticksync_protocol::PROTOCOL_VERSION.to_string().as_str())
    );

    // Health at the interval (100 ms): over a second and a half, neither
    // silence nor a flood.
    let before = health_pings(&stand_in).len();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let pings = health_pings(&stand_in).len() - before;
    assert!(
        (7..=20).contains(&pings),
        "{pings} Health pings in 1.5 s at 100 ms"
    );

    // The counters follow joins and leaves.
    let players_are = |n: i64| {
        move |s: &StandIn| {
            s.counter(PLAYERS)
                == Some(Counter {
                    count: n,
                    capacity: max_players,
                })
        }
    };
    let rooms_are = |n: i64| {
        move |s: &StandIn| {
            s.counter(ROOMS)
                == Some(Counter {
                    count: n,
                    capacity: max_rooms,
                })
        }
    };
    stand_in.wait_for("players = 0", players_are(0)).await;
    stand_in.wait_for("rooms = 0", rooms_are(0)).await;
    let addr = server.local_addr();
    let mut players = Vec::new();
    for i in 0..3 {
        players.push(RawPlayer::join(addr, &format!("p{i}")).await);
    }
    // A plain client is seated in the default room, opened on demand.
    stand_in.wait_for("players = 3", players_are(3)).await;
    stand_in.wait_for("rooms = 1", rooms_are(1)).await;
    let mut leaving = players.pop().expect("a player");
    assert_eq!(
        leaving.client.close_normal().await,
        Ended::Closed(Some(1000))
    );
    stand_in.wait_for("players = 2", players_are(2)).await;
    // Absolute values only: a retried call cannot count twice.
    for call in stand_in.calls_to(&format!("/v1beta1/counters/{PLAYERS}")) {
        assert_eq!(call.method, "PATCH");
        assert!(call.body.get("countDiff").is_none(), "{}", call.body);
    }

    // An allocation is seen and exposed.
    stand_in.allocate();
    let agones = server.agones().expect("--agones");
    within(
        WAIT,
        "the allocation",
        agones.wait_for(|gs| gs.status.state.name() == "Allocated"),
    )
    .await;
    assert_eq!(server.metrics().agones.allocated.get(), 1);

    // Shutdown comes after the drain: every player has its close (1001) first.
    let closes = tokio::spawn(async move {
        let mut at = Vec::new();
        for mut p in players {
            let (ended, _) = p.client.until_closed().await;
            assert_eq!(ended, Ended::Closed(Some(1001)));
            at.push(Instant::now());
        }
        at
    });
    within(WAIT, "the shutdown", server.shutdown()).await;
    let closed_at = closes.await.expect("players closed");
    let shutdown = stand_in.calls_to("/shutdown");
    assert_eq!(shutdown.len(), 1, "one Shutdown");
    assert!(
        closed_at.iter().all(|&t| t <= shutdown[0].at),
        "Shutdown before the drain"
    );
    assert_eq!(stand_in.state(), "Shutdown");
    // Nothing after Shutdown: the health pings stopped with it.
    assert!(health_pings(&stand_in).iter().all(|&t| t < shutdown[0].at));
    let calls = stand_in.calls();
    assert_eq!(calls.last().map(|c| c.path.as_str()), Some("/shutdown"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_or_hung_sdk_server_is_survived_and_caught_up_with() {
    let mut stand_in = StandIn::start(DECLARED).await;
    stand_in.stop().await;
    let server = Server::start(agones_config(stand_in.port()))
        .await
        .expect("starts without its SDK server");
    let m = server.metrics().agones.clone();
    let addr = server.local_addr();

    // The SDK server is down: every call fails, is counted and retried; the
    // players do not notice.
    let mut a = RawPlayer::join(addr, "a").await;
    eventually(WAIT, "failed Ready and Health calls", || {
        let m = m.clone();
        async move { m.failures(SdkCall::ready) >= 2 && m.failures(SdkCall::health) >= 2 }
    })
    .await;
    assert_eq!(m.sdk_up.get(), 0);
    let tick = a.next_snapshot().await.tick;
    assert!(a.next_snapshot().await.tick > tick, "the tick goes on");

    // It comes back: Ready, the counters as they are now, the watch again.
    stand_in.restart().await;
    stand_in
        .wait_for("Ready after the restart", |s| s.state() == "Ready")
        .await;
    stand_in
        .wait_for("players = 1", |s| {
            s.counter(PLAYERS).map(|c| c.count) == Some(1)
        })
        .await;
    stand_in
        .wait_for("the watch reopened", |s| {
            !s.calls_to("/watch/gameserver").is_empty()
        })
        .await;
    eventually(WAIT, "sdk_up", || {
        let m = m.clone();
        async move { m.sdk_up.get() == 1 }
    })
    .await;

    // It hangs (accepts, never answers): calls time out, the game goes on,
    // a new player joins as fast as ever.
    stand_in.hang(true);
    let timed_out = m.failures(SdkCall::health);
    eventually(WAIT, "Health calls timing out", || {
        let m = m.clone();
        async move { m.failures(SdkCall::health) >= timed_out + 2 }
    })
    .await;
    let joined = Instant::now();
    let mut b = within(
        Duration::from_secs(5),
        "a join while the SDK hangs",
        RawPlayer::join(addr, "b"),
    )
    .await;
    let join_time = joined.elapsed();
    b.next_snapshot().await;
    a.next_snapshot().await;
    stand_in.hang(false);
    stand_in
        .wait_for("players = 2 after the hang", |s| {
            s.counter(PLAYERS).map(|c| c.count) == Some(2)
        })
        .await;
    assert!(
        join_time < Duration::from_secs(2),
        "join took {join_time:?}"
    );

    // Everyone leaves: players 0, and the room closes after its idle timeout.
    for mut p in [a, b] {
        p.client.close_normal().await;
    }
    stand_in
        .wait_for("players = 0, rooms = 0", |s| {
            s.counter(PLAYERS).map(|c| c.count) == Some(0)
                && s.counter(ROOMS).map(|c| c.count) == Some(0)
        })
        .await;

    within(WAIT, "the shutdown", server.shutdown()).await;
    assert_eq!(stand_in.calls_to("/shutdown").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_game_server_drains_the_server() {
    let stand_in = StandIn::start(DECLARED).await;
    let server = Server::start(agones_config(stand_in.port()))
        .await
        .expect("starts");
    stand_in.wait_for("Ready", |s| s.state() == "Ready").await;
    let mut p = RawPlayer::join(server.local_addr(), "p").await;
    stand_in.delete();
    within(WAIT, "the drain request", server.stop_requested()).await;
    // What the binary does then (tests/agones.rs runs it, below).
    let closed = tokio::spawn(async move { p.client.until_closed().await.0 });
    within(WAIT, "the shutdown", server.shutdown()).await;
    assert_eq!(closed.await.expect("closed"), Ended::Closed(Some(1001)));
    assert_eq!(stand_in.calls_to("/shutdown").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_agones_nothing_calls_the_sdk_server() {
    let stand_in = StandIn::start(DECLARED).await;
    let mut config = agones_config(stand_in.port());
    config.agones.enabled = false;
    let server = Server::start(config).await.expect("starts");
    let mut p = RawPlayer::join(server.local_addr(), "p").await;
    p.next_snapshot().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(server.agones().is_none());
    within(WAIT, "the shutdown", server.shutdown()).await;
    assert_eq!(stand_in.calls().len(), 0, "{:?}", stand_in.calls());
}

/// A server whose tick threads the test stalls at will.
struct FakeProbe {
    alive: AtomicBool,
}

impl Probe for FakeProbe {
    fn tick_threads_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    fn load(&self) -> Load {
        let fill = Fill {
            count: 0,
            capacity: 10,
        };
        Load {
            rooms: fill,
            players: fill,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_pings_stop_while_a_tick_thread_is_stalled() {
    let stand_in = StandIn::start(DECLARED).await;
    let args = AgonesArgs {
        enabled: true,
        sdk_port: Some(stand_in.port()),
        health_interval: Duration::from_millis(50),
        timeout: Duration::from_millis(500),
        counter_interval: Duration::from_millis(50),
    };
    let probe = Arc::new(FakeProbe {
        alive: AtomicBool::new(true),
    });
    let metrics = AgonesMetrics::default();
    let agones = Agones::start(&args, probe.clone(), metrics.clone(), Box::new(|| {}));
    stand_in
        .wait_for("Health pings", |s| health_pings(s).len() >= 3)
        .await;

    probe.alive.store(false, Ordering::SeqCst);
    // A ping already under way may still land.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pings = health_pings(&stand_in).len();
    let withheld = metrics.health_withheld.get();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(health_pings(&stand_in).len(), pings, "pings while stalled");
    assert!(metrics.health_withheld.get() >= withheld + 3);

    probe.alive.store(true, Ordering::SeqCst);
    stand_in
        .wait_for("Health pings again", |s| health_pings(s).len() > pings)
        .await;
    within(WAIT, "Shutdown", agones.shutdown()).await;
    assert_eq!(stand_in.state(), "Shutdown");
}

#[test]
fn the_binary_sends_shutdown_after_the_sigterm_drain() {
    let (server_bin, _) = built_binaries();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stand_in = rt.block_on(StandIn::start(DECLARED));
    let port = stand_in.port().to_string();
    // As in a pod: Agones says where its SDK server is.
    let mut server = ServerProcess::start_with_env(
        &server_bin,
        &["--agones", "--agones-health-interval", "100ms"],
        &[("AGONES_SDK_HTTP_PORT", &port)],
        WAIT,
    );
    rt.block_on(stand_in.wait_for("Ready and Health", |s| {
        s.state() == "Ready" && !s.calls_to("/health").is_empty()
    }));
    let status = server.terminate(WAIT);
    assert_eq!(status.code(), Some(0), "exit after SIGTERM");
    assert_eq!(
        stand_in.calls_to("/shutdown").len(),
        1,
        "{}",
        server.output()
    );
    assert!(server.output().contains("Agones: Shutdown sent"));
}

#[test]
fn the_binary_drains_and_exits_when_its_game_server_is_deleted() {
    let (server_bin, _) = built_binaries();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let stand_in = rt.block_on(StandIn::start(DECLARED));
    let port = stand_in.port().to_string();
    let mut server =
        ServerProcess::start(&server_bin, &["--agones", "--agones-sdk-port", &port], WAIT);
    rt.block_on(stand_in.wait_for("Ready", |s| s.state() == "Ready"));
    stand_in.delete();
    let status = server.wait(WAIT);
    assert_eq!(status.code(), Some(0), "exit after the deletion");
    assert_eq!(stand_in.calls_to("/shutdown").len(), 1);
    assert!(server.output().contains("drain requested by Agones"));
}
