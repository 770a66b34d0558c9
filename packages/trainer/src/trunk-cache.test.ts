import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import type { DfdPlugin } from '@dfd/core';
import { registerGradients } from '@dfd/backends';
import { createDfdNet, type DfdVariant } from '@dfd/model';
import { schedulerPlugins } from '@dfd/plugin-schedulers';
import { MemoryCheckpointStore } from './checkpoint-store.js';
import { composeTrainer } from './compose.js';
import { tensorBatchSource } from './data.js';
import { DfdTask, type DfdTaskOptions } from './task.js';
import { fromHalf, toHalf, TrunkCache } from './trunk-cache.js';
import { trainConfigSchema } from './config.js';
import { trunkCacheFor } from './run.js';
import { toySamples } from './test-utils/tiny-model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
  await registerGradients();
});

const N = 12;
const SIZE = 16;

/** A frozen EIFE stand-in: d = the first 4 channel-tiled means of the image. */
const extractor = {
  forward: (x: tf.Tensor4D) => ({ embedding: tf.tidy(() => tf.slice(tf.tile(tf.mean(x, [1, 2]), [1, 2]), [0, 0], [-1, 4])) as tf.Tensor2D, logits: {} }),
  namedParameters: () => [],
  namedBuffers: () => [],
  dispose: () => {},
};

/** Mirror with probability 1/2 per batch (the only augmentation: two views per image). */
const flip = (x: tf.Tensor4D, rng: { next(): number }) => (rng.next() < 0.5 ? (tf.reverse(x, 2) as tf.Tensor4D) : x);

interface Run {
  losses: number[];
  weights: Map<string, Float32Array>;
  task: DfdTask;
  leaked: number;
}

async function train(variant: DfdVariant, opts: DfdTaskOptions & { augment?: boolean; epochs?: number; store?: MemoryCheckpointStore; resume?: boolean; stopAfter?: number }): Promise<Run> {
  const model = createDfdNet({ variant, width: 0.0625, inputSize: SIZE, miDims: [4], seed: 1 });
  model.setBackboneFrozen(true);
  const losses: number[] = [];
  const recorder: DfdPlugin = {
    name: 'losses',
    setup: (ctx) =>
      ctx.on('batchEnd', (e) => {
        losses.push(e.loss.total);
        if (e.globalStep === opts.stopAfter) ctx.requestStop('test stop');
      }),
  };
  const data = tensorBatchSource(toySamples(N, SIZE, 3), { batchSize: 4, seed: 2, shuffle: true, ...(opts.augment ? { augment: flip } : {}) });
  const task = new DfdTask(model, variant === 'att+eifp' ? [extractor] : [], 1, opts);
  const { trainer } = composeTrainer({
    task,
    data,
    options: { epochs: opts.epochs ?? 2, lr: { backbone: 0.05, heads: 0.05 }, runId: 'trunk-cache', resume: opts.resume ?? false },
    checkpoints: opts.store ?? null,
    plugins: [...schedulerPlugins({ cosine: false, gamma: { name: 'paper' }, lambda: { name: 'constant', value: 1 } }), recorder],
    seed: 4,
  });
  const before = tf.memory().numTensors;
  const result = await trainer.run();
  expect(result.status).toBe(opts.stopAfter ? 'stopped' : 'completed');
  const leaked = tf.memory().numTensors - before;
  const weights = new Map([...model.namedParameters(), ...model.namedBuffers()].map(([n, v]) => [n, v.dataSync().slice() as Float32Array]));
  model.dispose();
  return { losses, weights, task, leaked };
}

function maxWeightDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  let d = 0;
  for (const [n, w] of a) w.forEach((x, i) => (d = Math.max(d, Math.abs(x - b.get(n)![i]!))));
  return d;
}

describe('frozen-trunk feature cache (DfdTask trunkCache)', () => {
  for (const variant of ['base', 'att+eifp'] as const) {
    for (const augment of [false, true]) {
      it(`${variant}${augment ? ', flip augmentation' : ''}: same per-step losses and final weights as without the cache over 2 epochs`, async () => {
        const plain = await train(variant, { augment });
        const cached = await train(variant, { augment, trunkCache: true });
        expect(cached.losses.length).toBe(6);
        // The cached features are the trunk's own float32 values: equal, not merely close.
        cached.losses.forEach((l, i) => expect(l).toBeCloseTo(plain.losses[i]!, 6));
        expect(maxWeightDiff(cached.weights, plain.weights)).toBeLessThan(1e-6);
        const cache = cached.task.trunk!;
        // Each view computed once: 12 images without augmentation, at most 2 views each with flips.
        if (!augment) expect([cache.misses, cache.hits]).toEqual([N, N]);
        else {
          expect(cache.size).toBe(cache.misses);
          expect(cache.size).toBeGreaterThan(N);
          expect(cache.size).toBeLessThanOrEqual(2 * N);
        }
        // What the heads read: GAP(f_L) for base (32 channels at width 1/16), f_fused (4+8+16) + f_L (32) at 1x1 else.
        expect(cache.values / cache.size).toBe(variant === 'base' ? 32 : 28 + 32);
        // The cache holds plain arrays, no tensors: the count is as flat as without it.
        expect(cached.leaked).toBe(plain.leaked);
      });
    }
  }

  it('stopped after epoch 1 and resumed (empty cache), the run ends with the uncached losses and weights', async () => {
    const plain = await train('att+eifp', {});
    const store = new MemoryCheckpointStore();
    const first = await train('att+eifp', { trunkCache: true, store, stopAfter: 3 });
    const resumed = await train('att+eifp', { trunkCache: true, epochs: 2, store, resume: true });
    expect([...first.losses, ...resumed.losses].length).toBe(6);
    [...first.losses, ...resumed.losses].forEach((l, i) => expect(l).toBeCloseTo(plain.losses[i]!, 6));
    expect(maxWeightDiff(resumed.weights, plain.weights)).toBeLessThan(1e-6);
  });

  it('float16 storage: half the bytes; logits within the measured half-precision error of float32', () => {
    const model = createDfdNet({ variant: 'att', width: 0.25, inputSize: 32, seed: 5 });
    model.setBackboneFrozen(true);
    const x = tf.randomNormal([8, 32, 32, 3], 0, 1, 'float32', 9) as tf.Tensor4D;
    const ids = Array.from({ length: 8 }, (_, i) => `s${i}`);
    const compute = (b: tf.Tensor4D) => model.trunkFeatures(b, { training: false });
    const c32 = new TrunkCache();
    const c16 = new TrunkCache({ precision: 'float16' });
    const t32 = c32.features(x, ids, compute);
    const t16 = c16.features(x, ids, compute);
    const again = c16.features(x, ids, compute);
    expect(c16.hits).toBe(8);
    expect(c16.bytes * 2).toBe(c32.bytes);
    const l32 = model.forwardFromTrunk(t32, { training: false }).logits.dataSync();
    const l16 = model.forwardFromTrunk(t16, { training: false }).logits.dataSync();
    const lAgain = model.forwardFromTrunk(again, { training: false }).logits.dataSync();
    const direct = model.forward(x, { training: false }).logits.dataSync();
    let maxDiff = 0;
    let maxLogit = 0;
    l16.forEach((v, i) => {
      maxDiff = Math.max(maxDiff, Math.abs(v - l32[i]!));
      maxLogit = Math.max(maxLogit, Math.abs(l32[i]!));
    });
    console.log(`trunk cache float16: max |logit16 - logit32| = ${maxDiff.toExponential(2)} (max |logit| ${maxLogit.toFixed(3)})`);
    expect(Array.from(l32)).toEqual(Array.from(direct));
    expect(Array.from(lAgain)).toEqual(Array.from(l16));
    expect(maxDiff).toBeGreaterThan(0);
    expect(maxDiff).toBeLessThan(1e-2);
    tf.dispose([x, ...t32, ...t16, ...again]);
    model.dispose();
  });

  it('a view met twice in one batch is stored once; views past maxViewsPerSample are computed, not stored', () => {
    const cache = new TrunkCache({ maxViewsPerSample: 1 });
    let computed = 0;
    const compute = (b: tf.Tensor4D) => {
      computed += b.shape[0];
      return [tf.mean(b, [1, 2]) as tf.Tensor2D];
    };
    const x = tf.randomUniform([2, 3, 3, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const twice = tf.concat([x, tf.slice(x, 0, 1)]) as tf.Tensor4D;
    tf.dispose(cache.features(twice, ['a', 'b', 'a'], compute));
    expect([cache.size, cache.values, computed]).toEqual([2, 6, 3]);
    const mirrored = tf.reverse(x, 2) as tf.Tensor4D;
    const [m] = cache.features(mirrored, ['a', 'b'], compute);
    const [direct] = compute(mirrored);
    expect(Array.from(m!.dataSync())).toEqual(Array.from(direct!.dataSync()));
    expect([cache.size, cache.misses, cache.hits]).toEqual([2, 5, 0]);
    tf.dispose([x, twice, mirrored, m!, direct!]);
  });

  it('maxBytes: once full, new views are computed and used but not stored', () => {
    const cache = new TrunkCache({ maxBytes: 3 * 3 * 4 });
    const compute = (b: tf.Tensor4D) => [tf.mean(b, [1, 2]) as tf.Tensor2D];
    const x = tf.randomUniform([4, 2, 2, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
    const [a] = cache.features(x, ['a', 'b', 'c', 'd'], compute);
    const [direct] = compute(x);
    expect(Array.from(a!.dataSync())).toEqual(Array.from(direct!.dataSync()));
    expect([cache.size, cache.bytes, cache.overBudget]).toEqual([3, 36, 1]);
    tf.dispose(cache.features(x, ['a', 'b', 'c', 'd'], compute));
    expect([cache.hits, cache.misses]).toEqual([3, 5]);
    tf.dispose([x, a!, direct!]);
  });

  it('toHalf/fromHalf: IEEE half round trip, round to nearest even, overflow, subnormals', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 2 ** -14, 2 ** -24, 1 + 2 ** -10]) expect(fromHalf(toHalf(v))).toBe(v);
    expect(fromHalf(toHalf(1 + 2 ** -11))).toBe(1); // tie -> even
    expect(fromHalf(toHalf(1 + 3 * 2 ** -11))).toBe(1 + 2 ** -9); // tie -> even (up)
    expect(fromHalf(toHalf(1e6))).toBe(Infinity);
    expect(fromHalf(toHalf(2 ** -26))).toBe(0);
    expect(Number.isNaN(fromHalf(toHalf(Number.NaN)))).toBe(true);
    expect(fromHalf(toHalf(0.1))).toBeCloseTo(0.1, 4);
  });
});

describe('trunkCacheFor (the run config switch)', () => {
  const config = (over: Record<string, unknown>, data: Record<string, unknown> = {}) => trainConfigSchema.parse({ source: 'synthetic:studio', out: '/tmp/x', ...over, data });
  it('on by default with a frozen backbone and no augmentation or flip only; off otherwise or with trunkCache: false', () => {
    expect(trunkCacheFor(config({ freezeBackbone: true }, { augment: false }))).toEqual({ precision: 'float32', maxViewsPerSample: 1 });
    expect(trunkCacheFor(config({ freezeBackbone: true, trunkCache: 'float16' }, { scale: [1, 1], jitter: 0 }))).toEqual({ precision: 'float16', maxViewsPerSample: 2 });
    expect(trunkCacheFor(config({ freezeBackbone: true }))).toBe(false); // the paper's random crops
    expect(trunkCacheFor(config({ freezeBackbone: true, trunkCache: false }, { augment: false }))).toBe(false);
    expect(trunkCacheFor(config({}, { augment: false }))).toBe(false);
    expect(() => config({ trunkCache: 'float8' })).toThrow();
  });
});
