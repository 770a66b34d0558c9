import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { BatchNorm2d, Conv2d, Linear, Module, PReLU, ShapeError, globalMaxPool, toRng, type ForwardOptions } from '@dfd/backbone';

/** Options of {@link AttentionBlock}. */
export interface AttentionOptions {
  /** Channels of f_fused (448 at full width: 64 + 128 + 256). */
  fusedChannels: number;
  /** Channels of f_L (512 at full width). */
  channels: number;
  rng?: Rng | number;
}

/** Mask generator g (`attention.mask.*`): conv3x3, BN, PReLU, conv1x1, BN, sigmoid -> Mask in (0, 1). */
export class MaskGenerator extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly act1: PReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(channels: number, rng: Rng) {
    super();
    this.conv1 = this.addModule('conv1', new Conv2d(channels, channels, { kernelSize: 3, padding: 1, rng }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(channels));
    this.act1 = this.addModule('act1', new PReLU());
    this.conv2 = this.addModule('conv2', new Conv2d(channels, channels, { kernelSize: 1, rng }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(channels));
  }

  /** z (NHWC) -> Mask (NHWC, same shape). */
  forward(z: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const h = this.act1.forward(this.bn1.forward(this.conv1.forward(z), options));
      return tf.sigmoid(this.bn2.forward(this.conv2.forward(h), options));
    });
  }
}

/** Selection h (`attention.select.*`): conv3x3, BN, PReLU. */
export class Selection extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly act: PReLU;

  constructor(channels: number, rng: Rng) {
    super();
    this.conv = this.addModule('conv', new Conv2d(channels, channels, { kernelSize: 3, padding: 1, rng }));
    this.bn = this.addModule('bn', new BatchNorm2d(channels));
    this.act = this.addModule('act', new PReLU());
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => this.act.forward(this.bn.forward(this.conv.forward(x), options)));
  }
}

/** Intermediate tensors of the attention block, for inspection and visualisation. */
export interface AttentionOutputs {
  /** z = delta_1 * proj(f_fused) + delta_2 * f_L (Eq. 4). */
  z: tf.Tensor4D;
  /** Mask = sigmoid(g(z)), in (0, 1). */
  mask: tf.Tensor4D;
  /** Att_out = GMP(h(Mask * f_L)) (Eq. 5), [N, C]. */
  attOut: tf.Tensor2D;
}

/**
 * Attention block of Eq. 4-5 (METHOD.md): `proj` (conv1x1, no bias, decision: brings f_fused to
 * f_L's width), learnable `delta` [2] initialised to 1, mask generator g, selection h, global max pool.
 */
export class AttentionBlock extends Module {
  readonly delta: tf.Variable;
  readonly proj: Conv2d;
  readonly mask: MaskGenerator;
  readonly select: Selection;
  readonly fusedChannels: number;
  readonly channels: number;

  constructor(options: AttentionOptions) {
    super();
    const rng = toRng(options.rng);
    this.fusedChannels = options.fusedChannels;
    this.channels = options.channels;
    this.delta = this.addParameter('delta', tf.ones([2]));
    this.proj = this.addModule('proj', new Conv2d(options.fusedChannels, options.channels, { kernelSize: 1, rng }));
    this.mask = this.addModule('mask', new MaskGenerator(options.channels, rng));
    this.select = this.addModule('select', new Selection(options.channels, rng));
  }

  /** f_fused and f_L (NHWC, same H and W) -> Att_out [N, C] plus the intermediates. */
  forwardDetailed(fused: tf.Tensor4D, last: tf.Tensor4D, options: ForwardOptions): AttentionOutputs {
    if (fused.rank !== 4 || last.rank !== 4 || fused.shape[1] !== last.shape[1] || fused.shape[2] !== last.shape[2]) {
      throw new ShapeError(
        'AttentionBlock.forward',
        `f_fused [${fused.shape.join(', ')}] and f_L [${last.shape.join(', ')}] must be NHWC with the same H and W`,
      );
    }
    return tf.tidy(() => {
      const d1 = tf.slice(this.delta, [0], [1]);
      const d2 = tf.slice(this.delta, [1], [1]);
      const z = tf.add(tf.mul(d1, this.proj.forward(fused)), tf.mul(d2, last)) as tf.Tensor4D;
      const mask = this.mask.forward(z, options);
      const attOut = globalMaxPool(this.select.forward(tf.mul(mask, last) as tf.Tensor4D, options));
      return { z, mask, attOut };
    });
  }

  /** f_fused and f_L -> Att_out [N, C]. */
  forward(fused: tf.Tensor4D, last: tf.Tensor4D, options: ForwardOptions): tf.Tensor2D {
    return tf.tidy(() => this.forwardDetailed(fused, last, options).attOut);
  }
}

/** Expression classifier (`classifier`): Linear C -> classes on Att_out; trained with cross-entropy (Eq. 6). */
export class ClassifierHead extends Linear {
  constructor(inFeatures: number, numClasses = 7, rng?: Rng | number) {
    super(inFeatures, numClasses, { rng });
  }
}
