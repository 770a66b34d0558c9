import { join } from 'node:path';
import type { Command } from 'commander';
import { createDefaultPlugins } from '../plugins.js';
import { loadTrainer, parseThreads, THREADS_HELP } from './train.js';

/** `dfd demo`: both stages and the three variants on the built-in synthetic domains, nothing to download. */
export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('train EIFEs and DFD-Net (base, att, att+eifp) on synthetic domains and print the accuracy table')
    .option('-o, --out <dir>', 'output folder', 'dfd-demo')
    .option('--quick', 'tiny sizes (under a minute), for tests')
    .option('--backend <name>', 'tfjs backend (default auto: the fastest that trains here)')
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--no-console', 'no progress output')
    .action(async (opts: { out: string; quick?: boolean; backend?: string; threads?: number; console?: boolean }) => {
      const t = await loadTrainer(opts.backend ?? 'auto', opts.threads);
      const r = await t.runDemo({ out: opts.out, quick: opts.quick, console: opts.console !== false, plugins: (c) => createDefaultPlugins(c) });
      process.stdout.write(`\n${r.table}\n\n(accuracy %, source studio, last epoch; ${r.seconds.toFixed(0)} s; details in ${opts.out}/demo.md)\n`);
      // The next step: the figures, then a model on an image of one's own.
      const model = join(opts.out, 'att-eifp', 'model');
      process.stdout.write(
        `\nNext: the curves and confusion matrices are in ${join(opts.out, 'att-eifp', 'report.md')}; try the model on an image:\n` +
          `  dfd predict --model ${model} --detect photo.jpg\n` +
          '(trained on synthetic faces only: on real photos use a model trained on a real dataset, docs/zoo.md)\n',
      );
    });
}
