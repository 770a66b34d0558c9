import { Rng } from '@dfd/core';
import { SYNTHETIC_DOMAINS, renderFace, sampleFaceParams } from '@dfd/datasets';

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

/**
 * A photo with one face off-centre (top right): @dfd/datasets' synthetic studio face (160 px) on
 * a 480x330 canvas of its own background colour, as @dfd/zoo's detector tests build theirs (the
 * zoo detector finds it at 416 px input). RGB, 3 bytes per pixel; the face's square is returned.
 */
export function faceScene(): { image: { data: Uint8Array; width: number; height: number }; face: { x: number; y: number; size: number } } {
  const width = 480;
  const height = 330;
  const f = { x: 290, y: 30, size: 160 };
  const d = SYNTHETIC_DOMAINS.studio!;
  const face = renderFace(d, sampleFaceParams(d, new Rng(1)), f.size);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(face.data.subarray(0, 3), i * 3);
  for (let y = 0; y < f.size; y++) data.set(face.data.subarray(y * f.size * 3, (y + 1) * f.size * 3), ((f.y + y) * width + f.x) * 3);
  return { image: { data, width, height }, face: f };
}
