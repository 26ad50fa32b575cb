//! Certificate rotation without a restart, and the bot binary over `wss://`.
//!
//! A test CA issues the server certificates; "rotating" installs a new pair over
//! the served files (atomic renames) and asks the server to reload: through
//! [`Server::reload_tls`], through `--tls-watch`, or with SIGHUP to the real
//! binary. New handshakes must present the new certificate, established
//! connections must not notice, and a bad pair must be refused while the old
//! one stays in use.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use ticksync_server::metrics::ReloadResult;
use ticksync_server::{Config, Server};

use common::bins::{ServerProcess, TempDir, built_binaries, wait_with_limit};
use common::tls::{TestCa, wss_bot_options};
use common::{WAIT, eventually};

/// Bots kept playing while the certificate changes under them.
const PLAYING: u64 = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotating_the_certificate_under_load_drops_nobody() {
    let ca = TestCa::new("rotate");
    let (old, new) = (ca.issue(), ca.issue());
    ca.install(&old);
    let server = common::start_server(ca.server_config()).await;
    let tls = ca.client();
    let bots = common::connect_bots_with(1, PLAYING, |n| wss_bot_options(&server, n, &tls)).await;
    assert_eq!(ca.presented(server.local_addr()).await, old.der);

    ca.install(&new);
    server.reload_tls().expect("the new pair loads");
    assert_eq!(server.metrics().tls_reloads(ReloadResult::ok), 1);
    // Every new handshake presents the new certificate, and bots still join.
    for _ in 0..5 {
        assert_eq!(ca.presented(server.local_addr()).await, new.der);
    }
    let joiners = common::connect_bots_with(100, 5, |n| wss_bot_options(&server, n, &tls)).await;

    // The established connections went on playing through the swap.
    let before: Vec<u64> = common::views(&bots)
        .await
        .iter()
        .map(|v| v.counters.snapshots)
        .collect();
    let ids = common::player_ids(&bots);
    common::wait_all(&bots, "snapshots after the rotation", |v| {
        v.connected && common::sees_all(v, &ids)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (i, (v, b)) in common::views(&bots).await.iter().zip(&before).enumerate() {
        assert!(v.connected, "bot #{i} is still connected");
        assert!(
            v.counters.snapshots > *b,
            "bot #{i} still receives snapshots"
        );
    }
    let mut all = bots;
    all.extend(joiners);
    for (i, outcome) in common::close_all(all).await.iter().enumerate() {
        common::assert_clean_end(i, outcome);
    }
    common::shutdown(server).await;
}

#[tokio::test]
async fn a_bad_pair_is_refused_and_the_old_one_stays() {
    let ca = TestCa::new("bad");
    let (good, other) = (ca.issue(), ca.issue());
    ca.install(&good);
    let server = Server::start(ca.server_config()).await.expect("start");
    let addr = server.local_addr();
    let tls = ca.client();
    let bot = common::connect_bots_with(1, 1, |n| wss_bot_options(&server, n, &tls))
        .await
        .remove(0);

    ca.install_mismatched(&other, &good); // other's certificate, good's key
    assert!(server.reload_tls().is_err(), "a key of another certificate");
    ca.write_pair("not a certificate", "not a key");
    assert!(server.reload_tls().is_err(), "garbage");
    std::fs::remove_file(ca.cert_path()).expect("remove cert.pem");
    assert!(server.reload_tls().is_err(), "a missing file");
    assert_eq!(server.metrics().tls_reloads(ReloadResult::failed), 3);
    assert_eq!(server.metrics().tls_reloads(ReloadResult::ok), 0);
    assert_eq!(ca.presented(addr).await, good.der, "the old pair stays");
    let view = bot.view().await.expect("bot view");
    assert!(view.connected && view.counters.desyncs == 0);

    // The operator fixes the files: the next reload takes them.
    ca.install(&other);
    server.reload_tls().expect("the fixed pair loads");
    assert_eq!(ca.presented(addr).await, other.der);
    common::assert_clean_end(0, &bot.close().await);
    server.shutdown().await;

    let plain = Server::start(Config::for_tests()).await.expect("start");
    assert!(matches!(
        plain.reload_tls(),
        Err(ticksync_server::net::tls::TlsError::NotConfigured)
    ));
    plain.shutdown().await;
}

#[tokio::test]
async fn tls_watch_reloads_when_the_files_change() {
    let ca = TestCa::new("watch");
    let (old, new) = (ca.issue(), ca.issue());
    ca.install(&old);
    let server = Server::start(Config {
        tls_watch: Duration::from_millis(50),
        ..ca.server_config()
    })
    .await
    .expect("start");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.metrics().tls_reloads(ReloadResult::ok),
        0,
        "no change, no reload"
    );
    ca.install(&new);
    eventually(WAIT, "the watcher to reload", || async {
        server.metrics().tls_reloads(ReloadResult::ok) == 1
    })
    .await;
    assert_eq!(ca.presented(server.local_addr()).await, new.der);
    server.shutdown().await;
}

/// The real binaries: SIGHUP reloads the server's pair (a bad one is logged and
/// refused), and the bot binary verifies wss:// against `--ca-cert`, marks
/// `--insecure` runs, and fails on an untrusted certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_and_the_bot_binary_speaks_wss() {
    let (server_bin, bot_bin) = built_binaries();
    let ca = TestCa::new("sighup");
    let (old, new) = (ca.issue(), ca.issue());
    ca.install(&old);
    let cert = ca.cert_path();
    let key = ca.key_path();
    let mut server = ServerProcess::start(
        &server_bin,
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8 path"),
            "--tls-key",
            key.to_str().expect("utf-8 path"),
        ],
        WAIT,
    );
    assert!(server.output().contains("listening on https://"));
    let addr = server.addr;
    assert_eq!(ca.presented(addr).await, old.der);

    ca.install(&new);
    hangup(&server);
    eventually(WAIT, "SIGHUP to reload the pair", || async {
        ca.presented(addr).await == new.der
    })
    .await;
    ca.write_pair("garbage", "garbage");
    hangup(&server);
    eventually(WAIT, "the refused reload to be logged", || async {
        server.output().contains("TLS reload refused")
    })
    .await;
    assert_eq!(ca.presented(addr).await, new.der, "the good pair stays");
    let (_, metrics) = ca.https_get(addr, "/metrics").await;
    assert!(
        metrics.contains("ticksync_tls_reloads_total{reason=\"ok\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ticksync_tls_reloads_total{reason=\"failed\"} 1"),
        "{metrics}"
    );

    let out = TempDir::new("wss-bot");
    let url = format!("wss://{addr}/ws");
    let ca_path = ca.ca_path();
    let verified = run_bot(
        &bot_bin,
        &url,
        &["--ca-cert", ca_path.to_str().unwrap()],
        &out,
    );
    assert_eq!(verified.0, 0, "{}", verified.2);
    assert_eq!(verified.1["tls"], "verified");
    assert_eq!(verified.1["desyncs"], 0);
    assert_eq!(verified.1["server"]["scraped"], true, "metrics over https");
    let insecure = run_bot(&bot_bin, &url, &["--insecure"], &out);
    assert_eq!(insecure.0, 0, "{}", insecure.2);
    assert_eq!(insecure.1["tls"], "insecure");
    assert!(insecure.1["warnings"].to_string().contains("--insecure"));
    // Without the CA the test certificate is untrusted: no bot gets in.
    let untrusted = run_bot(&bot_bin, &url, &[], &out);
    assert_eq!(untrusted.0, 1, "{}", untrusted.2);
    assert_eq!(untrusted.1["bots_connected"], 0);
    assert!(untrusted.2.contains("certificate"), "{}", untrusted.2);

    assert!(server.terminate(WAIT).success());
}

/// Sends SIGHUP to the server process.
fn hangup(server: &ServerProcess) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -HUP failed");
}

/// Runs 5 bots for 2 s; the exit code, the JSON report and stderr.
fn run_bot(
    bot: &std::path::Path,
    url: &str,
    extra: &[&str],
    out: &TempDir,
) -> (i32, Value, String) {
    let json = out.join("report.json");
    let _ = std::fs::remove_file(&json);
    let mut child = Command::new(bot)
        .args([
            "--url",
            url,
            "--bots",
            "5",
            "--duration",
            "2s",
            "--ramp-up",
            "0s",
        ])
        .args([
            "--no-progress",
            "--json",
            json.to_str().expect("utf-8 path"),
        ])
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the bot binary");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let status = wait_with_limit(&mut child, "the bot binary", Duration::from_secs(60));
    let stderr = reader.join().expect("stderr reader");
    let report = std::fs::read_to_string(&json)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (status.code().unwrap_or(-1), report, stderr)
}
