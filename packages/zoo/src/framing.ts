import { z } from 'zod';
import { DfdError } from '@dfd/core';
import type { FaceBox, ZooImage } from './detector.js';
import type { Landmarks68 } from './landmarks.js';

/**
 * How a face image is framed before a model sees it: one description for a whole run (source,
 * targets, stage 1, eval, predict, the exported web app). Browser-safe (no node: imports): the
 * geometry here is what the web app runs too.
 *
 * - `resize`: the whole image, resized to the model's input (dfd's behaviour before framing existed).
 * - `centre-crop`: the centred square of side `scale` x the image's shorter side.
 * - `align`: detect the face, find its 68 landmarks, and warp the image by the least-squares
 *   similarity that maps the two eye centres and the mouth centre onto a canonical template, at
 *   `size` x `size` (the way aligned FER sets are made).
 */

/** A framing could not be applied or described (bad options, empty image). */
export class FramingError extends DfdError {
  constructor(message: string) {
    super('E_FRAMING', message);
  }
}

/**
 * Canonical template of `align`, as fractions of the output side: left eye centre, right eye
 * centre, mouth centre (the mean of the ArcFace 112x112 five-point template's eyes and mouth
 * corners, made left-right symmetric).
 */
export const ALIGN_TEMPLATE: { leftEye: readonly [number, number]; rightEye: readonly [number, number]; mouth: readonly [number, number] } = {
  leftEye: [0.3427, 0.4607],
  rightEye: [0.6573, 0.4607],
  mouth: [0.5, 0.824],
};

export const framingSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('resize') }).strict(),
  z
    .object({
      kind: z.literal('centre-crop'),
      /** Side of the square as a fraction of the image's shorter side (default 1). */
      scale: z.number().gt(0).max(1).default(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('align'),
      /** Output side in pixels (default 112). */
      size: z.number().int().min(16).max(1024).default(112),
      /** Detector input size (default 416). */
      detectSize: z.number().int().min(32).max(4096).default(416).refine((n) => n % 32 === 0, 'must be a multiple of 32'),
      /** Detector score threshold (default 0.5). */
      threshold: z.number().gt(0).lt(1).default(0.5),
      /** Images whose shorter side is below this are upscaled to it before a second detection (default 160). */
      upscale: z.number().int().min(0).max(2048).default(160),
    })
    .strict(),
]);

/** A validated framing (every default filled in). JSON-serialisable. */
export type Framing = z.output<typeof framingSchema>;
/** A framing as written in a config or model.json. */
export type FramingInput = z.input<typeof framingSchema>;

/** The default framing: resize the whole image (dfd's behaviour before framing existed). */
export const DEFAULT_FRAMING: Framing = { kind: 'resize' };

/** Validates a framing (config section, model.json field); `where` names the field in the error. */
export function parseFraming(input: unknown, where = 'framing'): Framing {
  const r = framingSchema.safeParse(input ?? DEFAULT_FRAMING);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`);
  throw new FramingError(`invalid framing ${JSON.stringify(input)}: ${lines.join('; ')} (kinds: resize, centre-crop {scale}, align {size, detectSize, threshold, upscale}).`);
}

/** The framing a `--framing KIND` flag names, with that kind's defaults. */
export function framingFromKind(kind: string): Framing {
  if (kind !== 'resize' && kind !== 'centre-crop' && kind !== 'align') throw new FramingError(`--framing '${kind}': expected resize, centre-crop or align.`);
  return parseFraming({ kind }, '--framing');
}

/** A 2-D similarity x' = a x - b y + tx, y' = b x + a y + ty (scale sqrt(a^2 + b^2), angle atan2(b, a)). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

/**
 * Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping `from`
 * onto `to` (Umeyama's closed form for 2-D): minimises sum |S(from_i) - to_i|^2.
 */
export function fitSimilarity(from: ReadonlyArray<readonly [number, number]>, to: ReadonlyArray<readonly [number, number]>): Similarity {
  if (from.length !== to.length || from.length < 2) throw new FramingError(`fitSimilarity needs two equal lists of at least 2 points, got ${from.length} and ${to.length}.`);
  const n = from.length;
  let mx = 0, my = 0, ux = 0, uy = 0;
  for (let i = 0; i < n; i++) {
    mx += from[i]![0]; my += from[i]![1];
    ux += to[i]![0]; uy += to[i]![1];
  }
  mx /= n; my /= n; ux /= n; uy /= n;
  let dot = 0, cross = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const px = from[i]![0] - mx, py = from[i]![1] - my;
    const qx = to[i]![0] - ux, qy = to[i]![1] - uy;
    dot += px * qx + py * qy;
    cross += px * qy - py * qx;
    norm += px * px + py * py;
  }
  if (!(norm > 0)) throw new FramingError('fitSimilarity: the source points all coincide; no similarity is defined.');
  const a = dot / norm;
  const b = cross / norm;
  return { a, b, tx: ux - (a * mx - b * my), ty: uy - (b * mx + a * my) };
}

/** Applies a similarity to a point. */
export function applySimilarity(s: Similarity, p: readonly [number, number]): [number, number] {
  return [s.a * p[0] - s.b * p[1] + s.tx, s.b * p[0] + s.a * p[1] + s.ty];
}

/** The inverse similarity. */
export function invertSimilarity(s: Similarity): Similarity {
  const d = s.a * s.a + s.b * s.b;
  if (!(d > 0)) throw new FramingError('invertSimilarity: a zero-scale similarity has no inverse.');
  const a = s.a / d;
  const b = -s.b / d;
  return { a, b, tx: -(a * s.tx - b * s.ty), ty: -(b * s.tx + a * s.ty) };
}

function checkImage(image: ZooImage): void {
  if (!(image.width >= 1 && image.height >= 1) || image.data.length !== image.width * image.height * 3) {
    throw new FramingError(`image ${image.width}x${image.height} with ${image.data.length} bytes: expected width * height * 3 RGB bytes.`);
  }
}

/**
 * Warps `image` into a `width x height` RGB image: output pixel centre p (image coordinates with
 * pixel centres at +0.5) samples the source at `toSource(p)`, bilinearly; points outside the image
 * repeat its border.
 */
export function warpSimilarity(image: ZooImage, toSource: Similarity, width: number, height = width): ZooImage {
  checkImage(image);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) throw new FramingError(`warp size ${width}x${height}: must be positive integers.`);
  const { width: W, height: H, data } = image;
  const out = new Uint8Array(width * height * 3);
  const { a, b, tx, ty } = toSource;
  for (let j = 0; j < height; j++) {
    const v = j + 0.5;
    for (let i = 0; i < width; i++) {
      const u = i + 0.5;
      const sx = Math.min(W - 1, Math.max(0, a * u - b * v + tx - 0.5));
      const sy = Math.min(H - 1, Math.max(0, b * u + a * v + ty - 0.5));
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = Math.min(W - 1, x0 + 1);
      const y1 = Math.min(H - 1, y0 + 1);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (j * width + i) * 3;
      for (let c = 0; c < 3; c++) {
        const top = data[(y0 * W + x0) * 3 + c]! * (1 - fx) + data[(y0 * W + x1) * 3 + c]! * fx;
        const bottom = data[(y1 * W + x0) * 3 + c]! * (1 - fx) + data[(y1 * W + x1) * 3 + c]! * fx;
        out[o + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width, height, data: out };
}

/** The centred square of side `scale` x the shorter side, at its own (rounded) size: exact pixel copy when it falls on whole pixels. */
export function centreCrop(image: ZooImage, scale = 1): ZooImage {
  checkImage(image);
  if (!(scale > 0 && scale <= 1)) throw new FramingError(`centre-crop scale ${scale}: must be in (0, 1].`);
  const side = Math.max(1, Math.round(Math.min(image.width, image.height) * scale));
  const x0 = Math.floor((image.width - side) / 2);
  const y0 = Math.floor((image.height - side) / 2);
  const out = new Uint8Array(side * side * 3);
  for (let y = 0; y < side; y++) out.set(image.data.subarray(((y0 + y) * image.width + x0) * 3, ((y0 + y) * image.width + x0 + side) * 3), y * side * 3);
  return { width: side, height: side, data: out };
}

/** The three points `align` maps: eye centres (points 36-41, 42-47) and mouth centre (48-67). */
export function alignPoints(points: Landmarks68): [[number, number], [number, number], [number, number]] {
  if (points.length !== 68) throw new FramingError(`alignPoints needs 68 landmarks, got ${points.length}.`);
  const mean = (from: number, to: number): [number, number] => {
    let x = 0;
    let y = 0;
    for (let i = from; i < to; i++) {
      x += points[i]![0];
      y += points[i]![1];
    }
    return [x / (to - from), y / (to - from)];
  };
  return [mean(36, 42), mean(42, 48), mean(48, 68)];
}

/** The similarity (image -> aligned output of side `size`) of a face's three points, and the warped face. */
export function alignFace(image: ZooImage, points: Landmarks68, size: number): { face: ZooImage; transform: Similarity } {
  const from = alignPoints(points);
  const t = ALIGN_TEMPLATE;
  const to: Array<[number, number]> = [t.leftEye, t.rightEye, t.mouth].map(([x, y]) => [x * size, y * size]);
  const transform = fitSimilarity(from, to);
  return { face: warpSimilarity(image, invertSimilarity(transform), size), transform };
}

/** How `align` found the face of one image. */
export type AlignCase = 'detected' | 'upscaled' | 'whole-image';

/** What {@link frameImage} needs for `align`: the zoo detector and landmark net (or anything shaped like them). */
export interface FramingNets {
  detector: { detect(image: ZooImage, options: { inputSize: number; scoreThreshold: number }): Promise<FaceBox[]> };
  landmarker: { landmarks(image: ZooImage, box: { x: number; y: number; width: number; height: number }): Promise<Landmarks68> };
}

/** Bilinear resize of a whole image by an integer-free factor (through {@link warpSimilarity}). */
export function scaleImage(image: ZooImage, width: number, height: number): ZooImage {
  return warpSimilarity(image, { a: image.width / width, b: 0, tx: 0, ty: 0 }, width, height);
}

/**
 * Frames one image. `resize` returns the image itself (the loader resizes it to the model's
 * input); `centre-crop` and `align` return new pixels. For `align`, an image without a detected
 * face is upscaled (shorter side to `upscale`) and detected again; if there is still none, the
 * whole image is taken as the face box and the landmarks found within it. `case` says which.
 */
export async function frameImage(image: ZooImage, framing: Framing, nets?: FramingNets): Promise<{ image: ZooImage; case?: AlignCase }> {
  checkImage(image);
  switch (framing.kind) {
    case 'resize':
      return { image };
    case 'centre-crop':
      return { image: centreCrop(image, framing.scale) };
    case 'align': {
      if (!nets) throw new FramingError("framing 'align' needs the zoo face detector and landmark net (install @vladmandic/face-api; dfd models list).");
      const opts = { inputSize: framing.detectSize, scoreThreshold: framing.threshold };
      let [box] = await nets.detector.detect(image, opts);
      let found: AlignCase = 'detected';
      const short = Math.min(image.width, image.height);
      if (!box && short < framing.upscale) {
        const k = framing.upscale / short;
        const big = scaleImage(image, Math.round(image.width * k), Math.round(image.height * k));
        const [b] = await nets.detector.detect(big, opts);
        if (b) {
          const kx = image.width / big.width;
          const ky = image.height / big.height;
          box = { x: b.x * kx, y: b.y * ky, width: b.width * kx, height: b.height * ky, score: b.score };
          found = 'upscaled';
        }
      }
      if (!box) {
        box = { x: 0, y: 0, width: image.width, height: image.height, score: 0 };
        found = 'whole-image';
      }
      const points = await nets.landmarker.landmarks(image, box);
      return { image: alignFace(image, points, framing.size).face, case: found };
    }
  }
}

/** A one-line description of a framing (reports, warnings). */
export function describeFraming(framing: Framing): string {
  switch (framing.kind) {
    case 'resize':
      return 'resize (whole image)';
    case 'centre-crop':
      return `centre-crop (scale ${framing.scale})`;
    case 'align':
      return `align (${framing.size}px, eyes and mouth to the canonical template; detect-size ${framing.detectSize}, threshold ${framing.threshold}, upscale below ${framing.upscale}px)`;
  }
}
