// @ts-check
/**
 * Matchmaking against a scripted `fetch`: the request the server sees, the seat
 * it answers, and every refusal as a MatchmakeError.
 */

import { test } from "node:test";
import assert from "node:assert/strict";
import { MatchmakeError, httpOrigin, listRooms, matchmake } from "../src/index.js";

/**
 * A fetch that records its calls and answers `status` with `body`.
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
function fakeFetch(status, body, headers = {}) {
  /** @type {{ url: string, init: any }[]} */
  const calls = [];
  const f = /** @type {typeof fetch} */ (
    /** @type {unknown} */ (
      async (/** @type {string} */ url, /** @type {any} */ init) => {
        calls.push({ url, init });
        return new Response(typeof body === "string" ? body : JSON.stringify(body), { status, headers });
      }
    )
  );
  return { f, calls };
}

const ANSWER = {
  room: "00000000000000ab",
  kind: "duel",
  url: "ws://127.0.0.1:7777/ws?room=00000000000000ab",
  token: "c2VhdA.bWFj",
  seat: "0000000000000001",
  expires_ms: 1_000_010_000,
  expires_in_ms: 10_000,
};

test("the origin of a ws or http URL", () => {
  assert.equal(httpOrigin("ws://127.0.0.1:7777/ws"), "http://127.0.0.1:7777");
  assert.equal(httpOrigin("wss://game.example/ws?x=1"), "https://game.example");
  assert.equal(httpOrigin("https://game.example:8443/"), "https://game.example:8443");
  assert.throws(() => httpOrigin("ftp://x"), TypeError);
});

test("a seat: the request names the kind and carries the join token", async () => {
  const { f, calls } = fakeFetch(200, ANSWER);
  const seat = await matchmake({ baseUrl: "ws://127.0.0.1:7777/ws", kind: "duel", joinToken: "jt", fetch: f });
  assert.deepEqual(seat, {
    room: ANSWER.room,
    kind: "duel",
    url: ANSWER.url,
    token: ANSWER.token,
    seat: ANSWER.seat,
    expiresMs: ANSWER.expires_ms,
    expiresInMs: 10_000,
  });
  assert.equal(calls.length, 1);
  assert.equal(calls[0].url, "http://127.0.0.1:7777/matchmake");
  assert.equal(calls[0].init.method, "POST");
  assert.equal(calls[0].init.headers.Authorization, "Bearer jt");
  assert.deepEqual(JSON.parse(calls[0].init.body), { kind: "duel" });
  // No kind, no token: an empty object and no Authorization.
  const plain = fakeFetch(200, ANSWER);
  await matchmake({ baseUrl: "http://h:1", fetch: plain.f });
  assert.equal(plain.calls[0].init.body, "{}");
  assert.equal(plain.calls[0].init.headers.Authorization, undefined);
});

test("refusals carry the status, the server's text and Retry-After", async () => {
  const full = fakeFetch(503, { error: "no free seat" }, { "Retry-After": "1" });
  await assert.rejects(matchmake({ baseUrl: "http://h:1", fetch: full.f }), (e) => {
    assert.ok(e instanceof MatchmakeError);
    assert.equal(e.status, 503);
    assert.equal(e.message, "no free seat");
    assert.equal(e.retryAfterMs, 1000);
    assert.ok(e.retryable);
    return true;
  });
  const limited = fakeFetch(429, { error: "too many matchmaking requests" }, { "Retry-After": "3" });
  await assert.rejects(matchmake({ baseUrl: "http://h:1", fetch: limited.f }), (e) => {
    assert.ok(e instanceof MatchmakeError && e.status === 429 && e.retryable && e.retryAfterMs === 3000);
    return true;
  });
  const unknown = fakeFetch(400, { error: 'unknown room kind "chess"' });
  await assert.rejects(matchmake({ baseUrl: "http://h:1", kind: "chess", fetch: unknown.f }), (e) => {
    assert.ok(e instanceof MatchmakeError && e.status === 400 && !e.retryable && e.retryAfterMs === null);
    return true;
  });
  const broken = fakeFetch(200, "<html>");
  await assert.rejects(matchmake({ baseUrl: "http://h:1", fetch: broken.f }));
  const down = /** @type {typeof fetch} */ (
    async () => {
      throw new TypeError("connection refused");
    }
  );
  await assert.rejects(matchmake({ baseUrl: "http://h:1", fetch: down }), (e) => {
    assert.ok(e instanceof MatchmakeError && e.status === 0 && e.retryable);
    return true;
  });
});

test("the room list", async () => {
  const rooms = [{ id: "00000000000000ab", kind: "duel", players: 1, reserved: 1, capacity: 2, tick: 9, tick_rate: 30, age_secs: 3 }];
  const { f, calls } = fakeFetch(200, rooms);
  assert.deepEqual(await listRooms({ baseUrl: "ws://h:1/ws", fetch: f }), rooms);
  assert.equal(calls[0].url, "http://h:1/rooms");
});
