//! The tick thread: owns the [`World`] exclusively (no lock on the hot path),
//! advances it at a fixed rate, and hands each client one encoded snapshot per tick.
//!
//! It runs on its own OS thread so network load on the async runtime cannot delay
//! it. Connection tasks talk to it only through the bounded [`Command`] channel,
//! and it talks back only with `try_send` into each client's bounded outbound
//! queue: the simulation never waits for a slow client.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    EntityState, ErrorCode, ErrorMsg, FIXED_SCALE, Input, PlayerId, ResumeToken, ServerMsg, Tick,
    Welcome, codec,
};

use crate::metrics::{DisconnectReason, InputRejection};
use crate::net::outbound::{Outbound, Rejected};
use crate::net::send::SendBatch;
use crate::shared::{CloseCause, Closer, ConnId, Shared};
use crate::sim::{HeldView, JoinError, SimConfig, Views, World};

/// Ticks of view history kept for delta baselines (one second at 30 Hz).
const HISTORY_TICKS: usize = 32;

/// Most ticks run back to back to catch up after a stall; beyond that the schedule
/// is moved forward and the skipped ticks are counted as missed.
const MAX_CATCH_UP_TICKS: u32 = 3;

/// What a connection asks of the tick thread.
#[derive(Debug)]
pub enum Command {
    /// A validated `Hello`: add (or resume) a player.
    Join {
        /// The connection.
        conn: ConnId,
        /// Display name.
        name: Option<String>,
        /// Resume token from the `Hello`.
        resume: Option<ResumeToken>,
        /// The new session token (random, from the connection task).
        token: ResumeToken,
        /// The connection's outbound queue: `Welcome` and snapshots go here.
        out: Outbound,
        /// Closes the connection (takeover, slow consumer).
        closer: Closer,
        /// The player id, or the error to send before closing.
        reply: oneshot::Sender<Result<PlayerId, (ErrorMsg, CloseCause)>>,
    },
    /// An input batch.
    Input {
        /// The player.
        player: PlayerId,
        /// The connection it came from.
        conn: ConnId,
        /// The batch.
        input: Input,
    },
    /// The client wants a full snapshot.
    Resync {
        /// The player.
        player: PlayerId,
        /// The connection it came from.
        conn: ConnId,
    },
    /// The connection ended.
    Leave {
        /// The player.
        player: PlayerId,
        /// The connection that ended.
        conn: ConnId,
        /// A deliberate leave (close 1000/1001): no resume grace.
        clean: bool,
    },
    /// Reports the world's current tick and entities (tests, tools).
    Inspect {
        /// Where to send the answer.
        reply: oneshot::Sender<(Tick, Vec<EntityState>)>,
    },
}

/// A connected client as the tick thread sees it.
#[derive(Debug)]
struct Client {
    conn: ConnId,
    out: Outbound,
    closer: Closer,
    /// What the last snapshot enqueued left the client holding: its baseline
    /// (with a view radius, the entity set too; without, only the tick).
    held: HeldView,
    needs_full: bool,
    stalled_ticks: u32,
}

/// The tick thread's state.
pub struct TickLoop {
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    world: World,
    views: Views,
    clients: FxHashMap<PlayerId, Client>,
    /// This thread's frames for the current tick, flushed once they are done.
    batch: SendBatch,
    stall_ticks: u32,
    /// `Inspect` requests, answered once the tick's snapshots are out so the
    /// answer is exactly the state those snapshots describe.
    inspections: Vec<oneshot::Sender<(Tick, Vec<EntityState>)>>,
}

impl TickLoop {
    /// A tick loop over an empty world.
    pub fn new(shared: Arc<Shared>, commands: mpsc::Receiver<Command>) -> TickLoop {
        let c = &shared.config;
        let world = World::new(SimConfig {
            movement: c.movement(),
            max_players: c.max_players,
            input_queue: c.input_queue,
            max_inputs_per_tick: 2,
            resume_grace_ticks: c.ticks(c.resume_grace),
        });
        let stall_ticks = c.ticks(c.stall_timeout);
        let views = Views::new(
            c.view_radius_fixed(),
            c.view_cell_fixed(),
            world.config().movement.world_max,
            HISTORY_TICKS,
        );
        let batch = shared.senders.batch();
        TickLoop {
            shared,
            commands,
            world,
            views,
            clients: FxHashMap::default(),
            batch,
            stall_ticks,
            inspections: Vec::new(),
        }
    }

    /// Runs until `stop` returns true, on a fixed schedule.
    pub fn run(mut self, stop: impl Fn() -> bool) {
        let period = self.shared.config.tick_period();
        let shared = self.shared.clone();
        let metrics = &shared.metrics;
        info!(
            tick_rate = self.shared.config.tick_rate,
            "tick loop started"
        );
        let mut next = Instant::now() + period;
        while !stop() {
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            let start = Instant::now();
            let lateness = start.saturating_duration_since(next);
            let behind = (lateness.as_nanos() / period.as_nanos()) as u32;
            if behind > MAX_CATCH_UP_TICKS {
                warn!(behind, "tick loop fell behind; skipping ticks");
                next += period * behind;
                metrics.ticks_missed.inc_by(u64::from(behind));
            } else if behind > 0 {
                metrics.ticks_missed.inc();
            }
            self.step();
            let duration = start.elapsed();
            metrics.observe_tick(duration.as_secs_f64(), lateness.as_secs_f64());
            next += period;
        }
        info!(tick = self.world.tick().0, "tick loop stopped");
    }

    /// One tick: commands, simulation, snapshots.
    pub fn step(&mut self) {
        // Bounded by the channel's capacity at most, so a command storm cannot
        // stretch one tick without limit.
        for _ in 0..self.commands.max_capacity() {
            match self.commands.try_recv() {
                Ok(cmd) => self.handle(cmd),
                Err(_) => break,
            }
        }
        let (applied, expired) = self.world.advance();
        for id in expired {
            debug!(player = id.0, "resume grace expired");
            self.clients.remove(&id);
        }
        self.send_snapshots();
        // This thread's frames for the tick are done: one hand-off per sender
        // shard, not one per client.
        self.batch.flush();
        for reply in self.inspections.drain(..) {
            let _ = reply.send((self.world.tick(), self.world.view().to_vec()));
        }
        let m = &self.shared.metrics;
        m.inputs_applied.inc_by(applied);
        m.ticks.inc();
        self.shared
            .tick
            .store(self.world.tick().0, Ordering::Release);
        self.shared
            .players
            .store(self.world.len() as u32, Ordering::Release);
        m.players.set(self.world.len() as i64);
    }

    fn handle(&mut self, cmd: Command) {
        let m = &self.shared.metrics;
        match cmd {
            Command::Join {
                conn,
                name,
                resume,
                token,
                out,
                closer,
                reply,
            } => {
                let result = self.join(conn, name, resume, token, out, closer);
                let _ = reply.send(result);
            }
            Command::Input {
                player,
                conn,
                input,
            } => {
                if self.clients.get(&player).is_some_and(|c| c.conn == conn) {
                    let o = self.world.queue_input(player, &input);
                    m.input_rejected(InputRejection::stale, u64::from(o.stale));
                    m.input_rejected(InputRejection::queue_full, u64::from(o.queue_full));
                    m.inputs_clamped.inc_by(u64::from(o.clamped));
                }
            }
            Command::Resync { player, conn } => {
                if let Some(c) = self.clients.get_mut(&player)
                    && c.conn == conn
                {
                    c.needs_full = true;
                }
            }
            Command::Leave {
                player,
                conn,
                clean,
            } => {
                if self.clients.get(&player).is_some_and(|c| c.conn == conn) {
                    self.clients.remove(&player);
                    self.world.disconnect(player, clean);
                }
            }
            Command::Inspect { reply } => self.inspections.push(reply),
        }
    }

    fn join(
        &mut self,
        conn: ConnId,
        name: Option<String>,
        resume: Option<ResumeToken>,
        token: ResumeToken,
        out: Outbound,
        closer: Closer,
    ) -> Result<PlayerId, (ErrorMsg, CloseCause)> {
        let joined = self.world.join(name, token, resume).map_err(|e| {
            let (code, reason, metric) = match e {
                JoinError::ServerFull => (
                    ErrorCode::ServerFull,
                    "server full",
                    DisconnectReason::server_full,
                ),
                JoinError::ResumeFailed => (
                    ErrorCode::ResumeFailed,
                    "resume failed",
                    DisconnectReason::resume_failed,
                ),
            };
            let cause = CloseCause {
                code: code.close_code(),
                reason,
                metric,
            };
            (
                ErrorMsg {
                    code,
                    message: e.to_string(),
                },
                cause,
            )
        })?;
        if joined.took_over
            && let Some(old) = self.clients.remove(&joined.id)
        {
            old.closer.close(CloseCause {
                code: close::SESSION_TAKEN_OVER,
                reason: "session resumed elsewhere",
                metric: DisconnectReason::taken_over,
            });
        }
        if joined.resumed {
            self.shared.metrics.sessions_resumed.inc();
        }
        let c = &self.shared.config;
        let welcome = ServerMsg::Welcome(Welcome {
            player_id: joined.id,
            tick: self.world.tick(),
            tick_rate: c.tick_rate,
            movement: self.world.config().movement,
            fixed_scale: FIXED_SCALE as u16,
            view_radius: c.view_radius_fixed(),
            resume_token: token,
            resumed: joined.resumed,
            last_input_seq: joined.last_input_seq,
        });
        // The queue is new and empty, so the Welcome always fits and precedes
        // every snapshot.
        let _ = out.try_send(Bytes::from(codec::encode_server(&welcome)));
        self.clients.insert(
            joined.id,
            Client {
                conn,
                out,
                closer,
                held: HeldView::default(),
                needs_full: true,
                stalled_ticks: 0,
            },
        );
        Ok(joined.id)
    }

    fn send_snapshots(&mut self) {
        let tick = self.world.tick();
        self.views.begin_tick(tick, self.world.view());
        let m = &self.shared.metrics;
        let before = self.views.bodies_encoded();
        let (mut sent, mut full_sent) = (0, 0);
        for (id, client) in &mut self.clients {
            // One semaphore operation reserves the slot before any encoding.
            let permit = match client.out.try_reserve() {
                Ok(permit) => permit,
                Err(Rejected::Closed) => continue,
                Err(Rejected::Full) => {
                    // Full queue: skip this tick; the next snapshot is a delta against
                    // what the client really has.
                    m.snapshots_skipped.inc();
                    client.stalled_ticks += 1;
                    if client.stalled_ticks == self.stall_ticks {
                        client.closer.close(CloseCause {
                            code: close::SLOW_CONSUMER,
                            reason: "not reading snapshots",
                            metric: DisconnectReason::slow_consumer,
                        });
                    }
                    continue;
                }
            };
            let player = self.world.player(*id);
            let ack = player.map(|p| p.last_applied).unwrap_or_default();
            let center = player.map(|p| p.pos).unwrap_or_default();
            let (frame, full) = self
                .views
                .frame(center, &client.held, client.needs_full, ack);
            permit.send(frame, &mut self.batch);
            self.views.commit(&mut client.held);
            client.needs_full = false;
            client.stalled_ticks = 0;
            sent += 1;
            full_sent += u64::from(full);
        }
        // Counted once per tick: these atomics are shared with the scrapers.
        m.snapshots_sent.inc_by(sent);
        m.snapshots_full.inc_by(full_sent);
        m.snapshot_bodies_encoded
            .inc_by(self.views.bodies_encoded() - before);
    }
}

/// Starts the tick loop on its own thread; it stops once `stop` returns true.
pub fn spawn(
    shared: Arc<Shared>,
    commands: mpsc::Receiver<Command>,
    stop: impl Fn() -> bool + Send + 'static,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ticksync-tick".into())
        .spawn(move || {
            set_thread_nice(shared.config.tick_nice);
            TickLoop::new(shared, commands).run(stop)
        })
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
            info!(nice, "tick thread priority raised");
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
