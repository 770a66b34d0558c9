import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ShapeError } from '@dfd/backbone';
import { createDfdNet, DFD_VARIANTS } from './dfdnet.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('DfdNet.trunkFeatures + forwardFromTrunk (frozen-trunk cache)', () => {
  for (const variant of DFD_VARIANTS) {
    it(`${variant}: heads on precomputed trunk features give bit-identical outputs with a frozen backbone`, () => {
      const model = createDfdNet({ variant, width: 0.0625, inputSize: 16, miDims: [4], seed: 3 });
      model.setBackboneFrozen(true);
      const x = tf.randomNormal([3, 16, 16, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
      const trunk = model.trunkFeatures(x, { training: true });
      expect(trunk.length).toBe(model.trunkFeatureNames.length);
      // Features round-tripped through a Float32Array (what a cache stores), per sample.
      const copies = trunk.map((t) => tf.tensor(t.dataSync().slice(), t.shape));
      const a = model.forward(x, { training: true });
      const b = model.forwardFromTrunk(copies, { training: true });
      expect(Array.from(b.logits.dataSync())).toEqual(Array.from(a.logits.dataSync()));
      if (variant === 'att+eifp') expect(Array.from(b.miPredictions![0]!.dataSync())).toEqual(Array.from(a.miPredictions![0]!.dataSync()));
      // One sample's features computed alone equal its row of the batch (the cache fills sample by sample).
      const one = model.trunkFeatures(tf.slice(x, 1, 1), { training: false });
      one.forEach((t, k) => expect(Array.from(t.dataSync())).toEqual(Array.from(tf.slice(trunk[k]!, 1, 1).dataSync())));
      expect(() => model.forwardFromTrunk(trunk.slice(0, 0), { training: true })).toThrow(ShapeError);
      tf.dispose([x, ...trunk, ...copies, ...one, a.logits, b.logits]);
      model.dispose();
    });
  }
});
