//! The tick threads: a fixed set of OS threads (`--tick-threads`, default one
//! per core), each running the rooms placed on it on their own schedules.
//!
//! A thread keeps its rooms in a deadline queue (a binary heap on each room's
//! next tick time), so rooms of different tick rates share a thread: it sleeps
//! until the earliest deadline, runs every room that is due, and starts over.
//! A room lives on one thread for its whole life, so it never ticks on two
//! threads at once and needs no lock; a slow room can delay the rooms of its
//! own thread but never those of another. Lateness and missed ticks are
//! counted per room ([`crate::room::stats::RoomStats`]) and in the metrics.
//!
//! New rooms go to the least-loaded thread ([`Placement`]); load is the
//! player-ticks per second of a thread's rooms, known at once when a room is
//! placed (a measured busy time would lag behind a burst of new rooms and send
//! them all to the same thread).
//!
//! Each thread's iteration ends in `ThreadLoop::end_of_iteration`: at that
//! point every frame its rooms produced for the ticks just run is in its
//! connection's queue. It is the one place a per-thread send batch is flushed.

use std::collections::BinaryHeap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tracing::{debug, error, info, warn};

use crate::net::send::{SendBatch, Senders};
use crate::room::lifecycle::Place;
use crate::room::{Room, Stepped};

/// Most ticks a room runs back to back to catch up after a stall; beyond that
/// its schedule moves forward and the skipped ticks are counted as missed.
const MAX_CATCH_UP_TICKS: u32 = 3;

/// Longest sleep of a thread with nothing due (it still checks for stop).
const IDLE_WAIT: Duration = Duration::from_millis(100);

/// What a thread publishes about itself after every iteration.
#[derive(Debug, Default)]
pub struct ThreadLoad {
    /// Rooms on the thread.
    pub rooms: AtomicU32,
    /// Players in those rooms.
    pub players: AtomicU32,
    /// Player-ticks per second of its rooms (an empty room counts one player),
    /// plus those of rooms placed but not yet picked up.
    cost: AtomicU64,
    pending: AtomicU64,
    /// Time spent in ticks over the last second, in thousandths.
    pub busy_permille: AtomicU32,
    /// Milliseconds since the scheduler started, at the last iteration.
    heartbeat_ms: AtomicU64,
}

/// One tick thread as `GET /rooms` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ThreadInfo {
    /// Rooms on the thread.
    pub rooms: u32,
    /// Players in those rooms.
    pub players: u32,
    /// Share of the last second spent ticking, in thousandths.
    pub busy_permille: u32,
}

/// Puts new rooms on the least-loaded tick thread.
#[derive(Debug)]
pub struct Placement {
    threads: Vec<(Mutex<Sender<Room>>, Arc<ThreadLoad>)>,
    started: Instant,
}

impl Placement {
    /// A placement with no threads: rooms placed are dropped at once (for
    /// tests of the network shell alone).
    pub fn without_threads() -> Placement {
        Placement {
            threads: Vec::new(),
            started: Instant::now(),
        }
    }

    /// Every thread's figures, by thread index.
    pub fn threads(&self) -> Vec<ThreadInfo> {
        self.threads
            .iter()
            .map(|(_, l)| ThreadInfo {
                rooms: l.rooms.load(Ordering::Relaxed),
                players: l.players.load(Ordering::Relaxed),
                busy_permille: l.busy_permille.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// Threads whose last iteration is older than `limit` (stuck in a tick, or
    /// dead): a liveness probe should fail while there is one.
    pub fn stalled_threads(&self, limit: Duration) -> usize {
        let now = self.started.elapsed().as_millis() as u64;
        self.threads
            .iter()
            .filter(|(_, l)| {
                now.saturating_sub(l.heartbeat_ms.load(Ordering::Relaxed))
                    > limit.as_millis() as u64
            })
            .count()
    }
}

impl Place for Placement {
    fn place(&self, room: Room) {
        let cost = room_cost(&room);
        let Some((i, (inbox, load))) = self.threads.iter().enumerate().min_by_key(|(_, (_, l))| {
            (
                l.cost.load(Ordering::Relaxed) + l.pending.load(Ordering::Relaxed),
                l.rooms.load(Ordering::Relaxed),
            )
        }) else {
            return;
        };
        load.pending.fetch_add(cost, Ordering::Relaxed);
        room.handle()
            .stats
            .thread
            .store(i as u32, Ordering::Relaxed);
        let sent = inbox.lock().map(|tx| tx.send(room).is_ok());
        if !matches!(sent, Ok(true)) {
            // The thread has stopped (shutdown): the room is dropped with it.
            load.pending.fetch_sub(cost, Ordering::Relaxed);
        }
    }
}

fn room_cost(room: &Room) -> u64 {
    (room.players() as u64 + 1) * u64::from(room.handle().kind.spec.tick_rate)
}

/// The running tick threads.
pub struct Scheduler {
    placement: Arc<Placement>,
    stop: Arc<AtomicBool>,
    joins: Vec<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts `threads` tick threads (at least one) at nice value `nice`, each
    /// flushing its frames to `senders`.
    pub fn start(threads: usize, nice: i32, senders: &Senders) -> std::io::Result<Scheduler> {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut slots = Vec::new();
        let mut joins = Vec::new();
        for index in 0..threads.max(1) {
            let (tx, rx) = channel();
            let load = Arc::new(ThreadLoad::default());
            let thread = ThreadLoop {
                index,
                inbox: rx,
                load: load.clone(),
                queue: BinaryHeap::new(),
                batch: senders.batch(),
                seq: 0,
                started,
                busy: Duration::ZERO,
                busy_since: Instant::now(),
            };
            let thread_stop = stop.clone();
            let join = std::thread::Builder::new()
                .name(format!("ticksync-tick-{index}"))
                .spawn(move || {
                    set_thread_nice(nice);
                    thread.run(&thread_stop)
                });
            match join {
                Ok(j) => joins.push(j),
                Err(e) => {
                    stop.store(true, Ordering::Release);
                    return Err(e);
                }
            }
            slots.push((Mutex::new(tx), load));
        }
        info!(threads = joins.len(), "tick threads started");
        Ok(Scheduler {
            placement: Arc::new(Placement {
                threads: slots,
                started,
            }),
            stop,
            joins,
        })
    }

    /// Where new rooms go.
    pub fn placement(&self) -> &Arc<Placement> {
        &self.placement
    }

    /// Stops every thread (their rooms are dropped) and waits for them.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for j in self.joins.drain(..) {
            let _ = j.join();
        }
    }

    /// Asks the threads to stop without waiting.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.request_stop();
    }
}

/// A room and the time its next tick is due.
struct Scheduled {
    due: Instant,
    seq: u64,
    room: Box<Room>,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: the heap's top is the earliest deadline (ties: first placed).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.seq).cmp(&(self.due, self.seq))
    }
}

/// One tick thread's state.
pub struct ThreadLoop {
    index: usize,
    inbox: Receiver<Room>,
    load: Arc<ThreadLoad>,
    queue: BinaryHeap<Scheduled>,
    /// This thread's frames of the ticks being run, flushed at the end of the
    /// iteration: one hand-off per sender shard, not one per client.
    batch: SendBatch,
    seq: u64,
    started: Instant,
    busy: Duration,
    busy_since: Instant,
}

impl ThreadLoop {
    fn run(mut self, stop: &AtomicBool) {
        while !stop.load(Ordering::Acquire) {
            let now = Instant::now();
            match self.queue.peek().map(|s| s.due) {
                Some(due) if due <= now => {
                    self.run_due(now);
                    self.end_of_iteration();
                }
                next => {
                    let wait = next.map_or(IDLE_WAIT, |due| (due - now).min(IDLE_WAIT));
                    match self.inbox.recv_timeout(wait) {
                        Ok(room) => self.adopt(room),
                        Err(RecvTimeoutError::Timeout) => self.heartbeat(),
                        Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
                    }
                }
            }
            while let Ok(room) = self.inbox.try_recv() {
                self.adopt(room);
            }
        }
        info!(
            thread = self.index,
            rooms = self.queue.len(),
            "tick thread stopped"
        );
    }

    /// Takes a newly placed room. Its first tick is aligned to the thread's
    /// grid of its period, so rooms of one tick rate tick in the same
    /// iteration: one wake-up and one flush per period, not one per room.
    fn adopt(&mut self, room: Room) {
        self.load
            .pending
            .fetch_sub(room_cost(&room), Ordering::Relaxed);
        debug!(thread = self.index, room = %room.id(), "room placed");
        let period = room.period().as_nanos().max(1);
        let since = self.started.elapsed().as_nanos();
        let next = (since / period + 1) * period;
        let due = self.started + Duration::from_nanos(next as u64);
        self.push(due, Box::new(room));
    }

    fn push(&mut self, due: Instant, room: Box<Room>) {
        self.seq += 1;
        self.queue.push(Scheduled {
            due,
            seq: self.seq,
            room,
        });
    }

    /// Runs every room due at `now`, catching up rooms that fell behind.
    fn run_due(&mut self, now: Instant) {
        while self.queue.peek().is_some_and(|s| s.due <= now) {
            let Some(Scheduled { mut due, room, .. }) = self.queue.pop() else {
                break;
            };
            let mut room = room;
            let period = room.period();
            let start = Instant::now();
            let lateness = start.saturating_duration_since(due);
            let behind = (lateness.as_nanos() / period.as_nanos().max(1)) as u32;
            if behind > MAX_CATCH_UP_TICKS {
                warn!(room = %room.id(), behind, "room fell behind; skipping ticks");
                due += period * behind;
                room.record_missed(u64::from(behind));
            } else if behind > 0 {
                room.record_missed(1);
            }
            let batch = &mut self.batch;
            let stepped = std::panic::catch_unwind(AssertUnwindSafe(|| room.step(batch)));
            let duration = start.elapsed();
            self.busy += duration;
            match stepped {
                Ok(Stepped::Open) => {
                    room.record_tick(duration, lateness);
                    self.push(due + period, room);
                }
                Ok(Stepped::Closed(_)) => {}
                Err(_) => {
                    // A bug, not input: the room goes, the thread and its
                    // other rooms go on.
                    error!(room = %room.id(), "room panicked during its tick; closing it");
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| room.abandon()));
                }
            }
        }
    }

    /// Every frame this thread's rooms produced for the ticks just run is in
    /// its connection's queue: a per-thread send batch is flushed here. Then
    /// the thread publishes its load for placement and liveness.
    fn end_of_iteration(&mut self) {
        self.batch.flush();
        let (mut players, mut cost) = (0u64, 0u64);
        for s in &self.queue {
            players += s.room.players() as u64;
            cost += room_cost(&s.room);
        }
        let l = &self.load;
        l.rooms.store(self.queue.len() as u32, Ordering::Relaxed);
        l.players.store(players as u32, Ordering::Relaxed);
        l.cost.store(cost, Ordering::Relaxed);
        let window = self.busy_since.elapsed();
        if window >= Duration::from_secs(1) {
            let permille = (self.busy.as_secs_f64() / window.as_secs_f64() * 1000.0) as u32;
            l.busy_permille.store(permille, Ordering::Relaxed);
            self.busy = Duration::ZERO;
            self.busy_since = Instant::now();
        }
        self.heartbeat();
    }

    fn heartbeat(&self) {
        self.load
            .heartbeat_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// Gives the calling thread the nice value `nice` (Linux: per thread).
fn set_thread_nice(nice: i32) {
    if nice == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take plain integers and touch no memory
        // of ours; on Linux PRIO_PROCESS with a thread id applies to that thread.
        let rc = unsafe {
            let tid = libc::gettid();
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
        };
        if rc == 0 {
            debug!(nice, "tick thread priority raised");
        } else {
            warn!(
                nice,
                error = %std::io::Error::last_os_error(),
                "cannot change the tick thread's priority; it keeps the process's"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    debug!(nice, "thread priorities are only set on Linux");
}
