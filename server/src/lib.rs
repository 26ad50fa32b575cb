//! # ticksync-server
//!
//! The authoritative fixed-tick server. [`sim`] is the pure simulation; the rest is
//! the thin async shell around it (filled in below).

pub mod config;
pub mod metrics;
pub mod sim;

pub use config::Config;
