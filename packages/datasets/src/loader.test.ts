import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLoader, disposeBatch, type Batch, type Loader } from './loader.js';
import { evalTransform, trainTransform } from './transforms.js';
import type { Sample } from './types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** n samples whose 4x4 image is filled with value i (so images identify samples). */
function samples(n: number, label: (i: number) => number = (i) => i % 7): Sample[] {
  return Array.from({ length: n }, (_, i): Sample => ({
    id: `s${i}`,
    image: { kind: 'pixels', width: 4, height: 4, channels: 1, data: new Uint8Array(16).fill(i % 256) },
    expression: label(i),
    factors: i % 2 === 0 ? { identity: i % 5 } : ({} as Record<string, number>),
  }));
}

async function take(loader: Loader, n: number): Promise<Array<{ ids: string[]; images: number[]; expression: number[] }>> {
  const out = [];
  // Each `for await` covers the rest of one epoch; keep going across epochs.
  while (out.length < n) {
    for await (const b of loader) {
      out.push({ ids: b.ids, images: Array.from(b.images.dataSync()), expression: Array.from(b.expression.dataSync()) });
      disposeBatch(b);
      if (out.length === n) break;
    }
  }
  return out;
}

async function epochIds(loader: Loader): Promise<string[]> {
  const ids: string[] = [];
  for await (const b of loader) {
    ids.push(...b.ids);
    disposeBatch(b);
  }
  return ids;
}

describe('createLoader', () => {
  const ev = evalTransform({ size: 4, mean: [0, 0, 0], std: [1, 1, 1] });

  it('yields NHWC float32 batches with int32 labels, factors (-1 when missing) and ids', async () => {
    const loader = createLoader(samples(10), { batchSize: 4, transform: ev, shuffle: false });
    expect(loader.length).toBe(3);
    expect(loader.factorNames).toEqual(['identity']);
    const batches: Batch[] = [];
    for await (const b of loader) batches.push(b);
    expect(batches.map((b) => b.images.shape)).toEqual([[4, 4, 4, 3], [4, 4, 4, 3], [2, 4, 4, 3]]);
    expect(batches[0]!.images.dtype).toBe('float32');
    expect(batches[0]!.expression.dtype).toBe('int32');
    expect(Array.from(batches[0]!.expression.dataSync())).toEqual([0, 1, 2, 3]);
    expect(Array.from(batches[0]!.factors.identity!.dataSync())).toEqual([0, -1, 2, -1]);
    expect(batches[1]!.ids).toEqual(['s4', 's5', 's6', 's7']);
    // Grey value i replicated to 3 channels and scaled to [0, 1].
    expect(batches[1]!.images.dataSync()[0]).toBeCloseTo(4 / 255, 6);
    batches.forEach(disposeBatch);
    expect(loader.epoch).toBe(1);
  });

  it('dropLast drops the incomplete batch', async () => {
    const loader = createLoader(samples(10), { batchSize: 4, transform: ev, dropLast: true });
    expect(loader.length).toBe(2);
    expect((await epochIds(loader)).length).toBe(8);
  });

  it('shuffles differently each epoch, each epoch a permutation, reproducible from the seed', async () => {
    const a = createLoader(samples(30), { batchSize: 7, transform: ev, seed: 5 });
    const e0 = await epochIds(a);
    const e1 = await epochIds(a);
    const all = samples(30).map((s) => s.id).sort();
    expect([...e0].sort()).toEqual(all);
    expect([...e1].sort()).toEqual(all);
    expect(e0).not.toEqual(e1);
    expect(e0).not.toEqual(samples(30).map((s) => s.id));
    const b = createLoader(samples(30), { batchSize: 7, transform: ev, seed: 5 });
    expect(await epochIds(b)).toEqual(e0);
    const c = createLoader(samples(30), { batchSize: 7, transform: ev, seed: 6 });
    expect(await epochIds(c)).not.toEqual(e0);
  });

  it('resumes exactly from getState(): same next batches, images included (augmentation too)', async () => {
    const tr = trainTransform({ size: 4 });
    const opts = { batchSize: 6, transform: tr, seed: 42, prefetch: 3 };
    const a = createLoader(samples(40), opts);
    await take(a, 7); // one epoch (7 batches) done
    await take(a, 2); // two batches into epoch 1
    const state = JSON.parse(JSON.stringify(a.getState()));
    expect(state.epoch).toBe(1);
    expect(state.cursor).toBe(2);
    const expected = await take(a, 8); // rest of epoch 1 (5) + 3 of epoch 2

    const b = createLoader(samples(40), opts);
    b.setState(state);
    const got = await take(b, 8);
    expect(got.length).toBe(8);
    expect(got).toEqual(expected);
    expect(b.getState()).toMatchObject({ epoch: 2, cursor: 3 });
    expect(() => createLoader(samples(40), { ...opts, seed: 1 }).setState(state)).toThrow(/seed/);
  });

  it('batches(epoch, fromStep) gives random access equal to sequential iteration', async () => {
    const tr = trainTransform({ size: 4 });
    const opts = { batchSize: 6, transform: tr, seed: 8 };
    const seq = createLoader(samples(20), opts);
    expect(seq.stepsPerEpoch).toBe(4);
    const all = await take(seq, 12); // epochs 0, 1, 2
    const ra = createLoader(samples(20), opts);
    const got: typeof all = [];
    for await (const b of ra.batches(2, 1)) {
      got.push({ ids: b.ids, images: Array.from(b.images.dataSync()), expression: Array.from(b.expression.dataSync()) });
      disposeBatch(b);
    }
    expect(got).toEqual(all.slice(9, 12));
    expect(ra.getState()).toMatchObject({ epoch: 2, cursor: 4 });
    expect(() => ra.batches(0, 9)).toThrow(/fromStep/);
  });

  it('gives the same batches whatever the prefetch depth', async () => {
    const tr = trainTransform({ size: 4 });
    const x = await take(createLoader(samples(20), { batchSize: 5, transform: tr, seed: 3, prefetch: 0 }), 4);
    const y = await take(createLoader(samples(20), { batchSize: 5, transform: tr, seed: 3, prefetch: 4 }), 4);
    expect(y).toEqual(x);
  });

  it('balanced sampling draws classes with equal frequency from imbalanced data', async () => {
    // 200 samples: class 0 has 160, classes 1..4 have 10 each.
    const data = samples(200, (i) => (i < 160 ? 0 : 1 + ((i - 160) % 4)));
    const loader = createLoader(data, { batchSize: 50, transform: ev, seed: 9, balanced: true });
    const counts = [0, 0, 0, 0, 0];
    for (let e = 0; e < 10; e++) {
      for await (const b of loader) {
        for (const y of b.expression.dataSync()) counts[y]!++;
        disposeBatch(b);
      }
    }
    // 2000 draws, 400 expected per class; binomial std ~18.
    for (const c of counts) expect(Math.abs(c - 400)).toBeLessThan(80);
    // Balance by a factor instead of the expression.
    const byId = createLoader(data, { batchSize: 50, transform: ev, seed: 9, balanced: 'identity' });
    const ids = new Set<number>();
    for await (const b of byId) {
      for (const v of b.factors.identity!.dataSync()) ids.add(v);
      disposeBatch(b);
    }
    expect(ids.has(-1)).toBe(false); // samples without the factor are never drawn
    expect(() => createLoader(data, { batchSize: 5, transform: ev, balanced: 'nope' })).toThrow(/no sample has that label/);
  });

  it('leaks no tensors: numTensors flat across epochs and after an early break', async () => {
    const loader = createLoader(samples(25), { batchSize: 4, transform: trainTransform({ size: 8 }), prefetch: 3 });
    await take(loader, 2);
    const before = tf.memory().numTensors;
    for (let e = 0; e < 3; e++) {
      for await (const b of loader) disposeBatch(b);
      expect(tf.memory().numTensors).toBe(before);
    }
    await take(loader, 1); // break with prefetched batches pending
    await new Promise((r) => setTimeout(r, 20));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('decodes each sample once with cache', async () => {
    let renders = 0;
    const data: Sample[] = Array.from({ length: 6 }, (_, i) => ({
      id: `g${i}`,
      expression: 0,
      image: { kind: 'generated', width: 2, height: 2, render: () => (renders++, { width: 2, height: 2, data: new Uint8Array(12).fill(i) }) },
    }));
    const loader = createLoader(data, { batchSize: 3, transform: ev, cache: true });
    await epochIds(loader);
    await epochIds(loader);
    expect(renders).toBe(6);
  });

  it('passes its decoder and decodeMaxSide hint for file sources', async () => {
    const hints: unknown[] = [];
    const files: Sample[] = [0, 1, 2].map((i) => ({ id: `f${i}`, expression: i, image: { kind: 'file', path: `/virtual/${i}.jpg` } }));
    const loader = createLoader(files, {
      batchSize: 3,
      transform: ev,
      shuffle: false,
      decodeMaxSide: 64,
      decoder: async (source, hint) => {
        hints.push(hint);
        const v = Number((source as { path: string }).path.slice(9, 10));
        return { width: 4, height: 4, data: new Uint8Array(48).fill(v * 10) };
      },
    });
    const [b] = await take(loader, 1);
    expect(hints).toEqual([{ maxSide: 64 }, { maxSide: 64 }, { maxSide: 64 }]);
    expect(b!.images[48]).toBeCloseTo(10 / 255, 6);
  });

  it('rejects bad options and mixed output sizes', async () => {
    expect(() => createLoader([], { batchSize: 2, transform: ev })).toThrow(/no samples/);
    expect(() => createLoader(samples(3), { batchSize: 0, transform: ev })).toThrow(/batchSize/);
    expect(() => createLoader(samples(3), { batchSize: 4, transform: ev, dropLast: true })).toThrow(/no full batch/);
    let k = 0;
    const bad = createLoader(samples(4), { batchSize: 4, transform: (img) => evalTransform({ size: 2 + (k++ % 2) })(img), shuffle: false });
    await expect(epochIds(bad)).rejects.toThrow(/differs/);
  });
});
