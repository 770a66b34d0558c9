import 'reflect-metadata';
import * as tf from '@tensorflow/tfjs-core';
import { inject, injectable } from 'tsyringe';
import { TOKENS, type EventBus, type PluginHost, type Rng, type StepHookContext } from '@dfd/core';
import { registerGradients, takeWasmFailures, WasmKernelFailure } from '@dfd/backends';
import { findNonFinite } from '@dfd/model';
import { AdamW, type ParamGroup } from './adamw.js';
import type { CheckpointStore, StoredTensor } from './checkpoint-store.js';
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
      // tfjs keeps the tensors its tape saved for the backward pass when the forward pass throws.
      const tape = (tf.engine() as unknown as { state: { activeTape?: Array<{ saved?: tf.Tensor[] }> | null } }).state.activeTape;
      for (const node of tape ?? []) tf.dispose(node.saved ?? []);
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

  /** Train until the configured epoch count, a stop request, or a non-finite loss. */
  async run(): Promise<TrainResult> {
    const { epochs, runId } = this.options;
    const stepsPerEpoch = this.data.stepsPerEpoch;
    const totalSteps = epochs * stepsPerEpoch;
    let epoch = 0;
    let stepInEpoch = 0;
    let globalStep = 0;
    let history: Array<Record<string, number>> = [];
    let acc: Accumulator = {};
    let lastCheckpoint: string | undefined;
    // tfjs-core alone registers no gradient functions; @dfd/backends loads them (Node-safe).
    await registerGradients();
    await this.host.setupAll();
    try {
      if (this.options.resume) {
        if (!this.store?.exists()) throw new CheckpointError(`cannot resume: no checkpoint in ${this.store?.location ?? '(no checkpoint store)'}.`);
        const stale = this.store.removeStaleTemp();
        if (stale.length) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `removed ${stale.length} unfinished checkpoint write(s) left by a killed run: ${stale.join(', ')}` });
        const loaded = this.store.loadNewestIntact();
        for (const s of loaded.skipped) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `skipped checkpoint ${s.path}: ${s.reason}` });
        if (loaded.skipped.length) this.bus.emit({ type: 'warning', source: 'checkpoint', message: `resuming from ${loaded.path}, the newest intact checkpoint (${loaded.skipped.length} newer one(s) unreadable)` });
        const ckpt = loaded.checkpoint;
        this.restore(ckpt.meta.stage, ckpt.tensors);
        this.rng.setState(ckpt.meta.rng);
        this.host.setState(ckpt.meta.plugins);
        const loaderState = (ckpt.meta.loader as { source?: unknown } | null)?.source;
        if (loaderState !== undefined && loaderState !== null) this.data.setState?.(loaderState);
        ({ epoch, stepInEpoch, globalStep, history } = ckpt.meta);
        acc = { ...ckpt.meta.epochAccumulator };
        const steps = ckpt.meta.optimizer.steps;
        const state = this.optimizer.getState();
        for (const [name, s] of Object.entries(state.params)) s.step = steps[name] ?? 0;
        for (const [name, s] of Object.entries(state.params)) {
          const m = ckpt.tensors.get(`optim/${name}/m`);
          const v = ckpt.tensors.get(`optim/${name}/v`);
          if (!m || !v) throw new CheckpointError(`checkpoint ${loaded.path} lacks optimizer moments of '${name}'.`);
          s.m = m.data as Float32Array;
          s.v = v.data as Float32Array;
        }
        this.optimizer.setState({ groups: ckpt.meta.optimizer.groups, params: state.params });
        lastCheckpoint = loaded.path;
      } else if (this.store) {
        // A checkpoint before the first step, so that even a run that fails at once leaves a usable one.
        const saved = this.checkpoint(0, 0, 0, history, {});
        if (typeof saved !== 'string') return await this.diverged(saved, 0, 0, 0, history, undefined);
        lastCheckpoint = saved;
      }

      this.bus.emit({ type: 'runStart', runId, stage: this.task.stage, epochs, stepsPerEpoch, startEpoch: epoch, config: this.options.config });
      const vars = this.optimizer.variables();
      while (epoch < epochs) {
        this.bus.emit({ type: 'epochStart', epoch, totalEpochs: epochs });
        const tEpoch = Date.now();
        let stoppedMidEpoch = false;
        for await (const batch of this.data.batches(epoch, stepInEpoch)) {
          const ctx = this.steer(epoch, stepInEpoch, globalStep, totalSteps);
          const t0 = Date.now();
          this.task.beforeStep?.(ctx);
          // The forward pass updates BN running statistics; keep copies so a diverged step can be undone.
          const bufferCopies = this.task.model.namedBuffers().map(([, v]) => [v, tf.clone(v)] as const);
          let prepared: tf.Tensor[] = [];
          let step: ReturnType<Trainer['gradients']>;
          try {
            prepared = this.task.prepare?.(batch) ?? [];
            step = this.gradients(batch, prepared, ctx, vars);
          } catch (e) {
            // XNNPACK failed inside a wasm kernel (e.g. the heap is full): its outputs are garbage.
            if (!(e instanceof WasmKernelFailure)) throw e;
            for (const [v, copy] of bufferCopies) v.assign(copy);
            tf.dispose([...bufferCopies.map(([, copy]) => copy), ...prepared]);
            disposeBatch(batch);
            const message = backendFailureMessage(e.failures, epoch, stepInEpoch, lastCheckpoint);
            this.bus.emit({ type: 'error', source: 'trainer', message });
            return await this.finish({ status: 'failed', reason: message, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
          }
          const { value, grads, parts, correctT, count } = step;
          const total = (await value.data())[0]!;
          const numbers: Record<string, number> = {};
          for (const [k, t] of parts) numbers[k] = (await t.data())[0]!;
          const correct = correctT ? (await correctT.data())[0]! : Number.NaN;
          const finite = Number.isFinite(total);
          if (finite) this.optimizer.applyGradients(grads);
          else for (const [v, copy] of bufferCopies) v.assign(copy);
          tf.dispose(bufferCopies.map(([, copy]) => copy));
          tf.dispose([value, ...Object.values(grads), ...parts.values(), ...(correctT ? [correctT] : []), ...prepared]);
          const batchSize = batch.images.shape[0];
          disposeBatch(batch);
          if (!finite) {
            const message = `non-finite loss ${total} (${Object.entries(numbers).map(([k, v]) => `${k} ${v}`).join(', ')}) at epoch ${epoch + 1}, step ${stepInEpoch + 1}; the weights were not updated, the last checkpoint is ${lastCheckpoint ?? '(none)'}. Lower the learning rate or check the inputs.`;
            this.bus.emit({ type: 'error', source: 'trainer', message });
            return await this.finish({ status: 'failed', reason: message, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
          }
          globalStep++;
          stepInEpoch++;
          acc.steps = (acc.steps ?? 0) + 1;
          acc.loss = (acc.loss ?? 0) + total;
          for (const [k, v] of Object.entries(numbers)) acc[k] = (acc[k] ?? 0) + v;
          if (count > 0 && Number.isFinite(correct)) {
            acc.correct = (acc.correct ?? 0) + correct;
            acc.count = (acc.count ?? 0) + count;
          }
          const seconds = (Date.now() - t0) / 1000;
          this.bus.emit({
            type: 'batchEnd',
            epoch,
            step: stepInEpoch - 1,
            stepsPerEpoch,
            globalStep,
            totalSteps,
            p: ctx.p,
            loss: { total, ...numbers },
            accuracy: count > 0 ? correct / count : undefined,
            learningRates: this.optimizer.learningRates(),
            gamma: ctx.gamma,
            lambda: ctx.lambda,
            imagesPerSecond: seconds > 0 ? batchSize / seconds : undefined,
          });
          await this.bus.drain();
          // Compute and bus delivery are all microtasks; give signals (Ctrl-C), timers and I/O a turn.
          await yieldToEventLoop();
          if (this.host.stopRequested && stepInEpoch < stepsPerEpoch) {
            stoppedMidEpoch = true;
            break;
          }
        }
        if (stoppedMidEpoch) {
          const saved = this.checkpoint(epoch, stepInEpoch, globalStep, history, acc);
          if (typeof saved !== 'string') return await this.diverged(saved, epoch, stepInEpoch, globalStep, history, lastCheckpoint);
          lastCheckpoint = saved;
          const reason = this.host.stopRequested?.reason ?? 'stopped';
          return await this.finish({ status: 'stopped', reason, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
        }
        const metrics: Record<string, number> = { epoch: epoch + 1, seconds: (Date.now() - tEpoch) / 1000 };
        const steps = acc.steps ?? 1;
        for (const [k, v] of Object.entries(acc)) if (!['steps', 'correct', 'count'].includes(k)) metrics[k] = v / steps;
        if (acc.count) metrics.accuracy = (acc.correct ?? 0) / acc.count;
        for (const [g, lr] of Object.entries(this.optimizer.learningRates())) metrics[`lr_${g}`] = lr;
        if (this.validation) {
          const model = this.task.model as unknown as Parameters<typeof evaluate>[0];
          const r = await evaluate(model, this.validation, 'source-val', this.options.numClasses ?? 7);
          metrics.val_accuracy = r.accuracy;
          this.bus.emit({ type: 'evaluation', epoch: epoch + 1, split: 'val', results: [r], mean: r.accuracy });
        }
        history = [...history, metrics];
        acc = {};
        epoch++;
        stepInEpoch = 0;
        this.bus.emit({ type: 'epochEnd', epoch, totalEpochs: epochs, metrics });
        await this.bus.drain();
        if (this.store) {
          const saved = this.checkpoint(epoch, 0, globalStep, history, acc);
          if (typeof saved !== 'string') return await this.diverged(saved, epoch - 1, stepsPerEpoch, globalStep, history.slice(0, -1), lastCheckpoint);
          lastCheckpoint = saved;
          this.bus.emit({ type: 'checkpoint', path: lastCheckpoint, epoch, globalStep });
        }
        if (this.host.stopRequested && epoch < epochs) {
          return await this.finish({ status: 'stopped', reason: this.host.stopRequested.reason, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
        }
      }
      return await this.finish({ status: 'completed', epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.bus.emit({ type: 'error', source: 'trainer', message, stack: err instanceof Error ? err.stack : undefined });
      await this.finish({ status: 'failed', reason: message, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
      throw err;
    }
  }

  private async finish(result: TrainResult): Promise<TrainResult> {
    if (result.status !== 'failed' && this.options.beforeEnd) await this.options.beforeEnd(result);
    this.bus.emit({ type: 'runEnd', runId: this.options.runId, status: result.status, reason: result.reason, epochsDone: result.epochsDone });
    await this.bus.drain();
    await this.host.teardownAll();
    return result;
  }

  /**
   * The controls of the coming step: reset (base learning rates, gamma and lambda unset), then
   * set by the plugins' `beforeStep` hooks in order; the learning rates go into the optimizer.
   * p = optimizer steps done before this step / total steps.
   */
  private steer(epoch: number, stepInEpoch: number, globalStep: number, totalSteps: number): StepContext {
    const baseLearningRates: Record<string, number> = {};
    for (const group of this.optimizer.groups) baseLearningRates[group.name] = this.baseLr[group.name]!;
    const hook: StepHookContext = {
      stage: this.task.stage,
      epoch,
      totalEpochs: this.options.epochs,
      stepInEpoch,
      stepsPerEpoch: this.data.stepsPerEpoch,
      globalStep,
      totalSteps,
      p: globalStep / totalSteps,
      baseLearningRates: Object.freeze({ ...baseLearningRates }),
      controls: { learningRates: { ...baseLearningRates } },
    };
    this.host.beforeStep(hook);
    for (const [group, lr] of Object.entries(hook.controls.learningRates)) this.optimizer.setLearningRate(group, lr);
    return { p: hook.p, gamma: hook.controls.gamma, lambda: hook.controls.lambda };
  }

  /** A run whose weights became NaN or infinite: no checkpoint is written, the run fails naming them. */
  private async diverged(bad: { names: string[]; count: number }, epoch: number, stepInEpoch: number, globalStep: number, history: Array<Record<string, number>>, lastCheckpoint: string | undefined): Promise<TrainResult> {
    const message =
      `the weights became non-finite (${bad.count} NaN or infinite values in ${bad.names.slice(0, 3).join(', ')}${bad.names.length > 3 ? ` and ${bad.names.length - 3} more` : ''}) ` +
      `by epoch ${epoch + 1}, step ${stepInEpoch}; no checkpoint was written with them, the last checkpoint is ${lastCheckpoint ?? '(none)'}. Lower the learning rate or check the inputs.`;
    this.bus.emit({ type: 'error', source: 'trainer', message });
    return this.finish({ status: 'failed', reason: message, epochsDone: epoch, globalStep, history, checkpoint: lastCheckpoint });
  }

  /** Writes a checkpoint and returns its folder; returns the non-finite weights instead when there are any (nothing is written). */
  private checkpoint(epoch: number, stepInEpoch: number, globalStep: number, history: Array<Record<string, number>>, acc: Accumulator): string | { names: string[]; count: number } {
    const tensors = new Map<string, StoredTensor>();
    const m = this.task.model;
    for (const [name, v] of [...m.namedParameters(), ...m.namedBuffers()]) {
      tensors.set(`model/${name}`, { shape: v.shape, dtype: v.dtype === 'int32' ? 'int32' : 'float32', data: v.dataSync() as Float32Array });
    }
    const bad = findNonFinite([...tensors].map(([name, t]) => [name.slice('model/'.length), t.data] as const));
    if (bad.count) return bad;
    const opt = this.optimizer.getState();
    const steps: Record<string, number> = {};
    for (const [name, s] of Object.entries(opt.params)) {
      steps[name] = s.step;
      tensors.set(`optim/${name}/m`, { shape: [s.m.length], dtype: 'float32', data: s.m });
      tensors.set(`optim/${name}/v`, { shape: [s.v.length], dtype: 'float32', data: s.v });
    }
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
        optimizer: { groups: opt.groups, steps },
        epochAccumulator: acc,
        history,
      },
      tensors,
    );
  }

  private restore(stage: string, tensors: Map<string, StoredTensor>): void {
    if (stage !== this.task.stage) throw new CheckpointError(`the checkpoint is from stage '${stage}', this run is stage '${this.task.stage}'.`);
    const m = this.task.model;
    for (const [name, v] of [...m.namedParameters(), ...m.namedBuffers()]) {
      const t = tensors.get(`model/${name}`);
      if (!t) throw new CheckpointError(`checkpoint has no tensor for '${name}'; it is from a different model configuration.`);
      if (t.data.length !== v.size) throw new CheckpointError(`checkpoint tensor '${name}' has ${t.data.length} values, the model expects ${v.size} (${v.shape.join('x')}).`);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, v.dtype)));
    }
  }
}
