import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import { dfdWasm } from '../wasm-module.js';
import { splitRanges } from '../wasm-pool.js';
import { callStock, dispose, stockKernel, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/**
 * Batch norm with per-channel statistics (what every BN layer does, in training and inference):
 * (x - mean) * (scale / sqrt(variance + eps)) + offset, in one pass of dfd's wasm module over
 * rows split between its threads (C % 4 == 0), else as three broadcast XNNPACK passes with the
 * same roundings. The stock wasm kernel is a scalar loop with a modulo per element: 96 ms for
 * [32,90,90,64] on 2 threads, the three passes 22 ms. The per-channel factor is computed in
 * float64, then rounded once; other broadcast shapes go to the stock kernel.
 */
function fusedBatchNorm(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, mean, variance, offset, scale } = args.inputs as { x: TensorInfo; mean: TensorInfo; variance: TensorInfo; offset?: TensorInfo; scale?: TensorInfo };
  const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
  const C = x.shape[x.shape.length - 1] ?? 1;
  const perChannel = (t: TensorInfo | undefined): boolean => t == null || (t.dtype === 'float32' && [1, C].includes(util.sizeFromShape(t.shape)));
  if (x.dtype !== 'float32' || x.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel)) {
    return stockKernel('FusedBatchNorm')(args);
  }
  // Copied out before any allocation (growing a non-shared wasm memory detaches heap views).
  const read = (t: TensorInfo | undefined, fallback: number): (c: number) => number => {
    if (t == null) return () => fallback;
    const v = Float64Array.from(backend.typedArrayFromHeap(t) as Float32Array);
    return v.length === 1 ? () => v[0] as number : (c) => v[c] as number;
  };
  const m = read(mean, 0);
  const vr = read(variance, 1);
  const g = read(scale, 1);
  const b = read(offset, 0);
  const channel = (f: (c: number) => number): TensorInfo => {
    const t = backend.makeOutput([C], 'float32');
    const v = backend.typedArrayFromHeap(t) as Float32Array;
    for (let c = 0; c < C; c++) v[c] = f(c);
    return t;
  };
  const factor = channel((c) => g(c) / Math.sqrt(vr(c) + varianceEpsilon));
  const shift = channel(b);
  const mod = dfdWasm(backend);
  if (mod != null && C % 4 === 0) {
    // One pass of dfd's wasm module, rows split over its threads.
    const mu = channel(m);
    const y = backend.makeOutput([...x.shape], 'float32');
    const at = mod.address;
    const rows = util.sizeFromShape(x.shape) / C;
    try {
      mod.runRanges('batchNorm', [at(x), at(y), at(mu), at(factor), at(shift), C, 0], splitRanges(rows, Math.max(1, Math.min(rows, mod.threads))));
    } catch (e) {
      dispose(backend, y);
      throw e;
    } finally {
      dispose(backend, mu, factor, shift);
    }
    return y;
  }
  const negMean = channel((c) => -m(c));
  const centred = callStock('Add', backend, { a: x, b: negMean });
  const scaled = callStock('Multiply', backend, { a: centred, b: factor });
  dispose(backend, centred);
  const out = callStock('Add', backend, { a: scaled, b: shift });
  dispose(backend, scaled, negMean, factor, shift);
  return out;
}

export const fusedBatchNormConfig = wasmKernel('FusedBatchNorm', fusedBatchNorm);
