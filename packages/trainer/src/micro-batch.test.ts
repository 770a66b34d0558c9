import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { microBatches, sumMicroBatchGradients } from './micro-batch.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('micro-batches', () => {
  it('split n samples into ceil(n / micro) contiguous parts whose sizes differ by at most one', () => {
    expect(microBatches(8, 3)).toEqual([
      { start: 0, size: 2, share: 0.25 },
      { start: 2, size: 3, share: 0.375 },
      { start: 5, size: 3, share: 0.375 },
    ]);
    expect(microBatches(8)).toEqual([{ start: 0, size: 8, share: 1 }]);
    expect(microBatches(8, 8)).toEqual([{ start: 0, size: 8, share: 1 }]);
    expect(microBatches(5, 1).map((m) => m.size)).toEqual([1, 1, 1, 1, 1]);
  });

  it('sum the share-weighted values and gradients to those of the batch mean; free the partial sums on an error', () => {
    const w = tf.variable(tf.tensor1d([0.5, -1]));
    const x = tf.tensor2d([[1, 2], [3, -1], [0, 4], [2, 2], [-1, 1]]);
    const loss = (xs: tf.Tensor) => tf.mean(tf.square(tf.sum(tf.mul(xs, w), 1))) as tf.Scalar;
    const whole = tf.variableGrads(() => loss(x), [w]);
    const parts = sumMicroBatchGradients(5, 2, ({ start, size, share }) => tf.variableGrads(() => tf.mul(loss(tf.slice(x, start, size)), share) as tf.Scalar, [w]));
    expect(parts.value.dataSync()[0]).toBeCloseTo(whole.value.dataSync()[0]!, 5);
    const gw = Array.from(whole.grads[w.name]!.dataSync());
    Array.from(parts.grads[w.name]!.dataSync()).forEach((g, i) => expect(g).toBeCloseTo(gw[i]!, 5));
    expect(gw.some((g) => Math.abs(g) > 0.1)).toBe(true);
    tf.dispose([whole.value, parts.value, ...Object.values(whole.grads), ...Object.values(parts.grads)]);

    const before = tf.memory().numTensors;
    let calls = 0;
    expect(() =>
      sumMicroBatchGradients(5, 2, ({ start, size }) => {
        if (++calls === 3) throw new Error('third micro-batch failed');
        return tf.variableGrads(() => loss(tf.slice(x, start, size)), [w]);
      }),
    ).toThrow('third micro-batch failed');
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([w, x]);
  });
});
