// Line charts on <canvas>: the live rate chart (one sample a second) and the last hour from /api/v1/history.

export const COLORS = ["#0b5cad", "#d9480f", "#2b8a3e", "#862e9c", "#c92a2a", "#e67700", "#0c8599", "#5c940d"];

/**
 * Draw `series` ([{color, values: [number]}]) on `canvas`, x evenly spaced over `slots` positions
 * (values right-aligned), y from 0 to the largest value; `xLabels` [left, right] are written under the axis;
 * `fit`: the canvas's pixel size follows the size it is shown at.
 */
export function drawLines(canvas, series, { slots, xLabels = null, fit = false } = {}) {
  if (fit && canvas.clientWidth > 0) {  // one canvas pixel per CSS pixel: labels stay readable on a phone
    const ratio = window.devicePixelRatio || 1;
    const [w, hgt] = [Math.round(canvas.clientWidth * ratio), Math.round(canvas.clientHeight * ratio)];
    if (canvas.width !== w || canvas.height !== hgt) [canvas.width, canvas.height] = [w, hgt];
  }
  const ctx = canvas.getContext("2d");
  const width = canvas.width, height = canvas.height, pad = 28, bottom = xLabels ? 16 : 0;
  const plot = height - pad - bottom;
  ctx.clearRect(0, 0, width, height);
  let max = 1;
  for (const s of series) for (const v of s.values) if (Number.isFinite(v)) max = Math.max(max, v);
  const n = slots || Math.max(2, ...series.map((s) => s.values.length));
  ctx.strokeStyle = "#d0d6dc";
  ctx.fillStyle = "#667";
  ctx.font = "11px sans-serif";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = pad / 2 + plot * i / 4;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(width, y); ctx.stroke();
    ctx.fillText((max * (4 - i) / 4).toFixed(max < 10 ? 1 : 0), 2, y + 4);
  }
  if (xLabels) {
    ctx.fillText(xLabels[0], pad, height - 3);
    const right = ctx.measureText(xLabels[1]).width;
    ctx.fillText(xLabels[1], width - right - 2, height - 3);
  }
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = pad + (width - pad) * (i + n - s.values.length) / (n - 1);
      const y = pad / 2 + plot * (1 - (Number.isFinite(v) ? v : 0) / max);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

/** A stable color per name, in the order names are first seen. */
export class Palette {
  constructor() {
    this.colors = new Map();
  }

  of(name) {
    if (!this.colors.has(name)) this.colors.set(name, COLORS[this.colors.size % COLORS.length]);
    return this.colors.get(name);
  }
}
