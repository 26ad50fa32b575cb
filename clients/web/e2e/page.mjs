// @ts-check
/**
 * What the browser end-to-end scripts share: Debian's chromium driven by
 * playwright-core (no browser download), one page with its errors collected,
 * `check` and a timed `log`.
 */

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * @param {boolean} cond
 * @param {string} msg
 * @returns {asserts cond}
 */
export function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`);
}

const started = Date.now();
/** @param {string} msg */
export const log = (msg) => console.log(`[e2e ${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

/**
 * Runs `body` with a fresh headless chromium page, then closes the browser and
 * exits: 0 when `body` returned and the page logged no error, 1 otherwise, 2 when
 * chromium is missing. `allowed(status, url)` says which HTTP errors the page may
 * meet (default: none; chromium's console line for an allowed response is allowed
 * too); `viewport` is the page's size (default 1100 x 760).
 * @param {string} chromiumPath
 * @param {(page: import("playwright-core").Page) => Promise<void>} body
 * @param {(status: number, url: string) => boolean} [allowed]
 * @param {{ width: number, height: number }} [viewport]
 */
export async function withPage(chromiumPath, body, allowed = () => false, viewport = { width: 1100, height: 760 }) {
  if (!existsSync(chromiumPath)) {
    console.error(
      `chromium not found at ${chromiumPath}: install Debian's package (apt-get install -y chromium, as .ci/run does) or set CHROMIUM_PATH`,
    );
    process.exit(2);
  }
  const { chromium } = await import("playwright-core");
  const userDataDir = mkdtempSync(join(tmpdir(), "ticksync-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    viewport,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  /** @type {string[]} */
  const pageErrors = [];
  let failed = false;
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => pageErrors.push(String(e)));
    page.on("console", (m) => {
      if (m.type() !== "error") return;
      // Chromium logs every failed load as "... responded with a status of N ...".
      const status = /status of (\d+)/.exec(m.text());
      if (status && allowed(Number(status[1]), m.location().url)) return;
      pageErrors.push(m.text());
    });
    page.on("response", (r) => {
      if (r.status() >= 400 && !allowed(r.status(), r.url())) pageErrors.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    // Every wait is for a condition; CI shares two cores with the server.
    page.setDefaultTimeout(30_000);
    await body(page);
    check(pageErrors.length === 0, `no page errors: ${pageErrors.join("; ")}`);
    log("ok");
  } catch (e) {
    failed = true;
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    if (pageErrors.length) console.error(`page errors: ${pageErrors.join("; ")}`);
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}
