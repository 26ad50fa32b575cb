//! The simulation: plain synchronous, deterministic code with no I/O and no clocks.
//!
//! - [`world`]: players, joins and leaves, resume tokens, the tick advance;
//! - [`input`]: per-player input validation and queueing;
//! - [`snapshots`]: per-tick view history and the encode-once snapshot bodies.
//!
//! Time enters only as ticks, so tests drive it directly.

pub mod input;
pub mod snapshots;
pub mod world;

pub use input::{InputOutcome, InputQueue};
pub use snapshots::SnapshotPlanner;
pub use world::{JoinError, Joined, Player, SimConfig, World};
