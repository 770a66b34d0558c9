import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import { dispose, stockKernel, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/**
 * The stock wasm Prelu is fast (XNNPACK) only when alpha has shape [channels]; a single shared
 * alpha (PyTorch's nn.PReLU() default, what DFD-Net uses) costs 4x more and [1,1,1,C] 13x.
 * Both are handed to it as a [channels] vector.
 */
function prelu(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, alpha } = args.inputs as { x: TensorInfo; alpha: TensorInfo };
  const stock = stockKernel('Prelu');
  const C = x.shape[x.shape.length - 1] ?? 1;
  const n = util.sizeFromShape(alpha.shape);
  if (x.dtype !== 'float32' || alpha.dtype !== 'float32' || x.shape.length < 2 || (alpha.shape.length === 1 && n === C)) return stock(args);
  if (n === C && alpha.shape.slice(0, -1).every((d) => d === 1)) {
    return stock({ inputs: { x, alpha: { dataId: alpha.dataId, shape: [C], dtype: 'float32' } }, attrs: {}, backend });
  }
  if (n !== 1) return stock(args);
  const a = backend.makeOutput([C], 'float32');
  (backend.typedArrayFromHeap(a) as Float32Array).fill((backend.typedArrayFromHeap(alpha) as Float32Array)[0] as number);
  const out = stock({ inputs: { x, alpha: a }, attrs: {}, backend });
  dispose(backend, a);
  return out;
}

export const preluConfig = wasmKernel('Prelu', prelu);
