import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { correctCount, crossEntropy, smoothL1 } from './losses.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('losses', () => {
  it('cross-entropy equals -log softmax of the true class, averaged, ignoring label -1', () => {
    const logits = tf.tensor2d([[1, 2, 3], [0, 0, 0], [5, 0, 0]]);
    const labels = tf.tensor1d([2, 0, -1], 'int32');
    const lse = Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3));
    const expected = ((lse - 3) + Math.log(3)) / 2;
    expect(crossEntropy(logits, labels).dataSync()[0]).toBeCloseTo(expected, 5);
    expect(correctCount(logits, labels).dataSync()[0]).toBe(2); // row 0 right; row 1 argmax 0 = label; row 2 ignored
  });
  it('smooth L1 has the quadratic branch below beta and the linear one above', () => {
    const pred = tf.tensor1d([0, 0.5, 3]);
    const target = tf.tensor1d([0, 0, 1]);
    // 0, 0.5*0.25 = 0.125, 2 - 0.5 = 1.5 -> mean 1.625/3
    expect(smoothL1(pred, target).dataSync()[0]).toBeCloseTo(1.625 / 3, 6);
    // beta 2: 0.25*0.5/2 = 0.0625, 4*0.5/2 = 1 -> (0 + 0.0625 + 1)/3
    expect(smoothL1(pred, target, 2).dataSync()[0]).toBeCloseTo(1.0625 / 3, 6);
  });
});
