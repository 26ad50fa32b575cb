// @ts-check
/**
 * @module messages
 * The protocol v2 messages (PROTOCOL.md sections 5 and 6): encoders and decoders for
 * both directions, so a client can talk to a server and a test can play a server.
 */

import { DecodeError, EncodeError, Reader, Writer } from "./wire.js";

/** The protocol version this library speaks (`Hello.version`). */
export const PROTOCOL_VERSION = 2;
/** The WebSocket subprotocol to offer and expect. */
export const SUBPROTOCOL = "ticksync.v2";
/** The WebSocket path of the game endpoint. */
export const WS_PATH = "/ws";

/** Limits of PROTOCOL.md section 13. */
export const Limits = Object.freeze({
  maxClientMessage: 1024,
  maxServerMessage: 16 * 1024 * 1024,
  maxName: 32,
  maxAuthToken: 512,
  maxErrorMessage: 1024,
  maxDirsPerInput: 8,
  maxSpeedPerTick: 1 << 20,
  maxWorld: 1 << 28,
  resumeTokenLen: 16,
});

/** `Error.code` values (PROTOCOL.md section 12); other numbers are generic errors. */
export const ErrorCode = Object.freeze({
  VersionMismatch: 1,
  Malformed: 2,
  UnexpectedMessage: 3,
  AuthFailed: 4,
  ResumeFailed: 5,
  ServerFull: 6,
  RateLimited: 7,
  ShuttingDown: 8,
});

/** WebSocket close codes the server uses (PROTOCOL.md section 12). */
export const CloseCode = Object.freeze({
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  Unsupported: 1003,
  Policy: 1008,
  TooBig: 1009,
  TryAgainLater: 1013,
  HandshakeTimeout: 4000,
  IdleTimeout: 4001,
  Stalled: 4002,
  SessionTakenOver: 4003,
  RoomClosed: 4004,
  Kicked: 4005,
});

/**
 * @typedef {[number, number]} Dir  An input direction `(x, y)`, each an i8.
 * @typedef {{ type: "Hello", version: number, name: string | null, authToken: string | null, resumeToken: Uint8Array | null }} Hello
 * @typedef {{ type: "Input", ackTick: number | null, firstSeq: number, dirs: Dir[] }} Input
 * @typedef {{ type: "Ping", clientTimeUs: bigint }} Ping
 * @typedef {{ type: "Resync" }} Resync
 * @typedef {Hello | Input | Ping | Resync} ClientMsg
 *
 * @typedef {{ type: "Welcome", playerId: number, tick: number, tickRate: number, speedPerTick: number,
 *   worldMaxX: number, worldMaxY: number, fixedScale: number, viewRadius: number,
 *   resumeToken: Uint8Array, resumed: boolean, lastInputSeq: number,
 *   idleTimeoutMs: number, rateLimit: number, rateBurst: number, resumeGraceMs: number,
 *   inputQueue: number }} Welcome
 *   The session limits (`idleTimeoutMs` .. `inputQueue`) are what PROTOCOL.md
 *   sections 3, 11 and 13 ask a client to respect.
 * @typedef {{ id: number, x: number, y: number, vx: number, vy: number }} EntityState
 *   An entity's position and velocity (grid steps per tick).
 * @typedef {{ id: number, dvx: number, dvy: number }} EntityChange  A velocity change.
 * @typedef {{ id: number, rx: number, ry: number }} EntityCorrection  A position correction.
 * @typedef {{ type: "Snapshot", ackInput: number, tick: number, baselineAge: number,
 *   removed: number[], spawned: EntityState[], changed: EntityChange[],
 *   corrected: EntityCorrection[], checksum: number }} Snapshot
 * @typedef {{ type: "Pong", clientTimeUs: bigint, serverTick: number }} Pong
 * @typedef {{ type: "Error", code: number, message: string }} ErrorMsg
 * @typedef {Welcome | Snapshot | Pong | ErrorMsg} ServerMsg
 */

/**
 * Encodes a client message.
 * @param {ClientMsg} msg
 * @returns {Uint8Array}
 */
export function encodeClientMsg(msg) {
  const w = new Writer();
  switch (msg.type) {
    case "Hello":
      w.u32(0, "tag");
      w.u16(msg.version, "version");
      optional(w, msg.name, (v) => w.string(v, Limits.maxName, "name"));
      optional(w, msg.authToken, (v) => w.string(v, Limits.maxAuthToken, "auth_token"));
      optional(w, msg.resumeToken, (v) => w.raw(v, Limits.resumeTokenLen, "resume_token"));
      break;
    case "Input":
      w.u32(1, "tag");
      optional(w, msg.ackTick, (v) => w.u32(v, "ack_tick"));
      w.u32(msg.firstSeq, "first_seq");
      if (msg.dirs.length < 1 || msg.dirs.length > Limits.maxDirsPerInput) {
        throw new EncodeError(`an Input carries 1 to 8 directions, not ${msg.dirs.length}`);
      }
      w.u64(msg.dirs.length, "count");
      for (const [x, y] of msg.dirs) {
        w.i8(x);
        w.i8(y);
      }
      break;
    case "Ping":
      w.u32(2, "tag");
      w.u64(msg.clientTimeUs, "client_time_us");
      break;
    case "Resync":
      w.u32(3, "tag");
      break;
    default:
      throw new EncodeError(`unknown client message ${/** @type {any} */ (msg).type}`);
  }
  const out = w.finish();
  if (out.length > Limits.maxClientMessage) throw new EncodeError(`client message of ${out.length} bytes`);
  return out;
}

/**
 * Decodes a client message (what a server does; used by tests and tools).
 * @param {Uint8Array} bytes
 * @returns {ClientMsg}
 */
export function decodeClientMsg(bytes) {
  if (bytes.length > Limits.maxClientMessage) {
    throw new DecodeError("TooLarge", `${bytes.length} bytes > ${Limits.maxClientMessage}`);
  }
  const r = new Reader(bytes);
  const tag = r.u32("tag");
  /** @type {ClientMsg} */
  let msg;
  switch (tag) {
    case 0: {
      const version = r.u16("version");
      const name = r.option("name") ? r.string("name", Limits.maxName) : null;
      const authToken = r.option("auth_token") ? r.string("auth_token", Limits.maxAuthToken) : null;
      const resumeToken = r.option("resume_token") ? r.raw(Limits.resumeTokenLen, "resume_token") : null;
      msg = { type: "Hello", version, name, authToken, resumeToken };
      break;
    }
    case 1: {
      const ackTick = r.option("ack_tick") ? r.u32("ack_tick") : null;
      const firstSeq = r.u32("first_seq");
      const count = r.length("dirs", 2, Limits.maxDirsPerInput);
      if (count === 0) throw new DecodeError("Invalid", "an Input with no directions");
      /** @type {Dir[]} */
      const dirs = [];
      for (let i = 0; i < count; i++) dirs.push([r.i8("dir.x"), r.i8("dir.y")]);
      msg = { type: "Input", ackTick, firstSeq, dirs };
      break;
    }
    case 2:
      msg = { type: "Ping", clientTimeUs: r.u64("client_time_us") };
      break;
    case 3:
      msg = { type: "Resync" };
      break;
    default:
      throw new DecodeError("UnknownTag", `client message tag ${tag}`);
  }
  r.end();
  return msg;
}

/**
 * Encodes a server message (what a server does; used by tests and tools).
 * @param {ServerMsg} msg
 * @returns {Uint8Array}
 */
export function encodeServerMsg(msg) {
  const w = new Writer();
  switch (msg.type) {
    case "Welcome":
      w.u32(0, "tag");
      w.u32(msg.playerId, "player_id");
      w.u32(msg.tick, "tick");
      w.u16(msg.tickRate, "tick_rate");
      w.i32(msg.speedPerTick, "speed_per_tick");
      w.i32(msg.worldMaxX, "world_max_x");
      w.i32(msg.worldMaxY, "world_max_y");
      w.u16(msg.fixedScale, "fixed_scale");
      w.u32(msg.viewRadius, "view_radius");
      w.raw(msg.resumeToken, Limits.resumeTokenLen, "resume_token");
      w.bool(msg.resumed);
      w.u32(msg.lastInputSeq, "last_input_seq");
      w.u32(msg.idleTimeoutMs, "idle_timeout_ms");
      w.u16(msg.rateLimit, "rate_limit");
      w.u16(msg.rateBurst, "rate_burst");
      w.u32(msg.resumeGraceMs, "resume_grace_ms");
      w.u16(msg.inputQueue, "input_queue");
      break;
    case "Snapshot":
      w.u32(1, "tag");
      w.u32(msg.ackInput, "ack_input");
      w.u32(msg.tick, "tick");
      w.u32(msg.baselineAge, "baseline_age");
      writeIds(w, msg.removed, () => {});
      writeIds(w, msg.spawned.map((e) => e.id), (i) => {
        const e = msg.spawned[i];
        w.i32(e.x, "x");
        w.i32(e.y, "y");
        w.i32(e.vx, "vx");
        w.i32(e.vy, "vy");
      });
      writeIds(w, msg.changed.map((e) => e.id), (i) => {
        w.i32(msg.changed[i].dvx, "dvx");
        w.i32(msg.changed[i].dvy, "dvy");
      });
      writeIds(w, msg.corrected.map((e) => e.id), (i) => {
        w.i32(msg.corrected[i].rx, "rx");
        w.i32(msg.corrected[i].ry, "ry");
      });
      w.u32le(msg.checksum);
      break;
    case "Pong":
      w.u32(2, "tag");
      w.u64(msg.clientTimeUs, "client_time_us");
      w.u32(msg.serverTick, "server_tick");
      break;
    case "Error":
      w.u32(3, "tag");
      w.u16(msg.code, "code");
      w.string(msg.message, Limits.maxErrorMessage, "message");
      break;
    default:
      throw new EncodeError(`unknown server message ${/** @type {any} */ (msg).type}`);
  }
  return w.finish();
}

/**
 * Decodes a server message. Throws a DecodeError; a client skips kind `UnknownTag`
 * (PROTOCOL.md section 6) and treats any other kind as a broken connection.
 * @param {Uint8Array} bytes
 * @returns {ServerMsg}
 */
export function decodeServerMsg(bytes) {
  if (bytes.length > Limits.maxServerMessage) {
    throw new DecodeError("TooLarge", `${bytes.length} bytes > ${Limits.maxServerMessage}`);
  }
  const r = new Reader(bytes);
  const tag = r.u32("tag");
  /** @type {ServerMsg} */
  let msg;
  switch (tag) {
    case 0:
      msg = readWelcome(r);
      break;
    case 1:
      msg = readSnapshot(r);
      break;
    case 2:
      msg = { type: "Pong", clientTimeUs: r.u64("client_time_us"), serverTick: r.u32("server_tick") };
      break;
    case 3:
      msg = { type: "Error", code: r.u16("code"), message: r.string("message", Limits.maxErrorMessage) };
      break;
    default:
      throw new DecodeError("UnknownTag", `server message tag ${tag}`);
  }
  r.end();
  return msg;
}

/**
 * @param {Reader} r
 * @returns {Welcome}
 */
function readWelcome(r) {
  /** @type {Welcome} */
  const msg = {
    type: "Welcome",
    playerId: r.u32("player_id"),
    tick: r.u32("tick"),
    tickRate: r.u16("tick_rate"),
    speedPerTick: r.i32("speed_per_tick"),
    worldMaxX: r.i32("world_max_x"),
    worldMaxY: r.i32("world_max_y"),
    fixedScale: r.u16("fixed_scale"),
    viewRadius: r.u32("view_radius"),
    resumeToken: r.raw(Limits.resumeTokenLen, "resume_token"),
    resumed: r.bool("resumed"),
    lastInputSeq: r.u32("last_input_seq"),
    idleTimeoutMs: r.u32("idle_timeout_ms"),
    rateLimit: r.u16("rate_limit"),
    rateBurst: r.u16("rate_burst"),
    resumeGraceMs: r.u32("resume_grace_ms"),
    inputQueue: r.u16("input_queue"),
  };
  const inRange = (/** @type {number} */ v, /** @type {number} */ max) => v >= 0 && v <= max;
  if (
    !inRange(msg.speedPerTick, Limits.maxSpeedPerTick) ||
    !inRange(msg.worldMaxX, Limits.maxWorld) ||
    !inRange(msg.worldMaxY, Limits.maxWorld)
  ) {
    throw new DecodeError("Invalid", "Welcome movement constants out of range");
  }
  return msg;
}

/**
 * @param {Reader} r
 * @returns {Snapshot}
 */
function readSnapshot(r) {
  const ackInput = r.u32("ack_input");
  const tick = r.u32("tick");
  const baselineAge = r.u32("baseline_age");
  if (baselineAge > tick) throw new DecodeError("Invalid", `baseline_age ${baselineAge} > tick ${tick}`);
  const removed = readIds(r, "removed", 1, () => {});
  /** @type {EntityState[]} */
  const spawned = [];
  readIds(r, "spawned", 5, (id) =>
    spawned.push({ id, x: r.i32("x"), y: r.i32("y"), vx: r.i32("vx"), vy: r.i32("vy") }),
  );
  /** @type {EntityChange[]} */
  const changed = [];
  readIds(r, "changed", 3, (id) => changed.push({ id, dvx: r.i32("dvx"), dvy: r.i32("dvy") }));
  /** @type {EntityCorrection[]} */
  const corrected = [];
  readIds(r, "corrected", 3, (id) => corrected.push({ id, rx: r.i32("rx"), ry: r.i32("ry") }));
  r.need(4, "checksum");
  const checksum = r.view.getUint32(r.pos, true);
  r.pos += 4;
  if (baselineAge === 0 && (removed.length > 0 || changed.length > 0 || corrected.length > 0)) {
    throw new DecodeError("Invalid", "a full snapshot with removed, changed or corrected entries");
  }
  return { type: "Snapshot", ackInput, tick, baselineAge, removed, spawned, changed, corrected, checksum };
}

/**
 * Reads a list of gap-coded ids, calling `entry(id)` after each id to read the rest.
 * @param {Reader} r
 * @param {string} what
 * @param {number} minEntryBytes
 * @param {(id: number) => void} entry
 * @returns {number[]}
 */
function readIds(r, what, minEntryBytes, entry) {
  const count = r.length(what, minEntryBytes);
  const ids = [];
  let id = 0;
  for (let i = 0; i < count; i++) {
    const gap = r.u32(`${what} id gap`);
    if (gap === 0) throw new DecodeError("Invalid", `${what}: id gap 0`);
    id += gap;
    if (id > 0xffffffff) throw new DecodeError("Invalid", `${what}: id above 2^32 - 1`);
    ids.push(id);
    entry(id);
  }
  return ids;
}

/**
 * @param {Writer} w
 * @param {number[]} ids strictly increasing, >= 1
 * @param {(index: number) => void} entry
 */
function writeIds(w, ids, entry) {
  w.u64(ids.length, "count");
  let prev = 0;
  ids.forEach((id, i) => {
    if (!(id > prev)) throw new EncodeError(`ids must be >= 1 and strictly increasing: ${id} after ${prev}`);
    w.u32(id - prev, "id gap");
    prev = id;
    entry(i);
  });
}

/**
 * @template T
 * @param {Writer} w
 * @param {T | null | undefined} value
 * @param {(v: T) => void} write
 */
function optional(w, value, write) {
  if (value === null || value === undefined) {
    w.u8(0);
  } else {
    w.u8(1);
    write(value);
  }
}
