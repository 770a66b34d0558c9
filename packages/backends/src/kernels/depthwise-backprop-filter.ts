import type { TensorInfo } from '@tensorflow/tfjs-core';
import { forEachTap, geometry, type DepthwiseAttrs } from './depthwise-backprop.js';
import { wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/** dW of a depthwise conv: sum over pixels of x * dy, per tap, channel and multiplier. */
function depthwiseBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseAttrs & { filterShape: number[] };
  const info = geometry(x.shape, attrs.filterShape, attrs);
  const C = info.inChannels;
  const M = info.outChannels / C;
  const dw = backend.makeOutput([...attrs.filterShape], 'float32');
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dwv = backend.typedArrayFromHeap(dw) as Float32Array;
  // Summed in float64 per element, then stored: the order of a long float32 sum would drift.
  const acc = new Float64Array(dwv.length);
  forEachTap(info, (dyBase, xBase, wBase) => {
    for (let c = 0; c < C; c++) {
      const xc = xv[xBase + c] as number;
      for (let m = 0; m < M; m++) acc[wBase + c * M + m] = (acc[wBase + c * M + m] as number) + xc * (dyv[dyBase + c * M + m] as number);
    }
  });
  dwv.set(acc);
  return dw;
}

/** Missing from the wasm backend: separable-conv nets (the zoo's face-api backbone) train with it. */
export const depthwiseBackpropFilterConfig = wasmKernel('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter);
