// @ts-check
/**
 * @module matchmake
 * "Where do I play?": `POST /matchmake` and `GET /rooms` (PROTOCOL.md section
 * 16). A seat comes with the WebSocket URL to open and a seat token to send as
 * `Hello.auth_token` (set it as the session's `authToken`). Works with any
 * `fetch` (browsers, Node 18+); tests pass their own.
 */

/**
 * @typedef {object} Seat
 * @property {string} room  the room id (16 hex digits)
 * @property {string} kind  the room's kind
 * @property {string} url  the WebSocket URL to connect to, as is
 * @property {string} token  the seat token: `Hello.auth_token`
 * @property {string} seat  the reservation's id
 * @property {number} expiresMs  unix time (ms) at which an unused seat is freed
 * @property {number} expiresInMs  the same, relative to the answer
 *
 * @typedef {object} RoomListing
 * @property {string} id
 * @property {string} kind
 * @property {number} players
 * @property {number} reserved
 * @property {number} capacity
 * @property {number} tick
 * @property {number} tick_rate
 * @property {number} age_secs
 * @property {boolean} locked  its match is locked (a `lock=full` kind that was full, or a lock time passed): it takes no newcomer
 *
 * @typedef {object} MatchmakeOptions
 * @property {string} baseUrl  the server's `http://` or `https://` origin (or its `ws://`/`wss://` URL)
 * @property {string | null} [kind]  the room kind (default: the server's)
 * @property {string | null} [joinToken]  the caller's join token, for servers with `--auth-secret`
 * @property {typeof fetch} [fetch]  the `fetch` to use (default: the global one)
 */

/** `POST /matchmake` refused: the HTTP status and the server's error text. */
export class MatchmakeError extends Error {
  /**
   * @param {number} status  the HTTP status (0: no answer)
   * @param {string} message
   * @param {number | null} retryAfterMs  from `Retry-After` (503, 429), else null
   */
  constructor(status, message, retryAfterMs) {
    super(message);
    this.name = "MatchmakeError";
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }

  /**
   * Whether asking again later may succeed (full, draining, no answer, or
   * over the address's request or seat limit: 429).
   */
  get retryable() {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

/**
 * The `http(s)://host:port` origin of a server URL given as `http(s)://` or
 * `ws(s)://` (path and query dropped).
 * @param {string} url
 * @returns {string}
 */
export function httpOrigin(url) {
  const u = new URL(url);
  const scheme = { "ws:": "http:", "wss:": "https:", "http:": "http:", "https:": "https:" }[u.protocol];
  if (!scheme) throw new TypeError(`${url} is not an http(s):// or ws(s):// URL`);
  return `${scheme}//${u.host}`;
}

/**
 * Asks the server for a seat.
 * @param {MatchmakeOptions} options
 * @returns {Promise<Seat>}
 */
export async function matchmake(options) {
  const doFetch = options.fetch ?? globalThis.fetch;
  /** @type {Record<string, string>} */
  const headers = { "Content-Type": "application/json" };
  if (options.joinToken) headers.Authorization = `Bearer ${options.joinToken}`;
  const body = options.kind ? JSON.stringify({ kind: options.kind }) : "{}";
  let res;
  try {
    res = await doFetch(`${httpOrigin(options.baseUrl)}/matchmake`, { method: "POST", headers, body });
  } catch (e) {
    throw new MatchmakeError(0, `no answer from the matchmaker: ${e}`, null);
  }
  const text = await res.text();
  if (res.status !== 200) {
    let message = text;
    try {
      message = JSON.parse(text).error ?? text;
    } catch {
      // Not JSON (a proxy's page): keep the text.
    }
    const after = Number(res.headers.get("Retry-After"));
    const retryAfterMs = res.headers.get("Retry-After") !== null && after >= 0 ? after * 1000 : null;
    throw new MatchmakeError(res.status, message, retryAfterMs);
  }
  const a = JSON.parse(text);
  if (typeof a.url !== "string" || typeof a.token !== "string" || typeof a.room !== "string") {
    throw new MatchmakeError(res.status, `unexpected matchmake answer: ${text}`, null);
  }
  return {
    room: a.room,
    kind: a.kind,
    url: a.url,
    token: a.token,
    seat: a.seat,
    expiresMs: a.expires_ms,
    expiresInMs: a.expires_in_ms,
  };
}

/**
 * The server's open rooms (`GET /rooms`).
 * @param {{ baseUrl: string, fetch?: typeof fetch }} options
 * @returns {Promise<RoomListing[]>}
 */
export async function listRooms(options) {
  const doFetch = options.fetch ?? globalThis.fetch;
  const res = await doFetch(`${httpOrigin(options.baseUrl)}/rooms`);
  if (res.status !== 200) throw new MatchmakeError(res.status, await res.text(), null);
  return res.json();
}
