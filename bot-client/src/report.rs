//! The report of a run: a serde struct written as pretty JSON for scripts and CI,
//! a human summary, and the pass/fail verdict that decides the exit code.

use std::fmt;
use std::time::Duration;

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
    /// Rooms the server opened during the run.
    pub rooms_created: Option<u64>,
    /// Rooms the server closed during the run.
    pub rooms_closed: Option<u64>,
    /// Rooms open when the run ended (before idle rooms closed).
    pub rooms_open: Option<u64>,
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
            rooms_created: t.rooms_created,
            rooms_closed: t.rooms_closed,
            rooms_open: t.rooms_open,
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

/// How one bot was there during a run, for the verdict.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Presence {
    /// Whether the server ever welcomed it.
    pub welcomed: bool,
    /// Whether it was playing when the run stopped it.
    pub connected_at_stop: bool,
    /// How long its connections were welcomed.
    pub connected: Duration,
    /// Its time in the run: from its start in the ramp-up to the end.
    pub in_run: Duration,
}

impl Presence {
    /// The share of its time in the run it was connected (0..=1).
    pub fn share(&self) -> f64 {
        if self.in_run.is_zero() {
            return 0.0;
        }
        (self.connected.as_secs_f64() / self.in_run.as_secs_f64()).min(1.0)
    }
}

/// How long bots were connected, as a share of each bot's time in the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ConnectedShare {
    /// The least-connected bot's share (0..=1; `null` without bots).
    pub min: Option<f64>,
    /// The mean share over all bots.
    pub mean: Option<f64>,
    /// Mean connected time per bot, in seconds.
    pub mean_s: Option<f64>,
}

/// How the bots' connections were secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain `ws://`.
    #[default]
    Off,
    /// `wss://`, the server's certificate verified.
    Verified,
    /// `wss://` with `--insecure`: the server's certificate was not verified.
    Insecure,
}

impl fmt::Display for TlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsMode::Off => "off (ws://)",
            TlsMode::Verified => "wss://, certificate verified",
            TlsMode::Insecure => "wss://, INSECURE: certificate not verified (--insecure)",
        })
    }
}

/// What the verifying bots' one-tick deltas listed (wire v2): who costs bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Listing {
    /// One-tick deltas applied by verifying bots (deltas spanning skipped ticks
    /// are not counted: they list several ticks' changes).
    pub deltas: u64,
    /// Entities held after a delta, on average.
    pub entities_per_delta: f64,
    /// `changed` entries (turns, starts, stops) per delta.
    pub changed_per_delta: f64,
    /// `corrected` entries (a player off its velocity: a late or doubled input)
    /// per delta.
    pub corrected_per_delta: f64,
    /// Corrected entries per entity held and tick: the hidden cost of input jitter.
    pub corrected_share_of_entities: f64,
    /// Corrected entries among all listed ones.
    pub corrected_share_of_listed: f64,
}

impl Listing {
    /// From the sums of the verifying bots' counters.
    pub fn from_sums(deltas: u64, entities: u64, changed: u64, corrected: u64) -> Listing {
        let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Listing {
            deltas,
            entities_per_delta: ratio(entities, deltas),
            changed_per_delta: ratio(changed, deltas),
            corrected_per_delta: ratio(corrected, deltas),
            corrected_share_of_entities: ratio(corrected, entities),
            corrected_share_of_listed: ratio(corrected, changed + corrected),
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
    /// Bots that decode, apply and verify every snapshot and predict their player
    /// (the first `--verify` ones; all by default). The others only count
    /// snapshots and bytes: desyncs, mispredictions and `listing` come from the
    /// verifying bots alone.
    pub bots_verifying: u64,
    /// Connection attempts that ended before a `Welcome`.
    pub connect_failures: u64,
    /// Welcomed connections that ended without the bot asking for it.
    pub disconnects: u64,
    /// Bots that connected but were not connected when the run ended (their
    /// connection was lost and not re-established). Each is a failed bot.
    pub bots_ended_disconnected: u64,
    /// Bots that ended connected but were disconnected for more than
    /// `max_disconnected_share` of their time in the run. Each is a failed bot.
    pub bots_disconnected_too_long: u64,
    /// The share of its time a bot may spend disconnected before it fails.
    pub max_disconnected_share: f64,
    /// How long bots were connected.
    pub connected_share: ConnectedShare,
    /// Successful reconnections.
    pub reconnects: u64,
    /// Reconnections that resumed the session.
    pub resumed: u64,
    /// Lost sessions the bot gave up without trying to resume: their
    /// `Welcome.resume_grace_ms` was over (the next join was fresh).
    pub resumes_expired: u64,
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
    /// Distinct rooms the bots were welcomed in after `--matchmake` (0 without).
    pub rooms_joined: u64,
    /// `POST /matchmake` latency (`--matchmake`).
    pub matchmake_ms: LatencyMs,
    /// Matches played to their end (`--churn`): each bot left its room at
    /// the match's end and matchmade again.
    pub matches_played: u64,
    /// Sessions the server ended with close 1001 (it drained or shut down),
    /// after its last snapshots.
    pub drained: u64,
    /// Bots that lost their room (drain, room closed, member gone) and played
    /// again in another after a new matchmake (`--matchmake --reconnect`).
    pub rematchmades: u64,
    /// From losing the room to playing in the new one.
    pub rematchmake_ms: LatencyMs,
    /// What the verifying bots' deltas listed.
    pub listing: Listing,
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
    /// Failed bots (never connected, ended disconnected, or disconnected too long)
    /// allowed without failing the run.
    pub allow_failures: u64,
    /// The server's tick statistics.
    pub server: ServerStats,
    /// TLS of the bots' connections: `"off"`, `"verified"` or `"insecure"`.
    pub tls: TlsMode,
    /// Things worth knowing that did not fail the run (e.g. a failed scrape).
    pub warnings: Vec<String>,
    /// Whether the run passed: no desync and at most `allow_failures` failed bots.
    pub passed: bool,
    /// Why it did not pass.
    pub failures: Vec<String>,
}

impl Report {
    /// Counts the bots that ended the run disconnected or were disconnected for
    /// more than `max_disconnected_share` of their time, and how long bots were
    /// connected. Bots never welcomed are counted by [`Report::judge`] already.
    pub fn count_presence(&mut self, bots: &[Presence], max_disconnected_share: f64) {
        self.max_disconnected_share = max_disconnected_share;
        let connected = bots.iter().filter(|b| b.welcomed);
        self.bots_ended_disconnected =
            connected.clone().filter(|b| !b.connected_at_stop).count() as u64;
        self.bots_disconnected_too_long = connected
            .filter(|b| b.connected_at_stop && 1.0 - b.share() > max_disconnected_share)
            .count() as u64;
        let n = bots.len() as f64;
        self.connected_share = ConnectedShare {
            min: bots.iter().map(Presence::share).reduce(f64::min),
            mean: (!bots.is_empty()).then(|| bots.iter().map(Presence::share).sum::<f64>() / n),
            mean_s: (!bots.is_empty())
                .then(|| bots.iter().map(|b| b.connected.as_secs_f64()).sum::<f64>() / n),
        };
    }

    /// Sets `passed` and `failures` from the numbers: any desync fails the run,
    /// and so do more than `allow_failures` failed bots (never connected, ended
    /// the run disconnected, or disconnected for too long).
    pub fn judge(&mut self) {
        self.failures.clear();
        if self.desyncs > 0 {
            self.failures.push(format!("{} desyncs", self.desyncs));
        }
        let never = self.bots_requested.saturating_sub(self.bots_connected);
        let failed = never + self.bots_ended_disconnected + self.bots_disconnected_too_long;
        if failed > self.allow_failures {
            self.failures.push(format!(
                "{failed} of {} bots failed: {never} never connected, {} ended the run disconnected, \
                 {} were disconnected for more than {:.0} % of their time (allowed: {})",
                self.bots_requested,
                self.bots_ended_disconnected,
                self.bots_disconnected_too_long,
                self.max_disconnected_share * 100.0,
                self.allow_failures
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

fn opt_u64(v: Option<u64>) -> String {
    v.map_or("n/a".into(), |v| v.to_string())
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
            "  bots        {} / {} connected, {} connect failures, {} disconnects, {} reconnects ({} resumed, {} past the resume grace)",
            self.bots_connected,
            self.bots_requested,
            self.connect_failures,
            self.disconnects,
            self.reconnects,
            self.resumed,
            self.resumes_expired
        )?;
        let pct = |v: Option<f64>| v.map_or("n/a".into(), |v| format!("{:.1} %", v * 100.0));
        writeln!(
            f,
            "  connected   mean {} / min {} of each bot's time ({} s mean); {} ended disconnected, {} disconnected > {:.0} %",
            pct(self.connected_share.mean),
            pct(self.connected_share.min),
            opt(self.connected_share.mean_s),
            self.bots_ended_disconnected,
            self.bots_disconnected_too_long,
            self.max_disconnected_share * 100.0
        )?;
        writeln!(
            f,
            "  snapshots   {} received ({:.0}/s), interval {}",
            self.snapshots_received, self.snapshots_per_s, self.snapshot_interval_ms
        )?;
        writeln!(
            f,
            "  verified by {} of {} bots (the others count snapshots and bytes only)",
            self.bots_verifying, self.bots_requested
        )?;
        writeln!(
            f,
            "  correctness {} desyncs, {} mispredictions, {} errors",
            self.desyncs, self.mispredictions, self.errors
        )?;
        let l = &self.listing;
        writeln!(
            f,
            "  listing     per one-tick delta: {:.1} entities held, {:.2} changed, {:.2} corrected \
             ({:.2} % of entities, {:.0} % of entries: late or doubled inputs)",
            l.entities_per_delta,
            l.changed_per_delta,
            l.corrected_per_delta,
            100.0 * l.corrected_share_of_entities,
            100.0 * l.corrected_share_of_listed,
        )?;
        writeln!(f, "  rtt         {}", self.rtt_ms)?;
        if self.rooms_joined > 0 {
            writeln!(
                f,
                "  matchmake   {} rooms joined, latency {}",
                self.rooms_joined, self.matchmake_ms
            )?;
            if self.matches_played > 0 {
                writeln!(
                    f,
                    "  churn       {} matches played; server rooms: {} opened, {} closed, {} open at the end",
                    self.matches_played,
                    opt_u64(self.server.rooms_created),
                    opt_u64(self.server.rooms_closed),
                    opt_u64(self.server.rooms_open)
                )?;
            }
            if self.drained > 0 {
                writeln!(
                    f,
                    "  drained     {} sessions closed with 1001",
                    self.drained
                )?;
            }
            if self.rematchmades > 0 {
                writeln!(
                    f,
                    "  rematchmade {} bots lost their room and play again, after {}",
                    self.rematchmades, self.rematchmake_ms
                )?;
            }
        }
        writeln!(f, "  tls         {}", self.tls)?;
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
mod tests;
