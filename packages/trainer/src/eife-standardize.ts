import * as tf from '@tensorflow/tfjs-core';
import type { BatchSource } from './data.js';
import { disposeBatch } from './data.js';
import { TrainingSetupError } from './errors.js';
import type { EifeLike } from './task.js';

/** Per-dimension statistics of one extractor's embedding over the images it was measured on. */
export interface EmbeddingStats {
  /** Mean of each dimension. */
  mean: Float32Array;
  /** Population standard deviation of each dimension (before the floor). */
  std: Float32Array;
  /** Images measured. */
  count: number;
}

/** Dimensions whose spread is below this are divided by it instead (a constant dimension stays 0). */
export const STD_FLOOR = 1e-6;

/**
 * Measures each extractor's embedding mean and standard deviation per dimension over every batch
 * of `source` (in inference mode). Sums are accumulated in float64 on the host, so the result does
 * not depend on the batch size beyond float32 rounding of the embeddings themselves.
 */
export async function measureEmbeddingStats(extractors: EifeLike[], source: BatchSource): Promise<EmbeddingStats[]> {
  const sums = extractors.map(() => ({ s: null as Float64Array | null, s2: null as Float64Array | null, n: 0 }));
  for await (const batch of source.batches(0)) {
    try {
      extractors.forEach((e, k) => {
        const emb = tf.tidy(() => e.forward(batch.images, { training: false }).embedding);
        const [n, d] = emb.shape;
        const data = emb.dataSync();
        emb.dispose();
        const acc = sums[k]!;
        acc.s ??= new Float64Array(d);
        acc.s2 ??= new Float64Array(d);
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < d; j++) {
            const v = data[i * d + j]!;
            acc.s[j]! += v;
            acc.s2[j]! += v * v;
          }
        }
        acc.n += n;
      });
    } finally {
      disposeBatch(batch);
    }
  }
  return sums.map(({ s, s2, n }, k) => {
    if (!s || !s2 || n < 2) throw new TrainingSetupError(`standardising EIFE ${k + 1}'s targets needs at least 2 source images; got ${n}.`);
    const mean = new Float32Array(s.length);
    const std = new Float32Array(s.length);
    for (let j = 0; j < s.length; j++) {
      const m = s[j]! / n;
      mean[j] = m;
      std[j] = Math.sqrt(Math.max(0, s2[j]! / n - m * m));
    }
    return { mean, std, count: n };
  });
}

/**
 * A frozen extractor whose embedding is standardised per dimension, d' = (d - mean) / std, with
 * statistics measured once on the source's training images ({@link measureEmbeddingStats}). Its
 * targets then have unit spread in every dimension, whatever the scale the pretrained net emits
 * (face-api's identity descriptor spreads 0.04 per dimension), so the smooth-L1 MI term of Eq. 8
 * and the reversed gradient it sends weigh what they would on unit-scale embeddings.
 */
export class StandardizedEife implements EifeLike {
  readonly embedDim: number;
  private readonly mean: tf.Tensor1D;
  private readonly invStd: tf.Tensor1D;

  constructor(
    readonly inner: EifeLike & { embedDim: number },
    readonly stats: EmbeddingStats,
  ) {
    if (stats.mean.length !== inner.embedDim) throw new TrainingSetupError(`EIFE statistics have ${stats.mean.length} dimensions but the extractor embeds ${inner.embedDim}.`);
    this.embedDim = inner.embedDim;
    this.mean = tf.tensor1d(stats.mean);
    this.invStd = tf.tensor1d(Array.from(stats.std, (s) => 1 / Math.max(s, STD_FLOOR)));
  }

  forward(x: tf.Tensor4D, options: { training: boolean }): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> } {
    const out = this.inner.forward(x, options);
    const embedding = tf.tidy(() => tf.mul(tf.sub(out.embedding, this.mean), this.invStd) as tf.Tensor2D);
    out.embedding.dispose();
    return { embedding, logits: out.logits };
  }

  namedParameters(): Array<[string, tf.Variable]> {
    return this.inner.namedParameters();
  }

  namedBuffers(): Array<[string, tf.Variable]> {
    return this.inner.namedBuffers();
  }

  /** Frees the statistics and the wrapped extractor. */
  dispose(): void {
    this.mean.dispose();
    this.invStd.dispose();
    this.inner.dispose();
  }
}

/** At most `max` samples spread evenly over `samples` (every k-th), deterministic and independent of the seed. */
export function statsSample<T>(samples: T[], max = 1024): T[] {
  const step = Math.max(1, Math.ceil(samples.length / max));
  return samples.filter((_, i) => i % step === 0);
}

/** Wraps every extractor in a {@link StandardizedEife} measured on `source`; disposes the originals on failure. */
export async function standardizeExtractors<E extends EifeLike & { embedDim: number }>(extractors: E[], source: BatchSource): Promise<StandardizedEife[]> {
  let stats: EmbeddingStats[];
  try {
    stats = await measureEmbeddingStats(extractors, source);
  } catch (err) {
    for (const e of extractors) e.dispose();
    throw err;
  }
  return extractors.map((e, k) => new StandardizedEife(e, stats[k]!));
}
