import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerGradients } from '@dfd/backends';
import { createDfdNet } from '@dfd/model';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import { composeTrainer } from './compose.js';
import { tensorBatchSource } from './data.js';
import { DfdTask } from './task.js';
import { toySamples } from './test-utils/tiny-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await registerGradients();
});

function snapshot(pairs: Array<[string, tf.Variable]>): Map<string, Float32Array> {
  return new Map(pairs.map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
}

// --freeze-backbone: the EFE backbone gets no gradient and no update (not even its BN statistics),
// while the heads train; with it unfrozen, the same run moves the backbone.
describe('frozen backbone (DfdNet.setBackboneFrozen + Trainer)', () => {
  for (const frozen of [true, false]) {
    it(`${frozen ? 'frozen: efe.* unchanged, heads trained' : 'not frozen: efe.* trained too'}`, async () => {
      const model = createDfdNet({ variant: 'att+eifp', width: 0.0625, inputSize: 16, miDims: [4], seed: 1 });
      model.setBackboneFrozen(frozen);
      const extractor = {
        forward: (x: tf.Tensor4D) => ({ embedding: tf.tidy(() => tf.slice(tf.tile(tf.mean(x, [1, 2]), [1, 2]), [0, 0], [-1, 4])) as tf.Tensor2D, logits: {} }),
        namedParameters: () => [],
        namedBuffers: () => [],
        dispose: () => {},
      };
      const efe = () => [...model.namedParameters(), ...model.namedBuffers()].filter(([n]) => n.startsWith('efe.'));
      const heads = () => model.namedParameters().filter(([n]) => !n.startsWith('efe.'));
      const before = snapshot(efe());
      const headsBefore = snapshot(heads());
      const data = tensorBatchSource(toySamples(16, 16, 3), { batchSize: 8, seed: 2, shuffle: true });
      const { trainer } = composeTrainer({
        task: new DfdTask(model, [extractor]),
        data,
        options: { epochs: 2, lr: { backbone: 0.05, heads: 0.05 }, runId: 'freeze' },
        // Constant rates (no lr-scheduler), the paper's gamma and lambda.
        plugins: schedulerPlugins({ cosine: false, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } }),
        seed: 4,
      });
      const tensors0 = tf.memory().numTensors;
      const result = await trainer.run();
      expect(result.status).toBe('completed');
      // The optimizer only ever saw the heads.
      expect(trainer.adamw.variables().length).toBe(frozen ? heads().length : model.namedParameters().length);
      let moved = 0;
      for (const [n, v] of efe()) {
        const d = Math.max(...Array.from(v.dataSync()).map((x, i) => Math.abs(x - before.get(n)![i]!)));
        if (frozen) expect(d, n).toBe(0);
        else if (d > 0) moved++;
      }
      if (!frozen) expect(moved).toBeGreaterThan(efe().length / 2);
      let headsMoved = 0;
      for (const [n, v] of heads()) if (Array.from(v.dataSync()).some((x, i) => x !== headsBefore.get(n)![i])) headsMoved++;
      expect(headsMoved).toBe(heads().length);
      expect(tf.memory().numTensors - tensors0).toBeLessThanOrEqual(frozen ? heads().length * 2 : model.namedParameters().length * 2);
      model.dispose();
    });
  }

  it('no gradient reaches a frozen backbone: tfjs backprop skips it', () => {
    const model = createDfdNet({ variant: 'att', width: 0.0625, inputSize: 16, seed: 1 });
    model.setBackboneFrozen(true);
    const x = tf.randomNormal([2, 16, 16, 3], 0, 1, 'float32', 5) as tf.Tensor4D;
    const vars = model.trainableParameters().map(([, v]) => v);
    const { value, grads } = tf.variableGrads(() => tf.sum(model.forward(x, { training: true }).logits) as tf.Scalar, vars);
    const names = new Map(model.namedParameters().map(([n, v]) => [v.name, n]));
    const got = Object.keys(grads).map((k) => names.get(k)!);
    expect(got.some((n) => n.startsWith('efe.'))).toBe(false);
    expect(got.length).toBe(vars.length);
    tf.dispose([x, value, ...Object.values(grads)]);
    model.dispose();
  });
});
