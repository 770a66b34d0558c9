import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { ensureBackend } from '@dfd/backends';
import { ConfigError, DfdError, TOKENS, type DependencyContainer, type DfdPlugin, type EvaluationResult } from '@dfd/core';
import { createLoader, evalTransform, limitSamples, trainTransform, type Dataset, type DatasetRegistry, type Sample, type Transform } from '@dfd/datasets';
// The Node entry registers the image decoder (sharp) for every dataset, also a custom plugin's.
import { createNodeDatasetRegistry, registerDatasetPluginModules } from '@dfd/datasets/node';
import { createDfdNet, createEife, type DfdNet, type Eife } from '@dfd/model';
import { loadModelDir, saveModelDir } from '@dfd/model/node';
import { modelFraming, setModelFraming } from '@dfd/model';
import { FsCheckpointStore, writeFileAtomic } from './checkpoint.js';
import { composeTrainer } from './compose.js';
import { eifeConfigSchema, resolveLearningRates, trainConfigSchema, validateConfig, type EifeConfig, type EifeConfigInput, type TrainConfig, type TrainConfigInput } from './config.js';
import { loaderBatchSource, type Batch, type BatchSource } from './data.js';
import { EvaluationFailedError, TrainingFailedError, TrainingSetupError } from './errors.js';
import { evaluate, evaluateHeads, meanAccuracy } from './evaluate.js';
import { writeRunReport, type RunReport } from './report.js';
import { prepareRunFolder, type RunLock } from './run-folder.js';
import { SKIPPED_IMAGES_FILE, screenImages, writeSkippedImages } from './images.js';
import { DfdTask, EifeTask, type EifeLike } from './task.js';
import { applyZooBackbone, evaluateBaselines, loadExtractors, loadZooBackbone } from './zoo.js';
import { standardizeExtractors, statsSample } from './eife-standardize.js';
import { isZooId, parseFraming, type Framing } from '@dfd/zoo';
import { frameDataset } from '@dfd/zoo/faces';
import type { LoopOptions, Trainer, TrainResult } from './trainer.js';

/** The dataset registry for Node: `@dfd/datasets/node`'s (synthetic and the file formats: folder, rafdb, fer2013...). */
export async function defaultDatasetRegistry(): Promise<DatasetRegistry> {
  return createNodeDatasetRegistry();
}

/**
 * Registers dataset plugin modules (config `datasetPlugins`, `--dataset-plugin`) into `registry`;
 * returns them with relative paths made absolute, as the run's config.json keeps them for --resume.
 */
async function addDatasetPlugins(registry: DatasetRegistry, modules: readonly string[]): Promise<string[]> {
  const absolute = modules.map((m) => (m.startsWith('.') ? resolve(m) : m));
  await registerDatasetPluginModules(registry, absolute);
  return absolute;
}

/** A screened dataset framed with the run's `framing` (the same bytes everywhere; see @dfd/zoo's frameDataset); framing warnings go to `notes`. */
async function framed<R extends { dataset: Dataset }>(screened: R, framing: Framing, notes: string[]): Promise<R> {
  if (framing.kind === 'resize') return screened;
  const dataset = await frameDataset(screened.dataset, framing);
  notes.push(...dataset.warnings.filter((w) => w.kind === 'framing').map((w) => w.message));
  return { ...screened, dataset };
}

/**
 * The plugins of a run, chosen by the caller (the composition root): a list, or a function of the
 * validated config (every default filled in, `out` absolute) returning the list. `@dfd/trainer`
 * imports no concrete plugin: the config's `schedule` (cosine, gamma, lambda), `console`, `jsonl`
 * and `plugins` sections become plugins only through the caller, normally
 * `(config) => createDefaultPlugins(config)` from `@dfd/cli/plugins` (what `dfd train` passes), or
 * `schedulerPlugins(config.schedule)` from `@dfd/plugin-schedulers` for the schedules alone.
 */
export type RunPlugins = DfdPlugin[] | ((config: TrainConfig | EifeConfig) => DfdPlugin[]);

/** What both stages accept besides the config. */
export interface RunOptions {
  /**
   * The run's plugins ({@link RunPlugins}). Without scheduler plugins the learning rates stay
   * at their base values and gamma/lambda are unset (a model with MI heads then fails at its
   * first step, saying so).
   */
  plugins?: RunPlugins;
  /** Where dataset specs are resolved (default {@link defaultDatasetRegistry}). */
  datasetRegistry?: DatasetRegistry;
  /** Continue from the run folder's latest checkpoint. */
  resume?: boolean;
  /** The config file the input came from (`--config`, or the run folder's config.json on resume): named in config errors. */
  configFile?: string;
  /** Start over in a folder holding a previous run (its config, checkpoints, model, reports and metrics are removed); without it such a folder is refused. */
  overwrite?: boolean;
  /** Parent DI container. */
  parent?: DependencyContainer;
}

/** A composed run: the trainer (to stop it, e.g. on SIGINT), its container, and `run()`. */
export interface ComposedRun<R> {
  trainer: Trainer;
  container: DependencyContainer;
  run(): Promise<R>;
}

/** Result of a stage-2 run. */
export interface DfdRunResult {
  result: TrainResult;
  report: RunReport;
  modelDir: string;
}

/** Result of a stage-1 run. */
export interface EifeRunResult {
  result: TrainResult;
  modelDir: string;
  /** Accuracy per factor on the dataset's test split (if any). */
  factorAccuracy: Record<string, number>;
}

/** Where a model folder's model.json lives: `dir` itself or `dir/model`. */
export function modelDirOf(dir: string): string {
  if (existsSync(join(dir, 'model.json'))) return dir;
  if (existsSync(join(dir, 'model', 'model.json'))) return join(dir, 'model');
  throw new ConfigError('model', `no model.json in ${dir} or ${join(dir, 'model')}; pass a folder written by 'dfd train' / 'dfd train-eife'.`);
}

/** `data.limit`: a seeded subset spread over the classes (never the first N of a class-sorted listing). */
function limitTraining(samples: Sample[], limit: number | undefined, seed: number, classOf?: (s: Sample) => number | undefined): Sample[] {
  return limitSamples(samples, limit, { seed, classOf }) as Sample[];
}

/**
 * The caller's plugins for the validated `config` ({@link RunPlugins}). A fixed list cannot honour
 * config `plugins: [{name}]` entries (they need a registry: the composition root's), so those
 * with a list are refused rather than ignored.
 */
function pluginsFor(config: TrainConfig | EifeConfig, o: RunOptions): DfdPlugin[] {
  if (typeof o.plugins === 'function') return o.plugins(config);
  if (config.plugins.length) {
    throw new ConfigError(
      'plugins',
      `the config names plugin(s) ${config.plugins.map((p) => p.name).join(', ')}, but the caller passed a fixed plugin list; pass plugins: (config) => createDefaultPlugins(config) from @dfd/cli/plugins (or your own function of the config) so that they are built from a registry.`,
    );
  }
  return o.plugins ?? [];
}

/**
 * What the config asks for that none of the run's plugins delivers, by the names of the plugins
 * that would (`console`, `jsonl-logger`, `lr-scheduler`): said as `warning` events when the run
 * starts, never ignored silently (a caller's fixed plugin list does not read the config).
 */
function unhonoured(config: TrainConfig | EifeConfig, plugins: readonly DfdPlugin[]): string[] {
  const names = new Set(plugins.map((p) => p.name));
  const wanted: Array<[boolean, string, string]> = [
    [config.console, 'console', 'console: true (progress on stderr)'],
    [config.jsonl, 'jsonl-logger', 'jsonl: true (metrics.jsonl in the run folder)'],
    [Boolean(config.schedule.cosine), 'lr-scheduler', 'schedule.cosine (cosine-annealed learning rates; without it they stay at their base values)'],
  ];
  return wanted
    .filter(([on, name]) => on && !names.has(name))
    .map(([, name, what]) => `the config asks for ${what}, but no plugin named '${name}' is in this run; pass plugins: (config) => createDefaultPlugins(config) (@dfd/cli/plugins) or a plugin of that name.`);
}

/**
 * The loop options of a validated config, the one mapping both stages use: the optimizer section
 * (learning rates after the pretrained-backbone rule), the epochs and the micro-batch.
 */
export function loopOptionsFrom(config: TrainConfig | EifeConfig, lr: { backbone: number; heads: number }): Pick<LoopOptions, 'epochs' | 'lr' | 'weightDecay' | 'beta1' | 'beta2' | 'eps' | 'microBatch'> {
  return {
    epochs: config.epochs,
    lr,
    weightDecay: config.optimizer.weightDecay,
    beta1: config.optimizer.beta1,
    beta2: config.optimizer.beta2,
    eps: config.optimizer.eps,
    microBatch: config.data.microBatch,
  };
}

/**
 * The frozen-trunk feature cache of a stage-2 run (DfdTask `trunkCache`): on by default when the
 * backbone is frozen and a sample has few views (no augmentation: one; `scale: [1, 1]` and
 * `jitter: 0` leave the flip: two), off with `trunkCache: false` or under the paper's augmentation
 * (every random crop is a new view; the trunk then runs on every image, as without the cache).
 */
export function trunkCacheFor(c: TrainConfig): false | { precision: 'float32' | 'float16'; maxViewsPerSample: number } {
  const d = c.data;
  const fewViews = !d.augment || (d.scale[0] === 1 && d.scale[1] === 1 && d.jitter === 0);
  if (!c.freezeBackbone || c.trunkCache === false || !fewViews) return false;
  return { precision: c.trunkCache === 'float16' ? 'float16' : 'float32', maxViewsPerSample: d.augment && d.flip > 0 ? 2 : 1 };
}

function trainingTransform(c: TrainConfig | EifeConfig, size: number) {
  const d = c.data;
  return d.augment ? trainTransform({ size, scale: d.scale, brightness: d.jitter, contrast: d.jitter, saturation: d.jitter, hue: d.jitter, flip: d.flip }) : evalTransform({ size });
}

/**
 * Locks the run folder (see run-folder.ts) and adds a plugin that reports what that did (a stale
 * lock taken over, a previous run overwritten) as `warning` events when the run starts.
 */
function lockRunFolder(out: string, options: RunOptions, skippedImages: Array<{ file: string }> = [], extraNotes: string[] = []): { lock: RunLock; reporter: DfdPlugin } {
  const notes: string[] = [...(skippedImages.length ? [`--bad-images skip: left out ${skippedImages.length} unreadable image file(s), listed in ${join(out, SKIPPED_IMAGES_FILE)}`] : []), ...extraNotes];
  const lock = prepareRunFolder(out, { resume: options.resume, overwrite: options.overwrite, onWarning: (m) => notes.push(m) });
  const reporter: DfdPlugin = { name: 'run-folder', setup: (ctx) => ctx.on('runStart', () => notes.forEach((message) => ctx.bus.emit({ type: 'warning', source: 'run-folder', message }))) };
  return { lock, reporter };
}

/** Runs `fn`; releases `lock` if it throws. */
function releaseOnThrow<T>(lock: RunLock, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** What config errors name: the file, when the config came from one. */
function configOrigin(options: RunOptions): string {
  return options.configFile ? `config (${options.configFile} with the command-line options)` : 'config';
}

/** Stage-1 extractors given to a variant that does not use them: said, not silently ignored. */
function ignoredEife(config: TrainConfig): string[] {
  return config.variant !== 'att+eifp' && config.eife.length ? [`eife: ${config.eife.length} extractor(s) given (--eife ${config.eife.join(', ')}) but variant ${config.variant} uses none; only att+eifp has MI heads. They were not loaded.`] : [];
}

/** Why a dataset has no training samples: its splits and the warnings of its plugin (unknown classes skipped...). */
function noTrainingSplit(spec: string, ds: { splits: Record<string, unknown[] | undefined>; warnings: Array<{ message: string }> }): TrainingSetupError {
  const splits = Object.entries(ds.splits).filter(([, v]) => v?.length).map(([k, v]) => `${k} (${v!.length})`);
  const why = [splits.length ? `it has ${splits.join(', ')}` : 'it has no samples at all', ...ds.warnings.map((w) => w.message)].join('; ');
  return new TrainingSetupError(`source ${spec} has no training split: ${why}.`);
}

/** A failed run writes no model and no report: the previous ones (if any) stay as they were. */
function failedRun(result: TrainResult, out: string): TrainingFailedError {
  return new TrainingFailedError(`training failed: ${result.reason ?? 'unknown reason'} (nothing in ${join(out, 'model')} or the report was replaced)`, { ...result, status: 'failed' });
}

function saveResolvedConfig(out: string, stage: string, config: unknown): void {
  mkdirSync(out, { recursive: true });
  // Atomic: a full disk leaves no empty config.json that a later --resume cannot read.
  writeFileAtomic(join(out, 'config.json'), JSON.stringify({ stage, ...(config as object) }, null, 2) + '\n');
}

/** Config fields a resumed run may set differently from the run's config.json: where and how it prints and computes, not what it trains. */
const RESUME_FREE = new Set(['out', 'console', 'jsonl', 'backend']);

/** The leaves of a config as `path -> JSON`, for {@link resumeConflicts}. */
function configLeaves(v: unknown, path: string, into: Map<string, string>): Map<string, string> {
  if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) if (x !== undefined) configLeaves(x, path ? `${path}.${k}` : k, into);
  } else into.set(path, JSON.stringify(v));
  return into;
}

/**
 * The fields where `current` (the config a `--resume` was given: config.json with the command
 * line's options) differs from the run's config.json, each as `field: old -> new`. A resumed run
 * continues the checkpointed run, so everything but {@link RESUME_FREE} must be the same: else
 * config.json would keep one value while the report claimed the other for the whole run.
 */
function resumeConflicts<T>(out: string, stage: 'dfd' | 'eife', current: T, validateSaved: (saved: Record<string, unknown>) => T): string[] {
  const saved = readRunConfig(out);
  if (saved.stage !== stage) throw new ConfigError('--resume', `${join(out, 'config.json')} is a '${saved.stage}' run; resume it with ${saved.stage === 'eife' ? 'dfd train-eife' : 'dfd train'} --resume.`);
  const before = configLeaves(validateSaved({ ...saved.config, out }), '', new Map());
  const after = configLeaves(current, '', new Map());
  const conflicts: string[] = [];
  for (const key of new Set([...before.keys(), ...after.keys()])) {
    if (RESUME_FREE.has(key.split('.')[0]!)) continue;
    const a = before.get(key) ?? '(unset)';
    const b = after.get(key) ?? '(unset)';
    if (a !== b) conflicts.push(`${key}: ${a} -> ${b}`);
  }
  return conflicts.sort();
}

/** Refuses a `--resume` whose options differ from the run's config.json, listing every field (old -> new). */
function checkResumeConfig<T>(out: string, stage: 'dfd' | 'eife', current: T, validateSaved: (saved: Record<string, unknown>) => T): void {
  const conflicts = resumeConflicts(out, stage, current, validateSaved);
  if (!conflicts.length) return;
  const field = conflicts[0]!.slice(0, conflicts[0]!.indexOf(':'));
  throw new ConfigError(
    field,
    `--resume ${out}: the run was started with other settings than the ones given now (its config.json -> now):\n${conflicts.map((c) => `  ${c}`).join('\n')}\n` +
      `A resumed run continues the checkpointed one with its own settings: drop these options, or start a new run (another --out, or --overwrite) with them.`,
  );
}

/** Read the config a run folder was started with (for `--resume`). */
export function readRunConfig(runDir: string): { stage: 'dfd' | 'eife'; config: Record<string, unknown> } {
  const path = join(runDir, 'config.json');
  if (!existsSync(path)) throw new ConfigError('--resume', `${path} not found; --resume needs a folder written by 'dfd train' or 'dfd train-eife'.`);
  const unusable = (why: string) =>
    new ConfigError(
      '--resume',
      `${path} ${why}, so the run cannot be continued from it. ${existsSync(join(runDir, 'checkpoints')) ? 'Its checkpoints need the config they were trained with: start the run again' : 'No training was checkpointed there: start the run again'} with the same options and --out ${runDir} --overwrite.`,
    );
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw unusable(`cannot be read (${(err as Error).message})`);
  }
  if (!text.trim()) throw unusable('is empty (a write that was cut off)');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw unusable(`is not valid JSON (${(err as Error).message})`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw unusable('does not hold a JSON object');
  const { stage, ...config } = parsed as { stage?: unknown } & Record<string, unknown>;
  if (stage !== 'dfd' && stage !== 'eife') throw unusable(`has stage ${JSON.stringify(stage) ?? 'missing'} (expected "dfd" or "eife")`);
  return { stage, config };
}

/** Copy the efe.* weights (and BN statistics) of a pretrained model folder into `model`. */
export async function loadPretrainedBackbone(model: DfdNet | Eife, dir: string): Promise<number> {
  const source = await loadModelDir(modelDirOf(dir));
  const have = new Map([...source.namedParameters(), ...source.namedBuffers()]);
  let n = 0;
  try {
    for (const [name, v] of [...model.namedParameters(), ...model.namedBuffers()]) {
      if (!name.startsWith('efe.')) continue;
      const w = have.get(name);
      if (!w) throw new TrainingSetupError(`pretrained backbone ${dir} has no '${name}'; it was built with another layout or width (model config ${JSON.stringify(model.config)}).`);
      if (w.shape.join('x') !== v.shape.join('x')) throw new TrainingSetupError(`pretrained '${name}' is ${w.shape.join('x')}, the model expects ${v.shape.join('x')}; use the same --width/layout.`);
      v.assign(w);
      n++;
    }
  } finally {
    source.dispose();
  }
  return n;
}

/** Evaluation batches of `samples` (resize + normalise, in order); with `factors`, their attribute labels too. */
export function evalSource(samples: Sample[], size: number, batchSize: number, factors?: string[], transform: Transform = evalTransform({ size })): BatchSource {
  const make = () => createLoader(samples, { batchSize, transform, shuffle: false, prefetch: 1, ...(factors ? { factors } : {}) });
  const first = make();
  return {
    stepsPerEpoch: first.length,
    size: first.size,
    // A fresh loader per pass: evaluation repeats the same ordered pass every time it is asked.
    async *batches() {
      yield* make();
    },
  };
}

/** Evaluate a classifier on named target specs (their test split; the whole set if it has none). */
export async function evaluateTargets(
  model: { forward(x: tf.Tensor4D, o: { training: boolean }): { logits: tf.Tensor2D } },
  targets: Array<{ name: string; spec: string }>,
  options: {
    inputSize: number;
    batchSize?: number;
    datasetRegistry?: DatasetRegistry;
    /** Targets already resolved (and their image headers checked, and framed), by spec. */
    datasets?: ReadonlyMap<string, Dataset>;
    /** Framing of the targets this resolves itself (default resize). */
    framing?: Framing;
    /** Per-image transform (default: resize to inputSize and ImageNet normalisation, as in training). */
    transform?: Transform;
  },
): Promise<EvaluationResult[]> {
  const registry = options.datasetRegistry ?? (await defaultDatasetRegistry());
  const results: EvaluationResult[] = [];
  for (const t of targets) {
    const ds = options.datasets?.get(t.spec) ?? (await frameDataset(await registry.resolve(t.spec, { allowEmpty: true }), options.framing ?? { kind: 'resize' }));
    const samples = ds.splits.test ?? [...(ds.splits.train ?? []), ...(ds.splits.val ?? [])];
    if (!samples.length) throw new TrainingSetupError(`target '${t.name}' (${t.spec}) has no samples.`);
    results.push(await evaluate(model, evalSource(samples, options.inputSize, options.batchSize ?? 128, undefined, options.transform), t.name));
  }
  return results;
}

/**
 * Stage 2 composed from a config (the same thing `dfd train` runs): resolves the datasets, loads
 * the frozen EIFE extractors, builds DFD-Net, and composes the {@link Trainer} in a child DI
 * container. `run()` trains, saves the model, evaluates every target and writes the reports.
 */
export async function createTrainer(input: TrainConfigInput, options: RunOptions = {}): Promise<ComposedRun<DfdRunResult>> {
  const config = validateConfig(trainConfigSchema, input, configOrigin(options));
  await ensureBackend(config.backend);
  const out = resolve(config.out);
  const datasetRegistry = options.datasetRegistry ?? (await defaultDatasetRegistry());
  config.datasetPlugins = await addDatasetPlugins(datasetRegistry, config.datasetPlugins);
  // Every image file's header is checked before step 1: all bad files are reported at once (or left out with --bad-images skip).
  const framingNotes: string[] = [];
  const { dataset: source, skipped: skippedImages } = await framed(await screenImages(await datasetRegistry.resolve(config.source, { allowEmpty: true }), config.data.badImages, config.source), config.framing, framingNotes);
  const train = limitTraining(source.splits.train ?? [], config.data.limit, config.seed);
  if (!train.length) throw noTrainingSplit(config.source, source);
  if (!source.hasExpression) throw new TrainingSetupError(`source ${config.source} has no expression labels.`);
  // The targets' image files too, before step 1: a bad target image is found now, not after training.
  const targetSets = new Map<string, Dataset>();
  for (const t of config.targets) {
    if (targetSets.has(t.spec)) continue;
    const screened = await framed(await screenImages(await datasetRegistry.resolve(t.spec, { allowEmpty: true }), config.data.badImages, `target ${t.name} (${t.spec})`), config.framing, framingNotes);
    targetSets.set(t.spec, screened.dataset);
    skippedImages.push(...screened.skipped);
  }
  applyZooBackbone(config);
  let eifes: Array<EifeLike & { embedDim: number }> = [];
  if (config.variant === 'att+eifp') {
    if (!config.eife.length) throw new ConfigError('eife', "variant att+eifp needs at least one stage-1 extractor (--eife DIR from 'dfd train-eife', or a zoo id such as faceapi:recognition).");
    eifes = await loadExtractors(config.eife, async (dir) => {
      const m = await loadModelDir(modelDirOf(dir));
      if (!('embedDim' in m) || (m as { kind?: string }).kind === 'dfd-net') throw new ConfigError('eife', `${dir} is not an EIFE model folder.`);
      return m as Eife;
    });
    if (config.eifeStandardize) eifes = await standardizeExtractors(eifes, evalSource(statsSample(train), config.model.inputSize, config.data.evalBatchSize));
  }
  const model = createDfdNet({
    variant: config.variant,
    width: config.model.width,
    inputSize: config.model.inputSize,
    layout: config.model.layout,
    miDims: eifes.length ? eifes.map((e) => e.embedDim) : undefined,
    ...(config.model.miHidden ? { miHidden: config.model.miHidden } : {}),
    numClasses: 7,
    seed: config.seed,
  });
  if (config.backbone) await (isZooId(config.backbone) ? loadZooBackbone(model, config.backbone) : loadPretrainedBackbone(model, config.backbone));
  model.setBackboneFrozen(config.freezeBackbone);
  const loader = createLoader(train, {
    batchSize: config.data.batchSize,
    transform: trainingTransform(config, config.model.inputSize),
    seed: config.seed,
    shuffle: true,
    balanced: config.data.balanced,
    prefetch: config.data.prefetch,
    cache: config.data.cache,
    dropLast: train.length >= config.data.batchSize,
  });
  let validation: BatchSource | null = null;
  if (config.selection === 'source-val') {
    const val = source.splits.val;
    if (!val?.length) throw new ConfigError('selection', `source-val selection needs a val split in ${config.source}; use selection: last.`);
    validation = evalSource(val, config.model.inputSize, config.data.evalBatchSize);
  }
  if (options.resume) {
    checkResumeConfig(out, 'dfd', config, (saved) => {
      const c = validateConfig(trainConfigSchema, saved, `${join(out, 'config.json')}`);
      applyZooBackbone(c);
      return c;
    });
  }
  const lr = resolveLearningRates(config.optimizer, Boolean(config.backbone));
  const resolvedConfig = { ...config, optimizer: { ...config.optimizer, lr } };
  const plugins = pluginsFor({ ...config, out }, options);
  const { lock, reporter } = lockRunFolder(out, options, skippedImages, [...ignoredEife(config), ...unhonoured(config, plugins), ...framingNotes]);
  releaseOnThrow(lock, () => writeSkippedImages(out, skippedImages));
  if (!options.resume) releaseOnThrow(lock, () => saveResolvedConfig(out, 'dfd', config));
  const best = config.selection === 'source-val' ? new BestWeights(model, join(out, BEST_DIR)) : null;
  const modelDir = join(out, 'model');
  // After the last epoch and before runEnd, while plugins listen: the selected weights, the saved
  // model and the evaluations, each emitted as an `evaluation` event (split 'target': every
  // target; split 'source-test': the source's test split).
  let evaluated: { results: EvaluationResult[]; sourceTest?: EvaluationResult } | undefined;
  const evaluateAtEnd = async (result: TrainResult): Promise<void> => {
    if (best && (await best.restore())) result.reason = `${result.reason ? `${result.reason}; ` : ''}weights of epoch ${best.epoch} (best source val accuracy ${best.value.toFixed(4)})`;
    setModelFraming(model, config.framing);
    await saveModelDir(model, modelDir);
    let results: EvaluationResult[];
    let sourceTest: EvaluationResult | undefined;
    try {
      results = await evaluateTargets(model, config.targets, { inputSize: config.model.inputSize, batchSize: config.data.evalBatchSize, datasetRegistry, datasets: targetSets });
      sourceTest = source.splits.test?.length ? await evaluate(model, evalSource(source.splits.test, config.model.inputSize, config.data.evalBatchSize), 'source-test') : undefined;
    } catch (err) {
      throw new EvaluationFailedError(
        `training ended (${result.epochsDone} epoch(s)) and the model was written to ${modelDir}, but the evaluation failed: ${err instanceof Error ? err.message : String(err)}. ` +
          `Fix what it names, then run 'dfd train --resume ${out}': it trains no epoch again, it re-runs the evaluation and writes the report.`,
        modelDir,
        { cause: err },
      );
    }
    const bus = container.resolve(TOKENS.Bus);
    if (results.length) bus.emit({ type: 'evaluation', epoch: result.epochsDone, split: 'target', results, mean: meanAccuracy(results) });
    if (sourceTest) bus.emit({ type: 'evaluation', epoch: result.epochsDone, split: 'source-test', results: [sourceTest], mean: sourceTest.accuracy });
    evaluated = { results, ...(sourceTest ? { sourceTest } : {}) };
  };
  const { trainer, container } = releaseOnThrow(lock, () => composeTrainer({
    // Without augmentation a sample's image never changes: its frozen EIFE targets are computed once.
    // A frozen trunk's features depend on the image only: computed once per view (docs/training.md).
    task: new DfdTask(model, eifes, 1, { cacheTargets: !config.data.augment, trunkCache: trunkCacheFor(config) }),
    data: loaderBatchSource(loader),
    validation,
    options: {
      ...loopOptionsFrom(config, lr),
      runId: `${config.variant}@${source.name}`,
      resume: options.resume ?? false,
      config: resolvedConfig as unknown as Record<string, unknown>,
      beforeEnd: evaluateAtEnd,
    },
    checkpoints: new FsCheckpointStore(out, config.keepCheckpoints),
    plugins: [...plugins, reporter, ...(best ? [best] : [])],
    seed: config.seed,
    parent: options.parent,
  }));
  return {
    trainer,
    container,
    async run() {
      const t0 = Date.now();
      try {
        const result = await trainer.run();
        if (result.status === 'failed') throw failedRun(result, out);
        if (!evaluated) await evaluateAtEnd(result);
        const { results, sourceTest } = evaluated!;
        const baselines = await evaluateBaselines(config.baselines, config.targets, source.splits.test, { batchSize: config.data.evalBatchSize, datasetRegistry, framing: config.framing });
        const report: RunReport = {
          stage: 'dfd',
          variant: config.variant,
          source: source.name,
          selection: config.selection,
          epochsDone: result.epochsDone,
          status: result.status,
          results,
          mean: meanAccuracy(results),
          ...(sourceTest ? { sourceTest } : {}),
          ...(baselines.length ? { baselines } : {}),
          ...(skippedImages.length ? { skippedImages: { count: skippedImages.length, list: SKIPPED_IMAGES_FILE } } : {}),
          history: result.history,
          config: resolvedConfig as unknown as Record<string, unknown>,
          seconds: (Date.now() - t0) / 1000,
        };
        await writeRunReport(out, report);
        return { result, report, modelDir };
      } finally {
        lock.release();
        model.dispose();
        for (const e of eifes) e.dispose();
      }
    },
  };
}

/** Where selection source-val keeps the best epoch's weights, inside the run directory. */
export const BEST_DIR = 'best-source-val';

/**
 * Keeps the weights of the epoch with the best source-validation accuracy (selection:
 * source-val) on disk, in `<out>/best-source-val/` (the model-directory format, written
 * atomically), so that a resumed run still reports them: the plugin state in the checkpoint
 * says which epoch was best, the directory holds its weights.
 */
class BestWeights implements DfdPlugin {
  readonly name = 'best-source-val';
  value = -Infinity;
  epoch = 0;

  constructor(
    private readonly model: DfdNet,
    private readonly dir: string,
  ) {}

  setup(ctx: Parameters<DfdPlugin['setup']>[0]): void {
    // The trainer awaits this handler (it drains the bus after epochEnd) before it writes the
    // epoch's checkpoint: the model still holds this epoch's weights, and the checkpoint never
    // names a best epoch whose weights are not on disk yet.
    ctx.on('epochEnd', async (e) => {
      const v = e.metrics.val_accuracy;
      if (v === undefined || !(v > this.value)) return;
      await saveModelDir(this.model, this.dir);
      this.value = v;
      this.epoch = e.epoch;
    });
  }

  getState() {
    return { value: this.value, epoch: this.epoch };
  }

  setState(s: { value: number; epoch: number }) {
    this.value = s.value ?? -Infinity;
    this.epoch = s.epoch;
  }

  /** Puts the best epoch's weights (and BN statistics) into the model; false when no epoch was evaluated. */
  async restore(): Promise<boolean> {
    if (this.epoch === 0) return false;
    if (!existsSync(join(this.dir, 'model.json'))) {
      throw new TrainingSetupError(`selection source-val: epoch ${this.epoch} was the best, but its weights are missing from ${this.dir}; the run directory is incomplete (re-run without --resume, or use selection: last).`);
    }
    const saved = await loadModelDir(this.dir);
    try {
      const weights = new Map([...saved.namedParameters(), ...saved.namedBuffers()]);
      for (const [n, t] of [...this.model.namedParameters(), ...this.model.namedBuffers()]) {
        const w = weights.get(n);
        if (!w) throw new TrainingSetupError(`selection source-val: ${this.dir} has no weight '${n}'; it belongs to another model.`);
        t.assign(w);
      }
    } finally {
      saved.dispose();
    }
    return true;
  }
}

/** Stage 1 composed from a config (`dfd train-eife`): one EIFE with a head per factor, summed CE. */
export async function createEifeTrainer(input: EifeConfigInput, options: RunOptions = {}): Promise<ComposedRun<EifeRunResult>> {
  const config = validateConfig(eifeConfigSchema, input, configOrigin(options));
  await ensureBackend(config.backend);
  const out = resolve(config.out);
  const datasetRegistry = options.datasetRegistry ?? (await defaultDatasetRegistry());
  config.datasetPlugins = await addDatasetPlugins(datasetRegistry, config.datasetPlugins);
  const framingNotes: string[] = [];
  const { dataset: ds, skipped: skippedImages } = await framed(await screenImages(await datasetRegistry.resolve(config.dataset, { allowEmpty: true }), config.data.badImages, config.dataset), config.framing, framingNotes);
  const known = ds.factors ?? [];
  const factors = config.factors.map((name) => {
    const f = known.find((k) => k.name === name);
    if (!f) throw new ConfigError('factors', `${config.dataset} has no factor '${name}'; it has ${known.map((k) => k.name).join(', ') || '(none)'}.`);
    return { name: f.name, classes: f.classes };
  });
  const train = limitTraining(ds.splits.train ?? [], config.data.limit, config.seed, (s) => s.factors?.[config.factors[0]!]);
  if (!train.length) throw noTrainingSplit(config.dataset, ds);
  const model = createEife({ factors, width: config.model.width, inputSize: config.model.inputSize, layout: config.model.layout, embedDim: config.model.embedDim, seed: config.seed });
  const loader = createLoader(train, {
    batchSize: config.data.batchSize,
    transform: trainingTransform(config, config.model.inputSize),
    seed: config.seed,
    prefetch: config.data.prefetch,
    cache: config.data.cache,
    factors: config.factors,
    dropLast: train.length >= config.data.batchSize,
  });
  if (options.resume) checkResumeConfig(out, 'eife', config, (saved) => validateConfig(eifeConfigSchema, saved, `${join(out, 'config.json')}`));
  const lr = resolveLearningRates(config.optimizer, false);
  const plugins = pluginsFor({ ...config, out }, options);
  const { lock, reporter } = lockRunFolder(out, options, skippedImages, [...unhonoured(config, plugins), ...framingNotes]);
  releaseOnThrow(lock, () => writeSkippedImages(out, skippedImages));
  if (!options.resume) releaseOnThrow(lock, () => saveResolvedConfig(out, 'eife', config));
  const { trainer, container } = releaseOnThrow(lock, () => composeTrainer({
    task: new EifeTask(model, config.factors),
    data: loaderBatchSource(loader),
    options: {
      ...loopOptionsFrom(config, lr),
      runId: `eife[${config.factors.join(',')}]@${ds.name}`,
      resume: options.resume ?? false,
      config: { ...config, optimizer: { ...config.optimizer, lr } } as unknown as Record<string, unknown>,
    },
    checkpoints: new FsCheckpointStore(out, config.keepCheckpoints),
    plugins: [...plugins, reporter],
    seed: config.seed,
    parent: options.parent,
  }));
  return {
    trainer,
    container,
    async run() {
      try {
        const result = await trainer.run();
        if (result.status === 'failed') throw failedRun(result, out);
        const modelDir = join(out, 'model');
        setModelFraming(model, config.framing);
        await saveModelDir(model, modelDir);
        const factorAccuracy: Record<string, number> = {};
        const test = ds.splits.test;
        if (test?.length) {
          const heads = factors.map((f) => ({ target: f.name, numClasses: f.classes, logits: (o: ReturnType<Eife['forward']>) => o.logits[f.name]!, labels: (b: Batch) => b.factors?.[f.name] }));
          for (const r of await evaluateHeads(model, evalSource(test, config.model.inputSize, config.data.evalBatchSize, config.factors), heads)) factorAccuracy[r.target] = r.accuracy;
        }
        writeFileAtomic(join(out, 'report.json'), JSON.stringify({ stage: 'eife', dataset: ds.name, factors, status: result.status, epochsDone: result.epochsDone, factorAccuracy, history: result.history, ...(skippedImages.length ? { skippedImages: { count: skippedImages.length, list: SKIPPED_IMAGES_FILE } } : {}) }, null, 2) + '\n');
        return { result, modelDir, factorAccuracy };
      } finally {
        lock.release();
        model.dispose();
      }
    },
  };
}

/** Options of {@link evaluateModelDir}. */
export interface EvaluateModelDirOptions {
  batchSize?: number;
  /** Where target specs are resolved (default {@link defaultDatasetRegistry}). */
  datasetRegistry?: DatasetRegistry;
  /** tfjs backend (default `auto`: the active one, else the fastest that works; see `ensureBackend`). */
  backend?: string;
  /** Dataset plugin modules to register first (as `dfd eval --dataset-plugin`). */
  datasetPlugins?: string[];
  /** Framing of the targets (default: the one the model's model.json records, else resize). */
  framing?: Framing;
}

/**
 * Evaluate a saved DFD-Net folder on targets (the `dfd eval` command). Targets are written as in
 * a config: `'NAME=SPEC'` strings, `{name, spec}` objects, or a `{NAME: SPEC}` map.
 */
export async function evaluateModelDir(dir: string, targets: TrainConfigInput['targets'], options: EvaluateModelDirOptions = {}): Promise<{ results: EvaluationResult[]; mean: number; config: unknown; framing: Framing }> {
  const parsed = validateConfig(trainConfigSchema.shape.targets, targets ?? [], 'targets');
  if (!parsed.length) throw new ConfigError('targets', "evaluateModelDir needs at least one target, e.g. 'wild=synthetic:wild'.");
  await ensureBackend(options.backend ?? 'auto');
  const model = await loadModelDir(modelDirOf(dir));
  try {
    if (!('classifier' in model)) throw new DfdError('E_MODEL_KIND', `${dir} holds a ${(model as { kind?: string }).kind ?? 'non-classifier'} model; dfd eval needs a DFD-Net (from dfd train).`);
    const net = model as DfdNet;
    const datasetRegistry = options.datasetRegistry ?? (await defaultDatasetRegistry());
    await addDatasetPlugins(datasetRegistry, options.datasetPlugins ?? []);
    const framing = options.framing ?? parseFraming(modelFraming(net), `${dir} model.json framing`);
    const results = await evaluateTargets(net, parsed, { inputSize: net.config.inputSize, batchSize: options.batchSize, datasetRegistry, framing });
    return { results, mean: meanAccuracy(results), config: net.config, framing };
  } finally {
    model.dispose();
  }
}

