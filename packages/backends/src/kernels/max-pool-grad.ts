import { backend_util, type TensorInfo } from '@tensorflow/tfjs-core';
import { wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/**
 * The stock wasm MaxPoolGrad routes dy to the wrong inputs for several stride/padding
 * combinations (e.g. 3x3 stride 2 'same', 2x2 stride 1 'valid'), silently corrupting gradients.
 * This one recomputes each window's first maximum (the CPU backend's tie rule) over wasm
 * memory, channels innermost so every loop reads contiguously.
 */
function maxPoolGrad(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info;
  const kh = info.effectiveFilterHeight;
  const kw = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dx = backend.makeOutput([...input.shape], 'float32');
  // Monomorphic Float32Array views keep the inner loop fast (a union type deoptimises it).
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        best.fill(-Infinity);
        at.fill(-1);
        for (let i = Math.max(0, y0); i < Math.min(inHeight, y0 + kh); i++) {
          for (let j = Math.max(0, x0); j < Math.min(inWidth, x0 + kw); j++) {
            const base = ((n * inHeight + i) * inWidth + j) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c] as number;
              if (v > (best[c] as number) || at[c] === -1) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const o = ((n * outHeight + oy) * outWidth + ox) * C;
        for (let c = 0; c < C; c++) {
          const idx = at[c] as number;
          if (idx >= 0) dxv[idx] = (dxv[idx] as number) + (dyv[o + c] as number);
        }
      }
    }
  }
  return dx;
}

export const maxPoolGradConfig = wasmKernel('MaxPoolGrad', maxPoolGrad);
