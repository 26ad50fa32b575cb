//! The one place for helpers of the root end-to-end suite (`tests/e2e_*.rs`,
//! `tests/adversarial.rs`): an in-process server on 127.0.0.1:0, groups of bots,
//! bounded waits, the server's world as it was at each tick, raw protocol clients
//! ([`raw`]), the built binaries ([`bins`]), test certificates ([`tls`]) and
//! real Redis and nginx processes ([`services`]) and a fleet of them with
//! member processes ([`fleet`]).
//!
//! Rules every helper keeps, so tests stay robust on a noisy shared machine:
//! every wait is bounded and fails the test with a message saying what did not
//! happen (no hangs); time bounds are generous, correctness checks are exact.
//!
//! Server defaults worth knowing when writing a test (see `ticksync_server::Config`):
//! every client here comes from 127.0.0.1, so `--max-connections-per-ip` (64)
//! bounds the bots and raw clients of one server; each connection may send
//! `--input-rate-limit` messages per second (burst `--input-burst`) before its
//! messages are dropped and, past `--flood-drops`, it is closed with 1008.
//! Raise them in the test's `Config` when a test needs more.
//!
//! Each test file is its own crate and uses a subset of these helpers, hence the
//! `dead_code` allowance.

#![allow(dead_code)]

pub mod attack;
pub mod bins;
pub mod fleet;
pub mod history;
pub mod services;
pub mod tls;
pub mod web;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use ticksync_bot::{BotHandle, BotOptions, BotOutcome, BotView};
use ticksync_protocol::{EntityState, PlayerId, Tick};
use ticksync_server::room::RoomHandle;
use ticksync_server::{Config, Server};
use tokio::task::JoinSet;

/// Raw protocol clients, shared with the server's own tests.
pub use ticksync_testkit::raw;
pub use ticksync_testkit::{WAIT, within};

/// Polls `cond` every 10 ms until it returns true, for at most `limit`; fails the
/// test otherwise.
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(limit, what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// Starts an in-process server with `config` (use [`Config::for_tests`] as the base:
/// it binds 127.0.0.1:0). Shared with an `Arc` so a [`history::Recorder`] can
/// watch it;
/// [`shutdown`] takes it back.
pub async fn start_server(config: Config) -> Arc<Server> {
    Arc::new(Server::start(config).await.expect("server starts"))
}

/// Shuts a server started by [`start_server`] down gracefully. Every other
/// reference (e.g. a [`history::Recorder`]) must be gone by then.
pub async fn shutdown(server: Arc<Server>) {
    let server = Arc::into_inner(server).expect("no other reference to the server is alive");
    within(WAIT, "the server to shut down", server.shutdown()).await;
}

/// The WebSocket URL of a server.
pub fn ws_url(server: &Server) -> String {
    format!("ws://{}/ws", server.local_addr())
}

/// The last tick the server simulated (cheap: a metrics counter, no round trip).
pub fn server_tick(server: &Server) -> Tick {
    Tick(server.metrics().ticks.get() as u32)
}

/// The server's world: its current tick and every entity, sorted by id.
pub async fn server_world(server: &Server) -> (Tick, Vec<EntityState>) {
    within(WAIT, "the server's world", server.world())
        .await
        .expect("the tick thread is running")
}

/// Waits until the server has simulated `tick`.
pub async fn wait_server_tick(server: &Server, tick: Tick) {
    eventually(WAIT, &format!("server tick {}", tick.0), || async {
        server_tick(server) >= tick
    })
    .await;
}

/// Options of test bot number `n` (seeded by `n`, named `e2e-n`, no reconnect).
pub fn bot_options(server: &Server, n: u64) -> BotOptions {
    let mut opts = BotOptions::new(ws_url(server));
    opts.name = Some(format!("e2e-{n}"));
    opts.seed = n;
    opts.connect_timeout = Duration::from_secs(10);
    opts
}

/// Connects one bot; returns once the server welcomed it.
pub async fn connect_bot(server: &Server, n: u64) -> BotHandle {
    within(
        WAIT,
        "a bot to connect",
        BotHandle::connect(bot_options(server, n)),
    )
    .await
    .expect("the bot is welcomed")
}

/// Connects bots number `first..first + count` concurrently; returns them in that
/// order once every one is welcomed.
pub async fn connect_bots(server: &Server, first: u64, count: u64) -> Vec<BotHandle> {
    connect_bots_with(first, count, |n| bot_options(server, n)).await
}

/// Like [`connect_bots`], bot `n` with the options `opts(n)` (e.g. `wss://`).
pub async fn connect_bots_with(
    first: u64,
    count: u64,
    opts: impl Fn(u64) -> BotOptions,
) -> Vec<BotHandle> {
    let mut set = JoinSet::new();
    for n in first..first + count {
        let opts = opts(n);
        set.spawn(async move { (n, BotHandle::connect(opts).await) });
    }
    let mut bots: Vec<(u64, BotHandle)> = within(WAIT, "all bots to connect", async {
        let mut bots = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (n, bot) = joined.expect("connect task");
            bots.push((n, bot.unwrap_or_else(|e| panic!("bot {n} failed: {e}"))));
        }
        bots
    })
    .await;
    bots.sort_by_key(|(n, _)| *n);
    bots.into_iter().map(|(_, b)| b).collect()
}

/// The player ids of `bots`, in order.
pub fn player_ids(bots: &[BotHandle]) -> Vec<PlayerId> {
    bots.iter()
        .map(|b| b.player_id().expect("a connected bot has an id"))
        .collect()
}

/// One bot's current state.
pub async fn view(bot: &BotHandle) -> BotView {
    within(WAIT, "a bot's view", bot.view())
        .await
        .expect("the bot is running")
}

/// Every bot's current state, in order.
pub async fn views(bots: &[BotHandle]) -> Vec<BotView> {
    let mut out = Vec::with_capacity(bots.len());
    for b in bots {
        out.push(view(b).await);
    }
    out
}

/// Waits until `pred` holds for every bot (each within [`WAIT`]); returns the
/// views that satisfied it.
pub async fn wait_all(
    bots: &[BotHandle],
    what: &str,
    pred: impl Fn(&BotView) -> bool,
) -> Vec<BotView> {
    let mut out = Vec::with_capacity(bots.len());
    for (i, b) in bots.iter().enumerate() {
        match b.wait_until(WAIT, &pred).await {
            Ok(v) => out.push(v),
            Err(e) => {
                let last = b.view().await.ok();
                panic!("bot #{i}: {what}: {e}; last view: {last:?}")
            }
        }
    }
    out
}

/// Whether a view's world holds every one of `ids`.
pub fn sees_all(view: &BotView, ids: &[PlayerId]) -> bool {
    ids.iter()
        .all(|id| view.entities.binary_search_by_key(id, |e| e.id).is_ok())
}

/// Whether a view's world holds `id`.
pub fn sees(view: &BotView, id: PlayerId) -> bool {
    view.entities.binary_search_by_key(&id, |e| e.id).is_ok()
}

/// The world after every bot stopped moving, as the server and all bots agree.
#[derive(Debug)]
pub struct Settled {
    /// The server tick the bots' worlds were compared at.
    pub tick: Tick,
    /// The server's world at that tick.
    pub world: Vec<EntityState>,
    /// Each bot's state once its world reached `tick`.
    pub views: Vec<BotView>,
}

/// Quiesces every bot (no more inputs), waits until each one's inputs are all
/// acknowledged and the server's world is at rest (every velocity 0: two ticks
/// after a player's last input), takes that world at some tick T, waits until
/// every bot's world is at T or later, and asserts that every bot's world equals
/// the server's bit for bit (positions and velocities) and that its prediction
/// equals its authoritative position. With no inputs nobody moves, so the worlds
/// stay comparable while the server ticks on; the server's world is read again at
/// the end to prove that.
///
/// Requires that no player joins or leaves meanwhile.
pub async fn quiesce_and_compare(server: &Server, bots: &[BotHandle]) -> Settled {
    let room = server.default_room().expect("the default room is open");
    quiesce_and_compare_in(&room, bots).await
}

/// A room's world: its current tick and every entity, sorted by id.
pub async fn room_world(room: &RoomHandle) -> (Tick, Vec<EntityState>) {
    within(WAIT, "the room's world", room.world())
        .await
        .expect("the room is open")
}

/// Whether every entity of `world` stands still (wire v2: a velocity of zero).
/// Unchanged positions alone do not say so: a player pushing into a corner keeps
/// its position while its queued inputs still give it a velocity.
pub fn at_rest(world: &[EntityState]) -> bool {
    world.iter().all(|e| e.vel == glam::IVec2::ZERO)
}

/// [`quiesce_and_compare`] for the bots of one room against that room's world.
pub async fn quiesce_and_compare_in(room: &RoomHandle, bots: &[BotHandle]) -> Settled {
    for b in bots {
        b.set_quiesced(true);
    }
    wait_all(bots, "all inputs acknowledged after quiescing", |v| {
        v.quiesced && v.all_inputs_acked()
    })
    .await;
    eventually(WAIT, "the room's world at rest", || async {
        at_rest(&room_world(room).await.1)
    })
    .await;
    let (tick, world) = room_world(room).await;
    let views = wait_all(bots, "world at the compared tick", |v| {
        v.tick.is_some_and(|t| t >= tick)
    })
    .await;
    for (i, v) in views.iter().enumerate() {
        assert_eq!(
            v.entities, world,
            "bot #{i} ({:?}) at tick {:?}: world differs from the server's at tick {}",
            v.player_id, v.tick, tick.0
        );
        assert!(v.own_position.is_some(), "bot #{i} sees itself");
        assert_eq!(
            v.predicted_position, v.own_position,
            "bot #{i}: prediction differs from the authoritative position once all inputs are acked"
        );
        assert_eq!(v.counters.desyncs, 0, "bot #{i}: desyncs");
    }
    let (later, again) = room_world(room).await;
    assert_eq!(
        again, world,
        "the quiesced world changed between ticks {} and {}",
        tick.0, later.0
    );
    Settled { tick, world, views }
}

/// Resumes inputs on every bot.
pub fn unquiesce(bots: &[BotHandle]) {
    for b in bots {
        b.set_quiesced(false);
    }
}

/// Closes every bot cleanly (close 1000) and returns how each ended.
pub async fn close_all(bots: Vec<BotHandle>) -> Vec<BotOutcome> {
    let mut out = Vec::with_capacity(bots.len());
    for b in bots {
        out.push(within(WAIT, "a bot to close", b.close()).await);
    }
    out
}

/// Asserts that a bot ended without an error of its connection.
pub fn assert_clean_end(i: usize, outcome: &BotOutcome) {
    assert!(outcome.connected, "bot #{i} was connected");
    assert!(
        outcome.last_error.is_none(),
        "bot #{i} ended with {:?}",
        outcome.last_error
    );
    assert_eq!(outcome.counters.desyncs, 0, "bot #{i}: desyncs");
}
