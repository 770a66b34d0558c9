import { describe, expect, it } from 'vitest';
import { Rng } from '@dfd/core';
import { centreCropBox, prepareInput, softmax } from './preprocess.js';

function randomImage(width: number, height: number, seed: number) {
  const rng = new Rng(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : rng.int(256);
  return { data, width, height };
}

const MEAN = [0.485, 0.456, 0.406];
const STD = [0.229, 0.224, 0.225];

describe('face crop and input preparation', () => {
  it('centre crop is the middle square, scaled by the fraction', () => {
    expect(centreCropBox(64, 48)).toEqual({ x: 8, y: 0, size: 48 });
    expect(centreCropBox(48, 64)).toEqual({ x: 0, y: 8, size: 48 });
    expect(centreCropBox(100, 100, 0.5)).toEqual({ x: 25, y: 25, size: 50 });
    expect(() => centreCropBox(10, 10, 0)).toThrow(/crop fraction/);
  });

  it('same size: copies the crop (RGBA -> RGB) and normalises each channel as (v/255 - mean)/std', () => {
    const img = randomImage(7, 5, 1);
    const out = prepareInput(img, { x: 1, y: 0, size: 5 }, 5, MEAN, STD);
    expect(out).toHaveLength(5 * 5 * 3);
    for (let oy = 0; oy < 5; oy++)
      for (let ox = 0; ox < 5; ox++)
        for (let c = 0; c < 3; c++) {
          const v = img.data[(oy * 7 + ox + 1) * 4 + c]!;
          expect(out[(oy * 5 + ox) * 3 + c]).toBeCloseTo((v / 255 - MEAN[c]!) / STD[c]!, 5);
        }
  });

  it('halving matches the closed form of the antialiased triangle filter (support 2 px)', () => {
    const img = randomImage(8, 8, 2);
    const out = prepareInput(img, { x: 0, y: 0, size: 8 }, 4, [0, 0, 0], [1, 1, 1]);
    for (const [oy, ox, c] of [[0, 0, 0], [3, 2, 1], [1, 3, 2]] as const) {
      // At scale 2 the antialiased bilinear (triangle) filter spans 2 source pixels each side of
      // the output centre, weights 1 - |d|/2, renormalised where the image edge cuts it.
      const w = (o: number, i: number) => {
        const centre = 2 * o + 1;
        const d = Math.abs(i + 0.5 - centre) / 2;
        return Math.max(0, 1 - d);
      };
      let num = 0;
      let den = 0;
      for (let y = 0; y < 8; y++)
        for (let x = 0; x < 8; x++) {
          const k = w(oy, y) * w(ox, x);
          num += k * img.data[(y * 8 + x) * 4 + c]!;
          den += k;
        }
      expect(out[(oy * 4 + ox) * 3 + c]).toBeCloseTo(num / den / 255, 5);
    }
  });

  it('a flat image stays flat at any size', () => {
    const data = new Uint8ClampedArray(30 * 20 * 4).fill(128);
    const out = prepareInput({ data, width: 30, height: 20 }, centreCropBox(30, 20), 13, [0, 0, 0], [1, 1, 1]);
    for (const v of out) expect(v).toBeCloseTo(128 / 255, 6);
  });

  it('softmax sums to one and matches the closed form', () => {
    const p = softmax([0, Math.log(3)]);
    expect(p[0]).toBeCloseTo(0.25, 12);
    expect(p[1]).toBeCloseTo(0.75, 12);
    expect(softmax([1000, 1000, 1000]).every((v) => Math.abs(v - 1 / 3) < 1e-12)).toBe(true);
  });
});
