import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { IMAGENET_MEAN, IMAGENET_STD } from '@dfd/datasets';
import { nativeZooTransform } from './zoo.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Back from ImageNet normalisation to 0..1. */
const unit = (v: number, c: number) => v * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!;

describe('nativeZooTransform', () => {
  it("faceapi: a wide image is zero-padded to a centred square, then resized to the input (face-api's own)", () => {
    // 224x112 constant 0.8 image -> padded to 224x224 (56 zero rows above and below) -> 112x112: rows 28..83 are 0.8, the rest 0.
    const w = 224;
    const h = 112;
    const data = new Uint8Array(w * h * 3).fill(204);
    const out = nativeZooTransform('faceapi:expression')({ width: w, height: h, data });
    expect([out.width, out.height]).toEqual([112, 112]);
    const at = (x: number, y: number, c = 0) => unit(out.data[(y * 112 + x) * 3 + c]!, c);
    expect(at(50, 10)).toBeCloseTo(0, 5);
    expect(at(50, 27)).toBeCloseTo(0, 5);
    expect(at(50, 28)).toBeCloseTo(0.8, 5);
    expect(at(50, 83, 2)).toBeCloseTo(0.8, 5);
    expect(at(50, 84)).toBeCloseTo(0, 5);
  });

  it('human: no padding, a plain (non-antialiased) bilinear resize', () => {
    // A 128x64 image whose column x has value x/255: resizeBilinear to 64 (half_pixel_centers off) samples column 2i exactly.
    const data = new Uint8Array(128 * 64 * 3);
    for (let y = 0; y < 64; y++) for (let x = 0; x < 128; x++) data.fill(x, (y * 128 + x) * 3, (y * 128 + x) * 3 + 3);
    const out = nativeZooTransform('human:emotion')({ width: 128, height: 64, data });
    expect([out.width, out.height]).toEqual([64, 64]);
    for (const i of [0, 5, 31, 63]) expect(unit(out.data[(7 * 64 + i) * 3]!, 0)).toBeCloseTo((2 * i) / 255, 5);
  });
});
