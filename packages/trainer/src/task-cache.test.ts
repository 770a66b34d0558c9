import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { DfdTask } from './task.js';
import { TinyDfdNet } from './test-utils/tiny-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** An extractor that records how many images it embedded: d = [mean, max] of each image. */
function countingExtractor() {
  const seen: number[] = [];
  return {
    seen,
    forward(x: tf.Tensor4D) {
      seen.push(x.shape[0]);
      return { embedding: tf.tidy(() => tf.stack([tf.mean(x, [1, 2, 3]), tf.max(x, [1, 2, 3])], 1)) as tf.Tensor2D, logits: {} };
    },
    namedParameters: () => [],
    namedBuffers: () => [],
    dispose: () => {},
  };
}

describe('DfdTask cacheTargets', () => {
  it('embeds each sample id once and returns the same targets as without the cache', () => {
    const ext = countingExtractor();
    const plain = countingExtractor();
    const cached = new DfdTask(new TinyDfdNet({ miDims: [2] }), [ext], 1, { cacheTargets: true });
    const uncached = new DfdTask(new TinyDfdNet({ miDims: [2] }), [plain]);
    const images = tf.randomUniform([4, 6, 6, 3], 0, 1, 'float32', 3) as tf.Tensor4D;
    const b1 = { images, ids: ['a', 'b', 'c', 'd'] };
    const b2 = { images: tf.gather(images, [2, 0, 3]) as tf.Tensor4D, ids: ['c', 'a', 'd'] };
    const mixed = { images: tf.concat([tf.gather(images, [1]), tf.ones([1, 6, 6, 3])]) as tf.Tensor4D, ids: ['b', 'e'] };
    for (const batch of [b1, b2, mixed]) {
      const [t] = cached.prepare(batch);
      const [u] = uncached.prepare(batch);
      expect(Array.from(t!.dataSync())).toEqual(Array.from(u!.dataSync()));
      tf.dispose([t!, u!]);
    }
    // b1: 4 new; b2: all cached (no call); mixed: only 'e' embedded.
    expect(ext.seen).toEqual([4, 1]);
    expect(plain.seen).toEqual([4, 3, 2]);
    tf.dispose([images, b2.images, mixed.images]);
  });

  it('without ids or with the option off, computes every batch', () => {
    const ext = countingExtractor();
    const task = new DfdTask(new TinyDfdNet({ miDims: [2] }), [ext], 1, { cacheTargets: true });
    const images = tf.ones([2, 4, 4, 3]) as tf.Tensor4D;
    tf.dispose(task.prepare({ images }));
    tf.dispose(task.prepare({ images }));
    expect(ext.seen).toEqual([2, 2]);
    images.dispose();
  });
});
