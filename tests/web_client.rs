//! The JavaScript web client (`clients/web/`) inside `cargo test --workspace`: its
//! `node --test` suite (golden vectors, prediction, session), and the browser
//! end-to-end test of the demo page in Debian's chromium against an in-process
//! server with bots.
//!
//! Missing tools fail these tests with a message saying what to install (`cargo
//! xtask test` installs chromium and runs `npm ci`); they never skip silently.

mod common;

use common::web::{
    NODE_LIMIT, assert_screenshot, assert_success, chromium, ensure_node_modules, run, run_driver,
    screenshot_path,
};
use ticksync_server::Config;

/// Bots in the world the browser looks at.
const BOTS: u64 = 3;

#[test]
fn js_library_passes_its_node_test_suite() {
    ensure_node_modules();
    let out = run("node", &["--test"], NODE_LIMIT);
    assert_success("node --test in clients/web", &out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let count = |key: &str| {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# {key} ")))
            .and_then(|n| n.trim().parse::<u32>().ok())
    };
    assert_eq!(count("fail"), Some(0), "node reported failures:\n{stdout}");
    assert!(
        count("pass").unwrap_or(0) >= 80,
        "too few JS tests ran:\n{stdout}"
    );
}

#[test]
fn js_library_type_checks() {
    ensure_node_modules();
    let out = run(
        "node",
        &[
            "node_modules/typescript/bin/tsc",
            "--noEmit",
            "-p",
            "tsconfig.json",
        ],
        NODE_LIMIT,
    );
    assert_success("tsc --noEmit in clients/web", &out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_page_plays_in_chromium() {
    let chromium = chromium();
    tokio::task::spawn_blocking(ensure_node_modules)
        .await
        .expect("npm ci task");
    let server = common::start_server(Config::for_tests()).await;
    let bots = common::connect_bots(&server, 1, BOTS).await;
    let url = format!("http://{}/", server.local_addr());
    let shot = screenshot_path("web-demo.png");
    run_driver(
        "e2e/browser.mjs",
        vec![
            format!("--url={url}"),
            format!("--bots={BOTS}"),
            format!("--screenshot={}", shot.display()),
            format!("--chromium={}", chromium.display()),
        ],
    )
    .await;
    // Every input the page sent was new to the server: none numbered for an old
    // session (e.g. sent after a reconnect but before the new Welcome).
    assert_eq!(
        server
            .metrics()
            .inputs_rejected(ticksync_server::metrics::InputRejection::stale),
        0,
        "inputs dropped as stale"
    );
    assert_screenshot(&shot);
    for outcome in common::close_all(bots).await {
        assert!(
            outcome.last_error.is_none(),
            "a bot failed while the browser played: {:?}",
            outcome.last_error
        );
    }
    common::shutdown(server).await;
}
