//! The three Agones tasks, each a thin async loop around the SDK client:
//!
//! - **health**: a `Health` ping every interval while the tick threads are
//!   alive, none while one is stalled (Agones then marks the GameServer
//!   Unhealthy and replaces it);
//! - **sync**: drives the [`Reconciler`] (Ready, labels, annotations,
//!   counters), retrying failures with backoff;
//! - **watch**: follows `WatchGameServer`, publishes each GameServer (the sync
//!   task checks it against what it sent), logs and exposes an allocation,
//!   and asks the server to drain when the GameServer goes away.
//!
//! Each has its own loop so that a slow call of one (up to the call timeout)
//! never delays another's: a counter update stuck on a hung SDK server does
//! not hold back the Health pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use super::Probe;
use super::gameserver::{GameServer, State};
use super::reconcile::{Backoff, Call, Reconciler};
use super::sdk::{Sdk, SdkError};
use crate::metrics::{AgonesMetrics, SdkCall};

/// First wait after a failure; doubles up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// Longest wait between retries: a restarted SDK server is found again
/// within a few seconds.
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What every task holds.
#[derive(Clone)]
pub(super) struct Ctx {
    pub sdk: Sdk,
    pub probe: Arc<dyn Probe>,
    pub metrics: AgonesMetrics,
    pub stop: watch::Receiver<bool>,
    pub seen: Arc<watch::Sender<Option<GameServer>>>,
}

impl Ctx {
    /// Counts a call's outcome; logs when the SDK server becomes unreachable
    /// or reachable again (each failure only at debug: one outage, one line).
    fn record<T>(&self, call: SdkCall, result: &Result<T, SdkError>) -> bool {
        self.metrics.call(call, result.is_ok());
        let was_up = self.metrics.sdk_up.get() == 1;
        match result {
            Ok(_) => {
                if !was_up {
                    info!(sdk = %self.sdk.addr(), "Agones: SDK server reachable");
                }
                self.metrics.sdk_up.set(1);
                true
            }
            Err(e) => {
                if was_up {
                    warn!(sdk = %self.sdk.addr(), ?call, error = %e, "Agones: SDK server unreachable; retrying with backoff");
                } else {
                    debug!(?call, error = %e, "Agones: call failed");
                }
                self.metrics.sdk_up.set(0);
                false
            }
        }
    }

    /// Sleeps `d`, or returns `true` at once when the tasks are stopped.
    async fn stopped_during(&mut self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

/// Health pings at `interval` while the tick threads are alive.
pub(super) async fn health(mut ctx: Ctx, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut withheld = false;
    loop {
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
        }
        if ctx.probe.tick_threads_alive() {
            if withheld {
                info!("Agones: tick threads alive again, Health pings resume");
                withheld = false;
            }
            let result = ctx.sdk.health().await;
            ctx.record(SdkCall::health, &result);
        } else {
            if !withheld {
                warn!(
                    "Agones: a tick thread is stalled: Health pings withheld, Agones will mark the GameServer Unhealthy"
                );
                withheld = true;
            }
            ctx.metrics.health_withheld.inc();
        }
    }
}

/// Brings the SDK server to the desired state and keeps it there.
pub(super) async fn sync(
    mut ctx: Ctx,
    every: Duration,
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
) {
    let mut rec = Reconciler::new(labels, annotations, Backoff::new(BACKOFF_BASE, BACKOFF_MAX));
    let mut seen = ctx.seen.subscribe();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        while let Some(call) = rec.poll_call(Instant::now(), ctx.probe.load()) {
            let (kind, result) = send(&ctx.sdk, &call).await;
            let ok = ctx.record(kind, &result);
            if ok && call == Call::Ready {
                info!("Agones: Ready");
            }
            rec.on_result(&call, ok, Instant::now(), rand::random());
        }
        let retry = rec.retry_at().map(tokio::time::Instant::from_std);
        tokio::select! {
            _ = ctx.stop.wait_for(|s| *s) => return,
            _ = ticker.tick() => {}
            _ = sleep_until(retry) => {}
            changed = seen.changed() => {
                // The sender lives as long as the Agones handle.
                if changed.is_ok() && let Some(gs) = &*seen.borrow_and_update() {
                    rec.observe(gs);
                }
            }
        }
    }
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Makes one call; returns its metric label and outcome.
async fn send(sdk: &Sdk, call: &Call) -> (SdkCall, Result<(), SdkError>) {
    match call {
        Call::Ready => (SdkCall::ready, sdk.ready().await),
        Call::Label(k, v) => (SdkCall::label, sdk.set_label(k, v).await),
        Call::Annotation(k, v) => (SdkCall::annotation, sdk.set_annotation(k, v).await),
        Call::Counter(key, fill) => (
            SdkCall::counter,
            sdk.set_counter(key, fill.count, fill.capacity).await,
        ),
    }
}

/// Follows the GameServer; reconnects with backoff whenever the stream breaks.
pub(super) async fn watch(mut ctx: Ctx, going_away: Box<dyn Fn() + Send + Sync>) {
    let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
    let mut gone = false;
    loop {
        let opened = ctx.sdk.watch().await;
        if ctx.record(SdkCall::watch, &opened)
            && let Ok(mut stream) = opened
        {
            // The stream may only carry changes: read the state of now too.
            let now = ctx.sdk.game_server().await;
            if ctx.record(SdkCall::gameserver, &now)
                && let Ok(gs) = now
            {
                publish(&ctx, gs, &mut gone, &going_away);
            }
            backoff.succeeded();
            loop {
                let next = tokio::select! {
                    _ = ctx.stop.wait_for(|s| *s) => return,
                    next = stream.next() => next,
                };
                match next {
                    Ok(gs) => publish(&ctx, gs, &mut gone, &going_away),
                    Err(e) => {
                        // A broken stream is a failed watch call.
                        ctx.record::<()>(SdkCall::watch, &Err(e));
                        break;
                    }
                }
            }
        }
        if ctx.stopped_during(backoff.failed(rand::random())).await {
            return;
        }
    }
}

/// Records a GameServer update: the allocation gauge and log, the drain
/// request when it goes away (once), and the value the others read.
fn publish(ctx: &Ctx, gs: GameServer, gone: &mut bool, going_away: &dyn Fn()) {
    let was_allocated = ctx
        .seen
        .borrow()
        .as_ref()
        .is_some_and(|p| p.status.state == State::Allocated);
    let allocated = gs.status.state == State::Allocated;
    if allocated && !was_allocated {
        let port = gs.status.ports.first().map_or(0, |p| p.port);
        info!(
            gameserver = %gs.object_meta.name,
            address = %gs.status.address,
            port,
            "Agones: GameServer allocated"
        );
    } else if was_allocated && !allocated {
        info!(
            state = gs.status.state.name(),
            "Agones: GameServer no longer allocated"
        );
    }
    ctx.metrics.allocated.set(i64::from(allocated));
    if gs.is_going_away() && !*gone {
        *gone = true;
        warn!(
            state = gs.status.state.name(),
            deleted = gs.object_meta.deletion_timestamp > 0,
            "Agones: GameServer is going away: draining"
        );
        going_away();
    }
    ctx.seen.send_replace(Some(gs));
}
