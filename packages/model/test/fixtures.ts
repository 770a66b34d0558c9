// Reads the PyTorch parity fixtures written by tools/pytorch/make_fixtures.py (JSON + .bin).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { Module } from '@dfd/backbone';

export const FIXTURE_DIR = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export interface RawTensor {
  shape: number[];
  data: Float32Array;
}

export interface Fixture {
  meta: Record<string, any>;
  weights: Map<string, RawTensor>;
  inputs: Map<string, RawTensor>;
  expected: Map<string, RawTensor>;
}

/** IEEE half -> float (exact). */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

export function decodeHalf(bytes: Uint8Array): Float32Array {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(bytes.byteLength / 2);
  for (let i = 0; i < out.length; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
  return out;
}

export function loadFixture(name: string): Fixture {
  const meta = JSON.parse(readFileSync(join(FIXTURE_DIR, `${name}.json`), 'utf8')) as Record<string, any>;
  const bin = readFileSync(join(FIXTURE_DIR, meta.bin as string));
  const group = (g: string): Map<string, RawTensor> => {
    const m = new Map<string, RawTensor>();
    for (const [k, e] of Object.entries((meta[g] ?? {}) as Record<string, { dtype: string; shape: number[]; offset: number }>)) {
      const n = e.shape.reduce((a, b) => a * b, 1);
      let data: Float32Array;
      if (e.dtype === 'float16') data = decodeHalf(bin.subarray(e.offset, e.offset + 2 * n));
      else data = new Float32Array(bin.buffer.slice(bin.byteOffset + e.offset, bin.byteOffset + e.offset + 4 * n));
      m.set(k, { shape: e.shape, data });
    }
    return m;
  };
  return { meta, weights: group('weights'), inputs: group('inputs'), expected: group('expected') };
}

/** The API.md conversion rule: 4-D OIHW -> HWIO, 2-D [out, in] -> [in, out], others as is. */
export function torchToTf(t: RawTensor): tf.Tensor {
  return tf.tidy(() => {
    const x = tf.tensor(t.data, t.shape, 'float32');
    if (t.shape.length === 4) return tf.transpose(x, [2, 3, 1, 0]);
    if (t.shape.length === 2) return tf.transpose(x);
    return x;
  });
}

/** Loads PyTorch-layout weights into a model; the name sets must be identical (checks naming). */
export function loadInto(model: Module, weights: Map<string, RawTensor>): void {
  const state = new Map(model.namedState());
  const missing = [...state.keys()].filter((k) => !weights.has(k));
  const extra = [...weights.keys()].filter((k) => !state.has(k));
  if (missing.length || extra.length) throw new Error(`name mismatch: missing ${missing.join(',')} extra ${extra.join(',')}`);
  for (const [k, v] of state) {
    const t = torchToTf(weights.get(k)!);
    if (t.shape.join(',') !== v.shape.join(',')) throw new Error(`${k}: shape ${t.shape} vs ${v.shape}`);
    v.assign(t);
    t.dispose();
  }
}

export function input(f: Fixture, name: string): tf.Tensor4D {
  const t = f.inputs.get(name)!;
  return tf.tensor4d(t.data, t.shape as [number, number, number, number]);
}

/** Max |a - b| between a tensor and a fixture entry (shapes must agree). */
export function maxAbsDiff(actual: tf.Tensor, expected: RawTensor | undefined): number {
  if (!expected) throw new Error('missing expected tensor');
  if (actual.shape.join(',') !== expected.shape.join(',')) throw new Error(`shape [${actual.shape}] vs expected [${expected.shape}]`);
  const a = actual.dataSync();
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - expected.data[i]!));
  return m;
}
