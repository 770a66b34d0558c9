import { Rng } from '@dfd/core';
import { SYNTHETIC_DOMAINS, renderFace, sampleFaceParams, type RgbImage } from '@dfd/datasets';

/** Where a synthetic face goes: its top-left corner, its side in px, and the seed of its features. */
export interface FacePlacement {
  x: number;
  y: number;
  size: number;
  seed: number;
}

/** An axis-aligned box in pixels. */
export interface PixelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A `width` x `height` RGB canvas with synthetic faces (@dfd/datasets' `renderFace`, studio
 * domain) pasted at their placements, for detector and cropping tests: the canvas takes the first
 * face's background colour (its top-left pixel), so only the faces stand out; without faces it is black.
 */
export function faceCanvas(width: number, height: number, faces: FacePlacement | FacePlacement[]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  const d = SYNTHETIC_DOMAINS.studio!;
  (Array.isArray(faces) ? faces : [faces]).forEach((f, k) => {
    const face = renderFace(d, sampleFaceParams(d, new Rng(f.seed)), f.size);
    if (k === 0) for (let i = 0; i < width * height; i++) data.set(face.data.subarray(0, 3), i * 3);
    for (let y = 0; y < f.size; y++) data.set(face.data.subarray(y * f.size * 3, (y + 1) * f.size * 3), ((f.y + y) * width + f.x) * 3);
  });
  return { width, height, data };
}

/** Intersection over union of two boxes. */
export function boxIou(a: PixelBox, b: PixelBox): number {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  return (w * h) / (a.width * a.height + b.width * b.height - w * h);
}
