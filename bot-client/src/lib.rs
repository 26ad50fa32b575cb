//! # ticksync-bot
//!
//! Headless Ticksync clients for load and correctness testing. Each bot says
//! `Hello`, sends one input per server tick (batched at `--input-rate`) from a
//! seeded random walk, reconstructs the world from snapshots with the protocol
//! crate's [`ClientWorld`](ticksync_protocol::ClientWorld), predicts its own
//! player with [`Predictor`](ticksync_protocol::Predictor), pings once a second and
//! counts desyncs, mispredictions and latencies.
//!
//! - [`Session`]: one bot's protocol state machine, no I/O, time passed in;
//! - [`BotHandle`]: one bot as a task, for tests (inspect its world, quiesce it,
//!   close or drop its connection);
//! - [`run`]: many bots with ramp-up, progress and a [`Report`];
//! - [`BotConfig`]: the binary's flags, also usable as a plain struct.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use ticksync_bot::{BotHandle, BotOptions};
//! let bot = BotHandle::connect(BotOptions::new("ws://127.0.0.1:7777/ws")).await?;
//! bot.set_quiesced(true);
//! let view = bot
//!     .wait_until(std::time::Duration::from_secs(2), |v| v.all_inputs_acked())
//!     .await?;
//! println!("{} entities at {:?}", view.entities.len(), view.tick);
//! bot.close().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod bot;
pub mod config;
mod connection;
mod error;
pub mod matchmake;
pub mod metrics;
mod report;
mod runner;
pub mod session;
mod stats;
mod tls;
mod walk;

pub use bot::{Backoff, BotHandle, BotOptions, BotOutcome, BotView};
pub use config::{BotConfig, RuntimeKind};
pub use error::{BotError, ConfigError, ScrapeError};
pub use matchmake::{Matchmaking, Seat};
pub use report::{ConnectedShare, LatencyMs, Listing, Presence, Report, ServerStats, TlsMode};
pub use runner::{Progress, run, run_with_progress};
pub use session::{Counters, Event, Session, SessionOptions};
pub use tls::TlsClient;
pub use walk::RandomWalk;
