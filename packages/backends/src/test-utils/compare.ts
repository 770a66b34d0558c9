import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';

// Shared by the kernel tests: the same inputs run on wasm and on the CPU backend (the reference).

/** Standard-normal Float32Array of `shape`'s size, drawn from `rng`. */
export function randn(rng: Rng, shape: number[]): Float32Array {
  const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  return out;
}

/** Runs `f` on a backend and returns the flat result and its shape. */
export async function on(backend: 'cpu' | 'wasm', f: () => tf.Tensor): Promise<{ v: Float32Array; shape: number[] }> {
  await tf.setBackend(backend);
  const t = f();
  const v = (await t.data()) as Float32Array;
  const shape = t.shape;
  t.dispose();
  return { v, shape };
}
