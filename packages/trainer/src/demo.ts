import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resultsTable, type RunReport } from './report.js';
import { createEifeTrainer, createTrainer, type RunPlugins } from './run.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Output folder (default ./dfd-demo). */
  out?: string;
  /** Tiny sizes for tests: under a minute. */
  quick?: boolean;
  /** Console progress (config `console`, default true; honoured by the caller's plugins, e.g. `createDefaultPlugins`). */
  console?: boolean;
  /**
   * The plugins of every run (see `RunPlugins`): `dfd demo` passes `(config) => createDefaultPlugins(config)`
   * from `@dfd/cli/plugins`. The att+eifp run needs gamma and lambda scheduler plugins.
   */
  plugins?: RunPlugins;
  /** Log a line per stage (default stderr). */
  log?: (line: string) => void;
}

/** The demo's numbers: one row per variant, as in the paper's Table 1. */
export interface DemoResult {
  rows: Array<{ label: string; source: string; results: RunReport['results']; mean: number; seconds: number }>;
  eifeAccuracy: Record<string, Record<string, number>>;
  table: string;
  seconds: number;
  settings: Record<string, unknown>;
}

/** Settings of the full demo (sized for < 10 minutes on 2 CPU cores with the wasm backend) and of --quick. */
export const DEMO_SETTINGS = {
  full: { size: 32, width: 0.125, train: 960, test: 210, batch: 32, eifeEpochs: 2, epochs: 5, embedDim: 64, lr: 2e-3, eifeTrain: 640 },
  quick: { size: 16, width: 0.0625, train: 32, test: 14, batch: 16, eifeEpochs: 1, epochs: 1, embedDim: 8, lr: 2e-3, eifeTrain: 32 },
} as const;

/**
 * The README's main job, nothing to download: on the synthetic domains, stage 1 trains two EIFEs
 * (identity-like factors: identity + pose; appearance factors: age, skin, illumination), then
 * stage 2 trains base, att and att+eifp on `studio` and evaluates each on `wild`, `sketch` and
 * `lowlight` (last epoch, targets never seen in training), printing a Table-1-style table.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const s = options.quick ? DEMO_SETTINGS.quick : DEMO_SETTINGS.full;
  const out = resolve(options.out ?? 'dfd-demo');
  const log = options.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const t0 = Date.now();
  const common = { console: options.console ?? true, jsonl: true };
  // The demo regenerates its own run folders each time (overwrite).
  const runOpts = { plugins: options.plugins, overwrite: true };
  const src = (domain: string, q: string) => `synthetic:${domain}?size=${s.size}&${q}`;
  const eifes = [
    { name: 'eife-identity', factors: ['identity', 'pose'] },
    { name: 'eife-appearance', factors: ['age', 'skin', 'illumination'] },
  ];
  const eifeAccuracy: Record<string, Record<string, number>> = {};
  for (const [i, e] of eifes.entries()) {
    log(`[demo] stage 1: ${e.name} on ${e.factors.join(', ')}`);
    // The extractors see their own images (another seed), as the paper trains them on other datasets.
    const run = await createEifeTrainer(
      {
        dataset: src('studio', `train=${s.eifeTrain}&test=${s.test}&seed=${101 + i}`),
        factors: e.factors,
        out: join(out, e.name),
        epochs: s.eifeEpochs,
        seed: i,
        model: { width: s.width, inputSize: s.size, embedDim: s.embedDim },
        data: { batchSize: s.batch, evalBatchSize: 64 },
        optimizer: { lr: { heads: s.lr } },
        ...common,
      },
      runOpts,
    );
    eifeAccuracy[e.name] = (await run.run()).factorAccuracy;
  }
  const rows: DemoResult['rows'] = [];
  for (const variant of ['base', 'att', 'att+eifp'] as const) {
    log(`[demo] stage 2: ${variant} on studio`);
    const t = Date.now();
    const run = await createTrainer(
      {
        source: src('studio', `train=${s.train}&test=${s.test}`),
        targets: ['wild', 'sketch', 'lowlight'].map((d) => `${d}=${src(d, `train=0&test=${s.test}`)}`),
        variant,
        eife: variant === 'att+eifp' ? eifes.map((e) => join(out, e.name)) : [],
        out: join(out, variant.replace('+', '-')),
        epochs: s.epochs,
        seed: 0,
        model: { width: s.width, inputSize: s.size },
        data: { batchSize: s.batch, evalBatchSize: 64 },
        optimizer: { lr: { heads: s.lr } },
        schedule: { cosine: { tMax: s.epochs, etaMin: 0 } },
        ...common,
      },
      runOpts,
    );
    const { report } = await run.run();
    rows.push({ label: variant, source: 'studio', results: report.results, mean: report.mean, seconds: (Date.now() - t) / 1000 });
  }
  const table = resultsTable(rows);
  const seconds = (Date.now() - t0) / 1000;
  const settings = { ...s, quick: Boolean(options.quick) };
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'demo.json'), JSON.stringify({ rows, eifeAccuracy, seconds, settings }, null, 2) + '\n');
  writeFileSync(
    join(out, 'demo.md'),
    `# dfd demo (synthetic domains)\n\nSource studio; targets wild, sketch, lowlight; accuracy % at the last epoch.\n\n${table}\n\nSettings: ${JSON.stringify(settings)}. Total ${seconds.toFixed(0)} s.\n`,
  );
  return { rows, eifeAccuracy, table, seconds, settings };
}
