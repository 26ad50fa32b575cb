//! A connection flood: 10,000 TCP connections opened at once that never send a
//! byte and 2,000 that send half a request head, against a `ticksync-server`
//! process with witness bots (a `ticksync-bot` process) playing. The server keeps
//! ticking for its players (0 desyncs, snapshot interval p99 within 1.5× of a
//! quiet run measured in the same test), drops every flood connection at its
//! handshake timeout, and its RSS grows by a bounded amount per connection
//! (docs/OPERATIONS.md section 2 gives the figure).
//!
//! Server and bots run as child processes: the server's RSS is read cleanly from
//! /proc, and the flood's own CPU cost (opening 12,000 sockets in this process, on
//! a thread at a lower priority, as an attacker on another machine would be) is
//! not charged to the witnesses.
//!
//! A test binary of its own (not part of `tests/adversarial`): cargo runs test
//! binaries one after another, so no other test shares the machine with the
//! snapshot-interval measurement. The quiet reference is measured right before
//! and right after the flood, and the larger of the two is the reference, so a
//! change of the machine's background load during the test (other processes)
//! is not charged to the server.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use common::WAIT;
use common::attack::http_get;
use common::bins::{ServerProcess, TempDir, built_binaries, wait_with_limit};

/// The flood's source address; the witnesses connect from 127.0.0.1.
const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// Connections that never send a byte.
const SILENT: usize = 10_000;
/// Connections that send half a request head, then nothing.
const HALF_HEAD: usize = 2_000;
/// The server's handshake timeout in this test (default 5 s), to keep it short.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);
/// Slack on top of the handshake timeout for a connection's end to reach us: the
/// accept queue under the burst and a loaded 2-core machine.
const CLOSE_SLACK: Duration = Duration::from_secs(2);
/// Connections opened per wave: below the listen backlog (1024, tokio's default).
const WAVE: usize = 250;
/// Witness bots.
const WITNESSES: &str = "8";
const WITNESS_COUNT: f64 = 8.0;
/// Upper bound on the server's RSS growth per flood connection held. Measured:
/// 12-14 KiB with the debug build the suite runs (docs/OPERATIONS.md); the bound
/// leaves room for allocator noise, not for a leak (a buffer per idle socket).
const MAX_RSS_PER_CONNECTION_KIB: f64 = 20.0;

/// Raises this process's open-file limit (inherited by the server it starts) to
/// at least `needed`, up to the hard limit, raising that too when allowed.
fn raise_nofile(needed: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed in.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) },
        0,
        "getrlimit"
    );
    if lim.rlim_cur >= needed {
        return;
    }
    let want = libc::rlimit {
        rlim_cur: needed,
        rlim_max: lim.rlim_max.max(needed),
    };
    // SAFETY: as above.
    let raised = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &want) } == 0;
    assert!(
        raised,
        "the flood test needs {needed} open files but the limit is {} (hard {}) and \
         cannot be raised: run it as root or with `ulimit -Hn {needed}`",
        lim.rlim_cur, lim.rlim_max
    );
}

/// Runs `ticksync-bot` against `url` for `duration` and returns its JSON report.
fn spawn_witnesses(bot: &Path, url: &str, duration: &str, json: &Path) -> Child {
    // At nice -15 (root; elsewhere `nice` warns and runs it as is), above the
    // server's tick threads (-10): the witnesses stand for players on machines
    // of their own, so what they measure is the server, not their share of
    // this machine's two cores.
    Command::new("nice")
        .args(["-n", "-15"])
        .arg(bot)
        .args(["--url", url, "--bots", WITNESSES, "--duration", duration])
        .args(["--ramp-up", "500ms", "--seed", "3", "--no-progress"])
        .arg("--json")
        .arg(json)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ticksync-bot")
}

fn report(mut bot: Child, json: &Path) -> Value {
    let status = wait_with_limit(&mut bot, "the witness bots", Duration::from_secs(60));
    let text = std::fs::read_to_string(json).expect("the bot's JSON report");
    let report: Value = serde_json::from_str(&text).expect("JSON report");
    assert!(status.success(), "witnesses failed ({status}): {report:#}");
    assert_eq!(report["desyncs"], 0, "{report:#}");
    report
}

/// The witnesses alone for 6 s: their report.
async fn quiet_run(bot: &Path, url: &str, json: std::path::PathBuf) -> Value {
    let child = spawn_witnesses(bot, url, "6s", &json);
    tokio::task::spawn_blocking(move || report(child, &json))
        .await
        .expect("quiet run")
}

fn interval_p99(report: &Value) -> f64 {
    report
        .pointer("/snapshot_interval_ms/p99")
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no snapshot interval p99: {report:#}"))
}

/// A value of the server's `/metrics`.
async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (status, text) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{series} not in /metrics"))
}

/// Connections the server has accepted so far, give or take a constant: those
/// open now plus those dropped at the handshake timeout.
async fn accepted(addr: SocketAddr) -> f64 {
    metric(addr, "ticksync_tcp_connections").await
        + metric(
            addr,
            "ticksync_disconnects_total{reason=\"handshake_timeout\"}",
        )
        .await
}

/// What the flood saw.
#[derive(Debug, Default)]
struct Flooded {
    /// Connections opened (TCP handshake done).
    opened: usize,
    /// Connections the server dropped, by the deadline.
    dropped: usize,
    /// The longest time a dropped connection stayed open.
    longest: Duration,
    /// How long the burst of connects took.
    connecting: Duration,
}

/// Opens the flood from a thread of its own at nice 19 (the attacker's own CPU
/// cost is not what this test measures), and waits until the server has dropped
/// every connection or `deadline` passed.
fn flood(addr: SocketAddr, deadline: Duration) -> std::thread::JoinHandle<Flooded> {
    std::thread::spawn(move || {
        // SAFETY: setpriority on this thread's own id only changes its nice value.
        unsafe {
            libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19);
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("flood runtime");
        rt.block_on(async move {
            let base = accepted(addr).await;
            let start = Instant::now();
            let (opened_tx, mut opened_rx) = tokio::sync::mpsc::unbounded_channel();
            let mut set = JoinSet::new();
            let mut out = Flooded::default();
            // In waves no larger than the server's listen backlog, each as soon
            // as the last one is in: a burst beyond the kernel's accept queue
            // only measures SYN retransmission, not the server.
            for wave in (0..SILENT + HALF_HEAD).collect::<Vec<_>>().chunks(WAVE) {
                for &i in wave {
                    let opened_tx = opened_tx.clone();
                    set.spawn(async move {
                        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
                        socket
                            .bind(SocketAddr::new(ATTACKER, 0))
                            .expect("bind 127.0.0.2");
                        let mut s = socket.connect(addr).await.expect("flood connect");
                        let opened = Instant::now();
                        let _ = opened_tx.send(());
                        if i >= SILENT {
                            s.write_all(
                                b"GET /ws HTTP/1.1\r\nHost: flood\r\nUpgrade: websocket\r\n",
                            )
                            .await
                            .expect("half a request head");
                        }
                        // The server answers nothing: the read ends when it drops us.
                        let mut buf = [0u8; 64];
                        let n = s.read(&mut buf).await.unwrap_or(0);
                        assert_eq!(n, 0, "the server answered a flood connection");
                        opened.elapsed()
                    });
                }
                let wave_end = out.opened + wave.len();
                while out.opened < wave_end {
                    match tokio::time::timeout(WAIT, opened_rx.recv()).await {
                        Ok(Some(())) => out.opened += 1,
                        _ => panic!("flood connections stopped opening at {}", out.opened),
                    }
                }
                // The next wave once the server has accepted this one.
                // Give or take the witnesses, whose run may end meanwhile.
                let target = base + out.opened as f64 - 2.0 * WITNESS_COUNT;
                let wait_until = Instant::now() + WAIT;
                loop {
                    let now = accepted(addr).await;
                    if now >= target {
                        break;
                    }
                    assert!(
                        Instant::now() < wait_until,
                        "the server accepted {} of {} flood connections",
                        now - base,
                        out.opened
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            out.connecting = start.elapsed();
            drop(opened_tx);
            let end = tokio::time::Instant::now() + deadline;
            loop {
                tokio::select! {
                    done = set.join_next() => match done {
                        Some(r) => {
                            out.dropped += 1;
                            out.longest = out.longest.max(r.expect("flood task"));
                        }
                        None => break,
                    },
                    _ = tokio::time::sleep_until(end) => break,
                }
            }
            set.abort_all();
            out
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_is_dropped_at_the_handshake_timeout_and_players_play_on() {
    let total = SILENT + HALF_HEAD;
    raise_nofile(total as u64 + 1_000);
    let (server_bin, bot_bin) = tokio::task::spawn_blocking(built_binaries)
        .await
        .expect("build task");
    let dir = TempDir::new("flood");
    let timeout = format!("{}s", HANDSHAKE_TIMEOUT.as_secs());
    let server = ServerProcess::start(
        &server_bin,
        &["--handshake-timeout", &timeout],
        Duration::from_secs(30),
    );
    let addr = server.addr;

    // The quiet run: the witnesses' snapshot intervals without a flood.
    let quiet_before = quiet_run(&bot_bin, &server.ws_url(), dir.join("quiet-before.json")).await;

    // The flood run: the same witnesses, the flood 1.5 s in (it lasts about
    // 3 + 2 s on a quiet machine: opening, then the handshake timeout).
    let flood_json = dir.join("flood.json");
    let bots = spawn_witnesses(&bot_bin, &server.ws_url(), "12s", &flood_json);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let open_before = metric(addr, "ticksync_tcp_connections").await;
    let rss_before = server.rss_kib();
    let flooding = flood(addr, HANDSHAKE_TIMEOUT + WAIT);
    // Sample while the flood lasts: the most connections held at once, and the
    // server's RSS then.
    let (mut peak_open, mut rss_at_peak) = (open_before, rss_before);
    while !flooding.is_finished() {
        let open = metric(addr, "ticksync_tcp_connections").await;
        let rss = server.rss_kib();
        if open > peak_open {
            (peak_open, rss_at_peak) = (open, rss);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let flooded = tokio::task::spawn_blocking(move || flooding.join().expect("flood thread"))
        .await
        .expect("join");
    let during = tokio::task::spawn_blocking(move || report(bots, &flood_json))
        .await
        .expect("flood run");

    // The quiet run again, once the flood is gone.
    let quiet_after = quiet_run(&bot_bin, &server.ws_url(), dir.join("quiet-after.json")).await;

    let held = peak_open - open_before;
    let per_connection = rss_at_peak.saturating_sub(rss_before) as f64 / held.max(1.0);
    let p99_quiet = interval_p99(&quiet_before).max(interval_p99(&quiet_after));
    let p99_flood = interval_p99(&during);
    eprintln!(
        "flood: {flooded:?}, at most {held} held at once; \
         server RSS {rss_before} KiB -> {rss_at_peak} KiB = {per_connection:.2} KiB per connection; \
         witness snapshot interval p99 {p99_quiet:.1} ms quiet, {p99_flood:.1} ms flooded ({:.2}x)",
        p99_flood / p99_quiet
    );
    assert_eq!(flooded.opened, total, "every flood connection was opened");
    assert_eq!(flooded.dropped, total, "every flood connection was dropped");
    assert!(
        held >= 1_000.0,
        "the server held {held} flood connections at most"
    );
    assert!(
        flooded.longest <= HANDSHAKE_TIMEOUT + CLOSE_SLACK,
        "a flood connection stayed open {:?} (handshake timeout {HANDSHAKE_TIMEOUT:?})",
        flooded.longest
    );
    assert!(
        p99_flood <= 1.5 * p99_quiet,
        "witness snapshot interval p99 {p99_flood:.1} ms under the flood, {p99_quiet:.1} ms quiet"
    );
    assert!(
        per_connection <= MAX_RSS_PER_CONNECTION_KIB,
        "RSS grew {per_connection:.2} KiB per flood connection"
    );
    let timeouts = metric(
        addr,
        "ticksync_disconnects_total{reason=\"handshake_timeout\"}",
    )
    .await;
    assert!(
        timeouts >= total as f64,
        "{timeouts} handshake timeouts counted"
    );
    // Only the scrape itself is left.
    assert_eq!(metric(addr, "ticksync_tcp_connections").await, 1.0);
    assert_eq!(metric(addr, "ticksync_connections").await, 0.0);
    let mut server = server;
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(20)))
        .await
        .expect("terminate");
    assert!(status.success(), "the server exited with {status}");
}
