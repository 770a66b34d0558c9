import * as tf from '@tensorflow/tfjs-core';

/** Mean softmax cross-entropy of `logits` [N, C] against integer `labels` [N] (Eq. 1, 6). Labels < 0 are ignored. */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const numClasses = logits.shape[1];
    const valid = tf.cast(tf.greaterEqual(labels, 0), 'float32');
    const oneHot = tf.oneHot(tf.cast(tf.maximum(labels, 0), 'int32'), numClasses);
    const nll = tf.neg(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1));
    const count = tf.maximum(tf.sum(valid), 1);
    return tf.div(tf.sum(tf.mul(nll, valid)), count) as tf.Scalar;
  });
}

/** PyTorch `smooth_l1_loss(pred, target, beta, reduction='mean')` (Eq. 8). */
export function smoothL1(pred: tf.Tensor, target: tf.Tensor, beta = 1): tf.Scalar {
  return tf.tidy(() => {
    // Branch-free form (tfjs has no gradient for the comparison that tf.where would need):
    // with q = min(|d|, beta): 0.5 q^2 / beta + (|d| - q).
    const diff = tf.abs(tf.sub(pred, target));
    const q = tf.minimum(diff, beta);
    return tf.mean(tf.add(tf.div(tf.mul(tf.square(q), 0.5), beta), tf.sub(diff, q))) as tf.Scalar;
  });
}

/** Number of rows whose argmax equals the label (labels < 0 never count). */
export function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'float32')) as tf.Scalar);
}
