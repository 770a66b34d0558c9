import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
// tfjs-core alone has no gradient functions (tfjs-layers or @dfd/backends registerGradients() add them).
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { BatchNorm2d, Conv2d, Linear, PReLU, maxPool2d } from './layers.js';
import { ShapeError } from './errors.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Independent reference: direct NHWC convolution with PyTorch's symmetric zero padding. */
function naiveConv(x: Float32Array, [n, h, w, ci]: number[], wt: Float32Array, k: number, co: number, stride: number, pad: number) {
  const ho = Math.floor((h + 2 * pad - k) / stride) + 1;
  const wo = Math.floor((w + 2 * pad - k) / stride) + 1;
  const out = new Float32Array(n! * ho * wo * co);
  for (let b = 0; b < n!; b++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++)
        for (let o = 0; o < co; o++) {
          let s = 0;
          for (let di = 0; di < k; di++)
            for (let dj = 0; dj < k; dj++) {
              const yi = i * stride - pad + di;
              const xj = j * stride - pad + dj;
              if (yi < 0 || yi >= h! || xj < 0 || xj >= w!) continue;
              for (let c = 0; c < ci!; c++) s += x[((b * h! + yi) * w! + xj) * ci! + c]! * wt[((di * k + dj) * ci! + c) * co + o]!;
            }
          out[((b * ho + i) * wo + j) * co + o] = s;
        }
  return { out, shape: [n!, ho, wo, co] };
}

function seq(n: number, scale = 0.1): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * scale * 10);
}

describe('Conv2d', () => {
  it('stride 2 with symmetric padding matches a direct convolution (and differs from TF "same")', () => {
    const conv = new Conv2d(2, 3, { kernelSize: 3, stride: 2, padding: 1, rng: 5 });
    const xs = [1, 6, 6, 2];
    const x = tf.tensor4d(seq(72), xs as [number, number, number, number]);
    const y = conv.forward(x);
    const ref = naiveConv(x.dataSync() as Float32Array, xs, conv.weight.dataSync() as Float32Array, 3, 3, 2, 1);
    expect(y.shape).toEqual(ref.shape);
    const yd = y.dataSync();
    ref.out.forEach((v, i) => expect(yd[i]).toBeCloseTo(v, 5));
    const same = tf.conv2d(x, conv.weight as tf.Tensor4D, 2, 'same');
    expect(same.shape).toEqual(y.shape);
    expect(tf.max(tf.abs(tf.sub(same, y))).dataSync()[0]).toBeGreaterThan(1e-3);
    tf.dispose([x, y, same]);
    conv.dispose();
  });

  it('gradients through the explicit padding match a direct convolution (odd and even inputs, stride 2)', () => {
    for (const size of [7, 6]) {
      const conv = new Conv2d(2, 3, { kernelSize: 3, stride: 2, padding: 1, rng: 11 });
      const xs = [1, size, size, 2];
      const xv = seq(size * size * 2);
      const wv = conv.weight.dataSync() as Float32Array;
      const { shape } = naiveConv(xv, xs, wv, 3, 3, 2, 1);
      const r = seq(shape.reduce((a, b) => a * b), 0.05);
      // L = sum(r * conv(x, w)) is linear in x and in w: dL/dx_i = L(e_i, w), dL/dw_j = L(x, e_j).
      const loss = (xa: Float32Array, wa: Float32Array) => naiveConv(xa, xs, wa, 3, 3, 2, 1).out.reduce((s, v, i) => s + v * r[i]!, 0);
      const unit = (n: number, i: number) => Float32Array.from({ length: n }, (_, j) => (j === i ? 1 : 0));
      const x = tf.tensor4d(xv, xs as [number, number, number, number]);
      const rt = tf.tensor4d(r, shape as [number, number, number, number]);
      const dx = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(conv.forward(xx as tf.Tensor4D), rt)))(x);
      const { grads } = tf.variableGrads(() => tf.sum(tf.mul(conv.forward(x), rt)) as tf.Scalar, [conv.weight]);
      expect(dx.shape).toEqual(xs);
      const dxd = dx.dataSync();
      xv.forEach((_, i) => expect(dxd[i]).toBeCloseTo(loss(unit(xv.length, i), wv), 5));
      const dwd = grads[conv.weight.name]!.dataSync();
      wv.forEach((_, j) => expect(dwd[j]).toBeCloseTo(loss(xv, unit(wv.length, j)), 4));
      tf.dispose([x, rt, dx, grads as never]);
      conv.dispose();
    }
  });

  it('uses PyTorch default init bounds (1/sqrt(fan_in)), deterministic by seed, bias only when asked', () => {
    const a = new Conv2d(4, 5, { kernelSize: 3, rng: 7, bias: true });
    const b = new Conv2d(4, 5, { kernelSize: 3, rng: 7, bias: true });
    const c = new Conv2d(4, 5, { kernelSize: 3, rng: 8 });
    expect(a.weight.shape).toEqual([3, 3, 4, 5]);
    const bound = 1 / Math.sqrt(36);
    const w = a.weight.dataSync();
    expect(Math.max(...Array.from(w, Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...Array.from(w, Math.abs))).toBeGreaterThan(0.8 * bound);
    expect(Array.from(b.weight.dataSync())).toEqual(Array.from(w));
    expect(Array.from(c.weight.dataSync())).not.toEqual(Array.from(w));
    expect(a.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    expect(c.namedParameters().map(([n]) => n)).toEqual(['weight']);
    [a, b, c].forEach((m) => m.dispose());
  });

  it('rejects a wrong channel count with a ShapeError', () => {
    const conv = new Conv2d(3, 4, { kernelSize: 1 });
    const x = tf.zeros([1, 4, 4, 2]) as tf.Tensor4D;
    expect(() => conv.forward(x)).toThrow(ShapeError);
    expect(() => conv.forward(x)).toThrow(/3 channels/);
    x.dispose();
    conv.dispose();
  });
});

describe('BatchNorm2d (PyTorch semantics)', () => {
  // Channel 0 values 1..8, channel 1 values 2*(1..8): mean 4.5 / 9, biased var 5.25 / 21, unbiased 6 / 24.
  const data = Float32Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? i / 2 + 1 : i + 1));

  it('training normalises with the biased batch variance and updates running stats with the unbiased one', () => {
    const bn = new BatchNorm2d(2);
    bn.weight.assign(tf.tensor1d([2, 1]));
    bn.bias.assign(tf.tensor1d([0.5, -1]));
    const x = tf.tensor4d(data, [2, 2, 2, 2]);
    const y = bn.forward(x, { training: true }).dataSync();
    expect(y[0]).toBeCloseTo(2 * ((1 - 4.5) / Math.sqrt(5.25 + 1e-5)) + 0.5, 5);
    expect(y[1]).toBeCloseTo((2 - 9) / Math.sqrt(21 + 1e-5) - 1, 5);
    const rm = bn.runningMean.dataSync();
    const rv = bn.runningVar.dataSync();
    expect(rm[0]).toBeCloseTo(0.1 * 4.5, 6);
    expect(rm[1]).toBeCloseTo(0.1 * 9, 6);
    expect(rv[0]).toBeCloseTo(0.9 + 0.1 * 6, 6);
    expect(rv[1]).toBeCloseTo(0.9 + 0.1 * 24, 6);
    x.dispose();
    bn.dispose();
  });

  it('inference uses the running statistics and leaves them unchanged', () => {
    const bn = new BatchNorm2d(2);
    bn.runningMean.assign(tf.tensor1d([1, -1]));
    bn.runningVar.assign(tf.tensor1d([4, 0.25]));
    const x = tf.tensor4d([3, 0], [1, 1, 1, 2]);
    const y = bn.forward(x, { training: false }).dataSync();
    expect(y[0]).toBeCloseTo(2 / Math.sqrt(4 + 1e-5), 5);
    expect(y[1]).toBeCloseTo(1 / Math.sqrt(0.25 + 1e-5), 5);
    expect(Array.from(bn.runningMean.dataSync())).toEqual([1, -1]);
    expect(bn.namedBuffers().map(([n]) => n)).toEqual(['running_mean', 'running_var']);
    expect(bn.namedParameters().map(([n]) => n)).toEqual(['weight', 'bias']);
    expect(bn.numParameters()).toBe(4);
    x.dispose();
    bn.dispose();
  });

  it('refuses training statistics from a single value per channel', () => {
    const bn = new BatchNorm2d(1);
    const x = tf.ones([1, 1, 1, 1]) as tf.Tensor4D;
    expect(() => bn.forward(x, { training: true })).toThrow(/larger batch/);
    x.dispose();
    bn.dispose();
  });
});

describe('PReLU, Linear, maxPool2d', () => {
  it('PReLU has one slope 0.25 and its gradient is the sum of the negative inputs', () => {
    const p = new PReLU();
    expect(Array.from(p.weight.dataSync())).toEqual([0.25]);
    const x = tf.tensor2d([[-2, 3], [-1, 0.5]]);
    expect(Array.from(p.forward(x).dataSync())).toEqual([-0.5, 3, -0.25, 0.5]);
    const { grads } = tf.variableGrads(() => tf.sum(p.forward(x)) as tf.Scalar, [p.weight]);
    expect(grads[p.weight.name]!.dataSync()[0]).toBeCloseTo(-3, 6);
    tf.dispose([x, grads as any]);
    p.dispose();
  });

  it('Linear stores [in, out], computes x W + b, bounds 1/sqrt(in)', () => {
    const l = new Linear(3, 2, { rng: 1 });
    expect(l.weight.shape).toEqual([3, 2]);
    expect(l.bias!.shape).toEqual([2]);
    const w = l.weight.arraySync() as number[][];
    const b = l.bias!.arraySync() as number[];
    for (const v of [...w.flat(), ...b]) expect(Math.abs(v)).toBeLessThanOrEqual(1 / Math.sqrt(3));
    const x = tf.tensor2d([[1, 2, 3]]);
    const y = l.forward(x).arraySync() as number[][];
    for (let o = 0; o < 2; o++) expect(y[0]![o]).toBeCloseTo(w[0]![o]! + 2 * w[1]![o]! + 3 * w[2]![o]! + b[o]!, 5);
    x.dispose();
    l.dispose();
  });

  it('maxPool2d pads with -inf like PyTorch (all-negative input never yields the pad)', () => {
    const x = tf.tensor4d([-5, -4, -3, -2], [1, 2, 2, 1]);
    const y = maxPool2d(x, 3, 2, 1);
    expect(y.shape).toEqual([1, 1, 1, 1]);
    expect(y.dataSync()[0]).toBe(-2);
    tf.dispose([x, y]);
  });

  it('dispose frees every variable of a module tree', () => {
    const before = tf.memory().numTensors;
    const conv = new Conv2d(3, 4, { kernelSize: 3, bias: true });
    const bn = new BatchNorm2d(4);
    expect(tf.memory().numTensors).toBe(before + 6);
    conv.dispose();
    bn.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
