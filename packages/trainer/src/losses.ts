import * as tf from '@tensorflow/tfjs-core';

// The losses of the method live with the method (@dfd/mip); the trainer re-exports them so that
// a training script needs only one import.
export { crossEntropy, smoothL1 } from '@dfd/mip';

/** Number of rows whose argmax equals the label (labels < 0 never count). */
export function correctCount(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), tf.cast(labels, 'int32')), 'float32')) as tf.Scalar);
}
