import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createLoader, disposeBatch } from './loader.js';
import { createSyntheticDataset } from './synthetic.js';
import { evalTransform } from './transforms.js';

// The datasets README's example as a user runs it: no backend selected anywhere. Own worker.
describe('createLoader without an active tfjs backend', () => {
  it("selects one itself ('auto') instead of failing with 'No backend found in registry'", async () => {
    expect(tf.engine().backendName ?? null).toBeNull();
    expect(tf.engine().backendNames()).toEqual([]);
    const ds = createSyntheticDataset('studio', { train: 4, test: 0, size: 16, seed: 1 });
    const loader = createLoader(ds.splits.train!, { batchSize: 4, transform: evalTransform({ size: 16 }), seed: 1 });
    const shapes: number[][] = [];
    for await (const batch of loader) {
      shapes.push(batch.images.shape);
      disposeBatch(batch);
    }
    expect(shapes).toEqual([[4, 16, 16, 3]]);
    // auto in Node without tfjs-node: wasm.
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.memory().numTensors).toBe(0);
  });
});
