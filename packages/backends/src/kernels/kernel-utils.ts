import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import type { KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasmInternals } from '../tfjs-wasm.js';

/*
 * What every dfd wasm kernel (one per file in this folder) shares: the slice of tfjs-backend-wasm's
 * BackendWasm they use (pinned: src/tfjs-wasm.ts), and the stock wasm kernels they fall back to or
 * build on, captured before any of dfd's replaces one (src/wasm-kernels.ts registers them).
 */

/** The tfjs backend these kernels are registered for. */
export const BACKEND = 'wasm';

/** The part of tfjs-backend-wasm's BackendWasm the kernels use (all of it: src/tfjs-wasm.ts). */
export type WasmBackend = Pick<BackendWasmInternals, 'disposeData' | 'makeOutput' | 'typedArrayFromHeap'>;

/** A kernel's arguments, as tfjs-core passes them. */
export type KernelArgs = { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown };

/** A kernel function (the stock ones take the same arguments). */
export type KernelFn = (args: KernelArgs) => TensorInfo;

/** The wasm backend's own kernels, captured before any of dfd's replaces one. */
const original = new Map<string, KernelConfig>();

/** Remembers the stock kernel `config` that dfd's kernel of the same name replaces. */
export function keepStockKernel(config: KernelConfig): void {
  original.set(config.kernelName, config);
}

/** The stock kernel that dfd's `name` replaced, if it replaced one. */
export function keptStockKernel(name: string): KernelConfig | undefined {
  return original.get(name);
}

/** Forgets every kept stock kernel (dfd's kernels were unregistered). */
export function forgetStockKernels(): void {
  original.clear();
}

/** The wasm backend's own `name` kernel (the stock one even where dfd's replaced it). */
export function stockKernel(name: string): KernelFn {
  const config = original.get(name) ?? tf.getKernel(name, BACKEND);
  if (config == null) {
    throw new DfdError('E_WASM_KERNEL', `@dfd/backends: the wasm backend has no ${name} kernel; import '@tensorflow/tfjs-backend-wasm' (or call useBackend('wasm')) first`);
  }
  return config.kernelFunc as unknown as KernelFn;
}

/** Runs the stock `name` kernel. */
export function callStock(name: string, backend: WasmBackend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  return stockKernel(name)({ inputs, attrs, backend });
}

/** The stock Transpose. */
export function transpose(backend: WasmBackend, x: TensorInfo, perm: number[]): TensorInfo {
  return callStock('Transpose', backend, { x }, { perm });
}

/** Frees intermediates. */
export function dispose(backend: WasmBackend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/** A kernel config for the wasm backend (tfjs's own kernels are declared the same way). */
export function wasmKernel(kernelName: string, kernelFunc: unknown): KernelConfig {
  return { kernelName, backendName: BACKEND, kernelFunc: kernelFunc as KernelConfig['kernelFunc'] };
}
