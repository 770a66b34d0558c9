import { mkdirSync } from 'node:fs';
import { writeFileAtomic } from './checkpoint.js';
import { join } from 'node:path';
import sharp from 'sharp';
import { EXPRESSIONS, type EvaluationResult } from '@dfd/core';

/** What a finished stage-2 run reports (report.json). */
export interface RunReport {
  stage: string;
  variant?: string;
  source: string;
  /** How the reported weights were chosen: `last` epoch or best on the source's val split. */
  selection: 'last' | 'source-val';
  epochsDone: number;
  status: string;
  results: EvaluationResult[];
  /** Mean accuracy over targets. */
  mean: number;
  /** Accuracy on the source's own test split, when it has one. */
  sourceTest?: EvaluationResult;
  /** Zoo classifiers as they ship, on the same targets (`--baseline`): what a user would pick instead. */
  baselines?: Array<{ id: string; results: EvaluationResult[]; mean: number; sourceTest?: EvaluationResult }>;
  /** Image files left out with `--bad-images skip` (empty, truncated, not an image), listed in `list` in the run folder. */
  skippedImages?: { count: number; list: string };
  history: Array<Record<string, number>>;
  config: Record<string, unknown>;
  seconds: number;
}

const pct = (v: number) => (Number.isFinite(v) ? (100 * v).toFixed(2) : 'n/a');

/** A Markdown table in the layout of the paper's Table 2: one row per run, one column per target, then the mean. */
export function resultsTable(rows: Array<{ label?: string; source: string; results: EvaluationResult[]; mean: number }>): string {
  const targets = [...new Set(rows.flatMap((r) => r.results.map((x) => x.target)))];
  const hasLabel = rows.some((r) => r.label);
  const head = [...(hasLabel ? ['method'] : []), 'source', ...targets, 'mean'];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < (hasLabel ? 2 : 1) ? '---' : '---:')).join('|')}|`];
  for (const r of rows) {
    const cells = targets.map((t) => pct(r.results.find((x) => x.target === t)?.accuracy ?? Number.NaN));
    lines.push(`| ${[...(hasLabel ? [r.label ?? ''] : []), r.source, ...cells, pct(r.mean)].join(' | ')} |`);
  }
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * "Nice" axis ticks for [lo, hi]: a step of 1, 2, 2.5 or 5 x 10^k giving about `count` intervals,
 * and the tick values from a multiple of the step at or below `lo` to one at or above `hi`. The
 * range is widened first to a sane minimum span (10 % of the largest magnitude, at least 0.01),
 * so a flat curve is not zoomed to its rounding noise; a range that starts at or above 0 never
 * gets negative ticks.
 */
export function niceTicks(lo: number, hi: number, count = 4): { ticks: number[]; step: number; decimals: number } {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) [lo, hi] = [0, 1];
  if (lo > hi) [lo, hi] = [hi, lo];
  const minSpan = Math.max(0.1 * Math.max(Math.abs(lo), Math.abs(hi)), 0.01);
  if (hi - lo < minSpan) {
    const nonNegative = lo >= 0;
    const mid = (lo + hi) / 2;
    [lo, hi] = [mid - minSpan / 2, mid + minSpan / 2];
    if (nonNegative && lo < 0) [lo, hi] = [0, minSpan];
  }
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((v) => v >= raw - 1e-12)!;
  let t0 = Math.floor(lo / step + 1e-9) * step;
  const t1 = Math.ceil(hi / step - 1e-9) * step;
  if (t0 < 0 && lo >= -1e-12) t0 = 0;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (step / mag === 2.5 ? 1 : 0));
  const ticks: number[] = [];
  for (let v = t0; v <= t1 + step * 1e-6; v += step) ticks.push(Number(v.toFixed(decimals + 2)));
  return { ticks, step, decimals };
}

/**
 * An SVG line chart of `series` over epochs (pure; no DOM). The x axis runs from epoch 1 to the
 * longest series (one epoch: a single tick); y ticks are {@link niceTicks}; a series equal to an
 * earlier one (e.g. `cls` = `loss` for `base`, which has no MI term) is drawn dashed on top and
 * named "(= loss)" in the legend, so neither hides the other.
 */
export function lineChartSvg(title: string, series: Array<{ name: string; values: number[] }>, yLabel = ''): string {
  const W = 560;
  const H = 320;
  const m = { l: 56, r: 130, t: 32, b: 40 };
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  const { ticks, decimals } = niceTicks(all.length ? Math.min(...all) : 0, all.length ? Math.max(...all) : 1);
  const y0 = ticks[0]!;
  const y1 = ticks[ticks.length - 1]!;
  const n = Math.max(1, ...series.map((s) => s.values.length));
  const x = (i: number) => (n === 1 ? (m.l + W - m.r) / 2 : m.l + ((W - m.l - m.r) * i) / (n - 1));
  const y = (v: number) => m.t + ((H - m.t - m.b) * (y1 - v)) / (y1 - y0 || 1);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`];
  for (const v of ticks) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`, `<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toFixed(decimals)}</text>`);
  }
  const every = n <= 20 ? 1 : Math.ceil(n / 10);
  for (let i = 0; i < n; i++) if (i % every === 0 || i === n - 1) parts.push(`<text x="${x(i).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${i + 1}</text>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">epoch</text>`, `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text>`);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i] || (Number.isNaN(v) && Number.isNaN(b[i]!)));
  series.forEach((s, k) => {
    const c = colours[k % colours.length]!;
    const twin = series.slice(0, k).find((e) => same(e.values, s.values));
    const dash = twin ? ' stroke-dasharray="6 4"' : '';
    const pts = s.values.map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null)).filter(Boolean);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="${twin ? 2 : 3}"${dash} points="${pts.join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${p!.split(',')[0]}" cy="${p!.split(',')[1]}" r="${twin ? 2.5 : 3.5}" fill="${c}"/>`);
    parts.push(
      `<line x1="${W - m.r + 10}" x2="${W - m.r + 24}" y1="${m.t + k * 18 + 1}" y2="${m.t + k * 18 + 1}" stroke="${c}" stroke-width="3"${dash}/>`,
      `<text x="${W - m.r + 28}" y="${m.t + k * 18 + 5}">${esc(s.name)}${twin ? ` (= ${esc(twin.name)})` : ''}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/**
 * An SVG heat map of a confusion matrix: rows are the true class ("true" axis, left), columns the
 * predicted class ("predicted" axis, top, labels at 45 degrees so long names do not overlap).
 * Each cell shows its count and its share of the row (the true class), and is shaded by that
 * share, so rare classes read as clearly as common ones.
 */
export function confusionSvg(result: EvaluationResult, classNames: readonly string[] = EXPRESSIONS): string {
  const k = result.confusion.length;
  const cell = 48;
  const names = Array.from({ length: k }, (_, i) => classNames[i] ?? String(i));
  const longest = Math.max(1, ...names.map((s) => s.length));
  const left = 44 + Math.ceil(longest * 6.5);
  const top = 66 + Math.ceil(longest * 6.5 * Math.SQRT1_2);
  const W = left + k * cell + Math.max(24, Math.ceil(longest * 6.5 * Math.SQRT1_2));
  const H = top + k * cell + 20;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${esc(result.target)}: ${pct(result.accuracy)}% (n=${result.count})</text>`,
    `<text x="${W / 2}" y="34" text-anchor="middle" font-size="10" fill="#555">count and share of the true class (row); shading: the share</text>`,
  ];
  result.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${esc(names[i]!)}</text>`);
    row.forEach((v, j) => {
      const f = total > 0 ? v / total : 0;
      const shade = Math.round(255 - 200 * f);
      const cx = left + j * cell + cell / 2;
      const cy = top + i * cell + cell / 2;
      parts.push(
        `<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#999"/>`,
        `<text x="${cx}" y="${cy - 1}" text-anchor="middle"${f > 0.6 ? ' fill="white"' : ''}>${v}</text>`,
        `<text x="${cx}" y="${cy + 12}" text-anchor="middle" font-size="9"${f > 0.6 ? ' fill="white"' : ' fill="#444"'}>${total > 0 ? `${Math.round(100 * f)}%` : '-'}</text>`,
      );
    });
  });
  for (let j = 0; j < k; j++) {
    const cx = left + j * cell + cell / 2;
    parts.push(`<text x="${cx}" y="${top - 6}" text-anchor="start" transform="rotate(-45 ${cx} ${top - 6})">${esc(names[j]!)}</text>`);
  }
  parts.push(
    `<text x="${left + (k * cell) / 2}" y="50" text-anchor="middle" font-weight="bold">predicted</text>`,
    `<text x="14" y="${top + (k * cell) / 2}" transform="rotate(-90 14 ${top + (k * cell) / 2})" text-anchor="middle" font-weight="bold">true</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** temp + fsync + rename (the checkpoint store's helper): a full disk leaves the previous file and no temp file. */
const writeAtomic = writeFileAtomic;

async function svgAndPng(dir: string, base: string, svg: string): Promise<string[]> {
  writeAtomic(join(dir, `${base}.svg`), svg);
  const png = await sharp(Buffer.from(svg)).png().toBuffer();
  writeAtomic(join(dir, `${base}.png`), png);
  return [`${base}.svg`, `${base}.png`];
}

/** Write report.json, report.md and the SVG/PNG plots (training curves, confusion matrices) into `dir`. */
export async function writeRunReport(dir: string, report: RunReport): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const files = ['report.json', 'report.md'];
  writeAtomic(join(dir, 'report.json'), JSON.stringify(report, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2) + '\n');
  const h = report.history;
  const plots: string[] = [];
  if (h.length) {
    const lossSeries = ['loss', 'cls', 'mi'].filter((k) => h.some((r) => r[k] !== undefined)).map((k) => ({ name: k, values: h.map((r) => r[k] ?? Number.NaN) }));
    plots.push(...(await svgAndPng(dir, 'curves-loss', lineChartSvg('training loss', lossSeries, 'loss'))));
    const accSeries = ['accuracy', 'val_accuracy'].filter((k) => h.some((r) => r[k] !== undefined)).map((k) => ({ name: k, values: h.map((r) => r[k] ?? Number.NaN) }));
    if (accSeries.length) plots.push(...(await svgAndPng(dir, 'curves-accuracy', lineChartSvg('training accuracy (source)', accSeries, 'accuracy'))));
  }
  for (const r of report.results) plots.push(...(await svgAndPng(dir, `confusion-${r.target.replace(/[^a-zA-Z0-9_-]+/g, '_')}`, confusionSvg(r))));
  const md = [
    `# ${report.stage === 'dfd' ? `DFD-Net (${report.variant})` : report.stage} trained on ${report.source}`,
    '',
    `Status: ${report.status} after ${report.epochsDone} epoch(s), ${report.seconds.toFixed(0)} s. Reported weights: ${report.selection === 'last' ? 'last epoch' : 'best epoch on the source validation split'} (targets are never used for selection).`,
    '',
    '## Accuracy (%) on the targets',
    '',
    report.baselines?.length
      ? resultsTable([
          { label: `dfd ${report.variant ?? report.stage}`, source: report.source, results: report.results, mean: report.mean },
          ...report.baselines.map((b) => ({ label: `${b.id} (off the shelf)`, source: '-', results: b.results, mean: b.mean })),
        ])
      : resultsTable([{ source: report.source, results: report.results, mean: report.mean }]),
    '',
    // Which split: a target's test split when it has one, else all its samples (docs/training.md).
    ...(report.results.length ? [`Images evaluated per target (its test split, else all of it): ${report.results.map((r) => `${r.target} n=${r.count}`).join(', ')}.`, ''] : []),
    ...(report.sourceTest ? [`Source test split: ${pct(report.sourceTest.accuracy)}% (n=${report.sourceTest.count}).`, ''] : []),
    ...(report.baselines ?? []).filter((b) => b.sourceTest).map((b) => `Source test split, ${b.id}: ${pct(b.sourceTest!.accuracy)}%.`),
    ...(report.baselines?.some((b) => b.sourceTest) ? [''] : []),
    '## Per-class accuracy (%)',
    '',
    `| target | ${EXPRESSIONS.join(' | ')} |`,
    `|---|${EXPRESSIONS.map(() => '---:').join('|')}|`,
    ...report.results.map((r) => `| ${r.target} | ${r.perClassAccuracy.map(pct).join(' | ')} |`),
    '',
    '## Training curves and confusion matrices',
    '',
    ...plots.filter((p) => p.endsWith('.png')).map((p) => `![${p}](${p})`),
    '',
  ];
  writeAtomic(join(dir, 'report.md'), md.join('\n'));
  return [...files, ...plots];
}
