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
 * Crop `box` out of `img`, resize it to `size` x `size` with bilinear interpolation
 * (half-pixel centres, edge clamped, as PIL/torchvision without antialias) and normalise each
 * channel as (v / 255 - mean) / std. Pure JavaScript, so the browser and Node produce the same
 * float32 input bit for bit, whatever tfjs backend runs the network afterwards.
 */
export function cropResizeNormalise(
  img: RgbaImage,
  box: CropBox,
  size: number,
  mean: readonly number[],
  std: readonly number[],
): Float32Array {
  const out = new Float32Array(size * size * 3);
  const scale = box.size / size;
  const clamp = (v: number, hi: number) => (v < 0 ? 0 : v > hi ? hi : v);
  for (let oy = 0; oy < size; oy++) {
    const sy = clamp((oy + 0.5) * scale - 0.5, box.size - 1) + box.y;
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, box.y + box.size - 1);
    const fy = sy - y0;
    for (let ox = 0; ox < size; ox++) {
      const sx = clamp((ox + 0.5) * scale - 0.5, box.size - 1) + box.x;
      const x0 = Math.floor(sx);
      const x1 = Math.min(x0 + 1, box.x + box.size - 1);
      const fx = sx - x0;
      for (let c = 0; c < 3; c++) {
        const p = (x: number, y: number) => img.data[(y * img.width + x) * 4 + c]!;
        const top = p(x0, y0) * (1 - fx) + p(x1, y0) * fx;
        const bottom = p(x0, y1) * (1 - fx) + p(x1, y1) * fx;
        const v = top * (1 - fy) + bottom * fy;
        out[(oy * size + ox) * 3 + c] = (v / 255 - mean[c]!) / std[c]!;
      }
    }
  }
  return out;
}

/** Softmax over one row of logits, in float64 so tiny probabilities stay exact. */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}
