//! The Agones SDK metrics (`--agones`): every call and every failed call by
//! call, the health pings withheld while a tick thread is stalled, whether
//! the SDK server answers, and whether the GameServer is allocated. Exported
//! from the first scrape, at 0 without `--agones`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{ByReason, SdkCall};

/// The Agones family of metrics; clones share the values.
#[derive(Debug, Clone, Default)]
pub struct AgonesMetrics {
    calls: ByReason<SdkCall>,
    failures: ByReason<SdkCall>,
    /// Health pings not sent because a tick thread was stalled.
    pub health_withheld: Counter,
    /// 1 while the last SDK call succeeded.
    pub sdk_up: Gauge,
    /// 1 while the GameServer is `Allocated`.
    pub allocated: Gauge,
}

impl AgonesMetrics {
    /// Registers every family in `r`.
    pub fn register(&self, r: &mut Registry) {
        r.register(
            "ticksync_agones_calls",
            "Calls to the Agones SDK server, by call",
            self.calls.family(),
        );
        r.register(
            "ticksync_agones_call_failures",
            "Calls to the Agones SDK server that failed or timed out, by call",
            self.failures.family(),
        );
        r.register(
            "ticksync_agones_health_withheld",
            "Agones health pings not sent because a tick thread was stalled",
            self.health_withheld.clone(),
        );
        r.register(
            "ticksync_agones_sdk_up",
            "1 while the last call to the Agones SDK server succeeded",
            self.sdk_up.clone(),
        );
        r.register(
            "ticksync_agones_allocated",
            "1 while the GameServer is Allocated",
            self.allocated.clone(),
        );
    }

    /// Counts one call and, if it failed, one failure.
    pub fn call(&self, call: SdkCall, ok: bool) {
        self.calls.inc_by(call, 1);
        if !ok {
            self.failures.inc_by(call, 1);
        }
    }

    /// Calls of this kind so far.
    pub fn calls(&self, call: SdkCall) -> u64 {
        self.calls.get(call)
    }

    /// Failed calls of this kind so far.
    pub fn failures(&self, call: SdkCall) -> u64 {
        self.failures.get(call)
    }
}
