import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { canonicalJson } from './spec.js';
import { readFailed, readGridIndex } from './store.js';
import { summarise, type Summary } from './stats.js';

/** The axis whose values are repetitions, not conditions. */
export const SEED_AXIS = 'seed';

/** One cell's outcome. */
export interface CellOutcome {
  hash: string;
  label: string;
  axes: Record<string, unknown>;
  /** `invalid`: its report.json claims a finished run but is not one (cut, not JSON, a field out of range); left out of every mean. */
  status: 'done' | 'failed' | 'pending' | 'invalid';
  source?: string;
  /** Accuracy (0-1) per target, and their mean. */
  accuracy?: Record<string, number>;
  mean?: number;
  seconds?: number;
  error?: string;
}

/** Cells that differ only in their seed, summarised over seeds. */
export interface GroupSummary {
  /** Non-seed axis values. */
  key: Record<string, unknown>;
  /** The method column: non-seed, non-source axis values. */
  method: string;
  source: string;
  seeds: unknown[];
  targets: Record<string, Summary>;
  mean: Summary;
  /** Per seed: the target accuracies and their mean (the plot's points). */
  perSeed: Array<{ seed: unknown; accuracy: Record<string, number>; mean: number }>;
  /** Cells of the group that are not done (failed or pending). */
  missing: string[];
}

/** Paired difference b - a of two values of one axis, on the seeds where both finished. */
export interface PairedDifference {
  axis: string;
  a: unknown;
  b: unknown;
  /** The other non-seed axes, held fixed. */
  context: Record<string, unknown>;
  label: string;
  seeds: unknown[];
  targets: Record<string, Summary>;
  mean: Summary;
}

/** What `dfd grid report --json` prints. Accuracies are fractions (0-1), like report.json. */
export interface GridReport {
  dir: string;
  targets: string[];
  counts: { done: number; failed: number; pending: number; invalid: number };
  groups: GroupSummary[];
  differences: PairedDifference[];
  cells: CellOutcome[];
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function keyOf(axes: Record<string, unknown>, drop: string[]): string {
  return canonicalJson(Object.fromEntries(Object.entries(axes).filter(([k]) => !drop.includes(k))));
}

/** The fields of a finished cell's report.json the grid reads: what `dfd train` writes, checked before it is averaged. */
export const cellReportSchema = z.looseObject({
  status: z.literal('completed'),
  source: z.string().min(1),
  results: z
    .array(z.looseObject({ target: z.string().min(1), accuracy: z.number().min(0).max(1) }))
    .min(1, 'a finished cell reports at least one target'),
  mean: z.number().min(0).max(1),
  seconds: z.number().min(0).optional(),
});

/**
 * Read a cell's report.json: `null` when there is none or it is not a finished run (status other
 * than completed), else the validated report or the reason it is invalid (naming file and field).
 */
export function readCellReport(dir: string, targets: string[] = []): { report: z.output<typeof cellReportSchema> } | { invalid: string } | null {
  const path = join(dir, 'report.json');
  if (!existsSync(path)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    return { invalid: `${path}: not valid JSON (cut short?): ${(err as Error).message}` };
  }
  const status = raw && typeof raw === 'object' ? (raw as { status?: unknown }).status : undefined;
  if (status !== undefined && status !== 'completed') return null;
  const r = cellReportSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0]!;
    return { invalid: `${path}: ${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}` };
  }
  const names = r.data.results.map((x) => x.target);
  const dup = names.find((n, k) => names.indexOf(n) !== k);
  if (dup) return { invalid: `${path}: results: target '${dup}' appears twice` };
  const missing = targets.find((t) => !names.includes(t));
  if (missing) return { invalid: `${path}: results: no result for target '${missing}' (the other cells report ${targets.join(', ')})` };
  return { report: r.data };
}

/** Read every cell of a grid folder and aggregate over seeds. */
export function gridReport(dir: string): GridReport {
  const index = readGridIndex(dir);
  const cells: CellOutcome[] = [];
  let targets: string[] = [];
  for (const c of index.cells) {
    const d = join(dir, 'cells', c.hash);
    const base = { hash: c.hash, label: c.label, axes: c.axes };
    const read = readCellReport(d, targets);
    if (read && 'invalid' in read) {
      cells.push({ ...base, status: 'invalid', error: read.invalid });
      continue;
    }
    if (read) {
      const r = read.report;
      if (!targets.length) targets = r.results.map((x) => x.target);
      cells.push({ ...base, status: 'done', source: r.source, accuracy: Object.fromEntries(r.results.map((x) => [x.target, x.accuracy])), mean: r.mean, ...(r.seconds !== undefined ? { seconds: r.seconds } : {}) });
      continue;
    }
    const failed = readFailed(d);
    const eifeFailed = c.needs.map((h) => readFailed(join(dir, 'eife', h))).find(Boolean);
    if (failed) cells.push({ ...base, status: 'failed', error: failed.error });
    else if (eifeFailed) cells.push({ ...base, status: 'failed', error: `stage-1 extractor failed: ${eifeFailed.error}` });
    else cells.push({ ...base, status: 'pending' });
  }
  const nonSeed = index.axes.map((a) => a.path).filter((p) => p !== SEED_AXIS);
  const methodAxes = nonSeed.filter((p) => p !== 'source');

  const groups = new Map<string, CellOutcome[]>();
  for (const c of cells) {
    const k = keyOf(c.axes, [SEED_AXIS]);
    groups.set(k, [...(groups.get(k) ?? []), c]);
  }
  const summaries: GroupSummary[] = [];
  for (const members of groups.values()) {
    const done = members.filter((m) => m.status === 'done');
    const first = members[0]!;
    const key = Object.fromEntries(Object.entries(first.axes).filter(([k]) => k !== SEED_AXIS));
    summaries.push({
      key,
      method: methodAxes.length ? methodAxes.map((p) => (methodAxes.length === 1 ? text(first.axes[p]) : `${p}=${text(first.axes[p])}`)).join(', ') : String(((done[0]?.source ?? first.axes.source) as string | undefined) ?? 'run'),
      source: done[0]?.source ?? text(first.axes.source ?? ''),
      seeds: done.map((m) => m.axes[SEED_AXIS] ?? 0),
      targets: Object.fromEntries(targets.map((t) => [t, summarise(done.map((m) => m.accuracy![t]!))])),
      mean: summarise(done.map((m) => m.mean!)),
      perSeed: done.map((m) => ({ seed: m.axes[SEED_AXIS] ?? 0, accuracy: m.accuracy!, mean: m.mean! })),
      missing: members.filter((m) => m.status !== 'done').map((m) => m.label),
    });
  }

  const differences: PairedDifference[] = [];
  for (const axis of index.axes.filter((a) => a.path !== SEED_AXIS && a.values.length > 1)) {
    const contexts = new Map<string, CellOutcome[]>();
    for (const c of cells) {
      if (c.status !== 'done') continue;
      const k = keyOf(c.axes, [SEED_AXIS, axis.path]);
      contexts.set(k, [...(contexts.get(k) ?? []), c]);
    }
    for (const members of contexts.values()) {
      const context = Object.fromEntries(Object.entries(members[0]!.axes).filter(([k]) => k !== SEED_AXIS && k !== axis.path));
      for (let i = 0; i < axis.values.length; i++) {
        for (let j = i + 1; j < axis.values.length; j++) {
          const a = axis.values[i], b = axis.values[j];
          const at = (v: unknown) => new Map(members.filter((m) => canonicalJson(m.axes[axis.path]) === canonicalJson(v)).map((m) => [canonicalJson(m.axes[SEED_AXIS] ?? 0), m]));
          const ma = at(a), mb = at(b);
          const pairs = [...mb.entries()].filter(([s]) => ma.has(s)).map(([, cb]) => [ma.get(canonicalJson(cb.axes[SEED_AXIS] ?? 0))!, cb] as const);
          if (!pairs.length) continue;
          const ctx = Object.entries(context).map(([k, v]) => `${k}=${text(v)}`).join(', ');
          differences.push({
            axis: axis.path,
            a,
            b,
            context,
            label: `${text(b)} − ${text(a)}${ctx ? ` (${ctx})` : ''}`,
            seeds: pairs.map(([, cb]) => cb.axes[SEED_AXIS] ?? 0),
            targets: Object.fromEntries(targets.map((t) => [t, summarise(pairs.map(([ca, cb]) => cb.accuracy![t]! - ca.accuracy![t]!))])),
            mean: summarise(pairs.map(([ca, cb]) => cb.mean! - ca.mean!)),
          });
        }
      }
    }
  }
  const count = (s: CellOutcome['status']) => cells.filter((c) => c.status === s).length;
  return { dir, targets, counts: { done: count('done'), failed: count('failed'), pending: count('pending'), invalid: count('invalid') }, groups: summaries, differences, cells };
}

const pct = (x: number) => (Number.isFinite(x) ? (x * 100).toFixed(2) : '–');

function meanCi(s: Summary): string {
  if (!s.n) return '–';
  return Number.isFinite(s.ci95) ? `${pct(s.mean)} ± ${pct(s.ci95)}` : pct(s.mean);
}

function diffCi(s: Summary): string {
  if (!s.n) return '–';
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${pct(x)}`;
  return Number.isFinite(s.ci95) ? `${sign(s.mean)} [${sign(s.low)}, ${sign(s.high)}]` : sign(s.mean);
}

/** The report as Markdown: the paper's Table-2 layout (mean ± 95 % CI half width over seeds), paired differences, failures. */
export function reportMarkdown(r: GridReport): string {
  const lines = [
    `Accuracy (%) over seeds: mean ± half width of the 95 % confidence interval (Student t, n-1 degrees of freedom); n = seeds done.`,
    '',
    `| method | source | ${r.targets.join(' | ')} | mean | n |`,
    `|---|---|${r.targets.map(() => '---:|').join('')}---:|---:|`,
  ];
  for (const g of r.groups) lines.push(`| ${g.method} | ${g.source} | ${r.targets.map((t) => meanCi(g.targets[t]!)).join(' | ')} | ${meanCi(g.mean)} | ${g.mean.n} |`);
  if (r.differences.length) {
    lines.push('', 'Paired differences (points, same seed), mean [95 % CI]:', '', `| difference | ${r.targets.join(' | ')} | mean | n |`, `|---|${r.targets.map(() => '---:|').join('')}---:|---:|`);
    for (const d of r.differences) lines.push(`| ${d.label} | ${r.targets.map((t) => diffCi(d.targets[t]!)).join(' | ')} | ${diffCi(d.mean)} | ${d.mean.n} |`);
  }
  const bad = r.cells.filter((c) => c.status !== 'done');
  if (r.counts.invalid) lines.push('', `**${r.counts.invalid} cell${r.counts.invalid > 1 ? 's have' : ' has'} an invalid report.json (listed below): left out of every mean and difference above.** Delete the file and run dfd grid run again to retrain the cell.`);
  if (bad.length) {
    lines.push('', `| cell | status | error |`, '|---|---|---|');
    for (const c of bad) lines.push(`| ${c.label} (${c.hash}) | ${c.status} | ${(c.error ?? '').split('\n')[0]!.replace(/\|/g, '\\|')} |`);
  }
  return lines.join('\n');
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The plot: per group, a bar for the mean target-mean accuracy, the 95 % interval, and one point per seed. */
export function reportSvg(r: GridReport): string {
  const step = 130, W = Math.max(480, 90 + r.groups.length * step), H = 360, left = 50, top = 50, bottom = 70, plotH = H - top - bottom;
  const values = r.groups.flatMap((g) => [...g.perSeed.map((p) => p.mean), g.mean.high, g.mean.low].filter(Number.isFinite));
  const hi = Math.min(1, Math.ceil(((values.length ? Math.max(...values) : 1) + 0.05) * 10) / 10);
  const y = (v: number) => top + plotH * (1 - v / hi);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">mean accuracy over targets (%)</text>`,
    `<text x="${W / 2}" y="34" text-anchor="middle" fill="#555">bars: mean over seeds · lines: 95 % CI · dots: seeds</text>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="black"/>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${W - 10}" y2="${top + plotH}" stroke="black"/>`,
  ];
  for (let k = 0; k <= 5; k++) {
    const v = (hi * k) / 5;
    parts.push(`<text x="${left - 4}" y="${y(v) + 4}" text-anchor="end">${(v * 100).toFixed(0)}</text>`, `<line x1="${left}" y1="${y(v)}" x2="${W - 10}" y2="${y(v)}" stroke="#ddd"/>`);
  }
  r.groups.forEach((g, i) => {
    const cx = left + 60 + i * step;
    if (g.mean.n) parts.push(`<rect x="${cx - 25}" y="${y(g.mean.mean)}" width="50" height="${top + plotH - y(g.mean.mean)}" fill="#9ecae1"/>`);
    if (Number.isFinite(g.mean.ci95)) parts.push(`<line x1="${cx}" y1="${y(Math.min(hi, g.mean.high))}" x2="${cx}" y2="${y(Math.max(0, g.mean.low))}" stroke="black" stroke-width="1.5"/>`);
    g.perSeed.forEach((p, j) => parts.push(`<circle cx="${cx - 12 + (24 * (j + 0.5)) / g.perSeed.length}" cy="${y(p.mean)}" r="3" fill="#08519c"><title>seed ${esc(text(p.seed))}: ${pct(p.mean)}</title></circle>`));
    parts.push(
      `<text x="${cx}" y="${top + plotH + 16}" text-anchor="middle">${esc(g.method)}</text>`,
      `<text x="${cx}" y="${top + plotH + 30}" text-anchor="middle" fill="#555">${esc(g.source)}</text>`,
      `<text x="${cx}" y="${top + plotH + 44}" text-anchor="middle" fill="#555">n=${g.mean.n}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** Write report.json, report.md and report.svg into the grid folder; returns the report. */
export function writeGridReport(dir: string): GridReport {
  const r = gridReport(dir);
  writeFileSync(join(dir, 'report.json'), JSON.stringify(r, null, 2) + '\n');
  writeFileSync(join(dir, 'report.md'), `# Grid report\n\n${reportMarkdown(r)}\n\n![plot](report.svg)\n`);
  writeFileSync(join(dir, 'report.svg'), reportSvg(r));
  return r;
}
