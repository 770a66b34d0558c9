import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { centralDiff } from '../../../tools/testing/finite-diff.js';
import { batchNormTrain } from './batchnorm-train.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const [N, H, W, C] = [2, 3, 3, 2];
const EPS = 1e-5;
const seq = (n: number, scale: number, offset = 0) => Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + offset) * scale + 0.3 * offset);

/** L = sum(r * BN(x; gamma, beta)) in float64, independent of tfjs. */
function lossF64(x: ArrayLike<number>, gamma: ArrayLike<number>, beta: ArrayLike<number>, r: ArrayLike<number>): number {
  let loss = 0;
  for (let c = 0; c < C; c++) {
    const idx = Array.from({ length: N * H * W }, (_, i) => i * C + c);
    const mean = idx.reduce((s, i) => s + x[i]!, 0) / idx.length;
    const v = idx.reduce((s, i) => s + (x[i]! - mean) ** 2, 0) / idx.length;
    for (const i of idx) loss += r[i]! * (((x[i]! - mean) / Math.sqrt(v + EPS)) * gamma[c]! + beta[c]!);
  }
  return loss;
}

describe('batchNormTrain (fused training-mode batch norm)', () => {
  const xv = seq(N * H * W * C, 2, 1.5); // channel means far from zero
  const gv = [1.3, -0.7];
  const bv = [0.2, -0.4];
  const rv = seq(N * H * W * C, 1, 0.25);

  it('forward equals the float64 batch-norm with biased variance; statistics are returned', () => {
    const x = tf.tensor4d(xv, [N, H, W, C]);
    const { y, mean, variance } = batchNormTrain(x, tf.tensor1d(gv), tf.tensor1d(bv), EPS);
    const yd = y.dataSync();
    for (let c = 0; c < C; c++) {
      const vals = xv.filter((_, i) => i % C === c);
      const m = vals.reduce((a, b) => a + b, 0) / vals.length;
      const v = vals.reduce((a, b) => a + (b - m) ** 2, 0) / vals.length;
      expect(mean.dataSync()[c]).toBeCloseTo(m, 5);
      expect(variance.dataSync()[c]).toBeCloseTo(v, 5);
      xv.forEach((xi, i) => {
        if (i % C === c) expect(yd[i]).toBeCloseTo(((xi - m) / Math.sqrt(v + EPS)) * gv[c]! + bv[c]!, 5);
      });
    }
    tf.dispose([x, y, mean, variance]);
  });

  it('gradients for x (through the batch statistics), gamma and beta match float64 central differences', () => {
    const x = tf.tensor4d(xv, [N, H, W, C]);
    const g = tf.tensor1d(gv);
    const b = tf.tensor1d(bv);
    const r = tf.tensor4d(rv, [N, H, W, C]);
    const [dx, dg, db] = tf.grads((xx: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => {
      const out = batchNormTrain(xx as tf.Tensor4D, gg as tf.Tensor1D, bb as tf.Tensor1D, EPS);
      tf.dispose([out.mean, out.variance]);
      return tf.sum(tf.mul(out.y, r));
    })([x, g, b]) as [tf.Tensor, tf.Tensor, tf.Tensor];
    const ex = centralDiff((v) => lossF64(v, gv, bv, rv), xv, 1e-4);
    const eg = centralDiff((v) => lossF64(xv, v, bv, rv), gv, 1e-4);
    const eb = centralDiff((v) => lossF64(xv, gv, v, rv), bv, 1e-4);
    const dxd = dx.dataSync();
    ex.forEach((e, i) => expect(Math.abs(dxd[i]! - e)).toBeLessThan(2e-4));
    // The x gradient is not trivially zero: it sums to zero per channel but has magnitude.
    expect(Math.max(...Array.from(dxd, Math.abs))).toBeGreaterThan(0.05);
    eg.forEach((e, i) => expect(dg.dataSync()[i]).toBeCloseTo(e, 3));
    eb.forEach((e, i) => expect(db.dataSync()[i]).toBeCloseTo(e, 3));
    tf.dispose([x, g, b, r, dx, dg, db]);
  });

  it('saves no activation-sized tensor besides x for the backward pass (tf.moments + tf.batchNorm save five more)', () => {
    const x = tf.tensor4d(seq(4 * 8 * 8 * 16, 1), [4, 8, 8, 16]);
    const g = tf.variable(tf.ones([16]));
    const b = tf.variable(tf.zeros([16]));
    const actBytes = x.size * 4;
    // tf.memory().numBytes counts every tensor handle, so the clone of x the tape saves counts as
    // one activation although it shares x's buffer.
    const liveDuringForward = (fwd: () => tf.Tensor4D): number => {
      let grown = 0;
      const before = tf.memory().numBytes;
      const { value, grads } = tf.variableGrads(() => {
        const y = fwd();
        grown = tf.memory().numBytes - before;
        return tf.sum(y) as tf.Scalar;
      }, [g, b]);
      tf.dispose([value, grads as never]);
      return grown;
    };
    const fused = liveDuringForward(() => {
      const o = batchNormTrain(x, g as tf.Tensor1D, b as tf.Tensor1D, EPS);
      tf.dispose([o.mean, o.variance]);
      return o.y;
    });
    const composed = liveDuringForward(() => {
      const { mean, variance } = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm4d(x, mean as tf.Tensor1D, variance as tf.Tensor1D, b as tf.Tensor1D, g as tf.Tensor1D, EPS);
    });
    // fused: the output y and the saved handle of x; composed also keeps x - mean, its square, ...
    expect(fused).toBeLessThan(2.1 * actBytes);
    expect(composed - fused).toBeGreaterThan(2.5 * actBytes);
    tf.dispose([x, g, b]);
  });
});
