import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { cosineAnnealingLr } from '@dfd/plugin-schedulers';
import { AdamW } from './adamw.js';
import fixture from './fixtures/adamw.json' with { type: 'json' };

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number) {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i]! - expected[i]!);
    if (err > tol * (1 + Math.abs(expected[i]!))) throw new Error(`index ${i}: got ${actual[i]}, expected ${expected[i]} (|err| ${err})`);
  }
}

describe('AdamW', () => {
  it('matches a closed-form step computed by hand (decoupled decay, bias correction)', () => {
    const p = tf.variable(tf.tensor1d([1, -2]));
    const opt = new AdamW([{ name: 'all', params: [['w', p]], lr: 0.1, weightDecay: 0.5 }], { beta1: 0.5, beta2: 0.999, eps: 1e-8 });
    // Step 1, g = [0.2, -0.4]: decay p *= 1 - 0.1*0.5 = 0.95 -> [0.95, -1.9];
    // m = 0.5 g = [0.1, -0.2], v = 0.001 g^2 = [4e-5, 1.6e-4];
    // m_hat = m / 0.5 = g, v_hat = v / 0.001 = g^2, update = lr * g / (|g| + eps) = 0.1 * sign(g).
    const g1 = tf.tensor1d([0.2, -0.4]);
    opt.applyGradients({ [p.name]: g1 });
    const s1 = p.dataSync();
    expect(s1[0]).toBeCloseTo(0.95 - 0.1 * (0.2 / (0.2 + 1e-8)), 6);
    expect(s1[1]).toBeCloseTo(-1.9 + 0.1 * (0.4 / (0.4 + 1e-8)), 6);
    // Step 2, g = [0.2, 0]: m = 0.5 [0.1, -0.2] + 0.5 [0.2, 0] = [0.15, -0.1], v = 0.999*[4e-5,1.6e-4] + 0.001*[0.04, 0];
    const g2 = tf.tensor1d([0.2, 0]);
    opt.applyGradients({ [p.name]: g2 });
    const bc1 = 1 - 0.25;
    const bc2 = 1 - 0.999 ** 2;
    const expected = [0, 1].map((i) => {
      const prev = s1[i]!;
      const m = [0.15, -0.1][i]!;
      const v = [0.999 * 4e-5 + 0.001 * 0.04, 0.999 * 1.6e-4][i]!;
      return prev * 0.95 - (0.1 / bc1) * (m / (Math.sqrt(v) / Math.sqrt(bc2) + 1e-8));
    });
    close(p.dataSync(), expected, 1e-6);
    tf.dispose([p, g1, g2]);
    opt.dispose();
  });

  it("matches PyTorch's AdamW step by step with two parameter groups and a cosine schedule", () => {
    const vars: Record<string, tf.Variable> = {};
    for (const [name, shape] of Object.entries(fixture.shapes)) vars[name] = tf.variable(tf.tensor(fixture.init[name as keyof typeof fixture.init], shape as number[]));
    const groups = fixture.groups.map((g) => ({ name: g.name, lr: g.lr, weightDecay: g.weight_decay, params: g.params.map((n) => [n, vars[n]!] as [string, tf.Variable]) }));
    const base = groups.map((g) => g.lr);
    const opt = new AdamW(groups, { beta1: fixture.betas[0], beta2: fixture.betas[1], eps: fixture.eps });
    fixture.grads.forEach((stepGrads, step) => {
      groups.forEach((g, i) => {
        opt.setLearningRate(g.name, cosineAnnealingLr(step, base[i]!, fixture.tMax));
        expect(opt.learningRates()[g.name]).toBeCloseTo(fixture.lrs[step]![i]!, 12);
      });
      const grads: tf.NamedTensorMap = {};
      for (const [name, values] of Object.entries(stepGrads)) grads[vars[name]!.name] = tf.tensor(values, vars[name]!.shape);
      opt.applyGradients(grads);
      tf.dispose(Object.values(grads));
      for (const name of Object.keys(vars)) close(vars[name]!.dataSync(), fixture.after[step]![name as keyof (typeof fixture.after)[0]], 2e-6);
    });
    // The two groups really moved at different rates: the low-lr group stays near its start.
    const moved = (n: string) => Math.max(...Array.from(vars[n]!.dataSync(), (v, i) => Math.abs(v - fixture.init[n as keyof typeof fixture.init][i]!)));
    expect(moved('efe.w')).toBeLessThan(0.01);
    expect(moved('heads.w')).toBeGreaterThan(0.05);
    opt.dispose();
    tf.dispose(Object.values(vars));
  });

  it('PyTorch cosine schedule values match the closed form', () => {
    const { base, etaMin, tMax, lrs } = fixture.cosine;
    lrs.forEach((lr, epoch) => expect(cosineAnnealingLr(epoch, base, tMax, etaMin)).toBeCloseTo(lr, 12));
  });

  // Two parameters in two groups, and the gradients of step k.
  const make = () => {
    const a = tf.variable(tf.tensor1d([0.5, -0.25, 1]));
    const b = tf.variable(tf.tensor2d([[1, 2]]));
    return { a, b, opt: new AdamW([{ name: 'x', params: [['a', a]], lr: 0.01, weightDecay: 0.01 }, { name: 'y', params: [['b', b]], lr: 0.1, weightDecay: 0 }], { beta1: 0.5 }) };
  };
  const grads = (s: { a: tf.Variable; b: tf.Variable }, k: number) => ({ [s.a.name]: tf.tensor1d([k, -k, 0.5 * k]), [s.b.name]: tf.tensor2d([[k * k, 1]]) });

  it('state round-trips by parameter name and continues identically', () => {
    const one = make();
    for (let k = 1; k <= 4; k++) one.opt.applyGradients(grads(one, k));
    const two = make();
    for (let k = 1; k <= 2; k++) two.opt.applyGradients(grads(two, k));
    const state = two.opt.getState();
    const three = make();
    three.a.assign(two.a);
    three.b.assign(two.b);
    // Reversed group order: state is matched by name, not position.
    three.opt.setState({ ...state, groups: [...state.groups].reverse() });
    for (let k = 3; k <= 4; k++) three.opt.applyGradients(grads(three, k));
    expect(Array.from(three.a.dataSync())).toEqual(Array.from(one.a.dataSync()));
    expect(Array.from(three.b.dataSync())).toEqual(Array.from(one.b.dataSync()));
    expect(() => three.opt.setState({ groups: [], params: {} })).toThrow(/no entry for parameter 'a'/);
  });

  it('serialises itself into checkpoint form (JSON + optim/<name>/m|v tensors) and continues identically from it', () => {
    const one = make();
    for (let k = 1; k <= 4; k++) one.opt.applyGradients(grads(one, k));
    const two = make();
    for (let k = 1; k <= 2; k++) two.opt.applyGradients(grads(two, k));
    const { meta, tensors } = two.opt.toCheckpoint();
    expect(meta.steps).toEqual({ a: 2, b: 2 });
    expect([...tensors.keys()].sort()).toEqual(['optim/a/m', 'optim/a/v', 'optim/b/m', 'optim/b/v']);
    expect(tensors.get('optim/a/m')).toMatchObject({ shape: [two.a.size], dtype: 'float32' });
    const three = make();
    three.a.assign(two.a);
    three.b.assign(two.b);
    three.opt.fromCheckpoint(meta, tensors, 'ckpt-2');
    for (let k = 3; k <= 4; k++) three.opt.applyGradients(grads(three, k));
    expect(Array.from(three.a.dataSync())).toEqual(Array.from(one.a.dataSync()));
    expect(Array.from(three.b.dataSync())).toEqual(Array.from(one.b.dataSync()));
    tensors.delete('optim/b/v');
    expect(() => three.opt.fromCheckpoint(meta, tensors, 'ckpt-2')).toThrow("checkpoint ckpt-2 lacks optimizer moments of 'b'.");
  });

  it('does not leak tensors across steps', () => {
    const a = tf.variable(tf.randomNormal([4, 4], 0, 1, 'float32', 1));
    const opt = new AdamW([{ name: 'x', params: [['a', a]], lr: 0.01, weightDecay: 0.01 }]);
    const g = tf.onesLike(a);
    opt.applyGradients({ [a.name]: g });
    const before = tf.memory().numTensors;
    for (let i = 0; i < 20; i++) opt.applyGradients({ [a.name]: g });
    expect(tf.memory().numTensors).toBe(before);
  });
});
