import { util, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import { callStock, dispose, stockKernel, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/* Sum and Mean for wasm: one implementation, two kernels. */

/**
 * Sum/Mean over a contiguous run of axes that are not the innermost ones (BN statistics and
 * their gradients reduce [N,H,W] of NHWC; global pooling reduces [H,W]). The stock kernels
 * transpose the reduced axes innermost first (the transpose dominates).
 */
function reduceKernel(name: 'Sum' | 'Mean') {
  return (args: KernelArgs): TensorInfo => {
    const backend = args.backend as WasmBackend;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const shape = x.shape;
    const axes = util.parseAxisParam(axis, shape).sort((a, b) => a - b);
    const first = axes[0] ?? 0;
    const last = axes[axes.length - 1] ?? 0;
    const contiguous = axes.length > 0 && last - first === axes.length - 1;
    const C = util.sizeFromShape(shape.slice(last + 1));
    if (x.dtype !== 'float32' || !contiguous || C < 8) return stockKernel(name)(args);
    const O = util.sizeFromShape(shape.slice(0, first));
    let R = util.sizeFromShape(shape.slice(first, last + 1));
    const outShape = keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    let scale = name === 'Mean' ? 1 / R : 1;
    // Runs of L rows are averaged by XNNPACK's average pooling (threaded, SIMD: 5-6x faster
    // than a JS loop over the whole tensor), each run in float32 over at most 256 values; the
    // run means are then summed in float64 by the JS loop below. (A GEMM with a ones row would
    // make XNNPACK re-pack x, its weight operand, at ~17 ns per element on every call.)
    const L = poolRun(R);
    let partial: TensorInfo | undefined;
    if (L >= 8) {
      const view: TensorInfo = { dataId: x.dataId, shape: [O * (R / L), L, 1, C], dtype: 'float32' };
      partial = callStock('AvgPool', backend, { x: view }, { filterSize: [L, 1], strides: [L, 1], pad: 'valid' } as unknown as NamedAttrMap);
      scale *= L;
      R /= L;
    }
    const src = backend.typedArrayFromHeap(partial ?? x) as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array;
    const acc = new Float64Array(C);
    for (let o = 0; o < O; o++) {
      acc.fill(0);
      let r = 0;
      for (; r + 4 <= R; r += 4) {
        const b0 = (o * R + r) * C;
        const b1 = b0 + C;
        const b2 = b1 + C;
        const b3 = b2 + C;
        for (let c = 0; c < C; c++) {
          acc[c] = (acc[c] as number) + (src[b0 + c] as number) + (src[b1 + c] as number) + (src[b2 + c] as number) + (src[b3 + c] as number);
        }
      }
      for (; r < R; r++) {
        const b0 = (o * R + r) * C;
        for (let c = 0; c < C; c++) acc[c] = (acc[c] as number) + (src[b0 + c] as number);
      }
      for (let c = 0; c < C; c++) dst[o * C + c] = (acc[c] as number) * scale;
    }
    if (partial) dispose(backend, partial);
    return out;
  };
}

/** The largest divisor of `rows` up to 256 (the run length pooled in float32), or 1. */
function poolRun(rows: number): number {
  for (let l = Math.min(256, rows); l > 1; l--) if (rows % l === 0) return l;
  return 1;
}

export const sumConfig = wasmKernel('Sum', reduceKernel('Sum'));
export const meanConfig = wasmKernel('Mean', reduceKernel('Mean'));
