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

/** Plain k x k conv (default 3) with bias and TF 'same' padding, as face-api's nets use them. */
export class SameConv2d extends Module {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;

  constructor(inChannels: number, outChannels: number, rng: Rng, kernelSize = 3) {
    super();
    const bound = pytorchDefaultBound(kernelSize * kernelSize * inChannels);
    this.weight = this.addParameter('weight', uniformTensor(rng, [kernelSize, kernelSize, inChannels, outChannels], bound));
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

/** TinyXception's reduction block: [ReLU], sep conv, ReLU, sep conv, max-pool 3x3/2, + 1x1/2 expansion conv of the input. */
export class ReductionBlock extends Module {
  readonly separable_conv0: SeparableConv2d;
  readonly separable_conv1: SeparableConv2d;
  readonly expansion_conv: SameConv2d;

  constructor(
    cin: number,
    cout: number,
    readonly activateInput: boolean,
    rng: Rng,
  ) {
    super();
    this.separable_conv0 = this.addModule('separable_conv0', new SeparableConv2d(cin, cout, rng));
    this.separable_conv1 = this.addModule('separable_conv1', new SeparableConv2d(cout, cout, rng));
    this.expansion_conv = this.addModule('expansion_conv', new SameConv2d(cin, cout, rng, 1));
  }

  /** NHWC -> NHWC at half the resolution. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let out = this.separable_conv0.forward(this.activateInput ? tf.relu(x) : x, 1);
      out = this.separable_conv1.forward(tf.relu(out), 1);
      out = tf.maxPool(out, [3, 3], [2, 2], 'same');
      return tf.add<tf.Tensor4D>(out, this.expansion_conv.forward(x, 2));
    });
  }
}

/** TinyXception's main block: three (ReLU, sep conv) and a residual connection. */
export class MainBlock extends Module {
  readonly separable_conv0: SeparableConv2d;
  readonly separable_conv1: SeparableConv2d;
  readonly separable_conv2: SeparableConv2d;

  constructor(c: number, rng: Rng) {
    super();
    this.separable_conv0 = this.addModule('separable_conv0', new SeparableConv2d(c, c, rng));
    this.separable_conv1 = this.addModule('separable_conv1', new SeparableConv2d(c, c, rng));
    this.separable_conv2 = this.addModule('separable_conv2', new SeparableConv2d(c, c, rng));
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      let out = this.separable_conv0.forward(tf.relu(x), 1);
      out = this.separable_conv1.forward(tf.relu(out), 1);
      out = this.separable_conv2.forward(tf.relu(out), 1);
      return tf.add<tf.Tensor4D>(out, x);
    });
  }
}

/** Stage channels of face-api's TinyXception (age/gender net) as a backbone. */
export const FACEAPI_XCEPTION_CHANNELS: readonly number[] = [32, 64, 128, 512];

class Flow extends Module {
  add<M extends Module>(name: string, m: M): M {
    return this.addModule(name, m);
  }
}

/**
 * face-api.js's TinyXception (the trunk of its age/gender net, 2 main blocks) as a dfd backbone:
 * stages after the entry conv (56 px x 32), the first reduction block (28 x 64), the middle
 * flow (14 x 128) and the exit flow (7 x 512). Parameter names follow face-api's
 * (`entry_flow.conv_in.*`, `entry_flow.reduction_block_{0,1}.*`, `middle_flow.main_block_{0,1}.*`,
 * `exit_flow.{reduction_block,separable_conv}.*`); pretrained weights from @dfd/zoo
 * (`faceapi:age-gender`). Takes ImageNet-normalised batches; no batch norm.
 */
export class FaceapiXceptionNet extends Module implements Backbone {
  readonly layout = 'faceapi-xception' as const;
  readonly channels: readonly number[] = FACEAPI_XCEPTION_CHANNELS;
  readonly inputSize: number;
  private readonly convIn: SameConv2d;
  private readonly rb0: ReductionBlock;
  private readonly rb1: ReductionBlock;
  private readonly main: MainBlock[];
  private readonly exitRb: ReductionBlock;
  private readonly exitSep: SeparableConv2d;

  constructor(options: BackboneOptions = {}) {
    super();
    const rng = toRng(options.rng);
    if ((options.width ?? 1) !== 1) throw new ModuleOptionError('FaceapiXceptionNet', 'width', `the face-api backbone has fixed channels; width must be 1, got ${String(options.width)}`);
    const size = options.inputSize ?? 112;
    if (!Number.isInteger(size) || size < 16) throw new ModuleOptionError('FaceapiXceptionNet', 'inputSize', `must be an integer >= 16 (face-api uses 112), got ${String(size)}`);
    this.inputSize = size;
    const entry = this.addModule('entry_flow', new Flow());
    this.convIn = entry.add('conv_in', new SameConv2d(3, 32, rng));
    this.rb0 = entry.add('reduction_block_0', new ReductionBlock(32, 64, false, rng));
    this.rb1 = entry.add('reduction_block_1', new ReductionBlock(64, 128, true, rng));
    const middle = this.addModule('middle_flow', new Flow());
    this.main = [0, 1].map((i) => middle.add(`main_block_${i}`, new MainBlock(128, rng)));
    const exit = this.addModule('exit_flow', new Flow());
    this.exitRb = exit.add('reduction_block', new ReductionBlock(128, 256, true, rng));
    this.exitSep = exit.add('separable_conv', new SeparableConv2d(256, 512, rng));
  }

  /** NHWC ImageNet-normalised RGB batch -> the four stage outputs. */
  forward(x: tf.Tensor4D, _options?: ForwardOptions): StageOutputs {
    if (x.rank !== 4 || x.shape[3] !== 3) {
      throw new ShapeError('FaceapiXceptionNet.forward', `expected an NHWC RGB batch [N, H, W, 3], got shape [${x.shape.join(', ')}]`);
    }
    return tf.tidy(() => {
      const s1 = tf.relu(this.convIn.forward(imagenetToFaceapi(x), 2));
      const s2 = this.rb0.forward(s1);
      let h = this.rb1.forward(s2);
      for (const b of this.main) h = b.forward(h);
      const s4 = tf.relu(this.exitSep.forward(this.exitRb.forward(h), 1));
      return [s1, s2, h, s4] as StageOutputs;
    });
  }
}
