//! The protocol crate's example client (`protocol/examples/join.rs`, built on the
//! crate plus tokio-tungstenite only) joins a live server with bots in it and
//! prints what it sees: the `Welcome`, then every snapshot with all players in
//! view and its own position moving.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use ticksync_server::Config;

/// Snapshots the example reads before it closes.
const SNAPSHOTS: usize = 45;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocol_example_joins_and_prints_what_it_sees() {
    let example = tokio::task::spawn_blocking(|| common::bins::built_example("join"))
        .await
        .expect("build task");
    let server = common::start_server(Config::for_tests()).await;
    let bots = common::connect_bots(&server, 1, 2).await;
    let url = common::ws_url(&server);
    let out = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(example)
            .args([url, SNAPSHOTS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        common::bins::wait_with_limit(&mut child, "the example", Duration::from_secs(30));
        child.wait_with_output().expect("the example's output")
    })
    .await
    .expect("example task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("welcome: player 3 at tick "),
        "{stdout}"
    );
    let snapshots: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("snapshot tick "))
        .collect();
    assert_eq!(snapshots.len(), SNAPSHOTS, "{stdout}");
    assert!(
        snapshots
            .iter()
            .all(|l| l.contains(": 3 players in view, me at (")),
        "{stdout}"
    );
    // It walks: its position as the server reports it changes.
    let position = |l: &str| l.split(" me at ").nth(1).map(str::to_string);
    assert_ne!(
        position(snapshots[0]),
        position(snapshots[SNAPSHOTS - 1]),
        "{stdout}"
    );
    assert_eq!(
        lines.last(),
        Some(&format!("done: {SNAPSHOTS} snapshots").as_str())
    );
    for outcome in common::close_all(bots).await {
        assert!(outcome.last_error.is_none(), "{:?}", outcome.last_error);
    }
    common::shutdown(server).await;
}
