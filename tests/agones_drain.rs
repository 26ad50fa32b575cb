//! An Agones GameServer deleted under playing bots (#16 item 4, #17): two
//! `ticksync-server` members, each with `--agones` and its own stand-in of
//! the Agones SDK server (`ticksync_testkit::agones`: Kubernetes and Agones
//! cannot run here, docs/SCALING.md says what this does not prove), sharing a
//! Redis directory behind nginx, and the `ticksync-bot` binary with
//! `--matchmake --reconnect` playing through nginx. Agones deletes the
//! GameServer of the member holding the most players (scale-down, rolling
//! update): that member drains by itself (no signal), marks itself draining
//! in Redis, sends its players their last snapshots and close 1001, calls
//! `Shutdown` once and exits 0; each of its bots matchmakes again by itself
//! and plays on the other member. Asserted from the bot's JSON report:
//! `drained` and `rematchmades` count exactly that member's bots, no desync.

mod common;

use std::time::Duration;

use common::fleet::{
    FleetProcesses, all_playing_without, assert_rematchmade, busiest_member,
    start_rematchmaking_bots,
};
use ticksync_server::agones::{PLAYERS, ROOMS};
use ticksync_testkit::agones::StandIn;

/// Bots in the run, and seats per room (so both members hold rooms).
const BOTS: u64 = 12;
const CAPACITY: u32 = 4;
/// Long enough to seat everyone, drain, and play on afterwards.
const RUN: &str = "10s";
/// The bot run with its connects, drain and report, on a loaded machine.
const BOT_LIMIT: Duration = Duration::from_secs(40);
/// Counters as a Fleet declares them (deploy/agones/fleet.yaml).
const DECLARED: &[(&str, i64)] = &[(ROOMS, 1000), (PLAYERS, 1000)];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_rematchmake_onto_another_member_when_agones_deletes_their_game_server() {
    let stand_ins = [
        StandIn::start(DECLARED).await,
        StandIn::start(DECLARED).await,
    ];
    let sdk_port = |id: &str| match id {
        "m1" => stand_ins[0].port(),
        _ => stand_ins[1].port(),
    };
    let capacity = CAPACITY.to_string();
    let args = [
        "--room-capacity",
        &capacity,
        "--fleet-ttl",
        "3s",
        "--seat-timeout",
        "5s",
        "--agones",
        "--agones-health-interval",
        "200ms",
    ];
    // Blocking waits (processes starting, exiting) while the stand-ins answer
    // on this runtime.
    let mut fleet = tokio::task::block_in_place(|| {
        FleetProcesses::start_each(2, &args, |id| {
            vec!["--agones-sdk-port".into(), sdk_port(id).to_string()]
        })
    });
    for s in &stand_ins {
        s.wait_for("Ready", |s| s.state() == "Ready").await;
    }
    let run = start_rematchmaking_bots(&fleet, BOTS, RUN);
    let (victim, drained) = busiest_member(&fleet, BOTS).await;
    let (gone, kept) = match victim.as_str() {
        "m1" => (&stand_ins[0], &stand_ins[1]),
        _ => (&stand_ins[1], &stand_ins[0]),
    };

    // Agones deletes the GameServer: the member sees it on its watch.
    gone.delete();
    let (status, logs) =
        tokio::task::block_in_place(|| fleet.wait_exit(&victim, Duration::from_secs(20)));
    assert_eq!(status.code(), Some(0), "{victim} exits 0 after its drain");
    assert!(logs.contains("drain requested by Agones"), "{logs}");
    assert_eq!(gone.calls_to("/shutdown").len(), 1, "Shutdown once");
    all_playing_without(&fleet, BOTS, &victim).await;
    // The survivor's counter follows: it holds every player now.
    kept.wait_for("the survivor's players counter", |s| {
        s.counter(PLAYERS).is_some_and(|c| c.count == BOTS as i64)
    })
    .await;
    assert_eq!(kept.state(), "Ready");
    assert!(kept.calls_to("/shutdown").is_empty());

    let report = tokio::task::block_in_place(|| run.report(BOT_LIMIT));
    assert_rematchmade(&report, BOTS, drained);
}
