// @ts-check
/**
 * Loads the golden vectors of protocol/tests/vectors/ (the files the Rust crate is
 * tested against) and maps their JSON to this library's message objects.
 */

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromHex } from "../src/index.js";

const dir = fileURLToPath(new URL("../../../protocol/tests/vectors/", import.meta.url));

/**
 * @param {string} name
 * @returns {any}
 */
export function loadVectors(name) {
  return JSON.parse(readFileSync(dir + name, "utf8"));
}

/**
 * A vector's `message` as a ClientMsg or ServerMsg object of this library.
 * @param {any} m
 * @returns {any}
 */
export function messageFromJson(m) {
  switch (m.type) {
    case "Hello":
      return {
        type: "Hello",
        version: m.version,
        name: m.name,
        authToken: m.auth_token,
        resumeToken: m.resume_token === null ? null : fromHex(m.resume_token),
      };
    case "Input":
      return { type: "Input", ackTick: m.ack_tick, firstSeq: m.first_seq, dirs: m.dirs };
    case "Ping":
      return { type: "Ping", clientTimeUs: BigInt(m.client_time_us) };
    case "Resync":
      return { type: "Resync" };
    case "Welcome":
      return {
        type: "Welcome",
        playerId: m.player_id,
        tick: m.tick,
        tickRate: m.tick_rate,
        speedPerTick: m.speed_per_tick,
        worldMaxX: m.world_max_x,
        worldMaxY: m.world_max_y,
        fixedScale: m.fixed_scale,
        viewRadius: m.view_radius,
        resumeToken: fromHex(m.resume_token),
        resumed: m.resumed,
        lastInputSeq: m.last_input_seq,
        idleTimeoutMs: m.idle_timeout_ms,
        rateLimit: m.rate_limit,
        rateBurst: m.rate_burst,
        resumeGraceMs: m.resume_grace_ms,
        inputQueue: m.input_queue,
      };
    case "Snapshot":
      return {
        type: "Snapshot",
        ackInput: m.ack_input,
        tick: m.tick,
        baselineAge: m.baseline_age,
        removed: m.removed,
        spawned: m.spawned,
        changed: m.changed,
        corrected: m.corrected,
        checksum: m.checksum,
      };
    case "Pong":
      return { type: "Pong", clientTimeUs: BigInt(m.client_time_us), serverTick: m.server_tick };
    case "Error":
      return { type: "Error", code: m.code, message: m.message };
    default:
      throw new Error(`unknown vector message type ${m.type}`);
  }
}
