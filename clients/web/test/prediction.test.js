// @ts-check
/** Prediction and reconciliation (PROTOCOL.md section 11), and the interpolation buffer. */

import { test } from "node:test";
import assert from "node:assert/strict";
import { InterpolationBuffer, Predictor, seqAfter, seqNext, step } from "../src/index.js";

const cfg = { speedPerTick: 53, worldMaxX: 16000, worldMaxY: 16000 };
/** @type {import("../src/index.js").Dir} */
const RIGHT = [127, 0];
/** @type {import("../src/index.js").Dir} */
const DOWN = [0, 127];

test("an exact server reproduces the prediction: no correction", () => {
  const p = new Predictor(cfg);
  p.reset(0);
  assert.equal(p.reconcile(0, { x: 100, y: 100 }), false);
  const inputs = [RIGHT, RIGHT, DOWN, RIGHT].map((d) => p.push(d));
  assert.deepEqual(inputs.map((i) => i.seq), [1, 2, 3, 4]);
  assert.deepEqual(p.predicted, { x: 100 + 3 * 53, y: 153 });
  // The server applied 1 and 2.
  let server = step(step({ x: 100, y: 100 }, RIGHT, cfg), RIGHT, cfg);
  assert.equal(p.reconcile(2, server), false);
  assert.deepEqual(p.pending.map((i) => i.seq), [3, 4]);
  server = step(step(server, DOWN, cfg), RIGHT, cfg);
  assert.equal(p.reconcile(4, server), false);
  assert.deepEqual(p.pending, []);
  assert.deepEqual(p.predicted, server);
  assert.equal(p.corrections, 0);
});

test("a dropped input is a misprediction corrected by the replay", () => {
  const p = new Predictor(cfg);
  p.reset(0);
  p.reconcile(0, { x: 0, y: 0 });
  for (let i = 0; i < 4; i++) p.push(RIGHT);
  // The server dropped input 2: after applying 1, 3 its ack is 3 and it stands at 2 steps.
  assert.equal(p.reconcile(3, { x: 106, y: 0 }), true);
  assert.deepEqual(p.predicted, { x: 159, y: 0 });
  assert.equal(p.corrections, 1);
  assert.deepEqual(p.pending.map((i) => [i.seq, i.pos.x]), [[4, 159]]);
});

test("after a resume the sequence continues from last_input_seq + 1", () => {
  const p = new Predictor(cfg);
  p.reset(300);
  assert.equal(p.ready, false);
  p.reconcile(300, { x: 5, y: 5 });
  assert.equal(p.push(RIGHT).seq, 301);
});

test("interpolation renders delayMs in the past, between the two snapshots around it", () => {
  const buf = new InterpolationBuffer(30, { delayMs: 100 });
  const tickMs = 1000 / 30;
  // Ticks 10..14 arriving on time (offset 0 + 1000 ms).
  for (let t = 10; t <= 14; t++) buf.push(t, [[7, { x: t * 30, y: 0 }]], 1000 + t * tickMs);
  const now = 1000 + 14 * tickMs;
  // 100 ms = 3 ticks behind tick 14: tick 11 exactly.
  assert.ok(Math.abs(/** @type {number} */ (buf.renderTick(now)) - 11) < 1e-9);
  assert.ok(Math.abs(/** @type {{x: number}} */ (buf.sample(now).get(7)).x - 330) < 1e-6);
  // Half a tick later: half way between 11 and 12.
  assert.ok(Math.abs(/** @type {{x: number}} */ (buf.sample(now + tickMs / 2).get(7)).x - 345) < 1e-6);
  // Far in the future: held at the newest frame, no extrapolation.
  assert.deepEqual(buf.sample(now + 10_000).get(7), { x: 420, y: 0 });
});

test("interpolation clock follows the least-delayed arrivals, and a configurable delay", () => {
  const buf = new InterpolationBuffer(10, { delayMs: 250 });
  // Tick 1 arrives late (jitter), tick 2 on time: the clock follows the early one.
  buf.push(1, [[1, { x: 0, y: 0 }]], 1000 + 100 + 80);
  buf.push(2, [[1, { x: 100, y: 0 }]], 1000 + 200);
  assert.ok(Math.abs(/** @type {number} */ (buf.renderTick(1450)) - 2) < 0.01);
  const mid = /** @type {{x: number}} */ (buf.sample(1400).get(1));
  assert.ok(Math.abs(mid.x - 50) < 1, `x ${mid.x}`);
  // Entities present only in the older frame stay until it is passed; new ones appear then.
  buf.push(3, [[2, { x: 5, y: 5 }]], 1300);
  assert.deepEqual([...buf.sample(1500).keys()], [1]);
  assert.deepEqual([...buf.sample(1560).keys()], [2]);
});

test("sequence numbers wrap from 2^32 - 1 to 0 and compare in serial order", () => {
  const MAX = 0xffffffff;
  assert.equal(seqNext(MAX), 0);
  assert.equal(seqAfter(0, MAX), true);
  assert.equal(seqAfter(MAX, 0), false);
  assert.equal(seqAfter(2 ** 31 - 1, 0), true);
  assert.equal(seqAfter(2 ** 31, 0), false, "2^31 apart: neither is after");
  assert.equal(seqAfter(0, 2 ** 31), false);
  const p = new Predictor(cfg);
  p.reset(MAX - 2);
  p.reconcile(MAX - 2, { x: 0, y: 0 });
  const seqs = [RIGHT, RIGHT, RIGHT, RIGHT].map((d) => p.push(d).seq);
  assert.deepEqual(seqs, [MAX - 1, MAX, 0, 1]);
  let server = { x: 0, y: 0 };
  for (const [i, seq] of seqs.entries()) {
    server = step(server, RIGHT, cfg);
    assert.equal(p.reconcile(seq, server), false, `ack ${seq}`);
    assert.equal(p.pending.length, 3 - i);
  }
  assert.equal(p.nextSeq, 2);
  assert.equal(p.corrections, 0);
  // A resume after the wrap continues after last_input_seq.
  p.reset(1);
  assert.equal(p.nextSeq, 2);
});
