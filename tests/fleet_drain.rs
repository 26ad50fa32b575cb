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

use common::bins::wait_with_limit;
use common::fleet::{
    FleetProcesses, all_playing_without, assert_rematchmade, busiest_member,
    start_rematchmaking_bots,
};
use common::web::{NODE_LIMIT, chromium, ensure_node_modules, web_dir};

/// Bots in the run, and seats per room (so both members hold rooms).
const BOTS: u64 = 16;
const CAPACITY: u32 = 4;
/// Long enough to seat everyone, drain, and play on afterwards.
const RUN: &str = "12s";
/// The bot run with its connects, drain and report, on a loaded machine.
const BOT_LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bots_rematchmake_onto_another_member_when_theirs_drains() {
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
    let run = start_rematchmaking_bots(&fleet, BOTS, RUN);
    let (victim, drained) = busiest_member(&fleet, BOTS).await;

    let status = fleet.terminate(&victim, Duration::from_secs(20));
    assert!(
        status.success(),
        "{victim} exits 0 after its drain: {status}"
    );
    all_playing_without(&fleet, BOTS, &victim).await;
    assert_rematchmade(&run.report(BOT_LIMIT), BOTS, drained);
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
