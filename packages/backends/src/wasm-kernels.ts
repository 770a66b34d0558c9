import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import type { KernelConfig } from '@tensorflow/tfjs-core';
import { batchMatMulConfig } from './kernels/batch-mat-mul.js';
import { conv2DConfig } from './kernels/conv2d.js';
import { conv2DBackpropFilterConfig } from './kernels/conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './kernels/conv2d-backprop-input.js';
import { depthwiseBackpropFilterConfig } from './kernels/depthwise-backprop-filter.js';
import { depthwiseBackpropInputConfig } from './kernels/depthwise-backprop-input.js';
import { dfdPreluGradConfig, replacePreluGradient, restorePreluGradient } from './kernels/dfd-prelu-grad.js';
import { fusedBatchNormConfig } from './kernels/fused-batch-norm.js';
import { identityConfig } from './kernels/identity.js';
import { BACKEND, forgetStockKernels, keepStockKernel, keptStockKernel } from './kernels/kernel-utils.js';
import { maxPoolGradConfig } from './kernels/max-pool-grad.js';
import { preluConfig } from './kernels/prelu.js';
import { reverseConfig } from './kernels/reverse.js';
import { meanConfig, sumConfig } from './kernels/sum-mean.js';
import { tileConfig } from './kernels/tile.js';
import { checkTfjsWasm } from './tfjs-wasm.js';
import { guardWasmKernels, wasmKernelsGuarded } from './wasm-node.js';
import { clearWinogradCache } from './winograd.js';

/*
 * Training kernels for the tfjs wasm backend, one per file in src/kernels/. tfjs-backend-wasm 4.x
 * has no Conv2DBackpropFilter (conv nets cannot train at all), its Conv2DBackpropInput and
 * transposed BatchMatMul are naive loops, and its MaxPoolGrad is wrong for several stride/padding
 * combinations, while its Conv2D and plain BatchMatMul run on XNNPACK. The conv/matmul gradients
 * are rewritten as XNNPACK Conv2D / BatchMatMul calls plus layout ops; the memory-bound ones
 * (Reverse, Tile, Sum/Mean, MaxPoolGrad) work directly on wasm memory views; dW, the PReLU
 * gradient and batch norm run in dfd's own wasm module (src/wasm-module.ts). Tensors never leave
 * wasm memory; intermediates are freed with backend.disposeData. This file registers them.
 */

/** Kernels registered by {@link registerWasmTrainingKernels}, for docs and tests. */
export const WASM_TRAINING_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMul', 'Reverse', 'MaxPoolGrad', 'Tile', 'Sum', 'Mean', 'FusedBatchNorm', 'Prelu', 'Identity', 'Conv2D', 'DfdPreluGrad', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'] as const;

/** One of {@link WASM_TRAINING_KERNELS}. */
export type WasmTrainingKernel = (typeof WASM_TRAINING_KERNELS)[number];

/** dfd's kernels, in {@link WASM_TRAINING_KERNELS} order. */
const CONFIGS: readonly KernelConfig[] = [
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  batchMatMulConfig,
  reverseConfig,
  maxPoolGradConfig,
  tileConfig,
  sumConfig,
  meanConfig,
  fusedBatchNormConfig,
  preluConfig,
  identityConfig,
  // 3x3 stride-1 convolutions by Winograd (src/winograd.ts); everything else, and every
  // convolution the gradient kernels above run, is the stock XNNPACK one.
  conv2DConfig,
  // PReLU's gradient in one pass (with the Prelu gradient pointing at it while registered).
  dfdPreluGradConfig,
  // Missing from the wasm backend: separable-conv nets (the zoo's face-api backbone) train with these.
  depthwiseBackpropInputConfig,
  depthwiseBackpropFilterConfig,
];

let registered = false;
/** Kernel names currently registered by us. */
const ours = new Set<string>();

/**
 * Registers dfd's training kernels on the tfjs `wasm` backend (replacing the slow stock ones),
 * so tf.grad of conv2d / matMul, optimizers and model.fit work and are fast on wasm. Idempotent.
 * `only` restricts it to some kernels (benchmarks compare against the stock ones). Throws
 * WasmVersionError (E_WASM_VERSION) unless the loaded @tensorflow/tfjs-backend-wasm is the
 * version @dfd/backends is pinned to (src/tfjs-wasm.ts; useBackend('wasm') notes it).
 */
export function registerWasmTrainingKernels(only?: readonly WasmTrainingKernel[]): void {
  if (registered) return;
  if (tf.getKernel('Conv2D', BACKEND) == null) {
    throw new DfdError('E_WASM_KERNEL', "@dfd/backends: import '@tensorflow/tfjs-backend-wasm' before registerWasmTrainingKernels() (or call useBackend('wasm'))");
  }
  checkTfjsWasm();
  for (const base of CONFIGS) {
    if (only != null && !only.includes(base.kernelName as WasmTrainingKernel)) continue;
    const config: KernelConfig = { ...base };
    const existing = tf.getKernel(config.kernelName, BACKEND);
    if (existing != null) {
      keepStockKernel(existing);
      tf.unregisterKernel(config.kernelName, BACKEND);
      // Keep the stock kernel's wasm bindings alive: our replacement may call it for the cases it does well.
      config.setupFunc = existing.setupFunc;
      config.disposeFunc = existing.disposeFunc;
    }
    tf.registerKernel(config);
    ours.add(config.kernelName);
  }
  if (ours.has('DfdPreluGrad')) replacePreluGradient();
  registered = true;
  if (wasmKernelsGuarded()) guardWasmKernels();
}

/** Puts the stock wasm kernels back (for before/after benchmarks); registerWasmTrainingKernels() re-applies ours. */
export function unregisterWasmTrainingKernels(): void {
  if (!registered) return;
  for (const name of ours) {
    if (tf.getKernel(name, BACKEND) != null) tf.unregisterKernel(name, BACKEND);
    const stock = keptStockKernel(name);
    if (stock != null) tf.registerKernel(stock);
  }
  forgetStockKernels();
  ours.clear();
  restorePreluGradient();
  clearWinogradCache();
  registered = false;
  if (wasmKernelsGuarded()) guardWasmKernels();
}
