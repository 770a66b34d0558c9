import * as tf from '@tensorflow/tfjs-core';
import { backend_util, type KernelConfig, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';

/*
 * Training kernels for the tfjs wasm backend. tfjs-backend-wasm 4.x has no
 * Conv2DBackpropFilter (conv nets cannot train at all) and its Conv2DBackpropInput and
 * transposed BatchMatMul are naive loops, while its Conv2D and plain BatchMatMul run on
 * XNNPACK. Every kernel here rewrites the gradient as XNNPACK-backed Conv2D / BatchMatMul
 * calls plus cheap layout ops (Transpose, Slice, Reverse), all through the wasm backend's own
 * kernels so tensors never leave wasm memory.
 */

type Backend = { disposeData(dataId: object): boolean };
type KernelFn = (args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: Backend }) => TensorInfo;

const BACKEND = 'wasm';

/** Kernels registered by {@link registerWasmTrainingKernels}, for docs and tests. */
export const WASM_TRAINING_KERNELS = ['Conv2DBackpropFilter'] as const;

/** The wasm backend's own kernels, captured before any of ours replaces one. */
const original = new Map<string, KernelConfig>();

function kernel(name: string): KernelFn {
  const config = original.get(name) ?? tf.getKernel(name, BACKEND);
  if (config == null) throw new Error(`@dfd/backends: the wasm backend has no ${name} kernel (is @tensorflow/tfjs-backend-wasm imported?)`);
  return config.kernelFunc as unknown as KernelFn;
}

function call(name: string, backend: Backend, inputs: NamedTensorInfoMap, attrs: NamedAttrMap = {}): TensorInfo {
  return kernel(name)({ inputs, attrs, backend });
}

function transpose(backend: Backend, x: TensorInfo, perm: number[]): TensorInfo {
  return call('Transpose', backend, { x }, { perm });
}

function dispose(backend: Backend, ...ts: TensorInfo[]): void {
  for (const t of ts) backend.disposeData(t.dataId);
}

/**
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, ci] * dy[n,oh,ow,co] is itself a
 * forward convolution: batch = ci, channels = n, filter = dy laid out [oh,ow,n,co], with
 * dilation = the forward stride, so XNNPACK's conv does the work.
 */
function conv2DBackpropFilter(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (attrs.dataFormat === 'NCHW') throw new Error('@dfd/backends: wasm Conv2DBackpropFilter supports NHWC only');
  const info = backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Rows/cols of the (virtually) padded input the forward conv touched: [-top, needH - top).
  const needH = (filterHeight - 1) + (outHeight - 1) * strideHeight + 1;
  const needW = (filterWidth - 1) + (outWidth - 1) * strideWidth + 1;
  const useH = Math.min(inHeight, needH - top);
  const useW = Math.min(inWidth, needW - left);

  let xs = x;
  if (useH < inHeight || useW < inWidth) {
    xs = call('Slice', backend, { x }, { begin: [0, 0, 0, 0], size: [x.shape[0], useH, useW, x.shape[3]] });
  }
  const xt = transpose(backend, xs, [3, 1, 2, 0]); // [ci, H, W, n]
  if (xs !== x) dispose(backend, xs);
  const dyt = transpose(backend, dy, [1, 2, 0, 3]); // [oh, ow, n, co]
  const pad: backend_util.ExplicitPadding = [
    [0, 0],
    [top, needH - top - useH],
    [left, needW - left - useW],
    [0, 0],
  ];
  const dwT = call('Conv2D', backend, { x: xt, filter: dyt }, {
    strides: [1, 1],
    pad,
    dataFormat: 'NHWC',
    dilations: [strideHeight, strideWidth],
    dimRoundingMode: undefined as unknown as string,
  } as unknown as NamedAttrMap); // [ci, kh, kw, co]
  dispose(backend, xt, dyt);
  const dw = transpose(backend, dwT, [1, 2, 0, 3]);
  dispose(backend, dwT);
  return dw;
}

function configs(): KernelConfig[] {
  return [{ kernelName: 'Conv2DBackpropFilter', backendName: BACKEND, kernelFunc: conv2DBackpropFilter as KernelConfig['kernelFunc'] }];
}

let registered = false;

/**
 * Registers dfd's training kernels on the tfjs `wasm` backend (replacing the slow stock ones),
 * so tf.grad of conv2d / matMul, optimizers and model.fit work and are fast on wasm. Idempotent.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  if (tf.getKernel('Conv2D', BACKEND) == null) {
    throw new Error("@dfd/backends: import '@tensorflow/tfjs-backend-wasm' before registerWasmTrainingKernels() (or call useBackend('wasm'))");
  }
  for (const config of configs()) {
    const existing = tf.getKernel(config.kernelName, BACKEND);
    if (existing != null) {
      original.set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, BACKEND);
      // Keep the stock kernel's wasm bindings alive: our replacement may call it for the cases it does well.
      config.setupFunc = existing.setupFunc;
      config.disposeFunc = existing.disposeFunc;
    }
    tf.registerKernel(config);
  }
  registered = true;
}
