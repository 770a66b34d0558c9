import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import { stockKernel, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/**
 * Tile by block copies: each axis (innermost first) writes its first copy, then replicates it
 * with copyWithin. The stock wasm Tile costs ~0.5 us per output element, and tfjs-core's
 * FusedBatchNorm gradient tiles the per-channel statistics to the full activation shape.
 */
function tile(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x } = args.inputs as { x: TensorInfo };
  const { reps } = args.attrs as unknown as { reps: number[] };
  if (x.dtype === 'string' || x.shape.length === 0) return stockKernel('Tile')(args);
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((s, i) => s * (reps[i] ?? 1));
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const inStrides = [...util.computeStrides(shape), 1];
  const outStrides = [...util.computeStrides(outShape), 1];
  const fill = (d: number, from: number, to: number): void => {
    const n = shape[d] ?? 1;
    const r = reps[d] ?? 1;
    if (d === rank - 1) {
      if (n === 1) dst.fill(src[from] ?? 0, to, to + r);
      else for (let k = 0; k < r; k++) dst.set(src.subarray(from, from + n), to + k * n);
      return;
    }
    const inS = inStrides[d] ?? 1;
    const outS = outStrides[d] ?? 1;
    for (let i = 0; i < n; i++) fill(d + 1, from + i * inS, to + i * outS);
    const block = n * outS;
    for (let k = 1; k < r; k++) dst.copyWithin(to + k * block, to, to + block);
  };
  fill(0, 0, 0);
  return out;
}

export const tileConfig = wasmKernel('Tile', tile);
