import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { useBackend } from '../backends.js';
import { on, randn } from '../test-utils/compare.js';

/* The wasm depthwise-conv gradients (depthwise-backprop-input.ts, depthwise-backprop-filter.ts) against the tfjs CPU backend's. */

function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let scale = 1;
  for (const w of b) scale = Math.max(scale, Math.abs(w));
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs((a[i] ?? NaN) - (b[i] ?? NaN)));
  return m / scale;
}

beforeAll(async () => {
  await import('@tensorflow/tfjs-backend-cpu');
  await useBackend('wasm');
  await useBackend('cpu');
});

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]];
// No dilated case: tfjs-core's depthwise gradient itself refuses dilation > 1.
const CASES: Array<{ x: [number, number, number, number]; k: number; m: number; stride: number; pad: Pad; dilation?: number }> = [
  { x: [2, 7, 7, 3], k: 3, m: 1, stride: 1, pad: 'same' },
  { x: [2, 8, 8, 4], k: 3, m: 1, stride: 2, pad: 'same' },
  { x: [1, 9, 7, 2], k: 3, m: 2, stride: 2, pad: 'valid' },
  { x: [3, 6, 6, 2], k: 5, m: 3, stride: 1, pad: [[0, 0], [1, 2], [2, 0], [0, 0]] },
];

describe('wasm depthwise conv gradients vs the cpu backend', () => {
  it('are registered on wasm (the stock backend has none)', () => {
    expect(tf.getKernel('DepthwiseConv2dNativeBackpropInput', 'wasm')).toBeDefined();
    expect(tf.getKernel('DepthwiseConv2dNativeBackpropFilter', 'wasm')).toBeDefined();
  });

  for (const c of CASES) {
    const name = `x ${c.x.join('x')} k${c.k} m${c.m} s${c.stride} ${typeof c.pad === 'string' ? c.pad : 'explicit'}${c.dilation ? ` d${c.dilation}` : ''}`;
    it(`dx and dW: ${name}`, async () => {
      const rng = new Rng(name);
      const w = [c.k, c.k, c.x[3], c.m] as [number, number, number, number];
      const xv = randn(rng, c.x);
      const wv = randn(rng, w);
      const grads = (i: 0 | 1) => () =>
        tf.tidy(() => {
          const loss = (a: tf.Tensor, b: tf.Tensor) => {
            const y = tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad, 'NHWC', c.dilation ?? 1);
            return tf.sum(tf.mul(y, tf.sin(tf.reshape(tf.range(0, y.size), y.shape))));
          };
          return tf.grads(loss)([tf.tensor4d(xv, c.x), tf.tensor4d(wv, w)])[i] as tf.Tensor;
        });
      for (const i of [0, 1] as const) {
        const got = await on('wasm', grads(i));
        const want = await on('cpu', grads(i));
        expect(got.shape).toEqual(want.shape);
        expect(maxRelDiff(got.v, want.v), `${i ? 'dW' : 'dx'} ${name}`).toBeLessThan(1e-5);
      }
    });
  }

  it('a separable conv (the face-api backbone block) trains on wasm like on cpu', async () => {
    const rng = new Rng('sep');
    const xv = randn(rng, [2, 8, 8, 4]);
    const dw = randn(rng, [3, 3, 4, 1]);
    const pw = randn(rng, [1, 1, 4, 6]);
    const step = () =>
      tf.tidy(() => {
        const d = tf.variable(tf.tensor4d(dw, [3, 3, 4, 1]));
        const p = tf.variable(tf.tensor4d(pw, [1, 1, 4, 6]));
        const { grads } = tf.variableGrads(() => tf.sum(tf.square(tf.relu(tf.separableConv2d(tf.tensor4d(xv, [2, 8, 8, 4]), d as tf.Tensor4D, p as tf.Tensor4D, 2, 'same')))) as tf.Scalar, [d, p]);
        const out = tf.concat([tf.reshape(grads[d.name]!, [-1]), tf.reshape(grads[p.name]!, [-1])]);
        d.dispose();
        p.dispose();
        return out;
      });
    const got = await on('wasm', step);
    const want = await on('cpu', step);
    expect(maxRelDiff(got.v, want.v)).toBeLessThan(1e-5);
  });
});
