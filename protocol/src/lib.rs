//! # ticksync-protocol
//!
//! The Ticksync wire protocol and the client-side logic every Ticksync client shares:
//!
//! - [`messages`]: [`ClientMsg`] and [`ServerMsg`], the messages on the wire;
//! - [`codec`]: their exact byte encoding (docs/PROTOCOL.md), with total decoding;
//! - [`movement`]: the deterministic fixed-point movement rule [`step`];
//! - [`motion`]: velocities: how clients advance entities between listings;
//! - [`snapshot`]: building full and delta snapshot bodies;
//! - [`ClientWorld`]: reconstructing the world from snapshots, checksum-verified;
//! - [`Predictor`]: client-side prediction and reconciliation;
//! - [`checksum`]: the view checksum.
//!
//! No I/O, no clocks, no async runtime: time and bytes are always parameters, so
//! servers, bots, native and wasm clients all use the same code.
//!
//! The wire format is specified in docs/PROTOCOL.md; the golden vectors in
//! `protocol/tests/vectors/` pin it down byte for byte for ports to other languages.
//!
//! ```
//! use glam::IVec2;
//! use ticksync_protocol::*;
//!
//! // Server side: a delta between two ticks of a view, encoded. Entity 1 walks
//! // right at 53 steps per tick and costs nothing; entity 2 starts walking down.
//! let cfg = MoveConfig::from_units(100.0, 30, 1000.0);
//! let e = |id, x, y, vy| EntityState::new(PlayerId(id), FixedPos::new(x, y), IVec2::new(0, vy));
//! let walk = |x, y| EntityState::new(PlayerId(1), FixedPos::new(x, y), IVec2::new(53, 0));
//! let base = [walk(0, 0), e(2, 100, 100, 0)];
//! let cur = [walk(53, 0), e(2, 100, 153, 53)];
//! let body = snapshot::delta(Tick(2), Tick(1), &base, &cur, cfg.world_max);
//! assert_eq!(body.changed.len(), 1);
//! let msg = ServerMsg::Snapshot(Snapshot { ack_input: InputSeq(1), body });
//! let bytes = codec::encode_server(&msg);
//!
//! // Client side: decode and apply on top of the full snapshot of tick 1.
//! let mut world = ClientWorld::new(cfg.world_max);
//! world.apply(&snapshot::full(Tick(1), &base)).unwrap();
//! let ServerMsg::Snapshot(s) = codec::decode_server(&bytes).unwrap() else { panic!() };
//! world.apply(&s.body).unwrap();
//! assert_eq!(world.to_sorted_vec(), cur);
//! ```

#![warn(missing_docs)]

pub mod checksum;
mod client_world;
pub mod codec;
pub mod messages;
pub mod motion;
pub mod movement;
mod predictor;
pub mod snapshot;
mod types;

pub use client_world::{Applied, ApplyError, ClientWorld};
pub use codec::DecodeError;
pub use messages::*;
pub use movement::{MoveConfig, step};
pub use predictor::{Predictor, Reconciliation};
pub use types::*;
