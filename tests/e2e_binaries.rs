//! End to end with the real binaries: `ticksync-bot` runs 20 bots for 3 s against
//! a `ticksync-server` process, exits 0 and writes a JSON report with every field
//! scripts rely on; the server then drains on SIGTERM and exits 0. With
//! `--matchmake` the bots take their seats through `POST /matchmake`, and take
//! new ones when the operator closes their room.

mod common;

use std::time::Duration;

use serde_json::Value;

use common::bins::{
    BotProcess, ServerProcess, built_binaries, report_count as count, report_number as number,
};

const BOTS: u64 = 20;

/// Generous: 3 s of run, connect, metrics scrape and close on a loaded machine.
const BOT_RUN_LIMIT: Duration = Duration::from_secs(60);

/// p50 <= p99 <= max, all positive, with samples when the report counts them.
fn check_latency(report: &Value, name: &str) -> (f64, f64, f64) {
    let (p50, p99, max) = (
        number(report, &format!("/{name}/p50")),
        number(report, &format!("/{name}/p99")),
        number(report, &format!("/{name}/max")),
    );
    assert!(
        0.0 <= p50 && p50 <= p99 && p99 <= max,
        "{name}: p50 {p50} p99 {p99} max {max}"
    );
    (p50, p99, max)
}

/// Runs the bot binary against `server` with `args` (plus --url, --no-progress
/// and --json); asserts it exits 0 and returns its JSON report.
fn run_bot(bot_bin: &std::path::Path, server: &ServerProcess, args: &[&str]) -> Value {
    BotProcess::start(bot_bin, &server.ws_url(), args).report(BOT_RUN_LIMIT)
}

#[test]
fn bot_binary_against_server_binary_reports_a_clean_run() {
    let (server_bin, bot_bin) = built_binaries();
    let mut server = ServerProcess::start(&server_bin, &[], Duration::from_secs(30));
    let bots = BOTS.to_string();
    let report = run_bot(
        &bot_bin,
        &server,
        &[
            "--bots",
            &bots,
            "--duration",
            "3s",
            "--ramp-up",
            "500ms",
            "--seed",
            "7",
        ],
    );
    let output = || format!("{report:#}");
    assert_eq!(count(&report, "/bots_requested"), BOTS);
    assert_eq!(count(&report, "/bots_connected"), BOTS, "{}", output());
    assert_eq!(count(&report, "/connect_failures"), 0);
    assert_eq!(count(&report, "/disconnects"), 0);
    assert_eq!(count(&report, "/desyncs"), 0);
    count(&report, "/mispredictions");
    assert_eq!(report["passed"], Value::Bool(true));
    // 20 bots at 30 Hz for about 2.5 s each (ramp-up): ~1500 snapshots. Only a
    // loose floor: the machine is shared.
    let snapshots = count(&report, "/snapshots_received");
    assert!(snapshots >= BOTS * 30, "{snapshots} snapshots");
    check_latency(&report, "rtt_ms");
    let (p50, _, _) = check_latency(&report, "snapshot_interval_ms");
    assert!(
        (10.0..=100.0).contains(&p50),
        "median snapshot interval {p50} ms at 30 Hz"
    );
    assert!(number(&report, "/bytes_per_bot_per_s") > 0.0);
    let duration = number(&report, "/duration_s");
    assert!((3.0..30.0).contains(&duration), "duration_s {duration}");
    // The server's tick statistics, scraped from its /metrics.
    assert_eq!(report["server"]["scraped"], Value::Bool(true), "{report:#}");
    assert!(count(&report, "/server/ticks") >= 60, "{report:#}");
    count(&report, "/server/ticks_missed");
    check_latency(&report, "server/tick_duration_ms");

    let status = server.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "server exit after SIGTERM");
    let log = server.output();
    assert!(log.contains("shutdown complete"), "server log:\n{log}");
}

/// `--matchmake`: every bot asks `POST /matchmake` for a duel seat first; ten
/// bots fill five duels, and the report says so with the matchmake latency.
#[test]
fn matchmaking_bots_fill_duels_and_report_rooms_and_latency() {
    let (server_bin, bot_bin) = built_binaries();
    let mut server = ServerProcess::start(
        &server_bin,
        &["--room-kind", "duel:capacity=2"],
        Duration::from_secs(30),
    );
    let report = run_bot(
        &bot_bin,
        &server,
        &[
            "--matchmake",
            "--kind",
            "duel",
            "--bots",
            "10",
            "--duration",
            "2s",
            "--ramp-up",
            "200ms",
        ],
    );
    assert_eq!(count(&report, "/bots_connected"), 10, "{report:#}");
    assert_eq!(count(&report, "/rooms_joined"), 5, "{report:#}");
    assert_eq!(count(&report, "/desyncs"), 0);
    let (p50, _, _) = check_latency(&report, "matchmake_ms");
    assert!(p50 > 0.0, "{report:#}");
    assert_eq!(report["passed"], Value::Bool(true));
    let status = server.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "server exit after SIGTERM");
}

/// Closing a room from the admin API (`--monitor`, #18 item 2): its players get
/// close 4004 and, with `--matchmake --reconnect`, the bot binary matchmakes each
/// of them again into another room by itself. Asserted from the bot's JSON
/// report (every closed-out bot re-matchmade, no desync) and from `GET /rooms`
/// (every bot seated again, the closed room gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_closed_out_of_a_room_by_the_admin_api_matchmake_again() {
    const TOKEN: &str = "e2e-admin-token-0123456789";
    const SQUAD: u64 = 4;
    let (server_bin, bot_bin) = built_binaries();
    let capacity = SQUAD.to_string();
    let mut server = ServerProcess::start(
        &server_bin,
        &[
            "--room-capacity",
            &capacity,
            "--monitor",
            "--admin-token",
            TOKEN,
            // The test polls GET /rooms from the bots' address.
            "--matchmake-rate",
            "1000",
            "--matchmake-burst",
            "1000",
        ],
        Duration::from_secs(30),
    );
    let bots = (2 * SQUAD).to_string();
    let run = BotProcess::start(
        &bot_bin,
        &server.ws_url(),
        &[
            // The closed-out bots are away while they matchmake again.
            "--max-disconnected-share",
            "0.9",
            "--bots",
            &bots,
            "--duration",
            "8s",
            "--ramp-up",
            "500ms",
            "--matchmake",
            "--reconnect",
        ],
    );
    let addr = server.addr;
    let seated = || async move {
        common::fleet::rooms(addr)
            .await
            .into_iter()
            .map(|r| (r.id, r.players))
            .collect::<Vec<_>>()
    };
    common::eventually(
        WAIT_SEATED,
        "every bot seated in two full rooms",
        || async {
            let rooms = seated().await;
            rooms.len() == 2 && rooms.iter().all(|(_, n)| *n == SQUAD)
        },
    )
    .await;
    let closed = seated().await[0].0.clone();
    let auth = format!("Bearer {TOKEN}");
    let answer = ticksync_testkit::http::request(
        addr,
        "POST",
        &format!("/rooms/{closed}/close"),
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(answer.status, 200, "POST /rooms/{closed}/close: {answer:?}");
    common::eventually(
        WAIT_SEATED,
        "the closed room's bots seated again elsewhere",
        || async {
            let rooms = seated().await;
            rooms.iter().all(|(id, _)| *id != closed)
                && rooms.iter().map(|(_, n)| n).sum::<u64>() == 2 * SQUAD
        },
    )
    .await;

    let report = tokio::task::spawn_blocking(move || run.report(BOT_RUN_LIMIT))
        .await
        .expect("bot report task");
    let show = || format!("{report:#}");
    assert_eq!(count(&report, "/bots_connected"), 2 * SQUAD, "{}", show());
    assert_eq!(
        count(&report, "/rematchmades"),
        SQUAD,
        "each bot of the closed room matchmade again: {}",
        show()
    );
    assert_eq!(
        count(&report, "/rematchmake_ms/samples"),
        SQUAD,
        "{}",
        show()
    );
    assert_eq!(count(&report, "/resumed"), 0, "4004 is never resumed");
    assert_eq!(count(&report, "/drained"), 0, "a room close is not a drain");
    assert_eq!(count(&report, "/desyncs"), 0, "{}", show());
    assert_eq!(report["passed"], Value::Bool(true), "{}", show());
    let status = server.terminate(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "server exit after SIGTERM");
}

/// Seating a handful of bots, or seating them again, on a loaded machine.
const WAIT_SEATED: Duration = Duration::from_secs(30);
