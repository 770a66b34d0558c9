// dfd from code, complete: a custom dataset plugin reading image files, a custom callback plugin
// listening to events, the scheduler and metrics-log plugins, training, and evaluation of the
// saved model. Plain Node ESM, no build step.
//
//   npm install @dfd/trainer @dfd/plugin-schedulers @dfd/plugin-jsonl-logger @tensorflow/tfjs-core
//   node node_modules/@dfd/trainer/examples/programmatic.mjs --out runs/programmatic
//
// Nothing is set up first: createTrainer and evaluateModelDir select a tfjs backend themselves
// (config `backend`, default 'auto': tfjs-node if installed, else WASM), and importing
// @dfd/trainer/node (the package's Node entry: runs, run folders, reports) registers the Node
// image decoder (sharp), so the plugin below may return files.
// docs/how-to-programmatic.md in the dfd repository walks through it.
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createDatasetRegistry } from '@dfd/datasets';
import { createTrainer, evaluateModelDir } from '@dfd/trainer/node';
import { JsonlLoggerPlugin } from '@dfd/plugin-jsonl-logger';
import { schedulerPlugins } from '@dfd/plugin-schedulers';

/** Writes `n` SVG images into `dir` as `<class>-<i>.svg`: the stripe period encodes the expression class (0..6). */
export function writeStripes(dir, n) {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const label = i % 7;
    const period = 2 * (label + 1);
    const bars = Array.from({ length: Math.ceil(24 / period) }, (_, k) => `<rect x="${k * period + (i % 3)}" y="0" width="${period / 2}" height="24" fill="#dcdc23"/>`).join('');
    writeFileSync(join(dir, `${label}-${i}.svg`), `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24"><rect width="24" height="24" fill="#1e1ee1"/>${bars}</svg>`);
  }
}

/**
 * A dataset plugin: `stripes:<folder>` reads the folder's `<class>-<i>.svg` files (the label is in
 * the name); every third file is the test split. Samples point at the files: the decoder reads them.
 */
export const stripesPlugin = {
  name: 'stripes',
  description: 'a folder of <class>-<i>.svg files',
  labels: { expression: true, factors: [] },
  async load(location) {
    const dir = resolve(location);
    const files = readdirSync(dir).filter((f) => /^\d-\d+\.svg$/.test(f)).sort();
    const samples = files.map((f) => ({ id: f, expression: Number(f[0]), image: { kind: 'file', path: join(dir, f) } }));
    return {
      name: `stripes:${location}`,
      plugin: 'stripes',
      hasExpression: true,
      splits: { train: samples.filter((_, i) => i % 3 !== 0), test: samples.filter((_, i) => i % 3 === 0) },
      warnings: [],
    };
  },
};

/** A callback plugin: the mean loss of every epoch and the target evaluation, from the event bus; its state is checkpointed. */
export class LossHistory {
  name = 'loss-history';
  losses = [];
  targets = [];

  setup(ctx) {
    // epochEnd.epoch counts the epochs done (1, 2, ...), like epochEnd.metrics.epoch.
    ctx.on('epochEnd', (e) => void (this.losses[e.epoch - 1] = e.metrics.loss));
    // After the last epoch: one `evaluation` event with every target (split 'target').
    ctx.on('evaluation', (e) => void (e.split === 'target' && (this.targets = e.results)));
  }

  getState() {
    return this.losses;
  }

  setState(state) {
    this.losses = state;
  }
}

/** Train `base` on one stripes folder, evaluate on another; then evaluate the saved model again. */
export async function main({ out, samples = 42, epochs = 3, width = 0.125, inputSize = 24, backend = 'auto' }) {
  writeStripes(join(out, 'data-a'), samples);
  writeStripes(join(out, 'data-b'), samples);
  const datasets = createDatasetRegistry([stripesPlugin]);
  const history = new LossHistory();
  const run = await createTrainer(
    {
      source: `stripes:${join(out, 'data-a')}`,
      targets: [`stripes-b=stripes:${join(out, 'data-b')}`],
      variant: 'base',
      out: join(out, 'run'),
      epochs,
      backend,
      model: { width, inputSize },
      data: { batchSize: 8, augment: false },
      optimizer: { lr: { heads: 2e-3 } },
      console: false,
    },
    {
      datasetRegistry: datasets,
      // The trainer imports no plugin: the caller composes them, from the validated config (every
      // default filled in). The config's schedule (cosine learning rates; gamma and lambda, used by
      // att+eifp) becomes the scheduler plugins; `dfd train` passes createDefaultPlugins(config)
      // from @dfd/cli/plugins, which adds the console and config `plugins` too.
      plugins: (config) => [...schedulerPlugins(config.schedule), new JsonlLoggerPlugin({ path: join(config.out, 'metrics.jsonl') }), history],
    },
  );
  process.once('SIGINT', () => run.trainer.requestStop('SIGINT'));
  const { report, result, modelDir } = await run.run();
  // The saved model, evaluated again: targets as 'NAME=SPEC' (or {name, spec}, or {NAME: SPEC}).
  const again = await evaluateModelDir(modelDir, [`stripes-b=stripes:${join(out, 'data-b')}`], { datasetRegistry: datasets });
  return { report, result, losses: history.losses, targetEvents: history.targets, again };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const { report, result, losses, targetEvents, again } = await main({
    out: arg('out', 'runs/programmatic'),
    samples: Number(arg('samples', 42)),
    epochs: Number(arg('epochs', 3)),
    width: Number(arg('width', 0.125)),
    inputSize: Number(arg('input-size', 24)),
    backend: arg('backend', 'auto'),
  });
  console.log(`losses per epoch ${losses.map((l) => l.toFixed(4)).join(' ')}; target accuracy ${report.mean.toFixed(4)}; evaluated again ${again.mean.toFixed(4)}`);
  // One JSON line for scripts (and the package's test).
  console.log(JSON.stringify({ status: result.status, losses, history: result.history.map((h) => h.loss), report: { results: report.results, mean: report.mean }, targetEvents, again: again.results }));
}
