//! A whole run: ramp N bots up, report progress every second, stop them at the
//! deadline, scrape the server's metrics and build the [`Report`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep_until, timeout_at};

use crate::bot::{BotHandle, BotOutcome, spawn};
use crate::config::BotConfig;
use crate::connection::Command;
use crate::error::ConfigError;
use crate::metrics;
use crate::report::{LatencyMs, Listing, Presence, Report, ServerStats, TlsMode};
use crate::stats::SharedStats;

/// How long the bots get to close cleanly at the end of a run.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// How long the metrics scrape may take.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(3);

/// The state of a run, once a second.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Bots the run was asked for.
    pub bots_requested: u64,
    /// Bots spawned so far (the ramp-up).
    pub bots_started: u64,
    /// Bots with a welcomed connection now.
    pub bots_connected: u64,
    /// Snapshots received per second, all bots, over the last interval.
    pub snapshots_per_s: f64,
    /// 99th percentile RTT over the last interval.
    pub rtt_p99: Option<Duration>,
    /// Desyncs so far.
    pub desyncs: u64,
    /// Mispredictions so far.
    pub mispredictions: u64,
    /// Errors so far: failed connections, disconnects, bad messages, server errors.
    pub errors: u64,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rtt = self.rtt_p99.map_or("n/a".into(), |d| {
            format!("{:.2} ms", d.as_secs_f64() * 1000.0)
        });
        write!(
            f,
            "[{:>5.1}s] bots {}/{} connected ({} started) | {:.0} snapshots/s | rtt p99 {rtt} | {} desyncs | {} mispredictions | {} errors",
            self.elapsed.as_secs_f64(),
            self.bots_connected,
            self.bots_requested,
            self.bots_started,
            self.snapshots_per_s,
            self.desyncs,
            self.mispredictions,
            self.errors
        )
    }
}

/// Runs the bots `config` describes to the end and reports what they measured.
pub async fn run(config: BotConfig) -> Result<Report, ConfigError> {
    run_with_progress(config, |_| {}).await
}

/// Like [`run`], calling `on_progress` about once a second.
pub async fn run_with_progress(
    config: BotConfig,
    mut on_progress: impl FnMut(&Progress),
) -> Result<Report, ConfigError> {
    config.validate()?;
    let metrics_url = config.metrics_url()?;
    let tls = config.tls_client()?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let n = u64::from(config.bots);
    // A baseline, so the report covers this run's ticks only.
    let baseline = metrics::scrape(&metrics_url, tls.as_ref(), SCRAPE_TIMEOUT).await;
    let stats = Arc::new(SharedStats::new());
    let start = Instant::now();
    let deadline = start + config.duration;
    let mut handles: Vec<BotHandle> = Vec::with_capacity(config.bots as usize);
    let mut ticker = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last = (start, 0u64);
    let spawn_at = |i: u64| start + config.ramp_up.mul_f64(i as f64 / n as f64);
    loop {
        let started = handles.len() as u64;
        tokio::select! {
            _ = sleep_until(spawn_at(started)), if started < n => {
                let now = Instant::now();
                while (handles.len() as u64) < n && spawn_at(handles.len() as u64) <= now {
                    let opts = config.bot_options(handles.len() as u64, seed, tls.as_ref());
                    handles.push(spawn(opts, Arc::clone(&stats), None));
                }
            }
            _ = ticker.tick() => {
                let now = Instant::now();
                let snapshots = stats.snapshots.load(Relaxed);
                let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
                on_progress(&Progress {
                    elapsed: now.duration_since(start),
                    bots_requested: n,
                    bots_started: handles.len() as u64,
                    bots_connected: stats.connected_now.load(Relaxed),
                    snapshots_per_s: (snapshots - last.1) as f64 / secs,
                    rtt_p99: stats.take_rtt_window_p99(),
                    desyncs: stats.desyncs.load(Relaxed),
                    mispredictions: stats.mispredictions.load(Relaxed),
                    errors: stats.errors.load(Relaxed)
                        + stats.connect_failures.load(Relaxed)
                        + stats.disconnects.load(Relaxed),
                });
                last = (now, snapshots);
            }
            _ = sleep_until(deadline) => break,
        }
    }
    let duration = start.elapsed();
    let outcomes = stop_all(handles).await;
    let scrape = metrics::scrape(&metrics_url, tls.as_ref(), SCRAPE_TIMEOUT).await;
    let mut report = build_report(&config, seed, &stats, duration);
    report.tls = match &tls {
        _ if !config.target()?.tls => TlsMode::Off,
        Some(t) if t.is_insecure() => TlsMode::Insecure,
        _ => TlsMode::Verified,
    };
    if report.tls == TlsMode::Insecure {
        report.warnings.push(
            "--insecure: the server's certificate was not verified (test servers only)".into(),
        );
    }
    // Bots that did not stop in time are left out (warned below): their
    // connection time is unknown.
    let presence: Vec<Presence> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| {
            let o = o.as_ref()?;
            Some(Presence {
                welcomed: o.connected,
                connected_at_stop: o.connected_at_stop,
                connected: o.connected_for,
                in_run: duration.saturating_sub(spawn_at(i as u64).duration_since(start)),
            })
        })
        .collect();
    report.count_presence(&presence, config.max_disconnected_share);
    let stragglers = outcomes.iter().filter(|o| o.is_none()).count();
    if stragglers > 0 {
        report.warnings.push(format!(
            "{stragglers} bots did not stop within {STOP_GRACE:?}; their connected time is not judged"
        ));
    }
    match scrape {
        Ok(end) => {
            if let Err(e) = &baseline {
                report.warnings.push(format!(
                    "no baseline scrape of {metrics_url} ({e}): server stats cover its whole life"
                ));
            }
            let t = end.tick_stats(baseline.as_ref().ok());
            let missing = t.missing();
            if !missing.is_empty() {
                report.warnings.push(format!(
                    "{metrics_url} does not export {}",
                    missing.join(", ")
                ));
            }
            report.server = ServerStats::scraped(metrics_url, &t);
        }
        Err(e) => {
            tracing::warn!(url = %metrics_url, error = %e, "could not scrape server metrics");
            report
                .warnings
                .push(format!("could not scrape {metrics_url}: {e}"));
            report.server = ServerStats::failed(metrics_url);
        }
    }
    report.judge();
    Ok(report)
}

/// Asks every bot to close cleanly and waits for them (bounded by [`STOP_GRACE`]);
/// their outcomes in spawn order, `None` for a bot that did not stop in time.
async fn stop_all(handles: Vec<BotHandle>) -> Vec<Option<BotOutcome>> {
    for h in &handles {
        let _ = h.commands.send(Command::Close);
    }
    let grace = Instant::now() + STOP_GRACE;
    let mut outcomes = Vec::with_capacity(handles.len());
    for h in handles {
        let mut task = h.task;
        match timeout_at(grace, &mut task).await {
            Ok(outcome) => outcomes.push(outcome.ok()),
            Err(_) => {
                task.abort();
                outcomes.push(None);
            }
        }
    }
    let stragglers = outcomes.iter().filter(|o| o.is_none()).count();
    if stragglers > 0 {
        tracing::warn!(stragglers, "bots did not close within the grace period");
    }
    outcomes
}

fn build_report(config: &BotConfig, seed: u64, stats: &SharedStats, duration: Duration) -> Report {
    let h = stats.hist.lock().unwrap_or_else(|p| p.into_inner());
    let secs = duration.as_secs_f64().max(1e-3);
    let connected_secs = stats.connected_us.load(Relaxed) as f64 / 1e6;
    let per_bot_s = |bytes: u64| {
        if connected_secs > 0.0 {
            bytes as f64 / connected_secs
        } else {
            0.0
        }
    };
    let mut report = Report {
        bots_requested: u64::from(config.bots),
        bots_connected: stats.bots_connected.load(Relaxed),
        bots_verifying: config.bots_verifying(),
        connect_failures: stats.connect_failures.load(Relaxed),
        disconnects: stats.disconnects.load(Relaxed),
        reconnects: stats.reconnects.load(Relaxed),
        resumed: stats.resumed.load(Relaxed),
        resumes_expired: stats.resumes_expired.load(Relaxed),
        snapshots_received: stats.snapshots.load(Relaxed),
        snapshots_per_s: stats.snapshots.load(Relaxed) as f64 / secs,
        desyncs: stats.desyncs.load(Relaxed),
        resyncs_requested: stats.resyncs_requested.load(Relaxed),
        mispredictions: stats.mispredictions.load(Relaxed),
        inputs_sent: stats.inputs_sent.load(Relaxed),
        inputs_skipped: stats.inputs_skipped.load(Relaxed),
        errors: stats.errors.load(Relaxed),
        rtt_ms: LatencyMs::from_micros(&h.rtt),
        rooms_joined: stats.rooms.lock().map_or(0, |r| r.len() as u64),
        matches_played: stats.matches.load(Relaxed),
        matchmake_ms: LatencyMs::from_micros(&h.matchmake),
        drained: stats.drained.load(Relaxed),
        rematchmades: stats.rematchmades.load(Relaxed),
        rematchmake_ms: LatencyMs::from_micros(&h.rematchmake),
        listing: Listing::from_sums(
            stats.one_tick_deltas.load(Relaxed),
            stats.entities_in_one_tick_deltas.load(Relaxed),
            stats.changed_entries.load(Relaxed),
            stats.corrected_entries.load(Relaxed),
        ),
        snapshot_interval_ms: LatencyMs::from_micros(&h.snapshot_interval),
        bytes_per_bot_per_s: per_bot_s(stats.bytes_received.load(Relaxed)),
        bytes_sent_per_bot_per_s: per_bot_s(stats.bytes_sent.load(Relaxed)),
        duration_s: secs,
        seed,
        allow_failures: u64::from(config.allow_failures),
        ..Report::default()
    };
    if report.errors > 0 {
        report.warnings.push(format!(
            "{} errors (bad or unexpected server messages, server Error replies)",
            report.errors
        ));
    }
    if report.inputs_skipped > 0 {
        report.warnings.push(format!(
            "{} inputs skipped: bots fell more than {} ticks behind (host overloaded)",
            report.inputs_skipped,
            crate::session::MAX_INPUT_BACKLOG
        ));
    }
    if report.mispredictions > 0 {
        report.warnings.push(format!(
            "{} mispredictions: the server dropped or rejected inputs",
            report.mispredictions
        ));
    }
    report
}
