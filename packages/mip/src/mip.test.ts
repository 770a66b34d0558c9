import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { Eife, Eifp, crossEntropy, eifeLoss, miLoss, smoothL1, stopGradient } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('losses', () => {
  it('smoothL1 (beta 1, mean) matches the closed form, including other betas', () => {
    const p = tf.tensor1d([0, 0.5, -2, 3]);
    const t = tf.tensor1d([0, 0, 0, 1]);
    // 0, 0.5*0.25, 2-0.5, 2-0.5 -> mean
    expect(smoothL1(p, t).dataSync()[0]).toBeCloseTo((0 + 0.125 + 1.5 + 1.5) / 4, 6);
    // beta 4: all quadratic: 0.5 d^2 / 4
    expect(smoothL1(p, t, 4).dataSync()[0]).toBeCloseTo((0 + 0.03125 + 0.5 + 0.5) / 4, 6);
    expect(() => smoothL1(p, tf.zeros([3]))).toThrow(/same shape/);
    tf.dispose([p, t]);
  });

  it('miLoss sums one smoothL1 per head and gives the targets (stop-gradient) no gradient', () => {
    const p1 = tf.tensor2d([[1, 2]]);
    const p2 = tf.tensor2d([[0.5, 0]]);
    const d1 = tf.tensor2d([[0, 0]]);
    const d2 = tf.tensor2d([[0, 3]]);
    expect(miLoss([p1, p2], [d1, d2]).dataSync()[0]).toBeCloseTo((0.5 + 1.5) / 2 + (0.125 + 2.5) / 2, 6);
    const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => miLoss([a as tf.Tensor2D], [b as tf.Tensor2D]))([p1, d1]);
    // d = 1 (linear branch, as PyTorch at |d| = beta) and d = 2: sign / 2 elements.
    expect(Array.from(g[0]!.dataSync())).toEqual([0.5, 0.5]);
    expect(Array.from(g[1]!.dataSync())).toEqual([0, 0]);
    const s = tf.grad((x: tf.Tensor) => tf.sum(tf.mul(stopGradient(x), x)))(p1);
    expect(Array.from(s.dataSync())).toEqual([1, 2]);
    expect(() => miLoss([p1], [d1, d2])).toThrow(/one target per MI head/);
    tf.dispose([p1, p2, d1, d2, g, s]);
  });

  it('crossEntropy equals -log softmax at the label; labels < 0 are ignored; eifeLoss sums factors', () => {
    const logits = tf.tensor2d([
      [1, 2, 3],
      [0, 0, 0],
    ]);
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const ce = crossEntropy(logits, tf.tensor1d([0, 2], 'int32')).dataSync()[0]!;
    expect(ce).toBeCloseTo((lse - 1 + Math.log(3)) / 2, 5);
    expect(crossEntropy(logits, tf.tensor1d([2, -1], 'int32')).dataSync()[0]).toBeCloseTo(lse - 3, 5);
    expect(crossEntropy(logits, tf.tensor1d([-1, -1], 'int32')).dataSync()[0]).toBe(0);
    const sum = eifeLoss({ a: logits, b: logits }, { a: tf.tensor1d([0, 2], 'int32'), b: tf.tensor1d([0, 2], 'int32') });
    expect(sum.dataSync()[0]).toBeCloseTo(2 * ce, 5);
    expect(() => eifeLoss({ a: logits }, {})).toThrow(/missing for factor\(s\) a/);
  });
});

describe('Eifp', () => {
  it('names eifp heads fc1/act/fc2, sizes from miDims', () => {
    const e = new Eifp({ inFeatures: 8, miDims: [5, 3], hidden: 6, rng: 1 });
    expect(e.namedParameters().map(([n, v]) => `${n}:${v.shape.join('x')}`)).toEqual([
      'heads.0.fc1.weight:8x6',
      'heads.0.fc1.bias:6',
      'heads.0.act.weight:1',
      'heads.0.fc2.weight:6x5',
      'heads.0.fc2.bias:5',
      'heads.1.fc1.weight:8x6',
      'heads.1.fc1.bias:6',
      'heads.1.act.weight:1',
      'heads.1.fc2.weight:6x3',
      'heads.1.fc2.bias:3',
    ]);
    e.dispose();
  });

  it('GRL: L_MI gradient reaches the heads unchanged and the features reversed by -lambda', () => {
    const e = new Eifp({ inFeatures: 4, miDims: [3, 2], hidden: 5, lambda: 0.7, rng: 2 });
    const att = tf.randomNormal([3, 4], 0, 1, 'float32', 1) as tf.Tensor2D;
    const targets = [tf.randomNormal([3, 3], 0, 1, 'float32', 2) as tf.Tensor2D, tf.randomNormal([3, 2], 0, 1, 'float32', 3) as tf.Tensor2D];
    const heads = e.heads.toArray();
    // Reference without any GRL: the heads applied directly.
    const plainLoss = (x: tf.Tensor2D) => miLoss(heads.map((h) => h.forward(x)), targets);
    const grlLoss = (x: tf.Tensor2D) => miLoss(e.forward(x), targets);
    const gxPlain = tf.grad((x: tf.Tensor) => plainLoss(x as tf.Tensor2D))(att);
    const gxGrl = tf.grad((x: tf.Tensor) => grlLoss(x as tf.Tensor2D))(att);
    expect(tf.max(tf.abs(gxPlain)).dataSync()[0]).toBeGreaterThan(1e-3);
    const expected = tf.mul(gxPlain, -0.7);
    expect(tf.max(tf.abs(tf.sub(gxGrl, expected))).dataSync()[0]).toBeLessThan(1e-6);
    const gp = tf.variableGrads(() => plainLoss(att), e.parameters()).grads;
    const gg = tf.variableGrads(() => grlLoss(att), e.parameters()).grads;
    for (const v of e.parameters()) {
      expect(tf.max(tf.abs(gp[v.name]!)).dataSync()[0]).toBeGreaterThan(0);
      expect(Array.from(gg[v.name]!.dataSync())).toEqual(Array.from(gp[v.name]!.dataSync()));
    }
    e.setLambda(0);
    const g0 = tf.grad((x: tf.Tensor) => grlLoss(x as tf.Tensor2D))(att);
    expect(tf.max(tf.abs(g0)).dataSync()[0]).toBe(0);
    e.dispose();
  });
});

describe('Eife', () => {
  const factors = [
    { name: 'gender', classes: 3 },
    { name: 'age', classes: 5 },
  ];

  it('backbone + GAP + embed + PReLU + one head per factor, canonical names', () => {
    const m = new Eife({ factors, width: 0.0625, embedDim: 16, seed: 3 });
    const names = m.namedParameters().map(([n]) => n);
    expect(names[0]).toBe('efe.stem.conv.weight');
    expect(names.slice(-7)).toEqual(['embed.weight', 'embed.bias', 'embed_act.weight', 'heads.gender.weight', 'heads.gender.bias', 'heads.age.weight', 'heads.age.bias']);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
    const out = m.forward(x, { training: false });
    expect(out.embedding.shape).toEqual([2, 16]);
    expect(out.logits.gender!.shape).toEqual([2, 3]);
    expect(out.logits.age!.shape).toEqual([2, 5]);
    const d = m.embedOnly(x);
    expect(Array.from(d.dataSync())).toEqual(Array.from(out.embedding.dataSync()));
    expect(m.config).toEqual({ factors, width: 0.0625, inputSize: 90, layout: 'ddl', embedDim: 16, seed: 3 });
    tf.dispose([x, out as any, d]);
    m.dispose();
  });

  it('rejects bad factor lists', () => {
    expect(() => new Eife({ factors: [] })).toThrow(/at least one/);
    expect(() => new Eife({ factors: [{ name: 'a.b', classes: 2 }] })).toThrow(/identifiers/);
    expect(() => new Eife({ factors: [{ name: 'a', classes: 1 }] })).toThrow(/>= 2/);
  });
});
