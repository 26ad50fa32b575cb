// @ts-check
/**
 * @module world
 * The client's copy of its view (PROTOCOL.md section 9): every entity's position
 * and velocity. It applies full and delta snapshots in order — an entity a delta
 * does not list moves by its velocity, clamped to the world — and verifies each
 * against its checksum, keeping the checksum up to date incrementally (subtract
 * the old hash, add the new one).
 */

import { entityHash } from "./movement.js";

/**
 * @typedef {import("./messages.js").Snapshot} Snapshot
 * @typedef {{ x: number, y: number, vx: number, vy: number }} Held
 *   A held entity: position and velocity (grid steps per tick).
 * @typedef {"baseline" | "missing" | "duplicate" | "overflow" | "checksum"} ApplyFailure
 *   Why a snapshot could not be applied: the baseline is not the held state, a
 *   removed, changed or corrected id is not held, a spawned id is already held, a
 *   velocity or position left the i32 range, or the checksum differs.
 * @typedef {{ ok: true } | { ok: false, reason: ApplyFailure }} ApplyResult
 */

const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

/** @param {number} v */
const isI32 = (v) => v >= I32_MIN && v <= I32_MAX;

/**
 * `clamp(p + k * v, 0, max)`: where an entity at `p` moving at `v` per tick is
 * after `k` ticks. `k * v` can exceed 2^53 (inexact in a double) only when the
 * result is clamped anyway, so this is exact wherever it matters.
 * @param {number} p
 * @param {number} v
 * @param {number} k
 * @param {number} max
 */
export function extrapolate(p, v, k, max) {
  const x = p + k * v;
  return x < 0 ? 0 : x > max ? max : x;
}

/** The entity set of the last snapshot applied, labelled with its tick. */
export class ClientWorld {
  /**
   * @param {number} worldMaxX  `Welcome.world_max_x`: extrapolation clamps to it
   * @param {number} worldMaxY  `Welcome.world_max_y`
   */
  constructor(worldMaxX, worldMaxY) {
    this.worldMaxX = worldMaxX;
    this.worldMaxY = worldMaxY;
    /** Entities by id; valid only while `valid` is true. @type {Map<number, Held>} */
    this.entities = new Map();
    /** Tick of the held state, or null when nothing valid is held. @type {number | null} */
    this.tick = null;
    /** Running checksum of the positions in `entities`. */
    this.sum = 0;
  }

  /** Whether a valid state is held (false before the first full snapshot and after a failure). */
  get valid() {
    return this.tick !== null;
  }

  /** Number of entities held. */
  get size() {
    return this.entities.size;
  }

  /** Drops the held state (after a failure, or when a session ends). */
  invalidate() {
    this.entities.clear();
    this.tick = null;
    this.sum = 0;
  }

  /**
   * Applies a snapshot. On failure the state is invalid: the caller must send
   * `Resync` and wait for a full snapshot (deltas keep failing with "baseline").
   * @param {Snapshot} snap
   * @returns {ApplyResult}
   */
  apply(snap) {
    const reason = this.tryApply(snap);
    if (reason !== null) {
      this.invalidate();
      return { ok: false, reason };
    }
    this.tick = snap.tick;
    return { ok: true };
  }

  /**
   * @param {Snapshot} snap
   * @returns {ApplyFailure | null}
   */
  tryApply(snap) {
    const ents = this.entities;
    const k = snap.baselineAge;
    if (k === 0) {
      this.invalidate();
    } else if (this.tick === null || this.tick !== snap.tick - k) {
      return "baseline";
    }
    for (const id of snap.removed) {
      const old = ents.get(id);
      if (!old) return "missing";
      this.sum = (this.sum - entityHash(id, old.x, old.y)) >>> 0;
      ents.delete(id);
    }
    for (const c of snap.changed) {
      const e = ents.get(c.id);
      if (!e) return "missing";
      const vx = e.vx + c.dvx;
      const vy = e.vy + c.dvy;
      if (!isI32(vx) || !isI32(vy)) return "overflow";
      e.vx = vx;
      e.vy = vy;
    }
    if (k > 0) {
      for (const [id, e] of ents) {
        if (e.vx === 0 && e.vy === 0 && e.x >= 0 && e.x <= this.worldMaxX && e.y >= 0 && e.y <= this.worldMaxY) {
          continue; // standing still inside the world: nothing moves
        }
        const x = extrapolate(e.x, e.vx, k, this.worldMaxX);
        const y = extrapolate(e.y, e.vy, k, this.worldMaxY);
        this.move(id, e, x, y);
      }
    }
    for (const c of snap.corrected) {
      const e = ents.get(c.id);
      if (!e) return "missing";
      const x = e.x + c.rx;
      const y = e.y + c.ry;
      if (!isI32(x) || !isI32(y)) return "overflow";
      this.move(c.id, e, x, y);
    }
    for (const s of snap.spawned) {
      if (ents.has(s.id)) return "duplicate";
      ents.set(s.id, { x: s.x, y: s.y, vx: s.vx, vy: s.vy });
      this.sum = (this.sum + entityHash(s.id, s.x, s.y)) >>> 0;
    }
    return this.sum === snap.checksum ? null : "checksum";
  }

  /**
   * Moves a held entity, keeping the checksum up to date.
   * @param {number} id
   * @param {Held} e
   * @param {number} x
   * @param {number} y
   */
  move(id, e, x, y) {
    if (x === e.x && y === e.y) return;
    this.sum = (this.sum - entityHash(id, e.x, e.y) + entityHash(id, x, y)) >>> 0;
    e.x = x;
    e.y = y;
  }

  /**
   * The held entities sorted by id.
   * @returns {{ id: number, x: number, y: number, vx: number, vy: number }[]}
   */
  list() {
    return [...this.entities]
      .map(([id, e]) => ({ id, x: e.x, y: e.y, vx: e.vx, vy: e.vy }))
      .sort((a, b) => a.id - b.id);
  }
}
