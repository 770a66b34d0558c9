import { backend_util } from '@tensorflow/tfjs-core';

/*
 * Depthwise-convolution gradients for the wasm backend, which has none (tfjs-backend-wasm 4.x
 * registers DepthwiseConv2dNative but neither backprop kernel), so a net with separable convs
 * (face-api's, @dfd/zoo's `faceapi` backbone) could not train on wasm. Both
 * (depthwise-backprop-input.ts, depthwise-backprop-filter.ts) run as one scatter pass over the
 * output positions and taps, on wasm memory views; this file is their shared geometry.
 */

/** Depthwise-conv attributes, as tfjs passes them. */
export type DepthwiseAttrs = {
  strides: number | [number, number];
  dilations: number | [number, number];
  pad: 'valid' | 'same' | number | backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
};

/** Geometry of a depthwise conv: x [N,H,W,C], filter [kh,kw,C,M], dy [N,OH,OW,C*M]. */
export function geometry(xShape: number[], filterShape: number[], attrs: DepthwiseAttrs) {
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
export function forEachTap(info: backend_util.Conv2DInfo, visit: (dyBase: number, xBase: number, wBase: number) => void): void {
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
