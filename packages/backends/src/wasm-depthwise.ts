import { backend_util, type NamedAttrMap, type NamedTensorInfoMap, type TensorInfo } from '@tensorflow/tfjs-core';

/*
 * Depthwise-convolution gradients for the wasm backend, which has none (tfjs-backend-wasm 4.x
 * registers DepthwiseConv2dNative but neither backprop kernel), so a net with separable convs
 * (face-api's, @dfd/zoo's `faceapi` backbone) could not train on wasm. Both run as one scatter
 * pass over the output positions and taps, on wasm memory views.
 */

type Backend = {
  makeOutput(shape: number[], dtype: string): TensorInfo;
  typedArrayFromHeap(t: TensorInfo): Float32Array | Int32Array | Uint8Array;
};
type Args = { inputs: NamedTensorInfoMap; attrs?: NamedAttrMap; backend: unknown };
type ConvAttrs = {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

/** Geometry of a depthwise conv: x [N,H,W,C], filter [kh,kw,C,M], dy [N,OH,OW,C*M]. */
function geometry(xShape: number[], filterShape: number[], attrs: ConvAttrs) {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides,
    attrs.dilations,
    attrs.pad,
    attrs.dimRoundingMode,
    true,
  );
}

/**
 * Visits every (output position, tap) pair whose input pixel lies inside the image, with the
 * flat offsets of the dy pixel, the x pixel and the filter tap (all channel 0).
 */
function forEachTap(info: backend_util.Conv2DInfo, visit: (dyBase: number, xBase: number, wBase: number) => void): void {
  const { batchSize, inHeight, inWidth, inChannels: C, outHeight, outWidth, strideHeight, strideWidth, dilationHeight, dilationWidth, filterHeight, filterWidth, outChannels } = info;
  const M = outChannels / C;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let n = 0; n < batchSize; n++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const dyBase = ((n * outHeight + oy) * outWidth + ox) * outChannels;
        for (let ky = 0; ky < filterHeight; ky++) {
          const iy = oy * strideHeight - top + ky * dilationHeight;
          if (iy < 0 || iy >= inHeight) continue;
          for (let kx = 0; kx < filterWidth; kx++) {
            const ix = ox * strideWidth - left + kx * dilationWidth;
            if (ix < 0 || ix >= inWidth) continue;
            visit(dyBase, ((n * inHeight + iy) * inWidth + ix) * C, (ky * filterWidth + kx) * C * M);
          }
        }
      }
    }
  }
}

/** dx of a depthwise conv: scatter dy * filter back onto the input pixels. */
export function depthwiseBackpropInput(args: Args): TensorInfo {
  const backend = args.backend as Backend;
  const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { inputShape: number[] };
  const info = geometry(attrs.inputShape, filter.shape, attrs);
  const C = info.inChannels;
  const M = info.outChannels / C;
  const dx = backend.makeOutput([...attrs.inputShape], 'float32');
  // Views after makeOutput: an allocation may grow (and detach) the wasm heap.
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const wv = backend.typedArrayFromHeap(filter) as Float32Array;
  const dxv = backend.typedArrayFromHeap(dx) as Float32Array;
  dxv.fill(0);
  forEachTap(info, (dyBase, xBase, wBase) => {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let m = 0; m < M; m++) s += (dyv[dyBase + c * M + m] as number) * (wv[wBase + c * M + m] as number);
      dxv[xBase + c] = (dxv[xBase + c] as number) + s;
    }
  });
  return dx;
}

/** dW of a depthwise conv: sum over pixels of x * dy, per tap, channel and multiplier. */
export function depthwiseBackpropFilter(args: Args): TensorInfo {
  const backend = args.backend as Backend;
  const { x, dy } = args.inputs as { x: TensorInfo; dy: TensorInfo };
  const attrs = args.attrs as unknown as ConvAttrs & { filterShape: number[] };
  const info = geometry(x.shape, attrs.filterShape, attrs);
  const C = info.inChannels;
  const M = info.outChannels / C;
  const dw = backend.makeOutput([...attrs.filterShape], 'float32');
  const xv = backend.typedArrayFromHeap(x) as Float32Array;
  const dyv = backend.typedArrayFromHeap(dy) as Float32Array;
  const dwv = backend.typedArrayFromHeap(dw) as Float32Array;
  // Summed in float64 per element, then stored: the order of a long float32 sum would drift.
  const acc = new Float64Array(dwv.length);
  forEachTap(info, (dyBase, xBase, wBase) => {
    for (let c = 0; c < C; c++) {
      const xc = xv[xBase + c] as number;
      for (let m = 0; m < M; m++) acc[wBase + c * M + m] = (acc[wBase + c * M + m] as number) + xc * (dyv[dyBase + c * M + m] as number);
    }
  });
  dwv.set(acc);
  return dw;
}
