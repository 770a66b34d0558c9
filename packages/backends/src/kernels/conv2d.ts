import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { frozenConv, transientConv, type ConvAttrs } from '../winograd.js';
import { stockKernel, wasmKernel, type KernelArgs } from './kernel-utils.js';

/*
 * Conv2D for wasm: 3x3 stride-1 convolutions by Winograd F(4x4,3x3) / F(6x6,3x3) where that is
 * safe and pays (src/winograd.ts: inference from a frozen filter's second use, training
 * convolutions with a per-call filter transform; switched by the flags DFD_WASM_WINOGRAD and
 * DFD_WASM_WINOGRAD_TRAINING), everything else, and every convolution the gradient kernels run
 * themselves, by the stock XNNPACK convolution.
 */

function conv2D(args: KernelArgs): TensorInfo {
  const { x, filter } = args.inputs as { x: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs;
  const gradientDepth = (tf.engine() as unknown as { state: { gradientDepth: number } }).state.gradientDepth;
  const y = gradientDepth > 0 ? transientConv(stockKernel, args.backend, x, filter, attrs) : frozenConv(stockKernel, args.backend, x, filter, attrs);
  return y ?? stockKernel('Conv2D')(args);
}

export const conv2DConfig = wasmKernel('Conv2D', conv2D);
