import * as tf from '@tensorflow/tfjs-core';
import { DfdError } from '@dfd/core';
import { guardWasmKernels, wasmKernelsGuarded } from './wasm-node.js';
import { clearWinogradCache, dfdWasm, transientConv, winogradConv2D } from './winograd.js';
import { splitRanges } from './winograd-threads.js';
import { depthwiseBackpropFilter, depthwiseBackpropInput } from './wasm-depthwise.js';
import { backend_util, util, type KernelConfig, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';

/*
 * Training kernels for the tfjs wasm backend. tfjs-backend-wasm 4.x has no
 * Conv2DBackpropFilter (conv nets cannot train at all), its Conv2DBackpropInput and transposed
 * BatchMatMul are naive loops, and its MaxPoolGrad is wrong for several stride/padding
 * combinations, while its Conv2D and plain BatchMatMul run on XNNPACK. The conv/matmul
 * gradients here are rewritten as XNNPACK Conv2D / BatchMatMul calls plus layout ops; the
 * memory-bound ones (Reverse, Tile, Sum/Mean, MaxPoolGrad) work directly on wasm memory views.
 * Tensors never leave wasm memory; intermediates are freed with backend.disposeData.
 */

type Backend = {
  disposeData(dataId: object): boolean;
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
};
type KernelFn = (args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: Backend }) => TensorInfo;

const BACKEND = 'wasm';

/** Kernels registered by {@link registerWasmTrainingKernels}, for docs and tests. */
export const WASM_TRAINING_KERNELS = ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMul', 'Reverse', 'MaxPoolGrad', 'Tile', 'Sum', 'Mean', 'FusedBatchNorm', 'Prelu', 'Identity', 'Conv2D', 'DfdPreluGrad', 'DepthwiseConv2dNativeBackpropInput', 'DepthwiseConv2dNativeBackpropFilter'] as const;

/** One of {@link WASM_TRAINING_KERNELS}. */
export type WasmTrainingKernel = (typeof WASM_TRAINING_KERNELS)[number];

/** The wasm backend's own kernels, captured before any of ours replaces one. */
const original = new Map<string, KernelConfig>();

function kernel(name: string): KernelFn {
  const config = original.get(name) ?? tf.getKernel(name, BACKEND);
  if (config == null) {
    throw new DfdError('E_WASM_KERNEL', `@dfd/backends: the wasm backend has no ${name} kernel; import '@tensorflow/tfjs-backend-wasm' (or call useBackend('wasm')) first`);
  }
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
function dwGemm(backend: Backend, x: TensorInfo, dy: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo | null {
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
  } as unknown as NamedAttrMap); // [ci, kh, kw, co]
  dispose(backend, xt, dyt);
  const dw = transpose(backend, dwT, [1, 2, 0, 3]);
  dispose(backend, dwT);
  return dw;
}

type ConvAttrs = {
  strides: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

/**
 * dx is the full correlation of dy with the spatially flipped, in/out-swapped filter: one
 * XNNPACK Conv2D instead of the stock naive loop (strided convs: see stridedBackpropInput).
 */
function conv2DBackpropInput(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: [number, number, number, number] };
  const info = backend_util.computeConv2DInfo(
    attrs.inputShape,
    filter.shape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const { batchSize, inHeight, inWidth, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const top = filterHeight - 1 - info.padInfo.top;
  const left = filterWidth - 1 - info.padInfo.left;
  if (attrs.dataFormat === 'NCHW' || top < 0 || left < 0) return kernel('Conv2DBackpropInput')(args as Parameters<KernelFn>[0]);
  if (strideHeight > 1 || strideWidth > 1) return stridedBackpropInput(backend, dy, filter, info);

  let dyz = dy;
  let zH = outHeight;
  let zW = outWidth;
  if (strideHeight > 1 || strideWidth > 1) {
    // Zero-stuff: [n,oh,1,ow,1,co] padded to [n,oh,sh,ow,sw,co] is [n,oh*sh,ow*sw,co] with dy at multiples of the stride.
    const r6 = call('Reshape', backend, { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] });
    const p6 = call('PadV2', backend, { x: r6 }, {
      paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]],
      constantValue: 0,
    } as unknown as NamedAttrMap);
    dispose(backend, r6);
    zH = outHeight * strideHeight;
    zW = outWidth * strideWidth;
    dyz = call('Reshape', backend, { x: p6 }, { shape: [batchSize, zH, zW, outChannels] });
    dispose(backend, p6);
  }
  let bottom = inHeight + filterHeight - 1 - zH - top;
  let right = inWidth + filterWidth - 1 - zW - left;
  if (bottom < 0 || right < 0) {
    // Trailing stuffed zeros (or rows the forward conv never read) fall outside dx: crop them.
    const h = zH + Math.min(0, bottom);
    const w = zW + Math.min(0, right);
    const cropped = call('Slice', backend, { x: dyz }, { begin: [0, 0, 0, 0], size: [batchSize, h, w, outChannels] });
    if (dyz !== dy) dispose(backend, dyz);
    dyz = cropped;
    bottom = Math.max(0, bottom);
    right = Math.max(0, right);
  }
  const swapped = transpose(backend, filter, [0, 1, 3, 2]); // [kh, kw, co, ci]
  const wT = reverseBlocks(backend, swapped, [0, 1]);
  dispose(backend, swapped);
  const convAttrs = {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
  } as unknown as NamedAttrMap;
  // Winograd F(4x4,3x3) with this call's filter where it pays (src/winograd.ts), else XNNPACK.
  const dx = transientConv(kernel as Parameters<typeof transientConv>[0], backend, dyz, wT, convAttrs as unknown as Parameters<typeof transientConv>[4]) ?? call('Conv2D', backend, { x: dyz, filter: wT }, convAttrs);
  dispose(backend, wT);
  if (dyz !== dy) dispose(backend, dyz);
  return dx;
}

/** Taps of one stride phase along one axis: the forward taps k0, k0+s, ... and where dy starts. */
function phaseTaps(r: number, pad: number, s: number, k: number, inSize: number, outSize: number) {
  const k0 = (r + pad) % s;
  const taps = k0 < k ? Math.floor((k - 1 - k0) / s) + 1 : 0;
  const q = (r + pad - k0) / s;
  const size = r < inSize ? Math.ceil((inSize - r) / s) : 0;
  // dx_phase[u] = sum_j dyPadded[u + j] * F[j] with F the flipped taps; dyPadded pads dy by:
  const before = taps - 1 - q;
  const after = size + q - outSize;
  return { k0, taps, size, before, after };
}

/**
 * Strided dx without zero-stuffing: split dx into its stride x stride phases; phase (ry, rx)
 * only sees the forward taps congruent to it, so it is a stride-1 correlation of dy with that
 * (flipped) sub-filter. Every multiply-add is useful (zero-stuffing wastes 3/4 at stride 2),
 * and the phases are interleaved back into dx with block copies.
 */
function stridedBackpropInput(backend: Backend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
  const { batchSize: n, inHeight, inWidth, inChannels: ci, outHeight, outWidth, outChannels: co, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw } = info;
  const wT = transpose(backend, filter, [0, 1, 3, 2]); // [kh, kw, co, ci]
  const dx = backend.makeOutput([n, inHeight, inWidth, ci], 'float32');
  (backend.typedArrayFromHeap(dx) as Float32Array).fill(0);
  const block = co * ci;
  for (let ry = 0; ry < sh; ry++) {
    const py = phaseTaps(ry, info.padInfo.top, sh, kh, inHeight, outHeight);
    if (py.taps === 0 || py.size === 0) continue;
    for (let rx = 0; rx < sw; rx++) {
      const px = phaseTaps(rx, info.padInfo.left, sw, kw, inWidth, outWidth);
      if (px.taps === 0 || px.size === 0) continue;
      // Sub-filter F[j,i] = wT[k0y + sh*(Ty-1-j), k0x + sw*(Tx-1-i)], tap blocks copied whole.
      const sub = backend.makeOutput([py.taps, px.taps, co, ci], 'float32');
      const wv = backend.typedArrayFromHeap(wT) as Float32Array;
      const sv = backend.typedArrayFromHeap(sub) as Float32Array;
      for (let j = 0; j < py.taps; j++) {
        for (let i = 0; i < px.taps; i++) {
          const from = ((py.k0 + sh * (py.taps - 1 - j)) * kw + (px.k0 + sw * (px.taps - 1 - i))) * block;
          sv.set(wv.subarray(from, from + block), (j * px.taps + i) * block);
        }
      }
      // Negative padding means dy rows/cols this phase never reads: crop them instead.
      let src = dy;
      const cropTop = Math.max(0, -py.before);
      const cropLeft = Math.max(0, -px.before);
      const cropBottom = Math.max(0, -py.after);
      const cropRight = Math.max(0, -px.after);
      if (cropTop + cropLeft + cropBottom + cropRight > 0) {
        src = call('Slice', backend, { x: dy }, {
          begin: [0, cropTop, cropLeft, 0],
          size: [n, outHeight - cropTop - cropBottom, outWidth - cropLeft - cropRight, co],
        });
      }
      const phase = call('Conv2D', backend, { x: src, filter: sub }, {
        strides: [1, 1],
        pad: [[0, 0], [Math.max(0, py.before), Math.max(0, py.after)], [Math.max(0, px.before), Math.max(0, px.after)], [0, 0]],
        dataFormat: 'NHWC',
        dilations: [1, 1],
      } as unknown as NamedAttrMap); // [n, Uy, Ux, ci]
      if (src !== dy) dispose(backend, src);
      dispose(backend, sub);
      const pv = backend.typedArrayFromHeap(phase) as Float32Array;
      const dv = backend.typedArrayFromHeap(dx) as Float32Array;
      for (let b = 0; b < n; b++) {
        for (let u = 0; u < py.size; u++) {
          const rowTo = (b * inHeight + sh * u + ry) * inWidth;
          const rowFrom = (b * py.size + u) * px.size;
          for (let v = 0; v < px.size; v++) {
            const from = (rowFrom + v) * ci;
            dv.set(pv.subarray(from, from + ci), (rowTo + sw * v + rx) * ci);
          }
        }
      }
      dispose(backend, phase);
    }
  }
  dispose(backend, wT);
  return dx;
}

/**
 * Reverses `axes` by copying the contiguous blocks below the innermost reversed axis with
 * TypedArray.set (memcpy speed); the stock wasm Reverse walks element by element (~0.2 us each).
 */
function reverseBlocks(backend: Backend, x: TensorInfo, axes: number[]): TensorInfo {
  const shape = x.shape;
  let inner = shape.length;
  while (inner > 0 && !axes.includes(inner - 1)) inner--;
  const block = util.sizeFromShape(shape.slice(inner));
  const outer = shape.slice(0, inner);
  const strides = [...util.computeStrides(outer), 1].slice(-outer.length);
  const out = backend.makeOutput([...shape], x.dtype);
  // Views are taken after makeOutput: allocating may grow (and detach) the wasm heap.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const nOuter = util.sizeFromShape(outer);
  for (let o = 0; o < nOuter; o++) {
    let rem = o;
    let from = 0;
    for (let d = 0; d < outer.length; d++) {
      const st = strides[d] ?? 1;
      const c = Math.floor(rem / st);
      rem -= c * st;
      from += (axes.includes(d) ? (shape[d] ?? 1) - 1 - c : c) * st;
    }
    if (block === 1) dst[o] = src[from] ?? 0;
    else dst.set(src.subarray(from * block, (from + 1) * block), o * block);
  }
  return out;
}

function reverse(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { x } = args.inputs as { x: TensorInfo };
  const { dims } = args.attrs as unknown as { dims: number | number[] };
  const axes = util.parseAxisParam(dims, x.shape).filter((a) => (x.shape[a] ?? 1) > 1);
  const innermost = Math.max(-1, ...axes);
  const block = util.sizeFromShape(x.shape.slice(innermost + 1));
  // Element-wise reversal (innermost axis reversed) or strings: the stock kernel is as good.
  if (axes.length === 0 || block < 16 || x.dtype === 'string') return kernel('Reverse')(args as Parameters<KernelFn>[0]);
  return reverseBlocks(backend, x, axes);
}

/**
 * The stock wasm MaxPoolGrad routes dy to the wrong inputs for several stride/padding
 * combinations (e.g. 3x3 stride 2 'same', 2x2 stride 1 'valid'), silently corrupting gradients.
 * This one recomputes each window's first maximum (the CPU backend's tie rule) over wasm
 * memory, channels innermost so every loop reads contiguously.
 */
function maxPoolGrad(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { dy, input } = args.inputs as { dy: TensorInfo; input: TensorInfo };
  const attrs = args.attrs as unknown as {
    filterSize: number | [number, number];
    strides: number | [number, number];
    pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
    dimRoundingMode?: 'floor' | 'round' | 'ceil';
  };
  const info = backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth } = info;
  const kh = info.effectiveFilterHeight;
  const kw = info.effectiveFilterWidth;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  const dx = backend.makeOutput([...input.shape], 'float32');
  // Monomorphic Float32Array views keep the inner loop fast (a union type deoptimises it).
  const xv = backend.typedArrayFromHeap(input) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);
  const best = new Float32Array(C);
  const at = new Int32Array(C);
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - top;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - left;
        best.fill(-Infinity);
        at.fill(-1);
        for (let i = Math.max(0, y0); i < Math.min(inHeight, y0 + kh); i++) {
          for (let j = Math.max(0, x0); j < Math.min(inWidth, x0 + kw); j++) {
            const base = ((n * inHeight + i) * inWidth + j) * C;
            for (let c = 0; c < C; c++) {
              const v = xv[base + c] as number;
              if (v > (best[c] as number) || at[c] === -1) {
                best[c] = v;
                at[c] = base + c;
              }
            }
          }
        }
        const o = ((n * outHeight + oy) * outWidth + ox) * C;
        for (let c = 0; c < C; c++) {
          const idx = at[c] as number;
          if (idx >= 0) dxv[idx] = (dxv[idx] as number) + (dyv[o + c] as number);
        }
      }
    }
  }
  return dx;
}

/**
 * Tile by block copies: each axis (innermost first) writes its first copy, then replicates it
 * with copyWithin. The stock wasm Tile costs ~0.5 us per output element, and tfjs-core's
 * FusedBatchNorm gradient tiles the per-channel statistics to the full activation shape.
 */
function tile(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { x } = args.inputs as { x: TensorInfo };
  const { reps } = args.attrs as unknown as { reps: number[] };
  if (x.dtype === 'string' || x.shape.length === 0) return kernel('Tile')(args as Parameters<KernelFn>[0]);
  const shape = x.shape;
  const rank = shape.length;
  const outShape = shape.map((s, i) => s * (reps[i] ?? 1));
  const out = backend.makeOutput(outShape, x.dtype);
  if (util.sizeFromShape(outShape) === 0) return out;
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const inStrides = [...util.computeStrides(shape), 1];
  const outStrides = [...util.computeStrides(outShape), 1];
  const fill = (d: number, from: number, to: number): void => {
    const n = shape[d] ?? 1;
    const r = reps[d] ?? 1;
    if (d === rank - 1) {
      if (n === 1) dst.fill(src[from] ?? 0, to, to + r);
      else for (let k = 0; k < r; k++) dst.set(src.subarray(from, from + n), to + k * n);
      return;
    }
    const inS = inStrides[d] ?? 1;
    const outS = outStrides[d] ?? 1;
    for (let i = 0; i < n; i++) fill(d + 1, from + i * inS, to + i * outS);
    const block = n * outS;
    for (let k = 1; k < r; k++) dst.copyWithin(to + k * block, to, to + block);
  };
  fill(0, 0, 0);
  return out;
}

/**
 * Sum/Mean over a contiguous run of axes that are not the innermost ones (BN statistics and
 * their gradients reduce [N,H,W] of NHWC; global pooling reduces [H,W]). The stock kernels
 * transpose the reduced axes innermost first (the transpose dominates).
 */
function reduceKernel(name: 'Sum' | 'Mean') {
  return (args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo => {
    const backend = args.backend as Backend;
    const { x } = args.inputs as { x: TensorInfo };
    const { axis, keepDims } = args.attrs as unknown as { axis: number | number[]; keepDims: boolean };
    const shape = x.shape;
    const axes = util.parseAxisParam(axis, shape).sort((a, b) => a - b);
    const first = axes[0] ?? 0;
    const last = axes[axes.length - 1] ?? 0;
    const contiguous = axes.length > 0 && last - first === axes.length - 1;
    const C = util.sizeFromShape(shape.slice(last + 1));
    if (x.dtype !== 'float32' || !contiguous || C < 8) return kernel(name)(args as Parameters<KernelFn>[0]);
    const O = util.sizeFromShape(shape.slice(0, first));
    let R = util.sizeFromShape(shape.slice(first, last + 1));
    const outShape = keepDims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
    const out = backend.makeOutput(outShape, 'float32');
    let scale = name === 'Mean' ? 1 / R : 1;
    // Runs of L rows are averaged by XNNPACK's average pooling (threaded, SIMD: 5-6x faster
    // than a JS loop over the whole tensor), each run in float32 over at most 256 values; the
    // run means are then summed in float64 by the JS loop below. (A GEMM with a ones row would
    // make XNNPACK re-pack x, its weight operand, at ~17 ns per element on every call.)
    const L = poolRun(R);
    let partial: TensorInfo | undefined;
    if (L >= 8) {
      const view: TensorInfo = { dataId: x.dataId, shape: [O * (R / L), L, 1, C], dtype: 'float32' };
      partial = call('AvgPool', backend, { x: view }, { filterSize: [L, 1], strides: [L, 1], pad: 'valid' } as unknown as NamedAttrMap);
      scale *= L;
      R /= L;
    }
    const src = backend.typedArrayFromHeap(partial ?? x) as Float32Array;
    const dst = backend.typedArrayFromHeap(out) as Float32Array;
    const acc = new Float64Array(C);
    for (let o = 0; o < O; o++) {
      acc.fill(0);
      let r = 0;
      for (; r + 4 <= R; r += 4) {
        const b0 = (o * R + r) * C;
        const b1 = b0 + C;
        const b2 = b1 + C;
        const b3 = b2 + C;
        for (let c = 0; c < C; c++) {
          acc[c] = (acc[c] as number) + (src[b0 + c] as number) + (src[b1 + c] as number) + (src[b2 + c] as number) + (src[b3 + c] as number);
        }
      }
      for (; r < R; r++) {
        const b0 = (o * R + r) * C;
        for (let c = 0; c < C; c++) acc[c] = (acc[c] as number) + (src[b0 + c] as number);
      }
      for (let c = 0; c < C; c++) dst[o * C + c] = (acc[c] as number) * scale;
    }
    if (partial) dispose(backend, partial);
    return out;
  };
}

/** The largest divisor of `rows` up to 256 (the run length pooled in float32), or 1. */
function poolRun(rows: number): number {
  for (let l = Math.min(256, rows); l > 1; l--) if (rows % l === 0) return l;
  return 1;
}

/**
 * Identity without a copy, as on the CPU backend (the stock wasm kernel copies the whole
 * buffer; tfjs-core calls it for every customGrad output and clone, hundreds of times per
 * training step). Tensors are immutable, so sharing the buffer by reference count is safe.
 */
function identity(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend & { incRef(dataId: object): void };
  const { x } = args.inputs as { x: TensorInfo };
  if (x.dtype === 'string') return kernel('Identity')(args as Parameters<KernelFn>[0]);
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: [...x.shape], dtype: x.dtype };
}

/** XNNPACK only does the plain product fast, so transposed operands are materialised first. */
function batchMatMul(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { a, b } = args.inputs as { a: TensorInfo; b: TensorInfo };
  const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
  const stock = kernel('BatchMatMul');
  if (!transposeA && !transposeB) return stock(args as Parameters<KernelFn>[0]);
  const swapLast = (t: TensorInfo): TensorInfo => {
    const r = t.shape.length;
    const perm = [...Array(r).keys()];
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return transpose(backend, t, perm);
  };
  const at = transposeA ? swapLast(a) : a;
  const bt = transposeB ? swapLast(b) : b;
  const out = stock({ inputs: { a: at, b: bt }, attrs: { transposeA: false, transposeB: false }, backend });
  if (at !== a) dispose(backend, at);
  if (bt !== b) dispose(backend, bt);
  return out;
}

/**
 * Batch norm with per-channel statistics (what every BN layer does, in training and inference):
 * (x - mean) * (scale / sqrt(variance + eps)) + offset, in one pass of dfd's wasm module over
 * rows split between its threads (C % 4 == 0), else as three broadcast XNNPACK passes with the
 * same roundings. The stock wasm kernel is a scalar loop with a modulo per element: 96 ms for
 * [32,90,90,64] on 2 threads, the three passes 22 ms. The per-channel factor is computed in
 * float64, then rounded once; other broadcast shapes go to the stock kernel.
 */
function fusedBatchNorm(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { x, mean, variance, offset, scale } = args.inputs as { x: TensorInfo; mean: TensorInfo; variance: TensorInfo; offset?: TensorInfo; scale?: TensorInfo };
  const { varianceEpsilon } = args.attrs as unknown as { varianceEpsilon: number };
  const C = x.shape[x.shape.length - 1] ?? 1;
  const perChannel = (t: TensorInfo | undefined): boolean => t == null || (t.dtype === 'float32' && [1, C].includes(util.sizeFromShape(t.shape)));
  if (x.dtype !== 'float32' || x.shape.length < 2 || ![mean, variance, offset, scale].every(perChannel)) {
    return kernel('FusedBatchNorm')(args as Parameters<KernelFn>[0]);
  }
  // Copied out before any allocation (growing a non-shared wasm memory detaches heap views).
  const read = (t: TensorInfo | undefined, fallback: number): (c: number) => number => {
    if (t == null) return () => fallback;
    const v = Float64Array.from(backend.typedArrayFromHeap(t) as Float32Array);
    return v.length === 1 ? () => v[0] as number : (c) => v[c] as number;
  };
  const m = read(mean, 0);
  const vr = read(variance, 1);
  const g = read(scale, 1);
  const b = read(offset, 0);
  const channel = (f: (c: number) => number): TensorInfo => {
    const t = backend.makeOutput([C], 'float32');
    const v = backend.typedArrayFromHeap(t) as Float32Array;
    for (let c = 0; c < C; c++) v[c] = f(c);
    return t;
  };
  const factor = channel((c) => g(c) / Math.sqrt(vr(c) + varianceEpsilon));
  const shift = channel(b);
  const mod = dfdWasm(backend);
  if (mod != null && C % 4 === 0) {
    // One pass of dfd's wasm module, rows split over its threads.
    const mu = channel(m);
    const y = backend.makeOutput([...x.shape], 'float32');
    const at = mod.address;
    const rows = util.sizeFromShape(x.shape) / C;
    try {
      mod.runRanges('batchNorm', [at(x), at(y), at(mu), at(factor), at(shift), C, 0], splitRanges(rows, Math.max(1, Math.min(rows, mod.threads))));
    } catch (e) {
      dispose(backend, y);
      throw e;
    } finally {
      dispose(backend, mu, factor, shift);
    }
    return y;
  }
  const negMean = channel((c) => -m(c));
  const centred = call('Add', backend, { a: x, b: negMean });
  const scaled = call('Multiply', backend, { a: centred, b: factor });
  dispose(backend, centred);
  const out = call('Add', backend, { a: scaled, b: shift });
  dispose(backend, scaled, negMean, factor, shift);
  return out;
}

/**
 * The stock wasm Prelu is fast (XNNPACK) only when alpha has shape [channels]; a single shared
 * alpha (PyTorch's nn.PReLU() default, what DFD-Net uses) costs 4x more and [1,1,1,C] 13x.
 * Both are handed to it as a [channels] vector.
 */
function prelu(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo {
  const backend = args.backend as Backend;
  const { x, alpha } = args.inputs as { x: TensorInfo; alpha: TensorInfo };
  const stock = kernel('Prelu');
  const C = x.shape[x.shape.length - 1] ?? 1;
  const n = util.sizeFromShape(alpha.shape);
  if (x.dtype !== 'float32' || alpha.dtype !== 'float32' || x.shape.length < 2 || (alpha.shape.length === 1 && n === C)) return stock(args as Parameters<KernelFn>[0]);
  if (n === C && alpha.shape.slice(0, -1).every((d) => d === 1)) {
    return stock({ inputs: { x, alpha: { dataId: alpha.dataId, shape: [C], dtype: 'float32' } }, attrs: {}, backend });
  }
  if (n !== 1) return stock(args as Parameters<KernelFn>[0]);
  const a = backend.makeOutput([C], 'float32');
  (backend.typedArrayFromHeap(a) as Float32Array).fill((backend.typedArrayFromHeap(alpha) as Float32Array)[0] as number);
  const out = stock({ inputs: { x, alpha: a }, attrs: {}, backend });
  dispose(backend, a);
  return out;
}

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
function preluGrad(args: { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown }): TensorInfo[] {
  const backend = args.backend as Backend;
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

function configs(): KernelConfig[] {
  const k = (kernelName: string, fn: unknown): KernelConfig => ({ kernelName, backendName: BACKEND, kernelFunc: fn as KernelConfig['kernelFunc'] });
  return [
    k('Conv2DBackpropFilter', conv2DBackpropFilter),
    k('Conv2DBackpropInput', conv2DBackpropInput),
    k('BatchMatMul', batchMatMul),
    k('Reverse', reverse),
    k('MaxPoolGrad', maxPoolGrad),
    k('Tile', tile),
    k('Sum', reduceKernel('Sum')),
    k('Mean', reduceKernel('Mean')),
    k('FusedBatchNorm', fusedBatchNorm),
    k('Prelu', prelu),
    k('Identity', identity),
    // Inference 3x3 convolutions by Winograd F(4x4,3x3) (src/winograd.ts); everything else, and
    // every convolution the gradient kernels above run, is the stock XNNPACK one.
    k('Conv2D', winogradConv2D(kernel as Parameters<typeof winogradConv2D>[0])),
    // PReLU's gradient in one pass (with the Prelu gradient below pointing at it).
    k('DfdPreluGrad', preluGrad),
    // Missing from the wasm backend: separable-conv nets (the zoo's face-api backbone) train with these.
    k('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput),
    k('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter),
  ];
}

let registered = false;
/** Kernel names currently registered by us. */
const ours = new Set<string>();

/**
 * Registers dfd's training kernels on the tfjs `wasm` backend (replacing the slow stock ones),
 * so tf.grad of conv2d / matMul, optimizers and model.fit work and are fast on wasm. Idempotent.
 * `only` restricts it to some kernels (benchmarks compare against the stock ones).
 */
export function registerWasmTrainingKernels(only?: readonly WasmTrainingKernel[]): void {
  if (registered) return;
  if (tf.getKernel('Conv2D', BACKEND) == null) {
    throw new DfdError('E_WASM_KERNEL', "@dfd/backends: import '@tensorflow/tfjs-backend-wasm' before registerWasmTrainingKernels() (or call useBackend('wasm'))");
  }
  for (const config of configs()) {
    if (only != null && !only.includes(config.kernelName as WasmTrainingKernel)) continue;
    const existing = tf.getKernel(config.kernelName, BACKEND);
    if (existing != null) {
      original.set(config.kernelName, existing);
      tf.unregisterKernel(config.kernelName, BACKEND);
      // Keep the stock kernel's wasm bindings alive: our replacement may call it for the cases it does well.
      config.setupFunc = existing.setupFunc;
      config.disposeFunc = existing.disposeFunc;
    }
    tf.registerKernel(config);
    ours.add(config.kernelName);
  }
  const stock = tf.getGradient('Prelu');
  if (ours.has('DfdPreluGrad') && stock != null) {
    stockPreluGradient = stock;
    tf.registerGradient(preluGradient(stock));
  }
  registered = true;
  if (wasmKernelsGuarded()) guardWasmKernels();
}

/** Puts the stock wasm kernels back (for before/after benchmarks); registerWasmTrainingKernels() re-applies ours. */
export function unregisterWasmTrainingKernels(): void {
  if (!registered) return;
  for (const name of ours) {
    if (tf.getKernel(name, BACKEND) != null) tf.unregisterKernel(name, BACKEND);
    const stock = original.get(name);
    if (stock != null) tf.registerKernel(stock);
  }
  original.clear();
  ours.clear();
  if (stockPreluGradient != null) tf.registerGradient(stockPreluGradient);
  stockPreluGradient = undefined;
  clearWinogradCache();
  registered = false;
  if (wasmKernelsGuarded()) guardWasmKernels();
}
