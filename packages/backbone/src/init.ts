import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';

/** Uniform(-bound, bound) float32 tensor drawn from `rng` (deterministic: same seed, same values). */
export function uniformTensor(rng: Rng, shape: number[], bound: number): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * bound;
  return tf.tensor(data, shape, 'float32');
}

/**
 * PyTorch's default Conv2d/Linear init, kaiming_uniform_(a=sqrt(5)): weight and bias both
 * Uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels * kh * kw.
 */
export function pytorchDefaultBound(fanIn: number): number {
  return 1 / Math.sqrt(fanIn);
}

/** Accepts a seed or an Rng so modules can share one stream (deterministic creation order). */
export function toRng(rng: Rng | number | undefined): Rng {
  if (rng instanceof Rng) return rng;
  return new Rng(rng ?? 0);
}
