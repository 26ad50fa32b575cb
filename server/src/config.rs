//! The server's configuration: one clap struct, every flag also settable as a
//! `TICKSYNC_*` environment variable, validated before anything starts.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ticksync_protocol::{MoveConfig, SessionLimits, client_msg_budget};

use crate::auth::AuthSecret;
use crate::fleet::FleetConfig;
use crate::monitor::token::AdminToken;
use crate::net::limits::RateConfig;
use crate::room::kind::{KindArg, Kinds};

/// Ticksync: an authoritative fixed-tick game state-sync server.
#[derive(Debug, Clone, Parser)]
#[command(name = "ticksync-server", version, about)]
pub struct Config {
    /// Address to listen on (HTTP and WebSocket share it). Port 0 picks a free port.
    #[arg(long, env = "TICKSYNC_BIND", default_value = "127.0.0.1:7777")]
    pub bind: SocketAddr,

    /// Simulation ticks per second (of the default room kind).
    #[arg(long, env = "TICKSYNC_TICK_RATE", default_value_t = 30)]
    pub tick_rate: u16,

    /// Side of the square world, in world units (default room kind).
    #[arg(long, env = "TICKSYNC_WORLD_SIZE", default_value_t = 1000.0)]
    pub world_size: f64,

    /// Player speed, in world units per second (default room kind).
    #[arg(long, env = "TICKSYNC_SPEED", default_value_t = 100.0)]
    pub speed: f64,

    /// Interest radius in world units: a client sees only players within it.
    /// 0 means every client sees every player.
    #[arg(long, env = "TICKSYNC_VIEW_RADIUS", default_value_t = 0.0)]
    pub view_radius: f64,

    /// With a view radius: side of the interest cells, in world units. 0 gives
    /// every client an exact circle around itself (one encode per client);
    /// otherwise every client sees the circle around its cell's centre, and the
    /// clients of one cell share their encoded snapshot. At most --view-radius.
    #[arg(long, env = "TICKSYNC_VIEW_CELL", default_value_t = 0.0)]
    pub view_cell: f64,

    /// Nice value for the tick thread (-20..=19; lower runs first). The tick has
    /// a 1/tick-rate deadline while network threads only have throughput, so by
    /// default it preempts them. Needs CAP_SYS_NICE below 0; without it the
    /// thread keeps the process's priority and a warning is logged.
    #[arg(long, env = "TICKSYNC_TICK_NICE", default_value_t = -10, allow_negative_numbers = true)]
    pub tick_nice: i32,

    /// Most players across every room of the process (connected, within their
    /// resume grace, or holding a reserved seat).
    #[arg(long, env = "TICKSYNC_MAX_PLAYERS", default_value_t = 5000)]
    pub max_players: usize,

    /// Name of the default room kind: the kind a client that knows nothing of
    /// rooms (a plain `/ws` connection) and a matchmake without a kind get.
    #[arg(long, env = "TICKSYNC_DEFAULT_KIND", default_value = "default")]
    pub default_kind: String,

    /// Most players in one room of the default kind.
    #[arg(long, env = "TICKSYNC_ROOM_CAPACITY", default_value_t = 5000)]
    pub room_capacity: u32,

    /// A further room kind, `name:field=value,...` with fields capacity,
    /// world_size, speed, tick_rate, view_radius, view_cell; fields not given
    /// are the default kind's. Repeatable; in the environment separate kinds
    /// with `;`.
    #[arg(long = "room-kind", env = "TICKSYNC_ROOM_KINDS", value_delimiter = ';')]
    pub room_kinds: Vec<KindArg>,

    /// Most rooms open at once.
    #[arg(long, env = "TICKSYNC_MAX_ROOMS", default_value_t = 1000)]
    pub max_rooms: usize,

    /// A room with no players (connected or within their resume grace) and no
    /// reserved seat for this long closes and releases its memory.
    #[arg(long, env = "TICKSYNC_ROOM_IDLE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub room_idle_timeout: Duration,

    /// How long `POST /matchmake` holds a seat for the player it answers; a
    /// seat token not used in time is refused and its seat freed.
    #[arg(long, env = "TICKSYNC_SEAT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub seat_timeout: Duration,

    /// Tick threads the rooms are spread over; 0 means one per core.
    #[arg(long, env = "TICKSYNC_TICK_THREADS", default_value_t = 0)]
    pub tick_threads: usize,

    /// Most open TCP connections; more are refused with HTTP 503 before the upgrade.
    #[arg(long, env = "TICKSYNC_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Most open TCP connections from one IP address; more get HTTP 429 before
    /// the upgrade. Players behind one NAT share an address: keep it generous.
    #[arg(long, env = "TICKSYNC_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    pub max_connections_per_ip: usize,

    /// Addresses the per-IP limit does not apply to (comma-separated). By default
    /// the machine itself: a local load test or a TLS-terminating proxy on the same
    /// host would otherwise be capped at --max-connections-per-ip players. Pass an
    /// empty value to limit every address.
    #[arg(
        long,
        env = "TICKSYNC_IP_LIMIT_EXEMPT",
        default_value = "127.0.0.1,::1"
    )]
    pub ip_limit_exempt: IpList,

    /// `POST /matchmake` requests per second one address may make (token
    /// bucket refill; `GET /rooms` has a bucket of its own with the same
    /// figures); beyond it HTTP 429 + `Retry-After`. Default: each of the
    /// address's --max-connections-per-ip players may matchmake once per
    /// --seat-timeout. --ip-limit-exempt addresses are not limited.
    #[arg(long, env = "TICKSYNC_MATCHMAKE_RATE")]
    pub matchmake_rate: Option<f64>,

    /// `POST /matchmake` requests one address may make back to back (token
    /// bucket size). Default: --max-connections-per-ip (a full NAT of players
    /// may matchmake at once).
    #[arg(long, env = "TICKSYNC_MATCHMAKE_BURST")]
    pub matchmake_burst: Option<u32>,

    /// Most seats one address may have reserved within one --seat-timeout (an
    /// upper bound on its reserved-but-unclaimed seats: each is claimed or
    /// freed within that time); beyond it HTTP 429 + `Retry-After` until the
    /// oldest ages out. Default: --max-connections-per-ip (more seats than it
    /// may open connections can only go unused).
    #[arg(long, env = "TICKSYNC_SEATS_PER_IP")]
    pub seats_per_ip: Option<u32>,

    /// Messages per second a connection may send (token bucket refill; every
    /// message and WebSocket control frame counts); beyond it messages are
    /// dropped and counted. Default: twice what a compliant client sends,
    /// 2 × (tick rate + 4); never below tick rate + 4 (one Input per tick plus
    /// 4 other messages per second).
    #[arg(long, env = "TICKSYNC_INPUT_RATE_LIMIT")]
    pub input_rate_limit: Option<u32>,

    /// Messages a connection may send back to back (token bucket size).
    /// Default: one second at the rate limit; never below half a second of a
    /// compliant client's messages, (tick rate + 4) / 2.
    #[arg(long, env = "TICKSYNC_INPUT_BURST")]
    pub input_burst: Option<u32>,

    /// Dropped messages within one --flood-window that close the connection (1008).
    #[arg(long, env = "TICKSYNC_FLOOD_DROPS", default_value_t = 100)]
    pub flood_drops: u32,

    /// The window in which --flood-drops dropped messages mean a flood.
    #[arg(long, env = "TICKSYNC_FLOOD_WINDOW", default_value = "2s", value_parser = humantime::parse_duration)]
    pub flood_window: Duration,

    /// Secret (at least 16 bytes) that signs join tokens; with it every Hello must
    /// carry a valid token. Without it the server is open to anyone.
    #[arg(long, env = "TICKSYNC_AUTH_SECRET", hide_env_values = true)]
    pub auth_secret: Option<AuthSecret>,

    /// Serve the operator's monitor page (/monitor) and the admin API (room
    /// list and detail, close a room, kick a player, drain). Needs
    /// --admin-token: every request but the page itself must present it.
    #[arg(long, env = "TICKSYNC_MONITOR", default_value_t = false)]
    pub monitor: bool,

    /// The credential (at least 16 bytes) of --monitor and the admin API, sent
    /// as `Authorization: Bearer <token>`. Prefer the environment variable, so
    /// it stays out of `ps`.
    #[arg(long, env = "TICKSYNC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<AdminToken>,

    /// PEM certificate chain: serve wss:// and https:// (needs --tls-key).
    #[arg(long, env = "TICKSYNC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "TICKSYNC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Check --tls-cert and --tls-key for changes this often and reload them when
    /// they change (0s: only on SIGHUP).
    #[arg(long, env = "TICKSYNC_TLS_WATCH", default_value = "0s", value_parser = humantime::parse_duration)]
    pub tls_watch: Duration,

    /// Time a new connection has to finish the HTTP upgrade and send Hello.
    #[arg(long, env = "TICKSYNC_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,

    /// A connection that sends nothing for this long is closed (4001).
    #[arg(long, env = "TICKSYNC_IDLE_TIMEOUT", default_value = "15s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,

    /// Interval of WebSocket pings from the server.
    #[arg(long, env = "TICKSYNC_PING_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ping_interval: Duration,

    /// A client whose outbound queue stays full this long is disconnected (4002).
    #[arg(long, env = "TICKSYNC_STALL_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub stall_timeout: Duration,

    /// How long a player whose connection dropped stays in the world, resumable.
    #[arg(long, env = "TICKSYNC_RESUME_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub resume_grace: Duration,

    /// Snapshots that may wait for one client's socket; beyond it ticks are skipped.
    #[arg(long, env = "TICKSYNC_OUTBOUND_QUEUE", default_value_t = 4)]
    pub outbound_queue: usize,

    /// Inputs that may wait per player; beyond it new inputs are dropped.
    #[arg(long, env = "TICKSYNC_INPUT_QUEUE", default_value_t = 16)]
    pub input_queue: usize,

    /// Kernel send buffer per connection (SO_SNDBUF), in bytes; 0 keeps the OS
    /// default (autotuned up to megabytes). A bound keeps kernel memory per
    /// client small and lets a client that stops reading fill its queue, and be
    /// found out, within seconds.
    #[arg(long, env = "TICKSYNC_SEND_BUFFER", default_value_t = 128 * 1024)]
    pub send_buffer: usize,

    /// Largest WebSocket message accepted from a client, in bytes (1009 beyond).
    #[arg(long, env = "TICKSYNC_MAX_MESSAGE_SIZE", default_value_t = 1024)]
    pub max_message_size: usize,

    /// Time to close connections on SIGTERM / Ctrl-C before exiting anyway.
    #[arg(long, env = "TICKSYNC_DRAIN_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub drain_timeout: Duration,

    /// Write logs as JSON lines instead of human-readable text.
    #[arg(long, env = "TICKSYNC_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// Fleet membership (`--redis` and the flags that go with it).
    #[command(flatten)]
    pub fleet: FleetConfig,

    /// Running as an Agones game server (`--agones` and its settings).
    #[command(flatten)]
    pub agones: crate::agones::AgonesArgs,
}

/// A comma-separated list of IP addresses; the empty string is the empty list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IpList(pub Vec<IpAddr>);

impl IpList {
    /// Whether `ip` (IPv4-mapped IPv6 counts as IPv4) is in the list.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl std::str::FromStr for IpList {
    type Err = std::net::AddrParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map(IpList)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::parse_from(["ticksync-server"])
    }
}

impl Config {
    /// A config for tests: an ephemeral port on 127.0.0.1 and otherwise defaults.
    pub fn for_tests() -> Config {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..Config::default()
        }
    }

    /// Checks ranges and relations between values; the message says what to fix.
    pub fn validate(&self) -> Result<(), String> {
        self.kinds()?;
        if !(-20..=19).contains(&self.tick_nice) {
            return Err(format!(
                "--tick-nice must be -20..=19, got {}",
                self.tick_nice
            ));
        }
        for (name, v) in [
            ("--max-players", self.max_players),
            ("--max-rooms", self.max_rooms),
            ("--max-connections", self.max_connections),
            ("--max-connections-per-ip", self.max_connections_per_ip),
            ("--flood-drops", self.flood_drops as usize),
            ("--outbound-queue", self.outbound_queue),
            ("--input-queue", self.input_queue),
        ] {
            if v == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if !(64..=1 << 20).contains(&self.max_message_size) {
            return Err(format!(
                "--max-message-size must be 64..=1048576, got {}",
                self.max_message_size
            ));
        }
        for (name, d) in [
            ("--handshake-timeout", self.handshake_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--ping-interval", self.ping_interval),
            ("--stall-timeout", self.stall_timeout),
            ("--drain-timeout", self.drain_timeout),
            ("--flood-window", self.flood_window),
            ("--room-idle-timeout", self.room_idle_timeout),
            ("--seat-timeout", self.seat_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        self.validate_client_limits()?;
        if !(self.matchmake_rate() > 0.0 && self.matchmake_rate().is_finite()) {
            return Err(format!(
                "--matchmake-rate must be a positive number, got {}",
                self.matchmake_rate()
            ));
        }
        if self.matchmake_burst() == 0 || self.seats_per_ip() == 0 {
            return Err("--matchmake-burst and --seats-per-ip must be at least 1".into());
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err("--tls-cert and --tls-key go together".into());
        }
        if !self.tls_watch.is_zero() && self.tls_cert.is_none() {
            return Err("--tls-watch needs --tls-cert and --tls-key".into());
        }
        if self.seat_timeout > Duration::from_secs(3600) {
            return Err("--seat-timeout must be at most 1h".into());
        }
        if self.monitor && self.admin_token.is_none() {
            return Err(
                "--monitor needs --admin-token (or TICKSYNC_ADMIN_TOKEN): the monitor's \
                 actions close rooms and drain the server"
                    .into(),
            );
        }
        if self.ping_interval >= self.idle_timeout {
            return Err("--ping-interval must be shorter than --idle-timeout".into());
        }
        self.fleet.validate(self.auth_secret.as_ref())?;
        self.agones.validate()
    }

    /// The room kinds on offer, validated; the default kind first.
    pub fn kinds(&self) -> Result<Kinds, String> {
        Kinds::from_config(self)
    }

    /// The fixed-point movement constants of the default kind.
    pub fn movement(&self) -> MoveConfig {
        MoveConfig::from_units(self.speed, u32::from(self.tick_rate), self.world_size)
    }

    /// The tick threads to run: `--tick-threads`, or one per core.
    pub fn tick_threads(&self) -> usize {
        match self.tick_threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }

    /// The duration of one tick of the default kind.
    pub fn tick_period(&self) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(self.tick_rate))
    }

    /// The highest tick rate of any room kind: a connection's limits are set
    /// before it is seated, so they must let a client of the fastest kind through.
    pub fn max_tick_rate(&self) -> u16 {
        self.kinds()
            .ok()
            .and_then(|k| k.iter().map(|k| k.spec.tick_rate).max())
            .unwrap_or(self.tick_rate)
    }

    /// Messages per second a connection may send: `--input-rate-limit`, or
    /// by default twice a compliant client's [`client_msg_budget`] at the
    /// fastest kind's tick rate.
    pub fn input_rate_limit(&self) -> u32 {
        self.input_rate_limit_at(self.max_tick_rate())
    }

    fn input_rate_limit_at(&self, max_tick_rate: u16) -> u32 {
        self.input_rate_limit
            .unwrap_or(2 * client_msg_budget(max_tick_rate))
    }

    /// Messages a connection may send back to back: `--input-burst`, or by
    /// default one second at [`Config::input_rate_limit`].
    pub fn input_burst(&self) -> u32 {
        self.input_burst_at(self.max_tick_rate())
    }

    fn input_burst_at(&self, max_tick_rate: u16) -> u32 {
        self.input_burst
            .unwrap_or_else(|| self.input_rate_limit_at(max_tick_rate))
    }

    /// `POST /matchmake` (and `GET /rooms`) requests per second per address.
    pub fn matchmake_rate(&self) -> f64 {
        self.matchmake_rate.unwrap_or_else(|| {
            self.max_connections_per_ip as f64 / self.seat_timeout.as_secs_f64().max(0.001)
        })
    }

    /// Back-to-back `POST /matchmake` requests per address.
    pub fn matchmake_burst(&self) -> u32 {
        self.matchmake_burst
            .unwrap_or_else(|| clamp_u32(self.max_connections_per_ip))
    }

    /// Seats one address may reserve within one `--seat-timeout`.
    pub fn seats_per_ip(&self) -> u32 {
        self.seats_per_ip
            .unwrap_or_else(|| clamp_u32(self.max_connections_per_ip))
    }

    /// The per-connection message rate limit.
    pub fn rate_limit(&self) -> RateConfig {
        RateConfig {
            rate: f64::from(self.input_rate_limit()),
            burst: self.input_burst(),
            max_drops: self.flood_drops,
            window: self.flood_window,
        }
    }

    /// The limits a client is told about must let a compliant client through
    /// (docs/PROTOCOL.md, section 11) and fit the fields that announce them.
    fn validate_client_limits(&self) -> Result<(), String> {
        let budget = client_msg_budget(self.max_tick_rate());
        let (rate, burst) = (self.input_rate_limit(), self.input_burst());
        let max = u32::from(u16::MAX);
        if !(budget..=max).contains(&rate) {
            return Err(format!(
                "--input-rate-limit must be {budget}..={max} messages/s at a tick rate of {} (the fastest room kind) \
                 (a client may send one Input per tick plus 4 other messages per second), got {rate}",
                self.max_tick_rate()
            ));
        }
        let min_burst = budget.div_ceil(2);
        if !(min_burst..=max).contains(&burst) {
            return Err(format!(
                "--input-burst must be {min_burst}..={max} messages at a tick rate of {} (the fastest room kind) \
                 (half a second of a client's messages, which a network stall can deliver at once), got {burst}",
                self.max_tick_rate()
            ));
        }
        if self.input_queue > max as usize {
            return Err(format!(
                "--input-queue must be 1..={max} directions, got {}",
                self.input_queue
            ));
        }
        for (name, d) in [
            ("--idle-timeout", self.idle_timeout),
            ("--resume-grace", self.resume_grace),
        ] {
            if d.as_millis() > u128::from(u32::MAX) {
                return Err(format!("{name} must be at most {} ms, got {d:?}", u32::MAX));
            }
        }
        Ok(())
    }

    /// The limits `Welcome` announces to every client (docs/PROTOCOL.md, section
    /// 6): the effective values, which `validate` keeps within the fields' ranges
    /// (saturated here all the same, so a skipped validation cannot wrap them).
    pub fn session_limits(&self) -> SessionLimits {
        self.session_limits_at(self.max_tick_rate())
    }

    /// [`Config::session_limits`] when the fastest room kind runs at
    /// `max_tick_rate` (for building the kinds themselves).
    pub fn session_limits_at(&self, max_tick_rate: u16) -> SessionLimits {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        let u16_sat = |n: u64| u16::try_from(n).unwrap_or(u16::MAX);
        SessionLimits {
            idle_timeout_ms: ms(self.idle_timeout),
            rate_limit: u16_sat(u64::from(self.input_rate_limit_at(max_tick_rate))),
            rate_burst: u16_sat(u64::from(self.input_burst_at(max_tick_rate))),
            resume_grace_ms: ms(self.resume_grace),
            input_queue: u16_sat(self.input_queue as u64),
        }
    }
}

/// `n` as a `u32`, saturating.
fn clamp_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_limit_exemptions_parse() {
        let c = Config::default();
        assert!(c.ip_limit_exempt.contains("127.0.0.1".parse().unwrap()));
        assert!(
            c.ip_limit_exempt
                .contains("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!(c.ip_limit_exempt.contains("::1".parse().unwrap()));
        assert!(!c.ip_limit_exempt.contains("127.0.0.2".parse().unwrap()));
        let c = Config::parse_from(["x", "--ip-limit-exempt="]);
        assert_eq!(c.ip_limit_exempt, IpList::default());
        let c = Config::parse_from(["x", "--ip-limit-exempt", "10.0.0.5, 2001:db8::1"]);
        assert!(c.ip_limit_exempt.contains("2001:db8::1".parse().unwrap()));
        assert!(Config::try_parse_from(["x", "--ip-limit-exempt", "nope"]).is_err());
    }

    #[test]
    fn defaults_are_valid() {
        let c = Config::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.bind.to_string(), "127.0.0.1:7777");
        assert_eq!(c.movement().speed_per_tick, 53);
        let kinds = c.kinds().unwrap();
        assert_eq!(kinds.default_kind().sim.resume_grace_ticks, 300);
    }

    #[test]
    fn the_rate_limit_follows_the_tick_rate() {
        for (hz, rate) in [(30, 68), (60, 128), (90, 188), (120, 248), (240, 488)] {
            let c = Config::parse_from(["x", "--tick-rate", &hz.to_string()]);
            assert_eq!(
                (c.input_rate_limit(), c.input_burst()),
                (rate, rate),
                "{hz} Hz"
            );
            assert_eq!(c.validate(), Ok(()));
        }
        // A connection is limited before it is seated: the fastest kind counts.
        let c = Config::parse_from(["x", "--room-kind", "fast:tick_rate=120"]);
        assert_eq!((c.max_tick_rate(), c.input_rate_limit()), (120, 248));
        let c = Config::parse_from(["x", "--tick-rate", "120", "--input-rate-limit", "60"]);
        let e = c.validate().unwrap_err();
        assert!(e.contains("--input-rate-limit") && e.contains("124"), "{e}");
        let c = Config::parse_from(["x", "--input-rate-limit", "34", "--input-burst", "16"]);
        let e = c.validate().unwrap_err();
        assert!(e.contains("--input-burst") && e.contains("17"), "{e}");
        let c = Config::parse_from(["x", "--input-rate-limit", "34", "--input-burst", "17"]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.rate_limit().burst, 17);
        let c = Config::parse_from(["x", "--input-queue", "70000"]);
        assert!(c.validate().unwrap_err().contains("--input-queue"));
    }

    /// A compliant client, message by message, through the default limiter: one
    /// Input per tick (delivered in clumps, as a network does), a Ping a second
    /// and the pong to the server's WebSocket ping; a minute without one drop.
    #[test]
    fn a_compliant_client_is_never_rate_limited_by_default() {
        use crate::net::limits::{RateLimiter, Verdict};
        use std::time::Instant;
        for hz in [30u16, 60, 90, 120, 240] {
            let c = Config::parse_from(["x", "--tick-rate", &hz.to_string()]);
            let t0 = Instant::now();
            let mut limiter = RateLimiter::new(c.rate_limit(), t0);
            let mut arrivals = Vec::new();
            let tick = c.tick_period();
            for n in 0..u32::from(hz) * 60 {
                // Every 8th tick the network holds the inputs for 4 ticks, then
                // delivers them together.
                let held = 4_u32.saturating_sub(n % 8);
                arrivals.push(tick * (n + held));
            }
            arrivals.extend((0..60).map(|s| Duration::from_secs(s) + tick / 2));
            arrivals.extend((0..12).map(|s| Duration::from_secs(5 * s) + tick / 3));
            arrivals.sort();
            let limited = arrivals
                .iter()
                .filter(|&&at| limiter.check(t0 + at) != Verdict::Allow)
                .count();
            assert_eq!(limited, 0, "{hz} Hz");
        }
    }

    #[test]
    fn bad_values_are_explained() {
        let c = Config::parse_from(["x", "--tick-rate", "0"]);
        assert!(c.validate().unwrap_err().contains("--tick-rate"));
        let c = Config::parse_from(["x", "--world-size=-5"]);
        assert!(c.validate().unwrap_err().contains("--world-size"));
        let c = Config::parse_from(["x", "--ping-interval", "20s"]);
        assert!(c.validate().unwrap_err().contains("--ping-interval"));
        assert!(Config::try_parse_from(["x", "--idle-timeout", "soon"]).is_err());
        let c = Config::parse_from(["x", "--view-radius", "50", "--view-cell", "60"]);
        assert!(c.validate().unwrap_err().contains("--view-cell"));
        let c = Config::parse_from(["x", "--view-radius", "100", "--view-cell", "50"]);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.kinds().unwrap().default_kind().spec.view_cell_fixed(),
            800
        );
        assert!(Config::try_parse_from(["x", "--auth-secret", "short"]).is_err());
        assert!(Config::try_parse_from(["x", "--tls-cert", "c.pem"]).is_err());
        let c = Config::parse_from(["x", "--input-rate-limit", "0"]);
        assert!(c.validate().unwrap_err().contains("--input-rate-limit"));
        let c = Config::parse_from(["x", "--auth-secret", "a-secret-of-16-bytes"]);
        assert!(
            !format!("{c:?}").contains("a-secret"),
            "secrets are not logged"
        );
    }
}
