//! Draining a fleet member while bots play (#16 item 4): two `ticksync-server`
//! members + Redis + nginx, the `ticksync-bot` binary with `--matchmake
//! --reconnect` playing through nginx. SIGTERM on the member holding the most
//! players: it exits 0 after its drain, each of its bots got its last
//! snapshots and a close 1001, matchmade again by itself and plays on the
//! other member. Asserted from the bot binary's JSON report: `drained`,
//! `rematchmades` and `rematchmake_ms` count exactly the drained member's
//! bots, and no bot saw a desync. The same for the web demo in Debian's
//! chromium (clients/web/e2e/drain.mjs): it keeps playing through the drain
//! of its member.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use common::bins::wait_with_limit;
use common::bins::{BotProcess, built_binaries, report_count as count};
use common::fleet::{FleetProcesses, players_per_member};
use common::web::{NODE_LIMIT, chromium, ensure_node_modules, web_dir};
use common::{WAIT, eventually};

/// Bots in the run, and seats per room (so both members hold rooms).
const BOTS: u64 = 16;
const CAPACITY: u32 = 4;
/// Long enough to seat everyone, drain, and play on afterwards.
const RUN: &str = "12s";
/// The bot run with its connects, drain and report, on a loaded machine.
const BOT_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_rematchmake_onto_another_member_when_theirs_drains() {
    let (_, bot_bin) = built_binaries();
    let capacity = CAPACITY.to_string();
    let mut fleet = FleetProcesses::start(
        2,
        &[
            "--room-capacity",
            &capacity,
            "--fleet-ttl",
            "3s",
            "--seat-timeout",
            "5s",
        ],
    );
    let bots = BOTS.to_string();
    let url = format!("ws://{}/ws", fleet.nginx.addr);
    let run = BotProcess::start(
        &bot_bin,
        &url,
        &[
            // The drained bots are away for the re-matchmake: bounded below
            // (10 s), not by the bot's default 10 % of the run.
            "--max-disconnected-share",
            "0.9",
            "--bots",
            &bots,
            "--duration",
            RUN,
            "--ramp-up",
            "1s",
            "--matchmake",
            "--reconnect",
        ],
    );

    eventually(WAIT, "every bot seated", || async {
        players_per_member(&fleet).await.values().sum::<u64>() == BOTS
    })
    .await;
    let before = players_per_member(&fleet).await;
    let (victim, drained) = before
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(m, n)| (m.clone(), *n))
        .expect("a member with players");
    assert!(
        drained > 0 && drained < BOTS,
        "players per member: {before:?}"
    );

    let status = fleet.terminate(&victim, Duration::from_secs(20));
    assert!(
        status.success(),
        "{victim} exits 0 after its drain: {status}"
    );
    eventually(WAIT, "every bot playing on the other member", || async {
        let now = players_per_member(&fleet).await;
        now.values().sum::<u64>() == BOTS && !now.contains_key(&victim)
    })
    .await;

    let report = run.report(BOT_LIMIT);
    let show = || format!("{report:#}");
    assert_eq!(count(&report, "/bots_connected"), BOTS, "{}", show());
    assert_eq!(
        count(&report, "/drained"),
        drained,
        "each drained bot got a close 1001: {}",
        show()
    );
    assert_eq!(
        count(&report, "/rematchmades"),
        drained,
        "each drained bot matchmade again by itself: {}",
        show()
    );
    assert_eq!(count(&report, "/rematchmake_ms/samples"), drained);
    eprintln!(
        "{drained} bots drained from {victim}, back in play after {} ms",
        report["rematchmake_ms"]
    );
    let slowest = report
        .pointer("/rematchmake_ms/max")
        .and_then(Value::as_f64)
        .unwrap_or(f64::MAX);
    assert!(
        slowest < 10_000.0,
        "back in play within 10 s: {slowest} ms\n{}",
        show()
    );
    assert_eq!(count(&report, "/desyncs"), 0, "{}", show());
    assert_eq!(
        count(&report, "/resumed"),
        0,
        "no resume on a draining member"
    );
    assert_eq!(report["passed"], Value::Bool(true), "{}", show());
}

#[test]
fn the_demo_page_keeps_playing_through_the_drain_of_its_member() {
    let chromium = chromium();
    ensure_node_modules();
    let mut fleet = FleetProcesses::start(2, &["--fleet-ttl", "3s"]);
    let mut page = Command::new("node")
        .args([
            "e2e/drain.mjs",
            &format!("--url=http://{}/", fleet.nginx.addr),
        ])
        .arg(format!("--chromium={}", chromium.display()))
        .current_dir(web_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node e2e/drain.mjs");
    // The script says which member holds its room, then waits for its drain.
    let mut out = BufReader::new(page.stdout.take().expect("piped stdout"));
    let mut shown = String::new();
    let mut line = String::new();
    let member = loop {
        line.clear();
        if out.read_line(&mut line).expect("read the script's output") == 0 {
            let mut err = String::new();
            let _ = page.stderr.take().map(|mut e| e.read_to_string(&mut err));
            panic!("drain.mjs ended before playing:\n{shown}\n{err}");
        }
        shown.push_str(&line);
        if let Some(m) = line.trim().strip_prefix("DRAIN ") {
            break m.to_string();
        }
    };
    let status = fleet.terminate(&member, Duration::from_secs(20));
    assert!(
        status.success(),
        "{member} exits 0 after its drain: {status}"
    );
    let status = wait_with_limit(&mut page, "node e2e/drain.mjs", NODE_LIMIT);
    let mut rest = String::new();
    let _ = out.read_to_string(&mut rest);
    let mut err = String::new();
    let _ = page.stderr.take().map(|mut e| e.read_to_string(&mut err));
    eprintln!("{shown}{rest}");
    assert!(
        status.success(),
        "the page after the drain ({status}):\n{shown}{rest}\n{err}"
    );
}
