import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { DfdError } from '@dfd/core';
import { parseThreadCount } from '@dfd/backends';
import { framingFromKind } from '@dfd/zoo';
import { createDefaultPlugins } from '../plugins.js';

/** What the CLI uses of @dfd/trainer: its browser-safe main entry and its Node entry together. */
export type TrainerModule = typeof import('@dfd/trainer') & typeof import('@dfd/trainer/node');

/** Load @dfd/trainer (both entries) after the gradient hook: tfjs-core's gradient files need it under Node's ESM loader. */
export async function loadTrainer(backend = 'auto', threads?: number): Promise<TrainerModule> {
  const backends = await import('@dfd/backends');
  await backends.registerGradients();
  const used = await backends.useBackend(backend as 'auto', threads != null ? { threads } : {});
  process.stderr.write(backendLine(used));
  const [main, node] = await Promise.all([import('@dfd/trainer'), import('@dfd/trainer/node')]);
  return { ...main, ...node };
}

/**
 * The line a command prints on stderr once its backend is ready: short (`dfd: tfjs backend wasm
 * (auto; DFD_VERBOSE=1 says more)`), since it precedes every later message, errors included; with
 * DFD_VERBOSE=1 the whole reason (what auto skipped and why). `dfd info` lists every backend.
 */
export function backendLine(used: { name: string; reason: string }, env: Record<string, string | undefined> = process.env): string {
  if (env.DFD_VERBOSE != null && env.DFD_VERBOSE !== '' && env.DFD_VERBOSE !== '0') return `dfd: tfjs backend ${used.name} (${used.reason})\n`;
  return `dfd: tfjs backend ${used.name} (${used.reason.startsWith('auto') ? 'auto' : 'requested'}; DFD_VERBOSE=1 says more)\n`;
}

/**
 * Checks each `--target` value is NAME=SPEC before anything is loaded, naming the flag (the
 * config's own check names `targets.<i>`, which a command-line user never wrote).
 */
export function checkTargetFlags(targets: string[] | undefined): void {
  for (const t of targets ?? []) {
    const eq = t.indexOf('=');
    if (eq <= 0 || eq === t.length - 1) {
      throw new DfdError('E_CONFIG', `--target ${t}: expected NAME=SPEC, e.g. --target wild=synthetic:wild or --target raf=rafdb:/data/RAF-DB (NAME is the report's column)`);
    }
  }
}

/**
 * Parses `--threads`: a whole number >= 1 (@dfd/backends' rule and message) and at most the CPUs
 * of this machine (`cpus`, default `os.availableParallelism()`): more worker threads than CPUs
 * only contend (`--threads 1000` used to start 64 workers on 2 cores without a word).
 */
export function parseThreads(v: string, cpus = availableParallelism()): number {
  const n = parseThreadCount(v, '--threads');
  if (n > cpus) throw new DfdError('E_BACKEND_OPTION', `--threads ${n} is more than the ${cpus} CPU(s) of this machine; use at most --threads ${cpus} (more threads than CPUs only slow the wasm backend down).`);
  return n;
}

/** Help text of `--threads` (shared by every command that selects a backend). */
export const THREADS_HELP = 'wasm backend threads in Node (default: DFD_WASM_THREADS, else the CPUs, at most 8; 1 = single-threaded)';

/** Repeatable option collector. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new DfdError('E_CONFIG', `${name}: expected a number, got '${v}'`);
    return n;
  };
}

/**
 * Stop cleanly on the first Ctrl-C or SIGTERM (what docker stop, systemd and job schedulers send):
 * finish the step, checkpoint, runEnd 'stopped'. A second signal exits at once (130 / 143).
 */
export function stopOnSigint(stop: (reason: string) => void): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) {
      process.stderr.write(`\ndfd: ${signal} - finishing the current step and writing a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to abort)\n`);
      stop(signal);
    } else process.exit(signal === 'SIGTERM' ? 143 : 130);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

interface TrainOpts {
  config?: string;
  resume?: string;
  overwrite?: boolean;
  source?: string;
  target?: string[];
  variant?: string;
  eife?: string[];
  backbone?: string;
  freezeBackbone?: boolean;
  framing?: string;
  trunkCache?: boolean;
  trunkCacheFloat16?: boolean;
  eifeStandardize?: boolean;
  baseline?: string[];
  out?: string;
  epochs?: number;
  batchSize?: number;
  microBatch?: number;
  lr?: number;
  backboneLr?: number;
  weightDecay?: number;
  tMax?: number;
  width?: number;
  inputSize?: number;
  seed?: number;
  gamma?: string;
  lambda?: number;
  lambdaSchedule?: string;
  selection?: string;
  limit?: number;
  badImages?: string;
  augment?: boolean;
  plugin?: string[];
  datasetPlugin?: string[];
  console?: boolean;
  backend?: string;
  threads?: number;
  json?: boolean;
}

/** Turn `name` or `name:{json options}` into a plugin entry. */
export function parsePluginOption(text: string): { name: string; options: Record<string, unknown> } {
  const i = text.indexOf(':');
  if (i < 0) return { name: text, options: {} };
  try {
    return { name: text.slice(0, i), options: JSON.parse(text.slice(i + 1)) as Record<string, unknown> };
  } catch {
    throw new DfdError('E_CONFIG', `--plugin ${text}: options after ':' must be JSON, e.g. early-stopping:{"patience":3}`);
  }
}

/** `dfd train`: stage 2 (DFD-Net on one source, frozen EIFE targets), checkpointed and resumable. */
export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('stage 2: train DFD-Net on one source domain and evaluate it on target domains')
    .option('-c, --config <file>', 'JSON or YAML run config (command-line options override it)')
    .option('--resume <runDir>', 'continue an interrupted run from its latest checkpoint')
    .option('--overwrite', 'start over in an --out folder that holds a previous run (removes its config, checkpoints, model, reports, metrics)')
    .option('-s, --source <spec>', 'source dataset spec, e.g. rafdb:/data/RAF-DB or synthetic:studio')
    .option('-t, --target <name=spec>', 'target dataset (repeatable)', collect)
    .option('--variant <variant>', 'base | att | att+eifp (default att+eifp, which needs --eife: a dfd train-eife folder or a zoo id; base and att need none)')
    .option('--eife <dir|id>', 'stage-1 extractor, one per MI head: a dfd train-eife folder or a zoo id, e.g. faceapi:recognition (repeatable; dfd models list)', collect)
    .option('--backbone <dir|id>', 'pretrained backbone: a model folder (its efe.* weights) or a zoo id, e.g. faceapi:expression (backbone lr then defaults to 1e-6)')
    .option('--freeze-backbone', 'keep the pretrained backbone fixed: no gradient, no update')
    .option('--no-trunk-cache', 'with --freeze-backbone, run the trunk on every image every epoch instead of computing each view\'s features once')
    .option('--trunk-cache-float16', 'store the cached frozen-trunk features as float16 (half the memory, rounded; docs/training.md)')
    .option('--eife-standardize', "standardise each --eife's targets per dimension on the source's training images (not in the paper; for zoo extractors with tiny embeddings)")
    .option('--baseline <id>', 'also evaluate a zoo classifier as it ships on the same targets, as a row of the report, e.g. faceapi:expression (repeatable)', collect)
    .option('-o, --out <dir>', 'run folder (checkpoints, model, metrics.jsonl, report)')
    .option('--epochs <n>', 'epochs (default 60)', num('--epochs'))
    .option('--batch-size <n>', 'batch size (default 128)', num('--batch-size'))
    .option('--micro-batch <n>', 'at most n samples per forward/backward pass; gradients are summed over the batch (fits large batches in memory; batch norm then sees n)', num('--micro-batch'))
    .option('--lr <x>', 'learning rate of attention, EIFP and classifier (default 5e-4)', num('--lr'))
    .option('--backbone-lr <x>', 'backbone learning rate (default: 1e-6 with --backbone, else = --lr)', num('--backbone-lr'))
    .option('--weight-decay <x>', 'AdamW decoupled weight decay (default 0.01)', num('--weight-decay'))
    .option('--t-max <n>', 'cosine annealing period in epochs (default 100)', num('--t-max'))
    .option('--width <x>', 'channel width multiplier (1 = 64 base channels)', num('--width'))
    .option('--input-size <n>', 'input side in pixels (default 90)', num('--input-size'))
    .option('--seed <n>', 'seed (default 0)', num('--seed'))
    .option('--gamma <name>', 'gamma schedule: paper | constant:<v> | linear')
    .option('--lambda <x>', 'constant GRL lambda (default 1)', num('--lambda'))
    .option('--lambda-schedule <name>', 'GRL lambda schedule: constant | dann | linear')
    .option('--selection <how>', 'last (default) | source-val')
    .option('--limit <n>', 'use at most n training samples: a seeded subset spread over the classes', num('--limit'))
    .option('--bad-images <mode>', 'image files that are empty, truncated or not images (every header is checked before step 1): fail (default, lists them all) | skip (leave them out, listed in the run folder)')
    .option('--framing <kind>', 'how every image is framed: resize (default, the whole image) | centre-crop | align (detect, 68 landmarks, eyes and mouth onto a template); recorded in model.json')
    .option('--dataset-plugin <module>', 'extra dataset plugin module (default or named export `datasetPlugin`); repeatable', collect)
    .option('--no-augment', 'resize only, no random crop / jitter / flip')
    .option('--plugin <name[:json]>', 'add a registered plugin, e.g. early-stopping:{"patience":5} (repeatable)', collect)
    .option('--no-console', 'no progress output')
    .option('--backend <name>', 'tfjs backend (default auto)')
    .option('--threads <n>', THREADS_HELP, parseThreads)
    .option('--json', 'print report.json to stdout')
    .action(async (opts: TrainOpts) => {
      checkTargetFlags(opts.target);
      const t = await loadTrainer(opts.backend ?? 'auto', opts.threads);
      let base: Record<string, unknown> = {};
      if (opts.resume) {
        const saved = t.readRunConfig(opts.resume);
        if (saved.stage !== 'dfd') throw new DfdError('E_CONFIG', `${opts.resume} is a '${saved.stage}' run; resume it with dfd train-eife --resume.`);
        base = { ...saved.config, out: opts.resume };
      } else if (opts.config) base = t.readConfigFile(opts.config);
      const gamma = opts.gamma?.startsWith('constant:') ? { name: 'constant', value: Number(opts.gamma.slice(9)) } : opts.gamma ? { name: opts.gamma } : undefined;
      const lambda = opts.lambdaSchedule ? { name: opts.lambdaSchedule, ...(opts.lambda !== undefined ? (opts.lambdaSchedule === 'dann' ? { max: opts.lambda } : {}) : {}) } : opts.lambda !== undefined ? { name: 'constant', value: opts.lambda } : undefined;
      const over = {
        source: opts.source,
        targets: opts.target,
        variant: opts.variant,
        eife: opts.eife,
        backbone: opts.backbone,
        freezeBackbone: opts.freezeBackbone,
        trunkCache: opts.trunkCache === false ? false : opts.trunkCacheFloat16 ? 'float16' : undefined,
        eifeStandardize: opts.eifeStandardize,
        baselines: opts.baseline,
        out: opts.resume ? undefined : opts.out,
        epochs: opts.epochs,
        seed: opts.seed,
        selection: opts.selection,
        model: { width: opts.width, inputSize: opts.inputSize },
        data: { batchSize: opts.batchSize, microBatch: opts.microBatch, limit: opts.limit, augment: opts.augment === false ? false : undefined, badImages: opts.badImages },
        optimizer: { lr: { heads: opts.lr, backbone: opts.backboneLr }, weightDecay: opts.weightDecay },
        schedule: { gamma, lambda, cosine: opts.tMax !== undefined ? { tMax: opts.tMax, etaMin: 0 } : undefined },
        plugins: opts.plugin?.map(parsePluginOption),
        datasetPlugins: opts.datasetPlugin,
        console: opts.console === false ? false : undefined,
        backend: opts.backend,
      };
      const config = t.mergeConfig(base, over);
      // --framing KIND replaces a config's framing of another kind (with that kind's defaults).
      if (opts.framing && (config.framing as { kind?: string } | undefined)?.kind !== opts.framing) config.framing = framingFromKind(opts.framing);
      // The composition root: the run's plugins (schedulers, console, metrics log, --plugin) come from here.
      const run = await t.createTrainer(config as never, { resume: Boolean(opts.resume), overwrite: Boolean(opts.overwrite), configFile: opts.resume ? `${opts.resume}/config.json` : opts.config, plugins: (c) => createDefaultPlugins(c) });
      const release = stopOnSigint((r) => run.trainer.requestStop(r));
      try {
        const { result, report } = await run.run();
        if (opts.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
        else process.stdout.write(`\n${t.resultsTable([{ label: report.variant, source: report.source, results: report.results, mean: report.mean }, ...(report.baselines ?? []).map((b) => ({ label: `${b.id} (off the shelf)`, source: '-', results: b.results, mean: b.mean }))])}\n\nrun folder: ${(config as { out: string }).out} (report.md, report.json, model/, checkpoints/)\n`);
        if (result.status === 'failed') throw new DfdError('E_TRAINING_FAILED', `training failed: ${result.reason}`);
        if (result.status === 'stopped') process.stderr.write(`dfd: stopped (${result.reason}); continue with: dfd train --resume ${(config as { out: string }).out}\n`);
      } finally {
        release();
      }
    });
}
