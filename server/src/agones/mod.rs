//! Running as an Agones game server (`--agones`): the server tells the Agones
//! SDK server (the sidecar in its pod) that it is `Ready` once it listens,
//! pings `Health` while its tick threads are alive, keeps the `rooms` and
//! `players` Counters current, labels the GameServer with its version,
//! watches the GameServer (logging and exposing an allocation, draining when
//! it is deleted) and calls `Shutdown` after its drain.
//!
//! It speaks the SDK server's REST gateway ([`sdk`]), not its gRPC API: the
//! same service, documented by Agones for any language, served by every SDK
//! sidecar, and buildable here with no code generation. The `agones` crate
//! compiles its protos in a build script that needs `protoc`, pulls in tonic,
//! prost and a second `thiserror`, and generates only a client, so a stand-in
//! server for tests would need a second protoc build; over REST the default
//! build and the run command need nothing new, and `--agones` is in every
//! binary (docs/SCALING.md says more).
//!
//! Nothing here runs on the tick or a connection: three tokio tasks (health,
//! sync, watch) make every call with a timeout, retry with backoff, count
//! each call in `ticksync_agones_*`, and read the server only through a
//! [`Probe`] (atomics). Without `--agones`, none of it is started.

pub mod gameserver;
pub mod probe;
pub mod reconcile;
pub mod sdk;
mod tasks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::metrics::AgonesMetrics;
pub use gameserver::GameServer;
use reconcile::Backoff;
pub use reconcile::{Fill, Load, PLAYERS, ROOMS};
use sdk::Sdk;

/// The SDK server's REST port when Agones does not say (`AGONES_SDK_HTTP_PORT`).
pub const DEFAULT_SDK_PORT: u16 = 9358;

/// Attempts at `Shutdown` after the drain before the process exits anyway
/// (Agones then notices the exit itself).
const SHUTDOWN_ATTEMPTS: u32 = 3;

/// The `--agones*` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct AgonesArgs {
    /// Run as an Agones game server: Ready once listening, Health while the
    /// tick threads are alive, the rooms and players Counters, Shutdown after
    /// the drain; drain when the GameServer is deleted.
    #[arg(long = "agones", env = "TICKSYNC_AGONES", default_value_t = false)]
    pub enabled: bool,

    /// Port of the Agones SDK server's REST API on 127.0.0.1. Default: the
    /// AGONES_SDK_HTTP_PORT that Agones sets in the pod, else 9358.
    #[arg(long = "agones-sdk-port", env = "TICKSYNC_AGONES_SDK_PORT")]
    pub sdk_port: Option<u16>,

    /// Interval of the Health pings; keep it well below the GameServer's
    /// health.periodSeconds.
    #[arg(long = "agones-health-interval", env = "TICKSYNC_AGONES_HEALTH_INTERVAL", default_value = "2s", value_parser = humantime::parse_duration)]
    pub health_interval: Duration,

    /// Time limit of one call to the SDK server (connect, request, answer).
    #[arg(long = "agones-timeout", env = "TICKSYNC_AGONES_TIMEOUT", default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,

    /// How often the rooms and players counts are compared with what Agones
    /// holds; a change is sent at most this often.
    #[arg(long = "agones-counter-interval", env = "TICKSYNC_AGONES_COUNTER_INTERVAL", default_value = "1s", value_parser = humantime::parse_duration)]
    pub counter_interval: Duration,
}

impl AgonesArgs {
    /// Checks the values; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        for (name, d) in [
            ("--agones-health-interval", self.health_interval),
            ("--agones-timeout", self.timeout),
            ("--agones-counter-interval", self.counter_interval),
        ] {
            if d.is_zero() {
                return Err(format!("{name} must be greater than zero"));
            }
        }
        Ok(())
    }

    /// The SDK server's address: `--agones-sdk-port`, else the pod's
    /// `AGONES_SDK_HTTP_PORT`, else 9358, on 127.0.0.1.
    pub fn sdk_addr(&self) -> SocketAddr {
        let port = self.sdk_port.unwrap_or_else(|| {
            std::env::var("AGONES_SDK_HTTP_PORT")
                .ok()
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or(DEFAULT_SDK_PORT)
        });
        SocketAddr::from(([127, 0, 0, 1], port))
    }
}

/// What the Agones tasks read from the server. Called from tokio tasks every
/// second or two; must not block (atomics, a short lock at most).
pub trait Probe: Send + Sync + 'static {
    /// Whether every tick thread has finished an iteration recently. While
    /// one is stuck, Health pings stop and Agones restarts the server.
    fn tick_threads_alive(&self) -> bool;
    /// Open rooms and players, with the server's limits as capacities.
    fn load(&self) -> Load;
}

/// The running Agones integration of one server.
#[derive(Debug)]
pub struct Agones {
    sdk: Sdk,
    seen: Arc<watch::Sender<Option<GameServer>>>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics: AgonesMetrics,
}

impl Agones {
    /// Starts the health, sync and watch tasks against the SDK server of
    /// `args`. `going_away` is called once when the GameServer is deleted
    /// or shut down by someone else: the server should drain. Must be called
    /// inside a tokio runtime, once the server listens.
    pub fn start(
        args: &AgonesArgs,
        probe: Arc<dyn Probe>,
        metrics: AgonesMetrics,
        going_away: Box<dyn Fn() + Send + Sync>,
    ) -> Agones {
        let sdk = Sdk::new(args.sdk_addr(), args.timeout);
        info!(sdk = %sdk.addr(), "Agones: talking to the SDK server");
        let seen = Arc::new(watch::Sender::new(None));
        let (stop, _) = watch::channel(false);
        let ctx = tasks::Ctx {
            sdk: sdk.clone(),
            probe,
            metrics: metrics.clone(),
            stop: stop.subscribe(),
            seen: seen.clone(),
        };
        let version = env!("CARGO_PKG_VERSION").to_string();
        let protocol = ticksync_protocol::messages::PROTOCOL_VERSION.to_string();
        let labels = vec![
            ("ticksync-version".to_string(), version.clone()),
            ("ticksync-protocol".to_string(), protocol),
        ];
        let annotations = vec![("ticksync-version".to_string(), version)];
        let tasks = vec![
            tokio::spawn(tasks::health(ctx.clone(), args.health_interval)),
            tokio::spawn(tasks::sync(
                ctx.clone(),
                args.counter_interval,
                labels,
                annotations,
            )),
            tokio::spawn(tasks::watch(ctx, going_away)),
        ];
        Agones {
            sdk,
            seen,
            stop,
            tasks,
            metrics,
        }
    }

    /// The GameServer as last seen on the watch stream (`None` before the
    /// first update).
    pub fn game_server(&self) -> Option<GameServer> {
        self.seen.borrow().clone()
    }

    /// Waits until the watch stream shows a GameServer for which `pred` holds.
    pub async fn wait_for(&self, pred: impl Fn(&GameServer) -> bool) {
        let mut rx = self.seen.subscribe();
        let _ = rx.wait_for(|gs| gs.as_ref().is_some_and(&pred)).await;
    }

    /// After the drain: stops the tasks (no more Health pings or counter
    /// updates) and calls `Shutdown`, retried with backoff a few times.
    pub async fn shutdown(mut self) {
        self.stop_tasks().await;
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(1));
        for attempt in 1..=SHUTDOWN_ATTEMPTS {
            let result = self.sdk.shutdown().await;
            self.metrics
                .call(crate::metrics::SdkCall::shutdown, result.is_ok());
            match result {
                Ok(()) => {
                    info!("Agones: Shutdown sent");
                    return;
                }
                Err(e) if attempt < SHUTDOWN_ATTEMPTS => {
                    warn!(error = %e, attempt, "Agones: Shutdown failed, retrying");
                    tokio::time::sleep(backoff.failed(rand::random())).await;
                }
                Err(e) => error!(
                    error = %e,
                    "Agones: Shutdown failed; Agones will notice the process exit instead"
                ),
            }
        }
    }

    async fn stop_tasks(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            // A task in the middle of a call would finish it first (up to
            // the call timeout): the drain is over, nothing it does matters.
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Agones {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
