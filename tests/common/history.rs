//! The server's world tick by tick ([`Recorder`] → [`History`]) and bots' worlds
//! sampled over time ([`ViewLog`]), so a test can check that every bot's world at
//! tick t is exactly the server's world at tick t — while players move, join and
//! leave — instead of comparing only once everything stands still.
//!
//! How exact a record is: `Server::world()` is answered right after the tick's
//! snapshots are enqueued, so a record of tick t is exactly the state the
//! snapshots of tick t describe, membership, positions and velocities alike, and
//! [`History::check`] allows no difference at all.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ticksync_bot::BotHandle;
use ticksync_protocol::{EntityState, PlayerId, Tick};
use ticksync_server::Server;
use tokio::task::JoinHandle;

use super::{WAIT, within};

type Records = BTreeMap<u32, Vec<EntityState>>;

/// The server's world at each tick a [`Recorder`] saw, sorted by id.
#[derive(Debug, Clone, Default)]
pub struct History {
    records: Records,
}

/// The outcome of comparing a bot's world with the [`History`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Equal to the server's world at that tick.
    Equal,
    /// The tick (or, for a membership question, the tick before) was not recorded.
    Unrecorded,
    /// Different: what differs.
    Differs(String),
}

fn has(entities: &[EntityState], id: PlayerId) -> bool {
    entities.binary_search_by_key(&id, |e| e.id).is_ok()
}

impl FromIterator<(Tick, Vec<EntityState>)> for History {
    /// A history from `(tick, entities sorted by id)` pairs (for tests of the checks).
    fn from_iter<I: IntoIterator<Item = (Tick, Vec<EntityState>)>>(iter: I) -> History {
        History {
            records: iter.into_iter().map(|(t, e)| (t.0, e)).collect(),
        }
    }
}

impl History {
    /// The server's entities at `tick`, if recorded.
    pub fn get(&self, tick: Tick) -> Option<&[EntityState]> {
        self.records.get(&tick.0).map(Vec::as_slice)
    }

    /// Recorded ticks, ascending.
    pub fn ticks(&self) -> impl Iterator<Item = Tick> + '_ {
        self.records.keys().map(|&t| Tick(t))
    }

    /// Number of ticks recorded.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The first recorded tick at or after `from` whose world holds (`present`) or
    /// lacks (`!present`) `id`.
    pub fn first_tick(&self, id: PlayerId, present: bool, from: Tick) -> Option<Tick> {
        self.records
            .range(from.0..)
            .find(|(_, e)| has(e, id) == present)
            .map(|(&t, _)| Tick(t))
    }

    /// The last recorded tick before `before` whose world holds (`present`) or
    /// lacks (`!present`) `id`.
    pub fn last_tick_before(&self, id: PlayerId, present: bool, before: Tick) -> Option<Tick> {
        self.records
            .range(..before.0)
            .rev()
            .find(|(_, e)| has(e, id) == present)
            .map(|(&t, _)| Tick(t))
    }

    /// Compares a bot's world at `tick` with the server's world of that tick.
    pub fn check(&self, tick: Tick, entities: &[EntityState]) -> Verdict {
        let Some(server) = self.get(tick) else {
            return Verdict::Unrecorded;
        };
        let (mut i, mut j) = (0, 0);
        loop {
            match (entities.get(i), server.get(j)) {
                (None, None) => return Verdict::Equal,
                (Some(b), Some(s)) if b.id == s.id => {
                    if b != s {
                        return Verdict::Differs(format!(
                            "tick {}: player {} at {:?} moving {:?} in the bot's world, at {:?} \
                             moving {:?} on the server",
                            tick.0, b.id.0, b.pos.0, b.vel, s.pos.0, s.vel
                        ));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(b), s) if s.is_none_or(|s| b.id < s.id) => {
                    return Verdict::Differs(format!(
                        "tick {}: the bot's world has player {}, the server's lacks it",
                        tick.0, b.id.0
                    ));
                }
                (_, Some(s)) => {
                    return Verdict::Differs(format!(
                        "tick {}: the bot's world lacks player {}, the server's has it",
                        tick.0, s.id.0
                    ));
                }
                (Some(_), None) => unreachable!("covered by the arm above"),
            }
        }
    }
}

/// Records the server's world at (nearly) every tick in a background task: each
/// `Server::world()` call is answered at the next tick, so polling back to back
/// sees consecutive ticks unless the test runtime falls behind.
pub struct Recorder {
    records: Arc<Mutex<Records>>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Recorder {
    /// Starts recording `server`.
    pub fn start(server: Arc<Server>) -> Recorder {
        let records = Arc::new(Mutex::new(Records::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s) = (records.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Acquire) {
                let Some((tick, entities)) = server.world().await else {
                    // No room yet (rooms open with their first player), or
                    // the server stopped: look again shortly.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                };
                // The first answer for a tick has the fewest joins and leaves of
                // the next drain mixed in.
                r.lock().unwrap().entry(tick.0).or_insert(entities);
            }
        });
        Recorder {
            records,
            stop,
            task,
        }
    }

    /// What was recorded so far.
    pub fn history(&self) -> History {
        History {
            records: self.records.lock().unwrap().clone(),
        }
    }

    /// Waits until `tick` is recorded.
    pub async fn wait_for(&self, tick: Tick) {
        within(
            WAIT,
            &format!("the recorder to see tick {}", tick.0),
            async {
                while self
                    .records
                    .lock()
                    .unwrap()
                    .last_key_value()
                    .is_none_or(|(&t, _)| t < tick.0)
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            },
        )
        .await;
    }

    /// Stops recording (dropping its reference to the server) and returns the history.
    pub async fn finish(self) -> History {
        self.stop.store(true, Ordering::Release);
        within(WAIT, "the recorder to stop", self.task)
            .await
            .expect("recorder task");
        History {
            records: std::mem::take(&mut *self.records.lock().unwrap()),
        }
    }
}

/// One sampled bot world.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the bot in the slice given to [`ViewLog::sample`].
    pub bot: usize,
    /// The bot's player id.
    pub player: Option<PlayerId>,
    /// The tick of its world.
    pub tick: Tick,
    /// Its world.
    pub entities: Vec<EntityState>,
}

/// Bots' worlds sampled over time, checked against a [`History`] afterwards (a
/// bot usually shows a tick before the server has answered for it).
#[derive(Debug, Default)]
pub struct ViewLog {
    /// Every sample, in the order taken.
    pub samples: Vec<Sample>,
}

/// How many samples [`ViewLog::check`] could compare exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    /// Samples equal to the server's world of their tick.
    pub checked: usize,
    /// Samples whose tick the recorder missed.
    pub unrecorded: usize,
}

impl ViewLog {
    /// Samples every bot's world once (skipping a bot whose tick has not changed).
    pub async fn sample(&mut self, bots: &[BotHandle]) {
        for (i, b) in bots.iter().enumerate() {
            let v = super::view(b).await;
            let Some(tick) = v.tick else { continue };
            let seen = self
                .samples
                .iter()
                .rev()
                .take(bots.len())
                .any(|s| s.bot == i && s.tick == tick);
            if !seen {
                self.samples.push(Sample {
                    bot: i,
                    player: v.player_id,
                    tick,
                    entities: v.entities,
                });
            }
        }
    }

    /// Samples every bot's world every `every` for `duration`.
    pub async fn sample_for(&mut self, bots: &[BotHandle], duration: Duration, every: Duration) {
        let end = tokio::time::Instant::now() + duration;
        while tokio::time::Instant::now() < end {
            self.sample(bots).await;
            tokio::time::sleep(every).await;
        }
    }

    /// Asserts that every sample equals the server's world of its tick.
    pub fn check(&self, history: &History) -> Coverage {
        let mut cov = Coverage {
            checked: 0,
            unrecorded: 0,
        };
        for s in &self.samples {
            match history.check(s.tick, &s.entities) {
                Verdict::Equal => cov.checked += 1,
                Verdict::Unrecorded => cov.unrecorded += 1,
                Verdict::Differs(d) => panic!("bot #{} ({:?}): {d}", s.bot, s.player),
            }
        }
        cov
    }
}
