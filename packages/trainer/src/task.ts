import * as tf from '@tensorflow/tfjs-core';
import { eifeLoss, miLoss } from '@dfd/mip';
import { crossEntropy, correctCount } from './losses.js';
import type { Batch } from './data.js';
import { TrainingSetupError } from './errors.js';
import { TrunkCache, type TrunkCacheOptions } from './trunk-cache.js';

/** What the trainer needs from a model (the shape of @dfd/backbone's `Module`). */
export interface TrainableModule {
  namedParameters(): Array<[string, tf.Variable]>;
  /** The parameters the optimizer updates, when not all of them (a frozen backbone); default all. */
  trainableParameters?(): Array<[string, tf.Variable]>;
  namedBuffers(): Array<[string, tf.Variable]>;
  dispose(): void;
}

/** The DFD-Net surface the trainer uses (see @dfd/model `createDfdNet`). */
export interface DfdNetLike extends TrainableModule {
  forward(x: tf.Tensor4D, options: { training: boolean }): { logits: tf.Tensor2D; attOut?: tf.Tensor2D; miPredictions?: tf.Tensor2D[] };
  setLambda?(lambda: number): void;
  /** Whether the backbone is frozen (`setBackboneFrozen`): only then may trunk features be cached. */
  readonly isBackboneFrozen?: boolean;
  /** What the heads read from the trunk (see @dfd/model `DfdNet.trunkFeatures`). */
  trunkFeatures?(x: tf.Tensor4D, options: { training: boolean }): tf.Tensor[];
  /** The heads on {@link trunkFeatures}' output; equal to `forward` when the backbone is frozen. */
  forwardFromTrunk?(trunk: readonly tf.Tensor[], options: { training: boolean }): { logits: tf.Tensor2D; attOut?: tf.Tensor2D; miPredictions?: tf.Tensor2D[] };
}

/** The EIFE surface the trainer uses (see @dfd/model `createEife`). */
export interface EifeLike extends TrainableModule {
  forward(x: tf.Tensor4D, options: { training: boolean }): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> };
}

/**
 * The controls of the current step, as the plugins' `beforeStep` hooks set them (see
 * `StepControls` in @dfd/core); p = optimizer steps done before this step / total steps. A
 * control no plugin set is undefined: a task that needs it throws a {@link TrainingSetupError}.
 */
export interface StepContext {
  p: number;
  gamma?: number;
  lambda?: number;
}

/** Loss of one batch: tensors made inside the gradient tape. */
export interface TaskLoss {
  total: tf.Scalar;
  parts: Record<string, tf.Scalar>;
  /** Correctly classified samples (for the running accuracy). */
  correct?: tf.Scalar;
  /** Samples that count for accuracy. */
  count: number;
}

/**
 * One training stage: which model trains and what its loss is. The trainer owns everything else
 * (optimizer, schedules, checkpoints, events), so stage 1 (EIFE) and stage 2 (DFD-Net) share it.
 */
export interface TrainingTask {
  readonly stage: string;
  readonly model: TrainableModule;
  /** Parameter group of a parameter (`backbone` for efe.*, `heads` for the rest by default). */
  groupOf?(name: string): string;
  /** Tensors computed outside the gradient tape for this batch (e.g. frozen EIFE targets); disposed by the trainer. */
  prepare?(batch: Batch): tf.Tensor[];
  /** The loss, computed inside the tape. */
  loss(batch: Batch, prepared: tf.Tensor[], ctx: StepContext): TaskLoss;
  /** Called before each step with the step's controls (DfdTask sets the GRL lambda). */
  beforeStep?(ctx: StepContext): void;
}

/** Default grouping: the EFE backbone apart from everything else (METHOD.md learning rates). */
export function defaultGroupOf(name: string): string {
  return name.startsWith('efe.') ? 'backbone' : 'heads';
}

/** Options of {@link DfdTask}. */
export interface DfdTaskOptions {
  /**
   * Compute each sample's EIFE targets d_k once and reuse them (keyed by sample id). Exact only
   * when a sample's image is the same every epoch (no augmentation); the trainer's run sets it
   * then, and it spares the frozen extractors' forward pass in every epoch after the first.
   */
  cacheTargets?: boolean;
  /**
   * With a frozen backbone, compute each sample view's trunk features (what fusion and the heads
   * read) once and reuse them every epoch ({@link TrunkCache}: keyed by sample id and a hash of
   * the image, so exact under any augmentation; views past `maxViewsPerSample` are recomputed).
   * `true` = float32, the exact default. Ignored when the backbone is not frozen or batches have no ids.
   */
  trunkCache?: boolean | TrunkCacheOptions;
}

/**
 * Stage 2: L = L_cls + gamma * L_MI (Eq. 10) with @dfd/mip's `miLoss` (Eq. 8: sum_k smoothL1(d^_k,
 * d_k)) and d_k from the frozen extractors in inference mode, outside the tape (so no gradient
 * reaches them). gamma and the GRL lambda are the step's controls, set by scheduler plugins
 * (`@dfd/plugin-schedulers`: gamma(p) of Eq. 11, lambda 1); a model with MI heads and a step
 * where no plugin set them is a {@link TrainingSetupError}.
 */
export class DfdTask implements TrainingTask {
  readonly stage = 'dfd';

  /** Per extractor: sample id -> d_k, when {@link DfdTaskOptions.cacheTargets} is on. */
  private readonly cache: Array<Map<string, Float32Array>>;

  constructor(
    readonly model: DfdNetLike,
    /** Frozen stage-1 extractors, in the order of the model's MI heads. */
    readonly extractors: EifeLike[] = [],
    readonly smoothL1Beta = 1,
    readonly options: DfdTaskOptions = {},
  ) {
    this.cache = extractors.map(() => new Map());
    const t = options.trunkCache;
    this.trunk = t ? new TrunkCache(t === true ? {} : t) : null;
  }

  /** The frozen-trunk feature cache, when {@link DfdTaskOptions.trunkCache} is on. */
  readonly trunk: TrunkCache | null;

  /** Whether this batch's trunk features come from {@link trunk}. */
  private usesTrunkCache(batch: Batch): boolean {
    const m = this.model;
    return Boolean(this.trunk && batch.ids && m.isBackboneFrozen && m.trunkFeatures && m.forwardFromTrunk);
  }

  groupOf(name: string): string {
    return defaultGroupOf(name);
  }

  beforeStep(ctx: StepContext): void {
    if (ctx.lambda === undefined) {
      if (this.extractors.length > 0) throw new TrainingSetupError(missingControl('lambda', 'the GRL coefficient'));
      return;
    }
    this.model.setLambda?.(ctx.lambda);
  }

  /** The EIFE targets d_k, then (with the trunk cache) the batch's trunk features. */
  prepare(batch: Batch): tf.Tensor[] {
    const targets = this.targets(batch);
    if (!this.usesTrunkCache(batch)) return targets;
    try {
      const m = this.model;
      return [...targets, ...this.trunk!.features(batch.images, batch.ids!, (x) => m.trunkFeatures!(x, { training: false }))];
    } catch (e) {
      tf.dispose(targets);
      throw e;
    }
  }

  private targets(batch: Batch): tf.Tensor[] {
    const ids = batch.ids;
    if (!this.options.cacheTargets || !ids) return this.extractors.map((e) => tf.tidy(() => e.forward(batch.images, { training: false }).embedding));
    return this.extractors.map((e, k) => {
      const cache = this.cache[k]!;
      const missing = ids.map((id, i) => (cache.has(id) ? -1 : i)).filter((i) => i >= 0);
      if (missing.length) {
        const emb = tf.tidy(() => e.forward(missing.length === ids.length ? batch.images : tf.gather(batch.images, missing), { training: false }).embedding);
        const data = emb.dataSync() as Float32Array;
        const d = emb.shape[1];
        emb.dispose();
        missing.forEach((i, r) => cache.set(ids[i]!, data.slice(r * d, (r + 1) * d)));
      }
      const d = cache.get(ids[0]!)!.length;
      const out = new Float32Array(ids.length * d);
      ids.forEach((id, i) => out.set(cache.get(id)!, i * d));
      return tf.tensor2d(out, [ids.length, d]);
    });
  }

  loss(batch: Batch, prepared: tf.Tensor[], ctx: StepContext): TaskLoss {
    if (!batch.expression) throw new TrainingSetupError('stage 2 needs expression labels; the source dataset has none.');
    // prepare() appends trunk features only when the cache serves this batch; otherwise every
    // prepared tensor is an EIFE target (callers may also pass targets of their own).
    const k = this.usesTrunkCache(batch) ? this.extractors.length : prepared.length;
    const targets = prepared.slice(0, k);
    const trunk = prepared.slice(k);
    const out = trunk.length ? this.model.forwardFromTrunk!(trunk, { training: true }) : this.model.forward(batch.images, { training: true });
    const cls = crossEntropy(out.logits, batch.expression);
    const correct = correctCount(out.logits, batch.expression);
    const count = batch.expression.shape[0];
    const preds = out.miPredictions;
    if (!preds || preds.length === 0) return { total: cls, parts: { cls }, correct, count };
    if (targets.length !== preds.length) {
      throw new TrainingSetupError(`the model has ${preds.length} MI head(s) but ${targets.length} EIFE extractor(s) were given; pass one --eife per head.`);
    }
    if (ctx.gamma === undefined) throw new TrainingSetupError(missingControl('gamma', 'the weight of the MI loss'));
    const mi = miLoss(preds, targets as tf.Tensor2D[], this.smoothL1Beta);
    const total = tf.add(cls, tf.mul(mi, ctx.gamma)) as tf.Scalar;
    return { total, parts: { cls, mi }, correct, count };
  }
}

/** The error of a stage-2 step whose control `name` no plugin set. */
function missingControl(name: 'gamma' | 'lambda', what: string): string {
  return (
    `no plugin set ${name} (${what}) for this step, and the model has MI heads. Pass the scheduler plugins: ` +
    `createDefaultPlugins(config) from @dfd/cli/plugins, schedulerPlugins(config.schedule) from @dfd/plugin-schedulers, ` +
    `or a plugin of yours whose beforeStep(ctx) sets ctx.controls.${name}.`
  );
}

/**
 * Stage 1 (Eq. 1-2): @dfd/mip's `eifeLoss`, the sum over factors of the cross-entropy of each
 * head; each factor's term is also reported as `ce_<factor>`; accuracy over all heads.
 */
export class EifeTask implements TrainingTask {
  readonly stage = 'eife';

  constructor(
    readonly model: EifeLike,
    readonly factors: string[],
  ) {}

  groupOf(name: string): string {
    return defaultGroupOf(name);
  }

  loss(batch: Batch): TaskLoss {
    if (this.factors.length === 0) throw new TrainingSetupError('stage 1 needs at least one factor.');
    const out = this.model.forward(batch.images, { training: true });
    const logits: Record<string, tf.Tensor2D> = {};
    const labels: Record<string, tf.Tensor1D> = {};
    for (const f of this.factors) {
      const l = batch.factors?.[f];
      if (!l) throw new TrainingSetupError(`batch has no labels for factor '${f}'; the dataset's factors are ${Object.keys(batch.factors ?? {}).join(', ') || '(none)'}.`);
      if (!out.logits[f]) throw new TrainingSetupError(`the EIFE has no head '${f}'.`);
      logits[f] = out.logits[f];
      labels[f] = l;
    }
    const total = eifeLoss(logits, labels);
    // The per-factor terms again, for the logs only (outside `total`'s graph: no gradient).
    const parts: Record<string, tf.Scalar> = {};
    for (const f of this.factors) parts[`ce_${f}`] = crossEntropy(logits[f]!, labels[f]!);
    let correct: tf.Scalar | undefined;
    let count = 0;
    for (const f of this.factors) {
      const c = correctCount(logits[f]!, labels[f]!);
      correct = correct ? (tf.add(correct, c) as tf.Scalar) : c;
      count += labels[f]!.shape[0];
    }
    return { total, parts, correct, count };
  }
}
