//! The simulation: plain synchronous, deterministic code with no I/O and no clocks.
//!
//! - [`world`]: players, joins and leaves, resume tokens, the tick advance;
//! - [`input`]: per-player input validation and queueing;
//! - [`snapshots`]: per-tick view history and the encode-once snapshot bodies;
//! - [`interest`]: the view-radius grid and exact per-client view snapshots;
//! - [`cell_views`]: views quantized to grid cells, shared by the clients of a cell;
//! - [`view_delta`]: the delta against the previous tick, on view bitmaps;
//! - [`view_jobs`]: exact circles built off the tick thread from a shared index;
//! - [`views`]: the per-tick snapshot builder over all of the above.
//!
//! Time enters only as ticks, so tests drive it directly.

pub mod cell_views;
pub mod input;
pub mod interest;
pub mod snapshots;
pub mod view_delta;
pub mod view_jobs;
pub mod views;
pub mod world;

pub use cell_views::CellViews;
pub use input::{InputOutcome, InputQueue};
pub use interest::{Grid, HeldView, ViewEncoder};
pub use snapshots::SnapshotPlanner;
pub use view_delta::TickMotion;
pub use view_jobs::{Built, JobEncoder, SharedHeld, ViewJob, ViewTick, lock_held};
pub use views::Views;
pub use world::{JoinError, Joined, Player, SimConfig, World};
