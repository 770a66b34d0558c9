import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerGradients } from '@dfd/backends';
import { createDfdNet } from '@dfd/model';
import { DfdTask } from './task.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await registerGradients();
});

// Eq. 7-10 through the real DFD-Net: the MI loss must train the MI heads to predict d_k (plain
// gradient) while the GRL hands the backbone and attention the reversed gradient, -lambda times.
describe('MI loss gradient through the GRL (DfdTask + createDfdNet)', () => {
  it('reaches the MI heads with + sign and the backbone/attention with -lambda, vs finite differences', () => {
    const lambda = 0.5;
    const model = createDfdNet({ variant: 'att+eifp', width: 0.0625, inputSize: 16, miDims: [6], seed: 3 });
    const task = new DfdTask(model);
    const x = tf.randomNormal([4, 16, 16, 3], 0, 1, 'float32', 11) as tf.Tensor4D;
    const target = tf.randomNormal([4, 6], 0, 1, 'float32', 12);
    const batch = { images: x, expression: tf.tensor1d([0, 1, 2, 3], 'int32') };
    const named = new Map(model.namedParameters());
    const vars = [...named.values()];
    // gamma 1 minus gamma 0 isolates the MI part of the joint loss.
    const gradsAt = (gamma: number) => {
      model.setLambda(lambda);
      const { value, grads } = tf.variableGrads(() => task.loss(batch, [target], { p: 0, gamma, lambda }).total, vars);
      value.dispose();
      return grads;
    };
    const g1 = gradsAt(1);
    const g0 = gradsAt(0);
    const miLoss = () => tf.tidy(() => {
      const out = model.forward(x, { training: true });
      const d = tf.abs(tf.sub(out.miPredictions![0]!, target));
      const q = tf.minimum(d, 1);
      return tf.mean(tf.add(tf.mul(tf.square(q), 0.5), tf.sub(d, q))).dataSync()[0]!;
    });
    const check = (name: string, sign: number) => {
      const v = named.get(name)!;
      const mi = tf.sub(g1[v.name]!, g0[v.name] ?? tf.zerosLike(v));
      const analytic = mi.dataSync();
      // The element with the largest MI gradient, perturbed by +-h (small: max pools switch).
      let idx = 0;
      for (let i = 1; i < analytic.length; i++) if (Math.abs(analytic[i]!) > Math.abs(analytic[idx]!)) idx = i;
      const base = v.dataSync().slice();
      const h = 1e-3;
      const at = (delta: number) => {
        const w = base.slice();
        w[idx] = w[idx]! + delta;
        v.assign(tf.tensor(w, v.shape));
        return miLoss();
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      v.assign(tf.tensor(base, v.shape));
      expect(Math.abs(fd)).toBeGreaterThan(1e-4);
      expect(analytic[idx]! / fd).toBeCloseTo(sign, 1);
    };
    check('eifp.heads.0.fc2.weight', +1);
    check('eifp.heads.0.fc1.weight', +1);
    check('attention.select.conv.weight', -lambda);
    check('efe.stem.conv.weight', -lambda);
    // The classifier does not see the MI loss at all.
    const clsName = named.get('classifier.weight')!.name;
    const diff = tf.max(tf.abs(tf.sub(g1[clsName]!, g0[clsName]!))).dataSync()[0]!;
    expect(diff).toBe(0);
    model.dispose();
  });
});
