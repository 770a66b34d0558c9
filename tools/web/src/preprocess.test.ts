import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { Rng } from '@dfd/core';
import { centreCropBox, cropResizeNormalise, softmax } from './preprocess.js';

function randomImage(width: number, height: number, seed: number) {
  const rng = new Rng(seed);
  const data = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < data.length; i++) data[i] = i % 4 === 3 ? 255 : rng.int(256);
  return { data, width, height };
}

describe('face crop and input preparation', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('centre crop is the middle square, scaled by the fraction', () => {
    expect(centreCropBox(64, 48)).toEqual({ x: 8, y: 0, size: 48 });
    expect(centreCropBox(48, 64)).toEqual({ x: 0, y: 8, size: 48 });
    expect(centreCropBox(100, 100, 0.5)).toEqual({ x: 25, y: 25, size: 50 });
    expect(() => centreCropBox(10, 10, 0)).toThrow(/crop fraction/);
  });

  it('same size: copies the crop and normalises each channel as (v/255 - mean)/std', () => {
    const img = randomImage(7, 5, 1);
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const out = cropResizeNormalise(img, { x: 1, y: 0, size: 5 }, 5, mean, std);
    for (const [oy, ox, c] of [[0, 0, 0], [4, 4, 2], [2, 3, 1]] as const) {
      const v = img.data[(oy * 7 + ox + 1) * 4 + c]!;
      expect(out[(oy * 5 + ox) * 3 + c]).toBeCloseTo((v / 255 - mean[c]!) / std[c]!, 6);
    }
  });

  it('resizing matches tf.image.resizeBilinear with half-pixel centres (down and up)', () => {
    const img = randomImage(40, 30, 2);
    const box = centreCropBox(40, 30);
    const rgb = new Float32Array(box.size * box.size * 3);
    for (let y = 0; y < box.size; y++)
      for (let x = 0; x < box.size; x++)
        for (let c = 0; c < 3; c++) rgb[(y * box.size + x) * 3 + c] = img.data[((y + box.y) * 40 + x + box.x) * 4 + c]! / 255;
    for (const size of [13, 30, 47]) {
      const ours = cropResizeNormalise(img, box, size, [0, 0, 0], [1, 1, 1]);
      const ref = tf.tidy(() =>
        tf.image.resizeBilinear(tf.tensor3d(rgb, [box.size, box.size, 3]), [size, size], false, true).dataSync(),
      );
      let maxErr = 0;
      for (let i = 0; i < ours.length; i++) maxErr = Math.max(maxErr, Math.abs(ours[i]! - ref[i]!));
      expect(maxErr, `size ${size}`).toBeLessThan(1e-5);
    }
  });

  it('softmax sums to one and matches the closed form', () => {
    const p = softmax([0, Math.log(3)]);
    expect(p[0]).toBeCloseTo(0.25, 12);
    expect(p[1]).toBeCloseTo(0.75, 12);
    expect(softmax([1000, 1000, 1000]).every((v) => Math.abs(v - 1 / 3) < 1e-12)).toBe(true);
  });
});
