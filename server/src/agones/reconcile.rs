//! What the server wants the Agones SDK server to hold (Ready, its version
//! labels and annotations, the `rooms` and `players` counters) against what
//! the SDK server has confirmed, as a plain state machine: the driver asks
//! [`Reconciler::poll_call`] for the next call, reports the outcome with
//! [`Reconciler::on_result`], and feeds every GameServer it sees to
//! [`Reconciler::observe`]. Time and randomness are parameters, so retries
//! and backoff are tested without sockets or sleeps.
//!
//! Counters are sent as absolute values, never increments: a retried call
//! cannot count twice, and after any outage the next call simply carries the
//! current truth.

use std::time::{Duration, Instant};

use super::gameserver::{GameServer, State};

/// The counter holding the number of open rooms.
pub const ROOMS: &str = "rooms";
/// The counter holding the number of players.
pub const PLAYERS: &str = "players";

/// Where SDK-set labels and annotations live: `SetLabel("k", ..)` writes
/// `agones.dev/sdk-k`.
const SDK_PREFIX: &str = "agones.dev/sdk-";

/// A count and its capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fill {
    /// How many there are.
    pub count: u64,
    /// How many there may be.
    pub capacity: u64,
}

/// The server's rooms and players, each with its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Load {
    /// Open rooms, out of `--max-rooms`.
    pub rooms: Fill,
    /// Players, out of `--max-players`.
    pub players: Fill,
}

/// One call to make to the SDK server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `Ready`.
    Ready,
    /// `SetLabel(key, value)`.
    Label(String, String),
    /// `SetAnnotation(key, value)`.
    Annotation(String, String),
    /// `UpdateCounter(key)` to these absolute values.
    Counter(&'static str, Fill),
}

/// Exponential backoff with jitter: the wait doubles with each consecutive
/// failure from `base` up to `max`, scaled by a factor in [0.5, 1] so that
/// many servers that lost the same SDK server do not retry in step.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff from `base` to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        Backoff {
            base,
            max,
            failures: 0,
        }
    }

    /// The wait after one more failure; `jitter` is uniform in [0, 1).
    pub fn failed(&mut self, jitter: f64) -> Duration {
        let exp = self.base.saturating_mul(1 << self.failures.min(20));
        self.failures = self.failures.saturating_add(1);
        exp.min(self.max)
            .mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }

    /// A success: the next failure waits `base` again.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }
}

/// A label or annotation to hold, and whether the SDK server has it.
#[derive(Debug, Clone)]
struct Meta {
    key: String,
    value: String,
    confirmed: bool,
}

impl Meta {
    fn new((key, value): (String, String)) -> Meta {
        Meta {
            key,
            value,
            confirmed: false,
        }
    }

    /// Unconfirmed when the GameServer shows another value (e.g. the SDK
    /// server lost it).
    fn observe(&mut self, seen: &std::collections::BTreeMap<String, String>) {
        if seen.get(&format!("{SDK_PREFIX}{}", self.key)) != Some(&self.value) {
            self.confirmed = false;
        }
    }
}

/// The desired state and what is confirmed of it.
#[derive(Debug, Clone)]
pub struct Reconciler {
    ready: bool,
    labels: Vec<Meta>,
    annotations: Vec<Meta>,
    rooms: Option<Fill>,
    players: Option<Fill>,
    backoff: Backoff,
    retry_at: Option<Instant>,
}

impl Reconciler {
    /// Nothing confirmed yet: Ready first, then the labels and annotations,
    /// then the counters.
    pub fn new(
        labels: Vec<(String, String)>,
        annotations: Vec<(String, String)>,
        backoff: Backoff,
    ) -> Reconciler {
        Reconciler {
            ready: false,
            labels: labels.into_iter().map(Meta::new).collect(),
            annotations: annotations.into_iter().map(Meta::new).collect(),
            rooms: None,
            players: None,
            backoff,
            retry_at: None,
        }
    }

    /// The next call that would bring the SDK server to the desired state for
    /// `load`, or `None` when it holds it all or a failure's backoff has not
    /// run out at `now`.
    pub fn poll_call(&self, now: Instant, load: Load) -> Option<Call> {
        if self.retry_at.is_some_and(|t| now < t) {
            return None;
        }
        if !self.ready {
            return Some(Call::Ready);
        }
        if let Some(m) = self.labels.iter().find(|m| !m.confirmed) {
            return Some(Call::Label(m.key.clone(), m.value.clone()));
        }
        if let Some(m) = self.annotations.iter().find(|m| !m.confirmed) {
            return Some(Call::Annotation(m.key.clone(), m.value.clone()));
        }
        for (key, confirmed, fill) in [
            (ROOMS, self.rooms, load.rooms),
            (PLAYERS, self.players, load.players),
        ] {
            // Agones refuses a count over the capacity: never ask for one.
            let fill = Fill {
                count: fill.count.min(fill.capacity),
                ..fill
            };
            if confirmed != Some(fill) {
                return Some(Call::Counter(key, fill));
            }
        }
        None
    }

    /// The outcome of a call [`Reconciler::poll_call`] returned, at `now`;
    /// `jitter` uniform in [0, 1) spreads the retry.
    pub fn on_result(&mut self, call: &Call, ok: bool, now: Instant, jitter: f64) {
        if !ok {
            self.retry_at = Some(now + self.backoff.failed(jitter));
            return;
        }
        self.backoff.succeeded();
        self.retry_at = None;
        match call {
            Call::Ready => self.ready = true,
            Call::Label(key, value) => confirm(&mut self.labels, key, value),
            Call::Annotation(key, value) => confirm(&mut self.annotations, key, value),
            Call::Counter(key, fill) if *key == ROOMS => self.rooms = Some(*fill),
            Call::Counter(_, fill) => self.players = Some(*fill),
        }
    }

    /// When a failed call may be retried (`None`: no failure pending).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether `Ready` has been confirmed.
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// A GameServer seen on the SDK server (the watch stream): whatever it
    /// contradicts is sent again. A GameServer still starting has lost the
    /// Ready (a restarted SDK server); one that is Ready or Allocated is never
    /// sent Ready again (that would return an Allocated server to the pool).
    pub fn observe(&mut self, gs: &GameServer) {
        if gs.status.state == State::Starting {
            self.ready = false;
        }
        for m in &mut self.labels {
            m.observe(&gs.object_meta.labels);
        }
        for m in &mut self.annotations {
            m.observe(&gs.object_meta.annotations);
        }
        for (key, confirmed) in [(ROOMS, &mut self.rooms), (PLAYERS, &mut self.players)] {
            let seen = gs.counter(key).map(|c| Fill {
                count: u64::try_from(c.count).unwrap_or(0),
                capacity: u64::try_from(c.capacity).unwrap_or(0),
            });
            if seen.is_some() && seen != *confirmed {
                *confirmed = None;
            }
        }
    }
}

fn confirm(metas: &mut [Meta], key: &str, value: &str) {
    for m in metas
        .iter_mut()
        .filter(|m| m.key == key && m.value == value)
    {
        m.confirmed = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(rooms: u64, players: u64) -> Load {
        Load {
            rooms: Fill {
                count: rooms,
                capacity: 8,
            },
            players: Fill {
                count: players,
                capacity: 100,
            },
        }
    }

    fn reconciler() -> Reconciler {
        Reconciler::new(
            vec![("ticksync-version".into(), "0.1.0".into())],
            vec![("ticksync-build".into(), "0.1.0 (x)".into())],
            Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
        )
    }

    /// Runs every call that is due at `now`, all succeeding; returns them.
    fn settle(r: &mut Reconciler, now: Instant, l: Load) -> Vec<Call> {
        let mut done = Vec::new();
        while let Some(call) = r.poll_call(now, l) {
            r.on_result(&call, true, now, 0.5);
            done.push(call);
            assert!(done.len() < 10, "no fixpoint: {done:?}");
        }
        done
    }

    #[test]
    fn ready_then_metadata_then_counters_then_only_changes() {
        let mut r = reconciler();
        let t = Instant::now();
        let calls = settle(&mut r, t, load(1, 3));
        assert_eq!(
            calls,
            vec![
                Call::Ready,
                Call::Label("ticksync-version".into(), "0.1.0".into()),
                Call::Annotation("ticksync-build".into(), "0.1.0 (x)".into()),
                Call::Counter(ROOMS, load(1, 3).rooms),
                Call::Counter(PLAYERS, load(1, 3).players),
            ]
        );
        assert!(r.is_ready());
        assert_eq!(settle(&mut r, t, load(1, 3)), vec![]);
        assert_eq!(
            settle(&mut r, t, load(1, 4)),
            vec![Call::Counter(PLAYERS, load(1, 4).players)]
        );
        // A count over the capacity is clamped, not refused forever.
        let over = Load {
            players: Fill {
                count: 150,
                capacity: 100,
            },
            ..load(1, 0)
        };
        let calls = settle(&mut r, t, over);
        assert_eq!(
            calls,
            vec![Call::Counter(
                PLAYERS,
                Fill {
                    count: 100,
                    capacity: 100
                }
            )]
        );
    }

    #[test]
    fn failures_back_off_exponentially_and_a_success_resets() {
        let mut r = reconciler();
        let t0 = Instant::now();
        let mut t = t0;
        let mut waits = Vec::new();
        for _ in 0..7 {
            let call = r.poll_call(t, load(0, 0)).expect("Ready is due");
            assert_eq!(call, Call::Ready);
            r.on_result(&call, false, t, 0.999_999);
            let at = r.retry_at().expect("a retry is scheduled");
            assert_eq!(r.poll_call(at - Duration::from_millis(1), load(0, 0)), None);
            waits.push((at - t).as_millis());
            t = at;
        }
        assert_eq!(waits, vec![99, 199, 399, 799, 1599, 1999, 1999]);
        r.on_result(&Call::Ready, true, t, 0.0);
        let next = r.poll_call(t, load(0, 0)).expect("labels are due");
        r.on_result(&next, false, t, 0.0);
        // Jitter 0 halves the wait; the streak restarted at the base.
        assert_eq!(r.retry_at(), Some(t + Duration::from_millis(50)));
    }

    #[test]
    fn a_lost_update_is_sent_again_after_the_outage() {
        let mut r = reconciler();
        let t = Instant::now();
        settle(&mut r, t, load(1, 3));
        // Two players join while the SDK server is down: the call fails and
        // waits; the retry carries the count of the moment, not the history.
        let call = r.poll_call(t, load(1, 5)).expect("due");
        r.on_result(&call, false, t, 0.5);
        assert_eq!(r.poll_call(t, load(1, 4)), None);
        let later = r.retry_at().expect("scheduled");
        assert_eq!(
            settle(&mut r, later, load(1, 4)),
            vec![Call::Counter(PLAYERS, load(1, 4).players)]
        );
    }

    #[test]
    fn what_the_game_server_contradicts_is_sent_again() {
        let mut r = reconciler();
        let t = Instant::now();
        settle(&mut r, t, load(2, 7));
        let mut gs: GameServer = serde_json::from_value(serde_json::json!({
            "object_meta": {
                "labels": {"agones.dev/sdk-ticksync-version": "0.1.0"},
                "annotations": {"agones.dev/sdk-ticksync-build": "0.1.0 (x)"}
            },
            "status": {"state": "Allocated", "counters": {
                "rooms": {"count": "2", "capacity": "8"},
                "players": {"count": "7", "capacity": "100"}
            }}
        }))
        .expect("parses");
        r.observe(&gs);
        assert_eq!(settle(&mut r, t, load(2, 7)), vec![]);
        // An allocation changed a counter behind our back: the truth wins.
        gs.status.counters.get_mut(PLAYERS).expect("declared").count = 9;
        r.observe(&gs);
        assert_eq!(
            settle(&mut r, t, load(2, 7)),
            vec![Call::Counter(PLAYERS, load(2, 7).players)]
        );
        // A restarted SDK server that lost everything: Ready and all again.
        let fresh: GameServer = serde_json::from_value(serde_json::json!({
            "status": {"state": "Scheduled", "counters": {"rooms": {"count": "0", "capacity": "1000"}}}
        }))
        .expect("parses");
        r.observe(&fresh);
        let calls = settle(&mut r, t, load(2, 7));
        assert_eq!(calls.len(), 4, "{calls:?}");
        assert_eq!(calls[0], Call::Ready);
        // Players is not declared in that GameServer: nothing to contradict.
        assert_eq!(calls[3], Call::Counter(ROOMS, load(2, 7).rooms));
    }

    #[test]
    fn an_allocated_server_is_never_sent_ready_again() {
        let mut r = reconciler();
        let t = Instant::now();
        settle(&mut r, t, load(0, 0));
        for state in ["RequestReady", "Ready", "Allocated", "Reserved", "Shutdown"] {
            let gs: GameServer = serde_json::from_value(serde_json::json!({
                "object_meta": {
                    "labels": {"agones.dev/sdk-ticksync-version": "0.1.0"},
                    "annotations": {"agones.dev/sdk-ticksync-build": "0.1.0 (x)"}
                },
                "status": {"state": state}
            }))
            .expect("parses");
            r.observe(&gs);
            assert_eq!(settle(&mut r, t, load(0, 0)), vec![], "{state}");
        }
    }
}
