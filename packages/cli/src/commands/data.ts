import type { Command } from 'commander';
import { EXPRESSIONS } from '@dfd/core';
import { decodeImage, describeSource, type Dataset, type Sample } from '@dfd/datasets';
import { checkImageHeaders, createNodeDatasetRegistry, registerDatasetPluginModules } from '@dfd/datasets/node';

/** What `dfd data inspect` reports (also its --json output). */
export interface DatasetReport {
  spec: string;
  plugin: string;
  hasExpression: boolean;
  factors: Array<{ name: string; classes: number }>;
  splits: Record<string, { total: number; expression?: Record<string, number>; factors?: Record<string, number[]> }>;
  imageSizes: Record<string, number>;
  sampled: number;
  /** Image files whose header and end were checked (every file of every split). */
  headerChecked: number;
  problems: Array<{ kind: string; message: string; count: number }>;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Counts, sampled image sizes and problems of a resolved dataset. */
export async function inspectDataset(spec: string, ds: Dataset, samplePerSplit: number): Promise<DatasetReport> {
  const report: DatasetReport = {
    spec,
    plugin: ds.plugin,
    hasExpression: ds.hasExpression,
    factors: (ds.factors ?? []).map((f) => ({ name: f.name, classes: f.classes })),
    splits: {},
    imageSizes: {},
    sampled: 0,
    headerChecked: 0,
    problems: ds.warnings.map((w) => ({ kind: w.kind, message: w.message, count: w.count })),
  };
  for (const [name, samples] of Object.entries(ds.splits) as Array<[string, Sample[] | undefined]>) {
    if (!samples) continue;
    const entry: DatasetReport['splits'][string] = { total: samples.length };
    if (samples.length === 0) report.problems.push({ kind: 'empty-split', message: `split '${name}' has no samples`, count: 1 });
    if (ds.hasExpression) {
      const counts = Object.fromEntries(EXPRESSIONS.map((e) => [e, 0])) as Record<string, number>;
      let unlabelled = 0;
      for (const s of samples) {
        if (s.expression === undefined) unlabelled++;
        else counts[EXPRESSIONS[s.expression]!]!++;
      }
      entry.expression = counts;
      if (unlabelled > 0) entry.expression.unlabelled = unlabelled;
      const missing = EXPRESSIONS.filter((e) => counts[e] === 0);
      if (samples.length > 0 && missing.length > 0) {
        report.problems.push({ kind: 'missing-class', message: `split '${name}' has no samples of ${missing.join(', ')}`, count: missing.length });
      }
    }
    if (ds.factors?.length) {
      entry.factors = {};
      for (const f of ds.factors) {
        const c = new Array<number>(f.classes).fill(0);
        for (const s of samples) {
          const v = s.factors?.[f.name];
          if (v !== undefined && v >= 0 && v < f.classes) c[v]!++;
        }
        entry.factors[f.name] = c;
      }
    }
    report.splits[name] = entry;
    // Decode an evenly spaced sample of images: sizes, and unreadable files.
    const k = Math.min(samplePerSplit, samples.length);
    for (let i = 0; i < k; i++) {
      const s = samples[Math.floor((i * samples.length) / k)]!;
      try {
        const img = await decodeImage(s.image);
        const key = `${img.width}x${img.height}`;
        report.imageSizes[key] = (report.imageSizes[key] ?? 0) + 1;
      } catch (err) {
        report.problems.push({ kind: 'unreadable-image', message: `${describeSource(s.image)}: ${err instanceof Error ? err.message : String(err)}`, count: 1 });
      }
      report.sampled++;
    }
  }
  // Every file's header and end (not only the sample): empty, truncated, not an image. Files the
  // sampled decode already reported are not listed twice.
  const reported = new Set(report.problems.filter((p) => p.kind === 'unreadable-image').map((p) => p.message.split(': ')[0]));
  const all = Object.values(ds.splits).flatMap((s) => s ?? []);
  const check = await checkImageHeaders(all);
  report.headerChecked = check.files;
  const bad = check.problems.filter((p) => !reported.has(p.file));
  if (bad.length) {
    const shown = bad.slice(0, 20).map((p) => `${p.file}: ${p.reason}`);
    report.problems.push({ kind: 'bad-image', message: `${bad.length} of ${check.files} image file(s) cannot be read: ${shown.join('; ')}${bad.length > 20 ? `; ... and ${bad.length - 20} more` : ''}`, count: bad.length });
  }
  return report;
}

function formatReport(r: DatasetReport): string {
  const lines = [`${r.spec}  (plugin ${r.plugin})`, ''];
  const names = Object.keys(r.splits);
  if (r.hasExpression) {
    const cols = ['split', 'total', ...EXPRESSIONS];
    const rows = names.map((n) => [n, String(r.splits[n]!.total), ...EXPRESSIONS.map((e) => String(r.splits[n]!.expression?.[e] ?? 0))]);
    const width = cols.map((c, i) => Math.max(c.length, ...rows.map((row) => row[i]!.length)));
    lines.push(cols.map((c, i) => c.padStart(width[i]!)).join('  '));
    for (const row of rows) lines.push(row.map((c, i) => c.padStart(width[i]!)).join('  '));
  } else {
    for (const n of names) lines.push(`${n}: ${r.splits[n]!.total} samples`);
  }
  for (const f of r.factors) {
    lines.push('', `factor ${f.name} (${f.classes} classes):`);
    for (const n of names) lines.push(`  ${n}: ${(r.splits[n]!.factors?.[f.name] ?? []).join(' ')}`);
  }
  lines.push('', `image sizes (${r.sampled} sampled): ${Object.entries(r.imageSizes).map(([s, c]) => `${s} x${c}`).join(', ') || 'none'}`);
  if (r.headerChecked) lines.push(`headers checked: ${r.headerChecked} image file(s)`);
  lines.push('', r.problems.length ? 'problems:' : 'problems: none');
  for (const p of r.problems) lines.push(`  - [${p.kind}] ${p.message}${p.count > 1 ? ` (${p.count})` : ''}`);
  return lines.join('\n') + '\n';
}

/** `dfd data inspect|plugins`: look at datasets through the dataset plugins. */
export function registerData(program: Command): void {
  const data = program.command('data').description('inspect datasets and list dataset plugins');
  data
    .command('inspect')
    .description('counts per split and class, sampled image sizes and problems of a dataset spec (e.g. rafdb:/data/RAF-DB, folder:./faces, synthetic:wild)')
    .argument('<spec>', 'dataset spec <plugin>:<location>[?options]')
    .option('--json', 'print machine-readable JSON')
    .option('--sample <n>', 'images decoded per split to check sizes and readability', '20')
    .option('--dataset-plugin <module>', 'extra dataset plugin module (default or named export `datasetPlugin`); repeatable', collect, [])
    .action(async (spec: string, opts: { json?: boolean; sample: string; datasetPlugin: string[] }) => {
      const registry = createNodeDatasetRegistry();
      await registerDatasetPluginModules(registry, opts.datasetPlugin);
      const n = Number(opts.sample);
      const ds = await registry.resolve(spec, { allowEmpty: true });
      const report = await inspectDataset(spec, ds, Number.isInteger(n) && n >= 0 ? n : 20);
      process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
    });
  data
    .command('plugins')
    .description('list the dataset plugins (built-in and --dataset-plugin modules)')
    .option('--dataset-plugin <module>', 'extra dataset plugin module; repeatable', collect, [])
    .action(async (opts: { datasetPlugin: string[] }) => {
      const registry = createNodeDatasetRegistry();
      await registerDatasetPluginModules(registry, opts.datasetPlugin);
      const list = registry.list();
      const w = Math.max(...list.map((p) => p.name.length));
      process.stdout.write(list.map((p) => `${p.name.padEnd(w)}  ${p.description ?? ''}`).join('\n') + '\n');
    });
}
