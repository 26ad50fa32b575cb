//! Rooms: many independent worlds in one process.
//!
//! A [`Room`] is one match: its own [`World`] (tick number, players, input
//! queues, resume tokens), its [`Views`] (interest, snapshot bodies), its
//! clients and its command queue. Rooms share nothing mutable; the only things
//! they touch outside themselves are the process's metrics and the registry
//! ([`Rooms`]) when they open, close, or a player joins or leaves.
//!
//! - [`kind`]: room templates (capacity, world, tick rate, interest);
//! - [`command`]: what connections and HTTP handlers may ask of a room;
//! - [`registry`]: open rooms by id, seat pool, resume tokens;
//! - [`seats`]: lock-free seat accounting;
//! - [`lifecycle`]: opening rooms, idle and commanded closes;
//! - [`stats`]: per-room figures for `GET /rooms`.
//!
//! [`Room::step`] is one tick; `schedule.rs` decides when it runs.

pub mod command;
pub mod kind;
pub mod lifecycle;
pub mod registry;
pub mod seats;
pub mod stats;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rustc_hash::FxHashMap;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info};

use ticksync_protocol::messages::close;
use ticksync_protocol::{
    EntityState, ErrorCode, ErrorMsg, FIXED_SCALE, PlayerId, ResumeToken, ServerMsg, Tick, Welcome,
    codec,
};

use crate::metrics::{DisconnectReason, InputRejection, Metrics, RoomCloseReason};
use crate::net::outbound::{Outbound, Rejected};
use crate::net::send::SendBatch;
use crate::session::{CloseCause, Closer, ConnId};
use crate::sim::{JoinError, SharedHeld, ViewJob, Views, World, lock_held};
pub use command::{Command, JoinReply, JoinRequest};
pub use kind::{KindSpec, Kinds, RoomKind, RoomLock};
pub use lifecycle::{CreateError, RoomHost};
pub use registry::{RoomGone, RoomHandle, RoomId, RoomInfo, Rooms};
use stats::{PlayerDetail, RoomDetail, TickWindow};

/// Ticks of view history kept for delta baselines (one second at 30 Hz).
const HISTORY_TICKS: usize = 32;

/// The close every connection of a closed room gets.
pub const ROOM_CLOSED: CloseCause = CloseCause {
    code: close::ROOM_CLOSED,
    reason: "room closed",
    metric: DisconnectReason::room_closed,
};

/// The close a kicked player's connection gets.
pub const KICKED: CloseCause = CloseCause {
    code: close::KICKED,
    reason: "kicked",
    metric: DisconnectReason::kicked,
};

/// A connected client as its room sees it.
#[derive(Debug)]
struct Client {
    conn: ConnId,
    out: Outbound,
    closer: Closer,
    /// What the last snapshot enqueued left the client holding: its baseline
    /// (with a view radius, the entity set too; without, only the tick).
    /// Shared: with exact circles the sender shard building the client's
    /// frames updates it (`sim/view_jobs.rs`).
    held: SharedHeld,
    needs_full: bool,
    stalled_ticks: u32,
    skipped: u64,
}

/// What the process gives every room.
#[derive(Debug, Clone)]
pub struct RoomEnv {
    /// The process's metrics (rooms add to them; no per-room labels).
    pub metrics: Arc<Metrics>,
    /// The registry.
    pub rooms: Arc<Rooms>,
}

/// Whether a room goes on after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stepped {
    /// Schedule its next tick.
    Open,
    /// It closed and released everything; drop it.
    Closed(RoomCloseReason),
}

/// One room: the state its tick thread owns exclusively.
pub struct Room {
    handle: Arc<RoomHandle>,
    env: RoomEnv,
    commands: mpsc::Receiver<Command>,
    world: World,
    views: Views,
    clients: FxHashMap<PlayerId, Client>,
    /// Each player's live resume token, to revoke it in the registry.
    tokens: FxHashMap<PlayerId, ResumeToken>,
    /// `Inspect` requests, answered once the tick's snapshots are out.
    inspections: Vec<oneshot::Sender<(Tick, Vec<EntityState>)>>,
    close_requests: Vec<oneshot::Sender<()>>,
    idle_ticks: u32,
    window: TickWindow,
    bytes_this_second: u64,
    published_players: i64,
}

impl Room {
    /// An empty room of `kind` and the handle the rest of the process keeps.
    pub fn new(id: RoomId, kind: Arc<RoomKind>, env: RoomEnv) -> (Room, Arc<RoomHandle>) {
        let (tx, commands) = mpsc::channel(kind.command_queue);
        let handle = Arc::new(RoomHandle::new(id, kind.clone(), tx));
        let world = World::new(kind.sim.clone());
        let views = Views::new(
            kind.spec.view_radius_fixed(),
            kind.spec.view_cell_fixed(),
            kind.sim.movement.world_max,
            HISTORY_TICKS,
        );
        let room = Room {
            handle: handle.clone(),
            env,
            commands,
            world,
            views,
            clients: FxHashMap::default(),
            tokens: FxHashMap::default(),
            inspections: Vec::new(),
            close_requests: Vec::new(),
            idle_ticks: 0,
            window: TickWindow::new(kind.spec.tick_rate),
            bytes_this_second: 0,
            published_players: 0,
        };
        (room, handle)
    }

    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.handle.id
    }

    /// The room's handle (kind, seats, figures).
    pub fn handle(&self) -> &Arc<RoomHandle> {
        &self.handle
    }

    /// The kind's tick period.
    pub fn period(&self) -> Duration {
        self.handle.kind.tick_period()
    }

    /// Players in the world.
    pub fn players(&self) -> usize {
        self.world.len()
    }

    /// One tick: commands, simulation, snapshots (into `batch`, the tick
    /// thread's frames, which the thread flushes once all its due rooms ran),
    /// then the lifecycle check.
    pub fn step(&mut self, batch: &mut SendBatch) -> Stepped {
        // Bounded by the queue's capacity, so a command storm cannot stretch
        // one tick without limit.
        for _ in 0..self.commands.max_capacity() {
            match self.commands.try_recv() {
                Ok(cmd) => self.handle_command(cmd),
                Err(_) => break,
            }
        }
        if !self.close_requests.is_empty() {
            return self.close(RoomCloseReason::command);
        }
        let (applied, expired) = self.world.advance();
        for id in expired {
            debug!(room = %self.id(), player = id.0, "resume grace expired");
            self.clients.remove(&id);
            self.player_removed(id);
        }
        self.send_snapshots(batch);
        for reply in self.inspections.drain(..) {
            let _ = reply.send((self.world.tick(), self.world.view().to_vec()));
        }
        self.publish(applied);
        self.lifecycle()
    }

    /// Records how long the last tick took and how late it started (the
    /// scheduler measures; the room keeps the figures).
    pub fn record_tick(&mut self, duration: Duration, lateness: Duration) {
        self.window.record(duration);
        let s = &self.handle.stats;
        s.ticks.fetch_add(1, Ordering::Relaxed);
        s.lateness_max_ns
            .fetch_max(lateness.as_nanos() as u64, Ordering::Relaxed);
        self.env
            .metrics
            .observe_tick(duration.as_secs_f64(), lateness.as_secs_f64());
        // Once a second of ticks: publish the window and the byte rate.
        if self
            .world
            .tick()
            .0
            .is_multiple_of(u32::from(self.handle.kind.spec.tick_rate))
        {
            s.tick_p50_ns.store(
                self.window.quantile(0.5).as_nanos() as u64,
                Ordering::Relaxed,
            );
            s.tick_p99_ns.store(
                self.window.quantile(0.99).as_nanos() as u64,
                Ordering::Relaxed,
            );
            s.bytes_per_sec.store(
                std::mem::take(&mut self.bytes_this_second),
                Ordering::Relaxed,
            );
            s.lateness_max_ns.store(0, Ordering::Relaxed);
        }
    }

    /// Counts ticks that could not run on time.
    pub fn record_missed(&self, n: u64) {
        self.handle
            .stats
            .missed_ticks
            .fetch_add(n, Ordering::Relaxed);
        self.env.metrics.ticks_missed.inc_by(n);
    }

    fn handle_command(&mut self, cmd: Command) {
        let m = &self.env.metrics;
        match cmd {
            Command::Join(req) => self.join(*req),
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
                    if self.world.player(player).is_none() {
                        self.player_removed(player);
                    }
                }
            }
            Command::Inspect { reply } => self.inspections.push(reply),
            Command::Detail { reply } => {
                let _ = reply.send(self.detail());
            }
            Command::Kick { player, reply } => {
                let present = self.world.player(player).is_some();
                if let Some(c) = self.clients.remove(&player) {
                    c.closer.close(KICKED);
                }
                if present {
                    info!(room = %self.id(), player = player.0, "player kicked");
                    self.world.disconnect(player, true);
                    self.player_removed(player);
                }
                let _ = reply.send(present);
            }
            Command::Close { reply } => self.close_requests.extend(reply),
        }
    }

    fn join(&mut self, req: JoinRequest) {
        let JoinRequest {
            conn,
            name,
            resume,
            token,
            seated,
            out,
            closer,
            reply,
        } = req;
        let joined = match self.world.join(name, token, resume) {
            Ok(j) => j,
            Err(e) => {
                if seated {
                    self.env.rooms.pool.release(&self.handle.seats);
                }
                let _ = reply.send(Err(join_error(e)));
                return;
            }
        };
        if seated && joined.resumed {
            // The resumed player kept its seat; the one taken for it is spare.
            self.env.rooms.pool.release(&self.handle.seats);
        }
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
            self.env.metrics.sessions_resumed.inc();
        }
        if let Some(old) = self.tokens.insert(joined.id, token) {
            self.env.rooms.token_revoked(&old);
        }
        self.env.rooms.token_issued(token, self.id());
        let spec = &self.handle.kind.spec;
        let welcome = ServerMsg::Welcome(Welcome {
            player_id: joined.id,
            tick: self.world.tick(),
            tick_rate: spec.tick_rate,
            movement: self.world.config().movement,
            fixed_scale: FIXED_SCALE as u16,
            view_radius: spec.view_radius_fixed(),
            resume_token: token,
            resumed: joined.resumed,
            last_input_seq: joined.last_input_seq,
            limits: self.handle.kind.limits,
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
                held: SharedHeld::default(),
                needs_full: true,
                stalled_ticks: 0,
                skipped: 0,
            },
        );
        let _ = reply.send(Ok(joined.id));
    }

    /// A player left the world for good: its seat and resume token go.
    fn player_removed(&mut self, id: PlayerId) {
        self.env.rooms.pool.release(&self.handle.seats);
        if let Some(token) = self.tokens.remove(&id) {
            self.env.rooms.token_revoked(&token);
        }
    }

    fn send_snapshots(&mut self, batch: &mut SendBatch) {
        let tick = self.world.tick();
        self.views.begin_tick(tick, self.world.view());
        let m = &self.env.metrics;
        let before = self.views.bodies_encoded();
        let stall_ticks = self.handle.kind.stall_ticks;
        // Exact circles: the frames are built by the sender shards from the
        // tick's published index; only their counts come back (a tick late).
        let shared = match self.views.view_tick() {
            Some(t) if !self.clients.is_empty() => Some(batch.view_tick(t)),
            _ => None,
        };
        let built = self.views.take_built();
        let (mut sent, mut skipped) = (0, 0);
        let (mut full_sent, mut bytes) = (built.full, built.bytes);
        for (id, client) in &mut self.clients {
            // One semaphore operation reserves the slot before any encoding.
            let permit = match client.out.try_reserve() {
                Ok(permit) => permit,
                Err(Rejected::Closed) => continue,
                Err(Rejected::Full) => {
                    // Full queue: skip this tick; the next snapshot is a delta against
                    // what the client really has.
                    skipped += 1;
                    client.skipped += 1;
                    client.stalled_ticks += 1;
                    if client.stalled_ticks == stall_ticks {
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
            if let Some(tick) = shared {
                let job = ViewJob {
                    held: client.held.clone(),
                    center,
                    ack,
                    full: client.needs_full,
                };
                permit.send_view(tick, job, batch);
            } else {
                let mut held = lock_held(&client.held);
                let (frame, full) = self.views.frame(center, &held, client.needs_full, ack);
                bytes += frame.len() as u64;
                permit.send(frame, batch);
                self.views.commit(&mut held);
                full_sent += u64::from(full);
            }
            client.needs_full = false;
            client.stalled_ticks = 0;
            sent += 1;
        }
        // Counted once per tick: these atomics are shared with the scrapers.
        m.snapshots_sent.inc_by(sent);
        m.snapshots_full.inc_by(full_sent);
        m.snapshots_skipped.inc_by(skipped);
        m.snapshot_bodies_encoded
            .inc_by(self.views.bodies_encoded() - before + built.bodies);
        self.bytes_this_second += bytes;
        let s = &self.handle.stats;
        s.bytes_total.fetch_add(bytes, Ordering::Relaxed);
        s.snapshots_skipped.fetch_add(skipped, Ordering::Relaxed);
    }

    /// Publishes the tick's figures to the room's stats and the process metrics.
    fn publish(&mut self, applied: u64) {
        let m = &self.env.metrics;
        m.inputs_applied.inc_by(applied);
        m.ticks.inc();
        let s = &self.handle.stats;
        s.tick.store(self.world.tick().0, Ordering::Release);
        s.players.store(self.world.len() as u32, Ordering::Release);
        s.connected
            .store(self.clients.len() as u32, Ordering::Relaxed);
        let players = self.world.len() as i64;
        m.players.inc_by(players - self.published_players);
        self.published_players = players;
    }

    /// Closes the room once it has been empty, with no seat reserved, for the
    /// kind's idle timeout.
    fn lifecycle(&mut self) -> Stepped {
        if !self.world.is_empty() {
            self.idle_ticks = 0;
            return Stepped::Open;
        }
        self.idle_ticks = self.idle_ticks.saturating_add(1);
        if self.idle_ticks >= self.handle.kind.idle_ticks && self.handle.seats.close_if_empty() {
            return self.close(RoomCloseReason::idle);
        }
        Stepped::Open
    }

    /// Closes every connection (4004), gives back every seat and resume token,
    /// and leaves the registry. The caller drops the room.
    fn close(&mut self, reason: RoomCloseReason) -> Stepped {
        self.handle.seats.close();
        for (_, c) in self.clients.drain() {
            c.closer.close(ROOM_CLOSED);
        }
        let rooms = &self.env.rooms;
        rooms.pool.release_n(self.world.len() as u32);
        for (_, token) in self.tokens.drain() {
            rooms.token_revoked(&token);
        }
        rooms.remove(self.id());
        let m = &self.env.metrics;
        m.players.dec_by(self.published_players);
        self.published_players = 0;
        m.room_closed(reason);
        self.handle.stats.players.store(0, Ordering::Release);
        info!(room = %self.id(), ?reason, players = self.world.len(), "room closed");
        for reply in self.close_requests.drain(..) {
            let _ = reply.send(());
        }
        Stepped::Closed(reason)
    }

    /// Closes a room whose tick panicked, as far as its state allows.
    pub fn abandon(&mut self) {
        self.close(RoomCloseReason::failed);
    }

    fn detail(&self) -> RoomDetail {
        let players = self
            .world
            .view()
            .iter()
            .filter_map(|e| self.world.player(e.id))
            .map(|p| {
                let client = self.clients.get(&p.id);
                PlayerDetail {
                    id: p.id.0,
                    name: p.name.clone(),
                    connected: client.is_some(),
                    input_queue: p.inputs.len(),
                    last_input: p.last_applied.0,
                    snapshots_skipped: client.map_or(0, |c| c.skipped),
                    rtt_us: client
                        .and_then(|c| c.out.rtt())
                        .map(|d| d.as_micros() as u64),
                }
            })
            .collect();
        RoomDetail {
            tick: self.world.tick().0,
            players,
        }
    }
}

/// The `Error` and close for a refused join.
fn join_error(e: JoinError) -> (ErrorMsg, CloseCause) {
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
    (
        ErrorMsg {
            code,
            message: e.to_string(),
        },
        CloseCause {
            code: code.close_code(),
            reason,
            metric,
        },
    )
}
