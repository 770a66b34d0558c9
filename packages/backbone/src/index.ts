export { ModuleOptionError, ShapeError } from './errors.js';
export { pytorchDefaultBound, toRng, uniformTensor } from './init.js';
export {
  BatchNorm2d,
  Conv2d,
  Linear,
  PReLU,
  globalAvgPool,
  globalMaxPool,
  maxPool2d,
  type BatchNorm2dOptions,
  type Conv2dOptions,
  type LinearOptions,
} from './layers.js';
export { Module, ModuleList, type ForwardOptions } from './module.js';
export {
  BasicBlock,
  ConvBnPReLU,
  PreActBlock,
  PreActResNet18,
  TorchvisionResNet18,
  backboneStageShapes,
  baseChannels,
  createBackbone,
  type Backbone,
  type BackboneLayout,
  type BackboneOptions,
  type StageOutputs,
} from './resnet.js';
export { fuseStages, fusionPool } from './fusion.js';
export {
  DenseBlock4,
  FACEAPI_CHANNELS,
  FACEAPI_MEAN_RGB,
  FACEAPI_XCEPTION_CHANNELS,
  FaceapiDenseNet,
  FaceapiXceptionNet,
  MainBlock,
  ReductionBlock,
  SameConv2d,
  SeparableConv2d,
  imagenetToFaceapi,
} from './faceapi.js';
export { batchNormTrain, type BatchNormTrainResult } from './batchnorm-train.js';
