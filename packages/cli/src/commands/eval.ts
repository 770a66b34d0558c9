import type { Command } from 'commander';
import { DfdError } from '@dfd/core';
import { framingFromKind, isZooId } from '@dfd/zoo';
import { collect, loadTrainer, parseThreads, THREADS_HELP } from './train.js';

/** `dfd eval`: accuracy of a trained DFD-Net on target datasets (per target, per class, confusion, mean). */
export function registerEval(program: Command): void {
  program
    .command('eval')
    .description('evaluate a trained DFD-Net folder on target datasets')
    .requiredOption('-m, --model <dir|id>', "model folder (from dfd train: <run>/model or the run folder), or a zoo classifier as it ships, e.g. faceapi:expression")
    .requiredOption('-t, --target <name=spec>', 'target dataset (repeatable)', collect)
    .option('--batch-size <n>', 'evaluation batch size', Number, 128)
    .option('--dataset-plugin <module>', 'extra dataset plugin module (default or named export `datasetPlugin`); repeatable', collect, [])
    .option('--framing <kind>', "how target images are framed: resize, centre-crop or align (default: the model's recorded framing; resize for a zoo id)")
    .option('--preprocess <how>', "with a zoo id: dfd (default: dfd's resize, as a trained model sees) or native (the source library's own, e.g. face-api's centred zero-pad and bilinear resize)")
    .option('--backend <name>', 'tfjs backend (default auto)')
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--json', 'print JSON (accuracy, per-class accuracy, confusion matrices)')
    .action(async (opts: { model: string; target: string[]; batchSize: number; datasetPlugin: string[]; framing?: string; preprocess?: string; backend?: string; threads?: number; json?: boolean }) => {
      const targets = opts.target.map((s) => {
        const i = s.indexOf('=');
        if (i <= 0) throw new DfdError('E_CONFIG', `--target: expected NAME=SPEC, got '${s}'`);
        return { name: s.slice(0, i), spec: s.slice(i + 1) };
      });
      const framing = opts.framing ? framingFromKind(opts.framing) : undefined;
      if (opts.preprocess !== undefined && opts.preprocess !== 'dfd' && opts.preprocess !== 'native') throw new DfdError('E_CONFIG', `--preprocess '${opts.preprocess}': expected dfd or native`);
      if (opts.preprocess !== undefined && !isZooId(opts.model)) throw new DfdError('E_CONFIG', '--preprocess applies to a zoo classifier (--model faceapi:expression); a trained model always sees its own training pipeline');
      const t = await loadTrainer(opts.backend ?? 'auto', opts.threads);
      const common = { batchSize: opts.batchSize, datasetPlugins: opts.datasetPlugin, ...(framing ? { framing } : {}) };
      const { results, mean } = isZooId(opts.model) ? await t.evaluateZooModel(opts.model, targets, { ...common, ...(opts.preprocess ? { preprocess: opts.preprocess as 'dfd' | 'native' } : {}) }) : await t.evaluateModelDir(opts.model, targets, common);
      if (opts.json) {
        process.stdout.write(JSON.stringify({ model: opts.model, results, mean }, null, 2) + '\n');
        return;
      }
      process.stdout.write(t.resultsTable([{ source: opts.model, results, mean }]) + '\n');
    });
}
