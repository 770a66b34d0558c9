import { DfdError } from '@dfd/core';
import type { ZooImage } from './detector.js';

/** A face crop could not be made (empty box, bad margin or size). */
export class ZooCropError extends DfdError {
  constructor(message: string) {
    super('E_ZOO_CROP', message);
  }
}

/** Options of {@link cropFace}. */
export interface CropOptions {
  /** Added on every side, as a fraction of the box's longer side (default 0.2: the crop is 1.4x the box). */
  margin?: number;
  /** Output side in pixels (default: the crop's own side, rounded). */
  size?: number;
  /**
   * Eye centres in the image's pixels: when given, the crop is rotated about the box centre so
   * that the eyes are level (the line from `left` to `right` becomes horizontal).
   */
  eyes?: { left: readonly [number, number]; right: readonly [number, number] };
}

/** A square face crop and where it came from. */
export interface FaceCrop extends ZooImage {
  /** Centre of the crop in the source image's pixels. */
  centerX: number;
  centerY: number;
  /** Side of the crop in the source image's pixels (before resizing to `width`). */
  side: number;
  /** Rotation applied (radians; 0 without `eyes`): the source is sampled along this angle. */
  angle: number;
}

/**
 * Cuts a square around a face box (its centre, longer side plus `margin` on each side), optionally
 * rotated so the eyes are level, resampled bilinearly to `size`; pixels outside the image repeat
 * its border.
 */
export function cropFace(image: ZooImage, box: { x: number; y: number; width: number; height: number }, options: CropOptions = {}): FaceCrop {
  const margin = options.margin ?? 0.2;
  if (!(margin >= 0 && margin <= 2)) throw new ZooCropError(`crop margin ${margin}: must be between 0 and 2 (a fraction of the face box).`);
  if (!(box.width > 0 && box.height > 0) || ![box.x, box.y].every(Number.isFinite)) throw new ZooCropError(`face box ${JSON.stringify(box)}: needs a finite position and a positive width and height.`);
  if (image.width < 1 || image.height < 1 || image.data.length !== image.width * image.height * 3) throw new ZooCropError(`image ${image.width}x${image.height} with ${image.data.length} bytes: expected width * height * 3 RGB bytes.`);
  const side = Math.max(box.width, box.height) * (1 + 2 * margin);
  const size = options.size ?? Math.max(1, Math.round(side));
  if (!Number.isInteger(size) || size < 1) throw new ZooCropError(`crop size ${size}: must be a positive integer.`);
  const centerX = box.x + box.width / 2;
  const centerY = box.y + box.height / 2;
  const angle = options.eyes ? Math.atan2(options.eyes.right[1] - options.eyes.left[1], options.eyes.right[0] - options.eyes.left[0]) : 0;
  const cos = Math.cos(angle);
  const sin = Math.sin(angle);
  const step = side / size;
  const { width: W, height: H, data } = image;
  const out = new Uint8Array(size * size * 3);
  for (let j = 0; j < size; j++) {
    const dv = (j + 0.5) * step - side / 2;
    for (let i = 0; i < size; i++) {
      const du = (i + 0.5) * step - side / 2;
      // Source point (pixel centres at +0.5), clamped to the image.
      const sx = Math.min(W - 1, Math.max(0, centerX + cos * du - sin * dv - 0.5));
      const sy = Math.min(H - 1, Math.max(0, centerY + sin * du + cos * dv - 0.5));
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(W - 1, x0 + 1);
      const y1 = Math.min(H - 1, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (j * size + i) * 3;
      for (let c = 0; c < 3; c++) {
        const top = data[(y0 * W + x0) * 3 + c]! * (1 - fx) + data[(y0 * W + x1) * 3 + c]! * fx;
        const bottom = data[(y1 * W + x0) * 3 + c]! * (1 - fx) + data[(y1 * W + x1) * 3 + c]! * fx;
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width: size, height: size, data: out, centerX, centerY, side, angle };
}
