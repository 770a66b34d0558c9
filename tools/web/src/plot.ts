/** One point of a loss curve. */
export interface LossPoint {
  step: number;
  value: number;
}

/** Draws loss curves on a canvas; redrawn whole on every new point (a few hundred at most). */
export function drawLossPlot(canvas: HTMLCanvasElement, series: Record<string, LossPoint[]>, colours: Record<string, string>): void {
  const ctx = canvas.getContext('2d')!;
  const { width, height } = canvas;
  const pad = { left: 48, right: 12, top: 12, bottom: 28 };
  ctx.clearRect(0, 0, width, height);
  const all = Object.values(series).flat();
  if (all.length === 0) return;
  const maxStep = Math.max(1, ...all.map((p) => p.step));
  let lo = Math.min(...all.map((p) => p.value));
  let hi = Math.max(...all.map((p) => p.value));
  if (hi - lo < 1e-6) {
    lo -= 0.5;
    hi += 0.5;
  }
  const x = (s: number) => pad.left + ((s - 1) / Math.max(1, maxStep - 1)) * (width - pad.left - pad.right);
  const y = (v: number) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = '#999';
  ctx.fillStyle = '#444';
  ctx.font = '11px system-ui, sans-serif';
  ctx.beginPath();
  ctx.moveTo(pad.left, pad.top);
  ctx.lineTo(pad.left, height - pad.bottom);
  ctx.lineTo(width - pad.right, height - pad.bottom);
  ctx.stroke();
  ctx.fillText(hi.toFixed(3), 4, pad.top + 8);
  ctx.fillText(lo.toFixed(3), 4, height - pad.bottom);
  ctx.fillText('step', width - pad.right - 24, height - 8);
  ctx.fillText(String(maxStep), x(maxStep) - 8, height - pad.bottom + 14);
  let legendX = pad.left + 8;
  for (const [name, points] of Object.entries(series)) {
    if (points.length === 0) continue;
    ctx.strokeStyle = colours[name] ?? '#000';
    ctx.lineWidth = 2;
    ctx.beginPath();
    points.forEach((p, i) => (i === 0 ? ctx.moveTo(x(p.step), y(p.value)) : ctx.lineTo(x(p.step), y(p.value))));
    ctx.stroke();
    for (const p of points) ctx.fillRect(x(p.step) - 2, y(p.value) - 2, 4, 4);
    ctx.fillStyle = colours[name] ?? '#000';
    ctx.fillText(name, legendX, pad.top + 10);
    legendX += 48;
    ctx.fillStyle = '#444';
  }
}
