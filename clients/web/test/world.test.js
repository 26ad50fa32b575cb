// @ts-check
/** ClientWorld: the golden snapshot sequence, and every way a snapshot can fail to apply. */

import { test } from "node:test";
import assert from "node:assert/strict";
import { ClientWorld, checksum, decodeServerMsg, fromHex } from "../src/index.js";
import { loadVectors } from "./vectors.js";

const server = loadVectors("server_messages.json");
const sums = loadVectors("checksum.json");
/** @param {string} name */
const snapshot = (name) => {
  const c = server.cases.find((/** @type {any} */ c) => c.name === name);
  const msg = decodeServerMsg(fromHex(c.hex));
  assert.equal(msg.type, "Snapshot");
  return /** @type {import("../src/index.js").Snapshot} */ (msg);
};
/** @param {string} name */
const set = (name) =>
  sums.sets
    .find((/** @type {any} */ s) => s.name === name)
    .entities.slice()
    .sort((/** @type {any} */ a, /** @type {any} */ b) => a.id - b.id);

test("the golden snapshot sequence applies in order, each checksum verified", () => {
  const w = new ClientWorld();
  assert.deepEqual(w.apply(snapshot("snapshot_full")), { ok: true });
  assert.deepEqual(w.list(), set("tick_100"));
  assert.deepEqual(w.apply(snapshot("snapshot_delta")), { ok: true });
  assert.deepEqual(w.list(), set("tick_101"));
  assert.deepEqual(w.apply(snapshot("snapshot_delta_empty")), { ok: true });
  assert.deepEqual(w.apply(snapshot("snapshot_delta_age_3")), { ok: true });
  assert.equal(w.tick, 105);
  assert.deepEqual(w.entities.get(42), { x: 7963, y: 7963 + 159 });
  assert.equal(checksum(w.list()), snapshot("snapshot_delta_age_3").checksum);
  // A full snapshot replaces everything.
  assert.deepEqual(w.apply(snapshot("snapshot_full_after_resume")), { ok: true });
  assert.deepEqual(w.list(), [
    { id: 7, x: 1, y: 2 },
    { id: 70000, x: 268435456, y: 1048576 },
  ]);
  assert.deepEqual(w.apply(snapshot("snapshot_full_empty")), { ok: true });
  assert.equal(w.size, 0);
});

/** @returns {ClientWorld} a world holding tick 100 of the golden sequence */
function at100() {
  const w = new ClientWorld();
  assert.ok(w.apply(snapshot("snapshot_full")).ok);
  return w;
}

/**
 * @param {Partial<import("../src/index.js").Snapshot>} fields
 * @returns {import("../src/index.js").Snapshot}
 */
const delta = (fields) => ({ ...snapshot("snapshot_delta"), ...fields });

test("a delta needs exactly the held baseline; after a failure only a full snapshot helps", () => {
  const w = new ClientWorld();
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
  assert.deepEqual(at100().apply(delta({ spawned: [{ id: 42, x: 0, y: 0 }] })), { ok: false, reason: "duplicate" });
  assert.deepEqual(at100().apply(delta({ changed: [{ id: 2, dx: 1, dy: 0 }] })), { ok: false, reason: "missing" });
  assert.deepEqual(at100().apply(delta({ removed: [], changed: [{ id: 2, dx: 0x7fffffff, dy: 0 }] })), {
    ok: false,
    reason: "overflow",
  });
  assert.deepEqual(at100().apply(delta({ checksum: 1 })), { ok: false, reason: "checksum" });
});
