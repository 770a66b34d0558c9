// Train DFD-Net from code with a custom dataset plugin and a custom callback plugin, then evaluate
// the saved model. Nothing to set up first: createTrainer and evaluateModelDir select a tfjs
// backend themselves (config `backend`, default 'auto'), and importing @dfd/trainer registers the
// Node image decoder. Shipped in the package (node_modules/@dfd/trainer/examples/programmatic.ts).
// In the dfd repository: node --conditions=@dfd/source --import tsx packages/trainer/examples/programmatic.ts
// (docs/how-to-programmatic.md walks through it; src/programmatic-example.test.ts runs it.)
import type { DfdPlugin, EvaluationResult, PluginContext } from '@dfd/core';
import { createDatasetRegistry, type DatasetPlugin, type RgbImage, type Sample } from '@dfd/datasets';
import { createTrainer, evaluateModelDir } from '@dfd/trainer';

/** A dataset plugin: `stripes:<n>` makes n images whose stripe period encodes the expression class. */
export const stripesPlugin: DatasetPlugin = {
  name: 'stripes',
  description: 'toy images: stripe period = expression class',
  labels: { expression: true, factors: [] },
  async load(location) {
    const n = Number(location);
    const render = (label: number, phase: number): RgbImage => {
      const size = 24;
      const data = new Uint8Array(size * size * 3);
      for (let y = 0; y < size; y++)
        for (let x = 0; x < size; x++) {
          const v = Math.sin(((x + phase) * Math.PI) / (label + 1)) > 0 ? 220 : 30;
          data.set([v, v, 255 - v], (y * size + x) * 3);
        }
      return { width: size, height: size, data };
    };
    const make = (split: string, count: number): Sample[] =>
      Array.from({ length: count }, (_, i) => ({ id: `${split}/${i}`, expression: i % 7, image: { kind: 'generated', width: 24, height: 24, render: () => render(i % 7, i % 5) } }));
    return { name: `stripes:${n}`, plugin: 'stripes', hasExpression: true, splits: { train: make('train', n), test: make('test', Math.ceil(n / 2)) }, warnings: [] };
  },
};

/** A callback plugin: collects the mean loss of every epoch and the target evaluation through the event bus. */
export class LossHistory implements DfdPlugin<number[]> {
  readonly name = 'loss-history';
  losses: number[] = [];
  targets: EvaluationResult[] = [];

  setup(ctx: PluginContext): void {
    ctx.on('epochEnd', (e) => {
      // e.epoch counts the epochs done (1, 2, ...), like e.metrics.epoch.
      this.losses[e.epoch - 1] = e.metrics.loss!;
    });
    ctx.on('evaluation', (e) => {
      if (e.split === 'target') this.targets = e.results;
    });
  }

  getState(): number[] {
    return this.losses;
  }

  setState(state: number[]): void {
    this.losses = state;
  }
}

/** Train `base` on stripes, evaluate on a second stripes set; returns the report and the callback's losses. */
export async function main(options: { out: string; samples?: number; epochs?: number; width?: number; inputSize?: number }) {
  const datasets = createDatasetRegistry([stripesPlugin]);
  const history = new LossHistory();
  const run = await createTrainer(
    {
      source: `stripes:${options.samples ?? 64}`,
      targets: [`stripes-b=stripes:${Math.ceil((options.samples ?? 64) / 2)}`],
      variant: 'base',
      out: options.out,
      epochs: options.epochs ?? 3,
      model: { width: options.width ?? 0.125, inputSize: options.inputSize ?? 24 },
      data: { batchSize: 8, augment: false },
      optimizer: { lr: { heads: 2e-3 } },
      console: false,
    },
    { datasetRegistry: datasets, plugins: [history] },
  );
  const { report, result, modelDir } = await run.run();
  // The saved model, evaluated again (targets as 'NAME=SPEC', as in the config).
  const again = await evaluateModelDir(modelDir, [`stripes-c=stripes:${Math.ceil((options.samples ?? 64) / 2)}`], { datasetRegistry: datasets });
  return { report, result, losses: history.losses, targetEvents: history.targets, again };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { report, losses, again } = await main({ out: 'runs/programmatic' });
  console.log('losses per epoch', losses, 'target accuracy', report.mean, 'evaluated again', again.mean);
}
