import * as tf from '@tensorflow/tfjs-core';
import { GrlError } from './errors.js';

/** The GRL coefficient: a plain number or a scalar (size-1) float32 tensor. */
export type Lambda = number | tf.Scalar | tf.Tensor;

// Built once per lambda kind: customGrad's returned function is reusable and stateless.
const reverseByTensor = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
  const [x, lambda, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
  save([lambda]);
  return {
    // A fresh tensor, not `x` itself: the tape must record a distinct output.
    value: tf.clone(x),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
      tf.mul(dy, tf.neg(saved[0]!)),
      // lambda is a hyper-parameter, not something the loss should move.
      tf.zerosLike(saved[0]!),
    ],
  };
}) as (x: tf.Tensor, lambda: tf.Tensor) => tf.Tensor;

function reverseByNumber(x: tf.Tensor, lambda: number): tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => ({
    value: tf.clone(args[0] as tf.Tensor),
    gradFunc: (dy: tf.Tensor) => tf.mul(dy, -lambda),
  })) as (input: tf.Tensor) => tf.Tensor;
  return f(x);
}

/**
 * Gradient reversal (GRL, paper Eq. 9): returns `x` unchanged in the forward pass; in the backward
 * pass the incoming gradient is multiplied by `-lambda`. Works for any rank, on any backend.
 * A tensor `lambda` must be a finite scalar; it receives a zero gradient.
 */
export function gradientReversal<T extends tf.Tensor>(x: T, lambda: Lambda = 1): T {
  if (!(x instanceof tf.Tensor)) {
    throw new GrlError('E_GRL_INPUT', `gradientReversal(x, lambda): x must be a tf.Tensor, got ${describe(x)}.`);
  }
  if (x.dtype !== 'float32') {
    throw new GrlError(
      'E_GRL_DTYPE',
      `gradientReversal(x, lambda): x has dtype '${x.dtype}', but gradients only flow through float tensors; ` +
        `cast it first with tf.cast(x, 'float32').`,
    );
  }
  if (typeof lambda === 'number') {
    if (!Number.isFinite(lambda)) {
      throw new GrlError('E_GRL_LAMBDA', `gradientReversal(x, lambda): lambda must be a finite number, got ${lambda}.`);
    }
    return reverseByNumber(x, lambda) as T;
  }
  if (lambda instanceof tf.Tensor) {
    if (lambda.size !== 1) {
      throw new GrlError(
        'E_GRL_LAMBDA',
        `gradientReversal(x, lambda): a tensor lambda must be a scalar, got shape [${lambda.shape.join(', ')}]; pass tf.scalar(value).`,
      );
    }
    if (lambda.dtype !== 'float32') {
      throw new GrlError('E_GRL_LAMBDA', `gradientReversal(x, lambda): a tensor lambda must be float32, got '${lambda.dtype}'.`);
    }
    // Reshape to a scalar so a [1]-shaped lambda cannot broadcast x's gradient to a new shape.
    return tf.tidy(() => reverseByTensor(x, lambda.rank === 0 ? lambda : tf.reshape(lambda, []))) as T;
  }
  throw new GrlError('E_GRL_LAMBDA', `gradientReversal(x, lambda): lambda must be a number or a scalar tensor, got ${describe(lambda)}.`);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return `${typeof v} ${String(v)}`;
}
