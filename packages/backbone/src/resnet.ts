import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '@dfd/core';
import { ModuleOptionError, ShapeError } from './errors.js';
import { toRng } from './init.js';
import { BatchNorm2d, Conv2d, PReLU, maxPool2d } from './layers.js';
import { Module, ModuleList, type ForwardOptions } from './module.js';
import { FACEAPI_CHANNELS, FACEAPI_XCEPTION_CHANNELS, FaceapiDenseNet, FaceapiXceptionNet } from './faceapi.js';

/**
 * `ddl`: PreAct ResNet-18 of the DDL/ADDL code (METHOD.md); `torchvision`: torchvision's resnet18
 * trunk; `faceapi`: face-api.js's expression-net trunk; `faceapi-xception`: its age/gender-net
 * trunk (pretrained weights for both from @dfd/zoo).
 */
export type BackboneLayout = 'ddl' | 'torchvision' | 'faceapi' | 'faceapi-xception';

/** Options shared by the backbones. */
export interface BackboneOptions {
  /** Default 'ddl'. */
  layout?: BackboneLayout;
  /** Channel multiplier: 1 = 64 base channels (paper), 0.125 = 8 (tests, demo). */
  width?: number;
  /** Expected square input side in pixels, default 90; used for validation and shape reports. */
  inputSize?: number;
  /** Seed or shared generator for the weight init. */
  rng?: Rng | number;
}

/** The four stage outputs, NHWC, shallow to deep. */
export type StageOutputs = [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];

/** What {@link createBackbone} returns, whichever the layout. */
export interface Backbone extends Module {
  readonly layout: BackboneLayout;
  /** Output channels of the four stages (e.g. [64, 128, 256, 512]). */
  readonly channels: readonly number[];
  readonly inputSize: number;
  /** NHWC image batch -> the four stage outputs. */
  forward(x: tf.Tensor4D, options: ForwardOptions): StageOutputs;
}

/** Base channel count for a width multiplier (64 * width, at least 1). */
export function baseChannels(width = 1, where = 'backbone'): number {
  if (!(width > 0) || !Number.isFinite(width)) {
    throw new ModuleOptionError(where, 'width', `must be a positive number (1 = 64 base channels), got ${String(width)}`);
  }
  return Math.max(1, Math.round(64 * width));
}

function checkInputSize(inputSize: number, where: string): number {
  if (!Number.isInteger(inputSize) || inputSize < 8) {
    throw new ModuleOptionError(where, 'inputSize', `must be an integer >= 8 (pixels), got ${String(inputSize)}`);
  }
  return inputSize;
}

const convOut = (h: number, k: number, s: number, p: number): number => Math.floor((h + 2 * p - k) / s) + 1;

/** Stage output shapes [H, W, C] for a square input, computed without running the network. */
export function backboneStageShapes(options: BackboneOptions = {}): Array<[number, number, number]> {
  const layout = options.layout ?? 'ddl';
  if (layout === 'faceapi' || layout === 'faceapi-xception') {
    // TF 'same' padding, stride 2: ceil(h / 2) per stage.
    let h = checkInputSize(options.inputSize ?? 112, 'backboneStageShapes');
    return (layout === 'faceapi' ? FACEAPI_CHANNELS : FACEAPI_XCEPTION_CHANNELS).map((c) => {
      h = Math.ceil(h / 2);
      return [h, h, c];
    });
  }
  const base = baseChannels(options.width ?? 1);
  let h = checkInputSize(options.inputSize ?? 90, 'backboneStageShapes');
  const out: Array<[number, number, number]> = [];
  if (layout === 'torchvision') {
    h = convOut(convOut(h, 7, 2, 3), 3, 2, 1);
  }
  for (let i = 0; i < 4; i++) {
    const stride = layout === 'torchvision' && i === 0 ? 1 : 2;
    h = convOut(h, 3, stride, 1);
    out.push([h, h, base * 2 ** i]);
  }
  return out;
}

/** Conv3x3 stride 1, BN, PReLU: the DDL stem (`efe.stem.{conv,bn,act}`). */
export class ConvBnPReLU extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly act: PReLU;

  constructor(cin: number, cout: number, rng: Rng) {
    super();
    this.conv = this.addModule('conv', new Conv2d(cin, cout, { kernelSize: 3, stride: 1, padding: 1, rng }));
    this.bn = this.addModule('bn', new BatchNorm2d(cout));
    this.act = this.addModule('act', new PReLU());
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => this.act.forward(this.bn.forward(this.conv.forward(x), options)));
  }
}

/**
 * Pre-activation basic block (METHOD.md): o = PReLU(BN(x)); shortcut = conv1x1(o) when the shape
 * changes, else x; y = conv3x3_s(o); y = conv3x3(PReLU(BN(y))); out = y + shortcut.
 */
export class PreActBlock extends Module {
  readonly bn1: BatchNorm2d;
  readonly act1: PReLU;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly act2: PReLU;
  readonly conv2: Conv2d;
  readonly shortcut: Conv2d | null;

  constructor(cin: number, cout: number, stride: number, rng: Rng) {
    super();
    // Registration order = PyTorch attribute order, so state_dict orders agree.
    this.bn1 = this.addModule('bn1', new BatchNorm2d(cin));
    this.act1 = this.addModule('act1', new PReLU());
    this.conv1 = this.addModule('conv1', new Conv2d(cin, cout, { kernelSize: 3, stride, padding: 1, rng }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(cout));
    this.act2 = this.addModule('act2', new PReLU());
    this.conv2 = this.addModule('conv2', new Conv2d(cout, cout, { kernelSize: 3, stride: 1, padding: 1, rng }));
    this.shortcut =
      stride !== 1 || cin !== cout ? this.addModule('shortcut', new Conv2d(cin, cout, { kernelSize: 1, stride, padding: 0, rng })) : null;
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      const o = this.act1.forward(this.bn1.forward(x, options));
      const sc = this.shortcut ? this.shortcut.forward(o) : x;
      let y = this.conv1.forward(o);
      y = this.conv2.forward(this.act2.forward(this.bn2.forward(y, options)));
      return tf.add(y, sc);
    });
  }
}

function checkInput(x: tf.Tensor4D, where: string): void {
  if (x.rank !== 4 || x.shape[3] !== 3) {
    throw new ShapeError(where, `expected an NHWC RGB batch [N, H, W, 3], got shape [${x.shape.join(', ')}]`);
  }
}

/** EFE backbone, DDL layout: stem + 4 stages of 2 PreAct blocks, each stage stride 2. */
export class PreActResNet18 extends Module implements Backbone {
  readonly layout = 'ddl' as const;
  readonly channels: readonly number[];
  readonly inputSize: number;
  readonly stem: ConvBnPReLU;
  readonly stages: ModuleList<ModuleList<PreActBlock>>;

  constructor(options: BackboneOptions = {}) {
    super();
    const rng = toRng(options.rng);
    const base = baseChannels(options.width ?? 1, 'PreActResNet18');
    this.inputSize = checkInputSize(options.inputSize ?? 90, 'PreActResNet18');
    this.channels = [base, base * 2, base * 4, base * 8];
    this.stem = this.addModule('stem', new ConvBnPReLU(3, base, rng));
    this.stages = this.addModule('stages', new ModuleList<ModuleList<PreActBlock>>());
    let cin = base;
    for (const c of this.channels) {
      this.stages.push(new ModuleList([new PreActBlock(cin, c, 2, rng), new PreActBlock(c, c, 1, rng)]));
      cin = c;
    }
  }

  /** NHWC RGB batch -> the four stage outputs. */
  forward(x: tf.Tensor4D, options: ForwardOptions): StageOutputs {
    checkInput(x, 'PreActResNet18.forward');
    return tf.tidy(() => {
      let h = this.stem.forward(x, options);
      const outs: tf.Tensor4D[] = [];
      for (const stage of this.stages.toArray()) {
        for (const block of stage.toArray()) h = block.forward(h, options);
        outs.push(h);
      }
      return outs as StageOutputs;
    });
  }
}

/** torchvision BasicBlock (post-activation, ReLU), names as in torchvision's resnet18. */
export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: ModuleList<Conv2d | BatchNorm2d> | null;

  constructor(cin: number, cout: number, stride: number, rng: Rng) {
    super();
    this.conv1 = this.addModule('conv1', new Conv2d(cin, cout, { kernelSize: 3, stride, padding: 1, rng }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(cout));
    this.conv2 = this.addModule('conv2', new Conv2d(cout, cout, { kernelSize: 3, stride: 1, padding: 1, rng }));
    this.bn2 = this.addModule('bn2', new BatchNorm2d(cout));
    this.downsample =
      stride !== 1 || cin !== cout
        ? this.addModule('downsample', new ModuleList<Conv2d | BatchNorm2d>([new Conv2d(cin, cout, { kernelSize: 1, stride, rng }), new BatchNorm2d(cout)]))
        : null;
  }

  /** NHWC -> NHWC. */
  forward(x: tf.Tensor4D, options: ForwardOptions): tf.Tensor4D {
    return tf.tidy(() => {
      let identity: tf.Tensor4D = x;
      if (this.downsample) {
        const conv = this.downsample.at(0) as Conv2d;
        const bn = this.downsample.at(1) as BatchNorm2d;
        identity = bn.forward(conv.forward(x), options);
      }
      let y = tf.relu(this.bn1.forward(this.conv1.forward(x), options));
      y = this.bn2.forward(this.conv2.forward(y), options);
      return tf.relu(tf.add<tf.Tensor4D>(y, identity));
    });
  }
}

/**
 * torchvision resnet18 trunk (`conv1`, `bn1`, `layer1..4`; no `fc`): 7x7/2 stem, 3x3/2 max-pool,
 * stage 1 stride 1, ReLU, so ImageNet / MS-Celeb ResNet-18 checkpoints load under `efe.`.
 */
export class TorchvisionResNet18 extends Module implements Backbone {
  readonly layout = 'torchvision' as const;
  readonly channels: readonly number[];
  readonly inputSize: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layers: Array<ModuleList<BasicBlock>>;

  constructor(options: BackboneOptions = {}) {
    super();
    const rng = toRng(options.rng);
    const base = baseChannels(options.width ?? 1, 'TorchvisionResNet18');
    this.inputSize = checkInputSize(options.inputSize ?? 90, 'TorchvisionResNet18');
    this.channels = [base, base * 2, base * 4, base * 8];
    this.conv1 = this.addModule('conv1', new Conv2d(3, base, { kernelSize: 7, stride: 2, padding: 3, rng }));
    this.bn1 = this.addModule('bn1', new BatchNorm2d(base));
    this.layers = [];
    let cin = base;
    this.channels.forEach((c, i) => {
      const stride = i === 0 ? 1 : 2;
      this.layers.push(this.addModule(`layer${i + 1}`, new ModuleList([new BasicBlock(cin, c, stride, rng), new BasicBlock(c, c, 1, rng)])));
      cin = c;
    });
  }

  /** NHWC RGB batch -> the four stage outputs. */
  forward(x: tf.Tensor4D, options: ForwardOptions): StageOutputs {
    checkInput(x, 'TorchvisionResNet18.forward');
    return tf.tidy(() => {
      let h = tf.relu(this.bn1.forward(this.conv1.forward(x), options));
      h = maxPool2d(h, 3, 2, 1);
      const outs: tf.Tensor4D[] = [];
      for (const layer of this.layers) {
        for (const block of layer.toArray()) h = block.forward(h, options);
        outs.push(h);
      }
      return outs as StageOutputs;
    });
  }
}

/** Builds the backbone for a layout (default DDL PreAct ResNet-18). */
export function createBackbone(options: BackboneOptions = {}): Backbone {
  const layout = options.layout ?? 'ddl';
  if (layout === 'ddl') return new PreActResNet18(options);
  if (layout === 'torchvision') return new TorchvisionResNet18(options);
  if (layout === 'faceapi') return new FaceapiDenseNet(options);
  if (layout === 'faceapi-xception') return new FaceapiXceptionNet(options);
  throw new ModuleOptionError('createBackbone', 'layout', `must be 'ddl', 'torchvision', 'faceapi' or 'faceapi-xception', got ${JSON.stringify(layout)}`);
}
