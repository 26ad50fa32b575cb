//! The bot run's configuration: one clap struct (flags and `TICKSYNC_BOT_*`
//! environment variables) that is also a plain struct with `Default` for tests,
//! plus its validation.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use ticksync_protocol::MAX_NAME_LEN;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::bot::{Backoff, BotOptions};
use crate::error::ConfigError;
use crate::matchmake::Matchmaking;
use crate::tls::TlsClient;

/// Most bots one run may start.
pub const MAX_BOTS: u32 = 100_000;

/// Highest accepted `--input-rate`, in messages per second.
pub const MAX_INPUT_RATE: u32 = 1000;

/// Which tokio runtime the binary runs the bots on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum RuntimeKind {
    /// Everything on one thread (one core): the cheapest way to run many bots.
    #[default]
    CurrentThread,
    /// tokio's work-stealing runtime on all cores.
    MultiThread,
}

/// Configuration of a bot run.
#[derive(Debug, Clone, PartialEq, Parser)]
#[command(
    name = "ticksync-bot",
    version,
    about = "Headless Ticksync bots for load and correctness testing"
)]
pub struct BotConfig {
    /// WebSocket URL of the server: ws://HOST:PORT/ws, or wss:// for TLS.
    #[arg(
        long,
        env = "TICKSYNC_BOT_URL",
        default_value = "ws://127.0.0.1:7777/ws"
    )]
    pub url: String,
    /// Number of bots to run.
    #[arg(long, env = "TICKSYNC_BOT_BOTS", default_value_t = 10)]
    pub bots: u32,
    /// Length of the run, ramp-up included (e.g. 30s, 2m).
    #[arg(long, env = "TICKSYNC_BOT_DURATION", default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Spread the bots' connections evenly over this time (e.g. 5s, 0s).
    #[arg(long, env = "TICKSYNC_BOT_RAMP_UP", default_value = "1s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// Input messages per second per bot; each carries the inputs of the server
    /// ticks since the previous one.
    #[arg(long, env = "TICKSYNC_BOT_INPUT_RATE", default_value_t = 30)]
    pub input_rate: u32,
    /// Time between two pings of a bot.
    #[arg(long, env = "TICKSYNC_BOT_PING_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub ping_interval: Duration,
    /// Seed of the bots' random walks (random when not given; the report names it).
    #[arg(long, env = "TICKSYNC_BOT_SEED")]
    pub seed: Option<u64>,
    /// Write the JSON report to this file.
    #[arg(long, env = "TICKSYNC_BOT_JSON")]
    pub json: Option<PathBuf>,
    /// Prometheus endpoint to read the server's tick statistics from
    /// (default: http://HOST:PORT/metrics of --url).
    #[arg(long, env = "TICKSYNC_BOT_METRICS_URL")]
    pub metrics_url: Option<String>,
    /// Succeed even if up to this many bots failed: never connected, ended the
    /// run disconnected, or were disconnected for more than
    /// --max-disconnected-share of their time in the run.
    #[arg(long, env = "TICKSYNC_BOT_ALLOW_FAILURES", default_value_t = 0)]
    pub allow_failures: u32,
    /// The share (0..=1) of its time in the run a bot may spend disconnected
    /// (reconnecting, or gone) before it counts as failed.
    #[arg(
        long,
        env = "TICKSYNC_BOT_MAX_DISCONNECTED_SHARE",
        default_value_t = 0.1
    )]
    pub max_disconnected_share: f64,
    /// Runtime the bots run on.
    #[arg(long, env = "TICKSYNC_BOT_RUNTIME", value_enum, default_value_t = RuntimeKind::CurrentThread)]
    pub runtime: RuntimeKind,
    /// Reconnect dropped bots (resuming their session) with exponential backoff.
    #[arg(long, env = "TICKSYNC_BOT_RECONNECT")]
    pub reconnect: bool,
    /// First reconnect delay; it doubles per failed attempt, with jitter.
    #[arg(long, env = "TICKSYNC_BOT_RECONNECT_MIN_BACKOFF", default_value = "100ms", value_parser = parse_duration)]
    pub reconnect_min_backoff: Duration,
    /// Longest reconnect delay.
    #[arg(long, env = "TICKSYNC_BOT_RECONNECT_MAX_BACKOFF", default_value = "5s", value_parser = parse_duration)]
    pub reconnect_max_backoff: Duration,
    /// Give up on a connection attempt (TCP, upgrade, Welcome) after this long.
    #[arg(long, env = "TICKSYNC_BOT_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Bot names are PREFIX-INDEX.
    #[arg(long, env = "TICKSYNC_BOT_NAME_PREFIX", default_value = "bot")]
    pub name_prefix: String,
    /// Join token to send in Hello (for servers with an auth secret); with
    /// --matchmake it goes to POST /matchmake as the Bearer token instead.
    #[arg(long, env = "TICKSYNC_BOT_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,
    /// Each bot asks POST /matchmake (the host and port of --url) for a seat
    /// before it joins, and connects where the answer says.
    #[arg(long, env = "TICKSYNC_BOT_MATCHMAKE")]
    pub matchmake: bool,
    /// With --matchmake: the room kind to ask for (default: the server's).
    #[arg(long, env = "TICKSYNC_BOT_KIND", requires = "matchmake")]
    pub kind: Option<String>,
    /// With --matchmake: room churn. A match is the first this-long of its
    /// room (by the room's tick, e.g. 3s); at its end every bot in the room
    /// leaves (close 1000) and matchmakes again, so the server opens and
    /// closes rooms all the time. The report counts matches played and the
    /// rooms the server opened and closed.
    #[arg(long, env = "TICKSYNC_BOT_CHURN", requires = "matchmake", value_parser = parse_duration)]
    pub churn: Option<Duration>,

    /// No live progress line.
    #[arg(long, env = "TICKSYNC_BOT_NO_PROGRESS")]
    pub no_progress: bool,
    /// For wss://: also trust the PEM certificates in this file (a self-signed
    /// server certificate or a private CA), besides the system's roots.
    #[arg(long, env = "TICKSYNC_BOT_CA_CERT", conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// For wss://: accept any server certificate. Test servers only; the report
    /// marks the run `"tls": "insecure"`.
    #[arg(long, env = "TICKSYNC_BOT_INSECURE")]
    pub insecure: bool,
    /// Only the first N bots decode, apply and verify every snapshot and predict
    /// their player; the others count snapshots and bytes, send inputs and pings,
    /// and skip the rest, so one machine can drive more bots (default: all verify).
    #[arg(long, env = "TICKSYNC_BOT_VERIFY", value_name = "N")]
    pub verify: Option<u32>,
}

impl Default for BotConfig {
    fn default() -> BotConfig {
        BotConfig {
            url: "ws://127.0.0.1:7777/ws".into(),
            bots: 10,
            duration: Duration::from_secs(10),
            ramp_up: Duration::from_secs(1),
            input_rate: 30,
            ping_interval: Duration::from_secs(1),
            seed: None,
            json: None,
            metrics_url: None,
            allow_failures: 0,
            max_disconnected_share: 0.1,
            runtime: RuntimeKind::CurrentThread,
            reconnect: false,
            reconnect_min_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            name_prefix: "bot".into(),
            auth_token: None,
            matchmake: false,
            kind: None,
            verify: None,
            churn: None,
            no_progress: false,
            ca_cert: None,
            insecure: false,
        }
    }
}

/// Where the server is, derived from `--url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Whether the connection is TLS (`wss://`, `https://`).
    pub tls: bool,
}

impl Target {
    /// `host:port`, for `TcpStream::connect`.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl BotConfig {
    /// Checks every setting, with a message that names the flag at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |flag: &'static str, why: String| Err(ConfigError::Invalid { flag, why });
        if !self.uses_tls()? {
            if self.ca_cert.is_some() {
                return bad(
                    "--ca-cert",
                    "applies to wss:// and https:// URLs only".into(),
                );
            }
            if self.insecure {
                return bad(
                    "--insecure",
                    "applies to wss:// and https:// URLs only".into(),
                );
            }
        }
        if self.insecure && self.ca_cert.is_some() {
            return bad(
                "--insecure",
                "checks no certificate, so --ca-cert would be ignored: give one of them".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.max_disconnected_share) {
            return bad(
                "--max-disconnected-share",
                format!("must be 0..=1, got {}", self.max_disconnected_share),
            );
        }
        if self.bots == 0 || self.bots > MAX_BOTS {
            return bad(
                "--bots",
                format!("must be 1..={MAX_BOTS}, got {}", self.bots),
            );
        }
        if self.duration.is_zero() {
            return bad("--duration", "must be longer than 0".into());
        }
        if self.churn.is_some_and(|c| c.is_zero()) {
            return bad("--churn", "a match must be longer than 0".into());
        }
        if self.ramp_up > self.duration {
            return bad(
                "--ramp-up",
                format!(
                    "{:?} is longer than --duration {:?} (the ramp-up is part of the run)",
                    self.ramp_up, self.duration
                ),
            );
        }
        if self.input_rate == 0 || self.input_rate > MAX_INPUT_RATE {
            return bad(
                "--input-rate",
                format!(
                    "must be 1..={MAX_INPUT_RATE} per second, got {}",
                    self.input_rate
                ),
            );
        }
        if self.ping_interval < Duration::from_millis(10) {
            return bad("--ping-interval", "must be at least 10ms".into());
        }
        if self.reconnect_min_backoff.is_zero()
            || self.reconnect_min_backoff > self.reconnect_max_backoff
        {
            return bad(
                "--reconnect-min-backoff",
                "must be above 0 and at most --reconnect-max-backoff".into(),
            );
        }
        if self.connect_timeout.is_zero() {
            return bad("--connect-timeout", "must be longer than 0".into());
        }
        let longest_name = format!("{}-{}", self.name_prefix, self.bots.saturating_sub(1));
        if longest_name.len() > MAX_NAME_LEN {
            return bad(
                "--name-prefix",
                format!("names like {longest_name:?} exceed {MAX_NAME_LEN} bytes"),
            );
        }
        Ok(())
    }

    /// The server's address from `--url`.
    pub fn target(&self) -> Result<Target, ConfigError> {
        parse_ws_url(&self.url)
    }

    /// How the run verifies TLS servers (`--ca-cert`, `--insecure`); `None` for
    /// a run without TLS.
    pub fn tls_client(&self) -> Result<Option<TlsClient>, ConfigError> {
        if !self.uses_tls()? {
            return Ok(None);
        }
        let client = if self.insecure {
            TlsClient::insecure()?
        } else {
            TlsClient::new(self.ca_cert.as_deref())?
        };
        Ok(Some(client))
    }

    /// Whether the run talks TLS: a `wss://` URL or an `https://` metrics URL
    /// (also checks both URLs).
    fn uses_tls(&self) -> Result<bool, ConfigError> {
        Ok(self.target()?.tls || parse_http_url(&self.metrics_url()?)?.0.tls)
    }

    /// The options of bot number `i` of a run whose walks use `seed`, verifying
    /// TLS servers with `tls` (from [`BotConfig::tls_client`]).
    pub fn bot_options(&self, i: u64, seed: u64, tls: Option<&TlsClient>) -> BotOptions {
        BotOptions {
            url: self.url.clone(),
            tls: tls.cloned(),
            name: Some(format!("{}-{i}", self.name_prefix)),
            auth_token: self.auth_token.clone(),
            seed: seed.wrapping_add(i),
            input_rate: self.input_rate,
            ping_interval: self.ping_interval,
            connect_timeout: self.connect_timeout,
            reconnect: self.reconnect.then_some(Backoff {
                min: self.reconnect_min_backoff,
                max: self.reconnect_max_backoff,
            }),
            matchmake: self.matchmake.then(|| Matchmaking {
                kind: self.kind.clone(),
            }),
            verify: i < self.bots_verifying(),
            churn: self.churn.filter(|_| self.matchmake),
        }
    }

    /// How many bots verify: the first `--verify` ones, or all.
    pub fn bots_verifying(&self) -> u64 {
        u64::from(self.verify.map_or(self.bots, |n| n.min(self.bots)))
    }

    /// The URL to scrape server metrics from (`https://` when `--url` is `wss://`:
    /// a TLS server serves both on one port).
    pub fn metrics_url(&self) -> Result<String, ConfigError> {
        match &self.metrics_url {
            Some(m) => Ok(m.clone()),
            None => {
                let t = self.target()?;
                let scheme = if t.tls { "https" } else { "http" };
                Ok(format!("{scheme}://{}/metrics", t.addr()))
            }
        }
    }
}

/// Parses a URL whose scheme is `plain` or its TLS twin `secure`.
fn parse_uri(
    url: &str,
    flag: &'static str,
    [plain, secure]: [&str; 2],
) -> Result<(Target, Uri), ConfigError> {
    let bad = |why: String| ConfigError::Invalid { flag, why };
    let uri: Uri = url
        .parse()
        .map_err(|e| bad(format!("{url:?} is not a URL: {e}")))?;
    let tls = match uri.scheme_str() {
        Some(s) if s == plain => false,
        Some(s) if s == secure => true,
        _ => {
            return Err(bad(format!(
                "{url:?} must start with {plain}:// or {secure}://"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| bad(format!("{url:?} has no host")))?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((Target { host, port, tls }, uri))
}

/// Parses a `ws://host:port/path` or `wss://host:port/path` URL.
pub fn parse_ws_url(url: &str) -> Result<Target, ConfigError> {
    parse_uri(url, "--url", ["ws", "wss"]).map(|(t, _)| t)
}

/// Parses an `http://` or `https://host:port/path` URL into the target and the
/// path with query.
pub fn parse_http_url(url: &str) -> Result<(Target, String), ConfigError> {
    let (t, uri) = parse_uri(url, "--metrics-url", ["http", "https"])?;
    let path = uri
        .path_and_query()
        .map_or("/".to_owned(), |p| p.as_str().to_owned());
    Ok((t, path))
}

/// Parses a duration the way the server's flags do (humantime: `500ms`, `30s`,
/// `2m`, `1m 30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests;
