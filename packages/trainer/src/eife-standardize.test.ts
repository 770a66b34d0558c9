import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { tensorBatchSource } from './data.js';
import { measureEmbeddingStats, StandardizedEife, standardizeExtractors, statsSample } from './eife-standardize.js';
import type { EifeLike } from './task.js';

/** A frozen "extractor" with a known embedding: [2*x0 + 3, 5 (constant), x1 * 0.01]. */
class FakeEife implements EifeLike {
  readonly embedDim = 3;
  disposed = false;
  forward(x: tf.Tensor4D): { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> } {
    return tf.tidy(() => {
      const flat = tf.reshape(x, [x.shape[0], -1]);
      const x0 = tf.slice(flat, [0, 0], [-1, 1]);
      const x1 = tf.slice(flat, [0, 1], [-1, 1]);
      return { embedding: tf.concat([tf.add(tf.mul(x0, 2), 3), tf.fill([x.shape[0], 1], 5), tf.mul(x1, 0.01)], 1) as tf.Tensor2D, logits: {} };
    }) as { embedding: tf.Tensor2D; logits: Record<string, tf.Tensor2D> };
  }
  namedParameters(): Array<[string, tf.Variable]> {
    return [];
  }
  namedBuffers(): Array<[string, tf.Variable]> {
    return [];
  }
  dispose(): void {
    this.disposed = true;
  }
}

// Five 1x1x2 "images": x0 = 0..4, x1 = 10, 20, 30, 40, 50.
const x0 = [0, 1, 2, 3, 4];
const x1 = [10, 20, 30, 40, 50];
const images = new Float32Array(x0.flatMap((v, i) => [v, x1[i]!]));
const source = (batchSize: number) => tensorBatchSource({ images, shape: [1, 1, 2] }, { batchSize, shuffle: false });

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('measureEmbeddingStats', () => {
  it('gives the closed-form mean and population std per dimension, whatever the batch size', async () => {
    for (const bs of [1, 2, 5]) {
      const [s] = await measureEmbeddingStats([new FakeEife()], source(bs));
      expect(s!.count).toBe(5);
      // dim 0: 2*x0+3 = 3..11, mean 7, population variance 4*var(x0) = 4*2 = 8
      expect(s!.mean[0]).toBeCloseTo(7, 5);
      expect(s!.std[0]).toBeCloseTo(Math.sqrt(8), 5);
      expect(s!.mean[1]).toBeCloseTo(5, 6);
      expect(s!.std[1]).toBeCloseTo(0, 3);
      // dim 2: 0.01*x1 = 0.1..0.5, mean 0.3, population variance 0.01^2 * 200 = 0.02
      expect(s!.mean[2]).toBeCloseTo(0.3, 6);
      expect(s!.std[2]).toBeCloseTo(Math.sqrt(0.02), 6);
    }
  });

  it('refuses fewer than two images', async () => {
    const one = tensorBatchSource({ images: new Float32Array([1, 2]), shape: [1, 1, 2] }, { batchSize: 1, shuffle: false });
    await expect(measureEmbeddingStats([new FakeEife()], one)).rejects.toThrow(/at least 2 source images; got 1/);
  });
});

describe('StandardizedEife', () => {
  it('emits (d - mean) / std: zero mean and unit spread on the measured images, constant dimensions 0', async () => {
    const inner = new FakeEife();
    const [std] = await standardizeExtractors([inner], source(2));
    const before = tf.memory().numTensors;
    const x = tf.tensor4d(images, [5, 1, 1, 2]);
    const { embedding } = std!.forward(x, { training: false });
    const rows = (await embedding.array()) as number[][];
    tf.dispose([x, embedding]);
    expect(tf.memory().numTensors).toBe(before);
    const expected0 = x0.map((v) => (2 * v + 3 - 7) / Math.sqrt(8));
    const expected2 = x1.map((v) => (0.01 * v - 0.3) / Math.sqrt(0.02));
    rows.forEach((r, i) => {
      expect(r[0]).toBeCloseTo(expected0[i]!, 4);
      expect(Math.abs(r[1]!)).toBeLessThan(1e-6 * 5 + 1e-3);
      expect(r[2]).toBeCloseTo(expected2[i]!, 4);
    });
    expect(std!.embedDim).toBe(3);
    std!.dispose();
    expect(inner.disposed).toBe(true);
  });

  it('says when the statistics do not fit the extractor', () => {
    expect(() => new StandardizedEife(new FakeEife(), { mean: new Float32Array(2), std: new Float32Array(2), count: 2 })).toThrow(/2 dimensions but the extractor embeds 3/);
  });

  it('disposes the extractors when measuring fails', async () => {
    const inner = new FakeEife();
    const one = tensorBatchSource({ images: new Float32Array([1, 2]), shape: [1, 1, 2] }, { batchSize: 1, shuffle: false });
    await expect(standardizeExtractors([inner], one)).rejects.toThrow();
    expect(inner.disposed).toBe(true);
  });
});

describe('statsSample', () => {
  it('takes every k-th sample, at most max', () => {
    const xs = Array.from({ length: 10 }, (_, i) => i);
    expect(statsSample(xs, 4)).toEqual([0, 3, 6, 9]);
    expect(statsSample(xs, 20)).toEqual(xs);
  });
});
