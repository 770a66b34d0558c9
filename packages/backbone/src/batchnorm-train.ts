import * as tf from '@tensorflow/tfjs-core';

/** What {@link batchNormTrain} returns: the normalised output and the batch statistics it used. */
export interface BatchNormTrainResult {
  y: tf.Tensor4D;
  /** Per-channel batch mean [C]. */
  mean: tf.Tensor1D;
  /** Per-channel biased batch variance [C] (what the output was normalised with). */
  variance: tf.Tensor1D;
}

/**
 * Training-mode batch normalisation over N, H, W of an NHWC tensor as ONE differentiable op:
 * y = (x - mean) / sqrt(var + eps) * gamma + beta with the batch mean and biased variance.
 *
 * Differentiating the composed ops (tf.moments + tf.batchNorm) keeps five activation-sized
 * tensors per layer alive until the backward pass (a float32 copy of x, x - mean, its square,
 * ...) and runs ~30 elementwise kernels backward. Here only x is saved, and the backward pass is
 * the closed form (Ioffe & Szegedy 2015, eq. in sec. 3):
 *
 *   xc = x - mean,  k = gamma * invstd,  dbeta = sum(dy),  dgamma = invstd * sum(dy * xc)
 *   dx = k * dy - (k / N) * dbeta - (k * invstd / N) * dgamma * xc
 *
 * Gradients flow to x (including through the batch statistics), gamma and beta; `mean` and
 * `variance` in the result are statistics for the running averages, not part of the graph.
 */
export function batchNormTrain(x: tf.Tensor4D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): BatchNormTrainResult {
  let mean: tf.Tensor1D | null = null;
  let variance: tf.Tensor1D | null = null;
  const n = x.shape[0] * x.shape[1] * x.shape[2];
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, g, b, save] = args as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const m = tf.mean(xi, [0, 1, 2]) as tf.Tensor1D;
    const v = tf.mean(tf.square(tf.sub(xi, m)), [0, 1, 2]) as tf.Tensor1D;
    const invstd = tf.rsqrt(tf.add(v, eps)) as tf.Tensor1D;
    // The statistics leave the op's scope for the caller's running averages.
    mean = tf.keep(m);
    variance = tf.keep(v);
    save([xi, m, invstd, g]);
    const value = tf.batchNorm4d(xi, m, v, b, g, eps);
    return {
      value,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xs, ms, is, gs] = saved as [tf.Tensor4D, tf.Tensor1D, tf.Tensor1D, tf.Tensor1D];
          const xc = tf.sub(xs, ms);
          const dbeta = tf.sum(dy, [0, 1, 2]);
          const dgammaRaw = tf.sum(tf.mul(dy, xc), [0, 1, 2]);
          const k = tf.mul(gs, is);
          const a = tf.mul(tf.mul(tf.mul(k, tf.square(is)), -1 / n), dgammaRaw);
          const c = tf.mul(tf.mul(k, -1 / n), dbeta);
          const dx = tf.add(tf.add(tf.mul(dy, k), tf.mul(xc, a)), c);
          return [dx, tf.mul(dgammaRaw, is), dbeta];
        }),
    };
  });
  const y = op(x, gamma, beta) as tf.Tensor4D;
  return { y, mean: mean!, variance: variance! };
}
