// @ts-check
/**
 * Browser end-to-end test of the demo page through a fleet member's drain
 * (tests/fleet_drain.rs runs it with two members behind nginx):
 *
 *   node e2e/drain.mjs --url http://127.0.0.1:8080/
 *
 * It opens the page (which matchmakes through nginx), waits until it plays,
 * prints `DRAIN <member>` (the member of its room) and waits for that member to
 * be drained by whoever runs it: the page gets close 1001, matchmakes again by
 * itself and plays in a room of another member, a fresh session (no resume on
 * the draining member), with its HUD counting the re-matchmake. Exit code 0 on
 * success; on failure it prints why and exits 1 (2 when chromium is missing).
 */

import { parseArgs } from "node:util";
import { check, log, withPage } from "./page.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8080/" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" },
  },
});

/** @param {import("playwright-core").Page} page */
const state = (page) =>
  page.evaluate(() => {
    const d = /** @type {any} */ (window).ticksyncDemo;
    const s = d.session;
    return {
      status: d.status,
      url: d.url,
      room: d.room,
      playerId: s.playerId,
      resumed: s.welcome ? s.welcome.resumed : null,
      snapshots: s.stats.snapshots,
      desyncs: s.stats.desyncs,
      rematchmades: s.stats.rematchmades,
      rematchmakeMs: s.stats.rematchmakeMs,
      hud: document.getElementById("hud-rematchmades")?.textContent ?? "",
    };
  });

/** The fleet member a seat URL names (`.../m/<member>/ws?room=...`). @param {string} url */
const memberOf = (url) => url.split("/m/")[1]?.split("/")[0] ?? "";

// While the member drains, POST /matchmake may reach it through nginx and be
// told 503 (draining, with Retry-After): the page waits and asks again.
const drainRefusal = (/** @type {number} */ status, /** @type {string} */ url) => status === 503 && url.endsWith("/matchmake");

await withPage(
  /** @type {string} */ (args.chromium),
  async (page) => {
    await page.goto(/** @type {string} */ (args.url));
    await page.waitForFunction(() => {
      const d = /** @type {any} */ (window).ticksyncDemo;
      return d && d.status === "connected" && d.session.stats.snapshots >= 30;
    });
    const before = await state(page);
    const member = memberOf(before.url);
    check(member !== "", `the seat URL names its member: ${before.url}`);
    log(`playing: ${JSON.stringify(before)}`);
    console.log(`DRAIN ${member}`);

    await page.waitForFunction(
      () => {
        const d = /** @type {any} */ (window).ticksyncDemo;
        return d.session.stats.rematchmades >= 1 && d.status === "connected" && d.session.world.valid;
      },
      null,
      { timeout: 30_000 },
    );
    const after = await state(page);
    log(`after the drain: ${JSON.stringify(after)}`);
    check(memberOf(after.url) !== member && memberOf(after.url) !== "", "playing on another member");
    check(after.room !== before.room, "in another room");
    check(after.resumed === false, "a fresh session: no resume on the draining member");
    check(after.rematchmades === 1 && after.hud.startsWith("1"), "the re-matchmake is counted, and shown in the HUD");
    check(after.rematchmakeMs !== null && after.rematchmakeMs < 10_000, "back in play within 10 s");
    await page.waitForTimeout(1000);
    const later = await state(page);
    check(later.snapshots >= after.snapshots + 10, `snapshots keep coming (${after.snapshots} -> ${later.snapshots})`);
    check(later.desyncs === 0 && later.status === "connected", "no desync, still connected");
  },
  drainRefusal,
);
