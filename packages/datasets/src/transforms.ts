import type { Rng } from '@dfd/core';
import { resizeBox, type Box } from './image.js';
import type { FloatImage, RgbImage } from './types.js';

/** ImageNet channel means (RGB, [0, 1] scale) used by the paper's normalisation. */
export const IMAGENET_MEAN: readonly [number, number, number] = [0.485, 0.456, 0.406];
/** ImageNet channel standard deviations (RGB). */
export const IMAGENET_STD: readonly [number, number, number] = [0.229, 0.224, 0.225];

/**
 * A transform maps an RGB image (uint8 0..255 or float 0..1) to a float image, drawing its
 * randomness from `rng` so that one seed reproduces a batch exactly. Transforms may reuse and
 * modify the float array they are given.
 */
export type Transform = (image: RgbImage | FloatImage, rng?: Rng) => FloatImage;

function asFloat(image: RgbImage | FloatImage): FloatImage {
  if (image.data instanceof Float32Array) return image as FloatImage;
  const out = new Float32Array(image.data.length);
  for (let i = 0; i < out.length; i++) out[i] = image.data[i]! / 255;
  return { width: image.width, height: image.height, data: out };
}

function need(rng: Rng | undefined, fallback: Rng | undefined, what: string): Rng {
  const r = rng ?? fallback;
  if (!r) throw new RangeError(`${what} is random: pass an Rng to the transform call or as the 'rng' option`);
  return r;
}

/** Chains transforms left to right; each gets the same rng stream. */
export function compose(...transforms: Transform[]): Transform {
  return (image, rng) => {
    let out = image;
    for (const t of transforms) out = t(out, rng);
    return asFloat(out);
  };
}

/** Options of {@link randomResizedCrop}. */
export interface RandomResizedCropOptions {
  size: number;
  /** Area fraction range (paper: [0.8, 1]). */
  scale?: readonly [number, number];
  /** Aspect (w/h) range (paper: [3/4, 4/3]). */
  ratio?: readonly [number, number];
  rng?: Rng;
}

/**
 * torchvision's RandomResizedCrop box sampling: up to 10 tries of area ~ U(scale), log-aspect
 * ~ U(log ratio), then a centre crop clamped to the ratio range.
 */
export function sampleCropBox(width: number, height: number, rng: Rng, scale: readonly [number, number] = [0.8, 1], ratio: readonly [number, number] = [3 / 4, 4 / 3]): Box {
  const area = width * height;
  const logLo = Math.log(ratio[0]);
  const logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * rng.uniform(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniform(logLo, logHi));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const y = rng.int(height - h + 1);
      const x = rng.int(width - w + 1);
      return { x, y, width: w, height: h };
    }
  }
  const inRatio = width / height;
  let w: number;
  let h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = Math.round(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = Math.round(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return { x: Math.floor((width - w) / 2), y: Math.floor((height - h) / 2), width: w, height: h };
}

/** Random resized crop to `size x size` (torchvision semantics, PIL-style bilinear resampling). */
export function randomResizedCrop(options: RandomResizedCropOptions): Transform {
  const { size, scale = [0.8, 1], ratio = [3 / 4, 4 / 3] } = options;
  return (image, rng) => {
    const box = sampleCropBox(image.width, image.height, need(rng, options.rng, 'randomResizedCrop'), scale, ratio);
    return resizeBox(image, box, size, size);
  };
}

/** Deterministic resize of the whole image to `size x size`. */
export function resize(options: { size: number }): Transform {
  return (image) => resizeBox(image, { x: 0, y: 0, width: image.width, height: image.height }, options.size, options.size);
}

/** Mirrors the image left-right with probability `p` (one draw per call). */
export function randomHorizontalFlip(options: { p?: number; rng?: Rng } = {}): Transform {
  const p = options.p ?? 0.5;
  return (image, rng) => {
    const f = asFloat(image);
    if (!(need(rng, options.rng, 'randomHorizontalFlip').next() < p)) return f;
    return flipHorizontal(f);
  };
}

/** Mirrors a float image left-right in place. */
export function flipHorizontal(image: FloatImage): FloatImage {
  const { width, height, data } = image;
  for (let y = 0; y < height; y++) {
    const row = y * width * 3;
    for (let x = 0; x < width >> 1; x++) {
      const a = row + x * 3;
      const b = row + (width - 1 - x) * 3;
      for (let c = 0; c < 3; c++) {
        const t = data[a + c]!;
        data[a + c] = data[b + c]!;
        data[b + c] = t;
      }
    }
  }
  return image;
}

/** Options of {@link colorJitter}: torchvision ColorJitter strengths (paper: 0.4 each). */
export interface ColorJitterOptions {
  brightness?: number;
  contrast?: number;
  saturation?: number;
  /** At most 0.5. */
  hue?: number;
  rng?: Rng;
}

/** The factors one colour-jitter call drew, in torchvision's ranges. */
export interface JitterFactors {
  order: number[];
  brightness: number;
  contrast: number;
  saturation: number;
  hue: number;
}

/** Draws jitter factors like torchvision: random order, then b, c, s ~ U(max(0,1-x), 1+x), hue ~ U(-h, h). */
export function sampleJitter(rng: Rng, o: ColorJitterOptions = {}): JitterFactors {
  const b = o.brightness ?? 0.4;
  const c = o.contrast ?? 0.4;
  const s = o.saturation ?? 0.4;
  const h = o.hue ?? 0.4;
  if (h < 0 || h > 0.5) throw new RangeError(`colorJitter: hue must be in [0, 0.5], got ${h}`);
  const order = rng.shuffle([0, 1, 2, 3]);
  return {
    order,
    brightness: rng.uniform(Math.max(0, 1 - b), 1 + b),
    contrast: rng.uniform(Math.max(0, 1 - c), 1 + c),
    saturation: rng.uniform(Math.max(0, 1 - s), 1 + s),
    hue: rng.uniform(-h, h),
  };
}

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const grey = (r: number, g: number, b: number) => 0.2989 * r + 0.587 * g + 0.114 * b;

/** Applies drawn jitter factors to a float image in place (torchvision's functional ops). */
export function applyJitter(image: FloatImage, f: JitterFactors): FloatImage {
  const d = image.data;
  const n = d.length;
  for (const op of f.order) {
    if (op === 0) {
      for (let i = 0; i < n; i++) d[i] = clamp01(d[i]! * f.brightness);
    } else if (op === 1) {
      let mean = 0;
      for (let i = 0; i < n; i += 3) mean += grey(d[i]!, d[i + 1]!, d[i + 2]!);
      mean /= n / 3;
      const k = (1 - f.contrast) * mean;
      for (let i = 0; i < n; i++) d[i] = clamp01(f.contrast * d[i]! + k);
    } else if (op === 2) {
      const s = f.saturation;
      for (let i = 0; i < n; i += 3) {
        const g = (1 - s) * grey(d[i]!, d[i + 1]!, d[i + 2]!);
        d[i] = clamp01(s * d[i]! + g);
        d[i + 1] = clamp01(s * d[i + 1]! + g);
        d[i + 2] = clamp01(s * d[i + 2]! + g);
      }
    } else if (f.hue !== 0) {
      for (let i = 0; i < n; i += 3) shiftHue(d, i, f.hue);
    }
  }
  return image;
}

// torchvision _rgb2hsv / _hsv2rgb on one pixel (no % on doubles: this runs per pixel).
function shiftHue(d: Float32Array, i: number, shift: number): void {
  const r = d[i]!;
  const g = d[i + 1]!;
  const b = d[i + 2]!;
  const maxc = r > g ? (r > b ? r : b) : g > b ? g : b;
  const minc = r < g ? (r < b ? r : b) : g < b ? g : b;
  const cr = maxc - minc;
  if (cr === 0) return; // grey pixels have no hue to rotate
  const s = cr / maxc;
  let h: number;
  if (maxc === r) h = ((maxc - b) - (maxc - g)) / cr;
  else if (maxc === g) h = 2 + ((maxc - r) - (maxc - b)) / cr;
  else h = 4 + ((maxc - g) - (maxc - r)) / cr;
  h = h / 6;
  if (h < 0) h += 1;
  h += shift;
  if (h < 0) h += 1;
  else if (h >= 1) h -= 1;
  const v = maxc;
  const h6 = h * 6;
  let k = Math.floor(h6);
  const fr = h6 - k;
  if (k >= 6) k -= 6;
  const p = clamp01(v * (1 - s));
  const q = clamp01(v * (1 - s * fr));
  const t = clamp01(v * (1 - s * (1 - fr)));
  switch (k) {
    case 0: d[i] = v; d[i + 1] = t; d[i + 2] = p; break;
    case 1: d[i] = q; d[i + 1] = v; d[i + 2] = p; break;
    case 2: d[i] = p; d[i + 1] = v; d[i + 2] = t; break;
    case 3: d[i] = p; d[i + 1] = q; d[i + 2] = v; break;
    case 4: d[i] = t; d[i + 1] = p; d[i + 2] = v; break;
    default: d[i] = v; d[i + 1] = p; d[i + 2] = q;
  }
}

/** torchvision ColorJitter(brightness, contrast, saturation, hue) on float images. */
export function colorJitter(options: ColorJitterOptions = {}): Transform {
  return (image, rng) => {
    const f = sampleJitter(need(rng, options.rng, 'colorJitter'), options);
    const out = asFloat(image);
    // Never modify a caller's uint8 buffer; float inputs are owned by the pipeline.
    return applyJitter(out, f);
  };
}

/** Per-channel (x - mean) / std, in place on float input. */
export function normalize(options: { mean?: readonly number[]; std?: readonly number[] } = {}): Transform {
  const mean = options.mean ?? IMAGENET_MEAN;
  const std = options.std ?? IMAGENET_STD;
  const inv = std.map((s) => 1 / s);
  return (image) => {
    const f = asFloat(image);
    const d = f.data;
    for (let i = 0; i < d.length; i += 3) {
      d[i] = (d[i]! - mean[0]!) * inv[0]!;
      d[i + 1] = (d[i + 1]! - mean[1]!) * inv[1]!;
      d[i + 2] = (d[i + 2]! - mean[2]!) * inv[2]!;
    }
    return f;
  };
}

/** Options of {@link trainTransform}; defaults are the paper's recipe. */
export interface TrainTransformOptions extends ColorJitterOptions {
  /** Output side (default 90). */
  size?: number;
  scale?: readonly [number, number];
  ratio?: readonly [number, number];
  /** Horizontal flip probability (default 0.5). */
  flip?: number;
  mean?: readonly number[];
  std?: readonly number[];
  /** Used when the call passes no rng. */
  rng?: Rng;
}

/** The paper's training augmentation: random resized crop, colour jitter, flip, ImageNet normalisation. */
export function trainTransform(options: TrainTransformOptions = {}): Transform {
  const size = options.size ?? 90;
  const t = compose(
    randomResizedCrop({ size, scale: options.scale, ratio: options.ratio }),
    colorJitter(options),
    randomHorizontalFlip({ p: options.flip ?? 0.5 }),
    normalize(options),
  );
  return (image, rng) => t(image, need(rng, options.rng, 'trainTransform'));
}

/** The paper's evaluation transform: resize to `size x size`, ImageNet normalisation. */
export function evalTransform(options: { size?: number; mean?: readonly number[]; std?: readonly number[] } = {}): Transform {
  return compose(resize({ size: options.size ?? 90 }), normalize(options));
}
