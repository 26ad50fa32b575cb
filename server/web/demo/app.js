// @ts-check
/**
 * The demo page served by ticksync-server at `/`: a WebSocket shell around the
 * library's `Session` (which does all the protocol work), keyboard input, a canvas
 * renderer and a HUD. Reconnects with backoff and resumes the session.
 *
 * The page matchmakes (`POST /matchmake`, PROTOCOL.md section 16) and connects
 * where the answer says with its seat token; a resume goes back to the same
 * room, a fresh join matchmakes again: the room closed (4004), its server drains
 * (1001), resumes failed (its fleet member is gone) or the seat was refused. The
 * HUD counts these re-matchmakes.
 *
 * Query parameters: `?name=Ada` (display name), `?kind=duel` (room kind; default:
 * the server's), `?token=...` (join token, for servers with `--auth-secret`),
 * `?matchmake=0` (plain `/ws`, no matchmaking), `?delay=150` (interpolation
 * delay in ms), `?batch=2` (inputs per Input message).
 */

import { SUBPROTOCOL, WS_PATH, Session, listRooms, matchmake } from "./lib/index.js";

/** @typedef {import("./lib/index.js").Pos} Pos */

const params = new URLSearchParams(location.search);
const session = new Session({
  name: params.get("name") ?? null,
  interpolationDelayMs: Number(params.get("delay") ?? 100),
  sendEveryTicks: Number(params.get("batch") ?? 2),
});

const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById("world"));
const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
/** @param {string} id */
const hud = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** What the page shows and what an end-to-end test reads (`window.ticksyncDemo`). */
const demo = {
  session,
  /** @type {"connecting" | "connected" | "disconnected" | "stopped"} */
  status: "connecting",
  reconnects: 0,
  snapshotRate: 0,
  bytesPerSecond: 0,
  /** Remote players drawn in the last frame. */
  remoteDrawn: 0,
  /** The room and kind of the current seat (null with `?matchmake=0`). @type {string | null} */
  room: null,
  /** @type {string | null} */
  kind: null,
  /** The room as `GET /rooms` last listed it. @type {import("./lib/index.js").RoomListing | null} */
  listing: null,
  /** The WebSocket URL of the current (or last) connection. @type {string | null} */
  url: null,
};
/** @type {any} */ (window).ticksyncDemo = demo;

/**
 * Closes the socket as a network failure would look to the server (any code other
 * than 1000/1001 keeps the player for the resume grace), for tests and debugging.
 * @param {number} [code]  3000..=4999
 */
function dropConnection(code = 4100) {
  if (ws) ws.close(code, "dropped on purpose");
}
/**
 * Feeds `bytes` to the page as if the server had sent them (tests: a garbage
 * message must make the page reconnect and resume).
 * @param {number[]} bytes
 */
function injectMessage(bytes) {
  if (ws && ws.onmessage) ws.onmessage(new MessageEvent("message", { data: Uint8Array.from(bytes).buffer }));
}
Object.assign(demo, { dropConnection, injectMessage });

// ---- keyboard -------------------------------------------------------------

/** @type {Set<string>} */
const held = new Set();
const KEYS = {
  left: ["ArrowLeft", "KeyA"],
  right: ["ArrowRight", "KeyD"],
  up: ["ArrowUp", "KeyW"],
  down: ["ArrowDown", "KeyS"],
};
const ALL_KEYS = new Set(Object.values(KEYS).flat());
addEventListener("keydown", (e) => {
  if (!ALL_KEYS.has(e.code)) return;
  held.add(e.code);
  e.preventDefault();
});
addEventListener("keyup", (e) => {
  held.delete(e.code);
});
addEventListener("blur", () => held.clear());

/** @param {string[]} codes */
const any = (codes) => codes.some((c) => held.has(c));
/** The direction of the held keys; diagonals are (±127, ±127), which `step` scales to full speed. */
function currentDir() {
  /** @type {[number, number]} */
  const dir = [(any(KEYS.right) ? 127 : 0) - (any(KEYS.left) ? 127 : 0), (any(KEYS.down) ? 127 : 0) - (any(KEYS.up) ? 127 : 0)];
  return dir;
}

// ---- connection -------------------------------------------------------------

/**
 * The close code for a protocol problem this side detected. PROTOCOL.md asks for
 * 1002 (1003 for a text frame), but a browser may only send 1000 or 3000..=4999;
 * any code but 1000/1001 keeps the session resumable, which is what we want.
 */
const CLIENT_PROTOCOL_ERROR = 4400;

/** @type {WebSocket | null} */
let ws = null;
let attempt = 0;
let closingOurselves = false;
const useMatchmaker = params.get("matchmake") !== "0";
/** The seat the next connection takes (kept for resumes). @type {import("./lib/index.js").Seat | null} */
let seat = null;

/** Reconnects after a backoff with jitter: 250 ms, 500 ms, ... up to 5 s (or `atLeastMs`). */
function reconnectLater(atLeastMs = 0) {
  demo.status = "disconnected";
  const delay = Math.max(atLeastMs, Math.min(5000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2));
  attempt = Math.min(attempt + 1, 10);
  demo.reconnects++;
  setTimeout(connect, delay);
}

/** The URL to connect to: a seat's (matchmaking first if there is none), or plain `/ws`. */
async function target() {
  if (!useMatchmaker) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${WS_PATH}`;
  }
  if (!seat) {
    seat = await matchmake({ baseUrl: location.origin, kind: params.get("kind"), joinToken: params.get("token") });
    session.authToken = seat.token;
    demo.room = seat.room;
    demo.kind = seat.kind;
  }
  return seat.url;
}

async function connect() {
  demo.status = "connecting";
  // A session lost longer ago than its resume grace cannot come back: a new seat, not
  // a doomed resume.
  if (!session.resumable(performance.now()) && session.rematchmaking) seat = null;
  let url;
  try {
    url = await target();
  } catch (e) {
    console.warn("ticksync: matchmaking failed:", e);
    const retry = /** @type {any} */ (e).retryAfterMs;
    reconnectLater(typeof retry === "number" ? retry : 0);
    return;
  }
  demo.url = url;
  const sock = new WebSocket(url, SUBPROTOCOL);
  sock.binaryType = "arraybuffer";
  ws = sock;
  closingOurselves = false;
  sock.onopen = () => {
    if (sock.protocol !== SUBPROTOCOL) {
      closingOurselves = true;
      sock.close(CLIENT_PROTOCOL_ERROR, "subprotocol not selected");
      return;
    }
    sock.send(session.open(performance.now()));
  };
  sock.onmessage = (ev) => {
    if (!(ev.data instanceof ArrayBuffer)) {
      closingOurselves = true;
      sock.close(CLIENT_PROTOCOL_ERROR, "binary frames only");
      return;
    }
    const event = session.receive(new Uint8Array(ev.data), performance.now());
    if (event.type === "welcome") {
      demo.status = "connected";
      attempt = 0;
    } else if (event.type === "incompatible") {
      console.error("ticksync: the server's Welcome is unusable, not reconnecting:", event.detail);
      closingOurselves = true;
      sock.close(CLIENT_PROTOCOL_ERROR, "unusable Welcome");
    } else if (event.type === "protocolError") {
      console.warn("ticksync: undecodable message, reconnecting:", event.detail);
      closingOurselves = true;
      sock.close(CLIENT_PROTOCOL_ERROR, "undecodable message");
    } else if (event.type === "error") {
      console.warn(`ticksync: server error ${event.code}: ${event.message}`);
    }
    pump();
  };
  sock.onclose = (ev) => {
    if (ws !== sock) return;
    ws = null;
    // The session decides: resume where that can work; a fresh join where it cannot
    // (the member drains: 1001, the room closed: 4004, resumes failed: the member is
    // gone); stop when kicked or taken over.
    const policy = session.closed(ev.code, closingOurselves);
    if (policy === "stop") {
      demo.status = "stopped";
      return;
    }
    // A fresh join needs a fresh seat (the last one was used, refused or lost with its
    // room): matchmake again.
    if (policy === "fresh") seat = null;
    reconnectLater();
  };
}

/** Sends whatever the session has queued. */
function pump() {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  for (const bytes of session.takeOutgoing()) ws.send(bytes);
}

// The input clock: the session produces one input per server tick from the
// elapsed time, so calling it more often than the tick rate is harmless.
setInterval(() => {
  session.update(performance.now(), currentDir());
  pump();
}, 5);

// ---- rates --------------------------------------------------------------------

let lastSnapshots = 0;
let lastBytes = 0;
setInterval(() => {
  demo.snapshotRate = session.stats.snapshots - lastSnapshots;
  demo.bytesPerSecond = session.stats.bytesReceived - lastBytes;
  lastSnapshots = session.stats.snapshots;
  lastBytes = session.stats.bytesReceived;
}, 1000);

// The room's fill, from the public room list.
setInterval(async () => {
  if (!demo.room) return;
  try {
    demo.listing = (await listRooms({ baseUrl: location.origin })).find((r) => r.id === demo.room) ?? null;
  } catch {
    demo.listing = null;
  }
}, 2000);

// ---- rendering ------------------------------------------------------------------

function draw() {
  const now = performance.now();
  const w = session.welcome;
  const size = canvas.width;
  ctx.fillStyle = "#1b2230";
  ctx.fillRect(0, 0, size, size);
  if (w) {
    const span = Math.max(w.worldMaxX, w.worldMaxY, 1);
    const scale = (size - 20) / span;
    /** @param {Pos} p */
    const px = (p) => [10 + p.x * scale, 10 + p.y * scale];
    // Grid every 100 world units.
    ctx.strokeStyle = "#243045";
    ctx.lineWidth = 1;
    const step = 100 * w.fixedScale;
    for (let g = 0; g <= span; g += step) {
      ctx.beginPath();
      ctx.moveTo(10 + g * scale, 10);
      ctx.lineTo(10 + g * scale, 10 + w.worldMaxY * scale);
      ctx.moveTo(10, 10 + g * scale);
      ctx.lineTo(10 + w.worldMaxX * scale, 10 + g * scale);
      ctx.stroke();
    }
    ctx.strokeStyle = "#4c5d7a";
    ctx.strokeRect(10, 10, w.worldMaxX * scale, w.worldMaxY * scale);

    const remote = session.remotePositions(now);
    demo.remoteDrawn = remote.size;
    ctx.fillStyle = "#60a5fa";
    ctx.font = "10px system-ui, sans-serif";
    for (const [id, p] of remote) {
      const [x, y] = px(p);
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillText(String(id), x + 7, y + 3);
    }
    const own = session.ownPosition();
    if (own) {
      const [x, y] = px(own);
      if (w.viewRadius > 0) {
        ctx.strokeStyle = "#f59e0b55";
        ctx.beginPath();
        ctx.arc(x, y, w.viewRadius * scale, 0, Math.PI * 2);
        ctx.stroke();
      }
      const auth = session.authoritative;
      if (auth) {
        // Where the server last had us: a ring behind the predicted disc.
        const [ax, ay] = px(auth);
        ctx.strokeStyle = "#fde68a";
        ctx.beginPath();
        ctx.arc(ax, ay, 8, 0, Math.PI * 2);
        ctx.stroke();
      }
      ctx.fillStyle = "#f97316";
      ctx.beginPath();
      ctx.arc(x, y, 7, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillText("you", x + 9, y + 3);
    }
  }
  updateHud(w);
  requestAnimationFrame(draw);
}

/** @param {import("./lib/index.js").Welcome | null} w */
function updateHud(w) {
  const st = session.stats;
  const status = hud("hud-status");
  status.textContent = demo.status;
  status.className = demo.status;
  hud("hud-player").textContent = w ? `#${w.playerId}${w.resumed ? " (resumed)" : ""}` : "–";
  hud("hud-room").textContent = demo.room ? `${demo.kind} ${demo.room}` : "(plain /ws)";
  const l = demo.listing;
  hud("hud-room-players").textContent = l ? `${l.players} / ${l.capacity}${l.reserved ? ` (+${l.reserved} on their way)` : ""}` : "–";
  hud("hud-rtt").textContent = st.rttMs === null ? "–" : `${st.rttMs.toFixed(1)} ms`;
  hud("hud-tick").textContent = st.serverTick === null ? "–" : String(st.serverTick);
  hud("hud-snap-rate").textContent = String(demo.snapshotRate);
  hud("hud-bytes").textContent = `${(demo.bytesPerSecond / 1024).toFixed(1)} KiB/s`;
  hud("hud-players").textContent = String(session.world.size);
  hud("hud-corrections").textContent = String(session.predictor.corrections);
  const own = session.ownPosition();
  const scale = w ? w.fixedScale : 16;
  hud("hud-pos").textContent = own ? `${(own.x / scale).toFixed(2)}, ${(own.y / scale).toFixed(2)}` : "–";
  hud("hud-reconnects").textContent = String(demo.reconnects);
  const rm = st.rematchmakeMs;
  hud("hud-rematchmades").textContent = `${st.rematchmades}${rm === null ? "" : ` (last ${rm.toFixed(0)} ms)`}`;
}

connect();
requestAnimationFrame(draw);
