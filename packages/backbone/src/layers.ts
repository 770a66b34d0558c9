import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { batchNormTrain } from './batchnorm-train.js';
import { ShapeError } from './errors.js';
import { pytorchDefaultBound, toRng, uniformTensor } from './init.js';
import { Module, type ForwardOptions } from './module.js';

/** Options of {@link Conv2d}; padding is PyTorch's symmetric zero padding in pixels. */
export interface Conv2dOptions {
  kernelSize: number;
  stride?: number;
  padding?: number;
  bias?: boolean;
  rng?: Rng | number;
}

/**
 * 2-D convolution with PyTorch semantics. Weight `weight` is HWIO [kh, kw, in, out]. Padding is
 * symmetric and passed to the conv as tfjs explicit padding because TF 'same' pads stride-2 convs
 * on the bottom/right only and would not match PyTorch checkpoints; a separate tf.pad would copy
 * every input and make the input gradient cover the padded border too (slower, more memory).
 */
export class Conv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: number;
  readonly stride: number;
  readonly padding: number;

  constructor(inChannels: number, outChannels: number, options: Conv2dOptions) {
    super();
    const rng = toRng(options.rng);
    this.inChannels = inChannels;
    this.outChannels = outChannels;
    this.kernelSize = options.kernelSize;
    this.stride = options.stride ?? 1;
    this.padding = options.padding ?? 0;
    const k = this.kernelSize;
    const bound = pytorchDefaultBound(inChannels * k * k);
    this.weight = this.addParameter('weight', uniformTensor(rng, [k, k, inChannels, outChannels], bound));
    this.bias = options.bias ? this.addParameter('bias', uniformTensor(rng, [outChannels], bound)) : null;
  }

  /** NHWC in, NHWC out. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.inChannels) {
      throw new ShapeError('Conv2d.forward', `expected NHWC input with ${this.inChannels} channels, got shape [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const p = this.padding;
      const pad: 'valid' | [[number, number], [number, number], [number, number], [number, number]] =
        p > 0 ? [[0, 0], [p, p], [p, p], [0, 0]] : 'valid';
      const y = tf.conv2d(x, this.weight as tf.Tensor4D, this.stride, pad);
      return this.bias ? tf.add(y, this.bias) : y;
    });
  }
}

/** Options of {@link BatchNorm2d} (PyTorch defaults). */
export interface BatchNorm2dOptions {
  eps?: number;
  momentum?: number;
}

/**
 * BatchNorm over NHWC channels with PyTorch semantics: training normalises with the biased batch
 * variance and updates running = (1 - m) * running + m * batch (unbiased variance); inference
 * uses the running statistics. Names `weight`, `bias`, `running_mean`, `running_var`.
 */
export class BatchNorm2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  readonly runningMean: tf.Variable;
  readonly runningVar: tf.Variable;
  readonly numFeatures: number;
  readonly eps: number;
  readonly momentum: number;

  constructor(numFeatures: number, options: BatchNorm2dOptions = {}) {
    super();
    this.numFeatures = numFeatures;
    this.eps = options.eps ?? 1e-5;
    this.momentum = options.momentum ?? 0.1;
    this.weight = this.addParameter('weight', tf.ones([numFeatures]));
    this.bias = this.addParameter('bias', tf.zeros([numFeatures]));
    this.runningMean = this.addBuffer('running_mean', tf.zeros([numFeatures]));
    this.runningVar = this.addBuffer('running_var', tf.ones([numFeatures]));
  }

  /** NHWC in, NHWC out; with `training` the running statistics are updated as a side effect. */
  forward(x: tf.Tensor4D, { training }: ForwardOptions): tf.Tensor4D {
    if (x.rank !== 4 || x.shape[3] !== this.numFeatures) {
      throw new ShapeError('BatchNorm2d.forward', `expected NHWC input with ${this.numFeatures} channels, got shape [${x.shape.join(', ')}]`);
    }
    if (!training) {
      return tf.batchNorm4d(x, this.runningMean as tf.Tensor1D, this.runningVar as tf.Tensor1D, this.bias as tf.Tensor1D, this.weight as tf.Tensor1D, this.eps);
    }
    const n = x.shape[0] * x.shape[1] * x.shape[2];
    if (n < 2) {
      throw new ShapeError('BatchNorm2d.forward', `training needs more than one value per channel, got shape [${x.shape.join(', ')}]; use a larger batch`);
    }
    const { y, mean, variance } = batchNormTrain(x, this.weight as tf.Tensor1D, this.bias as tf.Tensor1D, this.eps);
    // Running statistics are state, not part of the graph the loss differentiates.
    tf.tidy(() => {
      const m = this.momentum;
      this.runningMean.assign(tf.add(tf.mul(this.runningMean, 1 - m), tf.mul(mean, m)));
      this.runningVar.assign(tf.add(tf.mul(this.runningVar, 1 - m), tf.mul(variance, (m * n) / (n - 1))));
    });
    tf.dispose([mean, variance]);
    return y;
  }
}

/** PReLU with one learnable slope `weight` [1], initialised to 0.25 (PyTorch's nn.PReLU()). */
export class PReLU extends Module {
  readonly weight: tf.Variable;

  constructor(init = 0.25) {
    super();
    this.weight = this.addParameter('weight', tf.tensor1d([init]));
  }

  /** Any rank; the single slope broadcasts. */
  forward<T extends tf.Tensor>(x: T): T {
    return tf.prelu(x, this.weight as tf.Tensor as T);
  }
}

/** Options of {@link Linear}. */
export interface LinearOptions {
  bias?: boolean;
  rng?: Rng | number;
}

/** Fully connected layer; `weight` is [in, out] (transpose of PyTorch's [out, in]), PyTorch default init. */
export class Linear extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(inFeatures: number, outFeatures: number, options: LinearOptions = {}) {
    super();
    const rng = toRng(options.rng);
    this.inFeatures = inFeatures;
    this.outFeatures = outFeatures;
    const bound = pytorchDefaultBound(inFeatures);
    // PyTorch draws weight [out, in] row-major; drawing in that order and transposing keeps the
    // draw order independent of the storage layout.
    const w = uniformTensor(rng, [outFeatures, inFeatures], bound);
    this.weight = this.addParameter('weight', tf.tidy(() => tf.transpose(w)));
    w.dispose();
    this.bias = options.bias === false ? null : this.addParameter('bias', uniformTensor(rng, [outFeatures], bound));
  }

  /** [N, in] -> [N, out]. */
  forward(x: tf.Tensor2D): tf.Tensor2D {
    if (x.rank !== 2 || x.shape[1] !== this.inFeatures) {
      throw new ShapeError('Linear.forward', `expected [N, ${this.inFeatures}] input, got shape [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const y: tf.Tensor2D = tf.matMul(x, this.weight as tf.Tensor2D);
      return this.bias ? (tf.add(y, this.bias) as tf.Tensor2D) : y;
    });
  }
}

/** Global average pool over H and W: NHWC -> [N, C]. */
export function globalAvgPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.mean(x, [1, 2]);
}

/** Global max pool over H and W: NHWC -> [N, C]. */
export function globalMaxPool(x: tf.Tensor4D): tf.Tensor2D {
  return tf.max(x, [1, 2]);
}

/**
 * Max pool with PyTorch's symmetric padding (padded cells never win, as PyTorch pads with -inf).
 */
export function maxPool2d(x: tf.Tensor4D, kernelSize: number, stride: number, padding = 0): tf.Tensor4D {
  return tf.tidy(() => {
    const xp = padding > 0 ? tf.pad(x, [[0, 0], [padding, padding], [padding, padding], [0, 0]], -Infinity) : x;
    return tf.maxPool(xp, kernelSize, stride, 'valid');
  });
}
