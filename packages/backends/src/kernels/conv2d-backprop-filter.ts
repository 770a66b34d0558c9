import { DfdError } from '@dfd/core';
import { backend_util, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import { dfdWasm } from '../wasm-module.js';
import { splitRanges } from '../wasm-pool.js';
import { callStock, dispose, transpose, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/*
 * Conv2DBackpropFilter (dW) for wasm, which has none (tfjs-backend-wasm 4.x cannot train a conv
 * net without it): dfd's wasm GEMM where the channels allow, else a forward XNNPACK convolution.
 */

/** Image-range partial sums of the dW GEMM: fixed, whatever the thread count, so that 1 and N threads agree bit for bit. */
const DW_PARTS = 4;
/** Bytes of x and dy per cache chunk of the dW GEMM (images per chunk: at least one). */
const DW_CHUNK_BYTES = 512 * 1024;

/**
 * dW by dfd's wasm GEMM (tools/wasm/winograd.ts `dw`): per tap, 4x8 register blocks of dW with
 * the pixels of x and dy streaming, float32 sums over up to DW_PARTS contiguous image ranges
 * (spread over the transform threads), added in order. Needs Ci % 4 == 0, Co % 8 == 0, float32;
 * returns null otherwise (or before dfd's module is instantiated).
 */
function dwGemm(backend: WasmBackend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo | null {
  const mod = dfdWasm(backend);
  const { batchSize: n, inHeight: h, inWidth: w, inChannels: ci, outHeight: oh, outWidth: ow, outChannels: co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  if (mod == null || ci % 4 !== 0 || co % 8 !== 0 || x.dtype !== 'float32' || dy.dtype !== 'float32' || info.dilationHeight !== 1 || info.dilationWidth !== 1) return null;
  const { top, left } = info.padInfo;
  const taps = kh * kw;
  const plane = taps * ci * co;
  const parts = Math.min(n, DW_PARTS);
  const sums = backend.makeOutput(parts === 1 ? [kh, kw, ci, co] : [parts, kh, kw, ci, co], 'float32');
  const tab = backend.makeOutput([8 + 8 * taps], 'int32');
  const t = backend.typedArrayFromHeap(tab) as Int32Array;
  const xImg = h * w * ci * 4;
  const dyImg = oh * ow * co * 4;
  t.set([xImg, dyImg, sh * w * ci * 4, sw * ci * 4, ow * co * 4, plane * 4, Math.max(1, Math.floor(DW_CHUNK_BYTES / (xImg + dyImg))), 0]);
  // Output rows/cols whose input row/col (o * s + k - pad) lies inside the image.
  const range = (k: number, pad: number, s: number, inSize: number, outSize: number): [number, number] => [
    Math.max(0, Math.ceil((pad - k) / s)),
    Math.min(outSize, Math.floor((inSize - 1 + pad - k) / s) + 1),
  ];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const [oh0, oh1] = range(i, top, sh, h, oh);
      const [ow0, ow1] = range(j, left, sw, w, ow);
      const inside = oh1 > oh0 && ow1 > ow0;
      const xOff = inside ? ((oh0 * sh + i - top) * w + (ow0 * sw + j - left)) * ci * 4 : 0;
      t.set([oh0, oh1, ow0, ow1, xOff, (oh0 * ow + ow0) * co * 4, (i * kw + j) * ci * co * 4, 0], 8 + 8 * (i * kw + j));
    }
  }
  const at = mod.address;
  try {
    mod.runRanges('dw', [at(tab), at(x), at(dy), at(sums), ci, co, taps], splitRanges(n, parts));
  } finally {
    dispose(backend, tab);
  }
  if (parts === 1) return sums;
  const out = backend.makeOutput([kh, kw, ci, co], 'float32');
  const all = backend.typedArrayFromHeap(sums) as Float32Array;
  const o = backend.typedArrayFromHeap(out) as Float32Array;
  o.set(all.subarray(0, plane));
  for (let p = 1; p < parts; p++) {
    const base = p * plane;
    for (let i = 0; i < plane; i++) o[i] = (o[i] as number) + (all[base + i] as number);
  }
  dispose(backend, sums);
  return out;
}

/**
 * dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-p, ow*s+kw-p, ci] * dy[n,oh,ow,co] is itself a
 * forward convolution: batch = ci, channels = n, filter = dy laid out [oh,ow,n,co], with
 * dilation = the forward stride, so XNNPACK's conv does the work.
 */
function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as {
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dataFormat: 'NHWC' | 'NCHW';
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
    filterShape: [number, number, number, number];
  };
  if (attrs.dataFormat === 'NCHW') {
    throw new DfdError('E_WASM_KERNEL', "@dfd/backends: wasm Conv2DBackpropFilter supports dataFormat 'NHWC' only; transpose NCHW inputs to NHWC");
  }
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
  const fast = dwGemm(backend, x, dy, info);
  if (fast != null) return fast;
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
    xs = callStock('Slice', backend, { x }, { begin: [0, 0, 0, 0], size: [x.shape[0], useH, useW, x.shape[3]] });
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
  const dwT = callStock('Conv2D', backend, { x: xt, filter: dyt }, {
    strides: [1, 1],
    pad,
    dataFormat: 'NHWC',
    dilations: [strideHeight, strideWidth],
  } as unknown as NamedAttrMap); // [ci, kh, kw, co]
  dispose(backend, xt, dyt);
  const dw = transpose(backend, dwT, [1, 2, 0, 3]);
  dispose(backend, dwT);
  return dw;
}

export const conv2DBackpropFilterConfig = wasmKernel('Conv2DBackpropFilter', conv2DBackpropFilter);
