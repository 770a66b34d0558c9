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

/** An SVG line chart of `series` over epochs (pure; no DOM). */
export function lineChartSvg(title: string, series: Array<{ name: string; values: number[] }>, yLabel = ''): string {
  const W = 560;
  const H = 320;
  const m = { l: 56, r: 120, t: 32, b: 40 };
  const all = series.flatMap((s) => s.values.filter(Number.isFinite));
  const lo = all.length ? Math.min(...all) : 0;
  const hi = all.length ? Math.max(...all) : 1;
  const pad = (hi - lo || 1) * 0.05;
  const y0 = lo - pad;
  const y1 = hi + pad;
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const x = (i: number) => m.l + ((W - m.l - m.r) * i) / (n - 1);
  const y = (v: number) => m.t + ((H - m.t - m.b) * (y1 - v)) / (y1 - y0);
  const colours = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`];
  for (let k = 0; k <= 4; k++) {
    const v = y0 + ((y1 - y0) * k) / 4;
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="#ddd"/>`, `<text x="${m.l - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${v.toPrecision(3)}</text>`);
  }
  for (let i = 0; i < n; i++) if (n <= 20 || i % Math.ceil(n / 10) === 0) parts.push(`<text x="${x(i).toFixed(1)}" y="${H - m.b + 16}" text-anchor="middle">${i + 1}</text>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">epoch</text>`, `<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">${esc(yLabel)}</text>`);
  series.forEach((s, k) => {
    const c = colours[k % colours.length]!;
    const pts = s.values.map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null)).filter(Boolean);
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${pts.join(' ')}"/>`);
    for (const p of pts) parts.push(`<circle cx="${p!.split(',')[0]}" cy="${p!.split(',')[1]}" r="2.5" fill="${c}"/>`);
    parts.push(`<rect x="${W - m.r + 10}" y="${m.t + k * 18}" width="12" height="3" fill="${c}"/>`, `<text x="${W - m.r + 26}" y="${m.t + k * 18 + 5}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** An SVG heat map of a confusion matrix (rows true, columns predicted, row-normalised shading). */
export function confusionSvg(result: EvaluationResult, classNames: readonly string[] = EXPRESSIONS): string {
  const k = result.confusion.length;
  const cell = 44;
  const left = 90;
  const top = 70;
  const W = left + k * cell + 20;
  const H = top + k * cell + 40;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${esc(result.target)}: ${pct(result.accuracy)}% (n=${result.count})</text>`];
  result.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    parts.push(`<text x="${left - 6}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${esc(classNames[i] ?? String(i))}</text>`);
    row.forEach((v, j) => {
      const f = v / total;
      const shade = Math.round(255 - 200 * f);
      parts.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#999"/>`, `<text x="${left + j * cell + cell / 2}" y="${top + i * cell + cell / 2 + 4}" text-anchor="middle">${v}</text>`);
    });
  });
  for (let j = 0; j < k; j++) parts.push(`<text x="${left + j * cell + cell / 2}" y="${top - 8}" text-anchor="middle" transform="rotate(-30 ${left + j * cell + cell / 2} ${top - 8})">${esc(classNames[j] ?? String(j))}</text>`);
  parts.push(`<text x="${left + (k * cell) / 2}" y="${H - 10}" text-anchor="middle">predicted</text>`, '</svg>');
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
