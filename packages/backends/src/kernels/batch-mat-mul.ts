import type { TensorInfo } from '@tensorflow/tfjs-core';
import { dispose, stockKernel, transpose, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/** XNNPACK only does the plain product fast, so transposed operands are materialised first. */
function batchMatMul(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const stock = stockKernel('BatchMatMul');
  if (!transposeA && !transposeB) return stock(args);
  const swapLast = (t: TensorInfo): TensorInfo => {
    const r = t.shape.length;
    const perm = [...Array(r).keys()];
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return transpose(backend, t, perm);
  };
  const at = transposeA ? swapLast(a) : a;
  const bt = transposeB ? swapLast(b) : b;
  const out = stock({ inputs: { a: at, b: bt }, attrs: { transposeA: false, transposeB: false }, backend });
  if (at !== a) dispose(backend, at);
  if (bt !== b) dispose(backend, bt);
  return out;
}

export const batchMatMulConfig = wasmKernel('BatchMatMul', batchMatMul);
