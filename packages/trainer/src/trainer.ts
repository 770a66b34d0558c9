import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'tsyringe';
import { TOKENS, type EventBus, type PluginHost, type Rng, type StepHookContext } from '@dfd/core';
import { registerGradients, takeWasmFailures, WasmKernelFailure } from '@dfd/backends';
import { findNonFinite } from '@dfd/model';
import { AdamW, type ParamGroup } from './adamw.js';
import type { Checkpoint, CheckpointStore, StoredTensor } from './checkpoint-store.js';
import { disposeBatch, sliceBatch, type Batch, type BatchSource } from './data.js';
import { sumMicroBatchGradients } from './micro-batch.js';
import { CheckpointError } from './errors.js';
import { evaluate } from './evaluate.js';
import type { StepContext, TrainingTask } from './task.js';
import { defaultGroupOf } from './task.js';
import { TRAINER_TOKENS, type Optional } from './tokens.js';

/** Resolved options of the training loop (every number of the recipe, METHOD.md). */
export interface LoopOptions {
  runId: string;
  epochs: number;
  /** Learning rate of each parameter group (`backbone`, `heads`). */
  lr: Record<string, number>;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** Continue from the store's latest checkpoint. */
  resume: boolean;
  /** Configuration echoed in `runStart` (plain JSON). */
  config: Record<string, unknown>;
  /** Classes of the validation evaluation (default 7). */
  numClasses?: number;
  /**
   * Largest number of samples per forward/backward pass; a larger batch is split into micro-batches
   * whose gradients are summed (weighted by their share of the batch) before one optimizer step.
   * Batch norm then normalises over each micro-batch. Unset: the whole batch in one pass.
   */
  microBatch?: number;
  /**
   * Runs after the last epoch of a completed or stopped run, before `runEnd`, while plugins still
   * listen (createTrainer saves the model and evaluates the targets here, emitting `evaluation`).
   * It may amend `result.reason`.
   */
  beforeEnd?: (result: TrainResult) => Promise<void>;
}

/** How a run ended. */
export interface TrainResult {
  status: 'completed' | 'stopped' | 'failed';
  reason?: string;
  epochsDone: number;
  globalStep: number;
  history: Array<Record<string, number>>;
  checkpoint?: string;
}

type Accumulator = Record<string, number>;

/** Prefix of the model's tensors in a checkpoint (`model/<parameter or buffer name>`). */
const MODEL_PREFIX = 'model/';

/**
 * Where the loop is: what a checkpoint holds besides weights, optimizer, RNG, loader and plugin
 * state, and what a resume continues from.
 */
interface TrainerState {
  /** Epochs fully done. */
  epoch: number;
  /** Steps done inside the running epoch. */
  stepInEpoch: number;
  globalStep: number;
  /** Metrics of every epoch done. */
  history: Array<Record<string, number>>;
  /** Running sums of the current epoch (loss parts, correct, count, steps). */
  acc: Accumulator;
  /** The newest checkpoint written or resumed from. */
  lastCheckpoint?: string;
}

/** What one optimizer step did: applied, or not (the weights then stay as they were). */
export type StepOutcome =
  | { kind: 'applied'; loss: { total: number; [part: string]: number }; accuracy?: number }
  | { kind: 'nonFinite'; reason: string }
  | { kind: 'backendFailure'; reason: string };

/** The result of a run that ends with `state` as it is. */
function resultOf(state: TrainerState, status: TrainResult['status'], reason?: string): TrainResult {
  return { status, ...(reason !== undefined ? { reason } : {}), epochsDone: state.epoch, globalStep: state.globalStep, history: state.history, checkpoint: state.lastCheckpoint };
}

/** The run's failure message when XNNPACK (wasm) failed during a step. */
function backendFailureMessage(failures: string[], epoch: number, stepInEpoch: number, lastCheckpoint: string | undefined): string {
  const oom = failures.some((f) => f.includes('out of memory'));
  return (
    `the wasm backend failed inside XNNPACK at epoch ${epoch + 1}, step ${stepInEpoch + 1} (${failures.slice(0, 3).join('; ')}); ` +
    `the weights were not updated, the last checkpoint is ${lastCheckpoint ?? '(none)'}. ` +
    (oom
      ? 'The 4 GB wasm heap is full: lower the batch size, or keep it and set a micro-batch (--micro-batch 32 / data.microBatch: 32); DFD-Net at 90x90 trains about 32 images per pass on wasm.'
      : 'Please report this with the command line.')
  );
}

/**
 * When the forward pass inside `tf.variableGrads` throws, tfjs (4.22) leaves the tensors its tape
 * saved for the backward pass allocated (they are `kept`, so no tidy frees them) and forgets the
 * tape at the next gradient call. No public API reaches them, so this reads the engine's tape,
 * the one place dfd touches tfjs internals; the WasmKernelFailure test in trainer.test.ts checks
 * that tf.memory().numTensors stays flat over such a failure.
 */
function releaseTapeOfFailedForward(): void {
  const tape = (tf.engine() as unknown as { state: { activeTape?: Array<{ saved?: tf.Tensor[] }> | null } }).state.activeTape;
  for (const node of tape ?? []) tf.dispose(node.saved ?? []);
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
}

/**
 * The training loop shared by both stages: AdamW with parameter groups, the step's controls
 * (gamma, lambda, learning rates) from the plugins' `beforeStep` hooks, bus events, plugin stop
 * requests, atomic checkpoints every epoch (and on stop), exact resume. The trainer builds no
 * schedule itself: without a scheduler plugin the rates stay at their base values and gamma and
 * lambda are unset. Collaborators come from the DI container.
 */
@injectable()
export class Trainer {
  private readonly optimizer: AdamW;
  private readonly baseLr: Record<string, number>;
  private signalReason: string | undefined;
  private readonly validation: BatchSource | null;
  private readonly store: CheckpointStore | null;

  constructor(
    @inject(TOKENS.Bus) private readonly bus: EventBus,
    @inject(TOKENS.PluginHost) private readonly host: PluginHost,
    @inject(TOKENS.Rng) private readonly rng: Rng,
    @inject(TRAINER_TOKENS.Task) readonly task: TrainingTask,
    @inject(TRAINER_TOKENS.TrainData) private readonly data: BatchSource,
    @inject(TRAINER_TOKENS.ValidationData) validation: Optional<BatchSource>,
    @inject(TRAINER_TOKENS.LoopOptions) readonly options: LoopOptions,
    @inject(TRAINER_TOKENS.CheckpointStore) store: Optional<CheckpointStore>,
  ) {
    this.validation = validation.value;
    this.store = store.value;
    const groupOf = task.groupOf?.bind(task) ?? defaultGroupOf;
    const groups = new Map<string, ParamGroup>();
    // A frozen part (e.g. --freeze-backbone) is not in any group: no gradient, no update, no optimizer state.
    for (const [name, variable] of task.model.trainableParameters?.() ?? task.model.namedParameters()) {
      const g = groupOf(name);
      const lr = options.lr[g];
      if (lr === undefined) throw new CheckpointError(`no learning rate for parameter group '${g}' (parameter '${name}'); set lr.${g}.`);
      if (!groups.has(g)) groups.set(g, { name: g, params: [], lr, weightDecay: options.weightDecay });
      groups.get(g)!.params.push([name, variable]);
    }
    this.baseLr = { ...options.lr };
    this.optimizer = new AdamW([...groups.values()], { beta1: options.beta1, beta2: options.beta2, eps: options.eps });
  }

  /**
   * Loss and gradients of one batch: one tape over the whole batch, or (with `microBatch`) one per
   * micro-batch, each loss scaled by its share of the batch so that the summed gradients and the
   * reported losses are those of the batch mean (exactly, up to batch-norm statistics, when every
   * sample is labelled).
   */
  private gradients(
    batch: Batch,
    prepared: tf.Tensor[],
    ctx: StepContext,
    vars: tf.Variable[],
  ): { value: tf.Scalar; grads: tf.NamedTensorMap; parts: Map<string, tf.Tensor>; correctT: tf.Tensor | undefined; count: number } {
    const n = batch.images.shape[0];
    const parts = new Map<string, tf.Tensor>();
    let correctT: tf.Tensor | undefined;
    let count = 0;
    try {
      const { value, grads } = sumMicroBatchGradients(n, this.options.microBatch, ({ start, size, share }) => {
        const whole = size === n;
        const sub = whole ? batch : sliceBatch(batch, start, size);
        const subPrepared = whole ? prepared : prepared.map((t) => tf.slice(t, start, size));
        try {
          return tf.variableGrads(() => {
            const l = this.task.loss(sub, subPrepared, ctx);
            for (const [k, t] of Object.entries(l.parts)) {
              const scaled = tf.keep(whole ? t : tf.mul(t, share));
              const prev = parts.get(k);
              parts.set(k, prev ? tf.keep(tf.add(prev, scaled)) : scaled);
              if (prev) tf.dispose([prev, scaled]);
            }
            if (l.correct) {
              const prev = correctT;
              correctT = tf.keep(prev ? tf.add(prev, l.correct) : l.correct);
              if (prev) prev.dispose();
            }
            count += l.count;
            return whole ? l.total : (tf.mul(l.total, share) as tf.Scalar);
          }, vars);
        } finally {
          if (!whole) {
            disposeBatch(sub);
            tf.dispose(subPrepared);
          }
        }
      });
      // A failure printed by a wasm kernel that is not guarded (registered after useBackend) ends here.
      const late = takeWasmFailures();
      if (late.length > 0) {
        tf.dispose([value, ...Object.values(grads)]);
        throw new WasmKernelFailure('(unguarded)', late);
      }
      return { value, grads, parts, correctT, count };
    } catch (e) {
      releaseTapeOfFailedForward();
      tf.dispose([...parts.values(), ...(correctT ? [correctT] : [])]);
      throw e;
    }
  }

  /** Ask the run to stop after the current step (e.g. on SIGINT); a checkpoint is written first. */
  requestStop(reason: string): void {
    this.signalReason ??= reason;
    this.host.requestStop('trainer', reason);
  }

  /** The optimizer (its state is part of every checkpoint). */
  get adamw(): AdamW {
    return this.optimizer;
  }

  /**
   * Train until the configured epoch count, a stop request, or a failure. The parts: {@link start}
   * (resume, or the checkpoint before the first step), {@link runEpoch} (its steps, each a
   * {@link step} with a typed {@link StepOutcome}, then {@link endEpoch}), and {@link finish}
   * (`beforeEnd`, `runEnd`, plugin teardown), which every way out goes through once.
   */
  async run(): Promise<TrainResult> {
    // tfjs-core alone registers no gradient functions; @dfd/backends loads them (Node-safe).
    await registerGradients();
    await this.host.setupAll();
    const state: TrainerState = { epoch: 0, stepInEpoch: 0, globalStep: 0, history: [], acc: {} };
    try {
      const failed = this.start(state);
      if (failed) return await this.finish(failed);
      const { epochs, runId } = this.options;
      this.bus.emit({ type: 'runStart', runId, stage: this.task.stage, epochs, stepsPerEpoch: this.data.stepsPerEpoch, startEpoch: state.epoch, config: this.options.config });
      while (state.epoch < epochs) {
        const ended = await this.runEpoch(state);
        if (ended) return await this.finish(ended);
      }
      return await this.finish(resultOf(state, 'completed'));
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.bus.emit({ type: 'error', source: 'trainer', message, stack: err instanceof Error ? err.stack : undefined });
      await this.finish(resultOf(state, 'failed', message));
      throw err;
    }
  }

  /**
   * Before the first step: on `resume`, the loop continues from the store's newest intact
   * checkpoint ({@link loadState}); otherwise a checkpoint is written at once (when there is a
   * store), so that even a run that fails at its first step leaves a usable one. Returns the
   * failed result when the weights are already non-finite.
   */
  private start(state: TrainerState): TrainResult | undefined {
    if (this.options.resume) {
      if (!this.store?.exists()) throw new CheckpointError(`cannot resume: no checkpoint in ${this.store?.location ?? '(no checkpoint store)'}.`);
      const stale = this.store.removeStaleTemp();
      if (stale.length) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `removed ${stale.length} unfinished checkpoint write(s) left by a killed run: ${stale.join(', ')}` });
      const loaded = this.store.loadNewestIntact();
      for (const s of loaded.skipped) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `skipped checkpoint ${s.path}: ${s.reason}` });
      if (loaded.skipped.length) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `resuming from ${loaded.path}, the newest intact checkpoint (${loaded.skipped.length} newer one(s) unreadable)` });
      Object.assign(state, this.loadState(loaded.checkpoint, loaded.path));
      return undefined;
    }
    return this.store ? this.checkpointAt(state) : undefined;
  }

  /**
   * One epoch from `state.stepInEpoch` (0 unless resumed mid-epoch): its steps, then
   * {@link endEpoch}. Returns the run's result when it ends here (a failed step, a stop).
   */
  private async runEpoch(state: TrainerState): Promise<TrainResult | undefined> {
    const stepsPerEpoch = this.data.stepsPerEpoch;
    this.bus.emit({ type: 'epochStart', epoch: state.epoch, totalEpochs: this.options.epochs });
    const tEpoch = Date.now();
    let ended: Exclude<StepOutcome, { kind: 'applied' }> | 'stopped' | undefined;
    for await (const batch of this.data.batches(state.epoch, state.stepInEpoch)) {
      const outcome = await this.step(batch, state);
      if (outcome.kind !== 'applied') {
        ended = outcome;
        break;
      }
      // Step boundary (docs/architecture.md, "The event bus"): every subscriber has handled this
      // step's batchEnd before the next step, so a stop request made in reply takes effect here.
      await this.bus.drain();
      // Compute and bus delivery are all microtasks; give signals (Ctrl-C), timers and I/O a turn.
      await yieldToEventLoop();
      if (this.host.stopRequested && state.stepInEpoch < stepsPerEpoch) {
        ended = 'stopped';
        break;
      }
    }
    if (ended === 'stopped') {
      const failed = this.store ? this.checkpointAt(state) : undefined;
      return failed ?? resultOf(state, 'stopped', this.host.stopRequested?.reason ?? 'stopped');
    }
    if (ended) {
      this.bus.emit({ type: 'error', source: 'trainer', message: ended.reason });
      return resultOf(state, 'failed', ended.reason);
    }
    return this.endEpoch(state, tEpoch);
  }

  /**
   * One optimizer step on `batch` (which it disposes): the plugins set the step's controls, the
   * task's loss and gradients (micro-batched if asked), and AdamW applies them unless the loss is
   * not finite or a wasm kernel failed, in which case batch-norm statistics are put back and the
   * weights stay as they were. Advances `state` and emits `batchEnd` when applied.
   */
  private async step(batch: Batch, state: TrainerState): Promise<StepOutcome> {
    const ctx = this.steer(state.epoch, state.stepInEpoch, state.globalStep);
    const t0 = Date.now();
    this.task.beforeStep?.(ctx);
    // The forward pass updates BN running statistics; keep copies so a failed step can be undone.
    const bufferCopies = this.task.model.namedBuffers().map(([, v]) => [v, tf.clone(v)] as const);
    const undoBuffers = () => {
      for (const [v, copy] of bufferCopies) v.assign(copy);
    };
    let prepared: tf.Tensor[] = [];
    let step: ReturnType<Trainer['gradients']>;
    try {
      prepared = this.task.prepare?.(batch) ?? [];
      step = this.gradients(batch, prepared, ctx, this.optimizer.variables());
    } catch (e) {
      // XNNPACK failed inside a wasm kernel (e.g. the heap is full): its outputs are garbage.
      if (!(e instanceof WasmKernelFailure)) throw e;
      undoBuffers();
      tf.dispose([...bufferCopies.map(([, copy]) => copy), ...prepared]);
      disposeBatch(batch);
      return { kind: 'backendFailure', reason: backendFailureMessage(e.failures, state.epoch, state.stepInEpoch, state.lastCheckpoint) };
    }
    const { value, grads, parts, correctT, count } = step;
    const total = (await value.data())[0]!;
    const numbers: Record<string, number> = {};
    for (const [k, t] of parts) numbers[k] = (await t.data())[0]!;
    const correct = correctT ? (await correctT.data())[0]! : Number.NaN;
    const finite = Number.isFinite(total);
    if (finite) this.optimizer.applyGradients(grads);
    else undoBuffers();
    tf.dispose(bufferCopies.map(([, copy]) => copy));
    tf.dispose([value, ...Object.values(grads), ...parts.values(), ...(correctT ? [correctT] : []), ...prepared]);
    const batchSize = batch.images.shape[0];
    disposeBatch(batch);
    if (!finite) {
      return {
        kind: 'nonFinite',
        reason: `non-finite loss ${total} (${Object.entries(numbers).map(([k, v]) => `${k} ${v}`).join(', ')}) at epoch ${state.epoch + 1}, step ${state.stepInEpoch + 1}; the weights were not updated, the last checkpoint is ${state.lastCheckpoint ?? '(none)'}. Lower the learning rate or check the inputs.`,
      };
    }
    state.globalStep++;
    state.stepInEpoch++;
    const acc = state.acc;
    acc.steps = (acc.steps ?? 0) + 1;
    acc.loss = (acc.loss ?? 0) + total;
    for (const [k, v] of Object.entries(numbers)) acc[k] = (acc[k] ?? 0) + v;
    if (count > 0 && Number.isFinite(correct)) {
      acc.correct = (acc.correct ?? 0) + correct;
      acc.count = (acc.count ?? 0) + count;
    }
    const seconds = (Date.now() - t0) / 1000;
    const loss = { total, ...numbers };
    const accuracy = count > 0 ? correct / count : undefined;
    this.bus.emit({
      type: 'batchEnd',
      epoch: state.epoch,
      step: state.stepInEpoch - 1,
      stepsPerEpoch: this.data.stepsPerEpoch,
      globalStep: state.globalStep,
      totalSteps: this.totalSteps,
      p: ctx.p,
      loss,
      accuracy,
      learningRates: this.optimizer.learningRates(),
      gamma: ctx.gamma,
      lambda: ctx.lambda,
      imagesPerSecond: seconds > 0 ? batchSize / seconds : undefined,
    });
    return { kind: 'applied', loss, accuracy };
  }

  /**
   * The end of a completed epoch: its metrics (means over its steps, rates, source-val accuracy),
   * `epochEnd`, then (after every subscriber handled it: the best-weights plugin saves this
   * epoch's weights there) the epoch's checkpoint. Returns the result when the run ends here.
   */
  private async endEpoch(state: TrainerState, tEpoch: number): Promise<TrainResult | undefined> {
    const { epochs } = this.options;
    const metrics: Record<string, number> = { epoch: state.epoch + 1, seconds: (Date.now() - tEpoch) / 1000 };
    const acc = state.acc;
    const steps = acc.steps ?? 1;
    for (const [k, v] of Object.entries(acc)) if (!['steps', 'correct', 'count'].includes(k)) metrics[k] = v / steps;
    if (acc.count) metrics.accuracy = (acc.correct ?? 0) / acc.count;
    for (const [g, lr] of Object.entries(this.optimizer.learningRates())) metrics[`lr_${g}`] = lr;
    if (this.validation) {
      const model = this.task.model as unknown as Parameters<typeof evaluate>[0];
      const r = await evaluate(model, this.validation, 'source-val', this.options.numClasses ?? 7);
      metrics.val_accuracy = r.accuracy;
      this.bus.emit({ type: 'evaluation', epoch: state.epoch + 1, split: 'val', results: [r], mean: r.accuracy });
    }
    const before = { history: state.history };
    state.history = [...state.history, metrics];
    state.acc = {};
    state.epoch++;
    state.stepInEpoch = 0;
    this.bus.emit({ type: 'epochEnd', epoch: state.epoch, totalEpochs: epochs, metrics });
    // Epoch boundary: the epochEnd handlers (and their plugin state) are done before the checkpoint.
    await this.bus.drain();
    if (this.store) {
      const failed = this.checkpointAt(state, { ...before, epoch: state.epoch - 1, stepInEpoch: this.data.stepsPerEpoch });
      if (failed) return failed;
      this.bus.emit({ type: 'checkpoint', path: state.lastCheckpoint!, epoch: state.epoch, globalStep: state.globalStep });
    }
    if (this.host.stopRequested && state.epoch < epochs) return resultOf(state, 'stopped', this.host.stopRequested.reason);
    return undefined;
  }

  private async finish(result: TrainResult): Promise<TrainResult> {
    if (result.status !== 'failed' && this.options.beforeEnd) await this.options.beforeEnd(result);
    this.bus.emit({ type: 'runEnd', runId: this.options.runId, status: result.status, reason: result.reason, epochsDone: result.epochsDone });
    await this.bus.drain();
    await this.host.teardownAll();
    return result;
  }

  /** Optimizer steps of the whole run. */
  private get totalSteps(): number {
    return this.options.epochs * this.data.stepsPerEpoch;
  }

  /**
   * The controls of the coming step: reset (base learning rates, gamma and lambda unset), then
   * set by the plugins' `beforeStep` hooks in order; the learning rates go into the optimizer.
   * p = optimizer steps done before this step / total steps.
   */
  private steer(epoch: number, stepInEpoch: number, globalStep: number): StepContext {
    const baseLearningRates: Record<string, number> = {};
    for (const group of this.optimizer.groups) baseLearningRates[group.name] = this.baseLr[group.name]!;
    const hook: StepHookContext = {
      stage: this.task.stage,
      epoch,
      totalEpochs: this.options.epochs,
      stepInEpoch,
      stepsPerEpoch: this.data.stepsPerEpoch,
      globalStep,
      totalSteps: this.totalSteps,
      p: globalStep / this.totalSteps,
      baseLearningRates: Object.freeze({ ...baseLearningRates }),
      controls: { learningRates: { ...baseLearningRates } },
    };
    this.host.beforeStep(hook);
    for (const [group, lr] of Object.entries(hook.controls.learningRates)) this.optimizer.setLearningRate(group, lr);
    return { p: hook.p, gamma: hook.controls.gamma, lambda: hook.controls.lambda };
  }

  /**
   * Writes the checkpoint of `state` ({@link saveState}) and records it as the last one. When the
   * weights are not finite nothing is written and the failed result is returned, naming them; it
   * reports `failedAt` (where the run was before the epoch end being saved) when given.
   */
  private checkpointAt(state: TrainerState, failedAt?: Pick<TrainerState, 'epoch' | 'stepInEpoch' | 'history'>): TrainResult | undefined {
    const saved = this.saveState(state);
    if (typeof saved === 'string') {
      state.lastCheckpoint = saved;
      return undefined;
    }
    const at = failedAt ?? state;
    const message =
      `the weights became non-finite (${saved.count} NaN or infinite values in ${saved.names.slice(0, 3).join(', ')}${saved.names.length > 3 ? ` and ${saved.names.length - 3} more` : ''}) ` +
      `by epoch ${at.epoch + 1}, step ${at.stepInEpoch}; no checkpoint was written with them, the last checkpoint is ${state.lastCheckpoint ?? '(none)'}. Lower the learning rate or check the inputs.`;
    this.bus.emit({ type: 'error', source: 'trainer', message });
    return { status: 'failed', reason: message, epochsDone: at.epoch, globalStep: state.globalStep, history: at.history, checkpoint: state.lastCheckpoint };
  }

  // The trainer's state in a checkpoint: saveState writes it, loadState (just below) reads it back.

  /**
   * Saves the whole run state: model parameters and buffers (`model/<name>`), the optimizer
   * ({@link AdamW.toCheckpoint}), the RNG, the loader, every plugin's state and the loop state
   * (epoch, step, history, the epoch's running sums). Returns where, or the non-finite weights
   * instead (nothing is written then).
   */
  private saveState(state: TrainerState): string | { names: string[]; count: number } {
    const tensors = new Map<string, StoredTensor>();
    const m = this.task.model;
    for (const [name, v] of [...m.namedParameters(), ...m.namedBuffers()]) {
      tensors.set(`${MODEL_PREFIX}${name}`, { shape: v.shape, dtype: v.dtype === 'int32' ? 'int32' : 'float32', data: v.dataSync() as Float32Array });
    }
    const bad = findNonFinite([...tensors].map(([name, t]) => [name.slice(MODEL_PREFIX.length), t.data] as const));
    if (bad.count) return bad;
    const optimizer = this.optimizer.toCheckpoint();
    for (const [name, t] of optimizer.tensors) tensors.set(name, t);
    const { epoch, stepInEpoch, globalStep, history, acc } = state;
    return this.store!.save(
      {
        stage: this.task.stage,
        runId: this.options.runId,
        epoch,
        stepInEpoch,
        globalStep,
        rng: this.rng.getState(),
        loader: { epoch, step: stepInEpoch, source: this.data.getState?.() ?? null },
        plugins: this.host.getState(),
        optimizer: optimizer.meta,
        epochAccumulator: acc,
        history,
      },
      tensors,
    );
  }

  /** Restores what {@link saveState} saved (from the checkpoint at `where`) and returns the loop state to continue from. */
  private loadState(ckpt: Checkpoint, where: string): TrainerState {
    const { meta, tensors } = ckpt;
    if (meta.stage !== this.task.stage) throw new CheckpointError(`the checkpoint is from stage '${meta.stage}', this run is stage '${this.task.stage}'.`);
    const m = this.task.model;
    for (const [name, v] of [...m.namedParameters(), ...m.namedBuffers()]) {
      const t = tensors.get(`${MODEL_PREFIX}${name}`);
      if (!t) throw new CheckpointError(`checkpoint has no tensor for '${name}'; it is from a different model configuration.`);
      if (t.data.length !== v.size) throw new CheckpointError(`checkpoint tensor '${name}' has ${t.data.length} values, the model expects ${v.size} (${v.shape.join('x')}).`);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, v.dtype)));
    }
    this.rng.setState(meta.rng);
    this.host.setState(meta.plugins);
    const loaderState = (meta.loader as { source?: unknown } | null)?.source;
    if (loaderState !== undefined && loaderState !== null) this.data.setState?.(loaderState);
    this.optimizer.fromCheckpoint(meta.optimizer, tensors, where);
    return { epoch: meta.epoch, stepInEpoch: meta.stepInEpoch, globalStep: meta.globalStep, history: meta.history, acc: { ...meta.epochAccumulator }, lastCheckpoint: where };
  }
}
