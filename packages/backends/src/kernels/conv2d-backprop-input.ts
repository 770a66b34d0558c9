import { backend_util, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import { transientConv, type ConvAttrs } from '../winograd.js';
import { reverseBlocks } from './reverse.js';
import { callStock, dispose, stockKernel, transpose, wasmKernel, type KernelArgs, type WasmBackend } from './kernel-utils.js';

/*
 * Conv2DBackpropInput (dx) for wasm, replacing the stock naive loop: one XNNPACK (or Winograd)
 * convolution at stride 1, a stride-phase decomposition at larger strides.
 */

/**
 * dx is the full correlation of dy with the spatially flipped, in/out-swapped filter: one
 * XNNPACK Conv2D instead of the stock naive loop (strided convs: see stridedBackpropInput).
 */
function conv2DBackpropInput(args: KernelArgs): TensorInfo {
  const backend = args.backend as WasmBackend;
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
  if (attrs.dataFormat === 'NCHW' || top < 0 || left < 0) return stockKernel('Conv2DBackpropInput')(args);
  if (strideHeight > 1 || strideWidth > 1) return stridedBackpropInput(backend, dy, filter, info);

  let dyz = dy;
  let zH = outHeight;
  let zW = outWidth;
  if (strideHeight > 1 || strideWidth > 1) {
    // Zero-stuff: [n,oh,1,ow,1,co] padded to [n,oh,sh,ow,sw,co] is [n,oh*sh,ow*sw,co] with dy at multiples of the stride.
    const r6 = callStock('Reshape', backend, { x: dy }, { shape: [batchSize, outHeight, 1, outWidth, 1, outChannels] });
    const p6 = callStock('PadV2', backend, { x: r6 }, {
      paddings: [[0, 0], [0, 0], [0, strideHeight - 1], [0, 0], [0, strideWidth - 1], [0, 0]],
      constantValue: 0,
    } as unknown as NamedAttrMap);
    dispose(backend, r6);
    zH = outHeight * strideHeight;
    zW = outWidth * strideWidth;
    dyz = callStock('Reshape', backend, { x: p6 }, { shape: [batchSize, zH, zW, outChannels] });
    dispose(backend, p6);
  }
  let bottom = inHeight + filterHeight - 1 - zH - top;
  let right = inWidth + filterWidth - 1 - zW - left;
  if (bottom < 0 || right < 0) {
    // Trailing stuffed zeros (or rows the forward conv never read) fall outside dx: crop them.
    const h = zH + Math.min(0, bottom);
    const w = zW + Math.min(0, right);
    const cropped = callStock('Slice', backend, { x: dyz }, { begin: [0, 0, 0, 0], size: [batchSize, h, w, outChannels] });
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
  const dx = transientConv(stockKernel, backend, dyz, wT, convAttrs as unknown as ConvAttrs) ?? callStock('Conv2D', backend, { x: dyz, filter: wT }, convAttrs);
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
function stridedBackpropInput(backend: WasmBackend, dy: TensorInfo, filter: TensorInfo, info: backend_util.Conv2DInfo): TensorInfo {
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
        src = callStock('Slice', backend, { x: dy }, {
          begin: [0, cropTop, cropLeft, 0],
          size: [n, outHeight - cropTop - cropBottom, outWidth - cropLeft - cropRight, co],
        });
      }
      const phase = callStock('Conv2D', backend, { x: src, filter: sub }, {
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

export const conv2DBackpropInputConfig = wasmKernel('Conv2DBackpropInput', conv2DBackpropInput);
