import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { util, type TensorInfo } from '@tensorflow/tfjs-core';
import { dfdWasm } from '../wasm-module.js';
import { splitRanges } from '../wasm-pool.js';
import { BACKEND, dispose, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/*
 * DfdPreluGrad, a kernel of dfd's own (PReLU's two gradients in one pass of dfd's wasm module),
 * and the Prelu gradient that calls it on wasm while dfd's kernels are registered.
 */

/** Image-row partial sums of alpha's gradient: fixed, so that 1 and N threads agree bit for bit. */
const PRELU_PARTS = 4;

/**
 * Channels per row when dfd's PReLU-gradient pass can take x and alpha (float32 alpha of one
 * value, with x's size a multiple of 4: rows of 4; or alpha [..., C] of size C = x's last
 * dimension, C % 4 == 0), else 0.
 */
function preluRow(xShape: readonly number[], alphaShape: readonly number[]): number {
  const size = util.sizeFromShape(xShape as number[]);
  const n = util.sizeFromShape(alphaShape as number[]);
  if (n === 1) return size % 4 === 0 && size > 0 ? 4 : 0;
  const c = xShape[xShape.length - 1] ?? 0;
  return n === c && c % 4 === 0 && alphaShape[alphaShape.length - 1] === c && alphaShape.length <= xShape.length ? c : 0;
}

/**
 * `DfdPreluGrad` (wasm): PReLU's two gradients in one pass of dfd's wasm module
 * (tools/wasm/winograd.ts `preluGrad`): dx = x > 0 ? dy : alpha · dy, and dalpha summed in
 * float64 over 4 fixed row ranges (on the transform threads), added in order. Outputs [dx, dalpha].
 */
function preluGrad(args: KernelArgs): TensorInfo[] {
  const backend = args.backend as WasmBackend;
  const { dy, x, alpha } = args.inputs as { dy: TensorInfo; x: TensorInfo; alpha: TensorInfo };
  const mod = dfdWasm(backend);
  const c = preluRow(x.shape, alpha.shape);
  if (mod == null || c === 0 || !util.arraysEqual(dy.shape, x.shape) || [dy, x, alpha].some((t) => t.dtype !== 'float32')) {
    throw new DfdError('E_WASM_KERNEL', `@dfd/backends: DfdPreluGrad cannot take x ${JSON.stringify(x.shape)}, alpha ${JSON.stringify(alpha.shape)} (float32, alpha of 1 value or of x's last dimension, a multiple of 4); use tfjs-core's Prelu gradient`);
  }
  const rows = util.sizeFromShape(x.shape) / c;
  const shared = util.sizeFromShape(alpha.shape) === 1;
  const parts = Math.max(1, Math.min(rows, PRELU_PARTS));
  const a = backend.makeOutput([c], 'float32');
  const acc = backend.makeOutput([parts * c * 2], 'float32'); // parts x C float64s
  const dx = backend.makeOutput(x.shape, 'float32');
  const da = backend.makeOutput([...alpha.shape], 'float32');
  // Views after every allocation: growing a non-shared wasm memory detaches earlier ones.
  const alphaV = backend.typedArrayFromHeap(alpha) as Float32Array;
  const av = backend.typedArrayFromHeap(a) as Float32Array;
  if (shared) av.fill(alphaV[0] as number);
  else av.set(alphaV);
  const at = mod.address;
  try {
    mod.runRanges('preluGrad', [at(x), at(dy), at(dx), at(a), at(acc), c, 0], splitRanges(rows, parts));
  } catch (e) {
    dispose(backend, dx, da, a, acc);
    throw e;
  }
  const heap = backend.typedArrayFromHeap(acc) as Float32Array;
  const sums = new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  const perChannel = new Float64Array(c);
  for (let p = 0; p < parts; p++) for (let j = 0; j < c; j++) perChannel[j] = (perChannel[j] as number) + sums.getFloat64(8 * (p * c + j), true);
  const dav = backend.typedArrayFromHeap(da) as Float32Array;
  if (shared) dav[0] = perChannel.reduce((s, v) => s + v, 0);
  else dav.set(perChannel);
  dispose(backend, a, acc);
  return [dx, da];
}

/** tfjs-core's Prelu gradient, replaced while dfd's kernels are registered. */
let stockPreluGradient: tf.GradConfig | undefined;

/**
 * The Prelu gradient while dfd's kernels are registered: `DfdPreluGrad` on the wasm backend where
 * it applies, tfjs-core's gradient everywhere else (other backends, other shapes and dtypes).
 */
function preluGradient(stock: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: 'Prelu',
    inputsToSave: ['x', 'alpha'],
    gradFunc: (dy, saved, attrs) => {
      const [x, alpha] = saved as [tf.Tensor, tf.Tensor];
      const single = dy instanceof tf.Tensor ? dy : undefined;
      if (
        single != null &&
        tf.getBackend() === BACKEND &&
        tf.getKernel('DfdPreluGrad', BACKEND) != null &&
        dfdWasm(tf.backend()) != null &&
        [single, x, alpha].every((t) => t.dtype === 'float32') &&
        util.arraysEqual(single.shape, x.shape) &&
        preluRow(x.shape, alpha.shape) > 0
      ) {
        const [dx, da] = tf.engine().runKernel('DfdPreluGrad', { dy: single, x, alpha }) as tf.Tensor[];
        return { x: () => dx!, alpha: () => da! };
      }
      return stock.gradFunc(dy, saved, attrs);
    },
  };
}

export const dfdPreluGradConfig = wasmKernel('DfdPreluGrad', preluGrad);

/** Points tfjs-core's Prelu gradient at DfdPreluGrad (where it applies); {@link restorePreluGradient} undoes it. */
export function replacePreluGradient(): void {
  const stock = tf.getGradient('Prelu');
  if (stock == null) return;
  stockPreluGradient = stock;
  tf.registerGradient(preluGradient(stock));
}

/** Puts tfjs-core's Prelu gradient back. */
export function restorePreluGradient(): void {
  if (stockPreluGradient != null) tf.registerGradient(stockPreluGradient);
  stockPreluGradient = undefined;
}
