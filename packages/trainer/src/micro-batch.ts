import * as tf from '@tensorflow/tfjs-core';

/** One micro-batch of a batch: samples [start, start + size), and its share size / n of the batch. */
export interface MicroBatch {
  start: number;
  size: number;
  share: number;
}

/**
 * The micro-batches of a batch of `n` samples with at most `micro` samples each (sizes differ by
 * at most one); one micro-batch of all `n` when `micro` is unset or >= n.
 */
export function microBatches(n: number, micro?: number): MicroBatch[] {
  const chunks = micro != null && micro < n ? Math.ceil(n / micro) : 1;
  return Array.from({ length: chunks }, (_, c) => {
    const start = Math.floor((c * n) / chunks);
    const size = Math.floor(((c + 1) * n) / chunks) - start;
    return { start, size, share: size / n };
  });
}

/**
 * Sums over the micro-batches of a batch of `n` samples (see {@link microBatches}) the value and
 * gradients that `step` returns for each: `step` runs tf.variableGrads on its micro-batch's loss
 * scaled by `share`, so the sums are the value and gradients of the batch mean. On an error
 * everything summed so far is freed.
 */
export function sumMicroBatchGradients(
  n: number,
  micro: number | undefined,
  step: (mb: MicroBatch) => { value: tf.Scalar; grads: tf.NamedTensorMap },
): { value: tf.Scalar; grads: tf.NamedTensorMap } {
  let value: tf.Scalar | undefined;
  let grads: tf.NamedTensorMap = {};
  try {
    for (const mb of microBatches(n, micro)) {
      const r = step(mb);
      if (value === undefined) {
        value = r.value;
        grads = r.grads;
        continue;
      }
      const prevValue = value;
      value = tf.add(prevValue, r.value) as tf.Scalar;
      tf.dispose([prevValue, r.value]);
      for (const [k, g] of Object.entries(r.grads)) {
        const prev = grads[k];
        grads[k] = prev ? tf.add(prev, g) : g;
        if (prev) tf.dispose([prev, g]);
      }
    }
  } catch (e) {
    tf.dispose([...(value ? [value] : []), ...Object.values(grads)]);
    throw e;
  }
  return { value: value!, grads };
}
