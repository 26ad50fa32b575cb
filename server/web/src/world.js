// @ts-check
/**
 * @module world
 * The client's copy of its view (PROTOCOL.md section 9): applies full and delta
 * snapshots in order and verifies each against its checksum, keeping the checksum
 * up to date incrementally (subtract the old hash, add the new one).
 */

import { entityHash } from "./movement.js";

/**
 * @typedef {import("./messages.js").Snapshot} Snapshot
 * @typedef {"baseline" | "missing" | "duplicate" | "overflow" | "checksum"} ApplyFailure
 *   Why a snapshot could not be applied: the baseline is not the held state, a
 *   removed or changed id is not held, a spawned id is already held, a position
 *   left the i32 range, or the checksum differs.
 * @typedef {{ ok: true } | { ok: false, reason: ApplyFailure }} ApplyResult
 */

const I32_MIN = -0x80000000;
const I32_MAX = 0x7fffffff;

/** The entity set of the last snapshot applied, labelled with its tick. */
export class ClientWorld {
  constructor() {
    /** Entity positions by id; valid only while `valid` is true. @type {Map<number, {x: number, y: number}>} */
    this.entities = new Map();
    /** Tick of the held state, or null when nothing valid is held. @type {number | null} */
    this.tick = null;
    /** Running checksum of `entities`. */
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
    if (snap.baselineAge === 0) {
      this.invalidate();
    } else if (this.tick === null || this.tick !== snap.tick - snap.baselineAge) {
      return "baseline";
    }
    for (const id of snap.removed) {
      const old = ents.get(id);
      if (!old) return "missing";
      this.sum = (this.sum - entityHash(id, old.x, old.y)) >>> 0;
      ents.delete(id);
    }
    for (const e of snap.spawned) {
      if (ents.has(e.id)) return "duplicate";
      ents.set(e.id, { x: e.x, y: e.y });
      this.sum = (this.sum + entityHash(e.id, e.x, e.y)) >>> 0;
    }
    for (const c of snap.changed) {
      const old = ents.get(c.id);
      if (!old) return "missing";
      const x = old.x + c.dx;
      const y = old.y + c.dy;
      if (x < I32_MIN || x > I32_MAX || y < I32_MIN || y > I32_MAX) return "overflow";
      this.sum = (this.sum - entityHash(c.id, old.x, old.y) + entityHash(c.id, x, y)) >>> 0;
      ents.set(c.id, { x, y });
    }
    return this.sum === snap.checksum ? null : "checksum";
  }

  /**
   * The held entities sorted by id.
   * @returns {{ id: number, x: number, y: number }[]}
   */
  list() {
    return [...this.entities].map(([id, p]) => ({ id, x: p.x, y: p.y })).sort((a, b) => a.id - b.id);
  }
}
