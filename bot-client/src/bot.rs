//! One bot as a task, and [`BotHandle`], the way a run or a test controls it:
//! inspect its reconstructed world, pause its inputs, close or drop its
//! connection. The task reconnects with exponential backoff and jitter when its
//! options ask for it, resuming its session.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use ticksync_protocol::{EntityState, ErrorCode, FixedPos, InputSeq, PlayerId, Tick, close};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout};

use crate::config::parse_ws_url;
use crate::connection::{Command, Driver, Ended, connect};
use crate::error::BotError;
use crate::matchmake::{Matchmaking, matchmake};
use crate::session::{Counters, Session, SessionOptions};
use crate::stats::SharedStats;
use crate::tls::{self, TlsClient};

/// How long a churning bot waits between leaving a finished match and
/// matchmaking again (plus up to half of it as jitter): several ticks, so
/// every player of the finished room is gone first.
const CHURN_PAUSE: Duration = Duration::from_millis(250);

/// Reconnect delays: `min`, doubling per failed attempt up to `max`, each with
/// up to half of it as random jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub min: Duration,
    /// Longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based), given a random `unit` in
    /// `0.0..1.0` for the jitter.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let exp = self.min.saturating_mul(1 << attempt.min(20)).min(self.max);
        exp / 2 + exp.mul_f64(unit.clamp(0.0, 1.0) / 2.0)
    }
}

/// Settings of one bot.
#[derive(Debug, Clone)]
pub struct BotOptions {
    /// WebSocket URL of the server, `ws://HOST:PORT/ws` or `wss://HOST:PORT/ws`.
    pub url: String,
    /// How to verify a `wss://` server; `None`: the system's root certificates.
    pub tls: Option<TlsClient>,
    /// Display name.
    pub name: Option<String>,
    /// Join token for servers with an auth secret.
    pub auth_token: Option<String>,
    /// Seed of the bot's random walk and jitter.
    pub seed: u64,
    /// Input messages per second (each carries the ticks since the last one).
    pub input_rate: u32,
    /// Time between pings.
    pub ping_interval: Duration,
    /// Limit for TCP connect + upgrade, and again for the `Welcome`.
    pub connect_timeout: Duration,
    /// Reconnect after a lost connection; `None`: the bot ends instead.
    pub reconnect: Option<Backoff>,
    /// Ask `POST /matchmake` for a seat before each fresh join (not before a
    /// resume); `auth_token` then goes to the matchmaker as the Bearer token.
    pub matchmake: Option<Matchmaking>,
    /// Decode, apply and verify every snapshot and predict (the default); when
    /// `false`, only count snapshots and bytes ([`SessionOptions::verify`]).
    pub verify: bool,
    /// With `matchmake`: a match is the first this-long of its room (by the
    /// room's tick); at its end the bot leaves (close 1000) and matchmakes
    /// again, so rooms are opened and closed all the time (room churn).
    pub churn: Option<Duration>,
}

impl BotOptions {
    /// Options for a bot of `url` with the defaults: 30 inputs/s, a ping a second,
    /// no reconnect.
    pub fn new(url: impl Into<String>) -> BotOptions {
        BotOptions {
            url: url.into(),
            tls: None,
            name: None,
            auth_token: None,
            seed: 0,
            input_rate: 30,
            ping_interval: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            reconnect: None,
            matchmake: None,
            verify: true,
            churn: None,
        }
    }

    fn session_options(&self) -> SessionOptions {
        SessionOptions {
            name: self.name.clone(),
            auth_token: self.auth_token.clone(),
            seed: self.seed,
            ping_interval: self.ping_interval,
            verify: self.verify,
        }
    }
}

/// A bot's state as seen from outside, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BotView {
    /// The bot's player id (from the last `Welcome`).
    pub player_id: Option<PlayerId>,
    /// Whether the current connection is welcomed.
    pub connected: bool,
    /// The tick of the reconstructed world (`None` while it is not valid).
    pub tick: Option<Tick>,
    /// The reconstructed world, sorted by id.
    pub entities: Vec<EntityState>,
    /// The bot's own position in the reconstructed world (the server's word).
    pub own_position: Option<FixedPos>,
    /// The predicted position after all inputs sent.
    pub predicted_position: Option<FixedPos>,
    /// The last input generated.
    pub last_input_seq: InputSeq,
    /// The last input the server acknowledged.
    pub last_ack: InputSeq,
    /// Whether input generation is paused.
    pub quiesced: bool,
    /// The bot's counters.
    pub counters: Counters,
    /// The room `--matchmake` seated the bot in (`None` without).
    pub room: Option<String>,
}

impl BotView {
    pub(crate) fn of(s: &Session) -> BotView {
        let player_id = s.player_id();
        BotView {
            player_id,
            connected: s.is_welcomed(),
            tick: s.tick(),
            entities: s.world().to_sorted_vec(),
            own_position: player_id.and_then(|id| s.world().get(id)),
            predicted_position: s.predictor().map(|p| p.position()),
            last_input_seq: s.last_input_seq(),
            last_ack: s.last_ack(),
            quiesced: s.is_quiesced(),
            counters: *s.counters(),
            room: None,
        }
    }

    /// Whether the server has processed every input the bot sent.
    pub fn all_inputs_acked(&self) -> bool {
        self.last_ack == self.last_input_seq
    }
}

/// How a bot ended.
#[derive(Debug)]
pub struct BotOutcome {
    /// The last player id it had.
    pub player_id: Option<PlayerId>,
    /// Whether any of its connections was welcomed.
    pub connected: bool,
    /// Whether it was playing when it was asked to stop. A bot whose connection
    /// was lost (and not re-established) before that was not.
    pub connected_at_stop: bool,
    /// Total time its connections were welcomed.
    pub connected_for: Duration,
    /// Its counters.
    pub counters: Counters,
    /// The error that ended its last connection, if any.
    pub last_error: Option<BotError>,
}

/// Controls one running bot. Dropping the handle closes the bot cleanly.
#[derive(Debug)]
pub struct BotHandle {
    pub(crate) commands: mpsc::UnboundedSender<Command>,
    pub(crate) task: JoinHandle<BotOutcome>,
    player_id: Option<PlayerId>,
}

impl BotHandle {
    /// Starts a bot and waits until the server welcomed it.
    pub async fn connect(opts: BotOptions) -> Result<BotHandle, BotError> {
        parse_ws_url(&opts.url)?;
        let (tx, rx) = oneshot::channel();
        let mut handle = spawn(opts, Arc::new(SharedStats::new()), Some(tx));
        match rx.await {
            Ok(Ok(id)) => {
                handle.player_id = Some(id);
                Ok(handle)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(BotError::Stopped),
        }
    }

    /// The player id the bot was welcomed with (after [`BotHandle::connect`]).
    pub fn player_id(&self) -> Option<PlayerId> {
        self.player_id
    }

    /// The bot's current state.
    pub async fn view(&self) -> Result<BotView, BotError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Inspect(tx))
            .map_err(|_| BotError::Stopped)?;
        rx.await.map_err(|_| BotError::Stopped)
    }

    /// Polls the bot's state until `pred` holds, for at most `limit`.
    pub async fn wait_until(
        &self,
        limit: Duration,
        mut pred: impl FnMut(&BotView) -> bool,
    ) -> Result<BotView, BotError> {
        let poll = async {
            loop {
                let view = self.view().await?;
                if pred(&view) {
                    return Ok(view);
                }
                sleep(Duration::from_millis(5)).await;
            }
        };
        timeout(limit, poll)
            .await
            .map_err(|_| BotError::Timeout("the bot's state"))?
    }

    /// Stops (`true`) or resumes (`false`) sending inputs; pings and snapshots go on.
    pub fn set_quiesced(&self, quiesced: bool) {
        let _ = self.commands.send(Command::Quiesce(quiesced));
    }

    /// Drops the TCP connection without a WebSocket close frame, as a crash or a
    /// network failure would. The bot reconnects if its options say so.
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::DropConnection);
    }

    /// Closes the connection with code 1000 and waits for the bot to end.
    pub async fn close(self) -> BotOutcome {
        let _ = self.commands.send(Command::Close);
        self.join().await
    }

    /// Waits for the bot to end by itself.
    pub async fn join(self) -> BotOutcome {
        self.task.await.unwrap_or_else(|e| BotOutcome {
            player_id: self.player_id,
            connected: false,
            connected_at_stop: false,
            connected_for: Duration::ZERO,
            counters: Counters::default(),
            last_error: Some(BotError::Stopped).filter(|_| !e.is_cancelled()),
        })
    }
}

/// Starts a bot task that records into `stats`; `ready` learns the outcome of its
/// first connection.
pub(crate) fn spawn(
    opts: BotOptions,
    stats: Arc<SharedStats>,
    ready: Option<oneshot::Sender<Result<PlayerId, BotError>>>,
) -> BotHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let session = Session::new(
        opts.session_options(),
        tokio::time::Instant::now().into_std(),
    );
    let driver = Driver::new(session, stats, rx, opts, ready);
    BotHandle {
        commands: tx,
        task: tokio::spawn(bot_main(driver)),
        player_id: None,
    }
}

impl Driver {
    /// Asks the matchmaker for a seat (timed into the run's statistics); the
    /// seat token becomes the session's `Hello.auth_token`.
    async fn take_seat(&mut self) -> Result<(BotOptions, String), BotError> {
        let want = self.opts.matchmake.clone().unwrap_or_default();
        let started = Instant::now();
        let seat = matchmake(
            &self.opts.url,
            &want,
            self.opts.auth_token.as_deref(),
            self.opts.tls.as_ref(),
        )
        .await?;
        self.stats.matchmade(started.elapsed());
        self.session.set_auth_token(Some(seat.token));
        self.room = Some(seat.room.clone());
        let opts = BotOptions {
            url: seat.url,
            ..self.opts.clone()
        };
        Ok((opts, seat.room))
    }
}

/// Whether a failure is worth retrying.
fn retryable(e: &BotError) -> bool {
    match e {
        BotError::Refused(m) => {
            !matches!(m.code, ErrorCode::VersionMismatch | ErrorCode::AuthFailed)
        }
        BotError::Closed { code, .. } => *code != close::SESSION_TAKEN_OVER,
        // An untrusted certificate stays untrusted; a reset mid-handshake may not.
        BotError::Tls(e) => !tls::is_certificate_error(e),
        BotError::Config(_) | BotError::Stopped | BotError::Incompatible(_) => false,
        // Full or draining (503), over the address's limits (429), or no
        // answer: later; another 4xx will not change.
        BotError::Matchmake { status, .. } => status.is_none_or(|s| s == 429 || s >= 500),
        _ => true,
    }
}

async fn bot_main(mut d: Driver) -> BotOutcome {
    let mut rng = SmallRng::seed_from_u64(d.opts.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut attempt = 0u32;
    let mut last_error = None;
    let mut connected_at_stop = false;
    // With --matchmake: the options of the seat's connection, and its room.
    let mut seat: Option<(BotOptions, String)> = None;
    // With --matchmake: when the last welcomed connection was lost.
    let mut lost_at: Option<Instant> = None;
    // With --churn: the last match ended and the next has not begun.
    let mut between_matches = false;
    loop {
        // A session lost longer ago than its resume grace cannot come back
        // (docs/PROTOCOL.md, section 13): a fresh join, after a new seat with
        // --matchmake, instead of a doomed resume.
        if d.session.resume_token().is_some() && !d.session.resumable(Instant::now()) {
            d.stats.resumes_expired.fetch_add(1, Relaxed);
            if d.opts.matchmake.is_some() && seat.take().is_some() {
                d.rematchmaking_since
                    .get_or_insert_with(|| lost_at.unwrap_or_else(Instant::now));
            }
        }
        let resuming = d.session.resume_token().is_some();
        let mut welcomed_now = false;
        let mut match_over = false;
        let conn = timeout(d.opts.connect_timeout, async {
            if d.opts.matchmake.is_some() && seat.is_none() {
                seat = Some(d.take_seat().await?);
            }
            connect(seat.as_ref().map_or(&d.opts, |s| &s.0)).await
        })
        .await
        .unwrap_or(Err(BotError::Timeout("connect")));
        let failure = match conn {
            Ok(ws) => {
                let (ended, welcomed) = d.drive(ws).await;
                welcomed_now = welcomed;
                if welcomed {
                    attempt = 0;
                    between_matches = false;
                    if let Some((_, room)) = &seat {
                        d.stats.room_joined(room);
                    }
                    lost_at = None;
                }
                match ended {
                    Ended::MatchOver => {
                        d.stats.matches.fetch_add(1, Relaxed);
                        match_over = true;
                        between_matches = true;
                        None
                    }
                    Ended::Closed => {
                        // A churning bot stopped on its way from one match
                        // to the next was playing all the same.
                        connected_at_stop = welcomed || between_matches;
                        break;
                    }
                    Ended::Dropped if d.opts.reconnect.is_none() => break,
                    Ended::Dropped => None,
                    Ended::Lost(e) => {
                        let counter = if welcomed {
                            &d.stats.disconnects
                        } else {
                            &d.stats.connect_failures
                        };
                        counter.fetch_add(1, Relaxed);
                        if welcomed
                            && matches!(
                                e,
                                BotError::Closed {
                                    code: close::GOING_AWAY,
                                    ..
                                }
                            )
                        {
                            d.stats.drained.fetch_add(1, Relaxed);
                        }
                        Some(e)
                    }
                }
            }
            Err(e) => {
                d.stats.connect_failures.fetch_add(1, Relaxed);
                Some(e)
            }
        };
        // After the server closed with 1000, 1002, 1003 or 1008 the session must
        // not be resumed (docs/PROTOCOL.md, section 12): join afresh.
        let mut resume = !match_over
            && !matches!(
                &failure,
                Some(BotError::Closed { code, .. }) if matches!(
                    *code,
                    close::NORMAL | close::PROTOCOL_ERROR | close::UNSUPPORTED_DATA | close::POLICY_VIOLATION
                )
            );
        if failure.is_some() && welcomed_now {
            lost_at = Some(Instant::now());
        }
        // With --matchmake a seat that cannot come back is given up and the bot
        // matchmakes again (docs/SCALING.md): its server drains (1001) or closed
        // the room (4004), or a resume was tried and not welcomed (the member
        // is gone: a proxy's 502, a refused connection, ResumeFailed).
        let going_away = matches!(
            &failure,
            Some(BotError::Closed { code, .. }) if matches!(*code, close::GOING_AWAY | close::ROOM_CLOSED)
        );
        let failed_resume = resuming && !welcomed_now && failure.is_some();
        if d.opts.matchmake.is_some() && seat.is_some() && (going_away || failed_resume) {
            resume = false;
            // Timed from the loss to the next Welcome (`Driver::on_welcomed`).
            d.rematchmaking_since
                .get_or_insert_with(|| lost_at.unwrap_or_else(Instant::now));
        }
        if let Some(e) = failure {
            if matches!(e, BotError::Tls(_)) {
                // Usually a certificate the bot does not trust: say so, once per bot.
                tracing::warn!(error = %e, "TLS handshake failed");
            } else {
                tracing::debug!(error = %e, "connection lost or failed");
            }
            let give_up = d.opts.reconnect.is_none() || !retryable(&e);
            if let Some(ready) = d.ready.take() {
                let _ = ready.send(Err(e));
                break;
            }
            last_error = Some(e);
            if give_up {
                break;
            }
            if !backoff(&mut d, attempt, &mut rng).await {
                break;
            }
            attempt = attempt.saturating_add(1);
        }
        if !resume {
            // A fresh join needs a fresh seat (the old one was used).
            seat = None;
        }
        // After a match every player of the room leaves at once; matchmaking
        // again at once could seat a leaver back in that room before the last
        // of them is gone (it is the fullest room with a free seat), and
        // such visits could keep a finished room open for ever. A pause of
        // several ticks lets the room empty, so it closes and the next match
        // is a new room.
        if match_over {
            let pause = CHURN_PAUSE.mul_f64(1.0 + rng.random::<f64>() / 2.0);
            if !pause_answering(&mut d, pause).await {
                connected_at_stop = true;
                break;
            }
        }
        d.session.restart(resume);
    }
    d.flush_stats();
    BotOutcome {
        player_id: d.session.player_id(),
        connected: d.ever_welcomed,
        connected_at_stop,
        connected_for: d.connected_for,
        counters: *d.session.counters(),
        last_error,
    }
}

/// Sleeps before a reconnect while still answering the handle; `false` when the
/// handle asked the bot to end.
async fn backoff(d: &mut Driver, attempt: u32, rng: &mut SmallRng) -> bool {
    let Some(b) = d.opts.reconnect else {
        return false;
    };
    pause_answering(d, b.delay(attempt, rng.random::<f64>())).await
}

/// Sleeps for `length` while still answering the handle; `false` when the
/// handle asked the bot to end.
async fn pause_answering(d: &mut Driver, length: Duration) -> bool {
    let pause = sleep(length);
    tokio::pin!(pause);
    loop {
        tokio::select! {
            _ = &mut pause => return true,
            cmd = d.commands.recv() => match cmd.map(|c| d.handle_command(c)) {
                Some(None) | Some(Some(Command::DropConnection)) => {}
                _ => return false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max_with_jitter() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(50));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(100));
        assert_eq!(b.delay(3, 1.0), Duration::from_millis(800));
        assert_eq!(b.delay(10, 1.0), Duration::from_secs(2));
        assert_eq!(b.delay(u32::MAX, 0.5), Duration::from_millis(1500));
    }
}
