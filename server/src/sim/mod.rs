//! The simulation: plain synchronous, deterministic code with no I/O and no clocks.
//!
//! - [`world`]: players, joins and leaves, resume tokens, the tick advance;
//! - [`input`]: per-player input validation and queueing;
//! - [`snapshots`]: per-tick view history and the encode-once snapshot bodies;
//! - [`interest`]: the view-radius grid and per-client view snapshots.
//!
//! Time enters only as ticks, so tests drive it directly.

pub mod input;
pub mod interest;
pub mod snapshots;
pub mod world;

pub use input::{InputOutcome, InputQueue};
pub use interest::{Grid, HeldView, ViewEncoder};
pub use snapshots::SnapshotPlanner;
pub use world::{JoinError, Joined, Player, SimConfig, World};
