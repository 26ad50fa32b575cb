//! End to end through the matchmaker: 100 rooms × 8 bots plus duels of another
//! kind side by side, every bot seated by `POST /matchmake` with a seat token.
//! Each room's bots hold exactly their own room's world, bit for bit, with no
//! entity of another room; rooms close once their players have left.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use ticksync_bot::{BotHandle, BotOptions, BotView, Matchmaking};
use ticksync_protocol::{EntityState, Tick};
use ticksync_server::metrics::RoomCloseReason;
use ticksync_server::room::RoomHandle;
use ticksync_server::{Config, Server};

use common::WAIT;

const ROOMS: u64 = 100;
const SQUAD: u64 = 8;
const DUELS: u64 = 5;

fn config() -> Config {
    Config {
        room_kinds: vec![
            // Slow ticks keep 800 debug-build bots affordable on 2 shared cores.
            "squad:capacity=8,tick_rate=5,world_size=400"
                .parse()
                .unwrap(),
            "duel:capacity=2,tick_rate=20,world_size=100,speed=50"
                .parse()
                .unwrap(),
        ],
        room_idle_timeout: Duration::from_millis(300),
        ..Config::for_tests()
    }
}

fn matchmaking_bot(server: &Server, n: u64, kind: &str) -> BotOptions {
    let mut opts = common::bot_options(server, n);
    opts.matchmake = Some(Matchmaking {
        kind: Some(kind.into()),
    });
    opts.input_rate = 5;
    opts.connect_timeout = WAIT;
    opts
}

/// A room's world once it stopped changing (its players stopped sending
/// inputs), and the tick it was read at.
async fn settled_world(room: &RoomHandle) -> (Tick, Vec<EntityState>) {
    let (mut tick, mut world) = common::room_world(room).await;
    common::within(WAIT, "a room's world to settle", async {
        loop {
            // 3.5 ticks of the slowest kind: an input still in flight lands meanwhile.
            tokio::time::sleep(Duration::from_millis(700)).await;
            let (t, w) = common::room_world(room).await;
            if w == world && common::at_rest(&w) {
                return;
            }
            (tick, world) = (t, w);
        }
    })
    .await;
    (tick, world)
}

/// Bots grouped by the room they were seated in (views asked concurrently).
async fn by_room(bots: Vec<BotHandle>) -> HashMap<String, Vec<BotHandle>> {
    let views = futures_util::future::join_all(bots.iter().map(|b| b.view())).await;
    let mut rooms: HashMap<String, Vec<BotHandle>> = HashMap::new();
    for (b, view) in bots.into_iter().zip(views) {
        let view = match view {
            Ok(v) => v,
            Err(_) => panic!("a bot ended: {:?}", b.join().await.last_error),
        };
        let room = view.room.expect("a matchmade bot knows its room");
        rooms.entry(room).or_default().push(b);
    }
    rooms
}

/// The bot's view once its world has reached `tick` (polled gently: a
/// hundred rooms wait at once).
async fn view_at(bot: &BotHandle, tick: Tick) -> BotView {
    common::within(WAIT, "a bot's world to reach the room's tick", async {
        loop {
            let v = common::view(bot).await;
            if v.tick.is_some_and(|t| t >= tick) {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_rooms_of_eight_and_duels_each_hold_their_own_exact_world() {
    let started = std::time::Instant::now();
    let server = common::start_server(config()).await;
    // In waves: 800 TLS-less handshakes at once still swamp a loaded debug build.
    let mut squads = Vec::new();
    for wave in (0..ROOMS * SQUAD).step_by(200) {
        squads.extend(
            common::connect_bots_with(wave, 200, |n| matchmaking_bot(&server, n, "squad")).await,
        );
    }
    let duels =
        common::connect_bots_with(10_000, DUELS * 2, |n| matchmaking_bot(&server, n, "duel")).await;
    let listed = server.rooms();
    let count = |kind: &str| listed.iter().filter(|r| r.kind == kind).count() as u64;
    assert_eq!(
        (count("squad"), count("duel")),
        (ROOMS, DUELS),
        "no room opened twice"
    );
    assert!(
        listed.iter().all(|r| r.players == r.capacity),
        "every room full"
    );

    eprintln!(
        "[{:?}] {} bots seated",
        started.elapsed(),
        ROOMS * SQUAD + DUELS * 2
    );
    let mut rooms = by_room(squads).await;
    rooms.extend(by_room(duels).await);
    assert_eq!(rooms.len() as u64, ROOMS + DUELS);
    // Each room's bots hold their room's world: bit-exact, nobody else's. The
    // bots stop sending inputs, each room's world settles, and every bot's world
    // at that tick or later must equal it. Rooms are compared concurrently.
    for bots in rooms.values() {
        for b in bots {
            b.set_quiesced(true);
        }
    }
    let server_ref = &server;
    let compared = rooms.iter().map(|(id, bots)| async move {
        let handle = server_ref
            .room(id.parse().unwrap())
            .expect("the room is open");
        let size = handle.kind.spec.capacity as usize;
        assert_eq!(bots.len(), size, "room {id}");
        let (tick, world) = settled_world(&handle).await;
        assert_eq!(world.len(), size, "room {id}: its own players only");
        for (i, b) in bots.iter().enumerate() {
            let v = view_at(b, tick).await;
            assert_eq!(
                v.entities, world,
                "room {id} bot #{i} at {:?}: not the room's world at tick {}",
                v.tick, tick.0
            );
            assert_eq!(v.room.as_deref(), Some(id.as_str()));
            assert_eq!(v.counters.desyncs, 0, "room {id} bot #{i}: desyncs");
        }
    });
    futures_util::future::join_all(compared).await;
    eprintln!("[{:?}] every room compared", started.elapsed());

    let closed = rooms.into_values().flatten().map(BotHandle::close);
    for (i, outcome) in futures_util::future::join_all(closed)
        .await
        .iter()
        .enumerate()
    {
        common::assert_clean_end(i, outcome);
    }
    eprintln!("[{:?}] bots closed", started.elapsed());
    common::eventually(WAIT, "every room to close once empty", || async {
        server.rooms().is_empty()
    })
    .await;
    let closed = server.metrics().rooms_closed(RoomCloseReason::idle);
    assert_eq!(closed, ROOMS + DUELS);
    common::shutdown(server).await;
}
