import type { TensorInfo } from '@tensorflow/tfjs-core';
import { forEachTap, geometry, type DepthwiseAttrs } from './depthwise-backprop.js';
import { wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/** dx of a depthwise conv: scatter dy * filter back onto the input pixels. */
function depthwiseBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as DepthwiseAttrs & { inputShape: number[] };
  const info = geometry(attrs.inputShape, filter.shape, attrs);
  const C = info.inChannels;
  const M = info.outChannels / C;
  const dx = backend.makeOutput([...attrs.inputShape], 'float32');
  // Views after makeOutput: an allocation may grow (and detach) the wasm heap.
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const wv = backend.typedArrayFromHeap(filter) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);
  forEachTap(info, (dyBase, xBase, wBase) => {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += (dyv[dyBase + c * M + m] as number) * (wv[wBase + c * M + m] as number);
      dxv[xBase + c] = (dxv[xBase + c] as number) + s;
    }
  });
  return dx;
}

/** Missing from the wasm backend: separable-conv nets (the zoo's face-api backbone) train with it. */
export const depthwiseBackpropInputConfig = wasmKernel('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput);
