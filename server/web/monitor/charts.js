// @ts-check
/**
 * Small live line charts for the monitor page, drawn on a canvas by hand (no
 * library, no build step): a time axis over the last minutes, a y axis from 0
 * to a round maximum, one line per series and a legend with each series'
 * latest value.
 */

/** Colours for series, in order; reasons keep their colour by index. */
export const PALETTE = [
  "#2563eb", "#e4572e", "#17a398", "#f2a541", "#8e44ad", "#c0392b", "#27ae60", "#d35400",
  "#2c3e50", "#e84393", "#00a8e8", "#6c5ce7", "#b8860b", "#16a085", "#7f8c8d", "#ff6f61",
  "#3d9970",
];

/**
 * The smallest "round" number (1, 2 or 5 times a power of ten) at or above `v`.
 * @param {number} v
 */
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * @typedef {{ name: string, color: string, values: number[] }} Series
 */

export class LineChart {
  /**
   * @param {HTMLElement} figure a figure holding a canvas and a `.legend`
   * @param {{ format: (v: number) => string, windowMs: number, empty?: string }} opts
   */
  constructor(figure, opts) {
    this.figure = figure;
    this.canvas = /** @type {HTMLCanvasElement} */ (figure.querySelector("canvas"));
    this.legend = /** @type {HTMLElement} */ (figure.querySelector(".legend"));
    this.opts = opts;
  }

  /**
   * Draws `series` over `times` (unix ms, one per value, oldest first).
   * @param {number[]} times
   * @param {Series[]} series
   */
  draw(times, series) {
    const dpr = window.devicePixelRatio || 1;
    const w = this.canvas.clientWidth;
    const h = this.canvas.clientHeight;
    if (this.canvas.width !== Math.round(w * dpr) || this.canvas.height !== Math.round(h * dpr)) {
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
    }
    const ctx = /** @type {CanvasRenderingContext2D} */ (this.canvas.getContext("2d"));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const style = getComputedStyle(document.body);
    const muted = style.getPropertyValue("--muted") || "#888";
    const line = style.getPropertyValue("--line") || "#ccc";

    const end = times.length ? times[times.length - 1] : Date.now();
    const start = end - this.opts.windowMs;
    let max = 0;
    for (const s of series) for (const v of s.values) if (v > max) max = v;
    const top = niceMax(max);
    const left = 46;
    const plotW = Math.max(1, w - left - 4);
    const plotH = Math.max(1, h - 16);
    const x = (/** @type {number} */ t) => left + ((t - start) / this.opts.windowMs) * plotW;
    const y = (/** @type {number} */ v) => 4 + plotH - (v / top) * plotH;

    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    ctx.lineWidth = 1;
    for (const f of [0, 0.5, 1]) {
      const gy = Math.round(y(top * f)) + 0.5;
      ctx.strokeStyle = line;
      ctx.beginPath();
      ctx.moveTo(left, gy);
      ctx.lineTo(left + plotW, gy);
      ctx.stroke();
      ctx.fillStyle = muted;
      ctx.fillText(this.opts.format(top * f), left - 4, gy);
    }
    ctx.textAlign = "left";
    ctx.fillText(`-${Math.round(this.opts.windowMs / 60000)} min`, left, h - 6);
    ctx.textAlign = "right";
    ctx.fillText("now", left + plotW, h - 6);

    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    for (const s of series) {
      ctx.strokeStyle = s.color;
      ctx.beginPath();
      let started = false;
      s.values.forEach((v, i) => {
        if (times[i] < start) return;
        if (started) ctx.lineTo(x(times[i]), y(v));
        else ctx.moveTo(x(times[i]), y(v));
        started = true;
      });
      ctx.stroke();
    }

    this.legend.replaceChildren();
    if (series.length === 0) {
      this.legend.textContent = this.opts.empty ?? "";
    }
    for (const s of series) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      const value = document.createElement("b");
      value.textContent = s.values.length ? this.opts.format(s.values[s.values.length - 1]) : "–";
      item.append(swatch, s.name, value);
      this.legend.append(item);
    }
    this.figure.dataset.points = String(times.length);
    this.figure.dataset.series = series.map((s) => s.name).join(",");
  }
}
