// @ts-check
/**
 * @module movement
 * The movement rule `step` (PROTOCOL.md section 8) and the view checksum (section
 * 10): integer-only, so a client reproduces the server bit for bit.
 */

/**
 * @typedef {{ x: number, y: number }} Pos  A position on the fixed grid (i32 each).
 * @typedef {{ speedPerTick: number, worldMaxX: number, worldMaxY: number }} MoveConfig
 *   The movement constants, always taken from `Welcome`.
 */

/**
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 */
function clamp(v, lo, hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * The velocity of one direction (the middle of `step`), with its intermediate
 * values as the golden step traces list them.
 * @param {readonly [number, number]} dir  i8 components; -128 counts as -127
 * @param {number} speedPerTick
 * @returns {{ m2: number, mag: number, vx: number, vy: number }}
 */
export function velocity(dir, speedPerTick) {
  const dx = clamp(dir[0], -127, 127);
  const dy = clamp(dir[1], -127, 127);
  const m2 = dx * dx + dy * dy;
  const mag = m2 > 16129 ? Math.floor(Math.sqrt(m2)) : 127;
  // |dx * speed| < 2^28 with speed <= 2^20: exact in a double, and `| 0` rounds
  // toward zero like Rust's integer division (Math.trunc would give -0 for
  // small negative quotients, which is equal but not identical to 0).
  return { m2, mag, vx: ((dx * speedPerTick) / mag) | 0, vy: ((dy * speedPerTick) / mag) | 0 };
}

/**
 * Moves a player by one tick of one direction; each axis is clamped to the world
 * on its own.
 * @param {Pos} pos
 * @param {readonly [number, number]} dir  i8 components; -128 counts as -127
 * @param {MoveConfig} cfg
 * @returns {Pos}
 */
export function step(pos, dir, cfg) {
  const v = velocity(dir, cfg.speedPerTick);
  return {
    x: clamp(pos.x + v.vx, 0, cfg.worldMaxX),
    y: clamp(pos.y + v.vy, 0, cfg.worldMaxY),
  };
}

/**
 * MurmurHash3's 32-bit finalizer.
 * @param {number} h  a u32
 * @returns {number}  a u32
 */
export function fmix32(h) {
  h >>>= 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The hash of one entity: `fmix32(fmix32(fmix32(id) ^ u32(x)) ^ u32(y))`.
 * @param {number} id
 * @param {number} x
 * @param {number} y
 * @returns {number}  a u32
 */
export function entityHash(id, x, y) {
  return fmix32(fmix32(fmix32(id) ^ (x >>> 0)) ^ (y >>> 0));
}

/**
 * The checksum of an entity set: the wrapping u32 sum of the entity hashes.
 * @param {Iterable<{ id: number, x: number, y: number }>} entities
 * @returns {number}  a u32
 */
export function checksum(entities) {
  let sum = 0;
  for (const e of entities) sum = (sum + entityHash(e.id, e.x, e.y)) >>> 0;
  return sum;
}
