// @ts-check
/**
 * ClientWorld: the golden snapshot sequence, the multi-tick trace, and every way a
 * snapshot can fail to apply.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientWorld, checksum, decodeServerMsg, encodeServerMsg, extrapolate, fromHex, toHex } from "../src/index.js";
import { loadVectors, messageFromJson } from "./vectors.js";

const server = loadVectors("server_messages.json");
const sums = loadVectors("checksum.json");
const trace = loadVectors("snapshot_trace.json");
/** welcome_resumed_large's world, in which the golden sequence plays. */
const STORY_MAX = [2 ** 28, 2 ** 20];

/** @param {string} name */
const snapshot = (name) => {
  const c = server.cases.find((/** @type {any} */ c) => c.name === name);
  const msg = decodeServerMsg(fromHex(c.hex));
  assert.equal(msg.type, "Snapshot");
  return /** @type {import("../src/index.js").Snapshot} */ (msg);
};
/** @param {string} name */
const positions = (name) =>
  sums.sets
    .find((/** @type {any} */ s) => s.name === name)
    .entities.slice()
    .sort((/** @type {any} */ a, /** @type {any} */ b) => a.id - b.id);
/** @param {ClientWorld} w */
const heldPositions = (w) => w.list().map(({ id, x, y }) => ({ id, x, y }));

test("the golden snapshot sequence applies in order, each checksum verified", () => {
  const w = new ClientWorld(STORY_MAX[0], STORY_MAX[1]);
  assert.deepEqual(w.apply(snapshot("snapshot_full")), { ok: true });
  assert.deepEqual(heldPositions(w), positions("tick_100"));
  assert.deepEqual(w.apply(snapshot("snapshot_delta")), { ok: true });
  assert.deepEqual(heldPositions(w), positions("tick_101"));
  // 300's x would be -80 and is clamped to 0, then corrected to 80.
  assert.deepEqual(w.entities.get(300), { x: 80, y: 1007, vx: -200, vy: 1000 });
  assert.deepEqual(w.apply(snapshot("snapshot_delta_empty")), { ok: true });
  assert.deepEqual(w.entities.get(1), { x: 106, y: 0, vx: 53, vy: 0 });
  assert.deepEqual(w.apply(snapshot("snapshot_delta_age_3")), { ok: true });
  assert.equal(w.tick, 105);
  assert.deepEqual(w.entities.get(42), { x: 7889, y: 7889, vx: 0, vy: 0 });
  assert.deepEqual(w.entities.get(300), { x: 0, y: 5007, vx: -200, vy: 1000 });
  assert.equal(checksum(w.list()), snapshot("snapshot_delta_age_3").checksum);
  // A full snapshot replaces everything.
  assert.deepEqual(w.apply(snapshot("snapshot_full_after_resume")), { ok: true });
  assert.deepEqual(w.list(), [
    { id: 7, x: 1, y: 2, vx: 0, vy: 0 },
    { id: 70000, x: 268435456, y: 1048576, vx: -53, vy: 37 },
  ]);
  assert.deepEqual(w.apply(snapshot("snapshot_full_empty")), { ok: true });
  assert.equal(w.size, 0);
});

test("the multi-tick trace: every snapshot yields exactly the view of its tick", () => {
  const w = new ClientWorld(trace.config.world_max_x, trace.config.world_max_y);
  let applied = 0;
  for (const t of trace.ticks) {
    if (t.snapshot === null) continue;
    const msg = messageFromJson(t.snapshot.message);
    const bytes = fromHex(t.snapshot.hex);
    assert.deepEqual(decodeServerMsg(bytes), msg, `tick ${t.tick}`);
    assert.equal(toHex(encodeServerMsg(msg)), t.snapshot.hex, `tick ${t.tick}`);
    assert.deepEqual(w.apply(msg), { ok: true }, `tick ${t.tick}: ${t.note}`);
    assert.deepEqual(w.list(), t.entities, `tick ${t.tick}: ${t.note}`);
    assert.equal(w.sum, t.checksum, `tick ${t.tick}`);
    applied++;
  }
  assert.ok(applied >= 10 && applied < trace.ticks.length, "some ticks are skipped");
});

test("extrapolation clamps to the world and stays exact beyond 2^53", () => {
  assert.equal(extrapolate(100, 53, 3, 16000), 259);
  assert.equal(extrapolate(100, -53, 3, 16000), 0);
  assert.equal(extrapolate(15990, 53, 1, 16000), 16000);
  assert.equal(extrapolate(5, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 28), 2 ** 28);
  assert.equal(extrapolate(5, -(2 ** 31), 2 ** 32 - 1, 2 ** 28), 0);
  assert.ok(Object.is(extrapolate(0, 0, 1, 10), 0));
});

/** @returns {ClientWorld} a world holding tick 100 of the golden sequence */
function at100() {
  const w = new ClientWorld(STORY_MAX[0], STORY_MAX[1]);
  assert.ok(w.apply(snapshot("snapshot_full")).ok);
  return w;
}

/**
 * @param {Partial<import("../src/index.js").Snapshot>} fields
 * @returns {import("../src/index.js").Snapshot}
 */
const delta = (fields) => ({ ...snapshot("snapshot_delta"), ...fields });

test("a delta needs exactly the held baseline; after a failure only a full snapshot helps", () => {
  const w = new ClientWorld(STORY_MAX[0], STORY_MAX[1]);
  assert.deepEqual(w.apply(snapshot("snapshot_delta")), { ok: false, reason: "baseline" });
  const v = at100();
  assert.deepEqual(v.apply(snapshot("snapshot_delta_empty")), { ok: false, reason: "baseline" });
  assert.equal(v.valid, false);
  assert.deepEqual(v.apply(snapshot("snapshot_delta")), { ok: false, reason: "baseline" });
  assert.ok(v.apply(snapshot("snapshot_full")).ok);
  assert.ok(v.apply(snapshot("snapshot_delta")).ok);
});

test("missing, duplicate, overflowing and mis-summed entities are detected", () => {
  assert.deepEqual(at100().apply(delta({ removed: [3] })), { ok: false, reason: "missing" });
  assert.deepEqual(at100().apply(delta({ spawned: [{ id: 42, x: 0, y: 0, vx: 0, vy: 0 }] })), {
    ok: false,
    reason: "duplicate",
  });
  assert.deepEqual(at100().apply(delta({ changed: [{ id: 2, dvx: 1, dvy: 0 }] })), { ok: false, reason: "missing" });
  assert.deepEqual(at100().apply(delta({ corrected: [{ id: 70000, rx: 1, ry: 0 }] })), {
    ok: false,
    reason: "missing",
  });
  assert.deepEqual(at100().apply(delta({ changed: [{ id: 1, dvx: 0x7fffffff, dvy: 0 }] })), {
    ok: false,
    reason: "overflow",
  });
  assert.deepEqual(at100().apply(delta({ removed: [], corrected: [{ id: 2, rx: 0x7fffffff, ry: 0 }] })), {
    ok: false,
    reason: "overflow",
  });
  assert.deepEqual(at100().apply(delta({ checksum: 1 })), { ok: false, reason: "checksum" });
});
