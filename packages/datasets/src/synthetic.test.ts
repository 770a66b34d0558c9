import { describe, expect, it } from 'vitest';
import { EventBus } from '@dfd/core';
import { createDatasetRegistry } from './builtin.js';
import { decodeImage } from './image.js';
import { SYNTHETIC_DOMAINS, createSyntheticDataset, syntheticFactors } from './synthetic.js';
import type { Dataset, RgbImage, Sample } from './types.js';

async function images(samples: Sample[]): Promise<RgbImage[]> {
  return Promise.all(samples.map((s) => decodeImage(s.image)));
}

function mean(img: RgbImage): number {
  let m = 0;
  for (const v of img.data) m += v;
  return m / img.data.length;
}

function fraction(ds: Dataset, factor: string, value: number): number {
  const t = ds.splits.train!;
  return t.filter((s) => s.factors![factor] === value).length / t.length;
}

describe('synthetic domains', () => {
  it('resolves specs with options into splits with labels in range', async () => {
    const reg = createDatasetRegistry();
    const ds = await reg.resolve('synthetic:wild?train=50&test=20&val=10&size=32&seed=1&ids=8');
    expect(ds.splits.train!.length).toBe(50);
    expect(ds.splits.val!.length).toBe(10);
    expect(ds.splits.test!.length).toBe(20);
    expect(ds.factors).toEqual(syntheticFactors(8));
    expect(ds.hasExpression).toBe(true);
    for (const s of [...ds.splits.train!, ...ds.splits.test!]) {
      expect(s.expression).toBeGreaterThanOrEqual(0);
      expect(s.expression).toBeLessThan(7);
      for (const f of ds.factors!) {
        expect(s.factors![f.name]).toBeGreaterThanOrEqual(0);
        expect(s.factors![f.name]).toBeLessThan(f.classes);
      }
    }
    const img = await decodeImage(ds.splits.train![0]!.image);
    expect([img.width, img.height, img.data.length]).toEqual([32, 32, 32 * 32 * 3]);
    await expect(reg.resolve('synthetic:moon')).rejects.toThrow(/unknown synthetic domain 'moon'.*studio/);
    await expect(reg.resolve('synthetic:wild?trian=5')).rejects.toThrow(/unknown option 'trian'/);
    await expect(reg.resolve('synthetic:wild?train=-1')).rejects.toThrow(/train=-1/);
  });

  it('is deterministic in the seed, and train/test/seeds differ', async () => {
    const a = await images(createSyntheticDataset('studio', { train: 5, test: 5, seed: 3 }).splits.train!);
    const b = await images(createSyntheticDataset('studio', { train: 5, test: 5, seed: 3 }).splits.train!);
    const c = await images(createSyntheticDataset('studio', { train: 5, test: 5, seed: 4 }).splits.train!);
    const t = await images(createSyntheticDataset('studio', { train: 5, test: 5, seed: 3 }).splits.test!);
    expect(a.map((i) => Array.from(i.data))).toEqual(b.map((i) => Array.from(i.data)));
    expect(Array.from(a[0]!.data)).not.toEqual(Array.from(c[0]!.data));
    expect(Array.from(a[0]!.data)).not.toEqual(Array.from(t[0]!.data));
  });

  it('domains differ in factor distributions and rendering', async () => {
    const n = 400;
    const ds = Object.fromEntries(Object.keys(SYNTHETIC_DOMAINS).map((d) => [d, createSyntheticDataset(d, { train: n, test: 0, size: 32 })]));
    // Pose: studio is mostly frontal, wild uniform.
    expect(fraction(ds.studio!, 'pose', 2)).toBeGreaterThan(0.6);
    expect(fraction(ds.wild!, 'pose', 2)).toBeLessThan(0.3);
    // Illumination: lowlight is mostly side-lit.
    expect(fraction(ds.lowlight!, 'illumination', 1)).toBeLessThan(0.2);
    // Skin: lowlight skews dark, studio light.
    expect(fraction(ds.lowlight!, 'skin', 2)).toBeGreaterThan(fraction(ds.studio!, 'skin', 2) + 0.15);
    // Rendering: lowlight is dark, sketch is grey, studio is colour.
    const first = async (d: string) => images(ds[d]!.splits.train!.slice(0, 30));
    const [studio, lowlight, sketch] = [await first('studio'), await first('lowlight'), await first('sketch')];
    const avg = (xs: RgbImage[]) => xs.reduce((s, i) => s + mean(i), 0) / xs.length;
    expect(avg(lowlight)).toBeLessThan(0.5 * avg(studio));
    for (const img of sketch) for (let i = 0; i < img.data.length; i += 3) expect(img.data[i]).toBe(img.data[i + 1]);
    expect(studio.some((img) => img.data.some((v, i) => i % 3 === 0 && v !== img.data[i + 2]))).toBe(true);
  });

  it('expressions are learnable from the image but not from any single pixel', async () => {
    const ds = createSyntheticDataset('studio', { train: 700, test: 350, size: 24, seed: 2 });
    const grey = (img: RgbImage) => Float64Array.from({ length: img.width * img.height }, (_, i) => (img.data[i * 3]! + img.data[i * 3 + 1]! + img.data[i * 3 + 2]!) / 765);
    const train = (await images(ds.splits.train!)).map(grey);
    const test = (await images(ds.splits.test!)).map(grey);
    const ytr = ds.splits.train!.map((s) => s.expression!);
    const yte = ds.splits.test!.map((s) => s.expression!);
    const d = 24 * 24;
    // Nearest class centroid on the whole image.
    const cent = Array.from({ length: 7 }, () => new Float64Array(d));
    const cnt = new Array(7).fill(0);
    train.forEach((x, i) => {
      cnt[ytr[i]!]++;
      for (let k = 0; k < d; k++) cent[ytr[i]!]![k]! += x[k]!;
    });
    cent.forEach((c, j) => c.forEach((_, k) => (c[k]! /= cnt[j])));
    let correct = 0;
    test.forEach((x, i) => {
      let best = 0;
      let bestD = Infinity;
      cent.forEach((c, j) => {
        let dist = 0;
        for (let k = 0; k < d; k++) dist += (x[k]! - c[k]!) ** 2;
        if (dist < bestD) [bestD, best] = [dist, j];
      });
      if (best === yte[i]) correct++;
    });
    const centroidAcc = correct / test.length;
    // Best single-pixel classifier: per pixel, quantise to 8 levels and predict the majority class per level.
    let bestPixel = 0;
    for (let k = 0; k < d; k++) {
      const table = Array.from({ length: 8 }, () => new Array(7).fill(0));
      train.forEach((x, i) => table[Math.min(7, Math.floor(x[k]! * 8))]![ytr[i]!]++);
      const pred = table.map((row) => row.indexOf(Math.max(...row)));
      let ok = 0;
      test.forEach((x, i) => (ok += pred[Math.min(7, Math.floor(x[k]! * 8))] === yte[i] ? 1 : 0));
      bestPixel = Math.max(bestPixel, ok / test.length);
    }
    expect(centroidAcc).toBeGreaterThan(0.35); // chance is ~0.14
    expect(bestPixel).toBeLessThan(centroidAcc);
    expect(bestPixel).toBeLessThan(0.4);
  });

  it('publishes no warnings and accepts a bus', async () => {
    const bus = new EventBus();
    const seen: unknown[] = [];
    bus.subscribe('warning', (e) => void seen.push(e));
    const ds = await createDatasetRegistry().resolve('synthetic:sketch?train=3&test=2', { bus });
    await bus.drain();
    expect(ds.warnings).toEqual([]);
    expect(seen).toEqual([]);
  });
});
