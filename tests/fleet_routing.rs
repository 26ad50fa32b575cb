//! Sticky routing through a real nginx running deploy/nginx/ticksync.conf: a
//! connection under `/m/<member>/` reaches that member and no other, so a
//! dropped connection resumes the same player on the same process.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::attack::http_get;
use common::services::Nginx;
use common::{WAIT, eventually, within};
use ticksync_bot::{Backoff, BotHandle};
use ticksync_server::{Config, Server};

/// Bots per member.
const BOTS: u64 = 50;

fn member_routes(members: &[(&str, &Arc<Server>)]) -> Vec<(String, std::net::SocketAddr)> {
    members
        .iter()
        .map(|(id, s)| (id.to_string(), s.local_addr()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_resume_on_the_member_that_holds_them() {
    let a = common::start_server(Config::for_tests()).await;
    let b = common::start_server(Config::for_tests()).await;
    let nginx = Nginx::start(&member_routes(&[("m1", &a), ("m2", &b)]));

    // 50 bots per member, each through its member's prefix on the one address.
    let mut bots: Vec<(usize, BotHandle)> = Vec::new();
    for (m, prefix) in ["m1", "m2"].iter().enumerate() {
        let url = format!("{}/m/{prefix}/ws", nginx.ws_base());
        let first = m as u64 * BOTS;
        let group = common::connect_bots_with(first, BOTS, |n| {
            let mut o = ticksync_bot::BotOptions::new(url.clone());
            o.name = Some(format!("fleet-{n}"));
            o.seed = n;
            o.connect_timeout = Duration::from_secs(10);
            o.reconnect = Some(Backoff {
                min: Duration::from_millis(20),
                max: Duration::from_millis(300),
            });
            o
        })
        .await;
        bots.extend(group.into_iter().map(|bot| (m, bot)));
    }
    let servers = [&a, &b];
    for s in servers {
        eventually(WAIT, "50 players on each member", || async {
            s.metrics().players.get() == BOTS as i64
        })
        .await;
    }
    let ids: Vec<_> = bots
        .iter()
        .map(|(m, bot)| (*m, bot.player_id().expect("welcomed")))
        .collect();

    // Every connection drops at once (no close frame); each bot reconnects to
    // the same URL through nginx and resumes.
    for (_, bot) in &bots {
        bot.drop_connection();
    }
    for s in servers {
        eventually(WAIT, "every dropped bot to resume", || async {
            s.metrics().sessions_resumed.get() == BOTS
        })
        .await;
    }
    for (i, (_, bot)) in bots.iter().enumerate() {
        bot.wait_until(WAIT, |v| v.connected && v.counters.desyncs == 0)
            .await
            .unwrap_or_else(|e| panic!("bot #{i} did not reconnect: {e}"));
    }
    for (i, ((m, id), (_, bot))) in ids.iter().zip(&bots).enumerate() {
        assert_eq!(bot.player_id(), Some(*id), "bot #{i} is the same player");
        let (_, world) = common::server_world(servers[*m]).await;
        assert!(
            world.iter().any(|e| e.id == *id),
            "bot #{i}'s player {id:?} is on member m{}",
            m + 1
        );
    }
    for s in servers {
        assert_eq!(s.metrics().players.get(), BOTS as i64, "no player moved");
    }

    // Only the named member answers under its prefix; an unknown one is a 404.
    let (status, _) = http_get(nginx.addr, "/m/m9/healthz").await;
    assert_eq!(
        status, 404,
        "an unknown member is refused, not routed elsewhere"
    );
    let (status, body) = http_get(nginx.addr, "/m/m2/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(nginx.addr, "/healthz").await;
    assert_eq!(status, 200, "fleet-wide paths reach any member");

    for (i, (_, bot)) in bots.into_iter().enumerate() {
        let outcome = within(WAIT, "a bot to close", bot.close()).await;
        assert_eq!(outcome.counters.desyncs, 0, "bot #{i}: desyncs");
    }
    assert!(
        !nginx.error_log().contains("[emerg]"),
        "{}",
        nginx.error_log()
    );
    drop(nginx);
    common::shutdown(a).await;
    common::shutdown(b).await;
}
