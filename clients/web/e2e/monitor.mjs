// @ts-check
/**
 * Browser end-to-end test of the server's monitor page (`--monitor`), with
 * playwright-core driving Debian's chromium. Needs a running server with
 * `--monitor --admin-token TOKEN` and bots in a few rooms:
 *
 *   node e2e/monitor.mjs --url http://127.0.0.1:7777/monitor --token TOKEN \
 *     --rooms '{"<room id>": 3, ...}' --detail '<room id>' --names 'e2e-1,e2e-2,e2e-3' \
 *     --close '<room id>' --screenshot ../../target/monitor.png
 *
 * It signs in (a wrong token first: refused), waits until the rooms table lists
 * exactly the rooms given with their player counts and the charts have data,
 * opens the detail room and checks its players (names, connected, an RTT),
 * saves a screenshot, then closes the `--close` room with its button and waits
 * until it is gone from the table. Exit code 0 on success, 1 on failure (with
 * why), 2 when chromium is missing.
 */

import { parseArgs } from "node:util";
import { check, log, withPage } from "./page.mjs";

const { values: args } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:7777/monitor" },
    token: { type: "string", default: "" },
    rooms: { type: "string", default: "{}" },
    detail: { type: "string", default: "" },
    names: { type: "string", default: "" },
    close: { type: "string", default: "" },
    screenshot: { type: "string" },
    chromium: { type: "string", default: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium" },
  },
});
const chromiumPath = /** @type {string} */ (args.chromium);

/** @type {Record<string, number>} room id -> players */
const expected = JSON.parse(/** @type {string} */ (args.rooms));
const detailRoom = /** @type {string} */ (args.detail);
const names = /** @type {string} */ (args.names).split(",").filter(Boolean).sort();
const closeRoom = /** @type {string} */ (args.close);

// The only HTTP error the page may meet is the wrong token's refusal.
const signInRefusal = (/** @type {number} */ status, /** @type {string} */ url) =>
  status === 401 && new URL(url).pathname === "/monitor/state";

await withPage(
  chromiumPath,
  async (page) => {
    await page.goto(/** @type {string} */ (args.url));
    log(`opened ${args.url}`);

    // Without a token the page shows only its sign-in form; a wrong token is
    // refused by the server (401) and the form says so.
    await page.locator("#login").waitFor({ state: "visible" });
    check(await page.locator("#main").isHidden(), "no data before signing in");
    await page.fill("#token", `${args.token}-wrong`);
    await page.click("#login-form button");
    await page.waitForFunction(() => (document.getElementById("login-error")?.textContent ?? "") !== "");
    log(`a wrong token: "${await page.textContent("#login-error")}"`);
    await page.fill("#token", /** @type {string} */ (args.token));
    await page.click("#login-form button");
    await page.locator("#main").waitFor({ state: "visible" });

    // The rooms table lists exactly the expected rooms with their player counts.
    const rooms = await page.waitForFunction((want) => {
      const rows = [...document.querySelectorAll("#rooms tbody tr")].map((tr) => {
        const el = /** @type {HTMLElement} */ (tr);
        return { id: el.dataset.room ?? "", shown: el.querySelector(".players")?.textContent ?? "" };
      });
      const ok =
        rows.length === Object.keys(want).length &&
        rows.every((r) => r.id in want && r.shown.startsWith(`${want[r.id]}/`));
      return ok && rows;
    }, expected);
    log(`rooms listed: ${JSON.stringify(await rooms.jsonValue())}`);

    // The charts have history from the server's sampler, and the server's figures.
    await page.waitForFunction(() => Number(document.getElementById("chart-load")?.dataset.points ?? 0) >= 2);
    const charts = await page.evaluate(() =>
      [...document.querySelectorAll(".charts figure")].map((f) => {
        const el = /** @type {HTMLElement} */ (f);
        return `${el.id}: ${el.dataset.points} points [${el.dataset.series}]`;
      }),
    );
    log(`charts: ${charts.join("; ")}`);
    const summary = (await page.textContent("#summary")) ?? "";
    const players = Object.values(expected).reduce((a, b) => a + b, 0);
    check(summary.includes(`${players}/`), `the summary counts ${players} players: ${summary}`);
    check((await page.textContent("#status")) === "ok", "the server's status is ok");

    // A room's detail view: its players by name, connected, with an RTT.
    await page.click(`#rooms tbody tr[data-room="${detailRoom}"]`);
    const detail = await page.waitForFunction((want) => {
      const rows = [...document.querySelectorAll("#players tbody tr")].map((tr) => {
        const td = [...tr.querySelectorAll("td")].map((c) => c.textContent ?? "");
        return { name: td[1], status: td[2], rtt: td[3] };
      });
      const shown = rows.map((r) => r.name).sort();
      const ok =
        JSON.stringify(shown) === JSON.stringify(want) &&
        rows.every((r) => r.status === "connected" && / ms$/.test(r.rtt));
      return ok && rows;
    }, names);
    log(`room ${detailRoom}: ${JSON.stringify(await detail.jsonValue())}`);
    check((await page.textContent("#detail-id")) === detailRoom, "the detail names its room");

    if (args.screenshot) {
      await page.screenshot({ path: args.screenshot, fullPage: true });
      log(`screenshot saved to ${args.screenshot}`);
    }

    // Close a room from its row; the confirmation dialog is accepted.
    page.once("dialog", (d) => {
      log(`confirm: ${d.message()}`);
      d.accept();
    });
    await page.click(`#rooms tbody tr[data-room="${closeRoom}"] button`);
    await page.waitForFunction(
      (id) =>
        !document.querySelector(`#rooms tbody tr[data-room="${id}"]`) &&
        /** @type {any} */ (window).ticksyncMonitor.actions.includes(`closed ${id}`),
      closeRoom,
    );
    const left = await page.$$eval("#rooms tbody tr", (trs) => trs.map((tr) => /** @type {HTMLElement} */ (tr).dataset.room));
    log(`closed ${closeRoom}; rooms left: ${JSON.stringify(left)}`);
    check(left.length === Object.keys(expected).length - 1, "exactly one room is gone");
  },
  signInRefusal,
  { width: 1280, height: 900 },
);
