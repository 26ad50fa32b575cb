// @ts-check
/** `step` and the checksum against the golden traces and checksum vectors, bit for bit. */

import { test } from "node:test";
import assert from "node:assert/strict";
import { checksum, entityHash, fmix32, step, velocity } from "../src/index.js";
import { loadVectors } from "./vectors.js";

const traces = loadVectors("step_trace.json");
const sums = loadVectors("checksum.json");

for (const t of traces.traces) {
  test(`step trace ${t.name}: every intermediate value and position`, () => {
    const cfg = { speedPerTick: t.config.speed_per_tick, worldMaxX: t.config.world_max_x, worldMaxY: t.config.world_max_y };
    let pos = { x: t.start.x, y: t.start.y };
    assert.ok(t.steps.length > 0);
    t.steps.forEach((/** @type {any} */ s, /** @type {number} */ i) => {
      const v = velocity(s.dir, cfg.speedPerTick);
      assert.deepEqual(v, { m2: s.m2, mag: s.mag, vx: s.velocity.x, vy: s.velocity.y }, `step ${i}`);
      pos = step(pos, s.dir, cfg);
      assert.deepEqual(pos, s.pos, `step ${i}`);
    });
  });
}

test("config derivation: speed_per_tick and world_max from world units (informative)", () => {
  for (const c of traces.config_derivation) {
    assert.equal(Math.round((c.speed_units_per_s * 16) / c.tick_rate), c.speed_per_tick);
    assert.equal(Math.round(c.world_size_units * 16), c.world_max);
  }
});

test("fmix32 vectors", () => {
  for (const c of sums.fmix32) assert.equal(fmix32(c.input), c.output, `fmix32(${c.input})`);
});

test("entity hash vectors, including negative coordinates and the largest id", () => {
  for (const c of sums.entity_hash) assert.equal(entityHash(c.id, c.x, c.y), c.hash, JSON.stringify(c));
});

test("checksum sets, in any order", () => {
  for (const s of sums.sets) assert.equal(checksum(s.entities), s.checksum, s.name);
});
