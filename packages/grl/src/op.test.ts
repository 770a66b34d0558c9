import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { GrlError } from './errors.js';
import { gradientReversal } from './op.js';
import { gradientReversalSuite } from './test-utils/grad-check.js';

gradientReversalSuite('cpu');
gradientReversalSuite('wasm');


describe('gradientReversal argument checks', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('rejects non-float inputs and bad lambdas with GrlError codes', () => {
    const xi = tf.tensor1d([1, 2], 'int32');
    const x = tf.tensor1d([1, 2]);
    const cases: Array<[() => unknown, string, RegExp]> = [
      [() => gradientReversal(xi, 1), 'E_GRL_DTYPE', /dtype 'int32'.*tf\.cast/],
      [() => gradientReversal(x, Number.NaN), 'E_GRL_LAMBDA', /finite number, got NaN/],
      [() => gradientReversal(x, Infinity), 'E_GRL_LAMBDA', /finite number/],
      [() => gradientReversal(x, tf.tensor1d([1, 2])), 'E_GRL_LAMBDA', /scalar, got shape \[2\]/],
      [() => gradientReversal(x, tf.scalar(1, 'int32')), 'E_GRL_LAMBDA', /float32, got 'int32'/],
      [() => gradientReversal(x, '1' as unknown as number), 'E_GRL_LAMBDA', /number or a scalar tensor, got string 1/],
      [() => gradientReversal([1, 2] as unknown as tf.Tensor, 1), 'E_GRL_INPUT', /must be a tf\.Tensor, got Array/],
    ];
    for (const [fn, code, message] of cases) {
      let caught: unknown;
      try {
        fn();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(GrlError);
      expect((caught as GrlError).code).toBe(code);
      expect((caught as GrlError).message).toMatch(message);
    }
    tf.dispose([xi, x]);
  });

  it('defaults lambda to 1', () => {
    const x = tf.tensor1d([1, -2, 3]);
    const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.square(gradientReversal(xx))))(x);
    expect(Array.from(g.dataSync())).toEqual([-2, 4, -6]);
    tf.dispose([x, g]);
  });
});
