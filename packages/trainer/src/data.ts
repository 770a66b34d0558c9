import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { TrainingSetupError } from './errors.js';

/** One mini-batch, as the datasets loader yields it. The consumer disposes its tensors. */
export interface Batch {
  /** NHWC float32, normalised. */
  images: tf.Tensor4D;
  /** Canonical expression labels (int32); -1 = unknown. */
  expression?: tf.Tensor1D;
  /** Attribute labels by factor name (stage 1); -1 = unknown. */
  factors?: Record<string, tf.Tensor1D>;
  ids?: string[];
}

/**
 * Where the trainer's batches come from. Epoch `e` must always yield the same batches for the
 * same construction arguments (order and augmentation derived from a seed and `e`), so that a
 * resumed run skips `fromStep` batches and continues exactly.
 */
export interface BatchSource {
  /** Batches per epoch. */
  readonly stepsPerEpoch: number;
  /** Number of samples. */
  readonly size: number;
  /** The batches of epoch `epoch`, starting at batch `fromStep` (default 0). */
  batches(epoch: number, fromStep?: number): AsyncIterable<Batch>;
  /** Optional extra state to checkpoint (beyond epoch/step, which the trainer saves). */
  getState?(): unknown;
  /** Restore {@link getState}. */
  setState?(state: unknown): void;
}

/** In-memory samples for {@link tensorBatchSource}: images [N, H, W, C] plus labels. */
export interface ArraySamples {
  images: Float32Array;
  shape: [number, number, number];
  expression?: Int32Array;
  factors?: Record<string, Int32Array>;
  ids?: string[];
}

/** Options of {@link tensorBatchSource}. */
export interface TensorBatchSourceOptions {
  batchSize: number;
  seed?: number;
  shuffle?: boolean;
  dropLast?: boolean;
  /** Per-batch augmentation (must use only `rng` for randomness). */
  augment?: (images: tf.Tensor4D, rng: Rng) => tf.Tensor4D;
}

/**
 * A {@link BatchSource} over arrays held in memory: the order of epoch e is a shuffle by
 * Rng(`${seed}:${e}`), and augmentation draws from the same per-epoch generator, so any batch
 * can be recomputed from (seed, epoch, index) alone. Handy for tests, demos and custom datasets.
 */
export function tensorBatchSource(samples: ArraySamples, options: TensorBatchSourceOptions): BatchSource {
  const [h, w, c] = samples.shape;
  const per = h * w * c;
  const n = samples.images.length / per;
  if (!Number.isInteger(n)) throw new TrainingSetupError(`images hold ${samples.images.length} values, not a multiple of ${h}x${w}x${c}`);
  if (samples.expression && samples.expression.length !== n) throw new TrainingSetupError(`${n} images but ${samples.expression.length} expression labels`);
  const batchSize = options.batchSize;
  const steps = options.dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
  if (steps < 1) throw new TrainingSetupError(`${n} samples give no batch of ${batchSize} (dropLast); lower the batch size.`);
  const seed = options.seed ?? 0;
  return {
    stepsPerEpoch: steps,
    size: n,
    async *batches(epoch: number, fromStep = 0) {
      const rng = new Rng(`${seed}:${epoch}`);
      const order = Array.from({ length: n }, (_, i) => i);
      if (options.shuffle ?? true) rng.shuffle(order);
      for (let step = 0; step < steps; step++) {
        const idx = order.slice(step * batchSize, Math.min(n, (step + 1) * batchSize));
        // Each batch gets its own generator so skipping batches does not shift later draws.
        const batchRng = new Rng(`${seed}:${epoch}:${step}`);
        if (step < fromStep) continue;
        const data = new Float32Array(idx.length * per);
        idx.forEach((j, k) => data.set(samples.images.subarray(j * per, (j + 1) * per), k * per));
        let images = tf.tensor4d(data, [idx.length, h, w, c]);
        if (options.augment) {
          const raw = images;
          images = options.augment(raw, batchRng);
          if (images !== raw) raw.dispose();
        }
        const batch: Batch = { images, ids: samples.ids ? idx.map((j) => samples.ids![j]!) : idx.map(String) };
        if (samples.expression) batch.expression = tf.tensor1d(Int32Array.from(idx, (j) => samples.expression![j]!), 'int32');
        if (samples.factors) {
          batch.factors = {};
          for (const [name, labels] of Object.entries(samples.factors)) batch.factors[name] = tf.tensor1d(Int32Array.from(idx, (j) => labels[j]!), 'int32');
        }
        yield batch;
      }
    },
  };
}

/** Samples [start, start + size) of a batch as new tensors (the caller disposes them with {@link disposeBatch}). */
export function sliceBatch(batch: Batch, start: number, size: number): Batch {
  const out: Batch = { images: tf.slice(batch.images, [start, 0, 0, 0], [size, -1, -1, -1]) };
  if (batch.expression) out.expression = tf.slice(batch.expression, start, size);
  if (batch.factors) out.factors = Object.fromEntries(Object.entries(batch.factors).map(([k, t]) => [k, tf.slice(t, start, size)]));
  if (batch.ids) out.ids = batch.ids.slice(start, start + size);
  return out;
}

/** Dispose every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  batch.images.dispose();
  batch.expression?.dispose();
  if (batch.factors) for (const t of Object.values(batch.factors)) t.dispose();
}

/** The part of @dfd/datasets' `Loader` that {@link loaderBatchSource} uses. */
export interface StatefulLoader<S = unknown> extends AsyncIterable<Batch & { epoch?: number; index?: number }> {
  readonly length: number;
  readonly size: number;
  getState(): S & { epoch: number; cursor: number };
  setState(state: S): void;
}

/**
 * Adapts a stateful @dfd/datasets loader (its state = epoch, cursor and epoch-start RNG) to a
 * {@link BatchSource}. The loader's own state goes into every checkpoint, so a resumed run asks
 * for exactly the batch the loader will produce next; any other request is a bug and throws.
 */
export function loaderBatchSource<S>(loader: StatefulLoader<S>): BatchSource {
  return {
    stepsPerEpoch: loader.length,
    size: loader.size,
    async *batches(epoch: number, fromStep = 0) {
      const s = loader.getState();
      const atEnd = s.cursor >= loader.length;
      const nextEpoch = atEnd ? s.epoch + 1 : s.epoch;
      const nextStep = atEnd ? 0 : s.cursor;
      if (nextEpoch !== epoch || nextStep !== fromStep) {
        throw new TrainingSetupError(`the loader is at epoch ${nextEpoch} batch ${nextStep}, the trainer asked for epoch ${epoch} batch ${fromStep}; restore the loader state from the same checkpoint.`);
      }
      yield* loader;
    },
    getState: () => loader.getState(),
    setState: (state) => loader.setState(state as S),
  };
}
