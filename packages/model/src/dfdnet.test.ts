import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { miLoss } from '@dfd/mip';
import { createBackboneModel, createDfdNet, createEife } from './index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('parameter counts (full width, trainable parameters; BN running stats not counted)', () => {
  it('att+eifp 16,781,278 (= PyTorch reference), att 16,387,036, base 11,173,848; 9,984 BN buffer values', () => {
    const expected = { base: 11_173_848, att: 16_387_036, 'att+eifp': 16_781_278 } as const;
    for (const variant of ['base', 'att', 'att+eifp'] as const) {
      const m = createDfdNet({ variant });
      expect(m.numParameters(), variant).toBe(expected[variant]);
      if (variant === 'att+eifp') {
        expect(m.namedBuffers().reduce((s, [, v]) => s + v.size, 0)).toBe(9_984);
        const g = m.paramGroups();
        const size = (vs: tf.Variable[]) => vs.reduce((s, v) => s + v.size, 0);
        expect(size(g.backbone)).toBe(11_170_257);
        expect(size(g.backbone) + size(g.heads)).toBe(16_781_278);
        expect(g.backbone.length + g.heads.length).toBe(m.parameters().length);
        const names = new Map(m.namedParameters().map(([n, v]) => [v, n]));
        expect(g.backbone.every((v) => names.get(v)!.startsWith('efe.'))).toBe(true);
        expect(g.heads.some((v) => names.get(v) === 'attention.delta')).toBe(true);
      }
      m.dispose();
    }
    const e = createEife({ factors: [{ name: 'gender', classes: 3 }, { name: 'race', classes: 3 }, { name: 'age', classes: 5 }] });
    expect(e.numParameters()).toBe(11_304_413);
    e.dispose();
  });
});

describe('variants', () => {
  it('base: logits only; att: + attOut; att+eifp: + one MI prediction per miDims entry', () => {
    const x = tf.randomNormal([2, 32, 32, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const base = createDfdNet({ variant: 'base', width: 0.0625 });
    const ob = base.forward(x, { training: false });
    expect(ob.logits.shape).toEqual([2, 7]);
    expect(ob.attOut).toBeUndefined();
    expect(base.namedParameters().some(([n]) => n.startsWith('attention.'))).toBe(false);
    const att = createDfdNet({ variant: 'att', width: 0.0625, numClasses: 5 });
    const oa = att.forward(x, { training: false });
    expect(oa.logits.shape).toEqual([2, 5]);
    expect(oa.attOut!.shape).toEqual([2, 32]);
    expect(oa.miPredictions).toBeUndefined();
    const full = createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [16, 8, 4] });
    const of = full.forward(x, { training: false });
    expect(of.miPredictions!.map((p) => p.shape)).toEqual([[2, 16], [2, 8], [2, 4]]);
    expect(full.config).toEqual({ variant: 'att+eifp', width: 0.0625, inputSize: 90, layout: 'ddl', miDims: [16, 8, 4], miHidden: 256, numClasses: 7, lambda: 1, seed: 0 });
    expect(() => createDfdNet({ variant: 'full' as never })).toThrow(/'variant'/);
    expect(() => createDfdNet({ variant: 'att+eifp', miDims: [] })).toThrow(/'miDims'/);
    tf.dispose([x, ob as any, oa as any, of as any]);
    [base, att, full].forEach((m) => m.dispose());
  });

  it('same seed -> same weights; another seed -> different', () => {
    const flat = (seed: number) => {
      const m = createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [8, 8], miHidden: 8, seed });
      const v = m.namedParameters().flatMap(([, p]) => Array.from(p.dataSync()));
      m.dispose();
      return v;
    };
    const a = flat(7);
    expect(flat(7)).toEqual(a);
    expect(flat(8)).not.toEqual(a);
  });
});

describe('training through the whole model', () => {
  const x = () => tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5) as tf.Tensor4D;

  it('GRL inside EIFP: L_MI moves the MI heads with + sign and the attention/backbone with -lambda', () => {
    const m = createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [4, 3], miHidden: 8, seed: 3 });
    const xi = x();
    const targets = [tf.randomNormal([2, 4], 0, 1, 'float32', 6) as tf.Tensor2D, tf.randomNormal([2, 3], 0, 1, 'float32', 7) as tf.Tensor2D];
    const named = new Map(m.namedParameters());
    const watch = ['eifp.heads.0.fc1.weight', 'eifp.heads.1.fc2.bias', 'attention.select.bn.weight', 'attention.delta', 'efe.stages.3.1.conv2.weight'];
    const grads = (lambda: number) => {
      m.setLambda(lambda);
      // Inference-mode BN keeps the forward identical between the two runs.
      const { value, grads: g } = tf.variableGrads(() => miLoss(m.forward(xi, { training: false }).miPredictions!, targets), watch.map((n) => named.get(n)!));
      const out = Object.fromEntries(watch.map((n) => [n, Array.from(g[named.get(n)!.name]!.dataSync())]));
      tf.dispose([value, g as any]);
      return out;
    };
    // lambda = -1 makes the GRL an identity in both directions: the plain gradient.
    const plain = grads(-1);
    const rev = grads(0.5);
    for (const n of watch) {
      const p = plain[n]!;
      const r = rev[n]!;
      expect(Math.max(...p.map(Math.abs)), n).toBeGreaterThan(0);
      if (n.startsWith('eifp.')) expect(r).toEqual(p);
      else r.forEach((v, i) => expect(v).toBeCloseTo(-0.5 * p[i]!, 6));
    }
    tf.dispose([xi, ...targets]);
    m.dispose();
  });

  it('repeated training forward/backward leaks no tensors', () => {
    const m = createDfdNet({ variant: 'att+eifp', width: 0.0625, miDims: [4, 4], miHidden: 8 });
    const xi = x();
    const t = [tf.zeros([2, 4]) as tf.Tensor2D, tf.ones([2, 4]) as tf.Tensor2D];
    const counts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { value, grads } = tf.variableGrads(() => {
        const o = m.forward(xi, { training: true });
        return tf.add(tf.mean(o.logits), miLoss(o.miPredictions!, t)) as tf.Scalar;
      }, m.parameters());
      tf.dispose([value, grads as any]);
      counts.push(tf.memory().numTensors);
    }
    expect(counts[2]).toBe(counts[0]);
    expect(counts[1]).toBe(counts[0]);
    tf.dispose([xi, ...t]);
    m.dispose();
  });

  it('backbone-only model exposes efe.* and pooled features', () => {
    const b = createBackboneModel({ width: 0.0625 });
    expect(b.namedParameters().every(([n]) => n.startsWith('efe.'))).toBe(true);
    const xi = x();
    const o = b.forward(xi, { training: false });
    expect(o.pooled.shape).toEqual([2, 32]);
    expect(o.stages[3].shape).toEqual([2, 1, 1, 32]);
    tf.dispose([xi, o as any]);
    b.dispose();
  });
});
