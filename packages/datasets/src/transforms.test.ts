import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Rng } from '@dfd/core';
import { resizeBox, resizeImage } from './image.js';
import {
  IMAGENET_MEAN,
  IMAGENET_STD,
  applyJitter,
  colorJitter,
  evalTransform,
  flipHorizontal,
  normalize,
  randomHorizontalFlip,
  randomResizedCrop,
  sampleCropBox,
  sampleJitter,
  trainTransform,
} from './transforms.js';
import type { FloatImage, RgbImage } from './types.js';

function randomImage(w: number, h: number, seed = 1): RgbImage {
  const rng = new Rng(seed);
  return { width: w, height: h, data: Uint8Array.from({ length: w * h * 3 }, () => rng.int(256)) };
}

function floatCopy(img: RgbImage): FloatImage {
  return { width: img.width, height: img.height, data: Float32Array.from(img.data, (v) => v / 255) };
}

describe('resizeBox (PIL bilinear reference)', () => {
  const fx = JSON.parse(readFileSync(new URL('./__fixtures__/pil-resize.json', import.meta.url), 'utf8')) as {
    width: number;
    height: number;
    source: number[];
    cases: Array<{ box: { x: number; y: number; width: number; height: number }; width: number; height: number; data: number[] }>;
  };
  const src: RgbImage = { width: fx.width, height: fx.height, data: Uint8Array.from(fx.source) };
  for (const c of fx.cases) {
    it(`crop ${JSON.stringify(c.box)} -> ${c.width}x${c.height} matches PIL within rounding`, () => {
      const out = resizeBox(src, c.box, c.width, c.height);
      expect(out.data.length).toBe(c.data.length);
      let maxErr = 0;
      for (let i = 0; i < c.data.length; i++) maxErr = Math.max(maxErr, Math.abs(out.data[i]! * 255 - c.data[i]!));
      // PIL rounds to uint8 after each of its two passes: at most ~1 level apart.
      expect(maxErr).toBeLessThanOrEqual(1.01);
    });
  }

  it('rejects a box outside the image', () => {
    expect(() => resizeBox(src, { x: 5, y: 0, width: 9, height: 3 }, 4, 4)).toThrow(/outside/);
  });
});

describe('randomResizedCrop', () => {
  it('samples boxes with area fraction in [0.8, 1] and aspect in [3/4, 4/3], inside the image', () => {
    const rng = new Rng(3);
    let minA = 2;
    let maxA = 0;
    for (let i = 0; i < 3000; i++) {
      const b = sampleCropBox(100, 100, rng);
      const area = (b.width * b.height) / 10000;
      const aspect = b.width / b.height;
      expect(b.x).toBeGreaterThanOrEqual(0);
      expect(b.y).toBeGreaterThanOrEqual(0);
      expect(b.x + b.width).toBeLessThanOrEqual(100);
      expect(b.y + b.height).toBeLessThanOrEqual(100);
      // Rounding w and h to integers moves area and aspect by at most ~1 pixel per side.
      expect(area).toBeGreaterThanOrEqual(0.8 - 0.02);
      expect(area).toBeLessThanOrEqual(1);
      expect(aspect).toBeGreaterThanOrEqual(0.75 - 0.02);
      expect(aspect).toBeLessThanOrEqual(4 / 3 + 0.02);
      minA = Math.min(minA, area);
      maxA = Math.max(maxA, area);
    }
    expect(minA).toBeLessThan(0.82);
    expect(maxA).toBeGreaterThan(0.97);
  });

  it('falls back to a centre crop clamped to the ratio range for extreme aspect images', () => {
    // 100x10 is 10:1: no random box fits the 4/3 ratio with >= 80% area.
    const b = sampleCropBox(100, 10, new Rng(1));
    expect(b).toEqual({ x: 43, y: 0, width: 13, height: 10 });
  });

  it('is the resize of the sampled box to size x size', () => {
    const img = randomImage(60, 50);
    const out = randomResizedCrop({ size: 32 })(img, new Rng(9));
    const box = sampleCropBox(60, 50, new Rng(9));
    expect(out.width).toBe(32);
    expect(out.height).toBe(32);
    expect(Array.from(out.data)).toEqual(Array.from(resizeBox(img, box, 32, 32).data));
  });

  it('maps a horizontal ramp linearly (upsampling keeps linear functions exact inside the crop)', () => {
    const w = 40;
    const h = 30;
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.fill(x * 5, (y * w + x) * 3, (y * w + x) * 3 + 3);
    const box = { x: 7, y: 4, width: 20, height: 20 };
    const out = resizeBox({ width: w, height: h, data }, box, 50, 50);
    // Output pixel centre o maps to source coordinate x0 + (o + 0.5) * 20/50 - 0.5.
    for (let o = 3; o < 47; o++) {
      const expected = (5 * (box.x + ((o + 0.5) * 20) / 50 - 0.5)) / 255;
      expect(out.data[(25 * 50 + o) * 3]).toBeCloseTo(expected, 5);
    }
  });
});

describe('flip', () => {
  it('mirrors exactly: out(x, y) = in(W-1-x, y), and twice is the identity', () => {
    const img = floatCopy(randomImage(7, 5));
    const orig = Float32Array.from(img.data);
    flipHorizontal(img);
    for (let y = 0; y < 5; y++)
      for (let x = 0; x < 7; x++)
        for (let c = 0; c < 3; c++) expect(img.data[(y * 7 + x) * 3 + c]).toBe(orig[(y * 7 + (6 - x)) * 3 + c]);
    flipHorizontal(img);
    expect(Array.from(img.data)).toEqual(Array.from(orig));
  });

  it('flips with probability p', () => {
    const img = randomImage(4, 1);
    const t = randomHorizontalFlip({ p: 0.5 });
    const rng = new Rng(11);
    let flips = 0;
    for (let i = 0; i < 2000; i++) {
      const out = t(img, rng);
      if (Math.abs(out.data[0]! - img.data[9]! / 255) < 1e-7 && out.data[0] !== img.data[0]! / 255) flips++;
    }
    expect(flips / 2000).toBeGreaterThan(0.45);
    expect(flips / 2000).toBeLessThan(0.55);
    expect(Array.from(randomHorizontalFlip({ p: 0 })(img, rng).data)).toEqual(Array.from(Float32Array.from(img.data, (v) => v / 255)));
  });
});

describe('colour jitter', () => {
  it('draws factors in torchvision ranges', () => {
    const rng = new Rng(5);
    for (let i = 0; i < 1000; i++) {
      const f = sampleJitter(rng);
      expect([...f.order].sort()).toEqual([0, 1, 2, 3]);
      for (const k of ['brightness', 'contrast', 'saturation'] as const) {
        expect(f[k]).toBeGreaterThanOrEqual(0.6);
        expect(f[k]).toBeLessThan(1.4);
      }
      expect(Math.abs(f.hue)).toBeLessThanOrEqual(0.4);
    }
    expect(() => sampleJitter(rng, { hue: 0.6 })).toThrow(/hue/);
  });

  it('brightness scales and clamps; contrast keeps the grey mean; saturation 0 gives grey', () => {
    const img = floatCopy(randomImage(8, 8, 2));
    const b = applyJitter({ ...img, data: Float32Array.from(img.data) }, { order: [0], brightness: 1.3, contrast: 1, saturation: 1, hue: 0 });
    for (let i = 0; i < img.data.length; i++) expect(b.data[i]).toBeCloseTo(Math.min(1, img.data[i]! * 1.3), 6);

    const dim: FloatImage = { ...img, data: Float32Array.from(img.data, (v) => 0.25 + v * 0.5) };
    const greyMean = (d: Float32Array) => {
      let m = 0;
      for (let i = 0; i < d.length; i += 3) m += 0.2989 * d[i]! + 0.587 * d[i + 1]! + 0.114 * d[i + 2]!;
      return m / (d.length / 3);
    };
    const before = greyMean(dim.data);
    const c = applyJitter({ ...dim, data: Float32Array.from(dim.data) }, { order: [1], brightness: 1, contrast: 0.7, saturation: 1, hue: 0 });
    // The luma weights sum to 0.9999, so the blended constant keeps the mean up to that factor.
    expect(greyMean(c.data)).toBeCloseTo(0.7 * before + 0.3 * 0.9999 * before, 5);
    expect(c.data[0]).toBeCloseTo(0.7 * dim.data[0]! + 0.3 * before, 5);

    const s = applyJitter({ ...img, data: Float32Array.from(img.data) }, { order: [2], brightness: 1, contrast: 1, saturation: 0, hue: 0 });
    for (let i = 0; i < s.data.length; i += 3) {
      expect(s.data[i]).toBeCloseTo(s.data[i + 1]!, 6);
      expect(s.data[i + 1]).toBeCloseTo(s.data[i + 2]!, 6);
    }
  });

  it('hue rotates: +1/3 turns red into green, -1/3 into blue, grey stays grey', () => {
    const px = (r: number, g: number, b: number): FloatImage => ({ width: 1, height: 1, data: Float32Array.from([r, g, b]) });
    const rot = (img: FloatImage, h: number) => Array.from(applyJitter(img, { order: [3], brightness: 1, contrast: 1, saturation: 1, hue: h }).data);
    const g = rot(px(0.8, 0, 0), 1 / 3);
    expect(g[0]).toBeCloseTo(0, 5);
    expect(g[1]).toBeCloseTo(0.8, 5);
    expect(g[2]).toBeCloseTo(0, 5);
    const b = rot(px(0.8, 0, 0), -1 / 3);
    expect(b[2]).toBeCloseTo(0.8, 5);
    expect(b[0]).toBeCloseTo(0, 5);
    expect(rot(px(0.4, 0.4, 0.4), 0.25)).toEqual([0.4, 0.4, 0.4].map((v) => Math.fround(v)));
    // Half a turn of orange (1, 0.5, 0) is azure (0, 0.5, 1).
    const az = rot(px(1, 0.5, 0), 0.5);
    expect(az[0]).toBeCloseTo(0, 5);
    expect(az[1]).toBeCloseTo(0.5, 5);
    expect(az[2]).toBeCloseTo(1, 5);
  });

  it('hue rotation matches Python colorsys on random pixels', () => {
    const fx = JSON.parse(readFileSync(new URL('./__fixtures__/hue.json', import.meta.url), 'utf8')) as {
      pixels: number[][];
      cases: Array<{ shift: number; expected: number[][] }>;
    };
    for (const c of fx.cases) {
      const img: FloatImage = { width: fx.pixels.length, height: 1, data: Float32Array.from(fx.pixels.flat()) };
      applyJitter(img, { order: [3], brightness: 1, contrast: 1, saturation: 1, hue: c.shift });
      const want = c.expected.flat();
      let maxErr = 0;
      for (let i = 0; i < want.length; i++) maxErr = Math.max(maxErr, Math.abs(img.data[i]! - want[i]!));
      expect(maxErr).toBeLessThan(1e-5);
    }
  });

  it('keeps every value in [0, 1]', () => {
    const img = randomImage(16, 16, 4);
    const t = colorJitter({});
    const rng = new Rng(8);
    for (let i = 0; i < 50; i++) {
      const out = t(img, rng);
      let lo = Infinity;
      let hi = -Infinity;
      for (const v of out.data) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      expect(lo).toBeGreaterThanOrEqual(0);
      expect(hi).toBeLessThanOrEqual(1);
    }
  });
});

describe('normalise and the paper transforms', () => {
  it('applies ImageNet mean/std per channel', () => {
    const out = normalize()({ width: 2, height: 1, data: Uint8Array.from([0, 255, 128, 255, 0, 0]) });
    expect(out.data[0]).toBeCloseTo(-0.485 / 0.229, 5);
    expect(out.data[1]).toBeCloseTo((1 - 0.456) / 0.224, 5);
    expect(out.data[2]).toBeCloseTo((128 / 255 - 0.406) / 0.225, 5);
    expect(out.data[3]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(IMAGENET_MEAN).toEqual([0.485, 0.456, 0.406]);
    expect(IMAGENET_STD).toEqual([0.229, 0.224, 0.225]);
  });

  it('evalTransform = resize + normalise, deterministic', () => {
    const img = randomImage(48, 48);
    const out = evalTransform({ size: 90 })(img);
    const ref = normalize()(resizeImage(img, 90, 90));
    expect(out.width).toBe(90);
    expect(Array.from(out.data)).toEqual(Array.from(ref.data));
  });

  it('trainTransform: one seed reproduces the output exactly, another seed differs', () => {
    const img = randomImage(48, 48);
    const t = trainTransform({ size: 90 });
    const a = t(img, new Rng(21));
    const b = t(img, new Rng(21));
    const c = t(img, new Rng(22));
    expect(a.data.length).toBe(90 * 90 * 3);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));
    expect(Array.from(a.data)).not.toEqual(Array.from(c.data));
    // The source image is not modified.
    expect(Array.from(img.data)).toEqual(Array.from(randomImage(48, 48).data));
    expect(() => t(img)).toThrow(/Rng/);
  });

  it('trainTransform equals crop -> jitter -> flip -> normalise drawn from the same stream', () => {
    const img = randomImage(30, 30, 6);
    const out = trainTransform({ size: 20 })(img, new Rng(4));
    const rng = new Rng(4);
    const cropped = resizeBox(img, sampleCropBox(30, 30, rng), 20, 20);
    applyJitter(cropped, sampleJitter(rng));
    if (rng.next() < 0.5) flipHorizontal(cropped);
    const ref = normalize()(cropped);
    expect(Array.from(out.data)).toEqual(Array.from(ref.data));
  });
});
