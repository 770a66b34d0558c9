import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from './errors.js';

/** Eq. 3 pooling for one side: stride floor(Hj/HL), window Hj - (HL-1)*stride, so the output is exactly HL. */
export function fusionPool(hj: number, hl: number): { window: number; stride: number } {
  if (hl < 1 || hj < hl) throw new ShapeError('fusionPool', `cannot pool size ${hj} down to ${hl}`);
  const stride = Math.floor(hj / hl);
  return { window: hj - (hl - 1) * stride, stride };
}

/**
 * Parameter-free multi-level fusion (Eq. 3): every stage but the last is max-pooled to the last
 * stage's spatial size, then all but the last are concatenated on channels (f_fused; the last
 * stage f_L goes to the attention block separately). NHWC.
 */
export function fuseStages(stages: readonly tf.Tensor4D[]): tf.Tensor4D {
  if (stages.length < 2) throw new ShapeError('fuseStages', `needs at least two stage outputs, got ${stages.length}`);
  const last = stages[stages.length - 1]!;
  const [, hl, wl] = last.shape;
  return tf.tidy(() => {
    const parts = stages.slice(0, -1).map((s) => {
      const ph = fusionPool(s.shape[1], hl);
      const pw = fusionPool(s.shape[2], wl);
      return tf.maxPool(s, [ph.window, pw.window], [ph.stride, pw.stride], 'valid');
    });
    return tf.concat(parts, 3);
  });
}
