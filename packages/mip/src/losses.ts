import * as tf from '@tensorflow/tfjs-core';
import { ShapeError } from '@dfd/backbone';

const stopGradientOp = tf.customGrad(((x: tf.Tensor) => ({
  value: tf.clone(x),
  gradFunc: (dy: tf.Tensor) => tf.zerosLike(dy),
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;

/** Identity forward, zero gradient backward (PyTorch's `.detach()`): the EIFE targets d_k are fixed. */
export function stopGradient<T extends tf.Tensor>(x: T): T {
  return stopGradientOp(x) as T;
}

/** Smooth L1 (Huber) loss, PyTorch `F.smooth_l1_loss(pred, target, beta)` with mean reduction. */
export function smoothL1(pred: tf.Tensor, target: tf.Tensor, beta = 1): tf.Scalar {
  if (pred.shape.join(',') !== target.shape.join(',')) {
    throw new ShapeError('smoothL1', `prediction [${pred.shape.join(', ')}] and target [${target.shape.join(', ')}] must have the same shape`);
  }
  if (!(beta > 0)) throw new ShapeError('smoothL1', `beta must be > 0, got ${beta}`);
  return tf.tidy(() => {
    // 0.5 c^2 / beta + (|d| - c) with c = min(|d|, beta) equals the piecewise definition and,
    // unlike tf.where on a comparison, has a gradient path tfjs can differentiate.
    const d = tf.abs(tf.sub(pred, target));
    const c = tf.minimum(d, beta);
    return tf.mean(tf.add(tf.div(tf.mul(tf.square(c), 0.5), beta), tf.sub(d, c))) as tf.Scalar;
  });
}

/** L_MI = sum_k smoothL1(d^_k, stopgrad(d_k)) (Eq. 8, METHOD.md): one term per EIFE extractor. */
export function miLoss(predictions: readonly tf.Tensor2D[], targets: readonly tf.Tensor2D[], beta = 1): tf.Scalar {
  if (predictions.length !== targets.length || predictions.length === 0) {
    throw new ShapeError('miLoss', `needs one target per MI head: got ${predictions.length} predictions and ${targets.length} targets`);
  }
  return tf.tidy(() => tf.addN(predictions.map((p, k) => smoothL1(p, stopGradient(targets[k]!), beta))) as tf.Scalar);
}

/**
 * Mean cross-entropy of logits [N, K] against integer labels [N]; labels < 0 mean "unknown" and
 * are left out of the mean (0 when the whole batch is unknown).
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  if (logits.rank !== 2 || labels.rank !== 1 || logits.shape[0] !== labels.shape[0]) {
    throw new ShapeError('crossEntropy', `logits [${logits.shape.join(', ')}] need [N, K] and labels [${labels.shape.join(', ')}] need [N]`);
  }
  return tf.tidy(() => {
    const k = logits.shape[1];
    const lab = tf.cast(labels, 'int32');
    const valid = tf.cast(tf.greaterEqual(lab, 0), 'float32');
    const onehot = tf.oneHot(tf.where(tf.greaterEqual(lab, 0), lab, tf.zerosLike(lab)) as tf.Tensor1D, k);
    const nll = tf.neg(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1));
    const n = tf.maximum(tf.sum(valid), 1);
    return tf.div(tf.sum(tf.mul(nll, valid)), n) as tf.Scalar;
  });
}

/** Stage-1 loss (Eq. 1-2): sum over factors of the cross-entropy of that factor's head. */
export function eifeLoss(logits: Record<string, tf.Tensor2D>, labels: Record<string, tf.Tensor1D>): tf.Scalar {
  const names = Object.keys(logits);
  const missing = names.filter((n) => !(n in labels));
  if (missing.length > 0 || names.length === 0) {
    throw new ShapeError('eifeLoss', `labels are missing for factor(s) ${missing.join(', ') || '(no factors)'}; pass one label tensor per factor head`);
  }
  return tf.tidy(() => tf.addN(names.map((n) => crossEntropy(logits[n]!, labels[n]!))) as tf.Scalar);
}
