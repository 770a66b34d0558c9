import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { ModuleOptionError, ShapeError } from './errors.js';
import { pytorchDefaultBound, toRng, uniformTensor } from './init.js';
import { Module, type ForwardOptions } from './module.js';
import type { Backbone, BackboneOptions, StageOutputs } from './resnet.js';

/** face-api.js's input mean (RGB, 0..255): its nets see `(pixel - mean) / 255`. */
export const FACEAPI_MEAN_RGB: readonly [number, number, number] = [122.782, 117.001, 104.298];

/** ImageNet mean/std (METHOD.md input normalisation), what dfd's data pipeline feeds every backbone. */
const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * Turns a dfd batch (ImageNet-normalised) into what face-api's nets expect, `(x255 - mean) / 255`,
 * exactly: x01 = x * std + imagenetMean, then x01 - faceapiMean / 255. So a face-api backbone or
 * extractor takes the same batches as every other dfd model.
 */
export function imagenetToFaceapi(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    const scale = tf.tensor1d([...IMAGENET_STD]);
    const shift = tf.tensor1d(IMAGENET_MEAN.map((m, i) => m - FACEAPI_MEAN_RGB[i]! / 255));
    return tf.add(tf.mul(x, scale), shift);
  });
}

/** Depthwise-separable 3x3 conv with bias, TF 'same' padding (face-api's `depthwiseSeparableConv`). */
export class SeparableConv2d extends Module {
  readonly depthwise: tf.Variable;
  readonly pointwise: tf.Variable;
  readonly bias: tf.Variable;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    rng: Rng,
  ) {
    super();
    this.depthwise = this.addParameter('depthwise', uniformTensor(rng, [3, 3, inChannels, 1], pytorchDefaultBound(9)));
    this.pointwise = this.addParameter('pointwise', uniformTensor(rng, [1, 1, inChannels, outChannels], pytorchDefaultBound(inChannels)));
    this.bias = this.addParameter('bias', uniformTensor(rng, [outChannels], pytorchDefaultBound(inChannels)));
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.separableConv2d(x, this.depthwise as tf.Tensor4D, this.pointwise as tf.Tensor4D, stride, 'same'), this.bias));
  }
}

/** Plain 3x3 conv with bias and TF 'same' padding (the first conv of face-api's first dense block). */
export class SameConv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(inChannels: number, outChannels: number, rng: Rng) {
    super();
    const bound = pytorchDefaultBound(9 * inChannels);
    this.weight = this.addParameter('weight', uniformTensor(rng, [3, 3, inChannels, outChannels], bound));
    this.bias = this.addParameter('bias', uniformTensor(rng, [outChannels], bound));
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, stride: 1 | 2): tf.Tensor4D {
    return tf.tidy(() => tf.add(tf.conv2d(x, this.weight as tf.Tensor4D, stride, 'same'), this.bias));
  }
}

/**
 * face-api's `denseBlock4`: a stride-2 conv0, then three separable convs each fed the ReLU of the
 * sum of all earlier outputs; out = ReLU(out1 + out2 + out3 + out4). The additions keep face-api's
 * order, so the numbers match its inference to float32 rounding.
 */
export class DenseBlock4 extends Module {
  readonly conv0: SameConv2d | SeparableConv2d;
  readonly conv1: SeparableConv2d;
  readonly conv2: SeparableConv2d;
  readonly conv3: SeparableConv2d;

  constructor(cin: number, cout: number, first: boolean, rng: Rng) {
    super();
    this.conv0 = this.addModule('conv0', first ? new SameConv2d(cin, cout, rng) : new SeparableConv2d(cin, cout, rng));
    this.conv1 = this.addModule('conv1', new SeparableConv2d(cout, cout, rng));
    this.conv2 = this.addModule('conv2', new SeparableConv2d(cout, cout, rng));
    this.conv3 = this.addModule('conv3', new SeparableConv2d(cout, cout, rng));
  }

  /** NHWC -> NHWC at half the resolution. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const out1 = tf.relu(this.conv0.forward(x, 2));
      const out2 = this.conv1.forward(out1, 1);
      const out3 = this.conv2.forward(tf.relu(tf.add<tf.Tensor4D>(out1, out2)), 1);
      const out4 = this.conv3.forward(tf.relu(tf.add<tf.Tensor4D>(out1, tf.add(out2, out3))), 1);
      return tf.relu(tf.add<tf.Tensor4D>(out1, tf.add(out2, tf.add(out3, out4))));
    });
  }
}

/** Stage channels of the face-api feature extractor. */
export const FACEAPI_CHANNELS: readonly number[] = [32, 64, 128, 256];

/**
 * face-api.js's FaceFeatureExtractor (the trunk of its expression net), as a dfd backbone: four
 * dense blocks of depthwise-separable convolutions, each halving the resolution (112 -> 56, 28,
 * 14, 7 with 32, 64, 128, 256 channels). Its four block outputs are the four stages that Eq. 3
 * fuses and the attention block reads. Parameters are named `dense{0..3}.conv{0..3}.*`; the
 * pretrained weights come from @dfd/zoo (`faceapi:expression`). It takes ImageNet-normalised
 * batches like every dfd backbone and converts them to face-api's input scaling itself. No batch
 * norm: `options.training` changes nothing.
 */
export class FaceapiDenseNet extends Module implements Backbone {
  readonly layout = 'faceapi' as const;
  readonly channels: readonly number[] = FACEAPI_CHANNELS;
  readonly inputSize: number;
  readonly dense: DenseBlock4[];

  constructor(options: BackboneOptions = {}) {
    super();
    const rng = toRng(options.rng);
    if ((options.width ?? 1) !== 1) {
      throw new ModuleOptionError('FaceapiDenseNet', 'width', `the face-api backbone has fixed channels (32-256); width must be 1, got ${String(options.width)}`);
    }
    const size = options.inputSize ?? 112;
    if (!Number.isInteger(size) || size < 16) throw new ModuleOptionError('FaceapiDenseNet', 'inputSize', `must be an integer >= 16 (face-api uses 112), got ${String(size)}`);
    this.inputSize = size;
    let cin = 3;
    this.dense = FACEAPI_CHANNELS.map((c, i) => {
      const block = this.addModule(`dense${i}`, new DenseBlock4(cin, c, i === 0, rng));
      cin = c;
      return block;
    });
  }

  /** NHWC ImageNet-normalised RGB batch -> the four dense-block outputs. */
  forward(x: tf.Tensor4D, _options?: ForwardOptions): StageOutputs {
    if (x.rank !== 4 || x.shape[3] !== 3) {
      throw new ShapeError('FaceapiDenseNet.forward', `expected an NHWC RGB batch [N, H, W, 3], got shape [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      let h = imagenetToFaceapi(x);
      const outs: tf.Tensor4D[] = [];
      for (const block of this.dense) {
        h = block.forward(h);
        outs.push(h);
      }
      return outs as StageOutputs;
    });
  }
}
