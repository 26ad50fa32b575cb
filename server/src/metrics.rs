//! Prometheus metrics: one registry with every counter the server exports, encoded
//! by `prometheus-client` for `GET /metrics`. Labelled counters export every label
//! value from the first scrape ([`ByReason`]); the standard `process_*` families
//! are read from `/proc` at each scrape ([`ProcessCollector`]). docs/OPERATIONS.md
//! section 4 lists every family and label value, and a test holds the two together.

mod agones;
mod process;
mod reasons;

pub use agones::AgonesMetrics;
pub use process::{ProcessCollector, ProcessStats, SysUnits};
pub use reasons::{
    AdminRefusal, ApiRoute, ByReason, DisconnectReason, InputRejection, MatchmakeOutcome, Reasons,
    Refusal, ReloadResult, RoomCloseReason, SdkCall,
};

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Every metric the server exports. Cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Duration of each tick's work.
    pub tick_duration: Histogram,
    /// How late each tick started relative to its schedule.
    pub tick_lateness: Histogram,
    tick_duration_max_ns: AtomicU64,
    tick_duration_max: Gauge<f64, AtomicU64>,
    /// Ticks simulated.
    pub ticks: Counter,
    /// Ticks that started a whole period or more late, or were skipped.
    pub ticks_missed: Counter,
    /// Players in the world.
    pub players: Gauge,
    /// Open TCP connections, handshaking or playing.
    pub connections: Gauge,
    /// Accepted TCP connections still open, in any phase (TLS, request head,
    /// WebSocket): what a connection flood shows up in.
    pub tcp_connections: Gauge,
    /// Bytes of WebSocket payload sent.
    pub bytes_sent: Counter,
    /// Bytes of WebSocket payload received.
    pub bytes_received: Counter,
    /// WebSocket messages received from clients.
    pub messages_received: Counter,
    /// Inputs applied by the simulation.
    pub inputs_applied: Counter,
    /// Input directions outside -127..=127 that were clamped.
    pub inputs_clamped: Counter,
    inputs_rejected: ByReason<InputRejection>,
    disconnects: ByReason<DisconnectReason>,
    /// Snapshots not enqueued because a client's queue was full.
    pub snapshots_skipped: Counter,
    /// Snapshot messages enqueued.
    pub snapshots_sent: Counter,
    /// Full snapshots enqueued (joins, resyncs, stale baselines).
    pub snapshots_full: Counter,
    /// Distinct snapshot bodies encoded (shared by clients with the same baseline and view).
    pub snapshot_bodies_encoded: Counter,
    connections_refused: ByReason<Refusal>,
    /// Messages (of any kind) dropped by a connection's rate limit.
    pub messages_rate_limited: Counter,
    /// Sessions resumed with a resume token.
    pub sessions_resumed: Counter,
    tls_reloads: ByReason<ReloadResult>,
    /// Rooms open.
    pub rooms: Gauge,
    /// Rooms opened since start.
    pub rooms_created: Counter,
    rooms_closed: ByReason<RoomCloseReason>,
    /// Round-trip times measured with the server's WebSocket pings.
    pub rtt: Histogram,
    matchmakes: ByReason<MatchmakeOutcome>,
    api_limited: ByReason<ApiRoute>,
    /// Seat reservations freed unused at `--seat-timeout`.
    pub reservations_expired: Counter,
    /// The Agones SDK calls and state (`--agones`).
    pub agones: AgonesMetrics,
    admin_refused: ByReason<AdminRefusal>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        // Half-millisecond steps from 1 to 3 ms and millisecond steps to 8 ms:
        // the tick budget's targets (p99 <= 3 ms, max <= 8 ms) are read off
        // these bounds, so 2 ms must be told from 2.5 and 3 ms.
        let tick_buckets = [
            0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.001_5, 0.002, 0.002_5, 0.003, 0.004,
            0.005, 0.006, 0.008, 0.012, 0.02, 0.033, 0.05, 0.1, 0.25,
        ];
        let m = Metrics {
            registry: Registry::default(),
            tick_duration: Histogram::new(tick_buckets),
            tick_lateness: Histogram::new(tick_buckets),
            tick_duration_max_ns: AtomicU64::new(0),
            tick_duration_max: Gauge::default(),
            ticks: Counter::default(),
            ticks_missed: Counter::default(),
            players: Gauge::default(),
            connections: Gauge::default(),
            tcp_connections: Gauge::default(),
            bytes_sent: Counter::default(),
            bytes_received: Counter::default(),
            messages_received: Counter::default(),
            inputs_applied: Counter::default(),
            inputs_clamped: Counter::default(),
            inputs_rejected: ByReason::default(),
            disconnects: ByReason::default(),
            snapshots_skipped: Counter::default(),
            snapshots_sent: Counter::default(),
            snapshots_full: Counter::default(),
            snapshot_bodies_encoded: Counter::default(),
            connections_refused: ByReason::default(),
            messages_rate_limited: Counter::default(),
            sessions_resumed: Counter::default(),
            tls_reloads: ByReason::default(),
            rooms: Gauge::default(),
            rooms_created: Counter::default(),
            rooms_closed: ByReason::default(),
            matchmakes: ByReason::default(),
            api_limited: ByReason::default(),
            reservations_expired: Counter::default(),
            rtt: Histogram::new([
                0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0,
            ]),
            agones: AgonesMetrics::default(),
            admin_refused: ByReason::default(),
        };
        m.register()
    }

    fn register(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "ticksync_tick_duration_seconds",
            "Time spent on each tick's work",
            self.tick_duration.clone(),
        );
        r.register(
            "ticksync_tick_lateness_seconds",
            "How late each tick started against its fixed schedule",
            self.tick_lateness.clone(),
        );
        r.register(
            "ticksync_tick_duration_max_seconds",
            "Longest tick since start",
            self.tick_duration_max.clone(),
        );
        r.register("ticksync_ticks", "Ticks simulated", self.ticks.clone());
        r.register(
            "ticksync_ticks_missed",
            "Ticks that started a full period late or were skipped",
            self.ticks_missed.clone(),
        );
        r.register(
            "ticksync_players",
            "Players in rooms (connected or within their resume grace)",
            self.players.clone(),
        );
        r.register(
            "ticksync_connections",
            "Open WebSocket connections, handshaking or playing",
            self.connections.clone(),
        );
        r.register(
            "ticksync_tcp_connections",
            "Accepted TCP connections still open, in any phase",
            self.tcp_connections.clone(),
        );
        r.register(
            "ticksync_bytes_sent",
            "WebSocket payload bytes sent",
            self.bytes_sent.clone(),
        );
        r.register(
            "ticksync_bytes_received",
            "WebSocket payload bytes received",
            self.bytes_received.clone(),
        );
        r.register(
            "ticksync_messages_received",
            "WebSocket messages received",
            self.messages_received.clone(),
        );
        r.register(
            "ticksync_inputs_applied",
            "Inputs applied",
            self.inputs_applied.clone(),
        );
        r.register(
            "ticksync_inputs_clamped",
            "Input directions clamped into -127..=127",
            self.inputs_clamped.clone(),
        );
        r.register(
            "ticksync_inputs_rejected",
            "Inputs not applied, by reason",
            self.inputs_rejected.family(),
        );
        r.register(
            "ticksync_disconnects",
            "Connections closed, by reason",
            self.disconnects.family(),
        );
        r.register(
            "ticksync_snapshots_skipped",
            "Snapshots skipped because a client's outbound queue was full",
            self.snapshots_skipped.clone(),
        );
        r.register(
            "ticksync_snapshots_sent",
            "Snapshots enqueued",
            self.snapshots_sent.clone(),
        );
        r.register(
            "ticksync_snapshots_full",
            "Full snapshots enqueued",
            self.snapshots_full.clone(),
        );
        r.register(
            "ticksync_snapshot_bodies_encoded",
            "Distinct snapshot bodies encoded",
            self.snapshot_bodies_encoded.clone(),
        );
        r.register(
            "ticksync_connections_refused",
            "Connections refused before the WebSocket upgrade, by reason",
            self.connections_refused.family(),
        );
        r.register(
            "ticksync_messages_rate_limited",
            "Client messages dropped by the per-connection rate limit",
            self.messages_rate_limited.clone(),
        );
        r.register(
            "ticksync_sessions_resumed",
            "Sessions resumed with a resume token",
            self.sessions_resumed.clone(),
        );
        r.register(
            "ticksync_tls_reloads",
            "TLS certificate reloads (SIGHUP, --tls-watch, Server::reload_tls), by result",
            self.tls_reloads.family(),
        );
        r.register("ticksync_rooms", "Rooms open", self.rooms.clone());
        r.register(
            "ticksync_rooms_created",
            "Rooms opened",
            self.rooms_created.clone(),
        );
        r.register(
            "ticksync_rooms_closed",
            "Rooms closed, by reason",
            self.rooms_closed.family(),
        );
        r.register(
            "ticksync_rtt_seconds",
            "Round-trip times of the server's WebSocket pings",
            self.rtt.clone(),
        );
        r.register(
            "ticksync_matchmakes",
            "POST /matchmake requests, by outcome",
            self.matchmakes.family(),
        );
        r.register(
            "ticksync_http_limited",
            "Public HTTP API requests refused with 429 by the per-address limits, by route",
            self.api_limited.family(),
        );
        r.register(
            "ticksync_reservations_expired",
            "Seat reservations freed because their seat token was not used in time",
            self.reservations_expired.clone(),
        );
        self.agones.register(r);
        r.register(
            "ticksync_admin_refused",
            "Requests to the monitor or the admin API refused for their credential, by reason",
            self.admin_refused.family(),
        );
        r.register_collector(Box::new(ProcessCollector));
        self
    }

    /// Counts a `POST /matchmake`.
    pub fn matchmake(&self, outcome: MatchmakeOutcome) {
        self.matchmakes.inc_by(outcome, 1);
    }

    /// Counts a request refused by the per-address API limits.
    pub fn api_limited(&self, route: ApiRoute) {
        self.api_limited.inc_by(route, 1);
    }

    /// Requests for `route` refused by the per-address API limits so far.
    pub fn api_limits_hit(&self, route: ApiRoute) -> u64 {
        self.api_limited.get(route)
    }

    /// `POST /matchmake` requests with `outcome` so far.
    pub fn matchmakes(&self, outcome: MatchmakeOutcome) -> u64 {
        self.matchmakes.get(outcome)
    }

    /// Counts a refused admin request.
    pub fn admin_refused(&self, reason: AdminRefusal) {
        self.admin_refused.inc_by(reason, 1);
    }

    /// The number of admin requests refused for `reason` so far.
    pub fn admin_refusals(&self, reason: AdminRefusal) -> u64 {
        self.admin_refused.get(reason)
    }

    /// Counts a TLS certificate reload.
    pub fn tls_reload(&self, result: ReloadResult) {
        self.tls_reloads.inc_by(result, 1);
    }

    /// The number of TLS certificate reloads with `result` so far.
    pub fn tls_reloads(&self, result: ReloadResult) -> u64 {
        self.tls_reloads.get(result)
    }

    /// Counts `n` rejected inputs.
    pub fn input_rejected(&self, reason: InputRejection, n: u64) {
        self.inputs_rejected.inc_by(reason, n);
    }

    /// The number of inputs rejected for `reason` so far.
    pub fn inputs_rejected(&self, reason: InputRejection) -> u64 {
        self.inputs_rejected.get(reason)
    }

    /// Counts a connection refused before the upgrade.
    pub fn connection_refused(&self, reason: Refusal) {
        self.connections_refused.inc_by(reason, 1);
    }

    /// The number of connections refused for `reason` so far.
    pub fn connections_refused(&self, reason: Refusal) -> u64 {
        self.connections_refused.get(reason)
    }

    /// Counts a closed connection.
    pub fn disconnect(&self, reason: DisconnectReason) {
        self.disconnects.inc_by(reason, 1);
    }

    /// The number of connections closed for `reason` so far.
    pub fn disconnects(&self, reason: DisconnectReason) -> u64 {
        self.disconnects.get(reason)
    }

    /// Counts a closed room.
    pub fn room_closed(&self, reason: RoomCloseReason) {
        self.rooms.dec();
        self.rooms_closed.inc_by(reason, 1);
    }

    /// The number of rooms closed for `reason` so far.
    pub fn rooms_closed(&self, reason: RoomCloseReason) -> u64 {
        self.rooms_closed.get(reason)
    }

    /// Records one tick's duration and lateness, in seconds.
    pub fn observe_tick(&self, duration: f64, lateness: f64) {
        self.tick_duration.observe(duration);
        self.tick_lateness.observe(lateness);
        let ns = (duration * 1e9) as u64;
        if self.tick_duration_max_ns.fetch_max(ns, Ordering::Relaxed) < ns {
            self.tick_duration_max.set(duration);
        }
    }

    /// The registry in the Prometheus / OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_the_documented_names() {
        let m = Metrics::new();
        m.ticks.inc();
        m.input_rejected(InputRejection::stale, 2);
        m.disconnect(DisconnectReason::idle_timeout);
        m.connection_refused(Refusal::per_ip_limit);
        m.observe_tick(0.002, 0.0);
        let text = m.encode();
        for name in [
            "ticksync_tick_duration_seconds_bucket",
            "ticksync_tick_duration_max_seconds 0.002",
            "ticksync_ticks_total 1",
            "ticksync_ticks_missed_total 0",
            "ticksync_players 0",
            "ticksync_connections 0",
            "ticksync_bytes_sent_total 0",
            "ticksync_messages_received_total 0",
            "ticksync_inputs_rejected_total{reason=\"stale\"} 2",
            "ticksync_disconnects_total{reason=\"idle_timeout\"} 1",
            "ticksync_snapshots_skipped_total 0",
            "ticksync_connections_refused_total{reason=\"per_ip_limit\"} 1",
            "ticksync_messages_rate_limited_total 0",
            "ticksync_tls_reloads_total{reason=\"failed\"} 0",
        ] {
            assert!(text.contains(name), "missing {name} in:\n{text}");
        }
        assert_eq!(m.inputs_rejected(InputRejection::stale), 2);
        if cfg!(target_os = "linux") {
            for family in [
                "# TYPE process_cpu_seconds counter",
                "\nprocess_cpu_seconds_total ",
                "\nprocess_resident_memory_bytes ",
                "\nprocess_virtual_memory_bytes ",
                "\nprocess_start_time_seconds ",
                "\nprocess_open_fds ",
            ] {
                assert!(text.contains(family), "missing {family} in:\n{text}");
            }
        }
    }
}
