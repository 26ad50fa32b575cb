// @ts-check
/**
 * Browser end-to-end test of the demo page, with playwright-core driving Debian's
 * chromium (no browser download). Needs a running server with a few bots:
 *
 *   node e2e/browser.mjs --url http://127.0.0.1:7777/ --bots 3 --screenshot ../../target/web-demo.png
 *
 * It opens the page, waits for the other players to appear and move smoothly,
 * holds keys and checks the own player moved exactly as `step` says, checks the
 * HUD, drops the connection and checks the session is resumed, and saves a
 * screenshot. Exit code 0 on success; on failure it prints why and exits 1
 * (2 when chromium is missing).
 */

import { parseArgs } from "node:util";
import { step } from "../src/index.js";
import { check, log, withPage } from "./page.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:7777/" },
    bots: { type: "string", default: "3" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" },
  },
});
const bots = Number(args.bots);

/**
 * Holds a horizontal key for 500 ms and a vertical one for 300 ms (towards the
 * middle of the world), waits until the server applied every input, and checks the
 * server's position is the `step` fold of the page's inputs from the position
 * before, with no misprediction left.
 * @param {import("playwright-core").Page} page
 * @param {string} when
 */
async function moveAndCheck(page, when) {
  const before = await page.evaluate(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    return { ...s.authoritative, cfg: s.predictor.cfg };
  });
  const horizontal = before.x < before.cfg.worldMaxX / 2 ? "ArrowRight" : "ArrowLeft";
  const vertical = before.y < before.cfg.worldMaxY / 2 ? "KeyS" : "KeyW";
  await page.keyboard.down(horizontal);
  await page.waitForTimeout(500);
  await page.keyboard.up(horizontal);
  await page.keyboard.down(vertical);
  await page.waitForTimeout(300);
  await page.keyboard.up(vertical);
  await page.waitForFunction(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    const moves = s.inputLog.filter((/** @type {any} */ i) => i.dir[0] !== 0 || i.dir[1] !== 0);
    return moves.length > 0 && s.authoritative.ackInput >= moves[moves.length - 1].seq;
  });
  const after = await page.evaluate(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    return { auth: s.authoritative, log: s.inputLog, predicted: s.ownPosition(), corrections: s.predictor.corrections };
  });
  const applied = after.log.filter((/** @type {any} */ i) => i.seq > before.ackInput && i.seq <= after.auth.ackInput);
  check(applied.length === after.auth.ackInput - before.ackInput, `${when}: the input log covers every applied input`);
  let expected = { x: before.x, y: before.y };
  for (const i of applied) expected = step(expected, i.dir, before.cfg);
  const movesX = applied.filter((/** @type {any} */ i) => i.dir[0] !== 0).length;
  const movesY = applied.filter((/** @type {any} */ i) => i.dir[1] !== 0).length;
  log(
    `${when}: moved from (${before.x}, ${before.y}) to (${after.auth.x}, ${after.auth.y}) with ${movesX} horizontal and ${movesY} vertical inputs; step says (${expected.x}, ${expected.y}); corrections so far ${after.corrections}`,
  );
  check(movesX >= 8 && movesY >= 4, `${when}: enough key-driven inputs (${movesX}, ${movesY})`);
  check(after.auth.x === expected.x && after.auth.y === expected.y, `${when}: server position equals the step fold`);
  check(after.auth.x !== before.x && after.auth.y !== before.y, `${when}: the player moved on both axes`);
  check(
    Math.abs(after.auth.x - before.x) === movesX * before.cfg.speedPerTick,
    `${when}: horizontal distance = inputs x speed_per_tick`,
  );
  check(after.predicted.x === after.auth.x && after.predicted.y === after.auth.y, `${when}: prediction equals the server once idle`);
}

await withPage(/** @type {string} */ (args.chromium), async (page) => {
  await page.goto(/** @type {string} */ (args.url));
  log(`opened ${args.url}`);

  // Connected, and every bot in view and drawn.
  await page.waitForFunction(
    (n) => {
      const d = /** @type {any} */ (window).ticksyncDemo;
      return d && d.status === "connected" && d.session.world.size >= n + 1 && d.remoteDrawn >= n;
    },
    bots,
  );
  const info = await page.evaluate(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    return { playerId: s.welcome.playerId, speed: s.welcome.speedPerTick, inView: s.world.size };
  });
  log(`connected as player ${info.playerId}, ${info.inView} players in view`);

  // Remote players move, and smoothly: what the page draws at time t is
  // remotePositions(t); sampled every 5 ms (whatever the frame rate of this
  // headless browser), a walking player advances in small steps between the
  // snapshot positions instead of jumping a whole tick's move per snapshot.
  // A busy machine can stall the page long enough that the buffer holds its last
  // frame for a moment (no motion in the window): sample again, a bounded number
  // of times; one window must show every bot drawn and a smooth walker.
  /** @type {Record<number, {moves: number, maxStep: number}>} */
  let motion = {};
  /** @type {{moves: number, maxStep: number}[]} */
  let smooth = [];
  for (let attempt = 1; attempt <= 10 && smooth.length === 0; attempt++) {
    await page.waitForTimeout(300);
    motion = await page.evaluate(() => {
      const s = /** @type {any} */ (window).ticksyncDemo.session;
      const t0 = performance.now();
      /** @type {Map<number, {x: number, y: number}>[]} */
      const samples = [];
      for (let i = 0; i <= 12; i++) samples.push(s.remotePositions(t0 + 5 * i));
      /** @type {Record<number, {moves: number, maxStep: number}>} */
      const byId = {};
      for (const id of samples[0].keys()) {
        let moves = 0;
        let maxStep = 0;
        for (let i = 1; i < samples.length; i++) {
          const p = samples[i].get(id);
          const q = samples[i - 1].get(id);
          if (!p || !q) continue;
          const d = Math.hypot(p.x - q.x, p.y - q.y);
          if (d > 0) moves++;
          maxStep = Math.max(maxStep, d);
        }
        byId[id] = { moves, maxStep };
      }
      return byId;
    });
    log(`remote motion over 60 ms in 5 ms samples (try ${attempt}): ${JSON.stringify(motion)}`);
    smooth = Object.values(motion).filter((m) => m.moves >= 8 && m.maxStep < info.speed / 2);
  }
  check(Object.keys(motion).length >= bots, "every bot is drawn");
  check(smooth.length >= 1, "a walking player moves smoothly between snapshots");

  // Move: hold keys, then check the server's position is exactly the `step` fold of
  // the inputs the page produced, and the prediction agrees with it.
  await page.locator("canvas").click();
  await moveAndCheck(page, "before any drop");

  // HUD: every field filled in from live data (the room's fill comes from
  // GET /rooms every 2 s).
  await page.waitForFunction(() => {
    const d = /** @type {any} */ (window).ticksyncDemo;
    return d.snapshotRate > 0 && d.listing !== null;
  });
  const hudText = await page.evaluate(() => {
    /** @type {Record<string, string>} */
    const out = {};
    for (const el of document.querySelectorAll("#hud dd")) out[el.id] = el.textContent ?? "";
    return out;
  });
  log(`HUD ${JSON.stringify(hudText)}`);
  check(hudText["hud-status"] === "connected", "HUD says connected");
  check(/^\d+(\.\d+)? ms$/.test(hudText["hud-rtt"]), "HUD shows an RTT");
  check(Number(hudText["hud-tick"]) > 0, "HUD shows the server tick");
  check(Number(hudText["hud-snap-rate"]) >= 10, "HUD shows a snapshot rate");
  check(/KiB\/s$/.test(hudText["hud-bytes"]) && parseFloat(hudText["hud-bytes"]) > 0, "HUD shows bytes/s");
  check(Number(hudText["hud-players"]) >= bots + 1, "HUD counts the players in view");
  // The page matchmade into the default kind, the room the plain bots share.
  check(/^default [0-9a-f]{16}$/.test(hudText["hud-room"]), "HUD shows the matchmade room");
  const [inRoom, capacity] = hudText["hud-room-players"].split(" / ").map((n) => parseInt(n, 10));
  check(inRoom >= bots + 1 && capacity > inRoom, "HUD shows the room's players and capacity");

  if (args.screenshot) {
    await page.screenshot({ path: args.screenshot });
    log(`screenshot saved to ${args.screenshot}`);
  }

  // Drop the connection without leaving (close code 4100): the page reconnects and
  // resumes the same player.
  await page.evaluate(() => /** @type {any} */ (window).ticksyncDemo.dropConnection(4100));
  await page.waitForFunction(() => {
    const d = /** @type {any} */ (window).ticksyncDemo;
    return d.reconnects >= 1 && d.status === "connected" && d.session.world.valid;
  });
  const resumed = await page.evaluate(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    return { playerId: s.welcome.playerId, resumed: s.welcome.resumed };
  });
  log(`after a drop: ${JSON.stringify(resumed)}`);
  check(resumed.playerId === info.playerId && resumed.resumed, "the session was resumed as the same player");
  // The resumed session's inputs continue at last_input_seq + 1 and are all applied.
  await moveAndCheck(page, "after the resume");

  // A message that does not decode (a truncated Snapshot): the page closes on its
  // own, reconnects and resumes again.
  await page.evaluate(() => /** @type {any} */ (window).ticksyncDemo.injectMessage([1, 0, 5]));
  await page.waitForFunction(() => {
    const d = /** @type {any} */ (window).ticksyncDemo;
    return d.reconnects >= 2 && d.status === "connected" && d.session.world.valid;
  });
  const again = await page.evaluate(() => {
    const s = /** @type {any} */ (window).ticksyncDemo.session;
    return { playerId: s.welcome.playerId, resumed: s.welcome.resumed };
  });
  log(`after an undecodable message: ${JSON.stringify(again)}`);
  check(again.playerId === info.playerId && again.resumed, "resumed after closing on a bad message");
});
