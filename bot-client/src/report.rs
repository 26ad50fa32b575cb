//! The report of a run: a serde struct written as pretty JSON for scripts and CI,
//! a human summary, and the pass/fail verdict that decides the exit code.

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::metrics::TickStats;

/// p50/p99/max of a latency distribution, in milliseconds (`null` without samples).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// Largest sample.
    pub max: Option<f64>,
    /// Number of samples.
    pub samples: u64,
}

impl LatencyMs {
    /// The quantiles of a histogram of microseconds.
    pub(crate) fn from_micros(h: &Histogram<u64>) -> LatencyMs {
        if h.is_empty() {
            return LatencyMs::default();
        }
        let ms = |us: u64| Some(us as f64 / 1000.0);
        LatencyMs {
            p50: ms(h.value_at_quantile(0.5)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            samples: h.len(),
        }
    }

    /// From a scrape, in seconds.
    fn from_seconds(p50: Option<f64>, p99: Option<f64>, max: Option<f64>) -> LatencyMs {
        let ms = |s: Option<f64>| s.map(|s| s * 1000.0);
        LatencyMs {
            p50: ms(p50),
            p99: ms(p99),
            max: ms(max),
            samples: 0,
        }
    }
}

/// The server's statistics, scraped from its `/metrics` after the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerStats {
    /// Where they were read from.
    pub metrics_url: String,
    /// Whether the scrape succeeded.
    pub scraped: bool,
    /// Ticks recorded by the server's histogram.
    pub ticks: Option<u64>,
    /// Tick duration (estimated from histogram bucket bounds; max from the gauge).
    pub tick_duration_ms: LatencyMs,
    /// Ticks the server missed.
    pub ticks_missed: Option<u64>,
}

impl ServerStats {
    /// Stats from a successful scrape.
    pub fn scraped(metrics_url: String, t: &TickStats) -> ServerStats {
        ServerStats {
            metrics_url,
            scraped: true,
            ticks: t.ticks,
            tick_duration_ms: LatencyMs::from_seconds(t.p50_s, t.p99_s, t.max_s),
            ticks_missed: t.ticks_missed,
        }
    }

    /// Stats of a failed scrape: all `null`.
    pub fn failed(metrics_url: String) -> ServerStats {
        ServerStats {
            metrics_url,
            ..ServerStats::default()
        }
    }
}

/// Everything a run measured. Field names are part of the bot's interface.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    /// Bots the run was asked for.
    pub bots_requested: u64,
    /// Bots welcomed by the server at least once.
    pub bots_connected: u64,
    /// Connection attempts that ended before a `Welcome`.
    pub connect_failures: u64,
    /// Welcomed connections that ended without the bot asking for it.
    pub disconnects: u64,
    /// Successful reconnections.
    pub reconnects: u64,
    /// Reconnections that resumed the session.
    pub resumed: u64,
    /// Snapshots received by all bots.
    pub snapshots_received: u64,
    /// Snapshots received per second, all bots together.
    pub snapshots_per_s: f64,
    /// Snapshots that could not be applied: checksum mismatches, deltas against a
    /// missing baseline, unknown entities.
    pub desyncs: u64,
    /// `Resync` requests sent.
    pub resyncs_requested: u64,
    /// Snapshots whose own position disagreed with the prediction.
    pub mispredictions: u64,
    /// Inputs sent (one per server tick).
    pub inputs_sent: u64,
    /// Overdue inputs skipped because a bot fell behind (an overloaded bot host).
    pub inputs_skipped: u64,
    /// Undecodable or unexpected messages, server `Error`s, text frames.
    pub errors: u64,
    /// Round-trip time of `Ping`/`Pong`.
    pub rtt_ms: LatencyMs,
    /// Time between consecutive snapshots of one bot.
    pub snapshot_interval_ms: LatencyMs,
    /// WebSocket payload bytes received per bot per second.
    pub bytes_per_bot_per_s: f64,
    /// WebSocket payload bytes sent per bot per second.
    pub bytes_sent_per_bot_per_s: f64,
    /// Wall time of the run, ramp-up included, in seconds.
    pub duration_s: f64,
    /// Seed of the bots' random walks.
    pub seed: u64,
    /// Bots allowed not to connect without failing the run.
    pub allow_failures: u64,
    /// The server's tick statistics.
    pub server: ServerStats,
    /// Things worth knowing that did not fail the run (e.g. a failed scrape).
    pub warnings: Vec<String>,
    /// Whether the run passed: no desync and enough bots connected.
    pub passed: bool,
    /// Why it did not pass.
    pub failures: Vec<String>,
}

impl Report {
    /// Sets `passed` and `failures` from the numbers.
    pub fn judge(&mut self) {
        self.failures.clear();
        if self.desyncs > 0 {
            self.failures.push(format!("{} desyncs", self.desyncs));
        }
        let missing = self.bots_requested.saturating_sub(self.bots_connected);
        if missing > self.allow_failures {
            self.failures.push(format!(
                "{missing} of {} bots never connected (allowed: {})",
                self.bots_requested, self.allow_failures
            ));
        }
        self.passed = self.failures.is_empty();
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        // A struct of numbers and strings always serializes.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn opt(v: Option<f64>) -> String {
    v.map_or("n/a".into(), |v| format!("{v:.2}"))
}

impl fmt::Display for LatencyMs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {} / p99 {} / max {} ms",
            opt(self.p50),
            opt(self.p99),
            opt(self.max)
        )
    }
}

impl fmt::Display for Report {
    /// The human summary printed at the end of a run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed { "PASS" } else { "FAIL" };
        writeln!(f, "ticksync-bot: {verdict} after {:.1} s", self.duration_s)?;
        writeln!(
            f,
            "  bots        {} / {} connected, {} connect failures, {} disconnects, {} reconnects ({} resumed)",
            self.bots_connected,
            self.bots_requested,
            self.connect_failures,
            self.disconnects,
            self.reconnects,
            self.resumed
        )?;
        writeln!(
            f,
            "  snapshots   {} received ({:.0}/s), interval {}",
            self.snapshots_received, self.snapshots_per_s, self.snapshot_interval_ms
        )?;
        writeln!(
            f,
            "  correctness {} desyncs, {} mispredictions, {} errors",
            self.desyncs, self.mispredictions, self.errors
        )?;
        writeln!(f, "  rtt         {}", self.rtt_ms)?;
        writeln!(
            f,
            "  traffic     {:.0} B/s in, {:.0} B/s out per bot",
            self.bytes_per_bot_per_s, self.bytes_sent_per_bot_per_s
        )?;
        if self.server.scraped {
            let missed = self
                .server
                .ticks_missed
                .map_or("n/a".into(), |m| m.to_string());
            writeln!(
                f,
                "  server tick {}, {missed} missed",
                self.server.tick_duration_ms
            )?;
        } else {
            writeln!(
                f,
                "  server tick n/a ({} not scraped)",
                self.server.metrics_url
            )?;
        }
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        for why in &self.failures {
            writeln!(f, "  FAILED: {why}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_the_documented_field_names() {
        let mut r = Report {
            bots_requested: 3,
            bots_connected: 3,
            ..Report::default()
        };
        r.judge();
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        for key in [
            "bots_requested",
            "bots_connected",
            "connect_failures",
            "disconnects",
            "snapshots_received",
            "desyncs",
            "mispredictions",
            "rtt_ms",
            "snapshot_interval_ms",
            "bytes_per_bot_per_s",
            "duration_s",
            "server",
            "passed",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        for key in ["p50", "p99", "max"] {
            assert!(v["rtt_ms"].get(key).is_some());
            assert!(v["snapshot_interval_ms"].get(key).is_some());
            assert!(v["server"]["tick_duration_ms"].get(key).is_some());
        }
        assert!(v["server"].get("ticks_missed").is_some());
        // A failed scrape is null, not zero.
        assert!(v["server"]["ticks_missed"].is_null());
        assert!(v["rtt_ms"]["p99"].is_null());
        assert_eq!(v["passed"], true);
    }

    #[test]
    fn judge_fails_on_desync_or_missing_bots() {
        let mut r = Report {
            bots_requested: 10,
            bots_connected: 8,
            allow_failures: 2,
            ..Report::default()
        };
        r.judge();
        assert!(r.passed);
        r.allow_failures = 1;
        r.judge();
        assert!(!r.passed);
        r.allow_failures = 2;
        r.desyncs = 1;
        r.judge();
        assert_eq!(r.failures, ["1 desyncs"]);
        assert!(r.to_string().contains("FAIL"));
    }

    #[test]
    fn latency_from_histogram() {
        let mut h = crate::stats::latency_histogram();
        for us in [1000, 2000, 3000, 40_000] {
            h.record(us).unwrap();
        }
        let l = LatencyMs::from_micros(&h);
        assert_eq!(l.samples, 4);
        assert!((l.p50.unwrap() - 2.0).abs() < 0.01, "{l:?}");
        assert!((l.max.unwrap() - 40.0).abs() < 0.05, "{l:?}");
    }
}
