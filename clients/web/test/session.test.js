// @ts-check
/**
 * Session against a scripted server made of this library's server-side codec and
 * `step`: handshake, batching, prediction, reconciliation, Resync and resume.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { Session, checksum, decodeClientMsg, decodeServerMsg, encodeServerMsg, step, welcomeProblem } from "../src/index.js";

const TOKEN_A = new Uint8Array(16).fill(0xaa);
const TOKEN_B = new Uint8Array(16).fill(0xbb);
/** @param {Partial<import("../src/index.js").Welcome>} [fields] */
const welcome = (fields = {}) =>
  encodeServerMsg({
    type: "Welcome",
    playerId: 5,
    tick: 1000,
    tickRate: 30,
    speedPerTick: 53,
    worldMaxX: 16000,
    worldMaxY: 16000,
    fixedScale: 16,
    viewRadius: 0,
    resumeToken: TOKEN_A,
    resumed: false,
    lastInputSeq: 0,
    idleTimeoutMs: 15000,
    rateLimit: 68,
    rateBurst: 68,
    resumeGraceMs: 10000,
    inputQueue: 16,
    ...fields,
  });
const cfg = { speedPerTick: 53, worldMaxX: 16000, worldMaxY: 16000 };

/**
 * A tiny authoritative server for one client and one bystander (id 9) that walks
 * right at velocity (1, 0), so it is never listed after the full snapshot. The
 * client's own entity is announced standing still: its moves are corrections.
 */
class FakeServer {
  constructor() {
    this.tick = 1000;
    this.me = { x: 800, y: 800 };
    this.other = { x: 50, y: 60 };
    this.ack = 0;
    /** @type {{ seq: number, dir: [number, number] }[]} */
    this.queue = [];
    /** @type {{ x: number, y: number } | null} */
    this.sentMe = null;
    /** @type {{ x: number, y: number } | null} */
    this.sentOther = null;
    this.resyncs = 0;
    /** Sequence numbers to drop on receipt. @type {Set<number>} */
    this.drop = new Set();
  }

  /** @param {Uint8Array[]} msgs */
  receive(msgs) {
    for (const bytes of msgs) {
      const m = decodeClientMsg(bytes);
      if (m.type === "Input") {
        m.dirs.forEach((d, i) => {
          const seq = m.firstSeq + i;
          if (!this.drop.has(seq)) this.queue.push({ seq, dir: d });
        });
      } else if (m.type === "Resync") {
        this.resyncs++;
        this.sentMe = null;
      }
    }
  }

  /** Applies one input and returns this tick's snapshot. */
  advance() {
    this.tick++;
    const next = this.queue.shift();
    if (next) {
      this.me = step(this.me, next.dir, cfg);
      this.ack = next.seq;
    }
    this.other = { x: this.other.x + 1, y: this.other.y };
    const entities = [
      { id: 5, ...this.me, vx: 0, vy: 0 },
      { id: 9, ...this.other, vx: 1, vy: 0 },
    ];
    const head = { type: /** @type {const} */ ("Snapshot"), ackInput: this.ack, tick: this.tick, removed: [], changed: [] };
    /** @type {import("../src/index.js").Snapshot} */
    let snap;
    if (this.sentMe === null || this.sentOther === null) {
      snap = { ...head, baselineAge: 0, spawned: entities, corrected: [], checksum: checksum(entities) };
    } else {
      const corrected = [{ id: 5, rx: this.me.x - this.sentMe.x, ry: this.me.y - this.sentMe.y }].filter(
        (c) => c.rx !== 0 || c.ry !== 0,
      );
      snap = { ...head, baselineAge: 1, spawned: [], corrected, checksum: checksum(entities) };
    }
    this.sentMe = { ...this.me };
    this.sentOther = { ...this.other };
    return encodeServerMsg(snap);
  }
}

/**
 * Runs `ticks` client/server ticks with `dir`; returns the events of the session.
 * @param {Session} s
 * @param {FakeServer} srv
 * @param {{ now: number }} clock
 * @param {number} ticks
 * @param {[number, number]} dir
 */
function run(s, srv, clock, ticks, dir) {
  const events = [];
  for (let i = 0; i < ticks; i++) {
    s.update(clock.now, dir);
    srv.receive(s.takeOutgoing());
    events.push(s.receive(srv.advance(), clock.now));
    clock.now += 1000 / 30;
  }
  return events;
}

test("handshake, batched inputs, exact prediction and interpolated others", () => {
  const s = new Session({ name: "Ada", sendEveryTicks: 2 });
  const hello = decodeClientMsg(s.open());
  assert.deepEqual(hello, { type: "Hello", version: 2, name: "Ada", authToken: null, resumeToken: null });
  assert.equal(s.receive(welcome(), 0).type, "welcome");
  const srv = new FakeServer();
  const clock = { now: 0 };
  assert.deepEqual(s.receive(srv.advance(), clock.now), { type: "snapshot", tick: 1001, ok: true, corrected: false });
  assert.deepEqual(s.ownPosition(), { x: 800, y: 800 });

  // Two ticks of input leave as one Input message of 2 directions.
  s.update(0, [127, 0]);
  assert.equal(s.takeOutgoing().filter((b) => b[0] === 1).length, 0, "one input waits for its batch");
  s.update(1000 / 30, [127, 0]);
  const bytes = s.takeOutgoing();
  const sent = bytes.map((b) => decodeClientMsg(b));
  assert.deepEqual(sent.find((m) => m.type === "Input"), { type: "Input", ackTick: 1001, firstSeq: 1, dirs: [[127, 0], [127, 0]] });
  assert.deepEqual(s.ownPosition(), { x: 906, y: 800 }, "predicted at once");
  srv.receive(bytes);
  clock.now = 2000 / 30;

  const events = run(s, srv, clock, 60, [0, 127]);
  assert.ok(events.every((e) => e.type === "snapshot" && e.ok && !e.corrected), JSON.stringify(events.find((e) => e.type !== "snapshot" || !e.ok)));
  run(s, srv, clock, 3, [0, 0]);
  assert.equal(s.predictor.corrections, 0);
  assert.deepEqual(s.authoritative && { x: s.authoritative.x, y: s.authoritative.y }, srv.me);
  assert.deepEqual(s.predictor.predicted, step(srv.me, [0, 0], cfg));
  assert.ok(s.stats.inputMessagesSent >= 30 && s.stats.inputsSent >= 60);
  // The other player is drawn from the interpolation buffer, behind the server.
  const other = s.remotePositions(clock.now).get(9);
  assert.ok(other && other.x < srv.other.x && other.x > srv.other.x - 10, JSON.stringify(other));
  assert.equal(s.remotePositions(clock.now).has(5), false, "the own player is predicted, not interpolated");
});

test("a dropped input shows up as a correction, and the prediction converges", () => {
  const s = new Session({ sendEveryTicks: 1 });
  s.open();
  s.receive(welcome(), 0);
  const srv = new FakeServer();
  const clock = { now: 0 };
  s.receive(srv.advance(), 0);
  srv.drop.add(3);
  const events = run(s, srv, clock, 10, [127, 0]);
  assert.ok(events.some((e) => e.type === "snapshot" && e.ok && e.corrected));
  run(s, srv, clock, 5, [0, 0]);
  assert.deepEqual(s.predictor.predicted, srv.me);
  assert.equal(srv.me.x, 800 + 9 * 53, "nine of ten inputs applied");
});

test("a checksum mismatch sends one Resync and recovers on the full snapshot", () => {
  const s = new Session();
  s.open();
  s.receive(welcome(), 0);
  const srv = new FakeServer();
  s.receive(srv.advance(), 0);
  s.receive(srv.advance(), 10);
  // Corrupt one delta: the checksum does not match what the client computes.
  const bad = srv.advance();
  bad[bad.length - 1] ^= 0xff;
  assert.deepEqual(s.receive(bad, 20), { type: "snapshot", tick: 1003, ok: false, reason: "checksum" });
  assert.deepEqual(s.receive(srv.advance(), 30), { type: "snapshot", tick: 1004, ok: false, reason: "baseline" });
  const out = s.takeOutgoing().map((b) => decodeClientMsg(b));
  assert.deepEqual(out, [{ type: "Resync" }], "exactly one Resync");
  srv.receive(out.map(() => Uint8Array.of(3)));
  assert.equal(srv.resyncs, 1);
  assert.equal(s.receive(srv.advance(), 40).type, "snapshot");
  assert.equal(s.world.valid, true);
  assert.equal(s.stats.desyncs, 1);
  assert.ok(s.receive(srv.advance(), 50).type === "snapshot" && s.world.tick === 1006);
});

test("resume: Hello carries the token, inputs continue after last_input_seq", () => {
  const s = new Session({ sendEveryTicks: 1 });
  s.open();
  s.receive(welcome(), 0);
  const srv = new FakeServer();
  const clock = { now: 0 };
  s.receive(srv.advance(), 0);
  run(s, srv, clock, 5, [127, 0]);
  assert.equal(s.closed(1006), "resume");
  const hello = decodeClientMsg(s.open());
  assert.ok(hello.type === "Hello" && hello.resumeToken !== null);
  assert.deepEqual(hello.type === "Hello" && [...(hello.resumeToken ?? [])], [...TOKEN_A]);
  s.receive(welcome({ resumed: true, resumeToken: TOKEN_B, lastInputSeq: 4 }), clock.now);
  srv.sentMe = null;
  s.receive(srv.advance(), clock.now);
  s.update(clock.now + 1, [0, 127]);
  const input = s.takeOutgoing().map((b) => decodeClientMsg(b)).find((m) => m.type === "Input");
  assert.equal(input && input.type === "Input" && input.firstSeq, 5);
  assert.deepEqual(s.inputLog.map((i) => i.seq), [1, 2, 3, 4, 5], "lost input 5 replaced by the new 5");
  assert.deepEqual(s.resumeToken, TOKEN_B);
});

test("after a reconnect, no input is sent before the new Welcome", () => {
  const s = new Session({ sendEveryTicks: 1 });
  s.open();
  s.receive(welcome(), 0);
  const srv = new FakeServer();
  const clock = { now: 0 };
  s.receive(srv.advance(), 0);
  run(s, srv, clock, 5, [127, 0]);
  s.closed(1006);
  s.open();
  // The page keeps calling update() while the new Welcome is on its way (a busy
  // server): inputs numbered for the old session would be dropped as stale once
  // the Welcome renumbers from last_input_seq + 1.
  for (let t = 1; t <= 5; t++) s.update(clock.now + t * 40, [127, 0]);
  assert.deepEqual(
    s.takeOutgoing().map((b) => decodeClientMsg(b).type).filter((t) => t === "Input"),
    [],
  );
  s.receive(welcome({ resumed: true, resumeToken: TOKEN_B, lastInputSeq: 5 }), clock.now + 200);
  srv.sentMe = null;
  s.receive(srv.advance(), clock.now + 200);
  s.update(clock.now + 201, [127, 0]);
  const input = s.takeOutgoing().map((b) => decodeClientMsg(b)).find((m) => m.type === "Input");
  assert.equal(input && input.type === "Input" && input.firstSeq, 6);
});

test("close codes: no resume after 1008/1002 from the server, stop on 4003; ResumeFailed drops the token", () => {
  const s = new Session();
  s.open();
  s.receive(welcome(), 0);
  assert.equal(s.closed(1002, true), "resume", "our own 1002 after a bad message keeps the session");
  assert.equal(s.closed(4003), "stop");
  assert.equal(s.closed(4005), "stop", "kicked: do not come back on its own");
  assert.equal(s.closed(1006), "resume");
  assert.equal(s.closed(1008), "fresh");
  s.receive(welcome(), 0);
  const ev = s.receive(encodeServerMsg({ type: "Error", code: 5, message: "unknown token" }), 0);
  assert.deepEqual(ev, { type: "error", code: 5, message: "unknown token" });
  assert.equal(s.resumeToken, null);
  assert.equal(s.closed(1006), "fresh");
});

/**
 * A session welcomed at `t` ms, receiving its last message at `t + 1000`.
 * @param {import("../src/index.js").SessionOptions} [options]
 */
function playing(options = {}, t = 0) {
  const s = new Session(options);
  s.open();
  s.receive(welcome(), t);
  s.receive(encodeServerMsg({ type: "Pong", clientTimeUs: 0n, serverTick: 1 }), t + 1000);
  return s;
}

test("a session is given up where a resume cannot work: 1001 (drain), 4004 (room closed)", () => {
  for (const code of [1001, 4004]) {
    const s = playing();
    assert.equal(s.closed(code), "fresh", `after ${code} the same session cannot come back`);
    assert.equal(s.resumeToken, null);
    const hello = decodeClientMsg(s.open());
    assert.ok(hello.type === "Hello" && hello.resumeToken === null, "the fresh Hello carries no resume token");
    s.receive(welcome({ playerId: 7, resumeToken: TOKEN_B }), 1600);
    assert.equal(s.stats.rematchmades, 1, `${code}: the fresh join counts as a re-matchmake`);
    assert.equal(s.stats.rematchmakeMs, 600, "from the lost session's last message to the new Welcome");
    assert.equal(s.playerId, 7);
  }
  // This side leaving with 1000 or 1001 is no re-matchmake and keeps no session.
  for (const code of [1000, 1001]) {
    const s = playing();
    assert.equal(s.closed(code, true), "fresh");
    s.open();
    s.receive(welcome({ resumeToken: TOKEN_B }), 2000);
    assert.equal(s.stats.rematchmades, 0);
  }
});

test("failed resumes: the member is gone (no Welcome twice in a row) or ResumeFailed", () => {
  // A connection lost without a goodbye is resumed; attempts that never get a
  // Welcome (refused, a proxy's 502: 1006 before or after opening) give it up.
  const s = playing();
  assert.equal(s.closed(1006), "resume");
  assert.equal(s.closed(1006), "resume", "one failed attempt may be the network");
  s.open();
  assert.equal(s.closed(1006), "fresh", "the second in a row: the member is gone");
  s.open();
  s.receive(welcome({ resumeToken: TOKEN_B }), 1250);
  assert.equal(s.stats.rematchmades, 1);
  assert.equal(s.stats.rematchmakeMs, 250);

  // A resume that works resets the count; one attempt allowed gives up at once.
  const quick = playing({ resumeAttempts: 1 });
  assert.equal(quick.closed(1006), "resume");
  quick.open();
  quick.receive(welcome({ resumed: true }), 1100);
  assert.equal(quick.failedResumes, 0);
  assert.equal(quick.stats.rematchmades, 0, "a resume is no re-matchmake");
  assert.equal(quick.closed(1006), "resume");
  assert.equal(quick.closed(1006), "fresh");

  // The server refuses the resume (grace expired): a fresh join right away.
  const late = playing();
  assert.equal(late.closed(1006), "resume");
  late.open();
  late.receive(encodeServerMsg({ type: "Error", code: 5, message: "resume token expired" }), 5000);
  assert.equal(late.closed(1008), "fresh");
  late.open();
  late.receive(welcome({ resumeToken: TOKEN_B }), 5100);
  assert.equal(late.stats.rematchmades, 1);
  assert.equal(late.stats.rematchmakeMs, 4100);
});

test("a fresh join after a refused seat or a policy close is no re-matchmake", () => {
  const s = playing();
  assert.equal(s.closed(1008), "fresh");
  s.open();
  s.receive(welcome({ resumeToken: TOKEN_B }), 1500);
  assert.equal(s.stats.rematchmades, 0);
  // Before any Welcome there is no session to give up.
  const never = new Session();
  assert.equal(never.closed(1006), "fresh");
  assert.equal(never.closed(1001), "fresh");
  never.open();
  never.receive(welcome(), 10);
  assert.equal(never.stats.rematchmades, 0);
});

test("unknown server tags are skipped; other decoding errors are protocol errors", () => {
  const s = new Session();
  s.open();
  assert.equal(s.receive(Uint8Array.of(4, 1, 2, 3), 0).type, "ignored");
  assert.equal(s.receive(Uint8Array.of(1, 0, 5), 0).type, "protocolError");
  assert.equal(s.receive(encodeServerMsg({ type: "Pong", clientTimeUs: 1_000_000n, serverTick: 7 }), 1250).type, "pong");
  assert.equal(s.stats.rttMs, 250);
});

test("an unusable Welcome (tick_rate 0, fixed_scale not 16, player_id 0, a zero limit) is refused for good", () => {
  /** @type {[Partial<import("../src/index.js").Welcome>, string][]} */
  const cases = [
    [{ tickRate: 0 }, "Welcome.tick_rate"],
    [{ fixedScale: 10 }, "Welcome.fixed_scale"],
    [{ playerId: 0 }, "Welcome.player_id"],
    [{ idleTimeoutMs: 0 }, "Welcome.idle_timeout_ms"],
    [{ rateLimit: 0 }, "Welcome.rate_limit"],
    [{ rateBurst: 0 }, "Welcome.rate_burst"],
    [{ inputQueue: 0 }, "Welcome.input_queue"],
  ];
  for (const [bad, field] of cases) {
    const s = new Session({ sendEveryTicks: 1 });
    s.open();
    const ev = s.receive(welcome(bad), 0);
    assert.equal(ev.type, "incompatible", field);
    assert.ok(ev.type === "incompatible" && ev.detail.startsWith(field), ev.type === "incompatible" ? ev.detail : "");
    assert.equal(s.playerId, null);
    s.update(100, [127, 0]);
    assert.deepEqual(s.takeOutgoing(), [], "nothing is sent after refusing");
    assert.equal(s.closed(4400, true), "stop", "not even a fresh join: the server would answer the same");
  }
  const good = decodeServerMsg(welcome());
  assert.ok(good.type === "Welcome" && welcomeProblem(good) === null);
});

test("pings at least every third of Welcome.idle_timeout_ms, whatever pingIntervalMs says", () => {
  const s = new Session({ pingIntervalMs: 60000 });
  s.open();
  s.receive(welcome({ idleTimeoutMs: 1500 }), 0);
  let pings = 0;
  for (let t = 0; t <= 2000; t += 100) {
    s.update(t, [0, 0]);
    pings += s.takeOutgoing().filter((b) => decodeClientMsg(b).type === "Ping").length;
  }
  assert.equal(pings, 5, "at 0, 500, 1000, 1500 and 2000 ms");
});

/**
 * Plays a session against a FakeServer with `update` every 5 ms for `ms`
 * milliseconds (the server ticking at 30 Hz); returns when each message left.
 * @param {Session} s
 * @param {number} ms
 * @returns {{ at: number, type: string, firstSeq?: number, dirs?: number }[]}
 */
function sent(s, ms) {
  const srv = new FakeServer();
  /** @type {{ at: number, type: string, firstSeq?: number, dirs?: number }[]} */
  const out = [];
  let nextTick = 0;
  for (let t = 0; t <= ms; t += 5) {
    s.update(t, [1, 0]);
    const msgs = s.takeOutgoing();
    for (const bytes of msgs) {
      const m = decodeClientMsg(bytes);
      out.push(m.type === "Input" ? { at: t, type: m.type, firstSeq: m.firstSeq, dirs: m.dirs.length } : { at: t, type: m.type });
    }
    srv.receive(msgs);
    if (t >= nextTick) {
      s.receive(srv.advance(), t);
      nextTick += 1000 / 30;
    }
  }
  return out;
}

test("never sends faster than Welcome.rate_limit nor more than rate_burst back to back", () => {
  // One Input per tick at 30 Hz plus a Ping a second would be 31 messages a second:
  // a server announcing 10 a second (burst 4) gets fewer, fuller Input messages.
  const s = new Session({ sendEveryTicks: 1, pingIntervalMs: 1000 });
  s.open();
  s.receive(welcome({ rateLimit: 10, rateBurst: 4 }), 0);
  const msgs = sent(s, 5000);
  // The mirror leaves one message a second (and one of the burst) to the WebSocket
  // layer's pongs, and Hello took one: at most 3 + 9/s from the Welcome on.
  for (const window of [1, 200, 1000, 5000]) {
    for (const m of msgs) {
      const inWindow = msgs.filter((n) => n.at >= m.at && n.at < m.at + window).length;
      assert.ok(inWindow <= 3 + (9 * window) / 1000, `${inWindow} messages within ${window} ms from ${m.at}`);
    }
  }
  // No direction is lost to the budget: the inputs are consecutive, batched instead.
  const inputs = msgs.filter((m) => m.type === "Input");
  for (let i = 1; i < inputs.length; i++) {
    assert.equal(inputs[i].firstSeq, /** @type {number} */ (inputs[i - 1].firstSeq) + /** @type {number} */ (inputs[i - 1].dirs));
  }
  const dirs = inputs.reduce((n, m) => n + /** @type {number} */ (m.dirs), 0);
  assert.ok(dirs >= 145, `${dirs} directions in 5 s at 30 Hz`);
  assert.ok(inputs.some((m) => /** @type {number} */ (m.dirs) >= 3), "several directions per Input");
  assert.ok(msgs.some((m) => m.type === "Ping"), "pings still go out");
  // Within the default 30 Hz limits (68/s, burst 68) nothing is held back.
  const free = new Session({ sendEveryTicks: 1 });
  free.open();
  free.receive(welcome(), 0);
  const all = sent(free, 2000).filter((m) => m.type === "Input");
  assert.ok(all.length >= 59 && all.every((m) => m.dirs === 1), "one Input per tick");
});

test("a catch-up after a sleep sends at most Welcome.input_queue directions at once", () => {
  for (const [inputQueue, most] of [
    [16, 8],
    [3, 3],
  ]) {
    const s = new Session({ sendEveryTicks: 1 });
    s.open();
    s.receive(welcome({ inputQueue }), 0);
    const srv = new FakeServer();
    s.update(0, [1, 0]);
    srv.receive(s.takeOutgoing());
    s.receive(srv.advance(), 0);
    s.takeOutgoing();
    s.update(1, [1, 0]);
    s.takeOutgoing();
    // The page sleeps for a second: 30 ticks due.
    s.update(1001, [1, 0]);
    const dirs = s
      .takeOutgoing()
      .map((b) => decodeClientMsg(b))
      .reduce((n, m) => n + (m.type === "Input" ? m.dirs.length : 0), 0);
    assert.equal(dirs, most, `input_queue ${inputQueue}: at most ${most} directions at once`);
  }
});

test("no resume once Welcome.resume_grace_ms has passed since the drop: a fresh join instead", () => {
  // Welcomed at 0, last message at 1000, dropped; grace 10 s.
  const s = playing();
  assert.equal(s.closed(1006), "resume");
  assert.equal(s.resumable(10999), true, "within the grace");
  const hello = decodeClientMsg(s.open(10999));
  assert.ok(hello.type === "Hello" && hello.resumeToken !== null, "a resume within the grace");
  assert.equal(s.closed(1006), "resume");
  assert.equal(s.resumable(11000), false, "the grace is over at last message + resume_grace_ms");
  assert.equal(s.resumeToken, null);
  const fresh = decodeClientMsg(s.open(11000));
  assert.ok(fresh.type === "Hello" && fresh.resumeToken === null, "a fresh Hello, not a doomed resume");
  s.receive(welcome({ playerId: 8, resumeToken: TOKEN_B }), 11500);
  assert.equal(s.stats.rematchmades, 1, "a session given up counts as re-matchmade");
  assert.equal(s.stats.rematchmakeMs, 10500);
  // open(nowMs) alone applies the rule too, with the grace the Welcome announced.
  const short = new Session();
  short.open();
  short.receive(welcome({ resumeGraceMs: 500 }), 0);
  short.closed(1006);
  const late = decodeClientMsg(short.open(501));
  assert.ok(late.type === "Hello" && late.resumeToken === null);
});
