// @ts-check
/**
 * @module interpolation
 * An interpolation buffer for remote players: snapshots are stored with their tick,
 * and entities are drawn as they were `delayMs` (100 ms by default) in the past,
 * blended between the two snapshots around that time, so that jitter in arrival
 * times does not show. Time is always a parameter (milliseconds on any monotonic
 * clock, e.g. `performance.now()`), never read inside.
 */

/**
 * @typedef {{ x: number, y: number }} Pos
 * @typedef {{ tick: number, entities: Map<number, Pos> }} Frame
 * @typedef {{ delayMs?: number, maxFrames?: number }} InterpolationOptions
 */

/** Renders remote entities `delayMs` behind the server, interpolated between snapshots. */
export class InterpolationBuffer {
  /**
   * @param {number} tickRate  `Welcome.tick_rate`
   * @param {InterpolationOptions} [options]
   */
  constructor(tickRate, options = {}) {
    /** Milliseconds per tick. */
    this.tickMs = 1000 / tickRate;
    /** How far in the past entities are drawn. */
    this.delayMs = options.delayMs ?? 100;
    /** Frames kept at most. */
    this.maxFrames = options.maxFrames ?? 64;
    /** Stored frames, by increasing tick. @type {Frame[]} */
    this.frames = [];
    /** Estimated `arrival time - tick * tickMs` of a snapshot that was not delayed. @type {number | null} */
    this.offset = null;
  }

  /** Forgets every frame and the clock estimate (e.g. after a reconnect). */
  clear() {
    this.frames = [];
    this.offset = null;
  }

  /**
   * Stores the state of one snapshot.
   * @param {number} tick
   * @param {Iterable<[number, Pos]>} entities  id and position (copied)
   * @param {number} nowMs  arrival time
   */
  push(tick, entities, nowMs) {
    const last = this.frames[this.frames.length - 1];
    if (last && tick <= last.tick) {
      // A full snapshot with an older or equal tick (new session): start over.
      this.clear();
    }
    /** @type {Map<number, Pos>} */
    const copy = new Map();
    for (const [id, p] of entities) copy.set(id, { x: p.x, y: p.y });
    this.frames.push({ tick, entities: copy });
    if (this.frames.length > this.maxFrames) this.frames.shift();
    const sample = nowMs - tick * this.tickMs;
    // The least-delayed arrival defines the clock; drift slowly upwards so a
    // one-off early packet or a changed route does not pin it for ever.
    if (this.offset === null || sample < this.offset) this.offset = sample;
    else this.offset += (sample - this.offset) * 0.01;
  }

  /**
   * The (fractional) tick being rendered at `nowMs`.
   * @param {number} nowMs
   * @returns {number | null}
   */
  renderTick(nowMs) {
    if (this.offset === null) return null;
    return (nowMs - this.delayMs - this.offset) / this.tickMs;
  }

  /**
   * Positions of the entities at `nowMs - delayMs`: interpolated between the two
   * frames around that time; held at the oldest or newest frame outside them (no
   * extrapolation). An entity missing from the later frame stays at its last
   * position until render time passes that frame.
   * @param {number} nowMs
   * @returns {Map<number, Pos>}
   */
  sample(nowMs) {
    /** @type {Map<number, Pos>} */
    const out = new Map();
    const t = this.renderTick(nowMs);
    const frames = this.frames;
    if (t === null || frames.length === 0) return out;
    let i = 0;
    while (i + 1 < frames.length && frames[i + 1].tick <= t) i++;
    const a = frames[i];
    const b = frames[i + 1];
    // Drop frames render time has passed for good (keep `a`).
    if (i > 0) frames.splice(0, i);
    if (!b || t <= a.tick) {
      for (const [id, p] of a.entities) out.set(id, { x: p.x, y: p.y });
      return out;
    }
    const f = (t - a.tick) / (b.tick - a.tick);
    for (const [id, pa] of a.entities) {
      const pb = b.entities.get(id);
      out.set(id, pb ? { x: pa.x + (pb.x - pa.x) * f, y: pa.y + (pb.y - pa.y) * f } : { x: pa.x, y: pa.y });
    }
    return out;
  }
}
