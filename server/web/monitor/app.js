// @ts-check
/**
 * The Ticksync monitor page: polls `GET /monitor/state` once a second (only the
 * history samples it has not seen yet), draws the server's charts and the rooms
 * table, and the players of the room selected (`GET /rooms/{id}`). Actions:
 * close a room, kick a player, drain the server.
 *
 * The admin token comes from the login form or from `#token=...` in the URL
 * (a fragment never reaches a server or a log), stays in this tab's session
 * storage and goes out only as `Authorization: Bearer`, to this origin.
 */

import { LineChart, PALETTE } from "./charts.js";

const TOKEN_KEY = "ticksync-admin-token";
const REFRESH_MS = 1000;
const WINDOW_MS = 5 * 60 * 1000;
const MAX_SAMPLES = 600;

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Everything the page knows, readable from the console (and by the browser
 * test) as `window.ticksyncMonitor`.
 * @type {{ state: any, samples: any[], lastSeq: number, selected: string | null,
 *          detail: any, refreshes: number, detailRefreshes: number,
 *          error: string | null, actions: string[] }}
 */
const monitor = {
  state: null,
  samples: [],
  lastSeq: 0,
  selected: null,
  detail: null,
  refreshes: 0,
  detailRefreshes: 0,
  error: null,
  actions: [],
};
/** @type {any} */ (window).ticksyncMonitor = monitor;

class Unauthorized extends Error {}

function takeTokenFromUrl() {
  const m = location.hash.match(/(?:^#|&)token=([^&]+)/);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(null, "", location.pathname + location.search);
}

/**
 * One request to the admin API; JSON back.
 * @param {string} path
 * @param {string} [method]
 */
async function api(path, method = "GET") {
  const res = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY) ?? ""}` },
    cache: "no-store",
  });
  if (res.status === 401) throw new Unauthorized("the server refused this token");
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(body.error ?? `HTTP ${res.status}`), { status: res.status });
  return body;
}

// ---- formatting ----------------------------------------------------------

/** @param {number} us */
const fmtUs = (us) => (us >= 1000 ? `${(us / 1000).toFixed(us >= 10000 ? 0 : 1)} ms` : `${us} µs`);
/** @param {number} b */
function fmtBytes(b) {
  if (b >= 1e6) return `${(b / 1e6).toFixed(1)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} kB`;
  return `${Math.round(b)} B`;
}
/** @param {number} s */
function fmtAge(s) {
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}
/** @param {number} v */
const fmtRate = (v) => (v >= 10 || v === 0 ? String(Math.round(v)) : v.toFixed(1));
/** A level: whole from 10 up, else at most one decimal (6, 0.5, 1.3). @param {number} v */
const fmtLevel = (v) => (v >= 10 ? String(Math.round(v)) : String(+v.toFixed(1)));

/**
 * A table cell.
 * @param {string | Node} content
 * @param {string} [cls]
 */
function cell(content, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.append(content);
  return td;
}

/**
 * @param {string} label
 * @param {() => void} onClick
 * @param {string} [cls]
 */
function button(label, onClick, cls = "danger") {
  const b = document.createElement("button");
  b.type = "button";
  b.className = cls;
  b.textContent = label;
  b.addEventListener("click", (e) => {
    e.stopPropagation();
    onClick();
  });
  return b;
}

// ---- charts --------------------------------------------------------------

/** @param {string} id @param {(v: number) => string} format @param {string} [empty] */
const chart = (id, format, empty) => new LineChart($(id), { format, windowMs: WINDOW_MS, empty });
const charts = {
  // One decimal below 10, so a small axis (0, 0.5, 1) does not read 0, 1, 1.
  threads: chart("chart-threads", (v) => `${fmtLevel(v)}%`),
  load: chart("chart-load", fmtLevel),
  traffic: chart("chart-traffic", (v) => `${fmtBytes(v)}/s`),
  disconnects: chart("chart-disconnects", (v) => `${fmtRate(v)}/s`, "none in the last minutes"),
  refusals: chart("chart-refusals", (v) => `${fmtRate(v)}/s`, "none in the last minutes"),
  missed: chart("chart-missed", (v) => `${fmtRate(v)}/s`),
};

/**
 * One series per reason that happened in the window, as a rate per second.
 * @param {any[]} samples
 * @param {string[]} names
 * @param {string} field
 */
function reasonSeries(samples, names, field) {
  return names
    .map((name, i) => ({
      name,
      color: PALETTE[i % PALETTE.length],
      values: samples.map((s) => (s[field][i] * 1000) / Math.max(1, s.dt_ms)),
    }))
    .filter((s) => s.values.some((v) => v > 0));
}

function drawCharts() {
  const s = monitor.samples;
  const reasons = monitor.state?.reasons ?? { disconnects: [], refusals: [] };
  const times = s.map((x) => x.t_ms);
  /** @param {(x: any) => number} f */
  const perSec = (f) => s.map((x) => (f(x) * 1000) / Math.max(1, x.dt_ms));
  const threads = s.length ? s[s.length - 1].busy_permille.length : 0;
  charts.threads.draw(
    times,
    Array.from({ length: threads }, (_, i) => ({
      name: `thread ${i}`,
      color: PALETTE[i % PALETTE.length],
      values: s.map((x) => (x.busy_permille[i] ?? 0) / 10),
    })),
  );
  charts.load.draw(times, [
    { name: "connections", color: PALETTE[0], values: s.map((x) => x.connections) },
    { name: "players", color: PALETTE[1], values: s.map((x) => x.players) },
    { name: "rooms", color: PALETTE[2], values: s.map((x) => x.rooms) },
  ]);
  charts.traffic.draw(times, [
    { name: "out", color: PALETTE[0], values: perSec((x) => x.bytes_sent) },
    { name: "in", color: PALETTE[1], values: perSec((x) => x.bytes_received) },
  ]);
  charts.disconnects.draw(times, reasonSeries(s, reasons.disconnects, "disconnects"));
  charts.refusals.draw(times, reasonSeries(s, reasons.refusals, "refusals"));
  charts.missed.draw(times, [{ name: "missed", color: PALETTE[5], values: perSec((x) => x.ticks_missed) }]);
}

// ---- rooms and players ---------------------------------------------------

function drawSummary() {
  const st = monitor.state;
  const badge = $("status");
  badge.textContent = st.status;
  badge.className = `badge ${st.status}`;
  const threads = st.tick_threads
    .map((/** @type {any} */ t) => `${Math.round(t.busy_permille / 10)}%`)
    .join(" ");
  $("summary").textContent =
    `v${st.version} · up ${fmtAge(st.uptime_secs)} · ${st.connections} connections · ` +
    `${st.players}/${st.limits.max_players} players · ${st.rooms_open} rooms · tick threads ${threads}`;
  /** @type {HTMLButtonElement} */ ($("drain")).disabled = st.status === "draining";
}

function drawRooms() {
  const rooms = monitor.state.rooms;
  const body = /** @type {HTMLElement} */ ($("rooms").querySelector("tbody"));
  body.replaceChildren();
  for (const r of rooms) {
    const tr = document.createElement("tr");
    tr.dataset.room = r.id;
    tr.dataset.players = String(r.players);
    if (r.id === monitor.selected) tr.classList.add("selected");
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.min(100, (100 * (r.players + r.reserved)) / Math.max(1, r.capacity))}%`;
    bar.append(fill);
    const players = document.createElement("span");
    players.className = "players";
    players.textContent = `${r.players}/${r.capacity}` + (r.reserved ? ` (+${r.reserved} reserved)` : "");
    const id = document.createElement("code");
    id.textContent = r.id;
    const who = document.createElement("span");
    who.append(players, bar);
    tr.append(
      cell(id),
      cell(r.kind),
      cell(who),
      cell(`${r.tick_rate} Hz`, "num"),
      cell(fmtUs(r.stats.tick_p50_us), "num"),
      cell(fmtUs(r.stats.tick_p99_us), "num"),
      cell(String(r.stats.missed_ticks), "num"),
      cell(`${fmtBytes(r.stats.bytes_per_sec)}/s`, "num"),
      cell(String(r.stats.thread), "num"),
      cell(fmtAge(r.age_secs), "num"),
      cell(button("Close", () => closeRoom(r.id, r.players))),
    );
    tr.addEventListener("click", () => select(r.id));
    body.append(tr);
  }
  $("room-count").textContent = `(${rooms.length})`;
  $("no-rooms").hidden = rooms.length > 0;
}

function drawDetail() {
  const d = monitor.detail;
  $("detail").hidden = monitor.selected === null;
  if (monitor.selected === null) return;
  $("detail-id").textContent = monitor.selected;
  const body = /** @type {HTMLElement} */ ($("players").querySelector("tbody"));
  body.replaceChildren();
  if (!d || d.id !== monitor.selected) {
    $("detail-kind").textContent = "";
    $("detail-note").textContent = "loading…";
    return;
  }
  $("detail-kind").textContent = `${d.kind} · tick ${d.tick} · ${d.players.length}/${d.capacity} players`;
  $("detail-note").textContent = d.players.length ? "" : "No player in this room.";
  for (const p of d.players) {
    const tr = document.createElement("tr");
    tr.dataset.player = String(p.id);
    const status = document.createElement("span");
    status.textContent = p.connected ? "connected" : "in resume grace";
    if (!p.connected) status.className = "grace";
    tr.append(
      cell(String(p.id), "num"),
      cell(p.name ?? "—"),
      cell(status),
      cell(p.rtt_us == null ? "—" : `${(p.rtt_us / 1000).toFixed(1)} ms`, "num rtt"),
      cell(String(p.input_queue), "num"),
      cell(String(p.last_input), "num"),
      cell(String(p.snapshots_skipped), "num"),
      cell(button("Kick", () => kick(d.id, p.id, p.name))),
    );
    body.append(tr);
  }
}

/** @param {string | null} id */
function select(id) {
  monitor.selected = id;
  monitor.detail = null;
  drawRooms();
  drawDetail();
  if (id) refreshDetail();
}

// ---- actions -------------------------------------------------------------

/**
 * Runs an action after the operator confirmed it, then refreshes.
 * @param {string} question
 * @param {string} path
 * @param {string} done what the action log says afterwards
 */
async function act(question, path, done) {
  if (!confirm(question)) return;
  try {
    await api(path, "POST");
    monitor.actions.push(done);
  } catch (e) {
    return showError(e);
  }
  await refresh();
}

/** @param {string} id @param {number} players */
async function closeRoom(id, players) {
  await act(
    `Close room ${id}? Its ${players} player(s) are disconnected with close code 4004 and must matchmake again.`,
    `/rooms/${id}/close`,
    `closed ${id}`,
  );
  if (monitor.selected === id) select(null);
}

/** @param {string} room @param {number} player @param {string | null} name */
function kick(room, player, name) {
  return act(
    `Kick player ${player}${name ? ` (${name})` : ""}? It is disconnected with close code 4005 and may not resume.`,
    `/rooms/${room}/kick/${player}`,
    `kicked ${player} from ${room}`,
  );
}

function drain() {
  return act(
    "Drain the server? It stops accepting players, sends every player close 1001 (they may reconnect elsewhere) and then exits.",
    "/drain",
    "drain",
  );
}

// ---- polling -------------------------------------------------------------

/** @param {unknown} e */
function showError(e) {
  if (e instanceof Unauthorized) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(e.message);
    return;
  }
  monitor.error = e instanceof Error ? e.message : String(e);
  $("error").textContent = monitor.error;
}

async function refresh() {
  try {
    const st = await api(`/monitor/state?since=${monitor.lastSeq}`);
    if (monitor.state && st.uptime_secs < monitor.state.uptime_secs) {
      // Another server process answers now: its history starts anew.
      monitor.samples = [];
      monitor.lastSeq = 0;
    }
    monitor.state = st;
    monitor.samples.push(...st.history);
    monitor.samples.splice(0, Math.max(0, monitor.samples.length - MAX_SAMPLES));
    if (st.history.length) monitor.lastSeq = st.history[st.history.length - 1].seq;
    monitor.error = null;
    $("error").textContent = "";
    $("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
    drawSummary();
    drawRooms();
    drawCharts();
    monitor.refreshes += 1;
    if (monitor.selected) await refreshDetail();
  } catch (e) {
    if (!(e instanceof Unauthorized)) {
      $("status").textContent = "offline";
      $("status").className = "badge offline";
    }
    showError(e);
  }
}

async function refreshDetail() {
  const id = monitor.selected;
  if (!id) return;
  try {
    const d = await api(`/rooms/${id}`);
    if (monitor.selected !== id) return;
    monitor.detail = d;
    monitor.detailRefreshes += 1;
  } catch (e) {
    if (/** @type {any} */ (e).status === 404) {
      if (monitor.selected === id) select(null);
      return;
    }
    return showError(e);
  }
  drawDetail();
}

/** @type {ReturnType<typeof setTimeout> | undefined} */
let timer;
async function loop() {
  await refresh();
  if (sessionStorage.getItem(TOKEN_KEY)) timer = setTimeout(loop, REFRESH_MS);
}

/** @param {string} [why] */
function showLogin(why) {
  clearTimeout(timer);
  $("main").hidden = true;
  $("drain").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = why ?? "";
  $("status").textContent = "signed out";
  $("status").className = "badge";
}

function start() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("drain").hidden = false;
  $("forget").hidden = false;
  clearTimeout(timer);
  loop();
}

$("login-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, /** @type {HTMLInputElement} */ ($("token")).value.trim());
  start();
});
$("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin();
});
$("drain").addEventListener("click", drain);
$("detail-hide").addEventListener("click", () => select(null));
$("detail-close").addEventListener("click", () => {
  const d = monitor.detail;
  if (monitor.selected) closeRoom(monitor.selected, d ? d.players.length : 0);
});
window.addEventListener("resize", drawCharts);

takeTokenFromUrl();
if (sessionStorage.getItem(TOKEN_KEY)) start();
else showLogin();
