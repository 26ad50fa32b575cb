//! Frees reservations nobody claimed: every [`EVERY`], the directory's
//! [`Directory::expire`] runs and what it freed is counted in
//! `ticksync_reservations_expired_total`. A claim checks the expiry itself, so
//! the reaper only decides how soon an unused seat is offered again.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use super::Directory;
use crate::auth::unix_now_ms;
use crate::metrics::Metrics;

/// How often expired reservations are freed.
pub const EVERY: Duration = Duration::from_millis(250);

/// Runs until `stop` turns true.
pub async fn run(dir: Arc<dyn Directory>, metrics: Arc<Metrics>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match dir.expire(unix_now_ms()).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.reservations_expired.inc_by(u64::from(n));
                debug!(expired = n, "seat reservations expired");
            }
            Err(e) => warn!(error = %e, "cannot expire seat reservations"),
        }
    }
}
