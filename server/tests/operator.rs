//! What an operator sees of a live server: each player's round-trip time as
//! the server measures it with WebSocket pings.

mod support;

use std::time::Duration;

use ticksync_server::Config;
use ticksync_testkit::WAIT;
use ticksync_testkit::raw::RawClient;

/// A config whose pings (and so RTT samples) come every 100 ms.
fn fast_pings() -> Config {
    Config {
        ping_interval: Duration::from_millis(100),
        ..Config::for_tests()
    }
}

#[tokio::test]
async fn each_players_rtt_is_measured_with_the_servers_pings() {
    let server = support::start(fast_pings()).await;
    let (mut c, w) = RawClient::join(server.local_addr(), "rtt").await;
    let room = server.default_room().expect("the player's room");
    let deadline = tokio::time::Instant::now() + WAIT;
    // Reading snapshots answers the server's pings (tungstenite replies).
    let rtt = loop {
        c.snapshot().await;
        let detail = room.detail().await.expect("the room answers");
        let me = detail
            .players
            .iter()
            .find(|p| p.id == w.player_id.0)
            .expect("the player is listed");
        if let Some(rtt) = me.rtt_us {
            break rtt;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no RTT within {WAIT:?}"
        );
    };
    // Loopback; generous for a loaded machine, but a real measurement, not 0
    // or a clock difference.
    assert!((1..2_000_000).contains(&rtt), "rtt {rtt} µs");
    let text = server.metrics().encode();
    let count = text
        .lines()
        .find_map(|l| l.strip_prefix("ticksync_rtt_seconds_count "))
        .and_then(|n| n.trim().parse::<u64>().ok())
        .expect("the RTT histogram is exported");
    assert!(count >= 1, "RTT samples counted: {count}");
    server.shutdown().await;
}
