import { normalize, resizeBox, toRgb } from '@dfd/datasets';

/** An RGBA image as canvas getImageData returns it (4 bytes per pixel, row-major). */
export interface RgbaImage {
  data: Uint8ClampedArray | Uint8Array;
  width: number;
  height: number;
}

/** The square crop, in source pixels, that a face crop takes. */
export interface CropBox {
  x: number;
  y: number;
  size: number;
}

/**
 * The centred square whose side is `fraction` of the shorter image side: the default "face
 * crop" for aligned face photos, where the face fills the middle of the frame.
 */
export function centreCropBox(width: number, height: number, fraction = 1): CropBox {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`crop fraction must be in (0, 1], got ${fraction}`);
  const size = Math.max(1, Math.round(Math.min(width, height) * fraction));
  return { x: Math.floor((width - size) / 2), y: Math.floor((height - size) / 2), size };
}

/**
 * The network input for one picture: crop `box`, resize it to `size` x `size` and normalise,
 * with @dfd/datasets' own resize (PIL-style antialiased bilinear) and normalisation, i.e. the
 * evaluation transform the model was tested with. Pure JavaScript, so the browser and Node make
 * the same float32 input whatever tfjs backend runs the network afterwards.
 */
export function prepareInput(img: RgbaImage, box: CropBox, size: number, mean: readonly number[], std: readonly number[]): Float32Array {
  const rgb = toRgb(img.width, img.height, 4, img.data);
  const resized = resizeBox(rgb, { x: box.x, y: box.y, width: box.size, height: box.size }, size, size);
  return normalize({ mean, std })(resized).data;
}

/** Softmax over one row of logits, in float64 so tiny probabilities stay exact. */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
