/*
 * Aggregates the run folders of tools/results/fer-taiwanese.sh into the table of
 * docs/results.md: per row, mean and sample standard deviation over seeds of the accuracy on
 * the source's test split and on each target, plus the per-seed values.
 *
 *   node --import tsx tools/results/aggregate.ts RUNS_DIR
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface Report {
  results: Array<{ target: string; accuracy: number }>;
  sourceTest?: { accuracy: number };
  baselines?: Array<{ id: string; results: Array<{ target: string; accuracy: number }>; sourceTest?: { accuracy: number } }>;
  seconds: number;
}

const dir = process.argv[2] ?? 'runs/results';
const rows = new Map<string, Array<{ seed: number; src: number; targets: Record<string, number>; seconds: number }>>();
const baselines = new Map<string, { id: string; src: number; targets: Record<string, number> }>();
for (const name of readdirSync(dir).sort()) {
  const m = /^(.+)-s(\d+)$/.exec(name);
  const path = join(dir, name, 'report.json');
  if (!m || !existsSync(path)) continue;
  const r = JSON.parse(readFileSync(path, 'utf8')) as Report;
  const targets = Object.fromEntries(r.results.map((x) => [x.target, 100 * x.accuracy]));
  const list = rows.get(m[1]!) ?? [];
  list.push({ seed: Number(m[2]), src: 100 * (r.sourceTest?.accuracy ?? NaN), targets, seconds: r.seconds });
  rows.set(m[1]!, list);
  for (const b of r.baselines ?? []) {
    if (!baselines.has(b.id)) baselines.set(b.id, { id: b.id, src: 100 * (b.sourceTest?.accuracy ?? NaN), targets: Object.fromEntries(b.results.map((x) => [x.target, 100 * x.accuracy])) });
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => (xs.length < 2 ? NaN : Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1)));
// Two-sided 95 % Student t quantiles for n - 1 = 1..9 degrees of freedom.
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262];
const interval = (xs: number[]) => {
  if (xs.length < 2 || xs.length > T95.length + 1) return '';
  const h = (T95[xs.length - 2]! * sd(xs)) / Math.sqrt(xs.length);
  return `[${(mean(xs) - h).toFixed(2)}, ${(mean(xs) + h).toFixed(2)}]`;
};
const cell = (xs: number[]) => `${mean(xs).toFixed(2)} ± ${sd(xs).toFixed(2)}`;
const targetNames = [...new Set([...rows.values()].flatMap((l) => l.flatMap((x) => Object.keys(x.targets))))];
const head = ['row', 'seeds', 'source test (in-domain)', ...targetNames.map((t) => `${t} (unseen)`), 'per seed (unseen)', 'minutes / run'];
const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`];
// Table 1 order: from scratch, on the frozen expression trunk, on the frozen age/gender trunk; anything else after.
const ORDER = ['base', 'att', 'attEs', 'base-scratch', 'att-scratch', 'attE-scratch', 'base-frozen', 'att-frozen', 'attE-frozen', 'attEs-frozen', 'attEh-frozen', 'base-xc', 'att-xc', 'attEs-xc'];
const rank = (r: string) => (ORDER.includes(r) ? ORDER.indexOf(r) : ORDER.length);
for (const [row, list] of [...rows].sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]))) {
  list.sort((a, b) => a.seed - b.seed);
  const per = targetNames.map((t) => list.map((x) => x.targets[t]!.toFixed(2)).join(' / ')).join('; ');
  lines.push(`| ${row} | ${list.map((x) => x.seed).join(',')} | ${cell(list.map((x) => x.src))} | ${targetNames.map((t) => cell(list.map((x) => x.targets[t]!))).join(' | ')} | ${per} | ${(mean(list.map((x) => x.seconds)) / 60).toFixed(1)} |`);
}
for (const b of baselines.values()) lines.push(`| ${b.id} off the shelf | - | ${b.src.toFixed(2)} | ${targetNames.map((t) => (b.targets[t] ?? NaN).toFixed(2)).join(' | ')} | (deterministic) | - |`);
// Paired differences on the same seed (the seed fixes the data order and the heads' init).
const pairs: Array<[string, string]> = [
  // tools/results/ferplus.yaml's rows (FER+ source)
  ['att', 'base'],
  ['attEs', 'att'],
  ['attEs', 'base'],
  ['att-scratch', 'base-scratch'],
  ['attE-scratch', 'att-scratch'],
  ['att-frozen', 'base-frozen'],
  ['attE-frozen', 'att-frozen'],
  ['attE-frozen', 'base-frozen'],
  ['attEs-frozen', 'att-frozen'],
  ['attEs-frozen', 'base-frozen'],
  ['attEh-frozen', 'att-frozen'],
  ['attEh-frozen', 'attEs-frozen'],
  ['att-xc', 'base-xc'],
  ['attEs-xc', 'att-xc'],
];
const diffLines: string[] = [];
for (const [a, b] of pairs) {
  const ra = rows.get(a);
  const rb = rows.get(b);
  if (!ra || !rb) continue;
  const seeds = ra.map((x) => x.seed).filter((s) => rb.some((y) => y.seed === s));
  if (!seeds.length) continue;
  const cells = ['source test', ...targetNames].map((t) => {
    const d = seeds.map((s) => {
      const x = ra.find((r) => r.seed === s)!;
      const y = rb.find((r) => r.seed === s)!;
      return t === 'source test' ? x.src - y.src : x.targets[t]! - y.targets[t]!;
    });
    return `${cell(d)} ${interval(d)} (${d.map((v) => (v >= 0 ? '+' : '') + v.toFixed(2)).join(' / ')})`;
  });
  diffLines.push(`| ${a} - ${b} | ${seeds.join(',')} | ${cells.join(' | ')} |`);
}
if (diffLines.length) {
  const dh = ['paired difference (points)', 'seeds', 'source test', ...targetNames];
  lines.push('', `| ${dh.join(' | ')} |`, `|${dh.map((_, i) => (i < 2 ? '---' : '---:')).join('|')}|`, ...diffLines);
}
process.stdout.write(lines.join('\n') + '\n');
