//! `Session`: one bot's protocol state machine, with no I/O and no clock.
//!
//! Shaped like quinn-proto: bytes from the server go in through
//! [`Session::handle_bytes`], the passage of time through [`Session::handle_timeout`],
//! and what the bot wants to send comes out of [`Session::poll_transmit`] and
//! [`Session::poll_event`]. `now` is always a parameter, so tests drive a session
//! message by message without sockets or sleeps. The async shell in
//! `connection.rs` only moves bytes and calls these methods.
//!
//! Reconstruction and prediction are the protocol crate's [`ClientWorld`] and
//! [`Predictor`]; this module only decides when to call them and counts what
//! happens.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use glam::IVec2;
use ticksync_protocol::{
    ApplyError, ClientWorld, DecodeError, ErrorCode, ErrorMsg, Hello, InputSeq, PROTOCOL_VERSION,
    PlayerId, Predictor, ResumeToken, ServerMsg, Snapshot, Tick, Welcome, codec,
};

use crate::walk::RandomWalk;
use budget::SendBudget;
pub use counters::Counters;
use numbering::Numbering;
pub(crate) use outbox::MAX_INPUT_BACKLOG;
use outbox::{Outbox, Outgoing};

mod budget;
mod counters;
mod numbering;
mod outbox;

/// Per-session settings.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Display name sent in `Hello`.
    pub name: Option<String>,
    /// Join token sent in `Hello`.
    pub auth_token: Option<String>,
    /// Seed of the random walk.
    pub seed: u64,
    /// Time between two pings (at most a third of the server's idle timeout
    /// is used, whatever this says).
    pub ping_interval: Duration,
    /// Decode, apply and verify every snapshot and predict the own player; when
    /// `false`, only count snapshots (reading their head for the ack) and bytes,
    /// and play on: a cheap bot for load runs (`ticksync-bot --verify N`).
    pub verify: bool,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            name: None,
            auth_token: None,
            seed: 0,
            ping_interval: Duration::from_secs(1),
            verify: true,
        }
    }
}

/// Something the shell may want to record or react to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The server accepted the `Hello`.
    Welcomed {
        /// The bot's player id.
        player_id: PlayerId,
        /// Whether an earlier session was resumed.
        resumed: bool,
    },
    /// A round-trip time measured by a `Ping`/`Pong`.
    Rtt(Duration),
    /// Time since the previous snapshot.
    SnapshotInterval(Duration),
    /// A snapshot could not be applied; a `Resync` has been queued.
    Desync(ApplyError),
    /// The server's position of the bot differed from the prediction.
    Mispredicted {
        /// Authoritative minus predicted position.
        error: IVec2,
    },
    /// The server sent an `Error`.
    ServerError(ErrorMsg),
    /// The server's `Welcome` holds values no client can play with
    /// ([`Welcome::validate`]): close with 1002, do not come back.
    Incompatible(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitWelcome,
    Playing,
}

/// One bot's protocol state: handshake, world reconstruction, prediction, inputs
/// and pings.
#[derive(Debug)]
pub struct Session {
    opts: SessionOptions,
    epoch: Instant,
    phase: Phase,
    welcome: Option<Welcome>,
    resume_token: Option<ResumeToken>,
    world: ClientWorld,
    /// A `Resync` is in flight: deltas are skipped until the full snapshot.
    awaiting_full: bool,
    /// Set at the first snapshot of a connection.
    numbering: Option<Numbering>,
    /// Without `verify`: the tick of the last snapshot counted.
    counted_tick: Option<Tick>,
    last_ack: InputSeq,
    walk: RandomWalk,
    quiesced: bool,
    next_ping: Option<Instant>,
    last_snapshot_at: Option<Instant>,
    /// When the last message arrived.
    last_received: Option<Instant>,
    /// When the lost session's last message arrived, until the next `Welcome`.
    lost_at: Option<Instant>,
    outbox: Outbox,
    events: VecDeque<Event>,
    counters: Counters,
}

impl Session {
    /// A new session; its `Hello` is ready in [`Session::poll_transmit`].
    pub fn new(opts: SessionOptions, now: Instant) -> Session {
        let walk = RandomWalk::new(opts.seed);
        let mut s = Session {
            opts,
            epoch: now,
            phase: Phase::AwaitWelcome,
            welcome: None,
            resume_token: None,
            // Replaced at `Welcome`, which says how large the world is.
            world: ClientWorld::new(IVec2::ZERO),
            awaiting_full: false,
            numbering: None,
            counted_tick: None,
            last_ack: InputSeq(0),
            walk,
            quiesced: false,
            next_ping: None,
            last_snapshot_at: None,
            last_received: None,
            lost_at: None,
            outbox: Outbox::new(),
            events: VecDeque::with_capacity(4),
            counters: Counters::default(),
        };
        s.outbox.push(Outgoing::Hello);
        s
    }

    /// Replaces the token the next `Hello` carries (a seat token after
    /// matchmaking).
    pub fn set_auth_token(&mut self, token: Option<String>) {
        self.opts.auth_token = token;
    }

    /// Starts over on a new connection: forgets the world and queues a `Hello` that
    /// resumes the previous session when `resume` is set and a token is known.
    pub fn restart(&mut self, resume: bool) {
        if !resume {
            self.resume_token = None;
        }
        if self.phase == Phase::Playing {
            self.lost_at = self.last_received;
        }
        self.phase = Phase::AwaitWelcome;
        self.world = ClientWorld::new(IVec2::ZERO);
        self.counted_tick = None;
        self.awaiting_full = false;
        self.next_ping = None;
        self.last_snapshot_at = None;
        self.outbox.reset();
        self.outbox.push(Outgoing::Hello);
    }

    /// Whether the lost session can still be taken back at `now`: `false` once
    /// `Welcome.resume_grace_ms` has passed since its last message (the server has
    /// removed the player and would answer `ResumeFailed`); the token is then
    /// dropped, so the next `Hello` starts a new session (docs/PROTOCOL.md, section
    /// 13, "Resume"). The shell asks before reconnecting, to matchmake again
    /// instead of trying a doomed resume.
    pub fn resumable(&mut self, now: Instant) -> bool {
        if self.resume_token.is_none() {
            return false;
        }
        let (Some(lost_at), Some(w)) = (self.lost_at, &self.welcome) else {
            return true;
        };
        let grace = Duration::from_millis(u64::from(w.limits.resume_grace_ms));
        if now.saturating_duration_since(lost_at) >= grace {
            self.resume_token = None;
            return false;
        }
        true
    }

    /// Stops (or restarts) generating inputs, e.g. to let the world come to rest.
    pub fn set_quiesced(&mut self, quiesced: bool) {
        if self.quiesced && !quiesced {
            // Resume from now on instead of catching up on the paused time.
            self.outbox.restart_input_clock();
        }
        self.quiesced = quiesced;
    }

    /// Handles one binary message from the server. A message of a type this
    /// version does not know is skipped (later versions may add some); any other
    /// decoding error is returned, and the connection should be closed with 1002
    /// (docs/PROTOCOL.md, "Decoding errors").
    pub fn handle_bytes(&mut self, bytes: &[u8], now: Instant) -> Result<(), DecodeError> {
        self.counters.messages_received += 1;
        self.counters.bytes_received += bytes.len() as u64;
        self.last_received = Some(now);
        if !self.opts.verify
            && let Some((ack, tick)) = codec::snapshot_head(bytes)
        {
            self.on_counted_snapshot(ack, tick, now);
            return Ok(());
        }
        match codec::decode_server(bytes) {
            Ok(msg) => {
                self.handle_msg(msg, now);
                Ok(())
            }
            Err(e) if e.is_unknown_message() => {
                self.counters.unknown_messages += 1;
                Ok(())
            }
            Err(e) => {
                self.counters.decode_errors += 1;
                Err(e)
            }
        }
    }

    /// Handles one decoded message from the server.
    pub fn handle_msg(&mut self, msg: ServerMsg, now: Instant) {
        match msg {
            ServerMsg::Welcome(w) => self.on_welcome(w, now),
            ServerMsg::Snapshot(s) => self.on_snapshot(s, now),
            ServerMsg::Pong { client_time_us, .. } => {
                self.counters.pongs += 1;
                let now_us = self.micros(now);
                if client_time_us <= now_us {
                    self.events
                        .push_back(Event::Rtt(Duration::from_micros(now_us - client_time_us)));
                }
            }
            ServerMsg::Error(e) => {
                self.counters.server_errors += 1;
                if e.code == ErrorCode::ResumeFailed {
                    // The next connection must start a new session.
                    self.resume_token = None;
                }
                self.events.push_back(Event::ServerError(e));
            }
        }
    }

    fn on_welcome(&mut self, w: Welcome, now: Instant) {
        if self.phase != Phase::AwaitWelcome {
            self.counters.unexpected_messages += 1;
            return;
        }
        if let Err(why) = w.validate() {
            self.counters.unexpected_messages += 1;
            self.resume_token = None;
            self.events.push_back(Event::Incompatible(why));
            return;
        }
        self.phase = Phase::Playing;
        self.resume_token = Some(w.resume_token);
        self.world = ClientWorld::new(w.movement.world_max);
        // Inputs sent before a disconnect may never have reached the server: the
        // numbering starts again from the first snapshot of this connection.
        self.numbering = None;
        self.last_ack = w.last_input_seq;
        self.next_ping = Some(now);
        self.lost_at = None;
        self.outbox.set_budget(SendBudget::of(&w.limits, now));
        self.events.push_back(Event::Welcomed {
            player_id: w.player_id,
            resumed: w.resumed,
        });
        self.welcome = Some(w);
    }

    /// Counts a snapshot: `false` if it came before `Welcome`.
    fn count_snapshot(&mut self, now: Instant) -> bool {
        if self.welcome.is_none() || self.phase != Phase::Playing {
            self.counters.unexpected_messages += 1;
            return false;
        }
        self.counters.snapshots += 1;
        if let Some(prev) = self.last_snapshot_at.replace(now) {
            self.events
                .push_back(Event::SnapshotInterval(now.saturating_duration_since(prev)));
        }
        true
    }

    /// A snapshot of a session that does not verify: only its head is read.
    fn on_counted_snapshot(&mut self, ack: InputSeq, tick: Tick, now: Instant) {
        if !self.count_snapshot(now) {
            return;
        }
        self.last_ack = ack;
        self.counted_tick = Some(tick);
        if self.numbering.is_none() {
            self.numbering = Some(Numbering::counted(ack));
            self.outbox.restart_input_clock();
        }
    }

    fn on_snapshot(&mut self, s: Snapshot, now: Instant) {
        if !self.count_snapshot(now) {
            return;
        }
        let Some(welcome) = &self.welcome else {
            return;
        };
        if self.awaiting_full && s.body.baseline.is_some() {
            self.counters.snapshots_skipped += 1;
            return;
        }
        let applied = match self.world.apply(&s.body) {
            Ok(applied) => applied,
            Err(e) => {
                self.counters.desyncs += 1;
                tracing::warn!(player = welcome.player_id.0, error = %e, "desync, requesting a full snapshot");
                self.events.push_back(Event::Desync(e));
                self.awaiting_full = true;
                self.outbox.push(Outgoing::Resync);
                return;
            }
        };
        self.counters
            .count_listing(&applied, s.body.baseline_age(), self.world.len());
        self.awaiting_full = false;
        self.last_ack = s.ack_input;
        let Some(own) = self.world.get(welcome.player_id) else {
            return;
        };
        match &mut self.numbering {
            None => {
                let p = Predictor::new(welcome.movement, own, s.ack_input);
                self.numbering = Some(Numbering::Predicted(p));
                self.outbox.restart_input_clock();
            }
            Some(n) => {
                if let Some(error) = n.reconcile(s.ack_input, own) {
                    self.counters.mispredictions += 1;
                    self.events.push_back(Event::Mispredicted { error });
                }
            }
        }
    }

    /// Generates the inputs due by `now` (one per server tick) as `Input` messages of
    /// at most [`MAX_INPUTS_PER_MSG`](ticksync_protocol::MAX_INPUTS_PER_MSG), and a `Ping` when one is due. Call it at the
    /// input send rate: everything generated since the last call goes out together.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase != Phase::Playing {
            return;
        }
        if self.next_ping.is_some_and(|t| now >= t) {
            self.outbox.push(Outgoing::Ping(self.micros(now)));
            self.next_ping = Some(now + self.ping_interval());
        }
        self.generate_inputs(now);
    }

    /// Time between two pings: the configured interval, but at most a third of
    /// the server's idle timeout (docs/PROTOCOL.md, section 3, "Keep-alive").
    fn ping_interval(&self) -> Duration {
        let idle = self.welcome.as_ref().map_or(Duration::MAX, |w| {
            Duration::from_millis(u64::from(w.limits.idle_timeout_ms))
        });
        self.opts.ping_interval.min(idle / 3)
    }

    fn generate_inputs(&mut self, now: Instant) {
        let (Some(numbering), Some(welcome)) = (&mut self.numbering, &self.welcome) else {
            return;
        };
        if self.quiesced {
            return;
        }
        let tick_rate = u32::from(welcome.tick_rate);
        let input_queue = welcome.limits.input_queue;
        let count = self
            .outbox
            .inputs_due(now, tick_rate, input_queue, &mut self.counters);
        let walk = &mut self.walk;
        self.outbox.push_inputs(count, || {
            let dir = walk.next_dir(tick_rate);
            (numbering.push(dir), dir)
        });
    }

    /// Encodes the next message to send into `out` (cleared first); `false` when
    /// there is nothing to send, or nothing the send budget allows at `now`
    /// (`Welcome.rate_limit` and `rate_burst`: it waits for a later call).
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>, now: Instant) -> bool {
        let opts = &self.opts;
        let resume_token = self.resume_token;
        let hello = || Hello {
            version: PROTOCOL_VERSION,
            name: opts.name.clone(),
            auth_token: opts.auth_token.clone(),
            resume_token,
        };
        let tick = self.tick();
        self.outbox
            .encode_next(out, now, tick, hello, &mut self.counters)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the server has accepted this connection's `Hello`.
    pub fn is_welcomed(&self) -> bool {
        self.phase == Phase::Playing
    }

    /// The last `Welcome` received (kept across reconnects).
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// The bot's player id, once welcomed.
    pub fn player_id(&self) -> Option<PlayerId> {
        self.welcome.as_ref().map(|w| w.player_id)
    }

    /// The reconstructed world.
    pub fn world(&self) -> &ClientWorld {
        &self.world
    }

    /// The tick of the world held (see [`ClientWorld::tick`]); for a session that
    /// does not verify, the tick of the last snapshot counted.
    pub fn tick(&self) -> Option<Tick> {
        match self.opts.verify {
            true => self.world.tick(),
            false => self.counted_tick,
        }
    }

    /// Whether this session verifies its snapshots ([`SessionOptions::verify`]).
    pub fn verifies(&self) -> bool {
        self.opts.verify
    }

    /// The predictor, once the first snapshot with the bot's own entity arrived.
    pub fn predictor(&self) -> Option<&Predictor> {
        match &self.numbering {
            Some(Numbering::Predicted(p)) => Some(p),
            _ => None,
        }
    }

    /// The last input the server acknowledged.
    pub fn last_ack(&self) -> InputSeq {
        self.last_ack
    }

    /// The last input generated (and sent, once the outbox is drained).
    pub fn last_input_seq(&self) -> InputSeq {
        match &self.numbering {
            Some(n) => InputSeq(n.next_seq().0.wrapping_sub(1)),
            None => self.last_ack,
        }
    }

    /// Whether input generation is paused.
    pub fn is_quiesced(&self) -> bool {
        self.quiesced
    }

    /// The counters so far.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The resume token from the last `Welcome`, if still valid.
    pub fn resume_token(&self) -> Option<ResumeToken> {
        self.resume_token
    }

    fn micros(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_micros() as u64
    }
}

#[cfg(test)]
mod tests;
