import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { decodeImage } from './image.js';
import type { Transform } from './transforms.js';
import type { ImageDecoder, RgbImage, Sample } from './types.js';

/** Options of {@link createLoader}. */
export interface LoaderOptions {
  batchSize: number;
  /** Per-sample transform (e.g. trainTransform / evalTransform); gets a per-sample Rng. */
  transform: Transform;
  /** Seed of the epoch order and of the augmentation (default 0). */
  seed?: number;
  /** Shuffle each epoch (default true). */
  shuffle?: boolean;
  /**
   * Class-balanced sampling with replacement: each draw picks a class uniformly, then a sample
   * of it. `true` balances `expression`; a string balances that factor.
   */
  balanced?: boolean | string;
  /** Batches prepared ahead while the consumer works (default 2). */
  prefetch?: number;
  /** Drop the last incomplete batch (default false). */
  dropLast?: boolean;
  /** Decoder for file/url/bytes sources (default: `@dfd/datasets/node`'s sharp, or the browser's). */
  decoder?: ImageDecoder;
  /** Factor names to emit (default: every factor any sample carries). */
  factors?: readonly string[];
  /** Keep decoded images in memory after the first epoch (small datasets). */
  cache?: boolean;
  /** Decoding hint: shrink files larger than this on load (see DecodeHint.maxSide); default full size. */
  decodeMaxSide?: number;
}

/** Everything needed to resume a loader exactly. JSON-serialisable. */
export interface LoaderState {
  epoch: number;
  /** Index of the next batch within the epoch. */
  cursor: number;
  /** State of the epoch's order generator at the epoch start (a check: it is derived from seed and epoch). */
  rng: [number, number, number, number];
  seed: number;
}

/**
 * One batch. The consumer owns the tensors and disposes them ({@link disposeBatch}).
 * Missing labels (factor-only datasets, samples without a factor) are -1.
 */
export interface Batch {
  /** NHWC float32, normalised by the transform. */
  images: tf.Tensor4D;
  /** Canonical expression indices, int32. */
  expression: tf.Tensor1D;
  /** One int32 vector per factor name. */
  factors: Record<string, tf.Tensor1D>;
  ids: string[];
  epoch: number;
  /** Index of this batch within its epoch. */
  index: number;
}

/**
 * An async iterable over the rest of the current epoch; the next iteration starts the next
 * epoch. Epoch e's order and augmentation depend only on (seed, e), so `batches(e, fromStep)`
 * gives random access (the trainer's BatchSource contract).
 */
export interface Loader extends AsyncIterable<Batch> {
  /** Batches per epoch. */
  readonly length: number;
  /** Same as `length`. */
  readonly stepsPerEpoch: number;
  /** Number of samples. */
  readonly size: number;
  readonly batchSize: number;
  /** The epoch the next batch belongs to. */
  readonly epoch: number;
  /** Factor names every batch carries. */
  readonly factorNames: readonly string[];
  getState(): LoaderState;
  setState(state: LoaderState): void;
  /** The batches of `epoch` from batch `fromStep`; also moves the loader's position there. */
  batches(epoch: number, fromStep?: number): AsyncIterable<Batch>;
}

/** Disposes every tensor of a batch. */
export function disposeBatch(batch: Batch): void {
  batch.images.dispose();
  batch.expression.dispose();
  for (const t of Object.values(batch.factors)) t.dispose();
}

interface HostBatch {
  images: Float32Array;
  height: number;
  width: number;
  size: number;
  expression: Int32Array;
  factors: Record<string, Int32Array>;
  ids: string[];
  epoch: number;
  index: number;
}

/** Creates a seeded, prefetching batch loader over `samples`. */
export function createLoader(samples: readonly Sample[], options: LoaderOptions): Loader {
  return new BatchLoader(samples, options);
}

class BatchLoader implements Loader {
  readonly batchSize: number;
  readonly factorNames: readonly string[];
  private readonly seed: number;
  private order: Int32Array | null = null;
  private orderEpoch = -1;
  private epochNo = 0;
  private cursor = 0;
  private readonly cache = new Map<number, RgbImage>();
  private readonly groups: Int32Array[] | null;

  constructor(
    private readonly samples: readonly Sample[],
    private readonly options: LoaderOptions,
  ) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) throw new RangeError(`createLoader: batchSize must be a positive integer, got ${options.batchSize}`);
    if (samples.length === 0) throw new RangeError('createLoader: no samples (empty split?)');
    this.batchSize = options.batchSize;
    this.seed = options.seed ?? 0;
    const names = new Set<string>(options.factors ?? []);
    if (!options.factors) for (const s of samples) for (const k of Object.keys(s.factors ?? {})) names.add(k);
    this.factorNames = [...names];
    this.groups = options.balanced ? this.buildGroups(options.balanced === true ? 'expression' : options.balanced) : null;
    if (this.length === 0) throw new RangeError(`createLoader: ${samples.length} samples give no full batch of ${this.batchSize} with dropLast`);
  }

  get length(): number {
    const n = this.samples.length / this.batchSize;
    return this.options.dropLast ? Math.floor(n) : Math.ceil(n);
  }

  get stepsPerEpoch(): number {
    return this.length;
  }

  get size(): number {
    return this.samples.length;
  }

  get epoch(): number {
    return this.epochNo;
  }

  getState(): LoaderState {
    return { epoch: this.epochNo, cursor: this.cursor, rng: epochRng(this.seed, this.epochNo).getState(), seed: this.seed };
  }

  setState(state: LoaderState): void {
    if (state.seed !== this.seed) throw new RangeError(`loader state was saved with seed ${state.seed}, this loader has seed ${this.seed}`);
    if (!Number.isInteger(state.epoch) || state.epoch < 0) throw new RangeError(`loader state epoch ${state.epoch} is not a non-negative integer`);
    if (!Number.isInteger(state.cursor) || state.cursor < 0 || state.cursor > this.length) throw new RangeError(`loader state cursor ${state.cursor} is outside 0..${this.length}`);
    const expected = epochRng(this.seed, state.epoch).getState();
    if (state.rng && state.rng.join() !== expected.join()) throw new RangeError('loader state rng does not match its seed and epoch (saved by an incompatible loader version?)');
    this.epochNo = state.epoch;
    this.cursor = state.cursor;
  }

  private buildGroups(key: string): Int32Array[] {
    const byLabel = new Map<number, number[]>();
    this.samples.forEach((s, i) => {
      const label = key === 'expression' ? s.expression : s.factors?.[key];
      if (label === undefined || label < 0) return;
      if (!byLabel.has(label)) byLabel.set(label, []);
      byLabel.get(label)!.push(i);
    });
    if (byLabel.size === 0) throw new RangeError(`createLoader: balanced sampling by '${key}' but no sample has that label`);
    return [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => Int32Array.from(v));
  }

  // Epoch e's order depends only on (seed, e): random access and exact resume for free.
  private orderOf(epoch: number): Int32Array {
    if (this.order && this.orderEpoch === epoch) return this.order;
    const rng = epochRng(this.seed, epoch);
    const n = this.samples.length;
    let order: Int32Array;
    if (this.groups) {
      order = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const g = this.groups[rng.int(this.groups.length)]!;
        order[i] = g[rng.int(g.length)]!;
      }
    } else {
      order = Int32Array.from({ length: n }, (_, i) => i);
      if (this.options.shuffle ?? true) {
        for (let i = n - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          const t = order[i]!;
          order[i] = order[j]!;
          order[j] = t;
        }
      }
    }
    this.order = order;
    this.orderEpoch = epoch;
    return order;
  }

  private async decode(index: number): Promise<RgbImage> {
    const hit = this.cache.get(index);
    if (hit) return hit;
    const hint = this.options.decodeMaxSide ? { maxSide: this.options.decodeMaxSide } : undefined;
    const img = await decodeImage(this.samples[index]!.image, this.options.decoder, hint);
    if (this.options.cache) this.cache.set(index, img);
    return img;
  }

  private async prepare(order: Int32Array, epoch: number, b: number): Promise<HostBatch> {
    const from = b * this.batchSize;
    const idx = order.subarray(from, Math.min(from + this.batchSize, order.length));
    const decoded = await Promise.all(Array.from(idx, (i) => this.decode(i)));
    const n = idx.length;
    let images: Float32Array | null = null;
    let per = 0;
    let height = 0;
    let width = 0;
    const expression = new Int32Array(n);
    const factors: Record<string, Int32Array> = {};
    for (const name of this.factorNames) factors[name] = new Int32Array(n);
    const ids: string[] = [];
    for (let k = 0; k < n; k++) {
      const sample = this.samples[idx[k]!]!;
      // One Rng per (seed, epoch, position): the same batch whatever the prefetch depth or resume point.
      const out = this.options.transform(decoded[k]!, new Rng(`${this.seed}:${epoch}:${from + k}`));
      if (!images) {
        per = out.width * out.height * 3;
        height = out.height;
        width = out.width;
        images = new Float32Array(n * per);
      } else if (out.data.length !== per || out.height !== height || out.width !== width) {
        throw new RangeError(`transform output ${out.height}x${out.width} for sample '${sample.id}' differs from ${height}x${width}; use a transform with a fixed size`);
      }
      images.set(out.data, k * per);
      expression[k] = sample.expression ?? -1;
      for (const name of this.factorNames) factors[name]![k] = sample.factors?.[name] ?? -1;
      ids.push(sample.id);
    }
    return { images: images!, height, width, size: n, expression, factors, ids, epoch, index: b };
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    if (this.cursor >= this.length) {
      this.epochNo++;
      this.cursor = 0;
    }
    return this.run(this.epochNo, this.cursor, true);
  }

  batches(epoch: number, fromStep = 0): AsyncIterable<Batch> {
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`batches: epoch must be a non-negative integer, got ${epoch}`);
    if (!Number.isInteger(fromStep) || fromStep < 0 || fromStep > this.length) throw new RangeError(`batches: fromStep ${fromStep} is outside 0..${this.length}`);
    return { [Symbol.asyncIterator]: () => this.run(epoch, fromStep, false) };
  }

  private async *run(epoch: number, from: number, rollOver: boolean): AsyncGenerator<Batch> {
    // Batches are tensors: without an active backend, select one (`auto`, as @dfd/backends'
    // ensureBackend) instead of failing with tfjs's "No backend found in registry".
    if (!tf.engine().backendName) await (await import('@dfd/backends')).ensureBackend('auto', { gradients: false });
    const order = this.orderOf(epoch);
    this.epochNo = epoch;
    this.cursor = from;
    const total = this.length;
    const ahead = Math.max(0, this.options.prefetch ?? 2);
    const queue: Array<Promise<HostBatch>> = [];
    let next = from;
    const fill = () => {
      while (next < total && queue.length < ahead + 1) {
        const p = this.prepare(order, epoch, next++);
        // Batches abandoned by an early `break` must not surface as unhandled rejections.
        p.catch(() => undefined);
        queue.push(p);
      }
    };
    fill();
    while (queue.length > 0) {
      const host = await queue.shift()!;
      fill();
      this.cursor = host.index + 1;
      // Tensors are made only here, at hand-over: prefetched batches hold plain arrays, so a
      // consumer that stops early leaks nothing.
      const factors: Record<string, tf.Tensor1D> = {};
      for (const [name, v] of Object.entries(host.factors)) factors[name] = tf.tensor1d(v, 'int32');
      yield {
        images: tf.tensor4d(host.images, [host.size, host.height, host.width, 3], 'float32'),
        expression: tf.tensor1d(host.expression, 'int32'),
        factors,
        ids: host.ids,
        epoch: host.epoch,
        index: host.index,
      };
    }
    if (rollOver) {
      this.epochNo = epoch + 1;
      this.cursor = 0;
    }
  }
}

function epochRng(seed: number, epoch: number): Rng {
  return new Rng(`${seed}:order:${epoch}`);
}
