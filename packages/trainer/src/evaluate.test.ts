import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { tensorBatchSource, type Batch } from './data.js';
import { evaluate, evaluateHeads, summarise } from './evaluate.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

// Five 1x1x2 "images"; head a predicts argmax of the pixel's two values, head b argmax of (v1, v0, 0).
const pixels = [
  [1, 0],
  [0, 1],
  [2, 3],
  [5, 4],
  [0, 7],
];
const images = new Float32Array(pixels.flat());
const a = new Int32Array([0, 1, 0, 0, 1]); // predictions 0 1 1 0 1: 4 of 5 right
const b = new Int32Array([1, 0, 0, 2, 0]); // predictions 1 0 0 1 0: 4 of 5 right (the label 2 is missed)
const model = {
  calls: 0,
  forward(x: tf.Tensor4D) {
    this.calls++;
    const flat = tf.reshape(x, [-1, 2]) as tf.Tensor2D;
    return { logits: { a: flat, b: tf.concat([tf.reverse(flat, 1), tf.zeros([flat.shape[0], 1])], 1) as tf.Tensor2D } };
  },
};

describe('evaluateHeads', () => {
  it('evaluates every head in one forward pass per batch; equals summarise of the hand-computed predictions', async () => {
    const source = tensorBatchSource({ images, shape: [1, 1, 2], factors: { a, b } }, { batchSize: 2 });
    const before = tf.memory().numTensors;
    model.calls = 0;
    const [ra, rb] = await evaluateHeads(model, source, [
      { target: 'a', numClasses: 2, logits: (o) => o.logits.a, labels: (batch: Batch) => batch.factors?.a },
      { target: 'b', numClasses: 3, logits: (o) => o.logits.b, labels: (batch: Batch) => batch.factors?.b },
    ]);
    expect(model.calls).toBe(3); // batches of 2, 2, 1
    expect(ra).toEqual(summarise('a', a, [0, 1, 1, 0, 1], 2));
    expect(ra!.accuracy).toBe(0.8);
    expect(rb).toEqual(summarise('b', b, [1, 0, 0, 1, 0], 3));
    expect(rb!.confusion[2]).toEqual([0, 1, 0]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('evaluate() is the one-head case on expression labels; batches without the labels do not count', async () => {
    const m = { forward: (x: tf.Tensor4D) => ({ logits: tf.reshape(x, [-1, 2]) as tf.Tensor2D }) };
    const labelled = tensorBatchSource({ images, shape: [1, 1, 2], expression: a }, { batchSize: 2 });
    expect(await evaluate(m, labelled, 'src', 2)).toEqual(summarise('src', a, [0, 1, 1, 0, 1], 2));
    const unlabelled = tensorBatchSource({ images, shape: [1, 1, 2] }, { batchSize: 2 });
    expect(await evaluate(m, unlabelled, 'none', 2)).toMatchObject({ target: 'none', count: 0, accuracy: Number.NaN });
  });
});
