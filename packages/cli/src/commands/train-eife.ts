import type { Command } from 'commander';
import { DfdError } from '@dfd/core';
import { createDefaultPlugins } from '../plugins.js';
import { framingFromKind } from '@dfd/zoo';
import { collect, loadTrainer, parsePluginOption, stopOnSigint, parseThreads, THREADS_HELP } from './train.js';

interface EifeOpts {
  config?: string;
  resume?: string;
  overwrite?: boolean;
  dataset?: string;
  framing?: string;
  factors?: string;
  out?: string;
  epochs?: number;
  batchSize?: number;
  microBatch?: number;
  lr?: number;
  width?: number;
  inputSize?: number;
  embedDim?: number;
  seed?: number;
  limit?: number;
  badImages?: string;
  plugin?: string[];
  datasetPlugin?: string[];
  console?: boolean;
  backend?: string;
  threads?: number;
}

/** `dfd train-eife`: stage 1, one expression-irrelevant feature extractor with a head per factor. */
export function registerTrainEife(program: Command): void {
  program
    .command('train-eife')
    .description('stage 1: train an expression-irrelevant feature extractor (EIFE) on attribute labels')
    .option('-c, --config <file>', 'JSON or YAML config (command-line options override it)')
    .option('--resume <runDir>', 'continue an interrupted run')
    .option('--overwrite', 'start over in an --out folder that holds a previous run (removes its config, checkpoints, model, reports, metrics)')
    .option('-d, --dataset <spec>', 'dataset with factor labels, e.g. utkface:/data/UTKFace or synthetic:studio')
    .option('-f, --factors <list>', 'comma-separated factors, e.g. age,gender,race')
    .option('-o, --out <dir>', 'output folder (model/ is what dfd train --eife takes)')
    .option('--epochs <n>', 'epochs (default 30)', Number)
    .option('--batch-size <n>', 'batch size (default 128)', Number)
    .option('--micro-batch <n>', 'at most n samples per forward/backward pass; gradients are summed over the batch (fits large batches in memory; batch norm then sees n)', Number)
    .option('--lr <x>', 'learning rate of every parameter (default 5e-4)', Number)
    .option('--width <x>', 'channel width multiplier', Number)
    .option('--input-size <n>', 'input side in pixels (default 90)', Number)
    .option('--embed-dim <n>', 'embedding size d (default 256)', Number)
    .option('--seed <n>', 'seed', Number)
    .option('--limit <n>', 'use at most n training samples: a seeded subset spread over the first factor', Number)
    .option('--bad-images <mode>', 'image files that are empty, truncated or not images (every header is checked before step 1): fail (default, lists them all) | skip (leave them out, listed in the run folder)')
    .option('--framing <kind>', 'how every image is framed: resize (default, the whole image) | centre-crop | align (detect, 68 landmarks, eyes and mouth onto a template); recorded in model.json')
    .option('--dataset-plugin <module>', 'extra dataset plugin module (default or named export `datasetPlugin`); repeatable', collect)
    .option('--plugin <name[:json]>', 'add a registered plugin (repeatable)', collect)
    .option('--no-console', 'no progress output')
    .option('--backend <name>', 'tfjs backend (default auto)')
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .action(async (opts: EifeOpts) => {
      const t = await loadTrainer(opts.backend ?? 'auto', opts.threads);
      let base: Record<string, unknown> = {};
      if (opts.resume) {
        const saved = t.readRunConfig(opts.resume);
        if (saved.stage !== 'eife') throw new DfdError('E_CONFIG', `${opts.resume} is a '${saved.stage}' run; resume it with dfd train --resume.`);
        base = { ...saved.config, out: opts.resume };
      } else if (opts.config) base = t.readConfigFile(opts.config);
      const config = t.mergeConfig(base, {
        dataset: opts.dataset,
        factors: opts.factors?.split(',').map((s) => s.trim()).filter(Boolean),
        out: opts.resume ? undefined : opts.out,
        epochs: opts.epochs,
        seed: opts.seed,
        model: { width: opts.width, inputSize: opts.inputSize, embedDim: opts.embedDim },
        data: { batchSize: opts.batchSize, microBatch: opts.microBatch, limit: opts.limit, badImages: opts.badImages },
        optimizer: { lr: { heads: opts.lr } },
        plugins: opts.plugin?.map(parsePluginOption),
        datasetPlugins: opts.datasetPlugin,
        console: opts.console === false ? false : undefined,
        backend: opts.backend,
      });
      if (opts.framing && (config.framing as { kind?: string } | undefined)?.kind !== opts.framing) config.framing = framingFromKind(opts.framing);
      const run = await t.createEifeTrainer(config as never, { resume: Boolean(opts.resume), overwrite: Boolean(opts.overwrite), configFile: opts.resume ? `${opts.resume}/config.json` : opts.config, plugins: (c) => createDefaultPlugins(c) });
      const release = stopOnSigint((r) => run.trainer.requestStop(r));
      try {
        const { result, modelDir, factorAccuracy } = await run.run();
        const acc = Object.entries(factorAccuracy).map(([k, v]) => `${k} ${(100 * v).toFixed(2)}%`).join(', ');
        process.stdout.write(`EIFE saved to ${modelDir}${acc ? `; test accuracy: ${acc}` : ''}\n`);
        if (result.status === 'failed') throw new DfdError('E_TRAINING_FAILED', `training failed: ${result.reason}`);
      } finally {
        release();
      }
    });
}
