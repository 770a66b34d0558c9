import { Rng } from '@dfd/core';

/** Test model size: SwiftShader runs WebGPU on the CPU at ~0.3 GFLOP/s, so the net stays tiny. */
export const TINY = { variant: 'att+eifp' as const, width: 1 / 16, inputSize: 48, miDims: [16, 16], miHidden: 16, seed: 1234 };

/**
 * A deterministic RGBA test picture, wider than tall so the centre crop and the resize both
 * do real work: smooth gradients (a face-like blob on a background) plus seeded noise.
 */
export function fixtureImage(width: number, height: number, seed = 7): { data: Uint8Array; width: number; height: number } {
  const rng = new Rng(seed);
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dx = (x - width / 2) / (height / 2);
      const dy = (y - height / 2) / (height / 2);
      const blob = Math.exp(-(dx * dx * 2.5 + dy * dy * 1.6) * 1.5);
      const i = (y * width + x) * 4;
      const noise = () => rng.int(41) - 20;
      data[i] = clamp(60 + 170 * blob + 30 * Math.sin(y / 5) + noise());
      data[i + 1] = clamp(50 + 130 * blob + 40 * Math.cos(x / 7) + noise());
      data[i + 2] = clamp(80 + 90 * blob - 30 * dy + noise());
      data[i + 3] = 255;
    }
  }
  return { data, width, height };
}

function clamp(v: number): number {
  return Math.max(0, Math.min(255, Math.round(v)));
}

/** Largest absolute difference between two equally long number lists. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
