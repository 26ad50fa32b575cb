//! The operator's view (`--monitor`): what `GET /monitor/state` answers — the
//! server's figures, its tick threads, its rooms and the last minutes of its
//! counters — and the sampler that keeps that history. The page is
//! `server/web/monitor/`, the HTTP routes and the credential check
//! `net/admin.rs`, the credential itself [`token`].
//!
//! Off unless `--monitor` is given, and then every answer but the static page
//! needs `--admin-token`.

pub mod history;
pub mod token;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::metrics::{AdminRefusal, DisconnectReason, Metrics, Reasons, Refusal, RoomCloseReason};
use crate::shared::Shared;
use history::{History, Totals};
use token::AdminToken;

/// How often the sampler takes the totals.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Samples kept: ten minutes.
const SAMPLES: usize = 600;

/// The monitor's state: the credential and the history.
#[derive(Debug)]
pub struct Monitor {
    /// What every admin request must present.
    pub token: AdminToken,
    history: Mutex<History>,
    started: Instant,
}

impl Monitor {
    /// A monitor guarded by `token`, with an empty history.
    pub fn new(token: AdminToken) -> Monitor {
        Monitor {
            token,
            history: Mutex::new(History::new(SAMPLES)),
            started: Instant::now(),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the totals every [`SAMPLE_INTERVAL`], for as long as the task lives
    /// (the server aborts it on shutdown).
    pub async fn sample(shared: Arc<Shared>) {
        let mut every = tokio::time::interval(SAMPLE_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Some(m) = &shared.monitor {
                m.history().record(unix_ms(), totals(&shared));
            }
        }
    }

    /// `GET /monitor/state`: everything the page shows but a room's players,
    /// with the history samples after `since`.
    pub fn state(&self, shared: &Shared, since: u64) -> Value {
        let rooms = shared.rooms();
        let m = &shared.metrics;
        let (status, _) = shared.health();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "status": status,
            "uptime_secs": self.started.elapsed().as_secs(),
            "connections": m.connections.get(),
            "players": rooms.players(),
            "rooms_open": rooms.len(),
            "limits": {
                "max_players": shared.config.max_players,
                "max_rooms": shared.config.max_rooms,
                "max_connections": shared.config.max_connections,
            },
            "tick_threads": shared.placement.threads(),
            "totals": {
                "disconnects": by_reason(|r| m.disconnects(r)),
                "refusals": by_reason(|r| m.connections_refused(r)),
                "admin_refused": by_reason(|r: AdminRefusal| m.admin_refusals(r)),
                "rooms_created": m.rooms_created.get(),
                "rooms_closed": by_reason(|r: RoomCloseReason| m.rooms_closed(r)),
            },
            "reasons": {
                "disconnects": names::<DisconnectReason>(),
                "refusals": names::<Refusal>(),
            },
            "interval_ms": SAMPLE_INTERVAL.as_millis() as u64,
            "history": self.history().since(since),
            "rooms": rooms.list(),
        })
    }
}

/// The label value of a reason (its variant's name, as `/metrics` shows it).
fn name<R: Reasons>(r: R) -> String {
    format!("{r:?}")
}

fn names<R: Reasons>() -> Vec<String> {
    R::ALL.iter().map(|r| name(*r)).collect()
}

fn by_reason<R: Reasons>(count: impl Fn(R) -> u64) -> serde_json::Map<String, Value> {
    R::ALL
        .iter()
        .map(|r| (name(*r), Value::from(count(*r))))
        .collect()
}

fn counts<R: Reasons>(count: impl Fn(R) -> u64) -> Vec<u64> {
    R::ALL.iter().map(|r| count(*r)).collect()
}

/// The server's totals now.
fn totals(shared: &Shared) -> Totals {
    let m: &Metrics = &shared.metrics;
    Totals {
        connections: m.connections.get(),
        players: m.players.get(),
        rooms: m.rooms.get(),
        bytes_sent: m.bytes_sent.get(),
        bytes_received: m.bytes_received.get(),
        ticks_missed: m.ticks_missed.get(),
        disconnects: counts(|r| m.disconnects(r)),
        refusals: counts(|r| m.connections_refused(r)),
        busy_permille: shared
            .placement
            .threads()
            .iter()
            .map(|t| t.busy_permille)
            .collect(),
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
