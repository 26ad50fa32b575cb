// @ts-check
/**
 * @module session
 * A whole client session as a state machine without I/O: bytes and time go in
 * (`open`, `receive`, `update`, `closed`), bytes to send come out
 * (`takeOutgoing`). The WebSocket shell around it (browser or Node) stays a few
 * lines, and tests drive it tick by tick without sockets or clocks.
 *
 * It sends `Hello` (with the resume token after a drop), produces one input per
 * server tick, batches them into `Input` messages, predicts the own player,
 * reconciles it with every snapshot, keeps the verified world and an interpolation
 * buffer for the others, sends `Resync` on a desync and `Ping` for the RTT. After a
 * lost connection it says whether to resume or to join afresh (`closed`): it gives
 * the session up where a resume cannot work (a draining server, a closed room, a
 * fleet member that is gone, the resume grace over), and counts the re-matchmakes
 * that follow. It keeps within the limits `Welcome` announces (PROTOCOL.md section
 * 13): messages within `rate_limit`/`rate_burst`, catch-ups within `input_queue`,
 * pings within a third of `idle_timeout_ms`, resumes within `resume_grace_ms`.
 */

import { ClientWorld } from "./world.js";
import { InterpolationBuffer } from "./interpolation.js";
import { Predictor, seqAfter } from "./prediction.js";
import { CloseCode, ErrorCode, Limits, PROTOCOL_VERSION, decodeServerMsg, encodeClientMsg } from "./messages.js";
import { DecodeError } from "./wire.js";

/**
 * @typedef {import("./messages.js").Dir} Dir
 * @typedef {import("./messages.js").Welcome} Welcome
 * @typedef {import("./movement.js").Pos} Pos
 * @typedef {import("./world.js").ApplyFailure} ApplyFailure
 *
 * @typedef {object} SessionOptions
 * @property {string | null} [name]  display name sent in `Hello` (at most 32 UTF-8 bytes)
 * @property {string | null} [authToken]  join token sent in `Hello`
 * @property {number} [sendEveryTicks]  inputs per `Input` message (1..=8, default 2)
 * @property {number} [pingIntervalMs]  time between `Ping`s (default 1000; at most a third of `Welcome.idle_timeout_ms` is used)
 * @property {number} [interpolationDelayMs]  how far in the past remote players are drawn (default 100)
 * @property {number} [inputLogSize]  inputs kept in `inputLog` (default 1024)
 * @property {number} [resumeAttempts]  connections in a row that may fail to take a lost session
 *   back before it is given up and the next join is fresh (default 2; a room-aware shell then
 *   matchmakes again: the member holding the session is gone). A session lost longer ago than
 *   `Welcome.resume_grace_ms` is given up too (`resumable`).
 *
 * @typedef {{ type: "welcome", welcome: Welcome }
 *   | { type: "snapshot", tick: number, ok: true, corrected: boolean }
 *   | { type: "snapshot", tick: number, ok: false, reason: ApplyFailure }
 *   | { type: "pong", rttMs: number, serverTick: number }
 *   | { type: "error", code: number, message: string }
 *   | { type: "ignored", detail: string }
 *   | { type: "protocolError", detail: string }
 *   | { type: "incompatible", detail: string }} SessionEvent
 *   What one received message did. On "protocolError" the shell closes (1002; a
 *   browser, which may only send 1000 or 3000..=4999, uses a code of 3000..=4999)
 *   and reconnects (resuming). On "incompatible" (a `Welcome` no client can play
 *   with, PROTOCOL.md section 6) it closes the same way, and `closed()` says
 *   "stop": the same server would answer the same.
 *
 * @typedef {"resume" | "fresh" | "stop"} ReconnectPolicy
 *   What `closed()` says to do next. "fresh" means the session cannot come back: a shell
 *   that matchmade (`matchmake()`) asks for a new seat, since seat tokens are single-use and
 *   the old room or member may be gone.
 */

/** Grid steps per world unit in this protocol version (PROTOCOL.md section 8). */
const FIXED_SCALE = 16;

/**
 * Messages per second (and of the burst) the session leaves unused for what it does
 * not see: the pongs a WebSocket layer sends for the server's pings count against
 * the server's bucket too (PROTOCOL.md section 11, one every 5 s by default).
 */
const CONTROL_FRAME_RESERVE = 1;

/**
 * A mirror of the server's token bucket for this client (PROTOCOL.md section 11):
 * refilled at `rate` per second up to `burst`; every message sent takes a token, and
 * a message without one waits. So the session never sends faster than
 * `Welcome.rate_limit`, nor more than `Welcome.rate_burst` back to back.
 */
export class SendBudget {
  /**
   * @param {number} rate  tokens per second
   * @param {number} burst  the bucket's size (it starts full)
   * @param {number} nowMs
   */
  constructor(rate, burst, nowMs) {
    this.rate = rate;
    this.burst = burst;
    this.tokens = burst;
    this.at = nowMs;
  }

  /**
   * The budget of a `Welcome`'s limits, less what the WebSocket layer may spend;
   * `Hello` already took a token of the server's bucket.
   * @param {Welcome} w
   * @param {number} nowMs
   */
  static of(w, nowMs) {
    const less = (/** @type {number} */ n) => Math.max(n - CONTROL_FRAME_RESERVE, 1);
    const budget = new SendBudget(less(w.rateLimit), less(w.rateBurst), nowMs);
    budget.tokens = Math.max(budget.burst - 1, 0);
    return budget;
  }

  /**
   * Takes a token if there is one at `nowMs`.
   * @param {number} nowMs
   * @returns {boolean}
   */
  take(nowMs) {
    if (nowMs > this.at) {
      this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.at) * this.rate) / 1000);
      this.at = nowMs;
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/**
 * What makes a decoded `Welcome` unusable (PROTOCOL.md section 6, "Refusing a
 * Welcome"), as a sentence naming the field and the rule; null if it is usable.
 * @param {Welcome} w
 * @returns {string | null}
 */
export function welcomeProblem(w) {
  if (w.playerId === 0) return "Welcome.player_id must be at least 1, got 0";
  if (w.tickRate === 0) return "Welcome.tick_rate must be at least 1, got 0";
  if (w.fixedScale !== FIXED_SCALE) {
    return `Welcome.fixed_scale must be ${FIXED_SCALE} in protocol version ${PROTOCOL_VERSION}, got ${w.fixedScale}`;
  }
  for (const [field, value] of [
    ["idle_timeout_ms", w.idleTimeoutMs],
    ["rate_limit", w.rateLimit],
    ["rate_burst", w.rateBurst],
    ["input_queue", w.inputQueue],
  ]) {
    if (value === 0) return `Welcome.${field} must be at least 1, got 0`;
  }
  return null;
}

/** Counters for a HUD or a test. */
export class SessionStats {
  constructor() {
    this.bytesReceived = 0;
    this.messagesReceived = 0;
    this.snapshots = 0;
    /** Snapshots that failed to apply while the state was thought valid. */
    this.desyncs = 0;
    this.resyncsSent = 0;
    this.inputsSent = 0;
    this.inputMessagesSent = 0;
    /** Latest round-trip time from Ping/Pong, or null. @type {number | null} */
    this.rttMs = null;
    /** Tick of the latest snapshot applied, or null. @type {number | null} */
    this.serverTick = null;
    /** The last `Error` the server sent. @type {{ code: number, message: string } | null} */
    this.lastError = null;
    /** Sessions given up where a resume cannot work (the server drained: 1001; the room
     * closed: 4004; a resume refused or failing) and played again after a fresh join. */
    this.rematchmades = 0;
    /** For the latest of those: ms from the last message of the lost session to the new
     * `Welcome`, or null. @type {number | null} */
    this.rematchmakeMs = null;
  }
}

/** A Ticksync client session without I/O. */
export class Session {
  /** @param {SessionOptions} [options] */
  constructor(options = {}) {
    this.name = options.name ?? null;
    this.authToken = options.authToken ?? null;
    this.sendEveryTicks = Math.min(Math.max(options.sendEveryTicks ?? 2, 1), Limits.maxDirsPerInput);
    this.pingIntervalMs = options.pingIntervalMs ?? 1000;
    this.interpolationDelayMs = options.interpolationDelayMs ?? 100;
    this.inputLogSize = options.inputLogSize ?? 1024;
    this.resumeAttempts = Math.max(options.resumeAttempts ?? 2, 1);
    /** The current session's `Welcome`, or null before the first. @type {Welcome | null} */
    this.welcome = null;
    /** Token to resume with after a drop. @type {Uint8Array | null} */
    this.resumeToken = null;
    /** Whether the transport is open. */
    this.connected = false;
    /** Whether the open transport has its `Welcome` yet (nothing but `Hello` and
     * `Ping` may be sent before it: inputs would be numbered for the old session). */
    this.welcomed = false;
    /** Replaced at each `Welcome`, which says how large the world is. */
    this.world = new ClientWorld(0, 0);
    this.predictor = new Predictor({ speedPerTick: 0, worldMaxX: 0, worldMaxY: 0 });
    this.interp = new InterpolationBuffer(30, { delayMs: this.interpolationDelayMs });
    /** The own entity in the latest snapshot applied. @type {{ tick: number, ackInput: number, x: number, y: number } | null} */
    this.authoritative = null;
    /** The most recent inputs of this session, oldest first (the lost ones dropped on resume). @type {{ seq: number, dir: Dir }[]} */
    this.inputLog = [];
    this.stats = new SessionStats();
    /** @type {Uint8Array[]} */
    this.outgoing = [];
    /** @type {{ seq: number, dir: Dir }[]} */
    this.unsent = [];
    /** @type {number | null} */
    this.nextInputAt = null;
    /** @type {number | null} */
    this.lastPingAt = null;
    this.resyncPending = false;
    /** A `Resync` is due but waits for the send budget. */
    this.resyncDue = false;
    /** The send budget of the current connection (from its `Welcome`). @type {SendBudget | null} */
    this.budget = null;
    /** Why the server's `Welcome` was refused, or null. @type {string | null} */
    this.incompatible = null;
    /** Connections in a row that tried to take the lost session back and got no `Welcome`. */
    this.failedResumes = 0;
    /** When the last message arrived (the `nowMs` of `receive`). @type {number | null} */
    this.lastReceivedAt = null;
    /** When the lost session's last message arrived, until the next `Welcome`. @type {number | null} */
    this.lostAt = null;
    /** Whether the lost session was given up where a resume cannot work (1001, 4004, failed
     * resumes), so the next fresh `Welcome` counts as a re-matchmake. */
    this.rematchmaking = false;
  }

  /** The player id of this session, or null before `Welcome`. */
  get playerId() {
    return this.welcome ? this.welcome.playerId : null;
  }

  /**
   * Whether the lost session can still be taken back at `nowMs`: false once
   * `Welcome.resume_grace_ms` has passed since its last message (the server has
   * removed the player; a resume would get `ResumeFailed`), and the session is then
   * given up like after 4004: the next join is fresh and counts as a re-matchmake. A
   * shell that matchmade asks this before reconnecting, to ask for a new seat instead
   * of trying a doomed resume.
   * @param {number} nowMs  the clock of `receive`
   * @returns {boolean}
   */
  resumable(nowMs) {
    if (this.resumeToken === null) return false;
    const grace = this.welcome?.resumeGraceMs;
    if (this.lostAt !== null && grace !== undefined && nowMs - this.lostAt >= grace) {
      this.resumeToken = null;
      this.rematchmaking = true;
      return false;
    }
    return true;
  }

  /**
   * The transport opened: returns the `Hello` to send first (with the resume token
   * when there is a session to take back, and with `nowMs` given, its resume grace
   * is not over: `resumable`).
   * @param {number} [nowMs]  the clock of `receive`
   * @returns {Uint8Array}
   */
  open(nowMs) {
    if (nowMs !== undefined) this.resumable(nowMs);
    this.connected = true;
    this.welcomed = false;
    this.outgoing = [];
    this.unsent = [];
    this.nextInputAt = null;
    this.lastPingAt = null;
    this.resyncPending = false;
    this.resyncDue = false;
    this.budget = null;
    return encodeClientMsg({
      type: "Hello",
      version: PROTOCOL_VERSION,
      name: this.name,
      authToken: this.authToken,
      resumeToken: this.resumeToken,
    });
  }

  /**
   * The transport closed with `code` (`byUs`: this side closed it), or a connection
   * attempt failed (any code, e.g. 1006). Says what to do next, following PROTOCOL.md
   * section 12: no resume after the server closed with 1000, 1002, 1003 or 1008, or
   * this side with 1000 or 1001; "stop" after 4003 (taken over), 4005 (kicked) or an
   * unusable `Welcome`. Where a resume cannot work the session is given up ("fresh"):
   * the server drains (1001: it is going away with the session), the room closed
   * (4004), or `resumeAttempts` connections in a row failed to take the session back
   * (its member is gone, or the resume grace expired: `ResumeFailed`).
   * @param {number} code
   * @param {boolean} [byUs]
   * @returns {ReconnectPolicy}
   */
  closed(code, byUs = false) {
    const wasWelcomed = this.connected && this.welcomed;
    this.connected = false;
    this.welcomed = false;
    if (code === CloseCode.SessionTakenOver || code === CloseCode.Kicked || this.incompatible !== null) return "stop";
    if (wasWelcomed) {
      this.lostAt = this.lastReceivedAt;
      this.failedResumes = 0;
    } else if (this.resumeToken !== null) {
      this.failedResumes++;
    }
    const hadSession = this.resumeToken !== null;
    const leaving = byUs && (code === CloseCode.Normal || code === CloseCode.GoingAway);
    /** @type {number[]} */
    const noResume = [CloseCode.Normal, CloseCode.ProtocolError, CloseCode.Unsupported, CloseCode.Policy];
    /** @type {number[]} */
    const placeGone = [CloseCode.GoingAway, CloseCode.RoomClosed];
    const gone = !byUs && placeGone.includes(code);
    if (leaving || (!byUs && noResume.includes(code))) this.resumeToken = null;
    if (gone || this.failedResumes >= this.resumeAttempts) {
      if (hadSession) this.rematchmaking = true;
      this.resumeToken = null;
    }
    return this.resumeToken ? "resume" : "fresh";
  }

  /**
   * Handles one received WebSocket message.
   * @param {Uint8Array} bytes
   * @param {number} nowMs
   * @returns {SessionEvent}
   */
  receive(bytes, nowMs) {
    this.stats.bytesReceived += bytes.length;
    this.stats.messagesReceived++;
    this.lastReceivedAt = nowMs;
    let msg;
    try {
      msg = decodeServerMsg(bytes);
    } catch (e) {
      if (e instanceof DecodeError && e.kind === "UnknownTag") return { type: "ignored", detail: e.message };
      return { type: "protocolError", detail: e instanceof Error ? e.message : String(e) };
    }
    switch (msg.type) {
      case "Welcome":
        return this.onWelcome(msg, nowMs);
      case "Snapshot":
        return this.onSnapshot(msg, nowMs);
      case "Pong": {
        const rttMs = nowMs - Number(msg.clientTimeUs) / 1000;
        this.stats.rttMs = rttMs;
        return { type: "pong", rttMs, serverTick: msg.serverTick };
      }
      case "Error":
        this.stats.lastError = { code: msg.code, message: msg.message };
        if (msg.code === ErrorCode.ResumeFailed && this.resumeToken !== null) {
          // The resume grace expired, or the server does not know the session.
          this.resumeToken = null;
          this.rematchmaking = true;
        }
        return { type: "error", code: msg.code, message: msg.message };
    }
  }

  /**
   * @param {Welcome} w
   * @param {number} nowMs
   * @returns {SessionEvent}
   */
  onWelcome(w, nowMs) {
    const problem = welcomeProblem(w);
    if (problem !== null) {
      this.incompatible = problem;
      this.resumeToken = null;
      return { type: "incompatible", detail: problem };
    }
    this.welcome = w;
    this.welcomed = true;
    if (this.rematchmaking && !w.resumed && this.lostAt !== null) {
      this.stats.rematchmades++;
      this.stats.rematchmakeMs = nowMs - this.lostAt;
    }
    this.rematchmaking = false;
    this.lostAt = null;
    this.failedResumes = 0;
    this.resumeToken = w.resumeToken;
    this.predictor.cfg = { speedPerTick: w.speedPerTick, worldMaxX: w.worldMaxX, worldMaxY: w.worldMaxY };
    this.predictor.reset(w.lastInputSeq);
    // Inputs above last_input_seq were lost with the old connection, and their
    // numbers are about to be reused.
    this.inputLog = w.resumed ? this.inputLog.filter((i) => !seqAfter(i.seq, w.lastInputSeq)) : [];
    this.world = new ClientWorld(w.worldMaxX, w.worldMaxY);
    this.interp = new InterpolationBuffer(w.tickRate, { delayMs: this.interpolationDelayMs });
    this.authoritative = null;
    this.unsent = [];
    this.nextInputAt = null;
    this.budget = SendBudget.of(w, nowMs);
    return { type: "welcome", welcome: w };
  }

  /**
   * @param {import("./messages.js").Snapshot} snap
   * @param {number} nowMs
   * @returns {SessionEvent}
   */
  onSnapshot(snap, nowMs) {
    if (!this.welcome || !this.welcomed) return { type: "protocolError", detail: "Snapshot before Welcome" };
    this.stats.snapshots++;
    const wasValid = this.world.valid;
    const res = this.world.apply(snap);
    if (!res.ok) {
      if (wasValid || snap.baselineAge === 0) this.stats.desyncs++;
      if (!this.resyncPending) {
        this.resyncPending = true;
        this.resyncDue = true;
        this.sendResync(nowMs);
      }
      return { type: "snapshot", tick: snap.tick, ok: false, reason: res.reason };
    }
    if (snap.baselineAge === 0) this.resyncPending = false;
    this.stats.serverTick = snap.tick;
    this.interp.push(snap.tick, this.world.entities, nowMs);
    const own = this.world.entities.get(this.welcome.playerId);
    let corrected = false;
    if (own) {
      this.authoritative = { tick: snap.tick, ackInput: snap.ackInput, x: own.x, y: own.y };
      corrected = this.predictor.reconcile(snap.ackInput, own);
    }
    return { type: "snapshot", tick: snap.tick, ok: true, corrected };
  }

  /**
   * Advances the client clock: produces the inputs of the server ticks elapsed
   * since the last call (each with direction `dir`, predicted at once), and queues
   * `Input` messages of `sendEveryTicks` inputs and a `Ping` when due.
   * @param {number} nowMs
   * @param {Dir} dir
   */
  update(nowMs, dir) {
    if (!this.connected || !this.welcome || !this.welcomed) return;
    this.sendResync(nowMs);
    // Keep-alive (PROTOCOL.md section 3): a Ping at least every third of the idle timeout.
    const pingEveryMs = Math.min(this.pingIntervalMs, this.welcome.idleTimeoutMs / 3);
    if (this.lastPingAt === null || nowMs - this.lastPingAt >= pingEveryMs) {
      if (this.spend(nowMs)) {
        this.lastPingAt = nowMs;
        this.outgoing.push(encodeClientMsg({ type: "Ping", clientTimeUs: BigInt(Math.round(nowMs * 1000)) }));
      }
    }
    if (!this.predictor.ready) return;
    const tickMs = 1000 / this.welcome.tickRate;
    // The server queues at most input_queue unapplied directions and drops the rest
    // (PROTOCOL.md section 13): a catch-up never sends more at once.
    const catchUp = Math.min(Limits.maxDirsPerInput, this.welcome.inputQueue);
    if (this.nextInputAt === null) this.nextInputAt = nowMs;
    let produced = 0;
    while (nowMs >= this.nextInputAt) {
      if (produced === catchUp) {
        // The page was asleep: do not replay seconds of input in one burst.
        this.nextInputAt = nowMs + tickMs;
        break;
      }
      const input = this.predictor.push([dir[0], dir[1]]);
      const entry = { seq: input.seq, dir: input.dir };
      this.unsent.push(entry);
      this.inputLog.push(entry);
      if (this.inputLog.length > this.inputLogSize) this.inputLog.shift();
      this.nextInputAt += tickMs;
      produced++;
    }
    if (this.unsent.length >= this.sendEveryTicks) this.flush(nowMs);
  }

  /**
   * Takes a token of the send budget (always granted before `Welcome`).
   * @param {number} nowMs
   */
  spend(nowMs) {
    return this.budget === null || this.budget.take(nowMs);
  }

  /**
   * Queues the `Resync` that is due, if the budget allows.
   * @param {number} nowMs
   */
  sendResync(nowMs) {
    if (!this.resyncDue || !this.spend(nowMs)) return;
    this.resyncDue = false;
    this.stats.resyncsSent++;
    this.outgoing.push(encodeClientMsg({ type: "Resync" }));
  }

  /**
   * Queues every produced input not sent yet, at most 8 per `Input` message, as far
   * as the send budget allows: inputs without a token wait for the next call, and
   * go out together then (more directions per message, never more messages).
   * @param {number} [nowMs]  the clock of `update` (none: flush regardless of the budget)
   */
  flush(nowMs) {
    while (this.unsent.length > 0) {
      if (nowMs !== undefined && !this.spend(nowMs)) break;
      const batch = this.unsent.splice(0, Limits.maxDirsPerInput);
      this.outgoing.push(
        encodeClientMsg({
          type: "Input",
          ackTick: this.world.tick,
          firstSeq: batch[0].seq,
          dirs: batch.map((i) => i.dir),
        }),
      );
      this.stats.inputsSent += batch.length;
      this.stats.inputMessagesSent++;
    }
  }

  /**
   * The messages to send now, in order.
   * @returns {Uint8Array[]}
   */
  takeOutgoing() {
    const out = this.outgoing;
    this.outgoing = [];
    return out;
  }

  /**
   * Where to draw the own player: the prediction, else the latest server position.
   * @returns {Pos | null}
   */
  ownPosition() {
    return this.predictor.predicted ?? (this.authoritative && { x: this.authoritative.x, y: this.authoritative.y });
  }

  /**
   * Where to draw the other players at `nowMs` (interpolated, `interpolationDelayMs` behind).
   * @param {number} nowMs
   * @returns {Map<number, Pos>}
   */
  remotePositions(nowMs) {
    const out = this.interp.sample(nowMs);
    if (this.welcome) out.delete(this.welcome.playerId);
    return out;
  }
}
