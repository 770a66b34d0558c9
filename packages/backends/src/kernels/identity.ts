import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasmInternals } from '../tfjs-wasm.js';
import { stockKernel, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/**
 * Identity without a copy, as on the CPU backend (the stock wasm kernel copies the whole
 * buffer; tfjs-core calls it for every customGrad output and clone, hundreds of times per
 * training step). Tensors are immutable, so sharing the buffer by reference count is safe.
 */
function identity(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend & Pick<BackendWasmInternals, 'incRef'>;
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return stockKernel('Identity')(args);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

export const identityConfig = wasmKernel('Identity', identity);
