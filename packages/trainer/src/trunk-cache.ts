import * as tf from '@tensorflow/tfjs-core';

/** How cached trunk features are stored. */
export type TrunkCachePrecision = 'float32' | 'float16';

/** Options of {@link TrunkCache}. */
export interface TrunkCacheOptions {
  /** `float32` (default: exact) or `float16` (half the memory; rounding error, see docs/training.md). */
  precision?: TrunkCachePrecision;
  /**
   * Views kept per sample id (default 2: the image and its mirror). A further view of an id is
   * computed and used, never stored, so an augmentation with endless views costs memory only for
   * the first ones and stays exact.
   */
  maxViewsPerSample?: number;
  /**
   * Most bytes of features held (default 2 GiB): once full, further views are computed, used and
   * not stored (exact; those samples run the trunk every epoch). FER+ att at 112 px: 92 KiB a view.
   */
  maxBytes?: number;
}

/** Default {@link TrunkCacheOptions.maxBytes}: 2 GiB. */
export const TRUNK_CACHE_MAX_BYTES = 2 * 1024 ** 3;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half of a float32, round to nearest even (overflow to infinity, NaN kept). */
export function toHalf(v: number): number {
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let m = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (m >>> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** The float value of an IEEE half. */
export function fromHalf(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * A 64-bit content hash (two 32-bit FNV-1a streams over the float words) of one sample's image:
 * the view key, so a mirrored (or otherwise changed) image is never served another view's features.
 */
export function viewHash(data: Float32Array, start: number, length: number): string {
  const words = new Uint32Array(data.buffer, data.byteOffset + start * 4, length);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ length;
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    a = Math.imul(a ^ w, 0x01000193);
    b = Math.imul(b ^ ((w >>> 16) | (w << 16)), 0x85ebca6b) ^ (b >>> 13);
  }
  return `${(a >>> 0).toString(16)}${(b >>> 0).toString(16)}`;
}

type Stored = Float32Array | Uint16Array;

/**
 * Memory-backed cache of a frozen trunk's per-sample features (see `DfdNet.trunkFeatures`), keyed
 * by sample id and a hash of the sample's image (the view). {@link features} returns, for a batch,
 * the same tensors the trunk would compute, computing only the views not seen before.
 */
export class TrunkCache {
  private readonly entries = new Map<string, Map<string, Stored[]>>();
  private shapes: number[][] | null = null;
  private readonly precision: TrunkCachePrecision;
  private readonly maxViews: number;
  private readonly maxBytes: number;
  /** Views computed but not stored because the cache was full ({@link TrunkCacheOptions.maxBytes}). */
  overBudget = 0;
  /** Samples served from the cache / computed by the trunk (for tests and the bench). */
  hits = 0;
  misses = 0;
  /** Values held (all features of all views). */
  values = 0;

  constructor(options: TrunkCacheOptions = {}) {
    this.precision = options.precision ?? 'float32';
    this.maxViews = options.maxViewsPerSample ?? 2;
    this.maxBytes = options.maxBytes ?? TRUNK_CACHE_MAX_BYTES;
  }

  /** Bytes the stored features take. */
  get bytes(): number {
    return this.values * (this.precision === 'float16' ? 2 : 4);
  }

  /** Views stored. */
  get size(): number {
    let n = 0;
    for (const v of this.entries.values()) n += v.size;
    return n;
  }

  /**
   * The trunk features of `images` (one row per id, in order). `compute` runs the frozen trunk on a
   * sub-batch and returns its feature tensors (each [n, ...]); it is called once, with the views
   * not in the cache, or not at all.
   */
  features(images: tf.Tensor4D, ids: readonly string[], compute: (x: tf.Tensor4D) => tf.Tensor[]): tf.Tensor[] {
    const n = ids.length;
    const per = images.size / n;
    const pixels = images.dataSync() as Float32Array;
    const keys = ids.map((_, i) => viewHash(pixels, i * per, per));
    const found: Array<Stored[] | undefined> = ids.map((id, i) => this.entries.get(id)?.get(keys[i]!));
    const missing = found.map((f, i) => (f ? -1 : i)).filter((i) => i >= 0);
    if (missing.length) {
      const computed = tf.tidy(() => compute(missing.length === n ? images : (tf.gather(images, missing) as tf.Tensor4D)));
      this.shapes ??= computed.map((t) => t.shape.slice(1));
      const data = computed.map((t) => t.dataSync() as Float32Array);
      tf.dispose(computed);
      missing.forEach((i, r) => {
        const rows = data.map((d) => {
          const len = d.length / missing.length;
          return d.slice(r * len, (r + 1) * len);
        });
        // The stored form when stored (float16 rounds the first epoch's use too), else as computed.
        found[i] = this.store(ids[i]!, keys[i]!, rows);
      });
    }
    this.hits += n - missing.length;
    this.misses += missing.length;
    const shapes = this.shapes!;
    return shapes.map((shape, k) => {
      const len = shape.reduce((a, b) => a * b, 1);
      const out = new Float32Array(n * len);
      for (let i = 0; i < n; i++) {
        const row = found[i]![k]!;
        if (row instanceof Float32Array) out.set(row, i * len);
        else for (let j = 0; j < len; j++) out[i * len + j] = fromHalf(row[j]!);
      }
      return tf.tensor(out, [n, ...shape]);
    });
  }

  /** Stores a view unless its id has its views already; returns the rows in the form to use. */
  private store(id: string, key: string, rows: Float32Array[]): Stored[] {
    let views = this.entries.get(id);
    if (!views) this.entries.set(id, (views = new Map()));
    const known = views.get(key); // the same view twice in one batch (sampling with replacement)
    if (known) return known;
    const stored = this.precision === 'float16' ? rows.map((r) => Uint16Array.from(r, toHalf)) : rows;
    if (views.size >= this.maxViews) return stored;
    const bytes = stored.reduce((n, r) => n + r.byteLength, 0);
    if (this.bytes + bytes > this.maxBytes) {
      this.overBudget++;
      return stored;
    }
    views.set(key, stored);
    for (const r of stored) this.values += r.length;
    return stored;
  }
}
